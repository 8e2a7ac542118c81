//! Chaos on the real one-node cluster (issue 19 §5), with `railpack-build` as shipped (rootless buildkitd in its
//! sidecar, Railpack's frontend) building the shell app planned once by `railpack-prepare`:
//!
//! - **A rotated build secret**: a build with the build secret `API_TOKEN`, the same build again (deduped: the
//!   step skips BuildKit), then the Secret's value changed and the same build once more: the secrets hash in the
//!   dedupe key changed, so it builds again instead of reusing the first image.
//! - **containerd restarted mid-run**: while that last build's step runs, the node's containerd is stopped and
//!   started again (`TestCluster::restart_daemon`); the build's containers keep running under their shims, the
//!   kubelet reconnects, and the TaskRun succeeds.
//! - **A throttled registry**: the build pushes through our fault proxy, listening on the node address (which
//!   Pods reach) in front of the cluster's registry, whose script answers the first blob-upload requests `429`
//!   (with `Retry-After`) and `503`. The TaskRun has one retry, as the Pipeline's build has. The build succeeds,
//!   either because BuildKit or the step retried the request, or because the first attempt failed with the
//!   registry failure code (75) and the retry found the registry well again; nothing else is accepted, and the
//!   digest result must be the one the registry serves. Every fault of the script was served.
//! - **The registry restarted mid-push**: a build pushes through the fault proxy, which holds the answer to the
//!   first blob upload (the request reached the registry) while the cluster's real registry is stopped, kept
//!   down for 2 s and started again on its storage. Success, or failed attempts with the registry failure code
//!   only, as above; the registry serves the reported digest.
//! - **A failure inside BuildKit**: the fixture app `shell-failing-build` (a build command that prints a
//!   compiler-like error and exits 3), planned by `railpack-prepare` in the cluster, fails in BuildKit: the
//!   TaskRun fails with the build failure code (70), its log keeps the command's output and BuildKit's error.
//!
//! `make chaos` runs this test alone; `make test` runs it too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tekton_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kibaship_testsupport::cluster::{NODE_ADDR, TestCluster};
use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
use kibaship_testsupport::kube::wait_until;
use kibaship_testsupport::peers::peer_binary;
use serde_json::{Value, json};
use tekton_support::*;

/// kibaship-step's exit code for a registry (or other retryable service) failure.
const REGISTRY_EXIT: i64 = 75;
/// kibaship-step's exit code for a build failure (BuildKit's solve failed).
const BUILD_EXIT: i64 = 70;

/// A TaskRun of `railpack-build` named `name` building the prepared plan in the shared workspace into
/// `<registry>/<repository>:<commit>`, with the build secret `API_TOKEN` and one retry.
fn build_run(
    name: &str,
    registry: &str,
    repository: &str,
    commit: &str,
    plan: &(String, String),
    step_image: &str,
) -> Value {
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": { "name": name },
        "spec": {
            "taskRef": { "name": "railpack-build" },
            "retries": 1,
            "podTemplate": { "securityContext": { "fsGroup": 1000 } },
            "params": [
                { "name": "planPath", "value": plan.0 },
                { "name": "infoPath", "value": plan.1 },
                { "name": "gitCommit", "value": commit },
                { "name": "imageRegistry", "value": registry },
                { "name": "imageRepository", "value": repository },
                { "name": "cacheKey", "value": "tenant-chaos" },
                { "name": "buildSecrets", "value": ["API_TOKEN"] },
                { "name": "insecureRegistry", "value": "true" },
                { "name": "kibashipImage", "value": step_image },
            ],
            "workspaces": [
                { "name": "output", "persistentVolumeClaim": { "claimName": "chaos-workspace" } },
            ],
        },
    })
}

/// The build step's log of TaskRun `run` (its last attempt).
fn build_log(cluster: &TestCluster, run: &str) -> String {
    cluster
        .kubectl_ok(&[
            "logs",
            "-l",
            &format!("tekton.dev/taskRun={run}"),
            "-c",
            "step-build",
            "--tail",
            "-1",
        ])
        .unwrap_or_default()
}

