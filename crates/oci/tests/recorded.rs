//! Client behaviour against a loopback server replaying recorded registry answers (the referrers API as
//! go-containerregistry's registry served it, `testdata/oci/recorded/`) and scripted answers for auth,
//! retries, limits and digest checks that a healthy registry never produces.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use kibaship_oci::{
    ClientConfig, Credential, Digest, Error, Reference, Referrers, ReferrersSource, RegistryClient,
    RetryPolicy,
};
use support::{ReplayServer, Reply, Seen, assert_retries_exhausted, testdata};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
        max_total: Duration::from_secs(20),
    }
}

fn config_for(host: &str) -> ClientConfig {
    ClientConfig {
        insecure_registries: vec![host.to_string()],
        use_docker_config: false,
        retry: fast_retry(),
        ..ClientConfig::default()
    }
}

fn client_for(host: &str) -> RegistryClient {
    RegistryClient::new(config_for(host)).unwrap()
}

/// `<host>/a/b:v1`, the image the scripted servers answer for.
fn tagged_ref(host: &str) -> Reference {
    Reference::parse(&format!("{host}/a/b:v1")).unwrap()
}

/// A client for `host` that sends `user`:`password` (basic auth, or to the token endpoint).
fn client_with_password(host: &str, user: &str, password: &str) -> RegistryClient {
    let mut config = config_for(host);
    config.credentials = HashMap::from([(
        host.to_string(),
        Credential::Basic {
            username: user.into(),
            password: password.into(),
        },
    )]);
    RegistryClient::new(config).unwrap()
}

/// A client for `host` that reads docker's `config.json` (written as `config_json` into the returned
/// directory, which must outlive the client).
fn client_with_docker_config(host: &str, config_json: &str) -> (RegistryClient, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config_json).unwrap();
    let mut config = config_for(host);
    config.use_docker_config = true;
    config.docker_config_dir = Some(dir.path().to_path_buf());
    (RegistryClient::new(config).unwrap(), dir)
}

/// A server that answers the referrers API with a recorded answer and anything else with 500.
fn referrers_api_server(recorded: &'static str) -> ReplayServer {
    ReplayServer::start(move |req| {
        if req.path().contains("/referrers/") {
            Reply::recorded(recorded)
        } else {
            Reply::new(500)
        }
    })
}

fn subject_digest() -> String {
    std::fs::read_to_string(testdata().join("recorded/ggcr-referrers-subject.txt"))
        .unwrap()
        .trim()
        .to_string()
}

fn subject_ref(host: &str) -> Reference {
    Reference::parse(&format!("{host}/rec/app@sha256:{}", subject_digest())).unwrap()
}

// ---------- referrers API (recorded from go-containerregistry's registry) ----------

#[tokio::test]
async fn referrers_api_unfiltered_and_filtered_by_the_registry() {
    let server = ReplayServer::start(|req| {
        if req.path().contains("/referrers/") {
            if req.target.contains("artifactType=") {
                Reply::recorded("ggcr-referrers-filtered.http")
            } else {
                Reply::recorded("ggcr-referrers-all.http")
            }
        } else {
            Reply::new(500)
        }
    });
    let client = client_for(&server.host());
    let all = subject_referrers(&client, &server, None).await;
    assert_eq!(all.source, ReferrersSource::Api);
    let types: Vec<_> = all
        .descriptors
        .iter()
        .map(|d| d.artifact_type.clone().unwrap())
        .collect();
    assert_eq!(
        types,
        vec!["application/spdx+json", "application/vnd.example.sig"]
    );
    let sbom = subject_referrers(&client, &server, Some("application/spdx+json")).await;
    assert_eq!(sbom.descriptors.len(), 1);
    assert_eq!(
        sbom.descriptors[0].artifact_type.as_deref(),
        Some("application/spdx+json")
    );
    let filtered_request = server
        .seen()
        .into_iter()
        .find(|s| s.target.contains("artifactType="))
        .unwrap();
    assert!(
        filtered_request
            .target
            .ends_with("artifactType=application%2Fspdx%2Bjson"),
        "{}",
        filtered_request.target
    );
    assert_eq!(
        server.count("GET", "/v2/rec/app/manifests/"),
        0,
        "the API answered: no fallback tag read"
    );
}

