//! Registry credentials from Kubernetes pull secrets (`kubernetes.io/dockerconfigjson`, and the older
//! `kubernetes.io/dockercfg`), as a workload's images are pulled with them. Pure: the caller reads the Secret
//! ([`crate::cluster::add_pull_credentials`]); this module turns its data into [`Credential`]s by registry.
//!
//! Secrets never leave this module in text: errors and notes name the secret (`namespace/name`) and the
//! registry key, never a value; [`PullCredentials`]' `Debug` shows registries and sources only.
use std::collections::BTreeMap;
use std::sync::Arc;

use kibaship_oci::Credential;
use kibaship_oci::credentials::{CredentialSource, DockerConfig};

use crate::inventory::shown;

/// The Secret type of a docker `config.json` pull secret.
pub const SECRET_TYPE_DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// The Secret type of the older `.dockercfg` pull secret (the `auths` map alone).
pub const SECRET_TYPE_DOCKERCFG: &str = "kubernetes.io/dockercfg";
/// Pull secrets read per workload, at most (the webhook's limit too).
pub const MAX_PULL_SECRETS: usize = 32;

/// The credentials one workload's images are read with, by registry (as [`kibaship_oci::Reference::registry`]
/// names it), each with the pull secret it came from (`namespace/name`). Empty: kibaverify's own credentials.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PullCredentials {
    by_registry: Arc<BTreeMap<String, (String, Credential)>>,
}

impl std::fmt::Debug for PullCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.by_registry.iter().map(|(r, (source, _))| (r, source)))
            .finish()
    }
}

impl PullCredentials {
    /// From the secrets' entries in the order the workload names the secrets: for a registry named by more
    /// than one, the first secret's entry is used (as the kubelet tries them in order).
    pub fn from_secrets<'a>(secrets: impl IntoIterator<Item = &'a PullSecret>) -> PullCredentials {
        let mut by_registry = BTreeMap::new();
        for secret in secrets {
            for (registry, credential) in &secret.entries {
                by_registry
                    .entry(registry.clone())
                    .or_insert_with(|| (secret.source.clone(), credential.clone()));
            }
        }
        PullCredentials {
            by_registry: Arc::new(by_registry),
        }
    }

    /// Whether no pull secret gave a credential.
    pub fn is_empty(&self) -> bool {
        self.by_registry.is_empty()
    }

    /// The pull secret (`namespace/name`) and credential for `registry`, if one of the secrets has it.
    pub fn for_registry(&self, registry: &str) -> Option<(&str, &Credential)> {
        self.by_registry
            .get(registry)
            .map(|(source, credential)| (source.as_str(), credential))
    }
}

/// What one pull secret holds.
#[derive(Clone, Default)]
pub struct PullSecret {
    /// `namespace/name`.
    pub source: String,
    /// (registry, credential), in the secret's key order.
    pub entries: Vec<(String, Credential)>,
    /// What was skipped (an entry without a host, a secret of another type); never a value.
    pub notes: Vec<String>,
}

impl std::fmt::Debug for PullSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullSecret")
            .field("source", &self.source)
            .field(
                "registries",
                &self.entries.iter().map(|(r, _)| r).collect::<Vec<_>>(),
            )
            .field("notes", &self.notes)
            .finish()
    }
}

/// The registry a `config.json` key names: `https://host:port/v1/` → `host:port`; Docker Hub's keys →
/// `docker.io`. `None` when there is no host.
fn registry_of_key(key: &str) -> Option<String> {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest).trim();
    if host.is_empty() {
        return None;
    }
    let host = host.to_ascii_lowercase();
    Some(match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => host,
    })
}

