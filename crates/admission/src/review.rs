//! AdmissionReview in: the request, and every image the object under review runs.

use std::fmt;

use crate::error::ReviewError;
use crate::lean::{
    ContainerList, Found, Loose, PodFields, RawContainer, RawGvk, RawObject, RawRequest, RawReview,
    RawVolume, SecretList, VolumeList,
};
use crate::text::Shown;

/// Largest AdmissionReview body accepted. The server stops reading there; [`parse_review`] checks it again
/// before parsing anything. The API server itself accepts request bodies of up to 3 MiB, and a review
/// carries the object and, for an update, the old object too.
pub const MAX_REVIEW_BYTES: usize = 6 * 1024 * 1024;

/// Most images one review may run (containers, init containers, ephemeral containers and image volumes
/// together); above it the review is refused with `too-many-images`. Each image costs the webhook a
/// registry lookup and a verification, so the count is what bounds the work one request can ask for.
pub const MAX_IMAGES: usize = 1000;

/// Most `imagePullSecrets` entries read from one pod spec (each may cost the webhook a Secret lookup);
/// above it the review is refused with `too-many-pull-secrets`.
pub const MAX_PULL_SECRETS: usize = 100;

/// Version of the AdmissionReview API; the answer is written in the version of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewVersion {
    /// `admission.k8s.io/v1`
    V1,
    /// `admission.k8s.io/v1beta1`
    V1Beta1,
}

impl ReviewVersion {
    /// The `apiVersion` string.
    pub fn api_version(self) -> &'static str {
        match self {
            ReviewVersion::V1 => "admission.k8s.io/v1",
            ReviewVersion::V1Beta1 => "admission.k8s.io/v1beta1",
        }
    }

    fn from_api_version(text: &str) -> Option<Self> {
        match text {
            "admission.k8s.io/v1" => Some(ReviewVersion::V1),
            "admission.k8s.io/v1beta1" => Some(ReviewVersion::V1Beta1),
            _ => None,
        }
    }
}

impl fmt::Display for ReviewVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_version())
    }
}

/// The operation under review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `CREATE`
    Create,
    /// `UPDATE` (also the `ephemeralcontainers` and `status` subresources)
    Update,
    /// `DELETE`: there is no new object, so no images.
    Delete,
    /// `CONNECT` (exec, attach, port-forward): no images.
    Connect,
}

impl Operation {
    /// The operation as the API writes it: `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }

    fn from_api(text: &str) -> Option<Self> {
        match text {
            "CREATE" => Some(Operation::Create),
            "UPDATE" => Some(Operation::Update),
            "DELETE" => Some(Operation::Delete),
            "CONNECT" => Some(Operation::Connect),
            _ => None,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind of object whose images are read, by the group, version and kind of `request.kind`.
///
/// Only the `v1` versions are known: a webhook registered for them with `matchPolicy: Equivalent` (the
/// default) receives requests made through older versions converted to `v1`. Any other kind is refused
/// with `unsupported-kind`, so a misconfigured webhook denies instead of passing objects it cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// `v1 Pod`: pod spec at `/spec`.
    Pod,
    /// `apps/v1 Deployment`: `/spec/template/spec`.
    Deployment,
    /// `apps/v1 StatefulSet`: `/spec/template/spec`.
    StatefulSet,
    /// `apps/v1 DaemonSet`: `/spec/template/spec`.
    DaemonSet,
    /// `apps/v1 ReplicaSet`: `/spec/template/spec`.
    ReplicaSet,
    /// `v1 ReplicationController`: `/spec/template/spec`.
    ReplicationController,
    /// `batch/v1 Job`: `/spec/template/spec`.
    Job,
    /// `batch/v1 CronJob`: `/spec/jobTemplate/spec/template/spec`.
    CronJob,
}

impl ObjectKind {
    /// Every kind, in the order of the enum.
    pub const ALL: [ObjectKind; 8] = [
        ObjectKind::Pod,
        ObjectKind::Deployment,
        ObjectKind::StatefulSet,
        ObjectKind::DaemonSet,
        ObjectKind::ReplicaSet,
        ObjectKind::ReplicationController,
        ObjectKind::Job,
        ObjectKind::CronJob,
    ];

    /// The kind by `request.kind`'s group, version and kind; `None` for any other.
    pub fn from_gvk(group: &str, version: &str, kind: &str) -> Option<Self> {
        ObjectKind::ALL
            .into_iter()
            .find(|k| k.group() == group && k.version() == version && k.kind() == kind)
    }

    /// API group: `""` (core), `apps` or `batch`.
    pub fn group(self) -> &'static str {
        match self {
            ObjectKind::Pod | ObjectKind::ReplicationController => "",
            ObjectKind::Deployment
            | ObjectKind::StatefulSet
            | ObjectKind::DaemonSet
            | ObjectKind::ReplicaSet => "apps",
            ObjectKind::Job | ObjectKind::CronJob => "batch",
        }
    }

    /// API version within the group: always `v1`.
    pub fn version(self) -> &'static str {
        "v1"
    }

