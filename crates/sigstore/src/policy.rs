//! Identity policy: who must have signed (certificate identity and issuer, GitHub Actions
//! claims), or which managed key.

use crate::goregex::{GoRegex, RegexError};
use crate::keys::PublicKey;
use crate::x509::{Certificate, SubjectAltName};

/// An exact string or a regular expression in Go's `regexp` (RE2) syntax, as cosign takes it, matched like cosign
/// (`MatchString`: unanchored unless the pattern anchors itself).
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Equal to this string.
    Exact(String),
    /// Matches this regular expression (Go syntax, see [`GoRegex`]).
    Regex(GoRegex),
}

impl Matcher {
    /// A regex matcher from a pattern in Go's `regexp` syntax; the error names the pattern and the construct Go
    /// refuses (or that has no equivalent here).
    pub fn regex(pattern: &str) -> Result<Self, RegexError> {
        GoRegex::new(pattern).map(Matcher::Regex)
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == value,
            Matcher::Regex(r) => r.is_match(value),
        }
    }

    /// How the expectation reads in messages (a regex as the user wrote it).
    pub fn describe(&self) -> String {
        match self {
            Matcher::Exact(s) => format!("{s:?}"),
            Matcher::Regex(r) => format!("a match for /{}/", r.as_str()),
        }
    }
}

/// GitHub Actions claims from Fulcio's certificate extensions (`1.3.6.1.4.1.57264.1.x`); each
/// one set must match.
#[derive(Debug, Clone, Default)]
pub struct GithubClaims {
    /// Source repository URI (`.1.12`), e.g. `https://github.com/org/repo`.
    pub source_repository: Option<Matcher>,
    /// Source repository ref (`.1.14`, older `.1.6`), e.g. `refs/heads/main`.
    pub source_ref: Option<Matcher>,
    /// Build config (workflow) URI (`.1.18`), e.g. `https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main`.
    pub workflow: Option<Matcher>,
    /// Build trigger (`.1.20`, older `.1.2`), e.g. `push`.
    pub trigger: Option<Matcher>,
    /// Commit SHA the workflow ran on (`.1.3`, only in Fulcio's first raw-string extensions; cosign's
    /// `--certificate-github-workflow-sha`).
    pub workflow_sha: Option<Matcher>,
    /// Workflow name (`.1.4`; cosign's `--certificate-github-workflow-name`).
    pub workflow_name: Option<Matcher>,
    /// Repository the workflow ran in, `owner/repo` (`.1.5`; cosign's `--certificate-github-workflow-repository`).
    pub workflow_repository: Option<Matcher>,
}

impl GithubClaims {
    /// Whether no claim is asked for.
    pub fn is_empty(&self) -> bool {
        self.checks().iter().all(|(_, m, _, _)| m.is_none())
    }

    /// Each claim: how messages name it, the matcher, its extension and the older extension it may sit in.
    fn checks(&self) -> [ClaimCheck<'_>; 7] {
        [
            (
                "GitHub source repository (1.3.6.1.4.1.57264.1.12)",
                &self.source_repository,
                12,
                None,
            ),
            (
                "GitHub source ref (1.3.6.1.4.1.57264.1.14)",
                &self.source_ref,
                14,
                Some(6),
            ),
            (
                "GitHub workflow (1.3.6.1.4.1.57264.1.18)",
                &self.workflow,
                18,
                None,
            ),
            (
                "GitHub workflow trigger (1.3.6.1.4.1.57264.1.20)",
                &self.trigger,
                20,
                Some(2),
            ),
            (
                "GitHub workflow sha (1.3.6.1.4.1.57264.1.3)",
                &self.workflow_sha,
                3,
                None,
            ),
            (
                "GitHub workflow name (1.3.6.1.4.1.57264.1.4)",
                &self.workflow_name,
                4,
                None,
            ),
            (
                "GitHub workflow repository (1.3.6.1.4.1.57264.1.5)",
                &self.workflow_repository,
                5,
                None,
            ),
        ]
    }
}

