//! The Sigstore `SigningConfig` (v0.2): which Fulcio, Rekor and TSA a signer uses. Pure.
//!
//! Selection follows the spec's rules for the services kibaship can talk to: the first service whose validity
//! window contains `now` and whose API version is supported (Fulcio API 1 = its `/api/v2` endpoints; Rekor API 2
//! = rekor-tiles; TSA API 1). A config that offers only Rekor v1 logs is refused: kibaship writes Rekor v2
//! entries only.
use serde::Deserialize;

/// Media type of the v0.2 signing config.
pub const SIGNING_CONFIG_V02: &str = "application/vnd.dev.sigstore.signingconfig.v0.2+json";

/// Why a signing config cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningConfigError {
    /// Not JSON of the expected shape.
    #[error("signing config is not a Sigstore signing config: {0}")]
    Parse(String),
    /// Unknown media type.
    #[error("signing config media type {0:?} is not {SIGNING_CONFIG_V02:?}")]
    MediaType(String),
    /// No usable service of a kind.
    #[error("signing config: {0}")]
    NoService(String),
}

/// The services selected for one signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningServices {
    /// Fulcio base URL.
    pub fulcio_url: String,
    /// Rekor v2 base URL.
    pub rekor_url: String,
    /// TSA endpoint (`.../api/v1/timestamp`); needed with Rekor v2, which gives no signed time.
    pub tsa_url: Option<String>,
    /// The OIDC provider named in the config (informational).
    pub oidc_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    media_type: Option<String>,
    #[serde(default)]
    ca_urls: Vec<RawService>,
    #[serde(default)]
    oidc_urls: Vec<RawService>,
    #[serde(default)]
    rekor_tlog_urls: Vec<RawService>,
    #[serde(default)]
    tsa_urls: Vec<RawService>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawService {
    url: String,
    major_api_version: u32,
    valid_for: Option<RawValidity>,
}

#[derive(Deserialize)]
struct RawValidity {
    start: Option<String>,
    end: Option<String>,
}

fn parse_time(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

fn active(service: &RawService, now: i64) -> bool {
    let Some(v) = &service.valid_for else {
        return false;
    };
    let start_ok = v
        .start
        .as_deref()
        .and_then(parse_time)
        .is_some_and(|s| s <= now);
    let end_ok = v
        .end
        .as_deref()
        .is_none_or(|e| parse_time(e).is_some_and(|e| now < e));
    start_ok && end_ok
}

fn select(list: &[RawService], version: u32, now: i64) -> Option<&RawService> {
    list.iter()
        .find(|s| s.major_api_version == version && active(s, now))
}

impl SigningServices {
    /// Selects the services from a signing config JSON, at time `now` (Unix seconds).
    pub fn from_signing_config(json: &[u8], now: i64) -> Result<Self, SigningConfigError> {
        let raw: RawConfig =
            serde_json::from_slice(json).map_err(|e| SigningConfigError::Parse(e.to_string()))?;
        let media_type = raw.media_type.unwrap_or_default();
        if media_type != SIGNING_CONFIG_V02 {
            return Err(SigningConfigError::MediaType(media_type));
        }
        let fulcio = select(&raw.ca_urls, 1, now).ok_or_else(|| {
            SigningConfigError::NoService(
                "no Fulcio (caUrls) with API version 1 is valid now".into(),
            )
        })?;
        let rekor = select(&raw.rekor_tlog_urls, 2, now).ok_or_else(|| {
            let v1 = raw
                .rekor_tlog_urls
                .iter()
                .any(|s| s.major_api_version == 1 && active(s, now));
            SigningConfigError::NoService(if v1 {
                "it offers only Rekor v1 logs; kibaverify writes Rekor v2 entries only (give --rekor-url of a Rekor v2 log)".into()
            } else {
                "no Rekor log (rekorTlogUrls) with API version 2 is valid now".into()
            })
        })?;
        Ok(SigningServices {
            fulcio_url: fulcio.url.trim_end_matches('/').to_string(),
            rekor_url: rekor.url.trim_end_matches('/').to_string(),
            tsa_url: select(&raw.tsa_urls, 1, now).map(|s| s.url.clone()),
            oidc_url: select(&raw.oidc_urls, 1, now).map(|s| s.url.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn selects_active_services_of_supported_versions() {
        let json = serde_json::json!({
            "mediaType": SIGNING_CONFIG_V02,
            "caUrls": [{"url": "http://f/", "majorApiVersion": 1, "validFor": {"start": "2020-01-01T00:00:00Z"}}],
            "rekorTlogUrls": [
                {"url": "http://old", "majorApiVersion": 2, "validFor": {"start": "2020-01-01T00:00:00Z", "end": "2021-01-01T00:00:00Z"}},
                {"url": "http://v1", "majorApiVersion": 1, "validFor": {"start": "2020-01-01T00:00:00Z"}},
                {"url": "http://r", "majorApiVersion": 2, "validFor": {"start": "2020-01-01T00:00:00Z"}}
            ],
            "tsaUrls": [{"url": "http://t/api/v1/timestamp", "majorApiVersion": 1, "validFor": {"start": "2020-01-01T00:00:00Z"}}]
        });
        let s = SigningServices::from_signing_config(json.to_string().as_bytes(), NOW).unwrap();
        assert_eq!(s.fulcio_url, "http://f");
        assert_eq!(s.rekor_url, "http://r");
        assert_eq!(s.tsa_url.as_deref(), Some("http://t/api/v1/timestamp"));
    }

    #[test]
    fn production_config_is_refused_for_its_rekor_v1_log() {
        // The services of Sigstore's production signing config v0.2 (only a Rekor v1 log).
        let json = serde_json::json!({
            "mediaType": SIGNING_CONFIG_V02,
            "caUrls": [{"url": "https://fulcio.sigstore.dev", "majorApiVersion": 1, "validFor": {"start": "2022-04-13T20:06:15.000Z"}}],
            "rekorTlogUrls": [{"url": "https://rekor.sigstore.dev", "majorApiVersion": 1, "validFor": {"start": "2021-01-12T11:53:27.000Z"}}],
            "tsaUrls": [{"url": "https://timestamp.sigstore.dev/api/v1/timestamp", "majorApiVersion": 1, "validFor": {"start": "2025-07-04T00:00:00Z"}}]
        });
        let e = SigningServices::from_signing_config(json.to_string().as_bytes(), NOW).unwrap_err();
        assert!(e.to_string().contains("only Rekor v1"), "{e}");
    }

    #[test]
    fn malformed_configs_say_what_is_wrong() {
        assert!(matches!(
            SigningServices::from_signing_config(b"[]", NOW),
            Err(SigningConfigError::Parse(_))
        ));
        assert!(matches!(
            SigningServices::from_signing_config(br#"{"mediaType":"x"}"#, NOW),
            Err(SigningConfigError::MediaType(_))
        ));
        let e = SigningServices::from_signing_config(
            format!(r#"{{"mediaType":"{SIGNING_CONFIG_V02}"}}"#).as_bytes(),
            NOW,
        )
        .unwrap_err();
        assert!(e.to_string().contains("Fulcio"), "{e}");
    }
}
