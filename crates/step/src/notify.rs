//! `kibaship-step notify`: the build's outcome, POSTed as JSON to the platform, signed with HMAC-SHA256.
//!
//! * [`NotifyInputs::notification`] checks the step's parameters and builds the [`Notification`] (pure);
//! * [`signature`] is the header value: `sha256=<hex of HMAC-SHA256(key, timestamp + "." + body)>` (pure);
//! * [`deliver`] POSTs it with [`SIGNATURE_HEADER`], [`TIMESTAMP_HEADER`] and [`IDEMPOTENCY_HEADER`] (the
//!   PipelineRun's UID), retrying connection failures, timeouts, 408/429/5xx with exponential backoff and full
//!   jitter, bounded in attempts and in total time.
//!
//! The HMAC key is read from a file (a Secret mount) and is only ever used to compute the signature: it is never
//! in the body, a header, a log line, an error or a result. URLs are printed without user info or query.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::hmac;
use kibaship_oci::RetryPolicy;
use kibaship_oci::retry::{is_retryable_status, parse_retry_after};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::failure::{Classify, FailureKind};
use crate::results::{ResultSet, ResultsError};

/// The signature header: `sha256=<lowercase hex>`.
pub const SIGNATURE_HEADER: &str = "X-Kibaship-Signature";
/// The signing time, Unix seconds (decimal), part of what is signed.
pub const TIMESTAMP_HEADER: &str = "X-Kibaship-Timestamp";
/// The PipelineRun's UID: identical on every attempt, so the receiver records the outcome once.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The payload's `event` value.
pub const EVENT: &str = "kibaship.build.finished";
/// Largest HMAC key file read.
pub const MAX_KEY_BYTES: u64 = 4096;
/// Shortest HMAC key accepted (bytes): HMAC-SHA256 keys shorter than the hash add no strength.
pub const MIN_KEY_BYTES: usize = 32;

/// Tekton's execution status of a pipeline task (`$(tasks.<name>.status)`) or of all tasks (`$(tasks.status)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TaskStatus {
    /// It ran and succeeded.
    Succeeded,
    /// It ran and failed.
    Failed,
    /// Aggregate only: no task failed, some were skipped.
    Completed,
    /// It did not run (skipped, or not reached).
    None,
}

impl TaskStatus {
    fn parse(text: &str) -> Option<TaskStatus> {
        match text {
            "Succeeded" => Some(TaskStatus::Succeeded),
            "Failed" => Some(TaskStatus::Failed),
            "Completed" => Some(TaskStatus::Completed),
            "None" => Some(TaskStatus::None),
            _ => None,
        }
    }
}

/// The pipeline's tasks in order, with the failure kind each one's failure means.
pub const FAILURE_KINDS: [(&str, &str); 7] = [
    ("clone", "clone"),
    ("prepare", "plan"),
    ("build", "build"),
    ("scan", "scan"),
    ("sign", "sign"),
    ("attest", "attest"),
    ("tag", "tag"),
];

/// Failure kinds a notification may carry (`failureKind`); `gate` is a scan that ran and failed the gate,
/// `unknown` a failed run with no failed task (a timeout or cancellation).
pub const KNOWN_FAILURE_KINDS: [&str; 9] = [
    "clone", "plan", "build", "scan", "gate", "sign", "attest", "tag", "unknown",
];

/// The step's parameters as Tekton passes them: an empty string means "not set".
#[derive(Debug, Clone, Default)]
pub struct NotifyInputs {
    pub pipeline_run_name: String,
    pub pipeline_run_namespace: String,
    pub pipeline_run_uid: String,
    /// `$(tasks.status)`.
    pub aggregate_status: String,
    /// `name=Status` pairs, `$(tasks.<name>.status)`, in pipeline order.
    pub task_statuses: Vec<String>,
    /// Overrides the kind derived from the task statuses.
    pub failure_kind: String,
    pub image: String,
    pub digest: String,
    /// The scan task's `verdict` result: `pass` or `fail`.
    pub scan_verdict: String,
    pub attestations: Vec<String>,
    pub signatures: Vec<String>,
}

/// The PipelineRun a notification is about.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRunRef {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

/// Verdicts of the post-build checks; `None` when the check did not report one.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Verdicts {
    pub scan: Option<String>,
}

