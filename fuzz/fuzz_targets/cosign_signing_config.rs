//! Sigstore signing configs (`SigningServices::from_signing_config_for`).
#![no_main]
use kibaship_cosign::signing_config::{RekorLogs, SigningServices};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for needs in [RekorLogs::V1, RekorLogs::V2, RekorLogs::Both] {
        let _ = SigningServices::from_signing_config_for(data, 1_748_736_000, needs);
    }
});
