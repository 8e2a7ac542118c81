//! Image manifests and indexes as a registry returns them (serde model + platform selection).
#![no_main]
use kibaship_oci::{ImageIndex, ImageManifest, Platform};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = serde_json::from_slice::<ImageManifest>(data) {
        let _ = manifest.effective_artifact_type();
        let _ = serde_json::to_vec(&manifest);
    }
    if let Ok(index) = serde_json::from_slice::<ImageIndex>(data) {
        let _ = index.platforms();
        for wanted in ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"] {
            let wanted: Platform = wanted.parse().expect("valid platform");
            let _ = index.select_platform(&wanted);
        }
    }
});
