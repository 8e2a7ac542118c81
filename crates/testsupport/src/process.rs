//! Server processes started by the harness, and how they are stopped.
//!
//! A [`SupervisedProcess`] runs the server under a tiny `sh` supervisor in its own process group. The supervisor
//! holds the read end of a pipe whose write end only the harness holds: when the harness drops the process, or
//! dies without running destructors (aborted test binary, SIGKILL), the pipe closes and the supervisor terminates
//! the server. Drop then waits for the group to be gone and sweeps it with SIGKILL if anything is left.
//!
//! [`spawn_detached`] is for `kibaship-harness registry start`: the server outlives the harness, in its own
//! process group, and [`stop_detached`] ends it from its pid.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::HarnessError;

/// The supervisor script: runs "$@" in the background, records its pid, and kills it when stdin reaches EOF.
const SUPERVISOR: &str = r#"
pidfile="$1"; shift
exec 3<&0
"$@" </dev/null &
server=$!
echo "$server" > "$pidfile"
( while read -r _ <&3; do :; done; kill -TERM "$server" 2>/dev/null ) &
watcher=$!
exec 3<&-
wait "$server"
status=$?
kill -TERM "$watcher" 2>/dev/null
wait
exit "$status"
"#;

/// A server process tied to the harness's lifetime.
#[derive(Debug)]
pub(crate) struct SupervisedProcess {
    what: String,
    program: PathBuf,
    args: Vec<String>,
    supervisor: Child,
    lifeline: Option<ChildStdin>,
    server_pid: u32,
    log: PathBuf,
}

impl SupervisedProcess {
    /// Starts `program args` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(
        what: &str,
        program: &Path,
        args: &[String],
        log: &Path,
    ) -> Result<Self, HarnessError> {
        let dir = log.parent().unwrap_or(Path::new("."));
        let pidfile = dir.join(format!(
            "{}.pid",
            log.file_stem().and_then(|s| s.to_str()).unwrap_or("server")
        ));
        let _ = fs::remove_file(&pidfile);
        let out = open_log(log)?;
        let err = out.try_clone().map_err(|e| {
            HarnessError::io(format!("duplicating log handle {}", log.display()), e)
        })?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("kibaship-supervisor")
            .arg(&pidfile)
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        scrub_env(&mut command);
        let mut supervisor = command.spawn().map_err(|source| HarnessError::Spawn {
            command: format!("{} {}", program.display(), args.join(" ")),
            source,
        })?;
        let lifeline = supervisor.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(10);
        let server_pid = loop {
            if let Some(pid) = fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            {
                break pid;
            }
            if Instant::now() > deadline {
                let _ = supervisor.kill();
                let _ = supervisor.wait();
                return Err(HarnessError::io(
                    format!(
                        "waiting for {what} to record its pid in {}",
                        pidfile.display()
                    ),
                    std::io::Error::from(std::io::ErrorKind::TimedOut),
                ));
            }
            thread::sleep(Duration::from_millis(5));
        };
        Ok(SupervisedProcess {
            what: what.to_string(),
            program: program.to_path_buf(),
            args: args.to_vec(),
            supervisor,
            lifeline,
            server_pid,
            log: log.to_path_buf(),
        })
    }

    /// The server's pid (the supervisor's child).
    pub(crate) fn server_pid(&self) -> u32 {
        self.server_pid
    }

    /// The supervisor's pid, which is also the process group id.
    pub(crate) fn supervisor_pid(&self) -> u32 {
        self.supervisor.id()
    }

    /// `Err` with the exit status and log tail if the server has exited.
    pub(crate) fn check_running(&mut self) -> Result<(), HarnessError> {
        match self.supervisor.try_wait() {
            Ok(Some(status)) => Err(HarnessError::Exited {
                what: self.what.clone(),
                status: status.to_string(),
                log: self.log.clone(),
                log_tail: log_tail(&self.log),
            }),
            _ => Ok(()),
        }
    }

    /// What the process was started as (`containerd`, `kubelet`, ...).
    pub(crate) fn what(&self) -> &str {
        &self.what
    }

    /// Stops the server (as [`SupervisedProcess::stop`]) and starts it again with the same program, arguments
    /// and log (appended to).
    pub(crate) fn restart(&mut self) -> Result<(), HarnessError> {
        self.restart_after(Duration::ZERO)
    }

    /// As [`SupervisedProcess::restart`], staying stopped for `down_for` first (a restart that takes time, as a
    /// replaced Pod's does).
    pub(crate) fn restart_after(&mut self, down_for: Duration) -> Result<(), HarnessError> {
        self.stop();
        std::thread::sleep(down_for);
        let fresh = SupervisedProcess::spawn(&self.what, &self.program, &self.args, &self.log)?;
        // The old value's drop stops nothing more: its supervisor was reaped above.
        *self = fresh;
        Ok(())
    }

    /// Stops the server and reaps every process of the group.
    pub(crate) fn stop(&mut self) {
        // Closing the lifeline makes the supervisor terminate the server and exit once it is reaped.
        drop(self.lifeline.take());
        if wait_child(&mut self.supervisor, Duration::from_secs(10)) {
            // The supervisor reaped the server; sweep anything left in the group (nothing, normally).
            let _ = signal::killpg(pid(self.supervisor.id()), Signal::SIGKILL);
            return;
        }
        let _ = signal::killpg(pid(self.supervisor.id()), Signal::SIGKILL);
        let _ = self.supervisor.wait();
    }
}

