//! What the Tekton Pipeline tests share (tekton_pipeline.rs, the end-to-end story; bench_builds.rs, the load
//! runs): the git server, the stand-in images the Tasks pull through the node's mirrors, the notification
//! receiver, and run helpers.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kibaship_testsupport::buildkit::BuildkitdConfig;
use kibaship_testsupport::cluster::{NODE_IP, TestCluster};
use kibaship_testsupport::kube::wait_until;
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::railpack_build::push_railpack_images;
use serde_json::{Value, json};

/// Tries (half a second apart) for what the cluster reaches asynchronously; nothing is asserted about time.
pub const TRIES: u32 = 600;
pub const PAUSE: Duration = Duration::from_millis(500);
/// The mise version railpack v0.15.0 looks for at `/tmp/railpack/mise/mise-<version>` (core/mise/install.go).
pub const RAILPACK_MISE_VERSION: &str = "2025.11.8";
/// The Railpack version the Tasks default to (their `railpackVersion` param) and the peer's.
pub const RAILPACK_VERSION: &str = "v0.15.0";
/// The image's repository on the registry: kibaship/<project>/<app>.
pub const REPOSITORY: &str = "kibaship/acme/shell";
/// The cosign key's password (the Secret holds both).
pub const PASSWORD: &str = "tekton-pipeline-test-password";
/// The notification's HMAC key (the Secret `kibaship-notify-hmac`; at least 32 bytes).
pub const NOTIFY_KEY: &str = "e2e-notify-hmac-key-0123456789abcdef0123456789";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a host program; its stdout, or a panic with its output.
pub fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A git command in `dir` that reads no configuration of the host.
pub fn git(dir: &Path, args: &[&str]) -> String {
    run(Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "kibaship test")
        .env("GIT_AUTHOR_EMAIL", "test@kibaship.invalid")
        .env("GIT_COMMITTER_NAME", "kibaship test")
        .env("GIT_COMMITTER_EMAIL", "test@kibaship.invalid")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z"))
}

/// `git daemon` serving the bare repositories under `base` on the node address (reachable from Pods); killed
/// on drop.
pub struct GitDaemon {
    child: Child,
    port: u16,
}

impl GitDaemon {
    pub fn start(base: &Path) -> GitDaemon {
        let port = TcpListener::bind((NODE_IP, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port on the node address")
            .port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                &format!("--listen={NODE_IP}"),
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
                &base.display().to_string(),
            ])
            .env("HOME", base)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon");
        let daemon = GitDaemon { child, port };
        let listening = wait_until(TRIES, Duration::from_millis(50), || {
            std::net::TcpStream::connect((NODE_IP, port)).ok()
        });
        assert!(listening.is_some(), "git daemon is not listening on {port}");
        daemon
    }

