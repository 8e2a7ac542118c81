//! Faults and hostile input around the webhook, each answered with a denial and a code, never an allow: a
//! registry that stalls, a signature manifest of 10,000 layers, an expired exception, a policy that does not
//! load at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use kibaship_oci::{ClientConfig, Descriptor, Reference, RegistryClient};
use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
use support::*;

fn denial_code(review: &serde_json::Value) -> String {
    let response = response_of(review);
    assert_eq!(response["allowed"], false, "{review}");
    // The code is also in the message; status.details.causes[0].reason carries it alone.
    response["status"]["details"]["causes"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalling_registry_is_a_timeout_denial_within_the_budget() {
    let world = World::new();
    // Every response trickles in a byte every half second: no idle timeout fires, only the budget.
    let proxy = FaultProxy::start_persistent(
        &world.host,
        Fault::Trickle {
            bytes: 1,
            every_ms: 500,
        },
    )
    .unwrap();
    let proxied = proxy.host();
    world.write_policy(&World::policy_document(&[world.policy_entry_for(
        &proxied,
        "fixtures-signed",
        "enforce",
        "",
    )]));
    let running = world
        .start_with_registry(Duration::from_secs(2), &proxied)
        .await;
    let http = client(&world.ca_pem);
    let image = format!("{proxied}/fixtures/app:v1");
    let review = post(
        &http,
        &running,
        "/validate",
        &pod_review("t", "prod", &[&image]),
    )
    .await;
    assert_eq!(denial_code(&review), "timeout", "{review}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_signature_layers_are_refused_without_blowing_up() {
    let world = World::new();
    world.write_policy(&world.policy("enforce", ""));
    // A legacy signature manifest for the unsigned image with 10,000 layers, all the same bogus signature.
    let client = RegistryClient::new(ClientConfig {
        insecure_registries: vec![world.host.clone()],
        use_docker_config: false,
        ..ClientConfig::default()
    })
    .unwrap();
    let image = Reference::parse(&world.unsigned).unwrap();
    let digest = client.resolve_digest(&image, None).await.unwrap().digest;
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#,
        image.ggcr_repository()
    );
    client.push_blob(&image, payload.as_bytes()).await.unwrap();
    let config = b"{}";
    client.push_blob(&image, config).await.unwrap();
    let mut layer = Descriptor::of(
        "application/vnd.dev.cosign.simplesigning.v1+json",
        payload.as_bytes(),
    );
    layer.annotations.insert(
        "dev.cosignproject.cosign/signature".into(),
        "MEUCIQDvGz3XrdMbHQ2C+AeG4PaKRsxY4WVfQB7q5ZhoPL3R2AIgB0nRaqUQwTScnT1Dw8Q6TT0TfWMqbRYdCPxf3Jk3yPo=".into(),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": Descriptor::of("application/vnd.oci.image.config.v1+json", config),
        "layers": vec![layer; 10_000],
    });
    let tag = format!("{}.sig", digest.to_string().replace(':', "-"));
    let bytes = serde_json::to_vec(&manifest).unwrap();
    client
        .push_manifest(
            &image.with_tag(&tag).unwrap(),
            &bytes,
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await
        .unwrap();

    let running = world.start(Duration::from_secs(20)).await;
    let http = client_for(&world);
    let review = post(
        &http,
        &running,
        "/validate",
        &pod_review("s", "prod", &[&world.unsigned]),
    )
    .await;
    let code = denial_code(&review);
    assert!(
        ["bad-signature", "wrong-key", "not-checked"].contains(&code.as_str()),
        "{review}"
    );
    // The signed image is still admitted by the same server.
    let review = post(
        &http,
        &running,
        "/validate",
        &pod_review("ok", "prod", &[&world.signed_bundle]),
    )
    .await;
    assert_eq!(response_of(&review)["allowed"], true, "{review}");
}

fn client_for(world: &World) -> reqwest::Client {
    client(&world.ca_pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_exception_is_ignored_and_the_denial_says_so() {
    let world = World::new();
    let mut policy = world.policy("enforce", "");
    policy.push_str(&format!(
        "exceptions:\n  - images: [\"{host}/fixtures/config-only*\"]\n    namespaces: [\"*\"]\n    owner: team-a@example.com\n    expires: 2020-01-01T00:00:00Z\n    reason: migration\n  - images: [\"{host}/fixtures/multiarch*\"]\n    namespaces: [\"prod\"]\n    owner: team-b@example.com\n    expires: 2999-01-01T00:00:00Z\n    reason: waiting for the new key\n",
        host = world.host
    ));
    world.write_policy(&policy);
    let running = world.start(Duration::from_secs(20)).await;
    let http = client_for(&world);
    let review = post(
        &http,
        &running,
        "/validate",
        &pod_review("e", "prod", &[&world.unsigned]),
    )
    .await;
    assert_eq!(denial_code(&review), "unsigned");
    let message = response_of(&review)["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("team-a@example.com") && message.contains("expired"),
        "{message}"
    );
    // An active exception admits, with a warning naming its owner; only where it applies.
    let review = post(
        &http,
        &running,
        "/validate",
        &pod_review("a", "prod", &[&world.wrong_key]),
    )
    .await;
    let response = response_of(&review);
    assert_eq!(response["allowed"], true, "{review}");
    assert!(
        response["warnings"][0]
            .as_str()
            .unwrap()
            .contains("team-b@example.com"),
        "{review}"
    );
    let review = post(
        &http,
        &running,
        "/validate",
        &pod_review("b", "other", &[&world.wrong_key]),
    )
    .await;
    assert_eq!(denial_code(&review), "wrong-key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_does_not_load_at_start_means_not_ready_and_denials() {
    let world = World::new();
    world.write_policy("apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: x\n    mode: enforce\n    images: [\"**\"\n");
    let running = world.start(Duration::from_secs(5)).await;
    assert!(!running.state.is_ready());
    let http = client_for(&world);
    let review = post(
        &http,
        &running,
        "/validate",
        &pod_review("n", "prod", &[&world.signed_bundle]),
    )
    .await;
    assert_eq!(response_of(&review)["allowed"], false, "{review}");
    assert!(
        response_of(&review)["status"]["message"]
            .as_str()
            .unwrap()
            .contains("not-ready"),
        "{review}"
    );
    let readyz = http
        .get(format!("https://127.0.0.1:{}/readyz", running.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);
    // Fixed: it becomes ready without a restart.
    world.write_policy(&world.policy("enforce", ""));
    let ready = kibaship_testsupport::kube::wait_until(100, Duration::from_millis(100), || {
        running.state.is_ready().then_some(())
    });
    assert!(ready.is_some());
    let review = post(
        &http,
        &running,
        "/validate",
        &pod_review("r", "prod", &[&world.signed_bundle]),
    )
    .await;
    assert_eq!(response_of(&review)["allowed"], true, "{review}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_that_do_not_resolve_are_denied_as_not_found() {
    let world = World::new();
    world.write_policy(&world.policy("enforce", ""));
    let running = world.start(Duration::from_secs(10)).await;
    let http = client_for(&world);
    let missing_tag = format!("{}/fixtures/app:no-such-tag", world.host);
    let missing_digest = format!("{}/fixtures/app@sha256:{}", world.host, "0".repeat(64));
    let nonsense = format!("{}/fixtures/App:UPPER CASE", world.host);
    for (image, code) in [
        (&missing_tag, "image-not-found"),
        (&missing_digest, "image-not-found"),
        (&nonsense, "bad-reference"),
    ] {
        let review = post(
            &http,
            &running,
            "/validate",
            &pod_review("m", "prod", &[image]),
        )
        .await;
        assert_eq!(denial_code(&review), code, "{image}: {review}");
    }
}
