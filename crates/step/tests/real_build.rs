//! The real build, offline (issue 16 part 2): `kibaship-step prepare` runs the real `railpack prepare` (the
//! pinned peer through `scripts/peers/railpack-prepare.sh`), `kibaship-step build` runs the real `buildctl`
//! against a real buildkitd with Railpack's frontend (`kibaship_testsupport::railpack_build`: the frontend,
//! base stand-ins and a trivy SBOM scanner pushed to a local registry that buildkitd mirrors `ghcr.io` and
//! `docker.io` to). Checked with clients other than ours (curl, skopeo, umoci, runc): the digest from buildctl's
//! metadata file is the registry's, the pushed index carries BuildKit's SLSA provenance v1 and SPDX SBOM, the
//! image runs and prints what the app prints, and a second build is skipped by the dedupe key.
//!
//! Only the shell provider: the static provider needs caddy, which mise downloads from GitHub in the builder
//! (the stand-in base images hold busybox only), and so do Node, Python and Go.
//!
//! Needs root (rootful buildkitd, runc) and `make peers deps` (buildkit, railpack, mise, trivy; umoci, skopeo,
//! runc, busybox-static, curl).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kibaship_testsupport::peers::railpack_prepare_program;
use kibaship_testsupport::railpack_build::RailpackBuildkit;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use serde_json::Value;
use sha2::{Digest, Sha256};

const COMMIT: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
const REPOSITORY: &str = "kibaship/acme/shell";
const APP_PRINTS: &str = "hello from the kibaship shell fixture";

fn fixture_app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/railpack/apps")
        .join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command and returns its stdout; panics with its stderr when it fails.
