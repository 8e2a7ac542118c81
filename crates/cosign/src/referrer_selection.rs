//! Which of an image's signature referrers are checked. Pure.
//!
//! An image may have more referrers than one verification checks ([`crate::registry::MAX_REFERRERS_CHECKED`], or
//! the verifier's own bound). When it does, the ones checked do not depend on the order in which the registry
//! lists them: referrers are ranked by what their descriptors declare (the `dev.sigstore.bundle.predicateType`
//! annotation cosign v3 writes on a bundle referrer, the `artifactType` of cosign's OCI 1.1 signature mode),
//! those declaring what is looked for first, those declaring nothing (go-containerregistry's fallback index
//! carries no annotations) next, those declaring something else last; within a rank the newest first
//! (`org.opencontainers.image.created`), then by digest. Descriptors carry no signer identity, so identity
//! cannot be ranked by: the bound then falls on the newest.
use kibaship_oci::manifest::Descriptor;
use serde::Serialize;

use crate::bundle_layout::{
    COSIGN_SIGN_PREDICATE_TYPE, CREATED_ANNOTATION, PREDICATE_TYPE_ANNOTATION,
};
use crate::legacy::{LayerKind, OCI11_SIGNATURE_ARTIFACT_TYPE};

/// The bound on referrers checked was hit: how many could hold what was looked for, and how many were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerLimitHit {
    /// The most referrers checked for one image.
    pub limit: usize,
    /// The referrers that could hold a signature (or attestation) of the kind looked for.
    pub found: usize,
}

impl ReferrerLimitHit {
    /// How many were not checked.
    pub fn not_checked(&self) -> usize {
        self.found.saturating_sub(self.limit)
    }
}

/// How well a referrer's descriptor matches what is looked for: 0 declares it, 1 declares nothing, 2 declares
/// something else.
fn rank(descriptor: &Descriptor, kind: LayerKind, predicate_type: Option<&str>) -> u8 {
    let declared = descriptor
        .annotations
        .get(PREDICATE_TYPE_ANNOTATION)
        .map(String::as_str);
    let oci11_signature =
        descriptor.artifact_type.as_deref() == Some(OCI11_SIGNATURE_ARTIFACT_TYPE);
    match (kind, declared) {
        (LayerKind::Signature, _) if oci11_signature => 0,
        (LayerKind::Signature, Some(t)) if t == COSIGN_SIGN_PREDICATE_TYPE => 0,
        (LayerKind::Attestation, Some(t)) => match predicate_type {
            Some(wanted) if t == wanted => 0,
            None if t != COSIGN_SIGN_PREDICATE_TYPE => 0,
            _ => 2,
        },
        (_, None) => 1,
        (LayerKind::Signature, Some(_)) => 2,
    }
}

