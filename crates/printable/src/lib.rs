//! Printable, bounded text of a string someone else wrote (a field of an SBOM or a provenance statement, a
//! pattern from a policy file, an image or container name from a Pod), for the messages, warnings, logs and
//! reports that quote it. The one implementation in the workspace.
//!
//! Such text reaches terminals, logs and kubectl's output. A raw control character in it could rewrite what a
//! terminal shows (`ESC [`, and `U+009B`, the one-character form some terminals honour), break a report that
//! promises one line per error, or hide what follows it (`\r`); bidirectional overrides and zero-width
//! characters reorder or hide text without being seen. [`escape_text`] writes each of them as `\u{hex}` and
//! keeps everything else, other scripts included, as it is; [`printable`] also bounds the length, so a value
//! of megabytes is not repeated in full.

/// Whether `c` is written as an escape instead of itself: every control character (Unicode category Cc: C0,
/// DEL and C1, which Kubernetes refuses in warnings) and the invisible characters that reorder or hide text in
/// a terminal (bidirectional overrides and isolates, zero-width characters, line and paragraph separators,
/// the byte order mark).
pub fn needs_escape(c: char) -> bool {
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

/// `text` with every character [`needs_escape`] selects written as `\u{hex}` (ESC becomes `\u{1b}`, a newline
/// `\u{a}`).
///
/// The result is printable, and escaping it again changes nothing. Backslashes are left as they are, so a
/// name that already contains the text `\u{1b}` reads the same as one that contained ESC: the result is for
/// people, not for parsing back.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// Pushes `c`, escaped if it [`needs_escape`]; returns how many characters were pushed.
fn push_escaped(out: &mut String, c: char) -> usize {
    if needs_escape(c) {
        let before = out.len();
        out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        out.len() - before
    } else {
        out.push(c);
        1
    }
}

/// `text` cut to at most `max_chars` characters (Unicode scalar values, which is how Kubernetes counts
/// warning length), ending in `…` when something was cut (the `…` is one of the `max_chars`).
pub fn cap_chars(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    if max_chars == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

/// `cap_chars(&escape_text(text), max_chars)`, without escaping more of `text` than can be kept: the text of
/// an input to quote in a message.
pub fn printable(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut written = 0usize;
    for c in text.chars() {
        if written > max_chars {
            break;
        }
        written += push_escaped(&mut out, c);
    }
    if written <= max_chars {
        return out;
    }
    // `out` is a prefix of the whole escaped text longer than `max_chars`: both are cut at the same place.
    cap_chars(&out, max_chars)
}

/// Whether `text` has no character [`needs_escape`] selects: what [`escape_text`] and [`printable`] return
/// always, and what a message that quotes untrusted text must satisfy (the fuzz targets and tests check it).
pub fn is_printable(text: &str) -> bool {
    !text.chars().any(needs_escape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_invisible_characters_are_escaped() {
        assert_eq!(escape_text("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(escape_text("x\ny\r\t"), "x\\u{a}y\\u{d}\\u{9}");
        assert_eq!(escape_text("del\u{7f}"), "del\\u{7f}");
        assert_eq!(escape_text("\u{202e}gpj.exe"), "\\u{202e}gpj.exe");
        assert_eq!(escape_text("a\u{200b}b\u{feff}"), "a\\u{200b}b\\u{feff}");
        assert_eq!(escape_text("\u{85}\u{9b}"), "\\u{85}\\u{9b}");
        assert_eq!(
            escape_text("registry.example/app:v1 é ✓ 日本 \"q\" \\"),
            "registry.example/app:v1 é ✓ 日本 \"q\" \\"
        );
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = escape_text("a\u{0}b\u{7f}c\u{2066}");
        assert_eq!(escape_text(&once), once);
        assert!(is_printable(&once));
    }

    #[test]
    fn caps_count_characters_not_bytes() {
        assert_eq!(cap_chars("ééé", 3), "ééé");
        assert_eq!(cap_chars("éééé", 3), "éé…");
        assert_eq!(cap_chars("abc", 1), "…");
        assert_eq!(cap_chars("abc", 0), "");
        assert_eq!(cap_chars("", 0), "");
    }

    /// `printable` is `cap_chars(escape_text(..))`, whatever is cut where.
    #[test]
    fn printable_is_escape_then_cap() {
        let texts = [
            "",
            "abc",
            "日本語テキスト",
            "a\u{1b}b\nc",
            "\n\n\n\n",
            "x\u{202e}yz\u{9b}",
            "abcdef",
        ];
        for text in texts {
            for max in 0..30 {
                assert_eq!(
                    printable(text, max),
                    cap_chars(&escape_text(text), max),
                    "{text:?} {max}"
                );
            }
        }
        assert_eq!(printable("abcdef", 4), "abc…");
        assert_eq!(printable("a\nb", 100), "a\\u{a}b");
    }

    #[test]
    fn every_control_character_comes_out_printable() {
        let all: String = (0u32..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|c| c.is_control())
            .collect();
        assert_eq!(all.chars().count(), 65, "C0 (32), DEL and C1 (32)");
        assert!(!is_printable(&all));
        assert!(is_printable(&printable(&all, usize::MAX)));
    }
}
