//! Build secrets: the design's `secrets-hash` and secret-name validation.
//!
//! The hash reproduces, byte for byte, the design's shell recipe run over a mounted secrets directory:
//!
//! ```sh
//! ( for f in "$dir"/*; do n=$(basename "$f"); printf "%s=%s\n" "$n" "$(cat "$f")"; done ) \
//!   | LC_ALL=C sort | sha256sum | awk '{print $1}'
//! ```
//!
//! - `$(basename "$f")` strips trailing newlines from the name;
//! - the glob skips names starting with `.` (Kubernetes' `..data`, `..2024_…` entries of a projected volume);
//! - `$(cat f)` drops NUL bytes and strips every trailing newline;
//! - `sort` sorts *lines* bytewise, so a value with inner newlines contributes several lines, sorted on their own;
//! - the hashed text ends with `\n`; with no secrets (or no directory) the result is empty.
//!
//! Where the shell silently hashes an empty value (an entry that is a directory, a dangling symlink, an unreadable
//! file) we refuse with an error instead: a hash of secrets that were not read would hide a broken mount.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::failure::{Classify, FailureKind};

/// Largest secret value read (Kubernetes caps a whole Secret at 1 MiB).
pub const MAX_SECRET_BYTES: u64 = 1024 * 1024;

/// Errors reading a secrets directory. Messages name the entry, never its content.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot list secrets directory {path}: {source}")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret entry {path} cannot be read as a file: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret entry {path} is a directory, not a file")]
    IsDirectory { path: PathBuf },
    #[error("secret {path} is larger than {MAX_SECRET_BYTES} bytes")]
    TooLarge { path: PathBuf },
}

impl Classify for SecretsError {
    fn kind(&self) -> FailureKind {
        FailureKind::BadParameters
    }
}

/// The design's `secrets-hash` of `dir`: lower-case hex sha256, or `None` when there are no secrets.
pub fn secrets_hash(dir: &Path) -> Result<Option<String>, SecretsError> {
    let entries = visible_entries(dir)?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut text = Vec::new();
    for (name, path) in &entries {
        let value = read_like_command_substitution(path)?;
        // `n=$(basename "$f")`: the command substitution strips trailing newlines from the name too.
        let mut name = name.as_slice();
        while let Some(rest) = name.strip_suffix(b"\n") {
            name = rest;
        }
        text.extend_from_slice(name);
        text.push(b'=');
        text.extend_from_slice(&value);
        text.push(b'\n');
    }
    Ok(Some(hash_sorted_lines(&text)))
}

/// sha256 hex of `text` after sorting its lines bytewise (what `LC_ALL=C sort | sha256sum` does).
/// `text` must end with `\n` (every line is terminated).
fn hash_sorted_lines(text: &[u8]) -> String {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    lines.sort_unstable();
    let mut hasher = Sha256::new();
    for line in lines {
        hasher.update(line);
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

/// Entries of `dir` the shell glob `"$dir"/*` matches: names not starting with `.`.
/// A missing directory (an optional volume that is not mounted) has none.
fn visible_entries(dir: &Path) -> Result<Vec<(Vec<u8>, PathBuf)>, SecretsError> {
    let list_err = |source| SecretsError::List {
        path: dir.to_path_buf(),
        source,
    };
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(list_err(e)),
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let name = entry.file_name();
        let bytes = name.as_bytes();
        if bytes.first() == Some(&b'.') {
            continue;
        }
        out.push((bytes.to_vec(), entry.path()));
    }
    out.sort();
    Ok(out)
}

/// The bytes `"$(cat path)"` yields in dash: NUL bytes dropped, trailing newlines stripped.
fn read_like_command_substitution(path: &Path) -> Result<Vec<u8>, SecretsError> {
    let read_err = |source| SecretsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
        return Err(SecretsError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    let file = fs::File::open(path).map_err(read_err)?;
    let mut raw = Vec::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(read_err)?;
    if raw.len() as u64 > MAX_SECRET_BYTES {
        return Err(SecretsError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    raw.retain(|b| *b != 0);
    while raw.last() == Some(&b'\n') {
        raw.pop();
    }
    Ok(raw)
}

/// A build secret name: environment-variable syntax, as Railpack turns each secret into an env var.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(String);

/// A rejected secret name (the name itself is not secret and is shown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretNameError {
    #[error(
        "build secret name {0:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*, at most 253 characters)"
    )]
    Syntax(String),
    #[error(
        "build secret name {0:?} starts with RAILPACK_: railpack prepare would read it as its own configuration"
    )]
    RailpackReserved(String),
    #[error("build secret name {0:?} is listed twice")]
    Duplicate(String),
}

impl Classify for SecretNameError {
    fn kind(&self) -> FailureKind {
        FailureKind::BadParameters
    }
}

impl SecretName {
    /// Validates `name`.
    pub fn parse(name: &str) -> Result<SecretName, SecretNameError> {
        let mut chars = name.chars();
        let first_ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !first_ok || !rest_ok || name.len() > 253 {
            return Err(SecretNameError::Syntax(name.to_string()));
        }
        if name.starts_with("RAILPACK_") {
            return Err(SecretNameError::RailpackReserved(name.to_string()));
        }
        Ok(SecretName(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SecretName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates a `buildSecrets` list: every name valid, none twice. Keeps the given order.
pub fn parse_secret_names<S: AsRef<str>>(names: &[S]) -> Result<Vec<SecretName>, SecretNameError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let name = SecretName::parse(n.as_ref())?;
        if !seen.insert(name.clone()) {
            return Err(SecretNameError::Duplicate(name.0));
        }
        out.push(name);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_env_syntax() {
        for ok in ["NPM_TOKEN", "_x", "a1", "STRIPE_LIVE_KEY"] {
            assert!(SecretName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "é", "A.B", "$(x)"] {
            assert!(
                matches!(SecretName::parse(bad), Err(SecretNameError::Syntax(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            SecretName::parse("RAILPACK_BUILD_CMD"),
            Err(SecretNameError::RailpackReserved(_))
        ));
        assert_eq!(
            parse_secret_names(&["A", "B", "A"]),
            Err(SecretNameError::Duplicate("A".into()))
        );
    }

    #[test]
    fn sorted_lines_hash_matches_known_value() {
        // printf 'A=1\nB=2\n' | sha256sum
        let want = "beb5f2519a8d4a22ff19d6b4ba05806c75710dc1ad7e2ef37ee1d1a950d4b074";
        assert_eq!(hash_sorted_lines(b"B=2\nA=1\n"), want);
        assert_eq!(hash_sorted_lines(b"A=1\nB=2\n"), want);
    }
}
