//! `deploy/` (docs/webhook-deploy.md) against the real kube-apiserver: the Kustomize base, the overlays and the
//! priority-class component render with kubectl's built-in kustomize and pass the API server's own validation
//! (`kubectl apply --dry-run=server`); the rendered objects say what the docs say (fail closed, no side effects,
//! a timeout above the webhook's budget, kube-system and kibaship-system never selected, two hardened replicas,
//! files mounted as directories); and the webhook configurations, applied for real while no webhook runs, refuse
//! requests in a namespace labelled `kibaship.io/verify: enforce` and nowhere else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kibaship_testsupport::kube::{KubeApiServer, WEBHOOK_PAUSE, WEBHOOK_TRIES, wait_until};
use serde_json::{Value, json};

const NAMESPACE: &str = "kibaship-system";
const IMAGE: &str = "ghcr.io/kibaship/kibaship:0.1.0";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

/// A copy of `deploy/` in a temp dir. Kustomize takes a base only by a relative path, so test overlays, and the
/// certificate files `overlays/provided-tls` wants, are added next to the real ones in a copy.
fn deploy_copy() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&deploy_dir(), &dir.path().join("deploy"));
    dir
}

/// The objects of a `kubectl ... -o json` answer: a List, one object, or (from `create`) objects one after the
/// other.
fn items(json: &str) -> Vec<Value> {
    let mut objects = Vec::new();
    for value in serde_json::Deserializer::from_str(json).into_iter::<Value>() {
        let value = value.unwrap();
        match value["items"].as_array() {
            Some(items) if value["kind"] == "List" => objects.extend(items.iter().cloned()),
            _ => objects.push(value),
        }
    }
    objects
}

/// `kubectl kustomize dir`, as JSON objects (kubectl converts them client-side; nothing is sent).
fn render(api: &KubeApiServer, dir: &Path) -> Vec<Value> {
    let yaml = api.kubectl_ok(&["kustomize", &path_arg(dir)]).unwrap();
    let json = api
        .kubectl_stdin_ok(
            &["create", "--dry-run=client", "-o", "json", "-f", "-"],
            &yaml,
        )
        .unwrap();
    items(&json)
}

/// `kubectl apply --dry-run=server -k dir`: the API server validates and defaults every object, runs admission,
/// and stores nothing. Returns the objects as the server would store them, and kubectl's stderr (warnings).
fn dry_run(api: &KubeApiServer, dir: &Path) -> (Vec<Value>, String) {
    let out = api.kubectl(&[
        "apply",
        "--dry-run=server",
        "-o",
        "json",
        "-k",
        &path_arg(dir),
    ]);
    assert!(
        out.status.success(),
        "dry run of {} failed: {}",
        dir.display(),
        stderr(&out)
    );
    (items(&String::from_utf8_lossy(&out.stdout)), stderr(&out))
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {}", summary(objects)))
}

fn summary(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
        .collect::<Vec<_>>()
        .join(", ")
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `--flag value` from a container's args.
fn flag<'a>(args: &'a [&'a str], name: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| *a == name)
        .unwrap_or_else(|| panic!("no {name} in {args:?}"));
    args.get(at + 1)
        .unwrap_or_else(|| panic!("{name} has no value"))
}

/// A container port given by number or by name.
fn resolve_port(container: &Value, port: &Value) -> i64 {
    if let Some(n) = port.as_i64() {
        return n;
    }
    let name = port.as_str().unwrap();
    container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_i64())
        .unwrap_or_else(|| panic!("no container port named {name}"))
}

/// Every `key: value` of `selector` is a label of `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().unwrap();
    !selector.is_empty() && selector.iter().all(|(k, v)| labels[k] == *v)
}

/// A base64 field (`data`, `caBundle`), decoded as the API server does: line breaks skipped.
fn decoded(v: &Value) -> Vec<u8> {
    let text: String = v.as_str().unwrap().split_whitespace().collect();
    STANDARD.decode(text).unwrap()
}

fn seconds(duration: &str) -> u64 {
    duration
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("budget {duration:?} is not whole seconds"))
}

/// The two webhook configurations of a rendering.
fn webhook_configurations(objects: &[Value]) -> [&Value; 2] {
    [
        find(objects, "MutatingWebhookConfiguration", "kibaship-webhook"),
        find(
            objects,
            "ValidatingWebhookConfiguration",
            "kibaship-webhook",
        ),
    ]
}

