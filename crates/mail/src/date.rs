//! Dates: RFC 5322 §3.3 date-time written from and read into Unix time, and the proleptic
//! Gregorian calendar arithmetic behind it (days from a civil date and back), done once here.

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
/// Three-letter English month names, January first (RFC 5322 §3.3 `month`).
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A Unix time broken down into its UTC calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Proleptic Gregorian year (negative before year 1 BC = 0).
    pub year: i64,
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
    /// 0–23.
    pub hour: u32,
    /// 0–59.
    pub minute: u32,
    /// 0–59.
    pub second: u32,
    /// Three-letter English weekday name (`Thu`).
    pub weekday: &'static str,
}

impl Civil {
    /// Three-letter English month name (`Jan`).
    pub fn month_name(&self) -> &'static str {
        MONTHS[(self.month - 1) as usize]
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1–12, `day` 1–31; not checked).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        yoe + era * 400 + i64::from(month <= 2),
        month as u32,
        day as u32,
    )
}

/// The UTC calendar fields of a Unix time.
pub fn civil_utc(unix: i64) -> Civil {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: (secs / 3600) as u32,
        minute: (secs % 3600 / 60) as u32,
        second: (secs % 60) as u32,
        // 1970-01-01 was a Thursday.
        weekday: WEEKDAYS[(days + 4).rem_euclid(7) as usize],
    }
}

/// RFC 5322 §3.3 date-time of a Unix time, in UTC, with a two-digit day
/// (`Thu, 01 Jan 1970 00:00:00 +0000`). The one form every postern header and report uses.
pub fn rfc5322(unix: i64) -> String {
    let c = civil_utc(unix);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        c.weekday,
        c.day,
        c.month_name(),
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// Reads an RFC 5322 §3.3 date-time (and the §4.3 obsolete forms: two- and three-digit years,
/// named zones, no seconds) into Unix time. Comments and the weekday are skipped, not checked.
/// `None` when it is not a date.
pub fn parse_rfc5322(s: &str) -> Option<i64> {
    let cleaned = strip_comments(s);
    let mut words = cleaned
        .split(|c: char| c.is_ascii_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .peekable();
    // [ day-of-week "," ]
    if words.peek()?.starts_with(|c: char| c.is_ascii_alphabetic()) {
        words.next();
    }
    let day: u32 = number(words.next()?, 1, 2)?;
    let month_word = words.next()?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_word))? as u32
        + 1;
    let year_word = words.next()?;
    let mut year: i64 = i64::from(number::<u32>(year_word, 2, 9)?);
    // RFC 5322 §4.3: two digits 00–49 are 20xx, 50–99 19xx; three digits add 1900.
    match year_word.len() {
        2 if year < 50 => year += 2000,
        2 => year += 1900,
        3 => year += 1900,
        _ => {}
    }
    let mut time = words.next()?.split(':');
    let hour: u32 = number(time.next()?, 1, 2)?;
    let minute: u32 = number(time.next()?, 1, 2)?;
    let second: u32 = match time.next() {
        Some(s) => number(s, 1, 2)?,
        None => 0,
    };
    if time.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if !(1..=31).contains(&day) || day > days_in_month(year, month) {
        return None;
    }
    let offset = zone_offset(words.next().unwrap_or("-0000"))?;
    let days = days_from_civil(year, month, day);
    Some(
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
            - offset,
    )
}

