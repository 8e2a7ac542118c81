//! `kibaverify audit` against real parts (issue 18): one registry with the OCI referrers API (ggcr) holding the
//! fixture images signed by kibaverify (bundle layout), by the real cosign (legacy and bundle layouts), signed
//! by a wrong key, and unsigned; the same workloads as manifests on disk, as an image list and as objects in the
//! real kube-apiserver + etcd give the same verdicts. An account that may only list Pods is told what it cannot
//! read; bad input (an unreachable API server, invalid YAML, an unknown kind, a malformed reference in a list, a
//! registry that stalls on one image) is each named, and the rest of the audit completes. The HTML report is
//! rendered by headless Chromium and checked on its DOM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use kibaship_testsupport::faultproxy::{Fault, FaultProxy};
use kibaship_testsupport::fixtures::push_fixture_images;
use kibaship_testsupport::kube::KubeApiServer;
use kibaship_testsupport::registry::{RegistryMode, TestRegistry};
use serde_json::Value;
use support::{Tools, assert_code, assert_not_leaked, registry_with_fixtures, run_logged};

const PASSWORD: &str = "audit-test-password";

fn public_key_block(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect()
}

/// The policy: prod enforces, staging warns, any other namespace is not selected; both keys accepted.
fn policy(dir: &Path) -> String {
    format!(
        "apiVersion: kibaship.io/v1alpha1
kind: AdmissionPolicy
policies:
  - name: prod-signed
    namespaces: {{names: [\"prod\"]}}
    images: [\"**\"]
    transparencyLog: optional
    authorities:
      - name: ours
        key: |
{ours}      - name: cosign
        key: |
{theirs}  - name: staging-warn
    mode: warn
    namespaces: {{names: [\"staging\"]}}
    images: [\"**\"]
    transparencyLog: optional
    authorities:
      - name: ours
        key: |
{ours}",
        ours = public_key_block(&dir.join("ours.pub")),
        theirs = public_key_block(&dir.join("cosign.pub")),
    )
}

fn container(image: &str) -> String {
    format!("[{{name: main, image: \"{image}\"}}]")
}

/// Namespaces and workloads in prod (enforce), staging (warn) and other (not selected).
fn manifests(
    app: &str,
    unsigned: &str,
    wrong: &str,
    cosign_legacy: &str,
    cosign_bundle: &str,
) -> String {
    format!(
        "apiVersion: v1
kind: Namespace
metadata: {{name: prod}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: staging}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: other}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: prod}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: {app_c}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: prod}}
spec:
  serviceName: db
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers: {unsigned_c}
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: nightly, namespace: prod}}
spec:
  schedule: \"0 3 * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: {wrong_c}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: migrate, namespace: prod}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: {legacy_c}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: prod}}
spec:
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      initContainers: [{{name: init, image: \"{app}\"}}]
      containers: {bundle_c}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: staging}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      containers: {unsigned_c}
---
apiVersion: v1
kind: Pod
metadata: {{name: tool, namespace: other}}
spec:
  containers: {legacy_c}
",
        app_c = container(app),
        unsigned_c = container(unsigned),
        wrong_c = container(wrong),
        legacy_c = container(cosign_legacy),
        bundle_c = container(cosign_bundle),
    )
}

/// The answers the webhook would give, by `namespace/Kind/name`.
fn expected_answers() -> BTreeMap<&'static str, (&'static str, Option<&'static str>)> {
    BTreeMap::from([
        ("prod/Deployment/web", ("admit", None)),
        ("prod/StatefulSet/db", ("deny", Some("unsigned"))),
        ("prod/CronJob/nightly", ("deny", Some("wrong-key"))),
        ("prod/Job/migrate", ("admit", None)),
        ("prod/Deployment/api", ("admit", None)),
        (
            "staging/DaemonSet/agent",
            ("admit-with-warning", Some("unsigned")),
        ),
        ("other/Pod/tool", ("not-selected", None)),
    ])
}

fn answers(report: &Value) -> BTreeMap<String, (String, Option<String>)> {
    report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                format!(
                    "{}/{}/{}",
                    w["namespace"].as_str().unwrap(),
                    w["kind"].as_str().unwrap(),
                    w["name"].as_str().unwrap()
                ),
                (
                    w["answer"].as_str().unwrap().to_owned(),
                    w["code"].as_str().map(str::to_owned),
                ),
            )
        })
        .collect()
}

/// reference -> (digest, status, code, signers) of the images the report lists.
fn images(report: &Value) -> BTreeMap<String, (Value, Value, Value, Value)> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["reference"].as_str().unwrap().to_owned(),
                (
                    i["digest"].clone(),
                    i["status"].clone(),
                    i["code"].clone(),
                    i["signers"].clone(),
                ),
            )
        })
        .collect()
}

