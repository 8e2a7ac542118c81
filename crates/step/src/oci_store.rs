//! [`ManifestStore`] over `kibaship-oci`'s [`RegistryClient`].

use std::time::Duration;

use kibaship_oci::{Reference, RegistryClient};

use crate::image::ImageName;
use crate::registry::{FetchedManifest, ManifestStore, RegistryError};

/// The build step's registry access through `kibaship-oci` (credentials from `DOCKER_CONFIG`, retries, limits).
#[derive(Clone)]
pub struct OciManifestStore {
    client: RegistryClient,
    timeout: Option<Duration>,
}

impl OciManifestStore {
    /// Wraps a client.
    pub fn new(client: RegistryClient) -> OciManifestStore {
        OciManifestStore {
            client,
            timeout: None,
        }
    }

    /// Bounds each operation (resolve, fetch, tag push) by `timeout`, retries included; zero: no bound.
    pub fn with_timeout(mut self, timeout: Duration) -> OciManifestStore {
        self.timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// The client for one operation: with its own deadline when a timeout is set.
    fn client(&self) -> RegistryClient {
        match self.timeout {
            Some(t) => self.client.with_timeout(t),
            None => self.client.clone(),
        }
    }
}

fn reference(image: &ImageName, reference: &str) -> Result<Reference, RegistryError> {
    let text = if reference.starts_with("sha256:") {
        image.pinned(reference)
    } else {
        format!("{}/{}:{reference}", image.registry(), image.repository())
    };
    Reference::parse(&text).map_err(|e| RegistryError::Request {
        reference: text.clone(),
        message: e.to_string(),
    })
}

fn request_error(reference: &Reference, e: kibaship_oci::Error) -> RegistryError {
    match e {
        kibaship_oci::Error::DigestMismatch {
            expected, actual, ..
        } => RegistryError::Integrity {
            reference: reference.to_string(),
            want: expected,
            got: actual,
        },
        other => RegistryError::Request {
            reference: reference.to_string(),
            message: other.to_string(),
        },
    }
}

impl ManifestStore for OciManifestStore {
    async fn resolve(
        &self,
        image: &ImageName,
        reference_text: &str,
    ) -> Result<Option<String>, RegistryError> {
        let r = reference(image, reference_text)?;
        match self.client().resolve_digest(&r, None).await {
            Ok(resolved) => Ok(Some(resolved.digest.to_string())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(request_error(&r, e)),
        }
    }

    async fn fetch(
        &self,
        image: &ImageName,
        reference_text: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let r = reference(image, reference_text)?;
        match self.client().fetch_manifest_if_exists(&r).await {
            Ok(Some(m)) => Ok(Some(FetchedManifest {
                media_type: m.media_type,
                bytes: m.bytes,
                digest: m.digest.to_string(),
            })),
            Ok(None) => Ok(None),
            Err(e) => Err(request_error(&r, e)),
        }
    }

    async fn push_tag(
        &self,
        image: &ImageName,
        tag: &str,
        manifest: &FetchedManifest,
    ) -> Result<(), RegistryError> {
        let r = reference(image, tag)?;
        let pushed = self
            .client()
            .push_manifest(&r, &manifest.bytes, &manifest.media_type)
            .await
            .map_err(|e| request_error(&r, e))?;
        let got = pushed.digest.to_string();
        if got != manifest.digest {
            return Err(RegistryError::Integrity {
                reference: r.to_string(),
                want: manifest.digest.clone(),
                got,
            });
        }
        Ok(())
    }
}
