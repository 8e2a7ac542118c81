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
//!
//! `make chaos` runs this test alone; `make test` runs it too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tekton_support;

use std::process::Command;
use std::time::Instant;

use kibaship_testsupport::cluster::{NODE_ADDR, TestCluster};
use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
use kibaship_testsupport::kube::wait_until;
use kibaship_testsupport::peers::peer_binary;
use serde_json::{Value, json};
use tekton_support::*;

/// kibaship-step's exit code for a registry (or other retryable service) failure.
const REGISTRY_EXIT: i64 = 75;

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

#[test]
fn a_rotated_secret_rebuilds_containerd_restarts_mid_build_and_a_fault_proxy_throttles_the_registry()
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
    let outcome = finished(&cluster, "taskrun", "throttled");
    let task_run: Value = serde_json::from_str(
        &cluster
            .kubectl_ok(&["get", "taskrun", "throttled", "-o", "json"])
            .unwrap(),
    )
    .unwrap();
    let failed_attempts: Vec<Vec<i64>> = task_run["status"]["retriesStatus"]
        .as_array()
        .into_iter()
        .flatten()
        .map(failed_exit_codes)
        .collect();
    eprintln!(
        "throttled: {outcome:?} in {:.1} s; {} requests through the proxy, {} of {faults} faults served; failed attempts' exit codes {failed_attempts:?}",
        started.elapsed().as_secs_f64(),
        proxy.requests_seen(),
        faults - proxy.script_left(),
    );
    assert_eq!(
        outcome.as_deref(),
        Some("True"),
        "{}\n--- build log\n{}",
        describe(&cluster, "tekton.dev/taskRun=throttled"),
        build_log(&cluster, "throttled")
    );
    assert_eq!(
        proxy.script_left(),
        0,
        "every fault of the script was served"
    );
    for codes in &failed_attempts {
        assert_eq!(
            codes,
            &[REGISTRY_EXIT],
            "a failed attempt ended with another failure than the registry's"
        );
    }
    let image = task_result(&cluster, "throttled", "image");
    let digest = task_result(&cluster, "throttled", "digest");
    let served = run(
        Command::new(peer_binary("crane").expect("make peers (crane)"))
            .args([
                "digest",
                "--insecure",
                &image.replacen(&proxy.host(), &registry, 1),
            ])
            .env("HOME", w),
    );
    assert_eq!(served, digest, "the registry's digest of {image}");
    stages.done("throttled registry");
}
