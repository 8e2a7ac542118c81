//! Our Railpack Pipeline's Tasks in real Tekton on the one-node cluster (issue 19 §3): the shell app of
//! `testdata/railpack/apps/shell` is committed to a git repository served by `git daemon` on the node address,
//! cloned into a workspace by a TaskRun, and planned by a TaskRun of `railpack-prepare` as shipped
//! (tasks/railpack-prepare.yaml) running the real `railpack prepare` in a Pod, then built by a TaskRun of
//! `railpack-build` as shipped: rootless buildkitd in its sidecar (uid 1000, a user namespace with a subordinate
//! id range, seccomp unconfined, as the Task's securityContext says) with Railpack's frontend, and the image
//! pushed to the cluster's registry. Results are read back from the TaskRuns' status; the digest is checked
//! against buildctl's metadata file in the workspace and the registry's (crane). Then a PipelineRun of
//! `railpack-build-pipeline` (tasks/pipeline-railpack.yaml) runs clone -> prepare -> build (reused: same inputs)
//! -> scan (trivy, the gate policy from a ConfigMap) -> sign (a cosign key from a Secret) -> attest; the real
//! cosign verifies the signature and both attestations (our SLSA provenance, BuildKit's SBOM) from the host.
//! The same PipelineRun again with `signingMode: keyless` signs and attests with the Pods' service-account
//! tokens against a private Sigstore on the node address; the real cosign verifies both for that identity.
//! Stages' times are printed (never asserted).
//!
//! Stand-ins, each because the real thing needs the internet:
//! - The Pipeline's clone task comes from Tekton's cluster resolver (`tekton-task-git-clone-kibaship-com` in
//!   `tekton-pipelines`), which the test cluster does not install: the test creates `git-clone`, an equivalent
//!   Task (params `url`, `revision`; the clone in `repo/` of workspace `output`; result `commit`) running git.
//! - `ghcr.io/kibamail/kibaship-railpack-cli:<version>` is an image of the `railpack` peer, pushed to the
//!   cluster's registry, which the node uses as its mirror of `ghcr.io` (`TestCluster::mirror`). railpack v0.15.0
//!   looks for mise at a fixed path under `/tmp` (an emptyDir in the Task), so the image's `railpack` is a
//!   wrapper that links the image's mise there first, as `scripts/peers/railpack-prepare.sh` does on the host.
//! - `moby/buildkit:v0.34.2-rootless` is an image of the buildkit peer with Debian's rootlesskit, a buildkitd.toml
//!   that mirrors ghcr.io and docker.io to the cluster's registry (where `push_railpack_images` put the frontend,
//!   base and SBOM-scanner stand-ins), and newuidmap/newgidmap running with one capability as upstream's
//!   file-capability ones do (see `push_rootless_buildkit_image`).
//!
//! The TaskRuns share one workspace: a hostPath PersistentVolume (the cluster has no storage provisioner).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod tekton_support;

use std::fs;
use std::path::Path;
use std::process::Command;

use kibaship_testsupport::cluster::{NODE_IP, SERVICE_ACCOUNT_ISSUER, TestCluster};
use kibaship_testsupport::kube::wait_until;
use kibaship_testsupport::peers::peer_binary;
use kibaship_testsupport::workspace_binary;
use serde_json::{Value, json};
use tekton_support::*;

/// The admission policy deployed with the webhook and given to `kibaverify audit`: images of the project
/// `acme` need a signature by the Pipeline's key and our SLSA provenance of this commit, signed by it too.
fn admission_policy(registry: &str, public_key: &str, commit: &str) -> String {
    let key: String = public_key
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect();
    format!(
        "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: acme-builds\n    mode: enforce\n    images: [\"{registry}/kibaship/acme/**\"]\n    transparencyLog: optional\n    authorities:\n      - name: pipeline-key\n        key: |\n{key}    attestations:\n      - predicateType: https://slsa.dev/provenance/v1\n        checks:\n          - path: /buildDefinition/buildType\n            equals: {build_type}\n          - path: /buildDefinition/externalParameters/source/commit\n            equals: \"{commit}\"\n",
        build_type = kibaship_step::provenance::BUILD_TYPE,
    )
}

/// A Pod that runs `image` once (the shell app prints a line and exits).
fn run_once_pod(name: &str, namespace: &str, image: &str) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [{ "name": "app", "image": image }],
        },
    })
    .to_string()
}