fn run(command: &mut Command) -> Vec<u8> {
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

/// A workspace as the Tekton tasks leave it: `ws/repo/app` (the fixture), `ws/railpack`, `results/`.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new(app: &str) -> Workspace {
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

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn result(&self, name: &str) -> String {
        fs::read_to_string(self.path("results").join(name)).unwrap_or_default()
    }

    fn prepare(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
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

    fn build(&self, registry: &str, buildkit: &RailpackBuildkit) -> Output {
        let bk = buildkit.buildkitd();
        Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
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
            .args(["--source-url", "https://example.com/acme/shell"])
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
}

/// The registry's own answer, read with curl: `HEAD` → `Docker-Content-Digest`.
fn registry_head_digest(registry: &str, repository: &str, reference: &str) -> String {
    let headers = text(&run(Command::new("curl")
        .args(["-sS", "-f", "-I"])
        .args([
            "-H",
            "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!("http://{registry}/v2/{repository}/manifests/{reference}"))));
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
fn skopeo_raw(reference: &str) -> (String, Value) {
    let bytes = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}")));
    (
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        serde_json::from_slice(&bytes).expect("manifest JSON"),
    )
}

/// A blob fetched with curl, checked against its digest.
fn blob(registry: &str, digest: &str) -> Vec<u8> {
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

/// Copies the image into an OCI layout (skopeo), unpacks it (umoci) and runs it with runc; returns stdout.
fn run_image(reference: &str, work: &Path) -> String {
    let layout = work.join("layout");
    let bundle = work.join("bundle");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:app", layout.display())));
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:app", layout.display()))
        .arg(&bundle));
    let config_path = bundle.join("config.json");
    let mut config: Value =
        serde_json::from_slice(&fs::read(&config_path).expect("config.json")).expect("JSON");
    config["process"]["terminal"] = Value::Bool(false);
    fs::write(&config_path, serde_json::to_vec(&config).expect("JSON")).expect("write");
    let id = format!("kibaship-real-build-{}", std::process::id());
    let mut child = Command::new("runc")
        .arg("--root")
        .arg(work.join("runc-state"))
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run runc");
    // A generous bound: the app prints one line; a hung container must not hang the test.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait runc") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = Command::new("runc")
                .arg("--root")
                .arg(work.join("runc-state"))
                .args(["delete", "--force", &id])
                .status();
            let _ = child.wait();
            panic!("runc run of {reference} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout).expect("read stdout");
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr).expect("read stderr");
    }
    assert!(
        status.success(),
        "runc run of {reference} failed ({status}): {stderr}\nstdout: {stdout}"
    );
    stdout
}

#[test]
fn railpack_shell_app_builds_for_real_with_provenance_and_sbom_and_runs() {
    let registry = TestRegistry::start(RegistryMode::Plain).expect("start registry");
    let host = registry.host();
    let buildkit = RailpackBuildkit::start(&registry)
        .expect("push the Railpack images and start buildkitd (make peers deps; root)");
    let ws = Workspace::new("shell");

    // Real railpack prepare, through the driver.
    let prepared = ws.prepare();
    assert!(
        prepared.status.success(),
        "prepare failed:\n{}",
        text(&prepared.stderr)
    );
    let plan: Value =
        serde_json::from_slice(&fs::read(ws.result("planPath")).expect("plan")).expect("JSON");
    assert_eq!(plan["deploy"]["startCommand"], "sh start.sh");
    assert_eq!(
        plan["deploy"]["base"]["image"],
        "ghcr.io/railwayapp/railpack-runtime:latest"
    );

    // Real buildctl → buildkitd with Railpack's frontend, through the driver.
    let built = ws.build(&host, &buildkit);
    assert!(
        built.status.success(),
        "build failed:\n{}\n--- buildkitd log:\n{}",
        text(&built.stderr),
        buildkit.buildkitd().log_tail()
    );
    let stdout = text(&built.stdout);
    assert!(stdout.contains("outcome=built"), "{stdout}");
    let image = format!("{host}/{REPOSITORY}:{COMMIT}");
    assert_eq!(ws.result("image"), image);

    // The digest: buildctl's metadata file = the driver's result = the registry's HEAD = sha256 of the bytes.
    let metadata: Value =
        serde_json::from_slice(&fs::read(ws.path("metadata.json")).expect("metadata"))
            .expect("JSON");
    let digest = metadata["containerimage.digest"]
        .as_str()
        .expect("containerimage.digest")
        .to_string();
    assert_eq!(ws.result("digest"), digest);
    assert_eq!(registry_head_digest(&host, REPOSITORY, COMMIT), digest);
    let (served, index) = skopeo_raw(&image);
    assert_eq!(served, digest);
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index}"
    );
    assert_eq!(
        index["annotations"]["org.opencontainers.image.revision"],
        COMMIT
    );
    assert_eq!(
        index["annotations"]["dev.kibaship.railpack.providers"],
        "shell"
    );

    // The index: the linux/amd64 image and one attestation manifest for it.
    let manifests = index["manifests"].as_array().expect("manifests");
    let image_digest = manifests
        .iter()
        .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == "amd64")
        .and_then(|m| m["digest"].as_str())
        .unwrap_or_else(|| panic!("no linux/amd64 image in {index}"))
        .to_string();
    let attestations: Vec<&Value> = manifests
        .iter()
        .filter(|m| {
            m["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
                && m["annotations"]["vnd.docker.reference.digest"] == image_digest.as_str()
        })
        .collect();
    assert_eq!(attestations.len(), 1, "{index}");
    let att_digest = attestations[0]["digest"].as_str().expect("digest");
    assert_eq!(
        ws.result("sbomRef"),
        format!("{host}/{REPOSITORY}@{att_digest}")
    );
    let (_, att) = skopeo_raw(&format!("{host}/{REPOSITORY}@{att_digest}"));
    let layer = |predicate: &str| -> Value {
        let layers = att["layers"].as_array().expect("layers");
        let found = layers
            .iter()
            .find(|l| l["annotations"]["in-toto.io/predicate-type"] == predicate)
            .unwrap_or_else(|| panic!("no {predicate} layer in {att}"));
        assert_eq!(found["mediaType"], "application/vnd.in-toto+json");
        let digest = found["digest"].as_str().expect("layer digest");
        serde_json::from_slice(&blob(&host, digest)).expect("in-toto statement JSON")
    };

    // SLSA provenance v1, as BuildKit writes it for this build.
    let provenance = layer("https://slsa.dev/provenance/v1");
    assert_eq!(
        provenance["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    assert_eq!(
        provenance["subject"][0]["digest"]["sha256"],
        image_digest.trim_start_matches("sha256:"),
        "the provenance is about the built image"
    );
    let definition = &provenance["predicate"]["buildDefinition"];
    assert_eq!(
        definition["buildType"],
        "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md",
        "{definition}"
    );
    let request = &definition["externalParameters"]["request"];
    assert_eq!(request["frontend"], "gateway.v0", "{request}");
    assert_eq!(
        request["args"]["source"],
        buildkit.images().frontend(),
        "{request}"
    );
    assert_eq!(request["args"]["build-arg:cache-key"], "tenant-acme");
    let dependencies = definition["resolvedDependencies"].to_string();
    assert!(
        dependencies.contains("ghcr.io/railwayapp/railpack-runtime"),
        "the runtime base image is a resolved dependency, under its upstream name: {dependencies}"
    );

    // The SPDX SBOM, written by our trivy scanner through BuildKit's SBOM protocol.
    let sbom = layer("https://spdx.dev/Document");
    assert_eq!(sbom["predicateType"], "https://spdx.dev/Document");
    let spdx = &sbom["predicate"];
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3", "{spdx}");
    let creators = spdx["creationInfo"]["creators"].to_string();
    assert!(creators.contains("trivy"), "{creators}");
    let packages = spdx["packages"].as_array().expect("SPDX packages");
    assert!(
        packages.iter().any(|p| p["name"] == "busybox-static"),
        "the base image's Debian package is in the SBOM: {}",
        spdx["packages"]
    );
    assert!(
        packages.iter().any(|p| p["name"] == "debian"),
        "trivy saw a Debian image: {}",
        spdx["packages"]
    );

    // The image runs and prints what the app prints.
    let run_dir = tempfile::tempdir().expect("tempdir");
    let printed = run_image(
        &format!("{host}/{REPOSITORY}@{image_digest}"),
        run_dir.path(),
    );
    assert_eq!(printed.trim(), APP_PRINTS);

    // Identical inputs: the second build is skipped by the dedupe key and returns the same digest.
    let again = ws.build(&host, &buildkit);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let stdout = text(&again.stdout);
    assert!(stdout.contains("outcome=reused"), "{stdout}");
    assert_eq!(ws.result("digest"), digest);
}
