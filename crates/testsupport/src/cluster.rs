//! A real one-node Kubernetes cluster on this host, for tests that need Pods to run.
//!
//! [`TestCluster::start`] brings up, from the pinned peers (`make peers`) and Debian packages (`make deps`):
//! etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd 2.x (runc, bridge CNI), kubelet and
//! kube-proxy (iptables mode), and waits until the node is `Ready` and the `default` ServiceAccount exists. It
//! also starts a plain-HTTP `docker-registry` on the node address [`NODE_IP`] (the [`crate::registry`] harness),
//! builds two images there without a Docker engine (umoci + skopeo) and points containerd at it through a
//! `hosts.toml`. The same `NODE_IP:PORT` reaches it from the host and from Pods (by their default route), so a
//! program in a Pod reads the images the kubelet pulls:
//!
//! - [`TestCluster::pause_image`]: the sandbox image, a tiny static C program that waits for a signal;
//! - [`TestCluster::tools_image`]: Debian's static busybox (`/bin/sh`, `nc`, ...) and the `kubectl` peer.
//!
//! Addresses and names are fixed (the node and API server on [`NODE_IP`] held by the bridge [`NODE_BRIDGE`], Pods
//! in [`POD_CIDR`] on [`POD_BRIDGE`], Services in [`SERVICE_CIDR`], kubelet on port 10250, cgroup root
//! [`CGROUP_ROOT`]), so only one cluster can run per host: `start` takes an exclusive `flock` on
//! `<cache>/cluster/lock` and waits for it. Everything the cluster writes is under `<cache>/cluster/run`
//! ([`TestCluster::state_dir`]); its logs stay in `run/logs` after teardown.
//!
//! Teardown ([`TestCluster::teardown`], or Drop, also while panicking) deletes every Pod first, then stops the
//! daemons and sweeps what they leave: container processes and shims, mounts under the state dir, the
//! `KUBE-*`/`CNI-*` iptables chains, both bridges, the cgroup root, CNI result files, and restores
//! `net.ipv4.ip_forward`. [`sweep`] does the sweep alone and is idempotent: `start` runs it first, so a cluster
//! killed without teardown (SIGKILL, power loss) is cleaned by the next one. [`leftovers`] lists anything
//! found afterwards. Needs root.
//!
//! ```no_run
//! use kibaship_testsupport::cluster::TestCluster;
//! let cluster = TestCluster::start()?;
//! let out = cluster.kubectl_ok(&["get", "nodes"])?;
//! assert!(out.contains("Ready"));
//! cluster.teardown()?;
//! # Ok::<(), kibaship_testsupport::HarnessError>(())
//! ```

use std::fmt;
use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::HarnessError;
use crate::buildkit::mounts_under;
use crate::oci_layout::{ImageSpec, OciLayout, copy_file, run_checked, static_busybox};
use crate::ports::free_port;
use crate::process::{self, SupervisedProcess, find_tool};
use crate::registry::{RegistryMode, TestRegistry};
use crate::sigstore::{KubernetesIssuer, SigstoreOptions, TestSigstore};

/// The node's name.
pub const NODE_NAME: &str = "kibaship-node";
/// The node's address, also the API server's (held by [`NODE_BRIDGE`], a bridge with no ports).
pub const NODE_IP: &str = "10.201.0.1";
/// [`NODE_IP`] as an address.
pub const NODE_ADDR: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
/// The bridge that holds [`NODE_IP`].
pub const NODE_BRIDGE: &str = "kbs-node0";
/// The Pods' network (bridge CNI, host-local IPAM); its first address is the Pods' gateway.
pub const POD_CIDR: &str = "10.202.0.0/24";
/// The bridge the CNI plugin attaches Pods to.
pub const POD_BRIDGE: &str = "kbs-cni0";
/// ClusterIPs; the `kubernetes` Service is its first address.
pub const SERVICE_CIDR: &str = "10.203.0.0/24";
/// The API server's port on [`NODE_IP`].
pub const API_PORT: u16 = 6443;
/// The `iss` of the cluster's service-account tokens: the API server's own URL, where it serves the OIDC
/// discovery document and keys (`/.well-known/openid-configuration`, `/openid/v1/jwks`).
pub const SERVICE_ACCOUNT_ISSUER: &str = "https://10.201.0.1:6443";
/// kubelet's cgroup root (cgroup v1, cgroupfs driver), under every mounted hierarchy.
pub const CGROUP_ROOT: &str = "kibaship";
/// The CNI network's name (also the prefix of its cached results in `/var/lib/cni/results`).
pub const CNI_NETWORK: &str = "kibaship";

/// How long the cluster may take from the first daemon to node Ready (4-7 s measured here; the bound only keeps a
/// broken start from hanging).
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long Pods may take to be deleted at teardown before the sweep kills what is left.
const POD_DELETE_TIMEOUT: &str = "60s";

/// Serialises sweeps within this process (a signal handler thread and Drop may both run one).
static SWEEP: Mutex<()> = Mutex::new(());

/// What a test or the CLI learns about the time a start or teardown took (printed, never asserted).
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// From the first daemon started to the node reporting Ready (images built and pushed before).
    pub to_node_ready: Duration,
    /// The whole of [`TestCluster::start`], lock wait excluded.
    pub start_total: Duration,
}

/// A one-node cluster; torn down on drop.
pub struct TestCluster {
    dir: PathBuf,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    pause_image: String,
    tools_image: String,
    timings: Timings,
    // Field order is drop order: processes are stopped by `shutdown` before the registry and the lock go.
    processes: Vec<SupervisedProcess>,
    registry: Option<TestRegistry>,
    torn_down: bool,
    _lock: HostLock,
}

impl fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCluster")
            .field("dir", &self.dir)
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

/// What a [`sweep`] or [`leftovers`] check found still present.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Leftovers {
    /// Live processes started by the cluster (daemons, shims, containers), as `pid name`.
    pub processes: Vec<String>,
    /// Mount points under the state directory.
    pub mounts: Vec<String>,
    /// iptables/ip6tables chains named `KUBE-*` or `CNI-*`, as `family table chain`.
    pub iptables_chains: Vec<String>,
    /// [`NODE_BRIDGE`], [`POD_BRIDGE`] and veths attached to it, when present.
    pub links: Vec<String>,
    /// Directories under the cgroup root.
    pub cgroups: Vec<String>,
}

impl Leftovers {
    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
            && self.mounts.is_empty()
            && self.iptables_chains.is_empty()
            && self.links.is_empty()
            && self.cgroups.is_empty()
    }
}

fn cert_err(e: rcgen::Error) -> HarnessError {
    HarnessError::Certificates(e.to_string())
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.into();
    move |e| HarnessError::io(what, e)
}

fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), HarnessError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(format!("creating {}", parent.display())))?;
    }
    fs::write(path, contents).map_err(io_err(format!("writing {}", path.display())))
}

