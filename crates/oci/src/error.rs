//! The client's error type. Every variant names the registry (and the reference where there is one); none
//! carries a password or token.
use crate::challenge::ChallengeError;
use crate::credentials::CredentialError;
use crate::reference::ReferenceError;

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reference could not be parsed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The registry has no such manifest, blob or repository.
    #[error("{what} {reference} not found: registry {registry} answered HTTP {status}{detail}")]
    NotFound {
        /// `manifest`, `blob`, `repository`.
        what: &'static str,
        /// The reference or digest asked for.
        reference: String,
        /// The registry.
        registry: String,
        /// The status (404, or 400/401 some registries send).
        status: u16,
        /// The registry's error code and message, if any.
        detail: String,
    },
    /// Authentication failed (after one fresh token or credential attempt).
    #[error("registry {registry} denied access to {reference}: HTTP {status}{detail}")]
    Unauthorized {
        /// The registry.
        registry: String,
        /// What was asked for.
        reference: String,
        /// 401 or 403.
        status: u16,
        /// Why, without secrets.
        detail: String,
    },
    /// Any other unexpected status.
    #[error("registry {registry} answered HTTP {status} to {method} {path}{detail}")]
    Status {
        /// The registry.
        registry: String,
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// The status.
        status: u16,
        /// The registry's error code and message, if any.
        detail: String,
    },
    /// Content does not hash to the digest it was asked for or announced with.
    #[error(
        "{what} from registry {registry} failed digest verification: expected {expected}, content hashes to {actual}"
    )]
    DigestMismatch {
        /// The registry.
        registry: String,
        /// What was fetched (`manifest host/repo:tag`).
        what: String,
        /// The digest expected.
        expected: String,
        /// The digest computed.
        actual: String,
    },
    /// A body larger than its limit.
    #[error("{what} from registry {registry} is larger than the limit of {limit} bytes{}", size.map(|s| format!(" ({s} bytes)")).unwrap_or_default())]
    TooLarge {
        /// The registry.
        registry: String,
        /// What was being read or written.
        what: String,
        /// The limit.
        limit: u64,
        /// The size announced, when known.
        size: Option<u64>,
    },
    /// A connection-level failure that was not retried.
    #[error("registry {registry}: {method} {path} failed: {cause}")]
    Transport {
        /// The registry.
        registry: String,
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// The cause chain.
        cause: String,
    },
    /// The registry's TLS certificate does not chain to a trusted CA. Not retried. The message names no flag:
    /// each front end says how to give the CA bundle ([`Error::is_untrusted_certificate`]).
    #[error("registry {registry}: {method} {path}: its TLS certificate is not trusted: {cause}")]
    UntrustedCertificate {
        /// The registry.
        registry: String,
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// The cause chain.
        cause: String,
    },
    /// Retries ran out (attempts or time).
    #[error(
        "registry {registry}: {method} {path} failed after {attempts} attempts in {elapsed_ms} ms; last cause: {last}"
    )]
    RetriesExhausted {
        /// The registry.
        registry: String,
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed_ms: u128,
        /// The last failure.
        last: String,
    },
    /// The deadline ran out: the client's overall budget ([`crate::ClientConfig::timeout`],
    /// [`crate::RegistryClient::with_timeout`]). Nothing is retried past it.
    #[error("timed out after {} {operation}{}", crate::duration::format_duration(*after), last.as_ref().map(|l| format!(" (last failed attempt: {l})")).unwrap_or_default())]
    Timeout {
        /// The registry.
        registry: String,
        /// What was under way, naming the registry: `fetching manifest 127.0.0.1:5000/app:v1 from 127.0.0.1:5000`.
        operation: String,
        /// The budget that ran out.
        after: std::time::Duration,
        /// The cause of the last failed attempt, when retries were cut short by the deadline.
        last: Option<String>,
    },
    /// A response that breaks the protocol (bad JSON, missing header, foreign Link).
    #[error("registry {registry} sent an invalid {what}: {detail}")]
    Protocol {
        /// The registry.
        registry: String,
        /// What was invalid.
        what: String,
        /// Why.
        detail: String,
    },
    /// An index without the requested platform.
    #[error(
        "{reference} is an index with no manifest for platform {platform} (it lists: {available})"
    )]
    NoPlatformMatch {
        /// The reference.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// The platforms present.
        available: String,
    },
    /// The token endpoint failed.
    #[error("token service {realm} for registry {registry} failed: {detail}")]
    TokenService {
        /// The registry.
        registry: String,
        /// The token endpoint (no query string).
        realm: String,
        /// Why (status and error code; never the credential).
        detail: String,
    },
    /// The registry's challenge could not be parsed.
    #[error("registry {registry} sent an unusable authentication challenge: {source}")]
    Challenge {
        /// The registry.
        registry: String,
        /// The parse error.
        source: ChallengeError,
    },
    /// Credentials could not be loaded.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The client configuration is unusable (CA file, TLS setup).
    #[error("invalid registry client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The registry error in `error`'s source chain (itself included), for front ends that word hints in their
    /// own terms.
    pub fn find_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(found) = e.downcast_ref::<Error>() {
                return Some(found);
            }
            next = e.source();
        }
        None
    }

    /// Whether this is a not-found answer.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Whether the registry's TLS certificate is not trusted ([`Error::UntrustedCertificate`]): the user can pass
    /// the registry's CA bundle.
    pub fn is_untrusted_certificate(&self) -> bool {
        matches!(self, Error::UntrustedCertificate { .. })
    }

    /// Whether the client's deadline ran out ([`Error::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }
}
