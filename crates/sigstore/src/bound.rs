//! For benchmarks only: the primitive operations (signature verifications and hashes) a
//! verification of a bundle performs, extracted once so they can be timed on their own with
//! aws-lc-rs. This is the lower bound the verifier is measured against.

use crate::bundle::{Bundle, Content, SignerMaterial, pae};
use crate::keys::{HashAlgorithm, KeyKind};
use crate::rekor;
use crate::verify::Verifier;
use crate::{sct, tsa};

/// One primitive operation.
#[derive(Debug, Clone)]
pub enum PrimitiveOperation {
    /// Verify `signature` over `message` with the DER SubjectPublicKeyInfo `spki`.
    Verify {
        /// What is being verified.
        what: &'static str,
        /// Key.
        spki: Vec<u8>,
        /// Key kind.
        kind: KeyKind,
        /// Hash used by the signature scheme.
        hash: HashAlgorithm,
        /// Signed message.
        message: Vec<u8>,
        /// Signature.
        signature: Vec<u8>,
    },
    /// Hash `data`.
    Hash {
        /// What is hashed.
        what: &'static str,
        /// Algorithm.
        algorithm: HashAlgorithm,
        /// Data.
        data: Vec<u8>,
    },
}

/// The signature checks and hashes `verifier` performs on `bundle` for `artifact` (a keyless
/// bundle: leaf certificate, content signature, SCT, SET, checkpoint, TSA, artifact hash).
pub fn primitive_operations(
    verifier: &Verifier,
    bundle: &Bundle,
    artifact: &[u8],
) -> Vec<PrimitiveOperation> {
    let root = verifier.trusted_root();
    let mut ops = Vec::new();
    let verify_op =
        |what, key: &crate::keys::PublicKey, hash, message: Vec<u8>, signature: Vec<u8>| {
            PrimitiveOperation::Verify {
                what,
                spki: key.spki().to_vec(),
                kind: key.kind(),
                hash,
                message,
                signature,
            }
        };
    let SignerMaterial::Certificate { leaf, .. } = &bundle.signer else {
        return ops;
    };
    if let Some(ca) = root
        .certificate_authorities
        .iter()
        .find(|ca| leaf.is_signed_by(&ca.chain[0]))
    {
        let issuer = &ca.chain[0];
        let hash = crate::keys::signature_hash(&leaf.sig_alg)
            .flatten()
            .unwrap_or(HashAlgorithm::Sha384);
        ops.push(verify_op(
            "leaf certificate",
            &issuer.public_key,
            hash,
            leaf.tbs().to_vec(),
            leaf.signature.clone(),
        ));
        if let Some((key, hash, message, signature)) = sct::first_trusted_sct(leaf, issuer, root) {
            ops.push(verify_op("SCT", key, hash, message, signature));
        }
    }
    let key = leaf.public_key();
    match &bundle.content {
        Content::MessageSignature { signature, .. } => {
            ops.push(PrimitiveOperation::Hash {
                what: "artifact",
                algorithm: HashAlgorithm::Sha256,
                data: artifact.to_vec(),
            });
            ops.push(verify_op(
                "artifact signature",
                key,
                key.kind().default_hash(),
                artifact.to_vec(),
                signature.clone(),
            ));
        }
        Content::Dsse(env) => {
            ops.push(verify_op(
                "DSSE signature",
                key,
                key.kind().default_hash(),
                pae(&env.payload_type, &env.payload),
                env.signature.clone(),
            ));
            ops.push(PrimitiveOperation::Hash {
                what: "artifact (in-toto subject)",
                algorithm: HashAlgorithm::Sha256,
                data: artifact.to_vec(),
            });
        }
    }
    for entry in &bundle.tlog_entries {
        let Some(log) = root.tlogs.iter().find(|l| l.log_id == entry.log_id) else {
            continue;
        };
        if let Some(set) = &entry.inclusion_promise {
            ops.push(verify_op(
                "SET",
                &log.key,
                HashAlgorithm::Sha256,
                rekor::set_payload(entry),
                set.clone(),
            ));
        }
        if let Some(proof) = &entry.inclusion_proof {
            if let Some(Ok(cp)) = proof.checkpoint.as_deref().map(rekor::parse_checkpoint) {
                if let Some((_, _, sig)) = cp
                    .signatures
                    .iter()
                    .find(|(_, hint, _)| log.log_id.starts_with(hint))
                {
                    ops.push(verify_op(
                        "checkpoint",
                        &log.key,
                        HashAlgorithm::Sha256,
                        cp.text.as_bytes().to_vec(),
                        sig.clone(),
                    ));
                }
            }
        }
    }
    for token in &bundle.timestamps {
        if let Some(tsa::SignatureOperation {
            message,
            signature,
            hash,
            tst_info,
        }) = tsa::signature_operation(token)
        {
            if let Some(ca) = root.timestamp_authorities.first() {
                ops.push(verify_op(
                    "TSA signature",
                    &ca.chain[0].public_key,
                    hash,
                    message,
                    signature,
                ));
            }
            ops.push(PrimitiveOperation::Hash {
                what: "TSTInfo digest",
                algorithm: HashAlgorithm::Sha256,
                data: tst_info,
            });
        }
    }
    ops
}
