//! `kibaship-step secrets-hash` against the design's shell recipe, run by `sh` (dash) with `LC_ALL=C`, on
//! generated secrets directories. The two must print the same bytes.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use kibaship_step::secrets::secrets_hash;
use proptest::prelude::*;

/// The design's recipe ("Example: computing secrets-hash inside the build step"), verbatim but for the
/// directory, which is the script's first argument instead of `/secrets`.
const DESIGN_RECIPE: &str = r#"#!/bin/sh
set -eu
dir="$1"
if [ ! -d "$dir" ] || ! ls "$dir"/* >/dev/null 2>&1; then
  echo ""; exit 0
fi
( for f in "$dir"/*; do n=$(basename "$f"); printf "%s=%s\n" "$n" "$(cat "$f")"; done ) \
  | sort | sha256sum | awk '{print $1}'
"#;

fn shell(dir: &Path) -> Vec<u8> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(DESIGN_RECIPE)
        .arg("sh")
        .arg(dir)
        .env("LC_ALL", "C")
        .output()
        .expect("`sh` (dash) must be installed to run the design's recipe");
    assert!(
        out.status.success(),
        "recipe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn driver(dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .args(["secrets-hash", "--secrets-dir"])
        .arg(dir)
        .output()
        .expect("run kibaship-step")
}

fn assert_same(dir: &Path, case: &str) {
    let want = shell(dir);
    let got = driver(dir);
    assert!(
        got.status.success(),
        "{case}: driver failed: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        String::from_utf8_lossy(&want),
        "{case}: driver and shell differ"
    );
    // and the library agrees with the binary
    let lib = secrets_hash(dir).expect("lib").unwrap_or_default();
    assert_eq!(
        format!("{lib}\n").as_bytes(),
        &want[..],
        "{case}: library differs"
    );
}

fn write(dir: &Path, name: &[u8], value: &[u8]) {
    fs::write(dir.join(std::ffi::OsStr::from_bytes(name)), value).expect("write secret");
}

#[test]
fn fixed_cases_match_the_shell() {
    type Case<'a> = (&'a str, Vec<(&'a [u8], &'a [u8])>);
    let cases: Vec<Case<'_>> = vec![
        ("empty directory", vec![]),
        ("one secret", vec![(b"NPM_TOKEN", b"npm_abc123")]),
        (
            "trailing newlines stripped",
            vec![(b"A", b"value\n\n\n"), (b"B", b"v\n")],
        ),
        ("only newlines", vec![(b"A", b"\n\n")]),
        ("empty value", vec![(b"EMPTY", b""), (b"X", b"1")]),
        (
            "unicode values and names",
            vec![
                (b"GREETING", "h\u{e9}llo \u{1f680}".as_bytes()),
                ("N\u{c4}ME".as_bytes(), b"x"),
            ],
        ),
        (
            "= in values",
            vec![(b"URL", b"postgres://u:p@h/db?a=b&c=d"), (b"K", b"==")],
        ),
        (
            "inner newlines sorted as lines",
            vec![
                (b"PEM", b"-----BEGIN-----\nzzz\nAAA\n-----END-----\n"),
                (b"B", b"b\n\na"),
            ],
        ),
        ("CRLF kept", vec![(b"WIN", b"a\r\nb\r\n")]),
        (
            "NUL bytes dropped",
            vec![(b"BIN", b"a\0b\0\0c\n"), (b"Z", b"\0")],
        ),
        ("invalid UTF-8 bytes", vec![(b"RAW", b"\xff\xfe\x80abc")]),
        ("leading newline and tabs", vec![(b"T", b"\n\tx\t")]),
        (
            "printf metacharacters",
            vec![(b"P", b"%s %d \\n \\\\ $HOME `x` $(y)"), (b"Q", b"-n")],
        ),
        (
            "dot-names skipped",
            vec![
                (b".hidden", b"secret"),
                (b"..data", b"x"),
                (b"VISIBLE", b"v"),
            ],
        ),
        ("only dot-names", vec![(b".env", b"x")]),
        (
            "names sort against values",
            vec![(b"A", b"b"), (b"A=", b"a"), (b"AA", b"")],
        ),
        ("large value", vec![(b"BIG", &[b'x'; 200_000][..])]),
    ];
    for (case, files) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, value) in files {
            write(dir.path(), name, value);
        }
        assert_same(dir.path(), case);
    }
}

#[test]
fn missing_directory_is_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("not-mounted");
    assert_eq!(shell(&missing), b"\n");
    assert_same(&missing, "missing directory");
}

/// A projected Kubernetes secret volume: `..2024_xx/` holds the files, `..data -> ..2024_xx`, and every key is
/// `NAME -> ..data/NAME`.
#[test]
fn projected_secret_volume_layout_matches_the_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let ts = root.join("..2024_11_25_08_00_00.123456789");
    fs::create_dir(&ts).expect("mkdir");
    for (name, value) in [
        ("NPM_TOKEN", "npm_token_value\n"),
        ("STRIPE_LIVE_KEY", "sk_live_x=y"),
        ("EMPTY", ""),
    ] {
        fs::write(ts.join(name), value).expect("write");
    }
    symlink("..2024_11_25_08_00_00.123456789", root.join("..data")).expect("symlink ..data");
    for name in ["NPM_TOKEN", "STRIPE_LIVE_KEY", "EMPTY"] {
        symlink(format!("..data/{name}"), root.join(name)).expect("symlink key");
    }
    assert_same(root, "projected volume");
    // The same values as plain files hash the same: the layout does not matter, only names and values.
    let plain = tempfile::tempdir().expect("tempdir");
    for (name, value) in [
        ("NPM_TOKEN", "npm_token_value\n"),
        ("STRIPE_LIVE_KEY", "sk_live_x=y"),
        ("EMPTY", ""),
    ] {
        fs::write(plain.path().join(name), value).expect("write");
    }
    assert_eq!(shell(root), shell(plain.path()));
}

/// Where the shell hashes an entry it could not read as an empty value, the driver refuses (exit 64) and names
/// the entry: a hash over secrets that were not read would hide a broken mount.
#[test]
fn unreadable_entries_fail_where_the_shell_hashes_silently() {
    for case in ["directory", "dangling symlink"] {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("OK"), "v").expect("write");
        match case {
            "directory" => fs::create_dir(dir.path().join("SUBDIR")).expect("mkdir"),
            _ => symlink("..data/GONE", dir.path().join("GONE")).expect("symlink"),
        }
        let sh = shell(dir.path());
        assert_eq!(sh.len(), 65, "{case}: the shell still prints a hash");
        let out = driver(dir.path());
        assert_eq!(out.status.code(), Some(64), "{case}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("bad parameters") && (err.contains("SUBDIR") || err.contains("GONE")),
            "{case}: {err}"
        );
        assert!(out.stdout.is_empty(), "{case}: nothing on stdout");
    }
}

fn name_strategy() -> impl Strategy<Value = Vec<u8>> {
    // Any bytes but '/' and NUL; sometimes starting with '.', sometimes with newlines or '='.
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(b"ABCXYZ_019az".to_vec()),
            1 => prop::sample::select(b".=\n -\xc3\xa9\xff*?[".to_vec()),
        ],
        1..12,
    )
    .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

fn value_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(b"abcXYZ019=+/".to_vec()),
            2 => prop::sample::select(b"\n\r\t \0\\%\xff\xe2\x82\xac".to_vec()),
        ],
        0..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_directories_match_the_shell(
        entries in prop::collection::btree_map(name_strategy(), value_strategy(), 0..7)
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, value) in &entries {
            write(dir.path(), name, value);
        }
        let want = shell(dir.path());
        let got = driver(dir.path());
        prop_assert!(got.status.success(), "driver failed: {}", String::from_utf8_lossy(&got.stderr));
        prop_assert_eq!(got.stdout, want);
    }
}