/// Days in a month of the proleptic Gregorian calendar.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// A run of `min..=max` ASCII digits as a number.
fn number<T: std::str::FromStr>(s: &str, min: usize, max: usize) -> Option<T> {
    if !(min..=max).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The zone's offset from UTC in seconds: `+hhmm` / `-hhmm` (§3.3) or a §4.3 obsolete name
/// (military zones other than `Z` count as `-0000`, as §4.3 says).
fn zone_offset(zone: &str) -> Option<i64> {
    let b = zone.as_bytes();
    if b.len() == 5 && (b[0] == b'+' || b[0] == b'-') {
        let hh: i64 = number(&zone[1..3], 2, 2)?;
        let mm: i64 = number(&zone[3..5], 2, 2)?;
        if mm > 59 {
            return None;
        }
        let off = hh * 3600 + mm * 60;
        return Some(if b[0] == b'-' { -off } else { off });
    }
    let hours = match zone.to_ascii_uppercase().as_str() {
        "UT" | "GMT" | "Z" => 0,
        "EDT" => -4,
        "EST" | "CDT" => -5,
        "CST" | "MDT" => -6,
        "MST" | "PDT" => -7,
        "PST" => -8,
        z if z.len() == 1 && z.bytes().all(|c| c.is_ascii_alphabetic()) && z != "J" => 0,
        _ => return None,
    };
    Some(hours * 3600)
}

/// The text without RFC 5322 §3.2.2 comments (nested parentheses, backslash quoting).
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if depth > 0 => {
                chars.next();
            }
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

/// The UTC day holding `unix` as `YYYY-MM-DD` (the day names of DMARC and TLS-RPT reports).
pub fn day_string(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The Unix time of 00:00 UTC of `YYYY-MM-DD` (four, two and two digits, a real date from 1970
/// to 9999), or `None`.
pub fn parse_day(day: &str) -> Option<i64> {
    let mut parts = day.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(y, 4) || !digits(m, 2) || !digits(d, 2) {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400)
}

#[cfg(test)]
mod tests {
    #[test]
    fn report_days() {
        assert_eq!(day_string(0), "1970-01-01");
        assert_eq!(day_string(951_782_400), "2000-02-29");
        assert_eq!(parse_day("2000-02-29"), Some(951_782_400));
        assert_eq!(parse_day("1970-01-01"), Some(0));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "26-1-1",
            "2026-1-01",
            "yesterday",
            "2026-01-01-",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }

    use super::*;

    #[test]
    fn calendar_fields() {
        let c = civil_utc(951_782_400); // leap day 2000
        assert_eq!((c.year, c.month, c.day, c.weekday), (2000, 2, 29, "Tue"));
        let c = civil_utc(-1);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.second),
            (1969, 12, 31, 23, 59)
        );
    }

    #[test]
    fn days_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn writes_two_digit_days() {
        assert_eq!(rfc5322(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc5322(1_709_210_096), "Thu, 29 Feb 2024 12:34:56 +0000");
    }

    #[test]
    fn reads_what_it_writes() {
        for t in [0, -1, 951_782_400, 1_709_210_096, 4_102_444_799] {
            assert_eq!(parse_rfc5322(&rfc5322(t)), Some(t));
        }
    }

    #[test]
    fn reads_other_forms() {
        let t = 1_704_149_400; // 2024-01-01 22:50:00 UTC
        assert_eq!(parse_rfc5322("Mon, 1 Jan 2024 23:50:00 +0100"), Some(t));
        assert_eq!(parse_rfc5322("1 Jan 2024 17:50:00 -0500"), Some(t));
        assert_eq!(parse_rfc5322("Mon, 01 jan 2024 17:50 EST"), Some(t));
        assert_eq!(
            parse_rfc5322("Mon (Monday), 1 Jan 2024 22:50:00 GMT (UTC)"),
            Some(t)
        );
        assert_eq!(parse_rfc5322("Mon, 1 Jan 24 22:50:00 +0000"), Some(t));
        assert_eq!(parse_rfc5322("1 Jan 99 00:00:00 +0000"), Some(915_148_800));
    }

    #[test]
    fn refuses_non_dates() {
        for s in [
            "",
            "garbage",
            "Mon, 32 Jan 2024 00:00:00 +0000",
            "Thu, 29 Feb 2023 00:00:00 +0000",
            "Mon, 1 Foo 2024 00:00:00 +0000",
            "Mon, 1 Jan 2024 24:00:00 +0000",
            "Mon, 1 Jan 2024 10:00:00 +01",
            "Mon, 1 Jan 2024",
        ] {
            assert_eq!(parse_rfc5322(s), None, "{s}");
        }
    }
}
