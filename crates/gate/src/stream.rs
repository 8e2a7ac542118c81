//! Streaming read of a trivy report: one `Results[]` entry at a time, through a reused buffer.
//!
//! Memory is bounded by the largest single result (not the report), and every byte of the
//! document is still validated: each result and each other top-level value is parsed by
//! serde_json, the top-level punctuation here, and every byte is checked to be UTF-8 as it is
//! read (serde_json checks UTF-8 only in the strings it keeps, not in skipped fields). A report
//! of any size is read once.
use std::io::Read;

use serde::de::IgnoredAny;

use crate::error::GateError;
use crate::report::{ScanResult, TrivyInfo};

const READ_SIZE: usize = 8 << 20;

/// The top-level fields of a report other than `Results`.
#[derive(Debug, Clone, Default)]
pub struct ReportHeader {
    /// `SchemaVersion` (always 2 once [`read_report`] returned `Ok`).
    pub schema_version: Option<i64>,
    /// `ArtifactName`.
    pub artifact_name: Option<String>,
    /// `ArtifactType`.
    pub artifact_type: Option<String>,
    /// `CreatedAt`.
    pub created_at: Option<String>,
    /// `Trivy.Version`.
    pub trivy_version: Option<String>,
    /// How many `Results[]` entries were read.
    pub results: u64,
}

struct Buffer<R> {
    reader: R,
    chunk: usize,
    /// Reused storage; `data[start..end]` is unread input.
    data: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Bytes dropped from the front of `data` so far (for absolute offsets in errors).
    dropped: u64,
    /// `data[..checked]` is known to be UTF-8; `data[checked..end]` is at most the first bytes
    /// of a character whose rest has not been read yet.
    checked: usize,
}

/// The error for a report that is not UTF-8 at byte `offset`.
pub(crate) fn invalid_utf8(offset: u64) -> GateError {
    GateError::ReportStructure {
        offset,
        message: "invalid UTF-8 (JSON is UTF-8; every byte of the report is checked, also in \
                  fields the gate skips)"
            .to_owned(),
    }
}

impl<R: Read> Buffer<R> {
    fn pending(&self) -> &[u8] {
        self.data.get(self.start..self.end).unwrap_or_default()
    }

    fn offset(&self, relative: usize) -> u64 {
        self.dropped + (self.start + relative) as u64
    }

