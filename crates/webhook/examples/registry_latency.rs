//! `make bench-webhook`: the registry as if it were across a network. Relays plain HTTP to a registry on
//! 127.0.0.1 through kibaship-testsupport's fault proxy, pausing every response (`Fault::SlowBody`: the head at
//! once, then the body in up to 4 pieces after a pause each; a response without a body after one pause).
//!
//! The benchmark sends its 100 concurrent reviews of one new digest through it: a verification then lasts long
//! enough that every review arrives while it runs, so the reviews must share it (on loopback the verification can
//! finish before the last review is read, and the others would find the fact cached instead). The registry behind
//! it still logs each request it serves.
//!
//! Usage: `registry_latency <registry host:port> <pause ms>`; prints `host 127.0.0.1:PORT`, then relays until it is
//! killed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark tool: a panic is a failed run

use std::io::Write as _;

use kibaship_testsupport::faultproxy::{Fault, FaultProxy};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, upstream, pause_ms] = args.as_slice() else {
        eprintln!("usage: registry_latency <registry host:port> <pause ms>");
        std::process::exit(2);
    };
    let delay_ms: u64 = pause_ms
        .parse()
        .expect("the pause is a number of milliseconds");
    let proxy = FaultProxy::start_persistent(upstream, Fault::SlowBody { delay_ms })
        .expect("starting the proxy");
    let mut out = std::io::stdout();
    writeln!(out, "host {}", proxy.host()).expect("stdout");
    out.flush().expect("stdout");
    loop {
        std::thread::park();
    }
}
