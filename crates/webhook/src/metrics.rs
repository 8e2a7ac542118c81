//! Prometheus metrics of the webhook (`/metrics` on the plain-HTTP metrics listener).
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a decision: which endpoint, what was answered, and the reason code (`verified`, `not-selected`,
/// `exception` when allowed).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// `validate` or `mutate`.
    pub endpoint: &'static str,
    /// `allowed`, `warned` or `denied`.
    pub result: &'static str,
    /// The reason code.
    pub code: String,
}

/// Labels of a lookup in the cache of verification facts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `hit`, `miss` (a verification was started) or `coalesced` (joined one in flight).
    pub result: &'static str,
}

/// Labels of a reload attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `policy`, `trusted-root` or `tls`.
    pub file: &'static str,
    /// `ok` or `error`.
    pub result: &'static str,
}

/// Labels naming a watched file.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FileLabels {
    /// `policy`, `trusted-root` or `tls`.
    pub file: &'static str,
}

/// Every metric the webhook exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// AdmissionReviews answered.
    pub decisions: Family<DecisionLabels, Counter>,
    /// Seconds from reading an AdmissionReview to having its answer.
    pub decision_seconds: Histogram,
    /// Seconds one verification (registry reads and signature checks) took.
    pub verify_seconds: Histogram,
    /// Cache lookups by result.
    pub cache: Family<CacheLabels, Counter>,
    /// Verifications started: each reads the registry (manifest, signatures, attestations).
    pub verifications: Counter,
    /// Reloads of watched files by result.
    pub reloads: Family<ReloadLabels, Counter>,
    /// 1 while the newest content of a watched file failed to load (the previous one is in use).
    pub stale: Family<FileLabels, Gauge>,
    /// Entries in the cache of verification facts.
    pub cache_entries: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metrics at zero, registered under `kibaship_webhook_`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kibaship_webhook");
        let decisions = Family::<DecisionLabels, Counter>::default();
        // 0.1 ms .. ~13 s
        let decision_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        let verify_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        let cache = Family::<CacheLabels, Counter>::default();
        let verifications = Counter::default();
        let reloads = Family::<ReloadLabels, Counter>::default();
        let stale = Family::<FileLabels, Gauge>::default();
        let cache_entries = Gauge::default();
        registry.register(
            "decisions",
            "AdmissionReviews answered, by endpoint, result and reason code",
            decisions.clone(),
        );
        registry.register(
            "decision_seconds",
            "Time to answer one AdmissionReview",
            decision_seconds.clone(),
        );
        registry.register(
            "verify_seconds",
            "Time of one image verification (registry reads and signature checks)",
            verify_seconds.clone(),
        );
        registry.register(
            "cache_lookups",
            "Lookups in the cache of verification facts, by result",
            cache.clone(),
        );
        registry.register(
            "verifications",
            "Verifications started (each reads the registry)",
            verifications.clone(),
        );
        registry.register(
            "reloads",
            "Reloads of the policy, trusted root and TLS certificate, by result",
            reloads.clone(),
        );
        registry.register(
            "stale_config",
            "1 while the newest content of a watched file failed to load and the previous one is in use",
            stale.clone(),
        );
        registry.register(
            "cache_entries",
            "Entries in the cache of verification facts",
            cache_entries.clone(),
        );
        Metrics {
            registry,
            decisions,
            decision_seconds,
            verify_seconds,
            cache,
            verifications,
            reloads,
            stale,
            cache_entries,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::new();
        m.decisions
            .get_or_create(&DecisionLabels {
                endpoint: "validate",
                result: "denied",
                code: "wrong-key".into(),
            })
            .inc();
        m.cache
            .get_or_create(&CacheLabels { result: "hit" })
            .inc_by(3);
        let text = m.render();
        assert!(
            text.contains(
                r#"kibaship_webhook_decisions_total{endpoint="validate",result="denied",code="wrong-key"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"kibaship_webhook_cache_lookups_total{result="hit"} 3"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
