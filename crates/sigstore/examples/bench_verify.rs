//! `make bench-verify` (ours): in-process verifications per second on one thread, with the
//! `Verifier` built once and every bundle parsed and verified from its bytes each time; beside
//! the lower bound: the same primitive operations (signature checks and hashes) done directly
//! with aws-lc-rs. Prints one JSON object per line.
//!
//! Usage: bench_verify <conformance dir> <production trusted_root.json> <seconds per figure> <case>...
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is a failed run

use std::path::Path;
use std::time::{Duration, Instant};

use kibaship_sigstore::bound::{PrimitiveOperation, primitive_operations};
use kibaship_sigstore::{
    ArtifactPolicy, Bundle, CertificateIdentity, IdentityPolicy, PublicKey, TrustedRoot, Verifier,
};

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Rounds per figure: ours and the bound alternate, and each keeps its best round, so that
/// load from other processes on the machine hits both alike.
const ROUNDS: u32 = 6;

/// Nanoseconds this thread has run on a CPU (Linux `schedstat`): rates per CPU-second stay
/// meaningful when other processes share the machine's cores.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Runs `f` for about `seconds` of wall time; returns operations per CPU-second of this thread
/// (falls back to wall time where schedstat is missing).
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let corpus = Path::new(&args[1]);
    let production_root = std::fs::read(&args[2]).unwrap();
    let seconds: f64 = args[3].parse().unwrap();
    let artifact = std::fs::read(corpus.join("a.txt")).unwrap();
    let policy = IdentityPolicy::Certificate(CertificateIdentity::exact(IDENTITY, ISSUER));
    for case in &args[4..] {
        let dir = corpus.join(case);
        let root_json = std::fs::read(dir.join("trusted_root.json"))
            .unwrap_or_else(|_| production_root.clone());
        let verifier = Verifier::new(TrustedRoot::from_json(&root_json).unwrap());
        let bundle_json = std::fs::read(dir.join("bundle.sigstore.json")).unwrap();
        let bundle = Bundle::from_json(&bundle_json).unwrap();
        verifier
            .verify(&bundle, ArtifactPolicy::Bytes(&artifact), &policy)
            .unwrap_or_else(|e| panic!("{case} must verify: {e}"));

        let mut ours_fn = || {
            let b = Bundle::from_json(std::hint::black_box(&bundle_json)).unwrap();
            let r = verifier.verify(&b, ArtifactPolicy::Bytes(&artifact), &policy);
            assert!(r.is_ok());
        };

        // The bound: keys parsed up front (also the leaf's), then only the primitives.
        let ops = primitive_operations(&verifier, &bundle, &artifact);
        let prepared: Vec<(PublicKey, &PrimitiveOperation)> = ops
            .iter()
            .filter_map(|op| match op {
                PrimitiveOperation::Verify { spki, .. } => {
                    Some((PublicKey::from_spki(spki, false).unwrap(), op))
                }
                PrimitiveOperation::Hash { .. } => None,
            })
            .collect();
        for (key, op) in &prepared {
            if let PrimitiveOperation::Verify {
                what,
                hash,
                message,
                signature,
                ..
            } = op
            {
                assert!(
                    key.verify_with(*hash, message, signature),
                    "{case}: bound operation {what} must verify"
                );
            }
        }
        let hashes: Vec<&PrimitiveOperation> = ops
            .iter()
            .filter(|op| matches!(op, PrimitiveOperation::Hash { .. }))
            .collect();
        // The bound of the checks sigstore-rs 0.15 does: the same, without the SET and the checkpoint.
        let skipped_by_sigstore_rs = |what: &str| what == "SET" || what == "checkpoint";
        let run_primitives = |only_sigstore_rs_checks: bool| {
            for (key, op) in &prepared {
                if let PrimitiveOperation::Verify {
                    what,
                    hash,
                    message,
                    signature,
                    ..
                } = op
                {
                    if only_sigstore_rs_checks && skipped_by_sigstore_rs(what) {
                        continue;
                    }
                    assert!(key.verify_with(*hash, std::hint::black_box(message), signature));
                }
            }
            for op in &hashes {
                if let PrimitiveOperation::Hash {
                    algorithm, data, ..
                } = op
                {
                    std::hint::black_box(algorithm.digest(data));
                }
            }
        };
        let mut bound_fn = || run_primitives(false);
        let mut rs_bound_fn = || run_primitives(true);
        for _ in 0..200 {
            ours_fn();
            bound_fn();
        }
        if std::env::var_os("BENCH_BREAKDOWN").is_some() {
            let parse = rate(seconds, &mut || {
                std::hint::black_box(
                    Bundle::from_json(std::hint::black_box(&bundle_json)).unwrap(),
                );
            });
            let verify_only = rate(seconds, &mut || {
                assert!(
                    verifier
                        .verify(&bundle, ArtifactPolicy::Bytes(&artifact), &policy)
                        .is_ok()
                );
            });
            println!(
                "{}",
                serde_json::json!({"case": case, "parse_per_s": parse, "verify_only_per_s": verify_only})
            );
        }
        let (mut ours, mut bound, mut rs_bound) = (0f64, 0f64, 0f64);
        let round = seconds / f64::from(ROUNDS);
        for _ in 0..ROUNDS {
            ours = ours.max(rate(round, &mut ours_fn));
            bound = bound.max(rate(round, &mut bound_fn));
            rs_bound = rs_bound.max(rate(round, &mut rs_bound_fn));
        }
        let described: Vec<String> = ops
            .iter()
            .map(|op| match op {
                PrimitiveOperation::Verify {
                    what, kind, hash, ..
                } => format!("{what}: {kind:?}/{hash:?}"),
                PrimitiveOperation::Hash {
                    what, algorithm, ..
                } => format!("{what}: {algorithm:?}"),
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"tool": "kibaship", "case": case, "rate": ours})
        );
        println!(
            "{}",
            serde_json::json!({"tool": "bound (aws-lc-rs primitives)", "case": case, "rate": bound, "operations": described})
        );
        println!(
            "{}",
            serde_json::json!({"tool": "bound of sigstore-rs's checks", "case": case, "rate": rs_bound})
        );
    }
}