    pub fn url(&self, repository: &str) -> String {
        format!("git://{NODE_IP}:{}/{repository}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The platform's side of kibaship-notify: the real `kibaship-step notify-receiver` on the node address (Pods
/// reach it by their default route), checking each notification (HMAC over timestamp + body with `key`, the
/// timestamp's age, the Idempotency-Key) and appending the verified ones to an events file; killed on drop.
pub struct NotificationReceiver {
    child: Child,
    address: String,
    events: PathBuf,
    log: PathBuf,
}

impl NotificationReceiver {
    pub fn start(w: &Path, key: &str) -> NotificationReceiver {
        let dir = w.join("notify-receiver");
        fs::create_dir_all(&dir).unwrap();
        let key_file = dir.join("hmac-key");
        fs::write(&key_file, key).unwrap();
        let address_file = dir.join("address");
        let events = dir.join("events.jsonl");
        let log = dir.join("receiver.log");
        let child = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
            .arg("notify-receiver")
            .arg("--listen")
            .arg(format!("{NODE_IP}:0"))
            .arg("--hmac-key-file")
            .arg(&key_file)
            .arg("--address-file")
            .arg(&address_file)
            .arg("--events-file")
            .arg(&events)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(Stdio::from(
                fs::File::create(dir.join("receiver.err")).unwrap(),
            ))
            .spawn()
            .expect("kibaship-step notify-receiver");
        let address = wait_until(TRIES, Duration::from_millis(50), || {
            fs::read_to_string(&address_file)
                .ok()
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
        })
        .expect("the receiver's address");
        NotificationReceiver {
            child,
            address,
            events,
            log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/builds", self.address)
    }

    /// The verified notifications' bodies so far, oldest first.
    pub fn events(&self) -> Vec<Value> {
        fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("an event is JSON"))
            .collect()
    }

    /// What the receiver printed (each verified event, each refusal).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NotificationReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The clone Task the Pipeline resolves from the cluster resolver, as a Task of its own: the commit `revision`
/// of `url` checked out in `repo/` of the workspace.
pub fn clone_task(git_image: &str) -> Value {
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "Task",
        "metadata": { "name": "git-clone" },
        "spec": {
            "params": [
                { "name": "url", "type": "string" },
                { "name": "revision", "type": "string" },
            ],
            "workspaces": [ { "name": "output" } ],
            "results": [ { "name": "commit", "type": "string" } ],
            "steps": [{
                "name": "clone",
                "image": git_image,
                "env": [
                    { "name": "HOME", "value": "/tmp" },
                    { "name": "GIT_EXEC_PATH", "value": "/usr/bin" },
                    { "name": "GIT_CONFIG_NOSYSTEM", "value": "1" },
                ],
                "securityContext": { "runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000 },
                "script": "#!/bin/sh\nset -eu\nrepo=\"$(workspaces.output.path)/repo\"\nrm -rf \"$repo\"\ngit clone --quiet --no-checkout \"$(params.url)\" \"$repo\"\ngit -C \"$repo\" checkout --quiet --detach \"$(params.revision)\"\ngit -C \"$repo\" rev-parse HEAD | tr -d '\\n' > \"$(results.commit.path)\"\n",
            }],
        },
    })
}

/// The image `moby/buildkit:<version>-rootless` stands for, on the cluster's registry under that path (the node
/// mirrors docker.io there): the buildkit peer's buildkitd and buildctl, rootlesskit and the setuid
/// newuidmap/newgidmap with a subordinate id range for `user` (uid 1000), runc, and a buildkitd.toml that sends
/// ghcr.io and docker.io pulls to the registry and reaches it over plain HTTP. The entrypoint runs
/// `rootlesskit buildkitd` as upstream's image does, with its state in the Task's buildkitd-state volume. It also
/// holds kibaship-step's libraries: the build step runs kibaship-step in this image.
pub fn push_rootless_buildkit_image(
    cluster: &TestCluster,
    registry: &str,
    work: &Path,
    step_binary: &Path,
) -> String {
    let dir = work.join("buildkit-image");
    fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, text: String, mode: u32| {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    };
    let state = "/home/user/.local/share/buildkit";
    let entrypoint = file(
        "entrypoint",
        format!(
            "#!/bin/sh\n# rootlesskit buildkitd, as moby/buildkit's rootless image runs it.\nset -eu\nexport HOME=/home/user USER=user XDG_RUNTIME_DIR={state}/run TMPDIR={state}/tmp\nmkdir -p \"$XDG_RUNTIME_DIR\" \"$TMPDIR\"\nexec rootlesskit buildkitd --config /etc/buildkit/buildkitd.toml --root {state}/root \"$@\"\n"
        ),
        0o755,
    );
    let config = BuildkitdConfig::default()
        .plain_http_registry(registry)
        .mirror("ghcr.io", registry)
        .mirror("docker.io", registry)
        .to_toml(Path::new("/usr/bin/runc"));
    let buildkitd_toml = file("buildkitd.toml", config, 0o644);
    let passwd = file(
        "passwd",
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n".into(),
        0o644,
    );
    let group = file("group", "root:x:0:\nuser:x:1000:\n".into(), 0o644);
    let subids = file("subid", "user:100000:65536\n".into(), 0o644);
    let buildkit = peer_binary("buildkit").expect("make peers (buildkit)");
    let buildkit_dir = buildkit.parent().unwrap();
    let (buildkitd, buildctl) = (
        buildkit_dir.join("buildkitd"),
        buildkit_dir.join("buildctl"),
    );
    let host = |p: &str| PathBuf::from(p);
    let (rootlesskit, newuidmap, newgidmap, runc) = (
        host("/usr/bin/rootlesskit"),
        host("/usr/bin/newuidmap"),
        host("/usr/bin/newgidmap"),
        host("/usr/sbin/runc"),
    );
    for tool in [&rootlesskit, &newuidmap, &runc] {
        assert!(tool.exists(), "{} is missing: make deps", tool.display());
    }
    // Debian's newuidmap/newgidmap are setuid root and write the maps with euid 0, which the kernel allows only
    // with CAP_SYS_ADMIN, outside a container's bounding set; upstream's image gives them file capabilities
    // (cap_setuid/cap_setgid) instead, so they run as the caller with just that capability. Our image layers
    // carry no xattrs, so a setuid helper does the same: back to the caller's uid keeping only the one
    // capability (ambient), then Debian's program, without its setuid bit.
    let helper_source = file("idmap-helper.c", IDMAP_HELPER.into(), 0o644);
    let helper = dir.join("idmap-helper");
    run(Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&helper)
        .arg(&helper_source));
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o4755)).unwrap();
    let plain = |from: &Path, name: &str| {
        let to = dir.join(name);
        fs::copy(from, &to).unwrap();
        fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
        to
    };
    let (shadow_uidmap, shadow_gidmap) = (
        plain(&newuidmap, "newuidmap.shadow"),
        plain(&newgidmap, "newgidmap.shadow"),
    );
    let reference = cluster
        .push_program_image(
            "moby/buildkit:v0.34.2-rootless",
            &[
                (&entrypoint, "/usr/local/bin/buildkitd-entrypoint"),
                (&buildkitd, "/usr/bin/buildkitd"),
                (&buildctl, "/usr/bin/buildctl"),
                (&rootlesskit, "/usr/bin/rootlesskit"),
                (&helper, "/usr/bin/newuidmap"),
                (&helper, "/usr/bin/newgidmap"),
                (&shadow_uidmap, "/usr/libexec/shadow/newuidmap"),
                (&shadow_gidmap, "/usr/libexec/shadow/newgidmap"),
                (&runc, "/usr/bin/runc"),
                (step_binary, "/usr/local/bin/kibaship-step"),
                (&buildkitd_toml, "/etc/buildkit/buildkitd.toml"),
                (&passwd, "/etc/passwd"),
                (&group, "/etc/group"),
                (&subids, "/etc/subuid"),
                (&subids, "/etc/subgid"),
            ],
        )
        .expect("the rootless buildkit image");
    assert_eq!(
        reference,
        format!("{registry}/moby/buildkit:v0.34.2-rootless")
    );
    reference
}

