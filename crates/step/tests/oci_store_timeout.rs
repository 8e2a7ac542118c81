//! `kibaship-step build`'s `--timeout`: each registry operation of the build step gets the whole budget on its own
//! (OciManifestStore::with_timeout), so one slow lookup cannot hang the step and a long build cannot use it up.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::time::Duration;

use kibaship_oci::{ClientConfig, RegistryClient};
use kibaship_step::image::ImageName;
use kibaship_step::oci_store::OciManifestStore;
use kibaship_step::registry::ManifestStore;
use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

#[test]
fn each_registry_operation_of_the_build_step_has_its_own_deadline() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    push_fixture_images(&reg).unwrap();
    // The tag's manifest trickles (3 bytes every 250 ms: minutes, never idle long enough for a read timeout);
    // everything else passes.
    let proxy = FaultProxy::start_for_paths(
        &reg.host(),
        "/manifests/v1",
        Fault::Trickle {
            bytes: 3,
            every_ms: 250,
        },
    )
    .unwrap();
    let client_for = |host: String| {
        RegistryClient::new(ClientConfig {
            insecure_registries: vec![host],
            use_docker_config: false,
            ..ClientConfig::default()
        })
        .unwrap()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let direct = format!("{}/fixtures/app:v1", reg.host()).parse().unwrap();
    let digest = runtime
        .block_on(client_for(reg.host()).resolve_digest(&direct, None))
        .unwrap()
        .digest
        .to_string();

    let store =
        OciManifestStore::new(client_for(proxy.host())).with_timeout(Duration::from_secs(1));
    let image = ImageName::new(&proxy.host(), "fixtures/app", "v1").unwrap();
    let err = runtime.block_on(store.resolve(&image, "v1")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("timed out after 1s looking up manifest") && text.contains(&proxy.host()),
        "{text}"
    );
    // That lookup spent its whole budget; the next operation has its own (a client-wide deadline would have
    // failed it at once), and succeeds.
    let fetched = runtime
        .block_on(store.fetch(&image, &digest))
        .unwrap_or_else(|e| panic!("a fresh operation must have its own deadline: {e}"))
        .expect("the manifest exists");
    assert_eq!(fetched.digest, digest);
}
