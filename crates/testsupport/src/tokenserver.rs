//! The token server behind [`RegistryMode::TokenTls`](crate::registry::RegistryMode::TokenTls): the Docker
//! registry token flow that GHCR, Docker Hub and ECR use.
//!
//! The registry answers `401` with `WWW-Authenticate: Bearer realm="https://127.0.0.1:P/token",service=..,scope=..`;
//! the client calls `GET /token?service=..&scope=..` (Basic credentials, or none for anonymous) and gets
//! `{"token", "access_token", "expires_in", "issued_at"}`. The token is an ES256 JWT whose `x5c` header carries
//! the signing certificate, issued by the CA in the registry's `rootcertbundle`. Valid users get exactly the
//! requested scope; anonymous callers get a token with no access; wrong credentials get `401`.
//! `POST /token` with an OAuth2 `grant_type=password` form is accepted too (containerd uses it).

use std::io::{BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;

use crate::HarnessError;
use crate::http::Head;
use crate::loopback::{LoopbackServer, read_request};

/// Lifetime of issued tokens.
const TOKEN_LIFETIME_SECS: u64 = 300;

/// What the token server needs.
#[derive(Clone)]
pub struct TokenServerConfig {
    /// `iss` claim; must equal the registry's `auth.token.issuer`.
    pub issuer: String,
    /// `aud` claim and the expected `service` parameter; must equal `auth.token.service`.
    pub service: String,
    /// The one valid account.
    pub username: String,
    /// Its password.
    pub password: String,
    /// PKCS#8 DER of the P-256 signing key.
    pub signing_key_der: Vec<u8>,
    /// DER of the signing certificate (chains to the registry's `rootcertbundle`).
    pub signing_cert_der: Vec<u8>,
    /// Serve HTTPS with this chain (DER, leaf first) and PKCS#8 key; plain HTTP when `None`.
    pub tls: Option<(Vec<Vec<u8>>, Vec<u8>)>,
}

impl std::fmt::Debug for TokenServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServerConfig")
            .field("issuer", &self.issuer)
            .field("service", &self.service)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

struct Shared {
    config: TokenServerConfig,
    key: EcdsaKeyPair,
    tls: Option<Arc<rustls::ServerConfig>>,
    issued: AtomicUsize,
}

/// A running token server on 127.0.0.1 (its own threads; stopped on drop).
pub struct TokenServer {
    server: LoopbackServer,
    https: bool,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("realm", &self.realm())
            .finish()
    }
}

impl TokenServer {
    /// Binds a free port on 127.0.0.1 and serves until dropped.
    pub fn start(config: TokenServerConfig) -> Result<Self, HarnessError> {
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &config.signing_key_der)
                .map_err(|e| HarnessError::Certificates(format!("token signing key: {e}")))?;
        let tls = match &config.tls {
            None => None,
            Some((chain, key_der)) => Some(server_tls_config(chain, key_der)?),
        };
        let https = tls.is_some();
        let shared = Arc::new(Shared {
            config,
            key,
            tls,
            issued: AtomicUsize::new(0),
        });
        let serve_shared = Arc::clone(&shared);
        let server = LoopbackServer::start("token server", move |stream| {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            match &serve_shared.tls {
                None => serve_connection(stream, &serve_shared),
                Some(config) => {
                    if let Ok(conn) = rustls::ServerConnection::new(Arc::clone(config)) {
                        serve_connection(rustls::StreamOwned::new(conn, stream), &serve_shared);
                    }
                }
            }
        })?;
        Ok(TokenServer {
            server,
            https,
            shared,
        })
    }

    /// "127.0.0.1:PORT".
    pub fn host(&self) -> String {
        self.server.host().to_string()
    }

    /// The realm URL the registry advertises, e.g. `https://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}/token", self.server.host())
    }

    /// How many tokens were issued so far (anonymous ones included).
    pub fn tokens_issued(&self) -> usize {
        self.shared.issued.load(Ordering::SeqCst)
    }

    /// Serves on the calling thread until the process ends (for the detached `kibaship-harness token-server`).
    pub fn wait(self) {
        self.server.join();
    }
}

fn server_tls_config(
    chain: &[Vec<u8>],
    key_der: &[u8],
) -> Result<Arc<rustls::ServerConfig>, HarnessError> {
    let certs = chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.to_vec()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| HarnessError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| HarnessError::Tls(format!("token server certificate: {e}")))?;
    Ok(Arc::new(config))
}

