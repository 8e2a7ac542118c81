//! `kibaverify generate-key-pair` writes a key pair cosign's format reads, and keeps the password out of output.
#![allow(clippy::unwrap_used)]
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use kibaship_sign::SigningKey;

mod support;
use support::{BIN, Run, assert_code, assert_exit_with_message, on_terminal, run};

/// `kibaverify generate-key-pair --output-key-prefix prefix` with COSIGN_PASSWORD set to `password`, or removed.
fn generate_key_pair(prefix: &Path, password: Option<&str>) -> Run {
    let mut c = Command::new(BIN);
    c.args(["generate-key-pair", "--output-key-prefix"])
        .arg(prefix)
        .env_remove("COSIGN_PASSWORD");
    if let Some(password) = password {
        c.env("COSIGN_PASSWORD", password);
    }
    run(&mut c)
}

#[test]
fn writes_an_encrypted_key_and_its_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("team");
    let r = generate_key_pair(&prefix, Some("planted-password-7f3a"));
    assert_code(&r, 0, "generate-key-pair");
    let shown = format!("{}{}", r.stdout, r.stderr);
    assert!(!shown.contains("planted-password-7f3a"), "{shown}");

    let key_path = dir.path().join("team.key");
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key = SigningKey::from_encrypted_pem(
        &std::fs::read(&key_path).unwrap(),
        b"planted-password-7f3a",
    )
    .unwrap();
    let public = std::fs::read_to_string(dir.path().join("team.pub")).unwrap();
    assert_eq!(key.public_key_pem().unwrap(), public);

    // A second run does not overwrite without --force.
    let again = generate_key_pair(&prefix, Some("x"));
    assert_exit_with_message(&again, 2, "already exists");
}

#[test]
fn refuses_without_a_password_source() {
    let dir = tempfile::tempdir().unwrap();
    let r = generate_key_pair(&dir.path().join("k"), None);
    assert_exit_with_message(&r, 2, "COSIGN_PASSWORD");
    assert!(!dir.path().join("k.key").exists());
}

#[test]
fn prompts_twice_on_a_terminal_without_echo() {
    let dir = tempfile::tempdir().unwrap();
    let out = on_terminal(
        dir.path(),
        "generate-key-pair --output-key-prefix tty",
        &["typed-secret-91", "typed-secret-91"],
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("Enter password for private key again"),
        "{shown}"
    );
    assert!(
        !shown.contains("typed-secret-91"),
        "the password was echoed: {shown}"
    );
    let key = std::fs::read(dir.path().join("tty.key")).unwrap();
    SigningKey::from_encrypted_pem(&key, b"typed-secret-91").unwrap();

    let differ = on_terminal(
        dir.path(),
        "generate-key-pair --output-key-prefix other",
        &["one", "two"],
    );
    assert!(!differ.status.success());
    assert!(String::from_utf8_lossy(&differ.stdout).contains("the two passwords differ"));
    assert!(!dir.path().join("other.key").exists());
}
