//! cosign's `COSIGN_REPOSITORY`: `kibaverify sign` writes and `kibaverify verify` reads signatures in that
//! repository, in both layouts, as cosign v3.1.3 does (checked both ways with the real cosign on the real
//! registry harness, with and without the referrers API).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use kibaship_testsupport::registry::RegistryMode;

mod support;
use support::{Tools, assert_code, referrers_route, registry_with_fixtures, run};

const PASSWORD: &str = "cosign-repository-pw";

/// `c` with COSIGN_REPOSITORY set to `store`, or left removed.
fn in_store(mut c: Command, store: Option<&str>) -> Command {
    if let Some(store) = store {
        c.env("COSIGN_REPOSITORY", store);
    }
    c
}

fn tags(tools: &Tools<'_>, repo: &str) -> String {
    run(&mut tools.crane(&["ls", "--insecure", repo])).stdout
}

fn round_trip(mode: RegistryMode) {
    let reg = registry_with_fixtures(mode);
    let tmp = tempfile::tempdir().unwrap();
    let tools = Tools::new(tmp.path(), &reg, Some(PASSWORD));
    let host = reg.host();
    let store = format!("{host}/signatures/store");
    let kiba = |env: Option<&str>, args: &[&str]| run(&mut in_store(tools.kibaverify(args), env));
    tools.generate_our_key_pair(&mut String::new());

    for (image, layout) in [("app", "legacy"), ("config-only", "bundle")] {
        let image = tools.fixture(image);
        // We sign into the store.
        let r = kiba(
            Some(&store),
            &["sign", &image, "--key", "ours.key", "--layout", layout],
        );
        assert_code(&r, 0, "kibaverify sign with COSIGN_REPOSITORY");
        assert!(r.stderr.contains(&store), "{layout}: {}", r.stderr);
        if layout == "bundle" {
            let via = format!("found through {}", referrers_route(mode));
            assert!(r.stderr.contains(&via), "{}", r.stderr);
        }
        let verify = |env: Option<&str>| {
            run(&mut in_store(
                tools.verify_with_key("verify", &image, "ours.pub", &[]),
                env,
            ))
        };
        let r = verify(Some(&store));
        assert_code(&r, 0, "kibaverify verify with COSIGN_REPOSITORY");
        assert!(r.stdout.contains(&store), "{layout}: {}", r.stdout);
        // Nothing was written beside the image.
        let r = verify(None);
        assert_code(&r, 1, "kibaverify verify without COSIGN_REPOSITORY");
        assert!(r.stderr.contains("no signatures found"), "{}", r.stderr);
        let cosign_verify = |env: Option<&str>| {
            run(&mut in_store(
                tools.cosign_verify_with_key("ours.pub", &image),
                env,
            ))
        };
        assert_code(
            &cosign_verify(Some(&store)),
            0,
            &format!("cosign verify of our {layout} signature in the store"),
        );
        assert_ne!(
            cosign_verify(None).code,
            0,
            "cosign found a signature beside the image"
        );
    }
    let store_tags = tags(&tools, &store);
    assert!(store_tags.contains(".sig"), "{store_tags}");
    // Without a referrers API, the bundle's fallback index (tag `sha256-<hex>`) is in the store too.
    assert_eq!(
        store_tags
            .lines()
            .any(|t| t.starts_with("sha256-") && !t.contains('.')),
        mode == RegistryMode::Plain,
        "{store_tags}"
    );
    assert!(
        !tags(&tools, &format!("{host}/fixtures/app")).contains(".sig"),
        "a .sig tag was written beside the image"
    );

    // cosign signs into the store (legacy and bundle layouts) -> we verify there.
    let r = run(&mut tools.cosign(&["generate-key-pair"]));
    assert_code(&r, 0, "cosign generate-key-pair");
    for (image, legacy) in [("docker-app", true), ("multiarch", false)] {
        let image = tools.fixture(image);
        let r = run(&mut in_store(
            tools.cosign_sign_with_key("cosign.key", legacy, &image),
            Some(&store),
        ));
        assert_code(&r, 0, "cosign sign with COSIGN_REPOSITORY");
        let verify = |env: Option<&str>| {
            run(&mut in_store(
                tools.verify_with_key("verify", &image, "cosign.pub", &[]),
                env,
            ))
        };
        assert_code(
            &verify(Some(&store)),
            0,
            &format!("kibaverify verify of cosign's signature (legacy: {legacy}) in the store"),
        );
        assert_code(&verify(None), 1, "kibaverify verify beside the image");
    }

    // A tag or digest is not a repository.
    let r = kiba(
        Some(&format!("{store}:latest")),
        &["verify", "x/y:v1", "--key", "ours.pub"],
    );
    assert_code(&r, 2, "COSIGN_REPOSITORY with a tag");
    assert!(r.stderr.contains("COSIGN_REPOSITORY"), "{}", r.stderr);
}

#[test]
fn cosign_repository_moves_signatures_with_the_referrers_api() {
    round_trip(RegistryMode::Referrers);
}

#[test]
fn cosign_repository_moves_signatures_with_the_fallback_tag() {
    round_trip(RegistryMode::Plain);
}
