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

/// The error for a failed open or read of `path` (a `what`).
fn read_error<'a>(
    what: &'a str,
    path: &'a Path,
) -> impl Fn(std::io::Error) -> InputError + Copy + 'a {
    move |cause| InputError::Read {
        what: what.to_string(),
        path: path.to_path_buf(),
        cause,
    }
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
    let read_error = read_error(what, path);
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

/// Regular files at least this large are read by two threads, each filling its half of the buffer.
pub const READ_IN_HALVES_BYTES: u64 = 16 * 1024 * 1024;

/// Reads `path` (a `what`, named in errors), refusing more than `max` bytes.
///
/// A regular file of [`READ_IN_HALVES_BYTES`] or more (within `max`) is read by two threads at once, each into
/// its half of one buffer: most of such a read is the kernel giving the buffer fresh pages, and on the 2-vCPU
/// VMs we measure on a 50 MB SBOM took 31–36 ms on one thread, 15–20 ms on two. Should the file then turn out
/// shorter or longer than its size said, it is read again from the start as any other file is.
pub fn read_bounded(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, InputError> {
    let read_error = read_error(what, path);
    let opened = std::fs::File::open(path);
    let metadata = opened.as_ref().ok().and_then(|f| f.metadata().ok());
    if let (Ok(file), Some(metadata)) = (&opened, &metadata)
        && metadata.is_file()
        && (READ_IN_HALVES_BYTES..=max).contains(&metadata.len())
        && let Some(bytes) = read_in_halves(file, metadata.len()).map_err(read_error)?
    {
        return Ok(bytes);
    }
    // Sized from the file's length up front (capped): a large file is then read without the buffer being
    // doubled and copied on the way (with mimalloc, a 50 MB SBOM peaked at twice its size in memory).
    let expected = metadata.map_or(0, |m| m.len().min(max.saturating_add(1)));
    read_all(
        opened.map(|f| f.take(max.saturating_add(1))),
        path,
        what,
        max,
        usize::try_from(expected).unwrap_or(0),
    )
}

/// `len` bytes of `file` (from its start, whatever its position), read by this thread and a second one, each
/// into its half of the buffer; `None` if the file holds fewer or more than `len` bytes.
fn read_in_halves(file: &std::fs::File, len: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::os::unix::fs::FileExt;
    let Ok(size) = usize::try_from(len) else {
        return Ok(None);
    };
    // Zeroed memory fresh from the system is not written to here: the kernel's copy is the first touch.
    let mut bytes = vec![0u8; size];
    let middle = size / 2;
    let (first, second) = bytes.split_at_mut(middle);
    let read = std::thread::scope(|scope| {
        let other = scope.spawn(|| file.read_exact_at(second, middle as u64));
        let mine = file.read_exact_at(first, 0);
        let theirs = other
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the second reading thread panicked")));
        mine.and(theirs)
    });
    match read {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    // One more byte would mean the file grew since its size was taken.
    match file.read_exact_at(&mut [0u8; 1], len) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(Some(bytes)),
        Ok(()) => Ok(None),
        Err(e) => Err(e),
    }
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
        .map_err(read_error(what, path))?;
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
    fn a_large_file_is_read_in_halves_whole_and_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("large");
        // An odd length, so that the halves differ, and a pattern that shows a byte out of place.
        let len = usize::try_from(READ_IN_HALVES_BYTES).expect("size") + 4097;
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).expect("write");
        let read = read_bounded(&path, "SBOM", u64::MAX).expect("read");
        assert!(read == content, "the halves were put together wrongly");
        // Over the bound: refused, as a file read whole is.
        let err = read_bounded(&path, "SBOM", len as u64 - 1).expect_err("too large");
        assert!(matches!(err, InputError::TooLarge { .. }), "{err}");
        // Just under the size for halves: read whole, the same bytes.
        let small = dir.path().join("small");
        std::fs::write(&small, &content[..len - 4098]).expect("write");
        assert!(read_bounded(&small, "SBOM", u64::MAX).expect("read") == content[..len - 4098]);
    }

    #[test]
    fn a_file_of_another_size_than_expected_is_not_taken_from_the_halves() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("blob");
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 7) as u8).collect();
        std::fs::write(&path, &content).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        // The file grew after its size was taken (it has more than the size says), or shrank (it has less).
        assert!(read_in_halves(&file, 9_999).expect("read").is_none());
        assert!(read_in_halves(&file, 10_001).expect("read").is_none());
        assert_eq!(read_in_halves(&file, 10_000).expect("read"), Some(content));
    }

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
