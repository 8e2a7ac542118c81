//! `kibaship_webhook::kube_api` against a real kube-apiserver (with etcd, on loopback): namespace labels and
//! their cache, pull credentials from both secret types and a service account, identities without rights,
//! and that no secret (registry password, bearer token) shows in `Debug` output, errors, notes or logs.
//! Faults no real API server produces on demand (no answer at all, a closed port, a foreign certificate)
//! come from loopback sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use base64::Engine as _;
use kibaship_oci::Credential;
use kibaship_testsupport::kube::KubeApiServer;
use kibaship_webhook::kube_api::{KubeApi, KubeApiConfig, KubeApiError};

/// Registry passwords and tokens put in pull secrets; none may show in any output.
const PASSWORD: &str = "kibaship-Registry-Pa55word-0001";
const PASSWORD_OLD: &str = "kibaship-Dockercfg-Pa55word-0002";
const REFRESH_TOKEN: &str = "kibaship-Identity-Token-0003";
const BAD_AUTH: &str = "kibaship-not-base64-secret-0004!";

/// The API server the tests share: started by the first test that needs it, stopped (processes killed, temp
/// dir removed) when the last test holding it ends. Each test works in namespaces of its own.
fn cluster() -> Cluster {
    static SHARED: Mutex<Weak<KubeApiServer>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(server) = shared.upgrade() {
        return Cluster { server };
    }
    let server = Arc::new(KubeApiServer::start().expect("starting etcd + kube-apiserver"));
    *shared = Arc::downgrade(&server);
    Cluster { server }
}

struct Cluster {
    server: Arc<KubeApiServer>,
}

impl Cluster {
    fn kubectl(&self, args: &[&str]) -> String {
        self.server
            .kubectl_ok(args)
            .unwrap_or_else(|e| panic!("kubectl {args:?}: {e}"))
    }

    fn apply(&self, yaml: &str) {
        self.server
            .kubectl_stdin_ok(&["apply", "-f", "-"], yaml)
            .unwrap_or_else(|e| panic!("kubectl apply: {e}\n{yaml}"));
    }

    fn token(&self) -> &str {
        self.server.token()
    }

    /// The server's URL and CA with `token`.
    fn files(&self, token: &str) -> Files {
        Files::new(self.server.url(), self.server.ca_pem(), token)
    }

    /// A client with the static `system:masters` token.
    fn admin(&self) -> (Files, KubeApi) {
        let files = self.files(self.server.token());
        let api = KubeApi::new(files.config()).unwrap();
        (files, api)
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A PEM certificate of a CA no server here uses.
fn foreign_ca_pem() -> String {
    rcgen::generate_simple_self_signed(vec!["other.example".to_string()])
        .unwrap()
        .cert
        .pem()
}

/// A URL, a token file and a CA file in a fresh directory.
struct Files {
    dir: tempfile::TempDir,
    url: String,
}

impl Files {
    fn new(url: &str, ca_pem: &str, token: &str) -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca_pem).unwrap();
        let files = Files {
            dir,
            url: url.to_string(),
        };
        files.set_token(token);
        files
    }