#[tokio::test]
async fn referrers_filtered_client_side_without_oci_filters_applied() {
    // The registry ignores ?artifactType (it returns everything and no OCI-Filters-Applied header).
    let server = referrers_api_server("ggcr-referrers-all.http");
    let client = client_for(&server.host());
    let sig = subject_referrers(&client, &server, Some("application/vnd.example.sig")).await;
    assert_eq!(sig.descriptors.len(), 1);
    assert_eq!(
        sig.descriptors[0].artifact_type.as_deref(),
        Some("application/vnd.example.sig")
    );
    let none = subject_referrers(&client, &server, Some("application/x-none")).await;
    assert!(none.descriptors.is_empty());
}

#[tokio::test]
async fn referrers_follow_link_pagination() {
    let all = Reply::recorded("ggcr-referrers-all.http");
    let index: serde_json::Value = serde_json::from_slice(&all.body).unwrap();
    let page = |i: usize| {
        let mut page = index.clone();
        page["manifests"] = serde_json::Value::Array(vec![index["manifests"][i].clone()]);
        serde_json::to_vec(&page).unwrap()
    };
    let (first, second) = (page(0), page(1));
    let server = ReplayServer::start(move |req| {
        if !req.path().contains("/referrers/") {
            return Reply::new(500);
        }
        if req.target.contains("last=") {
            Reply::new(200)
                .header("Content-Type", OCI_INDEX)
                .body(second.clone())
        } else {
            let next = format!("<{}?n=1&last=x>; rel=\"next\"", req.path());
            Reply::new(200)
                .header("Content-Type", OCI_INDEX)
                .header("Link", &next)
                .body(first.clone())
        }
    });
    let client = client_for(&server.host());
    let got = subject_referrers(&client, &server, None).await;
    assert_eq!(got.descriptors.len(), 2);
    assert_eq!(server.count("GET", "/v2/rec/app/referrers/"), 2);
}

/// The referrers of the recorded subject on `server`, optionally only those of `artifact_type`.
async fn subject_referrers(
    client: &RegistryClient,
    server: &ReplayServer,
    artifact_type: Option<&str>,
) -> Referrers {
    client
        .list_referrers(&subject_ref(&server.host()), artifact_type)
        .await
        .unwrap()
}

fn fallback_index_reply(digest: &str) -> Reply {
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": 10, "artifactType": "application/x-fallback"}]
    });
    Reply::new(200)
        .header("Content-Type", OCI_INDEX)
        .body(serde_json::to_vec(&index).unwrap())
}

#[tokio::test]
async fn referrers_fall_back_to_the_tag_on_404_and_on_a_non_index_answer() {
    let other = format!("sha256:{}", "ab".repeat(32));
    for api_answer in [
        Reply::json(404, r#"{"errors":[{"code":"NOT_FOUND"}]}"#),
        Reply::json(200, "{}"),
    ] {
        let served = other.clone();
        let tag = format!("/v2/rec/app/manifests/sha256-{}", subject_digest());
        let server = ReplayServer::start(move |req| {
            if req.path().contains("/referrers/") {
                api_answer.clone()
            } else if req.path() == tag {
                fallback_index_reply(&served)
            } else {
                Reply::new(404)
            }
        });
        let client = client_for(&server.host());
        let got = subject_referrers(&client, &server, None).await;
        assert_eq!(got.source, ReferrersSource::FallbackTag);
        assert_eq!(got.descriptors.len(), 1);
        assert_eq!(got.descriptors[0].digest.to_string(), other);
        // The "no API" answer is cached per repository: the second listing goes straight to the tag.
        subject_referrers(&client, &server, None).await;
        assert_eq!(server.count("GET", "/v2/rec/app/referrers/"), 1);
    }
}

#[tokio::test]
async fn referrers_with_neither_api_nor_tag_are_empty_and_server_errors_are_not_hidden() {
    let server = ReplayServer::start(|_| Reply::new(404));
    let got = subject_referrers(&client_for(&server.host()), &server, None).await;
    assert!(got.descriptors.is_empty());

    let server = ReplayServer::start(|_| {
        Reply::json(403, r#"{"errors":[{"code":"DENIED","message":"nope"}]}"#)
    });
    let err = client_for(&server.host())
        .list_referrers(&subject_ref(&server.host()), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { status: 403, .. }),
        "{err}"
    );
}

// ---------- digests ----------

#[tokio::test]
async fn head_without_digest_falls_back_to_a_verified_get() {
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec();
    let expected = Digest::sha256_of(&body);
    let served = body.clone();
    let server = ReplayServer::start(move |req| {
        Reply::new(200)
            .header("Content-Type", OCI_MANIFEST)
            .body(served.clone())
            .header("X-Method", &req.method)
    });
    let client = client_for(&server.host());
    let r = tagged_ref(&server.host());
    let resolved = client.resolve_digest(&r, None).await.unwrap();
    assert_eq!(resolved.digest, expected);
    assert_eq!(server.count("HEAD", "/v2/a/b/manifests/v1"), 1);
    assert_eq!(server.count("GET", "/v2/a/b/manifests/v1"), 1);
    let accept = server.seen()[0].header("accept").unwrap().to_string();
    for mt in kibaship_oci::manifest::MANIFEST_MEDIA_TYPES {
        assert!(accept.contains(mt), "Accept {accept} lacks {mt}");
    }
}

#[tokio::test]
async fn a_body_that_does_not_match_its_announced_digest_is_rejected() {
    let lie = format!("sha256:{}", "0".repeat(64));
    let server = ReplayServer::start(move |req| {
        if req.method == "HEAD" {
            Reply::new(200).header("Content-Type", OCI_MANIFEST)
        } else {
            Reply::new(200)
                .header("Content-Type", OCI_MANIFEST)
                .header("Docker-Content-Digest", &lie)
                .body("{\"schemaVersion\":2}")
        }
    });
    let client = client_for(&server.host());
    let r = tagged_ref(&server.host());
    let err = client.resolve_digest(&r, None).await.unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&server.host()) && text.contains("a/b:v1"),
        "{text}"
    );
}

