//! The `date` and `currentdate` tests (RFC 5260): reading a date-time out of a header field,
//! moving it into the zone the script asked for, and formatting one date-part (§4.2).

use postern_mail::date::{civil_utc, parse_rfc5322};

/// The zone a date is shown in (RFC 5260 §4.1), offsets in minutes east of UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Zone {
    /// No zone argument: the server's local zone (this offset).
    Local(i32),
    /// `:originalzone`: the zone written in the header field.
    Original,
    /// `:zone "+hhmm"`.
    Fixed(i32),
}

/// RFC 5260 §4.2: the date-part names (case-insensitive).
const PARTS: [&str; 13] = [
    "year", "month", "day", "date", "julian", "hour", "minute", "second", "time", "iso8601",
    "std11", "zone", "weekday",
];

/// Whether `part` is a date-part RFC 5260 §4.2 defines (case-insensitive).
pub(crate) fn is_valid_part(part: &str) -> bool {
    PARTS.iter().any(|p| p.eq_ignore_ascii_case(part))
}

/// RFC 5260 §4.1: a `:zone` argument, `+hhmm` or `-hhmm`, as minutes east of UTC; `None`
/// when it is not one (hours above 23 or minutes above 59 included).
pub(crate) fn parse_zone(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 5 || !(b[0] == b'+' || b[0] == b'-') || !b[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let hours: i32 = s[1..3].parse().ok()?;
    let minutes: i32 = s[3..5].parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    let total = hours * 60 + minutes;
    Some(if b[0] == b'-' { -total } else { total })
}

/// RFC 5260 §4: the date-part `part` of the date-time in a header field's `value`, shown in
/// `zone`. `None` when the value is not a date-time or `part` is unknown (the test then does
/// not match this field). For `Received`-like values the date-time is what follows the last
/// `;` (RFC 5321 §4.4), as Pigeonhole reads it.
pub(crate) fn header_part(value: &str, part: &str, zone: &Zone) -> Option<String> {
    let after_semicolon = value.rsplit(';').next().unwrap_or(value);
    let (text, unix) = match parse_rfc5322(value) {
        Some(unix) => (value, unix),
        None => (after_semicolon, parse_rfc5322(after_semicolon)?),
    };
    let offset = match zone {
        Zone::Local(minutes) | Zone::Fixed(minutes) => *minutes,
        Zone::Original => original_offset(text)?,
    };
    format_part(unix - i64::from(is_leap_second(text)), offset, part)
}

/// Whether the time of day is a leap second (`23:59:60`, RFC 5322 §3.3). Pigeonhole shows it
/// as second 59 of the same minute rather than rolling over into the next one.
fn is_leap_second(text: &str) -> bool {
    strip_comments(text)
        .split_ascii_whitespace()
        .find(|w| w.contains(':'))
        .is_some_and(|time| time.split(':').nth(2) == Some("60"))
}

/// RFC 5260 §5: the date-part `part` of `now` (Unix seconds). `:zone` gives a fixed zone and
/// no zone the local one; `:originalzone` is meaningless for `currentdate` (the compiler
/// refuses it) and falls back to the local `offset_minutes`.
pub(crate) fn current_part(
    now: i64,
    offset_minutes: i32,
    part: &str,
    zone: &Zone,
) -> Option<String> {
    let offset = match zone {
        Zone::Local(minutes) | Zone::Fixed(minutes) => *minutes,
        Zone::Original => offset_minutes,
    };
    format_part(now, offset, part)
}

/// RFC 5260 §4.2: one date-part of `unix` seen at `offset` minutes east of UTC.
fn format_part(unix: i64, offset: i32, part: &str) -> Option<String> {
    let c = civil_utc(unix + i64::from(offset) * 60);
    let zone = zone_text(offset, "");
    let date = format!("{:04}-{:02}-{:02}", c.year, c.month, c.day);
    let time = format!("{:02}:{:02}:{:02}", c.hour, c.minute, c.second);
    let value = match part.to_ascii_lowercase().as_str() {
        "year" => format!("{:04}", c.year),
        "month" => format!("{:02}", c.month),
        "day" => format!("{:02}", c.day),
        "date" => date,
        // Modified Julian Day: days since 1858-11-17, which is 40587 days before 1970-01-01.
        "julian" => (unix + i64::from(offset) * 60)
            .div_euclid(86_400)
            .saturating_add(40_587)
            .to_string(),
        "hour" => format!("{:02}", c.hour),
        "minute" => format!("{:02}", c.minute),
        "second" => format!("{:02}", c.second),
        "time" => time,
        // RFC 3339 date-time; UTC is written `Z`, as Pigeonhole does.
        "iso8601" if offset == 0 => format!("{date}T{time}Z"),
        "iso8601" => format!("{date}T{time}{}", zone_text(offset, ":")),
        "std11" => format!(
            "{}, {:02} {} {:04} {time} {zone}",
            c.weekday,
            c.day,
            c.month_name(),
            c.year
        ),
        "zone" => zone,
        "weekday" => WEEKDAY_NAMES
            .iter()
            .position(|w| *w == c.weekday)?
            .to_string(),
        _ => return None,
    };
    Some(value)
}

/// RFC 5260 §4.2 `weekday`: 0 is Sunday.
const WEEKDAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// `+hhmm` (or `+hh:mm` with `separator` ":").
fn zone_text(offset: i32, separator: &str) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.unsigned_abs();
    format!("{sign}{:02}{separator}{:02}", abs / 60, abs % 60)
}

