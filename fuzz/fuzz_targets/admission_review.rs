//! `parse_review` (AdmissionReview bodies as the API server, or anyone reaching the webhook, sends them),
//! then `respond` for what it read (a denial, and an allow that pins every image) and `respond_error` for
//! what it refused with a uid; every answer must be JSON with the request's uid, and only the allow may allow.
#![no_main]
use kibaship_admission::{Decision, ImagePatch, parse_review, respond, respond_error};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn read(answer: &[u8], uid: &str) -> Value {
    let doc: Value = serde_json::from_slice(answer).unwrap_or_else(|e| panic!("answer is not JSON: {e}"));
    assert_eq!(doc["kind"], "AdmissionReview");
    assert_eq!(doc["response"]["uid"].as_str(), Some(uid));
    doc
}

fuzz_target!(|data: &[u8]| {
    match parse_review(data) {
        Ok(review) => {
            let denial = Decision {
                warnings: review.images.iter().map(|s| format!("{} {}", s.container, s.image)).collect(),
                ..Decision::deny("fuzz-denied", format!("{} images", review.images.len()))
            };
            let doc = read(&respond(&review, &denial), &review.uid);
            assert_eq!(doc["response"]["allowed"], false);
            assert!(doc["response"].get("patch").is_none());

            let pin = Decision {
                patch: review
                    .images
                    .iter()
                    .map(|s| ImagePatch { pointer: s.pointer.clone(), image: format!("r.example/pinned@sha256:{:064x}", s.image.len()) })
                    .collect(),
                ..Decision::allow()
            };
            let doc = read(&respond(&review, &pin), &review.uid);
            assert_eq!(doc["apiVersion"], review.api_version.api_version());
            if review.images.is_empty() {
                assert!(doc["response"].get("patch").is_none());
            }
        }
        Err(e) => {
            assert!(!e.to_string().chars().any(char::is_control), "{e}");
            if let (Some(uid), Some(version)) = (e.uid(), e.api_version()) {
                let doc = read(&respond_error(uid, version, &e), uid);
                assert_eq!(doc["response"]["allowed"], false);
            }
        }
    }
});
