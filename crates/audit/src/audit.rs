//! Judging an [`Inventory`]: each distinct reference resolved to its digest once, each distinct digest verified
//! once per distinct set of requirements (whatever the number of workloads using it) through
//! [`kibaship_cosign::ImageVerifier`], with at most `concurrency` images in flight per registry; then, per
//! container, the answer the admission webhook gives ([`kibaship_policy::Answer::for_image`]: policy selection by
//! namespace and image, modes, exceptions). A registry error is recorded for its image and the audit goes on.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kibaship_cosign::{ImagePolicy, ImageVerifier, Verdict};
use kibaship_oci::{Credential, Reference, RegistryClient};
use kibaship_policy::{Answer, ExceptionMatch, Mode, NamespaceInfo, PolicySet};
use kibaship_sigstore::Verifier;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::inventory::{Inventory, Severity};
use crate::report::{
    AttestationEntry, ContainerEntry, ExceptionEntry, ImageEntry, ImageStatus, PolicyResult,
    REPORT_SCHEMA, Report, RequirementsInfo, Summary, WorkloadEntry, answer_rank,
};

/// Default images in flight per registry.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// What images must carry.
#[derive(Debug, Clone)]
pub enum Requirements {
    /// An admission policy file (its origin and the parsed set): selection by namespace and image, modes and
    /// exceptions, as the webhook applies them.
    PolicyFile(String, Arc<PolicySet>),
    /// One [`ImagePolicy`] (from `verify`'s key or identity flags) for every image, as an `enforce` policy that
    /// selects everything.
    Flags(Arc<ImagePolicy>),
}

/// How the audit reaches registries.
#[derive(Clone)]
pub struct AuditConfig {
    /// The registry client (without an overall deadline: each image gets [`AuditConfig::image_timeout`]).
    pub client: RegistryClient,
    /// The bundle verifier over the trusted root.
    pub verifier: Arc<Verifier>,
    /// Images resolved or verified at the same time, per registry (at least 1).
    pub concurrency: usize,
    /// Longest the resolution, or one verification, of one image may take.
    pub image_timeout: Option<Duration>,
    /// Unix seconds: certificate validity and exception expiry are judged at this time.
    pub now: i64,
}

impl std::fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditConfig")
            .field("concurrency", &self.concurrency)
            .field("image_timeout", &self.image_timeout)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Told about the audit's progress (a progress bar); every method has a default that does nothing.
pub trait Progress: Send + Sync {
    /// The number of registry steps (resolutions and verifications) known so far.
    fn add_steps(&self, _steps: usize) {}
    /// One step is done; `image` names it.
    fn step_done(&self, _image: &str) {}
}

/// No progress reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A requirement set: a policy of the file, or the flags' one.
struct Rule {
    name: String,
    mode: Mode,
    image_policy: Arc<ImagePolicy>,
    fingerprint: [u8; 32],
    /// [`ImagePolicy::any_attestation`] of `image_policy`: every attestation its authorities signed.
    attestations: Arc<ImagePolicy>,
}

impl Rule {
    fn new(
        name: String,
        mode: Mode,
        image_policy: Arc<ImagePolicy>,
        fingerprint: [u8; 32],
    ) -> Rule {
        Rule {
            name,
            mode,
            attestations: Arc::new(image_policy.any_attestation()),
            image_policy,
            fingerprint,
        }
    }
}

/// What one registry job found: a policy's verdict, or the attestations the authorities signed.
enum Found {
    Verdict(Box<Verdict>),
    Attestations(Vec<AttestationEntry>),
}

/// Why an image could not be judged.
#[derive(Debug, Clone)]
struct ImageError {
    code: &'static str,
    message: String,
}

/// Whose credentials read an image: `None` kibaverify's own, `Some("namespace/name")` a workload's pull secret.
/// Resolutions, verdicts and attestation reads are kept per scope: one obtained with a pull secret is never
/// given to a workload that reads the image with other credentials (or none).
type Scope = Option<String>;

/// The per-container judging before any registry is read.
struct Site {
    rules: Vec<usize>,
    scope: Scope,
    exception: Option<ExceptionEntry>,
    exception_active: bool,
}

