//! The cluster's workloads through its API (the `kube` crate, rustls on aws-lc-rs): Pods, Deployments,
//! StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs, in one namespace or all, optionally by label
//! selector, listed in pages. What the account may not list is a problem naming the resource and the namespace
//! (the rest is still listed); objects whose controller was listed are reported once, as the controller.
//!
//! Every answer of the API server is bounded: at most [`MAX_RESPONSE_BYTES`] are read per answer (one page of
//! a list, one object), through a layer on the client's body; an answer past it is a problem naming the
//! resource, and the other resources are still listed.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use http_body_util::{LengthLimitError, Limited};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use kube::api::{Api, ListParams};
use kube::client::{ClientBuilder, DynBody};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::inventory::{Inventory, Origin, Problem, shown};
use crate::pull_secrets::{MAX_PULL_SECRETS, PullCredentials, PullSecret, parse_pull_secret};

/// Objects asked for per page.
pub const PAGE_SIZE: u32 = 500;
/// How long connecting to the API server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one answer of the API server may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes read of one answer of the API server: 64 MiB. A page of [`PAGE_SIZE`] Pods or pod templates is
/// a few MiB in practice (a Pod is typically 5 to 20 KiB); objects with very large annotations (each object is
/// at most about 1.5 MiB in etcd) can exceed it, and are then reported, not read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Why the cluster could not be reached at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The kubeconfig file could not be read or has no usable context.
    #[error("cannot load the kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What was wrong.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Neither `KUBECONFIG`/`~/.kube/config` nor the in-cluster service account could be used.
    #[error(
        "no cluster configuration found (pass --kubeconfig, set KUBECONFIG, or run in a Pod): {0}"
    )]
    Infer(#[source] kube::config::InferConfigError),
    /// The client could not be built from the configuration.
    #[error("cannot set up the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// Which workloads to list.
#[derive(Debug, Clone, Default)]
pub struct ClusterScope {
    /// One namespace; `None`: every namespace.
    pub namespace: Option<String>,
    /// A label selector (`app=web,tier!=db`), as `kubectl -l` takes it.
    pub label_selector: Option<String>,
}

/// A client from `kubeconfig` (optionally one of its contexts), or else from `KUBECONFIG`, `~/.kube/config` or
/// the in-cluster service account; and the configuration's default namespace.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<(Client, String, String), ClusterError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let mut config = match kubeconfig {
        Some(path) => {
            let kubeconfig_error = |source| ClusterError::Kubeconfig {
                path: path.display().to_string(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(kubeconfig_error)?
        }
        None if context.is_some() => {
            Config::from_kubeconfig(&options)
                .await
                .map_err(|source| ClusterError::Kubeconfig {
                    path: "(KUBECONFIG or ~/.kube/config)".to_owned(),
                    source,
                })?
        }
        None => Config::infer().await.map_err(ClusterError::Infer)?,
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    // A failed list is reported, not retried for minutes.
    config.default_retry = false;
    let url = config.cluster_url.to_string();
    let namespace = config.default_namespace.clone();
    let client = ClientBuilder::try_from(config)
        .map_err(ClusterError::Client)?
        .with_layer(&tower::util::MapResponseLayer::new(limit_body))
        .build();
    Ok((client, namespace, url))
}

/// The answer's body, read only up to [`MAX_RESPONSE_BYTES`] (past it, reading fails with
/// [`LengthLimitError`], found again by [`too_large`]).
fn limit_body(response: http::Response<Box<DynBody>>) -> http::Response<Limited<Box<DynBody>>> {
    response.map(|body| Limited::new(body, MAX_RESPONSE_BYTES))
}

/// Whether `error` is an answer cut at [`MAX_RESPONSE_BYTES`].
fn too_large(error: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// "the answer is larger than 64 MiB": the limit in words.
fn too_large_message() -> String {
    format!(
        "the API server's answer is larger than {} MiB (kibaverify reads at most that much of one answer)",
        MAX_RESPONSE_BYTES / (1024 * 1024)
    )
}

/// One kind of workload: its plural resource name (for messages) and how to list it.
const KINDS: [(&str, &str); 7] = [
    ("Deployment", "deployments.apps"),
    ("StatefulSet", "statefulsets.apps"),
    ("DaemonSet", "daemonsets.apps"),
    ("CronJob", "cronjobs.batch"),
    ("Job", "jobs.batch"),
    ("ReplicaSet", "replicasets.apps"),
    ("Pod", "pods"),
];

/// Why one list failed.
enum ListFailure {
    /// The API server answered with an error status (forbidden, not found, ...).
    Refused(String),
    /// It could not be reached.
    Unreachable(String),
    /// It refused the credentials (401): expired or invalid; nothing else will be listed either.
    Unauthorized(String),
    /// One answer was larger than [`MAX_RESPONSE_BYTES`].
    TooLarge,
}

/// Adds the cluster's workloads in `scope` to `inventory`; `url` names the server in messages. Returns whether
/// the API server could be reached.
pub async fn add_cluster(
    inventory: &mut Inventory,
    client: &Client,
    scope: &ClusterScope,
    url: &str,
) -> bool {
    let where_ = match &scope.namespace {
        Some(ns) => format!("in namespace {}", shown(ns)),
        None => "in any namespace".to_owned(),
    };
    let mut listed = Vec::new();
    for (kind, resource) in KINDS {
        let result = match kind {
            "Deployment" => list::<Deployment>(inventory, client, scope, kind).await,
            "StatefulSet" => list::<StatefulSet>(inventory, client, scope, kind).await,
            "DaemonSet" => list::<DaemonSet>(inventory, client, scope, kind).await,
            "CronJob" => list::<CronJob>(inventory, client, scope, kind).await,
            "Job" => list::<Job>(inventory, client, scope, kind).await,
            "ReplicaSet" => list::<ReplicaSet>(inventory, client, scope, kind).await,
            _ => list::<Pod>(inventory, client, scope, kind).await,
        };
        match result {
            Ok(()) => listed.push(kind),
            Err(ListFailure::Refused(message)) => inventory.problems.push(Problem::error(
                "cluster",
                format!(
                    "cannot list {resource} {where_}: {message}; their images are not audited (the account needs `list` on {resource})"
                ),
            )),
            Err(ListFailure::TooLarge) => inventory.problems.push(Problem::error(
                "cluster",
                format!(
                    "cannot list {resource} {where_}: {}; their images are not audited (narrow the audit with -n or -l)",
                    too_large_message()
                ),
            )),
            Err(ListFailure::Unauthorized(message)) => {
                inventory.problems.push(Problem::error(
                    "cluster",
                    format!(
                        "the Kubernetes API server at {url} refused the credentials ({message}): the kubeconfig's token or certificate is expired or not valid there"
                    ),
                ));
                return false;
            }
            Err(ListFailure::Unreachable(message)) => {
                inventory.problems.push(Problem::error(
                    "cluster",
                    format!("cannot reach the Kubernetes API server at {url}: {message}"),
                ));
                return false;
            }
        }
    }
    inventory.drop_controlled(&listed);
    add_namespace_labels(inventory, client, scope).await;
    true
}

/// Namespace labels for policies that select namespaces by label; when they cannot be read, such policies
/// apply everywhere (as in the webhook: unknown labels never skip a policy), and a note says so.
async fn add_namespace_labels(inventory: &mut Inventory, client: &Client, scope: &ClusterScope) {
    let api: Api<Namespace> = Api::all(client.clone());
    let found = match &scope.namespace {
        Some(ns) => api.get(ns).await.map(|n| vec![n]),
        None => api.list(&ListParams::default()).await.map(|l| l.items),
    };
    match found {
        Ok(namespaces) => {
            for namespace in namespaces {
                if let Some(name) = namespace.metadata.name {
                    inventory
                        .namespace_labels
                        .insert(name, namespace.metadata.labels.unwrap_or_default());
                }
            }
        }
        Err(e) => inventory.problems.push(Problem::note(
            "cluster",
            format!(
                "cannot read namespace labels ({}); policies that select namespaces by label are applied to every namespace",
                describe(&e)
            ),
        )),
    }
}

fn describe(error: &kube::Error) -> String {
    if too_large(error) {
        return too_large_message();
    }
    match error {
        kube::Error::Api(status) => {
            let reason = if status.code == 403 {
                "forbidden"
            } else {
                status.reason.as_str()
            };
            format!("{} {reason}: {}", status.code, shown(&status.message))
        }
        other => shown(&other.to_string()),
    }
}

async fn list<K>(
    inventory: &mut Inventory,
    client: &Client,
    scope: &ClusterScope,
    kind: &str,
) -> Result<(), ListFailure>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    let api: Api<K> = match &scope.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut params = ListParams::default().limit(PAGE_SIZE);
    if let Some(selector) = &scope.label_selector {
        params = params.labels(selector);
    }
    loop {
        let page = api.list(&params).await.map_err(|e| match &e {
            _ if too_large(&e) => ListFailure::TooLarge,
            kube::Error::Api(status) if status.code == 401 => {
                ListFailure::Unauthorized(describe(&e))
            }
            kube::Error::Api(_) => ListFailure::Refused(describe(&e)),
            _ => ListFailure::Unreachable(describe(&e)),
        })?;
        for item in &page.items {
            let Ok(mut value) = serde_json::to_value(item) else {
                continue;
            };
            if let Some(map) = value.as_object_mut() {
                map.entry("kind").or_insert_with(|| kind.into());
            }
            let name = value
                .pointer("/metadata/name")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            let namespace = value
                .pointer("/metadata/namespace")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            let input = format!("cluster {kind} {namespace}/{name}");
            inventory.add_object(&value, "default", &input, &Origin::Cluster);
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}

/// Reads the pull secrets of the cluster's workloads in `inventory` (those listed from the cluster) and sets
/// each one's [`crate::Workload::credentials`], so its images are read with them, as the kubelet pulls them:
/// the secrets its pod spec's `imagePullSecrets` names, or, when it names none, those of its service account
/// (the ServiceAccount admission plugin copies them into each Pod it creates). Needs `get` on secrets (and on
/// serviceaccounts); each secret and account is read once.
///
/// A secret or account that does not exist is a note (the kubelet fails such pulls too); one the account may
/// not read, or whose content cannot be used, is an error naming it, and the workload's images are then read
/// with the other secrets' credentials, or kibaverify's own. Secret values never appear in a message.
pub async fn add_pull_credentials(inventory: &mut Inventory, client: &Client) {
    let mut accounts: HashMap<(String, String), Vec<String>> = HashMap::new();
    let mut secrets: HashMap<(String, String), Option<PullSecret>> = HashMap::new();
    let mut problems = Vec::new();
    for workload in inventory
        .workloads
        .iter_mut()
        .filter(|w| w.origin == Origin::Cluster)
    {
        let namespace = workload.namespace.clone();
        let mut names = workload.pull_secrets.clone();
        if names.is_empty() {
            let account = workload
                .service_account
                .clone()
                .unwrap_or_else(|| "default".to_owned());
            let key = (namespace.clone(), account.clone());
            if !accounts.contains_key(&key) {
                let found =
                    service_account_secrets(client, &namespace, &account, &mut problems).await;
                accounts.insert(key.clone(), found);
            }
            names = accounts.get(&key).cloned().unwrap_or_default();
        }
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        if names.len() > MAX_PULL_SECRETS {
            problems.push(Problem::note(
                "cluster",
                format!(
                    "{} {}/{} names {} pull secrets; only the first {MAX_PULL_SECRETS} are read",
                    workload.kind,
                    shown(&namespace),
                    shown(&workload.name),
                    names.len()
                ),
            ));
            names.truncate(MAX_PULL_SECRETS);
        }
        let mut keys = Vec::new();
        for name in names {
            let key = (namespace.clone(), name);
            if !secrets.contains_key(&key) {
                let secret = pull_secret(client, &key.0, &key.1, &mut problems).await;
                secrets.insert(key.clone(), secret);
            }
            keys.push(key);
        }
        workload.credentials = PullCredentials::from_secrets(
            keys.iter()
                .filter_map(|key| secrets.get(key).and_then(Option::as_ref)),
        );
    }
    inventory.problems.extend(problems);
}

/// The `imagePullSecrets` of a service account; none (and a problem) when it cannot be read.
async fn service_account_secrets(
    client: &Client,
    namespace: &str,
    account: &str,
    problems: &mut Vec<Problem>,
) -> Vec<String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let what = format!("service account {}/{}", shown(namespace), shown(account));
    match api.get_opt(account).await {
        Ok(Some(found)) => found
            .image_pull_secrets
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .filter(|n| !n.is_empty())
            .collect(),
        Ok(None) => {
            problems.push(Problem::note(
                "cluster",
                format!("{what} does not exist; its workloads' images are read with kibaverify's own credentials"),
            ));
            Vec::new()
        }
        Err(e) => {
            problems.push(Problem::error(
                "cluster",
                format!(
                    "cannot get {what} for its pull secrets: {}; its workloads' images are read with kibaverify's own credentials (--use-pull-secrets needs `get` on serviceaccounts)",
                    describe(&e)
                ),
            ));
            Vec::new()
        }
    }
}

/// One pull secret, parsed; `None` (and a problem) when it cannot be read or used.
async fn pull_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<PullSecret> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let source = format!("{}/{}", shown(namespace), shown(name));
    match api.get_opt(name).await {
        Ok(Some(secret)) => {
            let data: BTreeMap<String, Vec<u8>> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            let kind = secret.type_.unwrap_or_default();
            match parse_pull_secret(&source, &kind, &data) {
                Ok(parsed) => {
                    for note in &parsed.notes {
                        problems.push(Problem::note("cluster", note.clone()));
                    }
                    Some(parsed)
                }
                Err(message) => {
                    problems.push(Problem::error("cluster", format!("{message}; not used")));
                    None
                }
            }
        }
        Ok(None) => {
            problems.push(Problem::note(
                "cluster",
                format!(
                    "pull secret `{source}` does not exist (the kubelet cannot pull with it either)"
                ),
            ));
            None
        }
        Err(e) => {
            problems.push(Problem::error(
                "cluster",
                format!(
                    "cannot get pull secret `{source}`: {}; not used (--use-pull-secrets needs `get` on secrets)",
                    describe(&e)
                ),
            ));
            None
        }
    }
}