    /// Reads more input: at least as much again as is pending, so rescans stay linear.
    fn fill(&mut self) -> Result<bool, GateError> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.dropped += self.start as u64;
            self.end -= self.start;
            self.checked = self.checked.saturating_sub(self.start);
            self.start = 0;
        }
        let want = self.chunk.max(self.end);
        if self.data.len() < self.end + want {
            self.data.resize(self.end + want, 0);
        }
        let old = self.end;
        let limit = self.end + want;
        while self.end < limit {
            let slot = self.data.get_mut(self.end..limit).unwrap_or_default();
            match self.reader.read(slot) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(GateError::ReportRead(e)),
            }
        }
        self.check_utf8()?;
        Ok(self.end > old)
    }

    /// Checks the bytes read since the last check; a character cut by the end of the read is
    /// checked with the next one (or is an error at the end of the input).
    fn check_utf8(&mut self) -> Result<(), GateError> {
        let unchecked = self.data.get(self.checked..self.end).unwrap_or_default();
        match std::str::from_utf8(unchecked) {
            Ok(_) => self.checked = self.end,
            Err(error) if error.error_len().is_none() && !self.eof => {
                self.checked += error.valid_up_to();
            }
            Err(error) => {
                return Err(invalid_utf8(
                    self.dropped + (self.checked + error.valid_up_to()) as u64,
                ));
            }
        }
        Ok(())
    }

    /// Skips whitespace; returns the next byte (not consumed), or `None` at end of input.
    fn peek(&mut self) -> Result<Option<u8>, GateError> {
        loop {
            let pending = self.pending();
            let found = pending
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .and_then(|i| pending.get(i).map(|&byte| (i, byte)));
            let skipped = pending.len();
            if let Some((i, byte)) = found {
                self.start += i;
                return Ok(Some(byte));
            }
            self.start += skipped;
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn expect(&mut self, byte: u8, context: &str) -> Result<(), GateError> {
        match self.peek()? {
            Some(found) if found == byte => {
                self.start += 1;
                Ok(())
            }
            Some(found) => Err(GateError::ReportStructure {
                offset: self.offset(0),
                message: format!(
                    "expected `{}` {context}, found `{}`",
                    char::from(byte),
                    char::from(found).escape_default()
                ),
            }),
            None => Err(self.truncated(context)),
        }
    }

    fn truncated(&self, context: &str) -> GateError {
        GateError::ReportStructure {
            offset: self.offset(self.pending().len()),
            message: format!("the report is truncated: input ended {context}"),
        }
    }

    /// The length of the JSON value at the front of the pending bytes, reading more as needed.
    fn value_len(&mut self, context: &str) -> Result<usize, GateError> {
        loop {
            if let Some(len) = value_extent(self.pending()) {
                return Ok(len);
            }
            if !self.fill()? {
                // At end of input a bare scalar ends with the data.
                let pending = self.pending();
                if !pending.is_empty() && !matches!(pending.first(), Some(b'{' | b'[' | b'"')) {
                    return Ok(pending.len());
                }
                return Err(self.truncated(context));
            }
        }
    }
}

/// Finds the end of the JSON value starting at `bytes[0]`, or `None` if it needs more bytes.
/// Only strings and nesting are tracked; serde_json validates the value afterwards.
fn value_extent(bytes: &[u8]) -> Option<usize> {
    match bytes.first()? {
        b'"' => string_end(bytes, 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = 0;
            while let Some(&byte) = bytes.get(i) {
                match byte {
                    b'"' => {
                        i = string_end(bytes, i + 1)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => bytes
            .iter()
            .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace()),
    }
}

/// The index just past the closing quote of a string whose content starts at `from`.
fn string_end(bytes: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let rest = bytes.get(from..)?;
        let i = memchr::memchr2(b'"', b'\\', rest)?;
        match rest.get(i) {
            Some(b'"') => return Some(from + i + 1),
            _ => from += i + 2,
        }
    }
}

/// Reads a report from `reader`, handing each `Results[]` entry to `on_result` as soon as it
/// is parsed (it borrows from the buffer and is dropped after the call).
///
/// Fails on malformed or truncated JSON (naming the byte offset and, inside a result, the
/// line and column within it), on a top-level array (SchemaVersion 1) and on a
/// `SchemaVersion` other than 2 (as soon as it is seen).
pub fn read_report<R: Read>(
    reader: R,
    on_result: impl FnMut(&ScanResult<'_>),
) -> Result<ReportHeader, GateError> {
    read_report_in_chunks(reader, READ_SIZE, on_result)
}

/// [`read_report`] reading at least `chunk` bytes at a time (8 MiB there; small values are
/// for tests of entries split across reads).
pub fn read_report_in_chunks<R: Read>(
    reader: R,
    chunk: usize,
    mut on_result: impl FnMut(&ScanResult<'_>),
) -> Result<ReportHeader, GateError> {
    let mut buffer = Buffer {
        reader,
        chunk: chunk.max(1),
        data: Vec::new(),
        start: 0,
        end: 0,
        eof: false,
        dropped: 0,
        checked: 0,
    };
    let mut header = ReportHeader::default();
    match buffer.peek()? {
        None => return Err(GateError::EmptyReport),
        Some(b'[') => return Err(GateError::LegacyArrayReport),
        Some(_) => buffer.expect(b'{', "at the start of the report")?,
    }
    if buffer.peek()? == Some(b'}') {
        return Err(GateError::MissingSchemaVersion);
    }
    loop {
        let key_offset = buffer.offset(0);
        if buffer.peek()? != Some(b'"') {
            buffer.expect(b'"', "(a key) in the top-level object")?;
        }
        let len = buffer.value_len("inside a top-level key")?;
        let key: String = parse_at(&buffer, len, key_offset, "a top-level key")?;
        buffer.start += len;
        buffer.expect(b':', &format!("after the key `{key}`"))?;
        buffer.peek()?;
        let value_offset = buffer.offset(0);
        if key == "Results" && buffer.peek()? == Some(b'[') {
            buffer.start += 1;
            read_results(&mut buffer, &mut header, &mut on_result)?;
        } else {
            let len = buffer.value_len(&format!("inside the value of `{key}`"))?;
            let context = format!("`{key}`");
            match key.as_str() {
                "SchemaVersion" => {
                    let version: i64 = parse_at(&buffer, len, value_offset, &context)?;
                    if version != 2 {
                        return Err(GateError::UnsupportedSchemaVersion { found: version });
                    }
                    header.schema_version = Some(version);
                }
                "ArtifactName" => {
                    header.artifact_name = parse_at(&buffer, len, value_offset, &context)?
                }
                "ArtifactType" => {
                    header.artifact_type = parse_at(&buffer, len, value_offset, &context)?
                }
                "CreatedAt" => header.created_at = parse_at(&buffer, len, value_offset, &context)?,
                "Trivy" => {
                    let info: Option<TrivyInfo<'_>> =
                        parse_at(&buffer, len, value_offset, &context)?;
                    header.trivy_version = info.and_then(|i| i.version.map(|v| v.to_string()));
                }
                "Results" => {
                    // Not an array: only `null` is accepted (no results).
                    let _: Option<Vec<IgnoredAny>> =
                        parse_at(&buffer, len, value_offset, &context)?;
                }
                _ => {
                    let _: IgnoredAny = parse_at(&buffer, len, value_offset, &context)?;
                }
            }
            buffer.start += len;
        }
        match buffer.peek()? {
            Some(b',') => buffer.start += 1,
            Some(b'}') => {
                buffer.start += 1;
                break;
            }
            Some(_) => buffer.expect(b'}', "or `,` after a top-level value")?,
            None => return Err(buffer.truncated("inside the top-level object")),
        }
    }
    if let Some(byte) = buffer.peek()? {
        return Err(GateError::ReportStructure {
            offset: buffer.offset(0),
            message: format!(
                "unexpected `{}` after the end of the report",
                char::from(byte).escape_default()
            ),
        });
    }
    match header.schema_version {
        Some(_) => Ok(header),
        None => Err(GateError::MissingSchemaVersion),
    }
}

fn read_results<R: Read>(
    buffer: &mut Buffer<R>,
    header: &mut ReportHeader,
    on_result: &mut impl FnMut(&ScanResult<'_>),
) -> Result<(), GateError> {
    if buffer.peek()? == Some(b']') {
        buffer.start += 1;
        return Ok(());
    }
    loop {
        let index = header.results;
        let context = format!("inside Results[{index}]");
        if buffer.peek()?.is_none() {
            return Err(buffer.truncated(&context));
        }
        let offset = buffer.offset(0);
        // serde_json finds the end of the entry while parsing it; an entry cut by the end of
        // the buffer (an EOF error) is parsed again once more input is in.
        let parsed = {
            let mut entries = serde_json::Deserializer::from_slice(buffer.pending())
                .into_iter::<ScanResult<'_>>();
            match entries.next() {
                Some(Ok(result)) => {
                    on_result(&result);
                    Some(entries.byte_offset())
                }
                Some(Err(error)) if error.is_eof() => None,
                Some(Err(error)) => {
                    return Err(GateError::ReportResult {
                        index,
                        offset,
                        error,
                    });
                }
                None => None,
            }
        };
        match parsed {
            Some(len) => buffer.start += len,
            None => {
                if !buffer.fill()? {
                    return Err(buffer.truncated(&context));
                }
                continue;
            }
        }
        header.results += 1;
        match buffer.peek()? {
            Some(b',') => buffer.start += 1,
            Some(b']') => {
                buffer.start += 1;
                return Ok(());
            }
            Some(_) => buffer.expect(b']', "or `,` after a result")?,
            None => return Err(buffer.truncated("inside `Results`")),
        }
    }
}

fn parse_at<'b, R: Read, T: serde::Deserialize<'b>>(
    buffer: &'b Buffer<R>,
    len: usize,
    offset: u64,
    what: &str,
) -> Result<T, GateError> {
    let bytes = buffer.pending().get(..len).unwrap_or_default();
    serde_json::from_slice(bytes).map_err(|error| GateError::ReportValue {
        what: what.to_owned(),
        offset,
        error,
    })
}
