//! Image names and OCI annotations for what the build pushes. Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::failure::{Classify, FailureKind};
use crate::plan::RailpackInfo;

// OCI distribution-spec grammar (spec.md "Pulling manifests"): repository path components and tags.
static REPOSITORY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
        .expect("static regex")
});
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("static regex"));
// host, IPv4 or [IPv6], optional port (the docker reference grammar's domain).
static REGISTRY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(\.([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[0-9a-fA-F:.]+\])(:[0-9]{1,5})?$")
        .expect("static regex")
});
// A project or app slug: a DNS label.
static SLUG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$").expect("static regex"));
static COMMIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9a-f]{40}|[0-9a-f]{64})$").expect("static regex"));

/// A rejected image name part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageNameError {
    #[error("imageRegistry {0:?} is not a registry host (host[:port], no scheme, no path)")]
    Registry(String),
    #[error(
        "imageRepository {0:?} is not an OCI repository name (lower-case path components [a-z0-9] joined by . _ __ -)"
    )]
    Repository(String),
    #[error("imageTag {0:?} is not an OCI tag ([a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}})")]
    Tag(String),
    #[error(
        "{what} {value:?} is not a slug (a DNS label: lower-case letters, digits, '-', at most 63 characters)"
    )]
    Slug { what: &'static str, value: String },
    #[error("commit {0:?} is not a full git commit SHA (40 or 64 lower-case hex digits)")]
    Commit(String),
    #[error(
        "imageRepository {0:?} is under kibaship/ but is not kibaship/<project>/<app> with DNS-label slugs"
    )]
    KibashipLayout(String),
    #[error("repository plus tag is longer than 255 characters")]
    TooLong,
}

impl Classify for ImageNameError {
    fn kind(&self) -> FailureKind {
        FailureKind::BadParameters
    }
}

/// `<registry>/<repository>:<tag>`, every part validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    registry: String,
    repository: String,
    tag: String,
}

impl ImageName {
    /// Validates the three parts. A repository under `kibaship/` must follow the design's layout
    /// `kibaship/<project>/<app>`.
    pub fn new(registry: &str, repository: &str, tag: &str) -> Result<ImageName, ImageNameError> {
        if !REGISTRY.is_match(registry) {
            return Err(ImageNameError::Registry(registry.to_string()));
        }
        if !REPOSITORY.is_match(repository) {
            return Err(ImageNameError::Repository(repository.to_string()));
        }
        if let Some(rest) = repository.strip_prefix("kibaship/") {
            let parts: Vec<&str> = rest.split('/').collect();
            if parts.len() != 2 || !parts.iter().all(|p| SLUG.is_match(p)) {
                return Err(ImageNameError::KibashipLayout(repository.to_string()));
            }
        }
        if !TAG.is_match(tag) {
            return Err(ImageNameError::Tag(tag.to_string()));
        }
        if repository.len() + 1 + tag.len() > 255 {
            return Err(ImageNameError::TooLong);
        }
        Ok(ImageName {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.to_string(),
        })
    }

    /// The design's name for an application build: `<registry>/kibaship/<project>/<app>:<commit sha>`.
    pub fn for_app(
        registry: &str,
        project: &str,
        app: &str,
        commit: &str,
    ) -> Result<ImageName, ImageNameError> {
        if !SLUG.is_match(project) {
            return Err(ImageNameError::Slug {
                what: "project",
                value: project.to_string(),
            });
        }
        if !SLUG.is_match(app) {
            return Err(ImageNameError::Slug {
                what: "app",
                value: app.to_string(),
            });
        }
        validate_commit(commit)?;
        ImageName::new(registry, &format!("kibaship/{project}/{app}"), commit)
    }

