//! The client against the REAL registry (Debian's docker-registry, distribution 2.8) started by
//! `kibaship_testsupport`, cross-checked with skopeo. Each test starts its own registry and stops it on drop.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use kibaship_oci::manifest::{Descriptor, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};
use kibaship_oci::{
    Artifact, ClientConfig, Credential, Digest, Error, ImageIndex, ImageManifest, Reference,
    ReferrersSource, RegistryClient, RetryPolicy,
};
use kibaship_testsupport::fixtures::{push_fixture_images, push_tags};
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use support::skopeo::skopeo_raw;

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(3),
        max_total: Duration::from_secs(30),
    }
}

/// A config for `reg` without credentials: its CA trusted, or plain HTTP when it has none.
fn config_without_credentials(reg: &TestRegistry) -> ClientConfig {
    let mut config = ClientConfig {
        use_docker_config: false,
        retry: fast_retry(),
        ca_file: reg.ca_pem_path().map(Path::to_path_buf),
        ..ClientConfig::default()
    };
    if reg.ca_pem_path().is_none() {
        config.insecure_registries.push(reg.host());
    }
    config
}

fn client_for(reg: &TestRegistry) -> RegistryClient {
    let mut config = config_without_credentials(reg);
    if let Some((username, password)) = reg.credentials() {
        config.credentials =
            HashMap::from([(reg.host(), Credential::Basic { username, password })]);
    }
    RegistryClient::new(config).unwrap()
}

fn arm64_digest_from_raw_index(raw: &[u8]) -> String {
    let index: serde_json::Value = serde_json::from_slice(raw).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "arm64" && m["platform"]["os"] == "linux")
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .expect("the multi-arch fixture lists linux/arm64")
}

