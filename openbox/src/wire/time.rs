//! The three clocks of the wire format.
//!
//! * `timestamp` of every evaluate body: RFC 3339 UTC with exactly three fractional digits
//!   (truncated, not rounded) and a literal `Z`, e.g. `2026-11-24T02:58:37.635Z`;
//! * ActivityCompleted `start_time`/`end_time`: float Unix **seconds** (what 1.1.1 sends; Core's
//!   published TypeSpec says milliseconds, but Core accepts what the reference sends);
//! * span times: integer Unix **nanoseconds**.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};

/// Formats `t` as the wire `timestamp` (`%Y-%m-%dT%H:%M:%S.mmmZ`, milliseconds truncated).
///
/// Every evaluation carries one, so the fields are written directly instead of through a
/// `strftime` pattern that would be parsed on every call.
pub fn format_timestamp(t: SystemTime) -> String {
    use std::fmt::Write as _;
    let dt: DateTime<Utc> = t.into();
    let mut out = String::with_capacity(24);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        // A leap second shows as 1000–1999 ms; the truncated milliseconds stay within 999.
        dt.timestamp_subsec_millis() % 1000
    );
    out
}

/// The wire `timestamp` of the current instant.
pub fn now_timestamp() -> String {
    format_timestamp(SystemTime::now())
}

fn since_epoch(t: SystemTime) -> Duration {
    // A clock before 1970 is a broken clock; report the epoch rather than panic.
    t.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// `t` as float Unix seconds (ActivityCompleted `start_time` / `end_time`).
pub fn unix_seconds(t: SystemTime) -> f64 {
    since_epoch(t).as_secs_f64()
}

/// `t` as integer Unix nanoseconds (span `start_time` / `end_time`).
pub fn unix_nanos(t: SystemTime) -> u64 {
    u64::try_from(since_epoch(t).as_nanos()).unwrap_or(u64::MAX)
}

/// Parses an approval `approval_expiration_time` as Core sends it: RFC 3339 / ISO 8601 with `Z`
/// or an offset, or a naive `YYYY-MM-DD HH:MM:SS[.f]` / `YYYY-MM-DDTHH:MM:SS[.f]`, which is UTC.
/// Returns `None` for anything else (the caller then ignores the expiry, as the reference does).
pub fn parse_expiration(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc).into());
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(naive.and_utc().into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn timestamp_has_three_truncated_fraction_digits_and_z() {
        // 2026-11-24T02:58:37.635999999Z must truncate to .635, not round to .636
        let t = at(1_795_489_117, 635_999_999);
        assert_eq!(format_timestamp(t), "2026-11-24T02:58:37.635Z");
        assert_eq!(format_timestamp(at(0, 0)), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn timestamp_matches_the_strftime_pattern() {
        let pattern = |t: SystemTime| {
            DateTime::<Utc>::from(t)
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string()
        };
        // From 1970 to 9999, in steps that hit every field and odd nanoseconds.
        let mut secs = 0u64;
        let mut nanos = 0u32;
        while secs < 253_402_300_799 {
            let t = at(secs, nanos);
            assert_eq!(format_timestamp(t), pattern(t), "{secs}.{nanos:09}");
            secs += 86_399 * 31 + 3_607;
            nanos = (nanos + 123_456_789) % 1_000_000_000;
        }
    }

    #[test]
    fn seconds_and_nanos() {
        let t = at(1_795_489_117, 500_000_000);
        assert_eq!(unix_seconds(t), 1_795_489_117.5);
        assert_eq!(unix_nanos(t), 1_795_489_117_500_000_000);
        assert_eq!(unix_nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }

    #[test]
    fn expiration_formats() {
        let want = at(1_795_489_117, 0);
        assert_eq!(parse_expiration("2026-11-24T02:58:37Z"), Some(want));
        assert_eq!(parse_expiration("2026-11-24T03:58:37+01:00"), Some(want));
        assert_eq!(parse_expiration("2026-11-24 02:58:37"), Some(want));
        assert_eq!(parse_expiration("2026-11-24T02:58:37"), Some(want));
        assert_eq!(
            parse_expiration("2026-11-24 02:58:37.250"),
            Some(at(1_795_489_117, 250_000_000))
        );
        assert_eq!(parse_expiration("tomorrow"), None);
        assert_eq!(parse_expiration(""), None);
    }
}
