//! A private Sigstore on loopback, built from the pinned Go peers, for keyless-signing tests and demos.
//!
//! [`TestSigstore::start`] starts, as `scripts/peers/smoke-sigstore.sh` does:
//! - an OIDC issuer (`scripts/peers/oidc_issuer.py`: discovery document, JWKS, RS256 ID tokens),
//! - Fulcio v1.8.8 with an ephemeral CA, trusting that issuer (email identities), logging precertificates to
//! - TesseraCT (a static-ct-api CT log on POSIX storage), so certificates carry an embedded SCT,
//! - timestamp-authority (`timestamp-server`, in-memory signer, RFC 3161),
//! - Rekor v2 (rekor-tiles on POSIX storage, ECDSA P-256 checkpoint key, origin `127.0.0.1`),
//! - with [`SigstoreOptions::rekor_v1`], also Rekor v1 (`rekor-server` v1.5.5, in-memory ECDSA P-256 signer) on
//!   Trillian (`trillian_log_server` + `trillian_log_signer`, a tree made by `createtree`) on a MariaDB in the
//!   temp dir (Debian's `mariadb-server`; Trillian's schema from its Go module): the log whose entries carry a
//!   signed entry timestamp, as cosign's legacy layout needs,
//!
//! then writes `trusted_root.json` and `signing_config.json` for them with `cosign trusted-root create` /
//! `cosign signing-config create`, and a `client_trust_config.json` for sigstore-python (whose models require a
//! CA `commonName`, which Fulcio's ephemeral CA does not have: it is filled from the organization).
//!
//! Every service listens on 127.0.0.1 and is stopped when the [`TestSigstore`] is dropped, with one exception:
//! Fulcio v1.8.8 serves Prometheus metrics on `:<metrics-port>` (all interfaces; no flag binds it elsewhere), on a
//! free port here. The TSA and Rekor v1 are our loopback-only builds of upstream's libraries (docs/peers.md).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::HarnessError;
use crate::http;
use crate::ports::free_port;
use crate::process::{self, SupervisedProcess};

/// How long a started service may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// `start-time` of every service in the trusted root and signing config.
const START_TIME: &str = "2020-01-01T00:00:00Z";
/// The Rekor v2 log's origin (checkpoint name): the host of its URL, as sigstore-go requires.
pub const REKOR_ORIGIN: &str = "127.0.0.1";
/// Fulcio's client ID (the tokens' audience) for every issuer it trusts here.
pub const AUDIENCE: &str = "sigstore";

/// Which optional services [`TestSigstore::start_with`] starts, and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SigstoreOptions {
    /// Also start Rekor v1 on Trillian + MariaDB, listed in the trusted root (after Rekor v2) and in the signing
    /// config (API version 1).
    pub rekor_v1: bool,
    /// The address Fulcio, the TSA and Rekor v2 listen on and their URLs name (default 127.0.0.1): the one-node
    /// cluster's node address makes them reachable from Pods ([`crate::cluster::NODE_IP`]). Rekor v2's origin is
    /// this address too. The OIDC issuer, the CT log and Rekor v1 stay on loopback.
    pub listen: Option<std::net::Ipv4Addr>,
    /// A Kubernetes service-account issuer Fulcio also trusts (Fulcio's `kubernetes` issuer type: certificates
    /// for `https://kubernetes.io/namespaces/<ns>/serviceaccounts/<name>`), e.g. the one-node cluster's.
    pub kubernetes_issuer: Option<KubernetesIssuer>,
}

/// A Kubernetes API server as an OIDC issuer for Fulcio (see [`SigstoreOptions::kubernetes_issuer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesIssuer {
    /// The `iss` of its service-account tokens, where Fulcio fetches the discovery document and keys (HTTPS,
    /// readable without credentials).
    pub url: String,
    /// The CA bundle Fulcio trusts for that URL (`SSL_CERT_FILE`).
    pub ca_file: PathBuf,
}

