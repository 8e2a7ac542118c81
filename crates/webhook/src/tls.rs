//! The serving certificate, replaced in place when its files change (cert-manager or a Secret update), so the
//! webhook never restarts to rotate it.
use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// What is wrong with a certificate/key pair.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file holds no certificate.
    #[error("the certificate file holds no PEM CERTIFICATE: {0}")]
    NoCertificate(String),
    /// The key file holds no usable private key.
    #[error("the key file holds no PEM private key: {0}")]
    NoKey(String),
    /// rustls refuses the key.
    #[error("the private key is not usable: {0}")]
    Key(String),
    /// The key does not belong to the certificate.
    #[error("the private key does not match the certificate: {0}")]
    Mismatch(String),
}

/// Parses a PEM certificate chain and private key into what rustls serves.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::NoCertificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate("no certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::NoKey(e.to_string()))?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|e| TlsError::Key(e.to_string()))?;
    let certified = CertifiedKey::new(certs, signing);
    certified
        .keys_match()
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    Ok(certified)
}

/// Serves the current certificate; [`ReloadingCertificate::replace`] swaps it for new connections.
pub struct ReloadingCertificate {
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for ReloadingCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCertificate")
            .finish_non_exhaustive()
    }
}

impl ReloadingCertificate {
    /// Starts with `key`.
    pub fn new(key: CertifiedKey) -> Self {
        ReloadingCertificate {
            current: RwLock::new(Arc::new(key)),
        }
    }

    /// Serves `key` from the next handshake on.
    pub fn replace(&self, key: CertifiedKey) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = Arc::new(key);
    }

    /// The certificate now served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A rustls server configuration (TLS 1.2 and 1.3, aws-lc-rs, HTTP/2 and HTTP/1.1) serving `certificate`.
pub fn server_config(
    certificate: Arc<ReloadingCertificate>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn loads_a_matching_pair() {
        let (cert, key) = pair("a.example");
        certified_key(cert.as_bytes(), key.as_bytes()).expect("loads");
    }

    #[test]
    fn refuses_a_key_of_another_certificate() {
        let (cert, _) = pair("a.example");
        let (_, other_key) = pair("b.example");
        let err = certified_key(cert.as_bytes(), other_key.as_bytes()).expect_err("mismatch");
        assert!(matches!(err, TlsError::Mismatch(_)), "{err}");
    }

    #[test]
    fn refuses_empty_and_garbage_files() {
        let (cert, key) = pair("a.example");
        assert!(matches!(
            certified_key(b"", key.as_bytes()),
            Err(TlsError::NoCertificate(_))
        ));
        assert!(matches!(
            certified_key(cert.as_bytes(), b"not a key"),
            Err(TlsError::NoKey(_))
        ));
    }
}
