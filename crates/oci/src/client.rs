//! The registry client: one [`RegistryClient`] per process, cheap to clone and share across tasks.
//!
//! It holds one keep-alive HTTP/1.1 connection pool, the per-registry state (plain HTTP or HTTPS, the auth
//! scheme a registry asked for, its credential, a concurrency semaphore) and the bearer-token cache keyed by
//! (registry, scope). Every request goes through [`RegistryClient::execute`]: auth, one re-authentication on
//! 401, retries with backoff on 408/429/5xx/connection failures, bounded body reads.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use kibaship_printable::printable;
use reqwest::Method;
use reqwest::header::{self, HeaderMap};
use serde::Deserialize;
use tokio::sync::{OnceCell, Semaphore};

use crate::challenge::{Challenge, next_link, parse_challenge};
use crate::credentials::{Credential, CredentialSource, DockerConfig, run_credential_helper};
use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::{
    Descriptor, ImageIndex, MANIFEST_MEDIA_TYPES, Platform, is_index_media_type,
};
use crate::reference::Reference;
use crate::retry::{RetryPolicy, is_retryable_status, parse_retry_after};

/// Default [`ClientConfig::attempt_timeout`]: 2 minutes for one request and its whole response.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default limit for a manifest or index body: 4 MiB (distribution's own limit).
pub const DEFAULT_MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
const TOKEN_RESPONSE_LIMIT: u64 = 1024 * 1024;
/// Most bytes reserved up front for a body, whatever its `Content-Length` says.
const PREALLOCATE_LIMIT: u64 = 1024 * 1024;
const MAX_PAGES: usize = 10_000;
/// Redirects followed per request; one more is a final error (a loop does not get better on retry).
const MAX_REDIRECTS: usize = 5;
/// Longest a cached bearer token is used, whatever `expires_in` the token service announced.
const MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// How a [`RegistryClient`] behaves. `Default` is what the CLI uses without flags.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries (`host:port`, as written in references) reached over plain HTTP. All others use HTTPS.
    pub insecure_registries: Vec<String>,
    /// A PEM bundle whose certificates are trusted in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    /// Read docker `config.json` (`DOCKER_CONFIG` or `~/.docker`) for credentials.
    pub use_docker_config: bool,
    /// Read `config.json` from this directory instead of `$DOCKER_CONFIG` or `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
    /// Credentials by registry; these win over docker `config.json`.
    pub credentials: HashMap<String, Credential>,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Requests in flight per registry, at most.
    pub max_concurrent_requests_per_registry: usize,
    /// Idle keep-alive connections kept per host.
    pub max_idle_connections_per_host: usize,
    /// Limit for manifest and index bodies.
    pub max_manifest_bytes: u64,
    /// Manifests fetched by digest kept in memory (content-addressed, so never stale); 0 disables.
    pub manifest_cache_entries: usize,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    pub read_timeout: Duration,
    /// Longest one attempt may take, from connecting to the last byte of the response: a body that trickles
    /// in, a byte at a time, ends here (and the attempt may be retried).
    pub attempt_timeout: Duration,
    /// The client's overall budget, counted from [`RegistryClient::new`]: no registry operation of this client
    /// (waits for a permit, token fetches, attempts, retries and their backoff) runs past it, and one that
    /// would fails with [`Error::Timeout`]. `None`: no overall deadline. A command-line program sets it from
    /// `--timeout`; a server handling many requests keeps `None` here and bounds each request with
    /// [`RegistryClient::with_timeout`].
    pub timeout: Option<Duration>,
    /// `User-Agent`.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            ca_file: None,
            use_docker_config: true,
            docker_config_dir: None,
            credentials: HashMap::new(),
            retry: RetryPolicy::default(),
            max_concurrent_requests_per_registry: 64,
            max_idle_connections_per_host: 64,
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            manifest_cache_entries: 1024,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            timeout: None,
            user_agent: concat!("kibaship/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// A registry client. Build it once; clones share the connection pool and caches.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
    deadline: Option<Deadline>,
    /// Credentials of this clone only (a Pod's pull secrets), checked before the client's own.
    overlay: Option<Arc<HashMap<String, Credential>>>,
}

/// Which credential a cached bearer token was fetched with: `None` for the client's own (configuration or docker
/// config, the same for every clone), else a SHA-256 over the overlay credential, so a token fetched with one
/// tenant's credential is never reused for another's request.
type CredentialKey = Option<[u8; 32]>;

fn credential_key(credential: &Credential) -> [u8; 32] {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    match credential {
        Credential::Basic { username, password } => {
            field(b"basic");
            field(username.as_bytes());
            field(password.as_bytes());
        }
        Credential::IdentityToken { username, token } => {
            field(b"identity-token");
            field(username.as_bytes());
            field(token.as_bytes());
        }
        Credential::RegistryToken(token) => {
            field(b"registry-token");
            field(token.as_bytes());
        }
    }
    hasher.finalize().into()
}

/// When the client's budget runs out, and how long it was (for messages).
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    /// `budget` from now; `None` when that is beyond what an `Instant` can hold (no deadline, in effect).
    fn after(budget: Duration) -> Option<Deadline> {
        Instant::now()
            .checked_add(budget)
            .map(|at| Deadline { at, budget })
    }
}

/// Why a bounded wait ended early.
enum Expired {
    /// The attempt's own timeout.
    Attempt,
    /// The client's overall deadline.
    Deadline(Deadline),
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    docker_config: Option<DockerConfig>,
    registries: RwLock<HashMap<String, Arc<RegistryState>>>,
    tokens: RwLock<HashMap<(String, String, CredentialKey), CachedToken>>,
    manifests_by_digest: RwLock<HashMap<String, Arc<Manifest>>>,
}

pub(crate) struct RegistryState {
    pub(crate) name: String,
    base_url: String,
    insecure: bool,
    permits: Semaphore,
    scheme: RwLock<AuthScheme>,
    credential: OnceCell<Option<Credential>>,
    token_fetch: tokio::sync::Mutex<()>,
    pub(crate) referrers_api: RwLock<HashMap<String, bool>>,
}

impl RegistryState {
    /// `path` (`/v2/...`) on this registry as an absolute URL; an absolute URL as is.
    pub(crate) fn absolute_url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base_url)
        }
    }
}

#[derive(Clone)]
enum AuthScheme {
    Unknown,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

struct CachedToken {
    value: String,
    expires: Instant,
}

/// What a request does to a repository: the actions of the token scope it asks for (distribution maps `GET`
/// and `HEAD` to `pull`, `POST`, `PUT` and `PATCH` to `pull,push`, `DELETE` to `delete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Pull,
    Push,
    Delete,
}

/// One HTTP request as the client's core sends it.
pub(crate) struct Request<'a> {
    pub method: Method,
    /// `/v2/...` (joined to the registry's base URL) or an absolute URL on the same registry.
    pub path: String,
    pub repository: &'a str,
    /// What the request does to the repository (the token scope it needs).
    pub access: Access,
    pub accept: Option<String>,
    pub content_type: Option<&'a str>,
    /// `Content-Range` of a chunk sent into an upload session (`0-1023`).
    pub content_range: Option<&'a str>,
    /// Shared, not copied, by each attempt of a retried request.
    pub body: Option<bytes::Bytes>,
    /// How many bytes of a 2xx body to accept.
    pub body_limit: u64,
    /// For errors: `manifest 127.0.0.1:5000/app:v1`.
    pub what: String,
}

