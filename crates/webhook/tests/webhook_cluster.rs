//! The webhook in the real one-node cluster (issue 15 §4): built into an image, deployed as the Deployment of
//! `deploy/` (overlay `provided-tls` with a certificate made here, the policy replaced by one requiring a cosign
//! key made here), with Pods that really start. In a namespace labelled `kibaship.io/verify=enforce` a Pod of a
//! signed image is admitted, pinned to its digest by `/mutate` and runs; a Pod of an unsigned image is refused;
//! a namespace without the label runs the unsigned image; with the webhook scaled to zero a Pod in the enforced
//! namespace is refused (failurePolicy Fail).
//!
//! The webhook runs as `deploy/` ships it: two replicas on the Pod network, `kibaship-system` enforcing the
//! `restricted` Pod Security level. The test overlay changes only the image and adds `--insecure-registry` for
//! the cluster's plain-HTTP registry, which listens on the node address: the webhook's Pods reach it through
//! their default route at the same `HOST:PORT` the kubelet pulls from.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use kibaship_testsupport::cluster::TestCluster;
use kibaship_testsupport::kube::wait_until;

/// Tries (half a second apart) for what the cluster reaches asynchronously; nothing is asserted about time.
const TRIES: u32 = 240;
const PAUSE: Duration = Duration::from_millis(500);

fn policy(registry: &str, public_key: &str) -> String {
    let key: String = public_key
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect();
    format!(
        "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: cluster-test\n    mode: enforce\n    images: [\"{registry}/**\"]\n    transparencyLog: optional\n    authorities:\n      - name: test-key\n        key: |\n{key}"
    )
}

fn pod(name: &str, namespace: &str, image: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main",
                "image": image,
                "command": ["/bin/sh", "-c", "sleep 3600"],
            }],
        },
    })
    .to_string()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn wait_running(cluster: &TestCluster, namespace: &str, name: &str) {
    let out = cluster.kubectl(&[
        "wait",
        "-n",
        namespace,
        "--for=condition=Ready",
        &format!("pod/{name}"),
        "--timeout=180s",
    ]);
    assert!(
        out.status.success(),
        "pod {namespace}/{name} not Ready: {}\n{}\nkubelet log:\n{}",
        text(&out),
        cluster
            .kubectl_ok(&["describe", "pod", "-n", namespace, name])
            .unwrap_or_default(),
        cluster.log_tail("kubelet")
    );
}

