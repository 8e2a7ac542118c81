//! Railpack's outputs: the build plan (`plan.json`) and the build info (`info.json`). Pure parsing, no I/O.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::failure::{Classify, FailureKind};
use crate::secrets::SecretName;

/// Largest plan or info document accepted (real plans are a few KiB).
pub const MAX_PLAN_BYTES: usize = 8 * 1024 * 1024;

/// A plan or info document that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{what} is larger than {MAX_PLAN_BYTES} bytes")]
    TooLarge { what: &'static str },
    #[error("{what} is not valid JSON: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}: {problem}")]
    Shape { what: &'static str, problem: String },
    #[error("railpack reported failure in info.json (success is not true){logs}")]
    NotSuccessful { logs: String },
    #[error(
        "build secret {name} is not declared by the plan (plan secrets: [{declared}]); \
         run railpack-prepare with the same buildSecrets"
    )]
    SecretNotInPlan { name: String, declared: String },
    #[error(
        "the plan declares secret {name} but buildSecrets does not provide it (buildSecrets: [{given}]); \
         add it to buildSecrets and the build-secret bundle, or remove it from the app's railpack config"
    )]
    SecretNotProvided { name: String, given: String },
}

impl Classify for PlanError {
    fn kind(&self) -> FailureKind {
        match self {
            PlanError::SecretNotInPlan { .. } | PlanError::SecretNotProvided { .. } => {
                FailureKind::BadParameters
            }
            _ => FailureKind::Plan,
        }
    }
}

/// A parsed `plan.json`, with the digest of its exact bytes.
#[derive(Debug, Clone)]
pub struct RailpackPlan {
    digest: String,
    secrets: Vec<String>,
    step_names: Vec<String>,
}

impl RailpackPlan {
    /// Parses the bytes of a plan produced by `railpack prepare --plan-out`.
    pub fn parse(bytes: &[u8]) -> Result<RailpackPlan, PlanError> {
        const WHAT: &str = "plan.json";
        if bytes.len() > MAX_PLAN_BYTES {
            return Err(PlanError::TooLarge { what: WHAT });
        }
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|source| PlanError::Json { what: WHAT, source })?;
        let shape = |problem: &str| PlanError::Shape {
            what: WHAT,
            problem: problem.to_string(),
        };
        let obj = value
            .as_object()
            .ok_or_else(|| shape("the top level is not an object"))?;
        let steps = obj
            .get("steps")
            .and_then(Value::as_array)
            .ok_or_else(|| shape("`steps` is missing or not an array"))?;
        if steps.is_empty() {
            return Err(shape("`steps` is empty: there is nothing to build"));
        }
        let mut step_names = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let name = step
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| shape(&format!("steps[{i}] has no string `name`")))?;
            step_names.push(name.to_string());
        }
        if !obj.get("deploy").is_some_and(Value::is_object) {
            return Err(shape("`deploy` is missing or not an object"));
        }
        let secrets = match obj.get("secrets") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| shape(&format!("secrets[{i}] is not a string")))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(shape("`secrets` is not an array")),
        };
        Ok(RailpackPlan {
            digest: format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
            secrets,
            step_names,
        })
    }

    /// `sha256:<hex>` of the plan file's exact bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The secret names the plan declares (its top-level `secrets`).
    pub fn declared_secrets(&self) -> &[String] {
        &self.secrets
    }

    /// The plan's step names, in order.
    pub fn step_names(&self) -> &[String] {
        &self.step_names
    }

    /// Checks that `build_secrets` and the plan's declared secrets are the same set.
    ///
    /// A name given but not declared means prepare ran with other buildSecrets than build (the plan's layers would
    /// not be invalidated by it); a name declared but not given would make every `RUN` that needs it fail late.
    pub fn check_build_secrets(&self, build_secrets: &[SecretName]) -> Result<(), PlanError> {
        let declared = self.secrets.join(", ");
        for name in build_secrets {
            if !self.secrets.iter().any(|s| s == name.as_str()) {
                return Err(PlanError::SecretNotInPlan {
                    name: name.to_string(),
                    declared,
                });
            }
        }
        for name in &self.secrets {
            if !build_secrets.iter().any(|s| s.as_str() == name) {
                let given = build_secrets
                    .iter()
                    .map(SecretName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(PlanError::SecretNotProvided {
                    name: name.clone(),
                    given,
                });
            }
        }
        Ok(())
    }
}