fn audit_json(tools: &Tools<'_>, args: &[&str], code: i32, t: &mut String) -> Value {
    let mut all = vec!["audit", "--output", "json"];
    all.extend_from_slice(args);
    let r = run_logged(&mut tools.kibaverify(&all), t);
    assert_code(&r, code, &format!("kibaverify {}", all.join(" ")));
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

fn kubeconfig_for_token(api: &KubeApiServer, token: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": api.url(), "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(api.ca_pem())}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    })
    .to_string()
}

#[test]
fn audit_gives_the_webhooks_verdicts_for_manifests_lists_and_the_cluster() {
    let reg = registry_with_fixtures(RegistryMode::Referrers);
    let api = KubeApiServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tools = Tools::new(dir, &reg, Some(PASSWORD));
    let mut t = String::new();
    tools.generate_both_key_pairs(&mut t);
    let r = run_logged(
        &mut tools.kibaverify_without_registry(&[
            "generate-key-pair",
            "--output-key-prefix",
            "wrong",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "generate the wrong key");

    let app = tools.fixture("app");
    let unsigned = tools.fixture("config-only");
    let wrong = tools.fixture("multiarch");
    let cosign_legacy = tools.fixture("docker-app");
    let cosign_bundle = tools.fixture("docker-multiarch");
    for (image, key, layout) in [
        (&app, "ours.key", "bundle"),
        (&wrong, "wrong.key", "legacy"),
    ] {
        let r = run_logged(
            &mut tools.kibaverify(&["sign", image, "--key", key, "--layout", layout]),
            &mut t,
        );
        assert_code(&r, 0, &format!("kibaverify sign {image}"));
    }
    for (image, legacy) in [(&cosign_legacy, true), (&cosign_bundle, false)] {
        let by_digest = tools.image_by_digest(image, &mut t);
        let r = run_logged(
            &mut tools.cosign_sign_with_key("cosign.key", legacy, &by_digest),
            &mut t,
        );
        assert_code(&r, 0, &format!("cosign sign {image}"));
    }
    // A vulnerability report attested by the real cosign (legacy .att): listed with its age.
    std::fs::write(
        dir.join("vuln.json"),
        r#"{"invocation": {"parameters": null, "uri": "", "event_id": "", "builder.id": ""},
            "scanner": {"uri": "pkg:github/aquasecurity/trivy@0.58.0", "version": "0.58.0",
                        "db": {"uri": "", "version": ""}, "result": {"Results": []}},
            "metadata": {"scanStartedOn": "2026-11-01T00:00:00Z", "scanFinishedOn": "2026-11-01T00:01:00Z"}}"#,
    )
    .unwrap();
    let by_digest = tools.image_by_digest(&cosign_legacy, &mut t);
    let r = run_logged(
        &mut tools.cosign_attest_with_key("vuln.json", "vuln", true, &by_digest),
        &mut t,
    );
    assert_code(&r, 0, "cosign attest --type vuln");
    std::fs::write(dir.join("policy.yaml"), policy(dir)).unwrap();
    let yaml = manifests(&app, &unsigned, &wrong, &cosign_legacy, &cosign_bundle);
    std::fs::create_dir_all(dir.join("manifests/more")).unwrap();
    let (first, rest) = yaml.split_at(
        yaml.find("---\napiVersion: batch/v1\nkind: CronJob")
            .unwrap(),
    );
    std::fs::write(dir.join("manifests/all.yaml"), first).unwrap();
    std::fs::write(dir.join("manifests/more/rest.yml"), rest).unwrap();

    // Manifests on disk: the webhook's answers; each digest verified once per policy.
    let manifests_report = audit_json(
        &tools,
        &["--policy", "policy.yaml", "--manifests", "manifests"],
        1,
        &mut t,
    );
    let want: BTreeMap<String, (String, Option<String>)> = expected_answers()
        .into_iter()
        .map(|(k, (a, c))| (k.to_owned(), (a.to_owned(), c.map(str::to_owned))))
        .collect();
    assert_eq!(answers(&manifests_report), want, "{manifests_report:#}");
    let summary = &manifests_report["summary"];
    assert_eq!(summary["images"], 5, "{summary}");
    assert_eq!(summary["digests"], 5, "{summary}");
    // prod-signed judges the 5 images, staging-warn one: 6 verifications for 8 containers.
    assert_eq!(summary["verifications"], 6, "{summary}");
    assert_eq!(summary["containers"], 8, "{summary}");
    let by_image = images(&manifests_report);
    assert_eq!(by_image[&app].1, "verified");
    assert_eq!(by_image[&cosign_legacy].1, "verified");
    assert_eq!(by_image[&cosign_bundle].1, "verified");
    assert_eq!(by_image[&unsigned].2, "unsigned");
    assert_eq!(by_image[&wrong].2, "wrong-key");
    assert_eq!(by_image[&app].3.as_array().unwrap().len(), 1, "one signer");
    let attested = manifests_report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["reference"] == cosign_legacy.as_str())
        .unwrap()["attestations"]
        .clone();
    let scanned = time::OffsetDateTime::parse(
        "2026-11-01T00:01:00Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    let age = (time::OffsetDateTime::now_utc().unix_timestamp() - scanned) / 86_400;
    assert_eq!(
        attested[0]["predicateType"], "https://cosign.sigstore.dev/attestation/vuln/v1",
        "{attested}"
    );
    assert_eq!(
        attested[0]["scanFinishedOn"], "2026-11-01T00:01:00Z",
        "{attested}"
    );
    // (The audit's clock and this one may straddle midnight UTC.)
    let reported = attested[0]["ageDays"].as_i64().unwrap();
    assert!(
        reported == age || reported + 1 == age,
        "{attested} vs {age}"
    );
    // Once per digest and authorities: 5 digests under prod-signed's keys, 1 under staging-warn's.
    assert_eq!(
        manifests_report["summary"]["attestationReads"], 6,
        "{summary}"
    );
    assert_eq!(
        manifests_report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == "migrate")
            .unwrap()["origin"]["file"],
        "manifests/more/rest.yml"
    );
    // --fail-on: denied (default) 1; unsigned 1; with only the verified images, 0.
    let r = run_logged(
        &mut tools.kibaverify(&[
            "audit",
            "--policy",
            "policy.yaml",
            &app,
            &cosign_bundle,
            "-n",
            "prod",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "audit of verified images");
    // Not a terminal: no progress bar, nothing on stderr.
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert!(r.stdout.contains("admit"), "{}", r.stdout);

    // The same images as a list (in prod): the same image verdicts and digests.
    std::fs::write(
        dir.join("images.txt"),
        format!("# prod images\n{app}\n{unsigned}\n\n{wrong}\n{cosign_legacy}\n{cosign_bundle}\n"),
    )
    .unwrap();
    let list_report = audit_json(
        &tools,
        &[
            "--policy",
            "policy.yaml",
            "--images",
            "images.txt",
            "-n",
            "prod",
        ],
        1,
        &mut t,
    );
    // (The list has no staging workload: the unsigned image is judged by prod-signed only, with the same code.)
    assert_eq!(images(&list_report), images(&manifests_report));
    assert_eq!(list_report["summary"]["workloads"], 5);
    // The flags instead of a policy: one enforce requirement, our key.
    let flags_report = audit_json(
        &tools,
        &[
            "--key",
            "ours.pub",
            "--insecure-ignore-tlog",
            "--images",
            "images.txt",
            "--fail-on",
            "unsigned",
        ],
        1,
        &mut t,
    );
    let flagged = images(&flags_report);
    assert_eq!(flagged[&app].1, "verified");
    assert_eq!(
        flagged[&cosign_legacy].2, "wrong-key",
        "cosign's key is not ours"
    );
    assert_eq!(flagged[&unsigned].2, "unsigned");

    // A registry without the referrers API (Debian's docker-registry): kibaverify's and cosign's bundles sit
    // under the fallback tag; the same verdicts.
    let plain = TestRegistry::start(RegistryMode::Plain).unwrap();
    push_fixture_images(&plain).unwrap();
    let plain_tools = Tools::new(dir, &plain, Some(PASSWORD));
    let (plain_ours, plain_theirs, plain_unsigned) = (
        plain_tools.fixture("app"),
        plain_tools.fixture("docker-app"),
        plain_tools.fixture("config-only"),
    );
    let r = run_logged(
        &mut plain_tools.kibaverify(&[
            "sign",
            &plain_ours,
            "--key",
            "ours.key",
            "--layout",
            "bundle",
        ]),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign on docker-registry");
    let by_digest = plain_tools.image_by_digest(&plain_theirs, &mut t);
    let r = run_logged(
        &mut plain_tools.cosign_sign_with_key("cosign.key", false, &by_digest),
        &mut t,
    );
    assert_code(&r, 0, "cosign sign (bundle) on docker-registry");
    std::fs::write(
        dir.join("plain.txt"),
        format!("{plain_ours}\n{plain_theirs}\n{plain_unsigned}\n"),
    )
    .unwrap();
    let plain_report = audit_json(
        &plain_tools,
        &[
            "--policy",
            "policy.yaml",
            "--images",
            "plain.txt",
            "-n",
            "prod",
        ],
        1,
        &mut t,
    );
    let plain_images = images(&plain_report);
    assert_eq!(plain_images[&plain_ours].1, "verified", "{plain_report:#}");
    assert_eq!(
        plain_images[&plain_theirs].1, "verified",
        "{plain_report:#}"
    );
    assert_eq!(
        plain_images[&plain_unsigned].2, "unsigned",
        "{plain_report:#}"
    );
    drop(plain);

    // The same objects in the real API server: the same answers.
    let out = api.kubectl_stdin(&["apply", "-f", "-"], &yaml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kubeconfig = api.kubeconfig_path().to_str().unwrap().to_owned();
    let cluster_report = audit_json(
        &tools,
        &["--policy", "policy.yaml", "--kubeconfig", &kubeconfig, "-A"],
        1,
        &mut t,
    );
    let cluster_answers: BTreeMap<String, (String, Option<String>)> = answers(&cluster_report)
        .into_iter()
        .filter(|(k, _)| want.contains_key(k))
        .collect();
    assert_eq!(cluster_answers, want, "{cluster_report:#}");
    assert_eq!(images(&cluster_report), images(&manifests_report));
    // -l selects by the objects' own labels (none carries any here): nothing is listed.
    let none = audit_json(
        &tools,
        &[
            "--policy",
            "policy.yaml",
            "--kubeconfig",
            &kubeconfig,
            "-n",
            "prod",
            "-l",
            "app=web",
        ],
        0,
        &mut t,
    );
    assert_eq!(none["summary"]["workloads"], 0, "{none:#}");

    // An account that may only list Pods: told what it cannot read; the Pods it can read are audited.
    let rbac = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: auditor, namespace: other}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: pods-only}\nrules: [{apiGroups: [\"\"], resources: [pods], verbs: [list]}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: auditor-pods-only}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pods-only}\nsubjects: [{kind: ServiceAccount, name: auditor, namespace: other}]\n";
    let out = api.kubectl_stdin(&["apply", "-f", "-"], rbac);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = api
        .kubectl_ok(&["create", "token", "auditor", "-n", "other"])
        .unwrap();
    std::fs::write(
        dir.join("limited.kubeconfig"),
        kubeconfig_for_token(&api, token.trim()),
    )
    .unwrap();
    let r = run_logged(
        &mut tools.kibaverify(&[
            "audit",
            "--policy",
            "policy.yaml",
            "--kubeconfig",
            "limited.kubeconfig",
            "-A",
        ]),
        &mut t,
    );
    assert_code(&r, 2, "audit with only list on pods");
    for resource in [
        "deployments.apps",
        "statefulsets.apps",
        "cronjobs.batch",
        "jobs.batch",
        "daemonsets.apps",
        "replicasets.apps",
    ] {
        assert!(
            r.stdout.contains(&format!(
                "cannot list {resource} in any namespace: 403 forbidden"
            )),
            "{resource}: {}",
            r.stdout
        );
    }
    assert!(
        r.stdout.contains("Pod/tool"),
        "the Pod it may list is audited: {}",
        r.stdout
    );

    // deploy/audit-cronjob.yaml: the API server accepts it, and its ClusterRole (list/get only) reads everything
    // the audit lists: the same answers, no problem but the notes.
    let out = api.kubectl(&["create", "namespace", "kibaship-system"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let example = support::testdata().join("../deploy/audit-cronjob.yaml");
    let out = api.kubectl(&["apply", "-f", example.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = api
        .kubectl_ok(&["create", "token", "kibaship-audit", "-n", "kibaship-system"])
        .unwrap();
    std::fs::write(
        dir.join("example.kubeconfig"),
        kubeconfig_for_token(&api, token.trim()),
    )
    .unwrap();
    let example_report = audit_json(
        &tools,
        &[
            "--policy",
            "policy.yaml",
            "--kubeconfig",
            "example.kubeconfig",
            "-A",
        ],
        1,
        &mut t,
    );
    assert_eq!(
        example_report["summary"]["inputErrors"], 0,
        "{example_report:#}"
    );
    let mut example_answers = answers(&example_report);
    // Its own CronJob, in a namespace no policy selects: not judged, and its registry not contacted.
    assert_eq!(
        example_answers.remove("kibaship-system/CronJob/kibaship-audit"),
        Some(("not-selected".to_owned(), None))
    );
    assert_eq!(example_answers, answers(&cluster_report));

    // Credentials the API server refuses (an expired token): one message naming them, exit 2.
    std::fs::write(
        dir.join("expired.kubeconfig"),
        kubeconfig_for_token(&api, "expired-token"),
    )
    .unwrap();
    let expired = audit_json(
        &tools,
        &[
            "--policy",
            "policy.yaml",
            "--kubeconfig",
            "expired.kubeconfig",
            "-A",
        ],
        2,
        &mut t,
    );
    let problems = expired["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]["message"]
            .as_str()
            .unwrap()
            .contains("refused the credentials (401 Unauthorized"),
        "{problems:?}"
    );

    // An unreachable API server: named, exit 2, the manifests still audited.
    let dead = kubeconfig_for_token(&api, "x").replace(api.url(), "https://127.0.0.1:9");
    std::fs::write(dir.join("dead.kubeconfig"), dead).unwrap();
    let dead_report = audit_json(
        &tools,
        &[
            "--policy",
            "policy.yaml",
            "--kubeconfig",
            "dead.kubeconfig",
            "--manifests",
            "manifests",
        ],
        2,
        &mut t,
    );
    let problems = dead_report["problems"].to_string();
    assert!(
        problems.contains("cannot reach the Kubernetes API server at https://127.0.0.1:9"),
        "{problems}"
    );
    assert_eq!(answers(&dead_report), want);

    // Bad input: invalid YAML, an unknown kind, a malformed reference, a registry that stalls on one image.
    let proxy = FaultProxy::start_for_paths(
        tools.host(),
        "/fixtures/multiarch/",
        Fault::Trickle {
            bytes: 1,
            every_ms: 1000,
        },
    )
    .unwrap();
    let slow = wrong.replace(tools.host(), &proxy.host());
    let via_proxy = app.replace(tools.host(), &proxy.host());
    std::fs::write(
        dir.join("bad.yaml"),
        format!("kind: Pod\nmetadata: {{name: ok, namespace: prod}}\nspec:\n  containers: [{{name: a, image: \"{via_proxy}\"}}]\n---\nkind: Pod\nmetadata: {{name: broken\n---\napiVersion: example.com/v1\nkind: Rollout\nmetadata: {{name: r}}\n---\nkind: Pod\nmetadata: {{name: slow, namespace: prod}}\nspec:\n  containers: [{{name: a, image: \"{slow}\"}}]\n"),
    )
    .unwrap();
    std::fs::write(dir.join("bad.txt"), format!("{app}\nNot A Reference!\n")).unwrap();
    let proxy_host = proxy.host();
    let r = run_logged(
        &mut tools.kibaverify(&[
            "audit",
            "--key",
            "ours.pub",
            "--insecure-ignore-tlog",
            "--manifests",
            "bad.yaml",
            "--images",
            "bad.txt",
            "--insecure-registry",
            &proxy_host,
            "--timeout",
            "3s",
            "--output",
            "json",
        ]),
        &mut t,
    );
    assert_code(&r, 2, "audit of bad input");
    let bad: Value = serde_json::from_str(&r.stdout).unwrap();
    let problems = bad["problems"].to_string();
    assert!(
        problems.contains("(document 2)") && problems.contains("not valid YAML"),
        "{problems}"
    );
    assert!(
        problems.contains("kind Rollout (r) holds no pod template"),
        "{problems}"
    );
    assert!(
        problems.contains("bad.txt:2")
            && problems.contains("`Not A Reference!` is not an image reference"),
        "{problems}"
    );
    assert!(
        r.stderr.contains("bad.txt:2"),
        "errors on stderr too: {}",
        r.stderr
    );
    let bad_images = images(&bad);
    assert_eq!(bad_images[&slow].1, "error", "{bad:#}");
    assert_eq!(bad_images[&slow].2, "timeout", "{bad:#}");
    assert_ne!(
        bad_images[&via_proxy].1, "error",
        "the rest completes: {bad:#}"
    );
    assert_eq!(bad_images[&app].1, "verified");
    assert!(!r.stderr.contains("panicked"));

    // SARIF: one result per failing workload (3 denied in prod, 1 warned in staging).
    let r = run_logged(
        &mut tools.kibaverify(&[
            "audit",
            "--policy",
            "policy.yaml",
            "--manifests",
            "manifests",
            "--output",
            "sarif",
        ]),
        &mut t,
    );
    assert_code(&r, 1, "sarif");
    let sarif: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        sarif["runs"][0]["tool"]["driver"]["informationUri"],
        "https://kibaship.io/docs/audit"
    );
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{sarif:#}");
    let levels: Vec<&str> = results
        .iter()
        .map(|r| r["level"].as_str().unwrap())
        .collect();
    assert_eq!(
        levels.iter().filter(|l| **l == "error").count(),
        2,
        "{levels:?}"
    );
    assert!(results.iter().any(|r| r["ruleId"] == "wrong-key"
        && r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            == "manifests/more/rest.yml"));

    // HTML, rendered by headless Chromium.
    let r = run_logged(
        &mut tools.kibaverify(&[
            "audit",
            "--policy",
            "policy.yaml",
            "--manifests",
            "manifests",
            "--output",
            "html",
        ]),
        &mut t,
    );
    assert_code(&r, 1, "html");
    std::fs::write(dir.join("report.html"), &r.stdout).unwrap();
    check_html_in_chromium(dir);
}

fn chromium(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut c = Command::new("chromium");
    c.current_dir(dir)
        .env("HOME", dir)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--user-data-dir=chromium-profile",
        ])
        .args(args);
    c.output()
        .expect("chromium (Debian's `chromium`, make deps)")
}

fn check_html_in_chromium(dir: &Path) {
    let page = format!("file://{}", dir.join("report.html").display());
    let out = chromium(dir, &["--dump-dom", &page]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    // The script ran: the count it writes is there, every row shown.
    assert!(dom.contains("8 of 8 containers shown"), "{dom}");
    assert!(dom.contains("id=\"summary-chart\""), "the inline SVG chart");
    assert!(
        dom.contains("data-answer=\"deny\" data-count=\"2\""),
        "2 workloads denied in the chart: {dom}"
    );
    // Filtered by the fragment: only prod's denied rows remain visible.
    let out = chromium(
        dir,
        &["--dump-dom", &format!("{page}#namespace=prod&answer=deny")],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("2 of 8 containers shown"), "{dom}");
    let visible: Vec<&str> = dom
        .split("<tr ")
        .skip(1)
        .filter(|row| row.contains("data-namespace=") && !row.contains("hidden"))
        .collect();
    assert_eq!(visible.len(), 2, "{visible:?}");
    assert!(
        visible
            .iter()
            .all(|r| r.contains("data-answer=\"deny\"") && r.contains("data-namespace=\"prod\""))
    );
    // Sorted by the fragment: answers worst first (deny, deny, admit-with-warning, ..., not-selected last).
    let out = chromium(
        dir,
        &["--dump-dom", &format!("{page}#sort=answer&dir=desc")],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let order: Vec<&str> = dom
        .split("data-answer=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|a| !a.is_empty())
        .collect();
    // The chart's bars come first (in their fixed order), then the rows.
    let rows = &order[order.len() - 8..];
    assert_eq!(
        rows[..3],
        ["deny", "deny", "admit-with-warning"],
        "{order:?}"
    );
    assert_eq!(rows[7], "not-selected", "{order:?}");
    // A screenshot renders.
    let out = chromium(
        dir,
        &["--screenshot=shot.png", "--window-size=1200,900", &page],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(dir.join("shot.png")).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "{} bytes",
        png.len()
    );
}

/// A `kubernetes.io/dockerconfigjson` Secret for `host` (by `stringData`, so the test writes no base64 of it).
fn pull_secret_yaml(namespace: &str, name: &str, host: &str, user: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = serde_json::json!({"auths": {host: {"auth": auth}}}).to_string();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {namespace}}}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{config}'\n"
    )
}

/// Issue 18 (pull secrets): with `--use-pull-secrets`, each cluster workload's images are read with its own
/// pull secrets (its `imagePullSecrets`, else its service account's), on the real docker-registry with basic
/// auth over TLS and the real kube-apiserver; a workload without credentials is not given the verdict read
/// with another's (the registry refuses it: `registry-denied`), nor is one whose secret holds a wrong password.
/// An account without `get` on secrets is told which secret it could not read. No password in any output.
#[test]
fn audit_reads_each_workloads_images_with_its_pull_secrets() {
    let reg = registry_with_fixtures(RegistryMode::BasicTls);
    let (user, password) = reg
        .credentials()
        .expect("the basic-auth registry has credentials");
    let host = reg.host();
    let ca = reg
        .ca_pem_path()
        .expect("a TLS registry")
        .to_str()
        .unwrap()
        .to_owned();
    let api = KubeApiServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let tools = Tools::without_registry(dir, PASSWORD);
    let mut t = String::new();
    tools.generate_our_key_pair(&mut t);

    // kibaverify signs the fixture with its own credentials (a docker config used for signing only).
    let creds_dir = dir.join("signer-docker-config");
    std::fs::create_dir_all(&creds_dir).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        creds_dir.join("config.json"),
        serde_json::json!({"auths": {&host: {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let app = format!("{host}/fixtures/app:v1");
    let r = run_logged(
        tools
            .kibaverify_without_registry(&["sign", &app, "--key", "ours.key", "--ca-file", &ca])
            .env("DOCKER_CONFIG", &creds_dir),
        &mut t,
    );
    assert_code(&r, 0, "kibaverify sign on the basic-auth registry");

    std::fs::write(
        dir.join("policy.yaml"),
        format!(
            "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: signed\n    images: [\"{host}/**\"]\n    transparencyLog: optional\n    authorities:\n      - name: ours\n        key: |\n{}",
            public_key_block(&dir.join("ours.pub"))
        ),
    )
    .unwrap();

    // team-a names its secret in the pod template; team-b's service account names one; team-c has none;
    // team-d's secret has a wrong password.
    let deployment = |namespace: &str, extra: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: {namespace}}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n{extra}      containers: [{{name: main, image: \"{app}\"}}]\n---\n"
        )
    };
    let mut yaml = String::new();
    for namespace in ["team-a", "team-b", "team-c", "team-d"] {
        yaml.push_str(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n---\n"
        ));
    }
    yaml.push_str(&pull_secret_yaml(
        "team-a", "regcred", &host, &user, &password,
    ));
    yaml.push_str("---\n");
    yaml.push_str(&deployment(
        "team-a",
        "      imagePullSecrets: [{name: regcred}]\n",
    ));
    yaml.push_str(&pull_secret_yaml(
        "team-b",
        "builder-pull",
        &host,
        &user,
        &password,
    ));
    yaml.push_str("---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: builder, namespace: team-b}\nimagePullSecrets: [{name: builder-pull}]\n---\n");
    yaml.push_str(&deployment("team-b", "      serviceAccountName: builder\n"));
    yaml.push_str(&deployment("team-c", ""));
    yaml.push_str(&pull_secret_yaml(
        "team-d",
        "regcred",
        &host,
        &user,
        "not-the-password",
    ));
    yaml.push_str("---\n");
    yaml.push_str(&deployment(
        "team-d",
        "      imagePullSecrets: [{name: regcred}]\n",
    ));
    let out = api.kubectl_stdin(&["apply", "-f", "-"], &yaml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kubeconfig = api.kubeconfig_path().to_str().unwrap().to_owned();
    let audit = |kubeconfig: &str, pull_secrets: bool, code: i32, t: &mut String| {
        let mut args = vec![
            "audit",
            "--output",
            "json",
            "--policy",
            "policy.yaml",
            "--kubeconfig",
            kubeconfig,
            "-A",
            "--ca-file",
            &ca,
        ];
        if pull_secrets {
            args.push("--use-pull-secrets");
        }
        let r = run_logged(&mut tools.kibaverify_without_registry(&args), t);
        assert_code(&r, code, &format!("kibaverify {}", args.join(" ")));
        serde_json::from_str::<Value>(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
    };

    // Exit 2: team-c's and team-d's reads are refused by the registry (an image that could not be read).
    let report = audit(&kubeconfig, true, 2, &mut t);
    let got = answers(&report);
    let want: BTreeMap<String, (String, Option<String>)> = [
        ("team-a/Deployment/web", "admit", None),
        ("team-b/Deployment/web", "admit", None),
        ("team-c/Deployment/web", "deny", Some("registry-denied")),
        ("team-d/Deployment/web", "deny", Some("registry-denied")),
    ]
    .into_iter()
    .map(|(k, a, c)| (k.to_owned(), (a.to_owned(), c.map(str::to_owned))))
    .collect();
    assert_eq!(got, want, "{report:#}");
    // One image entry per credentials it was read with, each naming its pull secret.
    let mut by_secret: BTreeMap<String, (Value, Value)> = BTreeMap::new();
    for image in report["images"].as_array().unwrap() {
        assert_eq!(image["reference"], app.as_str(), "{image:#}");
        by_secret.insert(
            image["pullSecret"].as_str().unwrap_or("(own)").to_owned(),
            (image["status"].clone(), image["code"].clone()),
        );
    }
    let verified = (Value::from("verified"), Value::Null);
    let denied = (Value::from("error"), Value::from("registry-denied"));
    assert_eq!(
        by_secret,
        BTreeMap::from([
            ("(own)".to_owned(), denied.clone()),
            ("team-a/regcred".to_owned(), verified.clone()),
            ("team-b/builder-pull".to_owned(), verified),
            ("team-d/regcred".to_owned(), denied),
        ]),
        "{report:#}"
    );
    // Verified once per credentials that could read it (team-a's and team-b's), never shared with team-c.
    assert_eq!(report["summary"]["verifications"], 2, "{report:#}");

    // Without the flag every workload is read with kibaverify's own credentials (none): all denied.
    let report = audit(&kubeconfig, false, 2, &mut t);
    assert!(
        answers(&report)
            .values()
            .all(|a| *a == ("deny".to_owned(), Some("registry-denied".to_owned()))),
        "{report:#}"
    );

    // The example CronJob's account has no `get` on secrets or service accounts: each one it could not read is
    // named (exit 2), and the workload's images are read with kibaverify's own credentials.
    let cronjob = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/audit-cronjob.yaml"),
    )
    .unwrap();
    let out = api.kubectl_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: kibaship-system}}\n---\n{cronjob}"
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = api
        .kubectl_ok(&["create", "token", "kibaship-audit", "-n", "kibaship-system"])
        .unwrap();
    std::fs::write(
        dir.join("cronjob.kubeconfig"),
        kubeconfig_for_token(&api, token.trim()),
    )
    .unwrap();
    let report = audit("cronjob.kubeconfig", true, 2, &mut t);
    let problems = report["problems"].to_string();
    for secret in ["team-a/regcred", "team-d/regcred"] {
        assert!(
            problems.contains(&format!("cannot get pull secret `{secret}`: 403 forbidden")),
            "{secret}: {problems}"
        );
    }
    assert!(
        problems.contains(
            "cannot get service account team-b/builder for its pull secrets: 403 forbidden"
        ),
        "{problems}"
    );
    assert_eq!(
        answers(&report)["team-a/Deployment/web"],
        ("deny".to_owned(), Some("registry-denied".to_owned())),
        "{report:#}"
    );
    assert_not_leaked(&t, &password, "the registry password");
    assert_not_leaked(&t, &auth, "the registry credential");
}

/// Issue 18 (API byte limits): an answer of the API server larger than `MAX_RESPONSE_BYTES` (64 MiB) is cut
/// and named per resource, and the rest of the audit completes. A stand-in HTTP server answers every list
/// with an endless JSON body: the real kube-apiserver cannot be made to send such a page here, since it
/// pages by object count and etcd caps each object at about 1.5 MiB (it would take hundreds of objects of
/// maximal size, gigabytes through etcd, to pass 64 MiB in one page of 500).
#[test]
fn audit_names_an_oversized_api_answer_standin_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&served);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let count = std::sync::Arc::clone(&count);
            std::thread::spawn(move || serve_oversized(stream, &count));
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": format!("http://127.0.0.1:{port}")}}],
        "users": [{"name": "u", "user": {"token": "standin"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "prod"}}],
        "current-context": "c",
    });
    std::fs::write(dir.join("standin.kubeconfig"), kubeconfig.to_string()).unwrap();
    // A manifest beside the cluster: still audited. A policy selecting nothing, so no registry is read.
    std::fs::write(
        dir.join("pod.yaml"),
        "kind: Pod\nmetadata: {name: p, namespace: prod}\nspec:\n  containers: [{name: a, image: \"registry.invalid/app:1\"}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("policy.yaml"),
        "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: none\n    namespaces: {names: [\"nowhere\"]}\n    images: [\"**\"]\n    authorities:\n      - key: |\n          -----BEGIN PUBLIC KEY-----\n          MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDnuWp3YHjzLqQcwBS+oAaRlkR+UK\n          507IZjxwNV4MDg3sokWdpgeQPeJFgLAEe7ibXTEEoNAHrjIxmPDzWHBUPQ==\n          -----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let tools = Tools::without_registry(dir, PASSWORD);
    let mut t = String::new();
    let r = run_logged(
        &mut tools.kibaverify_without_registry(&[
            "audit",
            "--output",
            "json",
            "--policy",
            "policy.yaml",
            "--kubeconfig",
            "standin.kubeconfig",
            "--manifests",
            "pod.yaml",
        ]),
        &mut t,
    );
    assert_code(&r, 2, "audit against the oversized stand-in");
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    let problems = report["problems"].to_string();
    for resource in [
        "deployments.apps",
        "statefulsets.apps",
        "daemonsets.apps",
        "cronjobs.batch",
        "jobs.batch",
        "replicasets.apps",
        "pods",
    ] {
        assert!(
            problems.contains(&format!(
                "cannot list {resource} in namespace prod: the API server's answer is larger than 64 MiB"
            )),
            "{resource}: {problems}"
        );
    }
    assert_eq!(
        answers(&report)["prod/Pod/p"],
        ("not-selected".to_owned(), None),
        "{report:#}"
    );
    assert!(
        r.stderr.contains("larger than 64 MiB"),
        "the errors are on stderr too: {}",
        r.stderr
    );
    assert!(served.load(std::sync::atomic::Ordering::SeqCst) >= 7);
}

/// Answers one HTTP/1.1 request with `200` and a chunked JSON list whose one annotation never ends (up to
/// 80 MiB, past the 64 MiB limit); stops when the client hangs up.
fn serve_oversized(mut stream: std::net::TcpStream, served: &std::sync::atomic::AtomicUsize) {
    use std::io::{Read as _, Write as _};
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let start = r#"{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"big","namespace":"prod","annotations":{"pad":""#;
    let chunk = |data: &[u8]| {
        let mut out = format!("{:x}\r\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        out
    };
    if stream.write_all(head.as_bytes()).is_err()
        || stream.write_all(&chunk(start.as_bytes())).is_err()
    {
        return;
    }
    let pad = chunk(&[b'a'; 1024 * 1024]);
    for _ in 0..80 {
        if stream.write_all(&pad).is_err() {
            return;
        }
    }
    let _ = stream.write_all(&chunk(br#""}}}]}"#));
    let _ = stream.write_all(b"0\r\n\r\n");
}

#[test]
fn use_pull_secrets_without_a_cluster_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("pod.yaml"),
        "kind: Pod\nmetadata: {name: p, namespace: prod}\nspec:\n  containers: [{name: a, image: \"registry.invalid/app:1\"}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("cosign.pub"),
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDnuWp3YHjzLqQcwBS+oAaRlkR+UK\n507IZjxwNV4MDg3sokWdpgeQPeJFgLAEe7ibXTEEoNAHrjIxmPDzWHBUPQ==\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let out = Command::new(support::BIN)
        .args(["audit", "--manifests"])
        .arg(dir.join("pod.yaml"))
        .arg("--key")
        .arg(dir.join("cosign.pub"))
        .args(["--use-pull-secrets", "--output", "json"])
        .env("HOME", dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--use-pull-secrets") && stderr.contains("reads no cluster"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "no report for a refused command line"
    );
}
