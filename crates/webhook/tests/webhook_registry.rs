//! The webhook in process, over real TLS, against a real registry (go-containerregistry's, referrers API on)
//! holding images signed by the real cosign: key signatures in both layouts, an unsigned image, one signed by
//! another key, and one carrying a signature copied from another image.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admits_signed_and_denies_the_rest_with_reason_codes() {
    let world = World::new();
    world.write_policy(&world.policy("enforce", ""));
    let running = world.start(Duration::from_secs(20)).await;
    assert!(running.state.is_ready());
    let http = client(&world.ca_pem);

    for (image, expected) in [
        (&world.signed_bundle, None),
        (&world.signed_legacy, None),
        (&world.unsigned, Some("unsigned")),
        (&world.wrong_key, Some("wrong-key")),
        (&world.copied_signature, Some("digest-mismatch")),
    ] {
        let review = post(
            &http,
            &running,
            "/validate",
            &pod_review("u-1", "prod", &[image]),
        )
        .await;
        let response = response_of(&review);
        assert_eq!(response["uid"], "u-1");
        match expected {
            None => assert_eq!(response["allowed"], true, "{image}: {review}"),
            Some(code) => {
                assert_eq!(response["allowed"], false, "{image}: {review}");
                let message = response["status"]["message"].as_str().unwrap();
                assert!(
                    message.contains(&format!(": {code}: ")) && message.contains(image.as_str()),
                    "{image}: wanted {code} in {message}"
                );
            }
        }
    }

    // Mutate pins the verified tag to the digest that was verified, and leaves an unverified one alone.
    let review = post(
        &http,
        &running,
        "/mutate",
        &pod_review("u-2", "prod", &[&world.signed_bundle, &world.unsigned]),
    )
    .await;
    let response = response_of(&review);
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    use base64::Engine as _;
    let patch: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(response["patch"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let digest = digest_of(world.dir.path(), &world.signed_bundle);
    // A test of the image as written guards the replacement (JSONPatch `test`).
    assert_eq!(
        patch,
        json!([
            {"op": "test", "path": "/spec/containers/0/image", "value": world.signed_bundle},
            {"op": "replace", "path": "/spec/containers/0/image", "value": format!("{}@{digest}", world.signed_bundle)}
        ])
    );

    let metrics = metrics_text(&running);
    assert!(
        metrics.contains(r#"kibaship_webhook_decisions_total{endpoint="validate",result="denied",code="wrong-key"} 1"#),
        "{metrics}"
    );
    drop(world.registry);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_for_one_new_digest_share_one_verification() {
    let world = World::new();
    world.write_policy(&world.policy("enforce", ""));
    let running = world.start(Duration::from_secs(30)).await;
    let http = client(&world.ca_pem);
    let digest = digest_of(world.dir.path(), &world.signed_bundle);
    let pinned = format!("{}/fixtures/app@{digest}", world.host);
    let mut requests = Vec::new();
    for i in 0..100 {
        let http = http.clone();
        let review = pod_review(&format!("u-{i}"), "prod", &[&pinned]);
        let url = format!("https://127.0.0.1:{}/validate", running.addr.port());
        requests.push(tokio::spawn(async move {
            let r: Value = http
                .post(url)
                .json(&review)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r
        }));
    }
    for r in requests {
        let review = r.await.unwrap();
        assert_eq!(review["response"]["allowed"], true, "{review}");
    }
    let metrics = metrics_text(&running);
    assert!(
        metrics.contains("kibaship_webhook_verifications_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"kibaship_webhook_cache_lookups_total{result="miss"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn warn_mode_admits_with_a_warning_and_unselected_namespaces_are_admitted() {
    let world = World::new();
    world.write_policy(&world.policy("warn", ""));
    let running = world.start(Duration::from_secs(20)).await;
    let http = client(&world.ca_pem);
    let review = post(
        &http,
        &running,
        "/validate",
        &pod_review("w", "prod", &[&world.unsigned]),
    )
    .await;
    let response = response_of(&review);
    assert_eq!(response["allowed"], true, "{review}");
    let warnings = response["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("unsigned")),
        "{review}"
    );

    // Audit mode: admitted, no warning, the failure recorded as an audit annotation.
    world.write_policy(&world.policy("audit", ""));
    let audited = validate_until(
        &http,
        &running,
        &pod_review("a", "prod", &[&world.unsigned]),
        |r| r.get("auditAnnotations").is_some(),
    )
    .await;
    let review = audited.expect("the audit policy never took effect");
    let response = response_of(&review);
    assert_eq!(response["allowed"], true, "{review}");
    assert!(
        response
            .get("warnings")
            .is_none_or(|w| w.as_array().is_some_and(|w| w.is_empty())),
        "{review}"
    );
    assert!(
        response["auditAnnotations"]["audit-0"]
            .as_str()
            .unwrap()
            .contains(": unsigned: "),
        "{review}"
    );

    // Only namespace prod is selected: dev is admitted unverified; prod is not.
    world.write_policy(&world.policy("enforce", "    namespaces:\n      names: [\"prod\"]\n"));
    let reloaded = validate_until(
        &http,
        &running,
        &pod_review("n", "prod", &[&world.unsigned]),
        |r| r["allowed"] == false,
    )
    .await;
    assert!(reloaded.is_some(), "the new policy never took effect");
    let review = post(
        &http,
        &running,
        "/validate",
        &pod_review("d", "dev", &[&world.unsigned]),
    )
    .await;
    assert_eq!(response_of(&review)["allowed"], true, "{review}");

    // A broken policy keeps the previous one in force, and says so.
    world.write_policy("policies: [");
    let mut stale = false;
    for _ in 0..100 {
        if metrics_text(&running).contains(r#"kibaship_webhook_stale_config{file="policy"} 1"#) {
            stale = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stale, "{}", metrics_text(&running));
    let review = post(
        &http,
        &running,
        "/validate",
        &pod_review("s", "prod", &[&world.unsigned]),
    )
    .await;
    assert_eq!(
        response_of(&review)["allowed"],
        false,
        "the old policy still denies: {review}"
    );
    assert!(running.state.is_ready());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registry_down_denies_and_the_certificate_rotates_in_place() {
    let world = World::new();
    world.write_policy(&world.policy("enforce", ""));
    let running = world.start(Duration::from_secs(5)).await;
    let http = client(&world.ca_pem);
    // A new certificate from a new CA: clients trusting only the new CA connect once it is in place.
    let (new_ca, cert, key) = serving_certificate("rotated");
    std::fs::write(world.path("tls.key.new"), key).unwrap();
    std::fs::write(world.path("tls.crt.new"), cert).unwrap();
    std::fs::rename(world.path("tls.key.new"), world.path("tls.key")).unwrap();
    std::fs::rename(world.path("tls.crt.new"), world.path("tls.crt")).unwrap();
    let rotated = client(&new_ca);
    let mut served = false;
    for _ in 0..100 {
        if rotated
            .get(format!("https://127.0.0.1:{}/healthz", running.addr.port()))
            .send()
            .await
            .is_ok()
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the rotated certificate was never served");
    assert!(
        http.get(format!("https://127.0.0.1:{}/healthz", running.addr.port()))
            .send()
            .await
            .is_err(),
        "the old certificate is no longer served"
    );

    let unsigned = world.unsigned.clone();
    drop(world.registry);
    let review = post(
        &rotated,
        &running,
        "/validate",
        &pod_review("r", "prod", &[&unsigned]),
    )
    .await;
    let response = response_of(&review);
    assert_eq!(response["allowed"], false, "{review}");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(": registry-unreachable: ") || message.contains(": timeout: "),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_never_allowed() {
    let world = World::new();
    world.write_policy(&world.policy("enforce", ""));
    let running = world.start(Duration::from_secs(5)).await;
    let http = client(&world.ca_pem);
    let url = format!("https://127.0.0.1:{}/validate", running.addr.port());
    // Over the body limit: refused before it is read whole.
    let big = vec![b' '; 10 * 1024 * 1024];
    let r = http.post(&url).body(big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    // Not JSON; JSON without a uid: HTTP 400 (the API server then applies failurePolicy: Fail).
    for body in [
        &b"{not json"[..],
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}"#,
    ] {
        let r = http.post(&url).body(body.to_vec()).send().await.unwrap();
        assert_eq!(r.status(), 400, "{}", String::from_utf8_lossy(body));
        let text = r.text().await.unwrap();
        assert!(text.starts_with("kibaship: "), "{text}");
    }
    // An unknown kind with a uid: a denial naming the code.
    let mut review = pod_review("k", "prod", &[&world.unsigned]);
    review["request"]["kind"] = json!({"group": "example.com", "version": "v1", "kind": "Widget"});
    let answer = post(&http, &running, "/validate", &review).await;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert_eq!(answer["response"]["uid"], "k");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registry_without_the_referrers_api_and_signatures_made_by_kibaship() {
    // Debian's docker-registry: no referrers API, so cosign v3 bundles sit under the `sha256-<hex>` tag fallback.
    let world = World::new_in(kibaship_testsupport::registry::RegistryMode::Plain);
    world.write_policy(&world.policy("enforce", ""));
    // Signed by kibaship's own signer, in both layouts, with the same cosign key.
    let key = kibaship_sign::SigningKey::from_key_file(
        &std::fs::read(world.path("cosign.key")).unwrap(),
        Some(PASSWORD.as_bytes()),
    )
    .unwrap();
    let client = world.registry_client();
    let image = kibaship_oci::Reference::parse(&world.unsigned).unwrap();
    let digest = client.resolve_digest(&image, None).await.unwrap().digest;
    let signed = kibaship_cosign::sign_image(
        &client,
        &image.with_digest(digest),
        None,
        kibaship_cosign::ImageSigner::Key(&key),
        kibaship_cosign::Layouts::Both,
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(signed.len(), 2);
    // More signature referrers than are checked (issue 20 item 7), none by the policy's key: the denial says
    // that the bound was hit.
    let stranger = kibaship_sign::SigningKey::generate().unwrap();
    let crowded = kibaship_oci::Reference::parse(&world.wrong_key).unwrap();
    let bound = kibaship_cosign::registry::MAX_REFERRERS_CHECKED;
    for _ in 0..=bound {
        kibaship_cosign::sign_bundle(&client, &crowded, None, &stranger, Default::default())
            .await
            .unwrap();
    }

    let running = world.start(Duration::from_secs(20)).await;
    let http = client_for_world(&world);
    for (image, allowed) in [
        (&world.signed_bundle, true),
        (&world.signed_legacy, true),
        (&world.unsigned, true),
        (&world.wrong_key, false),
    ] {
        let review = post(
            &http,
            &running,
            "/validate",
            &pod_review("p", "prod", &[image]),
        )
        .await;
        assert_eq!(
            response_of(&review)["allowed"],
            allowed,
            "{image}: {review}"
        );
        if image == &world.wrong_key {
            let message = response_of(&review)["status"]["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("(only {bound} of "))
                    && message.contains("referrers checked)"),
                "{message}"
            );
        }
    }
}

fn client_for_world(world: &World) -> reqwest::Client {
    client(&world.ca_pem)
}
