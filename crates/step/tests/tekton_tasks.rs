//! Static checks of tasks/*.yaml beyond what tekton-lint does (`make test` also runs tekton-lint and yamllint):
//! every `$(params.x)`, `$(results.x.path)` and `$(workspaces.x.path)` a Task uses is declared, every flag a step
//! passes to kibaship-step exists, the parameters/results/workspaces the design lists are all there, each container
//! has resources and a restricted security context, and the Pipeline's wiring matches the Tasks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;
use serde_json::Value;

fn tasks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tasks")
}

fn load_all() -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(tasks_dir())
        .expect("tasks/")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "tasks/ must hold the three Tasks and the Pipeline"
    );
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        let documents: Vec<Value> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for v in documents {
            if !v.is_null() {
                docs.push((
                    f.file_name().expect("name").to_string_lossy().into_owned(),
                    v,
                ));
            }
        }
    }
    docs
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn names(v: &Value, path: &[&str]) -> BTreeMap<String, Value> {
    s(v, path)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|item| {
            (
                item["name"].as_str().expect("name").to_string(),
                item.clone(),
            )
        })
        .collect()
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(x) => out.push(x.clone()),
        Value::Array(seq) => seq.iter().for_each(|i| strings(i, out)),
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out)
        }),
        _ => {}
    }
}

