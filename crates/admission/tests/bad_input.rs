//! Untrusted AdmissionReview bodies never panic; each refusal has its code, names where the problem is, and
//! carries the uid once it was read.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use kibaship_admission::{
    ContainerRole, Decision, MAX_IMAGES, MAX_PULL_SECRETS, MAX_REVIEW_BYTES, Operation,
    ReviewError, ReviewVersion, parse_review, respond,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const UID: &str = "7c1a4b3e-2f35-4b7e-9d2a-1c1e6a0c9f11";
const POD_CREATE: &[u8] = include_bytes!("../../../testdata/admission/recorded/v1-pod-create.json");
const DEPLOYMENT_CREATE: &[u8] =
    include_bytes!("../../../testdata/admission/recorded/v1-deployment-create.json");
const EPHEMERAL_UPDATE: &[u8] =
    include_bytes!("../../../testdata/admission/recorded/v1-pod-ephemeralcontainers-update.json");
const V1BETA1_POD: &[u8] =
    include_bytes!("../../../testdata/admission/recorded/v1beta1-pod-create.json");

/// A v1 AdmissionReview of a CREATE of `object` (kind from `gvk`).
fn review(gvk: (&str, &str, &str), object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": UID,
            "kind": {"group": gvk.0, "version": gvk.1, "kind": gvk.2},
            "resource": {"group": gvk.0, "version": gvk.1, "resource": "pods"},
            "namespace": "team",
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": object,
        }
    }))
    .unwrap()
}

fn pod_review(spec: Value) -> Vec<u8> {
    review(
        ("", "v1", "Pod"),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}),
    )
}

fn edit(body: &[u8], change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(body).unwrap();
    change(&mut doc);
    serde_json::to_vec(&doc).unwrap()
}

fn err(body: &[u8]) -> ReviewError {
    match parse_review(body) {
        Ok(review) => panic!("accepted: {review:?}"),
        Err(e) => e,
    }
}

/// A malformed-object error at `pointer`, carrying the request's uid; returns its text.
fn malformed_at(body: &[u8], pointer: &str) -> String {
    let e = err(body);
    match &e {
        ReviewError::MalformedObject {
            pointer: p, uid, ..
        } => {
            assert_eq!(p, pointer, "{e}");
            // The body may be nested too deep for serde_json's Value: find the uid as text.
            let text = String::from_utf8_lossy(body);
            assert!(text.contains(&format!("\"uid\":\"{uid}\"")), "{uid}");
        }
        other => panic!(
            "expected malformed-object at {pointer}, got {}: {other}",
            other.code()
        ),
    }
    assert_eq!(e.code(), "malformed-object");
    e.to_string()
}

#[test]
fn malformed_json_is_refused_without_a_uid() {
    for body in [
        &b"{\"apiVersion\": admission}"[..],
        b"{\"a\" 1}",
        b"nul",
        b"{}}",
        b"\xef\xbb\xbf{}",
        b"",
        b"   ",
    ] {
        let e = err(body);
        assert_eq!(e.code(), "malformed-json", "{body:?}: {e}");
        assert_eq!((e.uid(), e.api_version()), (None, None));
        assert!(e.to_string().contains("line "), "{e}");
    }
    let e = err(b"{\"a\" 1}");
    assert!(
        matches!(
            e,
            ReviewError::MalformedJson {
                truncated: false,
                line: 1,
                column: 6,
                ..
            }
        ),
        "{e:?}"
    );
    // Text after the document.
    let mut trailing = POD_CREATE.to_vec();
    trailing.extend_from_slice(b" {}");
    assert!(matches!(
        err(&trailing),
        ReviewError::MalformedJson {
            truncated: false,
            ..
        }
    ));
}

