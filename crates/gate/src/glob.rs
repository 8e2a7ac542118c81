//! Path globs with trivy's (doublestar) meaning: `*` and `?` stay within one path segment, `**`
//! as a whole segment spans any number of segments (zero included), `[a-z]`/`[!a-z]` are
//! character classes, `{a,b}` are alternatives and `\` escapes.

/// A validated path glob.
#[derive(Debug, Clone)]
pub struct PathGlob {
    source: String,
    alternatives: Vec<Vec<String>>,
}

impl PathGlob {
    /// Parses and validates a pattern; the error says what is malformed.
    pub fn parse(pattern: &str) -> Result<PathGlob, String> {
        PathGlob::parse_within(pattern, &mut PatternBudget::per_file())
    }

    /// [`PathGlob::parse`], charging each alternative to `budget` (shared by one file's patterns).
    pub(crate) fn parse_within(
        pattern: &str,
        budget: &mut PatternBudget,
    ) -> Result<PathGlob, String> {
        let mut expanded = Vec::new();
        expand_braces(pattern, pattern, 0, &mut expanded, budget)?;
        let mut alternatives = Vec::with_capacity(expanded.len());
        for alternative in expanded {
            let segments: Vec<String> = alternative.split('/').map(str::to_owned).collect();
            for segment in &segments {
                validate_segment(segment)
                    .map_err(|message| format!("path pattern `{pattern}`: {message}"))?;
            }
            alternatives.push(segments);
        }
        Ok(PathGlob {
            source: pattern.to_owned(),
            alternatives,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        let segments: Vec<Vec<char>> = path.split('/').map(|s| s.chars().collect()).collect();
        self.alternatives.iter().any(|pattern| {
            let pattern: Vec<Option<Vec<Token>>> = pattern
                .iter()
                .map(|segment| (segment != "**").then(|| tokens(segment)))
                .collect();
            // `**` (None) spans any number of segments; any other pattern segment matches one.
            wildcard_match(&pattern, &segments, Option::is_none, |pattern, segment| {
                pattern
                    .as_deref()
                    .is_some_and(|pattern| match_segment(pattern, segment))
            })
        })
    }
}

/// Most alternatives one pattern may expand to (`{a,b}{c,d}` is 4): a pattern of many groups
/// would otherwise expand exponentially.
const MAX_ALTERNATIVES: usize = 1024;
/// Most alternatives all path patterns of one policy or ignore file may expand to together: the
/// per-pattern bound alone lets a file of many patterns (or YAML aliases repeating one exception)
/// expand to millions.
pub const MAX_PATTERNS_PER_FILE: usize = 100_000;

/// What is left of one file's [`MAX_PATTERNS_PER_FILE`].
#[derive(Debug)]
pub(crate) struct PatternBudget {
    left: usize,
    /// Set once a pattern was refused because the file's total went over.
    pub(crate) exhausted: bool,
}

impl PatternBudget {
    /// A fresh budget for one file.
    pub(crate) fn per_file() -> PatternBudget {
        PatternBudget {
            left: MAX_PATTERNS_PER_FILE,
            exhausted: false,
        }
    }
}

/// Most `{...}` groups (nested or in a row) one pattern may have: each is one level of expansion.
const MAX_BRACE_GROUPS: usize = 32;

/// Appends the brace expansions of `pattern` (a partly expanded form of `original`) to `out`.
fn expand_braces(
    original: &str,
    pattern: &str,
    depth: usize,
    out: &mut Vec<String>,
    budget: &mut PatternBudget,
) -> Result<(), String> {
    if depth > MAX_BRACE_GROUPS {
        return Err(format!(
            "path pattern `{original}` has more than {MAX_BRACE_GROUPS} `{{...}}` groups"
        ));
    }
    let chars: Vec<char> = pattern.chars().collect();
    let nesting = depth;
    let mut depth = 0usize;
    let mut open = None;
    let mut commas = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => i += 1,
            '{' => {
                if depth == 0 {
                    open = Some(i);
                    commas.clear();
                }
                depth += 1;
            }
            ',' if depth == 1 => commas.push(i),
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    let start = open.unwrap_or(0);
                    let prefix: String = chars.iter().take(start).collect();
                    let suffix: String = chars.iter().skip(i + 1).collect();
                    let mut bounds = vec![start];
                    bounds.extend(commas.iter().copied());
                    bounds.push(i);
                    for pair in bounds.windows(2) {
                        if let [from, to] = *pair {
                            let middle: String =
                                chars.iter().skip(from + 1).take(to - from - 1).collect();
                            let alternative = format!("{prefix}{middle}{suffix}");
                            expand_braces(original, &alternative, nesting + 1, out, budget)?;
                        }
                    }
                    return Ok(());
                }
            }
            _ => {}
        }
        i += 1;
    }
    if depth > 0 {
        return Err(format!("path pattern `{pattern}` has an unclosed `{{`"));
    }
    if out.len() >= MAX_ALTERNATIVES {
        return Err(format!(
            "path pattern `{original}` expands to more than {MAX_ALTERNATIVES} alternatives"
        ));
    }
    let Some(left) = budget.left.checked_sub(1) else {
        budget.exhausted = true;
        return Err(format!(
            "path pattern `{original}`: the file's path patterns expand to more than \
             {MAX_PATTERNS_PER_FILE} alternatives in total"
        ));
    };
    budget.left = left;
    out.push(pattern.to_owned());
    Ok(())
}

