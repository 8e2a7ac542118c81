//! The validated policy set: policies (what selected images must carry) and exceptions (who may skip them, until
//! when).
use std::collections::BTreeMap;
use std::fmt;

use kibaship_cosign::ImagePolicy;

use crate::error::PolicyErrors;
use crate::glob::{ImageForms, ImageGlob, NameGlob};

/// What the webhook does with an image a policy selects and that does not verify.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub enum Mode {
    /// Deny the Pod (the default).
    #[default]
    Enforce,
    /// Admit the Pod with a warning to the client (`kubectl` prints it).
    Warn,
    /// Admit the Pod silently; the outcome is only logged and counted.
    Audit,
}

impl Mode {
    /// The spelling in policy files: `enforce`, `warn` or `audit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::Audit => "audit",
        }
    }

    /// The mode spelled `s`.
    pub fn from_name(s: &str) -> Option<Mode> {
        [Mode::Enforce, Mode::Warn, Mode::Audit]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The namespace a Pod is created in, as the webhook knows it.
#[derive(Clone, Copy, Debug)]
pub struct NamespaceInfo<'a> {
    /// The namespace's name.
    pub name: &'a str,
    /// Its labels; `None` when they are not known (not looked up, or the lookup failed). A policy that selects
    /// namespaces by label then counts as selecting this one: unknown labels never let an image skip a policy.
    pub labels: Option<&'a BTreeMap<String, String>>,
}

impl<'a> NamespaceInfo<'a> {
    /// A namespace with known labels.
    pub fn new(name: &'a str, labels: &'a BTreeMap<String, String>) -> Self {
        NamespaceInfo {
            name,
            labels: Some(labels),
        }
    }

    /// A namespace whose labels are not known.
    pub fn without_labels(name: &'a str) -> Self {
        NamespaceInfo { name, labels: None }
    }
}

/// Which namespaces a policy applies to: names (globs) and labels, both when both are given.
#[derive(Debug, Clone)]
pub(crate) struct NamespaceSelector {
    pub(crate) names: Vec<NameGlob>,
    pub(crate) match_labels: BTreeMap<String, String>,
}

impl NamespaceSelector {
    fn selects(&self, namespace: &NamespaceInfo<'_>) -> bool {
        let name_ok = self.names.is_empty() || self.names.iter().any(|g| g.matches(namespace.name));
        let labels_ok = match namespace.labels {
            // Unknown labels: fail closed, the policy applies.
            None => true,
            Some(labels) => self
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v)),
        };
        name_ok && labels_ok
    }
}

/// Where something was written: origin, line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) origin: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Place {
    fn location(&self) -> String {
        format!("{}:{}", self.origin, self.line)
    }
}

/// One policy: which images in which namespaces it selects, and what they must carry ([`ImagePolicy`], built once
/// when the file is parsed).
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) name: String,
    pub(crate) mode: Mode,
    pub(crate) namespaces: Option<NamespaceSelector>,
    pub(crate) images: Vec<ImageGlob>,
    pub(crate) image_policy: std::sync::Arc<ImagePolicy>,
    pub(crate) fingerprint: [u8; 32],
    pub(crate) attestation_types: Vec<String>,
    pub(crate) transparency_log_required: bool,
    pub(crate) accept_signed_timestamps: bool,
    pub(crate) place: Place,
}

impl Policy {
    /// The policy's name (unique in its file).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What to do when a selected image does not verify.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// What a selected image must carry: pass it to `kibaship_cosign::ImageVerifier::verify`.
    pub fn image_policy(&self) -> &ImagePolicy {
        &self.image_policy
    }

    /// The same, shared: what a verification running as its own task holds (no copy of keys and checks).
    pub fn shared_image_policy(&self) -> &std::sync::Arc<ImagePolicy> {
        &self.image_policy
    }

    /// [`ImagePolicy::fingerprint`] of [`Policy::image_policy`], computed once when the file was parsed.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// `origin:line` of the policy in its file (for messages: "denied by policy prod-signed (policy.yaml:12)").
    pub fn location(&self) -> String {
        self.place.location()
    }

    /// 1-based line of the policy in its file.
    pub fn line(&self) -> usize {
        self.place.line
    }

    /// 1-based column of the policy in its file.
    pub fn column(&self) -> usize {
        self.place.column
    }

    /// The image globs, as written.
    pub fn images(&self) -> impl Iterator<Item = &str> {
        self.images.iter().map(ImageGlob::as_str)
    }

    /// The namespace-name globs, as written (empty: any name).
    pub fn namespace_names(&self) -> impl Iterator<Item = &str> {
        self.namespaces
            .iter()
            .flat_map(|s| s.names.iter().map(NameGlob::as_str))
    }

    /// The labels a namespace must carry (empty: none).
    pub fn match_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.namespaces
            .as_ref()
            .map(|s| &s.match_labels)
            .filter(|l| !l.is_empty())
    }

    /// The predicate types of the attestations required besides the signature, in file order.
    pub fn attestation_types(&self) -> impl Iterator<Item = &str> {
        self.attestation_types.iter().map(String::as_str)
    }

    /// Whether signatures must come with transparency-log proof (`transparencyLog: required`, the default).
    pub fn transparency_log_required(&self) -> bool {
        self.transparency_log_required
    }

    /// Whether its keyless authorities accept a timestamp-only bundle (an RFC 3161 timestamp, no transparency-log
    /// entry) on its timestamp (`signedTimestamps: accept`; the default `refuse` denies it as `timestamp-only`).
    pub fn accepts_signed_timestamps(&self) -> bool {
        self.accept_signed_timestamps
    }

    /// Whether the policy applies in `namespace` (absent `namespaces`: everywhere).
    pub fn selects_namespace(&self, namespace: &NamespaceInfo<'_>) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|selector| selector.selects(namespace))
    }

    /// Whether the policy applies to `image` (the reference as written in the Pod).
    pub fn selects_image(&self, image: &str) -> bool {
        self.selects_forms(&ImageForms::new(image))
    }

    fn selects_forms(&self, image: &ImageForms) -> bool {
        self.images.iter().any(|g| g.matches(image))
    }

    /// Whether the policy needs the namespace's labels to decide.
    pub fn needs_namespace_labels(&self) -> bool {
        self.match_labels().is_some()
    }
}

