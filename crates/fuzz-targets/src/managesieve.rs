//! ManageSieve: the command parser and the server's strings.

use postern_imap::parser::Lexer;
use postern_managesieve::command::{parse, parse_sasl_response, Command};
use postern_managesieve::response::string;

/// One ManageSieve command (RFC 5804 §4, literals inlined as `{n+}CRLF<octets>`) through
/// [`postern_managesieve::command::parse`] and [`parse_sasl_response`].
///
/// Checks: no panic; a parsed command written back in a canonical form (every string a
/// non-synchronising literal) parses to the same command; the input written as a server
/// `string` ([`postern_managesieve::response::string`], quoted or literal) reads back as the
/// same octets with the IMAP lexer a client would use.
pub fn managesieve_command(data: &[u8]) {
    if let Ok(cmd) = parse(data) {
        let wire = wire_form(&cmd);
        assert!(
            parse(&wire).as_ref() == Ok(&cmd),
            "{:?} does not reparse to {cmd:?}",
            String::from_utf8_lossy(&wire)
        );
    }
    let _ = parse_sasl_response(data);
    let mut out = Vec::new();
    string(&mut out, data);
    let mut l = Lexer::new(&out);
    assert_eq!(
        l.string().as_deref(),
        Ok(data),
        "server string {:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(l.at_end());
}

fn lit(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!(" {{{}+}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// The command as a client could send it.
fn wire_form(cmd: &Command) -> Vec<u8> {
    let mut out = cmd.name().as_bytes().to_vec();
    match cmd {
        Command::Authenticate { mechanism, initial } => {
            lit(&mut out, mechanism.as_bytes());
            if let Some(i) = initial {
                lit(&mut out, i);
            }
        }
        Command::HaveSpace { name, size } => {
            lit(&mut out, name.as_bytes());
            out.extend_from_slice(format!(" {size}").as_bytes());
        }
        Command::PutScript { name, script } => {
            lit(&mut out, name.as_bytes());
            lit(&mut out, script);
        }
        Command::SetActive(n) | Command::GetScript(n) | Command::DeleteScript(n) => {
            lit(&mut out, n.as_bytes())
        }
        Command::RenameScript { old, new } => {
            lit(&mut out, old.as_bytes());
            lit(&mut out, new.as_bytes());
        }
        Command::CheckScript(s) => lit(&mut out, s),
        Command::Noop(Some(tag)) => lit(&mut out, tag),
        Command::Noop(None)
        | Command::StartTls
        | Command::Logout
        | Command::Capability
        | Command::ListScripts
        | Command::Unauthenticate => {}
    }
    out.extend_from_slice(b"\r\n");
    out
}
