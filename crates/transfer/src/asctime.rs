//! The mbox `From ` line: `From <sender> <asctime date>`.
//!
//! The date is C's `asctime()` form (`Thu Dec  3 11:39:31 2026`), which carries no zone; real
//! writers add variants that this reader accepts too: a numeric or named zone before or after
//! the year (`... 11:39:31 +0100 2026`, `... 2026 +0100`), no seconds (`11:39`), two-digit
//! years, no weekday, and UUCP's trailing `remote from host`. A date without a zone is taken
//! as UTC (Python's `mailbox` writes UTC; mutt and others write local time, which the line does
//! not say).

use postern_mail::date::{civil_utc, days_from_civil, days_in_month, MONTHS};

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A `From ` line taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromLine {
    /// The envelope sender (`MAILER-DAEMON` and the like included); empty if the line has none.
    pub sender: String,
    /// The date, Unix seconds.
    pub date: i64,
}

/// Parses a `From ` line (with or without its line end). `None` if the line does not start
/// with `From ` or carries no date this module reads: such a line is body text, not a
/// message separator.
pub fn parse_from_line(line: &[u8]) -> Option<FromLine> {
    let rest = line.strip_prefix(b"From ")?;
    let text = std::str::from_utf8(rest).ok()?;
    let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
    // The date starts at the month (weekday optional before it): month, day, time.
    let j = (0..tokens.len()).find(|&j| {
        month_of(tokens[j]).is_some()
            && tokens.get(j + 1).is_some_and(|d| is_day(d))
            && tokens.get(j + 2).is_some_and(|t| parse_time(t).is_some())
    })?;
    let start = if j > 0 && is_weekday(tokens[j - 1]) {
        j - 1
    } else {
        j
    };
    let month = month_of(tokens[j])?;
    let day: u32 = tokens[j + 1].parse().ok()?;
    let (h, m, s) = parse_time(tokens[j + 2])?;
    let mut year = None;
    let mut offset = 0i64;
    for t in tokens.iter().skip(j + 3).take(2) {
        if let Some(o) = parse_zone(t) {
            offset = o;
        } else if let Some(y) = parse_year(t) {
            year = Some(y);
        } else {
            break;
        }
    }
    let year = year?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let date = days_from_civil(year, month, day) * 86_400
        + i64::from(h) * 3600
        + i64::from(m) * 60
        + i64::from(s)
        - offset;
    Some(FromLine {
        sender: tokens[..start].join(" "),
        date,
    })
}

/// True if `line` is a message separator: a `From ` line with a readable date.
pub fn is_from_line(line: &[u8]) -> bool {
    line.starts_with(b"From ") && parse_from_line(line).is_some()
}

/// The asctime form of a Unix time, in UTC: `Thu Dec  3 11:39:31 2026`.
pub fn format(unix: i64) -> String {
    let c = civil_utc(unix);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        c.weekday,
        c.month_name(),
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.year
    )
}

/// A `From ` line (without line end) for `sender` (`MAILER-DAEMON` if unknown or unusable:
/// the sender must be one word) and `date`.
pub fn from_line(sender: Option<&str>, date: i64) -> String {
    let sender = match sender {
        Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()) => s,
        _ => "MAILER-DAEMON",
    };
    format!("From {sender} {}", format(date))
}

fn is_weekday(t: &str) -> bool {
    let t = t.trim_end_matches(',');
    WEEKDAYS.iter().any(|w| w.eq_ignore_ascii_case(t))
}

fn month_of(t: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(t))
        .map(|i| i as u32 + 1)
}

fn is_day(t: &str) -> bool {
    (1..=2).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
}

