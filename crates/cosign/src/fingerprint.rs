//! [`ImagePolicy::fingerprint`]: a SHA-256 over a canonical encoding of everything in a policy that decides a
//! verdict, so that a cache of verification facts (the admission webhook's, keyed by image digest, trust root
//! and policy) is never shared between two policies that could decide differently.
//!
//! The encoding is private and versioned (its first bytes name the version): each value is tagged, strings and
//! byte strings are length-prefixed, lists are counted, maps are in key order, JSON objects in the predicate
//! checks are written with sorted keys. Nothing goes through `Debug` or a hash map, so the same policy has the
//! same fingerprint in every process and build. Order is kept where the policy keeps it (authorities,
//! requirements, checks): it decides which reason a verdict names, so two orders are two fingerprints.
use aws_lc_rs::digest::{Context, SHA256};
use kibaship_sigstore::{CertificateIdentity, IdentityPolicy, KeyKind, Matcher};
use serde_json::Value;

use crate::image_verifier::ImagePolicy;
use crate::predicate::{PredicateCheck, PredicateCondition};

/// Names the encoding; a change of the encoding changes it.
const DOMAIN: &[u8] = b"kibaship image policy fingerprint v1";

struct Encoder(Context);

impl Encoder {
    fn tag(&mut self, tag: u8) {
        self.0.update(&[tag]);
    }