/// Every fixture digest equals sha256(skopeo inspect --raw), for tags, for digests, and per platform.
async fn fixtures_match_skopeo(reg: &TestRegistry) {
    let fixtures = push_fixture_images(reg).unwrap();
    assert!(
        fixtures.iter().any(|f| f.is_index),
        "the fixtures include a multi-arch index"
    );
    let client = client_for(reg);
    let creds = reg.credentials();
    for fixture in &fixtures {
        let raw = skopeo_raw(&fixture.reference, creds.as_ref());
        let skopeo_digest = Digest::sha256_of(&raw);
        let r = Reference::parse(&fixture.reference).unwrap();
        let resolved = client.resolve_digest(&r, None).await.unwrap();
        assert_eq!(resolved.digest, skopeo_digest, "{}", fixture.reference);
        let fetched = client.fetch_manifest(&r).await.unwrap();
        assert_eq!(
            fetched.bytes, raw,
            "{}: the exact bytes skopeo read",
            fixture.reference
        );
        assert_eq!(
            fetched.media_type, fixture.media_type,
            "{}",
            fixture.reference
        );
        let by_digest = client
            .resolve_digest(&r.with_digest(skopeo_digest.clone()), None)
            .await
            .unwrap();
        assert_eq!(by_digest.digest, skopeo_digest);
        if fixture.is_index {
            let arm = client
                .resolve_digest(&r, Some(&"linux/arm64".parse().unwrap()))
                .await
                .unwrap();
            assert_eq!(
                arm.digest.to_string(),
                arm64_digest_from_raw_index(&raw),
                "{} linux/arm64",
                fixture.reference
            );
            let arm_raw = skopeo_raw(
                &format!("{}/{}@{}", reg.host(), fixture.repository, arm.digest),
                creds.as_ref(),
            );
            assert_eq!(Digest::sha256_of(&arm_raw), arm.digest);
            let err = client
                .resolve_digest(&r, Some(&"windows/amd64".parse().unwrap()))
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::NoPlatformMatch { .. })
                    && err.to_string().contains("linux/arm64"),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn plain_registry_digests_match_skopeo() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    fixtures_match_skopeo(&reg).await;
}

#[tokio::test]
async fn basic_auth_tls_registry_digests_match_skopeo() {
    let reg = TestRegistry::start(RegistryMode::BasicTls).unwrap();
    fixtures_match_skopeo(&reg).await;
}

#[tokio::test]
async fn token_auth_tls_registry_digests_match_skopeo_and_tokens_are_cached() {
    let reg = TestRegistry::start(RegistryMode::TokenTls).unwrap();
    let fixtures = push_fixture_images(&reg).unwrap();
    let client = client_for(&reg);
    let fixture = &fixtures[0];
    let r = Reference::parse(&fixture.reference).unwrap();
    let raw = skopeo_raw(&fixture.reference, reg.credentials().as_ref());
    let before = reg.tokens_issued().unwrap();
    for _ in 0..20 {
        assert_eq!(
            client.resolve_digest(&r, None).await.unwrap().digest,
            Digest::sha256_of(&raw)
        );
    }
    let issued = reg.tokens_issued().unwrap() - before;
    assert_eq!(issued, 1, "20 lookups in one repository need one token");
    // Pushing needs a pull,push token: attach an artifact through the token flow.
    let attached = client
        .attach_artifact(&r, &artifact("application/x-kiba-test", b"token flow"))
        .await
        .unwrap();
    assert_eq!(attached.via, ReferrersSource::FallbackTag);
    fixtures_match_skopeo(&reg).await;
}

/// The error resolving `r` with a client of `config`.
async fn resolve_error(config: ClientConfig, r: &Reference) -> Error {
    RegistryClient::new(config)
        .unwrap()
        .resolve_digest(r, None)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn wrong_credentials_and_untrusted_tls_give_clear_errors() {
    for mode in [RegistryMode::BasicTls, RegistryMode::TokenTls] {
        let reg = TestRegistry::start(mode).unwrap();
        let fixtures = push_fixture_images(&reg).unwrap();
        let r = Reference::parse(&fixtures[0].reference).unwrap();
        let (username, _) = reg.credentials().unwrap();
        let password = "Wr0ng-Passw0rd-Kiba".to_string();
        let config = ClientConfig {
            credentials: HashMap::from([(
                reg.host(),
                Credential::Basic {
                    username,
                    password: password.clone(),
                },
            )]),
            ..config_without_credentials(&reg)
        };
        let err = resolve_error(config, &r).await;
        let text = format!("{err} | {err:?}");
        eprintln!("{mode:?} wrong password: {err}");
        assert!(
            text.contains(&reg.host()) && text.contains("401"),
            "{mode:?}: {text}"
        );
        assert!(
            !text.contains(&password),
            "{mode:?}: the password leaked: {text}"
        );

        // No credentials at all.
        let err = resolve_error(config_without_credentials(&reg), &r).await;
        eprintln!("{mode:?} anonymous: {err}");
        assert!(
            matches!(err, Error::Unauthorized { .. }) && err.to_string().contains(&reg.host()),
            "{mode:?}: {err}"
        );

        // Without the CA bundle the certificate is not trusted: a final error that says so, not retries.
        let untrusted = ClientConfig {
            ca_file: None,
            ..config_without_credentials(&reg)
        };
        let err = resolve_error(untrusted, &r).await;
        eprintln!("{mode:?} untrusted: {err}");
        assert!(
            err.is_untrusted_certificate()
                && err.to_string().contains("not trusted")
                && !err.to_string().contains("--"),
            "{mode:?}: {err}"
        );
    }
}

#[tokio::test]
async fn unknown_repositories_and_tags_are_not_found_naming_the_reference() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let fixtures = push_fixture_images(&reg).unwrap();
    let client = client_for(&reg);
    for reference in [
        format!("{}/no/such-repo:v1", reg.host()),
        format!("{}/{}:no-such-tag", reg.host(), fixtures[0].repository),
    ] {
        let r = Reference::parse(&reference).unwrap();
        for err in [
            client.resolve_digest(&r, None).await.unwrap_err(),
            client.fetch_manifest(&r).await.unwrap_err(),
        ] {
            assert!(err.is_not_found(), "{err}");
            assert!(err.to_string().contains(&reference), "{err}");
        }
    }
}

/// A small valid image pushed by our client: config blob + one layer + manifest.
async fn push_small_image(
    client: &RegistryClient,
    r: &Reference,
    annotation_bytes: usize,
) -> (Vec<u8>, Digest) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"kibaship layer bytes".to_vec();
    let config_digest = client.push_blob(r, config).await.unwrap();
    let layer_digest = client.push_blob(r, &layer).await.unwrap();
    assert_eq!(
        client.fetch_blob(r, &layer_digest, 1024).await.unwrap(),
        layer
    );
    let mut annotations = BTreeMap::new();
    if annotation_bytes > 0 {
        annotations.insert(
            "org.example.padding".to_string(),
            "x".repeat(annotation_bytes),
        );
    }
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor {
            digest: config_digest,
            ..Descriptor::of("application/vnd.oci.image.config.v1+json", config)
        },
        layers: vec![Descriptor {
            digest: layer_digest,
            ..Descriptor::of("application/vnd.oci.image.layer.v1.tar", &layer)
        }],
        subject: None,
        annotations,
    };
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let pushed = client.push_manifest(r, &bytes, OCI_MANIFEST).await.unwrap();
    (bytes, pushed.digest)
}

