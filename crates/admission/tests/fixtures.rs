//! The images, pointers and request fields read from real AdmissionReviews: recorded from kube-apiserver
//! v1.37.2 (`testdata/admission/recorded/`), kubernetes/api's round-trip objects of every workload kind
//! with every field filled, and kubewarden's AdmissionRequests. kube-core and k8s-openapi read the same
//! files as independent witnesses.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use kibaship_admission::{
    ContainerRole, ImageSite, ObjectKind, Operation, Review, ReviewError, ReviewVersion,
    parse_review,
};
use serde_json::{Value, json};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/admission");

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{TESTDATA}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(path: &str) -> Review {
    parse_review(&read(path)).unwrap_or_else(|e| panic!("{path}: {}: {e}", e.code()))
}

fn site(role: ContainerRole, container: &str, image: &str, pointer: &str) -> ImageSite {
    ImageSite {
        container: container.into(),
        role,
        image: image.into(),
        pointer: pointer.into(),
    }
}

/// Every site's pointer leads to its image in the object as sent.
fn pointers_resolve(body: &[u8], review: &Review) {
    let doc: Value = serde_json::from_slice(body).unwrap();
    let object = &doc["request"]["object"];
    for s in &review.images {
        assert_eq!(
            object.pointer(&s.pointer).and_then(Value::as_str),
            Some(s.image.as_str()),
            "{}",
            s.pointer
        );
    }
}

const PINNED_AAA: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const PROXY: &str = "registry.example/team/proxy@sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e";

#[test]
fn recorded_pod_create_lists_every_image_in_order() {
    let review = parse("recorded/v1-pod-create.json");
    assert_eq!(review.api_version, ReviewVersion::V1);
    assert_eq!(review.kind, ObjectKind::Pod);
    assert_eq!(review.operation, Operation::Create);
    assert_eq!(review.sub_resource, None);
    assert_eq!(
        (
            review.namespace.as_str(),
            review.name.as_str(),
            review.dry_run
        ),
        ("rec", "web", false)
    );
    assert_eq!(review.uid.len(), 36);
    assert_eq!(
        review.images,
        vec![
            site(
                ContainerRole::InitContainer,
                "migrate",
                "registry.example/team/migrate:1.4",
                "/spec/initContainers/0/image"
            ),
            site(
                ContainerRole::Container,
                "app",
                "registry.example/team/app:2.1",
                "/spec/containers/0/image"
            ),
            site(
                ContainerRole::Container,
                "sidecar",
                PROXY,
                "/spec/containers/1/image"
            ),
            site(
                ContainerRole::ImageVolume,
                "models",
                "registry.example/team/models:7",
                "/spec/volumes/0/image/reference"
            ),
        ]
    );
    assert_eq!(review.pull_secrets, vec!["regcred", "mirror"]);
    assert_eq!(review.service_account.as_deref(), Some("builder"));
    pointers_resolve(&read("recorded/v1-pod-create.json"), &review);
}

#[test]
fn recorded_ephemeral_container_update_is_a_pod_update_with_its_subresource() {
    let path = "recorded/v1-pod-ephemeralcontainers-update.json";
    let review = parse(path);
    assert_eq!(
        (review.kind, review.operation),
        (ObjectKind::Pod, Operation::Update)
    );
    assert_eq!(review.sub_resource.as_deref(), Some("ephemeralcontainers"));
    // The pod was pinned when it was created (by this crate's answer, applied by the API server).
    assert_eq!(
        review.images,
        vec![
            site(
                ContainerRole::InitContainer,
                "migrate",
                &format!("registry.example/team/migrate:1.4@{PINNED_AAA}"),
                "/spec/initContainers/0/image"
            ),
            site(
                ContainerRole::Container,
                "app",
                &format!("registry.example/team/app:2.1@{PINNED_AAA}"),
                "/spec/containers/0/image"
            ),
            site(
                ContainerRole::Container,
                "sidecar",
                PROXY,
                "/spec/containers/1/image"
            ),
            site(
                ContainerRole::EphemeralContainer,
                "debugger",
                "registry.example/team/debug:1",
                "/spec/ephemeralContainers/0/image"
            ),
            site(
                ContainerRole::ImageVolume,
                "models",
                &format!("registry.example/team/models:7@{PINNED_AAA}"),
                "/spec/volumes/0/image/reference"
            ),
        ]
    );
    pointers_resolve(&read(path), &review);
}

