//! The OIDC identity token a keyless signer presents to Fulcio.
//!
//! The token is a secret: it is never printed, logged or put in an error message. [`IdentityToken`]'s `Debug`
//! shows only the claims needed to explain a failure (issuer, subject), never the token itself. The claims are
//! read without checking the token's signature: Fulcio checks it; we only need the subject to prove possession
//! of the key, and the expiry to fail early with a clear message.
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Largest token accepted (projected service-account tokens are a few KiB).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Why a token cannot be used. Messages never contain the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS (`header.claims.signature`).
    #[error("the identity token is not a JWT (three base64url parts separated by dots)")]
    NotJwt,
    /// Larger than [`MAX_TOKEN_BYTES`].
    #[error("the identity token is {0} bytes, more than the {MAX_TOKEN_BYTES} accepted")]
    TooLarge(usize),
    /// The claims part is not base64url JSON.
    #[error("the identity token's claims are not base64url-encoded JSON")]
    Claims,
    /// A claim is missing or has the wrong type.
    #[error("the identity token has no {0} claim")]
    Missing(&'static str),
    /// The audience is not `sigstore`.
    #[error("the identity token's audience is {0}, Fulcio expects \"sigstore\"")]
    Audience(String),
    /// Expired.
    #[error("the identity token (issuer {issuer}) expired at {exp} (Unix time), it is now {now}")]
    Expired {
        /// `iss`.
        issuer: String,
        /// `exp`.
        exp: i64,
        /// Current time.
        now: i64,
    },
}

/// An OIDC ID token and the claims read from it (unverified).
#[derive(Clone)]
pub struct IdentityToken {
    raw: String,
    issuer: String,
    subject: String,
    email: Option<String>,
    expires: i64,
}

impl std::fmt::Debug for IdentityToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityToken")
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl IdentityToken {
    /// Reads `raw` (surrounding whitespace ignored). Checks the shape, the audience (`sigstore`) and the expiry
    /// against `now` (Unix seconds).
    pub fn parse(raw: &str, now: i64) -> Result<Self, TokenError> {
        let raw = raw.trim();
        if raw.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge(raw.len()));
        }
        let parts: Vec<&str> = raw.split('.').collect();
        let [_, claims, _] = parts.as_slice() else {
            return Err(TokenError::NotJwt);
        };
        let claims = URL_SAFE_NO_PAD
            .decode(claims.trim_end_matches('='))
            .map_err(|_| TokenError::Claims)?;
        let claims: serde_json::Value =
            serde_json::from_slice(&claims).map_err(|_| TokenError::Claims)?;
        let text = |name: &'static str| {
            claims
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or(TokenError::Missing(name))
        };
        let issuer = text("iss")?;
        let subject = text("sub")?;
        let email = text("email").ok();
        let expires = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .ok_or(TokenError::Missing("exp"))?;
        let audience_ok = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => a == "sigstore",
            Some(serde_json::Value::Array(list)) => list.iter().any(|a| a == "sigstore"),
            _ => return Err(TokenError::Missing("aud")),
        };
        if !audience_ok {
            let aud = claims
                .get("aud")
                .map(ToString::to_string)
                .unwrap_or_default();
            return Err(TokenError::Audience(aud.chars().take(200).collect()));
        }
        if expires <= now {
            return Err(TokenError::Expired {
                issuer,
                exp: expires,
                now,
            });
        }
        Ok(IdentityToken {
            raw: raw.to_string(),
            issuer,
            subject,
            email,
            expires,
        })
    }

    /// The raw token, for the Fulcio request only.
    pub(crate) fn secret(&self) -> &str {
        &self.raw
    }

    /// `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// What proves possession of the key: the `email` claim when present, else `sub` (as cosign signs it and
    /// Fulcio checks it).
    pub fn challenge_subject(&self) -> &str {
        self.email.as_deref().unwrap_or(&self.subject)
    }

    /// `exp` (Unix seconds).
    pub fn expires(&self) -> i64 {
        self.expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn reads_claims_and_never_shows_the_token() {
        let raw = jwt(
            serde_json::json!({"iss": "http://i", "sub": "s", "email": "a@b", "aud": "sigstore", "exp": 100}),
        );
        let t = IdentityToken::parse(&raw, 50).unwrap();
        assert_eq!(t.challenge_subject(), "a@b");
        assert_eq!(t.issuer(), "http://i");
        assert!(!format!("{t:?}").contains(&raw));
    }

    #[test]
    fn rejects_bad_tokens_without_echoing_them() {
        let expired =
            jwt(serde_json::json!({"iss": "http://i", "sub": "s", "aud": "sigstore", "exp": 10}));
        let e = IdentityToken::parse(&expired, 50).unwrap_err();
        assert!(matches!(e, TokenError::Expired { .. }));
        assert!(!e.to_string().contains(&expired));
        let other = jwt(
            serde_json::json!({"iss": "http://i", "sub": "s", "aud": "kubernetes", "exp": 100}),
        );
        assert!(matches!(
            IdentityToken::parse(&other, 50),
            Err(TokenError::Audience(_))
        ));
        assert_eq!(
            IdentityToken::parse("abc.def", 0).unwrap_err(),
            TokenError::NotJwt
        );
        assert_eq!(
            IdentityToken::parse("a.!!!.c", 0).unwrap_err(),
            TokenError::Claims
        );
        let no_sub = jwt(serde_json::json!({"iss": "http://i", "aud": "sigstore", "exp": 100}));
        assert_eq!(
            IdentityToken::parse(&no_sub, 0).unwrap_err(),
            TokenError::Missing("sub")
        );
    }
}
