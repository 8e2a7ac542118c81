//! SLSA provenance v1 for a Railpack + BuildKit build (issue 17 part 2). Pure: typed model, generation from the
//! build's inputs and outputs, serialization, and validation; no I/O (`kibaship-step provenance` reads the files).
//!
//! What is written is an in-toto Statement v1 (`_type` [`STATEMENT_TYPE_V1`]) whose predicate is SLSA provenance
//! v1 ([`SLSA_PROVENANCE_V1`]) with our build type [`BUILD_TYPE`], documented in `docs/provenance.md`.
//!
//! There is no official JSON schema for SLSA provenance v1: the SLSA specification
//! (`slsa-framework/slsa` `spec/schema/provenance.cue` and `provenance.proto`) and in-toto's attestation repository
//! (protobuf definitions and the Go validators `Statement.Validate`, `ResourceDescriptor.Validate`,
//! `Provenance.Validate`) are the normative sources. [`Statement::validate`] applies their rules; reading back
//! with [`Statement::parse_strict`] (`deny_unknown_fields` everywhere) checks that what we write has exactly our
//! shape.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::failure::{Classify, FailureKind};

/// in-toto Statement v1.
pub const STATEMENT_TYPE_V1: &str = "https://in-toto.io/Statement/v1";
/// SLSA provenance v1 predicate type (cosign `--type slsaprovenance1`).
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// Our build type: how to read `externalParameters` and `internalParameters` (docs/provenance.md).
pub const BUILD_TYPE: &str = "https://kibaship.io/buildtypes/railpack-buildkit/v1";
/// The builder: the railpack-build Tekton Task, versioned with `kibaship-step` (the program that runs its steps).
pub const BUILDER_ID_BASE: &str = "https://kibaship.io/tekton/tasks/railpack-build";
/// BuildKit frontend the Task runs (`buildctl build --frontend`).
pub const BUILDKIT_FRONTEND: &str = "gateway.v0";

/// `builder.id` of this version: [`BUILDER_ID_BASE`]`@v<kibaship-step version>`.
pub fn default_builder_id() -> String {
    format!("{BUILDER_ID_BASE}@v{}", env!("CARGO_PKG_VERSION"))
}

static COMMIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9a-f]{40}|[0-9a-f]{64})$").expect("static regex"));

/// Why no provenance could be made, or why a statement is not valid. Every message names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProvenanceError {
    /// An input (a flag, a result of the build) is missing or malformed.
    #[error("{field}: {problem}")]
    Input {
        /// The input, as the flag and the Tekton param/result name it.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// BuildKit's own provenance (from the pushed index) is unusable.
    #[error("BuildKit provenance: {0}")]
    Buildkit(String),
    /// The statement breaks a rule of in-toto Statement v1 / SLSA provenance v1, or is not our shape.
    #[error("invalid provenance statement at {path}: {problem}")]
    Invalid {
        /// JSON path of the offending field (`predicate.buildDefinition.buildType`).
        path: String,
        /// The rule it breaks.
        problem: String,
    },
}

impl Classify for ProvenanceError {
    fn kind(&self) -> FailureKind {
        match self {
            ProvenanceError::Buildkit(_) => FailureKind::Build,
            ProvenanceError::Input { .. } | ProvenanceError::Invalid { .. } => {
                FailureKind::BadParameters
            }
        }
    }
}

fn input(field: &'static str, problem: impl Into<String>) -> ProvenanceError {
    ProvenanceError::Input {
        field,
        problem: problem.into(),
    }
}

fn invalid(path: impl Into<String>, problem: impl Into<String>) -> ProvenanceError {
    ProvenanceError::Invalid {
        path: path.into(),
        problem: problem.into(),
    }
}

/// An in-toto Statement v1 carrying SLSA provenance v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Statement {
    /// [`STATEMENT_TYPE_V1`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// What the provenance is about: the pushed image (index) by digest.
    pub subject: Vec<ResourceDescriptor>,
    /// [`SLSA_PROVENANCE_V1`].
    pub predicate_type: String,
    /// The provenance.
    pub predicate: Provenance,
}

/// in-toto ResourceDescriptor v1 (the fields we use).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, Value>,
}

/// SLSA provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

