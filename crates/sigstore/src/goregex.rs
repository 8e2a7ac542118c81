//! Go `regexp` (RE2) syntax, as cosign's `--certificate-identity-regexp` and `--certificate-oidc-issuer-regexp`
//! take it, translated into the `regex` crate's syntax with Go's meaning.
//!
//! cosign compiles these patterns with Go's `regexp.Compile` and matches with `MatchString` (unanchored). The two
//! syntaxes mostly agree; where they differ, the translation keeps Go's meaning:
//! - `\Q...\E` (literal text; to the end without `\E`) becomes escaped literals;
//! - `\d \D \s \S \w \W`, `\b \B` and their forms in classes are ASCII-only in Go (`\s` is `[\t\n\f\r ]`), Unicode
//!   in Rust: they become explicit ASCII classes and `(?-u:\b)`;
//! - octal escapes (`\12`, `\0`, `\101`) become `\x{..}`; an escaped punctuation character is always a literal
//!   (Rust reads `\<` and `\>` as word boundaries);
//! - `[`, `&`, `~` and `-` inside a class are literals in Go (Rust nests classes and has `&&`, `--`, `~~`), and `{`
//!   that does not start a valid repeat is a literal `{` in Go;
//! - a repetition right after a flag group (`a(?i)*`) repeats the atom before it, as in Go; capture names are
//!   dropped (only whether a pattern matches counts, and Go allows a name twice);
//! - what Go refuses is refused, naming the construct: `\C` (any byte), backreferences, lookaround, `\Z`, flags
//!   other than `i m s U`, nested repetition operators (`a**`, `a*??`), repeat counts above 1000 (also nested:
//!   their product), Unicode class names Go does not know (`\p{gc=L}`, `\p{Alphabetic}`, `\p{Old_Italic}`),
//!   unknown escapes.

use std::fmt;

/// Go's limit on a repeat count, and on the product of nested repeat counts.
const MAX_REPEAT: u32 = 1000;

/// Why a Go regular expression was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegexError {
    /// Go's `regexp` refuses the pattern (or a construct Rust cannot express with Go's meaning).
    #[error("invalid Go regular expression {pattern:?}: {construct} at byte {at}: {reason}")]
    Unsupported {
        /// The whole pattern.
        pattern: String,
        /// The construct, as written.
        construct: String,
        /// Its byte offset in the pattern.
        at: usize,
        /// Why.
        reason: String,
    },
    /// The translated pattern does not compile (a syntax error both engines share).
    #[error("invalid Go regular expression {pattern:?}: {reason}")]
    Invalid {
        /// The whole pattern.
        pattern: String,
        /// The `regex` crate's reason, on one line (its own text spans several lines, with the translated
        /// pattern and a caret under the fault).
        reason: String,
    },
}

/// A compiled Go regular expression: matches as Go's `regexp.MatchString` does (unanchored unless the pattern
/// anchors itself).
#[derive(Clone)]
pub struct GoRegex(Box<Compiled>);

#[derive(Clone)]
struct Compiled {
    pattern: String,
    regex: regex::Regex,
}

impl fmt::Debug for GoRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GoRegex").field(&self.0.pattern).finish()
    }
}

impl GoRegex {
    /// Compiles `pattern` in Go's syntax.
    pub fn new(pattern: &str) -> Result<Self, RegexError> {
        let translated = translate(pattern)?;
        let regex = regex::Regex::new(&translated).map_err(|e| RegexError::Invalid {
            pattern: pattern.to_string(),
            reason: one_line_reason(&e),
        })?;
        Ok(GoRegex(Box::new(Compiled {
            pattern: pattern.to_string(),
            regex,
        })))
    }

    /// The pattern as given (Go syntax).
    pub fn as_str(&self) -> &str {
        &self.0.pattern
    }

    /// The pattern in the `regex` crate's syntax.
    pub fn translated(&self) -> &str {
        self.0.regex.as_str()
    }

    /// Whether the pattern matches anywhere in `text` (Go's `MatchString`).
    pub fn is_match(&self, text: &str) -> bool {
        self.0.regex.is_match(text)
    }
}

/// Where a repetition operator may follow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    /// Nothing to repeat yet (start, `(`, `|`): left to the regex crate, which refuses as Go does.
    Nothing,
    /// An atom.
    Atom,
    /// A repetition operator (only a lazy `?` may follow).
    Repeat,
    /// A lazy repetition (nothing may follow it).
    Lazy,
}

