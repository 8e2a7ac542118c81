//! `kibaship-step notify` against a real HTTP receiver started here (axum on loopback): the platform's side of
//! the contract in docs/tekton.md, which checks the HMAC signature and the timestamp window exactly as the docs
//! tell a receiver to and answers 401 otherwise. Covers delivery, a receiver answering 500 then 2xx, always 500
//! (bounded retries, exit 75), an endpoint that is down (exit 75), a wrong key (401, no retry, exit 77), bad
//! parameters (exit 64), the results in each case, and a planted secret searched for in every output, result,
//! body and header.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use aws_lc_rs::hmac;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

mod step_support;
use step_support::{read_results, task_argv};

/// The HMAC key the receiver knows; planted: it must appear nowhere but in the key file.
const SECRET: &str = "pl4nted-hmac-key-0f9e8d7c6b5a49382716-notify";
/// Another planted value, in the environment of every run.
const ENV_SECRET: &str = "pl4nted-cosign-password-notify-5521";
/// The receiver's accepted clock skew, seconds.
const TOLERANCE: i64 = 300;

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Received {
    mode: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    accepted: bool,
}

#[derive(Default)]
struct Receiver {
    requests: Mutex<Vec<Received>>,
}

/// The receiver's check, as docs/tekton.md writes it out: the timestamp is within the window, and the signature
/// header is `sha256=` + hex(HMAC-SHA256(key, timestamp + "." + raw body)), compared in constant time.
fn signature_valid(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let (Some(ts), Some(sig)) = (
        headers
            .get("x-kibaship-timestamp")
            .and_then(|v| v.to_str().ok()),
        headers
            .get("x-kibaship-signature")
            .and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let Ok(ts_secs) = ts.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - ts_secs).abs() > TOLERANCE {
        return false;
    }
    let Some(Ok(mac)) = sig.strip_prefix("sha256=").map(hex::decode) else {
        return false;
    };
    let mut signed = ts.as_bytes().to_vec();
    signed.push(b'.');
    signed.extend_from_slice(body);
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), &signed, &mac).is_ok()
}

async fn hook(
    State(receiver): State<Arc<Receiver>>,
    UrlPath(mode): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let accepted = signature_valid(SECRET.as_bytes(), &headers, &body);
    let mut requests = receiver.requests.lock().unwrap();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let earlier = requests
        .iter()
        .filter(|r| r.mode == mode && r.headers.get("idempotency-key") == Some(&key))
        .count();
    requests.push(Received {
        mode: mode.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.to_vec(),
        accepted,
    });
    if !accepted {
        return StatusCode::UNAUTHORIZED;
    }
    match mode.as_str() {
        "ok" => StatusCode::NO_CONTENT,
        "flaky" if earlier == 0 => StatusCode::INTERNAL_SERVER_ERROR,
        "flaky" => StatusCode::OK,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The one receiver of this test binary, on a runtime of its own.
fn receiver() -> &'static (SocketAddr, Arc<Receiver>) {
    static RECEIVER: OnceLock<(SocketAddr, Arc<Receiver>)> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let state = Arc::new(Receiver::default());
        let app = axum::Router::new()
            .route("/hook/{mode}", post(hook))
            .with_state(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        (addr, state)
    })
}

fn requests_for(uid: &str) -> Vec<Received> {
    receiver()
        .1
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.headers.get("idempotency-key").map(String::as_str) == Some(uid))
        .cloned()
        .collect()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    results: BTreeMap<String, String>,
}

