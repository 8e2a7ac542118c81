//! Signing keys as cosign stores them.
//!
//! cosign writes private keys as PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (older releases: `ENCRYPTED COSIGN PRIVATE
//! KEY`) whose body is a JSON envelope: a scrypt key-derivation record, a NaCl secretbox (XSalsa20-Poly1305)
//! nonce, and the sealed PKCS#8 private key. `cosign import-key-pair` additionally takes plain PEM keys: PKCS#8
//! (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) and PKCS#1 (`RSA PRIVATE KEY`).
//!
//! The password is never stored, logged or put in an error.
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead as _, KeyInit as _};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::goodkey;
use kibaship_sigstore::HashAlgorithm;
use kibaship_sigstore::der;
use kibaship_sigstore::pem::{self, PemError};

/// PEM label cosign writes for encrypted private keys.
pub const SIGSTORE_PRIVATE_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label older cosign releases wrote; still read.
pub const COSIGN_PRIVATE_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// scrypt cost cosign's `generate-key-pair` writes (N = 2^16, r = 8, p = 1).
pub const SCRYPT_LOG_N: u8 = 16;
/// scrypt costs accepted on reading (N = 2^15, 2^16, 2^17), as go-securesystemslib accepts.
const ACCEPTED_LOG_N: [u8; 3] = [15, 16, 17];
/// RSA key sizes loaded (`import_pem` narrows them to 2048, 3072 and 4096 bits, as cosign imports them).
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// Labels of plain private keys `from_pem` reads.
const PLAIN_KEY_LABELS: [&str; 3] = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"];

const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const EC_PUBLIC_KEY_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const ED25519_OID: &[u8] = &[0x2b, 0x65, 0x70];
/// NIST P-224 (secp224r1): Go parses it, cosign's key policy then refuses it by name.
const P224_OID: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x21];

/// Why a key could not be read, decrypted or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM text itself is broken.
    #[error("key file: {0}")]
    Pem(#[from] PemError),
    /// A PEM block of a kind that holds no private key we can use.
    #[error(
        "unsupported private key: PEM block `{0}` (expected PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY or an encrypted cosign key)"
    )]
    UnsupportedLabel(String),
    /// The encrypted key's JSON envelope is malformed.
    #[error("encrypted key envelope: {0}")]
    Envelope(String),
    /// The envelope asks for a KDF or cipher cosign does not write.
    #[error("encrypted key uses {what} `{found}`, expected {expected}")]
    UnsupportedEncryption {
        /// Which field.
        what: &'static str,
        /// What the file says.
        found: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// Decryption failed: the password is wrong or the file was altered.
    #[error("could not decrypt the private key: wrong password, or the key file is corrupted")]
    Decrypt,
    /// The key material parses as no supported key type.
    #[error("{0}")]
    Unsupported(String),
    /// Key generation or signing failed inside the crypto library.
    #[error("crypto operation failed: {0}")]
    Crypto(&'static str),
    /// The key file is encrypted and no password was given.
    #[error("the private key is encrypted and no password was given")]
    PasswordRequired,
    /// The key file is larger than any key file.
    #[error("the key file is {size} bytes, larger than any key file ({MAX_KEY_FILE_BYTES} bytes)")]
    TooLarge {
        /// Its size.
        size: u64,
    },
    /// A key cosign's key policy refuses (curve, size, exponent, known weakness), worded as cosign words it.
    #[error("error validating {algorithm} key: {reason}")]
    Weak {
        /// `rsa` or `ecdsa`.
        algorithm: &'static str,
        /// Why, e.g. `key size not supported: 1024` or `ECDSA curve P-224 not allowed`.
        reason: String,
    },
}

/// Largest private-key file read: callers refuse larger files before reading them.
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Whether `pem_text` holds an encrypted cosign key (and so needs a password), as cosign decides it.
pub fn is_encrypted_key_file(pem_text: &[u8]) -> bool {
    String::from_utf8_lossy(pem_text).contains("-----BEGIN ENCRYPTED ")
}

/// The scrypt + secretbox envelope inside an encrypted cosign key (field names as cosign writes them).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cipher {
    name: String,
    nonce: String,
}

