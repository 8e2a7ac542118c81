//! SBOM formats, pure (no I/O): which format a JSON document is in, whether it is valid against that format's
//! official JSON schema, and the media and predicate types it travels under.
//!
//! - [`validate`] detects CycloneDX (1.4–1.7) or SPDX (2.3, and 2.2, whose documents the 2.3 schema refuses:
//!   2.2 spells `PACKAGE_MANAGER` where 2.3 spells `PACKAGE-MANAGER`) and validates the document against the
//!   official schema of its version,
//!   embedded here ([`include_str!`]) and compiled once per version. CycloneDX's references to
//!   `spdx.schema.json`, `jsf-0.82.schema.json` and `cryptography-defs.schema.json` resolve to the embedded copies;
//!   nothing is ever fetched.
//! - [`Format`] names the OCI `artifactType` (`application/vnd.cyclonedx+json`, `application/spdx+json`, as trivy
//!   and oras use them) and the in-toto predicate type (`https://cyclonedx.org/bom`, `https://spdx.dev/Document`,
//!   as cosign uses them) of each format.
//!
//! Every failure is an [`SbomError`] naming what was wrong and where: the JSON line and column, a key found
//! twice in one object with its JSON pointer ([`json`], the same check in-toto statements get), the field that
//! carries the version, or for schema violations the JSON pointer of the failing value and the schema rule (the
//! first [`MAX_REPORTED_VIOLATIONS`]). Nothing here panics on input.
use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

pub mod json;
mod stream;

/// Documents at least this large are validated streaming when their schema allows it (CycloneDX's
/// `components` and `dependencies` item by item): memory then stays near the document's size.
pub const STREAMING_THRESHOLD_BYTES: usize = 4 * 1024 * 1024;

/// Largest SBOM accepted, from a file or from a registry: 128 MiB. A large CycloneDX document is validated
/// streaming ([`STREAMING_THRESHOLD_BYTES`]); others are parsed whole (about ten times their size in memory), so
/// this bounds memory as well as transfer.
pub const MAX_SBOM_BYTES: u64 = 128 * 1024 * 1024;

/// Schema violations reported in an [`SbomError::Invalid`] (the total is counted up to [`MAX_COUNTED_VIOLATIONS`]).
pub const MAX_REPORTED_VIOLATIONS: usize = 5;

/// Violations counted before counting stops.
pub const MAX_COUNTED_VIOLATIONS: usize = 1000;

/// Longest version text quoted in an [`SbomError::UnsupportedVersion`].
const MAX_VERSION_CHARS: usize = 80;

/// Longest message kept per violation (the validator's messages quote the failing value, which may be large).
const MAX_MESSAGE_CHARS: usize = 240;

/// The SBOM formats kibaship reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// CycloneDX JSON (1.4, 1.5, 1.6, 1.7).
    CycloneDx,
    /// SPDX JSON (2.3 and 2.2).
    Spdx,
}

/// CycloneDX `specVersion`s validated, oldest first.
pub const CYCLONEDX_VERSIONS: [&str; 4] = ["1.4", "1.5", "1.6", "1.7"];
/// SPDX `spdxVersion`s validated, each against its own schema.
pub const SPDX_VERSIONS: [&str; 2] = ["SPDX-2.2", "SPDX-2.3"];

impl Format {
    /// Both formats.
    pub const ALL: [Format; 2] = [Format::CycloneDx, Format::Spdx];

    /// The media type used as OCI `artifactType` (and layer media type) of an attached SBOM, as trivy and oras
    /// write it.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::CycloneDx => "application/vnd.cyclonedx+json",
            Format::Spdx => "application/spdx+json",
        }
    }

    /// The in-toto predicate type of an SBOM attestation, as cosign writes it (`--type cyclonedx`,
    /// `--type spdxjson`).
    pub fn predicate_type(self) -> &'static str {
        match self {
            Format::CycloneDx => "https://cyclonedx.org/bom",
            Format::Spdx => "https://spdx.dev/Document",
        }
    }

    /// cosign's `--type` name that embeds the document as a JSON object under [`Format::predicate_type`].
    pub fn cosign_type_name(self) -> &'static str {
        match self {
            Format::CycloneDx => "cyclonedx",
            Format::Spdx => "spdxjson",
        }
    }

    /// The short name used on the command line (`cyclonedx`, `spdx`).
    pub fn name(self) -> &'static str {
        match self {
            Format::CycloneDx => "cyclonedx",
            Format::Spdx => "spdx",
        }
    }

    /// The format an OCI `artifactType` (or layer media type) names: the exact media type, optionally with
    /// parameters (`application/vnd.cyclonedx+json; version=1.6`).
    pub fn from_media_type(media_type: &str) -> Option<Format> {
        let essence = media_type.split(';').next().unwrap_or("").trim();
        Format::ALL
            .into_iter()
            .find(|f| essence.eq_ignore_ascii_case(f.media_type()))
    }

    /// The format an in-toto predicate type names: cosign's URIs, and their versioned forms
    /// (`https://cyclonedx.org/bom/v1.6`, `https://spdx.dev/Document/v2.3`).
    pub fn from_predicate_type(predicate_type: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| {
            predicate_type
                .strip_prefix(f.predicate_type())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::CycloneDx => "CycloneDX",
            Format::Spdx => "SPDX",
        })
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cyclonedx" | "cdx" => Ok(Format::CycloneDx),
            "spdx" => Ok(Format::Spdx),
            _ => Err(format!("unknown SBOM format {s:?}: give cyclonedx or spdx")),
        }
    }
}

/// One way a document fails its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer (RFC 6901) of the failing value in the document (`""` for the whole document).
    pub pointer: String,
    /// JSON pointer of the failing rule in the schema (e.g. `/properties/metadata/properties/timestamp/format`).
    pub rule: String,
    /// The validator's words, shortened.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "(document)"
        } else {
            &self.pointer
        };
        write!(
            f,
            "at {pointer}: {} (schema rule {})",
            self.message, self.rule
        )
    }
}

/// The violations of an invalid document, the first few of them, and how many there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations {
    /// The first [`MAX_REPORTED_VIOLATIONS`].
    pub first: Vec<Violation>,
    /// How many were found (counting stops at [`MAX_COUNTED_VIOLATIONS`]).
    pub total: usize,
}

impl Violations {
    /// `1 violation`, `3 violations`, `1000+ violations`.
    pub fn count(&self) -> String {
        let plus = if self.total >= MAX_COUNTED_VIOLATIONS {
            "+"
        } else {
            ""
        };
        let s = if self.total == 1 { "" } else { "s" };
        format!("{}{plus} violation{s}", self.total)
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in self.first.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        let more = self.total.saturating_sub(self.first.len());
        if more > 0 {
            let plus = if self.total >= MAX_COUNTED_VIOLATIONS {
                "+"
            } else {
                ""
            };
            write!(f, "; and {more}{plus} more")?;
        }
        Ok(())
    }
}