/// trivy's image (`aquasec/trivy:0.74.0` under the docker.io mirror): the trivy peer behind a wrapper that first
/// copies a vulnerability DB built here from our advisories (testdata/trivy, as scan_driver.rs builds it) into
/// the cache the Task gives trivy (`/tmp/trivy-cache`, an emptyDir) and runs it offline (the Pipeline does not
/// pass the scan Task's `offline` parameter, and trivy would try to download its DB), with kibaship-step's
/// libraries.
pub fn push_trivy_image(cluster: &TestCluster, work: &Path, step_binary: &Path) {
    let dir = work.join("trivy-image");
    let vuln_list = dir.join("vuln-list");
    fs::create_dir_all(vuln_list.join("cocoapods-specs/Specs")).unwrap();
    run(Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("testdata/trivy/vuln-list/ghsa"))
        .arg(&vuln_list));
    let db = dir.join("db");
    run(
        Command::new(peer_binary("trivy-db").expect("make peers (trivy-db)"))
            .args(["build", "--only-update", "ghsa", "--cache-dir"])
            .arg(&vuln_list)
            .arg("--output-dir")
            .arg(&db)
            .args(["--update-interval", "87600h"]),
    );
    let wrapper = dir.join("trivy");
    fs::write(
        &wrapper,
        "#!/bin/sh\n# The test's DB, where the Task's trivy cache is (an emptyDir); nothing fetched (no internet here).\nset -eu\nmkdir -p /tmp/trivy-cache/db\ncp /opt/trivy-db/* /tmp/trivy-cache/db/\nexec /opt/trivy/trivy \"$@\" --skip-db-update --skip-java-db-update --offline-scan --skip-check-update --skip-version-check\n",
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let trivy = peer_binary("trivy").expect("make peers (trivy)");
    let mut files: Vec<(PathBuf, String)> = vec![
        (wrapper, "/usr/local/bin/trivy".into()),
        (trivy, "/opt/trivy/trivy".into()),
        (
            step_binary.to_path_buf(),
            "/usr/local/bin/kibaship-step".into(),
        ),
    ];
    for entry in fs::read_dir(&db).unwrap() {
        let path = entry.unwrap().path();
        let at = format!(
            "/opt/trivy-db/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        files.push((path, at));
    }
    let files: Vec<(&Path, &str)> = files
        .iter()
        .map(|(p, a)| (p.as_path(), a.as_str()))
        .collect();
    cluster
        .push_program_image("aquasec/trivy:0.74.0", &files)
        .expect("the trivy image");
}

/// `newuidmap`/`newgidmap` (by its name) with file capabilities, as a setuid program: all uids back to the
/// caller's, only CAP_SETUID (CAP_SETGID) kept, raised as ambient, then `/usr/libexec/shadow/<name>` runs.
pub const IDMAP_HELPER: &str = r#"#define _GNU_SOURCE
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    (void)argc;
    const char *slash = strrchr(argv[0], '/');
    const char *name = slash ? slash + 1 : argv[0];
    int cap = strcmp(name, "newgidmap") == 0 ? CAP_SETGID : CAP_SETUID;
    char target[64];
    snprintf(target, sizeof target, "/usr/libexec/shadow/%s", strcmp(name, "newgidmap") == 0 ? "newgidmap" : "newuidmap");
    uid_t caller = getuid();
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) { perror("PR_SET_KEEPCAPS"); return 1; }
    if (setresuid(caller, caller, caller) != 0) { perror("setresuid"); return 1; }
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    data[0].effective = data[0].permitted = data[0].inheritable = 1u << cap;
    if (syscall(SYS_capset, &header, data) != 0) { perror("capset"); return 1; }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) { perror("PR_CAP_AMBIENT"); return 1; }
    execv(target, argv);
    perror(target);
    return 1;
}
"#;

