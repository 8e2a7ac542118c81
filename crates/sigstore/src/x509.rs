//! X.509 certificates: the fields Sigstore verification reads, parsed strictly from DER.

use crate::der::{self, DerError, Reader, Tlv};
use crate::keys::{self, KeyError, PublicKey};

/// `1.3.6.1.4.1.57264.1` — Fulcio's certificate extension arc.
pub(crate) const FULCIO_ARC: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01];
/// `1.3.6.1.4.1.11129.2.4.2` — embedded SCT list.
pub(crate) const OID_SCT_LIST: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];
/// `1.3.6.1.4.1.11129.2.4.3` — CT precertificate poison.
pub(crate) const OID_CT_POISON: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_EKU: &[u8] = &[0x55, 0x1d, 0x25];
const OID_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
const OID_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
/// `1.3.6.1.5.5.7.3.3` — code signing.
pub(crate) const OID_EKU_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
/// `1.3.6.1.5.5.7.3.8` — time stamping.
pub(crate) const OID_EKU_TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];

/// Why a certificate could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Not DER, or not the X.509 structure.
    #[error("malformed certificate: {0}")]
    Der(#[from] DerError),
    /// The subject public key is unusable.
    #[error("certificate public key: {0}")]
    Key(#[from] KeyError),
    /// Something else the structure forbids.
    #[error("malformed certificate: {0}")]
    Invalid(&'static str),
}

/// One certificate extension.
#[derive(Debug, Clone)]
pub struct Extension {
    /// DER OID content bytes.
    pub oid: Vec<u8>,
    /// Whether it is marked critical.
    pub critical: bool,
    /// The OCTET STRING content.
    pub value: Vec<u8>,
    /// The complete DER of the Extension.
    raw: Vec<u8>,
}

/// A subject alternative name of the forms Fulcio issues.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", content = "value", rename_all = "camelCase")]
pub enum SubjectAltName {
    /// rfc822Name.
    Email(String),
    /// uniformResourceIdentifier.
    Uri(String),
    /// otherName `1.3.6.1.4.1.57264.1.7` (a username).
    OtherName(String),
}

impl SubjectAltName {
    /// The name's text.
    pub fn value(&self) -> &str {
        match self {
            SubjectAltName::Email(s) | SubjectAltName::Uri(s) | SubjectAltName::OtherName(s) => s,
        }
    }
}

/// A parsed certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    raw: Vec<u8>,
    tbs_range: (usize, usize),
    /// Signature algorithm OID (outer).
    pub(crate) sig_alg: Vec<u8>,
    pub(crate) signature: Vec<u8>,
    pub(crate) serial: Vec<u8>,
    pub(crate) issuer: Vec<u8>,
    pub(crate) subject: Vec<u8>,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    spki_range: (usize, usize),
    pub(crate) public_key: PublicKey,
    pub(crate) extensions: Vec<Extension>,
    /// basicConstraints cA.
    pub is_ca: bool,
    pub(crate) key_usage: Option<u16>,
    pub(crate) eku: Option<Vec<Vec<u8>>>,
    /// Subject alternative names.
    pub sans: Vec<SubjectAltName>,
}

fn range_of(outer: &[u8], inner: &[u8]) -> (usize, usize) {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    (start, start + inner.len())
}

impl Certificate {
    /// Parses a DER certificate.
    pub fn from_der(raw: &[u8]) -> Result<Self, CertificateError> {
        let cert = der::parse_single(raw, der::TAG_SEQUENCE, "certificate")?;
        let mut c = Reader::new(cert.content, "certificate");
        let tbs = c.read(der::TAG_SEQUENCE)?;
        let mut alg = c.nested(der::TAG_SEQUENCE)?;
        let sig_alg = alg.read_oid()?.to_vec();
        let sig_bits = c.read(der::TAG_BIT_STRING)?;
        c.finish()?;
        let signature = bit_string_bytes(&sig_bits)?.to_vec();

        let mut t = Reader::new(tbs.content, "tbsCertificate");
        if let Some(v) = t.read_optional(0xa0)? {
            let mut vr = Reader::new(v.content, "certificate version");
            if vr.read_small_int()? != 2 {
                return Err(CertificateError::Invalid(
                    "only X.509 v3 certificates are accepted",
                ));
            }
            vr.finish()?;
        } else {
            return Err(CertificateError::Invalid(
                "only X.509 v3 certificates are accepted",
            ));
        }
        let serial = t.read(der::TAG_INTEGER)?.content.to_vec();
        let mut inner_alg = t.nested(der::TAG_SEQUENCE)?;
        if inner_alg.read_oid()? != sig_alg.as_slice() {
            return Err(CertificateError::Invalid("signature algorithms disagree"));
        }
        let issuer = t.read(der::TAG_SEQUENCE)?.raw.to_vec();
        let mut validity = t.nested(der::TAG_SEQUENCE)?;
        let nb = validity.read_any()?;
        let na = validity.read_any()?;
        validity.finish()?;
        let not_before = der::parse_time(&nb, "certificate notBefore")?;
        let not_after = der::parse_time(&na, "certificate notAfter")?;
        let subject = t.read(der::TAG_SEQUENCE)?.raw.to_vec();
        let spki = t.read(der::TAG_SEQUENCE)?;
        t.read_optional(0x81)?; // issuerUniqueID
        t.read_optional(0x82)?; // subjectUniqueID
        let mut extensions = Vec::new();
        if let Some(exts) = t.read_optional(0xa3)? {
            let mut er = Reader::new(exts.content, "certificate extensions");
            let mut list = er.nested(der::TAG_SEQUENCE)?;
            er.finish()?;
            while !list.is_empty() {
                let ext = list.read(der::TAG_SEQUENCE)?;
                let mut e = Reader::new(ext.content, "certificate extension");
                let oid = e.read_oid()?.to_vec();
                let critical = match e.read_optional(der::TAG_BOOLEAN)? {
                    Some(b) => b.content == [0xff],
                    None => false,
                };
                let value = e.read(der::TAG_OCTET_STRING)?.content.to_vec();
                e.finish()?;
                if extensions.iter().any(|x: &Extension| x.oid == oid) {
                    return Err(CertificateError::Invalid("duplicate extension"));
                }
                extensions.push(Extension {
                    oid,
                    critical,
                    value,
                    raw: ext.raw.to_vec(),
                });
            }
        }
        t.finish()?;

        let public_key = PublicKey::from_spki(spki.raw, false)?;
        let mut out = Certificate {
            raw: raw.to_vec(),
            tbs_range: range_of(raw, tbs.raw),
            sig_alg,
            signature,
            serial,
            issuer,
            subject,
            not_before,
            not_after,
            spki_range: range_of(raw, spki.raw),
            public_key,
            extensions: Vec::new(),
            is_ca: false,
            key_usage: None,
            eku: None,
            sans: Vec::new(),
        };
        for ext in &extensions {
            match ext.oid.as_slice() {
                OID_BASIC_CONSTRAINTS => {
                    let mut r = Reader::new(&ext.value, "basicConstraints");
                    let mut s = r.nested(der::TAG_SEQUENCE)?;
                    r.finish()?;
                    if let Some(b) = s.read_optional(der::TAG_BOOLEAN)? {
                        out.is_ca = b.content == [0xff];
                    }
                }
                OID_KEY_USAGE => {
                    let bits = der::parse_single(&ext.value, der::TAG_BIT_STRING, "keyUsage")?;
                    let b = bit_string_bytes_loose(&bits)?;
                    let v = (u16::from(b.first().copied().unwrap_or(0)) << 8)
                        | u16::from(b.get(1).copied().unwrap_or(0));
                    out.key_usage = Some(v);
                }
                OID_EKU => {
                    let seq = der::parse_single(&ext.value, der::TAG_SEQUENCE, "extKeyUsage")?;
                    let mut r = Reader::new(seq.content, "extKeyUsage");
                    let mut oids = Vec::new();
                    while !r.is_empty() {
                        oids.push(r.read_oid()?.to_vec());
                    }
                    out.eku = Some(oids);
                }
                OID_SAN => out.sans = parse_sans(&ext.value)?,
                _ => {}
            }
        }
        out.extensions = extensions;
        Ok(out)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.raw
    }

    pub(crate) fn tbs(&self) -> &[u8] {
        &self.raw[self.tbs_range.0..self.tbs_range.1]
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> &[u8] {
        &self.raw[self.spki_range.0..self.spki_range.1]
    }

    /// The subject's key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Whether `issuer` signed this certificate (names match and the signature verifies).
    pub fn is_signed_by(&self, issuer: &Certificate) -> bool {
        self.may_be_issued_by(issuer)
            && keys::verify_x509_signature(
                &issuer.public_key,
                &self.sig_alg,
                self.tbs(),
                &self.signature,
            )
    }

    /// Whether the certificate is self-issued (issuer name equals subject name).
    pub fn is_self_issued(&self) -> bool {
        self.issuer == self.subject
    }

    /// Whether `t` (unix seconds) lies within notBefore..=notAfter.
    pub fn valid_at(&self, t: i64) -> bool {
        self.not_before <= t && t <= self.not_after
    }

    /// The subjectKeyIdentifier value, if present.
    pub(crate) fn subject_key_id(&self) -> Option<&[u8]> {
        let ext = self.extension(OID_SUBJECT_KEY_ID)?;
        der::parse_single(&ext.value, der::TAG_OCTET_STRING, "subjectKeyIdentifier")
            .ok()
            .map(|t| t.content)
    }

    /// The authorityKeyIdentifier's keyIdentifier, if present.
    pub(crate) fn authority_key_id(&self) -> Option<&[u8]> {
        let ext = self.extension(OID_AUTHORITY_KEY_ID)?;
        let seq =
            der::parse_single(&ext.value, der::TAG_SEQUENCE, "authorityKeyIdentifier").ok()?;
        Reader::new(seq.content, "authorityKeyIdentifier")
            .read_optional(0x80)
            .ok()
            .flatten()
            .map(|t| t.content)
    }

    /// Whether `issuer` may have issued this certificate: names match and, where both key
    /// identifiers are present, they match too (a cheap test before the signature check).
    pub(crate) fn may_be_issued_by(&self, issuer: &Certificate) -> bool {
        self.issuer == issuer.subject
            && match (self.authority_key_id(), issuer.subject_key_id()) {
                (Some(a), Some(s)) => a == s,
                _ => true,
            }
    }

    pub(crate) fn extension(&self, oid: &[u8]) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.oid == oid)
    }

    /// Whether keyUsage has digitalSignature (bit 0).
    pub(crate) fn has_digital_signature(&self) -> bool {
        matches!(self.key_usage, Some(v) if v & 0x8000 != 0)
    }

    pub(crate) fn has_eku(&self, oid: &[u8]) -> bool {
        matches!(&self.eku, Some(list) if list.iter().any(|o| o == oid))
    }

    /// Critical extensions a leaf or TSA certificate may carry; any other critical one fails closed.
    pub(crate) fn unknown_critical_extension(&self) -> Option<String> {
        self.extensions
            .iter()
            .find(|e| {
                e.critical
                    && ![
                        OID_KEY_USAGE,
                        OID_SAN,
                        OID_BASIC_CONSTRAINTS,
                        OID_EKU,
                        OID_SUBJECT_KEY_ID,
                        OID_AUTHORITY_KEY_ID,
                    ]
                    .contains(&e.oid.as_slice())
            })
            .map(|e| oid_to_string(&e.oid))
    }

    /// The Fulcio extension `1.3.6.1.4.1.57264.1.<n>` as text. Extensions 1–6 hold raw bytes,
    /// 8 and later a DER UTF8String.
    pub fn fulcio_extension(&self, n: u8) -> Option<Result<String, CertificateError>> {
        let mut oid = FULCIO_ARC.to_vec();
        oid.push(n);
        let ext = self.extension(&oid)?;
        Some(if n <= 6 {
            String::from_utf8(ext.value.clone())
                .map_err(|_| CertificateError::Invalid("Fulcio extension is not UTF-8"))
        } else {
            der::parse_single(&ext.value, der::TAG_UTF8_STRING, "Fulcio extension")
                .map_err(CertificateError::from)
                .and_then(|t| {
                    std::str::from_utf8(t.content)
                        .map(str::to_owned)
                        .map_err(|_| CertificateError::Invalid("Fulcio extension is not UTF-8"))
                })
        })
    }

    /// The OIDC issuer: extension `.1.8`, else the older `.1.1`.
    pub fn oidc_issuer(&self) -> Option<Result<String, CertificateError>> {
        self.fulcio_extension(8)
            .or_else(|| self.fulcio_extension(1))
    }

    /// The TBS with the embedded SCT list removed: what the CT log signed (RFC 6962 §3.2).
    pub(crate) fn precert_tbs(&self) -> Result<Vec<u8>, CertificateError> {
        let tbs = der::parse_single(self.tbs(), der::TAG_SEQUENCE, "tbsCertificate")?;
        let mut r = Reader::new(tbs.content, "tbsCertificate");
        let mut content = Vec::with_capacity(tbs.content.len());
        while !r.is_empty() {
            let el = r.read_any()?;
            if el.tag == 0xa3 {
                let mut ext_list = Vec::new();
                for e in &self.extensions {
                    if e.oid != OID_SCT_LIST {
                        ext_list.extend_from_slice(&e.raw);
                    }
                }
                let seq = der::encode(der::TAG_SEQUENCE, &ext_list);
                content.extend_from_slice(&der::encode(0xa3, &seq));
            } else {
                content.extend_from_slice(el.raw);
            }
        }
        Ok(der::encode(der::TAG_SEQUENCE, &content))
    }
}

