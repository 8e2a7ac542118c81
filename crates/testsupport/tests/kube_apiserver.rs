//! The kube-apiserver harness against the real peer: it starts, stores namespaces and Pods, authenticates only its
//! token over TLS its CA vouches for, delivers AdmissionReviews to a webhook registered through it, runs twice at
//! once, and leaves no process behind.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kibaship_testsupport::kube::KubeApiServer;
use kibaship_testsupport::process_alive;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A Pod manifest (JSON, which kubectl reads as YAML).
fn pod(namespace: &str, name: &str, labels: Value) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace, "labels": labels },
        "spec": { "containers": [{ "name": "app", "image": image() }] },
    })
    .to_string()
}

fn image() -> String {
    format!("127.0.0.1:5000/harness/app@sha256:{}", "ab".repeat(32))
}

/// Polls (without asserting on time) until the pid is gone; the bound only avoids hanging forever.
fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if !process_alive(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn stores_namespaces_and_pods_which_stay_pending() {
    let api = KubeApiServer::start().unwrap();
    assert!(api.url().starts_with("https://127.0.0.1:"), "{}", api.url());
    assert_eq!(
        api.kubectl_ok(&["get", "--raw", "/readyz"]).unwrap().trim(),
        "ok"
    );
    api.kubectl_ok(&["create", "namespace", "harness"]).unwrap();
    api.kubectl_stdin_ok(
        &["apply", "-f", "-"],
        &pod("harness", "app", json!({"app": "x"})),
    )
    .unwrap();
    let pod = api
        .kubectl_ok(&["get", "pod", "-n", "harness", "app", "-o", "json"])
        .unwrap();
    let pod: Value = serde_json::from_str(&pod).unwrap();
    // No scheduler, no kubelet: stored, admitted, never run.
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(pod["spec"]["containers"][0]["image"], image());
    assert!(pod["spec"]["nodeName"].is_null(), "{pod}");
    let user = api
        .kubectl_ok(&[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .unwrap();
    assert_eq!(user, kibaship_testsupport::kube::TOKEN_USER);
    let can = api.kubectl(&["auth", "can-i", "create", "validatingwebhookconfigurations"]);
    assert_eq!(String::from_utf8_lossy(&can.stdout).trim(), "yes");
}

#[test]
fn url_token_and_ca_are_what_the_server_checks() {
    let api = KubeApiServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, api.ca_pem()).unwrap();
    let (_, _, webhook_ca) = api.webhook_certificate().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, &webhook_ca).unwrap();
    let empty_config = dir.path().join("empty-kubeconfig");
    std::fs::write(&empty_config, "").unwrap();
    let run = |token: &str, ca: &std::path::Path| {
        Command::new(api.kubectl_path())
            .arg("--kubeconfig")
            .arg(&empty_config)
            .args(["--server", api.url(), "--token", token])
            .arg("--certificate-authority")
            .arg(ca)
            .args(["get", "namespace", "kube-system", "-o", "name"])
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    };
    let ok = run(api.token(), &ca);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        "namespace/kube-system"
    );
    let wrong_token = run("0123456789abcdef", &ca);
    assert!(!wrong_token.status.success());
    assert!(
        stderr(&wrong_token).contains("You must be logged in to the server"),
        "{}",
        stderr(&wrong_token)
    );
    let wrong_ca = run(api.token(), &other_ca);
    assert!(!wrong_ca.status.success());
    assert!(
        stderr(&wrong_ca).contains("certificate signed by unknown authority"),
        "{}",
        stderr(&wrong_ca)
    );
    // The kubeconfig alone reaches the server, and only its owner can read the token in it.
    let via_kubeconfig = Command::new(api.kubectl_path())
        .arg("--kubeconfig")
        .arg(api.kubeconfig_path())
        .args(["get", "namespace", "default", "-o", "name"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(
        via_kubeconfig.status.success(),
        "{}",
        stderr(&via_kubeconfig)
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(api.kubeconfig_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "kubeconfig mode {mode:o}");
}

#[test]
fn two_servers_run_at_once_with_their_own_ports_dirs_and_stores() {
    let a = KubeApiServer::start().unwrap();
    let b = KubeApiServer::start().unwrap();
    assert_ne!(a.url(), b.url());
    assert_ne!(a.work_dir(), b.work_dir());
    assert_ne!(a.token(), b.token());
    assert_ne!(a.ca_pem(), b.ca_pem());
    a.kubectl_ok(&["create", "namespace", "only-in-a"]).unwrap();
    let in_b = b.kubectl(&["get", "namespace", "only-in-a"]);
    assert!(!in_b.status.success());
    assert!(stderr(&in_b).contains("NotFound"), "{}", stderr(&in_b));
    // Each server knows only its own token.
    let dir = tempfile::tempdir().unwrap();
    let b_ca = dir.path().join("b-ca.pem");
    std::fs::write(&b_ca, b.ca_pem()).unwrap();
    let empty_config = dir.path().join("empty-kubeconfig");
    std::fs::write(&empty_config, "").unwrap();
    let cross = Command::new(b.kubectl_path())
        .arg("--kubeconfig")
        .arg(&empty_config)
        .args(["--server", b.url(), "--token", a.token()])
        .arg("--certificate-authority")
        .arg(&b_ca)
        .args(["get", "namespaces"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(!cross.status.success());
    assert!(
        stderr(&cross).contains("You must be logged in to the server"),
        "{}",
        stderr(&cross)
    );
    drop(a);
    assert_eq!(
        b.kubectl_ok(&["get", "--raw", "/readyz"]).unwrap().trim(),
        "ok"
    );
    b.kubectl_ok(&["create", "namespace", "only-in-a"]).unwrap();
}

#[test]
fn drop_stops_etcd_and_the_api_server_and_removes_the_dir() {
    let api = KubeApiServer::start().unwrap();
    let pids = api.process_ids();
    assert_eq!(pids.len(), 4, "two supervisors, etcd and kube-apiserver");
    assert!(pids.iter().all(|p| process_alive(*p)), "running while held");
    let dir = api.work_dir().to_path_buf();
    assert!(dir.join("kube-apiserver.log").is_file());
    assert!(dir.join("etcd.log").is_file());
    drop(api);
    for pid in pids {
        assert!(gone(pid), "pid {pid} still alive after drop");
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// A webhook endpoint on 127.0.0.1 (HTTPS, HTTP/1.1 keep-alive) that records every AdmissionReview and allows
/// everything except objects labelled `kibaship.test/deny: "true"`.
struct Endpoint {
    port: u16,
    reviews: Arc<Mutex<Vec<Value>>>,
}

impl Endpoint {
    fn start(cert_pem: &str, key_pem: &str) -> Endpoint {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        // Bound here, in this process, before anyone is told the port: no race to lose.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let reviews = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&reviews);
        thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let config = Arc::clone(&config);
                let recorded = Arc::clone(&recorded);
                thread::spawn(move || serve(tcp, config, &recorded));
            }
        });
        Endpoint { port, reviews }
    }

    fn reviews(&self) -> Vec<Value> {
        self.reviews.lock().unwrap().clone()
    }

    fn saw(&self, namespace: &str, name: &str) -> bool {
        self.reviews().iter().any(|r| {
            r["request"]["namespace"] == namespace
                && r["request"]["object"]["metadata"]["name"] == name
        })
    }
}

fn serve(tcp: TcpStream, config: Arc<rustls::ServerConfig>, reviews: &Mutex<Vec<Value>>) {
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut reader = BufReader::new(rustls::StreamOwned::new(connection, tcp));
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let request = &review["request"];
        let object = &request["object"]["metadata"];
        let deny = object["labels"]["kibaship.test/deny"] == "true";
        let mut response = json!({ "uid": request["uid"], "allowed": !deny });
        if deny {
            response["status"] = json!({
                "code": 403,
                "message": format!("kibaship test webhook denies {}", object["name"].as_str().unwrap_or("?")),
            });
        }
        let answer = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        })
        .to_string();
        reviews.lock().unwrap().push(review);
        let stream = reader.get_mut();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        if stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(answer.as_bytes()))
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
    }
}