#[tokio::test]
async fn oversized_manifests_are_refused_before_reading() {
    let server = ReplayServer::start(|_| {
        Reply::new(200)
            .header("Content-Type", OCI_MANIFEST)
            .body(vec![b' '; 5 * 1024 * 1024])
    });
    let client = client_for(&server.host());
    let r = tagged_ref(&server.host());
    let err = client.fetch_manifest(&r).await.unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit: 4194304, .. }),
        "{err}"
    );
    assert_eq!(server.count("GET", "/v2/"), 1, "a size error is final");
}

// ---------- retries ----------

#[tokio::test]
async fn transient_503_and_429_with_retry_after_are_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = ReplayServer::start(move |_| match c.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::new(503),
        1 => Reply::new(429).header("Retry-After", "1"),
        _ => Reply::new(200).header(
            "Docker-Content-Digest",
            &format!("sha256:{}", "1".repeat(64)),
        ),
    });
    let client = client_for(&server.host());
    let r = tagged_ref(&server.host());
    let started = std::time::Instant::now();
    let resolved = client.resolve_digest(&r, None).await.unwrap();
    assert_eq!(resolved.digest.hex(), "1".repeat(64));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 must be honoured"
    );
}

#[tokio::test]
async fn persistent_failures_end_with_the_last_cause() {
    let server = ReplayServer::start(|_| {
        Reply::json(
            503,
            r#"{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}"#,
        )
    });
    let client = client_for(&server.host());
    let r = tagged_ref(&server.host());
    let err = client.fetch_manifest(&r).await.unwrap_err();
    assert_retries_exhausted(
        &err,
        4,
        &server.host(),
        &["HTTP 503", "UNAVAILABLE"],
        "503 throughout",
    );
    assert_eq!(server.count("GET", "/v2/a/b/manifests/v1"), 4);
}

#[tokio::test]
async fn other_4xx_are_never_retried() {
    for status in [400u16, 404, 405] {
        let server = ReplayServer::start(move |_| {
            Reply::json(
                status,
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            )
        });
        let client = client_for(&server.host());
        let r = tagged_ref(&server.host());
        let err = client.fetch_manifest(&r).await.unwrap_err();
        assert_eq!(
            server.count("GET", "/v2/"),
            1,
            "status {status} must not be retried"
        );
        if status == 404 {
            assert!(err.is_not_found());
            assert!(
                err.to_string().contains("a/b:v1") && err.to_string().contains("MANIFEST_UNKNOWN"),
                "{err}"
            );
        }
    }
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let host = format!("127.0.0.1:{port}");
    let client = client_for(&host);
    let r = tagged_ref(&host);
    let err = client.resolve_digest(&r, None).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::RetriesExhausted { attempts: 4, .. }),
        "{text}"
    );
    assert!(
        text.contains(&host) && text.to_lowercase().contains("connect"),
        "{text}"
    );
}

// ---------- auth ----------

/// A registry that wants `Bearer tok-<generation>` from a token endpoint on the same server.
struct TokenRegistry {
    server: ReplayServer,
    generation: Arc<AtomicUsize>,
}

fn token_registry(check: impl Fn(&Seen) -> bool + Send + Sync + 'static) -> TokenRegistry {
    token_registry_expiring(check, "300")
}