/// A claim the policy may check: message name, matcher, Fulcio extension, older extension.
type ClaimCheck<'a> = (&'static str, &'a Option<Matcher>, u8, Option<u8>);

/// Who must have signed a keyless bundle.
#[derive(Debug, Clone)]
pub struct CertificateIdentity {
    /// The OIDC issuer (`.1.8`, older `.1.1`).
    pub issuer: Matcher,
    /// The subject alternative name (email, URI or otherName username).
    pub san: Matcher,
    /// Further GitHub Actions claims.
    pub github: GithubClaims,
}

/// The identity a bundle must prove.
#[derive(Debug, Clone)]
pub enum IdentityPolicy {
    /// A Fulcio certificate for this identity.
    Certificate(CertificateIdentity),
    /// A signature by this managed key.
    Key(PublicKey),
}

/// A policy field that did not match.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyMismatch {
    /// Which field.
    pub field: &'static str,
    /// What the policy wanted.
    pub expected: String,
    /// What the certificate holds.
    pub found: String,
}

/// The claim in extension `primary`, else in `fallback`; an unreadable extension is an error, never a match.
fn claim(cert: &Certificate, primary: u8, fallback: Option<u8>) -> Result<String, String> {
    match cert
        .fulcio_extension(primary)
        .or_else(|| fallback.and_then(|f| cert.fulcio_extension(f)))
    {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(format!("an unreadable extension ({e})")),
        None => Err("no such claim".into()),
    }
}

impl CertificateIdentity {
    /// Exact issuer and SAN.
    pub fn exact(san: impl Into<String>, issuer: impl Into<String>) -> Self {
        Self {
            issuer: Matcher::Exact(issuer.into()),
            san: Matcher::Exact(san.into()),
            github: GithubClaims::default(),
        }
    }

    /// Checks the certificate against the policy; the error names the first field that differs.
    pub fn check(&self, cert: &Certificate) -> Result<(), PolicyMismatch> {
        let issuer = match cert.oidc_issuer() {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                return Err(PolicyMismatch {
                    field: "certificate OIDC issuer",
                    expected: self.issuer.describe(),
                    found: format!("an unreadable extension ({e})"),
                });
            }
            None => String::new(),
        };
        if !self.issuer.matches(&issuer) {
            return Err(PolicyMismatch {
                field: "certificate OIDC issuer",
                expected: self.issuer.describe(),
                found: if issuer.is_empty() {
                    "none".into()
                } else {
                    format!("{issuer:?}")
                },
            });
        }
        if !cert.sans.iter().any(|s| self.san.matches(s.value())) {
            return Err(PolicyMismatch {
                field: "certificate identity (subject alternative name)",
                expected: self.san.describe(),
                found: describe_sans(&cert.sans),
            });
        }
        for (field, matcher, primary, fallback) in self.github.checks() {
            let Some(m) = matcher else { continue };
            let found = claim(cert, primary, fallback);
            if !found.as_deref().is_ok_and(|v| m.matches(v)) {
                return Err(PolicyMismatch {
                    field,
                    expected: m.describe(),
                    found: found.map_or_else(|why| why, |v| format!("{v:?}")),
                });
            }
        }
        Ok(())
    }
}

fn describe_sans(sans: &[SubjectAltName]) -> String {
    if sans.is_empty() {
        return "no subject alternative name".into();
    }
    sans.iter()
        .map(|s| match s {
            SubjectAltName::Email(v) => format!("email {v:?}"),
            SubjectAltName::Uri(v) => format!("URI {v:?}"),
            SubjectAltName::OtherName(v) => format!("otherName {v:?}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        assert!(Matcher::Exact("a".into()).matches("a"));
        assert!(!Matcher::Exact("a".into()).matches("ab"));
        let r = Matcher::regex("^https://github\\.com/org/").unwrap();
        assert!(r.matches("https://github.com/org/repo"));
        assert!(!r.matches("https://github.com/evil/org/"));
        assert!(Matcher::regex("(").is_err());
        assert_eq!(Matcher::Exact("x".into()).describe(), "\"x\"");
    }
}
