//! RFC 3161 timestamps: the request (DER `TimeStampReq` over SHA-256 of the signature, certificate requested) and
//! a first check of the response (`PKIStatus` granted). The response bytes go into the bundle as they are; the
//! verifier checks the token against the trusted root.
use crate::keyless::KeylessError;
use crate::service_http;

const SHA256_OID: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// DER of a positive INTEGER from big-endian magnitude bytes.
fn positive_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = magnitude.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::new();
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(&trimmed);
    tlv(0x02, &content)
}

/// `TimeStampReq` (version 1, SHA-256 message imprint, `nonce`, certReq TRUE).
pub fn timestamp_request(sha256_digest: &[u8], nonce: &[u8]) -> Vec<u8> {
    let algorithm = tlv(0x30, &[tlv(0x06, &SHA256_OID), vec![0x05, 0x00]].concat());
    let imprint = tlv(0x30, &[algorithm, tlv(0x04, sha256_digest)].concat());
    tlv(
        0x30,
        &[
            vec![0x02, 0x01, 0x01],
            imprint,
            positive_integer(nonce),
            vec![0x01, 0x01, 0xff],
        ]
        .concat(),
    )
}

/// The `PKIStatus` of a `TimeStampResp` (0 granted, 1 granted with mods, 2+ refused).
pub fn response_status(response: &[u8]) -> Option<u8> {
    // SEQUENCE { SEQUENCE { INTEGER status, ... }, token }
    let (content, _) = read_tlv(response, 0x30)?;
    let (status_info, _) = read_tlv(content, 0x30)?;
    let (status, _) = read_tlv(status_info, 0x02)?;
    match status {
        [s] => Some(*s),
        _ => None,
    }
}

fn read_tlv(data: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *data.first()? != tag {
        return None;
    }
    let first = *data.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in data.get(2..2 + n)? {
            len = (len << 8) | *b as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((data.get(header..end)?, data.get(end..)?))
}

/// Asks the TSA at `url` (`.../api/v1/timestamp`) to timestamp `sha256_digest`; returns the DER `TimeStampResp`.
pub async fn request_timestamp(
    http: &reqwest::Client,
    url: &str,
    sha256_digest: &[u8],
) -> Result<Vec<u8>, KeylessError> {
    let mut nonce = [0u8; 8];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| KeylessError::Response {
        service: "TSA",
        reason: "no randomness for the nonce".into(),
    })?;
    let builder = http
        .post(url)
        .header("Content-Type", "application/timestamp-query")
        .header("Accept", "application/timestamp-reply")
        .body(timestamp_request(sha256_digest, &nonce));
    let body = service_http::send("TSA", url, builder, None).await?;
    match response_status(&body) {
        Some(0 | 1) => Ok(body),
        Some(s) => Err(KeylessError::Response {
            service: "TSA",
            reason: format!("the timestamp request was refused (PKIStatus {s})"),
        }),
        None => Err(KeylessError::Response {
            service: "TSA",
            reason: "the answer is not a DER TimeStampResp".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_der_with_the_imprint_and_nonce() {
        let req = timestamp_request(&[0xab; 32], &[0x80, 1, 2, 3, 4, 5, 6, 7]);
        let (body, rest) = read_tlv(&req, 0x30).unwrap();
        assert!(rest.is_empty());
        assert_eq!(&body[..3], &[0x02, 0x01, 0x01]);
        // The nonce's high bit is set, so it gets a leading zero to stay positive.
        assert!(
            req.windows(11)
                .any(|w| w == [0x02, 0x09, 0x00, 0x80, 1, 2, 3, 4, 5, 6, 7])
        );
        assert!(req.ends_with(&[0x01, 0x01, 0xff]));
    }

    #[test]
    fn status_of_responses() {
        assert_eq!(
            response_status(&[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00]),
            Some(0)
        );
        assert_eq!(
            response_status(&[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x02]),
            Some(2)
        );
        assert_eq!(response_status(b"<html>"), None);
        assert_eq!(response_status(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
