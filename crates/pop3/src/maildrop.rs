//! The TRANSACTION state (RFC 1939 §5), free of I/O: a snapshot of the maildrop, deletion marks,
//! and the replies to STAT, LIST, UIDL, DELE, RSET, NOOP. RETR and TOP need the message bytes, so
//! they come out as [`Step::Retrieve`] for the session to fetch, then [`encode_message`] formats
//! them. QUIT comes out as [`Step::Update`] with the UIDs to remove (RFC 1939 §6).

use crate::command::Command;
use std::fmt::Write as _;

/// One message of the maildrop as the session sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its UID in the store.
    pub uid: u32,
    /// Octets the client receives: CRLF line ends, before byte-stuffing (RFC 1939 §11).
    pub size: u64,
    /// Marked by DELE (RFC 1939 §5).
    pub deleted: bool,
}

/// What the session must do for a TRANSACTION command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this complete response (status line, and for multi-line responses the lines and ".").
    Reply(String),
    /// Fetch the message and send it: all of it (`top: None`, RETR) or its header and `top` body
    /// lines (TOP).
    Retrieve {
        /// The message number the client used.
        msg: u32,
        /// Its UID.
        uid: u32,
        /// Its size as announced.
        size: u64,
        /// TOP's line count.
        top: Option<u32>,
    },
    /// QUIT: remove these UIDs durably, then answer (RFC 1939 §6).
    Update(Vec<u32>),
}

/// The maildrop of an authenticated session.
#[derive(Debug, Clone)]
pub struct Maildrop {
    uidvalidity: u32,
    messages: Vec<Entry>,
}

/// The unique-id listing value (RFC 1939 §7 UIDL): derived from UIDVALIDITY and UID only, so it is
/// the same in every session and after a reindex (both are kept in the Maildir file names and
/// the folder's `postern-uidvalidity`).
pub fn unique_id(uidvalidity: u32, uid: u32) -> String {
    format!("{uidvalidity:08x}{uid:08x}")
}

impl Maildrop {
    /// A maildrop of `messages` (ascending UID: message number = index + 1).
    pub fn new(uidvalidity: u32, messages: Vec<Entry>) -> Maildrop {
        Maildrop {
            uidvalidity,
            messages,
        }
    }

    /// Messages and octets not marked deleted (RFC 1939 §5 STAT).
    pub fn stat(&self) -> (usize, u64) {
        self.messages
            .iter()
            .filter(|m| !m.deleted)
            .fold((0, 0), |(n, s), m| (n + 1, s + m.size))
    }

    /// Number of messages including those marked deleted.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True if the maildrop has no message at all.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The UIDs marked deleted.
    pub fn deleted_uids(&self) -> Vec<u32> {
        self.messages
            .iter()
            .filter(|m| m.deleted)
            .map(|m| m.uid)
            .collect()
    }

    /// A message by number, unless it does not exist or is marked deleted.
    fn get(&self, msg: u32) -> Result<&Entry, String> {
        let entry = (msg as usize)
            .checked_sub(1)
            .and_then(|i| self.messages.get(i))
            .ok_or_else(|| format!("-ERR no such message, only {} in maildrop\r\n", self.len()))?;
        if entry.deleted {
            return Err(format!("-ERR message {msg} already deleted\r\n"));
        }
        Ok(entry)
    }

    /// Handles one command of the TRANSACTION state (CAPA is answered by the session in every
    /// state).
    pub fn handle(&mut self, cmd: &Command) -> Step {
        match cmd {
            Command::Stat => {
                let (n, size) = self.stat();
                Step::Reply(format!("+OK {n} {size}\r\n"))
            }
            Command::List(None) => {
                let (n, size) = self.stat();
                let mut out = format!("+OK {n} messages ({size} octets)\r\n");
                for (i, m) in self.messages.iter().enumerate() {
                    if !m.deleted {
                        let _ = write!(out, "{} {}\r\n", i + 1, m.size);
                    }
                }
                out.push_str(".\r\n");
                Step::Reply(out)
            }
            Command::List(Some(msg)) => Step::Reply(match self.get(*msg) {
                Ok(m) => format!("+OK {msg} {}\r\n", m.size),
                Err(e) => e,
            }),
            Command::Uidl(None) => {
                let mut out = String::from("+OK unique-id listing follows\r\n");
                for (i, m) in self.messages.iter().enumerate() {
                    if !m.deleted {
                        let _ = write!(out, "{} {}\r\n", i + 1, unique_id(self.uidvalidity, m.uid));
                    }
                }
                out.push_str(".\r\n");
                Step::Reply(out)
            }
            Command::Uidl(Some(msg)) => Step::Reply(match self.get(*msg) {
                Ok(m) => format!("+OK {msg} {}\r\n", unique_id(self.uidvalidity, m.uid)),
                Err(e) => e,
            }),
            Command::Retr(msg) => match self.get(*msg) {
                Ok(m) => Step::Retrieve {
                    msg: *msg,
                    uid: m.uid,
                    size: m.size,
                    top: None,
                },
                Err(e) => Step::Reply(e),
            },
            Command::Top { msg, lines } => match self.get(*msg) {
                Ok(m) => Step::Retrieve {
                    msg: *msg,
                    uid: m.uid,
                    size: m.size,
                    top: Some(*lines),
                },
                Err(e) => Step::Reply(e),
            },
            Command::Dele(msg) => match self.get(*msg) {
                Ok(_) => {
                    self.messages[*msg as usize - 1].deleted = true;
                    Step::Reply(format!("+OK message {msg} deleted\r\n"))
                }
                Err(e) => Step::Reply(e),
            },
            Command::Noop => Step::Reply("+OK\r\n".into()),
            Command::Rset => {
                for m in &mut self.messages {
                    m.deleted = false;
                }
                let (n, size) = self.stat();
                Step::Reply(format!("+OK maildrop has {n} messages ({size} octets)\r\n"))
            }
            Command::Quit => Step::Update(self.deleted_uids()),
            Command::User(_)
            | Command::Pass(_)
            | Command::Apop { .. }
            | Command::Auth { .. }
            | Command::Stls
            | Command::Utf8 => Step::Reply("-ERR already authenticated\r\n".into()),
            Command::Capa => Step::Reply("-ERR CAPA is answered by the session\r\n".into()),
        }
    }
}

