//! `kibaverify version`: version, git commit, build date, Rust version and platform, as `cosign version` prints
//! them (text, or one JSON object with `--json`). The commit and date come from build.rs.
use std::process::ExitCode;

use kibaship_cli::terminal::print_line;

/// Arguments of `kibaverify version`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON object (`version`, `gitCommit`, `buildDate`, `rustVersion`, `platform`).
    #[arg(long)]
    pub json: bool,
}

/// What this binary is and how it was built.
#[derive(serde::Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// The crate's version (Cargo.toml).
    pub version: &'static str,
    /// `git rev-parse HEAD` at build time, or "unknown".
    pub git_commit: &'static str,
    /// `SOURCE_DATE_EPOCH` when set at build time, else the build time (RFC 3339, UTC).
    pub build_date: &'static str,
    /// `rustc --version` of the compiler that built it.
    pub rust_version: &'static str,
    /// `os/arch` (Rust's names: `linux/x86_64`, `linux/aarch64`).
    pub platform: String,
}

impl VersionInfo {
    /// This binary's facts.
    pub fn current() -> Self {
        VersionInfo {
            version: env!("CARGO_PKG_VERSION"),
            git_commit: env!("KIBAVERIFY_GIT_COMMIT"),
            build_date: env!("KIBAVERIFY_BUILD_DATE"),
            rust_version: env!("KIBAVERIFY_RUSTC_VERSION"),
            platform: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// Prints the version facts.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let info = VersionInfo::current();
    if args.json {
        print_line(serde_json::to_string_pretty(&info)?)?;
    } else {
        print_line(format!(
            "Version:      {}\nGitCommit:    {}\nBuildDate:    {}\nRustVersion:  {}\nPlatform:     {}",
            info.version, info.git_commit, info.build_date, info.rust_version, info.platform
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
