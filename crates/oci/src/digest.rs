//! Content digests (`algorithm:hex`), validated as go-digest does, and computed with `sha2`.
use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// A digest algorithm registered in the OCI image spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `sha256`, 64 hex characters (the one every registry uses).
    Sha256,
    /// `sha384`, 96 hex characters.
    Sha384,
    /// `sha512`, 128 hex characters.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears before the colon.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }

    fn compute_hex(self, bytes: &[u8]) -> String {
        match self {
            Algorithm::Sha256 => hex::encode(Sha256::digest(bytes)),
            Algorithm::Sha384 => hex::encode(Sha384::digest(bytes)),
            Algorithm::Sha512 => hex::encode(Sha512::digest(bytes)),
        }
    }
}

/// Why a digest string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not `algorithm:hex` per the grammar (algorithm components, separators `+._-`, at least 32 hex chars).
    #[error("invalid digest {0:?}: expected algorithm:hex (e.g. sha256:<64 hex>)")]
    Format(String),
    /// Grammatically fine but not sha256, sha384 or sha512.
    #[error(
        "unsupported digest algorithm {algorithm:?} in {digest:?} (sha256, sha384, sha512 are supported)"
    )]
    UnsupportedAlgorithm {
        /// The algorithm given.
        algorithm: String,
        /// The whole digest string.
        digest: String,
    },
    /// Hex of the wrong length or with upper-case letters.
    #[error("invalid {algorithm} digest {digest:?}: expected {expected} lower-case hex characters")]
    InvalidHex {
        /// The algorithm name.
        algorithm: &'static str,
        /// The whole digest string.
        digest: String,
        /// How many hex characters the algorithm needs.
        expected: usize,
    },
}

/// A validated content digest such as `sha256:44136fa3…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses and validates `algorithm:hex` like go-digest's `Parse` + `Validate`.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let format = || DigestError::Format(s.to_string());
        let (alg, hex) = s.split_once(':').ok_or_else(format)?;
        if !algorithm_grammar_ok(alg)
            || hex.len() < 32
            || !hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(format());
        }
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha384" => Algorithm::Sha384,
            "sha512" => Algorithm::Sha512,
            other => {
                return Err(DigestError::UnsupportedAlgorithm {
                    algorithm: other.to_string(),
                    digest: s.to_string(),
                });
            }
        };
        if hex.len() != algorithm.hex_len() || hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(DigestError::InvalidHex {
                algorithm: algorithm.name(),
                digest: s.to_string(),
                expected: algorithm.hex_len(),
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: Algorithm::Sha256.compute_hex(bytes),
        }
    }

    /// The digest of `bytes` computed with this digest's algorithm.
    pub fn recompute(&self, bytes: &[u8]) -> Digest {
        Digest {
            algorithm: self.algorithm,
            hex: self.algorithm.compute_hex(bytes),
        }
    }

    /// Whether `bytes` hash to this digest.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        self.recompute(bytes) == *self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lower-case hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The tag of the referrers tag-schema fallback index: `<alg>-<hex>` with the algorithm truncated to 32
    /// characters, the hex to 64, and characters a tag may not hold replaced by `-` (distribution-spec).
    pub fn referrers_fallback_tag(&self) -> String {
        let alg: String = self.algorithm.name().chars().take(32).collect();
        let hex: String = self.hex.chars().take(64).collect();
        format!("{alg}-{hex}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }
}

fn algorithm_grammar_ok(alg: &str) -> bool {
    // component := [A-Za-z][A-Za-z0-9]* ; separator := [+._-]
    if alg.is_empty() {
        return false;
    }
    alg.split(['+', '.', '_', '-']).all(|component| {
        let mut bytes = component.bytes();
        matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
            && bytes.all(|b| b.is_ascii_alphanumeric())
    })
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_JSON: &str =
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    #[test]
    fn computes_the_empty_config_digest() {
        assert_eq!(Digest::sha256_of(b"{}").to_string(), EMPTY_JSON);
        assert!(Digest::parse(EMPTY_JSON).unwrap().matches(b"{}"));
        assert!(!Digest::parse(EMPTY_JSON).unwrap().matches(b"{ }"));
    }

    #[test]
    fn validates_like_go_digest() {
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(matches!(
            Digest::parse(&upper),
            Err(DigestError::InvalidHex { .. })
        ));
        let short = format!("sha256:{}", "a".repeat(63));
        assert!(matches!(
            Digest::parse(&short),
            Err(DigestError::InvalidHex { .. })
        ));
        let md5 = format!("md5:{}", "a".repeat(32));
        assert!(matches!(
            Digest::parse(&md5),
            Err(DigestError::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            Digest::parse("sha256"),
            Err(DigestError::Format(_))
        ));
        assert!(matches!(
            Digest::parse(&format!("1sha:{}", "a".repeat(64))),
            Err(DigestError::Format(_))
        ));
        assert!(matches!(
            Digest::parse(&format!("sha256:{}", "g".repeat(64))),
            Err(DigestError::Format(_))
        ));
        let d512 = Digest::parse(&format!("sha512:{}", "b".repeat(128))).unwrap();
        assert_eq!(d512.algorithm(), Algorithm::Sha512);
        assert!(Digest::parse(&format!("sha384:{}", "c".repeat(96))).is_ok());
    }

    #[test]
    fn fallback_tag_replaces_the_colon() {
        let d = Digest::parse(EMPTY_JSON).unwrap();
        assert_eq!(
            d.referrers_fallback_tag(),
            "sha256-44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let d512 = Digest::parse(&format!("sha512:{}", "b".repeat(128))).unwrap();
        assert_eq!(
            d512.referrers_fallback_tag(),
            format!("sha512-{}", "b".repeat(64))
        );
    }

    #[test]
    fn serde_round_trip_rejects_bad_digests() {
        let d: Digest = serde_json::from_str(&format!("\"{EMPTY_JSON}\"")).unwrap();
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            format!("\"{EMPTY_JSON}\"")
        );
        assert!(serde_json::from_str::<Digest>("\"sha256:abc\"").is_err());
    }
}