#[test]
fn recorded_dry_run_with_generate_name_has_no_name() {
    let review = parse("recorded/v1-pod-create-dry-run.json");
    assert!(review.dry_run);
    assert_eq!(review.name, "");
    assert_eq!(review.images.len(), 4);
}

#[test]
fn recorded_delete_has_no_images() {
    let review = parse("recorded/v1-pod-delete.json");
    assert_eq!(
        (review.kind, review.operation, review.name.as_str()),
        (ObjectKind::Pod, Operation::Delete, "web")
    );
    assert!(review.images.is_empty() && review.pull_secrets.is_empty());
    assert_eq!(review.service_account, None);
}

#[test]
fn recorded_workloads_read_their_pod_templates() {
    let cases = [
        (
            "v1-deployment-create",
            ObjectKind::Deployment,
            "/spec/template/spec",
        ),
        (
            "v1-statefulset-create",
            ObjectKind::StatefulSet,
            "/spec/template/spec",
        ),
        (
            "v1-daemonset-create",
            ObjectKind::DaemonSet,
            "/spec/template/spec",
        ),
        (
            "v1-replicaset-create",
            ObjectKind::ReplicaSet,
            "/spec/template/spec",
        ),
        (
            "v1-replicationcontroller-create",
            ObjectKind::ReplicationController,
            "/spec/template/spec",
        ),
        ("v1-job-create", ObjectKind::Job, "/spec/template/spec"),
        (
            "v1-cronjob-create",
            ObjectKind::CronJob,
            "/spec/jobTemplate/spec/template/spec",
        ),
        (
            "v1beta1-deployment-create",
            ObjectKind::Deployment,
            "/spec/template/spec",
        ),
    ];
    for (name, kind, base) in cases {
        let path = format!("recorded/{name}.json");
        let review = parse(&path);
        assert_eq!(
            (review.kind, review.operation, review.name.as_str()),
            (kind, Operation::Create, "w"),
            "{name}"
        );
        assert_eq!(kind.pod_spec_pointer(), base);
        let version = if name.starts_with("v1beta1") {
            ReviewVersion::V1Beta1
        } else {
            ReviewVersion::V1
        };
        assert_eq!(review.api_version, version, "{name}");
        assert_eq!(
            review.images,
            vec![
                site(
                    ContainerRole::InitContainer,
                    "init",
                    "registry.example/team/init:1",
                    &format!("{base}/initContainers/0/image")
                ),
                site(
                    ContainerRole::Container,
                    "app",
                    "registry.example/team/app:2.1",
                    &format!("{base}/containers/0/image")
                ),
            ],
            "{name}"
        );
        assert!(
            review.pull_secrets.is_empty() && review.service_account.is_none(),
            "{name}"
        );
        pointers_resolve(&read(&path), &review);
    }
}

#[test]
fn recorded_update_reads_the_new_object_not_the_old_one() {
    let review = parse("recorded/v1-deployment-update.json");
    assert_eq!(review.operation, Operation::Update);
    let images: Vec<&str> = review.images.iter().map(|s| s.image.as_str()).collect();
    assert_eq!(
        images,
        vec![
            format!("registry.example/team/init:1@{PINNED_AAA}").as_str(),
            "registry.example/team/app:2.2"
        ]
    );
}

#[test]
fn recorded_v1beta1_pod() {
    let review = parse("recorded/v1beta1-pod-create.json");
    assert_eq!(
        (review.api_version, review.namespace.as_str()),
        (ReviewVersion::V1Beta1, "rec-beta")
    );
    assert_eq!(review.images.len(), 4);
}

