//! The parts of the proto3 JSON mapping that serde does not give for free: enums written as names or numbers, and
//! `null` for a repeated field (the empty list).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `dev.sigstore.common.v1.HashAlgorithm`, by number.
pub(crate) const HASH_ALGORITHMS: &[&str] = &[
    "HASH_ALGORITHM_UNSPECIFIED",
    "SHA2_256",
    "SHA2_384",
    "SHA2_512",
    "SHA3_256",
    "SHA3_384",
];

/// `dev.sigstore.common.v1.PublicKeyDetails`, by number (`""` for numbers the specs do not use).
pub(crate) const PUBLIC_KEY_DETAILS: &[&str] = &[
    "PUBLIC_KEY_DETAILS_UNSPECIFIED",
    "PKCS1_RSA_PKCS1V5",
    "PKCS1_RSA_PSS",
    "PKIX_RSA_PKCS1V5",
    "PKIX_RSA_PSS",
    "PKIX_ECDSA_P256_SHA_256",
    "PKIX_ECDSA_P256_HMAC_SHA_256",
    "PKIX_ED25519",
    "PKIX_ED25519_PH",
    "PKIX_RSA_PKCS1V15_2048_SHA256",
    "PKIX_RSA_PKCS1V15_3072_SHA256",
    "PKIX_RSA_PKCS1V15_4096_SHA256",
    "PKIX_ECDSA_P384_SHA_384",
    "PKIX_ECDSA_P521_SHA_512",
    "LMS_SHA256",
    "LMOTS_SHA256",
    "PKIX_RSA_PSS_2048_SHA256",
    "PKIX_RSA_PSS_3072_SHA256",
    "PKIX_RSA_PSS_4096_SHA256",
    "PKIX_ECDSA_P384_SHA_256",
    "PKIX_ECDSA_P521_SHA_256",
    "ML_DSA_65",
    "ML_DSA_87",
    "ML_DSA_44",
];

/// An enum field as its name: the proto3 JSON mapping writes a name and accepts the number too. Absent, `null`
/// and the zero value (`*_UNSPECIFIED`, `0`) are all `""`, the default; an unknown number is an error.
pub(crate) fn enum_name(value: Option<&Value>, names: &[&str]) -> Result<String, String> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) if names.first() == Some(&s.as_str()) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(0) => Ok(String::new()),
            Some(i) if names.get(i).is_some_and(|s| !s.is_empty()) => Ok(names[i].to_string()),
            _ => Err(format!("unknown enum value {n}")),
        },
        Some(other) => Err(format!("expected an enum name or number, found {other}")),
    }
}

/// A repeated field: `null` is the empty list, as in the proto3 JSON mapping.
pub(crate) fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_by_name_or_number() {
        let v = |j: &str| serde_json::from_str::<Value>(j).unwrap();
        assert_eq!(enum_name(None, HASH_ALGORITHMS), Ok(String::new()));
        assert_eq!(
            enum_name(Some(&v("1")), HASH_ALGORITHMS),
            Ok("SHA2_256".into())
        );
        assert_eq!(
            enum_name(Some(&v("\"SHA2_256\"")), HASH_ALGORITHMS),
            Ok("SHA2_256".into())
        );
        assert_eq!(
            enum_name(Some(&v("\"HASH_ALGORITHM_UNSPECIFIED\"")), HASH_ALGORITHMS),
            Ok(String::new())
        );
        assert_eq!(enum_name(Some(&v("0")), HASH_ALGORITHMS), Ok(String::new()));
        assert!(enum_name(Some(&v("99")), HASH_ALGORITHMS).is_err());
        assert!(enum_name(Some(&v("-1")), HASH_ALGORITHMS).is_err());
        assert!(enum_name(Some(&v("[]")), HASH_ALGORITHMS).is_err());
        assert_eq!(
            enum_name(Some(&v("5")), PUBLIC_KEY_DETAILS),
            Ok("PKIX_ECDSA_P256_SHA_256".into())
        );
        assert_eq!(
            enum_name(Some(&v("23")), PUBLIC_KEY_DETAILS),
            Ok("ML_DSA_44".into())
        );
    }
}
