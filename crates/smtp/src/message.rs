//! I/O-free message handling: the DATA decoder (dot-unstuffing, terminator, line endings), header
//! inspection (loop detection, missing Message-ID/Date) and the trace header we prepend.

use postern_mail::header;

/// Streaming decoder of the DATA phase (RFC 5321 §4.1.1.4, §4.5.2).
///
/// * Only `CRLF . CRLF` ends the data. A lone `.` followed by a bare LF (`LF . LF`, `CRLF . LF`) does
///   **not** end it (RFC 5321 §2.3.8 — this closes the "SMTP smuggling" hole).
/// * A leading `.` of a line is removed (transparency, §4.5.2).
/// * Bare LF is normalised to CRLF, so the stored message has canonical line endings (our choice among
///   the two §2.3.8 allows: refuse or normalise). Bare CR is kept as is.
/// * Octets beyond `limit` are counted but not stored; the caller then answers `552 5.3.4`.
#[derive(Debug, PartialEq, Eq)]
pub struct DataDecoder {
    state: State,
    out: Vec<u8>,
    size: u64,
    limit: u64,
    /// The current line began after a bare LF: a `.` CRLF on it is content, not the terminator.
    bare_line: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    LineStart,
    Middle,
    AfterCr,
    Dot,
    DotCr,
}

impl DataDecoder {
    /// A decoder at the start of the data that stores at most `limit` octets of the decoded message.
    pub fn new(limit: u64) -> DataDecoder {
        DataDecoder {
            // The terminator may follow the DATA command's line directly (empty message).
            state: State::LineStart,
            out: Vec::with_capacity(8192),
            size: 0,
            limit,
            bare_line: false,
        }
    }

    /// Feeds input; returns `Some(consumed)` when the terminator was found (the rest of `input` is the
    /// next command), `None` when all of `input` was consumed and more is needed.
    pub fn feed(&mut self, input: &[u8]) -> Option<usize> {
        for (i, &b) in input.iter().enumerate() {
            match (self.state, b) {
                (State::LineStart, b'.') => self.state = State::Dot,
                (State::LineStart | State::Middle | State::Dot, b'\r') => {
                    self.state = if self.state == State::Dot {
                        State::DotCr
                    } else {
                        State::AfterCr
                    }
                }
                (State::LineStart | State::Middle | State::Dot, b'\n') => {
                    self.emit(b"\r\n");
                    self.state = State::LineStart;
                    self.bare_line = true;
                }
                (State::AfterCr, b'\n') => {
                    self.emit(b"\r\n");
                    self.state = State::LineStart;
                    self.bare_line = false;
                }
                (State::DotCr, b'\n') if !self.bare_line => return Some(i + 1),
                (State::DotCr, b'\n') => {
                    self.emit(b"\r\n");
                    self.state = State::LineStart;
                    self.bare_line = false;
                }
                (State::AfterCr | State::DotCr, b'\r') => {
                    self.emit(b"\r");
                    self.state = State::AfterCr;
                }
                (State::AfterCr | State::DotCr, other) => {
                    self.emit(&[b'\r', other]);
                    self.state = State::Middle;
                }
                (_, other) => {
                    self.emit(&[other]);
                    self.state = State::Middle;
                }
            }
        }
        None
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if self.size <= self.limit {
            self.out.extend_from_slice(bytes);
        }
    }

    /// Whether the message grew beyond the limit.
    pub fn too_big(&self) -> bool {
        self.size > self.limit
    }

    /// The decoded message.
    pub fn into_message(self) -> Vec<u8> {
        self.out
    }
}

/// Header field names of the header section (RFC 5322 §2.2).
fn field_names(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    header::fields(message).map(|f| f.name)
}

/// Number of `Received:` fields (RFC 5321 §6.3 loop detection).
pub fn received_count(message: &[u8]) -> usize {
    field_names(message)
        .filter(|n| n.eq_ignore_ascii_case(b"received"))
        .count()
}

/// Whether the header section has a field of this name.
pub fn has_field(message: &[u8], name: &str) -> bool {
    field_names(message).any(|n| n.eq_ignore_ascii_case(name.as_bytes()))
}

/// Current Unix time in seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Facts for the `Received:` header (RFC 5321 §4.4).
#[derive(Debug)]
pub struct Trace<'a> {
    /// The name the client gave in HELO/EHLO, if any (`from` clause; `unknown` when absent).
    pub helo: Option<&'a str>,
    /// The client's IP address, shown as an address literal in the `from` clause.
    pub client_ip: std::net::IpAddr,
    /// This server's name, in the `by` clause.
    pub hostname: &'a str,
    /// `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPA`, `ESMTPSA`, `UTF8SMTPS`... (RFC 3848, RFC 6531 §3.7.3).
    pub protocol: String,
    /// The TLS version and cipher suite (e.g. `TLSv1.3`, `TLS13_AES_256_GCM_SHA384`), or `None` without TLS.
    pub tls: Option<(&'a str, &'a str)>,
    /// Whether the client authenticated (AUTH, RFC 4954); the identity itself is not shown.
    pub authenticated: bool,
    /// The message came with the REQUIRETLS MAIL parameter (RFC 8689), noted in a comment.
    pub requiretls: bool,
    /// The message's queue id, in the `id` clause.
    pub id: &'a str,
    /// Named in `for` only when the message has exactly one recipient (no disclosure of the others).
    pub single_recipient: Option<&'a str>,
    /// The time of receipt as an RFC 5322 §3.3 date-time (see [`postern_mail::date::rfc5322`]).
    pub date: String,
}

