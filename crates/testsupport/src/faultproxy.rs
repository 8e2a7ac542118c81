//! A fault-injecting HTTP reverse proxy on 127.0.0.1 (or, with [`FaultProxy::start_on`], another address of
//! this host, such as the test cluster's node address that Pods reach), in front of a plain-HTTP registry.
//!
//! Each request the proxy receives takes the next [`Fault`] of its script (or the one persistent fault) and is
//! answered accordingly; once the script runs out, requests pass through unchanged. The proxy keeps the
//! client's `Host` header, so the registry's `Location` headers point back at the proxy. It runs on its own
//! threads: usable from `#[test]` and from inside `#[tokio::test]`.
//!
//! ```no_run
//! use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
//! use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
//! let registry = TestRegistry::start(RegistryMode::Plain)?;
//! let proxy = FaultProxy::start(&registry.host(), vec![Fault::TooManyRequests { retry_after_secs: 1 }])?;
//! // point the client under test at proxy.host(); the first request gets 429, the rest pass
//! # Ok::<(), kibaship_testsupport::HarnessError>(())
//! ```

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};

use crate::HarnessError;
use crate::http::{self, Head};
use crate::loopback::{LoopbackServer, read_request};

/// What the proxy does to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `429 Too Many Requests` with `Retry-After: <secs>`; the registry is not asked.
    TooManyRequests {
        /// The `Retry-After` value in seconds.
        retry_after_secs: u64,
    },
    /// Answer `503 Service Unavailable`; the registry is not asked.
    ServiceUnavailable,
    /// Forward the request, send the first half of the registry's response, then reset the connection (RST).
    ConnectionReset,
    /// Forward the request; send the response head at once, then the body in up to 4 pieces, each after a
    /// pause of `delay_ms` (a response without a body is sent after one pause).
    SlowBody {
        /// The pause before each piece, in milliseconds.
        delay_ms: u64,
    },
    /// Forward the request; send the head (with the full `Content-Length`) and only half the body, then close.
    /// A response without a body is cut in the middle of its head.
    TruncatedBody,
    /// Forward the request, then send the whole response (head and body) `bytes` bytes at a time with a pause
    /// of `every_ms` before each piece: a registry that never stalls long enough for an idle-read timeout but
    /// would take minutes to finish.
    Trickle {
        /// Bytes per piece (at least 1).
        bytes: usize,
        /// The pause before each piece, in milliseconds.
        every_ms: u64,
    },
    /// Answer `404 Not Found` with a registry-style error body; the registry is not asked.
    NotFound,
    /// Forward the request and relay the response unchanged.
    Pass,
}

struct Shared {
    upstream: String,
    script: Mutex<VecDeque<Fault>>,
    persistent: Option<Fault>,
    /// Only requests whose target contains this are faulted; the others pass.
    only: Option<String>,
    seen: AtomicUsize,
}

impl Shared {
    fn next_fault(&self, head: &Head) -> Fault {
        if let Some(only) = &self.only {
            let target = head.start_line.split_whitespace().nth(1).unwrap_or("");
            if !target.contains(only.as_str()) {
                return Fault::Pass;
            }
        }
        if let Some(fault) = &self.persistent {
            return fault.clone();
        }
        self.script
            .lock()
            .map(|mut s| s.pop_front())
            .ok()
            .flatten()
            .unwrap_or(Fault::Pass)
    }
}

/// A running fault proxy (its own threads; stopped on drop).
pub struct FaultProxy {
    server: LoopbackServer,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("host", &self.server.host())
            .field("upstream", &self.shared.upstream)
            .field("requests_seen", &self.requests_seen())
            .finish()
    }
}

impl FaultProxy {
    /// Proxies to `upstream_host` ("127.0.0.1:PORT", plain HTTP), applying `script` to requests in order;
    /// after the script runs out, requests pass.
    pub fn start(upstream_host: &str, script: Vec<Fault>) -> Result<FaultProxy, HarnessError> {
        Self::launch(upstream_host, script.into(), None, None)
    }

    /// Proxies to `upstream_host`, applying `fault` to every request.
    pub fn start_persistent(upstream_host: &str, fault: Fault) -> Result<FaultProxy, HarnessError> {
        Self::launch(upstream_host, VecDeque::new(), Some(fault), None)
    }

    /// Proxies to `upstream_host`, applying `fault` to every request whose target contains `path_part`
    /// (`/blobs/`, say) and passing the others.
    pub fn start_for_paths(
        upstream_host: &str,
        path_part: &str,
        fault: Fault,
    ) -> Result<FaultProxy, HarnessError> {
        Self::launch(
            upstream_host,
            VecDeque::new(),
            Some(fault),
            Some(path_part.to_string()),
        )
    }

