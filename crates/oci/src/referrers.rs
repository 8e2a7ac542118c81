//! OCI 1.1 referrers: listing (API, else the `sha256-<hex>` tag-schema fallback) and attaching artifacts.
//!
//! API detection follows go-containerregistry: `GET /v2/<name>/referrers/<digest>` answering 200 with
//! `Content-Type: application/vnd.oci.image.index.v1+json` means the registry has the API; 404 or 400 or any
//! other content type means "use the fallback tag". The answer is cached per (registry, repository).
use std::collections::BTreeMap;

use crate::client::{BlobUpload, Fetched, RegistryClient, check_status, read_lock, write_lock};
use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::{
    ANNOTATION_TITLE, Descriptor, EMPTY_JSON, ImageIndex, ImageManifest, OCI_INDEX, OCI_MANIFEST,
};
use crate::reference::Reference;

const MAX_REFERRER_PAGES: usize = 1000;
/// Most descriptors one referrers listing may hold, across all its pages (before filtering by artifact type).
pub const MAX_REFERRERS: usize = 10_000;
/// Most bytes of referrers pages read for one listing, across all its pages.
pub const MAX_REFERRERS_BYTES: u64 = 16 * 1024 * 1024;
const FALLBACK_WRITE_ATTEMPTS: usize = 3;

/// Where a referrers listing came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrersSource {
    /// The registry's referrers API.
    Api,
    /// The `<alg>-<hex>` fallback index tag.
    FallbackTag,
}

/// The referrers of one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrers {
    /// The subject's digest.
    pub subject: Digest,
    /// Descriptors of the referring manifests (filtered by artifact type when asked).
    pub descriptors: Vec<Descriptor>,
    /// API or fallback tag.
    pub source: ReferrersSource,
}

/// An artifact to attach to an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The manifest's `artifactType`.
    pub artifact_type: String,
    /// The single layer's media type.
    pub layer_media_type: String,
    /// The layer's content (shared, not copied, when it is sent).
    pub content: bytes::Bytes,
    /// The sha256 digest of `content` when the caller has computed it already (a large layer is then hashed
    /// once, for instance while it is being validated); `None` to have it computed. It must be `content`'s:
    /// the registry checks it on upload, but a registry that has a blob of that digest is sent nothing.
    pub content_digest: Option<Digest>,
    /// `org.opencontainers.image.title` of the layer (a file name), if any.
    pub title: Option<String>,
    /// Manifest annotations (also copied to the fallback index descriptor, as the spec requires).
    pub annotations: BTreeMap<String, String>,
}

impl Artifact {
    /// The layer's descriptor (without its title).
    pub fn layer_descriptor(&self) -> Descriptor {
        match &self.content_digest {
            Some(digest) => Descriptor {
                digest: digest.clone(),
                size: self.content.len() as u64,
                ..Descriptor::of(&self.layer_media_type, b"")
            },
            None => Descriptor::of(&self.layer_media_type, &self.content),
        }
    }
}

/// The outcome of [`RegistryClient::attach_artifact`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The artifact manifest's descriptor.
    pub manifest: Descriptor,
    /// The subject's descriptor.
    pub subject: Descriptor,
    /// Whether the registry indexes it (API) or the fallback index was updated.
    pub via: ReferrersSource,
}

enum Probe {
    Api(Vec<Descriptor>),
    NoApi,
}

/// How much of a referrers listing is read: all its pages, or only the first (enough to learn that the API
/// exists).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pages {
    All,
    First,
}

