//! What the Fulcio, Rekor and TSA clients share: bounded response reads and errors that name the service.
use crate::keyless::KeylessError;

/// Largest response body read from a signing service.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Sends `request` and reads a 2xx body of at most [`MAX_RESPONSE_BYTES`]; other statuses are errors with a short
/// excerpt of the body (with `secret`, if given, blanked out).
pub(crate) async fn send(
    service: &'static str,
    url: &str,
    request: reqwest::RequestBuilder,
    secret: Option<&str>,
) -> Result<Vec<u8>, KeylessError> {
    let mut response = request
        .send()
        .await
        .map_err(|e| KeylessError::Unreachable {
            service,
            url: url.to_string(),
            reason: redact(&without_url(&e), secret),
        })?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| KeylessError::Unreachable {
            service,
            url: url.to_string(),
            reason: redact(&without_url(&e), secret),
        })?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(KeylessError::Response {
                service,
                reason: format!("the answer from {url} is larger than {MAX_RESPONSE_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let text: String = String::from_utf8_lossy(&body).chars().take(400).collect();
        return Err(KeylessError::Refused {
            service,
            url: url.to_string(),
            status: status.as_u16(),
            body: redact(text.trim(), secret),
        });
    }
    Ok(body)
}

fn without_url(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Blanks `secret` out of `text`.
pub(crate) fn redact(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, "<redacted>"),
        _ => text.to_string(),
    }
}
