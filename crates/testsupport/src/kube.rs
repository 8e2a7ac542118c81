//! A real Kubernetes API server on loopback, for admission-webhook and manifest tests.
//!
//! [`KubeApiServer::start`] does what `scripts/peers/smoke-kube-apiserver.sh` does, per instance: Debian's etcd
//! (`etcd-server`) on two free ports with its data in the instance's temp dir, and the `kube-apiserver` peer
//! (`make peers`) on a free port of 127.0.0.1 with
//! - a serving certificate for `127.0.0.1`/`localhost` from a CA made for this instance ([`KubeApiServer::ca_pem`]),
//! - one static bearer token in group `system:masters` ([`KubeApiServer::token`]), RBAC authorization,
//! - ServiceAccount admission off (no controller manager creates `default` service accounts, so every Pod would be
//!   refused for lacking one) and the `kubernetes` Service endpoint reconciler off (it refuses a loopback
//!   advertise address).
//!
//! There is no kubelet, scheduler or controller manager: objects are stored and admitted (webhooks, Pod Security,
//! RBAC, validation all run) but nothing runs; a Pod stays `Pending`. The `kubectl` peer, built at the same
//! version, talks to it through [`KubeApiServer::kubectl`].
//!
//! ```no_run
//! use kibaship_testsupport::kube::KubeApiServer;
//! let api = KubeApiServer::start()?;
//! let out = api.kubectl(&["create", "namespace", "demo"]);
//! assert!(out.status.success());
//! # Ok::<(), kibaship_testsupport::HarnessError>(())
//! ```
//!
//! Dropping the value kills both processes (SIGKILL: kube-apiserver's graceful shutdown takes minutes and the
//! store is thrown away anyway) and removes the temp dir, except while the thread panics: then the directory,
//! with `etcd.log` and `kube-apiserver.log`, is kept and its path printed on stderr.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::HarnessError;
use crate::http;
use crate::ports::free_port;
use crate::process::{self, SupervisedProcess};

/// How long etcd may take to answer `/health`.
const ETCD_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long kube-apiserver may take to answer `/readyz` with `ok` (about 2 s on an idle machine; the bound is
/// only there so that a broken start fails instead of hanging).
const API_READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Attempts when another process grabs a chosen port first.
const PORT_ATTEMPTS: usize = 6;
/// Tries of [`KubeApiServer::apply_webhook_configuration`]'s check, half a second apart.
pub const WEBHOOK_TRIES: u32 = 120;
/// The pause between those tries.
pub const WEBHOOK_PAUSE: Duration = Duration::from_millis(500);
/// The user name of the static token.
pub const TOKEN_USER: &str = "kibaship-test";

/// kube-apiserver and its etcd, started for one test; both stop on drop.
pub struct KubeApiServer {
    url: String,
    token: String,
    ca_pem: String,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    webhook_ca: CertifiedIssuer<'static, KeyPair>,
    // Field order is drop order, and Drop stops the processes before the directory goes.
    processes: Vec<SupervisedProcess>,
    dir: Option<tempfile::TempDir>,
}

impl fmt::Debug for KubeApiServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeApiServer")
            .field("url", &self.url)
            .field("work_dir", &self.work_dir())
            .finish_non_exhaustive()
    }
}

fn cert_err(e: rcgen::Error) -> HarnessError {
    HarnessError::Certificates(e.to_string())
}

fn write(path: &Path, contents: &[u8]) -> Result<(), HarnessError> {
    fs::write(path, contents)
        .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))
}

/// Writes a file only its owner can read (keys, the token, the kubeconfig).
fn write_private(path: &Path, contents: &[u8]) -> Result<(), HarnessError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))?;
    file.write_all(contents)
        .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// A self-signed CA (ECDSA P-256) named `common_name`.
fn new_ca(common_name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, HarnessError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().map_err(cert_err)?;
    CertifiedIssuer::self_signed(params, key).map_err(cert_err)
}

