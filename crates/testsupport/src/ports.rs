//! Ports for the servers the harness starts as child processes (which must bind the port themselves).
//!
//! A port the kernel hands out for `127.0.0.1:0` comes from the ephemeral range, which is also where every
//! outgoing connection on the machine takes its local port: between our probe and the child's bind, a client
//! connection anywhere can take it ("address already in use"), and the more services run in parallel the likelier
//! that is. So ports are drawn at random from below the ephemeral range, where only listeners live, and probed.
use std::collections::BTreeSet;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::sync::Mutex;

use crate::HarnessError;

/// Lowest port drawn.
const LOWEST: u16 = 10_000;
/// Draws before falling back to a kernel-chosen port.
const DRAWS: u32 = 200;

/// The first port of the ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), 32768 if unreadable.
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish()
}

/// Ports this process has handed out: a port is given once, so that two stacks started by parallel tests of one
/// test binary never both plan to bind it (the probe alone cannot see a port another thread is about to bind).
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A port on 127.0.0.1 that was free when probed and not handed out before by this process, outside the ephemeral
/// range when the machine leaves room below it (a race with other processes' listeners remains, made rare by the
/// random draw).
pub(crate) fn free_port() -> Result<u16, HarnessError> {
    let high = ephemeral_start();
    if high > LOWEST + 1_000 {
        let span = u64::from(high - LOWEST);
        for _ in 0..DRAWS {
            let port = LOWEST + u16::try_from(random_u64() % span).unwrap_or(0);
            let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
            if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
                handed_out.insert(port);
                return Ok(port);
            }
        }
    }
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| HarnessError::io("finding a free port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| HarnessError::io("finding a free port", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_and_below_the_ephemeral_range() {
        let high = ephemeral_start();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let port = free_port().unwrap();
            assert!(
                TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "{port} is taken"
            );
            if high > LOWEST + 1_000 {
                assert!(
                    (LOWEST..high).contains(&port),
                    "{port} not in {LOWEST}..{high}"
                );
            }
            seen.insert(port);
        }
        assert!(seen.len() > 1, "the draw is not random: {seen:?}");
    }
}
