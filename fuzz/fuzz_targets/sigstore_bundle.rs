//! `Bundle::from_json`, then the verifier against the production trusted root with any identity, so the
//! verification paths (certificates, tlog entries, checkpoints, timestamps, DSSE) see fuzzed input too.
#![no_main]
use kibaship_sigstore::{
    ArtifactPolicy, Bundle, CertificateIdentity, IdentityPolicy, Matcher, TrustedRoot, Verifier,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const ROOT: &[u8] =
    include_bytes!("../../testdata/sigstore/trusted-roots/production-trusted_root.json");
const ARTIFACT: &[u8] = include_bytes!("../../testdata/sigstore/conformance/a.txt");

fn verifier() -> &'static (Verifier, IdentityPolicy) {
    static V: OnceLock<(Verifier, IdentityPolicy)> = OnceLock::new();
    V.get_or_init(|| {
        let root = TrustedRoot::from_json(ROOT).expect("the production trusted root parses");
        let any = || Matcher::regex(".*").expect("valid regex");
        let identity = IdentityPolicy::Certificate(CertificateIdentity {
            issuer: any(),
            san: any(),
            github: Default::default(),
        });
        (Verifier::new(root), identity)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = Bundle::from_json(data) else {
        return;
    };
    let (verifier, identity) = verifier();
    // A fixed time keeps runs reproducible (2025-06-01).
    let _ = verifier.verify_at(
        &bundle,
        ArtifactPolicy::Bytes(ARTIFACT),
        identity,
        1_748_736_000,
    );
});