/// `buildDefinition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BuildDefinition {
    /// [`BUILD_TYPE`].
    pub build_type: String,
    pub external_parameters: ExternalParameters,
    pub internal_parameters: InternalParameters,
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// The inputs a tenant controls (the PipelineRun's params): everything here changes the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalParameters {
    pub source: SourceParameters,
    pub plan: PlanParameters,
    /// `platforms` (one `os/arch[/variant]`).
    pub platform: String,
    /// `contextPath`.
    pub context_path: String,
    /// `railpackVersion`: the frontend image tag.
    pub railpack_version: String,
    /// `cacheKey` (the `cache-key` build arg; empty when not set).
    pub cache_key: String,
    /// `additionalBuildArgs`, in order.
    pub build_args: Vec<String>,
    /// `buildSecrets`: the names only (values never reach the provenance).
    pub build_secrets: Vec<String>,
    /// The image pushed (`imageRegistry`/`imageRepository`:`imageTag`).
    pub image: String,
}

/// The source the build read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceParameters {
    /// `gitUrl` / `sourceUrl`.
    pub uri: String,
    /// `gitCommit`: full SHA.
    pub commit: String,
    /// The ref the commit was fetched for (`refs/heads/main`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#ref: Option<String>,
}

/// The Railpack plan built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlanParameters {
    /// `sha256:<hex>` of plan.json's bytes.
    pub digest: String,
}

/// What the builder chose (not the tenant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InternalParameters {
    /// `gateway.v0`.
    pub buildkit_frontend: String,
    /// The frontend image reference passed as `--opt source=`.
    pub frontend_source: String,
    /// The dedupe key (docs/tekton.md "Dedupe"); covers the secrets-hash without revealing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_key: Option<String>,
    /// The attestation options given to BuildKit.
    pub attestations: Vec<String>,
}

/// `runDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RunDetails {
    pub builder: Builder,
    pub metadata: BuildMetadata,
}

/// `runDetails.builder`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Builder {
    pub id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
}

/// `runDetails.metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BuildMetadata {
    /// The PipelineRun's UID.
    pub invocation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<String>,
}

/// What we take from BuildKit's own provenance (the attestation manifest in the pushed index): the dependencies
/// it resolved by digest (the frontend image, base images) and the solve's times. Lenient: BuildKit adds fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildkitProvenance {
    pub resolved_dependencies: Vec<ResourceDescriptor>,
    pub started_on: Option<String>,
    pub finished_on: Option<String>,
}

