//! `postern mailq` (and `sendmail -bp`): the queue listed in Postfix's `mailq` / `postqueue -p`
//! layout, so that scripts written for Postfix (or Sendmail) parse it unchanged.
//!
//! The layout, as postqueue(1) prints it for short queue ids:
//! ```text
//! -Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
//! 17A2B3C4D5E6F*   1234 Thu Dec  3 11:00:00  alice@example.org
//!                          (connect to mx.example.net[192.0.2.1]:25: Connection refused)
//!                                          bob@example.net
//!
//! -- 1 Kbytes in 1 Request.
//! ```
//! The queue id carries `*` when the message is due now (Postfix's active queue) or `!` when
//! it is held; deferred messages have no mark. The id and status are padded to 11 columns,
//! the size right-aligned in 7, the arrival time is the first 20 characters of asctime(3) in
//! local time, the sender `MAILER-DAEMON` for the null sender. Each pending recipient is
//! indented by 41 columns; before it, its deferral reason in parentheses, right-aligned to
//! column 78, printed only when it differs from the previous recipient's (`reason
//! unavailable` when a recipient has none after one that had one). Our ids are longer than
//! Postfix's short ids, so (as Postfix does for an id wider than its column) the rest of the
//! line moves right; every field stays separated by white space.
//!
//! `postern queue list` keeps its own, richer listing (next attempt times, recipients whose
//! failure notice is still to be sent); this one is for compatibility.

use anyhow::Context as _;
use postern_config::Config;
use postern_spool::{Queue, QueueEntry, RcptStatus, Spool, SpoolError};
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// The heading line (Postfix: `%-11s %7s %-20s %s` of these four headings).
const HEADER: &str = "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------";
/// Column where the reason line's closing parenthesis ends (Postfix: padding 76 - length).
const REASON_WIDTH: usize = 76;
/// Indentation of recipient lines: id (11) + size (7) + date (20) + three separators.
const RECIPIENT_INDENT: usize = 41;

/// The listing of every message in `queue`, in Postfix's `mailq` format. `now` decides which
/// messages are due (marked `*`).
pub(crate) fn render(queue: &dyn Queue, now: SystemTime) -> String {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let ids = match queue.ids() {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!("cannot list the queue: {e}");
            Vec::new()
        }
    };
    let mut out = String::new();
    let mut count = 0u64;
    let mut bytes = 0u64;
    for id in ids {
        let entry = match queue.entry(&id) {
            Ok(e) => e,
            // Delivered (and removed) since the directory was read.
            Err(SpoolError::NotFound(_)) => continue,
            Err(e) => {
                tracing::warn!(queue_id = %id, "cannot read a queued message: {e}");
                continue;
            }
        };
        if count == 0 {
            out.push_str(HEADER);
            out.push('\n');
        } else {
            out.push('\n');
        }
        message(&mut out, &entry, now);
        count += 1;
        bytes += entry.size;
    }
    if count == 0 {
        out.push_str("Mail queue is empty\n");
    } else {
        let _ = writeln!(
            out,
            "\n-- {} Kbytes in {count} Request{}.",
            bytes / 1024,
            if count == 1 { "" } else { "s" }
        );
    }
    out
}

/// One message: the id line, then each pending recipient with its reason.
fn message(out: &mut String, e: &QueueEntry, now: i64) {
    let pending = || {
        e.recipients
            .iter()
            .filter(|r| matches!(r.status, RcptStatus::Pending))
    };
    let mark = if e.held {
        "!"
    } else if pending().any(|r| r.next_attempt <= now) {
        "*"
    } else {
        ""
    };
    let sender = match e.envelope.sender.as_deref() {
        None | Some("") => "MAILER-DAEMON".to_string(),
        Some(s) => printable(s),
    };
    let _ = writeln!(
        out,
        "{:<11} {:>7} {:20.20} {}",
        format!("{}{mark}", e.id),
        e.size,
        asctime_local(e.arrived),
        sender
    );
    let mut saved = String::new();
    for r in pending() {
        let why = r
            .last_error
            .as_ref()
            .map(|s| reason(&s.text))
            .unwrap_or_default();
        if why != saved {
            saved = why;
            let shown = if saved.is_empty() {
                "reason unavailable"
            } else {
                saved.as_str()
            };
            let pad = REASON_WIDTH.saturating_sub(shown.chars().count());
            let _ = writeln!(out, "{:pad$}({shown})", "");
        }
        let _ = writeln!(
            out,
            "{:RECIPIENT_INDENT$}{}",
            "",
            printable(&r.recipient.address)
        );
    }
}

/// A deferral reason as Postfix shows it: one line, without our leading enhanced status code
/// (Postfix's reasons are the diagnostic text alone).
fn reason(text: &str) -> String {
    let text = printable(text.trim());
    let mut parts = text.splitn(2, ' ');
    match (parts.next(), parts.next()) {
        (Some(code), Some(rest)) if is_enhanced_code(code) => rest.trim_start().to_string(),
        _ => text,
    }
}

/// `class.subject.detail` (RFC 3463 §2): 2, 4 or 5, then two numbers.
fn is_enhanced_code(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Control characters become `?`, as Postfix's printable() does.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// asctime(3) of `secs` in the local time zone: `Thu Dec  3 11:00:00 2026`.
fn asctime_local(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = libc::time_t::try_from(secs).unwrap_or(0);
    // SAFETY: tm is plain data; localtime_r only writes into it and reads `t`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return "??".to_string();
    }
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS.get(usize::try_from(tm.tm_wday).unwrap_or(0))
            .unwrap_or(&"???"),
        MONTHS
            .get(usize::try_from(tm.tm_mon).unwrap_or(0))
            .unwrap_or(&"???"),
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        i64::from(tm.tm_year) + 1900
    )
}

