//! From the YAML node tree to validated policies: every key checked against the format, every value against its
//! field, each error with its place and path; all errors of a file are collected.
use std::collections::{BTreeMap, HashMap};

use kibaship_cosign::{
    ImagePolicy, ImagePolicyBuilder, ImagePolicyError, PredicateCheck, PredicateCondition,
};
use kibaship_sigstore::{CertificateIdentity, GithubClaims, GoRegex, Matcher, PublicKey};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Diagnostics, PolicyErrorCode as Code, PolicyErrors};
use crate::glob::{ImageGlob, NameGlob};
use crate::model::{Exception, Mode, NamespaceSelector, Place, Policy};
use crate::yaml::{self, Node, Value};

/// Largest policy text accepted (bytes), checked before parsing.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// The `apiVersion` this build reads.
pub const API_VERSION: &str = "kibaship.io/v1alpha1";
/// The `kind` of a policy file.
pub const KIND: &str = "AdmissionPolicy";

const TOP_KEYS: &[&str] = &["apiVersion", "kind", "policies", "exceptions"];
const POLICY_KEYS: &[&str] = &[
    "name",
    "mode",
    "namespaces",
    "images",
    "authorities",
    "attestations",
    "transparencyLog",
    "signedTimestamps",
    "signatureRepository",
    "annotations",
];
const NAMESPACES_KEYS: &[&str] = &["names", "matchLabels"];
const AUTHORITY_KEYS: &[&str] = &["name", "key", "keyless"];
const KEYLESS_KEYS: &[&str] = &[
    "issuer",
    "issuerRegExp",
    "subject",
    "subjectRegExp",
    "github",
];
/// GitHub Actions claims, each compared exactly (see [`GithubClaims`]).
const GITHUB_KEYS: &[&str] = &[
    "workflowRepository",
    "sourceRepository",
    "sourceRef",
    "workflow",
    "trigger",
    "workflowSha",
    "workflowName",
];
const ATTESTATION_KEYS: &[&str] = &["predicateType", "checks"];
const CHECK_KEYS: &[&str] = &["path", "equals", "oneOf", "matches", "present"];
const CONDITION_KEYS: &[&str] = &["equals", "oneOf", "matches", "present"];
const EXCEPTION_KEYS: &[&str] = &["images", "namespaces", "owner", "expires", "reason"];

/// An attestation a policy requires: its predicate type and the checks on its predicate.
#[derive(Debug, Clone)]
pub(crate) struct AttestationRequirement {
    pub(crate) predicate_type: String,
    pub(crate) checks: Vec<PredicateCheck>,
}

/// Parses `text` (named `origin` in errors) into policies and exceptions.
pub(crate) fn parse(
    origin: &str,
    text: &str,
) -> Result<(Vec<Policy>, Vec<Exception>), PolicyErrors> {
    let mut w = Walker {
        d: Diagnostics::new(origin),
    };
    if text.len() > MAX_POLICY_BYTES {
        w.d.push(
            (1, 1),
            Code::TooLarge,
            format!(
                "the policy is {} bytes, more than the {MAX_POLICY_BYTES} accepted",
                text.len()
            ),
        );
        return Err(w.d.finish());
    }
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(problem) => {
            w.d.push(problem.position, problem.code, problem.message);
            return Err(w.d.finish());
        }
    };
    let result = w.document(&root);
    if w.d.has_errors() {
        return Err(w.d.finish());
    }
    Ok(result)
}

/// A mapping whose keys were checked against the format.
struct Map<'n> {
    node: &'n Node,
    path: String,
    entries: Vec<(&'n str, &'n Node)>,
}

impl<'n> Map<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

/// `path.key`, or `path["key"]` for a key that is not a plain word.
fn join(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (true, false) => format!("[{key:?}]"),
        (false, true) => format!("{path}.{key}"),
        (false, false) => format!("{path}[{key:?}]"),
    }
}

struct Walker {
    d: Diagnostics,
}

impl Walker {
    fn error(&mut self, at: &Node, code: Code, path: &str, message: impl AsRef<str>) {
        let message = message.as_ref();
        let message = if path.is_empty() {
            format!("the document: {message}")
        } else {
            format!("{path}: {message}")
        };
        self.d.push(at.position(), code, message);
    }

    fn place(&self, node: &Node) -> Place {
        Place {
            origin: self.d.origin().to_owned(),
            line: node.line,
            column: node.column,
        }
    }