#[derive(Deserialize)]
struct BkStatement {
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: BkPredicate,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BkPredicate {
    build_definition: BkDefinition,
    #[serde(default)]
    run_details: Option<BkRunDetails>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BkDefinition {
    #[serde(default)]
    resolved_dependencies: Vec<BkDependency>,
}
#[derive(Deserialize)]
struct BkDependency {
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    digest: BTreeMap<String, String>,
}
#[derive(Deserialize)]
struct BkRunDetails {
    #[serde(default)]
    metadata: Option<BkMetadata>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BkMetadata {
    #[serde(default)]
    started_on: Option<String>,
    #[serde(default)]
    finished_on: Option<String>,
}

impl BuildkitProvenance {
    /// Parses BuildKit's in-toto statement (predicate type SLSA v1) and checks each dependency's digests.
    pub fn parse(bytes: &[u8]) -> Result<BuildkitProvenance, ProvenanceError> {
        let s: BkStatement = serde_json::from_slice(bytes)
            .map_err(|e| ProvenanceError::Buildkit(format!("not an in-toto statement: {e}")))?;
        if s.predicate_type != SLSA_PROVENANCE_V1 {
            return Err(ProvenanceError::Buildkit(format!(
                "predicateType is {:?}, not {SLSA_PROVENANCE_V1}",
                s.predicate_type
            )));
        }
        let mut resolved = Vec::new();
        for (i, d) in s
            .predicate
            .build_definition
            .resolved_dependencies
            .into_iter()
            .enumerate()
        {
            let rd = ResourceDescriptor {
                uri: d.uri,
                digest: d.digest,
                ..ResourceDescriptor::default()
            };
            validate_descriptor(
                &rd,
                &format!("predicate.buildDefinition.resolvedDependencies[{i}]"),
            )
            .map_err(|e| ProvenanceError::Buildkit(e.to_string()))?;
            resolved.push(rd);
        }
        let meta = s.predicate.run_details.and_then(|r| r.metadata);
        let (started_on, finished_on) = match meta {
            Some(m) => (m.started_on, m.finished_on),
            None => (None, None),
        };
        Ok(BuildkitProvenance {
            resolved_dependencies: resolved,
            started_on,
            finished_on,
        })
    }
}

/// The digest of the SLSA provenance v1 layer (`application/vnd.in-toto+json`, `in-toto.io/predicate-type`
/// [`SLSA_PROVENANCE_V1`]) of one of BuildKit's attestation manifests, if it has one.
/// Read with `kibaship_provenance::buildkit` (every layer typed and bounded); `None` when the bytes are not such a
/// manifest.
pub fn slsa_layer_digest(manifest_bytes: &[u8]) -> Option<String> {
    let manifest: kibaship_oci::manifest::ImageManifest =
        serde_json::from_slice(manifest_bytes).ok()?;
    let digest = kibaship_oci::Digest::sha256_of(manifest_bytes);
    kibaship_provenance::buildkit::in_toto_layers(&manifest, &digest)
        .ok()?
        .into_iter()
        .find(|l| l.predicate_type == SLSA_PROVENANCE_V1)
        .map(|l| l.descriptor.digest.to_string())
        .filter(|d| is_sha256_digest(d))
}

/// The images a Railpack plan names (`deploy.base.image`, each step's `inputs[].image`), in first-seen order.
pub fn plan_images(plan: &[u8]) -> Result<Vec<String>, ProvenanceError> {
    let v: Value = serde_json::from_slice(plan)
        .map_err(|e| input("--plan (planPath)", format!("plan.json is not JSON: {e}")))?;
    let mut images: Vec<String> = Vec::new();
    let mut add = |s: Option<&str>| {
        if let Some(s) = s.filter(|s| !s.is_empty())
            && !images.iter().any(|i| i == s)
        {
            images.push(s.to_string());
        }
    };
    add(v.pointer("/deploy/base/image").and_then(Value::as_str));
    for step in v
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for i in step
            .get("inputs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add(i.get("image").and_then(Value::as_str));
        }
    }
    Ok(images)
}

/// Checks a `sha256:<64 lowercase hex>` digest given as `field`.
pub fn check_sha256_digest(field: &'static str, value: &str) -> Result<(), ProvenanceError> {
    if is_sha256_digest(value) {
        Ok(())
    } else {
        Err(input(
            field,
            format!("{value:?} is not sha256:<64 lowercase hex>"),
        ))
    }
}

/// `sha256:<hex>` of bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    kibaship_oci::Digest::sha256_of(bytes).to_string()
}

/// Whether `value` is `sha256:<64 lower-case hex>`, as the OCI client's digest parser reads digests.
fn is_sha256_digest(value: &str) -> bool {
    kibaship_oci::Digest::parse(value)
        .is_ok_and(|d| d.algorithm() == kibaship_oci::digest::Algorithm::Sha256)
}

/// The package URL BuildKit records for an image reference `name[:tag][@digest]`: `pkg:docker/name@tag`.
fn docker_purl(reference: &str) -> String {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let (name, tag) = match without_digest.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (without_digest, "latest"),
    };
    format!("pkg:docker/{name}@{tag}")
}

/// Everything a provenance statement is made from: the build's params, results and metadata.
#[derive(Debug, Clone)]
pub struct ProvenanceInput {
    /// The `image` result: `registry/repository:tag`.
    pub image: String,
    /// The subject name: the image's repository as go-containerregistry names it (what cosign and `kibaverify
    /// attest` put in their statements).
    pub subject_name: String,
    /// The `digest` result (`sha256:<64 hex>`), equal to buildctl's `containerimage.digest`.
    pub digest: String,
    pub source_uri: String,
    pub commit: String,
    pub git_ref: Option<String>,
    /// plan.json's bytes' digest.
    pub plan_digest: String,
    /// Images the plan names.
    pub plan_images: Vec<String>,
    pub platform: String,
    pub context_path: String,
    pub railpack_version: String,
    pub cache_key: String,
    pub build_args: Vec<String>,
    pub build_secrets: Vec<String>,
    pub build_key: Option<String>,
    pub sbom: bool,
    pub invocation_id: String,
    pub builder_id: String,
    pub started_on: Option<String>,
    pub finished_on: Option<String>,
    pub buildkit: Option<BuildkitProvenance>,
}

/// An RFC 3339 time normalised to UTC with `Z` (in-toto's Timestamp).
fn timestamp(field: &'static str, value: &str) -> Result<String, ProvenanceError> {
    let t = OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|e| input(field, format!("{value:?} is not an RFC 3339 time: {e}")))?;
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| input(field, format!("cannot format {value:?}: {e}")))
}

