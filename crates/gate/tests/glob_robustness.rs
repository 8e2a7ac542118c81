//! Path globs (policy and `.trivyignore.yaml` `paths`) against paths from untrusted reports: matching
//! costs at most pattern x path steps however many stars a pattern has, brace expansion is bounded,
//! and the matcher agrees with a plain recursive reading of the doublestar rules.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use kibaship_gate::PathGlob;
use proptest::prelude::*;

// Found by review while writing the fuzz targets: each of these took exponential time (minutes to
// forever) with the recursive matcher, or expanded to 2^k alternatives.
#[test]
fn many_stars_in_a_segment_do_not_backtrack_exponentially() {
    let glob = PathGlob::parse(&format!("{}c", "*a".repeat(24))).unwrap();
    assert!(!glob.matches(&"a".repeat(80)));
    assert!(glob.matches(&format!("{}c", "a".repeat(80))));
}

#[test]
fn many_doublestars_do_not_backtrack_exponentially() {
    let glob = PathGlob::parse(&format!("{}c", "**/".repeat(16))).unwrap();
    let deep = vec!["a"; 200].join("/");
    assert!(!glob.matches(&deep));
    assert!(glob.matches(&format!("{deep}/c")));
    let mixed = PathGlob::parse(&format!("{}x", "**/*a*a*/".repeat(8))).unwrap();
    assert!(!mixed.matches(&vec!["aaaaaaaa"; 100].join("/")));
}

/// The input the `gate_identifiers` fuzz target timed out on (over 10 s per run): 30 stars in one
/// segment, matched against itself and a path.
#[test]
fn fuzz_timeout_thirty_stars_in_a_segment() {
    let input = "regis07usr******************************r\0\0\0\\***c4";
    assert_eq!(input.len(), 50);
    let glob = PathGlob::parse(input).unwrap();
    // `\*` is a literal star, and the input has a backslash there: no match, found in linear time.
    assert!(!glob.matches(input));
    assert!(glob.matches("regis07usr-anything-r\0\0\0*-c4"));
    assert!(!glob.matches("usr/lib/python3/dist-packages/a/b/c.py"));
    assert!(!glob.matches(&format!("regis07usr{}r", "x".repeat(200))));
}

#[test]
fn brace_expansion_is_bounded() {
    let err = PathGlob::parse(&"{a,b}".repeat(12)).unwrap_err();
    assert!(
        err.contains("expands to more than 1024 alternatives"),
        "{err}"
    );
    assert!(err.starts_with("path pattern `{a,b}{a,b}"), "{err}");
    // 2^10 = 1024 is still accepted.
    assert!(
        PathGlob::parse(&"{a,b}".repeat(10))
            .unwrap()
            .matches(&"ab".repeat(5))
    );
    let nested = format!("{}x{}", "{".repeat(5000), "}".repeat(5000));
    let err = PathGlob::parse(&nested).unwrap_err();
    assert!(err.contains("has more than 32 `{...}` groups"), "{err}");
    let in_a_row = PathGlob::parse(&"{a}".repeat(40)).unwrap_err();
    assert!(
        in_a_row.contains("has more than 32 `{...}` groups"),
        "{in_a_row}"
    );
}

/// The doublestar rules read directly (exponential, fine for the small inputs below).
fn reference_segments(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| reference_segments(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            Some((segment, path_rest)) => {
                let p: Vec<char> = first.chars().collect();
                let s: Vec<char> = segment.chars().collect();
                reference_segment(&p, &s) && reference_segments(rest, path_rest)
            }
            None => false,
        },
    }
}

fn reference_segment(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|skip| reference_segment(rest, &text[skip..])),
        Some(('?', rest)) => !text.is_empty() && reference_segment(rest, &text[1..]),
        Some(('[', rest)) => {
            let Some((&c, text_rest)) = text.split_first() else {
                return false;
            };
            let (negated, body) = match rest.split_first() {
                Some(('!' | '^', body)) => (true, body),
                _ => (false, rest),
            };
            let Some(end) = body.iter().skip(1).position(|&b| b == ']').map(|p| p + 1) else {
                return false;
            };
            let class = &body[..end];
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negated && reference_segment(&body[end + 1..], text_rest)
        }
        Some(('\\', rest)) => match (rest.split_first(), text.split_first()) {
            (Some((p, pattern_rest)), Some((t, text_rest))) => {
                p == t && reference_segment(pattern_rest, text_rest)
            }
            _ => false,
        },
        Some((p, rest)) => text.first() == Some(p) && reference_segment(rest, &text[1..]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matching_agrees_with_the_reference(
        pattern in "(\\*\\*|[ab*?]|\\[!?[ab-]{1,3}\\]|\\\\[*a]){0,5}(/(\\*\\*|[ab*?]{0,4})){0,3}",
        path in "[ab*]{0,5}(/[ab]{0,4}){0,4}",
    ) {
        let Ok(glob) = PathGlob::parse(&pattern) else { return Ok(()) };
        let segments: Vec<&str> = pattern.split('/').collect();
        let path_segments: Vec<&str> = path.split('/').collect();
        prop_assert_eq!(
            glob.matches(&path),
            reference_segments(&segments, &path_segments),
            "pattern {:?} path {:?}", pattern, path
        );
    }

    #[test]
    fn any_pattern_is_parsed_or_refused_naming_it(pattern in "[{},a*/\\[\\]\\\\!-]{0,40}") {
        match PathGlob::parse(&pattern) {
            Ok(glob) => { let _ = glob.matches("a/b/c"); }
            Err(e) => prop_assert!(e.starts_with("path pattern `"), "{e}"),
        }
    }
}
