//! The AdmissionReview answers: their exact shape, the JSONPatch, and that nothing but an allowing decision
//! answers `allowed: true`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use kibaship_admission::{
    Decision, ImagePatch, MAX_WARNING_CHARS, MAX_WARNINGS_TOTAL_CHARS, Review, ReviewError,
    ReviewVersion, parse_review, respond, respond_error,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const POD_CREATE: &[u8] = include_bytes!("../../../testdata/admission/recorded/v1-pod-create.json");
const POD_DELETE: &[u8] = include_bytes!("../../../testdata/admission/recorded/v1-pod-delete.json");
const V1BETA1_DEPLOYMENT: &[u8] =
    include_bytes!("../../../testdata/admission/recorded/v1beta1-deployment-create.json");
const CRONJOB_CREATE: &[u8] =
    include_bytes!("../../../testdata/admission/recorded/v1-cronjob-create.json");

fn answer(review: &Review, decision: &Decision) -> Value {
    serde_json::from_slice(&respond(review, decision)).unwrap()
}

fn pod() -> Review {
    parse_review(POD_CREATE).unwrap()
}

const DIGEST: &str = "sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e";

#[test]
fn a_denial_has_this_exact_shape() {
    let review = pod();
    let decision = Decision::deny(
        "wrong-key",
        "image \"registry.example/team/app:2.1\" is signed by another key",
    );
    let expected = format!(
        concat!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":"{uid}","allowed":false,"#,
            r#""status":{{"status":"Failure","code":403,"message":"wrong-key: image \"registry.example/team/app:2.1\" is signed by another key","#,
            r#""reason":"Forbidden","details":{{"causes":[{{"reason":"wrong-key"}}]}}}}}}}}"#
        ),
        uid = review.uid
    );
    assert_eq!(
        String::from_utf8(respond(&review, &decision)).unwrap(),
        expected
    );
}

#[test]
fn an_allow_with_a_patch_has_this_exact_shape() {
    let review = pod();
    let site = &review.images[1];
    let decision = Decision {
        patch: vec![ImagePatch {
            pointer: site.pointer.clone(),
            image: format!("{}@{DIGEST}", site.image),
        }],
        warnings: vec!["pinned registry.example/team/app:2.1".into()],
        audit_annotations: BTreeMap::from([("pinned".to_string(), "1".to_string())]),
        ..Decision::allow()
    };
    let bytes = respond(&review, &decision);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let patch = doc["response"]["patch"].as_str().unwrap();
    let expected = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":"{}","allowed":true,"status":{{}},"patch":"{patch}","patchType":"JSONPatch","auditAnnotations":{{"pinned":"1"}},"warnings":["pinned registry.example/team/app:2.1"]}}}}"#,
        review.uid
    );
    assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    let ops: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(patch)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        ops,
        json!([
            {"op": "test", "path": "/spec/containers/0/image", "value": "registry.example/team/app:2.1"},
            {"op": "replace", "path": "/spec/containers/0/image", "value": format!("registry.example/team/app:2.1@{DIGEST}")},
        ])
    );
}

/// Applies `test` and `replace` operations to `object`, as the API server does (RFC 6902 for these two).
fn apply(object: &mut Value, ops: &Value) {
    for op in ops.as_array().unwrap() {
        let path = op["path"].as_str().unwrap();
        let target = object
            .pointer_mut(path)
            .unwrap_or_else(|| panic!("no {path}"));
        match op["op"].as_str().unwrap() {
            "test" => assert_eq!(target, &op["value"], "test failed at {path}"),
            "replace" => *target = op["value"].clone(),
            other => panic!("unexpected op {other}"),
        }
    }
}

