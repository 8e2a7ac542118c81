//! `kibaverify import-key-pair`: a plain PEM private key (PKCS#1, SEC1, PKCS#8) re-written in cosign's encrypted
//! format, as `cosign import-key-pair` does.
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use kibaship_cli::input::read_bounded;
use kibaship_sign::{MAX_KEY_FILE_BYTES, SigningKey};

use super::generate_key_pair::{KeyPairFiles, write_key_pair};

/// Imports a PEM RSA or EC private key: writes `<prefix>.key` (PEM `ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt
/// N=2^16) and `<prefix>.pub`.
///
/// Takes what `cosign import-key-pair` takes (PKCS#1 `RSA PRIVATE KEY`, SEC1 `EC PRIVATE KEY`, PKCS#8 `PRIVATE
/// KEY`) and refuses what it refuses, with its reasons: ECDSA other than P-256/P-384/P-521, RSA other than 2048,
/// 3072 or 4096 bits or with an exponent other than 65537, known-weak RSA keys, encrypted PEM input. Ed25519 keys
/// are refused (cosign signs with them as Ed25519ph, which kibaverify cannot). The password comes from
/// `COSIGN_PASSWORD` (which may be empty) or, on a terminal, a prompt (asked twice). Nothing is written when
/// anything fails.
#[derive(clap::Args)]
pub struct Args {
    /// The PEM private key to import.
    #[arg(long, short = 'k', value_name = "FILE")]
    key: PathBuf,
    /// Path prefix of the two files written.
    #[arg(long, short = 'o', default_value = "import-cosign")]
    output_key_prefix: PathBuf,
    /// Overwrite an existing `<prefix>.key` without asking (as cosign's `--yes`). Without it, an existing file
    /// is overwritten only when confirmed on a terminal.
    #[arg(long, short = 'y')]
    yes: bool,
}

/// Reads and checks the key, confirms any overwrite, asks for the password and writes both files.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let pem = read_bounded(&args.key, "private key", MAX_KEY_FILE_BYTES)?;
    let key = SigningKey::import_pem(&pem)
        .with_context(|| format!("cannot import {}", args.key.display()))?;
    let files = KeyPairFiles::new(&args.output_key_prefix);
    if files.private.exists() && !args.yes {
        confirm_overwrite(&files.private)?;
    }
    let password = crate::password::cosign_password(crate::password::PasswordFor::NewKey)?;
    write_key_pair(&files, &key, password.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal whether to overwrite `path`, as cosign does (`[y/N]`); refuses without a terminal.
fn confirm_overwrite(path: &Path) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "{} already exists (pass --yes to overwrite it)",
            path.display()
        );
    }
    let mut stderr = std::io::stderr();
    write!(
        stderr,
        "File {} already exists. Overwrite?\nAre you sure you would like to continue? [y/N] ",
        path.display()
    )?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    if !answer
        .trim_end_matches(['\r', '\n'])
        .eq_ignore_ascii_case("y")
    {
        anyhow::bail!("{} not overwritten: declined", path.display());
    }
    Ok(())
}
