//! `kibaship-step tag`: the design's extra tags (`branch-<branch>`, per-environment `latest`, promotion tags such
//! as `staging` and `prod`) on an image already pushed, by digest.
//!
//! Nothing is rebuilt: the manifest the digest names is read and PUT again, byte for byte, under each tag
//! ([`apply_tags`]), and the digest the registry reports back must be the same. When an admission policy is given
//! (the webhook's `AdmissionPolicy`, [`kibaship_policy`]), the policies that select the image in the target
//! namespace are verified first with [`kibaship_cosign::ImageVerifier`], and a digest they would deny is not
//! tagged ([`check_policy`]).

use kibaship_cosign::{ImageVerifier, Verdict};
use kibaship_oci::{Reference, RegistryClient};
use kibaship_policy::{Answer, ExceptionMatch, NamespaceInfo, PolicySet};

use crate::failure::{Classify, FailureKind};

/// The OCI distribution spec's tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub const MAX_TAG_LEN: usize = 128;

/// Why tagging did not happen (or not completely).
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    /// A parameter is unusable (a branch or environment that makes no valid tag, a bad digest, ...).
    #[error("{0}")]
    Parameter(String),
    /// The admission policy file is not valid.
    #[error("admission policy {origin} is not valid: {errors}")]
    Policy { origin: String, errors: String },
    /// The policy that selects the image would deny it: not tagged.
    #[error("{image} is not tagged: {reason}")]
    Refused { image: String, reason: String },
    /// The registry failed or answered something unexpected.
    #[error("{what}: {source}")]
    Registry {
        what: String,
        #[source]
        source: Box<kibaship_oci::Error>,
    },
    /// The registry stored the manifest under another digest (it rewrote it): the tag would not name the image.
    #[error("{tag}: the registry stored {got}, not {want}")]
    DigestChanged {
        tag: String,
        got: String,
        want: String,
    },
    /// Verification could not run (registry unreachable while reading signatures, ...).
    #[error("cannot verify {image}: {reason}")]
    Verify { image: String, reason: String },
    /// The results could not be written.
    #[error(transparent)]
    Results(#[from] crate::results::ResultsError),
}

impl Classify for TagError {
    fn kind(&self) -> FailureKind {
        match self {
            TagError::Parameter(_) | TagError::Policy { .. } => FailureKind::BadParameters,
            TagError::Refused { .. } => FailureKind::Refused,
            TagError::Registry { source, .. } if source.is_not_found() => {
                FailureKind::BadParameters
            }
            TagError::Registry { .. } | TagError::Verify { .. } => FailureKind::Registry,
            TagError::DigestChanged { .. } => FailureKind::Registry,
            TagError::Results(_) => FailureKind::Results,
        }
    }
}

impl TagError {
    /// The exit code of the kind.
    pub fn exit_code(&self) -> u8 {
        self.kind().exit_code()
    }

    /// The word printed before the message on stderr.
    pub fn label(&self) -> &'static str {
        match self {
            TagError::Refused { .. } => "tagging refused",
            other => match other.kind() {
                FailureKind::BadParameters => "bad parameters",
                FailureKind::Results => "results error",
                _ => "registry or service error (retryable)",
            },
        }
    }
}

fn bad(message: String) -> TagError {
    TagError::Parameter(message)
}

/// Checks `tag` against the OCI tag grammar; the error names the flag, the offending character and its position.
pub fn check_tag(flag: &str, tag: &str) -> Result<(), TagError> {
    if tag.is_empty() {
        return Err(bad(format!("{flag}: the tag is empty")));
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(bad(format!(
            "{flag}: tag {tag:?} is {} bytes, longer than the {MAX_TAG_LEN} the OCI tag grammar allows",
            tag.len()
        )));
    }
    for (i, c) in tag.char_indices() {
        let ok = c.is_ascii_alphanumeric() || c == '_' || (i > 0 && matches!(c, '.' | '-'));
        if !ok {
            return Err(bad(format!(
                "{flag}: {c:?} at byte {i} of tag {tag:?} is not allowed (OCI tags are [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})"
            )));
        }
    }
    Ok(())
}

/// `branch-<branch>`: `/` (as in `feature/login`) becomes `-`; any other character outside the tag grammar is an
/// error naming it (no silent rewrite that could make two branches share a tag).
pub fn branch_tag(branch: &str) -> Result<String, TagError> {
    let branch = branch.trim();
    let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
    if branch.is_empty() {
        return Err(bad("--branch is empty".into()));
    }
    let tag = format!("branch-{}", branch.replace('/', "-"));
    check_tag(&format!("--branch {branch:?}"), &tag)?;
    Ok(tag)
}

/// Environment names (`staging`, `prod`, `preview-42`): lower-case letters, digits and `-`, a letter first, at
/// most 63 (a DNS label, as a namespace suffix would be).
fn check_environment(flag: &str, name: &str) -> Result<(), TagError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{flag} {name:?} is not an environment name (lower-case letters, digits and -, a letter first, at \
             most 63)"
        )))
    }
}

