//! slsa-verifier's checks of a provenance (`--source-uri`, `--source-tag`, `--source-branch`,
//! `--source-versioned-tag`, `--builder-id`, `--build-type`), for any builder, as
//! [`kibaship_cosign::PredicateCheck`]s: the same checks, and the same evaluation, as an admission policy's
//! required attestations. Each check carries its own stable code, so a failure says `source-mismatch` rather than
//! `attestation-predicate-failed`.
//!
//! Where each SLSA version keeps the fields (the places slsa-verifier reads for the GitHub generators, and where
//! kibaship's own provenance and BuildKit's put them):
//!
//! | field | SLSA v0.2 | SLSA v1 |
//! |---|---|---|
//! | source (`git+https://host/org/repo@<ref>`) | `/invocation/configSource/uri` | `/buildDefinition/resolvedDependencies/0/uri` |
//! | builder | `/builder/id` | `/runDetails/builder/id` |
//! | build type | `/buildType` | `/buildDefinition/buildType` |
use std::fmt;

use kibaship_cosign::predicate::MAX_GOT_CHARS;
use kibaship_cosign::registry::ImageReport;
use kibaship_cosign::{
    PredicateCheck, PredicateCondition, PredicateFailure, ReasonCode, check_predicate,
};
use kibaship_oci::Digest;
use kibaship_sigstore::GoRegex;

use crate::statement::Statement;

/// SLSA provenance v0.2's predicate type.
pub const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";
/// SLSA provenance v1's predicate type.
pub const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
/// The build type of BuildKit's own SLSA v1 provenance.
pub const BUILDKIT_BUILD_TYPE: &str =
    "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md";
/// Where BuildKit's v1 provenance keeps the source repository (`--opt vcs:source=`, as buildx sets it).
pub const BUILDKIT_SOURCE_PATH: &str = "/runDetails/metadata/buildkit_metadata/vcs/source";

/// A version of SLSA provenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlsaVersion {
    /// v0.2 (`https://slsa.dev/provenance/v0.2`).
    V02,
    /// v1 (`https://slsa.dev/provenance/v1`).
    V1,
}

impl SlsaVersion {
    /// Both, oldest first.
    pub const ALL: [SlsaVersion; 2] = [SlsaVersion::V02, SlsaVersion::V1];

    /// Its predicate type.
    pub fn predicate_type(self) -> &'static str {
        match self {
            SlsaVersion::V02 => SLSA_V02,
            SlsaVersion::V1 => SLSA_V1,
        }
    }

    /// The version whose predicate type is `t`.
    pub fn from_predicate_type(t: &str) -> Option<SlsaVersion> {
        SlsaVersion::ALL
            .into_iter()
            .find(|v| v.predicate_type() == t)
    }

    fn source_path(self) -> &'static str {
        match self {
            SlsaVersion::V02 => "/invocation/configSource/uri",
            SlsaVersion::V1 => "/buildDefinition/resolvedDependencies/0/uri",
        }
    }

    fn builder_path(self) -> &'static str {
        match self {
            SlsaVersion::V02 => "/builder/id",
            SlsaVersion::V1 => "/runDetails/builder/id",
        }
    }

    fn build_type_path(self) -> &'static str {
        match self {
            SlsaVersion::V02 => "/buildType",
            SlsaVersion::V1 => "/buildDefinition/buildType",
        }
    }
}

/// `--source-versioned-tag`: a semantic version as Go's `semver` reads it, `v<major>[.<minor>[.<patch>[-<pre>]]]`
/// (build metadata `+...` is ignored), matched as slsa-verifier matches it (`utils.VerifyVersionedTag`): the
/// provenance's tag, canonicalised (`v1` is `v1.0.0`), must have the same major, and the same minor and patch
/// (pre-release included) when they are given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedTag {
    major: u64,
    minor: Option<u64>,
    /// The patch number and pre-release (`3`, `3-rc.1`).
    patch: Option<(u64, Option<String>)>,
}

/// One dot-separated identifier of a pre-release or build suffix.
const IDENTIFIER: &str = "[0-9A-Za-z-]+";

