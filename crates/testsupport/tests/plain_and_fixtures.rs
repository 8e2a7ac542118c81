//! Plain registry + fixtures, checked with skopeo (an independent client).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

use kibaship_testsupport::fixtures::{
    self, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST,
};
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

fn skopeo_raw(reference: &str) -> serde_json::Value {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo must be installed (make deps)");
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("manifest JSON")
}

#[test]
fn plain_registry_serves_v2_without_auth() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    assert!(reg.base_url().starts_with("http://127.0.0.1:"));
    assert!(reg.ca_pem_path().is_none());
    assert!(reg.credentials().is_none());
    let body = reqwest_get(&format!("{}/v2/", reg.base_url()));
    assert_eq!(body.0, 200);
}

fn reqwest_get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::get(url).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

fn content_type(reg: &TestRegistry, f: &fixtures::Fixture) -> String {
    let url = format!("{}/v2/{}/manifests/{}", reg.base_url(), f.repository, f.tag);
    let accept = [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ]
    .join(", ");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .head(&url)
            .header("Accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{url}");
        r.headers()["content-type"].to_str().unwrap().to_string()
    })
}

#[test]
fn fixtures_cover_all_four_media_types_and_skopeo_reads_them() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let fixtures = fixtures::push_fixture_images(&reg).unwrap();
    let mut seen = Vec::new();
    for f in &fixtures {
        assert_eq!(
            f.reference,
            format!("{}/{}:{}", reg.host(), f.repository, f.tag)
        );
        let manifest = skopeo_raw(&f.reference);
        // umoci's OCI manifests omit the optional `mediaType` field; the registry's Content-Type is authoritative.
        if let Some(declared) = manifest["mediaType"].as_str() {
            assert_eq!(declared, f.media_type, "{}", f.reference);
        }
        assert_eq!(content_type(&reg, f), f.media_type, "{}", f.reference);
        if f.is_index {
            let archs: Vec<&str> = manifest["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["platform"]["architecture"].as_str().unwrap())
                .collect();
            assert_eq!(archs, ["amd64", "arm64"], "{}", f.reference);
        }
        seen.push(f.media_type.clone());
    }
    for media_type in [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ] {
        assert!(
            seen.iter().any(|m| m == media_type),
            "no fixture of type {media_type}"
        );
    }
    let app = fixtures
        .iter()
        .find(|f| f.repository == "fixtures/app")
        .unwrap();
    assert_eq!(
        skopeo_raw(&app.reference)["layers"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "app has one small layer"
    );
}

#[test]
fn push_tags_pushes_distinct_tags_of_one_image() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let tags = fixtures::push_tags(&reg, "bench/tags", 50).unwrap();
    assert_eq!(tags.len(), 50);
    let mut unique = tags.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 50);
    let (status, body) = reqwest_get(&format!(
        "{}/v2/bench/tags/tags/list?n=1000",
        reg.base_url()
    ));
    assert_eq!(status, 200);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut listed: Vec<String> = listed["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, unique);
    let first = skopeo_raw(&format!("{}/bench/tags:{}", reg.host(), tags[0]));
    let last = skopeo_raw(&format!("{}/bench/tags:{}", reg.host(), tags[49]));
    assert_eq!(first, last);
}
