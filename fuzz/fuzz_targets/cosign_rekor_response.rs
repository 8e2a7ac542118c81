//! Rekor answers: v1 entry creation (`rekor_v1::parse_log_entry`), v2 entries (`rekor_v2::check_log_entry`)
//! and the TSA response status reader.
#![no_main]
use kibaship_cosign::{rekor_v1, rekor_v2, tsa};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rekor_v1::parse_log_entry(data);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = rekor_v2::check_log_entry(&value);
    }
    let _ = tsa::response_status(data);
});