/// Waits for a run-once Pod to finish; its phase and log.
fn finished_pod(cluster: &TestCluster, namespace: &str, name: &str) -> (String, String) {
    let phase = wait_until(TRIES, PAUSE, || {
        cluster
            .kubectl_ok(&[
                "get",
                "pod",
                "-n",
                namespace,
                name,
                "-o",
                "jsonpath={.status.phase}",
            ])
            .ok()
            .filter(|p| p == "Succeeded" || p == "Failed")
    })
    .unwrap_or_else(|| {
        panic!(
            "pod {namespace}/{name} did not finish: {}\nkubelet:\n{}",
            cluster
                .kubectl_ok(&["describe", "pod", "-n", namespace, name])
                .unwrap_or_default(),
            cluster.log_tail("kubelet")
        )
    });
    let log = cluster
        .kubectl_ok(&["logs", "-n", namespace, name])
        .unwrap_or_default();
    (phase, log)
}

/// Issue 19 §4, the end of the story: the image the PipelineRun built, signed and attested is deployed into a
/// namespace our admission webhook guards (deploy/ as shipped, the policy requiring the Pipeline's key and its
/// provenance) and runs; the same image copied unsigned, and another image carrying this one's signature, are
/// refused with their reason codes; in a namespace the webhook does not guard they run, and `kibaverify audit`
/// over the cluster reports all three.
fn admission_end_to_end(
    cluster: &TestCluster,
    registry: &str,
    image: &str,
    digest: &str,
    commit: &str,
    w: &Path,
    stages: &mut Stages,
) {
    let crane = peer_binary("crane").expect("make peers (crane)");
    let crane = |args: &[&str]| run(Command::new(&crane).args(args).env("HOME", w));
    let public_key = fs::read_to_string(w.join("cosign.pub")).unwrap();
    let policy = admission_policy(registry, &public_key, commit);
    let webhook = workspace_binary("kibaship-webhook").expect("the webhook binary");
    if let Err(e) = cluster.deploy_webhook(&webhook, &policy) {
        panic!("the webhook was not deployed: {e}");
    }
    cluster
        .kubectl_ok(&["create", "namespace", "prod"])
        .expect("namespace prod");
    cluster
        .kubectl_ok(&["label", "namespace", "prod", "kibaship.io/verify=enforce"])
        .expect("label prod");
    cluster
        .kubectl_ok(&["create", "namespace", "dev"])
        .expect("namespace dev");
    // The same image, unsigned: a copy in another repository of the project (signatures live beside the image).
    let repository = image.rsplit_once(':').unwrap().0;
    let unsigned = format!("{registry}/kibaship/acme/unsigned:{commit}");
    crane(&["copy", "--insecure", image, &unsigned]);
    // Another image (the cluster's tools image) carrying the built image's signature under its own digest.
    let retagged = format!("{registry}/kibaship/acme/retagged:1");
    crane(&["copy", "--insecure", cluster.tools_image(), &retagged]);
    let other = crane(&["digest", "--insecure", &retagged]);
    let signature_tag = |d: &str| format!("{}.sig", d.replace(':', "-"));
    crane(&[
        "copy",
        "--insecure",
        &format!("{repository}:{}", signature_tag(digest)),
        &format!(
            "{registry}/kibaship/acme/retagged:{}",
            signature_tag(&other)
        ),
    ]);
    stages.done("webhook deployed, images prepared");

    // Admitted, pinned to its digest, and it runs: the shell app's line in the Pod's log.
    if let Err(e) = cluster.create_through_webhook(&run_once_pod("app", "prod", image)) {
        panic!(
            "the built image was not admitted: {e}\n{}",
            cluster.webhook_diagnostics()
        );
    }
    let pinned = cluster
        .kubectl_ok(&[
            "get",
            "pod",
            "-n",
            "prod",
            "app",
            "-o",
            "jsonpath={.spec.containers[0].image}",
        ])
        .unwrap();
    assert_eq!(pinned, format!("{image}@{digest}"), "pinned by /mutate");
    let (phase, log) = finished_pod(cluster, "prod", "app");
    assert_eq!(phase, "Succeeded", "{log}");
    assert_eq!(log.trim(), "hello from the kibaship shell fixture");

    // Refused, each with its reason code.
    for (name, refused_image, code) in [
        ("unsigned", unsigned.as_str(), "unsigned"),
        ("retagged", retagged.as_str(), "digest-mismatch"),
    ] {
        let denial = cluster
            .create_through_webhook(&run_once_pod(name, "prod", refused_image))
            .err()
            .unwrap_or_else(|| panic!("{refused_image} was admitted in prod"))
            .to_string();
        assert!(
            denial.contains("denied the request") && denial.contains(code),
            "{name}: wanted {code}: {denial}"
        );
    }
    stages.done("admission in prod");

    // Where the webhook does not look, both run; the audit says what it would have answered.
    for (name, run_image) in [("unsigned", &unsigned), ("retagged", &retagged)] {
        cluster
            .kubectl_stdin_ok(
                &["create", "-f", "-"],
                &run_once_pod(name, "dev", run_image),
            )
            .unwrap();
    }
    finished_pod(cluster, "dev", "unsigned");
    let policy_file = w.join("admission-policy.yaml");
    fs::write(&policy_file, &policy).unwrap();
    let audit = Command::new(workspace_binary("kibaverify").expect("the kibaverify binary"))
        .args(["audit", "--kubeconfig"])
        .arg(cluster.kubeconfig_path())
        .args(["--all-namespaces", "--policy"])
        .arg(&policy_file)
        .args(["--insecure-registry", registry, "--output", "json"])
        .env("HOME", w)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&audit.stdout).unwrap_or_else(|e| {
        panic!(
            "audit JSON: {e}\n{}",
            String::from_utf8_lossy(&audit.stderr)
        )
    });
    assert_eq!(
        audit.status.code(),
        Some(1),
        "--fail-on denied (the default) with denials: {}",
        String::from_utf8_lossy(&audit.stderr)
    );
    let workload = |namespace: &str, name: &str| -> Value {
        report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["namespace"] == namespace && w["name"] == name && w["kind"] == "Pod")
            .cloned()
            .unwrap_or_else(|| panic!("{namespace}/{name} not in the audit: {report:#}"))
    };
    let app = workload("prod", "app");
    assert_eq!(app["answer"], "admit", "{app:#}");
    assert_eq!(app["containers"][0]["digest"], digest, "{app:#}");
    for (name, code) in [("unsigned", "unsigned"), ("retagged", "digest-mismatch")] {
        let found = workload("dev", name);
        assert_eq!(found["answer"], "deny", "{found:#}");
        assert_eq!(found["code"], code, "{found:#}");
    }
    let built = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["digest"] == digest && i["status"] == "verified")
        .unwrap_or_else(|| panic!("the built image is not verified in the audit: {report:#}"));
    assert!(
        built["attestations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["predicateType"] == "https://slsa.dev/provenance/v1"),
        "{built:#}"
    );
    stages.done("audit over the cluster");
}