/// kube-core's `AdmissionReview<DynamicObject>` reads the same uid, operation, kind and name.
#[test]
fn kube_core_agrees_on_every_recorded_review() {
    use kube_core::DynamicObject;
    use kube_core::admission::{AdmissionRequest, AdmissionReview};
    let dir = format!("{TESTDATA}/recorded");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        let ours = parse_review(&body).unwrap();
        let theirs: AdmissionReview<DynamicObject> = serde_json::from_slice(&body).unwrap();
        let request: AdmissionRequest<DynamicObject> = theirs.try_into().unwrap();
        assert_eq!(request.uid, ours.uid);
        assert_eq!(
            format!("{:?}", request.operation).to_uppercase(),
            ours.operation.as_str()
        );
        assert_eq!(request.kind.kind, ours.kind.kind());
        assert_eq!(request.name, ours.name);
        assert_eq!(request.namespace.unwrap_or_default(), ours.namespace);
        assert_eq!(request.dry_run, ours.dry_run);
        pointers_resolve(&body, &ours);
        seen += 1;
    }
    assert_eq!(seen, 15);
}

/// An AdmissionReview (CREATE, given version) around `object`, for the kind its apiVersion and kind name.
fn wrap(version: &str, object: Value, operation: &str) -> Vec<u8> {
    let api_version = object["apiVersion"].as_str().unwrap_or("v1").to_string();
    let (group, kind_version) = api_version.split_once('/').unwrap_or(("", "v1"));
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    serde_json::to_vec(&json!({
        "apiVersion": version,
        "kind": "AdmissionReview",
        "request": {
            "uid": "0df28fbd-5f5f-4bf6-8a36-6f1f4b0b6e5f",
            "kind": {"group": group, "version": kind_version, "kind": kind},
            "resource": {"group": group, "version": kind_version, "resource": "things"},
            "operation": operation,
            "userInfo": {"username": "alice"},
            "object": object,
        }
    }))
    .unwrap()
}

/// k8s-openapi's typed pod spec: every container image, in our order.
fn typed_images(spec: &k8s_openapi::api::core::v1::PodSpec) -> Vec<String> {
    let mut images = Vec::new();
    images.extend(
        spec.init_containers
            .iter()
            .flatten()
            .filter_map(|c| c.image.clone()),
    );
    images.extend(spec.containers.iter().filter_map(|c| c.image.clone()));
    images.extend(
        spec.ephemeral_containers
            .iter()
            .flatten()
            .filter_map(|c| c.image.clone()),
    );
    images.extend(
        spec.volumes
            .iter()
            .flatten()
            .filter_map(|v| v.image.as_ref().and_then(|i| i.reference.clone())),
    );
    images
}