#[tokio::test]
async fn skopeo_reads_what_we_push_and_limits_hold() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let client = client_for(&reg);
    let r = Reference::parse(&format!("{}/kiba/pushed:v1", reg.host())).unwrap();
    let (bytes, digest) = push_small_image(&client, &r, 0).await;
    assert_eq!(
        skopeo_raw(&r.to_string(), None),
        bytes,
        "skopeo reads our manifest byte for byte"
    );
    assert_eq!(
        client.resolve_digest(&r, None).await.unwrap().digest,
        digest
    );
    let tags = client.list_tags(&r).await.unwrap();
    assert_eq!(tags, vec!["v1".to_string()]);

    // A manifest above the client's limit is refused when read, and a push above it is refused up front.
    let big = Reference::parse(&format!("{}/kiba/pushed:big", reg.host())).unwrap();
    push_small_image(&client, &big, 64 * 1024).await;
    let small_limit = RegistryClient::new(ClientConfig {
        insecure_registries: vec![reg.host()],
        use_docker_config: false,
        max_manifest_bytes: 16 * 1024,
        ..ClientConfig::default()
    })
    .unwrap();
    let err = small_limit.fetch_manifest(&big).await.unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit: 16384, .. })
            && err.to_string().contains(&reg.host()),
        "{err}"
    );
    let err = small_limit
        .push_manifest(&big, &vec![b' '; 20 * 1024], OCI_MANIFEST)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    // A blob above the caller's limit.
    let layer_digest = Digest::sha256_of(b"kibaship layer bytes");
    let err = client.fetch_blob(&r, &layer_digest, 4).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 4, .. }), "{err}");
}

#[tokio::test]
async fn a_manifest_edited_on_disk_is_rejected() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let client = client_for(&reg);
    let r = Reference::parse(&format!("{}/kiba/tamper:v1", reg.host())).unwrap();
    let (bytes, digest) = push_small_image(&client, &r, 0).await;
    let data = reg
        .storage_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&digest.hex()[..2])
        .join(digest.hex())
        .join("data");
    assert_eq!(
        std::fs::read(&data).unwrap(),
        bytes,
        "the registry stores the manifest at {}",
        data.display()
    );
    let tampered = String::from_utf8(bytes)
        .unwrap()
        .replace("amd64", "arm64")
        .replace("kibaship", "kibashop");
    std::fs::write(
        &data,
        tampered.replace("\"schemaVersion\":2", "\"schemaVersion\":2 "),
    )
    .unwrap();
    for reference in [r.clone(), r.with_digest(digest.clone())] {
        let err = client.fetch_manifest(&reference).await.unwrap_err();
        eprintln!("tampered: {err}");
        assert!(
            matches!(err, Error::DigestMismatch { .. }),
            "{reference}: {err}"
        );
        assert!(err.to_string().contains(&digest.to_string()), "{err}");
    }
    // With --platform, resolution has to read the body, so the tampering is caught there too when the
    // registry does not announce a digest. HEAD alone cannot see it (no body), which is why verification
    // paths always fetch.
}

#[tokio::test]
async fn tags_paginate_on_the_real_registry() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let mut pushed = push_tags(&reg, "kiba/many", 25).unwrap();
    let client = client_for(&reg);
    let r = Reference::parse(&format!("{}/kiba/many", reg.host())).unwrap();
    let mut listed = client.list_tags_paged(&r, 10).await.unwrap();
    listed.sort();
    pushed.sort();
    assert_eq!(listed, pushed);
}

fn artifact(artifact_type: &str, content: &[u8]) -> Artifact {
    Artifact {
        artifact_type: artifact_type.to_string(),
        layer_media_type: "application/octet-stream".to_string(),
        content: content.to_vec().into(),
        content_digest: None,
        title: Some("report.json".to_string()),
        annotations: BTreeMap::from([("org.example.kind".to_string(), artifact_type.to_string())]),
    }
}

