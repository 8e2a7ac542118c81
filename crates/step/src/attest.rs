//! `kibaship-step attest`: the build's own SLSA provenance (from `kibaship-step provenance`) and the SBOM BuildKit
//! wrote, signed onto the image by digest.
//!
//! * the provenance predicate is attested (`slsaprovenance1`) with the sign step's signer and layouts, through
//!   `kibaship_cosign::attest::attest_image` (the code of `kibaverify attest`);
//! * the SBOM is read from BuildKit's attestation manifest (the build's `sbomRef` result): the layer whose
//!   `in-toto.io/predicate-type` is SPDX or CycloneDX, its statement's `predicate` validated by `kibaship_sbom`,
//!   then attached to the image as an OCI referrer (`artifactType` `application/spdx+json` or
//!   `application/vnd.cyclonedx+json`, as `kibaverify sbom attach`) and attested (`spdxjson` / `cyclonedx`).

use std::collections::BTreeMap;

use kibaship_cosign::attest::{Attestation, attest_image};
use kibaship_oci::Artifact;
use kibaship_oci::{Reference, RegistryClient};

use crate::failure::{Classify, FailureKind};
use crate::registry::{PREDICATE_TYPE, SBOM_PREDICATES};
use crate::sign::{SignError, SignPlan, Signer};

/// Why the attest step failed.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// A parameter is unusable.
    #[error("{0}")]
    Parameter(String),
    /// BuildKit's attestation manifest has no usable SBOM.
    #[error("SBOM from {reference}: {problem}")]
    Sbom { reference: String, problem: String },
    /// The registry failed.
    #[error("{what}: {source}")]
    Registry {
        what: String,
        #[source]
        source: Box<kibaship_oci::Error>,
    },
    /// Signing failed (the sign step's kinds: refused, retryable, ...).
    #[error(transparent)]
    Sign(#[from] SignError),
}

impl Classify for AttestError {
    fn kind(&self) -> FailureKind {
        match self {
            AttestError::Parameter(_) => FailureKind::BadParameters,
            AttestError::Sbom { .. } => FailureKind::Build,
            AttestError::Registry { source, .. } if source.is_not_found() => {
                FailureKind::BadParameters
            }
            AttestError::Registry { .. } => FailureKind::Registry,
            AttestError::Sign(e) => e.kind(),
        }
    }
}

impl AttestError {
    /// The exit code of the kind.
    pub fn exit_code(&self) -> u8 {
        self.kind().exit_code()
    }
}

/// The digest of the first SBOM layer (SPDX or CycloneDX in-toto statement) of an attestation manifest.
pub fn sbom_layer(manifest_bytes: &[u8]) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(manifest_bytes).ok()?;
    v.get("layers")?.as_array()?.iter().find_map(|layer| {
        let predicate_type = layer.get("annotations")?.get(PREDICATE_TYPE)?.as_str()?;
        let digest = layer.get("digest")?.as_str()?;
        SBOM_PREDICATES
            .contains(&predicate_type)
            .then(|| (digest.to_string(), predicate_type.to_string()))
    })
}

/// The `predicate` of an in-toto statement, as the bytes it was written with.
pub fn statement_predicate(statement: &[u8]) -> Result<Vec<u8>, String> {
    #[derive(serde::Deserialize)]
    struct Statement<'a> {
        #[serde(borrow)]
        predicate: &'a serde_json::value::RawValue,
    }
    serde_json::from_slice::<Statement<'_>>(statement)
        .map(|s| s.predicate.get().as_bytes().to_vec())
        .map_err(|e| format!("not an in-toto statement with a predicate: {e}"))
}

fn sign_failed(plan: &SignPlan, e: kibaship_cosign::LayoutSignError) -> AttestError {
    AttestError::Sign(SignError::Sign {
        image: plan.target.to_string(),
        layout: e.layout,
        source: Box::new(e.source),
    })
}

/// Attests `predicate` (of cosign's `--type` `predicate_type`, read from `source`) onto `plan.target` with the sign
/// step's signer and layouts; returns the attestations written. What `kibaverify attest` does, for the steps.
pub async fn attest_predicate(
    client: &RegistryClient,
    plan: &SignPlan,
    signer: &Signer,
    predicate_type: &str,
    predicate: &[u8],
    source: &str,
    now: time::OffsetDateTime,
) -> Result<Vec<String>, AttestError> {
    let attestation = Attestation::new(predicate_type, predicate, source, now)
        .map_err(|e| AttestError::Parameter(format!("{source}: {e}")))?;
    let written = attest_image(
        client,
        &plan.target,
        plan.signature_repository.as_ref(),
        signer.as_image_signer(),
        plan.layout,
        &attestation,
    )
    .await
    .map_err(|e| sign_failed(plan, e))?;
    Ok(written.iter().map(|s| s.location().to_string()).collect())
}

