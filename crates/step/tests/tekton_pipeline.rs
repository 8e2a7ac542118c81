//! Our Railpack Pipeline's Tasks in real Tekton on the one-node cluster (issue 19 §3): the shell app of
//! `testdata/railpack/apps/shell` is committed to a git repository served by `git daemon` on the node address,
//! cloned into a workspace by a TaskRun, and planned by a TaskRun of `railpack-prepare` as shipped
//! (tasks/railpack-prepare.yaml) running the real `railpack prepare` in a Pod. Results are read back from the
//! TaskRuns' status and the plan from the workspace.
//!
//! Stand-ins, each because the real thing needs the internet:
//! - The Pipeline's clone task comes from Tekton's cluster resolver (`tekton-task-git-clone-kibaship-com` in
//!   `tekton-pipelines`), which the test cluster does not install: the test creates `git-clone`, an equivalent
//!   Task (params `url`, `revision`; the clone in `repo/` of workspace `output`; result `commit`) running git.
//! - `ghcr.io/kibamail/kibaship-railpack-cli:<version>` is an image of the `railpack` peer, pushed to the
//!   cluster's registry, which the node uses as its mirror of `ghcr.io` (`TestCluster::mirror`). railpack v0.15.0
//!   looks for mise at a fixed path under `/tmp` (an emptyDir in the Task), so the image's `railpack` is a
//!   wrapper that links the image's mise there first, as `scripts/peers/railpack-prepare.sh` does on the host.
//!
//! The TaskRuns share one workspace: a hostPath PersistentVolume (the cluster has no storage provisioner).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kibaship_testsupport::cluster::{NODE_IP, TestCluster};
use kibaship_testsupport::kube::wait_until;
use kibaship_testsupport::peers::peer_binary;
use serde_json::{Value, json};