    /// [`FaultProxy::start`] listening on `ip` instead of 127.0.0.1: `script` applies to the requests whose
    /// target contains `path_part` (all of them when it is empty), in order; the others pass.
    pub fn start_on(
        ip: std::net::IpAddr,
        upstream_host: &str,
        path_part: &str,
        script: Vec<Fault>,
    ) -> Result<FaultProxy, HarnessError> {
        Self::launch_on(
            ip,
            upstream_host,
            script.into(),
            None,
            Some(path_part.to_string()).filter(|p| !p.is_empty()),
        )
    }

    fn launch(
        upstream: &str,
        script: VecDeque<Fault>,
        persistent: Option<Fault>,
        only: Option<String>,
    ) -> Result<FaultProxy, HarnessError> {
        Self::launch_on(
            std::net::Ipv4Addr::LOCALHOST.into(),
            upstream,
            script,
            persistent,
            only,
        )
    }

    fn launch_on(
        ip: std::net::IpAddr,
        upstream: &str,
        script: VecDeque<Fault>,
        persistent: Option<Fault>,
        only: Option<String>,
    ) -> Result<FaultProxy, HarnessError> {
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            script: Mutex::new(script),
            persistent,
            only,
            seen: AtomicUsize::new(0),
        });
        let serve_shared = Arc::clone(&shared);
        let server = LoopbackServer::start_on(ip, "fault proxy", move |stream| {
            serve_connection(stream, &serve_shared)
        })?;
        Ok(FaultProxy { server, shared })
    }

    /// "IP:PORT" of the proxy.
    pub fn host(&self) -> String {
        self.server.host().to_string()
    }

    /// How many requests reached the proxy so far (faulted or passed).
    pub fn requests_seen(&self) -> usize {
        self.shared.seen.load(Ordering::SeqCst)
    }

    /// How many faults of the script are still to be applied.
    pub fn script_left(&self) -> usize {
        self.shared.script.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// A response ready to be written: head lines and body.
struct Prepared {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Prepared {
    fn head_bytes(&self, body_len: usize) -> Vec<u8> {
        let mut text = format!("{}\r\n", self.status_line);
        for (k, v) in &self.headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        if !self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            text.push_str(&format!("Content-Length: {body_len}\r\n"));
        }
        text.push_str("\r\n");
        text.into_bytes()
    }
}

fn local_response(
    status: u16,
    reason: &str,
    extra: Vec<(String, String)>,
    code: &str,
    message: &str,
) -> Prepared {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]})
        .to_string()
        .into_bytes();
    let mut headers = vec![
        (
            "Content-Type".to_string(),
            "application/json; charset=utf-8".to_string(),
        ),
        ("Content-Length".to_string(), body.len().to_string()),
    ];
    headers.extend(extra);
    Prepared {
        status_line: format!("HTTP/1.1 {status} {reason}"),
        headers,
        body,
    }
}

fn serve_connection(client: TcpStream, shared: &Shared) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(120)));
    let _ = client.set_nodelay(true);
    let Ok(writer) = client.try_clone() else {
        return;
    };
    let mut writer = writer;
    let mut reader = BufReader::new(client);
    loop {
        // Not HTTP/1 (e.g. a TLS ClientHello from a client probing for HTTPS): answer 400 in plain HTTP and close,
        // as a plain registry (Go's net/http) does. A TLS client then reads a record that is not TLS, which Go's
        // clients (containerd in BuildKit, go-containerregistry) take as the sign to fall back to plain HTTP; a
        // bare close reads as EOF, which BuildKit's push does not fall back on.
        match std::io::BufRead::fill_buf(&mut reader) {
            Ok(bytes) if bytes.first().is_some_and(u8::is_ascii_uppercase) => {}
            Ok(bytes) if !bytes.is_empty() => {
                let _ = writer.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 11\r\n\r\nBad Request",
                );
                let _ = writer.flush();
                return;
            }
            _ => return,
        }
        let Some((head, body)) = read_request(&mut reader) else {
            return;
        };
        shared.seen.fetch_add(1, Ordering::SeqCst);
        let close_requested = head
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let fault = shared.next_fault(&head);
        let keep_open = match fault {
            Fault::TooManyRequests { retry_after_secs } => write_all(
                &mut writer,
                &local_response(
                    429,
                    "Too Many Requests",
                    vec![("Retry-After".into(), retry_after_secs.to_string())],
                    "TOOMANYREQUESTS",
                    "injected by the kibaship fault proxy",
                ),
            ),
            Fault::ServiceUnavailable => write_all(
                &mut writer,
                &local_response(
                    503,
                    "Service Unavailable",
                    vec![],
                    "UNAVAILABLE",
                    "injected by the kibaship fault proxy",
                ),
            ),
            Fault::NotFound => write_all(
                &mut writer,
                &local_response(
                    404,
                    "Not Found",
                    vec![],
                    "NAME_UNKNOWN",
                    "injected by the kibaship fault proxy",
                ),
            ),
            Fault::Pass => match forward(shared, &head, &body) {
                Some(response) => write_all(&mut writer, &response),
                None => false,
            },
            Fault::ConnectionReset => {
                if let Some(response) = forward(shared, &head, &body) {
                    let mut bytes = response.head_bytes(response.body.len());
                    bytes.extend_from_slice(&response.body);
                    let _ = writer.write_all(&bytes[..bytes.len() / 2]);
                    let _ = writer.flush();
                }
                // SO_LINGER with a zero timeout turns the close (once both handles drop) into a reset (RST).
                let _ = setsockopt(
                    &writer,
                    sockopt::Linger,
                    &nix::libc::linger {
                        l_onoff: 1,
                        l_linger: 0,
                    },
                );
                return;
            }
            Fault::SlowBody { delay_ms } => match forward(shared, &head, &body) {
                Some(response) => {
                    write_slowly(&mut writer, &response, Duration::from_millis(delay_ms))
                }
                None => false,
            },
            Fault::Trickle { bytes, every_ms } => match forward(shared, &head, &body) {
                Some(response) => {
                    let mut wire = response.head_bytes(response.body.len());
                    if !head.start_line.starts_with("HEAD ") {
                        wire.extend_from_slice(&response.body);
                    }
                    trickle(
                        &mut writer,
                        &wire,
                        bytes.max(1),
                        Duration::from_millis(every_ms),
                    )
                }
                None => false,
            },
            Fault::TruncatedBody => {
                if let Some(response) = forward(shared, &head, &body) {
                    let head_bytes = response.head_bytes(response.body.len());
                    if response.body.is_empty() {
                        let _ = writer.write_all(&head_bytes[..head_bytes.len() / 2]);
                    } else {
                        let _ = writer.write_all(&head_bytes);
                        let _ = writer.write_all(&response.body[..response.body.len() / 2]);
                    }
                    let _ = writer.flush();
                }
                let _ = writer.shutdown(Shutdown::Both);
                false
            }
        };
        if !keep_open || close_requested {
            let _ = writer.shutdown(Shutdown::Write);
            return;
        }
    }
}