    fn count(&mut self, n: usize) {
        self.0.update(&(n as u64).to_be_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.0.update(bytes);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn bool(&mut self, b: bool) {
        self.tag(u8::from(b));
    }

    fn option<T>(&mut self, value: Option<T>, some: impl FnOnce(&mut Self, T)) {
        match value {
            None => self.tag(0),
            Some(v) => {
                self.tag(1);
                some(self, v);
            }
        }
    }

    fn matcher(&mut self, m: &Matcher) {
        match m {
            Matcher::Exact(s) => {
                self.tag(b'E');
                self.str(s);
            }
            Matcher::Regex(r) => {
                self.tag(b'R');
                self.str(r.as_str());
            }
        }
    }

    fn authority(&mut self, authority: &IdentityPolicy) {
        match authority {
            IdentityPolicy::Key(key) => {
                self.tag(b'K');
                self.str(key_kind(key.kind()));
                self.bytes(key.spki());
            }
            IdentityPolicy::Certificate(identity) => {
                self.tag(b'C');
                self.certificate_identity(identity);
            }
        }
    }

    fn certificate_identity(&mut self, identity: &CertificateIdentity) {
        let CertificateIdentity {
            issuer,
            san,
            github,
        } = identity;
        self.matcher(issuer);
        self.matcher(san);
        // Every claim, in a fixed order, present or not (destructured so that a new claim cannot be forgotten).
        let kibaship_sigstore::GithubClaims {
            source_repository,
            source_ref,
            workflow,
            trigger,
            workflow_sha,
            workflow_name,
            workflow_repository,
        } = github;
        for claim in [
            source_repository,
            source_ref,
            workflow,
            trigger,
            workflow_sha,
            workflow_name,
            workflow_repository,
        ] {
            self.option(claim.as_ref(), Self::matcher);
        }
    }

    fn check(&mut self, check: &PredicateCheck) {
        self.str(&check.path);
        match &check.condition {
            PredicateCondition::Present => self.tag(b'P'),
            PredicateCondition::Equals(v) => {
                self.tag(b'Q');
                self.json(v);
            }
            PredicateCondition::OneOf(vs) => {
                self.tag(b'O');
                self.count(vs.len());
                for v in vs {
                    self.json(v);
                }
            }
            PredicateCondition::Matches(re) => {
                self.tag(b'M');
                self.str(re.as_str());
            }
        }
        // Only checks with their own code (verify-provenance's) encode it: policy files' fingerprints stay.
        if let Some(code) = check.code {
            self.tag(b'C');
            self.str(code.as_str());
        }
    }

    /// A JSON value, objects with their keys sorted (whatever order the map keeps them in).
    fn json(&mut self, value: &Value) {
        match value {
            Value::Null => self.tag(b'n'),
            Value::Bool(b) => {
                self.tag(b'b');
                self.bool(*b);
            }
            // As written (`1` and `1.0` are different values to the checks, so different here).
            Value::Number(n) => {
                self.tag(b'd');
                self.str(&n.to_string());
            }
            Value::String(s) => {
                self.tag(b's');
                self.str(s);
            }
            Value::Array(items) => {
                self.tag(b'a');
                self.count(items.len());
                for item in items {
                    self.json(item);
                }
            }
            Value::Object(map) => {
                self.tag(b'o');
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                self.count(entries.len());
                for (key, item) in entries {
                    self.str(key);
                    self.json(item);
                }
            }
        }
    }
}

/// A stable name for each key kind (not `Debug`, which could change).
fn key_kind(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::EcdsaP256 => "ecdsa-p256",
        KeyKind::EcdsaP384 => "ecdsa-p384",
        KeyKind::EcdsaP521 => "ecdsa-p521",
        KeyKind::Ed25519 => "ed25519",
        KeyKind::RsaPkcs1 => "rsa-pkcs1",
        KeyKind::RsaPss => "rsa-pss",
    }
}

impl ImagePolicy {
    /// A SHA-256 over a canonical encoding of everything in the policy that decides a verdict: the authorities
    /// (key kind and SPKI bytes; certificate issuer, SAN and GitHub claim matchers, exact or regex, with their
    /// text), whether a signature is required, the required attestations with their predicate checks, the
    /// signed annotations, whether signatures without transparency-log proof are accepted, and the signature
    /// repository. Equal policies have equal fingerprints in any process; a change of any of these changes it.
    /// The trusted root and the clock are not part of the policy: key a cache by them too.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut e = Encoder(Context::new(&SHA256));
        e.bytes(DOMAIN);
        e.count(self.authorities.len());
        for authority in &self.authorities {
            e.authority(authority);
        }
        e.bool(self.signature_required);
        e.count(self.attestations.len());
        for predicate_type in &self.attestations {
            e.option(predicate_type.as_deref(), Encoder::str);
            let checks = predicate_type
                .as_ref()
                .and_then(|t| self.predicate_checks.by_type.get(t))
                .map_or(&[][..], Vec::as_slice);
            e.count(checks.len());
            for compiled in checks {
                e.check(&compiled.check);
            }
        }
        e.count(self.annotations.len());
        for (key, value) in &self.annotations {
            e.str(key);
            e.str(value);
        }
        e.bool(self.accept_without_transparency_log);
        // Only where signatures are read matters (a tag or digest on it is ignored).
        e.option(self.signature_repository.as_ref(), |e, r| {
            e.str(r.registry());
            e.str(r.repository());
        });
        // Added after the encoding's first version: written only when set, so earlier fingerprints are unchanged.
        if self.use_signed_timestamps {
            e.str("use-signed-timestamps");
        }
        let digest = e.0.finish();
        let mut out = [0u8; 32];
        for (o, b) in out.iter_mut().zip(digest.as_ref()) {
            *o = *b;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use kibaship_oci::Reference;
    use kibaship_sigstore::{GithubClaims, GoRegex, PublicKey};
    use serde_json::json;

    use super::*;

    const KEY: &str = include_str!("../../../testdata/cosign/simple-signing/key-signed/cosign.pub");
    const OTHER_KEY: &str =
        include_str!("../../../testdata/cosign/simple-signing/key-signed/wrong-key.pub");
    const SLSA_V1: &str = "https://slsa.dev/provenance/v1";

    /// Everything a policy may hold, as plain values: one field changed at a time makes each variant.
    #[derive(Clone)]
    struct Spec {
        keys: Vec<&'static str>,
        san: Matcher,
        issuer: Matcher,
        github: GithubClaims,
        keyless_first: bool,
        signature_required: bool,
        any_attestation: bool,
        predicate_type: String,
        checks: Vec<PredicateCheck>,
        annotations: BTreeMap<String, String>,
        accept_without_transparency_log: bool,
        use_signed_timestamps: bool,
        signature_repository: Option<&'static str>,
    }

    fn check(path: &str, condition: PredicateCondition) -> PredicateCheck {
        PredicateCheck {
            path: path.to_string(),
            condition,
            code: None,
        }
    }

    fn spec() -> Spec {
        Spec {
            keys: vec![KEY],
            san: Matcher::Exact(
                "https://github.com/kibaship/app/.github/workflows/release.yml@refs/heads/main"
                    .into(),
            ),
            issuer: Matcher::Exact("https://token.actions.githubusercontent.com".into()),
            github: GithubClaims::default(),
            keyless_first: false,
            signature_required: true,
            any_attestation: true,
            predicate_type: SLSA_V1.into(),
            checks: vec![
                check("/buildDefinition/buildType", PredicateCondition::Present),
                check(
                    "/buildDefinition/externalParameters/workflow",
                    PredicateCondition::Equals(
                        json!({"ref": "refs/heads/main", "path": "release.yml"}),
                    ),
                ),
                check(
                    "/runDetails/builder/version/n",
                    PredicateCondition::OneOf(vec![json!(1), json!("1")]),
                ),
                check(
                    "/runDetails/builder/id",
                    PredicateCondition::Matches(
                        GoRegex::new("^https://github.com/kibaship/").unwrap(),
                    ),
                ),
            ],
            annotations: BTreeMap::from([("team".to_string(), "platform".to_string())]),
            accept_without_transparency_log: false,
            use_signed_timestamps: false,
            signature_repository: Some("registry.example/org/signatures"),
        }
    }

    fn build(spec: &Spec) -> ImagePolicy {
        let keyless = CertificateIdentity {
            san: spec.san.clone(),
            issuer: spec.issuer.clone(),
            github: spec.github.clone(),
        };
        let mut b = ImagePolicy::builder();
        if spec.keyless_first {
            b = b.keyless(keyless.clone());
        }
        for key in &spec.keys {
            b = b.key(PublicKey::from_pem(key).unwrap());
        }
        if !spec.keyless_first {
            b = b.keyless(keyless);
        }
        if !spec.signature_required {
            b = b.signature_not_required();
        }
        if spec.any_attestation {
            b = b.require_attestation(None);
        }
        b = b
            .require_attestation_checked(spec.predicate_type.clone(), spec.checks.clone())
            .annotations(spec.annotations.clone())
            .accept_without_transparency_log(spec.accept_without_transparency_log)
            .use_signed_timestamps_without_transparency_log(spec.use_signed_timestamps);
        if let Some(r) = spec.signature_repository {
            b = b.signature_repository(Reference::parse(r).unwrap());
        }
        b.build().unwrap()
    }

    fn hex(bytes: [u8; 32]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn equal_policies_built_apart_have_the_same_fingerprint() {
        let a = build(&spec());
        let b = build(&spec());
        assert_eq!(a.fingerprint(), b.fingerprint());
        // A key given as PEM text or parsed, an object written in another key order: the same policy.
        let mut reordered = spec();
        reordered.checks[1].condition = PredicateCondition::Equals(
            serde_json::from_str(r#"{"path": "release.yml", "ref": "refs/heads/main"}"#).unwrap(),
        );
        assert_eq!(build(&reordered).fingerprint(), a.fingerprint());
        let from_pem = ImagePolicy::builder()
            .key_pem(KEY.as_bytes())
            .unwrap()
            .build()
            .unwrap();
        let parsed = ImagePolicy::builder()
            .key(PublicKey::from_pem(KEY).unwrap())
            .build()
            .unwrap();
        assert_eq!(from_pem.fingerprint(), parsed.fingerprint());
        // A tag on the signature repository does not change where signatures are read.
        let mut tagged = spec();
        tagged.signature_repository = Some("registry.example/org/signatures:latest");
        assert_eq!(build(&tagged).fingerprint(), a.fingerprint());
    }

    #[test]
    fn the_encoding_is_pinned() {
        // Recorded from this encoding: the same value in every process and build (no hash-map order, no pointers,
        // no `Debug`). A change here changes every cache key, and must be a deliberate change of the encoding
        // (and of `DOMAIN`).
        assert_eq!(
            hex(build(&spec()).fingerprint()),
            "544eb716a2932b41b3e7d9c76daceb8e7f939ce836bade4565c4add9455ca3d0"
        );
    }

    #[test]
    fn each_deciding_field_changes_the_fingerprint() {
        let base = spec();
        let regex = |s: &str| Matcher::regex(s).unwrap();
        let mut variants: Vec<(&str, Spec)> = Vec::new();
        let mut vary = |name: &'static str, change: &dyn Fn(&mut Spec)| {
            let mut s = base.clone();
            change(&mut s);
            variants.push((name, s));
        };
        vary("another key", &|s| s.keys = vec![OTHER_KEY]);
        vary("a second key", &|s| s.keys = vec![KEY, OTHER_KEY]);
        vary("keys swapped", &|s| s.keys = vec![OTHER_KEY, KEY]);
        vary("no key", &|s| s.keys = vec![]);
        vary("authorities reordered", &|s| s.keyless_first = true);
        vary("SAN as a regex of the same text", &|s| {
            s.san = regex(
                "https://github.com/kibaship/app/.github/workflows/release.yml@refs/heads/main",
            )
        });
        vary("another SAN", &|s| {
            s.san = Matcher::Exact("someone@example.com".into())
        });
        vary("issuer as a regex", &|s| {
            s.issuer = regex("https://token.actions.githubusercontent.com")
        });
        vary("another issuer", &|s| {
            s.issuer = Matcher::Exact("https://accounts.google.com".into())
        });
        let claim = || Some(Matcher::Exact("x".into()));
        vary("source repository", &|s| {
            s.github.source_repository = claim()
        });
        vary("source ref", &|s| s.github.source_ref = claim());
        vary("workflow", &|s| s.github.workflow = claim());
        vary("trigger", &|s| s.github.trigger = claim());
        vary("workflow sha", &|s| s.github.workflow_sha = claim());
        vary("workflow name", &|s| s.github.workflow_name = claim());
        vary("workflow repository", &|s| {
            s.github.workflow_repository = claim()
        });
        vary("signature not required", &|s| s.signature_required = false);
        vary("no attestation of any type", &|s| s.any_attestation = false);
        vary("another predicate type", &|s| {
            s.predicate_type = "https://spdx.dev/Document".into()
        });
        vary("no checks", &|s| s.checks.clear());
        vary("a check fewer", &|s| {
            s.checks.pop();
        });
        vary("checks reordered", &|s| s.checks.swap(0, 1));
        vary("another path", &|s| {
            s.checks[0].path = "/buildDefinition/buildtype".into()
        });
        vary("equals a string", &|s| {
            s.checks[1].condition = PredicateCondition::Equals(json!("release.yml"))
        });
        vary("equals becomes one of", &|s| {
            s.checks[1].condition = PredicateCondition::OneOf(vec![
                json!({"ref": "refs/heads/main", "path": "release.yml"}),
            ])
        });
        vary("one of, a number as 1.0", &|s| {
            s.checks[2].condition = PredicateCondition::OneOf(vec![json!(1.0), json!("1")])
        });
        vary("one of, in another order", &|s| {
            s.checks[2].condition = PredicateCondition::OneOf(vec![json!("1"), json!(1)])
        });
        vary("present becomes a match", &|s| {
            s.checks[0].condition = PredicateCondition::Matches(GoRegex::new("").unwrap())
        });
        vary("another pattern", &|s| {
            s.checks[3].condition =
                PredicateCondition::Matches(GoRegex::new("^https://github.com/kibaship").unwrap())
        });
        vary("another annotation value", &|s| {
            s.annotations.insert("team".into(), "payments".into());
        });
        vary("one more annotation", &|s| {
            s.annotations.insert("tier".into(), "1".into());
        });
        vary("no annotations", &|s| s.annotations.clear());
        vary("accept without transparency log", &|s| {
            s.accept_without_transparency_log = true
        });
        vary("signed timestamps suffice", &|s| {
            s.use_signed_timestamps = true
        });
        vary("no signature repository", &|s| {
            s.signature_repository = None
        });
        vary("another signature repository", &|s| {
            s.signature_repository = Some("registry.example/org/other")
        });
        vary("signature repository in another registry", &|s| {
            s.signature_repository = Some("mirror.example/org/signatures")
        });

        let base_fingerprint = build(&base).fingerprint();
        let mut seen = BTreeMap::new();
        seen.insert(base_fingerprint, "base");
        for (name, variant) in &variants {
            if let Some(previous) = seen.insert(build(variant).fingerprint(), name) {
                panic!("{name:?} has the fingerprint of {previous:?}");
            }
        }
        assert_eq!(seen.len(), variants.len() + 1);
    }
}