/// A running private Sigstore (see the module docs).
#[derive(Debug)]
pub struct TestSigstore {
    // Field order is drop order: services stop before the directory is removed.
    processes: Vec<SupervisedProcess>,
    issuer: String,
    fulcio_url: String,
    rekor_url: String,
    rekor_v1_url: Option<String>,
    tsa_url: String,
    ct_url: String,
    dir: tempfile::TempDir,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn oidc_issuer_script() -> PathBuf {
    repo_root().join("scripts/peers/oidc_issuer.py")
}

/// Runs a command to completion; a failure carries its stderr.
fn run(program: &Path, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, HarnessError> {
    let line = format!("{} {}", program.display(), args.join(" "));
    let mut command = Command::new(program);
    command.args(args);
    let output = if let Some(input) = stdin {
        use std::io::Write as _;
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                command: line.clone(),
                source,
            })?;
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(input)
                .map_err(|e| HarnessError::io(format!("writing to {line}"), e))?;
        }
        child
            .wait_with_output()
            .map_err(|e| HarnessError::io(format!("waiting for {line}"), e))?
    } else {
        command.output().map_err(|source| HarnessError::Spawn {
            command: line.clone(),
            source,
        })?
    };
    if !output.status.success() {
        return Err(HarnessError::CommandFailed {
            command: line,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(output.stdout)
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Waits until `GET path` on `host` gets any HTTP answer, or the process exits.
fn wait_http(
    server: &mut SupervisedProcess,
    what: &str,
    host: &str,
    path: &str,
    log: &Path,
) -> Result<(), HarnessError> {
    let started = Instant::now();
    loop {
        server.check_running()?;
        if http::request_once(host, None, "GET", path, &[], &[]).is_ok() {
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(HarnessError::NotReady {
                what: what.into(),
                url: format!("http://{host}{path}"),
                waited_secs: READY_TIMEOUT.as_secs(),
                log: log.to_path_buf(),
                log_tail: process::log_tail(log),
            });
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Refuses a cached upstream build of a peer whose `serve` opens listeners beyond loopback (timestamp-server,
/// rekor-server): ours answer `version` with "kibaship loopback build". A machine whose peer cache predates our
/// builds gets them from `make peers`.
fn require_loopback_build(peer: &str, binary: &Path) -> Result<(), HarnessError> {
    let out = run(binary, &["version"], None)?;
    if String::from_utf8_lossy(&out).contains("kibaship loopback build") {
        return Ok(());
    }
    Err(HarnessError::PeerUnavailable {
        name: peer.into(),
        reason: format!(
            "{} is upstream's build, which also listens on :2112 (all interfaces); run `make peers` to \
             rebuild it from scripts/peers/ (docs/peers.md)",
            binary.display()
        ),
    })
}

/// GET `http://host/path`, 200 only.
fn fetch(host: &str, path: &str) -> Result<Vec<u8>, HarnessError> {
    let response = http::request_once(host, None, "GET", path, &[], &[])?;
    if response.status != 200 {
        return Err(HarnessError::Http {
            method: "GET".into(),
            url: format!("http://{host}{path}"),
            reason: format!("status {}: {}", response.status, response.body_excerpt()),
        });
    }
    Ok(response.body)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), HarnessError> {
    std::fs::write(path, bytes)
        .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))
}

impl TestSigstore {
    /// Starts the OIDC issuer, the CT log, Fulcio, the TSA and Rekor v2 on free loopback ports and writes the
    /// trusted root and signing config that describe them. Blocking.
    pub fn start() -> Result<TestSigstore, HarnessError> {
        Self::start_with(SigstoreOptions::default())
    }

    /// As [`TestSigstore::start`], plus the optional services in `options`.
    pub fn start_with(options: SigstoreOptions) -> Result<TestSigstore, HarnessError> {
        let cosign = crate::peers::peer_binary("cosign")?;
        let fulcio = crate::peers::peer_binary("fulcio")?;
        let tsa = crate::peers::peer_binary("timestamp-authority")?;
        require_loopback_build("timestamp-authority", &tsa)?;
        let rekor = crate::peers::peer_binary("rekor-tiles")?;
        let tesseract = crate::peers::peer_binary("tesseract")?;
        let python = process::find_tool("python3", "apt-get install python3")?;
        let openssl = process::find_tool("openssl", "apt-get install openssl")?;
        let dir = tempfile::Builder::new()
            .prefix("kibaship-sigstore-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating the Sigstore temp dir", e))?;
        let d = dir.path().to_path_buf();
        let mut processes = Vec::new();
        let listen = options
            .listen
            .map_or_else(|| REKOR_ORIGIN.to_string(), |ip| ip.to_string());

        // OIDC issuer.
        let oidc_port = free_port()?;
        let issuer = format!("http://127.0.0.1:{oidc_port}");
        let log = d.join("oidc-issuer.log");
        let mut p = SupervisedProcess::spawn(
            "OIDC issuer",
            &python,
            &[
                path_str(&oidc_issuer_script()),
                "serve".into(),
                "--dir".into(),
                path_str(&d.join("oidc")),
                "--port".into(),
                oidc_port.to_string(),
            ],
            &log,
        )?;
        wait_http(
            &mut p,
            "OIDC issuer",
            &format!("127.0.0.1:{oidc_port}"),
            "/.well-known/openid-configuration",
            &log,
        )?;
        processes.push(p);

        // Keys: the CT log's as SEC 1 PEM (TesseraCT refuses PKCS #8), Rekor's as PKCS #8, both P-256.
        let ct_key = d.join("ct-key.pem");
        let rekor_key = d.join("rekor-key.pem");
        let sec1 = run(
            &openssl,
            &["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
            None,
        )?;
        write(&ct_key, &sec1)?;
        let other = run(
            &openssl,
            &["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
            None,
        )?;
        let pkcs8 = run(&openssl, &["pkcs8", "-topk8", "-nocrypt"], Some(&other))?;
        write(&rekor_key, &pkcs8)?;
        for (key, public) in [(&ct_key, "ct.pub"), (&rekor_key, "rekor.pub")] {
            let out = d.join(public);
            run(
                &openssl,
                &[
                    "ec",
                    "-in",
                    &path_str(key),
                    "-pubout",
                    "-out",
                    &path_str(&out),
                ],
                None,
            )?;
        }

        // Fulcio (the CT log is started after it, once its ephemeral root can be fetched).
        let ct_port = free_port()?;
        let ct_url = format!("http://127.0.0.1:{ct_port}");
        let fulcio_port = free_port()?;
        let fulcio_url = format!("http://{listen}:{fulcio_port}");
        let mut issuers = serde_json::json!({
            &issuer: { "IssuerURL": &issuer, "ClientID": AUDIENCE, "Type": "email" }
        });
        if let Some(k8s) = &options.kubernetes_issuer {
            issuers[&k8s.url] = serde_json::json!({ "IssuerURL": &k8s.url, "ClientID": AUDIENCE, "Type": "kubernetes" });
        }
        let fulcio_config = serde_json::json!({ "OIDCIssuers": issuers });
        write(
            &d.join("fulcio-config.json"),
            fulcio_config.to_string().as_bytes(),
        )?;
        let log = d.join("fulcio.log");
        // Fulcio fetches a Kubernetes issuer's discovery document over HTTPS: its CA through SSL_CERT_FILE.
        let env = Path::new("/usr/bin/env");
        let mut fulcio_command = Vec::new();
        if let Some(k8s) = &options.kubernetes_issuer {
            fulcio_command.push(format!("SSL_CERT_FILE={}", path_str(&k8s.ca_file)));
        }
        fulcio_command.push(path_str(&fulcio));
        let mut p = SupervisedProcess::spawn(
            "fulcio",
            env,
            &[
                fulcio_command,
                vec![
                    "serve".into(),
                    "--ca".into(),
                    "ephemeralca".into(),
                    "--config-path".into(),
                    path_str(&d.join("fulcio-config.json")),
                    "--host".into(),
                    listen.clone(),
                    "--port".into(),
                    fulcio_port.to_string(),
                    "--grpc-host".into(),
                    "127.0.0.1".into(),
                    "--grpc-port".into(),
                    free_port()?.to_string(),
                    "--metrics-port".into(),
                    free_port()?.to_string(),
                    "--legacy-unix-domain-socket".into(),
                    path_str(&d.join("fulcio-legacy.sock")),
                    "--ct-log-url".into(),
                    ct_url.clone(),
                    "--ct-log-public-key-path".into(),
                    path_str(&d.join("ct.pub")),
                ],
            ]
            .concat(),
            &log,
        )?;
        let fulcio_host = format!("{listen}:{fulcio_port}");
        wait_http(&mut p, "fulcio", &fulcio_host, "/api/v1/rootCert", &log)?;
        processes.push(p);
        let fulcio_chain = fetch(&fulcio_host, "/api/v1/rootCert")?;
        if !String::from_utf8_lossy(&fulcio_chain).contains("BEGIN CERTIFICATE") {
            return Err(HarnessError::Http {
                method: "GET".into(),
                url: format!("{fulcio_url}/api/v1/rootCert"),
                reason: "the answer is not a PEM certificate chain".into(),
            });
        }
        write(&d.join("fulcio-chain.pem"), &fulcio_chain)?;

        // CT log accepting chains that end in Fulcio's root.
        let log = d.join("tesseract.log");
        let mut p = SupervisedProcess::spawn(
            "tesseract",
            &tesseract,
            &[
                "-http_endpoint".into(),
                format!("127.0.0.1:{ct_port}"),
                "-origin".into(),
                "127.0.0.1".into(),
                "-private_key".into(),
                path_str(&ct_key),
                "-roots_pem_file".into(),
                path_str(&d.join("fulcio-chain.pem")),
                "-storage_dir".into(),
                path_str(&d.join("ct-tiles")),
                "-checkpoint_interval".into(),
                "1s".into(),
                "-batch_max_age".into(),
                "100ms".into(),
                "-logtostderr".into(),
            ],
            &log,
        )?;
        wait_http(
            &mut p,
            "tesseract",
            &format!("127.0.0.1:{ct_port}"),
            "/checkpoint",
            &log,
        )?;
        processes.push(p);

        // Timestamp authority: our build of timestamp-server (scripts/peers/timestamp-authority) serves only the
        // REST API on its loopback port (upstream's always adds a metrics listener on :2112, all interfaces), so
        // every TestSigstore runs its own.
        let tsa_port = free_port()?;
        let tsa_host = format!("{listen}:{tsa_port}");
        let tsa_url = format!("http://{tsa_host}/api/v1/timestamp");
        let log = d.join("timestamp-server.log");
        let mut p = SupervisedProcess::spawn(
            "timestamp-server",
            &tsa,
            &[
                "serve".into(),
                "--host".into(),
                listen.clone(),
                "--port".into(),
                tsa_port.to_string(),
                "--timestamp-signer".into(),
                "memory".into(),
                "--disable-ntp-monitoring".into(),
            ],
            &log,
        )?;
        wait_http(&mut p, "timestamp-server", &tsa_host, "/ping", &log)?;
        processes.push(p);
        let tsa_chain = fetch(&tsa_host, "/api/v1/timestamp/certchain")?;
        write(&d.join("tsa-chain.pem"), &tsa_chain)?;

        // Rekor v2.
        let rekor_port = free_port()?;
        let rekor_host = format!("{listen}:{rekor_port}");
        let rekor_url = format!("http://{rekor_host}");
        let log = d.join("rekor.log");
        let mut p = SupervisedProcess::spawn(
            "rekor-tiles",
            &rekor,
            &[
                "serve".into(),
                "--http-address".into(),
                listen.clone(),
                "--http-port".into(),
                rekor_port.to_string(),
                "--grpc-address".into(),
                "127.0.0.1".into(),
                "--grpc-port".into(),
                free_port()?.to_string(),
                "--http-metrics-port".into(),
                free_port()?.to_string(),
                "--storage-dir".into(),
                path_str(&d.join("rekor-tiles")),
                "--signer-filepath".into(),
                path_str(&rekor_key),
                "--hostname".into(),
                listen.clone(),
                "--checkpoint-interval".into(),
                "1s".into(),
                "--batch-max-age".into(),
                "100ms".into(),
            ],
            &log,
        )?;
        wait_http(&mut p, "rekor-tiles", &rekor_host, "/healthz", &log)?;
        processes.push(p);

        let rekor_v1_url = if options.rekor_v1 {
            Some(start_rekor_v1(&d, &mut processes)?)
        } else {
            None
        };

        // Trusted root, signing config, sigstore-python's client trust config.
        let trusted_root = d.join("trusted_root.json");
        let signing_config = d.join("signing_config.json");
        let dstr = |name: &str| path_str(&d.join(name));
        // Rekor v2 first (tlogs[0]), then Rekor v1 when started: its log ID is SHA-256 of its DER key.
        let mut root_args = vec![
            "trusted-root".to_string(),
            "create".into(),
            format!(
                "--fulcio=url={fulcio_url},certificate-chain={},start-time={START_TIME}",
                dstr("fulcio-chain.pem")
            ),
            format!(
                "--rekor=url={rekor_url},public-key={},start-time={START_TIME},origin={listen}",
                dstr("rekor.pub")
            ),
        ];
        if let Some(v1) = &rekor_v1_url {
            root_args.push(format!(
                "--rekor=url={v1},public-key={},start-time={START_TIME}",
                dstr("rekor-v1.pub")
            ));
        }
        root_args.extend([
            format!(
                "--tsa=url={tsa_url},certificate-chain={},start-time={START_TIME}",
                dstr("tsa-chain.pem")
            ),
            format!(
                "--ctfe=url={ct_url},public-key={},start-time={START_TIME},origin=127.0.0.1",
                dstr("ct.pub")
            ),
            "--out".into(),
            path_str(&trusted_root),
        ]);
        let root_refs: Vec<&str> = root_args.iter().map(String::as_str).collect();
        run(&cosign, &root_refs, None)?;
        let log_order: Vec<&str> = std::iter::once(rekor_url.as_str())
            .chain(rekor_v1_url.as_deref())
            .collect();
        order_transparency_logs(&trusted_root, &log_order)?;
        let mut config_args = vec![
            "signing-config".to_string(),
            "create".into(),
            format!(
                "--fulcio=url={fulcio_url},api-version=1,start-time={START_TIME},operator=kibaship-test"
            ),
            format!(
                "--rekor=url={rekor_url},api-version=2,start-time={START_TIME},operator=kibaship-test"
            ),
        ];
        if let Some(v1) = &rekor_v1_url {
            config_args.push(format!(
                "--rekor=url={v1},api-version=1,start-time={START_TIME},operator=kibaship-test"
            ));
        }
        config_args.extend([
            "--rekor-config=ANY".to_string(),
            format!("--tsa=url={tsa_url},api-version=1,start-time={START_TIME},operator=kibaship-test"),
            "--tsa-config=EXACT:1".into(),
            format!(
                "--oidc-provider=url={issuer},api-version=1,start-time={START_TIME},operator=kibaship-test"
            ),
            "--out".into(),
            path_str(&signing_config),
        ]);
        let config_refs: Vec<&str> = config_args.iter().map(String::as_str).collect();
        run(&cosign, &config_refs, None)?;
        write_client_trust_config(
            &trusted_root,
            &signing_config,
            &d.join("client_trust_config.json"),
        )?;

        Ok(TestSigstore {
            processes,
            issuer,
            fulcio_url,
            rekor_url,
            rekor_v1_url,
            tsa_url,
            ct_url,
            dir,
        })
    }

    /// Rekor v1's base URL, when started ([`SigstoreOptions::rekor_v1`]).
    pub fn rekor_v1_url(&self) -> Option<&str> {
        self.rekor_v1_url.as_deref()
    }

    /// Rekor v1's public key (PEM), when started.
    pub fn rekor_v1_public_key_path(&self) -> Option<PathBuf> {
        self.rekor_v1_url
            .as_ref()
            .map(|_| self.dir.path().join("rekor-v1.pub"))
    }

    /// The OIDC issuer's URL (the `iss` of minted tokens, and the certificates' OIDC issuer).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Fulcio's base URL.
    pub fn fulcio_url(&self) -> &str {
        &self.fulcio_url
    }

    /// Rekor v2's base URL.
    pub fn rekor_url(&self) -> &str {
        &self.rekor_url
    }

    /// The TSA's timestamp endpoint (`.../api/v1/timestamp`).
    pub fn tsa_url(&self) -> &str {
        &self.tsa_url
    }

    /// The CT log's base URL.
    pub fn ct_url(&self) -> &str {
        &self.ct_url
    }

    /// `trusted_root.json` for these services (Fulcio CA, Rekor v2 key (`tlogs[0]`) and Rekor v1 key when it runs,
    /// TSA chain, CT log key).
    pub fn trusted_root_path(&self) -> PathBuf {
        self.dir.path().join("trusted_root.json")
    }

    /// The real cosign's keyless check of `reference` against this Sigstore's trusted root: `cosign <verb...>
    /// --trusted-root ... --certificate-identity <identity> --certificate-oidc-issuer <issuer>
    /// --allow-http-registry <reference>` (`verb` is `["verify"]`, `["verify-attestation", "--type", T]`, ...),
    /// with `HOME` at `home`. Its output, whatever the exit status.
    pub fn cosign_verify_keyless(
        &self,
        verb: &[&str],
        identity: &str,
        issuer: &str,
        reference: &str,
        home: &Path,
    ) -> Result<std::process::Output, HarnessError> {
        let cosign = crate::peers::peer_binary("cosign")?;
        Command::new(&cosign)
            .args(verb)
            .arg("--trusted-root")
            .arg(self.trusted_root_path())
            .args(["--certificate-identity", identity])
            .args(["--certificate-oidc-issuer", issuer])
            .args(["--allow-http-registry", reference])
            .env("HOME", home)
            .output()
            .map_err(|e| HarnessError::io(format!("running {}", cosign.display()), e))
    }

    /// `signing_config.json` (v0.2) naming these services (Rekor API version 2, and 1 when Rekor v1 runs).
    pub fn signing_config_path(&self) -> PathBuf {
        self.dir.path().join("signing_config.json")
    }

    /// sigstore-python's `--trust-config` file (`ClientTrustConfig`: trusted root + signing config).
    pub fn client_trust_config_path(&self) -> PathBuf {
        self.dir.path().join("client_trust_config.json")
    }

    /// The working directory (logs, keys, storage).
    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }

    /// An ID token (audience `sigstore`, 10 minutes) for `email` from the issuer.
    pub fn mint_token(&self, email: &str) -> Result<String, HarnessError> {
        let python = process::find_tool("python3", "apt-get install python3")?;
        let out = run(
            &python,
            &[
                &path_str(&oidc_issuer_script()),
                "token",
                "--dir",
                &path_str(&self.dir.path().join("oidc")),
                "--issuer",
                &self.issuer,
                "--email",
                email,
            ],
            None,
        )?;
        let token = String::from_utf8_lossy(&out).trim().to_string();
        if token.split('.').count() != 3 {
            return Err(HarnessError::CommandFailed {
                command: "oidc_issuer.py token".into(),
                status: "exit 0".into(),
                stderr: "it printed no JWT".into(),
            });
        }
        Ok(token)
    }

    /// Process ids of the services (for lifecycle tests).
    pub fn process_ids(&self) -> Vec<u32> {
        self.processes
            .iter()
            .map(SupervisedProcess::server_pid)
            .collect()
    }
}

/// Trillian's MySQL schema, from its Go module (`go mod download` finds it in the module cache, or fetches it
/// from the proxy).
fn trillian_schema() -> Result<Vec<u8>, HarnessError> {
    let go = process::find_tool("go", "install Go >= 1.26 (see docs/peers.md)")?;
    let module = format!(
        "github.com/google/trillian@{}",
        crate::peers::peer_version("trillian")?
    );
    let out = run(&go, &["mod", "download", "-json", &module], None)?;
    let info: serde_json::Value = serde_json::from_slice(&out).map_err(|e| {
        HarnessError::io(
            format!("parsing `go mod download -json {module}`"),
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    let dir =
        info.get("Dir")
            .and_then(|d| d.as_str())
            .ok_or_else(|| HarnessError::CommandFailed {
                command: format!("go mod download -json {module}"),
                status: "exit 0".into(),
                stderr: "its answer has no Dir".into(),
            })?;
    let schema = Path::new(dir).join("storage/mysql/schema/storage.sql");
    std::fs::read(&schema).map_err(|e| HarnessError::io(format!("reading {}", schema.display()), e))
}

/// `mariadbd` on PATH, else Debian's `/usr/sbin/mariadbd` (sbin is not on every PATH).
fn find_mariadbd() -> Result<PathBuf, HarnessError> {
    process::find_tool("mariadbd", "apt-get install mariadb-server").or_else(|e| {
        let sbin = PathBuf::from("/usr/sbin/mariadbd");
        if sbin.is_file() { Ok(sbin) } else { Err(e) }
    })
}

/// Creates a MariaDB data directory in `d/mariadb` (root without a password, no test database) and returns
/// the `--tmpdir=` argument the server must run with. Each instance has its own tmpdir (`d/mariadb-tmp`):
/// with the default /tmp, parallel bootstraps name their internal temporary tables alike and one removes
/// the other's ("Could not remove temporary table '/tmp/#sql-temptable-…'", then "Unknown table
/// 'mysql.tmp_user_sys'": 2 of 8 parallel bootstraps failed so here).
fn install_mariadb(d: &Path, user: &str) -> Result<String, HarnessError> {
    let install_db = process::find_tool("mariadb-install-db", "apt-get install mariadb-server")?;
    let tmp = d.join("mariadb-tmp");
    std::fs::create_dir_all(&tmp)
        .map_err(|e| HarnessError::io(format!("creating {}", tmp.display()), e))?;
    let tmpdir_arg = format!("--tmpdir={}", path_str(&tmp));
    run(
        &install_db,
        &[
            "--no-defaults",
            &format!("--datadir={}", path_str(&d.join("mariadb"))),
            &tmpdir_arg,
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            &format!("--user={user}"),
        ],
        None,
    )?;
    Ok(tmpdir_arg)
}

/// Starts MariaDB (data in `d/mariadb`, TCP on loopback, no grant tables), Trillian's log server and signer on
/// it, a tree, and Rekor v1 on that tree; writes Rekor's public key to `d/rekor-v1.pub`. Returns Rekor's URL.
fn start_rekor_v1(
    d: &Path,
    processes: &mut Vec<SupervisedProcess>,
) -> Result<String, HarnessError> {
    let rekor = crate::peers::peer_binary("rekor-server")?;
    require_loopback_build("rekor", &rekor)?;
    let log_server = crate::peers::peer_binary("trillian_log_server")?;
    let log_signer = crate::peers::peer_binary("trillian_log_signer")?;
    let createtree = crate::peers::peer_binary("createtree")?;
    let mariadbd = find_mariadbd()?;
    let client = process::find_tool("mariadb", "apt-get install mariadb-server")?;
    let schema = trillian_schema()?;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());

    // MariaDB.
    let data = d.join("mariadb");
    let tmpdir_arg = install_mariadb(d, &user)?;
    let db_port = free_port()?;
    let log = d.join("mariadbd.log");
    let mut p = SupervisedProcess::spawn(
        "mariadbd",
        &mariadbd,
        &[
            "--no-defaults".into(),
            format!("--datadir={}", path_str(&data)),
            format!("--socket={}", path_str(&d.join("mariadb.sock"))),
            tmpdir_arg.clone(),
            format!("--port={db_port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--user={user}"),
            "--skip-grant-tables".into(),
            "--skip-log-bin".into(),
            "--innodb-buffer-pool-size=16M".into(),
            format!("--pid-file={}", path_str(&d.join("mariadb.pid"))),
        ],
        &log,
    )?;
    let port_arg = format!("-P{db_port}");
    let db = |extra: &[&str], stdin: Option<&[u8]>| {
        let mut args = vec!["--no-defaults", "-h127.0.0.1", &port_arg, "-uroot"];
        args.extend_from_slice(extra);
        run(&client, &args, stdin)
    };
    let started = Instant::now();
    while let Err(e) = db(&["-e", "SELECT 1"], None) {
        p.check_running()?;
        if started.elapsed() > READY_TIMEOUT {
            return Err(e);
        }
        thread::sleep(Duration::from_millis(100));
    }
    processes.push(p);
    db(&["-e", "CREATE DATABASE trillian"], None)?;
    db(&["trillian"], Some(&schema))?;

    // Trillian.
    let mysql_uri = format!("--mysql_uri=root@tcp(127.0.0.1:{db_port})/trillian");
    let rpc_port = free_port()?;
    let http_port = free_port()?;
    let log = d.join("trillian_log_server.log");
    let mut p = SupervisedProcess::spawn(
        "trillian_log_server",
        &log_server,
        &[
            "--storage_system=mysql".into(),
            mysql_uri.clone(),
            "--quota_system=noop".into(),
            format!("--rpc_endpoint=127.0.0.1:{rpc_port}"),
            format!("--http_endpoint=127.0.0.1:{http_port}"),
            "--logtostderr".into(),
        ],
        &log,
    )?;
    wait_http(
        &mut p,
        "trillian_log_server",
        &format!("127.0.0.1:{http_port}"),
        "/metrics",
        &log,
    )?;
    processes.push(p);
    let signer_http = free_port()?;
    let log = d.join("trillian_log_signer.log");
    let mut p = SupervisedProcess::spawn(
        "trillian_log_signer",
        &log_signer,
        &[
            "--storage_system=mysql".into(),
            mysql_uri,
            "--quota_system=noop".into(),
            format!("--rpc_endpoint=127.0.0.1:{}", free_port()?),
            format!("--http_endpoint=127.0.0.1:{signer_http}"),
            "--force_master".into(),
            "--sequencer_interval=100ms".into(),
            "--batch_size=100".into(),
            "--logtostderr".into(),
        ],
        &log,
    )?;
    wait_http(
        &mut p,
        "trillian_log_signer",
        &format!("127.0.0.1:{signer_http}"),
        "/metrics",
        &log,
    )?;
    processes.push(p);
    let out = run(
        &createtree,
        &[
            &format!("--admin_server=127.0.0.1:{rpc_port}"),
            "--tree_type=LOG",
        ],
        None,
    )?;
    let text = String::from_utf8_lossy(&out);
    let tree_id = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| HarnessError::CommandFailed {
            command: "createtree".into(),
            status: "exit 0".into(),
            stderr: format!("it printed no tree id: {}", text.trim()),
        })?
        .to_string();

    // Rekor v1: our build (scripts/peers/rekor) serves only the REST API, on loopback (upstream's serve command
    // also tries a metrics listener on :2112, all interfaces).
    let rekor_port = free_port()?;
    let rekor_host = format!("127.0.0.1:{rekor_port}");
    let log = d.join("rekor-v1.log");
    let mut p = SupervisedProcess::spawn(
        "rekor-server (v1)",
        &rekor,
        &[
            "serve".into(),
            "--rekor_server.address=127.0.0.1".into(),
            format!("--port={rekor_port}"),
            "--rekor_server.hostname=127.0.0.1".into(),
            "--rekor_server.signer=memory".into(),
            "--log_type=prod".into(),
            "--trillian_log_server.address=127.0.0.1".into(),
            format!("--trillian_log_server.port={rpc_port}"),
            format!("--trillian_log_server.tlog_id={tree_id}"),
            // Only what needs no search index (Redis).
            "--enabled_api_endpoints=getLogInfo,getPublicKey,getLogProof,createLogEntry,getLogEntryByIndex,getLogEntryByUUID".into(),
        ],
        &log,
    )?;
    wait_http(
        &mut p,
        "rekor-server (v1)",
        &rekor_host,
        "/api/v1/log",
        &log,
    )?;
    processes.push(p);
    let key = fetch(&rekor_host, "/api/v1/log/publicKey")?;
    if !String::from_utf8_lossy(&key).contains("BEGIN PUBLIC KEY") {
        return Err(HarnessError::Http {
            method: "GET".into(),
            url: format!("http://{rekor_host}/api/v1/log/publicKey"),
            reason: "the answer is not a PEM public key".into(),
        });
    }
    write(&d.join("rekor-v1.pub"), &key)?;
    Ok(format!("http://{rekor_host}"))
}

impl Drop for TestSigstore {
    fn drop(&mut self) {
        for p in self.processes.iter_mut().rev() {
            p.stop();
        }
    }
}

/// Puts the trusted root's `tlogs` in the order of `urls` (their `baseUrl`s). `cosign trusted-root create` keeps
/// the logs in a Go map keyed by log ID, so its output order changes from run to run; tests and tools that read
/// "the first log" need the order the stack documents (Rekor v2, then Rekor v1).
fn order_transparency_logs(trusted_root: &Path, urls: &[&str]) -> Result<(), HarnessError> {
    let invalid = |what: String| {
        HarnessError::io(
            format!("ordering the logs of {}", trusted_root.display()),
            std::io::Error::new(std::io::ErrorKind::InvalidData, what),
        )
    };
    let bytes = std::fs::read(trusted_root)
        .map_err(|e| HarnessError::io(format!("reading {}", trusted_root.display()), e))?;
    let mut root: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    let tlogs = root
        .get_mut("tlogs")
        .and_then(|t| t.as_array_mut())
        .ok_or_else(|| invalid("no tlogs".into()))?;
    let position = |log: &serde_json::Value| {
        let url = log.get("baseUrl").and_then(|u| u.as_str()).unwrap_or("");
        urls.iter().position(|u| *u == url).unwrap_or(usize::MAX)
    };
    if tlogs.iter().any(|log| position(log) == usize::MAX) || tlogs.len() != urls.len() {
        return Err(invalid(format!(
            "expected the logs {urls:?}, found {tlogs:?}"
        )));
    }
    tlogs.sort_by_key(position);
    let text = serde_json::to_vec_pretty(&root).map_err(|e| invalid(e.to_string()))?;
    write(trusted_root, &text)
}

/// sigstore-python's ClientTrustConfig: the trusted root (each CA subject given a `commonName`, filled from its
/// `organization` when missing) and the signing config.
fn write_client_trust_config(
    trusted_root: &Path,
    signing_config: &Path,
    out: &Path,
) -> Result<(), HarnessError> {
    let read = |p: &Path| -> Result<serde_json::Value, HarnessError> {
        let bytes = std::fs::read(p)
            .map_err(|e| HarnessError::io(format!("reading {}", p.display()), e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            HarnessError::io(
                format!("parsing {}", p.display()),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })
    };
    let mut root = read(trusted_root)?;
    let config = read(signing_config)?;
    if let Some(cas) = root
        .get_mut("certificateAuthorities")
        .and_then(|c| c.as_array_mut())
    {
        for ca in cas {
            if let Some(subject) = ca.get_mut("subject").and_then(|s| s.as_object_mut()) {
                if !subject.contains_key("commonName") {
                    let org = subject
                        .get("organization")
                        .cloned()
                        .unwrap_or_else(|| serde_json::Value::String("sigstore".into()));
                    subject.insert("commonName".into(), org);
                }
            }
        }
    }
    let trust = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": root,
        "signingConfig": config,
    });
    write(out, trust.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parallel MariaDB bootstraps, as parallel Rekor v1 tests start them, all succeed: each has its own
    /// tmpdir. With the shared /tmp, 2 of 8 failed here ("Unknown table 'mysql.tmp_user_sys'").
    #[test]
    fn parallel_mariadb_bootstraps_do_not_share_temporary_tables() {
        if process::find_tool("mariadb-install-db", "apt-get install mariadb-server").is_err() {
            panic!("mariadb-install-db is not installed: run `make deps`");
        }
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let dirs: Vec<_> = (0..8)
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let results: Vec<Result<String, HarnessError>> = thread::scope(|s| {
            let handles: Vec<_> = dirs
                .iter()
                .map(|d| s.spawn(|| install_mariadb(d.path(), &user)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("bootstrap thread"))
                .collect()
        });
        for (d, r) in dirs.iter().zip(results) {
            let arg = r.unwrap_or_else(|e| panic!("bootstrap in {}: {e}", d.path().display()));
            assert_eq!(
                arg,
                format!("--tmpdir={}", d.path().join("mariadb-tmp").display())
            );
            let grants = d.path().join("mariadb/mysql/global_priv.frm");
            assert!(grants.exists(), "no grant tables: {}", grants.display());
        }
    }
}
