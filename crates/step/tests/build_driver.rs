//! `kibaship-step build` end to end against a real local registry (docker-registry from the test harness),
//! with `tests/buildctl-standin` in place of `buildctl`.
//!
//! The real build (real `railpack prepare`, real buildkitd with Railpack's frontend, BuildKit's provenance and
//! SBOM) is `tests/real_build.rs`; a command failing inside the real BuildKit (exit 70) is
//! `tests/real_build_faults.rs`. The stand-in stays here for what the real tools cannot be made to show on
//! demand: the other failure kinds with their exit codes (bad parameters, a bad plan, a registry that answers 503
//! to everything before BuildKit runs), credentials read from a docker config by a TLS + token registry, and
//! buildctl's flag parsing checked strictly on every argv we emit. It records the argv, pushes a real small
//! image index (image + BuildKit-style attestation manifest) with skopeo, and writes a metadata file like
//! buildctl's. The digest checks below use skopeo, a client independent of ours.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use serde_json::Value;
use sha2::{Digest, Sha256};

const COMMIT: &str = "960ef4fb6190de6aa8b394bf2f0d552ee67675c3";
/// Values planted in the secrets: none of them may appear in any output.
const SECRET_VALUES: [(&str, &str); 3] = [
    ("MY_SECRET", "s3cr3t-planted-value-alpha\n"),
    ("MY_OTHER_SECRET", "planted=beta,with,commas"),
    ("HELLO_WORLD", "planted-gamma\nsecond-line-delta\n"),
];

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/railpack")
        .join(name)
}

fn standin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/buildctl-standin")
}