/// The tags to apply: `branch-<branch>`, `latest-<environment>` (per-environment latest) and each promotion
/// environment's own name, de-duplicated in that order. Tags that cosign or the build use (`sha256-…`,
/// `build-…`) cannot be produced.
pub fn tag_names(
    branch: Option<&str>,
    environment: Option<&str>,
    promotions: &[String],
) -> Result<Vec<String>, TagError> {
    let mut tags = Vec::new();
    if let Some(branch) = branch {
        tags.push(branch_tag(branch)?);
    }
    if let Some(env) = environment {
        check_environment("--environment", env)?;
        tags.push(format!("latest-{env}"));
    }
    for env in promotions {
        check_environment("--promote", env)?;
        if env.starts_with("sha256-") || env.starts_with("build-") || env.starts_with("branch-") {
            return Err(bad(format!(
                "--promote {env:?} would collide with cosign's, the build's or the branch tags"
            )));
        }
        tags.push(env.clone());
    }
    let mut seen = std::collections::BTreeSet::new();
    tags.retain(|t| seen.insert(t.clone()));
    if tags.is_empty() {
        return Err(bad(
            "no tag to apply: give --branch, --environment or --promote".into(),
        ));
    }
    Ok(tags)
}

/// Parses the admission policy text (the webhook's format) named `origin`.
pub fn parse_policy(origin: &str, text: &str) -> Result<PolicySet, TagError> {
    PolicySet::parse(origin, text).map_err(|errors| TagError::Policy {
        origin: origin.to_string(),
        errors: errors.to_string().replace('\n', "; "),
    })
}

/// What the policy check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDecision {
    /// The webhook's answer for the image in the namespace.
    pub answer: Answer,
    /// The names of the policies that selected it.
    pub policies: Vec<String>,
}

/// Verifies `pinned` against every policy of `set` that selects it in `namespace`, as the webhook would at
/// deploy time; `Err(Refused)` when the answer is deny.
pub async fn check_policy(
    verifier: &ImageVerifier,
    set: &PolicySet,
    namespace: &str,
    pinned: &Reference,
    now: i64,
) -> Result<PolicyDecision, TagError> {
    let image = pinned.to_string();
    let selected = set.select(&NamespaceInfo::without_labels(namespace), &image);
    let exception = if selected.is_empty() {
        ExceptionMatch::None
    } else {
        set.exception_for(namespace, &image, now)
    };
    let mut judged = Vec::new();
    let mut failures = Vec::new();
    if !exception.is_active() {
        for policy in &selected {
            let verdict = verifier
                .verify(pinned, policy.image_policy(), now)
                .await
                .map_err(|e| TagError::Verify {
                    image: image.clone(),
                    reason: e.to_string(),
                })?;
            let satisfied = verdict.is_verified();
            if let Verdict::NotVerified(n) = &verdict {
                failures.push(format!(
                    "policy {} ({}): {}",
                    policy.name(),
                    policy.mode().as_str(),
                    n.code.as_str()
                ));
            }
            judged.push((policy.mode(), satisfied));
        }
    }
    let answer = Answer::for_image(judged, &exception);
    if answer == Answer::Deny {
        return Err(TagError::Refused {
            image,
            reason: format!(
                "the admission policy would deny it in namespace {namespace}: {}",
                failures.join("; ")
            ),
        });
    }
    Ok(PolicyDecision {
        answer,
        policies: selected.iter().map(|p| p.name().to_string()).collect(),
    })
}

/// PUTs the manifest `pinned` names under each of `tags` in its repository, byte for byte; returns the tagged
/// references. The registry must report the same digest for each.
pub async fn apply_tags(
    client: &RegistryClient,
    pinned: &Reference,
    tags: &[String],
) -> Result<Vec<String>, TagError> {
    let want = pinned
        .digest()
        .ok_or_else(|| bad(format!("{pinned} is not pinned by digest")))?
        .to_string();
    let manifest = client
        .fetch_manifest(pinned)
        .await
        .map_err(|source| TagError::Registry {
            what: format!("cannot read {pinned}"),
            source: Box::new(source),
        })?;
    let mut tagged = Vec::new();
    for tag in tags {
        let target = pinned
            .with_tag(tag)
            .map_err(|e| bad(format!("tag {tag:?}: {e}")))?;
        let pushed = client
            .push_manifest(&target, &manifest.bytes, &manifest.media_type)
            .await
            .map_err(|source| TagError::Registry {
                what: format!("cannot tag {target}"),
                source: Box::new(source),
            })?;
        if pushed.digest.to_string() != want {
            return Err(TagError::DigestChanged {
                tag: target.to_string(),
                got: pushed.digest.to_string(),
                want,
            });
        }
        tagged.push(target.to_string());
    }
    Ok(tagged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_follow_the_design() {
        let tags = tag_names(
            Some("refs/heads/feature/login"),
            Some("staging"),
            &["staging".into(), "prod".into()],
        )
        .expect("valid");
        assert_eq!(
            tags,
            ["branch-feature-login", "latest-staging", "staging", "prod"]
        );
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        let e = branch_tag("feat@x").expect_err("@");
        assert!(e.to_string().contains("'@' at byte 11"), "{e}");
        let e = branch_tag(&"a".repeat(130)).expect_err("long");
        assert!(e.to_string().contains("longer than the 128"), "{e}");
        assert!(branch_tag("").is_err());
        assert!(tag_names(None, Some("Prod"), &[]).is_err());
        assert!(tag_names(None, None, &["sha256-abc".into()]).is_err());
        assert!(tag_names(None, None, &[]).is_err());
        assert!(check_tag("t", ".hidden").is_err());
        assert!(check_tag("t", "_ok.1-2").is_ok());
    }
}