    /// The kind's name, e.g. `Deployment`.
    pub fn kind(self) -> &'static str {
        match self {
            ObjectKind::Pod => "Pod",
            ObjectKind::Deployment => "Deployment",
            ObjectKind::StatefulSet => "StatefulSet",
            ObjectKind::DaemonSet => "DaemonSet",
            ObjectKind::ReplicaSet => "ReplicaSet",
            ObjectKind::ReplicationController => "ReplicationController",
            ObjectKind::Job => "Job",
            ObjectKind::CronJob => "CronJob",
        }
    }

    /// The object's `apiVersion`: `v1`, `apps/v1` or `batch/v1`.
    pub fn api_version(self) -> &'static str {
        match self.group() {
            "" => "v1",
            "apps" => "apps/v1",
            _ => "batch/v1",
        }
    }

    /// JSON pointer of the pod spec inside the object.
    pub fn pod_spec_pointer(self) -> &'static str {
        match self {
            ObjectKind::Pod => "/spec",
            ObjectKind::CronJob => "/spec/jobTemplate/spec/template/spec",
            _ => "/spec/template/spec",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// Where in the pod spec an image is named.
///
/// Deliberately not `#[non_exhaustive]`: a new role is a new place images come from, and a `match` in the
/// webhook should stop compiling until it handles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerRole {
    /// `containers[]`
    Container,
    /// `initContainers[]` (sidecars included)
    InitContainer,
    /// `ephemeralContainers[]` (`kubectl debug`)
    EphemeralContainer,
    /// `volumes[].image.reference`: an image whose files are mounted into the pod (image volumes,
    /// Kubernetes 1.31+). Its content reaches the containers, so it is verified like theirs.
    ImageVolume,
}

impl ContainerRole {
    /// The pod-spec field the role comes from: `container`, `initContainer`, `ephemeralContainer`,
    /// `imageVolume`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerRole::Container => "container",
            ContainerRole::InitContainer => "initContainer",
            ContainerRole::EphemeralContainer => "ephemeralContainer",
            ContainerRole::ImageVolume => "imageVolume",
        }
    }

    /// In words: `container`, `init container`, `ephemeral container`, `image volume`.
    fn words(self) -> &'static str {
        match self {
            ContainerRole::Container => "container",
            ContainerRole::InitContainer => "init container",
            ContainerRole::EphemeralContainer => "ephemeral container",
            ContainerRole::ImageVolume => "image volume",
        }
    }
}

impl fmt::Display for ContainerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.words())
    }
}

/// One image the object runs, and where it is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageSite {
    /// Name of the container (for an image volume: of the volume).
    pub container: String,
    /// Which list it is in.
    pub role: ContainerRole,
    /// The image exactly as written (not trimmed or normalised; may hold any character, so escape it with
    /// [`escape_text`](crate::escape_text) before showing it).
    pub image: String,
    /// RFC 6901 JSON pointer to the image string inside `request.object`, e.g.
    /// `/spec/template/spec/initContainers/0/image`; [`ImagePatch::pointer`](crate::ImagePatch::pointer)
    /// names a site by it.
    pub pointer: String,
}

