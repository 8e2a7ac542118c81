//! The one-node cluster (issue 19): Pods run, logs and exec work, a Pod reaches the API with its service-account
//! token through the `kubernetes` Service, a Pod reads the cluster's registry at the address the kubelet pulls
//! from, a Service routes to a Pod, a missing image is surfaced as `ErrImagePull`, and teardown leaves nothing on
//! the host. One cluster for all checks: it takes the host-wide lock, and starting it is the slow part.

use std::time::Duration;

use kibaship_testsupport::cluster::{self, TestCluster};
use kibaship_testsupport::kube::wait_until;

/// The tests of this file run one at a time: the host lock already serialises clusters, but the tests that kill
/// or interrupt a harness inspect the host between two clusters, where another test's start would sweep or
/// create exactly what they look at.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Tries (half a second apart) for conditions the cluster reaches asynchronously; the bound only keeps a
/// broken cluster from hanging the test, nothing is asserted about time.
const TRIES: u32 = 240;
const PAUSE: Duration = Duration::from_millis(500);

fn pod(name: &str, image: &str, script: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "labels": { "app": name } },
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main",
                "image": image,
                "command": ["/bin/sh", "-c", script],
                "env": [{ "name": "HOME", "value": "/tmp" }],
            }],
        },
    })
    .to_string()
}

fn wait_ready(cluster: &TestCluster, name: &str) {
    let out = cluster.kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("pod/{name}"),
        "--timeout=120s",
    ]);
    assert!(
        out.status.success(),
        "pod {name} not Ready: {}\n{}\nkubelet log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        cluster
            .kubectl_ok(&["describe", "pod", name])
            .unwrap_or_default(),
        cluster.log_tail("kubelet")
    );
}

