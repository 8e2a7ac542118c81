//! Printable, bounded text of a string someone else wrote (a field of an SBOM or a provenance statement, a
//! pattern from a policy file, an image reference from a Pod), for the messages and reports that quote it.
//!
//! Such text reaches terminals, logs and kubectl's output. A raw control character in it could rewrite what a
//! terminal shows (`ESC [`, and `U+009B`, the one-character form some terminals honour), break a report that
//! promises one line per error, or hide what follows it (`\r`). [`printable`] escapes every character
//! [`char::is_control`] names (C0, DEL and C1) as Rust writes it (`\n`, `\u{1b}`, `\u{7f}`) and keeps everything
//! else, other scripts included, as it is; it also bounds the length, so a value of megabytes is not repeated
//! in full. The one implementation of this in the workspace.

/// `text` with each control character escaped (`\n`, `\t`, `\u{1b}`, `\u{9b}`, ...) and, when it has more than
/// `max_chars` characters, cut after the first `max_chars` of them with `…` added. The escapes of the kept
/// characters are not counted: the result has at most `max_chars` characters of `text`.
pub fn printable(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut chars = text.chars();
    for c in chars.by_ref().take(max_chars) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Whether `text` has no control character: what [`printable`] returns always, and what a message that quotes
/// untrusted text must satisfy (the fuzz targets and tests check it).
pub fn is_printable(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("a\nb\tc", 100), "a\\nb\\tc");
        assert_eq!(printable("\u{1b}[31mred", 100), "\\u{1b}[31mred");
        assert_eq!(printable("del\u{7f}", 100), "del\\u{7f}");
        assert_eq!(printable("csi\u{9b}2J", 100), "csi\\u{9b}2J");
        assert_eq!(printable("\r\0", 100), "\\r\\u{0}");
        assert_eq!(printable("ä日本 \"quoted\" \\", 100), "ä日本 \"quoted\" \\");
        assert_eq!(printable("", 100), "");
    }

    #[test]
    fn long_text_is_cut_on_characters_not_bytes() {
        assert_eq!(printable("abcdef", 3), "abc…");
        assert_eq!(printable("abc", 3), "abc");
        assert_eq!(printable("日本語テキスト", 2), "日本…");
        assert_eq!(printable("\n\n\n\n", 2), "\\n\\n…");
        assert_eq!(printable("anything", 0), "…");
        assert_eq!(printable("", 0), "");
    }

    #[test]
    fn every_control_character_comes_out_printable() {
        let all: String = (0u32..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|c| c.is_control())
            .collect();
        assert_eq!(all.chars().count(), 65, "C0 (32), DEL and C1 (32)");
        let shown = printable(&all, usize::MAX);
        assert!(is_printable(&shown), "{shown}");
        assert!(!is_printable(&all));
    }
}
