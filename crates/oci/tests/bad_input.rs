//! Untrusted input to the pure parsers (image references, digests, platforms, `WWW-Authenticate`
//! challenges, docker `config.json`, manifests) never panics, and a rejection names what was wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use kibaship_oci::challenge::{ChallengeError, parse_challenge};
use kibaship_oci::credentials::{CredentialError, DockerConfig};
use kibaship_oci::{Digest, ImageIndex, ImageManifest, Platform, Reference};
use proptest::prelude::*;

// The secrets are random-looking 24-character tokens that no error message can contain by chance (a short one such
// as "user:pass" is also part of the message "`auth` does not decode to user:password"). The first `auth` is
// base64 of `Zq7hK3pWx9Lm2Rt8Vb4Nc6Yd:Hs5Jf1Qa9Ek3Tu7Wo2Ip4Gz8`.
const CONFIG: &str = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"WnE3aEszcFd4OUxtMlJ0OFZiNE5jNllkOkhzNUpmMVFhOUVrM1R1N1dvMklwNEd6OA=="},"localhost:5000":{"username":"Rk4Lp8Qs2Vw6Xy1Za3Bc5De7","password":"Xc3Vn8Bm1Kl6Pj4Rh9Ty2Ue5"}},"credHelpers":{"ghcr.io":"gh"}}"#;
/// What no message may hold: the passwords, the usernames they pair with, and the encoded `auth`.
const SECRETS: [&str; 5] = [
    "Hs5Jf1Qa9Ek3Tu7Wo2Ip4Gz8",
    "Xc3Vn8Bm1Kl6Pj4Rh9Ty2Ue5",
    "Zq7hK3pWx9Lm2Rt8Vb4Nc6Yd",
    "Rk4Lp8Qs2Vw6Xy1Za3Bc5De7",
    "WnE3aEszcFd4OUxtMlJ0OFZiNE5jNllkOkhzNUpmMVFhOUVrM1R1N1dvMklwNEd6OA",
];

/// The first secret that `text` holds a 10-character piece of (a mutation may have altered the secret around it).
fn leaked_secret(text: &str) -> Option<&'static str> {
    SECRETS
        .into_iter()
        .find(|secret| (0..=secret.len() - 10).any(|at| text.contains(&secret[at..at + 10])))
}
const CHALLENGE: &str = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;

/// A real input with one byte replaced, one byte removed or cut short.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (0..len, any::<u8>(), 0..3u8).prop_map(move |(at, byte, how)| {
        let mut bytes = base.as_bytes().to_vec();
        match how {
            0 => bytes[at] = byte,
            1 => {
                bytes.remove(at);
            }
            _ => bytes.truncate(at),
        }
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn references_are_parsed_or_refused_by_name(input in "\\PC{0,80}") {
        if let Err(e) = Reference::parse(&input) {
            let text = e.to_string();
            prop_assert!(text.starts_with("invalid image reference "), "{text}");
            prop_assert!(text.contains(&format!("{input:?}")), "{text} does not quote the input");
        }
    }

    #[test]
    fn digests_are_parsed_or_refused_quoting_the_input(input in "(sha256|sha512|md5|[a-z+._-]{0,6}):[0-9a-fA-F]{0,130}|\\PC{0,40}") {
        if let Err(e) = Digest::parse(&input) {
            let text = e.to_string();
            prop_assert!(text.contains("digest"), "{text}");
            prop_assert!(text.contains(&format!("{input:?}")), "{text} does not quote the input");
        }
    }

    #[test]
    fn platforms_are_parsed_or_refused_quoting_the_input(input in "[a-z0-9/._ -]{0,30}") {
        if let Err(e) = input.parse::<Platform>() {
            prop_assert!(e.to_string().starts_with(&format!("invalid platform {input:?}")), "{e}");
        }
    }

    #[test]
    fn challenges_are_parsed_or_refused_with_a_reason(header in "\\PC{0,120}") {
        match parse_challenge(&header) {
            Ok(_) => {}
            Err(ChallengeError::Malformed(detail)) => prop_assert!(!detail.is_empty()),
            Err(ChallengeError::UnsupportedScheme(scheme)) => {
                prop_assert!(header.trim().to_ascii_lowercase().starts_with(&scheme.to_ascii_lowercase()), "{scheme:?} is not from {header:?}");
            }
            Err(ChallengeError::MissingRealm) => prop_assert!(header.to_ascii_lowercase().contains("bearer")),
        }
    }

    #[test]
    fn mutated_challenges_never_panic(bytes in mutated(CHALLENGE)) {
        let header = String::from_utf8_lossy(&bytes);
        if let Err(e) = parse_challenge(&header) {
            let text = e.to_string();
            prop_assert!(
                text.starts_with("malformed WWW-Authenticate header")
                    || text.starts_with("unsupported authentication scheme")
                    || text == "Bearer challenge without a realm",
                "{text}"
            );
        }
    }

    #[test]
    fn docker_configs_are_parsed_or_refused_naming_the_file(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Err(e) = DockerConfig::from_json(&bytes) {
            prop_assert!(matches!(e, CredentialError::Config { .. }), "{e:?}");
            prop_assert!(e.to_string().starts_with("docker config <config.json>: "), "{e}");
        }
    }

    #[test]
    fn mutated_docker_configs_never_leak_the_secret(bytes in mutated(CONFIG)) {
        let config = match DockerConfig::from_json(&bytes) {
            Ok(config) => config,
            Err(e) => {
                prop_assert!(leaked_secret(&e.to_string()).is_none(), "secret {:?} in {e}", leaked_secret(&e.to_string()));
                return Ok(());
            }
        };
        for registry in ["docker.io", "localhost:5000", "ghcr.io"] {
            if let Err(e) = config.source_for(registry) {
                let text = e.to_string();
                prop_assert!(text.starts_with("docker config entry "), "{text}");
                prop_assert!(leaked_secret(&text).is_none(), "secret {:?} in {text}", leaked_secret(&text));
                prop_assert!(leaked_secret(&format!("{e:?}")).is_none(), "secret in {e:?}");
            }
        }
    }

    #[test]
    fn manifests_and_indexes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let manifest = serde_json::from_slice::<ImageManifest>(&bytes);
        let index = serde_json::from_slice::<ImageIndex>(&bytes);
        // Random bytes are never a manifest (they need schemaVersion, config and layers).
        prop_assert!(manifest.is_err());
        if let Ok(index) = index {
            let _ = index.platforms();
        }
    }
}

#[test]
fn a_bad_auth_entry_names_its_key_not_its_value() {
    let config =
        DockerConfig::from_json(br#"{"auths":{"registry.example":{"auth":"%%%secret%%%"}}}"#)
            .unwrap();
    let err = config
        .source_for("registry.example")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("docker config entry \"registry.example\""),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn a_secret_of_the_wrong_json_type_is_not_quoted() {
    for json in [
        r#"{"auths":"Hs5Jf1Qa9Ek3Tu7Wo2Ip4Gz8"}"#,
        r#"{"auths":{"r.example":"Hs5Jf1Qa9Ek3Tu7Wo2Ip4Gz8"}}"#,
        r#"{"auths":{"r.example":{"auth":["Hs5Jf1Qa9Ek3Tu7Wo2Ip4Gz8"]}}}"#,
    ] {
        let err = DockerConfig::from_json(json.as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{json} should be refused"))
            .to_string();
        assert!(err.starts_with("docker config <config.json>: "), "{err}");
        assert!(err.contains("line 1, column"), "{err}");
        assert_eq!(leaked_secret(&err), None, "{err}");
    }
}
