//! A small, read-only Kubernetes API client: the three GETs the webhook needs, over reqwest (rustls).
//!
//! - [`KubeApi::namespace_labels`]: `GET /api/v1/namespaces/{name}` → `metadata.labels`, for policy selection.
//!   Answers are cached per namespace for [`KubeApiConfig::namespace_cache_ttl`]; concurrent lookups of one
//!   namespace share one request; the cache holds at most [`KubeApiConfig::namespace_cache_entries`]
//!   namespaces. Errors are returned (the caller fails closed) and never cached.
//! - [`KubeApi::pull_credentials`]: the registry credentials of a Pod: the secrets its `imagePullSecrets`
//!   name and those its service account names, of type `kubernetes.io/dockerconfigjson` or
//!   `kubernetes.io/dockercfg`, as [`kibaship_oci::Credential`]s by registry ([`PullCredentials`]). A missing
//!   secret or service account is not an error (the kubelet would fail the pull later); it is recorded in
//!   [`PullCredentials::notes`]. A malformed secret is an error naming the secret, never quoting it.
//! - [`KubeApiConfig`]: [`KubeApiConfig::in_cluster`] (the service account's token and CA, the
//!   `KUBERNETES_SERVICE_*` environment) or [`KubeApiConfig::new`] (any URL, token file and CA file). The
//!   token file is read again when it changes (bound tokens rotate) and at least every
//!   [`KubeApiConfig::token_reload_interval`].
//!
//! Every request is bounded: a timeout for the request and its whole answer ([`KubeApiError::Timeout`]), a
//! size limit for the answer, read in chunks ([`KubeApiConfig::max_body_bytes`]). Redirects are not followed
//! and no proxy is used, so the token goes to the configured server only.
//!
//! Secrets (the token, the content of pull secrets, the credentials) never appear in `Debug` output, errors,
//! notes or logs.
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use kibaship_oci::Credential;
use kibaship_oci::credentials::{CredentialSource, DockerConfig};
use reqwest::header::{self, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::io::AsyncReadExt as _;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// Where a Pod's service account token and the cluster's CA are mounted.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Default [`KubeApiConfig::timeout`]: one request and its whole answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`KubeApiConfig::max_body_bytes`]: 1 MiB (the API server's own limit for a Secret).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Default [`KubeApiConfig::namespace_cache_ttl`].
pub const DEFAULT_NAMESPACE_CACHE_TTL: Duration = Duration::from_secs(30);
/// Default [`KubeApiConfig::namespace_cache_entries`].
pub const DEFAULT_NAMESPACE_CACHE_ENTRIES: usize = 4096;
/// Default [`KubeApiConfig::token_reload_interval`] (client-go re-reads its token file every minute too).
pub const DEFAULT_TOKEN_RELOAD_INTERVAL: Duration = Duration::from_secs(60);
/// Default [`KubeApiConfig::max_pull_secrets`].
pub const DEFAULT_MAX_PULL_SECRETS: usize = 32;

const SECRET_TYPE_DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
const SECRET_KEY_DOCKER_CONFIG_JSON: &str = ".dockerconfigjson";
const SECRET_TYPE_DOCKERCFG: &str = "kubernetes.io/dockercfg";
const SECRET_KEY_DOCKERCFG: &str = ".dockercfg";
const TOKEN_FILE_LIMIT: u64 = 64 * 1024;
const CA_FILE_LIMIT: u64 = 1024 * 1024;
/// How much of an error answer is read (for the API server's `Status` message).
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
/// How many characters of a message or a name from the API server end up in an error or a note.
const QUOTE_LIMIT: usize = 200;
/// At most this many notes are kept for one [`PullCredentials`]; one more says how many were dropped.
const MAX_NOTES: usize = 64;
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_ALIASES: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// How a [`KubeApi`] reaches the API server.
#[derive(Debug, Clone)]
pub struct KubeApiConfig {
    /// The API server's base URL (`https://host:port`, optionally with a path prefix). HTTPS only.
    pub url: String,
    /// The file holding the bearer token (read again when it changes).
    pub token_file: PathBuf,
    /// A PEM bundle: the only certificates trusted for the API server.
    pub ca_file: PathBuf,
    /// Longest one request may take, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// Longest a TCP and TLS connection may take to set up (at most `timeout`); past it the request fails
    /// with [`KubeApiError::Timeout`].
    pub connect_timeout: Duration,
    /// Largest answer read; a larger one is [`KubeApiError::Malformed`].
    pub max_body_bytes: u64,
    /// How long namespace labels are reused; `Duration::ZERO` disables reuse (lookups in flight are still shared).
    pub namespace_cache_ttl: Duration,
    /// Most namespaces kept in the label cache.
    pub namespace_cache_entries: usize,
    /// The token file is read again after this long even when its metadata did not change.
    pub token_reload_interval: Duration,
    /// Most pull secrets read for one Pod (its own and its service account's, without duplicates); the rest
    /// are ignored with a note.
    pub max_pull_secrets: usize,
    /// `User-Agent`.
    pub user_agent: String,
}

impl KubeApiConfig {
    /// An API server at `url` with the bearer token in `token_file` and its CA in `ca_file`, other settings at
    /// their defaults (out-of-cluster runs, tests).
    pub fn new(
        url: impl Into<String>,
        token_file: impl Into<PathBuf>,
        ca_file: impl Into<PathBuf>,
    ) -> KubeApiConfig {
        KubeApiConfig {
            url: url.into(),
            token_file: token_file.into(),
            ca_file: ca_file.into(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            namespace_cache_ttl: DEFAULT_NAMESPACE_CACHE_TTL,
            namespace_cache_entries: DEFAULT_NAMESPACE_CACHE_ENTRIES,
            token_reload_interval: DEFAULT_TOKEN_RELOAD_INTERVAL,
            max_pull_secrets: DEFAULT_MAX_PULL_SECRETS,
            user_agent: concat!("kibaship-webhook/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }

    /// Inside a Pod: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, the token and CA of the
    /// Pod's service account under [`SERVICE_ACCOUNT_DIR`]. The files are read by [`KubeApi::new`].
    pub fn in_cluster() -> Result<KubeApiConfig, KubeApiError> {
        in_cluster_from(
            std::env::var("KUBERNETES_SERVICE_HOST").ok(),
            std::env::var("KUBERNETES_SERVICE_PORT").ok(),
            Path::new(SERVICE_ACCOUNT_DIR),
        )
    }
}

fn in_cluster_from(
    host: Option<String>,
    port: Option<String>,
    dir: &Path,
) -> Result<KubeApiConfig, KubeApiError> {
    let missing = |var: &str| KubeApiError::Config {
        detail: format!("not running in a cluster: `{var}` is not set"),
    };
    let host = host
        .filter(|h| !h.is_empty())
        .ok_or_else(|| missing("KUBERNETES_SERVICE_HOST"))?;
    let port = port
        .filter(|p| !p.is_empty())
        .ok_or_else(|| missing("KUBERNETES_SERVICE_PORT"))?;
    if port.parse::<u16>().is_err() {
        return Err(KubeApiError::Config {
            detail: format!("`KUBERNETES_SERVICE_PORT` is not a port: {}", quote(&port)),
        });
    }
    // An IPv6 service address needs brackets in a URL.
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    Ok(KubeApiConfig::new(
        format!("https://{host}:{port}"),
        dir.join("token"),
        dir.join("ca.crt"),
    ))
}

/// Why the API server could not answer a lookup. Nothing here holds a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KubeApiError {
    /// The configuration cannot work: no cluster environment, unreadable token or CA file, a bad URL.
    #[error("Kubernetes API configuration: {detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
    /// A name that no Kubernetes object can have (so it is not sent to the API server).
    #[error("{kind} name {} is not a valid Kubernetes name", quote(name))]
    InvalidName {
        /// `namespace`, `secret`, `service account`.
        kind: &'static str,
        /// The name (shortened).
        name: String,
    },
    /// No connection, or the connection failed before a complete answer.
    #[error("{what}: the Kubernetes API server is unreachable: {detail}")]
    Unreachable {
        /// What was asked for (`namespace \`team-a\``).
        what: String,
        /// The transport error.
        detail: String,
    },
    /// The API server refused the token (401) or the token's identity may not read the object (403).
    #[error("{what}: the Kubernetes API server answered {status}: {message}")]
    Denied {
        /// What was asked for.
        what: String,
        /// 401 or 403.
        status: u16,
        /// The API server's `Status` message (shortened), or the HTTP reason.
        message: String,
    },
    /// The object does not exist (404).
    #[error("{what} does not exist")]
    NotFound {
        /// What was asked for.
        what: String,
    },
    /// Any other answer than 2xx, 401, 403 and 404.
    #[error("{what}: the Kubernetes API server answered {status}: {message}")]
    Status {
        /// What was asked for.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The API server's `Status` message (shortened), or the HTTP reason.
        message: String,
    },
    /// The answer is not the object asked for: not JSON of that shape, or larger than the limit.
    #[error("{what}: the Kubernetes API server's answer is malformed: {detail}")]
    Malformed {
        /// What was asked for.
        what: String,
        /// What is wrong (never the answer's content).
        detail: String,
    },
    /// A pull secret of a registry-credential type whose content cannot be used.
    #[error("pull secret `{namespace}/{name}`: {detail}")]
    MalformedSecret {
        /// The secret's namespace.
        namespace: String,
        /// The secret's name.
        name: String,
        /// What is wrong (never the secret's content).
        detail: String,
    },
    /// No complete answer within [`KubeApiConfig::timeout`], or no connection within
    /// [`KubeApiConfig::connect_timeout`].
    #[error("{what}: no answer from the Kubernetes API server within {} ms", after.as_millis())]
    Timeout {
        /// What was asked for.
        what: String,
        /// The timeout.
        after: Duration,
    },
}

impl KubeApiError {
    /// A stable, kebab-case code for metrics, logs and deny reasons.
    pub fn code(&self) -> &'static str {
        match self {
            KubeApiError::Config { .. } => "kube-api-config",
            KubeApiError::InvalidName { .. } => "kube-api-invalid-name",
            KubeApiError::Unreachable { .. } => "kube-api-unreachable",
            KubeApiError::Denied { .. } => "kube-api-denied",
            KubeApiError::NotFound { .. } => "kube-api-not-found",
            KubeApiError::Status { .. } => "kube-api-status",
            KubeApiError::Malformed { .. } => "kube-api-malformed",
            KubeApiError::MalformedSecret { .. } => "pull-secret-malformed",
            KubeApiError::Timeout { .. } => "timeout",
        }
    }
}

/// The registry credentials found for a Pod, by registry as written in image references (`docker.io`,
/// `ghcr.io`, `registry.example:5000`), with the notes of what was skipped. `Debug` shows registries and
/// secret names only.
#[derive(Default, Clone)]
pub struct PullCredentials {
    credentials: HashMap<String, Credential>,
    /// Wildcard entries (`*.example.com`): (pattern, credential), in the order they were found.
    patterns: Vec<(String, Credential)>,
    /// Registry or pattern → `namespace/secret` it came from.
    sources: BTreeMap<String, String>,
    notes: Vec<String>,
    dropped_notes: usize,
}

impl fmt::Debug for PullCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullCredentials")
            .field("sources", &self.sources)
            .field("notes", &self.notes)
            .finish_non_exhaustive()
    }
}

impl PullCredentials {
    /// No credential at all (exact or wildcard).
    pub fn is_empty(&self) -> bool {
        self.credentials.is_empty() && self.patterns.is_empty()
    }

    /// Credentials by exact registry, in the form [`kibaship_oci::ClientConfig::credentials`] takes.
    /// Wildcard entries are not here: see [`PullCredentials::credential_for`].
    pub fn credentials(&self) -> &HashMap<String, Credential> {
        &self.credentials
    }

    /// The credential for `registry` (as in [`kibaship_oci::Reference::registry`]): the exact entry, else the
    /// first wildcard entry that matches it (`*.example.com` matches `a.example.com`, one label per `*`, the
    /// port must match), as the kubelet matches them.
    pub fn credential_for(&self, registry: &str) -> Option<&Credential> {
        let registry = normalize_registry(registry);
        self.credentials.get(registry.as_str()).or_else(|| {
            self.patterns
                .iter()
                .find(|(pattern, _)| pattern_matches(pattern, &registry))
                .map(|(_, credential)| credential)
        })
    }

    /// Credentials for the given registries (exact or wildcard entries), keyed by each registry as given: what
    /// [`kibaship_oci::ClientConfig::credentials`] takes for the images of one Pod.
    pub fn credentials_for<'a>(
        &self,
        registries: impl IntoIterator<Item = &'a str>,
    ) -> HashMap<String, Credential> {
        registries
            .into_iter()
            .filter_map(|r| self.credential_for(r).map(|c| (r.to_string(), c.clone())))
            .collect()
    }

    /// The pull secret (`namespace/name`) the exact credential of `registry`, or the wildcard `pattern`,
    /// came from.
    pub fn source_of(&self, registry: &str) -> Option<&str> {
        self.sources
            .get(normalize_registry(registry).as_str())
            .map(String::as_str)
    }

    /// What was skipped and why: missing secrets or service account, secrets of other types, entries without
    /// a usable credential, registries named by more than one secret. Never a secret's content.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The exact credentials, for [`kibaship_oci::ClientConfig::credentials`].
    pub fn into_credentials(self) -> HashMap<String, Credential> {
        self.credentials
    }

    fn note(&mut self, note: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(note);
        } else {
            self.dropped_notes += 1;
        }
    }

    fn finish(mut self) -> PullCredentials {
        if self.dropped_notes > 0 {
            self.notes
                .push(format!("{} more notes were dropped", self.dropped_notes));
            self.dropped_notes = 0;
        }
        self
    }

    /// Adds what one secret holds; a registry already present keeps its earlier credential.
    fn merge(&mut self, secret: ParsedSecret) {
        for note in secret.notes {
            self.note(note);
        }
        for (registry, credential) in secret.entries {
            if let Some(earlier) = self.sources.get(&registry) {
                let note = format!(
                    "registry `{registry}`: the credential of pull secret `{earlier}` is used; the one in `{}` is not",
                    secret.source
                );
                self.note(note);
                continue;
            }
            self.sources.insert(registry.clone(), secret.source.clone());
            if registry.contains('*') {
                self.patterns.push((registry, credential));
            } else {
                self.credentials.insert(registry, credential);
            }
        }
    }
}

