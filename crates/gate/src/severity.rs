//! Trivy severities and per-severity counts.
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A trivy severity, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// `UNKNOWN` (also what trivy uses for an empty or missing severity).
    Unknown,
    /// `LOW`.
    Low,
    /// `MEDIUM`.
    Medium,
    /// `HIGH`.
    High,
    /// `CRITICAL`.
    Critical,
}

impl Severity {
    /// All severities, most severe first (the order of tables and counts).
    pub const DESCENDING: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Unknown,
    ];

    /// Parses trivy's upper-case spelling (`CRITICAL`); an empty string is `UNKNOWN`, as in trivy.
    pub fn from_trivy(text: &str) -> Option<Severity> {
        Some(match text {
            "CRITICAL" => Severity::Critical,
            "HIGH" => Severity::High,
            "MEDIUM" => Severity::Medium,
            "LOW" => Severity::Low,
            "UNKNOWN" | "" => Severity::Unknown,
            _ => return None,
        })
    }

    /// Parses a policy spelling: any case (`high`, `HIGH`).
    pub fn from_policy(text: &str) -> Option<Severity> {
        Severity::from_trivy(&text.to_ascii_uppercase()).filter(|_| !text.is_empty())
    }

    /// Trivy's upper-case spelling.
    pub fn as_trivy(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Medium => "MEDIUM",
            Severity::Low => "LOW",
            Severity::Unknown => "UNKNOWN",
        }
    }

    /// The lower-case key used in the JSON verdict (`critical`).
    pub fn as_key(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Unknown => "unknown",
        }
    }

    fn index(self) -> usize {
        match self {
            Severity::Critical => 0,
            Severity::High => 1,
            Severity::Medium => 2,
            Severity::Low => 3,
            Severity::Unknown => 4,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_trivy())
    }
}

impl Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_key())
    }
}

/// Deserializes trivy's spelling; anything else is an error (never silently `UNKNOWN`).
pub(crate) fn deserialize_trivy_severity<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Severity, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Severity;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a trivy severity string (CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN)")
        }
        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Severity, E> {
            Severity::from_trivy(value).ok_or_else(|| {
                E::custom(format!(
                    "unknown severity `{value}`, expected CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN"
                ))
            })
        }
    }
    deserializer.deserialize_str(Visitor)
}

impl<'de> Deserialize<'de> for Severity {
    /// Policy spelling: any case.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Severity::from_policy(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown severity `{text}`, expected critical, high, medium, low or unknown"
            ))
        })
    }
}

/// Vulnerability counts keyed by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeverityCounts([u64; 5]);

impl SeverityCounts {
    /// Adds one finding of `severity`.
    pub fn add(&mut self, severity: Severity) {
        if let Some(slot) = self.0.get_mut(severity.index()) {
            *slot += 1;
        }
    }

    /// The count for `severity`.
    pub fn get(&self, severity: Severity) -> u64 {
        self.0.get(severity.index()).copied().unwrap_or(0)
    }

    /// The sum over all severities.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl Serialize for SeverityCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(5))?;
        for severity in Severity::DESCENDING {
            map.serialize_entry(severity.as_key(), &self.get(severity))?;
        }
        map.end()
    }
}
