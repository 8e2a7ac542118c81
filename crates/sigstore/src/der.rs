//! A small, strict DER reader: just enough ASN.1 for certificates, SCT lists, RFC 3161
//! timestamps and CMS `SignedData`. Every read is bounds-checked and returns a [`DerError`].
//! Public: [`encode`] and the tags it is used with (kibaship-sign wraps keys with them), and the [`Reader`]
//! (kibaship-sign reads the named curve of an EC private key with it).

use std::fmt;

/// A DER decoding failure: what was expected and where (a short path set by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerError {
    /// What was being read.
    pub context: &'static str,
    /// What went wrong.
    pub reason: &'static str,
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.reason)
    }
}

impl std::error::Error for DerError {}

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_NULL: u8 = 0x05;
pub const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
pub const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;

/// One decoded TLV: its tag, its content bytes and its complete encoding.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// A cursor over a sequence of TLVs.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    data: &'a [u8],
    context: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], context: &'static str) -> Self {
        Self { data, context }
    }

    fn err(&self, reason: &'static str) -> DerError {
        DerError {
            context: self.context,
            reason,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Reads the next TLV (single-byte tags only; definite lengths, minimal encoding).
    pub fn read_any(&mut self) -> Result<Tlv<'a>, DerError> {
        let data = self.data;
        if data.len() < 2 {
            return Err(self.err("truncated element"));
        }
        let tag = data[0];
        if tag & 0x1f == 0x1f {
            return Err(self.err("multi-byte tags are not supported"));
        }
        let first = data[1];
        let (len, header) = if first < 0x80 {
            (first as usize, 2usize)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 {
                return Err(self.err("indefinite length is not DER"));
            }
            if n > 4 {
                return Err(self.err("length too large"));
            }
            if data.len() < 2 + n {
                return Err(self.err("truncated length"));
            }
            let mut len = 0usize;
            for b in &data[2..2 + n] {
                len = (len << 8) | *b as usize;
            }
            if len < 0x80 || (n > 1 && data[2] == 0) {
                return Err(self.err("non-minimal length"));
            }
            (len, 2 + n)
        };
        let end = header
            .checked_add(len)
            .ok_or_else(|| self.err("length overflow"))?;
        if data.len() < end {
            return Err(self.err("truncated element"));
        }
        self.data = &data[end..];
        Ok(Tlv {
            tag,
            content: &data[header..end],
            raw: &data[..end],
        })
    }

    /// Reads the next TLV and requires its tag.
    pub fn read(&mut self, tag: u8) -> Result<Tlv<'a>, DerError> {
        match self.peek_tag() {
            Some(t) if t == tag => self.read_any(),
            Some(_) => Err(self.err("unexpected tag")),
            None => Err(self.err("missing element")),
        }
    }

    /// Reads the next TLV if it has `tag`.
    pub fn read_optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read_any().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Reads a constructed element and returns a reader over its content.
    pub fn nested(&mut self, tag: u8) -> Result<Reader<'a>, DerError> {
        let tlv = self.read(tag)?;
        Ok(Reader::new(tlv.content, self.context))
    }

    pub fn finish(&self) -> Result<(), DerError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing data"))
        }
    }

    pub fn read_oid(&mut self) -> Result<&'a [u8], DerError> {
        Ok(self.read(TAG_OID)?.content)
    }

    /// Reads an INTEGER that must fit in an i64.
    pub fn read_small_int(&mut self) -> Result<i64, DerError> {
        let tlv = self.read(TAG_INTEGER)?;
        let c = tlv.content;
        if c.is_empty() || c.len() > 8 {
            return Err(self.err("integer out of range"));
        }
        let mut v: i64 = if c[0] & 0x80 != 0 { -1 } else { 0 };
        for b in c {
            v = (v << 8) | *b as i64;
        }
        Ok(v)
    }
}

/// Reads exactly one TLV of `tag` spanning all of `data`.
pub(crate) fn parse_single<'a>(
    data: &'a [u8],
    tag: u8,
    context: &'static str,
) -> Result<Tlv<'a>, DerError> {
    let mut r = Reader::new(data, context);
    let tlv = r.read(tag)?;
    r.finish()?;
    Ok(tlv)
}

/// Parses a UTCTime or GeneralizedTime (the forms DER allows: `Z`, no fractions for UTCTime) into unix seconds.
pub(crate) fn parse_time(tlv: &Tlv<'_>, context: &'static str) -> Result<i64, DerError> {
    let err = |reason| DerError { context, reason };
    if !tlv.content.is_ascii() {
        return Err(err("time is not ASCII"));
    }
    let s = std::str::from_utf8(tlv.content).map_err(|_| err("time is not ASCII"))?;
    let digits = |s: &str| -> Result<i64, DerError> {
        if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
            s.parse::<i64>().map_err(|_| err("bad time digits"))
        } else {
            Err(err("bad time digits"))
        }
    };
    let (year, rest) = match tlv.tag {
        TAG_UTC_TIME => {
            if s.len() != 13 || !s.ends_with('Z') {
                return Err(err("UTCTime must be YYMMDDHHMMSSZ"));
            }
            let yy = digits(&s[0..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        TAG_GENERALIZED_TIME => {
            if s.len() < 15 || !s.ends_with('Z') {
                return Err(err("GeneralizedTime must be YYYYMMDDHHMMSS[.f]Z"));
            }
            (digits(&s[0..4])?, &s[4..])
        }
        _ => return Err(err("expected a time")),
    };
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let minute = digits(&rest[6..8])?;
    let second = digits(&rest[8..10])?;
    let tail = &rest[10..rest.len() - 1];
    if !tail.is_empty() {
        // Fractional seconds (GeneralizedTime only): ".d+" — truncated to whole seconds.
        if tlv.tag != TAG_GENERALIZED_TIME || !tail.starts_with('.') || tail.len() < 2 {
            return Err(err("unexpected characters in time"));
        }
        digits(&tail[1..])?;
    }
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(err("time field out of range"));
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Appends a DER length.
pub(crate) fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Encodes `tag || len || content`.
pub fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }

    #[test]
    fn rejects_truncated_and_non_minimal() {
        assert!(Reader::new(&[0x30, 0x05, 0x01], "t").read_any().is_err());
        assert!(
            Reader::new(&[0x30, 0x81, 0x01, 0x00], "t")
                .read_any()
                .is_err()
        );
        assert!(
            Reader::new(&[0x30, 0x80, 0x00, 0x00], "t")
                .read_any()
                .is_err()
        );
        let mut r = Reader::new(&[0x02, 0x01, 0xff], "t");
        assert_eq!(r.read_small_int().unwrap(), -1);
    }

    #[test]
    fn non_ascii_times_are_errors_not_panics() {
        let t = Tlv {
            tag: TAG_UTC_TIME,
            content: "24é319172626".as_bytes(),
            raw: b"",
        };
        assert!(parse_time(&t, "t").is_err());
    }

    #[test]
    fn times() {
        let t = Tlv {
            tag: TAG_UTC_TIME,
            content: b"240319172626Z",
            raw: b"",
        };
        assert_eq!(parse_time(&t, "t").unwrap(), 1_710_869_186);
        let g = Tlv {
            tag: TAG_GENERALIZED_TIME,
            content: b"20250612120220.5Z",
            raw: b"",
        };
        assert_eq!(parse_time(&g, "t").unwrap(), 1_749_729_740);
    }
}