/// Counters of the namespace label cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NamespaceCacheStats {
    /// Calls of [`KubeApi::namespace_labels`].
    pub lookups: u64,
    /// Requests sent to the API server for namespaces.
    pub fetches: u64,
    /// Namespaces in the cache now (answered or in flight).
    pub entries: usize,
}

/// The read-only Kubernetes API client. Cheap to clone; clones share the connection pool, the token and the
/// namespace cache.
#[derive(Clone)]
pub struct KubeApi {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The base URL without a trailing `/`.
    base: String,
    config: KubeApiConfig,
    token: tokio::sync::Mutex<TokenState>,
    namespaces: Mutex<HashMap<String, Slot>>,
    lookups: AtomicU64,
    fetches: AtomicU64,
}

impl fmt::Debug for KubeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeApi")
            .field("url", &self.inner.base)
            .field("token_file", &self.inner.config.token_file)
            .field("ca_file", &self.inner.config.ca_file)
            .field("timeout", &self.inner.config.timeout)
            .field(
                "namespace_cache_ttl",
                &self.inner.config.namespace_cache_ttl,
            )
            .finish_non_exhaustive()
    }
}

/// The bearer token as last read, with what the file looked like then.
#[derive(Default)]
struct TokenState {
    header: Option<HeaderValue>,
    stamp: Option<FileStamp>,
    read_at: Option<Instant>,
}

