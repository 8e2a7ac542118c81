//! The trivy `--format json` report (SchemaVersion 2), read without copying.
//!
//! Strings borrow from the input buffer where they hold no JSON escapes, fields the gate does not
//! use (descriptions, references, layers, code snippets, secret matches) are skipped without being
//! stored, and unknown fields are tolerated. A report is therefore held once, as the caller's
//! bytes, plus a small index of the findings.
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::GateError;
use crate::severity::{Severity, deserialize_trivy_severity};
use crate::text::Text;

/// A parsed trivy JSON report.
#[derive(Debug, Deserialize)]
pub struct Report<'a> {
    /// Must be 2.
    #[serde(rename = "SchemaVersion", default)]
    pub schema_version: Option<i64>,
    /// When trivy wrote the report (RFC 3339).
    #[serde(rename = "CreatedAt", borrow, default)]
    pub created_at: Option<Text<'a>>,
    /// What was scanned (image reference, path).
    #[serde(rename = "ArtifactName", borrow, default)]
    pub artifact_name: Option<Text<'a>>,
    /// `container_image`, `filesystem`, `repository`, ...
    #[serde(rename = "ArtifactType", borrow, default)]
    pub artifact_type: Option<Text<'a>>,
    /// Image metadata (digests) when an image was scanned.
    #[serde(rename = "Metadata", borrow, default)]
    pub metadata: Option<Metadata<'a>>,
    /// The trivy version that wrote the report (newer trivy only).
    #[serde(rename = "Trivy", borrow, default)]
    pub trivy: Option<TrivyInfo<'a>>,
    /// One result per scanned target (OS packages, a lock file, a Dockerfile, ...).
    #[serde(
        rename = "Results",
        borrow,
        default,
        deserialize_with = "null_as_empty"
    )]
    pub results: Vec<ScanResult<'a>>,
}

/// `Metadata`: the parts the gate uses.
#[derive(Debug, Default, Deserialize)]
pub struct Metadata<'a> {
    /// `ImageID` (the config digest).
    #[serde(rename = "ImageID", borrow, default)]
    pub image_id: Option<Text<'a>>,
    /// `RepoDigests`: `repo@sha256:...` of the scanned image.
    #[serde(
        rename = "RepoDigests",
        borrow,
        default,
        deserialize_with = "null_as_empty"
    )]
    pub repo_digests: Vec<Text<'a>>,
}

/// `Trivy`: the scanner that wrote the report.
#[derive(Debug, Default, Deserialize)]
pub struct TrivyInfo<'a> {
    /// `Version`, e.g. `0.59.1`.
    #[serde(rename = "Version", borrow, default)]
    pub version: Option<Text<'a>>,
}

/// One `Results[]` entry.
#[derive(Debug, Deserialize)]
pub struct ScanResult<'a> {
    /// `Target`: what this result covers (`alpine:3.10 (alpine 3.10.2)`, `package-lock.json`).
    #[serde(rename = "Target", borrow, default)]
    pub target: Text<'a>,
    /// `Class`: `os-pkgs`, `lang-pkgs`, `config`, `secret`, `license`, ...
    #[serde(rename = "Class", borrow, default)]
    pub class: Option<Text<'a>>,
    /// `Type`: `alpine`, `npm`, `dockerfile`, ...
    #[serde(rename = "Type", borrow, default)]
    pub kind: Option<Text<'a>>,
    /// Vulnerabilities found in the target's packages.
    #[serde(
        rename = "Vulnerabilities",
        borrow,
        default,
        deserialize_with = "null_as_empty"
    )]
    pub vulnerabilities: Vec<Vulnerability<'a>>,
    /// Misconfigurations (only `Status: FAIL` entries are findings).
    #[serde(
        rename = "Misconfigurations",
        borrow,
        default,
        deserialize_with = "null_as_empty"
    )]
    pub misconfigurations: Vec<Misconfiguration<'a>>,
    /// Secrets found in files. The matched text itself is never read.
    #[serde(
        rename = "Secrets",
        borrow,
        default,
        deserialize_with = "null_as_empty"
    )]
    pub secrets: Vec<Secret<'a>>,
    /// Licenses found.
    #[serde(
        rename = "Licenses",
        borrow,
        default,
        deserialize_with = "null_as_empty"
    )]
    pub licenses: Vec<License<'a>>,
}