fn validate_segment(segment: &str) -> Result<(), String> {
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => {
                return Err("ends with a lone `\\`".to_owned());
            }
            '[' => {
                let mut closed = false;
                let mut first = true;
                for c in chars.by_ref() {
                    if c == ']' && !first {
                        closed = true;
                        break;
                    }
                    first = false;
                }
                if !closed {
                    return Err("has an unclosed `[`".to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// One element of a segment pattern.
#[derive(Debug)]
enum Token {
    /// `*`: any run of characters.
    Star,
    /// `?`: any one character.
    Any,
    /// `[...]` / `[!...]`: one character in (or not in) the class.
    Class { negated: bool, class: Vec<char> },
    /// An unclosed class: matches nothing.
    Never,
    /// A literal (or `\`-escaped) character.
    Literal(char),
}

/// Reads a segment pattern into tokens: a class ends at the first `]` that is not its first
/// character, `\` escapes the next character.
fn tokens(segment: &str) -> Vec<Token> {
    let chars: Vec<char> = segment.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            '*' => out.push(Token::Star),
            '?' => out.push(Token::Any),
            '\\' => match chars.get(i) {
                Some(&escaped) => {
                    out.push(Token::Literal(escaped));
                    i += 1;
                }
                None => out.push(Token::Never),
            },
            '[' => {
                let rest = chars.get(i..).unwrap_or_default();
                let (negated, body) = match rest.split_first() {
                    Some((&('!' | '^'), body)) => (true, body),
                    _ => (false, rest),
                };
                let Some(end) = body.iter().skip(1).position(|&b| b == ']').map(|p| p + 1) else {
                    out.push(Token::Never);
                    break;
                };
                let class = body.get(..end).unwrap_or_default().to_vec();
                out.push(Token::Class { negated, class });
                i += (rest.len() - body.len()) + end + 1;
            }
            literal => out.push(Token::Literal(literal)),
        }
    }
    out
}

fn class_contains(class: &[char], c: char) -> bool {
    let mut hit = false;
    let mut i = 0;
    while let Some(&low) = class.get(i) {
        if class.get(i + 1) == Some(&'-') {
            if let Some(&high) = class.get(i + 2) {
                hit |= low <= c && c <= high;
                i += 3;
                continue;
            }
        }
        hit |= low == c;
        i += 1;
    }
    hit
}

fn match_segment(pattern: &[Token], text: &[char]) -> bool {
    wildcard_match(
        pattern,
        text,
        |token| matches!(token, Token::Star),
        |token, &c| match token {
            Token::Any => true,
            Token::Literal(l) => *l == c,
            Token::Class { negated, class } => class_contains(class, c) != *negated,
            Token::Star | Token::Never => false,
        },
    )
}

/// Matches `text` against `pattern`, where a star element matches any run of text elements and
/// every other element matches exactly one. Greedy with one backtrack point (the last star), so
/// the cost is at most `pattern.len() * text.len()` steps, however many stars there are.
fn wildcard_match<P, T>(
    pattern: &[P],
    text: &[T],
    is_star: impl Fn(&P) -> bool,
    matches_one: impl Fn(&P, &T) -> bool,
) -> bool {
    let (mut p, mut t) = (0, 0);
    // After a star: the pattern position following it and the text position it now extends to.
    let mut backtrack: Option<(usize, usize)> = None;
    while let Some(item) = text.get(t) {
        match pattern.get(p) {
            Some(element) if is_star(element) => {
                p += 1;
                backtrack = Some((p, t));
            }
            Some(element) if matches_one(element, item) => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                // Let the last star swallow one more element and retry from just after it.
                Some((after_star, star_end)) => {
                    p = after_star;
                    t = star_end + 1;
                    backtrack = Some((after_star, t));
                }
                None => return false,
            },
        }
    }
    pattern.get(p..).unwrap_or_default().iter().all(is_star)
}

#[cfg(test)]
mod tests {
    use super::PathGlob;

    fn glob(p: &str) -> PathGlob {
        PathGlob::parse(p).expect("valid pattern")
    }

    #[test]
    fn doublestar_spans_directories() {
        let g = glob("**/*-lock.json");
        assert!(g.matches("package-lock.json"));
        assert!(g.matches("foo/bar/package-lock.json"));
        assert!(!g.matches("foo/bar/package.json"));
    }

    #[test]
    fn star_stays_in_one_segment() {
        let g = glob("foo/*.json");
        assert!(g.matches("foo/a.json"));
        assert!(!g.matches("foo/bar/a.json"));
        assert!(glob("bar/package.json").matches("bar/package.json"));
        assert!(!glob("bar/package.json").matches("foo/bar/package.json"));
    }

    #[test]
    fn classes_alternatives_and_escapes() {
        assert!(glob("usr/lib/lib[a-c].so").matches("usr/lib/libb.so"));
        assert!(!glob("usr/lib/lib[!a-c].so").matches("usr/lib/libb.so"));
        assert!(glob("app/{Dockerfile,Containerfile}").matches("app/Containerfile"));
        assert!(glob("a\\*b").matches("a*b"));
        assert!(!glob("a\\*b").matches("axb"));
        assert!(glob("a?c").matches("abc"));
    }

    #[test]
    fn malformed_patterns_are_errors() {
        assert!(PathGlob::parse("foo/[abc").is_err());
        assert!(PathGlob::parse("foo/{a,b").is_err());
    }
}
