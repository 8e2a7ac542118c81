//! `make bench-builds` (issue 19 §5, load): N concurrent PipelineRuns of our Railpack Pipeline (key signing, no
//! notification) on the one-node cluster, each building the shell app at a distinct commit (so none is deduped)
//! into its own workspace, for each N of `KIBASHIP_BENCH_BUILDS` (default `4,8`: the 2-core machine's cases).
//! Printed per N: runs that succeeded, p50/p95/max of the runs' durations (creation to the first poll that sees
//! them finished, polled every 2 s), the batch's wall time, the tasks Tekton retried, and the steps that exited
//! with kibaship-step's registry failure code (75). A benchmark, not a test: ignored by `make test`, nothing is
//! asserted about time; it fails only if the cluster or the Pipeline cannot be set up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tekton_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kibaship_testsupport::cluster::TestCluster;
use serde_json::{Value, json};
use tekton_support::*;

/// Longest a batch may take before the benchmark gives up on its unfinished runs (they count as not succeeded).
const BATCH_BOUND: Duration = Duration::from_secs(45 * 60);
/// kibaship-step's exit code for a registry (or other retryable service) failure.
const REGISTRY_EXIT: i64 = 75;

fn sizes() -> Vec<usize> {
    let text = std::env::var("KIBASHIP_BENCH_BUILDS").unwrap_or_else(|_| "4,8".into());
    text.split(',')
        .map(|n| {
            n.trim()
                .parse()
                .unwrap_or_else(|_| panic!("KIBASHIP_BENCH_BUILDS: {n:?} is not a number"))
        })
        .filter(|&n| n > 0)
        .collect()
}

/// The nearest-rank percentile `p` (0..=100) of sorted `values`.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Steps of a TaskRun (and of its retried attempts) that exited with `code`.
fn steps_exited_with(task_run: &Value, code: i64) -> usize {
    let count = |status: &Value| {
        status["steps"].as_array().map_or(0, |steps| {
            steps
                .iter()
                .filter(|s| s["terminated"]["exitCode"].as_i64() == Some(code))
                .count()
        })
    };
    let status = &task_run["status"];
    count(status)
        + status["retriesStatus"]
            .as_array()
            .map_or(0, |r| r.iter().map(count).sum())
}

#[test]
#[ignore = "a benchmark: make bench-builds"]
fn bench_concurrent_pipeline_runs() {
    let sizes = sizes();
    let cluster = TestCluster::start().expect("cluster start");
    cluster.install_tekton().expect("install Tekton");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (daemon, git_url, commits) = serve_shell_app(w, sizes.iter().sum());
    let installed = install_pipeline(&cluster, w);
    let mut commits = commits.into_iter();
    let mut lines = Vec::new();
    for n in sizes {
        let mut created = BTreeMap::new();
        for i in 0..n {
            let name = format!("load-{n}-{i}");
            workspace_claim(&cluster, &name, &w.join("workspaces").join(&name));
            let commit = commits.next().expect("a commit per run");
            let run = json!({
                "apiVersion": "tekton.dev/v1",
                "kind": "PipelineRun",
                "metadata": { "name": name, "labels": { "kibaship.io/bench": n.to_string() } },
                "spec": {
                    "pipelineRef": { "name": "railpack-build-pipeline" },
                    "taskRunTemplate": { "podTemplate": { "securityContext": { "fsGroup": 1000 } } },
                    "params": [
                        { "name": "gitUrl", "value": git_url },
                        { "name": "gitCommit", "value": commit },
                        { "name": "projectSlug", "value": "load" },
                        { "name": "appSlug", "value": format!("shell-{i}") },
                        { "name": "imageRegistry", "value": installed.registry },
                        { "name": "cacheKey", "value": "tenant-load" },
                        { "name": "signingMode", "value": "key" },
                        { "name": "insecureRegistry", "value": "true" },
                    ],
                    "workspaces": [
                        { "name": "ws", "persistentVolumeClaim": { "claimName": name } },
                    ],
                },
            });
            cluster
                .kubectl_stdin_ok(&["create", "-f", "-"], &run.to_string())
                .unwrap();
            created.insert(name, Instant::now());
        }
        let batch_start = created.values().min().copied().unwrap();
        let mut done: BTreeMap<String, (String, Duration)> = BTreeMap::new();
        while done.len() < n && batch_start.elapsed() < BATCH_BOUND {
            std::thread::sleep(Duration::from_secs(2));
            let listing = cluster
                .kubectl_ok(&[
                    "get",
                    "pipelinerun",
                    "-l",
                    &format!("kibaship.io/bench={n}"),
                    "-o",
                    "jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Succeeded\")].status}{\"\\n\"}{end}",
                ])
                .unwrap_or_default();
            for line in listing.lines() {
                let Some((name, status)) = line.split_once(' ') else {
                    continue;
                };
                if (status == "True" || status == "False") && !done.contains_key(name) {
                    let took = created[name].elapsed();
                    done.insert(name.to_string(), (status.to_string(), took));
                }
            }
        }
        let wall = batch_start.elapsed();
        let task_runs: Value = serde_json::from_str(
            &cluster
                .kubectl_ok(&["get", "taskrun", "-o", "json"])
                .unwrap(),
        )
        .unwrap();
        let ours: Vec<&Value> = task_runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| {
                t["metadata"]["labels"]["tekton.dev/pipelineRun"]
                    .as_str()
                    .is_some_and(|r| r.starts_with(&format!("load-{n}-")))
            })
            .collect();
        let retried = ours
            .iter()
            .filter(|t| {
                t["status"]["retriesStatus"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
            })
            .count();
        let registry_errors: usize = ours
            .iter()
            .map(|t| steps_exited_with(t, REGISTRY_EXIT))
            .sum();
        let succeeded = done.values().filter(|(s, _)| s == "True").count();
        let mut durations: Vec<Duration> = done.values().map(|(_, d)| *d).collect();
        durations.sort();
        let failed: Vec<&String> = done
            .iter()
            .filter(|(_, (s, _))| s == "False")
            .map(|(name, _)| name)
            .collect();
        let line = format!(
            "bench-builds N={n:<2} succeeded {succeeded}/{n}  p50 {:>6.1} s  p95 {:>6.1} s  max {:>6.1} s  wall {:>6.1} s  retried tasks {retried}  registry errors {registry_errors}{}",
            percentile(&durations, 50).as_secs_f64(),
            percentile(&durations, 95).as_secs_f64(),
            durations.last().copied().unwrap_or_default().as_secs_f64(),
            wall.as_secs_f64(),
            if failed.is_empty() && done.len() == n {
                String::new()
            } else {
                format!("  failed {failed:?}, unfinished {}", n - done.len())
            }
        );
        eprintln!("{line}");
        lines.push(line);
        // The next batch starts on an idle node.
        let _ = cluster.kubectl(&[
            "delete",
            "pipelinerun",
            "-l",
            &format!("kibaship.io/bench={n}"),
            "--wait=true",
        ]);
    }
    drop(daemon);
    cluster.teardown().expect("teardown");
    eprintln!(
        "\nbench-builds: concurrent PipelineRuns of the shell app (clone, prepare, build, scan, sign, attest)"
    );
    for line in &lines {
        eprintln!("{line}");
    }
}
