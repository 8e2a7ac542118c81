//! The one error type of the harness.

use std::io;
use std::path::PathBuf;

/// Why the harness could not start, drive or stop a test component.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// A command-line tool the harness runs is not installed.
    #[error("required tool `{tool}` was not found ({hint})")]
    ToolMissing {
        /// The program name, e.g. `docker-registry`.
        tool: String,
        /// How to install it.
        hint: String,
    },
    /// A pinned Go-built peer is not available.
    #[error("peer `{name}` is not available: {reason}")]
    PeerUnavailable {
        /// The peer's name, e.g. `crane`.
        name: String,
        /// Why, and how to get it (e.g. "run `make peers`").
        reason: String,
    },
    /// A program could not be started at all.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// A program ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// A started server never answered.
    #[error(
        "{what} did not become ready at {url} within {waited_secs} s; its log {log} ends with:\n{log_tail}"
    )]
    NotReady {
        /// What was started.
        what: String,
        /// The URL polled.
        url: String,
        /// How long the harness waited.
        waited_secs: u64,
        /// The server's log file.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },
    /// A started server exited while the harness waited for it.
    #[error("{what} exited before it was ready ({status}); its log {log} ends with:\n{log_tail}")]
    Exited {
        /// What was started.
        what: String,
        /// Its exit status.
        status: String,
        /// The server's log file.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// An HTTP exchange with a test component failed or answered unexpectedly.
    #[error("{method} {url}: {reason}")]
    Http {
        /// The request method.
        method: String,
        /// The request URL.
        url: String,
        /// What went wrong (status and body excerpt, or the transport error).
        reason: String,
    },
    /// Generating certificates or keys failed.
    #[error("generating test certificates: {0}")]
    Certificates(String),
    /// TLS configuration failed.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// A fixture could not be built or pushed.
    #[error("fixture {fixture}: {reason}")]
    Fixture {
        /// Which fixture.
        fixture: String,
        /// What went wrong.
        reason: String,
    },
    /// A state directory written by `kibaship-harness registry start` is missing or unreadable.
    #[error("state directory {dir}: {reason}")]
    State {
        /// The directory.
        dir: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
}

impl HarnessError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        HarnessError::Io {
            what: what.into(),
            source,
        }
    }
}
