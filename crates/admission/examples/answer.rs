//! Answers one AdmissionReview read from stdin with an AdmissionReview on stdout, through `parse_review` and
//! `respond`: the fixture recorder (`testdata/admission/recorded/record.sh`) runs it for every request a real
//! kube-apiserver sends, so the answers this crate writes are checked by the API server itself.
//!
//! The decision is a fixed test rule, not a policy: an image whose name contains `deny` is denied with code
//! `test-denied`; otherwise the request is allowed, every image without a digest is pinned to
//! `@sha256:` + 64 × `a`, and one warning naming the first image is sent (with a control character in it, to
//! see it escaped). A body that cannot be read is answered with `respond_error` when its uid is known, and
//! with exit status 2 otherwise.
use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use kibaship_admission::{Decision, ImagePatch, parse_review, respond, respond_error};

fn main() -> ExitCode {
    let mut body = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut body) {
        eprintln!("answer: cannot read stdin: {e}");
        return ExitCode::from(2);
    }
    let answer = match parse_review(&body) {
        Ok(review) => {
            let denied = review
                .images
                .iter()
                .find(|site| site.image.contains("deny"));
            let decision = match denied {
                Some(site) => Decision::deny(
                    "test-denied",
                    format!(
                        "image {} ({} {}) is denied by the test rule",
                        site.image, site.role, site.container
                    ),
                ),
                None => Decision {
                    patch: review
                        .images
                        .iter()
                        .filter(|site| !site.image.contains('@'))
                        .map(|site| ImagePatch {
                            pointer: site.pointer.clone(),
                            image: format!("{}@sha256:{}", site.image, "a".repeat(64)),
                        })
                        .collect(),
                    warnings: review
                        .images
                        .first()
                        .map(|site| vec![format!("test rule\u{1b}[1m: {} pinned", site.image)])
                        .unwrap_or_default(),
                    ..Decision::allow()
                },
            };
            respond(&review, &decision)
        }
        Err(e) => match e.uid() {
            Some(uid) => respond_error(
                uid,
                e.api_version()
                    .unwrap_or(kibaship_admission::ReviewVersion::V1),
                &e,
            ),
            None => {
                eprintln!("answer: {}: {e}", e.code());
                return ExitCode::from(2);
            }
        },
    };
    match std::io::stdout().write_all(&answer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("answer: cannot write stdout: {e}");
            ExitCode::from(2)
        }
    }
}
