//! `kibaverify verify-attestation`: verify an image's in-toto attestations (DSSE) in its registry.
//!
//! Exit codes: 0 at least one attestation (of the requested type) verified; 1 none did; 2 bad input or an
//! unreachable registry.
use std::process::ExitCode;

use anyhow::Context as _;
use kibaship_cosign::LayerKind;
use kibaship_cosign::attest::predicate_type_uri;

use super::verify::{VerifyFlags, verify_and_report};

/// Arguments of `kibaverify verify-attestation`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image (a tag is resolved to its digest first).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Only attestations of this predicate type: an absolute URI, or one of cosign's names (slsaprovenance,
    /// slsaprovenance02, slsaprovenance1, spdx, spdxjson, cyclonedx, link, vuln, openvex, custom). Default: any.
    #[arg(long = "type", value_name = "TYPE")]
    pub predicate_type: Option<String>,
    #[command(flatten)]
    pub flags: VerifyFlags,
}

/// Verifies the image's attestations.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // The same names `attest` writes; a name that is neither one of them nor a URI is refused rather than
    // matching nothing.
    let wanted = args
        .predicate_type
        .as_deref()
        .map(predicate_type_uri)
        .transpose()
        .context("--type")?;
    verify_and_report(
        &args.reference,
        &args.flags,
        LayerKind::Attestation,
        wanted,
        std::collections::BTreeMap::new(),
    )
}