#[tokio::test]
async fn referrers_fallback_is_written_and_read_and_skopeo_agrees() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let fixtures = push_fixture_images(&reg).unwrap();
    let client = client_for(&reg);
    let image = Reference::parse(&fixtures[0].reference).unwrap();
    let subject_digest = Digest::sha256_of(&skopeo_raw(&fixtures[0].reference, None));

    let empty = client.list_referrers(&image, None).await.unwrap();
    assert_eq!(
        (empty.source, empty.descriptors.len()),
        (ReferrersSource::FallbackTag, 0)
    );

    let sbom = client
        .attach_artifact(
            &image,
            &artifact("application/spdx+json", b"{\"spdx\":true}"),
        )
        .await
        .unwrap();
    let sig = client
        .attach_artifact(&image, &artifact("application/vnd.example.sig", b"sig"))
        .await
        .unwrap();
    assert_eq!(sbom.via, ReferrersSource::FallbackTag);
    assert_eq!(sbom.subject.digest, subject_digest);

    // skopeo reads the artifact manifest (subject, empty config) and the fallback index.
    let repo = format!("{}/{}", reg.host(), fixtures[0].repository);
    let artifact_raw = skopeo_raw(&format!("{repo}@{}", sbom.manifest.digest), None);
    assert_eq!(Digest::sha256_of(&artifact_raw), sbom.manifest.digest);
    let m: serde_json::Value = serde_json::from_slice(&artifact_raw).unwrap();
    assert_eq!(m["subject"]["digest"], subject_digest.to_string());
    assert_eq!(m["artifactType"], "application/spdx+json");
    assert_eq!(m["config"]["mediaType"], OCI_EMPTY);
    assert_eq!(
        m["config"]["digest"],
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    let layer_digest = Digest::parse(m["layers"][0]["digest"].as_str().unwrap()).unwrap();
    assert_eq!(
        client
            .fetch_blob(&image, &layer_digest, 1024)
            .await
            .unwrap(),
        b"{\"spdx\":true}"
    );

    let index_raw = skopeo_raw(&format!("{repo}:sha256-{}", subject_digest.hex()), None);
    let index: ImageIndex = serde_json::from_slice(&index_raw).unwrap();
    assert_eq!(index.media_type.as_deref(), Some(OCI_INDEX));
    let in_index: Vec<_> = index.manifests.iter().map(|d| d.digest.clone()).collect();
    assert_eq!(
        in_index,
        vec![sbom.manifest.digest.clone(), sig.manifest.digest.clone()],
        "the second write kept the first entry"
    );
    assert_eq!(
        index.manifests[0]
            .annotations
            .get("org.example.kind")
            .map(String::as_str),
        Some("application/spdx+json")
    );

    let all = client.list_referrers(&image, None).await.unwrap();
    assert_eq!(all.descriptors.len(), 2);
    let only_sig = client
        .list_referrers(&image, Some("application/vnd.example.sig"))
        .await
        .unwrap();
    assert_eq!(
        only_sig
            .descriptors
            .iter()
            .map(|d| d.digest.clone())
            .collect::<Vec<_>>(),
        vec![sig.manifest.digest.clone()]
    );

    // Re-attaching the same artifact is idempotent; a fresh client (no cache) sees the same.
    client
        .attach_artifact(&image, &artifact("application/vnd.example.sig", b"sig"))
        .await
        .unwrap();
    assert_eq!(
        client_for(&reg)
            .list_referrers(&image, None)
            .await
            .unwrap()
            .descriptors
            .len(),
        2
    );
}

/// `with_credentials`: a clone with a Pod's pull secret reads what the client alone may not, the client stays
/// without, and a token fetched with the clone's credential is never reused by the client or another clone.
#[tokio::test]
async fn per_request_credentials_are_used_by_their_clone_only() {
    for mode in [RegistryMode::BasicTls, RegistryMode::TokenTls] {
        let reg = TestRegistry::start(mode).unwrap();
        let fixtures = push_fixture_images(&reg).unwrap();
        let r = Reference::parse(&fixtures[0].reference).unwrap();
        let (username, password) = reg.credentials().unwrap();
        let anonymous = RegistryClient::new(config_without_credentials(&reg)).unwrap();
        let with_secret = anonymous.with_credentials(HashMap::from([(
            reg.host(),
            Credential::Basic {
                username: username.clone(),
                password,
            },
        )]));
        with_secret
            .with_timeout(Duration::from_secs(30))
            .resolve_digest(&r, None)
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: with the pull secret: {e}"));
        // Another tenant's wrong secret, and the client itself, are still refused.
        let wrong = anonymous.with_credentials(HashMap::from([(
            reg.host(),
            Credential::Basic {
                username,
                password: "not-the-password".into(),
            },
        )]));
        for (who, client) in [("wrong secret", &wrong), ("no secret", &anonymous)] {
            let e = client.resolve_digest(&r, None).await.unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains("denied")
                    || text.contains("rejected")
                    || text.contains("credentials"),
                "{mode:?}: {who}: {text}"
            );
        }
        // The clone with the right secret still reads, with the token it was issued (none is fetched anew).
        let before = reg.tokens_issued();
        with_secret.resolve_digest(&r, None).await.unwrap();
        assert_eq!(
            reg.tokens_issued(),
            before,
            "{mode:?}: the clone's token is reused"
        );
    }
}

