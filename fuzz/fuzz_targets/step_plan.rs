//! railpack's plan and info JSON (`RailpackPlan::parse`, `RailpackInfo::parse`).
#![no_main]
use kibaship_step::plan::{RailpackInfo, RailpackPlan};
use kibaship_step::secrets::SecretName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(plan) = RailpackPlan::parse(data) {
        let secrets = [SecretName::parse("API_KEY").expect("valid name")];
        let _ = plan.check_build_secrets(&secrets);
        let _ = plan.digest();
    }
    let _ = RailpackInfo::parse(data);
});
