//! What the webhook's integration tests share: a registry with images signed by the real cosign, policies, a
//! webhook in process, and AdmissionReviews.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kibaship_oci::ClientConfig;
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use kibaship_webhook::{Running, ServerConfig};
use serde_json::{Value, json};

pub const PASSWORD: &str = "webhook-test-password";

pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

pub fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The real cosign in `dir` (keys there), with no docker config and no transparency log.
pub fn cosign(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(peer_binary("cosign").unwrap());
    c.current_dir(dir)
        .env("HOME", dir)
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .env("COSIGN_PASSWORD", PASSWORD)
        .env_remove("SIGSTORE_ID_TOKEN")
        .env_remove("COSIGN_REPOSITORY")
        .args(args);
    c
}

pub fn crane(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(peer_binary("crane").unwrap());
    c.current_dir(dir)
        .env("HOME", dir)
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .args(args);
    c
}

pub fn digest_of(dir: &Path, image: &str) -> String {
    run(
        &mut crane(dir, &["digest", "--insecure", image]),
        "crane digest",
    )
    .trim()
    .to_string()
}

pub fn sign(dir: &Path, key: &str, legacy: bool, image_by_digest: &str) {
    let mut args = vec![
        "sign",
        "--key",
        key,
        "--tlog-upload=false",
        "--use-signing-config=false",
        "--allow-http-registry",
        "--yes",
    ];
    if legacy {
        args.push("--new-bundle-format=false");
    }
    args.push(image_by_digest);
    run(&mut cosign(dir, &args), "cosign sign");
}

/// A CA and a serving certificate for 127.0.0.1 signed by it: (ca_pem, cert_pem, key_pem).
pub fn serving_certificate(name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} CA"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name.to_string());
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub registry: TestRegistry,
    pub host: String,
    pub signed_bundle: String,
    pub signed_legacy: String,
    pub unsigned: String,
    pub wrong_key: String,
    pub copied_signature: String,
    pub ca_pem: String,
}

impl World {
    pub fn new() -> World {
        Self::with_certificate(serving_certificate("kibaship-webhook-test"))
    }

    /// As [`World::new`] on a registry of `mode`.
    pub fn new_in(mode: RegistryMode) -> World {
        Self::build(mode, serving_certificate("kibaship-webhook-test"))
    }

    /// As [`World::new`], serving `(ca_pem, cert_pem, key_pem)`.
    pub fn with_certificate(certificate: (String, String, String)) -> World {
        Self::build(RegistryMode::Referrers, certificate)
    }

