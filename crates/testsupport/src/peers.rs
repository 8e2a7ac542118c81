//! The pinned Go-built peers (cosign, crane, oras, BuildKit, ...): where `make peers` put them.
//!
//! The one list is `tools/peers.txt` at the repository root (columns: name, version, binaries, here,
//! packages); `make peers` installs each peer into
//! `${KIBASHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kibaship}/peers/<name>-<version>/` and leaves a
//! `.kibaship-built` stamp there once the build finished. [`peer_binary`] finds a binary there, or says to
//! run `make peers`.
//!
//! ```no_run
//! let cosign = kibaship_testsupport::peers::peer_binary("cosign")?;
//! let buildctl = kibaship_testsupport::peers::peer_binary("buildctl")?; // a binary of the `buildkit` peer
//! # Ok::<(), kibaship_testsupport::HarnessError>(())
//! ```

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use crate::HarnessError;

/// Written by `scripts/peers/build.sh` into a peer's directory once all its binaries are installed.
const BUILT_STAMP: &str = ".kibaship-built";

/// One line of `tools/peers.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// Peer name (`crane`, `cosign`, `buildkit`, ...).
    pub name: String,
    /// Exact module version, e.g. `v3.1.3`.
    pub version: String,
    /// Binaries the peer installs; the first is the peer's main binary.
    pub binaries: Vec<String>,
    /// `here=yes`: builds and runs on these machines; `no`: known not to (docs/peers.md says why).
    pub runs_here: bool,
    /// Go packages built, possibly after `./dir` (a module of this repository to build in) and build settings
    /// (`VAR=value`, `GOFLAGS+=flag`).
    pub packages: Vec<String>,
}

/// Parses `tools/peers.txt` (comments start with `#`). `origin` names the file in errors.
pub fn parse_peer_list(text: &str, origin: &str) -> Result<Vec<PeerSpec>, HarnessError> {
    let mut peers = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let invalid = |reason: String| HarnessError::PeerUnavailable {
            name: line.split_whitespace().next().unwrap_or("?").to_string(),
            reason: format!("{origin} line {}: {reason}", index + 1),
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, version, binaries, here, packages @ ..] = fields.as_slice() else {
            return Err(invalid(format!(
                "expected `name version binaries here packages...`, found {} field(s)",
                fields.len()
            )));
        };
        if packages.is_empty() {
            return Err(invalid("no Go package listed".into()));
        }
        let runs_here = match *here {
            "yes" => true,
            "no" => false,
            other => {
                return Err(invalid(format!(
                    "`here` must be `yes` or `no`, found `{other}`"
                )));
            }
        };
        let binaries: Vec<String> = binaries.split(',').map(str::to_string).collect();
        if binaries.iter().any(|b| b.is_empty() || b.contains('/')) {
            return Err(invalid(format!("bad binaries list `{}`", fields[2])));
        }
        if peers.iter().any(|p: &PeerSpec| p.name == *name) {
            return Err(invalid(format!("peer `{name}` is listed twice")));
        }
        peers.push(PeerSpec {
            name: (*name).to_string(),
            version: (*version).to_string(),
            binaries,
            runs_here,
            packages: packages.iter().map(|p| (*p).to_string()).collect(),
        });
    }
    Ok(peers)
}

/// `tools/peers.txt` of this repository (found from this crate's manifest directory).
pub fn peer_list_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/peers.txt")
}

/// `${KIBASHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kibaship}/peers`, as the Makefile computes it.
pub fn peer_cache_dir() -> Result<PathBuf, HarnessError> {
    let non_empty = |key: &str| {
        env::var_os(key)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = if let Some(cache) = non_empty("KIBASHIP_CACHE") {
        cache
    } else if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        xdg.join("kibaship")
    } else if let Some(home) = non_empty("HOME") {
        home.join(".cache").join("kibaship")
    } else {
        return Err(HarnessError::PeerUnavailable {
            name: "*".into(),
            reason: "none of KIBASHIP_CACHE, XDG_CACHE_HOME, HOME is set, so the peer cache cannot be found".into(),
        });
    };
    Ok(base.join("peers"))
}

/// Every peer in `tools/peers.txt`.
pub fn peer_specs() -> Result<Vec<PeerSpec>, HarnessError> {
    let path = peer_list_path();
    let text = fs::read_to_string(&path)
        .map_err(|e| HarnessError::io(format!("reading {}", path.display()), e))?;
    parse_peer_list(&text, &path.display().to_string())
}

/// The version `tools/peers.txt` pins for peer `name` (`v0.15.0`, `2025.10.13`).
pub fn peer_version(name: &str) -> Result<String, HarnessError> {
    peer_specs()?
        .into_iter()
        .find(|p| p.name == name)
        .map(|p| p.version)
        .ok_or_else(|| HarnessError::PeerUnavailable {
            name: name.into(),
            reason: "not listed in tools/peers.txt".into(),
        })
}

