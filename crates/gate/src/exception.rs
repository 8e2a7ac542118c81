//! Exceptions: findings a team has accepted, from the policy or from trivy ignore files.
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

use crate::glob::PathGlob;
use crate::purl::PackageUrl;

/// Where an exception was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionOrigin {
    /// The gate policy's `exceptions` list.
    Policy,
    /// A `.trivyignore` file (line format).
    TrivyIgnore,
    /// A `.trivyignore.yaml` file.
    TrivyIgnoreYaml,
}

/// Which finding kinds an exception may match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds {
    /// Vulnerabilities.
    pub vulnerabilities: bool,
    /// Misconfigurations (by `ID` or `AVDID`).
    pub misconfigurations: bool,
    /// Secrets (by `RuleID`).
    pub secrets: bool,
    /// Licenses (by license name).
    pub licenses: bool,
}

impl Kinds {
    /// Every kind (policy exceptions and `.trivyignore` IDs).
    pub const ALL: Kinds = Kinds {
        vulnerabilities: true,
        misconfigurations: true,
        secrets: true,
        licenses: true,
    };
}

/// One accepted finding.
#[derive(Debug, Clone)]
pub struct Exception {
    /// The finding ID: `CVE-...`, `AVD-DS-0002`, a secret rule ID or a license name.
    pub id: String,
    /// Finding kinds it applies to.
    pub kinds: Kinds,
    /// Path globs: matches when the result `Target` or the package's `PkgPath` matches one.
    pub paths: Vec<PathGlob>,
    /// Package URL constraints (vulnerabilities only).
    pub purls: Vec<PackageUrl>,
    /// When true (trivy's rule for ignore files), a finding without a package URL satisfies the
    /// `purls` constraint; when false (policy exceptions), it does not.
    pub purl_optional: bool,
    /// Package names (`PkgName`), policy only.
    pub packages: Vec<String>,
    /// The exception stops applying at this instant (a date means midnight UTC that day).
    pub expires: Option<OffsetDateTime>,
    /// The expiry as written.
    pub expires_text: Option<String>,
    /// Why the finding is accepted (`reason`, `statement`).
    pub reason: Option<String>,
    /// Who owns the decision.
    pub owner: Option<String>,
    /// Where it came from.
    pub origin: ExceptionOrigin,
    /// The file it was read from.
    pub file: String,
    /// Its place in that file: `line 4`, `exceptions[2]`, `vulnerabilities[0]`.
    pub location: String,
}

/// What a finding offers for matching.
pub(crate) struct MatchSubject<'s> {
    pub paths: [Option<&'s str>; 2],
    pub purl: Option<&'s str>,
    pub package: Option<&'s str>,
}

impl Exception {
    /// Whether the exception has expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires.is_some_and(|expires| expires < now)
    }

    /// Whether the exception covers the finding (its ID was already compared).
    pub(crate) fn matches(&self, subject: &MatchSubject<'_>) -> bool {
        if !self.paths.is_empty() {
            let hit = subject
                .paths
                .iter()
                .flatten()
                .filter(|p| !p.is_empty())
                .any(|path| self.paths.iter().any(|glob| glob.matches(path)));
            if !hit {
                return false;
            }
        }
        if !self.packages.is_empty()
            && !subject
                .package
                .is_some_and(|name| self.packages.iter().any(|p| p == name))
        {
            return false;
        }
        if !self.purls.is_empty() {
            match subject.purl.map(PackageUrl::parse) {
                Some(Ok(target)) => {
                    if !self
                        .purls
                        .iter()
                        .any(|constraint| constraint.matches(&target))
                    {
                        return false;
                    }
                }
                // A package URL trivy wrote but we cannot read never matches (fail closed).
                Some(Err(_)) => return false,
                None => return self.purl_optional,
            }
        }
        true
    }
}

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 instant.
pub(crate) fn parse_expiry(text: &str) -> Result<OffsetDateTime, String> {
    let trimmed = text.trim();
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = Date::parse(trimmed, &date_format) {
        return Ok(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc());
    }
    OffsetDateTime::parse(trimmed, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("expiry `{trimmed}` is not a date (`YYYY-MM-DD`) or an RFC 3339 time"))
}
