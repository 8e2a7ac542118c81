//! `kibaship-step sign` end to end against real registries (docker-registry from the test harness) and a real
//! private Sigstore on loopback (`kibaship_testsupport::sigstore`): key signatures in both layouts and keyless
//! bundles, each checked by the real cosign v3.1.3 (peer) and by `kibaship_cosign::ImageVerifier`; bad
//! input with its exit code and message; the key password and the OIDC token planted and searched for in every
//! output. Two of the runs take their argv from the sign step of tasks/kibaship-sign.yaml, with the `$(...)`
//! variables replaced as Tekton would and the Task's volume mounts rebased under a temporary directory, so the
//! Task and the driver cannot drift apart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use kibaship_cosign::keyless::now_unix;
use kibaship_cosign::registry::{ImageReport, Layout};
use kibaship_cosign::{ImagePolicy, ImageVerifier, VerifyOptions};
use kibaship_oci::{ClientConfig, Reference, RegistryClient};
use kibaship_sign::SigningKey;
use kibaship_sigstore::{CertificateIdentity, IdentityPolicy, PublicKey, TrustedRoot, Verifier};
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use kibaship_testsupport::sigstore::{SigstoreOptions, TestSigstore};
use serde_json::Value;

/// Planted: must never appear in any output.
const PASSWORD: &str = "pl4nted-cosign-password-7f3a";
const WRONG_PASSWORD: &str = "pl4nted-wrong-password-91c2";
const EMAIL: &str = "tekton-signer@kibaship.test";

fn cosign() -> PathBuf {
    peer_binary("cosign").unwrap_or_else(|e| {
        panic!("the cosign peer (v3.1.3) is needed to check the signatures: run `make peers` ({e})")
    })
}

fn production_root() -> Verifier {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/sigstore/trusted-roots/production-trusted_root.json");
    Verifier::new(TrustedRoot::from_json(&fs::read(path).unwrap()).unwrap())
}