impl<'a> Request<'a> {
    /// A request that sends nothing and accepts no body (a HEAD as is; reads set `accept` and `body_limit`).
    pub(crate) fn new(method: Method, path: String, repository: &'a str, what: String) -> Self {
        Request {
            method,
            path,
            repository,
            access: Access::Pull,
            accept: None,
            content_type: None,
            content_range: None,
            body: None,
            body_limit: 0,
            what,
        }
    }

    /// A push that sends `body` (`POST`, `PUT`); only an error-sized answer is read.
    pub(crate) fn upload(
        method: Method,
        path: String,
        repository: &'a str,
        body: impl Into<bytes::Bytes>,
        what: String,
    ) -> Self {
        Request {
            access: Access::Push,
            body: Some(body.into()),
            body_limit: ERROR_BODY_LIMIT,
            ..Request::new(method, path, repository, what)
        }
    }
}

/// A response read within its limit.
pub(crate) struct Fetched {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Fetched {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

enum AttemptError {
    Retryable(String),
    Fatal(Error),
    /// The overall deadline ran out during the attempt.
    Deadline(Deadline),
}

/// An upload session that holds bytes not yet committed as a blob ([`RegistryClient::start_blob_upload`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobUpload {
    repository: Reference,
    /// The session's URL, as the registry's last answer named it.
    location: String,
    /// Bytes sent into it.
    sent: u64,
}

impl BlobUpload {
    /// The repository the blob goes into.
    pub fn repository(&self) -> &Reference {
        &self.repository
    }

    /// How many bytes were sent into the session.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

/// The outcome of [`RegistryClient::resolve_digest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The digest: of the manifest the reference names, or of the platform's manifest inside an index.
    pub digest: Digest,
    /// Media type of what `digest` names, when known.
    pub media_type: Option<String>,
    /// Size of what `digest` names, when known.
    pub size: Option<u64>,
}

/// A manifest read from a registry, digest-verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The exact bytes served.
    pub bytes: Vec<u8>,
    /// `Content-Type` (or the body's `mediaType`).
    pub media_type: String,
    /// The digest of `bytes`.
    pub digest: Digest,
}

impl Manifest {
    /// This manifest as a descriptor.
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::of(&self.media_type, &self.bytes);
        d.digest = self.digest.clone();
        d
    }
}

/// The outcome of a manifest push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedManifest {
    /// The digest of the pushed bytes (checked against `Docker-Content-Digest`).
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Whether the registry answered `OCI-Subject` (it indexed the manifest's subject for referrers).
    pub subject_indexed: bool,
}

