//! `kibaship-step notify-receiver`: a small receiver of the notifications [`crate::notify`] sends, the platform's
//! side of the contract in docs/tekton.md. It is what `make demo` runs on loopback, and an example of the check a
//! platform makes.
//!
//! * [`RequestHead::parse`] reads an HTTP/1.1 request head, bounded ([`MAX_HEAD_BYTES`]; pure);
//! * [`Receiver::receive`] decides on one request (pure but for the idempotency keys it remembers): a `POST`
//!   whose [`crate::notify::verify_signature`] check passes (the very function that defines the sender's
//!   signature, timestamp within [`crate::notify::TIMESTAMP_TOLERANCE`]), then a body that parses as a
//!   [`ReceivedNotification`] of this event and version, whose `Idempotency-Key` is its PipelineRun's UID. A
//!   repeated key is accepted again and recorded once;
//! * [`serve`] answers connections one at a time on a `TcpListener`, over plain HTTP or, with
//!   [`ServeOptions::tls`] ([`tls_config`]), HTTPS: `204` accepted, `400` malformed, `401` a bad signature or
//!   timestamp, `405` not a POST, `411` no `Content-Length`, `413` too large. Each answer closes the connection.
//!
//! Refusals name what failed, never the signature, the key or the body.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use serde::{Deserialize, Serialize};

use crate::notify::{
    EVENT, HmacKey, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER,
    verify_signature,
};

/// Largest request head (request line and headers) read.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest body read (a notification is a few KiB: at most 64 attestation and 64 signature references).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long one connection may take to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request is not an acceptable HTTP request; each has its status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The head does not parse (request line, header syntax, `Content-Length`).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// Not a `POST`.
    #[error("method {0} is not POST")]
    Method(String),
    /// No `Content-Length` (a chunked body is not read).
    #[error("no Content-Length (a chunked body is not accepted)")]
    LengthRequired,
    /// The head or the body is larger than accepted.
    #[error("the {what} is larger than the {limit} bytes accepted")]
    TooLarge { what: &'static str, limit: usize },
    /// The TLS handshake failed (the client distrusts the certificate, speaks plain HTTP, ...): nothing can be
    /// answered.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
}

impl HttpError {
    /// The HTTP status answered.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) | HttpError::Tls(_) => 400,
            HttpError::Method(_) => 405,
            HttpError::LengthRequired => 411,
            HttpError::TooLarge { .. } => 413,
        }
    }
}

/// A parsed HTTP/1.x request head; header names are lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// Parses `head`: the bytes before the empty line (the `\r\n\r\n` itself may be included).
    pub fn parse(head: &[u8]) -> Result<RequestHead, HttpError> {
        let malformed = |what: &str| HttpError::Malformed(what.to_string());
        if head.len() > MAX_HEAD_BYTES {
            return Err(HttpError::TooLarge {
                what: "request head",
                limit: MAX_HEAD_BYTES,
            });
        }
        let text = std::str::from_utf8(head).map_err(|_| malformed("the head is not UTF-8"))?;
        let mut lines = text.trim_end_matches("\r\n").split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(
                "the request line is not `METHOD target HTTP/1.x`",
            ));
        };
        if method.is_empty()
            || !method.bytes().all(|b| b.is_ascii_uppercase())
            || !target.starts_with('/')
            || !matches!(version, "HTTP/1.1" | "HTTP/1.0")
        {
            return Err(malformed(
                "the request line is not `METHOD target HTTP/1.x`",
            ));
        }
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| malformed("a header line has no `:`"))?;
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b));
            if !valid_name {
                return Err(malformed("a header name is not a token"));
            }
            if value.chars().any(|c| c.is_control() && c != '\t') {
                return Err(malformed("a header value holds a control character"));
            }
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        Ok(RequestHead {
            method: method.to_string(),
            target: target.to_string(),
            headers,
        })
    }

    /// The value of header `name` (any case); `None` when absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body's length: `Content-Length`, at most [`MAX_BODY_BYTES`]; a chunked body is refused.
    pub fn content_length(&self) -> Result<usize, HttpError> {
        if self.header("transfer-encoding").is_some() {
            return Err(HttpError::LengthRequired);
        }
        let lengths: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n == "content-length")
            .map(|(_, v)| v.as_str())
            .collect();
        let [length] = lengths.as_slice() else {
            return match lengths.len() {
                0 => Err(HttpError::LengthRequired),
                _ => Err(HttpError::Malformed(
                    "Content-Length is given more than once".into(),
                )),
            };
        };
        if length.is_empty() || length.len() > 12 || !length.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HttpError::Malformed(
                "Content-Length is not a decimal number".into(),
            ));
        }
        let length: usize = length
            .parse()
            .map_err(|_| HttpError::Malformed("Content-Length is not a decimal number".into()))?;
        if length > MAX_BODY_BYTES {
            return Err(HttpError::TooLarge {
                what: "body",
                limit: MAX_BODY_BYTES,
            });
        }
        Ok(length)
    }
}

