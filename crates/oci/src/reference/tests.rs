//! Table test of reference parsing and normalisation (expected forms follow docker/distribution's
//! `ParseNormalizedNamed` and go-digest).
use super::*;
use crate::digest::DigestError;

const HEX64: &str = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

enum Expect {
    Ok(&'static str),
    OkOwned(String),
    Err(fn(&ReferenceErrorKind) -> bool),
}

fn table() -> Vec<(String, Expect)> {
    use Expect::*;
    let d = format!("sha256:{HEX64}");
    let long_tag = "t".repeat(128);
    let too_long_tag = "t".repeat(129);
    let path_243 = "a".repeat(243); // example.com (11) + '/' + 243 = 255
    let path_244 = "a".repeat(244);
    vec![
        ("busybox".into(), Ok("docker.io/library/busybox")),
        ("busybox:1.36".into(), Ok("docker.io/library/busybox:1.36")),
        ("library/busybox".into(), Ok("docker.io/library/busybox")),
        ("docker.io/busybox".into(), Ok("docker.io/library/busybox")),
        (
            "index.docker.io/busybox".into(),
            Ok("docker.io/library/busybox"),
        ),
        (
            "index.docker.io/foo/bar:tag".into(),
            Ok("docker.io/foo/bar:tag"),
        ),
        ("foo/bar".into(), Ok("docker.io/foo/bar")),
        ("a/b/c".into(), Ok("docker.io/a/b/c")),
        (
            "docker.io/library/ubuntu:22.04".into(),
            Ok("docker.io/library/ubuntu:22.04"),
        ),
        ("localhost/foo".into(), Ok("localhost/foo")),
        (
            "localhost:5000/foo/bar:v1".into(),
            Ok("localhost:5000/foo/bar:v1"),
        ),
        (
            "127.0.0.1:5000/repo:tag".into(),
            Ok("127.0.0.1:5000/repo:tag"),
        ),
        (
            format!("ghcr.io/org/app@{d}"),
            OkOwned(format!("ghcr.io/org/app@{d}")),
        ),
        (
            format!("ghcr.io/org/app:v1@{d}"),
            OkOwned(format!("ghcr.io/org/app:v1@{d}")),
        ),
        (
            format!("busybox@{d}"),
            OkOwned(format!("docker.io/library/busybox@{d}")),
        ),
        ("Foo/bar".into(), Ok("Foo/bar")),
        ("UPPER.example.com/foo".into(), Ok("UPPER.example.com/foo")),
        (
            "registry.example.com/a/b/c/d:latest".into(),
            Ok("registry.example.com/a/b/c/d:latest"),
        ),
        ("[::1]:5000/foo".into(), Ok("[::1]:5000/foo")),
        ("[2001:db8::1]/foo:tag".into(), Ok("[2001:db8::1]/foo:tag")),
        ("example.com/foo__bar".into(), Ok("example.com/foo__bar")),
        ("example.com/foo---bar".into(), Ok("example.com/foo---bar")),
        (
            "example.com/foo.bar_baz-qux".into(),
            Ok("example.com/foo.bar_baz-qux"),
        ),
        (
            "foo:TAG_With.Mixed-Case".into(),
            Ok("docker.io/library/foo:TAG_With.Mixed-Case"),
        ),
        ("foo:_tag".into(), Ok("docker.io/library/foo:_tag")),
        (
            format!("foo:{long_tag}"),
            OkOwned(format!("docker.io/library/foo:{long_tag}")),
        ),
        (
            format!("example.com/{path_243}"),
            OkOwned(format!("example.com/{path_243}")),
        ),
        (
            format!("quay.io/coreos/etcd@sha512:{}", "b".repeat(128)),
            OkOwned(format!("quay.io/coreos/etcd@sha512:{}", "b".repeat(128))),
        ),
        (
            "my-registry.local:443/team/app:1.0.0".into(),
            Ok("my-registry.local:443/team/app:1.0.0"),
        ),
        (
            "sub.domain-x.example.com:8080/x".into(),
            Ok("sub.domain-x.example.com:8080/x"),
        ),
        // invalid
        ("".into(), Err(|k| matches!(k, ReferenceErrorKind::Empty))),
        (
            HEX64.into(),
            Err(|k| matches!(k, ReferenceErrorKind::HexIdentifier)),
        ),
        (
            "Busybox".into(),
            Err(|k| matches!(k, ReferenceErrorKind::UppercaseRepository(_))),
        ),
        (
            "foo/Bar".into(),
            Err(|k| matches!(k, ReferenceErrorKind::UppercaseRepository(_))),
        ),
        (
            "example.com/Foo:tag".into(),
            Err(|k| matches!(k, ReferenceErrorKind::UppercaseRepository(_))),
        ),
        (
            "foo_/bar".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidPath(_))),
        ),
        (
            "foo//bar".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidPath(_))),
        ),
        (
            "example.com/foo/".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidPath(_))),
        ),
        (
            "-foo".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidPath(_))),
        ),
        (
            "foo___bar".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidPath(_))),
        ),
        (
            "foo bar".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidPath(_))),
        ),
        (
            "foo:".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidTag(_))),
        ),
        (
            "foo:-tag".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidTag(_))),
        ),
        (
            "foo:.tag".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidTag(_))),
        ),
        (
            "foo:tag:more".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidTag(_))),
        ),
        (
            format!("foo:{too_long_tag}"),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidTag(_))),
        ),
        (
            format!("example.com/{path_244}"),
            Err(|k| matches!(k, ReferenceErrorKind::NameTooLong(256))),
        ),
        (
            "foo@sha256:abc".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidDigest(DigestError::Format(_)))),
        ),
        (
            format!("foo@sha256:{}", HEX64.to_uppercase()),
            Err(|k| {
                matches!(
                    k,
                    ReferenceErrorKind::InvalidDigest(DigestError::InvalidHex { .. })
                )
            }),
        ),
        (
            format!("foo@md5:{}", "a".repeat(32)),
            Err(|k| {
                matches!(
                    k,
                    ReferenceErrorKind::InvalidDigest(DigestError::UnsupportedAlgorithm { .. })
                )
            }),
        ),
        (
            "foo@".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidDigest(DigestError::Format(_)))),
        ),
        (
            "foo:tag@".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidDigest(DigestError::Format(_)))),
        ),
        (
            format!("foo@{d}@{d}"),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidDigest(DigestError::Format(_)))),
        ),
        (
            "example.com:port/foo".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidDomain(_))),
        ),
        (
            "example.com:/foo".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidDomain(_))),
        ),
        (
            "-example.com/foo".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidDomain(_))),
        ),
        // distribution would accept this as a domain-less path; without a registry it is unusable, so we reject.
        (
            "exa_mple.com/foo".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidDomain(_))),
        ),
        (
            "[::1/foo".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidDomain(_))),
        ),
        (
            "[zz]:5000/foo".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidDomain(_))),
        ),
        // distribution accepts any digits as a port; no request can reach one above 65535.
        (
            "127.0.0.1:65536/foo".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidPort(_))),
        ),
        (
            "localhost:99999999999999999999999/foo:v1".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidPort(_))),
        ),
        (
            "[::1]:70000/foo".into(),
            Err(|k| matches!(k, ReferenceErrorKind::InvalidPort(_))),
        ),
        ("127.0.0.1:65535/foo".into(), Ok("127.0.0.1:65535/foo")),
    ]
}

