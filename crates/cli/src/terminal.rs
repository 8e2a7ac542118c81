//! What kibaship's command lines write for people: standard output that a closed reader ends quietly, and text from
//! registries, certificates and bundles with its control characters escaped.
//!
//! Registry-supplied text (artifact and media types, annotations, error bodies, certificate names) can
//! carry newlines and terminal escape codes; printed raw, an `artifactType` could forge a whole row of
//! `referrers` output, in colour. Text output therefore shows every control character as a Rust-style
//! escape (`\n`, `\u{1b}`). JSON output is left exact: serde_json escapes controls itself.
use std::fmt;
use std::io::{self, BufWriter, StdoutLock, Write};

/// `text` for a terminal: C0 and C1 control characters and DEL are shown escaped (`\n`, `\t`, `\u{1b}`),
/// a backslash as itself; everything else as it is.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(char::is_control) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            write!(f, "{}", c.escape_default())?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// Standard output, buffered. A reader that went away (`kibaverify referrers … | head -1`) is not an
/// error of the command: the first broken-pipe write turns every later write into a no-op, and the
/// command ends with the exit code its work earned, printing nothing about the pipe.
pub struct Stdout {
    out: BufWriter<StdoutLock<'static>>,
    closed: bool,
}

impl Stdout {
    pub fn lock() -> Self {
        Stdout {
            out: BufWriter::new(io::stdout().lock()),
            closed: false,
        }
    }

    /// Writes `text` and a newline. Errors other than a closed pipe are returned.
    pub fn line(&mut self, text: impl fmt::Display) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let written = writeln!(self.out, "{text}");
        self.absorb_closed_pipe(written)
    }

    /// Flushes what is buffered: before writing to stderr, and at the end (BufWriter's own flush on drop
    /// ignores every error).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let flushed = self.out.flush();
        self.absorb_closed_pipe(flushed)
    }

    fn absorb_closed_pipe(&mut self, result: io::Result<()>) -> io::Result<()> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

/// Prints one line to standard output, quietly doing nothing once the reader has gone.
pub fn print_line(text: impl fmt::Display) -> io::Result<()> {
    let mut out = Stdout::lock();
    out.line(text)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        let forged = "application/x\n\u{1b}[32msha256:0000\u{1b}[0m\tok\u{7f}\u{85}é✓";
        assert_eq!(
            Escaped(forged).to_string(),
            "application/x\\n\\u{1b}[32msha256:0000\\u{1b}[0m\\tok\\u{7f}\\u{85}é✓"
        );
        assert_eq!(Escaped("plain text").to_string(), "plain text");
        assert_eq!(Escaped("").to_string(), "");
    }
}
