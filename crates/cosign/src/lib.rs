//! cosign's signature layouts as they sit in an OCI registry.
//!
//! - [`legacy`]: the `sha256-<hex>.sig` and `sha256-<hex>.att` tags cosign (and every cluster verifier still in
//!   use) reads: one OCI manifest whose layers are signed payloads, each carrying its signature, certificate,
//!   chain and Rekor bundle in annotations. Pure: building and reading manifests and layers, with bounds on
//!   everything an attacker could inflate.
//!
//! Fetching and pushing go through `kibaship-oci`; checking signatures goes through `kibaship-sigstore`.

pub mod legacy;

pub use legacy::{LayoutError, RekorBundle, SignatureLayer};
