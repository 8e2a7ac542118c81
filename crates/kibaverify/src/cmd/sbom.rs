//! `kibaverify sbom attach|list|get`: SBOMs (CycloneDX 1.4–1.7, SPDX 2.2/2.3 JSON) as OCI 1.1 referrers of an
//! image, and as in-toto attestations of it.
//!
//! - `attach REF --file F [--sign --key K | --sign --keyless ...]`: validates F against its official JSON schema
//!   (`kibaship_sbom`), pushes it as a referrer with the format's media type as `artifactType` (referrers API or
//!   tag fallback, `kibaship_oci`), and with `--sign` also attests it through `kibaship_cosign::attest` (the one
//!   signing path of `kibaverify attest`). Nothing is pushed when the file, the key or the token is refused: a
//!   large file is sent into an upload session while it is validated, and that session becomes a blob only once
//!   the file is valid and the signer loaded (it is cancelled otherwise).
//! - `list REF`: the attached SBOM referrers and the SBOM attestations (bundle referrers and the legacy `.att`
//!   tag), unverified.
//! - `get REF [--format F] [--verify --key K | --verify --certificate-identity ...] [--output-file F]`: writes
//!   an attached SBOM (the newest of the format), or with `--verify` the predicate of an SBOM attestation that
//!   `ImageVerifier` (the one verification API) accepted for the given key or identity.
//!
//! Exit codes: 0 done; 1 (`get`) no SBOM found, or none verified; 2 bad input or an unreachable registry.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kibaship_cosign::attest::{self, Attestation};
use kibaship_cosign::legacy::{self, ATTESTATION_TAG_SUFFIX};
use kibaship_cosign::{ImageVerifier, LayerKind, Outcome};
use kibaship_oci::manifest::{Descriptor, ImageManifest};
use kibaship_oci::{Artifact, BlobUpload, Digest, Reference, RegistryClient};
use kibaship_sbom::{Format, MAX_SBOM_BYTES};

use super::digest::{OutputFormat, RegistryFlags, current_thread_runtime};
use super::signer_flags::{SignatureLayout, SignerFlags};
use super::verify::{VerifyFlags, signature_repository_from_env};
use kibaship_cli::input::read_bounded_or_stdin;
use kibaship_cli::terminal::{Escaped, Stdout, print_line};

/// `org.opencontainers.image.created`: when an SBOM was attached (the newest is the one `get` reads).
const CREATED: &str = "org.opencontainers.image.created";

/// Arguments of `kibaverify sbom`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: SbomCommand,
}

/// The `sbom` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum SbomCommand {
    /// Validate an SBOM (CycloneDX 1.4–1.7 or SPDX 2.2/2.3 JSON) against its official JSON schema and attach it
    /// to the image as an OCI 1.1 referrer (artifactType application/vnd.cyclonedx+json or
    /// application/spdx+json); with --sign also attest it (predicate type https://cyclonedx.org/bom or
    /// https://spdx.dev/Document).
    Attach(AttachArgs),
    /// List the image's SBOMs: attached referrers and SBOM attestations (not verified).
    List(ListArgs),
    /// Write an SBOM of the image to --output-file or stdout: an attached one, or with --verify the predicate of
    /// an SBOM attestation verified with the given key or identity.
    Get(GetArgs),
}