#[test]
fn every_truncation_of_a_real_review_is_refused_as_truncated() {
    let end = POD_CREATE.iter().rposition(|b| *b == b'}').unwrap();
    for cut in 0..end {
        match parse_review(&POD_CREATE[..cut]) {
            Err(ReviewError::MalformedJson {
                truncated: true, ..
            }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    let e = err(&POD_CREATE[..POD_CREATE.len() / 2]);
    assert!(
        e.to_string()
            .starts_with("the AdmissionReview body ends before its JSON does (truncated?)"),
        "{e}"
    );
}

#[test]
fn a_body_over_the_limit_is_refused_before_parsing() {
    // Not JSON at all: the size alone decides.
    let e = err(&vec![b'x'; MAX_REVIEW_BYTES + 1]);
    assert_eq!(
        e,
        ReviewError::TooLarge {
            size: MAX_REVIEW_BYTES + 1
        }
    );
    assert_eq!(e.code(), "too-large");
    assert_eq!(
        e.to_string(),
        format!(
            "the AdmissionReview body is {} bytes; at most 6291456 are read",
            MAX_REVIEW_BYTES + 1
        )
    );
    // A real review padded to exactly the limit is read.
    let mut padded = POD_CREATE.to_vec();
    padded.resize(MAX_REVIEW_BYTES, b' ');
    assert_eq!(parse_review(&padded).unwrap().images.len(), 4);
    padded.push(b' ');
    assert!(matches!(err(&padded), ReviewError::TooLarge { .. }));
}

#[test]
fn deep_nesting_is_skipped_or_refused_without_recursing() {
    let depth = 1_000_000;
    let nested = |open: &str, close: &str| format!("{}{}", open.repeat(depth), close.repeat(depth));
    // The whole body.
    let e = err(nested("[", "]").as_bytes());
    assert_eq!(
        e.to_string(),
        "the body is not an AdmissionReview: the document is an array, not an object"
    );
    // In a part that is not read (an unknown field of the object): skipped, the review is read.
    let body = String::from_utf8(pod_review(
        json!({"containers": [{"name": "a", "image": "x:1"}]}),
    ))
    .unwrap();
    let objects = format!("{}0{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    for junk in [nested("[", "]"), objects] {
        let deep = body.replacen("\"spec\":", &format!("\"junk\":{junk},\"spec\":"), 1);
        assert!(deep.len() < MAX_REVIEW_BYTES);
        assert_eq!(parse_review(deep.as_bytes()).unwrap().images.len(), 1);
    }
    // Where an image is read: refused by type, at its pointer.
    let at_image = body.replacen("\"x:1\"", &nested("[", "]"), 1);
    let text = malformed_at(at_image.as_bytes(), "/spec/containers/0/image");
    assert!(
        text.contains("the image of container `a` is an array, not a string"),
        "{text}"
    );
    // 128 levels (serde_json's recursion limit for what it builds) inside a container: skipped.
    let body = pod_review(
        json!({"containers": [{"name": "a", "image": "x:1", "args": [nested_value(200)]}]}),
    );
    assert_eq!(parse_review(&body).unwrap().images.len(), 1);
}

fn nested_value(depth: usize) -> Value {
    (0..depth).fold(json!(0), |inner, _| json!([inner]))
}

#[test]
fn unknown_kinds_are_refused_with_the_uid() {
    for (gvk, shown) in [
        (("", "v1", "ConfigMap"), "`v1 ConfigMap`"),
        (
            ("apps", "v1beta1", "Deployment"),
            "`apps/v1beta1 Deployment`",
        ),
        (("apps", "v1", "Pod"), "`apps/v1 Pod`"),
        (("", "v1", "PodExecOptions"), "`v1 PodExecOptions`"),
        (("autoscaling", "v1", "Scale"), "`autoscaling/v1 Scale`"),
    ] {
        let e = err(&review(gvk, json!({"spec": {}})));
        assert_eq!(
            (e.code(), e.uid(), e.api_version()),
            ("unsupported-kind", Some(UID), Some(ReviewVersion::V1))
        );
        assert!(
            e.to_string()
                .starts_with(&format!("kind {shown} (/request/kind) is not reviewed")),
            "{e}"
        );
    }
    // Refused for DELETE too: the kind is checked before the operation decides whether images are read.
    let delete = edit(&review(("", "v1", "Secret"), Value::Null), |d| {
        d["request"]["operation"] = json!("DELETE")
    });
    assert_eq!(err(&delete).code(), "unsupported-kind");
}

#[test]
fn unknown_versions_and_other_documents_are_refused() {
    let e = err(&edit(POD_CREATE, |d| {
        d["apiVersion"] = json!("admission.k8s.io/v2")
    }));
    assert_eq!((e.code(), e.uid()), ("unsupported-version", None));
    assert_eq!(
        e.to_string(),
        "AdmissionReview apiVersion `admission.k8s.io/v2` is not supported (admission.k8s.io/v1 and admission.k8s.io/v1beta1 are)"
    );
    let e = err(&edit(POD_CREATE, |d| {
        d.as_object_mut().unwrap().retain(|k, _| k != "apiVersion")
    }));
    assert!(e.to_string().contains("apiVersion (missing)"), "{e}");
    let e = err(&edit(POD_CREATE, |d| d["kind"] = json!("ConfigMap")));
    assert_eq!(
        e.to_string(),
        "the body is not an AdmissionReview: its kind is `ConfigMap`"
    );
    for body in [&b"42"[..], b"\"AdmissionReview\"", b"null", b"[]"] {
        assert_eq!(err(body).code(), "not-an-admission-review");
    }
    // A response, not a request.
    let e = err(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u","allowed":true}}"#);
    assert_eq!(
        (e.code(), e.uid(), e.api_version()),
        ("missing-request", None, Some(ReviewVersion::V1))
    );
    let e =
        err(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":[]}"#);
    assert_eq!(
        e.to_string(),
        "the AdmissionReview has no request: /request is an array, not an object"
    );
    assert_eq!(e.api_version(), Some(ReviewVersion::V1Beta1));
}

#[test]
fn a_missing_uid_is_refused_without_one() {
    let cases: [(Value, &str); 4] = [
        (Value::Null, "is null, not a string"),
        (json!(""), "is empty"),
        (json!(42), "is a number, not a string"),
        (json!({"a": 1}), "is an object, not a string"),
    ];
    for (uid, problem) in cases {
        let e = err(&edit(POD_CREATE, |d| d["request"]["uid"] = uid));
        assert_eq!(
            (e.code(), e.uid(), e.api_version()),
            ("missing-uid", None, Some(ReviewVersion::V1))
        );
        assert_eq!(
            e.to_string(),
            format!("the AdmissionReview request has no uid: /request/uid {problem}")
        );
    }
    let e = err(&edit(POD_CREATE, |d| {
        d["request"].as_object_mut().unwrap().remove("uid");
    }));
    assert!(e.to_string().ends_with("/request/uid is missing"), "{e}");
    // Twice: which one would the answer carry?
    let twice = String::from_utf8(POD_CREATE.to_vec()).unwrap().replacen(
        "\"uid\":",
        "\"uid\":\"other\",\"uid\":",
        1,
    );
    let e = err(twice.as_bytes());
    assert_eq!((e.code(), e.uid()), ("missing-uid", None));
    assert!(e.to_string().ends_with("appears more than once"), "{e}");
}

#[test]
fn a_create_or_update_without_object_is_refused() {
    for operation in ["CREATE", "UPDATE"] {
        for object in [None, Some(Value::Null)] {
            let body = edit(POD_CREATE, |d| {
                d["request"]["operation"] = json!(operation);
                match &object {
                    Some(v) => d["request"]["object"] = v.clone(),
                    None => {
                        d["request"].as_object_mut().unwrap().remove("object");
                    }
                }
            });
            let e = err(&body);
            assert_eq!(
                (e.code(), e.uid()),
                ("missing-object", Some(UID_OF_POD_CREATE()))
            );
            assert_eq!(
                e.to_string(),
                format!("the {operation} request has no object (/request/object)")
            );
        }
    }
    let e = err(&edit(POD_CREATE, |d| d["request"]["object"] = json!("pod")));
    assert_eq!(e.code(), "malformed-request");
    assert!(
        e.to_string()
            .ends_with("/request/object is a string, not an object"),
        "{e}"
    );
    // DELETE and CONNECT have no new object, and no images.
    for operation in [
        ("DELETE", Operation::Delete),
        ("CONNECT", Operation::Connect),
    ] {
        let review = parse_review(&edit(POD_CREATE, |d| {
            d["request"]["operation"] = json!(operation.0);
            d["request"]["object"] = Value::Null;
        }))
        .unwrap();
        assert_eq!(review.operation, operation.1);
        assert!(review.images.is_empty());
    }
}

#[allow(non_snake_case)]
fn UID_OF_POD_CREATE() -> &'static str {
    let doc: Value = serde_json::from_slice(POD_CREATE).unwrap();
    Box::leak(
        doc["request"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
            .into_boxed_str(),
    )
}

#[test]
fn unknown_operations_and_malformed_request_fields_are_refused_with_the_uid() {
    let e = err(&edit(POD_CREATE, |d| {
        d["request"]["operation"] = json!("PATCH")
    }));
    assert_eq!(e.code(), "unsupported-operation");
    assert_eq!(
        e.to_string(),
        "operation `PATCH` (/request/operation) is not one of CREATE, UPDATE, DELETE, CONNECT"
    );
    assert!(e.uid().is_some());
    for (field, value, pointer) in [
        ("operation", json!(1), "/request/operation"),
        ("kind", json!("Pod"), "/request/kind"),
        ("namespace", json!(["a"]), "/request/namespace"),
        ("name", json!(true), "/request/name"),
        ("subResource", json!({}), "/request/subResource"),
        ("dryRun", json!("true"), "/request/dryRun"),
    ] {
        let e = err(&edit(POD_CREATE, |d| d["request"][field] = value.clone()));
        assert_eq!(
            (e.code(), e.uid()),
            ("malformed-request", Some(UID_OF_POD_CREATE())),
            "{field}"
        );
        assert!(
            e.to_string().contains(&format!("malformed: {pointer} is ")),
            "{e}"
        );
    }
    let e = err(&edit(POD_CREATE, |d| {
        d["request"]["kind"]["version"] = json!(1)
    }));
    assert!(
        e.to_string()
            .contains("/request/kind/version is a number, not a string"),
        "{e}"
    );
}

#[test]
fn a_container_without_image_is_an_error_naming_it() {
    for (image, problem) in [
        (None, "container `web` has no image"),
        (Some(Value::Null), "container `web` has no image"),
        (Some(json!("")), "container `web` has an empty image"),
        (
            Some(json!(5)),
            "the image of container `web` is a number, not a string",
        ),
    ] {
        let mut container = json!({"name": "web"});
        if let Some(image) = image {
            container["image"] = image;
        }
        let body = pod_review(json!({"containers": [{"name": "ok", "image": "a:1"}, container]}));
        let text = malformed_at(&body, "/spec/containers/1/image");
        assert_eq!(
            text,
            format!("the Pod is malformed at /spec/containers/1/image: {problem}")
        );
    }
    // In a template, an init container and an ephemeral container alike.
    let body = edit(DEPLOYMENT_CREATE, |d| {
        d["request"]["object"]["spec"]["template"]["spec"]["initContainers"][0]
            .as_object_mut()
            .unwrap()
            .remove("image");
    });
    let text = malformed_at(&body, "/spec/template/spec/initContainers/0/image");
    assert!(
        text.ends_with("init container `init` has no image"),
        "{text}"
    );
    let body = edit(EPHEMERAL_UPDATE, |d| {
        d["request"]["object"]["spec"]["ephemeralContainers"][0]["image"] = json!("")
    });
    let e = err(&body);
    assert!(
        e.to_string()
            .ends_with("ephemeral container `debugger` has an empty image"),
        "{e}"
    );
    // An image volume without reference, a container without name.
    let text = malformed_at(
        &pod_review(
            json!({"containers": [{"name": "a", "image": "x:1"}], "volumes": [{"name": "m", "image": {"pullPolicy": "Always"}}]}),
        ),
        "/spec/volumes/0/image/reference",
    );
    assert!(text.ends_with("image volume `m` has no image"), "{text}");
    let text = malformed_at(
        &pod_review(json!({"containers": [{"image": "x:1"}]})),
        "/spec/containers/0/name",
    );
    assert!(text.ends_with("the container has no name"), "{text}");
}

#[test]
fn pod_specs_of_the_wrong_shape_are_refused_at_their_pointer() {
    let cases: [(Vec<u8>, &str, &str); 8] = [
        (
            pod_review(json!({"containers": {"name": "a"}})),
            "/spec/containers",
            "is an object, not an array",
        ),
        (
            pod_review(json!({"containers": ["x:1"]})),
            "/spec/containers/0",
            "is a string, not a container object",
        ),
        (
            pod_review(json!({"containers": [null]})),
            "/spec/containers/0",
            "is null, not a container object",
        ),
        (
            pod_review(json!({"volumes": [7]})),
            "/spec/volumes/0",
            "is a number, not a volume object",
        ),
        (
            pod_review(json!({"imagePullSecrets": [{"name": 1}]})),
            "/spec/imagePullSecrets/0/name",
            "is a number, not a string",
        ),
        (
            pod_review(json!({"serviceAccountName": false})),
            "/spec/serviceAccountName",
            "is a boolean, not a string",
        ),
        (
            review(("", "v1", "Pod"), json!({"metadata": {}})),
            "/spec",
            "is missing",
        ),
        (
            review(
                ("apps", "v1", "Deployment"),
                json!({"spec": {"replicas": 1}}),
            ),
            "/spec/template",
            "is missing",
        ),
    ];
    for (body, pointer, problem) in cases {
        let text = malformed_at(&body, pointer);
        assert!(text.ends_with(&format!("{pointer}: {problem}")), "{text}");
    }
    let cronjob = review(
        ("batch", "v1", "CronJob"),
        json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": []}}}}}),
    );
    malformed_at(&cronjob, "/spec/jobTemplate/spec/template/spec");
    // The object says it is another kind than the request.
    let text = malformed_at(
        &review(
            ("", "v1", "Pod"),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}}),
        ),
        "/apiVersion",
    );
    assert!(
        text.ends_with("is `apps/v1`, but the request is for v1 Pod"),
        "{text}"
    );
    // A pod spec at the place of another kind is not read: a Deployment's images are in its template only.
    let body = review(
        ("apps", "v1", "Deployment"),
        json!({"spec": {"containers": [{"name": "x", "image": "evil:1"}], "template": {"spec": {"containers": [{"name": "a", "image": "good:1"}]}}}}),
    );
    let review = parse_review(&body).unwrap();
    assert_eq!(
        review
            .images
            .iter()
            .map(|s| s.image.as_str())
            .collect::<Vec<_>>(),
        vec!["good:1"]
    );
}

#[test]
fn a_key_twice_is_refused_where_it_is_read() {
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[{"name":"a","image":"good:1","image":"evil:1"}]}}}}"#;
    let e = err(body);
    assert_eq!((e.code(), e.uid()), ("malformed-object", Some("u1")));
    assert_eq!(
        e.to_string(),
        "the Pod is malformed at /spec/containers/0/image: appears more than once"
    );
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[]},"spec":{"containers":[{"name":"a","image":"evil:1"}]}}}}"#;
    assert!(
        err(body)
            .to_string()
            .ends_with("at /spec: appears more than once")
    );
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","operation":"DELETE","operation":"CREATE","kind":{"group":"","version":"v1","kind":"Pod"}}}"#;
    assert_eq!(
        err(body).to_string(),
        "the AdmissionReview request is malformed: /request/operation appears more than once"
    );
    // A repeated uid is refused as such even after another repeated key.
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"DELETE","operation":"CREATE","uid":"a","uid":"b","kind":{"group":"","version":"v1","kind":"Pod"}}}"#;
    assert_eq!((err(body).code(), err(body).uid()), ("missing-uid", None));
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","kind":"AdmissionReview","request":{}}"#;
    assert_eq!(err(body).code(), "not-an-admission-review");
}