/// A run's outcome (`kind`: taskrun or pipelinerun; see [`TestCluster::tekton_run_outcome`]).
pub fn finished(cluster: &TestCluster, kind: &str, run: &str) -> Option<String> {
    cluster.tekton_run_outcome(kind, run, PAUSE * TRIES)
}

/// The runs' objects, their Pods' logs and the kubelet's, for a failure message.
pub fn describe(cluster: &TestCluster, label: &str) -> String {
    cluster.describe_tekton_runs(label)
}

/// A result of a TaskRun, from its status.
pub fn task_result(cluster: &TestCluster, run: &str, name: &str) -> String {
    cluster.task_run_result(run, name).unwrap()
}

/// Creates a run and waits for it to finish; panics with what the cluster says if it did not succeed.
pub fn run_to_success(cluster: &TestCluster, kind: &str, object: &Value) {
    let name = object["metadata"]["name"].as_str().unwrap();
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &object.to_string())
        .unwrap();
    let label = match kind {
        "taskrun" => format!("tekton.dev/taskRun={name}"),
        _ => format!("tekton.dev/pipelineRun={name}"),
    };
    assert_eq!(
        finished(cluster, kind, name).as_deref(),
        Some("True"),
        "{kind} {name}: {}",
        describe(cluster, &label)
    );
}

/// Per-stage wall times, printed at the end (never asserted).
pub struct Stages {
    last: Instant,
    times: Vec<(String, Duration)>,
}