/// Lines of `data`, each without its line end; a last line without a line end counts as a line.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let empty = data.is_empty();
    body.split(|b| *b == b'\n')
        .filter(move |_| !empty)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// The octets [`encode_message`] sends before byte-stuffing: every line ended by CRLF. This is
/// the store's wire size, plus the CRLF a final line without a line end gets from the framing.
#[cfg(test)]
fn transmitted_size(data: &[u8]) -> u64 {
    lines(data).map(|l| l.len() as u64 + 2).sum()
}

/// Appends a message (or, with `top`, its header, the empty line and that many body lines,
/// RFC 1939 §7 TOP) to `out` as a multi-line response body: CRLF line ends, byte-stuffed, ended
/// by the termination line (RFC 1939 §3).
pub fn encode_message(out: &mut Vec<u8>, data: &[u8], top: Option<u32>) {
    out.reserve(data.len() + data.len() / 32 + 8);
    let mut in_header = true;
    let mut body_lines = 0u32;
    for line in lines(data) {
        if !in_header {
            if let Some(limit) = top {
                if body_lines >= limit {
                    break;
                }
            }
            body_lines += 1;
        } else if line.is_empty() {
            in_header = false;
        }
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop3() -> Maildrop {
        Maildrop::new(
            7,
            vec![
                Entry {
                    uid: 3,
                    size: 100,
                    deleted: false,
                },
                Entry {
                    uid: 5,
                    size: 200,
                    deleted: false,
                },
                Entry {
                    uid: 9,
                    size: 300,
                    deleted: false,
                },
            ],
        )
    }

    fn reply(s: Step) -> String {
        match s {
            Step::Reply(r) => r,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn stat_list_uidl() {
        let mut m = drop3();
        assert_eq!(reply(m.handle(&Command::Stat)), "+OK 3 600\r\n");
        assert_eq!(
            reply(m.handle(&Command::List(None))),
            "+OK 3 messages (600 octets)\r\n1 100\r\n2 200\r\n3 300\r\n.\r\n"
        );
        assert_eq!(reply(m.handle(&Command::List(Some(2)))), "+OK 2 200\r\n");
        assert!(reply(m.handle(&Command::List(Some(4)))).starts_with("-ERR no such message"));
        assert!(reply(m.handle(&Command::List(Some(0)))).starts_with("-ERR no such message"));
        assert_eq!(
            reply(m.handle(&Command::Uidl(None))),
            "+OK unique-id listing follows\r\n1 0000000700000003\r\n2 0000000700000005\r\n3 0000000700000009\r\n.\r\n"
        );
        assert_eq!(
            reply(m.handle(&Command::Uidl(Some(3)))),
            "+OK 3 0000000700000009\r\n"
        );
    }

    #[test]
    fn dele_hides_and_rset_restores() {
        let mut m = drop3();
        assert_eq!(
            reply(m.handle(&Command::Dele(2))),
            "+OK message 2 deleted\r\n"
        );
        assert_eq!(
            reply(m.handle(&Command::Dele(2))),
            "-ERR message 2 already deleted\r\n"
        );
        assert_eq!(reply(m.handle(&Command::Stat)), "+OK 2 400\r\n");
        // Numbers do not shift (RFC 1939 §5).
        assert_eq!(
            reply(m.handle(&Command::List(None))),
            "+OK 2 messages (400 octets)\r\n1 100\r\n3 300\r\n.\r\n"
        );
        assert!(reply(m.handle(&Command::Retr(2))).starts_with("-ERR message 2 already deleted"));
        assert!(reply(m.handle(&Command::Top { msg: 2, lines: 1 })).starts_with("-ERR"));
        assert!(reply(m.handle(&Command::Uidl(Some(2)))).starts_with("-ERR"));
        assert!(reply(m.handle(&Command::List(Some(2)))).starts_with("-ERR"));
        assert_eq!(m.handle(&Command::Quit), Step::Update(vec![5]));
        assert_eq!(
            reply(m.handle(&Command::Rset)),
            "+OK maildrop has 3 messages (600 octets)\r\n"
        );
        assert_eq!(m.handle(&Command::Quit), Step::Update(vec![]));
    }

    #[test]
    fn retrieve_steps() {
        let mut m = drop3();
        assert_eq!(
            m.handle(&Command::Retr(3)),
            Step::Retrieve {
                msg: 3,
                uid: 9,
                size: 300,
                top: None
            }
        );
        assert_eq!(
            m.handle(&Command::Top { msg: 1, lines: 0 }),
            Step::Retrieve {
                msg: 1,
                uid: 3,
                size: 100,
                top: Some(0)
            }
        );
        assert!(reply(m.handle(&Command::Retr(u32::MAX))).starts_with("-ERR"));
    }

    #[test]
    fn authorization_commands_are_refused() {
        let mut m = drop3();
        for c in [
            Command::User("a".into()),
            Command::Pass(b"x".to_vec()),
            Command::Stls,
            Command::Utf8,
        ] {
            assert!(reply(m.handle(&c)).starts_with("-ERR"));
        }
        assert_eq!(reply(m.handle(&Command::Noop)), "+OK\r\n");
    }

    #[test]
    fn empty_maildrop() {
        let mut m = Maildrop::new(1, vec![]);
        assert!(m.is_empty());
        assert_eq!(reply(m.handle(&Command::Stat)), "+OK 0 0\r\n");
        assert_eq!(
            reply(m.handle(&Command::List(None))),
            "+OK 0 messages (0 octets)\r\n.\r\n"
        );
        assert!(reply(m.handle(&Command::Retr(1))).starts_with("-ERR"));
    }

    #[test]
    fn sizes_count_crlf_but_not_stuffing() {
        assert_eq!(transmitted_size(b""), 0);
        assert_eq!(transmitted_size(b"a\nb\n"), 6);
        assert_eq!(transmitted_size(b"a\r\nb\r\n"), 6);
        assert_eq!(transmitted_size(b"a\r\nb"), 6);
        assert_eq!(transmitted_size(b".x\n..\n"), 8);
        assert_eq!(transmitted_size(b"\n\n"), 4);
    }

    fn unstuff(encoded: &[u8]) -> Vec<u8> {
        let text = encoded.strip_suffix(b".\r\n").expect("terminated");
        let mut out = Vec::new();
        for line in text.split_inclusive(|b| *b == b'\n') {
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        out
    }

    #[test]
    fn encoding_is_crlf_stuffed_and_matches_the_size() {
        let samples: [&[u8]; 6] = [
            b"Subject: x\n\nbody\n.\n..two\n.",
            b"Subject: x\r\n\r\nbody\r\n",
            b"no newline at all",
            b"",
            b"A: b\n\n\n\nend\n",
            b"bare\rcr\n",
        ];
        for data in samples {
            let mut out = Vec::new();
            encode_message(&mut out, data, None);
            assert!(out.ends_with(b".\r\n"));
            let plain = unstuff(&out);
            assert_eq!(plain.len() as u64, transmitted_size(data), "{data:?}");
            let framing = if data.is_empty() || data.ends_with(b"\n") {
                0
            } else {
                2
            };
            assert_eq!(
                postern_mail::wire::wire_size(data) + framing,
                transmitted_size(data),
                "{data:?}"
            );
            // Every line ends with CRLF; no line starts with a lone dot.
            for line in out.split_inclusive(|b| *b == b'\n') {
                assert!(line.ends_with(b"\r\n"));
            }
        }
        let mut out = Vec::new();
        encode_message(&mut out, b"Subject: x\n\nbody\n.\n..two\n", None);
        assert_eq!(out, b"Subject: x\r\n\r\nbody\r\n..\r\n...two\r\n.\r\n");
    }

    #[test]
    fn top_sends_header_blank_line_and_n_lines() {
        let msg = b"From: a\r\nSubject: s\r\n\r\nl1\r\nl2\r\n.l3\r\n";
        let mut out = Vec::new();
        encode_message(&mut out, msg, Some(0));
        assert_eq!(out, b"From: a\r\nSubject: s\r\n\r\n.\r\n");
        out.clear();
        encode_message(&mut out, msg, Some(2));
        assert_eq!(out, b"From: a\r\nSubject: s\r\n\r\nl1\r\nl2\r\n.\r\n");
        out.clear();
        encode_message(&mut out, msg, Some(10));
        assert_eq!(
            out,
            b"From: a\r\nSubject: s\r\n\r\nl1\r\nl2\r\n..l3\r\n.\r\n"
        );
        // No body at all: the header is everything.
        out.clear();
        encode_message(&mut out, b"From: a\nX: y\n", Some(3));
        assert_eq!(out, b"From: a\r\nX: y\r\n.\r\n");
    }
}
