//! Our Tekton Tasks in real Tekton on the one-node cluster (issue 19 §3): every file of `tasks/` is created
//! through Tekton's own validating webhook, and a TaskRun of `kibaship-sign` as shipped signs an image of the
//! cluster's registry by digest with a cosign key from a Secret. `kibaship-step` runs in a Pod from an image of
//! ours (the test binary's build, with the libraries it links), the signature is checked from the host by the
//! real cosign, and the TaskRun's results are read back from its status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kibaship_testsupport::cluster::{SERVICE_ACCOUNT_ISSUER, TestCluster};
use kibaship_testsupport::peers::peer_binary;

/// How long a run may take to finish; the bound only keeps a broken cluster from hanging the test, nothing is
/// asserted about time.
const WAIT: Duration = Duration::from_secs(180);
const PASSWORD: &str = "tekton-cluster-test-password";

fn tasks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tasks")
}

/// Runs a peer in `dir` (its HOME, so nothing of the host's configuration is read); its stdout, or a panic with
/// its output.
fn peer(name: &str, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(peer_binary(name).expect("make peers"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("COSIGN_PASSWORD", PASSWORD)
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {}: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The names of the Tekton objects a YAML file of `tasks/` defines, as `kind/name` (lowercase kind).
fn objects_in(file: &Path) -> Vec<String> {
    let text = fs::read_to_string(file).unwrap();
    let mut objects = Vec::new();
    for document in text.split("\n---") {
        let field = |key: &str, indent: &str| {
            document.lines().find_map(|line| {
                line.strip_prefix(&format!("{indent}{key}: "))
                    .map(|v| v.trim().trim_matches('"').to_string())
            })
        };
        if let (Some(kind), Some(name)) = (field("kind", ""), field("name", "  ")) {
            objects.push(format!("{}/{name}", kind.to_lowercase()));
        }
    }
    objects
}

/// A TaskRun's outcome (see [`TestCluster::tekton_run_outcome`]).
fn finished(cluster: &TestCluster, run: &str) -> Option<String> {
    cluster.tekton_run_outcome("taskrun", run, WAIT)
}

/// A TaskRun's objects, its Pod's logs and the kubelet's, for a failure message.
fn describe(cluster: &TestCluster, run: &str) -> String {
    cluster.describe_tekton_runs(&format!("tekton.dev/taskRun={run}"))
}

/// A result of a TaskRun, from its status.
fn result(cluster: &TestCluster, run: &str, name: &str) -> String {
    cluster.task_run_result(run, name).unwrap()
}

#[test]
fn our_tasks_are_admitted_by_tekton_and_kibaship_sign_signs_with_a_key_and_keyless_with_the_pods_token()
 {
    let cluster = TestCluster::start().expect("cluster start");
    cluster.install_tekton().expect("install Tekton");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    // Every Task and Pipeline we ship, created for real: Tekton's webhook validates (and defaults) each.
    let mut expected = Vec::new();
    let mut files: Vec<PathBuf> = fs::read_dir(tasks_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        // Tekton objects only: `.tektonlintrc.yaml` is the linter's configuration.
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML in tasks/");
    for file in &files {
        let out = cluster.kubectl(&["create", "-f", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "Tekton refused {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        expected.extend(objects_in(file));
    }
    assert!(
        expected.contains(&"task/kibaship-sign".to_string()),
        "{expected:?}"
    );
    for object in &expected {
        cluster
            .kubectl_ok(&["get", object, "-o", "name"])
            .unwrap_or_else(|e| panic!("{object} not in the cluster after create: {e}"));
    }

    // The image the Task runs: kibaship-step where tasks/kibaship-sign.yaml calls it.
    let step_image = cluster
        .push_program_image(
            "kibaship/step:test",
            &[(
                Path::new(env!("CARGO_BIN_EXE_kibaship-step")),
                "/usr/local/bin/kibaship-step",
            )],
        )
        .expect("the kibaship-step image");

    // A cosign key pair made by the real cosign; the private half and its password in the Secret the Task
    // mounts; no registry credentials (the cluster's registry has none) in the docker-config Secret.
    peer("cosign", w, &["generate-key-pair"]);
    let key = fs::read_to_string(w.join("cosign.key")).unwrap();
    let secret = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": "kibaship-signing-key" },
        "stringData": { "cosign.key": key, "cosign.password": PASSWORD },
    });
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &secret.to_string())
        .unwrap();
    let docker_config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": "registry-docker-config" },
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": { ".dockerconfigjson": "{\"auths\":{}}" },
    });
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &docker_config.to_string())
        .unwrap();

    // The image to sign: the cluster's tools image, by digest.
    let image = cluster.tools_image().to_string();
    let digest = peer("crane", w, &["digest", "--insecure", &image]);
    assert!(digest.starts_with("sha256:"), "{digest}");

    let run = serde_json::json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": { "name": "sign-with-key" },
        "spec": {
            "taskRef": { "name": "kibaship-sign" },
            // As docs/tekton.md says: the Task runs as uid 1000 and its Secrets are mounted 0440.
            "podTemplate": { "securityContext": { "fsGroup": 1000 } },
            "params": [
                { "name": "image", "value": image },
                { "name": "digest", "value": digest },
                { "name": "mode", "value": "key" },
                { "name": "layout", "value": "both" },
                { "name": "annotations", "value": ["run=tekton-cluster-test"] },
                { "name": "insecureRegistry", "value": "true" },
                { "name": "kibashipImage", "value": step_image },
            ],
        },
    });
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &run.to_string())
        .unwrap();
    let status = finished(&cluster, "sign-with-key");
    let describe = |run: &str| describe(&cluster, run);
    assert_eq!(
        status.as_deref(),
        Some("True"),
        "{}",
        describe("sign-with-key")
    );
    assert_eq!(result(&cluster, "sign-with-key", "signedDigest"), digest);
    let repository = image.rsplit_once(':').unwrap().0;
    let signatures = result(&cluster, "sign-with-key", "signatures");
    let lines: Vec<&str> = signatures.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "one legacy and one bundle signature: {signatures}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(&format!(":{}.sig", digest.replace(':', "-")))),
        "the legacy .sig tag: {signatures}"
    );

    // The real cosign accepts what the Task wrote, in both layouts, with the annotation signed in.
    let by_digest = format!("{repository}@{digest}");
    for layout_flag in ["--new-bundle-format=false", "--new-bundle-format=true"] {
        let out = peer(
            "cosign",
            w,
            &[
                "verify",
                "--key",
                "cosign.pub",
                "--insecure-ignore-tlog",
                "--allow-http-registry",
                layout_flag,
                "-a",
                "run=tekton-cluster-test",
                &by_digest,
            ],
        );
        assert!(out.contains(&digest), "cosign verify {layout_flag}: {out}");
    }
    // Keyless, as a platform runs it: the Pod's projected service-account token (audience sigstore) is the
    // identity, and the private Sigstore's Fulcio trusts the cluster's service-account issuer. Fulcio reads the
    // issuer's discovery document without credentials, as a public issuer's.
    let sigstore = cluster
        .start_keyless_sigstore()
        .expect("the private Sigstore on the node address");
    let run = serde_json::json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": { "name": "sign-keyless" },
        "spec": {
            "taskRef": { "name": "kibaship-sign" },
            "podTemplate": { "securityContext": { "fsGroup": 1000 } },
            "params": [
                { "name": "image", "value": image },
                { "name": "digest", "value": digest },
                { "name": "mode", "value": "keyless" },
                { "name": "trustedRootPath", "value": "/kibaship/sigstore/trusted_root.json" },
                { "name": "insecureRegistry", "value": "true" },
                { "name": "kibashipImage", "value": step_image },
            ],
        },
    });
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &run.to_string())
        .unwrap();
    assert_eq!(
        finished(&cluster, "sign-keyless").as_deref(),
        Some("True"),
        "{}\nfulcio:\n{}",
        describe("sign-keyless"),
        fs::read_to_string(sigstore.work_dir().join("fulcio.log")).unwrap_or_default()
    );
    assert_eq!(result(&cluster, "sign-keyless", "signedDigest"), digest);
    let keyless_signatures = result(&cluster, "sign-keyless", "signatures");
    eprintln!("keyless TaskRun wrote: {keyless_signatures}");
    assert_eq!(
        keyless_signatures.lines().count(),
        1,
        "one bundle referrer (keyless defaults to the bundle layout): {keyless_signatures}"
    );
    let verify_keyless = |identity: &str| {
        sigstore
            .cosign_verify_keyless(&["verify"], identity, SERVICE_ACCOUNT_ISSUER, &by_digest, w)
            .unwrap()
    };
    let out = verify_keyless("https://kubernetes.io/namespaces/default/serviceaccounts/default");
    assert!(
        out.status.success(),
        "cosign verify of the Pod's keyless signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = verify_keyless("https://kubernetes.io/namespaces/default/serviceaccounts/builder");
    assert!(
        !other.status.success(),
        "cosign accepted another service account"
    );
    drop(sigstore);
    cluster.teardown().expect("teardown leaves nothing");
}