fn write_private(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), HarnessError> {
    write(path, contents)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(io_err(format!("chmod {}", path.display())))
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `<cache>/cluster`: the lock, the state dir, the saved `ip_forward`.
pub fn cluster_home() -> Result<PathBuf, HarnessError> {
    let peers = crate::peers::peer_cache_dir()?;
    Ok(peers.parent().unwrap_or(&peers).join("cluster"))
}

/// `<cache>/cluster/run`: everything a running cluster writes.
pub fn state_dir() -> Result<PathBuf, HarnessError> {
    Ok(cluster_home()?.join("run"))
}

/// Runs a command to completion; `Err` with its stderr when it fails.
fn run(program: &str, args: &[&str]) -> Result<String, HarnessError> {
    run_checked(program, args)
}

/// Runs a command, ignoring its outcome (best-effort cleanup).
fn run_quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

// ---------------------------------------------------------------------------------------------------------
// PKI and configuration files

struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Result<Self, HarnessError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "kibaship test cluster CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(cert_err)?;
        Ok(Pki {
            ca: CertifiedIssuer::self_signed(params, key).map_err(cert_err)?,
        })
    }

    /// The API server's serving certificate: reachable as the node address, the `kubernetes` ClusterIP, and
    /// its in-cluster names.
    fn api_server_cert(&self) -> Result<(String, String), HarnessError> {
        let sans = [
            NODE_IP,
            &service_ip(1),
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ];
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map_err(cert_err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(cert_err)?;
        let cert = params.signed_by(&key, &self.ca).map_err(cert_err)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// The `n`th address of [`SERVICE_CIDR`].
fn service_ip(n: u8) -> String {
    format!("10.203.0.{n}")
}

fn random_token() -> Result<String, HarnessError> {
    let mut bytes = [0u8; 24];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|e| HarnessError::Certificates(format!("random token: {e}")))?;
    Ok(hex::encode(bytes))
}

/// A kubeconfig (token auth) for the API server. JSON is YAML.
fn kubeconfig_text(ca_pem: &str, user: &str, token: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "kibaship",
            "cluster": {
                "server": format!("https://{NODE_IP}:{API_PORT}"),
                "certificate-authority-data": STANDARD.encode(ca_pem),
            },
        }],
        "users": [{ "name": user, "user": { "token": token } }],
        "contexts": [{ "name": "kibaship", "context": { "cluster": "kibaship", "user": user } }],
        "current-context": "kibaship",
    })
    .to_string()
}

/// The identities of the cluster's clients: (kubeconfig file stem, user, groups).
const IDENTITIES: [(&str, &str, &str); 5] = [
    ("admin", "kibaship-admin", "system:masters"),
    ("kubelet", "system:node:kibaship-node", "system:nodes"),
    ("controller-manager", "system:kube-controller-manager", ""),
    ("scheduler", "system:kube-scheduler", ""),
    ("kube-proxy", "system:kube-proxy", ""),
];

fn containerd_config(d: &Path, pause_image: &str, runc: &Path) -> String {
    let c = d.join("containerd");
    format!(
        r#"version = 3
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{sock}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{pause_image}"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "{certs}"

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{runc_root}"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{cni_conf}"
"#,
        root = s(&c.join("root")),
        state = s(&c.join("state")),
        sock = s(&c.join("containerd.sock")),
        opt = s(&c.join("opt")),
        certs = s(&c.join("certs.d")),
        runc = s(runc),
        runc_root = s(&c.join("runc")),
        cni_conf = s(&d.join("cni/net.d")),
    )
}

fn cni_config(d: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": POD_BRIDGE,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": POD_CIDR }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                    "dataDir": s(&d.join("cni/ipam")),
                },
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
        ],
    })
    .to_string()
}

fn kubelet_config(d: &Path) -> String {
    serde_json::json!({
        "kind": "KubeletConfiguration",
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzPort": 0,
        // A test cluster: the API server reaches the kubelet (logs, exec) without a client certificate.
        "authentication": { "anonymous": { "enabled": true }, "webhook": { "enabled": false } },
        "authorization": { "mode": "AlwaysAllow" },
        "tlsCertFile": s(&d.join("pki/kubelet.pem")),
        "tlsPrivateKeyFile": s(&d.join("pki/kubelet.key")),
        "containerRuntimeEndpoint": format!("unix://{}", s(&d.join("containerd/containerd.sock"))),
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": format!("/{CGROUP_ROOT}"),
        "failCgroupV1": false,
        "failSwapOn": false,
        // Pods never look names up through the host's resolver (there is no cluster DNS).
        "resolvConf": "",
        "podLogsDir": s(&d.join("pod-logs")),
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": false,
        "makeIPTablesUtilChains": true,
        "protectKernelDefaults": false,
        "registerNode": true,
        "rotateCertificates": false,
        "serverTLSBootstrap": false,
    })
    .to_string()
}

fn kube_proxy_config(d: &Path) -> String {
    serde_json::json!({
        "kind": "KubeProxyConfiguration",
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "clientConnection": { "kubeconfig": s(&d.join("kubeconfigs/kube-proxy")) },
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        // Leave the host's conntrack table size alone.
        "conntrack": { "maxPerCore": 0, "min": 0 },
    })
    .to_string()
}

/// The pause program: PID 1 of every sandbox; reaps children, exits on SIGINT/SIGTERM.
const PAUSE_C: &str = r#"#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
    signal(SIGINT, quit);
    signal(SIGTERM, quit);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
"#;

// ---------------------------------------------------------------------------------------------------------
// Images

