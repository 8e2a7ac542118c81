//! `WWW-Authenticate` challenges (RFC 7235 auth-params with quoted values) and `Link` headers. Pure parsing.

/// An authentication challenge a registry sent with a 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="..."`.
    Basic,
    /// `Bearer realm="...",service="...",scope="..."`: get a token at `realm`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter to pass back.
        service: Option<String>,
        /// The scope the registry asked for.
        scope: Option<String>,
    },
}

/// A challenge that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Not `scheme param=value, ...`.
    #[error("malformed WWW-Authenticate header: {0}")]
    Malformed(String),
    /// A scheme other than Basic and Bearer.
    #[error("unsupported authentication scheme {0:?}")]
    UnsupportedScheme(String),
    /// Bearer without a realm.
    #[error("Bearer challenge without a realm")]
    MissingRealm,
}

/// Parses one `WWW-Authenticate` header value.
pub fn parse_challenge(header: &str) -> Result<Challenge, ChallengeError> {
    let header = header.trim();
    let (scheme, rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return Err(ChallengeError::Malformed("empty header".into()));
    }
    let params = parse_params(rest)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Ok(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let realm = get("realm")
            .filter(|r| !r.is_empty())
            .ok_or(ChallengeError::MissingRealm)?;
        Ok(Challenge::Bearer {
            realm,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        Err(ChallengeError::UnsupportedScheme(scheme.to_string()))
    }
}

fn parse_params(mut s: &str) -> Result<Vec<(String, String)>, ChallengeError> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if s.is_empty() {
            return Ok(out);
        }
        let eq = s.find('=').ok_or_else(|| {
            ChallengeError::Malformed(format!("parameter without '=' near {s:?}"))
        })?;
        let key = s[..eq].trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ChallengeError::Malformed(format!(
                "bad parameter name {key:?}"
            )));
        }
        s = s[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = s.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, escaped)) => v.push(escaped),
                        None => break,
                    },
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end = end.ok_or_else(|| {
                ChallengeError::Malformed(format!("unterminated quoted value for {key}"))
            })?;
            value = v;
            s = &quoted[end + 1..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            value = s[..end].trim().to_string();
            s = &s[end..];
        }
        out.push((key.to_string(), value));
    }
}

/// The target of the `rel="next"` entry of a `Link` header (`<url>; rel="next"`), if any.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let part = part.trim();
        let start = part.find('<')?;
        let end = part.find('>')?;
        if end < start {
            return None;
        }
        let params = &part[end + 1..];
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=")
                .map(|v| {
                    v.trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
                })
                .unwrap_or(false)
        });
        is_next.then(|| part[start + 1..end].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:samalba/my-app:pull,push".into()),
            }
        );
    }

    #[test]
    fn escapes_spaces_and_case() {
        let c = parse_challenge(r#"bearer  realm = "http://a/t\"x" , service=svc"#).unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "http://a/t\"x".into(),
                service: Some("svc".into()),
                scope: None
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic
        );
        assert_eq!(parse_challenge("Basic").unwrap(), Challenge::Basic);
    }

    #[test]
    fn rejects_bad_challenges() {
        assert_eq!(
            parse_challenge(r#"Bearer service="x""#),
            Err(ChallengeError::MissingRealm)
        );
        assert!(matches!(
            parse_challenge(r#"Bearer realm="x"#),
            Err(ChallengeError::Malformed(_))
        ));
        assert!(matches!(
            parse_challenge(r#"Negotiate abc"#),
            Err(ChallengeError::Malformed(_))
        ));
        assert!(matches!(
            parse_challenge(r#"Digest realm="x""#),
            Err(ChallengeError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            parse_challenge(""),
            Err(ChallengeError::Malformed(_))
        ));
    }

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/foo/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/foo/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://x/a>; rel="prev", <https://x/b>; rel=next"#).as_deref(),
            Some("https://x/b")
        );
        assert_eq!(next_link(r#"<https://x/a>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