fn patch_ops(doc: &Value) -> Value {
    let patch = doc["response"]["patch"].as_str().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(patch)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn patches_pin_each_site_in_every_kind_and_version() {
    for body in [POD_CREATE, V1BETA1_DEPLOYMENT, CRONJOB_CREATE] {
        let review = parse_review(body).unwrap();
        let decision = Decision {
            patch: review
                .images
                .iter()
                .filter(|s| !s.image.contains('@'))
                .map(|s| ImagePatch {
                    pointer: s.pointer.clone(),
                    image: format!("{}@{DIGEST}", s.image),
                })
                .collect(),
            ..Decision::allow()
        };
        let doc = answer(&review, &decision);
        assert_eq!(doc["apiVersion"], review.api_version.api_version());
        assert_eq!(doc["response"]["uid"], review.uid.as_str());
        assert_eq!(
            (
                doc["response"]["allowed"].as_bool(),
                doc["response"]["patchType"].as_str()
            ),
            (Some(true), Some("JSONPatch"))
        );
        let mut object =
            serde_json::from_slice::<Value>(body).unwrap()["request"]["object"].clone();
        apply(&mut object, &patch_ops(&doc));
        for site in &review.images {
            let now = object.pointer(&site.pointer).unwrap().as_str().unwrap();
            if site.image.contains('@') {
                assert_eq!(now, site.image);
            } else {
                assert_eq!(now, format!("{}@{DIGEST}", site.image));
            }
        }
    }
    let beta = answer(
        &parse_review(V1BETA1_DEPLOYMENT).unwrap(),
        &Decision::allow(),
    );
    assert_eq!(beta["apiVersion"], "admission.k8s.io/v1beta1");
}

#[test]
fn an_allow_without_changes_has_no_patch_and_no_status() {
    let review = pod();
    let same = Decision {
        patch: vec![ImagePatch {
            pointer: review.images[2].pointer.clone(),
            image: review.images[2].image.clone(),
        }],
        ..Decision::allow()
    };
    for decision in [Decision::allow(), same] {
        let doc = answer(&review, &decision);
        assert_eq!(
            doc,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": review.uid, "allowed": true, "status": {}}})
        );
    }
}

/// One body for every code `parse_review` can return.
fn one_of_each_error() -> Vec<(Vec<u8>, ReviewError)> {
    let edit = |change: &dyn Fn(&mut Value)| {
        let mut doc: Value = serde_json::from_slice(POD_CREATE).unwrap();
        change(&mut doc);
        serde_json::to_vec(&doc).unwrap()
    };
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"name": format!("c{i}"), "image": "x:1"}))
        .collect();
    let secrets: Vec<Value> = (0..101).map(|i| json!({"name": format!("s{i}")})).collect();
    let bodies = vec![
        vec![b' '; kibaship_admission::MAX_REVIEW_BYTES + 1],
        POD_CREATE[..100].to_vec(),
        b"[]".to_vec(),
        edit(&|d| d["apiVersion"] = json!("admission.k8s.io/v2")),
        edit(&|d| d["request"] = Value::Null),
        edit(&|d| d["request"]["uid"] = json!("")),
        edit(&|d| d["request"]["dryRun"] = json!("no")),
        edit(&|d| d["request"]["operation"] = json!("PATCH")),
        edit(&|d| d["request"]["kind"]["kind"] = json!("Secret")),
        edit(&|d| d["request"]["object"] = Value::Null),
        edit(&|d| d["request"]["object"]["spec"]["containers"][0]["image"] = json!("")),
        edit(&|d| d["request"]["object"]["spec"]["containers"] = Value::Array(many.clone())),
        edit(&|d| {
            d["request"]["object"]["spec"]["imagePullSecrets"] = Value::Array(secrets.clone())
        }),
    ];
    bodies
        .into_iter()
        .map(|b| {
            let e = parse_review(&b).unwrap_err();
            (b, e)
        })
        .collect()
}

