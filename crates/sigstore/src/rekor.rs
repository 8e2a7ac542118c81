//! Rekor entries: the signed entry timestamp (SET), the RFC 6962 inclusion proof, the signed
//! checkpoint (C2SP signed note) and the consistency of the entry body with the bundle.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::bundle::{Content, TlogEntry, hash_from_proto, pae};
use crate::keys::HashAlgorithm;
use crate::pem;
use crate::trust::TrustedLog;

/// What the signer is, as log entries must record it.
pub(crate) enum SignerId<'a> {
    /// DER of the leaf certificate.
    Certificate(&'a [u8]),
    /// DER SubjectPublicKeyInfo of the managed key.
    Key(&'a [u8]),
}

/// Digest of the artifact the caller supplied (or the one derived from the DSSE payload).
pub(crate) struct ArtifactDigest<'a> {
    pub algorithm: HashAlgorithm,
    pub digest: &'a [u8],
}

/// The canonical JSON the SET signs.
pub(crate) fn set_payload(entry: &TlogEntry) -> Vec<u8> {
    format!(
        "{{\"body\":\"{}\",\"integratedTime\":{},\"logID\":\"{}\",\"logIndex\":{}}}",
        STANDARD.encode(&entry.canonicalized_body),
        entry.integrated_time,
        hex::encode(&entry.log_id),
        entry.log_index
    )
    .into_bytes()
}

/// SHA-256 over a one-byte domain prefix and `parts` (RFC 6962: 0x00 for leaves, 0x01 for nodes).
fn prefixed_sha256(prefix: u8, parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(&[prefix]);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn hash_children(left: &[u8], right: &[u8]) -> [u8; 32] {
    prefixed_sha256(1, &[left, right])
}

/// RFC 6962 leaf hash.
pub(crate) fn leaf_hash(body: &[u8]) -> [u8; 32] {
    prefixed_sha256(0, &[body])
}

/// Computes the root from a leaf hash and an audit path (RFC 9162 §2.1.3.2); `None` if the
/// path does not fit the index and tree size.
pub(crate) fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    proof: &[Vec<u8>],
) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = leaf;
    for p in proof {
        if snode == 0 {
            return None;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = hash_children(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = hash_children(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    (snode == 0).then_some(r)
}

/// A parsed signed note.
pub(crate) struct Checkpoint<'a> {
    pub origin: &'a str,
    pub tree_size: u64,
    pub root_hash: Vec<u8>,
    /// The signed text (every line through the newline before the blank line).
    pub text: &'a str,
    /// (name, key hint, signature).
    pub signatures: Vec<(&'a str, [u8; 4], Vec<u8>)>,
}

pub(crate) fn parse_checkpoint(envelope: &str) -> Result<Checkpoint<'_>, String> {
    let split = envelope
        .find("\n\n")
        .ok_or("no blank line between the note text and its signatures")?;
    let text = &envelope[..split + 1];
    let sig_block = &envelope[split + 2..];
    let mut lines = text.lines();
    let origin = lines
        .next()
        .filter(|l| !l.is_empty())
        .ok_or("missing origin line")?;
    let size_line = lines.next().ok_or("missing tree size line")?;
    if size_line.is_empty()
        || !size_line.bytes().all(|b| b.is_ascii_digit())
        || (size_line.len() > 1 && size_line.starts_with('0'))
    {
        return Err(format!(
            "tree size line is not a decimal number: {size_line:?}"
        ));
    }
    let tree_size = size_line
        .parse::<u64>()
        .map_err(|_| "tree size out of range")?;
    let root_line = lines.next().ok_or("missing root hash line")?;
    let root_hash = STANDARD
        .decode(root_line)
        .map_err(|_| format!("root hash line is not base64: {root_line:?}"))?;
    if root_hash.len() != 32 {
        return Err("root hash is not 32 bytes".into());
    }
    if !sig_block.ends_with('\n') {
        return Err("signature block does not end with a newline".into());
    }
    let mut signatures = Vec::new();
    for line in sig_block.lines() {
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or_else(|| format!("signature line does not start with an em dash: {line:?}"))?;
        let (name, sig_b64) = rest.rsplit_once(' ').ok_or("signature line lacks a name")?;
        let raw = STANDARD
            .decode(sig_b64)
            .map_err(|_| "signature is not base64")?;
        if raw.len() < 5 || name.is_empty() {
            return Err("signature line too short".into());
        }
        let mut hint = [0u8; 4];
        hint.copy_from_slice(&raw[..4]);
        signatures.push((name, hint, raw[4..].to_vec()));
    }
    if signatures.is_empty() {
        return Err("checkpoint has no signature".into());
    }
    Ok(Checkpoint {
        origin,
        tree_size,
        root_hash,
        text,
        signatures,
    })
}

/// The note key ID per the signed-note spec for Ed25519 keys: sha256(name || "\n" || 0x01 || key)[..4].
fn note_key_hint(name: &str, log: &TrustedLog) -> Option<[u8; 4]> {
    let spki = log.key.spki();
    // Ed25519 SPKI: 12-byte prefix then the 32-byte key.
    if log.key.kind() != crate::keys::KeyKind::Ed25519 || spki.len() != 44 {
        return None;
    }
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(name.as_bytes());
    ctx.update(b"\n\x01");
    ctx.update(&spki[12..]);
    let d = ctx.finish();
    let mut h = [0u8; 4];
    h.copy_from_slice(&d.as_ref()[..4]);
    Some(h)
}

/// Verifies the checkpoint: a signature line from the log's key (its key hint, named as the
/// checkpoint origin — Rekor v1 origins read `<name> - <tree id>`) that verifies with the trusted
/// log key. Lines from unknown signers (witness cosignatures) are ignored.
pub(crate) fn verify_checkpoint(cp: &Checkpoint<'_>, log: &TrustedLog) -> Result<(), String> {
    let signer_name = cp
        .origin
        .split_once(" - ")
        .map_or(cp.origin, |(name, _)| name);
    let id_hint: Option<[u8; 4]> = log.log_id.get(..4).and_then(|h| h.try_into().ok());
    let spec_hint = note_key_hint(signer_name, log);
    let from_log = |hint: &[u8; 4]| Some(*hint) == id_hint || Some(*hint) == spec_hint;
    let mut candidates = 0;
    for (name, hint, sig) in &cp.signatures {
        if *name == signer_name && from_log(hint) {
            candidates += 1;
            if log.key.verify(cp.text.as_bytes(), sig) {
                return Ok(());
            }
        }
    }
    if candidates == 0 {
        Err(format!(
            "no signature line from {signer_name:?} with the key hint of log {:?}",
            log.base_url
        ))
    } else {
        Err("checkpoint signature does not verify with the log key".into())
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn get_str<'a>(v: &'a Value, path: &[&str]) -> Result<&'a str, String> {
    get(v, path)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("log entry body lacks `{}`", path.join(".")))
}

fn b64_field(v: &Value, path: &[&str]) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(get_str(v, path)?)
        .map_err(|_| format!("log entry body `{}` is not base64", path.join(".")))
}

