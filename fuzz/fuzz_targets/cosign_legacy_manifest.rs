//! cosign's legacy `.sig` / `.att` manifests: `legacy::read_manifest`.
#![no_main]
use kibaship_cosign::legacy::{LayerKind, read_manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_manifest(data, LayerKind::Signature);
    let _ = read_manifest(data, LayerKind::Attestation);
});
