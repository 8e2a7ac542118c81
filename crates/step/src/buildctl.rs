//! The `buildctl build` command line for a Railpack build, and the metadata file it writes. Pure: no I/O.
//!
//! Flags follow moby/buildkit `cmd/buildctl/build.go`: `buildctl` has no `--provenance`/`--sbom` flags (those are
//! `docker buildx`), attestations are frontend options `attest:provenance=mode=max` and `attest:sbom=`. The
//! values of `--output`, `--secret`, `--import-cache` and `--export-cache` are CSV records, so fields holding a
//! comma or a quote are quoted. The Railpack frontend (`railpack: buildkit/frontend.go`) reads the plan from the
//! `dockerfile` local mount under the `filename` option, build args `cache-key` and `secrets-hash`, and exactly
//! one `platform`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::failure::{Classify, FailureKind};
use crate::image::ImageName;
use crate::secrets::SecretName;

/// The Railpack frontend image; the tag is the Railpack version.
pub const RAILPACK_FRONTEND_IMAGE: &str = "ghcr.io/railwayapp/railpack-frontend";

static PLATFORM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$").expect("static regex"));
static VERSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$").expect("static regex")
});
static BUILD_ARG_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_.-]*$").expect("static regex"));
static DIGEST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^sha256:[0-9a-f]{64}$").expect("static regex"));

/// Build args the driver sets itself; `additionalBuildArgs` may not override them.
pub const RESERVED_BUILD_ARGS: [&str; 4] = [
    "cache-key",
    "secrets-hash",
    "BUILDKIT_SYNTAX",
    "github-token",
];

/// A rejected build parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildParamError {
    #[error("platforms {0:?} is empty")]
    NoPlatform(String),
    #[error("platform {0:?} is not os/arch[/variant] (e.g. linux/amd64)")]
    Platform(String),
    #[error(
        "platforms {0:?} lists more than one platform: the Railpack frontend builds exactly one platform per build \
         (it rejects a list); run one build per platform"
    )]
    MultiPlatform(String),
    #[error("railpackVersion {0:?} is not a release version like v0.7.2")]
    RailpackVersion(String),
    #[error(
        "additionalBuildArgs entry {0:?} is not KEY=VALUE with KEY matching [A-Za-z_][A-Za-z0-9_.-]*"
    )]
    BuildArg(String),
    #[error("additionalBuildArgs entry sets {0:?}, which the build step sets itself")]
    ReservedBuildArg(String),
    #[error("cacheKey {0:?} contains a control character")]
    CacheKey(String),
}

impl Classify for BuildParamError {
    fn kind(&self) -> FailureKind {
        FailureKind::BadParameters
    }
}

/// Parses the `platforms` parameter (comma-separated) into exactly one platform.
pub fn parse_platforms(param: &str) -> Result<Vec<String>, BuildParamError> {
    let list: Vec<String> = param
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if list.is_empty() {
        return Err(BuildParamError::NoPlatform(param.to_string()));
    }
    for p in &list {
        if !PLATFORM.is_match(p) {
            return Err(BuildParamError::Platform(p.clone()));
        }
    }
    let mut unique = list.clone();
    unique.sort();
    unique.dedup();
    if unique.len() > 1 {
        return Err(BuildParamError::MultiPlatform(param.to_string()));
    }
    Ok(unique)
}

/// Checks `railpackVersion`.
pub fn validate_railpack_version(v: &str) -> Result<(), BuildParamError> {
    if VERSION.is_match(v) {
        Ok(())
    } else {
        Err(BuildParamError::RailpackVersion(v.to_string()))
    }
}

/// Checks one `additionalBuildArgs` entry; returns (key, value).
pub fn parse_build_arg(entry: &str) -> Result<(&str, &str), BuildParamError> {
    let (k, v) = entry
        .split_once('=')
        .ok_or_else(|| BuildParamError::BuildArg(entry.to_string()))?;
    if !BUILD_ARG_KEY.is_match(k) || v.contains(['\n', '\0']) {
        return Err(BuildParamError::BuildArg(entry.to_string()));
    }
    if RESERVED_BUILD_ARGS.contains(&k) {
        return Err(BuildParamError::ReservedBuildArg(k.to_string()));
    }
    Ok((k, v))
}

