//! Images built without a Docker engine: an OCI layout written with umoci, pushed with skopeo. What the fixture
//! images, the cluster's pause/tools/Tekton images and Railpack's frontend and base images are built with.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::HarnessError;
use crate::process::find_tool;

/// Runs `program` with `args` to completion, stdin closed; its stdout, or `Err` with its stderr.
pub(crate) fn run_checked(
    program: impl AsRef<OsStr>,
    args: &[&str],
) -> Result<String, HarnessError> {
    let program = program.as_ref();
    let command = format!("{} {}", program.to_string_lossy(), args.join(" "));
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HarnessError::Spawn {
            command: command.clone(),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(HarnessError::CommandFailed {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// Copies `from` to `to`, creating `to`'s parent directories.
pub(crate) fn copy_file(from: &Path, to: &Path) -> Result<(), HarnessError> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| HarnessError::io(format!("creating {}", parent.display()), e))?;
    }
    fs::copy(from, to)
        .map(drop)
        .map_err(|e| HarnessError::io(format!("copying {} to {}", from.display(), to.display()), e))
}

/// Debian's static busybox (`busybox-static`): the shell and tools of the images we build.
pub(crate) fn static_busybox() -> Result<&'static Path, HarnessError> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| HarnessError::ToolMissing {
            tool: "busybox".into(),
            hint: "apt-get install busybox-static, or run `make deps`".into(),
        })
}

/// One image to add to an [`OciLayout`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ImageSpec<'a> {
    /// Its tag in the layout.
    pub tag: &'a str,
    /// `amd64`, `arm64`, ...
    pub architecture: &'a str,
    /// umoci's `config` flags (`--config.entrypoint`, `--config.cmd`, `--config.env`, `--config.label`, ...).
    pub config: &'a [&'a str],
    /// A directory whose contents become the image's one layer, and where they go in the image (`/`, `/app`);
    /// `None` for an image of no layer.
    pub content: Option<(&'a Path, &'a str)>,
}

/// An OCI image layout on disk, written with umoci.
#[derive(Debug)]
pub(crate) struct OciLayout {
    path: PathBuf,
    umoci: PathBuf,
}

impl OciLayout {
    /// Creates an empty layout at `path`.
    pub(crate) fn init(path: &Path) -> Result<OciLayout, HarnessError> {
        let layout = OciLayout::open(path)?;
        layout.umoci(&["init", "--layout", &layout.path_str()])?;
        Ok(layout)
    }

    /// The layout already at `path` (made by [`OciLayout::init`]).
    pub(crate) fn open(path: &Path) -> Result<OciLayout, HarnessError> {
        Ok(OciLayout {
            path: path.to_path_buf(),
            umoci: find_tool("umoci", "apt-get install umoci, or run `make deps`")?,
        })
    }

    /// The layout's directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn path_str(&self) -> String {
        self.path.display().to_string()
    }

    fn umoci(&self, args: &[&str]) -> Result<(), HarnessError> {
        run_checked(&self.umoci, args).map(drop)
    }

    /// Adds an image for linux/`architecture` under `spec.tag`: its config, then its one layer (files owned by
    /// root in the image whoever built it).
    pub(crate) fn add_image(&self, spec: ImageSpec<'_>) -> Result<(), HarnessError> {
        self.add(spec, true)
    }

    /// [`OciLayout::add_image`] for a distribution's root filesystem: files keep their owners and groups
    /// (Debian's `/etc/shadow` is group `shadow`, `/var/mail` group `mail`), as numbers.
    pub(crate) fn add_root_filesystem(&self, spec: ImageSpec<'_>) -> Result<(), HarnessError> {
        self.add(spec, false)
    }

    /// An image `spec.tag` made of image `base`'s layers and config, then `spec`'s config flags and layer (files
    /// owned by root), as a Dockerfile's `FROM base` + `ENV` + `COPY` would.
    pub(crate) fn add_image_on(&self, base: &str, spec: ImageSpec<'_>) -> Result<(), HarnessError> {
        let base = format!("{}:{base}", self.path_str());
        self.umoci(&["tag", "--image", &base, spec.tag])?;
        self.extend(spec, true)
    }

    fn add(&self, spec: ImageSpec<'_>, owned_by_root: bool) -> Result<(), HarnessError> {
        let image = format!("{}:{}", self.path_str(), spec.tag);
        self.umoci(&["new", "--image", &image])?;
        self.extend(spec, owned_by_root)
    }

    /// Sets `spec`'s config on the image tagged `spec.tag` and adds its layer.
    fn extend(&self, spec: ImageSpec<'_>, owned_by_root: bool) -> Result<(), HarnessError> {
        let image = format!("{}:{}", self.path_str(), spec.tag);
        let mut config = vec![
            "config",
            "--image",
            &image,
            "--os",
            "linux",
            "--architecture",
            spec.architecture,
        ];
        config.extend_from_slice(spec.config);
        self.umoci(&config)?;
        if let Some((dir, at)) = spec.content {
            // GNU tar writes the layer and umoci only compresses and adds it: umoci 0.4.7's `insert` (Debian 12)
            // ends its tar stream without the last entry's padding or the end-of-archive blocks, which Go's
            // reader forgives and Python's tarfile and GNU tar refuse.
            let tar = find_tool("tar", "apt-get install tar")?;
            let file = self.path.with_extension(format!("{}.layer.tar", spec.tag));
            let file_str = file.display().to_string();
            let prefix = format!("s,^\\.,.{},rhS", at.trim_end_matches('/'));
            let dir = dir.display().to_string();
            let mut args = vec!["--create", "--file", &file_str, "--numeric-owner"];
            if owned_by_root {
                args.extend(["--owner=0", "--group=0"]);
            }
            args.extend([
                "--sort=name",
                "--transform",
                &prefix,
                "--directory",
                &dir,
                ".",
            ]);
            let written = run_checked(&tar, &args)
                .and_then(|_| self.umoci(&["raw", "add-layer", "--image", &image, &file_str]));
            let _ = fs::remove_file(&file);
            written?;
        }
        Ok(())
    }

    /// Removes blobs no tag refers to any more.
    pub(crate) fn gc(&self) -> Result<(), HarnessError> {
        self.umoci(&["gc", "--layout", &self.path_str()])
    }

    /// Pushes the image tagged `tag` to `reference` (`host:port/repo:tag`) over plain HTTP, with skopeo.
    pub(crate) fn push_insecure(&self, tag: &str, reference: &str) -> Result<(), HarnessError> {
        let skopeo = find_tool("skopeo", "apt-get install skopeo, or run `make deps`")?;
        run_checked(
            &skopeo,
            &[
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                &format!("oci:{}:{tag}", self.path_str()),
                &format!("docker://{reference}"),
            ],
        )
        .map(drop)
    }
}