impl RegistryClient {
    /// Builds the client: HTTP/1.1 keep-alive pool, rustls with the system roots plus `ca_file`, credentials.
    pub fn new(config: ClientConfig) -> Result<RegistryClient, Error> {
        let mut builder = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(config.max_idle_connections_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .tcp_nodelay(true)
            .user_agent(config.user_agent.clone())
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(Error::Config(format!(
                    "CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {}", cause_chain(&e))))?;
        let docker_config = match (&config.docker_config_dir, config.use_docker_config) {
            (_, false) => None,
            (Some(dir), true) => {
                let path = dir.join("config.json");
                if path.exists() {
                    Some(DockerConfig::load(&path)?)
                } else {
                    None
                }
            }
            (None, true) => DockerConfig::load_default()?,
        };
        let deadline = config.timeout.and_then(Deadline::after);
        Ok(RegistryClient {
            deadline,
            overlay: None,
            inner: Arc::new(Inner {
                http,
                config,
                docker_config,
                registries: RwLock::new(HashMap::new()),
                tokens: RwLock::new(HashMap::new()),
                manifests_by_digest: RwLock::new(HashMap::new()),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// A clone (same connection pool, caches and tokens) whose operations all end within `timeout` from now,
    /// or at this client's own deadline if that comes first: what a server sets from one request's budget
    /// (an admission webhook's timeout, say). Past it, operations fail with [`Error::Timeout`].
    pub fn with_timeout(&self, timeout: Duration) -> RegistryClient {
        let wanted = Deadline::after(timeout);
        let deadline = match (self.deadline, wanted) {
            (Some(own), Some(new)) if own.at <= new.at => Some(own),
            (own, None) => own,
            (_, new) => new,
        };
        RegistryClient {
            inner: Arc::clone(&self.inner),
            deadline,
            overlay: self.overlay.clone(),
        }
    }

    /// A clone (same connection pool and caches) that uses `credentials` (by registry, as [`Reference::registry`]
    /// names it) before the client's own: what an admission webhook does with a Pod's pull secrets. Bearer
    /// tokens fetched with these credentials are cached for them only. Keeps this client's deadline.
    pub fn with_credentials(&self, credentials: HashMap<String, Credential>) -> RegistryClient {
        RegistryClient {
            inner: Arc::clone(&self.inner),
            deadline: self.deadline,
            overlay: (!credentials.is_empty()).then(|| Arc::new(credentials)),
        }
    }

    /// The overlay credential for `registry`, if this clone has one.
    fn overlay_credential(&self, registry: &str) -> Option<&Credential> {
        self.overlay.as_ref().and_then(|o| o.get(registry))
    }

    /// The token cache key of `scope` on `reg` for this clone.
    fn token_key(&self, reg: &RegistryState, scope: &str) -> (String, String, CredentialKey) {
        (
            reg.name.clone(),
            scope.to_string(),
            self.overlay_credential(&reg.name).map(credential_key),
        )
    }

    /// Runs `work` within `attempt` and the overall deadline, whichever ends first.
    async fn bounded<T>(
        &self,
        attempt: Duration,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, Expired> {
        let attempt_end = Instant::now().checked_add(attempt);
        match self.deadline {
            Some(d) if attempt_end.is_none_or(|end| d.at <= end) => {
                tokio::time::timeout_at(d.at.into(), work)
                    .await
                    .map_err(|_| Expired::Deadline(d))
            }
            _ => tokio::time::timeout(attempt, work)
                .await
                .map_err(|_| Expired::Attempt),
        }
    }

    pub(crate) fn registry(&self, reference: &Reference) -> Arc<RegistryState> {
        let name = reference.registry();
        if let Some(state) = read_lock(&self.inner.registries).get(name) {
            return state.clone();
        }
        let mut map = write_lock(&self.inner.registries);
        map.entry(name.to_string())
            .or_insert_with(|| {
                let insecure = self
                    .inner
                    .config
                    .insecure_registries
                    .iter()
                    .any(|r| r == name);
                let scheme = if insecure { "http" } else { "https" };
                Arc::new(RegistryState {
                    name: name.to_string(),
                    base_url: format!("{scheme}://{}", reference.api_host()),
                    insecure,
                    permits: Semaphore::new(
                        self.inner
                            .config
                            .max_concurrent_requests_per_registry
                            .max(1),
                    ),
                    scheme: RwLock::new(AuthScheme::Unknown),
                    credential: OnceCell::new(),
                    token_fetch: tokio::sync::Mutex::new(()),
                    referrers_api: RwLock::new(HashMap::new()),
                })
            })
            .clone()
    }

    // ----- digests and manifests -----

    /// Resolves a reference to a digest. HEAD with the four manifest media types; a GET (digest verified)
    /// when HEAD gives no `Docker-Content-Digest`; with `platform`, an index is fetched (verified) and the
    /// matching platform manifest's digest returned. A non-index manifest is returned as is.
    pub async fn resolve_digest(
        &self,
        reference: &Reference,
        platform: Option<&Platform>,
    ) -> Result<Resolved, Error> {
        let reg = self.registry(reference);
        let head = self
            .execute(
                &reg,
                &Request {
                    accept: Some(MANIFEST_MEDIA_TYPES.join(", ")),
                    ..Request::new(
                        Method::HEAD,
                        manifest_path(reference, &reference.manifest_reference()),
                        reference.repository(),
                        format!("manifest {reference}"),
                    )
                },
            )
            .await?;
        let head = check_status(&reg, head, "manifest", &reference.to_string(), "HEAD")?;
        let header_digest = match head.header("docker-content-digest") {
            Some(d) => Some(Digest::parse(d.trim()).map_err(|e| Error::Protocol {
                registry: reg.name.clone(),
                what: "Docker-Content-Digest header".into(),
                detail: e.to_string(),
            })?),
            None => None,
        };
        let media_type = head
            .header("content-type")
            .map(|c| c.split(';').next().unwrap_or(c).trim().to_string());
        if let Some(digest) = header_digest {
            if let Some(want) = reference.digest() {
                if *want != digest {
                    return Err(Error::DigestMismatch {
                        registry: reg.name.clone(),
                        what: format!("manifest {reference}"),
                        expected: want.to_string(),
                        actual: digest.to_string(),
                    });
                }
            }
            let is_index = media_type.as_deref().is_some_and(is_index_media_type);
            match platform {
                Some(p) if is_index => {
                    let index = self.fetch_manifest(&reference.with_digest(digest)).await?;
                    self.select_from_index(reference, &index, p)
                }
                _ => Ok(Resolved {
                    digest,
                    media_type,
                    size: head.header("content-length").and_then(|l| l.parse().ok()),
                }),
            }
        } else {
            let manifest = self.fetch_manifest(reference).await?;
            match platform {
                Some(p) if is_index_media_type(&manifest.media_type) => {
                    self.select_from_index(reference, &manifest, p)
                }
                _ => Ok(Resolved {
                    digest: manifest.digest.clone(),
                    size: Some(manifest.bytes.len() as u64),
                    media_type: Some(manifest.media_type),
                }),
            }
        }
    }

    fn select_from_index(
        &self,
        reference: &Reference,
        index: &Manifest,
        platform: &Platform,
    ) -> Result<Resolved, Error> {
        let parsed: ImageIndex =
            serde_json::from_slice(&index.bytes).map_err(|e| Error::Protocol {
                registry: reference.registry().to_string(),
                what: format!("index {reference}"),
                detail: e.to_string(),
            })?;
        let chosen = parsed
            .select_platform(platform)
            .ok_or_else(|| Error::NoPlatformMatch {
                reference: reference.to_string(),
                platform: platform.to_string(),
                available: parsed.platforms().join(", "),
            })?;
        Ok(Resolved {
            digest: chosen.digest.clone(),
            media_type: Some(chosen.media_type.clone()),
            size: Some(chosen.size),
        })
    }

    /// GETs a manifest (any of the four media types) within the manifest size limit, and verifies its digest
    /// against the reference's digest and the registry's `Docker-Content-Digest`.
    pub async fn fetch_manifest(&self, reference: &Reference) -> Result<Manifest, Error> {
        self.fetch_manifest_accepting(reference, &MANIFEST_MEDIA_TYPES.join(", "))
            .await
    }

    /// Like [`Self::fetch_manifest`], `Ok(None)` when the registry answers 404.
    pub async fn fetch_manifest_if_exists(
        &self,
        reference: &Reference,
    ) -> Result<Option<Manifest>, Error> {
        match self.fetch_manifest(reference).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn fetch_manifest_accepting(
        &self,
        reference: &Reference,
        accept: &str,
    ) -> Result<Manifest, Error> {
        let cache_key = reference
            .digest()
            .map(|d| format!("{}/{}@{d}", reference.registry(), reference.repository()));
        if let Some(key) = &cache_key {
            if let Some(hit) = read_lock(&self.inner.manifests_by_digest).get(key) {
                return Ok(Manifest::clone(hit));
            }
        }
        let reg = self.registry(reference);
        let what = format!("manifest {reference}");
        let fetched = self
            .execute(
                &reg,
                &Request {
                    accept: Some(accept.to_string()),
                    body_limit: self.inner.config.max_manifest_bytes,
                    ..Request::new(
                        Method::GET,
                        manifest_path(reference, &reference.manifest_reference()),
                        reference.repository(),
                        what.clone(),
                    )
                },
            )
            .await?;
        let fetched = check_status(&reg, fetched, "manifest", &reference.to_string(), "GET")?;
        let computed = match reference.digest() {
            Some(want) => {
                let got = want.recompute(&fetched.body);
                if got != *want {
                    return Err(Error::DigestMismatch {
                        registry: reg.name.clone(),
                        what,
                        expected: want.to_string(),
                        actual: got.to_string(),
                    });
                }
                got
            }
            None => Digest::sha256_of(&fetched.body),
        };
        if let Some(announced) = fetched
            .header("docker-content-digest")
            .and_then(|d| Digest::parse(d.trim()).ok())
        {
            let got = announced.recompute(&fetched.body);
            if got != announced {
                return Err(Error::DigestMismatch {
                    registry: reg.name.clone(),
                    what,
                    expected: announced.to_string(),
                    actual: got.to_string(),
                });
            }
        }
        let media_type = match fetched
            .header("content-type")
            .map(|c| c.split(';').next().unwrap_or(c).trim())
        {
            Some(ct)
                if !ct.is_empty()
                    && ct != "application/json"
                    && ct != "application/octet-stream" =>
            {
                ct.to_string()
            }
            _ => body_media_type(&fetched.body).unwrap_or_else(|| "application/json".to_string()),
        };
        let manifest = Manifest {
            bytes: fetched.body,
            media_type,
            digest: computed,
        };
        let limit = self.inner.config.manifest_cache_entries;
        if let (Some(key), true) = (cache_key, limit > 0) {
            let mut cache = write_lock(&self.inner.manifests_by_digest);
            if cache.len() >= limit {
                // Content-addressed entries never go stale; a full cache simply starts over.
                cache.clear();
            }
            cache.insert(key, Arc::new(manifest.clone()));
        }
        Ok(manifest)
    }

    /// PUTs `bytes` as a manifest of `media_type` under the reference's tag (or digest) and checks the
    /// digest the registry reports.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<PushedManifest, Error> {
        let reg = self.registry(reference);
        let what = format!("manifest for {reference}");
        let limit = self.inner.config.max_manifest_bytes;
        if bytes.len() as u64 > limit {
            return Err(Error::TooLarge {
                registry: reg.name.clone(),
                what,
                limit,
                size: Some(bytes.len() as u64),
            });
        }
        let digest = Digest::sha256_of(bytes);
        if let Some(want) = reference.digest() {
            if *want != digest {
                return Err(Error::DigestMismatch {
                    registry: reg.name.clone(),
                    what,
                    expected: want.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let fetched = self
            .execute(
                &reg,
                &Request {
                    content_type: Some(media_type),
                    ..Request::upload(
                        Method::PUT,
                        manifest_path(reference, &reference.manifest_reference()),
                        reference.repository(),
                        bytes.to_vec(),
                        what.clone(),
                    )
                },
            )
            .await?;
        let fetched = check_status(&reg, fetched, "repository", &reference.to_string(), "PUT")?;
        if let Some(announced) = fetched
            .header("docker-content-digest")
            .and_then(|d| Digest::parse(d.trim()).ok())
        {
            if announced != digest {
                return Err(Error::DigestMismatch {
                    registry: reg.name.clone(),
                    what: format!("{what} (Docker-Content-Digest of the push)"),
                    expected: digest.to_string(),
                    actual: announced.to_string(),
                });
            }
        }
        Ok(PushedManifest {
            digest,
            size: bytes.len() as u64,
            subject_indexed: fetched.headers.contains_key("oci-subject"),
        })
    }

    // ----- blobs -----

    /// GETs a blob of at most `max_bytes` and verifies it against `digest`.
    pub async fn fetch_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Vec<u8>, Error> {
        let reg = self.registry(repository);
        let fetched = self
            .send_blob_request(&reg, Method::GET, repository, digest, max_bytes)
            .await?;
        let fetched = check_status(
            &reg,
            fetched,
            "blob",
            &format!("{}@{digest}", repository.name()),
            "GET",
        )?;
        let got = digest.recompute(&fetched.body);
        if got != *digest {
            return Err(Error::DigestMismatch {
                registry: reg.name.clone(),
                what: format!("blob {}@{digest}", repository.name()),
                expected: digest.to_string(),
                actual: got.to_string(),
            });
        }
        Ok(fetched.body)
    }

    /// Whether the repository holds the blob.
    pub async fn blob_exists(
        &self,
        repository: &Reference,
        digest: &Digest,
    ) -> Result<bool, Error> {
        let reg = self.registry(repository);
        let fetched = self
            .send_blob_request(&reg, Method::HEAD, repository, digest, 0)
            .await?;
        if fetched.status == 404 {
            return Ok(false);
        }
        check_status(
            &reg,
            fetched,
            "blob",
            &format!("{}@{digest}", repository.name()),
            "HEAD",
        )
        .map(|_| true)
    }

    /// Sends `method` (GET or HEAD) for the blob `digest`, accepting a 2xx body of at most `body_limit` bytes.
    async fn send_blob_request(
        &self,
        reg: &RegistryState,
        method: Method,
        repository: &Reference,
        digest: &Digest,
        body_limit: u64,
    ) -> Result<Fetched, Error> {
        self.execute(
            reg,
            &Request {
                body_limit,
                ..Request::new(
                    method,
                    format!("/v2/{}/blobs/{digest}", repository.repository()),
                    repository.repository(),
                    format!("blob {}@{digest}", repository.name()),
                )
            },
        )
        .await
    }

    /// Uploads `bytes` as a blob (monolithic POST + PUT) unless the repository has it; returns its digest.
    pub async fn push_blob(&self, repository: &Reference, bytes: &[u8]) -> Result<Digest, Error> {
        let digest = Digest::sha256_of(bytes);
        self.upload_blob(repository, &digest, || bytes::Bytes::copy_from_slice(bytes))
            .await?;
        Ok(digest)
    }

    /// [`push_blob`](Self::push_blob) of a blob whose digest the caller has computed already: a large blob is
    /// then hashed once and sent without being copied. The registry checks the digest.
    pub async fn push_blob_with_digest(
        &self,
        repository: &Reference,
        blob: bytes::Bytes,
        digest: &Digest,
    ) -> Result<(), Error> {
        self.upload_blob(repository, digest, move || blob).await
    }

    async fn upload_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
        body: impl FnOnce() -> bytes::Bytes,
    ) -> Result<(), Error> {
        if self.blob_exists(repository, digest).await? {
            return Ok(());
        }
        let upload = self.start_blob_upload(repository).await?;
        self.close_blob_upload(&upload, digest, body()).await
    }

    /// Opens an upload session in `repository` (`POST .../blobs/uploads/`) for a blob that is sent now and
    /// committed later: [`Self::send_blob_upload`], then [`Self::commit_blob_upload`] or
    /// [`Self::cancel_blob_upload`]. Until the commit the registry holds the bytes in the session only: no blob
    /// of that digest exists, nothing lists or serves it. A caller can so send a large blob while it still
    /// checks the content, and push nothing if the check fails.
    pub async fn start_blob_upload(&self, repository: &Reference) -> Result<BlobUpload, Error> {
        let reg = self.registry(repository);
        let started = self
            .execute(
                &reg,
                &Request::upload(
                    Method::POST,
                    format!("/v2/{}/blobs/uploads/", repository.repository()),
                    repository.repository(),
                    Vec::new(),
                    format!("blob upload to {}", repository.name()),
                ),
            )
            .await?;
        let started = check_status(&reg, started, "repository", &repository.name(), "POST")?;
        let location = self.upload_location(&reg, &started)?;
        Ok(BlobUpload {
            repository: repository.clone(),
            location,
            sent: 0,
        })
    }

    /// Sends all of `blob` into a session just opened (one `PATCH` with `Content-Range: 0-<last>`); returns the
    /// session as the registry now names it (registries may change the URL of a session after each chunk).
    pub async fn send_blob_upload(
        &self,
        upload: &BlobUpload,
        blob: bytes::Bytes,
    ) -> Result<BlobUpload, Error> {
        let repository = &upload.repository;
        let reg = self.registry(repository);
        if upload.sent != 0 || blob.is_empty() {
            return Err(Error::Config(format!(
                "blob upload to {}: a session takes one non-empty chunk, from its start",
                repository.name()
            )));
        }
        let size = blob.len() as u64;
        let range = format!("0-{}", size - 1);
        let sent = self
            .execute(
                &reg,
                &Request {
                    content_type: Some("application/octet-stream"),
                    content_range: Some(&range),
                    ..Request::upload(
                        Method::PATCH,
                        upload.location.clone(),
                        repository.repository(),
                        blob,
                        format!("blob upload to {}", repository.name()),
                    )
                },
            )
            .await?;
        let sent = check_status(&reg, sent, "blob upload", &repository.name(), "PATCH")?;
        let location = match sent.header("location") {
            Some(_) => self.upload_location(&reg, &sent)?,
            None => upload.location.clone(),
        };
        Ok(BlobUpload {
            repository: repository.clone(),
            location,
            sent: size,
        })
    }

    /// Ends a session whose bytes were sent: the registry checks that they hash to `digest` and only then
    /// stores the blob (`PUT <session>?digest=...`, with no body).
    pub async fn commit_blob_upload(
        &self,
        upload: &BlobUpload,
        digest: &Digest,
    ) -> Result<(), Error> {
        self.close_blob_upload(upload, digest, bytes::Bytes::new())
            .await
    }

    /// `PUT <session>?digest=...` with the last bytes of the blob (all of them in a monolithic upload).
    async fn close_blob_upload(
        &self,
        upload: &BlobUpload,
        digest: &Digest,
        last: bytes::Bytes,
    ) -> Result<(), Error> {
        let repository = &upload.repository;
        let reg = self.registry(repository);
        let mut url = upload.location.clone();
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={digest}"));
        let done = self
            .execute(
                &reg,
                &Request {
                    content_type: Some("application/octet-stream"),
                    ..Request::upload(
                        Method::PUT,
                        url,
                        repository.repository(),
                        last,
                        format!("blob upload to {}", repository.name()),
                    )
                },
            )
            .await?;
        check_status(&reg, done, "blob upload", &repository.name(), "PUT")?;
        Ok(())
    }

    /// Abandons a session (`DELETE <session>`): the registry drops what was sent. Registries that cannot cancel
    /// a session (go-containerregistry's answers 400) keep it until they expire it; it never becomes a blob.
    pub async fn cancel_blob_upload(&self, upload: &BlobUpload) -> Result<(), Error> {
        let repository = &upload.repository;
        let reg = self.registry(repository);
        let cancelled = self
            .execute(
                &reg,
                &Request {
                    access: Access::Delete,
                    body_limit: ERROR_BODY_LIMIT,
                    ..Request::new(
                        Method::DELETE,
                        upload.location.clone(),
                        repository.repository(),
                        format!("blob upload to {}", repository.name()),
                    )
                },
            )
            .await?;
        check_status(&reg, cancelled, "blob upload", &repository.name(), "DELETE")?;
        Ok(())
    }

    /// The session URL an upload response names (`Location`), on this registry.
    fn upload_location(&self, reg: &RegistryState, fetched: &Fetched) -> Result<String, Error> {
        let location = fetched.header("location").ok_or_else(|| Error::Protocol {
            registry: reg.name.clone(),
            what: "blob upload response".into(),
            detail: "no Location header".into(),
        })?;
        self.same_registry_url(reg, location)
    }

    // ----- tags -----

    /// Lists the repository's tags, following `Link: <...>; rel="next"` pages of 1000.
    pub async fn list_tags(&self, repository: &Reference) -> Result<Vec<String>, Error> {
        self.list_tags_paged(repository, 1000).await
    }

    /// Lists the repository's tags asking for pages of `page_size` (`?n=`), following `Link` headers.
    pub async fn list_tags_paged(
        &self,
        repository: &Reference,
        page_size: usize,
    ) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let reg = self.registry(repository);
        let mut path = format!(
            "/v2/{}/tags/list?n={}",
            repository.repository(),
            page_size.max(1)
        );
        let mut tags = Vec::new();
        let mut visited = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            visited.insert(reg.absolute_url(&path));
            let fetched = self
                .fetch_listing_page(
                    &reg,
                    &path,
                    repository.repository(),
                    "application/json",
                    format!("tag list of {}", repository.name()),
                )
                .await?;
            let fetched = check_status(&reg, fetched, "repository", &repository.name(), "GET")?;
            let page: TagList =
                serde_json::from_slice(&fetched.body).map_err(|e| Error::Protocol {
                    registry: reg.name.clone(),
                    what: format!("tag list of {}", repository.name()),
                    detail: e.to_string(),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match self.next_page(&reg, &fetched)? {
                Some(next) if visited.contains(&reg.absolute_url(&next)) => {
                    return Err(Error::Protocol {
                        registry: reg.name.clone(),
                        what: format!("tag list of {}", repository.name()),
                        detail: format!(
                            "its Link header points back to a page already read ({}): a loop",
                            reg.absolute_url(&next)
                        ),
                    });
                }
                Some(next) => path = next,
                None => return Ok(tags),
            }
        }
        Err(Error::Protocol {
            registry: reg.name.clone(),
            what: format!("tag list of {}", repository.name()),
            detail: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// GETs one page of a listing (tags, referrers) as `accept`, within the manifest size limit.
    pub(crate) async fn fetch_listing_page(
        &self,
        reg: &RegistryState,
        path: &str,
        repository: &str,
        accept: &str,
        what: String,
    ) -> Result<Fetched, Error> {
        self.execute(
            reg,
            &Request {
                accept: Some(accept.to_string()),
                body_limit: self.inner.config.max_manifest_bytes,
                ..Request::new(Method::GET, path.to_string(), repository, what)
            },
        )
        .await
    }

    /// Where the listing continues: the `Link: <...>; rel="next"` target on this registry, `None` on the last
    /// page.
    pub(crate) fn next_page(
        &self,
        reg: &RegistryState,
        fetched: &Fetched,
    ) -> Result<Option<String>, Error> {
        fetched
            .header("link")
            .and_then(next_link)
            .map(|next| self.same_registry_url(reg, &next))
            .transpose()
    }

    /// Turns a `Location`/`Link` target into a URL on this registry; refuses other hosts (credentials would
    /// follow the request there).
    pub(crate) fn same_registry_url(
        &self,
        reg: &RegistryState,
        target: &str,
    ) -> Result<String, Error> {
        if target.starts_with('/') {
            return Ok(format!("{}{target}", reg.base_url));
        }
        if target.starts_with(&format!("{}/", reg.base_url)) {
            return Ok(target.to_string());
        }
        Err(Error::Protocol {
            registry: reg.name.clone(),
            what: "redirect target".into(),
            detail: format!("{target:?} is not on {}", reg.base_url),
        })
    }

    // ----- the request core -----

    /// Sends one request with auth, one re-authentication on 401, and retries; reads the body within its
    /// limit. Returns any final status; callers map statuses to errors with [`check_status`].
    pub(crate) async fn execute(
        &self,
        reg: &RegistryState,
        req: &Request<'_>,
    ) -> Result<Fetched, Error> {
        let Some(deadline) = self.deadline else {
            return self.execute_within(reg, req, &mut None).await;
        };
        if Instant::now() >= deadline.at {
            return Err(timeout_error(reg, req, deadline, None));
        }
        // The deadline also bounds the waits between attempts: for a permit, credentials and tokens.
        let mut last = None;
        let outcome =
            tokio::time::timeout_at(deadline.at.into(), self.execute_within(reg, req, &mut last))
                .await;
        outcome.unwrap_or_else(|_| Err(timeout_error(reg, req, deadline, last)))
    }

    /// [`Self::execute`] without the outer deadline; `last` keeps the cause of the last failed attempt.
    async fn execute_within(
        &self,
        reg: &RegistryState,
        req: &Request<'_>,
        last_cause: &mut Option<String>,
    ) -> Result<Fetched, Error> {
        let _permit = reg
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Config("registry limiter closed".into()))?;
        let policy = &self.inner.config.retry;
        let url = reg.absolute_url(&req.path);
        let path_for_errors = url.strip_prefix(&reg.base_url).unwrap_or(&url).to_string();
        let started = Instant::now();
        let mut attempts = 0u32;
        let mut reauthenticated = false;
        loop {
            attempts += 1;
            let auth = self.authorization(reg, req.repository, req.access).await?;
            let (last, retry_after) = match self.attempt(reg, &url, req, auth.as_deref()).await {
                Ok(f) if f.status == 401 && !reauthenticated => {
                    reauthenticated = true;
                    attempts -= 1;
                    self.on_unauthorized(reg, &f, req, auth.as_deref()).await?;
                    continue;
                }
                Ok(f) if f.status == 401 => {
                    let configured = self.credential(reg).await?.is_some();
                    let hint = if configured {
                        ": the credentials were rejected or do not grant access".to_string()
                    } else {
                        format!(
                            ": credentials required and none are configured for {}",
                            reg.name
                        )
                    };
                    return Err(Error::Unauthorized {
                        registry: reg.name.clone(),
                        reference: req.what.clone(),
                        status: 401,
                        detail: format!("{}{hint}", error_detail(&f.body)),
                    });
                }
                Ok(f) if is_retryable_status(f.status) => {
                    let retry_after = f
                        .header("retry-after")
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let mut cause = format!("HTTP {}{}", f.status, error_detail(&f.body));
                    if let Some(ra) = f.header("retry-after") {
                        cause.push_str(&format!(" (Retry-After: {})", printable(ra, 64)));
                    }
                    (cause, retry_after)
                }
                Ok(f) => return Ok(f),
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Deadline(d)) => {
                    return Err(timeout_error(reg, req, d, last_cause.take()));
                }
                Err(AttemptError::Retryable(cause)) => (cause, None),
            };
            *last_cause = Some(last.clone());
            let delay = policy.delay(attempts, retry_after);
            if attempts >= policy.max_attempts
                || started.elapsed().saturating_add(delay) > policy.max_total
            {
                return Err(Error::RetriesExhausted {
                    registry: reg.name.clone(),
                    method: req.method.to_string(),
                    path: path_for_errors,
                    attempts,
                    elapsed_ms: started.elapsed().as_millis(),
                    last,
                });
            }
            // No sleep past the deadline: if the next attempt could not start before it, stop now.
            if let Some(d) = self.deadline {
                if Instant::now()
                    .checked_add(delay)
                    .is_none_or(|next| next >= d.at)
                {
                    return Err(timeout_error(reg, req, d, Some(last)));
                }
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// One request and its whole response, within the attempt timeout and the overall deadline.
    async fn attempt(
        &self,
        reg: &RegistryState,
        url: &str,
        req: &Request<'_>,
        auth: Option<&str>,
    ) -> Result<Fetched, AttemptError> {
        let limit = self.inner.config.attempt_timeout;
        match self
            .bounded(limit, self.attempt_unbounded(reg, url, req, auth))
            .await
        {
            Ok(outcome) => outcome,
            Err(Expired::Attempt) => Err(AttemptError::Retryable(format!(
                "no complete response within {} (the attempt timeout)",
                crate::duration::format_duration(limit)
            ))),
            Err(Expired::Deadline(d)) => Err(AttemptError::Deadline(d)),
        }
    }

    async fn attempt_unbounded(
        &self,
        reg: &RegistryState,
        url: &str,
        req: &Request<'_>,
        auth: Option<&str>,
    ) -> Result<Fetched, AttemptError> {
        let mut builder = self.inner.http.request(req.method.clone(), url);
        if let Some(accept) = &req.accept {
            builder = builder.header(header::ACCEPT, accept);
        }
        if let Some(ct) = req.content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        if let Some(range) = req.content_range {
            builder = builder.header(header::CONTENT_RANGE, range);
        }
        if let Some(auth) = auth {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let mut resp = builder.send().await.map_err(|e| {
            let cause = cause_chain(&e);
            let fatal = |cause: String| {
                AttemptError::Fatal(Error::Transport {
                    registry: reg.name.clone(),
                    method: req.method.to_string(),
                    path: url.strip_prefix(&reg.base_url).unwrap_or(url).to_string(),
                    cause,
                })
            };
            // Retrying cannot help these: the same request would fail the same way.
            if crate::tls::untrusted_certificate(&e).is_some() {
                AttemptError::Fatal(Error::UntrustedCertificate {
                    registry: reg.name.clone(),
                    method: req.method.to_string(),
                    path: url.strip_prefix(&reg.base_url).unwrap_or(url).to_string(),
                    cause,
                })
            } else if e.is_redirect() {
                fatal(format!(
                    "{cause} (more than {MAX_REDIRECTS} redirects: a redirect loop?)"
                ))
            } else if e.is_builder() {
                fatal(format!("the request cannot be built: {cause}"))
            } else {
                AttemptError::Retryable(cause)
            }
        })?;
        let status = resp.status().as_u16();
        let success = (200..300).contains(&status);
        let limit = if req.method == Method::HEAD {
            0
        } else if success {
            req.body_limit
        } else {
            ERROR_BODY_LIMIT
        };
        let headers = std::mem::take(resp.headers_mut());
        let body = if req.method == Method::HEAD {
            Vec::new()
        } else {
            match read_limited(&mut resp, limit).await {
                Ok(body) => body,
                Err(ReadError::TooLarge(size)) if success => {
                    return Err(AttemptError::Fatal(Error::TooLarge {
                        registry: reg.name.clone(),
                        what: req.what.clone(),
                        limit,
                        size,
                    }));
                }
                // an oversized error body: keep what the status says
                Err(ReadError::TooLarge(_)) => Vec::new(),
                Err(ReadError::Transport(cause)) => {
                    return Err(AttemptError::Retryable(format!(
                        "reading the response body: {cause}"
                    )));
                }
            }
        };
        Ok(Fetched {
            status,
            headers,
            body,
        })
    }

    // ----- auth -----

    async fn authorization(
        &self,
        reg: &RegistryState,
        repository: &str,
        access: Access,
    ) -> Result<Option<String>, Error> {
        let scheme = read_lock(&reg.scheme).clone();
        match scheme {
            AuthScheme::Unknown => Ok(None),
            AuthScheme::Basic => Ok(match self.credential(reg).await? {
                Some(Credential::Basic { username, password }) => {
                    Some(basic_header(&username, &password))
                }
                _ => None,
            }),
            AuthScheme::Bearer { realm, service } => {
                let scope = scope_for(repository, access);
                if let Some(token) = self.cached_token(reg, &scope) {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let token = self
                    .fetch_token(reg, &realm, service.as_deref(), &scope)
                    .await?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    async fn on_unauthorized(
        &self,
        reg: &RegistryState,
        f: &Fetched,
        req: &Request<'_>,
        sent_auth: Option<&str>,
    ) -> Result<(), Error> {
        let had_auth = sent_auth.is_some();
        let denied = |detail: String| Error::Unauthorized {
            registry: reg.name.clone(),
            reference: req.what.clone(),
            status: 401,
            detail,
        };
        let header = f.header("www-authenticate").ok_or_else(|| {
            denied(format!(
                "{} (no WWW-Authenticate challenge)",
                error_detail(&f.body)
            ))
        })?;
        let challenge = parse_challenge(header).map_err(|source| Error::Challenge {
            registry: reg.name.clone(),
            source,
        })?;
        match challenge {
            Challenge::Basic => {
                let was_basic = matches!(*read_lock(&reg.scheme), AuthScheme::Basic);
                match self.credential(reg).await? {
                    Some(Credential::Basic { .. }) if !(was_basic && had_auth) => {
                        *write_lock(&reg.scheme) = AuthScheme::Basic;
                        Ok(())
                    }
                    Some(Credential::Basic { .. }) => {
                        Err(denied(": the username or password was rejected".into()))
                    }
                    Some(_) => Err(denied(
                        ": the registry asks for basic auth but the credential is a token".into(),
                    )),
                    None => Err(denied(format!(
                        ": credentials required and none are configured for {}",
                        reg.name
                    ))),
                }
            }
            Challenge::Bearer { realm, service, .. } => {
                if !reg.insecure && realm.starts_with("http://") {
                    return Err(Error::TokenService {
                        registry: reg.name.clone(),
                        realm: strip_query(&realm),
                        detail: "refusing a plain-HTTP token realm for an HTTPS registry".into(),
                    });
                }
                *write_lock(&reg.scheme) = AuthScheme::Bearer {
                    realm: realm.clone(),
                    service: service.clone(),
                };
                let scope = scope_for(req.repository, req.access);
                // Drop the cached token only if it is the one the registry just refused: concurrent requests
                // that were refused while another fetched a fresh token then reuse that one.
                if let Some(refused) = sent_auth.and_then(|a| a.strip_prefix("Bearer ")) {
                    let key = self.token_key(reg, &scope);
                    let mut tokens = write_lock(&self.inner.tokens);
                    if tokens.get(&key).is_some_and(|t| t.value == refused) {
                        tokens.remove(&key);
                    }
                }
                self.fetch_token(reg, &realm, service.as_deref(), &scope)
                    .await
                    .map(|_| ())
            }
        }
    }

    async fn credential(&self, reg: &RegistryState) -> Result<Option<Credential>, Error> {
        if let Some(c) = self.overlay_credential(&reg.name) {
            return Ok(Some(c.clone()));
        }
        reg.credential
            .get_or_try_init(|| async {
                if let Some(c) = self.inner.config.credentials.get(&reg.name) {
                    return Ok(Some(c.clone()));
                }
                let Some(cfg) = &self.inner.docker_config else {
                    return Ok(None);
                };
                match cfg.source_for(&reg.name)? {
                    CredentialSource::Inline(c) => Ok(c),
                    CredentialSource::Helper { helper, server_url } => {
                        run_credential_helper(&helper, &server_url)
                            .await
                            .map_err(Error::from)
                    }
                }
            })
            .await
            .cloned()
    }

    fn cached_token(&self, reg: &RegistryState, scope: &str) -> Option<String> {
        let key = self.token_key(reg, scope);
        let tokens = read_lock(&self.inner.tokens);
        tokens
            .get(&key)
            .filter(|t| t.expires > Instant::now())
            .map(|t| t.value.clone())
    }

    async fn fetch_token(
        &self,
        reg: &RegistryState,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, Error> {
        let _single_flight = reg.token_fetch.lock().await;
        if let Some(token) = self.cached_token(reg, scope) {
            return Ok(token);
        }
        let fail = |detail: String| Error::TokenService {
            registry: reg.name.clone(),
            realm: strip_query(realm),
            detail,
        };
        let credential = self.credential(reg).await?;
        if let Some(Credential::RegistryToken(token)) = &credential {
            if !is_header_safe(token) {
                return Err(fail(
                    "the configured registry token holds characters an HTTP header cannot carry"
                        .into(),
                ));
            }
            self.store_token(reg, scope, token.clone(), None);
            return Ok(token.clone());
        }
        let mut url =
            reqwest::Url::parse(realm).map_err(|e| fail(format!("invalid realm URL: {e}")))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(fail("realm is not an http(s) URL".into()));
        }
        let request = match &credential {
            Some(Credential::IdentityToken { token, .. }) => {
                let mut form =
                    reqwest::Url::parse("http://form.invalid/").map_err(|e| fail(e.to_string()))?;
                {
                    let mut pairs = form.query_pairs_mut();
                    pairs.append_pair("grant_type", "refresh_token");
                    pairs.append_pair("refresh_token", token);
                    pairs.append_pair("client_id", "kibaship");
                    if let Some(s) = service {
                        pairs.append_pair("service", s);
                    }
                    pairs.append_pair("scope", scope);
                }
                let body = form.query().unwrap_or_default().to_string();
                self.inner
                    .http
                    .post(url)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
            }
            other => {
                {
                    let mut pairs = url.query_pairs_mut();
                    if let Some(s) = service {
                        pairs.append_pair("service", s);
                    }
                    pairs.append_pair("scope", scope);
                }
                let mut builder = self.inner.http.get(url);
                if let Some(Credential::Basic { username, password }) = other {
                    builder =
                        builder.header(header::AUTHORIZATION, basic_header(username, password));
                }
                builder
            }
        };
        let exchange = async {
            let mut resp = request.send().await.map_err(|e| fail(cause_chain(&e)))?;
            let status = resp.status().as_u16();
            match read_limited(&mut resp, TOKEN_RESPONSE_LIMIT).await {
                Ok(body) => Ok((status, body)),
                Err(ReadError::TooLarge(_)) => Err(fail(format!(
                    "response larger than {TOKEN_RESPONSE_LIMIT} bytes"
                ))),
                Err(ReadError::Transport(c)) => Err(fail(c)),
            }
        };
        let limit = self.inner.config.attempt_timeout;
        let (status, body) = match self.bounded(limit, exchange).await {
            Ok(outcome) => outcome?,
            Err(Expired::Attempt) => {
                return Err(fail(format!(
                    "no complete answer within {} (the attempt timeout)",
                    crate::duration::format_duration(limit)
                )));
            }
            Err(Expired::Deadline(d)) => {
                return Err(Error::Timeout {
                    registry: reg.name.clone(),
                    operation: format!(
                        "fetching a token for {} from {}",
                        reg.name,
                        strip_query(realm)
                    ),
                    after: d.budget,
                    last: None,
                });
            }
        };
        if !(200..300).contains(&status) {
            let why = if status == 401 || status == 403 {
                " (credentials rejected)"
            } else {
                ""
            };
            return Err(fail(format!("HTTP {status}{why}{}", error_detail(&body))));
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            /// Any JSON number (or nothing): a negative, fractional or huge value must not fail the parse.
            #[serde(default)]
            expires_in: Option<serde_json::Value>,
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|_| fail("response is not token JSON".into()))?;
        let token = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| fail("response has neither `token` nor `access_token`".into()))?;
        if !is_header_safe(&token) {
            return Err(fail(
                "the token holds characters an HTTP header cannot carry (CR, LF or other controls)"
                    .into(),
            ));
        }
        let expires_in = parsed.expires_in.as_ref().and_then(token_lifetime_secs);
        self.store_token(reg, scope, token.clone(), expires_in);
        Ok(token)
    }

    fn store_token(
        &self,
        reg: &RegistryState,
        scope: &str,
        value: String,
        expires_in: Option<u64>,
    ) {
        // Docker's token spec: 60 s when unspecified. The registry's number is clamped to a day (a token service
        // can send anything, e.g. u64::MAX, and `Instant + Duration` panics on overflow). Refresh a little early.
        let secs = expires_in.unwrap_or(60).clamp(1, MAX_TOKEN_LIFETIME_SECS);
        let lifetime = Duration::from_secs(secs - secs / 10);
        let now = Instant::now();
        let expires = now.checked_add(lifetime).unwrap_or(now);
        let key = self.token_key(reg, scope);
        write_lock(&self.inner.tokens).insert(key, CachedToken { value, expires });
    }
}

/// The error of a request whose deadline ran out: the budget, and what was under way where.
fn timeout_error(
    reg: &RegistryState,
    req: &Request<'_>,
    deadline: Deadline,
    last: Option<String>,
) -> Error {
    let (verb, preposition) = match req.method {
        Method::GET => ("fetching", "from"),
        Method::HEAD => ("looking up", "at"),
        Method::PUT | Method::POST | Method::PATCH => ("pushing", "to"),
        _ => ("requesting", "at"),
    };
    Error::Timeout {
        registry: reg.name.clone(),
        operation: format!("{verb} {} {preposition} {}", req.what, reg.name),
        after: deadline.budget,
        last,
    }
}

/// `expires_in` of a token response in whole seconds: a non-negative integer, a fractional number rounded down,
/// anything else (negative, a string, `null`) as absent.
fn token_lifetime_secs(value: &serde_json::Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            // `as` saturates at u64::MAX for floats, so this cannot overflow.
            .map(|f| f as u64)
    })
}

/// Whether `value` can go into an `Authorization` header as is (visible ASCII and spaces, as a bearer token).
fn is_header_safe(value: &str) -> bool {
    header::HeaderValue::from_str(&format!("Bearer {value}")).is_ok()
}

fn scope_for(repository: &str, access: Access) -> String {
    let actions = match access {
        Access::Pull => "pull",
        Access::Push => "pull,push",
        Access::Delete => "delete",
    };
    format!("repository:{repository}:{actions}")
}

fn basic_header(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

fn manifest_path(reference: &Reference, target: &str) -> String {
    format!("/v2/{}/manifests/{target}", reference.repository())
}

fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

fn body_media_type(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(body)
        .ok()
        .and_then(|p| p.media_type)
}

/// Maps a final status to the client's errors: 2xx passes; 404 is not-found naming `reference`.
pub(crate) fn check_status(
    reg: &RegistryState,
    fetched: Fetched,
    what: &'static str,
    reference: &str,
    method: &str,
) -> Result<Fetched, Error> {
    let status = fetched.status;
    if (200..300).contains(&status) {
        return Ok(fetched);
    }
    let detail = error_detail(&fetched.body);
    match status {
        404 => Err(Error::NotFound {
            what,
            reference: reference.to_string(),
            registry: reg.name.clone(),
            status,
            detail,
        }),
        401 | 403 => Err(Error::Unauthorized {
            registry: reg.name.clone(),
            reference: reference.to_string(),
            status,
            detail,
        }),
        _ => Err(Error::Status {
            registry: reg.name.clone(),
            method: method.to_string(),
            path: format!("{what} {reference}"),
            status,
            detail,
        }),
    }
}

/// `: CODE (message)` from a registry's JSON error body, escaped and cut by `kibaship_printable` (the body is the
/// registry's text: control and invisible characters become `\u{hex}`); empty otherwise.
pub(crate) fn error_detail(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(parsed) = serde_json::from_slice::<Errors>(body) else {
        return String::new();
    };
    let parts: Vec<String> = parsed
        .errors
        .iter()
        .take(3)
        .map(|e| {
            if e.message.is_empty() {
                printable(&e.code, 64)
            } else {
                format!(
                    "{} ({})",
                    printable(&e.code, 64),
                    printable(&e.message, 160)
                )
            }
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    }
}

enum ReadError {
    TooLarge(Option<u64>),
    Transport(String),
}

async fn read_limited(resp: &mut reqwest::Response, limit: u64) -> Result<Vec<u8>, ReadError> {
    if let Some(len) = resp.content_length() {
        if len > limit {
            return Err(ReadError::TooLarge(Some(len)));
        }
    }
    // Content-Length comes from the network and `limit` may be a descriptor's size: reserve at most a little,
    // and let the vector grow with the bytes that really arrive.
    let reserve = resp
        .content_length()
        .unwrap_or(0)
        .min(limit)
        .min(PREALLOCATE_LIMIT);
    let mut body = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let total =
                    u64::try_from(body.len().saturating_add(chunk.len())).unwrap_or(u64::MAX);
                if total > limit {
                    return Err(ReadError::TooLarge(None));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(ReadError::Transport(cause_chain(&e))),
        }
    }
}

/// An error and its sources, joined with `: ` (reqwest's top-level message alone hides the cause).
pub(crate) fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

pub(crate) fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_details_are_short_and_clean() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown\nInjected: line","detail":{}}]}"#;
        assert_eq!(
            error_detail(body),
            ": MANIFEST_UNKNOWN (manifest unknown\\u{a}Injected: line)"
        );
        // A terminal escape, a bidirectional override and a long message from the registry: escaped, cut.
        let long = format!(
            r#"{{"errors":[{{"code":"DENIED\u001b[2J","message":"a\u202eb{}"}}]}}"#,
            "x".repeat(500)
        );
        let detail = error_detail(long.as_bytes());
        assert!(
            detail.starts_with(": DENIED\\u{1b}[2J (a\\u{202e}bxxx"),
            "{detail}"
        );
        assert!(detail.ends_with("x…)"), "{detail}");
        assert_eq!(
            detail.chars().count(),
            ": DENIED\\u{1b}[2J (".len() + 160 + 1
        );
        assert_eq!(error_detail(b"<html>"), "");
        assert_eq!(scope_for("a/b", Access::Pull), "repository:a/b:pull");
        assert_eq!(scope_for("a/b", Access::Push), "repository:a/b:pull,push");
        assert_eq!(scope_for("a/b", Access::Delete), "repository:a/b:delete");
        assert_eq!(strip_query("https://t/token?scope=x"), "https://t/token");
    }
}