fn check_signer_pem(pem_b64: &[u8], signer: &SignerId<'_>, what: &str) -> Result<(), String> {
    let pem = std::str::from_utf8(pem_b64).map_err(|_| format!("{what} is not PEM text"))?;
    let ok = match signer {
        SignerId::Certificate(der_bytes) => {
            pem::decode(pem, "CERTIFICATE").is_ok_and(|d| d == *der_bytes)
        }
        SignerId::Key(spki) => pem::decode(pem, "PUBLIC KEY").is_ok_and(|d| d == *spki),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} does not match the bundle's certificate or key"
        ))
    }
}

fn check_signer_v2(verifier: &Value, signer: &SignerId<'_>) -> Result<(), String> {
    let ok = match signer {
        SignerId::Certificate(der_bytes) => {
            b64_field(verifier, &["x509Certificate", "rawBytes"]).is_ok_and(|d| d == *der_bytes)
        }
        SignerId::Key(spki) => {
            b64_field(verifier, &["publicKey", "rawBytes"]).is_ok_and(|d| d == *spki)
        }
    };
    if ok {
        Ok(())
    } else {
        Err("log entry verifier does not match the bundle's certificate or key".into())
    }
}

/// `path` with `field` appended.
fn field_path<'a>(path: &[&'a str], field: &'a str) -> Vec<&'a str> {
    let mut joined = path.to_vec();
    joined.push(field);
    joined
}

/// The hash's `algorithm` under `path`, which `is_expected` must accept (hex or protobuf naming).
fn check_hash_algorithm(
    v: &Value,
    path: &[&str],
    expected_alg: HashAlgorithm,
    what: &str,
    is_expected: impl FnOnce(&str) -> bool,
) -> Result<(), String> {
    let alg = get_str(v, &field_path(path, "algorithm"))?;
    if is_expected(alg) {
        Ok(())
    } else {
        Err(format!(
            "log entry {what} uses {alg}, expected {}",
            expected_alg.name()
        ))
    }
}

fn check_hex_hash(
    v: &Value,
    path: &[&str],
    expected_alg: HashAlgorithm,
    expected: &[u8],
    what: &str,
) -> Result<(), String> {
    check_hash_algorithm(v, path, expected_alg, what, |alg| {
        alg == expected_alg.name()
    })?;
    let value = get_str(v, &field_path(path, "value"))?;
    if !value.eq_ignore_ascii_case(&hex::encode(expected)) {
        return Err(format!(
            "log entry {what} {value} does not match {}",
            hex::encode(expected)
        ));
    }
    Ok(())
}

