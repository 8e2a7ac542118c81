//! What the real-build integration tests (`real_build.rs`, `provenance_real.rs`, `real_build_faults.rs`) share: the peers they build
//! with (a plain [`TestRegistry`] and a [`RailpackBuildkit`] mirroring to it), a [`Workspace`] laid out as the
//! Tekton tasks leave it that runs `kibaship-step prepare` and `kibaship-step build` for real, and the clients
//! other than ours (curl, skopeo) the tests check the registry with.
//!
//! A directory module (`real_support/mod.rs`), so cargo does not build it as a test target of its own; each
//! test includes it with `mod real_support;` and uses part of it.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kibaship_testsupport::peers::railpack_prepare_program;
use kibaship_testsupport::railpack_build::RailpackBuildkit;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The revision the builds are tagged with (`--revision`), git's empty tree.
pub const COMMIT: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
/// The repository the builds push to (`--image-repository`).
pub const REPOSITORY: &str = "kibaship/acme/shell";
/// The source URL the builds are given (`--source-url`).
pub const SOURCE: &str = "https://example.com/acme/shell";

/// The peers a real build needs, started for one test: a plain registry and buildkitd with Railpack's
/// frontend, base stand-ins and SBOM scanner pushed to it. Fields drop in order: buildkitd before the registry.
pub struct Peers {
    /// buildkitd and the Railpack images it builds with.
    pub buildkit: RailpackBuildkit,
    /// The registry the images are pushed to; buildkitd mirrors `ghcr.io` and `docker.io` to it.
    pub registry: TestRegistry,
}

impl Peers {
    /// Starts the registry, pushes the Railpack images and starts buildkitd; panics when a peer is missing.
    pub fn start() -> Peers {
        let registry = TestRegistry::start(RegistryMode::Plain).expect("start registry");
        let buildkit = RailpackBuildkit::start(&registry)
            .expect("push the Railpack images and start buildkitd (make peers deps; root)");
        Peers { buildkit, registry }
    }

    /// [`Peers::start`] with base images that build Go apps for real (Debian, mise and Go `go_version` in the
    /// builder: `RailpackBuildkit::start_with_go`).
    pub fn start_with_go(go_version: &str) -> Peers {
        let registry = TestRegistry::start(RegistryMode::Plain).expect("start registry");
        let buildkit = RailpackBuildkit::start_with_go(&registry, go_version).expect(
            "push the Railpack images with a Debian and Go builder and start buildkitd (make peers deps; root; \
             deb.debian.org and the Go module proxy reachable the first time)",
        );
        Peers { buildkit, registry }
    }
}

/// A fixture app under `testdata/railpack/apps`.
pub fn fixture_app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/railpack/apps")
        .join(name)
}

/// Bytes as text, lossily (for messages and stdout parsing).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command and returns its stdout; panics with its stderr when it fails.
pub fn run(command: &mut Command) -> Vec<u8> {
    let shown = format!("{command:?}");
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    out.stdout
}

/// The `kibaship-step` binary under test.
pub fn step() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
}