#[test]
fn every_kind_of_the_round_trip_fixtures_reads_exactly_its_pod_spec_images() {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    let cases = [
        ("core.v1.Pod", ObjectKind::Pod),
        ("apps.v1.Deployment", ObjectKind::Deployment),
        ("apps.v1.StatefulSet", ObjectKind::StatefulSet),
        ("apps.v1.DaemonSet", ObjectKind::DaemonSet),
        ("apps.v1.ReplicaSet", ObjectKind::ReplicaSet),
        (
            "core.v1.ReplicationController",
            ObjectKind::ReplicationController,
        ),
        ("batch.v1.Job", ObjectKind::Job),
        ("batch.v1.CronJob", ObjectKind::CronJob),
    ];
    for (file, kind) in cases {
        let bytes = read(&format!("k8s-api-roundtrip/{file}.json"));
        let object: Value = serde_json::from_slice(&bytes).unwrap();
        let typed: Vec<String> = match kind {
            ObjectKind::Pod => typed_images(
                &serde_json::from_slice::<core::Pod>(&bytes)
                    .unwrap()
                    .spec
                    .unwrap(),
            ),
            ObjectKind::ReplicationController => {
                let rc: core::ReplicationController = serde_json::from_slice(&bytes).unwrap();
                typed_images(&rc.spec.unwrap().template.unwrap().spec.unwrap())
            }
            ObjectKind::Deployment => typed_images(
                &serde_json::from_slice::<apps::Deployment>(&bytes)
                    .unwrap()
                    .spec
                    .template
                    .spec
                    .unwrap(),
            ),
            ObjectKind::StatefulSet => typed_images(
                &serde_json::from_slice::<apps::StatefulSet>(&bytes)
                    .unwrap()
                    .spec
                    .template
                    .spec
                    .unwrap(),
            ),
            ObjectKind::DaemonSet => typed_images(
                &serde_json::from_slice::<apps::DaemonSet>(&bytes)
                    .unwrap()
                    .spec
                    .template
                    .spec
                    .unwrap(),
            ),
            ObjectKind::ReplicaSet => typed_images(
                &serde_json::from_slice::<apps::ReplicaSet>(&bytes)
                    .unwrap()
                    .spec
                    .template
                    .unwrap()
                    .spec
                    .unwrap(),
            ),
            ObjectKind::Job => typed_images(
                &serde_json::from_slice::<batch::Job>(&bytes)
                    .unwrap()
                    .spec
                    .unwrap()
                    .template
                    .spec
                    .unwrap(),
            ),
            ObjectKind::CronJob => typed_images(
                &serde_json::from_slice::<batch::CronJob>(&bytes)
                    .unwrap()
                    .spec
                    .job_template
                    .spec
                    .unwrap()
                    .template
                    .spec
                    .unwrap(),
            ),
        };
        for version in ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] {
            let body = wrap(version, object.clone(), "CREATE");
            let review = parse_review(&body).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(review.kind, kind, "{file}");
            let base = kind.pod_spec_pointer();
            // Not the RBD volume's `image`, not the Pod's status: only what runs.
            assert_eq!(
                review.images,
                vec![
                    site(
                        ContainerRole::InitContainer,
                        "nameValue",
                        "imageValue",
                        &format!("{base}/initContainers/0/image")
                    ),
                    site(
                        ContainerRole::Container,
                        "nameValue",
                        "imageValue",
                        &format!("{base}/containers/0/image")
                    ),
                    site(
                        ContainerRole::EphemeralContainer,
                        "nameValue",
                        "imageValue",
                        &format!("{base}/ephemeralContainers/0/image")
                    ),
                    site(
                        ContainerRole::ImageVolume,
                        "nameValue",
                        "referenceValue",
                        &format!("{base}/volumes/0/image/reference")
                    ),
                ],
                "{file}"
            );
            let ours: Vec<String> = review.images.iter().map(|s| s.image.clone()).collect();
            assert_eq!(ours, typed, "{file}: k8s-openapi reads other images");
            assert_eq!(review.pull_secrets, vec!["nameValue"], "{file}");
            assert_eq!(
                review.service_account.as_deref(),
                Some("serviceAccountNameValue"),
                "{file}"
            );
            pointers_resolve(&body, &review);
        }
    }
}

#[test]
fn the_round_trip_admission_reviews_are_refused_with_their_uid() {
    for (file, version) in [
        (
            "admission.k8s.io.v1.AdmissionReview.json",
            ReviewVersion::V1,
        ),
        (
            "admission.k8s.io.v1beta1.AdmissionReview.json",
            ReviewVersion::V1Beta1,
        ),
    ] {
        let bytes = read(&format!("k8s-api-roundtrip/{file}"));
        // Its operation is the fuzzer's `operationValue`.
        let e = parse_review(&bytes).unwrap_err();
        assert_eq!(
            (e.code(), e.uid(), e.api_version()),
            ("unsupported-operation", Some("uidValue"), Some(version))
        );
        assert!(e.to_string().contains("`operationValue`"), "{e}");
        // With a real operation, its kind (`groupValue/versionValue kindValue`) is refused.
        let mut doc: Value = serde_json::from_slice(&bytes).unwrap();
        doc["request"]["operation"] = json!("CREATE");
        let e = parse_review(&serde_json::to_vec(&doc).unwrap()).unwrap_err();
        assert!(matches!(e, ReviewError::UnsupportedKind { .. }), "{e:?}");
        assert_eq!(e.uid(), Some("uidValue"));
        assert!(
            e.to_string()
                .contains("`groupValue/versionValue kindValue`"),
            "{e}"
        );
    }
}

