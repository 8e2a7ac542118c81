//! Paths inside the Tekton `output` workspace, and size-limited reads of the files the steps consume.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::error::StepError;
use crate::failure::FailureKind;

/// The app directory: `<source_dir>/<context_path>`, where `context_path` is relative, has no `..` and no
/// absolute or empty components other than `.`, and names an existing directory.
pub fn context_dir(source_dir: &Path, context_path: &str) -> Result<PathBuf, StepError> {
    let bad = |why: &str| StepError::BadParameter(format!("contextPath {context_path:?} {why}"));
    if context_path.is_empty() {
        return Err(bad("is empty (use \".\" for the repository root)"));
    }
    if context_path.contains(['\n', '\0']) {
        return Err(bad("contains a newline or NUL byte"));
    }
    let rel = Path::new(context_path);
    let mut out = source_dir.to_path_buf();
    for c in rel.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                return Err(bad("goes up with `..`: it must stay inside the repository"));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad(
                    "is absolute: it must be relative to the repository root",
                ));
            }
        }
    }
    // Symlinks in the cloned repository must not lead the build outside it.
    let canon_root = fs::canonicalize(source_dir).map_err(|source| StepError::ReadInput {
        what: "source directory",
        path: source_dir.to_path_buf(),
        kind: FailureKind::BadParameters,
        source,
    })?;
    let canon = fs::canonicalize(&out).map_err(|source| StepError::ReadInput {
        what: "contextPath directory",
        path: out.clone(),
        kind: FailureKind::BadParameters,
        source,
    })?;
    if !canon.starts_with(&canon_root) {
        return Err(bad("resolves (through a symlink) outside the repository"));
    }
    if !canon.is_dir() {
        return Err(bad("is not a directory"));
    }
    Ok(out)
}

/// Reads at most `limit` bytes of `path`; more is an error of `kind`.
pub fn read_limited(
    path: &Path,
    limit: usize,
    what: &'static str,
    kind: FailureKind,
) -> Result<Vec<u8>, StepError> {
    let io = |source| StepError::ReadInput {
        what,
        path: path.to_path_buf(),
        kind,
        source,
    };
    let file = fs::File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() > limit {
        return Err(StepError::ReadInput {
            what,
            path: path.to_path_buf(),
            kind,
            source: std::io::Error::other(format!("larger than {limit} bytes")),
        });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_paths_stay_inside_the_repository() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        fs::create_dir_all(repo.join("apps/web")).expect("mkdir");
        std::os::unix::fs::symlink(dir.path(), repo.join("escape")).expect("symlink");
        assert_eq!(context_dir(&repo, ".").expect("root"), repo);
        assert_eq!(
            context_dir(&repo, "./apps/web/").expect("sub"),
            repo.join("apps/web")
        );
        for (bad, why) in [
            ("", "empty"),
            ("../x", "`..`"),
            ("apps/../../x", "`..`"),
            ("/etc", "absolute"),
            ("escape", "outside"),
        ] {
            let err = context_dir(&repo, bad).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(context_dir(&repo, "missing").is_err());
    }
}
