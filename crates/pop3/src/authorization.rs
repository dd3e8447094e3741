//! The AUTHORIZATION state (RFC 1939 §4, §7), free of I/O: which commands are allowed on this
//! channel, what to answer, and which credential check the session must run. Also CAPA
//! (RFC 2449 §5), the APOP timestamp and digest (RFC 1939 §7).

use crate::command::Command;
use base64::Engine as _;
use md5::{Digest as _, Md5};
use postern_directory::{advertised_mechanisms, SaslMechanism};
use std::sync::atomic::{AtomicU64, Ordering};

/// What the channel allows, fixed per connection (it changes only with STLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Passwords may cross this channel: TLS is active, the peer is on loopback, or the
    /// administrator set `auth.allow_plaintext` (DESIGN principle 3).
    pub plaintext_ok: bool,
    /// STLS can be offered: a certificate exists and TLS is not active yet (RFC 2595 §4).
    pub stls_available: bool,
    /// The greeting carried an APOP timestamp (RFC 1939 §7).
    pub apop: bool,
    /// TLS is active: SCRAM-SHA-256-PLUS can bind to it (RFC 5802 §6).
    pub tls: bool,
    /// SCRAM-SHA-256-PLUS is advertised: the channel has `tls-exporter` (TLS 1.3).
    pub offer_plus: bool,
}

/// What the session must do for an AUTHORIZATION command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this line (with CRLF).
    Reply(String),
    /// RFC 1939 §7 PASS: verify `password` for `user`.
    CheckPassword {
        /// The name from USER.
        user: String,
        /// The password as sent, raw bytes.
        password: Vec<u8>,
    },
    /// RFC 1939 §7 APOP: compare `digest` with MD5(timestamp + the user's APOP secret).
    CheckApop {
        /// The mailbox name.
        name: String,
        /// The 32 hex digits the client sent.
        digest: String,
    },
    /// RFC 5034 §4: run a SASL exchange (`initial_response` already base64-decoded).
    Sasl {
        /// The mechanism the client chose.
        mechanism: SaslMechanism,
        /// The initial response (RFC 4954 style, RFC 5034 §4), decoded; `None` when absent.
        initial_response: Option<Vec<u8>>,
    },
    /// RFC 2595 §4: answer `+OK`, then start the TLS handshake.
    StartTls,
    /// RFC 2449 §5 CAPA.
    Capa,
    /// RFC 1939 §4 QUIT in AUTHORIZATION: say goodbye, no UPDATE.
    Quit,
}

/// The state kept between AUTHORIZATION commands.
#[derive(Debug, Default, Clone)]
pub struct Authorization {
    /// The name given by USER, waiting for PASS.
    user: Option<String>,
    /// RFC 6856 §2: the client said UTF8.
    utf8: bool,
}

/// The refusal for passwords over an unprotected channel (RFC 3206 §4 AUTH: a credentials
/// problem the user must fix; here, by using TLS).
pub const PLAINTEXT_REFUSED: &str =
    "-ERR [AUTH] plaintext authentication is not allowed without TLS; use STLS or port 995\r\n";

impl Authorization {
    /// Whether the client enabled UTF-8 mode (RFC 6856 §2).
    pub fn utf8(&self) -> bool {
        self.utf8
    }

    /// Forgets a pending USER (after STLS, RFC 2595 §4, or a failed PASS).
    pub fn reset(&mut self) {
        self.user = None;
    }