/// What tells a changed file apart: a kubelet-projected token is replaced by a new file (new inode) behind a
/// symlink; a rewritten file gets a new size or modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    dev: u64,
    ino: u64,
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt as _;
        FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

type Labels = BTreeMap<String, String>;

/// A namespace's labels and when they were read.
#[derive(Clone)]
struct FetchedLabels {
    labels: Arc<Labels>,
    at: Instant,
}

type Slot = Arc<OnceCell<Result<FetchedLabels, KubeApiError>>>;

/// What the cache holds for a namespace being looked up.
enum Found {
    Fresh(Arc<Labels>),
    InFlight(Slot),
    Replace,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl KubeApi {
    /// Builds the client: checks the URL, reads the CA file (its certificates are the only ones trusted) and
    /// the token file once (so a missing file fails here, not at the first admission request).
    pub fn new(config: KubeApiConfig) -> Result<KubeApi, KubeApiError> {
        let config_err = |detail: String| KubeApiError::Config { detail };
        let url = reqwest::Url::parse(&config.url)
            .map_err(|e| config_err(format!("URL {}: {e}", quote(&config.url))))?;
        if url.scheme() != "https" {
            return Err(config_err(format!(
                "URL {}: only https is allowed (the bearer token goes with every request)",
                quote(&config.url)
            )));
        }
        if url.host_str().is_none()
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(config_err(format!(
                "URL {}: expected https://host[:port][/path], without user, query or fragment",
                quote(&config.url)
            )));
        }
        let base = url.as_str().trim_end_matches('/').to_string();
        let pem = read_small_file(&config.ca_file, CA_FILE_LIMIT).map_err(|detail| {
            config_err(format!("CA file {}: {detail}", config.ca_file.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| config_err(format!("CA file {}: {e}", config.ca_file.display())))?;
        if certs.is_empty() {
            return Err(config_err(format!(
                "CA file {} holds no PEM certificate",
                config.ca_file.display()
            )));
        }
        let token = read_small_file(&config.token_file, TOKEN_FILE_LIMIT)
            .and_then(|bytes| bearer_header(&bytes).map_err(String::from))
            .map_err(|detail| {
                config_err(format!(
                    "token file {}: {detail}",
                    config.token_file.display()
                ))
            })?;
        let stamp = std::fs::metadata(&config.token_file)
            .ok()
            .map(|m| FileStamp::of(&m));
        let http = reqwest::Client::builder()
            .tls_certs_only(certs)
            .https_only(true)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout.min(config.timeout))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| config_err(format!("HTTP client: {}", cause_chain(&e))))?;
        Ok(KubeApi {
            inner: Arc::new(Inner {
                http,
                base,
                token: tokio::sync::Mutex::new(TokenState {
                    header: Some(token),
                    stamp,
                    read_at: Some(Instant::now()),
                }),
                config,
                namespaces: Mutex::new(HashMap::new()),
                lookups: AtomicU64::new(0),
                fetches: AtomicU64::new(0),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &KubeApiConfig {
        &self.inner.config
    }

    /// The labels of `namespace`, from the cache while fresh. Lookups of one namespace in flight at the same
    /// time share one request; an error is returned to all of them and not kept.
    pub async fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Result<Arc<BTreeMap<String, String>>, KubeApiError> {
        self.inner.lookups.fetch_add(1, Ordering::Relaxed);
        check_name(namespace, NameKind::Namespace)?;
        let ttl = self.inner.config.namespace_cache_ttl;
        let slot = {
            let mut map = lock(&self.inner.namespaces);
            let now = Instant::now();
            let found = match map.get(namespace).map(|slot| (slot, slot.get())) {
                Some((slot, None)) => Found::InFlight(slot.clone()),
                Some((_, Some(Ok(fetched)))) if now.saturating_duration_since(fetched.at) < ttl => {
                    Found::Fresh(fetched.labels.clone())
                }
                // Stale, or an error some waiter has not removed yet: replaced below.
                Some(_) | None => Found::Replace,
            };
            match found {
                Found::Fresh(labels) => return Ok(labels),
                Found::InFlight(slot) => Some(slot),
                Found::Replace => {
                    map.remove(namespace);
                    let capacity = self.inner.config.namespace_cache_entries;
                    if map.len() >= capacity {
                        evict(&mut map, now, ttl, capacity);
                    }
                    (map.len() < capacity).then(|| {
                        let slot = Slot::default();
                        map.insert(namespace.to_string(), slot.clone());
                        slot
                    })
                }
            }
        };
        let Some(slot) = slot else {
            // The cache is full of lookups in flight: answer without it.
            return self.fetch_labels(namespace).await.map(|f| f.labels);
        };
        let result = slot
            .get_or_init(|| self.fetch_labels(namespace))
            .await
            .clone();
        if result.is_err() {
            let mut map = lock(&self.inner.namespaces);
            if map.get(namespace).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                map.remove(namespace);
            }
        }
        result.map(|f| f.labels)
    }

    /// Counters of the namespace label cache.
    pub fn namespace_cache_stats(&self) -> NamespaceCacheStats {
        NamespaceCacheStats {
            lookups: self.inner.lookups.load(Ordering::Relaxed),
            fetches: self.inner.fetches.load(Ordering::Relaxed),
            entries: lock(&self.inner.namespaces).len(),
        }
    }

    async fn fetch_labels(&self, namespace: &str) -> Result<FetchedLabels, KubeApiError> {
        #[derive(Deserialize)]
        struct Namespace {
            metadata: Metadata,
        }
        #[derive(Deserialize)]
        struct Metadata {
            #[serde(default)]
            name: Option<String>,
            #[serde(default)]
            labels: Option<Labels>,
        }
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        let what = format!("namespace `{namespace}`");
        let path = format!("/api/v1/namespaces/{namespace}");
        let body = self
            .get(&path, &what)
            .await?
            .ok_or(KubeApiError::NotFound { what: what.clone() })?;
        let object: Namespace = parse_json(&body).map_err(|detail| KubeApiError::Malformed {
            what: what.clone(),
            detail: format!("not a Namespace ({detail})"),
        })?;
        if object.metadata.name.as_deref() != Some(namespace) {
            return Err(KubeApiError::Malformed {
                what,
                detail: "the Namespace in the answer has another name".into(),
            });
        }
        Ok(FetchedLabels {
            labels: Arc::new(object.metadata.labels.unwrap_or_default()),
            at: Instant::now(),
        })
    }

    /// The registry credentials a Pod in `namespace` pulls with: the secrets named by `pull_secrets` (the Pod's
    /// `imagePullSecrets`), then those named by the `imagePullSecrets` of `service_account`, without
    /// duplicates, at most [`KubeApiConfig::max_pull_secrets`]. When two secrets hold credentials for one
    /// registry, the first one's is used (and a note says so).
    ///
    /// A service account or secret that does not exist, or a secret of another type, gives a note, not an
    /// error: the kubelet ignores it the same way, or fails the pull later. A secret whose content cannot be
    /// used is [`KubeApiError::MalformedSecret`]; an answer the API server refuses or cannot give is an error.
    ///
    /// The ServiceAccount admission plugin copies the service account's pull secrets into a Pod only when the
    /// Pod names none; to follow the kubelet exactly for a Pod that names some, pass `None` here.
    pub async fn pull_credentials(
        &self,
        namespace: &str,
        pull_secrets: &[String],
        service_account: Option<&str>,
    ) -> Result<PullCredentials, KubeApiError> {
        check_name(namespace, NameKind::Namespace)?;
        let mut out = PullCredentials::default();
        let mut names: Vec<String> = Vec::new();
        let mut add = |out: &mut PullCredentials, name: &str, origin: &str| {
            if check_name(name, NameKind::Secret).is_err() {
                out.note(format!(
                    "{origin} names pull secret {}, which is not a valid secret name",
                    quote(name)
                ));
            } else if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        };
        for name in pull_secrets {
            add(&mut out, name, "the Pod");
        }
        if let Some(account) = service_account {
            if check_name(account, NameKind::ServiceAccount).is_err() {
                out.note(format!(
                    "service account {} is not a valid name",
                    quote(account)
                ));
            } else {
                let what = format!("service account `{namespace}/{account}`");
                let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts/{account}");
                match self.get(&path, &what).await? {
                    None => out.note(format!("{what} does not exist")),
                    Some(body) => {
                        let secrets = parse_service_account(&body).map_err(|detail| {
                            KubeApiError::Malformed {
                                what: what.clone(),
                                detail,
                            }
                        })?;
                        let origin = format!("service account `{account}`");
                        for name in &secrets {
                            add(&mut out, name, &origin);
                        }
                    }
                }
            }
        }
        let max = self.inner.config.max_pull_secrets;
        if names.len() > max {
            out.note(format!(
                "{} pull secrets are named; only the first {max} are read",
                names.len()
            ));
            names.truncate(max);
        }
        let answers = futures::future::join_all(names.iter().map(|name| {
            let what = format!("secret `{namespace}/{name}`");
            let path = format!("/api/v1/namespaces/{namespace}/secrets/{name}");
            async move { self.get(&path, &what).await }
        }))
        .await;
        for (name, answer) in names.iter().zip(answers) {
            match answer? {
                None => out.note(format!("pull secret `{namespace}/{name}` does not exist")),
                Some(body) => out.merge(parse_pull_secret(namespace, name, &body)?),
            }
        }
        tracing::debug!(
            namespace,
            secrets = names.len(),
            registries = out.sources.len(),
            notes = out.notes.len(),
            "pull credentials read"
        );
        Ok(out.finish())
    }

    /// `GET path` within the timeout: the body of a 2xx answer, `None` for 404, an error otherwise.
    async fn get(&self, path: &str, what: &str) -> Result<Option<Vec<u8>>, KubeApiError> {
        let timeout = self.inner.config.timeout;
        match tokio::time::timeout(timeout, self.get_unbounded(path, what)).await {
            Ok(result) => result,
            Err(_) => Err(KubeApiError::Timeout {
                what: what.to_string(),
                after: timeout,
            }),
        }
    }

    async fn get_unbounded(&self, path: &str, what: &str) -> Result<Option<Vec<u8>>, KubeApiError> {
        let url = format!("{}{path}", self.inner.base);
        let token = self.bearer(false).await?;
        let mut response = self.send(&url, token.clone(), what).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            // The token may have rotated since it was read: read it again, and try once more if it changed.
            let fresh = self.bearer(true).await?;
            if fresh != token {
                response = self.send(&url, fresh, what).await?;
            }
        }
        let status = response.status();
        tracing::debug!(what, status = status.as_u16(), "Kubernetes API answer");
        if status.is_success() {
            return read_limited(response, self.inner.config.max_body_bytes, what)
                .await
                .map(Some);
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let message = status_message(response, what).await;
        let what = what.to_string();
        let status = status.as_u16();
        Err(match status {
            401 | 403 => KubeApiError::Denied {
                what,
                status,
                message,
            },
            _ => KubeApiError::Status {
                what,
                status,
                message,
            },
        })
    }

    async fn send(
        &self,
        url: &str,
        token: HeaderValue,
        what: &str,
    ) -> Result<reqwest::Response, KubeApiError> {
        self.inner
            .http
            .get(url)
            .header(header::AUTHORIZATION, token)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    // Connecting (TCP and TLS) took longer than the connect timeout.
                    KubeApiError::Timeout {
                        what: what.to_string(),
                        after: self.connect_timeout(),
                    }
                } else {
                    KubeApiError::Unreachable {
                        what: what.to_string(),
                        detail: cause_chain(&e),
                    }
                }
            })
    }

    /// The connect timeout in effect: never longer than the request's.
    fn connect_timeout(&self) -> Duration {
        let config = &self.inner.config;
        config.connect_timeout.min(config.timeout)
    }

    /// The `Authorization` header value, from the token file when it changed, when it is older than the reload
    /// interval, or when `force`d. A file that cannot be read now keeps the token read before.
    async fn bearer(&self, force: bool) -> Result<HeaderValue, KubeApiError> {
        let path = &self.inner.config.token_file;
        let mut state = self.inner.token.lock().await;
        let stamp = tokio::fs::metadata(path).await.map(|m| FileStamp::of(&m));
        let reuse = match (&state.header, &state.read_at, &stamp) {
            (Some(header), Some(at), Ok(stamp))
                if !force
                    && state.stamp.as_ref() == Some(stamp)
                    && at.elapsed() < self.inner.config.token_reload_interval =>
            {
                Some(header.clone())
            }
            _ => None,
        };
        if let Some(header) = reuse {
            return Ok(header);
        }
        let read = match stamp {
            Ok(stamp) => read_small_file_async(path, TOKEN_FILE_LIMIT)
                .await
                .and_then(|bytes| bearer_header(&bytes).map_err(String::from))
                .map(|header| (header, stamp)),
            Err(e) => Err(e.to_string()),
        };
        match read {
            Ok((header, stamp)) => {
                state.header = Some(header.clone());
                state.stamp = Some(stamp);
                state.read_at = Some(Instant::now());
                Ok(header)
            }
            Err(detail) => match &state.header {
                Some(header) => {
                    tracing::warn!(
                        token_file = %path.display(),
                        error = %detail,
                        "cannot read the Kubernetes API token file again; using the token read before"
                    );
                    Ok(header.clone())
                }
                None => Err(KubeApiError::Config {
                    detail: format!("token file {}: {detail}", path.display()),
                }),
            },
        }
    }
}

/// Makes room for one namespace: drops stale entries and lookups nobody waits for any more (their callers
/// were cancelled), then the oldest answered ones. Lookups in flight stay.
fn evict(map: &mut HashMap<String, Slot>, now: Instant, ttl: Duration, capacity: usize) {
    map.retain(|_, slot| match slot.get() {
        None => Arc::strong_count(slot) > 1,
        Some(Ok(f)) => now.saturating_duration_since(f.at) < ttl,
        Some(Err(_)) => false,
    });
    while map.len() >= capacity {
        let oldest = map
            .iter()
            .filter_map(|(name, slot)| match slot.get() {
                Some(Ok(f)) => Some((f.at, name.clone())),
                _ => None,
            })
            .min();
        match oldest {
            Some((_, name)) => {
                map.remove(&name);
            }
            None => break,
        }
    }
}

/// A 2xx body, read chunk by chunk up to `limit` bytes.
async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, KubeApiError> {
    let too_large = || KubeApiError::Malformed {
        what: what.to_string(),
        detail: format!("the answer is larger than {limit} bytes"),
    };
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let capacity = response.content_length().unwrap_or(0).min(limit);
    let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| KubeApiError::Unreachable {
            what: what.to_string(),
            detail: cause_chain(&e),
        })?
    {
        let total = u64::try_from(body.len().saturating_add(chunk.len())).unwrap_or(u64::MAX);
        if total > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The `message` of the API server's `Status` answer, shortened, or the HTTP reason.
async fn status_message(response: reqwest::Response, what: &str) -> String {
    #[derive(Deserialize)]
    struct Status {
        #[serde(default)]
        message: Option<String>,
    }
    let reason = response
        .status()
        .canonical_reason()
        .unwrap_or("unexpected status")
        .to_string();
    match read_limited(response, ERROR_BODY_LIMIT, what).await {
        Ok(body) => serde_json::from_slice::<Status>(&body)
            .ok()
            .and_then(|s| s.message)
            .filter(|m| !m.is_empty())
            .map(|m| shorten(&m))
            .unwrap_or(reason),
        Err(_) => reason,
    }
}

/// JSON into `T`; the error says only what kind of error and where: serde_json's own message can quote a value.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| json_error(&e))
}

fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Eof => "JSON that ends early",
        serde_json::error::Category::Data => "a value of the wrong type",
        serde_json::error::Category::Io => "unreadable",
    };
    format!("{kind} at line {}, column {}", e.line(), e.column())
}

