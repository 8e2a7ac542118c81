//! Public keys (from SubjectPublicKeyInfo DER) and signature checks on aws-lc-rs.

use std::sync::OnceLock;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};

use crate::der::{self, Reader};

/// A hash function used by a signature scheme or a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    pub(crate) fn aws(self) -> &'static digest::Algorithm {
        match self {
            HashAlgorithm::Sha256 => &digest::SHA256,
            HashAlgorithm::Sha384 => &digest::SHA384,
            HashAlgorithm::Sha512 => &digest::SHA512,
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.aws(), data).as_ref().to_vec()
    }

    /// An incremental hasher, for data streamed in chunks (a file too large to hold).
    pub fn hasher(self) -> Hasher {
        Hasher(digest::Context::new(self.aws()))
    }

    /// The digest length in bytes.
    pub fn output_len(self) -> usize {
        self.aws().output_len()
    }

    /// The name used in `--digest` strings and in-toto subjects (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    fn index(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 0,
            HashAlgorithm::Sha384 => 1,
            HashAlgorithm::Sha512 => 2,
        }
    }

    pub(crate) fn from_der_oid(oid: &[u8]) -> Option<Self> {
        match oid {
            OID_SHA256 => Some(HashAlgorithm::Sha256),
            OID_SHA384 => Some(HashAlgorithm::Sha384),
            OID_SHA512 => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }
}

/// An incremental hash ([`HashAlgorithm::hasher`]).
pub struct Hasher(digest::Context);

impl Hasher {
    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything added.
    pub fn finish(self) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}

pub(crate) const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
pub(crate) const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
pub(crate) const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
// Signature algorithm identifiers.
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
const OID_RSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_RSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_RSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];

/// The kind of a public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KeyKind {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// ECDSA on NIST P-521 (cosign signs with such keys over SHA-512).
    EcdsaP521,
    /// Ed25519.
    Ed25519,
    /// RSA with PKCS#1 v1.5 signatures.
    RsaPkcs1,
    /// RSA with PSS signatures.
    RsaPss,
}

impl KeyKind {
    /// The hash a signature by this key uses unless told otherwise.
    pub fn default_hash(self) -> HashAlgorithm {
        match self {
            KeyKind::EcdsaP384 => HashAlgorithm::Sha384,
            KeyKind::EcdsaP521 => HashAlgorithm::Sha512,
            _ => HashAlgorithm::Sha256,
        }
    }
}

/// Why a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The SubjectPublicKeyInfo is not DER.
    #[error("public key is not a valid SubjectPublicKeyInfo: {0}")]
    Der(#[from] der::DerError),
    /// An algorithm or curve we do not verify.
    #[error("unsupported public key algorithm or curve")]
    Unsupported,
    /// aws-lc-rs rejected the key bytes.
    #[error("public key rejected: {0}")]
    Rejected(String),
    /// The PEM text holds no readable `PUBLIC KEY` block.
    #[error("public key PEM: {0}")]
    Pem(#[from] crate::pem::PemError),
}

/// A verification key, parsed once, usable with each hash its scheme allows.
pub struct PublicKey {
    kind: KeyKind,
    spki: Vec<u8>,
    parsed: [OnceLock<Option<ParsedPublicKey>>; 3],
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kind", &self.kind)
            .finish()
    }
}