/// Attests `provenance_predicate` (SLSA provenance v1) onto `plan.target`; returns the attestations written.
pub async fn attest_provenance(
    client: &RegistryClient,
    plan: &SignPlan,
    signer: &Signer,
    provenance_predicate: &[u8],
    now: time::OffsetDateTime,
) -> Result<Vec<String>, AttestError> {
    attest_predicate(
        client,
        plan,
        signer,
        "slsaprovenance1",
        provenance_predicate,
        "--provenance-predicate",
        now,
    )
    .await
}

/// Checks that `sbom_ref` names a manifest by digest in the image's repository (before anything is written).
pub fn check_sbom_ref(plan: &SignPlan, sbom_ref: &Reference) -> Result<(), AttestError> {
    if sbom_ref.name() != plan.target.name() || sbom_ref.digest().is_none() {
        return Err(AttestError::Parameter(format!(
            "--sbom-ref {sbom_ref} is not <repository>@<digest> in the image's repository {}",
            plan.target.name()
        )));
    }
    Ok(())
}

/// Reads the SBOM from BuildKit's attestation manifest `sbom_ref`, attaches it to `plan.target` as a referrer and
/// attests it; returns the referrer and the attestations written.
pub async fn attach_buildkit_sbom(
    client: &RegistryClient,
    plan: &SignPlan,
    signer: &Signer,
    sbom_ref: &Reference,
    now: time::OffsetDateTime,
) -> Result<Vec<String>, AttestError> {
    check_sbom_ref(plan, sbom_ref)?;
    let registry_error = |what: String| {
        move |source: kibaship_oci::Error| AttestError::Registry {
            what,
            source: Box::new(source),
        }
    };
    let sbom_error = |problem: String| AttestError::Sbom {
        reference: sbom_ref.to_string(),
        problem,
    };
    let manifest = client
        .fetch_manifest(sbom_ref)
        .await
        .map_err(registry_error(format!("cannot read {sbom_ref}")))?;
    let (layer, predicate_type) = sbom_layer(&manifest.bytes).ok_or_else(|| {
        sbom_error(format!(
            "no layer with {PREDICATE_TYPE} {}",
            SBOM_PREDICATES.join(" or ")
        ))
    })?;
    let layer_digest = layer
        .parse()
        .map_err(|e| sbom_error(format!("layer digest {layer}: {e}")))?;
    // The statement wraps the document: a little above the SBOM cap.
    let statement = client
        .fetch_blob(
            sbom_ref,
            &layer_digest,
            kibaship_sbom::MAX_SBOM_BYTES + 1024 * 1024,
        )
        .await
        .map_err(registry_error(format!(
            "cannot read the SBOM layer {layer}"
        )))?;
    let document = statement_predicate(&statement).map_err(sbom_error)?;
    let validated = kibaship_sbom::validate(&document)
        .map_err(|e| sbom_error(format!("the {predicate_type} predicate: {e}")))?;
    let format = validated.format;
    // Checked before anything is pushed: an SBOM too large to attest is not attached either.
    if validated.utf8.len() > kibaship_cosign::attest::MAX_PREDICATE_BYTES {
        return Err(sbom_error(format!(
            "{} bytes, more than the {} an attestation predicate may hold",
            validated.utf8.len(),
            kibaship_cosign::attest::MAX_PREDICATE_BYTES
        )));
    }
    let created = now
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| AttestError::Parameter(format!("cannot format the time: {e}")))?;
    let artifact = Artifact {
        artifact_type: format.media_type().to_string(),
        layer_media_type: format.media_type().to_string(),
        content: validated.utf8.into_owned().into(),
        content_digest: None,
        title: Some(format!("sbom.{}.json", format.cosign_type_name())),
        annotations: BTreeMap::from([("org.opencontainers.image.created".to_string(), created)]),
    };
    let attached = client
        .attach_artifact(&plan.target, &artifact)
        .await
        .map_err(registry_error(format!(
            "cannot attach the SBOM to {}",
            plan.target
        )))?;
    let mut written = vec![format!(
        "{}@{}",
        plan.target.name(),
        attached.manifest.digest
    )];
    written.extend(
        attest_predicate(
            client,
            plan,
            signer,
            format.cosign_type_name(),
            &artifact.content,
            "BuildKit SBOM",
            now,
        )
        .await?,
    );
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_sbom_layer_and_unwraps_its_predicate() {
        let manifest = br#"{"layers":[
            {"digest":"sha256:aa","annotations":{"in-toto.io/predicate-type":"https://slsa.dev/provenance/v1"}},
            {"digest":"sha256:bb","annotations":{"in-toto.io/predicate-type":"https://spdx.dev/Document"}}]}"#;
        assert_eq!(
            sbom_layer(manifest),
            Some(("sha256:bb".into(), "https://spdx.dev/Document".into()))
        );
        assert_eq!(sbom_layer(br#"{"layers":[]}"#), None);
        let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicate":{"spdxVersion":"SPDX-2.3"}}"#;
        assert_eq!(
            statement_predicate(statement).expect("predicate"),
            br#"{"spdxVersion":"SPDX-2.3"}"#
        );
        assert!(statement_predicate(b"{}").is_err());
    }
}