fn parse_time(t: &str) -> Option<(u32, u32, u32)> {
    let mut parts = t.split(':');
    let num = |p: Option<&str>| -> Option<u32> {
        let p = p?;
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let h = num(parts.next())?;
    let m = num(parts.next())?;
    let s = match parts.next() {
        Some(p) => num(Some(p))?,
        None => 0,
    };
    if parts.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some((h, m, s.min(59)))
}

fn parse_year(t: &str) -> Option<i64> {
    if !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = t.parse().ok()?;
    match t.len() {
        2 if y >= 70 => Some(1900 + y),
        2 => Some(2000 + y),
        4 => Some(y),
        _ => None,
    }
}

/// A zone: `+hhmm`/`-hhmm`, or a name (`UTC`, `GMT`, `UT` are 0; other names, such as
/// `CET`, are ambiguous and taken as 0 too).
fn parse_zone(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() == 5 && (b[0] == b'+' || b[0] == b'-') && b[1..].iter().all(u8::is_ascii_digit) {
        let h = i64::from(b[1] - b'0') * 10 + i64::from(b[2] - b'0');
        let m = i64::from(b[3] - b'0') * 10 + i64::from(b[4] - b'0');
        let v = h * 3600 + m * 60;
        return Some(if b[0] == b'-' { -v } else { v });
    }
    if (2..=5).contains(&b.len()) && b.iter().all(u8::is_ascii_alphabetic) && month_of(t).is_none()
    {
        return Some(0);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_796_297_971; // Thu Dec  3 11:39:31 2026 UTC

    #[test]
    fn asctime_forms_real_writers_use() {
        for line in [
            "From MAILER-DAEMON Thu Dec  3 11:39:31 2026",
            "From MAILER-DAEMON Thu Dec 3 11:39:31 2026\n",
            "From a@b.example Thu Dec  3 11:39:31 2026\r\n",
            "From a@b.example  Thu Dec  3 12:39:31 2026 +0100",
            "From a@b.example Thu Dec  3 12:39:31 +0100 2026",
            "From a@b.example Thu Dec  3 11:39:31 UTC 2026",
            "From a@b.example Dec  3 11:39:31 2026",
            "From uucp!a Thu Dec  3 11:39:31 2026 remote from gw",
        ] {
            let f = parse_from_line(line.as_bytes()).unwrap_or_else(|| panic!("{line:?}"));
            assert_eq!(f.date, T, "{line:?}");
        }
        let f = parse_from_line(b"From x Thu Dec  3 11:39 2026").unwrap();
        assert_eq!(f.date, T - 31);
        let f = parse_from_line(b"From x Fri Jan  1 00:00:00 99").unwrap();
        assert_eq!(f.date, 915_148_800);
        assert_eq!(
            parse_from_line(b"From MAILER-DAEMON Thu Dec  3 11:39:31 2026")
                .unwrap()
                .sender,
            "MAILER-DAEMON"
        );
        assert_eq!(
            parse_from_line(b"From  Thu Dec  3 11:39:31 2026")
                .unwrap()
                .sender,
            ""
        );
    }

    #[test]
    fn body_lines_are_not_separators() {
        for line in [
            "From here on, we meet on Thursdays.",
            "From: someone@example.org",
            "from x Thu Dec  3 11:39:31 2026",
            "From x Thu Dec 32 11:39:31 2026",
            "From x Thu Feb 30 11:39:31 2026",
            "From x Thu Dec  3 25:39:31 2026",
            "From x Thu Dec  3 11:39:31",
            ">From x Thu Dec  3 11:39:31 2026",
        ] {
            assert!(!is_from_line(line.as_bytes()), "{line:?}");
        }
    }

    #[test]
    fn writes_what_it_reads() {
        assert_eq!(format(T), "Thu Dec  3 11:39:31 2026");
        assert_eq!(format(0), "Thu Jan  1 00:00:00 1970");
        let l = from_line(Some("bob@example.org"), T);
        assert_eq!(l, "From bob@example.org Thu Dec  3 11:39:31 2026");
        assert_eq!(parse_from_line(l.as_bytes()).unwrap().date, T);
        assert!(from_line(Some("has space@x"), T).starts_with("From MAILER-DAEMON "));
        assert!(from_line(None, T).starts_with("From MAILER-DAEMON "));
    }
}