impl Drop for SupervisedProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_child(child: &mut Child, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => return false,
            Err(_) => return false,
        }
    }
}

fn pid(raw: u32) -> Pid {
    Pid::from_raw(i32::try_from(raw).unwrap_or(i32::MAX))
}

/// Environment variables that would silently reconfigure docker-registry are removed.
fn scrub_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("REGISTRY_")) {
            command.env_remove(key);
        }
    }
}

fn open_log(log: &Path) -> Result<File, HarnessError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| HarnessError::io(format!("opening log {}", log.display()), e))
}

/// The last lines (up to 4 KiB) of a log file, for error messages.
pub(crate) fn log_tail(log: &Path) -> String {
    let Ok(mut file) = File::open(log) else {
        return "(no log)".to_string();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Whether a process with this pid exists and is not a zombie.
pub fn process_alive(raw: u32) -> bool {
    match fs::read_to_string(format!("/proc/{raw}/stat")) {
        Ok(stat) => {
            // Field 3 (after the parenthesised command name) is the state.
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
            !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X'))
        }
        Err(_) => false,
    }
}

/// Starts `program args` in its own process group, detached from the harness; returns its pid.
pub(crate) fn spawn_detached(
    program: &Path,
    args: &[String],
    log: &Path,
) -> Result<u32, HarnessError> {
    let out = open_log(log)?;
    let err = out
        .try_clone()
        .map_err(|e| HarnessError::io(format!("duplicating log handle {}", log.display()), e))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    scrub_env(&mut command);
    let child = command.spawn().map_err(|source| HarnessError::Spawn {
        command: format!("{} {}", program.display(), args.join(" ")),
        source,
    })?;
    // The child is deliberately not waited for: it outlives this process and is reparented.
    Ok(child.id())
}

/// Stops a detached process group: SIGTERM, then SIGKILL after `grace`. True once the leader is gone.
pub(crate) fn stop_detached(raw: u32, grace: Duration) -> bool {
    let group = pid(raw);
    let _ = signal::killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !process_alive(raw) {
            let _ = signal::killpg(group, Signal::SIGKILL);
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = signal::killpg(group, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !process_alive(raw) {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A detached service's state directory, created if need be, as an absolute path (the holder and `stop` may run
/// from other working directories).
pub(crate) fn absolute_state_dir(state_dir: &Path) -> Result<PathBuf, HarnessError> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| HarnessError::io(format!("creating {}", state_dir.display()), e))?;
    state_dir
        .canonicalize()
        .map_err(|e| HarnessError::io(format!("resolving {}", state_dir.display()), e))
}

/// Finds a program on PATH, or explains how to install it.
pub(crate) fn find_tool(tool: &str, hint: &str) -> Result<PathBuf, HarnessError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(tool);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(HarnessError::ToolMissing {
        tool: tool.to_string(),
        hint: hint.to_string(),
    })
}

/// A binary of this workspace (`kibaship-webhook`, `kibaverify`, ...) in the target directory of the running
/// test: a test of one package cannot name another package's binary (`CARGO_BIN_EXE_*` covers only its own), but
/// `cargo test --workspace` builds every package's binaries into the directory above the test's `deps/`. With
/// `cargo test -p <package>` alone, build them first (`cargo build --workspace --bins`; `make e2e` does).
pub fn workspace_binary(name: &str) -> Result<PathBuf, HarnessError> {
    let exe =
        std::env::current_exe().map_err(|e| HarnessError::io("locating the test binary", e))?;
    let dir = exe
        .parent()
        .filter(|d| d.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent)
        .or_else(|| exe.parent());
    let candidate = dir.map(|d| d.join(name));
    match candidate {
        Some(path) if path.is_file() => Ok(path),
        _ => Err(HarnessError::ToolMissing {
            tool: name.to_string(),
            hint: format!(
                "not built beside {}: run `cargo build --workspace --bins --locked` first (`cargo test --workspace` \
                 and `make e2e` build it)",
                exe.display()
            ),
        }),
    }
}
