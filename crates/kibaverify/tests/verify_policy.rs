//! `kibaverify verify REF --policy FILE [--namespace NS] [--namespace-label k=v]` (issue 15): the admission policy
//! file decides which policies apply, with their modes and exceptions, and each selected policy is verified
//! against the real registry, where the real cosign signed with a key and no transparency log (so the policies
//! say `transparencyLog: optional`). The answers are the webhook's: `admit`, `admit-with-warning`, `deny`,
//! `not-selected`, `exception`; exit 0, except 1 for `deny` and 2 for bad input or an unreachable registry.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::Path;

use kibaship_testsupport::registry::RegistryMode;

mod support;
use support::{Run, Tools, assert_code, registry_with_fixtures, run_logged};

/// Planted in COSIGN_PASSWORD for cosign's key pair.
const PASSWORD: &str = "policy-test-pw-3d81";

/// `key: |` with the PEM text indented for an authority of the policy files below.
fn key_authority(pem: &str) -> String {
    let mut text = String::from("      - key: |\n");
    for line in pem.lines() {
        text.push_str("          ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// The policy file of the main test: for images under `host/fixtures/`, an enforce policy in `prod*`, a warn
/// policy in `staging`, an audit policy in `audited`, a label-selected policy for `docker-app`; an active
/// exception for `config-only` in `prod-legacy` and an expired one in `prod-old`.
fn policy_file(host: &str, pem: &str) -> String {
    let key = key_authority(pem);
    format!(
        "apiVersion: kibaship.io/v1alpha1
kind: AdmissionPolicy
policies:
  - name: fixtures-signed
    namespaces:
      names: [\"prod\", \"prod-*\"]
    images: [\"{host}/fixtures/app\", \"{host}/fixtures/config-only\"]
    authorities:
{key}    transparencyLog: optional
  - name: fixtures-warned
    mode: warn
    namespaces:
      names: [\"staging\"]
    images: [\"{host}/fixtures/**\"]
    authorities:
{key}    transparencyLog: optional
  - name: fixtures-audited
    mode: audit
    namespaces:
      names: [\"audited\"]
    images: [\"{host}/fixtures/**\"]
    authorities:
{key}    transparencyLog: optional
  - name: critical-tier
    namespaces:
      matchLabels: {{tier: critical}}
    images: [\"{host}/fixtures/docker-app\"]
    authorities:
{key}    transparencyLog: optional
exceptions:
  - images: [\"{host}/fixtures/config-only\"]
    namespaces: [\"prod-legacy\"]
    owner: team-legacy@example.com
    expires: 2099-01-01T00:00:00Z
    reason: \"migration ticket LEG-1\"
  - images: [\"{host}/fixtures/config-only\"]
    namespaces: [\"prod-old\"]
    owner: team-old@example.com
    expires: 2020-01-01T00:00:00Z
    reason: \"ran out\"
"
    )
}

/// `path:line`, the line (1-based) being the first of `text` that contains `needle`.
fn location(path: &str, text: &str, needle: &str) -> String {
    let line = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} is not in the policy"));
    format!("{path}:{}", line + 1)
}

/// `path:line` of the exception (its `- ` item) whose owner line contains `owner`.
fn exception_location(path: &str, text: &str, owner: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.contains(owner)).unwrap();
    let item = lines[..at]
        .iter()
        .rposition(|l| l.starts_with("  - "))
        .unwrap();
    format!("{path}:{}", item + 1)
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr:\n{}", r.stdout, r.stderr))
}

/// The keys of a JSON object, sorted.
fn keys(v: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

/// The one line of stdout that starts with `prefix`.
fn line_starting<'a>(r: &'a Run, prefix: &str) -> &'a str {
    let found: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(
        found.len(),
        1,
        "{prefix:?} in stdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    found[0]
}

#[test]
fn policy_file_answers_as_the_webhook_would() {
    let reg = registry_with_fixtures(RegistryMode::Plain);
    let tmp = tempfile::tempdir().unwrap();
    let tools = Tools::new(tmp.path(), &reg, Some(PASSWORD));
    let host = reg.host();
    let mut t = String::new();

    // cosign's key pair; cosign signs `app` (bundle, no transparency log); `config-only` and `docker-app` stay
    // unsigned.
    assert_code(
        &run_logged(&mut tools.cosign(&["generate-key-pair"]), &mut t),
        0,
        "cosign generate-key-pair",
    );
    let app = tools.fixture("app");
    let app_digest = tools
        .image_by_digest(&app, &mut t)
        .rsplit_once('@')
        .unwrap()
        .1
        .to_string();
    let app_by_digest = format!("{host}/fixtures/app@{app_digest}");
    assert_code(
        &run_logged(
            &mut tools.cosign_sign_with_key("cosign.key", false, &app_by_digest),
            &mut t,
        ),
        0,
        "cosign sign",
    );
    let unsigned = tools.fixture("config-only");

    let pem = std::fs::read_to_string(tmp.path().join("cosign.pub")).unwrap();
    let text = policy_file(&host, &pem);
    std::fs::write(tmp.path().join("policy.yaml"), &text).unwrap();
    let signed_at = location("policy.yaml", &text, "name: fixtures-signed");
    let warned_at = location("policy.yaml", &text, "name: fixtures-warned");
    let legacy_at = exception_location("policy.yaml", &text, "owner: team-legacy@");
    let old_at = exception_location("policy.yaml", &text, "owner: team-old@");
    let judge = |image: &str, extra: &[&str]| {
        let mut c = tools.kibaverify(&["verify", image, "--policy", "policy.yaml"]);
        c.args(extra);
        support::run(&mut c)
    };

    // admit: the signed image in prod, verified with the policy's key.
    let r = judge(&app, &["--namespace", "prod"]);
    assert_code(&r, 0, "admit");
    assert_eq!(
        r.stdout.lines().next().unwrap(),
        format!("policy.yaml: 1 policy selects {app} in namespace prod (labels unknown)")
    );
    assert_eq!(
        line_starting(&r, "policy fixtures-signed "),
        format!("policy fixtures-signed (enforce, {signed_at}): verified")
    );
    // The signatures as `kibaverify verify` prints them.
    assert!(
        r.stdout.contains(&format!(
            "VERIFIED {app_by_digest}: 1 of 1 signatures passed"
        )),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stdout.lines().last().unwrap(),
        "answer: admit: every selected policy verified it"
    );

    // The same as JSON: the whole shape.
    let r = judge(&app, &["--namespace", "prod", "--output", "json"]);
    assert_code(&r, 0, "admit (json)");
    let v = json(&r);
    assert_eq!(
        keys(&v),
        [
            "answer",
            "digest",
            "exception",
            "namespace",
            "namespaceLabels",
            "policies",
            "policyFile",
            "reference",
        ],
        "{v}"
    );
    assert_eq!(v["reference"], app.as_str());
    assert_eq!(v["digest"], app_digest.as_str());
    assert_eq!(v["namespace"], "prod");
    assert_eq!(v["namespaceLabels"], serde_json::Value::Null);
    assert_eq!(v["policyFile"], "policy.yaml");
    assert_eq!(v["answer"], "admit");
    assert_eq!(v["exception"], serde_json::Value::Null);
    let policies = v["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 1, "{v}");
    let p = &policies[0];
    assert_eq!(
        keys(p),
        ["code", "location", "mode", "name", "signatures", "verified"],
        "{p}"
    );
    assert_eq!(p["name"], "fixtures-signed");
    assert_eq!(p["mode"], "enforce");
    assert_eq!(p["location"], signed_at.as_str());
    assert_eq!(p["verified"], true);
    assert_eq!(p["code"], serde_json::Value::Null);
    // The report is `kibaverify verify --output json`'s.
    assert_eq!(p["signatures"]["image"], app_by_digest.as_str());
    assert_eq!(p["signatures"]["kind"], "signatures");
    assert_eq!(p["signatures"]["verified"], true);
    assert_eq!(p["signatures"]["signatures"][0]["verified"], true, "{p}");

    // deny: the unsigned image under an enforce policy, with the code `kibaverify verify` gives.
    let r = judge(&unsigned, &["--namespace", "prod"]);
    assert_code(&r, 1, "deny");
    assert_eq!(
        line_starting(&r, "policy fixtures-signed "),
        format!("policy fixtures-signed (enforce, {signed_at}): NOT VERIFIED: unsigned")
    );
    assert!(
        r.stderr.contains(": unsigned: no signatures found"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.stdout.lines().last().unwrap(),
        "answer: deny: policy fixtures-signed: unsigned"
    );
    let r = judge(&unsigned, &["--namespace", "prod", "--output", "json"]);
    assert_code(&r, 1, "deny (json)");
    let v = json(&r);
    assert_eq!(v["answer"], "deny");
    assert_eq!(v["policies"][0]["verified"], false, "{v}");
    assert_eq!(v["policies"][0]["code"], "unsigned", "{v}");
    assert_eq!(v["policies"][0]["signatures"]["code"], "unsigned", "{v}");
    assert_eq!(
        v["policies"][0]["signatures"]["signatures"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // admit-with-warning: the same failure under a warn policy admits (exit 0).
    let r = judge(&unsigned, &["--namespace", "staging"]);
    assert_code(&r, 0, "admit-with-warning");
    assert_eq!(
        line_starting(&r, "policy fixtures-warned "),
        format!("policy fixtures-warned (warn, {warned_at}): NOT VERIFIED: unsigned")
    );
    assert_eq!(
        r.stdout.lines().last().unwrap(),
        "answer: admit-with-warning: policy fixtures-warned: unsigned"
    );
    let v = json(&judge(
        &unsigned,
        &["--namespace", "staging", "--output", "json"],
    ));
    assert_eq!(v["answer"], "admit-with-warning");
    assert_eq!(v["policies"][0]["mode"], "warn");
    assert_eq!(v["policies"][0]["code"], "unsigned");

    // An audit policy only logs: admit, with the failure named.
    let r = judge(&unsigned, &["--namespace", "audited"]);
    assert_code(&r, 0, "audit");
    assert_eq!(
        r.stdout.lines().last().unwrap(),
        "answer: admit: only audit-mode policies failed (the webhook logs them): policy \
         fixtures-audited: unsigned"
    );

    // not-selected: no policy names `dev`, nor the default namespace; nothing is verified.
    for extra in [&["--namespace", "dev"][..], &[]] {
        let r = judge(&app, extra);
        assert_code(&r, 0, "not-selected");
        let ns = extra.get(1).copied().unwrap_or("default");
        assert_eq!(
            r.stdout,
            format!(
                "policy.yaml: 0 policies select {app} in namespace {ns} (labels unknown)\n\
                 answer: not-selected: no policy selects it in namespace {ns}; the webhook does not check it\n"
            )
        );
    }
    let v = json(&judge(&app, &["--output", "json"]));
    assert_eq!(v["answer"], "not-selected");
    assert_eq!(v["namespace"], "default");
    assert_eq!(v["digest"], serde_json::Value::Null);
    assert_eq!(v["policies"], serde_json::json!([]));

    // exception: an active exception admits the unsigned image without verifying it.
    let r = judge(&unsigned, &["--namespace", "prod-legacy"]);
    assert_code(&r, 0, "exception");
    assert_eq!(
        line_starting(&r, "policy fixtures-signed "),
        format!(
            "policy fixtures-signed (enforce, {signed_at}): not checked (the exception applies)"
        )
    );
    assert_eq!(
        r.stdout.lines().last().unwrap(),
        format!(
            "answer: exception: admitted by exception (owner team-legacy@example.com, expires \
             2099-01-01T00:00:00Z; {legacy_at}): migration ticket LEG-1"
        )
    );
    let v = json(&judge(
        &unsigned,
        &["--namespace", "prod-legacy", "--output", "json"],
    ));
    assert_eq!(v["answer"], "exception");
    assert_eq!(
        v["exception"],
        serde_json::json!({
            "owner": "team-legacy@example.com",
            "reason": "migration ticket LEG-1",
            "expires": "2099-01-01T00:00:00Z",
            "location": legacy_at,
            "active": true,
        })
    );
    assert_eq!(v["policies"][0]["verified"], serde_json::Value::Null, "{v}");
    assert!(v["policies"][0].get("signatures").is_none(), "{v}");

    // An expired exception does not apply, and the output says it ran out.
    let r = judge(&unsigned, &["--namespace", "prod-old"]);
    assert_code(&r, 1, "expired exception");
    assert_eq!(
        line_starting(&r, "exception "),
        format!(
            "exception of team-old@example.com ({old_at}) expired at 2020-01-01T00:00:00Z; it no \
             longer applies"
        )
    );
    let v = json(&judge(
        &unsigned,
        &["--namespace", "prod-old", "--output", "json"],
    ));
    assert_eq!(v["answer"], "deny");
    assert_eq!(v["exception"]["active"], false, "{v}");
    assert_eq!(v["exception"]["owner"], "team-old@example.com", "{v}");

    // Labels: unknown labels select the label-based policy (fail closed); known labels decide.
    let docker_app = tools.fixture("docker-app");
    let r = judge(&docker_app, &["--namespace", "batch"]);
    assert_code(&r, 1, "labels unknown");
    assert!(
        line_starting(&r, "policy critical-tier ").ends_with(
            "; selected because the namespace's labels are unknown (pass --namespace-label)"
        ),
        "{}",
        r.stdout
    );
    let r = judge(
        &docker_app,
        &["--namespace", "batch", "--namespace-label", "tier=batch"],
    );
    assert_code(&r, 0, "other labels");
    assert!(
        r.stdout.starts_with(&format!(
            "policy.yaml: 0 policies select {docker_app} in namespace batch (labels tier=batch)"
        )),
        "{}",
        r.stdout
    );
    let v = json(&judge(
        &docker_app,
        &[
            "--namespace",
            "batch",
            "--namespace-label",
            "tier=critical",
            "--namespace-label",
            "team=data",
            "--output",
            "json",
        ],
    ));
    assert_eq!(v["answer"], "deny");
    assert_eq!(
        v["namespaceLabels"],
        serde_json::json!({"team": "data", "tier": "critical"})
    );
    assert_eq!(v["policies"][0]["name"], "critical-tier");
}

#[test]
fn an_unreachable_registry_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    // A loopback port nobody listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let text = format!(
        "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: all\n    images: [\"**\"]\n    authorities:\n{}",
        key_authority(PUBLIC_KEY)
    );
    std::fs::write(tmp.path().join("policy.yaml"), text).unwrap();
    let tools = Tools {
        dir: tmp.path(),
        registry: Some(host.clone()),
        password: None,
    };
    let r = support::run(&mut tools.kibaverify(&[
        "verify",
        &format!("{host}/team/app:v1"),
        "--policy",
        "policy.yaml",
        "--timeout",
        "20s",
    ]));
    assert_code(&r, 2, "unreachable registry");
    assert!(
        r.stderr.contains("cannot verify") && r.stderr.contains("for policy all"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
}

/// An ECDSA P-256 public key (from `testdata/policy/valid/minimal.yaml`), for policies that never verify.
const PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAECa+IKvvDyPFk/iTUibLIIZMsW+8g
0haqQ16AeUWDGcwfvKuNKz+XgLEksYwiGXWgN2ZHh8gN22Unw/nr+dhYDA==
-----END PUBLIC KEY-----
";

/// `kibaverify verify args...` in `dir`, with no registry (these runs fail before reaching one).
fn offline(dir: &Path, args: &[&str]) -> Run {
    support::run(
        &mut Tools {
            dir,
            registry: None,
            password: None,
        }
        .kibaverify(args),
    )
}

#[test]
fn a_policy_file_with_errors_exits_2_naming_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: all\n    mode: strict\n    images: [\"**\"]\n    authorities:\n{}",
        key_authority(PUBLIC_KEY)
    );
    std::fs::write(tmp.path().join("bad.yaml"), text).unwrap();
    for output in ["text", "json"] {
        let r = offline(
            tmp.path(),
            &[
                "verify",
                "registry.example.com/team/app:v1",
                "--policy",
                "bad.yaml",
                "--output",
                output,
            ],
        );
        assert_code(&r, 2, "a policy file with an error");
        assert_eq!(r.stdout, "");
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(
            lines[0],
            "kibaverify: error: bad.yaml is not a valid admission policy:"
        );
        assert!(
            lines[1].starts_with("bad.yaml:5:11: bad-value: policies[0].mode: "),
            "{}",
            r.stderr
        );
        assert_eq!(lines.len(), 2, "{}", r.stderr);
    }

    // A file that is not there, and a reference that is not one: bad input too.
    let r = offline(
        tmp.path(),
        &[
            "verify",
            "registry.example.com/team/app:v1",
            "--policy",
            "missing.yaml",
        ],
    );
    assert_code(&r, 2, "missing policy file");
    assert!(
        r.stderr
            .contains("cannot read admission policy missing.yaml"),
        "{}",
        r.stderr
    );
    std::fs::write(
        tmp.path().join("ok.yaml"),
        format!(
            "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: all\n    images: [\"**\"]\n    authorities:\n{}",
            key_authority(PUBLIC_KEY)
        ),
    )
    .unwrap();
    let r = offline(
        tmp.path(),
        &["verify", "Not A Reference", "--policy", "ok.yaml"],
    );
    assert_code(&r, 2, "bad reference");
    assert!(
        r.stderr.contains("is not an image reference"),
        "{}",
        r.stderr
    );
    let r = offline(
        tmp.path(),
        &[
            "verify",
            "registry.example.com/team/app:v1",
            "--policy",
            "ok.yaml",
            "--namespace",
            "Prod",
        ],
    );
    assert_code(&r, 2, "bad namespace");
    assert!(r.stderr.contains("is not a namespace name"), "{}", r.stderr);
}

#[test]
fn flags_that_describe_a_policy_are_refused_with_policy() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("cosign.pub"), PUBLIC_KEY).unwrap();
    let image = "registry.example.com/team/app:v1";
    for (extra, named) in [
        (&["--key", "cosign.pub"][..], "'--key <FILE>'"),
        (
            &["--certificate-identity", "me@example.com"][..],
            "'--certificate-identity <IDENTITY>'",
        ),
        (
            &["--certificate-identity-regexp", "^me@"][..],
            "'--certificate-identity-regexp <REGEX>'",
        ),
        (
            &["--certificate-oidc-issuer", "https://issuer.example"][..],
            "'--certificate-oidc-issuer <URL>'",
        ),
        (
            &["--certificate-github-workflow-ref", "refs/heads/main"][..],
            "'--certificate-github-workflow-ref <REF>'",
        ),
        (&["--insecure-ignore-tlog"][..], "'--insecure-ignore-tlog'"),
        (&["-a", "env=prod"][..], "'--annotations <KEY=VALUE>'"),
    ] {
        let mut args = vec!["verify", image, "--policy", "policy.yaml"];
        args.extend_from_slice(extra);
        let r = offline(tmp.path(), &args);
        assert_code(&r, 2, named);
        assert!(
            r.stderr.contains(&format!(
                "the argument '--policy <FILE>' cannot be used with {named}"
            )),
            "{}",
            r.stderr
        );
    }
    // The namespace flags mean nothing without a policy.
    for extra in [
        &["--namespace", "prod"][..],
        &["--namespace-label", "tier=prod"],
    ] {
        let mut args = vec!["verify", image, "--key", "cosign.pub"];
        args.extend_from_slice(extra);
        let r = offline(tmp.path(), &args);
        assert_code(&r, 2, "namespace flags without --policy");
        assert!(
            r.stderr
                .contains("--namespace and --namespace-label only apply with --policy"),
            "{}",
            r.stderr
        );
    }
    // Still one of --key, --certificate-identity* or --policy is required.
    let r = offline(tmp.path(), &["verify", image]);
    assert_code(&r, 2, "no authority");
    assert!(r.stderr.contains("--policy <FILE>"), "{}", r.stderr);
}
