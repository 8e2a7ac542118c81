//! `.trivyignore` and `.trivyignore.yaml`.
#![no_main]
use kibaship_gate::{IgnoreFile, Policy, TrivyGate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for name in [".trivyignore", ".trivyignore.yaml"] {
        if let Ok(file) = IgnoreFile::parse(name, text) {
            let policy = Policy::from_yaml("version: 1\nfail-on-severity: low\n", "policy.yaml")
                .expect("fixed policy parses");
            let _ = TrivyGate::new(policy, vec![file], time::OffsetDateTime::UNIX_EPOCH);
        }
    }
});
