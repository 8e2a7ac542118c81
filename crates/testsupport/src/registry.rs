//! Real registries on 127.0.0.1 (or another local address, [`TestRegistry::start_with`]) for tests, benchmarks
//! and `make demo`.
//!
//! ```no_run
//! use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
//! let registry = TestRegistry::start(RegistryMode::Plain)?;
//! println!("push to {}/fixtures/app:v1", registry.host());
//! # Ok::<(), kibaship_testsupport::HarnessError>(())
//! ```

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::HarnessError;
use crate::http;
use crate::pki::TestPki;
use crate::ports::free_port;
use crate::process::{self, SupervisedProcess};
use crate::tokenserver::{TokenServer, TokenServerConfig};

/// The account created for the authenticated modes.
pub const TEST_USERNAME: &str = "kibaship";
/// `auth.token.service` of the token mode (the `aud` of its JWTs).
pub const TOKEN_SERVICE: &str = "kibaship-test-registry";
/// `auth.token.issuer` of the token mode (the `iss` of its JWTs).
pub const TOKEN_ISSUER: &str = "kibaship-test-token-server";

/// How long a registry may take to answer `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts when another process grabs the chosen port first.
const PORT_ATTEMPTS: usize = 6;

/// Which registry to run, and how it authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryMode {
    /// docker-registry, plain HTTP, no auth.
    Plain,
    /// docker-registry, HTTPS with a generated CA + htpasswd (bcrypt) basic auth.
    BasicTls,
    /// docker-registry, HTTPS with `auth: token`, our token server issuing the JWTs.
    TokenTls,
    /// go-containerregistry's registry with the OCI referrers API (crane's registry; the `ggcr-registry` peer
    /// from `make peers`), plain HTTP, no auth.
    Referrers,
}

impl RegistryMode {
    /// The name used on the `kibaship-harness` command line.
    pub fn name(self) -> &'static str {
        match self {
            RegistryMode::Plain => "plain",
            RegistryMode::BasicTls => "basic-tls",
            RegistryMode::TokenTls => "token-tls",
            RegistryMode::Referrers => "referrers",
        }
    }

    fn is_tls(self) -> bool {
        matches!(self, RegistryMode::BasicTls | RegistryMode::TokenTls)
    }
}

impl fmt::Display for RegistryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RegistryMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "plain" => Ok(RegistryMode::Plain),
            "basic-tls" => Ok(RegistryMode::BasicTls),
            "token-tls" => Ok(RegistryMode::TokenTls),
            "referrers" => Ok(RegistryMode::Referrers),
            other => Err(format!(
                "unknown registry mode {other:?} (expected plain, basic-tls, token-tls or referrers)"
            )),
        }
    }
}

/// A registry started for one test; everything it started stops on drop.
pub struct TestRegistry {
    mode: RegistryMode,
    host: String,
    pki: Option<TestPki>,
    credentials: Option<(String, String)>,
    storage_dir: PathBuf,
    process: Option<SupervisedProcess>,
    token_server: Option<TokenServer>,
    // Dropped last: the temp dir outlives the processes using it.
    dir: tempfile::TempDir,
}

impl fmt::Debug for TestRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestRegistry")
            .field("mode", &self.mode)
            .field("base_url", &self.base_url())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// Files and settings shared by in-process and detached starts.
struct Prepared {
    pki: Option<TestPki>,
    credentials: Option<(String, String)>,
    storage_dir: PathBuf,
    htpasswd: Option<PathBuf>,
}

fn random_password() -> Result<String, HarnessError> {
    let mut bytes = [0u8; 18];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|e| HarnessError::Certificates(format!("random password: {e}")))?;
    Ok(hex::encode(bytes))
}

fn prepare(mode: RegistryMode, dir: &Path) -> Result<Prepared, HarnessError> {
    let storage_dir = dir.join("storage");
    fs::create_dir_all(&storage_dir)
        .map_err(|e| HarnessError::io(format!("creating {}", storage_dir.display()), e))?;
    let pki = if mode.is_tls() {
        Some(TestPki::generate(dir)?)
    } else {
        None
    };
    let credentials = if mode.is_tls() {
        Some((TEST_USERNAME.to_string(), random_password()?))
    } else {
        None
    };
    let htpasswd = match (mode, &credentials) {
        (RegistryMode::BasicTls, Some((user, password))) => {
            Some(write_htpasswd(dir, user, password)?)
        }
        _ => None,
    };
    Ok(Prepared {
        pki,
        credentials,
        storage_dir,
        htpasswd,
    })
}