    /// Handles one command received in the AUTHORIZATION state.
    pub fn handle(&mut self, cmd: Command, policy: &Policy) -> Step {
        match cmd {
            Command::User(name) => {
                if !policy.plaintext_ok {
                    return Step::Reply(PLAINTEXT_REFUSED.into());
                }
                self.user = Some(name);
                // The same answer whether the account exists or not (RFC 1939 §13).
                Step::Reply("+OK send PASS\r\n".into())
            }
            Command::Pass(password) => {
                if !policy.plaintext_ok {
                    return Step::Reply(PLAINTEXT_REFUSED.into());
                }
                match self.user.take() {
                    Some(user) => Step::CheckPassword { user, password },
                    None => Step::Reply("-ERR send USER first\r\n".into()),
                }
            }
            Command::Apop { name, digest } => {
                self.user = None;
                if !policy.apop {
                    return Step::Reply("-ERR APOP is not available\r\n".into());
                }
                Step::CheckApop { name, digest }
            }
            Command::Auth {
                mechanism: None, ..
            } => {
                // RFC 1734 §2 listing, still sent by some clients before RFC 2449 CAPA existed.
                let mut out = String::from("+OK SASL mechanisms follow\r\n");
                for m in advertised_mechanisms(policy.plaintext_ok, policy.offer_plus) {
                    out.push_str(m.name());
                    out.push_str("\r\n");
                }
                out.push_str(".\r\n");
                Step::Reply(out)
            }
            Command::Auth {
                mechanism: Some(name),
                initial_response,
            } => {
                self.user = None;
                let Some(mechanism) = SaslMechanism::from_name(&name) else {
                    return Step::Reply("-ERR unsupported SASL mechanism\r\n".into());
                };
                if mechanism.is_plaintext() && !policy.plaintext_ok {
                    return Step::Reply(PLAINTEXT_REFUSED.into());
                }
                if !mechanism.usable(true, policy.tls) {
                    return Step::Reply(
                        "-ERR SCRAM-SHA-256-PLUS needs TLS; use STLS or port 995\r\n".into(),
                    );
                }
                // RFC 5034 §4: "=" is an empty initial response.
                let initial_response = match initial_response.as_deref() {
                    None => None,
                    Some("=") => Some(Vec::new()),
                    Some(b64) => match decode_base64(b64) {
                        Some(bytes) => Some(bytes),
                        None => {
                            return Step::Reply(
                                "-ERR invalid base64 in initial response\r\n".into(),
                            )
                        }
                    },
                };
                Step::Sasl {
                    mechanism,
                    initial_response,
                }
            }
            Command::Stls => {
                if !policy.stls_available {
                    return Step::Reply("-ERR STLS is not available here\r\n".into());
                }
                self.user = None;
                Step::StartTls
            }
            Command::Capa => Step::Capa,
            Command::Utf8 => {
                self.utf8 = true;
                Step::Reply("+OK UTF8 enabled\r\n".into())
            }
            Command::Quit => Step::Quit,
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top { .. }
            | Command::Uidl(_) => Step::Reply("-ERR not authenticated yet\r\n".into()),
        }
    }
}

/// Base64 as SASL uses it (RFC 4648 §4, padding required, whitespace not allowed).
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Base64-encodes a SASL challenge.
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What CAPA lists depends on the state and the channel.
#[derive(Debug, Clone, Copy)]
pub struct CapaContext<'a> {
    /// Still in AUTHORIZATION (RFC 2449 §5: the list may differ after login).
    pub authorization: bool,
    /// The channel's policy.
    pub policy: Policy,
    /// The IMPLEMENTATION string (RFC 2449 §6.9).
    pub implementation: &'a str,
}

/// The RFC 2449 §5 CAPA response, complete with status line and terminator.
pub fn capabilities(ctx: &CapaContext<'_>) -> String {
    let mut lines: Vec<String> = vec![
        "TOP".into(),
        "UIDL".into(),
        "RESP-CODES".into(),
        "AUTH-RESP-CODE".into(),
        "PIPELINING".into(),
        // RFC 2449 §6.7: mail is kept until the client deletes it.
        "EXPIRE NEVER".into(),
    ];
    if ctx.authorization {
        if ctx.policy.plaintext_ok {
            lines.push("USER".into());
        }
        // SCRAM sends no password: offered on every channel.
        let mechs: Vec<&str> =
            advertised_mechanisms(ctx.policy.plaintext_ok, ctx.policy.offer_plus)
                .iter()
                .map(|m| m.name())
                .collect();
        lines.push(format!("SASL {}", mechs.join(" ")));
        if ctx.policy.stls_available {
            lines.push("STLS".into());
        }
        // RFC 6856 §2: UTF-8 user names and passwords are accepted.
        lines.push("UTF8 USER".into());
    }
    lines.push(format!("IMPLEMENTATION {}", ctx.implementation));
    let mut out = String::from("+OK capability list follows\r\n");
    for l in lines {
        out.push_str(&l);
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

/// A fresh APOP timestamp `<pid.clock@hostname>` (RFC 1939 §7): the clock is a nanosecond count
/// forced to increase, so no two greetings of this process carry the same one.
pub fn apop_timestamp(hostname: &str) -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    let clock = loop {
        let next = now.max(prev.saturating_add(1));
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(p) => prev = p,
        }
    };
    format!("<{}.{clock}@{hostname}>", std::process::id())
}

