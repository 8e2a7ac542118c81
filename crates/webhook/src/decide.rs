//! The admission decision for one AdmissionReview: which images the policy selects, their verification facts
//! (cached, coalesced, within the request's budget), and the answer. Policy selection, modes and exceptions are
//! applied on every request; only verification facts are cached.
//!
//! No path allows an image the policy selects except a [`Verdict::Verified`] proof (for each selecting policy)
//! or an unexpired exception; every failure to reach a verdict (registry down, timeout, a verification that
//! panicked) denies under an `enforce` policy.
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use kibaship_admission::{Decision, ImagePatch, Review};
use kibaship_cosign::{ImageVerifier, Verdict};
use kibaship_oci::{Reference, RegistryClient};
use kibaship_policy::{Answer, ExceptionMatch, Mode, NamespaceInfo, PolicySet};
use kibaship_sigstore::Verifier;

use crate::kube_api::{KubeApi, PullCredentials};

use crate::facts::{FactCache, FactError, FactKey};
use crate::metrics::{CacheLabels, Metrics};
use crate::summary::not_verified_detail;

/// Which endpoint is answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/validate`: judge, deny or warn.
    Validate,
    /// `/mutate`: pin verified tags to their digests; never denies (validation does).
    Mutate,
}

impl Endpoint {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// The trust material in use: the bundle verifier (parsed once from `trusted_root.json`), the file's hash, and
/// the registry client.
#[derive(Clone)]
pub struct Trust {
    /// The Sigstore verifier over the trusted root.
    pub verifier: Arc<Verifier>,
    /// SHA-256 of the trusted root file (part of every fact's key).
    pub hash: [u8; 32],
    /// Reads registries (no overall deadline: each verification gets the budget).
    pub client: RegistryClient,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("hash", &hex::encode(self.hash))
            .finish_non_exhaustive()
    }
}

/// What one request needs: the loaded policy and trust, the cache, metrics and the budget.
#[derive(Debug, Clone)]
pub struct Judge {
    /// The policy in force.
    pub policy: Arc<PolicySet>,
    /// The trust material in force.
    pub trust: Arc<Trust>,
    /// Verification facts.
    pub cache: Arc<FactCache>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Longest a request may take before its pending images are denied with `timeout`.
    pub budget: Duration,
    /// The Kubernetes API (namespace labels, pull secrets), when configured.
    pub kube: Option<KubeApi>,
}

/// The registry credentials of one request's Pod, fetched once and only if a registry must be read.
type PullCredentialsFuture = Shared<BoxFuture<'static, Arc<PullCredentials>>>;

/// One image failing one policy.
#[derive(Debug, Clone)]
struct Failure {
    site: usize,
    policy: String,
    mode: Mode,
    code: String,
    detail: String,
}