fn client(host: &str) -> RegistryClient {
    RegistryClient::new(ClientConfig {
        insecure_registries: vec![host.to_string()],
        use_docker_config: false,
        ..ClientConfig::default()
    })
    .unwrap()
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn digest_of(host: &str, image: &str) -> String {
    block_on(client(host).resolve_digest(&Reference::parse(image).unwrap(), None))
        .unwrap()
        .digest
        .to_string()
}

fn registry() -> TestRegistry {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    push_fixture_images(&reg).unwrap();
    reg
}

/// A run's exit code and both streams.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A working directory standing in for the pod: the Task's mount paths live under `root`.
struct Pod {
    dir: tempfile::TempDir,
    /// Everything every tool printed, searched for the planted secrets.
    transcript: String,
}

impl Pod {
    fn new() -> Pod {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("results")).unwrap();
        fs::create_dir_all(dir.path().join("docker-config")).unwrap();
        Pod {
            dir,
            transcript: String::new(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `path` of the Task (e.g. /kibaship/signing-key/cosign.key) as this pod has it.
    fn at(&self, task_path: &str) -> PathBuf {
        self.root().join(task_path.trim_start_matches('/'))
    }

    fn write(&self, task_path: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.at(task_path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        p
    }

    fn result(&self, name: &str) -> String {
        fs::read_to_string(self.root().join("results").join(name)).unwrap_or_default()
    }

    fn clear_results(&self) {
        fs::remove_dir_all(self.root().join("results")).unwrap();
        fs::create_dir_all(self.root().join("results")).unwrap();
    }

    /// `kibaship-step sign args` with a clean environment: no docker config, COSIGN_PASSWORD only if given.
    fn sign(&mut self, args: &[String], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kibaship-step"));
        cmd.arg("sign")
            .args(args)
            .env("HOME", self.root())
            .env("DOCKER_CONFIG", self.root().join("docker-config"))
            .env_remove("COSIGN_PASSWORD")
            .env_remove("SIGSTORE_ID_TOKEN")
            .env_remove("COSIGN_REPOSITORY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let run = Run::from(cmd.output().unwrap());
        self.record("kibaship-step sign", &run);
        run
    }

    /// The real cosign with `args`, in this pod's directory.
    fn cosign(&mut self, args: &[&str]) -> Run {
        let run = Run::from(
            Command::new(cosign())
                .args(args)
                .current_dir(self.root())
                .env("HOME", self.root())
                .env("DOCKER_CONFIG", self.root().join("docker-config"))
                .env_remove("COSIGN_PASSWORD")
                .env_remove("SIGSTORE_ID_TOKEN")
                .env_remove("COSIGN_REPOSITORY")
                .output()
                .unwrap(),
        );
        self.record(&format!("cosign {}", args.join(" ")), &run);
        run
    }

    fn record(&mut self, what: &str, run: &Run) {
        self.transcript
            .push_str(&format!("$ {what}\n{}\n{}\n", run.stdout, run.stderr));
    }

    /// Fails when `secret` appears in any output or result.
    fn assert_not_leaked(&self, secret: &str, what: &str) {
        assert!(!self.transcript.is_empty(), "nothing was recorded");
        let mut all = self.transcript.clone();
        for r in ["signatures", "signedDigest"] {
            all.push_str(&self.result(r));
        }
        assert!(!all.contains(secret), "{what} leaked into an output");
    }
}

fn assert_ok(run: &Run, what: &str) {
    assert_eq!(
        run.code,
        Some(0),
        "{what} failed:\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
}

fn assert_fails(run: &Run, code: i32, message: &str) {
    assert_eq!(
        run.code,
        Some(code),
        "expected exit {code} with {message:?}:\nstderr: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(message),
        "expected {message:?} in stderr:\n{}",
        run.stderr
    );
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A new cosign key, encrypted with PASSWORD, written where the Task mounts the signing-key Secret; returns the
/// public key PEM path.
fn plant_key(pod: &Pod) -> (SigningKey, PathBuf) {
    let key = SigningKey::generate().unwrap();
    pod.write(
        "/kibaship/signing-key/cosign.key",
        key.to_encrypted_pem(PASSWORD.as_bytes()).unwrap(),
    );
    let public = pod.write("/cosign.pub", key.public_key_pem().unwrap());
    (key, public)
}

fn key_options(key: &SigningKey, annotations: &[(&str, &str)]) -> VerifyOptions {
    VerifyOptions {
        identity: IdentityPolicy::Key(PublicKey::from_pem(&key.public_key_pem().unwrap()).unwrap()),
        verifier: Arc::new(production_root()),
        now: now_unix(),
        ignore_tlog: true,
        predicate_type: None,
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn verify(host: &str, image: &str, options: &VerifyOptions) -> ImageReport {
    verify_in(host, &Reference::parse(image).unwrap(), None, options)
}

/// The image's signatures through the one verification API, with the policy `options` describe, read beside the
/// image or in `signature_repository`.
fn verify_in(
    host: &str,
    image: &Reference,
    signature_repository: Option<&Reference>,
    options: &VerifyOptions,
) -> ImageReport {
    let mut policy = ImagePolicy::builder()
        .authority(options.identity.clone())
        .accept_without_transparency_log(options.ignore_tlog)
        .annotations(options.annotations.clone());
    if let Some(repository) = signature_repository {
        policy = policy.signature_repository(repository.clone());
    }
    let verifier = ImageVerifier::with_verifier(client(host), Arc::clone(&options.verifier));
    block_on(verifier.verify(image, &policy.build().unwrap(), options.now))
        .unwrap()
        .signatures()
        .cloned()
        .unwrap()
}

/// The layouts of the signatures that verified.
fn verified_layouts(report: &ImageReport) -> Vec<Layout> {
    report
        .signatures
        .iter()
        .filter(|s| s.verified())
        .map(|s| s.layout)
        .collect()
}

// ---- the Task's sign step, as Tekton would run it -------------------------------------------------------------

fn task() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tasks/kibaship-sign.yaml");
    serde_saphyr::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn sign_step(task: &Value) -> Value {
    task["spec"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "sign")
        .expect("the Task has a sign step")
        .clone()
}

/// The sign step's argv after `sign`, with `$(params.x)` taken from `params` (else the param's default),
/// `$(params.x[*])` expanded to the array's items, `$(results.x.path)` under the pod's results/, and every path
/// under one of the step's volume mounts rebased into the pod. Also checks the step runs the driver of its image.
fn task_args(pod: &Pod, params: &BTreeMap<&str, Vec<&str>>) -> Vec<String> {
    let task = task();
    let step = sign_step(&task);
    assert_eq!(step["command"][0], "/usr/local/bin/kibaship-step");
    let declared: BTreeMap<String, Value> = task["spec"]["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p.clone()))
        .collect();
    for p in params.keys() {
        assert!(declared.contains_key(*p), "the Task has no param {p}");
    }
    let value_of = |name: &str| -> Vec<String> {
        if let Some(v) = params.get(name) {
            return v.iter().map(|s| s.to_string()).collect();
        }
        let default = &declared
            .get(name)
            .unwrap_or_else(|| panic!("undeclared param {name}"))["default"];
        match default {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().unwrap().to_string())
                .collect(),
            _ => panic!("param {name} has no default and the test gave no value"),
        }
    };
    let mounts: Vec<String> = step["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap().to_string())
        .collect();
    let raw = step["args"].as_array().unwrap();
    assert_eq!(raw[0], "sign");
    let var = regex::Regex::new(r"\$\(([^)]*)\)").unwrap();
    let mut out = Vec::new();
    for arg in &raw[1..] {
        let arg = arg.as_str().unwrap();
        if let Some(name) = arg
            .strip_prefix("$(params.")
            .and_then(|r| r.strip_suffix("[*])"))
        {
            out.extend(value_of(name));
            continue;
        }
        let replaced = var.replace_all(arg, |c: &regex::Captures<'_>| {
            let inner = &c[1];
            if let Some(name) = inner.strip_prefix("params.") {
                let v = value_of(name);
                assert_eq!(v.len(), 1, "string param {name}");
                v[0].clone()
            } else if let Some(name) = inner
                .strip_prefix("results.")
                .and_then(|r| r.strip_suffix(".path"))
            {
                pod.root().join("results").join(name).display().to_string()
            } else {
                panic!("the test does not substitute $({inner})")
            }
        });
        let replaced = replaced.into_owned();
        let rebased = mounts
            .iter()
            .find(|m| replaced.starts_with(&format!("{m}/")))
            .map(|_| pod.at(&replaced).display().to_string());
        out.push(rebased.unwrap_or(replaced));
    }
    out
}

/// The env the Task gives the sign step that this test must supply: COSIGN_PASSWORD from the key Secret's
/// `cosign.password` (optional) and DOCKER_CONFIG at the docker-config mount.
fn task_env_contract() {
    let task = task();
    let step = sign_step(&task);
    let env = step["env"].as_array().unwrap();
    let password = env
        .iter()
        .find(|e| e["name"] == "COSIGN_PASSWORD")
        .expect("COSIGN_PASSWORD");
    let key_ref = &password["valueFrom"]["secretKeyRef"];
    assert_eq!(key_ref["name"], "$(params.signingKeySecret)");
    assert_eq!(key_ref["key"], "cosign.password");
    assert_eq!(key_ref["optional"], Value::Bool(true));
    let template_env = task["spec"]["stepTemplate"]["env"].as_array().unwrap();
    assert!(
        template_env
            .iter()
            .any(|e| e["name"] == "DOCKER_CONFIG" && e["value"] == "/kibaship/docker-config")
    );
    let volumes = task["spec"]["volumes"].as_array().unwrap();
    let token = volumes
        .iter()
        .find(|v| v["name"] == "sigstore-token")
        .expect("the projected token volume");
    let sat = &token["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(sat["audience"], "sigstore");
    assert_eq!(sat["expirationSeconds"], 600);
    let key = volumes.iter().find(|v| v["name"] == "signing-key").unwrap();
    assert_eq!(key["secret"]["optional"], Value::Bool(true));
    let config = volumes
        .iter()
        .find(|v| v["name"] == "sigstore-config")
        .unwrap();
    assert_eq!(config["configMap"]["optional"], Value::Bool(true));
}

// ---- tests ----------------------------------------------------------------------------------------------------

#[test]
fn key_mode_each_layout_is_verified_by_cosign_and_kibaship() {
    let reg = registry();
    let host = reg.host();
    let mut pod = Pod::new();
    let (key, public) = plant_key(&pod);
    let public = public.display().to_string();
    let key_file = pod
        .at("/kibaship/signing-key/cosign.key")
        .display()
        .to_string();
    let results = |pod: &Pod| {
        [
            "--signatures-result".to_string(),
            pod.root().join("results/signatures").display().to_string(),
            "--signed-digest-result".to_string(),
            pod.root()
                .join("results/signedDigest")
                .display()
                .to_string(),
        ]
    };

    for (fixture, layout, want) in [
        ("app", "legacy", Layout::LegacyTag),
        ("config-only", "bundle", Layout::BundleReferrer),
    ] {
        pod.clear_results();
        let tagged = format!("{host}/fixtures/{fixture}:v1");
        let digest = digest_of(&host, &tagged);
        // The image result names a tag that no longer exists: only the digest is used, never the tag.
        let image = format!("{host}/fixtures/{fixture}:moved-since-the-build");
        let mut a = args(&[
            "--image",
            &image,
            "--digest",
            &digest,
            "--mode",
            "key",
            "--layout",
            layout,
            "--key-file",
            &key_file,
            "--identity-token-file",
            "",
            "--signing-config",
            "",
            "--trusted-root",
            "",
            "--signature-repository",
            "",
            "--insecure-registry",
            "true",
            "--annotation",
            "team=payments",
            "build=42",
        ]);
        a.extend(results(&pod));
        let run = pod.sign(&a, &[("COSIGN_PASSWORD", PASSWORD)]);
        assert_ok(&run, &format!("sign --layout {layout}"));
        let by_digest = format!("{host}/fixtures/{fixture}@{digest}");
        assert_eq!(pod.result("signedDigest"), digest);
        let sigs = pod.result("signatures");
        assert_eq!(sigs.lines().count(), 1, "{sigs}");
        match want {
            Layout::LegacyTag => assert_eq!(
                sigs,
                format!("{host}/fixtures/{fixture}:{}.sig", digest.replace(':', "-"))
            ),
            Layout::BundleReferrer => {
                assert!(
                    sigs.starts_with(&format!("{host}/fixtures/{fixture}@sha256:")),
                    "{sigs}"
                )
            }
            other => panic!("the cases above ask for no {other:?}"),
        }
        assert!(run.stdout.contains(&format!("signedDigest={digest}")));
        assert!(run.stdout.contains(&format!("signature={sigs}")));

        // kibaship-cosign: exactly this layout verifies, with the signed annotations.
        let report = verify(
            &host,
            &by_digest,
            &key_options(&key, &[("team", "payments"), ("build", "42")]),
        );
        assert_eq!(verified_layouts(&report), vec![want], "{report:?}");
        let wrong_key = SigningKey::generate().unwrap();
        assert!(!verify(&host, &by_digest, &key_options(&wrong_key, &[])).verified());

        // The real cosign v3.1.3.
        let r = pod.cosign(&[
            "verify",
            "--key",
            &public,
            "--insecure-ignore-tlog",
            "--allow-http-registry",
            "-a",
            "team=payments",
            &by_digest,
        ]);
        assert_ok(&r, &format!("cosign verify of the {layout} signature"));
        assert!(r.stdout.contains("\"team\":\"payments\""), "{}", r.stdout);
        let r = pod.cosign(&[
            "verify",
            "--key",
            &public,
            "--insecure-ignore-tlog",
            "--allow-http-registry",
            "-a",
            "team=someone-else",
            &by_digest,
        ]);
        assert_ne!(r.code, Some(0), "cosign accepted a wrong annotation");
    }

    // --signature-repository (COSIGN_REPOSITORY): the signature goes there, under the image's digest.
    pod.clear_results();
    let multiarch = format!("{host}/fixtures/multiarch:v1");
    let digest = digest_of(&host, &multiarch);
    let store = format!("{host}/signatures/store");
    let mut a = args(&[
        "--image",
        &multiarch,
        "--digest",
        &digest,
        "--mode",
        "key",
        "--key-file",
        &key_file,
        "--signature-repository",
        &store,
        "--insecure-registry",
        "true",
    ]);
    a.extend(results(&pod));
    let run = pod.sign(&a, &[("COSIGN_PASSWORD", PASSWORD)]);
    assert_ok(&run, "sign --signature-repository");
    assert_eq!(
        pod.result("signatures"),
        format!("{store}:{}.sig", digest.replace(':', "-"))
    );
    let image = Reference::parse(&format!("{host}/fixtures/multiarch@{digest}")).unwrap();
    let elsewhere = |repo: Option<&Reference>| {
        verify_in(&host, &image, repo, &key_options(&key, &[])).verified()
    };
    assert!(elsewhere(Some(&Reference::parse(&store).unwrap())));
    assert!(
        !elsewhere(None),
        "the signature was written beside the image"
    );
    pod.assert_not_leaked(PASSWORD, "the key password");
}

#[test]
fn the_task_yaml_args_sign_in_both_layouts_with_a_key() {
    task_env_contract();
    let reg = registry();
    let host = reg.host();
    let mut pod = Pod::new();
    let (key, public) = plant_key(&pod);
    let image = format!("{host}/fixtures/docker-app:v1");
    let digest = digest_of(&host, &image);
    let params = BTreeMap::from([
        ("image", vec![image.as_str()]),
        ("digest", vec![digest.as_str()]),
        ("mode", vec!["key"]),
        ("layout", vec!["both"]),
        ("annotations", vec!["pipeline=railpack", "commit=960ef4f"]),
        ("insecureRegistry", vec!["true"]),
    ]);
    let argv = task_args(&pod, &params);
    assert!(
        argv.iter()
            .any(|a| a.ends_with("/kibaship/signing-key/cosign.key")),
        "{argv:?}"
    );
    let run = pod.sign(&argv, &[("COSIGN_PASSWORD", PASSWORD)]);
    assert_ok(&run, "kibaship-step sign with the Task's args");
    assert_eq!(pod.result("signedDigest"), digest);
    let sigs = pod.result("signatures");
    let lines: Vec<&str> = sigs.lines().collect();
    assert_eq!(lines.len(), 2, "{sigs}");
    assert!(lines[0].ends_with(".sig"), "{sigs}");
    assert!(
        lines[1].starts_with(&format!("{host}/fixtures/docker-app@sha256:")),
        "{sigs}"
    );
    let by_digest = format!("{host}/fixtures/docker-app@{digest}");
    let report = verify(
        &host,
        &by_digest,
        &key_options(&key, &[("pipeline", "railpack"), ("commit", "960ef4f")]),
    );
    let mut layouts = verified_layouts(&report);
    layouts.sort_by_key(|l| format!("{l:?}"));
    assert_eq!(
        layouts,
        vec![Layout::BundleReferrer, Layout::LegacyTag],
        "{report:?}"
    );
    let r = pod.cosign(&[
        "verify",
        "--key",
        &public.display().to_string(),
        "--insecure-ignore-tlog",
        "--allow-http-registry",
        "-a",
        "pipeline=railpack",
        &by_digest,
    ]);
    assert_ok(&r, "cosign verify of the Task's signatures");

    // Keyless through the same args: without the projected token the step names what is missing.
    let keyless = BTreeMap::from([
        ("image", vec![image.as_str()]),
        ("digest", vec![digest.as_str()]),
        ("mode", vec!["keyless"]),
        ("insecureRegistry", vec!["true"]),
    ]);
    let run = pod.sign(&task_args(&pod, &keyless), &[]);
    assert_fails(&run, 64, "cannot read identity token file");
    assert!(
        run.stderr.contains("var/run/sigstore/token"),
        "{}",
        run.stderr
    );
    pod.assert_not_leaked(PASSWORD, "the key password");
}

#[test]
fn keyless_through_the_task_args_is_verified_by_cosign_and_kibaship() {
    let sigstore = TestSigstore::start().unwrap();
    let reg = registry();
    let host = reg.host();
    let mut pod = Pod::new();
    let token = sigstore.mint_token(EMAIL).unwrap();
    pod.write("/var/run/sigstore/token", format!("{token}\n"));
    pod.write(
        "/kibaship/sigstore/signing_config.json",
        fs::read(sigstore.signing_config_path()).unwrap(),
    );
    pod.write(
        "/kibaship/sigstore/trusted_root.json",
        fs::read(sigstore.trusted_root_path()).unwrap(),
    );
    // A key Secret is mounted too (the Task mounts it whenever it exists): keyless ignores it.
    plant_key(&pod);
    let image = format!("{host}/fixtures/app:v1");
    let digest = digest_of(&host, &image);
    let params = BTreeMap::from([
        ("image", vec![image.as_str()]),
        ("digest", vec![digest.as_str()]),
        ("mode", vec!["keyless"]),
        (
            "trustedRootPath",
            vec!["/kibaship/sigstore/trusted_root.json"],
        ),
        ("annotations", vec!["pipeline=railpack"]),
        ("insecureRegistry", vec!["true"]),
    ]);
    let run = pod.sign(&task_args(&pod, &params), &[]);
    assert_ok(&run, "keyless sign with the Task's args");
    assert!(
        run.stderr.contains(&format!("keyless as {EMAIL}")),
        "{}",
        run.stderr
    );
    assert_eq!(pod.result("signedDigest"), digest);
    let sigs = pod.result("signatures");
    assert_eq!(
        sigs.lines().count(),
        1,
        "default keyless layout is the bundle: {sigs}"
    );
    assert!(
        sigs.starts_with(&format!("{host}/fixtures/app@sha256:")),
        "{sigs}"
    );

    let by_digest = format!("{host}/fixtures/app@{digest}");
    let root_json = fs::read(sigstore.trusted_root_path()).unwrap();
    let options = |email: &str| VerifyOptions {
        identity: IdentityPolicy::Certificate(CertificateIdentity::exact(email, sigstore.issuer())),
        verifier: Arc::new(Verifier::new(TrustedRoot::from_json(&root_json).unwrap())),
        now: now_unix(),
        ignore_tlog: false,
        predicate_type: None,
        annotations: BTreeMap::from([("pipeline".to_string(), "railpack".to_string())]),
    };
    let report = verify(&host, &by_digest, &options(EMAIL));
    assert_eq!(
        verified_layouts(&report),
        vec![Layout::BundleReferrer],
        "{report:?}"
    );
    assert!(!verify(&host, &by_digest, &options("someone-else@kibaship.test")).verified());
    let trusted_root = sigstore.trusted_root_path().display().to_string();
    let cosign_verify = |pod: &mut Pod, identity: &str| {
        pod.cosign(&[
            "verify",
            "--trusted-root",
            &trusted_root,
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            sigstore.issuer(),
            "--allow-http-registry",
            &by_digest,
        ])
    };
    let r = cosign_verify(&mut pod, EMAIL);
    assert_ok(&r, "cosign verify of the keyless bundle");
    let r = cosign_verify(&mut pod, "someone-else@kibaship.test");
    assert_ne!(r.code, Some(0), "cosign accepted another identity");

    // A signature that does not verify against the trusted root given is refused, and nothing is uploaded.
    pod.write(
        "/kibaship/sigstore/trusted_root.json",
        fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata/sigstore/trusted-roots/production-trusted_root.json"),
        )
        .unwrap(),
    );
    pod.clear_results();
    let run = pod.sign(&task_args(&pod, &params), &[]);
    assert_fails(&run, 77, "kibaship-step: signing refused: ");
    assert!(
        run.stderr
            .contains("does not verify against the trusted root"),
        "{}",
        run.stderr
    );
    assert!(pod.result("signatures").is_empty());
    assert_eq!(
        verify(&host, &by_digest, &options(EMAIL)).signatures.len(),
        1,
        "the refused signature was uploaded"
    );

    // An unusable token is named without being printed.
    let planted = "eyJhbGciOiJub25lIn0.cGxhbnRlZC1ub3QtYS1jbGFpbXM.pl4nted-token-signature";
    pod.write("/var/run/sigstore/token", planted);
    pod.clear_results();
    let run = pod.sign(&task_args(&pod, &params), &[]);
    assert_fails(&run, 64, "unusable identity token from");
    pod.assert_not_leaked(&token, "the OIDC token");
    pod.assert_not_leaked(
        token.rsplit('.').next().unwrap(),
        "the OIDC token's signature",
    );
    pod.assert_not_leaked("pl4nted-token-signature", "the planted token");
}

/// What is wrong, the argv, the env, the exit code and the message expected.
type BadCase<'a> = (&'a str, Vec<String>, &'a [(&'a str, &'a str)], i32, &'a str);

#[test]
fn bad_input_gives_the_right_exit_code_and_message() {
    let reg = registry();
    let host = reg.host();
    let mut pod = Pod::new();
    plant_key(&pod);
    let image = format!("{host}/fixtures/app:v1");
    let digest = digest_of(&host, &image);
    let key_file = pod
        .at("/kibaship/signing-key/cosign.key")
        .display()
        .to_string();
    let plain_key = pod.write(
        "/plain.key",
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n",
    );
    let missing_digest = format!("sha256:{}", "0".repeat(64));
    let base = |digest: &str, mode: &str, key: &str| {
        args(&[
            "--image",
            &image,
            "--digest",
            digest,
            "--mode",
            mode,
            "--key-file",
            key,
            "--insecure-registry",
            "true",
        ])
    };
    let pw = [("COSIGN_PASSWORD", PASSWORD)];
    let wrong = [("COSIGN_PASSWORD", WRONG_PASSWORD)];
    let cases: Vec<BadCase<'_>> = vec![
        (
            "bad digest",
            base("sha256:xyz", "key", &key_file),
            &pw,
            64,
            "--digest \"sha256:xyz\" is not a digest",
        ),
        (
            "empty digest",
            base("", "key", &key_file),
            &pw,
            64,
            "--digest is empty: pass the build task's digest result",
        ),
        (
            "key mode without a key",
            base(&digest, "key", ""),
            &pw,
            64,
            "--mode key needs --key-file",
        ),
        (
            "keyless without a token",
            base(&digest, "keyless", ""),
            &[],
            64,
            "--mode keyless needs --identity-token-file",
        ),
        (
            "wrong password",
            base(&digest, "key", &key_file),
            &wrong,
            64,
            "wrong password",
        ),
        (
            "encrypted key without COSIGN_PASSWORD",
            base(&digest, "key", &key_file),
            &[],
            64,
            "is encrypted: set COSIGN_PASSWORD",
        ),
        (
            "a key file that is no key",
            base(&digest, "key", &plain_key.display().to_string()),
            &[],
            64,
            "cannot load key",
        ),
        (
            "unknown mode",
            base(&digest, "none", &key_file),
            &pw,
            64,
            "--mode \"none\" is not key or keyless",
        ),
        (
            "a digest the repository does not hold",
            base(&missing_digest, "key", &key_file),
            &pw,
            64,
            "not found",
        ),
    ];
    for (what, argv, env, code, message) in cases {
        let run = pod.sign(&argv, env);
        assert_eq!(run.code, Some(code), "{what}: {}", run.stderr);
        assert!(
            run.stderr.contains(message),
            "{what}: expected {message:?} in:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.starts_with("kibaship-step: bad parameters: "),
            "{what}: {}",
            run.stderr
        );
        assert!(pod.result("signatures").is_empty(), "{what}: wrote results");
    }

    // A registry that cannot be reached is a retryable failure.
    drop(reg);
    let run = pod.sign(&base(&digest, "key", &key_file), &pw);
    assert_fails(
        &run,
        75,
        "kibaship-step: registry or service error (retryable): ",
    );
    pod.assert_not_leaked(PASSWORD, "the key password");
    pod.assert_not_leaked(WRONG_PASSWORD, "the wrong key password");
}

/// The Tasks run as uid 1000 and mount Secrets with mode 0440: without the pod's fsGroup the key is unreadable
/// (found by running kibaship-sign in real Tekton, crates/step/tests/tekton_cluster.rs). The step says what to
/// set instead of only "Permission denied". Run as uid 1000 through util-linux's `setpriv`.
#[test]
fn an_unreadable_key_names_the_fsgroup_the_tasks_need() {
    let pod = Pod::new();
    plant_key(&pod);
    let key_file = pod.at("/kibaship/signing-key/cosign.key");
    fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o440),
    )
    .unwrap();
    // Everything up to the key is reachable for uid 1000; the key itself is root's, mode 0440.
    fs::set_permissions(
        pod.root(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=1000", "--regid=1000", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_kibaship-step"))
        .args([
            "sign",
            "--image",
            "127.0.0.1:1/app:v1",
            "--digest",
            &format!("sha256:{}", "a".repeat(64)),
            "--mode",
            "key",
            "--key-file",
            key_file.to_str().unwrap(),
        ])
        .env("HOME", pod.root())
        .env("COSIGN_PASSWORD", PASSWORD)
        .output()
        .expect("setpriv (util-linux)");
    let run = Run::from(out);
    assert_fails(&run, 64, "Permission denied");
    assert!(
        run.stderr.contains("securityContext.fsGroup: 1000"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_registry_that_refuses_the_credentials_is_a_refusal_not_a_retry() {
    let reg = TestRegistry::start(RegistryMode::BasicTls).unwrap();
    let host = reg.host();
    let ca = reg
        .ca_pem_path()
        .expect("the TLS registry's CA")
        .to_path_buf();
    let mut pod = Pod::new();
    plant_key(&pod);
    // Wrong credentials for the registry, in the docker config the Task mounts (DOCKER_CONFIG).
    use base64::Engine as _;
    let auth =
        base64::engine::general_purpose::STANDARD.encode("kibaship:pl4nted-wrong-registry-pass");
    fs::write(
        pod.root().join("docker-config/config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let run = pod.sign(
        &args(&[
            "--image",
            &format!("{host}/fixtures/app:v1"),
            "--digest",
            &format!("sha256:{}", "a".repeat(64)),
            "--mode",
            "key",
            "--key-file",
            &pod.at("/kibaship/signing-key/cosign.key")
                .display()
                .to_string(),
            "--registry-ca-file",
            &ca.display().to_string(),
        ]),
        &[("COSIGN_PASSWORD", PASSWORD)],
    );
    assert_fails(&run, 77, "kibaship-step: signing refused: ");
    assert!(run.stderr.contains("denied access"), "{}", run.stderr);
    pod.assert_not_leaked("pl4nted-wrong-registry-pass", "the registry password");
    pod.assert_not_leaked(&auth, "the registry auth");
    pod.assert_not_leaked(PASSWORD, "the key password");
}

#[test]
fn keyless_both_layouts_log_in_rekor_v1_and_v2_and_verify() {
    let sigstore = TestSigstore::start_with(SigstoreOptions {
        rekor_v1: true,
        ..Default::default()
    })
    .unwrap();
    let reg = registry();
    let host = reg.host();
    let mut pod = Pod::new();
    let token = sigstore.mint_token(EMAIL).unwrap();
    let token_file = pod.write("/var/run/sigstore/token", &token);
    let image = format!("{host}/fixtures/docker-app:v1");
    let digest = digest_of(&host, &image);
    let trusted_root = sigstore.trusted_root_path().display().to_string();
    let run = pod.sign(
        &args(&[
            "--image",
            &image,
            "--digest",
            &digest,
            "--mode",
            "keyless",
            "--layout",
            "both",
            "--identity-token-file",
            &token_file.display().to_string(),
            "--signing-config",
            &sigstore.signing_config_path().display().to_string(),
            "--trusted-root",
            &trusted_root,
            "--insecure-registry",
            "true",
            "--signatures-result",
            &pod.root().join("results/signatures").display().to_string(),
        ]),
        &[],
    );
    assert_ok(&run, "keyless sign --layout both");
    let sigs = pod.result("signatures");
    let lines: Vec<&str> = sigs.lines().collect();
    assert_eq!(lines.len(), 2, "{sigs}");
    assert!(
        lines[0].ends_with(".sig") && lines[1].contains("@sha256:"),
        "{sigs}"
    );

    let by_digest = format!("{host}/fixtures/docker-app@{digest}");
    let root_json = fs::read(sigstore.trusted_root_path()).unwrap();
    let report = verify(
        &host,
        &by_digest,
        &VerifyOptions {
            identity: IdentityPolicy::Certificate(CertificateIdentity::exact(
                EMAIL,
                sigstore.issuer(),
            )),
            verifier: Arc::new(Verifier::new(TrustedRoot::from_json(&root_json).unwrap())),
            now: now_unix(),
            ignore_tlog: false,
            predicate_type: None,
            annotations: BTreeMap::new(),
        },
    );
    let mut layouts = verified_layouts(&report);
    layouts.sort_by_key(|l| format!("{l:?}"));
    assert_eq!(
        layouts,
        vec![Layout::BundleReferrer, Layout::LegacyTag],
        "{report:?}"
    );
    // cosign reads the legacy layer (Rekor v1 SET) and the bundle (Rekor v2, TSA) separately.
    for extra in [&["--new-bundle-format=false"][..], &[][..]] {
        let mut a = vec!["verify"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[
            "--trusted-root",
            &trusted_root,
            "--certificate-identity",
            EMAIL,
            "--certificate-oidc-issuer",
            sigstore.issuer(),
            "--allow-http-registry",
            &by_digest,
        ]);
        let r = pod.cosign(&a);
        assert_ok(&r, &format!("cosign {}", a.join(" ")));
    }
    pod.assert_not_leaked(&token, "the OIDC token");
    pod.assert_not_leaked(
        token.rsplit('.').next().unwrap(),
        "the OIDC token's signature",
    );
}

#[test]
fn a_trickling_registry_ends_the_sign_step_at_its_timeout() {
    use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
    let reg = registry();
    let digest = digest_of(&reg.host(), &format!("{}/fixtures/app:v1", reg.host()));
    // Every registry answer 3 bytes every 250 ms: minutes each, never idle long enough for a read timeout.
    let proxy = FaultProxy::start_persistent(
        &reg.host(),
        Fault::Trickle {
            bytes: 3,
            every_ms: 250,
        },
    )
    .unwrap();
    let host = proxy.host();
    let mut pod = Pod::new();
    plant_key(&pod);
    let key_file = pod
        .at("/kibaship/signing-key/cosign.key")
        .display()
        .to_string();
    let image = format!("{host}/fixtures/app:v1");
    let sign_args = |timeout: &str| {
        args(&[
            "--image",
            &image,
            "--digest",
            &digest,
            "--mode",
            "key",
            "--layout",
            "legacy",
            "--key-file",
            &key_file,
            "--insecure-registry",
            "true",
            "--timeout",
            timeout,
        ])
    };
    let run = pod.sign(&sign_args("1s"), &[("COSIGN_PASSWORD", PASSWORD)]);
    assert_fails(&run, 75, "timed out after 1s ");
    assert!(run.stderr.contains(&host), "{}", run.stderr);
    let run = pod.sign(&sign_args("soon"), &[("COSIGN_PASSWORD", PASSWORD)]);
    assert_fails(&run, 64, "--timeout: invalid duration \"soon\"");
}