fn containers(n: usize, prefix: &str) -> Value {
    Value::Array((0..n).map(|i| json!({"name": format!("{prefix}{i}"), "image": format!("r.example/{prefix}:{i}")})).collect())
}

#[test]
fn images_per_review_are_capped() {
    let e = err(&pod_review(json!({"containers": containers(10_000, "c")})));
    assert_eq!(e.code(), "too-many-images");
    assert!(
        matches!(e, ReviewError::TooManyImages { count: 10_000, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the Pod has 10000 images (containers, init containers, ephemeral containers and image volumes); at most 1000 are reviewed"
    );
    assert_eq!(e.uid(), Some(UID));
    // Exactly the cap is read, all of it.
    let review = parse_review(&pod_review(
        json!({"containers": containers(MAX_IMAGES, "c")}),
    ))
    .unwrap();
    assert_eq!(review.images.len(), MAX_IMAGES);
    assert_eq!(
        review.images.last().unwrap().pointer,
        "/spec/containers/999/image"
    );
    // The lists count together, image volumes included.
    let over = pod_review(json!({
        "initContainers": containers(400, "i"),
        "containers": containers(600, "c"),
        "volumes": [{"name": "v", "image": {"reference": "r.example/v:1"}}],
    }));
    assert!(matches!(
        err(&over),
        ReviewError::TooManyImages { count: 1001, .. }
    ));
    // Volumes of other types do not count, however many.
    let volumes: Vec<Value> = (0..20_000)
        .map(|i| json!({"name": format!("v{i}"), "emptyDir": {}}))
        .collect();
    let review = parse_review(&pod_review(
        json!({"containers": containers(1, "c"), "volumes": volumes}),
    ))
    .unwrap();
    assert_eq!(review.images.len(), 1);
}

#[test]
fn pull_secrets_are_capped_and_cleaned() {
    let secrets: Vec<Value> = (0..=MAX_PULL_SECRETS)
        .map(|i| json!({"name": format!("s{i}")}))
        .collect();
    let e = err(&pod_review(
        json!({"containers": containers(1, "c"), "imagePullSecrets": secrets}),
    ));
    assert_eq!(e.code(), "too-many-pull-secrets");
    let review = parse_review(&pod_review(json!({
        "containers": containers(1, "c"),
        "imagePullSecrets": [{"name": "a"}, {}, {"name": ""}, {"name": "b"}, {"name": "a"}],
        "serviceAccount": "legacy",
    })))
    .unwrap();
    assert_eq!(review.pull_secrets, vec!["a", "b"]);
    assert_eq!(review.service_account.as_deref(), Some("legacy"));
}

#[test]
fn control_characters_in_names_are_kept_as_data_and_escaped_in_text() {
    let image = "r.example/app:1\u{1b}[2J\u{7}\u{202e}";
    let review = parse_review(&pod_review(
        json!({"containers": [{"name": "c\u{0}", "image": image}]}),
    ))
    .unwrap();
    assert_eq!(review.images[0].image, image);
    assert_eq!(review.images[0].container, "c\u{0}");
    // In an error.
    let text = malformed_at(
        &pod_review(json!({"containers": [{"name": "evil\u{1b}]0;x\u{7}"}]})),
        "/spec/containers/0/image",
    );
    assert!(
        text.ends_with("container `evil\\u{1b}]0;x\\u{7}` has no image"),
        "{text}"
    );
    assert!(!text.chars().any(char::is_control));
    let e = err(&edit(POD_CREATE, |d| {
        d["request"]["kind"]["kind"] = json!("Pod\u{1b}[31m")
    }));
    assert!(e.to_string().contains("`v1 Pod\\u{1b}[31m`"), "{e}");
    // In a denial and a warning.
    let decision = Decision {
        warnings: vec![format!("image {image} is unsigned")],
        ..Decision::deny("unsigned", format!("image {image} is unsigned"))
    };
    let answer: Value = serde_json::from_slice(&respond(&review, &decision)).unwrap();
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "unsigned: image r.example/app:1\\u{1b}[2J\\u{7}\\u{202e} is unsigned"
    );
    let warning = answer["response"]["warnings"][0].as_str().unwrap();
    assert_eq!(
        warning,
        "image r.example/app:1\\u{1b}[2J\\u{7}\\u{202e} is unsigned"
    );
}

#[test]
fn bytes_that_are_not_utf8_are_malformed_json() {
    let raw = String::from_utf8(pod_review(
        json!({"containers": [{"name": "a", "image": "IMAGE"}]}),
    ))
    .unwrap();
    let mut bytes = raw.replace("IMAGE", "r.example/\u{1}app").into_bytes();
    let at = bytes.iter().position(|b| *b == 1).unwrap();
    bytes[at] = 0xff;
    let e = err(&bytes);
    assert_eq!(e.code(), "malformed-json");
    // A raw control character in a string is not JSON either; escaped it is data.
    bytes[at] = 0x1b;
    assert_eq!(err(&bytes).code(), "malformed-json");
    let escaped = raw.replace("IMAGE", "r.example/\\u001bapp");
    assert_eq!(
        parse_review(escaped.as_bytes()).unwrap().images[0].image,
        "r.example/\u{1b}app"
    );
    // A lone surrogate (which Go's encoder never writes: it substitutes U+FFFD).
    let surrogate = raw.replace("IMAGE", "r.example/\\ud800app");
    assert_eq!(err(surrogate.as_bytes()).code(), "malformed-json");
    let replacement = raw.replace("IMAGE", "r.example/\u{fffd}app");
    assert_eq!(
        parse_review(replacement.as_bytes()).unwrap().images[0].image,
        "r.example/\u{fffd}app"
    );
}

/// A real input with one byte replaced, one byte removed, or cut short.
fn mutated(base: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (0..len, any::<u8>(), 0..3u8).prop_map(move |(at, byte, how)| {
        let mut bytes = base.to_vec();
        match how {
            0 => bytes[at] = byte,
            1 => {
                bytes.remove(at);
            }
            _ => bytes.truncate(at),
        }
        bytes
    })
}

/// Whatever `parse_review` says about `bytes` is well-formed: a known code, printable text, the uid only
/// when the request has one, and a readable answer for it.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    match parse_review(bytes) {
        Ok(review) => {
            prop_assert!(!review.uid.is_empty());
            let answer: Value =
                serde_json::from_slice(&respond(&review, &Decision::allow())).unwrap();
            prop_assert_eq!(
                answer["response"]["uid"].as_str(),
                Some(review.uid.as_str())
            );
        }
        Err(e) => {
            prop_assert!(ReviewError::CODES.contains(&e.code()), "{}", e.code());
            let text = e.to_string();
            prop_assert!(
                !text.is_empty() && !text.chars().any(char::is_control),
                "{:?}",
                text
            );
            if let Some(uid) = e.uid() {
                prop_assert!(!uid.is_empty());
                prop_assert!(e.api_version().is_some());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check(&bytes)?;
    }

    #[test]
    fn arbitrary_json_never_panics(text in "[{}\\[\\]\":,a-z0-9 \\\\]{0,200}") {
        check(text.as_bytes())?;
        let wrapped = format!(r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"group":"","version":"v1","kind":"Pod"}},"operation":"CREATE","object":{text}}}}}"#);
        check(wrapped.as_bytes())?;
    }

    #[test]
    fn mutated_pod_reviews_never_panic(bytes in mutated(POD_CREATE)) {
        check(&bytes)?;
    }

    #[test]
    fn mutated_deployment_reviews_never_panic(bytes in mutated(DEPLOYMENT_CREATE)) {
        check(&bytes)?;
    }

    #[test]
    fn mutated_v1beta1_and_ephemeral_reviews_never_panic(a in mutated(V1BETA1_POD), b in mutated(EPHEMERAL_UPDATE)) {
        check(&a)?;
        check(&b)?;
    }
}

#[test]
fn roles_read_as_their_fields() {
    assert_eq!(ContainerRole::InitContainer.as_str(), "initContainer");
    assert_eq!(ContainerRole::ImageVolume.to_string(), "image volume");
}
