//! A DSSE envelope from a `.att` layer: `check::check_attestation_layer` (envelope, in-toto statement,
//! subject match) with a managed key, and `check::statement_matches` on the raw bytes.
#![no_main]
use kibaship_cosign::VerifyOptions;
use kibaship_cosign::check::{self, Subject};
use kibaship_cosign::legacy::SignatureLayer;
use kibaship_oci::{Descriptor, Digest};
use kibaship_sigstore::{IdentityPolicy, PublicKey, TrustedRoot, Verifier};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const ROOT: &[u8] =
    include_bytes!("../../testdata/sigstore/trusted-roots/production-trusted_root.json");
const KEY: &str = include_str!("../../testdata/cosign/simple-signing/key-signed/cosign.pub");

fn options() -> &'static VerifyOptions {
    static O: OnceLock<VerifyOptions> = OnceLock::new();
    O.get_or_init(|| VerifyOptions {
        identity: IdentityPolicy::Key(PublicKey::from_pem(KEY).expect("fixture key parses")),
        verifier: std::sync::Arc::new(Verifier::new(TrustedRoot::from_json(ROOT).expect("root parses"))),
            // A fixed clock (2025-12-06), so that a finding replays the same way.
            now: 1_765_000_000,
        ignore_tlog: true,
        predicate_type: None,
        annotations: Default::default(),
    })
}

fuzz_target!(|data: &[u8]| {
    let digest = Digest::sha256_of(b"fuzz subject");
    let subject = Subject {
        digest: &digest,
        repository: "registry.example/app",
    };
    let layer = SignatureLayer {
        index: 0,
        descriptor: Descriptor::of("application/vnd.dsse.envelope.v1+json", data),
        signature: Vec::new(),
        certificate_pem: None,
        chain_pem: None,
        rekor_bundle: None,
        rfc3161_timestamp: None,
        predicate_type: None,
    };
    let _ = check::check_attestation_layer(&layer, data, subject, options());
    let _ = check::statement_matches(data, subject);
});
