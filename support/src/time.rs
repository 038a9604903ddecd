//! Time in milliseconds, the unit of every Fathom timestamp: durations, and
//! how timestamps are written and read (UTC, RFC 3339).

pub const SECOND_MS: i64 = 1_000;
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// `2026-11-23 13:05:09Z` from Unix milliseconds.
pub fn format_ms(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        Err(_) => format!("{ms} ms"),
    }
}

/// `2026-11-23T13:05:09.123Z` from Unix milliseconds, as `parse_time` reads it.
pub fn rfc3339(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => format!("{ms} ms"),
    }
}

/// Parses a point in time for the CLI: `now`, a duration from now (`+2h`,
/// `-30m`), or an RFC 3339 timestamp with an offset
/// (`2026-11-23T22:00:00Z`, `2026-11-23 22:00+01:00`). Returns Unix ms.
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, String> {
    let t = text.trim();
    if t == "now" {
        return Ok(now_ms);
    }
    if let Some(rest) = t.strip_prefix('+').or_else(|| t.strip_prefix('-')) {
        let secs = parse_duration_secs(rest)?;
        let ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        return Ok(if t.starts_with('-') {
            now_ms.saturating_sub(ms)
        } else {
            now_ms.saturating_add(ms)
        });
    }
    t.parse::<jiff::Timestamp>()
        .map(|ts| ts.as_millisecond())
        .map_err(|e| {
            format!(
                "{t:?} is not a time: use now, +2h, -30m, or a timestamp like 2026-11-23T22:00:00Z ({e})"
            )
        })
}

/// Parses `90s`, `30m`, `1h`, `7d` or plain seconds.
pub fn parse_duration_secs(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 30m, 1h or 7d"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use s, m, h or d)"
            ))
        }
    };
    n.checked_mul(factor)
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("{text:?} must be more than zero and not absurdly large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_ms(1_795_439_162_480), "2026-11-23 13:06:02Z");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(parse_duration_secs("1h"), Ok(3600));
        assert_eq!(parse_duration_secs("90"), Ok(90));
        assert_eq!(parse_duration_secs("7d"), Ok(604_800));
        assert!(parse_duration_secs("1w")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration_secs("0s").is_err());
        assert!(parse_duration_secs("h").is_err());
    }

    #[test]
    fn points_in_time() {
        let now = 1_795_439_162_480;
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("+2h", now), Ok(now + 7_200_000));
        assert_eq!(parse_time("-30m", now), Ok(now - 1_800_000));
        assert_eq!(parse_time("2026-11-23T13:06:02.48Z", 0), Ok(now));
        assert_eq!(rfc3339(now), "2026-11-23T13:06:02.480Z");
        assert_eq!(parse_time(&rfc3339(now), 0), Ok(now));
        assert_eq!(parse_time("2026-11-23 14:06:02.48+01:00", 0), Ok(now));
        let err = parse_time("tomorrow", now).unwrap_err();
        assert!(err.contains("not a time"), "{err}");
        assert!(
            parse_time("2026-11-23T13:06:02", now).is_err(),
            "an offset is required"
        );
    }
}