    fn token_file(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Replaces the token file as the kubelet does: a new file renamed over the old one.
    fn set_token(&self, token: &str) {
        let next = self.dir.path().join("token.next");
        std::fs::write(&next, token).unwrap();
        std::fs::rename(&next, self.token_file()).unwrap();
    }

    fn config(&self) -> KubeApiConfig {
        KubeApiConfig::new(self.url.clone(), self.token_file(), self.ca_file())
    }
}

#[tokio::test]
async fn labels_of_a_labelled_namespace() {
    let k = cluster();
    k.kubectl(&["create", "namespace", "labels-a"]);
    k.kubectl(&[
        "label",
        "namespace",
        "labels-a",
        "team=a",
        "kibaship.dev/verify=on",
    ]);
    let (_files, api) = k.admin();
    let labels = api.namespace_labels("labels-a").await.unwrap();
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(
        labels.get("kibaship.dev/verify").map(String::as_str),
        Some("on")
    );
    // The API server's own label, set on every namespace.
    assert_eq!(
        labels
            .get("kubernetes.io/metadata.name")
            .map(String::as_str),
        Some("labels-a")
    );
    assert_eq!(labels.len(), 3, "{labels:?}");
}

#[tokio::test]
async fn labels_are_cached_for_the_ttl_and_lookups_in_flight_are_shared() {
    let k = cluster();
    k.kubectl(&["create", "namespace", "labels-cache"]);
    k.kubectl(&["label", "namespace", "labels-cache", "stage=one"]);
    let (files, api) = k.admin();

    // Sixteen lookups at once on this one-threaded runtime: all are waiting before the first answer can
    // arrive, so they share one request.
    let lookups = (0..16).map(|_| api.namespace_labels("labels-cache"));
    for labels in futures::future::join_all(lookups).await {
        assert_eq!(labels.unwrap()["stage"], "one");
    }
    let stats = api.namespace_cache_stats();
    assert_eq!((stats.lookups, stats.fetches, stats.entries), (16, 1, 1));

    // A changed label: a client without reuse (TTL zero) reads it at every lookup; one whose TTL outlasts
    // the test keeps the labels it read first. Neither depends on how fast the test runs.
    k.kubectl(&[
        "label",
        "--overwrite",
        "namespace",
        "labels-cache",
        "stage=two",
    ]);
    let mut no_reuse = files.config();
    no_reuse.namespace_cache_ttl = Duration::ZERO;
    let fresh = KubeApi::new(no_reuse).unwrap();
    assert_eq!(
        fresh.namespace_labels("labels-cache").await.unwrap()["stage"],
        "two"
    );
    assert_eq!(
        fresh.namespace_labels("labels-cache").await.unwrap()["stage"],
        "two"
    );
    assert_eq!(fresh.namespace_cache_stats().fetches, 2);

    let mut long = files.config();
    long.namespace_cache_ttl = Duration::from_secs(24 * 60 * 60);
    let cached = KubeApi::new(long).unwrap();
    assert_eq!(
        cached.namespace_labels("labels-cache").await.unwrap()["stage"],
        "two"
    );
    k.kubectl(&[
        "label",
        "--overwrite",
        "namespace",
        "labels-cache",
        "stage=three",
    ]);
    assert_eq!(
        cached.namespace_labels("labels-cache").await.unwrap()["stage"],
        "two"
    );
    assert_eq!(cached.namespace_cache_stats().fetches, 1);
    // Clones share the cache.
    let clone = cached.clone();
    assert_eq!(
        clone.namespace_labels("labels-cache").await.unwrap()["stage"],
        "two"
    );
    assert_eq!(cached.namespace_cache_stats().fetches, 1);
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let k = cluster();
    for ns in ["bound-a", "bound-b", "bound-c"] {
        k.kubectl(&["create", "namespace", ns]);
    }
    let (files, _) = k.admin();
    let mut config = files.config();
    config.namespace_cache_entries = 2;
    config.namespace_cache_ttl = Duration::from_secs(24 * 60 * 60);
    let api = KubeApi::new(config).unwrap();
    for ns in ["bound-a", "bound-b", "bound-c", "bound-c"] {
        assert_eq!(
            api.namespace_labels(ns).await.unwrap()["kubernetes.io/metadata.name"],
            ns
        );
    }
    let stats = api.namespace_cache_stats();
    assert_eq!((stats.fetches, stats.entries), (3, 2));
    // bound-a, the oldest, made room for bound-c.
    api.namespace_labels("bound-a").await.unwrap();
    assert_eq!(api.namespace_cache_stats().fetches, 4);
}

#[tokio::test]
async fn a_cancelled_lookup_leaves_nothing_stuck() {
    let k = cluster();
    for ns in ["cancel-a", "cancel-b"] {
        k.kubectl(&["create", "namespace", ns]);
    }
    let (files, _) = k.admin();
    let mut config = files.config();
    config.namespace_cache_entries = 1;
    config.namespace_cache_ttl = Duration::from_secs(24 * 60 * 60);
    let api = KubeApi::new(config.clone()).unwrap();
    // Polled once (the request has started), then dropped, as when an admission request gives up.
    let cancelled = tokio::time::timeout(Duration::ZERO, api.namespace_labels("cancel-a")).await;
    assert!(cancelled.is_err(), "the lookup cannot have finished");
    assert_eq!(api.namespace_cache_stats().entries, 1);
    // The next lookup of that namespace takes the abandoned one over.
    let labels = api.namespace_labels("cancel-a").await.unwrap();
    assert_eq!(labels["kubernetes.io/metadata.name"], "cancel-a");
    let stats = api.namespace_cache_stats();
    assert_eq!((stats.fetches, stats.entries), (2, 1));

    // A lookup nobody waits for any more makes room for another namespace (the cache holds one).
    let api = KubeApi::new(config).unwrap();
    let cancelled = tokio::time::timeout(Duration::ZERO, api.namespace_labels("cancel-a")).await;
    assert!(cancelled.is_err());
    for _ in 0..2 {
        let labels = api.namespace_labels("cancel-b").await.unwrap();
        assert_eq!(labels["kubernetes.io/metadata.name"], "cancel-b");
    }
    let stats = api.namespace_cache_stats();
    assert_eq!((stats.fetches, stats.entries), (2, 1), "cancel-b is cached");
}

#[tokio::test]
async fn a_missing_namespace_is_an_error_and_not_cached() {
    let k = cluster();
    let (_files, api) = k.admin();
    let err = api.namespace_labels("labels-later").await.unwrap_err();
    assert_eq!(err.code(), "kube-api-not-found", "{err}");
    assert!(matches!(&err, KubeApiError::NotFound { what } if what.contains("labels-later")));
    assert_eq!(err.to_string(), "namespace `labels-later` does not exist");

    k.kubectl(&["create", "namespace", "labels-later"]);
    let labels = api.namespace_labels("labels-later").await.unwrap();
    assert_eq!(labels["kubernetes.io/metadata.name"], "labels-later");
    let stats = api.namespace_cache_stats();
    assert_eq!((stats.lookups, stats.fetches), (2, 2));

    let err = api.namespace_labels("../secrets").await.unwrap_err();
    assert_eq!(err.code(), "kube-api-invalid-name", "{err}");
    assert_eq!(
        api.namespace_cache_stats().fetches,
        2,
        "an invalid name is never sent"
    );
}

/// The credential of `registry`, which must be there.
fn credential<'a>(
    creds: &'a kibaship_webhook::kube_api::PullCredentials,
    registry: &str,
) -> &'a Credential {
    creds
        .credentials()
        .get(registry)
        .unwrap_or_else(|| panic!("no credential for {registry}: {creds:?}"))
}

