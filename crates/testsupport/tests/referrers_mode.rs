//! crane's registry (RegistryMode::Referrers): starts, takes the fixtures, and serves the referrers API.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

use kibaship_testsupport::fixtures;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

#[test]
fn referrers_registry_serves_the_referrers_api() {
    let reg = TestRegistry::start(RegistryMode::Referrers)
        .expect("needs the crane peer: run `make peers`");
    assert!(reg.base_url().starts_with("http://127.0.0.1:"));
    let pushed = fixtures::push_fixture_images(&reg).unwrap();
    let app = pushed
        .iter()
        .find(|f| f.repository == "fixtures/app")
        .unwrap();
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}", app.reference))
        .output()
        .expect("skopeo must be installed (make deps)");
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    let digest = {
        use sha2::Digest;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw.stdout)))
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("{}/v2/fixtures/app/referrers/{digest}", reg.base_url());
        let r = reqwest::get(&url).await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{url}");
        let index: serde_json::Value = r.json().await.unwrap();
        assert_eq!(index["mediaType"], fixtures::OCI_INDEX);
        assert_eq!(index["manifests"], serde_json::json!([]));
    });
    let pids = reg.process_ids();
    drop(reg);
    for pid in pids {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while kibaship_testsupport::process_alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            !kibaship_testsupport::process_alive(pid),
            "crane pid {pid} left behind"
        );
    }
}