/// Where BuildKit's cache goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheTarget {
    /// No cache import/export.
    None,
    /// A directory on the `build-cache` workspace (import only when it already holds a cache).
    Local { dir: PathBuf, import: bool },
    /// A registry reference (e.g. `<repo>:buildcache`).
    Registry { reference: String },
}

/// Everything one `buildctl build` needs.
#[derive(Debug, Clone)]
pub struct BuildctlInvocation {
    /// `buildctl` program.
    pub program: PathBuf,
    /// BuildKit daemon address (`tcp://localhost:1234`).
    pub addr: String,
    /// The build context (the app directory).
    pub context_dir: PathBuf,
    /// The plan file; its directory is the `dockerfile` local mount, its name the `filename` option.
    pub plan_file: PathBuf,
    /// Railpack version: the frontend image tag.
    pub railpack_version: String,
    /// The one target platform.
    pub platform: String,
    /// `cache-key` build arg.
    pub cache_key: String,
    /// `secrets-hash` build arg (empty when no secrets).
    pub secrets_hash: String,
    /// Additional `KEY=VALUE` build args (validated).
    pub build_args: Vec<String>,
    /// Secret names, each mounted from `<secrets_dir>/<NAME>`.
    pub secrets: Vec<SecretName>,
    /// Where build secrets are mounted.
    pub secrets_dir: PathBuf,
    /// The image to push.
    pub image: ImageName,
    /// Annotations for the pushed manifest and index.
    pub annotations: BTreeMap<String, String>,
    /// Ask for an SBOM attestation too.
    pub sbom: bool,
    /// Push over plain HTTP / unverified TLS (local registries only).
    pub insecure_registry: bool,
    /// Cache import/export.
    pub cache: CacheTarget,
    /// Where buildctl writes its metadata JSON.
    pub metadata_file: PathBuf,
}

/// One CSV field as Go's `encoding/csv` reads it: quoted when it holds a comma, quote or newline.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_record(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

impl BuildctlInvocation {
    /// The full argv, program first.
    pub fn argv(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![self.program.clone().into_os_string()];
        let mut push = |x: &str| a.push(OsString::from(x));
        push("--addr");
        push(&self.addr);
        push("build");
        push("--progress");
        push("plain");
        push("--frontend");
        push("gateway.v0");
        push("--opt");
        push(&format!(
            "source={RAILPACK_FRONTEND_IMAGE}:{}",
            self.railpack_version
        ));
        push("--local");
        push(&format!("context={}", self.context_dir.display()));
        let plan_dir = self.plan_file.parent().unwrap_or(Path::new("."));
        let plan_name = self
            .plan_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        push("--local");
        push(&format!("dockerfile={}", plan_dir.display()));
        push("--opt");
        push(&format!("filename={plan_name}"));
        push("--opt");
        push(&format!("platform={}", self.platform));
        push("--opt");
        push(&format!("build-arg:cache-key={}", self.cache_key));
        push("--opt");
        push(&format!("build-arg:secrets-hash={}", self.secrets_hash));
        for arg in &self.build_args {
            push("--opt");
            push(&format!("build-arg:{arg}"));
        }
        for name in &self.secrets {
            let src = self.secrets_dir.join(name.as_str());
            push("--secret");
            push(&csv_record(&[
                format!("id={name}"),
                format!("src={}", src.display()),
            ]));
        }
        push("--opt");
        push("attest:provenance=mode=max");
        if self.sbom {
            push("--opt");
            push("attest:sbom=");
        }
        match &self.cache {
            CacheTarget::None => {}
            CacheTarget::Local { dir, import } => {
                if *import {
                    push("--import-cache");
                    push(&csv_record(&[
                        "type=local".into(),
                        format!("src={}", dir.display()),
                    ]));
                }
                push("--export-cache");
                push(&csv_record(&[
                    "type=local".into(),
                    format!("dest={}", dir.display()),
                    "mode=max".into(),
                ]));
            }
            CacheTarget::Registry { reference } => {
                let mut import = vec!["type=registry".to_string(), format!("ref={reference}")];
                let mut export = vec![
                    "type=registry".to_string(),
                    format!("ref={reference}"),
                    "mode=max".into(),
                    "oci-mediatypes=true".into(),
                    "image-manifest=true".into(),
                ];
                if self.insecure_registry {
                    import.push("registry.insecure=true".into());
                    export.push("registry.insecure=true".into());
                }
                push("--import-cache");
                push(&csv_record(&import));
                push("--export-cache");
                push(&csv_record(&export));
            }
        }
        let mut output = vec![
            "type=image".to_string(),
            format!("name={}", self.image),
            "push=true".into(),
            "oci-mediatypes=true".into(),
        ];
        if self.insecure_registry {
            output.push("registry.insecure=true".into());
        }
        for (k, v) in &self.annotations {
            output.push(format!("annotation-index.{k}={v}"));
            output.push(format!("annotation-manifest.{k}={v}"));
        }
        push("--output");
        push(&csv_record(&output));
        push("--metadata-file");
        push(&self.metadata_file.display().to_string());
        a
    }
}