/// What is wrong with a document offered as an SBOM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SbomError {
    /// Larger than [`MAX_SBOM_BYTES`].
    #[error("the SBOM is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Not text in an encoding JSON may use (UTF-8, or UTF-16 with a byte-order mark or recognisable).
    #[error("the SBOM is not JSON text: {0}")]
    Encoding(String),
    /// Not JSON.
    #[error("the SBOM is not JSON: {reason} (line {line}, column {column})")]
    NotJson {
        /// The parser's words.
        reason: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// An object with the same key twice: serde_json would keep the last value, another reader the first, so
    /// what the schema validated might not be what a consumer reads.
    #[error(
        "the SBOM has the key {} twice in one object (at JSON pointer {}, line {line}, column {column}): \
         readers disagree on which value counts",
        json::shown_key(.key),
        kibaship_printable::printable(.pointer, json::MAX_SHOWN_POINTER_CHARS)
    )]
    DuplicateKey {
        /// The key.
        key: String,
        /// JSON pointer (RFC 6901) of its second occurrence.
        pointer: String,
        /// 1-based line where the second occurrence of the key ends.
        line: usize,
        /// 1-based column of the closing quote of the second occurrence of the key.
        column: usize,
    },
    /// JSON, but not an object.
    #[error("the SBOM must be a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// A JSON object in neither format.
    #[error(
        "the document is neither CycloneDX (no \"bomFormat\" and \"specVersion\") nor SPDX (no \"spdxVersion\")"
    )]
    UnknownFormat,
    /// A version of the format that is not validated here.
    #[error(
        "{format} version {found} is not supported (field {field}): supported are {}",
        supported.join(", ")
    )]
    UnsupportedVersion {
        /// The format.
        format: Format,
        /// The version found, as written (JSON text when not a string).
        found: String,
        /// The field that carries it (`/specVersion`, `/spdxVersion`).
        field: &'static str,
        /// The versions validated.
        supported: &'static [&'static str],
    },
    /// Invalid against its schema.
    #[error(
        "{format} {schema} document is invalid against its official JSON schema ({}): {violations}",
        violations.count()
    )]
    Invalid {
        /// The format.
        format: Format,
        /// The document's version.
        version: String,
        /// The schema version it was checked against.
        schema: &'static str,
        /// What failed, where.
        violations: Violations,
    },
    /// An embedded schema does not compile (a defect of this crate, never of the input).
    #[error("internal: the {0} JSON schema does not compile: {1}")]
    Schema(&'static str, String),
}

/// A document that is a valid SBOM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated<'a> {
    /// Its format.
    pub format: Format,
    /// Its version as written (`1.6`, `SPDX-2.3`).
    pub version: String,
    /// The schema version it was validated against (`1.6`, `2.3`).
    pub schema: &'static str,
    /// The document as UTF-8 JSON without a byte-order mark: the input itself when it was that already,
    /// else its transcoding (RFC 8259 requires UTF-8 between systems; this is what is pushed and attested).
    pub utf8: Cow<'a, [u8]>,
}

/// The one `primaryPackagePurpose` the SPDX 2.3 specification text and its JSON schema spell differently: the
/// text (and trivy, through spdx/tools-golang, so BuildKit SBOMs scanned by trivy) writes `OPERATING-SYSTEM`, the
/// schema's enum has `OPERATING_SYSTEM`. Both mean the same purpose.
const SPEC_TEXT_OPERATING_SYSTEM: &str = "OPERATING-SYSTEM";

/// Validates packages whose `primaryPackagePurpose` is written as the specification text spells it as the
/// schema spells it (only the copy being validated is changed; the document's bytes are what is attached).
fn accept_spec_text_purpose(doc: &mut Value) {
    let Some(packages) = doc.get_mut("packages").and_then(Value::as_array_mut) else {
        return;
    };
    for package in packages {
        if let Some(purpose) = package.get_mut("primaryPackagePurpose") {
            if purpose.as_str() == Some(SPEC_TEXT_OPERATING_SYSTEM) {
                *purpose = Value::String("OPERATING_SYSTEM".into());
            }
        }
    }
}

/// Detects the format of `bytes` and validates it against its official JSON schema.
pub fn validate(bytes: &[u8]) -> Result<Validated<'_>, SbomError> {
    if bytes.len() >= STREAMING_THRESHOLD_BYTES {
        if let Some(result) = validate_streaming(bytes) {
            return result;
        }
    }
    validate_whole(bytes)
}

/// [`validate`] with the whole document parsed into one tree, whatever its size: what streaming validation
/// must agree with.
pub fn validate_whole(bytes: &[u8]) -> Result<Validated<'_>, SbomError> {
    let (utf8, mut doc) = parse_document(bytes)?;
    let (format, version, schema) = detect_value(&doc)?;
    if format == Format::Spdx {
        accept_spec_text_purpose(&mut doc);
    }
    // SPDX 2.2's schema spells the external reference category `PACKAGE_MANAGER`, its specification text and the
    // tools `PACKAGE-MANAGER` (which 2.3 made the rule): a 2.2 document valid against the 2.3 schema is accepted.
    if std::ptr::eq(schema, &SPDX_2_2) && compiled(&SPDX_2_3)?.is_valid(&doc) {
        return Ok(Validated {
            format,
            version,
            schema: SPDX_2_3.version,
            utf8,
        });
    }
    let validator = compiled(schema)?;
    let mut first = Vec::new();
    let mut total = 0;
    for error in validator.iter_errors(&doc).take(MAX_COUNTED_VIOLATIONS) {
        total += 1;
        if first.len() < MAX_REPORTED_VIOLATIONS {
            first.push(Violation {
                pointer: error.instance_path().as_str().to_string(),
                rule: error.schema_path().as_str().to_string(),
                message: shorten(&error.to_string()),
            });
        }
    }
    if total > 0 {
        return Err(SbomError::Invalid {
            format,
            version,
            schema: schema.version,
            violations: Violations { first, total },
        });
    }
    Ok(Validated {
        format,
        version,
        schema: schema.version,
        utf8,
    })
}

/// Streaming validation of a large document (see the `stream` module); `None` when it does not apply (another
/// format, a schema or document of another shape, anything unexpected): the whole document is validated then.
/// The streamed items are checked on as many threads as there are cores (at most [`MAX_VALIDATION_THREADS`]).
fn validate_streaming(bytes: &[u8]) -> Option<Result<Validated<'_>, SbomError>> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    validate_streaming_on(bytes, cores.min(MAX_VALIDATION_THREADS))
}

/// Threads that check a large document's items at most.
const MAX_VALIDATION_THREADS: usize = 4;

