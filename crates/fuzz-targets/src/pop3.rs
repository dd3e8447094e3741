//! POP3: the command parser and the AUTHORIZATION state.

use postern_pop3::authorization::{Authorization, Policy, Step};
use postern_pop3::command::{parse, Command};

/// POP3 command lines (RFC 1939 §3, with RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH, RFC 6856
/// UTF8) through [`postern_pop3::command::parse`], and each parsed command through the I/O-free
/// AUTHORIZATION state ([`Authorization::handle`]).
///
/// Input: the first octet picks the channel policy (plaintext allowed, STLS available, APOP
/// offered, TLS active, SCRAM-SHA-256-PLUS offered); the rest is lines split at LF. Checks: no panic; a parsed command written back in
/// its canonical form parses to the same command; every reply of the AUTHORIZATION state is one
/// `+OK`/`-ERR` line (RFC 1939 §3) ending in CRLF with no CR or LF of the client's inside.
pub fn pop3_command(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let policy = Policy {
        plaintext_ok: mode & 1 != 0,
        stls_available: mode & 2 != 0,
        apop: mode & 4 != 0,
        tls: mode & 8 != 0,
        offer_plus: mode & 16 != 0,
    };
    let mut auth = Authorization::default();
    for line in rest.split(|&b| b == b'\n') {
        let Ok(cmd) = parse(line) else {
            continue;
        };
        let wire = wire_form(&cmd);
        assert!(
            parse(&wire).as_ref() == Ok(&cmd),
            "{:?} does not reparse to {cmd:?}",
            String::from_utf8_lossy(&wire)
        );
        if let Step::Reply(r) = auth.handle(cmd, &policy) {
            assert!(
                r.starts_with("+OK") || r.starts_with("-ERR"),
                "not a status line: {r:?}"
            );
            assert!(r.ends_with("\r\n"), "reply without CRLF: {r:?}");
            for l in r[..r.len() - 2].split("\r\n") {
                assert!(!l.contains(['\r', '\n']), "bare CR or LF in a reply: {r:?}");
            }
        }
    }
}

/// The canonical line for a command, with its CRLF.
fn wire_form(cmd: &Command) -> Vec<u8> {
    let opt = |n: &Option<u32>| n.map(|n| format!(" {n}")).unwrap_or_default();
    let text = match cmd {
        Command::User(u) => format!("USER {u}"),
        Command::Pass(p) => {
            let mut v = b"PASS ".to_vec();
            v.extend_from_slice(p);
            v.extend_from_slice(b"\r\n");
            return v;
        }
        Command::Apop { name, digest } => format!("APOP {name} {digest}"),
        Command::Auth {
            mechanism,
            initial_response,
        } => {
            let mut s = "AUTH".to_string();
            for a in [mechanism, initial_response].into_iter().flatten() {
                s.push(' ');
                s.push_str(a);
            }
            s
        }
        Command::Stls => "STLS".into(),
        Command::Capa => "CAPA".into(),
        Command::Utf8 => "UTF8".into(),
        Command::Stat => "STAT".into(),
        Command::List(n) => format!("LIST{}", opt(n)),
        Command::Retr(n) => format!("RETR {n}"),
        Command::Dele(n) => format!("DELE {n}"),
        Command::Noop => "NOOP".into(),
        Command::Rset => "RSET".into(),
        Command::Top { msg, lines } => format!("TOP {msg} {lines}"),
        Command::Uidl(n) => format!("UIDL{}", opt(n)),
        Command::Quit => "QUIT".into(),
    };
    format!("{text}\r\n").into_bytes()
}
