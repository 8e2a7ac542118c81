//! A small blocking HTTP/1.1 codec for the harness's own needs: readiness probes, pushing tags, the token
//! server and the fault proxy. It is not a general client: bodies are bounded and only what registries send
//! (Content-Length, chunked, or close-delimited bodies) is understood.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};

use crate::HarnessError;

/// Largest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest body accepted.
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// An HTTP message head: start line and headers.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) start_line: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> io::Result<Option<usize>> {
        match self.header("content-length") {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| invalid(format!("bad Content-Length {v:?}"))),
        }
    }

    fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads a head; `Ok(None)` on a clean EOF before any byte.
pub(crate) fn read_head<R: BufRead>(reader: &mut R) -> io::Result<Option<Head>> {
    let mut lines = Vec::new();
    let mut total = 0usize;
    loop {
        let mut line = Vec::new();
        let n = reader
            .take((MAX_HEAD + 1) as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            if lines.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a message head",
            ));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(invalid("message head too large"));
        }
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if text.is_empty() {
            if lines.is_empty() {
                continue; // tolerate stray CRLF between messages
            }
            break;
        }
        lines.push(text);
    }
    let start_line = lines.remove(0);
    let headers = lines
        .into_iter()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Ok(Some(Head {
        start_line,
        headers,
    }))
}

/// How a message body is delimited.
pub(crate) enum BodyKind {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

pub(crate) fn request_body_kind(head: &Head) -> io::Result<BodyKind> {
    if head.is_chunked() {
        return Ok(BodyKind::Chunked);
    }
    Ok(match head.content_length()? {
        Some(0) | None => BodyKind::None,
        Some(n) => BodyKind::Length(n),
    })
}

pub(crate) fn response_body_kind(head: &Head, method: &str, status: u16) -> io::Result<BodyKind> {
    if method.eq_ignore_ascii_case("HEAD")
        || status == 204
        || status == 304
        || (100..200).contains(&status)
    {
        return Ok(BodyKind::None);
    }
    if head.is_chunked() {
        return Ok(BodyKind::Chunked);
    }
    Ok(match head.content_length()? {
        Some(0) => BodyKind::None,
        Some(n) => BodyKind::Length(n),
        None => BodyKind::UntilClose,
    })
}

/// Reads a body (decoding chunked transfer coding), at most [`MAX_BODY`] bytes.
pub(crate) fn read_body<R: BufRead>(reader: &mut R, kind: BodyKind) -> io::Result<Vec<u8>> {
    match kind {
        BodyKind::None => Ok(Vec::new()),
        BodyKind::Length(n) => {
            if n > MAX_BODY {
                return Err(invalid(format!(
                    "body of {n} bytes exceeds the {MAX_BODY}-byte limit"
                )));
            }
            let mut body = vec![0; n];
            reader.read_exact(&mut body)?;
            Ok(body)
        }
        BodyKind::UntilClose => {
            let mut body = Vec::new();
            reader.take((MAX_BODY + 1) as u64).read_to_end(&mut body)?;
            if body.len() > MAX_BODY {
                return Err(invalid("body exceeds the size limit"));
            }
            Ok(body)
        }
        BodyKind::Chunked => {
            let mut body = Vec::new();
            loop {
                let mut size_line = String::new();
                reader.take(1024).read_line(&mut size_line)?;
                let size_hex = size_line.trim().split(';').next().unwrap_or("");
                let size = usize::from_str_radix(size_hex, 16)
                    .map_err(|_| invalid(format!("bad chunk size {size_hex:?}")))?;
                if size == 0 {
                    // trailers until an empty line
                    loop {
                        let mut line = String::new();
                        let n = reader.take(MAX_HEAD as u64).read_line(&mut line)?;
                        if n == 0 || line.trim().is_empty() {
                            break;
                        }
                    }
                    return Ok(body);
                }
                if body.len() + size > MAX_BODY {
                    return Err(invalid("chunked body exceeds the size limit"));
                }
                let start = body.len();
                body.resize(start + size, 0);
                reader.read_exact(&mut body[start..])?;
                let mut crlf = [0u8; 2];
                reader.read_exact(&mut crlf)?;
            }
        }
    }
}

/// A response read by [`HttpConnection`].
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) head: Head,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }
    pub(crate) fn body_excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(300).collect()
    }
}

pub(crate) fn parse_status(head: &Head) -> io::Result<u16> {
    head.start_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {:?}", head.start_line)))
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// TLS client settings trusting exactly one CA.
pub(crate) fn client_tls_config(ca_der: &[u8]) -> Result<Arc<rustls::ClientConfig>, HarnessError> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der.to_vec()))
        .map_err(|e| HarnessError::Tls(format!("adding the test CA: {e}")))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| HarnessError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One keep-alive connection to `host` ("127.0.0.1:PORT"), plain or TLS.