fn parse_service_account(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct ServiceAccount {
        #[serde(default, rename = "imagePullSecrets")]
        image_pull_secrets: Option<Vec<Reference>>,
    }
    #[derive(Deserialize)]
    struct Reference {
        #[serde(default)]
        name: Option<String>,
    }
    let account: ServiceAccount =
        parse_json(body).map_err(|detail| format!("not a ServiceAccount ({detail})"))?;
    Ok(account
        .image_pull_secrets
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.name.filter(|n| !n.is_empty()))
        .collect())
}

/// What one pull secret holds: (registry or wildcard pattern, credential) in key order, and notes.
#[derive(Default)]
struct ParsedSecret {
    /// `namespace/name`.
    source: String,
    entries: Vec<(String, Credential)>,
    notes: Vec<String>,
}

/// A Secret as the API server returns it (only what is read here). `Debug` is not derived: `data` is secret.
#[derive(Deserialize)]
struct SecretObject {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    data: Option<BTreeMap<String, String>>,
}

/// The credentials in a Secret (the API server's JSON) of type `kubernetes.io/dockerconfigjson` or
/// `kubernetes.io/dockercfg`; a Secret of another type holds none (and gives a note).
fn parse_pull_secret(
    namespace: &str,
    name: &str,
    body: &[u8],
) -> Result<ParsedSecret, KubeApiError> {
    let source = format!("{namespace}/{name}");
    let err = |detail: String| KubeApiError::MalformedSecret {
        namespace: namespace.to_string(),
        name: name.to_string(),
        detail,
    };
    let secret: SecretObject =
        parse_json(body).map_err(|detail| err(format!("the answer is not a Secret ({detail})")))?;
    let kind = secret.kind.unwrap_or_default();
    let (key, wrapped) = match kind.as_str() {
        SECRET_TYPE_DOCKER_CONFIG_JSON => (SECRET_KEY_DOCKER_CONFIG_JSON, true),
        SECRET_TYPE_DOCKERCFG => (SECRET_KEY_DOCKERCFG, false),
        _ => {
            return Ok(ParsedSecret {
                notes: vec![format!(
                    "pull secret `{source}` has type {}, not `{SECRET_TYPE_DOCKER_CONFIG_JSON}` or \
                     `{SECRET_TYPE_DOCKERCFG}`; the kubelet ignores it too",
                    quote(&kind)
                )],
                source,
                ..ParsedSecret::default()
            });
        }
    };
    let encoded = secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .ok_or_else(|| err(format!("a secret of type `{kind}` without a `{key}` key")))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| err(format!("`{key}` is not valid base64")))?;
    let config: serde_json::Value =
        parse_json(&decoded).map_err(|detail| err(format!("`{key}` is {detail}")))?;
    let serde_json::Value::Object(mut config) = config else {
        return Err(err(format!("`{key}` is not a JSON object")));
    };
    // `.dockerconfigjson` is a docker config.json (credentials under `auths`; helpers and stores, which need
    // programs the webhook does not run, are ignored as the kubelet ignores them); `.dockercfg` is the older
    // format: the `auths` map itself.
    let auths = if wrapped {
        match config.remove("auths") {
            None | Some(serde_json::Value::Null) => serde_json::Map::new(),
            Some(serde_json::Value::Object(auths)) => auths,
            Some(_) => return Err(err(format!("`{key}`: `auths` is not a JSON object"))),
        }
    } else {
        config
    };
    let mut parsed = ParsedSecret {
        source: source.clone(),
        ..ParsedSecret::default()
    };
    if auths.is_empty() {
        parsed.notes.push(format!(
            "pull secret `{source}` holds no registry credentials"
        ));
    }
    for (entry_key, entry) in auths {
        let shown = quote(&entry_key);
        if !entry.is_object() {
            return Err(err(format!(
                "`{key}`: the entry for {shown} is not a JSON object"
            )));
        }
        let Some(target) = RegistryKey::parse(&entry_key) else {
            parsed.notes.push(format!(
                "pull secret `{source}`: the entry for {shown} names no registry host; ignored"
            ));
            continue;
        };
        if target.scoped_to_path {
            parsed.notes.push(format!(
                "pull secret `{source}`: the entry for {shown} is scoped to a path; it is used for all of `{}`",
                target.registry
            ));
        }
        // One entry per config, so that `source_for` can only find this one.
        let mut auths = serde_json::Map::new();
        auths.insert(entry_key.clone(), entry);
        let mut single = serde_json::Map::new();
        single.insert("auths".into(), serde_json::Value::Object(auths));
        let bytes = serde_json::to_vec(&serde_json::Value::Object(single))
            .map_err(|_| err(format!("`{key}`: the entry for {shown} cannot be read")))?;
        let found = DockerConfig::from_json(&bytes)
            .and_then(|cfg| cfg.source_for(&target.lookup))
            .map_err(|_| {
                err(format!(
                    "`{key}`: the entry for {shown} is malformed (a field of the wrong type, or `auth` \
                     that is not base64 of user:password)"
                ))
            })?;
        match found {
            CredentialSource::Inline(Some(credential)) => {
                if parsed.entries.iter().any(|(r, _)| *r == target.registry) {
                    parsed.notes.push(format!(
                        "pull secret `{source}`: more than one entry for `{}`; the first is used",
                        target.registry
                    ));
                } else {
                    parsed.entries.push((target.registry, credential));
                }
            }
            CredentialSource::Inline(None) | CredentialSource::Helper { .. } => {
                parsed.notes.push(format!(
                    "pull secret `{source}`: the entry for {shown} holds no usable credential"
                ));
            }
        }
    }
    Ok(parsed)
}