fn notify(dir: &Path, key: &str, url: &str, uid: &str, extra: &[&str]) -> Run {
    let key_file = dir.join("hmac-key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let results = dir.join(format!("results-{uid}"));
    std::fs::create_dir_all(&results).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .env("COSIGN_PASSWORD", ENV_SECRET)
        .env("KIBASHIP_HMAC_KEY", SECRET)
        .args(["notify", "--url", url, "--hmac-key-file"])
        .arg(&key_file)
        .args([
            "--pipeline-run-name",
            "web-x7k2",
            "--pipeline-run-namespace",
            "builds",
            "--pipeline-run-uid",
            uid,
            "--initial-backoff",
            "10ms",
            "--max-backoff",
            "40ms",
            "--attempt-timeout",
            "5s",
        ])
        .arg("--delivered-result")
        .arg(results.join("delivered"))
        .arg("--attempts-result")
        .arg(results.join("attempts"))
        .arg("--response-status-result")
        .arg(results.join("responseStatus"))
        .args(extra)
        .output()
        .unwrap();
    let results = read_results(&results);
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        results,
    }
}

/// Neither planted value is in the run's outputs and results, nor in what the receiver got (apart from the
/// signature, which is derived from the key).
fn assert_no_secret(run: &Run, uid: &str) {
    for planted in [SECRET, ENV_SECRET] {
        assert!(!run.stdout.contains(planted), "stdout: {}", run.stdout);
        assert!(!run.stderr.contains(planted), "stderr: {}", run.stderr);
        for (name, value) in &run.results {
            assert!(!value.contains(planted), "result {name}");
        }
        for r in requests_for(uid) {
            assert!(!String::from_utf8_lossy(&r.body).contains(planted), "body");
            for (k, v) in &r.headers {
                assert!(!v.contains(planted), "header {k}");
            }
        }
    }
}

const SUCCESS: &[&str] = &[
    "--aggregate-status",
    "Succeeded",
    "--task-status",
    "clone=Succeeded",
    "prepare=Succeeded",
    "build=Succeeded",
    "scan=Succeeded",
    "sign=Succeeded",
    "attest=Succeeded",
    "--image",
    "registry.local:5000/kibaship/acme/web:960ef4fb6190de6aa8b394bf2f0d552ee67675c3",
    "--digest",
    "sha256:7d3f1c1a0e2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5",
    "--scan-verdict",
    "pass",
    "--attestation",
    "registry.local:5000/kibaship/acme/web@sha256:1111111111111111111111111111111111111111111111111111111111111111",
    "--signature",
    "registry.local:5000/kibaship/acme/web:sha256-7d3f1c1a0e2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5.sig",
];

fn url(mode: &str) -> String {
    format!("http://{}/hook/{mode}", receiver().0)
}

#[test]
fn delivers_a_signed_outcome_the_receiver_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let uid = "0f5e2a1b-0000-4000-8000-000000000001";
    let run = notify(dir.path(), SECRET, &url("ok"), uid, SUCCESS);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.results["delivered"], "true");
    assert_eq!(run.results["attempts"], "1");
    assert_eq!(run.results["responseStatus"], "204");
    let got = requests_for(uid);
    assert_eq!(got.len(), 1);
    assert!(got[0].accepted, "the receiver's HMAC check failed");
    assert_eq!(got[0].headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["version"], 1);
    assert_eq!(body["event"], "kibaship.build.finished");
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["failureKind"], Value::Null);
    assert_eq!(body["pipelineRun"]["uid"], uid);
    assert_eq!(body["pipelineRun"]["namespace"], "builds");
    assert_eq!(body["verdicts"]["scan"], "pass");
    assert_eq!(body["tasks"]["attest"], "Succeeded");
    assert_eq!(body["digest"], SUCCESS[12]);
    assert_eq!(body["attestations"][0], SUCCESS[16]);
    assert_eq!(body["signatures"][0], SUCCESS[18]);
    assert!(run.stdout.contains("delivered=true"), "{}", run.stdout);
    assert_no_secret(&run, uid);
}