fn write_all(writer: &mut TcpStream, response: &Prepared) -> bool {
    let mut bytes = response.head_bytes(response.body.len());
    bytes.extend_from_slice(&response.body);
    writer
        .write_all(&bytes)
        .and_then(|()| writer.flush())
        .is_ok()
}

fn write_slowly(writer: &mut TcpStream, response: &Prepared, delay: Duration) -> bool {
    let head = response.head_bytes(response.body.len());
    if response.body.is_empty() {
        thread::sleep(delay);
        return writer
            .write_all(&head)
            .and_then(|()| writer.flush())
            .is_ok();
    }
    if writer
        .write_all(&head)
        .and_then(|()| writer.flush())
        .is_err()
    {
        return false;
    }
    let piece = response.body.len().div_ceil(4);
    trickle(writer, &response.body, piece.max(1), delay)
}

/// Writes `wire` `piece` bytes at a time, pausing `every` before each; stops when the client goes away.
fn trickle(writer: &mut TcpStream, wire: &[u8], piece: usize, every: Duration) -> bool {
    for chunk in wire.chunks(piece) {
        thread::sleep(every);
        if writer
            .write_all(chunk)
            .and_then(|()| writer.flush())
            .is_err()
        {
            return false;
        }
    }
    true
}

/// Sends the request to the upstream registry on a fresh connection and reads the whole response.
/// `None` when the upstream cannot be reached (the client then sees its connection closed).
fn forward(shared: &Shared, head: &Head, body: &[u8]) -> Option<Prepared> {
    let mut parts = head.start_line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut upstream = TcpStream::connect(&shared.upstream).ok()?;
    let _ = upstream.set_read_timeout(Some(Duration::from_secs(120)));
    let mut request = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in &head.headers {
        if [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "content-length",
            "proxy-connection",
        ]
        .iter()
        .any(|h| k.eq_ignore_ascii_case(h))
        {
            continue;
        }
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method.as_str(), "PUT" | "POST" | "PATCH") {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("Connection: close\r\n\r\n");
    upstream.write_all(request.as_bytes()).ok()?;
    upstream.write_all(body).ok()?;
    upstream.flush().ok()?;
    let mut reader = BufReader::new(upstream);
    let response_head = http::read_head(&mut reader).ok()??;
    let status = http::parse_status(&response_head).ok()?;
    let kind = http::response_body_kind(&response_head, &method, status).ok()?;
    let is_head = method.eq_ignore_ascii_case("HEAD");
    let response_body = http::read_body(&mut reader, kind).ok()?;
    let headers = response_head
        .headers
        .iter()
        .filter(|(k, _)| {
            !["connection", "keep-alive", "transfer-encoding"]
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
                // The body may have been de-chunked: its length is recomputed (HEAD keeps the upstream's).
                && (is_head || !k.eq_ignore_ascii_case("content-length"))
        })
        .cloned()
        .collect();
    Some(Prepared {
        status_line: response_head.start_line.clone(),
        headers,
        body: response_body,
    })
}
