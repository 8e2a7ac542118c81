//! Parsing, selection and exceptions, on inline texts and the fixtures in testdata/policy/.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::BTreeMap;

use crate::{
    ExceptionMatch, MAX_POLICY_BYTES, Mode, NamespaceInfo, PolicyErrorCode as Code, PolicyErrors,
    PolicySet,
};

const FULL: &str = include_str!("../../../testdata/policy/valid/full.yaml");

const KEY: &str = "-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAECa+IKvvDyPFk/iTUibLIIZMsW+8g\n\
0haqQ16AeUWDGcwfvKuNKz+XgLEksYwiGXWgN2ZHh8gN22Unw/nr+dhYDA==\n\
-----END PUBLIC KEY-----\n";

/// 2027-01-31T00:00:00Z and 2026-01-01T08:00:00Z in unix seconds (computed by hand: 20849 and 20454 days).
const JAN_2027: i64 = 1_801_353_600;
const JAN_2026_8H: i64 = 1_767_254_400;

fn full() -> PolicySet {
    PolicySet::parse("full.yaml", FULL).unwrap()
}

/// A policy file of one policy whose body (indented under `- `) is `policy`, then `rest` at top level.
fn doc(policy: &str, rest: &str) -> String {
    let key: String = KEY.lines().map(|l| format!("          {l}\n")).collect();
    format!(
        "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: p\n    images: [\"**\"]\n    authorities:\n      - key: |\n{key}{policy}{rest}"
    )
}

fn errors(text: &str) -> PolicyErrors {
    match PolicySet::parse("t.yaml", text) {
        Ok(_) => panic!("parsed, but errors were expected:\n{text}"),
        Err(e) => e,
    }
}

/// The (code, line, column) of every error.
fn found(text: &str) -> Vec<(Code, usize, usize)> {
    errors(text)
        .0
        .iter()
        .map(|e| (e.code, e.line, e.column))
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn the_full_fixture_parses_into_what_it_says() {
    let set = full();
    let names: Vec<&str> = set.policies().iter().map(|p| p.name()).collect();
    assert_eq!(names, ["prod-signed", "staging-warn", "everything-audited"]);
    let modes: Vec<Mode> = set.policies().iter().map(|p| p.mode()).collect();
    assert_eq!(modes, [Mode::Enforce, Mode::Warn, Mode::Audit]);
    let prod = &set.policies()[0];
    assert_eq!(prod.location(), "full.yaml:5");
    assert_eq!((prod.line(), prod.column()), (5, 5));
    assert_eq!(
        prod.images().collect::<Vec<_>>(),
        ["registry.example.com/team/**", "ghcr.io/org/*"]
    );
    assert_eq!(
        prod.namespace_names().collect::<Vec<_>>(),
        ["prod", "prod-*"]
    );
    assert_eq!(
        prod.match_labels(),
        Some(&labels(&[("kibaship.io/tier", "prod")]))
    );
    assert_eq!(
        prod.attestation_types().collect::<Vec<_>>(),
        [
            "https://slsa.dev/provenance/v1",
            "https://cosign.sigstore.dev/attestation/vuln/v1"
        ]
    );
    assert!(prod.transparency_log_required());
    assert!(!set.policies()[1].transparency_log_required());
    assert!(set.needs_namespace_labels());
    assert_eq!(
        set.policy("staging-warn").map(|p| p.mode()),
        Some(Mode::Warn)
    );
    assert!(set.policy("nope").is_none());

    let [legacy, old] = set.exceptions() else {
        panic!("two exceptions expected")
    };
    assert_eq!(legacy.owner(), "team-payments@example.com");
    assert_eq!(legacy.reason(), "migration ticket PAY-123");
    assert_eq!(legacy.expires(), JAN_2027);
    assert_eq!(legacy.expires_rfc3339(), "2027-01-31T00:00:00Z");
    assert_eq!(legacy.location(), "full.yaml:55");
    assert_eq!(old.expires(), JAN_2026_8H);
    assert_eq!(old.expires_rfc3339(), "2026-01-01T08:00:00Z");
    assert_eq!(old.namespaces().collect::<Vec<_>>(), ["prod-*"]);
}

#[test]
fn selection_by_namespace_name_labels_and_image() {
    let set = full();
    let tier_prod = labels(&[("kibaship.io/tier", "prod"), ("team", "a")]);
    let no_tier = labels(&[("team", "a")]);
    let selected = |ns: NamespaceInfo<'_>, image: &str| -> Vec<String> {
        set.select(&ns, image)
            .iter()
            .map(|p| p.name().to_owned())
            .collect()
    };
    assert_eq!(
        selected(NamespaceInfo::new("prod", &tier_prod), "ghcr.io/org/app:1"),
        ["prod-signed", "everything-audited"]
    );
    assert_eq!(
        selected(
            NamespaceInfo::new("prod-eu", &tier_prod),
            "registry.example.com/team/a/b:2"
        ),
        ["prod-signed", "everything-audited"]
    );
    // `ghcr.io/org/*` is one segment deep.
    assert_eq!(
        selected(
            NamespaceInfo::new("prod", &tier_prod),
            "ghcr.io/org/team/app"
        ),
        ["everything-audited"]
    );
    // Labels known and missing the tier: not selected; labels unknown: selected (fail closed).
    assert_eq!(
        selected(NamespaceInfo::new("prod", &no_tier), "ghcr.io/org/app"),
        ["everything-audited"]
    );
    assert_eq!(
        selected(NamespaceInfo::without_labels("prod"), "ghcr.io/org/app"),
        ["prod-signed", "everything-audited"]
    );
    // Unknown labels never widen a name selector.
    assert_eq!(
        selected(
            NamespaceInfo::without_labels("production"),
            "ghcr.io/org/app"
        ),
        ["everything-audited"]
    );
    assert_eq!(
        selected(NamespaceInfo::without_labels("staging"), "nginx"),
        ["staging-warn", "everything-audited"]
    );
}

