//! `kibaverify provenance get|rehome`: BuildKit's attestations (SLSA provenance, SBOMs) as it pushes them inside
//! an image index, and as signed attestations of the platform image.
//!
//! - `get REF [--platform P] [--predicate-type T] [--predicate-only] [--output FILE]`: the in-toto statement
//!   BuildKit wrote for the platform image (`kibaship_provenance::buildkit` finds it: attestation manifest ->
//!   in-toto layer), not verified (nobody signed it); with `--verify` and `verify-attestation`'s key or identity
//!   flags, the statement of a provenance attestation `ImageVerifier` accepted (both cosign layouts).
//! - `rehome REF (--key K | --keyless ...) [--layout L] [--platform P] [--predicate-type T]`: each of BuildKit's
//!   statements about a platform image signed onto that image with `kibaship_cosign::attest` (the one signing path
//!   of `kibaverify attest`), so cosign, policy-controller and `kibaverify verify-provenance` find it; the index is
//!   not touched, containerd and docker read it as before.
//!
//! Exit codes: 0 done; 1 (`get --verify`) nothing verified, (`rehome`) a statement names another image; 2 bad input
//! or an unreachable registry (an attestation manifest or layer missing from the registry is named by digest).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kibaship_cosign::attest::{self, Attestation};
use kibaship_cosign::{ImagePolicy, ImageReport, ImageVerifier, Signed};
use kibaship_oci::manifest::{ImageIndex, ImageManifest, is_index_media_type};
use kibaship_oci::{Platform, Reference, RegistryClient};
use kibaship_provenance::buildkit::{self, BuildkitError, InTotoLayer, MAX_STATEMENT_BYTES};
use kibaship_provenance::requirements::{SLSA_V1, SLSA_V02};
use kibaship_provenance::{PlatformImage, Statement};

use super::digest::{OutputFormat, RegistryFlags, current_thread_runtime};
use super::signer_flags::{SignatureLayout, SignerFlags};
use super::verify::{VerifyFlags, signature_repository_from_env};
use kibaship_cli::terminal::{Escaped, print_line};

/// Arguments of `kibaverify provenance`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: ProvenanceCommand,
}

/// The `provenance` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ProvenanceCommand {
    /// Write the in-toto statement BuildKit attached to a platform image inside the index (not verified), or
    /// with --verify the statement of a provenance attestation verified with the given key or identity.
    Get(GetArgs),
    /// Sign BuildKit's statements about each platform image (from the index's attestation manifests) onto that
    /// image as attestations (legacy `.att` and/or bundle referrer), as `kibaverify attest` does; the index is
    /// left as it is.
    Rehome(RehomeArgs),
}

/// Arguments of `kibaverify provenance get`.
#[derive(clap::Args, Debug)]
#[command(mut_group("signer", |g| g.required(false)), mut_arg("output", |a| a.hide(true)))]
pub struct GetArgs {
    /// The image: BuildKit's index (tag or digest); with --verify, the image the attestation is about.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The platform image (`os/arch[/variant]`); needed when the index has several attested platforms.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<Platform>,
    /// The statement's predicate type (a URI or one of cosign's names); default: SLSA provenance (v1 or v0.2).
    #[arg(long = "predicate-type", value_name = "TYPE")]
    pub predicate_type: Option<String>,
    /// Write only the statement's predicate, not the whole statement.
    #[arg(long)]
    pub predicate_only: bool,
    /// Write to this file instead of stdout.
    #[arg(long = "output-file", value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Read a signed attestation (both cosign layouts) verified with these flags (those of
    /// `verify-attestation`), instead of BuildKit's unsigned statement in the index.
    #[arg(long)]
    pub verify: bool,
    /// The registry flags are among these.
    #[command(flatten)]
    pub flags: VerifyFlags,
}

/// Arguments of `kibaverify provenance rehome`.
#[derive(clap::Args, Debug)]
pub struct RehomeArgs {
    /// BuildKit's image index (tag or digest).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Only this platform's image (default: every attested platform image).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<Platform>,
    /// Only statements of this predicate type (a URI or one of cosign's names; repeatable); default: all of them
    /// (SLSA provenance and SBOMs).
    #[arg(long = "predicate-type", value_name = "TYPE")]
    pub predicate_types: Vec<String>,
    #[command(flatten)]
    pub signer: SignerFlags,
    /// Attestation layout to write (default: `legacy` with --key, `bundle` keyless).
    #[arg(long, value_enum)]
    pub layout: Option<SignatureLayout>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Runs `kibaverify provenance`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        ProvenanceCommand::Get(a) => get(a),
        ProvenanceCommand::Rehome(a) => rehome(a),
    }
}

