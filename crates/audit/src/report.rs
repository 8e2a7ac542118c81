//! The audit report: every distinct image (digest, who signed it, why not), every workload and container with
//! the webhook's answer, and the problems with the input. Pure data, serialized as the stable JSON of
//! `kibaverify audit --output json` (schema [`REPORT_SCHEMA`], documented in docs/audit.md); the renderers in
//! [`crate::render`] read it.
use std::collections::BTreeMap;

use kibaship_policy::Answer;
use serde::Serialize;

use crate::inventory::{ContainerKind, Origin, Problem, Severity};

/// The `schema` field of the JSON report. A new field may be added within a version; a field is never renamed,
/// retyped or removed without a new one.
pub const REPORT_SCHEMA: &str = "https://kibaship.io/schemas/audit-report/v1";

/// What the images were judged by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RequirementsInfo {
    /// An admission policy file, applied as the webhook applies it.
    PolicyFile {
        /// The file as named.
        origin: String,
    },
    /// The key or certificate identity given as flags: one `enforce` policy selecting every image.
    Flags,
}

/// Whether an image satisfied what was required of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageStatus {
    /// Every policy that selects it somewhere verified it.
    Verified,
    /// At least one policy did not (see `code`).
    NotVerified,
    /// No policy selects it anywhere (or an exception covers every use): not verified, only resolved.
    NotChecked,
    /// It could not be read (registry unreachable, timeout, not found, not a reference).
    Error,
}

impl ImageStatus {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Verified => "verified",
            ImageStatus::NotVerified => "not-verified",
            ImageStatus::NotChecked => "not-checked",
            ImageStatus::Error => "error",
        }
    }
}

/// One policy's judgement of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyResult {
    /// The policy's name (`flags` for the flags' requirements).
    pub policy: String,
    /// `enforce`, `warn` or `audit`.
    pub mode: &'static str,
    /// `null`: not checked (an active exception).
    pub verified: Option<bool>,
    /// Why not verified: a reason code of `kibaverify verify` (`unsigned`, `wrong-key`, `timeout`, ...).
    pub code: Option<String>,
}

/// An attestation that verified (signed by an authority of a policy judging the image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationEntry {
    /// Its predicate type.
    pub predicate_type: String,
    /// Who signed it.
    pub signer: String,
    /// A vulnerability report's (`https://cosign.sigstore.dev/attestation/vuln/v1`) scan time, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_finished_on: Option<String>,
    /// Its age in whole days at the audit's time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_days: Option<i64>,
}

impl AttestationEntry {
    /// `TYPE by SIGNER`, with `(scanned D days ago)` for a vulnerability report.
    pub fn describe(&self) -> String {
        let mut text = format!("{} by {}", self.predicate_type, self.signer);
        if let Some(days) = self.age_days {
            text.push_str(&format!(" (scanned {days} days ago)"));
        }
        text
    }
}

/// One distinct image reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageEntry {
    /// The reference as written.
    pub reference: String,
    /// The digest it resolved to (`null` when it could not be).
    pub digest: Option<String>,
    /// The outcome.
    pub status: ImageStatus,
    /// The reason code when not verified or in error.
    pub code: Option<String>,
    /// What went wrong reading it (status `error`).
    pub message: Option<String>,
    /// The pull secret (`namespace/name`) it was read with (`--use-pull-secrets`); `null`: kibaverify's own
    /// credentials. A reference read with different credentials is one entry per credentials.
    pub pull_secret: Option<String>,
    /// Who signed it, as the accepted signatures say (email, URI or `key`), deduplicated.
    pub signers: Vec<String>,
    /// The attestations that verified: every one the authorities of the policies judging it signed (SLSA
    /// provenance, SBOMs, vulnerability reports with their age, ...).
    pub attestations: Vec<AttestationEntry>,
    /// Each policy that judged it.
    pub policies: Vec<PolicyResult>,
    /// How many containers run it.
    pub used_by: usize,
}

/// The exception that covers a container's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionEntry {
    /// Who answers for it.
    pub owner: String,
    /// Why it exists.
    pub reason: String,
    /// When it expires (RFC 3339).
    pub expires: String,
    /// `file:line` of the exception.
    pub location: String,
    /// `false`: it expired and no longer applies.
    pub active: bool,
}