struct Translator<'a> {
    pattern: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
    out: String,
    after: After,
    /// Per open group: the largest product of counted repeats inside it so far, and in the current atom.
    weights: Vec<u32>,
    /// Weight of the last atom (a group's inner weight, else 1).
    last_weight: u32,
    /// Per open group: where it starts in `out`.
    group_starts: Vec<usize>,
    /// Where the last atom (and its repetitions) starts in `out`.
    atom_start: usize,
    /// Flag groups `(?i)` not yet written: in Go a repetition right after one applies to the atom before it
    /// (`a(?i)*` is `a*` then `i`), which the regex crate refuses; they are written before the next other token.
    pending_flags: String,
    /// Whether a flag group came since the last atom or repetition (Go then starts a new repetition: `a*(?i)*`).
    after_flags: bool,
}

/// Translates Go `regexp` syntax into the `regex` crate's syntax with the same meaning.
/// The `regex` crate's reason for refusing a pattern, on one line: its last line (`unclosed group`), which
/// names the fault; the lines before it repeat the (translated) pattern and point a caret at it.
fn one_line_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    kibaship_printable::printable(last.strip_prefix("error: ").unwrap_or(last), 200)
}

pub(crate) fn translate(pattern: &str) -> Result<String, RegexError> {
    let mut t = Translator {
        pattern,
        chars: pattern.char_indices().collect(),
        i: 0,
        out: String::with_capacity(pattern.len() + 16),
        after: After::Nothing,
        weights: vec![1],
        last_weight: 1,
        group_starts: Vec::new(),
        atom_start: 0,
        pending_flags: String::new(),
        after_flags: false,
    };
    t.run()?;
    Ok(t.out)
}

fn is_ascii_punct(c: char) -> bool {
    c.is_ascii() && !c.is_ascii_alphanumeric()
}

/// A character as a literal in the `regex` crate's syntax, outside or inside a class: its meta characters escaped,
/// control characters as `\x{..}`, anything else as itself (`\<` would be a word boundary there).
fn literal(c: char) -> String {
    if c.is_control() {
        format!("\\x{{{:X}}}", c as u32)
    } else {
        regex::escape(c.encode_utf8(&mut [0; 4]))
    }
}

const ASCII_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