/// Creates the base's Namespace for real (objects cannot be dry-run into a namespace that does not exist).
fn create_namespace(api: &KubeApiServer, objects: &[Value]) {
    let namespace = find(objects, "Namespace", NAMESPACE);
    api.kubectl_stdin_ok(&["apply", "-f", "-"], &namespace.to_string())
        .unwrap();
}

#[test]
fn base_renders_passes_the_dry_run_and_says_what_the_docs_say() {
    let api = KubeApiServer::start().unwrap();
    let base = deploy_dir().join("base");
    let objects = render(&api, &base);

    // Everything namespaced is in kibaship-system.
    for o in &objects {
        let cluster_scoped = [
            "Namespace",
            "ClusterRole",
            "ClusterRoleBinding",
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ]
        .contains(&o["kind"].as_str().unwrap());
        if !cluster_scoped {
            assert_eq!(
                o["metadata"]["namespace"],
                NAMESPACE,
                "{}",
                summary(std::slice::from_ref(o))
            );
        }
    }

    // The Deployment.
    let deployment = find(&objects, "Deployment", "kibaship-webhook");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let template = &spec["template"];
    let pod_labels = &template["metadata"]["labels"];
    assert!(selects(&spec["selector"]["matchLabels"], pod_labels));
    let pod = &template["spec"];
    assert_eq!(pod["serviceAccountName"], "kibaship-webhook");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(pod["securityContext"]["runAsUser"].as_i64().unwrap() > 0);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert!(
        pod.get("priorityClassName").is_none(),
        "optional: components/priority-class"
    );
    let preferred =
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .unwrap();
    assert!(
        preferred.iter().any(|t| {
            t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
                && selects(
                    &t["podAffinityTerm"]["labelSelector"]["matchLabels"],
                    pod_labels,
                )
        }),
        "{preferred:?}"
    );
    assert!(
        pod["affinity"]["podAntiAffinity"]
            .get("requiredDuringSchedulingIgnoredDuringExecution")
            .is_none(),
        "anti-affinity is a preference: a one-node cluster still runs both replicas"
    );
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(container["image"], IMAGE);
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);
    assert!(security["capabilities"].get("add").is_none());
    assert_ne!(security["privileged"], true);
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][kind][resource].is_string(),
                "resources.{kind}.{resource} missing"
            );
        }
    }
    assert_eq!(
        container["env"],
        json!([{ "name": "POD_NAMESPACE", "valueFrom": { "fieldRef": { "fieldPath": "metadata.namespace" } } }])
    );

    // Command line, ports and probes agree.
    assert_eq!(strings(&container["command"]), ["kibaship-webhook"]);
    let args = strings(&container["args"]);
    assert_eq!(args[0], "serve");
    assert_eq!(flag(&args, "--listen"), "0.0.0.0:8443");
    assert_eq!(flag(&args, "--metrics-listen"), "0.0.0.0:9090");
    assert_eq!(resolve_port(container, &json!("https")), 8443);
    assert_eq!(resolve_port(container, &json!("metrics")), 9090);
    let readiness = &container["readinessProbe"]["httpGet"];
    assert_eq!(readiness["path"], "/readyz");
    assert_eq!(resolve_port(container, &readiness["port"]), 9090);
    assert!(readiness.get("scheme").is_none_or(|s| s == "HTTP"));
    let liveness = &container["livenessProbe"]["httpGet"];
    assert_eq!(liveness["path"], "/healthz");
    assert_eq!(resolve_port(container, &liveness["port"]), 9090);
    let budget = seconds(flag(&args, "--budget"));

    // Each file the command line names lives in a directory mount (never subPath) of the right volume, and the
    // volume's source has that file as a key.
    let mounts = container["volumeMounts"].as_array().unwrap();
    for mount in mounts {
        assert!(
            mount.get("subPath").is_none() && mount.get("subPathExpr").is_none(),
            "subPath mounts never receive updates: {mount}"
        );
    }
    let volumes = pod["volumes"].as_array().unwrap();
    let volume_of_file = |path: &str| -> (&Value, String) {
        let (dir, file) = path.rsplit_once('/').unwrap();
        let mount = mounts
            .iter()
            .find(|m| m["mountPath"] == dir)
            .unwrap_or_else(|| panic!("no mount at {dir} for {path}"));
        assert_eq!(mount["readOnly"], true, "{mount}");
        let volume = volumes.iter().find(|v| v["name"] == mount["name"]).unwrap();
        (volume, file.to_string())
    };
    let (tls, cert_file) = volume_of_file(flag(&args, "--tls-cert"));
    let (tls_again, key_file) = volume_of_file(flag(&args, "--tls-key"));
    assert_eq!(tls, tls_again);
    assert_eq!(tls["secret"]["secretName"], "kibaship-webhook-tls");
    // The keys of a kubernetes.io/tls Secret.
    assert_eq!(
        (cert_file.as_str(), key_file.as_str()),
        ("tls.crt", "tls.key")
    );
    for (flag_name, config_map) in [
        ("--policy", "kibaship-policy"),
        ("--trusted-root", "kibaship-trust"),
    ] {
        let (volume, file) = volume_of_file(flag(&args, flag_name));
        assert_eq!(volume["configMap"]["name"], config_map);
        assert!(volume["configMap"].get("items").is_none());
        let data = &find(&objects, "ConfigMap", config_map)["data"];
        assert!(
            data[&file].is_string(),
            "ConfigMap {config_map} has no {file}"
        );
    }
    let trust = find(&objects, "ConfigMap", "kibaship-trust")["data"]["trusted_root.json"]
        .as_str()
        .unwrap();
    kibaship_sigstore::TrustedRoot::from_json(trust.as_bytes()).unwrap();
    let policy = find(&objects, "ConfigMap", "kibaship-policy")["data"]["policy.yaml"]
        .as_str()
        .unwrap();
    assert!(policy.contains("kind: AdmissionPolicy"), "{policy}");
    let begin = policy.find("-----BEGIN PUBLIC KEY-----").unwrap();
    let end = policy.find("-----END PUBLIC KEY-----").unwrap() + "-----END PUBLIC KEY-----".len();
    let key: Vec<&str> = policy[begin..end].lines().map(str::trim).collect();
    let key = key.join("\n");
    let key = kibaship_sigstore::PublicKey::from_pem(&key).unwrap();
    assert_eq!(key.kind(), kibaship_sigstore::KeyKind::EcdsaP256);

    // The Service reaches the container's ports; the PodDisruptionBudget keeps one of the two replicas.
    let service = find(&objects, "Service", "kibaship-webhook");
    assert!(selects(&service["spec"]["selector"], pod_labels));
    let service_ports = service["spec"]["ports"].as_array().unwrap();
    let port_443 = service_ports.iter().find(|p| p["port"] == 443).unwrap();
    assert_eq!(resolve_port(container, &port_443["targetPort"]), 8443);
    let metrics = service_ports.iter().find(|p| p["port"] == 9090).unwrap();
    assert_eq!(resolve_port(container, &metrics["targetPort"]), 9090);
    let pdb = find(&objects, "PodDisruptionBudget", "kibaship-webhook");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"], pod_labels));

    // RBAC: exactly what the webhook reads, bound to its service account.
    let role = find(&objects, "ClusterRole", "kibaship-webhook");
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        assert_eq!(strings(&rule["apiGroups"]), [""], "{rule}");
        assert!(rule.get("resourceNames").is_none());
        for resource in strings(&rule["resources"]) {
            for verb in strings(&rule["verbs"]) {
                granted.insert((resource.to_string(), verb.to_string()));
            }
        }
    }
    let expected: BTreeSet<(String, String)> = [
        ("secrets", "get"),
        ("serviceaccounts", "get"),
        ("namespaces", "get"),
        ("namespaces", "list"),
        ("namespaces", "watch"),
    ]
    .iter()
    .map(|(r, v)| (r.to_string(), v.to_string()))
    .collect();
    assert_eq!(granted, expected);
    let binding = find(&objects, "ClusterRoleBinding", "kibaship-webhook");
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(binding["roleRef"]["name"], "kibaship-webhook");
    assert_eq!(
        binding["subjects"],
        json!([{ "kind": "ServiceAccount", "name": "kibaship-webhook", "namespace": NAMESPACE }])
    );
    find(&objects, "ServiceAccount", "kibaship-webhook");

    // The webhook configurations.
    let expected_resources: BTreeSet<(&str, &str, &str)> = [
        ("", "v1", "pods"),
        ("", "v1", "pods/ephemeralcontainers"),
        ("", "v1", "replicationcontrollers"),
        ("apps", "v1", "deployments"),
        ("apps", "v1", "statefulsets"),
        ("apps", "v1", "daemonsets"),
        ("apps", "v1", "replicasets"),
        ("batch", "v1", "jobs"),
        ("batch", "v1", "cronjobs"),
    ]
    .into_iter()
    .collect();
    for (configuration, path) in webhook_configurations(&objects)
        .into_iter()
        .zip(["/mutate", "/validate"])
    {
        let webhooks = configuration["webhooks"].as_array().unwrap();
        assert_eq!(webhooks.len(), 1);
        let hook = &webhooks[0];
        let what = hook["name"].as_str().unwrap();
        assert_eq!(hook["failurePolicy"], "Fail", "{what}");
        assert_eq!(hook["sideEffects"], "None", "{what}");
        assert_eq!(strings(&hook["admissionReviewVersions"]), ["v1"], "{what}");
        assert_eq!(hook["matchPolicy"], "Equivalent", "{what}");
        let timeout = hook["timeoutSeconds"].as_u64().unwrap();
        assert!(
            budget < timeout && timeout <= 30,
            "{what}: the webhook's budget ({budget} s) must end before the API server's timeout ({timeout} s, at most 30)"
        );
        let service_ref = &hook["clientConfig"]["service"];
        assert_eq!(
            (
                &service_ref["name"],
                &service_ref["namespace"],
                &service_ref["port"],
                &service_ref["path"]
            ),
            (
                &json!("kibaship-webhook"),
                &json!(NAMESPACE),
                &json!(443),
                &json!(path)
            ),
            "{what}"
        );
        assert!(hook["clientConfig"].get("url").is_none());
        let selector = &hook["namespaceSelector"];
        assert!(selector.get("matchLabels").is_none(), "{what}");
        let expressions = selector["matchExpressions"].as_array().unwrap();
        let by_key: BTreeMap<&str, &Value> = expressions
            .iter()
            .map(|e| (e["key"].as_str().unwrap(), e))
            .collect();
        assert_eq!(by_key.len(), 2, "{what}: {expressions:?}");
        let verify = by_key["kibaship.io/verify"];
        assert_eq!(verify["operator"], "In");
        assert_eq!(
            strings(&verify["values"])
                .into_iter()
                .collect::<BTreeSet<_>>(),
            BTreeSet::from(["enforce", "warn"])
        );
        let name = by_key["kubernetes.io/metadata.name"];
        assert_eq!(name["operator"], "NotIn");
        let excluded: BTreeSet<&str> = strings(&name["values"]).into_iter().collect();
        assert!(
            excluded.contains("kube-system") && excluded.contains(NAMESPACE),
            "{what}: {excluded:?}"
        );
        let mut covered = BTreeSet::new();
        for rule in hook["rules"].as_array().unwrap() {
            assert_eq!(
                strings(&rule["operations"])
                    .into_iter()
                    .collect::<BTreeSet<_>>(),
                BTreeSet::from(["CREATE", "UPDATE"]),
                "{what}: {rule}"
            );
            assert_eq!(rule["scope"], "Namespaced");
            for group in strings(&rule["apiGroups"]) {
                for version in strings(&rule["apiVersions"]) {
                    for resource in strings(&rule["resources"]) {
                        covered.insert((group, version, resource));
                    }
                }
            }
        }
        assert_eq!(covered, expected_resources, "{what}");
        let conditions = hook["matchConditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 1);
        assert!(
            conditions[0]["expression"]
                .as_str()
                .unwrap()
                .starts_with("request.operation != 'UPDATE' ||"),
            "{what}: every CREATE is sent"
        );
    }
    let [mutating, validating] = webhook_configurations(&objects);
    assert_eq!(mutating["webhooks"][0]["reinvocationPolicy"], "IfNeeded");
    assert!(
        validating["webhooks"][0]
            .get("reinvocationPolicy")
            .is_none()
    );

    // The API server accepts all of it; Pod Security (restricted, on kibaship-system) has nothing to say about
    // the Deployment's template. The control below shows the same check does warn about a template that breaks it.
    create_namespace(&api, &objects);
    let namespace = find(&objects, "Namespace", NAMESPACE);
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let (accepted, warnings) = dry_run(&api, &base);
    assert_eq!(accepted.len(), objects.len(), "{}", summary(&accepted));
    assert!(!warnings.contains("Warning"), "{warnings}");
    let loose = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "loose", "namespace": NAMESPACE },
        "spec": {
            "selector": { "matchLabels": { "app": "loose" } },
            "template": {
                "metadata": { "labels": { "app": "loose" } },
                "spec": { "containers": [{ "name": "c", "image": IMAGE }] },
            },
        },
    });
    let control = api.kubectl_stdin(
        &["apply", "--dry-run=server", "-f", "-"],
        &loose.to_string(),
    );
    assert!(control.status.success(), "{}", stderr(&control));
    assert!(
        stderr(&control).contains("would violate PodSecurity \"restricted"),
        "{}",
        stderr(&control)
    );
    // Server defaults did not undo the hardening.
    let stored = find(&accepted, "Deployment", "kibaship-webhook");
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
}