/// Builds the pause and tools images into an OCI layout under `work` and pushes them to `registry`.
fn build_and_push_images(
    work: &Path,
    registry: &str,
    kubectl: &Path,
) -> Result<(String, String), HarnessError> {
    let cc = find_tool("cc", "apt-get install gcc libc6-dev, or run `make deps`")?;
    let busybox = static_busybox()?;

    let pause_root = work.join("pause-root");
    write(&work.join("pause.c"), PAUSE_C)?;
    fs::create_dir_all(&pause_root).map_err(io_err("creating the pause rootfs"))?;
    run(
        &s(&cc),
        &[
            "-static",
            "-Os",
            "-s",
            "-o",
            &s(&pause_root.join("pause")),
            &s(&work.join("pause.c")),
        ],
    )?;

    // busybox as /bin/sh (and every applet through `busybox APPLET`), kubectl with the libraries it links.
    let tools_root = work.join("tools-root");
    copy_file(busybox, &tools_root.join("bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", tools_root.join("bin/sh"))
        .map_err(io_err("linking /bin/sh"))?;
    copy_file(kubectl, &tools_root.join("bin/kubectl"))?;
    for lib in linked_libraries(kubectl)? {
        copy_file(
            &lib,
            &tools_root.join(lib.strip_prefix("/").unwrap_or(&lib)),
        )?;
    }
    fs::create_dir_all(tools_root.join("tmp")).map_err(io_err("creating /tmp"))?;

    let layout = OciLayout::init(&work.join("layout"))?;
    for (tag, root, cmd) in [
        ("pause", &pause_root, "/pause"),
        ("tools", &tools_root, "/bin/sh"),
    ] {
        layout.add_image(ImageSpec {
            tag,
            architecture: "amd64",
            config: &["--config.cmd", cmd, "--config.env", "PATH=/bin"],
            content: Some((root, "/")),
        })?;
    }
    let pause_image = format!("{registry}/kibaship/pause:1");
    let tools_image = format!("{registry}/kibaship/tools:1");
    for (tag, reference) in [("pause", &pause_image), ("tools", &tools_image)] {
        layout.push_insecure(tag, reference)?;
    }
    Ok((pause_image, tools_image))
}

/// Tekton Pipelines' version (the `tekton-pipelines` peer) and its programs, each an image with the binary at
/// `/ko-app/<name>` as `ko` would build it.
pub const TEKTON_VERSION: &str = "v1.3.0";
const TEKTON_PROGRAMS: [&str; 6] = [
    "controller",
    "webhook",
    "entrypoint",
    "nop",
    "workingdirinit",
    "sidecarlogresults",
];
/// The files of the module's `config/` that make up Tekton Pipelines itself (not the resolvers, events
/// controller or autoscaler).
const TEKTON_CONFIG_SKIP: [&str; 4] = ["resolvers", "events.yaml", "webhook-hpa.yaml", "dummy.go"];

/// Builds one `/ko-app/<name>` image per Tekton program into an OCI layout under `work` and pushes them to
/// `registry`; returns `ko://` path → image reference.
fn build_and_push_tekton_images(
    work: &Path,
    registry: &str,
) -> Result<Vec<(String, String)>, HarnessError> {
    let layout = OciLayout::init(&work.join("layout"))?;
    let mut images = Vec::new();
    for name in TEKTON_PROGRAMS {
        let binary = crate::peers::peer_binary(name)?;
        let root = work.join(name);
        copy_file(&binary, &root.join("ko-app").join(name))?;
        let entrypoint = format!("/ko-app/{name}");
        layout.add_image(ImageSpec {
            tag: name,
            architecture: "amd64",
            config: &[
                "--config.entrypoint",
                &entrypoint,
                "--config.env",
                "KO_DATA_PATH=/var/run/ko",
            ],
            content: Some((&root, "/")),
        })?;
        let reference = format!("{registry}/tekton/{name}:{TEKTON_VERSION}");
        layout.push_insecure(name, &reference)?;
        images.push((
            format!("ko://github.com/tektoncd/pipeline/cmd/{name}"),
            reference,
        ));
    }
    Ok(images)
}

/// The directory of `github.com/tektoncd/pipeline@v1.3.0` in the Go module cache (downloaded by `make peers`).
fn tekton_module_dir() -> Result<PathBuf, HarnessError> {
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/peers/tekton");
    let output = Command::new("go")
        .args([
            "mod",
            "download",
            "-json",
            &format!("github.com/tektoncd/pipeline@{TEKTON_VERSION}"),
        ])
        .current_dir(&module)
        .output()
        .map_err(|source| HarnessError::Spawn {
            command: "go mod download -json github.com/tektoncd/pipeline".into(),
            source,
        })?;
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| HarnessError::PeerUnavailable {
            name: "tekton-pipelines".into(),
            reason: format!(
                "`go mod download` gave no module directory ({e}): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })?;
    json["Dir"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| HarnessError::PeerUnavailable {
            name: "tekton-pipelines".into(),
            reason: format!("`go mod download` named no directory: {json}"),
        })
}

/// Tekton's `config/` manifests (sorted, as the release orders them), images rewritten.
fn tekton_manifests(config: &Path, rewrites: &[(String, String)]) -> Result<String, HarnessError> {
    fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), HarnessError> {
        let entries = fs::read_dir(dir).map_err(io_err(format!("reading {}", dir.display())))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if TEKTON_CONFIG_SKIP.contains(&name.as_str()) {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                collect(&path, out)?;
            } else if name.ends_with(".yaml") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    collect(config, &mut files)?;
    files.sort();
    let mut all = String::new();
    for file in files {
        let mut text =
            fs::read_to_string(&file).map_err(io_err(format!("reading {}", file.display())))?;
        for (from, to) in rewrites {
            text = text.replace(from.as_str(), to);
        }
        all.push_str("\n---\n");
        all.push_str(&text);
    }
    Ok(all)
}

/// The shared libraries `binary` loads (absolute paths), from `ldd`; none for a static binary.
fn linked_libraries(binary: &Path) -> Result<Vec<PathBuf>, HarnessError> {
    let output =
        Command::new("ldd")
            .arg(binary)
            .output()
            .map_err(|source| HarnessError::Spawn {
                command: format!("ldd {}", binary.display()),
                source,
            })?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .filter_map(|line| line.split_whitespace().find(|w| w.starts_with('/')))
        .map(PathBuf::from)
        .collect())
}

// ---------------------------------------------------------------------------------------------------------
// Host networking, cgroups

fn setup_host(d: &Path) -> Result<(), HarnessError> {
    let home = cluster_home()?;
    let forward = fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
        .map_err(io_err("reading net.ipv4.ip_forward"))?;
    let saved = home.join("ip_forward.saved");
    if !saved.exists() {
        write(&saved, forward.trim())?;
    }
    write(Path::new("/proc/sys/net/ipv4/ip_forward"), "1")?;
    run("ip", &["link", "add", NODE_BRIDGE, "type", "bridge"])?;
    run(
        "ip",
        &["addr", "add", &format!("{NODE_IP}/32"), "dev", NODE_BRIDGE],
    )?;
    run("ip", &["link", "set", NODE_BRIDGE, "up"])?;
    for hierarchy in cgroup_hierarchies() {
        let root = hierarchy.join(CGROUP_ROOT);
        fs::create_dir_all(&root).map_err(io_err(format!("creating {}", root.display())))?;
        if hierarchy.ends_with("cpuset") {
            // A new cpuset cgroup has no CPUs or memory nodes until given its parent's.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let value = fs::read_to_string(hierarchy.join(file))
                    .map_err(io_err(format!("reading {file}")))?;
                write(&root.join(file), value.trim())?;
            }
        }
    }
    fs::create_dir_all(d.join("logs")).map_err(io_err("creating the log dir"))?;
    Ok(())
}

/// The cgroup v1 hierarchies mounted under /sys/fs/cgroup (not the v2 one).
fn cgroup_hierarchies() -> Vec<PathBuf> {
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            (kind == "cgroup").then(|| PathBuf::from(point))
        })
        .collect()
}

/// Every directory under the cgroup root in every hierarchy, deepest first.
fn cgroup_dirs() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&entry.path(), out);
                }
            }
        }
        out.push(dir.to_path_buf());
    }
    let mut out = Vec::new();
    for hierarchy in cgroup_hierarchies() {
        let root = hierarchy.join(CGROUP_ROOT);
        if root.is_dir() {
            walk(&root, &mut out);
        }
    }
    out
}

/// Pids of every process in the cgroup root (the containers).
fn cgroup_pids() -> Vec<u32> {
    let mut pids: Vec<u32> = cgroup_dirs()
        .iter()
        .filter_map(|dir| fs::read_to_string(dir.join("cgroup.procs")).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Every process of the host (as far as `/proc` lists it now): its pid and its `/proc/<pid>` directory.
fn host_processes() -> Vec<(u32, PathBuf)> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((pid, entry.path()))
        })
        .collect()
}

