//! Registry credentials: docker `config.json` (`auths`, `credHelpers`, `credsStore`) and credential helpers.
//! Secrets never appear in `Debug` output or errors.
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::reference::{DOCKER_HUB_API_HOST, DOCKER_HUB_DOMAIN, DOCKER_HUB_LEGACY_DOMAIN};

/// The key Docker Hub credentials are stored under.
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
const HELPER_OUTPUT_LIMIT: usize = 64 * 1024;
const CONFIG_FILE_LIMIT: u64 = 4 * 1024 * 1024;

/// A credential for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Username and password (HTTP basic, or basic at the token endpoint).
    Basic {
        /// User name.
        username: String,
        /// Password (secret).
        password: String,
    },
    /// An identity (refresh) token, exchanged at the token realm with `grant_type=refresh_token`.
    IdentityToken {
        /// User name, if known.
        username: String,
        /// The refresh token (secret).
        token: String,
    },
    /// A bearer token sent to the registry as is.
    RegistryToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(
                f,
                "Basic {{ username: {username:?}, password: <redacted> }}"
            ),
            Credential::IdentityToken { username, .. } => {
                write!(
                    f,
                    "IdentityToken {{ username: {username:?}, token: <redacted> }}"
                )
            }
            Credential::RegistryToken(_) => write!(f, "RegistryToken(<redacted>)"),
        }
    }
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The config file could not be read or parsed.
    #[error("docker config {path}: {detail}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What was wrong (never a secret).
        detail: String,
    },
    /// An `auths` entry is malformed.
    #[error("docker config entry {key:?}: {detail}")]
    Entry {
        /// The `auths` key.
        key: String,
        /// What was wrong.
        detail: String,
    },
    /// A credential helper failed.
    #[error("credential helper docker-credential-{helper} for {server}: {detail}")]
    Helper {
        /// The helper's name.
        helper: String,
        /// The server URL asked for.
        server: String,
        /// What went wrong (never the helper's output, which may hold the secret).
        detail: String,
    },
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthEntry(<redacted>)")
    }
}

/// A parsed docker `config.json`.
#[derive(Debug, Default)]
pub struct DockerConfig {
    file: ConfigFile,
}

/// Where the credential for a registry comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `docker-credential-<helper> get` with this server URL.
    Helper {
        /// Helper name (the suffix after `docker-credential-`).
        helper: String,
        /// What to write to the helper's stdin.
        server_url: String,
    },
    /// Read from `auths` (or nothing: anonymous).
    Inline(Option<Credential>),
}

impl DockerConfig {
    /// Reads `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`; `None` when there is no file.
    pub fn load_default() -> Result<Option<DockerConfig>, CredentialError> {
        let dir = match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => match std::env::var_os("HOME") {
                Some(home) => Path::new(&home).join(".docker"),
                None => return Ok(None),
            },
        };
        let path = dir.join("config.json");
        if !path.exists() {
            return Ok(None);
        }
        DockerConfig::load(&path).map(Some)
    }

    /// Reads and parses one config file.
    pub fn load(path: &Path) -> Result<DockerConfig, CredentialError> {
        let err = |detail: String| CredentialError::Config {
            path: path.to_path_buf(),
            detail,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if meta.len() > CONFIG_FILE_LIMIT {
            return Err(err(format!("larger than {CONFIG_FILE_LIMIT} bytes")));
        }
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        DockerConfig::from_json(&bytes).map_err(|e| match e {
            CredentialError::Config { detail, .. } => err(detail),
            other => other,
        })
    }

    /// Parses config JSON.
    pub fn from_json(bytes: &[u8]) -> Result<DockerConfig, CredentialError> {
        // Only the kind of error and where: serde_json's own message quotes a value of the wrong type
        // (`invalid type: string "<the password>"`), and the values here are secrets.
        let file: ConfigFile =
            serde_json::from_slice(bytes).map_err(|e| CredentialError::Config {
                path: PathBuf::from("<config.json>"),
                detail: format!(
                    "{} at line {}, column {}",
                    match e.classify() {
                        serde_json::error::Category::Syntax => "not valid JSON",
                        serde_json::error::Category::Eof => "JSON that ends early",
                        serde_json::error::Category::Data => "a value of the wrong type",
                        serde_json::error::Category::Io => "unreadable",
                    },
                    e.line(),
                    e.column()
                ),
            })?;
        Ok(DockerConfig { file })
    }

    /// Where to get the credential for `registry` (as written in references: `docker.io`, `host:port`):
    /// `credHelpers[registry]`, else `credsStore`, else the matching `auths` entry.
    pub fn source_for(&self, registry: &str) -> Result<CredentialSource, CredentialError> {
        let aliases = registry_aliases(registry);
        let server_url = if is_docker_hub(registry) {
            DOCKER_HUB_CONFIG_KEY.to_string()
        } else {
            registry.to_string()
        };
        for alias in &aliases {
            if let Some(helper) = self.file.cred_helpers.get(alias.as_str()) {
                return Ok(CredentialSource::Helper {
                    helper: helper.clone(),
                    server_url,
                });
            }
        }
        if let Some(store) = self.file.creds_store.as_ref().filter(|s| !s.is_empty()) {
            return Ok(CredentialSource::Helper {
                helper: store.clone(),
                server_url,
            });
        }
        for (key, entry) in &self.file.auths {
            if aliases.iter().any(|a| *a == key_host(key)) {
                return entry_credential(key, entry).map(CredentialSource::Inline);
            }
        }
        Ok(CredentialSource::Inline(None))
    }
}

fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        DOCKER_HUB_DOMAIN | DOCKER_HUB_LEGACY_DOMAIN | DOCKER_HUB_API_HOST
    )
}

fn registry_aliases(registry: &str) -> Vec<String> {
    if is_docker_hub(registry) {
        vec![
            DOCKER_HUB_LEGACY_DOMAIN.into(),
            DOCKER_HUB_DOMAIN.into(),
            DOCKER_HUB_API_HOST.into(),
        ]
    } else {
        vec![registry.to_string()]
    }
}

/// `https://host:port/v1/` → `host:port`.
fn key_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

fn entry_credential(key: &str, entry: &AuthEntry) -> Result<Option<Credential>, CredentialError> {
    let err = |detail: &str| CredentialError::Entry {
        key: key.to_string(),
        detail: detail.to_string(),
    };
    let (mut username, mut password) = (entry.username.clone(), entry.password.clone());
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| err("`auth` is not valid base64"))?;
        let text =
            String::from_utf8(decoded).map_err(|_| err("`auth` does not decode to UTF-8"))?;
        let (user, pass) = text
            .split_once(':')
            .ok_or_else(|| err("`auth` does not decode to user:password"))?;
        username = Some(user.to_string());
        password = Some(pass.to_string());
    }
    if let Some(token) = entry.registrytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::RegistryToken(token.to_string())));
    }
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken {
            username: username.unwrap_or_default(),
            token: token.to_string(),
        }));
    }
    match (username, password) {
        (Some(username), Some(password)) if !username.is_empty() => {
            Ok(Some(Credential::Basic { username, password }))
        }
        _ => Ok(None),
    }
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-<helper> get` with `server_url` on stdin. "Not found" answers give `None`.
pub async fn run_credential_helper(
    helper: &str,
    server_url: &str,
) -> Result<Option<Credential>, CredentialError> {
    let err = |detail: String| CredentialError::Helper {
        helper: helper.to_string(),
        server: server_url.to_string(),
        detail,
    };
    if helper.is_empty()
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(err("invalid helper name".into()));
    }
    let program = format!("docker-credential-{helper}");
    run_helper_program(Path::new(&program), helper, server_url).await
}

/// Runs the helper `program` (found on `PATH` when it has no slash).
async fn run_helper_program(
    program: &Path,
    helper: &str,
    server_url: &str,
) -> Result<Option<Credential>, CredentialError> {
    let err = |detail: String| CredentialError::Helper {
        helper: helper.to_string(),
        server: server_url.to_string(),
        detail,
    };
    let mut child = tokio::process::Command::new(program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(format!("cannot run {}: {e}", program.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server_url.as_bytes())
            .await
            .map_err(|e| err(format!("writing stdin: {e}")))?;
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| err(format!("no answer within {} s", HELPER_TIMEOUT.as_secs())))?
        .map_err(|e| err(e.to_string()))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout).to_lowercase()
            + &String::from_utf8_lossy(&output.stderr).to_lowercase();
        if said.contains("credentials not found") || said.contains("not found in native keychain") {
            return Ok(None);
        }
        return Err(err(format!("exited with {}", output.status)));
    }
    if output.stdout.len() > HELPER_OUTPUT_LIMIT {
        return Err(err(format!(
            "output larger than {HELPER_OUTPUT_LIMIT} bytes"
        )));
    }
    let parsed: HelperOutput = serde_json::from_slice(&output.stdout)
        .map_err(|_| err("output is not {\"Username\",\"Secret\"} JSON".into()))?;
    if parsed.secret.is_empty() {
        return Ok(None);
    }
    if parsed.username == "<token>" {
        return Ok(Some(Credential::IdentityToken {
            username: String::new(),
            token: parsed.secret,
        }));
    }
    Ok(Some(Credential::Basic {
        username: parsed.username,
        password: parsed.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn auths_match_on_host_for_url_keys() {
        let json = format!(
            r#"{{"auths":{{
                "https://index.docker.io/v1/":{{"auth":"{}"}},
                "http://127.0.0.1:5000/v2/":{{"auth":"{}"}},
                "ghcr.io":{{"identitytoken":"refresh-secret","username":"u"}},
                "quay.io":{{"registrytoken":"bearer-secret"}},
                "empty.example":{{}}
            }}}}"#,
            b64("hubuser:hub:pass"),
            b64("local:pw")
        );
        let cfg = DockerConfig::from_json(json.as_bytes()).unwrap();
        let inline = |r: &str| match cfg.source_for(r).unwrap() {
            CredentialSource::Inline(c) => c,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            inline("docker.io"),
            Some(Credential::Basic {
                username: "hubuser".into(),
                password: "hub:pass".into()
            })
        );
        assert_eq!(
            inline("127.0.0.1:5000"),
            Some(Credential::Basic {
                username: "local".into(),
                password: "pw".into()
            })
        );
        assert_eq!(
            inline("ghcr.io"),
            Some(Credential::IdentityToken {
                username: "u".into(),
                token: "refresh-secret".into()
            })
        );
        assert_eq!(
            inline("quay.io"),
            Some(Credential::RegistryToken("bearer-secret".into()))
        );
        assert_eq!(inline("empty.example"), None);
        assert_eq!(inline("other.example"), None);
    }

    #[test]
    fn helpers_take_precedence() {
        let cfg = DockerConfig::from_json(
            br#"{"auths":{"gcr.io":{"auth":"dTpw"}},"credHelpers":{"gcr.io":"gcloud"},"credsStore":"desktop"}"#,
        )
        .unwrap();
        assert_eq!(
            cfg.source_for("gcr.io").unwrap(),
            CredentialSource::Helper {
                helper: "gcloud".into(),
                server_url: "gcr.io".into()
            }
        );
        assert_eq!(
            cfg.source_for("docker.io").unwrap(),
            CredentialSource::Helper {
                helper: "desktop".into(),
                server_url: DOCKER_HUB_CONFIG_KEY.into()
            }
        );
    }

    #[test]
    fn bad_entries_do_not_leak_secrets() {
        let cfg =
            DockerConfig::from_json(br#"{"auths":{"r.example":{"auth":"not base64 s3cr3t!"}}}"#)
                .unwrap();
        let e = cfg.source_for("r.example").unwrap_err().to_string();
        assert!(e.contains("r.example") && !e.contains("s3cr3t"), "{e}");
        let e = DockerConfig::from_json(br#"{"auths": {"x": {"auth": "s3cr3t"#)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
        let dbg = format!(
            "{:?}",
            Credential::Basic {
                username: "u".into(),
                password: "s3cr3t".into()
            }
        );
        assert!(!dbg.contains("s3cr3t"));
    }

    #[tokio::test]
    async fn credential_helper_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("docker-credential-kibatest");
        std::fs::write(
            &script,
            "#!/bin/sh\nread url\nif [ \"$url\" = 'reg.example:5000' ]; then echo '{\"ServerURL\":\"reg.example:5000\",\"Username\":\"alice\",\"Secret\":\"pw1\"}';\nelif [ \"$url\" = 'tok.example' ]; then echo '{\"Username\":\"<token>\",\"Secret\":\"rt\"}';\nelse echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let got = run_helper_program(&script, "kibatest", "reg.example:5000")
            .await
            .unwrap();
        assert_eq!(
            got,
            Some(Credential::Basic {
                username: "alice".into(),
                password: "pw1".into()
            })
        );
        let got = run_helper_program(&script, "kibatest", "tok.example")
            .await
            .unwrap();
        assert_eq!(
            got,
            Some(Credential::IdentityToken {
                username: String::new(),
                token: "rt".into()
            })
        );
        let got = run_helper_program(&script, "kibatest", "nope.example")
            .await
            .unwrap();
        assert_eq!(got, None);
        let missing = run_credential_helper("kiba-missing-helper", "x")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("docker-credential-kiba-missing-helper"),
            "{missing}"
        );
        assert!(run_credential_helper("../evil", "x").await.is_err());
    }
}
