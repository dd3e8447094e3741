//! Server responses (RFC 5804 §1.2, §4 `response`): `OK`/`NO`/`BYE` with an optional response
//! code and human text, and strings written as quoted strings or literals.

use std::fmt::Write as _;

/// RFC 5804 §1.3 response codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// The mechanism is too weak for this user (RFC 5804 §1.3 AUTH-TOO-WEAK).
    AuthTooWeak,
    /// The mechanism needs an encrypted channel (RFC 5804 §1.3 ENCRYPT-NEEDED).
    EncryptNeeded,
    /// The account's quota (RFC 5804 §1.3 QUOTA).
    Quota,
    /// Too many scripts (RFC 5804 §1.3 QUOTA/MAXSCRIPTS).
    QuotaMaxScripts,
    /// A script too large (RFC 5804 §1.3 QUOTA/MAXSIZE).
    QuotaMaxSize,
    /// Temporary failure (RFC 5804 §1.3 TRYLATER).
    TryLater,
    /// The script is active (RFC 5804 §1.3 ACTIVE).
    Active,
    /// No such script (RFC 5804 §1.3 NONEXISTENT).
    NonExistent,
    /// The name is taken (RFC 5804 §1.3 ALREADYEXISTS).
    AlreadyExists,
    /// NOOP's tag echoed (RFC 5804 §1.3 TAG, §2.13).
    Tag(Vec<u8>),
    /// The script compiled with warnings (RFC 5804 §1.3 WARNINGS).
    Warnings,
    /// Final SASL data on success (RFC 5804 §2.1 `OK (SASL "...")`), base64.
    Sasl(String),
}

impl Code {
    fn render(&self, out: &mut Vec<u8>) {
        out.push(b'(');
        match self {
            Code::AuthTooWeak => out.extend_from_slice(b"AUTH-TOO-WEAK"),
            Code::EncryptNeeded => out.extend_from_slice(b"ENCRYPT-NEEDED"),
            Code::Quota => out.extend_from_slice(b"QUOTA"),
            Code::QuotaMaxScripts => out.extend_from_slice(b"QUOTA/MAXSCRIPTS"),
            Code::QuotaMaxSize => out.extend_from_slice(b"QUOTA/MAXSIZE"),
            Code::TryLater => out.extend_from_slice(b"TRYLATER"),
            Code::Active => out.extend_from_slice(b"ACTIVE"),
            Code::NonExistent => out.extend_from_slice(b"NONEXISTENT"),
            Code::AlreadyExists => out.extend_from_slice(b"ALREADYEXISTS"),
            Code::Warnings => out.extend_from_slice(b"WARNINGS"),
            Code::Tag(tag) => {
                out.extend_from_slice(b"TAG ");
                string(out, tag);
            }
            Code::Sasl(data) => {
                out.extend_from_slice(b"SASL ");
                string(out, data.as_bytes());
            }
        }
        out.extend_from_slice(b") ");
    }
}

/// Appends `s` as RFC 5804 §4 `string`: quoted when it can be (no CR, LF or NUL, not too
/// long), otherwise as a literal `{n}CRLF<octets>` (§4 `literal-s2c`).
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() <= 1024 && !s.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        let _ = write!(StringSink(out), "{{{}}}\r\n", s.len());
        out.extend_from_slice(s);
    }
}

/// `fmt::Write` into a byte buffer.
struct StringSink<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for StringSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The kind of a final response (RFC 5804 §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BYE`: the server closes the connection.
    Bye,
}

/// Appends one response line: `OK|NO|BYE [(code)] ["text"]` CRLF (RFC 5804 §4 `response-*`).
pub fn respond(out: &mut Vec<u8>, status: Status, code: Option<&Code>, text: &str) {
    out.extend_from_slice(match status {
        Status::Ok => b"OK",
        Status::No => b"NO",
        Status::Bye => b"BYE",
    });
    out.push(b' ');
    if let Some(code) = code {
        code.render(out);
    }
    string(out, text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(status: Status, code: Option<Code>, text: &str) -> String {
        let mut out = Vec::new();
        respond(&mut out, status, code.as_ref(), text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn response_lines() {
        assert_eq!(r(Status::Ok, None, "done"), "OK \"done\"\r\n");
        assert_eq!(
            r(Status::No, Some(Code::NonExistent), "no \"x\""),
            "NO (NONEXISTENT) \"no \\\"x\\\"\"\r\n"
        );
        assert_eq!(
            r(Status::No, Some(Code::QuotaMaxScripts), "full"),
            "NO (QUOTA/MAXSCRIPTS) \"full\"\r\n"
        );
        assert_eq!(
            r(
                Status::Ok,
                Some(Code::Tag(b"STARTTLS-SYNC-42".to_vec())),
                "Done"
            ),
            "OK (TAG \"STARTTLS-SYNC-42\") \"Done\"\r\n"
        );
        assert_eq!(
            r(Status::Bye, Some(Code::TryLater), "later"),
            "BYE (TRYLATER) \"later\"\r\n"
        );
        // Multi-line text (compile errors) goes as a literal.
        assert_eq!(
            r(Status::No, None, "line 1: a\r\nline 2: b"),
            "NO {20}\r\nline 1: a\r\nline 2: b\r\n"
        );
    }
}