/// An AdmissionReview request, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// Version of the AdmissionReview; [`respond`](crate::respond) answers in it.
    pub api_version: ReviewVersion,
    /// `request.uid`, never empty; the answer carries it back.
    pub uid: String,
    /// Kind of the object (`request.kind`).
    pub kind: ObjectKind,
    /// The operation.
    pub operation: Operation,
    /// `request.subResource` when not empty, e.g. `ephemeralcontainers` or `status`.
    pub sub_resource: Option<String>,
    /// `request.namespace` (empty when absent).
    pub namespace: String,
    /// `request.name`; empty on a CREATE that relies on `generateName`.
    pub name: String,
    /// `request.dryRun`.
    pub dry_run: bool,
    /// Every image the new object runs: init containers, containers, ephemeral containers, then image
    /// volumes, each list in its order. Empty for DELETE and CONNECT.
    pub images: Vec<ImageSite>,
    /// Names in `imagePullSecrets` of the pod spec, in order, without empty names and repeats.
    pub pull_secrets: Vec<String>,
    /// `serviceAccountName` of the pod spec (or the deprecated `serviceAccount` when only it is set);
    /// `None` means the namespace's `default`.
    pub service_account: Option<String>,
}

/// Reads an AdmissionReview (`admission.k8s.io/v1` or `v1beta1`) and every image its object runs.
///
/// The body is refused before parsing when it is larger than [`MAX_REVIEW_BYTES`]. Only the fields listed
/// on [`Review`] are read; the rest is skipped without being built. Any field that is present with the
/// wrong type, a repeated key, a container without a name or image, or a missing pod template is an error
/// naming its JSON pointer, never a skipped container. Once the uid is read, every error carries it
/// ([`ReviewError::uid`]).
pub fn parse_review(body: &[u8]) -> Result<Review, ReviewError> {
    if body.len() > MAX_REVIEW_BYTES {
        return Err(ReviewError::TooLarge { size: body.len() });
    }
    let raw: Loose<RawReview> = serde_json::from_slice(body).map_err(json_error)?;
    let raw = match raw {
        Loose::Present(raw) => raw,
        Loose::Other(found) => {
            return Err(ReviewError::NotAnAdmissionReview {
                problem: format!("the document is {}, not an object", found.describe()),
            });
        }
        Loose::Absent => {
            return Err(ReviewError::NotAnAdmissionReview {
                problem: "the document is empty".into(),
            });
        }
    };
    let version = review_version(&raw)?;
    let request = match raw.request {
        Loose::Present(request) => request,
        Loose::Absent => {
            return Err(ReviewError::MissingRequest {
                version,
                problem: "is missing".into(),
            });
        }
        Loose::Other(found) => {
            return Err(ReviewError::MissingRequest {
                version,
                problem: format!("is {}, not an object", found.describe()),
            });
        }
    };
    let uid = request_uid(&request, version)?;
    read_request(request, uid, version)
}

fn json_error(e: serde_json::Error) -> ReviewError {
    ReviewError::MalformedJson {
        detail: e.to_string(),
        line: e.line(),
        column: e.column(),
        truncated: e.is_eof(),
    }
}

/// `` `text` ``, escaped and shortened.
fn quoted(text: &str) -> String {
    format!("`{}`", Shown(text))
}

fn review_version(raw: &RawReview) -> Result<ReviewVersion, ReviewError> {
    if let Some(key) = raw.first_duplicate() {
        return Err(ReviewError::NotAnAdmissionReview {
            problem: format!("key `{key}` appears more than once"),
        });
    }
    match &raw.kind {
        Loose::Present(kind) if kind == "AdmissionReview" => {}
        Loose::Present(kind) => {
            return Err(ReviewError::NotAnAdmissionReview {
                problem: format!("its kind is {}", quoted(kind)),
            });
        }
        Loose::Absent => {
            return Err(ReviewError::NotAnAdmissionReview {
                problem: "it has no kind".into(),
            });
        }
        Loose::Other(found) => {
            return Err(ReviewError::NotAnAdmissionReview {
                problem: format!("its kind is {}, not a string", found.describe()),
            });
        }
    }
    match &raw.api_version {
        Loose::Present(text) => {
            ReviewVersion::from_api_version(text).ok_or_else(|| ReviewError::UnsupportedVersion {
                found: quoted(text),
            })
        }
        Loose::Absent => Err(ReviewError::UnsupportedVersion {
            found: "(missing)".into(),
        }),
        Loose::Other(found) => Err(ReviewError::UnsupportedVersion {
            found: format!("({})", found.describe()),
        }),
    }
}