fn check_proto_hash(
    v: &Value,
    path: &[&str],
    expected_alg: HashAlgorithm,
    expected: &[u8],
    what: &str,
) -> Result<(), String> {
    check_hash_algorithm(v, path, expected_alg, what, |alg| {
        hash_from_proto(alg) == Some(expected_alg)
    })?;
    if b64_field(v, &field_path(path, "digest"))? != expected {
        return Err(format!("log entry {what} does not match"));
    }
    Ok(())
}

/// The one signature a DSSE entry records (the array at `path`); `missing` is the error when there is none.
fn only_signature<'a>(v: &'a Value, path: &[&str], missing: &str) -> Result<&'a Value, String> {
    let sigs = get(v, path)
        .and_then(Value::as_array)
        .ok_or_else(|| missing.to_string())?;
    if sigs.len() != 1 {
        return Err(format!(
            "log entry has {} signatures, the envelope has 1",
            sigs.len()
        ));
    }
    Ok(&sigs[0])
}

/// Checks that the entry body records this bundle: same kind/version as declared, the artifact
/// (or DSSE payload) digest, the signature and the signer.
pub(crate) fn check_body(
    entry: &TlogEntry,
    content: &Content,
    artifact: Option<&ArtifactDigest<'_>>,
    signer: &SignerId<'_>,
) -> Result<(), String> {
    let body: Value = serde_json::from_slice(&entry.canonicalized_body)
        .map_err(|e| format!("log entry body is not JSON: {e}"))?;
    let kind = get_str(&body, &["kind"])?;
    let api = get_str(&body, &["apiVersion"])?;
    if kind != entry.kind || api != entry.version {
        return Err(format!(
            "log entry body is {kind}/{api} but the bundle declares {}/{}",
            entry.kind, entry.version
        ));
    }
    match (kind, api, content) {
        ("hashedrekord", "0.0.1", Content::MessageSignature { signature, .. }) => {
            let artifact = artifact.ok_or("hashedrekord entry needs the artifact digest")?;
            check_hex_hash(
                &body,
                &["spec", "data", "hash"],
                artifact.algorithm,
                artifact.digest,
                "artifact hash",
            )?;
            if b64_field(&body, &["spec", "signature", "content"])? != *signature {
                return Err("log entry signature does not match the bundle signature".into());
            }
            check_signer_pem(
                &b64_field(&body, &["spec", "signature", "publicKey", "content"])?,
                signer,
                "log entry public key",
            )
        }
        ("hashedrekord", "0.0.2", _) => {
            let spec = get(&body, &["spec", "hashedRekordV002"])
                .ok_or("log entry body lacks `spec.hashedRekordV002`")?;
            let (alg, digest, sig) = match content {
                Content::MessageSignature { signature, .. } => {
                    let a = artifact.ok_or("hashedrekord entry needs the artifact digest")?;
                    (a.algorithm, a.digest.to_vec(), signature)
                }
                Content::Dsse(env) => {
                    // hashedrekord over DSSE: the entry records Hash(PAE(type, payload)).
                    let alg = get_str(spec, &["data", "algorithm"])
                        .ok()
                        .and_then(hash_from_proto)
                        .unwrap_or(HashAlgorithm::Sha256);
                    (
                        alg,
                        alg.digest(&pae(&env.payload_type, &env.payload)),
                        &env.signature,
                    )
                }
            };
            check_proto_hash(spec, &["data"], alg, &digest, "digest")?;
            if b64_field(spec, &["signature", "content"])? != *sig {
                return Err("log entry signature does not match the bundle signature".into());
            }
            check_signer_v2(
                get(spec, &["signature", "verifier"]).ok_or("log entry lacks the verifier")?,
                signer,
            )
        }
        ("dsse", "0.0.1", Content::Dsse(env)) => {
            check_hex_hash(
                &body,
                &["spec", "payloadHash"],
                HashAlgorithm::Sha256,
                &HashAlgorithm::Sha256.digest(&env.payload),
                "payload hash",
            )?;
            let sig = only_signature(
                &body,
                &["spec", "signatures"],
                "log entry lacks `spec.signatures`",
            )?;
            if b64_field(sig, &["signature"])? != env.signature {
                return Err("log entry signature does not match the envelope signature".into());
            }
            check_signer_pem(
                &b64_field(sig, &["verifier"])?,
                signer,
                "log entry verifier",
            )
        }
        ("dsse", "0.0.2", Content::Dsse(env)) => {
            let spec =
                get(&body, &["spec", "dsseV002"]).ok_or("log entry body lacks `spec.dsseV002`")?;
            check_proto_hash(
                spec,
                &["payloadHash"],
                HashAlgorithm::Sha256,
                &HashAlgorithm::Sha256.digest(&env.payload),
                "payload hash",
            )?;
            let sig = only_signature(spec, &["signatures"], "log entry lacks `signatures`")?;
            if b64_field(sig, &["content"])? != env.signature {
                return Err("log entry signature does not match the envelope signature".into());
            }
            check_signer_v2(
                get(sig, &["verifier"]).ok_or("log entry lacks the verifier")?,
                signer,
            )
        }
        ("intoto", "0.0.2", Content::Dsse(env)) => {
            let c =
                get(&body, &["spec", "content"]).ok_or("log entry body lacks `spec.content`")?;
            check_hex_hash(
                c,
                &["payloadHash"],
                HashAlgorithm::Sha256,
                &HashAlgorithm::Sha256.digest(&env.payload),
                "payload hash",
            )?;
            let e = get(c, &["envelope"]).ok_or("log entry lacks the envelope")?;
            if get_str(e, &["payloadType"])? != env.payload_type {
                return Err("log entry payload type does not match the envelope".into());
            }
            let sig = only_signature(e, &["signatures"], "log entry lacks envelope signatures")?;
            // intoto 0.0.2 stores base64(signature) or base64(base64(signature)).
            let once = b64_field(sig, &["sig"])?;
            let twice = STANDARD.decode(&once).ok();
            if once != env.signature && twice.as_deref() != Some(env.signature.as_slice()) {
                return Err("log entry signature does not match the envelope signature".into());
            }
            check_signer_pem(
                &b64_field(sig, &["publicKey"])?,
                signer,
                "log entry public key",
            )
        }
        (k, v, Content::MessageSignature { .. }) if k != "hashedrekord" => Err(format!(
            "log entry kind {k}/{v} does not fit a message signature"
        )),
        (k, v, _) => Err(format!(
            "unsupported log entry kind {k}/{v} for this content"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_root(leaves: &[[u8; 32]]) -> [u8; 32] {
        // RFC 6962 MTH: split at the largest power of two below n.
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = leaves.len().next_power_of_two() / 2;
        hash_children(&tree_root(&leaves[..k]), &tree_root(&leaves[k..]))
    }

    fn path(leaves: &[[u8; 32]], m: usize) -> Vec<Vec<u8>> {
        if leaves.len() == 1 {
            return Vec::new();
        }
        let k = leaves.len().next_power_of_two() / 2;
        if m < k {
            let mut p = path(&leaves[..k], m);
            p.push(tree_root(&leaves[k..]).to_vec());
            p
        } else {
            let mut p = path(&leaves[k..], m - k);
            p.push(tree_root(&leaves[..k]).to_vec());
            p
        }
    }

    #[test]
    fn inclusion_proofs_for_every_leaf_of_small_trees() {
        for n in 1..=17usize {
            let leaves: Vec<[u8; 32]> = (0..n).map(|i| leaf_hash(&[i as u8])).collect();
            let root = tree_root(&leaves);
            for m in 0..n {
                let p = path(&leaves, m);
                assert_eq!(
                    root_from_inclusion_proof(m as u64, n as u64, leaves[m], &p),
                    Some(root),
                    "n={n} m={m}"
                );
                // A wrong index or size must not reach the same root.
                let other =
                    root_from_inclusion_proof(((m + 1) % n) as u64, n as u64, leaves[m], &p);
                if n > 1 {
                    assert_ne!(other, Some(root), "n={n} m={m}");
                }
            }
        }
        assert_eq!(root_from_inclusion_proof(5, 5, leaf_hash(b"x"), &[]), None);
    }

    #[test]
    fn checkpoints_parse_strictly() {
        let root = STANDARD.encode([7u8; 32]);
        let sig = STANDARD.encode([1u8, 2, 3, 4, 5, 6]);
        let good = format!("origin\n12\n{root}\n\n\u{2014} origin {sig}\n");
        let cp = parse_checkpoint(&good).unwrap();
        assert_eq!((cp.origin, cp.tree_size), ("origin", 12));
        assert_eq!(cp.text, format!("origin\n12\n{root}\n"));
        assert_eq!(cp.signatures[0].1, [1, 2, 3, 4]);
        for bad in [
            format!("origin\n012\n{root}\n\n\u{2014} origin {sig}\n"),
            format!("origin\n12\n{root}\n\n- origin {sig}\n"),
            format!("origin\n12\n{root}\n\n\u{2014} origin {sig}"),
            format!("origin\n12\n{root}\n\n"),
            format!("\n12\n{root}\n\n\u{2014} origin {sig}\n"),
            format!("origin\n12\nAAAA\n\n\u{2014} origin {sig}\n"),
        ] {
            assert!(parse_checkpoint(&bad).is_err(), "{bad:?}");
        }
    }
}