/// The PipelineRun a received notification is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedPipelineRun {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

/// Verdicts in a received notification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedVerdicts {
    #[serde(default)]
    pub scan: Option<String>,
}

/// A notification as the receiver reads it, after its signature was checked (unknown fields are ignored, so a
/// newer sender's additions do not break it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedNotification {
    pub version: u32,
    pub event: String,
    pub pipeline_run: ReceivedPipelineRun,
    pub status: String,
    #[serde(default)]
    pub failure_kind: Option<String>,
    #[serde(default)]
    pub failed_task: Option<String>,
    #[serde(default)]
    pub tasks: BTreeMap<String, String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub verdicts: ReceivedVerdicts,
    #[serde(default)]
    pub attestations: Vec<String>,
    #[serde(default)]
    pub signatures: Vec<String>,
}

impl ReceivedNotification {
    /// The event in a few lines of text, for a log; control characters in values are escaped.
    pub fn describe(&self) -> Vec<String> {
        let shown = |v: &Option<String>| {
            v.as_deref()
                .map(|s| s.escape_debug().to_string())
                .unwrap_or_else(|| "-".into())
        };
        let run = &self.pipeline_run;
        let mut lines = vec![
            format!(
                "pipelineRun {}/{} (uid {}): {}{}",
                run.namespace.escape_debug(),
                run.name.escape_debug(),
                run.uid.escape_debug(),
                self.status.escape_debug(),
                match (&self.failure_kind, &self.failed_task) {
                    (Some(kind), Some(task)) => format!(
                        ", failure kind {} (task {})",
                        kind.escape_debug(),
                        task.escape_debug()
                    ),
                    (Some(kind), None) => format!(", failure kind {}", kind.escape_debug()),
                    _ => String::new(),
                }
            ),
            format!(
                "tasks: {}",
                self.tasks
                    .iter()
                    .map(|(t, s)| format!("{}={}", t.escape_debug(), s.escape_debug()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            format!("image: {}", shown(&self.image)),
            format!("digest: {}", shown(&self.digest)),
            format!("scan verdict: {}", shown(&self.verdicts.scan)),
        ];
        lines.extend(
            self.attestations
                .iter()
                .map(|a| format!("attestation: {}", a.escape_debug())),
        );
        lines.extend(
            self.signatures
                .iter()
                .map(|s| format!("signature: {}", s.escape_debug())),
        );
        lines
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Not an acceptable HTTP request.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The signature or the timestamp check failed (401).
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Correctly signed, but not a notification this receiver understands (400).
    #[error("the body is not a kibaship notification: {0}")]
    Body(String),
}

impl Refusal {
    /// The HTTP status answered.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Http(e) => e.status(),
            Refusal::Signature(_) => 401,
            Refusal::Body(_) => 400,
        }
    }
}

/// An accepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// The first notification with this idempotency key: the outcome to record.
    New(Box<ReceivedNotification>),
    /// A retry of one already recorded (its UID).
    Duplicate(String),
}

/// The receiver's state: the key, the accepted clock difference and the idempotency keys seen.
#[derive(Debug)]
pub struct Receiver {
    key: HmacKey,
    tolerance: Duration,
    seen: HashSet<String>,
}

impl Receiver {
    /// A receiver checking signatures with `key`, timestamps within `tolerance` of its clock.
    pub fn new(key: HmacKey, tolerance: Duration) -> Receiver {
        Receiver {
            key,
            tolerance,
            seen: HashSet::new(),
        }
    }

