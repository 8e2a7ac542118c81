//! The plan parser, secret checks and build key on real `railpack prepare` plans (railpack's core snapshots,
//! copied to testdata/railpack; see testdata/SOURCES.md).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use kibaship_step::key::{BuildKeyInput, build_key};
use kibaship_step::plan::RailpackPlan;
use kibaship_step::secrets::{SecretName, parse_secret_names};
use sha2::{Digest, Sha256};

fn plans() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/railpack");
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .expect("testdata/railpack")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".snap.json"))
        .map(|p| {
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                fs::read(&p).expect("read"),
            )
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 7,
        "corpus plans missing from testdata/railpack"
    );
    out
}

#[test]
fn every_corpus_plan_parses_with_its_digest_and_secrets() {
    let mut keys = BTreeSet::new();
    for (name, bytes) in plans() {
        let plan = RailpackPlan::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            plan.digest(),
            format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
            "{name}"
        );
        assert!(!plan.step_names().is_empty(), "{name}");
        let declared: Vec<SecretName> =
            parse_secret_names(plan.declared_secrets()).unwrap_or_else(|e| panic!("{name}: {e}"));
        plan.check_build_secrets(&declared)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if name == "secrets_1.snap.json" {
            assert_eq!(
                plan.declared_secrets(),
                ["MY_SECRET", "MY_OTHER_SECRET", "HELLO_WORLD"]
            );
            let partial = parse_secret_names(&["MY_SECRET"]).expect("valid");
            let err = plan
                .check_build_secrets(&partial)
                .expect_err("missing secrets")
                .to_string();
            assert!(err.contains("MY_OTHER_SECRET"), "{err}");
        } else {
            assert!(plan.declared_secrets().is_empty(), "{name}");
            let extra = parse_secret_names(&["NPM_TOKEN"]).expect("valid");
            assert!(
                plan.check_build_secrets(&extra).is_err(),
                "{name}: undeclared secret accepted"
            );
        }
        let key = build_key(&BuildKeyInput {
            commit: "960ef4fb6190de6aa8b394bf2f0d552ee67675c3",
            plan_digest: plan.digest(),
            secrets_hash: "",
            platforms: vec!["linux/amd64".into()],
            railpack_version: "v0.15.0",
            context_path: ".",
            build_args: &[],
        });
        assert!(
            keys.insert(key.as_str().to_string()),
            "{name}: key collides with another plan's"
        );
    }
}

#[test]
fn a_reformatted_plan_is_a_different_plan() {
    // The key covers plan.json's bytes: the frontend reads those bytes, so even whitespace counts.
    let (_, bytes) = plans()
        .into_iter()
        .find(|(n, _)| n == "node-npm_1.snap.json")
        .expect("node-npm plan");
    let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let compact = serde_json::to_vec(&value).expect("serialise");
    let a = RailpackPlan::parse(&bytes).expect("plan");
    let b = RailpackPlan::parse(&compact).expect("plan");
    assert_ne!(a.digest(), b.digest());
    assert_eq!(a.step_names(), b.step_names());
}