/// Path of a built peer binary. `name` is a peer name (its main binary: `crane`, `cosign`, `oras`,
/// `ggcr-registry`, ...) or the name of one of a peer's binaries (`buildkitd`, `buildctl`). Errors say what
/// is missing and to run `make peers`.
pub fn peer_binary(name: &str) -> Result<PathBuf, HarnessError> {
    resolve_peer_binary(&peer_specs()?, &peer_cache_dir()?, name)
}

/// [`peer_binary`] against a given list and cache directory.
pub fn resolve_peer_binary(
    peers: &[PeerSpec],
    cache_dir: &Path,
    name: &str,
) -> Result<PathBuf, HarnessError> {
    let (peer, binary) = if let Some(peer) = peers.iter().find(|p| p.name == name) {
        (
            peer,
            peer.binaries.first().map(String::as_str).unwrap_or(name),
        )
    } else if let Some(peer) = peers.iter().find(|p| p.binaries.iter().any(|b| b == name)) {
        (peer, name)
    } else {
        let known: Vec<&str> = peers.iter().map(|p| p.name.as_str()).collect();
        return Err(HarnessError::PeerUnavailable {
            name: name.into(),
            reason: format!(
                "no peer or peer binary of that name in tools/peers.txt (peers: {})",
                known.join(", ")
            ),
        });
    };
    let dir = cache_dir.join(format!("{}-{}", peer.name, peer.version));
    let path = dir.join(binary);
    if dir.join(BUILT_STAMP).is_file() && is_executable(&path) {
        return Ok(path);
    }
    let mut reason = format!(
        "{} {} is not built ({} missing): run `make peers`",
        peer.name,
        peer.version,
        path.display()
    );
    if !peer.runs_here {
        reason.push_str(
            "; note that tools/peers.txt marks this peer as not building or running on these machines (see docs/peers.md)",
        );
    }
    Err(HarnessError::PeerUnavailable {
        name: name.into(),
        reason,
    })
}

/// The real `railpack prepare`, offline: a command running `scripts/peers/railpack-prepare.sh`, which gives each
/// run a private `/tmp/railpack` (railpack v0.15.0's fixed mise directory) holding the `mise` peer and mise's
/// remote-versions cache seeded from `tools/mise-remote-versions.txt` (docs/peers.md, "railpack"). Add the app
/// directory and railpack's flags (`--plan-out`, `--info-out`, `--hide-pretty-plan`). Errors, saying to run
/// `make peers`, when the railpack or mise peer is not built.
pub fn railpack_prepare_command() -> Result<std::process::Command, HarnessError> {
    Ok(std::process::Command::new(railpack_prepare_program()?))
}