/// Writes a bcrypt htpasswd file with `htpasswd -B` (password on stdin, never on a command line).
fn write_htpasswd(dir: &Path, user: &str, password: &str) -> Result<PathBuf, HarnessError> {
    let tool = process::find_tool(
        "htpasswd",
        "apt-get install apache2-utils, or run `make deps`",
    )?;
    let path = dir.join("htpasswd");
    let mut child = Command::new(&tool)
        .args(["-B", "-i", "-c"])
        .arg(&path)
        .arg(user)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| HarnessError::Spawn {
            command: "htpasswd -B -i -c".into(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(password.as_bytes())
            .map_err(|e| HarnessError::io("writing the password to htpasswd", e))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| HarnessError::io("waiting for htpasswd", e))?;
    if !output.status.success() {
        return Err(HarnessError::CommandFailed {
            command: format!("htpasswd -B -i -c {} {user}", path.display()),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(path)
}

fn token_server_config(pki: &TestPki, credentials: &(String, String)) -> TokenServerConfig {
    TokenServerConfig {
        issuer: TOKEN_ISSUER.to_string(),
        service: TOKEN_SERVICE.to_string(),
        username: credentials.0.clone(),
        password: credentials.1.clone(),
        signing_key_der: pki.token_key_der.clone(),
        signing_cert_der: pki.token_cert_der.clone(),
        tls: Some((
            vec![pki.server_cert_der.clone(), pki.ca_der.clone()],
            pki.server_key_der.clone(),
        )),
    }
}

/// Writes docker-registry's config.yml and returns the command line that serves it. Its access log (one line per
/// request, `"PATCH /v2/... HTTP/1.1" 202`) goes to the registry's log file: tests read what a client sent there.
fn docker_registry_command(
    mode: RegistryMode,
    dir: &Path,
    prepared: &Prepared,
    addr: SocketAddr,
    token_realm: Option<&str>,
) -> Result<(PathBuf, Vec<String>), HarnessError> {
    let program = process::find_tool(
        "docker-registry",
        "apt-get install docker-registry (Debian's CNCF distribution), or run `make deps`",
    )?;
    let mut secret = [0u8; 16];
    aws_lc_rs::rand::fill(&mut secret)
        .map_err(|e| HarnessError::Certificates(format!("random secret: {e}")))?;
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {addr}\n  secret: {secret}\n  headers:\n    X-Content-Type-Options: [nosniff]\n",
        storage = yaml_str(&prepared.storage_dir),
        secret = hex::encode(secret),
    );
    if let Some(pki) = &prepared.pki {
        yaml.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            yaml_str(&pki.server_cert_pem),
            yaml_str(&pki.server_key_pem)
        ));
    }
    match mode {
        RegistryMode::BasicTls => {
            let htpasswd = prepared
                .htpasswd
                .as_deref()
                .unwrap_or(Path::new("htpasswd"));
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: kibaship-test-registry\n    path: {}\n",
                yaml_str(htpasswd)
            ));
        }
        RegistryMode::TokenTls => {
            let pki = prepared
                .pki
                .as_ref()
                .ok_or_else(|| HarnessError::Tls("token mode without PKI".into()))?;
            yaml.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                token_realm.unwrap_or_default(),
                yaml_str(&pki.ca_pem)
            ));
        }
        RegistryMode::Plain | RegistryMode::Referrers => {}
    }
    let config = dir.join("config.yml");
    fs::write(&config, yaml)
        .map_err(|e| HarnessError::io(format!("writing {}", config.display()), e))?;
    Ok((
        program,
        vec!["serve".to_string(), config.display().to_string()],
    ))
}

fn yaml_str(path: &Path) -> String {
    serde_json::Value::String(path.display().to_string()).to_string()
}

fn referrers_registry_command(
    prepared: &Prepared,
    addr: SocketAddr,
) -> Result<(PathBuf, Vec<String>), HarnessError> {
    let binary = referrers_registry_binary()?;
    Ok((
        binary,
        vec![
            "--address".into(),
            addr.to_string(),
            "--disk".into(),
            prepared.storage_dir.display().to_string(),
        ],
    ))
}