pub(crate) struct HttpConnection {
    scheme: &'static str,
    host: String,
    reader: BufReader<Box<dyn Stream>>,
}

impl HttpConnection {
    pub(crate) fn connect(
        host: &str,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Self, HarnessError> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let err = |reason: String| HarnessError::Http {
            method: "CONNECT".into(),
            url: format!("{scheme}://{host}"),
            reason,
        };
        let tcp = TcpStream::connect(host).map_err(|e| err(e.to_string()))?;
        tcp.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| err(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = ServerName::try_from("127.0.0.1").map_err(|e| err(e.to_string()))?;
                let conn = rustls::ClientConnection::new(Arc::clone(config), name)
                    .map_err(|e| err(e.to_string()))?;
                Box::new(rustls::StreamOwned::new(conn, tcp))
            }
        };
        Ok(HttpConnection {
            scheme,
            host: host.to_string(),
            reader: BufReader::new(stream),
        })
    }

    /// Sends one request and reads the whole response.
    pub(crate) fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, HarnessError> {
        let url = format!("{}://{}{}", self.scheme, self.host, path);
        let err = |reason: String| HarnessError::Http {
            method: method.to_string(),
            url: url.clone(),
            reason,
        };
        let mut message = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (k, v) in headers {
            message.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH") {
            message.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        message.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream
            .write_all(message.as_bytes())
            .and_then(|()| stream.write_all(body))
            .and_then(|()| stream.flush())
            .map_err(|e| err(e.to_string()))?;
        let head = read_head(&mut self.reader)
            .map_err(|e| err(e.to_string()))?
            .ok_or_else(|| err("connection closed before a response".into()))?;
        let status = parse_status(&head).map_err(|e| err(e.to_string()))?;
        let kind = response_body_kind(&head, method, status).map_err(|e| err(e.to_string()))?;
        let body = read_body(&mut self.reader, kind).map_err(|e| err(e.to_string()))?;
        Ok(Response { status, head, body })
    }
}

/// One request on a fresh connection.
pub(crate) fn request_once(
    host: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, HarnessError> {
    HttpConnection::connect(host, tls)?.request(method, path, headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_head_then_chunked_body() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n";
        let mut reader = Cursor::new(&wire[..]);
        let head = read_head(&mut reader).unwrap().unwrap();
        assert_eq!(parse_status(&head).unwrap(), 200);
        assert_eq!(head.header("x-a"), Some("b"));
        let kind = response_body_kind(&head, "GET", 200).unwrap();
        assert_eq!(read_body(&mut reader, kind).unwrap(), b"Wikipedia");
    }

    #[test]
    fn head_responses_have_no_body_whatever_content_length_says() {
        let head = Head {
            start_line: "HTTP/1.1 200 OK".into(),
            headers: vec![("Content-Length".into(), "529".into())],
        };
        assert!(matches!(
            response_body_kind(&head, "HEAD", 200).unwrap(),
            BodyKind::None
        ));
        assert!(matches!(
            response_body_kind(&head, "GET", 200).unwrap(),
            BodyKind::Length(529)
        ));
    }

    #[test]
    fn bad_framing_is_an_error_not_a_panic() {
        let bad_length = Head {
            start_line: "HTTP/1.1 200 OK".into(),
            headers: vec![("Content-Length".into(), "-1".into())],
        };
        assert!(response_body_kind(&bad_length, "GET", 200).is_err());
        let mut short = Cursor::new(&b"abc"[..]);
        assert!(read_body(&mut short, BodyKind::Length(10)).is_err());
        let mut huge = Cursor::new(&b""[..]);
        assert!(read_body(&mut huge, BodyKind::Length(MAX_BODY + 1)).is_err());
        let mut bad_chunk = Cursor::new(&b"zz\r\n"[..]);
        assert!(read_body(&mut bad_chunk, BodyKind::Chunked).is_err());
        let mut cut = Cursor::new(&b"HTTP/1.1 200 OK\r\nA: b\r\n"[..]);
        assert!(read_head(&mut cut).is_err());
        assert!(
            parse_status(&Head {
                start_line: "garbage".into(),
                headers: vec![]
            })
            .is_err()
        );
    }

    #[test]
    fn clean_eof_before_a_message_is_none() {
        let mut empty = Cursor::new(&b""[..]);
        assert!(read_head(&mut empty).unwrap().is_none());
    }
}