/// Audits `inventory` against `requirements`. Never fails: what cannot be read is in the report.
pub async fn audit(
    inventory: Inventory,
    requirements: &Requirements,
    config: &AuditConfig,
    progress: &dyn Progress,
) -> Report {
    let rules: Vec<Rule> = match requirements {
        Requirements::PolicyFile(_, set) => set
            .policies()
            .iter()
            .map(|p| {
                Rule::new(
                    p.name().to_owned(),
                    p.mode(),
                    Arc::clone(p.shared_image_policy()),
                    p.fingerprint(),
                )
            })
            .collect(),
        Requirements::Flags(policy) => vec![Rule::new(
            "flags".to_owned(),
            Mode::Enforce,
            Arc::clone(policy),
            policy.fingerprint(),
        )],
    };

    // 1. Which rules judge each container, and which each distinct image needs.
    let mut sites: Vec<Vec<Site>> = Vec::with_capacity(inventory.workloads.len());
    let mut needs: BTreeMap<(&str, Scope), BTreeSet<usize>> = BTreeMap::new();
    // Per pull secret, its credentials by registry (for the images read in its scope).
    let mut scope_credentials: BTreeMap<String, HashMap<String, Credential>> = BTreeMap::new();
    for workload in &inventory.workloads {
        let labels = inventory.namespace_labels.get(&workload.namespace);
        let namespace = match labels {
            Some(labels) => NamespaceInfo::new(&workload.namespace, labels),
            None => NamespaceInfo::without_labels(&workload.namespace),
        };
        let mut row = Vec::with_capacity(workload.containers.len());
        for container in &workload.containers {
            let image = container.image.as_str();
            let scope: Scope = Reference::parse(image).ok().and_then(|reference| {
                let (source, credential) =
                    workload.credentials.for_registry(reference.registry())?;
                scope_credentials
                    .entry(source.to_owned())
                    .or_default()
                    .insert(reference.registry().to_owned(), credential.clone());
                Some(source.to_owned())
            });
            let site = match requirements {
                Requirements::Flags(_) => Site {
                    rules: vec![0],
                    scope: scope.clone(),
                    exception: None,
                    exception_active: false,
                },
                Requirements::PolicyFile(_, set) => {
                    let selected = set.select(&namespace, image);
                    let indices: Vec<usize> = selected
                        .iter()
                        .filter_map(|p| set.policies().iter().position(|q| std::ptr::eq(*p, q)))
                        .collect();
                    let exception = if indices.is_empty() {
                        ExceptionMatch::None
                    } else {
                        set.exception_for(&workload.namespace, image, config.now)
                    };
                    let (entry, active) = match exception {
                        ExceptionMatch::None => (None, false),
                        ExceptionMatch::Active(e) | ExceptionMatch::Expired(e) => (
                            Some(ExceptionEntry {
                                owner: e.owner().to_owned(),
                                reason: e.reason().to_owned(),
                                expires: e.expires_rfc3339().to_owned(),
                                location: e.location(),
                                active: exception.is_active(),
                            }),
                            exception.is_active(),
                        ),
                    };
                    Site {
                        rules: indices,
                        scope: scope.clone(),
                        exception: entry,
                        exception_active: active,
                    }
                }
            };
            let wanted = needs.entry((image, scope)).or_default();
            if !site.exception_active {
                wanted.extend(site.rules.iter().copied());
            }
            row.push(site);
        }
        sites.push(row);
    }

    // 2. Each distinct reference some policy judges resolved once (the others are not read: no registry is
    // contacted for an image nothing requires anything of).
    let limits = RegistryLimits::new(config.concurrency);
    // One registry client per scope: a pull secret's has its own connections, token and manifest caches, so
    // nothing read with one tenant's credentials is served to another's reads.
    let mut clients: HashMap<Scope, RegistryClient> = HashMap::new();
    clients.insert(None, config.client.clone());
    for (source, credentials) in scope_credentials {
        let own = RegistryClient::new(config.client.config().clone())
            .unwrap_or_else(|_| config.client.clone());
        clients.insert(Some(source), own.with_credentials(credentials));
    }
    let client_for = |scope: &Scope| {
        clients
            .get(scope)
            .cloned()
            .unwrap_or_else(|| config.client.clone())
    };
    let judged_images: Vec<(&str, Scope)> = needs
        .iter()
        .filter(|(_, rules)| !rules.is_empty())
        .map(|((image, scope), _)| (*image, scope.clone()))
        .collect();
    progress.add_steps(judged_images.len());
    let mut resolving = JoinSet::new();
    for (image, scope) in judged_images {
        let image = image.to_owned();
        let client = client_for(&scope);
        let limits = limits.clone();
        let timeout = config.image_timeout;
        resolving.spawn(async move {
            let resolved = resolve(&client, &image, &limits, timeout).await;
            ((image, scope), resolved)
        });
    }
    let mut resolved: HashMap<(String, Scope), Result<Reference, ImageError>> = HashMap::new();
    while let Some(joined) = resolving.join_next().await {
        match joined {
            Ok((key, result)) => {
                progress.step_done(&key.0);
                resolved.insert(key, result);
            }
            // A resolution task that panicked: its image stays unresolved, reported as an internal error below.
            Err(_) => progress.step_done("?"),
        }
    }

    // 3. Each distinct (digest, requirements) verified once; and, once per digest and authorities, every
    // attestation those authorities signed (any type).
    type JobKey = (String, Scope, [u8; 32]);
    let mut jobs: BTreeMap<JobKey, (Arc<ImagePolicy>, bool)> = BTreeMap::new();
    let mut attestation_jobs: BTreeMap<JobKey, Arc<ImagePolicy>> = BTreeMap::new();
    for ((image, scope), rule_indices) in &needs {
        let Some(Ok(pinned)) = resolved.get(&((*image).to_owned(), scope.clone())) else {
            continue;
        };
        for &rule in rule_indices {
            if let Some(r) = rules.get(rule) {
                jobs.entry((by_digest(pinned), scope.clone(), r.fingerprint))
                    .or_insert_with(|| (Arc::clone(&r.image_policy), false));
                attestation_jobs
                    .entry((
                        by_digest(pinned),
                        scope.clone(),
                        r.attestations.fingerprint(),
                    ))
                    .or_insert_with(|| Arc::clone(&r.attestations));
            }
        }
    }
    let verifications = jobs.len();
    let attestation_reads = attestation_jobs.len();
    for (key, policy) in attestation_jobs {
        jobs.entry(key).or_insert((policy, true));
    }
    progress.add_steps(jobs.len());
    let mut verifying = JoinSet::new();
    for ((pinned, scope, fingerprint), (policy, discovery)) in &jobs {
        let key = (pinned.clone(), scope.clone(), *fingerprint);
        let policy = Arc::clone(policy);
        let discovery = *discovery;
        let client = client_for(scope);
        let verifier = Arc::clone(&config.verifier);
        let limits = limits.clone();
        let timeout = config.image_timeout;
        let now = config.now;
        verifying.spawn(async move {
            let result = verify(client, verifier, &key.0, &policy, &limits, timeout, now)
                .await
                .map(|verdict| match discovery {
                    true => Found::Attestations(attestations_of(&verdict, now)),
                    false => Found::Verdict(Box::new(verdict.without_statements())),
                });
            (key, result)
        });
    }
    let mut verdicts: HashMap<JobKey, Result<Verdict, ImageError>> = HashMap::new();
    let mut found_attestations: HashMap<(String, Scope), Vec<AttestationEntry>> = HashMap::new();
    while let Some(joined) = verifying.join_next().await {
        if let Ok((key, result)) = joined {
            progress.step_done(&key.0);
            match (
                result,
                jobs.get(&key).is_some_and(|(_, discovery)| *discovery),
            ) {
                (Ok(Found::Attestations(list)), _) => {
                    let all = found_attestations.entry((key.0, key.1)).or_default();
                    for a in list {
                        if !all.contains(&a) {
                            all.push(a);
                        }
                    }
                }
                // A failed attestation read is no verdict: the policies' own verifications report errors.
                (Err(_), true) => {}
                (Ok(Found::Verdict(verdict)), _) => {
                    verdicts.insert(key, Ok(*verdict));
                }
                (Err(e), false) => {
                    verdicts.insert(key, Err(e));
                }
            }
        }
    }
    let internal = || ImageError {
        code: "internal-error",
        message: "the task judging this image failed".to_owned(),
    };
    let judged = |image: &str, scope: &Scope, rule: usize| -> Result<&Verdict, ImageError> {
        let pinned = match resolved.get(&(image.to_owned(), scope.clone())) {
            Some(Ok(pinned)) => pinned,
            Some(Err(e)) => return Err(e.clone()),
            None => return Err(internal()),
        };
        let fingerprint = rules
            .get(rule)
            .map(|r| r.fingerprint)
            .ok_or_else(internal)?;
        match verdicts.get(&(by_digest(pinned), scope.clone(), fingerprint)) {
            Some(Ok(verdict)) => Ok(verdict),
            Some(Err(e)) => Err(e.clone()),
            None => Err(internal()),
        }
    };
    let result_of = |image: &str, scope: &Scope, rule: usize, checked: bool| -> PolicyResult {
        let (name, mode) = rules
            .get(rule)
            .map_or(("?", "enforce"), |r| (r.name.as_str(), r.mode.as_str()));
        let (verified, code) = if !checked {
            (None, None)
        } else {
            match judged(image, scope, rule) {
                Ok(v) => (
                    Some(v.is_verified()),
                    v.code().map(|c| c.as_str().to_owned()),
                ),
                Err(e) => (Some(false), Some(e.code.to_owned())),
            }
        };
        PolicyResult {
            policy: name.to_owned(),
            mode,
            verified,
            code,
        }
    };

    // 4. The answers, per container and per workload.
    let mut used_by: HashMap<(&str, Scope), usize> = HashMap::new();
    let mut workloads = Vec::with_capacity(inventory.workloads.len());
    for (workload, row) in inventory.workloads.iter().zip(&sites) {
        let mut containers = Vec::with_capacity(workload.containers.len());
        for (container, site) in workload.containers.iter().zip(row) {
            *used_by
                .entry((container.image.as_str(), site.scope.clone()))
                .or_default() += 1;
            let checked = !site.exception_active;
            let policies: Vec<PolicyResult> = site
                .rules
                .iter()
                .map(|&rule| result_of(&container.image, &site.scope, rule, checked))
                .collect();
            let modes = site.rules.iter().zip(&policies).map(|(&rule, result)| {
                let mode = rules.get(rule).map_or(Mode::Enforce, |r| r.mode);
                (mode, result.verified != Some(false))
            });
            let exception = match (&site.exception, site.exception_active) {
                (Some(_), true) => {
                    // Any active exception: Answer::for_image only asks whether one is active.
                    active_exception(
                        requirements,
                        &workload.namespace,
                        &container.image,
                        config.now,
                    )
                }
                _ => ExceptionMatch::None,
            };
            let answer = Answer::for_image(modes, &exception);
            let code = first_code(&policies, &rules, &site.rules, answer);
            containers.push(ContainerEntry {
                name: container.name.clone(),
                container_kind: container.kind,
                image: container.image.clone(),
                digest: match resolved.get(&(container.image.clone(), site.scope.clone())) {
                    Some(Ok(pinned)) => pinned.digest().map(ToString::to_string),
                    _ => Reference::parse(&container.image)
                        .ok()
                        .and_then(|r| r.digest().map(ToString::to_string)),
                },
                answer,
                code,
                policies,
                exception: site.exception.clone(),
            });
        }
        let worst = containers
            .iter()
            .max_by_key(|c| answer_rank(c.answer))
            .map_or((Answer::NotSelected, None), |c| (c.answer, c.code.clone()));
        workloads.push(WorkloadEntry {
            namespace: workload.namespace.clone(),
            kind: workload.kind.clone(),
            name: workload.name.clone(),
            origin: workload.origin.clone(),
            answer: worst.0,
            code: worst.1,
            containers,
        });
    }

    // 5. The images.
    let mut images = Vec::with_capacity(needs.len());
    let mut digests = BTreeSet::new();
    for ((image, scope), rule_indices) in &needs {
        let mut entry = ImageEntry {
            reference: (*image).to_owned(),
            digest: None,
            status: ImageStatus::NotChecked,
            code: None,
            message: None,
            pull_secret: scope.clone(),
            signers: Vec::new(),
            attestations: Vec::new(),
            policies: Vec::new(),
            used_by: used_by.get(&(*image, scope.clone())).copied().unwrap_or(0),
        };
        match resolved.get(&((*image).to_owned(), scope.clone())) {
            Some(Ok(pinned)) => {
                for a in found_attestations
                    .get(&(by_digest(pinned), scope.clone()))
                    .into_iter()
                    .flatten()
                {
                    let known = entry
                        .attestations
                        .iter()
                        .any(|b| b.predicate_type == a.predicate_type && b.signer == a.signer);
                    if !known {
                        entry.attestations.push(a.clone());
                    }
                }
                digests.insert(by_digest(pinned));
                entry.digest = pinned.digest().map(ToString::to_string);
            }
            Some(Err(e)) => {
                entry.status = ImageStatus::Error;
                entry.code = Some(e.code.to_owned());
                entry.message = Some(e.message.clone());
            }
            None if rule_indices.is_empty() => {
                // Not judged, not read: a digest only when the reference names one.
                entry.digest = Reference::parse(image)
                    .ok()
                    .and_then(|r| r.digest().map(ToString::to_string));
            }
            None => {
                let e = internal();
                entry.status = ImageStatus::Error;
                entry.code = Some(e.code.to_owned());
                entry.message = Some(e.message);
            }
        }
        for &rule in rule_indices {
            entry.policies.push(result_of(image, scope, rule, true));
            match judged(image, scope, rule) {
                Ok(verdict) => collect_signers(verdict, &mut entry),
                Err(e) if entry.status != ImageStatus::Error => {
                    entry.status = ImageStatus::Error;
                    entry.code = Some(e.code.to_owned());
                    entry.message = Some(e.message);
                }
                Err(_) => {}
            }
        }
        if entry.status != ImageStatus::Error && !entry.policies.is_empty() {
            let failed = entry.policies.iter().find(|p| p.verified == Some(false));
            entry.status = match failed {
                Some(p) => {
                    entry.code = p.code.clone();
                    ImageStatus::NotVerified
                }
                None => ImageStatus::Verified,
            };
        }
        images.push(entry);
    }

    let mut summary = Summary {
        workloads: workloads.len(),
        containers: workloads.iter().map(|w| w.containers.len()).sum(),
        images: images.len(),
        digests: digests.len(),
        verifications,
        attestation_reads,
        input_errors: inventory
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count(),
        ..Summary::default()
    };
    for w in &workloads {
        *summary
            .answers
            .entry(w.answer.as_str().to_owned())
            .or_default() += 1;
    }
    for i in &images {
        *summary
            .image_statuses
            .entry(i.status.as_str().to_owned())
            .or_default() += 1;
    }
    Report {
        schema: REPORT_SCHEMA,
        generated_at: rfc3339(config.now),
        requirements: match requirements {
            Requirements::PolicyFile(origin, _) => RequirementsInfo::PolicyFile {
                origin: origin.clone(),
            },
            Requirements::Flags(_) => RequirementsInfo::Flags,
        },
        summary,
        images,
        workloads,
        problems: inventory.problems,
    }
}

