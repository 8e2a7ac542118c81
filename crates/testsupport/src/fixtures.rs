//! Fixture images built without a Docker engine (umoci) and pushed with skopeo.
//!
//! The OCI layout is built once per machine and cached under the temp dir (`kibaship-fixtures-v1`), so tests
//! stay quick; every push copies it into the registry under test. The pushed set covers all four manifest
//! media types: OCI manifest, OCI index (linux/amd64 + linux/arm64), Docker v2 schema 2 manifest and Docker
//! manifest list.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::thread;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::HarnessError;
use crate::http::HttpConnection;
use crate::oci_layout::{ImageSpec, OciLayout};
use crate::process::find_tool;
use crate::registry::{RegistryEndpoint, TestRegistry};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest v2 schema 2 media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A fixture image pushed to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// e.g. `fixtures/app`.
    pub repository: String,
    /// e.g. `v1`.
    pub tag: String,
    /// `host/repository:tag`.
    pub reference: String,
    /// Whether the tag points at an index / manifest list (linux/amd64 + linux/arm64).
    pub is_index: bool,
    /// The media type of the manifest the tag points at.
    pub media_type: String,
}

/// What to push, from which tag of the cached layout.
struct FixtureSpec {
    repository: &'static str,
    layout_tag: &'static str,
    docker_format: bool,
    media_type: &'static str,
}

const FIXTURES: &[FixtureSpec] = &[
    FixtureSpec {
        repository: "fixtures/app",
        layout_tag: "app",
        docker_format: false,
        media_type: OCI_MANIFEST,
    },
    FixtureSpec {
        repository: "fixtures/config-only",
        layout_tag: "config-only",
        docker_format: false,
        media_type: OCI_MANIFEST,
    },
    FixtureSpec {
        repository: "fixtures/multiarch",
        layout_tag: "multiarch",
        docker_format: false,
        media_type: OCI_INDEX,
    },
    FixtureSpec {
        repository: "fixtures/docker-app",
        layout_tag: "app",
        docker_format: true,
        media_type: DOCKER_MANIFEST,
    },
    FixtureSpec {
        repository: "fixtures/docker-multiarch",
        layout_tag: "multiarch",
        docker_format: true,
        media_type: DOCKER_MANIFEST_LIST,
    },
];

/// The tag every fixture is pushed under.
pub const FIXTURE_TAG: &str = "v1";

const LAYOUT_VERSION: &str = "kibaship-fixtures-v1";

/// Pushes every fixture to a test registry.
pub fn push_fixture_images(reg: &TestRegistry) -> Result<Vec<Fixture>, HarnessError> {
    push_fixture_images_to(&reg.endpoint())
}

/// Pushes every fixture to any registry reachable as `endpoint`.
pub fn push_fixture_images_to(endpoint: &RegistryEndpoint) -> Result<Vec<Fixture>, HarnessError> {
    let layout = fixture_layout()?;
    let skopeo = SkopeoDestination::new(endpoint)?;
    FIXTURES
        .iter()
        .map(|spec| {
            let reference = format!("{}/{}:{FIXTURE_TAG}", endpoint.host, spec.repository);
            skopeo.copy(&layout, spec.layout_tag, &reference, spec.docker_format)?;
            Ok(Fixture {
                repository: spec.repository.to_string(),
                tag: FIXTURE_TAG.to_string(),
                reference,
                is_index: matches!(spec.media_type, OCI_INDEX | DOCKER_MANIFEST_LIST),
                media_type: spec.media_type.to_string(),
            })
        })
        .collect()
}

/// Pushes one small image to `repository` under `count` distinct tags (`tag-00000`, `tag-00001`, ...) and
/// returns the tag names. The image is copied once; the same manifest bytes are then PUT under every tag.
pub fn push_tags(
    reg: &TestRegistry,
    repository: &str,
    count: usize,
) -> Result<Vec<String>, HarnessError> {
    push_tags_to(&reg.endpoint(), repository, count)
}

