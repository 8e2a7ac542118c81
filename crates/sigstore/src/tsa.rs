//! RFC 3161 timestamps: `TimeStampResp` / `TimeStampToken` (CMS `SignedData` over `TSTInfo`),
//! verified against the trusted root's timestamp authorities.

use crate::der::{self, DerError, Reader};
use crate::keys::{self, HashAlgorithm};
use crate::trust::{TrustedAuthority, TrustedRoot};
use crate::x509::{self, Certificate};

const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_TST_INFO: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
];
const OID_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const OID_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

enum SignerId<'a> {
    IssuerSerial { issuer: &'a [u8], serial: &'a [u8] },
    KeyId(&'a [u8]),
}

struct Parsed<'a> {
    tst_info: &'a [u8],
    /// Embedded certificates, DER (parsed only when not one of the trusted ones).
    certificates: Vec<&'a [u8]>,
    sid: SignerId<'a>,
    digest_alg: HashAlgorithm,
    signed_attrs: Option<&'a [u8]>,
    sig_alg: &'a [u8],
    signature: &'a [u8],
    imprint_alg: HashAlgorithm,
    imprint: &'a [u8],
    gen_time: i64,
}

fn de(e: DerError) -> String {
    e.to_string()
}

fn alg_hash(r: &mut Reader<'_>) -> Result<HashAlgorithm, String> {
    let mut a = r.nested(der::TAG_SEQUENCE).map_err(de)?;
    let oid = a.read_oid().map_err(de)?;
    // Parameters: absent or NULL, nothing else.
    if let Some(p) = a.read_optional(der::TAG_NULL).map_err(de)? {
        if !p.content.is_empty() {
            return Err("digest algorithm parameters must be NULL".into());
        }
    }
    a.finish().map_err(de)?;
    HashAlgorithm::from_der_oid(oid)
        .ok_or_else(|| format!("unsupported digest algorithm {}", x509::oid_to_string(oid)))
}