/// The kind of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on NIST P-256 with SHA-256 (cosign's default).
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    EcdsaP384,
    /// ECDSA on NIST P-521 with SHA-512.
    EcdsaP521,
    /// RSA PKCS#1 v1.5 with SHA-256, 2048 to 4096 bits.
    Rsa,
    /// Ed25519.
    Ed25519,
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key that can sign, with its PKCS#8 encoding kept (zeroised on drop) for re-encryption.
pub struct SigningKey {
    kind: KeyKind,
    pair: Pair,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SigningKey")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new ECDSA P-256 key, the kind `cosign generate-key-pair` makes.
    pub fn generate() -> Result<Self, KeyError> {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)
            .map_err(|_| KeyError::Crypto("generating a P-256 key"))?;
        let pkcs8 = pair
            .to_pkcs8v1()
            .map_err(|_| KeyError::Crypto("encoding a P-256 key as PKCS#8"))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// Reads an encrypted cosign key (`ENCRYPTED SIGSTORE PRIVATE KEY` or `ENCRYPTED COSIGN PRIVATE KEY`).
    pub fn from_encrypted_pem(pem_text: &[u8], password: &[u8]) -> Result<Self, KeyError> {
        let block = pem::decode_first(pem_text)?;
        if block.label != SIGSTORE_PRIVATE_KEY_LABEL && block.label != COSIGN_PRIVATE_KEY_LABEL {
            return Err(KeyError::UnsupportedLabel(block.label));
        }
        let envelope: Envelope = serde_json::from_slice(&block.der)
            .map_err(|e| KeyError::Envelope(format!("not the JSON cosign writes: {e}")))?;
        let plaintext = open_envelope(&envelope, password)?;
        Self::from_pkcs8(&plaintext).map_err(|err| match err {
            KeyError::Unsupported(reason) => KeyError::Unsupported(format!(
                "the decrypted key is not a PKCS#8 private key cosign can load ({reason})"
            )),
            other => other,
        })
    }