#[test]
fn issue_19_cluster_runs_pods_and_teardown_leaves_nothing() {
    let _serial = serial();
    let cluster = TestCluster::start().expect("cluster start");
    let timings = cluster.timings();
    eprintln!(
        "cluster: node Ready {:.1} s after the first daemon; start {:.1} s in all",
        timings.to_node_ready.as_secs_f64(),
        timings.start_total.as_secs_f64()
    );

    // A Pod runs and its log is read.
    cluster
        .kubectl_stdin_ok(
            &["apply", "-f", "-"],
            &pod(
                "hello",
                cluster.tools_image(),
                "echo hello-from-pod; exec sleep 3600",
            ),
        )
        .unwrap();
    wait_ready(&cluster, "hello");
    let logs = wait_until(TRIES, PAUSE, || {
        cluster
            .kubectl_ok(&["logs", "hello"])
            .ok()
            .filter(|l| l.contains("hello-from-pod"))
    });
    assert!(logs.is_some(), "{}", cluster.log_tail("kube-apiserver"));

    // exec works.
    let out = cluster
        .kubectl_ok(&["exec", "hello", "--", "/bin/sh", "-c", "echo $((6 * 7))"])
        .unwrap();
    assert_eq!(out.trim(), "42");

    // kubectl inside the Pod reaches the API through the `kubernetes` Service with the projected token.
    let out = cluster
        .kubectl_ok(&[
            "exec",
            "hello",
            "--",
            "/bin/kubectl",
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .unwrap();
    assert_eq!(out.trim(), "system:serviceaccount:default:default");

    // A Pod reaches the registry at the same HOST:PORT the kubelet pulls from (the node address, not 127.0.0.1).
    let registry = cluster.registry().expect("registry").host();
    assert!(
        registry.starts_with(&format!("{}:", cluster::NODE_IP)),
        "{registry}"
    );
    let (registry_ip, registry_port) = registry.rsplit_once(':').unwrap();
    let script = format!(
        "printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 5 {registry_ip} {registry_port}"
    );
    let out = cluster
        .kubectl_ok(&["exec", "hello", "--", "/bin/sh", "-c", &script])
        .unwrap();
    assert!(
        out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"),
        "GET /v2/ from a Pod: {out}"
    );

    // A Service routes to a Pod.
    cluster
        .kubectl_stdin_ok(
            &["apply", "-f", "-"],
            &pod(
                "web",
                cluster.tools_image(),
                "while true; do echo served-by-web | busybox nc -l -p 8080; done",
            ),
        )
        .unwrap();
    cluster
        .kubectl_ok(&["expose", "pod", "web", "--port=80", "--target-port=8080"])
        .unwrap();
    wait_ready(&cluster, "web");
    let ip = cluster
        .kubectl_ok(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"])
        .unwrap();
    assert!(ip.starts_with("10.203.0."), "{ip}");
    let script = format!("busybox nc -w 5 {ip} 80 </dev/null");
    let served = wait_until(TRIES, PAUSE, || {
        cluster
            .kubectl_ok(&["exec", "hello", "--", "/bin/sh", "-c", &script])
            .ok()
            .filter(|out| out.contains("served-by-web"))
    });
    assert!(served.is_some(), "{}", cluster.log_tail("kube-proxy"));

    // An image that does not exist is surfaced as ErrImagePull (or its back-off), not a hang.
    cluster
        .kubectl_stdin_ok(
            &["apply", "-f", "-"],
            &pod(
                "missing",
                &format!("{registry}/kibaship/does-not-exist:1"),
                "true",
            ),
        )
        .unwrap();
    let reason = wait_until(TRIES, PAUSE, || {
        cluster
            .kubectl_ok(&[
                "get",
                "pod",
                "missing",
                "-o",
                "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
            ])
            .ok()
            .filter(|r| r == "ErrImagePull" || r == "ImagePullBackOff")
    });
    assert!(reason.is_some(), "no pull error reported");

    // Checked while the cluster still holds the host lock: processes, mounts, chains, bridges, cgroups.
    let took = cluster.teardown().expect("teardown leaves nothing");
    eprintln!("cluster: teardown {:.1} s", took.as_secs_f64());
}

/// `kibaship-harness cluster run` with a Pod running, in its own process group; returns once the Pod is Ready
/// (or the command failed) with whether it was.
fn harness_with_a_running_pod() -> (std::process::Child, bool, String) {
    harness_with_a_running_pod_env(&[])
}

/// As [`harness_with_a_running_pod`], with `env` set for the harness.
fn harness_with_a_running_pod_env(env: &[(&str, &str)]) -> (std::process::Child, bool, String) {
    use std::io::{BufRead as _, BufReader};
    use std::os::unix::process::CommandExt as _;
    use std::process::{Command, Stdio};

    let script = "kubectl run sleeper --image=\"$KIBASHIP_CLUSTER_TOOLS_IMAGE\" --restart=Never \
        --command -- busybox sleep 3600 >&2 && kubectl wait --for=condition=Ready pod/sleeper --timeout=120s >&2 \
        && echo ready && exec sleep 3600";
    let mut child = Command::new(env!("CARGO_BIN_EXE_kibaship-harness"))
        .args(["cluster", "run", "--", "sh", "-c", script])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn kibaship-harness");
    let stdout = child.stdout.take().expect("stdout");
    let first = BufReader::new(stdout).lines().next();
    let ready = matches!(&first, Some(Ok(line)) if line == "ready");
    (child, ready, format!("{first:?}"))
}

fn signal_group(child: &std::process::Child, signal: nix::sys::signal::Signal) {
    let group = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::killpg(group, signal).expect("killpg");
}

/// The harness interrupted (Ctrl-C: SIGINT to its whole process group) while a Pod runs: it tears everything
/// down and exits 130.
#[test]
fn issue_19_interrupted_cluster_run_leaves_nothing() {
    let _serial = serial();
    let (mut child, ready, first) = harness_with_a_running_pod();
    signal_group(&child, nix::sys::signal::Signal::SIGINT);
    let status = child.wait().expect("wait");
    assert!(ready, "the Pod never became Ready: {first}");
    assert_eq!(status.code(), Some(130), "{status}");
    let _lock = cluster::lock_host().unwrap();
    let left = cluster::leftovers().unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// The harness killed outright (SIGKILL: no teardown runs) leaves the bridges, the Pod's container and more;
/// `kibaship-harness cluster down` (as every start does first) removes all of it.
#[test]
fn issue_19_killed_harness_is_swept_by_cluster_down() {
    let _serial = serial();
    // The test holds the host lock from before the harness starts until after `cluster down`, so a cluster
    // another test process starts meanwhile cannot sweep the leftovers before they are looked at.
    let _lock = cluster::lock_host().unwrap();
    let held = [(cluster::LOCK_HELD_BY_PARENT, "1")];
    let (mut child, ready, first) = harness_with_a_running_pod_env(&held);
    signal_group(&child, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
    assert!(ready, "the Pod never became Ready: {first}");
    let left = cluster::leftovers().unwrap();
    assert!(!left.links.is_empty(), "{left:?}");
    assert!(!left.cgroups.is_empty(), "{left:?}");
    let down = std::process::Command::new(env!("CARGO_BIN_EXE_kibaship-harness"))
        .args(["cluster", "down"])
        .envs(held)
        .output()
        .expect("cluster down");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let left = cluster::leftovers().unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// Real Tekton Pipelines on the cluster: installed from its module's manifests with our images, a two-task
/// PipelineRun passes a result from the first task to the second and succeeds.
#[test]
fn issue_19_tekton_two_task_pipelinerun_passes_a_result() {
    let _serial = serial();
    let cluster = TestCluster::start().expect("cluster start");
    let took = cluster.install_tekton().expect("install Tekton");
    eprintln!("cluster: Tekton installed in {:.1} s", took.as_secs_f64());
    let image = cluster.tools_image();
    let run = serde_json::json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": { "name": "two-tasks" },
        "spec": {
            "pipelineSpec": {
                "tasks": [
                    {
                        "name": "first",
                        "taskSpec": {
                            "results": [{ "name": "word" }],
                            "steps": [{
                                "name": "write",
                                "image": image,
                                "script": "#!/bin/sh\nprintf kibaship > $(results.word.path)\n",
                            }],
                        },
                    },
                    {
                        "name": "second",
                        "params": [{ "name": "word", "value": "$(tasks.first.results.word)" }],
                        "taskSpec": {
                            "params": [{ "name": "word" }],
                            "results": [{ "name": "echoed" }],
                            "steps": [{
                                "name": "read",
                                "image": image,
                                "script": "#!/bin/sh\nprintf 'got-$(params.word)' > $(results.echoed.path)\n",
                            }],
                        },
                    },
                ],
                "results": [{ "name": "final", "value": "$(tasks.second.results.echoed)" }],
            },
        },
    });
    let started = std::time::Instant::now();
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &run.to_string())
        .unwrap();
    let status = wait_until(TRIES, PAUSE, || {
        cluster
            .kubectl_ok(&[
                "get",
                "pipelinerun",
                "two-tasks",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Succeeded\")].status}",
            ])
            .ok()
            .filter(|s| s == "True" || s == "False")
    });
    let describe = || {
        cluster
            .kubectl_ok(&["get", "pipelinerun,taskrun,pod", "-o", "yaml"])
            .unwrap_or_default()
    };
    assert_eq!(status.as_deref(), Some("True"), "{}", describe());
    eprintln!(
        "cluster: two-task PipelineRun succeeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let result = cluster
        .kubectl_ok(&[
            "get",
            "pipelinerun",
            "two-tasks",
            "-o",
            "jsonpath={.status.results[?(@.name==\"final\")].value}",
        ])
        .unwrap();
    assert_eq!(result, "got-kibaship");
    cluster.teardown().expect("teardown leaves nothing");
}
