//! What the CLI integration tests share: the tools (kibaverify, the real cosign and crane) run in a test's
//! directory against its registry, their outcomes, the set-ups several tests make (a registry with the fixture
//! images, key pairs, a private Sigstore with an OIDC token, slsa-github-generator's saved layout), the cosign
//! invocations they repeat, and the checks they share.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kibaship_oci::Reference;
use kibaship_oci::manifest::ImageManifest;
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use kibaship_testsupport::sigstore::{SigstoreOptions, TestSigstore};

/// The `kibaverify` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_kibaverify");

/// The identity (regexp) of slsa-github-generator's container workflow certificates.
pub const SLSA_GENERATOR_IDENTITY_REGEXP: &str =
    "^https://github.com/slsa-framework/slsa-github-generator/";
/// GitHub Actions' OIDC issuer.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// A finished command: exit code (-1 if killed by a signal) and its output as text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `cmd` to completion.
pub fn run(cmd: &mut Command) -> Run {
    Run::from(cmd.output().unwrap())
}

/// Runs `cmd` and appends both output streams to `transcript` (searched afterwards for planted secrets).
pub fn run_logged(cmd: &mut Command, transcript: &mut String) -> Run {
    let r = run(cmd);
    transcript.push_str(&r.stdout);
    transcript.push_str(&r.stderr);
    r
}

/// Fails with both output streams when the exit code is not `code`.
pub fn assert_code(r: &Run, code: i32, what: &str) {
    assert_eq!(
        r.code, code,
        "{what}\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
}

/// Fails unless the command exited with `code` and said `message` on stderr.
pub fn assert_exit_with_message(r: &Run, code: i32, message: &str) {
    assert_code(r, code, message);
    assert!(
        r.stderr.contains(message),
        "expected {message:?} in stderr:\n{}",
        r.stderr
    );
}

/// Runs `kibaverify` on a pseudo-terminal (util-linux `script`), typing `lines` at its prompts.
pub fn on_terminal(dir: &Path, args: &str, lines: &[&str]) -> std::process::Output {
    let mut typed = String::from("sleep 1");
    for line in lines {
        // Each answer waits for its prompt: the prompt turns echo off and may discard earlier typeahead.
        typed.push_str(&format!("; printf '%s\\n' '{line}'; sleep 1"));
    }
    typed.push_str("; sleep 3");
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "({typed}) | script -qec \"{BIN} {args}\" /dev/null"
        ))
        .current_dir(dir)
        .env_remove("COSIGN_PASSWORD")
        .output()
        .expect("util-linux `script` runs the command on a pseudo-terminal")
}

/// Fails when the planted `secret` appears anywhere in `transcript`.
pub fn assert_not_leaked(transcript: &str, secret: &str, what: &str) {
    assert!(!transcript.is_empty(), "nothing was recorded");
    assert!(
        !transcript.contains(secret),
        "{what} leaked into an output stream"
    );
}

/// A test registry in `mode` holding the fixture images.
pub fn registry_with_fixtures(mode: RegistryMode) -> TestRegistry {
    let reg = TestRegistry::start(mode).unwrap();
    push_fixture_images(&reg).unwrap();
    reg
}

/// What the tools run in: the test's directory (working directory and HOME, no docker config, none of the
/// caller's SIGSTORE_ID_TOKEN / COSIGN_REPOSITORY), the plain-HTTP test registry kibaverify is pointed at (if
/// any), and the COSIGN_PASSWORD planted for the keys the test generates (if any).
pub struct Tools<'a> {
    pub dir: &'a Path,
    pub registry: Option<String>,
    pub password: Option<&'a str>,
}