/// [`token_registry`] whose token responses carry `"expires_in": <expires_in>` (raw JSON).
fn token_registry_expiring(
    check: impl Fn(&Seen) -> bool + Send + Sync + 'static,
    expires_in: &'static str,
) -> TokenRegistry {
    let generation = Arc::new(AtomicUsize::new(1));
    let host_cell: Arc<std::sync::OnceLock<String>> = Arc::new(std::sync::OnceLock::new());
    let (g, h) = (generation.clone(), host_cell.clone());
    let server = ReplayServer::start(move |req| {
        let current = format!("Bearer tok-{}", g.load(Ordering::SeqCst));
        if req.path() == "/token" {
            if !check(req) {
                return Reply::json(
                    401,
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
                );
            }
            let scope_ok = req.target.contains("scope=repository%3Aa%2Fb%3Apull")
                || String::from_utf8_lossy(&req.body).contains("scope=repository%3Aa%2Fb%3Apull");
            assert!(
                scope_ok,
                "scope missing in {} {}",
                req.target,
                String::from_utf8_lossy(&req.body)
            );
            return Reply::json(
                200,
                &format!(
                    r#"{{"access_token":"tok-{}","expires_in":{expires_in}}}"#,
                    g.load(Ordering::SeqCst)
                ),
            );
        }
        if req.header("authorization") == Some(current.as_str()) {
            Reply::new(200).header(
                "Docker-Content-Digest",
                &format!("sha256:{}", "2".repeat(64)),
            )
        } else {
            let host = h.get().cloned().unwrap_or_default();
            Reply::json(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#).header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="http://{host}/token",service="replay",scope="repository:a/b:pull""#),
            )
        }
    });
    host_cell.set(server.host()).unwrap();
    TokenRegistry { server, generation }
}

