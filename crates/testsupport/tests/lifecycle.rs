//! Whatever the harness starts is gone afterwards: on drop, on panic, when the test process is killed, and
//! for detached registries after `kibaship-harness registry stop`.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kibaship_testsupport::process_alive;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

/// Polls (without asserting on time) until the pid is gone; the bound only avoids hanging forever.
fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if !process_alive(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn drop_stops_every_process_of_each_mode() {
    for mode in [
        RegistryMode::Plain,
        RegistryMode::BasicTls,
        RegistryMode::TokenTls,
    ] {
        let reg = TestRegistry::start(mode).unwrap();
        let pids = reg.process_ids();
        assert_eq!(pids.len(), 2, "{mode}: supervisor and server");
        assert!(
            pids.iter().all(|p| process_alive(*p)),
            "{mode}: running while held"
        );
        let work_dir = reg.work_dir().to_path_buf();
        drop(reg);
        for pid in pids {
            assert!(gone(pid), "{mode}: pid {pid} still alive after drop");
        }
        assert!(!work_dir.exists(), "{mode}: temp dir removed");
    }
}

#[test]
fn a_panicking_test_leaves_nothing_behind() {
    let (tx, rx) = mpsc::channel();
    let result = thread::spawn(move || {
        let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
        tx.send(reg.process_ids()).unwrap();
        panic!("simulated test failure while the registry runs");
    })
    .join();
    assert!(result.is_err());
    let pids = rx.recv().unwrap();
    for pid in pids {
        assert!(gone(pid), "pid {pid} survived the panic");
    }
}

#[test]
fn a_killed_test_process_leaves_nothing_behind() {
    let mut holder = Command::new(env!("CARGO_BIN_EXE_kibaship-harness"))
        .args(["registry", "hold", "--mode", "plain"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    let _host = lines.next().unwrap().unwrap();
    let pids: Vec<u32> = lines
        .next()
        .unwrap()
        .unwrap()
        .trim_start_matches("pids ")
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    let work_dir = lines
        .next()
        .unwrap()
        .unwrap()
        .trim_start_matches("dir ")
        .to_string();
    assert!(pids.iter().all(|p| process_alive(*p)));
    // SIGKILL: no destructor runs; the supervisor notices its lifeline closing.
    holder.kill().unwrap();
    holder.wait().unwrap();
    for pid in pids {
        assert!(gone(pid), "pid {pid} survived its harness being killed");
    }
    // No destructor ran, so the temp dir is left: remove it here.
    assert!(work_dir.contains("kibaship-registry-plain-"), "{work_dir}");
    std::fs::remove_dir_all(&work_dir).unwrap();
}

#[test]
fn parallel_registries_get_distinct_ports() {
    let handles: Vec<_> = (0..4)
        .map(|_| thread::spawn(|| TestRegistry::start(RegistryMode::Plain).unwrap()))
        .collect();
    let registries: Vec<TestRegistry> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut hosts: Vec<String> = registries.iter().map(TestRegistry::host).collect();
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 4);
    let dirs: Vec<_> = registries
        .iter()
        .map(|r| r.storage_dir().to_path_buf())
        .collect();
    assert!(dirs.iter().all(|d| d.is_dir()));
    assert_ne!(dirs[0], dirs[1]);
}

#[test]
fn detached_registry_outlives_the_command_and_stops_on_request() {
    let state = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_kibaship-harness");
    let out = Command::new(exe)
        .args(["registry", "start", "--mode", "token-tls", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exports = String::from_utf8(out.stdout).unwrap();
    for var in [
        "KIBASHIP_REGISTRY=",
        "KIBASHIP_REGISTRY_CA=",
        "KIBASHIP_REGISTRY_USER=",
        "KIBASHIP_REGISTRY_PASSWORD=",
    ] {
        assert!(
            exports.contains(&format!("export {var}")),
            "missing {var} in {exports}"
        );
    }
    let pid = |name: &str| -> u32 {
        std::fs::read_to_string(state.path().join(name))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (registry_pid, token_pid) = (pid("registry.pid"), pid("token-server.pid"));
    assert!(
        process_alive(registry_pid) && process_alive(token_pid),
        "still running after the command exited"
    );

    // The CLI's pushes follow the registry's own challenge (here the token flow) with the exported settings.
    let mut push = Command::new(exe);
    push.args(["tags", "push", "--repository", "cli/tags", "--count", "3"]);
    for line in exports.lines() {
        let (key, value) = line.trim_start_matches("export ").split_once('=').unwrap();
        push.env(key, value.trim_matches('\''));
    }
    let pushed = push.output().unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let refs = String::from_utf8(pushed.stdout).unwrap();
    assert_eq!(refs.lines().count(), 3, "{refs}");
    assert!(
        refs.lines().all(|r| r.contains("/cli/tags:tag-0000")),
        "{refs}"
    );

    let stop = Command::new(exe)
        .args(["registry", "stop", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    assert!(gone(registry_pid) && gone(token_pid));
}