/// Pull secrets of both types, one of another type, a missing one, and a service account naming more.
fn create_pull_secrets(k: &Cluster, namespace: &str) {
    k.kubectl(&["create", "namespace", namespace]);
    k.kubectl(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "-n",
        namespace,
        "--docker-server=registry.example:5000",
        "--docker-username=alice",
        &format!("--docker-password={PASSWORD}"),
    ]);
    let dockercfg = serde_json::json!({
        "https://quay.io": {"auth": b64(format!("bob:{PASSWORD_OLD}").as_bytes()), "email": "bob@example.com"}
    });
    let sa_config = serde_json::json!({
        "auths": {
            "ghcr.io": {"username": "ci", "identitytoken": REFRESH_TOKEN},
            // Also named by regcred: the Pod's own secret comes first and wins.
            "registry.example:5000": {"username": "other", "password": PASSWORD},
        }
    });
    k.apply(&format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: oldcfg, namespace: {namespace}}}
type: kubernetes.io/dockercfg
data:
  .dockercfg: {}
---
apiVersion: v1
kind: Secret
metadata: {{name: sa-cred, namespace: {namespace}}}
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: {}
---
apiVersion: v1
kind: Secret
metadata: {{name: opaque, namespace: {namespace}}}
type: Opaque
stringData:
  password: {PASSWORD}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: builder, namespace: {namespace}}}
imagePullSecrets:
  - name: sa-cred
  - name: regcred
  - name: sa-missing
"#,
        b64(dockercfg.to_string().as_bytes()),
        b64(sa_config.to_string().as_bytes()),
    ));
}

