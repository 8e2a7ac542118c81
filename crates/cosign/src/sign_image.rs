//! Signing an image in one or both of cosign's layouts, with a key or keyless: the one dispatch shared by
//! `kibaverify sign` and the Tekton step `kibaship-step sign`.
use std::collections::BTreeMap;

use kibaship_oci::{Reference, RegistryClient};
use kibaship_sign::SigningKey;
use kibaship_sigstore::Verifier;
use serde::Serialize;

use crate::key_log::KeyTransparencyLog;
use crate::keyless::KeylessSigner;
use crate::registry::{
    CosignError, KeylessSigned, LegacyKeylessSigned, LegacyStore, SignedBundle, SignedImage,
    sign_bundle, sign_bundle_keyless, sign_bundle_logged, sign_legacy_in, sign_legacy_keyless_in,
    sign_legacy_logged,
};
use crate::signing_config::RekorLogs;

/// Which layouts a signature is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layouts {
    /// cosign's `sha256-<hex>.sig` tag (what cosign v2 and policy-controller read).
    Legacy,
    /// A Sigstore bundle v0.3 as an OCI referrer (cosign v3's default).
    Bundle,
    /// Both, legacy first.
    Both,
    /// cosign's OCI 1.1 signature mode (`cosign sign --new-bundle-format=false
    /// --registry-referrers-mode=oci-1-1`): the legacy manifest as a referrer of the image
    /// ([`LegacyStore::Referrer`]), no tag.
    LegacyReferrer,
}

impl Layouts {
    /// Whether the legacy tag is written.
    pub fn legacy(self) -> bool {
        matches!(
            self,
            Layouts::Legacy | Layouts::Both | Layouts::LegacyReferrer
        )
    }

    /// Where the legacy manifest goes: its tag, or (OCI 1.1 mode) a referrer.
    pub fn legacy_store(self) -> LegacyStore {
        match self {
            Layouts::LegacyReferrer => LegacyStore::Referrer,
            Layouts::Legacy | Layouts::Bundle | Layouts::Both => LegacyStore::Tag,
        }
    }

    /// Whether a bundle referrer is written.
    pub fn bundle(self) -> bool {
        matches!(self, Layouts::Bundle | Layouts::Both)
    }

    /// The Rekor logs keyless signing in these layouts needs: v1 (its SET) for the legacy tag, v2 for bundles.
    pub fn rekor_logs(self) -> RekorLogs {
        match self {
            Layouts::Legacy | Layouts::LegacyReferrer => RekorLogs::V1,
            Layouts::Bundle => RekorLogs::V2,
            Layouts::Both => RekorLogs::Both,
        }
    }
}

/// Who signs.
#[derive(Debug, Clone, Copy)]
pub enum ImageSigner<'a> {
    /// A cosign key (no transparency-log entry, as `cosign sign --tlog-upload=false`).
    Key(&'a SigningKey),
    /// A cosign key whose signatures are entered in a transparency log (Rekor v1 for the legacy layout, Rekor v2
    /// with a TSA timestamp for bundles), as `cosign sign --key` does by default; with `check`, each signature is
    /// verified with the key against that trusted root before it is uploaded.
    KeyLogged {
        /// The key.
        key: &'a SigningKey,
        /// The logs.
        log: &'a KeyTransparencyLog,
        /// The self-check before upload.
        check: Option<&'a Verifier>,
    },
    /// An ephemeral key certified by Fulcio; with `check`, each signature is verified against that trusted root
    /// before it is uploaded.
    Keyless {
        /// The signer (token, services).
        signer: &'a KeylessSigner,
        /// The self-check before upload.
        check: Option<&'a Verifier>,
    },
}

impl ImageSigner<'_> {
    /// Keyless: the timestamp authority the signer uses, if any.
    pub fn tsa_url(&self) -> Option<&str> {
        match self {
            ImageSigner::Keyless { signer, .. } => signer.services().tsa_url.as_deref(),
            ImageSigner::KeyLogged { log, .. } => log.services().tsa_url.as_deref(),
            ImageSigner::Key(_) => None,
        }
    }
}

/// A signer as loaded from its inputs (key file, or token + services + optional trusted root); lend it out with
/// [`LoadedSigner::as_image_signer`].
pub enum LoadedSigner {
    /// A cosign key.
    Key(SigningKey),
    /// A cosign key whose signatures are entered in a transparency log.
    KeyLogged {
        /// The key.
        key: SigningKey,
        /// The logs.
        log: Box<KeyTransparencyLog>,
        /// The self-check before upload.
        check: Option<Box<Verifier>>,
    },
    /// Keyless, with the trusted root to check each signature against before upload.
    Keyless {
        /// The signer (token, services).
        signer: Box<KeylessSigner>,
        /// The self-check before upload.
        check: Option<Box<Verifier>>,
    },
}

impl LoadedSigner {
    /// The signer to pass to [`sign_image`] or [`crate::attest::attest_image`].
    pub fn as_image_signer(&self) -> ImageSigner<'_> {
        match self {
            LoadedSigner::Key(key) => ImageSigner::Key(key),
            LoadedSigner::KeyLogged { key, log, check } => ImageSigner::KeyLogged {
                key,
                log,
                check: check.as_deref(),
            },
            LoadedSigner::Keyless { signer, check } => ImageSigner::Keyless {
                signer,
                check: check.as_deref(),
            },
        }
    }

    /// Whether it signs keyless.
    pub fn is_keyless(&self) -> bool {
        matches!(self, LoadedSigner::Keyless { .. })
    }
}