/// One of BuildKit's statements, read from the registry: its layer and bytes.
pub struct BuildkitStatement {
    /// The layer it was read from.
    pub layer: InTotoLayer,
    /// The attestation manifest holding the layer.
    pub manifest: kibaship_oci::Digest,
    /// The statement's bytes (digest checked).
    pub bytes: Vec<u8>,
}

/// BuildKit's attested platform images of the index `reference` names: `--platform`'s, else all of them.
pub async fn attested_images(
    client: &RegistryClient,
    reference: &Reference,
    platform: Option<&Platform>,
) -> anyhow::Result<Vec<PlatformImage>> {
    let index = client
        .fetch_manifest(reference)
        .await
        .with_context(|| format!("cannot read {reference}"))?;
    if !is_index_media_type(&index.media_type) {
        bail!(
            "{reference} is a single image ({}), not an image index: BuildKit keeps its attestations in the index it pushes; give the index's tag or digest",
            index.media_type
        );
    }
    let parsed: ImageIndex = serde_json::from_slice(&index.bytes)
        .with_context(|| format!("{reference}: the index is not a valid OCI image index"))?;
    let images = buildkit::platform_images(&parsed).with_context(|| reference.to_string())?;
    Ok(match platform {
        Some(_) => vec![
            buildkit::select_platform(&images, platform)
                .with_context(|| reference.to_string())?
                .clone(),
        ],
        None => images
            .into_iter()
            .filter(|i| !i.attestations.is_empty())
            .collect(),
    })
}

/// The statements BuildKit wrote about `image` whose predicate type `wanted` accepts, each fetched bounded and
/// checked against its digest. A manifest or layer the index names but the registry lacks is an error naming it.
pub async fn buildkit_statements(
    client: &RegistryClient,
    repository: &Reference,
    image: &PlatformImage,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<BuildkitStatement>> {
    let mut out = Vec::new();
    for descriptor in &image.attestations {
        let at = repository.with_digest(descriptor.digest.clone());
        let manifest = match client.fetch_manifest_if_exists(&at).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return Err(BuildkitError::MissingBlob {
                    what: format!("the attestation manifest of {}", image.manifest.digest),
                    digest: descriptor.digest.to_string(),
                }
                .into());
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read {at}"))),
        };
        let parsed: ImageManifest = serde_json::from_slice(&manifest.bytes).with_context(|| {
            format!(
                "attestation manifest {}: not an image manifest",
                descriptor.digest
            )
        })?;
        for layer in buildkit::in_toto_layers(&parsed, &descriptor.digest)? {
            if !wanted(&layer.predicate_type) {
                continue;
            }
            let digest = &layer.descriptor.digest;
            let bytes = match client
                .fetch_blob(repository, digest, MAX_STATEMENT_BYTES)
                .await
            {
                Ok(b) => b,
                Err(e) if e.is_not_found() => {
                    return Err(BuildkitError::MissingBlob {
                        what: format!(
                            "the {} statement (layer of attestation manifest {})",
                            layer.predicate_type, descriptor.digest
                        ),
                        digest: digest.to_string(),
                    }
                    .into());
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "cannot read statement {digest} of {}",
                        descriptor.digest
                    )));
                }
            };
            out.push(BuildkitStatement {
                layer,
                manifest: descriptor.digest.clone(),
                bytes,
            });
        }
    }
    Ok(out)
}

/// The predicate types `--predicate-type` names (URIs), or SLSA provenance's when none is given.
fn wanted_types(given: &[String]) -> anyhow::Result<Vec<String>> {
    if given.is_empty() {
        return Ok(vec![SLSA_V1.to_string(), SLSA_V02.to_string()]);
    }
    given
        .iter()
        .map(|t| attest::predicate_type_uri(t).context("--predicate-type"))
        .collect()
}

/// Whether the flags name who must have signed (a key or a certificate identity).
pub fn names_signer(flags: &VerifyFlags) -> bool {
    flags.key.is_some()
        || flags.certificate_identity.is_some()
        || flags.certificate_identity_regexp.is_some()
}

fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let reference = kibaship_oci::Reference::parse(&args.reference)?;
    let wanted = wanted_types(args.predicate_type.as_slice())?;
    match (args.verify, names_signer(&args.flags)) {
        (true, false) => bail!(
            "--verify needs --key or --certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp]"
        ),
        (false, true) => bail!("the key and identity flags apply only with --verify"),
        _ => {}
    }
    let client = args.flags.registry.client()?;
    let runtime = current_thread_runtime()?;
    if args.verify {
        return get_verified(&args, &reference, &wanted, client, &runtime);
    }
    let statements = runtime.block_on(async {
        let images = attested_images(&client, &reference, args.platform.as_ref()).await?;
        let [image] = images.as_slice() else {
            let listed: Vec<String> = images.iter().map(PlatformImage::platform).collect();
            bail!(
                "{reference} has attested images for several platforms ({}): choose one with --platform",
                listed.join(", ")
            );
        };
        let found = buildkit_statements(&client, &reference, image, |t| wanted.iter().any(|w| w == t)).await?;
        Ok::<_, anyhow::Error>((image.clone(), found))
    })?;
    let (image, found) = statements;
    let Some(first) = found.first() else {
        bail!(
            "BuildKit attached no statement of type {} to {} ({})",
            wanted.join(" or "),
            image.manifest.digest,
            image.platform()
        );
    };
    let statement = Statement::parse(&first.bytes).with_context(|| {
        format!(
            "statement {} of {}",
            first.layer.descriptor.digest, first.manifest
        )
    })?;
    if !statement.names_digest(&image.manifest.digest) {
        bail!(
            "statement {} is about {}, not the platform image {} it is attached to",
            first.layer.descriptor.digest,
            statement.subject_digests().join(", "),
            image.manifest.digest
        );
    }
    eprintln!(
        "{} statement of {}@{} ({}) from attestation manifest {}, layer {} (not signed: BuildKit's, as the registry serves it)",
        Escaped(&first.layer.predicate_type),
        Escaped(reference.repository()),
        image.manifest.digest,
        Escaped(&image.platform()),
        first.manifest,
        first.layer.descriptor.digest
    );
    let bytes = if args.predicate_only {
        predicate_bytes(&statement)?
    } else {
        first.bytes.clone()
    };
    write_output(args.output_file.as_deref(), &bytes)?;
    Ok(ExitCode::SUCCESS)
}

/// `get --verify`: the statement of an attestation `ImageVerifier` accepted.
fn get_verified(
    args: &GetArgs,
    reference: &Reference,
    wanted: &[String],
    client: RegistryClient,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let target = platform_image(&client, reference, args.platform.as_ref(), runtime)?;
    let mut builder = args
        .flags
        .policy_builder(BTreeMap::new())?
        .signature_not_required();
    for t in wanted {
        builder = builder.require_attestation(Some(t.clone()));
    }
    let policy = builder.build()?;
    let report = verified_attestations(&args.flags, client, &target, &policy, runtime)?;
    let found = report.signatures.iter().find_map(|s| {
        let a = s.accepted()?;
        let t = a.predicate_type.as_deref()?;
        wanted.iter().any(|w| w == t).then_some((s, a))?;
        a.statement.as_ref().map(|st| (s, a, st))
    });
    let Some((outcome, accepted, bytes)) = found else {
        eprintln!(
            "NOT VERIFIED {}: no {} attestation verified ({})",
            Escaped(&report.image),
            wanted.join(" or "),
            report.code().map_or("attestation-missing", |c| c.as_str())
        );
        print_rejections(&report);
        return Ok(ExitCode::from(1));
    };
    let statement = Statement::parse(bytes)
        .with_context(|| format!("the verified attestation {}", outcome.location))?;
    eprintln!(
        "VERIFIED {} attestation of {}: {} signed by {}",
        Escaped(accepted.predicate_type.as_deref().unwrap_or("")),
        Escaped(&report.image),
        Escaped(&outcome.location),
        Escaped(&accepted.signer)
    );
    let out = if args.predicate_only {
        predicate_bytes(&statement)?
    } else {
        bytes.to_vec()
    };
    write_output(args.output_file.as_deref(), &out)?;
    Ok(ExitCode::SUCCESS)
}

