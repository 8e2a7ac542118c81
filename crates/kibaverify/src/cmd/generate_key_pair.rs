//! `kibaverify generate-key-pair`: a cosign-compatible key pair (`cosign.key` encrypted, `cosign.pub`).
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
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
    let files = KeyPairFiles::new(&args.output_key_prefix);
    for path in [&files.private, &files.public] {
        if path.exists() && !args.force {
            anyhow::bail!(
                "{} already exists (use --force to overwrite)",
                path.display()
            );
        }
    }
    let key = SigningKey::generate()?;
    write_key_pair(&files, &key, password.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Where a key pair goes: `<prefix>.key` and `<prefix>.pub`.
pub struct KeyPairFiles {
    /// The encrypted private key.
    pub private: PathBuf,
    /// The public key.
    pub public: PathBuf,
}

impl KeyPairFiles {
    /// The two files of `prefix`: `.key` and `.pub` appended, as cosign appends them (`my.team` gives
    /// `my.team.key`, not `my.key`).
    pub fn new(prefix: &Path) -> Self {
        let with = |extension: &str| {
            let mut path = prefix.as_os_str().to_os_string();
            path.push(extension);
            PathBuf::from(path)
        };
        Self {
            private: with(".key"),
            public: with(".pub"),
        }
    }
}

/// Writes `key` encrypted with `password` (mode 0600) and its public key, both encoded before either file is
/// touched; when the public key cannot be written the private key just written is removed. Prints the public
/// key's path (and, on a terminal, the private key's).
pub fn write_key_pair(
    files: &KeyPairFiles,
    key: &SigningKey,
    password: &[u8],
) -> anyhow::Result<()> {
    let private_pem = key.to_encrypted_pem(password)?;
    let public_pem = key.public_key_pem()?;
    write_private(&files.private, private_pem.as_bytes())
        .with_context(|| format!("writing {}", files.private.display()))?;
    if let Err(err) = std::fs::write(&files.public, public_pem) {
        let _ = std::fs::remove_file(&files.private);
        return Err(err).with_context(|| format!("writing {}", files.public.display()));
    }
    let mut stderr = std::io::stderr();
    if stderr.is_terminal() {
        let _ = writeln!(stderr, "Private key written to {}", files.private.display());
    }
    print_line(files.public.display())?;
    Ok(())
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