/// The streaming validation of `bytes` whatever their size, on `workers` threads (`None` when it does not
/// apply): for the fuzz target that checks it says what [`validate_whole`] says (fuzz/fuzz_targets/sbom_validate.rs;
/// `cargo fuzz` builds with `--cfg fuzzing`, other builds do not have this function).
#[cfg(fuzzing)]
#[doc(hidden)]
pub fn validate_streaming_for_fuzzing(
    bytes: &[u8],
    workers: usize,
) -> Option<Result<Validated<'_>, SbomError>> {
    validate_streaming_on(bytes, workers)
}

/// [`validate_streaming`] with the items checked on `workers` threads.
fn validate_streaming_on(bytes: &[u8], workers: usize) -> Option<Result<Validated<'_>, SbomError>> {
    if bytes.len() as u64 > MAX_SBOM_BYTES {
        return None;
    }
    // The schema's plan (compiled once per process, about 13 ms for CycloneDX 1.6) is made while the document
    // is checked to be UTF-8 (about 7 ms for 50 MB), from the version its first bytes name; `stream_plan` below
    // waits for it. A wrong guess only compiles a plan that is not used.
    std::thread::scope(|scope| {
        if let Some(schema) = schema_named_early(bytes) {
            scope.spawn(move || stream_plan(schema).is_some());
        }
        validate_streaming_checked(bytes, workers)
    })
}

/// The schema whose plan is not compiled yet that the first 64 KiB of a UTF-8 CycloneDX document name.
fn schema_named_early(bytes: &[u8]) -> Option<&'static Schema> {
    let head = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let head = &head[..head.len().min(64 * 1024)];
    let head = match std::str::from_utf8(head) {
        Ok(text) => text,
        // Cut inside a character, or not UTF-8 (then the probe finds nothing to go on).
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
    };
    let (format, _, schema) = detect_value(&Value::Object(version_fields(head)?)).ok()?;
    (format == Format::CycloneDx && schema.plan.get().is_none()).then_some(schema)
}

fn validate_streaming_checked(
    bytes: &[u8],
    workers: usize,
) -> Option<Result<Validated<'_>, SbomError>> {
    let utf8 = to_utf8(bytes).ok()?;
    let text = std::str::from_utf8(&utf8).ok()?;
    let (format, version, schema) = detect_value(&Value::Object(version_fields(text)?)).ok()?;
    if format != Format::CycloneDx {
        return None;
    }
    let plan = stream_plan(schema)?;
    let mut found = stream::Found {
        keep: MAX_REPORTED_VIOLATIONS,
        ..stream::Found::default()
    };
    let rest = match stream::stream(text, plan, &mut found, workers) {
        Ok(rest) => rest,
        // A duplicate key is refused here, without parsing the document again.
        Err(e @ json::StrictJsonError::DuplicateKey(_)) => return Some(Err(strict_json_error(e))),
        Err(json::StrictJsonError::Json(_)) => return None,
    };
    found.add_errors(plan.rest.iter_errors(&Value::Object(rest)), "", "");
    Some(if found.total > 0 {
        Err(SbomError::Invalid {
            format,
            version,
            schema: schema.version,
            violations: Violations {
                first: found.violations,
                total: found.total,
            },
        })
    } else {
        Ok(Validated {
            format,
            version,
            schema: schema.version,
            utf8,
        })
    })
}

/// The fields of a document's top-level object that say which format and version it is in (`bomFormat`,
/// `specVersion`, `spdxVersion`), read without building anything else and stopping once a CycloneDX document's
/// two are seen (they usually come first); `None` if the text is not a JSON object or has one of them twice
/// before that (the whole validation then says what is wrong).
fn version_fields(text: &str) -> Option<serde_json::Map<String, Value>> {
    struct Probe<'a>(&'a mut serde_json::Map<String, Value>);
    impl<'de> serde::de::Visitor<'de> for Probe<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if !matches!(&*key, "bomFormat" | "specVersion" | "spdxVersion") {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
                if self.0.contains_key(&*key) {
                    return Err(serde::de::Error::custom("a version field twice"));
                }
                self.0.insert(key.into_owned(), map.next_value::<Value>()?);
                if both(self.0) {
                    // Enough: the rest is read by the validation itself (this error only stops the reading).
                    return Err(serde::de::Error::custom("stopped early"));
                }
            }
            Ok(())
        }
    }
    fn both(fields: &serde_json::Map<String, Value>) -> bool {
        fields.contains_key("bomFormat") && fields.contains_key("specVersion")
    }
    let mut fields = serde_json::Map::new();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let read = serde::Deserializer::deserialize_map(&mut deserializer, Probe(&mut fields))
        .and_then(|()| deserializer.end());
    match read {
        Ok(()) => Some(fields),
        Err(_) if both(&fields) => Some(fields),
        Err(_) => None,
    }
}

/// The format and version of a document, without validating it against the schema.
pub fn detect(bytes: &[u8]) -> Result<(Format, String), SbomError> {
    let (_, doc) = parse_document(bytes)?;
    detect_value(&doc).map(|(format, version, _)| (format, version))
}

/// `bytes` within the size cap, as UTF-8 (transcoded from UTF-16 if need be) and parsed as JSON.
fn parse_document(bytes: &[u8]) -> Result<(Cow<'_, [u8]>, Value), SbomError> {
    if bytes.len() as u64 > MAX_SBOM_BYTES {
        return Err(SbomError::TooLarge {
            len: bytes.len() as u64,
            max: MAX_SBOM_BYTES,
        });
    }
    let utf8 = to_utf8(bytes)?;
    let doc = json::parse_without_duplicates(&utf8).map_err(strict_json_error)?;
    Ok((utf8, doc))
}

/// The [`SbomError`] of a strict JSON parser's error.
fn strict_json_error(e: json::StrictJsonError) -> SbomError {
    match e {
        json::StrictJsonError::DuplicateKey(d) => SbomError::DuplicateKey {
            key: d.key,
            pointer: d.pointer,
            line: d.line,
            column: d.column,
        },
        json::StrictJsonError::Json(e) => SbomError::NotJson {
            reason: parser_reason(&e),
            line: e.line(),
            column: e.column(),
        },
    }
}

/// serde_json's message without its own " at line L column C" suffix (the error carries both).
fn parser_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn shorten(message: &str) -> String {
    // The validator's messages quote the document (property names, values): printable, so that a control
    // character in it cannot reach a terminal raw (found by the sbom_validate fuzz target).
    kibaship_printable::printable(message, MAX_MESSAGE_CHARS + 1)
}

/// An embedded schema.
struct Schema {
    /// Its version (`1.6`, `2.3`).
    version: &'static str,
    /// What it is called in errors.
    name: &'static str,
    /// Its text.
    text: &'static str,
    /// Whether it references CycloneDX's shared schemas.
    cyclonedx: bool,
    /// Compiled once, on first use.
    compiled: &'static OnceLock<Result<jsonschema::Validator, String>>,
    /// Its streaming plan (CycloneDX), compiled once on first use; `None` when it has none.
    plan: &'static OnceLock<Option<stream::StreamPlan>>,
}

