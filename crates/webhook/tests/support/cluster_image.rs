//! The webhook binary as an OCI image, built without a Docker engine: the binary, the shared libraries `ldd`
//! names, the dynamic loader and the host's CA bundle in a root filesystem, made an image with umoci and pushed with skopeo.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_into(root: &Path, file: &Path) {
    let target = root.join(file.strip_prefix("/").unwrap_or(file));
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    // `fs::copy` follows symlinks (the loader in /lib64 is one): the image gets the file itself.
    fs::copy(file, &target).unwrap_or_else(|e| panic!("copying {}: {e}", file.display()));
}

/// The absolute paths `ldd` prints for `binary`: its libraries and the loader.
fn linked(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().expect("ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().find(|w| w.starts_with('/')))
        .map(PathBuf::from)
        .collect()
}

/// Builds an image holding `binary` as `/bin/<name>` (with its libraries) under `work` and pushes it to
/// `reference` (a plain-HTTP registry). Returns `reference`.
pub fn build_and_push(work: &Path, binary: &Path, name: &str, reference: &str) -> String {
    let root = work.join("rootfs");
    let target = root.join("bin").join(name);
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::copy(binary, &target).unwrap();
    for lib in linked(binary) {
        copy_into(&root, &lib);
    }
    // The system CA bundle: the program's HTTP clients refuse to start without one.
    copy_into(&root, Path::new("/etc/ssl/certs/ca-certificates.crt"));
    fs::create_dir_all(root.join("tmp")).unwrap();
    let layout = work.join("layout");
    let layout = layout.to_str().unwrap();
    let image = format!("{layout}:{name}");
    run("umoci", &["init", "--layout", layout]);
    run("umoci", &["new", "--image", &image]);
    run(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--os",
            "linux",
            "--architecture",
            "amd64",
            "--config.entrypoint",
            &format!("/bin/{name}"),
            "--config.env",
            "PATH=/bin",
        ],
    );
    run(
        "umoci",
        &[
            "insert",
            "--rootless",
            "--image",
            &image,
            root.to_str().unwrap(),
            "/",
        ],
    );
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            &format!("oci:{layout}:{name}"),
            &format!("docker://{reference}"),
        ],
    );
    reference.to_string()
}
