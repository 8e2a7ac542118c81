//! sigstore-rs 0.15 through its blocking bundle `Verifier` (built once), on the same bundles
//! and with the same timing method as kibaship's `bench_verify`: each iteration parses the
//! bundle JSON and verifies it; rates are per CPU-second of the benchmark thread.
//! Prints one JSON object per line.
//!
//! Usage: sigstore-rs-verify-bench <conformance dir> <production trusted_root.json> <seconds> <case>...

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sigstore::bundle::verify::blocking::Verifier;
use sigstore::bundle::verify::policy::Identity;
use sigstore::bundle::Bundle;
use sigstore::trust::ManualTrustRoot;

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
const ROUNDS: u32 = 6;

fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn rate(seconds: f64, f: &mut impl FnMut()) -> f64 {
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let cpu0 = thread_cpu_ns();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..50 {
            f();
        }
        n += 50;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
        _ => wall,
    };
    n as f64 / cpu
}

fn b64(s: &str) -> Vec<u8> {
    use base64_decode::decode;
    decode(s)
}

/// A tiny standard-base64 decoder (keeps this project's dependencies to sigstore's own).
mod base64_decode {
    pub fn decode(s: &str) -> Vec<u8> {
        let val = |c: u8| -> u32 {
            match c {
                b'A'..=b'Z' => (c - b'A') as u32,
                b'a'..=b'z' => (c - b'a' + 26) as u32,
                b'0'..=b'9' => (c - b'0' + 52) as u32,
                b'+' => 62,
                b'/' => 63,
                _ => 0,
            }
        };
        let bytes: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
        let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
        for chunk in bytes.chunks(4) {
            let mut acc = 0u32;
            for (i, c) in chunk.iter().enumerate() {
                acc |= val(*c) << (18 - 6 * i);
            }
            out.push((acc >> 16) as u8);
            if chunk.len() > 2 {
                out.push((acc >> 8) as u8);
            }
            if chunk.len() > 3 {
                out.push(acc as u8);
            }
        }
        out
    }
}

fn trust_root(json: &[u8]) -> ManualTrustRoot<'static> {
    let v: serde_json::Value = serde_json::from_slice(json).expect("trusted root JSON");
    let mut root = ManualTrustRoot::default();
    for ca in v["certificateAuthorities"].as_array().into_iter().flatten() {
        for c in ca["certChain"]["certificates"].as_array().into_iter().flatten() {
            root.fulcio_certs.push(b64(c["rawBytes"].as_str().unwrap_or_default()).into());
        }
    }
    let keys = |name: &str| -> BTreeMap<String, Vec<u8>> {
        v[name]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["publicKey"]["keyDetails"].as_str().is_some_and(|d| d.starts_with("PKIX_")))
            .map(|l| {
                (
                    l["logId"]["keyId"].as_str().unwrap_or_default().to_owned(),
                    b64(l["publicKey"]["rawBytes"].as_str().unwrap_or_default()),
                )
            })
            .collect()
    };
    root.rekor_keys = keys("tlogs");
    root.ctfe_keys = keys("ctlogs");
    root
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let corpus = Path::new(&args[1]);
    let production_root = std::fs::read(&args[2]).expect("production trusted root");
    let seconds: f64 = args[3].parse().expect("seconds");
    let artifact = std::fs::read(corpus.join("a.txt")).expect("a.txt");
    let policy = Identity::new(IDENTITY, ISSUER);
    for case in &args[4..] {
        let dir = corpus.join(case);
        let root_json = std::fs::read(dir.join("trusted_root.json")).unwrap_or_else(|_| production_root.clone());
        let bundle_json = std::fs::read(dir.join("bundle.sigstore.json")).expect("bundle");
        let verifier = match Verifier::new(Default::default(), trust_root(&root_json)) {
            Ok(v) => v,
            Err(e) => {
                println!("{}", serde_json::json!({"tool": "sigstore-rs 0.15", "case": case, "error": format!("verifier setup: {e}")}));
                continue;
            }
        };
        let verify_once = |verifier: &Verifier| -> Result<(), String> {
            let bundle: Bundle = serde_json::from_slice(&bundle_json).map_err(|e| format!("parse: {e}"))?;
            let mut h = Sha256::new();
            h.update(&artifact);
            verifier.verify_digest(h, bundle, &policy, true).map_err(|e| e.to_string())
        };
        if let Err(e) = verify_once(&verifier) {
            println!("{}", serde_json::json!({"tool": "sigstore-rs 0.15", "case": case, "error": e}));
            continue;
        }
        let mut f = || assert!(verify_once(&verifier).is_ok());
        for _ in 0..200 {
            f();
        }
        let mut best = 0f64;
        for _ in 0..ROUNDS {
            best = best.max(rate(seconds / f64::from(ROUNDS), &mut f));
        }
        println!("{}", serde_json::json!({"tool": "sigstore-rs 0.15", "case": case, "rate": best}));
    }
}
