//! Trivy JSON reports: the borrowed parser, the streaming reader (tiny chunks, so entries straddle
//! reads) and a gate evaluation over what parsed. Both readers must agree on what they accept.
#![no_main]
use kibaship_gate::{Policy, Report, TrivyGate, stream};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let policy = Policy::from_yaml("version: 1\nfail-on-severity: low\n", "policy.yaml")
        .expect("fixed policy parses");
    let gate = TrivyGate::new(policy, Vec::new(), time::OffsetDateTime::UNIX_EPOCH)
        .expect("fixed gate builds");
    if let Ok(report) = Report::from_slice(data) {
        let _ = gate.evaluate(&report);
    }
    let mut evaluation = gate.start();
    let _ = stream::read_report_in_chunks(data, 7, |result| evaluation.add_result(result));
});
