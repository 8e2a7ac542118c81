//! The `kibaship-webhook` binary: starts from its flags, logs JSON lines, becomes ready, serves metrics, stops on
//! SIGTERM; refuses to start without a usable certificate, naming the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use kibaship_testsupport::kube::wait_until;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_kibaship-webhook");

fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "-f", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn files(dir: &std::path::Path) {
    let (ca, cert, key) = serving_certificate("binary-test");
    std::fs::write(dir.join("ca.pem"), ca).unwrap();
    std::fs::write(dir.join("tls.crt"), cert).unwrap();
    std::fs::write(dir.join("tls.key"), key).unwrap();
    std::fs::copy(
        testdata().join("sigstore/trusted-roots/production-trusted_root.json"),
        dir.join("trusted_root.json"),
    )
    .unwrap();
    std::fs::copy(
        testdata().join("../policies/admission/prod-enforce.yaml"),
        dir.join("policy.yaml"),
    )
    .unwrap();
}

fn serve(dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--shutdown-delay",
        "0s",
    ])
    .arg("--tls-cert")
    .arg(dir.join("tls.crt"))
    .arg("--tls-key")
    .arg(dir.join("tls.key"))
    .arg("--policy")
    .arg(dir.join("policy.yaml"))
    .arg("--trusted-root")
    .arg(dir.join("trusted_root.json"))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

/// Reads log lines (each kept in `out`) until `found` returns something for one; fails with `what` and the lines
/// read if the output ends first.
fn next_line<T>(
    stdout: &mut impl BufRead,
    out: &mut String,
    what: &str,
    mut found: impl FnMut(&str) -> Option<T>,
) -> T {
    loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "{what}: {out}");
        out.push_str(&line);
        if let Some(wanted) = found(&line) {
            return wanted;
        }
    }
}

#[test]
fn serves_until_sigterm_with_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let mut child = serve(dir.path()).spawn().unwrap();
    // The first log lines say where it listens (ports chosen by the system).
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut out = String::new();
    let serving = next_line(&mut stdout, &mut out, "exited early", |line| {
        let json: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        (json["fields"]["message"] == "serving").then_some(json)
    });
    let metrics = serving["fields"]["metrics"].as_str().unwrap().to_string();
    let ready = wait_until(100, Duration::from_millis(100), || {
        curl(&format!("http://{metrics}/readyz"))
    });
    assert_eq!(ready.as_deref(), Some("ok"));
    let text = curl(&format!("http://{metrics}/metrics")).unwrap();
    assert!(
        text.contains(r#"kibaship_webhook_reloads_total{file="policy",result="ok"} 1"#),
        "{text}"
    );
    // One review of a namespace the policy does not select: its decision is logged as one line.
    let addr = serving["fields"]["addr"].as_str().unwrap();
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "log-line-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "dev",
            "name": "web",
            "operation": "CREATE",
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "namespace": "dev"},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    });
    let answer = Command::new("curl")
        .args(["-sS", "-f", "--cacert"])
        .arg(dir.path().join("ca.pem"))
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(review.to_string())
        .arg(format!("https://{addr}/validate"))
        .output()
        .unwrap();
    assert!(answer.status.success(), "{answer:?}");
    let answer: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
    assert_eq!(answer["response"]["uid"], "log-line-1");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let decision = next_line(&mut stdout, &mut out, "no decision line", |line| {
        line.contains("log-line-1").then(|| line.to_owned())
    });
    // Each key once: the answer's message is `status_message`, not a second `message`.
    assert_eq!(decision.matches("\"message\":").count(), 1, "{decision}");
    let json: serde_json::Value = serde_json::from_str(&decision).unwrap();
    let fields = &json["fields"];
    assert_eq!(fields["message"], "admission decision", "{decision}");
    assert_eq!(fields["uid"], "log-line-1");
    assert_eq!(fields["namespace"], "dev");
    assert_eq!(fields["result"], "allowed", "{decision}");
    assert!(fields["status_message"].is_string(), "{decision}");
    assert!(fields["micros"].is_u64(), "{decision}");
    assert_eq!(json["target"], "kibaship_webhook::server");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    for line in rest.lines() {
        let json: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(json["level"].is_string(), "{line}");
    }
    assert!(rest.contains("stopping"), "{out}{rest}");
}

#[test]
fn refuses_to_start_without_a_usable_certificate() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    std::fs::write(dir.path().join("tls.key"), "not a key").unwrap();
    let out = serve(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tls.key") && stderr.contains("no PEM private key"),
        "{stderr}"
    );
}
