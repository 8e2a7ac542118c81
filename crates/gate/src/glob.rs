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
        let expanded = expand_braces(pattern)?;
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
        let segments: Vec<&str> = path.split('/').collect();
        self.alternatives.iter().any(|pattern| {
            let pattern: Vec<&str> = pattern.iter().map(String::as_str).collect();
            match_segments(&pattern, &segments)
        })
    }
}

fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = pattern.chars().collect();
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
                    let mut out = Vec::new();
                    for pair in bounds.windows(2) {
                        if let [from, to] = *pair {
                            let middle: String =
                                chars.iter().skip(from + 1).take(to - from - 1).collect();
                            out.extend(expand_braces(&format!("{prefix}{middle}{suffix}"))?);
                        }
                    }
                    return Ok(out);
                }
            }
            _ => {}
        }
        i += 1;
    }
    if depth > 0 {
        return Err(format!("path pattern `{pattern}` has an unclosed `{{`"));
    }
    Ok(vec![pattern.to_owned()])
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

fn match_segments(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => {
            (0..=path.len()).any(|skip| path.get(skip..).is_some_and(|p| match_segments(rest, p)))
        }
        Some((first, rest)) => match path.split_first() {
            Some((segment, path_rest)) => {
                let p: Vec<char> = first.chars().collect();
                let s: Vec<char> = segment.chars().collect();
                match_segment(&p, &s) && match_segments(rest, path_rest)
            }
            None => false,
        },
    }
}

fn match_segment(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => {
            (0..=text.len()).any(|skip| text.get(skip..).is_some_and(|t| match_segment(rest, t)))
        }
        Some(('?', rest)) => text
            .split_first()
            .is_some_and(|(_, t)| match_segment(rest, t)),
        Some(('[', rest)) => {
            let Some((&c, text_rest)) = text.split_first() else {
                return false;
            };
            let (negated, body) = match rest.split_first() {
                Some(('!' | '^', body)) => (true, body),
                _ => (false, rest),
            };
            // The class ends at the first `]` that is not its first character.
            let Some(end) = body.iter().skip(1).position(|&b| b == ']').map(|p| p + 1) else {
                return false;
            };
            let class = body.get(..end).unwrap_or_default();
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
            hit != negated && match_segment(body.get(end + 1..).unwrap_or_default(), text_rest)
        }
        Some(('\\', rest)) => match (rest.split_first(), text.split_first()) {
            (Some((p, pattern_rest)), Some((t, text_rest))) => {
                p == t && match_segment(pattern_rest, text_rest)
            }
            _ => false,
        },
        Some((p, rest)) => text
            .split_first()
            .is_some_and(|(t, text_rest)| p == t && match_segment(rest, text_rest)),
    }
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