/// Builds the statement from `input` and validates it.
pub fn generate(input_: &ProvenanceInput) -> Result<Statement, ProvenanceError> {
    let i = input_;
    if i.image.trim().is_empty() {
        return Err(input("--image (image result)", "is empty"));
    }
    if i.subject_name.trim().is_empty() {
        return Err(input("--image (image result)", "names no repository"));
    }
    check_sha256_digest("--digest (digest result)", &i.digest)?;
    if i.commit.is_empty() {
        return Err(input(
            "--revision (gitCommit)",
            "missing: the source commit is required",
        ));
    }
    if !COMMIT.is_match(&i.commit) {
        return Err(input(
            "--revision (gitCommit)",
            format!(
                "{:?} is not a full commit SHA (40 or 64 lowercase hex)",
                i.commit
            ),
        ));
    }
    if i.source_uri.trim().is_empty() {
        return Err(input(
            "--source-url (gitUrl)",
            "missing: the source repository URL is required",
        ));
    }
    if i.source_uri
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(input(
            "--source-url (gitUrl)",
            format!("{:?} is not a URL", i.source_uri),
        ));
    }
    if let Some(r) = &i.git_ref
        && (r.is_empty() || r.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(input("--git-ref", format!("{r:?} is not a git ref")));
    }
    if !is_sha256_digest(&i.plan_digest) {
        return Err(input(
            "--plan (planPath)",
            format!("digest {:?} is not sha256:<64 hex>", i.plan_digest),
        ));
    }
    if i.invocation_id.trim().is_empty() {
        return Err(input(
            "--invocation-id (PipelineRun UID, KIBASHIP_INVOCATION_ID)",
            "missing: the PipelineRun's UID is required",
        ));
    }
    if i.builder_id.trim().is_empty() {
        return Err(input("--builder-id", "is empty"));
    }
    let started_on = match i
        .started_on
        .as_deref()
        .or(i.buildkit.as_ref().and_then(|b| b.started_on.as_deref()))
    {
        Some(s) => Some(timestamp("--started-on", s)?),
        None => None,
    };
    let finished_on = match i
        .finished_on
        .as_deref()
        .or(i.buildkit.as_ref().and_then(|b| b.finished_on.as_deref()))
    {
        Some(s) => Some(timestamp("--finished-on", s)?),
        None => None,
    };

    let frontend_source = format!(
        "ghcr.io/railwayapp/railpack-frontend:{}",
        i.railpack_version
    );
    let hex = i.digest.trim_start_matches("sha256:");
    let subject = vec![ResourceDescriptor {
        name: Some(i.subject_name.clone()),
        digest: BTreeMap::from([("sha256".to_string(), hex.to_string())]),
        ..ResourceDescriptor::default()
    }];

    let mut deps = Vec::new();
    let source_uri = match &i.git_ref {
        Some(r) => format!("git+{}@{r}", i.source_uri),
        None => format!("git+{}", i.source_uri),
    };
    deps.push(ResourceDescriptor {
        uri: Some(source_uri),
        digest: BTreeMap::from([("gitCommit".to_string(), i.commit.clone())]),
        ..ResourceDescriptor::default()
    });
    deps.push(ResourceDescriptor {
        name: Some("plan.json".to_string()),
        digest: BTreeMap::from([(
            "sha256".to_string(),
            i.plan_digest.trim_start_matches("sha256:").to_string(),
        )]),
        media_type: Some("application/json".to_string()),
        ..ResourceDescriptor::default()
    });
    let bk = i.buildkit.as_ref();
    let mut wanted = vec![frontend_source.clone()];
    wanted.extend(i.plan_images.iter().cloned());
    for reference in &wanted {
        let purl = docker_purl(reference);
        let found = bk.and_then(|b| {
            b.resolved_dependencies.iter().find(|d| {
                d.uri
                    .as_deref()
                    .is_some_and(|u| u == purl || u.starts_with(&format!("{purl}?")))
            })
        });
        match found {
            Some(d) => deps.push(ResourceDescriptor {
                name: Some(reference.clone()),
                ..d.clone()
            }),
            None => deps.push(ResourceDescriptor {
                uri: Some(purl),
                name: Some(reference.clone()),
                annotations: BTreeMap::from([(
                    "kibaship.io/digest".to_string(),
                    Value::String(
                        "unresolved: not in BuildKit's provenance (give --buildkit-provenance, the \
                         SLSA layer of the pushed index's attestation manifest)"
                            .to_string(),
                    ),
                )]),
                ..ResourceDescriptor::default()
            }),
        }
    }
    // Anything else BuildKit resolved (images a plan step pulled), as BuildKit recorded it.
    for d in bk
        .map(|b| b.resolved_dependencies.as_slice())
        .unwrap_or(&[])
    {
        if !deps.iter().any(|x| x.uri == d.uri && x.digest == d.digest) {
            deps.push(d.clone());
        }
    }

    let mut attestations = vec!["provenance=mode=max".to_string()];
    if i.sbom {
        attestations.push("sbom=".to_string());
    }
    let statement = Statement {
        statement_type: STATEMENT_TYPE_V1.to_string(),
        subject,
        predicate_type: SLSA_PROVENANCE_V1.to_string(),
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE.to_string(),
                external_parameters: ExternalParameters {
                    source: SourceParameters {
                        uri: i.source_uri.clone(),
                        commit: i.commit.clone(),
                        r#ref: i.git_ref.clone(),
                    },
                    plan: PlanParameters {
                        digest: i.plan_digest.clone(),
                    },
                    platform: i.platform.clone(),
                    context_path: i.context_path.clone(),
                    railpack_version: i.railpack_version.clone(),
                    cache_key: i.cache_key.clone(),
                    build_args: i.build_args.clone(),
                    build_secrets: i.build_secrets.clone(),
                    image: i.image.clone(),
                },
                internal_parameters: InternalParameters {
                    buildkit_frontend: BUILDKIT_FRONTEND.to_string(),
                    frontend_source,
                    build_key: i.build_key.clone(),
                    attestations,
                },
                resolved_dependencies: deps,
            },
            run_details: RunDetails {
                builder: Builder {
                    id: i.builder_id.clone(),
                    version: BTreeMap::from([
                        (
                            "kibaship-step".to_string(),
                            env!("CARGO_PKG_VERSION").to_string(),
                        ),
                        ("railpack".to_string(), i.railpack_version.clone()),
                    ]),
                },
                metadata: BuildMetadata {
                    invocation_id: i.invocation_id.clone(),
                    started_on,
                    finished_on,
                },
            },
        },
    };
    statement.validate()?;
    Ok(statement)
}

