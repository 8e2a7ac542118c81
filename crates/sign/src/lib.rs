//! cosign-compatible signing material.
//!
//! - [`keys`]: key pairs in cosign's encrypted private-key format (scrypt + NaCl secretbox over PKCS#8, PEM
//!   `ENCRYPTED SIGSTORE PRIVATE KEY`, and the older `ENCRYPTED COSIGN PRIVATE KEY`), plain PKCS#8 / SEC1 /
//!   PKCS#1 imports as `cosign import-key-pair` takes them, and public keys as PEM `PUBLIC KEY`.
//! - [`payload`]: the simple-signing payload cosign signs for an image, byte for byte.
//!
//! Everything here is pure: callers read files and passwords and hand over bytes.

mod goodkey;
pub mod keys;
pub mod payload;

pub use keys::{KeyError, MAX_KEY_FILE_BYTES, SigningKey, is_encrypted_key_file};
pub use payload::{PayloadError, SimpleSigningPayload};
