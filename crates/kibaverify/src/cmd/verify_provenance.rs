//! `kibaverify verify-provenance`: verify an image's SLSA provenance (v0.2 or v1) offline, with slsa-verifier's
//! flags where the concept is the same, for any builder the flags name.
//!
//! The provenance is a signed attestation (both cosign layouts, key or keyless: `verify-attestation`'s flags)
//! found and verified by `ImageVerifier`, the one verification API; `kibaship_provenance::ProvenanceRequirements`
//! then judges the statement whose signature was verified, with `kibaship_cosign::PredicateCheck`s (evaluated as
//! an admission policy's required attestations are). With `--insecure-unsigned-buildkit`, BuildKit's unsigned
//! statement in the image index is judged the same way.
//!
//! Exit codes: 0 verified; 1 not verified (the failure names its code, field, wanted and found); 2 bad input or
//! an unreachable registry.
use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kibaship_oci::{Platform, Reference};
use kibaship_provenance::requirements::Judgement;
use kibaship_provenance::{
    ProvenanceFailure, ProvenanceRequirements, SlsaVersion, Statement, VersionedTag,
};

use super::digest::{OutputFormat, current_thread_runtime};
use super::provenance::{
    attested_images, buildkit_statements, names_signer, platform_image, print_rejections,
    verified_attestations,
};
use super::verify::VerifyFlags;
use kibaship_cli::terminal::{Escaped, print_line};

/// Which SLSA provenance versions are accepted.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlsaVersionArg {
    /// v0.2 or v1.
    #[default]
    Any,
    /// Only SLSA provenance v1 (`https://slsa.dev/provenance/v1`).
    #[value(name = "v1")]
    V1,
    /// Only SLSA provenance v0.2 (`https://slsa.dev/provenance/v0.2`).
    #[value(name = "v0.2")]
    V02,
}

/// Arguments of `kibaverify verify-provenance`.
#[derive(clap::Args, Debug)]
#[command(mut_group("signer", |g| g.required(false)))]
pub struct Args {
    /// The image (a tag is resolved to its digest first; with --platform, the platform image of the index).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The source repository the image must be built from, as slsa-verifier takes it (`github.com/org/repo`;
    /// `https://` and `git+https://` forms too): exactly this repository.
    #[arg(long, value_name = "URI")]
    pub source_uri: String,
    /// The git tag the source must be (`refs/tags/<tag>`).
    #[arg(long, value_name = "TAG", conflicts_with = "source_versioned_tag")]
    pub source_tag: Option<String>,
    /// The git branch the source must be (`refs/heads/<branch>`).
    #[arg(long, value_name = "BRANCH")]
    pub source_branch: Option<String>,
    /// A tag of this semantic version (`v1`, `v1.2`, `v1.2.3`, `v1.2.3-rc1`): the same major, and minor and
    /// patch when given (a tag `v1` is `v1.0.0`), as slsa-verifier.
    #[arg(long, value_name = "VERSION")]
    pub source_versioned_tag: Option<VersionedTag>,
    /// The builder the provenance must name (any builder: this is the policy). With `@<ref>` that version
    /// (`@v1.2.3` also matches `@refs/tags/v1.2.3`, as in slsa-verifier); without, any version of it.
    #[arg(long, value_name = "ID")]
    pub builder_id: String,
    /// The build type the provenance must name, exactly.
    #[arg(long, value_name = "URI")]
    pub build_type: Option<String>,
    /// Which SLSA provenance versions are accepted.
    #[arg(long, value_enum, default_value_t = SlsaVersionArg::Any)]
    pub slsa_version: SlsaVersionArg,
    /// Print the verified in-toto statement to stdout.
    #[arg(long)]
    pub print_provenance: bool,
    /// Verify the provenance of this platform's image of the index (`os/arch[/variant]`).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<Platform>,
    /// INSECURE: check BuildKit's statement in the image index, which nobody signed (anyone who can push to the
    /// repository can write it); no key or identity. Sign it with `provenance rehome` and verify that instead.
    #[arg(long)]
    pub insecure_unsigned_buildkit: bool,
    #[command(flatten)]
    pub flags: VerifyFlags,
}

impl Args {
    fn requirements(&self) -> ProvenanceRequirements {
        ProvenanceRequirements {
            source_uri: self.source_uri.clone(),
            source_tag: self.source_tag.clone(),
            source_branch: self.source_branch.clone(),
            source_versioned_tag: self.source_versioned_tag.clone(),
            builder_id: self.builder_id.clone(),
            build_type: self.build_type.clone(),
            versions: match self.slsa_version {
                SlsaVersionArg::Any => SlsaVersion::ALL.to_vec(),
                SlsaVersionArg::V1 => vec![SlsaVersion::V1],
                SlsaVersionArg::V02 => vec![SlsaVersion::V02],
            },
        }
    }
}

