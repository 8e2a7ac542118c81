//! The inventory: workloads, their containers and the image each one runs, from Kubernetes objects (manifests on
//! disk or the cluster's API), from an image list, or from references given as arguments. Pure: callers read the
//! files and the API; this module only turns what they read into [`Workload`]s and [`Problem`]s.
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::pull_secrets::PullCredentials;

/// Longest manifest file or image list read, in bytes (a large Kustomize output is a few MiB).
pub const MAX_INPUT_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Most YAML nodes in one manifest document.
pub const MAX_YAML_NODES: usize = 1_000_000;
/// Deepest nesting of one manifest document.
pub const MAX_YAML_DEPTH: usize = 64;
/// Most YAML aliases (`*name`) in one manifest document.
pub const MAX_YAML_ALIASES: usize = 1_000;

/// Where a workload was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Origin {
    /// Listed from the cluster's API.
    Cluster,
    /// A document of a manifest file.
    Manifest {
        /// The file as named.
        file: String,
        /// 1-based position of the document in the file.
        document: usize,
        /// 1-based line where the document starts.
        line: usize,
    },
    /// A line of an image list.
    ImageList {
        /// The file as named.
        file: String,
        /// 1-based line.
        line: usize,
    },
    /// A reference given as an argument.
    Argument {
        /// 1-based position among the references given.
        position: usize,
    },
}

impl Origin {
    /// `file:line` for a file, `cluster`, or `argument N`.
    pub fn describe(&self) -> String {
        match self {
            Origin::Cluster => "cluster".to_owned(),
            Origin::Manifest { file, line, .. } | Origin::ImageList { file, line } => {
                format!("{file}:{line}")
            }
            Origin::Argument { position } => format!("argument {position}"),
        }
    }
}

/// Which list of a pod spec a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerKind {
    /// `containers`.
    Container,
    /// `initContainers`.
    Init,
    /// `ephemeralContainers`.
    Ephemeral,
}

/// One container and the image it runs, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    /// The container's name (`-` for an image from a list or an argument).
    pub name: String,
    /// The image reference as written in the pod spec.
    pub image: String,
    /// Which list it is in.
    pub kind: ContainerKind,
}

/// Something that runs containers: a Pod, a workload controller's pod template, or an image from a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// Its namespace (objects without one: the default namespace the caller gave).
    pub namespace: String,
    /// `Pod`, `Deployment`, ..., or `Image` for an image from a list or an argument.
    pub kind: String,
    /// Its name (for an `Image`: the reference).
    pub name: String,
    /// Its containers, in spec order (containers, init containers, ephemeral containers).
    pub containers: Vec<Container>,
    /// Where it was found.
    pub origin: Origin,
    /// `Kind/name` of the controller that owns it (`metadata.ownerReferences` with `controller: true`).
    #[serde(skip)]
    pub controlled_by: Option<(String, String)>,
    /// The names in the pod spec's `imagePullSecrets`.
    #[serde(skip)]
    pub pull_secrets: Vec<String>,
    /// The pod spec's `serviceAccountName` (`None` when unset: the API server then runs it as `default`).
    #[serde(skip)]
    pub service_account: Option<String>,
    /// The credentials its images are read with (its pull secrets, set by
    /// [`crate::cluster::add_pull_credentials`]); empty: kibaverify's own.
    #[serde(skip)]
    pub credentials: PullCredentials,
}

/// How bad a problem with the input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Worth knowing; the input was read (a kind that holds no pod template was skipped).
    Note,
    /// Part of the input could not be read: the audit is incomplete (exit code 2).
    Error,
}

/// A problem with the input, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// How bad it is.
    pub severity: Severity,
    /// The input: `file:line`, `file document N`, `cluster`, `argument N`.
    pub input: String,
    /// What was wrong.
    pub message: String,
}

impl Problem {
    /// An error in `input`.
    pub fn error(input: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Error,
            input: input.into(),
            message: message.into(),
        }
    }

    /// A note about `input`.
    pub fn note(input: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Note,
            input: input.into(),
            message: message.into(),
        }
    }
}