#[test]
fn exceptions_active_expired_and_absent() {
    let set = full();
    let legacy = "registry.example.com/legacy/billing:3";
    match set.exception_for("prod", legacy, JAN_2027 - 1) {
        ExceptionMatch::Active(e) => assert_eq!(e.owner(), "team-payments@example.com"),
        other => panic!("{other:?}"),
    }
    // It applies while now < expires: at the instant of expiry it has expired.
    match set.exception_for("prod", legacy, JAN_2027) {
        ExceptionMatch::Expired(e) => assert_eq!(e.expires_rfc3339(), "2027-01-31T00:00:00Z"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        set.exception_for("prod-eu", legacy, 0),
        ExceptionMatch::None
    ));
    assert!(matches!(
        set.exception_for("prod", "registry.example.com/team/api", 0),
        ExceptionMatch::None
    ));
    assert!(set.exception_for("prod", legacy, 0).is_active());
    let old = "registry.example.com/team/old-api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert!(
        set.exception_for("prod-eu", old, JAN_2026_8H - 1)
            .is_active()
    );
    assert!(matches!(
        set.exception_for("prod-eu", old, JAN_2026_8H),
        ExceptionMatch::Expired(_)
    ));
    let exception = &set.exceptions()[1];
    assert!(exception.covers("prod-eu", old));
    assert!(!exception.covers("prod", old));
}