fn request_uid(request: &RawRequest, version: ReviewVersion) -> Result<String, ReviewError> {
    let missing = |problem: String| ReviewError::MissingUid { version, problem };
    if request.duplicates.contains(&"uid") {
        return Err(missing("appears more than once".into()));
    }
    match &request.uid {
        Loose::Present(uid) if !uid.is_empty() => Ok(uid.clone()),
        Loose::Present(_) => Err(missing("is empty".into())),
        Loose::Absent => Err(missing("is missing".into())),
        Loose::Other(found) => Err(missing(format!("is {}, not a string", found.describe()))),
    }
}

/// The request's uid and version, for errors after the uid is known.
struct Ctx<'a> {
    uid: &'a str,
    version: ReviewVersion,
}

impl Ctx<'_> {
    fn malformed_request(&self, pointer: &str, problem: impl Into<String>) -> ReviewError {
        ReviewError::MalformedRequest {
            uid: self.uid.to_string(),
            version: self.version,
            pointer: pointer.to_string(),
            problem: problem.into(),
        }
    }

    /// An optional string field of the request: absent or `null` is empty.
    fn optional_string(&self, field: &Loose<String>, pointer: &str) -> Result<String, ReviewError> {
        match field {
            Loose::Present(text) => Ok(text.clone()),
            Loose::Absent | Loose::Other(Found::Null) => Ok(String::new()),
            Loose::Other(found) => {
                Err(self
                    .malformed_request(pointer, format!("is {}, not a string", found.describe())))
            }
        }
    }
}

fn read_request(
    request: RawRequest,
    uid: String,
    version: ReviewVersion,
) -> Result<Review, ReviewError> {
    let ctx = Ctx { uid: &uid, version };
    if let Some(key) = request.first_duplicate() {
        return Err(ctx.malformed_request(&format!("/request/{key}"), "appears more than once"));
    }
    let operation = match &request.operation {
        Loose::Present(text) => {
            Operation::from_api(text).ok_or_else(|| ReviewError::UnsupportedOperation {
                uid: uid.clone(),
                version,
                found: quoted(text),
            })?
        }
        Loose::Absent => return Err(ctx.malformed_request("/request/operation", "is missing")),
        Loose::Other(found) => {
            return Err(ctx.malformed_request(
                "/request/operation",
                format!("is {}, not a string", found.describe()),
            ));
        }
    };
    let kind = object_kind(&ctx, &request.kind)?;
    let sub_resource = ctx.optional_string(&request.sub_resource, "/request/subResource")?;
    let namespace = ctx.optional_string(&request.namespace, "/request/namespace")?;
    let name = ctx.optional_string(&request.name, "/request/name")?;
    let dry_run = match &request.dry_run {
        Loose::Present(flag) => *flag,
        Loose::Absent | Loose::Other(Found::Null) => false,
        Loose::Other(found) => {
            return Err(ctx.malformed_request(
                "/request/dryRun",
                format!("is {}, not a boolean", found.describe()),
            ));
        }
    };
    let mut review = Review {
        api_version: version,
        uid: uid.clone(),
        kind,
        operation,
        sub_resource: Some(sub_resource).filter(|s| !s.is_empty()),
        namespace,
        name,
        dry_run,
        images: Vec::new(),
        pull_secrets: Vec::new(),
        service_account: None,
    };
    if matches!(operation, Operation::Delete | Operation::Connect) {
        return Ok(review);
    }
    let object = match &request.object {
        Loose::Present(object) => object,
        Loose::Absent | Loose::Other(Found::Null) => {
            return Err(ReviewError::MissingObject {
                uid,
                version,
                operation,
            });
        }
        Loose::Other(found) => {
            return Err(ctx.malformed_request(
                "/request/object",
                format!("is {}, not an object", found.describe()),
            ));
        }
    };
    let reader = ObjectReader { ctx: &ctx, kind };
    let pod = reader.pod_fields(object)?;
    let base = kind.pod_spec_pointer();
    review.images = reader.images(&pod, base)?;
    review.pull_secrets = reader.pull_secrets(pod.image_pull_secrets, base)?;
    review.service_account = reader.service_account(&pod, base)?;
    Ok(review)
}