    /// Decides on one request at time `now`: the signature first, over the raw body, then the body.
    pub fn receive(
        &mut self,
        head: &RequestHead,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Accepted, Refusal> {
        if head.method != "POST" {
            return Err(HttpError::Method(head.method.escape_debug().to_string()).into());
        }
        let timestamp = head
            .header(TIMESTAMP_HEADER)
            .ok_or(SignatureError::MissingHeader(TIMESTAMP_HEADER))?;
        let signature = head
            .header(SIGNATURE_HEADER)
            .ok_or(SignatureError::MissingHeader(SIGNATURE_HEADER))?;
        verify_signature(&self.key, timestamp, signature, body, now, self.tolerance)?;
        let notification: ReceivedNotification =
            serde_json::from_slice(body).map_err(|e| Refusal::Body(e.to_string()))?;
        if notification.event != EVENT || notification.version != 1 {
            return Err(Refusal::Body(format!(
                "event {:?} version {}, want {EVENT:?} version 1",
                notification.event, notification.version
            )));
        }
        let key = head.header(IDEMPOTENCY_HEADER).unwrap_or("");
        if key.is_empty() || key != notification.pipeline_run.uid {
            return Err(Refusal::Body(format!(
                "the {IDEMPOTENCY_HEADER} header is not the PipelineRun's UID"
            )));
        }
        if self.seen.contains(key) {
            return Ok(Accepted::Duplicate(key.to_string()));
        }
        self.seen.insert(key.to_string());
        Ok(Accepted::New(Box::new(notification)))
    }
}

/// One request handled by [`serve`].
#[derive(Debug)]
pub struct Handled {
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// The status answered.
    pub status: u16,
    /// What was decided.
    pub outcome: Result<(Accepted, Vec<u8>), Refusal>,
}

/// Why the receiver stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiverError {
    /// A parameter is unusable (the key file, the listen address).
    #[error("{0}")]
    Parameter(String),
    /// Listening or writing what was received failed.
    #[error("{what}: {cause}")]
    Io {
        what: String,
        #[source]
        cause: std::io::Error,
    },
}

impl ReceiverError {
    /// The exit code: 64 bad parameters, 74 I/O.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReceiverError::Parameter(_) => 64,
            ReceiverError::Io { .. } => 74,
        }
    }
}

/// Where the receiver records accepted notifications, and how it listens.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Stop after this many new (not duplicate) notifications; `None`: serve until killed.
    pub exit_after: Option<usize>,
    /// Append each new notification's body (one JSON document per line) to this file.
    pub events_file: Option<PathBuf>,
    /// Serve HTTPS with this configuration ([`tls_config`]); `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// The HTTPS configuration of a receiver serving the PEM certificate chain `cert_pem` (leaf first) with the PEM