macro_rules! schema {
    ($version:literal, $name:literal, $file:literal, $cyclonedx:literal) => {{
        static COMPILED: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
        static PLAN: OnceLock<Option<stream::StreamPlan>> = OnceLock::new();
        Schema {
            version: $version,
            name: $name,
            text: include_str!(concat!("../schemas/", $file)),
            cyclonedx: $cyclonedx,
            compiled: &COMPILED,
            plan: &PLAN,
        }
    }};
}

static CYCLONEDX_1_4: Schema = schema!("1.4", "CycloneDX 1.4", "bom-1.4.schema.json", true);
static CYCLONEDX_1_5: Schema = schema!("1.5", "CycloneDX 1.5", "bom-1.5.schema.json", true);
static CYCLONEDX_1_6: Schema = schema!("1.6", "CycloneDX 1.6", "bom-1.6.schema.json", true);
static CYCLONEDX_1_7: Schema = schema!("1.7", "CycloneDX 1.7", "bom-1.7.schema.json", true);
static SPDX_2_2: Schema = schema!("2.2", "SPDX 2.2", "spdx-2.2.schema.json", false);
static SPDX_2_3: Schema = schema!("2.3", "SPDX 2.3", "spdx-2.3.schema.json", false);

/// CycloneDX's shared schemas, under the URIs its `bom-*.schema.json` reference them by.
const CYCLONEDX_SHARED: [(&str, &str); 3] = [
    (
        "http://cyclonedx.org/schema/spdx.schema.json",
        include_str!("../schemas/spdx.schema.json"),
    ),
    (
        "http://cyclonedx.org/schema/jsf-0.82.schema.json",
        include_str!("../schemas/jsf-0.82.schema.json"),
    ),
    (
        "http://cyclonedx.org/schema/cryptography-defs.schema.json",
        include_str!("../schemas/cryptography-defs.schema.json"),
    ),
];

