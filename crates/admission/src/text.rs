//! Text that reaches people: escaping of characters a terminal would act on, and length caps.

use std::fmt;

/// Whether `c` is written as an escape instead of itself: every control character (Unicode category Cc,
/// which Kubernetes refuses in warnings) and the invisible characters that reorder or hide text in a
/// terminal (bidirectional overrides and isolates, zero-width characters, line and paragraph separators,
/// the byte order mark).
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `text` with every character [`needs_escape`] selects written as `\u{hex}` (ESC becomes `\u{1b}`).
///
/// The result is printable, and escaping it again changes nothing. Image names, container names and other
/// values that come from users go through this before they are put into a message, a warning or a log
/// line. Backslashes are left as they are, so a name that already contains the text `\u{1b}` reads the
/// same as one that contained ESC: the result is for people, not for parsing back.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped(&mut out, text);
    out
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
}

/// `text` cut to at most `max_chars` characters (Unicode scalar values, which is how Kubernetes counts
/// warning length), ending in `…` when something was cut.
pub(crate) fn cap_chars(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    if max_chars == 0 {
        return String::new();
    }
    let keep = max_chars - 1;
    let mut out: String = text.chars().take(keep).collect();
    out.push('…');
    out
}

/// A user-supplied value inside an error message: escaped, and cut to 128 characters.
pub(crate) struct Shown<'a>(pub(crate) &'a str);

/// Longest user-supplied value quoted in an error message.
const SHOWN_CHARS: usize = 128;

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&cap_chars(&escape_text(self.0), SHOWN_CHARS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_invisible_characters_are_escaped() {
        assert_eq!(escape_text("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(escape_text("x\ny\r\t"), "x\\u{a}y\\u{d}\\u{9}");
        assert_eq!(escape_text("\u{202e}gpj.exe"), "\\u{202e}gpj.exe");
        assert_eq!(escape_text("a\u{200b}b\u{feff}"), "a\\u{200b}b\\u{feff}");
        assert_eq!(escape_text("\u{85}\u{9b}"), "\\u{85}\\u{9b}");
        assert_eq!(
            escape_text("registry.example/app:v1 é ✓"),
            "registry.example/app:v1 é ✓"
        );
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = escape_text("a\u{0}b\u{7f}c\u{2066}");
        assert_eq!(escape_text(&once), once);
        assert!(!once.chars().any(needs_escape));
    }

    #[test]
    fn caps_count_characters_not_bytes() {
        assert_eq!(cap_chars("ééé", 3), "ééé");
        assert_eq!(cap_chars("éééé", 3), "éé…");
        assert_eq!(cap_chars("abc", 1), "…");
        assert_eq!(cap_chars("abc", 0), "");
        assert_eq!(cap_chars("", 0), "");
    }
}