/// A metadata file that does not say what was pushed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("buildctl metadata file is not JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("buildctl metadata file has no containerimage.digest (was the image exported?)")]
    NoDigest,
    #[error("buildctl metadata containerimage.digest {0:?} is not sha256:<64 hex>")]
    BadDigest(String),
    #[error("buildctl metadata image.name {got:?} does not name the requested image {want}")]
    WrongName { got: String, want: String },
}

impl Classify for MetadataError {
    fn kind(&self) -> FailureKind {
        FailureKind::Build
    }
}

/// What `--metadata-file` says about the pushed image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildMetadata {
    /// `containerimage.digest`: the digest of what was pushed (the index when attestations are on).
    pub digest: String,
    /// `image.name` (comma-separated names), if present.
    pub image_name: Option<String>,
    /// `containerimage.descriptor.mediaType`, if present.
    pub media_type: Option<String>,
}

impl BuildMetadata {
    /// Parses the metadata JSON and checks it names `image`.
    pub fn parse(bytes: &[u8], image: &ImageName) -> Result<BuildMetadata, MetadataError> {
        let v: Value = serde_json::from_slice(bytes).map_err(MetadataError::Json)?;
        let digest = v
            .get("containerimage.digest")
            .and_then(Value::as_str)
            .ok_or(MetadataError::NoDigest)?;
        if !DIGEST.is_match(digest) {
            return Err(MetadataError::BadDigest(digest.to_string()));
        }
        let image_name = v
            .get("image.name")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(names) = &image_name {
            let want = image.to_string();
            if !names.split(',').any(|n| n.trim() == want) {
                return Err(MetadataError::WrongName {
                    got: names.clone(),
                    want,
                });
            }
        }
        let media_type = v
            .get("containerimage.descriptor")
            .and_then(|d| d.get("mediaType"))
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(BuildMetadata {
            digest: digest.to_string(),
            image_name,
            media_type,
        })
    }
}

/// BuildKit's error line in what a failed `buildctl build` printed last (its stderr's tail): the last line that
/// starts with `error:` (buildctl's own report of why the solve failed, such as `error: failed to solve: process
/// "..." did not complete successfully: exit code: 3`), trimmed.
///
/// When that line ends in `errors:`, containerd listed the registry's errors on the lines after it, one `code:
/// message` each (`unknown: blob unknown to registry - sha256:...`): they are part of the error, and the text
/// returned runs to the end of the last of them.
pub fn error_line(stderr_tail: &str) -> Option<&str> {
    let line = stderr_tail
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with("error:") || l.starts_with("ERROR:"))?;
    if !line.ends_with("errors:") {
        return Some(line);
    }
    // Offsets in `stderr_tail`: `line` and the lines below are slices of it.
    let offset = |part: &str| part.as_ptr() as usize - stderr_tail.as_ptr() as usize;
    let start = offset(line);
    let mut end = start + line.len();
    for listed in stderr_tail[end..].lines().skip(1).map(str::trim) {
        let is_listed = listed.split_once(": ").is_some_and(|(code, _)| {
            !code.is_empty()
                && code
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == ' ' || c == '_')
        });
        if !is_listed {
            break;
        }
        end = offset(listed) + listed.len();
    }
    Some(&stderr_tail[start..end])
}

