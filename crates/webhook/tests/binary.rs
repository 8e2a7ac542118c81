//! The `kibaship-webhook` binary: starts from its flags, logs JSON lines, becomes ready, serves metrics, stops on
//! SIGTERM; refuses to start without a usable certificate, naming the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead as _, BufReader, Read as _};
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
    let (_, cert, key) = serving_certificate("binary-test");
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

#[test]
fn serves_until_sigterm_with_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let mut child = serve(dir.path()).spawn().unwrap();
    // The first log lines say where it listens (ports chosen by the system).
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut out = String::new();
    let serving = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "exited early: {out}"
        );
        out.push_str(&line);
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        if json["fields"]["message"] == "serving" {
            break json;
        }
    };
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
