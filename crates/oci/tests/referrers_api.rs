//! The referrers API path against a real registry that has it (go-containerregistry's registry, the
//! `ggcr-registry` peer behind `RegistryMode::Referrers`), cross-checked with oras and crane.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;

use kibaship_oci::{Artifact, ClientConfig, Digest, Reference, ReferrersSource, RegistryClient};
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

fn peer(name: &str) -> std::path::PathBuf {
    peer_binary(name).unwrap_or_else(|e| panic!("peer {name} is needed for this test: {e}"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A client of the test registry over plain HTTP, without the caller's docker config.
fn plain_http_client(reg: &TestRegistry) -> RegistryClient {
    RegistryClient::new(ClientConfig {
        insecure_registries: vec![reg.host()],
        use_docker_config: false,
        ..ClientConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn attach_and_list_through_the_referrers_api() {
    let reg = TestRegistry::start(RegistryMode::Referrers).unwrap();
    let fixtures = push_fixture_images(&reg).unwrap();
    let client = plain_http_client(&reg);
    let image = Reference::parse(&fixtures[0].reference).unwrap();

    // Digests agree with crane, an independent client.
    for fixture in &fixtures {
        let crane =
            run(Command::new(peer("crane")).args(["digest", "--insecure", &fixture.reference]));
        let ours = client
            .resolve_digest(&Reference::parse(&fixture.reference).unwrap(), None)
            .await
            .unwrap();
        assert_eq!(
            ours.digest.to_string(),
            crane.trim(),
            "{}",
            fixture.reference
        );
    }

    let artifact = |t: &str, body: &[u8]| Artifact {
        artifact_type: t.to_string(),
        layer_media_type: "application/json".to_string(),
        content: body.to_vec().into(),
        content_digest: None,
        title: None,
        annotations: BTreeMap::from([("org.example.n".to_string(), t.to_string())]),
    };
    let sbom = client
        .attach_artifact(&image, &artifact("application/spdx+json", b"{}"))
        .await
        .unwrap();
    let sig = client
        .attach_artifact(
            &image,
            &artifact("application/vnd.example.sig", b"{\"s\":1}"),
        )
        .await
        .unwrap();
    assert_eq!(sbom.via, ReferrersSource::Api);
    assert_eq!(sig.via, ReferrersSource::Api);

    // With the API, no fallback tag is written.
    let fallback = client
        .fallback_index(&image, &sbom.subject.digest)
        .await
        .unwrap();
    assert!(
        fallback.is_none(),
        "the API registry must not get a sha256-<hex> tag"
    );

    let listed = client.list_referrers(&image, None).await.unwrap();
    assert_eq!(listed.source, ReferrersSource::Api);
    let mut digests: Vec<Digest> = listed
        .descriptors
        .iter()
        .map(|d| d.digest.clone())
        .collect();
    digests.sort_by_key(|d| d.to_string());
    let mut want = vec![sbom.manifest.digest.clone(), sig.manifest.digest.clone()];
    want.sort_by_key(|d| d.to_string());
    assert_eq!(digests, want);
    let only_sbom = client
        .list_referrers(&image, Some("application/spdx+json"))
        .await
        .unwrap();
    assert_eq!(only_sbom.descriptors.len(), 1);
    assert_eq!(only_sbom.descriptors[0].digest, sbom.manifest.digest);

    // oras, an independent referrers client, discovers what we attached.
    let discovered =
        run(Command::new(peer("oras")).args(["discover", "--plain-http", &fixtures[0].reference]));
    for d in &want {
        assert!(
            discovered.contains(&d.to_string()),
            "oras discover misses {d}:\n{discovered}"
        );
    }
}

/// A caller may learn whether the registry has the referrers API before it attaches (as `sbom attach` does
/// while it validates): the answer is the same the attach would reach, and the attach to the subject resolved
/// beforehand lands where the listing finds it. Against ggcr-registry (API) and distribution (no API).
#[tokio::test]
async fn the_referrers_api_is_learnt_before_an_attach_to_a_resolved_subject() {
    for (mode, has_api, via) in [
        (RegistryMode::Referrers, true, ReferrersSource::Api),
        (RegistryMode::Plain, false, ReferrersSource::FallbackTag),
    ] {
        let reg = TestRegistry::start(mode).unwrap();
        let fixtures = push_fixture_images(&reg).unwrap();
        let client = plain_http_client(&reg);
        let image = Reference::parse(&fixtures[0].reference).unwrap();
        let subject = client.subject_descriptor(&image).await.unwrap();
        assert_eq!(
            client
                .has_referrers_api(&image, &subject.digest)
                .await
                .unwrap(),
            has_api,
            "{mode:?}"
        );
        let pinned = image.with_digest(subject.digest.clone());
        let artifact = Artifact {
            artifact_type: "application/spdx+json".to_string(),
            layer_media_type: "application/spdx+json".to_string(),
            content: b"{}".to_vec().into(),
            content_digest: None,
            title: None,
            annotations: BTreeMap::new(),
        };
        let attached = client
            .attach_artifact_to(&pinned, subject.clone(), &artifact)
            .await
            .unwrap();
        assert_eq!(attached.via, via, "{mode:?}");
        assert_eq!(attached.subject, subject, "{mode:?}");
        // A new client (nothing remembered) finds it.
        let fresh = plain_http_client(&reg);
        let listed = fresh.list_referrers(&pinned, None).await.unwrap();
        assert_eq!(listed.source, via, "{mode:?}");
        assert_eq!(
            listed
                .descriptors
                .iter()
                .map(|d| &d.digest)
                .collect::<Vec<_>>(),
            vec![&attached.manifest.digest],
            "{mode:?}"
        );
    }
}

/// go-containerregistry's registry keeps a session's bytes in memory and stores the blob only at its commit. It
/// cannot cancel a session (it answers a `DELETE` of one 400, as a blob digest it cannot parse): the session is
/// then never a blob, and the client says the cancel failed.
#[tokio::test]
async fn a_staged_blob_is_a_blob_only_once_committed_on_go_containerregistry() {
    let reg = TestRegistry::start(RegistryMode::Referrers).unwrap();
    let client = plain_http_client(&reg);
    let repository = Reference::parse(&format!("{}/staged/app:v1", reg.host())).unwrap();
    let content: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = Digest::sha256_of(&content);

    let opened = client.start_blob_upload(&repository).await.unwrap();
    let sent = client
        .send_blob_upload(&opened, bytes::Bytes::from(content.clone()))
        .await
        .unwrap();
    assert!(!client.blob_exists(&repository, &digest).await.unwrap());
    client.commit_blob_upload(&sent, &digest).await.unwrap();
    let fetched = client
        .fetch_blob(&repository, &digest, 3_000_000)
        .await
        .unwrap();
    assert!(fetched == content, "the committed blob differs");

    let other: Vec<u8> = content.iter().map(|b| b ^ 0x5a).collect();
    let other_digest = Digest::sha256_of(&other);
    let opened = client.start_blob_upload(&repository).await.unwrap();
    let sent = client
        .send_blob_upload(&opened, bytes::Bytes::from(other))
        .await
        .unwrap();
    let refused = client.cancel_blob_upload(&sent).await.unwrap_err();
    assert!(refused.to_string().contains("400"), "{refused}");
    assert!(
        !client
            .blob_exists(&repository, &other_digest)
            .await
            .unwrap()
    );
}