/// Hex length in bytes of the digest algorithms in-toto's `digest_set.md` knows (custom ones are not checked).
fn digest_sizes(algorithm: &str) -> Option<&'static [usize]> {
    Some(match algorithm {
        "md5" => &[16],
        "sha1" => &[20],
        "gitBlob" | "gitCommit" | "gitTag" | "gitTree" => &[20, 32],
        "sha224" | "sha512_224" | "sha3_224" => &[28],
        "sha256" | "sha512_256" | "sha3_256" | "dirHash" => &[32],
        "sha384" | "sha3_384" => &[48],
        "sha512" | "sha3_512" => &[64],
        _ => return None,
    })
}

/// in-toto `ResourceDescriptor.Validate`: one of name, uri, digest; known algorithms' digests hex of their size.
fn validate_descriptor(d: &ResourceDescriptor, path: &str) -> Result<(), ProvenanceError> {
    let empty = |s: &Option<String>| s.as_deref().is_none_or(str::is_empty);
    if empty(&d.name) && empty(&d.uri) && d.digest.is_empty() {
        return Err(invalid(
            path,
            "at least one of name, uri or digest is required",
        ));
    }
    for (alg, value) in &d.digest {
        if let Some(sizes) = digest_sizes(alg) {
            let ok = value.len() % 2 == 0
                && value.bytes().all(|b| b.is_ascii_hexdigit())
                && sizes.contains(&(value.len() / 2));
            if !ok {
                return Err(invalid(
                    format!("{path}.digest.{alg}"),
                    format!(
                        "{value:?} is not {} hex digits",
                        sizes
                            .iter()
                            .map(|s| (s * 2).to_string())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut c = scheme.chars();
    c.next().is_some_and(|c| c.is_ascii_alphabetic())
        && c.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Statement {
    /// The rules of in-toto Statement v1 (`Statement.Validate`) and SLSA provenance v1 (required for Build L1:
    /// `buildDefinition.buildType`, `externalParameters`, `runDetails.builder.id`; resource descriptors; RFC 3339
    /// timestamps), plus ours: one subject with a sha256 digest, our build type, `startedOn` ≤ `finishedOn`.
    pub fn validate(&self) -> Result<(), ProvenanceError> {
        if self.statement_type != STATEMENT_TYPE_V1 {
            return Err(invalid(
                "_type",
                format!("{:?} is not {STATEMENT_TYPE_V1}", self.statement_type),
            ));
        }
        if self.subject.is_empty() {
            return Err(invalid("subject", "at least one subject is required"));
        }
        for (n, s) in self.subject.iter().enumerate() {
            let path = format!("subject[{n}]");
            validate_descriptor(s, &path)?;
            match s.digest.get("sha256") {
                Some(_) => {}
                None => {
                    return Err(invalid(
                        format!("{path}.digest"),
                        "a sha256 digest is required",
                    ));
                }
            }
        }
        if self.predicate_type != SLSA_PROVENANCE_V1 {
            return Err(invalid(
                "predicateType",
                format!("{:?} is not {SLSA_PROVENANCE_V1}", self.predicate_type),
            ));
        }
        let def = &self.predicate.build_definition;
        if def.build_type.is_empty() || !absolute_uri(&def.build_type) {
            return Err(invalid(
                "predicate.buildDefinition.buildType",
                format!("{:?} is not an absolute URI", def.build_type),
            ));
        }
        let ext = &def.external_parameters;
        if !COMMIT.is_match(&ext.source.commit) {
            return Err(invalid(
                "predicate.buildDefinition.externalParameters.source.commit",
                format!("{:?} is not a full commit SHA", ext.source.commit),
            ));
        }
        if ext.source.uri.is_empty() {
            return Err(invalid(
                "predicate.buildDefinition.externalParameters.source.uri",
                "is empty",
            ));
        }
        if !is_sha256_digest(&ext.plan.digest) {
            return Err(invalid(
                "predicate.buildDefinition.externalParameters.plan.digest",
                format!("{:?} is not sha256:<64 hex>", ext.plan.digest),
            ));
        }
        for (n, d) in def.resolved_dependencies.iter().enumerate() {
            validate_descriptor(
                d,
                &format!("predicate.buildDefinition.resolvedDependencies[{n}]"),
            )?;
        }
        let run = &self.predicate.run_details;
        if run.builder.id.is_empty() || !absolute_uri(&run.builder.id) {
            return Err(invalid(
                "predicate.runDetails.builder.id",
                format!("{:?} is not an absolute URI", run.builder.id),
            ));
        }
        let meta = &run.metadata;
        let mut times = Vec::new();
        for (name, value) in [
            ("startedOn", &meta.started_on),
            ("finishedOn", &meta.finished_on),
        ] {
            if let Some(v) = value {
                let t = OffsetDateTime::parse(v, &Rfc3339).map_err(|e| {
                    invalid(
                        format!("predicate.runDetails.metadata.{name}"),
                        format!("{v:?} is not RFC 3339: {e}"),
                    )
                })?;
                times.push(t);
            }
        }
        if let [start, finish] = times[..]
            && finish < start
        {
            return Err(invalid(
                "predicate.runDetails.metadata.finishedOn",
                "is before startedOn",
            ));
        }
        Ok(())
    }

    /// Reads a statement back, refusing any field our model does not have, and validates it.
    pub fn parse_strict(bytes: &[u8]) -> Result<Statement, ProvenanceError> {
        let s: Statement =
            serde_json::from_slice(bytes).map_err(|e| invalid("$", e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// Pretty JSON (what `kibaship-step provenance` writes).
    pub fn to_json(&self) -> Vec<u8> {
        // Strings, maps and vectors of them always serialise.
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// The predicate alone, for `kibaverify attest --predicate F --type slsaprovenance1`.
    pub fn predicate_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(&self.predicate).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT_SHA: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

    fn hex64(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn input_ok() -> ProvenanceInput {
        ProvenanceInput {
            image: "ghcr.io/kibaship/acme/web:v1".into(),
            subject_name: "ghcr.io/kibaship/acme/web".into(),
            digest: format!("sha256:{}", hex64('a')),
            source_uri: "https://github.com/acme/web".into(),
            commit: COMMIT_SHA.into(),
            git_ref: Some("refs/heads/main".into()),
            plan_digest: format!("sha256:{}", hex64('b')),
            plan_images: vec!["ghcr.io/railwayapp/railpack-runtime:latest".into()],
            platform: "linux/amd64".into(),
            context_path: ".".into(),
            railpack_version: "v0.15.0".into(),
            cache_key: "tenant".into(),
            build_args: vec!["A=b".into()],
            build_secrets: vec!["NPM_TOKEN".into()],
            build_key: Some(hex64('c')),
            sbom: true,
            invocation_id: "3f2a-uid".into(),
            builder_id: default_builder_id(),
            started_on: Some("2026-12-05T22:47:24+01:00".into()),
            finished_on: None,
            buildkit: Some(BuildkitProvenance {
                resolved_dependencies: vec![
                    ResourceDescriptor {
                        uri: Some("pkg:docker/ghcr.io/railwayapp/railpack-frontend@v0.15.0".into()),
                        digest: BTreeMap::from([("sha256".into(), hex64('d'))]),
                        ..Default::default()
                    },
                    ResourceDescriptor {
                        uri: Some(
                            "pkg:docker/ghcr.io/railwayapp/railpack-runtime@latest?platform=linux%2Famd64".into(),
                        ),
                        digest: BTreeMap::from([("sha256".into(), hex64('e'))]),
                        ..Default::default()
                    },
                ],
                started_on: Some("2026-12-05T21:47:24.1Z".into()),
                finished_on: Some("2026-12-05T21:47:27.6Z".into()),
            }),
        }
    }

    #[test]
    fn generates_a_valid_statement_that_reads_back_strictly() {
        let s = generate(&input_ok()).expect("valid");
        let back = Statement::parse_strict(&s.to_json()).expect("reads back");
        assert_eq!(back, s);
        let v: Value = serde_json::from_slice(&s.to_json()).expect("json");
        assert_eq!(v["_type"], STATEMENT_TYPE_V1);
        assert_eq!(v["subject"][0]["digest"]["sha256"], hex64('a'));
        let deps = &v["predicate"]["buildDefinition"]["resolvedDependencies"];
        assert_eq!(
            deps[0]["uri"],
            "git+https://github.com/acme/web@refs/heads/main"
        );
        assert_eq!(deps[0]["digest"]["gitCommit"], COMMIT_SHA);
        assert_eq!(deps[2]["digest"]["sha256"], hex64('d'), "{deps}");
        assert_eq!(deps[3]["digest"]["sha256"], hex64('e'), "{deps}");
        assert_eq!(
            deps.as_array().map(Vec::len),
            Some(4),
            "no duplicates: {deps}"
        );
        // The flag wins over BuildKit's time, normalised to UTC; BuildKit's finish fills the gap.
        assert_eq!(
            v["predicate"]["runDetails"]["metadata"]["startedOn"],
            "2026-12-05T21:47:24Z"
        );
        assert_eq!(
            v["predicate"]["runDetails"]["metadata"]["finishedOn"],
            "2026-12-05T21:47:27.6Z"
        );
    }

    #[test]
    fn unresolved_images_are_named_without_an_invented_digest() {
        let mut i = input_ok();
        i.buildkit = None;
        let s = generate(&i).expect("valid");
        let deps = &s.predicate.build_definition.resolved_dependencies;
        let frontend = &deps[2];
        assert_eq!(
            frontend.uri.as_deref(),
            Some("pkg:docker/ghcr.io/railwayapp/railpack-frontend@v0.15.0")
        );
        assert!(frontend.digest.is_empty());
        assert!(frontend.annotations.contains_key("kibaship.io/digest"));
    }

    #[test]
    fn bad_inputs_name_their_field() {
        type Mutation = fn(&mut ProvenanceInput);
        let cases: Vec<(Mutation, &str)> = vec![
            (|i| i.commit.clear(), "--revision (gitCommit): missing"),
            (
                |i| i.commit = "abc".into(),
                "--revision (gitCommit): \"abc\" is not a full commit SHA",
            ),
            (
                |i| i.digest = "sha256:abc".into(),
                "--digest (digest result): \"sha256:abc\" is not sha256:<64",
            ),
            (
                |i| i.digest = format!("sha512:{}", "a".repeat(64)),
                "--digest (digest result)",
            ),
            (|i| i.invocation_id.clear(), "--invocation-id"),
            (|i| i.source_uri.clear(), "--source-url (gitUrl): missing"),
            (
                |i| i.started_on = Some("yesterday".into()),
                "--started-on: \"yesterday\" is not an RFC 3339",
            ),
        ];
        for (mutate, want) in cases {
            let mut i = input_ok();
            mutate(&mut i);
            let e = generate(&i).expect_err(want);
            assert!(e.to_string().starts_with(want), "{e} / {want}");
            assert_eq!(e.kind(), FailureKind::BadParameters);
        }
    }

    #[test]
    fn validation_follows_the_spec_rules() {
        let good = generate(&input_ok()).expect("valid");
        let check = |f: fn(&mut Statement), path: &str| {
            let mut s = good.clone();
            f(&mut s);
            match s.validate() {
                Err(ProvenanceError::Invalid { path: p, .. }) => assert_eq!(p, path),
                other => panic!("{path}: {other:?}"),
            }
        };
        check(
            |s| s.statement_type = "https://in-toto.io/Statement/v0.1".into(),
            "_type",
        );
        check(|s| s.subject.clear(), "subject");
        check(
            |s| {
                s.subject[0].digest.clear();
            },
            "subject[0].digest",
        );
        check(
            |s| s.predicate_type = "https://slsa.dev/provenance/v0.2".into(),
            "predicateType",
        );
        check(
            |s| s.predicate.build_definition.build_type.clear(),
            "predicate.buildDefinition.buildType",
        );
        check(
            |s| s.predicate.run_details.builder.id = "railpack".into(),
            "predicate.runDetails.builder.id",
        );
        check(
            |s| {
                s.predicate.build_definition.resolved_dependencies[1]
                    .digest
                    .insert("sha256".into(), "zz".into());
            },
            "predicate.buildDefinition.resolvedDependencies[1].digest.sha256",
        );
        check(
            |s| {
                s.predicate
                    .build_definition
                    .resolved_dependencies
                    .push(ResourceDescriptor::default())
            },
            "predicate.buildDefinition.resolvedDependencies[4]",
        );
        check(
            |s| s.predicate.run_details.metadata.finished_on = Some("2026-12-05T20:00:00Z".into()),
            "predicate.runDetails.metadata.finishedOn",
        );
    }

    #[test]
    fn unknown_fields_are_refused_on_read_back() {
        let s = generate(&input_ok()).expect("valid");
        let mut v: Value = serde_json::from_slice(&s.to_json()).expect("json");
        v["predicate"]["buildDefinition"]["externalParameters"]["extra"] = Value::Bool(true);
        let e = Statement::parse_strict(&serde_json::to_vec(&v).expect("json"))
            .expect_err("unknown field");
        assert!(e.to_string().contains("unknown field `extra`"), "{e}");
    }

    #[test]
    fn buildkit_provenance_is_read_leniently_but_digests_are_checked() {
        let ok = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v1",
            "subject":[],"predicate":{"buildDefinition":{"buildType":"x","resolvedDependencies":[
            {"uri":"pkg:docker/a@b","digest":{"sha256":"0000000000000000000000000000000000000000000000000000000000000000"}}]},
            "runDetails":{"builder":{"id":""},"metadata":{"startedOn":"2026-12-05T21:47:24Z","buildkit_metadata":{}}}}}"#;
        let b = BuildkitProvenance::parse(ok).expect("parses");
        assert_eq!(b.resolved_dependencies.len(), 1);
        assert_eq!(b.started_on.as_deref(), Some("2026-12-05T21:47:24Z"));
        let bad = String::from_utf8_lossy(ok).replace("\"0000", "\"zz00");
        let e = BuildkitProvenance::parse(bad.as_bytes()).expect_err("bad digest");
        assert_eq!(e.kind(), FailureKind::Build);
        assert!(
            e.to_string()
                .contains("resolvedDependencies[0].digest.sha256"),
            "{e}"
        );
        let e = BuildkitProvenance::parse(b"{}").expect_err("not a statement");
        assert!(
            e.to_string()
                .starts_with("BuildKit provenance: not an in-toto statement"),
            "{e}"
        );
    }

    #[test]
    fn finds_the_slsa_layer_of_an_attestation_manifest() {
        let d = format!("sha256:{}", hex64('f'));
        let manifest = |layers: &str| {
            format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":1}},"layers":[{layers}]}}"#,
                hex64('1')
            )
        };
        let m = manifest(&format!(
            r#"{{"mediaType":"application/vnd.in-toto+json","size":1,"digest":"sha256:{}","annotations":{{"in-toto.io/predicate-type":"https://spdx.dev/Document"}}}},
                {{"mediaType":"application/vnd.in-toto+json","size":1,"digest":"{d}","annotations":{{"in-toto.io/predicate-type":"https://slsa.dev/provenance/v1"}}}}"#,
            hex64('0')
        ));
        assert_eq!(slsa_layer_digest(m.as_bytes()), Some(d));
        assert_eq!(slsa_layer_digest(manifest("").as_bytes()), None);
        assert_eq!(slsa_layer_digest(b"not json"), None);
    }

    #[test]
    fn plan_images_and_purls() {
        let plan = br#"{"deploy":{"base":{"image":"ghcr.io/r/runtime:latest"}},
            "steps":[{"inputs":[{"image":"ghcr.io/r/builder:1"},{"local":true}]},{"inputs":[{"image":"ghcr.io/r/runtime:latest"}]}]}"#;
        assert_eq!(
            plan_images(plan).expect("ok"),
            vec!["ghcr.io/r/runtime:latest", "ghcr.io/r/builder:1"]
        );
        assert_eq!(docker_purl("ghcr.io/a/b:v1"), "pkg:docker/ghcr.io/a/b@v1");
        assert_eq!(
            docker_purl("localhost:5000/a/b"),
            "pkg:docker/localhost:5000/a/b@latest"
        );
        assert_eq!(
            docker_purl("ghcr.io/a/b:v1@sha256:00"),
            "pkg:docker/ghcr.io/a/b@v1"
        );
    }
}