/// The JSON body POSTed (docs/tekton.md, "kibaship-notify").
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub version: u32,
    pub event: &'static str,
    pub pipeline_run: PipelineRunRef,
    /// `succeeded` or `failed`.
    pub status: &'static str,
    pub failure_kind: Option<String>,
    pub failed_task: Option<String>,
    pub tasks: BTreeMap<String, TaskStatus>,
    pub image: Option<String>,
    pub digest: Option<String>,
    pub verdicts: Verdicts,
    pub attestations: Vec<String>,
    pub signatures: Vec<String>,
}

impl Notification {
    /// The body bytes (compact JSON).
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings, maps and vectors always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Why a notification was not delivered (or not even attempted).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A parameter is invalid.
    #[error("{0}")]
    Parameter(String),
    /// The HMAC key file is unusable (its content is never part of the message).
    #[error("HMAC key file {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    /// Every attempt failed with a retryable error, or the time budget ran out.
    #[error("not delivered to {url} after {attempts} attempt(s): {last}")]
    Undelivered {
        url: String,
        attempts: u32,
        last: String,
    },
    /// The receiver answered with a status that a retry will not change (4xx other than 408/429, 3xx).
    #[error(
        "{url} refused the notification: HTTP {status} (attempt {attempts}; check the HMAC key and the URL)"
    )]
    Refused {
        url: String,
        status: u16,
        attempts: u32,
    },
    /// The receiver's TLS certificate is not trusted (unknown issuer, expired, another name): a retry will not
    /// change it.
    #[error(
        "{url}: the receiver's certificate is not trusted: {reason} (attempt {attempts}; give its CA with --ca-file)"
    )]
    Untrusted {
        url: String,
        reason: String,
        attempts: u32,
    },
    /// The results could not be written.
    #[error(transparent)]
    Results(#[from] ResultsError),
}

impl NotifyError {
    /// The exit code: 64 bad parameters, 73 results, 75 undelivered after the bounded retries, 77 refused.
    pub fn exit_code(&self) -> u8 {
        self.kind().exit_code()
    }

    /// The word printed before the message on stderr.
    pub fn label(&self) -> &'static str {
        match self {
            NotifyError::Parameter(_) | NotifyError::Key { .. } => "bad parameters",
            NotifyError::Undelivered { .. } => "notification not delivered (retryable)",
            NotifyError::Refused { .. } | NotifyError::Untrusted { .. } => "notification refused",
            NotifyError::Results(_) => "results error",
        }
    }
}

impl Classify for NotifyError {
    fn kind(&self) -> FailureKind {
        match self {
            NotifyError::Parameter(_) | NotifyError::Key { .. } => FailureKind::BadParameters,
            NotifyError::Undelivered { .. } => FailureKind::Registry,
            NotifyError::Refused { .. } | NotifyError::Untrusted { .. } => FailureKind::Refused,
            NotifyError::Results(_) => FailureKind::Results,
        }
    }
}

fn bad(message: String) -> NotifyError {
    NotifyError::Parameter(message)
}

