//! Image and namespace globs.
//!
//! An image glob is a path of `/`-separated segments: `*` matches any run of characters within one segment, `?`
//! one character, `**` (a whole segment) any number of segments, zero included; everything else is literal.
//! A namespace glob is one segment (`*`, `?`, literals).
//!
//! An image is tried in several spellings ([`ImageForms`]): as written, its normalized form
//! (`docker.io/library/nginx:1.27` for `nginx:1.27`) and both without tag and digest (and with `:latest` when it has
//! neither), so `ghcr.io/org/app` selects every tag and digest of that repository and `ghcr.io/org/app:v1` only that
//! tag. A glob that names a
//! Docker Hub image without its registry (`nginx`, `bitnami/*`) is also tried in normalized form
//! (`docker.io/library/nginx`, `docker.io/bitnami/*`).

use std::ops::Range;

/// Longest glob accepted (a reference is at most 255 characters of name, a 128-character tag and a digest).
pub const MAX_GLOB_LEN: usize = 1024;

/// One element of a segment pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// `*`: any run of characters (none included).
    Star,
    /// `?`: exactly one character.
    One,
    /// Itself.
    Literal(char),
}

/// One segment of an image glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of segments.
    AnyDepth,
    /// One segment.
    Pattern(Vec<Token>),
}

/// A validated image glob.
#[derive(Debug, Clone)]
pub(crate) struct ImageGlob {
    source: String,
    /// The glob as written, then (for a Docker Hub glob without registry) its normalized form.
    alternatives: Vec<Vec<Segment>>,
}

/// A validated namespace glob.
#[derive(Debug, Clone)]
pub(crate) struct NameGlob {
    source: String,
    tokens: Vec<Token>,
}

fn tokens(segment: &str) -> Vec<Token> {
    segment
        .chars()
        .map(|c| match c {
            '*' => Token::Star,
            '?' => Token::One,
            c => Token::Literal(c),
        })
        .collect()
}

fn segments(glob: &str) -> Vec<Segment> {
    glob.split('/')
        .map(|s| {
            if s == "**" {
                Segment::AnyDepth
            } else {
                Segment::Pattern(tokens(s))
            }
        })
        .collect()
}

impl ImageGlob {
    /// Validates `glob`; the error says what is wrong (without naming the field).
    pub(crate) fn parse(glob: &str) -> Result<ImageGlob, String> {
        if glob.is_empty() {
            return Err("an empty glob selects nothing".to_owned());
        }
        if glob.chars().count() > MAX_GLOB_LEN {
            return Err(format!("the glob is longer than {MAX_GLOB_LEN} characters"));
        }
        if let Some(c) = glob.chars().find(|&c| !image_glob_char(c)) {
            return Err(match c {
                '[' | ']' | '{' | '}' | '\\' | '!' | ',' => format!(
                    "`{}` is not glob syntax here: only `*`, `?` and `**` are wildcards",
                    c.escape_debug()
                ),
                c => format!("`{}` cannot appear in an image reference", c.escape_debug()),
            });
        }
        for segment in glob.split('/') {
            if segment.is_empty() {
                return Err("empty path segment (a leading, trailing or doubled `/`)".to_owned());
            }
            if segment.contains("**") && segment != "**" {
                return Err(format!(
                    "`**` must be a whole path segment (`a/**/b`), not part of `{segment}`"
                ));
            }
        }
        let first = glob.split('/').next().unwrap_or_default();
        if first == "index.docker.io" {
            return Err(
                "references are normalized to `docker.io`: write `docker.io/...` (it also matches `index.docker.io/...` \
                 and Docker Hub names without registry)"
                    .to_owned(),
            );
        }
        let mut alternatives = vec![segments(glob)];
        if let Some(normalized) = docker_hub_form(glob) {
            alternatives.push(segments(&normalized));
        }
        Ok(ImageGlob {
            source: glob.to_owned(),
            alternatives,
        })
    }

