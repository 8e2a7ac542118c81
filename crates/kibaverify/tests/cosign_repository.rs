//! cosign's `COSIGN_REPOSITORY`: `kibaverify sign` writes and `kibaverify verify` reads signatures in that
//! repository, in both layouts, as cosign v3.1.3 does (checked both ways with the real cosign on the real
//! registry harness, with and without the referrers API).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};

mod support;
use support::{BIN, assert_code, run};

const PASSWORD: &str = "cosign-repository-pw";

/// A command with COSIGN_REPOSITORY set to `store`, or removed.
fn command(bin: &Path, dir: &Path, store: Option<&str>, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env("COSIGN_PASSWORD", PASSWORD)
        .env("HOME", dir)
        .env("DOCKER_CONFIG", dir.join("no-docker-config"))
        .env_remove("COSIGN_REPOSITORY")
        .args(args);
    if let Some(store) = store {
        c.env("COSIGN_REPOSITORY", store);
    }
    c
}

fn tags(dir: &Path, repo: &str) -> String {
    let crane = peer_binary("crane").expect("the crane peer is not built: run `make peers`");
    let r = run(&mut command(&crane, dir, None, &["ls", "--insecure", repo]));
    r.stdout
}

fn round_trip(mode: RegistryMode) {
    let reg = TestRegistry::start(mode).unwrap();
    push_fixture_images(&reg).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let host = reg.host();
    let store = format!("{host}/signatures/store");
    let cosign = peer_binary("cosign").expect("the cosign peer is not built: run `make peers`");
    let ours = Path::new(BIN);
    let kiba = |env: Option<&str>, args: &[&str]| {
        let mut c = command(ours, dir, env, args);
        c.args(["--insecure-registry", &host]);
        run(&mut c)
    };
    let r = run(&mut command(
        ours,
        dir,
        None,
        &["generate-key-pair", "--output-key-prefix", "ours"],
    ));
    assert_code(&r, 0, "generate-key-pair");

    for (image, layout) in [("app", "legacy"), ("config-only", "bundle")] {
        let image = format!("{host}/fixtures/{image}:v1");
        // We sign into the store.
        let r = kiba(
            Some(&store),
            &["sign", &image, "--key", "ours.key", "--layout", layout],
        );
        assert_code(&r, 0, "kibaverify sign with COSIGN_REPOSITORY");
        assert!(r.stderr.contains(&store), "{layout}: {}", r.stderr);
        if layout == "bundle" {
            let via = if mode == RegistryMode::Referrers {
                "found through the referrers API"
            } else {
                "found through the referrers fallback tag"
            };
            assert!(r.stderr.contains(via), "{}", r.stderr);
        }
        let verify = |env: Option<&str>| {
            kiba(
                env,
                &[
                    "verify",
                    &image,
                    "--key",
                    "ours.pub",
                    "--insecure-ignore-tlog",
                ],
            )
        };
        let r = verify(Some(&store));
        assert_code(&r, 0, "kibaverify verify with COSIGN_REPOSITORY");
        assert!(r.stdout.contains(&store), "{layout}: {}", r.stdout);
        // Nothing was written beside the image.
        let r = verify(None);
        assert_code(&r, 1, "kibaverify verify without COSIGN_REPOSITORY");
        assert!(r.stderr.contains("no signatures found"), "{}", r.stderr);
        let cosign_verify = |env: Option<&str>| {
            run(&mut command(
                &cosign,
                dir,
                env,
                &[
                    "verify",
                    "--key",
                    "ours.pub",
                    "--insecure-ignore-tlog",
                    "--allow-http-registry",
                    &image,
                ],
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
    let store_tags = tags(dir, &store);
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
        !tags(dir, &format!("{host}/fixtures/app")).contains(".sig"),
        "a .sig tag was written beside the image"
    );

    // cosign signs into the store (legacy and bundle layouts) -> we verify there.
    let r = run(&mut command(&cosign, dir, None, &["generate-key-pair"]));
    assert_code(&r, 0, "cosign generate-key-pair");
    for (image, legacy) in [("docker-app", true), ("multiarch", false)] {
        let image = format!("{host}/fixtures/{image}:v1");
        let mut args = vec![
            "sign",
            "--key",
            "cosign.key",
            "--tlog-upload=false",
            "--use-signing-config=false",
            "--allow-http-registry",
            "--yes",
        ];
        if legacy {
            args.push("--new-bundle-format=false");
        }
        args.push(&image);
        let r = run(&mut command(&cosign, dir, Some(&store), &args));
        assert_code(&r, 0, "cosign sign with COSIGN_REPOSITORY");
        let verify = |env: Option<&str>| {
            kiba(
                env,
                &[
                    "verify",
                    &image,
                    "--key",
                    "cosign.pub",
                    "--insecure-ignore-tlog",
                ],
            )
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