impl RegistryClient {
    /// Lists the referrers of `subject` (a tag is resolved first), optionally only those of `artifact_type`.
    pub async fn list_referrers(
        &self,
        subject: &Reference,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, Error> {
        let digest = match subject.digest() {
            Some(d) => d.clone(),
            None => self.resolve_digest(subject, None).await?.digest,
        };
        let reg = self.registry(subject);
        let known = read_lock(&reg.referrers_api)
            .get(subject.repository())
            .copied();
        if known != Some(false) {
            match self
                .referrers_via_api(subject, &digest, artifact_type, Pages::All)
                .await?
            {
                Probe::Api(descriptors) => {
                    write_lock(&reg.referrers_api).insert(subject.repository().to_string(), true);
                    return Ok(Referrers {
                        subject: digest,
                        descriptors,
                        source: ReferrersSource::Api,
                    });
                }
                Probe::NoApi => {
                    write_lock(&reg.referrers_api).insert(subject.repository().to_string(), false);
                }
            }
        }
        let index = self
            .fallback_index(subject, &digest)
            .await?
            .unwrap_or_else(ImageIndex::empty_oci);
        if index.manifests.len() > MAX_REFERRERS {
            return Err(Error::Protocol {
                registry: reg.name.clone(),
                what: format!("referrers fallback index of {}@{digest}", subject.name()),
                detail: format!(
                    "it holds {} descriptors, more than the limit of {MAX_REFERRERS}",
                    index.manifests.len()
                ),
            });
        }
        let descriptors = filter_by_artifact_type(index.manifests, artifact_type);
        Ok(Referrers {
            subject: digest,
            descriptors,
            source: ReferrersSource::FallbackTag,
        })
    }

    async fn referrers_via_api(
        &self,
        subject: &Reference,
        digest: &Digest,
        artifact_type: Option<&str>,
        pages: Pages,
    ) -> Result<Probe, Error> {
        let reg = self.registry(subject);
        let mut path = format!("/v2/{}/referrers/{digest}", subject.repository());
        if let Some(t) = artifact_type {
            path.push_str(&format!("?artifactType={}", encode_query_value(t)));
        }
        let mut all = Vec::new();
        let mut received = 0usize;
        let mut bytes = 0u64;
        let mut visited = std::collections::HashSet::new();
        let listing = || format!("referrers listing of {}@{digest}", subject.name());
        let over = |detail: String| Error::Protocol {
            registry: reg.name.clone(),
            what: listing(),
            detail,
        };
        for page in 0..MAX_REFERRER_PAGES {
            // Pages are compared as absolute URLs, whichever form the registry's Link used.
            visited.insert(reg.absolute_url(&path));
            let fetched = self
                .fetch_listing_page(
                    &reg,
                    &path,
                    subject.repository(),
                    OCI_INDEX,
                    format!("referrers of {}@{digest}", subject.name()),
                )
                .await?;
            let content_type = fetched
                .header("content-type")
                .map(|c| c.split(';').next().unwrap_or("").trim().to_string());
            let is_index = fetched.status == 200 && content_type.as_deref() == Some(OCI_INDEX);
            if !is_index {
                if page == 0 && matches!(fetched.status, 200 | 400 | 404) {
                    return Ok(Probe::NoApi);
                }
                let fetched = check_status(
                    &reg,
                    fetched,
                    "referrers",
                    &format!("{}@{digest}", subject.name()),
                    "GET",
                )?;
                return Err(Error::Protocol {
                    registry: reg.name.clone(),
                    what: "referrers page".into(),
                    detail: format!(
                        "content type {:?} is not an OCI index (status {})",
                        content_type, fetched.status
                    ),
                });
            }
            bytes = bytes.saturating_add(u64::try_from(fetched.body.len()).unwrap_or(u64::MAX));
            if bytes > MAX_REFERRERS_BYTES {
                return Err(over(format!(
                    "its pages hold more than {MAX_REFERRERS_BYTES} bytes, the limit for one listing"
                )));
            }
            let index = parse_index(&reg.name, &fetched, "referrers index")?;
            received = received.saturating_add(index.manifests.len());
            if received > MAX_REFERRERS {
                return Err(over(format!(
                    "it holds more than {MAX_REFERRERS} descriptors, the limit for one listing"
                )));
            }
            let filtered_by_registry = fetched
                .header("oci-filters-applied")
                .is_some_and(|v| v.split(',').any(|f| f.trim() == "artifactType"));
            let manifests = if filtered_by_registry {
                index.manifests
            } else {
                filter_by_artifact_type(index.manifests, artifact_type)
            };
            all.extend(manifests);
            if pages == Pages::First {
                return Ok(Probe::Api(all));
            }
            match self.next_page(&reg, &fetched)? {
                Some(next) if visited.contains(&reg.absolute_url(&next)) => {
                    return Err(over(format!(
                        "its Link header points back to a page already read ({}): a loop",
                        reg.absolute_url(&next)
                    )));
                }
                Some(next) => path = next,
                None => return Ok(Probe::Api(all)),
            }
        }
        Err(Error::Protocol {
            registry: reg.name.clone(),
            what: "referrers listing".into(),
            detail: format!("more than {MAX_REFERRER_PAGES} pages"),
        })
    }

    /// Reads the fallback index `<alg>-<hex>` of `digest`; `None` when the tag does not exist.
    pub async fn fallback_index(
        &self,
        subject: &Reference,
        digest: &Digest,
    ) -> Result<Option<ImageIndex>, Error> {
        let tag_ref = subject.with_tag(&digest.referrers_fallback_tag())?;
        let Some(manifest) = self.fetch_manifest_if_exists(&tag_ref).await? else {
            return Ok(None);
        };
        let index: ImageIndex =
            serde_json::from_slice(&manifest.bytes).map_err(|e| Error::Protocol {
                registry: subject.registry().to_string(),
                what: format!("referrers fallback index {tag_ref}"),
                detail: e.to_string(),
            })?;
        Ok(Some(index))
    }

    /// Whether the registry of `subject` serves the referrers API for its repository: remembered from an
    /// earlier answer, else learnt from the first page of the listing of `digest` (and remembered). A caller
    /// that will attach an artifact can ask early, while it does other work.
    pub async fn has_referrers_api(
        &self,
        subject: &Reference,
        digest: &Digest,
    ) -> Result<bool, Error> {
        let reg = self.registry(subject);
        let known = read_lock(&reg.referrers_api)
            .get(subject.repository())
            .copied();
        if let Some(known) = known {
            return Ok(known);
        }
        let probe = self
            .referrers_via_api(subject, digest, None, Pages::First)
            .await?;
        let has = matches!(probe, Probe::Api(_));
        write_lock(&reg.referrers_api).insert(subject.repository().to_string(), has);
        Ok(has)
    }

    /// Pushes `artifact` as a one-layer OCI 1.1 artifact manifest whose `subject` is the image, then makes it
    /// discoverable: nothing more when the registry indexes subjects (`OCI-Subject` or a referrers API), else
    /// a read-modify-write of the fallback index that keeps every existing entry.
    pub async fn attach_artifact(
        &self,
        subject: &Reference,
        artifact: &Artifact,
    ) -> Result<Attached, Error> {
        let subject_manifest = self.subject_descriptor(subject).await?;
        self.attach_artifact_to(subject, subject_manifest, artifact)
            .await
    }

    /// [`Self::attach_artifact`] to a subject resolved already: `subject_manifest` is the descriptor of the
    /// manifest (from [`Self::subject_descriptor`]). The artifact and its fallback index entry go into the
    /// repository of `subject`; that may be another repository than the one holding the manifest (cosign's
    /// `COSIGN_REPOSITORY`: a referrer of the same digest kept apart), since registries accept a subject they do
    /// not have.
    pub async fn attach_artifact_to(
        &self,
        subject: &Reference,
        subject_manifest: Descriptor,
        artifact: &Artifact,
    ) -> Result<Attached, Error> {
        self.attach_staged_artifact_to(subject, subject_manifest, artifact, None)
            .await
    }

    /// [`Self::attach_artifact_to`] whose layer may have been sent already: `staged` is an upload session
    /// ([`Self::start_blob_upload`], [`Self::send_blob_upload`]) in the repository of `subject` that holds
    /// exactly `artifact.content`. It is committed instead of sending the layer again. A session of another
    /// repository or size is cancelled and the layer uploaded as usual; so is the layer when the commit fails
    /// (the session expired, or the registry lost it): the registry checks the digest either way.
    pub async fn attach_staged_artifact_to(
        &self,
        subject: &Reference,
        subject_manifest: Descriptor,
        artifact: &Artifact,
        staged: Option<BlobUpload>,
    ) -> Result<Attached, Error> {
        let repo = subject.with_digest(subject_manifest.digest.clone());
        if let Err(e) = self.push_blob(&repo, EMPTY_JSON).await {
            if let Some(upload) = &staged {
                self.cancel_blob_upload(upload).await.ok();
            }
            return Err(e);
        }
        let mut layer = artifact.layer_descriptor();
        let committed = match staged {
            Some(upload)
                if upload.repository().registry() == repo.registry()
                    && upload.repository().repository() == repo.repository()
                    && upload.sent() == artifact.content.len() as u64 =>
            {
                self.commit_blob_upload(&upload, &layer.digest)
                    .await
                    .is_ok()
            }
            Some(other) => {
                // Best effort: a session that is not used is dropped by the registry in time anyway.
                self.cancel_blob_upload(&other).await.ok();
                false
            }
            None => false,
        };
        if !committed {
            self.push_blob_with_digest(&repo, artifact.content.clone(), &layer.digest)
                .await?;
        }
        if let Some(title) = &artifact.title {
            layer
                .annotations
                .insert(ANNOTATION_TITLE.to_string(), title.clone());
        }
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_string()),
            artifact_type: Some(artifact.artifact_type.clone()),
            config: Descriptor::empty(),
            layers: vec![layer],
            subject: Some(subject_manifest.clone()),
            annotations: artifact.annotations.clone(),
        };
        let bytes = serde_json::to_vec(&manifest)
            .map_err(|e| Error::Config(format!("serialising the artifact manifest: {e}")))?;
        let digest = Digest::sha256_of(&bytes);
        let pushed = self
            .push_manifest(&repo.with_digest(digest), &bytes, OCI_MANIFEST)
            .await?;
        let mut descriptor = Descriptor::of(OCI_MANIFEST, &bytes);
        descriptor.artifact_type = Some(artifact.artifact_type.clone());
        descriptor.annotations = artifact.annotations.clone();
        if pushed.subject_indexed {
            return Ok(Attached {
                manifest: descriptor,
                subject: subject_manifest,
                via: ReferrersSource::Api,
            });
        }
        let has_api = self
            .has_referrers_api(&repo, &subject_manifest.digest)
            .await?;
        if has_api {
            return Ok(Attached {
                manifest: descriptor,
                subject: subject_manifest,
                via: ReferrersSource::Api,
            });
        }
        self.add_to_fallback_index(&repo, &subject_manifest.digest, &descriptor)
            .await?;
        Ok(Attached {
            manifest: descriptor,
            subject: subject_manifest,
            via: ReferrersSource::FallbackTag,
        })
    }

    /// Appends `entry` to the fallback index of `subject_digest` (creating it), keeping existing entries, and
    /// re-reads it to confirm; a concurrent writer that dropped the entry causes another round.
    pub async fn add_to_fallback_index(
        &self,
        repo: &Reference,
        subject_digest: &Digest,
        entry: &Descriptor,
    ) -> Result<(), Error> {
        let tag_ref = repo.with_tag(&subject_digest.referrers_fallback_tag())?;
        for _ in 0..FALLBACK_WRITE_ATTEMPTS {
            let mut index = self
                .fallback_index(repo, subject_digest)
                .await?
                .unwrap_or_else(ImageIndex::empty_oci);
            if index.manifests.iter().any(|d| d.digest == entry.digest) {
                return Ok(());
            }
            index.manifests.push(entry.clone());
            if index.media_type.is_none() {
                index.media_type = Some(OCI_INDEX.to_string());
            }
            let bytes = serde_json::to_vec(&index)
                .map_err(|e| Error::Config(format!("serialising the fallback index: {e}")))?;
            self.push_manifest(&tag_ref, &bytes, OCI_INDEX).await?;
            let confirmed = self.fallback_index(repo, subject_digest).await?;
            if confirmed.is_some_and(|i| i.manifests.iter().any(|d| d.digest == entry.digest)) {
                return Ok(());
            }
        }
        Err(Error::Protocol {
            registry: repo.registry().to_string(),
            what: format!("referrers fallback index {tag_ref}"),
            detail: format!(
                "another writer kept replacing it; {} was not kept after {FALLBACK_WRITE_ATTEMPTS} attempts",
                entry.digest
            ),
        })
    }

    /// The descriptor (media type, digest, size) of the manifest `reference` names.
    pub async fn subject_descriptor(&self, reference: &Reference) -> Result<Descriptor, Error> {
        let resolved = self.resolve_digest(reference, None).await?;
        match (resolved.media_type, resolved.size) {
            (Some(media_type), Some(size))
                if !media_type.is_empty() && media_type != "application/json" =>
            {
                Ok(Descriptor {
                    media_type,
                    digest: resolved.digest,
                    size,
                    artifact_type: None,
                    platform: None,
                    annotations: BTreeMap::new(),
                    data: None,
                })
            }
            _ => Ok(self
                .fetch_manifest(&reference.with_digest(resolved.digest))
                .await?
                .descriptor()),
        }
    }
}