/// The referrers to check among `candidates` (in registry order), at most `limit`: all of them, in registry
/// order, when there are no more than `limit`; else the `limit` best ranked (see the module docs), and the
/// bound that was hit.
pub fn select<'d>(
    candidates: Vec<&'d Descriptor>,
    kind: LayerKind,
    predicate_type: Option<&str>,
    limit: usize,
) -> (Vec<&'d Descriptor>, Option<ReferrerLimitHit>) {
    let found = candidates.len();
    if found <= limit {
        return (candidates, None);
    }
    let mut ranked = candidates;
    ranked.sort_by(|a, b| {
        let created = |d: &Descriptor| d.annotations.get(CREATED_ANNOTATION).cloned();
        rank(a, kind, predicate_type)
            .cmp(&rank(b, kind, predicate_type))
            // Newest first; none last (`None` < `Some`, so compare b to a).
            .then_with(|| created(b).cmp(&created(a)))
            .then_with(|| a.digest.to_string().cmp(&b.digest.to_string()))
    });
    ranked.truncate(limit);
    (ranked, Some(ReferrerLimitHit { limit, found }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::bundle_layout::BUNDLE_V03_MEDIA_TYPE;
    use kibaship_oci::Digest;
    use kibaship_oci::manifest::OCI_MANIFEST;

    fn referrer(
        n: u8,
        artifact_type: &str,
        predicate_type: Option<&str>,
        created: &str,
    ) -> Descriptor {
        let mut d = Descriptor::of(OCI_MANIFEST, &[n]);
        d.digest = Digest::sha256_of(&[n]);
        d.artifact_type = Some(artifact_type.into());
        if let Some(t) = predicate_type {
            d.annotations
                .insert(PREDICATE_TYPE_ANNOTATION.into(), t.into());
        }
        d.annotations
            .insert(CREATED_ANNOTATION.into(), created.into());
        d
    }

    const SLSA: &str = "https://slsa.dev/provenance/v1";

    /// Five referrers: attestations, one unannotated, and the signature last in registry order.
    fn listing() -> Vec<Descriptor> {
        vec![
            referrer(0, BUNDLE_V03_MEDIA_TYPE, Some(SLSA), "2026-01-01T00:00:03Z"),
            referrer(1, BUNDLE_V03_MEDIA_TYPE, None, "2026-01-01T00:00:02Z"),
            referrer(
                2,
                BUNDLE_V03_MEDIA_TYPE,
                Some("https://cyclonedx.org/bom"),
                "2026-01-01T00:00:04Z",
            ),
            referrer(3, BUNDLE_V03_MEDIA_TYPE, Some(SLSA), "2026-01-01T00:00:05Z"),
            referrer(
                4,
                BUNDLE_V03_MEDIA_TYPE,
                Some(COSIGN_SIGN_PREDICATE_TYPE),
                "2026-01-01T00:00:01Z",
            ),
        ]
    }

    fn chosen(
        kind: LayerKind,
        predicate_type: Option<&str>,
        limit: usize,
    ) -> (Vec<u8>, Option<ReferrerLimitHit>) {
        let all = listing();
        let (picked, hit) = select(all.iter().collect(), kind, predicate_type, limit);
        let index = |d: &&Descriptor| all.iter().position(|a| a == *d).unwrap() as u8;
        (picked.iter().map(index).collect(), hit)
    }

    #[test]
    fn under_the_bound_everything_is_checked_in_registry_order() {
        assert_eq!(
            chosen(LayerKind::Signature, None, 5),
            (vec![0, 1, 2, 3, 4], None)
        );
    }

    #[test]
    fn over_the_bound_what_declares_the_wanted_type_comes_first_whatever_the_order() {
        let hit = Some(ReferrerLimitHit { limit: 2, found: 5 });
        // The signature (last listed), then the unannotated one.
        assert_eq!(chosen(LayerKind::Signature, None, 2), (vec![4, 1], hit));
        // SLSA attestations newest first.
        assert_eq!(
            chosen(LayerKind::Attestation, Some(SLSA), 2),
            (vec![3, 0], hit)
        );
        // Any attestation type: the newest declared ones, never the signature before an attestation.
        assert_eq!(chosen(LayerKind::Attestation, None, 4).0, vec![3, 2, 0, 1]);
        assert_eq!(ReferrerLimitHit { limit: 2, found: 5 }.not_checked(), 3);
        // The same choice in any listing order.
        let all = listing();
        let mut reversed: Vec<&Descriptor> = all.iter().collect();
        reversed.reverse();
        let (picked, _) = select(reversed, LayerKind::Attestation, Some(SLSA), 2);
        assert_eq!(picked, vec![&all[3], &all[0]]);
    }

    #[test]
    fn cosigns_oci11_signature_referrers_rank_as_signatures() {
        let mut all = listing();
        all.push(referrer(
            5,
            OCI11_SIGNATURE_ARTIFACT_TYPE,
            None,
            "2026-01-01T00:00:00Z",
        ));
        let (picked, _) = select(all.iter().collect(), LayerKind::Signature, None, 2);
        assert_eq!(picked, vec![&all[4], &all[5]]);
    }
}