impl Stages {
    pub fn new() -> Stages {
        Stages {
            last: Instant::now(),
            times: Vec::new(),
        }
    }

    pub fn done(&mut self, stage: &str) {
        let now = Instant::now();
        self.times.push((stage.to_string(), now - self.last));
        self.last = now;
    }

    pub fn print(&self) {
        let total: Duration = self.times.iter().map(|(_, d)| *d).sum();
        for (stage, took) in &self.times {
            eprintln!("stage {stage:<40} {:>7.1} s", took.as_secs_f64());
        }
        eprintln!("stage {:<40} {:>7.1} s", "total", total.as_secs_f64());
    }
}

/// What [`install_pipeline`] set up.
pub struct Installed {
    /// The cluster registry's `HOST:PORT`.
    pub registry: String,
    /// kibaship-step's image (the Tasks' `kibashipImage`), under a test name.
    pub step_image: String,
}

/// Everything a run of our Tasks and Pipeline needs on `cluster`: the images they pull (through the node's mirrors
/// where the Tasks name upstream images), our Tasks as shipped and the clone Task, the Pipeline with its clone
/// task's reference swapped (the cluster resolver is not installed here), a cosign key pair in `w` (`cosign.key`,
/// `cosign.pub`, password [`PASSWORD`]) and the Secrets and ConfigMap the Tasks read, with Tekton's coschedule
/// off (workspaces on PVCs).
pub fn install_pipeline(cluster: &TestCluster, w: &Path) -> Installed {
    let registry = cluster.registry().expect("the cluster's registry").host();
    // Images: kibaship-step (the Tasks' kibashipImage), git for the clone Task, and the railpack CLI image
    // (with kibaship-step's libraries, since the install-driver step copies kibaship-step into it).
    let step_binary = Path::new(env!("CARGO_BIN_EXE_kibaship-step"));
    let step_image = cluster
        .push_program_image(
            "kibaship/step:test",
            &[(step_binary, "/usr/local/bin/kibaship-step")],
        )
        .expect("the kibaship-step image");
    let git_binary = Path::new("/usr/bin/git");
    let git_image = cluster
        .push_program_image("kibaship/git:test", &[(git_binary, "/usr/bin/git")])
        .expect("the git image");
    let wrapper = w.join("railpack-wrapper");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n# railpack v0.15.0 runs mise from a fixed path under /tmp (an emptyDir here).\nset -eu\nmkdir -p /tmp/railpack/mise\nln -sf /opt/railpack/mise /tmp/railpack/mise/mise-{RAILPACK_MISE_VERSION}\nexec /opt/railpack/railpack \"$@\"\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let railpack = peer_binary("railpack").expect("make peers (railpack)");
    let mise = peer_binary("mise").expect("make peers (mise)");
    let railpack_image = cluster
        .push_program_image(
            &format!("kibamail/kibaship-railpack-cli:{RAILPACK_VERSION}"),
            &[
                (&wrapper, "/usr/local/bin/railpack"),
                (&railpack, "/opt/railpack/railpack"),
                (&mise, "/opt/railpack/mise"),
                (step_binary, "/usr/local/bin/kibaship-step"),
            ],
        )
        .expect("the railpack CLI image");
    assert!(railpack_image.ends_with(&format!(
        "/kibamail/kibaship-railpack-cli:{RAILPACK_VERSION}"
    )));
    cluster.mirror("ghcr.io").expect("ghcr.io mirrored");
    // Our Tasks as shipped, and the clone Task the cluster resolver would have served.
    let path = repo_root().join("tasks/railpack-prepare.yaml");
    cluster
        .kubectl_ok(&["create", "-f", path.to_str().unwrap()])
        .unwrap_or_else(|e| panic!("Tekton refused railpack-prepare.yaml: {e}"));
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &clone_task(&git_image).to_string())
        .unwrap();

    // railpack-build as shipped: rootless buildkitd in the Pod (the sidecar's securityContext as the Task has
    // it) with Railpack's frontend, the base stand-ins and the SBOM scanner from the cluster's registry.
    let pushed = push_railpack_images(&registry, &w.join("railpack-images"))
        .expect("the Railpack frontend, base and scanner images");
    assert_eq!(pushed.railpack_version, RAILPACK_VERSION);
    // Pulled by the kubelet as the Task's default buildkitImage, moby/buildkit:v0.34.2-rootless.
    push_rootless_buildkit_image(cluster, &registry, w, step_binary);
    cluster.mirror("docker.io").expect("docker.io mirrored");
    let docker_config = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": "registry-docker-config" },
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": { ".dockerconfigjson": "{\"auths\":{}}" },
    });
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &docker_config.to_string())
        .unwrap();
    let path = repo_root().join("tasks/railpack-build.yaml");
    cluster
        .kubectl_ok(&["create", "-f", path.to_str().unwrap()])
        .unwrap_or_else(|e| panic!("Tekton refused railpack-build.yaml: {e}"));
    // The post-build Tasks, signing with a key from a Secret. The Tasks' default images come through the node's mirrors: our
    // kibaship-step image as ghcr.io/kibamail/kibaship-step:0.1.0, trivy (with a DB of our advisories, seeded
    // into its cache by a wrapper, as the railpack CLI image seeds mise) as docker.io/aquasec/trivy:0.74.0.
    cluster
        .push_program_image(
            "kibamail/kibaship-step:0.1.0",
            &[(step_binary, "/usr/local/bin/kibaship-step")],
        )
        .expect("the kibaship-step image under its default name");
    push_trivy_image(cluster, w, step_binary);
    run(
        Command::new(peer_binary("cosign").expect("make peers (cosign)"))
            .args(["generate-key-pair"])
            .current_dir(w)
            .env("HOME", w)
            .env("COSIGN_PASSWORD", PASSWORD),
    );
    let objects = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": { "name": "kibaship-signing-key" },
                "stringData": {
                    "cosign.key": fs::read_to_string(w.join("cosign.key")).unwrap(),
                    "cosign.password": PASSWORD,
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": { "name": "kibaship-notify-hmac" },
                "stringData": { "hmac-key": NOTIFY_KEY },
            },
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": { "name": "kibaship-gate-policy" },
                "data": { "policy.yaml": "version: 1\nfail-on-severity: high\n" },
            },
        ],
    });
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &objects.to_string())
        .unwrap();
    for file in [
        "kibaship-scan.yaml",
        "kibaship-sign.yaml",
        "kibaship-attest.yaml",
        "kibaship-notify.yaml",
        "kibaship-tag.yaml",
    ] {
        let path = repo_root().join("tasks").join(file);
        cluster
            .kubectl_ok(&["create", "-f", path.to_str().unwrap()])
            .unwrap_or_else(|e| panic!("Tekton refused {file}: {e}"));
    }
    // The Pipeline as shipped but for its clone task's reference: the cluster resolver is not installed here.
    let shipped = fs::read_to_string(repo_root().join("tasks/pipeline-railpack.yaml")).unwrap();
    let resolver = "      taskRef:\n        resolver: cluster\n        params:\n          - name: kind\n            value: task\n          - name: name\n            value: tekton-task-git-clone-kibaship-com\n          - name: namespace\n            value: tekton-pipelines\n";
    assert_eq!(
        shipped.matches(resolver).count(),
        1,
        "the clone task's reference changed"
    );
    let pipeline = shipped.replace(resolver, "      taskRef:\n        name: git-clone\n");
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &pipeline)
        .unwrap();
    // Workspaces on a PVC: Tekton's affinity assistant would put the runs on one node (there is one). Sidecars as
    // Kubernetes native sidecars, as docs/tekton.md recommends: the kubelet stops buildkitd when the build steps
    // exit, so a failed attempt frees its CPU request for the retry.
    cluster
        .kubectl_ok(&[
            "patch",
            "configmap",
            "feature-flags",
            "-n",
            "tekton-pipelines",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"coschedule":"disabled","enable-kubernetes-sidecar":"true"}}"#,
        ])
        .unwrap();
    Installed {
        registry,
        step_image,
    }
}