fn parse(input: &[u8]) -> Result<Parsed<'_>, String> {
    let top = der::parse_single(input, der::TAG_SEQUENCE, "timestamp").map_err(de)?;
    let mut r = Reader::new(top.content, "timestamp");
    // A TimeStampResp starts with PKIStatusInfo (a SEQUENCE); a bare token with the content type OID.
    let content_info = if r.peek_tag() == Some(der::TAG_SEQUENCE) {
        let mut status = r.nested(der::TAG_SEQUENCE).map_err(de)?;
        let code = status.read_small_int().map_err(de)?;
        status.finish().map_err(de)?;
        if code != 0 {
            return Err(format!("timestamp response status is {code}, not granted"));
        }
        let ci = r.read(der::TAG_SEQUENCE).map_err(de)?;
        r.finish().map_err(de)?;
        ci.content
    } else {
        top.content
    };
    let mut ci = Reader::new(content_info, "timestamp ContentInfo");
    if ci.read_oid().map_err(de)? != OID_SIGNED_DATA {
        return Err("timestamp token is not CMS SignedData".into());
    }
    let mut explicit = ci.nested(0xa0).map_err(de)?;
    ci.finish().map_err(de)?;
    let mut sd = explicit.nested(der::TAG_SEQUENCE).map_err(de)?;
    explicit.finish().map_err(de)?;
    if sd.read_small_int().map_err(de)? != 3 {
        return Err("timestamp SignedData version is not 3".into());
    }
    let mut digest_algs = sd.nested(der::TAG_SET).map_err(de)?;
    let listed_digest = alg_hash(&mut digest_algs)?;
    digest_algs.finish().map_err(de)?;
    let mut encap = sd.nested(der::TAG_SEQUENCE).map_err(de)?;
    if encap.read_oid().map_err(de)? != OID_TST_INFO {
        return Err("timestamp content is not TSTInfo".into());
    }
    let mut ec = encap.nested(0xa0).map_err(de)?;
    let tst_info = ec.read(der::TAG_OCTET_STRING).map_err(de)?.content;
    ec.finish().map_err(de)?;
    encap.finish().map_err(de)?;
    let mut certificates = Vec::new();
    if let Some(certs) = sd.read_optional(0xa0).map_err(de)? {
        let mut cr = Reader::new(certs.content, "timestamp certificates");
        while !cr.is_empty() {
            certificates.push(cr.read(der::TAG_SEQUENCE).map_err(de)?.raw);
        }
    }
    if sd.read_optional(0xa1).map_err(de)?.is_some() {
        return Err("timestamp carries CRLs, which are not accepted".into());
    }
    let mut infos = sd.nested(der::TAG_SET).map_err(de)?;
    sd.finish().map_err(de)?;
    let mut si = infos.nested(der::TAG_SEQUENCE).map_err(de)?;
    if !infos.is_empty() {
        return Err("timestamp has more than one SignerInfo".into());
    }
    let si_version = si.read_small_int().map_err(de)?;
    let sid = match si.peek_tag() {
        Some(der::TAG_SEQUENCE) => {
            let mut ias = si.nested(der::TAG_SEQUENCE).map_err(de)?;
            let issuer = ias.read(der::TAG_SEQUENCE).map_err(de)?.raw;
            let serial = ias.read(der::TAG_INTEGER).map_err(de)?.content;
            ias.finish().map_err(de)?;
            SignerId::IssuerSerial { issuer, serial }
        }
        Some(0x80) => SignerId::KeyId(si.read(0x80).map_err(de)?.content),
        _ => return Err("timestamp SignerInfo has no signer identifier".into()),
    };
    if !matches!(
        (&sid, si_version),
        (SignerId::IssuerSerial { .. }, 1) | (SignerId::KeyId(_), 3)
    ) {
        return Err("timestamp SignerInfo version does not fit its signer identifier".into());
    }
    let digest_alg = alg_hash(&mut si)?;
    if digest_alg != listed_digest {
        return Err("timestamp SignerInfo digest algorithm is not the one SignedData lists".into());
    }
    let signed_attrs = si.read_optional(0xa0).map_err(de)?;
    let mut sa = si.nested(der::TAG_SEQUENCE).map_err(de)?;
    let sig_alg = sa.read_oid().map_err(de)?;
    if let Some(p) = sa.read_optional(der::TAG_NULL).map_err(de)? {
        if !p.content.is_empty() {
            return Err("signature algorithm parameters must be NULL".into());
        }
    }
    sa.finish().map_err(de)?;
    let signature = si.read(der::TAG_OCTET_STRING).map_err(de)?.content;
    if si.read_optional(0xa1).map_err(de)?.is_some() {
        return Err("timestamp carries unsigned attributes, which are not accepted".into());
    }
    si.finish().map_err(de)?;

    let tst = der::parse_single(tst_info, der::TAG_SEQUENCE, "TSTInfo").map_err(de)?;
    let mut t = Reader::new(tst.content, "TSTInfo");
    if t.read_small_int().map_err(de)? != 1 {
        return Err("TSTInfo version is not 1".into());
    }
    t.read_oid().map_err(de)?; // policy
    let mut mi = t.nested(der::TAG_SEQUENCE).map_err(de)?;
    let imprint_alg = alg_hash(&mut mi)?;
    let imprint = mi.read(der::TAG_OCTET_STRING).map_err(de)?.content;
    mi.finish().map_err(de)?;
    t.read(der::TAG_INTEGER).map_err(de)?; // serial
    let gt = t.read(der::TAG_GENERALIZED_TIME).map_err(de)?;
    let gen_time = der::parse_time(&gt, "TSTInfo genTime").map_err(de)?;

    Ok(Parsed {
        tst_info,
        certificates,
        sid,
        digest_alg,
        signed_attrs: signed_attrs.map(|a| a.raw),
        sig_alg,
        signature,
        imprint_alg,
        imprint,
        gen_time,
    })
}

fn matches_sid(cert: &Certificate, sid: &SignerId<'_>) -> bool {
    match sid {
        SignerId::IssuerSerial { issuer, serial } => {
            cert.issuer == *issuer && cert.serial == *serial
        }
        SignerId::KeyId(id) => cert.subject_key_id() == Some(*id),
    }
}

fn check_signed_attrs(attrs_raw: &[u8], digest: &[u8]) -> Result<(), String> {
    let attrs = der::parse_single(attrs_raw, 0xa0, "signedAttrs").map_err(de)?;
    let mut r = Reader::new(attrs.content, "signedAttrs");
    let (mut digest_ok, mut type_ok) = (false, false);
    while !r.is_empty() {
        let mut a = r.nested(der::TAG_SEQUENCE).map_err(de)?;
        let oid = a.read_oid().map_err(de)?;
        let mut values = a.nested(der::TAG_SET).map_err(de)?;
        match oid {
            OID_MESSAGE_DIGEST => {
                digest_ok = values.read(der::TAG_OCTET_STRING).map_err(de)?.content == digest
                    && values.is_empty();
            }
            OID_CONTENT_TYPE => {
                type_ok = values.read_oid().map_err(de)? == OID_TST_INFO && values.is_empty();
            }
            _ => {}
        }
    }
    if !type_ok {
        return Err("timestamp signed attributes lack the TSTInfo content type".into());
    }
    if !digest_ok {
        return Err("timestamp message digest attribute does not match TSTInfo".into());
    }
    Ok(())
}

