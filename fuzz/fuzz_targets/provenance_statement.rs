//! `Statement::parse` and `ProvenanceRequirements::judge_statement` (in-toto statements from attestations and
//! BuildKit indexes, judged as `kibaverify verify-provenance` and the admission policy's predicate checks judge
//! them): never a panic; a statement judged to pass names the image, has an accepted SLSA predicate type and
//! mentions the required repository and builder; no message carries a raw control character.
#![no_main]
use kibaship_oci::Digest;
use kibaship_provenance::{ProvenanceRequirements, SlsaVersion, Statement};
use libfuzzer_sys::fuzz_target;

const REPOSITORY: &str = "github.com/slsa-framework/example-package";
const BUILDER: &str = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml";

fn no_control(text: &str) {
    assert!(
        !text.chars().any(char::is_control),
        "control character in {text:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let statement = match Statement::parse(data) {
        Ok(s) => s,
        Err(e) => return no_control(&e.to_string()),
    };
    // The image: the first subject's digest when it is one (so that the predicate is reached), else another.
    let image = statement
        .subject_digests()
        .iter()
        .find_map(|d| Digest::parse(d).ok())
        .unwrap_or_else(|| Digest::parse(&format!("sha256:{}", "a".repeat(64))).expect("a digest"));
    let requirements = ProvenanceRequirements {
        source_uri: REPOSITORY.into(),
        source_tag: None,
        source_branch: None,
        source_versioned_tag: None,
        builder_id: BUILDER.into(),
        build_type: None,
        versions: SlsaVersion::ALL.to_vec(),
    };
    match requirements.judge_statement(&statement, &image) {
        Ok(()) => {
            assert!(statement.names_digest(&image));
            assert!(SlsaVersion::from_predicate_type(&statement.predicate_type).is_some());
            let predicate = serde_json::to_string(&statement.predicate).expect("JSON");
            assert!(
                predicate.contains(REPOSITORY),
                "accepted without the repository: {predicate}"
            );
            assert!(
                predicate.contains(BUILDER),
                "accepted without the builder: {predicate}"
            );
        }
        Err(e) => no_control(&e.to_string()),
    }
});