#[test]
fn every_error_path_answers_allowed_false() {
    let errors = one_of_each_error();
    let codes: BTreeSet<&str> = errors.iter().map(|(_, e)| e.code()).collect();
    assert_eq!(
        codes,
        ReviewError::CODES.into_iter().collect(),
        "one body per code, and the codes are unique"
    );
    assert_eq!(ReviewError::CODES.len(), codes.len());
    let mut answered = 0;
    for (_, e) in &errors {
        let Some(uid) = e.uid() else {
            continue; // the server answers HTTP 400: there is no uid to address an AdmissionReview to
        };
        let version = e.api_version().unwrap();
        let doc: Value = serde_json::from_slice(&respond_error(uid, version, e)).unwrap();
        assert_eq!(doc["apiVersion"], version.api_version());
        assert_eq!(doc["response"]["uid"], uid);
        assert_eq!(doc["response"]["allowed"], false, "{}", e.code());
        assert_eq!(doc["response"]["status"]["code"], 403);
        assert_eq!(doc["response"]["status"]["reason"], "Forbidden");
        assert_eq!(
            doc["response"]["status"]["details"]["causes"][0]["reason"],
            e.code()
        );
        let message = doc["response"]["status"]["message"].as_str().unwrap();
        assert_eq!(message, format!("{}: {e}", e.code()));
        assert!(doc["response"].get("patch").is_none());
        answered += 1;
    }
    assert_eq!(answered, 7, "every error after the uid is read is answered");
    // The default decision, and a denial that carries a patch, deny without patch.
    let review = pod();
    let patch = vec![ImagePatch {
        pointer: review.images[1].pointer.clone(),
        image: format!("x@{DIGEST}"),
    }];
    for decision in [
        Decision::default(),
        Decision {
            patch,
            ..Decision::default()
        },
    ] {
        let doc = answer(&review, &decision);
        assert_eq!(doc["response"]["allowed"], false);
        assert_eq!(
            doc["response"]["status"]["message"],
            "denied (no reason given)"
        );
        assert!(
            doc["response"].get("patch").is_none() && doc["response"].get("patchType").is_none()
        );
    }
}

