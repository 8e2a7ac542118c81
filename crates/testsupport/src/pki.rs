//! A throwaway PKI for the TLS registry modes: a CA, a server certificate for 127.0.0.1/localhost, and the
//! token-signing certificate the registry's `auth: token` trusts through its `rootcertbundle`.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::HarnessError;

/// Certificates and keys written to a directory.
#[derive(Debug, Clone)]
pub(crate) struct TestPki {
    /// PEM of the CA certificate (the bundle clients trust).
    pub(crate) ca_pem: PathBuf,
    /// DER of the CA certificate.
    pub(crate) ca_der: Vec<u8>,
    /// PEM chain of the server certificate (leaf, then CA).
    pub(crate) server_cert_pem: PathBuf,
    /// PEM (PKCS#8) of the server key.
    pub(crate) server_key_pem: PathBuf,
    /// DER of the server certificate and its PKCS#8 key, for our own TLS servers.
    pub(crate) server_cert_der: Vec<u8>,
    pub(crate) server_key_der: Vec<u8>,
    /// DER of the token-signing certificate (sent in the JWT `x5c` header) and its PKCS#8 P-256 key.
    pub(crate) token_cert_der: Vec<u8>,
    pub(crate) token_key_der: Vec<u8>,
}

fn cert_err(e: rcgen::Error) -> HarnessError {
    HarnessError::Certificates(e.to_string())
}

fn write(path: &Path, contents: &[u8]) -> Result<(), HarnessError> {
    fs::write(path, contents)
        .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))
}

/// A fresh CA and a server certificate for 127.0.0.1 and localhost, as PEM files, for tests of our own TLS
/// servers and clients.
#[derive(Debug, Clone)]
pub struct ServerPki {
    /// The CA certificate (the bundle a client trusts).
    pub ca_pem: PathBuf,
    /// The server's certificate chain (leaf, then CA).
    pub cert_pem: PathBuf,
    /// The server's PKCS#8 private key.
    pub key_pem: PathBuf,
}

/// Generates a [`ServerPki`] into `dir` (ECDSA P-256; `ca.pem`, `server.pem`, `server.key` and the files of the
/// registry's token signer).
pub fn server_pki(dir: &Path) -> Result<ServerPki, HarnessError> {
    let pki = TestPki::generate(dir)?;
    Ok(ServerPki {
        ca_pem: pki.ca_pem,
        cert_pem: pki.server_cert_pem,
        key_pem: pki.server_key_pem,
    })
}

impl TestPki {
    /// Generates a fresh PKI (ECDSA P-256 everywhere) into `dir`.
    pub(crate) fn generate(dir: &Path) -> Result<Self, HarnessError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kibaship test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(cert_err)?;
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(cert_err)?;

        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .map_err(cert_err)?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "kibaship test registry");
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().map_err(cert_err)?;
        let server_cert = server_params
            .signed_by(&server_key, &ca)
            .map_err(cert_err)?;

        let mut token_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        token_params
            .distinguished_name
            .push(DnType::CommonName, "kibaship test token signer");
        token_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let token_key = KeyPair::generate().map_err(cert_err)?;
        let token_cert = token_params.signed_by(&token_key, &ca).map_err(cert_err)?;

        let pki = TestPki {
            ca_pem: dir.join("ca.pem"),
            ca_der: ca.der().to_vec(),
            server_cert_pem: dir.join("server.pem"),
            server_key_pem: dir.join("server.key"),
            server_cert_der: server_cert.der().to_vec(),
            server_key_der: server_key.serialize_der(),
            token_cert_der: token_cert.der().to_vec(),
            token_key_der: token_key.serialize_der(),
        };
        write(&pki.ca_pem, ca.pem().as_bytes())?;
        write(
            &pki.server_cert_pem,
            format!("{}{}", server_cert.pem(), ca.pem()).as_bytes(),
        )?;
        write(&pki.server_key_pem, server_key.serialize_pem().as_bytes())?;
        write(&dir.join("token-signer.pem"), token_cert.pem().as_bytes())?;
        write(
            &dir.join("token-signer.key"),
            token_key.serialize_pem().as_bytes(),
        )?;
        Ok(pki)
    }

    /// Loads a PKI written by [`TestPki::generate`] (for the detached token server).
    pub(crate) fn load(dir: &Path) -> Result<Self, HarnessError> {
        let read_pem = |name: &str| -> Result<Vec<u8>, HarnessError> {
            let path = dir.join(name);
            let text = fs::read_to_string(&path)
                .map_err(|e| HarnessError::io(format!("reading {}", path.display()), e))?;
            kibaship_sigstore::pem::decode_first(text.as_bytes())
                .map(|block| block.der)
                .map_err(|e| HarnessError::State {
                    dir: dir.to_path_buf(),
                    reason: format!("{name}: {e}"),
                })
        };
        Ok(TestPki {
            ca_pem: dir.join("ca.pem"),
            ca_der: read_pem("ca.pem")?,
            server_cert_pem: dir.join("server.pem"),
            server_key_pem: dir.join("server.key"),
            server_cert_der: read_pem("server.pem")?,
            server_key_der: read_pem("server.key")?,
            token_cert_der: read_pem("token-signer.pem")?,
            token_key_der: read_pem("token-signer.key")?,
        })
    }
}