/// Workloads and what went wrong reading them, from any mix of inputs.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The workloads found, in input order.
    pub workloads: Vec<Workload>,
    /// Problems with the input, in input order.
    pub problems: Vec<Problem>,
    /// Namespace labels, where known (Namespace objects of manifests, the cluster's namespaces): policies that
    /// select namespaces by label use them; a namespace without an entry has unknown labels.
    pub namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
}

/// Where a kind keeps its pod spec, as a path of keys.
pub fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        "PodTemplate" => &["template", "spec"],
        _ => return None,
    })
}

/// Printable, bounded text of an input string for messages.
pub(crate) fn shown(text: &str) -> String {
    kibaship_printable::printable(text, 120)
}

impl Inventory {
    /// Adds the workloads of one Kubernetes object (a workload kind, a `List` of them, a `Namespace`); other
    /// kinds are noted and skipped. `input` names the object in problems; `origin` is where its workloads
    /// come from; objects without a namespace get `default_namespace`.
    pub fn add_object(
        &mut self,
        object: &Value,
        default_namespace: &str,
        input: &str,
        origin: &Origin,
    ) {
        let Some(map) = object.as_object() else {
            if !object.is_null() {
                self.problems.push(Problem::error(
                    input,
                    "not a Kubernetes object (a mapping with `kind`)",
                ));
            }
            return;
        };
        let Some(kind) = map.get("kind").and_then(Value::as_str) else {
            self.problems
                .push(Problem::error(input, "the object has no `kind`"));
            return;
        };
        if let Some(items) = map.get("items").filter(|_| kind.ends_with("List")) {
            match items.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.add_object(
                            item,
                            default_namespace,
                            &format!("{input} items[{i}]"),
                            origin,
                        );
                    }
                }
                None => self.problems.push(Problem::error(
                    input,
                    format!("{kind}: `items` is not a list"),
                )),
            }
            return;
        }
        let metadata = map.get("metadata");
        let name = metadata
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if kind == "Namespace" {
            let labels = labels_of(metadata);
            if !name.is_empty() {
                self.namespace_labels.insert(name.to_owned(), labels);
            }
            return;
        }
        let Some(path) = pod_spec_path(kind) else {
            self.problems.push(Problem::note(
                input,
                format!(
                    "kind {} ({}) holds no pod template kibaverify reads; skipped",
                    shown(kind),
                    shown(name)
                ),
            ));
            return;
        };
        if name.is_empty() {
            self.problems.push(Problem::error(
                input,
                format!("{kind} without `metadata.name`"),
            ));
            return;
        }
        let namespace = match metadata.and_then(|m| m.get("namespace")) {
            None | Some(Value::Null) => default_namespace,
            Some(Value::String(n)) if !n.is_empty() => n.as_str(),
            Some(Value::String(_)) => default_namespace,
            Some(other) => {
                // `namespace: no` is a boolean in YAML 1.1, as Kubernetes reads it too.
                self.problems.push(Problem::error(
                    input,
                    format!(
                        "{kind} {}: `metadata.namespace` is not a string ({other}); quote it",
                        shown(name)
                    ),
                ));
                return;
            }
        }
        .to_owned();
        let mut spec = Some(object);
        for key in path {
            spec = spec.and_then(|s| s.get(key));
        }
        let what = format!("{kind} {}/{}", shown(&namespace), shown(name));
        let Some(spec) = spec.and_then(Value::as_object) else {
            self.problems.push(Problem::error(
                input,
                format!("{what}: no pod spec at `{}`", path.join(".")),
            ));
            return;
        };
        let mut containers = Vec::new();
        for (key, container_kind) in [
            ("containers", ContainerKind::Container),
            ("initContainers", ContainerKind::Init),
            ("ephemeralContainers", ContainerKind::Ephemeral),
        ] {
            let Some(list) = spec.get(key) else { continue };
            let Some(list) = list.as_array() else {
                self.problems.push(Problem::error(
                    input,
                    format!("{what}: `{key}` is not a list"),
                ));
                continue;
            };
            for (i, container) in list.iter().enumerate() {
                let container_name = container.get("name").and_then(Value::as_str).unwrap_or("");
                match container.get("image").and_then(Value::as_str) {
                    Some(image) if !image.trim().is_empty() => containers.push(Container {
                        name: container_name.to_owned(),
                        image: image.to_owned(),
                        kind: container_kind,
                    }),
                    _ => self.problems.push(Problem::error(
                        input,
                        format!(
                            "{what}: {key}[{i}] ({}) has no `image`",
                            shown(container_name)
                        ),
                    )),
                }
            }
        }
        if containers.is_empty() {
            self.problems.push(Problem::error(
                input,
                format!("{what}: no container with an image"),
            ));
            return;
        }
        let controlled_by = metadata
            .and_then(|m| m.get("ownerReferences"))
            .and_then(Value::as_array)
            .and_then(|owners| {
                owners
                    .iter()
                    .find(|o| o.get("controller") == Some(&Value::Bool(true)))
            })
            .and_then(|o| {
                Some((
                    o.get("kind")?.as_str()?.to_owned(),
                    o.get("name")?.as_str()?.to_owned(),
                ))
            });
        let pull_secrets = spec
            .get("imagePullSecrets")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|r| r.get("name").and_then(Value::as_str))
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let service_account = ["serviceAccountName", "serviceAccount"]
            .iter()
            .find_map(|key| spec.get(*key).and_then(Value::as_str))
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        self.workloads.push(Workload {
            namespace,
            kind: kind.to_owned(),
            name: name.to_owned(),
            containers,
            origin: origin.clone(),
            controlled_by,
            pull_secrets,
            service_account,
            credentials: PullCredentials::default(),
        });
    }

    /// Adds every document of a manifest file (`---`-separated YAML, or JSON). A document that is not valid
    /// YAML is an error naming the file, the document and its line; the other documents are still read.
    pub fn add_manifest_file(&mut self, file: &str, text: &str, default_namespace: &str) {
        for (index, (line, document)) in split_documents(text).into_iter().enumerate() {
            let number = index + 1;
            let input = format!("{file}:{line} (document {number})");
            let origin = Origin::Manifest {
                file: file.to_owned(),
                document: number,
                line,
            };
            match parse_document(document) {
                Ok(value) => self.add_object(&value, default_namespace, &input, &origin),
                Err((message, at)) => {
                    let input = match at {
                        // The document's text starts on its first line (after `---`).
                        Some(at) => format!("{file}:{} (document {number})", line + at - 1),
                        None => input,
                    };
                    self.problems
                        .push(Problem::error(input, format!("not valid YAML: {message}")))
                }
            }
        }
    }

    /// Adds the references of an image list: one a line, blank lines and `#` comments skipped. A line that is
    /// not an image reference is an error naming the file and line; the other lines are still read.
    pub fn add_image_list(&mut self, file: &str, text: &str, namespace: &str) {
        for (index, line) in text.lines().enumerate() {
            let reference = line.trim();
            if reference.is_empty() || reference.starts_with('#') {
                continue;
            }
            let origin = Origin::ImageList {
                file: file.to_owned(),
                line: index + 1,
            };
            self.add_reference(reference, namespace, origin);
        }
    }

    /// Adds one image reference (an argument or a list line) as a workload of kind `Image`.
    pub fn add_reference(&mut self, reference: &str, namespace: &str, origin: Origin) {
        if let Err(e) = kibaship_oci::Reference::parse(reference) {
            self.problems.push(Problem::error(
                origin.describe(),
                format!("`{}` is not an image reference: {e}", shown(reference)),
            ));
            return;
        }
        self.workloads.push(Workload {
            namespace: namespace.to_owned(),
            kind: "Image".to_owned(),
            name: reference.to_owned(),
            containers: vec![Container {
                name: "-".to_owned(),
                image: reference.to_owned(),
                kind: ContainerKind::Container,
            }],
            origin,
            controlled_by: None,
            pull_secrets: Vec::new(),
            service_account: None,
            credentials: PullCredentials::default(),
        });
    }

    /// Drops workloads whose controller is itself in the inventory, or of a kind listed completely
    /// (`listed_kinds`): a Deployment's ReplicaSets and their Pods run the Deployment's template, which is
    /// reported once, as the Deployment.
    pub fn drop_controlled(&mut self, listed_kinds: &[&str]) {
        let present: std::collections::HashSet<(String, String, String)> = self
            .workloads
            .iter()
            .map(|w| (w.namespace.clone(), w.kind.clone(), w.name.clone()))
            .collect();
        self.workloads.retain(|w| match &w.controlled_by {
            None => true,
            Some((kind, name)) => {
                !(listed_kinds.contains(&kind.as_str())
                    && (present.contains(&(w.namespace.clone(), kind.clone(), name.clone()))
                        || pod_spec_path(kind).is_some()))
            }
        });
    }
}

