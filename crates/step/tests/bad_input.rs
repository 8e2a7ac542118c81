//! Untrusted railpack plan/info documents, buildctl metadata and task parameters never panic; a
//! rejection names the document (or parameter) and what was wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use kibaship_step::buildctl::{BuildMetadata, MetadataError, parse_build_arg, parse_platforms};
use kibaship_step::image::ImageName;
use kibaship_step::plan::{PlanError, RailpackInfo, RailpackPlan};
use kibaship_step::secrets::SecretName;
use proptest::prelude::*;

const PLAN: &str = include_str!("../../../testdata/railpack/secrets_1.snap.json");
const INFO: &str = r#"{"railpackVersion":"0.15.0","metadata":{"providers":"shell"},"detectedProviders":["shell"],"logs":[{"Level":"info","Msg":"Detected Shell"}],"success":true}"#;
const METADATA: &str = r#"{"containerimage.digest":"sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e","image.name":"registry.example:5000/team/app:v1"}"#;

/// One byte replaced, one removed, or cut short.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    (0..base.len(), any::<u8>(), 0..3u8).prop_map(move |(at, byte, how)| {
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

fn image() -> ImageName {
    ImageName::new("registry.example:5000", "team/app", "v1").unwrap()
}

fn plan_error_names(e: &PlanError, what: &str) -> Result<(), TestCaseError> {
    let text = e.to_string();
    match e {
        PlanError::TooLarge { .. } | PlanError::Json { .. } | PlanError::Shape { .. } => {
            prop_assert!(text.starts_with(what), "{text}")
        }
        PlanError::NotSuccessful { .. } => prop_assert!(text.contains(what), "{text}"),
        other => prop_assert!(false, "unexpected error kind {other:?}"),
    }
    Ok(())
}

#[test]
fn the_unmutated_inputs_are_accepted() {
    RailpackPlan::parse(PLAN.as_bytes()).unwrap();
    RailpackInfo::parse(INFO.as_bytes()).unwrap();
    BuildMetadata::parse(METADATA.as_bytes(), &image()).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn mutated_plans_name_plan_json(bytes in mutated(PLAN)) {
        if let Err(e) = RailpackPlan::parse(&bytes) {
            plan_error_names(&e, "plan.json")?;
        }
    }

    #[test]
    fn mutated_infos_name_info_json(bytes in mutated(INFO)) {
        if let Err(e) = RailpackInfo::parse(&bytes) {
            plan_error_names(&e, "info.json")?;
        }
    }

    #[test]
    fn arbitrary_bytes_are_neither_plan_nor_info(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        plan_error_names(&RailpackPlan::parse(&bytes).unwrap_err(), "plan.json")?;
        plan_error_names(&RailpackInfo::parse(&bytes).unwrap_err(), "info.json")?;
    }

    #[test]
    fn mutated_build_metadata_is_refused_by_reason(bytes in mutated(METADATA)) {
        if let Err(e) = BuildMetadata::parse(&bytes, &image()) {
            prop_assert!(matches!(e, MetadataError::Json(_) | MetadataError::NoDigest | MetadataError::BadDigest(_) | MetadataError::WrongName { .. }), "{e:?}");
            prop_assert!(e.to_string().starts_with("buildctl metadata"), "{e}");
        }
    }

    #[test]
    fn task_parameters_are_refused_quoting_the_value(text in "\\PC{0,60}") {
        if let Err(e) = parse_platforms(&text) {
            let msg = e.to_string();
            prop_assert!(msg.starts_with("platform"), "{msg}");
        }
        if let Err(e) = parse_build_arg(&text) {
            prop_assert!(!e.to_string().is_empty());
        }
        if let Err(e) = SecretName::parse(&text) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