/// The registry failure in what a failed `buildctl build` printed last (its stderr's tail), if that is why it
/// failed: BuildKit's error line (`error: ...`) naming a registry request answered `408`, `429` or `5xx`
/// (containerd's `unexpected status from POST request to URL: 503 Service Unavailable`), or a registry it could
/// not reach during a push or a pull (`connection refused`, `connection reset by peer`, `i/o timeout`). Returns
/// that line, for the message. Anything else (a failing `RUN`, a frontend error, `401`/`403`/`404`) is a build
/// failure: retrying it unchanged will not help.
pub fn registry_failure(stderr_tail: &str) -> Option<&str> {
    static STATUS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"unexpected status(?: code)?(?: from [A-Z]+ request to \S+)?: (?:408|429|5[0-9][0-9])\b",
        )
        .expect("static regex")
    });
    const UNREACHABLE: [&str; 5] = [
        "connection refused",
        "connection reset by peer",
        "i/o timeout",
        "TLS handshake timeout",
        "server misbehaving",
    ];
    let line = error_line(stderr_tail)?;
    let registry_call = line.contains("failed to push")
        || line.contains("failed to resolve source metadata")
        || line.contains("failed to copy")
        || line.contains("failed to do request")
        || line.contains("request to http");
    // `failed to do request: Head "URL": EOF`: the registry closed the connection mid-request.
    let cut_off = line.contains("failed to do request") && line.ends_with(": EOF");
    // The registry's own error code, as containerd prints it from the body of a 429 or 503
    // (`toomanyrequests: ...`, `unavailable: ...`: TOOMANYREQUESTS, UNAVAILABLE in the distribution spec).
    let coded = line.contains(": toomanyrequests: ")
        || (line.contains("failed to push") && line.contains(": unavailable: "));
    // A registry restarted mid-push forgets the uploads it held: containerd then lists `blob unknown to
    // registry`, `blob upload unknown to registry` or `provided digest did not match uploaded content` (the
    // upload's first part lost). Pushing again succeeds.
    let lost_upload = line.contains("failed to push")
        && [
            "blob unknown to registry",
            "blob upload unknown to registry",
            "provided digest did not match uploaded content",
        ]
        .iter()
        .any(|m| line.contains(m));
    (STATUS.is_match(line)
        || cut_off
        || coded
        || lost_upload
        || (registry_call && UNREACHABLE.iter().any(|u| line.contains(u))))
    .then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    fn invocation() -> BuildctlInvocation {
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "dev.kibaship.railpack.providers".to_string(),
            "node,python".to_string(),
        );
        BuildctlInvocation {
            program: "buildctl".into(),
            addr: "tcp://localhost:1234".into(),
            context_dir: "/ws/repo/app".into(),
            plan_file: "/ws/railpack/plan.json".into(),
            railpack_version: "v0.7.2".into(),
            platform: "linux/amd64".into(),
            cache_key: "tenant-1".into(),
            secrets_hash: "ab".into(),
            build_args: vec!["NODE_ENV=production".into()],
            secrets: vec![SecretName::parse("NPM_TOKEN").expect("valid")],
            secrets_dir: "/secrets".into(),
            image: ImageName::new("ghcr.io", "kibaship/p/a", "t").expect("valid"),
            annotations,
            sbom: true,
            insecure_registry: false,
            cache: CacheTarget::Registry {
                reference: "ghcr.io/kibaship/p/a:buildcache".into(),
            },
            metadata_file: "/tmp/meta.json".into(),
        }
    }

    #[test]
    fn argv_has_the_railpack_frontend_and_attestation_opts() {
        let a = strings(&invocation().argv());
        let joined = a.join(" ");
        assert_eq!(
            &a[..4],
            ["buildctl", "--addr", "tcp://localhost:1234", "build"]
        );
        for want in [
            "--frontend gateway.v0",
            "--opt source=ghcr.io/railwayapp/railpack-frontend:v0.7.2",
            "--local context=/ws/repo/app",
            "--local dockerfile=/ws/railpack",
            "--opt filename=plan.json",
            "--opt platform=linux/amd64",
            "--opt build-arg:cache-key=tenant-1",
            "--opt build-arg:secrets-hash=ab",
            "--opt build-arg:NODE_ENV=production",
            "--secret id=NPM_TOKEN,src=/secrets/NPM_TOKEN",
            "--opt attest:provenance=mode=max",
            "--opt attest:sbom=",
            "--metadata-file /tmp/meta.json",
        ] {
            assert!(joined.contains(want), "missing {want:?} in {joined}");
        }
        assert!(
            !a.iter()
                .any(|x| x == "--provenance" || x.starts_with("--provenance="))
        );
        let out = &a[a.iter().position(|x| x == "--output").expect("output") + 1];
        assert!(
            out.starts_with(
                "type=image,name=ghcr.io/kibaship/p/a:t,push=true,oci-mediatypes=true,"
            ),
            "{out}"
        );
        assert!(
            out.contains(r#""annotation-index.dev.kibaship.railpack.providers=node,python""#),
            "{out}"
        );
    }

    #[test]
    fn local_cache_imports_only_an_existing_cache() {
        let mut inv = invocation();
        inv.cache = CacheTarget::Local {
            dir: "/cache/buildkit".into(),
            import: false,
        };
        let a = strings(&inv.argv()).join(" ");
        assert!(
            a.contains("--export-cache type=local,dest=/cache/buildkit,mode=max"),
            "{a}"
        );
        assert!(!a.contains("--import-cache"), "{a}");
        inv.cache = CacheTarget::Local {
            dir: "/cache/buildkit".into(),
            import: true,
        };
        let a = strings(&inv.argv()).join(" ");
        assert!(
            a.contains("--import-cache type=local,src=/cache/buildkit"),
            "{a}"
        );
        inv.cache = CacheTarget::None;
        assert!(!strings(&inv.argv()).iter().any(|x| x.ends_with("-cache")));
    }

    #[test]
    fn params_are_checked() {
        assert_eq!(
            parse_platforms(" linux/amd64 ").expect("one"),
            vec!["linux/amd64"]
        );
        assert_eq!(
            parse_platforms("linux/arm64/v8").expect("variant"),
            vec!["linux/arm64/v8"]
        );
        assert!(matches!(
            parse_platforms("linux/amd64,linux/arm64"),
            Err(BuildParamError::MultiPlatform(_))
        ));
        assert!(matches!(
            parse_platforms(","),
            Err(BuildParamError::NoPlatform(_))
        ));
        assert!(matches!(
            parse_platforms("amd64"),
            Err(BuildParamError::Platform(_))
        ));
        assert!(validate_railpack_version("v0.7.2").is_ok());
        assert!(validate_railpack_version("0.1.2").is_ok());
        assert!(validate_railpack_version("latest").is_err());
        assert!(validate_railpack_version("v1.0.0 --x").is_err());
        assert_eq!(parse_build_arg("A=b=c").expect("ok"), ("A", "b=c"));
        assert!(parse_build_arg("A").is_err());
        assert!(matches!(
            parse_build_arg("secrets-hash=0"),
            Err(BuildParamError::ReservedBuildArg(_))
        ));
    }

    #[test]
    fn metadata_digest_comes_from_the_file() {
        let image = ImageName::new("ghcr.io", "kibaship/p/a", "t").expect("valid");
        let d = format!("sha256:{}", "a".repeat(64));
        let doc = format!(
            r#"{{"containerimage.digest":"{d}","image.name":"ghcr.io/kibaship/p/a:t",
                "containerimage.descriptor":{{"mediaType":"application/vnd.oci.image.index.v1+json"}}}}"#
        );
        let m = BuildMetadata::parse(doc.as_bytes(), &image).expect("parses");
        assert_eq!(m.digest, d);
        assert_eq!(
            m.media_type.as_deref(),
            Some("application/vnd.oci.image.index.v1+json")
        );
        assert!(matches!(
            BuildMetadata::parse(b"{}", &image),
            Err(MetadataError::NoDigest)
        ));
        assert!(matches!(
            BuildMetadata::parse(br#"{"containerimage.digest":"sha256:abc"}"#, &image),
            Err(MetadataError::BadDigest(_))
        ));
        let other = format!(r#"{{"containerimage.digest":"{d}","image.name":"evil.io/x:t"}}"#);
        assert!(matches!(
            BuildMetadata::parse(other.as_bytes(), &image),
            Err(MetadataError::WrongName { .. })
        ));
    }

    #[test]
    fn registry_failures_of_buildctl_are_told_from_build_failures() {
        let push_503 = "#12 exporting to image\n#12 ERROR: failed to push 10.201.0.1:40123/kibaship/chaos/throttled:abc: unexpected status from POST request to http://10.201.0.1:40123/v2/kibaship/chaos/throttled/blobs/uploads/: 503 Service Unavailable\n------\nerror: failed to solve: failed to push 10.201.0.1:40123/kibaship/chaos/throttled:abc: unexpected status from POST request to http://10.201.0.1:40123/v2/kibaship/chaos/throttled/blobs/uploads/: 503 Service Unavailable\n";
        assert!(
            registry_failure(push_503).is_some_and(|l| l.starts_with("error: failed to solve")),
            "{:?}",
            registry_failure(push_503)
        );
        let too_many = "error: failed to solve: failed to push r/x:t: unexpected status from PUT request to http://r/v2/x/manifests/t: 429 Too Many Requests";
        assert!(registry_failure(too_many).is_some());
        let refused = "error: failed to solve: failed to push 127.0.0.1:1/x:t: failed to do request: Head \"http://127.0.0.1:1/v2/x/blobs/sha256:ab\": dial tcp 127.0.0.1:1: connect: connection refused";
        assert!(registry_failure(refused).is_some());
        // Seen here: a 503 with a registry error body, as containerd prints it; and Docker Hub's rate limit.
        let coded = "error: failed to solve: failed to push 127.0.0.1:44709/kibaship/acme/shell:4b825dc: unavailable: injected by the kibaship fault proxy";
        assert!(registry_failure(coded).is_some());
        let limited = "error: failed to solve: docker.io/library/alpine:latest: failed to resolve source metadata for docker.io/library/alpine:latest: failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/alpine/manifests/sha256:ab: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit.";
        assert!(registry_failure(limited).is_some());
        // Seen here: BuildKit's push to a registry that closed the connection.
        let eof = "error: failed to solve: failed to push 127.0.0.1:33535/kibaship/acme/shell:4b825dc: failed to do request: Head \"https://127.0.0.1:33535/v2/kibaship/acme/shell/blobs/sha256:1462f2\": EOF";
        assert!(registry_failure(eof).is_some());
        // Seen here (real_build_faults.rs, the registry restarted mid-push): containerd lists the registry's errors
        // below the error line.
        let lost = "#14 1.866 retrying in 2s\n------\nerror: failed to solve: failed to push 127.0.0.1:37035/kibaship/acme/shell:4b825dc: errors:\nunknown: provided digest did not match uploaded content\nunknown: blob unknown to registry - sha256:7401857a\n\nkibaship-step: build error\n";
        assert_eq!(
            error_line(lost),
            Some(
                "error: failed to solve: failed to push 127.0.0.1:37035/kibaship/acme/shell:4b825dc: errors:\nunknown: provided digest did not match uploaded content\nunknown: blob unknown to registry - sha256:7401857a"
            )
        );
        assert!(registry_failure(lost).is_some());
        // The same listing naming an authorisation error is a build failure.
        let denied = "error: failed to solve: failed to push r/x:t: errors:\ndenied: requested access to the resource is denied\nunauthorized: authentication required\n";
        assert_eq!(registry_failure(denied), None);
        assert_eq!(error_line(denied).map(|l| l.lines().count()), Some(3));
        let pull_502 = "error: failed to solve: ghcr.io/railwayapp/railpack-runtime:latest: failed to resolve source metadata for ghcr.io/railwayapp/railpack-runtime:latest: unexpected status from HEAD request to http://m/v2/railwayapp/railpack-runtime/manifests/latest?ns=ghcr.io: 502 Bad Gateway";
        assert!(registry_failure(pull_502).is_some());
        assert_eq!(
            error_line(
                "#7 0.169 out\n------\nerror: failed to solve: process \"sh -c x\" did not complete successfully: exit code: 3\n"
            ),
            Some(
                "error: failed to solve: process \"sh -c x\" did not complete successfully: exit code: 3"
            )
        );
        assert_eq!(error_line("#7 DONE\n"), None);
        // Not the registry's fault, or not one a retry fixes.
        for build in [
            "error: failed to solve: process \"/bin/bash -c npm ci\" did not complete successfully: exit code: 1",
            "error: failed to solve: failed to push r/x:t: unexpected status from POST request to http://r/v2/x/blobs/uploads/: 401 Unauthorized",
            "error: failed to solve: failed to push r/x:t: unexpected status from PUT request to http://r/v2/x/manifests/t: 403 Forbidden",
            "error: failed to solve: rpc error: code = Unknown desc = the plan names no start command",
            "#3 ERROR: 503 appears in a RUN step's own output\nerror: failed to solve: process did not complete successfully: exit code: 2",
            "",
            "unexpected status from POST request to http://r/v2/x/blobs/uploads/: 503 Service Unavailable (no error line)",
        ] {
            assert_eq!(registry_failure(build), None, "{build}");
        }
    }
}
