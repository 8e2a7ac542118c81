//! Time and peak memory of three ways to read an AdmissionReview, for `docs/webhook.md`:
//! `lean` (this crate's `parse_review`), `value` (a `serde_json::Value` tree of the whole body) and
//! `kube-core` (`kube_core::admission::AdmissionReview<DynamicObject>`).
//!
//!     cargo run --release -p kibaship-admission --example parse_cost -- <lean|value|kube-core> <real|wide>
//!
//! `real` is the recorded Pod CREATE from kube-apiserver; `wide` is a Pod whose container has ~6 MiB of
//! `args` of empty strings (what any user may send, bounded by MAX_REVIEW_BYTES). Run one reading per
//! process: the peak (VmHWM from /proc/self/status) is the process's, measured after the body is built.
use std::process::ExitCode;
use std::time::Instant;

use kibaship_admission::{MAX_REVIEW_BYTES, parse_review};

const REAL: &[u8] = include_bytes!("../../../testdata/admission/recorded/v1-pod-create.json");

fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmHWM:")
                    .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

fn wide() -> Vec<u8> {
    let head = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","userInfo":{"username":"a"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"x:1","args":["#;
    let tail = "\"\"]}]}}}}";
    let mut body = head.as_bytes().to_vec();
    while body.len() + 3 + tail.len() < MAX_REVIEW_BYTES {
        body.extend_from_slice(br#""","#);
    }
    body.extend_from_slice(tail.as_bytes());
    body
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(how), Some(input)) = (args.first(), args.get(1)) else {
        eprintln!("usage: parse_cost <lean|value|kube-core> <real|wide>");
        return ExitCode::from(2);
    };
    let body = if input == "wide" {
        wide()
    } else {
        REAL.to_vec()
    };
    let rounds = if input == "wide" { 5 } else { 20_000 };
    let before = peak_kib();
    let started = Instant::now();
    for _ in 0..rounds {
        let ok = match how.as_str() {
            "lean" => parse_review(&body).is_ok(),
            "value" => serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
            "kube-core" => serde_json::from_slice::<
                kube_core::admission::AdmissionReview<kube_core::DynamicObject>,
            >(&body)
            .is_ok(),
            _ => {
                eprintln!("unknown reader {how}");
                return ExitCode::from(2);
            }
        };
        if !ok {
            eprintln!("{how} could not read the {input} body");
            return ExitCode::FAILURE;
        }
    }
    let each = started.elapsed() / rounds;
    let after = peak_kib();
    println!(
        "{how:>9} {input:>4}: body {} bytes, {:?} per reading, peak memory +{} KiB over the body",
        body.len(),
        each,
        after.saturating_sub(before)
    );
    ExitCode::SUCCESS
}