/// A docker config key (`https://index.docker.io/v1/`, `ghcr.io`, `http://host:5000/v2/`, `*.example.com`)
/// as a registry name.
struct RegistryKey {
    /// As [`kibaship_oci::Reference::registry`] writes it (`docker.io` for Docker Hub), or a wildcard pattern.
    registry: String,
    /// What [`DockerConfig::source_for`] is asked with (the key's host, which the key matches).
    lookup: String,
    /// The key has a path other than the docker API version (`registry.example/team-a`).
    scoped_to_path: bool,
}

impl RegistryKey {
    fn parse(key: &str) -> Option<RegistryKey> {
        let rest = key
            .strip_prefix("https://")
            .or_else(|| key.strip_prefix("http://"))
            .unwrap_or(key);
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let path = path.trim_end_matches('/');
        Some(RegistryKey {
            registry: normalize_registry(host),
            lookup: host.to_string(),
            scoped_to_path: !matches!(path, "" | "v1" | "v2"),
        })
    }
}

/// Docker Hub's names as one (`docker.io`); others as they are, in lower case (host names are not case-sensitive).
fn normalize_registry(registry: &str) -> String {
    let lower = registry.to_ascii_lowercase();
    if DOCKER_HUB_ALIASES.contains(&lower.as_str()) {
        DOCKER_HUB.to_string()
    } else {
        lower
    }
}

