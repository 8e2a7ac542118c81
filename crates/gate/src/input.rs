//! Reading the gate's own input files (policy, ignore files) with a size cap.
//!
//! The policy and the ignore files are small reviewed documents; a file above the cap is refused
//! before it is parsed, so a huge or endless input (a FIFO, `/dev/zero`) cannot exhaust memory.
use std::io::Read;
use std::path::Path;

use crate::error::GateError;

/// The most bytes a gate policy or ignore file may have (4 MiB: about 20,000 exceptions).
pub const MAX_INPUT_FILE_BYTES: u64 = 4 << 20;

/// Reads `path` as UTF-8 text, refusing a file of more than `limit` bytes. Reads at most
/// `limit + 1` bytes whatever the file is, so the check holds for pipes and devices too.
pub fn read_bounded(path: &Path, limit: u64) -> Result<String, GateError> {
    let file_name = || path.display().to_string();
    let file = std::fs::File::open(path).map_err(|error| GateError::InputRead {
        file: file_name(),
        error,
    })?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| GateError::InputRead {
            file: file_name(),
            error,
        })?;
    if bytes.len() as u64 > limit {
        return Err(GateError::InputTooLarge {
            file: file_name(),
            limit,
        });
    }
    String::from_utf8(bytes).map_err(|error| GateError::InputNotUtf8 {
        file: file_name(),
        offset: error.utf8_error().valid_up_to(),
    })
}

/// Refuses a policy or ignore file text above [`MAX_INPUT_FILE_BYTES`] (for callers that read
/// it some other way than [`read_bounded`]).
pub(crate) fn check_size(text: &str, file: &str) -> Result<(), GateError> {
    if text.len() as u64 > MAX_INPUT_FILE_BYTES {
        return Err(GateError::InputTooLarge {
            file: file.to_owned(),
            limit: MAX_INPUT_FILE_BYTES,
        });
    }
    Ok(())
}