#[test]
fn an_allow_whose_patch_does_not_fit_is_a_denial() {
    let review = pod();
    let good = |i: usize| ImagePatch {
        pointer: review.images[i].pointer.clone(),
        image: format!("r.example/x@{DIGEST}"),
    };
    let cases: Vec<(Vec<ImagePatch>, &str)> = vec![
        (
            vec![ImagePatch {
                pointer: "/metadata/labels/app".into(),
                image: "x".into(),
            }],
            "the patch targets /metadata/labels/app, which is not an image of this request",
        ),
        (
            vec![ImagePatch {
                pointer: "/spec/containers/9/image".into(),
                image: "x".into(),
            }],
            "not an image of this request",
        ),
        (
            vec![good(0), good(0)],
            "replaces /spec/initContainers/0/image more than once",
        ),
        (
            vec![ImagePatch {
                image: String::new(),
                ..good(1)
            }],
            "empty, or has spaces or control characters",
        ),
        (
            vec![ImagePatch {
                image: "a b".into(),
                ..good(1)
            }],
            "empty, or has spaces or control characters",
        ),
        (
            vec![ImagePatch {
                image: "a\u{1b}[0m".into(),
                ..good(1)
            }],
            "writes `a\\u{1b}[0m`",
        ),
    ];
    for (patch, problem) in cases {
        let doc = answer(
            &review,
            &Decision {
                patch,
                ..Decision::allow()
            },
        );
        assert_eq!(doc["response"]["allowed"], false, "{problem}");
        assert_eq!(
            doc["response"]["status"]["details"]["causes"][0]["reason"],
            "invalid-patch"
        );
        let message = doc["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("invalid-patch: ") && message.contains(problem),
            "{message}"
        );
        assert!(doc["response"].get("patch").is_none());
    }
    // No patch for a request that has no object.
    let delete = parse_review(POD_DELETE).unwrap();
    let doc = answer(
        &delete,
        &Decision {
            patch: vec![good(1)],
            ..Decision::allow()
        },
    );
    assert_eq!(doc["response"]["allowed"], false);
    assert!(
        doc["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("a patch was decided for a DELETE request")
    );
}

#[test]
fn warnings_are_printable_short_and_few() {
    let review = pod();
    let mut warnings = vec![
        "x".repeat(1000),
        "  ".to_string(),
        "image a\u{1b}]8;;http://evil\u{7}b".to_string(),
        "image a\u{1b}]8;;http://evil\u{7}b".to_string(),
    ];
    warnings.extend((0..100).map(|i| format!("{i:03} {}", "w".repeat(196))));
    let doc = answer(
        &review,
        &Decision {
            warnings,
            ..Decision::allow()
        },
    );
    let sent: Vec<&str> = doc["response"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(sent[0].chars().count(), MAX_WARNING_CHARS);
    assert!(sent[0].ends_with('…'));
    assert_eq!(sent[1], "image a\\u{1b}]8;;http://evil\\u{7}b");
    assert_eq!(sent[2], format!("000 {}", "w".repeat(196)));
    let total: usize = sent.iter().map(|w| w.chars().count()).sum();
    assert!(total <= MAX_WARNINGS_TOTAL_CHARS, "{total}");
    let shown = sent.iter().filter(|w| w.contains("www")).count();
    assert!(shown >= 17, "{shown}");
    assert_eq!(sent.len(), 2 + shown + 1);
    assert_eq!(
        sent.last().unwrap(),
        &format!("{} more warning(s) not shown", 100 - shown)
    );
    for w in &sent {
        assert!(
            !w.is_empty()
                && w.chars().count() <= MAX_WARNING_CHARS
                && !w.chars().any(char::is_control),
            "{w:?}"
        );
    }
}

#[test]
fn audit_annotation_keys_are_valid_after_the_webhook_name() {
    let review = pod();
    let audit = BTreeMap::from([
        (
            "kibaship.io/audit-0".to_string(),
            "image a\u{1b}b: unsigned".to_string(),
        ),
        ("verified".to_string(), "2".to_string()),
    ]);
    let doc = answer(
        &review,
        &Decision {
            audit_annotations: audit,
            ..Decision::deny("unsigned", "x")
        },
    );
    assert_eq!(
        doc["response"]["auditAnnotations"],
        json!({"kibaship.io-audit-0": "image a\\u{1b}b: unsigned", "verified": "2"})
    );
}

/// kube-core 5.0 reads our answers, except a patch: its `AdmissionResponse::patch` is a `Vec<u8>`, which
/// serde writes and reads as an array of numbers, while Kubernetes (Go `[]byte`) sends and expects base64.
#[test]
fn kube_core_reads_our_answers_but_not_a_base64_patch() {
    use kube_core::DynamicObject;
    use kube_core::admission::AdmissionReview;
    let review = pod();
    let denied = respond(&review, &Decision::deny("wrong-key", "x"));
    let theirs: AdmissionReview<DynamicObject> = serde_json::from_slice(&denied).unwrap();
    let response = theirs.response.unwrap();
    assert_eq!(
        (response.uid.as_str(), response.allowed),
        (review.uid.as_str(), false)
    );
    assert_eq!(
        (response.result.code, response.result.message.as_str()),
        (403, "wrong-key: x")
    );
    assert_eq!(
        response.result.details.unwrap().causes[0].reason,
        "wrong-key"
    );

    let site = &review.images[1];
    let pinned = Decision {
        patch: vec![ImagePatch {
            pointer: site.pointer.clone(),
            image: format!("{}@{DIGEST}", site.image),
        }],
        ..Decision::allow()
    };
    let bytes = respond(&review, &pinned);
    let err = serde_json::from_slice::<AdmissionReview<DynamicObject>>(&bytes).unwrap_err();
    assert!(err.to_string().contains("expected a sequence"), "{err}");
    let mut doc: Value = serde_json::from_slice(&bytes).unwrap();
    doc["response"].as_object_mut().unwrap().remove("patch");
    let theirs: AdmissionReview<DynamicObject> = serde_json::from_value(doc).unwrap();
    assert!(theirs.response.unwrap().allowed);
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 :/@.-]{0,40}",
        any::<String>(),
        "\\PC{0,300}",
        Just("\u{1b}[31m\u{202e}\u{0}".to_string()),
    ]
}

fn decisions(review: Review) -> impl Strategy<Value = (Review, Decision)> {
    let pointers: Vec<String> = review.images.iter().map(|s| s.pointer.clone()).collect();
    let pointer = prop_oneof![prop::sample::select(pointers), text()];
    let patch = prop::collection::vec(
        (pointer, text()).prop_map(|(pointer, image)| ImagePatch { pointer, image }),
        0..4,
    );
    (
        any::<bool>(),
        prop::option::of(text()),
        text(),
        prop::collection::vec(text(), 0..30),
        patch,
        prop::collection::btree_map(text(), text(), 0..4),
    )
        .prop_map(
            move |(allowed, code, message, warnings, patch, audit_annotations)| {
                (
                    review.clone(),
                    Decision {
                        allowed,
                        code,
                        message,
                        warnings,
                        patch,
                        audit_annotations,
                    },
                )
            },
        )
}