fn compiled(schema: &'static Schema) -> Result<&'static jsonschema::Validator, SbomError> {
    schema
        .compiled
        .get_or_init(|| compile(schema))
        .as_ref()
        .map_err(|e| SbomError::Schema(schema.name, e.clone()))
}

fn parse_schema(text: &str) -> Result<Value, String> {
    serde_json::from_str::<Value>(text).map_err(|e| e.to_string())
}

/// Builds a validator for `target` with `schema`'s shared schemas (CycloneDX's) and `extra` resolvable by URI.
fn build(
    schema: &Schema,
    extra: Vec<(&str, Value)>,
    target: &Value,
) -> Result<jsonschema::Validator, String> {
    let mut resources = extra;
    if schema.cyclonedx {
        for (uri, text) in CYCLONEDX_SHARED {
            resources.push((uri, parse_schema(text)?));
        }
    }
    let registry = jsonschema::Registry::new()
        .extend(resources)
        .and_then(|b| b.prepare())
        .map_err(|e| e.to_string())?;
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .offline()
        .with_registry(&registry)
        .build(target)
        .map_err(|e| e.to_string())
}

fn compile(schema: &Schema) -> Result<jsonschema::Validator, String> {
    build(schema, Vec::new(), &parse_schema(schema.text)?)
}

/// `schema`'s streaming plan: its `components` and `dependencies` (when it has them as plain arrays of one
/// `$ref`) validated item by item, and the rest; `None` when it has none or it does not compile.
fn stream_plan(schema: &'static Schema) -> Option<&'static stream::StreamPlan> {
    schema
        .plan
        .get_or_init(|| {
            let root = parse_schema(schema.text).ok()?;
            let id = root.get("$id").and_then(Value::as_str)?.to_string();
            let streamable = stream::streamable(&root, &["components", "dependencies"]);
            if streamable.is_empty() {
                return None;
            }
            let mut arrays = Vec::new();
            for (key, reference, unique) in streamable {
                let target = serde_json::json!({ "$ref": reference });
                let items = build(schema, vec![(id.as_str(), root.clone())], &target).ok()?;
                arrays.push(stream::StreamedArray { key, items, unique });
            }
            let keys: Vec<String> = arrays.iter().map(|a| a.key.clone()).collect();
            let rest = build(schema, Vec::new(), &stream::without(&root, &keys)).ok()?;
            Some(stream::StreamPlan { arrays, rest })
        })
        .as_ref()
}

/// The format, version and schema of a parsed document.
fn detect_value(doc: &Value) -> Result<(Format, String, &'static Schema), SbomError> {
    let Value::Object(map) = doc else {
        return Err(SbomError::NotAnObject(json_kind(doc)));
    };
    let as_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    // CycloneDX: `bomFormat` and `specVersion` (a wrong `bomFormat` is then the schema's to report).
    if map.get("bomFormat").is_some_and(|f| f == "CycloneDX")
        || (map.contains_key("bomFormat") && map.contains_key("specVersion"))
    {
        let Some(version) = map.get("specVersion") else {
            return Err(SbomError::UnsupportedVersion {
                format: Format::CycloneDx,
                found: "(none)".into(),
                field: "/specVersion",
                supported: &CYCLONEDX_VERSIONS,
            });
        };
        let schema = match version.as_str() {
            Some("1.4") => &CYCLONEDX_1_4,
            Some("1.5") => &CYCLONEDX_1_5,
            Some("1.6") => &CYCLONEDX_1_6,
            Some("1.7") => &CYCLONEDX_1_7,
            _ => {
                return Err(SbomError::UnsupportedVersion {
                    format: Format::CycloneDx,
                    found: kibaship_printable::printable(&as_text(version), MAX_VERSION_CHARS),
                    field: "/specVersion",
                    supported: &CYCLONEDX_VERSIONS,
                });
            }
        };
        return Ok((Format::CycloneDx, as_text(version), schema));
    }
    if let Some(version) = map.get("spdxVersion") {
        return match version.as_str() {
            Some("SPDX-2.2") => Ok((Format::Spdx, "SPDX-2.2".into(), &SPDX_2_2)),
            Some("SPDX-2.3") => Ok((Format::Spdx, "SPDX-2.3".into(), &SPDX_2_3)),
            _ => Err(SbomError::UnsupportedVersion {
                format: Format::Spdx,
                found: kibaship_printable::printable(&as_text(version), MAX_VERSION_CHARS),
                field: "/spdxVersion",
                supported: &SPDX_VERSIONS,
            }),
        };
    }
    // SPDX 3 is JSON-LD: an `@context` naming spdx.org.
    if map
        .get("@context")
        .is_some_and(|c| c.to_string().contains("spdx.org/rdf/3"))
    {
        return Err(SbomError::UnsupportedVersion {
            format: Format::Spdx,
            found: "3 (JSON-LD)".into(),
            field: "/@context",
            supported: &SPDX_VERSIONS,
        });
    }
    Err(SbomError::UnknownFormat)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The document as UTF-8 without a byte-order mark. UTF-16 is recognised by its byte-order mark, or without
/// one by the zero bytes of an ASCII first character (RFC 4627 §3); UTF-32 is refused.
fn to_utf8(bytes: &[u8]) -> Result<Cow<'_, [u8]>, SbomError> {
    if bytes.starts_with(&[0, 0, 0xFE, 0xFF]) || bytes.starts_with(&[0xFF, 0xFE, 0, 0]) {
        return Err(SbomError::Encoding(
            "UTF-32 is not accepted; give UTF-8".into(),
        ));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return Ok(Cow::Borrowed(rest));
    }
    let utf16 = match bytes {
        [0xFF, 0xFE, rest @ ..] => Some((rest, false)),
        [0xFE, 0xFF, rest @ ..] => Some((rest, true)),
        [a, 0, b, 0, ..] if *a != 0 && *b != 0 => Some((bytes, false)),
        [0, a, 0, b, ..] if *a != 0 && *b != 0 => Some((bytes, true)),
        _ => None,
    };
    let Some((data, big_endian)) = utf16 else {
        return Ok(Cow::Borrowed(bytes));
    };
    if data.len() % 2 != 0 {
        return Err(SbomError::Encoding(format!(
            "UTF-16 text of an odd number of bytes ({})",
            data.len()
        )));
    }
    let units = data.chunks_exact(2).map(|c| {
        if big_endian {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_le_bytes([c[0], c[1]])
        }
    });
    let mut text = String::with_capacity(data.len() / 2);
    for (n, c) in char::decode_utf16(units).enumerate() {
        match c {
            Ok(c) => text.push(c),
            Err(e) => {
                return Err(SbomError::Encoding(format!(
                    "invalid UTF-16 at byte {}: unpaired surrogate {:#06x}",
                    n * 2,
                    e.unpaired_surrogate()
                )));
            }
        }
    }
    Ok(Cow::Owned(text.into_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spdx_with_purpose(purpose: &str) -> String {
        serde_json::json!({
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": "image",
            "documentNamespace": "https://kibaship.invalid/spdx/image",
            "creationInfo": { "created": "2026-12-06T00:00:00Z", "creators": ["Tool: trivy-0.74.0"] },
            "packages": [{
                "name": "debian",
                "SPDXID": "SPDXRef-OperatingSystem",
                "downloadLocation": "NONE",
                "primaryPackagePurpose": purpose,
            }],
        })
        .to_string()
    }

    /// trivy (through BuildKit's SBOM scanner protocol) writes the SPDX 2.3 specification text's spelling; the
    /// schema's spelling is accepted too, and anything else is still refused at the field.
    #[test]
    fn spdx_operating_system_purpose_in_either_spelling() {
        for purpose in ["OPERATING-SYSTEM", "OPERATING_SYSTEM", "LIBRARY"] {
            let doc = spdx_with_purpose(purpose);
            let validated = validate(doc.as_bytes()).unwrap_or_else(|e| panic!("{purpose}: {e}"));
            assert_eq!(validated.format, Format::Spdx);
        }
        let doc = spdx_with_purpose("OPERATING SYSTEM");
        let err = validate(doc.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("/packages/0/primaryPackagePurpose"), "{err}");
    }

    /// A violation's message quotes the document printable: a DEL in a property name (the sbom_validate fuzz
    /// target's finding), ESC and C1 in a value. These documents are validated whole; the streaming path
    /// builds its messages with the same `shorten` (the fuzz target compares the two).
    #[test]
    fn violations_quote_the_document_printable() {
        let doc = "{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\",\"version\":1,\"c\\u007fomponents\":[]}";
        let err = validate(doc.as_bytes()).unwrap_err();
        let text = err.to_string();
        assert!(kibaship_printable::is_printable(&text), "{text:?}");
        assert!(
            text.contains("'c\\u{7f}omponents' was unexpected"),
            "{text}"
        );
        let doc = "{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\",\"version\":1,\
                   \"components\":[{\"type\":\"\\u001b[2J\\u009b\",\"name\":\"x\"}]}";
        let err = validate(doc.as_bytes()).unwrap_err();
        let text = err.to_string();
        assert!(kibaship_printable::is_printable(&text), "{text:?}");
        assert!(text.contains("/components/0/type"), "{text}");
    }

    #[test]
    fn every_embedded_schema_compiles() {
        for schema in [
            &CYCLONEDX_1_4,
            &CYCLONEDX_1_5,
            &CYCLONEDX_1_6,
            &CYCLONEDX_1_7,
            &SPDX_2_2,
            &SPDX_2_3,
        ] {
            compiled(schema).unwrap();
        }
    }

    #[test]
    fn media_and_predicate_types_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::from_media_type(f.media_type()), Some(f));
            assert_eq!(Format::from_predicate_type(f.predicate_type()), Some(f));
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert_eq!(
            Format::from_media_type("application/vnd.cyclonedx+json; version=1.6"),
            Some(Format::CycloneDx)
        );
        assert_eq!(
            Format::from_predicate_type("https://spdx.dev/Document/v2.3"),
            Some(Format::Spdx)
        );
        assert_eq!(
            Format::from_predicate_type("https://spdx.dev/Documents"),
            None
        );
        assert_eq!(Format::from_media_type("application/json"), None);
        assert_eq!(Format::CycloneDx.cosign_type_name(), "cyclonedx");
        assert_eq!(Format::Spdx.cosign_type_name(), "spdxjson");
    }

    #[test]
    fn utf16_with_and_without_bom_is_transcoded() {
        let text = "{\"a\":\"é\"}";
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for input in [
            [vec![0xFF, 0xFE], le.clone()].concat(),
            [vec![0xFE, 0xFF], be.clone()].concat(),
            le,
            be,
        ] {
            assert_eq!(to_utf8(&input).unwrap().as_ref(), text.as_bytes());
        }
        assert!(matches!(
            to_utf8(&[0xFF, 0xFE, 0x7B]),
            Err(SbomError::Encoding(_))
        ));
        assert!(matches!(
            to_utf8(&[0xFF, 0xFE, 0x00, 0xD8, 0x7B, 0x00]),
            Err(SbomError::Encoding(_))
        ));
        assert_eq!(
            to_utf8(b"\xEF\xBB\xBF{}").unwrap().as_ref(),
            b"{}".as_slice()
        );
    }

    #[test]
    fn bad_input_names_what_is_wrong() {
        let e = validate(b"{\"a\": ").unwrap_err();
        assert!(matches!(e, SbomError::NotJson { line: 1, .. }), "{e:?}");
        assert_eq!(
            validate(b"[1]").unwrap_err(),
            SbomError::NotAnObject("an array")
        );
        assert_eq!(
            validate(b"{\"name\": \"x\"}").unwrap_err(),
            SbomError::UnknownFormat
        );
        let e =
            validate(br#"{"bomFormat":"CycloneDX","specVersion":"1.3","version":1}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "CycloneDX version 1.3 is not supported (field /specVersion): supported are 1.4, 1.5, 1.6, 1.7"
        );
        // A version with control characters is quoted printable.
        let e = validate(b"{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\\u001b[2J\"}")
            .unwrap_err();
        assert!(
            matches!(&e, SbomError::UnsupportedVersion { found, .. } if found == "1.6\\u{1b}[2J"),
            "{e:?}"
        );
        let e = validate(br#"{"bomFormat":"CycloneDX","specVersion":1.6}"#).unwrap_err();
        assert!(
            matches!(&e, SbomError::UnsupportedVersion { found, .. } if found == "1.6"),
            "{e:?}"
        );
        let e = validate(br#"{"spdxVersion":"SPDX-2.1"}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("SPDX version SPDX-2.1 is not supported"),
            "{e}"
        );
        let e = validate(br#"{"@context":"https://spdx.org/rdf/3.0.1/spdx-context.jsonld"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("3 (JSON-LD)"), "{e}");
    }

    #[test]
    fn schema_violations_name_the_pointer_and_the_rule() {
        let doc = br#"{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,
            "metadata":{"timestamp":"yesterday"},"components":[{"name":"x"}]}"#;
        let e = validate(doc).unwrap_err();
        let SbomError::Invalid {
            format, violations, ..
        } = &e
        else {
            panic!("{e:?}");
        };
        assert_eq!(*format, Format::CycloneDx);
        let pointers: Vec<&str> = violations
            .first
            .iter()
            .map(|v| v.pointer.as_str())
            .collect();
        assert!(pointers.contains(&"/metadata/timestamp"), "{e}");
        assert!(pointers.contains(&"/components/0"), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("at /metadata/timestamp: \"yesterday\" is not a \"date-time\""),
            "{text}"
        );
        assert!(text.contains("schema rule "), "{text}");
    }

    #[test]
    fn violations_are_capped() {
        let components: Vec<String> = (0..50).map(|_| "{\"name\":\"x\"}".to_string()).collect();
        let doc = format!(
            r#"{{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{}]}}"#,
            components.join(",")
        );
        let SbomError::Invalid { violations, .. } = validate(doc.as_bytes()).unwrap_err() else {
            panic!()
        };
        assert_eq!(violations.first.len(), MAX_REPORTED_VIOLATIONS);
        assert!(violations.total >= 50);
        assert!(violations.to_string().contains("more"));
    }
}

#[cfg(test)]
mod streaming_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    /// A CycloneDX document of `version` larger than the streaming threshold; `edit` changes it first.
    fn big_bom(version: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        let components: Vec<Value> = (0..12_000)
            .map(|n| {
                json!({
                    "type": "library",
                    "bom-ref": format!("pkg:npm/p{n}@1.0.{n}"),
                    "name": format!("p{n}"),
                    "version": format!("1.0.{n}"),
                    "purl": format!("pkg:npm/p{n}@1.0.{n}"),
                    "description": "x".repeat(300),
                    "hashes": [{"alg": "SHA-256", "content": format!("{n:064x}")}],
                })
            })
            .collect();
        let dependencies: Vec<Value> = (0..2_000)
            .map(|n| json!({"ref": format!("pkg:npm/p{n}@1.0.{n}"), "dependsOn": [format!("pkg:npm/p{}@1.0.{}", n + 1, n + 1)]}))
            .collect();
        let mut doc = json!({
            "bomFormat": "CycloneDX",
            "specVersion": version,
            "version": 1,
            "metadata": {"timestamp": "2026-12-05T00:00:00Z"},
            "components": components,
            "dependencies": dependencies,
        });
        edit(&mut doc);
        let bytes = serde_json::to_vec(&doc).unwrap();
        assert!(bytes.len() >= STREAMING_THRESHOLD_BYTES, "{}", bytes.len());
        bytes
    }

    /// Streaming applies and says what the whole-document validation says: valid or not, the same number of
    /// violations, at the same pointers and rules (compared as sets: the order may differ). On one thread and
    /// on three, streaming says exactly the same (the same violations in the same order).
    fn agree(bytes: &[u8]) -> Result<(), Violations> {
        let streamed = validate_streaming_on(bytes, 1).expect("streaming applies to this document");
        let on_three = validate_streaming_on(bytes, 3).expect("streaming applies to this document");
        match (&streamed, &on_three) {
            (Ok(_), Ok(_)) => {}
            (
                Err(SbomError::Invalid { violations: a, .. }),
                Err(SbomError::Invalid { violations: b, .. }),
            ) => assert_eq!(a, b, "one thread, three threads"),
            (a, b) => panic!("one thread {a:?}, three threads {b:?}"),
        }
        let whole = validate_whole(bytes);
        let key = |v: &Violations| {
            let mut k: Vec<(String, String)> = v
                .first
                .iter()
                .map(|x| (x.pointer.clone(), x.rule.clone()))
                .collect();
            k.sort();
            (k, v.total)
        };
        match (streamed, whole) {
            (Ok(a), Ok(b)) => {
                assert_eq!(
                    (a.format, &a.version, a.schema),
                    (b.format, &b.version, b.schema)
                );
                Ok(())
            }
            (
                Err(SbomError::Invalid { violations: a, .. }),
                Err(SbomError::Invalid { violations: b, .. }),
            ) => {
                assert_eq!(key(&a), key(&b), "streamed {a:?} whole {b:?}");
                Err(a)
            }
            (a, b) => panic!("streamed {a:?}, whole {b:?}"),
        }
    }

    /// [`big_bom`] unchanged, for other test modules.
    pub(super) fn big_bom_for_tests(version: &str) -> Vec<u8> {
        big_bom(version, |_| {})
    }

    #[test]
    fn valid_large_documents_stream_and_pass_in_every_version() {
        for version in CYCLONEDX_VERSIONS {
            assert!(agree(&big_bom(version, |_| {})).is_ok(), "{version}");
        }
    }

    #[test]
    fn violations_inside_streamed_items_are_named_as_the_whole_validation_names_them() {
        let bytes = big_bom("1.6", |doc| {
            doc["components"][1234]["type"] = json!("not-a-type");
            doc["components"][7000]["hashes"][0]["content"] = json!("zz");
            doc["dependencies"][42]["ref"] = json!(7);
            doc["metadata"]["timestamp"] = json!("yesterday");
        });
        let violations = agree(&bytes).unwrap_err();
        let pointers: Vec<&str> = violations
            .first
            .iter()
            .map(|v| v.pointer.as_str())
            .collect();
        for wanted in [
            "/components/1234/type",
            "/components/7000/hashes/0/content",
            "/dependencies/42/ref",
            "/metadata/timestamp",
        ] {
            assert!(pointers.contains(&wanted), "{wanted} not in {pointers:?}");
        }
    }

    #[test]
    fn violations_past_the_count_limit_are_counted_and_the_first_listed_in_document_order() {
        let bytes = big_bom("1.6", |doc| {
            for n in (100..11_000).step_by(7) {
                doc["components"][n]["type"] = json!("not-a-type");
            }
        });
        let violations = agree(&bytes).unwrap_err();
        assert_eq!(violations.total, MAX_COUNTED_VIOLATIONS);
        assert_eq!(violations.count(), "1000+ violations");
        let pointers: Vec<&str> = violations
            .first
            .iter()
            .map(|v| v.pointer.as_str())
            .collect();
        assert_eq!(
            pointers,
            [
                "/components/100/type",
                "/components/107/type",
                "/components/114/type",
                "/components/121/type",
                "/components/128/type",
            ]
        );
    }

    #[test]
    fn the_version_fields_are_found_wherever_they_are_in_the_document() {
        // serde_json writes keys sorted: `specVersion` after the components (the first reading then goes
        // through the whole document), and moved to the front, where generators write it.
        let after = String::from_utf8(big_bom("1.5", |_| {})).unwrap();
        let after_at = after.find(r#""specVersion":"1.5""#).unwrap();
        assert!(after.find(r#""components":["#).unwrap() < after_at);
        let first = after.replacen(r#""specVersion":"1.5","#, "", 1).replacen(
            r#"{"bomFormat":"CycloneDX","#,
            r#"{"bomFormat":"CycloneDX","specVersion":"1.5","#,
            1,
        );
        assert!(
            first.starts_with(r#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":["#)
        );
        for doc in [after, first] {
            assert!(agree(doc.as_bytes()).is_ok());
            let found = validate(doc.as_bytes()).unwrap();
            assert_eq!(
                (found.format, found.version.as_str()),
                (Format::CycloneDx, "1.5")
            );
        }
        // A version field twice before both are seen: streaming does not apply; the whole validation refuses it.
        let twice = String::from_utf8(big_bom("1.6", |_| {})).unwrap().replacen(
            r#""bomFormat":"CycloneDX","#,
            r#""bomFormat":"CycloneDX","bomFormat":"x","#,
            1,
        );
        assert!(validate_streaming(twice.as_bytes()).is_none());
        assert!(matches!(
            validate(twice.as_bytes()),
            Err(SbomError::DuplicateKey { .. })
        ));
    }

    #[test]
    fn a_repeated_component_is_not_unique_whether_its_numbers_are_written_1_or_1_0() {
        let bytes = big_bom("1.6", |doc| {
            let copy = doc["components"][10].clone();
            doc["components"].as_array_mut().unwrap().push(copy);
        });
        let violations = agree(&bytes).unwrap_err();
        assert_eq!(violations.first[0].pointer, "/components");
        assert!(
            violations.first[0].rule.ends_with("uniqueItems"),
            "{violations:?}"
        );
        // `1` and `1.0` are the same value to uniqueItems: the items' fingerprints say so too.
        let a: Value = serde_json::from_str(r#"{"x": 1, "y": [2]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"y": [2.0], "x": 1.0}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"y": [2.5], "x": 1}"#).unwrap();
        assert_eq!(
            stream::fingerprint_for_tests(&a),
            stream::fingerprint_for_tests(&b)
        );
        assert_ne!(
            stream::fingerprint_for_tests(&a),
            stream::fingerprint_for_tests(&c)
        );
    }

    #[test]
    fn items_whose_hashes_collide_are_compared_by_value() {
        // Every item given the same hash, as if they collided: only an item of the same value repeats one.
        let text = r#"[{"a": 1}, {"b": 2}, {"a": 1.0}, {"b": 2.0, "c": []}, {"c": [], "b": 2}]"#;
        let spans: Vec<(usize, usize)> = text
            .match_indices('{')
            .map(|(at, _)| (at, text[at..].find('}').unwrap() + 1))
            .collect();
        assert_eq!(spans.len(), 5);
        let mut seen = stream::UniqueItems::with_capacity(text, spans.len());
        let repeats: Vec<bool> = spans
            .iter()
            .map(|&(at, len)| seen.repeats(&stream::fingerprint_at_for_tests(7, at, len)))
            .collect();
        assert_eq!(repeats, [false, false, true, false, true]);
        seen.clear();
        assert!(!seen.repeats(&stream::fingerprint_at_for_tests(7, spans[0].0, spans[0].1)));
        assert!(stream::json_equal(
            &json!({"x": [1, {"y": 2.0}]}),
            &json!({"x": [1.0, {"y": 2}]})
        ));
        assert!(!stream::json_equal(&json!([1, 2]), &json!([2, 1])));
        assert!(!stream::json_equal(
            &json!({"x": 1}),
            &json!({"x": 1, "y": null})
        ));
        assert!(!stream::json_equal(&json!(1.5), &json!(1)));
    }

    #[test]
    fn what_streaming_does_not_cover_is_validated_whole() {
        // A streamed property that is not an array, SPDX, a small document: all take the whole path, and
        // validate() still refuses or accepts them as the whole validation does.
        let not_array = big_bom("1.6", |doc| {
            doc["dependencies"] = json!({"a": "x".repeat(1000)})
        });
        assert!(validate_streaming(&not_array).is_none());
        assert!(matches!(
            validate(&not_array),
            Err(SbomError::Invalid { .. })
        ));
        let small = br#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#;
        assert!(validate(small).is_ok());
    }
}

#[cfg(test)]
mod duplicate_key_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// `bytes` with the first `find` replaced by `with` (which must be there).
    fn edit(bytes: &[u8], find: &str, with: &str) -> Vec<u8> {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.contains(find), "{find} not in the document");
        text.replacen(find, with, 1).into_bytes()
    }

    fn duplicate(result: Result<Validated<'_>, SbomError>) -> (String, String, usize, usize) {
        match result {
            Err(SbomError::DuplicateKey {
                key,
                pointer,
                line,
                column,
            }) => (key, pointer, line, column),
            other => panic!("expected a duplicate key, got {other:?}"),
        }
    }

    /// The pointer is made of the document's keys: quoted printable in the messages, kept as it is in the
    /// field (the provenance_statement fuzz target's finding: a NUL and a tab in a key above the duplicate).
    #[test]
    fn the_pointer_of_a_duplicate_is_quoted_printable() {
        let doc = "{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\",\"a\\u0000\\t\\u001b[2J\":{\"x\":1,\"x\":2}}";
        let err = validate(doc.as_bytes()).unwrap_err();
        let text = err.to_string();
        assert!(kibaship_printable::is_printable(&text), "{text:?}");
        assert!(text.contains("/a\\u{0}\\u{9}\\u{1b}[2J/x"), "{text}");
        let (_, pointer, _, _) = duplicate(Err(err));
        assert_eq!(pointer, "/a\u{0}\t\u{1b}[2J/x");
        let strict = json::parse_without_duplicates(doc.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(kibaship_printable::is_printable(&strict), "{strict:?}");
    }

    /// The duplicated key itself is quoted printable and cut: a key of 10,000 characters with an escape in it
    /// gives a message of a few hundred, in the SBOM's error and in the strict reader's.
    #[test]
    fn a_long_duplicated_key_is_quoted_printable_and_cut() {
        let key = format!("\\u001b[31m{}", "k".repeat(10_000));
        let doc = format!(
            "{{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\",\"{key}\":1,\"{key}\":2}}"
        );
        let text = validate(doc.as_bytes()).unwrap_err().to_string();
        let strict = json::parse_without_duplicates(doc.as_bytes())
            .unwrap_err()
            .to_string();
        for message in [&text, &strict] {
            assert!(kibaship_printable::is_printable(message), "{message:?}");
            assert!(message.contains("key \"\\u{1b}[31mkkk"), "{message}");
            assert!(message.contains("kk…\""), "{message}");
            assert!(message.chars().count() < 1_000, "{message}");
        }
        let (shown, _, _, _) = duplicate(validate(doc.as_bytes()));
        assert_eq!(
            shown.chars().count(),
            10_005,
            "the field keeps the key whole"
        );
    }

    #[test]
    fn a_small_document_with_a_key_twice_is_refused_naming_it() {
        let top = "{\"bomFormat\":\"CycloneDX\",\n\"specVersion\":\"1.6\",\"specVersion\":\"1.3\"}";
        let (key, pointer, line, column) = duplicate(validate(top.as_bytes()));
        assert_eq!(
            (key.as_str(), pointer.as_str()),
            ("specVersion", "/specVersion")
        );
        assert_eq!((line, column), (2, 33));
        let message = validate(top.as_bytes()).unwrap_err().to_string();
        assert!(
            message.contains(
                "the SBOM has the key \"specVersion\" twice in one object (at JSON pointer /specVersion, line 2, column 33)"
            ),
            "{message}"
        );
        // Valid against the schema whichever value is kept: refused all the same.
        let nested = r#"{"bomFormat":"CycloneDX","specVersion":"1.6","components":[
            {"type":"library","name":"a"},{"type":"library","name":"left-pad","version":"1","name":"evil-pad"}]}"#;
        let (key, pointer, line, _) = duplicate(validate(nested.as_bytes()));
        assert_eq!(
            (key.as_str(), pointer.as_str(), line),
            ("name", "/components/1/name", 2)
        );
        assert!(matches!(
            detect(nested.as_bytes()),
            Err(SbomError::DuplicateKey { .. })
        ));
        let spdx = r#"{"spdxVersion":"SPDX-2.3","packages":[{"SPDXID":"a","externalRefs":[{"referenceLocator":"x","referenceLocator":"y"}]}]}"#;
        let (_, pointer, _, _) = duplicate(validate(spdx.as_bytes()));
        assert_eq!(pointer, "/packages/0/externalRefs/0/referenceLocator");
    }

    /// The large documents the streaming tests use, with a key twice: refused by the streaming validation
    /// itself (not by falling back to the whole one), naming the same key, pointer, line and column as the whole
    /// validation does.
    #[test]
    fn a_large_document_with_a_key_twice_is_refused_while_streaming() {
        let bytes = streaming_tests::big_bom_for_tests("1.6");
        let cases = [
            // Inside a streamed item.
            (
                edit(
                    &bytes,
                    r#""name":"p5000","#,
                    r#""name":"p5000","name":"evil","#,
                ),
                "/components/5000/name",
            ),
            // Nested deeper inside a streamed item.
            (
                edit(
                    &bytes,
                    r#"{"alg":"SHA-256","#,
                    r#"{"alg":"SHA-256","alg":"MD5","#,
                ),
                "/components/0/hashes/0/alg",
            ),
            // Inside a dependency (the second streamed array).
            (
                edit(&bytes, r#"{"dependsOn":"#, r#"{"ref":"x","dependsOn":"#),
                "/dependencies/0/ref",
            ),
            // At the top level, a property validated with the rest.
            (
                edit(&bytes, r#""version":1}"#, r#""version":1,"version":2}"#),
                "/version",
            ),
            // At the top level, a streamed array given twice.
            (
                edit(&bytes, r#""version":1}"#, r#""version":1,"components":[]}"#),
                "/components",
            ),
            // In the rest of the document.
            (
                edit(&bytes, r#""metadata":{"#, r#""metadata":{"timestamp":"x","#),
                "/metadata/timestamp",
            ),
        ];
        for (doc, wanted) in cases {
            let whole = duplicate(validate_whole(&doc));
            for workers in [1, 3] {
                let streamed =
                    duplicate(validate_streaming_on(&doc, workers).expect("streaming applies"));
                assert_eq!(streamed.1, wanted);
                assert_eq!(streamed, whole, "{wanted}, {workers} threads");
            }
            assert_eq!(whole, duplicate(validate(&doc)), "{wanted}");
        }
        assert!(validate(&bytes).is_ok());
    }

    /// Items are checked in batches on several threads, a later batch perhaps first: the duplicate reported is
    /// the first in the document, as the whole validation reports it.
    #[test]
    fn of_two_keys_twice_in_a_large_document_the_first_is_reported() {
        let bytes = streaming_tests::big_bom_for_tests("1.6");
        let early_and_late = edit(
            &edit(
                &bytes,
                r#""name":"p11000","#,
                r#""name":"p11000","name":"late","#,
            ),
            r#""name":"p30","#,
            r#""name":"p30","name":"early","#,
        );
        let in_item_and_after = edit(
            &edit(&bytes, r#""version":1}"#, r#""version":1,"version":2}"#),
            r#""name":"p11999","#,
            r#""name":"p11999","name":"x","#,
        );
        // Pretty-printed: the item starts lines before its duplicate key (the line is the document's, not the
        // item's).
        let pretty: Value = serde_json::from_slice(&bytes).unwrap();
        let pretty = edit(
            &serde_json::to_vec_pretty(&pretty).unwrap(),
            r#""name": "p7777","#,
            r#""name": "p7777", "name": "evil","#,
        );
        for (doc, wanted) in [
            (early_and_late, "/components/30/name"),
            (in_item_and_after, "/components/11999/name"),
            (pretty, "/components/7777/name"),
        ] {
            let whole = duplicate(validate_whole(&doc));
            assert_eq!(whole.1, wanted);
            if wanted.ends_with("/7777/name") {
                assert!(whole.2 > 1000, "{whole:?}");
            }
            for workers in [1, 2, 3] {
                let streamed =
                    duplicate(validate_streaming_on(&doc, workers).expect("streaming applies"));
                assert_eq!(streamed, whole, "{workers} threads");
            }
        }
    }
}
