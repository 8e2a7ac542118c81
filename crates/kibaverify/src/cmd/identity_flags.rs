//! Keyless identity flags shared by `verify`, `verify-attestation` and `verify-bundle`: cosign's
//! `--certificate-github-workflow-*` claims (and kibaship's `--certificate-github-source-repository`), mapped onto
//! `kibaship_sigstore`'s identity policy, plus the exact-or-regexp matcher the identity and issuer flags use.
use anyhow::{Context as _, bail};
use kibaship_sigstore::{GithubClaims, Matcher};

/// GitHub Actions claims the Fulcio certificate must carry; each one given must equal the certificate's value.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct GithubClaimFlags {
    /// Expected GitHub source repository URI claim (`https://github.com/org/repo`, 1.3.6.1.4.1.57264.1.12).
    #[arg(long, value_name = "URI", conflicts_with = "key")]
    pub certificate_github_source_repository: Option<String>,
    /// Expected GitHub workflow trigger (event name, e.g. `push`; 1.3.6.1.4.1.57264.1.20, or .1.2 in older
    /// certificates).
    #[arg(long, value_name = "EVENT", conflicts_with = "key")]
    pub certificate_github_workflow_trigger: Option<String>,
    /// Expected commit SHA the workflow ran on (1.3.6.1.4.1.57264.1.3).
    #[arg(long, value_name = "SHA", conflicts_with = "key")]
    pub certificate_github_workflow_sha: Option<String>,
    /// Expected workflow name (1.3.6.1.4.1.57264.1.4).
    #[arg(long, value_name = "NAME", conflicts_with = "key")]
    pub certificate_github_workflow_name: Option<String>,
    /// Expected repository the workflow ran in, `owner/repo` (1.3.6.1.4.1.57264.1.5).
    #[arg(long, value_name = "OWNER/REPO", conflicts_with = "key")]
    pub certificate_github_workflow_repository: Option<String>,
    /// Expected git ref the workflow ran on (`refs/heads/main`; 1.3.6.1.4.1.57264.1.14, or .1.6 in older
    /// certificates).
    #[arg(long, value_name = "REF", conflicts_with = "key")]
    pub certificate_github_workflow_ref: Option<String>,
}

impl GithubClaimFlags {
    /// The claims `kibaship_sigstore`'s identity policy checks (each flag an exact match, as in cosign).
    pub fn github_claims(&self) -> GithubClaims {
        GithubClaims {
            source_repository: self
                .certificate_github_source_repository
                .clone()
                .map(Matcher::Exact),
            source_ref: self
                .certificate_github_workflow_ref
                .clone()
                .map(Matcher::Exact),
            workflow: None,
            trigger: self
                .certificate_github_workflow_trigger
                .clone()
                .map(Matcher::Exact),
            workflow_sha: self
                .certificate_github_workflow_sha
                .clone()
                .map(Matcher::Exact),
            workflow_name: self
                .certificate_github_workflow_name
                .clone()
                .map(Matcher::Exact),
            workflow_repository: self
                .certificate_github_workflow_repository
                .clone()
                .map(Matcher::Exact),
        }
    }
}

/// The matcher an exact flag or its `-regexp` twin describes; exactly one must be given. A `-regexp` is in Go's
/// `regexp` (RE2) syntax and matches unanchored, as cosign's does (`\Q...\E`, ASCII-only `\d \w \s \b`, ...).
pub fn matcher(
    exact: Option<&String>,
    regex: Option<&String>,
    flag: &str,
) -> anyhow::Result<Matcher> {
    match (exact, regex) {
        (Some(e), None) => Ok(Matcher::Exact(e.clone())),
        (None, Some(r)) => Matcher::regex(r)
            .with_context(|| format!("--{flag}-regexp is not a valid Go (RE2) regular expression")),
        _ => bail!("one of --{flag} or --{flag}-regexp is required"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_onto_the_identity_policy() {
        let flags = GithubClaimFlags {
            certificate_github_source_repository: Some("https://github.com/o/r".into()),
            certificate_github_workflow_trigger: Some("push".into()),
            certificate_github_workflow_sha: Some("abc".into()),
            certificate_github_workflow_name: Some("release".into()),
            certificate_github_workflow_repository: Some("o/r".into()),
            certificate_github_workflow_ref: Some("refs/heads/main".into()),
        };
        let g = flags.github_claims();
        assert!(
            g.source_repository
                .unwrap()
                .matches("https://github.com/o/r")
        );
        assert!(g.source_ref.unwrap().matches("refs/heads/main"));
        assert!(!g.trigger.unwrap().matches("pull_request"));
        assert!(g.workflow.is_none());
        assert!(g.workflow_sha.unwrap().matches("abc"));
        assert!(g.workflow_name.unwrap().matches("release"));
        let repository = g.workflow_repository.unwrap();
        assert!(repository.matches("o/r") && !repository.matches("o/r2"));
        assert!(GithubClaimFlags::default().github_claims().is_empty());
        assert!(matcher(None, Some(&"(".to_string()), "x").is_err());
        assert!(matcher(None, None, "x").is_err());
    }
}
