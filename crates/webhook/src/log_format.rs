//! The webhook's JSON log lines: one object per event, `{"timestamp":…,"level":…,"fields":{"message":…,…},
//! "target":…}`, the shape of tracing-subscriber's JSON format (which it replaces), written straight into the
//! line's buffer. tracing-subscriber's JSON format went through serde and an `io::Write` adapter that checked
//! every piece for UTF-8: a sixth of the webhook's CPU per cached review was its decision line.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats each event as one JSON object on one line. Field values keep their kind: integers and booleans as
/// JSON numbers and booleans, finite floats as numbers (others as strings), everything else (`%value`,
/// `?value`, errors) as the string it displays as. Spans are not written (the webhook opens none).
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut writer, time::OffsetDateTime::now_utc())?;
        write!(writer, "\",\"level\":\"{}\",\"fields\":{{", meta.level())?;
        let mut fields = JsonFields {
            out: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str("},\"target\":")?;
        write_string(&mut writer, meta.target())?;
        writer.write_str("}\n")
    }
}

/// RFC 3339 in UTC with microseconds: `2026-12-07T01:31:00.748496Z`.
fn write_timestamp(out: &mut impl fmt::Write, t: time::OffsetDateTime) -> fmt::Result {
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Writes each field as `"name":value`, comma-separated.
struct JsonFields<'w, W: fmt::Write> {
    out: &'w mut W,
    first: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> JsonFields<'_, W> {
    /// Writes one field, unless an earlier one failed (`Visit` cannot return the error: it is kept).
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.write_field(field, value);
        }
    }

    fn write_field(
        &mut self,
        field: &Field,
        value: impl FnOnce(&mut W) -> fmt::Result,
    ) -> fmt::Result {
        if !self.first {
            self.out.write_char(',')?;
        }
        self.first = false;
        write_string(self.out, field.name())?;
        self.out.write_char(':')?;
        value(self.out)
    }
}

impl<W: fmt::Write> Visit for JsonFields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| write_string(out, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: those are written as strings.
        if value.is_finite() {
            self.field(field, |out| write!(out, "{value}"));
        } else {
            self.field(field, |out| write!(out, "\"{value}\""));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value}")?;
            out.write_char('"')
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// `text` as a JSON string.
fn write_string(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(text)?;
    out.write_char('"')
}

/// Escapes what it is given for the inside of a JSON string: `"`, `\` and control characters.
struct Escaped<'w, W: fmt::Write>(&'w mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, b) in text.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f | 0x7f => "",
                _ => continue,
            };
            self.0.write_str(text.get(plain..i).unwrap_or_default())?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(text.get(plain..).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The lines `emit` logs through [`JsonLines`].
    fn lines(emit: impl FnOnce()) -> Vec<String> {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[derive(Debug)]
    struct Failure;

    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("it \"broke\"\nbadly")
        }
    }

    impl std::error::Error for Failure {}

    #[test]
    fn each_event_is_one_json_object_with_typed_fields() {
        let error = Failure;
        let out = lines(|| {
            tracing::info!(
                uid = "a\"b\\c\nd\te\u{1}f\u{7f}é",
                images = 3u64,
                delta = -2i64,
                ready = true,
                ratio = 0.5f64,
                nan = f64::NAN,
                shown = %"x\"y",
                debugged = ?Some("q"),
                error = &error as &(dyn std::error::Error + 'static),
                "admission decision"
            );
            tracing::warn!("second");
        });
        assert_eq!(out.len(), 2, "{out:?}");
        let line: serde_json::Value = serde_json::from_str(&out[0]).expect("valid JSON");
        let fields = &line["fields"];
        assert_eq!(fields["message"], "admission decision");
        assert_eq!(fields["uid"], "a\"b\\c\nd\te\u{1}f\u{7f}é");
        assert_eq!(fields["images"], 3);
        assert_eq!(fields["delta"], -2);
        assert_eq!(fields["ready"], true);
        assert_eq!(fields["ratio"], 0.5);
        assert_eq!(fields["nan"], "NaN");
        assert_eq!(fields["shown"], "x\"y");
        assert_eq!(fields["debugged"], "Some(\"q\")");
        assert_eq!(fields["error"], "it \"broke\"\nbadly");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], module_path!());
        // The shape is tracing-subscriber's JSON format's, key for key and in that order.
        let mut keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["fields", "level", "target", "timestamp"]);
        assert!(out[0].starts_with("{\"timestamp\":\""), "{}", out[0]);
        assert!(
            out[0].contains(
                "\"level\":\"INFO\",\"fields\":{\"message\":\"admission decision\",\"uid\":"
            ),
            "{}",
            out[0]
        );
        assert!(out[0].ends_with(&format!(",\"target\":\"{}\"}}", module_path!())));
        let second: serde_json::Value = serde_json::from_str(&out[1]).unwrap();
        assert_eq!(second["level"], "WARN");
        assert_eq!(second["fields"], serde_json::json!({"message": "second"}));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let t = time::macros::datetime!(2026-01-02 03:04:05.000_678_9 UTC);
        let mut s = String::new();
        write_timestamp(&mut s, t).unwrap();
        assert_eq!(s, "2026-01-02T03:04:05.000678Z");
        let out = lines(|| tracing::info!("now"));
        let line: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        let stamp = line["timestamp"].as_str().unwrap();
        let parsed =
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
                .expect("RFC 3339");
        assert!(
            (time::OffsetDateTime::now_utc() - parsed)
                .whole_seconds()
                .abs()
                < 60
        );
        assert_eq!(stamp.len(), "2026-01-02T03:04:05.000678Z".len());
    }

    #[test]
    fn escaping_covers_every_control_character() {
        for c in (0u8..=0x1f).chain([0x7f]).map(char::from) {
            let mut s = String::new();
            write_string(&mut s, &format!("<{c}>")).unwrap();
            let back: String = serde_json::from_str(&s).expect("valid JSON string");
            assert_eq!(back, format!("<{c}>"));
            assert!(!s.contains(c), "{c:?} left raw in {s}");
        }
    }
}
