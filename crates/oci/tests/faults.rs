//! Retries through the fault-injecting proxy (`kibaship_testsupport::faultproxy`) in front of the real
//! registry: transient faults are retried and succeed; persistent ones end with an error naming the last
//! cause; 4xx other than 429 are not retried.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use kibaship_oci::{ClientConfig, Digest, Reference, RegistryClient, RetryPolicy};
use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use support::assert_retries_exhausted;
use support::skopeo::skopeo_raw;

const ATTEMPTS: u32 = 5;

fn client_through(proxy: &FaultProxy) -> RegistryClient {
    RegistryClient::new(ClientConfig {
        insecure_registries: vec![proxy.host()],
        use_docker_config: false,
        retry: RetryPolicy {
            max_attempts: ATTEMPTS,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(2),
            max_total: Duration::from_secs(30),
        },
        ..ClientConfig::default()
    })
    .unwrap()
}

struct Setup {
    reg: TestRegistry,
    repo_tag: String,
    expected: Digest,
}

fn setup() -> Setup {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let fixtures = push_fixture_images(&reg).unwrap();
    let fixture = &fixtures[0];
    let expected = Digest::sha256_of(&skopeo_raw(&fixture.reference, None));
    Setup {
        repo_tag: format!("{}:{}", fixture.repository, fixture.tag),
        expected,
        reg,
    }
}

fn via(proxy: &FaultProxy, repo_tag: &str) -> Reference {
    Reference::parse(&format!("{}/{repo_tag}", proxy.host())).unwrap()
}

#[tokio::test]
async fn transient_faults_are_retried_and_succeed() {
    let s = setup();
    let scripts: Vec<(&str, Vec<Fault>)> = vec![
        (
            "429 with Retry-After, 503, connection reset",
            vec![
                Fault::TooManyRequests {
                    retry_after_secs: 1,
                },
                Fault::ServiceUnavailable,
                Fault::ConnectionReset,
            ],
        ),
        ("truncated body", vec![Fault::TruncatedBody]),
        ("slow body", vec![Fault::SlowBody { delay_ms: 200 }]),
    ];
    for (name, script) in scripts {
        let faults = script.len();
        let proxy = FaultProxy::start(&s.reg.host(), script).unwrap();
        let client = client_through(&proxy);
        // GET: the body is read, so truncation and slowness matter.
        let manifest = client
            .fetch_manifest(&via(&proxy, &s.repo_tag))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(manifest.digest, s.expected, "{name}");
        let seen = proxy.requests_seen();
        let expected_requests = if name == "slow body" { 1 } else { faults + 1 };
        assert_eq!(
            seen, expected_requests,
            "{name}: each fault costs one attempt"
        );
    }
    // HEAD through transient faults too.
    let proxy = FaultProxy::start(
        &s.reg.host(),
        vec![Fault::ServiceUnavailable, Fault::ConnectionReset],
    )
    .unwrap();
    let resolved = client_through(&proxy)
        .resolve_digest(&via(&proxy, &s.repo_tag), None)
        .await
        .unwrap();
    assert_eq!(resolved.digest, s.expected);
    assert_eq!(proxy.requests_seen(), 3);
}

#[tokio::test]
async fn persistent_faults_end_with_the_last_cause() {
    let s = setup();
    let cases: Vec<(Fault, &str)> = vec![
        (Fault::ServiceUnavailable, "HTTP 503"),
        (
            Fault::TooManyRequests {
                retry_after_secs: 1,
            },
            "Retry-After: 1",
        ),
        (Fault::ConnectionReset, "connection"),
        (Fault::TruncatedBody, "reading the response body"),
    ];
    for (fault, cause) in cases {
        let label = format!("{fault:?}");
        let proxy = FaultProxy::start_persistent(&s.reg.host(), fault).unwrap();
        let err = client_through(&proxy)
            .fetch_manifest(&via(&proxy, &s.repo_tag))
            .await
            .unwrap_err();
        eprintln!("{label}: {err}");
        assert_retries_exhausted(&err, ATTEMPTS, &proxy.host(), &[cause], &label);
        assert_eq!(proxy.requests_seen(), ATTEMPTS as usize, "{label}");
    }
}

#[tokio::test]
async fn not_found_is_final() {
    let s = setup();
    let proxy = FaultProxy::start_persistent(&s.reg.host(), Fault::NotFound).unwrap();
    let r = via(&proxy, &s.repo_tag);
    let err = client_through(&proxy)
        .resolve_digest(&r, None)
        .await
        .unwrap_err();
    assert!(
        err.is_not_found() && err.to_string().contains(&r.to_string()),
        "{err}"
    );
    assert_eq!(proxy.requests_seen(), 1, "a 404 is not retried");
}

#[tokio::test]
async fn a_trickling_registry_ends_at_the_deadline_naming_host_and_operation() {
    let s = setup();
    // The real registry's answers, 3 bytes every 250 ms: a manifest would take minutes, and no pause comes
    // near the 30 s idle-read timeout, so only the deadline can end the wait.
    let proxy = FaultProxy::start_persistent(
        &s.reg.host(),
        Fault::Trickle {
            bytes: 3,
            every_ms: 250,
        },
    )
    .unwrap();
    let mut config = client_through(&proxy).config().clone();
    config.timeout = Some(Duration::from_secs(2));
    let client = RegistryClient::new(config).unwrap();
    let by_digest = via(&proxy, &s.repo_tag).with_digest(s.expected.clone());
    let err = client.fetch_manifest(&by_digest).await.unwrap_err();
    let text = err.to_string();
    eprintln!("{text}");
    match &err {
        kibaship_oci::Error::Timeout {
            registry,
            operation,
            after,
            ..
        } => {
            assert_eq!(registry, &proxy.host());
            assert_eq!(
                operation,
                &format!("fetching manifest {by_digest} from {}", proxy.host())
            );
            assert_eq!(*after, Duration::from_secs(2));
        }
        other => panic!("expected Timeout, got {other}"),
    }
    assert!(
        text.starts_with("timed out after 2s fetching manifest "),
        "{text}"
    );
    // The client's budget is spent: the next operation (a blob read, as of a `.sig` layer) fails at once
    // with the same kind of error, naming its own operation.
    let err = client
        .fetch_blob(&by_digest, &s.expected, 1 << 20)
        .await
        .unwrap_err();
    assert!(
        err.is_timeout() && err.to_string().contains("fetching blob "),
        "{err}"
    );
}