fn object_kind(ctx: &Ctx<'_>, kind: &Loose<RawGvk>) -> Result<ObjectKind, ReviewError> {
    let gvk = match kind {
        Loose::Present(gvk) => gvk,
        Loose::Absent => return Err(ctx.malformed_request("/request/kind", "is missing")),
        Loose::Other(found) => {
            return Err(ctx.malformed_request(
                "/request/kind",
                format!("is {}, not an object", found.describe()),
            ));
        }
    };
    if let Some(key) = gvk.first_duplicate() {
        return Err(
            ctx.malformed_request(&format!("/request/kind/{key}"), "appears more than once")
        );
    }
    let group = ctx.optional_string(&gvk.group, "/request/kind/group")?;
    let version = ctx.optional_string(&gvk.version, "/request/kind/version")?;
    let name = ctx.optional_string(&gvk.kind, "/request/kind/kind")?;
    ObjectKind::from_gvk(&group, &version, &name).ok_or_else(|| {
        let group_version = if group.is_empty() {
            version.clone()
        } else {
            format!("{group}/{version}")
        };
        ReviewError::UnsupportedKind {
            uid: ctx.uid.to_string(),
            version: ctx.version,
            found: quoted(&format!("{group_version} {name}")),
        }
    })
}

/// Reads the object of a known kind; errors are `malformed-object` at a pointer inside it.
struct ObjectReader<'a> {
    ctx: &'a Ctx<'a>,
    kind: ObjectKind,
}