/// Live processes started for the cluster: daemons (from their pid files), containerd shims (by executable),
/// containers (by cgroup).
fn cluster_processes(d: &Path) -> Vec<(u32, String)> {
    let mut pids = cgroup_pids();
    let peers_dir = crate::peers::peer_cache_dir().ok();
    if let Ok(entries) = fs::read_dir(d.join("logs")) {
        for entry in entries.flatten() {
            // A pid file may outlive its process and the pid be reused: only a process still running one
            // of the cluster's programs (a peer binary, Debian's etcd) counts.
            if entry.path().extension().is_some_and(|e| e == "pid")
                && let Ok(text) = fs::read_to_string(entry.path())
                && let Ok(pid) = text.trim().parse::<u32>()
                && let Ok(exe) = fs::read_link(format!("/proc/{pid}/exe"))
                && (peers_dir.as_ref().is_some_and(|p| exe.starts_with(p))
                    || exe.file_name().is_some_and(|n| n == "etcd"))
            {
                pids.push(pid);
            }
        }
    }
    let shim = crate::peers::peer_binary("containerd-shim-runc-v2").ok();
    let containerd = crate::peers::peer_binary("containerd").ok();
    for (pid, dir) in host_processes() {
        if let Ok(exe) = fs::read_link(dir.join("exe"))
            && (Some(&exe) == shim.as_ref() || Some(&exe) == containerd.as_ref())
        {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter()
        .filter(|&p| process::process_alive(p))
        .map(|p| {
            let name = fs::read_to_string(format!("/proc/{p}/comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_default();
            (p, name)
        })
        .collect()
}

const IPTABLES: [&str; 2] = ["iptables", "ip6tables"];
const TABLES: [&str; 4] = ["filter", "nat", "mangle", "raw"];

fn ours(chain: &str) -> bool {
    chain.starts_with("KUBE-") || chain.starts_with("CNI-")
}

fn iptables_chains() -> Vec<String> {
    let mut found = Vec::new();
    for family in IPTABLES {
        for table in TABLES {
            let Ok(rules) = run(family, &["-w", "-t", table, "-S"]) else {
                continue;
            };
            for line in rules.lines() {
                if let Some(chain) = line.strip_prefix("-N ")
                    && ours(chain.trim())
                {
                    found.push(format!("{family} {table} {}", chain.trim()));
                }
            }
        }
    }
    found
}

/// Removes every rule that jumps to a `KUBE-*`/`CNI-*` chain from the built-in chains, then those chains.
fn remove_iptables_chains() {
    for family in IPTABLES {
        for table in TABLES {
            let Ok(rules) = run(family, &["-w", "-t", table, "-S"]) else {
                continue;
            };
            let mut chains = Vec::new();
            for line in rules.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    ["-N", chain] if ours(chain) => chains.push(chain.to_string()),
                    ["-A", chain, rest @ ..] if !ours(chain) => {
                        let jumps_to_ours = rest
                            .windows(2)
                            .any(|w| (w[0] == "-j" || w[0] == "-g") && ours(w[1]));
                        if jumps_to_ours {
                            // `-S` prints rules in the form `-D` accepts (quoted comments included).
                            let delete = format!("{family} -w -t {table} -D {}", &line[3..]);
                            run_quiet("sh", &["-c", &delete]);
                        }
                    }
                    _ => {}
                }
            }
            for chain in &chains {
                run_quiet(family, &["-w", "-t", table, "-F", chain]);
            }
            for chain in &chains {
                run_quiet(family, &["-w", "-t", table, "-X", chain]);
            }
        }
    }
}

fn cluster_links() -> Vec<String> {
    let mut links = Vec::new();
    for bridge in [NODE_BRIDGE, POD_BRIDGE] {
        if Path::new("/sys/class/net").join(bridge).exists() {
            links.push(bridge.to_string());
            if let Ok(ports) = fs::read_dir(Path::new("/sys/class/net").join(bridge).join("brif")) {
                links.extend(
                    ports
                        .flatten()
                        .map(|p| p.file_name().to_string_lossy().into_owned()),
                );
            }
        }
    }
    links
}

/// What the cluster left on the host (see [`Leftovers`]).
pub fn leftovers() -> Result<Leftovers, HarnessError> {
    let d = state_dir()?;
    Ok(Leftovers {
        processes: cluster_processes(&d)
            .into_iter()
            .map(|(p, n)| format!("{p} {n}"))
            .collect(),
        mounts: mounts_under(&d),
        iptables_chains: iptables_chains(),
        links: cluster_links(),
        cgroups: cgroup_dirs().iter().map(|p| s(p)).collect(),
    })
}

fn kill_all(pids: &[(u32, String)]) {
    for &(p, _) in pids {
        let pid = Pid::from_raw(i32::try_from(p).unwrap_or(i32::MAX));
        let _ = signal::kill(pid, Signal::SIGKILL);
    }
}

/// Removes everything a cluster (this one, or one killed without teardown) leaves on the host, and restores
/// `net.ipv4.ip_forward`. Idempotent; logs under `run/logs` are kept. Returns what could not be removed.
pub fn sweep() -> Result<Leftovers, HarnessError> {
    let _serial = SWEEP.lock().unwrap_or_else(|e| e.into_inner());
    let home = cluster_home()?;
    let d = state_dir()?;
    // Processes: daemons, shims and containers, until none is left (containers may fork while dying).
    for _ in 0..50 {
        let live = cluster_processes(&d);
        if live.is_empty() {
            break;
        }
        kill_all(&live);
        thread::sleep(Duration::from_millis(100));
    }
    for point in mounts_under(&d) {
        run_quiet("umount", &["--lazy", &point]);
    }
    remove_iptables_chains();
    for link in cluster_links().iter().rev() {
        run_quiet("ip", &["link", "delete", link]);
    }
    for dir in cgroup_dirs() {
        let _ = fs::remove_dir(&dir);
    }
    if let Ok(entries) = fs::read_dir("/var/lib/cni/results") {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{CNI_NETWORK}-"))
            {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    let saved = home.join("ip_forward.saved");
    if let Ok(value) = fs::read_to_string(&saved) {
        let _ = fs::write("/proc/sys/net/ipv4/ip_forward", value.trim());
        let _ = fs::remove_file(&saved);
    }
    // Everything but the logs (pid files included: their processes are gone).
    if let Ok(entries) = fs::read_dir(&d) {
        for entry in entries.flatten() {
            if entry.file_name() != "logs" {
                let path = entry.path();
                let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
            }
        }
    }
    if let Ok(entries) = fs::read_dir(d.join("logs")) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "pid") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    leftovers()
}

/// The host-wide cluster lock (an exclusive `flock` on `<cache>/cluster/lock`), held until dropped. A
/// [`TestCluster`] holds it; take it yourself to [`sweep`] or check [`leftovers`] without racing a cluster that
/// another test is starting.
pub struct HostLock {
    /// `None` when the lock is held by the process that started this one ([`LOCK_HELD_BY_PARENT`]).
    _lock: Option<Flock<File>>,
}

/// Set to `1` in the environment of a `kibaship-harness` that a test starts while the test itself holds the host
/// lock: the harness then does not take it again (it would wait forever). Only for tests that must keep other
/// clusters out across the harness's death (a SIGKILLed harness's leftovers must still be there when the test
/// looks; a waiting cluster would otherwise take the released lock and sweep them first).
pub const LOCK_HELD_BY_PARENT: &str = "KIBASHIP_CLUSTER_LOCK_HELD_BY_PARENT";

impl fmt::Debug for HostLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostLock")
    }
}

/// Takes the host-wide cluster lock, waiting while another cluster runs.
pub fn lock_host() -> Result<HostLock, HarnessError> {
    if std::env::var_os(LOCK_HELD_BY_PARENT).is_some_and(|v| v == "1") {
        return Ok(HostLock { _lock: None });
    }
    Ok(HostLock {
        _lock: Some(take_lock()?),
    })
}

/// Takes the host-wide cluster lock, waiting for another cluster to finish.
fn take_lock() -> Result<Flock<File>, HarnessError> {
    let home = cluster_home()?;
    fs::create_dir_all(&home).map_err(io_err(format!("creating {}", home.display())))?;
    let path = home.join("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| HarnessError::io(format!("locking {}", path.display()), errno.into()))
}

// ---------------------------------------------------------------------------------------------------------
// The cluster

struct Launch<'a> {
    d: &'a Path,
    logs: PathBuf,
    processes: &'a mut Vec<SupervisedProcess>,
}

impl Launch<'_> {
    fn spawn(&mut self, what: &str, program: &Path, args: &[String]) -> Result<(), HarnessError> {
        let log = self.logs.join(format!("{what}.log"));
        let p = SupervisedProcess::spawn(what, program, args, &log)?;
        self.processes.push(p);
        Ok(())
    }

    /// Fails with the exited daemon's log tail if any daemon has died.
    fn check(&mut self) -> Result<(), HarnessError> {
        for p in self.processes.iter_mut() {
            p.check_running()?;
        }
        Ok(())
    }

    fn kubeconfig(&self, stem: &str) -> String {
        s(&self.d.join("kubeconfigs").join(stem))
    }
}

fn flags(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .map(|(flag, value)| format!("--{flag}={value}"))
        .collect()
}

