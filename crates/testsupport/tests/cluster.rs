//! The one-node cluster (issue 19): Pods run, logs and exec work, a Pod reaches the API with its service-account
//! token through the `kubernetes` Service, a Service routes to a Pod, a missing image is surfaced as
//! `ErrImagePull`, and teardown leaves nothing on the host. One cluster for all checks: it takes the host-wide
//! lock, and starting it is the slow part.

use std::time::Duration;

use kibaship_testsupport::cluster::{self, TestCluster};
use kibaship_testsupport::kube::wait_until;

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
    let registry = cluster.registry().expect("registry").host();
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

    let took = cluster.teardown().expect("teardown leaves nothing");
    eprintln!("cluster: teardown {:.1} s", took.as_secs_f64());
    let left = cluster::leftovers().unwrap();
    assert!(left.is_empty(), "{left:?}");
}