impl ObjectReader<'_> {
    fn malformed(&self, pointer: &str, problem: impl Into<String>) -> ReviewError {
        ReviewError::MalformedObject {
            uid: self.ctx.uid.to_string(),
            version: self.ctx.version,
            kind: self.kind,
            pointer: pointer.to_string(),
            problem: problem.into(),
        }
    }

    /// The object at `pointer`, which must be present.
    fn required<'b, T>(&self, field: &'b Loose<T>, pointer: &str) -> Result<&'b T, ReviewError> {
        match field {
            Loose::Present(value) => Ok(value),
            Loose::Absent => Err(self.malformed(pointer, "is missing")),
            Loose::Other(found) => {
                Err(self.malformed(pointer, format!("is {}, not an object", found.describe())))
            }
        }
    }

    fn no_duplicate(
        &self,
        duplicate: Option<&'static str>,
        pointer: &str,
    ) -> Result<(), ReviewError> {
        match duplicate {
            Some(key) => Err(self.malformed(&format!("{pointer}/{key}"), "appears more than once")),
            None => Ok(()),
        }
    }

    /// `apiVersion` and `kind` of the object, when written, must be those of `request.kind`.
    fn type_matches(
        &self,
        field: &Loose<String>,
        expected: &str,
        pointer: &str,
    ) -> Result<(), ReviewError> {
        match field {
            Loose::Present(text) if text == expected => Ok(()),
            Loose::Present(text) => Err(self.malformed(
                pointer,
                format!(
                    "is {}, but the request is for {} {}",
                    quoted(text),
                    self.kind.api_version(),
                    self.kind.kind()
                ),
            )),
            Loose::Absent | Loose::Other(Found::Null) => Ok(()),
            Loose::Other(found) => {
                Err(self.malformed(pointer, format!("is {}, not a string", found.describe())))
            }
        }
    }

    fn pod_fields<'b>(&self, object: &'b RawObject) -> Result<PodFields<'b>, ReviewError> {
        self.no_duplicate(object.first_duplicate(), "")?;
        self.type_matches(&object.api_version, self.kind.api_version(), "/apiVersion")?;
        self.type_matches(&object.kind, self.kind.kind(), "/kind")?;
        let spec = self.required(&object.spec, "/spec")?;
        self.no_duplicate(spec.first_duplicate(), "/spec")?;
        let pod = match self.kind {
            ObjectKind::Pod => spec.pod_fields(),
            ObjectKind::CronJob => {
                let job_template = self.required(&spec.job_template, "/spec/jobTemplate")?;
                self.no_duplicate(job_template.first_duplicate(), "/spec/jobTemplate")?;
                let job_spec = self.required(&job_template.spec, "/spec/jobTemplate/spec")?;
                self.no_duplicate(job_spec.first_duplicate(), "/spec/jobTemplate/spec")?;
                let template =
                    self.required(&job_spec.template, "/spec/jobTemplate/spec/template")?;
                self.no_duplicate(
                    template.first_duplicate(),
                    "/spec/jobTemplate/spec/template",
                )?;
                self.required(&template.spec, "/spec/jobTemplate/spec/template/spec")?
                    .pod_fields()
            }
            _ => {
                let template = self.required(&spec.template, "/spec/template")?;
                self.no_duplicate(template.first_duplicate(), "/spec/template")?;
                self.required(&template.spec, "/spec/template/spec")?
                    .pod_fields()
            }
        };
        self.no_duplicate(pod.duplicate, self.kind.pod_spec_pointer())?;
        Ok(pod)
    }

    /// A list field: absent or `null` is empty.
    fn list<'b, T>(
        &self,
        field: &'b Loose<T>,
        pointer: &str,
    ) -> Result<Option<&'b T>, ReviewError> {
        match field {
            Loose::Present(list) => Ok(Some(list)),
            Loose::Absent | Loose::Other(Found::Null) => Ok(None),
            Loose::Other(found) => {
                Err(self.malformed(pointer, format!("is {}, not an array", found.describe())))
            }
        }
    }

    /// The `name` of a container or volume, which must be a non-empty string.
    fn name(
        &self,
        field: &Loose<String>,
        pointer: &str,
        role: ContainerRole,
    ) -> Result<String, ReviewError> {
        match field {
            Loose::Present(name) if !name.is_empty() => Ok(name.clone()),
            Loose::Present(_) => Err(self.malformed(
                &format!("{pointer}/name"),
                format!("the {role} has an empty name"),
            )),
            Loose::Absent | Loose::Other(Found::Null) => Err(self.malformed(
                &format!("{pointer}/name"),
                format!("the {role} has no name"),
            )),
            Loose::Other(found) => Err(self.malformed(
                &format!("{pointer}/name"),
                format!("the {role}'s name is {}, not a string", found.describe()),
            )),
        }
    }

    /// An image field, which must be a non-empty string.
    fn image(
        &self,
        field: &Loose<String>,
        pointer: &str,
        role: ContainerRole,
        name: &str,
    ) -> Result<String, ReviewError> {
        let named = || format!("{role} `{}`", Shown(name));
        match field {
            Loose::Present(image) if !image.is_empty() => Ok(image.clone()),
            Loose::Present(_) => {
                Err(self.malformed(pointer, format!("{} has an empty image", named())))
            }
            Loose::Absent | Loose::Other(Found::Null) => {
                Err(self.malformed(pointer, format!("{} has no image", named())))
            }
            Loose::Other(found) => Err(self.malformed(
                pointer,
                format!(
                    "the image of {} is {}, not a string",
                    named(),
                    found.describe()
                ),
            )),
        }
    }

    fn images(&self, pod: &PodFields<'_>, base: &str) -> Result<Vec<ImageSite>, ReviewError> {
        let lists = [
            (
                "initContainers",
                ContainerRole::InitContainer,
                pod.init_containers,
            ),
            ("containers", ContainerRole::Container, pod.containers),
            (
                "ephemeralContainers",
                ContainerRole::EphemeralContainer,
                pod.ephemeral_containers,
            ),
        ];
        let mut present: Vec<(&str, ContainerRole, &ContainerList)> = Vec::new();
        for (field, role, list) in lists {
            if let Some(list) = self.list(list, &format!("{base}/{field}"))? {
                present.push((field, role, list));
            }
        }
        let volumes: Option<&VolumeList> = self.list(pod.volumes, &format!("{base}/volumes"))?;
        let count = present
            .iter()
            .map(|(_, _, list)| list.relevant)
            .chain(volumes.map(|v| v.relevant))
            .fold(0usize, usize::saturating_add);
        if count > MAX_IMAGES {
            return Err(ReviewError::TooManyImages {
                uid: self.ctx.uid.to_string(),
                version: self.ctx.version,
                kind: self.kind,
                count,
            });
        }
        let mut sites = Vec::with_capacity(count);
        for (field, role, list) in present {
            for (index, element) in &list.kept {
                sites.push(self.container(element, &format!("{base}/{field}/{index}"), role)?);
            }
        }
        if let Some(volumes) = volumes {
            for (index, element) in &volumes.kept {
                sites.push(self.image_volume(element, &format!("{base}/volumes/{index}"))?);
            }
        }
        Ok(sites)
    }

    fn container(
        &self,
        element: &Loose<RawContainer>,
        pointer: &str,
        role: ContainerRole,
    ) -> Result<ImageSite, ReviewError> {
        let container = match element {
            Loose::Present(container) => container,
            Loose::Absent => return Err(self.malformed(pointer, format!("the {role} is missing"))),
            Loose::Other(found) => {
                return Err(self.malformed(
                    pointer,
                    format!("is {}, not a {role} object", found.describe()),
                ));
            }
        };
        self.no_duplicate(container.first_duplicate(), pointer)?;
        let name = self.name(&container.name, pointer, role)?;
        let image_pointer = format!("{pointer}/image");
        let image = self.image(&container.image, &image_pointer, role, &name)?;
        Ok(ImageSite {
            container: name,
            role,
            image,
            pointer: image_pointer,
        })
    }

    fn image_volume(
        &self,
        element: &Loose<RawVolume>,
        pointer: &str,
    ) -> Result<ImageSite, ReviewError> {
        let role = ContainerRole::ImageVolume;
        let volume = match element {
            Loose::Present(volume) => volume,
            Loose::Absent => return Err(self.malformed(pointer, "the volume is missing")),
            Loose::Other(found) => {
                return Err(self.malformed(
                    pointer,
                    format!("is {}, not a volume object", found.describe()),
                ));
            }
        };
        self.no_duplicate(volume.first_duplicate(), pointer)?;
        let name = self.name(&volume.name, pointer, role)?;
        let source_pointer = format!("{pointer}/image");
        let source = match &volume.image {
            Loose::Present(source) => source,
            Loose::Absent => return Err(self.malformed(&source_pointer, "is missing")),
            Loose::Other(found) => {
                return Err(self.malformed(
                    &source_pointer,
                    format!(
                        "the image source of {role} `{}` is {}, not an object",
                        Shown(&name),
                        found.describe()
                    ),
                ));
            }
        };
        self.no_duplicate(source.first_duplicate(), &source_pointer)?;
        let image_pointer = format!("{source_pointer}/reference");
        let image = self.image(&source.reference, &image_pointer, role, &name)?;
        Ok(ImageSite {
            container: name,
            role,
            image,
            pointer: image_pointer,
        })
    }

    fn pull_secrets(
        &self,
        field: &Loose<SecretList>,
        base: &str,
    ) -> Result<Vec<String>, ReviewError> {
        let pointer = format!("{base}/imagePullSecrets");
        let Some(list) = self.list(field, &pointer)? else {
            return Ok(Vec::new());
        };
        if list.relevant > MAX_PULL_SECRETS {
            return Err(ReviewError::TooManyPullSecrets {
                uid: self.ctx.uid.to_string(),
                version: self.ctx.version,
                kind: self.kind,
                count: list.relevant,
            });
        }
        let mut names: Vec<String> = Vec::new();
        for (index, element) in &list.kept {
            let entry_pointer = format!("{pointer}/{index}");
            let entry = match element {
                Loose::Present(entry) => entry,
                Loose::Absent => return Err(self.malformed(&entry_pointer, "is missing")),
                Loose::Other(found) => {
                    return Err(self.malformed(
                        &entry_pointer,
                        format!("is {}, not an object", found.describe()),
                    ));
                }
            };
            self.no_duplicate(entry.first_duplicate(), &entry_pointer)?;
            match &entry.name {
                Loose::Present(name) if !name.is_empty() => {
                    if !names.contains(name) {
                        names.push(name.clone());
                    }
                }
                Loose::Present(_) | Loose::Absent | Loose::Other(Found::Null) => {}
                Loose::Other(found) => {
                    return Err(self.malformed(
                        &format!("{entry_pointer}/name"),
                        format!("is {}, not a string", found.describe()),
                    ));
                }
            }
        }
        Ok(names)
    }

    fn service_account(
        &self,
        pod: &PodFields<'_>,
        base: &str,
    ) -> Result<Option<String>, ReviewError> {
        let mut chosen = None;
        for (field, key) in [
            (pod.service_account_name, "serviceAccountName"),
            (pod.service_account, "serviceAccount"),
        ] {
            match field {
                Loose::Present(name) => {
                    if chosen.is_none() && !name.is_empty() {
                        chosen = Some(name.clone());
                    }
                }
                Loose::Absent | Loose::Other(Found::Null) => {}
                Loose::Other(found) => {
                    return Err(self.malformed(
                        &format!("{base}/{key}"),
                        format!("is {}, not a string", found.describe()),
                    ));
                }
            }
        }
        Ok(chosen)
    }
}