impl std::str::FromStr for VersionedTag {
    type Err = RequirementError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RequirementError::Invalid {
            flag: "--source-versioned-tag",
            problem: format!(
                "{s:?} is not a semantic version v<major>[.<minor>[.<patch>[-<pre>]]]"
            ),
        };
        let rest = s.strip_prefix('v').ok_or_else(bad)?;
        let without_build = match rest.split_once('+') {
            Some((v, build)) if is_dotted_identifiers(build) => v,
            Some(_) => return Err(bad()),
            None => rest,
        };
        let (version, pre) = match without_build.split_once('-') {
            Some((v, pre)) if is_dotted_identifiers(pre) => (v, Some(pre.to_string())),
            Some(_) => return Err(bad()),
            None => (without_build, None),
        };
        let parts: Vec<&str> = version.split('.').collect();
        // Go's semver: a pre-release only after a full major.minor.patch.
        if parts.len() > 3 || (pre.is_some() && parts.len() != 3) {
            return Err(bad());
        }
        let number = |p: &str| {
            if p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
            {
                return Err(bad());
            }
            p.parse::<u64>().map_err(|_| bad())
        };
        Ok(VersionedTag {
            major: number(parts.first().copied().unwrap_or(""))?,
            minor: parts.get(1).map(|p| number(p)).transpose()?,
            patch: parts
                .get(2)
                .map(|p| number(p).map(|n| (n, pre.clone())))
                .transpose()?,
        })
    }
}

/// Whether `s` is dot-separated non-empty identifiers of `[0-9A-Za-z-]`.
fn is_dotted_identifiers(s: &str) -> bool {
    s.split('.')
        .all(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

impl VersionedTag {
    /// The pattern a tag (after `refs/tags/`) of this version matches: `v` and the same major; the same minor
    /// (a tag without one is minor 0); the same patch and pre-release (a tag without a patch is patch 0); any
    /// build suffix.
    fn pattern(&self) -> String {
        let number = "(0|[1-9][0-9]*)";
        let pre = format!(r"(-{IDENTIFIER}(\.{IDENTIFIER})*)?");
        let build = format!(r"(\+{IDENTIFIER}(\.{IDENTIFIER})*)?");
        let major = self.major;
        let tail = match (self.minor, &self.patch) {
            (None, _) => format!(r"(\.{number}(\.{number}{pre}{build})?)?"),
            (Some(0), None) => format!(r"(\.0(\.{number}{pre}{build})?)?"),
            (Some(minor), None) => format!(r"\.{minor}(\.{number}{pre}{build})?"),
            (Some(0), Some((0, None))) => format!(r"(\.0(\.0{build})?)?"),
            (Some(minor), Some((0, None))) => format!(r"\.{minor}(\.0{build})?"),
            (Some(minor), Some((patch, pre))) => {
                let pre = pre
                    .as_deref()
                    .map_or(String::new(), |p| format!("-{}", literal(p)));
                format!(r"\.{minor}\.{patch}{pre}{build}")
            }
        };
        format!("v{major}{tail}")
    }
}

impl fmt::Display for VersionedTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.major)?;
        if let Some(m) = self.minor {
            write!(f, ".{m}")?;
        }
        if let Some((p, pre)) = &self.patch {
            write!(f, ".{p}")?;
            if let Some(pre) = pre {
                write!(f, "-{pre}")?;
            }
        }
        Ok(())
    }
}

/// A requirement that cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    /// A flag's value is unusable.
    #[error("{flag}: {problem}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// Why.
        problem: String,
    },
}

/// What a provenance must say (slsa-verifier's flags), and which SLSA versions are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceRequirements {
    /// `--source-uri`: the repository, `github.com/org/repo` (as slsa-verifier takes it) or with a scheme
    /// (`https://`, `git+https://`). The provenance's source must be exactly this repository (a `.git` suffix
    /// or another repository of the same prefix does not match).
    pub source_uri: String,
    /// `--source-tag`: the source ref must be `refs/tags/<tag>`.
    pub source_tag: Option<String>,
    /// `--source-branch`: the source ref must be `refs/heads/<branch>`.
    pub source_branch: Option<String>,
    /// `--source-versioned-tag`: the source ref must be a tag of this version.
    pub source_versioned_tag: Option<VersionedTag>,
    /// `--builder-id`: the builder. With `@<ref>` that ref (`@v1.2.3` also as `@refs/tags/v1.2.3`, as
    /// slsa-verifier); without, any version of it.
    pub builder_id: String,
    /// `--build-type`: the build type, exactly.
    pub build_type: Option<String>,
    /// The SLSA versions accepted (at least one).
    pub versions: Vec<SlsaVersion>,
}