/// `postern mailq`: the listing of the spool under `data_dir` on standard output.
pub(crate) fn run(config: &Config) -> anyhow::Result<()> {
    let dir = config.data_dir.join("spool");
    let spool = Spool::open(&dir).with_context(|| {
        format!(
            "cannot read the mail queue {} (only its owner and root can)",
            dir.display()
        )
    })?;
    let text = render(&spool, SystemTime::now());
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    lock.write_all(text.as_bytes())?;
    lock.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_mail::{EnhancedCode, Status};
    use postern_spool::{Envelope, Recipient};

    fn envelope(sender: Option<&str>, rcpts: &[&str]) -> Envelope {
        Envelope {
            sender: sender.map(str::to_string),
            recipients: rcpts.iter().map(|r| Recipient::new(*r)).collect(),
            ret: None,
            envid: None,
            body: Default::default(),
            smtputf8: false,
            requiretls: false,
            authenticated: None,
            client_ip: None,
            helo: None,
        }
    }

    fn spool() -> (tempfile::TempDir, Spool) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool")).unwrap();
        (dir, spool)
    }

    #[test]
    fn empty_queue() {
        let (_d, s) = spool();
        assert_eq!(render(&s, SystemTime::now()), "Mail queue is empty\n");
    }

    #[test]
    fn header_columns_match_postfix() {
        let (id, size, date, who) = (
            "-Queue ID-",
            "--Size--",
            "----Arrival Time----",
            "-Sender/Recipient-------",
        );
        assert_eq!(format!("{id:<11} {size:>7} {date:<20} {who}"), HEADER);
    }

    #[test]
    fn deferred_held_and_due_messages() {
        let (_d, s) = spool();
        let msg = b"Subject: x\r\n\r\nbody\r\n";
        let a = s
            .enqueue(
                &envelope(
                    Some("alice@example.org"),
                    &["bob@example.net", "carol@example.net", "dave@example.net"],
                ),
                msg,
            )
            .unwrap();
        let mut e = s.entry(&a).unwrap();
        let far = 4_000_000_000i64;
        for (i, r) in e.recipients.iter_mut().enumerate() {
            r.next_attempt = far;
            if i < 2 {
                r.last_error = Some(Status::new(
                    EnhancedCode::new(4, 4, 1),
                    "connect to 127.0.0.1[127.0.0.1]:9: Connection refused",
                ));
            }
        }
        s.save(&e).unwrap();
        let b = s.enqueue(&envelope(None, &["x@example.net"]), msg).unwrap();
        s.hold(&b).unwrap();
        let c = s
            .enqueue(&envelope(Some("c@example.org"), &["y@example.net"]), msg)
            .unwrap();

        let text = render(&s, SystemTime::now());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------"
        );
        let line = |id: &str| lines.iter().position(|l| l.starts_with(id)).unwrap();
        let la = line(a.as_str());
        assert!(lines[la].starts_with(&format!("{} ", a)), "{}", lines[la]);
        assert!(lines[la].ends_with("  alice@example.org"), "{}", lines[la]);
        let reason = "(connect to 127.0.0.1[127.0.0.1]:9: Connection refused)";
        assert_eq!(lines[la + 1], format!("{:>78}", reason));
        assert_eq!(lines[la + 2], format!("{:41}bob@example.net", ""));
        // Same reason: not repeated.
        assert_eq!(lines[la + 3], format!("{:41}carol@example.net", ""));
        assert_eq!(lines[la + 4], format!("{:>78}", "(reason unavailable)"));
        assert_eq!(lines[la + 5], format!("{:41}dave@example.net", ""));
        assert_eq!(lines[la + 6], "");
        let lb = line(b.as_str());
        assert!(lines[lb].starts_with(&format!("{b}! ")), "{}", lines[lb]);
        assert!(lines[lb].ends_with(" MAILER-DAEMON"));
        let lc = line(c.as_str());
        assert!(lines[lc].starts_with(&format!("{c}* ")), "{}", lines[lc]);
        let size = msg.len();
        assert!(lines[lc].contains(&format!(" {size} ")));
        assert_eq!(lines[lines.len() - 2], "");
        assert_eq!(lines[lines.len() - 1], "-- 0 Kbytes in 3 Requests.");
        // Arrival time: asctime's first 20 characters (weekday, month, day, time, space).
        let re_date = lines[lc].split_whitespace().collect::<Vec<_>>();
        assert_eq!(re_date.len(), 7, "{}", lines[lc]);
        assert_eq!(re_date[5].len(), 8);
    }

    #[test]
    fn reasons_lose_our_status_code() {
        assert_eq!(
            reason("4.4.1 connect to x: refused"),
            "connect to x: refused"
        );
        assert_eq!(reason("host said: 450 busy"), "host said: 450 busy");
        assert_eq!(reason("a\tb"), "a?b");
    }

    #[test]
    fn asctime_shape() {
        let s = asctime_local(0);
        assert_eq!(s.len(), 24, "{s}");
        assert_eq!(&s[3..4], " ");
    }
}