fn basic_of(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[tokio::test]
async fn bearer_tokens_are_cached_per_scope_and_refetched_once_on_401() {
    let expected = basic_of("alice", "s3cret-pw");
    let reg = token_registry(move |req| req.header("authorization") == Some(expected.as_str()));
    let host = reg.server.host();
    let client = client_with_password(&host, "alice", "s3cret-pw");
    let r = tagged_ref(&host);
    for _ in 0..3 {
        client.resolve_digest(&r, None).await.unwrap();
    }
    assert_eq!(
        reg.server.count("GET", "/token"),
        1,
        "one token for three lookups"
    );
    // The registry rotates its tokens: the cached one now gets 401, and exactly one new token is fetched.
    reg.generation.store(2, Ordering::SeqCst);
    client.clone().resolve_digest(&r, None).await.unwrap();
    assert_eq!(reg.server.count("GET", "/token"), 2);
}

#[tokio::test]
async fn wrong_password_names_the_registry_never_the_password() {
    let reg = token_registry(|_| false);
    let host = reg.server.host();
    let client = client_with_password(&host, "alice", "hunter2-secret");
    let r = tagged_ref(&host);
    let err = client.resolve_digest(&r, None).await.unwrap_err();
    let text = format!("{err} / {err:?}");
    assert!(text.contains(&host) && text.contains("401"), "{text}");
    assert!(
        !text.contains("hunter2-secret")
            && !text.contains(&basic_of("alice", "hunter2-secret")[6..]),
        "{text}"
    );
}

#[tokio::test]
async fn identity_tokens_from_docker_config_use_the_refresh_token_grant() {
    let reg = token_registry(|req| {
        req.method == "POST"
            && String::from_utf8_lossy(&req.body).contains("grant_type=refresh_token")
            && String::from_utf8_lossy(&req.body).contains("refresh_token=rt-123")
    });
    let host = reg.server.host();
    let (client, _dir) = client_with_docker_config(
        &host,
        &format!(
            r#"{{"auths":{{"http://{host}/v2/":{{"auth":"{}","identitytoken":"rt-123"}}}}}}"#,
            base64::engine::general_purpose::STANDARD.encode("<token>:")
        ),
    );
    let r = tagged_ref(&host);
    client.resolve_digest(&r, None).await.unwrap();
    assert_eq!(reg.server.count("POST", "/token"), 1);
}

#[tokio::test]
async fn basic_auth_from_docker_config() {
    let want = basic_of("bob", "pw:with:colons");
    let server = ReplayServer::start(move |req| {
        if req.header("authorization") == Some(want.as_str()) {
            Reply::new(200).header(
                "Docker-Content-Digest",
                &format!("sha256:{}", "3".repeat(64)),
            )
        } else {
            Reply::new(401).header("WWW-Authenticate", r#"Basic realm="replay""#)
        }
    });
    let host = server.host();
    let (client, _dir) = client_with_docker_config(
        &host,
        &format!(
            r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
            base64::engine::general_purpose::STANDARD.encode("bob:pw:with:colons")
        ),
    );
    let r = tagged_ref(&host);
    client.resolve_digest(&r, None).await.unwrap();
    client.resolve_digest(&r, None).await.unwrap();
    assert_eq!(
        server.count("HEAD", "/v2/"),
        3,
        "one challenge, then basic auth is sent up front"
    );

    // Without credentials: a clear error naming the registry.
    let anonymous = client_for(&host);
    let err = anonymous.resolve_digest(&r, None).await.unwrap_err();
    assert!(
        matches!(err, Error::Unauthorized { .. }) && err.to_string().contains(&host),
        "{err}"
    );
}

#[tokio::test]
async fn tags_are_listed_across_link_pages() {
    let server = ReplayServer::start(|req| {
        let last = req
            .target
            .split("last=")
            .nth(1)
            .map(|s| s.split('&').next().unwrap_or("").to_string());
        let (tags, next): (Vec<&str>, Option<&str>) = match last.as_deref() {
            None => (vec!["a", "b"], Some("b")),
            Some("b") => (vec!["c", "d"], Some("d")),
            _ => (vec!["e"], None),
        };
        let mut reply = Reply::json(
            200,
            &serde_json::json!({"name": "a/b", "tags": tags}).to_string(),
        );
        if let Some(n) = next {
            reply = reply.header(
                "Link",
                &format!("</v2/a/b/tags/list?n=2&last={n}>; rel=\"next\""),
            );
        }
        reply
    });
    let client = client_for(&server.host());
    let r = Reference::parse(&format!("{}/a/b", server.host())).unwrap();
    assert_eq!(
        client.list_tags_paged(&r, 2).await.unwrap(),
        vec!["a", "b", "c", "d", "e"]
    );
    assert_eq!(server.count("GET", "/v2/a/b/tags/list"), 3);
}

#[tokio::test]
async fn links_to_other_hosts_are_refused() {
    let server = ReplayServer::start(|_| {
        Reply::json(200, r#"{"tags":["a"]}"#).header(
            "Link",
            "<http://evil.example/v2/a/b/tags/list?last=a>; rel=\"next\"",
        )
    });
    let client = client_for(&server.host());
    let r = Reference::parse(&format!("{}/a/b", server.host())).unwrap();
    let err = client.list_tags(&r).await.unwrap_err();
    assert!(
        matches!(err, Error::Protocol { .. }) && err.to_string().contains("evil.example"),
        "{err}"
    );
}

#[tokio::test]
async fn concurrent_first_requests_share_one_token() {
    let expected = basic_of("alice", "pw");
    let reg = token_registry(move |req| req.header("authorization") == Some(expected.as_str()));
    let host = reg.server.host();
    let client = client_with_password(&host, "alice", "pw");
    let r = tagged_ref(&host);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (client, r) = (client.clone(), r.clone());
            tokio::spawn(async move { client.resolve_digest(&r, None).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        reg.server.count("GET", "/token"),
        1,
        "32 concurrent lookups, one token request"
    );
}

#[tokio::test]
async fn manifests_fetched_by_digest_are_cached_and_tags_are_not() {
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.to_vec();
    let digest = Digest::sha256_of(&body);
    let served = body.clone();
    let server = ReplayServer::start(move |_| {
        Reply::new(200)
            .header("Content-Type", OCI_INDEX)
            .body(served.clone())
    });
    let client = client_for(&server.host());
    let by_tag = tagged_ref(&server.host());
    let by_digest = by_tag.with_digest(digest.clone());
    for _ in 0..3 {
        assert_eq!(
            client.fetch_manifest(&by_digest).await.unwrap().digest,
            digest
        );
        assert_eq!(client.fetch_manifest(&by_tag).await.unwrap().digest, digest);
    }
    assert_eq!(
        server.count("GET", &format!("/v2/a/b/manifests/{digest}")),
        1
    );
    assert_eq!(server.count("GET", "/v2/a/b/manifests/v1"), 3);
}

#[tokio::test]
async fn an_empty_api_answer_is_final_and_no_fallback_tag_is_read() {
    let server = referrers_api_server("ggcr-referrers-none.http");
    let got = subject_referrers(&client_for(&server.host()), &server, None).await;
    assert_eq!(
        (got.source, got.descriptors.len()),
        (ReferrersSource::Api, 0)
    );
    assert_eq!(server.count("GET", "/v2/rec/app/manifests/"), 0);
}

// ---------- numbers from the network never overflow ----------

#[tokio::test]
async fn any_expires_in_a_token_service_sends_is_clamped() {
    // u64::MAX once made `Instant + Duration` panic (the process aborted); the others must not fail the parse.
    for expires_in in [
        "18446744073709551615",
        "1e300",
        "-1",
        "0",
        "2.5",
        "\"soon\"",
        "null",
    ] {
        let reg = token_registry_expiring(|_| true, expires_in);
        let host = reg.server.host();
        let client = client_for(&host);
        let r = tagged_ref(&host);
        for _ in 0..2 {
            client
                .resolve_digest(&r, None)
                .await
                .unwrap_or_else(|e| panic!("expires_in {expires_in}: {e}"));
        }
        if expires_in.starts_with('1') {
            assert_eq!(
                reg.server.count("GET", "/token"),
                1,
                "expires_in {expires_in}: a long-lived token is cached"
            );
        }
    }
}

#[tokio::test]
async fn a_huge_retry_after_does_not_overflow_the_retry_clock() {
    // The answer takes over a second to arrive (75-odd bytes, 15 ms apart), so that the elapsed time has whole
    // seconds to add to the server's u64::MAX seconds.
    let server = ReplayServer::start(|_| {
        Reply::new(429)
            .header("Retry-After", "18446744073709551615")
            .trickle(Duration::from_millis(15))
    });
    let mut config = config_for(&server.host());
    // A caller that honours any Retry-After: the wait is then the server's number as is.
    config.retry.max_retry_after = Duration::MAX;
    let client = RegistryClient::new(config).unwrap();
    let err = client
        .resolve_digest(&tagged_ref(&server.host()), None)
        .await
        .unwrap_err();
    assert_retries_exhausted(
        &err,
        1,
        &server.host(),
        &["HTTP 429"],
        "Retry-After: u64::MAX",
    );
    assert_eq!(
        server.count("HEAD", "/v2/"),
        1,
        "no retry starts past max_total"
    );
}

#[tokio::test]
async fn a_huge_content_length_is_not_allocated_up_front() {
    // A blob read with a caller limit of u64::MAX (e.g. a descriptor's size): the announced length must not be
    // reserved before the bytes arrive (1e15 bytes made the allocation abort the process).
    let server = ReplayServer::start(|_| {
        Reply::new(200)
            .header("Content-Length", "1000000000000000")
            .body("only a few bytes")
    });
    let mut config = config_for(&server.host());
    config.retry = RetryPolicy::none();
    config.read_timeout = Duration::from_millis(300);
    let client = RegistryClient::new(config).unwrap();
    let digest = Digest::sha256_of(b"x");
    let err = client
        .fetch_blob(&tagged_ref(&server.host()), &digest, u64::MAX)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&server.host()), "{err}");
}

// ---------- errors that cannot succeed on retry ----------

#[tokio::test]
async fn a_redirect_loop_is_one_final_attempt() {
    let server = ReplayServer::start(|req| Reply::new(302).header("Location", req.path()));
    let client = client_for(&server.host());
    let err = client
        .fetch_manifest(&tagged_ref(&server.host()))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Transport { .. }), "{text}");
    assert!(
        text.contains(&server.host()) && text.contains("redirect"),
        "{text}"
    );
    // One attempt: the first request and the 5 redirects it followed, not 4 attempts of 6.
    assert_eq!(server.count("GET", "/v2/a/b/manifests/v1"), 6);
}