fn labels_of(metadata: Option<&Value>) -> BTreeMap<String, String> {
    metadata
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The documents of a YAML stream with the 1-based line each starts on: split at `---` lines (column 0) and
/// cut at `...` lines. A document marker always starts a line, and content of block scalars is indented, so a
/// line split finds what a YAML parser would.
pub fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut documents = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1usize;
    let mut ended = false;
    let mut offset = 0usize;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_marker = |m: &str| {
            bare == m
                || bare
                    .strip_prefix(m)
                    .is_some_and(|rest| rest.starts_with([' ', '\t']))
        };
        if is_marker("---") {
            if !ended {
                documents.push((start_line, &text[start..offset]));
            }
            // The rest of a `--- value` line belongs to the new document.
            start = offset + 3;
            start_line = index + 1;
            ended = false;
        } else if is_marker("...") && !ended {
            documents.push((start_line, &text[start..offset]));
            ended = true;
        }
        offset += line.len();
    }
    if !ended {
        documents.push((start_line, &text[start..]));
    }
    // Empty documents (before the first `---`, between markers) are not documents.
    documents
        .into_iter()
        .filter(|(_, d)| {
            d.lines().any(|l| {
                !l.trim().is_empty()
                    && !l.trim_start().starts_with('#')
                    && !l.trim_start().starts_with('%')
            })
        })
        .collect()
}