/// The build-secret Secret with `API_TOKEN` set to `value` (created, or replaced).
fn set_build_secret(cluster: &TestCluster, value: &str) {
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": "build-secret-bundle" },
        "stringData": { "API_TOKEN": value },
    });
    cluster
        .kubectl_stdin_ok(&["apply", "-f", "-"], &secret.to_string())
        .unwrap();
}

/// Waits for TaskRun `name` (created through the fault proxy `proxy` in front of `registry`) and checks what a
/// faulty registry may end in: success, after failed attempts that all exited with the registry failure code;
/// the registry then serves the reported digest. Returns the failed attempts' exit codes, for the log.
fn assert_survived(
    cluster: &TestCluster,
    name: &str,
    proxy: &FaultProxy,
    registry: &str,
    home: &Path,
) -> Vec<Vec<i64>> {
    let outcome = finished(cluster, "taskrun", name);
    let task_run: Value = serde_json::from_str(
        &cluster
            .kubectl_ok(&["get", "taskrun", name, "-o", "json"])
            .unwrap(),
    )
    .unwrap();
    let failed_attempts: Vec<Vec<i64>> = task_run["status"]["retriesStatus"]
        .as_array()
        .into_iter()
        .flatten()
        .map(failed_exit_codes)
        .collect();
    assert_eq!(
        outcome.as_deref(),
        Some("True"),
        "{}\n--- build log\n{}",
        describe(cluster, &format!("tekton.dev/taskRun={name}")),
        build_log(cluster, name)
    );
    for codes in &failed_attempts {
        assert_eq!(
            codes,
            &[REGISTRY_EXIT],
            "{name}: a failed attempt ended with another failure than the registry's"
        );
    }
    let image = task_result(cluster, name, "image");
    let digest = task_result(cluster, name, "digest");
    let served = run(
        Command::new(peer_binary("crane").expect("make peers (crane)"))
            .args([
                "digest",
                "--insecure",
                &image.replacen(&proxy.host(), registry, 1),
            ])
            .env("HOME", home),
    );
    assert_eq!(served, digest, "the registry's digest of {image}");
    failed_attempts
}

