//! What the server holds between requests: the policy and trust material in force (each swapped whole on
//! reload), the cache of verification facts, the serving certificate and the metrics.
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kibaship_oci::{ClientConfig, RegistryClient};
use kibaship_policy::PolicySet;

use crate::decide::{Judge, Trust};
use crate::facts::FactCache;
use crate::metrics::Metrics;
use crate::tls::ReloadingCertificate;

/// How the webhook runs (from `kibaship-webhook serve`'s flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTPS address for `/validate`, `/mutate`, `/healthz`, `/readyz`.
    pub listen: std::net::SocketAddr,
    /// Plain-HTTP address for `/metrics`, `/healthz`, `/readyz` (`None`: no such listener).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// PEM certificate chain served.
    pub tls_cert: PathBuf,
    /// PEM private key of that certificate.
    pub tls_key: PathBuf,
    /// The admission policy (YAML).
    pub policy: PathBuf,
    /// `trusted_root.json`: the only trust material (no TUF fetch at run time).
    pub trusted_root: PathBuf,
    /// Longest a request may take; below the webhook configuration's `timeoutSeconds`.
    pub budget: Duration,
    /// Verification facts kept, at most.
    pub cache_entries: usize,
    /// How long a verification fact is kept.
    pub cache_ttl: Duration,
    /// How often the watched files are checked for changes.
    pub reload_interval: Duration,
    /// How registries are read.
    pub registry: ClientConfig,
    /// The Kubernetes API, for namespace labels and Pods' pull secrets (`None`: labels are unknown, so policies
    /// that select namespaces by label apply everywhere, and only the webhook's own registry credentials are used).
    pub kube_api: Option<crate::kube_api::KubeApiConfig>,
}

/// Shared state of a running webhook.
pub struct State {
    policy: RwLock<Option<Arc<PolicySet>>>,
    trust: RwLock<Option<Arc<Trust>>>,
    /// Verification facts.
    pub cache: Arc<FactCache>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The serving certificate.
    pub certificate: Arc<ReloadingCertificate>,
    /// The registry client every verification uses.
    pub client: RegistryClient,
    /// The request budget.
    pub budget: Duration,
    /// The Kubernetes API client, when configured.
    pub kube: Option<crate::kube_api::KubeApi>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("ready", &self.is_ready())
            .field("cache", &self.cache)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Nothing loaded yet but the certificate.
    pub fn new(
        config: &ServerConfig,
        certificate: Arc<ReloadingCertificate>,
        client: RegistryClient,
        kube: Option<crate::kube_api::KubeApi>,
    ) -> Self {
        State {
            kube,
            policy: RwLock::new(None),
            trust: RwLock::new(None),
            cache: FactCache::new(config.cache_entries, config.cache_ttl),
            metrics: Arc::new(Metrics::new()),
            certificate,
            client,
            budget: config.budget,
        }
    }

    /// Puts `policy` in force.
    pub fn set_policy(&self, policy: Arc<PolicySet>) {
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = Some(policy);
    }

    /// Puts `trust` in force.
    pub fn set_trust(&self, trust: Arc<Trust>) {
        *self.trust.write().unwrap_or_else(|p| p.into_inner()) = Some(trust);
    }

    /// Ready once both a policy and a trusted root are loaded.
    pub fn is_ready(&self) -> bool {
        self.judge().is_some()
    }

    /// What a request decides with, when ready.
    pub fn judge(&self) -> Option<Judge> {
        let policy = self
            .policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let trust = self
            .trust
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        Some(Judge {
            policy,
            trust,
            cache: Arc::clone(&self.cache),
            metrics: Arc::clone(&self.metrics),
            budget: self.budget,
            kube: self.kube.clone(),
        })
    }
}
