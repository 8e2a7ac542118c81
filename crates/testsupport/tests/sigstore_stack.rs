//! The private Sigstore starts from the peers, describes itself, mints tokens, and stops on drop.
use kibaship_testsupport::process_alive;
use kibaship_testsupport::sigstore::TestSigstore;

#[test]
fn private_sigstore_starts_describes_itself_and_stops() {
    let stack = TestSigstore::start().expect("start the private Sigstore");
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stack.trusted_root_path()).unwrap()).unwrap();
    assert_eq!(root["certificateAuthorities"].as_array().unwrap().len(), 1);
    assert_eq!(root["tlogs"].as_array().unwrap().len(), 1);
    assert_eq!(root["ctlogs"].as_array().unwrap().len(), 1);
    assert_eq!(root["timestampAuthorities"].as_array().unwrap().len(), 1);
    assert_eq!(root["tlogs"][0]["baseUrl"], stack.rekor_url());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stack.signing_config_path()).unwrap()).unwrap();
    assert_eq!(config["caUrls"][0]["url"], stack.fulcio_url());
    assert_eq!(config["rekorTlogUrls"][0]["majorApiVersion"], 2);
    let trust: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stack.client_trust_config_path()).unwrap()).unwrap();
    assert!(trust["trustedRoot"]["certificateAuthorities"][0]["subject"]["commonName"].is_string());

    let token = stack.mint_token("someone@kibaship.test").unwrap();
    let claims = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["email"], "someone@kibaship.test");
    assert_eq!(claims["iss"], stack.issuer());
    assert_eq!(claims["aud"], "sigstore");

    let pids = stack.process_ids();
    assert_eq!(pids.len(), 5);
    assert!(pids.iter().all(|p| process_alive(*p)));
    drop(stack);
    for p in pids {
        assert!(!process_alive(p), "process {p} still runs after drop");
    }
}

#[test]
fn private_sigstore_with_rekor_v1_describes_it_and_stops() {
    use kibaship_testsupport::sigstore::SigstoreOptions;
    let stack = TestSigstore::start_with(SigstoreOptions {
        rekor_v1: true,
        ..Default::default()
    })
    .expect("start with Rekor v1");
    let v1 = stack.rekor_v1_url().expect("Rekor v1 URL").to_string();
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stack.trusted_root_path()).unwrap()).unwrap();
    let tlogs = root["tlogs"].as_array().unwrap();
    assert_eq!(tlogs.len(), 2);
    assert_eq!(tlogs[0]["baseUrl"], stack.rekor_url());
    assert_eq!(tlogs[1]["baseUrl"], v1.as_str());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stack.signing_config_path()).unwrap()).unwrap();
    let versions: Vec<(String, u64)> = config["rekorTlogUrls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["url"].as_str().unwrap().to_string(),
                s["majorApiVersion"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(versions.contains(&(v1.clone(), 1)), "{versions:?}");
    assert!(
        versions.contains(&(stack.rekor_url().to_string(), 2)),
        "{versions:?}"
    );

    // The trusted root's key ID for the v1 log is SHA-256 of the key Rekor serves, and the log answers.
    use base64::Engine as _;
    use sha2::Digest as _;
    let pem = std::fs::read_to_string(stack.rekor_v1_public_key_path().unwrap()).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let key_id = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&der));
    assert_eq!(tlogs[1]["logId"]["keyId"], key_id.as_str());
    let host = v1.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    use std::io::{Read as _, Write as _};
    write!(
        conn,
        "GET /api/v1/log HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let info: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(info["treeID"].is_string(), "{info}");
    assert!(
        info["signedTreeHead"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1 - "),
        "{info}"
    );

    // Rekor v1, Trillian's log server and signer, MariaDB: nine services in all, all stopped on drop.
    let pids = stack.process_ids();
    assert_eq!(pids.len(), 9);
    assert!(pids.iter().all(|p| process_alive(*p)));
    drop(stack);
    for p in pids {
        assert!(!process_alive(p), "process {p} still runs after drop");
    }
}