fn active_exception<'a>(
    requirements: &'a Requirements,
    namespace: &str,
    image: &str,
    now: i64,
) -> ExceptionMatch<'a> {
    match requirements {
        Requirements::PolicyFile(_, set) => set.exception_for(namespace, image, now),
        Requirements::Flags(_) => ExceptionMatch::None,
    }
}

/// The code to show for a container: the first failure of the mode that decided the answer (for `admit`, an
/// `audit` policy's failure, if any).
fn first_code(
    policies: &[PolicyResult],
    rules: &[Rule],
    indices: &[usize],
    answer: Answer,
) -> Option<String> {
    let wanted = match answer {
        Answer::Deny => Mode::Enforce,
        Answer::AdmitWithWarning => Mode::Warn,
        Answer::Admit => Mode::Audit,
        Answer::NotSelected | Answer::Exception => return None,
    };
    indices
        .iter()
        .zip(policies)
        .find(|(rule, p)| {
            rules.get(**rule).is_some_and(|r| r.mode == wanted) && p.verified == Some(false)
        })
        .and_then(|(_, p)| p.code.clone())
}

/// The predicate type of cosign's vulnerability-scan attestations (`cosign attest --type vuln`).
pub const VULN_PREDICATE_TYPE: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";

/// The attestations a verdict accepted, with the scan time and age of vulnerability reports (read from the
/// verified statement's `predicate.metadata.scanFinishedOn`).
fn attestations_of(verdict: &Verdict, now: i64) -> Vec<AttestationEntry> {
    let Some(report) = verdict.attestations() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for accepted in report.signatures.iter().filter_map(|s| s.accepted()) {
        let predicate_type = accepted.predicate_type.clone().unwrap_or_default();
        let scan_finished_on = (predicate_type == VULN_PREDICATE_TYPE)
            .then_some(accepted.statement.as_deref())
            .flatten()
            .and_then(|statement| serde_json::from_slice::<serde_json::Value>(statement).ok())
            .and_then(|statement| {
                statement
                    .pointer("/predicate/metadata/scanFinishedOn")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            });
        let age_days = scan_finished_on.as_deref().and_then(|at| {
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| (now - t.unix_timestamp()).div_euclid(86_400))
        });
        let entry = AttestationEntry {
            predicate_type,
            signer: accepted.signer.clone(),
            scan_finished_on,
            age_days,
        };
        if !found.contains(&entry) {
            found.push(entry);
        }
    }
    found
}

