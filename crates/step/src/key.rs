//! The dedupe build key: identifies a build's inputs, so a second build of the same inputs is skipped.
//!
//! Encoding (version 1): the sha256, lower-case hex, of the compact JSON object
//!
//! ```json
//! {"v":1,"commit":"<sha>","planDigest":"sha256:<hex of plan.json bytes>","secretsHash":"<hex or empty>",
//!  "platforms":["linux/amd64"],"railpackVersion":"v0.7.2","contextPath":".","buildArgs":["K=V"]}
//! ```
//!
//! with the keys in exactly this order, strings JSON-escaped (serde_json), `platforms` sorted and de-duplicated
//! and `buildArgs` in the order given (later ones override earlier ones in BuildKit, so order matters).
//! Reproduce it with `jq -cj '{v:1,commit:...}' | sha256sum`. Besides the five inputs the design names, the key
//! also covers `contextPath` and the additional build args: both change what is built from the same plan.
//!
//! The registry records a finished build as a tag `build-<first 32 hex digits of the key>` in the image's
//! repository, and the full key in the annotation `dev.kibaship.build-key` of the image (index) it points at.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Prefix of the dedupe tag.
pub const DEDUPE_TAG_PREFIX: &str = "build-";
/// Hex digits of the key kept in the tag (128 bits).
pub const DEDUPE_TAG_HEX: usize = 32;

/// The inputs of a build.
#[derive(Debug, Clone, Serialize)]
pub struct BuildKeyInput<'a> {
    /// The git commit SHA.
    pub commit: &'a str,
    /// `sha256:<hex>` of plan.json's bytes.
    #[serde(rename = "planDigest")]
    pub plan_digest: &'a str,
    /// The secrets-hash (empty when there are no secrets).
    #[serde(rename = "secretsHash")]
    pub secrets_hash: &'a str,
    /// Target platforms (normalised by [`build_key`]).
    pub platforms: Vec<String>,
    /// The Railpack version (CLI and frontend).
    #[serde(rename = "railpackVersion")]
    pub railpack_version: &'a str,
    /// The app's directory inside the repository.
    #[serde(rename = "contextPath")]
    pub context_path: &'a str,
    /// Additional build args, `KEY=VALUE`, in order.
    #[serde(rename = "buildArgs")]
    pub build_args: &'a [String],
}

#[derive(Serialize)]
struct Versioned<'a> {
    v: u32,
    #[serde(flatten)]
    input: &'a BuildKeyInput<'a>,
}

/// The build key, hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildKey(String);

impl BuildKey {
    /// The full key (64 hex digits).
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The tag that records a finished build with this key.
    pub fn dedupe_tag(&self) -> String {
        format!("{DEDUPE_TAG_PREFIX}{}", &self.0[..DEDUPE_TAG_HEX])
    }
}

/// The canonical bytes hashed into the key.
pub fn canonical_encoding(input: &BuildKeyInput<'_>) -> Vec<u8> {
    let mut normalised = input.clone();
    normalised.platforms.sort();
    normalised.platforms.dedup();
    // Serialising a struct of strings cannot fail.
    serde_json::to_vec(&Versioned {
        v: 1,
        input: &normalised,
    })
    .unwrap_or_default()
}

/// Computes the build key.
pub fn build_key(input: &BuildKeyInput<'_>) -> BuildKey {
    BuildKey(hex::encode(Sha256::digest(canonical_encoding(input))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BuildKeyInput<'static> {
        BuildKeyInput {
            commit: "960ef4fb6190de6aa8b394bf2f0d552ee67675c3",
            plan_digest: "sha256:00",
            secrets_hash: "",
            platforms: vec!["linux/amd64".into()],
            railpack_version: "v0.7.2",
            context_path: ".",
            build_args: &[],
        }
    }

    #[test]
    fn encoding_is_the_documented_json() {
        let got = String::from_utf8(canonical_encoding(&base())).expect("utf-8");
        assert_eq!(
            got,
            r#"{"v":1,"commit":"960ef4fb6190de6aa8b394bf2f0d552ee67675c3","planDigest":"sha256:00","secretsHash":"","platforms":["linux/amd64"],"railpackVersion":"v0.7.2","contextPath":".","buildArgs":[]}"#
        );
        let key = build_key(&base());
        assert_eq!(key.as_str().len(), 64);
        assert_eq!(key.dedupe_tag(), format!("build-{}", &key.as_str()[..32]));
    }

    #[test]
    fn every_input_changes_the_key() {
        let k0 = build_key(&base());
        let args = vec!["A=1".to_string()];
        let variants = [
            BuildKeyInput {
                commit: "1111111111111111111111111111111111111111",
                ..base()
            },
            BuildKeyInput {
                plan_digest: "sha256:01",
                ..base()
            },
            BuildKeyInput {
                secrets_hash: "ab",
                ..base()
            },
            BuildKeyInput {
                platforms: vec!["linux/arm64".into()],
                ..base()
            },
            BuildKeyInput {
                railpack_version: "v0.7.3",
                ..base()
            },
            BuildKeyInput {
                context_path: "apps/web",
                ..base()
            },
            BuildKeyInput {
                build_args: &args,
                ..base()
            },
        ];
        for v in &variants {
            assert_ne!(build_key(v), k0, "{v:?}");
        }
        // platform order and repeats do not matter
        let p = BuildKeyInput {
            platforms: vec!["linux/amd64".into(), "linux/amd64".into()],
            ..base()
        };
        assert_eq!(build_key(&p), k0);
        // a field boundary cannot be shifted: JSON quotes every string
        let a = BuildKeyInput {
            commit: "a\",\"planDigest\":\"x",
            ..base()
        };
        assert_ne!(build_key(&a), k0);
    }
}