#[tokio::test]
async fn pull_credentials_from_both_secret_types_and_the_service_account() {
    let k = cluster();
    create_pull_secrets(&k, "pull-a");
    let (_files, api) = k.admin();
    let names = ["regcred", "oldcfg", "opaque", "missing"].map(String::from);
    let creds = api
        .pull_credentials("pull-a", &names, Some("builder"))
        .await
        .unwrap();

    assert!(!creds.is_empty());
    let mut registries: Vec<&String> = creds.credentials().keys().collect();
    registries.sort();
    assert_eq!(registries, ["ghcr.io", "quay.io", "registry.example:5000"]);
    assert_eq!(
        credential(&creds, "registry.example:5000"),
        &Credential::Basic {
            username: "alice".into(),
            password: PASSWORD.into()
        }
    );
    assert_eq!(
        credential(&creds, "quay.io"),
        &Credential::Basic {
            username: "bob".into(),
            password: PASSWORD_OLD.into()
        }
    );
    assert_eq!(
        credential(&creds, "ghcr.io"),
        &Credential::IdentityToken {
            username: "ci".into(),
            token: REFRESH_TOKEN.into()
        }
    );
    assert_eq!(
        creds.source_of("registry.example:5000"),
        Some("pull-a/regcred")
    );
    assert_eq!(creds.source_of("quay.io"), Some("pull-a/oldcfg"));
    assert_eq!(creds.source_of("ghcr.io"), Some("pull-a/sa-cred"));

    let notes = creds.notes().join("\n");
    for expected in [
        "pull secret `pull-a/missing` does not exist",
        "pull secret `pull-a/sa-missing` does not exist",
        "pull secret `pull-a/opaque` has type `Opaque`",
        "registry `registry.example:5000`: the credential of pull secret `pull-a/regcred` is used; the one in `pull-a/sa-cred` is not",
    ] {
        assert!(notes.contains(expected), "{expected:?} not in\n{notes}");
    }
    assert_eq!(creds.notes().len(), 4, "{notes}");

    // What a registry client takes.
    let config = kibaship_oci::ClientConfig {
        credentials: creds.credentials_for(["ghcr.io", "index.docker.io"]),
        ..kibaship_oci::ClientConfig::default()
    };
    assert_eq!(config.credentials.len(), 1);

    // The service account alone.
    let creds = api
        .pull_credentials("pull-a", &[], Some("builder"))
        .await
        .unwrap();
    assert_eq!(creds.credentials().len(), 2, "{creds:?}");
    assert_eq!(
        creds.source_of("registry.example:5000"),
        Some("pull-a/sa-cred")
    );
}

#[tokio::test]
async fn missing_service_account_and_secrets_are_notes() {
    let k = cluster();
    k.kubectl(&["create", "namespace", "pull-none"]);
    let (_files, api) = k.admin();
    let creds = api
        .pull_credentials(
            "pull-none",
            &["gone".to_string(), "Not/A/Name".to_string()],
            Some("nobody"),
        )
        .await
        .unwrap();
    assert!(creds.is_empty());
    assert_eq!(
        creds.notes(),
        [
            "the Pod names pull secret `Not/A/Name`, which is not a valid secret name",
            "service account `pull-none/nobody` does not exist",
            "pull secret `pull-none/gone` does not exist",
        ]
    );
    let creds = api.pull_credentials("pull-none", &[], None).await.unwrap();
    assert!(creds.is_empty() && creds.notes().is_empty());
}

