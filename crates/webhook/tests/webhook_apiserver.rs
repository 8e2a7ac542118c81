//! The real kube-apiserver (with etcd; no kubelet, so Pods stay Pending) calling the webhook, in process, over
//! TLS: kubectl creates Pods and Deployments in a namespace labelled `enforce`, one labelled `warn`, and one not
//! labelled, with images signed by the real cosign on a real registry. kubectl's own messages are asserted: the
//! denial with its reason code, the `Warning:` line, and the Pod's image pinned to its digest by /mutate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Output;
use std::time::Duration;

use kibaship_testsupport::kube::KubeApiServer;
use support::*;

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn pod(name: &str, namespace: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  containers:\n    - name: app\n      image: {image}\n"
    )
}

fn deployment(name: &str, namespace: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      initContainers:\n        - name: init\n          image: {image}\n      containers:\n        - name: app\n          image: {image}\n"
    )
}

fn webhook_configurations(port: u16, ca_bundle: &str) -> String {
    let rules = r#"    rules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE"]
        resources: ["pods", "pods/ephemeralcontainers"]
      - apiGroups: ["apps"]
        apiVersions: ["v1"]
        operations: ["CREATE", "UPDATE"]
        resources: ["deployments"]
    namespaceSelector:
      matchExpressions:
        - key: kibaship.io/verify
          operator: In
          values: ["enforce", "warn"]
"#;
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata:\n  name: kibaship-test\nwebhooks:\n  - name: mutate.kibaship.io\n    admissionReviewVersions: [\"v1\"]\n    sideEffects: None\n    failurePolicy: Fail\n    timeoutSeconds: 10\n    reinvocationPolicy: IfNeeded\n    clientConfig:\n      url: https://127.0.0.1:{port}/mutate\n      caBundle: {ca_bundle}\n{rules}---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: kibaship-test\nwebhooks:\n  - name: validate.kibaship.io\n    admissionReviewVersions: [\"v1\"]\n    sideEffects: None\n    failurePolicy: Fail\n    timeoutSeconds: 10\n    clientConfig:\n      url: https://127.0.0.1:{port}/validate\n      caBundle: {ca_bundle}\n{rules}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_sees_admissions_denials_and_warnings() {
    let api = tokio::task::spawn_blocking(KubeApiServer::start)
        .await
        .unwrap()
        .unwrap();
    let (cert, key, ca) = api.webhook_certificate().unwrap();
    let world = World::with_certificate((ca, cert, key));
    world.write_policy(&World::policy_document(&[
        world.policy_entry(
            "prod-signed",
            "enforce",
            "    namespaces:\n      names: [\"prod\"]\n",
        ),
        world.policy_entry(
            "staging-signed",
            "warn",
            "    namespaces:\n      names: [\"staging\"]\n",
        ),
    ]));
    let running = world.start(Duration::from_secs(8)).await;
    assert!(running.state.is_ready());
    let port = running.addr.port();

    let api = std::sync::Arc::new(api);
    let blocking = {
        let api = std::sync::Arc::clone(&api);
        let world_images = (
            world.signed_bundle.clone(),
            world.signed_legacy.clone(),
            world.unsigned.clone(),
            world.wrong_key.clone(),
            world.copied_signature.clone(),
        );
        let signed_digest = digest_of(world.dir.path(), &world.signed_bundle);
        tokio::task::spawn_blocking(move || {
            let (signed_bundle, signed_legacy, unsigned, wrong_key, copied) = world_images;
            for (ns, label) in [
                ("prod", Some("enforce")),
                ("staging", Some("warn")),
                ("dev", None),
            ] {
                api.kubectl_ok(&["create", "namespace", ns]).unwrap();
                if let Some(label) = label {
                    api.kubectl_ok(&[
                        "label",
                        "namespace",
                        ns,
                        &format!("kibaship.io/verify={label}"),
                    ])
                    .unwrap();
                }
            }
            // In force once an unsigned Pod in prod is refused by us.
            let mut probe = 0;
            api.apply_webhook_configuration(
                &webhook_configurations(port, &api.webhook_ca_bundle()),
                |api| {
                    probe += 1;
                    let name = format!("probe-{probe}");
                    let out =
                        api.kubectl_stdin(&["create", "-f", "-"], &pod(&name, "prod", &unsigned));
                    if out.status.success() {
                        let _ =
                            api.kubectl(&["delete", "pod", "-n", "prod", &name, "--wait=false"]);
                        false
                    } else {
                        text(&out).contains("kibaship")
                    }
                },
            )
            .unwrap();

            // Signed, both layouts: admitted, and the tag pinned to the verified digest.
            for (name, image) in [("bundle", &signed_bundle), ("legacy", &signed_legacy)] {
                let out = api.kubectl_stdin(&["create", "-f", "-"], &pod(name, "prod", image));
                assert!(out.status.success(), "{name}: {}", text(&out));
            }
            let image = api
                .kubectl_ok(&[
                    "get",
                    "pod",
                    "-n",
                    "prod",
                    "bundle",
                    "-o",
                    "jsonpath={.spec.containers[0].image}",
                ])
                .unwrap();
            assert_eq!(image, format!("{signed_bundle}@{signed_digest}"));

            // Refused with the reason code in kubectl's message.
            for (name, image, code) in [
                ("unsigned", &unsigned, "unsigned"),
                ("wrong-key", &wrong_key, "wrong-key"),
                ("copied", &copied, "digest-mismatch"),
            ] {
                let out = api.kubectl_stdin(&["create", "-f", "-"], &pod(name, "prod", image));
                let said = text(&out);
                assert!(!out.status.success(), "{name} was admitted: {said}");
                assert!(
                    said.contains("denied the request") && said.contains(&format!(": {code}: ")),
                    "{name}: {said}"
                );
            }
            // A Deployment's template is judged too (init container and container).
            let out = api.kubectl_stdin(
                &["create", "-f", "-"],
                &deployment("web", "prod", &unsigned),
            );
            assert!(!out.status.success(), "{}", text(&out));
            assert!(text(&out).contains(": unsigned: "), "{}", text(&out));

            // Warn mode: admitted, with kubectl's Warning line.
            let out =
                api.kubectl_stdin(&["create", "-f", "-"], &pod("warned", "staging", &unsigned));
            assert!(out.status.success(), "{}", text(&out));
            let said = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(
                said.contains("Warning:") && said.contains("unsigned"),
                "{said}"
            );

            // A namespace without the label: not sent to the webhook at all.
            let out = api.kubectl_stdin(&["create", "-f", "-"], &pod("free", "dev", &unsigned));
            assert!(out.status.success(), "{}", text(&out));
        })
    };
    blocking.await.unwrap();

    // The webhook stopped: failurePolicy Fail refuses what it would have judged.
    running.stop();
    drop(running);
    let api2 = std::sync::Arc::clone(&api);
    let signed = world.signed_bundle.clone();
    tokio::task::spawn_blocking(move || {
        let out = api2.kubectl_stdin(&["create", "-f", "-"], &pod("stopped", "prod", &signed));
        assert!(
            !out.status.success(),
            "admitted with the webhook stopped: {}",
            text(&out)
        );
        assert!(
            text(&out).contains("failed calling webhook"),
            "{}",
            text(&out)
        );
    })
    .await
    .unwrap();
}