    /// The glob as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether any spelling of the image matches.
    pub(crate) fn matches(&self, image: &ImageForms) -> bool {
        self.alternatives.iter().any(|pattern| {
            image.forms.iter().any(|form| {
                wildcard_match(
                    pattern,
                    &form.segments,
                    |s| *s == Segment::AnyDepth,
                    |s, range| match s {
                        Segment::AnyDepth => false,
                        Segment::Pattern(tokens) => {
                            match_segment(tokens, form.text.get(range.clone()).unwrap_or_default())
                        }
                    },
                )
            })
        })
    }
}

/// Characters an image glob may hold: those of references (domain, path, tag, digest) and the wildcards.
fn image_glob_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '.' | '_' | '-' | '/' | ':' | '@' | '+' | '=' | '*' | '?')
}

/// The normalized form of a glob that names a Docker Hub image without registry, as references are normalized:
/// one segment is an official image (`nginx` → `docker.io/library/nginx`); a first segment without `.` or `:`,
/// not `localhost`, without upper-case letters and without wildcards is a Docker Hub namespace
/// (`bitnami/*` → `docker.io/bitnami/*`).
fn docker_hub_form(glob: &str) -> Option<String> {
    match glob.split_once('/') {
        None => Some(format!("docker.io/library/{glob}")),
        Some((first, _)) => {
            let registry = first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase());
            let wild = first.contains(['*', '?']);
            (!registry && !wild).then(|| format!("docker.io/{glob}"))
        }
    }
}

impl NameGlob {
    /// Validates a namespace glob; the error says what is wrong (without naming the field).
    pub(crate) fn parse(glob: &str) -> Result<NameGlob, String> {
        if glob.is_empty() {
            return Err("an empty glob selects nothing".to_owned());
        }
        if glob.chars().count() > 253 {
            return Err("the glob is longer than 253 characters".to_owned());
        }
        if let Some(c) = glob.chars().find(|&c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '*' | '?'))
        }) {
            return Err(format!(
                "`{}` cannot appear in a namespace name (lower-case letters, digits and `-`; `*` and `?` are \
                 wildcards)",
                c.escape_debug()
            ));
        }
        Ok(NameGlob {
            source: glob.to_owned(),
            tokens: tokens(glob),
        })
    }

    /// The glob as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `name` matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        match_segment(&self.tokens, name)
    }
}

/// The spellings an image reference is matched in, each split into segments.
#[derive(Debug)]
pub(crate) struct ImageForms {
    forms: Vec<Form>,
}

/// One spelling of an image and where its `/`-separated segments are in it.
#[derive(Debug)]
struct Form {
    text: String,
    segments: Vec<Range<usize>>,
}

impl Form {
    fn new(text: String) -> Form {
        let mut segments = Vec::with_capacity(4);
        let mut start = 0;
        for (slash, _) in text.match_indices('/') {
            segments.push(start..slash);
            start = slash + 1;
        }
        segments.push(start..text.len());
        Form { text, segments }
    }
}

impl ImageForms {
    /// `image` as written, and (when it parses as a reference) its normalized form, each with and without tag and
    /// digest; `name:tag@digest` also as `name@digest`, and `name` also as `name:latest` (what the runtime pulls).
    /// A reference that does not parse is matched as written only.
    pub(crate) fn new(image: &str) -> ImageForms {
        let mut forms: Vec<String> = vec![image.to_owned()];
        if let Ok(reference) = kibaship_oci::Reference::parse(image) {
            let written_name = without_tag_and_digest(image);
            forms.push(written_name.to_owned());
            forms.push(reference.to_string());
            forms.push(reference.name());
            match (reference.tag(), reference.digest()) {
                // A reference with tag and digest is pulled by digest: it is also that digest without the tag.
                (Some(_), Some(digest)) => {
                    forms.push(format!("{written_name}@{digest}"));
                    forms.push(format!("{}@{digest}", reference.name()));
                }
                // Neither: the runtime pulls `latest`.
                (None, None) => {
                    forms.push(format!("{written_name}:latest"));
                    forms.push(format!("{}:latest", reference.name()));
                }
                _ => {}
            }
        }
        forms.sort_unstable();
        forms.dedup();
        ImageForms {
            forms: forms.into_iter().map(Form::new).collect(),
        }
    }
}