/// Arguments of `kibaverify sbom attach`. The signer flags are `attest`'s, needed only with `--sign`.
#[derive(clap::Args, Debug)]
#[command(mut_arg("key", |a| a.required_unless_present(clap::builder::Resettable::<clap::Id>::Reset)))]
pub struct AttachArgs {
    /// The image the SBOM describes (a tag is resolved to its digest first).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The SBOM file (`-` for stdin), at most 128 MiB.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Also attest the SBOM (in-toto statement signed with --key or --keyless), as `kibaverify attest` does.
    #[arg(long)]
    pub sign: bool,
    #[command(flatten)]
    pub signer: SignerFlags,
    /// Attestation layout with --sign (default: `legacy` with --key, `bundle` keyless).
    #[arg(long, value_enum, requires = "sign")]
    pub layout: Option<SignatureLayout>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Arguments of `kibaverify sbom list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// The image (tag or digest).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Only SBOMs of this format.
    #[arg(long, value_name = "cyclonedx|spdx")]
    pub format: Option<Format>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Arguments of `kibaverify sbom get`. The key and identity flags are `verify-attestation`'s, needed only with
/// `--verify`.
#[derive(clap::Args, Debug)]
#[command(mut_group("signer", |g| g.required(false)), mut_arg("output", |a| a.hide(true)))]
pub struct GetArgs {
    /// The image (tag or digest).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The SBOM format wanted (needed when the image has both).
    #[arg(long, value_name = "cyclonedx|spdx")]
    pub format: Option<Format>,
    /// Write the SBOM to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Read the SBOM from an attestation verified with these flags (those of `verify-attestation`).
    #[arg(long)]
    pub verify: bool,
    /// The registry flags are among these.
    #[command(flatten)]
    pub flags: VerifyFlags,
}

/// Runs `kibaverify sbom`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        SbomCommand::Attach(a) => attach(a),
        SbomCommand::List(a) => list(a),
        SbomCommand::Get(a) => get(a),
    }
}

/// The UTF-8 byte-order mark, which an SBOM file may start with (it is not pushed).
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// What `sbom attach` makes and reads while the file is validated.
struct Prepared {
    client: RegistryClient,
    runtime: tokio::runtime::Runtime,
    /// SHA-256 of the file without its UTF-8 byte-order mark: what is pushed when the file is UTF-8.
    utf8_digest: Digest,
    /// The descriptor of the image's manifest, or why it could not be read (reported only for a valid file).
    subject: Result<Descriptor, kibaship_oci::Error>,
    /// The file without its byte-order mark, sent into an upload session of the image's repository and not
    /// committed ([`STAGED_UPLOAD_MIN_BYTES`]); `None` when it was not sent (small, in the registry already, or
    /// the registry refused the session: the push then uploads it as usual).
    staged: Option<BlobUpload>,
}

/// From this size on, `sbom attach` sends the file to the registry while it validates it (about 80 ms for 50 MB
/// on loopback, beside 180 ms of validation), into an upload session that becomes a blob only once the file is
/// found valid; an invalid file's session is cancelled. Smaller files are validated in a few milliseconds: the
/// upload then waits for the validation, as every push does.
const STAGED_UPLOAD_MIN_BYTES: usize = 4 * 1024 * 1024;

/// How long cancelling the upload session of a file found invalid may take (the error is reported after it).
const CANCEL_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// Cancels `upload` within [`CANCEL_BUDGET`]. A failure is not reported: the session never becomes a blob
/// without a commit, and the registry purges it (go-containerregistry's cannot cancel; distribution can).
async fn cancel_quietly(client: &RegistryClient, upload: &BlobUpload) {
    client
        .with_timeout(CANCEL_BUDGET)
        .cancel_blob_upload(upload)
        .await
        .ok();
}

/// `bytes` without a UTF-8 byte-order mark (the same allocation): what is pushed of a UTF-8 file.
fn without_utf8_mark(bytes: &bytes::Bytes) -> bytes::Bytes {
    if bytes.starts_with(UTF8_BOM) {
        bytes.slice(UTF8_BOM.len()..)
    } else {
        bytes.clone()
    }
}

/// Makes the registry client (system roots, docker config: tens of milliseconds), resolves `reference` to its
/// manifest's descriptor, learns whether the registry serves the referrers API for the repository (read after
/// the push otherwise), hashes `bytes` without a byte-order mark (50 MB take about 30 ms, on a thread of its
/// own) and, for a large file the repository does not have yet, sends it into an upload session that is not
/// committed. When `abandoned` fires (the file was found invalid), it stops whatever it was doing and cancels
/// that session if it had opened one: nothing of the file stays in the registry.
fn prepare_attach(
    registry: &RegistryFlags,
    reference: &Reference,
    bytes: &bytes::Bytes,
    abandoned: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<Option<Prepared>> {
    let client = registry.client()?;
    let runtime = current_thread_runtime()?;
    let body = without_utf8_mark(bytes);
    let (hashed, hash) = tokio::sync::oneshot::channel();
    let hashing = std::thread::spawn({
        let body = body.clone();
        move || hashed.send(Digest::sha256_of(&body)).ok()
    });
    // The session opened, as soon as it is: what to cancel if the file is found invalid meanwhile.
    let session = std::sync::Mutex::new(None::<BlobUpload>);
    let prepared = runtime.block_on(async {
        let reads = async {
            let subject = client.subject_descriptor(reference).await;
            if let Ok(subject) = &subject {
                // A failure here is met again, and reported, when the attach asks the same after the push.
                client
                    .has_referrers_api(reference, &subject.digest)
                    .await
                    .ok();
            }
            let utf8_digest = hash.await.ok()?;
            let staged = match &subject {
                Ok(_) if body.len() >= STAGED_UPLOAD_MIN_BYTES && may_be_utf8(&body) => {
                    stage(&client, reference, &body, &utf8_digest, &session).await
                }
                _ => None,
            };
            Some((subject, utf8_digest, staged))
        };
        tokio::select! {
            biased;
            _ = abandoned => {
                let opened = session.lock().ok().and_then(|mut s| s.take());
                if let Some(upload) = opened {
                    cancel_quietly(&client, &upload).await;
                }
                None
            }
            done = reads => done,
        }
    });
    hashing
        .join()
        .map_err(|_| anyhow::anyhow!("hashing the SBOM failed (its thread panicked)"))?;
    Ok(prepared.map(|(subject, utf8_digest, staged)| Prepared {
        client,
        runtime,
        utf8_digest,
        subject,
        staged,
    }))
}

/// Whether `text` may be UTF-8, what is pushed as it is: UTF-16 and UTF-32 JSON (transcoded before the push, so
/// not worth sending as they are) have a zero byte among their first four, whatever their byte-order mark.
fn may_be_utf8(text: &[u8]) -> bool {
    !text.iter().take(4).any(|b| *b == 0)
}

/// Sends `body` into a new upload session of `reference`'s repository, unless the repository has its blob
/// already; `None` when it is not sent (the push uploads it then, and reports any error the registry gives).
/// `session` holds the session from the moment it is opened.
async fn stage(
    client: &RegistryClient,
    reference: &Reference,
    body: &bytes::Bytes,
    digest: &Digest,
    session: &std::sync::Mutex<Option<BlobUpload>>,
) -> Option<BlobUpload> {
    if client.blob_exists(reference, digest).await.unwrap_or(true) {
        return None;
    }
    let opened = client.start_blob_upload(reference).await.ok()?;
    if let Ok(mut s) = session.lock() {
        *s = Some(opened.clone());
    }
    match client.send_blob_upload(&opened, body.clone()).await {
        Ok(sent) => {
            if let Ok(mut s) = session.lock() {
                *s = Some(sent.clone());
            }
            Some(sent)
        }
        Err(_) => {
            cancel_quietly(client, &opened).await;
            None
        }
    }
}

fn rfc3339(t: time::OffsetDateTime) -> anyhow::Result<String> {
    Ok(t.replace_nanosecond(0)?
        .format(&time::format_description::well_known::Rfc3339)?)
}

fn attach(args: AttachArgs) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let layout = SignatureLayout::for_attestations(args.layout)?;
    let signs = args.signer.key.is_some() || args.signer.keyless;
    let signer_flags = match (args.sign, signs) {
        (true, true) => Some(&args.signer),
        (true, false) => bail!("--sign needs --key or --keyless"),
        (false, true) => bail!("--key and --keyless sign the SBOM only with --sign"),
        (false, false) => None,
    };
    // The file first: nothing is loaded or pushed for a file that is not a valid SBOM.
    let shown = args.file.display().to_string();
    let bytes = bytes::Bytes::from(read_bounded_or_stdin(&args.file, "SBOM", MAX_SBOM_BYTES)?);
    // While the file is validated, another thread prepares the push (`prepare_attach`): it reads from the
    // registry and sends a large file into an upload session that is committed only if the file is valid.
    let (abandon, abandoned) = tokio::sync::oneshot::channel();
    let preparing = std::thread::spawn({
        let (registry, reference, bytes) =
            (args.registry.clone(), reference.clone(), bytes.clone());
        move || prepare_attach(&registry, &reference, &bytes, abandoned)
    });
    let sbom = match kibaship_sbom::validate(&bytes) {
        Ok(sbom) => sbom,
        Err(e) => {
            // An invalid file: the preparation stops at once (its reads are dropped, not waited for) and
            // cancels its upload session, if it had opened one, within `CANCEL_BUDGET`.
            abandon.send(()).ok();
            preparing.join().ok();
            return Err(anyhow::Error::new(e).context(format!("SBOM {shown}")));
        }
    };
    let Prepared {
        client,
        runtime,
        utf8_digest,
        subject,
        staged,
    } = preparing
        .join()
        .map_err(|_| anyhow::anyhow!("preparing the push failed (its thread panicked)"))??
        .context("preparing the push stopped")?;
    // What is left to do before pushing is local (the attestation, the signer, the layer); should it fail,
    // the upload session of the file is cancelled: nothing stays in the registry.
    let local = (|| {
        let created = now();
        let attestation = signer_flags
            .map(|_| Attestation::new(sbom.format.cosign_type_name(), &sbom.utf8, &shown, created))
            .transpose()?;
        let signature_repository = signature_repository_from_env()?;
        let loaded = signer_flags
            .map(|flags| flags.load(layout, &args.registry))
            .transpose()?;
        let title = (args.file.as_os_str() != "-")
            .then(|| {
                args.file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .flatten();
        let kibaship_sbom::Validated {
            format,
            version,
            utf8,
            ..
        } = sbom;
        let media_type = format.media_type().to_string();
        // The file's own bytes when they were UTF-8 already (no second copy of a large SBOM in memory), without
        // the byte-order mark if it had one (what was validated and is attested).
        let (content, content_digest) = match utf8 {
            std::borrow::Cow::Owned(transcoded) => (bytes::Bytes::from(transcoded), None),
            std::borrow::Cow::Borrowed(text) => {
                // What `validate` borrows is the file without its mark, hashed beside the validation; were it
                // anything else, the push would hash it.
                let unmarked = without_utf8_mark(&bytes);
                let digest = std::ptr::eq(text, &*unmarked).then_some(utf8_digest);
                (unmarked, digest)
            }
        };
        let artifact = Artifact {
            artifact_type: media_type.clone(),
            layer_media_type: media_type,
            content,
            content_digest,
            title,
            annotations: BTreeMap::from([(CREATED.to_string(), rfc3339(created)?)]),
        };
        anyhow::Ok((
            attestation,
            signature_repository,
            loaded,
            artifact,
            format,
            version,
        ))
    })();
    let (attestation, signature_repository, loaded, artifact, format, version) = match local {
        Ok(local) => local,
        Err(e) => {
            if let Some(upload) = &staged {
                runtime.block_on(cancel_quietly(&client, upload));
            }
            return Err(e);
        }
    };
    // The session holds the file without its mark: of use only when that is what is attached.
    let staged = match staged {
        Some(upload) if artifact.content_digest.is_none() => {
            runtime.block_on(cancel_quietly(&client, &upload));
            None
        }
        staged => staged,
    };
    let (attached, written) = runtime.block_on(async {
        // One digest for the referrer and the attestation, even if the tag moves meanwhile.
        let subject = subject.with_context(|| format!("cannot resolve {}", args.reference))?;
        let pinned = reference.with_digest(subject.digest.clone());
        let attached = client
            .attach_staged_artifact_to(&pinned, subject, &artifact, staged)
            .await
            .with_context(|| format!("cannot attach {shown} to {}", args.reference))?;
        let written = match (&loaded, &attestation) {
            (Some((layout, signer)), Some(attestation)) => attest::attest_image(
                &client,
                &pinned,
                signature_repository.as_ref(),
                signer.as_image_signer(),
                layout.layouts(),
                attestation,
            )
            .await
            .with_context(|| format!("attached, but cannot attest {}", args.reference))?,
            _ => Vec::new(),
        };
        anyhow::Ok((attached, written))
    })?;
    let image = format!("{}@{}", reference.name(), attached.subject.digest);
    match args.output {
        OutputFormat::Text => {
            eprintln!(
                "attached {} {} SBOM {} to {image} as {} (found through {})",
                format,
                version,
                attached.manifest.digest,
                format.media_type(),
                super::sign::found_through(attached.via),
            );
            for signed in &written {
                eprintln!(
                    "attested {image} with a {} predicate ({} layout)",
                    format.predicate_type(),
                    signed.layout()
                );
            }
            print_line(attached.manifest.digest)?;
        }
        OutputFormat::Json => {
            let mut attestations = serde_json::Map::new();
            for signed in &written {
                attestations.insert(signed.layout().into(), serde_json::to_value(signed)?);
            }
            let doc = serde_json::json!({
                "format": format.name(),
                "version": version,
                "artifactType": format.media_type(),
                "referrer": format!("{}@{}", reference.name(), attached.manifest.digest),
                "digest": attached.manifest.digest,
                "subject": image,
                "via": attached.via,
                "predicateType": (!written.is_empty()).then(|| format.predicate_type()),
                "attestations": attestations,
            });
            print_line(serde_json::to_string_pretty(&doc)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One SBOM found on an image.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Found {
    /// `attached` (a referrer holding the document) or `attested` (an in-toto attestation, not verified here).
    kind: &'static str,
    format: &'static str,
    /// Where: the referrer manifest (`repo@sha256:...`) or the legacy tag and layer.
    location: String,
    /// The referrer's `artifactType`, or the attestation's predicate type.
    #[serde(rename = "type")]
    type_: String,
    /// When it was attached or attested (`org.opencontainers.image.created`), if said.
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    #[serde(skip)]
    descriptor: Option<Descriptor>,
}

/// The SBOMs of the image pinned to `digest`: attached referrers, then bundle attestations, then the legacy
/// `.att` tag's layers (in `signature_repository` if given).
async fn find(
    client: &RegistryClient,
    image: &Reference,
    signature_repository: Option<&Reference>,
    wanted: Option<Format>,
) -> anyhow::Result<Vec<Found>> {
    let digest = image
        .digest()
        .context("internal: the image is not pinned")?;
    let store =
        signature_repository.map_or_else(|| image.clone(), |r| r.with_digest(digest.clone()));
    let referrers = client
        .list_referrers(image, None)
        .await
        .with_context(|| format!("cannot list the referrers of {image}"))?;
    let mut found = Vec::new();
    let matches = |f: Format| wanted.is_none_or(|w| w == f);
    for d in &referrers.descriptors {
        let Some(format) = d.artifact_type.as_deref().and_then(Format::from_media_type) else {
            continue;
        };
        if matches(format) {
            found.push(Found {
                kind: "attached",
                format: format.name(),
                location: format!("{}@{}", image.name(), d.digest),
                type_: d.artifact_type.clone().unwrap_or_default(),
                created: d.annotations.get(CREATED).cloned(),
                descriptor: Some(d.clone()),
            });
        }
    }
    // Attestations in cosign v3's layout: bundle referrers annotated with their predicate type (in the
    // signature repository when there is one).
    let bundles = if signature_repository.is_some() {
        client
            .list_referrers(&store, None)
            .await
            .with_context(|| format!("cannot list the referrers of {store}"))?
            .descriptors
    } else {
        referrers.descriptors
    };
    for d in &bundles {
        let Some(predicate_type) = d
            .annotations
            .get(kibaship_cosign::bundle_layout::PREDICATE_TYPE_ANNOTATION)
        else {
            continue;
        };
        if let Some(format) = Format::from_predicate_type(predicate_type).filter(|f| matches(*f)) {
            found.push(Found {
                kind: "attested",
                format: format.name(),
                location: format!("{}@{}", store.name(), d.digest),
                type_: predicate_type.clone(),
                created: d.annotations.get(CREATED).cloned(),
                descriptor: None,
            });
        }
    }
    // The legacy layout: the `.att` tag's DSSE layers, annotated with their predicate type.
    let tag = store.with_tag(&legacy::tag_for(digest, ATTESTATION_TAG_SUFFIX))?;
    if let Some(manifest) = client
        .fetch_manifest_if_exists(&tag)
        .await
        .with_context(|| format!("cannot read {tag}"))?
    {
        // A malformed `.att` manifest holds no SBOM we can name; `verify-attestation` reports it.
        for layer in
            legacy::read_manifest(&manifest.bytes, LayerKind::Attestation).unwrap_or_default()
        {
            let Some(predicate_type) = layer.predicate_type else {
                continue;
            };
            if let Some(format) =
                Format::from_predicate_type(&predicate_type).filter(|f| matches(*f))
            {
                found.push(Found {
                    kind: "attested",
                    format: format.name(),
                    location: format!("{tag} layer {}", layer.index),
                    type_: predicate_type,
                    created: None,
                    descriptor: None,
                });
            }
        }
    }
    Ok(found)
}

/// The image pinned to its digest.
async fn pin(client: &RegistryClient, reference: &Reference) -> anyhow::Result<Reference> {
    let subject = client
        .subject_descriptor(reference)
        .await
        .with_context(|| format!("cannot resolve {reference}"))?;
    Ok(reference.with_digest(subject.digest))
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let signature_repository = signature_repository_from_env()?;
    let client = args.registry.client()?;
    let runtime = current_thread_runtime()?;
    let (image, found) = runtime.block_on(async {
        let image = pin(&client, &reference).await?;
        let found = find(&client, &image, signature_repository.as_ref(), args.format).await?;
        anyhow::Ok((image, found))
    })?;
    match args.output {
        OutputFormat::Text => {
            eprintln!("{} SBOM(s) of {image}", found.len());
            let mut out = Stdout::lock();
            for f in &found {
                out.line(format_args!(
                    "{}\t{}\t{}\t{}",
                    f.kind,
                    f.format,
                    Escaped(&f.location),
                    Escaped(&f.type_)
                ))?;
            }
            out.flush()?;
        }
        OutputFormat::Json => {
            let doc = serde_json::json!({"image": image.to_string(), "sboms": found});
            print_line(serde_json::to_string_pretty(&doc)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The one format among `found`, or an error naming the choice to make.
fn one_format(found: &[Found], wanted: Option<Format>) -> anyhow::Result<Option<&'static str>> {
    if let Some(w) = wanted {
        return Ok(Some(w.name()));
    }
    let mut formats: Vec<&str> = found.iter().map(|f| f.format).collect();
    formats.sort_unstable();
    formats.dedup();
    match formats.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => bail!(
            "the image has both CycloneDX and SPDX SBOMs: choose one with --format cyclonedx or --format spdx"
        ),
    }
}

fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let f = &args.flags;
    let signer = f.key.is_some()
        || f.certificate_identity.is_some()
        || f.certificate_identity_regexp.is_some();
    match (args.verify, signer) {
        (true, true) => return get_verified(&args, &reference, f),
        (true, false) => bail!(
            "--verify needs --key or --certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp]"
        ),
        (false, true) => bail!("the key and identity flags apply only with --verify"),
        (false, false) => {}
    }
    let signature_repository = signature_repository_from_env()?;
    let client = args.flags.registry.client()?;
    let runtime = current_thread_runtime()?;
    let bytes = runtime.block_on(async {
        let image = pin(&client, &reference).await?;
        let found = find(&client, &image, signature_repository.as_ref(), args.format).await?;
        let format = one_format(&found, args.format)?;
        let attached = found
            .iter()
            .filter(|f| f.kind == "attached" && Some(f.format) == format)
            // The newest by `org.opencontainers.image.created`; among equals (or none said), the first listed.
            .rev()
            .max_by(|a, b| a.created.cmp(&b.created));
        let Some(chosen) = attached else {
            let attested = found.iter().filter(|f| f.kind == "attested").count();
            let what = args.format.map_or("SBOM".to_string(), |f| format!("{f} SBOM"));
            if attested > 0 {
                eprintln!(
                    "no {what} is attached to {image}; {attested} SBOM attestation(s) are: read one with --verify and the signer's --key or --certificate-identity"
                );
            } else {
                eprintln!("no {what} is attached to or attested on {image}");
            }
            return anyhow::Ok(None);
        };
        let descriptor = chosen
            .descriptor
            .as_ref()
            .context("internal: an attached SBOM without its descriptor")?;
        let manifest_ref = image.with_digest(descriptor.digest.clone());
        let manifest = client
            .fetch_manifest(&manifest_ref)
            .await
            .with_context(|| format!("cannot read {manifest_ref}"))?;
        let parsed: ImageManifest = serde_json::from_slice(&manifest.bytes)
            .with_context(|| format!("{manifest_ref} is not an image manifest"))?;
        let [layer] = parsed.layers.as_slice() else {
            bail!(
                "{manifest_ref} has {} layers; an SBOM referrer has one",
                parsed.layers.len()
            );
        };
        if layer.size > MAX_SBOM_BYTES {
            bail!(
                "the SBOM in {manifest_ref} is {} bytes, more than the {MAX_SBOM_BYTES} accepted",
                layer.size
            );
        }
        let bytes = client
            .fetch_blob(&image, &layer.digest, layer.size)
            .await
            .with_context(|| format!("cannot read the SBOM of {manifest_ref}"))?;
        eprintln!(
            "{} SBOM attached to {image}: {manifest_ref} (not verified: it is not signed; use --verify to read a signed one)",
            chosen.format
        );
        anyhow::Ok(Some(bytes))
    })?;
    match bytes {
        Some(bytes) => {
            write_output(args.output_file.as_deref(), &bytes)?;
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::from(1)),
    }
}

/// `sbom get --verify`: the predicate of an SBOM attestation that `ImageVerifier` accepted.
fn get_verified(
    args: &GetArgs,
    reference: &Reference,
    flags: &VerifyFlags,
) -> anyhow::Result<ExitCode> {
    // One format asked for: the verifier looks for that predicate type only. Else any, and the SBOM types are
    // picked from what verified.
    let wanted = args.format.map(|f| f.predicate_type().to_string());
    let (policy, root) = flags.policy(LayerKind::Attestation, wanted, BTreeMap::new())?;
    let verifier = ImageVerifier::new(flags.registry.client()?, root)
        .with_max_referrers_checked(flags.max_referrers());
    let runtime = current_thread_runtime()?;
    let verdict = runtime
        .block_on(verifier.verify(reference, &policy, now().unix_timestamp()))
        .map_err(|e| {
            let code = e.code().map_or(String::new(), |c| format!(" ({c})"));
            anyhow::Error::new(e).context(format!("cannot verify {}{code}", args.reference))
        })?;
    let report = verdict
        .attestations()
        .context("internal: the verdict lacks the attestations")?;
    let image = &report.image;
    let mut verified: Vec<(Format, &str, &[u8], &str)> = Vec::new();
    for s in &report.signatures {
        if let Outcome::Accepted(a) = &s.outcome
            && let Some(format) = a
                .predicate_type
                .as_deref()
                .and_then(Format::from_predicate_type)
            && args.format.is_none_or(|w| w == format)
            && let Some(statement) = &a.statement
        {
            verified.push((format, &s.location, statement, &a.signer));
        }
    }
    let mut formats: Vec<Format> = verified.iter().map(|v| v.0).collect();
    formats.dedup();
    if formats.len() > 1 {
        bail!(
            "{image} has verified CycloneDX and SPDX SBOM attestations: choose one with --format cyclonedx or --format spdx"
        );
    }
    let Some((format, location, statement, signer)) = verified.first() else {
        eprintln!(
            "NOT VERIFIED {}: no {} attestation verified ({})",
            Escaped(image),
            args.format
                .map_or("SBOM".to_string(), |f| format!("{f} SBOM")),
            report.code().map_or("attestation-missing", |c| c.as_str())
        );
        for s in &report.signatures {
            if let Outcome::Rejected(r) = &s.outcome {
                eprintln!(
                    "  FAIL {}: {}: {}",
                    Escaped(&s.location),
                    r.code.as_str(),
                    Escaped(&r.message)
                );
            }
        }
        return Ok(ExitCode::from(1));
    };
    let bytes = predicate_document(statement)
        .with_context(|| format!("the verified attestation {location}"))?;
    eprintln!(
        "VERIFIED {} SBOM of {}: attestation {} signed by {}",
        format,
        Escaped(image),
        Escaped(location),
        Escaped(signer)
    );
    write_output(args.output_file.as_deref(), &bytes)?;
    Ok(ExitCode::SUCCESS)
}

/// The SBOM an in-toto statement carries: its `predicate` as written (an object), or the text of a predicate
/// embedded as a JSON string (cosign's `--type spdx`).
fn predicate_document(statement: &[u8]) -> anyhow::Result<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Statement<'a> {
        #[serde(borrow)]
        predicate: &'a serde_json::value::RawValue,
    }
    let s: Statement<'_> =
        serde_json::from_slice(statement).context("the statement has no predicate")?;
    let raw = s.predicate.get();
    if raw.starts_with('"') {
        let text: String = serde_json::from_str(raw)?;
        return Ok(text.into_bytes());
    }
    Ok(raw.as_bytes().to_vec())
}

fn write_output(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    match path {
        Some(p) => {
            std::fs::write(p, bytes).with_context(|| format!("cannot write {}", p.display()))
        }
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(bytes).and_then(|()| out.flush()) {
                // A reader that went away (`| head`) ends the command quietly.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("cannot write to stdout"),
            }
        }
    }
}