/// [`push_tags`] for any registry reachable as `endpoint`.
pub fn push_tags_to(
    endpoint: &RegistryEndpoint,
    repository: &str,
    count: usize,
) -> Result<Vec<String>, HarnessError> {
    let tags: Vec<String> = (0..count).map(|i| format!("tag-{i:05}")).collect();
    let Some(first) = tags.first() else {
        return Ok(tags);
    };
    let layout = fixture_layout()?;
    let skopeo = SkopeoDestination::new(endpoint)?;
    skopeo.copy(
        &layout,
        "config-only",
        &format!("{}/{repository}:{first}", endpoint.host),
        false,
    )?;

    let tls = endpoint.client_tls()?;
    let auth = endpoint.authorization(repository, "pull,push")?;
    let mut headers: Vec<(&str, &str)> = vec![("Accept", OCI_MANIFEST)];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let mut conn = HttpConnection::connect(&endpoint.host, tls.as_ref())?;
    let manifest = conn.request(
        "GET",
        &format!("/v2/{repository}/manifests/{first}"),
        &headers,
        &[],
    )?;
    if manifest.status != 200 {
        return Err(HarnessError::Fixture {
            fixture: format!("{repository}:{first}"),
            reason: format!(
                "reading it back answered {}: {}",
                manifest.status,
                manifest.body_excerpt()
            ),
        });
    }
    let manifest = Arc::new(manifest.body);
    let workers = 4.min(tags.len());
    let chunks: Vec<Vec<String>> = (0..workers)
        .map(|w| {
            tags.iter()
                .skip(1)
                .skip(w)
                .step_by(workers)
                .cloned()
                .collect()
        })
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let host = endpoint.host.clone();
            let tls = tls.clone();
            let auth = auth.clone();
            let manifest = Arc::clone(&manifest);
            let repository = repository.to_string();
            thread::spawn(move || -> Result<(), HarnessError> {
                let mut conn = HttpConnection::connect(&host, tls.as_ref())?;
                let mut headers: Vec<(&str, &str)> = vec![("Content-Type", OCI_MANIFEST)];
                if let Some(a) = &auth {
                    headers.push(("Authorization", a.as_str()));
                }
                for tag in chunk {
                    let response = conn.request(
                        "PUT",
                        &format!("/v2/{repository}/manifests/{tag}"),
                        &headers,
                        &manifest,
                    )?;
                    if response.status != 201 {
                        return Err(HarnessError::Fixture {
                            fixture: format!("{repository}:{tag}"),
                            reason: format!(
                                "PUT manifest answered {}: {}",
                                response.status,
                                response.body_excerpt()
                            ),
                        });
                    }
                }
                Ok(())
            })
        })
        .collect();
    for handle in handles {
        handle.join().map_err(|_| HarnessError::Fixture {
            fixture: repository.to_string(),
            reason: "a tag-pushing thread panicked".into(),
        })??;
    }
    Ok(tags)
}

/// How skopeo reaches the destination registry.
struct SkopeoDestination {
    skopeo: PathBuf,
    args: Vec<String>,
    _auth_dir: Option<tempfile::TempDir>,
}

impl SkopeoDestination {
    fn new(endpoint: &RegistryEndpoint) -> Result<Self, HarnessError> {
        let skopeo = find_tool("skopeo", "apt-get install skopeo, or run `make deps`")?;
        let mut args = Vec::new();
        let mut auth_dir = None;
        if endpoint.ca_pem.is_some() || endpoint.credentials.is_some() {
            let dir = tempfile::Builder::new()
                .prefix("kibaship-skopeo-")
                .tempdir()
                .map_err(|e| HarnessError::io("creating skopeo's temp dir", e))?;
            if let Some(ca) = &endpoint.ca_pem {
                let certs = dir.path().join("certs");
                fs::create_dir_all(&certs)
                    .map_err(|e| HarnessError::io("creating skopeo's cert dir", e))?;
                fs::copy(ca, certs.join("ca.crt"))
                    .map_err(|e| HarnessError::io(format!("copying {}", ca.display()), e))?;
                args.push(format!("--dest-cert-dir={}", certs.display()));
            }
            if let Some((user, password)) = &endpoint.credentials {
                use base64::Engine;
                let auth =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                let file = dir.path().join("auth.json");
                let json = json!({"auths": {endpoint.host.clone(): {"auth": auth}}});
                fs::write(&file, json.to_string())
                    .map_err(|e| HarnessError::io("writing skopeo's auth file", e))?;
                args.push(format!("--dest-authfile={}", file.display()));
            }
            auth_dir = Some(dir);
        }
        if endpoint.ca_pem.is_none() {
            args.push("--dest-tls-verify=false".into());
        }
        Ok(SkopeoDestination {
            skopeo,
            args,
            _auth_dir: auth_dir,
        })
    }