/// Minimal CustomResourceDefinitions for cert-manager's Certificate and Issuer: enough for the API server to know
/// the kinds. Their schema accepts any spec, so the fields are checked by this test, not by the server.
fn cert_manager_crds() -> String {
    let crd = |plural: &str, kind: &str| {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": { "name": format!("{plural}.cert-manager.io") },
            "spec": {
                "group": "cert-manager.io",
                "scope": "Namespaced",
                "names": { "plural": plural, "singular": kind.to_lowercase(), "kind": kind },
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } },
                }],
            },
        })
    };
    json!({ "apiVersion": "v1", "kind": "List", "items": [crd("certificates", "Certificate"), crd("issuers", "Issuer")] })
        .to_string()
}

#[test]
fn overlays_and_the_component_render_and_pass_the_dry_run() {
    let api = KubeApiServer::start().unwrap();
    let copy = deploy_copy();
    let deploy = copy.path().join("deploy");
    create_namespace(&api, &render(&api, &deploy.join("base")));
    api.kubectl_stdin_ok(&["apply", "-f", "-"], &cert_manager_crds())
        .unwrap();
    api.kubectl_ok(&[
        "wait",
        "--for",
        "condition=Established",
        "--timeout",
        "120s",
        "crd/certificates.cert-manager.io",
        "crd/issuers.cert-manager.io",
    ])
    .unwrap();

    // cert-manager: a CA from a self-signed Issuer, an Issuer for that CA, the serving certificate in the Secret
    // the Deployment mounts, and both webhook configurations asking the CA injector for the CA.
    let dir = deploy.join("overlays/cert-manager");
    let objects = render(&api, &dir);
    let deployment = find(&objects, "Deployment", "kibaship-webhook");
    let tls_secret = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|v| v["secret"]["secretName"].as_str())
        .unwrap();
    for configuration in webhook_configurations(&objects) {
        let from = configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
            .as_str()
            .unwrap();
        let (namespace, name) = from.split_once('/').unwrap();
        assert_eq!(namespace, NAMESPACE);
        let certificate = find(&objects, "Certificate", name);
        assert_eq!(certificate["metadata"]["namespace"], NAMESPACE);
        let spec = &certificate["spec"];
        assert_eq!(spec["secretName"], tls_secret);
        let service = &configuration["webhooks"][0]["clientConfig"]["service"];
        let host = format!(
            "{}.{}.svc",
            service["name"].as_str().unwrap(),
            service["namespace"].as_str().unwrap()
        );
        assert!(
            strings(&spec["dnsNames"]).contains(&host.as_str()),
            "{spec}"
        );
        assert!(strings(&spec["usages"]).contains(&"server auth"));
        assert_ne!(spec["isCA"], true);
        let issuer = find(
            &objects,
            "Issuer",
            spec["issuerRef"]["name"].as_str().unwrap(),
        );
        let ca_secret = issuer["spec"]["ca"]["secretName"].as_str().unwrap();
        let ca = objects
            .iter()
            .find(|o| o["kind"] == "Certificate" && o["spec"]["secretName"] == ca_secret)
            .unwrap();
        assert_eq!(ca["spec"]["isCA"], true);
        let root = find(
            &objects,
            "Issuer",
            ca["spec"]["issuerRef"]["name"].as_str().unwrap(),
        );
        assert_eq!(root["spec"]["selfSigned"], json!({}));
        assert!(
            configuration["webhooks"][0]["clientConfig"]
                .get("caBundle")
                .is_none()
        );
    }
    let (accepted, warnings) = dry_run(&api, &dir);
    assert_eq!(accepted.len(), objects.len(), "{}", summary(&accepted));
    assert!(!warnings.contains("Warning"), "{warnings}");

    // provided-tls: the Secret is made from the three files, and ca.crt is both configurations' caBundle.
    let dir = deploy.join("overlays/provided-tls");
    let (cert, key, ca) = api.webhook_certificate().unwrap();
    fs::write(dir.join("tls.crt"), &cert).unwrap();
    fs::write(dir.join("tls.key"), &key).unwrap();
    fs::write(dir.join("ca.crt"), &ca).unwrap();
    let objects = render(&api, &dir);
    let secret = find(&objects, "Secret", "kibaship-webhook-tls");
    assert_eq!(secret["metadata"]["namespace"], NAMESPACE);
    assert_eq!(secret["type"], "kubernetes.io/tls");
    // Kustomize folds long base64 values over lines; the API server's decoder skips the line breaks.
    assert_eq!(decoded(&secret["data"]["tls.crt"]), cert.as_bytes());
    assert_eq!(decoded(&secret["data"]["tls.key"]), key.as_bytes());
    assert_eq!(decoded(&secret["data"]["ca.crt"]), ca.as_bytes());
    for configuration in webhook_configurations(&objects) {
        assert_eq!(
            decoded(&configuration["webhooks"][0]["clientConfig"]["caBundle"]),
            ca.as_bytes()
        );
    }
    let (accepted, warnings) = dry_run(&api, &dir);
    assert_eq!(accepted.len(), objects.len(), "{}", summary(&accepted));
    assert!(!warnings.contains("Warning"), "{warnings}");
    // As the API server would store them.
    for configuration in webhook_configurations(&accepted) {
        assert_eq!(
            configuration["webhooks"][0]["clientConfig"]["caBundle"],
            STANDARD.encode(&ca)
        );
    }
    assert_eq!(
        find(&accepted, "Secret", "kibaship-webhook-tls")["data"]["tls.crt"],
        STANDARD.encode(&cert)
    );
    // The certificate files are never committed.
    let ignored =
        fs::read_to_string(deploy_dir().join("overlays/provided-tls/.gitignore")).unwrap();
    for file in ["tls.crt", "tls.key", "ca.crt", "ca.key"] {
        assert!(
            ignored.lines().any(|l| l == file),
            "{file} not in .gitignore"
        );
    }

    // The priority-class component, and an image override, in an overlay of the caller's.
    let dir = deploy.join("test-overlay");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("kustomization.yaml"),
        "resources:\n  - ../base\ncomponents:\n  - ../components/priority-class\nimages:\n  \
         - name: ghcr.io/kibaship/kibaship\n    newName: registry.example/kibaship\n    newTag: 0.2.0\n",
    )
    .unwrap();
    let objects = render(&api, &dir);
    let pod = &find(&objects, "Deployment", "kibaship-webhook")["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        "registry.example/kibaship:0.2.0"
    );
    let class = find(
        &objects,
        "PriorityClass",
        pod["priorityClassName"].as_str().unwrap(),
    );
    let value = class["value"].as_i64().unwrap();
    assert!(value > 0 && value <= 1_000_000_000, "{value}");
    assert_eq!(class["globalDefault"], false);
    let (accepted, warnings) = dry_run(&api, &dir);
    assert_eq!(accepted.len(), objects.len(), "{}", summary(&accepted));
    assert!(!warnings.contains("Warning"), "{warnings}");
}

