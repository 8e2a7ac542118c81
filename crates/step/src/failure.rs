//! Failure kinds of a step and the exit codes they map to.
//!
//! A Tekton step reports one integer, so each kind of failure gets its own exit code (sysexits-style), and the
//! message printed on stderr starts with the kind, e.g. `kibaship-step: registry or service error (retryable): ...`.

use std::fmt;

/// What went wrong, as far as the caller (the operator reading the TaskRun) needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A parameter, workspace path or secret name is invalid: fix the PipelineRun, do not retry.
    BadParameters,
    /// `railpack prepare` failed or produced an unusable plan: fix the app or its railpack config.
    Plan,
    /// `buildctl build` failed (compile error in the app, frontend error, push refused inside BuildKit).
    Build,
    /// Talking to the registry or a Sigstore service failed (network, 5xx, 429, auth): retrying may help.
    Registry,
    /// The results could not be written (Tekton's size budget, unwritable path).
    Results,
    /// Signing was refused: a service turned the request down (credentials, a rejected token) or the signature
    /// made did not verify against the trusted root, so nothing was uploaded. Retrying unchanged will not help.
    Refused,
}

impl FailureKind {
    /// The process exit code for this kind (values from `sysexits.h` where one fits).
    pub const fn exit_code(self) -> u8 {
        match self {
            FailureKind::BadParameters => 64, // EX_USAGE
            FailureKind::Plan => 65,          // EX_DATAERR
            FailureKind::Build => 70,         // EX_SOFTWARE
            FailureKind::Results => 73,       // EX_CANTCREAT
            FailureKind::Registry => 75,      // EX_TEMPFAIL
            FailureKind::Refused => 77,       // EX_NOPERM
        }
    }

    /// Whether running the step again unchanged may succeed.
    pub const fn retryable(self) -> bool {
        matches!(self, FailureKind::Registry)
    }

    /// All kinds, for documentation tables and tests.
    pub const ALL: [FailureKind; 6] = [
        FailureKind::BadParameters,
        FailureKind::Plan,
        FailureKind::Build,
        FailureKind::Registry,
        FailureKind::Results,
        FailureKind::Refused,
    ];
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            FailureKind::BadParameters => "bad parameters",
            FailureKind::Plan => "plan error",
            FailureKind::Build => "build error",
            FailureKind::Registry => "registry or service error (retryable)",
            FailureKind::Results => "results error",
            FailureKind::Refused => "signing refused",
        };
        f.write_str(s)
    }
}

/// Anything that can say which kind of failure it is.
pub trait Classify {
    /// The kind of this failure.
    fn kind(&self) -> FailureKind;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_not_generic() {
        let mut codes: Vec<u8> = FailureKind::ALL.iter().map(|k| k.exit_code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), FailureKind::ALL.len());
        // 0 is success, 1 and 2 are what panics and clap/anyhow use: none of ours may collide.
        assert!(codes.iter().all(|c| *c > 2));
        // Only failures talking to the registry or a Sigstore service may go away on a retry.
        let retryable: Vec<FailureKind> = FailureKind::ALL
            .into_iter()
            .filter(|k| k.retryable())
            .collect();
        assert_eq!(retryable, vec![FailureKind::Registry]);
        assert!(FailureKind::Registry.retryable());
        assert!(!FailureKind::Build.retryable());
    }
}