/// A serving certificate for 127.0.0.1 and localhost signed by `ca`: (certificate PEM, PKCS #8 key PEM).
fn serving_certificate(
    ca: &CertifiedIssuer<'static, KeyPair>,
    common_name: &str,
) -> Result<(String, String), HarnessError> {
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(cert_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(cert_err)?;
    let cert = params.signed_by(&key, ca).map_err(cert_err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn random_token() -> Result<String, HarnessError> {
    let mut bytes = [0u8; 24];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|e| HarnessError::Certificates(format!("random token: {e}")))?;
    Ok(hex::encode(bytes))
}

/// The kubeconfig (token auth) for `url`. JSON is YAML, so no YAML writer is needed.
fn kubeconfig_text(url: &str, ca_pem: &str, token: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "kibaship-test",
            "cluster": { "server": url, "certificate-authority-data": STANDARD.encode(ca_pem) },
        }],
        "users": [{ "name": TOKEN_USER, "user": { "token": token } }],
        "contexts": [{
            "name": "kibaship-test",
            "context": { "cluster": "kibaship-test", "user": TOKEN_USER },
        }],
        "current-context": "kibaship-test",
    })
    .to_string()
}

fn mentions_port_in_use(log: &Path) -> bool {
    process::log_tail(log).contains("address already in use")
}

/// Calls `attempt` up to `tries` times, `pause` apart, and returns its first `Some`. For conditions the cluster
/// reaches asynchronously (a webhook configuration taking effect); the bound only keeps a broken test from
/// hanging, nothing is asserted about how long it took.
pub fn wait_until<T>(
    tries: u32,
    pause: Duration,
    mut attempt: impl FnMut() -> Option<T>,
) -> Option<T> {
    for n in 0..tries {
        if let Some(value) = attempt() {
            return Some(value);
        }
        if n + 1 < tries {
            thread::sleep(pause);
        }
    }
    None
}