/// Whether the wildcard `pattern` (`*.example.com`, `registry-*.example.com:5000`) matches `registry`: as many
/// dot-separated labels, each matching (`*` stands for any run of characters within a label), equal ports.
fn pattern_matches(pattern: &str, registry: &str) -> bool {
    let split_port = |s: &str| -> (String, String) {
        match s.rsplit_once(':') {
            Some((host, port)) if !host.contains(']') || host.ends_with(']') => {
                (host.to_string(), port.to_string())
            }
            _ => (s.to_string(), String::new()),
        }
    };
    let (p_host, p_port) = split_port(pattern);
    let (r_host, r_port) = split_port(registry);
    if p_port != r_port {
        return false;
    }
    let p_labels: Vec<&str> = p_host.split('.').collect();
    let r_labels: Vec<&str> = r_host.split('.').collect();
    p_labels.len() == r_labels.len()
        && p_labels
            .iter()
            .zip(&r_labels)
            .all(|(p, r)| glob_label(p.as_bytes(), r.as_bytes()))
}

/// `*`-only glob over one label, without recursion.
fn glob_label(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if Some(c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

#[derive(Clone, Copy)]
enum NameKind {
    Namespace,
    Secret,
    ServiceAccount,
}

/// Namespaces are DNS-1123 labels; secrets and service accounts DNS-1123 subdomains. Anything else cannot name
/// an object, and is never put in a URL.
fn check_name(name: &str, kind: NameKind) -> Result<(), KubeApiError> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let (ok, kind) = match kind {
        NameKind::Namespace => (label_ok(name), "namespace"),
        NameKind::Secret => (name.len() <= 253 && name.split('.').all(label_ok), "secret"),
        NameKind::ServiceAccount => (
            name.len() <= 253 && name.split('.').all(label_ok),
            "service account",
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(KubeApiError::InvalidName {
            kind,
            name: shorten(name),
        })
    }
}

/// The token file's content as an `Authorization: Bearer` value, marked sensitive; or why it cannot be one.
fn bearer_header(bytes: &[u8]) -> Result<HeaderValue, &'static str> {
    let token = std::str::from_utf8(bytes).map_err(|_| "not UTF-8")?.trim();
    if token.is_empty() {
        return Err("empty");
    }
    let mut header = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "holds characters a bearer token cannot have")?;
    header.set_sensitive(true);
    Ok(header)
}

fn read_small_file(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(format!("larger than {limit} bytes"));
    }
    Ok(bytes)
}