/// The decision and what the log line should say about it.
#[derive(Debug)]
pub struct Judgement {
    /// The answer.
    pub decision: Decision,
    /// The result label: `allowed`, `warned` or `denied`.
    pub result: &'static str,
    /// The code for metrics and logs: the first failure's code, else why it was allowed.
    pub code: String,
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Printable, bounded text of a user-controlled string for messages.
fn shown(text: &str) -> String {
    kibaship_printable::printable(text, 200)
}

impl Judge {
    /// Decides `review` at `now` (unix seconds) for `endpoint`.
    pub async fn decide(&self, review: &Review, endpoint: Endpoint, now: i64) -> Judgement {
        let deadline = tokio::time::Instant::now() + self.budget;
        let labels = self.namespace_labels(&review.namespace, deadline).await;
        let namespace = match &labels {
            Some(labels) => NamespaceInfo::new(&review.namespace, labels),
            None => NamespaceInfo::without_labels(&review.namespace),
        };
        let credentials = self.pull_credentials(review, deadline);
        let mut warnings = Vec::new();
        let mut failures = Vec::new();
        let mut patches = Vec::new();
        let mut allowed_by = "not-selected";
        let mut audit = std::collections::BTreeMap::new();

        // What each image needs.
        let mut checks = Vec::new();
        for (site_index, site) in review.images.iter().enumerate() {
            let selected = self.policy.select(&namespace, &site.image);
            if selected.is_empty() {
                continue;
            }
            let expired = match self
                .policy
                .exception_for(&review.namespace, &site.image, now)
            {
                ExceptionMatch::Active(exception) => {
                    if endpoint == Endpoint::Validate {
                        warnings.push(format!(
                            "kibaship: image \"{}\" admitted unverified by an exception of {} (until {}): {}",
                            shown(&site.image),
                            shown(exception.owner()),
                            exception.expires_rfc3339(),
                            shown(exception.reason()),
                        ));
                    }
                    allowed_by = "exception";
                    continue;
                }
                ExceptionMatch::Expired(exception) => Some(format!(
                    " (the exception of {} expired at {})",
                    shown(exception.owner()),
                    exception.expires_rfc3339()
                )),
                ExceptionMatch::None => None,
            };
            let reference = match Reference::parse(&site.image) {
                Ok(r) => r,
                Err(e) => {
                    for policy in &selected {
                        failures.push(Failure {
                            site: site_index,
                            policy: policy.name().to_string(),
                            mode: policy.mode(),
                            code: "bad-reference".into(),
                            detail: format!("not an image reference: {}", shown(&e.to_string())),
                        });
                    }
                    continue;
                }
            };
            checks.push((site_index, reference, selected, expired));
        }

        // Tags resolve once per request (never cached: a tag can move); digests are what facts are keyed by.
        let mut pending = Vec::new();
        for (site_index, reference, selected, expired) in checks {
            let pinned = match reference.digest() {
                Some(digest) => Ok(reference.with_digest(digest.clone())),
                None => self.resolve(&reference, &credentials, deadline).await,
            };
            for policy in selected {
                let requirements = policy.fingerprint();
                match &pinned {
                    Ok(pinned) => pending.push((
                        site_index,
                        policy.name().to_string(),
                        policy.mode(),
                        expired.clone(),
                        pinned.clone(),
                        self.fact(
                            pinned.clone(),
                            requirements,
                            Arc::clone(policy.shared_image_policy()),
                            credentials.clone(),
                            now,
                            deadline,
                        ),
                    )),
                    Err(e) => failures.push(Failure {
                        site: site_index,
                        policy: policy.name().to_string(),
                        mode: policy.mode(),
                        code: e.code.to_string(),
                        detail: format!("{}{}", e.message, expired.clone().unwrap_or_default()),
                    }),
                }
            }
        }

        // Verify concurrently; each within the request's deadline.
        let (meta, futures): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .map(|(s, p, m, x, pinned, f)| ((s, p, m, x, pinned), f))
            .unzip();
        let results = futures::future::join_all(futures).await;
        let mut verified_sites: Vec<Option<(bool, Reference)>> = vec![None; review.images.len()];
        let mut satisfied: Vec<Vec<(Mode, bool)>> = vec![Vec::new(); review.images.len()];
        for ((site, policy, mode, expired, pinned), result) in meta.into_iter().zip(results) {
            let entry = verified_sites.get_mut(site).and_then(|slot| {
                if slot.is_none() {
                    *slot = Some((true, pinned.clone()));
                }
                slot.as_mut()
            });
            // Why this policy is not satisfied, if it is not: the verdict's code and reason, or why none came.
            let unmet = match result {
                Ok(verdict) => match &*verdict {
                    Verdict::Verified(_) => None,
                    Verdict::NotVerified(n) => {
                        Some((n.code.as_str().to_string(), not_verified_detail(n)))
                    }
                },
                Err(e) => Some((e.code.to_string(), e.message)),
            };
            match unmet {
                None => {
                    allowed_by = "verified";
                    if let Some(judged) = satisfied.get_mut(site) {
                        judged.push((mode, true));
                    }
                }
                Some((code, detail)) => {
                    if let Some(e) = entry {
                        e.0 = false;
                    }
                    failures.push(Failure {
                        site,
                        policy,
                        mode,
                        code,
                        detail: format!("{detail}{}", expired.unwrap_or_default()),
                    });
                }
            }
        }

        // Pin verified tags (mutate).
        if endpoint == Endpoint::Mutate {
            for (site, verified) in verified_sites.iter().enumerate() {
                let (Some((true, pinned)), Some(image_site)) = (verified, review.images.get(site))
                else {
                    continue;
                };
                if image_site.image.contains('@') {
                    continue;
                }
                if let Some(digest) = pinned.digest() {
                    patches.push(ImagePatch {
                        pointer: image_site.pointer.clone(),
                        image: format!("{}@{}", image_site.image, digest),
                    });
                }
            }
            let code = if patches.is_empty() {
                "not-pinned"
            } else {
                "pinned"
            };
            return Judgement {
                decision: Decision {
                    patch: patches,
                    ..Decision::allow()
                },
                result: "allowed",
                code: code.to_string(),
            };
        }

        let describe = |f: &Failure| {
            let site = review.images.get(f.site);
            format!(
                "image \"{}\" ({} \"{}\"): policy \"{}\": {}: {}",
                site.map(|s| shown(&s.image)).unwrap_or_default(),
                site.map(|s| s.role.as_str()).unwrap_or("container"),
                site.map(|s| shown(&s.container)).unwrap_or_default(),
                shown(&f.policy),
                f.code,
                f.detail
            )
        };
        // The answer per image, by the rules `kibaverify verify --policy` applies too.
        for f in &failures {
            if let Some(judged) = satisfied.get_mut(f.site) {
                judged.push((f.mode, false));
            }
        }
        let denied = satisfied.iter().any(|judged| {
            Answer::for_image(judged.iter().copied(), &ExceptionMatch::None) == Answer::Deny
        });
        let denials: Vec<&Failure> = if denied {
            failures
                .iter()
                .filter(|f| f.mode == Mode::Enforce)
                .collect()
        } else {
            Vec::new()
        };
        for f in failures.iter().filter(|f| f.mode == Mode::Warn) {
            warnings.push(format!("kibaship (warn): {}", describe(f)));
        }
        for (n, f) in failures
            .iter()
            .filter(|f| f.mode == Mode::Audit)
            .enumerate()
        {
            audit.insert(format!("audit-{n}"), describe(f));
        }
        if let Some(first) = denials.first() {
            let message = format!(
                "kibaship: denied: {}",
                denials
                    .iter()
                    .map(|f| describe(f))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            return Judgement {
                decision: Decision {
                    warnings,
                    audit_annotations: audit,
                    ..Decision::deny(first.code.clone(), message)
                },
                result: "denied",
                code: first.code.clone(),
            };
        }
        let (result, code) = match failures.first() {
            Some(f) if f.mode == Mode::Warn => ("warned", f.code.clone()),
            Some(f) => ("allowed", f.code.clone()),
            None => ("allowed", allowed_by.to_string()),
        };
        Judgement {
            decision: Decision {
                warnings,
                audit_annotations: audit,
                ..Decision::allow()
            },
            result,
            code,
        }
    }

    /// The namespace's labels when a policy selects by label and the Kubernetes API is configured; `None` (unknown:
    /// label selectors then select, failing closed) otherwise or when the lookup fails.
    async fn namespace_labels(
        &self,
        namespace: &str,
        deadline: tokio::time::Instant,
    ) -> Option<Arc<std::collections::BTreeMap<String, String>>> {
        if !self.policy.needs_namespace_labels() {
            return None;
        }
        let kube = self.kube.as_ref()?;
        match tokio::time::timeout_at(deadline, kube.namespace_labels(namespace)).await {
            Ok(Ok(labels)) => Some(labels),
            Ok(Err(e)) => {
                tracing::warn!(namespace, code = e.code(), error = %e, "namespace labels unknown: label selectors apply");
                None
            }
            Err(_) => {
                tracing::warn!(
                    namespace,
                    "namespace labels unknown (budget spent): label selectors apply"
                );
                None
            }
        }
    }

    /// The Pod's registry credentials (its imagePullSecrets, else its service account's), fetched when first
    /// awaited; empty without a Kubernetes API or when they cannot be read (then only the webhook's own apply).
    fn pull_credentials(
        &self,
        review: &Review,
        deadline: tokio::time::Instant,
    ) -> Option<PullCredentialsFuture> {
        let kube = self.kube.clone()?;
        let namespace = review.namespace.clone();
        let secrets = review.pull_secrets.clone();
        // The kubelet uses the service account's pull secrets only when the Pod names none.
        let service_account = secrets.is_empty().then(|| {
            review
                .service_account
                .clone()
                .unwrap_or_else(|| "default".into())
        });
        Some(
            async move {
                let fetched = tokio::time::timeout_at(
                    deadline,
                    kube.pull_credentials(&namespace, &secrets, service_account.as_deref()),
                )
                .await;
                match fetched {
                    Ok(Ok(credentials)) => {
                        for note in credentials.notes() {
                            tracing::info!(namespace = %namespace, note = %note, "pull credentials");
                        }
                        Arc::new(credentials)
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(namespace = %namespace, code = e.code(), error = %e, "pull secrets not read: only the webhook's own registry credentials apply");
                        Arc::new(PullCredentials::default())
                    }
                    Err(_) => Arc::new(PullCredentials::default()),
                }
            }
            .boxed()
            .shared(),
        )
    }

    /// The registry client for one request: the shared one, with the Pod's pull credentials for `registry`.
    async fn client_for(
        base: &RegistryClient,
        credentials: &Option<PullCredentialsFuture>,
        registry: &str,
    ) -> RegistryClient {
        match credentials {
            Some(credentials) => {
                let credentials = credentials.clone().await;
                base.with_credentials(credentials.credentials_for([registry]))
            }
            None => base.clone(),
        }
    }

    /// The digest `reference`'s tag names now.
    async fn resolve(
        &self,
        reference: &Reference,
        credentials: &Option<PullCredentialsFuture>,
        deadline: tokio::time::Instant,
    ) -> Result<Reference, FactError> {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let client = Self::client_for(&self.trust.client, credentials, reference.registry())
            .await
            .with_timeout(remaining);
        match tokio::time::timeout_at(deadline, client.resolve_digest(reference, None)).await {
            Ok(Ok(resolved)) => Ok(reference.with_digest(resolved.digest)),
            Ok(Err(e)) => Err(FactError {
                code: if e.is_timeout() {
                    "timeout"
                } else if e.is_not_found() {
                    "image-not-found"
                } else if matches!(e, kibaship_oci::Error::Unauthorized { .. }) {
                    "registry-denied"
                } else {
                    "registry-unreachable"
                },
                message: format!("resolving the tag: {e}"),
            }),
            Err(_) => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> FactError {
        FactError {
            code: "timeout",
            message: format!(
                "no verdict within the webhook's budget of {} ms",
                self.budget.as_millis()
            ),
        }
    }

    /// The verification fact for `pinned` under `policy`, from the cache or a (shared) verification, within
    /// the deadline.
    fn fact(
        &self,
        pinned: Reference,
        requirements: [u8; 32],
        policy: Arc<kibaship_cosign::ImagePolicy>,
        credentials: Option<PullCredentialsFuture>,
        now: i64,
        deadline: tokio::time::Instant,
    ) -> impl std::future::Future<Output = Result<Arc<Verdict>, FactError>> + Send + 'static {
        let key = FactKey {
            image: pinned.to_string(),
            trust_root: self.trust.hash,
            requirements,
        };
        let cache = Arc::clone(&self.cache);
        let metrics = Arc::clone(&self.metrics);
        let client = self.trust.client.clone();
        let budget = self.budget;
        let trust_verifier = Arc::clone(&self.trust.verifier);
        let timed_out = self.timed_out();
        async move {
            let verify_metrics = Arc::clone(&metrics);
            let verify = move || async move {
                // Only a miss reads the registry, and only then are the Pod's pull secrets fetched.
                let client = Self::client_for(&client, &credentials, pinned.registry())
                    .await
                    .with_timeout(budget);
                // The verdict, not an inventory: the legacy tags are read only if the referrers fall short.
                let verifier =
                    ImageVerifier::with_verifier(client, trust_verifier).reading_until_proof();
                verify_metrics.verifications.inc();
                let started = Instant::now();
                let result = verifier.verify(&pinned, &policy, now).await;
                verify_metrics
                    .verify_seconds
                    .observe(started.elapsed().as_secs_f64());
                // Cached for its outcome: the attestations' statements (an SBOM may be megabytes) are not kept.
                result
                    .map(|verdict| Arc::new(verdict.without_statements()))
                    .map_err(|e| FactError::from_reason(e.code(), e.to_string()))
            };
            match tokio::time::timeout_at(deadline, cache.get_or_verify(key, verify)).await {
                Ok((result, lookup)) => {
                    metrics
                        .cache
                        .get_or_create(&CacheLabels {
                            result: lookup.as_str(),
                        })
                        .inc();
                    metrics
                        .cache_entries
                        .set(i64::try_from(cache.len()).unwrap_or(i64::MAX));
                    result
                }
                Err(_) => Err(timed_out),
            }
        }
    }
}