    /// Writes this key as cosign does: PEM `ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt N=2^16 r=8 p=1, a random
    /// 32-byte salt and 24-byte nonce.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<String, KeyError> {
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| KeyError::Crypto("random salt"))?;
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| KeyError::Crypto("random nonce"))?;
        let key = derive_key(password, &salt, SCRYPT_LOG_N, 8, 1)?;
        let cipher = XSalsa20Poly1305::new((&*key).into());
        let sealed = cipher
            .encrypt((&nonce).into(), self.pkcs8.as_slice())
            .map_err(|_| KeyError::Crypto("sealing the key"))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let envelope = Envelope {
            kdf: Kdf {
                name: "scrypt".into(),
                params: ScryptParams {
                    n: 1 << SCRYPT_LOG_N,
                    r: 8,
                    p: 1,
                },
                salt: b64.encode(salt),
            },
            cipher: Cipher {
                name: "nacl/secretbox".into(),
                nonce: b64.encode(nonce),
            },
            ciphertext: b64.encode(sealed),
        };
        let json = serde_json::to_vec(&envelope)
            .map_err(|_| KeyError::Crypto("encoding the key envelope"))?;
        Ok(pem::encode(SIGSTORE_PRIVATE_KEY_LABEL, &json))
    }

    /// Reads a private-key file as cosign does: an encrypted cosign key with `password` (which may be empty;
    /// [`KeyError::PasswordRequired`] without one), any other PEM key as [`SigningKey::from_pem`] reads it. Files
    /// over [`MAX_KEY_FILE_BYTES`] are refused.
    pub fn from_key_file(pem_text: &[u8], password: Option<&[u8]>) -> Result<Self, KeyError> {
        if pem_text.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(KeyError::TooLarge {
                size: pem_text.len() as u64,
            });
        }
        if is_encrypted_key_file(pem_text) {
            let password = password.ok_or(KeyError::PasswordRequired)?;
            Self::from_encrypted_pem(pem_text, password)
        } else {
            Self::from_pem(pem_text)
        }
    }

    /// Reads a plain PEM private key as `cosign import-key-pair` does: PKCS#8, SEC1 EC or PKCS#1 RSA.
    pub fn from_pem(pem_text: &[u8]) -> Result<Self, KeyError> {
        let block = pem::decode_first(pem_text).map_err(|err| match err {
            // Name the block kind rather than its (irrelevant) encoding problem, e.g. a PGP key block.
            PemError::BadBase64 { label, .. } if !PLAIN_KEY_LABELS.contains(&label.as_str()) => {
                KeyError::UnsupportedLabel(label)
            }
            other => KeyError::Pem(other),
        })?;
        match block.label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8(&Zeroizing::new(block.der)),
            "EC PRIVATE KEY" => {
                let der = Zeroizing::new(block.der);
                let pair = [
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                    &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
                ]
                .into_iter()
                .find_map(|alg| EcdsaKeyPair::from_private_key_der(alg, &der).ok())
                .ok_or_else(|| {
                    KeyError::Unsupported(
                        "error parsing ecdsa private key: not a P-256, P-384 or P-521 SEC1 key"
                            .into(),
                    )
                })?;
                let pkcs8 = pair
                    .to_pkcs8v1()
                    .map_err(|_| KeyError::Crypto("encoding an EC key as PKCS#8"))?;
                Self::from_pkcs8(pkcs8.as_ref())
            }
            "RSA PRIVATE KEY" => Self::from_pkcs8(&wrap_pkcs1_in_pkcs8(&block.der)),
            label if label.starts_with("ENCRYPTED ") => Err(KeyError::Unsupported(format!(
                "PEM block `{label}` is encrypted: give its password"
            ))),
            other => Err(KeyError::UnsupportedLabel(other.to_string())),
        }
    }

    /// Reads a PKCS#8 private key of any supported kind.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pkcs8 = Zeroizing::new(der.to_vec());
        for (kind, alg) in [
            (
                KeyKind::EcdsaP256,
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            ),
            (
                KeyKind::EcdsaP384,
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            ),
            (
                KeyKind::EcdsaP521,
                &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
            ),
        ] {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(alg, der) {
                return Ok(Self {
                    kind,
                    pair: Pair::Ecdsa(pair),
                    pkcs8,
                });
            }
        }
        if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
            let bits = goodkey::bit_length(
                pair.public_key()
                    .modulus()
                    .big_endian_without_leading_zero(),
            );
            if !RSA_BITS.contains(&bits) {
                return Err(KeyError::Weak {
                    algorithm: "rsa",
                    reason: format!("key size not supported: {bits}"),
                });
            }
            return Ok(Self {
                kind: KeyKind::Rsa,
                pair: Pair::Rsa(pair),
                pkcs8,
            });
        }
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(Self {
                kind: KeyKind::Ed25519,
                pair: Pair::Ed25519(pair),
                pkcs8,
            });
        }
        Err(KeyError::Unsupported(
            "unsupported private key: not an ECDSA P-256/P-384/P-521, RSA 2048-4096 or Ed25519 PKCS#8 key"
                .into(),
        ))
    }

    /// Reads a plain PEM private key as `cosign import-key-pair` does, refusing what it refuses with its
    /// reasons: the first PEM block must be `RSA PRIVATE KEY` (PKCS#1), `EC PRIVATE KEY` (SEC1) or `PRIVATE KEY`
    /// (PKCS#8); encrypted PEM (`ENCRYPTED PRIVATE KEY`, `Proc-Type: 4,ENCRYPTED`) is not decrypted; keys failing
    /// cosign's key policy ([`KeyError::Weak`]: ECDSA other than P-256/P-384/P-521, RSA other than 2048, 3072
    /// or 4096 bits, exponent other than 65537, small factors, ROCA) are refused. Ed25519 keys, which cosign
    /// imports, are refused too: cosign signs with them as Ed25519ph, which kibaship can neither sign nor
    /// verify, so an imported one would be unusable here.
    pub fn import_pem(pem_text: &[u8]) -> Result<Self, KeyError> {
        if pem_text.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(KeyError::TooLarge {
                size: pem_text.len() as u64,
            });
        }
        let text = String::from_utf8_lossy(pem_text);
        if text.contains("Proc-Type: 4,ENCRYPTED") {
            let algorithm = if text.contains("-----BEGIN EC PRIVATE KEY-----") {
                "ecdsa"
            } else {
                "rsa"
            };
            return Err(KeyError::Unsupported(format!(
                "error parsing {algorithm} private key: the PEM block is encrypted (Proc-Type: 4,ENCRYPTED), which cosign does not import; decrypt it first (openssl pkey -in KEY -out PLAIN)"
            )));
        }
        let block = pem::decode_first(pem_text).map_err(|err| match err {
            PemError::BadBase64 { label, .. } if !PLAIN_KEY_LABELS.contains(&label.as_str()) => {
                KeyError::UnsupportedLabel(label)
            }
            other => KeyError::Pem(other),
        })?;
        let key = match block.label.as_str() {
            "RSA PRIVATE KEY" => {
                refuse_weak_rsa(&block.der)
                    .map_err(|err| parse_error("error parsing rsa private key", err))?;
                Self::from_pkcs8(&wrap_pkcs1_in_pkcs8(&block.der))
                    .map_err(|err| parse_error("error parsing rsa private key", err))?
            }
            "EC PRIVATE KEY" => {
                refuse_disallowed_curve(ec_private_key_curve(&block.der))?;
                Self::from_pem(pem_text)?
            }
            "PRIVATE KEY" => {
                let algorithm = pkcs8_algorithm(&block.der);
                if let Some((oid, curve)) = algorithm {
                    if oid == ED25519_OID {
                        return Err(KeyError::Unsupported(
                            "Ed25519 keys are not imported: cosign signs with them as Ed25519ph, which kibaverify cannot sign or verify; use an ECDSA P-256, P-384, P-521 or RSA key".into(),
                        ));
                    }
                    if oid == EC_PUBLIC_KEY_OID {
                        refuse_disallowed_curve(curve)?;
                    }
                    if oid == RSA_ENCRYPTION_OID {
                        if let Some(pkcs1) = pkcs8_private_key(&block.der) {
                            refuse_weak_rsa(pkcs1).map_err(|err| {
                                parse_error("error parsing pkcs #8 private key", err)
                            })?;
                        }
                    }
                }
                Self::from_pkcs8(&Zeroizing::new(block.der))
                    .map_err(|err| parse_error("error parsing pkcs #8 private key", err))?
            }
            label if label.starts_with("ENCRYPTED ") => {
                return Err(KeyError::Unsupported(format!(
                    "unsupported private key: PEM block `{label}` is encrypted, which cosign does not import; decrypt it first (openssl pkey -in KEY -out PLAIN)"
                )));
            }
            other => return Err(KeyError::UnsupportedLabel(other.to_string())),
        };
        Ok(key)
    }

    /// The hash this key signs over, as cosign signs with it: SHA-384 for P-384, SHA-512 for P-521, SHA-256
    /// otherwise.
    pub fn hash_algorithm(&self) -> HashAlgorithm {
        match self.kind {
            KeyKind::EcdsaP384 => HashAlgorithm::Sha384,
            KeyKind::EcdsaP521 => HashAlgorithm::Sha512,
            _ => HashAlgorithm::Sha256,
        }
    }

    /// Signs an already computed digest (of [`SigningKey::hash_algorithm`]), as [`SigningKey::sign`] signs the
    /// message it hashes: a blob streamed through a hasher is signed without holding it. Ed25519 keys cannot.
    pub fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, KeyError> {
        let algorithm = match self.hash_algorithm() {
            HashAlgorithm::Sha256 => &aws_lc_rs::digest::SHA256,
            HashAlgorithm::Sha384 => &aws_lc_rs::digest::SHA384,
            HashAlgorithm::Sha512 => &aws_lc_rs::digest::SHA512,
        };
        let digest = aws_lc_rs::digest::Digest::import_less_safe(digest, algorithm)
            .map_err(|_| KeyError::Crypto("the digest does not fit the key's hash"))?;
        match &self.pair {
            Pair::Ecdsa(pair) => pair
                .sign_digest(&digest)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Crypto("ECDSA signing")),
            Pair::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign_digest(&signature::RSA_PKCS1_SHA256, &digest, &mut sig)
                    .map_err(|_| KeyError::Crypto("RSA signing"))?;
                Ok(sig)
            }
            Pair::Ed25519(_) => Err(KeyError::Unsupported(
                "signing with Ed25519 keys (cosign signs as Ed25519ph) is not supported yet".into(),
            )),
        }
    }

    /// What kind of key this is.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// For an RSA key, the size of its modulus in bits (what Rekor v2's key details name); `None` otherwise.
    pub fn rsa_modulus_bits(&self) -> Option<usize> {
        match &self.pair {
            Pair::Rsa(pair) => Some(pair.public_modulus_len() * 8),
            _ => None,
        }
    }

    /// The public key as DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Result<Vec<u8>, KeyError> {
        let der = match &self.pair {
            Pair::Ecdsa(pair) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
            Pair::Rsa(pair) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
            Pair::Ed25519(pair) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
        };
        der.map_err(|_| KeyError::Crypto("encoding the public key"))
    }

    /// The public key as PEM `PUBLIC KEY`, as cosign writes `cosign.pub`.
    pub fn public_key_pem(&self) -> Result<String, KeyError> {
        Ok(pem::encode("PUBLIC KEY", &self.public_key_der()?))
    }

    /// Signs `message` as cosign does for this key kind: ECDSA (ASN.1 DER signature) over the curve's hash,
    /// RSA PKCS#1 v1.5 over SHA-256. Ed25519 keys load, but cosign signs with them as Ed25519ph, which the
    /// crypto library here lacks, so signing with one is refused rather than producing a signature cosign
    /// would not accept.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match &self.pair {
            Pair::Ecdsa(pair) => pair
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Crypto("ECDSA signing")),
            Pair::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| KeyError::Crypto("RSA signing"))?;
                Ok(sig)
            }
            Pair::Ed25519(_) => Err(KeyError::Unsupported(
                "signing with Ed25519 keys (cosign signs as Ed25519ph) is not supported yet".into(),
            )),
        }
    }
}