/// A hostPath PersistentVolume at `dir` (created, writable by the Tasks' uid 1000) and its claim, both named
/// `name` (the cluster has no storage provisioner).
pub fn workspace_claim(cluster: &TestCluster, name: &str, dir: &Path) {
    let workspace = dir;
    fs::create_dir_all(workspace).unwrap();
    fs::set_permissions(workspace, fs::Permissions::from_mode(0o777)).unwrap();
    let volume = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": { "name": name },
                "spec": {
                    "capacity": { "storage": "1Gi" },
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "manual",
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": { "path": workspace.to_str().unwrap(), "type": "Directory" },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": { "name": name },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "manual",
                    "volumeName": name,
                    "resources": { "requests": { "storage": "1Gi" } },
                },
            },
        ],
    });
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &volume.to_string())
        .unwrap();
}

/// The shell app in the repository.
pub const SHELL_APP: &str = "testdata/railpack/apps/shell";

/// The shell app committed `commits` times (each commit after the first changes `BUILD`, so each is a distinct
/// build) to a bare repository `shell.git` that git daemon serves on the node address: the daemon, the
/// repository's URL and the commits, oldest first.
pub fn serve_shell_app(w: &Path, commits: usize) -> (GitDaemon, String, Vec<String>) {
    let source = w.join("source");
    fs::create_dir_all(&source).unwrap();
    let app = repo_root().join(SHELL_APP);
    for entry in fs::read_dir(&app).unwrap() {
        let entry = entry.unwrap().path();
        fs::copy(&entry, source.join(entry.file_name().unwrap())).unwrap();
    }
    git(&source, &["init", "--quiet", "--initial-branch=main"]);
    let mut shas = Vec::new();
    for n in 0..commits.max(1) {
        if n > 0 {
            fs::write(source.join("BUILD"), format!("{n}\n")).unwrap();
        }
        git(&source, &["add", "."]);
        git(
            &source,
            &["commit", "--quiet", "-m", &format!("shell app {n}")],
        );
        shas.push(git(&source, &["rev-parse", "HEAD"]));
    }
    let served = w.join("git");
    fs::create_dir_all(&served).unwrap();
    git(
        w,
        &[
            "clone",
            "--quiet",
            "--bare",
            source.to_str().unwrap(),
            served.join("shell.git").to_str().unwrap(),
        ],
    );
    let daemon = GitDaemon::start(&served);
    let url = daemon.url("shell.git");
    (daemon, url, shas)
}