fn set(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// A value for a JSON field: printable, bounded (a notification is small).
fn check_text(flag: &str, value: &str, max: usize) -> Result<(), NotifyError> {
    if value.len() > max {
        return Err(bad(format!(
            "{flag}: {} bytes, more than the {max} accepted",
            value.len()
        )));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(bad(format!(
            "{flag} {value:?} contains the control character {c:?}"
        )));
    }
    Ok(())
}

impl NotifyInputs {
    /// Checks every parameter and builds the notification.
    pub fn notification(&self) -> Result<Notification, NotifyError> {
        let uid = self.pipeline_run_uid.trim();
        if uid.is_empty() {
            return Err(bad(
                "--pipeline-run-uid is empty: it is the idempotency key ($(context.pipelineRun.uid))".into(),
            ));
        }
        for (flag, value) in [
            ("--pipeline-run-uid", uid),
            ("--pipeline-run-name", self.pipeline_run_name.trim()),
            (
                "--pipeline-run-namespace",
                self.pipeline_run_namespace.trim(),
            ),
        ] {
            check_text(flag, value, 253)?;
        }
        let aggregate = TaskStatus::parse(self.aggregate_status.trim()).ok_or_else(|| {
            bad(format!(
                "--aggregate-status {:?} is not one of Succeeded, Failed, Completed, None ($(tasks.status))",
                self.aggregate_status
            ))
        })?;
        let mut tasks = BTreeMap::new();
        let mut order = Vec::new();
        for pair in self.task_statuses.iter().filter(|p| !p.trim().is_empty()) {
            let (name, status) = pair
                .trim()
                .split_once('=')
                .ok_or_else(|| bad(format!("--task-status {pair:?} is not name=Status")))?;
            let valid_name = !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid_name {
                return Err(bad(format!(
                    "--task-status {pair:?}: {name:?} is not a pipeline task name"
                )));
            }
            let status = TaskStatus::parse(status)
                .filter(|s| *s != TaskStatus::Completed)
                .ok_or_else(|| {
                    bad(format!(
                        "--task-status {pair:?}: {status:?} is not Succeeded, Failed or None"
                    ))
                })?;
            if tasks.insert(name.to_string(), status).is_some() {
                return Err(bad(format!("--task-status: task {name:?} is given twice")));
            }
            order.push(name.to_string());
        }
        let failed =
            aggregate == TaskStatus::Failed || tasks.values().any(|s| *s == TaskStatus::Failed);
        let scan_verdict = match self.scan_verdict.trim() {
            "" => None,
            v @ ("pass" | "fail") => Some(v.to_string()),
            other => {
                return Err(bad(format!("--scan-verdict {other:?} is not pass or fail")));
            }
        };
        // The first failed task in pipeline order (the order the statuses are given in).
        let failed_task = order
            .iter()
            .find(|n| tasks.get(*n) == Some(&TaskStatus::Failed))
            .cloned();
        let failure_kind = match set(&self.failure_kind) {
            Some(kind) if !KNOWN_FAILURE_KINDS.contains(&kind.as_str()) => {
                return Err(bad(format!(
                    "--failure-kind {kind:?} is not one of {}",
                    KNOWN_FAILURE_KINDS.join(", ")
                )));
            }
            Some(_) if !failed => {
                return Err(bad(
                    "--failure-kind is given but no task failed and the run did not fail".into(),
                ));
            }
            Some(kind) => Some(kind),
            None if !failed => None,
            None => Some(match failed_task.as_deref() {
                Some("scan") if scan_verdict.as_deref() == Some("fail") => "gate".to_string(),
                Some(task) => FAILURE_KINDS
                    .iter()
                    .find(|(t, _)| *t == task)
                    .map(|(_, k)| (*k).to_string())
                    .unwrap_or_else(|| task.to_string()),
                None => "unknown".to_string(),
            }),
        };
        let image = set(&self.image);
        if let Some(image) = &image {
            kibaship_oci::Reference::parse(image)
                .map_err(|e| bad(format!("--image {image:?}: {e}")))?;
        }
        let digest = set(&self.digest);
        if let Some(digest) = &digest {
            digest
                .parse::<kibaship_oci::Digest>()
                .map_err(|e| bad(format!("--digest {digest:?}: {e}")))?;
        }
        let refs = |flag: &str, list: &[String]| -> Result<Vec<String>, NotifyError> {
            let out: Vec<String> = list
                .iter()
                .flat_map(|v| v.lines())
                .filter_map(set)
                .collect();
            if out.len() > 64 {
                return Err(bad(format!("{flag}: {} given, at most 64", out.len())));
            }
            for r in &out {
                check_text(flag, r, 512)?;
            }
            Ok(out)
        };
        Ok(Notification {
            version: 1,
            event: EVENT,
            pipeline_run: PipelineRunRef {
                name: self.pipeline_run_name.trim().to_string(),
                namespace: self.pipeline_run_namespace.trim().to_string(),
                uid: uid.to_string(),
            },
            status: if failed { "failed" } else { "succeeded" },
            failure_kind,
            failed_task,
            tasks,
            image,
            digest,
            verdicts: Verdicts { scan: scan_verdict },
            attestations: refs("--attestation", &self.attestations)?,
            signatures: refs("--signature", &self.signatures)?,
        })
    }
}

/// The HMAC key: the file's bytes with one trailing newline (`\n` or `\r\n`) removed. Zeroed when dropped.
pub struct HmacKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(..)")
    }
}

