//! `--certificate-identity-regexp` / `--certificate-oidc-issuer-regexp` take Go's `regexp` (RE2) syntax, as cosign
//! does: `\Q...\E` and the other forms cosign users write are accepted; what Go refuses exits 2 naming the construct.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kibaverify");

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sigstore/conformance")
}

/// `kibaverify verify-bundle` of the v0.3 happy path (a GitHub Actions certificate of sigstore-conformance) with
/// these identity and issuer regexps.
fn verify(identity: &str, issuer: &str) -> Output {
    Command::new(BIN)
        .arg("verify-bundle")
        .arg("--bundle")
        .arg(corpus().join("happy-path-v0.3/bundle.sigstore.json"))
        .arg("--artifact")
        .arg(corpus().join("a.txt"))
        .args([
            "--certificate-identity-regexp",
            identity,
            "--certificate-oidc-issuer-regexp",
            issuer,
        ])
        .output()
        .unwrap()
}

fn code_and_stderr(o: &Output) -> (i32, String) {
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn go_regexp_forms_cosign_users_write_are_accepted() {
    for (identity, issuer, expected) in [
        (
            r"^\Qhttps://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/\E.*@refs/heads/main$",
            r"^\Qhttps://token.actions.githubusercontent.com\E$",
            0,
        ),
        (
            r"^https://github.com/sigstore-conformance/.*@refs/heads/main$",
            r"(?i)^HTTPS://TOKEN\.ACTIONS\.GITHUBUSERCONTENT\.COM\z",
            0,
        ),
        (
            r"^https://github\.com/[[:alpha:]-]+/\pL[\w-]+/\.github/workflows/[^@]+@refs/heads/\w+$",
            r"token\.actions",
            0,
        ),
        // Unanchored, as Go's MatchString.
        (r"oidc-beacon", r"githubusercontent", 0),
        // Literal text: the `.` of \Q...\E is no wildcard, so a different identity does not match.
        (
            r"^\Qhttps://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon\E$",
            r".",
            1,
        ),
        (r"\Qhttps://githubXcom\E", r".", 1),
    ] {
        let (code, stderr) = code_and_stderr(&verify(identity, issuer));
        assert_eq!(code, expected, "{identity} / {issuer}: {stderr}");
    }
}

#[test]
fn what_go_refuses_exits_2_naming_the_construct() {
    for (identity, construct) in [
        (r"^a\Cb", r"`\C`"),
        (r"(?x)^https://github\.com/", "`(?x`"),
        (r"^(?=https)", "`(?=`"),
        (r"(a)\1", r"`\1`"),
    ] {
        let (code, stderr) = code_and_stderr(&verify(identity, "."));
        assert_eq!(code, 2, "{identity}: {stderr}");
        assert!(
            stderr.contains("--certificate-identity-regexp") && stderr.contains(construct),
            "{identity}: {stderr}"
        );
    }
}