/// The credentials in a Secret of `secret_type` with `data` (the decoded values of its `data`), named
/// `source` (`namespace/name`) in messages. A Secret of another type holds none (a note says so, as the
/// kubelet ignores it); one whose content cannot be used is an error naming the secret and the key, never
/// quoting a value.
pub fn parse_pull_secret(
    source: &str,
    secret_type: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<PullSecret, String> {
    let mut parsed = PullSecret {
        source: source.to_owned(),
        ..PullSecret::default()
    };
    let (key, wrapped) = match secret_type {
        SECRET_TYPE_DOCKER_CONFIG_JSON => (".dockerconfigjson", true),
        SECRET_TYPE_DOCKERCFG => (".dockercfg", false),
        other => {
            parsed.notes.push(format!(
                "pull secret `{source}` has type `{}`, not `{SECRET_TYPE_DOCKER_CONFIG_JSON}`; the kubelet ignores it too",
                shown(other)
            ));
            return Ok(parsed);
        }
    };
    let err = |detail: &str| format!("pull secret `{source}`: {detail}");
    let bytes = data
        .get(key)
        .ok_or_else(|| err(&format!("a secret of type `{secret_type}` without `{key}`")))?;
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        err(&format!(
            "`{key}` is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let serde_json::Value::Object(mut config) = value else {
        return Err(err(&format!("`{key}` is not a JSON object")));
    };
    let auths = if wrapped {
        match config.remove("auths") {
            None | Some(serde_json::Value::Null) => serde_json::Map::new(),
            Some(serde_json::Value::Object(auths)) => auths,
            Some(_) => return Err(err(&format!("`{key}`: `auths` is not a JSON object"))),
        }
    } else {
        config
    };
    for (entry_key, entry) in auths {
        let Some(registry) = registry_of_key(&entry_key) else {
            parsed.notes.push(format!(
                "pull secret `{source}`: the entry `{}` names no registry; ignored",
                shown(&entry_key)
            ));
            continue;
        };
        // One entry per config, under the registry's normalised name, so that `source_for` finds only this one.
        let mut single_auths = serde_json::Map::new();
        single_auths.insert(registry.clone(), entry);
        let single = serde_json::json!({ "auths": single_auths });
        let found = serde_json::to_vec(&single)
            .ok()
            .and_then(|bytes| DockerConfig::from_json(&bytes).ok())
            .and_then(|config| config.source_for(&registry).ok());
        match found {
            Some(CredentialSource::Inline(Some(credential))) => {
                if !parsed.entries.iter().any(|(r, _)| *r == registry) {
                    parsed.entries.push((registry, credential));
                }
            }
            Some(_) => parsed.notes.push(format!(
                "pull secret `{source}`: the entry `{}` holds no credential; ignored",
                shown(&entry_key)
            )),
            None => {
                return Err(err(&format!(
                    "`{key}`: the entry `{}` is malformed (a field of the wrong type, or `auth` that is not \
                     base64 of user:password)",
                    shown(&entry_key)
                )));
            }
        }
    }
    if parsed.entries.is_empty() && parsed.notes.is_empty() {
        parsed.notes.push(format!(
            "pull secret `{source}` holds no registry credentials"
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(key: &str, json: &str) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(key.to_owned(), json.as_bytes().to_vec())])
    }

    #[test]
    fn dockerconfigjson_entries_by_registry() {
        // `auth` is base64 of "alice:s3cret-pw".
        let secret = parse_pull_secret(
            "team-a/regcred",
            SECRET_TYPE_DOCKER_CONFIG_JSON,
            &data(
                ".dockerconfigjson",
                r#"{"auths": {"https://Registry.Example:5000/v1/": {"auth": "YWxpY2U6czNjcmV0LXB3"},
                              "https://index.docker.io/v1/": {"username": "bob", "password": "hub-pw"},
                              "": {"auth": "eDp5"}}}"#,
            ),
        )
        .expect("parsed");
        let registries: Vec<&str> = secret.entries.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(registries, ["registry.example:5000", "docker.io"]);
        assert_eq!(
            secret.entries[0].1,
            Credential::Basic {
                username: "alice".into(),
                password: "s3cret-pw".into()
            }
        );
        assert_eq!(secret.notes.len(), 1, "{:?}", secret.notes);
        let shown = format!("{secret:?}");
        assert!(
            !shown.contains("s3cret-pw") && !shown.contains("hub-pw"),
            "{shown}"
        );

        let credentials = PullCredentials::from_secrets([&secret]);
        let (source, _) = credentials.for_registry("docker.io").expect("docker hub");
        assert_eq!(source, "team-a/regcred");
        assert!(credentials.for_registry("ghcr.io").is_none());
        let shown = format!("{credentials:?}");
        assert!(
            shown.contains("team-a/regcred") && !shown.contains("s3cret-pw"),
            "{shown}"
        );
    }

    #[test]
    fn first_secret_wins_per_registry_and_dockercfg_is_read() {
        let first = parse_pull_secret(
            "ns/first",
            SECRET_TYPE_DOCKERCFG,
            &data(".dockercfg", r#"{"r.example": {"auth": "YTpi"}}"#),
        )
        .expect("first");
        let second = parse_pull_secret(
            "ns/second",
            SECRET_TYPE_DOCKER_CONFIG_JSON,
            &data(
                ".dockerconfigjson",
                r#"{"auths": {"r.example": {"auth": "Yzpk"}}}"#,
            ),
        )
        .expect("second");
        let credentials = PullCredentials::from_secrets([&first, &second]);
        assert_eq!(
            credentials.for_registry("r.example").map(|(s, _)| s),
            Some("ns/first")
        );
    }

    #[test]
    fn bad_secrets_are_named_without_their_values() {
        let wrong_type = parse_pull_secret("ns/tls", "kubernetes.io/tls", &BTreeMap::new())
            .expect("another type is a note");
        assert!(wrong_type.entries.is_empty());
        assert!(wrong_type.notes[0].contains("`ns/tls` has type `kubernetes.io/tls`"));

        for (json, want) in [
            (
                "{not json",
                "pull secret `ns/bad`: `.dockerconfigjson` is not JSON (line 1, column 2)",
            ),
            (
                "[]",
                "pull secret `ns/bad`: `.dockerconfigjson` is not a JSON object",
            ),
            (
                r#"{"auths": "hunter2"}"#,
                "pull secret `ns/bad`: `.dockerconfigjson`: `auths` is not a JSON object",
            ),
            (
                r#"{"auths": {"r.example": {"auth": "not base64 hunter2!"}}}"#,
                "pull secret `ns/bad`: `.dockerconfigjson`: the entry `r.example` is malformed",
            ),
            (
                r#"{"auths": {"r.example": {"password": 12}}}"#,
                "pull secret `ns/bad`: `.dockerconfigjson`: the entry `r.example` is malformed",
            ),
        ] {
            let e = parse_pull_secret(
                "ns/bad",
                SECRET_TYPE_DOCKER_CONFIG_JSON,
                &data(".dockerconfigjson", json),
            )
            .expect_err(json);
            assert!(e.starts_with(want), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let e = parse_pull_secret("ns/empty", SECRET_TYPE_DOCKER_CONFIG_JSON, &BTreeMap::new())
            .expect_err("no key");
        assert_eq!(
            e,
            "pull secret `ns/empty`: a secret of type `kubernetes.io/dockerconfigjson` without `.dockerconfigjson`"
        );
    }
}