/// A Pod that meets the restricted Pod Security Standard (kibaship-system enforces it).
fn pod(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace },
        "spec": pod_spec(),
    })
}

fn pod_spec() -> Value {
    json!({
        "securityContext": { "runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": { "type": "RuntimeDefault" } },
        "containers": [{
            "name": "app",
            "image": "registry.example/app:v1",
            "securityContext": { "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"] } },
        }],
        "restartPolicy": "Always",
    })
}

/// One object of each kind the webhooks cover (CREATE).
fn workloads(namespace: &str) -> Vec<Value> {
    let labels = json!({ "app": "w" });
    let template = json!({ "metadata": { "labels": labels }, "spec": pod_spec() });
    let mut job_template = template.clone();
    job_template["spec"]["restartPolicy"] = json!("Never");
    let meta = |name: &str| json!({ "name": name, "namespace": namespace });
    let apps = |kind: &str, name: &str| {
        json!({
            "apiVersion": "apps/v1", "kind": kind, "metadata": meta(name),
            "spec": { "selector": { "matchLabels": labels }, "template": template },
        })
    };
    vec![
        pod(namespace, "w-pod"),
        apps("Deployment", "w-deployment"),
        apps("ReplicaSet", "w-replicaset"),
        apps("DaemonSet", "w-daemonset"),
        {
            let mut s = apps("StatefulSet", "w-statefulset");
            s["spec"]["serviceName"] = json!("w");
            s
        },
        json!({
            "apiVersion": "v1", "kind": "ReplicationController", "metadata": meta("w-rc"),
            "spec": { "selector": labels, "template": template },
        }),
        json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": meta("w-job"),
            "spec": { "template": job_template },
        }),
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("w-cronjob"),
            "spec": { "schedule": "0 * * * *", "jobTemplate": { "spec": { "template": job_template } } },
        }),
    ]
}