/// One `Vulnerabilities[]` entry.
#[derive(Debug, Deserialize)]
pub struct Vulnerability<'a> {
    /// `VulnerabilityID`: `CVE-...`, `GHSA-...`.
    #[serde(rename = "VulnerabilityID", borrow)]
    pub id: Text<'a>,
    /// `PkgName`.
    #[serde(rename = "PkgName", borrow, default)]
    pub pkg_name: Text<'a>,
    /// `PkgPath`: the file the package came from (language packages in images).
    #[serde(rename = "PkgPath", borrow, default)]
    pub pkg_path: Option<Text<'a>>,
    /// `PkgIdentifier`: the package URL.
    #[serde(rename = "PkgIdentifier", borrow, default)]
    pub pkg_identifier: Option<PkgIdentifier<'a>>,
    /// `InstalledVersion`.
    #[serde(rename = "InstalledVersion", borrow, default)]
    pub installed_version: Text<'a>,
    /// `FixedVersion`: empty when no fix exists.
    #[serde(rename = "FixedVersion", borrow, default)]
    pub fixed_version: Option<Text<'a>>,
    /// `Status`: `fixed`, `affected`, `will_not_fix`, `fix_deferred`, `end_of_life`, ...
    #[serde(rename = "Status", borrow, default)]
    pub status: Option<Text<'a>>,
    /// `Severity`.
    #[serde(
        rename = "Severity",
        default = "unknown_severity",
        deserialize_with = "deserialize_trivy_severity"
    )]
    pub severity: Severity,
    /// The highest CVSS base score over all sources (`CVSS`), newest CVSS version per source.
    #[serde(rename = "CVSS", default, deserialize_with = "deserialize_cvss")]
    pub cvss: Option<f64>,
    /// `PublishedDate`.
    #[serde(rename = "PublishedDate", borrow, default)]
    pub published_date: Option<Text<'a>>,
    /// `Title`.
    #[serde(rename = "Title", borrow, default)]
    pub title: Option<Text<'a>>,
    /// `PrimaryURL`.
    #[serde(rename = "PrimaryURL", borrow, default)]
    pub primary_url: Option<Text<'a>>,
}

impl Vulnerability<'_> {
    /// The package URL, if trivy gave one.
    pub fn purl(&self) -> Option<&str> {
        self.pkg_identifier
            .as_ref()
            .and_then(|identifier| identifier.purl.as_deref())
            .filter(|purl| !purl.is_empty())
    }

    /// Whether a fix exists: `Status: fixed`, or (reports without a status) a `FixedVersion`.
    ///
    /// Trivy's `--ignore-unfixed` keeps exactly the `fixed` status; a report without any status
    /// is judged by its fixed version, which keeps more findings (fail closed).
    pub fn has_fix(&self) -> bool {
        match self.status.as_deref() {
            Some("fixed") => true,
            Some("") | None => self.fixed_version.as_deref().is_some_and(|v| !v.is_empty()),
            Some(_) => false,
        }
    }
}

/// `PkgIdentifier`.
#[derive(Debug, Default, Deserialize)]
pub struct PkgIdentifier<'a> {
    /// `PURL`.
    #[serde(rename = "PURL", borrow, default)]
    pub purl: Option<Text<'a>>,
}

/// One `Misconfigurations[]` entry.
#[derive(Debug, Deserialize)]
pub struct Misconfiguration<'a> {
    /// `ID` (`DS002`, `AVD-AWS-0057`).
    #[serde(rename = "ID", borrow, default)]
    pub id: Text<'a>,
    /// `AVDID` (`AVD-DS-0002`): an alias ignore files may use.
    #[serde(rename = "AVDID", borrow, default)]
    pub avd_id: Option<Text<'a>>,
    /// `Title`.
    #[serde(rename = "Title", borrow, default)]
    pub title: Option<Text<'a>>,
    /// `Message`.
    #[serde(rename = "Message", borrow, default)]
    pub message: Option<Text<'a>>,
    /// `Severity`.
    #[serde(
        rename = "Severity",
        default = "unknown_severity",
        deserialize_with = "deserialize_trivy_severity"
    )]
    pub severity: Severity,
    /// `Status`: `FAIL`, `PASS` or `EXCEPTION`.
    #[serde(rename = "Status", borrow, default)]
    pub status: Option<Text<'a>>,
    /// `PrimaryURL`.
    #[serde(rename = "PrimaryURL", borrow, default)]
    pub primary_url: Option<Text<'a>>,
}

impl Misconfiguration<'_> {
    /// Only failed checks are findings (`--include-non-failures` adds passes and exceptions).
    pub fn is_failure(&self) -> bool {
        matches!(self.status.as_deref(), Some("FAIL") | None | Some(""))
    }
}