/// go-containerregistry's registry with the referrers API switched on (the `ggcr-registry` peer, built by
/// `make peers`; `crane registry serve` v0.22.1 is the same registry with that API off).
fn referrers_registry_binary() -> Result<PathBuf, HarnessError> {
    crate::peers::peer_binary("ggcr-registry")
}

fn launch_command(
    mode: RegistryMode,
    dir: &Path,
    prepared: &Prepared,
    addr: SocketAddr,
    token_realm: Option<&str>,
) -> Result<(PathBuf, Vec<String>), HarnessError> {
    match mode {
        RegistryMode::Referrers => referrers_registry_command(prepared, addr),
        _ => docker_registry_command(mode, dir, prepared, addr, token_realm),
    }
}

/// A free port on 127.0.0.1 ([`free_port`]) that `ip` can bind as well: the address to hand a registry.
fn free_addr(ip: IpAddr) -> Result<SocketAddr, HarnessError> {
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let addr = SocketAddr::new(ip, free_port()?);
        if ip == IpAddr::V4(Ipv4Addr::LOCALHOST) {
            return Ok(addr);
        }
        match TcpListener::bind(addr) {
            Ok(_) => return Ok(addr),
            // The address is not on this host (yet): no other port will do better.
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                return Err(HarnessError::io(
                    format!("binding {addr} for the registry (is {ip} an address of this host?)"),
                    e,
                ));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(HarnessError::io(
        format!("finding a free port on {ip} for the registry"),
        last.unwrap_or_else(|| std::io::ErrorKind::AddrInUse.into()),
    ))
}

/// Outcome of one readiness probe.
enum Probe {
    Ready,
    NotYet,
}

fn probe(host: &str, tls: Option<&Arc<rustls::ClientConfig>>) -> Probe {
    match http::request_once(host, tls, "GET", "/v2/", &[], &[]) {
        Ok(r) if r.status == 200 || r.status == 401 => Probe::Ready,
        _ => Probe::NotYet,
    }
}

fn mentions_port_in_use(log: &Path) -> bool {
    process::log_tail(log).contains("address already in use")
}

impl TestRegistry {
    /// Starts a registry on a free port of 127.0.0.1 and waits until `GET /v2/` answers. Its work
    /// directory (storage, config, log) is a temp dir removed on drop.
    pub fn start(mode: RegistryMode) -> Result<TestRegistry, HarnessError> {
        Self::start_under(mode, &std::env::temp_dir())
    }

    /// As [`TestRegistry::start`], with the work directory created under `parent`: a harness whose
    /// process may be killed before it drops the registry (the cluster) keeps it inside a directory its
    /// own clean-up removes.
    pub fn start_under(mode: RegistryMode, parent: &Path) -> Result<TestRegistry, HarnessError> {
        Self::start_with(mode, parent, IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// As [`TestRegistry::start_under`], listening on `listen_ip` instead of 127.0.0.1: an address this host
    /// already has, such as another loopback address or one on a bridge that a network namespace (the cluster's
    /// Pods) routes to. [`TestRegistry::host`] is then `listen_ip:PORT`; the readiness probe uses it too.
    ///
    /// Refuses the unspecified address (`0.0.0.0`, `::`): a test registry is never reachable from outside the
    /// host. The TLS modes serve a certificate for 127.0.0.1 and `localhost` only, so they run on 127.0.0.1 only.
    pub fn start_with(
        mode: RegistryMode,
        parent: &Path,
        listen_ip: IpAddr,
    ) -> Result<TestRegistry, HarnessError> {
        if listen_ip.is_unspecified() {
            return Err(HarnessError::io(
                format!("starting the {mode} registry on {listen_ip}"),
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a test registry listens on one local address, never on all of them",
                ),
            ));
        }
        if mode.is_tls() && listen_ip != IpAddr::V4(Ipv4Addr::LOCALHOST) {
            return Err(HarnessError::Tls(format!(
                "the {mode} registry's certificate names 127.0.0.1 and localhost only; it cannot listen on \
                 {listen_ip}"
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("kibaship-registry-{}-", mode.name()))
            .tempdir_in(parent)
            .map_err(|e| HarnessError::io("creating the registry's temp dir", e))?;
        let prepared = prepare(mode, dir.path())?;
        let token_server = match (mode, &prepared.pki, &prepared.credentials) {
            (RegistryMode::TokenTls, Some(pki), Some(creds)) => {
                Some(TokenServer::start(token_server_config(pki, creds))?)
            }
            _ => None,
        };
        let realm = token_server.as_ref().map(TokenServer::realm);
        let tls = match &prepared.pki {
            Some(pki) => Some(http::client_tls_config(&pki.ca_der)?),
            None => None,
        };
        let log = dir.path().join("registry.log");
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let addr = free_addr(listen_ip)?;
            let host = addr.to_string();
            let (program, args) =
                launch_command(mode, dir.path(), &prepared, addr, realm.as_deref())?;
            let mut server =
                SupervisedProcess::spawn(&format!("{mode} registry"), &program, &args, &log)?;
            match wait_ready(&mut server, &host, tls.as_ref(), &log) {
                Ok(()) => {
                    return Ok(TestRegistry {
                        mode,
                        host,
                        pki: prepared.pki,
                        credentials: prepared.credentials,
                        storage_dir: prepared.storage_dir,
                        process: Some(server),
                        token_server,
                        dir,
                    });
                }
                Err(e @ HarnessError::Exited { .. }) if mentions_port_in_use(&log) => {
                    drop(server);
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            HarnessError::io(
                "starting the registry",
                std::io::ErrorKind::AddrInUse.into(),
            )
        }))
    }

    /// The mode it runs in.
    pub fn mode(&self) -> RegistryMode {
        self.mode
    }

    /// "127.0.0.1:PORT" (the listen address of [`TestRegistry::start_with`] instead of 127.0.0.1).
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// "http://HOST" or "https://HOST", HOST as in [`TestRegistry::host`].
    pub fn base_url(&self) -> String {
        let scheme = if self.pki.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    /// The CA bundle (PEM) to trust, for the TLS modes.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.pki.as_ref().map(|p| p.ca_pem.as_path())
    }

    /// (username, password) for [`RegistryMode::BasicTls`] and [`RegistryMode::TokenTls`].
    pub fn credentials(&self) -> Option<(String, String)> {
        self.credentials.clone()
    }

    /// Stops the registry's process, keeps it stopped for `down_for`, and starts it again with the same command
    /// line, address and storage (the config, and so its upload-state secret, unchanged), as an operator's
    /// restart would; returns once `GET /v2/` answers again, with how long the registry was away. Uploads in
    /// progress are cut; requests meanwhile are refused. The token server (token mode) keeps running.
    pub fn restart(&mut self, down_for: Duration) -> Result<Duration, HarnessError> {
        let started = Instant::now();
        let tls = match &self.pki {
            Some(pki) => Some(http::client_tls_config(&pki.ca_der)?),
            None => None,
        };
        let log = self.log_path();
        let process = self.process.as_mut().ok_or_else(|| {
            HarnessError::io(
                "restarting the registry",
                std::io::Error::other("the registry has no process"),
            )
        })?;
        process.restart_after(down_for)?;
        wait_ready(process, &self.host, tls.as_ref(), &log)?;
        Ok(started.elapsed())
    }

    /// The registry's filesystem root (for tamper tests). In docker-registry modes blobs live under
    /// `docker/registry/v2/blobs/sha256/<first two hex>/<hex>/data`.
    pub fn storage_dir(&self) -> &Path {
        &self.storage_dir
    }

    /// The registry's temp dir (config, certificates, log).
    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The token server's realm URL ([`RegistryMode::TokenTls`] only).
    pub fn token_realm(&self) -> Option<String> {
        self.token_server.as_ref().map(TokenServer::realm)
    }

    /// Tokens issued so far by the token server ([`RegistryMode::TokenTls`] only).
    pub fn tokens_issued(&self) -> Option<usize> {
        self.token_server.as_ref().map(TokenServer::tokens_issued)
    }

    /// Pids of the processes this registry started (supervisor and server), to check nothing is left behind.
    pub fn process_ids(&self) -> Vec<u32> {
        self.process
            .as_ref()
            .map(|p| vec![p.supervisor_pid(), p.server_pid()])
            .unwrap_or_default()
    }

    /// The registry's log (stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// Address, CA and credentials: what a client needs to reach this registry.
    pub fn endpoint(&self) -> RegistryEndpoint {
        RegistryEndpoint {
            host: self.host(),
            ca_pem: self.ca_pem_path().map(Path::to_path_buf),
            credentials: self.credentials(),
        }
    }
}

/// How to reach a registry: address, CA bundle and credentials (a [`TestRegistry`] or one started by
/// `kibaship-harness registry start`).
#[derive(Clone)]
pub struct RegistryEndpoint {
    /// "127.0.0.1:PORT".
    pub host: String,
    /// CA bundle (PEM) for HTTPS; plain HTTP when `None`.
    pub ca_pem: Option<PathBuf>,
    /// (username, password), if the registry wants them.
    pub credentials: Option<(String, String)>,
}

impl fmt::Debug for RegistryEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryEndpoint")
            .field("host", &self.host)
            .field("ca_pem", &self.ca_pem)
            .field("username", &self.credentials.as_ref().map(|c| &c.0))
            .finish_non_exhaustive()
    }
}

impl RegistryEndpoint {
    /// TLS settings trusting the endpoint's CA (for the harness's own requests).
    pub(crate) fn client_tls(&self) -> Result<Option<Arc<rustls::ClientConfig>>, HarnessError> {
        let Some(ca) = &self.ca_pem else {
            return Ok(None);
        };
        let text = fs::read_to_string(ca)
            .map_err(|e| HarnessError::io(format!("reading {}", ca.display()), e))?;
        let der = kibaship_sigstore::pem::decode(&text, "CERTIFICATE")
            .map_err(|e| HarnessError::Tls(format!("{}: {e}", ca.display())))?;
        Ok(Some(http::client_tls_config(&der)?))
    }

    /// An `Authorization` header value granting `actions` on `repository`, following the registry's own
    /// challenge (none, Basic, or the Bearer token flow).
    pub(crate) fn authorization(
        &self,
        repository: &str,
        actions: &str,
    ) -> Result<Option<String>, HarnessError> {
        let tls = self.client_tls()?;
        let url = format!("{}/v2/", self.host);
        let response = http::request_once(&self.host, tls.as_ref(), "GET", "/v2/", &[], &[])?;
        if response.status == 200 {
            return Ok(None);
        }
        let challenge = response
            .header("www-authenticate")
            .unwrap_or_default()
            .to_string();
        let no_credentials = || HarnessError::Http {
            method: "GET".into(),
            url: url.clone(),
            reason: format!("registry wants credentials ({challenge}) and none were given"),
        };
        let (user, password) = self.credentials.as_ref().ok_or_else(no_credentials)?;
        let basic = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
        if challenge.to_ascii_lowercase().starts_with("basic") {
            return Ok(Some(basic));
        }
        let param = |name: &str| -> Option<String> {
            let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
            let end = challenge[start..].find('"')? + start;
            Some(challenge[start..end].to_string())
        };
        let (Some(realm), Some(service)) = (param("realm"), param("service")) else {
            return Err(HarnessError::Http {
                method: "GET".into(),
                url,
                reason: format!("unexpected challenge {challenge:?}"),
            });
        };
        let (scheme, rest) = realm.split_once("://").unwrap_or(("https", realm.as_str()));
        let (token_host, token_path) = rest.split_once('/').unwrap_or((rest, ""));
        let token_tls = if scheme == "https" { tls.clone() } else { None };
        let path = format!(
            "/{token_path}?service={service}&scope=repository:{repository}:{}",
            actions.replace(',', "%2C")
        );
        let response = http::request_once(
            token_host,
            token_tls.as_ref(),
            "GET",
            &path,
            &[("Authorization", &basic)],
            &[],
        )?;
        let token_error = |reason: String| HarnessError::Http {
            method: "GET".into(),
            url: realm.clone(),
            reason,
        };
        if response.status != 200 {
            return Err(token_error(format!(
                "status {}: {}",
                response.status,
                response.body_excerpt()
            )));
        }
        let json: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|e| token_error(format!("token response is not JSON: {e}")))?;
        let token = json["token"]
            .as_str()
            .ok_or_else(|| token_error("token response has no `token`".into()))?;
        Ok(Some(format!("Bearer {token}")))
    }
}

fn wait_ready(
    server: &mut SupervisedProcess,
    host: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    log: &Path,
) -> Result<(), HarnessError> {
    let started = Instant::now();
    loop {
        server.check_running()?;
        if let Probe::Ready = probe(host, tls) {
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(HarnessError::NotReady {
                what: "registry".into(),
                url: format!("{host}/v2/"),
                waited_secs: READY_TIMEOUT.as_secs(),
                log: log.to_path_buf(),
                log_tail: process::log_tail(log),
            });
        }
        thread::sleep(Duration::from_millis(25));
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(mut server) = self.process.take() {
            server.stop();
        }
        drop(self.token_server.take());
    }
}

/// A registry started by `kibaship-harness registry start`: it outlives the harness; its state lives in a
/// directory (pids, config, certificates, log, storage).
#[derive(Debug)]
pub struct DetachedRegistry {
    /// "127.0.0.1:PORT".
    pub host: String,
    /// The CA bundle for the TLS modes.
    pub ca_pem: Option<PathBuf>,
    /// Credentials for the authenticated modes.
    pub credentials: Option<(String, String)>,
    /// The registry's storage root.
    pub storage_dir: PathBuf,
}

impl DetachedRegistry {
    /// Shell lines exporting the registry's address (and CA and credentials where relevant).
    pub fn export_lines(&self) -> String {
        let mut out = format!("export KIBASHIP_REGISTRY={}\n", shell_quote(&self.host));
        if let Some(ca) = &self.ca_pem {
            out.push_str(&format!(
                "export KIBASHIP_REGISTRY_CA={}\n",
                shell_quote(&ca.display().to_string())
            ));
        }
        if let Some((user, password)) = &self.credentials {
            out.push_str(&format!(
                "export KIBASHIP_REGISTRY_USER={}\n",
                shell_quote(user)
            ));
            out.push_str(&format!(
                "export KIBASHIP_REGISTRY_PASSWORD={}\n",
                shell_quote(password)
            ));
        }
        out
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

const REGISTRY_PID: &str = "registry.pid";
const TOKEN_SERVER_PID: &str = "token-server.pid";
const TOKEN_SERVER_REALM: &str = "token-server.realm";
const CREDENTIALS_FILE: &str = "credentials";

/// Starts a registry that outlives this process, with its state in `state_dir` (created if needed, must not
/// hold a running registry). For [`RegistryMode::TokenTls`], `token_server_exe` is run as
/// `token_server_exe token-server --state-dir DIR` (the `kibaship-harness` binary).
pub fn start_detached(
    mode: RegistryMode,
    state_dir: &Path,
    token_server_exe: &Path,
) -> Result<DetachedRegistry, HarnessError> {
    let state_dir = crate::process::absolute_state_dir(state_dir)?;
    if let Some(pid) = read_pid(&state_dir.join(REGISTRY_PID)) {
        if process::process_alive(pid) {
            return Err(HarnessError::State {
                dir: state_dir.clone(),
                reason: format!(
                    "a registry (pid {pid}) is already running from here; stop it first"
                ),
            });
        }
    }
    let _ = fs::remove_dir_all(state_dir.join("storage"));
    let prepared = prepare(mode, &state_dir)?;
    let mut realm = None;
    if let (RegistryMode::TokenTls, Some((user, password))) = (mode, &prepared.credentials) {
        write_private(
            &state_dir.join(CREDENTIALS_FILE),
            &format!("{user}\n{password}\n"),
        )?;
        let _ = fs::remove_file(state_dir.join(TOKEN_SERVER_REALM));
        let log = state_dir.join("token-server.log");
        let pid = process::spawn_detached(
            token_server_exe,
            &[
                "token-server".into(),
                "--state-dir".into(),
                state_dir.display().to_string(),
            ],
            &log,
        )?;
        write_pid(&state_dir.join(TOKEN_SERVER_PID), pid)?;
        let deadline = Instant::now() + READY_TIMEOUT;
        realm = loop {
            if let Ok(text) = fs::read_to_string(state_dir.join(TOKEN_SERVER_REALM)) {
                if text.ends_with('\n') {
                    break Some(text.trim().to_string());
                }
            }
            if !process::process_alive(pid) || Instant::now() > deadline {
                return Err(HarnessError::NotReady {
                    what: "token server".into(),
                    url: "(realm file)".into(),
                    waited_secs: READY_TIMEOUT.as_secs(),
                    log: log.clone(),
                    log_tail: process::log_tail(&log),
                });
            }
            thread::sleep(Duration::from_millis(20));
        };
    }
    let tls = match &prepared.pki {
        Some(pki) => Some(http::client_tls_config(&pki.ca_der)?),
        None => None,
    };
    let log = state_dir.join("registry.log");
    for _ in 0..PORT_ATTEMPTS {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port()?);
        let host = addr.to_string();
        let (program, args) = launch_command(mode, &state_dir, &prepared, addr, realm.as_deref())?;
        let pid = process::spawn_detached(&program, &args, &log)?;
        write_pid(&state_dir.join(REGISTRY_PID), pid)?;
        let started = Instant::now();
        loop {
            if let Probe::Ready = probe(&host, tls.as_ref()) {
                return Ok(DetachedRegistry {
                    host,
                    ca_pem: prepared.pki.as_ref().map(|p| p.ca_pem.clone()),
                    credentials: prepared.credentials.clone(),
                    storage_dir: prepared.storage_dir.clone(),
                });
            }
            if !process::process_alive(pid) {
                break;
            }
            if started.elapsed() > READY_TIMEOUT {
                let _ = stop_detached(&state_dir);
                return Err(HarnessError::NotReady {
                    what: format!("{mode} registry"),
                    url: format!("{host}/v2/"),
                    waited_secs: READY_TIMEOUT.as_secs(),
                    log: log.clone(),
                    log_tail: process::log_tail(&log),
                });
            }
            thread::sleep(Duration::from_millis(25));
        }
        process::stop_detached(pid, Duration::from_secs(1));
        if !mentions_port_in_use(&log) {
            let _ = stop_detached(&state_dir);
            return Err(HarnessError::Exited {
                what: format!("{mode} registry"),
                status: "exited".into(),
                log: log.clone(),
                log_tail: process::log_tail(&log),
            });
        }
    }
    let _ = stop_detached(&state_dir);
    Err(HarnessError::io(
        "starting the registry",
        std::io::ErrorKind::AddrInUse.into(),
    ))
}

/// Stops what [`start_detached`] started from `state_dir`. Returns how many processes were stopped.
/// Only processes whose command line names the state directory are signalled, so a pid reused by an
/// unrelated process after the registry died is left alone.
pub fn stop_detached(state_dir: &Path) -> Result<usize, HarnessError> {
    let state_dir = state_dir
        .canonicalize()
        .unwrap_or_else(|_| state_dir.to_path_buf());
    let mut stopped = 0;
    let mut stuck = Vec::new();
    for name in [REGISTRY_PID, TOKEN_SERVER_PID] {
        let path = state_dir.join(name);
        if let Some(pid) = read_pid(&path) {
            if process::process_alive(pid) && command_line_mentions(pid, &state_dir) {
                if process::stop_detached(pid, Duration::from_secs(5)) {
                    stopped += 1;
                } else {
                    stuck.push(pid);
                }
            }
            let _ = fs::remove_file(&path);
        }
    }
    if stuck.is_empty() {
        Ok(stopped)
    } else {
        Err(HarnessError::State {
            dir: state_dir.to_path_buf(),
            reason: format!("processes {stuck:?} did not stop"),
        })
    }
}

/// Runs the token server of a detached token-mode registry until killed (`kibaship-harness token-server`).
pub fn serve_detached_token_server(state_dir: &Path) -> Result<(), HarnessError> {
    let pki = TestPki::load(state_dir)?;
    let creds_path = state_dir.join(CREDENTIALS_FILE);
    let text = fs::read_to_string(&creds_path)
        .map_err(|e| HarnessError::io(format!("reading {}", creds_path.display()), e))?;
    let mut lines = text.lines();
    let (Some(user), Some(password)) = (lines.next(), lines.next()) else {
        return Err(HarnessError::State {
            dir: state_dir.to_path_buf(),
            reason: "credentials file is incomplete".into(),
        });
    };
    let server = TokenServer::start(token_server_config(
        &pki,
        &(user.to_string(), password.to_string()),
    ))?;
    let realm_path = state_dir.join(TOKEN_SERVER_REALM);
    fs::write(&realm_path, format!("{}\n", server.realm()))
        .map_err(|e| HarnessError::io(format!("writing {}", realm_path.display()), e))?;
    server.wait();
    Ok(())
}

fn command_line_mentions(pid: u32, state_dir: &Path) -> bool {
    let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = state_dir.display().to_string();
    String::from_utf8_lossy(&raw).contains(&needle)
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn write_pid(path: &Path, pid: u32) -> Result<(), HarnessError> {
    fs::write(path, format!("{pid}\n"))
        .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))
}

fn write_private(path: &Path, contents: &str) -> Result<(), HarnessError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))
}
