//! The one way kibaverify reads a file named on its command line: bounded.
//!
//! The size is checked while reading, never only from metadata: `/dev/zero`, a FIFO or a file that grows
//! reports a size that says nothing about what a read returns. `-` reads standard input where a command
//! allows it.
use std::io::Read;
use std::path::Path;

use anyhow::{Context as _, bail};

/// Trusted roots, signing configs, CA bundles, annotation policies. (Keys: `kibaship_sign::MAX_KEY_FILE_BYTES`;
/// bundles: `kibaship_sigstore::MAX_BUNDLE_BYTES`.)
pub const MAX_CONFIG_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads `path` (a `what`, named in errors), refusing more than `max` bytes.
pub fn read_bounded(path: &Path, what: &str, max: u64) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max.saturating_add(1)).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() as u64 > max {
        bail!(
            "{what} {} is larger than the {max} bytes accepted",
            path.display()
        );
    }
    Ok(bytes)
}

/// As [`read_bounded`], with `-` meaning standard input.
pub fn read_bounded_or_stdin(path: &Path, what: &str, max: u64) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() != "-" {
        return read_bounded(path, what, max);
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} from stdin"))?;
    if bytes.len() as u64 > max {
        bail!("{what} on stdin is larger than the {max} bytes accepted");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_device_is_refused_at_the_limit() {
        let err = read_bounded(Path::new("/dev/zero"), "bundle", 4096).expect_err("endless");
        assert_eq!(
            err.to_string(),
            "bundle /dev/zero is larger than the 4096 bytes accepted"
        );
    }

    #[test]
    fn a_file_at_the_limit_is_read_and_one_byte_more_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("root.json");
        std::fs::write(&path, [b'x'; 10]).expect("write");
        assert_eq!(
            read_bounded(&path, "trusted root", 10)
                .expect("at limit")
                .len(),
            10
        );
        let err = read_bounded(&path, "trusted root", 9).expect_err("over");
        assert!(err.to_string().contains("trusted root"), "{err}");
        let err = read_bounded(&dir.path().join("missing"), "policy", 9).expect_err("missing");
        assert!(err.to_string().starts_with("cannot read policy "), "{err}");
    }
}