/// One YAML document as a JSON value, within the budgets above.
fn parse_document(document: &str) -> Result<Value, (String, Option<usize>)> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_aliases = MAX_YAML_ALIASES;
    budget.max_anchors = MAX_YAML_ALIASES;
    budget.max_depth = MAX_YAML_DEPTH;
    budget.flow_nesting_limit = MAX_YAML_DEPTH;
    budget.max_nodes = MAX_YAML_NODES;
    budget.max_events = 4 * MAX_YAML_NODES;
    budget.max_documents = 1;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    serde_saphyr::from_str_with_options::<Value>(document, options).map_err(|e| {
        let e = e.without_snippet();
        let text = e.to_string();
        let location = e.location().filter(|l| l.line() > 0);
        let text = match location {
            Some(l) => text
                .strip_suffix(&format!(" at line {}, column {}", l.line(), l.column()))
                .map_or_else(|| text.clone(), |t| format!("{t} (column {})", l.column())),
            None => text,
        };
        (text, location.and_then(|l| usize::try_from(l.line()).ok()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(text: &str) -> Inventory {
        let mut inventory = Inventory::default();
        inventory.add_manifest_file("m.yaml", text, "default");
        inventory
    }

    #[test]
    fn every_workload_kind_and_list_items() {
        let text = r#"
kind: List
items:
  - {kind: Pod, metadata: {name: p}, spec: {containers: [{name: a, image: r/a}], initContainers: [{name: i, image: r/i}], ephemeralContainers: [{name: e, image: r/e}]}}
  - {kind: ReplicaSet, metadata: {name: rs, namespace: ns1}, spec: {template: {spec: {containers: [{name: a, image: r/rs}]}}}}
---
{"kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "r/c"}]}}}}}}
...
---
# only a comment
---
kind: Namespace
metadata: {name: ns1, labels: {team: a}}
"#;
        let inv = inventory(text);
        assert!(inv.problems.is_empty(), "{:?}", inv.problems);
        let seen: Vec<(&str, &str, &str)> = inv
            .workloads
            .iter()
            .flat_map(|w| {
                w.containers
                    .iter()
                    .map(move |c| (w.namespace.as_str(), w.kind.as_str(), c.image.as_str()))
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("default", "Pod", "r/a"),
                ("default", "Pod", "r/i"),
                ("default", "Pod", "r/e"),
                ("ns1", "ReplicaSet", "r/rs"),
                ("default", "CronJob", "r/c"),
            ]
        );
        assert_eq!(
            inv.workloads[0].containers[2].kind,
            ContainerKind::Ephemeral
        );
        assert_eq!(inv.namespace_labels["ns1"]["team"], "a");
        assert_eq!(
            inv.workloads[2].origin,
            Origin::Manifest {
                file: "m.yaml".into(),
                document: 2,
                line: 6
            }
        );
    }

    #[test]
    fn bad_objects_are_named_and_the_rest_is_read() {
        let inv = inventory(
            "kind: Deployment\nmetadata: {name: d}\nspec: {}\n---\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: x}]}\n---\nmetadata: {name: nokind}\n---\n- 1\n---\nkind: Pod\nmetadata: {name: ok}\nspec: {containers: [{name: a, image: r/ok}]}\n",
        );
        let messages: Vec<String> = inv
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.input, p.message))
            .collect();
        assert_eq!(
            messages,
            [
                "m.yaml:1 (document 1): Deployment default/d: no pod spec at `spec.template.spec`",
                "m.yaml:4 (document 2): Pod default/p: containers[0] (x) has no `image`",
                "m.yaml:4 (document 2): Pod default/p: no container with an image",
                "m.yaml:8 (document 3): the object has no `kind`",
                "m.yaml:10 (document 4): not a Kubernetes object (a mapping with `kind`)",
            ]
        );
        assert_eq!(inv.workloads.len(), 1);
        assert_eq!(inv.workloads[0].name, "ok");
    }

    #[test]
    fn image_lists_skip_comments_and_name_bad_lines() {
        let mut inv = Inventory::default();
        inv.add_image_list("l.txt", "# c\n\nregistry.example/a:1\n  bad ref\n", "prod");
        assert_eq!(inv.workloads.len(), 1);
        assert_eq!(inv.workloads[0].namespace, "prod");
        assert_eq!(inv.problems.len(), 1);
        assert_eq!(inv.problems[0].input, "l.txt:4");
        assert!(
            inv.problems[0]
                .message
                .starts_with("`bad ref` is not an image reference")
        );
    }

    #[test]
    fn controlled_objects_are_reported_as_their_controller() {
        let owned = |kind: &str, name: &str, owner_kind: &str| -> Value {
            serde_json::json!({"kind": kind, "metadata": {"name": name, "namespace": "n", "ownerReferences": [{"kind": owner_kind, "name": "x", "controller": true}]}, "spec": {"containers": [{"name": "a", "image": "r/a"}], "template": {"spec": {"containers": [{"name": "a", "image": "r/a"}]}}}})
        };
        let mut inv = Inventory::default();
        inv.add_object(
            &owned("Pod", "p1", "ReplicaSet"),
            "default",
            "c",
            &Origin::Cluster,
        );
        inv.add_object(
            &owned("Pod", "p2", "Node"),
            "default",
            "c",
            &Origin::Cluster,
        );
        inv.add_object(
            &owned("ReplicaSet", "rs", "Deployment"),
            "default",
            "c",
            &Origin::Cluster,
        );
        // ReplicaSets were listed: Pods they control go; the ReplicaSet stays while Deployments were not listed.
        inv.drop_controlled(&["Pod", "ReplicaSet"]);
        let names: Vec<&str> = inv.workloads.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["p2", "rs"]);
    }

    #[test]
    fn documents_split_at_markers_only() {
        let docs = split_documents("a: 1\n--- \nb: |\n  ---\n  x\n---\n...\n--- c: 2\n");
        let texts: Vec<(usize, &str)> = docs;
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert_eq!(texts[1].0, 2);
        assert!(texts[1].1.contains("  ---"));
        assert_eq!(texts[2], (8, " c: 2\n"));
    }
}