#[tokio::test]
async fn a_token_with_crlf_is_refused_once_never_sent_nor_retried() {
    let host_cell: Arc<std::sync::OnceLock<String>> = Arc::new(std::sync::OnceLock::new());
    let h = host_cell.clone();
    let server = ReplayServer::start(move |req| {
        if req.path() == "/token" {
            return Reply::json(
                200,
                r#"{"token":"tok\r\nX-Injected: yes","expires_in":300}"#,
            );
        }
        let host = h.get().cloned().unwrap_or_default();
        Reply::json(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#).header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="http://{host}/token",service="replay""#),
        )
    });
    host_cell.set(server.host()).unwrap();
    let client = client_for(&server.host());
    let err = client
        .resolve_digest(&tagged_ref(&server.host()), None)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::TokenService { .. }), "{text}");
    assert!(
        text.contains("CR, LF") && !text.contains("X-Injected"),
        "{text}"
    );
    assert_eq!(server.count("GET", "/token"), 1, "no retry");
    assert_eq!(server.count("HEAD", "/v2/"), 1, "the token is never sent");
}

// ---------- referrers pagination is bounded ----------

/// A referrers API whose page `n` (`?page=n`) holds `per_page` descriptors, each with `padding` bytes of
/// annotation, and links to page `next(n)`.
fn paging_referrers_server(
    per_page: usize,
    padding: usize,
    next: impl Fn(usize) -> usize + Send + Sync + 'static,
) -> ReplayServer {
    ReplayServer::start(move |req| {
        if !req.path().contains("/referrers/") {
            return Reply::new(404);
        }
        let n: usize = req
            .target
            .split("page=")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let manifests: Vec<_> = (0..per_page)
            .map(|i| {
                serde_json::json!({
                    "mediaType": OCI_MANIFEST,
                    "digest": format!("sha256:{:064x}", n * per_page + i),
                    "size": 100,
                    "artifactType": "application/x-test",
                    "annotations": {"pad": "p".repeat(padding)},
                })
            })
            .collect();
        let body =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        Reply::new(200)
            .header("Content-Type", OCI_INDEX)
            .header(
                "Link",
                &format!("<{}?page={}>; rel=\"next\"", req.path(), next(n)),
            )
            .body(serde_json::to_vec(&body).unwrap())
    })
}

