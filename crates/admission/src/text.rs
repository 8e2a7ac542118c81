//! Text that reaches people: escaping of characters a terminal would act on, and length caps (kibaship-printable's).

use std::fmt;

pub use kibaship_printable::escape_text;
pub(crate) use kibaship_printable::{needs_escape, printable};

/// A user-supplied value inside an error message: escaped, and cut to 128 characters.
pub(crate) struct Shown<'a>(pub(crate) &'a str);

/// Longest user-supplied value quoted in an error message.
const SHOWN_CHARS: usize = 128;

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&printable(self.0, SHOWN_CHARS))
    }
}