fn open_envelope(envelope: &Envelope, password: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if envelope.kdf.name != "scrypt" {
        return Err(KeyError::UnsupportedEncryption {
            what: "kdf",
            found: envelope.kdf.name.clone(),
            expected: "scrypt",
        });
    }
    if envelope.cipher.name != "nacl/secretbox" {
        return Err(KeyError::UnsupportedEncryption {
            what: "cipher",
            found: envelope.cipher.name.clone(),
            expected: "nacl/secretbox",
        });
    }
    let ScryptParams { n, r, p } = envelope.kdf.params;
    let log_n = ACCEPTED_LOG_N
        .into_iter()
        .find(|log_n| 1u64 << log_n == n)
        .filter(|_| r == 8 && p == 1)
        .ok_or_else(|| KeyError::UnsupportedEncryption {
            what: "scrypt parameters",
            found: format!("N={n} r={r} p={p}"),
            expected: "N of 32768, 65536 or 131072 with r=8, p=1",
        })?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let field = |name: &str, value: &str| {
        b64.decode(value)
            .map_err(|e| KeyError::Envelope(format!("`{name}` is not base64: {e}")))
    };
    let salt = field("kdf.salt", &envelope.kdf.salt)?;
    let nonce = field("cipher.nonce", &envelope.cipher.nonce)?;
    let nonce: [u8; 24] = nonce.try_into().map_err(|n: Vec<u8>| {
        KeyError::Envelope(format!("`cipher.nonce` is {} bytes, expected 24", n.len()))
    })?;
    let sealed = field("ciphertext", &envelope.ciphertext)?;
    let key = derive_key(password, &salt, log_n, r, p)?;
    let cipher = XSalsa20Poly1305::new((&*key).into());
    cipher
        .decrypt((&nonce).into(), sealed.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| KeyError::Decrypt)
}

