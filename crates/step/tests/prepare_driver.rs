//! `kibaship-step prepare`, then the build step on the plan it wrote.
//!
//! `railpack` is replaced by `tests/railpack-standin`: the real CLI (the pinned Go peer) downloads mise from GitHub
//! before it plans anything, and these machines cannot reach GitHub. The stand-in writes a real railpack core
//! snapshot (testdata/railpack/shell-script_1.snap.json) with the `--env` names as the plan's secrets, as railpack
//! does. `buildctl` is replaced by `tests/buildctl-standin` (see build_driver.rs for why).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kibaship_step::plan::RailpackPlan;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

fn railpack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/railpack-standin")
}

fn snapshot() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/railpack/shell-script_1.snap.json")
}

fn shell_app(root: &Path) {
    let app = root.join("ws/repo/apps/hello");
    fs::create_dir_all(&app).expect("mkdir");
    fs::write(app.join("start.sh"), "#!/bin/sh\necho hello\n").expect("write");
}

fn prepare(root: &Path, context: &str, secrets: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .arg("prepare")
        .arg("--source-dir")
        .arg(root.join("ws/repo"))
        .args(["--context-path", context])
        .arg("--railpack")
        .arg(railpack())
        .arg("--out-dir")
        .arg(root.join("ws/railpack"))
        .arg("--plan-path-result")
        .arg(root.join("planPath"))
        .arg("--info-path-result")
        .arg(root.join("infoPath"))
        .arg("--build-secrets")
        .args(secrets)
        .env("RAILPACK_STANDIN_PLAN", snapshot())
        .output()
        .expect("run kibaship-step prepare")
}

#[test]
fn prepared_plan_records_secret_names_and_feeds_the_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    shell_app(root);
    let out = prepare(root, "apps/hello", &["NPM_TOKEN"]);
    assert!(
        out.status.success(),
        "prepare failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan_path = fs::read_to_string(root.join("planPath")).expect("planPath result");
    let info_path = fs::read_to_string(root.join("infoPath")).expect("infoPath result");
    assert_eq!(Path::new(&plan_path), root.join("ws/railpack/plan.json"));
    assert_eq!(Path::new(&info_path), root.join("ws/railpack/info.json"));
    let plan =
        RailpackPlan::parse(&fs::read(&plan_path).expect("plan")).expect("railpack's plan parses");
    assert_eq!(plan.declared_secrets(), ["NPM_TOKEN"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("planDigest={}", plan.digest()))
    );

    // build on that plan
    let reg = TestRegistry::start(RegistryMode::Plain).expect("registry");
    fs::create_dir_all(root.join("secrets")).expect("mkdir");
    fs::write(root.join("secrets/NPM_TOKEN"), "npm_planted_token_zeta").expect("secret");
    let build = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .arg("build")
        .arg("--source-dir")
        .arg(root.join("ws/repo"))
        .args([
            "--context-path",
            "apps/hello",
            "--plan",
            &plan_path,
            "--info",
            &info_path,
        ])
        .args([
            "--image-registry",
            &reg.host(),
            "--image-repository",
            "kibaship/acme/hello",
        ])
        .args([
            "--revision",
            "960ef4fb6190de6aa8b394bf2f0d552ee67675c3",
            "--railpack-version",
            "v0.15.0",
        ])
        .arg("--secrets-dir")
        .arg(root.join("secrets"))
        .arg("--buildctl")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/buildctl-standin"))
        .arg("--insecure-registry")
        .arg("--metadata-file")
        .arg(root.join("meta.json"))
        .args(["--build-secrets", "NPM_TOKEN"])
        .output()
        .expect("run build");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    assert!(build.status.success(), "build failed: {all}");
    assert!(all.contains("outcome=built"));
    assert!(
        !all.contains("npm_planted_token_zeta"),
        "secret value leaked: {all}"
    );
}

#[test]
fn prepare_failures_are_plan_errors_or_bad_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    shell_app(root);
    fs::create_dir_all(root.join("ws/repo/empty")).expect("mkdir");

    // railpack cannot plan a directory without an app: plan error, no results
    let out = prepare(root, "empty", &[]);
    assert_eq!(
        out.status.code(),
        Some(65),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("kibaship-step: plan error: railpack prepare failed")
    );
    assert!(!root.join("planPath").exists());

    for (context, secrets, needle) in [
        (
            "apps/hello",
            &["NPM-TOKEN"][..],
            "not an environment variable name",
        ),
        ("apps/hello", &["RAILPACK_BUILD_CMD"][..], "RAILPACK_"),
        ("apps/hello", &["A", "A"][..], "listed twice"),
        ("/etc", &[][..], "absolute"),
        ("apps/missing", &[][..], "contextPath directory"),
    ] {
        let out = prepare(root, context, secrets);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{context} {secrets:?}: {err}");
        assert!(
            err.contains("bad parameters") && err.contains(needle),
            "{needle:?} not in {err}"
        );
        assert!(
            !err.contains("running"),
            "railpack must not run on bad parameters: {err}"
        );
    }
}
