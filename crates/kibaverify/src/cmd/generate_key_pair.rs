//! `kibaverify generate-key-pair`: a cosign-compatible key pair (`cosign.key` encrypted, `cosign.pub`).
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use kibaship_cli::terminal::print_line;
use kibaship_sign::SigningKey;

/// Writes `<prefix>.key` (PEM `ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt N=2^16) and `<prefix>.pub`.
///
/// The password comes from `COSIGN_PASSWORD` (which may be empty) or, on a terminal, a prompt (asked twice), as
/// for cosign; with neither, the command refuses to run rather than write an unprotected key.
#[derive(clap::Args)]
pub struct Args {
    /// Path prefix of the two files written.
    #[arg(long, default_value = "cosign")]
    output_key_prefix: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

/// Generates the pair and writes both files (the private key with mode 0600).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let password = crate::password::cosign_password(crate::password::PasswordFor::NewKey)?;
    let key_path = args.output_key_prefix.with_extension("key");
    let pub_path = args.output_key_prefix.with_extension("pub");
    for path in [&key_path, &pub_path] {
        if path.exists() && !args.force {
            anyhow::bail!(
                "{} already exists (use --force to overwrite)",
                path.display()
            );
        }
    }
    let key = SigningKey::generate()?;
    let private_pem = key.to_encrypted_pem(password.as_bytes())?;
    write_private(&key_path, private_pem.as_bytes())
        .with_context(|| format!("writing {}", key_path.display()))?;
    std::fs::write(&pub_path, key.public_key_pem()?)
        .with_context(|| format!("writing {}", pub_path.display()))?;
    let mut stderr = std::io::stderr();
    if stderr.is_terminal() {
        let _ = writeln!(stderr, "Private key written to {}", key_path.display());
    }
    print_line(pub_path.display())?;
    Ok(ExitCode::SUCCESS)
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}
