//! One module per subcommand. Each exposes `Args` (clap) and `run(Args)`.
pub mod attach;
pub mod attest;
pub mod completion;
pub mod digest;
pub mod gate;
pub mod generate_key_pair;
pub mod identity_flags;
pub mod policy;
pub mod referrers;
pub mod sbom;
pub mod sign;
pub mod signer_flags;
pub mod verify;
pub mod verify_attestation;
pub mod verify_bundle;
pub mod version;
