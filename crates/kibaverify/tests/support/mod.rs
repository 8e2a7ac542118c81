//! What the CLI integration tests share: running a command and reading its outcome, and the real cosign.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use kibaship_testsupport::peers::peer_binary;

/// The `kibaverify` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_kibaverify");

/// A finished command: exit code (-1 if killed by a signal) and its output as text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
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

/// The real cosign (peer), with its home and docker config inside `dir`.
pub fn cosign(dir: &Path, args: &[&str]) -> Command {
    let bin = peer_binary("cosign").expect("the cosign peer is not built: run `make peers`");
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env("HOME", dir)
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .args(args);
    c
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
