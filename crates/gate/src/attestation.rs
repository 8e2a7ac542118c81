//! The scan result as an in-toto statement with the cosign vulnerability predicate.
//!
//! Statement `https://in-toto.io/Statement/v1`, predicate type
//! `https://cosign.sigstore.dev/attestation/vuln/v1`, predicate
//! `{invocation{parameters,uri,event_id,builder.id}, scanner{uri,version,db{uri,version},result},
//! metadata{scanStartedOn,scanFinishedOn}}` as cosign and trivy write it; `scanner.result` is the
//! trivy report, embedded byte for byte. The subject is the image digest, so the statement is
//! ready to be wrapped in DSSE, signed and attached.
use serde::Serialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::GateError;
use crate::report::Report;
use crate::stream::ReportHeader;

/// The in-toto statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The cosign vulnerability predicate type.
pub const VULN_PREDICATE_TYPE: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";

/// Scanner facts the report itself may not carry.
#[derive(Debug, Clone, Default)]
pub struct ScannerInfo {
    /// The trivy version; defaults to the report's `Trivy.Version`.
    pub version: Option<String>,
    /// Vulnerability DB location (e.g. `ghcr.io/aquasecurity/trivy-db:2`).
    pub db_uri: Option<String>,
    /// Vulnerability DB version (e.g. its `UpdatedAt`).
    pub db_version: Option<String>,
    /// Where the scan ran (a CI run URL), for `invocation.uri`.
    pub invocation_uri: Option<String>,
}

/// An image pinned by digest, split for the statement subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedImage {
    /// The repository (`registry/repo`), without tag or digest.
    pub name: String,
    /// The lower-case hex of the sha256 digest.
    pub sha256: String,
}

impl PinnedImage {
    /// Parses `name[:tag]@sha256:<64 hex>`.
    pub fn parse(reference: &str) -> Result<PinnedImage, GateError> {
        let bad = || GateError::ImageReference(reference.to_owned());
        let (name, digest) = reference.rsplit_once('@').ok_or_else(bad)?;
        let hex = digest.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        // Drop a tag: a `:` after the last `/` (a `:` before it is a registry port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let name = match name.get(last_slash..).and_then(|tail| tail.find(':')) {
            Some(colon) => name.get(..last_slash + colon).unwrap_or(name),
            None => name,
        };
        if name.is_empty() {
            return Err(bad());
        }
        Ok(PinnedImage {
            name: name.to_owned(),
            sha256: hex.to_owned(),
        })
    }
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "_type")]
    kind: &'static str,
    subject: [Subject<'a>; 1],
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: Predicate<'a>,
}

#[derive(Serialize)]
struct Subject<'a> {
    name: &'a str,
    digest: Digest<'a>,
}

#[derive(Serialize)]
struct Digest<'a> {
    sha256: &'a str,
}

#[derive(Serialize)]
struct Predicate<'a> {
    invocation: Invocation<'a>,
    scanner: Scanner<'a>,
    metadata: ScanMetadata,
}

#[derive(Serialize)]
struct Invocation<'a> {
    parameters: Option<()>,
    uri: &'a str,
    event_id: &'a str,
    #[serde(rename = "builder.id")]
    builder_id: &'a str,
}

#[derive(Serialize)]
struct Scanner<'a> {
    uri: String,
    version: &'a str,
    db: Db<'a>,
    result: &'a RawValue,
}

#[derive(Serialize)]
struct Db<'a> {
    uri: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct ScanMetadata {
    #[serde(rename = "scanStartedOn")]
    scan_started_on: String,
    #[serde(rename = "scanFinishedOn")]
    scan_finished_on: String,
}

/// Builds the statement (JSON bytes) for `image` over the report `report_bytes` (already parsed
/// as `report`). Scan times come from the report's `CreatedAt` (trivy writes one time for
/// both), else `now`. The statement is about as large as the report; to write it without a
/// second copy in memory use [`write_vuln_statement`].
pub fn vuln_statement(
    image: &PinnedImage,
    report_bytes: &[u8],
    report: &Report<'_>,
    scanner: &ScannerInfo,
    now: OffsetDateTime,
) -> Result<Vec<u8>, GateError> {
    let mut out = Vec::with_capacity(report_bytes.len().saturating_add(1024));
    let facts = ReportFacts {
        trivy_version: report.trivy.as_ref().and_then(|t| t.version.as_deref()),
        created_at: report.created_at.as_deref(),
    };
    write_statement(&mut out, image, report_bytes, facts, scanner, now)?;
    Ok(out)
}

/// Writes the statement for `image` over `report_bytes` to `out`, taking the trivy version and
/// scan time from the streaming reader's `header` (see [`crate::stream::read_report`]).
///
/// The report is embedded byte for byte straight from `report_bytes` into `out` (no copy of it
/// is built in memory), so with a buffered file as `out` the memory used is the report bytes
/// the caller holds plus a few kilobytes.
pub fn write_vuln_statement<W: std::io::Write>(
    out: W,
    image: &PinnedImage,
    report_bytes: &[u8],
    header: &ReportHeader,
    scanner: &ScannerInfo,
    now: OffsetDateTime,
) -> Result<(), GateError> {
    let facts = ReportFacts {
        trivy_version: header.trivy_version.as_deref(),
        created_at: header.created_at.as_deref(),
    };
    write_statement(out, image, report_bytes, facts, scanner, now)
}

/// What the statement takes from the report besides its bytes.
#[derive(Clone, Copy)]
struct ReportFacts<'r> {
    trivy_version: Option<&'r str>,
    created_at: Option<&'r str>,
}

fn write_statement<W: std::io::Write>(
    out: W,
    image: &PinnedImage,
    report_bytes: &[u8],
    report: ReportFacts<'_>,
    scanner: &ScannerInfo,
    now: OffsetDateTime,
) -> Result<(), GateError> {
    let raw: &RawValue = serde_json::from_slice(report_bytes).map_err(GateError::Attestation)?;
    let version = scanner
        .version
        .as_deref()
        .or(report.trivy_version)
        .unwrap_or("unknown");
    let scanned_at = report
        .created_at
        .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok())
        .unwrap_or(now);
    let scanned_at = scanned_at
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| GateError::ScanTime(e.to_string()))?;
    let statement = Statement {
        kind: STATEMENT_TYPE,
        subject: [Subject {
            name: &image.name,
            digest: Digest {
                sha256: &image.sha256,
            },
        }],
        predicate_type: VULN_PREDICATE_TYPE,
        predicate: Predicate {
            invocation: Invocation {
                parameters: None,
                uri: scanner.invocation_uri.as_deref().unwrap_or(""),
                event_id: "",
                builder_id: "",
            },
            scanner: Scanner {
                uri: format!("pkg:github/aquasecurity/trivy@{version}"),
                version,
                db: Db {
                    uri: scanner.db_uri.as_deref().unwrap_or(""),
                    version: scanner.db_version.as_deref().unwrap_or(""),
                },
                result: raw,
            },
            metadata: ScanMetadata {
                scan_started_on: scanned_at.clone(),
                scan_finished_on: scanned_at,
            },
        },
    };
    serde_json::to_writer(out, &statement).map_err(GateError::Attestation)
}