/// Why a provenance does not satisfy its requirements: the stable code, the field, what was wanted and found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProvenanceFailure {
    /// The stable code (`source-mismatch`, `ref-mismatch`, `builder-mismatch`, `build-type-mismatch`,
    /// `subject-digest-mismatch`, `predicate-type-mismatch`, or the verifier's for a signature).
    pub code: ReasonCode,
    /// The field: a JSON pointer into the predicate, `subject`, `predicateType`, or `signature`.
    pub field: String,
    /// What was wanted, in words.
    pub wanted: String,
    /// What was found (bounded), or `absent`.
    pub got: String,
}

impl fmt::Display for ProvenanceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} is {}, wanted {}",
            self.code, self.field, self.got, self.wanted
        )
    }
}

impl From<PredicateFailure> for ProvenanceFailure {
    fn from(f: PredicateFailure) -> Self {
        ProvenanceFailure {
            code: f.reason(),
            field: f.path,
            wanted: f.wanted,
            got: f.got,
        }
    }
}

/// `s` as a Go regular expression matching it literally (ASCII punctuation escaped, which Go reads as literal).
fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl ProvenanceRequirements {
    /// The repository the source must be, as `https://...` (no `git+`).
    fn source_repository(&self) -> Result<String, RequirementError> {
        let given = self.source_uri.trim();
        if given.is_empty()
            || given.chars().any(|c| c.is_whitespace() || c.is_control())
            || given.contains('@')
        {
            return Err(RequirementError::Invalid {
                flag: "--source-uri",
                problem: format!(
                    "{given:?} is not a repository (github.com/org/repo, without @ref)"
                ),
            });
        }
        let without_git = given.strip_prefix("git+").unwrap_or(given);
        Ok(if without_git.contains("://") {
            without_git.trim_end_matches('/').to_string()
        } else {
            format!("https://{}", without_git.trim_end_matches('/'))
        })
    }

    fn regex(pattern: &str, flag: &'static str) -> Result<GoRegex, RequirementError> {
        GoRegex::new(pattern).map_err(|e| RequirementError::Invalid {
            flag,
            problem: e.to_string(),
        })
    }

    /// The predicate checks for provenance of `version` whose build type is `build_type` (it decides where a
    /// v1 provenance keeps its source: BuildKit's in `buildkit_metadata.vcs.source`), each with its code.
    pub fn checks(
        &self,
        version: SlsaVersion,
        build_type: Option<&str>,
    ) -> Result<Vec<PredicateCheck>, RequirementError> {
        let check = |path: &str, condition, code| PredicateCheck {
            path: path.to_string(),
            condition,
            code: Some(code),
        };
        let buildkit = version == SlsaVersion::V1 && build_type == Some(BUILDKIT_BUILD_TYPE);
        let (source, source_pattern) = if buildkit {
            // BuildKit records the remote as given (`vcs:source`), often with `.git`, and no ref.
            (BUILDKIT_SOURCE_PATH, r"(\.git)?")
        } else {
            (version.source_path(), r"(@.*)?")
        };
        let repository = self.source_repository()?;
        let mut checks = vec![check(
            source,
            PredicateCondition::Matches(Self::regex(
                &format!(r"^(git\+)?{}{source_pattern}$", literal(&repository)),
                "--source-uri",
            )?),
            ReasonCode::SourceMismatch,
        )];
        let mut reference = |pattern: String, flag| -> Result<(), RequirementError> {
            checks.push(check(
                source,
                PredicateCondition::Matches(Self::regex(&format!("^[^@]*@refs/{pattern}$"), flag)?),
                ReasonCode::RefMismatch,
            ));
            Ok(())
        };
        if let Some(tag) = &self.source_tag {
            reference(format!("tags/{}", literal(tag)), "--source-tag")?;
        }
        if let Some(branch) = &self.source_branch {
            reference(format!("heads/{}", literal(branch)), "--source-branch")?;
        }
        if let Some(versioned) = &self.source_versioned_tag {
            reference(
                format!("tags/{}", versioned.pattern()),
                "--source-versioned-tag",
            )?;
        }
        let builder = self.builder_id.trim();
        if builder.is_empty() {
            return Err(RequirementError::Invalid {
                flag: "--builder-id",
                problem: "is empty".into(),
            });
        }
        // As slsa-verifier: `<id>@v1.2.3` also names `<id>@refs/tags/v1.2.3`; `<id>` alone any version of it.
        let builder_pattern = match builder.split_once('@') {
            Some((id, at)) if at.starts_with("refs/") => {
                format!("^{}@{}$", literal(id), literal(at))
            }
            Some((id, at)) => format!("^{}@(refs/tags/)?{}$", literal(id), literal(at)),
            None => format!("^{}(@.*)?$", literal(builder)),
        };
        checks.push(check(
            version.builder_path(),
            PredicateCondition::Matches(Self::regex(&builder_pattern, "--builder-id")?),
            ReasonCode::BuilderMismatch,
        ));
        if let Some(build_type) = &self.build_type {
            checks.push(check(
                version.build_type_path(),
                PredicateCondition::Equals(serde_json::Value::String(build_type.clone())),
                ReasonCode::BuildTypeMismatch,
            ));
        }
        Ok(checks)
    }

    /// Checks the flags once, before anything is read (the same errors [`ProvenanceRequirements::checks`]
    /// would give later).
    pub fn validate(&self) -> Result<(), RequirementError> {
        if self.versions.is_empty() {
            return Err(RequirementError::Invalid {
                flag: "--slsa-version",
                problem: "no SLSA version accepted".into(),
            });
        }
        for version in &self.versions {
            self.checks(*version, None)?;
        }
        Ok(())
    }

    fn accepted_types(&self) -> String {
        let types: Vec<&str> = self.versions.iter().map(|v| v.predicate_type()).collect();
        types.join(" or ")
    }

    /// Judges one statement about the image `image` (BuildKit's from the index, or the statement of an
    /// attestation the verifier accepted): its predicate type is an accepted SLSA version, a subject names the
    /// image, and its predicate passes [`ProvenanceRequirements::checks`] (through
    /// [`kibaship_cosign::check_predicate`], the evaluation of the verifier's and the admission policy's
    /// predicate checks).
    pub fn judge_statement(&self, statement: &Statement, image: &Digest) -> Result<(), Judgement> {
        let Some(version) = SlsaVersion::from_predicate_type(&statement.predicate_type)
            .filter(|v| self.versions.contains(v))
        else {
            return Err(Judgement::Failed(ProvenanceFailure {
                code: ReasonCode::PredicateTypeMismatch,
                field: "predicateType".into(),
                wanted: self.accepted_types(),
                got: kibaship_printable::printable(&statement.predicate_type, MAX_GOT_CHARS + 1),
            }));
        };
        if !statement.names_digest(image) {
            return Err(Judgement::Failed(ProvenanceFailure {
                code: ReasonCode::SubjectDigestMismatch,
                field: "subject".into(),
                wanted: image.to_string(),
                got: kibaship_printable::printable(
                    &statement.subject_digests().join(", "),
                    MAX_GOT_CHARS + 1,
                ),
            }));
        }
        let build_type = statement
            .predicate
            .as_ref()
            .and_then(|p| p.pointer(version.build_type_path()))
            .and_then(serde_json::Value::as_str);
        let checks = self
            .checks(version, build_type)
            .map_err(Judgement::Unusable)?;
        match check_predicate(
            version.predicate_type(),
            statement.predicate.as_ref(),
            &checks,
        ) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failure)) => Err(Judgement::Failed(failure.into())),
            Err(pointer) => Err(Judgement::Unusable(RequirementError::Invalid {
                flag: "checks",
                problem: pointer.to_string(),
            })),
        }
    }

    /// Decides on what `ImageVerifier` found among the image's attestations (both cosign layouts, every
    /// predicate type): the first accepted SLSA attestation whose statement parses strictly (no duplicate key) and
    /// passes [`ProvenanceRequirements::judge_statement`], by its index in `report.signatures`. Else the most
    /// telling failure: a failed requirement of an accepted version, provenance of another version, a statement
    /// for another image, then the verifier's own reason.
    pub fn judge_report(&self, report: &ImageReport) -> Result<(usize, Statement), Judgement> {
        let image = Digest::parse(&report.digest).map_err(|e| {
            Judgement::Unusable(RequirementError::Invalid {
                flag: "image",
                problem: format!("the verified digest {:?}: {e}", report.digest),
            })
        })?;
        let mut failures: Vec<ProvenanceFailure> = Vec::new();
        for (i, outcome) in report.signatures.iter().enumerate() {
            let Some(accepted) = outcome.accepted() else {
                continue;
            };
            if accepted
                .predicate_type
                .as_deref()
                .and_then(SlsaVersion::from_predicate_type)
                .is_none()
            {
                continue;
            }
            let Some(bytes) = &accepted.statement else {
                continue;
            };
            let statement = match Statement::parse(bytes) {
                Ok(s) => s,
                Err(e) => {
                    failures.push(ProvenanceFailure {
                        code: ReasonCode::BadSignature,
                        field: format!("statement ({})", outcome.location),
                        wanted: "a well-formed in-toto statement".into(),
                        got: kibaship_printable::printable(&e.to_string(), MAX_GOT_CHARS + 1),
                    });
                    continue;
                }
            };
            match self.judge_statement(&statement, &image) {
                Ok(()) => return Ok((i, statement)),
                Err(Judgement::Failed(f)) => failures.push(f),
                Err(unusable) => return Err(unusable),
            }
        }
        let telling = failures
            .iter()
            .find(|f| f.code != ReasonCode::PredicateTypeMismatch)
            .or(failures.first());
        if let Some(f) = telling {
            return Err(Judgement::Failed(f.clone()));
        }
        let rejected = || report.signatures.iter().filter_map(|s| s.rejected());
        if let Some(r) = rejected().find(|r| r.code == ReasonCode::SubjectDigestMismatch) {
            return Err(Judgement::Failed(ProvenanceFailure {
                code: r.code,
                field: "subject".into(),
                wanted: report.digest.clone(),
                got: format!("rejected ({})", r.message),
            }));
        }
        let closest = report.closest_rejection();
        Err(Judgement::Failed(ProvenanceFailure {
            code: closest.map_or(ReasonCode::AttestationMissing, |r| r.code),
            field: "signature".into(),
            wanted: format!("a verified attestation of {}", self.accepted_types()),
            got: closest.map_or_else(
                || "none found".to_string(),
                |r| format!("rejected ({})", r.message),
            ),
        }))
    }
}

