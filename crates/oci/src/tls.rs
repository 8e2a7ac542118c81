//! Telling a TLS failure that retrying cannot mend from one it can: the server's certificate was not trusted.
//! Shared by every client built on reqwest with rustls (the registry client here, `kibaship-step notify`).

use std::error::Error as StdError;

/// rustls's reason when `err` (or any error in its `source` chain) is the server's certificate refused by the
/// verifier (`invalid peer certificate: UnknownIssuer`, `... Expired`, `... NotValidForName`), escaped for
/// printing; `None` for any other failure. The rustls error is found by type, not by message: hyper and
/// tokio-rustls wrap it in `io::Error`s whose `source` skips it, so those are looked inside.
pub fn untrusted_certificate(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut cause = Some(err);
    while let Some(c) = cause {
        let mut inner = c;
        while let Some(wrapped) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            inner = wrapped;
        }
        if let Some(tls @ rustls::Error::InvalidCertificate(_)) =
            inner.downcast_ref::<rustls::Error>()
        {
            return Some(tls.to_string().escape_debug().to_string());
        }
        cause = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("error sending request")
        }
    }

    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn finds_rustls_certificate_errors_wrapped_in_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let wrapped = Outer(std::io::Error::other(std::io::Error::other(tls)));
        assert_eq!(
            untrusted_certificate(&wrapped).as_deref(),
            Some("invalid peer certificate: UnknownIssuer")
        );
    }

    #[test]
    fn other_failures_are_not_certificate_failures() {
        let refused = Outer(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(untrusted_certificate(&refused), None);
        // A message that merely mentions an invalid certificate is not one (the old text match said it was).
        let text = Outer(std::io::Error::other("invalid certificate name in request"));
        assert_eq!(untrusted_certificate(&text), None);
        let alert = Outer(std::io::Error::other(rustls::Error::AlertReceived(
            rustls::AlertDescription::HandshakeFailure,
        )));
        assert_eq!(untrusted_certificate(&alert), None);
    }
}
