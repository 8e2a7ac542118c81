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
//! static provider's caddy) fails in them; the shell provider builds.
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
use std::path::Path;

use crate::HarnessError;
use crate::buildkit::{BuildkitdConfig, TestBuildkitd};
use crate::oci_layout::{ImageSpec, OciLayout, copy_file, run_checked as run};
use crate::process::find_tool;
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
    let railpack_version = crate::peers::peer_specs()?
        .into_iter()
        .find(|p| p.name == "railpack")
        .map(|p| p.version)
        .ok_or_else(|| HarnessError::PeerUnavailable {
            name: "railpack".into(),
            reason: "not listed in tools/peers.txt".into(),
        })?;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| HarnessError::ToolMissing {
            tool: "busybox".into(),
            hint: "apt-get install busybox-static, or run `make deps`".into(),
        })?;

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
        let host = registry.host();
        let work = tempfile::Builder::new()
            .prefix("kibaship-railpack-images-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating the image build dir", e))?;
        let images = push_railpack_images(&host, work.path())?;
        drop(work);
        let config = BuildkitdConfig::default()
            .plain_http_registry(&host)
            .mirror("ghcr.io", &host)
            .mirror("docker.io", &host);
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