async fn read_small_file_async(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| e.to_string())?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(format!("larger than {limit} bytes"));
    }
    Ok(bytes)
}

fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// At most [`QUOTE_LIMIT`] characters, control characters escaped.
fn shorten(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(QUOTE_LIMIT)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if text.chars().nth(QUOTE_LIMIT).is_some() {
        out.push('…');
    }
    out
}

/// A value from outside in backticks, shortened and escaped.
fn quote(text: &str) -> String {
    format!("`{}`", shorten(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_VALUE: &str = "s3cr3t-Pa55word-do-not-print";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn secret_json(kind: &str, key: &str, value: &str) -> Vec<u8> {
        serde_json::json!({
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "pull", "namespace": "team-a"},
            "type": kind,
            "data": {key: value},
        })
        .to_string()
        .into_bytes()
    }

    fn docker_config_json(auths: serde_json::Value) -> String {
        b64(serde_json::json!({ "auths": auths }).to_string().as_bytes())
    }

    fn parse(body: &[u8]) -> Result<ParsedSecret, KubeApiError> {
        parse_pull_secret("team-a", "pull", body)
    }

    fn assert_malformed(body: &[u8], expected: &str) {
        let err = match parse(body) {
            Ok(_) => panic!("accepted; expected an error with {expected:?}"),
            Err(e) => e,
        };
        let text = err.to_string();
        assert_eq!(err.code(), "pull-secret-malformed", "{text}");
        assert!(text.starts_with("pull secret `team-a/pull`: "), "{text}");
        assert!(text.contains(expected), "{text} lacks {expected:?}");
        assert!(!text.contains(SECRET_VALUE), "{text}");
        assert!(!format!("{err:?}").contains(SECRET_VALUE));
    }

    #[test]
    fn dockerconfigjson_entries_by_registry() {
        let auth = b64(format!("alice:{SECRET_VALUE}").as_bytes());
        let body = secret_json(
            SECRET_TYPE_DOCKER_CONFIG_JSON,
            SECRET_KEY_DOCKER_CONFIG_JSON,
            &docker_config_json(serde_json::json!({
                "https://index.docker.io/v1/": {"auth": auth},
                "http://Registry.Example:5000/v2/": {"username": "bob", "password": SECRET_VALUE},
                "ghcr.io": {"identitytoken": SECRET_VALUE},
                "*.corp.example": {"auth": auth},
                "empty.example": {},
            })),
        );
        let parsed = parse(&body).unwrap();
        let registries: Vec<&str> = parsed.entries.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(
            registries,
            [
                "*.corp.example",
                "ghcr.io",
                "registry.example:5000",
                "docker.io"
            ]
        );
        assert_eq!(
            parsed.entries[3].1,
            Credential::Basic {
                username: "alice".into(),
                password: SECRET_VALUE.into()
            }
        );
        assert_eq!(parsed.notes.len(), 1, "{:?}", parsed.notes);
        assert!(
            parsed.notes[0].contains("`empty.example`"),
            "{:?}",
            parsed.notes
        );

        let mut creds = PullCredentials::default();
        creds.merge(parsed);
        let creds = creds.finish();
        assert!(creds.credentials().contains_key("docker.io"));
        assert!(!creds.credentials().contains_key("*.corp.example"));
        assert!(creds.credential_for("index.docker.io").is_some());
        assert!(creds.credential_for("a.corp.example").is_some());
        assert!(creds.credential_for("a.b.corp.example").is_none());
        assert!(creds.credential_for("corp.example").is_none());
        assert_eq!(
            creds.credentials_for(["a.corp.example", "quay.io"]).len(),
            1
        );
        assert_eq!(creds.source_of("ghcr.io"), Some("team-a/pull"));
        let debug = format!("{creds:?}");
        assert!(
            debug.contains("ghcr.io") && !debug.contains(SECRET_VALUE),
            "{debug}"
        );
    }

    #[test]
    fn dockercfg_is_the_auths_map_itself() {
        let auth = b64(format!("carol:{SECRET_VALUE}").as_bytes());
        let body = secret_json(
            SECRET_TYPE_DOCKERCFG,
            SECRET_KEY_DOCKERCFG,
            &b64(
                serde_json::json!({"quay.io": {"auth": auth, "email": "c@example"}})
                    .to_string()
                    .as_bytes(),
            ),
        );
        let parsed = parse(&body).unwrap();
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(parsed.entries[0].0, "quay.io");
        assert!(parsed.notes.is_empty(), "{:?}", parsed.notes);
    }

    #[test]
    fn other_secret_types_hold_nothing() {
        let body = secret_json("Opaque", SECRET_KEY_DOCKER_CONFIG_JSON, &b64(b"{}"));
        let parsed = parse(&body).unwrap();
        assert!(parsed.entries.is_empty());
        assert!(parsed.notes[0].contains("`Opaque`"), "{:?}", parsed.notes);
    }

    #[test]
    fn malformed_secrets_name_the_secret_not_the_content() {
        let json = SECRET_TYPE_DOCKER_CONFIG_JSON;
        let key = SECRET_KEY_DOCKER_CONFIG_JSON;
        // The key of the other type only.
        assert_malformed(
            &secret_json(json, SECRET_KEY_DOCKERCFG, &b64(b"{}")),
            "without a `.dockerconfigjson` key",
        );
        assert_malformed(
            &secret_json(json, key, &format!("!!{SECRET_VALUE}")),
            "not valid base64",
        );
        assert_malformed(
            &secret_json(
                json,
                key,
                &b64(format!("{{\"auths\": {SECRET_VALUE}").as_bytes()),
            ),
            "not valid JSON",
        );
        assert_malformed(
            &secret_json(json, key, &b64(format!("[\"{SECRET_VALUE}\"]").as_bytes())),
            "not a JSON object",
        );
        assert_malformed(
            &secret_json(
                json,
                key,
                &b64(format!("{{\"auths\": \"{SECRET_VALUE}\"}}").as_bytes()),
            ),
            "`auths` is not a JSON object",
        );
        assert_malformed(
            &secret_json(
                json,
                key,
                &docker_config_json(serde_json::json!({"r.example": SECRET_VALUE})),
            ),
            "the entry for `r.example` is not a JSON object",
        );
        assert_malformed(
            &secret_json(
                json,
                key,
                &docker_config_json(
                    serde_json::json!({"r.example": {"auth": format!("%{SECRET_VALUE}")}}),
                ),
            ),
            "the entry for `r.example` is malformed",
        );
        assert_malformed(
            &secret_json(
                json,
                key,
                &docker_config_json(
                    serde_json::json!({"r.example": {"auth": b64(SECRET_VALUE.as_bytes())}}),
                ),
            ),
            "the entry for `r.example` is malformed",
        );
        assert_malformed(
            &secret_json(
                json,
                key,
                &docker_config_json(
                    serde_json::json!({"r.example": {"password": 7, "username": SECRET_VALUE}}),
                ),
            ),
            "the entry for `r.example` is malformed",
        );
        // The data map itself of the wrong type: serde_json would quote the value.
        let body = serde_json::json!({"type": json, "data": {key: [SECRET_VALUE]}}).to_string();
        assert_malformed(
            body.as_bytes(),
            "the answer is not a Secret (a value of the wrong type",
        );
        assert_malformed(
            SECRET_VALUE.as_bytes(),
            "the answer is not a Secret (not valid JSON",
        );
    }

    #[test]
    fn registries_named_twice_keep_the_first() {
        let entry = |user: &str| {
            docker_config_json(serde_json::json!({
                "ghcr.io": {"username": user, "password": SECRET_VALUE}
            }))
        };
        let mut creds = PullCredentials::default();
        for (name, user) in [("first", "u1"), ("second", "u2")] {
            let body = secret_json(
                SECRET_TYPE_DOCKER_CONFIG_JSON,
                SECRET_KEY_DOCKER_CONFIG_JSON,
                &entry(user),
            );
            creds.merge(parse_pull_secret("ns", name, &body).unwrap());
        }
        assert_eq!(
            creds.credentials()["ghcr.io"],
            Credential::Basic {
                username: "u1".into(),
                password: SECRET_VALUE.into()
            }
        );
        assert_eq!(creds.source_of("ghcr.io"), Some("ns/first"));
        assert_eq!(creds.notes().len(), 1);
        assert!(
            creds.notes()[0].contains("`ns/first` is used"),
            "{:?}",
            creds.notes()
        );
    }

    #[test]
    fn registry_keys() {
        let key = |k: &str| RegistryKey::parse(k).map(|r| (r.registry, r.scoped_to_path));
        assert_eq!(
            key("https://index.docker.io/v1/"),
            Some(("docker.io".into(), false))
        );
        assert_eq!(
            key("registry-1.docker.io"),
            Some(("docker.io".into(), false))
        );
        assert_eq!(
            key("http://127.0.0.1:5000/v2"),
            Some(("127.0.0.1:5000".into(), false))
        );
        assert_eq!(key("r.example/team-a"), Some(("r.example".into(), true)));
        assert_eq!(key("https:///v1/"), None);
        assert_eq!(key(""), None);
    }

    #[test]
    fn wildcard_patterns() {
        assert!(pattern_matches("*.example.com", "a.example.com"));
        assert!(pattern_matches("reg-*.example.com", "reg-eu.example.com"));
        assert!(pattern_matches("*.example.com:5000", "a.example.com:5000"));
        assert!(!pattern_matches("*.example.com:5000", "a.example.com"));
        assert!(!pattern_matches("*.example.com", "example.com"));
        assert!(!pattern_matches("*.example.com", "a.b.example.com"));
        assert!(!pattern_matches("reg-*.example.com", "other.example.com"));
        assert!(glob_label(b"*", b""));
        assert!(glob_label(b"a*b*c", b"aXXbYc"));
        assert!(!glob_label(b"a*b*c", b"aXXbY"));
    }

    #[test]
    fn names() {
        for ok in ["default", "team-a", "a1"] {
            assert!(check_name(ok, NameKind::Namespace).is_ok(), "{ok}");
        }
        for ok in ["regcred", "my.pull-secret", "a"] {
            assert!(check_name(ok, NameKind::Secret).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "..",
            "a/b",
            "../secrets",
            "A",
            "-a",
            "a.",
            "a b",
            "a%2fb",
            &"a".repeat(64),
        ] {
            assert!(check_name(bad, NameKind::Namespace).is_err(), "{bad}");
        }
        for bad in [
            "",
            "..",
            "a/b",
            "a..b",
            ".a",
            "UPPER",
            "a?b",
            &"a".repeat(254),
        ] {
            let err = check_name(bad, NameKind::Secret).unwrap_err();
            assert_eq!(err.code(), "kube-api-invalid-name");
        }
        assert!(check_name("my.pull-secret", NameKind::Namespace).is_err());
    }

    #[test]
    fn in_cluster_environment() {
        let dir = Path::new("/sa");
        let cfg = in_cluster_from(Some("10.96.0.1".into()), Some("443".into()), dir).unwrap();
        assert_eq!(cfg.url, "https://10.96.0.1:443");
        assert_eq!(cfg.token_file, Path::new("/sa/token"));
        assert_eq!(cfg.ca_file, Path::new("/sa/ca.crt"));
        let cfg = in_cluster_from(Some("fd00::1".into()), Some("6443".into()), dir).unwrap();
        assert_eq!(cfg.url, "https://[fd00::1]:6443");
        let err = in_cluster_from(None, Some("443".into()), dir).unwrap_err();
        assert_eq!(err.code(), "kube-api-config");
        assert!(err.to_string().contains("KUBERNETES_SERVICE_HOST"), "{err}");
        let err = in_cluster_from(Some("h".into()), Some("http".into()), dir).unwrap_err();
        assert!(err.to_string().contains("KUBERNETES_SERVICE_PORT"), "{err}");
    }

    #[test]
    fn error_codes_are_unique_kebab_case() {
        let what = || "x".to_string();
        let errors = [
            KubeApiError::Config { detail: what() },
            KubeApiError::InvalidName {
                kind: "secret",
                name: what(),
            },
            KubeApiError::Unreachable {
                what: what(),
                detail: what(),
            },
            KubeApiError::Denied {
                what: what(),
                status: 403,
                message: what(),
            },
            KubeApiError::NotFound { what: what() },
            KubeApiError::Status {
                what: what(),
                status: 500,
                message: what(),
            },
            KubeApiError::Malformed {
                what: what(),
                detail: what(),
            },
            KubeApiError::MalformedSecret {
                namespace: what(),
                name: what(),
                detail: what(),
            },
            KubeApiError::Timeout {
                what: what(),
                after: Duration::from_secs(1),
            },
        ];
        let codes: std::collections::BTreeSet<&str> =
            errors.iter().map(KubeApiError::code).collect();
        assert_eq!(codes.len(), errors.len());
        for code in codes {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{code}"
            );
        }
    }

    #[test]
    fn quotes_are_short_and_escaped() {
        assert_eq!(quote("a\nb"), "`a\\nb`");
        let long = "x".repeat(500);
        assert_eq!(shorten(&long).chars().count(), QUOTE_LIMIT + 1);
    }

    #[test]
    fn token_header_is_sensitive() {
        let header = bearer_header(format!("{SECRET_VALUE}\n").as_bytes()).unwrap();
        assert!(header.is_sensitive());
        assert_eq!(header.to_str().unwrap(), format!("Bearer {SECRET_VALUE}"));
        assert_eq!(
            bearer_header(b"bad\x01token").unwrap_err(),
            "holds characters a bearer token cannot have"
        );
        assert_eq!(bearer_header(b" \n").unwrap_err(), "empty");
        assert_eq!(bearer_header(b"\xff").unwrap_err(), "not UTF-8");
    }
}