impl<'a> Tools<'a> {
    /// The tools in `dir`, pointed at `reg`, with `password` for the keys.
    pub fn new(dir: &'a Path, reg: &TestRegistry, password: Option<&'a str>) -> Tools<'a> {
        Tools {
            dir,
            registry: Some(reg.host()),
            password,
        }
    }

    fn command(&self, program: impl AsRef<OsStr>, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.current_dir(self.dir)
            .env("HOME", self.dir)
            .env("DOCKER_CONFIG", self.dir.join("no-docker-config"))
            .env_remove("SIGSTORE_ID_TOKEN")
            .env_remove("COSIGN_REPOSITORY")
            .args(args);
        if let Some(password) = self.password {
            c.env("COSIGN_PASSWORD", password);
        }
        c
    }

    /// The tools in `dir` without a registry (key and blob commands), with `password` for the keys.
    pub fn without_registry(dir: &'a Path, password: &'a str) -> Tools<'a> {
        Tools {
            dir,
            registry: None,
            password: Some(password),
        }
    }

    /// `kibaverify args`, told to reach the test registry (if any) over plain HTTP.
    pub fn kibaverify(&self, args: &[&str]) -> Command {
        let mut c = self.kibaverify_without_registry(args);
        if let Some(host) = &self.registry {
            c.args(["--insecure-registry", host]);
        }
        c
    }

    /// `kibaverify args` for the subcommands that take no registry flag (`generate-key-pair`).
    pub fn kibaverify_without_registry(&self, args: &[&str]) -> Command {
        self.command(BIN, args)
    }

    /// The real cosign (peer).
    pub fn cosign(&self, args: &[&str]) -> Command {
        self.command(peer("cosign"), args)
    }

    /// The real crane (peer).
    pub fn crane(&self, args: &[&str]) -> Command {
        self.command(peer("crane"), args)
    }

    /// `host/fixtures/<name>:v1` on the test registry.
    pub fn fixture(&self, name: &str) -> String {
        format!("{}/fixtures/{name}:v1", self.host())
    }

    /// The test registry's `host:port`.
    pub fn host(&self) -> &str {
        self.registry
            .as_deref()
            .expect("these tools have no registry")
    }

    /// `image` by digest (`repo@sha256:...`), as `kibaverify digest` prints it.
    pub fn image_by_digest(&self, image: &str, transcript: &mut String) -> String {
        let r = run_logged(&mut self.kibaverify(&["digest", image]), transcript);
        assert_code(&r, 0, "kibaverify digest");
        r.stdout.trim().to_string()
    }

    /// `kibaverify generate-key-pair --output-key-prefix ours`: `ours.key` and `ours.pub`.
    pub fn generate_our_key_pair(&self, transcript: &mut String) {
        let r = run_logged(
            &mut self.kibaverify_without_registry(&[
                "generate-key-pair",
                "--output-key-prefix",
                "ours",
            ]),
            transcript,
        );
        assert_code(&r, 0, "kibaverify generate-key-pair");
    }

    /// Our key pair (`ours.key`, `ours.pub`) and cosign's (`cosign.key`, `cosign.pub`).
    pub fn generate_both_key_pairs(&self, transcript: &mut String) {
        self.generate_our_key_pair(transcript);
        let r = run_logged(&mut self.cosign(&["generate-key-pair"]), transcript);
        assert_code(&r, 0, "cosign generate-key-pair");
    }

    /// `kibaverify <command> image --key key --insecure-ignore-tlog extra...` (`verify` or `verify-attestation`).
    pub fn verify_with_key(
        &self,
        command: &str,
        image: &str,
        key: &str,
        extra: &[&str],
    ) -> Command {
        let mut c = self.kibaverify(&[command, image, "--key", key, "--insecure-ignore-tlog"]);
        c.args(extra);
        c
    }

    /// `cosign verify --key key --insecure-ignore-tlog image` (no transparency log: the key signatures here have
    /// none).
    pub fn cosign_verify_with_key(&self, key: &str, image: &str) -> Command {
        self.cosign(&[
            "verify",
            "--key",
            key,
            "--insecure-ignore-tlog",
            "--allow-http-registry",
            image,
        ])
    }

    /// `cosign args... image` for a key signature or attestation without a transparency log, in the legacy
    /// layout or cosign v3's bundle.
    fn cosign_without_tlog(&self, args: &[&str], legacy: bool, image_by_digest: &str) -> Command {
        let mut c = self.cosign(args);
        c.args([
            "--tlog-upload=false",
            "--use-signing-config=false",
            "--allow-http-registry",
            "--yes",
        ]);
        if legacy {
            c.arg("--new-bundle-format=false");
        }
        c.arg(image_by_digest);
        c
    }

    /// `cosign sign --key key` without a transparency log, in the legacy `.sig` layout or cosign v3's bundle.
    pub fn cosign_sign_with_key(&self, key: &str, legacy: bool, image_by_digest: &str) -> Command {
        self.cosign_without_tlog(&["sign", "--key", key], legacy, image_by_digest)
    }

    /// `cosign attest --key cosign.key --predicate predicate --type predicate_type` without a transparency log,
    /// in the legacy `.att` layout or cosign v3's bundle.
    pub fn cosign_attest_with_key(
        &self,
        predicate: &str,
        predicate_type: &str,
        legacy: bool,
        image_by_digest: &str,
    ) -> Command {
        self.cosign_without_tlog(
            &[
                "attest",
                "--key",
                "cosign.key",
                "--predicate",
                predicate,
                "--type",
                predicate_type,
            ],
            legacy,
            image_by_digest,
        )
    }

    /// Pushes slsa-github-generator's saved cosign layout (image index + `.att`) with crane, and returns
    /// `repo:v1`.
    pub fn push_slsa_layout(&self, transcript: &mut String) -> String {
        let layout =
            testdata().join("slsa/gha_generic_container/v2.1.0/container_workflow_dispatch");
        let digest = std::fs::read_to_string(layout.with_extension("digest")).unwrap();
        let digest = digest.trim();
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let att = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["kind"] == "dev.cosignproject.cosign/atts")
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string();
        // crane pushes the whole layout (image index and attestation manifest) by digest; then tags.
        let repo = format!("{}/slsa/container", self.host());
        let steps: [(&str, Vec<String>); 3] = [
            (
                "crane push layout",
                vec![
                    "push".into(),
                    "--insecure".into(),
                    "--index".into(),
                    layout.to_str().unwrap().into(),
                    format!("{repo}:layout"),
                ],
            ),
            (
                "crane tag image",
                vec![
                    "tag".into(),
                    "--insecure".into(),
                    format!("{repo}@{digest}"),
                    "v1".into(),
                ],
            ),
            (
                "crane tag attestation",
                vec![
                    "tag".into(),
                    "--insecure".into(),
                    format!("{repo}@{att}"),
                    format!("{}.att", digest.replace(':', "-")),
                ],
            ),
        ];
        for (what, args) in steps {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            assert_code(&run_logged(&mut self.crane(&args), transcript), 0, what);
        }
        format!("{repo}:v1")
    }
}

