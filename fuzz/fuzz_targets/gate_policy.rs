//! Gate policy YAML, then building a gate from it.
#![no_main]
use kibaship_gate::{Policy, TrivyGate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = Policy::from_yaml(text, "policy.yaml") {
        let _ = TrivyGate::new(policy, Vec::new(), time::OffsetDateTime::UNIX_EPOCH);
    }
});
