//! The one PEM reader and writer of kibaship: bounded, line-oriented, typed errors. Used for public keys and
//! certificates here, and for key files by `kibaship-sign`.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// PEM inputs larger than this are refused before decoding: far above any key file (an RSA 4096 PKCS#8 key is
/// about 3.3 KiB) or certificate chain (a few KiB), small enough that hostile input costs little.
pub const MAX_PEM_BYTES: usize = 256 * 1024;

/// One PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    /// The label between `-----BEGIN ` and `-----`.
    pub label: String,
    /// The decoded body.
    pub der: Vec<u8>,
}

/// Why PEM text could not be read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PemError {
    /// The input is larger than any PEM we read.
    #[error("PEM input is {0} bytes, more than the {MAX_PEM_BYTES} accepted")]
    TooLarge(usize),
    /// No `-----BEGIN ...-----` line.
    #[error("no PEM block found (expected a line `-----BEGIN <label>-----`)")]
    NoBlock,
    /// No block with the wanted label.
    #[error("no PEM `{0}` block found (expected a line `-----BEGIN {0}-----`)")]
    NoBlockLabelled(String),
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

/// Every block of `input` in order, whatever its label; text between blocks is ignored (as OpenSSL and Go's
/// `pem.Decode` do). PEM headers (`Proc-Type: ...`) are not supported: no format we read uses them.
pub fn decode_blocks(input: &[u8]) -> Result<Vec<PemBlock>, PemError> {
    if input.len() > MAX_PEM_BYTES {
        return Err(PemError::TooLarge(input.len()));
    }
    let text = String::from_utf8_lossy(input);
    let mut lines = text.lines().map(str::trim);
    let mut blocks = Vec::new();
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut terminated = false;
        for line in lines.by_ref() {
            if line == end {
                terminated = true;
                break;
            }
            body.push_str(line);
        }
        if !terminated {
            return Err(PemError::Unterminated(label.to_string()));
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|e| PemError::BadBase64 {
                label: label.to_string(),
                reason: e.to_string(),
            })?;
        blocks.push(PemBlock {
            label: label.to_string(),
            der,
        });
    }
    Ok(blocks)
}

/// The first block of `input`, whatever its label.
pub fn decode_first(input: &[u8]) -> Result<PemBlock, PemError> {
    decode_blocks(input)?
        .into_iter()
        .next()
        .ok_or(PemError::NoBlock)
}

/// The bodies of every block labelled `label`, in order (none is an error).
pub fn decode_all(input: &str, label: &str) -> Result<Vec<Vec<u8>>, PemError> {
    let found: Vec<Vec<u8>> = decode_blocks(input.as_bytes())?
        .into_iter()
        .filter(|b| b.label == label)
        .map(|b| b.der)
        .collect();
    if found.is_empty() {
        return Err(PemError::NoBlockLabelled(label.to_string()));
    }
    Ok(found)
}

/// The body of the first block labelled `label`.
pub fn decode(input: &str, label: &str) -> Result<Vec<u8>, PemError> {
    decode_all(input, label)?
        .into_iter()
        .next()
        .ok_or_else(|| PemError::NoBlockLabelled(label.to_string()))
}

/// One PEM block with 64-character lines, as Go's `pem.Encode` writes it.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
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
    fn round_trips_and_ignores_text_around_blocks() {
        let pem = encode("PUBLIC KEY", &[1, 2, 3, 250]);
        let block = decode_first(format!("garbage\n{pem}trailer").as_bytes()).unwrap();
        assert_eq!(block.label, "PUBLIC KEY");
        assert_eq!(block.der, vec![1, 2, 3, 250]);
        assert!(encode("X", &[0; 100]).lines().all(|l| l.len() <= 64));
    }

    #[test]
    fn picks_blocks_by_label_in_order() {
        let text = format!(
            "{}{}\r\n{}",
            encode("CERTIFICATE", &[1]),
            encode("PUBLIC KEY", &[2]),
            encode("CERTIFICATE", &[3])
        );
        assert_eq!(
            decode_all(&text, "CERTIFICATE").unwrap(),
            vec![vec![1], vec![3]]
        );
        assert_eq!(decode(&text, "PUBLIC KEY").unwrap(), vec![2]);
        assert_eq!(
            decode(&text, "PRIVATE KEY").unwrap_err(),
            PemError::NoBlockLabelled("PRIVATE KEY".into())
        );
    }

    #[test]
    fn rejects_broken_blocks() {
        assert_eq!(decode_first(b"hello").unwrap_err(), PemError::NoBlock);
        assert_eq!(
            decode_first(b"-----BEGIN X-----\nAAAA\n").unwrap_err(),
            PemError::Unterminated("X".into())
        );
        assert!(matches!(
            decode_first(b"-----BEGIN X-----\n!!!!\n-----END X-----\n").unwrap_err(),
            PemError::BadBase64 { .. }
        ));
        // A broken block is an error even when a good one precedes it: nothing is silently skipped.
        let broken = format!("{}-----BEGIN Y-----\nAAAA\n", encode("X", &[1]));
        assert_eq!(
            decode(&broken, "X").unwrap_err(),
            PemError::Unterminated("Y".into())
        );
        assert!(matches!(
            decode_first(&vec![b'a'; MAX_PEM_BYTES + 1]).unwrap_err(),
            PemError::TooLarge(_)
        ));
    }
}