fn peer(name: &str) -> PathBuf {
    peer_binary(name).unwrap_or_else(|_| panic!("the {name} peer is not built: run `make peers`"))
}

/// The repository's `testdata/`.
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// The signer policy slsa-github-generator's attestations are checked with: its workflows' identity from
/// `issuer`, against `trusted_root`.
pub fn slsa_generator_policy<'a>(issuer: &'a str, trusted_root: &'a str) -> [&'a str; 6] {
    [
        "--certificate-identity-regexp",
        SLSA_GENERATOR_IDENTITY_REGEXP,
        "--certificate-oidc-issuer",
        issuer,
        "--trusted-root",
        trusted_root,
    ]
}

/// The public-good Sigstore trusted root (production), which slsa-github-generator's certificates chain to.
pub fn production_trusted_root() -> String {
    testdata()
        .join("sigstore/trusted-roots/production-trusted_root.json")
        .display()
        .to_string()
}

/// The private Sigstore with Rekor v1 (on Trillian) beside Rekor v2.
pub const WITH_REKOR_V1: SigstoreOptions = SigstoreOptions {
    rekor_v1: true,
    listen: None,
    kubernetes_issuer: None,
};

/// A private Sigstore on loopback and a registry with the fixture images, a working directory, and an OIDC token
/// for one identity (also written to `token` in the directory, as a Tekton projected token).
pub struct KeylessStack {
    pub sigstore: TestSigstore,
    pub reg: TestRegistry,
    pub tmp: tempfile::TempDir,
    pub token: String,
    pub token_file: String,
    pub trusted_root: String,
    pub signing_config: String,
    pub issuer: String,
}

impl KeylessStack {
    /// Starts the Sigstore services in `options` and a registry in `mode`, and mints a token for `email`.
    pub fn start(options: SigstoreOptions, mode: RegistryMode, email: &str) -> KeylessStack {
        let sigstore = TestSigstore::start_with(options).unwrap();
        let reg = registry_with_fixtures(mode);
        let tmp = tempfile::tempdir().unwrap();
        let token = sigstore.mint_token(email).unwrap();
        let token_file = tmp.path().join("token");
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        KeylessStack {
            trusted_root: sigstore.trusted_root_path().display().to_string(),
            signing_config: sigstore.signing_config_path().display().to_string(),
            issuer: sigstore.issuer().to_string(),
            token_file: token_file.display().to_string(),
            token,
            sigstore,
            reg,
            tmp,
        }
    }

