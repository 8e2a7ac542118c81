//! A small, bounded PEM reader: one block, label and DER bytes.
use base64::Engine as _;

/// PEM inputs larger than this are refused before decoding (the largest key we accept, RSA 4096 in PKCS#8,
/// is about 3.3 KiB of PEM; encrypted wrappers add a JSON envelope).
pub(crate) const MAX_PEM_BYTES: usize = 64 * 1024;

/// One PEM block.
#[derive(Debug)]
pub(crate) struct PemBlock {
    pub(crate) label: String,
    pub(crate) der: Vec<u8>,
}

/// Why a PEM block could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PemError {
    /// The input is larger than any key file.
    #[error("PEM input is {0} bytes, more than the {MAX_PEM_BYTES} a key file can be")]
    TooLarge(usize),
    /// No `-----BEGIN ...-----` line.
    #[error("no PEM block found (expected a line `-----BEGIN <label>-----`)")]
    NoBlock,
    /// The block has no matching END line.
    #[error("PEM block `{0}` has no matching `-----END {0}-----` line")]
    Unterminated(String),
    /// The body is not base64.
    #[error("PEM block `{label}` body is not valid base64: {reason}")]
    BadBase64 {
        /// Block label.
        label: String,
        /// What the decoder said.
        reason: String,
    },
}

/// Reads the first PEM block of `input`, ignoring text before it (as OpenSSL and Go's `pem.Decode` do).
/// PEM headers (`Proc-Type: ...`) are not supported: no key format we read uses them.
pub(crate) fn parse_first(input: &[u8]) -> Result<PemBlock, PemError> {
    if input.len() > MAX_PEM_BYTES {
        return Err(PemError::TooLarge(input.len()));
    }
    let text = String::from_utf8_lossy(input);
    let mut lines = text.lines().map(str::trim);
    let label = loop {
        let line = lines.next().ok_or(PemError::NoBlock)?;
        if let Some(rest) = line.strip_prefix("-----BEGIN ") {
            if let Some(label) = rest.strip_suffix("-----") {
                break label.to_string();
            }
        }
    };
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut terminated = false;
    for line in lines {
        if line == end {
            terminated = true;
            break;
        }
        body.push_str(line);
    }
    if !terminated {
        return Err(PemError::Unterminated(label));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| PemError::BadBase64 {
            label: label.clone(),
            reason: e.to_string(),
        })?;
    Ok(PemBlock { label, der })
}

/// Writes one PEM block with 64-character lines, as Go's `pem.Encode` does.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_leading_text() {
        let pem = encode("PUBLIC KEY", &[1, 2, 3, 250]);
        let block = parse_first(format!("garbage\n{pem}").as_bytes()).unwrap();
        assert_eq!(block.label, "PUBLIC KEY");
        assert_eq!(block.der, vec![1, 2, 3, 250]);
    }

    #[test]
    fn rejects_broken_blocks() {
        assert_eq!(parse_first(b"hello").unwrap_err(), PemError::NoBlock);
        assert_eq!(
            parse_first(b"-----BEGIN X-----\nAAAA\n").unwrap_err(),
            PemError::Unterminated("X".into())
        );
        assert!(matches!(
            parse_first(b"-----BEGIN X-----\n!!!!\n-----END X-----\n").unwrap_err(),
            PemError::BadBase64 { .. }
        ));
        assert!(matches!(
            parse_first(&vec![b'a'; MAX_PEM_BYTES + 1]).unwrap_err(),
            PemError::TooLarge(_)
        ));
    }
}
