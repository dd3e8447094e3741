//! The SMTP envelope as accepted, with the DSN parameters kept for later bounces.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What the client said in MAIL and RCPT, plus facts about the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The reverse-path; `None` is the null sender `<>` (bounces, auto-replies).
    pub sender: Option<String>,
    /// The forward-paths (RCPT TO), in the order given; never empty once queued.
    pub recipients: Vec<Recipient>,
    /// RFC 3461 §4.3 RET.
    pub ret: Option<Ret>,
    /// RFC 3461 §4.4 ENVID, xtext-decoded.
    pub envid: Option<String>,
    /// RFC 1652 / RFC 3030 BODY.
    pub body: BodyType,
    /// RFC 6531 SMTPUTF8 was given on MAIL.
    pub smtputf8: bool,
    /// RFC 8689 §4.1 REQUIRETLS was given on MAIL (or the message it came from had it): relay
    /// only over verified TLS to servers that advertise REQUIRETLS. Absent from the spool file
    /// when false, so files stay readable by versions without the field, and a file without it
    /// reads as false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requiretls: bool,
    /// The account that submitted the message (SMTP AUTH), if any.
    pub authenticated: Option<String>,
    /// The SMTP client's address; `None` for local submission (`sendmail`, DSNs).
    pub client_ip: Option<IpAddr>,
    /// The name the client gave in HELO/EHLO, if any.
    pub helo: Option<String>,
}

/// One RCPT TO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The forward-path's mailbox, without angle brackets.
    pub address: String,
    /// RFC 3461 §4.1 NOTIFY.
    pub notify: Notify,
    /// RFC 3461 §4.2 ORCPT, as given (`rfc822;addr`), xtext-decoded.
    pub orcpt: Option<String>,
}

impl Recipient {
    /// A recipient with default DSN behaviour.
    pub fn new(address: impl Into<String>) -> Recipient {
        Recipient {
            address: address.into(),
            notify: Notify::default(),
            orcpt: None,
        }
    }
}

/// RFC 3461 §4.1: when to send a DSN. `NOTIFY=NEVER` is all false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    /// `SUCCESS`: report delivery.
    pub success: bool,
    /// `FAILURE`: report a permanent failure.
    pub failure: bool,
    /// `DELAY`: report a long delay (a delay warning).
    pub delay: bool,
}

impl Default for Notify {
    /// No NOTIFY parameter: failures and delays are reported (RFC 3461 §4.1).
    fn default() -> Notify {
        Notify {
            success: false,
            failure: true,
            delay: true,
        }
    }
}

impl Notify {
    /// `NOTIFY=NEVER`: no DSN at all.
    pub const NEVER: Notify = Notify {
        success: false,
        failure: false,
        delay: false,
    };
}

/// RFC 3461 §4.3: how much of the message a DSN returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ret {
    /// `RET=FULL`: the whole message.
    Full,
    /// `RET=HDRS`: only its headers.
    Headers,
}

/// RFC 6152 / RFC 3030 body type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum BodyType {
    /// `BODY=7BIT` or no BODY parameter (RFC 5321).
    #[default]
    SevenBit,
    /// `BODY=8BITMIME` (RFC 6152).
    EightBitMime,
    /// `BODY=BINARYMIME` (RFC 3030).
    BinaryMime,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The REQUIRETLS flag (RFC 8689) keeps spool files readable both ways: a file written
    /// before the flag existed reads as "not required", and the flag is written only when set.
    #[test]
    fn requiretls_flag_is_optional_in_the_spool_file() {
        let old = r#"{"sender":"a@b.example","recipients":[{"address":"c@d.example","notify":{"success":false,"failure":true,"delay":true},"orcpt":null}],"ret":null,"envid":null,"body":"SevenBit","smtputf8":false,"authenticated":null,"client_ip":null,"helo":null}"#;
        let mut env: Envelope = serde_json::from_str(old).unwrap();
        assert!(!env.requiretls);
        assert_eq!(serde_json::to_string(&env).unwrap(), old);
        env.requiretls = true;
        let new = serde_json::to_string(&env).unwrap();
        assert!(new
            .ends_with(r#","requiretls":true,"authenticated":null,"client_ip":null,"helo":null}"#));
        assert_eq!(serde_json::from_str::<Envelope>(&new).unwrap(), env);
    }
}