fn require_tools() {
    for tool in ["skopeo", "python3"] {
        let ok = Command::new(tool)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            ok,
            "{tool} is required by the buildctl stand-in: install it (`make deps` installs skopeo)"
        );
    }
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A workspace as the tasks leave it: repo/app (the source), railpack/plan.json + info.json, /secrets.
    fn new(plan: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("ws/repo/app")).expect("mkdir");
        fs::write(root.join("ws/repo/app/run.sh"), "#!/bin/sh\necho hello\n").expect("write");
        fs::create_dir_all(root.join("ws/railpack")).expect("mkdir");
        fs::copy(testdata(plan), root.join("ws/railpack/plan.json")).expect("copy plan");
        // info.json as railpack v0.15 writes it (Go field names in logs).
        fs::write(
            root.join("ws/railpack/info.json"),
            r#"{"railpackVersion":"0.15.0","metadata":{"providers":"shell","detectedShellInterpreter":"sh"},
                "detectedProviders":["shell"],"logs":[{"Level":"info","Msg":"Detected Shell"}],"success":true}"#,
        )
        .expect("write info");
        fs::create_dir_all(root.join("secrets")).expect("mkdir");
        fs::create_dir_all(root.join("results")).expect("mkdir");
        Fixture { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn plant_secrets(&self) {
        for (name, value) in SECRET_VALUES {
            fs::write(self.root().join("secrets").join(name), value).expect("write secret");
        }
    }

    fn result(&self, name: &str) -> String {
        fs::read_to_string(self.root().join("results").join(name)).unwrap_or_default()
    }

    fn record(&self) -> Vec<Vec<String>> {
        let text = fs::read_to_string(self.root().join("record.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("record line is JSON");
                v["argv"]
                    .as_array()
                    .expect("argv")
                    .iter()
                    .map(|a| a.as_str().expect("str").to_string())
                    .collect()
            })
            .collect()
    }

    fn build(
        &self,
        registry: &str,
        secrets: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let r = self.root();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kibaship-step"));
        cmd.arg("build")
            .arg("--source-dir")
            .arg(r.join("ws/repo"))
            .args(["--context-path", "app", "--plan"])
            .arg(r.join("ws/railpack/plan.json"))
            .arg("--info")
            .arg(r.join("ws/railpack/info.json"))
            .args([
                "--image-registry",
                registry,
                "--image-repository",
                "kibaship/acme/web",
            ])
            .args([
                "--revision",
                COMMIT,
                "--railpack-version",
                "v0.15.0",
                "--cache-key",
                "tenant-acme",
            ])
            .args(["--source-url", "https://github.com/railwayapp/railpack"])
            .arg("--secrets-dir")
            .arg(r.join("secrets"))
            .arg("--buildctl")
            .arg(standin())
            .arg("--insecure-registry")
            .arg("--metadata-file")
            .arg(r.join("metadata.json"));
        for res in ["image", "digest", "sbomRef", "buildDuration"] {
            let flag = match res {
                "image" => "--image-result",
                "digest" => "--digest-result",
                "sbomRef" => "--sbom-ref-result",
                _ => "--build-duration-result",
            };
            cmd.arg(flag).arg(r.join("results").join(res));
        }
        cmd.args(extra);
        cmd.arg("--build-secrets").args(secrets);
        cmd.env("BUILDCTL_STANDIN_RECORD", r.join("record.jsonl"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run kibaship-step")
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// skopeo's view of a reference: (digest of the raw manifest, the manifest JSON).
fn skopeo_raw(reference: &str) -> (String, Value) {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&out.stdout)));
    (
        digest,
        serde_json::from_slice(&out.stdout).expect("manifest JSON"),
    )
}

fn assert_no_secret_values(fx: &Fixture, outputs: &[&Output]) {
    let mut haystack = String::new();
    for o in outputs {
        haystack.push_str(&stdout(o));
        haystack.push_str(&stderr(o));
    }
    for f in ["record.jsonl", "metadata.json"] {
        haystack.push_str(&fs::read_to_string(fx.root().join(f)).unwrap_or_default());
    }
    for r in ["image", "digest", "sbomRef", "buildDuration"] {
        haystack.push_str(&fx.result(r));
    }
    for (name, value) in SECRET_VALUES {
        for piece in value.split(['\n', ',', '=']).filter(|p| p.len() >= 6) {
            assert!(
                !haystack.contains(piece),
                "the value of secret {name} ({piece:?}) appears in the output"
            );
        }
    }
    assert!(
        haystack.contains("MY_SECRET"),
        "secret names do appear (they are not secret)"
    );
}

#[test]
fn builds_pushes_confirms_then_dedupes() {
    require_tools();
    let reg = TestRegistry::start(RegistryMode::Plain).expect("start registry");
    let host = reg.host();
    let fx = Fixture::new("secrets_1.snap.json");
    fx.plant_secrets();
    let names = ["MY_SECRET", "MY_OTHER_SECRET", "HELLO_WORLD"];

    let first = fx.build(&host, &names, &[], &[]);
    assert!(
        first.status.success(),
        "first build failed: {}",
        stderr(&first)
    );
    assert!(
        stdout(&first).contains("outcome=built"),
        "{}",
        stdout(&first)
    );
    let image = format!("{host}/kibaship/acme/web:{COMMIT}");
    assert_eq!(fx.result("image"), image);
    let digest = fx.result("digest");
    // the digest result is what the registry serves for the tag, seen by an independent client
    let (served, index) = skopeo_raw(&image);
    assert_eq!(digest, served);
    let meta: Value =
        serde_json::from_str(&fs::read_to_string(fx.root().join("metadata.json")).expect("meta"))
            .expect("metadata JSON");
    assert_eq!(meta["containerimage.digest"], Value::String(digest.clone()));
    // annotations: OCI standard keys, the build key, Railpack info
    let ann = &index["annotations"];
    assert_eq!(ann["org.opencontainers.image.revision"], COMMIT);
    assert_eq!(
        ann["org.opencontainers.image.source"],
        "https://github.com/railwayapp/railpack"
    );
    assert!(
        ann["org.opencontainers.image.created"]
            .as_str()
            .is_some_and(|c| c.ends_with('Z'))
    );
    assert_eq!(ann["dev.kibaship.railpack.providers"], "shell");
    assert_eq!(ann["dev.kibaship.railpack.version"], "0.15.0");
    let key = ann["dev.kibaship.build-key"]
        .as_str()
        .expect("build key annotation")
        .to_string();
    assert!(stdout(&first).contains(&format!("buildKey={key}")));
    // the dedupe tag points at the same index
    let (tagged, _) = skopeo_raw(&format!("{host}/kibaship/acme/web:build-{}", &key[..32]));
    assert_eq!(tagged, digest);
    // the SBOM reference names the attestation manifest inside the index
    let sbom_ref = fx.result("sbomRef");
    let att = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["vnd.docker.reference.type"] == "attestation-manifest")
        .expect("attestation manifest");
    assert_eq!(
        sbom_ref,
        format!(
            "{host}/kibaship/acme/web@{}",
            att["digest"].as_str().expect("digest")
        )
    );
    assert!(fx.result("buildDuration").ends_with('s'));
    // the argv buildctl got
    let record = fx.record();
    assert_eq!(record.len(), 1);
    let argv = record[0].join(" ");
    for want in [
        "--frontend gateway.v0",
        "--opt source=ghcr.io/railwayapp/railpack-frontend:v0.15.0",
        "--opt filename=plan.json",
        "--opt attest:provenance=mode=max",
        "--opt build-arg:cache-key=tenant-acme",
        "--secret id=MY_SECRET,src=",
        "--secret id=HELLO_WORLD,src=",
        "--metadata-file",
    ] {
        assert!(argv.contains(want), "buildctl argv lacks {want:?}: {argv}");
    }
    assert!(!record[0].iter().any(|a| a.starts_with("--provenance")));
    // secrets-hash passed to BuildKit is the design's hash of /secrets
    let sh = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .arg("secrets-hash")
        .arg("--secrets-dir")
        .arg(fx.root().join("secrets"))
        .output()
        .expect("secrets-hash");
    let hash = stdout(&sh).trim().to_string();
    assert_eq!(hash.len(), 64);
    assert!(
        argv.contains(&format!("--opt build-arg:secrets-hash={hash}")),
        "{argv}"
    );

    // Second run, same inputs: no build, same digest.
    fs::remove_dir_all(fx.root().join("results")).expect("clear results");
    fs::create_dir_all(fx.root().join("results")).expect("mkdir");
    let second = fx.build(&host, &names, &[], &[]);
    assert!(
        second.status.success(),
        "second build failed: {}",
        stderr(&second)
    );
    assert!(
        stdout(&second).contains("outcome=reused"),
        "{}",
        stdout(&second)
    );
    assert!(
        stderr(&second).contains("dedupe: skip build"),
        "{}",
        stderr(&second)
    );
    assert_eq!(
        fx.record().len(),
        1,
        "buildctl must not run on a dedupe hit"
    );
    assert_eq!(fx.result("digest"), digest);
    assert_eq!(fx.result("image"), image);
    assert_eq!(fx.result("sbomRef"), sbom_ref);

    // A changed secret value changes the secrets-hash, hence the key: it builds again.
    fs::write(
        fx.root().join("secrets/MY_SECRET"),
        "rotated-planted-epsilon",
    )
    .expect("rotate");
    let third = fx.build(&host, &names, &[], &[]);
    assert!(
        third.status.success(),
        "third build failed: {}",
        stderr(&third)
    );
    assert!(
        stdout(&third).contains("outcome=built"),
        "{}",
        stdout(&third)
    );
    assert_eq!(fx.record().len(), 2);
    assert_ne!(fx.result("digest"), digest);

    assert_no_secret_values(&fx, &[&first, &second, &third]);
    let rotated = stdout(&third) + &stderr(&third);
    assert!(!rotated.contains("rotated-planted-epsilon"));
}

