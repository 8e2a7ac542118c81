//! buildctl's `--metadata-file` JSON (`BuildMetadata::parse`) and the registry documents the build step
//! reads back (annotations, attestation manifests, SBOM layers).
#![no_main]
use kibaship_step::buildctl::BuildMetadata;
use kibaship_step::image::ImageName;
use kibaship_step::registry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let image = ImageName::new("registry.example:5000", "team/app", "v1").expect("valid image");
    let _ = BuildMetadata::parse(data, &image);
    let _ = registry::manifest_annotations(data);
    let _ = registry::attestation_manifests(data);
    let _ = registry::has_sbom_layer(data);
});