/// RFC 1939 §7: the APOP digest, MD5(timestamp + secret) in lower-case hex.
pub fn apop_digest(timestamp: &str, secret: &str) -> String {
    let mut h = Md5::new();
    h.update(timestamp.as_bytes());
    h.update(secret.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares the client's digest with the expected one, case-insensitively, in time independent
/// of where they differ.
pub fn digest_matches(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| {
        acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
    }) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Policy = Policy {
        plaintext_ok: true,
        stls_available: true,
        apop: true,
        tls: false,
        offer_plus: false,
    };
    const CLOSED: Policy = Policy {
        plaintext_ok: false,
        stls_available: true,
        apop: true,
        tls: false,
        offer_plus: false,
    };
    const TLS13: Policy = Policy {
        plaintext_ok: true,
        stls_available: false,
        apop: true,
        tls: true,
        offer_plus: true,
    };

    fn reply(s: Step) -> String {
        match s {
            Step::Reply(r) => r,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn rfc1939_apop_example() {
        // RFC 1939 §7's example: secret "tanstaaf".
        assert_eq!(
            apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf"),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
        assert!(digest_matches(
            "c4c9334bac560ecc979e58001b3e22fb",
            "C4C9334BAC560ECC979E58001B3E22FB"
        ));
        assert!(!digest_matches("c4c9334bac560ecc979e58001b3e22fb", "c4c9"));
        assert!(!digest_matches(
            "c4c9334bac560ecc979e58001b3e22fb",
            "c4c9334bac560ecc979e58001b3e22fc"
        ));
    }

    #[test]
    fn timestamps_are_unique_and_well_formed() {
        let a = apop_timestamp("mx.test");
        let b = apop_timestamp("mx.test");
        assert_ne!(a, b);
        assert!(a.starts_with('<') && a.ends_with("@mx.test>"));
        let inner = &a[1..a.find('@').unwrap()];
        let (pid, clock) = inner.split_once('.').unwrap();
        assert_eq!(pid, std::process::id().to_string());
        assert!(clock.chars().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn user_then_pass() {
        let mut a = Authorization::default();
        assert_eq!(
            reply(a.handle(Command::Pass(b"x".to_vec()), &OPEN)),
            "-ERR send USER first\r\n"
        );
        assert!(reply(a.handle(Command::User("alice".into()), &OPEN)).starts_with("+OK"));
        assert_eq!(
            a.handle(Command::Pass(b"pw".to_vec()), &OPEN),
            Step::CheckPassword {
                user: "alice".into(),
                password: b"pw".to_vec()
            }
        );
        // The name is consumed: a second PASS needs a new USER.
        assert!(reply(a.handle(Command::Pass(b"pw".to_vec()), &OPEN)).starts_with("-ERR"));
    }

    #[test]
    fn plaintext_refused_without_tls() {
        let mut a = Authorization::default();
        for c in [
            Command::User("alice".into()),
            Command::Pass(b"pw".to_vec()),
            Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: Some("AGEAYg==".into()),
            },
            Command::Auth {
                mechanism: Some("login".into()),
                initial_response: None,
            },
        ] {
            assert_eq!(reply(a.handle(c, &CLOSED)), PLAINTEXT_REFUSED);
        }
        // APOP sends no password: allowed.
        assert!(matches!(
            a.handle(
                Command::Apop {
                    name: "a".into(),
                    digest: "d".into()
                },
                &CLOSED
            ),
            Step::CheckApop { .. }
        ));
        assert_eq!(a.handle(Command::Stls, &CLOSED), Step::StartTls);
        // Only SCRAM, which sends no password, is listed and allowed on a closed channel.
        assert_eq!(
            reply(a.handle(
                Command::Auth {
                    mechanism: None,
                    initial_response: None
                },
                &CLOSED
            )),
            "+OK SASL mechanisms follow\r\nSCRAM-SHA-256\r\n.\r\n"
        );
        assert_eq!(
            a.handle(
                Command::Auth {
                    mechanism: Some("SCRAM-SHA-256".into()),
                    initial_response: None
                },
                &CLOSED
            ),
            Step::Sasl {
                mechanism: SaslMechanism::ScramSha256,
                initial_response: None
            }
        );
        // -PLUS needs TLS.
        assert!(reply(a.handle(
            Command::Auth {
                mechanism: Some("SCRAM-SHA-256-PLUS".into()),
                initial_response: None
            },
            &OPEN
        ))
        .starts_with("-ERR SCRAM-SHA-256-PLUS needs TLS"));
        assert!(matches!(
            a.handle(
                Command::Auth {
                    mechanism: Some("SCRAM-SHA-256-PLUS".into()),
                    initial_response: None
                },
                &TLS13
            ),
            Step::Sasl { .. }
        ));
        assert_eq!(
            reply(a.handle(
                Command::Auth {
                    mechanism: None,
                    initial_response: None
                },
                &TLS13
            )),
            "+OK SASL mechanisms follow\r\nSCRAM-SHA-256-PLUS\r\nSCRAM-SHA-256\r\nPLAIN\r\nLOGIN\r\n.\r\n"
        );
    }

    #[test]
    fn auth_decodes_initial_responses() {
        let mut a = Authorization::default();
        assert_eq!(
            a.handle(
                Command::Auth {
                    mechanism: Some("plain".into()),
                    initial_response: Some("AGEAYg==".into())
                },
                &OPEN
            ),
            Step::Sasl {
                mechanism: SaslMechanism::Plain,
                initial_response: Some(b"\0a\0b".to_vec())
            }
        );
        assert_eq!(
            a.handle(
                Command::Auth {
                    mechanism: Some("PLAIN".into()),
                    initial_response: Some("=".into())
                },
                &OPEN
            ),
            Step::Sasl {
                mechanism: SaslMechanism::Plain,
                initial_response: Some(Vec::new())
            }
        );
        assert_eq!(
            a.handle(
                Command::Auth {
                    mechanism: Some("LOGIN".into()),
                    initial_response: None
                },
                &OPEN
            ),
            Step::Sasl {
                mechanism: SaslMechanism::Login,
                initial_response: None
            }
        );
        assert!(reply(a.handle(
            Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial_response: Some("not base64!".into())
            },
            &OPEN
        ))
        .starts_with("-ERR invalid base64"));
        assert!(reply(a.handle(
            Command::Auth {
                mechanism: Some("CRAM-MD5".into()),
                initial_response: None
            },
            &OPEN
        ))
        .starts_with("-ERR unsupported"));
    }

    #[test]
    fn transaction_commands_need_login() {
        let mut a = Authorization::default();
        for c in [
            Command::Stat,
            Command::List(None),
            Command::Retr(1),
            Command::Dele(1),
            Command::Noop,
            Command::Rset,
            Command::Top { msg: 1, lines: 1 },
            Command::Uidl(None),
        ] {
            assert_eq!(reply(a.handle(c, &OPEN)), "-ERR not authenticated yet\r\n");
        }
        assert_eq!(a.handle(Command::Quit, &OPEN), Step::Quit);
        assert_eq!(a.handle(Command::Capa, &OPEN), Step::Capa);
        assert!(!a.utf8());
        assert_eq!(
            reply(a.handle(Command::Utf8, &OPEN)),
            "+OK UTF8 enabled\r\n"
        );
        assert!(a.utf8());
    }

    #[test]
    fn stls_and_apop_availability() {
        let mut a = Authorization::default();
        let no = Policy {
            plaintext_ok: true,
            stls_available: false,
            apop: false,
            tls: false,
            offer_plus: false,
        };
        assert!(reply(a.handle(Command::Stls, &no)).starts_with("-ERR"));
        assert!(reply(a.handle(
            Command::Apop {
                name: "a".into(),
                digest: "b".into()
            },
            &no
        ))
        .starts_with("-ERR"));
        a.handle(Command::User("x".into()), &OPEN);
        assert_eq!(a.handle(Command::Stls, &OPEN), Step::StartTls);
        // STLS forgets the pending USER (RFC 2595 §4).
        assert!(reply(a.handle(Command::Pass(b"p".to_vec()), &OPEN)).starts_with("-ERR"));
    }

    #[test]
    fn capa_depends_on_state_and_channel() {
        let c = capabilities(&CapaContext {
            authorization: true,
            policy: OPEN,
            implementation: "postern-1",
        });
        assert!(c.starts_with("+OK"));
        assert!(c.ends_with("\r\n.\r\n"));
        for cap in [
            "TOP",
            "UIDL",
            "USER",
            "STLS",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "SASL SCRAM-SHA-256 PLAIN LOGIN",
            "UTF8 USER",
            "IMPLEMENTATION postern-1",
        ] {
            assert!(
                c.contains(&format!("\r\n{cap}\r\n")),
                "{cap} missing in {c}"
            );
        }
        let c = capabilities(&CapaContext {
            authorization: true,
            policy: CLOSED,
            implementation: "p",
        });
        assert!(!c.contains("\r\nUSER\r\n"));
        assert!(c.contains("\r\nSASL SCRAM-SHA-256\r\n"), "{c}");
        assert!(c.contains("\r\nSTLS\r\n"));
        let c = capabilities(&CapaContext {
            authorization: true,
            policy: TLS13,
            implementation: "p",
        });
        assert!(
            c.contains("\r\nSASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN LOGIN\r\n"),
            "{c}"
        );
        let c = capabilities(&CapaContext {
            authorization: false,
            policy: OPEN,
            implementation: "p",
        });
        assert!(!c.contains("STLS") && !c.contains("\r\nUSER\r\n") && !c.contains("SASL"));
        assert!(c.contains("\r\nTOP\r\n") && c.contains("\r\nUIDL\r\n"));
    }
}