/// The registry's own answer for `REPOSITORY:reference`, read with curl: `HEAD` → `Docker-Content-Digest`.
pub fn registry_head_digest(registry: &str, reference: &str) -> String {
    let headers = text(&run(Command::new("curl")
        .args(["-sS", "-f", "-I"])
        .args([
            "-H",
            "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!("http://{registry}/v2/{REPOSITORY}/manifests/{reference}"))));
    headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("docker-content-digest")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Docker-Content-Digest in HEAD answer:\n{headers}"))
}

/// skopeo's raw manifest bytes (an independent client), with their digest.
pub fn skopeo_raw(reference: &str) -> (String, Value) {
    let bytes = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}")));
    (
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        serde_json::from_slice(&bytes).expect("manifest JSON"),
    )
}

/// A blob of `REPOSITORY` fetched with curl, checked against its digest.
pub fn blob(registry: &str, digest: &str) -> Vec<u8> {
    let bytes = run(Command::new("curl")
        .args(["-sS", "-f"])
        .arg(format!("http://{registry}/v2/{REPOSITORY}/blobs/{digest}")));
    assert_eq!(
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        digest,
        "blob bytes match their digest"
    );
    bytes
}

/// A workspace as the Tekton tasks leave it: `ws/repo/app` (the fixture), `ws/railpack`, `results/`,
/// `secrets/` (empty); removed on drop.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    /// A new workspace holding a copy of the fixture app `app`.
    pub fn new(app: &str) -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        let app_dir = dir.path().join("ws/repo/app");
        fs::create_dir_all(&app_dir).expect("mkdir app");
        for entry in fs::read_dir(fixture_app(app)).expect("fixture app") {
            let entry = entry.expect("entry");
            fs::copy(entry.path(), app_dir.join(entry.file_name())).expect("copy fixture");
        }
        fs::create_dir_all(dir.path().join("results")).expect("mkdir results");
        fs::create_dir_all(dir.path().join("secrets")).expect("mkdir secrets");
        Workspace { dir }
    }

    /// A path inside the workspace.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The Tekton result `name` the step wrote (empty when it wrote none).
    pub fn result(&self, name: &str) -> String {
        fs::read_to_string(self.path("results").join(name)).unwrap_or_default()
    }

    /// `kibaship-step prepare` with the real `railpack prepare` (the pinned peer), writing the plan and info
    /// to `ws/railpack` and their paths to the `planPath` and `infoPath` results.
    pub fn prepare(&self) -> Output {
        step()
            .arg("prepare")
            .arg("--source-dir")
            .arg(self.path("ws/repo"))
            .args(["--context-path", "app"])
            .arg("--railpack")
            .arg(railpack_prepare_program().expect("the railpack and mise peers (make peers)"))
            .arg("--out-dir")
            .arg(self.path("ws/railpack"))
            .arg("--plan-path-result")
            .arg(self.path("results/planPath"))
            .arg("--info-path-result")
            .arg(self.path("results/infoPath"))
            .output()
            .expect("run kibaship-step prepare")
    }

    /// [`Workspace::prepare`], asserting it succeeded.
    pub fn prepare_ok(&self) {
        let prepared = self.prepare();
        assert!(
            prepared.status.success(),
            "prepare failed:\n{}",
            text(&prepared.stderr)
        );
    }

    /// `kibaship-step build` of the prepared plan with the real `buildctl` against `buildkit`, pushing
    /// `REPOSITORY:COMMIT` to `registry`; buildctl's metadata file goes to `metadata.json`, the Tekton results
    /// to `results/`.
    pub fn build(&self, registry: &str, buildkit: &RailpackBuildkit) -> Output {
        let bk = buildkit.buildkitd();
        step()
            .arg("build")
            .arg("--source-dir")
            .arg(self.path("ws/repo"))
            .args(["--context-path", "app"])
            .arg("--plan")
            .arg(self.result("planPath"))
            .arg("--info")
            .arg(self.result("infoPath"))
            .args([
                "--image-registry",
                registry,
                "--image-repository",
                REPOSITORY,
            ])
            .args(["--revision", COMMIT, "--cache-key", "tenant-acme"])
            .args(["--railpack-version", &buildkit.images().railpack_version])
            .args(["--source-url", SOURCE])
            .arg("--secrets-dir")
            .arg(self.path("secrets"))
            .arg("--buildctl")
            .arg(bk.buildctl_path())
            .args(["--buildkit-host", bk.addr()])
            .arg("--insecure-registry")
            .arg("--metadata-file")
            .arg(self.path("metadata.json"))
            .arg("--image-result")
            .arg(self.path("results/image"))
            .arg("--digest-result")
            .arg(self.path("results/digest"))
            .arg("--sbom-ref-result")
            .arg(self.path("results/sbomRef"))
            .arg("--build-duration-result")
            .arg(self.path("results/buildDuration"))
            .output()
            .expect("run kibaship-step build")
    }

    /// [`Workspace::build`], asserting it succeeded (with buildkitd's log on failure); returns its output.
    pub fn build_ok(&self, registry: &str, buildkit: &RailpackBuildkit) -> Output {
        let built = self.build(registry, buildkit);
        assert!(
            built.status.success(),
            "build failed:\n{}\n--- buildkitd log:\n{}",
            text(&built.stderr),
            buildkit.buildkitd().log_tail()
        );
        built
    }
}
