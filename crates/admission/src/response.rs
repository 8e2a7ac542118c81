//! AdmissionReview out: allowed with an optional JSONPatch, or denied with a reason code.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use kube_core::Status;
use kube_core::response::{StatusCause, StatusDetails, StatusSummary};
use serde::Serialize;

use crate::error::ReviewError;
use crate::review::{Operation, Review, ReviewVersion};
use crate::text::{escape_text, needs_escape, printable};

/// HTTP status a denial carries in `response.status.code` (the API server answers the client with it).
pub const DENIAL_STATUS_CODE: u16 = 403;
/// `response.status.reason` of a denial (a Kubernetes `StatusReason`; our own code goes into
/// `status.details.causes[0].reason`).
pub const DENIAL_STATUS_REASON: &str = "Forbidden";
/// Code of the denial [`respond`] sends instead of an allow whose patch does not fit the review.
pub const INVALID_PATCH_CODE: &str = "invalid-patch";
/// Longest denial message sent, in characters; longer ones end in `…`.
pub const MAX_MESSAGE_CHARS: usize = 2048;
/// Longest warning sent, in characters. Kubernetes asks for at most 120 where possible, and cuts each
/// warning to 256 once the warnings of a request add up to more than 4096 characters.
pub const MAX_WARNING_CHARS: usize = 256;
/// Most characters of all warnings together: below the API server's 4096, so it never starts cutting.
pub const MAX_WARNINGS_TOTAL_CHARS: usize = 4000;
/// Longest audit annotation value sent, in characters.
pub const MAX_AUDIT_VALUE_CHARS: usize = 2048;

/// What the webhook decided for a [`Review`]; [`respond`] turns it into the AdmissionReview answer.
///
/// `Default` is a denial without a reason: an answer built from nothing never allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// Our reason code (e.g. `wrong-key`). In a denial it is sent as `status.details.causes[0].reason`,
    /// and the message starts with `<code>: ` unless it already names the code that way (`<code>:` at its
    /// start or after a space). Not sent when allowed.
    pub code: Option<String>,
    /// The denial message kubectl shows (after `admission webhook "<name>" denied the request: `); it
    /// should name the image and the reason. Escaped and capped at [`MAX_MESSAGE_CHARS`]. Not sent when
    /// allowed (Kubernetes ignores `status` then).
    pub message: String,
    /// `response.warnings` (kubectl prints each as `Warning: ...`), sent with allows and denials alike:
    /// escaped, each capped at [`MAX_WARNING_CHARS`], empty ones and repeats dropped, the rest cut off at
    /// [`MAX_WARNINGS_TOTAL_CHARS`] in all with a last warning counting what was left out.
    pub warnings: Vec<String>,
    /// Images to replace (tag to digest) when allowed. Empty means no patch. Every entry must name one of
    /// the review's [`ImageSite`](crate::ImageSite)s by pointer, once, with an image without spaces or
    /// control characters; otherwise the answer is a denial with code [`INVALID_PATCH_CODE`]. Only a
    /// mutating webhook may send a patch: the API server rejects a validating webhook's answer that has one.
    pub patch: Vec<ImagePatch>,
    /// `response.auditAnnotations`. The API server stores each under `<webhook name>/<key>` and drops any
    /// whose key is then not a qualified name, so each key is sent as a valid name part: characters other
    /// than ASCII letters, digits, `-`, `_` and `.` (a `/` included) become `-`, at most 63 characters,
    /// starting and ending with a letter or digit. Values are escaped and capped at
    /// [`MAX_AUDIT_VALUE_CHARS`].
    pub audit_annotations: BTreeMap<String, String>,
}

impl Decision {
    /// Admit, with nothing else to say.
    pub fn allow() -> Self {
        Decision {
            allowed: true,
            ..Decision::default()
        }
    }

    /// Deny with a reason code and a message.
    pub fn deny(code: impl Into<String>, message: impl Into<String>) -> Self {
        Decision {
            allowed: false,
            code: Some(code.into()),
            message: message.into(),
            ..Decision::default()
        }
    }
}

/// Replace the image at `pointer` (an [`ImageSite::pointer`](crate::ImageSite::pointer)) with `image`,
/// typically the same reference pinned to its digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImagePatch {
    /// JSON pointer of the image inside `request.object`.
    pub pointer: String,
    /// The image to write there.
    pub image: String,
}

#[derive(Serialize)]
struct ReviewOut<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct PatchOp<'a> {
    op: &'static str,
    path: &'a str,
    value: &'a str,
}