#[test]
fn a_rotated_secret_rebuilds_containerd_and_the_registry_restart_mid_build_the_registry_is_throttled_and_buildkit_fails()
 {
    let mut stages = Stages::new();
    let mut cluster = TestCluster::start().expect("cluster start");
    stages.done("cluster start (lock wait included)");
    cluster.install_tekton().expect("install Tekton");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (daemon, git_url, commits) = serve_shell_app(w, 1);
    let commit = commits[0].clone();
    let installed = install_pipeline(&cluster, w);
    let registry = installed.registry.clone();
    let step_image = installed.step_image.clone();
    workspace_claim(&cluster, "chaos-workspace", &w.join("workspace"));
    let ws =
        json!({ "name": "output", "persistentVolumeClaim": { "claimName": "chaos-workspace" } });
    stages.done("Tekton, images, Tasks and workspace");

    // The source, cloned and planned once with the build secret declared. Railpack's frontend pulls
    // docker.io/library/alpine for steps that use secrets: the runtime base stand-in serves as it, through the
    // node's docker.io mirror.
    run(
        Command::new(peer_binary("crane").expect("make peers (crane)"))
            .args([
                "copy",
                "--insecure",
                &format!("{registry}/railwayapp/railpack-runtime:latest"),
                &format!("{registry}/library/alpine:latest"),
            ])
            .env("HOME", w),
    );
    run_to_success(&cluster, "taskrun", &clone_run(&git_url, &commit, &ws));
    run_to_success(
        &cluster,
        "taskrun",
        &prepare_run(&step_image, &ws, &["API_TOKEN"]),
    );
    let plan = (
        task_result(&cluster, "prepare", "planPath"),
        task_result(&cluster, "prepare", "infoPath"),
    );
    drop(daemon);
    stages.done("clone and prepare");

    // A rotated build secret: built, deduped, rotated, built again.
    let repository = "kibaship/chaos/secret";
    set_build_secret(&cluster, "first-token-value-0001");
    let mut outcomes = Vec::new();
    for (run, rotate_to) in [
        ("secret-1", None),
        ("secret-2", None),
        ("secret-3", Some("rotated-token-value-0002")),
    ] {
        if let Some(value) = rotate_to {
            set_build_secret(&cluster, value);
        }
        let started = Instant::now();
        let object = build_run(run, &registry, repository, &commit, &plan, &step_image);
        if rotate_to.is_none() {
            run_to_success(&cluster, "taskrun", &object);
        } else {
            // containerd restarted while the build step runs.
            cluster
                .kubectl_stdin_ok(&["create", "-f", "-"], &object.to_string())
                .unwrap();
            let running = wait_until(TRIES, PAUSE, || {
                cluster
                    .kubectl_ok(&[
                        "get",
                        "pods",
                        "-l",
                        &format!("tekton.dev/taskRun={run}"),
                        "-o",
                        "jsonpath={.items[0].status.containerStatuses[?(@.name==\"step-build\")].state.running.startedAt}",
                    ])
                    .ok()
                    .filter(|t| !t.trim().is_empty())
            });
            assert!(
                running.is_some(),
                "{run}'s build step never ran: {}",
                describe(&cluster, &format!("tekton.dev/taskRun={run}"))
            );
            let took = cluster
                .restart_daemon("containerd")
                .expect("restart containerd");
            eprintln!(
                "{run}: containerd restarted in {:.1} s while the build step ran",
                took.as_secs_f64()
            );
            assert_eq!(
                finished(&cluster, "taskrun", run).as_deref(),
                Some("True"),
                "{run} after containerd's restart: {}\n--- containerd\n{}\n--- kubelet\n{}",
                describe(&cluster, &format!("tekton.dev/taskRun={run}")),
                cluster.log_tail("containerd"),
                cluster.log_tail("kubelet")
            );
        }
        let retries = cluster
            .kubectl_ok(&[
                "get",
                "taskrun",
                run,
                "-o",
                "jsonpath={.status.retriesStatus[*].podName}",
            ])
            .unwrap();
        assert_eq!(retries.trim(), "", "{run} succeeded only on its retry");
        let log = build_log(&cluster, run);
        let reused = log.contains("dedupe: skip build");
        eprintln!(
            "{run}: {} in {:.1} s, digest {}",
            if reused { "reused" } else { "built" },
            started.elapsed().as_secs_f64(),
            task_result(&cluster, run, "digest")
        );
        for secret in ["first-token-value-0001", "rotated-token-value-0002"] {
            assert!(
                !log.contains(secret),
                "{run} printed a build secret:\n{log}"
            );
        }
        outcomes.push((run, reused, log));
    }
    let reused: Vec<bool> = outcomes.iter().map(|(_, r, _)| *r).collect();
    assert_eq!(
        reused,
        [false, true, false],
        "built, deduped, built again after the rotation:\n{}",
        outcomes
            .iter()
            .map(|(run, _, log)| format!("--- {run}\n{log}"))
            .collect::<String>()
    );
    assert!(
        outcomes[2].2.contains("dedupe: no earlier build with key"),
        "the rotated secret's key is new:\n{}",
        outcomes[2].2
    );
    assert_eq!(
        task_result(&cluster, "secret-2", "digest"),
        task_result(&cluster, "secret-1", "digest"),
        "the dedupe hit reports the first build's digest"
    );
    stages.done("secret rotation, containerd restarted mid-build");

    // A throttled registry: 429 and 503 bursts on the first blob uploads, through the fault proxy on the node
    // address in front of the cluster's registry.
    let script = vec![
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        Fault::ServiceUnavailable,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        Fault::ServiceUnavailable,
    ];
    let faults = script.len();
    let proxy = FaultProxy::start_on(NODE_ADDR.into(), &registry, "/blobs/uploads/", script)
        .expect("the fault proxy on the node address");
    let started = Instant::now();
    let throttled = build_run(
        "throttled",
        &proxy.host(),
        "kibaship/chaos/throttled",
        &commit,
        &plan,
        &step_image,
    );
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &throttled.to_string())
        .unwrap();
    let failed_attempts = assert_survived(&cluster, "throttled", &proxy, &registry, w);
    eprintln!(
        "throttled: done in {:.1} s; {} requests through the proxy, {} of {faults} faults served; failed attempts' exit codes {failed_attempts:?}",
        started.elapsed().as_secs_f64(),
        proxy.requests_seen(),
        faults - proxy.script_left(),
    );
    assert_eq!(
        proxy.script_left(),
        0,
        "every fault of the script was served"
    );
    stages.done("throttled registry");

    // The registry restarted mid-push: the first blob upload's answer held 5 s by the proxy while the registry
    // stops, stays down 2 s and starts again.
    let proxy = FaultProxy::start_on(
        NODE_ADDR.into(),
        &registry,
        "/blobs/uploads/",
        vec![Fault::SlowBody { delay_ms: 5000 }],
    )
    .expect("the fault proxy on the node address");
    let started = Instant::now();
    let restarted = build_run(
        "restarted",
        &proxy.host(),
        "kibaship/chaos/restarted",
        &commit,
        &plan,
        &step_image,
    );
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &restarted.to_string())
        .unwrap();
    let held = wait_until(6000, Duration::from_millis(20), || {
        (proxy.script_left() == 0).then_some(())
    });
    assert!(
        held.is_some(),
        "the build never pushed: {}",
        describe(&cluster, "tekton.dev/taskRun=restarted")
    );
    let away = cluster
        .restart_registry(Duration::from_secs(2))
        .expect("restart the registry");
    let failed_attempts = assert_survived(&cluster, "restarted", &proxy, &registry, w);
    eprintln!(
        "restarted: the registry away {:.1} s mid-push; done in {:.1} s; {} requests through the proxy; failed attempts' exit codes {failed_attempts:?}",
        away.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        proxy.requests_seen(),
    );
    stages.done("registry restarted mid-push");

    // A failure inside BuildKit: the failing app planned in the cluster, then built once (no retry).
    let app = w.join("workspace/repo/failing");
    fs::create_dir_all(&app).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/railpack/apps/shell-failing-build");
    for entry in fs::read_dir(&fixture).unwrap() {
        let entry = entry.unwrap();
        let to = app.join(entry.file_name());
        fs::copy(entry.path(), &to).unwrap();
        fs::set_permissions(&to, fs::Permissions::from_mode(0o644)).unwrap();
    }
    fs::set_permissions(&app, fs::Permissions::from_mode(0o755)).unwrap();
    let mut prepare = prepare_run(&step_image, &ws, &[]);
    prepare["metadata"]["name"] = json!("prepare-failing");
    prepare["spec"]["params"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "contextPath", "value": "failing" }));
    run_to_success(&cluster, "taskrun", &prepare);
    let failing_plan = (
        task_result(&cluster, "prepare-failing", "planPath"),
        task_result(&cluster, "prepare-failing", "infoPath"),
    );
    let mut failing = build_run(
        "failing",
        &registry,
        "kibaship/chaos/failing",
        &commit,
        &failing_plan,
        &step_image,
    );
    failing["spec"]["retries"] = json!(0);
    let params = failing["spec"]["params"].as_array_mut().unwrap();
    // The failing app's plan declares no build secret.
    params.retain(|p| p["name"] != "buildSecrets");
    params.push(json!({ "name": "contextPath", "value": "failing" }));
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &failing.to_string())
        .unwrap();
    assert_eq!(
        finished(&cluster, "taskrun", "failing").as_deref(),
        Some("False"),
        "{}",
        describe(&cluster, "tekton.dev/taskRun=failing")
    );
    let task_run: Value = serde_json::from_str(
        &cluster
            .kubectl_ok(&["get", "taskrun", "failing", "-o", "json"])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        failed_exit_codes(&task_run["status"]),
        [BUILD_EXIT],
        "a command failing in BuildKit is a build failure"
    );
    let log = build_log(&cluster, "failing");
    for kept in [
        "compile-error: include/app.h: no such file",
        "kibaship-step: build error: buildctl build failed: buildctl exited with exit status: 1: failed to solve: process",
        "did not complete successfully: exit code: 3",
    ] {
        assert!(log.contains(kept), "{kept:?} not in the build log:\n{log}");
    }
    stages.done("a failure inside BuildKit");
    stages.print();
}