/// One container and the answer for its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerEntry {
    /// The container's name.
    pub name: String,
    /// Which list it is in.
    pub container_kind: ContainerKind,
    /// The image as written.
    pub image: String,
    /// Its digest, when resolved.
    pub digest: Option<String>,
    /// The webhook's answer for this image in this namespace.
    pub answer: Answer,
    /// The first failing policy's reason code (for `deny` and `admit-with-warning`, and `audit` failures).
    pub code: Option<String>,
    /// The policies that select it here.
    pub policies: Vec<PolicyResult>,
    /// The exception covering it, if any (active or expired).
    pub exception: Option<ExceptionEntry>,
}

/// One workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEntry {
    /// Its namespace.
    pub namespace: String,
    /// Its kind (`Image` for a list line or an argument).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Where it was found.
    pub origin: Origin,
    /// The worst answer of its containers (`deny` > `admit-with-warning` > `exception` > `admit` >
    /// `not-selected`): whether the webhook would admit it.
    pub answer: Answer,
    /// The code of the container that decided `answer`.
    pub code: Option<String>,
    /// Its containers.
    pub containers: Vec<ContainerEntry>,
}

/// Counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Workloads.
    pub workloads: usize,
    /// Containers.
    pub containers: usize,
    /// Distinct image references.
    pub images: usize,
    /// Distinct digests they resolved to.
    pub digests: usize,
    /// Verifications run (one per distinct digest and distinct requirements).
    pub verifications: usize,
    /// Attestation reads run (one per distinct digest and distinct authorities).
    pub attestation_reads: usize,
    /// Workloads by answer (`admit`, `admit-with-warning`, `deny`, `exception`, `not-selected`).
    pub answers: BTreeMap<String, usize>,
    /// Images by status.
    pub image_statuses: BTreeMap<String, usize>,
    /// Problems with the input that are errors.
    pub input_errors: usize,
}

/// The whole audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// [`REPORT_SCHEMA`].
    pub schema: &'static str,
    /// When the audit ran (RFC 3339, UTC).
    pub generated_at: String,
    /// What the images were judged by.
    pub requirements: RequirementsInfo,
    /// Counts.
    pub summary: Summary,
    /// Distinct images, by reference.
    pub images: Vec<ImageEntry>,
    /// Workloads, in input order.
    pub workloads: Vec<WorkloadEntry>,
    /// Problems with the input, in input order.
    pub problems: Vec<Problem>,
}

/// Which findings make `kibaverify audit` exit with 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// A container runs an image without any signature (`unsigned`).
    Unsigned,
    /// A workload the webhook would deny.
    Denied,
    /// Anything not clean: a denial, a warning, an image that did not verify under any policy (`audit` mode
    /// included).
    Any,
}

/// How bad an answer is, for a workload's worst.
pub fn answer_rank(answer: Answer) -> u8 {
    match answer {
        Answer::NotSelected => 0,
        Answer::Admit => 1,
        Answer::Exception => 2,
        Answer::AdmitWithWarning => 3,
        Answer::Deny => 4,
    }
}

impl Report {
    /// The containers that count as findings under `fail_on`, as `(workload, container)` pairs.
    pub fn findings(&self, fail_on: FailOn) -> Vec<(&WorkloadEntry, &ContainerEntry)> {
        let images: BTreeMap<&str, &ImageEntry> = self
            .images
            .iter()
            .map(|i| (i.reference.as_str(), i))
            .collect();
        let mut found = Vec::new();
        for workload in &self.workloads {
            for container in &workload.containers {
                let image = images.get(container.image.as_str());
                let unsigned = container
                    .policies
                    .iter()
                    .any(|p| p.code.as_deref() == Some("unsigned"));
                let hit = match fail_on {
                    FailOn::Unsigned => unsigned,
                    FailOn::Denied => container.answer == Answer::Deny,
                    FailOn::Any => {
                        matches!(container.answer, Answer::Deny | Answer::AdmitWithWarning)
                            || container.policies.iter().any(|p| p.verified == Some(false))
                            || image.is_some_and(|i| i.status == ImageStatus::Error)
                    }
                };
                if hit {
                    found.push((workload, container));
                }
            }
        }
        found
    }

    /// Whether part of the input could not be read or an image could not be reached: the audit is incomplete.
    pub fn is_incomplete(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
            || self.images.iter().any(|i| i.status == ImageStatus::Error)
    }

    /// The exit code `kibaverify audit` gives: 2 incomplete, else 1 when `fail_on` finds something, else 0.
    pub fn exit_code(&self, fail_on: FailOn) -> u8 {
        if self.is_incomplete() {
            2
        } else if !self.findings(fail_on).is_empty() {
            1
        } else {
            0
        }
    }
}