/// `image` without `@digest` and without a `:tag` after the last `/`.
fn without_tag_and_digest(image: &str) -> &str {
    let name = image.split_once('@').map_or(image, |(name, _)| name);
    let last_slash = name.rfind('/');
    match name.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            name.get(..colon).unwrap_or(name)
        }
        _ => name,
    }
}

/// Whether one segment of text matches a segment pattern, `?` standing for one character: on the bytes of ASCII
/// text (every reference that parses), on its characters otherwise.
fn match_segment(tokens: &[Token], text: &str) -> bool {
    let is_star = |t: &Token| *t == Token::Star;
    if text.is_ascii() {
        wildcard_match(tokens, text.as_bytes(), is_star, |t, b| match *t {
            Token::Star => false,
            Token::One => true,
            Token::Literal(l) => u32::from(l) == u32::from(*b),
        })
    } else {
        let chars: Vec<char> = text.chars().collect();
        wildcard_match(tokens, &chars, is_star, |t, c| match *t {
            Token::Star => false,
            Token::One => true,
            Token::Literal(l) => l == *c,
        })
    }
}

/// Whether `text` matches `pattern`, where a star element stands for any run of text elements (none included)
/// and every other element for exactly one it accepts. Greedy, remembering only the latest star: when a match
/// fails the latest star takes one more element. Steps are bounded by `pattern.len() * text.len()`.
fn wildcard_match<P, T>(
    pattern: &[P],
    text: &[T],
    is_star: impl Fn(&P) -> bool,
    accepts: impl Fn(&P, &T) -> bool,
) -> bool {
    let (mut p, mut t) = (0, 0);
    // The pattern index just after the latest star, and how far into the text that star reaches.
    let mut resume: Option<(usize, usize)> = None;
    while let Some(item) = text.get(t) {
        match pattern.get(p) {
            Some(element) if is_star(element) => {
                p += 1;
                resume = Some((p, t));
            }
            Some(element) if accepts(element, item) => {
                p += 1;
                t += 1;
            }
            _ => {
                let Some((after_star, reach)) = resume else {
                    return false;
                };
                p = after_star;
                t = reach + 1;
                resume = Some((after_star, t));
            }
        }
    }
    pattern.get(p..).unwrap_or_default().iter().all(is_star)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(glob: &str, reference: &str) -> bool {
        ImageGlob::parse(glob)
            .expect("valid glob")
            .matches(&ImageForms::new(reference))
    }

    #[test]
    fn star_stays_in_one_segment_and_doublestar_spans() {
        assert!(image("ghcr.io/org/*", "ghcr.io/org/app"));
        assert!(image("ghcr.io/org/*", "ghcr.io/org/app:v1"));
        assert!(!image("ghcr.io/org/*", "ghcr.io/org/team/app"));
        assert!(image("ghcr.io/org/**", "ghcr.io/org/team/app:v1"));
        assert!(image("ghcr.io/org/**", "ghcr.io/org"));
        assert!(!image("ghcr.io/org/**", "ghcr.io/organisation/app"));
        assert!(image("**", "anything/at/all:tag"));
        assert!(image("ghcr.io/**/app", "ghcr.io/a/b/c/app"));
        assert!(image("ghcr.io/**/app", "ghcr.io/app"));
        assert!(!image("ghcr.io/**/app", "ghcr.io/a/b/c/app2"));
        assert!(image("ghcr.io/org/app-?", "ghcr.io/org/app-1"));
        assert!(!image("ghcr.io/org/app-?", "ghcr.io/org/app-12"));
    }

    #[test]
    fn tags_and_digests() {
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert!(image("ghcr.io/org/app", "ghcr.io/org/app:v1"));
        assert!(image(
            "ghcr.io/org/app",
            &format!("ghcr.io/org/app@{digest}")
        ));
        assert!(image("ghcr.io/org/app:v1", "ghcr.io/org/app:v1"));
        assert!(image("ghcr.io/org/app:latest", "ghcr.io/org/app"));
        assert!(image("nginx:latest", "docker.io/library/nginx"));
        assert!(!image(
            "ghcr.io/org/app:latest",
            &format!("ghcr.io/org/app@{digest}")
        ));
        assert!(!image("ghcr.io/org/app:v1", "ghcr.io/org/app:v2"));
        assert!(image("ghcr.io/org/app:v*", "ghcr.io/org/app:v2"));
        assert!(image(
            "ghcr.io/org/app@sha256:*",
            &format!("ghcr.io/org/app:v1@{digest}")
        ));
        // A registry port is not a tag.
        assert!(image("localhost:5000/app", "localhost:5000/app"));
        assert!(image("localhost:5000/app", "localhost:5000/app:1"));
        assert!(!image("localhost:5000/*", "localhost:5001/app"));
    }

    #[test]
    fn docker_hub_spellings() {
        for written in [
            "nginx",
            "nginx:1.27",
            "library/nginx",
            "docker.io/nginx",
            "docker.io/library/nginx:1.27",
            "index.docker.io/library/nginx",
        ] {
            assert!(image("docker.io/library/nginx", written), "{written}");
            assert!(image("nginx", written), "{written}");
            assert!(image("docker.io/library/*", written), "{written}");
        }
        assert!(image("bitnami/*", "docker.io/bitnami/redis"));
        assert!(image("docker.io/bitnami/*", "bitnami/redis:7"));
        assert!(!image("nginx", "ghcr.io/org/nginx"));
        assert!(!image("docker.io/library/*", "ghcr.io/org/nginx"));
        assert!(ImageGlob::parse("index.docker.io/library/*").is_err());
    }

    #[test]
    fn unparsable_references_match_as_written_only() {
        assert!(image("Registry/App", "Registry/App"));
        assert!(!image("docker.io/**", "UPPER"));
        // `?` is one character, not one byte, in text that is not ASCII.
        assert!(image("registry/?pp", "registry/äpp"));
        assert!(!image("registry/??pp", "registry/äpp"));
        assert!(image("registry/*/x", "registry/日本/x"));
        assert!(!image("registry/?/x", "registry/日本/x"));
    }

    #[test]
    fn malformed_globs() {
        for bad in [
            "",
            "[",
            "ghcr.io/{a,b}",
            "a\\*",
            "ghcr.io//app",
            "/app",
            "app/",
            "ghcr.io/a**",
            "ghcr.io/***",
            "ghcr.io/a b",
            "ghcr.io/ä",
        ] {
            assert!(ImageGlob::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ImageGlob::parse(&"a".repeat(MAX_GLOB_LEN + 1)).is_err());
    }

    #[test]
    fn namespace_globs() {
        let g = NameGlob::parse("prod-*").unwrap();
        assert!(g.matches("prod-eu"));
        assert!(g.matches("prod-"));
        assert!(!g.matches("prod"));
        assert!(!g.matches("staging-prod-eu"));
        assert!(NameGlob::parse("*").unwrap().matches("anything"));
        assert!(NameGlob::parse("team-?").unwrap().matches("team-a"));
        for bad in ["", "Prod", "prod/eu", "prod_eu", "[a]"] {
            assert!(NameGlob::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn many_stars_stay_cheap() {
        let glob = format!("{}b", "*a".repeat(100));
        let g = NameGlob::parse(&glob).unwrap();
        assert!(!g.matches(&"a".repeat(5000)));
        assert!(g.matches(&format!("{}b", "a".repeat(5000))));
    }
}