/// The `Received:` field, folded, with CRLF. The authenticated identity is not shown (only that the
/// session authenticated, via ESMTPA); the password never reaches this code.
pub fn received_header(t: &Trace<'_>) -> String {
    let helo = t
        .helo
        .map(|h| sanitize(h, 255))
        .unwrap_or_else(|| "unknown".to_string());
    let mut s = format!(
        "Received: from {helo} ([{ip}])\r\n\tby {host} (postern) with {proto} id {id}",
        ip = t.client_ip,
        host = t.hostname,
        proto = t.protocol,
        id = t.id,
    );
    if let Some((version, cipher)) = t.tls {
        s.push_str(&format!(
            "\r\n\t(version={} cipher={})",
            sanitize(version, 40),
            sanitize(cipher, 80)
        ));
    }
    if t.authenticated {
        s.push_str("\r\n\t(authenticated sender)");
    }
    if t.requiretls {
        s.push_str("\r\n\t(REQUIRETLS)");
    }
    if let Some(r) = t.single_recipient {
        s.push_str(&format!("\r\n\tfor <{}>", sanitize(r, 512)));
    }
    s.push_str(&format!(";\r\n\t{}\r\n", t.date));
    s
}

/// Keeps a peer-supplied string printable and bounded for a header.
fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control() && *c != '(' && *c != ')')
        .take(max)
        .collect()
}

/// The unfolded value of the first `name:` header field (RFC 5322 §2.2.3), for logs;
/// shortened to 200 characters.
pub fn header_value(message: &[u8], name: &str) -> Option<String> {
    let field = header::fields(message).find(|f| f.is(name))?;
    let value = String::from_utf8_lossy(field.raw_value)
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    Some(value.trim().chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_mail::date::rfc5322 as rfc5322_date;

    #[test]
    fn header_values_for_the_log() {
        let m = b"Subject: x\r\nmessage-id:\r\n <a@b>\r\nX: y\r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(header_value(m, "Message-ID").as_deref(), Some("<a@b>"));
        assert_eq!(header_value(m, "Subject").as_deref(), Some("x"));
        assert_eq!(header_value(b"\r\nMessage-ID: <x>", "Message-ID"), None);
    }

    fn decode(input: &[u8]) -> (Option<usize>, Vec<u8>) {
        let mut d = DataDecoder::new(1 << 20);
        let r = d.feed(input);
        (r, d.into_message())
    }

    #[test]
    fn terminator_and_unstuffing() {
        let (end, msg) = decode(b"Subject: x\r\n\r\nhello\r\n..dot\r\n.\r\nQUIT\r\n");
        assert_eq!(&msg, b"Subject: x\r\n\r\nhello\r\n.dot\r\n");
        assert_eq!(
            end,
            Some(b"Subject: x\r\n\r\nhello\r\n..dot\r\n.\r\n".len())
        );
        // Empty message.
        assert_eq!(decode(b".\r\n"), (Some(3), Vec::new()));
    }

    #[test]
    fn byte_at_a_time_is_the_same() {
        let input = b"a\r\n..b\r\n.c\r\n\r\n.\r\n";
        let mut d = DataDecoder::new(100);
        let mut consumed = None;
        for (i, b) in input.iter().enumerate() {
            if let Some(n) = d.feed(std::slice::from_ref(b)) {
                consumed = Some(i + n);
                break;
            }
        }
        assert_eq!(consumed, Some(input.len()));
        assert_eq!(d.into_message(), b"a\r\n.b\r\nc\r\n\r\n");
    }

    #[test]
    fn bare_lf_never_terminates_and_is_normalised() {
        // SMTP smuggling attempts: LF.LF, CRLF.LF, LF.CRLF must not end the data.
        let (end, msg) = decode(b"a\n.\nMAIL FROM:<x@y>\r\n");
        assert_eq!(end, None);
        assert_eq!(&msg, b"a\r\n\r\nMAIL FROM:<x@y>\r\n");
        let (end, _) = decode(b"a\r\n.\nb\r\n");
        assert_eq!(end, None);
        // LF . CRLF: only CRLF . CRLF ends the data (RFC 5321 §4.1.1.4).
        let (end, msg) = decode(b"a\n.\r\nb\r\n.\r\n");
        assert_eq!(end, Some(11));
        assert_eq!(&msg, b"a\r\n\r\nb\r\n");
        // Bare CR is kept.
        let (end, msg) = decode(b"a\rb\r\r\n.\r\n");
        assert!(end.is_some());
        assert_eq!(&msg, b"a\rb\r\r\n");
        let (end, msg) = decode(b".\rx\r\n.\r\n");
        assert!(end.is_some());
        assert_eq!(&msg, b"\rx\r\n");
    }

    #[test]
    fn size_limit() {
        let mut d = DataDecoder::new(4);
        assert_eq!(d.feed(b"abcdef\r\n.\r\n"), Some(11));
        assert!(d.too_big());
    }

    #[test]
    fn headers() {
        let m = b"Received: a\r\nreceived : b\r\nX: y\r\n\tReceived: folded\r\nDate: now\r\n\r\nReceived: body\r\n";
        assert_eq!(received_count(m), 2);
        assert!(has_field(m, "date"));
        assert!(!has_field(m, "Message-ID"));
        assert!(has_field(b"Message-Id: <a@b>\n\nbody", "message-id"));
        assert_eq!(received_count(b"no headers at all"), 0);
    }

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_751_364_245),
            "Tue, 01 Jul 2025 10:04:05 +0000"
        );
    }

    #[test]
    fn received_field() {
        let r = received_header(&Trace {
            helo: Some("client(evil)\r\nX-Injected: 1"),
            client_ip: "192.0.2.7".parse().unwrap(),
            hostname: "mx.example.org",
            protocol: "ESMTPSA".into(),
            tls: Some(("TLSv1.3", "TLS13_AES_256_GCM_SHA384")),
            authenticated: true,
            requiretls: true,
            id: "S1.1",
            single_recipient: Some("a@example.org"),
            date: rfc5322_date(0),
        });
        assert!(
            r.starts_with("Received: from clientevilX-Injected: 1 ([192.0.2.7])\r\n"),
            "{r}"
        );
        assert!(r.contains("with ESMTPSA id S1.1"));
        assert!(r.contains("version=TLSv1.3 cipher=TLS13_AES_256_GCM_SHA384"));
        assert!(r.contains("\r\n\t(REQUIRETLS)\r\n"));
        assert!(r.contains("for <a@example.org>;"));
        assert!(r.ends_with("+0000\r\n"));
        assert_eq!(r.matches("\r\n").count(), r.matches("\r\n\t").count() + 1);
    }
}