    /// The registry host.
    pub fn registry(&self) -> &str {
        &self.registry
    }
    /// The repository path.
    pub fn repository(&self) -> &str {
        &self.repository
    }
    /// The tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }
    /// The same repository with another (already valid) tag.
    pub fn with_tag(&self, tag: &str) -> Result<ImageName, ImageNameError> {
        ImageName::new(&self.registry, &self.repository, tag)
    }
    /// `<registry>/<repository>@<digest>`.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}/{}@{}", self.registry, self.repository, digest)
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

/// Checks a git commit SHA (full, lower-case hex: SHA-1 or SHA-256 repositories).
pub fn validate_commit(commit: &str) -> Result<(), ImageNameError> {
    if COMMIT.is_match(commit) {
        Ok(())
    } else {
        Err(ImageNameError::Commit(commit.to_string()))
    }
}

/// Annotation key holding the full dedupe build key (see [`crate::key`]).
pub const BUILD_KEY_ANNOTATION: &str = "dev.kibaship.build-key";
/// Annotation key prefix for Railpack's build info.
pub const RAILPACK_ANNOTATION_PREFIX: &str = "dev.kibaship.railpack.";
/// Longest annotation value taken from info.json metadata (longer ones are left out, not cut).
pub const MAX_METADATA_VALUE: usize = 256;
/// At most this many metadata annotations.
pub const MAX_METADATA_ENTRIES: usize = 32;

/// What the annotations describe.
#[derive(Debug, Clone)]
pub struct AnnotationInput<'a> {
    /// `org.opencontainers.image.source`: the repository URL (may be empty: then left out).
    pub source_url: &'a str,
    /// `org.opencontainers.image.revision`: the commit.
    pub revision: &'a str,
    /// `org.opencontainers.image.created`, RFC 3339.
    pub created: &'a str,
    /// `org.opencontainers.image.authors`: who is responsible for the image, free-form (may be empty: then left
    /// out; checked by [`check_authors`]).
    pub authors: &'a str,
    /// The full build key.
    pub build_key: &'a str,
    /// Railpack's info.json, if read.
    pub info: Option<&'a RailpackInfo>,
}

/// The OCI annotations put on the pushed manifest and index.
///
/// Standard keys (`org.opencontainers.image.source`, `.revision`, `.created`, `.authors`), the build key, and Railpack's
/// build info under `dev.kibaship.railpack.`: `version`, `providers` (comma-joined), and `metadata.<key>` for
/// each metadata string whose key is `[A-Za-z0-9._-]+` and whose value has no control characters and at most
/// [`MAX_METADATA_VALUE`] bytes.
pub fn annotations(input: &AnnotationInput<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if !input.source_url.is_empty() {
        out.insert(
            "org.opencontainers.image.source".to_string(),
            input.source_url.to_string(),
        );
    }
    out.insert(
        "org.opencontainers.image.revision".to_string(),
        input.revision.to_string(),
    );
    out.insert(
        "org.opencontainers.image.created".to_string(),
        input.created.to_string(),
    );
    if check_authors(input.authors).is_ok() && !input.authors.is_empty() {
        out.insert(
            "org.opencontainers.image.authors".to_string(),
            input.authors.to_string(),
        );
    }
    out.insert(
        BUILD_KEY_ANNOTATION.to_string(),
        input.build_key.to_string(),
    );
    if let Some(info) = input.info {
        if let Some(v) = info
            .railpack_version
            .as_deref()
            .filter(|v| annotation_value_ok(v))
        {
            out.insert(
                format!("{RAILPACK_ANNOTATION_PREFIX}version"),
                v.to_string(),
            );
        }
        let providers = info.detected_providers.join(",");
        if !providers.is_empty() && annotation_value_ok(&providers) {
            out.insert(format!("{RAILPACK_ANNOTATION_PREFIX}providers"), providers);
        }
        let usable = info.metadata.iter().filter(|(k, v)| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                && annotation_value_ok(v)
        });
        for (k, v) in usable.take(MAX_METADATA_ENTRIES) {
            out.insert(
                format!("{RAILPACK_ANNOTATION_PREFIX}metadata.{k}"),
                v.clone(),
            );
        }
    }
    out
}

/// Checks the `authors` parameter: empty (no annotation), or at most [`MAX_METADATA_VALUE`] bytes without
/// control characters.
pub fn check_authors(authors: &str) -> Result<(), String> {
    if authors.is_empty() || annotation_value_ok(authors) {
        Ok(())
    } else if authors.len() > MAX_METADATA_VALUE {
        Err(format!(
            "--authors: {} bytes, more than the {MAX_METADATA_VALUE} accepted",
            authors.len()
        ))
    } else {
        Err(format!(
            "--authors {:?} contains a control character",
            authors
        ))
    }
}