/// The attestations of `target` that `ImageVerifier` (with `flags`' trusted root and referrer bound) read and
/// checked for `policy`.
pub fn verified_attestations(
    flags: &VerifyFlags,
    client: RegistryClient,
    target: &Reference,
    policy: &ImagePolicy,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<ImageReport> {
    let verifier = ImageVerifier::new(client, flags.trusted_root()?)
        .with_max_referrers_checked(flags.max_referrers());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verdict = runtime
        .block_on(verifier.verify(target, policy, now))
        .map_err(|e| {
            let code = e.code().map_or(String::new(), |c| format!(" ({c})"));
            anyhow::Error::new(e).context(format!("cannot verify {target}{code}"))
        })?;
    verdict
        .attestations()
        .cloned()
        .context("internal: the verdict lacks the attestations")
}

/// Each attestation `report` rejected, on stderr: where, its code and why.
pub fn print_rejections(report: &ImageReport) {
    for s in &report.signatures {
        if let Some(r) = s.rejected() {
            eprintln!(
                "  FAIL {}: {}: {}",
                Escaped(&s.location),
                r.code.as_str(),
                Escaped(&r.message)
            );
        }
    }
}

/// `reference`, or with `platform` the platform image of the index it names, by digest.
pub fn platform_image(
    client: &RegistryClient,
    reference: &Reference,
    platform: Option<&Platform>,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Reference> {
    let Some(platform) = platform else {
        return Ok(reference.clone());
    };
    let resolved = runtime
        .block_on(client.resolve_digest(reference, Some(platform)))
        .with_context(|| format!("cannot resolve {reference} for platform {platform}"))?;
    Ok(reference.with_digest(resolved.digest))
}

/// The statement's predicate as JSON text.
fn predicate_bytes(statement: &Statement) -> anyhow::Result<Vec<u8>> {
    let predicate = statement
        .predicate
        .as_ref()
        .context("the statement has no predicate")?;
    Ok(serde_json::to_vec_pretty(predicate)?)
}

/// Writes `bytes` to `path`, or stdout (a reader that went away ends quietly).
pub fn write_output(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    match path {
        Some(p) => {
            std::fs::write(p, bytes).with_context(|| format!("cannot write {}", p.display()))
        }
        None => {
            let mut out = std::io::stdout().lock();
            match out
                .write_all(bytes)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
            {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("cannot write to stdout"),
            }
        }
    }
}

fn rehome(args: RehomeArgs) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let filter: Option<Vec<String>> = match args.predicate_types.is_empty() {
        true => None,
        false => Some(wanted_types(&args.predicate_types)?),
    };
    let signature_repository = signature_repository_from_env()?;
    let client = args.registry.client()?;
    let runtime = current_thread_runtime()?;
    // Everything is read and checked before any key, token or push: a bad index signs nothing.
    let found = runtime.block_on(async {
        let mut found = Vec::new();
        for image in attested_images(&client, &reference, args.platform.as_ref()).await? {
            let statements = buildkit_statements(&client, &reference, &image, |t| {
                filter.as_ref().is_none_or(|f| f.iter().any(|w| w == t))
            })
            .await?;
            found.push((image, statements));
        }
        Ok::<_, anyhow::Error>(found)
    })?;
    let mut attestations = Vec::new();
    for (image, statements) in &found {
        for s in statements {
            let statement = Statement::parse(&s.bytes).with_context(|| {
                format!("statement {} of {}", s.layer.descriptor.digest, s.manifest)
            })?;
            if statement.predicate_type != s.layer.predicate_type {
                bail!(
                    "statement {}: predicateType {} differs from its layer's annotation {}",
                    s.layer.descriptor.digest,
                    statement.predicate_type,
                    s.layer.predicate_type
                );
            }
            if !statement.names_digest(&image.manifest.digest) {
                eprintln!(
                    "NOT REHOMED {}: subject-digest-mismatch: subject is {}, wanted {} (the platform image it is attached to)",
                    s.layer.descriptor.digest,
                    Escaped(&statement.subject_digests().join(", ")),
                    image.manifest.digest
                );
                return Ok(ExitCode::from(1));
            }
            let predicate = serde_json::to_vec(
                statement
                    .predicate
                    .as_ref()
                    .context("the statement has no predicate")?,
            )?;
            let attestation = Attestation::new(
                &statement.predicate_type,
                &predicate,
                &format!("statement {}", s.layer.descriptor.digest),
                time::OffsetDateTime::now_utc(),
            )?;
            attestations.push((
                reference.with_digest(image.manifest.digest.clone()),
                image.platform(),
                attestation,
            ));
        }
    }
    if attestations.is_empty() {
        bail!("{reference}: no statement to rehome (none of the types asked for)");
    }
    let (layout, loaded) = args.signer.load(args.layout, &args.registry)?;
    let signer = loaded.as_image_signer();
    let mut report = Vec::new();
    for (target, platform, attestation) in &attestations {
        let written = runtime
            .block_on(attest::attest_image(
                &client,
                target,
                signature_repository.as_ref(),
                signer,
                layout.layouts(),
                attestation,
            ))
            .with_context(|| format!("cannot attest {target}"))?;
        for signed in &written {
            eprintln!(
                "rehomed {} ({}) {} into {}",
                Escaped(signed.image()),
                Escaped(platform),
                Escaped(attestation.predicate_type()),
                Escaped(&signed_location(signed))
            );
        }
        report.push(serde_json::json!({
            "image": target.to_string(),
            "platform": platform,
            "predicateType": attestation.predicate_type(),
            "written": written,
        }));
    }
    match args.output {
        OutputFormat::Text => {
            for (target, _, _) in &attestations {
                print_line(target.to_string())?;
            }
        }
        OutputFormat::Json => print_line(serde_json::to_string_pretty(&report)?)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Where an attestation was written, in words.
fn signed_location(signed: &Signed) -> String {
    format!("{} {}", signed.layout(), signed.location())
}