async fn referrers_error(server: &ReplayServer) -> String {
    let err = client_for(&server.host())
        .list_referrers(&subject_ref(&server.host()), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&server.host()) && text.contains("referrers listing of"),
        "{text}"
    );
    text
}

#[tokio::test]
async fn a_referrers_link_back_to_its_own_page_stops_the_listing() {
    let server = paging_referrers_server(3, 0, |n| n);
    let text = referrers_error(&server).await;
    assert!(text.contains("a loop") && text.contains("page=0"), "{text}");
    assert_eq!(
        server.count("GET", "/v2/rec/app/referrers/"),
        2,
        "page 0, then ?page=0 once"
    );
}

#[tokio::test]
async fn referrers_pages_are_capped_in_descriptors() {
    let server = paging_referrers_server(1000, 0, |n| n + 1);
    let text = referrers_error(&server).await;
    assert!(
        text.contains(&format!(
            "more than {} descriptors",
            kibaship_oci::MAX_REFERRERS
        )),
        "{text}"
    );
    assert_eq!(server.count("GET", "/v2/rec/app/referrers/"), 11);
}

#[tokio::test]
async fn referrers_pages_are_capped_in_bytes() {
    // One descriptor of 3 MiB per page: within the 4 MiB page limit, 6 pages pass 16 MiB.
    let server = paging_referrers_server(1, 3 * 1024 * 1024, |n| n + 1);
    let text = referrers_error(&server).await;
    assert!(
        text.contains(&format!(
            "more than {} bytes",
            kibaship_oci::MAX_REFERRERS_BYTES
        )),
        "{text}"
    );
    assert_eq!(server.count("GET", "/v2/rec/app/referrers/"), 6);
}

#[tokio::test]
async fn a_tag_list_link_back_to_a_page_already_read_stops_the_listing() {
    let server = ReplayServer::start(|req| {
        Reply::json(200, r#"{"tags":["a"]}"#).header(
            "Link",
            &format!("<{}?n=1&last=a>; rel=\"next\"", req.path()),
        )
    });
    let client = client_for(&server.host());
    let r = Reference::parse(&format!("{}/a/b", server.host())).unwrap();
    let err = client.list_tags_paged(&r, 1).await.unwrap_err();
    assert!(err.to_string().contains("a loop"), "{err}");
    assert_eq!(server.count("GET", "/v2/a/b/tags/list"), 2);
}

// ---------- deadlines ----------

/// `err` is the deadline's [`Error::Timeout`] at `host`, its operation starting with `operation`.
fn assert_timeout(err: &Error, host: &str, operation: &str, after: Duration) {
    match err {
        Error::Timeout {
            registry,
            operation: op,
            after: budget,
            ..
        } => {
            assert_eq!(registry, host, "{err}");
            assert!(op.starts_with(operation), "{err}");
            assert!(op.contains(host), "the operation names the registry: {err}");
            assert_eq!(*budget, after, "{err}");
        }
        other => panic!("expected Timeout, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "timed out after {} {operation}",
            kibaship_oci::duration::format_duration(after)
        )),
        "{text}"
    );
}

