//! Embedded signed certificate timestamps (RFC 6962 §3.3), checked against the trusted CT logs.

use crate::der;
use crate::keys::{self, HashAlgorithm};
use crate::trust::TrustedRoot;
use crate::x509::{self, Certificate};

struct Sct<'a> {
    log_id: &'a [u8],
    timestamp_ms: u64,
    extensions: &'a [u8],
    hash: u8,
    sig_alg: u8,
    signature: &'a [u8],
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if buf.len() < n {
        return Err("truncated SCT list".into());
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Ok(head)
}

fn u16_len(buf: &mut &[u8]) -> Result<usize, String> {
    let b = take(buf, 2)?;
    Ok(usize::from(b[0]) << 8 | usize::from(b[1]))
}

fn parse_list(value: &[u8]) -> Result<Vec<Sct<'_>>, String> {
    let inner =
        der::parse_single(value, der::TAG_OCTET_STRING, "SCT list").map_err(|e| e.to_string())?;
    let mut buf = inner.content;
    let total = u16_len(&mut buf)?;
    if total != buf.len() {
        return Err("SCT list length mismatch".into());
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let len = u16_len(&mut buf)?;
        let mut s = take(&mut buf, len)?;
        if take(&mut s, 1)?[0] != 0 {
            return Err("unsupported SCT version".into());
        }
        let log_id = take(&mut s, 32)?;
        let ts = take(&mut s, 8)?;
        let mut timestamp_ms = 0u64;
        for b in ts {
            timestamp_ms = timestamp_ms << 8 | u64::from(*b);
        }
        let ext_len = u16_len(&mut s)?;
        let extensions = take(&mut s, ext_len)?;
        let alg = take(&mut s, 2)?;
        let sig_len = u16_len(&mut s)?;
        let signature = take(&mut s, sig_len)?;
        if !s.is_empty() {
            return Err("trailing bytes in SCT".into());
        }
        out.push(Sct {
            log_id,
            timestamp_ms,
            extensions,
            hash: alg[0],
            sig_alg: alg[1],
            signature,
        });
    }
    Ok(out)
}

fn signed_data(sct: &Sct<'_>, issuer_key_hash: &[u8], tbs: &[u8]) -> Result<Vec<u8>, String> {
    let mut signed = Vec::with_capacity(tbs.len() + 64);
    signed.extend_from_slice(&[0, 0]); // v1, certificate_timestamp
    signed.extend_from_slice(&sct.timestamp_ms.to_be_bytes());
    signed.extend_from_slice(&[0, 1]); // precert_entry
    signed.extend_from_slice(issuer_key_hash);
    let n = tbs.len();
    if n >= 1 << 24 || sct.extensions.len() > usize::from(u16::MAX) {
        return Err("certificate too large for an SCT".into());
    }
    signed.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    signed.extend_from_slice(tbs);
    signed.extend_from_slice(&(sct.extensions.len() as u16).to_be_bytes());
    signed.extend_from_slice(sct.extensions);
    Ok(signed)
}

/// The first SCT from a trusted CT log, as (log key, hash, signed data, signature): for the
/// benchmark's lower bound.
pub(crate) fn first_trusted_sct<'r>(
    leaf: &Certificate,
    issuer: &Certificate,
    root: &'r TrustedRoot,
) -> Option<(&'r crate::keys::PublicKey, HashAlgorithm, Vec<u8>, Vec<u8>)> {
    let ext = leaf.extension(x509::OID_SCT_LIST)?;
    let scts = parse_list(&ext.value).ok()?;
    let tbs = leaf.precert_tbs().ok()?;
    let issuer_key_hash = HashAlgorithm::Sha256.digest(issuer.spki());
    scts.iter().find_map(|sct| {
        let log = root.ctlog_by_id(sct.log_id)?;
        let signed = signed_data(sct, &issuer_key_hash, &tbs).ok()?;
        Some((
            &log.key,
            HashAlgorithm::Sha256,
            signed,
            sct.signature.to_vec(),
        ))
    })
}

/// Verifies that `leaf` carries at least one SCT from a trusted CT log, signed over the
/// precertificate entry issued by `issuer`.
pub(crate) fn verify_embedded_scts(
    leaf: &Certificate,
    issuer: &Certificate,
    root: &TrustedRoot,
) -> Result<(), String> {
    let ext = leaf
        .extension(x509::OID_SCT_LIST)
        .ok_or("certificate has no embedded SCT")?;
    let scts = parse_list(&ext.value)?;
    let tbs = leaf.precert_tbs().map_err(|e| e.to_string())?;
    let issuer_key_hash = HashAlgorithm::Sha256.digest(issuer.spki());
    let mut last = String::from("no SCT from a trusted CT log");
    for sct in &scts {
        let Some(log) = root.ctlog_by_id(sct.log_id) else {
            continue;
        };
        let t = i64::try_from(sct.timestamp_ms / 1000).unwrap_or(i64::MAX);
        if !log.validity.contains(t) {
            last = format!("SCT time {t} is outside CT log {:?} validity", log.base_url);
            continue;
        }
        let hash = match sct.hash {
            4 => HashAlgorithm::Sha256,
            5 => HashAlgorithm::Sha384,
            6 => HashAlgorithm::Sha512,
            _ => continue,
        };
        let key_fits = matches!(
            (sct.sig_alg, log.key.kind()),
            (3, keys::KeyKind::EcdsaP256 | keys::KeyKind::EcdsaP384) | (1, keys::KeyKind::RsaPkcs1)
        );
        let signed = signed_data(sct, &issuer_key_hash, &tbs)?;
        if key_fits && log.key.verify_with(hash, &signed, sct.signature) {
            return Ok(());
        }
        last = format!(
            "SCT signature from CT log {:?} does not verify",
            log.base_url
        );
    }
    Err(last)
}