    /// `node` as a mapping with only `allowed` keys: unknown keys and non-string keys are reported (and skipped).
    fn map<'n>(&mut self, node: &'n Node, path: &str, allowed: &[&str]) -> Option<Map<'n>> {
        let Value::Map(entries) = &node.value else {
            self.wrong_type(node, path, "a mapping");
            return None;
        };
        let mut checked = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let Value::Str(name) = &key.value else {
                self.error(
                    key,
                    Code::WrongType,
                    path,
                    format!("keys are strings, found {}", key.kind()),
                );
                continue;
            };
            if allowed.contains(&name.as_str()) {
                checked.push((name.as_str(), value));
            } else {
                let hint = suggestion(name, allowed)
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                self.error(
                    key,
                    Code::UnknownKey,
                    &join(path, name),
                    format!("unknown key; {hint}expected one of {}", list(allowed)),
                );
            }
        }
        Some(Map {
            node,
            path: path.to_owned(),
            entries: checked,
        })
    }

    fn wrong_type(&mut self, node: &Node, path: &str, expected: &str) {
        let message = if matches!(node.value, Value::Null) {
            format!("has no value; expected {expected}")
        } else {
            format!("expected {expected}, found {}", node.kind())
        };
        let code = if matches!(node.value, Value::Null) {
            Code::BadValue
        } else {
            Code::WrongType
        };
        self.error(node, code, path, message);
    }

    fn required<'n>(&mut self, map: &Map<'n>, key: &str) -> Option<&'n Node> {
        let found = map.get(key);
        if found.is_none() {
            self.error(
                map.node,
                Code::MissingField,
                &map.field(key),
                "required field is missing",
            );
        }
        found
    }

    /// A scalar as text: strings as they are, plain booleans and numbers as written.
    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(_) | Value::Int(_) | Value::UInt(_) | Value::Float(_) => {
                Some(node.raw.clone().unwrap_or_else(|| scalar_text(&node.value)))
            }
            _ => {
                self.wrong_type(node, path, "a string");
                None
            }
        }
    }

    /// A string that is not empty or blank.
    fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        if s.trim().is_empty() {
            self.error(node, Code::BadValue, path, "is empty");
            return None;
        }
        Some(s)
    }

    fn seq<'n>(&mut self, node: &'n Node, path: &str, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            Value::Str(_) => {
                self.error(
                    node,
                    Code::WrongType,
                    path,
                    format!(
                        "expected a list of {what}, found a string (write `[\"...\"]` for one)"
                    ),
                );
                None
            }
            _ => {
                self.wrong_type(node, path, &format!("a list of {what}"));
                None
            }
        }
    }

    /// A list with at least one entry.
    fn nonempty_seq<'n>(&mut self, node: &'n Node, path: &str, what: &str) -> Option<&'n [Node]> {
        let items = self.seq(node, path, what)?;
        if items.is_empty() {
            self.error(
                node,
                Code::BadValue,
                path,
                format!("an empty list of {what}; give at least one"),
            );
            return None;
        }
        Some(items)
    }

    /// A mapping of strings to strings, in key order.
    fn string_map(&mut self, node: &Node, path: &str) -> Option<Vec<(String, String, Node)>> {
        let Value::Map(entries) = &node.value else {
            self.wrong_type(node, path, "a mapping of strings to strings");
            return None;
        };
        let mut out = Vec::with_capacity(entries.len());
        let mut ok = true;
        for (key, value) in entries {
            let Some(k) = self.string(key, path) else {
                ok = false;
                continue;
            };
            let field = join(path, &k);
            match self.string(value, &field) {
                Some(v) => out.push((k, v, key.clone())),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn document(&mut self, root: &Node) -> (Vec<Policy>, Vec<Exception>) {
        if matches!(root.value, Value::Null) {
            self.d.push(
                root.position(),
                Code::BadValue,
                format!(
                    "the document is empty; a policy file is a mapping with `apiVersion: {API_VERSION}`, `kind: \
                     {KIND}` and `policies`"
                ),
            );
            return (Vec::new(), Vec::new());
        }
        let Some(top) = self.map(root, "", TOP_KEYS) else {
            return (Vec::new(), Vec::new());
        };
        if let Some(node) = self.required(&top, "apiVersion") {
            if let Some(version) = self.string(node, "apiVersion") {
                if version != API_VERSION {
                    self.error(
                        node,
                        Code::UnsupportedVersion,
                        "apiVersion",
                        format!("`{version}` is not a version this build reads; expected `{API_VERSION}`"),
                    );
                }
            }
        }
        if let Some(node) = self.required(&top, "kind") {
            if let Some(kind) = self.string(node, "kind") {
                if kind != KIND {
                    self.error(
                        node,
                        Code::BadValue,
                        "kind",
                        format!("`{kind}` is not `{KIND}`"),
                    );
                }
            }
        }
        let mut policies = Vec::new();
        if let Some(node) = self.required(&top, "policies") {
            if let Some(items) = self.nonempty_seq(node, "policies", "policies") {
                let mut names: HashMap<String, (usize, usize)> = HashMap::new();
                for (i, item) in items.iter().enumerate() {
                    let path = format!("policies[{i}]");
                    if let Some(policy) = self.policy(item, &path, &mut names) {
                        policies.push(policy);
                    }
                }
            }
        }
        let mut exceptions = Vec::new();
        if let Some(node) = top.get("exceptions") {
            if let Some(items) = self.seq(node, "exceptions", "exceptions") {
                for (i, item) in items.iter().enumerate() {
                    if let Some(exception) = self.exception(item, &format!("exceptions[{i}]")) {
                        exceptions.push(exception);
                    }
                }
            }
        }
        (policies, exceptions)
    }

    fn policy(
        &mut self,
        node: &Node,
        path: &str,
        names: &mut HashMap<String, (usize, usize)>,
    ) -> Option<Policy> {
        let before = self.d.error_count();
        let map = self.map(node, path, POLICY_KEYS)?;
        let name = self.required(&map, "name").and_then(|n| {
            let field = map.field("name");
            let name = self.text(n, &field)?;
            if !valid_policy_name(&name) {
                self.error(
                    n,
                    Code::BadValue,
                    &field,
                    format!(
                        "`{name}` is not a valid name: 1 to 63 lower-case letters, digits, `-` and `.`, starting and \
                         ending with a letter or digit"
                    ),
                );
                return None;
            }
            if let Some(&(line, _)) = names.get(&name) {
                self.error(
                    n,
                    Code::DuplicateName,
                    &field,
                    format!("`{name}` is already the name of the policy at line {line}"),
                );
                return None;
            }
            names.insert(name.clone(), n.position());
            Some(name)
        });
        let mode = match map.get("mode") {
            None => Some(Mode::Enforce),
            Some(n) => self.string(n, &map.field("mode")).and_then(|s| {
                let mode = Mode::from_name(&s);
                if mode.is_none() {
                    self.error(
                        n,
                        Code::BadValue,
                        &map.field("mode"),
                        format!("`{s}` is not a mode; expected `enforce`, `warn` or `audit`"),
                    );
                }
                mode
            }),
        };
        let namespaces = map
            .get("namespaces")
            .and_then(|n| self.namespace_selector(n, &map.field("namespaces")));
        let images = match self.required(&map, "images") {
            Some(n) => self.image_globs(n, &map.field("images")),
            None => Vec::new(),
        };
        let authorities = self.authorities(&map);
        let attestations = match map.get("attestations") {
            Some(n) => self.attestations(n, &map.field("attestations")),
            None => Vec::new(),
        };
        let transparency_log_required = match map.get("transparencyLog") {
            None => true,
            Some(n) => {
                let field = map.field("transparencyLog");
                match self.string(n, &field).as_deref() {
                    Some("required") => true,
                    Some("optional") => false,
                    Some(other) => {
                        self.error(
                            n,
                            Code::BadValue,
                            &field,
                            format!("`{other}` is not accepted; expected `required` or `optional`"),
                        );
                        true
                    }
                    None => true,
                }
            }
        };
        let accept_signed_timestamps = match map.get("signedTimestamps") {
            None => false,
            Some(n) => {
                let field = map.field("signedTimestamps");
                match self.string(n, &field).as_deref() {
                    Some("refuse") => false,
                    Some("accept") => true,
                    Some(other) => {
                        self.error(
                            n,
                            Code::BadValue,
                            &field,
                            format!("`{other}` is not accepted; expected `refuse` or `accept`"),
                        );
                        false
                    }
                    None => false,
                }
            }
        };
        let signature_repository = map
            .get("signatureRepository")
            .and_then(|n| self.signature_repository(n, &map.field("signatureRepository")));
        let annotations = map
            .get("annotations")
            .and_then(|n| self.annotations(n, &map.field("annotations")))
            .unwrap_or_default();
        if self.d.error_count() > before {
            return None;
        }
        let (name, mode) = (name?, mode?);
        let mut builder = ImagePolicy::builder();
        for authority in authorities {
            builder = match authority {
                Authority::Key(key) => builder.key(key),
                Authority::Keyless(identity) => builder.keyless(identity),
            };
        }
        let attestation_types = attestations
            .iter()
            .map(|a| a.predicate_type.clone())
            .collect();
        for requirement in attestations {
            builder = require_attestation(builder, requirement);
        }
        builder = builder
            .annotations(annotations)
            .accept_without_transparency_log(!transparency_log_required)
            .use_signed_timestamps_without_transparency_log(accept_signed_timestamps);
        if let Some(repository) = signature_repository {
            builder = builder.signature_repository(repository);
        }
        let image_policy = match builder.build() {
            Ok(p) => p,
            Err(e) => {
                // Checked above already (authorities, pointers); kept as errors, never as a panic.
                let code = match e {
                    ImagePolicyError::NoAuthority => Code::NoAuthority,
                    ImagePolicyError::Key { .. } => Code::BadKey,
                    _ => Code::BadValue,
                };
                self.error(node, code, path, e.to_string());
                return None;
            }
        };
        Some(Policy {
            name,
            mode,
            namespaces,
            images,
            fingerprint: image_policy.fingerprint(),
            image_policy: std::sync::Arc::new(image_policy),
            attestation_types,
            transparency_log_required,
            accept_signed_timestamps,
            place: self.place(node),
        })
    }

    fn namespace_selector(&mut self, node: &Node, path: &str) -> Option<NamespaceSelector> {
        let map = self.map(node, path, NAMESPACES_KEYS)?;
        if !map.has("names") && !map.has("matchLabels") {
            self.error(
                node,
                Code::BadValue,
                path,
                "selects by neither `names` nor `matchLabels`; remove `namespaces` to select every namespace",
            );
            return None;
        }
        let mut names = Vec::new();
        if let Some(n) = map.get("names") {
            let field = map.field("names");
            for (i, item) in self
                .nonempty_seq(n, &field, "namespace globs")
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if let Some(glob) = self.name_glob(item, &format!("{field}[{i}]")) {
                    names.push(glob);
                }
            }
        }
        let mut match_labels = BTreeMap::new();
        if let Some(n) = map.get("matchLabels") {
            let field = map.field("matchLabels");
            let labels = self.string_map(n, &field).unwrap_or_default();
            if labels.is_empty() && matches!(&n.value, Value::Map(m) if m.is_empty()) {
                self.error(
                    n,
                    Code::BadValue,
                    &field,
                    "is empty; give at least one label or remove `matchLabels`",
                );
            }
            for (key, value, key_node) in labels {
                let label = join(&field, &key);
                if let Err(why) = check_label_key(&key) {
                    self.error(
                        &key_node,
                        Code::BadValue,
                        &label,
                        format!("`{key}` is not a label key: {why}"),
                    );
                    continue;
                }
                if let Err(why) = check_label_value(&value) {
                    self.error(
                        &key_node,
                        Code::BadValue,
                        &label,
                        format!("`{value}` is not a label value: {why}"),
                    );
                    continue;
                }
                match_labels.insert(key, value);
            }
        }
        Some(NamespaceSelector {
            names,
            match_labels,
        })
    }

    fn name_glob(&mut self, node: &Node, path: &str) -> Option<NameGlob> {
        let s = self.string(node, path)?;
        NameGlob::parse(&s)
            .map_err(|why| self.error(node, Code::BadGlob, path, format!("`{s}`: {why}")))
            .ok()
    }

    fn image_globs(&mut self, node: &Node, path: &str) -> Vec<ImageGlob> {
        let mut globs = Vec::new();
        for (i, item) in self
            .nonempty_seq(node, path, "image globs")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let field = format!("{path}[{i}]");
            let Some(s) = self.string(item, &field) else {
                continue;
            };
            match ImageGlob::parse(&s) {
                Ok(glob) => globs.push(glob),
                Err(why) => self.error(item, Code::BadGlob, &field, format!("`{s}`: {why}")),
            }
        }
        globs
    }

    fn authorities(&mut self, policy: &Map<'_>) -> Vec<Authority> {
        let field = policy.field("authorities");
        let Some(node) = policy.get("authorities") else {
            self.error(
                policy.node,
                Code::NoAuthority,
                &field,
                "a policy needs at least one authority (`key` or `keyless`); nothing could ever satisfy it",
            );
            return Vec::new();
        };
        let Some(items) = self.seq(node, &field, "authorities") else {
            return Vec::new();
        };
        if items.is_empty() {
            self.error(
                node,
                Code::NoAuthority,
                &field,
                "the list is empty; a policy needs at least one authority (`key` or `keyless`)",
            );
            return Vec::new();
        }
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{field}[{i}]");
            let Some(map) = self.map(item, &path, AUTHORITY_KEYS) else {
                continue;
            };
            if let Some(n) = map.get("name") {
                if let Some(name) = self.text(n, &map.field("name")) {
                    if let Some(line) = names.get(&name) {
                        self.error(
                            n,
                            Code::DuplicateName,
                            &map.field("name"),
                            format!("`{name}` is already the name of the authority at line {line}"),
                        );
                    } else {
                        names.insert(name, n.line);
                    }
                }
            }
            match (map.get("key"), map.get("keyless")) {
                (Some(_), Some(_)) => self.error(
                    item,
                    Code::Conflict,
                    &path,
                    "`key` and `keyless` exclude each other: one authority is either; list two authorities to \
                     accept both",
                ),
                (None, None) => self.error(
                    item,
                    Code::MissingField,
                    &path,
                    "needs `key` (a PEM public key) or `keyless` (a certificate identity)",
                ),
                (Some(key), None) => {
                    if let Some(key) = self.public_key(key, &map.field("key")) {
                        out.push(Authority::Key(key));
                    }
                }
                (None, Some(keyless)) => {
                    if let Some(identity) = self.keyless(keyless, &map.field("keyless")) {
                        out.push(Authority::Keyless(identity));
                    }
                }
            }
        }
        out
    }

    fn public_key(&mut self, node: &Node, path: &str) -> Option<PublicKey> {
        if let Value::Map(_) = node.value {
            self.error(
                node,
                Code::WrongType,
                path,
                "expected the public key as PEM text (`-----BEGIN PUBLIC KEY-----`), found a mapping; key \
                 references (KMS, Secrets) are not supported",
            );
            return None;
        }
        let pem = self.string(node, path)?;
        if pem.trim().is_empty() {
            self.error(
                node,
                Code::BadKey,
                path,
                "is empty; expected a PEM `PUBLIC KEY` block",
            );
            return None;
        }
        PublicKey::from_pem(&pem)
            .map_err(|e| {
                self.error(
                    node,
                    Code::BadKey,
                    path,
                    format!("not a usable public key: {e}"),
                )
            })
            .ok()
    }

    fn keyless(&mut self, node: &Node, path: &str) -> Option<CertificateIdentity> {
        let map = self.map(node, path, KEYLESS_KEYS)?;
        let issuer = self.matcher(&map, "issuer", "issuerRegExp", "the OIDC issuer");
        let san = self.matcher(&map, "subject", "subjectRegExp", "the certificate identity");
        let github = match map.get("github") {
            None => Some(GithubClaims::default()),
            Some(n) => self.github(n, &map.field("github")),
        };
        Some(CertificateIdentity {
            issuer: issuer?,
            san: san?,
            github: github?,
        })
    }

    /// Exactly one of `exact` (a string) and `regexp` (a Go regular expression).
    fn matcher(&mut self, map: &Map<'_>, exact: &str, regexp: &str, what: &str) -> Option<Matcher> {
        match (map.get(exact), map.get(regexp)) {
            (Some(_), Some(r)) => {
                self.error(
                    r,
                    Code::Conflict,
                    &map.field(regexp),
                    format!("`{exact}` and `{regexp}` exclude each other; give one"),
                );
                None
            }
            (None, None) => {
                self.error(
                    map.node,
                    Code::MissingField,
                    &map.field(exact),
                    format!("required field is missing: give {what} as `{exact}` (exact) or `{regexp}` (Go regular expression)"),
                );
                None
            }
            (Some(n), None) => {
                let field = map.field(exact);
                let s = self.text(n, &field)?;
                if s.trim() != s {
                    self.error(
                        n,
                        Code::BadValue,
                        &field,
                        "has leading or trailing spaces; it is compared exactly",
                    );
                    return None;
                }
                Some(Matcher::Exact(s))
            }
            (None, Some(n)) => {
                let field = map.field(regexp);
                let s = self.text(n, &field)?;
                self.regex(n, &field, &s).map(Matcher::Regex)
            }
        }
    }

    fn regex(&mut self, node: &Node, path: &str, pattern: &str) -> Option<GoRegex> {
        GoRegex::new(pattern)
            .map_err(|e| self.error(node, Code::BadRegex, path, e.to_string()))
            .ok()
    }

    fn github(&mut self, node: &Node, path: &str) -> Option<GithubClaims> {
        let map = self.map(node, path, GITHUB_KEYS)?;
        if matches!(&node.value, Value::Map(entries) if entries.is_empty()) {
            self.error(
                node,
                Code::BadValue,
                path,
                format!("names no claim; expected some of {}", list(GITHUB_KEYS)),
            );
            return None;
        }
        let mut claims = GithubClaims::default();
        let mut ok = true;
        for &(key, value) in &map.entries {
            let Some(s) = self.text(value, &map.field(key)) else {
                ok = false;
                continue;
            };
            let slot = match key {
                "workflowRepository" => &mut claims.workflow_repository,
                "sourceRepository" => &mut claims.source_repository,
                "sourceRef" => &mut claims.source_ref,
                "workflow" => &mut claims.workflow,
                "trigger" => &mut claims.trigger,
                "workflowSha" => &mut claims.workflow_sha,
                _ => &mut claims.workflow_name,
            };
            *slot = Some(Matcher::Exact(s));
        }
        ok.then_some(claims)
    }

    fn attestations(&mut self, node: &Node, path: &str) -> Vec<AttestationRequirement> {
        let mut out: Vec<AttestationRequirement> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, item) in self
            .seq(node, path, "attestations")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let item_path = format!("{path}[{i}]");
            let Some(map) = self.map(item, &item_path, ATTESTATION_KEYS) else {
                continue;
            };
            let predicate_type = self.required(&map, "predicateType").and_then(|n| {
                let field = map.field("predicateType");
                let t = self.text(n, &field)?;
                if let Some(line) = seen.get(&t) {
                    self.error(
                        n,
                        Code::BadValue,
                        &field,
                        format!("`{t}` is already required at line {line}; put all its checks in one entry"),
                    );
                    return None;
                }
                seen.insert(t.clone(), n.line);
                Some(t)
            });
            let checks = match map.get("checks") {
                None => Some(Vec::new()),
                Some(n) => self.checks(n, &map.field("checks")),
            };
            if let (Some(predicate_type), Some(checks)) = (predicate_type, checks) {
                out.push(AttestationRequirement {
                    predicate_type,
                    checks,
                });
            }
        }
        out
    }

    fn checks(&mut self, node: &Node, path: &str) -> Option<Vec<PredicateCheck>> {
        let items = self.seq(node, path, "checks")?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.check(item, &format!("{path}[{i}]")) {
                Some(check) => out.push(check),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn check(&mut self, node: &Node, path: &str) -> Option<PredicateCheck> {
        let map = self.map(node, path, CHECK_KEYS)?;
        let pointer = self.required(&map, "path").and_then(|n| {
            let field = map.field("path");
            let p = self.string(n, &field)?;
            check_pointer(&p)
                .map_err(|why| {
                    self.error(
                        n,
                        Code::BadValue,
                        &field,
                        format!("`{p}` is not a JSON pointer (RFC 6901): {why}"),
                    )
                })
                .ok()?;
            Some(p)
        });
        let given: Vec<&str> = CONDITION_KEYS
            .iter()
            .copied()
            .filter(|k| map.has(k))
            .collect();
        let condition = match given.as_slice() {
            [] => {
                self.error(
                    node,
                    Code::MissingField,
                    path,
                    format!("needs a condition: one of {}", list(CONDITION_KEYS)),
                );
                None
            }
            [key] => {
                let key = *key;
                let field = map.field(key);
                let n = map.get(key)?;
                match key {
                    "equals" => self.json(n, &field).map(PredicateCondition::Equals),
                    "oneOf" => self.nonempty_seq(n, &field, "values").and_then(|items| {
                        let values: Vec<Option<serde_json::Value>> = items
                            .iter()
                            .enumerate()
                            .map(|(i, v)| self.json(v, &format!("{field}[{i}]")))
                            .collect();
                        values
                            .into_iter()
                            .collect::<Option<Vec<_>>>()
                            .map(PredicateCondition::OneOf)
                    }),
                    "matches" => {
                        let pattern = self.text(n, &field)?;
                        self.regex(n, &field, &pattern)
                            .map(PredicateCondition::Matches)
                    }
                    _ => match n.value {
                        Value::Bool(true) => Some(PredicateCondition::Present),
                        Value::Bool(false) => {
                            self.error(
                                n,
                                Code::BadValue,
                                &field,
                                "only `present: true` is supported",
                            );
                            None
                        }
                        _ => {
                            self.wrong_type(n, &field, "`true`");
                            None
                        }
                    },
                }
            }
            [_, second, ..] => {
                let n = map.get(second)?;
                self.error(
                    n,
                    Code::Conflict,
                    &map.field(second),
                    format!(
                        "a check has one condition, this one has {}; use one check per condition",
                        list(&given)
                    ),
                );
                None
            }
        };
        Some(PredicateCheck {
            path: pointer?,
            condition: condition?,
            code: None,
        })
    }

    /// A YAML value as JSON (for predicate comparisons).
    fn json(&mut self, node: &Node, path: &str) -> Option<serde_json::Value> {
        Some(match &node.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::UInt(u) => serde_json::Value::from(*u),
            Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => serde_json::Value::Number(n),
                None => {
                    self.error(node, Code::BadValue, path, "is not a finite number");
                    return None;
                }
            },
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                let values: Vec<Option<serde_json::Value>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.json(v, &format!("{path}[{i}]")))
                    .collect();
                serde_json::Value::Array(values.into_iter().collect::<Option<Vec<_>>>()?)
            }
            Value::Map(entries) => {
                let mut object = serde_json::Map::new();
                let mut ok = true;
                for (key, value) in entries {
                    let Some(k) = self.string(key, path) else {
                        ok = false;
                        continue;
                    };
                    let field = join(path, &k);
                    match self.json(value, &field) {
                        Some(v) => {
                            object.insert(k, v);
                        }
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                serde_json::Value::Object(object)
            }
        })
    }

    fn signature_repository(&mut self, node: &Node, path: &str) -> Option<kibaship_oci::Reference> {
        let s = self.text(node, path)?;
        match kibaship_oci::Reference::parse(&s) {
            Ok(r) if r.tag().is_none() && r.digest().is_none() => Some(r),
            Ok(_) => {
                self.error(
                    node,
                    Code::BadValue,
                    path,
                    format!("`{s}` is a repository: no tag or digest"),
                );
                None
            }
            Err(e) => {
                self.error(node, Code::BadValue, path, e.to_string());
                None
            }
        }
    }

    fn annotations(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        let entries = self.string_map(node, path)?;
        let mut out = BTreeMap::new();
        for (key, value, key_node) in entries {
            if key.is_empty() {
                self.error(
                    &key_node,
                    Code::BadValue,
                    path,
                    "an annotation key is empty",
                );
                continue;
            }
            out.insert(key, value);
        }
        Some(out)
    }

    fn exception(&mut self, node: &Node, path: &str) -> Option<Exception> {
        let before = self.d.error_count();
        let map = self.map(node, path, EXCEPTION_KEYS)?;
        let images = self
            .required(&map, "images")
            .map(|n| self.image_globs(n, &map.field("images")))
            .unwrap_or_default();
        let mut namespaces = Vec::new();
        if let Some(n) = self.required(&map, "namespaces") {
            let field = map.field("namespaces");
            for (i, item) in self
                .nonempty_seq(n, &field, "namespace globs")
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if let Some(glob) = self.name_glob(item, &format!("{field}[{i}]")) {
                    namespaces.push(glob);
                }
            }
        }
        let owner = self
            .required(&map, "owner")
            .and_then(|n| self.text(n, &map.field("owner")));
        let reason = self
            .required(&map, "reason")
            .and_then(|n| self.text(n, &map.field("reason")));
        let expires = self.required(&map, "expires").and_then(|n| {
            let field = map.field("expires");
            let s = self.string(n, &field)?;
            match OffsetDateTime::parse(s.trim(), &Rfc3339) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.error(
                        n,
                        Code::BadTime,
                        &field,
                        format!("`{s}` is not an RFC 3339 time with a zone, such as 2027-01-31T00:00:00Z ({e})"),
                    );
                    None
                }
            }
        });
        if self.d.error_count() > before {
            return None;
        }
        let expires = expires?;
        let utc = expires.to_offset(time::UtcOffset::UTC);
        Some(Exception {
            images,
            namespaces,
            owner: owner?,
            expires: expires.unix_timestamp(),
            expires_rfc3339: utc
                .format(&Rfc3339)
                .unwrap_or_else(|_| unix_fallback(expires.unix_timestamp())),
            reason: reason?,
            place: self.place(node),
        })
    }
}

