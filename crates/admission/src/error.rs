//! Why an AdmissionReview could not be read.

use crate::review::{
    MAX_IMAGES, MAX_PULL_SECRETS, MAX_REVIEW_BYTES, ObjectKind, Operation, ReviewVersion,
};

/// Why [`parse_review`](crate::parse_review) refused a body.
///
/// Each variant has a stable kebab-case [`code`](ReviewError::code). Once the request's uid has been read,
/// the error carries it ([`uid`](ReviewError::uid)), so the server can answer with a denial for that uid
/// ([`respond_error`](crate::respond_error)) instead of failing the HTTP call. Values taken from the body
/// (kinds, versions, container names) appear in the text escaped and shortened, so the text is safe to log
/// and to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReviewError {
    /// The body is larger than [`MAX_REVIEW_BYTES`]; nothing of it was parsed.
    #[error("the AdmissionReview body is {size} bytes; at most {MAX_REVIEW_BYTES} are read")]
    TooLarge {
        /// Size of the body in bytes.
        size: usize,
    },
    /// The body is not well-formed JSON: a syntax error, text after the document, a string that is not
    /// UTF-8, or a body that ends early (`truncated`).
    #[error("{}: {detail}", if *.truncated { "the AdmissionReview body ends before its JSON does (truncated?)" } else { "the AdmissionReview body is not valid JSON" })]
    MalformedJson {
        /// serde_json's description, with line and column.
        detail: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The body ended in the middle of the document.
        truncated: bool,
    },
    /// Well-formed JSON, but not an AdmissionReview: not an object, or its `kind` is not `AdmissionReview`.
    #[error("the body is not an AdmissionReview: {problem}")]
    NotAnAdmissionReview {
        /// What was found instead.
        problem: String,
    },
    /// An AdmissionReview of an `apiVersion` other than `admission.k8s.io/v1` and `admission.k8s.io/v1beta1`.
    #[error(
        "AdmissionReview apiVersion {found} is not supported (admission.k8s.io/v1 and admission.k8s.io/v1beta1 are)"
    )]
    UnsupportedVersion {
        /// The apiVersion found (quoted and escaped), or what was there instead of a string.
        found: String,
    },
    /// The AdmissionReview has no `request` object (it may be a response).
    #[error("the AdmissionReview has no request: /request {problem}")]
    MissingRequest {
        /// Version of the AdmissionReview.
        version: ReviewVersion,
        /// What was found instead.
        problem: String,
    },
    /// The request has no usable `uid`, so no answer can be addressed to it.
    #[error("the AdmissionReview request has no uid: /request/uid {problem}")]
    MissingUid {
        /// Version of the AdmissionReview.
        version: ReviewVersion,
        /// What was found instead.
        problem: String,
    },
    /// A field of `request` (outside `object`) has the wrong type, or a key appears twice.
    #[error("the AdmissionReview request is malformed: {pointer} {problem}")]
    MalformedRequest {
        /// The request's uid.
        uid: String,
        /// Version of the AdmissionReview.
        version: ReviewVersion,
        /// JSON pointer of the field in the AdmissionReview (`/request/...`).
        pointer: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `request.operation` is not `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    #[error("operation {found} (/request/operation) is not one of CREATE, UPDATE, DELETE, CONNECT")]
    UnsupportedOperation {
        /// The request's uid.
        uid: String,
        /// Version of the AdmissionReview.
        version: ReviewVersion,
        /// The operation found (quoted and escaped).
        found: String,
    },
    /// `request.kind` is not one of the kinds whose images are read ([`ObjectKind`]); the webhook must not
    /// be registered for it, and a request for it is denied (fail closed).
    #[error(
        "kind {found} (/request/kind) is not reviewed: the webhook reads images of Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job and CronJob (v1) only"
    )]
    UnsupportedKind {
        /// The request's uid.
        uid: String,
        /// Version of the AdmissionReview.
        version: ReviewVersion,
        /// The group/version and kind found, quoted and escaped, e.g. `` `apps/v1beta1 Deployment` ``.
        found: String,
    },
    /// A `CREATE` or `UPDATE` request without `object`.
    #[error("the {operation} request has no object (/request/object)")]
    MissingObject {
        /// The request's uid.
        uid: String,
        /// Version of the AdmissionReview.
        version: ReviewVersion,
        /// The operation.
        operation: Operation,
    },
    /// The object does not have the shape of its kind where images are read: a container without image or
    /// name, a field of the wrong type, a key that appears twice, a pod template that is missing.
    #[error("the {kind} is malformed at {pointer}: {problem}")]
    MalformedObject {
        /// The request's uid.
        uid: String,
        /// Version of the AdmissionReview.
        version: ReviewVersion,
        /// Kind of the object.
        kind: ObjectKind,
        /// JSON pointer inside `request.object` (the same form as [`ImageSite::pointer`](crate::ImageSite::pointer)).
        pointer: String,
        /// What is wrong there (user-supplied names escaped).
        problem: String,
    },
    /// The object runs more than [`MAX_IMAGES`] images (containers of all kinds and image volumes).
    #[error(
        "the {kind} has {count} images (containers, init containers, ephemeral containers and image volumes); at most {MAX_IMAGES} are reviewed"
    )]
    TooManyImages {
        /// The request's uid.
        uid: String,
        /// Version of the AdmissionReview.
        version: ReviewVersion,
        /// Kind of the object.
        kind: ObjectKind,
        /// How many there are.
        count: usize,
    },
    /// The pod spec lists more than [`MAX_PULL_SECRETS`] `imagePullSecrets`.
    #[error("the {kind} lists {count} imagePullSecrets; at most {MAX_PULL_SECRETS} are read")]
    TooManyPullSecrets {
        /// The request's uid.
        uid: String,
        /// Version of the AdmissionReview.
        version: ReviewVersion,
        /// Kind of the object.
        kind: ObjectKind,
        /// How many there are.
        count: usize,
    },
}

impl ReviewError {
    /// The stable kebab-case code of this error, e.g. `malformed-object`.
    pub fn code(&self) -> &'static str {
        match self {
            ReviewError::TooLarge { .. } => "too-large",
            ReviewError::MalformedJson { .. } => "malformed-json",
            ReviewError::NotAnAdmissionReview { .. } => "not-an-admission-review",
            ReviewError::UnsupportedVersion { .. } => "unsupported-version",
            ReviewError::MissingRequest { .. } => "missing-request",
            ReviewError::MissingUid { .. } => "missing-uid",
            ReviewError::MalformedRequest { .. } => "malformed-request",
            ReviewError::UnsupportedOperation { .. } => "unsupported-operation",
            ReviewError::UnsupportedKind { .. } => "unsupported-kind",
            ReviewError::MissingObject { .. } => "missing-object",
            ReviewError::MalformedObject { .. } => "malformed-object",
            ReviewError::TooManyImages { .. } => "too-many-images",
            ReviewError::TooManyPullSecrets { .. } => "too-many-pull-secrets",
        }
    }

    /// Every code [`code`](ReviewError::code) can return.
    pub const CODES: [&'static str; 13] = [
        "too-large",
        "malformed-json",
        "not-an-admission-review",
        "unsupported-version",
        "missing-request",
        "missing-uid",
        "malformed-request",
        "unsupported-operation",
        "unsupported-kind",
        "missing-object",
        "malformed-object",
        "too-many-images",
        "too-many-pull-secrets",
    ];

    /// The request's uid, when it was read before the error: answer with
    /// [`respond_error`](crate::respond_error) for it. `None` means no answer can be addressed (HTTP 400).
    pub fn uid(&self) -> Option<&str> {
        match self {
            ReviewError::MalformedRequest { uid, .. }
            | ReviewError::UnsupportedOperation { uid, .. }
            | ReviewError::UnsupportedKind { uid, .. }
            | ReviewError::MissingObject { uid, .. }
            | ReviewError::MalformedObject { uid, .. }
            | ReviewError::TooManyImages { uid, .. }
            | ReviewError::TooManyPullSecrets { uid, .. } => Some(uid),
            _ => None,
        }
    }

    /// The AdmissionReview version, when it was read before the error (answer in the same version).
    pub fn api_version(&self) -> Option<ReviewVersion> {
        match self {
            ReviewError::MissingRequest { version, .. }
            | ReviewError::MissingUid { version, .. }
            | ReviewError::MalformedRequest { version, .. }
            | ReviewError::UnsupportedOperation { version, .. }
            | ReviewError::UnsupportedKind { version, .. }
            | ReviewError::MissingObject { version, .. }
            | ReviewError::MalformedObject { version, .. }
            | ReviewError::TooManyImages { version, .. }
            | ReviewError::TooManyPullSecrets { version, .. } => Some(*version),
            _ => None,
        }
    }
}