fn derive_key(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let params =
        scrypt::Params::new(log_n, r, p, 32).map_err(|_| KeyError::Crypto("scrypt parameters"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, salt, &params, key.as_mut())
        .map_err(|_| KeyError::Crypto("scrypt"))?;
    Ok(key)
}

/// Prefixes a parse failure's reason as cosign words it (`error parsing rsa private key: ...`); policy refusals
/// keep their own wording.
fn parse_error(what: &str, err: KeyError) -> KeyError {
    match err {
        KeyError::Unsupported(reason) => KeyError::Unsupported(format!("{what}: {reason}")),
        other => other,
    }
}

/// Refuses an EC key on a curve Go parses but cosign's key policy forbids (P-224), by name.
fn refuse_disallowed_curve(curve: Option<&[u8]>) -> Result<(), KeyError> {
    if curve == Some(P224_OID) {
        return Err(KeyError::Weak {
            algorithm: "ecdsa",
            reason: "ECDSA curve P-224 not allowed".into(),
        });
    }
    Ok(())
}

/// Refuses a PKCS#1 `RSAPrivateKey` whose public numbers cosign's key policy refuses (checked before the
/// crypto library, which has its own narrower limits, sees the key). Unparsable keys pass here and fail there.
fn refuse_weak_rsa(pkcs1: &[u8]) -> Result<(), KeyError> {
    let mut outer = der::Reader::new(pkcs1, "RSAPrivateKey");
    let Ok(mut key) = outer.nested(der::TAG_SEQUENCE) else {
        return Ok(());
    };
    let (Ok(_version), Ok(modulus), Ok(exponent), Ok(d), Ok(p), Ok(q)) = (
        key.read(der::TAG_INTEGER),
        key.read(der::TAG_INTEGER),
        key.read(der::TAG_INTEGER),
        key.read(der::TAG_INTEGER),
        key.read(der::TAG_INTEGER),
        key.read(der::TAG_INTEGER),
    ) else {
        return Ok(());
    };
    // Go parses the key first (cosign's error is then a parse error), its key policy comes after.
    if let Some(reason) =
        goodkey::go_private_key_weakness(modulus.content, d.content, p.content, q.content)
    {
        return Err(KeyError::Unsupported(reason.into()));
    }
    match goodkey::rsa_weakness(modulus.content, exponent.content) {
        Some(reason) => Err(KeyError::Weak {
            algorithm: "rsa",
            reason,
        }),
        None => Ok(()),
    }
}

/// The private key inside a PKCS#8 `PrivateKeyInfo` (its `privateKey` OCTET STRING).
fn pkcs8_private_key(pkcs8: &[u8]) -> Option<&[u8]> {
    let mut outer = der::Reader::new(pkcs8, "PrivateKeyInfo");
    let mut info = outer.nested(der::TAG_SEQUENCE).ok()?;
    info.read(der::TAG_INTEGER).ok()?;
    info.read(der::TAG_SEQUENCE).ok()?;
    Some(info.read(der::TAG_OCTET_STRING).ok()?.content)
}

/// The named curve of a SEC1 `ECPrivateKey` (`[0] parameters`), if it names one.
fn ec_private_key_curve(sec1: &[u8]) -> Option<&[u8]> {
    let mut outer = der::Reader::new(sec1, "ECPrivateKey");
    let mut key = outer.nested(der::TAG_SEQUENCE).ok()?;
    key.read(der::TAG_INTEGER).ok()?;
    key.read(der::TAG_OCTET_STRING).ok()?;
    let parameters = key.read_optional(0xa0).ok()??;
    der::Reader::new(parameters.content, "ECPrivateKey parameters")
        .read_oid()
        .ok()
}

/// The algorithm OID of a PKCS#8 `PrivateKeyInfo` and its parameter OID (an EC key's curve), if present.
fn pkcs8_algorithm(pkcs8: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let mut outer = der::Reader::new(pkcs8, "PrivateKeyInfo");
    let mut info = outer.nested(der::TAG_SEQUENCE).ok()?;
    info.read(der::TAG_INTEGER).ok()?;
    let mut algorithm = info.nested(der::TAG_SEQUENCE).ok()?;
    let oid = algorithm.read_oid().ok()?;
    let parameter = algorithm.read_oid().ok();
    Some((oid, parameter))
}

/// Wraps a PKCS#1 `RSAPrivateKey` in a PKCS#8 `PrivateKeyInfo` (version 0, rsaEncryption, NULL parameters).
fn wrap_pkcs1_in_pkcs8(pkcs1: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut algorithm = der::encode(der::TAG_OID, RSA_ENCRYPTION_OID);
    algorithm.extend(der::encode(der::TAG_NULL, &[]));
    let mut body = der::encode(der::TAG_INTEGER, &[0]);
    body.extend(der::encode(der::TAG_SEQUENCE, &algorithm));
    body.extend(der::encode(der::TAG_OCTET_STRING, pkcs1));
    Zeroizing::new(der::encode(der::TAG_SEQUENCE, &body))
}

#[cfg(test)]
mod key_file_tests {
    use super::*;

    #[test]
    fn from_key_file_reads_encrypted_and_plain_keys_and_names_what_is_missing() {
        let key = SigningKey::generate().expect("generate");
        let encrypted = key.to_encrypted_pem(b"pw").expect("encrypt");
        assert!(is_encrypted_key_file(encrypted.as_bytes()));
        let loaded =
            SigningKey::from_key_file(encrypted.as_bytes(), Some(b"pw")).expect("right password");
        assert_eq!(
            loaded.public_key_pem().expect("pem"),
            key.public_key_pem().expect("pem")
        );
        assert!(matches!(
            SigningKey::from_key_file(encrypted.as_bytes(), None),
            Err(KeyError::PasswordRequired)
        ));
        assert!(matches!(
            SigningKey::from_key_file(encrypted.as_bytes(), Some(b"wrong")),
            Err(KeyError::Decrypt)
        ));
        let plain = pem::encode("PRIVATE KEY", &key.pkcs8);
        assert!(!is_encrypted_key_file(plain.as_bytes()));
        let loaded = SigningKey::from_key_file(plain.as_bytes(), None).expect("plain key");
        assert_eq!(
            loaded.public_key_pem().expect("pem"),
            key.public_key_pem().expect("pem")
        );
        let huge = vec![b'A'; MAX_KEY_FILE_BYTES as usize + 1];
        assert!(matches!(
            SigningKey::from_key_file(&huge, Some(b"pw")),
            Err(KeyError::TooLarge { .. })
        ));
    }
}