#[test]
fn a_dedupe_tag_without_the_key_annotation_is_not_trusted() {
    require_tools();
    let reg = TestRegistry::start(RegistryMode::Plain).expect("start registry");
    let host = reg.host();
    let fx = Fixture::new("shell-script_1.snap.json");
    let first = fx.build(&host, &[], &[], &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let key = stdout(&first)
        .lines()
        .find_map(|l| l.strip_prefix("buildKey="))
        .expect("key")
        .to_string();
    // Someone points the dedupe tag at an image that does not record the key (here: the attestation manifest).
    let (_, index) = skopeo_raw(&format!("{host}/kibaship/acme/web:{COMMIT}"));
    let other = index["manifests"][1]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let copy = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--preserve-digests",
        ])
        .arg(format!("docker://{host}/kibaship/acme/web@{other}"))
        .arg(format!(
            "docker://{host}/kibaship/acme/web:build-{}",
            &key[..32]
        ))
        .output()
        .expect("skopeo copy");
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    let second = fx.build(&host, &[], &[], &[]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).contains("outcome=built"),
        "{}",
        stdout(&second)
    );
    assert!(
        stderr(&second).contains("does not record key"),
        "{}",
        stderr(&second)
    );
    assert_eq!(fx.record().len(), 2);
}

#[test]
fn failure_kinds_have_their_exit_codes() {
    require_tools();
    let reg = TestRegistry::start(RegistryMode::Plain).expect("start registry");
    let host = reg.host();
    let names = ["MY_SECRET", "MY_OTHER_SECRET", "HELLO_WORLD"];

    let check = |o: &Output, code: i32, kind: &str, needle: &str| {
        assert_eq!(o.status.code(), Some(code), "want {kind}: {}", stderr(o));
        let err = stderr(o);
        assert!(err.contains(&format!("kibaship-step: {kind}")), "{err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
    };

    // bad parameters (64)
    let fx = Fixture::new("secrets_1.snap.json");
    fx.plant_secrets();
    check(
        &fx.build(&host, &["MY-SECRET"], &[], &[]),
        64,
        "bad parameters",
        "not an environment variable name",
    );
    check(
        &fx.build(&host, &["MY_SECRET"], &[], &[]),
        64,
        "bad parameters",
        "MY_OTHER_SECRET",
    );
    check(
        &fx.build(
            &host,
            &["MY_SECRET", "MY_OTHER_SECRET", "HELLO_WORLD", "EXTRA"],
            &[],
            &[],
        ),
        64,
        "bad parameters",
        "EXTRA is not declared by the plan",
    );
    check(
        &fx.build(
            &host,
            &names,
            &["--platforms", "linux/amd64,linux/arm64"],
            &[],
        ),
        64,
        "bad parameters",
        "one platform",
    );
    check(
        &fx.build(&host, &names, &["--context-path", "../.."], &[]),
        64,
        "bad parameters",
        "`..`",
    );
    check(
        &fx.build(&host, &names, &["--image-tag", "bad tag"], &[]),
        64,
        "bad parameters",
        "imageTag",
    );
    fs::remove_file(fx.root().join("secrets/HELLO_WORLD")).expect("rm");
    check(
        &fx.build(&host, &names, &[], &[]),
        64,
        "bad parameters",
        "HELLO_WORLD is not mounted",
    );
    let unknown = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .args(["build", "--bogus"])
        .output()
        .expect("run");
    assert_eq!(unknown.status.code(), Some(64));

    // plan error (65)
    let fx = Fixture::new("secrets_1.snap.json");
    fx.plant_secrets();
    fs::write(fx.root().join("ws/railpack/plan.json"), b"{\"steps\": [").expect("break plan");
    check(
        &fx.build(&host, &names, &[], &[]),
        65,
        "plan error",
        "plan.json is not valid JSON",
    );

    // build error (70): a command failing inside BuildKit is shown by the real BuildKit, in
    // real_build_faults.rs (no stand-in for it).

    // registry error (75, retryable): the registry answers 503 to everything
    let proxy = FaultProxy::start_persistent(&host, Fault::ServiceUnavailable).expect("proxy");
    let fx = Fixture::new("secrets_1.snap.json");
    fx.plant_secrets();
    let down = fx.build(&proxy.host(), &names, &[], &[]);
    check(&down, 75, "registry or service error (retryable)", "503");
    assert!(proxy.requests_seen() > 0);
    assert_eq!(
        fx.record().len(),
        0,
        "no build when the dedupe lookup cannot reach the registry"
    );
}

/// A build against an HTTPS registry (no --insecure-registry), trusting `ca`.
fn tls_build(fx: &Fixture, host: &str, ca: &Path, tag: &str, env: &[(&str, &str)]) -> Output {
    let r = fx.root();
    Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .arg("build")
        .arg("--source-dir")
        .arg(r.join("ws/repo"))
        .args(["--context-path", "app", "--plan"])
        .arg(r.join("ws/railpack/plan.json"))
        .args([
            "--image-registry",
            host,
            "--image-repository",
            "kibaship/acme/web",
            "--image-tag",
            tag,
        ])
        .args(["--revision", COMMIT, "--railpack-version", "v0.15.0"])
        .arg("--secrets-dir")
        .arg(r.join("secrets"))
        .arg("--buildctl")
        .arg(standin())
        .arg("--registry-ca-file")
        .arg(ca)
        .arg("--metadata-file")
        .arg(r.join("metadata.json"))
        .env("BUILDCTL_STANDIN_RECORD", r.join("record.jsonl"))
        .envs(env.iter().copied())
        .output()
        .expect("run kibaship-step")
}

/// TLS + basic auth: the step reads push credentials from `$DOCKER_CONFIG/config.json`, as the Task mounts them.
#[test]
fn credentials_come_from_docker_config() {
    use base64::Engine as _;
    require_tools();
    let reg = TestRegistry::start(RegistryMode::BasicTls).expect("start registry");
    let host = reg.host();
    let (user, password) = reg.credentials().expect("basic auth credentials");
    let ca = reg.ca_pem_path().expect("CA").to_path_buf();
    let fx = Fixture::new("shell-script_1.snap.json");
    let docker = fx.root().join("docker");
    let certs = fx.root().join("certs");
    fs::create_dir_all(&docker).expect("mkdir");
    fs::create_dir_all(&certs).expect("mkdir");
    fs::copy(&ca, certs.join("ca.crt")).expect("ca");
    let write_config = |pw: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        fs::write(
            docker.join("config.json"),
            format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
        )
        .expect("write config.json");
    };
    let env = [
        ("DOCKER_CONFIG", docker.to_str().expect("utf-8")),
        ("BUILDCTL_STANDIN_CERT_DIR", certs.to_str().expect("utf-8")),
    ];

    write_config(&password);
    let out = tls_build(&fx, &host, &ca, COMMIT, &env);
    assert!(
        out.status.success(),
        "authenticated build failed: {}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("outcome=built"));
    assert!(
        !(stdout(&out) + &stderr(&out)).contains(&password),
        "the registry password appears in the output"
    );

    // wrong credentials: a registry error (the dedupe lookup is refused), nothing built
    write_config("wrong-password-kappa");
    let denied = tls_build(&fx, &host, &ca, "other", &env);
    assert_eq!(denied.status.code(), Some(75), "{}", stderr(&denied));
    assert!(
        stderr(&denied).contains("registry or service error (retryable)"),
        "{}",
        stderr(&denied)
    );
    assert!(!(stdout(&denied) + &stderr(&denied)).contains("wrong-password-kappa"));
    assert_eq!(fx.record().len(), 1);
}

/// The real buildctl (the pinned BuildKit peer, `make peers`) accepts the driver's whole command line: flags,
/// `--secret` and `--output` CSV (with a quoted annotation value holding commas), cache specs. Pointed at a port
/// where no buildkitd listens, it gets past argument parsing and fails connecting, which the driver reports as a
/// build error. (A real build needs Railpack's frontend image from ghcr.io.)
#[test]
fn real_buildctl_accepts_the_argv() {
    require_tools();
    let buildctl = kibaship_testsupport::peers::peer_binary("buildctl")
        .unwrap_or_else(|e| panic!("the BuildKit peer is required: {e}"));
    let reg = TestRegistry::start(RegistryMode::Plain).expect("start registry");
    let fx = Fixture::new("secrets_1.snap.json");
    fx.plant_secrets();
    fs::write(
        fx.root().join("ws/railpack/info.json"),
        r#"{"railpackVersion":"0.15.0","detectedProviders":["node","python"],"metadata":{"quote":"say \"hi\""},"success":true}"#,
    )
    .expect("info");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("tcp://127.0.0.1:{closed}");
    let buildctl_arg = buildctl.to_string_lossy().into_owned();
    let cache = fx.root().join("cache");
    let cache_arg = cache.to_string_lossy().into_owned();
    for extra in [
        vec![
            "--buildctl",
            buildctl_arg.as_str(),
            "--buildkit-host",
            addr.as_str(),
        ],
        vec![
            "--buildctl",
            buildctl_arg.as_str(),
            "--buildkit-host",
            addr.as_str(),
            "--build-cache-dir",
            cache_arg.as_str(),
        ],
    ] {
        let out = fx.build(
            &reg.host(),
            &["MY_SECRET", "MY_OTHER_SECRET", "HELLO_WORLD"],
            &extra,
            &[],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(70), "{err}");
        assert!(
            err.contains("annotation-index.dev.kibaship.railpack.providers=node,python"),
            "{err}"
        );
        assert!(
            !err.contains("Incorrect Usage") && !err.contains("parse error"),
            "buildctl rejected the argv: {err}"
        );
        assert!(
            err.contains("connection refused") || err.contains("Unavailable"),
            "{err}"
        );
    }
}

#[test]
fn standin_rejects_flags_buildctl_does_not_have() {
    require_tools();
    let out = Command::new(standin())
        .args([
            "build",
            "--frontend",
            "gateway.v0",
            "--provenance",
            "mode=max",
        ])
        .output()
        .expect("run stand-in");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("flag provided but not defined: -provenance")
    );
}