/// What signing in one layout wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Signed {
    /// Key-based, legacy tag.
    Legacy(SignedImage),
    /// Keyless, legacy tag (Rekor v1).
    LegacyKeyless(LegacyKeylessSigned),
    /// Key-based, bundle referrer.
    Bundle(SignedBundle),
    /// Keyless, bundle referrer (Rekor v2, TSA).
    BundleKeyless(KeylessSigned),
}

impl Signed {
    /// `legacy` or `bundle`.
    pub fn layout(&self) -> &'static str {
        match self {
            Signed::Legacy(_) | Signed::LegacyKeyless(_) => "legacy",
            Signed::Bundle(_) | Signed::BundleKeyless(_) => "bundle",
        }
    }

    /// Where the signature is: the `.sig` tag, or the referrer manifest.
    pub fn location(&self) -> &str {
        match self {
            Signed::Legacy(s) => &s.signature_tag,
            Signed::LegacyKeyless(s) => &s.signed.signature_tag,
            Signed::Bundle(s) => &s.referrer,
            Signed::BundleKeyless(s) => &s.bundle.referrer,
        }
    }

    /// The image signed, `registry/repo@sha256:...`.
    pub fn image(&self) -> &str {
        match self {
            Signed::Legacy(s) => &s.image,
            Signed::LegacyKeyless(s) => &s.signed.image,
            Signed::Bundle(s) => &s.image,
            Signed::BundleKeyless(s) => &s.bundle.image,
        }
    }

    /// Keyless: the certificate's identity and OIDC issuer.
    pub fn certificate_identity(&self) -> Option<(&str, &str)> {
        match self {
            Signed::LegacyKeyless(s) => Some((&s.certificate_identity, &s.certificate_oidc_issuer)),
            Signed::BundleKeyless(s) => Some((&s.certificate_identity, &s.certificate_oidc_issuer)),
            Signed::Legacy(_) | Signed::Bundle(_) => None,
        }
    }
}

/// A signing that failed in one layout (the layouts before it were written).
#[derive(Debug, thiserror::Error)]
#[error("{layout} layout: {source}")]
pub struct LayoutSignError {
    /// `legacy` or `bundle`.
    pub layout: &'static str,
    /// What went wrong.
    #[source]
    pub source: CosignError,
}

/// Signs `reference` (a tag is resolved; the digest is signed) with `signer` in each of `layouts`, legacy first,
/// keeping the signatures already there; `signature_repository` is cosign's `COSIGN_REPOSITORY`. Stops at the
/// first layout that fails.
///
/// [`Layouts::LegacyReferrer`] ignores `signature_repository`, as cosign v3.1.3 does: its OCI 1.1 mode
/// (`WriteSignaturesExperimentalOCI`) writes the referrer manifest, its config and its layer in the image's own
/// repository whatever `COSIGN_REPOSITORY` says (see [`oci11_signature_repository`]).
pub async fn sign_image(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    signer: ImageSigner<'_>,
    layouts: Layouts,
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<Signed>, LayoutSignError> {
    let signature_repository = oci11_signature_repository(layouts, signature_repository);
    let mut written = Vec::new();
    if layouts.legacy() {
        let fail = |source| LayoutSignError {
            layout: "legacy",
            source,
        };
        written.push(match signer {
            ImageSigner::Key(key) => Signed::Legacy(
                sign_legacy_in(
                    client,
                    reference,
                    signature_repository,
                    key,
                    annotations.clone(),
                    layouts.legacy_store(),
                )
                .await
                .map_err(fail)?,
            ),
            ImageSigner::KeyLogged { key, log, check } => Signed::Legacy(
                sign_legacy_logged(
                    client,
                    reference,
                    signature_repository,
                    (key, log),
                    annotations.clone(),
                    check,
                    layouts.legacy_store(),
                )
                .await
                .map_err(fail)?,
            ),
            ImageSigner::Keyless { signer, check } => Signed::LegacyKeyless(
                sign_legacy_keyless_in(
                    client,
                    reference,
                    signature_repository,
                    signer,
                    annotations.clone(),
                    check,
                    layouts.legacy_store(),
                )
                .await
                .map_err(fail)?,
            ),
        });
    }
    if layouts.bundle() {
        let fail = |source| LayoutSignError {
            layout: "bundle",
            source,
        };
        written.push(match signer {
            ImageSigner::Key(key) => Signed::Bundle(
                sign_bundle(
                    client,
                    reference,
                    signature_repository,
                    key,
                    annotations.clone(),
                )
                .await
                .map_err(fail)?,
            ),
            ImageSigner::KeyLogged { key, log, check } => Signed::Bundle(
                sign_bundle_logged(
                    client,
                    reference,
                    signature_repository,
                    (key, log),
                    annotations.clone(),
                    check,
                )
                .await
                .map_err(fail)?,
            ),
            ImageSigner::Keyless { signer, check } => Signed::BundleKeyless(
                sign_bundle_keyless(
                    client,
                    reference,
                    signature_repository,
                    signer,
                    annotations.clone(),
                    check,
                )
                .await
                .map_err(fail)?,
            ),
        });
    }
    Ok(written)
}

/// Where `layouts` stores signatures given cosign's `COSIGN_REPOSITORY` (`signature_repository`): there, except in
/// cosign's OCI 1.1 signature mode ([`Layouts::LegacyReferrer`]), which cosign v3.1.3 writes in the image's own
/// repository (`None`) even with `COSIGN_REPOSITORY` set.
pub fn oci11_signature_repository(
    layouts: Layouts,
    signature_repository: Option<&Reference>,
) -> Option<&Reference> {
    if layouts == Layouts::LegacyReferrer {
        None
    } else {
        signature_repository
    }
}