impl Translator<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).map(|&(_, c)| c)
    }

    fn offset(&self, index: usize) -> usize {
        self.chars
            .get(index)
            .map_or(self.pattern.len(), |&(at, _)| at)
    }

    /// The pattern text from char index `from` to `to` (exclusive).
    fn text(&self, from: usize, to: usize) -> &str {
        &self.pattern[self.offset(from)..self.offset(to)]
    }

    fn refuse(&self, from: usize, to: usize, reason: impl Into<String>) -> RegexError {
        RegexError::Unsupported {
            pattern: self.pattern.to_string(),
            // Both quote the pattern: printable, as the message may reach a terminal.
            construct: format!(
                "`{}`",
                kibaship_printable::printable(self.text(from, to.min(self.chars.len())), 100)
            ),
            at: self.offset(from),
            reason: kibaship_printable::printable(&reason.into(), 200),
        }
    }

    fn atom(&mut self, text: &str) {
        self.atom_start = self.out.len();
        self.out.push_str(text);
        self.after = After::Atom;
        self.last_weight = 1;
    }

    fn push_group(&mut self, text: &str) {
        self.group_starts.push(self.out.len());
        self.out.push_str(text);
        self.weights.push(1);
        self.after = After::Nothing;
    }

    /// Whether a flag group without a body, `(?i)` or `(?i-s)`, starts at the cursor.
    fn at_bare_flag_group(&self) -> bool {
        if self.peek(0) != Some('(') || self.peek(1) != Some('?') {
            return false;
        }
        let mut k = 2;
        while let Some(c) = self.peek(k) {
            match c {
                'i' | 'm' | 's' | 'U' | '-' => k += 1,
                ')' => return true,
                _ => return false,
            }
        }
        false
    }

    fn flush_flags(&mut self) {
        self.out.push_str(&std::mem::take(&mut self.pending_flags));
        self.after_flags = false;
    }

    fn run(&mut self) -> Result<(), RegexError> {
        while let Some(c) = self.peek(0) {
            let start = self.i;
            let repetition =
                matches!(c, '*' | '+' | '?') || (c == '{' && self.repeat_count().is_some());
            if !repetition && !self.at_bare_flag_group() {
                self.flush_flags();
            } else if self.after_flags {
                // Go: a repetition after a flag group repeats the atom before it, even an already repeated one.
                self.after_flags = false;
                if matches!(self.after, After::Repeat | After::Lazy) {
                    self.out.insert_str(self.atom_start, "(?:");
                    self.out.push(')');
                    self.after = After::Atom;
                }
            }
            match c {
                '\\' => self.escape()?,
                '[' => {
                    let class = self.class()?;
                    self.atom(&class);
                }
                '(' => self.open_group()?,
                ')' => {
                    self.i += 1;
                    // An unbalanced `)` is left to the regex crate, which refuses it as Go does.
                    self.atom_start = self.group_starts.pop().unwrap_or(self.out.len());
                    self.out.push(')');
                    let inner = if self.weights.len() > 1 {
                        self.weights.pop().unwrap_or(1)
                    } else {
                        1
                    };
                    self.after = After::Atom;
                    self.last_weight = inner;
                }
                '|' => {
                    self.i += 1;
                    self.out.push('|');
                    self.after = After::Nothing;
                }
                '*' | '+' | '?' => {
                    self.i += 1;
                    match self.after {
                        After::Repeat if c == '?' => self.after = After::Lazy,
                        After::Repeat | After::Lazy => {
                            return Err(self.refuse(
                                start - 1,
                                start + 1,
                                "nested repetition operators are refused by Go's regexp",
                            ));
                        }
                        _ => self.after = After::Repeat,
                    }
                    self.out.push(c);
                }
                '{' => match self.repeat_count() {
                    Some((end, min, max)) => {
                        if matches!(self.after, After::Repeat | After::Lazy) {
                            return Err(self.refuse(
                                start,
                                end,
                                "nested repetition operators are refused by Go's regexp",
                            ));
                        }
                        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
                            return Err(self.refuse(
                                start,
                                end,
                                "Go's regexp refuses repeat counts above 1000",
                            ));
                        }
                        if max.is_some_and(|m| m < min) {
                            return Err(self.refuse(
                                start,
                                end,
                                "the maximum is below the minimum",
                            ));
                        }
                        // Go bounds the product of nested counted repeats (`(a{500}){3}` is refused).
                        if min >= 2 || max.is_some_and(|m| m >= 2) {
                            let m = max.unwrap_or(min);
                            let weight = if m == 0 {
                                1
                            } else {
                                m.saturating_mul(self.last_weight)
                            };
                            if weight > MAX_REPEAT {
                                return Err(self.refuse(
                                    start,
                                    end,
                                    "Go's regexp refuses nested repeat counts whose product exceeds 1000",
                                ));
                            }
                            self.last_weight = weight;
                        }
                        let text = self.text(start, end).to_string();
                        self.out.push_str(&text);
                        self.i = end;
                        self.after = After::Repeat;
                    }
                    None => {
                        self.i += 1;
                        self.atom("\\{");
                    }
                },
                _ => {
                    self.i += 1;
                    let lit = match c {
                        '}' | ']' => format!("\\{c}"),
                        '^' | '$' | '.' => c.to_string(),
                        _ => literal(c),
                    };
                    if c == '^' || c == '$' {
                        self.atom_start = self.out.len();
                        self.out.push_str(&lit);
                        self.after = After::Atom;
                        self.last_weight = 1;
                    } else {
                        self.atom(&lit);
                    }
                }
            }
            if self.after == After::Atom || self.after == After::Repeat || self.after == After::Lazy
            {
                let w = self.last_weight;
                if let Some(top) = self.weights.last_mut() {
                    *top = (*top).max(w);
                }
            }
        }
        self.flush_flags();
        Ok(())
    }

    /// `{n}`, `{n,}` or `{n,m}` at the cursor: (end index, min, max); `None` if it is a literal `{` in Go.
    fn repeat_count(&self) -> Option<(usize, u32, Option<u32>)> {
        let mut j = self.i + 1;
        let number = |j: &mut usize| -> Option<u32> {
            let from = *j;
            while self.chars.get(*j).is_some_and(|(_, c)| c.is_ascii_digit()) {
                *j += 1;
            }
            // Go reads no number with a leading zero: `a{01}` is literal text.
            if *j == from || (*j - from >= 2 && self.chars[from].1 == '0') {
                return None;
            }
            // Go refuses counts above 1000; anything longer than 8 digits saturates (refused below).
            Some(self.text(from, *j).parse::<u32>().unwrap_or(u32::MAX))
        };
        let min = number(&mut j)?;
        let max = match self.chars.get(j).map(|&(_, c)| c) {
            Some('}') => Some(min),
            Some(',') => {
                j += 1;
                if self.chars.get(j).map(|&(_, c)| c) == Some('}') {
                    None
                } else {
                    Some(number(&mut j)?)
                }
            }
            _ => return None,
        };
        (self.chars.get(j).map(|&(_, c)| c) == Some('}')).then_some((j + 1, min, max))
    }

    fn open_group(&mut self) -> Result<(), RegexError> {
        let start = self.i;
        if self.peek(1) != Some('?') {
            self.i += 1;
            self.push_group("(");
            return Ok(());
        }
        // Named groups: (?P<name>re), (?<name>re).
        let name_from = match (self.peek(2), self.peek(3)) {
            (Some('P'), Some('<')) => Some(self.i + 4),
            (Some('<'), Some(c)) if c != '=' && c != '!' => Some(self.i + 3),
            _ => None,
        };
        if let Some(from) = name_from {
            let mut j = from;
            while self
                .chars
                .get(j)
                .is_some_and(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
            {
                j += 1;
            }
            if j == from || self.chars.get(j).map(|&(_, c)| c) != Some('>') {
                return Err(self.refuse(
                    start,
                    j + 1,
                    "a capture name must be letters, digits or `_` (Go's regexp)",
                ));
            }
            // Only whether it matches counts: the name is dropped (Go allows a name twice, the regex crate not).
            self.push_group("(");
            self.i = j + 1;
            return Ok(());
        }
        // Flags: (?flags) or (?flags:re), flags from `i m s U` with at most one `-`.
        let mut j = self.i + 2;
        let mut negated = false;
        let mut flags_after_minus = 0;
        loop {
            match self.chars.get(j).map(|&(_, c)| c) {
                Some('i' | 'm' | 's' | 'U') => {
                    if negated {
                        flags_after_minus += 1;
                    }
                }
                Some('-') if !negated => negated = true,
                Some(c @ (':' | ')')) => {
                    if negated && flags_after_minus == 0 {
                        return Err(self.refuse(
                            start,
                            j + 1,
                            "a `-` in a flag group must be followed by a flag (Go's regexp)",
                        ));
                    }
                    let flags = normalize_flags(self.text(self.i + 2, j));
                    if c == ':' {
                        self.push_group(&format!("(?{flags}:"));
                    } else {
                        if !flags.is_empty() {
                            self.pending_flags.push_str(&format!("(?{flags})"));
                        }
                        self.after_flags = true;
                    }
                    self.i = j + 1;
                    return Ok(());
                }
                Some(c) => {
                    let reason = match c {
                        '=' | '!' | '<' => "lookaround assertions are not supported by Go's regexp",
                        'P' => "Go's regexp supports only `(?P<name>...)` among the `(?P` forms",
                        '#' => "comments are not supported by Go's regexp",
                        'x' | 'u' | 'R' => {
                            "not a flag of Go's regexp (it has `i`, `m`, `s` and `U`)"
                        }
                        _ => {
                            "not a group syntax or flag of Go's regexp (flags are `i`, `m`, `s`, `U`)"
                        }
                    };
                    return Err(self.refuse(start, j + 1, reason));
                }
                None => {
                    return Err(self.refuse(start, j, "unterminated group (Go's regexp)"));
                }
            }
            j += 1;
        }
    }

    /// An escape outside a class.
    fn escape(&mut self) -> Result<(), RegexError> {
        let start = self.i;
        let Some(c) = self.peek(1) else {
            return Err(self.refuse(start, start + 1, "trailing backslash"));
        };
        match c {
            'Q' => {
                // Literal text up to `\E` or the end.
                let from = self.i + 2;
                let mut j = from;
                while j < self.chars.len()
                    && !(self.chars[j].1 == '\\'
                        && self.chars.get(j + 1).map(|&(_, c)| c) == Some('E'))
                {
                    j += 1;
                }
                let text: String = self.chars[from..j].iter().map(|&(_, c)| c).collect();
                self.i = (j + 2).min(self.chars.len());
                // Like Go, each rune is a literal: a following operator applies to the last one only.
                for ch in text.chars() {
                    self.atom(&literal(ch));
                }
                return Ok(());
            }
            'C' => {
                return Err(self.refuse(
                    start,
                    start + 2,
                    "Go's regexp does not support `\\C` (any single byte)",
                ));
            }
            'A' | 'z' => {
                self.i += 2;
                self.atom_start = self.out.len();
                self.out.push('\\');
                self.out.push(c);
                self.after = After::Atom;
                self.last_weight = 1;
                return Ok(());
            }
            'b' | 'B' => {
                // Go's word boundaries are ASCII-only.
                self.i += 2;
                self.atom_start = self.out.len();
                self.out.push_str(&format!("(?-u:\\{c})"));
                self.after = After::Atom;
                self.last_weight = 1;
                return Ok(());
            }
            'p' | 'P' => {
                let class = self.unicode_class()?;
                self.atom(&class);
                return Ok(());
            }
            _ => {}
        }
        if let Some(class) = perl_class(c) {
            self.i += 2;
            self.atom(&format!("[{class}]"));
            return Ok(());
        }
        let ch = self.escaped_char()?;
        self.atom(&literal(ch));
        Ok(())
    }

    /// `\pX`, `\p{Name}`, `\PX`, `\P{Name}` at the cursor, checked as Go checks the name's shape.
    fn unicode_class(&mut self) -> Result<String, RegexError> {
        let start = self.i;
        let sign = self.peek(1).unwrap_or('p');
        match self.peek(2) {
            Some('{') => {
                let from = self.i + 3;
                let mut j = from;
                while j < self.chars.len() && self.chars[j].1 != '}' {
                    j += 1;
                }
                if j >= self.chars.len() {
                    return Err(self.refuse(start, j, "missing `}` (Go's regexp)"));
                }
                let name = self.text(from, j).to_string();
                let bare = name.strip_prefix('^').unwrap_or(&name);
                let canonical = canonical_class_name(bare);
                if GO_UNICODE_CLASSES.binary_search(&canonical.as_str()).is_err() {
                    return Err(self.refuse(
                        start,
                        j + 1,
                        "not a Unicode class Go's regexp knows (its category and script names, e.g. `L`, `Lu`, \
                         `Letter`, `Greek`, `Han`; no `name=value` and no binary properties)",
                    ));
                }
                self.i = j + 1;
                // Go negates with `^` inside the braces; the regex crate with the capital letter.
                let sign = match (sign, name.starts_with('^')) {
                    (s, false) => s,
                    ('p', true) => 'P',
                    (_, true) => 'p',
                };
                Ok(unicode_class(sign, &canonical))
            }
            Some(c) if c != '{' => {
                let canonical = canonical_class_name(c.encode_utf8(&mut [0; 4]));
                if GO_UNICODE_CLASSES.binary_search(&canonical.as_str()).is_err() {
                    return Err(self.refuse(
                        start,
                        start + 3,
                        "not a one-letter Unicode class Go's regexp knows (`C`, `L`, `M`, `N`, `P`, `S`, `Z`)",
                    ));
                }
                self.i += 3;
                Ok(unicode_class(sign, &canonical))
            }
            _ => Err(self.refuse(
                start,
                start + 3,
                "invalid character class range: a Unicode class needs a one-letter name or `{Name}`",
            )),
        }
    }

    /// A single-character escape at the cursor (Go's `parseEscape`): C escapes, octal, hex, punctuation.
    fn escaped_char(&mut self) -> Result<char, RegexError> {
        let start = self.i;
        let Some(c) = self.peek(1) else {
            return Err(self.refuse(start, start + 1, "trailing backslash"));
        };
        let simple = match c {
            'a' => Some('\u{7}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            c if is_ascii_punct(c) => Some(c),
            _ => None,
        };
        if let Some(ch) = simple {
            self.i += 2;
            return Ok(ch);
        }
        if c.is_digit(8) {
            let is_octal = |k: usize| self.peek(k).is_some_and(|d| d.is_digit(8));
            if c != '0' && !is_octal(2) {
                return Err(self.refuse(
                    start,
                    start + 2,
                    "backreferences are not supported by Go's regexp",
                ));
            }
            let mut value = 0u32;
            let mut k = 1;
            while k <= 3 && is_octal(k) {
                value = value * 8 + self.peek(k).and_then(|d| d.to_digit(8)).unwrap_or(0);
                k += 1;
            }
            self.i += k;
            return char::from_u32(value)
                .ok_or_else(|| self.refuse(start, start + k, "not a character"));
        }
        if c == 'x' {
            let (value, end) = if self.peek(2) == Some('{') {
                let from = self.i + 3;
                let mut j = from;
                while self
                    .chars
                    .get(j)
                    .is_some_and(|(_, d)| d.is_ascii_hexdigit())
                {
                    j += 1;
                }
                if j == from || self.chars.get(j).map(|&(_, d)| d) != Some('}') {
                    return Err(self.refuse(start, j + 1, "invalid hex escape (Go's regexp)"));
                }
                (u32::from_str_radix(self.text(from, j), 16).ok(), j + 1)
            } else {
                let two = self.i + 4;
                let ok = (2..4).all(|k| self.peek(k).is_some_and(|d| d.is_ascii_hexdigit()));
                if !ok {
                    return Err(self.refuse(
                        start,
                        two,
                        "a hex escape needs exactly two digits or braces (Go's regexp)",
                    ));
                }
                (
                    u32::from_str_radix(self.text(self.i + 2, two), 16).ok(),
                    two,
                )
            };
            let ch = value
                .filter(|v| *v <= 0x10FFFF)
                .and_then(char::from_u32)
                .ok_or_else(|| self.refuse(start, end, "invalid hex escape (Go's regexp)"))?;
            self.i = end;
            return Ok(ch);
        }
        let reason = match c {
            'Z' => "Go's regexp has no `\\Z`; use `\\z` or `$`",
            'E' => "`\\E` without `\\Q`",
            c if !c.is_ascii() => "only ASCII punctuation may be escaped in Go's regexp",
            _ => "not an escape Go's regexp knows",
        };
        Err(self.refuse(start, start + 2, reason))
    }

    /// A bracketed class at the cursor, parsed as Go's `parseClass` and written for the regex crate.
    fn class(&mut self) -> Result<String, RegexError> {
        let start = self.i;
        self.i += 1;
        let mut out = String::from("[");
        if self.peek(0) == Some('^') {
            out.push('^');
            self.i += 1;
        }
        let mut first = true;
        loop {
            let Some(c) = self.peek(0) else {
                return Err(self.refuse(
                    start,
                    self.chars.len(),
                    "missing closing `]` (Go's regexp)",
                ));
            };
            if c == ']' && !first {
                self.i += 1;
                out.push(']');
                return Ok(out);
            }
            first = false;
            // POSIX class [:name:] / [:^name:].
            if c == '[' && self.peek(1) == Some(':') {
                let rest = &self.pattern[self.offset(self.i + 2)..];
                if let Some(len) = rest.find(":]") {
                    let name = &rest[..len];
                    let bare = name.strip_prefix('^').unwrap_or(name);
                    let end = self.i + 2 + rest[..len].chars().count() + 2;
                    if !ASCII_CLASSES.contains(&bare) {
                        return Err(self.refuse(
                            self.i,
                            end,
                            "not an ASCII class Go's regexp knows",
                        ));
                    }
                    out.push_str(&format!("[:{name}:]"));
                    self.i = end;
                    continue;
                }
            }
            if c == '\\' {
                match self.peek(1) {
                    Some('p' | 'P') => {
                        let class = self.unicode_class()?;
                        out.push_str(&class);
                        continue;
                    }
                    Some(p) if perl_class(p).is_some() => {
                        out.push('[');
                        out.push_str(perl_class(p).unwrap_or_default());
                        out.push(']');
                        self.i += 2;
                        continue;
                    }
                    _ => {}
                }
            }
            let lo_at = self.i;
            let lo = self.class_char()?;
            let mut hi = lo;
            if self.peek(0) == Some('-') && self.peek(1).is_some_and(|n| n != ']') {
                self.i += 1;
                hi = self.class_char()?;
                if hi < lo {
                    return Err(self.refuse(lo_at, self.i, "invalid character class range"));
                }
            }
            out.push_str(&literal(lo));
            if hi != lo {
                out.push('-');
                out.push_str(&literal(hi));
            }
        }
    }

    /// One character in a class (Go's `parseClassChar`).
    fn class_char(&mut self) -> Result<char, RegexError> {
        match self.peek(0) {
            Some('\\') => {
                if let Some(c @ ('b' | 'B' | 'A' | 'z' | 'Q' | 'C')) = self.peek(1) {
                    return Err(self.refuse(
                        self.i,
                        self.i + 2,
                        format!("`\\{c}` is not allowed in a character class by Go's regexp"),
                    ));
                }
                self.escaped_char()
            }
            Some(c) => {
                self.i += 1;
                Ok(c)
            }
            None => Err(self.refuse(
                self.i,
                self.chars.len(),
                "missing closing `]` (Go's regexp)",
            )),
        }
    }
}

/// A Go Unicode class for the regex crate. Surrogates (`Cs`) match nothing in UTF-8 text, which the regex crate
/// refuses to write as `\p{Cs}`: an empty class (and its negation, any character).
fn unicode_class(sign: char, canonical: &str) -> String {
    match (canonical, sign) {
        ("Cs" | "Surrogate", 'p') => "[^\\x{0}-\\x{10FFFF}]".into(),
        ("Cs" | "Surrogate", _) => "[\\x{0}-\\x{10FFFF}]".into(),
        _ => format!("\\{sign}{{{canonical}}}"),
    }
}

/// A Unicode class name as Go 1.26 looks it up: `_`, `-` and spaces dropped, the first letter upper case, the rest
/// lower case (`greek` and `GREEK` are `Greek`).
fn canonical_class_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().filter(|c| !matches!(c, '_' | '-' | ' ')) {
        if out.is_empty() {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The Unicode class names Go 1.26's `regexp` accepts, in canonical form (sorted): its `unicode.Categories`,
/// `unicode.Scripts` (those without `_`: Go drops it from the name looked up, so `Old_Italic` is refused),
/// `unicode.CategoryAliases`, `Any`, `Assigned`, `ASCII` and `LC`. Generated with Go (see
/// `testdata/sigstore/go-regexp/unicode_names.go`).
const GO_UNICODE_CLASSES: &[&str] = &[
    "Adlam",
    "Ahom",
    "Any",
    "Arabic",
    "Armenian",
    "Ascii",
    "Assigned",
    "Avestan",
    "Balinese",
    "Bamum",
    "Batak",
    "Bengali",
    "Bhaiksuki",
    "Bopomofo",
    "Brahmi",
    "Braille",
    "Buginese",
    "Buhid",
    "C",
    "Carian",
    "Casedletter",
    "Cc",
    "Cf",
    "Chakma",
    "Cham",
    "Cherokee",
    "Chorasmian",
    "Closepunctuation",
    "Cn",
    "Cntrl",
    "Co",
    "Combiningmark",
    "Common",
    "Connectorpunctuation",
    "Control",
    "Coptic",
    "Cs",
    "Cuneiform",
    "Currencysymbol",
    "Cypriot",
    "Cyrillic",
    "Dashpunctuation",
    "Decimalnumber",
    "Deseret",
    "Devanagari",
    "Digit",
    "Dogra",
    "Duployan",
    "Elbasan",
    "Elymaic",
    "Enclosingmark",
    "Ethiopic",
    "Finalpunctuation",
    "Format",
    "Georgian",
    "Glagolitic",
    "Gothic",
    "Grantha",
    "Greek",
    "Gujarati",
    "Gurmukhi",
    "Han",
    "Hangul",
    "Hanunoo",
    "Hatran",
    "Hebrew",
    "Hiragana",
    "Inherited",
    "Initialpunctuation",
    "Javanese",
    "Kaithi",
    "Kannada",
    "Katakana",
    "Kawi",
    "Kharoshthi",
    "Khmer",
    "Khojki",
    "Khudawadi",
    "L",
    "Lao",
    "Latin",
    "Lc",
    "Lepcha",
    "Letter",
    "Letternumber",
    "Limbu",
    "Lineseparator",
    "Lisu",
    "Ll",
    "Lm",
    "Lo",
    "Lowercaseletter",
    "Lt",
    "Lu",
    "Lycian",
    "Lydian",
    "M",
    "Mahajani",
    "Makasar",
    "Malayalam",
    "Mandaic",
    "Manichaean",
    "Marchen",
    "Mark",
    "Mathsymbol",
    "Mc",
    "Me",
    "Medefaidrin",
    "Miao",
    "Mn",
    "Modi",
    "Modifierletter",
    "Modifiersymbol",
    "Mongolian",
    "Mro",
    "Multani",
    "Myanmar",
    "N",
    "Nabataean",
    "Nandinagari",
    "Nd",
    "Newa",
    "Nko",
    "Nl",
    "No",
    "Nonspacingmark",
    "Number",
    "Nushu",
    "Ogham",
    "Openpunctuation",
    "Oriya",
    "Osage",
    "Osmanya",
    "Other",
    "Otherletter",
    "Othernumber",
    "Otherpunctuation",
    "Othersymbol",
    "P",
    "Palmyrene",
    "Paragraphseparator",
    "Pc",
    "Pd",
    "Pe",
    "Pf",
    "Phoenician",
    "Pi",
    "Po",
    "Privateuse",
    "Ps",
    "Punct",
    "Punctuation",
    "Rejang",
    "Runic",
    "S",
    "Samaritan",
    "Saurashtra",
    "Sc",
    "Separator",
    "Sharada",
    "Shavian",
    "Siddham",
    "Sinhala",
    "Sk",
    "Sm",
    "So",
    "Sogdian",
    "Soyombo",
    "Spaceseparator",
    "Spacingmark",
    "Sundanese",
    "Surrogate",
    "Symbol",
    "Syriac",
    "Tagalog",
    "Tagbanwa",
    "Takri",
    "Tamil",
    "Tangsa",
    "Tangut",
    "Telugu",
    "Thaana",
    "Thai",
    "Tibetan",
    "Tifinagh",
    "Tirhuta",
    "Titlecaseletter",
    "Toto",
    "Ugaritic",
    "Unassigned",
    "Uppercaseletter",
    "Vai",
    "Vithkuqi",
    "Wancho",
    "Yezidi",
    "Yi",
    "Z",
    "Zl",
    "Zp",
    "Zs",
];

/// Go applies flags left to right (`(?i-i)` clears `i`, `(?ii)` is `i`); the regex crate refuses repeated flags:
/// the net effect, as `set-cleared`.
fn normalize_flags(flags: &str) -> String {
    let (on, off) = flags.split_once('-').unwrap_or((flags, ""));
    let mut set: Vec<char> = Vec::new();
    for c in on.chars() {
        if !set.contains(&c) && !off.contains(c) {
            set.push(c);
        }
    }
    let mut cleared: Vec<char> = Vec::new();
    for c in off.chars() {
        if !cleared.contains(&c) {
            cleared.push(c);
        }
    }
    let mut out: String = set.into_iter().collect();
    if !cleared.is_empty() {
        out.push('-');
        out.extend(cleared);
    }
    out
}

/// Go's ASCII-only Perl classes, as class items for the regex crate (negated ones as a nested class).
fn perl_class(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "0-9",
        'D' => "^0-9",
        's' => "\\t\\n\\x0C\\r ",
        'S' => "^\\t\\n\\x0C\\r ",
        'w' => "0-9A-Za-z_",
        'W' => "^0-9A-Za-z_",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused pattern is one line of printable text, whatever the pattern holds (found by the policy_parse
    /// fuzz target: the `regex` crate's message spans lines and repeats the pattern raw).
    #[test]
    fn a_refused_pattern_is_named_on_one_printable_line() {
        for pattern in ["a(b\nc\u{1b}[31m", "x\u{7f}(", "(?P<\u{9b}>a)"] {
            let error = GoRegex::new(pattern).expect_err("refused");
            let text = error.to_string();
            assert!(kibaship_printable::is_printable(&text), "{text:?}");
            assert!(
                text.starts_with("invalid Go regular expression \""),
                "{text}"
            );
        }
        let error = GoRegex::new("a(b\nc").expect_err("unclosed");
        assert_eq!(
            error.to_string(),
            "invalid Go regular expression \"a(b\\nc\": unclosed group"
        );
    }

    #[test]
    fn translations() {
        for (go, rust) in [
            (r"\Qa.b\E+", r"a\.b+"),
            (r"\Qa.b", r"a\.b"),
            (r"\d\w\s", r"[0-9][0-9A-Za-z_][\t\n\x0C\r ]"),
            (r"[\d\D]", r"[[0-9][^0-9]]"),
            (r"\bx\B", r"(?-u:\b)x(?-u:\B)"),
            (r"\12\0\101", r"\x{A}\x{0}A"),
            (r"\<a\>", r"<a>"),
            (r"a{,2}", r"a\{,2\}"),
            (r"a{01}", r"a\{01\}"),
            (r"[a&&b~~c-]", r"[a\&\&b\~\~c\-]"),
            (r"[[]", r"[\[]"),
            (r"(?P<n>a)(?<n>b)(?)c", r"(a)(b)c"),
            (r"(?ii-i)(?i-ss:a)(?s-i)", r"(?-i)(?i-s:a)(?s-i)"),
            (r"a(?i)*b", r"a*(?i)b"),
            (r"\Qab\E*(?i)*", r"a(?:b*)*(?i)"),
            (r"(ab)+(?i)?(?s)*c", r"(?:(?:(ab)+)?)*(?i)(?s)c"),
            (r"\p{^Greek}\P{^Han}[\p{^L}]", r"\P{Greek}\p{Han}[\P{L}]"),
        ] {
            assert_eq!(translate(go).unwrap(), rust, "{go}");
        }
    }
}