/// The upload sessions of `repository` that hold bytes on distribution's disk (`_uploads/<uuid>/data`; a
/// cancelled session leaves its `hashstates` directory behind, without data).
fn upload_sessions(reg: &TestRegistry, repository: &str) -> usize {
    let dir = reg
        .storage_dir()
        .join("docker/registry/v2/repositories")
        .join(repository)
        .join("_uploads");
    std::fs::read_dir(dir).map_or(0, |sessions| {
        sessions
            .filter(|s| s.as_ref().is_ok_and(|s| s.path().join("data").exists()))
            .count()
    })
}

/// A blob sent into an upload session is not a blob until the session is committed; a cancelled session
/// leaves nothing, and a commit naming another digest is refused by the registry (plain HTTP, and with token
/// auth over TLS: the session's requests carry the push scope).
#[tokio::test]
async fn a_staged_blob_exists_only_once_committed_and_a_cancelled_one_never() {
    for mode in [RegistryMode::Plain, RegistryMode::TokenTls] {
        let reg = TestRegistry::start(mode).unwrap();
        let client = client_for(&reg);
        let repository = Reference::parse(&format!("{}/staged/app:v1", reg.host())).unwrap();
        let content: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let digest = Digest::sha256_of(&content);

        let opened = client.start_blob_upload(&repository).await.unwrap();
        assert_eq!(opened.sent(), 0, "{mode}");
        let sent = client
            .send_blob_upload(&opened, bytes::Bytes::from(content.clone()))
            .await
            .unwrap();
        assert_eq!(sent.sent(), content.len() as u64, "{mode}");
        assert_eq!(sent.repository(), &repository, "{mode}");
        assert!(
            !client.blob_exists(&repository, &digest).await.unwrap(),
            "{mode}: the blob exists before its commit"
        );
        assert_eq!(upload_sessions(&reg, "staged/app"), 1, "{mode}");
        // A session takes one chunk from its start: a second is refused before anything is sent.
        let again = client
            .send_blob_upload(&sent, bytes::Bytes::from_static(b"more"))
            .await
            .unwrap_err();
        assert!(
            again.to_string().contains("one non-empty chunk"),
            "{mode}: {again}"
        );
        client.commit_blob_upload(&sent, &digest).await.unwrap();
        assert!(
            client.blob_exists(&repository, &digest).await.unwrap(),
            "{mode}"
        );
        let fetched = client
            .fetch_blob(&repository, &digest, 4_000_000)
            .await
            .unwrap();
        assert!(fetched == content, "{mode}: the committed blob differs");
        assert_eq!(upload_sessions(&reg, "staged/app"), 0, "{mode}");

        // Cancelled: nothing left, and the session cannot be committed afterwards.
        let other: Vec<u8> = content.iter().rev().copied().collect();
        let other_digest = Digest::sha256_of(&other);
        let opened = client.start_blob_upload(&repository).await.unwrap();
        let sent = client
            .send_blob_upload(&opened, bytes::Bytes::from(other.clone()))
            .await
            .unwrap();
        assert_eq!(upload_sessions(&reg, "staged/app"), 1, "{mode}");
        client.cancel_blob_upload(&sent).await.unwrap();
        assert_eq!(upload_sessions(&reg, "staged/app"), 0, "{mode}");
        assert!(
            client
                .commit_blob_upload(&sent, &other_digest)
                .await
                .is_err(),
            "{mode}"
        );
        assert!(
            !client
                .blob_exists(&repository, &other_digest)
                .await
                .unwrap(),
            "{mode}: a cancelled session became a blob"
        );

        // Committed under a digest that is not its content's: refused, no blob of either digest.
        let opened = client.start_blob_upload(&repository).await.unwrap();
        let sent = client
            .send_blob_upload(&opened, bytes::Bytes::from(other.clone()))
            .await
            .unwrap();
        let wrong = Digest::sha256_of(b"something else");
        let refused = client.commit_blob_upload(&sent, &wrong).await.unwrap_err();
        assert!(
            refused.to_string().contains("DIGEST_INVALID") || refused.to_string().contains("400"),
            "{mode}: {refused}"
        );
        assert!(
            !client.blob_exists(&repository, &wrong).await.unwrap(),
            "{mode}"
        );
        assert!(
            !client
                .blob_exists(&repository, &other_digest)
                .await
                .unwrap(),
            "{mode}"
        );
    }
}