/// Collects what `tracing` writes while the guard lives (this test's thread only).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_show_in_debug_errors_notes_or_logs() {
    let k = cluster();
    create_pull_secrets(&k, "leak-a");
    // A dockerconfigjson the API server accepts (it is JSON) whose `auth` is not base64.
    let bad = serde_json::json!({"auths": {"bad.example": {"auth": BAD_AUTH}}});
    k.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: badcred, namespace: leak-a}}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n",
        b64(bad.to_string().as_bytes())
    ));
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (_files, api) = k.admin();
    let mut seen = vec![format!("{api:?}"), format!("{:?}", api.config())];
    let names = ["regcred", "oldcfg", "opaque", "missing"].map(String::from);
    let creds = api
        .pull_credentials("leak-a", &names, Some("builder"))
        .await
        .unwrap();
    assert_eq!(creds.credentials().len(), 3);
    seen.push(format!("{creds:?}"));
    seen.push(format!("{:#?}", creds));
    seen.extend(creds.notes().iter().cloned());
    seen.extend(creds.credentials().values().map(|c| format!("{c:?}")));

    let err = api
        .pull_credentials(
            "leak-a",
            &["regcred".to_string(), "badcred".to_string()],
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "pull-secret-malformed");
    assert!(
        err.to_string().starts_with("pull secret `leak-a/badcred`: `.dockerconfigjson`: the entry for `bad.example` is malformed"),
        "{err}"
    );
    seen.push(err.to_string());
    seen.push(format!("{err:?}"));

    // The error of a run with a wrong token (401).
    let wrong = k.files("kibaship-wrong-token");
    let denied = KubeApi::new(wrong.config()).unwrap();
    let err = denied
        .pull_credentials("leak-a", &names, Some("builder"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "kube-api-denied");
    seen.push(err.to_string());
    seen.push(format!("{err:?}"));
    seen.push(format!("{denied:?}"));

    seen.push(String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned());
    let everything = seen.join("\n");
    assert!(
        everything.contains("pull credentials read"),
        "no log captured:\n{everything}"
    );
    let admin_token = k.token().to_string();
    for secret in [
        PASSWORD,
        PASSWORD_OLD,
        REFRESH_TOKEN,
        BAD_AUTH,
        admin_token.as_str(),
        "kibaship-wrong-token",
        // As the API server sends secret data: base64.
        &b64(PASSWORD.as_bytes()),
        &b64(format!("alice:{PASSWORD}").as_bytes()),
    ] {
        assert!(
            !everything.contains(secret),
            "{secret:?} shows in:\n{everything}"
        );
    }
}