/// Starts etcd on free ports, retrying when a port was taken in the meantime; returns it and its client URL.
fn start_etcd(etcd: &Path, dir: &Path) -> Result<(SupervisedProcess, String), HarnessError> {
    let log = dir.join("etcd.log");
    let mut last_error = None;
    for attempt in 0..PORT_ATTEMPTS {
        let client = format!("http://127.0.0.1:{}", free_port()?);
        let peer = format!("http://127.0.0.1:{}", free_port()?);
        // A fresh data dir per attempt: a failed start may have written the old peer URL into it.
        let data = dir.join(format!("etcd-data-{attempt}"));
        let args = vec![
            "--name".to_string(),
            "kibaship-test".into(),
            "--data-dir".into(),
            path_str(&data),
            "--listen-client-urls".into(),
            client.clone(),
            "--advertise-client-urls".into(),
            client.clone(),
            "--listen-peer-urls".into(),
            peer.clone(),
            "--initial-advertise-peer-urls".into(),
            peer.clone(),
            "--initial-cluster".into(),
            format!("kibaship-test={peer}"),
            "--initial-cluster-state".into(),
            "new".into(),
        ];
        let mut server = SupervisedProcess::spawn("etcd", etcd, &args, &log)?;
        let host = client.trim_start_matches("http://").to_string();
        match wait_etcd(&mut server, &host, &log) {
            Ok(()) => return Ok((server, client)),
            Err(e @ HarnessError::Exited { .. }) if mentions_port_in_use(&log) => {
                drop(server);
                last_error = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| HarnessError::io("starting etcd", std::io::ErrorKind::AddrInUse.into())))
}

fn wait_etcd(server: &mut SupervisedProcess, host: &str, log: &Path) -> Result<(), HarnessError> {
    let started = Instant::now();
    loop {
        server.check_running()?;
        if let Ok(r) = http::request_once(host, None, "GET", "/health", &[], &[])
            && r.status == 200
            && String::from_utf8_lossy(&r.body).contains("true")
        {
            return Ok(());
        }
        if started.elapsed() > ETCD_READY_TIMEOUT {
            return Err(HarnessError::NotReady {
                what: "etcd".into(),
                url: format!("http://{host}/health"),
                waited_secs: ETCD_READY_TIMEOUT.as_secs(),
                log: log.to_path_buf(),
                log_tail: process::log_tail(log),
            });
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Files kube-apiserver reads, written once per instance.
struct ApiServerFiles {
    cert: PathBuf,
    key: PathBuf,
    tokens: PathBuf,
    sa_public: PathBuf,
    sa_private: PathBuf,
    cert_dir: PathBuf,
}

fn api_server_args(files: &ApiServerFiles, etcd_url: &str, port: u16) -> Vec<String> {
    [
        ("--etcd-servers", etcd_url.to_string()),
        ("--bind-address", "127.0.0.1".into()),
        ("--advertise-address", "127.0.0.1".into()),
        ("--secure-port", port.to_string()),
        ("--tls-cert-file", path_str(&files.cert)),
        ("--tls-private-key-file", path_str(&files.key)),
        ("--token-auth-file", path_str(&files.tokens)),
        ("--authorization-mode", "RBAC".into()),
        // No controller manager creates `default` service accounts: with this plugin every Pod is refused.
        ("--disable-admission-plugins", "ServiceAccount".into()),
        // The reconciler of the `kubernetes` Service refuses a loopback advertise address.
        ("--endpoint-reconciler-type", "none".into()),
        (
            "--service-account-issuer",
            "https://kubernetes.default.svc".into(),
        ),
        ("--service-account-key-file", path_str(&files.sa_public)),
        (
            "--service-account-signing-key-file",
            path_str(&files.sa_private),
        ),
        ("--service-cluster-ip-range", "10.96.0.0/24".into()),
        ("--cert-dir", path_str(&files.cert_dir)),
        ("--profiling", "false".into()),
    ]
    .into_iter()
    // `--flag=value`: the form boolean flags need.
    .map(|(flag, value)| format!("{flag}={value}"))
    .collect()
}

/// Outcome of one `/readyz` probe.
enum Ready {
    Yes,
    No(String),
}

fn probe_readyz(host: &str, tls: &Arc<rustls::ClientConfig>, token: &str) -> Ready {
    let bearer = format!("Bearer {token}");
    match http::request_once(
        host,
        Some(tls),
        "GET",
        "/readyz",
        &[("Authorization", &bearer)],
        &[],
    ) {
        Ok(r) if r.status == 200 && r.body.trim_ascii() == b"ok" => Ready::Yes,
        Ok(r) => Ready::No(format!("status {}: {}", r.status, r.body_excerpt())),
        Err(e) => Ready::No(e.to_string()),
    }
}

fn wait_api_server(
    server: &mut SupervisedProcess,
    host: &str,
    tls: &Arc<rustls::ClientConfig>,
    token: &str,
    log: &Path,
) -> Result<(), HarnessError> {
    let started = Instant::now();
    loop {
        server.check_running()?;
        let last = match probe_readyz(host, tls, token) {
            Ready::Yes => return Ok(()),
            Ready::No(why) => why,
        };
        if started.elapsed() > API_READY_TIMEOUT {
            return Err(HarnessError::NotReady {
                what: format!("kube-apiserver (last answer: {last})"),
                url: format!("https://{host}/readyz"),
                waited_secs: API_READY_TIMEOUT.as_secs(),
                log: log.to_path_buf(),
                log_tail: process::log_tail(log),
            });
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Kills a supervised process's whole group at once, then reaps it.
fn kill_now(p: &mut SupervisedProcess) {
    // The group id is the supervisor's pid, which stays ours until `stop` reaps the supervisor.
    let group = Pid::from_raw(i32::try_from(p.supervisor_pid()).unwrap_or(i32::MAX));
    let _ = signal::killpg(group, Signal::SIGKILL);
    p.stop();
}

impl KubeApiServer {
    /// Starts etcd and kube-apiserver on free loopback ports and waits until `/readyz` answers `ok` (a bounded
    /// wait; the error carries the end of the server's log). Blocking.
    pub fn start() -> Result<KubeApiServer, HarnessError> {
        let api_server = crate::peers::peer_binary("kube-apiserver")?;
        let kubectl = crate::peers::peer_binary("kubectl")?;
        let etcd = process::find_tool(
            "etcd",
            "apt-get install etcd-server (Debian's etcd 3.4), or run `make deps`",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("kibaship-kube-apiserver-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating the API server's temp dir", e))?;
        let d = dir.path().to_path_buf();
        let mut processes = Vec::new();
        let started = Self::launch(&d, &api_server, &etcd, &mut processes).and_then(
            |(url, token, ca_pem)| {
                let kubeconfig = d.join("kubeconfig");
                write_private(
                    &kubeconfig,
                    kubeconfig_text(&url, &ca_pem, &token).as_bytes(),
                )?;
                let webhook_ca = new_ca("kibaship test webhook CA")?;
                Ok((url, token, ca_pem, kubeconfig, webhook_ca))
            },
        );
        match started {
            Ok((url, token, ca_pem, kubeconfig, webhook_ca)) => Ok(KubeApiServer {
                url,
                token,
                ca_pem,
                kubeconfig,
                kubectl,
                webhook_ca,
                processes,
                dir: Some(dir),
            }),
            Err(e) => {
                for p in processes.iter_mut().rev() {
                    kill_now(p);
                }
                // The logs the error points at stay for whoever reads it.
                let kept = dir.keep();
                eprintln!(
                    "kube-apiserver harness: start failed, logs kept in {}",
                    kept.display()
                );
                Err(e)
            }
        }
    }

    /// Writes the PKI and token, starts etcd then kube-apiserver (pushing each onto `processes` once up).
    /// Returns (url, token, CA PEM).
    fn launch(
        d: &Path,
        api_server: &Path,
        etcd: &Path,
        processes: &mut Vec<SupervisedProcess>,
    ) -> Result<(String, String, String), HarnessError> {
        let ca = new_ca("kibaship test kube-apiserver CA")?;
        let ca_pem = ca.pem();
        let (cert_pem, key_pem) = serving_certificate(&ca, "kube-apiserver")?;
        let sa_key = KeyPair::generate().map_err(cert_err)?;
        let token = random_token()?;
        let files = ApiServerFiles {
            cert: d.join("apiserver.pem"),
            key: d.join("apiserver.key"),
            tokens: d.join("tokens.csv"),
            sa_public: d.join("service-account.pub"),
            sa_private: d.join("service-account.key"),
            cert_dir: d.join("apiserver-certs"),
        };
        write(&d.join("ca.pem"), ca_pem.as_bytes())?;
        write(&files.cert, cert_pem.as_bytes())?;
        write_private(&files.key, key_pem.as_bytes())?;
        // token,user,uid,"group1,group2"
        write_private(
            &files.tokens,
            format!("{token},{TOKEN_USER},{TOKEN_USER},\"system:masters\"\n").as_bytes(),
        )?;
        // kube-apiserver reads only public keys from --service-account-key-file.
        write(&files.sa_public, sa_key.public_key_pem().as_bytes())?;
        write_private(&files.sa_private, sa_key.serialize_pem().as_bytes())?;

        let (etcd_process, etcd_url) = start_etcd(etcd, d)?;
        processes.push(etcd_process);

        let ca_der = ca.der().to_vec();
        let tls = http::client_tls_config(&ca_der)?;
        let log = d.join("kube-apiserver.log");
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let host = format!("127.0.0.1:{port}");
            let args = api_server_args(&files, &etcd_url, port);
            let mut server = SupervisedProcess::spawn("kube-apiserver", api_server, &args, &log)?;
            match wait_api_server(&mut server, &host, &tls, &token, &log) {
                Ok(()) => {
                    processes.push(server);
                    return Ok((format!("https://{host}"), token, ca_pem));
                }
                Err(e @ HarnessError::Exited { .. }) if mentions_port_in_use(&log) => {
                    kill_now(&mut server);
                    last_error = Some(e);
                }
                Err(e) => {
                    kill_now(&mut server);
                    return Err(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            HarnessError::io(
                "starting kube-apiserver",
                std::io::ErrorKind::AddrInUse.into(),
            )
        }))
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// PEM of the CA that signed the API server's serving certificate (for 127.0.0.1 and localhost).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The bearer token of user [`TOKEN_USER`], group `system:masters`.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A kubeconfig file for this server (token auth, the CA inline), readable only by its owner.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The instance's directory: certificates, token file, etcd data, `etcd.log`, `kube-apiserver.log`.
    pub fn work_dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// kube-apiserver's log (stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.work_dir().join("kube-apiserver.log")
    }

    /// The last lines of kube-apiserver's log, for failure messages.
    pub fn log_tail(&self) -> String {
        process::log_tail(&self.log_path())
    }

    /// Pids of etcd and kube-apiserver and of their supervisors, to check that none survive.
    pub fn process_ids(&self) -> Vec<u32> {
        self.processes
            .iter()
            .flat_map(|p| [p.supervisor_pid(), p.server_pid()])
            .collect()
    }

    /// The `kubectl` peer (same version as the server).
    pub fn kubectl_path(&self) -> &Path {
        &self.kubectl
    }

    fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.kubectl);
        // The kubeconfig carries --server, --token and --certificate-authority; with it, the caller's
        // KUBECONFIG and ~/.kube/config play no part. The discovery cache is per instance.
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.work_dir().join("kubectl-cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs kubectl against this server (and only it) and returns its output, whatever its exit status. If
    /// kubectl cannot be started at all, the output has exit status 127 and the reason in stderr.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        run_kubectl(self.kubectl_command(args), &self.kubectl)
    }

    /// As [`KubeApiServer::kubectl`], with `stdin` on its standard input (`kubectl apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_kubectl_with_stdin(self.kubectl_command(args), &self.kubectl, stdin)
    }

    /// Runs kubectl and returns its stdout, or [`HarnessError::CommandFailed`] with its stderr.
    pub fn kubectl_ok(&self, args: &[&str]) -> Result<String, HarnessError> {
        checked(args, self.kubectl(args))
    }

    /// As [`KubeApiServer::kubectl_ok`], with `stdin` on its standard input.
    pub fn kubectl_stdin_ok(&self, args: &[&str], stdin: &str) -> Result<String, HarnessError> {
        checked(args, self.kubectl_stdin(args, stdin))
    }

    /// A serving certificate for a webhook on 127.0.0.1 (SANs `127.0.0.1` and `localhost`): (certificate PEM,
    /// PKCS #8 key PEM, CA PEM). Every call issues a new certificate and key from the same CA, this instance's
    /// webhook CA (not the API server's): register that CA as the webhook's `caBundle`.
    pub fn webhook_certificate(&self) -> Result<(String, String, String), HarnessError> {
        let (cert, key) = serving_certificate(&self.webhook_ca, "kibaship test webhook")?;
        Ok((cert, key, self.webhook_ca.pem()))
    }

    /// [`KubeApiServer::webhook_certificate`]'s CA, base64-encoded as a webhook configuration's `caBundle`.
    pub fn webhook_ca_bundle(&self) -> String {
        STANDARD.encode(self.webhook_ca.pem())
    }

    /// Applies `manifest` (webhook configurations, YAML or JSON) with `kubectl apply -f -`, then calls
    /// `took_effect` until it returns true, at most [`WEBHOOK_TRIES`] times, [`WEBHOOK_PAUSE`] apart. The API
    /// server picks up webhook configurations asynchronously, so a request made right after the apply may not
    /// be sent to the webhook yet: `took_effect` makes one (e.g. creates a Pod, and deletes it again if the
    /// webhook did not see it) and says whether the webhook was in force.
    pub fn apply_webhook_configuration(
        &self,
        manifest: &str,
        mut took_effect: impl FnMut(&KubeApiServer) -> bool,
    ) -> Result<(), HarnessError> {
        self.kubectl_stdin_ok(&["apply", "-f", "-"], manifest)?;
        let started = Instant::now();
        match wait_until(WEBHOOK_TRIES, WEBHOOK_PAUSE, || {
            took_effect(self).then_some(())
        }) {
            Some(()) => Ok(()),
            None => Err(HarnessError::NotReady {
                what: format!(
                    "the webhook configuration (checked {WEBHOOK_TRIES} times, never in force)"
                ),
                url: self.url.clone(),
                waited_secs: started.elapsed().as_secs(),
                log: self.log_path(),
                log_tail: self.log_tail(),
            }),
        }
    }
}

/// Runs `command` (kubectl at `program`) without input; exit status 127 and the reason in stderr if it cannot start.
pub(crate) fn run_kubectl(mut command: Command, program: &Path) -> Output {
    command.stdin(Stdio::null());
    command
        .output()
        .unwrap_or_else(|e| not_started(program, &e))
}

/// As [`run_kubectl`], with `stdin` on its standard input, written from another thread: kubectl may answer before
/// it has read everything.
pub(crate) fn run_kubectl_with_stdin(mut command: Command, program: &Path, stdin: &str) -> Output {
    command.stdin(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return not_started(program, &e),
    };
    let writer = child.stdin.take().map(|mut pipe| {
        let input = stdin.to_string();
        thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        })
    });
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| not_started(program, &e));
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    output
}

fn not_started(program: &Path, e: &std::io::Error) -> Output {
    Output {
        status: ExitStatus::from_raw(127 << 8),
        stdout: Vec::new(),
        stderr: format!("could not run {}: {e}", program.display()).into_bytes(),
    }
}

/// kubectl's stdout when it succeeded, else [`HarnessError::CommandFailed`] with its stderr.
pub(crate) fn checked(args: &[&str], output: Output) -> Result<String, HarnessError> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(HarnessError::CommandFailed {
            command: format!("kubectl {}", args.join(" ")),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        // kube-apiserver's graceful shutdown takes minutes, and the store is thrown away: kill, newest first.
        for p in self.processes.iter_mut().rev() {
            kill_now(p);
        }
        if thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!(
                "kube-apiserver harness: the test failed, logs kept in {}",
                kept.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_names_server_ca_and_token() {
        let text = kubeconfig_text("https://127.0.0.1:1234", "PEM", "t0k");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            json["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:1234"
        );
        assert_eq!(
            json["clusters"][0]["cluster"]["certificate-authority-data"],
            STANDARD.encode("PEM")
        );
        assert_eq!(json["users"][0]["user"]["token"], "t0k");
        assert_eq!(json["current-context"], json["contexts"][0]["name"]);
    }

    #[test]
    fn wait_until_stops_at_the_first_some_or_after_the_tries() {
        let mut calls = 0;
        let found = wait_until(5, Duration::ZERO, || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!((found, calls), (Some(3), 3));
        let mut calls = 0;
        let none: Option<()> = wait_until(4, Duration::ZERO, || {
            calls += 1;
            None
        });
        assert_eq!((none, calls), (None, 4));
    }

    #[test]
    fn webhook_certificates_chain_to_the_ca_for_127_0_0_1() {
        use rustls::client::danger::ServerCertVerifier as _;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
        let ca = new_ca("test CA").unwrap();
        let (cert, key) = serving_certificate(&ca, "webhook").unwrap();
        assert!(key.contains("-----BEGIN PRIVATE KEY-----"), "{key}");
        let ca_der = kibaship_sigstore::pem::decode(&ca.pem(), "CERTIFICATE").unwrap();
        let leaf_der = kibaship_sigstore::pem::decode(&cert, "CERTIFICATE").unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(ca_der)).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .build()
        .unwrap();
        let leaf = CertificateDer::from(leaf_der);
        for name in ["127.0.0.1", "localhost"] {
            let name = ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
                .unwrap();
        }
        let other = ServerName::try_from("127.0.0.2").unwrap();
        assert!(
            verifier
                .verify_server_cert(&leaf, &[], &other, &[], UnixTime::now())
                .is_err()
        );
    }
}