/// The API server could not call the webhook `name` (`kibaship-webhook` has no Service here) and, failing
/// closed, refused the request.
fn refused_by(out: &std::process::Output, name: &str) -> bool {
    !out.status.success()
        && stderr(out).contains(&format!("failed calling webhook \"{name}\""))
        && stderr(out).contains("service \"kibaship-webhook\" not found")
}

#[test]
fn applied_webhook_configurations_fail_closed_in_selected_namespaces_only() {
    let api = KubeApiServer::start().unwrap();
    let objects = render(&api, &deploy_dir().join("base"));
    create_namespace(&api, &objects);
    for namespace in ["enforced", "unlabelled"] {
        api.kubectl_ok(&["create", "namespace", namespace]).unwrap();
    }
    // Objects that exist before the namespace opts in, to be updated under the webhooks.
    for object in [
        pod("enforced", "existing"),
        workloads("enforced").remove(1), // the Deployment w-deployment
        workloads("enforced").remove(7), // the CronJob w-cronjob
    ] {
        api.kubectl_stdin_ok(&["create", "-f", "-"], &object.to_string())
            .unwrap();
    }
    api.kubectl_ok(&[
        "label",
        "namespace",
        "enforced",
        "kibaship.io/verify=enforce",
    ])
    .unwrap();

    // Both configurations for real, as rendered: no webhook runs and its Service does not exist, so every call
    // fails. In force once a Pod in the enforced namespace is refused.
    let [mutating, validating] = webhook_configurations(&objects);
    let manifest = json!({ "apiVersion": "v1", "kind": "List", "items": [mutating, validating] });
    api.apply_webhook_configuration(&manifest.to_string(), |api| {
        let out = api.kubectl_stdin(
            &["create", "-f", "-"],
            &pod("enforced", "probe").to_string(),
        );
        if out.status.success() {
            api.kubectl_ok(&["delete", "pod", "-n", "enforced", "probe", "--wait=false"])
                .unwrap();
        }
        refused_by(&out, "pin-images.kibaship.io")
    })
    .unwrap();

    // Every covered kind is refused in the enforced namespace, and admitted in an unlabelled one.
    for object in workloads("enforced") {
        let out = api.kubectl_stdin(&["create", "-f", "-"], &object.to_string());
        assert!(
            refused_by(&out, "pin-images.kibaship.io"),
            "{} was not refused: {}",
            object["kind"],
            stderr(&out)
        );
    }
    for object in workloads("unlabelled") {
        api.kubectl_stdin_ok(&["create", "-f", "-"], &object.to_string())
            .unwrap_or_else(|e| panic!("{} in an unlabelled namespace: {e}", object["kind"]));
    }
    // kube-system and kibaship-system are never selected, whatever their labels say.
    for namespace in ["kube-system", NAMESPACE] {
        api.kubectl_ok(&[
            "label",
            "namespace",
            namespace,
            "kibaship.io/verify=enforce",
        ])
        .unwrap();
        api.kubectl_stdin_ok(
            &["create", "-f", "-"],
            &pod(namespace, "excluded").to_string(),
        )
        .unwrap_or_else(|e| panic!("Pod in {namespace}: {e}"));
    }
    // `warn` selects a namespace too (and failurePolicy Fail holds there as well).
    api.kubectl_ok(&[
        "label",
        "namespace",
        "unlabelled",
        "kibaship.io/verify=warn",
    ])
    .unwrap();
    let out = api.kubectl_stdin(
        &["create", "-f", "-"],
        &pod("unlabelled", "warned").to_string(),
    );
    assert!(
        refused_by(&out, "pin-images.kibaship.io"),
        "{}",
        stderr(&out)
    );

    // The match condition: UPDATEs that leave the Pod spec or template alone are not sent; the others are.
    let update = |args: &[&str]| {
        let mut all = vec!["-n", "enforced"];
        all.extend_from_slice(args);
        api.kubectl(&all)
    };
    for args in [
        &["label", "deployment", "w-deployment", "touched=yes"][..],
        &[
            "patch",
            "deployment",
            "w-deployment",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"replicas":3}}"#,
        ],
        &["label", "pod", "existing", "touched=yes"],
        &["annotate", "pod", "existing", "note=kept"],
        &[
            "patch",
            "cronjob",
            "w-cronjob",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"schedule":"*/5 * * * *"}}"#,
        ],
    ] {
        let out = update(args);
        assert!(
            out.status.success(),
            "{args:?} was sent to the webhook: {}",
            stderr(&out)
        );
    }
    for args in [
        &[
            "set",
            "image",
            "deployment/w-deployment",
            "app=registry.example/app:v2",
        ][..],
        &[
            "patch",
            "deployment",
            "w-deployment",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"template":{"metadata":{"annotations":{"restarted":"now"}}}}}"#,
        ],
        &[
            "set",
            "image",
            "pod/existing",
            "app=registry.example/app:v2",
        ],
        &[
            "set",
            "image",
            "cronjob/w-cronjob",
            "app=registry.example/app:v2",
        ],
        // An ephemeral container: an UPDATE of pods/ephemeralcontainers.
        &[
            "debug",
            "existing",
            "--image",
            "registry.example/debug:v1",
            "--profile",
            "restricted",
        ],
    ] {
        let out = update(args);
        assert!(
            refused_by(&out, "pin-images.kibaship.io"),
            "{args:?} was not refused: {}",
            stderr(&out)
        );
    }
    let stored = api
        .kubectl_ok(&["get", "pod", "-n", "enforced", "existing", "-o", "json"])
        .unwrap();
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        stored["spec"]["containers"][0]["image"],
        "registry.example/app:v1"
    );
    assert!(stored["spec"].get("ephemeralContainers").is_none());
    assert_eq!(stored["metadata"]["labels"]["touched"], "yes");

    // The validating configuration on its own fails closed too (the mutating one answered first above).
    api.kubectl_ok(&["delete", "mutatingwebhookconfiguration", "kibaship-webhook"])
        .unwrap();
    let validated = wait_until(WEBHOOK_TRIES, WEBHOOK_PAUSE, || {
        let out = api.kubectl_stdin(
            &["create", "-f", "-"],
            &pod("enforced", "probe").to_string(),
        );
        if out.status.success() {
            api.kubectl_ok(&["delete", "pod", "-n", "enforced", "probe", "--wait=false"])
                .unwrap();
        }
        refused_by(&out, "verify-images.kibaship.io").then(|| stderr(&out))
    })
    .unwrap_or_else(|| {
        panic!(
            "the validating webhook never refused a Pod; log:\n{}",
            api.log_tail()
        )
    });
    assert!(validated.contains("/validate?timeout=10s"), "{validated}");
}

/// The policy and trusted root the base ships load as the webhook loads them (the same functions).
#[test]
fn the_shipped_policy_and_trusted_root_load() {
    let base = deploy_dir().join("base");
    let (policy, _) = kibaship_webhook::reload::load_policy(&base.join("policy.yaml")).unwrap();
    assert_eq!(policy.policies().len(), 1);
    assert_eq!(policy.policies()[0].mode(), kibaship_policy::Mode::Enforce);
    kibaship_webhook::reload::load_trust(&base.join("trusted_root.json")).unwrap();
}
