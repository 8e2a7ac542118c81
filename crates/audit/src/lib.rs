//! `kibaverify audit`: which images workloads run, who signed them, and whether the admission webhook would let
//! them in.
//!
//! * [`Inventory`] gathers [`Workload`]s (workloads → containers → image references) from Kubernetes YAML
//!   ([`Inventory::add_manifest_file`]: multi-document, Pods and the pod templates of Deployments,
//!   StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs, `List` kinds; other kinds are noted, invalid
//!   documents are [`Problem`]s naming file, line and document), from an image list
//!   ([`Inventory::add_image_list`]), from arguments ([`Inventory::add_reference`]) and from a cluster
//!   ([`cluster::add_cluster`], the one module that does I/O besides the registry reads).
//! * [`pull_secrets`] turns a workload's pull secrets into registry credentials
//!   ([`cluster::add_pull_credentials`] reads them, with `kibaverify audit --use-pull-secrets`); the audit reads
//!   an image with a workload's pull secret apart from every other credential (nothing read with one tenant's
//!   secret is given to another workload).
//! * [`audit()`] judges it: every distinct reference resolved once, every distinct digest verified once per
//!   distinct requirements through `kibaship_cosign::ImageVerifier` (the webhook's verification), with bounded
//!   concurrency per registry; per container the webhook's answer from the admission policy
//!   (`kibaship_policy::Answer::for_image`) or from the flags' requirements ([`Requirements`]).
//! * [`Report`] is the result, pure data, with its stable JSON ([`REPORT_SCHEMA`]) and renderers in
//!   [`render`]: a table, JSON, SARIF 2.1.0 and one self-contained HTML page.
//!
//! ```
//! use kibaship_audit::{Inventory, Severity};
//!
//! let mut inventory = Inventory::default();
//! inventory.add_manifest_file(
//!     "app.yaml",
//!     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\nspec:\n  template:\n    spec:\n      containers: [{name: app, image: registry.example/web:1}]\n---\nkind: Service\nmetadata: {name: web}\n---\nkind: [\n",
//!     "default",
//! );
//! assert_eq!(inventory.workloads.len(), 1);
//! assert_eq!(inventory.workloads[0].containers[0].image, "registry.example/web:1");
//! assert_eq!(inventory.problems[0].severity, Severity::Note); // the Service
//! assert_eq!(inventory.problems[1].severity, Severity::Error); // document 3 is not YAML
//! assert!(inventory.problems[1].input.starts_with("app.yaml:12 (document 3)"));
//! ```
#![deny(missing_docs)]

mod audit;
pub mod cluster;
mod inventory;
pub mod pull_secrets;
pub mod render;
mod report;

pub use audit::{AuditConfig, DEFAULT_CONCURRENCY, NoProgress, Progress, Requirements, audit};
pub use inventory::{
    Container, ContainerKind, Inventory, MAX_INPUT_FILE_BYTES, Origin, Problem, Severity, Workload,
    pod_spec_path, split_documents,
};
pub use report::{
    AttestationEntry, ContainerEntry, ExceptionEntry, FailOn, ImageEntry, ImageStatus,
    PolicyResult, REPORT_SCHEMA, Report, RequirementsInfo, Summary, WorkloadEntry,
};