#[test]
fn an_active_exception_wins_over_an_earlier_expired_one() {
    let text = doc(
        "",
        "exceptions:\n  - {images: [\"a.io/x\"], namespaces: [\"*\"], owner: o, expires: 2020-01-01T00:00:00Z, reason: old}\n  - {images: [\"a.io/*\"], namespaces: [ns], owner: o2, expires: 2999-01-01T00:00:00Z, reason: new}\n",
    );
    let set = PolicySet::parse("t.yaml", &text).unwrap();
    match set.exception_for("ns", "a.io/x:1", JAN_2027) {
        ExceptionMatch::Active(e) => assert_eq!(e.owner(), "o2"),
        other => panic!("{other:?}"),
    }
    match set.exception_for("other", "a.io/x:1", JAN_2027) {
        ExceptionMatch::Expired(e) => assert_eq!(e.owner(), "o"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn defaults_mode_enforce_and_all_namespaces() {
    let set = PolicySet::parse("t.yaml", &doc("", "")).unwrap();
    let policy = &set.policies()[0];
    assert_eq!(policy.mode(), Mode::Enforce);
    assert!(policy.transparency_log_required());
    assert!(policy.selects_namespace(&NamespaceInfo::without_labels("anything")));
    assert!(!set.needs_namespace_labels());
    assert!(set.exceptions().is_empty());
    assert_eq!(set.origin(), "t.yaml");
}

#[test]
fn errors_name_origin_line_column_code_and_field() {
    let e = errors(&doc("      - keyless:\n          issuer: https://x\n", ""));
    assert_eq!(
        e.to_string(),
        "t.yaml:13:11: missing-field: policies[0].authorities[1].keyless.subject: required field is missing: give \
         the certificate identity as `subject` (exact) or `subjectRegExp` (Go regular expression)"
    );
    let error = &e.0[0];
    assert_eq!(error.origin, "t.yaml");
    assert_eq!((error.line, error.column), (13, 11));
    assert_eq!(error.code, Code::MissingField);
}

#[test]
fn all_errors_of_a_file_are_collected_in_document_order() {
    let text = doc(
        "    mode: strict\n    imagse: []\n",
        "  - name: p\n    images: [\"[\"]\n    authorities: []\nexceptions:\n  - images: [\"**\"]\n    namespaces: [\"*\"]\n    owner: me\n    expires: tomorrow\n    reason: r\n",
    );
    assert_eq!(
        found(&text),
        [
            (Code::BadValue, 12, 11),
            (Code::UnknownKey, 13, 5),
            (Code::DuplicateName, 14, 11),
            (Code::BadGlob, 15, 14),
            (Code::NoAuthority, 16, 18),
            (Code::BadTime, 21, 14),
        ]
    );
    let e = errors(&text);
    assert!(e.0[1].message.contains("did you mean `images`?"), "{e}");
    assert!(e.0[2].message.contains("line 4"), "{e}");
}

#[test]
fn unknown_keys_everywhere() {
    assert_eq!(
        found(&doc("", "metadata: {name: x}\n")),
        [(Code::UnknownKey, 12, 1)]
    );
    let e = errors(&doc(
        "      - keyless: {issuer: i, subject: s, url: https://fulcio.example}\n",
        "",
    ));
    assert_eq!(e.codes(), [Code::UnknownKey]);
    assert!(
        e.0[0]
            .message
            .starts_with("policies[0].authorities[1].keyless.url: unknown key;"),
        "{e}"
    );
}

#[test]
fn syntax_errors_have_the_parser_position() {
    let e = errors(
        "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: [a\n",
    );
    assert_eq!(found_of(&e), [(Code::Syntax, 4, 11)]);
    assert!(e.0[0].message.contains("unclosed bracket"), "{e}");
    let e = errors("apiVersion: a\n kind: b\n");
    assert_eq!(found_of(&e), [(Code::Syntax, 2, 6)]);
    let e = errors("a: 1\n---\nb: 2\n");
    assert_eq!(e.codes(), [Code::Syntax]);
    assert!(e.0[0].message.contains("one document"), "{e}");
    assert_eq!(
        found("apiVersion: kibaship.io/v1alpha1\napiVersion: x\n"),
        [(Code::DuplicateKey, 2, 1)]
    );
}

fn found_of(e: &PolicyErrors) -> Vec<(Code, usize, usize)> {
    e.0.iter().map(|e| (e.code, e.line, e.column)).collect()
}

#[test]
fn empty_and_non_mapping_documents() {
    assert_eq!(found(""), [(Code::BadValue, 1, 1)]);
    assert_eq!(found("# nothing\n"), [(Code::BadValue, 2, 1)]);
    assert_eq!(found("[1, 2]\n"), [(Code::WrongType, 1, 1)]);
    assert_eq!(
        errors("[1, 2]\n").to_string(),
        "t.yaml:1:1: wrong-type: the document: expected a mapping, found a list"
    );
    assert_eq!(
        found("apiVersion: kibaship.io/v1alpha1\n"),
        [(Code::MissingField, 1, 1), (Code::MissingField, 1, 1)]
    );
    assert_eq!(
        found("apiVersion: kibaship.io/v1beta9\nkind: ClusterImagePolicy\npolicies: {}\n"),
        [
            (Code::UnsupportedVersion, 1, 13),
            (Code::BadValue, 2, 7),
            (Code::WrongType, 3, 11)
        ]
    );
}

#[test]
fn keys_that_do_not_parse_are_bad_key() {
    let text = |key: &str| {
        format!(
            "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: p\n    images: [\"**\"]\n    authorities:\n      - key: {key}\n"
        )
    };
    // A block scalar is placed at its first content line.
    for (key, at) in [
        ("\"\"", (7, 14)),
        ("\"---somedata---\"", (7, 14)),
        (
            "|\n          -----BEGIN PUBLIC KEY-----\n          bm90IGEga2V5\n          -----END PUBLIC KEY-----",
            (8, 11),
        ),
        (
            "|\n          -----BEGIN CERTIFICATE-----\n          MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAECa+IKvvDyPFk/iTUibLIIZMsW+8g\n          -----END CERTIFICATE-----",
            (8, 11),
        ),
    ] {
        let e = errors(&text(key));
        assert_eq!(found_of(&e), [(Code::BadKey, at.0, at.1)], "{key}: {e}");
        assert!(
            e.0[0]
                .message
                .starts_with("policies[0].authorities[0].key: "),
            "{e}"
        );
    }
    assert_eq!(
        found(&text("{kms: \"awskms:///1234\"}")),
        [(Code::WrongType, 7, 14)]
    );
}

#[test]
fn go_regexps_are_checked_at_parse_time() {
    for (pattern, construct) in [
        ("****", ""),
        ("(?<=a)b", "(?<="),
        ("(a)\\\\1", "\\1"),
        ("a**", ""),
        ("\\\\C", "\\C"),
        ("x{1001}", ""),
    ] {
        let e = errors(&doc(
            &format!("      - keyless: {{issuer: i, subjectRegExp: \"{pattern}\"}}\n"),
            "",
        ));
        assert_eq!(found_of(&e), [(Code::BadRegex, 12, 45)], "{pattern}: {e}");
        assert!(e.0[0].message.contains(construct), "{pattern}: {e}");
    }
    // What Go accepts is accepted, in Go's meaning.
    PolicySet::parse(
        "t.yaml",
        &doc(
            "      - keyless: {issuer: i, subjectRegExp: '^\\Qhttps://github.com/org/\\E.*$'}\n",
            "",
        ),
    )
    .unwrap();
}

#[test]
fn keyless_identity_is_exactly_one_of_each() {
    assert_eq!(
        found(&doc("      - keyless: {}\n", "")),
        [(Code::MissingField, 12, 18), (Code::MissingField, 12, 18)]
    );
    assert_eq!(
        found(&doc(
            "      - keyless: {issuer: i, issuerRegExp: i, subject: s}\n",
            ""
        )),
        [(Code::Conflict, 12, 44)]
    );
    assert_eq!(
        found(&doc("      - keyless: {issuer: ' i', subject: s}\n", "")),
        [(Code::BadValue, 12, 27)]
    );
    assert_eq!(
        found(&doc(
            "      - keyless: {issuer: i, subject: s, github: {}}\n",
            ""
        )),
        [(Code::BadValue, 12, 50)]
    );
    assert_eq!(
        found(&doc(
            "      - keyless: {issuer: i, subject: s, github: {repository: x}}\n",
            ""
        )),
        [(Code::UnknownKey, 12, 51)]
    );
}

#[test]
fn authorities_key_and_keyless_exclude_each_other() {
    let e = errors(&doc(
        "      - name: both\n        key: x\n        keyless: {issuer: i, subject: s}\n",
        "",
    ));
    assert_eq!(found_of(&e), [(Code::Conflict, 12, 9)]);
    assert_eq!(
        found(&doc("      - name: neither\n", "")),
        [(Code::MissingField, 12, 9)]
    );
    assert_eq!(
        found(&doc(
            "      - name: a\n        keyless: {issuer: i, subject: s}\n      - name: a\n        keyless: {issuer: i, subject: s}\n",
            ""
        )),
        [(Code::DuplicateName, 14, 15)]
    );
}

#[test]
fn attestation_checks() {
    let att = |checks: &str| {
        doc(
            &format!(
                "    attestations:\n      - predicateType: https://slsa.dev/provenance/v1\n        checks:\n{checks}"
            ),
            "",
        )
    };
    PolicySet::parse(
        "t.yaml",
        &att("          - {path: \"\", present: true}\n          - {path: /a~1b/0, equals: {x: [1, 2.5, null, true]}}\n          - {path: /n, oneOf: [1, \"1\"]}\n"),
    )
    .unwrap();
    assert_eq!(
        found(&att("          - {path: /a, equals: x, oneOf: [x]}\n")),
        [(Code::Conflict, 15, 42)]
    );
    assert_eq!(
        found(&att("          - {path: /a}\n")),
        [(Code::MissingField, 15, 13)]
    );
    assert_eq!(
        found(&att("          - {path: a/b, present: true}\n")),
        [(Code::BadValue, 15, 20)]
    );
    assert_eq!(
        found(&att("          - {path: /a, present: false}\n")),
        [(Code::BadValue, 15, 33)]
    );
    assert_eq!(
        found(&att("          - {path: /a, present: yes}\n")),
        [(Code::WrongType, 15, 33)]
    );
    assert_eq!(
        found(&att("          - {path: /a, oneOf: []}\n")),
        [(Code::BadValue, 15, 31)]
    );
    assert_eq!(
        found(&att("          - {path: /a, matches: \"(?=x)\"}\n")),
        [(Code::BadRegex, 15, 33)]
    );
    assert_eq!(
        found(&att("          - {path: /a, equals: .nan}\n")),
        [(Code::BadValue, 15, 32)]
    );
    assert_eq!(
        found(&doc(
            "    attestations:\n      - predicateType: t\n      - predicateType: t\n",
            ""
        )),
        [(Code::BadValue, 14, 24)]
    );
    assert_eq!(
        found(&doc("    attestations:\n      - checks: []\n", "")),
        [(Code::MissingField, 13, 9)]
    );
}

#[test]
fn modes_transparency_log_signature_repository_and_annotations() {
    assert_eq!(
        found(&doc("    mode: yes\n", "")),
        [(Code::BadValue, 12, 11)]
    );
    assert_eq!(
        found(&doc("    mode: Enforce\n", "")),
        [(Code::BadValue, 12, 11)]
    );
    assert_eq!(
        found(&doc("    transparencyLog: false\n", "")),
        [(Code::BadValue, 12, 22)]
    );
    assert_eq!(
        found(&doc(
            "    signatureRepository: registry.example.com/sigs:v1\n",
            ""
        )),
        [(Code::BadValue, 12, 26)]
    );
    assert_eq!(
        found(&doc("    signatureRepository: Not/A/Repo\n", "")),
        [(Code::BadValue, 12, 26)]
    );
    assert_eq!(
        found(&doc("    annotations: [env]\n", "")),
        [(Code::WrongType, 12, 18)]
    );
    let set = PolicySet::parse(
        "t.yaml",
        &doc(
            "    signatureRepository: registry.example.com/sigs\n    annotations: {env: prod, build: 12}\n",
            "",
        ),
    )
    .unwrap();
    assert_eq!(set.policies().len(), 1);
}

#[test]
fn namespace_selectors() {
    assert_eq!(
        found(&doc("    namespaces: {}\n", "")),
        [(Code::BadValue, 12, 17)]
    );
    assert_eq!(
        found(&doc("    namespaces: {names: [Prod_*]}\n", "")),
        [(Code::BadGlob, 12, 26)]
    );
    assert_eq!(
        found(&doc("    namespaces: {names: []}\n", "")),
        [(Code::BadValue, 12, 25)]
    );
    assert_eq!(
        found(&doc(
            "    namespaces: {matchLabels: {\"-bad\": x, ok: \"not ok\"}}\n",
            ""
        )),
        [(Code::BadValue, 12, 32), (Code::BadValue, 12, 43)]
    );
    assert_eq!(
        found(&doc("    namespaces: {matchLabels: {}}\n", "")),
        [(Code::BadValue, 12, 31)]
    );
    assert_eq!(
        found(&doc("    namespaces: [prod]\n", "")),
        [(Code::WrongType, 12, 17)]
    );
}

#[test]
fn images_need_a_nonempty_list_of_globs() {
    let base = "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: p\n    authorities: [{keyless: {issuer: i, subject: s}}]\n";
    assert_eq!(found(base), [(Code::MissingField, 4, 5)]);
    assert_eq!(
        found(&format!("{base}    images: registry.example.com/**\n")),
        [(Code::WrongType, 6, 13)]
    );
    assert_eq!(
        found(&format!("{base}    images: []\n")),
        [(Code::BadValue, 6, 13)]
    );
    assert_eq!(
        found(&format!(
            "{base}    images: [\"index.docker.io/library/*\", \"a b\"]\n"
        )),
        [(Code::BadGlob, 6, 14), (Code::BadGlob, 6, 43)]
    );
    assert_eq!(
        found(&format!("{base}    images:\n")),
        [(Code::BadValue, 6, 11)]
    );
}

#[test]
fn policies_without_authority() {
    let base = "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: p\n    images: [\"**\"]\n";
    assert_eq!(found(base), [(Code::NoAuthority, 4, 5)]);
    assert_eq!(
        found(&format!("{base}    authorities: []\n")),
        [(Code::NoAuthority, 6, 18)]
    );
}

#[test]
fn names_must_be_unique_and_well_formed() {
    let second = "  - name: p\n    images: [\"**\"]\n    authorities: [{keyless: {issuer: i, subject: s}}]\n";
    let e = errors(&doc("", second));
    assert_eq!(found_of(&e), [(Code::DuplicateName, 12, 11)]);
    assert!(e.0[0].message.contains("line 4"), "{e}");
    assert_eq!(
        found(&doc("", &second.replace("name: p", "name: Prod_1"))),
        [(Code::BadValue, 12, 11)]
    );
}

#[test]
fn exceptions_need_every_field_and_an_rfc3339_expiry() {
    let exc = |body: &str| doc("", &format!("exceptions:\n  - {body}\n"));
    PolicySet::parse(
        "t.yaml",
        &exc("{images: [\"a.io/x\"], namespaces: [prod], owner: o, expires: \"2027-01-31T00:00:00-05:00\", reason: r}"),
    )
    .unwrap();
    assert_eq!(
        found(&exc("{images: [\"a.io/x\"], namespaces: [prod]}")),
        [
            (Code::MissingField, 13, 5),
            (Code::MissingField, 13, 5),
            (Code::MissingField, 13, 5)
        ]
    );
    for bad in [
        "2027-01-31",
        "2027-01-31T00:00:00",
        "31/01/2027",
        "2027-13-01T00:00:00Z",
        "1",
    ] {
        let e = errors(&exc(&format!(
            "{{images: [\"a.io/x\"], namespaces: [prod], owner: o, reason: r, expires: {bad}}}"
        )));
        assert_eq!(found_of(&e), [(Code::BadTime, 13, 76)], "{bad}: {e}");
        assert!(e.0[0].message.starts_with("exceptions[0].expires: "), "{e}");
    }
    assert_eq!(
        found(&exc(
            "{images: [\"a.io/x\"], namespaces: [prod], owner: \" \", expires: 2027-01-31T00:00:00Z, reason: r}"
        )),
        [(Code::BadValue, 13, 53)]
    );
}

#[test]
fn plain_scalars_in_string_fields_stay_as_written() {
    let text = doc(
        "",
        "exceptions:\n  - {images: [\"a.io/x\"], namespaces: [\"0440\"], owner: 1.10, expires: 2027-01-31T00:00:00Z, reason: true}\n",
    );
    let set = PolicySet::parse("t.yaml", &text).unwrap();
    let e = &set.exceptions()[0];
    assert_eq!(e.owner(), "1.10");
    assert_eq!(e.reason(), "true");
    assert_eq!(e.namespaces().collect::<Vec<_>>(), ["0440"]);
}

#[test]
fn input_larger_than_the_limit_is_refused_before_parsing() {
    let mut text = doc("", "");
    text.push('#');
    text.push_str(&"x".repeat(MAX_POLICY_BYTES));
    let e = errors(&text);
    assert_eq!(found_of(&e), [(Code::TooLarge, 1, 1)]);
    // Exactly at the limit is parsed.
    let mut at_limit = doc("", "");
    at_limit.push('#');
    let pad = MAX_POLICY_BYTES - at_limit.len();
    at_limit.push_str(&"x".repeat(pad));
    assert_eq!(at_limit.len(), MAX_POLICY_BYTES);
    PolicySet::parse("t.yaml", &at_limit).unwrap();
}

#[test]
fn alias_bombs_and_deep_nesting_hit_the_budget() {
    // Each level is ten aliases of the one before: 10^9 strings if expanded.
    let mut bomb = String::from("a0: &a0 [\"lol\"]\n");
    for i in 1..10 {
        let refs: Vec<String> = (0..10).map(|_| format!("*a{}", i - 1)).collect();
        bomb.push_str(&format!("a{i}: &a{i} [{}]\n", refs.join(", ")));
    }
    let e = errors(&bomb);
    assert_eq!(e.codes(), [Code::TooLarge], "{e}");

    let deep = format!(
        "{}{}",
        doc(
            "    attestations:\n      - predicateType: t\n        checks:\n          - path: /a\n            equals: ",
            ""
        ),
        "[".repeat(200)
    );
    let e = errors(&deep);
    assert_eq!(e.codes(), [Code::TooLarge], "{e}");

    let mut block_deep = String::new();
    for depth in 0..100 {
        block_deep.push_str(&" ".repeat(depth));
        block_deep.push_str("a:\n");
    }
    assert_eq!(errors(&block_deep).codes(), [Code::TooLarge]);

    let anchors: String = (0..1_100).map(|i| format!("k{i}: &x{i} v\n")).collect();
    assert_eq!(errors(&anchors).codes(), [Code::TooLarge]);
}

#[test]
fn aliases_within_budget_reuse_keys() {
    // full.yaml shares one key through `&release-key` / `*release-key`.
    let set = full();
    assert_eq!(set.policies()[2].name(), "everything-audited");
}

#[test]
fn codes_are_unique_and_round_trip() {
    let mut seen = std::collections::HashSet::new();
    for code in Code::ALL {
        assert!(seen.insert(code.as_str()), "{code} twice");
        assert_eq!(Code::from_name(code.as_str()), Some(code));
        assert!(
            code.as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-'),
            "{code}"
        );
    }
    assert_eq!(Code::from_name("nope"), None);
    for mode in [Mode::Enforce, Mode::Warn, Mode::Audit] {
        assert_eq!(Mode::from_name(mode.as_str()), Some(mode));
    }
}

#[test]
fn the_set_is_send_sync_and_shareable() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<PolicySet>();
    shareable::<PolicyErrors>();
    let set = std::sync::Arc::new(full());
    let other = std::sync::Arc::clone(&set);
    std::thread::spawn(move || assert_eq!(other.policies().len(), 3))
        .join()
        .unwrap();
}

#[test]
fn errors_serialize_with_the_code_as_text() {
    let e = errors(&doc("    mode: x\n", ""));
    let json = serde_json::to_value(&e.0[0]).unwrap();
    assert_eq!(json["code"], "bad-value");
    assert_eq!(json["line"], 12);
    assert_eq!(json["column"], 11);
    assert_eq!(json["origin"], "t.yaml");
}

/// Issue 20: `signedTimestamps: accept` lets a policy's keyless authorities accept timestamp-only bundles (the
/// ImagePolicy option `verify --insecure-ignore-tlog --use-signed-timestamps` sets); `refuse` is the default.
#[test]
fn signed_timestamps_accept_or_refuse() {
    let parse = |body: &str| PolicySet::parse("t.yaml", &doc(body, "")).unwrap();
    let default = parse("");
    let refuse = parse("    signedTimestamps: refuse\n");
    let accept = parse("    signedTimestamps: accept\n");
    assert!(!default.policies()[0].accepts_signed_timestamps());
    assert!(!refuse.policies()[0].accepts_signed_timestamps());
    assert!(accept.policies()[0].accepts_signed_timestamps());
    // The setting reaches the verifier's policy: the same policy with it set is another ImagePolicy.
    assert_eq!(
        default.policies()[0].fingerprint(),
        refuse.policies()[0].fingerprint()
    );
    assert_ne!(
        default.policies()[0].fingerprint(),
        accept.policies()[0].fingerprint()
    );
    let expected = kibaship_cosign::ImagePolicy::builder()
        .key_pem(KEY.as_bytes())
        .unwrap()
        .use_signed_timestamps_without_transparency_log(true)
        .build()
        .unwrap();
    assert_eq!(accept.policies()[0].fingerprint(), expected.fingerprint());
    assert_eq!(
        found(&doc("    signedTimestamps: true\n", "")),
        [(Code::BadValue, 12, 23)]
    );
}