/// One `Secrets[]` entry. `Match` and `Code` (which hold the secret, masked or not) are skipped.
#[derive(Debug, Deserialize)]
pub struct Secret<'a> {
    /// `RuleID` (`aws-access-key-id`).
    #[serde(rename = "RuleID", borrow, default)]
    pub rule_id: Text<'a>,
    /// `Category`.
    #[serde(rename = "Category", borrow, default)]
    pub category: Option<Text<'a>>,
    /// `Title`.
    #[serde(rename = "Title", borrow, default)]
    pub title: Option<Text<'a>>,
    /// `Severity`.
    #[serde(
        rename = "Severity",
        default = "unknown_severity",
        deserialize_with = "deserialize_trivy_severity"
    )]
    pub severity: Severity,
    /// `StartLine`.
    #[serde(rename = "StartLine", default)]
    pub start_line: Option<u64>,
}

/// One `Licenses[]` entry.
#[derive(Debug, Deserialize)]
pub struct License<'a> {
    /// `Name`: the license (`GPL-3.0`).
    #[serde(rename = "Name", borrow, default)]
    pub name: Text<'a>,
    /// `PkgName`.
    #[serde(rename = "PkgName", borrow, default)]
    pub pkg_name: Option<Text<'a>>,
    /// `FilePath`.
    #[serde(rename = "FilePath", borrow, default)]
    pub file_path: Option<Text<'a>>,
    /// `Category` (`restricted`, `notice`, ...).
    #[serde(rename = "Category", borrow, default)]
    pub category: Option<Text<'a>>,
    /// `Severity`.
    #[serde(
        rename = "Severity",
        default = "unknown_severity",
        deserialize_with = "deserialize_trivy_severity"
    )]
    pub severity: Severity,
}

impl<'a> Report<'a> {
    /// Parses a trivy JSON report from bytes. Strings borrow from `bytes`.
    ///
    /// Errors name the line and column of the problem; a SchemaVersion other than 2 (or a
    /// SchemaVersion 1 top-level array) is refused.
    pub fn from_slice(bytes: &'a [u8]) -> Result<Report<'a>, GateError> {
        let first = bytes
            .iter()
            .copied()
            .find(|byte| !byte.is_ascii_whitespace());
        match first {
            None => return Err(GateError::EmptyReport),
            Some(b'[') => return Err(GateError::LegacyArrayReport),
            _ => {}
        }
        // serde_json checks UTF-8 only in the strings it keeps; skipped fields are checked here.
        if let Err(error) = std::str::from_utf8(bytes) {
            return Err(crate::stream::invalid_utf8(error.valid_up_to() as u64));
        }
        let report: Report<'a> = serde_json::from_slice(bytes).map_err(GateError::ReportSyntax)?;
        match report.schema_version {
            Some(2) => Ok(report),
            Some(found) => Err(GateError::UnsupportedSchemaVersion { found }),
            None => Err(GateError::MissingSchemaVersion),
        }
    }

    /// The number of vulnerabilities in the report.
    pub fn vulnerability_count(&self) -> usize {
        self.results.iter().map(|r| r.vulnerabilities.len()).sum()
    }
}

fn unknown_severity() -> Severity {
    Severity::Unknown
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Scores of one CVSS source; vectors are skipped.
#[derive(Deserialize)]
struct CvssScores {
    #[serde(rename = "V2Score", default)]
    v2: Option<f64>,
    #[serde(rename = "V3Score", default)]
    v3: Option<f64>,
    #[serde(rename = "V40Score", default)]
    v40: Option<f64>,
}

fn deserialize_cvss<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    struct CvssVisitor;
    impl<'de> Visitor<'de> for CvssVisitor {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a CVSS object keyed by source")
        }
        fn visit_unit<E>(self) -> Result<Option<f64>, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Option<f64>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<f64>, D::Error> {
            d.deserialize_map(CvssVisitor)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<f64>, A::Error> {
            let mut best: Option<f64> = None;
            while map.next_key::<IgnoredAny>()?.is_some() {
                let scores: CvssScores = map.next_value()?;
                // The newest CVSS version a source scored, as trivy's own tables show it.
                let score = scores.v40.or(scores.v3).or(scores.v2);
                if let Some(score) = score {
                    if !(0.0..=10.0).contains(&score) {
                        return Err(serde::de::Error::custom(format!(
                            "CVSS score {score} is outside 0.0..=10.0"
                        )));
                    }
                    best = Some(best.map_or(score, |b: f64| b.max(score)));
                }
            }
            Ok(best)
        }
    }
    deserializer.deserialize_option(CvssVisitor)
}