/// A parsed authority.
enum Authority {
    Key(PublicKey),
    Keyless(CertificateIdentity),
}

/// Adds an attestation requirement, with its predicate checks, to the image policy.
fn require_attestation(
    builder: ImagePolicyBuilder,
    requirement: AttestationRequirement,
) -> ImagePolicyBuilder {
    builder.require_attestation_checked(requirement.predicate_type, requirement.checks)
}

/// A time the formatter refused (outside what RFC 3339 can write): unix seconds.
fn unix_fallback(unix: i64) -> String {
    format!("@{unix}")
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        _ => String::new(),
    }
}

/// `a`, `b` or `c` as "`a`, `b`, `c`".
fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The allowed key closest to an unknown one, when it is close (a different case, or a typo or two).
fn suggestion<'a>(unknown: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let lower = unknown.to_ascii_lowercase();
    allowed
        .iter()
        .map(|&a| (edit_distance(&lower, &a.to_ascii_lowercase()), a))
        .filter(|&(d, _)| d <= 2)
        .min_by_key(|&(d, _)| d)
        .map(|(_, a)| a)
}

/// Levenshtein distance (keys are short; longer inputs are not compared).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(usize::from(ca != cb));
            let delete = previous
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let insert = current
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(usize::MAX)
}

fn valid_policy_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (1..=63).contains(&bytes.len())
        && edge(bytes.first())
        && edge(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
}