/// The AdmissionReview JSON to send back for `review`, in the review's version and with its uid.
///
/// An allow carries an empty `status` (`{}`: Kubernetes ignores it, and kube-core's reader needs the
/// field), and `patch` (a base64 JSONPatch, `patchType: JSONPatch`) when the decision has image patches:
/// for each, a `test` that the pointer still holds the image that was reviewed, then a `replace`.
/// A denial carries `status` (`Failure`, code 403, reason `Forbidden`, the message, and the reason code as
/// `details.causes[0].reason`) and never a patch. An allow whose patch does not fit the review is sent as a
/// denial (`invalid-patch`); no input makes this function answer `allowed: true` for a decision that did
/// not allow. The exact shape is in `docs/webhook.md`.
pub fn respond(review: &Review, decision: &Decision) -> Vec<u8> {
    let warnings = clean_warnings(&decision.warnings);
    let audit_annotations = clean_audit_annotations(&decision.audit_annotations);
    let mut response = ResponseOut {
        uid: &review.uid,
        allowed: false,
        status: Status::default(),
        patch: None,
        patch_type: None,
        audit_annotations,
        warnings,
    };
    if decision.allowed {
        match json_patch(review, &decision.patch) {
            Ok(patch) => {
                response.allowed = true;
                if let Some(patch) = patch {
                    response.patch = Some(base64::engine::general_purpose::STANDARD.encode(patch));
                    response.patch_type = Some("JSONPatch");
                }
            }
            Err(problem) => {
                response.status = denial_status(Some(INVALID_PATCH_CODE), &problem);
            }
        }
    } else {
        response.status = denial_status(decision.code.as_deref(), &decision.message);
    }
    encode(review.api_version, response)
}

/// A denial for a request whose uid (and version) are known but whose content could not be read: code
/// [`ReviewError::code`], message its text.
pub fn respond_error(uid: &str, version: ReviewVersion, error: &ReviewError) -> Vec<u8> {
    let response = ResponseOut {
        uid,
        allowed: false,
        status: denial_status(Some(error.code()), &error.to_string()),
        patch: None,
        patch_type: None,
        audit_annotations: BTreeMap::new(),
        warnings: Vec::new(),
    };
    encode(version, response)
}

fn encode(version: ReviewVersion, response: ResponseOut<'_>) -> Vec<u8> {
    let uid = response.uid;
    let out = ReviewOut {
        api_version: version.api_version(),
        kind: "AdmissionReview",
        response,
    };
    // Serialising these structs (strings, booleans, string-keyed maps) cannot fail; should it ever, the
    // answer is still a denial for the same uid.
    serde_json::to_vec(&out).unwrap_or_else(|_| {
        let uid = serde_json::to_string(uid).unwrap_or_else(|_| "\"\"".to_string());
        format!(
            r#"{{"apiVersion":"{}","kind":"AdmissionReview","response":{{"uid":{uid},"allowed":false,"status":{{"status":"Failure","code":{DENIAL_STATUS_CODE},"reason":"{DENIAL_STATUS_REASON}","message":"the answer could not be written"}}}}}}"#,
            version.api_version()
        )
        .into_bytes()
    })
}

/// Whether `message` names `code` as a code: `<code>:` at its start or after a space.
fn names_code(message: &str, code: &str) -> bool {
    message.match_indices(code).any(|(at, _)| {
        let before = message.get(..at).unwrap_or_default();
        let after = message.get(at + code.len()..).unwrap_or_default();
        (before.is_empty() || before.ends_with(char::is_whitespace)) && after.starts_with(':')
    })
}

/// The message sent with a denial: `<code>: ` in front unless the message names the code, escaped, capped.
fn denial_message(code: Option<&str>, message: &str) -> String {
    let message = message.trim();
    let text = match code {
        Some(code) if message.is_empty() => format!("{code}: denied"),
        Some(code) if !names_code(message, code) => format!("{code}: {message}"),
        Some(_) => message.to_string(),
        None if message.is_empty() => "denied (no reason given)".to_string(),
        None => message.to_string(),
    };
    printable(&text, MAX_MESSAGE_CHARS)
}

fn denial_status(code: Option<&str>, message: &str) -> Status {
    let code = code
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| printable(c, 128));
    let message = denial_message(code.as_deref(), message);
    Status {
        status: Some(StatusSummary::Failure),
        code: DENIAL_STATUS_CODE,
        message,
        metadata: None,
        reason: DENIAL_STATUS_REASON.to_string(),
        details: code.map(|reason| StatusDetails {
            name: String::new(),
            group: String::new(),
            kind: String::new(),
            uid: String::new(),
            causes: vec![StatusCause {
                reason,
                message: String::new(),
                field: String::new(),
            }],
            retry_after_seconds: 0,
        }),
    }
}

