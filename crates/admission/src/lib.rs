//! AdmissionReview in and out for the kibaship admission webhook: no I/O, no async.
//!
//! * [`parse_review`] reads an AdmissionReview body (`admission.k8s.io/v1` or `v1beta1`, at most
//!   [`MAX_REVIEW_BYTES`]) into a [`Review`]: uid, [`ObjectKind`], [`Operation`], namespace, name, and
//!   every image the object runs as an [`ImageSite`] (container name, [`ContainerRole`], the image as
//!   written, and the JSON pointer to it), plus the pod spec's pull secrets and service account. Pods and
//!   the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs
//!   and CronJobs are read; any other kind is an error, so the webhook fails closed.
//! * A [`ReviewError`] has a stable [`code`](ReviewError::code) and, once the uid was read, the
//!   [`uid`](ReviewError::uid) to answer; [`respond_error`] writes that answer, a denial.
//! * [`respond`] turns the webhook's [`Decision`] into the AdmissionReview answer: a denial with the
//!   reason code, or an allow with warnings and an optional JSONPatch of [`ImagePatch`]es (tag to
//!   digest). Only `allowed: true` in the decision can produce an allow.
//!
//! Text from the request (image and container names) is data: it is kept as written in the [`Review`],
//! and escaped by [`escape_text`] wherever it is put into a message, a warning or an error.
//!
//! ```
//! use kibaship_admission::{ContainerRole, Decision, ImagePatch, ObjectKind, parse_review, respond};
//!
//! let body = include_bytes!("../../../testdata/admission/recorded/v1-deployment-create.json");
//! let review = parse_review(body)?;
//! assert_eq!(review.kind, ObjectKind::Deployment);
//! assert_eq!(review.images.len(), 2); // an init container, then a container
//! let site = &review.images[1];
//! assert_eq!((site.role, site.container.as_str()), (ContainerRole::Container, "app"));
//! assert_eq!(site.image, "registry.example/team/app:2.1");
//! assert_eq!(site.pointer, "/spec/template/spec/containers/0/image");
//!
//! let pinned = format!("{}@sha256:{}", site.image, "0".repeat(64));
//! let decision = Decision {
//!     patch: vec![ImagePatch { pointer: site.pointer.clone(), image: pinned }],
//!     ..Decision::allow()
//! };
//! let answer: serde_json::Value = serde_json::from_slice(&respond(&review, &decision))?;
//! assert_eq!(answer["response"]["uid"], review.uid.as_str());
//! assert_eq!(answer["response"]["allowed"], true);
//! assert_eq!(answer["response"]["patchType"], "JSONPatch");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod error;
mod lean;
mod response;
mod review;
mod text;

pub use error::ReviewError;
pub use response::{
    DENIAL_STATUS_CODE, DENIAL_STATUS_REASON, Decision, INVALID_PATCH_CODE, ImagePatch,
    MAX_AUDIT_VALUE_CHARS, MAX_MESSAGE_CHARS, MAX_WARNING_CHARS, MAX_WARNINGS_TOTAL_CHARS, respond,
    respond_error,
};
pub use review::{
    ContainerRole, ImageSite, MAX_IMAGES, MAX_PULL_SECRETS, MAX_REVIEW_BYTES, ObjectKind,
    Operation, Review, ReviewVersion, parse_review,
};
pub use text::escape_text;
