//! The fault proxy applies each scripted fault, counts requests, and passes everything else through,
//! including blob uploads (skopeo pushes through it).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
use kibaship_testsupport::fixtures::{self, OCI_MANIFEST};
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

fn manifest_url(host: &str) -> String {
    format!("http://{host}/v2/fixtures/app/manifests/v1")
}

async fn get(
    client: &reqwest::Client,
    url: &str,
) -> reqwest::Result<(u16, reqwest::header::HeaderMap, Vec<u8>)> {
    let response = client
        .get(url)
        .header("Accept", OCI_MANIFEST)
        .send()
        .await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    Ok((status, headers, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_faults_apply_in_order_then_requests_pass() {
    let (reg, proxy) = tokio::task::spawn_blocking(|| {
        let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
        fixtures::push_fixture_images(&reg).unwrap();
        let proxy = FaultProxy::start(
            &reg.host(),
            vec![
                Fault::TooManyRequests {
                    retry_after_secs: 2,
                },
                Fault::ServiceUnavailable,
                Fault::ConnectionReset,
                Fault::SlowBody { delay_ms: 50 },
                Fault::TruncatedBody,
                Fault::NotFound,
            ],
        )
        .unwrap();
        (reg, proxy)
    })
    .await
    .unwrap();
    // A fresh connection per request, so a reset or truncation cannot leak into the next one.
    let client = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let (status, _, direct) = get(&client(), &manifest_url(&reg.host())).await.unwrap();
    assert_eq!(status, 200);
    let url = manifest_url(&proxy.host());

    let (status, headers, _) = get(&client(), &url).await.unwrap();
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "2");

    let (status, _, _) = get(&client(), &url).await.unwrap();
    assert_eq!(status, 503);

    let reset = get(&client(), &url).await;
    assert!(
        reset.is_err(),
        "a reset connection must fail the request, got {reset:?}"
    );

    let (status, _, slow) = get(&client(), &url).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(slow, direct, "a slow body still arrives whole");

    let truncated = get(&client(), &url).await;
    assert!(
        truncated.is_err(),
        "a truncated body must fail the read, got {truncated:?}"
    );

    let (status, _, body) = get(&client(), &url).await.unwrap();
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("NAME_UNKNOWN"));

    let (status, _, passed) = get(&client(), &url).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(passed, direct);
    assert_eq!(proxy.requests_seen(), 7);
    tokio::task::spawn_blocking(move || drop((proxy, reg)))
        .await
        .unwrap();
}

#[test]
fn persistent_fault_hits_every_request() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let proxy = FaultProxy::start_persistent(&reg.host(), Fault::ServiceUnavailable).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        for _ in 0..3 {
            let r = client
                .get(format!("http://{}/v2/", proxy.host()))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 503);
        }
    });
    assert_eq!(proxy.requests_seen(), 3);
}

#[test]
fn uploads_pass_through_the_proxy() {
    let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
    let proxy = FaultProxy::start(&reg.host(), vec![]).unwrap();
    let layout = fixtures::fixture_layout().unwrap();
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multiarch", layout.display()))
        .arg(format!("docker://{}/through/proxy:v1", proxy.host()))
        .output()
        .expect("skopeo must be installed (make deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        proxy.requests_seen() > 5,
        "skopeo's requests went through the proxy"
    );
    // And the registry itself holds the image.
    let direct = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/through/proxy:v1", reg.host()))
        .output()
        .unwrap();
    assert!(
        direct.status.success(),
        "{}",
        String::from_utf8_lossy(&direct.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_on_an_address_applies_only_to_the_paths_it_names() {
    let (reg, proxy) = tokio::task::spawn_blocking(|| {
        let reg = TestRegistry::start(RegistryMode::Plain).unwrap();
        fixtures::push_fixture_images(&reg).unwrap();
        let proxy = FaultProxy::start_on(
            std::net::Ipv4Addr::LOCALHOST.into(),
            &reg.host(),
            "/manifests/",
            vec![Fault::ServiceUnavailable],
        )
        .unwrap();
        (reg, proxy)
    })
    .await
    .unwrap();
    assert!(proxy.host().starts_with("127.0.0.1:"), "{}", proxy.host());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    // A request the script does not name passes and leaves the script as it is.
    let (status, _, _) = get(&client, &format!("http://{}/v2/", proxy.host()))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(proxy.script_left(), 1);
    // The first manifest request gets the fault, the next one the registry's answer.
    let (status, _, _) = get(&client, &manifest_url(&proxy.host())).await.unwrap();
    assert_eq!(status, 503);
    assert_eq!(proxy.script_left(), 0);
    let (status, _, body) = get(&client, &manifest_url(&proxy.host())).await.unwrap();
    assert_eq!(status, 200);
    let (_, _, direct) = get(&client, &manifest_url(&reg.host())).await.unwrap();
    assert_eq!(body, direct);
    assert_eq!(proxy.requests_seen(), 3);
    drop(proxy);
    tokio::task::spawn_blocking(move || drop(reg))
        .await
        .unwrap();
}
