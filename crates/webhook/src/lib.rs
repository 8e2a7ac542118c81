//! `kibaship-webhook`: a validating and mutating admission webhook that admits a Pod (or pod template) into a
//! namespace the policy selects only when every image it runs carries the signatures and attestations the
//! policy requires. One verification API ([`kibaship_cosign::ImageVerifier`]), one policy model
//! ([`kibaship_policy`]), one AdmissionReview layer ([`kibaship_admission`]); this crate adds the server, the
//! cache of verification facts, metrics and hot reload. See docs/webhook.md.
pub mod decide;
pub mod facts;
pub mod kube_api;
pub mod log_format;
pub mod metrics;
pub mod reload;
pub mod server;
pub mod state;
mod summary;
pub mod tls;

pub use decide::{Endpoint, Judge, Trust};
pub use server::{Running, StartError, start};
pub use state::{ServerConfig, State};
