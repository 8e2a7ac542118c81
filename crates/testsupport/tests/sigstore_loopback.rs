//! Two private Sigstores run side by side (each with its own timestamp authority), and no process they start
//! listens anywhere but loopback: the listening TCP sockets of each service process (found through its
//! `/proc/<pid>/fd` socket inodes in `/proc/net/tcp` and `/proc/net/tcp6`) are all on 127.0.0.1 or ::1, except
//! Fulcio v1.8.8's metrics listener (see `assert_loopback_only`).
use std::collections::HashSet;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::thread;

use kibaship_testsupport::sigstore::{SigstoreOptions, TestSigstore};

/// A listening TCP socket: its local address and its inode.
#[derive(Debug)]
struct Listener {
    addr: SocketAddr,
    inode: u64,
}

/// The `socket:[inode]` targets of a process's file descriptors.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {dir}: {e}"));
    entries
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// An address as `/proc/net/tcp{,6}` prints it: 32-bit words in hex, each in host (little-endian) order.
fn parse_proc_addr(text: &str) -> SocketAddr {
    let (ip, port) = text.split_once(':').expect("address:port");
    let port = u16::from_str_radix(port, 16).expect("hex port");
    let words: Vec<[u8; 4]> = (0..ip.len() / 8)
        .map(|i| {
            u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16)
                .expect("hex address word")
                .to_le_bytes()
        })
        .collect();
    let ip = match words.as_slice() {
        [w] => IpAddr::V4(Ipv4Addr::from(*w)),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].into_iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(w);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => panic!("unexpected address {text} in /proc/net/tcp"),
    };
    SocketAddr::new(ip, port)
}

/// Every listening TCP socket of the machine (state 0A), IPv4 and IPv6.
fn listening_sockets() -> Vec<Listener> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if !Path::new(table).exists() {
            continue;
        }
        let text =
            std::fs::read_to_string(table).unwrap_or_else(|e| panic!("reading {table}: {e}"));
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != "0A" {
                continue;
            }
            out.push(Listener {
                addr: parse_proc_addr(fields[1]),
                inode: fields[9].parse().expect("inode"),
            });
        }
    }
    out
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The listening sockets of each process: (pid, address).
fn listeners_of(pids: &[u32]) -> Vec<(u32, SocketAddr)> {
    let all = listening_sockets();
    let mut out = Vec::new();
    for &pid in pids {
        let inodes = socket_inodes(pid);
        out.extend(
            all.iter()
                .filter(|l| inodes.contains(&l.inode))
                .map(|l| (pid, l.addr)),
        );
    }
    out
}

/// `GET path` over plain HTTP/1.0; returns (status line, body).
fn http_get(url: &str, path: &str) -> (String, Vec<u8>) {
    let host = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("{url} is not an http:// URL"));
    let mut stream =
        TcpStream::connect(host).unwrap_or_else(|e| panic!("connecting to {host}: {e}"));
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").expect("sending the request");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("reading the answer");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, answer[split + 4..].to_vec())
}

/// A process's command name (`/proc/<pid>/comm`).
fn command_name(pid: u32) -> String {
    let path = format!("/proc/{pid}/comm");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
        .trim()
        .to_string()
}

/// Asserts that every listening socket of `stack`'s processes is on loopback and that the TSA port is among
/// them (so the check looked at the right processes). Returns the TSA's certificate chain.
///
/// One known exception is allowed and checked: Fulcio v1.8.8 binds its Prometheus listener on all interfaces
/// (`:<metrics-port>`, no flag binds it elsewhere), so the `fulcio` process may hold exactly one such socket.
fn assert_loopback_only(name: &str, stack: &TestSigstore) -> Vec<u8> {
    let pids = stack.process_ids();
    let listeners = listeners_of(&pids);
    let outside: Vec<_> = listeners
        .iter()
        .filter(|(_, addr)| !is_loopback(addr.ip()))
        .map(|(pid, addr)| (command_name(*pid), *pid, *addr))
        .collect();
    let (fulcio_metrics, others): (Vec<_>, Vec<_>) = outside
        .iter()
        .partition(|(command, _, addr)| command == "fulcio" && addr.ip().is_unspecified());
    assert!(
        others.is_empty(),
        "{name}: processes listen outside loopback (command, pid, address): {others:?}; a stale \
         timestamp-server or rekor-server build (upstream's, with its :2112 metrics listener) is rebuilt by \
         `make peers`"
    );
    assert!(
        fulcio_metrics.len() <= 1,
        "{name}: Fulcio listens outside loopback on more than its metrics port: {fulcio_metrics:?}"
    );
    let tsa_port: u16 = stack
        .tsa_url()
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{name}: TSA URL {} is not on 127.0.0.1", stack.tsa_url()));
    assert!(
        listeners.iter().any(|(_, addr)| addr.port() == tsa_port),
        "{name}: the TSA port {tsa_port} is not among the listeners found for pids {pids:?}: {listeners:?}"
    );
    let (status, chain) = http_get(stack.tsa_url(), "/api/v1/timestamp/certchain");
    assert!(
        status.contains(" 200"),
        "{name}: certchain answered {status}"
    );
    assert!(
        String::from_utf8_lossy(&chain)
            .matches("BEGIN CERTIFICATE")
            .count()
            >= 2,
        "{name}: the TSA's chain has fewer than two certificates"
    );
    chain
}

#[test]
fn two_sigstores_run_at_once_and_listen_on_loopback_only() {
    let first = thread::spawn(TestSigstore::start);
    let second = thread::spawn(TestSigstore::start);
    let first = first
        .join()
        .expect("first start thread")
        .expect("start the first Sigstore");
    let second = second
        .join()
        .expect("second start thread")
        .expect("start the second Sigstore");
    assert_ne!(first.tsa_url(), second.tsa_url());

    let first_chain = assert_loopback_only("first", &first);
    let second_chain = assert_loopback_only("second", &second);
    // Each TSA made its own in-memory signer and chain: two servers answered, not one twice.
    assert_ne!(
        first_chain, second_chain,
        "both TSA URLs served the same chain"
    );
}

#[test]
fn sigstore_with_rekor_v1_listens_on_loopback_only() {
    let stack = TestSigstore::start_with(SigstoreOptions {
        rekor_v1: true,
        ..Default::default()
    })
    .expect("start the Sigstore with Rekor v1");
    assert_loopback_only("with Rekor v1", &stack);
    let rekor = stack.rekor_v1_url().expect("a Rekor v1 URL");
    let (status, _) = http_get(rekor, "/api/v1/log");
    assert!(status.contains(" 200"), "Rekor v1 answered {status}");
}