#[test]
fn webhook_deployment_admits_signed_refuses_unsigned_and_fails_closed() {
    let cluster = TestCluster::start().expect("cluster start");
    let registry = cluster.registry().expect("the cluster's registry").host();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    // (1) A cosign key; the tools image signed by digest, an unsigned copy of it under another repository.
    let keys = w.join("keys");
    fs::create_dir_all(&keys).unwrap();
    support::run(
        &mut support::cosign(&keys, &["generate-key-pair"]),
        "cosign generate-key-pair",
    );
    let tools = cluster.tools_image().to_string();
    let digest = support::digest_of(&keys, &tools);
    let tools_repo = tools.rsplit_once(':').unwrap().0;
    support::sign(
        &keys,
        "cosign.key",
        false,
        &format!("{tools_repo}@{digest}"),
    );
    let unsigned = format!("{registry}/unsigned/tools:1");
    support::run(
        &mut support::crane(&keys, &["copy", "--insecure", &tools, &unsigned]),
        "crane copy",
    );

    // (2) The webhook as an image in the cluster's registry, deploy/ applied with a policy requiring that key.
    let public_key = fs::read_to_string(keys.join("cosign.pub")).unwrap();
    cluster
        .deploy_webhook(
            Path::new(env!("CARGO_BIN_EXE_kibaship-webhook")),
            &policy(&registry, &public_key),
        )
        .expect("the webhook deployed");

    // As deploy/ ships it: restricted Pod Security, both replicas on the Pod network (not the host's).
    let level = cluster
        .kubectl_ok(&[
            "get",
            "namespace",
            "kibaship-system",
            "-o",
            "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}",
        ])
        .unwrap();
    assert_eq!(level, "restricted");
    let pods = cluster
        .kubectl_ok(&[
            "get",
            "pods",
            "-n",
            "kibaship-system",
            "-l",
            "app.kubernetes.io/name=kibaship-webhook",
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={range .items[*]}{.spec.hostNetwork} {.status.podIP}{\"\\n\"}{end}",
        ])
        .unwrap();
    let pods: Vec<&str> = pods.lines().collect();
    assert_eq!(pods.len(), 2, "{pods:?}\n{}", cluster.webhook_diagnostics());
    for pod in pods {
        let (host_network, ip) = pod.split_once(' ').unwrap();
        assert_ne!(host_network, "true", "{pod}");
        assert!(ip.starts_with("10.202.0."), "not on the Pod network: {pod}");
    }

    // (4) An enforced namespace and one without the label.
    cluster
        .kubectl_ok(&["create", "namespace", "prod"])
        .expect("namespace prod");
    cluster
        .kubectl_ok(&["label", "namespace", "prod", "kibaship.io/verify=enforce"])
        .expect("label prod");
    cluster
        .kubectl_ok(&["create", "namespace", "dev"])
        .expect("namespace dev");

    // The signed image is admitted (create_through_webhook waits until the Service routes to a webhook Pod).
    if let Err(e) = cluster.create_through_webhook(&pod("signed", "prod", &tools)) {
        panic!(
            "the signed Pod was not admitted: {e}\n{}",
            cluster.webhook_diagnostics()
        );
    }
    wait_running(&cluster, "prod", "signed");
    let image = cluster
        .kubectl_ok(&[
            "get",
            "pod",
            "-n",
            "prod",
            "signed",
            "-o",
            "jsonpath={.spec.containers[0].image}",
        ])
        .unwrap();
    assert_eq!(image, format!("{tools}@{digest}"), "pinned by /mutate");

    let refused = cluster
        .create_through_webhook(&pod("unsigned", "prod", &unsigned))
        .expect_err("the unsigned Pod was admitted in prod")
        .to_string();
    assert!(refused.contains("unsigned"), "{refused}");

    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &pod("unsigned", "dev", &unsigned))
        .expect("an unlabelled namespace admits the unsigned image");
    wait_running(&cluster, "dev", "unsigned");

    // (5) No webhook Pod: requests in the enforced namespace are refused.
    cluster
        .kubectl_ok(&[
            "scale",
            "-n",
            "kibaship-system",
            "deployment/kibaship-webhook",
            "--replicas=0",
        ])
        .expect("scale to 0");
    let _ = cluster.kubectl(&[
        "wait",
        "-n",
        "kibaship-system",
        "--for=delete",
        "pod",
        "-l",
        "app.kubernetes.io/name=kibaship-webhook",
        "--timeout=120s",
    ]);
    let mut last = String::new();
    let mut n = 0;
    let refused = wait_until(TRIES, PAUSE, || {
        n += 1;
        let name = format!("after-scale-{n}");
        match cluster.kubectl_stdin_ok(&["create", "-f", "-"], &pod(&name, "prod", &tools)) {
            Ok(out) => {
                // Admitted by a webhook Pod still draining: not yet the state under test.
                last = out;
                let _ = cluster.kubectl(&["delete", "pod", "-n", "prod", &name, "--wait=false"]);
                None
            }
            Err(e) => Some(e.to_string()),
        }
    })
    .unwrap_or_else(|| panic!("never refused with the webhook scaled to 0: {last}"));
    assert!(refused.contains("failed calling webhook"), "{refused}");

    let took = cluster.teardown().expect("teardown");
    eprintln!("teardown took {took:?}");
}