#[test]
fn a_failed_build_is_reported_with_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    let uid = "0f5e2a1b-0000-4000-8000-000000000002";
    let run = notify(
        dir.path(),
        SECRET,
        &url("ok"),
        uid,
        &[
            "--aggregate-status",
            "Failed",
            "--task-status",
            "clone=Succeeded",
            "prepare=Succeeded",
            "build=Failed",
            "scan=None",
            "sign=None",
            "attest=None",
            "--image",
            "registry.local:5000/kibaship/acme/web:960ef4fb6190de6aa8b394bf2f0d552ee67675c3",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let got = requests_for(uid);
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["status"], "failed");
    assert_eq!(body["failureKind"], "build");
    assert_eq!(body["failedTask"], "build");
    assert_eq!(body["digest"], Value::Null);
    assert_eq!(body["verdicts"]["scan"], Value::Null);
    assert_no_secret(&run, uid);
}

#[test]
fn a_500_then_success_is_retried_with_the_same_body_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let uid = "0f5e2a1b-0000-4000-8000-000000000003";
    let run = notify(dir.path(), SECRET, &url("flaky"), uid, SUCCESS);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.results["attempts"], "2");
    assert_eq!(run.results["responseStatus"], "200");
    let got = requests_for(uid);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.accepted));
    assert_eq!(got[0].body, got[1].body);
    assert!(run.stderr.contains("attempt 1: HTTP 500"), "{}", run.stderr);
    assert_no_secret(&run, uid);
}

#[test]
fn always_500_gives_up_after_the_bounded_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let uid = "0f5e2a1b-0000-4000-8000-000000000004";
    let mut args = SUCCESS.to_vec();
    args.extend(["--max-attempts", "3"]);
    let run = notify(dir.path(), SECRET, &url("broken"), uid, &args);
    assert_eq!(run.code, Some(75), "{}", run.stderr);
    assert_eq!(requests_for(uid).len(), 3);
    assert_eq!(run.results["delivered"], "false");
    assert_eq!(run.results["attempts"], "3");
    assert_eq!(run.results["responseStatus"], "500");
    assert!(
        run.stderr.contains(
            "kibaship-step: notification not delivered (retryable): not delivered to http://"
        ) && run.stderr.contains("after 3 attempt(s): HTTP 500"),
        "{}",
        run.stderr
    );
    assert_no_secret(&run, uid);
}

#[test]
fn an_endpoint_that_is_down_gives_up_after_the_bounded_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let uid = "0f5e2a1b-0000-4000-8000-000000000005";
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = SUCCESS.to_vec();
    args.extend(["--max-attempts", "4"]);
    let run = notify(
        dir.path(),
        SECRET,
        &format!("http://127.0.0.1:{port}/hook?token={SECRET}"),
        uid,
        &args,
    );
    assert_eq!(run.code, Some(75), "{}", run.stderr);
    assert_eq!(run.results["delivered"], "false");
    assert_eq!(run.results["attempts"], "4");
    assert_eq!(run.results["responseStatus"], "");
    assert!(
        run.stderr.contains("after 4 attempt(s): cannot connect"),
        "{}",
        run.stderr
    );
    // The URL's query is not printed.
    assert_no_secret(&run, uid);
}

#[test]
fn a_wrong_key_is_refused_without_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let uid = "0f5e2a1b-0000-4000-8000-000000000006";
    let wrong = "another-key-the-receiver-does-not-know-0123456789";
    let run = notify(dir.path(), wrong, &url("ok"), uid, SUCCESS);
    assert_eq!(run.code, Some(77), "{}", run.stderr);
    let got = requests_for(uid);
    assert_eq!(got.len(), 1, "a 401 is not retried");
    assert!(!got[0].accepted);
    assert_eq!(run.results["delivered"], "false");
    assert_eq!(run.results["responseStatus"], "401");
    assert!(
        run.stderr.contains("notification refused") && run.stderr.contains("HTTP 401"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(wrong));
    assert_no_secret(&run, uid);
}

