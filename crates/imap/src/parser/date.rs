//! RFC 9051 §9 `date` and `date-time`, and the calendar arithmetic behind them.

/// A date of RFC 9051 §9 `date` as days since 1970-01-01.
pub type Day = i64;

/// RFC 9051 §9 `date-time` "dd-Mon-yyyy hh:mm:ss +zzzz" → Unix seconds.
pub(crate) fn parse_date_time(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?.trim_start();
    let (date, rest) = s.split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let day = parse_date_str(date)?;
    let mut t = time.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let m: i64 = t.next()?.parse().ok()?;
    let sec: i64 = t.next()?.parse().ok()?;
    if t.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let zb = zone.as_bytes();
    if zb.len() != 5 || !(zb[0] == b'+' || zb[0] == b'-') {
        return None;
    }
    let zh: i64 = zone.get(1..3)?.parse().ok()?;
    let zm: i64 = zone.get(3..5)?.parse().ok()?;
    let off = (zh * 60 + zm) * 60 * if zb[0] == b'-' { -1 } else { 1 };
    Some(day * 86400 + h * 3600 + m * 60 + sec - off)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// "d-Mon-yyyy" → days since epoch.
/// RFC 9051 §9: date-day = 1*2DIGIT, date-year = 4DIGIT.
pub(crate) fn parse_date_str(s: &str) -> Option<Day> {
    let mut p = s.split('-');
    let day = p.next()?.trim_start();
    let mon = p.next()?.to_ascii_lowercase();
    let year = p.next()?;
    let digits = |x: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&x.len()) && x.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(day, 1..=2) || !digits(year, 4..=4) {
        return None;
    }
    let d: u32 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    if p.next().is_some() {
        return None;
    }
    let m = MONTHS.iter().position(|x| *x == mon)? as u32 + 1;
    if !(1..=31).contains(&d) || !(1..=9999).contains(&y) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

pub(crate) use postern_mail::date::{civil_from_days, days_from_civil};

/// Unix seconds → RFC 9051 `date-time` in UTC ("02-Jan-2006 15:04:05 +0000").
pub(crate) fn format_date_time(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let mon = MONTHS[(m as usize).saturating_sub(1) % 12];
    let mut mon_c = mon.to_string();
    mon_c[..1].make_ascii_uppercase();
    format!(
        "{d:02}-{mon_c}-{y:04} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        let t = parse_date_time(b"17-Jul-1996 02:44:25 -0700").unwrap();
        assert_eq!(format_date_time(t), "17-Jul-1996 09:44:25 +0000");
        assert_eq!(format_date_time(0), "01-Jan-1970 00:00:00 +0000");
        assert!(parse_date_time(b"garbage").is_none());
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date_str("1-Jan-2024"),
            Some(days_from_civil(2024, 1, 1))
        );
        assert_eq!(
            parse_date_str("01-jan-2024"),
            Some(days_from_civil(2024, 1, 1))
        );
        for bad in [
            "1-Jan-24",
            "001-Jan-2024",
            "1-Jan-02024",
            "x-Jan-2024",
            "1-Foo-2024",
            "32-Jan-2024",
            "1-Jan-2024-1",
            "-1-Jan-2024",
        ] {
            assert_eq!(parse_date_str(bad), None, "{bad}");
        }
    }
}