/// A TaskRun `clone` of the test's `git-clone` Task: `revision` of `url` into `repo/` of the workspace `ws` (a
/// workspace binding named `output`).
pub fn clone_run(url: &str, revision: &str, ws: &Value) -> Value {
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": { "name": "clone" },
        "spec": {
            "taskRef": { "name": "git-clone" },
            "params": [
                { "name": "url", "value": url },
                { "name": "revision", "value": revision },
            ],
            "workspaces": [ws],
        },
    })
}

/// A TaskRun `prepare` of `railpack-prepare` as shipped (the real `railpack prepare` in the Pod) on the workspace
/// `ws`, with kibaship-step's image `step_image`, declaring the build secrets `secrets` in the plan.
pub fn prepare_run(step_image: &str, ws: &Value, secrets: &[&str]) -> Value {
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": { "name": "prepare" },
        "spec": {
            "taskRef": { "name": "railpack-prepare" },
            "podTemplate": { "securityContext": { "fsGroup": 1000 } },
            "params": [
                { "name": "kibashipImage", "value": step_image },
                { "name": "buildSecrets", "value": secrets },
            ],
            "workspaces": [ws],
        },
    })
}

/// The non-zero exit codes of the steps in a TaskRun's `status` (or in one entry of its `retriesStatus`).
pub fn failed_exit_codes(status: &Value) -> Vec<i64> {
    status["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["terminated"]["exitCode"].as_i64())
        .filter(|&c| c != 0)
        .collect()
}