/// A time-limited exemption: the images it names, in the namespaces it names, skip every policy until it expires.
#[derive(Debug, Clone)]
pub struct Exception {
    pub(crate) images: Vec<ImageGlob>,
    pub(crate) namespaces: Vec<NameGlob>,
    pub(crate) owner: String,
    pub(crate) expires: i64,
    pub(crate) expires_rfc3339: String,
    pub(crate) reason: String,
    pub(crate) place: Place,
}

impl Exception {
    /// Who answers for the exception (a team or a person).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// When it stops applying, in unix seconds: it applies while `now < expires()`.
    pub fn expires(&self) -> i64 {
        self.expires
    }

    /// [`Exception::expires`] as RFC 3339 in UTC (`2027-01-31T00:00:00Z`).
    pub fn expires_rfc3339(&self) -> &str {
        &self.expires_rfc3339
    }

    /// Why it exists (a ticket, a migration).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// `origin:line` of the exception in its file.
    pub fn location(&self) -> String {
        self.place.location()
    }

    /// 1-based line of the exception in its file.
    pub fn line(&self) -> usize {
        self.place.line
    }

    /// 1-based column of the exception in its file.
    pub fn column(&self) -> usize {
        self.place.column
    }

    /// The image globs, as written.
    pub fn images(&self) -> impl Iterator<Item = &str> {
        self.images.iter().map(ImageGlob::as_str)
    }

    /// The namespace globs, as written.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces.iter().map(NameGlob::as_str)
    }

    /// Whether it has expired at `now` (unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires
    }

    /// Whether it names this image in this namespace (whatever the time).
    pub fn covers(&self, namespace: &str, image: &str) -> bool {
        self.covers_forms(namespace, &ImageForms::new(image))
    }

    fn covers_forms(&self, namespace: &str, image: &ImageForms) -> bool {
        self.namespaces.iter().any(|g| g.matches(namespace))
            && self.images.iter().any(|g| g.matches(image))
    }
}

/// Whether an exception covers an image.
#[derive(Debug, Clone, Copy)]
pub enum ExceptionMatch<'a> {
    /// No exception names the image in that namespace.
    None,
    /// This exception names it and has not expired: the image skips the policies.
    Active(&'a Exception),
    /// Only expired exceptions name it (this is the first): it does not skip anything, but the denial can say
    /// that the exception ran out.
    Expired(&'a Exception),
}

impl ExceptionMatch<'_> {
    /// Whether an unexpired exception applies.
    pub fn is_active(&self) -> bool {
        matches!(self, ExceptionMatch::Active(_))
    }
}

/// A parsed, validated admission policy file: the policies (each with its [`ImagePolicy`] built) and the
/// exceptions. Immutable, `Send + Sync`: share it behind an `Arc`.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub(crate) origin: String,
    pub(crate) policies: Vec<Policy>,
    pub(crate) exceptions: Vec<Exception>,
}

impl PolicySet {
    /// Parses and validates a policy file. `origin` names the text in errors and locations (a path, or
    /// `configmap/<namespace>/<name>:<key>`). Every error found is returned, each with its line and column; the
    /// text is refused above [`crate::MAX_POLICY_BYTES`] before parsing.
    pub fn parse(origin: &str, text: &str) -> Result<PolicySet, PolicyErrors> {
        let (policies, exceptions) = crate::parse::parse(origin, text)?;
        Ok(PolicySet {
            origin: origin.to_owned(),
            policies,
            exceptions,
        })
    }

    /// The policies that apply to `image` (the reference as written in the Pod) in that namespace, in file order.
    pub fn select<'a>(&'a self, namespace: &NamespaceInfo<'_>, image: &str) -> Vec<&'a Policy> {
        let forms = ImageForms::new(image);
        self.policies
            .iter()
            .filter(|p| p.selects_namespace(namespace) && p.selects_forms(&forms))
            .collect()
    }

    /// Whether an exception covers this image in this namespace at `now` (unix seconds). An unexpired one wins
    /// over expired ones; of several, the first in the file is returned.
    pub fn exception_for(&self, namespace: &str, image: &str, now: i64) -> ExceptionMatch<'_> {
        if self.exceptions.is_empty() {
            return ExceptionMatch::None;
        }
        let forms = ImageForms::new(image);
        let mut expired = None;
        for exception in &self.exceptions {
            if !exception.covers_forms(namespace, &forms) {
                continue;
            }
            if !exception.is_expired(now) {
                return ExceptionMatch::Active(exception);
            }
            expired.get_or_insert(exception);
        }
        expired.map_or(ExceptionMatch::None, ExceptionMatch::Expired)
    }

    /// The policies, in file order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The exceptions, in file order.
    pub fn exceptions(&self) -> &[Exception] {
        &self.exceptions
    }

    /// The origin the set was parsed from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The policy named `name`.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// Whether any policy needs the namespace's labels (so the webhook knows whether to look them up).
    pub fn needs_namespace_labels(&self) -> bool {
        self.policies.iter().any(Policy::needs_namespace_labels)
    }
}