fn serve_connection<S: std::io::Read + Write>(stream: S, shared: &Shared) {
    let mut reader = BufReader::new(stream);
    loop {
        let Some((head, body)) = read_request(&mut reader) else {
            return;
        };
        let (status, json) = answer(&head, &body, shared);
        let body = json.to_string();
        let mut message = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\n",
            reason(status),
            body.len()
        );
        if status == 401 {
            message.push_str("WWW-Authenticate: Basic realm=\"kibaship test token server\"\r\n");
        }
        message.push_str("\r\n");
        message.push_str(&body);
        let stream = reader.get_mut();
        if stream
            .write_all(message.as_bytes())
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Method Not Allowed",
    }
}

fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({"errors": [{"code": code, "message": message}]})
}

/// Decodes `application/x-www-form-urlencoded` / query strings.
fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).map(|h| u8::from_str_radix(h, 16)) {
                    Ok(Ok(b)) => {
                        out.push(b);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

enum Caller {
    Anonymous,
    User(String),
}

fn answer(head: &Head, body: &[u8], shared: &Shared) -> (u16, serde_json::Value) {
    let mut parts = head.start_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/token" {
        return (404, error_body("NOT_FOUND", "only /token is served here"));
    }
    let config = &shared.config;
    let (params, caller) = match method {
        "GET" => {
            let params = form_pairs(query);
            let caller = match head.header("authorization") {
                None => Caller::Anonymous,
                Some(value) => match basic_user(value, config) {
                    Some(user) => Caller::User(user),
                    None => {
                        return (
                            401,
                            error_body("UNAUTHORIZED", "invalid username or password"),
                        );
                    }
                },
            };
            (params, caller)
        }
        "POST" => {
            let params = form_pairs(&String::from_utf8_lossy(body));
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            if get("grant_type") != Some("password") {
                return (
                    400,
                    error_body("UNSUPPORTED", "only grant_type=password is supported"),
                );
            }
            if get("username") != Some(config.username.as_str())
                || get("password") != Some(config.password.as_str())
            {
                return (
                    401,
                    error_body("UNAUTHORIZED", "invalid username or password"),
                );
            }
            let caller = Caller::User(config.username.clone());
            (params, caller)
        }
        _ => return (405, error_body("UNSUPPORTED", "use GET or POST")),
    };
    let service = params
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.as_str());
    if service != Some(config.service.as_str()) {
        return (
            400,
            error_body(
                "INVALID_SERVICE",
                &format!("service must be {:?}", config.service),
            ),
        );
    }
    let mut access = Vec::new();
    if let Caller::User(_) = caller {
        for (_, scope) in params.iter().filter(|(k, _)| k == "scope") {
            for one in scope.split(' ').filter(|s| !s.is_empty()) {
                let Some((kind, rest)) = one.split_once(':') else {
                    return (
                        400,
                        error_body("INVALID_SCOPE", &format!("malformed scope {one:?}")),
                    );
                };
                let Some((name, actions)) = rest.rsplit_once(':') else {
                    return (
                        400,
                        error_body("INVALID_SCOPE", &format!("malformed scope {one:?}")),
                    );
                };
                let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
                access.push(json!({"type": kind, "name": name, "actions": actions}));
            }
        }
    }
    let subject = match &caller {
        Caller::Anonymous => String::new(),
        Caller::User(u) => u.clone(),
    };
    match sign_token(shared, &subject, access) {
        Ok((token, issued_at)) => {
            shared.issued.fetch_add(1, Ordering::SeqCst);
            (
                200,
                json!({
                    "token": token,
                    "access_token": token,
                    "expires_in": TOKEN_LIFETIME_SECS,
                    "issued_at": issued_at,
                }),
            )
        }
        Err(message) => (500, error_body("SIGNING_FAILED", &message)),
    }
}

fn basic_user(value: &str, config: &TokenServerConfig) -> Option<String> {
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    (user == config.username && password == config.password).then(|| user.to_string())
}

fn sign_token(
    shared: &Shared,
    subject: &str,
    access: Vec<serde_json::Value>,
) -> Result<(String, String), String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let mut jti = [0u8; 16];
    aws_lc_rs::rand::fill(&mut jti).map_err(|e| e.to_string())?;
    let header = json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [STANDARD.encode(&shared.config.signing_cert_der)],
    });
    let claims = json!({
        "iss": shared.config.issuer,
        "sub": subject,
        "aud": shared.config.service,
        "exp": now + TOKEN_LIFETIME_SECS,
        "nbf": now.saturating_sub(1),
        "iat": now,
        "jti": hex::encode(jti),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = shared
        .key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .map_err(|e| e.to_string())?;
    let issued_at =
        time::OffsetDateTime::from_unix_timestamp(i64::try_from(now).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| e.to_string())?;
    Ok((
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ),
        issued_at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_scopes() {
        assert_eq!(
            percent_decode("repository%3Afoo%2Fbar%3Apull%2Cpush"),
            "repository:foo/bar:pull,push"
        );
        assert_eq!(percent_decode("a+b%2"), "a b%2");
    }
}