fn collect_signers(verdict: &Verdict, entry: &mut ImageEntry) {
    if let Some(report) = verdict.signatures() {
        for accepted in report.signatures.iter().filter_map(|s| s.accepted()) {
            if !entry.signers.contains(&accepted.signer) {
                entry.signers.push(accepted.signer.clone());
            }
        }
    }
    if let Some(report) = verdict.attestations() {
        for accepted in report.signatures.iter().filter_map(|s| s.accepted()) {
            let predicate_type = accepted.predicate_type.clone().unwrap_or_default();
            let known = entry
                .attestations
                .iter()
                .any(|a| a.predicate_type == predicate_type && a.signer == accepted.signer);
            if !known {
                entry.attestations.push(AttestationEntry {
                    predicate_type,
                    signer: accepted.signer.clone(),
                    scan_finished_on: None,
                    age_days: None,
                });
            }
        }
    }
}

/// A semaphore per registry, made on first use.
#[derive(Clone)]
struct RegistryLimits {
    permits: usize,
    semaphores: Arc<std::sync::Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl RegistryLimits {
    fn new(permits: usize) -> Self {
        RegistryLimits {
            permits: permits.max(1),
            semaphores: Arc::default(),
        }
    }

    fn for_registry(&self, registry: &str) -> Arc<Semaphore> {
        let mut map = self.semaphores.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            map.entry(registry.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.permits))),
        )
    }

    /// Waits for a permit of the reference's registry; the client for one image, its deadline starting now.
    async fn admit(
        &self,
        reference: &Reference,
        client: &RegistryClient,
        timeout: Option<Duration>,
    ) -> Result<(OwnedSemaphorePermit, RegistryClient), ImageError> {
        let permit = self
            .for_registry(reference.registry())
            .acquire_owned()
            .await
            .map_err(|_| ImageError {
                code: "internal-error",
                message: "the registry's permits were closed".to_owned(),
            })?;
        let client = match timeout {
            Some(t) => client.with_timeout(t),
            None => client.clone(),
        };
        Ok((permit, client))
    }
}

