//! Helpers the step tests of scan, attest, tag and notify share: a registry client for the harness's plain-HTTP
//! registries, a runtime to block on, the result files a run wrote, and a Task step's argv as Tekton would run it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use kibaship_oci::{ClientConfig, RegistryClient};
use serde_json::Value;

/// A client for a plain-HTTP test registry, without the user's Docker credentials.
pub fn client(host: &str) -> RegistryClient {
    RegistryClient::new(ClientConfig {
        insecure_registries: vec![host.to_string()],
        use_docker_config: false,
        ..ClientConfig::default()
    })
    .unwrap()
}

/// Runs `future` on a current-thread runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Every file of `dir` (a run's results) by name, read as text; empty when `dir` does not exist.
pub fn read_results(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect()
}

/// The argv (after the command) of step `step_name` of `tasks/<task_file>` as the pod would run it, with the pod's
/// filesystem under `root`: `$(params.x)` from `params` (else the param's default; a value under one of the step's
/// volume mounts is rebased under `root` like the Task's own paths), `$(params.x[*])` expanded to the items,
/// `$(results.x.path)` as `root/results/x`, and every argument under a volume mount rebased under `root`. Also
/// returns the step itself, for checks of its command and settings.
pub fn task_argv(
    task_file: &str,
    step_name: &str,
    params: &BTreeMap<&str, Vec<String>>,
    root: &Path,
) -> (Vec<String>, Value) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tasks")
            .join(task_file),
    )
    .unwrap();
    let task: Value = serde_saphyr::from_str(&text).unwrap();
    let step = task["spec"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == step_name)
        .unwrap_or_else(|| panic!("{task_file} has no step {step_name}"))
        .clone();
    let mounts: Vec<String> = step["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["mountPath"].as_str().unwrap().to_string())
        .collect();
    let declared: BTreeMap<String, Value> = task["spec"]["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p.clone()))
        .collect();
    for p in params.keys() {
        assert!(declared.contains_key(*p), "{task_file} has no param {p}");
    }
    let rebase = |value: String| -> String {
        if mounts.iter().any(|m| value.starts_with(&format!("{m}/"))) {
            root.join(value.trim_start_matches('/'))
                .display()
                .to_string()
        } else {
            value
        }
    };
    let value_of = |name: &str| -> Vec<String> {
        assert!(
            declared.contains_key(name),
            "{task_file} has no param {name}"
        );
        match params.get(name) {
            Some(v) => v.clone(),
            None => match &declared[name]["default"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().unwrap().to_string())
                    .collect(),
                other => panic!("param {name} has no value and the default {other:?}"),
            },
        }
    };
    std::fs::create_dir_all(root.join("results")).unwrap();
    let mut argv = Vec::new();
    for arg in step["args"].as_array().unwrap() {
        let arg = arg.as_str().unwrap();
        if let Some(name) = arg
            .strip_prefix("$(params.")
            .and_then(|r| r.strip_suffix("[*])"))
        {
            argv.extend(value_of(name));
        } else if let Some(name) = arg
            .strip_prefix("$(params.")
            .and_then(|r| r.strip_suffix(')'))
        {
            argv.push(rebase(value_of(name).join("")));
        } else if let Some(name) = arg
            .strip_prefix("$(results.")
            .and_then(|r| r.strip_suffix(".path)"))
        {
            argv.push(root.join("results").join(name).display().to_string());
        } else {
            assert!(!arg.contains("$("), "unsubstituted {arg}");
            argv.push(rebase(arg.to_string()));
        }
    }
    (argv, step)
}
