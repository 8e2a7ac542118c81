//! A Sigstore bundle attached as an OCI referrer: `check::check_referrer_bundle` for both kinds, keyless
//! with any identity against the production trusted root.
#![no_main]
use kibaship_cosign::VerifyOptions;
use kibaship_cosign::check::{self, BundleKind, Subject};
use kibaship_oci::Digest;
use kibaship_sigstore::{CertificateIdentity, IdentityPolicy, Matcher, TrustedRoot, Verifier};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const ROOT: &[u8] =
    include_bytes!("../../testdata/sigstore/trusted-roots/production-trusted_root.json");

fn options() -> &'static VerifyOptions {
    static O: OnceLock<VerifyOptions> = OnceLock::new();
    O.get_or_init(|| {
        let any = || Matcher::regex(".*").expect("valid regex");
        VerifyOptions {
            identity: IdentityPolicy::Certificate(CertificateIdentity {
                issuer: any(),
                san: any(),
                github: Default::default(),
            }),
            verifier: std::sync::Arc::new(Verifier::new(TrustedRoot::from_json(ROOT).expect("root parses"))),
            // A fixed clock (2025-12-06), so that a finding replays the same way.
            now: 1_765_000_000,
            ignore_tlog: false,
            predicate_type: None,
            annotations: Default::default(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let digest = Digest::sha256_of(b"fuzz subject");
    let subject = Subject {
        digest: &digest,
        repository: "registry.example/app",
    };
    for kind in [BundleKind::Signature, BundleKind::Attestation] {
        let _ = check::check_referrer_bundle(data, subject, kind, options());
    }
});