impl Clone for PublicKey {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            spki: self.spki.clone(),
            parsed: Default::default(),
        }
    }
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo. RSA keys verify PKCS#1 v1.5 unless `rsa_pss` is set.
    pub fn from_spki(spki: &[u8], rsa_pss: bool) -> Result<Self, KeyError> {
        let tlv = der::parse_single(spki, der::TAG_SEQUENCE, "SubjectPublicKeyInfo")?;
        let mut r = Reader::new(tlv.content, "SubjectPublicKeyInfo");
        let mut alg = r.nested(der::TAG_SEQUENCE)?;
        let oid = alg.read_oid()?;
        let kind = match oid {
            OID_EC_PUBLIC_KEY => match alg.read_oid()? {
                OID_P256 => KeyKind::EcdsaP256,
                OID_P384 => KeyKind::EcdsaP384,
                OID_P521 => KeyKind::EcdsaP521,
                _ => return Err(KeyError::Unsupported),
            },
            OID_ED25519 => KeyKind::Ed25519,
            OID_RSA if rsa_pss => KeyKind::RsaPss,
            OID_RSA => KeyKind::RsaPkcs1,
            _ => return Err(KeyError::Unsupported),
        };
        r.read(der::TAG_BIT_STRING)?;
        r.finish()?;
        let key = Self {
            kind,
            spki: spki.to_vec(),
            parsed: Default::default(),
        };
        // Reject unusable keys now rather than at first use.
        key.parsed(kind.default_hash())?;
        Ok(key)
    }

    /// Parses a bare PKCS#1 `RSAPublicKey` (some CT log keys are published this way).
    pub fn from_pkcs1_rsa(der_bytes: &[u8], rsa_pss: bool) -> Result<Self, KeyError> {
        // Wrap it into a SubjectPublicKeyInfo so that one code path handles every key.
        let mut alg = der::encode(der::TAG_OID, OID_RSA);
        alg.extend_from_slice(&[der::TAG_NULL, 0]);
        let mut content = der::encode(der::TAG_SEQUENCE, &alg);
        let mut bits = vec![0u8];
        bits.extend_from_slice(der_bytes);
        content.extend_from_slice(&der::encode(der::TAG_BIT_STRING, &bits));
        Self::from_spki(&der::encode(der::TAG_SEQUENCE, &content), rsa_pss)
    }

    /// Parses a PEM `PUBLIC KEY` block.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der_bytes = crate::pem::decode(pem, "PUBLIC KEY")?;
        Self::from_spki(&der_bytes, false)
    }

    /// The key kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    fn algorithm(&self, hash: HashAlgorithm) -> Option<&'static dyn VerificationAlgorithm> {
        use HashAlgorithm::*;
        Some(match (self.kind, hash) {
            (KeyKind::EcdsaP256, Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
            (KeyKind::EcdsaP256, Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
            (KeyKind::EcdsaP256, Sha512) => &signature::ECDSA_P256_SHA512_ASN1,
            (KeyKind::EcdsaP384, Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
            (KeyKind::EcdsaP384, Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
            (KeyKind::EcdsaP384, Sha512) => &signature::ECDSA_P384_SHA512_ASN1,
            (KeyKind::EcdsaP521, Sha256) => &signature::ECDSA_P521_SHA256_ASN1,
            (KeyKind::EcdsaP521, Sha384) => &signature::ECDSA_P521_SHA384_ASN1,
            (KeyKind::EcdsaP521, Sha512) => &signature::ECDSA_P521_SHA512_ASN1,
            (KeyKind::Ed25519, Sha512) | (KeyKind::Ed25519, Sha256) => &signature::ED25519,
            (KeyKind::Ed25519, Sha384) => return None,
            (KeyKind::RsaPkcs1, Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (KeyKind::RsaPkcs1, Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
            (KeyKind::RsaPkcs1, Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
            (KeyKind::RsaPss, Sha256) => &signature::RSA_PSS_2048_8192_SHA256,
            (KeyKind::RsaPss, Sha384) => &signature::RSA_PSS_2048_8192_SHA384,
            (KeyKind::RsaPss, Sha512) => &signature::RSA_PSS_2048_8192_SHA512,
        })
    }

    fn parsed(&self, hash: HashAlgorithm) -> Result<&ParsedPublicKey, KeyError> {
        let alg = self.algorithm(hash).ok_or(KeyError::Unsupported)?;
        self.parsed[hash.index()]
            .get_or_init(|| ParsedPublicKey::new(alg, &self.spki).ok())
            .as_ref()
            .ok_or_else(|| KeyError::Rejected(format!("{:?} key does not parse", self.kind)))
    }

    /// Verifies `sig` over `message` with the key's default hash (Ed25519: pure Ed25519).
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        self.verify_with(self.kind.default_hash(), message, sig)
    }

    /// Verifies `sig` over `message`, hashing with `hash`.
    pub fn verify_with(&self, hash: HashAlgorithm, message: &[u8], sig: &[u8]) -> bool {
        match self.parsed(hash) {
            Ok(k) => k.verify_sig(message, sig).is_ok(),
            Err(_) => false,
        }
    }

    /// Verifies `sig` over an already computed digest (not possible for Ed25519).
    pub fn verify_prehashed(&self, hash: HashAlgorithm, digest_bytes: &[u8], sig: &[u8]) -> bool {
        if self.kind == KeyKind::Ed25519 {
            return false;
        }
        let Ok(d) = digest::Digest::import_less_safe(digest_bytes, hash.aws()) else {
            return false;
        };
        match self.parsed(hash) {
            Ok(k) => k.verify_digest_sig(&d, sig).is_ok(),
            Err(_) => false,
        }
    }
}

/// Maps an X.509 signature algorithm OID to its hash (ECDSA and RSA PKCS#1 v1.5; Ed25519 has none).
pub(crate) fn signature_hash(oid: &[u8]) -> Option<Option<HashAlgorithm>> {
    Some(match oid {
        OID_ECDSA_SHA256 | OID_RSA_SHA256 => Some(HashAlgorithm::Sha256),
        OID_ECDSA_SHA384 | OID_RSA_SHA384 => Some(HashAlgorithm::Sha384),
        OID_ECDSA_SHA512 | OID_RSA_SHA512 => Some(HashAlgorithm::Sha512),
        OID_ED25519 => None,
        _ => return None,
    })
}

/// Verifies an X.509-style signature given the signature algorithm OID.
pub(crate) fn verify_x509_signature(
    key: &PublicKey,
    sig_alg_oid: &[u8],
    message: &[u8],
    sig: &[u8],
) -> bool {
    match signature_hash(sig_alg_oid) {
        Some(Some(hash)) => {
            let key_ok = matches!(
                (key.kind, sig_alg_oid),
                (
                    KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521,
                    OID_ECDSA_SHA256 | OID_ECDSA_SHA384 | OID_ECDSA_SHA512
                ) | (
                    KeyKind::RsaPkcs1,
                    OID_RSA_SHA256 | OID_RSA_SHA384 | OID_RSA_SHA512
                )
            );
            key_ok && key.verify_with(hash, message, sig)
        }
        Some(None) => key.kind == KeyKind::Ed25519 && key.verify(message, sig),
        None => false,
    }
}