/// A Kubernetes label name or value body: alphanumerics at both ends, `-`, `_`, `.` between.
fn label_name_ok(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    edge(bytes.first())
        && edge(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_label_key(key: &str) -> Result<(), &'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let dns_ok = (1..=253).contains(&prefix.len())
            && prefix.split('.').all(|label| {
                let b = label.as_bytes();
                let edge = |c: Option<&u8>| {
                    c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                };
                (1..=63).contains(&b.len())
                    && edge(b.first())
                    && edge(b.last())
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            });
        if !dns_ok {
            return Err(
                "the prefix before `/` must be a DNS subdomain (lower-case, at most 253 characters)",
            );
        }
    }
    if name.len() > 63 || !label_name_ok(name) {
        return Err(
            "the name must be 1 to 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit",
        );
    }
    Ok(())
}

fn check_label_value(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 || !label_name_ok(value) {
        return Err(
            "at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit",
        );
    }
    Ok(())
}

/// RFC 6901: empty (the whole predicate), or `/`-prefixed reference tokens where `~` is followed by `0` or `1`.
fn check_pointer(pointer: &str) -> Result<(), &'static str> {
    if pointer.is_empty() {
        return Ok(());
    }
    if !pointer.starts_with('/') {
        return Err("it must be empty or start with `/`");
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err("`~` must be followed by `0` (for `~`) or `1` (for `/`)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers() {
        for ok in ["", "/", "/a/b", "/a~1b", "/m~0n", "/0"] {
            assert!(check_pointer(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "/a~", "/a~2", "#/a"] {
            assert!(check_pointer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_labels() {
        assert!(valid_policy_name("prod-signed"));
        assert!(valid_policy_name("a"));
        assert!(valid_policy_name("v1.2"));
        for bad in ["", "-a", "a-", "Prod", "a_b", &"a".repeat(64)] {
            assert!(!valid_policy_name(bad), "{bad}");
        }
        assert!(check_label_key("kibaship.io/tier").is_ok());
        assert!(check_label_key("tier").is_ok());
        assert!(check_label_key("Tier_2.x").is_ok());
        for bad in [
            "",
            "/tier",
            "Kibaship.io/tier",
            "a/b/c",
            "-tier",
            &"a".repeat(64),
        ] {
            assert!(check_label_key(bad).is_err(), "{bad}");
        }
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("prod").is_ok());
        assert!(check_label_value("prod env").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggestion("image", POLICY_KEYS), Some("images"));
        assert_eq!(suggestion("Mode", POLICY_KEYS), Some("mode"));
        assert_eq!(
            suggestion("issuerRegex", KEYLESS_KEYS),
            Some("issuerRegExp")
        );
        assert_eq!(suggestion("completely-else", POLICY_KEYS), None);
    }

    #[test]
    fn paths() {
        assert_eq!(join("", "policies"), "policies");
        assert_eq!(join("a", "b"), "a.b");
        assert_eq!(join("a", "kibaship.io/tier"), "a[\"kibaship.io/tier\"]");
    }
}
