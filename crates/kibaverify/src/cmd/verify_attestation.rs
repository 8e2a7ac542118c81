//! `kibaverify verify-attestation`: verify an image's in-toto attestations (DSSE) in its registry.
//!
//! Exit codes: 0 at least one attestation (of the requested type) verified; 1 none did; 2 bad input or an
//! unreachable registry.
use std::process::ExitCode;

use kibaship_cosign::LayerKind;

use super::verify::{VerifyFlags, verify_and_report};

/// Arguments of `kibaverify verify-attestation`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image (a tag is resolved to its digest first).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Only attestations of this predicate type: a URI, or one of cosign's names (slsaprovenance,
    /// slsaprovenance02, slsaprovenance1, spdx, spdxjson, cyclonedx, vuln, openvex, custom). Default: any.
    #[arg(long = "type", value_name = "TYPE")]
    pub predicate_type: Option<String>,
    #[command(flatten)]
    pub flags: VerifyFlags,
}

/// cosign's `--type` names and the predicate types they stand for.
const PREDICATE_TYPE_NAMES: [(&str, &str); 9] = [
    ("slsaprovenance", "https://slsa.dev/provenance/v0.2"),
    ("slsaprovenance02", "https://slsa.dev/provenance/v0.2"),
    ("slsaprovenance1", "https://slsa.dev/provenance/v1"),
    ("spdx", "https://spdx.dev/Document"),
    ("spdxjson", "https://spdx.dev/Document"),
    ("cyclonedx", "https://cyclonedx.org/bom"),
    ("vuln", "https://cosign.sigstore.dev/attestation/vuln/v1"),
    ("openvex", "https://openvex.dev/ns"),
    ("custom", "https://cosign.sigstore.dev/attestation/v1"),
];

/// The predicate type URI `--type` names.
pub fn predicate_type_uri(name: &str) -> String {
    PREDICATE_TYPE_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or_else(|| name.to_string(), |(_, uri)| (*uri).to_string())
}

/// Verifies the image's attestations.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let wanted = args.predicate_type.as_deref().map(predicate_type_uri);
    verify_and_report(
        &args.reference,
        &args.flags,
        LayerKind::Attestation,
        wanted,
        std::collections::BTreeMap::new(),
    )
}