#[tokio::test]
async fn a_trickling_manifest_ends_at_the_client_deadline() {
    // 2 bytes a second: the answer would take minutes, and no gap reaches the 30 s idle-read timeout.
    let server = ReplayServer::start(|_| {
        Reply::new(200)
            .header("Content-Type", OCI_MANIFEST)
            .body(vec![b' '; 400])
            .trickle(Duration::from_millis(500))
    });
    let mut config = config_for(&server.host());
    config.timeout = Some(Duration::from_secs(2));
    let client = RegistryClient::new(config).unwrap();
    let r = tagged_ref(&server.host());
    let err = client.fetch_manifest(&r).await.unwrap_err();
    assert_timeout(
        &err,
        &server.host(),
        &format!("fetching manifest {r} from"),
        Duration::from_secs(2),
    );
    assert!(err.is_timeout());
}

#[tokio::test]
async fn with_timeout_bounds_one_request_of_a_shared_client() {
    let server = ReplayServer::start(|_| {
        Reply::new(200)
            .header(
                "Docker-Content-Digest",
                &format!("sha256:{}", "4".repeat(64)),
            )
            .trickle(Duration::from_millis(500))
    });
    // A long-lived client with no overall deadline (a webhook's), bounded per request.
    let client = client_for(&server.host());
    let r = tagged_ref(&server.host());
    let err = client
        .with_timeout(Duration::from_millis(1500))
        .resolve_digest(&r, None)
        .await
        .unwrap_err();
    assert_timeout(
        &err,
        &server.host(),
        &format!("looking up manifest {r} at"),
        Duration::from_millis(1500),
    );
}

#[tokio::test]
async fn a_trickling_token_service_ends_at_the_deadline() {
    let host_cell: Arc<std::sync::OnceLock<String>> = Arc::new(std::sync::OnceLock::new());
    let h = host_cell.clone();
    let server = ReplayServer::start(move |req| {
        if req.path() == "/token" {
            return Reply::json(200, r#"{"token":"abc","expires_in":300}"#)
                .trickle(Duration::from_millis(500));
        }
        let host = h.get().cloned().unwrap_or_default();
        Reply::json(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#).header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="http://{host}/token",service="replay""#),
        )
    });
    host_cell.set(server.host()).unwrap();
    let mut config = config_for(&server.host());
    // The budget leaves the first (quick) 401 ample time, so that the token request is what it cuts.
    config.timeout = Some(Duration::from_secs(5));
    let client = RegistryClient::new(config).unwrap();
    let err = client
        .resolve_digest(&tagged_ref(&server.host()), None)
        .await
        .unwrap_err();
    assert_timeout(
        &err,
        &server.host(),
        &format!("fetching a token for {}", server.host()),
        Duration::from_secs(5),
    );
    assert!(err.to_string().contains("/token"), "{err}");
}

#[tokio::test]
async fn a_trickling_attempt_ends_at_the_attempt_timeout_and_is_retried() {
    let server = ReplayServer::start(|_| {
        Reply::new(200)
            .header("Content-Type", OCI_MANIFEST)
            .body(vec![b' '; 400])
            .trickle(Duration::from_millis(500))
    });
    let mut config = config_for(&server.host());
    config.attempt_timeout = Duration::from_secs(1);
    config.retry.max_attempts = 2;
    let client = RegistryClient::new(config).unwrap();
    let err = client
        .fetch_manifest(&tagged_ref(&server.host()))
        .await
        .unwrap_err();
    assert_retries_exhausted(
        &err,
        2,
        &server.host(),
        &["no complete response within 1s (the attempt timeout)"],
        "trickle",
    );
    assert_eq!(server.count("GET", "/v2/a/b/manifests/v1"), 2);
}

#[tokio::test]
async fn backoff_does_not_outlast_the_deadline() {
    // The registry asks for 30 s between attempts; the budget is 5 s: one attempt, then a Timeout that keeps
    // the registry's answer as the last cause (the retry would only start after the deadline).
    let server = ReplayServer::start(|_| {
        Reply::json(
            503,
            r#"{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}"#,
        )
        .header("Retry-After", "30")
    });
    let mut config = config_for(&server.host());
    config.retry.max_retry_after = Duration::from_secs(30);
    config.retry.max_total = Duration::from_secs(120);
    config.timeout = Some(Duration::from_secs(5));
    let client = RegistryClient::new(config).unwrap();
    let r = tagged_ref(&server.host());
    let err = client.fetch_manifest(&r).await.unwrap_err();
    assert_timeout(
        &err,
        &server.host(),
        &format!("fetching manifest {r} from"),
        Duration::from_secs(5),
    );
    assert!(
        matches!(&err, Error::Timeout { last: Some(last), .. } if last.contains("HTTP 503")),
        "{err}"
    );
    assert_eq!(server.count("GET", "/v2/a/b/manifests/v1"), 1);
}
