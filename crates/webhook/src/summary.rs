//! One line saying why an image is not verified, for denial messages and warnings: the reason of the first
//! signature (or attestation) found, with the identity mismatch or the failed predicate check when there is one.
use kibaship_cosign::{ImageReport, NotVerified};

/// Why `not_verified` failed, in words (without the code, which the caller prints before it).
pub fn not_verified_detail(not_verified: &NotVerified) -> String {
    if let Some(f) = &not_verified.predicate_failure {
        return format!(
            "no {} attestation passes the check of {}: wanted {}, got {}",
            f.predicate_type, f.path, f.wanted, f.got
        );
    }
    let report = not_verified
        .signatures
        .as_ref()
        .filter(|r| !r.verified())
        .or(not_verified.attestations.as_ref());
    match report {
        Some(report) => report_detail(report),
        None => "no signature satisfies the policy".into(),
    }
}

fn report_detail(report: &ImageReport) -> String {
    let mut text = rejection_detail(report);
    // More referrers than are checked: the denial says so, since an unchecked one might have passed.
    if let Some(hit) = report.referrer_limit_hit {
        text.push_str(&format!(
            " (only {} of {} referrers checked)",
            hit.limit, hit.found
        ));
    }
    text
}

fn rejection_detail(report: &ImageReport) -> String {
    let found = report.signatures.len();
    let Some(first) = report.closest_rejection() else {
        return if found == 0 {
            format!("no {} found for {}", report.kind(), report.digest)
        } else {
            format!(
                "none of the {found} {} found satisfies the policy",
                report.kind()
            )
        };
    };
    let mut text = first.message.clone();
    if let Some(m) = &first.mismatch {
        text = format!(
            "{text} ({}: wanted \"{}\", got \"{}\")",
            m.claim, m.wanted, m.got
        );
    }
    if found > 1 {
        text.push_str(&format!(
            " (and {} more {} found)",
            found - 1,
            report.kind()
        ));
    }
    text
}