/// The JSONPatch for `patches`, `None` when nothing changes, or why the patches do not fit `review`.
fn json_patch(review: &Review, patches: &[ImagePatch]) -> Result<Option<Vec<u8>>, String> {
    if patches.is_empty() {
        return Ok(None);
    }
    if !matches!(review.operation, Operation::Create | Operation::Update) {
        return Err(format!(
            "a patch was decided for a {} request",
            review.operation
        ));
    }
    let mut seen = BTreeSet::new();
    let mut ops = Vec::with_capacity(patches.len().saturating_mul(2));
    for patch in patches {
        let pointer = patch.pointer.as_str();
        let Some(site) = review.images.iter().find(|site| site.pointer == pointer) else {
            return Err(format!(
                "the patch targets {}, which is not an image of this request",
                escape_text(pointer)
            ));
        };
        if !seen.insert(pointer) {
            return Err(format!(
                "the patch replaces {} more than once",
                escape_text(pointer)
            ));
        }
        if patch.image.is_empty()
            || patch
                .image
                .chars()
                .any(|c| c.is_whitespace() || needs_escape(c))
        {
            return Err(format!(
                "the patch writes `{}` at {}: empty, or has spaces or control characters",
                printable(&patch.image, 128),
                pointer
            ));
        }
        if patch.image == site.image {
            continue;
        }
        ops.push(PatchOp {
            op: "test",
            path: pointer,
            value: &site.image,
        });
        ops.push(PatchOp {
            op: "replace",
            path: pointer,
            value: &patch.image,
        });
    }
    if ops.is_empty() {
        return Ok(None);
    }
    serde_json::to_vec(&ops)
        .map(Some)
        .map_err(|e| format!("the patch could not be written: {e}"))
}

fn clean_warnings(warnings: &[String]) -> Vec<String> {
    // Room kept for the last warning, which says how many were left out.
    const RESERVE: usize = 64;
    let mut out: Vec<String> = Vec::new();
    let mut total = 0usize;
    let mut left_out = 0usize;
    for warning in warnings {
        let text = printable(warning.trim(), MAX_WARNING_CHARS);
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        let len = text.chars().count();
        if left_out > 0 || total + len > MAX_WARNINGS_TOTAL_CHARS - RESERVE {
            left_out += 1;
            continue;
        }
        total += len;
        out.push(text);
    }
    if left_out > 0 {
        out.push(format!("{left_out} more warning(s) not shown"));
    }
    out
}

/// A key the API server accepts after `<webhook name>/`: a qualified-name part.
fn audit_key(key: &str) -> String {
    let mapped: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let capped: String = trimmed.chars().take(63).collect();
    let key = capped.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if key.is_empty() {
        "annotation".to_string()
    } else {
        key.to_string()
    }
}

fn clean_audit_annotations(annotations: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in annotations {
        let base = audit_key(key);
        let mut key = base.clone();
        let mut n = 2usize;
        while out.contains_key(&key) {
            let suffix = format!("-{n}");
            let room = 63usize.saturating_sub(suffix.len());
            let stem: String = base.chars().take(room).collect();
            key = format!(
                "{}{suffix}",
                stem.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
            );
            n += 1;
        }
        out.insert(key, printable(value, MAX_AUDIT_VALUE_CHARS));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_keys_become_qualified_name_parts() {
        assert_eq!(audit_key("kibaship.io/audit-0"), "kibaship.io-audit-0");
        assert_eq!(audit_key("verified"), "verified");
        assert_eq!(audit_key("-x-"), "x");
        assert_eq!(audit_key("/"), "annotation");
        assert_eq!(audit_key(&"a".repeat(80)).len(), 63);
        assert_eq!(audit_key(&format!("{}-b", "a".repeat(62))), "a".repeat(62));
        assert_eq!(audit_key("é\u{1b}x"), "x");
    }

    #[test]
    fn keys_that_clean_to_the_same_name_are_kept_apart() {
        let mut annotations = BTreeMap::new();
        annotations.insert("a/b".to_string(), "1".to_string());
        annotations.insert("a b".to_string(), "2".to_string());
        annotations.insert("a-b".to_string(), "3".to_string());
        let out = clean_audit_annotations(&annotations);
        assert_eq!(out.len(), 3);
        assert_eq!(out.get("a-b").map(String::as_str), Some("2"));
        assert_eq!(out.get("a-b-2").map(String::as_str), Some("3"));
        assert_eq!(out.get("a-b-3").map(String::as_str), Some("1"));
    }

    #[test]
    fn denial_messages_carry_the_code_once() {
        assert_eq!(
            denial_message(Some("wrong-key"), "image x is signed by another key"),
            "wrong-key: image x is signed by another key"
        );
        assert_eq!(
            denial_message(Some("wrong-key"), "kibaship: denied: wrong-key: x"),
            "kibaship: denied: wrong-key: x"
        );
        assert_eq!(denial_message(Some("wrong-key"), "  "), "wrong-key: denied");
        assert_eq!(
            denial_message(Some("unsigned"), "image x is unsigned"),
            "unsigned: image x is unsigned"
        );
        assert_eq!(
            denial_message(Some("unsigned"), "unsigned: image x"),
            "unsigned: image x"
        );
        assert_eq!(
            denial_message(Some("signed"), "unsigned: image x"),
            "signed: unsigned: image x"
        );
        assert_eq!(denial_message(None, ""), "denied (no reason given)");
        assert_eq!(denial_message(None, "a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
    }
}
