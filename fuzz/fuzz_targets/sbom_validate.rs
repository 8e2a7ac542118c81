//! `kibaship_sbom::validate` (SBOM documents read from files and registries): never a panic; a document it
//! accepts is UTF-8 JSON; no error message carries a raw control character (they reach terminals). And the
//! streaming validation (items checked on worker threads, used for documents of 4 MiB and more) run on any size
//! here must say what the whole-document validation says: valid when it is valid, the same number of
//! violations at the same places when not, the same duplicate key.
#![no_main]
use kibaship_sbom::{
    MAX_REPORTED_VIOLATIONS, SbomError, Validated, validate, validate_streaming_for_fuzzing,
    validate_whole,
};
use libfuzzer_sys::fuzz_target;

fn check_error(e: &SbomError) {
    let text = e.to_string();
    assert!(
        !text.chars().any(char::is_control),
        "control character in {text:?}"
    );
}

fn check_valid(v: &Validated<'_>) {
    let value: serde_json::Value =
        serde_json::from_slice(&v.utf8).expect("an accepted SBOM is JSON");
    assert!(value.is_object());
}

fn places(e: &SbomError) -> Option<(Vec<(String, String)>, usize)> {
    let SbomError::Invalid { violations, .. } = e else {
        return None;
    };
    let mut first: Vec<(String, String)> = violations
        .first
        .iter()
        .map(|v| (v.pointer.clone(), v.rule.clone()))
        .collect();
    first.sort();
    Some((first, violations.total))
}

fuzz_target!(|data: &[u8]| {
    let whole = validate_whole(data);
    match &whole {
        Ok(v) => check_valid(v),
        Err(e) => check_error(e),
    }
    match validate(data) {
        Ok(v) => check_valid(&v),
        Err(e) => check_error(&e),
    }
    let Some(streamed) = validate_streaming_for_fuzzing(data, 2) else {
        return;
    };
    match (&streamed, &whole) {
        (Ok(a), Ok(b)) => assert_eq!(
            (a.format, &a.version, a.schema),
            (b.format, &b.version, b.schema)
        ),
        (Err(a @ SbomError::Invalid { .. }), Err(b @ SbomError::Invalid { .. })) => {
            let (a, b) = (places(a).expect("invalid"), places(b).expect("invalid"));
            // Streaming lists violations in document order, the whole validation in the schema's: the first
            // few listed are the same places when all of them are listed.
            if a.1 <= MAX_REPORTED_VIOLATIONS && b.1 <= MAX_REPORTED_VIOLATIONS {
                assert_eq!(a, b, "streamed / whole");
            } else {
                assert_eq!(a.1, b.1, "violations counted, streamed / whole");
            }
        }
        (Err(a @ SbomError::DuplicateKey { .. }), Err(b @ SbomError::DuplicateKey { .. })) => {
            assert_eq!(a, b)
        }
        (a, b) => panic!("streamed {a:?}, whole {b:?}"),
    }
});