#[test]
fn bad_parameters_exit_64_and_send_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, Vec<&str>, &str); 5] = [
        (
            "0f5e2a1b-0000-4000-8000-000000000010",
            "short-key",
            SUCCESS.to_vec(),
            "shorter than the 32 required",
        ),
        (
            "0f5e2a1b-0000-4000-8000-000000000011",
            SECRET,
            ["--aggregate-status", "Running"].to_vec(),
            "--aggregate-status \"Running\"",
        ),
        (
            "0f5e2a1b-0000-4000-8000-000000000012",
            SECRET,
            [&SUCCESS[..11], &["--digest", "sha256:zz"]].concat(),
            "--digest",
        ),
        (
            "0f5e2a1b-0000-4000-8000-000000000013",
            SECRET,
            [SUCCESS, &["--max-attempts", "0"]].concat(),
            "--max-attempts",
        ),
        ("", SECRET, SUCCESS.to_vec(), "--pipeline-run-uid is empty"),
    ];
    for (uid, key, args, expected) in cases {
        let run = notify(dir.path(), key, &url("ok"), uid, &args);
        assert_eq!(run.code, Some(64), "{expected}: {}", run.stderr);
        assert!(
            run.stderr.contains("kibaship-step: bad parameters: ") && run.stderr.contains(expected),
            "{expected}: {}",
            run.stderr
        );
        assert_eq!(run.results["delivered"], "false");
        if !uid.is_empty() {
            assert!(
                requests_for(uid).is_empty(),
                "{expected}: something was sent"
            );
        }
        assert_no_secret(&run, uid);
    }
    // Credentials in the URL are refused and not echoed.
    let uid = "0f5e2a1b-0000-4000-8000-000000000014";
    let with_userinfo = format!("http://platform:{SECRET}@{}/hook/ok", receiver().0);
    let run = notify(dir.path(), SECRET, &with_userinfo, uid, SUCCESS);
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    assert!(run.stderr.contains("user info"), "{}", run.stderr);
    assert!(requests_for(uid).is_empty());
    assert_no_secret(&run, uid);
}

/// The notify step's argv from tasks/kibaship-notify.yaml; the step runs the driver and continues on error.
fn notify_task_argv(root: &Path, params: &BTreeMap<&str, Vec<String>>) -> Vec<String> {
    let (argv, step) = task_argv("kibaship-notify.yaml", "notify", params, root);
    assert_eq!(step["command"][0], "/usr/local/bin/kibaship-step");
    assert_eq!(
        step["onError"], "continue",
        "a notification never fails the run"
    );
    argv
}

#[test]
fn the_tasks_own_argv_delivers_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("kibaship/notify")).unwrap();
    std::fs::write(
        dir.path().join("kibaship/notify/hmac-key"),
        format!("{SECRET}\n"),
    )
    .unwrap();
    let uid = "0f5e2a1b-0000-4000-8000-000000000020";
    let one = |v: &str| vec![v.to_string()];
    let mut params: BTreeMap<&str, Vec<String>> = BTreeMap::from([
        ("notifyUrl", one(&url("ok"))),
        ("pipelineRunName", one("web-x7k2")),
        ("pipelineRunNamespace", one("builds")),
        ("pipelineRunUid", one(uid)),
        ("aggregateStatus", one("Failed")),
        (
            "taskStatuses",
            [
                "clone=Succeeded",
                "prepare=Succeeded",
                "build=Succeeded",
                "scan=Failed",
            ]
            .map(String::from)
            .to_vec(),
        ),
        ("scanVerdict", one("fail")),
        ("digest", one(SUCCESS[12])),
    ]);
    let out = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .args(notify_task_argv(dir.path(), &params))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = requests_for(uid);
    assert_eq!(got.len(), 1);
    assert!(got[0].accepted);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["failureKind"], "gate");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("results/delivered")).unwrap(),
        "true"
    );
    // A receiver that keeps failing: the Task's bound (maxAttempts) ends it with 75 and the results say so.
    let uid = "0f5e2a1b-0000-4000-8000-000000000021";
    params.insert("notifyUrl", one(&url("broken")));
    params.insert("pipelineRunUid", one(uid));
    params.insert("maxAttempts", one("2"));
    let out = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .args(notify_task_argv(dir.path(), &params))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75));
    assert_eq!(requests_for(uid).len(), 2);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("results/attempts")).unwrap(),
        "2"
    );
}
