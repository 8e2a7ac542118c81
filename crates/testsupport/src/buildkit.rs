//! A real BuildKit daemon (the `buildkit` peer's `buildkitd`) for tests: rootful, the OCI worker on Debian's
//! `runc` with the native snapshotter, listening on a unix socket in its own temp dir, and the registry
//! settings a test gives it (plain-HTTP registries, mirrors for `ghcr.io` and `docker.io`).
//!
//! ```no_run
//! use kibaship_testsupport::buildkit::{BuildkitdConfig, TestBuildkitd};
//! let buildkitd = TestBuildkitd::start(&BuildkitdConfig::default().plain_http_registry("127.0.0.1:5000"))?;
//! let status = buildkitd.buildctl()?.args(["debug", "workers"]).status();
//! # Ok::<(), kibaship_testsupport::HarnessError>(())
//! ```
//!
//! The daemon runs under the harness's supervisor ([`crate::process`]), so it is stopped when the value is
//! dropped or the test process dies. Its root (snapshots, runc state) lives in the temp dir; mounts a killed
//! daemon leaves there are detached before the directory is removed.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::HarnessError;
use crate::process::{self, SupervisedProcess, find_tool};

/// How long buildkitd may take to list its workers: generous, the machine may be loaded.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Registry settings for one buildkitd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildkitdConfig {
    /// Registries (`HOST:PORT`) reached over plain HTTP (`http = true`, `insecure = true`).
    pub plain_http: Vec<String>,
    /// `(registry, mirror)`: pulls from `registry` (`ghcr.io`, `docker.io`) go to `mirror` (`HOST:PORT`) first.
    pub mirrors: Vec<(String, String)>,
    /// The OCI worker's snapshotter is `overlayfs` instead of `native`. `native` copies a step's whole root
    /// filesystem for each step (7 s a step on a 440 MB Go builder here); overlayfs mounts layers instead.
    pub overlayfs: bool,
}

impl BuildkitdConfig {
    /// Adds a registry reached over plain HTTP.
    pub fn plain_http_registry(mut self, host: &str) -> Self {
        self.plain_http.push(host.to_string());
        self
    }

    /// Pulls from `registry` go to `mirror` first (BuildKit falls back to `registry` itself, which fails
    /// offline, so a missing image is reported rather than fetched from the internet).
    pub fn mirror(mut self, registry: &str, mirror: &str) -> Self {
        self.mirrors
            .push((registry.to_string(), mirror.to_string()));
        self
    }

    /// Uses the `overlayfs` snapshotter (see [`BuildkitdConfig::overlayfs`]).
    pub fn overlayfs_snapshotter(mut self) -> Self {
        self.overlayfs = true;
        self
    }

