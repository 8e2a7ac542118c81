//! Image references, parsed and normalised as docker/distribution's `ParseNormalizedNamed` does.
//!
//! Grammar (distribution `reference/reference.go`):
//! `reference := name [":" tag] ["@" digest]`, `name := [domain "/"] path`,
//! `domain := host [":" port]`, `host := domain-name | IPv4 | "[" IPv6 "]"`,
//! `path-component := [a-z0-9]+ (separator [a-z0-9]+)*` with `separator := [_.] | __ | -+`,
//! `tag := [\w][\w.-]{0,127}`, names at most 255 characters.
//!
//! Normalisation: a first component is a domain only if it holds `.` or `:`, is `localhost`, or has upper-case
//! letters; otherwise the domain is `docker.io`. `index.docker.io` becomes `docker.io`, and single-component
//! Docker Hub names get `library/`. The API host of `docker.io` is `registry-1.docker.io`.
use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// Docker Hub's canonical domain in references.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
/// Docker Hub's legacy domain, normalised to [`DOCKER_HUB_DOMAIN`].
pub const DOCKER_HUB_LEGACY_DOMAIN: &str = "index.docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// Longest repository name (domain + `/` + path), as distribution's `NameTotalLengthMax`.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag.
pub const TAG_LENGTH_MAX: usize = 128;

/// Why a reference was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceErrorKind {
    /// Empty input.
    #[error("repository name must have at least one component")]
    Empty,
    /// A bare 64-hex string (an image ID, not a name).
    #[error("a 64-character hexadecimal string is an image ID, not a repository name")]
    HexIdentifier,
    /// The repository path has upper-case letters.
    #[error("repository name {0:?} must be lowercase")]
    UppercaseRepository(String),
    /// The registry host or port is malformed.
    #[error("invalid registry host {0:?}")]
    InvalidDomain(String),
    /// The registry port is not a number from 0 to 65535 (distribution's grammar accepts any digits).
    #[error("invalid registry port in {0:?}: a port is a number from 0 to 65535")]
    InvalidPort(String),
    /// A path component is empty or malformed.
    #[error(
        "invalid repository path {0:?} (components are [a-z0-9] joined by '.', '_', '__' or dashes)"
    )]
    InvalidPath(String),
    /// Domain + path longer than 255 characters.
    #[error("repository name is {0} characters, more than the limit of 255")]
    NameTooLong(usize),
    /// The tag does not match `[\w][\w.-]{0,127}`.
    #[error("invalid tag {0:?} (1-128 characters of [A-Za-z0-9_.-], not starting with '.' or '-')")]
    InvalidTag(String),
    /// The digest is malformed or unsupported.
    #[error(transparent)]
    InvalidDigest(DigestError),
}

/// A reference that could not be parsed, with the input it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input:?}: {kind}")]
pub struct ReferenceError {
    /// The text given.
    pub input: String,
    /// What was wrong.
    pub kind: ReferenceErrorKind,
}

