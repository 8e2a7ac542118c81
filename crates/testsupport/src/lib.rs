//! Test support for kibaship: real components started on loopback for tests, benchmarks and `make demo`.
//!
//! - [`registry`]: Debian's `docker-registry` (CNCF distribution 2.8) in plain HTTP, HTTPS + basic auth and
//!   HTTPS + token auth modes, and go-containerregistry's registry with the OCI referrers API (the
//!   `ggcr-registry` peer from `make peers`).
//! - [`tokenserver`]: the token server the registry's `auth: token` mode trusts.
//! - [`faultproxy`]: a fault-injecting HTTP proxy (429 + Retry-After, 503, resets, slow or truncated bodies).
//! - [`fixtures`]: fixture images built without a Docker engine and pushed to a test registry.
//! - [`sigstore`]: a private Sigstore (OIDC issuer, Fulcio, CT log, TSA, Rekor v2, optionally Rekor v1) from the Go peers.
//! - [`kube`]: a real kube-apiserver (the `kube-apiserver` peer) on Debian's etcd, with `kubectl`, for webhook
//!   and manifest tests.
//! - [`cluster`]: a real one-node Kubernetes cluster (kubelet, containerd, kube-proxy, bridge CNI) that runs Pods,
//!   one per host, torn down on every exit path.
//! - [`admission`]: our admission webhook deployed in that cluster as `deploy/` ships it.
//! - [`buildkit`]: a real BuildKit daemon (the `buildkit` peer) with registry mirrors, on a unix socket.
//! - [`railpack_build`]: the images a real Railpack build pulls (frontend, base stand-ins, SBOM scanner), pushed
//!   to a test registry that buildkitd mirrors `ghcr.io` and `docker.io` to.
//! - [`peers`]: where the pinned Go-built peers (cosign, crane, oras, ...) live in the cache.
//!
//! Everything here is blocking and runs its own threads and processes, so it works from `#[test]` and from
//! inside `#[tokio::test]` alike. See `docs/registry-harness.md`.

pub mod admission;
pub mod buildkit;
pub mod cluster;
mod error;
pub mod faultproxy;
pub mod fixtures;
mod http;
pub mod kube;
mod loopback;
mod oci_layout;
pub mod peers;
mod pki;
mod ports;
mod process;
pub mod railpack_build;
pub mod registry;
pub mod sigstore;
pub mod tokenserver;

pub use error::HarnessError;
pub use pki::{ServerPki, server_pki};
pub use process::process_alive;
pub use process::workspace_binary;
