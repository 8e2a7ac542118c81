//! Docker `config.json`: parsing and the credential lookup that decodes `auths` entries.
#![no_main]
use kibaship_oci::credentials::DockerConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = DockerConfig::from_json(data) else {
        return;
    };
    for registry in [
        "docker.io",
        "index.docker.io",
        "ghcr.io",
        "localhost:5000",
        "registry.example/x",
    ] {
        let _ = config.source_for(registry);
    }
});
