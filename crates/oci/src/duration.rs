//! Durations as cosign (Go's `time.ParseDuration`) writes them: `30s`, `3m`, `1m30s`, `1.5h`, `500ms`. Pure.
use std::time::Duration;

/// A duration that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (write e.g. 30s, 3m, 1m30s, 1.5h or 500ms)")]
pub struct DurationError {
    /// The text given.
    pub input: String,
    /// What was wrong.
    pub reason: &'static str,
}

/// Parses a Go-style duration: one or more `<number><unit>` with the units `ns`, `us` (`µs`), `ms`, `s`, `m`
/// and `h`, the number possibly fractional (`1.5h`). `0` alone is zero. Signs are refused (no negative
/// durations here), and so is anything beyond `u64::MAX` seconds.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let fail = |reason| DurationError {
        input: input.to_string(),
        reason,
    };
    let text = input.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(fail("it is empty"));
    }
    let mut rest = text;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(fail("expected a number"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => return Err(fail("a number needs a unit (ns, us, ms, s, m or h)")),
            _ => return Err(fail("unknown unit (use ns, us, ms, s, m or h)")),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        // At most 39 digits fit u128; anything that long is out of range anyway.
        if whole.len() > 30 || fraction.len() > 30 {
            return Err(fail("it is out of range"));
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| fail("expected a number"))?
        };
        let mut nanos = whole
            .checked_mul(unit_nanos)
            .ok_or_else(|| fail("it is out of range"))?;
        let mut scale = unit_nanos;
        for digit in fraction.bytes() {
            scale /= 10;
            nanos = nanos.saturating_add(u128::from(digit - b'0') * scale);
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| fail("it is out of range"))?;
        rest = next;
    }
    let secs =
        u64::try_from(total_nanos / 1_000_000_000).map_err(|_| fail("it is out of range"))?;
    let sub = u32::try_from(total_nanos % 1_000_000_000).map_err(|_| fail("it is out of range"))?;
    Ok(Duration::new(secs, sub))
}

/// Writes a duration the way [`parse_duration`] reads it, shortest first: `500ms`, `2s`, `1.5s`, `3m`,
/// `1m30s`, `2h5m`.
pub fn format_duration(d: Duration) -> String {
    let millis = d.as_millis();
    if millis == 0 && !d.is_zero() {
        return format!("{}µs", d.as_micros());
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let secs = d.as_secs();
    let (hours, minutes, seconds) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let frac_millis = d.subsec_millis();
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if seconds > 0 || frac_millis > 0 {
        if frac_millis > 0 {
            let fraction = format!("{frac_millis:03}");
            out.push_str(&format!("{seconds}.{}s", fraction.trim_end_matches('0')));
        } else {
            out.push_str(&format!("{seconds}s"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_style_durations() {
        let ok = [
            ("30s", Duration::from_secs(30)),
            ("3m", Duration::from_secs(180)),
            ("1m30s", Duration::from_secs(90)),
            ("1h2m3s", Duration::from_secs(3723)),
            ("1.5h", Duration::from_secs(5400)),
            ("500ms", Duration::from_millis(500)),
            ("2.25s", Duration::from_millis(2250)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            (".5s", Duration::from_millis(500)),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "3",
            "-3s",
            "+3s",
            "3x",
            "s",
            "1..5s",
            ".s",
            "3 m",
            "1d",
            "3m-",
            "9999999999999999999999h",
            "99999999999999999999999999999999999999999999s",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid duration {bad:?}: ")),
                "{err}"
            );
        }
    }

    #[test]
    fn durations_are_written_as_they_are_read() {
        for (d, text) in [
            (Duration::from_secs(180), "3m"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(2), "2s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(7500), "2h5m"),
            (Duration::ZERO, "0ms"),
        ] {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Ok(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_micros(5)), "5µs");
        // The largest duration is written without overflow.
        assert!(format_duration(Duration::MAX).ends_with('s'));
    }
}
