//! `make images` (scripts/images.sh, issue 16 part 6) and the Dockerfile give the same image: what the
//! Dockerfile's final stage declares (the files it copies and where, mode 0755, the user, the entrypoint, the
//! labels) is what the script's OCI image has, and the script's image also has what the Dockerfile gets from its
//! distroless base that the binaries use (the `nonroot` user, the CA bundle, a world-writable /tmp).
//!
//! The Dockerfile cannot be built here (its bases come from docker.io and gcr.io), so its final stage is read as
//! text; the script runs for real with umoci. It is given this test's `kibaship-step` under all three names: the
//! layout is under test, not the binaries (`make images` builds the real static ones).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What the Dockerfile's last stage declares.
#[derive(Debug, Default)]
struct FinalStage {
    labels: BTreeMap<String, String>,
    /// Absolute paths in the image of the files it copies.
    files: Vec<String>,
    user: String,
    entrypoint: Vec<String>,
}

/// Instructions of the last `FROM` on, continuation lines joined, comments dropped.
fn final_stage(dockerfile: &str) -> FinalStage {
    let mut instructions: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            instructions.push(std::mem::take(&mut current));
        }
    }
    let last_from = instructions
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .expect("a FROM");
    let mut stage = FinalStage::default();
    for instruction in &instructions[last_from + 1..] {
        let (word, rest) = instruction.split_once(' ').unwrap();
        match word {
            "LABEL" => {
                // key="value" pairs; values may contain spaces and commas.
                let mut rest = rest.trim();
                while let Some((key, after)) = rest.split_once("=\"") {
                    let (value, tail) = after.split_once('"').expect("a closing quote");
                    stage
                        .labels
                        .insert(key.trim().to_string(), value.to_string());
                    rest = tail.trim();
                }
            }
            "COPY" => {
                let words: Vec<&str> = rest
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let (dest, sources) = words.split_last().unwrap();
                assert!(dest.ends_with('/'), "COPY to a directory: {instruction}");
                for source in sources {
                    let name = source.rsplit('/').next().unwrap();
                    stage.files.push(format!("{dest}{name}"));
                }
            }
            "USER" => stage.user = rest.trim().to_string(),
            "ENTRYPOINT" => stage.entrypoint = serde_json::from_str(rest.trim()).unwrap(),
            other => panic!("the test does not know Dockerfile instruction {other}: {instruction}"),
        }
    }
    stage
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// One entry of `tar -tv --numeric-owner`: (mode string, owner "uid/gid", path without the leading `./` or `/`).
fn layer_entries(layer: &Path) -> Vec<(String, String, String)> {
    let out = Command::new("tar")
        .args(["-tvz", "--numeric-owner", "-f"])
        .arg(layer)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = fields.last().unwrap();
            let path = path.trim_start_matches("./").trim_start_matches('/');
            (
                fields[0].to_string(),
                fields[1].to_string(),
                path.trim_end_matches('/').to_string(),
            )
        })
        .collect()
}

#[test]
fn make_images_matches_the_dockerfile_final_stage() {
    let stage = final_stage(&fs::read_to_string(repo().join("Dockerfile")).unwrap());
    assert_eq!(
        stage.files.len(),
        3,
        "the Dockerfile copies three binaries: {stage:?}"
    );

    let work = tempfile::tempdir().unwrap();
    let bins = work.path().join("bin");
    fs::create_dir_all(&bins).unwrap();
    for file in &stage.files {
        let name = file.rsplit('/').next().unwrap();
        fs::copy(env!("CARGO_BIN_EXE_kibaship-step"), bins.join(name)).unwrap();
    }
    let layout = work.path().join("oci");
    let out = Command::new("bash")
        .arg(repo().join("scripts/images.sh"))
        .args(["--bin-dir", bins.to_str().unwrap()])
        .args(["--layout", layout.to_str().unwrap()])
        .args(["--tag", "layout-test"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "images.sh: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let index = json(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().unwrap();
    let descriptor = manifests
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "layout-test")
        .expect("the tag in the layout");
    let manifest = json(&blob(&layout, descriptor["digest"].as_str().unwrap()));
    let config = json(&blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ));
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    let c = &config["config"];
    assert_eq!(c["User"], stage.user.as_str(), "USER");
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(stage.entrypoint),
        "ENTRYPOINT"
    );
    for (key, value) in &stage.labels {
        assert_eq!(c["Labels"][key], value.as_str(), "LABEL {key}");
    }
    assert!(
        c["Labels"]["org.opencontainers.image.revision"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{c}"
    );

    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let entries = layer_entries(&blob(&layout, layers[0]["digest"].as_str().unwrap()));
    let entry = |path: &str| {
        entries
            .iter()
            .find(|(_, _, p)| p == path.trim_start_matches('/'))
            .unwrap_or_else(|| panic!("{path} not in the image: {entries:?}"))
    };
    for file in &stage.files {
        let (mode, owner, _) = entry(file);
        assert_eq!(mode, "-rwxr-xr-x", "{file}");
        assert_eq!(owner, "0/0", "{file}");
    }
    // What the distroless base gives the Dockerfile's image, and the binaries rely on.
    assert_eq!(entry("/tmp").0, "drwxrwxrwt");
    assert_eq!(entry("/etc/ssl/certs/ca-certificates.crt").0, "-rw-r--r--");
    let root = work.path().join("unpacked");
    let unpack = Command::new("umoci")
        .args(["raw", "unpack", "--rootless", "--image"])
        .arg(format!("{}:layout-test", layout.display()))
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        unpack.status.success(),
        "{}",
        String::from_utf8_lossy(&unpack.stderr)
    );
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    let uid = stage.user.split(':').next().unwrap();
    assert!(
        passwd
            .lines()
            .any(|l| l.split(':').nth(2) == Some(uid) && l.starts_with("nonroot:")),
        "the USER {uid} is nonroot in /etc/passwd:\n{passwd}"
    );
}