    /// The `buildkitd.toml` for this configuration, with `runc` as the OCI worker's runtime.
    pub fn to_toml(&self, runc: &Path) -> String {
        let mut toml = String::new();
        let _ = writeln!(toml, "[worker.oci]");
        let _ = writeln!(toml, "  enabled = true");
        let snapshotter = if self.overlayfs {
            "overlayfs"
        } else {
            "native"
        };
        let _ = writeln!(toml, "  snapshotter = \"{snapshotter}\"");
        let _ = writeln!(
            toml,
            "  binary = {}",
            toml_string(&runc.display().to_string())
        );
        let _ = writeln!(toml, "  gc = false");
        let _ = writeln!(toml, "[worker.containerd]");
        let _ = writeln!(toml, "  enabled = false");
        let mut registries: Vec<&str> = self
            .mirrors
            .iter()
            .map(|(r, _)| r.as_str())
            .chain(self.plain_http.iter().map(String::as_str))
            .collect();
        registries.sort_unstable();
        registries.dedup();
        for registry in registries {
            let _ = writeln!(toml, "[registry.{}]", toml_string(registry));
            let mirrors: Vec<String> = self
                .mirrors
                .iter()
                .filter(|(r, _)| r == registry)
                .map(|(_, m)| toml_string(m))
                .collect();
            if !mirrors.is_empty() {
                let _ = writeln!(toml, "  mirrors = [{}]", mirrors.join(", "));
            }
            if self.plain_http.iter().any(|h| h == registry) {
                let _ = writeln!(toml, "  http = true");
                let _ = writeln!(toml, "  insecure = true");
            }
        }
        toml
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A running buildkitd; stopped, its mounts detached and its temp dir removed on drop.
#[derive(Debug)]
pub struct TestBuildkitd {
    process: Option<SupervisedProcess>,
    addr: String,
    buildctl: PathBuf,
    log: PathBuf,
    // Dropped last: the daemon's root lives here.
    dir: tempfile::TempDir,
}

impl TestBuildkitd {
    /// Starts buildkitd (needs root: the OCI worker runs rootful here) and waits until `buildctl debug workers`
    /// lists a worker.
    pub fn start(config: &BuildkitdConfig) -> Result<TestBuildkitd, HarnessError> {
        let buildkitd = crate::peers::peer_binary("buildkitd")?;
        let buildctl = crate::peers::peer_binary("buildctl")?;
        let runc = find_tool("runc", "apt-get install runc, or run `make deps`")?;
        if !nix::unistd::geteuid().is_root() {
            return Err(HarnessError::io(
                "starting buildkitd",
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "buildkitd runs rootful here (OCI worker on runc) and needs root",
                ),
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("kibaship-buildkitd-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating buildkitd's temp dir", e))?;
        let config_path = dir.path().join("buildkitd.toml");
        fs::write(&config_path, config.to_toml(&runc))
            .map_err(|e| HarnessError::io(format!("writing {}", config_path.display()), e))?;
        let addr = format!("unix://{}", dir.path().join("buildkitd.sock").display());
        let log = dir.path().join("buildkitd.log");
        let args = vec![
            "--config".to_string(),
            config_path.display().to_string(),
            "--root".into(),
            dir.path().join("root").display().to_string(),
            "--addr".into(),
            addr.clone(),
        ];
        let process = SupervisedProcess::spawn("buildkitd", &buildkitd, &args, &log)?;
        let mut daemon = TestBuildkitd {
            process: Some(process),
            addr,
            buildctl,
            log,
            dir,
        };
        daemon.wait_ready()?;
        Ok(daemon)
    }

    fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let started = Instant::now();
        loop {
            if let Some(process) = self.process.as_mut() {
                process.check_running()?;
            }
            let workers = Command::new(&self.buildctl)
                .args(["--addr", &self.addr, "debug", "workers"])
                .stdin(Stdio::null())
                .output();
            if let Ok(out) = workers
                && out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains("linux/amd64")
            {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(HarnessError::NotReady {
                    what: "buildkitd".into(),
                    url: self.addr.clone(),
                    waited_secs: READY_TIMEOUT.as_secs(),
                    log: self.log.clone(),
                    log_tail: process::log_tail(&self.log),
                });
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The daemon's address for `buildctl --addr` / `BUILDKIT_HOST` (`unix:///…/buildkitd.sock`).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The `buildctl` peer binary.
    pub fn buildctl_path(&self) -> &Path {
        &self.buildctl
    }

    /// `buildctl --addr <this daemon>`; add the subcommand and its flags.
    pub fn buildctl(&self) -> Result<Command, HarnessError> {
        let mut command = Command::new(&self.buildctl);
        command.args(["--addr", &self.addr]);
        Ok(command)
    }

    /// The daemon's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(SupervisedProcess::server_pid)
    }

    /// The supervisor's and the daemon's pids (empty once stopped).
    pub fn process_ids(&self) -> Vec<u32> {
        self.process
            .as_ref()
            .map(|p| vec![p.supervisor_pid(), p.server_pid()])
            .unwrap_or_default()
    }

    /// The daemon's own directory (config, socket, log, root), removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of the daemon's log, for assertion messages.
    pub fn log_tail(&self) -> String {
        process::log_tail(&self.log)
    }
}

impl Drop for TestBuildkitd {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
        // A daemon stopped in the middle of a build can leave its executor's mounts behind.
        detach_mounts_under(self.dir.path());
    }
}

/// Detaches (`umount -l`) every mount point under `dir`, deepest first.
pub(crate) fn detach_mounts_under(dir: &Path) {
    for point in mounts_under(dir) {
        let _ = nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Mount points under `dir` (deepest first), from `/proc/self/mountinfo`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let prefix = dir.display().to_string();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_has_the_worker_mirrors_and_plain_http_registries() {
        let config = BuildkitdConfig::default()
            .plain_http_registry("127.0.0.1:5000")
            .mirror("ghcr.io", "127.0.0.1:5000")
            .mirror("docker.io", "127.0.0.1:5000");
        let toml = config.to_toml(Path::new("/usr/sbin/runc"));
        assert!(toml.contains("[worker.oci]\n  enabled = true\n  snapshotter = \"native\"\n  binary = \"/usr/sbin/runc\""));
        assert!(toml.contains("[worker.containerd]\n  enabled = false"));
        let overlay = config
            .clone()
            .overlayfs_snapshotter()
            .to_toml(Path::new("/usr/sbin/runc"));
        assert_eq!(
            overlay,
            toml.replace("snapshotter = \"native\"", "snapshotter = \"overlayfs\"")
        );
        assert!(toml.contains("[registry.\"ghcr.io\"]\n  mirrors = [\"127.0.0.1:5000\"]\n"));
        assert!(toml.contains("[registry.\"docker.io\"]\n  mirrors = [\"127.0.0.1:5000\"]\n"));
        assert!(toml.contains("[registry.\"127.0.0.1:5000\"]\n  http = true\n  insecure = true\n"));
        assert_eq!(toml.matches("[registry.").count(), 3, "{toml}");
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000A\"");
    }
}
