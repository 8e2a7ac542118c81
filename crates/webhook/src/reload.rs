//! Loading and hot reload of the policy, the trusted root and the TLS certificate. Each file is re-read every
//! `reload_interval` (reads follow the kubelet's `..data` symlink swap of ConfigMap and Secret volumes); new
//! content is parsed and swapped in whole. Content that does not load keeps the previous one in force, and says
//! so in the log and the `kibaship_webhook_stale_config` gauge; readiness is unaffected.
use std::path::Path;
use std::sync::Arc;

use kibaship_cli::input::{InputError, read_bounded};
use kibaship_policy::PolicySet;
use kibaship_sigstore::{TrustedRoot, Verifier};
use sha2::{Digest as _, Sha256};

use crate::decide::Trust;
use crate::metrics::{FileLabels, ReloadLabels};
use crate::state::{ServerConfig, State};
use crate::tls::{TlsError, certified_key};

/// Largest policy, trusted root, certificate or key file read.
pub const MAX_WATCHED_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a watched file did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// It could not be read.
    #[error(transparent)]
    Read(#[from] InputError),
    /// The policy is invalid.
    #[error("{0}")]
    Policy(#[from] kibaship_policy::PolicyErrors),
    /// The trusted root is invalid.
    #[error("the trusted root {path}: {reason}")]
    TrustedRoot {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The certificate or key is unusable.
    #[error("the TLS certificate {cert} / key {key}: {source}")]
    Tls {
        /// Certificate file.
        cert: String,
        /// Key file.
        key: String,
        /// Why.
        source: TlsError,
    },
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Parses a policy file.
pub fn load_policy(path: &Path) -> Result<(PolicySet, [u8; 32]), LoadError> {
    let bytes = read_bounded(path, "policy", MAX_WATCHED_FILE_BYTES)?;
    let text = String::from_utf8_lossy(&bytes);
    let policy = PolicySet::parse(&path.display().to_string(), &text)?;
    Ok((policy, sha256(&bytes)))
}

/// Parses a trusted root into a verifier.
pub fn load_trust(path: &Path) -> Result<(Arc<Verifier>, [u8; 32]), LoadError> {
    let bytes = read_bounded(path, "trusted root", MAX_WATCHED_FILE_BYTES)?;
    let root = TrustedRoot::from_json(&bytes).map_err(|e| LoadError::TrustedRoot {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok((Arc::new(Verifier::new(root)), sha256(&bytes)))
}

/// Reads a certificate and key pair.
pub fn load_tls(
    cert: &Path,
    key: &Path,
) -> Result<(rustls::sign::CertifiedKey, [u8; 32]), LoadError> {
    let cert_bytes = read_bounded(cert, "TLS certificate", MAX_WATCHED_FILE_BYTES)?;
    let key_bytes = read_bounded(key, "TLS key", MAX_WATCHED_FILE_BYTES)?;
    let loaded = certified_key(&cert_bytes, &key_bytes).map_err(|source| LoadError::Tls {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        source,
    })?;
    let mut both = cert_bytes;
    both.extend_from_slice(&key_bytes);
    Ok((loaded, sha256(&both)))
}

/// The content last seen of each watched file (loaded or not), so a bad file is reported once, not every tick.
#[derive(Debug, Default)]
pub struct Seen {
    policy: Option<[u8; 32]>,
    trust: Option<[u8; 32]>,
    tls: Option<[u8; 32]>,
}

impl Seen {
    /// After the certificate loaded at start.
    pub fn with_tls(hash: [u8; 32]) -> Self {
        Seen {
            tls: Some(hash),
            ..Seen::default()
        }
    }
}

fn file_hash(paths: &[&Path]) -> Option<[u8; 32]> {
    let mut hasher = Sha256::new();
    for path in paths {
        let bytes = read_bounded(path, "watched file", MAX_WATCHED_FILE_BYTES).ok()?;
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(&bytes);
    }
    Some(hasher.finalize().into())
}

fn outcome(state: &State, file: &'static str, result: Result<(), LoadError>) {
    let ok = result.is_ok();
    state
        .metrics
        .reloads
        .get_or_create(&ReloadLabels {
            file,
            result: if ok { "ok" } else { "error" },
        })
        .inc();
    state
        .metrics
        .stale
        .get_or_create(&FileLabels { file })
        .set(i64::from(!ok));
    match result {
        Ok(()) => tracing::info!(file, "loaded"),
        Err(e) => tracing::error!(
            file,
            error = %e,
            "did not load; the previous one stays in force"
        ),
    }
}

/// Loads every watched file whose content changed since `seen`.
pub fn reload_changed(state: &State, config: &ServerConfig, seen: &mut Seen) {
    let policy_hash = file_hash(&[&config.policy]);
    if policy_hash.is_none() || policy_hash != seen.policy {
        seen.policy = policy_hash;
        let result =
            load_policy(&config.policy).map(|(policy, _)| state.set_policy(Arc::new(policy)));
        if policy_hash.is_some() || !state.is_ready() {
            outcome(state, "policy", result);
        }
    }
    let trust_hash = file_hash(&[&config.trusted_root]);
    if trust_hash.is_none() || trust_hash != seen.trust {
        seen.trust = trust_hash;
        let result = load_trust(&config.trusted_root).map(|(verifier, hash)| {
            state.set_trust(Arc::new(Trust {
                verifier,
                hash,
                client: state.client.clone(),
            }));
        });
        if trust_hash.is_some() || !state.is_ready() {
            outcome(state, "trusted-root", result);
        }
    }
    let tls_hash = file_hash(&[&config.tls_cert, &config.tls_key]);
    if tls_hash.is_some() && tls_hash != seen.tls {
        seen.tls = tls_hash;
        let result = load_tls(&config.tls_cert, &config.tls_key)
            .map(|(key, _)| state.certificate.replace(key));
        outcome(state, "tls", result);
    }
}