/// Property tests of the DATA decoder against dot-stuffing as RFC 5321 §4.5.2 describes it (the
/// outbound client's own stuffing is checked against this decoder in `postern-fuzz-targets`,
/// which depends on both crates).
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// The sender's side of §4.5.2, written plainly: CRLF lines, a leading "." doubled, then
    /// "." CRLF. Returns the stuffed data and the message the receiver must store.
    fn stuff(lines: &[String]) -> (Vec<u8>, Vec<u8>) {
        let mut wire = Vec::new();
        let mut message = Vec::new();
        for l in lines {
            if l.starts_with('.') {
                wire.push(b'.');
            }
            wire.extend_from_slice(l.as_bytes());
            wire.extend_from_slice(b"\r\n");
            message.extend_from_slice(l.as_bytes());
            message.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b".\r\n");
        (wire, message)
    }

    /// Feeds `wire` in pieces of the given sizes (cycled); returns where the data ended.
    fn feed_in_pieces(d: &mut DataDecoder, wire: &[u8], sizes: &[usize]) -> Option<usize> {
        let mut at = 0;
        for &n in sizes.iter().cycle() {
            if at >= wire.len() {
                return None;
            }
            let piece = &wire[at..(at + n).min(wire.len())];
            if let Some(k) = d.feed(piece) {
                return Some(at + k);
            }
            at += piece.len();
        }
        None
    }

    proptest! {
        /// Stuffed lines (with dots, lone dots, CRs and LFs-free text) decode to the message,
        /// the end found exactly after the terminator, however the input is split.
        #[test]
        fn unstuffing_inverts_stuffing(
            lines in proptest::collection::vec("(\\.{0,3})([ -~\\r\u{e9}]{0,12})", 0..12),
            sizes in proptest::collection::vec(1usize..9, 1..4),
            next in "[A-Z]{0,6}",
        ) {
            // A line must not end in CR: CR LF would then be its end.
            let lines: Vec<String> = lines.into_iter().map(|l| l.trim_end_matches('\r').to_string()).collect();
            let (mut wire, message) = stuff(&lines);
            let end = wire.len();
            wire.extend_from_slice(next.as_bytes());
            let mut d = DataDecoder::new(1 << 20);
            prop_assert_eq!(feed_in_pieces(&mut d, &wire, &sizes), Some(end));
            prop_assert!(!d.too_big());
            prop_assert_eq!(d.into_message(), message);
        }

        /// Over the limit: counted, reported, and what is kept is a prefix of the message.
        #[test]
        fn the_limit_keeps_a_prefix(lines in proptest::collection::vec("[ -~]{0,20}", 0..8), limit in 0u64..200) {
            let (wire, message) = stuff(&lines);
            let mut d = DataDecoder::new(limit);
            prop_assert_eq!(d.feed(&wire), Some(wire.len()));
            prop_assert_eq!(d.too_big(), message.len() as u64 > limit);
            let kept = d.into_message();
            prop_assert!(message.starts_with(&kept));
            prop_assert!(kept.len() as u64 <= limit);
        }
    }
}