impl HmacKey {
    /// Reads the key from `path` (a Secret mount).
    pub fn from_file(path: &Path) -> Result<HmacKey, NotifyError> {
        let key_error = |reason: String| NotifyError::Key {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = Zeroizing::new(
            kibaship_cli::input::read_bounded(path, "HMAC key file", MAX_KEY_BYTES).map_err(
                |e| match e {
                    kibaship_cli::input::InputError::Read { cause, .. } => {
                        key_error(cause.to_string())
                    }
                    kibaship_cli::input::InputError::TooLarge { limit, .. } => {
                        key_error(format!("larger than the {limit} bytes accepted"))
                    }
                    // Other variants describe the file, never its content.
                    other => key_error(other.to_string()),
                },
            )?,
        );
        let mut end = bytes.len();
        if bytes[..end].ends_with(b"\n") {
            end -= 1;
            if bytes[..end].ends_with(b"\r") {
                end -= 1;
            }
        }
        HmacKey::new(&bytes[..end]).map_err(key_error)
    }

    /// A key from its bytes; at least [`MIN_KEY_BYTES`].
    pub fn new(bytes: &[u8]) -> Result<HmacKey, String> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the key is {} bytes, shorter than the {MIN_KEY_BYTES} required (e.g. `openssl rand -hex 32`)",
                bytes.len()
            ));
        }
        Ok(HmacKey(Zeroizing::new(bytes.to_vec())))
    }
}

/// HMAC-SHA256(key, `timestamp` + "." + `body`): what [`signature`] sends and [`verify_signature`] checks.
fn mac(key: &HmacKey, timestamp: &str, body: &[u8]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key.0);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body);
    ctx.sign()
}

/// `sha256=<hex>` of HMAC-SHA256(key, `timestamp` + "." + `body`).
pub fn signature(key: &HmacKey, timestamp: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(key, timestamp, body).as_ref()))
}

/// The clock difference a receiver accepts between [`TIMESTAMP_HEADER`] and its own time (docs/tekton.md).
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a receiver refuses a notification's signature ([`verify_signature`]). The messages never quote the
/// signature, the key or the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A header the check needs is absent (or not visible ASCII).
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// The timestamp is not decimal Unix seconds.
    #[error("the {TIMESTAMP_HEADER} header is not decimal Unix seconds")]
    BadTimestamp,
    /// The timestamp is further from the receiver's clock than the tolerance (a replay, or a wrong clock).
    #[error(
        "the timestamp {timestamp} is {skew} s from the receiver's clock ({now}), more than the {tolerance} s accepted"
    )]
    Stale {
        timestamp: u64,
        now: u64,
        skew: u64,
        tolerance: u64,
    },
    /// The signature header is not `sha256=` and 64 lowercase hex digits.
    #[error("the {SIGNATURE_HEADER} header is not sha256=<64 lowercase hex digits>")]
    Malformed,
    /// The MAC does not match: another key, or a body or timestamp changed on the way.
    #[error(
        "the signature does not match the timestamp and body (another key, or altered on the way)"
    )]
    Mismatch,
}

/// The receiver's check (docs/tekton.md, "Checking it"): `timestamp` (the [`TIMESTAMP_HEADER`] value) is within
/// `tolerance` of `now`, and `signature_header` (the [`SIGNATURE_HEADER`] value) is [`signature`] of the
/// timestamp and the raw `body` under `key`, compared in constant time.
pub fn verify_signature(
    key: &HmacKey,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    if timestamp.is_empty()
        || timestamp.len() > 20
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(SignatureError::BadTimestamp);
    }
    let sent: u64 = timestamp
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let skew = now.abs_diff(sent);
    if skew > tolerance.as_secs() {
        return Err(SignatureError::Stale {
            timestamp: sent,
            now,
            skew,
            tolerance: tolerance.as_secs(),
        });
    }
    let given = signature_header
        .strip_prefix("sha256=")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::Malformed)?;
    aws_lc_rs::constant_time::verify_slices_are_equal(mac(key, timestamp, body).as_ref(), &given)
        .map_err(|_| SignatureError::Mismatch)
}

