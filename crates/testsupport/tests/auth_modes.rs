//! The TLS modes: basic auth and the token flow, checked with reqwest and skopeo.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

use kibaship_testsupport::fixtures;
use kibaship_testsupport::registry::{RegistryMode, TOKEN_SERVICE, TestRegistry};

fn client(reg: &TestRegistry) -> reqwest::Client {
    let pem = std::fs::read(reg.ca_pem_path().expect("TLS modes have a CA")).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn challenge_param(challenge: &str, name: &str) -> String {
    let start = challenge.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    let end = challenge[start..].find('"').unwrap() + start;
    challenge[start..end].to_string()
}

fn skopeo_inspect(reg: &TestRegistry, reference: &str, creds: &str) -> std::process::Output {
    let certs = tempfile::tempdir().unwrap();
    std::fs::copy(reg.ca_pem_path().unwrap(), certs.path().join("ca.crt")).unwrap();
    Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("--cert-dir={}", certs.path().display()))
        .arg(format!("--creds={creds}"))
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo must be installed (make deps)")
}

#[test]
fn basic_tls_wants_credentials_and_accepts_the_right_ones() {
    let reg = TestRegistry::start(RegistryMode::BasicTls).unwrap();
    assert!(reg.base_url().starts_with("https://127.0.0.1:"));
    let (user, password) = reg.credentials().unwrap();
    let http = client(&reg);
    let url = format!("{}/v2/", reg.base_url());
    block_on(async {
        let anonymous = http.get(&url).send().await.unwrap();
        assert_eq!(anonymous.status().as_u16(), 401);
        let challenge = anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(challenge.starts_with("Basic "), "{challenge}");
        let good = http
            .get(&url)
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .unwrap();
        assert_eq!(good.status().as_u16(), 200);
        let bad = http
            .get(&url)
            .basic_auth(&user, Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status().as_u16(), 401);
    });
    // Plain HTTP is refused on a TLS registry.
    let plain = block_on(reqwest::get(format!("http://{}/v2/", reg.host())));
    assert!(plain.map(|r| r.status().as_u16() != 200).unwrap_or(true));
}

#[test]
fn basic_tls_fixtures_are_readable_by_skopeo_with_credentials_only() {
    let reg = TestRegistry::start(RegistryMode::BasicTls).unwrap();
    let pushed = fixtures::push_fixture_images(&reg).unwrap();
    let (user, password) = reg.credentials().unwrap();
    for f in &pushed {
        let ok = skopeo_inspect(&reg, &f.reference, &format!("{user}:{password}"));
        assert!(
            ok.status.success(),
            "{}: {}",
            f.reference,
            String::from_utf8_lossy(&ok.stderr)
        );
    }
    let denied = skopeo_inspect(
        &reg,
        &pushed[0].reference,
        &format!("{user}:not-the-password"),
    );
    assert!(!denied.status.success());
}