fn bit_string_bytes<'a>(t: &Tlv<'a>) -> Result<&'a [u8], DerError> {
    match t.content.split_first() {
        Some((0, rest)) => Ok(rest),
        _ => Err(DerError {
            context: "signature",
            reason: "bit string has unused bits",
        }),
    }
}

fn bit_string_bytes_loose<'a>(t: &Tlv<'a>) -> Result<&'a [u8], DerError> {
    match t.content.split_first() {
        Some((n, rest)) if *n < 8 => Ok(rest),
        _ => Err(DerError {
            context: "bit string",
            reason: "malformed bit string",
        }),
    }
}

/// `1.3.6.1.4.1.57264.1.7`.
const OID_OTHERNAME_USERNAME: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01, 0x07];

fn parse_sans(value: &[u8]) -> Result<Vec<SubjectAltName>, CertificateError> {
    let seq = der::parse_single(value, der::TAG_SEQUENCE, "subjectAltName")?;
    let mut r = Reader::new(seq.content, "subjectAltName");
    let mut out = Vec::new();
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| CertificateError::Invalid("subjectAltName is not UTF-8"))
    };
    while !r.is_empty() {
        let gn = r.read_any()?;
        match gn.tag {
            0x81 => out.push(SubjectAltName::Email(text(gn.content)?)),
            0x86 => out.push(SubjectAltName::Uri(text(gn.content)?)),
            0xa0 => {
                let mut o = Reader::new(gn.content, "subjectAltName otherName");
                let oid = o.read_oid()?;
                let mut v = o.nested(0xa0)?;
                o.finish()?;
                if oid == OID_OTHERNAME_USERNAME {
                    let s = v.read(der::TAG_UTF8_STRING)?;
                    v.finish()?;
                    out.push(SubjectAltName::OtherName(text(s.content)?));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Dotted text of a DER OID (for messages).
pub(crate) fn oid_to_string(oid: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut acc: u64 = 0;
    for (i, b) in oid.iter().enumerate() {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() && i < oid.len() {
                let (a, bb) = if acc < 40 {
                    (0, acc)
                } else if acc < 80 {
                    (1, acc - 40)
                } else {
                    (2, acc - 80)
                };
                parts.push(a.to_string());
                parts.push(bb.to_string());
            } else {
                parts.push(acc.to_string());
            }
            acc = 0;
        }
    }
    parts.join(".")
}