/// The zone written in an RFC 5322 date-time, in minutes east of UTC: the word after the
/// time of day (`+hhmm` or an RFC 5322 §4.3 obsolete name); `-0000` when there is none.
fn original_offset(text: &str) -> Option<i32> {
    let cleaned = strip_comments(text);
    let mut words = cleaned.split_ascii_whitespace();
    words.find(|w| w.contains(':'))?;
    let Some(zone) = words.next() else {
        return Some(0);
    };
    if let Some(minutes) = parse_zone(zone) {
        return Some(minutes);
    }
    // RFC 5322 §4.3 obsolete zones; military letters other than Z count as -0000.
    let hours = match zone.to_ascii_uppercase().as_str() {
        "UT" | "GMT" => 0,
        "EDT" => -4,
        "EST" | "CDT" => -5,
        "CST" | "MDT" => -6,
        "MST" | "PDT" => -7,
        "PST" => -8,
        z if z.len() == 1 && z.bytes().all(|b| b.is_ascii_alphabetic()) => 0,
        _ => return None,
    };
    Some(hours * 60)
}

/// The text without RFC 5322 §3.2.2 comments, so `(PST)` is not taken for the zone.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut escaped = false;
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if depth > 0 => escaped = true,
            '(' => {
                depth += 1;
                out.push(' ');
            }
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "Tue, 1 Apr 1997 09:06:31 -0800 (PST)";

    /// RFC 5260 §4.2: every date-part, in the zone the header field was written in.
    #[test]
    fn parts_in_the_original_zone() {
        let part = |p: &str| header_part(DATE, p, &Zone::Original).unwrap();
        assert_eq!(part("year"), "1997");
        assert_eq!(part("month"), "04");
        assert_eq!(part("day"), "01");
        assert_eq!(part("date"), "1997-04-01");
        assert_eq!(part("julian"), "50539");
        assert_eq!(part("hour"), "09");
        assert_eq!(part("minute"), "06");
        assert_eq!(part("second"), "31");
        assert_eq!(part("time"), "09:06:31");
        assert_eq!(part("iso8601"), "1997-04-01T09:06:31-08:00");
        assert_eq!(part("std11"), "Tue, 01 Apr 1997 09:06:31 -0800");
        assert_eq!(part("zone"), "-0800");
        assert_eq!(part("weekday"), "2");
        assert_eq!(part("ISO8601"), "1997-04-01T09:06:31-08:00");
    }

    /// RFC 5260 §4.1: `:zone` shifts the date-time; the values match Pigeonhole's sieve-test.
    #[test]
    fn parts_in_another_zone() {
        assert_eq!(
            header_part(DATE, "iso8601", &Zone::Fixed(0)).as_deref(),
            Some("1997-04-01T17:06:31Z")
        );
        assert_eq!(
            header_part(DATE, "std11", &Zone::Fixed(-90)).as_deref(),
            Some("Tue, 01 Apr 1997 15:36:31 -0130")
        );
        assert_eq!(
            header_part(DATE, "iso8601", &Zone::Local(-90)).as_deref(),
            Some("1997-04-01T15:36:31-01:30")
        );
        // Crossing midnight changes the date, weekday and julian day.
        let late = "Mon, 31 Dec 2001 23:30:00 +0000";
        assert_eq!(
            header_part(late, "date", &Zone::Fixed(60)).as_deref(),
            Some("2002-01-01")
        );
        assert_eq!(
            header_part(late, "weekday", &Zone::Fixed(60)).as_deref(),
            Some("2")
        );
        assert_eq!(
            header_part(late, "julian", &Zone::Fixed(0)).as_deref(),
            Some("52274")
        );
        assert_eq!(
            header_part(late, "julian", &Zone::Fixed(60)).as_deref(),
            Some("52275")
        );
    }

    /// The date in a Received field follows its last semicolon (RFC 5321 §4.4); a
    /// semicolon inside a Date comment does not cut the date.
    #[test]
    fn received_fields() {
        assert_eq!(
            header_part(
                "Tue, 1 Apr 1997 09:06:31 -0800 (PST; x)",
                "zone",
                &Zone::Original
            )
            .as_deref(),
            Some("-0800")
        );
        let received = "from x by y with ESMTP id 1; Wed, 2 Apr 1997 18:06:31 +0200";
        assert_eq!(
            header_part(received, "iso8601", &Zone::Original).as_deref(),
            Some("1997-04-02T18:06:31+02:00")
        );
    }

    /// A leap second stays in its minute, as Pigeonhole's sieve-test shows it.
    #[test]
    fn leap_second() {
        let leap = "03 Dec 2026 03:59:60 +0000";
        assert_eq!(
            header_part(leap, "time", &Zone::Original).as_deref(),
            Some("03:59:59")
        );
        let end = "31 Dec 2016 23:59:60 +0000";
        assert_eq!(
            header_part(end, "date", &Zone::Original).as_deref(),
            Some("2016-12-31")
        );
    }

    /// The corpus's 22-odd-dates.eml, with the values Pigeonhole's sieve-test gives.
    #[test]
    fn odd_forms_as_pigeonhole() {
        let part = |v: &str, p: &str, z: Zone| header_part(v, p, &z).unwrap();
        let date = "Fri, 31 Dec 2016 23:59:60 -0000";
        assert_eq!(part(date, "time", Zone::Original), "23:59:59");
        assert_eq!(part(date, "zone", Zone::Original), "+0000");
        assert_eq!(
            part("Mon, 03 Dec 2026 03:59 +1345", "iso8601", Zone::Original),
            "2026-12-03T03:59:00+13:45"
        );
        assert_eq!(
            part("1 Jan 70 00:00:00 UT", "std11", Zone::Fixed(-720)),
            "Wed, 31 Dec 1969 12:00:00 -1200"
        );
    }

    #[test]
    fn obsolete_zones_and_failures() {
        assert_eq!(
            header_part("1 Jan 2024 17:50 EST", "zone", &Zone::Original).as_deref(),
            Some("-0500")
        );
        assert_eq!(
            header_part("1 Jan 2024 17:50:00", "zone", &Zone::Original).as_deref(),
            Some("+0000")
        );
        assert_eq!(header_part("not a date", "year", &Zone::Original), None);
        assert_eq!(header_part(DATE, "fortnight", &Zone::Original), None);
    }

    /// RFC 5260 §5: currentdate, at a fixed instant.
    #[test]
    fn current_date() {
        let now = 1_796_290_000; // 2026-12-03 09:26:40 UTC, a Thursday
        assert_eq!(
            current_part(now, 60, "time", &Zone::Local(60)).as_deref(),
            Some("10:26:40")
        );
        assert_eq!(
            current_part(now, 60, "date", &Zone::Fixed(-600)).as_deref(),
            Some("2026-12-02")
        );
        assert_eq!(
            current_part(now, 60, "hour", &Zone::Original).as_deref(),
            Some("10")
        );
        assert_eq!(
            current_part(now, 0, "weekday", &Zone::Local(0)).as_deref(),
            Some("4")
        );
        assert_eq!(current_part(now, 0, "nope", &Zone::Local(0)), None);
    }

    /// RFC 5260 §4.1 zone syntax and §4.2 part names.
    #[test]
    fn zones_and_part_names() {
        assert_eq!(parse_zone("+0100"), Some(60));
        assert_eq!(parse_zone("-0130"), Some(-90));
        assert_eq!(parse_zone("+0000"), Some(0));
        for bad in [
            "0100", "+100", "+01000", "+2400", "+0060", "UTC", "+01:00", "",
        ] {
            assert_eq!(parse_zone(bad), None, "{bad}");
        }
        assert!(is_valid_part("julian"));
        assert!(is_valid_part("Weekday"));
        assert!(!is_valid_part("week"));
    }
}