#[test]
fn token_flow_end_to_end() {
    let reg = TestRegistry::start(RegistryMode::TokenTls).unwrap();
    let (user, password) = reg.credentials().unwrap();
    let pushed = fixtures::push_fixture_images(&reg).unwrap();
    let app = pushed
        .iter()
        .find(|f| f.repository == "fixtures/app")
        .unwrap();
    let http = client(&reg);
    let manifest_url = format!(
        "{}/v2/{}/manifests/{}",
        reg.base_url(),
        app.repository,
        app.tag
    );
    let accept = fixtures::OCI_MANIFEST;
    block_on(async {
        // 1. The registry challenges with a Bearer realm on our token server.
        let first = http
            .get(&manifest_url)
            .header("Accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(first.status().as_u16(), 401);
        let challenge = first.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        let realm = challenge_param(&challenge, "realm");
        assert_eq!(Some(realm.clone()), reg.token_realm());
        assert_eq!(challenge_param(&challenge, "service"), TOKEN_SERVICE);
        let scope = challenge_param(&challenge, "scope");
        assert_eq!(scope, "repository:fixtures/app:pull");

        // 2. Valid credentials get a token with exactly that scope.
        let token_response = http
            .get(token_url(&realm, TOKEN_SERVICE, &scope))
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .unwrap();
        assert_eq!(token_response.status().as_u16(), 200);
        let body: serde_json::Value = token_response.json().await.unwrap();
        for field in ["token", "access_token", "expires_in", "issued_at"] {
            assert!(
                !body[field].is_null(),
                "token response lacks {field}: {body}"
            );
        }
        let token = body["token"].as_str().unwrap().to_string();
        assert_eq!(body["access_token"], body["token"]);
        let claims = jwt_claims(&token);
        assert_eq!(
            claims["access"],
            serde_json::json!([{"type": "repository", "name": "fixtures/app", "actions": ["pull"]}])
        );
        assert_eq!(claims["sub"], user.as_str());

        // 3. /v2/ takes any valid token (here one without scope); the manifest needs the scoped one.
        let unscoped: serde_json::Value = http
            .get(format!("{realm}?service={TOKEN_SERVICE}"))
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let base = http
            .get(format!("{}/v2/", reg.base_url()))
            .bearer_auth(unscoped["token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(base.status().as_u16(), 200);
        let no_token = http
            .get(format!("{}/v2/", reg.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(no_token.status().as_u16(), 401);
        // The registry accepts the scoped token for that repository...
        let authed = http
            .get(&manifest_url)
            .header("Accept", accept)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(authed.status().as_u16(), 200);
        // ...but not for another one.
        let other = format!("{}/v2/fixtures/multiarch/manifests/v1", reg.base_url());
        let denied = http.get(&other).bearer_auth(&token).send().await.unwrap();
        assert_eq!(denied.status().as_u16(), 401);

        // 4. Wrong password: 401 from the token server, and the password is not echoed.
        let wrong = http
            .get(token_url(&realm, TOKEN_SERVICE, &scope))
            .basic_auth(&user, Some("wrong-password"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401);
        assert!(!wrong.text().await.unwrap().contains("wrong-password"));

        // 5. Anonymous callers get a token without access, which the registry refuses.
        let anonymous: serde_json::Value = http
            .get(token_url(&realm, TOKEN_SERVICE, &scope))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let anonymous_token = anonymous["token"].as_str().unwrap();
        assert_eq!(jwt_claims(anonymous_token)["access"], serde_json::json!([]));
        let refused = http
            .get(&manifest_url)
            .header("Accept", accept)
            .bearer_auth(anonymous_token)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 401);

        // 6. The OAuth2 password grant (containerd's POST /token) works too, and checks the password.
        let form = |pw: &str| {
            format!(
                "grant_type=password&service={TOKEN_SERVICE}&scope={}&client_id=kibaship-test&username={user}&password={pw}",
                scope.replace(':', "%3A").replace('/', "%2F")
            )
        };
        let posted = http
            .post(&realm)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(&password))
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status().as_u16(), 200);
        let posted: serde_json::Value = posted.json().await.unwrap();
        assert_eq!(
            jwt_claims(posted["access_token"].as_str().unwrap())["access"],
            claims["access"]
        );
        let refused_post = http
            .post(&realm)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form("nope"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused_post.status().as_u16(), 401);

        // 7. A token for another service is not issued.
        let wrong_service = http
            .get(token_url(&realm, "elsewhere", &scope))
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_service.status().as_u16(), 400);
    });
    // skopeo runs the same flow itself.
    let ok = skopeo_inspect(&reg, &app.reference, &format!("{user}:{password}"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(reg.tokens_issued().unwrap() >= 4);
}

fn token_url(realm: &str, service: &str, scope: &str) -> String {
    format!(
        "{realm}?service={service}&scope={}",
        scope.replace(',', "%2C")
    )
}

fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