/// Free space the cluster needs on its state dir's filesystem: images, container layers, logs and the
/// registry's storage take about 1 GiB; the rest is margin for what the tests push.
const MIN_FREE_BYTES: u64 = 3 << 30;

/// Refuses to start on a nearly full disk: the kubelet would evict Pods for `ephemeral-storage` (its
/// threshold here is 1% free), and a test would then time out waiting for a Deployment instead of saying why.
fn check_free_space(dir: &Path) -> Result<(), HarnessError> {
    let stat = nix::sys::statvfs::statvfs(dir).map_err(|e| HarnessError::State {
        dir: dir.to_path_buf(),
        reason: format!("cannot read the free space of its filesystem: {e}"),
    })?;
    let free = stat.blocks_available().saturating_mul(stat.fragment_size());
    let total = stat.blocks().saturating_mul(stat.fragment_size());
    if free < MIN_FREE_BYTES || free.saturating_mul(50) < total {
        return Err(HarnessError::State {
            dir: dir.to_path_buf(),
            reason: format!(
                "only {:.1} GiB of {:.1} GiB free on its filesystem; the cluster needs at least {} GiB and 2% \
                 free (below 1% the kubelet evicts every Pod)",
                free as f64 / f64::from(1u32 << 30),
                total as f64 / f64::from(1u32 << 30),
                MIN_FREE_BYTES >> 30
            ),
        });
    }
    Ok(())
}

