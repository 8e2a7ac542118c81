//! Tekton results: written once per step, within Tekton's size budget.
//!
//! Tekton passes a step's results to the controller through the container's termination message, which the
//! kubelet caps at 4096 bytes per container; the entrypoint stores them there as a JSON array of
//! `{"key":..,"value":..,"type":1}` objects beside its own entries (start time, exit code). [`ResultSet::write`]
//! checks the encoded size against [`TEKTON_RESULTS_BUDGET`] before writing anything, so a step never half-writes
//! its results and never lets Tekton truncate them.

use std::fs;
use std::path::{Path, PathBuf};

use crate::failure::{Classify, FailureKind};

/// Tekton's per-step termination-message limit.
pub const TEKTON_MESSAGE_LIMIT: usize = 4096;
/// Bytes kept free for the entrypoint's own entries (`StartedAt`, `ExitCode`, …).
pub const TEKTON_RESERVED: usize = 512;
/// What our results may take.
pub const TEKTON_RESULTS_BUDGET: usize = TEKTON_MESSAGE_LIMIT - TEKTON_RESERVED;

/// A result set that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error(
        "results need {needed} bytes encoded, over the {TEKTON_RESULTS_BUDGET}-byte budget of a Tekton step \
         (4096-byte termination message); largest: {largest}"
    )]
    TooLarge { needed: usize, largest: String },
    #[error("result {name} contains a newline or NUL byte")]
    BadValue { name: String },
    #[error("cannot write result {name} to {path}: {source}")]
    Write {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Classify for ResultsError {
    fn kind(&self) -> FailureKind {
        FailureKind::Results
    }
}

/// Named results and the files Tekton reads them from (`$(results.<name>.path)`).
#[derive(Debug, Default, Clone)]
pub struct ResultSet {
    entries: Vec<(String, PathBuf, String)>,
}

impl ResultSet {
    /// An empty set.
    pub fn new() -> ResultSet {
        ResultSet::default()
    }

    /// Adds a result. Results whose path is `None` (not requested) are skipped.
    pub fn add(&mut self, name: &str, path: Option<&Path>, value: impl Into<String>) -> &mut Self {
        if let Some(p) = path {
            self.entries
                .push((name.to_string(), p.to_path_buf(), value.into()));
        }
        self
    }

    /// Bytes the entrypoint's JSON encoding of these results takes.
    pub fn encoded_len(&self) -> usize {
        self.entries
            .iter()
            .map(|(k, _, v)| {
                let kv = serde_json::json!({"key": k, "value": v, "type": 1});
                kv.to_string().len() + 1 // comma / bracket
            })
            .sum::<usize>()
            + 1
    }

    /// Checks the budget, then writes every result file (value exactly, no trailing newline).
    pub fn write(&self) -> Result<(), ResultsError> {
        for (name, _, value) in &self.entries {
            if value.contains(['\n', '\0']) {
                return Err(ResultsError::BadValue { name: name.clone() });
            }
        }
        let needed = self.encoded_len();
        if needed > TEKTON_RESULTS_BUDGET {
            let largest = self
                .entries
                .iter()
                .max_by_key(|(_, _, v)| v.len())
                .map(|(k, _, v)| format!("{k} ({} bytes)", v.len()))
                .unwrap_or_default();
            return Err(ResultsError::TooLarge { needed, largest });
        }
        for (name, path, value) in &self.entries {
            fs::write(path, value.as_bytes()).map_err(|source| ResultsError::Write {
                name: name.clone(),
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// The (name, value) pairs, for printing.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(k, _, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_budget_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("image");
        let b = dir.path().join("digest");
        let mut set = ResultSet::new();
        set.add("image", Some(&a), "x".repeat(3000))
            .add("digest", Some(&b), "y".repeat(1000));
        let err = set.write().expect_err("over budget");
        assert!(err.to_string().contains("image (3000 bytes)"), "{err}");
        assert!(!a.exists() && !b.exists());
        assert_eq!(err.kind(), FailureKind::Results);
    }

    #[test]
    fn writes_values_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("digest");
        let mut set = ResultSet::new();
        set.add("digest", Some(&a), "sha256:ab")
            .add("unrequested", None, "zzz");
        set.write().expect("writes");
        assert_eq!(fs::read(&a).expect("read"), b"sha256:ab");
        assert_eq!(set.pairs().count(), 1);
        let mut bad = ResultSet::new();
        bad.add("x", Some(&a), "a\nb");
        assert!(matches!(bad.write(), Err(ResultsError::BadValue { .. })));
    }
}