fn parse_index(registry: &str, fetched: &Fetched, what: &str) -> Result<ImageIndex, Error> {
    serde_json::from_slice(&fetched.body).map_err(|e| Error::Protocol {
        registry: registry.to_string(),
        what: what.to_string(),
        detail: e.to_string(),
    })
}

/// Keeps descriptors whose `artifactType` equals `artifact_type` (all when `None`).
pub fn filter_by_artifact_type(
    descriptors: Vec<Descriptor>,
    artifact_type: Option<&str>,
) -> Vec<Descriptor> {
    match artifact_type {
        None => descriptors,
        Some(t) => descriptors
            .into_iter()
            .filter(|d| d.artifact_type.as_deref() == Some(t))
            .collect(),
    }
}

fn encode_query_value(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query_value("application/vnd.dev+json"),
            "application%2Fvnd.dev%2Bjson"
        );
    }

    #[test]
    fn filters_on_artifact_type() {
        let mut a = Descriptor::of(OCI_MANIFEST, b"a");
        a.artifact_type = Some("x/sbom".into());
        let b = Descriptor::of(OCI_MANIFEST, b"b");
        assert_eq!(
            filter_by_artifact_type(vec![a.clone(), b.clone()], Some("x/sbom")),
            vec![a.clone()]
        );
        assert_eq!(
            filter_by_artifact_type(vec![a.clone(), b.clone()], None).len(),
            2
        );
    }
}