/// Why [`ProvenanceRequirements::judge_statement`] did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Judgement {
    /// The statement fails a requirement.
    #[error("{0}")]
    Failed(ProvenanceFailure),
    /// The requirements cannot be checked.
    #[error(transparent)]
    Unusable(RequirementError),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const HEX: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const BUILDER: &str = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml";

    fn image() -> Digest {
        Digest::parse(&format!("sha256:{HEX}")).unwrap()
    }

    fn requirements() -> ProvenanceRequirements {
        ProvenanceRequirements {
            source_uri: "github.com/org/repo".into(),
            source_tag: None,
            source_branch: None,
            source_versioned_tag: None,
            builder_id: BUILDER.into(),
            build_type: None,
            versions: SlsaVersion::ALL.to_vec(),
        }
    }

    fn v02(uri: &str, builder: &str) -> Statement {
        statement(
            SLSA_V02,
            HEX,
            json!({"builder": {"id": builder}, "buildType": "https://github.com/slsa-framework/slsa-github-generator/container@v1",
                   "invocation": {"configSource": {"uri": uri, "digest": {"sha1": "abc"}}}}),
        )
    }

    fn v1(uri: &str, builder: &str) -> Statement {
        statement(
            SLSA_V1,
            HEX,
            json!({"buildDefinition": {"buildType": "https://kibaship.io/buildtypes/railpack-buildkit/v1",
                     "externalParameters": {}, "resolvedDependencies": [{"uri": uri, "digest": {"gitCommit": "abc"}}]},
                   "runDetails": {"builder": {"id": builder}}}),
        )
    }

    fn statement(predicate_type: &str, hex: &str, predicate: serde_json::Value) -> Statement {
        let text = json!({"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "r", "digest": {"sha256": hex}}],
                          "predicateType": predicate_type, "predicate": predicate});
        Statement::parse(text.to_string().as_bytes()).unwrap()
    }

    fn failure(r: &ProvenanceRequirements, s: &Statement) -> ProvenanceFailure {
        match r.judge_statement(s, &image()).unwrap_err() {
            Judgement::Failed(f) => f,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn both_versions_pass_with_the_source_ref_and_builder_where_slsa_verifier_reads_them() {
        let r = requirements();
        let uri = "git+https://github.com/org/repo@refs/tags/v1.2.3";
        for s in [
            v02(uri, &format!("{BUILDER}@refs/tags/v2.1.0")),
            v1(uri, BUILDER),
        ] {
            assert_eq!(r.judge_statement(&s, &image()), Ok(()));
            let tagged = ProvenanceRequirements {
                source_tag: Some("v1.2.3".into()),
                source_versioned_tag: Some("v1.2".parse().unwrap()),
                source_uri: "https://github.com/org/repo".into(),
                ..requirements()
            };
            assert_eq!(tagged.judge_statement(&s, &image()), Ok(()));
        }
    }

    /// What a statement holds is quoted printable: a DEL in its predicate type (the provenance_statement fuzz
    /// target's finding), C1 and ESC in the source it names.
    #[test]
    fn what_a_failure_quotes_from_the_statement_is_printable() {
        let r = requirements();
        let s = statement("https://slsa.dev/pr\u{7f}venance/v1", HEX, json!({}));
        let f = failure(&r, &s);
        assert_eq!(f.code, ReasonCode::PredicateTypeMismatch);
        assert_eq!(f.got, "https://slsa.dev/pr\\u{7f}venance/v1");
        let s = v1("git+https://github.com/org/other\u{9b}2J\u{1b}[0m", BUILDER);
        let f = failure(&r, &s);
        assert_eq!(f.code, ReasonCode::SourceMismatch);
        for text in [f.got.clone(), f.to_string()] {
            assert!(kibaship_printable::is_printable(&text), "{text:?}");
        }
        // JSON text: JSON escapes ESC (`\u001b`), and C1 is escaped after it.
        assert!(f.got.contains("other\\u{9b}2J\\u001b[0m"), "{}", f.got);
    }

    #[test]
    fn every_mismatch_names_its_code_field_wanted_and_got() {
        let r = requirements();
        let good = "git+https://github.com/org/repo@refs/heads/main";
        // A different source repository, also one that only shares a prefix.
        for uri in [
            "git+https://github.com/org/other@refs/heads/main",
            "git+https://github.com/org/repo2@refs/heads/main",
        ] {
            let f = failure(&r, &v1(uri, BUILDER));
            assert_eq!(f.code, ReasonCode::SourceMismatch);
            assert_eq!(f.field, "/buildDefinition/resolvedDependencies/0/uri");
            assert_eq!(f.got, format!("\"{uri}\""));
        }
        let f = failure(
            &r,
            &v02("git+https://github.com/org/other@refs/heads/main", BUILDER),
        );
        assert_eq!(
            (f.code, f.field.as_str()),
            (ReasonCode::SourceMismatch, "/invocation/configSource/uri")
        );
        // A builder not in policy.
        let f = failure(&r, &v1(good, "https://evil.example/builder"));
        assert_eq!(
            (f.code, f.field.as_str()),
            (ReasonCode::BuilderMismatch, "/runDetails/builder/id")
        );
        assert_eq!(f.got, "\"https://evil.example/builder\"");
        let pinned = ProvenanceRequirements {
            builder_id: format!("{BUILDER}@refs/tags/v2.1.0"),
            ..requirements()
        };
        let f = failure(&pinned, &v1(good, &format!("{BUILDER}@refs/tags/v2.0.0")));
        assert_eq!(f.code, ReasonCode::BuilderMismatch);
        // `@v2.1.0` names the tag too (as slsa-verifier), but not another builder with that prefix.
        let short = ProvenanceRequirements {
            builder_id: format!("{BUILDER}@v2.1.0"),
            ..requirements()
        };
        let tagged = v1(good, &format!("{BUILDER}@refs/tags/v2.1.0"));
        assert_eq!(short.judge_statement(&tagged, &image()), Ok(()));
        assert_eq!(pinned.judge_statement(&tagged, &image()), Ok(()));
        let longer = v1(good, &format!("{BUILDER}x@refs/tags/v2.1.0"));
        assert_eq!(failure(&short, &longer).code, ReasonCode::BuilderMismatch);
        assert_eq!(
            failure(&requirements(), &longer).code,
            ReasonCode::BuilderMismatch
        );
        // Branch and tag refs.
        let tag = ProvenanceRequirements {
            source_tag: Some("v1.2.3".into()),
            ..requirements()
        };
        let f = failure(&tag, &v1(good, BUILDER));
        assert_eq!(
            (f.code, f.wanted.as_str()),
            (
                ReasonCode::RefMismatch,
                r"a string matching /^[^@]*@refs/tags/v1\.2\.3$/"
            )
        );
        let branch = ProvenanceRequirements {
            source_branch: Some("master".into()),
            ..requirements()
        };
        assert_eq!(
            failure(&branch, &v1(good, BUILDER)).code,
            ReasonCode::RefMismatch
        );
        let versioned = ProvenanceRequirements {
            source_versioned_tag: Some("v2".parse().unwrap()),
            ..requirements()
        };
        let f = failure(
            &versioned,
            &v1("git+https://github.com/org/repo@refs/tags/v1.9.0", BUILDER),
        );
        assert_eq!(f.code, ReasonCode::RefMismatch);
        // Build type.
        let typed = ProvenanceRequirements {
            build_type: Some("https://example.com/other".into()),
            ..requirements()
        };
        let f = failure(&typed, &v1(good, BUILDER));
        assert_eq!(
            (f.code, f.field.as_str()),
            (ReasonCode::BuildTypeMismatch, "/buildDefinition/buildType")
        );
        // A forged subject digest.
        let mut forged = v1(good, BUILDER);
        forged.subjects[0]
            .digest
            .insert("sha256".into(), "b".repeat(64));
        let f = failure(&r, &forged);
        assert_eq!(
            (f.code, f.field.as_str()),
            (ReasonCode::SubjectDigestMismatch, "subject")
        );
        assert_eq!(f.got, format!("sha256:{}", "b".repeat(64)));
        // v0.2 where v1 is required.
        let v1_only = ProvenanceRequirements {
            versions: vec![SlsaVersion::V1],
            ..requirements()
        };
        let f = failure(&v1_only, &v02(good, BUILDER));
        assert_eq!(
            f.to_string(),
            format!("predicate-type-mismatch: predicateType is {SLSA_V02}, wanted {SLSA_V1}")
        );
        // An absent field fails closed.
        let f = failure(&r, &statement(SLSA_V1, HEX, json!({})));
        assert_eq!(
            (f.code, f.got.as_str()),
            (ReasonCode::SourceMismatch, "absent")
        );
    }

    #[test]
    fn buildkit_provenance_keeps_its_source_in_its_vcs_metadata() {
        let buildkit = |source: &str| {
            statement(
                SLSA_V1,
                HEX,
                json!({"buildDefinition": {"buildType": BUILDKIT_BUILD_TYPE, "externalParameters": {"configSource": {}}},
                       "runDetails": {"builder": {"id": format!("{BUILDER}@v1")},
                                      "metadata": {"buildkit_metadata": {"vcs": {"source": source, "revision": "abc"}}}}}),
            )
        };
        let r = requirements();
        assert_eq!(
            r.judge_statement(&buildkit("https://github.com/org/repo.git"), &image()),
            Ok(())
        );
        assert_eq!(
            r.judge_statement(&buildkit("https://github.com/org/repo"), &image()),
            Ok(())
        );
        let f = failure(&r, &buildkit("https://github.com/org/repo2"));
        assert_eq!(
            (f.code, f.field.as_str()),
            (ReasonCode::SourceMismatch, BUILDKIT_SOURCE_PATH)
        );
        // BuildKit records no ref: a tag requirement fails closed.
        let tag = ProvenanceRequirements {
            source_tag: Some("v1".into()),
            ..requirements()
        };
        assert_eq!(
            failure(&tag, &buildkit("https://github.com/org/repo")).code,
            ReasonCode::RefMismatch
        );
    }

    #[test]
    fn unusable_flags_are_refused() {
        for (r, flag) in [
            (
                ProvenanceRequirements {
                    source_uri: "github.com/org/repo@v1".into(),
                    ..requirements()
                },
                "--source-uri",
            ),
            (
                ProvenanceRequirements {
                    source_uri: " ".into(),
                    ..requirements()
                },
                "--source-uri",
            ),
            (
                ProvenanceRequirements {
                    builder_id: "".into(),
                    ..requirements()
                },
                "--builder-id",
            ),
        ] {
            let err = r.checks(SlsaVersion::V1, None).unwrap_err().to_string();
            assert!(err.starts_with(flag), "{err}");
        }
        assert_eq!("v1.2".parse::<VersionedTag>().unwrap().to_string(), "v1.2");
        let none = ProvenanceRequirements {
            versions: vec![],
            ..requirements()
        };
        assert!(none.validate().is_err());
    }

    #[test]
    fn versioned_tags_match_as_slsa_verifier_matches_them() {
        let matches = |expected: &str, tag: &str| {
            let pattern = expected.parse::<VersionedTag>().unwrap().pattern();
            GoRegex::new(&format!("^{pattern}$")).unwrap().is_match(tag)
        };
        // Major only: any minor, patch, pre-release, build of that major; Go's semver needs the `v`.
        for tag in ["v1", "v1.4", "v1.4.2", "v1.0.0-rc1", "v1.2.3+build.5"] {
            assert!(matches("v1", tag), "v1 ~ {tag}");
        }
        for tag in ["v10.0.0", "v2.0.0", "1.0.0", "v1.", "v01.0.0"] {
            assert!(!matches("v1", tag), "v1 !~ {tag}");
        }
        // Minor: a tag without one is minor 0.
        assert!(
            matches("v1.2", "v1.2.9") && matches("v1.2", "v1.2") && matches("v1.2", "v1.2.0-rc1")
        );
        assert!(
            !matches("v1.2", "v1.20.0") && !matches("v1.2", "v1.3.0") && !matches("v1.2", "v1")
        );
        assert!(matches("v1.0", "v1") && matches("v1.0", "v1.0.7") && !matches("v1.0", "v1.1.0"));
        // Patch: pre-release included, build ignored; a tag without one is patch 0.
        assert!(matches("v1.2.3", "v1.2.3") && matches("v1.2.3", "v1.2.3+build.5"));
        assert!(!matches("v1.2.3", "v1.2.3-rc1") && !matches("v1.2.3", "v1.2.30"));
        assert!(matches("v1.2.3-rc1", "v1.2.3-rc1+b") && !matches("v1.2.3-rc1", "v1.2.3"));
        assert!(
            matches("v1.2.0", "v1.2")
                && matches("v1.0.0", "v1")
                && !matches("v1.0.0", "v1.0.0-rc1")
        );
        assert!(matches("v1.2.3+ignored", "v1.2.3"));
        for bad in [
            "1.2.3", "v1.2-rc1", "v1.2.3-", "v1.2.3+", "v1.2.3.4", "x1", "v01", "v1.", "",
        ] {
            assert!(bad.parse::<VersionedTag>().is_err(), "{bad}");
        }
        assert_eq!(
            "v1.2.3-rc.1".parse::<VersionedTag>().unwrap().to_string(),
            "v1.2.3-rc.1"
        );
    }
}
