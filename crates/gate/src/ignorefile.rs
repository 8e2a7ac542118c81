//! trivy's own ignore files, read the way trivy reads them.
//!
//! * `.trivyignore` (any name not ending in `.yaml`/`.yml`): one finding ID per line (the first
//!   whitespace-separated field); lines starting with `#` and blank lines are skipped; an
//!   `exp:YYYY-MM-DD` field sets an expiry. As in trivy, a line whose `exp:` date does not parse
//!   is dropped (the verdict carries a warning naming the line). IDs apply to every finding kind.
//! * `.trivyignore.yaml`: `vulnerabilities`, `misconfigurations`, `secrets`, `licenses` lists
//!   of `{id, paths, purls, expired_at, statement}`; `purls` only for vulnerabilities. Unknown
//!   keys are ignored by trivy; here they produce a warning naming them.
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::GateError;
use crate::exception::{Exception, ExceptionOrigin, Kinds, parse_expiry};
use crate::glob::{MAX_PATTERNS_PER_FILE, PathGlob, PatternBudget};
use crate::purl::PackageUrl;

/// Exceptions read from one ignore file, and what was dropped from it.
#[derive(Debug, Clone, Default)]
pub struct IgnoreFile {
    /// The exceptions, in file order.
    pub exceptions: Vec<Exception>,
    /// Lines or keys that were not used, and why.
    pub warnings: Vec<String>,
}

impl IgnoreFile {
    /// Reads `text` as `.trivyignore.yaml` when `file` ends in `.yaml`/`.yml`, else as
    /// `.trivyignore` (trivy decides the same way).
    /// A text above [`crate::MAX_INPUT_FILE_BYTES`] is refused before it is parsed.
    pub fn parse(file: &str, text: &str) -> Result<IgnoreFile, GateError> {
        crate::input::check_size(text, file)?;
        if file.ends_with(".yaml") || file.ends_with(".yml") {
            IgnoreFile::parse_yaml(file, text)
        } else {
            Ok(IgnoreFile::parse_lines(file, text))
        }
    }

    /// Reads the `.trivyignore` line format.
    pub fn parse_lines(file: &str, text: &str) -> IgnoreFile {
        let mut out = IgnoreFile::default();
        for (number, line) in text.lines().enumerate() {
            let line_number = number + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let Some(id) = fields.next() else { continue };
            let mut expires = None;
            let mut expires_text = None;
            if let Some(exp) = fields.find_map(|field| field.strip_prefix("exp:")) {
                match parse_date_only(exp) {
                    Ok(instant) => {
                        expires = Some(instant);
                        expires_text = Some(exp.to_owned());
                    }
                    Err(message) => {
                        out.warnings.push(format!(
                            "{file}: line {line_number}: `{id}` dropped, as trivy does: {message}"
                        ));
                        continue;
                    }
                }
            }
            out.exceptions.push(Exception {
                id: id.to_owned(),
                kinds: Kinds::ALL,
                paths: Vec::new(),
                purls: Vec::new(),
                purl_optional: true,
                packages: Vec::new(),
                expires,
                expires_text,
                reason: None,
                owner: None,
                origin: ExceptionOrigin::TrivyIgnore,
                file: file.to_owned(),
                location: format!("line {line_number}"),
            });
        }
        out
    }

    /// Reads the `.trivyignore.yaml` format.
    pub fn parse_yaml(file: &str, text: &str) -> Result<IgnoreFile, GateError> {
        let raw: RawIgnoreYaml =
            crate::yaml::from_str(text).map_err(|error| GateError::IgnoreFileSyntax {
                file: file.to_owned(),
                error,
            })?;
        let mut out = IgnoreFile::default();
        let mut budget = PatternBudget::per_file();
        for key in raw.unknown.keys() {
            out.warnings
                .push(format!("{file}: unknown top-level key `{key}` ignored"));
        }
        let sections = [
            ("vulnerabilities", raw.vulnerabilities, true),
            ("misconfigurations", raw.misconfigurations, false),
            ("secrets", raw.secrets, false),
            ("licenses", raw.licenses, false),
        ];
        for (section, entries, purls_allowed) in sections {
            let kinds = Kinds {
                vulnerabilities: section == "vulnerabilities",
                misconfigurations: section == "misconfigurations",
                secrets: section == "secrets",
                licenses: section == "licenses",
            };
            for (index, entry) in entries.unwrap_or_default().into_iter().enumerate() {
                let location = format!("{section}[{index}]");
                let fail = |message: String| GateError::IgnoreFile {
                    file: file.to_owned(),
                    location: location.clone(),
                    message,
                };
                for key in entry.unknown.keys() {
                    out.warnings
                        .push(format!("{file}: {location}: unknown key `{key}` ignored"));
                }
                let id = entry
                    .id
                    .filter(|id| !id.trim().is_empty())
                    .ok_or_else(|| fail("`id` is missing or empty".to_owned()))?;
                let patterns = entry.paths.unwrap_or_default();
                let mut paths = Vec::with_capacity(patterns.len());
                for pattern in &patterns {
                    match PathGlob::parse_within(pattern, &mut budget) {
                        Ok(glob) => paths.push(glob),
                        Err(_) if budget.exhausted => {
                            return Err(GateError::PatternBudget {
                                file: file.to_owned(),
                                location,
                                limit: MAX_PATTERNS_PER_FILE,
                            });
                        }
                        Err(message) => return Err(fail(message)),
                    }
                }
                let purl_texts = entry.purls.unwrap_or_default();
                if !purls_allowed && !purl_texts.is_empty() {
                    out.warnings.push(format!(
                        "{file}: {location}: `purls` only applies to vulnerabilities; ignored"
                    ));
                }
                let purls = if purls_allowed {
                    purl_texts
                        .iter()
                        .map(|p| PackageUrl::parse(p))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(fail)?
                } else {
                    Vec::new()
                };
                let expires = entry
                    .expired_at
                    .as_deref()
                    .map(parse_expiry)
                    .transpose()
                    .map_err(fail)?;
                out.exceptions.push(Exception {
                    id: id.trim().to_owned(),
                    kinds,
                    paths,
                    purls,
                    purl_optional: true,
                    packages: Vec::new(),
                    expires,
                    expires_text: entry.expired_at,
                    reason: entry.statement.filter(|s| !s.is_empty()),
                    owner: None,
                    origin: ExceptionOrigin::TrivyIgnoreYaml,
                    file: file.to_owned(),
                    location,
                });
            }
        }
        Ok(out)
    }
}

fn parse_date_only(text: &str) -> Result<time::OffsetDateTime, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .map(|date| date.midnight().assume_utc())
        .map_err(|_| format!("`exp:{text}` is not a date (`exp:YYYY-MM-DD`)"))
}

#[derive(Deserialize)]
struct RawIgnoreYaml {
    #[serde(default)]
    vulnerabilities: Option<Vec<RawIgnoreEntry>>,
    #[serde(default)]
    misconfigurations: Option<Vec<RawIgnoreEntry>>,
    #[serde(default)]
    secrets: Option<Vec<RawIgnoreEntry>>,
    #[serde(default)]
    licenses: Option<Vec<RawIgnoreEntry>>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct RawIgnoreEntry {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    purls: Option<Vec<String>>,
    #[serde(default)]
    expired_at: Option<String>,
    #[serde(default)]
    statement: Option<String>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}
