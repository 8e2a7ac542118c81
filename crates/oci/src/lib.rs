//! kibaship's OCI registry client: the one client signing, SBOM referrers, the Tekton steps, the admission
//! webhook and the audit CLI share.
//!
//! - [`Reference`]: image references parsed and normalised exactly as docker/distribution does.
//! - [`RegistryClient`]: built once from a [`ClientConfig`], cheap to clone; async; one keep-alive HTTP/1.1
//!   pool; per-registry concurrency limit; token cache per (registry, scope); retries with backoff.
//!   [`RegistryClient::resolve_digest`], manifests and blobs with size limits and digest checks, tag listing,
//!   and OCI 1.1 referrers ([`RegistryClient::list_referrers`], [`RegistryClient::attach_artifact`]) with the
//!   tag-schema fallback.
//! - [`Digest`], [`manifest`] types and [`Platform`] selection are pure and do no I/O.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kibaship_oci::Error> {
//! use kibaship_oci::{ClientConfig, Reference, RegistryClient};
//! let client = RegistryClient::new(ClientConfig::default())?;
//! let image = Reference::parse("ghcr.io/acme/app:1.2.3")?;
//! let resolved = client.resolve_digest(&image, Some(&"linux/arm64".parse().expect("platform"))).await?;
//! println!("{image}@{}", resolved.digest);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod challenge;
mod client;
pub mod credentials;
pub mod digest;
pub mod duration;
mod error;
pub mod manifest;
pub mod reference;
mod referrers;
pub mod retry;
pub mod tls;

pub use client::{
    BlobUpload, ClientConfig, DEFAULT_MAX_MANIFEST_BYTES, Manifest, PushedManifest, RegistryClient,
    Resolved,
};
pub use credentials::Credential;
pub use digest::Digest;
pub use error::Error;
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Platform};
pub use reference::{Reference, ReferenceError};
pub use referrers::{
    Artifact, Attached, MAX_REFERRERS, MAX_REFERRERS_BYTES, Referrers, ReferrersSource,
    filter_by_artifact_type,
};
pub use retry::RetryPolicy;