/// The URL for messages: scheme, host, port and path; no user info, query or fragment.
pub fn display_url(url: &reqwest::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

/// Checks the receiver URL: http or https, a host, no credentials in it (the HMAC key authenticates).
pub fn parse_url(text: &str) -> Result<reqwest::Url, NotifyError> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| {
        // The text may carry credentials: only its parse error is shown.
        bad(format!("--url is not a valid URL: {e}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "--url: scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("--url has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "--url carries user info (user:password@): credentials do not belong in the URL, the HMAC key \
             authenticates the notification"
                .into(),
        ));
    }
    Ok(url)
}

/// How a notification is sent.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Attempts, backoff and total time ([`RetryPolicy::backoff_full_jitter`] between attempts).
    pub retry: RetryPolicy,
    /// Upper bound of one attempt (connect + response headers).
    pub attempt_timeout: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            retry: RetryPolicy {
                max_attempts: 6,
                initial_backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(30),
                max_retry_after: Duration::from_secs(30),
                max_total: Duration::from_secs(120),
            },
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// A delivered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub attempts: u32,
    pub status: u16,
}

/// The `delivered`, `attempts` and `responseStatus` result files (any may be absent).
#[derive(Debug, Clone, Default)]
pub struct NotifyResultPaths {
    pub delivered: Option<PathBuf>,
    pub attempts: Option<PathBuf>,
    pub response_status: Option<PathBuf>,
}

/// Writes the results of a delivery (`Ok`) or of a failed one (`Err`; no status for a connection failure).
pub fn write_results(
    paths: &NotifyResultPaths,
    outcome: &Result<Delivery, NotifyError>,
) -> Result<(), ResultsError> {
    let (delivered, attempts, status) = match outcome {
        Ok(d) => ("true", d.attempts, d.status.to_string()),
        Err(NotifyError::Refused {
            status, attempts, ..
        }) => ("false", *attempts, status.to_string()),
        Err(NotifyError::Untrusted { attempts, .. }) => ("false", *attempts, String::new()),
        Err(NotifyError::Undelivered { attempts, last, .. }) => (
            "false",
            *attempts,
            last.strip_prefix("HTTP ")
                .and_then(|s| s.get(..3))
                .unwrap_or("")
                .to_string(),
        ),
        Err(_) => ("false", 0, String::new()),
    };
    let mut set = ResultSet::new();
    set.add("delivered", paths.delivered.as_deref(), delivered)
        .add("attempts", paths.attempts.as_deref(), attempts.to_string())
        .add("responseStatus", paths.response_status.as_deref(), status);
    set.write()
}

fn unix_seconds() -> String {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string()
}

/// POSTs `body` to `url`, signed with `key`, retrying as `options` says. Each attempt is signed with its own
/// timestamp; the body and the idempotency key stay the same. One line per attempt goes to `log`.
pub async fn deliver(
    http: &reqwest::Client,
    url: &reqwest::Url,
    key: &HmacKey,
    idempotency_key: &str,
    body: &[u8],
    options: &DeliveryOptions,
    log: &mut dyn std::io::Write,
) -> Result<Delivery, NotifyError> {
    let shown = display_url(url);
    let started = Instant::now();
    let max_attempts = options.retry.max_attempts.max(1);
    let body = bytes::Bytes::copy_from_slice(body);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let timestamp = unix_seconds();
        let sent = http
            .post(url.clone())
            .timeout(options.attempt_timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, signature(key, &timestamp, &body))
            .header(IDEMPOTENCY_HEADER, idempotency_key)
            .body(body.clone())
            .send()
            .await;
        let (last, retry_after) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                // The body is not read: the receiver's text is not ours to print.
                drop(response);
                let _ = writeln!(
                    log,
                    "kibaship-step: notify attempt {attempt}: HTTP {status}"
                );
                if (200..300).contains(&status) {
                    return Ok(Delivery {
                        attempts: attempt,
                        status,
                    });
                }
                if !is_retryable_status(status) {
                    return Err(NotifyError::Refused {
                        url: shown,
                        status,
                        attempts: attempt,
                    });
                }
                (format!("HTTP {status}"), retry_after)
            }
            Err(e) => {
                if let Some(reason) = kibaship_oci::tls::untrusted_certificate(&e) {
                    let _ = writeln!(
                        log,
                        "kibaship-step: notify attempt {attempt}: certificate not trusted"
                    );
                    return Err(NotifyError::Untrusted {
                        url: shown,
                        reason,
                        attempts: attempt,
                    });
                }
                let what = if e.is_timeout() {
                    format!("no answer within {:?}", options.attempt_timeout)
                } else if e.is_connect() {
                    format!("cannot connect: {}", root_cause(&e))
                } else {
                    format!("request failed: {}", root_cause(&e))
                };
                // reqwest's own text names the URL with its query: only our description and the innermost
                // cause (the socket's or TLS's own words, which hold no URL) are printed.
                let _ = writeln!(log, "kibaship-step: notify attempt {attempt}: {what}");
                (what, None)
            }
        };
        let wait = match retry_after {
            Some(d) => d.min(options.retry.max_retry_after),
            None => options.retry.backoff_full_jitter(attempt),
        };
        if attempt >= max_attempts || started.elapsed() + wait > options.retry.max_total {
            return Err(NotifyError::Undelivered {
                url: shown,
                attempts: attempt,
                last,
            });
        }
        tokio::time::sleep(wait).await;
    }
}

