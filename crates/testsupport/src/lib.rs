//! Test support for kibaship: real components started on loopback for tests, benchmarks and `make demo`.
//!
//! - [`registry`]: Debian's `docker-registry` (CNCF distribution 2.8) in plain HTTP, HTTPS + basic auth and
//!   HTTPS + token auth modes, and crane's registry (with the OCI referrers API) when the peer is built.
//! - [`tokenserver`]: the token server the registry's `auth: token` mode trusts.
//! - [`faultproxy`]: a fault-injecting HTTP proxy (429 + Retry-After, 503, resets, slow or truncated bodies).
//! - [`fixtures`]: fixture images built without a Docker engine and pushed to a test registry.
//! - [`peers`]: where the pinned Go-built peers (cosign, crane, oras, ...) live in the cache.
#![allow(clippy::unwrap_used)]

pub mod faultproxy;
pub mod fixtures;
pub mod peers;
pub mod registry;
pub mod tokenserver;