/// The Pipeline signing keyless, as a platform runs it: `pipeline_run` again as `keyless` with `signingMode`
/// `keyless`. The sign, scan and attest Pods' projected service-account tokens (audience `sigstore`) are their
/// identity; a private Sigstore on the node address (Fulcio trusting the cluster's service-account issuer,
/// Rekor, TSA) is named by the `kibaship-sigstore` ConfigMap the Tasks mount. The build is reused (same inputs),
/// and the real cosign verifies the keyless signature and provenance of `digest` for the `default` service
/// account, and refuses them for another.
fn keyless_pipeline_run(
    cluster: &TestCluster,
    pipeline_run: &Value,
    digest: &str,
    receiver: &NotificationReceiver,
    w: &Path,
) {
    let sigstore = cluster
        .start_keyless_sigstore()
        .expect("the private Sigstore on the node address");
    let mut keyless = pipeline_run.clone();
    keyless["metadata"]["name"] = json!("keyless");
    for param in keyless["spec"]["params"].as_array_mut().unwrap() {
        if param["name"] == "signingMode" {
            param["value"] = json!("keyless");
        }
    }
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &keyless.to_string())
        .unwrap();
    let outcome = finished(cluster, "pipelinerun", "keyless");
    assert_eq!(
        outcome.as_deref(),
        Some("True"),
        "{}\n--- fulcio\n{}",
        describe(cluster, "tekton.dev/pipelineRun=keyless"),
        fs::read_to_string(sigstore.work_dir().join("fulcio.log")).unwrap_or_default()
    );
    assert_eq!(task_result(cluster, "keyless-sign", "signedDigest"), digest);
    let signatures = task_result(cluster, "keyless-sign", "signatures");
    eprintln!("keyless signatures: {signatures}");
    assert!(!signatures.trim().is_empty(), "no signatures result");
    let by_digest = format!(
        "{}@{digest}",
        task_result(cluster, "keyless-build", "image")
            .rsplit_once(':')
            .unwrap()
            .0
    );
    let cosign = |verb: &[&str], identity: &str| {
        sigstore
            .cosign_verify_keyless(verb, identity, SERVICE_ACCOUNT_ISSUER, &by_digest, w)
            .unwrap()
    };
    let pipeline_identity = "https://kubernetes.io/namespaces/default/serviceaccounts/default";
    for verb in [
        &["verify"][..],
        &["verify-attestation", "--type", "slsaprovenance1"][..],
    ] {
        let out = cosign(verb, pipeline_identity);
        assert!(
            out.status.success(),
            "cosign {verb:?} of the PipelineRun's keyless signing: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let other = cosign(
            verb,
            "https://kubernetes.io/namespaces/default/serviceaccounts/builder",
        );
        assert!(
            !other.status.success(),
            "cosign {verb:?} accepted another service account"
        );
    }
    // finally: the third notification (after the key-signed run's and the failing run's) is this run's.
    let events = receiver.events();
    assert_eq!(events.len(), 3, "{}", receiver.log());
    assert_eq!(events[2]["status"], "succeeded", "{}", events[2]);
    assert_eq!(events[2]["digest"], digest, "{}", events[2]);
    drop(sigstore);
}