fn qualified_name_part(key: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    !key.is_empty()
        && key.len() <= 63
        && key.chars().all(ok)
        && key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key.ends_with(|c: char| c.is_ascii_alphanumeric())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the decision, the answer is an AdmissionReview of the review's version and uid that
    /// allows only when the decision does, with printable bounded warnings, valid audit keys and a patch
    /// that touches only the review's image sites.
    #[test]
    fn answers_always_read_back_with_the_same_uid(
        (review, decision) in prop_oneof![
            decisions(parse_review(POD_CREATE).unwrap()),
            decisions(parse_review(V1BETA1_DEPLOYMENT).unwrap()),
        ]
    ) {
        let bytes = respond(&review, &decision);
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(doc["apiVersion"].as_str(), Some(review.api_version.api_version()));
        prop_assert_eq!(doc["kind"].as_str(), Some("AdmissionReview"));
        prop_assert_eq!(doc["response"]["uid"].as_str(), Some(review.uid.as_str()));
        let allowed = doc["response"]["allowed"].as_bool().unwrap();
        prop_assert!(!allowed || decision.allowed);
        if !allowed {
            prop_assert_eq!(doc["response"]["status"]["code"].as_u64(), Some(403));
            let message = doc["response"]["status"]["message"].as_str().unwrap();
            prop_assert!(!message.is_empty() && !message.chars().any(char::is_control));
            prop_assert!(doc["response"].get("patch").is_none());
        }
        let warnings: Vec<&str> = doc["response"]["warnings"].as_array().map(|w| w.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        prop_assert!(warnings.iter().map(|w| w.chars().count()).sum::<usize>() <= MAX_WARNINGS_TOTAL_CHARS);
        for w in warnings {
            prop_assert!(!w.is_empty() && w.chars().count() <= MAX_WARNING_CHARS && !w.chars().any(char::is_control));
        }
        if let Some(audit) = doc["response"]["auditAnnotations"].as_object() {
            for key in audit.keys() {
                prop_assert!(qualified_name_part(key), "{:?}", key);
            }
        }
        if doc["response"].get("patch").is_some() {
            prop_assert_eq!(doc["response"]["patchType"].as_str(), Some("JSONPatch"));
            let sites: BTreeSet<&str> = review.images.iter().map(|s| s.pointer.as_str()).collect();
            for op in patch_ops(&doc).as_array().unwrap() {
                prop_assert!(sites.contains(op["path"].as_str().unwrap()));
            }
        }
        // The uid and version read back with kube-core too, once the base64 patch it cannot read is removed.
        let mut doc = doc;
        doc["response"].as_object_mut().unwrap().remove("patch");
        let theirs: kube_core::admission::AdmissionReview<kube_core::DynamicObject> = serde_json::from_value(doc).unwrap();
        prop_assert_eq!(theirs.types.api_version.as_str(), review.api_version.api_version());
        prop_assert_eq!(theirs.response.unwrap().uid, review.uid);
    }

    #[test]
    fn error_answers_read_back_with_the_same_uid(uid in "\\PC{1,60}", beta in any::<bool>()) {
        let version = if beta { ReviewVersion::V1Beta1 } else { ReviewVersion::V1 };
        let e = ReviewError::UnsupportedOperation { uid: uid.clone(), version, found: "`PATCH`".into() };
        let doc: Value = serde_json::from_slice(&respond_error(&uid, version, &e)).unwrap();
        prop_assert_eq!(doc["response"]["uid"].as_str(), Some(uid.as_str()));
        prop_assert_eq!(doc["response"]["allowed"].as_bool(), Some(false));
        prop_assert_eq!(doc["apiVersion"].as_str(), Some(version.api_version()));
    }
}