/// Problems with one Task's variable references. Empty = fine.
fn check_task_references(task: &Value) -> Vec<String> {
    let name = task["metadata"]["name"].as_str().unwrap_or("?").to_string();
    let params = names(task, &["spec", "params"]);
    let results = names(task, &["spec", "results"]);
    let workspaces = names(task, &["spec", "workspaces"]);
    let var = Regex::new(r"\$\(([^)]*)\)").expect("regex");
    let param_re =
        Regex::new(r#"^params(?:\.([A-Za-z0-9_-]+)|\[["']([^"']+)["']\])(\[\*\]|\[[0-9]+\])?$"#)
            .expect("regex");
    let result_re = Regex::new(r"^results\.([A-Za-z0-9_-]+)\.path$").expect("regex");
    let ws_re =
        Regex::new(r"^workspaces\.([A-Za-z0-9_-]+)\.(path|bound|claim|volume)$").expect("regex");
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    let mut all = Vec::new();
    strings(&task["spec"], &mut all);
    for text in &all {
        for cap in var.captures_iter(text) {
            let inner = &cap[1];
            if let Some(c) = param_re.captures(inner) {
                let p = c.get(1).or(c.get(2)).expect("name").as_str();
                used.insert(p.to_string());
                match params.get(p) {
                    None => problems.push(format!("{name}: $({inner}) uses undeclared param {p}")),
                    Some(decl) => {
                        let is_array = decl["type"].as_str() == Some("array");
                        let star = c.get(3).is_some_and(|m| m.as_str() == "[*]");
                        if is_array && !star {
                            problems.push(format!(
                                "{name}: array param {p} used as a string in {text:?}"
                            ));
                        }
                        if star && text != &format!("$({inner})") {
                            problems.push(format!(
                                "{name}: {inner} must be a whole list element, not in {text:?}"
                            ));
                        }
                        if !is_array && c.get(3).is_some() {
                            problems.push(format!("{name}: string param {p} indexed in {text:?}"));
                        }
                    }
                }
            } else if let Some(c) = result_re.captures(inner) {
                if !results.contains_key(&c[1]) {
                    problems.push(format!(
                        "{name}: $({inner}) uses undeclared result {}",
                        &c[1]
                    ));
                }
            } else if let Some(c) = ws_re.captures(inner) {
                if !workspaces.contains_key(&c[1]) {
                    problems.push(format!(
                        "{name}: $({inner}) uses undeclared workspace {}",
                        &c[1]
                    ));
                }
            } else if !inner.starts_with("context.") {
                problems.push(format!("{name}: unknown variable $({inner})"));
            }
        }
    }
    for p in params.keys() {
        if !used.contains(p) {
            problems.push(format!("{name}: param {p} is declared but never used"));
        }
    }
    problems
}

fn task<'a>(docs: &'a [(String, Value)], name: &str) -> &'a Value {
    &docs
        .iter()
        .find(|(_, v)| v["kind"] == "Task" && v["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("Task {name} missing from tasks/"))
        .1
}

#[test]
fn every_reference_in_every_task_is_declared() {
    let docs = load_all();
    let mut problems = Vec::new();
    for (file, doc) in &docs {
        assert_eq!(doc["apiVersion"], "tekton.dev/v1", "{file}: apiVersion");
        if doc["kind"] == "Task" {
            problems.extend(check_task_references(doc));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_reference_check_catches_mistakes() {
    let docs = load_all();
    // As JSON (which is YAML too): mutated as text, read back exactly.
    let good = serde_json::to_string_pretty(task(&docs, "railpack-build")).expect("json");
    for (from, to, needle) in [
        (
            "$(params.cacheKey)",
            "$(params.cacheKy)",
            "undeclared param cacheKy",
        ),
        (
            "$(results.digest.path)",
            "$(results.digests.path)",
            "undeclared result digests",
        ),
        (
            "$(workspaces.output.path)/repo",
            "$(workspaces.out.path)/repo",
            "undeclared workspace out",
        ),
        (
            "$(params.buildSecrets[*])",
            "$(params.buildSecrets)",
            "used as a string",
        ),
        (
            "$(params.platforms)",
            "$(param.platforms)",
            "unknown variable",
        ),
    ] {
        assert!(good.contains(from), "{from} not in the build task");
        let bad: Value = serde_json::from_str(&good.replacen(from, to, 1)).expect("json");
        let problems = check_task_references(&bad).join("\n");
        assert!(
            problems.contains(needle),
            "mutation {from} -> {to} not caught: {problems}"
        );
    }
}

fn flags_of(subcommand: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .args([subcommand, "--help"])
        .output()
        .expect("help");
    let flag = Regex::new(r"--[a-z][a-z0-9-]*").expect("regex");
    flag.find_iter(&String::from_utf8_lossy(&out.stdout))
        .map(|m| m.as_str().to_string())
        .collect()
}

fn containers(t: &Value, key: &str) -> Vec<Value> {
    s(t, &["spec", key])
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn steps_call_the_driver_with_flags_it_has() {
    let docs = load_all();
    // Steps that run in another tool's image (railpack, BuildKit) get the driver from a first install step; the
    // sign step runs in the driver's own image.
    for (task_name, sub, driver) in [
        ("railpack-prepare", "prepare", "/kibaship/bin/kibaship-step"),
        ("railpack-build", "build", "/kibaship/bin/kibaship-step"),
        ("kibaship-sign", "sign", "/usr/local/bin/kibaship-step"),
        ("kibaship-notify", "notify", "/usr/local/bin/kibaship-step"),
        ("kibaship-scan", "scan", "/kibaship/bin/kibaship-step"),
        ("kibaship-tag", "tag", "/usr/local/bin/kibaship-step"),
        (
            "kibaship-attest",
            "provenance",
            "/usr/local/bin/kibaship-step",
        ),
        ("kibaship-attest", "attest", "/usr/local/bin/kibaship-step"),
    ] {
        let t = task(&docs, task_name);
        let known = flags_of(sub);
        let steps = containers(t, "steps");
        let installs = steps[0]["name"] == "install-driver";
        assert_eq!(
            installs,
            driver == "/kibaship/bin/kibaship-step",
            "{task_name}: the driver is installed by a first step exactly when the step runs it from /kibaship/bin"
        );
        if installs {
            assert_eq!(steps[0]["args"][0], "install");
        }
        let step = steps
            .iter()
            .find(|st| st["args"][0] == sub)
            .unwrap_or_else(|| panic!("{task_name}: no {sub} step"));
        assert_eq!(step["command"][0], driver);
        for arg in step["args"].as_array().expect("args") {
            let a = arg.as_str().expect("string arg");
            if a.starts_with("--") {
                // `--flag=$(params.x)` passes a value to a flag that may also stand alone.
                let flag = a.split('=').next().unwrap_or(a);
                assert!(
                    known.contains(flag),
                    "{task_name}: kibaship-step {sub} has no flag {flag}"
                );
            }
        }
    }
}

#[test]
fn tasks_have_what_the_design_lists() {
    let docs = load_all();
    let prepare = task(&docs, "railpack-prepare");
    let build = task(&docs, "railpack-build");
    let has = |t: &Value, what: &str, want: &[&str]| {
        let got = names(t, &["spec", what]);
        for w in want {
            assert!(
                got.contains_key(*w),
                "{} lacks {what} {w}",
                t["metadata"]["name"].as_str().unwrap_or("?")
            );
        }
        got
    };
    let pp = has(
        prepare,
        "params",
        &["contextPath", "railpackVersion", "buildSecrets"],
    );
    assert_eq!(pp["buildSecrets"]["type"], "array");
    has(prepare, "results", &["planPath", "infoPath"]);
    has(prepare, "workspaces", &["output"]);
    let bp = has(
        build,
        "params",
        &[
            "contextPath",
            "railpackVersion",
            "buildSecrets",
            "imageRegistry",
            "imageRepository",
            "imageTag",
            "platforms",
            "cacheKey",
            "additionalBuildArgs",
        ],
    );
    assert_eq!(bp["buildSecrets"]["type"], "array");
    assert_eq!(bp["additionalBuildArgs"]["type"], "array");
    has(
        build,
        "results",
        &["image", "digest", "sbomRef", "buildDuration"],
    );
    let ws = has(build, "workspaces", &["output", "build-cache"]);
    assert_eq!(ws["build-cache"]["optional"], Value::Bool(true));

    // rootless buildkitd sidecar on tcp 1234, the client pointed at it
    let sidecars = containers(build, "sidecars");
    assert_eq!(sidecars.len(), 1);
    let bk = &sidecars[0];
    assert!(
        bk["image"]
            .as_str()
            .is_some_and(|i| i.contains("buildkit") || i.contains("$(params.buildkitImage)"))
    );
    assert!(
        bp["buildkitImage"]["default"]
            .as_str()
            .is_some_and(|d| d.starts_with("moby/buildkit:") && d.ends_with("-rootless"))
    );
    assert!(bk["args"].as_array().expect("args").iter().any(|a| {
        a.as_str()
            .is_some_and(|a| a.starts_with("tcp://") && a.ends_with(":1234"))
    }));
    assert_eq!(bk["securityContext"]["runAsNonRoot"], Value::Bool(true));
    let env = names(build, &["spec", "stepTemplate", "env"]);
    assert!(
        env["BUILDKIT_HOST"]["value"]
            .as_str()
            .is_some_and(|v| v.starts_with("tcp://") && v.ends_with(":1234"))
    );
    // DOCKER_CONFIG from a secret, read-only; build secrets at /secrets, read-only
    let volumes = names(build, &["spec", "volumes"]);
    assert!(volumes["docker-config"]["secret"]["secretName"].is_string());
    let docker_dir = env["DOCKER_CONFIG"]["value"]
        .as_str()
        .expect("DOCKER_CONFIG");
    let build_step = containers(build, "steps")
        .into_iter()
        .find(|st| st["name"] == "build")
        .expect("build step");
    let mounts = names(&build_step, &["volumeMounts"]);
    assert_eq!(
        mounts["docker-config"]["mountPath"].as_str(),
        Some(docker_dir)
    );
    assert_eq!(mounts["docker-config"]["readOnly"], Value::Bool(true));
    assert_eq!(mounts["build-secrets"]["mountPath"], "/secrets");
    assert_eq!(mounts["build-secrets"]["readOnly"], Value::Bool(true));
}

#[test]
fn containers_are_restricted_and_bounded() {
    let docs = load_all();
    for (_, t) in docs.iter().filter(|(_, v)| v["kind"] == "Task") {
        let name = t["metadata"]["name"].as_str().unwrap_or("?");
        let volumes = names(t, &["spec", "volumes"]);
        let template = s(t, &["spec", "stepTemplate", "securityContext"])
            .cloned()
            .unwrap_or(Value::Null);
        for step in containers(t, "steps") {
            let sn = step["name"].as_str().unwrap_or("?");
            let sc = |k: &str| {
                step["securityContext"]
                    .get(k)
                    .or_else(|| template.get(k))
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            assert_eq!(
                sc("runAsNonRoot"),
                Value::Bool(true),
                "{name}/{sn}: runAsNonRoot"
            );
            assert_eq!(
                sc("allowPrivilegeEscalation"),
                Value::Bool(false),
                "{name}/{sn}"
            );
            assert_eq!(
                sc("readOnlyRootFilesystem"),
                Value::Bool(true),
                "{name}/{sn}"
            );
            assert_eq!(
                sc("seccompProfile")["type"],
                "RuntimeDefault",
                "{name}/{sn}"
            );
            assert!(
                sc("capabilities")["drop"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|c| c == "ALL")),
                "{name}/{sn}"
            );
            assert!(step["timeout"].is_string(), "{name}/{sn}: step timeout");
            assert!(
                step["script"].is_null(),
                "{name}/{sn}: logic belongs in kibaship-step, not in a script"
            );
        }
        for c in containers(t, "steps")
            .into_iter()
            .chain(containers(t, "sidecars"))
        {
            let cn = c["name"].as_str().unwrap_or("?");
            for k in ["requests", "limits"] {
                for r in ["cpu", "memory"] {
                    assert!(
                        !c["computeResources"][k][r].is_null(),
                        "{name}/{cn}: computeResources.{k}.{r}"
                    );
                }
            }
            for m in c["volumeMounts"].as_array().into_iter().flatten() {
                let vn = m["name"].as_str().expect("mount name");
                assert!(
                    volumes.contains_key(vn),
                    "{name}/{cn}: mounts undeclared volume {vn}"
                );
            }
        }
    }
}

#[test]
fn the_pipeline_wires_clone_prepare_build() {
    let docs = load_all();
    let (_, pipeline) = docs
        .iter()
        .find(|(_, v)| v["kind"] == "Pipeline")
        .expect("a Pipeline in tasks/");
    let pparams = names(pipeline, &["spec", "params"]);
    let pws = names(pipeline, &["spec", "workspaces"]);
    let dag = names(pipeline, &["spec", "tasks"]);
    let finally = names(pipeline, &["spec", "finally"]);
    assert_eq!(
        dag.keys().cloned().collect::<Vec<_>>(),
        ["attest", "build", "clone", "prepare", "scan", "sign", "tag"]
    );
    assert_eq!(
        finally.keys().cloned().collect::<Vec<_>>(),
        ["notify", "notify-failure", "notify-unsigned"]
    );
    // clone -> prepare -> build -> scan -> sign -> attest -> tag.
    for (task, after) in [
        ("prepare", "clone"),
        ("build", "prepare"),
        ("scan", "build"),
        ("sign", "scan"),
        ("attest", "sign"),
        ("tag", "attest"),
    ] {
        assert_eq!(dag[task]["runAfter"][0], after, "{task} runs after {after}");
    }
    // Tekton skips a finally task whose result references are missing: the notify of a failed run references no
    // result, the one of an unsigned run (sign and attest skipped) none of theirs; each runs for its own status.
    let mut finally_refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let var = Regex::new(r"\$\(([^)]*)\)").expect("regex");
    for (name, ft) in &finally {
        let mut texts = Vec::new();
        strings(&ft["params"], &mut texts);
        finally_refs.insert(
            name.clone(),
            texts
                .iter()
                .flat_map(|t| var.captures_iter(t).map(|c| c[1].to_string()))
                .collect(),
        );
        assert_eq!(ft["when"][0]["input"], "$(tasks.status)", "{name}");
        assert_eq!(ft["taskRef"]["name"], "kibaship-notify", "{name}");
    }
    assert!(
        !finally_refs["notify-failure"]
            .iter()
            .any(|r| r.contains(".results.")),
        "notify-failure must not reference results: {:?}",
        finally_refs["notify-failure"]
    );
    assert!(
        !finally_refs["notify-unsigned"]
            .iter()
            .any(|r| r.starts_with("tasks.sign.results") || r.starts_with("tasks.attest.results")),
        "notify-unsigned must not reference sign or attest results"
    );
    let statuses: Vec<&Value> = [
        &finally["notify"]["when"][0]["values"],
        &finally["notify-unsigned"]["when"][0]["values"],
        &finally["notify-failure"]["when"][0]["values"],
    ]
    .into_iter()
    .collect();
    assert_eq!(
        statuses,
        [
            &serde_json::json!(["Succeeded"]),
            &serde_json::json!(["Completed"]),
            &serde_json::json!(["Failed"])
        ]
    );
    let ptasks: BTreeMap<String, Value> = dag.clone().into_iter().chain(finally.clone()).collect();
    let var = Regex::new(r"\$\(([^)]*)\)").expect("regex");
    let mut all = Vec::new();
    strings(&pipeline["spec"], &mut all);
    for text in &all {
        for cap in var.captures_iter(text) {
            let inner = cap[1].trim_end_matches("[*]");
            if let Some(p) = inner.strip_prefix("params.") {
                assert!(
                    pparams.contains_key(p),
                    "pipeline uses undeclared param {p}"
                );
            } else if inner == "tasks.status" {
                // The aggregate status, in finally tasks.
            } else if let Some(rest) = inner.strip_prefix("tasks.") {
                let parts: Vec<&str> = rest.split('.').collect();
                if parts.len() == 2 && parts[1] == "status" {
                    assert!(dag.contains_key(parts[0]), "{inner}: no such task");
                    continue;
                }
                assert!(
                    parts.len() == 3 && parts[1] == "results",
                    "bad task result reference {inner}"
                );
                let referenced = &dag[parts[0]];
                let tname = referenced["taskRef"]["name"]
                    .as_str()
                    .expect("result of one of our tasks");
                assert!(
                    names(task(&docs, tname), &["spec", "results"]).contains_key(parts[2]),
                    "{inner}: no such result"
                );
            } else {
                assert!(
                    inner.starts_with("context."),
                    "pipeline uses unknown variable {inner}"
                );
            }
        }
    }
    for p in pparams.keys() {
        assert!(
            all.iter().any(|t| t.contains(&format!("$(params.{p})"))
                || t.contains(&format!("$(params.{p}[*])"))),
            "pipeline param {p} is declared but never used"
        );
    }
    for tname in [
        "prepare",
        "build",
        "scan",
        "sign",
        "attest",
        "tag",
        "notify",
        "notify-unsigned",
        "notify-failure",
    ] {
        let pt = &ptasks[tname];
        let t = task(&docs, pt["taskRef"]["name"].as_str().expect("taskRef.name"));
        let declared = names(t, &["spec", "params"]);
        let given = names(pt, &["params"]);
        // A Task param with a Pipeline param's name gets that param (kibashipImage, authors, insecureRegistry...):
        // a Pipeline that does not pass one leaves the Task's default, which the PipelineRun cannot change.
        for (d, decl) in &declared {
            if !pparams.contains_key(d) {
                continue;
            }
            let want = if decl["type"] == "array" {
                serde_json::json!([format!("$(params.{d}[*])")])
            } else {
                Value::String(format!("$(params.{d})"))
            };
            assert_eq!(
                given.get(d).map(|g| &g["value"]),
                Some(&want),
                "{tname}: the Pipeline's param {d} is not passed to the Task's"
            );
        }
        for g in given.keys() {
            assert!(
                declared.contains_key(g),
                "{tname}: passes param {g} the Task does not declare"
            );
        }
        for (d, decl) in &declared {
            if decl.get("default").is_none() {
                assert!(
                    given.contains_key(d),
                    "{tname}: required param {d} not passed"
                );
            }
        }
        let tws = names(t, &["spec", "workspaces"]);
        for (w, binding) in names(pt, &["workspaces"]) {
            assert!(
                tws.contains_key(&w),
                "{tname}: binds workspace {w} the Task does not declare"
            );
            assert!(
                pws.contains_key(binding["workspace"].as_str().expect("workspace")),
                "{tname}: unknown pipeline workspace"
            );
        }
        for (w, decl) in &tws {
            if decl["optional"] != Value::Bool(true) {
                assert!(
                    names(pt, &["workspaces"]).contains_key(w),
                    "{tname}: required workspace {w} not bound"
                );
            }
        }
    }
    assert!(
        ptasks["build"]["params"]
            .as_array()
            .expect("params")
            .iter()
            .any(|p| p["name"] == "imageRepository"
                && p["value"] == "kibaship/$(params.projectSlug)/$(params.appSlug)"),
        "image name follows the design"
    );
    // Params passed under another name, and the tag task's setting: a build of no branch asks for no tag, which
    // must not fail the run.
    for (tname, param, value) in [
        ("scan", "offline", "$(params.scanOffline)"),
        ("tag", "branch", "$(params.gitBranch)"),
        ("tag", "policyPath", "$(params.tagPolicyPath)"),
        ("tag", "namespace", "$(params.tagNamespace)"),
        ("tag", "digest", "$(tasks.build.results.digest)"),
        ("tag", "allowEmpty", "true"),
    ] {
        assert_eq!(
            names(&ptasks[tname], &["params"])
                .get(param)
                .map(|p| &p["value"]),
            Some(&Value::String(value.into())),
            "{tname}: {param}"
        );
    }
}

#[test]
fn install_copies_a_runnable_driver() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("kibaship/bin/kibaship-step");
    let out = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .args(["install", "--dest"])
        .arg(&dest)
        .output()
        .expect("install");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dest)
            .expect("installed")
            .permissions()
            .mode()
            & 0o777,
        0o555
    );
    let version = Command::new(&dest)
        .arg("--version")
        .output()
        .expect("run the copy");
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("kibaship-step "));
}

/// Tekton expands an empty array param to no elements: `--build-secrets` is then directly followed by the next
/// flag (or ends the argv). The driver must read that as "no secrets", not as an error or a secret named
/// `--additional-build-args`.
#[test]
fn empty_array_params_parse_as_empty_lists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_kibaship-step"))
        .args(["build", "--source-dir"])
        .arg(dir.path())
        .args([
            "--plan",
            "/nonexistent/plan.json",
            "--image-registry",
            "r.example",
            "--image-repository",
            "a/b",
        ])
        .args([
            "--revision",
            "960ef4fb6190de6aa8b394bf2f0d552ee67675c3",
            "--railpack-version",
            "v0.15.0",
        ])
        .args([
            "--build-cache-dir",
            "",
            "--build-secrets",
            "--additional-build-args",
        ])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    // it gets past argument parsing and fails on the missing plan (a plan error), not on usage
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(err.contains("plan.json"), "{err}");
}