fn annotation_value_ok(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_METADATA_VALUE && !v.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "960ef4fb6190de6aa8b394bf2f0d552ee67675c3";

    #[test]
    fn app_names_follow_the_design() {
        let n = ImageName::for_app("ghcr.io", "acme", "web-api", SHA).expect("valid");
        assert_eq!(
            n.to_string(),
            format!("ghcr.io/kibaship/acme/web-api:{SHA}")
        );
        assert_eq!(
            n.pinned("sha256:ab"),
            "ghcr.io/kibaship/acme/web-api@sha256:ab"
        );
        assert!(ImageName::for_app("127.0.0.1:5000", "a", "b", SHA).is_ok());
        assert!(matches!(
            ImageName::for_app("ghcr.io", "Acme", "x", SHA),
            Err(ImageNameError::Slug { .. })
        ));
        assert!(matches!(
            ImageName::for_app("ghcr.io", "a", "x-", SHA),
            Err(ImageNameError::Slug { .. })
        ));
        assert!(matches!(
            ImageName::for_app("ghcr.io", "a", "b", "960ef4f"),
            Err(ImageNameError::Commit(_))
        ));
        assert!(matches!(
            ImageName::for_app("ghcr.io", "a", "b", &SHA.to_uppercase()),
            Err(ImageNameError::Commit(_))
        ));
    }

    #[test]
    fn generic_parts_are_validated() {
        assert!(ImageName::new("https://ghcr.io", "a/b", "t").is_err());
        assert!(ImageName::new("ghcr.io/x", "a/b", "t").is_err());
        assert!(ImageName::new("ghcr.io", "A/b", "t").is_err());
        assert!(ImageName::new("ghcr.io", "a//b", "t").is_err());
        assert!(ImageName::new("ghcr.io", "a/b", "-t").is_err());
        assert!(ImageName::new("ghcr.io", "a/b", "t;rm").is_err());
        assert!(ImageName::new("ghcr.io", "a/b,push=false", "t").is_err());
        assert!(matches!(
            ImageName::new("ghcr.io", "kibaship/a", "t"),
            Err(ImageNameError::KibashipLayout(_))
        ));
        assert!(ImageName::new("[::1]:5000", "kibamail/app", "v1.2").is_ok());
    }

    #[test]
    fn issue_16_authors_annotation() {
        let input = |authors| AnnotationInput {
            source_url: "",
            revision: SHA,
            created: "2026-11-25T08:00:00Z",
            authors,
            build_key: "k",
            info: None,
        };
        let a = annotations(&input("Acme Platform Team <platform@acme.example>"));
        assert_eq!(
            a["org.opencontainers.image.authors"],
            "Acme Platform Team <platform@acme.example>"
        );
        assert!(check_authors("Acme <a@acme.example>").is_ok());
        assert!(check_authors("").is_ok());
        let e = check_authors("a\nb").expect_err("control");
        assert!(e.contains("--authors") && e.contains("control"), "{e}");
        let long = "a".repeat(MAX_METADATA_VALUE + 1);
        assert!(
            check_authors(&long)
                .expect_err("long")
                .contains("257 bytes")
        );
        assert!(!annotations(&input(&long)).contains_key("org.opencontainers.image.authors"));
    }

    #[test]
    fn annotations_carry_source_and_railpack_info() {
        let mut info = RailpackInfo {
            railpack_version: Some("0.7.2".into()),
            detected_providers: vec!["node".into()],
            ..Default::default()
        };
        info.metadata.insert("nodeRuntime".into(), "next".into());
        info.metadata.insert("bad key".into(), "x".into());
        info.metadata.insert("multiline".into(), "a\nb".into());
        let a = annotations(&AnnotationInput {
            source_url: "https://github.com/railwayapp/railpack",
            revision: SHA,
            created: "2026-11-25T08:00:00Z",
            authors: "",
            build_key: "k",
            info: Some(&info),
        });
        assert_eq!(a["org.opencontainers.image.revision"], SHA);
        assert!(!a.contains_key("org.opencontainers.image.authors"));
        assert_eq!(a["dev.kibaship.railpack.version"], "0.7.2");
        assert_eq!(a["dev.kibaship.railpack.providers"], "node");
        assert_eq!(a["dev.kibaship.railpack.metadata.nodeRuntime"], "next");
        assert!(
            !a.keys()
                .any(|k| k.contains("bad key") || k.contains("multiline"))
        );
    }
}