#[tokio::test]
async fn a_wrong_token_is_denied_and_a_replaced_token_file_is_read_again() {
    let k = cluster();
    k.kubectl(&["create", "namespace", "token-a"]);
    let files = k.files("kibaship-not-a-token");
    let api = KubeApi::new(files.config()).unwrap();
    let err = api.namespace_labels("token-a").await.unwrap_err();
    assert_eq!(err.code(), "kube-api-denied", "{err}");
    assert!(
        matches!(err, KubeApiError::Denied { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(
        api.namespace_cache_stats().entries,
        0,
        "errors are not cached"
    );

    // The token file is replaced (as a projected token is when it rotates): the next request uses it.
    files.set_token(&format!("{}\n", k.token()));
    let labels = api.namespace_labels("token-a").await.unwrap();
    assert_eq!(labels["kubernetes.io/metadata.name"], "token-a");
}

#[tokio::test]
async fn an_identity_without_rights_is_denied() {
    let k = cluster();
    k.kubectl(&["create", "namespace", "rbac-a"]);
    k.kubectl(&["create", "serviceaccount", "reader", "-n", "rbac-a"]);
    k.kubectl(&[
        "create",
        "secret",
        "generic",
        "some-secret",
        "-n",
        "rbac-a",
        "--from-literal=k=v",
    ]);
    let token = k.kubectl(&["create", "token", "reader", "-n", "rbac-a"]);
    let files = k.files(token.trim());
    let api = KubeApi::new(files.config()).unwrap();

    let err = api.namespace_labels("rbac-a").await.unwrap_err();
    assert_eq!(err.code(), "kube-api-denied", "{err}");
    assert!(
        matches!(err, KubeApiError::Denied { status: 403, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("namespace `rbac-a`: the Kubernetes API server answered 403: "),
        "{text}"
    );
    assert!(
        text.contains("system:serviceaccount:rbac-a:reader"),
        "{text}"
    );

    let err = api
        .pull_credentials("rbac-a", &["some-secret".to_string()], None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "kube-api-denied", "{err}");
    assert!(
        err.to_string().starts_with("secret `rbac-a/some-secret`: "),
        "{err}"
    );
    let err = api
        .pull_credentials("rbac-a", &[], Some("reader"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("service account `rbac-a/reader`: "),
        "{err}"
    );
    assert!(!format!("{err:?}{api:?}").contains(token.trim()));
}

#[tokio::test]
async fn answers_larger_than_the_limit_are_refused() {
    let k = cluster();
    k.kubectl(&["create", "namespace", "big-a"]);
    let (files, _) = k.admin();
    let mut config = files.config();
    config.max_body_bytes = 64;
    let api = KubeApi::new(config).unwrap();
    let err = api.namespace_labels("big-a").await.unwrap_err();
    assert_eq!(err.code(), "kube-api-malformed", "{err}");
    assert!(err.to_string().contains("larger than 64 bytes"), "{err}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    // Accepts connections (the kernel does, into the backlog) and never says anything: the TLS handshake
    // never completes, whichever of the connect and request timeouts (both 300 ms here) ends it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let files = Files::new(&url, &foreign_ca_pem(), "any-token");
    let mut config = files.config();
    config.timeout = Duration::from_millis(300);
    let api = KubeApi::new(config).unwrap();
    let err = api.namespace_labels("default").await.unwrap_err();
    assert_eq!(err.code(), "timeout", "{err}");
    assert_eq!(
        err.to_string(),
        "namespace `default`: no answer from the Kubernetes API server within 300 ms"
    );
    drop(listener);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    // A port nothing listens on (bound, then released).
    let url = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("https://{}", listener.local_addr().unwrap())
    };
    let files = Files::new(&url, &foreign_ca_pem(), "any-token");
    let api = KubeApi::new(files.config()).unwrap();
    let err = api.namespace_labels("default").await.unwrap_err();
    assert_eq!(err.code(), "kube-api-unreachable", "{err}");
    assert!(
        err.to_string()
            .starts_with("namespace `default`: the Kubernetes API server is unreachable: "),
        "{err}"
    );
}

#[tokio::test]
async fn a_certificate_the_ca_did_not_sign_is_refused() {
    let k = cluster();
    k.kubectl(&["create", "namespace", "tls-a"]);
    // The real API server and its token, but another CA: the token is never sent.
    let files = Files::new(k.server.url(), &foreign_ca_pem(), k.token());
    let api = KubeApi::new(files.config()).unwrap();
    let err = api.namespace_labels("tls-a").await.unwrap_err();
    assert_eq!(err.code(), "kube-api-unreachable", "{err}");
    assert!(!err.to_string().contains(k.token()), "{err}");
}

#[test]
fn configurations_that_cannot_work() {
    let files = Files::new("https://127.0.0.1:6443", &foreign_ca_pem(), "a-token");
    let new = |url: &str, token: &Path, ca: &Path| KubeApi::new(KubeApiConfig::new(url, token, ca));
    let (token, ca) = (files.token_file(), files.ca_file());
    let missing = files.dir.path().join("missing");
    let empty = files.dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let cases: Vec<(Result<KubeApi, KubeApiError>, &str)> = vec![
        (
            new("http://127.0.0.1:6443", &token, &ca),
            "only https is allowed",
        ),
        (
            new("https://u:p@127.0.0.1:6443", &token, &ca),
            "without user, query or fragment",
        ),
        (new("not a url", &token, &ca), "URL `not a url`"),
        (new("https://127.0.0.1:6443", &missing, &ca), "token file"),
        (new("https://127.0.0.1:6443", &empty, &ca), "empty"),
        (new("https://127.0.0.1:6443", &token, &missing), "CA file"),
        (
            new("https://127.0.0.1:6443", &token, &empty),
            "holds no PEM certificate",
        ),
    ];
    for (result, expected) in cases {
        let err = result.expect_err(expected);
        assert_eq!(err.code(), "kube-api-config", "{err}");
        assert!(
            err.to_string().contains(expected),
            "{err} lacks {expected:?}"
        );
        assert!(!err.to_string().contains("a-token"), "{err}");
    }
    let ok = new("https://127.0.0.1:6443/", &token, &ca).unwrap();
    assert!(format!("{ok:?}").contains("https://127.0.0.1:6443"));
    assert!(!format!("{ok:?}").contains("a-token"));
}
