//! The real kube-apiserver (with etcd; no kubelet, so Pods stay Pending) calling the webhook, in process, over
//! TLS: kubectl creates Pods and Deployments in a namespace labelled `enforce`, one labelled `warn`, and one not
//! labelled, with images signed by the real cosign on a real registry. kubectl's own messages are asserted: the
//! denial with its reason code, the `Warning:` line, and the Pod's image pinned to its digest by /mutate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Output;
use std::time::Duration;

use kibaship_testsupport::kube::KubeApiServer;
use kibaship_webhook::kube_api::KubeApiConfig;
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

/// The webhook's view of `api`: its URL, and its token and CA written to files in `dir`.
fn kube_api_config(api: &KubeApiServer, dir: &std::path::Path) -> KubeApiConfig {
    std::fs::write(dir.join("kube-token"), api.token()).unwrap();
    std::fs::write(dir.join("kube-ca.pem"), api.ca_pem()).unwrap();
    KubeApiConfig::new(api.url(), dir.join("kube-token"), dir.join("kube-ca.pem"))
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
            "    namespaces:\n      matchLabels: {kibaship.io/verify: enforce}\n",
        ),
        world.policy_entry(
            "staging-signed",
            "warn",
            "    namespaces:\n      names: [\"staging\"]\n",
        ),
    ]));
    // Namespace labels come from the API server (the policy selects prod by label).
    let running = world
        .start_with(
            Duration::from_secs(8),
            &world.host,
            Some(kube_api_config(&api, world.dir.path())),
        )
        .await;
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

/// A registry that wants credentials: the webhook has none of its own, so it reads the image and its signatures
/// with the Pod's imagePullSecrets (a `kubernetes.io/dockerconfigjson` Secret created by kubectl), and refuses a
/// Pod without them (it cannot see the signatures).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pods_pull_secret_reaches_a_private_registry() {
    use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
    let api = tokio::task::spawn_blocking(KubeApiServer::start)
        .await
        .unwrap()
        .unwrap();
    let registry = TestRegistry::start(RegistryMode::BasicTls).unwrap();
    kibaship_testsupport::fixtures::push_fixture_images(&registry).unwrap();
    let host = registry.host();
    let (username, password) = registry.credentials().unwrap();
    let ca_file = registry.ca_pem_path().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();

    // Signed by kibaship's signer with a fresh key, through credentials the webhook will not have.
    let key = kibaship_sign::SigningKey::generate().unwrap();
    let with_credentials = kibaship_oci::RegistryClient::new(kibaship_oci::ClientConfig {
        ca_file: Some(ca_file.clone()),
        use_docker_config: false,
        credentials: std::collections::HashMap::from([(
            host.clone(),
            kibaship_oci::Credential::Basic {
                username: username.clone(),
                password: password.clone(),
            },
        )]),
        ..kibaship_oci::ClientConfig::default()
    })
    .unwrap();
    let image = kibaship_oci::Reference::parse(&format!("{host}/fixtures/app:v1")).unwrap();
    let digest = with_credentials
        .resolve_digest(&image, None)
        .await
        .unwrap()
        .digest;
    kibaship_cosign::sign_image(
        &with_credentials,
        &image.with_digest(digest),
        None,
        kibaship_cosign::ImageSigner::Key(&key),
        kibaship_cosign::Layouts::Bundle,
        &Default::default(),
    )
    .await
    .unwrap();

    let (cert, tls_key, _ca) = api.webhook_certificate().unwrap();
    std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), tls_key).unwrap();
    std::fs::copy(
        testdata().join("sigstore/trusted-roots/production-trusted_root.json"),
        dir.path().join("trusted_root.json"),
    )
    .unwrap();
    let public = key.public_key_pem().unwrap();
    let indented: String = public.lines().map(|l| format!("          {l}\n")).collect();
    std::fs::write(
        dir.path().join("policy.yaml"),
        format!(
            "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: private\n    images: [\"{host}/**\"]\n    transparencyLog: optional\n    authorities:\n      - name: key\n        key: |\n{indented}"
        ),
    )
    .unwrap();
    let running = kibaship_webhook::start(kibaship_webhook::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: None,
        tls_cert: dir.path().join("tls.crt"),
        tls_key: dir.path().join("tls.key"),
        policy: dir.path().join("policy.yaml"),
        trusted_root: dir.path().join("trusted_root.json"),
        budget: Duration::from_secs(8),
        cache_entries: 100,
        cache_ttl: Duration::from_secs(600),
        reload_interval: Duration::from_secs(1),
        registry: kibaship_oci::ClientConfig {
            ca_file: Some(ca_file),
            use_docker_config: false,
            ..kibaship_oci::ClientConfig::default()
        },
        kube_api: Some(kube_api_config(&api, dir.path())),
    })
    .await
    .unwrap();
    let port = running.addr.port();
    let image = format!("{host}/fixtures/app:v1");
    tokio::task::spawn_blocking(move || {
        api.kubectl_ok(&["create", "namespace", "prod"]).unwrap();
        api.kubectl_ok(&["label", "namespace", "prod", "kibaship.io/verify=enforce"])
            .unwrap();
        api.kubectl_ok(&[
            "create",
            "secret",
            "docker-registry",
            "regcred",
            "-n",
            "prod",
            &format!("--docker-server={host}"),
            &format!("--docker-username={username}"),
            &format!("--docker-password={password}"),
        ])
        .unwrap();
        let mut probe = 0;
        api.apply_webhook_configuration(
            &webhook_configurations(port, &api.webhook_ca_bundle()),
            |api| {
                probe += 1;
                let name = format!("probe-{probe}");
                let out = api.kubectl_stdin(&["create", "-f", "-"], &pod(&name, "prod", &image));
                if out.status.success() {
                    let _ = api.kubectl(&["delete", "pod", "-n", "prod", &name, "--wait=false"]);
                    false
                } else {
                    text(&out).contains("kibaship")
                }
            },
        )
        .unwrap();
        // Without the pull secret: refused, the registry would not show the signatures.
        let out = api.kubectl_stdin(&["create", "-f", "-"], &pod("anonymous", "prod", &image));
        assert!(!out.status.success(), "{}", text(&out));
        assert!(text(&out).contains(": registry-denied: "), "{}", text(&out));
        // With it: admitted.
        let with_secret = pod("with-secret", "prod", &image).replace(
            "spec:\n",
            "spec:\n  imagePullSecrets:\n    - name: regcred\n",
        );
        let out = api.kubectl_stdin(&["create", "-f", "-"], &with_secret);
        assert!(out.status.success(), "{}", text(&out));
        // The secret's password appears nowhere in what kubectl was told.
        assert!(!text(&out).contains(&password));
    })
    .await
    .unwrap();
    drop(running);
}
