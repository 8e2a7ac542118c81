//! What the client's integration tests share: a tiny HTTP/1.1 server on loopback for tests that replay recorded
//! registry answers or script odd ones, the check of an error that ends retries, and skopeo ([`skopeo`]).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod skopeo;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use kibaship_oci::Error;

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(&self.target)
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the answer one byte at a time, pausing this long before each (a hostile, trickling server).
    pub trickle: Option<std::time::Duration>,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            trickle: None,
        }
    }
    /// Sends this answer one byte every `every` (never stalling long enough for an idle-read timeout).
    pub fn trickle(mut self, every: std::time::Duration) -> Reply {
        self.trickle = Some(every);
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::new(status)
            .header("Content-Type", "application/json")
            .body(body)
    }
    /// A recorded `curl -si` answer from `testdata/oci/recorded/` (status line, headers, blank line, body).
    pub fn recorded(name: &str) -> Reply {
        let text = std::fs::read_to_string(testdata().join("recorded").join(name)).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let mut reply = Reply::new(status).body(body.as_bytes().to_vec());
        for line in lines {
            let (k, v) = line.split_once(':').unwrap();
            if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("date") {
                reply
                    .headers
                    .push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        reply
    }
}

/// `err` is `RetriesExhausted` after `attempts` attempts at `registry`, its last cause mentioning each of
/// `causes`; `label` names the case in failure messages.
pub fn assert_retries_exhausted(
    err: &Error,
    attempts: u32,
    registry: &str,
    causes: &[&str],
    label: &str,
) {
    match err {
        Error::RetriesExhausted {
            attempts: made,
            last,
            registry: named,
            ..
        } => {
            assert_eq!(*made, attempts, "{label}");
            assert_eq!(named, registry, "{label}");
            for cause in causes {
                assert!(
                    last.contains(cause),
                    "{label}: last cause {last:?} should mention {cause:?}"
                );
            }
        }
        other => panic!("{label}: expected RetriesExhausted, got {other}"),
    }
}

pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/oci")
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// The server. Stops accepting when dropped.
pub struct ReplayServer {
    host: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl ReplayServer {
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> ReplayServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let seen = seen.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let seen = seen.clone();
                    let handler = handler.clone();
                    thread::spawn(move || serve_connection(conn, &seen, &*handler));
                }
            });
        }
        ReplayServer { host, seen, stop }
    }

    pub fn host(&self) -> String {
        self.host.clone()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.target.starts_with(path_prefix))
            .count()
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
    }
}

fn serve_connection(conn: TcpStream, seen: &Mutex<Vec<Seen>>, handler: &Handler) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, target) = (method.to_string(), target.to_string());
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Seen {
            method: method.clone(),
            target,
            headers,
            body,
        };
        seen.lock().unwrap().push(request.clone());
        let reply = handler(&request);
        let mut out = format!("HTTP/1.1 {} X\r\n", reply.status);
        for (k, v) in &reply.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !reply
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if method != "HEAD" {
            bytes.extend_from_slice(&reply.body);
        }
        match reply.trickle {
            None => {
                if writer.write_all(&bytes).is_err() {
                    return;
                }
            }
            Some(every) => {
                for byte in bytes {
                    thread::sleep(every);
                    if writer.write_all(&[byte]).is_err() {
                        return;
                    }
                }
            }
        }
    }
}