fn parse_reference(image: &str) -> Result<Reference, ImageError> {
    Reference::parse(image).map_err(|e| ImageError {
        code: "bad-reference",
        message: format!("not an image reference: {e}"),
    })
}

fn registry_code(e: &kibaship_oci::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_not_found() {
        "image-not-found"
    } else if matches!(e, kibaship_oci::Error::Unauthorized { .. }) {
        "registry-denied"
    } else {
        "registry-unreachable"
    }
}

/// The reference pinned to its digest (a reference by digest is taken as it is: the verification reads it).
async fn resolve(
    client: &RegistryClient,
    image: &str,
    limits: &RegistryLimits,
    timeout: Option<Duration>,
) -> Result<Reference, ImageError> {
    let reference = parse_reference(image)?;
    if let Some(digest) = reference.digest() {
        return Ok(reference.with_digest(digest.clone()));
    }
    let (_permit, client) = limits.admit(&reference, client, timeout).await?;
    match client.resolve_digest(&reference, None).await {
        Ok(resolved) => Ok(reference.with_digest(resolved.digest)),
        Err(e) => Err(ImageError {
            code: registry_code(&e),
            message: format!("resolving {image}: {e}"),
        }),
    }
}

async fn verify(
    client: RegistryClient,
    verifier: Arc<Verifier>,
    pinned: &str,
    policy: &ImagePolicy,
    limits: &RegistryLimits,
    timeout: Option<Duration>,
    now: i64,
) -> Result<Verdict, ImageError> {
    let reference = parse_reference(pinned)?;
    let (_permit, client) = limits.admit(&reference, &client, timeout).await?;
    let verifier = ImageVerifier::with_verifier(client, verifier);
    match verifier.verify(&reference, policy, now).await {
        Ok(verdict) => Ok(verdict),
        Err(e) => Err(ImageError {
            code: e.code().map_or("registry-unreachable", |c| c.as_str()),
            message: format!("verifying {pinned}: {e}"),
        }),
    }
}

/// `registry/repository@digest`: what one verification is about, whatever tag named it.
fn by_digest(pinned: &Reference) -> String {
    match pinned.digest() {
        Some(digest) => format!("{}/{}@{digest}", pinned.registry(), pinned.repository()),
        None => pinned.to_string(),
    }
}

fn rfc3339(now: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(now)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| now.to_string())
}