/// A normalised image reference: registry, repository, optional tag and optional digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises `input` (see the module docs).
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let err = |kind| ReferenceError {
            input: input.to_string(),
            kind,
        };
        if input.is_empty() {
            return Err(err(ReferenceErrorKind::Empty));
        }
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'a'..=b'f' | b'0'..=b'9'))
        {
            return Err(err(ReferenceErrorKind::HexIdentifier));
        }
        let (mut domain, mut remainder) = split_docker_domain(input);
        if domain == DOCKER_HUB_LEGACY_DOMAIN {
            domain = DOCKER_HUB_DOMAIN.to_string();
        }
        if domain == DOCKER_HUB_DOMAIN && !remainder.contains('/') {
            remainder = format!("library/{remainder}");
        }
        // Split off the digest, then the tag (a path cannot hold ':' or '@').
        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((left, digest)) => (left, Some(digest)),
            None => (remainder.as_str(), None),
        };
        let (path, tag) = match name_and_tag.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (name_and_tag, None),
        };
        if path.to_ascii_lowercase() != path {
            return Err(err(ReferenceErrorKind::UppercaseRepository(
                path.to_string(),
            )));
        }
        if !domain_ok(&domain) {
            return Err(err(ReferenceErrorKind::InvalidDomain(domain)));
        }
        if !port_in_range(&domain) {
            return Err(err(ReferenceErrorKind::InvalidPort(domain)));
        }
        if !path.split('/').all(path_component_ok) {
            return Err(err(ReferenceErrorKind::InvalidPath(path.to_string())));
        }
        let name_len = domain.len() + 1 + path.len();
        if name_len > NAME_TOTAL_LENGTH_MAX {
            return Err(err(ReferenceErrorKind::NameTooLong(name_len)));
        }
        if let Some(tag) = tag {
            if !tag_ok(tag) {
                return Err(err(ReferenceErrorKind::InvalidTag(tag.to_string())));
            }
        }
        let digest = match digest {
            Some(d) => {
                Some(Digest::parse(d).map_err(|e| err(ReferenceErrorKind::InvalidDigest(e)))?)
            }
            None => None,
        };
        Ok(Reference {
            registry: domain,
            repository: path.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// A reference to `digest` in the same repository (the tag is dropped).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// A reference to `tag` in the same repository (the digest is dropped).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !tag_ok(tag) {
            return Err(ReferenceError {
                input: format!("{}:{tag}", self.name()),
                kind: ReferenceErrorKind::InvalidTag(tag.to_string()),
            });
        }
        Ok(Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The registry as written in normalised references (`docker.io`, `ghcr.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) that serves the registry API: `registry-1.docker.io` for Docker Hub.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB_DOMAIN {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// The repository path (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `registry/repository`, distribution's `Name()`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The repository as go-containerregistry and cosign name it (`index.docker.io/library/busybox`), which is
    /// what cosign signs as the `docker-reference`.
    pub fn ggcr_repository(&self) -> String {
        if self.registry == DOCKER_HUB_DOMAIN {
            format!("{DOCKER_HUB_LEGACY_DOMAIN}/{}", self.repository)
        } else {
            self.name()
        }
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What goes after `/manifests/`: the digest if present, else the tag, else `latest`.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// distribution's `splitDockerDomain`, before the `index.docker.io` and `library/` rules.
fn split_docker_domain(input: &str) -> (String, String) {
    match input.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_ascii_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB_DOMAIN.to_string(), input.to_string()),
    }
}

fn domain_ok(domain: &str) -> bool {
    let (host, port) = if domain.starts_with('[') {
        match domain.find(']') {
            Some(end) => domain.split_at(end + 1),
            None => return false,
        }
    } else {
        match domain.find(':') {
            Some(i) => domain.split_at(i),
            None => (domain, ""),
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => !ipv6.is_empty() && ipv6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
        None => !host.is_empty() && host.split('.').all(domain_component_ok),
    };
    port_ok && host_ok
}

/// Whether the port of a `domain_ok` domain, if any, fits in 16 bits (no request could reach a larger one).
fn port_in_range(domain: &str) -> bool {
    let after_host = match domain.rfind(']') {
        Some(end) => &domain[end + 1..],
        None => domain,
    };
    match after_host.split_once(':') {
        Some((_, port)) => port.parse::<u16>().is_ok(),
        None => true,
    }
}

fn domain_component_ok(c: &str) -> bool {
    let bytes = c.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

fn path_component_ok(c: &str) -> bool {
    // alpha-numeric (separator alpha-numeric)*, separator := [_.] | __ | -+
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        if expect_alnum {
            if !alnum(bytes[i]) {
                return false;
            }
            while i < bytes.len() && alnum(bytes[i]) {
                i += 1;
            }
            expect_alnum = false;
        } else {
            let start = i;
            match bytes[i] {
                b'.' => i += 1,
                b'_' => {
                    i += 1;
                    if i < bytes.len() && bytes[i] == b'_' {
                        i += 1;
                    }
                }
                b'-' => {
                    while i < bytes.len() && bytes[i] == b'-' {
                        i += 1;
                    }
                }
                _ => return false,
            }
            if i == start {
                return false;
            }
            expect_alnum = true;
        }
    }
    // non-empty and not ending in a separator
    !bytes.is_empty() && !expect_alnum
}

fn tag_ok(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    match bytes.first() {
        Some(first) if word(*first) => {
            bytes.len() <= TAG_LENGTH_MAX
                && bytes.iter().all(|b| word(*b) || *b == b'.' || *b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
