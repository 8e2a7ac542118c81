//! The size cap of the gate's own input files (policy, ignore files).
//!
//! The policy and the ignore files are small reviewed documents; a text above the cap is refused
//! before it is parsed. Front ends read the files with `kibaship_cli::input` at this cap, so a
//! huge or endless input (a FIFO, `/dev/zero`) cannot exhaust memory either.

use crate::error::GateError;

/// The most bytes a gate policy or ignore file may have (4 MiB: about 20,000 exceptions).
pub const MAX_INPUT_FILE_BYTES: u64 = 4 << 20;

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
