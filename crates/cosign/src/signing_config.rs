//! The Sigstore `SigningConfig` (v0.2): which Fulcio, Rekor and TSA a signer uses. Pure.
//!
//! Selection follows the spec's rules for the services kibaship can talk to: the first service whose validity
//! window contains `now` and whose API version is supported (Fulcio API 1 = its `/api/v2` endpoints; Rekor API 2
//! = rekor-tiles, Rekor API 1 = Rekor v1 with Trillian; TSA API 1). Which Rekor versions are required depends on
//! the layout written ([`RekorLogs`]): the bundle layout logs in Rekor v2 (a config that offers only Rekor v1
//! logs is refused for it), the legacy `.sig` layout needs a Rekor v1 log, whose signed entry timestamp the
//! layout carries.
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
    /// Rekor v2 base URL (the bundle layout's log).
    pub rekor_url: Option<String>,
    /// Rekor v1 base URL (the legacy layout's log: its entries carry a signed entry timestamp).
    pub rekor_v1_url: Option<String>,
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

/// Which Rekor logs a signing needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RekorLogs {
    /// The bundle layout: Rekor v2, else (a config offering only Rekor v1 logs) Rekor v1. A Rekor v1 log is
    /// still picked up when the config has one.
    V2,
    /// Rekor v1 only (the legacy layout). A Rekor v2 log is still picked up when the config has one.
    V1,
    /// Both (both layouts).
    Both,
}

fn select(list: &[RawService], version: u32, now: i64) -> Option<&RawService> {
    list.iter()
        .find(|s| s.major_api_version == version && active(s, now))
}

impl crate::key_log::LogServices {
    /// Selects the logs and the TSA a key signature uses from a signing config JSON, at time `now`, requiring
    /// the Rekor logs in `needs` (no Fulcio is needed: the key signs).
    pub fn from_signing_config(
        json: &[u8],
        now: i64,
        needs: RekorLogs,
    ) -> Result<Self, SigningConfigError> {
        let raw = parse_config(json)?;
        let (rekor_v2, rekor_v1) = select_rekor(&raw, now, needs)?;
        Ok(crate::key_log::LogServices {
            rekor_url: rekor_v2,
            rekor_v1_url: rekor_v1,
            tsa_url: select(&raw.tsa_urls, 1, now).map(|s| s.url.clone()),
        })
    }
}

fn parse_config(json: &[u8]) -> Result<RawConfig, SigningConfigError> {
    let raw: RawConfig =
        serde_json::from_slice(json).map_err(|e| SigningConfigError::Parse(e.to_string()))?;
    let media_type = raw.media_type.clone().unwrap_or_default();
    if media_type != SIGNING_CONFIG_V02 {
        return Err(SigningConfigError::MediaType(media_type));
    }
    Ok(raw)
}

/// The Rekor v2 and v1 base URLs of the config, refusing it when a log `needs` names is missing.
fn select_rekor(
    raw: &RawConfig,
    now: i64,
    needs: RekorLogs,
) -> Result<(Option<String>, Option<String>), SigningConfigError> {
    let rekor_v2 = select(&raw.rekor_tlog_urls, 2, now);
    let rekor_v1 = select(&raw.rekor_tlog_urls, 1, now);
    // The bundle layout prefers Rekor v2 and falls back to a Rekor v1 log (as cosign v3 selects the highest API
    // version it supports); a config with neither is refused.
    if rekor_v2.is_none() && rekor_v1.is_none() && matches!(needs, RekorLogs::V2 | RekorLogs::Both)
    {
        return Err(SigningConfigError::NoService(
            "no Rekor log (rekorTlogUrls) with API version 2 or 1 is valid now".into(),
        ));
    }
    if rekor_v1.is_none() && matches!(needs, RekorLogs::V1 | RekorLogs::Both) {
        return Err(SigningConfigError::NoService(
            "no Rekor v1 log (rekorTlogUrls with API version 1) is valid now; the legacy layout needs one for its signed entry timestamp (name one)".into(),
        ));
    }
    let base = |s: &RawService| s.url.trim_end_matches('/').to_string();
    Ok((rekor_v2.map(base), rekor_v1.map(base)))
}

impl SigningServices {
    /// Selects the services from a signing config JSON, at time `now` (Unix seconds), for the bundle layout
    /// (a Rekor v2 log is required).
    pub fn from_signing_config(json: &[u8], now: i64) -> Result<Self, SigningConfigError> {
        Self::from_signing_config_for(json, now, RekorLogs::V2)
    }

    /// Selects the services from a signing config JSON, at time `now`, requiring the Rekor logs in `needs`.
    pub fn from_signing_config_for(
        json: &[u8],
        now: i64,
        needs: RekorLogs,
    ) -> Result<Self, SigningConfigError> {
        let raw = parse_config(json)?;
        let fulcio = select(&raw.ca_urls, 1, now).ok_or_else(|| {
            SigningConfigError::NoService(
                "no Fulcio (caUrls) with API version 1 is valid now".into(),
            )
        })?;
        let (rekor_url, rekor_v1_url) = select_rekor(&raw, now, needs)?;
        Ok(SigningServices {
            fulcio_url: fulcio.url.trim_end_matches('/').to_string(),
            rekor_url,
            rekor_v1_url,
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
        assert_eq!(s.rekor_url.as_deref(), Some("http://r"));
        assert_eq!(s.rekor_v1_url.as_deref(), Some("http://v1"));
        assert_eq!(s.tsa_url.as_deref(), Some("http://t/api/v1/timestamp"));
    }

    #[test]
    fn production_config_serves_both_layouts_with_its_rekor_v1_log() {
        // The services of Sigstore's production signing config v0.2 (only a Rekor v1 log).
        let json = serde_json::json!({
            "mediaType": SIGNING_CONFIG_V02,
            "caUrls": [{"url": "https://fulcio.sigstore.dev", "majorApiVersion": 1, "validFor": {"start": "2022-04-13T20:06:15.000Z"}}],
            "rekorTlogUrls": [{"url": "https://rekor.sigstore.dev", "majorApiVersion": 1, "validFor": {"start": "2021-01-12T11:53:27.000Z"}}],
            "tsaUrls": [{"url": "https://timestamp.sigstore.dev/api/v1/timestamp", "majorApiVersion": 1, "validFor": {"start": "2025-07-04T00:00:00Z"}}]
        });
        // The bundle layout falls back to the Rekor v1 log (no Rekor v2 log is offered) ...
        let s = SigningServices::from_signing_config(json.to_string().as_bytes(), NOW).unwrap();
        assert_eq!(s.rekor_url, None);
        assert_eq!(
            s.rekor_v1_url.as_deref(),
            Some("https://rekor.sigstore.dev")
        );
        // ... and the legacy layout is logged in Rekor v1.
        let s = SigningServices::from_signing_config_for(
            json.to_string().as_bytes(),
            NOW,
            RekorLogs::V1,
        )
        .unwrap();
        assert_eq!(
            s.rekor_v1_url.as_deref(),
            Some("https://rekor.sigstore.dev")
        );
        assert_eq!(s.rekor_url, None);
        let s = SigningServices::from_signing_config_for(
            json.to_string().as_bytes(),
            NOW,
            RekorLogs::Both,
        )
        .unwrap();
        assert_eq!(s.rekor_url, None);
        let no_log = serde_json::json!({
            "mediaType": SIGNING_CONFIG_V02,
            "caUrls": json["caUrls"],
        });
        let e =
            SigningServices::from_signing_config(no_log.to_string().as_bytes(), NOW).unwrap_err();
        assert!(e.to_string().contains("API version 2 or 1"), "{e}");
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
