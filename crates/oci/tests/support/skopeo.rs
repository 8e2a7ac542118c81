//! skopeo, the independent client the real-registry tests cross-check against.

use std::path::{Path, PathBuf};
use std::process::Command;

/// skopeo on PATH; panics naming the Debian package when it is missing.
pub fn skopeo() -> PathBuf {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| Path::new(dir).join("skopeo"))
        .find(|candidate| candidate.is_file())
        .expect("skopeo is not on PATH: install the Debian package `skopeo` (make deps does)")
}

/// `skopeo inspect --raw` of `reference`: the exact manifest bytes the registry serves.
pub fn skopeo_raw(reference: &str, creds: Option<&(String, String)>) -> Vec<u8> {
    let mut cmd = Command::new(skopeo());
    cmd.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some((u, p)) = creds {
        cmd.arg("--creds").arg(format!("{u}:{p}"));
    }
    let out = cmd.arg(format!("docker://{reference}")).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect --raw {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