#[test]
fn a_webhook_registered_through_the_harness_sees_creates_and_its_denial_is_enforced() {
    let api = KubeApiServer::start().unwrap();
    let (cert, key, ca) = api.webhook_certificate().unwrap();
    assert_eq!(STANDARD.encode(&ca), api.webhook_ca_bundle());
    assert_ne!(ca, api.ca_pem(), "the webhook CA is not the API server's");
    let endpoint = Endpoint::start(&cert, &key);
    api.kubectl_ok(&["create", "namespace", "hooked"]).unwrap();
    api.kubectl_ok(&["label", "namespace", "hooked", "kibaship.test/webhook=on"])
        .unwrap();
    api.kubectl_ok(&["create", "namespace", "bystander"])
        .unwrap();
    let configuration = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": { "name": "harness-test" },
        "webhooks": [{
            "name": "harness.kibaship.test",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 10,
            "clientConfig": {
                "url": format!("https://127.0.0.1:{}/validate", endpoint.port),
                "caBundle": api.webhook_ca_bundle(),
            },
            "rules": [{
                "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"],
            }],
            "namespaceSelector": { "matchLabels": { "kibaship.test/webhook": "on" } },
        }],
    })
    .to_string();
    let mut probes = 0;
    api.apply_webhook_configuration(&configuration, |api| {
        probes += 1;
        let created = api.kubectl_stdin(&["create", "-f", "-"], &pod("hooked", "probe", json!({})));
        if endpoint.saw("hooked", "probe") {
            return true;
        }
        // Created before the configuration was in force: remove it for the next try.
        if created.status.success() {
            api.kubectl_ok(&["delete", "pod", "-n", "hooked", "probe", "--wait=false"])
                .unwrap();
        }
        false
    })
    .unwrap();
    assert!(probes >= 1);

    let reviews = endpoint.reviews();
    let review = reviews
        .iter()
        .find(|r| r["request"]["object"]["metadata"]["name"] == "probe")
        .unwrap();
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(review["request"]["operation"], "CREATE");
    assert_eq!(review["request"]["kind"]["kind"], "Pod");
    assert_eq!(review["request"]["namespace"], "hooked");
    assert_eq!(
        review["request"]["object"]["spec"]["containers"][0]["image"],
        image()
    );
    assert!(
        review["request"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty())
    );

    let denied = api.kubectl_stdin(
        &["create", "-f", "-"],
        &pod("hooked", "denied", json!({"kibaship.test/deny": "true"})),
    );
    assert!(!denied.status.success(), "a denied Pod was created");
    assert!(
        stderr(&denied).contains("kibaship test webhook denies denied"),
        "{}",
        stderr(&denied)
    );
    assert!(
        !api.kubectl(&["get", "pod", "-n", "hooked", "denied"])
            .status
            .success()
    );

    // Outside the selected namespace the webhook is not asked, even for a Pod it would deny.
    api.kubectl_stdin_ok(
        &["create", "-f", "-"],
        &pod("bystander", "free", json!({"kibaship.test/deny": "true"})),
    )
    .unwrap();
    assert!(!endpoint.saw("bystander", "free"));
}