/// private key `key_pem` (PKCS#8, PKCS#1 or SEC1): TLS 1.2 and 1.3, HTTP/1.1 only (ALPN), no client certificates.
pub fn tls_config(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, ReceiverError> {
    let bad =
        |what: &str, e: &dyn std::fmt::Display| ReceiverError::Parameter(format!("{what}: {e}"));
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("--tls-cert", &e))?;
    if certs.is_empty() {
        return Err(ReceiverError::Parameter(
            "--tls-cert: no PEM CERTIFICATE in the file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad("--tls-key", &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("TLS", &e))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| bad("--tls-cert/--tls-key", &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One accepted connection, plain or TLS: what [`read_request`] and [`answer`] need.
trait Connection: Read + Write {
    /// Ends what this side sends (TLS: close_notify first), leaving the read side open.
    fn close_write(&mut self);
    /// Bounds the wait of the next reads.
    fn set_read_timeout(&mut self, timeout: Duration);
}

impl Connection for TcpStream {
    fn close_write(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
    fn set_read_timeout(&mut self, timeout: Duration) {
        let _ = TcpStream::set_read_timeout(self, Some(timeout));
    }
}

impl Connection for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn close_write(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
        let _ = self.sock.shutdown(std::net::Shutdown::Write);
    }
    fn set_read_timeout(&mut self, timeout: Duration) {
        let _ = self.sock.set_read_timeout(Some(timeout));
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        _ => "Error",
    }
}

/// Reads one request's head and body from `stream`, bounded.
fn read_request(stream: &mut impl Read) -> Result<(RequestHead, Vec<u8>), HttpError> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(HttpError::TooLarge {
                what: "request head",
                limit: MAX_HEAD_BYTES,
            });
        }
        let n = stream
            .read(&mut chunk)
            .map_err(|e| HttpError::Malformed(format!("reading the request: {e}")))?;
        if n == 0 {
            return Err(HttpError::Malformed(
                "the connection closed before the end of the head".into(),
            ));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    };
    let head = RequestHead::parse(buf.get(..head_end).unwrap_or(&[]))?;
    if head.method != "POST" {
        return Err(HttpError::Method(head.method.escape_debug().to_string()));
    }
    let length = head.content_length()?;
    let mut body = buf.split_off(head_end);
    if body.len() > length {
        return Err(HttpError::Malformed(
            "more bytes than Content-Length (pipelining is not supported)".into(),
        ));
    }
    let missing = length - body.len();
    let read = stream
        .take(missing as u64)
        .read_to_end(&mut body)
        .map_err(|e| HttpError::Malformed(format!("reading the body: {e}")))?;
    if read != missing {
        return Err(HttpError::Malformed(format!(
            "the body ended after {} of {length} bytes",
            body.len()
        )));
    }
    Ok((head, body))
}

fn answer(stream: &mut impl Connection, status: u16, text: &str) {
    let response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        reason(status),
        text.len()
    );
    // A client that went away does not stop the receiver.
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    // Closing with unread input would reset the connection and could destroy the answer before the client reads
    // it: the write side is closed first and a bounded amount of what the client still sends is discarded.
    stream.close_write();
    stream.set_read_timeout(Duration::from_secs(1));
    let _ = std::io::copy(
        &mut Read::take(&mut *stream, MAX_BODY_BYTES as u64),
        &mut std::io::sink(),
    );
}

/// Serves `listener` one connection at a time, calling `report` for each request, until `options.exit_after`
/// new notifications were accepted (or forever).
pub fn serve(
    listener: &TcpListener,
    receiver: &mut Receiver,
    options: &ServeOptions,
    report: &mut dyn FnMut(&Handled),
) -> Result<(), ReceiverError> {
    let mut accepted = 0usize;
    if options.exit_after == Some(0) {
        return Ok(());
    }
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            // A connection that failed before it was accepted (reset, out of descriptors) is skipped.
            Err(_) => continue,
        };
        let peer = stream.peer_addr().ok();
        let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
        let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
        let new = match &options.tls {
            None => handle(stream, peer, receiver, options, report)?,
            Some(config) => {
                let connection = rustls::ServerConnection::new(Arc::clone(config))
                    .map_err(|e| ReceiverError::Parameter(format!("TLS: {e}")))?;
                let mut tls = rustls::StreamOwned::new(connection, stream);
                // The handshake first, so that a client that distrusts the certificate (or speaks plain HTTP)
                // is reported as such rather than as a malformed request.
                let mut handshake = Ok(());
                while handshake.is_ok() && tls.conn.is_handshaking() {
                    handshake = tls.conn.complete_io(&mut tls.sock).map(|_| ());
                }
                match handshake {
                    Ok(()) => handle(tls, peer, receiver, options, report)?,
                    Err(e) => {
                        report(&Handled {
                            peer,
                            status: 400,
                            outcome: Err(Refusal::Http(HttpError::Tls(e.to_string()))),
                        });
                        let _ = tls.sock.shutdown(std::net::Shutdown::Both);
                        false
                    }
                }
            }
        };
        if new {
            accepted += 1;
            if options.exit_after.is_some_and(|n| accepted >= n) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Reads, decides on, records and answers the one request of `stream`; `true` for a new notification.
fn handle(
    mut stream: impl Connection,
    peer: Option<SocketAddr>,
    receiver: &mut Receiver,
    options: &ServeOptions,
    report: &mut dyn FnMut(&Handled),
) -> Result<bool, ReceiverError> {
    let outcome = read_request(&mut stream)
        .map_err(Refusal::from)
        .and_then(|(head, body)| {
            receiver
                .receive(&head, &body, SystemTime::now())
                .map(|a| (a, body))
        });
    let status = match &outcome {
        Ok(_) => 204,
        Err(refusal) => refusal.status(),
    };
    if let (Ok((Accepted::New(_), body)), Some(path)) = (&outcome, &options.events_file) {
        append_line(path, body)?;
    }
    let text = match &outcome {
        Ok(_) => String::new(),
        Err(refusal) => format!("{refusal}\n"),
    };
    let new = matches!(outcome, Ok((Accepted::New(_), _)));
    // Reported before the answer, so that what the client learns is already in the receiver's log.
    report(&Handled {
        peer,
        status,
        outcome,
    });
    answer(&mut stream, status, &text);
    Ok(new)
}

fn append_line(path: &std::path::Path, body: &[u8]) -> Result<(), ReceiverError> {
    let io = |cause| ReceiverError::Io {
        what: format!("events file {}", path.display()),
        cause,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    let mut line = body.to_vec();
    line.push(b'\n');
    file.write_all(&line).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{NotifyInputs, TIMESTAMP_TOLERANCE, signature};

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn body() -> Vec<u8> {
        NotifyInputs {
            pipeline_run_name: "web-x7k2".into(),
            pipeline_run_namespace: "builds".into(),
            pipeline_run_uid: "6b3c7a4e-1f0d-4c55-9b7e-2d8f0a1c9e11".into(),
            aggregate_status: "Succeeded".into(),
            task_statuses: vec!["build=Succeeded".into(), "scan=Succeeded".into()],
            image: "registry.local:5000/kibaship/acme/web:960ef4fb".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            scan_verdict: "pass".into(),
            attestations: vec!["registry.local:5000/kibaship/acme/web:sha256-aa.att".into()],
            ..NotifyInputs::default()
        }
        .notification()
        .expect("valid")
        .to_json()
    }

    fn head(ts: &str, sig: &str, uid: &str) -> RequestHead {
        let text = format!(
            "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Kibaship-Timestamp: {ts}\r\n\
             X-Kibaship-Signature: {sig}\r\nIdempotency-Key: {uid}\r\nContent-Length: 10\r\n\r\n"
        );
        RequestHead::parse(text.as_bytes()).expect("head")
    }

    #[test]
    fn a_signed_notification_is_accepted_once_and_deduplicated() {
        let key = HmacKey::new(KEY).expect("key");
        let now = SystemTime::now();
        let ts = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            .to_string();
        let body = body();
        let uid = "6b3c7a4e-1f0d-4c55-9b7e-2d8f0a1c9e11";
        let sig = signature(&key, &ts, &body);
        let mut receiver = Receiver::new(key, TIMESTAMP_TOLERANCE);
        let Ok(Accepted::New(n)) = receiver.receive(&head(&ts, &sig, uid), &body, now) else {
            panic!("not accepted")
        };
        assert_eq!(n.pipeline_run.uid, uid);
        assert_eq!(n.verdicts.scan.as_deref(), Some("pass"));
        assert_eq!(n.status, "succeeded");
        let lines = n.describe();
        assert!(lines.iter().any(|l| l == "scan verdict: pass"), "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l == "attestation: registry.local:5000/kibaship/acme/web:sha256-aa.att"),
            "{lines:?}"
        );
        assert_eq!(
            receiver.receive(&head(&ts, &sig, uid), &body, now),
            Ok(Accepted::Duplicate(uid.to_string()))
        );
        // Signed, but the idempotency key is not the run's UID.
        let e = receiver
            .receive(&head(&ts, &sig, "another"), &body, now)
            .expect_err("key mismatch");
        assert_eq!(e.status(), 400);
        // Signed, but not a notification.
        let junk = br#"{"hello":1}"#;
        let e = receiver
            .receive(
                &head(&ts, &signature(&receiver.key, &ts, junk), uid),
                junk,
                now,
            )
            .expect_err("junk");
        assert_eq!(e.status(), 400, "{e}");
    }

    #[test]
    fn refusals_carry_their_status() {
        let key = HmacKey::new(KEY).expect("key");
        let now = SystemTime::now();
        let ts = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            .to_string();
        let body = body();
        let sig = signature(&key, &ts, &body);
        let mut receiver = Receiver::new(key, TIMESTAMP_TOLERANCE);
        let mut tampered = body.clone();
        if let Some(b) = tampered.iter_mut().find(|b| **b == b'p') {
            *b = b'P';
        }
        let e = receiver
            .receive(&head(&ts, &sig, "u"), &tampered, now)
            .expect_err("tampered");
        assert_eq!(
            (e.status(), e),
            (401, Refusal::Signature(SignatureError::Mismatch))
        );
        let no_sig = RequestHead::parse(
            format!("POST / HTTP/1.1\r\nX-Kibaship-Timestamp: {ts}\r\n\r\n").as_bytes(),
        )
        .expect("head");
        assert_eq!(
            receiver.receive(&no_sig, &body, now),
            Err(Refusal::Signature(SignatureError::MissingHeader(
                SIGNATURE_HEADER
            )))
        );
        let get = RequestHead::parse(b"GET / HTTP/1.1\r\n\r\n").expect("head");
        assert_eq!(
            receiver.receive(&get, b"", now).expect_err("GET").status(),
            405
        );
    }

    #[test]
    fn heads_are_parsed_strictly_and_bounded() {
        let h =
            RequestHead::parse(b"POST /hook HTTP/1.1\r\nContent-Length:  12 \r\nX-A: b\r\n\r\n")
                .expect("head");
        assert_eq!((h.method.as_str(), h.target.as_str()), ("POST", "/hook"));
        assert_eq!(h.header("x-a"), Some("b"));
        assert_eq!(h.content_length(), Ok(12));
        for bad in [
            &b"POST /hook\r\n\r\n"[..],
            b"POST hook HTTP/1.1\r\n\r\n",
            b"POST /hook HTTP/2\r\n\r\n",
            b"POST /hook HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST /hook HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"POST /hook HTTP/1.1\r\nX: a\x01b\r\n\r\n",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(RequestHead::parse(bad), Err(HttpError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let length = |headers: &str| {
            RequestHead::parse(format!("POST / HTTP/1.1\r\n{headers}\r\n\r\n").as_bytes())
                .expect("head")
                .content_length()
        };
        assert_eq!(length("X: y"), Err(HttpError::LengthRequired));
        assert_eq!(
            length("Transfer-Encoding: chunked"),
            Err(HttpError::LengthRequired)
        );
        assert!(matches!(
            length("Content-Length: -1"),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            length("Content-Length: 1\r\nContent-Length: 1"),
            Err(HttpError::Malformed(_))
        ));
        assert_eq!(
            length(&format!("Content-Length: {}", MAX_BODY_BYTES + 1)).map_err(|e| e.status()),
            Err(413)
        );
        let huge = format!(
            "POST / HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(
            RequestHead::parse(huge.as_bytes()).map_err(|e| e.status()),
            Err(413)
        );
    }
}