impl TestCluster {
    /// Takes the host-wide lock, sweeps what an earlier cluster left, and starts the cluster; returns once the
    /// node is Ready and the `default` ServiceAccount exists. Blocking; needs root.
    pub fn start() -> Result<TestCluster, HarnessError> {
        let lock = lock_host()?;
        let started = Instant::now();
        let left = sweep()?;
        if !left.is_empty() {
            return Err(HarnessError::State {
                dir: state_dir()?,
                reason: format!(
                    "an earlier cluster left things the sweep could not remove: {left:?}"
                ),
            });
        }
        let d = state_dir()?;
        fs::create_dir_all(d.join("logs")).map_err(io_err("creating the state dir"))?;
        check_free_space(&d)?;
        let mut processes = Vec::new();
        let mut registry = None;
        match Self::launch(&d, &mut processes, &mut registry, started) {
            Ok((kubeconfig, kubectl, pause_image, tools_image, timings)) => Ok(TestCluster {
                dir: d,
                kubeconfig,
                kubectl,
                pause_image,
                tools_image,
                timings,
                processes,
                registry,
                torn_down: false,
                _lock: lock,
            }),
            Err(e) => {
                for p in processes.iter_mut().rev() {
                    p.stop();
                }
                let _ = sweep();
                eprintln!(
                    "cluster harness: start failed; logs in {}",
                    d.join("logs").display()
                );
                Err(e)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn launch(
        d: &Path,
        processes: &mut Vec<SupervisedProcess>,
        registry_slot: &mut Option<TestRegistry>,
        started: Instant,
    ) -> Result<(PathBuf, PathBuf, String, String, Timings), HarnessError> {
        let peer = crate::peers::peer_binary;
        let (api_server, kubectl) = (peer("kube-apiserver")?, peer("kubectl")?);
        let (kubelet, kube_proxy) = (peer("kubelet")?, peer("kube-proxy")?);
        let (scheduler, controller_manager) =
            (peer("kube-scheduler")?, peer("kube-controller-manager")?);
        let containerd = peer("containerd")?;
        let shim = peer("containerd-shim-runc-v2")?;
        let etcd = find_tool("etcd", "apt-get install etcd-server, or run `make deps`")?;
        let runc = find_tool("runc", "apt-get install runc, or run `make deps`")?;
        for plugin in ["bridge", "host-local", "loopback", "portmap"] {
            if !Path::new("/usr/lib/cni").join(plugin).is_file() {
                return Err(HarnessError::ToolMissing {
                    tool: format!("/usr/lib/cni/{plugin}"),
                    hint: "apt-get install containernetworking-plugins, or run `make deps`".into(),
                });
            }
        }
        find_tool("iptables", "apt-get install iptables, or run `make deps`")?;

        // The node's bridge and address first: the registry listens there.
        setup_host(d)?;

        // The registry and the images. On the node address, not 127.0.0.1: Pods reach it through their default
        // route, the host (containerd, skopeo, tests) directly; loopback and the port-less bridge only, so
        // nothing outside the host does. Under the state dir, so `sweep` removes its storage when the harness
        // was killed before drop.
        let registry = TestRegistry::start_with(RegistryMode::Plain, d, IpAddr::V4(NODE_ADDR))?;
        let registry_host = registry.host();
        *registry_slot = Some(registry);
        let (pause_image, tools_image) =
            build_and_push_images(&d.join("images"), &registry_host, &kubectl)?;

        // PKI, tokens, kubeconfigs, configuration files.
        let pki = Pki::new()?;
        let ca_pem = pki.ca.pem();
        let (api_cert, api_key) = pki.api_server_cert()?;
        let sa_key = KeyPair::generate().map_err(cert_err)?;
        let pki_dir = d.join("pki");
        write(&pki_dir.join("ca.pem"), &ca_pem)?;
        write(&pki_dir.join("apiserver.pem"), &api_cert)?;
        write_private(&pki_dir.join("apiserver.key"), &api_key)?;
        // The kubelet serves with the API server's certificate (it names the node address).
        write(&pki_dir.join("kubelet.pem"), &api_cert)?;
        write_private(&pki_dir.join("kubelet.key"), &api_key)?;
        write(&pki_dir.join("sa.pub"), sa_key.public_key_pem())?;
        write_private(&pki_dir.join("sa.key"), sa_key.serialize_pem())?;
        let mut tokens = String::new();
        for (stem, user, groups) in IDENTITIES {
            let token = random_token()?;
            tokens.push_str(&format!("{token},{user},{user},\"{groups}\"\n"));
            write_private(
                &d.join("kubeconfigs").join(stem),
                kubeconfig_text(&ca_pem, user, &token),
            )?;
        }
        write_private(&pki_dir.join("tokens.csv"), tokens)?;
        write(
            &d.join("containerd/config.toml"),
            containerd_config(d, &pause_image, &runc),
        )?;
        write(
            &d.join("containerd/certs.d")
                .join(&registry_host)
                .join("hosts.toml"),
            format!(
                "server = \"http://{registry_host}\"\n\n[host.\"http://{registry_host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )?;
        write(&d.join("cni/net.d/10-kibaship.conflist"), cni_config(d))?;
        write(&d.join("kubelet/config.json"), kubelet_config(d))?;
        write(&d.join("kube-proxy/config.json"), kube_proxy_config(d))?;

        let cluster_start = Instant::now();
        let mut l = Launch {
            d,
            logs: d.join("logs"),
            processes,
        };

        let etcd_port = free_port()?;
        let etcd_peer = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        l.spawn(
            "etcd",
            &etcd,
            &flags(&[
                ("name", "kibaship".into()),
                ("data-dir", s(&d.join("etcd"))),
                ("listen-client-urls", etcd_url.clone()),
                ("advertise-client-urls", etcd_url.clone()),
                ("listen-peer-urls", peer_url.clone()),
                ("initial-advertise-peer-urls", peer_url.clone()),
                ("initial-cluster", format!("kibaship={peer_url}")),
            ]),
        )?;
        l.spawn(
            "kube-apiserver",
            &api_server,
            &flags(&[
                ("etcd-servers", etcd_url),
                ("bind-address", NODE_IP.into()),
                ("advertise-address", NODE_IP.into()),
                ("secure-port", API_PORT.to_string()),
                ("tls-cert-file", s(&pki_dir.join("apiserver.pem"))),
                ("tls-private-key-file", s(&pki_dir.join("apiserver.key"))),
                ("client-ca-file", s(&pki_dir.join("ca.pem"))),
                ("token-auth-file", s(&pki_dir.join("tokens.csv"))),
                ("authorization-mode", "Node,RBAC".into()),
                ("allow-privileged", "true".into()),
                ("kubelet-preferred-address-types", "InternalIP".into()),
                // The first issuer signs the tokens: an address the host can reach, so that a Fulcio on the host
                // can read its discovery document (keyless signing with a Pod's token). The in-cluster name is
                // still accepted.
                ("service-account-issuer", SERVICE_ACCOUNT_ISSUER.into()),
                (
                    "service-account-issuer",
                    "https://kubernetes.default.svc".into(),
                ),
                ("service-account-key-file", s(&pki_dir.join("sa.pub"))),
                (
                    "service-account-signing-key-file",
                    s(&pki_dir.join("sa.key")),
                ),
                ("service-cluster-ip-range", SERVICE_CIDR.into()),
                ("cert-dir", s(&d.join("apiserver-certs"))),
                ("profiling", "false".into()),
            ]),
        )?;
        let admin = d.join("kubeconfigs/admin");
        let cluster = ClusterCtl {
            kubectl: kubectl.clone(),
            kubeconfig: admin.clone(),
            cache: d.join("kubectl-cache"),
        };
        wait_for(&mut l, "kube-apiserver /readyz", || {
            cluster
                .kubectl(&["get", "--raw", "/readyz"])
                .status
                .success()
        })?;
        l.spawn(
            "kube-controller-manager",
            &controller_manager,
            &flags(&[
                ("kubeconfig", l.kubeconfig("controller-manager")),
                (
                    "service-account-private-key-file",
                    s(&pki_dir.join("sa.key")),
                ),
                ("root-ca-file", s(&pki_dir.join("ca.pem"))),
                // Each controller with its own service account and role (system:controller:*): the
                // controller manager's own user lacks most of their rights.
                ("use-service-account-credentials", "true".into()),
                ("service-cluster-ip-range", SERVICE_CIDR.into()),
                ("leader-elect", "false".into()),
                ("bind-address", "127.0.0.1".into()),
                ("secure-port", "10257".into()),
                ("cert-dir", s(&d.join("controller-manager-certs"))),
                ("profiling", "false".into()),
            ]),
        )?;
        l.spawn(
            "kube-scheduler",
            &scheduler,
            &flags(&[
                ("kubeconfig", l.kubeconfig("scheduler")),
                ("leader-elect", "false".into()),
                ("bind-address", "127.0.0.1".into()),
                ("secure-port", "10259".into()),
                ("cert-dir", s(&d.join("scheduler-certs"))),
                ("profiling", "false".into()),
            ]),
        )?;
        let shim_dir = shim.parent().unwrap_or(Path::new("/"));
        let path = format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            s(shim_dir)
        );
        let mut containerd_args = vec![format!("PATH={path}"), s(&containerd)];
        containerd_args.extend(["--config".to_string(), s(&d.join("containerd/config.toml"))]);
        l.spawn("containerd", Path::new("/usr/bin/env"), &containerd_args)?;
        let sock = d.join("containerd/containerd.sock");
        wait_for(&mut l, "containerd's socket", || sock.exists())?;
        l.spawn(
            "kubelet",
            &kubelet,
            &flags(&[
                ("config", s(&d.join("kubelet/config.json"))),
                ("kubeconfig", l.kubeconfig("kubelet")),
                ("hostname-override", NODE_NAME.into()),
                ("node-ip", NODE_IP.into()),
                ("root-dir", s(&d.join("kubelet/root"))),
                ("cert-dir", s(&d.join("kubelet/certs"))),
            ]),
        )?;
        l.spawn(
            "kube-proxy",
            &kube_proxy,
            &flags(&[("config", s(&d.join("kube-proxy/config.json")))]),
        )?;
        wait_for(&mut l, "node Ready", || {
            cluster
                .kubectl(&[
                    "get",
                    "node",
                    NODE_NAME,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])
                .stdout
                == b"True"
        })?;
        let to_node_ready = cluster_start.elapsed();
        wait_for(&mut l, "the default ServiceAccount", || {
            cluster
                .kubectl(&["get", "serviceaccount", "default", "-n", "default"])
                .status
                .success()
                && cluster
                    .kubectl(&["get", "configmap", "kube-root-ca.crt", "-n", "default"])
                    .status
                    .success()
        })?;
        let timings = Timings {
            to_node_ready,
            start_total: started.elapsed(),
        };
        Ok((admin, kubectl, pause_image, tools_image, timings))
    }

    /// The admin kubeconfig (group `system:masters`, token auth), server `https://10.201.0.1:6443`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The cluster CA's certificate (PEM): it signed the API server's serving certificate.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("pki/ca.pem")
    }

    /// The state directory (`<cache>/cluster/run`); logs of every daemon are in its `logs/`.
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the daemon started as `what` (`containerd`, `kubelet`, `kube-proxy`, ...) and starts it again as it
    /// was started, as an operator's restart would; for containerd, returns once its socket answers again. The
    /// containers keep running meanwhile (their shims are not containerd's children). Returns how long it took.
    pub fn restart_daemon(&mut self, what: &str) -> Result<Duration, HarnessError> {
        let started = Instant::now();
        let process = self
            .processes
            .iter_mut()
            .find(|p| p.what() == what)
            .ok_or_else(|| HarnessError::State {
                dir: self.dir.clone(),
                reason: format!("no daemon {what} in this cluster"),
            })?;
        process.restart()?;
        if what == "containerd" {
            let sock = self.dir.join("containerd/containerd.sock");
            let deadline = Instant::now() + Duration::from_secs(30);
            while std::os::unix::net::UnixStream::connect(&sock).is_err() {
                process.check_running()?;
                if Instant::now() > deadline {
                    return Err(HarnessError::io(
                        format!("waiting for {} to accept connections", sock.display()),
                        std::io::Error::from(std::io::ErrorKind::TimedOut),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(started.elapsed())
    }

    /// Restarts the cluster's registry ([`TestRegistry::restart`]): stopped, kept down for `down_for`, started
    /// again on the same address and storage. Returns how long it was away.
    pub fn restart_registry(&mut self, down_for: Duration) -> Result<Duration, HarnessError> {
        let dir = self.dir.clone();
        self.registry
            .as_mut()
            .ok_or_else(|| HarnessError::State {
                dir,
                reason: "the cluster has no registry".into(),
            })?
            .restart(down_for)
    }

    /// A private Sigstore for keyless signing in the cluster: started on the node address (Pods reach it), its
    /// Fulcio trusting the cluster's service-account issuer (whose discovery document is opened to
    /// unauthenticated readers, as a public issuer's is: the ClusterRoleBinding `oidc-discovery-unauthenticated`),
    /// and the ConfigMap `kibaship-sigstore` in namespace `default` holding its `signing_config.json` and
    /// `trusted_root.json`, as the Tasks mount it. A Pod's projected service-account token (audience `sigstore`)
    /// then gets a certificate for `https://kubernetes.io/namespaces/<ns>/serviceaccounts/<sa>`. Drop it before
    /// [`TestCluster::teardown`]: it listens on the node address.
    pub fn start_keyless_sigstore(&self) -> Result<TestSigstore, HarnessError> {
        self.kubectl_ok(&[
            "create",
            "clusterrolebinding",
            "oidc-discovery-unauthenticated",
            "--clusterrole=system:service-account-issuer-discovery",
            "--group=system:unauthenticated",
        ])?;
        let sigstore = TestSigstore::start_with(SigstoreOptions {
            listen: Some(NODE_ADDR),
            kubernetes_issuer: Some(KubernetesIssuer {
                url: SERVICE_ACCOUNT_ISSUER.to_string(),
                ca_file: self.ca_path(),
            }),
            ..Default::default()
        })?;
        let read = |path: &Path| {
            fs::read_to_string(path).map_err(io_err("reading the private Sigstore's configuration"))
        };
        let config_map = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": "kibaship-sigstore", "namespace": "default" },
            "data": {
                "signing_config.json": read(&sigstore.signing_config_path())?,
                "trusted_root.json": read(&sigstore.trusted_root_path())?,
            },
        });
        self.kubectl_stdin_ok(&["apply", "-f", "-"], &config_map.to_string())?;
        Ok(sigstore)
    }

    /// Kills with SIGKILL every process running in the cluster's Pods (its cgroup is under `kubepods`) whose
    /// command name is `comm` (the kernel's, at most 15 bytes: `kibaship-webhoo` for `kibaship-webhook`), as an
    /// OOM kill or a node's hard stop would: no signal handler runs, open connections are cut. Processes of the
    /// same name outside the cluster (a test's own) are left alone. Returns the PIDs killed.
    pub fn kill_pod_processes(&self, comm: &str) -> Result<Vec<u32>, HarnessError> {
        let mut killed = Vec::new();
        for (pid, dir) in host_processes() {
            let same_name = fs::read_to_string(dir.join("comm"))
                .is_ok_and(|c| c.trim_end_matches('\n') == comm);
            let in_pod = same_name
                && fs::read_to_string(dir.join("cgroup")).is_ok_and(|c| c.contains("kubepods"));
            if in_pod {
                let raw = i32::try_from(pid).map_err(|_| HarnessError::State {
                    dir: self.dir.clone(),
                    reason: format!("process id {pid} out of range"),
                })?;
                // Gone meanwhile is fine: it was not killed by us, and is not listed.
                if signal::kill(Pid::from_raw(raw), Signal::SIGKILL).is_ok() {
                    killed.push(pid);
                }
            }
        }
        Ok(killed)
    }

    /// The registry containerd pulls from: plain HTTP on [`NODE_IP`], reachable from the host and from Pods.
    pub fn registry(&self) -> Option<&TestRegistry> {
        self.registry.as_ref()
    }

    /// `127.0.0.1:PORT/kibaship/pause:1`, the sandbox image.
    pub fn pause_image(&self) -> &str {
        &self.pause_image
    }

    /// `127.0.0.1:PORT/kibaship/tools:1`: static busybox (`/bin/sh`, `/bin/busybox`) and `/bin/kubectl`.
    pub fn tools_image(&self) -> &str {
        &self.tools_image
    }

    /// Builds an image of host programs and pushes it to the cluster's registry as `<registry>/<name>`
    /// (`name` is `repository:tag`); returns that reference. Each `(binary, path)` puts `binary` at `path` in the
    /// image with the shared libraries it links (as `ldd` names them, at their host paths); the image also has
    /// Debian's static busybox as `/bin/sh`, the host's CA bundle and a world-writable `/tmp`. The entrypoint is
    /// the first path.
    /// For our own binaries in Pods (the webhook, `kibaship-step` in Tekton Tasks) without a Docker engine.
    pub fn push_program_image(
        &self,
        name: &str,
        binaries: &[(&Path, &str)],
    ) -> Result<String, HarnessError> {
        let registry = self
            .registry
            .as_ref()
            .map(TestRegistry::host)
            .ok_or_else(|| {
                HarnessError::io(
                    "the cluster has no registry",
                    std::io::ErrorKind::NotFound.into(),
                )
            })?;
        let work = tempfile::Builder::new()
            .prefix("program-image-")
            .tempdir_in(&self.dir)
            .map_err(io_err("creating the image's work directory"))?;
        let root = work.path().join("rootfs");
        for (binary, at) in binaries {
            copy_file(binary, &root.join(at.trim_start_matches('/')))?;
            for lib in linked_libraries(binary)? {
                copy_file(&lib, &root.join(lib.strip_prefix("/").unwrap_or(&lib)))?;
            }
        }
        copy_file(static_busybox()?, &root.join("bin/busybox"))?;
        if !root.join("bin/sh").exists() {
            std::os::unix::fs::symlink("busybox", root.join("bin/sh"))
                .map_err(io_err("linking /bin/sh"))?;
        }
        copy_file(
            Path::new("/etc/ssl/certs/ca-certificates.crt"),
            &root.join("etc/ssl/certs/ca-certificates.crt"),
        )?;
        fs::create_dir_all(root.join("tmp")).map_err(io_err("creating /tmp"))?;
        // World-writable and sticky, as in any base image: programs that run as a non-root uid write there.
        fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))
            .map_err(io_err("chmod /tmp"))?;
        let entrypoint = binaries.first().map(|(_, at)| *at).unwrap_or("/bin/sh");
        let layout = OciLayout::init(&work.path().join("layout"))?;
        layout.add_image(ImageSpec {
            tag: "program",
            architecture: "amd64",
            config: &[
                "--config.entrypoint",
                entrypoint,
                "--config.env",
                "PATH=/usr/local/bin:/usr/bin:/bin",
            ],
            content: Some((&root, "/")),
        })?;
        let reference = format!("{registry}/{name}");
        layout.push_insecure("program", &reference)?;
        Ok(reference)
    }

    /// Makes the cluster's registry the node's mirror of `upstream` (a registry host such as `ghcr.io` or
    /// `docker.io`): the kubelet then pulls `upstream/path:tag` from `<registry>/path:tag`, so Tasks that name
    /// upstream images run as shipped offline (push the stand-ins there first). containerd reads the mirror
    /// configuration at each pull; nothing is restarted.
    pub fn mirror(&self, upstream: &str) -> Result<(), HarnessError> {
        let registry = self
            .registry
            .as_ref()
            .map(TestRegistry::host)
            .ok_or_else(|| {
                HarnessError::io(
                    "the cluster has no registry",
                    std::io::ErrorKind::NotFound.into(),
                )
            })?;
        write(
            &self
                .dir
                .join("containerd/certs.d")
                .join(upstream)
                .join("hosts.toml"),
            format!(
                "server = \"https://{upstream}\"\n\n[host.\"http://{registry}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
    }

    /// How long the start took.
    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// The `kubectl` peer.
    pub fn kubectl_path(&self) -> &Path {
        &self.kubectl
    }

    fn ctl(&self) -> ClusterCtl {
        ClusterCtl {
            kubectl: self.kubectl.clone(),
            kubeconfig: self.kubeconfig.clone(),
            cache: self.dir.join("kubectl-cache"),
        }
    }

    /// Runs kubectl as the admin against this cluster (only it) and returns its output, whatever its status.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.ctl().kubectl(args)
    }

    /// Runs kubectl; its stdout, or [`HarnessError::CommandFailed`] with its stderr.
    pub fn kubectl_ok(&self, args: &[&str]) -> Result<String, HarnessError> {
        crate::kube::checked(args, self.kubectl(args))
    }

    /// As [`TestCluster::kubectl_ok`], with `stdin` on kubectl's standard input (`apply -f -`).
    pub fn kubectl_stdin_ok(&self, args: &[&str], stdin: &str) -> Result<String, HarnessError> {
        crate::kube::checked(args, self.ctl().kubectl_stdin(args, stdin))
    }

    /// The `Succeeded` condition of a Tekton run (`kind`: `taskrun` or `pipelinerun`) once it is `True` or
    /// `False`, asked every half second; `None` if it is neither within `within` (the bound only keeps a broken
    /// cluster from hanging a test).
    pub fn tekton_run_outcome(&self, kind: &str, name: &str, within: Duration) -> Option<String> {
        let pause = Duration::from_millis(500);
        let tries = u32::try_from(within.as_millis() / pause.as_millis()).unwrap_or(u32::MAX);
        crate::kube::wait_until(tries, pause, || {
            self.kubectl_ok(&[
                "get",
                kind,
                name,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Succeeded\")].status}",
            ])
            .ok()
            .filter(|s| s == "True" || s == "False")
        })
    }

    /// A result of a TaskRun, from its status (empty when the run did not write it).
    pub fn task_run_result(&self, run: &str, name: &str) -> Result<String, HarnessError> {
        self.kubectl_ok(&[
            "get",
            "taskrun",
            run,
            "-o",
            &format!("jsonpath={{.status.results[?(@.name==\"{name}\")].value}}"),
        ])
    }

    /// The Tekton runs and Pods, the logs of the Pods labelled `label` (e.g. `tekton.dev/taskRun=NAME`) and the
    /// kubelet's, for a failure message.
    pub fn describe_tekton_runs(&self, label: &str) -> String {
        let objects = self
            .kubectl_ok(&["get", "pipelinerun,taskrun,pod", "-o", "yaml"])
            .unwrap_or_default();
        let logs = self
            .kubectl_ok(&["logs", "-l", label, "--all-containers", "--tail=80"])
            .unwrap_or_default();
        format!(
            "{objects}\nlogs:\n{logs}\nkubelet:\n{}",
            self.log_tail("kubelet")
        )
    }

    /// The end of a daemon's log (`kubelet`, `containerd`, `kube-apiserver`, ...), for failure messages.
    pub fn log_tail(&self, daemon: &str) -> String {
        process::log_tail(&self.dir.join("logs").join(format!("{daemon}.log")))
    }

    /// Installs Tekton Pipelines ([`TEKTON_VERSION`], the `tekton-pipelines` peer): its six programs as images in
    /// the cluster's registry, its `config/` manifests with the `ko://` images (and the busybox shell image)
    /// rewritten to them, then waits until the controller and webhook are available and the webhook admits a
    /// Task. Returns how long it took.
    pub fn install_tekton(&self) -> Result<Duration, HarnessError> {
        let started = Instant::now();
        let registry = self
            .registry
            .as_ref()
            .map(TestRegistry::host)
            .unwrap_or_default();
        let mut rewrites =
            build_and_push_tekton_images(&self.dir.join("tekton-images"), &registry)?;
        let config = tekton_module_dir()?.join("config");
        // The shell image (`-shell-image`, for `script` helpers) is pinned by digest upstream: our busybox instead.
        let upstream = tekton_manifests(&config, &[])?;
        let prefix = "cgr.dev/chainguard/busybox@sha256:";
        if let Some(at) = upstream.find(prefix) {
            let end = at + prefix.len() + 64;
            if let Some(shell) = upstream.get(at..end) {
                rewrites.push((shell.to_string(), self.tools_image.clone()));
            }
        }
        let manifests = tekton_manifests(&config, &rewrites)?;
        self.kubectl_stdin_ok(&["apply", "-f", "-"], &manifests)?;
        self.kubectl_ok(&[
            "wait",
            "--for=condition=Available",
            "deployment",
            "--all",
            "-n",
            "tekton-pipelines",
            "--timeout=300s",
        ])?;
        // The webhook serves once its certificate is made; until then admission of Tekton objects fails.
        let probe = r#"{"apiVersion":"tekton.dev/v1","kind":"Task","metadata":{"name":"kibaship-probe"},"spec":{"steps":[{"name":"s","image":"busybox","script":"true"}]}}"#;
        let mut last = String::new();
        for _ in 0..600 {
            match self.kubectl_stdin_ok(&["apply", "--dry-run=server", "-f", "-"], probe) {
                Ok(_) => return Ok(started.elapsed()),
                Err(e) => last = e.to_string(),
            }
            thread::sleep(Duration::from_millis(500));
        }
        Err(HarnessError::NotReady {
            what: format!("Tekton's webhook (last answer: {last})"),
            url: format!("https://{NODE_IP}:{API_PORT}"),
            waited_secs: 300,
            log: self.dir.join("logs/kube-apiserver.log"),
            log_tail: self.log_tail("kube-apiserver"),
        })
    }

    /// Deletes every Pod, stops the daemons and sweeps the host; returns how long it took. Fails if anything
    /// is left (see [`leftovers`]).
    pub fn teardown(mut self) -> Result<Duration, HarnessError> {
        let started = Instant::now();
        let left = self.shutdown()?;
        if left.is_empty() {
            Ok(started.elapsed())
        } else {
            Err(HarnessError::State {
                dir: self.dir.clone(),
                reason: format!("teardown left {left:?}"),
            })
        }
    }

    fn shutdown(&mut self) -> Result<Leftovers, HarnessError> {
        if self.torn_down {
            return leftovers();
        }
        self.torn_down = true;
        // Pods first, while the kubelet and containerd can still stop them properly.
        let _ = self.kubectl(&[
            "delete",
            "pods",
            "--all",
            "--all-namespaces",
            "--grace-period=1",
            "--wait=true",
            &format!("--timeout={POD_DELETE_TIMEOUT}"),
        ]);
        for p in self.processes.iter_mut().rev() {
            p.stop();
        }
        self.processes.clear();
        let left = sweep();
        drop(self.registry.take());
        left
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        match self.shutdown() {
            Ok(left) if left.is_empty() => {}
            Ok(left) => eprintln!("cluster harness: teardown left {left:?}"),
            Err(e) => eprintln!("cluster harness: teardown failed: {e}"),
        }
        if thread::panicking() {
            eprintln!(
                "cluster harness: the test failed; daemon logs in {}",
                self.dir.join("logs").display()
            );
        }
    }
}

/// Polls `ready` every 100 ms until it holds, failing if a daemon exits or after [`READY_TIMEOUT`].
fn wait_for(
    l: &mut Launch<'_>,
    what: &str,
    mut ready: impl FnMut() -> bool,
) -> Result<(), HarnessError> {
    let started = Instant::now();
    loop {
        l.check()?;
        if ready() {
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            let log = l.logs.join("kubelet.log");
            return Err(HarnessError::NotReady {
                what: what.to_string(),
                url: format!("https://{NODE_IP}:{API_PORT}"),
                waited_secs: READY_TIMEOUT.as_secs(),
                log_tail: process::log_tail(&log),
                log,
            });
        }
        thread::sleep(Duration::from_millis(100));
    }
}

struct ClusterCtl {
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    cache: PathBuf,
}

impl ClusterCtl {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.kubectl);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env_remove("KUBECONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        crate::kube::run_kubectl(self.command(args), &self.kubectl)
    }

    fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        crate::kube::run_kubectl_with_stdin(self.command(args), &self.kubectl, stdin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kube_and_cni_chains_are_ours() {
        assert!(ours("KUBE-SERVICES"));
        assert!(ours("CNI-abc123"));
        assert!(!ours("INPUT"));
        assert!(!ours("DOCKER"));
    }

    #[test]
    fn node_addr_is_node_ip() {
        assert_eq!(NODE_ADDR.to_string(), NODE_IP);
    }

    #[test]
    fn kubeconfig_points_at_the_node_address() {
        let json: serde_json::Value =
            serde_json::from_str(&kubeconfig_text("PEM", "u", "t")).unwrap();
        assert_eq!(
            json["clusters"][0]["cluster"]["server"],
            format!("https://{NODE_IP}:{API_PORT}")
        );
        assert_eq!(json["users"][0]["user"]["token"], "t");
    }
}
