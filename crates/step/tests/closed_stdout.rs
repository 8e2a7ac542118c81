//! kibaship-step with its stdout on a pipe nobody reads any more: the step's work and exit code are not
//! affected (the results Tekton reads are files; stdout is the log).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::process::{Command, Stdio};

#[test]
fn secrets_hash_with_a_closed_stdout_exits_zero_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("API_KEY"), "Wm3rTq8Zp1Lx").unwrap();
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .args(["secrets-hash", "--secrets-dir"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
}
