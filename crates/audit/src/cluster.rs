//! The cluster's workloads through its API (the `kube` crate, rustls on aws-lc-rs): Pods, Deployments,
//! StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs, in one namespace or all, optionally by label
//! selector, listed in pages. What the account may not list is a problem naming the resource and the namespace
//! (the rest is still listed); objects whose controller was listed are reported once, as the controller.
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::inventory::{Inventory, Origin, Problem, shown};

/// Objects asked for per page.
pub const PAGE_SIZE: u32 = 500;
/// How long connecting to the API server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one answer of the API server may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

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
    let client = Client::try_from(config).map_err(ClusterError::Client)?;
    Ok((client, namespace, url))
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