/// Tries (half a second apart) for what the cluster reaches asynchronously; nothing is asserted about time.
const TRIES: u32 = 600;
const PAUSE: Duration = Duration::from_millis(500);
/// The mise version railpack v0.15.0 looks for at `/tmp/railpack/mise/mise-<version>` (core/mise/install.go).
const RAILPACK_MISE_VERSION: &str = "2025.11.8";
/// The Railpack version the Tasks default to (their `railpackVersion` param) and the peer's.
const RAILPACK_VERSION: &str = "v0.15.0";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a host program; its stdout, or a panic with its output.
fn run(command: &mut Command) -> String {
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
fn git(dir: &Path, args: &[&str]) -> String {
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
struct GitDaemon {
    child: Child,
    port: u16,
}

impl GitDaemon {
    fn start(base: &Path) -> GitDaemon {
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

    fn url(&self, repository: &str) -> String {
        format!("git://{NODE_IP}:{}/{repository}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The clone Task the Pipeline resolves from the cluster resolver, as a Task of its own: the commit `revision`
/// of `url` checked out in `repo/` of the workspace.
fn clone_task(git_image: &str) -> Value {
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

/// The run's `Succeeded` condition once it is True or False (`kind`: taskrun or pipelinerun).
fn finished(cluster: &TestCluster, kind: &str, run: &str) -> Option<String> {
    wait_until(TRIES, PAUSE, || {
        cluster
            .kubectl_ok(&[
                "get",
                kind,
                run,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Succeeded\")].status}",
            ])
            .ok()
            .filter(|s| s == "True" || s == "False")
    })
}

/// The runs' objects, their Pods' logs and the kubelet's, for a failure message.
fn describe(cluster: &TestCluster, label: &str) -> String {
    let objects = cluster
        .kubectl_ok(&["get", "pipelinerun,taskrun,pod", "-o", "yaml"])
        .unwrap_or_default();
    let logs = cluster
        .kubectl_ok(&["logs", "-l", label, "--all-containers", "--tail=80"])
        .unwrap_or_default();
    format!(
        "{objects}\nlogs:\n{logs}\nkubelet:\n{}",
        cluster.log_tail("kubelet")
    )
}

/// A result of a TaskRun, from its status.
fn task_result(cluster: &TestCluster, run: &str, name: &str) -> String {
    cluster
        .kubectl_ok(&[
            "get",
            "taskrun",
            run,
            "-o",
            &format!("jsonpath={{.status.results[?(@.name==\"{name}\")].value}}"),
        ])
        .unwrap()
}

/// Creates a run and waits for it to finish; panics with what the cluster says if it did not succeed.
fn run_to_success(cluster: &TestCluster, kind: &str, object: &Value) {
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
struct Stages {
    last: Instant,
    times: Vec<(String, Duration)>,
}

impl Stages {
    fn new() -> Stages {
        Stages {
            last: Instant::now(),
            times: Vec::new(),
        }
    }

    fn done(&mut self, stage: &str) {
        let now = Instant::now();
        self.times.push((stage.to_string(), now - self.last));
        self.last = now;
    }

    fn print(&self) {
        let total: Duration = self.times.iter().map(|(_, d)| *d).sum();
        for (stage, took) in &self.times {
            eprintln!("stage {stage:<40} {:>7.1} s", took.as_secs_f64());
        }
        eprintln!("stage {:<40} {:>7.1} s", "total", total.as_secs_f64());
    }
}

#[test]
fn railpack_prepare_plans_a_clone_from_the_nodes_git_server_in_real_tekton() {
    let mut stages = Stages::new();
    let cluster = TestCluster::start().expect("cluster start");
    stages.done("cluster start (lock wait included)");
    cluster.install_tekton().expect("install Tekton");
    stages.done("Tekton installed");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    // The source: the shell app committed to a bare repository that git daemon serves on the node address.
    let source = w.join("source");
    fs::create_dir_all(&source).unwrap();
    let app = repo_root().join("testdata/railpack/apps/shell");
    for entry in fs::read_dir(&app).unwrap() {
        let entry = entry.unwrap().path();
        fs::copy(&entry, source.join(entry.file_name().unwrap())).unwrap();
    }
    git(&source, &["init", "--quiet", "--initial-branch=main"]);
    git(&source, &["add", "."]);
    git(&source, &["commit", "--quiet", "-m", "shell app"]);
    let commit = git(&source, &["rev-parse", "HEAD"]);
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
    let git_url = daemon.url("shell.git");

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
    stages.done("git server and images");

    // Our Tasks as shipped, and the clone Task the cluster resolver would have served.
    for file in ["railpack-prepare.yaml"] {
        let path = repo_root().join("tasks").join(file);
        cluster
            .kubectl_ok(&["create", "-f", path.to_str().unwrap()])
            .unwrap_or_else(|e| panic!("Tekton refused {file}: {e}"));
    }
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &clone_task(&git_image).to_string())
        .unwrap();

    // The shared workspace: a hostPath volume the Tasks' uid 1000 can write.
    let workspace = w.join("workspace");
    fs::create_dir_all(&workspace).unwrap();
    fs::set_permissions(&workspace, fs::Permissions::from_mode(0o777)).unwrap();
    let volume = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": { "name": "build-workspace" },
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
                "metadata": { "name": "build-workspace" },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "manual",
                    "volumeName": "build-workspace",
                    "resources": { "requests": { "storage": "1Gi" } },
                },
            },
        ],
    });
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &volume.to_string())
        .unwrap();
    let ws =
        json!({ "name": "output", "persistentVolumeClaim": { "claimName": "build-workspace" } });
    stages.done("Tasks and workspace created");

    // Clone.
    let clone = json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": { "name": "clone" },
        "spec": {
            "taskRef": { "name": "git-clone" },
            "params": [
                { "name": "url", "value": git_url },
                { "name": "revision", "value": commit },
            ],
            "workspaces": [ws],
        },
    });
    run_to_success(&cluster, "taskrun", &clone);
    assert_eq!(task_result(&cluster, "clone", "commit"), commit);
    assert_eq!(
        fs::read(workspace.join("repo/start.sh")).unwrap(),
        fs::read(app.join("start.sh")).unwrap()
    );
    stages.done("clone TaskRun");

    // railpack-prepare as shipped: the real railpack prepare in the Pod.
    let prepare = json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": { "name": "prepare" },
        "spec": {
            "taskRef": { "name": "railpack-prepare" },
            "podTemplate": { "securityContext": { "fsGroup": 1000 } },
            "params": [ { "name": "kibashipImage", "value": step_image } ],
            "workspaces": [ws],
        },
    });
    run_to_success(&cluster, "taskrun", &prepare);
    let plan_path = task_result(&cluster, "prepare", "planPath");
    let info_path = task_result(&cluster, "prepare", "infoPath");
    let in_pod = "/workspace/output/";
    let plan_file = workspace.join(
        plan_path
            .strip_prefix(in_pod)
            .unwrap_or_else(|| panic!("planPath {plan_path} is not in the workspace")),
    );
    let plan: Value = serde_json::from_slice(&fs::read(&plan_file).unwrap()).unwrap();
    assert_eq!(plan["deploy"]["startCommand"], "sh start.sh", "{plan}");
    assert_eq!(
        plan["deploy"]["base"]["image"],
        "ghcr.io/railwayapp/railpack-runtime:latest"
    );
    assert!(
        info_path.starts_with(in_pod) && info_path.ends_with("/info.json"),
        "{info_path}"
    );
    stages.done("railpack-prepare TaskRun");

    drop(daemon);
    cluster.teardown().expect("teardown leaves nothing");
    stages.done("teardown");
    stages.print();
}
