//! `kibaship-harness buildkit start|stop`, as `make demo` uses it: the buildkitd outlives `start`, answers
//! `buildctl debug workers` at the exported `BUILDKIT_HOST`, and `stop` leaves no process, mount or directory.
//!
//! Needs root (rootful buildkitd on runc) and `make peers deps` (buildkit, railpack, trivy; umoci, skopeo, runc,
//! busybox-static).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kibaship_testsupport::buildkit::mounts_under;
use kibaship_testsupport::process_alive;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

const EXE: &str = env!("CARGO_BIN_EXE_kibaship-harness");

/// Polls (without asserting on time) until the pid is gone; the bound only avoids hanging forever.
fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if !process_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn pids(path: &Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// `export NAME='value'` lines as (name, value).
fn exports(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| {
            let (k, v) = l.strip_prefix("export ").unwrap().split_once('=').unwrap();
            (k.to_string(), v.trim_matches('\'').to_string())
        })
        .collect()
}

fn harness(args: &[&str], state: &Path) -> std::process::Output {
    Command::new(EXE)
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn detached_buildkitd_answers_and_stop_leaves_nothing() {
    let registry = TestRegistry::start(RegistryMode::Plain).unwrap();
    let state = tempfile::tempdir().unwrap();
    let host = registry.host();

    let started = harness(&["buildkit", "start", "--registry", &host], state.path());
    assert!(
        started.status.success(),
        "buildkit start: {}\n--- holder log:\n{}",
        String::from_utf8_lossy(&started.stderr),
        std::fs::read_to_string(state.path().join("harness.log")).unwrap_or_default()
    );
    let vars = exports(&String::from_utf8(started.stdout).unwrap());
    let var = |name: &str| -> String {
        vars.iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("no {name} in {vars:?}"))
            .1
            .clone()
    };
    let addr = var("BUILDKIT_HOST");
    let buildctl = var("KIBASHIP_BUILDCTL");
    assert!(addr.starts_with("unix:///"), "{addr}");
    assert!(var("KIBASHIP_RAILPACK_VERSION").starts_with('v'));
    assert!(
        var("KIBASHIP_RAILPACK_FRONTEND").starts_with("ghcr.io/railwayapp/railpack-frontend:v")
    );

    // The command has exited; the holder and the daemon run on.
    let holder = pids(&state.path().join("holder.pid"));
    let daemon = pids(&state.path().join("buildkitd.pids"));
    assert_eq!(
        (holder.len(), daemon.len()),
        (1, 2),
        "holder; supervisor and buildkitd"
    );
    assert!(holder.iter().chain(&daemon).all(|p| process_alive(*p)));
    let daemon_dir = PathBuf::from(
        std::fs::read_to_string(state.path().join("buildkitd.dir"))
            .unwrap()
            .trim(),
    );
    assert!(daemon_dir.is_dir());

    // A second start from the same state dir is refused while it runs.
    let again = harness(&["buildkit", "start", "--registry", &host], state.path());
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already running"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // The daemon answers at the exported address, and the images it will pull are on the registry.
    let workers = Command::new(&buildctl)
        .args(["--addr", &addr, "debug", "workers"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        workers.status.success(),
        "{}",
        String::from_utf8_lossy(&workers.stderr)
    );
    assert!(
        String::from_utf8_lossy(&workers.stdout).contains("linux/amd64"),
        "{}",
        String::from_utf8_lossy(&workers.stdout)
    );
    let frontend = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!(
            "docker://{host}/railwayapp/railpack-frontend:{}",
            var("KIBASHIP_RAILPACK_VERSION")
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        frontend.status.success(),
        "{}",
        String::from_utf8_lossy(&frontend.stderr)
    );

    let stop = harness(&["buildkit", "stop"], state.path());
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    for pid in holder.iter().chain(&daemon) {
        assert!(gone(*pid), "pid {pid} survived buildkit stop");
    }
    assert!(
        mounts_under(&daemon_dir).is_empty(),
        "mounts left under {}",
        daemon_dir.display()
    );
    assert!(!daemon_dir.exists(), "{} left behind", daemon_dir.display());
    for file in [
        "holder.pid",
        "buildkitd.pids",
        "buildkitd.dir",
        "buildkit.env",
    ] {
        assert!(
            !state.path().join(file).exists(),
            "{file} left in the state dir"
        );
    }
    let log = std::fs::read_to_string(state.path().join("buildkitd.log")).unwrap();
    assert!(
        log.contains("running server"),
        "buildkitd's log is kept:\n{log}"
    );
    // Stopping again finds nothing to stop.
    let stop = harness(&["buildkit", "stop"], state.path());
    assert!(stop.status.success());
}

#[test]
fn a_killed_holder_is_swept_by_stop() {
    let registry = TestRegistry::start(RegistryMode::Plain).unwrap();
    let state = tempfile::tempdir().unwrap();
    let started = harness(
        &["buildkit", "start", "--registry", &registry.host()],
        state.path(),
    );
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let holder = pids(&state.path().join("holder.pid"));
    let daemon = pids(&state.path().join("buildkitd.pids"));
    let daemon_dir = PathBuf::from(
        std::fs::read_to_string(state.path().join("buildkitd.dir"))
            .unwrap()
            .trim(),
    );
    // SIGKILL: no destructor runs; the supervisor sees its lifeline close and stops buildkitd.
    assert!(
        Command::new("kill")
            .args(["-KILL", &holder[0].to_string()])
            .status()
            .unwrap()
            .success()
    );
    for pid in holder.iter().chain(&daemon) {
        assert!(gone(*pid), "pid {pid} survived its holder being killed");
    }
    assert!(
        daemon_dir.exists(),
        "no destructor ran: the dir is still there"
    );
    let stop = harness(&["buildkit", "stop"], state.path());
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    assert!(mounts_under(&daemon_dir).is_empty());
    assert!(
        !daemon_dir.exists(),
        "stop removes what the killed holder left"
    );
}
