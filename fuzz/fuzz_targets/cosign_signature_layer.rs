//! A fuzzed `.sig` manifest (its annotations carry the signature, certificate, chain and Rekor bundle)
//! checked against a real simple-signing payload, keyless with any identity: fuzzes the legacy-to-bundle
//! conversion and the verifier behind it.
#![no_main]
use kibaship_cosign::VerifyOptions;
use kibaship_cosign::check::{self, Subject};
use kibaship_cosign::legacy::{LayerKind, read_manifest};
use kibaship_oci::Digest;
use kibaship_sigstore::{CertificateIdentity, IdentityPolicy, Matcher, TrustedRoot, Verifier};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const ROOT: &[u8] =
    include_bytes!("../../testdata/sigstore/trusted-roots/production-trusted_root.json");
const PAYLOAD: &[u8] =
    include_bytes!("../../testdata/cosign/simple-signing/keyless-rekor-set/payload.json");

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
    let Ok(layers) = read_manifest(data, LayerKind::Signature) else {
        return;
    };
    let digest =
        Digest::parse("sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e")
            .expect("valid digest");
    let subject = Subject {
        digest: &digest,
        repository: "registry-testing.svc.lan/kubewarden/disallow-service-nodeport",
    };
    for layer in &layers {
        let _ = check::check_signature_layer(layer, PAYLOAD, subject, options());
    }
});