fn signed_message(p: &Parsed<'_>) -> Vec<u8> {
    match p.signed_attrs {
        Some(raw) => {
            let mut m = raw.to_vec();
            m[0] = der::TAG_SET; // signed over the EXPLICIT SET OF encoding
            m
        }
        None => p.tst_info.to_vec(),
    }
}

/// For the benchmark's lower bound: the TSA's signature check and the TSTInfo hash.
pub(crate) struct SignatureOperation {
    /// The signed message (signed attributes or TSTInfo).
    pub message: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
    /// The signature's hash.
    pub hash: HashAlgorithm,
    /// TSTInfo DER (hashed for the message-digest attribute).
    pub tst_info: Vec<u8>,
}

pub(crate) fn signature_operation(token: &[u8]) -> Option<SignatureOperation> {
    let p = parse(token).ok()?;
    Some(SignatureOperation {
        message: signed_message(&p),
        signature: p.signature.to_vec(),
        hash: keys::signature_hash(p.sig_alg)
            .flatten()
            .unwrap_or(p.digest_alg),
        tst_info: p.tst_info.to_vec(),
    })
}

fn verify_signature(p: &Parsed<'_>, cert: &Certificate) -> bool {
    let message = signed_message(p);
    if p.sig_alg == OID_RSA_ENCRYPTION {
        return cert.public_key.kind() == keys::KeyKind::RsaPkcs1
            && cert
                .public_key
                .verify_with(p.digest_alg, &message, p.signature);
    }
    keys::verify_x509_signature(&cert.public_key, p.sig_alg, &message, p.signature)
}

/// Verifies `token` over `signature` and returns its time (unix seconds) and the TSA's URI if a
/// trusted TSA signed it.
pub(crate) fn verify_timestamp(
    token: &[u8],
    signature: &[u8],
    root: &TrustedRoot,
) -> Result<(i64, String), String> {
    let p = parse(token)?;
    if p.imprint_alg.digest(signature) != p.imprint {
        return Err("timestamp message imprint does not match the signature".into());
    }
    if let Some(attrs) = p.signed_attrs {
        check_signed_attrs(attrs, &p.digest_alg.digest(p.tst_info))?;
    }
    let t = p.gen_time;
    let mut last_err = String::from("no trusted timestamp authority issued this timestamp");
    for ca in &root.timestamp_authorities {
        match verify_with_authority(&p, ca, t) {
            Ok(()) => return Ok((t, ca.uri.clone())),
            Err(Some(e)) => last_err = e,
            Err(None) => {}
        }
    }
    Err(last_err)
}

/// `Err(None)`: not this authority's timestamp; `Err(Some)`: it is, but it fails.
fn verify_with_authority(
    p: &Parsed<'_>,
    ca: &TrustedAuthority,
    t: i64,
) -> Result<(), Option<String>> {
    let leaf = &ca.chain[0];
    // Embedded certificates equal to the authority's own need no parsing; any other one is
    // parsed and must be the signer, issued by a certificate of this authority.
    let mut foreign = Vec::new();
    for der_bytes in &p.certificates {
        if !ca.chain.iter().any(|c| c.der() == *der_bytes) {
            let cert = Certificate::from_der(der_bytes)
                .map_err(|e| Some(format!("embedded TSA certificate: {e}")))?;
            foreign.push(cert);
        }
    }
    let embedded_signer = foreign.iter().find(|c| matches_sid(c, &p.sid));
    let (signer, path_start) = if let Some(c) = embedded_signer {
        match ca.chain.iter().position(|issuer| c.is_signed_by(issuer)) {
            Some(i) => (c, i),
            None => return Err(None),
        }
    } else if matches_sid(leaf, &p.sid) {
        (leaf, 1)
    } else {
        return Err(None);
    };
    if foreign.iter().any(|c| c.der() != signer.der()) {
        return Err(Some(
            "timestamp embeds a certificate outside the TSA's chain".into(),
        ));
    }
    if !verify_signature(p, signer) {
        return Err(Some(
            "timestamp signature does not verify with the TSA certificate".into(),
        ));
    }
    if !signer.has_eku(x509::OID_EKU_TIME_STAMPING) {
        return Err(Some(
            "TSA certificate lacks the timeStamping extended key usage".into(),
        ));
    }
    if !ca.validity.contains(t) {
        return Err(Some(format!(
            "timestamp time {t} is outside the TSA's validity in the trusted root"
        )));
    }
    if !signer.valid_at(t)
        || !ca.chain[path_start.min(ca.chain.len())..]
            .iter()
            .all(|c| c.valid_at(t))
    {
        return Err(Some(format!(
            "timestamp time {t} is outside the TSA certificate chain's validity"
        )));
    }
    Ok(())
}