/// The innermost cause of `e` ("invalid peer certificate: UnknownIssuer", "Connection refused (os error 111)"),
/// escaped; reqwest's outer text, which names the URL, is left out.
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut innermost = None;
    while let Some(c) = cause {
        innermost = Some(c);
        cause = c.source();
    }
    innermost
        .map(|c| c.to_string().escape_debug().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "no cause given".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> NotifyInputs {
        NotifyInputs {
            pipeline_run_name: "web-x7k2".into(),
            pipeline_run_namespace: "builds".into(),
            pipeline_run_uid: "6b3c7a4e-1f0d-4c55-9b7e-2d8f0a1c9e11".into(),
            aggregate_status: "Succeeded".into(),
            task_statuses: vec![
                "clone=Succeeded".into(),
                "prepare=Succeeded".into(),
                "build=Succeeded".into(),
                "scan=Succeeded".into(),
            ],
            image: "registry.local:5000/kibaship/acme/web:960ef4fb".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            scan_verdict: "pass".into(),
            ..NotifyInputs::default()
        }
    }

    #[test]
    fn success_has_no_failure_kind() {
        let n = inputs().notification().expect("valid");
        assert_eq!(n.status, "succeeded");
        assert_eq!(n.failure_kind, None);
        let json: serde_json::Value = serde_json::from_slice(&n.to_json()).expect("json");
        assert_eq!(
            json["pipelineRun"]["uid"],
            "6b3c7a4e-1f0d-4c55-9b7e-2d8f0a1c9e11"
        );
        assert_eq!(json["verdicts"]["scan"], "pass");
        assert_eq!(json["tasks"]["build"], "Succeeded");
        assert_eq!(json["failureKind"], serde_json::Value::Null);
    }

    #[test]
    fn the_first_failed_task_names_the_kind() {
        let mut i = inputs();
        i.aggregate_status = "Failed".into();
        i.task_statuses = vec![
            "clone=Succeeded".into(),
            "prepare=Succeeded".into(),
            "build=Failed".into(),
            "scan=None".into(),
        ];
        i.digest.clear();
        i.scan_verdict.clear();
        let n = i.notification().expect("valid");
        assert_eq!(
            (
                n.status,
                n.failure_kind.as_deref(),
                n.failed_task.as_deref()
            ),
            ("failed", Some("build"), Some("build"))
        );
        i.task_statuses = vec!["build=Succeeded".into(), "scan=Failed".into()];
        i.scan_verdict = "fail".into();
        assert_eq!(
            i.notification().expect("valid").failure_kind.as_deref(),
            Some("gate")
        );
        i.task_statuses = vec!["prepare=Failed".into()];
        assert_eq!(
            i.notification().expect("valid").failure_kind.as_deref(),
            Some("plan")
        );
        i.task_statuses = vec!["attest=Succeeded".into(), "tag=Failed".into()];
        assert_eq!(
            i.notification().expect("valid").failure_kind.as_deref(),
            Some("tag")
        );
        i.task_statuses.clear();
        assert_eq!(
            i.notification().expect("valid").failure_kind.as_deref(),
            Some("unknown")
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        type Mutation = fn(&mut NotifyInputs);
        let cases: [(Mutation, &str); 8] = [
            (|i| i.pipeline_run_uid.clear(), "--pipeline-run-uid"),
            (
                |i| i.aggregate_status = "Running".into(),
                "--aggregate-status",
            ),
            (|i| i.task_statuses = vec!["build".into()], "--task-status"),
            (
                |i| i.task_statuses = vec!["build=Done".into()],
                "--task-status",
            ),
            (|i| i.digest = "sha256:xyz".into(), "--digest"),
            (|i| i.scan_verdict = "maybe".into(), "--scan-verdict"),
            (|i| i.failure_kind = "build".into(), "--failure-kind"),
            (|i| i.image = "Not An Image".into(), "--image"),
        ];
        for (mutate, flag) in cases {
            let mut i = inputs();
            mutate(&mut i);
            let e = i.notification().expect_err(flag);
            assert!(e.to_string().contains(flag), "{flag}: {e}");
            assert_eq!(e.exit_code(), 64);
        }
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed with `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef`.
        let key = HmacKey::new(b"0123456789abcdef0123456789abcdef").expect("key");
        assert_eq!(
            signature(&key, "1700000000", br#"{"a":1}"#),
            "sha256=f05f2539e3ae1c49aec5f8cfdad75ef6b06480b133973ffbb7ec9e18827af177"
        );
        assert!(HmacKey::new(b"short").is_err());
    }

    #[test]
    fn the_receiver_check_accepts_what_the_sender_signs_and_nothing_else() {
        let key = HmacKey::new(b"0123456789abcdef0123456789abcdef").expect("key");
        let other = HmacKey::new(b"fedcba9876543210fedcba9876543210").expect("key");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let body = br#"{"version":1,"status":"succeeded"}"#;
        let ts = "1700000000";
        let sig = signature(&key, ts, body);
        let check = |key: &HmacKey, ts: &str, sig: &str, body: &[u8]| {
            verify_signature(key, ts, sig, body, now, TIMESTAMP_TOLERANCE)
        };
        assert_eq!(check(&key, ts, &sig, body), Ok(()));
        // A tampered body, a wrong key, a timestamp changed after signing.
        assert_eq!(
            check(&key, ts, &sig, br#"{"version":1,"status":"failed"}"#),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(check(&other, ts, &sig, body), Err(SignatureError::Mismatch));
        assert_eq!(
            check(&key, "1700000001", &sig, body),
            Err(SignatureError::Mismatch)
        );
        // Stale (and from the future), even when correctly signed.
        for stale in ["1699999799", "1700000401"] {
            let e = check(&key, stale, &signature(&key, stale, body), body).expect_err(stale);
            assert!(
                matches!(
                    e,
                    SignatureError::Stale {
                        skew: 301,
                        tolerance: 300,
                        ..
                    }
                ),
                "{e}"
            );
        }
        let edge = "1699999800";
        assert_eq!(
            check(&key, edge, &signature(&key, edge, body), body),
            Ok(())
        );
        // Malformed headers.
        for bad_ts in ["", "-5", "17e8", " 1700000000", "99999999999999999999999"] {
            assert_eq!(
                check(&key, bad_ts, &sig, body),
                Err(SignatureError::BadTimestamp),
                "{bad_ts:?}"
            );
        }
        for bad_sig in [
            "",
            &sig[7..],
            "sha1=00",
            &format!("sha256={}", "z".repeat(64)),
            &sig[..70],
        ] {
            assert_eq!(
                check(&key, ts, bad_sig, body),
                Err(SignatureError::Malformed),
                "{bad_sig:?}"
            );
        }
        // The header is lowercase hex, as sent and documented.
        assert_eq!(
            check(
                &key,
                ts,
                &format!("sha256={}", sig[7..].to_uppercase()),
                body
            ),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn urls_with_credentials_are_refused_and_shown_without_query() {
        let e = parse_url("https://user:pl4nted@example.test/hook").expect_err("userinfo");
        assert!(!e.to_string().contains("pl4nted"), "{e}");
        assert!(parse_url("ftp://example.test/").is_err());
        let url = parse_url("https://example.test:8443/hook?token=pl4nted").expect("url");
        assert_eq!(display_url(&url), "https://example.test:8443/hook");
    }
}
