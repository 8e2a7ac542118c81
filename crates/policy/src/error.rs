//! What is wrong with a policy file: every error names its place (origin, line, column), a stable code and the
//! field it is about.
use std::fmt;

/// Why a policy file was refused, as a stable kebab-case code ([`PolicyErrorCode::as_str`]). The codes are an
/// interface (scripts, the webhook's logs, `kibaverify policy check --output json`): new ones may be added, and
/// existing ones keep their spelling and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PolicyErrorCode {
    /// The text is not well-formed YAML (or holds more than one document).
    Syntax,
    /// The text, or what its aliases expand to, is larger or deeper than accepted.
    TooLarge,
    /// A mapping names the same key twice.
    DuplicateKey,
    /// A key the format does not know (a misspelling, or a field of another format).
    UnknownKey,
    /// A required field is absent.
    MissingField,
    /// A value of the wrong kind (a list where a string is expected, ...).
    WrongType,
    /// A value of the right kind that is not accepted (an unknown mode, an empty string, ...).
    BadValue,
    /// `apiVersion` names a version this build does not read.
    UnsupportedVersion,
    /// Fields that exclude each other are both given (`key` and `keyless`, `issuer` and `issuerRegExp`, ...).
    Conflict,
    /// A public key that is not a PEM `PUBLIC KEY` block of a supported algorithm.
    BadKey,
    /// A regular expression Go's `regexp` would refuse (or one without an equivalent here).
    BadRegex,
    /// A malformed image or namespace glob.
    BadGlob,
    /// A time that is not RFC 3339 with a time zone.
    BadTime,
    /// Two policies (or two authorities of one policy) share a name.
    DuplicateName,
    /// A policy without any authority: nothing could ever satisfy it.
    NoAuthority,
}

impl PolicyErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [PolicyErrorCode; 15] = [
        PolicyErrorCode::Syntax,
        PolicyErrorCode::TooLarge,
        PolicyErrorCode::DuplicateKey,
        PolicyErrorCode::UnknownKey,
        PolicyErrorCode::MissingField,
        PolicyErrorCode::WrongType,
        PolicyErrorCode::BadValue,
        PolicyErrorCode::UnsupportedVersion,
        PolicyErrorCode::Conflict,
        PolicyErrorCode::BadKey,
        PolicyErrorCode::BadRegex,
        PolicyErrorCode::BadGlob,
        PolicyErrorCode::BadTime,
        PolicyErrorCode::DuplicateName,
        PolicyErrorCode::NoAuthority,
    ];

    /// The stable kebab-case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyErrorCode::Syntax => "syntax",
            PolicyErrorCode::TooLarge => "too-large",
            PolicyErrorCode::DuplicateKey => "duplicate-key",
            PolicyErrorCode::UnknownKey => "unknown-key",
            PolicyErrorCode::MissingField => "missing-field",
            PolicyErrorCode::WrongType => "wrong-type",
            PolicyErrorCode::BadValue => "bad-value",
            PolicyErrorCode::UnsupportedVersion => "unsupported-version",
            PolicyErrorCode::Conflict => "conflict",
            PolicyErrorCode::BadKey => "bad-key",
            PolicyErrorCode::BadRegex => "bad-regex",
            PolicyErrorCode::BadGlob => "bad-glob",
            PolicyErrorCode::BadTime => "bad-time",
            PolicyErrorCode::DuplicateName => "duplicate-name",
            PolicyErrorCode::NoAuthority => "no-authority",
        }
    }

    /// The code spelled `s`, if there is one.
    pub fn from_name(s: &str) -> Option<PolicyErrorCode> {
        PolicyErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for PolicyErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for PolicyErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One thing wrong with a policy file. `Display`: `origin:line:column: code: message`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyError {
    /// The name the caller gave the text (a file path, `configmap/ns/name:key`).
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// Why, as a stable code.
    pub code: PolicyErrorCode,
    /// What is wrong, starting with the field it is about (`policies[0].authorities[1].key: ...`).
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.origin, self.line, self.column, self.code, self.message
        )
    }
}

impl std::error::Error for PolicyError {}

/// Everything wrong with a policy file, in document order. `Display`: one error per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl PolicyErrors {
    /// The errors.
    pub fn errors(&self) -> &[PolicyError] {
        &self.0
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (a parse that fails has at least one).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors' codes, in order.
    pub fn codes(&self) -> Vec<PolicyErrorCode> {
        self.0.iter().map(|e| e.code).collect()
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

impl IntoIterator for PolicyErrors {
    type Item = PolicyError;
    type IntoIter = std::vec::IntoIter<PolicyError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Longest message of a [`PolicyError`], in characters (the values it quotes are cut, not the file).
const MAX_MESSAGE_CHARS: usize = 2000;

/// Collects the errors of one parse.
#[derive(Debug)]
pub(crate) struct Diagnostics {
    origin: String,
    errors: Vec<PolicyError>,
}

impl Diagnostics {
    pub(crate) fn new(origin: &str) -> Self {
        Diagnostics {
            origin: origin.to_owned(),
            errors: Vec::new(),
        }
    }

    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    pub(crate) fn push(
        &mut self,
        (line, column): (usize, usize),
        code: PolicyErrorCode,
        message: String,
    ) {
        // Messages quote the file (keys, values, patterns): printable, so that `Display` stays one error per
        // line and no control character from a ConfigMap reaches a terminal raw (found by the policy_parse
        // fuzz target).
        self.errors.push(PolicyError {
            origin: self.origin.clone(),
            line,
            column,
            code,
            message: kibaship_printable::printable(&message, MAX_MESSAGE_CHARS),
        });
    }

    pub(crate) fn error_count(&self) -> usize {
        self.errors.len()
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The errors sorted by position (stable: errors at one place keep the order they were found in).
    pub(crate) fn finish(mut self) -> PolicyErrors {
        self.errors.sort_by_key(|e| (e.line, e.column));
        PolicyErrors(self.errors)
    }
}