    fn build(mode: RegistryMode, certificate: (String, String, String)) -> World {
        let dir = tempfile::tempdir().unwrap();
        let registry = TestRegistry::start(mode).unwrap();
        push_fixture_images(&registry).unwrap();
        let host = registry.host();
        let d = dir.path();
        run(
            &mut cosign(d, &["generate-key-pair"]),
            "cosign generate-key-pair",
        );
        std::fs::create_dir(d.join("other")).unwrap();
        run(
            &mut cosign(&d.join("other"), &["generate-key-pair"]),
            "cosign generate-key-pair (other)",
        );
        let image = |name: &str| format!("{host}/fixtures/{name}:v1");
        let pinned = |name: &str| format!("{host}/fixtures/{name}@{}", digest_of(d, &image(name)));
        sign(d, "cosign.key", false, &pinned("app"));
        sign(d, "cosign.key", true, &pinned("docker-app"));
        sign(d, "other/cosign.key", false, &pinned("multiarch"));
        // docker-multiarch carries docker-app's legacy signature, copied under its own digest's tag.
        let app_digest = digest_of(d, &image("docker-app"));
        let target_digest = digest_of(d, &image("docker-multiarch"));
        run(
            &mut crane(
                d,
                &[
                    "copy",
                    "--insecure",
                    &format!(
                        "{host}/fixtures/docker-app:{}.sig",
                        app_digest.replace(':', "-")
                    ),
                    &format!(
                        "{host}/fixtures/docker-multiarch:{}.sig",
                        target_digest.replace(':', "-")
                    ),
                ],
            ),
            "crane copy",
        );
        let (ca_pem, cert, key) = certificate;
        std::fs::write(d.join("tls.crt"), cert).unwrap();
        std::fs::write(d.join("tls.key"), key).unwrap();
        std::fs::copy(
            testdata().join("sigstore/trusted-roots/production-trusted_root.json"),
            d.join("trusted_root.json"),
        )
        .unwrap();
        World {
            signed_bundle: image("app"),
            signed_legacy: image("docker-app"),
            unsigned: image("config-only"),
            wrong_key: image("multiarch"),
            copied_signature: image("docker-multiarch"),
            dir,
            registry,
            host,
            ca_pem,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// One policy over this registry's fixtures signed with `cosign.pub`, in `mode`; `namespaces` is the
    /// policy's `namespaces:` block (indented four spaces) or empty.
    pub fn policy_entry(&self, name: &str, mode: &str, namespaces: &str) -> String {
        self.policy_entry_for(&self.host, name, mode, namespaces)
    }

    /// As [`World::policy_entry`], for the fixtures as reached through `host` (a proxy in front of the registry).
    pub fn policy_entry_for(&self, host: &str, name: &str, mode: &str, namespaces: &str) -> String {
        let key = std::fs::read_to_string(self.path("cosign.pub")).unwrap();
        let key = key
            .lines()
            .map(|l| format!("          {l}\n"))
            .collect::<String>();
        format!(
            "  - name: {name}\n    mode: {mode}\n{namespaces}    images: [\"{host}/fixtures/**\"]\n    transparencyLog: optional\n    authorities:\n      - name: release-key\n        key: |\n{key}"
        )
    }

    /// A policy document of `entries`.
    pub fn policy_document(entries: &[String]) -> String {
        format!(
            "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n{}",
            entries.concat()
        )
    }

    /// A document of one policy (see [`World::policy_entry`]).
    pub fn policy(&self, mode: &str, namespaces: &str) -> String {
        Self::policy_document(&[self.policy_entry("fixtures-signed", mode, namespaces)])
    }

    pub fn write_policy(&self, text: &str) {
        // As the kubelet updates a ConfigMap volume: a new file swapped in by rename.
        let tmp = self.path("policy.yaml.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.path("policy.yaml")).unwrap();
    }

    pub async fn start(&self, budget: Duration) -> Running {
        self.start_with_registry(budget, &self.host).await
    }

    /// As [`World::start`], reaching `registry_host` over plain HTTP (a proxy in front of the registry).
    pub async fn start_with_registry(&self, budget: Duration, registry_host: &str) -> Running {
        self.start_with(budget, registry_host, None).await
    }

    /// As [`World::start_with_registry`], reading namespace labels and pull secrets through `kube_api`.
    pub async fn start_with(
        &self,
        budget: Duration,
        registry_host: &str,
        kube_api: Option<kibaship_webhook::kube_api::KubeApiConfig>,
    ) -> Running {
        kibaship_webhook::start(ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
            tls_cert: self.path("tls.crt"),
            tls_key: self.path("tls.key"),
            policy: self.path("policy.yaml"),
            trusted_root: self.path("trusted_root.json"),
            budget,
            cache_entries: 1000,
            cache_ttl: Duration::from_secs(600),
            reload_interval: Duration::from_millis(100),
            registry: ClientConfig {
                insecure_registries: vec![registry_host.to_string()],
                use_docker_config: false,
                ..ClientConfig::default()
            },
            kube_api,
        })
        .await
        .unwrap()
    }
}

impl World {
    /// Our own registry client for the world's registry (plain HTTP, no docker config): to sign with kibaship.
    pub fn registry_client(&self) -> kibaship_oci::RegistryClient {
        kibaship_oci::RegistryClient::new(ClientConfig {
            insecure_registries: vec![self.host.clone()],
            use_docker_config: false,
            ..ClientConfig::default()
        })
        .unwrap()
    }
}

pub fn client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

pub fn pod_review(uid: &str, namespace: &str, images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
        .collect();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "p",
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "test"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "namespace": namespace},
                "spec": {"containers": containers}
            },
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

pub async fn post(client: &reqwest::Client, running: &Running, path: &str, body: &Value) -> Value {
    let response = client
        .post(format!("https://127.0.0.1:{}{path}", running.addr.port()))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

pub fn response_of(review: &Value) -> &Value {
    &review["response"]
}

pub fn metrics_text(running: &Running) -> String {
    let addr = running.metrics_addr.unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", &format!("http://{addr}/metrics")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// Posts `review` to `/validate` until its response satisfies `wanted` (a reloaded file takes effect at the next
/// reload tick), at most 100 times 100 ms apart; the review that did, if any.
pub async fn validate_until(
    client: &reqwest::Client,
    running: &Running,
    review: &Value,
    wanted: impl Fn(&Value) -> bool,
) -> Option<Value> {
    for _ in 0..100 {
        let answer = post(client, running, "/validate", review).await;
        if wanted(response_of(&answer)) {
            return Some(answer);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
