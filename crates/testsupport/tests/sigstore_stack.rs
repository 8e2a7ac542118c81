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
