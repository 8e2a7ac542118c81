//! `kibaship-step notify-receiver`, the receiver `make demo` runs, against the real sender (`kibaship-step notify`)
//! and against requests written here byte by byte: a notification is received, verified and printed; a wrong key
//! (the sender gets 401 and exits 77), a tampered body, a stale or future timestamp, a missing signature, a retry
//! (recorded once) and malformed HTTP (405, 411, 413) are each answered as docs/tekton.md says. The requests
//! written here are signed with `kibaship_step::notify::signature`, the sender's own function.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, SystemTime};

use kibaship_step::notify::{HmacKey, signature};

const BIN: &str = env!("CARGO_BIN_EXE_kibaship-step");
/// The receiver's key; planted: it must never be printed.
const KEY: &str = "pl4nted-receiver-hmac-key-4b1d9e0c7a2f-notify";
const WRONG_KEY: &str = "another-hmac-key-of-at-least-32-bytes-0000";
const UID: &str = "0f3e9a61-2b7c-4d1e-8a55-6c2d9e7b1f04";
const IMAGE: &str = "127.0.0.1:5000/kibaship/demo/hello:960ef4fb6190de6aa8b394bf2f0d552ee67675c3";

struct Running {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Running {
    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("receiver.out")).unwrap_or_default()
    }
    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("receiver.err")).unwrap_or_default()
    }
    fn key_file(&self, key: &str) -> PathBuf {
        let path = self.dir.path().join(format!("key-{}", key.len()));
        std::fs::write(&path, format!("{key}\n")).unwrap();
        path
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the receiver with `extra` arguments and waits for its address file.
fn start(extra: &[&str]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("hmac-key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    let address_file = dir.path().join("address");
    let mut child = Command::new(BIN)
        .arg("notify-receiver")
        .arg("--hmac-key-file")
        .arg(&key)
        .arg("--address-file")
        .arg(&address_file)
        .arg("--events-file")
        .arg(dir.path().join("events.jsonl"))
        .args(extra)
        .stdout(std::fs::File::create(dir.path().join("receiver.out")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("receiver.err")).unwrap())
        .spawn()
        .unwrap();
    // Bounded wait for the receiver to listen (it writes the file once bound).
    for _ in 0..1200 {
        if let Ok(addr) = std::fs::read_to_string(&address_file) {
            return Running {
                child,
                addr: addr.trim().to_string(),
                dir,
            };
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the receiver exited {status}: {}",
                std::fs::read_to_string(dir.path().join("receiver.err")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the receiver wrote no address file");
}

/// `kibaship-step notify` to the receiver with the key in `key_file`; its exit code, stderr and results.
fn notify(r: &Running, key_file: &Path) -> (i32, String, String) {
    notify_to(r, key_file, "http", &[])
}

/// [`notify`] over `scheme`, with `extra` arguments.
fn notify_to(r: &Running, key_file: &Path, scheme: &str, extra: &[&str]) -> (i32, String, String) {
    let results = r.dir.path().join("status");
    let _ = std::fs::remove_file(&results);
    let out = Command::new(BIN)
        .args(["notify", "--url"])
        .arg(format!("{scheme}://{}/hook", r.addr))
        .args(extra)
        .args(if extra.contains(&"--max-attempts") {
            &[][..]
        } else {
            &["--max-attempts", "1"][..]
        })
        .arg("--hmac-key-file")
        .arg(key_file)
        .args([
            "--pipeline-run-name",
            "hello-run-1",
            "--pipeline-run-namespace",
            "builds",
            "--pipeline-run-uid",
            UID,
            "--aggregate-status",
            "Succeeded",
            "--task-status",
            "prepare=Succeeded",
            "build=Succeeded",
            "scan=Succeeded",
            "sign=Succeeded",
            "attest=Succeeded",
            "--image",
            IMAGE,
            "--digest",
            &format!("sha256:{}", "c".repeat(64)),
            "--scan-verdict",
            "pass",
            "--attestation",
            &format!(
                "127.0.0.1:5000/kibaship/demo/hello:sha256-{}.att",
                "d".repeat(64)
            ),
            "--signature",
            &format!(
                "127.0.0.1:5000/kibaship/demo/hello:sha256-{}.sig",
                "d".repeat(64)
            ),
            "--response-status-result",
        ])
        .arg(&results)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        std::fs::read_to_string(&results).unwrap_or_default(),
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Writes `request` to the receiver and returns the status of its answer.
fn raw(r: &Running, request: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(&r.addr).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

/// A POST of `body` with the given timestamp and signature headers (`None`: header left out).
fn post(r: &Running, ts: Option<&str>, sig: Option<&str>, body: &[u8]) -> u16 {
    let mut request = format!(
        "POST /hook HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nIdempotency-Key: {UID}\r\nContent-Length: {}\r\n",
        r.addr,
        body.len()
    );
    if let Some(ts) = ts {
        request.push_str(&format!("X-Kibaship-Timestamp: {ts}\r\n"));
    }
    if let Some(sig) = sig {
        request.push_str(&format!("X-Kibaship-Signature: {sig}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    raw(r, &bytes)
}

fn body() -> Vec<u8> {
    format!(
        r#"{{"version":1,"event":"kibaship.build.finished","pipelineRun":{{"name":"hello-run-2","namespace":"builds","uid":"{UID}"}},"status":"succeeded","failureKind":null,"failedTask":null,"tasks":{{"build":"Succeeded"}},"image":"{IMAGE}","digest":null,"verdicts":{{"scan":"pass"}},"attestations":[],"signatures":[]}}"#
    )
    .into_bytes()
}

#[test]
fn the_real_sender_is_received_verified_and_printed() {
    let mut r = start(&["--exit-after", "1"]);
    let key_file = r.key_file(KEY);
    let (code, stderr, status) = notify(&r, &key_file);
    assert_eq!(code, 0, "notify: {stderr}");
    assert_eq!(status.trim(), "204");
    // --exit-after 1: the receiver ends by itself after the one verified notification.
    let exit = r.child.wait().unwrap();
    assert!(exit.success(), "receiver: {exit} {}", r.stderr());
    let out = r.stdout();
    for want in [
        "accepted (HTTP 204) from 127.0.0.1:",
        "signature and timestamp verified",
        &format!("  pipelineRun builds/hello-run-1 (uid {UID}): succeeded"),
        "  tasks: attest=Succeeded build=Succeeded prepare=Succeeded scan=Succeeded sign=Succeeded",
        &format!("  image: {IMAGE}"),
        &format!("  digest: sha256:{}", "c".repeat(64)),
        "  scan verdict: pass",
        &format!(
            "  attestation: 127.0.0.1:5000/kibaship/demo/hello:sha256-{}.att",
            "d".repeat(64)
        ),
        &format!(
            "  signature: 127.0.0.1:5000/kibaship/demo/hello:sha256-{}.sig",
            "d".repeat(64)
        ),
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
    let events = std::fs::read_to_string(r.dir.path().join("events.jsonl")).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(lines.len(), 1, "{events}");
    let event: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(event["pipelineRun"]["uid"], UID);
    assert_eq!(event["verdicts"]["scan"], "pass");
    for text in [&out, &r.stderr(), &stderr, &events] {
        assert!(!text.contains(KEY), "the key was printed: {text}");
    }
}

#[test]
fn over_https_the_sender_trusts_only_the_ca_it_is_given() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = kibaship_testsupport::server_pki(pki_dir.path()).unwrap();
    let r = start(&[
        "--tls-cert",
        pki.cert_pem.to_str().unwrap(),
        "--tls-key",
        pki.key_pem.to_str().unwrap(),
    ]);
    let key_file = r.key_file(KEY);
    // Without the receiver's CA the sender refuses the certificate: refused (77) at once, since a retry would
    // meet the same certificate, and it says why.
    let (code, stderr, _) = notify_to(&r, &key_file, "https", &["--max-attempts", "3"]);
    assert_eq!(code, 77, "notify: {stderr}");
    assert!(
        stderr.contains("kibaship-step: notification refused: ")
            && stderr.contains("the receiver's certificate is not trusted: invalid peer certificate: UnknownIssuer (attempt 1; give its CA with --ca-file)"),
        "{stderr}"
    );
    // Plain HTTP to the HTTPS receiver: nothing is answered, nothing is recorded.
    let (code, stderr, _) = notify_to(&r, &key_file, "http", &[]);
    assert_eq!(code, 75, "notify: {stderr}");
    assert!(
        !r.dir.path().join("events.jsonl").exists(),
        "a notification was recorded without TLS"
    );
    // With --ca-file: delivered, verified and recorded.
    let ca = pki.ca_pem.to_str().unwrap();
    let (code, stderr, status) = notify_to(&r, &key_file, "https", &["--ca-file", ca]);
    assert_eq!(code, 0, "notify: {stderr}");
    assert_eq!(status.trim(), "204");
    let events = std::fs::read_to_string(r.dir.path().join("events.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 1, "{events}");
    let out = r.stdout();
    let refusals: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("TLS handshake failed"))
        .collect();
    assert_eq!(refusals.len(), 2, "both failed handshakes reported:\n{out}");
    assert!(out.contains("accepted (HTTP 204)"), "{out}");
    assert!(
        r.stderr().contains("listening on https://"),
        "{}",
        r.stderr()
    );
    for text in [&out, &r.stderr(), &stderr, &events] {
        assert!(!text.contains(KEY), "the key was printed: {text}");
    }
}

#[test]
fn tls_flags_are_checked_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("hmac-key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(BIN)
            .arg("notify-receiver")
            .arg("--hmac-key-file")
            .arg(&key)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let not_pem = not_pem.to_str().unwrap();
    // A certificate without its key (and the reverse) is a usage error.
    let (code, stderr) = run(&["--tls-cert", not_pem]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("--tls-key"), "{stderr}");
    let (code, stderr) = run(&["--tls-cert", not_pem, "--tls-key", not_pem]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("--tls-cert: no PEM CERTIFICATE"),
        "{stderr}"
    );
}

#[test]
fn a_wrong_secret_is_refused_with_401_and_the_sender_exits_77() {
    let r = start(&[]);
    let (code, stderr, status) = notify(&r, &r.key_file(WRONG_KEY));
    assert_eq!(code, 77, "notify: {stderr}");
    assert_eq!(status.trim(), "401");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    let out = r.stdout();
    assert!(
        out.contains("refused (HTTP 401)") && out.contains("the signature does not match"),
        "{out}"
    );
    assert!(!out.contains("accepted"), "{out}");
    assert!(
        !r.dir.path().join("events.jsonl").exists(),
        "a refused notification was recorded"
    );
    for text in [&out, &r.stderr(), &stderr] {
        assert!(!text.contains(KEY) && !text.contains(WRONG_KEY), "{text}");
    }
}

#[test]
fn a_tampered_body_is_refused() {
    let r = start(&[]);
    let key = HmacKey::new(KEY.as_bytes()).unwrap();
    let ts = now_secs().to_string();
    let body = body();
    let sig = signature(&key, &ts, &body);
    // The same bytes with the verdict changed on the way.
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace(r#""scan":"pass""#, r#""scan":"fail""#);
    assert_ne!(tampered.as_bytes(), body.as_slice());
    assert_eq!(post(&r, Some(&ts), Some(&sig), tampered.as_bytes()), 401);
    // A timestamp changed after signing is tampering too.
    let later = (now_secs() + 1).to_string();
    assert_eq!(post(&r, Some(&later), Some(&sig), &body), 401);
    // The untouched request is accepted, so the refusals above are about the tampering.
    assert_eq!(post(&r, Some(&ts), Some(&sig), &body), 204);
    let out = r.stdout();
    assert_eq!(out.matches("refused (HTTP 401)").count(), 2, "{out}");
    assert!(out.contains("the signature does not match"), "{out}");
    assert_eq!(out.matches("accepted (HTTP 204)").count(), 1, "{out}");
}

#[test]
fn a_stale_or_future_timestamp_is_refused_even_correctly_signed() {
    let r = start(&["--tolerance", "300s"]);
    let key = HmacKey::new(KEY.as_bytes()).unwrap();
    let body = body();
    for ts in [now_secs() - 600, now_secs() + 600] {
        let ts = ts.to_string();
        assert_eq!(
            post(&r, Some(&ts), Some(&signature(&key, &ts, &body)), &body),
            401,
            "{ts}"
        );
    }
    let out = r.stdout();
    assert_eq!(
        out.matches("more than the 300 s accepted").count(),
        2,
        "{out}"
    );
    assert!(!out.contains("accepted (HTTP"), "{out}");
    assert!(!r.dir.path().join("events.jsonl").exists());
}

#[test]
fn missing_headers_retries_and_malformed_http() {
    let r = start(&[]);
    let key = HmacKey::new(KEY.as_bytes()).unwrap();
    let ts = now_secs().to_string();
    let body = body();
    let sig = signature(&key, &ts, &body);
    assert_eq!(post(&r, Some(&ts), None, &body), 401);
    assert_eq!(post(&r, None, Some(&sig), &body), 401);
    assert_eq!(post(&r, Some(&ts), Some("sha256=abc"), &body), 401);
    // A retry (same body and key, its own timestamp) is answered 2xx and recorded once.
    assert_eq!(post(&r, Some(&ts), Some(&sig), &body), 204);
    let ts2 = (now_secs() + 1).to_string();
    assert_eq!(
        post(&r, Some(&ts2), Some(&signature(&key, &ts2, &body)), &body),
        204
    );
    assert_eq!(raw(&r, b"GET /hook HTTP/1.1\r\nHost: x\r\n\r\n"), 405);
    assert_eq!(
        raw(
            &r,
            b"POST /hook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        411
    );
    assert_eq!(
        raw(
            &r,
            b"POST /hook HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"
        ),
        413
    );
    assert_eq!(raw(&r, b"nonsense\r\n\r\n"), 400);
    let out = r.stdout();
    for want in [
        "the X-Kibaship-Signature header is missing",
        "the X-Kibaship-Timestamp header is missing",
        "the X-Kibaship-Signature header is not sha256=<64 lowercase hex digits>",
        &format!("a retry of {UID}, already recorded"),
        "refused (HTTP 405)",
        "refused (HTTP 411)",
        "refused (HTTP 413)",
        "refused (HTTP 400)",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
    let events = std::fs::read_to_string(r.dir.path().join("events.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 1, "{events}");
}