/// The parts of `info.json` (Railpack's `BuildResult`) that go into image annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RailpackInfo {
    /// `railpackVersion`: the version of the CLI that wrote the plan.
    pub railpack_version: Option<String>,
    /// `detectedProviders`.
    pub detected_providers: Vec<String>,
    /// `metadata`: string properties the providers recorded (e.g. `nodeRuntime`).
    pub metadata: BTreeMap<String, String>,
}

impl RailpackInfo {
    /// Parses the bytes of `railpack prepare --info-out`. A document with `success` not true is a plan error that
    /// carries Railpack's logged error messages.
    pub fn parse(bytes: &[u8]) -> Result<RailpackInfo, PlanError> {
        const WHAT: &str = "info.json";
        if bytes.len() > MAX_PLAN_BYTES {
            return Err(PlanError::TooLarge { what: WHAT });
        }
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|source| PlanError::Json { what: WHAT, source })?;
        let shape = |problem: &str| PlanError::Shape {
            what: WHAT,
            problem: problem.to_string(),
        };
        let obj = value
            .as_object()
            .ok_or_else(|| shape("the top level is not an object"))?;
        if obj.get("success").and_then(Value::as_bool) != Some(true) {
            let mut logs = String::new();
            for log in obj
                .get("logs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                // railpack writes `Level`/`Msg` (Go field names); accept the lower-case spelling too.
                let field = |k: &str, upper: &str| {
                    log.get(k)
                        .or_else(|| log.get(upper))
                        .and_then(Value::as_str)
                };
                if let Some(msg) = field("msg", "Msg") {
                    let level = field("level", "Level").unwrap_or("log");
                    logs.push_str(&format!("\n  {level}: {msg}"));
                }
            }
            return Err(PlanError::NotSuccessful { logs });
        }
        let railpack_version = obj
            .get("railpackVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        let detected_providers = obj
            .get("detectedProviders")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        let metadata = obj
            .get("metadata")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect();
        Ok(RailpackInfo {
            railpack_version,
            detected_providers,
            metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_broken_plans_with_a_reason() {
        for (doc, needle) in [
            (&b"[]"[..], "not an object"),
            (b"{\"deploy\":{}}", "`steps` is missing"),
            (b"{\"steps\":[],\"deploy\":{}}", "empty"),
            (
                b"{\"steps\":[{}],\"deploy\":{}}",
                "steps[0] has no string `name`",
            ),
            (b"{\"steps\":[{\"name\":\"a\"}]}", "`deploy`"),
            (
                b"{\"steps\":[{\"name\":\"a\"}],\"deploy\":{},\"secrets\":[1]}",
                "secrets[0]",
            ),
            (b"{\"steps\":", "not valid JSON"),
        ] {
            let err = RailpackPlan::parse(doc).expect_err("must fail");
            assert!(err.to_string().contains(needle), "{err} lacks {needle}");
            assert_eq!(err.kind(), FailureKind::Plan);
        }
    }

    #[test]
    fn info_failure_carries_railpack_logs() {
        let doc = br#"{"logs":[{"Level":"error","Msg":"No start command was found"}]}"#;
        let err = RailpackInfo::parse(doc).expect_err("must fail");
        assert!(
            err.to_string().contains("No start command was found"),
            "{err}"
        );
        let ok = br#"{"success":true,"railpackVersion":"0.7.2","detectedProviders":["node"],
                      "metadata":{"nodeRuntime":"node","x":1}}"#;
        let info = RailpackInfo::parse(ok).expect("parses");
        assert_eq!(info.railpack_version.as_deref(), Some("0.7.2"));
        assert_eq!(info.detected_providers, vec!["node"]);
        assert_eq!(info.metadata.len(), 1);
    }
}