/// Verifies the image's provenance.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let requirements = args.requirements();
    // Unusable flags are bad input before anything is read.
    requirements.validate()?;
    match (args.insecure_unsigned_buildkit, names_signer(&args.flags)) {
        (false, false) => bail!(
            "verify-provenance needs --key or --certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp] (or --insecure-unsigned-buildkit for BuildKit's unsigned statement)"
        ),
        (true, true) => {
            bail!(
                "--insecure-unsigned-buildkit reads an unsigned statement: the key and identity flags do not apply"
            )
        }
        _ => {}
    }
    let client = args.flags.registry.client()?;
    let runtime = current_thread_runtime()?;
    if args.insecure_unsigned_buildkit {
        return unsigned_buildkit(&args, &reference, &requirements, client, &runtime);
    }
    let target = platform_image(&client, &reference, args.platform.as_ref(), &runtime)?;
    // Every attestation is read and its signature verified; the requirements then judge the statements the
    // verifier accepted (an accepted one of another SLSA version is reported as predicate-type-mismatch).
    let policy = args
        .flags
        .policy_builder(BTreeMap::new())?
        .signature_not_required()
        .require_attestation(None)
        .build()?;
    let report = verified_attestations(&args.flags, client, &target, &policy, &runtime)?;
    let report = &report;
    match requirements.judge_report(report) {
        Ok((index, statement)) => {
            let outcome = report
                .signatures
                .get(index)
                .context("internal: the accepted attestation is not in the report")?;
            let signer = outcome.accepted().map_or("", |a| a.signer.as_str());
            let bytes = outcome
                .accepted()
                .and_then(|a| a.statement.as_deref())
                .unwrap_or_default();
            passed(
                &args,
                &report.image,
                &statement,
                bytes,
                &format!("attestation {} signed by {signer}", outcome.location),
            )
        }
        Err(Judgement::Unusable(e)) => Err(e.into()),
        Err(Judgement::Failed(failure)) => {
            failed(&args, &report.image, &failure)?;
            if args.flags.output == OutputFormat::Text {
                print_rejections(report);
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// `--insecure-unsigned-buildkit`: BuildKit's statements about the platform image, judged as they are.
fn unsigned_buildkit(
    args: &Args,
    reference: &Reference,
    requirements: &ProvenanceRequirements,
    client: kibaship_oci::RegistryClient,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let (image, found) = runtime.block_on(async {
        let images = attested_images(&client, reference, args.platform.as_ref()).await?;
        let [image] = images.as_slice() else {
            let listed: Vec<String> = images.iter().map(|i| i.platform()).collect();
            bail!(
                "{reference} has attested images for several platforms ({}): choose one with --platform",
                listed.join(", ")
            );
        };
        let found = buildkit_statements(&client, reference, image, |t| {
            SlsaVersion::from_predicate_type(t).is_some()
        })
        .await?;
        Ok::<_, anyhow::Error>((image.clone(), found))
    })?;
    let shown = reference
        .with_digest(image.manifest.digest.clone())
        .to_string();
    let mut first_failure = None;
    for s in &found {
        let statement = Statement::parse(&s.bytes).with_context(|| {
            format!(
                "BuildKit's statement {} (attestation manifest {})",
                s.layer.descriptor.digest, s.manifest
            )
        })?;
        match requirements.judge_statement(&statement, &image.manifest.digest) {
            Ok(()) => {
                return passed(
                    args,
                    &shown,
                    &statement,
                    &s.bytes,
                    &format!(
                        "BuildKit's unsigned statement {} in attestation manifest {}",
                        s.layer.descriptor.digest, s.manifest
                    ),
                );
            }
            Err(Judgement::Unusable(e)) => return Err(e.into()),
            Err(Judgement::Failed(f)) => {
                first_failure.get_or_insert(f);
            }
        }
    }
    let failure = first_failure.unwrap_or_else(|| ProvenanceFailure {
        code: kibaship_cosign::ReasonCode::AttestationMissing,
        field: "attestation manifest".into(),
        wanted: "an SLSA provenance statement".into(),
        got: "none (built without --opt attest:provenance=...?)".into(),
    });
    failed(args, &shown, &failure)?;
    Ok(ExitCode::from(1))
}

fn passed(
    args: &Args,
    image: &str,
    statement: &Statement,
    bytes: &[u8],
    how: &str,
) -> anyhow::Result<ExitCode> {
    match args.flags.output {
        OutputFormat::Text => {
            eprintln!(
                "VERIFIED {} provenance of {}: {}",
                Escaped(&statement.predicate_type),
                Escaped(image),
                Escaped(how)
            );
            if args.print_provenance {
                print_line(String::from_utf8_lossy(bytes))?;
            }
        }
        OutputFormat::Json => {
            let mut out = serde_json::json!({
                "image": image,
                "verified": true,
                "predicateType": statement.predicate_type,
                "source": how,
            });
            if args.print_provenance {
                out["statement"] = serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null);
            }
            print_line(serde_json::to_string_pretty(&out)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn failed(args: &Args, image: &str, failure: &ProvenanceFailure) -> anyhow::Result<()> {
    match args.flags.output {
        OutputFormat::Text => eprintln!(
            "NOT VERIFIED provenance of {}: {}",
            Escaped(image),
            Escaped(&failure.to_string())
        ),
        OutputFormat::Json => {
            let out = serde_json::json!({"image": image, "verified": false, "failure": failure});
            print_line(serde_json::to_string_pretty(&out)?)?;
        }
    }
    Ok(())
}