    /// The tools, in this stack's directory against its registry, without a key password.
    pub fn tools(&self) -> Tools<'_> {
        Tools::new(self.tmp.path(), &self.reg, None)
    }

    /// `kibaverify args... --keyless` with this stack's signing config, the token file and the trusted root (to
    /// check what it signed before uploading).
    pub fn sign_keyless(&self, args: &[&str]) -> Command {
        let mut c = self.tools().kibaverify(args);
        c.args([
            "--keyless",
            "--signing-config",
            &self.signing_config,
            "--identity-token-file",
            &self.token_file,
            "--trusted-root",
            &self.trusted_root,
        ]);
        c
    }

    /// `cosign sign args... image` keyless with this stack's token, checked against its trusted root.
    pub fn cosign_sign_keyless(&self, args: &[&str], image_by_digest: &str) -> Command {
        let mut c = self.tools().cosign(&["sign"]);
        c.args(args).args([
            "--trusted-root",
            &self.trusted_root,
            "--identity-token",
            &self.token,
            "--allow-http-registry",
            "--yes",
            image_by_digest,
        ]);
        c
    }

    /// `kibaverify args...` checking a certificate for `identity` from this stack's issuer against its trusted
    /// root.
    pub fn verify(&self, args: &[&str], identity: &str) -> Command {
        let mut c = self.tools().kibaverify(args);
        c.args([
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            &self.issuer,
            "--trusted-root",
            &self.trusted_root,
        ]);
        c
    }

    /// `cosign args... image` checking a certificate for `identity` from this stack's issuer against its
    /// trusted root (certificate chain, SCT, log entry and timestamp: no --insecure flag).
    pub fn cosign_verify(&self, args: &[&str], identity: &str, image: &str) -> Command {
        let mut c = self.tools().cosign(args);
        c.args([
            "--trusted-root",
            &self.trusted_root,
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            &self.issuer,
            "--allow-http-registry",
            image,
        ]);
        c
    }

    /// Fails when the token, or its signature part alone, appears anywhere in `transcript`.
    pub fn assert_token_not_in(&self, transcript: &str) {
        assert_not_leaked(transcript, &self.token, "the OIDC token");
        assert_not_leaked(
            transcript,
            self.token.rsplit('.').next().unwrap(),
            "the token's signature",
        );
    }
}

/// A registry client for `host` over plain HTTP, without any docker config.
pub fn registry_client(host: &str) -> kibaship_oci::RegistryClient {
    kibaship_oci::RegistryClient::new(kibaship_oci::ClientConfig {
        insecure_registries: vec![host.to_string()],
        use_docker_config: false,
        ..kibaship_oci::ClientConfig::default()
    })
    .unwrap()
}

/// Runs `future` to completion on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// The manifest `reference` names on the registry at `host`, parsed.
pub fn manifest(host: &str, reference: &Reference) -> ImageManifest {
    let bytes = block_on(registry_client(host).fetch_manifest(reference))
        .unwrap()
        .bytes;
    serde_json::from_slice(&bytes).unwrap()
}

/// The legacy-layout manifest of `image_by_digest` (`registry/repo@sha256:...`) under the tag
/// `sha256-<hex>.<suffix>` (`sig` or `att`), and that tag.
pub fn signature_tag_manifest(
    host: &str,
    image_by_digest: &str,
    suffix: &str,
) -> (Reference, ImageManifest) {
    let digest = image_by_digest.rsplit_once('@').unwrap().1;
    let tag = Reference::parse(image_by_digest)
        .unwrap()
        .with_tag(&format!("{}.{suffix}", digest.replace(':', "-")))
        .unwrap();
    let parsed = manifest(host, &tag);
    (tag, parsed)
}

/// What `kibaverify sign` / `attest` says about where the bundle referrer can be found in `mode`.
pub fn referrers_route(mode: RegistryMode) -> &'static str {
    if mode == RegistryMode::Referrers {
        "the referrers API"
    } else {
        "the referrers fallback tag"
    }
}

/// The in-toto statements `cosign verify-attestation` printed on stdout (one DSSE envelope, or statement, per
/// line).
pub fn printed_statements(stdout: &str) -> Vec<serde_json::Value> {
    use base64::Engine as _;
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line.trim()).ok())
        .filter_map(|v| match v.get("payload").and_then(|p| p.as_str()) {
            Some(b64) => serde_json::from_slice(
                &base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            )
            .ok(),
            None => v.get("_type").is_some().then_some(v),
        })
        .collect()
}