#[test]
fn railpack_build_pipeline_clones_builds_scans_and_signs_in_real_tekton() {
    let mut stages = Stages::new();
    let cluster = TestCluster::start().expect("cluster start");
    stages.done("cluster start (lock wait included)");
    cluster.install_tekton().expect("install Tekton");
    stages.done("Tekton installed");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    // The source: the shell app committed to a bare repository that git daemon serves on the node address.
    let (daemon, git_url, commits) = serve_shell_app(w, 1);
    let commit = commits[0].clone();
    let app = repo_root().join(SHELL_APP);

    let installed = install_pipeline(&cluster, w);
    let registry = installed.registry.clone();
    let step_image = installed.step_image.clone();
    let workspace = w.join("workspace");
    workspace_claim(&cluster, "build-workspace", &workspace);
    let ws =
        json!({ "name": "output", "persistentVolumeClaim": { "claimName": "build-workspace" } });
    stages.done("images, Tasks, Pipeline and workspace");

    // Clone.
    let clone = clone_run(&git_url, &commit, &ws);
    run_to_success(&cluster, "taskrun", &clone);
    assert_eq!(task_result(&cluster, "clone", "commit"), commit);
    assert_eq!(
        fs::read(workspace.join("repo/start.sh")).unwrap(),
        fs::read(app.join("start.sh")).unwrap()
    );
    stages.done("clone TaskRun");

    // railpack-prepare as shipped: the real railpack prepare in the Pod.
    let prepare = prepare_run(&step_image, &ws, &[]);
    run_to_success(&cluster, "taskrun", &prepare);
    let plan_path = task_result(&cluster, "prepare", "planPath");
    let info_path = task_result(&cluster, "prepare", "infoPath");
    let in_pod = "/workspace/output/";
    let plan_file = workspace.join(
        plan_path
            .strip_prefix(in_pod)
            .unwrap_or_else(|| panic!("planPath {plan_path} is not in the workspace")),
    );
    let plan: Value = serde_json::from_slice(&fs::read(&plan_file).unwrap()).unwrap();
    assert_eq!(plan["deploy"]["startCommand"], "sh start.sh", "{plan}");
    assert_eq!(
        plan["deploy"]["base"]["image"],
        "ghcr.io/railwayapp/railpack-runtime:latest"
    );
    assert!(
        info_path.starts_with(in_pod) && info_path.ends_with("/info.json"),
        "{info_path}"
    );
    stages.done("railpack-prepare TaskRun");

    // railpack-build as shipped: rootless buildkitd in the Pod (the sidecar's securityContext as the Task has
    // it) with Railpack's frontend, the base stand-ins and the SBOM scanner from the cluster's registry.
    let build = json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": { "name": "build" },
        "spec": {
            "taskRef": { "name": "railpack-build" },
            "podTemplate": { "securityContext": { "fsGroup": 1000 } },
            "params": [
                { "name": "planPath", "value": plan_path },
                { "name": "infoPath", "value": info_path },
                { "name": "gitCommit", "value": commit },
                { "name": "sourceUrl", "value": git_url },
                { "name": "imageRegistry", "value": registry },
                { "name": "imageRepository", "value": REPOSITORY },
                { "name": "cacheKey", "value": "tenant-acme" },
                { "name": "insecureRegistry", "value": "true" },
                { "name": "kibashipImage", "value": step_image },
            ],
            "workspaces": [ws],
        },
    });
    run_to_success(&cluster, "taskrun", &build);
    let image = task_result(&cluster, "build", "image");
    assert_eq!(image, format!("{registry}/{REPOSITORY}:{commit}"));
    let digest = task_result(&cluster, "build", "digest");
    let metadata: Value = serde_json::from_slice(
        &fs::read(workspace.join("railpack/buildctl-metadata.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(metadata["containerimage.digest"], digest.as_str());
    let crane = peer_binary("crane").expect("make peers (crane)");
    let served = run(Command::new(&crane)
        .args(["digest", "--insecure", &image])
        .env("HOME", w));
    assert_eq!(served, digest, "the registry's digest of {image}");
    let sbom_ref = task_result(&cluster, "build", "sbomRef");
    assert!(
        sbom_ref.starts_with(&format!("{registry}/{REPOSITORY}@sha256:")),
        "{sbom_ref}"
    );
    eprintln!(
        "built {image}@{digest} in {}",
        task_result(&cluster, "build", "buildDuration")
    );
    stages.done("railpack-build TaskRun");

    // The whole Pipeline: clone -> prepare -> build (the same inputs: the build is reused) -> scan -> sign ->
    // attest, finally notify (to a receiver of the test's).
    let receiver = NotificationReceiver::start(w, NOTIFY_KEY);
    let pipeline_run = json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": { "name": "shell" },
        "spec": {
            "pipelineRef": { "name": "railpack-build-pipeline" },
            "taskRunTemplate": { "podTemplate": { "securityContext": { "fsGroup": 1000 } } },
            "params": [
                { "name": "gitUrl", "value": git_url },
                { "name": "gitCommit", "value": commit },
                { "name": "projectSlug", "value": "acme" },
                { "name": "appSlug", "value": "shell" },
                { "name": "imageRegistry", "value": registry },
                { "name": "cacheKey", "value": "tenant-acme" },
                { "name": "signingMode", "value": "key" },
                { "name": "insecureRegistry", "value": "true" },
                { "name": "notifyUrl", "value": receiver.url() },
                // Every task's driver image from the PipelineRun (the test's name, not the Tasks' default).
                { "name": "kibashipImage", "value": step_image },
                { "name": "gitBranch", "value": "refs/heads/main" },
                { "name": "environment", "value": "staging" },
                { "name": "promotions", "value": ["prod"] },
            ],
            "workspaces": [
                { "name": "ws", "persistentVolumeClaim": { "claimName": "build-workspace" } },
            ],
        },
    });
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &pipeline_run.to_string())
        .unwrap();
    let outcome = finished(&cluster, "pipelinerun", "shell");
    let task_status = |task: &str| {
        cluster
            .kubectl_ok(&[
                "get",
                "taskrun",
                &format!("shell-{task}"),
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Succeeded\")].status}",
            ])
            .unwrap_or_default()
    };
    let statuses: Vec<(&str, String)> =
        ["clone", "prepare", "build", "scan", "sign", "attest", "tag"]
            .into_iter()
            .map(|task| (task, task_status(task)))
            .collect();
    eprintln!("PipelineRun {outcome:?}, tasks {statuses:?}");
    for (task, status) in &statuses {
        assert_eq!(
            status,
            "True",
            "task {task}: {}",
            describe(&cluster, "tekton.dev/pipelineRun=shell")
        );
    }
    assert_eq!(outcome.as_deref(), Some("True"), "{statuses:?}");
    let run_result = |run: &str, name: &str| task_result(&cluster, run, name);
    assert_eq!(run_result("shell-build", "image"), image);
    assert_eq!(
        run_result("shell-build", "digest"),
        digest,
        "the reused build's digest"
    );
    assert_eq!(run_result("shell-scan", "verdict"), "pass");
    assert_eq!(run_result("shell-sign", "signedDigest"), digest);
    let signatures = run_result("shell-sign", "signatures");
    assert!(!signatures.trim().is_empty(), "no signatures result");
    eprintln!("signatures: {signatures}");
    // The real cosign accepts the signature the Pipeline wrote, for the digest the registry serves.
    let verified = run(Command::new(peer_binary("cosign").unwrap())
        .args([
            "verify",
            "--key",
            "cosign.pub",
            "--insecure-ignore-tlog",
            "--allow-http-registry",
            &format!("{registry}/{REPOSITORY}@{digest}"),
        ])
        .current_dir(w)
        .env("HOME", w));
    assert!(verified.contains(&digest), "{verified}");
    // The attest task's provenance and BuildKit's SBOM (trivy's SPDX, which spells primaryPackagePurpose as the
    // SPDX 2.3 text does), attested with the same key: the real cosign accepts both predicate types.
    let attestations = run_result("shell-attest", "attestations");
    assert!(!attestations.trim().is_empty(), "no attestations result");
    eprintln!("attestations: {attestations}");
    for predicate_type in ["slsaprovenance1", "spdxjson"] {
        let out = run(Command::new(peer_binary("cosign").unwrap())
            .args([
                "verify-attestation",
                "--type",
                predicate_type,
                "--key",
                "cosign.pub",
                "--insecure-ignore-tlog",
                "--allow-http-registry",
                &format!("{registry}/{REPOSITORY}@{digest}"),
            ])
            .current_dir(w)
            .env("HOME", w));
        assert!(
            !out.trim().is_empty(),
            "cosign verify-attestation --type {predicate_type}"
        );
    }
    // The tag task put the design's tags on the signed digest, without a rebuild.
    let tags = run_result("shell-tag", "tags");
    let expected: Vec<String> = ["branch-main", "latest-staging", "prod"]
        .iter()
        .map(|t| format!("{registry}/{REPOSITORY}:{t}"))
        .collect();
    assert_eq!(tags.lines().collect::<Vec<_>>(), expected, "{tags}");
    for tagged in &expected {
        let served = run(Command::new(&crane)
            .args(["digest", "--insecure", tagged])
            .env("HOME", w));
        assert_eq!(served, digest, "{tagged}");
    }
    let pods: Vec<String> = cluster
        .kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "tekton.dev/pipelineRun=shell",
            "-o",
            "jsonpath={range .items[*]}{.spec.containers[*].image}{\"\\n\"}{end}",
        ])
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        pods.iter()
            .filter(|images| !images.contains("kibaship/git:test"))
            .all(|images| images.contains(&step_image)),
        "a task ran without the PipelineRun's kibashipImage: {pods:?}"
    );
    stages.done("PipelineRun");

    // finally: kibaship-notify POSTed the outcome to the platform's receiver, signed with the Secret's key.
    assert_eq!(run_result("shell-notify", "delivered"), "true");
    // The receiver appends only notifications whose HMAC, timestamp and Idempotency-Key (the run's UID) it
    // verified: one, so the signature checked and nothing was retried.
    let events = receiver.events();
    assert_eq!(events.len(), 1, "one verified delivery: {}", receiver.log());
    let uid = cluster
        .kubectl_ok(&[
            "get",
            "pipelinerun",
            "shell",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .unwrap();
    let event = &events[0];
    let body = event.to_string();
    assert_eq!(event["event"], "kibaship.build.finished");
    assert_eq!(event["status"], "succeeded", "{event}");
    assert_eq!(event["pipelineRun"]["uid"], uid.as_str());
    assert_eq!(event["image"], image.as_str());
    assert_eq!(event["digest"], digest.as_str());
    assert_eq!(event["verdicts"]["scan"], "pass");
    assert!(
        !event["signatures"].as_array().unwrap().is_empty(),
        "{event}"
    );
    let printed = receiver.log();
    for secret in [PASSWORD, NOTIFY_KEY] {
        assert!(
            !body.contains(secret) && !printed.contains(secret),
            "a secret in the notification"
        );
    }
    stages.done("notification checked");

    // A PipelineRun whose build fails: its registry refuses connections (nothing listens on the node's port 1).
    // The build step exits with the registry failure code (75) in both attempts (the task has one retry), nothing
    // after it runs, and the failure notification names the failed task and its kind. (A build that fails inside
    // BuildKit needs an app whose plan runs a failing command: the offline providers here, shell and static, only
    // copy files, which BuildKit does for any platform.)
    let mut broken = pipeline_run.clone();
    broken["metadata"]["name"] = json!("broken");
    for param in broken["spec"]["params"].as_array_mut().unwrap() {
        if param["name"] == "imageRegistry" {
            param["value"] = json!(format!("{NODE_IP}:1"));
        }
    }
    // The build Pod asks 1.15 CPU (1 for the buildkitd sidecar), so on this 2-CPU node the retry's Pod can only be
    // scheduled once the failed attempt's sidecar has stopped. Tekton's own sidecars stop only when the TaskRun is
    // done; as Kubernetes native sidecars (`enable-kubernetes-sidecar`, set by install_pipeline) the kubelet stops
    // them when the steps exit (docs/tekton.md, "Retries and the buildkitd sidecar").
    cluster
        .kubectl_stdin_ok(&["create", "-f", "-"], &broken.to_string())
        .unwrap();
    let outcome = finished(&cluster, "pipelinerun", "broken");
    assert_eq!(
        outcome.as_deref(),
        Some("False"),
        "{}",
        describe(&cluster, "tekton.dev/pipelineRun=broken")
    );
    let reason = cluster
        .kubectl_ok(&[
            "get",
            "taskrun",
            "broken-build",
            "-o",
            "jsonpath={.status.conditions[0].reason} {.status.conditions[0].message}",
        ])
        .unwrap();
    assert!(reason.starts_with("Failed"), "{reason}");
    let build_run: Value = serde_json::from_str(
        &cluster
            .kubectl_ok(&["get", "taskrun", "broken-build", "-o", "json"])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        failed_exit_codes(&build_run["status"]),
        [75],
        "the registry failure's exit code: {reason}"
    );
    let retries = build_run["status"]["retriesStatus"].as_array().unwrap();
    assert_eq!(retries.len(), 1, "the build task's one retry");
    assert_eq!(failed_exit_codes(&retries[0]), [75]);
    // The failed attempt's Pod ended whole, its buildkitd included, so its CPU request went back to the node.
    let first_pod = retries[0]["podName"].as_str().unwrap();
    let pod: Value = serde_json::from_str(
        &cluster
            .kubectl_ok(&["get", "pod", first_pod, "-o", "json"])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(pod["status"]["phase"], "Failed", "{}", pod["status"]);
    let containers: Vec<&Value> = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .flat_map(|key| pod["status"][key].as_array().into_iter().flatten())
        .collect();
    let sidecar = containers
        .iter()
        .find(|c| c["name"] == "sidecar-buildkitd")
        .unwrap_or_else(|| panic!("no buildkitd container in {}", pod["status"]));
    assert!(
        sidecar["state"]["terminated"].is_object(),
        "the failed attempt's buildkitd still runs: {sidecar}"
    );
    for skipped in ["broken-scan", "broken-sign"] {
        assert!(
            cluster.kubectl_ok(&["get", "taskrun", skipped]).is_err(),
            "{skipped} ran after the failed build"
        );
    }
    assert_eq!(run_result("broken-notify-failure", "delivered"), "true");
    let events = receiver.events();
    assert_eq!(
        events.len(),
        2,
        "one failure notification: {}",
        receiver.log()
    );
    let event = &events[1];
    assert_eq!(event["status"], "failed", "{event}");
    assert_eq!(event["failureKind"], "build", "{event}");
    assert_eq!(event["failedTask"], "build", "{event}");
    assert_eq!(event["digest"], Value::Null, "{event}");
    stages.done("failing PipelineRun");

    admission_end_to_end(
        &cluster,
        &registry,
        &image,
        &digest,
        &commit,
        w,
        &mut stages,
    );

    keyless_pipeline_run(&cluster, &pipeline_run, &digest, &receiver, w);
    stages.done("keyless PipelineRun");

    drop(receiver);
    drop(daemon);
    cluster.teardown().expect("teardown leaves nothing");
    stages.done("teardown");
    stages.print();
}