#[test]
fn a_port_above_65535_is_refused_naming_the_host() {
    let err = Reference::parse("registry.example:70000/app:v1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid image reference \"registry.example:70000/app:v1\": invalid registry port in \"registry.example:70000\": a port is a number from 0 to 65535"
    );
}

#[test]
fn reference_table() {
    let table = table();
    assert!(
        table.len() >= 40,
        "the table must hold at least 40 references"
    );
    let mut failures = Vec::new();
    for (input, expect) in &table {
        let got = Reference::parse(input);
        match (expect, &got) {
            (Expect::Ok(want), Result::Ok(r)) if r.to_string() == *want => {}
            (Expect::OkOwned(want), Result::Ok(r)) if r.to_string() == *want => {}
            (Expect::Err(pred), Result::Err(e)) if pred(&e.kind) && e.input == *input => {}
            _ => failures.push(format!("{input:?}: got {got:?}")),
        }
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

#[test]
fn docker_hub_api_host_and_ggcr_name() {
    let r = Reference::parse("busybox:1.36").unwrap();
    assert_eq!(r.registry(), "docker.io");
    assert_eq!(r.api_host(), "registry-1.docker.io");
    assert_eq!(r.ggcr_repository(), "index.docker.io/library/busybox");
    assert_eq!(r.manifest_reference(), "1.36");
    let local = Reference::parse("127.0.0.1:5000/a/b").unwrap();
    assert_eq!(local.api_host(), "127.0.0.1:5000");
    assert_eq!(local.repository(), "a/b");
    assert_eq!(local.manifest_reference(), "latest");
}

#[test]
fn digest_wins_over_tag_for_manifest_lookups() {
    let r = Reference::parse(&format!("ghcr.io/o/a:v1@sha256:{HEX64}")).unwrap();
    assert_eq!(r.tag(), Some("v1"));
    assert_eq!(r.manifest_reference(), format!("sha256:{HEX64}"));
    let pinned = r
        .with_tag("v2")
        .unwrap()
        .with_digest(r.digest().unwrap().clone());
    assert_eq!(pinned.to_string(), format!("ghcr.io/o/a@sha256:{HEX64}"));
    assert!(r.with_tag("-bad").is_err());
}

#[test]
fn errors_name_the_input_and_the_cause() {
    let e = Reference::parse("foo/Bar:1").unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("\"foo/Bar:1\"") && text.contains("lowercase"),
        "{text}"
    );
}

proptest::proptest! {
    /// Any input parses or fails cleanly, and a parsed reference's normalised form parses to itself.
    #[test]
    fn parsing_never_panics_and_normalisation_is_stable(input in "[a-zA-Z0-9:/@._\\-\\[\\] ]{0,80}") {
        if let Ok(r) = Reference::parse(&input) {
            let again = Reference::parse(&r.to_string()).unwrap();
            proptest::prop_assert_eq!(again, r);
        }
    }

    #[test]
    fn challenge_and_link_parsing_never_panic(input in "\\PC{0,120}") {
        let _ = crate::challenge::parse_challenge(&input);
        let _ = crate::challenge::next_link(&input);
        let _ = crate::digest::Digest::parse(&input);
    }
}