#[test]
fn kubewarden_requests_wrapped_in_reviews() {
    let signed = "ghcr.io/kubewarden/test-verify-image-signatures:signed";
    let unsigned = "ghcr.io/kubewarden/test-verify-image-signatures:unsigned";
    let privileged = "ghcr.io/kubewarden/tests/pod-privileged:v0.2.1";
    let name = "test-verify-image-signatures";
    let template = "/spec/template/spec/containers/0/image";
    let cases: [(&str, ObjectKind, Vec<ImageSite>); 16] = [
        (
            "cronjob_creation_signed",
            ObjectKind::CronJob,
            vec![site(
                ContainerRole::Container,
                name,
                signed,
                "/spec/jobTemplate/spec/template/spec/containers/0/image",
            )],
        ),
        (
            "cronjob_creation_unsigned",
            ObjectKind::CronJob,
            vec![site(
                ContainerRole::Container,
                name,
                unsigned,
                "/spec/jobTemplate/spec/template/spec/containers/0/image",
            )],
        ),
        (
            "daemonset_creation_signed",
            ObjectKind::DaemonSet,
            vec![site(ContainerRole::Container, name, signed, template)],
        ),
        (
            "daemonset_creation_unsigned",
            ObjectKind::DaemonSet,
            vec![site(ContainerRole::Container, name, unsigned, template)],
        ),
        (
            "deployment_creation_signed",
            ObjectKind::Deployment,
            vec![site(ContainerRole::Container, name, signed, template)],
        ),
        (
            "deployment_creation_unsigned",
            ObjectKind::Deployment,
            vec![site(ContainerRole::Container, name, unsigned, template)],
        ),
        (
            "job_creation_signed",
            ObjectKind::Job,
            vec![site(ContainerRole::Container, name, signed, template)],
        ),
        (
            "job_creation_unsigned",
            ObjectKind::Job,
            vec![site(ContainerRole::Container, name, unsigned, template)],
        ),
        (
            "pod_creation_signed",
            ObjectKind::Pod,
            vec![site(
                ContainerRole::Container,
                name,
                signed,
                "/spec/containers/0/image",
            )],
        ),
        (
            "pod_creation_signed_with_certificate",
            ObjectKind::Pod,
            vec![site(
                ContainerRole::Container,
                name,
                privileged,
                "/spec/containers/0/image",
            )],
        ),
        (
            "pod_creation_signed_with_keyless_mode",
            ObjectKind::Pod,
            vec![site(
                ContainerRole::Container,
                name,
                privileged,
                "/spec/containers/0/image",
            )],
        ),
        (
            "pod_creation_unsigned",
            ObjectKind::Pod,
            vec![site(
                ContainerRole::Container,
                name,
                unsigned,
                "/spec/containers/0/image",
            )],
        ),
        (
            "pod_creation_with_digest",
            ObjectKind::Pod,
            vec![site(
                ContainerRole::Container,
                "nginx",
                "nginx:v1.26@sha256:89102e348749bb17a6a651a4b2a17420e1a66d2a44a675b981973d49a5af3a5e",
                "/spec/containers/0/image",
            )],
        ),
        (
            "pod_creation_with_init_container",
            ObjectKind::Pod,
            vec![
                site(
                    ContainerRole::InitContainer,
                    "init",
                    "init",
                    "/spec/initContainers/0/image",
                ),
                site(
                    ContainerRole::Container,
                    "nginx",
                    "nginx",
                    "/spec/containers/0/image",
                ),
            ],
        ),
        (
            "replicaset_creation_signed",
            ObjectKind::ReplicaSet,
            vec![site(ContainerRole::Container, name, signed, template)],
        ),
        (
            "replicaset_creation_unsigned",
            ObjectKind::ReplicaSet,
            vec![site(ContainerRole::Container, name, unsigned, template)],
        ),
    ];
    for (file, kind, images) in cases {
        let request: Value =
            serde_json::from_slice(&read(&format!("kubewarden/{file}.json"))).unwrap();
        let body = serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request
        }))
        .unwrap();
        let review = parse_review(&body).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            (review.kind, review.operation),
            (kind, Operation::Create),
            "{file}"
        );
        assert_eq!(review.uid, "1299d386-525b-4032-98ae-1949f69f9cfc", "{file}");
        assert_eq!(review.namespace, "", "{file}: no namespace in the request");
        assert_eq!(review.images, images, "{file}");
        pointers_resolve(&body, &review);
    }
}
