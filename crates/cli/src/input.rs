//! The one way kibaship's command lines read a file the user names: bounded.
//!
//! The size is checked while reading, never only from metadata: `/dev/zero`, a FIFO or a file that grows
//! reports a size that says nothing about what a read returns. `-` reads standard input where a command
//! allows it.
use std::io::Read;
use std::path::{Path, PathBuf};

/// Trusted roots, signing configs, CA bundles, annotation policies. (Keys: `kibaship_sign::MAX_KEY_FILE_BYTES`;
/// bundles: `kibaship_sigstore::MAX_BUNDLE_BYTES`.)
pub const MAX_CONFIG_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A file input that could not be read, or was larger than accepted. The message names the input and the file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Opening or reading failed.
    #[error("cannot read {what} {}: {cause}", path.display())]
    Read {
        what: String,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A text input that is not UTF-8.
    #[error("{what} {}: byte {offset}: not valid UTF-8", path.display())]
    NotUtf8 {
        what: String,
        path: PathBuf,
        offset: usize,
    },
    /// More bytes than `limit` (checked while reading, not from metadata).
    #[error("{what} {} is larger than the {limit} bytes accepted", path.display())]
    TooLarge {
        what: String,
        path: PathBuf,
        limit: u64,
    },
    /// The file's size or modification time after reading differs from before: what was read is not a
    /// consistent file.
    #[error("{what} {} changed while it was read ({change}): nothing was signed or verified", path.display())]
    Changed {
        what: String,
        path: PathBuf,
        change: String,
    },
}

/// How much of a streamed file is held at once.
pub const STREAM_CHUNK_BYTES: usize = 1024 * 1024;

/// Reads the regular file `path` (a `what`) once, in chunks of [`STREAM_CHUNK_BYTES`] handed to `chunk`, in
/// bounded memory, and returns its size. Its size and modification time are compared before and after: a file
/// that changed meanwhile (a build still writing it) is an error, as is one that is not a regular file.
pub fn stream_unchanged(
    path: &Path,
    what: &str,
    mut chunk: impl FnMut(&[u8]),
) -> Result<u64, InputError> {
    let read_error = |cause| InputError::Read {
        what: what.to_string(),
        path: path.to_path_buf(),
        cause,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let before = file.metadata().map_err(read_error)?;
    if !before.is_file() {
        return Err(read_error(std::io::Error::other("not a regular file")));
    }
    let mut buffer = vec![0u8; STREAM_CHUNK_BYTES];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        chunk(buffer.get(..n).unwrap_or_default());
        size += n as u64;
    }
    let after = std::fs::metadata(path).map_err(read_error)?;
    let changed = |change: String| InputError::Changed {
        what: what.to_string(),
        path: path.to_path_buf(),
        change,
    };
    if before.len() != size || after.len() != size {
        return Err(changed(format!(
            "{} bytes before, {size} read, {} after",
            before.len(),
            after.len()
        )));
    }
    if before.modified().ok() != after.modified().ok() {
        return Err(changed("modification time moved".into()));
    }
    Ok(size)
}

/// Reads `path` (a `what`, named in errors), refusing more than `max` bytes.
pub fn read_bounded(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, InputError> {
    let opened = std::fs::File::open(path);
    // Sized from the file's length up front (capped): a large file is then read without the buffer being
    // doubled and copied on the way (with mimalloc, a 50 MB SBOM peaked at twice its size in memory).
    let expected = opened
        .as_ref()
        .ok()
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len().min(max.saturating_add(1)));
    read_all(
        opened.map(|f| f.take(max.saturating_add(1))),
        path,
        what,
        max,
        usize::try_from(expected).unwrap_or(0),
    )
}

/// As [`read_bounded`], for a text file: UTF-8, or an error naming the first invalid byte.
pub fn read_text_bounded(path: &Path, what: &str, max: u64) -> Result<String, InputError> {
    String::from_utf8(read_bounded(path, what, max)?).map_err(|e| InputError::NotUtf8 {
        what: what.to_string(),
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// As [`read_bounded`], with `-` meaning standard input (named `stdin` in errors).
pub fn read_bounded_or_stdin(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, InputError> {
    if path.as_os_str() != "-" {
        return read_bounded(path, what, max);
    }
    let stdin = std::io::stdin().lock().take(max.saturating_add(1));
    read_all(Ok(stdin), Path::new("stdin"), what, max, 0)
}

fn read_all<R: Read>(
    reader: std::io::Result<R>,
    path: &Path,
    what: &str,
    max: u64,
    expected: usize,
) -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::with_capacity(expected);
    reader
        .and_then(|mut r| r.read_to_end(&mut bytes))
        .map_err(|cause| InputError::Read {
            what: what.to_string(),
            path: path.to_path_buf(),
            cause,
        })?;
    if bytes.len() as u64 > max {
        return Err(InputError::TooLarge {
            what: what.to_string(),
            path: path.to_path_buf(),
            limit: max,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_file_is_read_whole_in_chunks_and_devices_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("blob");
        let content: Vec<u8> = (0..STREAM_CHUNK_BYTES * 2 + 7).map(|i| i as u8).collect();
        std::fs::write(&path, &content).expect("write");
        let mut seen = Vec::new();
        let mut chunks = 0;
        let size = stream_unchanged(&path, "blob", |c| {
            chunks += 1;
            seen.extend_from_slice(c);
        })
        .expect("read");
        assert_eq!(size, content.len() as u64);
        assert_eq!(seen, content);
        assert_eq!(chunks, 3);
        let err = stream_unchanged(Path::new("/dev/zero"), "blob", |_| {}).expect_err("device");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn a_file_growing_while_streamed_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("blob");
        std::fs::write(&path, vec![1u8; STREAM_CHUNK_BYTES + 1]).expect("write");
        let mut appended = false;
        let err = stream_unchanged(&path, "blob", |_| {
            if !appended {
                appended = true;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .expect("open");
                std::io::Write::write_all(&mut f, b"more").expect("append");
            }
        })
        .expect_err("changed");
        assert!(matches!(err, InputError::Changed { .. }), "{err}");
        assert!(
            err.to_string().contains("changed while it was read"),
            "{err}"
        );
    }

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

    #[test]
    fn a_text_file_that_is_not_utf8_is_refused_naming_the_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, b"version: 1\n\xff\n").expect("write");
        let err = read_text_bounded(&path, "policy", 100).expect_err("not UTF-8");
        assert_eq!(
            err.to_string(),
            format!("policy {}: byte 11: not valid UTF-8", path.display())
        );
        std::fs::write(&path, b"version: 1\n").expect("write");
        assert_eq!(
            read_text_bounded(&path, "policy", 100).expect("text"),
            "version: 1\n"
        );
    }
}