    fn copy(
        &self,
        layout: &Path,
        layout_tag: &str,
        reference: &str,
        docker_format: bool,
    ) -> Result<(), HarnessError> {
        let mut command = Command::new(&self.skopeo);
        command.args(["copy", "--quiet", "--all", "--retry-times=2"]);
        if docker_format {
            command.args(["--format", "v2s2"]);
        }
        command
            .args(&self.args)
            .arg(format!("oci:{}:{layout_tag}", layout.display()))
            .arg(format!("docker://{reference}"));
        let output = command.output().map_err(|source| HarnessError::Spawn {
            command: "skopeo copy".into(),
            source,
        })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(HarnessError::Fixture {
                fixture: reference.to_string(),
                reason: format!(
                    "skopeo copy failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            })
        }
    }
}

/// The cached OCI layout holding every fixture (built on first use).
pub fn fixture_layout() -> Result<PathBuf, HarnessError> {
    static LAYOUT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    LAYOUT
        .get_or_init(|| cached_layout().map_err(|e| e.to_string()))
        .clone()
        .map_err(|reason| HarnessError::Fixture {
            fixture: "OCI layout".into(),
            reason,
        })
}

fn cached_layout() -> Result<PathBuf, HarnessError> {
    let cache_root = std::env::temp_dir();
    let final_dir = cache_root.join(LAYOUT_VERSION);
    if final_dir.join("complete").is_file() {
        return Ok(final_dir.join("layout"));
    }
    let build = tempfile::Builder::new()
        .prefix(&format!("{LAYOUT_VERSION}-build-"))
        .tempdir_in(&cache_root)
        .map_err(|e| HarnessError::io("creating the fixture build dir", e))?;
    build_layout(build.path())?;
    fs::write(build.path().join("complete"), b"")
        .map_err(|e| HarnessError::io("marking the fixture layout", e))?;
    let built = build.keep();
    match fs::rename(&built, &final_dir) {
        Ok(()) => Ok(final_dir.join("layout")),
        Err(_) if final_dir.join("complete").is_file() => {
            // Another process won the race: use its layout.
            let _ = fs::remove_dir_all(&built);
            Ok(final_dir.join("layout"))
        }
        Err(_) => {
            // A stale, incomplete cache dir is in the way: use ours where it is.
            Ok(built.join("layout"))
        }
    }
}

fn build_layout(dir: &Path) -> Result<(), HarnessError> {
    let oci = OciLayout::init(&dir.join("layout"))?;
    let layout = oci.path().to_path_buf();

    let content = dir.join("content");
    let write = |path: &Path, text: &str| -> Result<(), HarnessError> {
        fs::create_dir_all(path.parent().unwrap_or(dir))
            .map_err(|e| HarnessError::io("creating fixture content", e))?;
        fs::write(path, text)
            .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))
    };

    // An image with no layers: just a config.
    oci.add_image(ImageSpec {
        tag: "config-only",
        architecture: "amd64",
        config: &["--config.label", "org.kibaship.fixture=config-only"],
        content: None,
    })?;

    // Small single-layer images, one per architecture.
    for arch in ["amd64", "arm64"] {
        let tag = format!("app-{arch}");
        let src = content.join(arch).join("app");
        write(
            &src.join("hello.txt"),
            &format!("hello from the kibaship {arch} fixture\n"),
        )?;
        let label = format!("org.kibaship.fixture=app-{arch}");
        oci.add_image(ImageSpec {
            tag: &tag,
            architecture: arch,
            config: &["--config.label", &label, "--config.cmd", "/app/hello.txt"],
            content: Some((&src, "/app")),
        })?;
    }
    oci.gc()?;

    // "app" is the amd64 image under a second name; "multiarch" an index over both architectures.
    let index_path = layout.join("index.json");
    let read_index = || -> Result<serde_json::Value, HarnessError> {
        let text = fs::read(&index_path)
            .map_err(|e| HarnessError::io("reading the layout's index.json", e))?;
        serde_json::from_slice(&text).map_err(|e| HarnessError::Fixture {
            fixture: "OCI layout".into(),
            reason: format!("index.json is not JSON: {e}"),
        })
    };
    let mut index = read_index()?;
    let descriptor =
        |index: &serde_json::Value, name: &str| -> Result<serde_json::Value, HarnessError> {
            index["manifests"]
                .as_array()
                .and_then(|m| {
                    m.iter()
                        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == name)
                        .cloned()
                })
                .ok_or_else(|| HarnessError::Fixture {
                    fixture: "OCI layout".into(),
                    reason: format!("tag {name} missing from index.json"),
                })
        };
    let amd64 = descriptor(&index, "app-amd64")?;
    let arm64 = descriptor(&index, "app-arm64")?;
    let platform_entry = |d: &serde_json::Value, platform: serde_json::Value| json!({"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"], "platform": platform});
    let image_index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            platform_entry(&amd64, json!({"architecture": "amd64", "os": "linux"})),
            platform_entry(&arm64, json!({"architecture": "arm64", "os": "linux", "variant": "v8"})),
        ],
    });
    let bytes = serde_json::to_vec(&image_index).map_err(|e| HarnessError::Fixture {
        fixture: "multiarch".into(),
        reason: e.to_string(),
    })?;
    let hex_digest = hex::encode(Sha256::digest(&bytes));
    fs::write(layout.join("blobs/sha256").join(&hex_digest), &bytes)
        .map_err(|e| HarnessError::io("writing the index blob", e))?;
    let mut app = amd64.clone();
    app["annotations"]["org.opencontainers.image.ref.name"] = json!("app");
    let manifests = index["manifests"]
        .as_array_mut()
        .ok_or_else(|| HarnessError::Fixture {
            fixture: "OCI layout".into(),
            reason: "index.json has no manifests array".into(),
        })?;
    manifests.push(app);
    manifests.push(json!({
        "mediaType": OCI_INDEX,
        "digest": format!("sha256:{hex_digest}"),
        "size": bytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": "multiarch"},
    }));
    fs::write(&index_path, index.to_string())
        .map_err(|e| HarnessError::io("writing the layout's index.json", e))?;
    Ok(())
}
