//! The real Railpack build, offline: the images BuildKit pulls for a `buildctl build --frontend gateway.v0
//! --opt source=ghcr.io/railwayapp/railpack-frontend:<version>`, built without Docker (umoci) and pushed to a
//! [`TestRegistry`], and a [`TestBuildkitd`] that takes that registry as its mirror for `ghcr.io` and
//! `docker.io` (docs/build.md).
//!
//! | upstream name | what we push instead |
//! |---|---|
//! | `ghcr.io/railwayapp/railpack-frontend:<version>` | the `railpack` peer (static) alone, entrypoint `railpack frontend`, as upstream's image runs it |
//! | `ghcr.io/railwayapp/railpack-runtime:latest`, `railpack-builder:latest` | stand-ins: Debian's `busybox-static` with every applet linked in `/bin`, a `/bin/bash` that execs `/bin/sh` (Railpack runs commands with `bash -c`), the host's `/etc/os-release` and `/etc/debian_version` and busybox-static's dpkg status entry, so scanners see a Debian image with one package |
//! | `docker.io/docker/buildkit-syft-scanner:stable-1` (BuildKit's default SBOM generator) | the `trivy` peer and a `sh` entrypoint that follows BuildKit's SBOM generator protocol: `trivy rootfs --format spdx-json` of `$BUILDKIT_SCAN_SOURCE` (and each extra), each wrapped in an in-toto statement written to `$BUILDKIT_SCAN_DESTINATION/<name>.spdx.json` |
//!
//! Each image is pushed under the upstream repository path (`railwayapp/railpack-frontend`,
//! `docker/buildkit-syft-scanner`, ...) with the upstream tag, which is where BuildKit looks on a mirror.
//! The stand-ins cannot install toolchains: a plan that needs mise to download a tool (Node, Python, Go, the
//! static provider's caddy) fails in them; the shell provider builds. For Go, [`RailpackBuildkit::start_with_go`]
//! pushes Debian base images instead, Go already installed in the builder where mise looks for it
//! ([`push_go_base_images`]), and runs buildkitd with the overlayfs snapshotter.
//!
//! ```no_run
//! use kibaship_testsupport::railpack_build::RailpackBuildkit;
//! use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
//! let registry = TestRegistry::start(RegistryMode::Plain)?;
//! let buildkit = RailpackBuildkit::start(&registry)?;
//! println!("BUILDKIT_HOST={}", buildkit.buildkitd().addr());
//! # Ok::<(), kibaship_testsupport::HarnessError>(())
//! ```

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SigSet, Signal};
use nix::unistd::Pid;

use crate::HarnessError;
use crate::buildkit::{BuildkitdConfig, TestBuildkitd};
use crate::oci_layout::{ImageSpec, OciLayout, copy_file, run_checked as run, static_busybox};
use crate::process::{find_tool, process_alive};
use crate::registry::TestRegistry;

/// BuildKit's default SBOM generator image (`attest:sbom=` without `generator=`).
pub const SBOM_SCANNER_IMAGE: &str = "docker.io/docker/buildkit-syft-scanner:stable-1";
/// Railpack's runtime base image, as plans name it.
pub const RAILPACK_RUNTIME_IMAGE: &str = "ghcr.io/railwayapp/railpack-runtime:latest";
/// Railpack's builder base image, as plans name it.
pub const RAILPACK_BUILDER_IMAGE: &str = "ghcr.io/railwayapp/railpack-builder:latest";
/// Railpack's frontend image without its tag (the tag is the Railpack version).
pub const RAILPACK_FRONTEND_REPOSITORY: &str = "ghcr.io/railwayapp/railpack-frontend";

