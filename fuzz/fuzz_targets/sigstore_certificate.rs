//! `Certificate::from_der` and every accessor a verifier uses on an untrusted certificate.
#![no_main]
use kibaship_sigstore::{Certificate, CertificateIdentity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cert) = Certificate::from_der(data) else {
        return;
    };
    let _ = cert.is_self_issued();
    let _ = cert.is_signed_by(&cert);
    let _ = cert.valid_at(1_748_736_000);
    let _ = cert.oidc_issuer();
    for n in 1..=22 {
        let _ = cert.fulcio_extension(n);
    }
    let _ = CertificateIdentity::exact("a@example.com", "https://issuer.example").check(&cert);
});