/// The path of `scripts/peers/railpack-prepare.sh` (see [`railpack_prepare_command`]), once the railpack and mise
/// peers are built. It also takes railpack's own command line (`prepare APP_DIR ...`), so it can be given where a
/// `railpack` program is expected: `kibaship-step prepare --railpack <this>`.
pub fn railpack_prepare_program() -> Result<PathBuf, HarnessError> {
    peer_binary("railpack")?;
    peer_binary("mise")?;
    Ok(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/peers/railpack-prepare.sh"))
}

/// sigstore-python's `sigstore` command (an independent Sigstore client): on PATH, else in
/// `$KIBASHIP_CACHE/venv` (`make deps-py`, PY_TOOLS sigstore==4.5.1).
pub fn sigstore_python() -> Result<PathBuf, HarnessError> {
    let on_path = env::var_os("PATH").and_then(|p| {
        env::split_paths(&p)
            .map(|d| d.join("sigstore"))
            .find(|c| c.is_file())
    });
    let cached = peer_cache_dir()
        .ok()
        .and_then(|peers| peers.parent().map(|c| c.join("venv/bin/sigstore")))
        .filter(|c| c.is_file());
    on_path
        .or(cached)
        .ok_or_else(|| HarnessError::PeerUnavailable {
            name: "sigstore-python".into(),
            reason: "`sigstore` is neither on PATH nor in $KIBASHIP_CACHE/venv: run `make deps-py`"
                .into(),
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# comment
crane      v0.22.1  crane               yes  github.com/google/go-containerregistry/cmd/crane
buildkit   v0.34.2  buildkitd,buildctl  yes  ./scripts/peers/buildkit github.com/moby/buildkit/cmd/buildkitd
railpack   v0.15.0  cli                 no   ./scripts/peers/railpack github.com/railwayapp/railpack/cmd/cli
";

    fn scratch_dir(tag: &str) -> PathBuf {
        let dir = env::temp_dir().join(format!("kibaship-peers-test-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn install(cache: &Path, peer_dir: &str, binary: &str, stamp: bool) {
        use std::os::unix::fs::PermissionsExt;
        let dir = cache.join(peer_dir);
        fs::create_dir_all(&dir).unwrap();
        let bin = dir.join(binary);
        fs::write(&bin, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        if stamp {
            fs::write(dir.join(BUILT_STAMP), "12\n").unwrap();
        }
    }

    #[test]
    fn parses_the_columns() {
        let peers = parse_peer_list(SAMPLE, "sample").unwrap();
        assert_eq!(peers.len(), 3);
        assert_eq!(peers[1].name, "buildkit");
        assert_eq!(peers[1].version, "v0.34.2");
        assert_eq!(peers[1].binaries, ["buildkitd", "buildctl"]);
        assert!(peers[1].runs_here);
        assert_eq!(peers[1].packages[0], "./scripts/peers/buildkit");
        assert!(!peers[2].runs_here);
    }

    #[test]
    fn rejects_malformed_lines_with_their_line_number() {
        let err = parse_peer_list("# x\ncrane v1 crane maybe pkg\n", "list")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("list line 2") && err.contains("`maybe`"),
            "{err}"
        );
        let err = parse_peer_list("crane v1 crane yes\n", "list")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no Go package"), "{err}");
        let err = parse_peer_list("crane v1\n", "list")
            .unwrap_err()
            .to_string();
        assert!(err.contains("found 2 field(s)"), "{err}");
        let twice = "a v1 a yes p\na v1 a yes p\n";
        assert!(
            parse_peer_list(twice, "list")
                .unwrap_err()
                .to_string()
                .contains("listed twice")
        );
    }

    #[test]
    fn finds_peers_by_name_and_by_binary() {
        let peers = parse_peer_list(SAMPLE, "sample").unwrap();
        let cache = scratch_dir("found");
        install(&cache, "crane-v0.22.1", "crane", true);
        install(&cache, "buildkit-v0.34.2", "buildkitd", true);
        install(&cache, "buildkit-v0.34.2", "buildctl", true);
        assert_eq!(
            resolve_peer_binary(&peers, &cache, "crane").unwrap(),
            cache.join("crane-v0.22.1/crane")
        );
        assert_eq!(
            resolve_peer_binary(&peers, &cache, "buildctl").unwrap(),
            cache.join("buildkit-v0.34.2/buildctl")
        );
        assert_eq!(
            resolve_peer_binary(&peers, &cache, "buildkit").unwrap(),
            cache.join("buildkit-v0.34.2/buildkitd")
        );
        fs::remove_dir_all(&cache).unwrap();
    }

    #[test]
    fn missing_or_half_built_peers_say_run_make_peers() {
        let peers = parse_peer_list(SAMPLE, "sample").unwrap();
        let cache = scratch_dir("missing");
        let err = resolve_peer_binary(&peers, &cache, "crane")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("run `make peers`") && err.contains("crane-v0.22.1"),
            "{err}"
        );
        // A binary without the stamp is an interrupted build: not used.
        install(&cache, "crane-v0.22.1", "crane", false);
        let err = resolve_peer_binary(&peers, &cache, "crane")
            .unwrap_err()
            .to_string();
        assert!(err.contains("run `make peers`"), "{err}");
        let err = resolve_peer_binary(&peers, &cache, "railpack")
            .unwrap_err()
            .to_string();
        assert!(err.contains("docs/peers.md"), "{err}");
        let err = resolve_peer_binary(&peers, &cache, "kubectl")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no peer or peer binary") && err.contains("crane, buildkit, railpack"),
            "{err}"
        );
        fs::remove_dir_all(&cache).unwrap();
    }

    /// The real `railpack prepare` through [`railpack_prepare_command`], on the shell fixture app.
    #[test]
    fn railpack_prepare_plans_the_shell_fixture() {
        let out = scratch_dir("railpack");
        let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/railpack/apps/shell");
        let status = railpack_prepare_command()
            .unwrap_or_else(|e| panic!("{e}"))
            .arg(&app)
            .arg("--plan-out")
            .arg(out.join("plan.json"))
            .arg("--info-out")
            .arg(out.join("info.json"))
            .arg("--hide-pretty-plan")
            .env("TMPDIR", &out)
            .status()
            .unwrap();
        assert!(status.success(), "railpack-prepare.sh: {status}");
        let plan: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join("plan.json")).unwrap()).unwrap();
        assert_eq!(plan["deploy"]["startCommand"], "sh start.sh", "{plan}");
        fs::remove_dir_all(&out).unwrap();
    }

    /// The real list parses, and every peer marked `here=yes` is built (`make test` runs `make peers` first).
    #[test]
    fn every_peer_that_runs_here_is_built() {
        let peers = peer_specs().unwrap();
        assert!(
            peers.iter().any(|p| p.name == "cosign"),
            "tools/peers.txt lists no cosign"
        );
        for peer in peers.iter().filter(|p| p.runs_here) {
            for binary in &peer.binaries {
                let path = peer_binary(binary).unwrap_or_else(|e| panic!("{e}"));
                assert!(
                    path.starts_with(peer_cache_dir().unwrap()),
                    "{}",
                    path.display()
                );
            }
        }
    }
}