/// The scanner's entrypoint: BuildKit's SBOM generator protocol (moby/buildkit
/// `docs/attestations/sbom-protocol.md`) over `trivy rootfs`. BuildKit mounts the scanned root filesystems
/// read-only and `/tmp` as a tmpfs; nothing is fetched (`--offline-scan`, no DB needed for an SBOM).
const SCANNER_ENTRYPOINT: &str = r#"#!/bin/sh
# kibaship's BuildKit SBOM generator: trivy rootfs --format spdx-json, as in-toto statements.
set -eu
: "${BUILDKIT_SCAN_DESTINATION:?BuildKit sets BUILDKIT_SCAN_DESTINATION}"
: "${BUILDKIT_SCAN_SOURCE:?BuildKit sets BUILDKIT_SCAN_SOURCE}"
export HOME=/tmp TMPDIR=/tmp
scan() {
  spdx="/tmp/$2.trivy.json"
  trivy rootfs --quiet --format spdx-json --output "$spdx" --cache-dir /tmp/trivy-cache \
    --skip-db-update --skip-java-db-update --offline-scan --skip-check-update --skip-version-check \
    --disable-telemetry "$1"
  {
    printf '{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","subject":[],"predicate":'
    cat "$spdx"
    printf '}\n'
  } >"$BUILDKIT_SCAN_DESTINATION/$2.spdx.json"
  rm -f "$spdx"
}
scan "$BUILDKIT_SCAN_SOURCE" "$(basename "$BUILDKIT_SCAN_SOURCE")"
extras="${BUILDKIT_SCAN_SOURCE_EXTRAS:-}"
if [ -n "$extras" ] && [ -d "$extras" ]; then
  for dir in "$extras"/*; do
    [ -d "$dir" ] && scan "$dir" "$(basename "$dir")"
  done
fi
"#;

/// Railpack runs every command as `/bin/bash -c CMD`; busybox has no bash applet.
const BASH_STANDIN: &str = "#!/bin/sh\n# kibaship stand-in: Railpack runs commands with bash -c; busybox sh runs them here.\nexec /bin/sh \"$@\"\n";

/// The images pushed for a Railpack build: each upstream name and where it was pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RailpackImages {
    /// The Railpack version (the frontend's tag, `v0.15.0`).
    pub railpack_version: String,
    /// `(upstream name, pushed reference)` for the frontend, runtime, builder and SBOM scanner images.
    pub pushed: Vec<(String, String)>,
}

impl RailpackImages {
    /// `ghcr.io/railwayapp/railpack-frontend:<version>`: the `source` option of `buildctl build`.
    pub fn frontend(&self) -> String {
        format!("{RAILPACK_FRONTEND_REPOSITORY}:{}", self.railpack_version)
    }
}

/// Where an upstream image (`ghcr.io/railwayapp/x:t`, `docker.io/docker/x:t`) is pushed on `registry` so that
/// BuildKit, with `registry` as the mirror of the upstream registry, finds it: the same path and tag.
pub fn mirror_reference(upstream: &str, registry: &str) -> Result<String, HarnessError> {
    let path = upstream
        .split_once('/')
        .filter(|(host, _)| host.contains('.'))
        .map(|(_, path)| path)
        .ok_or_else(|| HarnessError::Fixture {
            fixture: upstream.to_string(),
            reason: "not a fully qualified reference (registry host first)".into(),
        })?;
    Ok(format!("{registry}/{path}"))
}

/// Builds the frontend, runtime, builder and SBOM scanner images into an OCI layout under `work` (umoci) and
/// pushes them to `registry` (`HOST:PORT`, plain HTTP) under their upstream paths (skopeo).
pub fn push_railpack_images(registry: &str, work: &Path) -> Result<RailpackImages, HarnessError> {
    let railpack = crate::peers::peer_binary("railpack")?;
    let trivy = crate::peers::peer_binary("trivy")?;
    let railpack_version = crate::peers::peer_version("railpack")?;
    let busybox = static_busybox()?;

    // The frontend: the railpack binary alone (static: the Railpack frontend image upstream is alpine + it).
    let frontend_root = work.join("frontend-root");
    copy_executable(&railpack, &frontend_root.join("railpack"))?;
    ensure_static(&railpack)?;
    make_dir(&frontend_root.join("tmp"))?;

    // The runtime/builder stand-in.
    let base_root = work.join("base-root");
    busybox_root(busybox, &base_root)?;
    write_file(&base_root.join("bin/bash"), BASH_STANDIN, 0o755)?;
    for (from, to) in [
        ("/etc/os-release", "etc/os-release"),
        ("/etc/debian_version", "etc/debian_version"),
    ] {
        copy_file(Path::new(from), &base_root.join(to))?;
    }
    write_file(
        &base_root.join("var/lib/dpkg/status"),
        &dpkg_status_entry("busybox-static")?,
        0o644,
    )?;
    for dir in ["tmp", "app", "root", "usr/local/bin"] {
        make_dir(&base_root.join(dir))?;
    }
    fs::set_permissions(base_root.join("tmp"), fs::Permissions::from_mode(0o1777))
        .map_err(|e| HarnessError::io("chmod /tmp of the base image", e))?;

    // The SBOM scanner: busybox for its shell, trivy, the protocol entrypoint.
    let scanner_root = work.join("scanner-root");
    busybox_root(busybox, &scanner_root)?;
    ensure_static(&trivy)?;
    copy_executable(&trivy, &scanner_root.join("bin/trivy"))?;
    write_file(
        &scanner_root.join("kibaship-sbom-scan"),
        SCANNER_ENTRYPOINT,
        0o755,
    )?;
    make_dir(&scanner_root.join("tmp"))?;

    let layout = OciLayout::init(&work.join("layout"))?;
    let path_env = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let images: [(&str, &Path, &[&str]); 4] = [
        (
            "frontend",
            &frontend_root,
            &[
                "--config.entrypoint",
                "/railpack",
                "--config.entrypoint",
                "frontend",
            ],
        ),
        (
            "runtime",
            &base_root,
            &["--config.cmd", "/bin/sh", "--config.env", path_env],
        ),
        (
            "builder",
            &base_root,
            &["--config.cmd", "/bin/sh", "--config.env", path_env],
        ),
        (
            "scanner",
            &scanner_root,
            &[
                "--config.entrypoint",
                "/bin/sh",
                "--config.entrypoint",
                "/kibaship-sbom-scan",
                "--config.env",
                "PATH=/bin",
            ],
        ),
    ];
    for (tag, root, config) in images {
        layout.add_image(ImageSpec {
            tag,
            architecture: "amd64",
            config,
            content: Some((root, "/")),
        })?;
    }

    let frontend = format!("{RAILPACK_FRONTEND_REPOSITORY}:{railpack_version}");
    let mut pushed = Vec::new();
    for (tag, upstream) in [
        ("frontend", frontend.as_str()),
        ("runtime", RAILPACK_RUNTIME_IMAGE),
        ("builder", RAILPACK_BUILDER_IMAGE),
        ("scanner", SBOM_SCANNER_IMAGE),
    ] {
        let reference = mirror_reference(upstream, registry)?;
        layout.push_insecure(tag, &reference)?;
        pushed.push((upstream.to_string(), reference));
    }
    Ok(RailpackImages {
        railpack_version,
        pushed,
    })
}

/// The Debian release Railpack's own base images are built on (its `images/debian/*/Dockerfile`).
pub const DEBIAN_SUITE: &str = "bookworm";
/// Where [`debian_root_filesystem`] fetches Debian from.
const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

/// Debian's minimal root filesystem (`debootstrap --variant=minbase bookworm` from deb.debian.org), made once
/// into `$KIBASHIP_CACHE/images/debian-bookworm-minbase` (beside the peers, outside the clone) and reused; its
/// downloaded packages and package lists are removed. Needs root and debootstrap (`make deps`).
pub fn debian_root_filesystem() -> Result<PathBuf, HarnessError> {
    let images = image_cache_dir()?;
    let root = images.join(format!("debian-{DEBIAN_SUITE}-minbase"));
    // A finished root filesystem has its os-release; a half-made one (an interrupted run) is in a temp name.
    if root.join("etc/os-release").exists() {
        return Ok(root);
    }
    make_dir(&images)?;
    let debootstrap = find_tool(
        "debootstrap",
        "apt-get install debootstrap, or run `make deps`",
    )?;
    let partial = tempfile::Builder::new()
        .prefix(".debian-minbase-")
        .tempdir_in(&images)
        .map_err(|e| HarnessError::io("creating the debootstrap dir", e))?;
    let target = partial.path().join("rootfs");
    let target_str = target.display().to_string();
    run(
        &debootstrap,
        &[
            "--variant=minbase",
            DEBIAN_SUITE,
            &target_str,
            DEBIAN_MIRROR,
        ],
    )?;
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        remove_files_in(&target.join(dir))?;
    }
    match fs::rename(&target, &root) {
        Ok(()) => Ok(root),
        // Another test made it first: theirs is as good.
        Err(_) if root.join("etc/os-release").exists() => Ok(root),
        Err(e) => Err(HarnessError::io(
            format!("moving the root filesystem to {}", root.display()),
            e,
        )),
    }
}

/// The regular files directly in `dir` (a downloaded package, a package list), removed.
fn remove_files_in(dir: &Path) -> Result<(), HarnessError> {
    let entries =
        fs::read_dir(dir).map_err(|e| HarnessError::io(format!("reading {}", dir.display()), e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| HarnessError::io(format!("reading {}", dir.display()), e))?
            .path();
        if path.is_file() {
            fs::remove_file(&path)
                .map_err(|e| HarnessError::io(format!("removing {}", path.display()), e))?;
        }
    }
    Ok(())
}

/// The Go toolchain `version` (`1.23.4`) for linux/amd64 as the go command's own toolchain switch fetches it:
/// the module `golang.org/toolchain@v0.0.1-go<version>.linux-amd64` from the Go module proxy, in Go's module
/// cache. Returns its directory (`bin/go`, `pkg/tool`, `src`; the module cache does not keep exec bits).
pub fn go_toolchain(version: &str) -> Result<PathBuf, HarnessError> {
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(HarnessError::Fixture {
            fixture: format!("Go toolchain {version:?}"),
            reason: "not a Go release version such as 1.23.4".into(),
        });
    }
    let go = find_tool("go", "install Go (the peers are built with it)")?;
    let module = format!("golang.org/toolchain@v0.0.1-go{version}.linux-amd64");
    let printed = run(&go, &["mod", "download", "-json", &module])?;
    let dir = serde_json::from_str::<serde_json::Value>(&printed)
        .ok()
        .and_then(|v| v["Dir"].as_str().map(PathBuf::from))
        .ok_or_else(|| HarnessError::Fixture {
            fixture: module.clone(),
            reason: format!("go mod download printed no Dir: {printed}"),
        })?;
    Ok(dir)
}

/// What [`go_base_images`] builds changes with this (a new cache entry then).
const GO_BASE_IMAGES_RECIPE: u32 = 1;

/// Replaces the runtime and builder stand-ins on `registry` with images that build a Go app for real, as
/// Railpack's own would ([`go_base_images`]), pushed with skopeo under the upstream names.
pub fn push_go_base_images(registry: &str, go_version: &str) -> Result<(), HarnessError> {
    let layout = go_base_images(go_version)?;
    for (tag, upstream) in [
        ("runtime", RAILPACK_RUNTIME_IMAGE),
        ("builder", RAILPACK_BUILDER_IMAGE),
    ] {
        layout.push_insecure(tag, &mirror_reference(upstream, registry)?)?;
    }
    Ok(())
}

/// Railpack's runtime and builder images for Go apps, tagged `runtime` and `builder` in an OCI layout kept in
/// the cache (`$KIBASHIP_CACHE/images/railpack-go<version>-mise<version>-r<recipe>`; made once, with umoci):
/// - the runtime is [`debian_root_filesystem`] (a plan's `apt-get update && apt-get install` steps run Debian's
///   apt against deb.debian.org);
/// - the builder is the runtime plus one layer: the `mise` peer at `/usr/local/bin/mise` and Go `go_version`
///   ([`go_toolchain`]) already installed where mise installs it (`/mise/installs/go/<version>`, with its shims),
///   so `mise install` has nothing to download; with Railpack's `MISE_*` and `PATH` settings (its
///   `images/debian/build/Dockerfile`).
fn go_base_images(go_version: &str) -> Result<OciLayout, HarnessError> {
    let mise_version = crate::peers::peer_version("mise")?;
    let images = image_cache_dir()?;
    let cached = images.join(format!(
        "railpack-go{go_version}-mise{mise_version}-r{GO_BASE_IMAGES_RECIPE}"
    ));
    if cached.join("index.json").exists() {
        return OciLayout::open(&cached);
    }
    let toolchain = go_toolchain(go_version)?;
    let mise = crate::peers::peer_binary("mise")?;
    let debian = debian_root_filesystem()?;
    make_dir(&images)?;
    let work = tempfile::Builder::new()
        .prefix(".railpack-go-")
        .tempdir_in(&images)
        .map_err(|e| HarnessError::io("creating the image build dir", e))?;

    let tools = work.path().join("tools");
    copy_executable(&mise, &tools.join("usr/local/bin/mise"))?;
    let installed = tools.join("mise/installs/go").join(go_version);
    make_dir(&tools.join("mise/installs/go"))?;
    let cp = find_tool("cp", "coreutils")?;
    let (from, to) = (
        toolchain.display().to_string(),
        installed.display().to_string(),
    );
    run(&cp, &["-r", &from, &to])?;
    // The module cache's files are read-only and have no exec bits; as go's toolchain switch does, the commands
    // in bin/ and pkg/tool/ are made executable.
    let chmod = find_tool("chmod", "coreutils")?;
    run(&chmod, &["-R", "u+w,a+rX", &to])?;
    for dir in ["bin", "pkg/tool/linux_amd64"] {
        let dir = installed.join(dir);
        let entries = fs::read_dir(&dir)
            .map_err(|e| HarnessError::io(format!("reading {}", dir.display()), e))?;
        for entry in entries {
            let path = entry
                .map_err(|e| HarnessError::io(format!("reading {}", dir.display()), e))?
                .path();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .map_err(|e| HarnessError::io(format!("chmod {}", path.display()), e))?;
        }
    }
    let shims = tools.join("mise/shims");
    make_dir(&shims)?;
    for command in ["go", "gofmt"] {
        std::os::unix::fs::symlink(
            format!("/mise/installs/go/{go_version}/bin/{command}"),
            shims.join(command),
        )
        .map_err(|e| HarnessError::io(format!("linking the {command} shim"), e))?;
    }

    let layout_dir = work.path().join("layout");
    let layout = OciLayout::init(&layout_dir)?;
    const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let runtime_path = format!("PATH={SYSTEM_PATH}");
    layout.add_root_filesystem(ImageSpec {
        tag: "runtime",
        architecture: "amd64",
        config: &[
            "--config.cmd",
            "/bin/bash",
            "--config.env",
            "DEBIAN_FRONTEND=noninteractive",
            "--config.env",
            &runtime_path,
        ],
        content: Some((&debian, "/")),
    })?;
    let builder_path = format!("PATH=/mise/shims:{SYSTEM_PATH}");
    layout.add_image_on(
        "runtime",
        ImageSpec {
            tag: "builder",
            architecture: "amd64",
            config: &[
                "--config.env",
                &builder_path,
                "--config.env",
                "MISE_INSTALL_PATH=/usr/local/bin/mise",
                "--config.env",
                "MISE_DATA_DIR=/mise",
                "--config.env",
                "MISE_CONFIG_DIR=/mise",
                "--config.env",
                "MISE_CACHE_DIR=/mise/cache",
            ],
            content: Some((&tools, "/")),
        },
    )?;
    match fs::rename(&layout_dir, &cached) {
        Ok(()) => {}
        // Another test made it first: theirs is as good.
        Err(_) if cached.join("index.json").exists() => {}
        Err(e) => {
            return Err(HarnessError::io(
                format!("moving the images to {}", cached.display()),
                e,
            ));
        }
    }
    OciLayout::open(&cached)
}

/// `$KIBASHIP_CACHE/images`: images made once and kept beside the peers (outside the clone).
fn image_cache_dir() -> Result<PathBuf, HarnessError> {
    crate::peers::peer_cache_dir()?
        .parent()
        .map(|cache| cache.join("images"))
        .ok_or_else(|| HarnessError::Fixture {
            fixture: "image cache".into(),
            reason: "the peer cache directory has no parent".into(),
        })
}

/// buildkitd's configuration for Railpack builds: `host` is its mirror for `ghcr.io` and `docker.io`.
fn daemon_config(host: &str) -> BuildkitdConfig {
    BuildkitdConfig::default()
        .plain_http_registry(host)
        .mirror("ghcr.io", host)
        .mirror("docker.io", host)
}

fn image_build_dir() -> Result<tempfile::TempDir, HarnessError> {
    tempfile::Builder::new()
        .prefix("kibaship-railpack-images-")
        .tempdir()
        .map_err(|e| HarnessError::io("creating the image build dir", e))
}

/// A buildkitd that builds Railpack plans offline: the [`push_railpack_images`] images on a test registry,
/// which is buildkitd's mirror for `ghcr.io` and `docker.io` and a plain-HTTP push target.
#[derive(Debug)]
pub struct RailpackBuildkit {
    images: RailpackImages,
    buildkitd: TestBuildkitd,
}

impl RailpackBuildkit {
    /// Pushes the images to `registry` (a plain-HTTP [`TestRegistry`]) and starts buildkitd with it as the
    /// mirror. The images are built in a temp dir removed before this returns.
    pub fn start(registry: &TestRegistry) -> Result<RailpackBuildkit, HarnessError> {
        RailpackBuildkit::start_for(&registry.host())
    }

    /// As [`RailpackBuildkit::start`], for a plain-HTTP registry given by its address (`HOST:PORT`), such as
    /// one started by `kibaship-harness registry start`.
    pub fn start_for(host: &str) -> Result<RailpackBuildkit, HarnessError> {
        let work = image_build_dir()?;
        let images = push_railpack_images(host, work.path())?;
        drop(work);
        RailpackBuildkit::start_daemon(host, images)
    }

    /// As [`RailpackBuildkit::start`], with base images that build Go apps for real ([`push_go_base_images`]:
    /// Debian, mise and Go `go_version` in the builder) instead of the busybox stand-ins.
    pub fn start_with_go(
        registry: &TestRegistry,
        go_version: &str,
    ) -> Result<RailpackBuildkit, HarnessError> {
        let host = registry.host();
        let work = image_build_dir()?;
        let images = push_railpack_images(&host, work.path())?;
        push_go_base_images(&host, go_version)?;
        drop(work);
        let config = daemon_config(&host).overlayfs_snapshotter();
        Ok(RailpackBuildkit {
            images,
            buildkitd: TestBuildkitd::start(&config)?,
        })
    }

    fn start_daemon(host: &str, images: RailpackImages) -> Result<RailpackBuildkit, HarnessError> {
        let config = daemon_config(host);
        let buildkitd = TestBuildkitd::start(&config)?;
        Ok(RailpackBuildkit { images, buildkitd })
    }

    /// The running buildkitd.
    pub fn buildkitd(&self) -> &TestBuildkitd {
        &self.buildkitd
    }

    /// What was pushed.
    pub fn images(&self) -> &RailpackImages {
        &self.images
    }
}

// `kibaship-harness buildkit start|stop`: a RailpackBuildkit that outlives the command, for shell scripts.
//
// `start` spawns `kibaship-harness buildkit hold` detached (its own process group, pid in the state dir); the
// holder pushes the images, starts buildkitd under the supervisor (whose lifeline the holder holds: if the
// holder dies, buildkitd is stopped), writes the export lines, and waits for SIGTERM/SIGINT/SIGHUP, on which it
// keeps buildkitd's log in the state dir and drops the daemon (stopped, mounts detached, its dir removed).
// `stop` signals the holder and then sweeps whatever a killed holder left: daemon processes, mounts, the dir.

const HOLDER_PID: &str = "holder.pid";
const DAEMON_PIDS: &str = "buildkitd.pids";
const DAEMON_DIR: &str = "buildkitd.dir";
const EXPORTS: &str = "buildkit.env";
const HOLDER_LOG: &str = "harness.log";
/// The daemon's log, kept in the state dir when the daemon stops.
pub const DETACHED_BUILDKITD_LOG: &str = "buildkitd.log";
/// Building and pushing the images, then buildkitd's start: generous, the machine may be loaded.
const DETACHED_START_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the holder has to stop buildkitd (the supervisor waits 10 s) before it is killed.
const HOLDER_STOP_GRACE: Duration = Duration::from_secs(30);

/// Starts a [`RailpackBuildkit`] for the plain-HTTP registry `registry_host` that outlives this process, with
/// its state in `state_dir` (created if needed; must not hold a running one). `harness_exe` is run as
/// `harness_exe buildkit hold --registry HOST --state-dir DIR`. Returns the shell lines exporting
/// `BUILDKIT_HOST`, `KIBASHIP_BUILDCTL`, `KIBASHIP_RAILPACK_VERSION`, `KIBASHIP_RAILPACK_FRONTEND` and
/// `KIBASHIP_BUILDKIT_LOG`, once buildkitd lists its worker.
pub fn start_detached(
    registry_host: &str,
    state_dir: &Path,
    harness_exe: &Path,
) -> Result<String, HarnessError> {
    let state_dir = crate::process::absolute_state_dir(state_dir)?;
    if let Some(pid) = read_pid(&state_dir.join(HOLDER_PID))
        && process_alive(pid)
        && command_line_mentions(pid, &state_dir)
    {
        return Err(HarnessError::State {
            dir: state_dir,
            reason: format!(
                "a buildkitd (holder pid {pid}) is already running from here; stop it first"
            ),
        });
    }
    // Whatever a holder killed earlier left behind.
    stop_detached(&state_dir)?;
    let log = state_dir.join(HOLDER_LOG);
    for stale in [HOLDER_LOG, DETACHED_BUILDKITD_LOG] {
        let _ = fs::remove_file(state_dir.join(stale));
    }
    let args = [
        "buildkit".to_string(),
        "hold".into(),
        "--registry".into(),
        registry_host.to_string(),
        "--state-dir".into(),
        state_dir.display().to_string(),
    ];
    let pid = crate::process::spawn_detached(harness_exe, &args, &log)?;
    write_text(&state_dir.join(HOLDER_PID), &format!("{pid}\n"))?;
    let started = Instant::now();
    loop {
        if let Ok(exports) = fs::read_to_string(state_dir.join(EXPORTS)) {
            return Ok(exports);
        }
        if !process_alive(pid) {
            let _ = stop_detached(&state_dir);
            return Err(HarnessError::Exited {
                what: "kibaship-harness buildkit hold".into(),
                status: "exited before buildkitd was ready".into(),
                log: log.clone(),
                log_tail: crate::process::log_tail(&log),
            });
        }
        if started.elapsed() > DETACHED_START_TIMEOUT {
            let _ = stop_detached(&state_dir);
            return Err(HarnessError::NotReady {
                what: "buildkitd (detached)".into(),
                url: state_dir.join(EXPORTS).display().to_string(),
                waited_secs: DETACHED_START_TIMEOUT.as_secs(),
                log: log.clone(),
                log_tail: crate::process::log_tail(&log),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The holder's side of [`start_detached`] (`kibaship-harness buildkit hold`): starts the
/// [`RailpackBuildkit`], writes the state files and the export lines, and holds it until SIGTERM, SIGINT or
/// SIGHUP; then keeps buildkitd's log in `state_dir` and stops the daemon.
pub fn hold_detached(registry_host: &str, state_dir: &Path) -> Result<(), HarnessError> {
    let signal_error = |e: nix::errno::Errno| HarnessError::io("taking stop signals", e.into());
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    // Blocked before any child starts (children get the default mask back), taken synchronously below.
    signals.thread_block().map_err(signal_error)?;
    let buildkit = RailpackBuildkit::start_for(registry_host)?;
    let daemon = buildkit.buildkitd();
    let pids: Vec<String> = daemon.process_ids().iter().map(u32::to_string).collect();
    write_text(
        &state_dir.join(DAEMON_PIDS),
        &format!("{}\n", pids.join(" ")),
    )?;
    write_text(
        &state_dir.join(DAEMON_DIR),
        &format!("{}\n", daemon.dir().display()),
    )?;
    let exports = format!(
        "export BUILDKIT_HOST={}\nexport KIBASHIP_BUILDCTL={}\nexport KIBASHIP_RAILPACK_VERSION={}\n\
         export KIBASHIP_RAILPACK_FRONTEND={}\nexport KIBASHIP_BUILDKIT_LOG={}\n",
        shell_quote(daemon.addr()),
        shell_quote(&daemon.buildctl_path().display().to_string()),
        shell_quote(&buildkit.images().railpack_version),
        shell_quote(&buildkit.images().frontend()),
        shell_quote(&daemon.log_path().display().to_string()),
    );
    // Written whole, then renamed: `start` never reads half a file.
    let partial = state_dir.join(format!("{EXPORTS}.partial"));
    write_text(&partial, &exports)?;
    fs::rename(&partial, state_dir.join(EXPORTS))
        .map_err(|e| HarnessError::io(format!("renaming {}", partial.display()), e))?;
    let received = signals.wait().map_err(signal_error)?;
    eprintln!("kibaship-harness: {received:?}: stopping buildkitd");
    let _ = fs::copy(daemon.log_path(), state_dir.join(DETACHED_BUILDKITD_LOG));
    drop(buildkit);
    for done in [DAEMON_PIDS, DAEMON_DIR, EXPORTS] {
        let _ = fs::remove_file(state_dir.join(done));
    }
    Ok(())
}

/// Stops what [`start_detached`] started from `state_dir` and removes what it left: buildkitd's processes,
/// its mounts and its directory (its log is kept in `state_dir` as [`DETACHED_BUILDKITD_LOG`]). Only
/// processes whose command line names the state dir (the holder) or buildkitd's dir (the daemon and its
/// supervisor) are signalled. Returns how many processes were stopped.
pub fn stop_detached(state_dir: &Path) -> Result<usize, HarnessError> {
    let state_dir = state_dir
        .canonicalize()
        .unwrap_or_else(|_| state_dir.to_path_buf());
    let mut stopped = 0;
    let mut stuck = Vec::new();
    if let Some(pid) = read_pid(&state_dir.join(HOLDER_PID)) {
        if process_alive(pid) && command_line_mentions(pid, &state_dir) {
            let _ = signal::kill(raw_pid(pid), Signal::SIGTERM);
            if !wait_gone(pid, HOLDER_STOP_GRACE) {
                // Killed, its lifeline to buildkitd's supervisor closes: the sweep below does the rest.
                let _ = signal::kill(raw_pid(pid), Signal::SIGKILL);
            }
            if wait_gone(pid, Duration::from_secs(5)) {
                stopped += 1;
            } else {
                stuck.push(pid);
            }
        }
        let _ = fs::remove_file(state_dir.join(HOLDER_PID));
    }
    let daemon_dir = fs::read_to_string(state_dir.join(DAEMON_DIR))
        .ok()
        .map(|d| PathBuf::from(d.trim()))
        .filter(|d| {
            d.is_absolute()
                && d.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("kibaship-buildkitd-"))
        });
    if let (Some(dir), Ok(text)) = (&daemon_dir, fs::read_to_string(state_dir.join(DAEMON_PIDS))) {
        for pid in text
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            if wait_gone(pid, Duration::from_secs(15)) || !command_line_mentions(pid, dir) {
                continue;
            }
            let _ = signal::killpg(raw_pid(pid), Signal::SIGKILL);
            let _ = signal::kill(raw_pid(pid), Signal::SIGKILL);
            if wait_gone(pid, Duration::from_secs(5)) {
                stopped += 1;
            } else {
                stuck.push(pid);
            }
        }
    }
    if let Some(dir) = &daemon_dir
        && dir.exists()
    {
        let _ = fs::copy(
            dir.join("buildkitd.log"),
            state_dir.join(DETACHED_BUILDKITD_LOG),
        );
        crate::buildkit::detach_mounts_under(dir);
        fs::remove_dir_all(dir)
            .map_err(|e| HarnessError::io(format!("removing {}", dir.display()), e))?;
    }
    for done in [DAEMON_PIDS, DAEMON_DIR, EXPORTS] {
        let _ = fs::remove_file(state_dir.join(done));
    }
    if stuck.is_empty() {
        Ok(stopped)
    } else {
        Err(HarnessError::State {
            dir: state_dir,
            reason: format!("processes {stuck:?} did not stop"),
        })
    }
}

fn raw_pid(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX))
}

/// Polls until `pid` is gone (or a zombie); false if it is still there after `within`.
fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while process_alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

fn command_line_mentions(pid: u32, dir: &Path) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|raw| String::from_utf8_lossy(&raw).contains(&dir.display().to_string()))
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn write_text(path: &Path, text: &str) -> Result<(), HarnessError> {
    fs::write(path, text).map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// busybox's dpkg status entry on this host (`dpkg-query -s`), so the stand-in's package is the one copied.
fn dpkg_status_entry(package: &str) -> Result<String, HarnessError> {
    let dpkg_query = find_tool("dpkg-query", "a Debian host has dpkg")?;
    let mut entry = run(&dpkg_query, &["-s", package])?;
    if !entry.ends_with('\n') {
        entry.push('\n');
    }
    entry.push('\n');
    Ok(entry)
}

/// `root/bin/busybox` and a symlink per applet (`busybox --list`), `/bin/sh` among them.
fn busybox_root(busybox: &Path, root: &Path) -> Result<(), HarnessError> {
    let bin = root.join("bin");
    copy_executable(busybox, &bin.join("busybox"))?;
    let applets = run(busybox, &["--list"])?;
    for applet in applets.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        std::os::unix::fs::symlink("busybox", bin.join(applet))
            .map_err(|e| HarnessError::io(format!("linking /bin/{applet} to busybox"), e))?;
    }
    Ok(())
}

/// Refuses a dynamically linked binary: an image holding only it could not run it.
fn ensure_static(binary: &Path) -> Result<(), HarnessError> {
    let bytes = fs::read(binary)
        .map_err(|e| HarnessError::io(format!("reading {}", binary.display()), e))?;
    if elf_has_interpreter(&bytes) {
        return Err(HarnessError::PeerUnavailable {
            name: binary.display().to_string(),
            reason: "is dynamically linked (it has an ELF interpreter), so an image holding only it cannot \
                     run it: its tools/peers.txt line needs CGO_ENABLED=0; run `make peers`"
                .into(),
        });
    }
    Ok(())
}

/// Whether a 64-bit little-endian ELF file has a `PT_INTERP` program header.
fn elf_has_interpreter(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let read = |at: usize, len: usize| bytes.get(at..at + len);
    let u16_at = |at| read(at, 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |at| read(at, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |at| {
        read(at, 8).map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    };
    if read(0, 4) != Some(b"\x7fELF".as_slice()) || bytes.get(4) != Some(&2) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum)).any(|i| u32_at(phoff + i * usize::from(phentsize)) == Some(PT_INTERP))
}

fn make_dir(dir: &Path) -> Result<(), HarnessError> {
    fs::create_dir_all(dir).map_err(|e| HarnessError::io(format!("creating {}", dir.display()), e))
}

fn copy_executable(from: &Path, to: &Path) -> Result<(), HarnessError> {
    copy_file(from, to)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))
        .map_err(|e| HarnessError::io(format!("chmod {}", to.display()), e))
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), HarnessError> {
    make_dir(path.parent().unwrap_or(Path::new("/")))?;
    fs::write(path, contents)
        .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| HarnessError::io(format!("chmod {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_references_keep_the_upstream_path_and_tag() {
        assert_eq!(
            mirror_reference(SBOM_SCANNER_IMAGE, "127.0.0.1:5000").unwrap(),
            "127.0.0.1:5000/docker/buildkit-syft-scanner:stable-1"
        );
        assert_eq!(
            mirror_reference(
                "ghcr.io/railwayapp/railpack-frontend:v0.15.0",
                "127.0.0.1:5000"
            )
            .unwrap(),
            "127.0.0.1:5000/railwayapp/railpack-frontend:v0.15.0"
        );
        assert!(mirror_reference("railpack-frontend:v1", "h:1").is_err());
    }

    #[test]
    fn tells_static_from_dynamic_elf() {
        let sh = fs::read("/bin/sh").unwrap();
        assert!(
            elf_has_interpreter(&sh),
            "/bin/sh is dynamically linked on Debian"
        );
        if let Ok(busybox) = fs::read("/bin/busybox") {
            assert!(
                !elf_has_interpreter(&busybox),
                "busybox-static has no interpreter"
            );
        }
        assert!(!elf_has_interpreter(b"#!/bin/sh\n"));
        assert!(!elf_has_interpreter(b"\x7fELF\x02"));
    }
}
