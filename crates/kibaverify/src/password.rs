//! The private-key password, as cosign takes it: `COSIGN_PASSWORD` (which may be empty), else a prompt on the
//! terminal (no echo), else a clear error. The password is never printed or put in an error.
use std::io::IsTerminal as _;

use zeroize::Zeroizing;

/// What the password is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordFor<'a> {
    /// Decrypting an existing key file (named).
    ExistingKey(&'a str),
    /// Encrypting a new key: asked twice on a terminal.
    NewKey,
}

/// Reads the password from `COSIGN_PASSWORD`, or prompts when stdin is a terminal.
pub fn cosign_password(purpose: PasswordFor<'_>) -> anyhow::Result<Zeroizing<String>> {
    if let Ok(password) = std::env::var("COSIGN_PASSWORD") {
        return Ok(Zeroizing::new(password));
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(match purpose {
            PasswordFor::ExistingKey(path) => format!(
                "key {path} is encrypted: set COSIGN_PASSWORD to its password (it may be empty), or run on a terminal to be asked"
            ),
            PasswordFor::NewKey => "set COSIGN_PASSWORD to the password for the new private key (it may be empty), or run on a terminal to be asked".to_string(),
        });
    }
    match purpose {
        PasswordFor::ExistingKey(path) => Ok(Zeroizing::new(rpassword::prompt_password(format!(
            "Enter password for private key {path}: "
        ))?)),
        PasswordFor::NewKey => {
            let first = Zeroizing::new(rpassword::prompt_password(
                "Enter password for private key: ",
            )?);
            let second = Zeroizing::new(rpassword::prompt_password(
                "Enter password for private key again: ",
            )?);
            if first != second {
                anyhow::bail!("the two passwords differ");
            }
            Ok(first)
        }
    }
}
