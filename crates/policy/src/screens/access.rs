//! Access tables: rules by client network, HELO name, sender and recipient, from
//! `[[policy.access]]` and from `access_file` (read again at each reload). The first rule that
//! matches decides: `ok` lets the session (client), the transaction (HELO, sender) or the
//! recipient through the remaining screens, `reject` answers `554 5.7.1`, `tempfail` `451 4.7.1`.
//!
//! The file has one rule per line, `KIND VALUE ACTION [MESSAGE...]`, e.g.
//! `client 192.0.2.0/24 reject Go away` or `sender spammer.example reject`; `#` starts a
//! comment, blank lines are skipped.

use super::{note_ok_rcpt, passed, screened, NOTE_OK};
use async_trait::async_trait;
use postern_config::{AccessAction, AccessMatch, AccessRule, Network, Screens};
use postern_mail::EnhancedCode;
use postern_smtp::{Check, Context, Verdict};
use std::net::IpAddr;

/// The access rules in force: the configuration's, then the file's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessTable {
    rules: Vec<AccessRule>,
}

/// Parses the text of an access file; the error names the line.
pub fn parse_file(text: &str) -> Result<Vec<AccessRule>, String> {
    let mut rules = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(kind), Some(value), Some(action)) = (words.next(), words.next(), words.next())
        else {
            return Err(format!(
                "line {}: {line:?} is not KIND VALUE ACTION [MESSAGE] (e.g. \"client 192.0.2.0/24 reject Go away\")",
                n + 1
            ));
        };
        let message = words.collect::<Vec<_>>().join(" ");
        let rule = AccessRule::parse(
            &kind.to_ascii_lowercase(),
            value,
            action,
            (!message.is_empty()).then_some(message),
        )
        .map_err(|e| format!("line {}: {e}", n + 1))?;
        rules.push(rule);
    }
    Ok(rules)
}

/// Whether `address` is `pattern` (with `@`) or at domain `pattern` or a subdomain of it.
fn address_matches(pattern: &str, address: &str) -> bool {
    let address = address.to_ascii_lowercase();
    if pattern.contains('@') {
        return address == pattern;
    }
    let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
    domain_matches(pattern, domain)
}

/// Whether `name` is `pattern` or a subdomain of it.
fn domain_matches(pattern: &str, name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == pattern
        || name
            .strip_suffix(pattern)
            .is_some_and(|head| head.ends_with('.'))
}

impl AccessTable {
    /// The rules of `[policy]`: the `access` tables, then `access_file`'s lines.
    pub fn load(screens: &Screens) -> Result<AccessTable, String> {
        let mut rules = screens.access.clone();
        if let Some(path) = &screens.access_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            rules.extend(parse_file(&text).map_err(|e| format!("{}: {e}", path.display()))?);
        }
        Ok(AccessTable { rules })
    }

    /// A table of these rules.
    pub fn new(rules: Vec<AccessRule>) -> AccessTable {
        AccessTable { rules }
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first client rule matching `ip`.
    pub fn client(&self, ip: IpAddr) -> Option<&AccessRule> {
        self.rules
            .iter()
            .find(|r| matches!(&r.matches, AccessMatch::Client(n) if n.contains(ip)))
    }

    /// The first HELO or sender rule matching (`sender` `""` is the null sender: no sender
    /// rule matches it).
    pub fn envelope(&self, helo: Option<&str>, sender: &str) -> Option<&AccessRule> {
        self.rules.iter().find(|r| match &r.matches {
            AccessMatch::Helo(p) => helo.is_some_and(|h| domain_matches(p, h)),
            AccessMatch::Sender(p) => !sender.is_empty() && address_matches(p, sender),
            _ => false,
        })
    }

    /// The first recipient rule matching.
    pub fn recipient(&self, recipient: &str) -> Option<&AccessRule> {
        self.rules.iter().find(
            |r| matches!(&r.matches, AccessMatch::Recipient(p) if address_matches(p, recipient)),
        )
    }
}

/// The verdict of a refusing rule; `None` for `ok`.
fn refusal(rule: &AccessRule) -> Option<Verdict> {
    let text = rule.message.as_deref().unwrap_or("Access denied");
    match rule.action {
        AccessAction::Ok => None,
        AccessAction::Reject => Some(Verdict::reject(554, EnhancedCode::new(5, 7, 1), text)),
        AccessAction::Tempfail => Some(Verdict::tempfail(451, EnhancedCode::new(4, 7, 1), text)),
    }
}

/// The access tables as a check.
pub struct AccessCheck {
    table: std::sync::Arc<AccessTable>,
    trusted: Vec<Network>,
}

impl AccessCheck {
    /// Checks with `table`, skipping clients in `trusted`.
    pub fn new(table: std::sync::Arc<AccessTable>, trusted: Vec<Network>) -> AccessCheck {
        AccessCheck { table, trusted }
    }
}

#[async_trait]
impl Check for AccessCheck {
    fn name(&self) -> &str {
        "access"
    }

    /// RFC 5321 §3.1: a refused client is answered `554` (or `451`) instead of the greeting.
    async fn connect(&self, ctx: &Context) -> Verdict {
        if !screened(ctx, &self.trusted) {
            return Verdict::Accept;
        }
        let Some(rule) = self.table.client(ctx.peer) else {
            return Verdict::Accept;
        };
        match refusal(rule) {
            Some(v) => v,
            None => {
                ctx.with_findings(|f| {
                    f.connection
                        .notes
                        .insert(NOTE_OK.into(), format!("access client {}", ctx.peer))
                });
                Verdict::Accept
            }
        }
    }

    /// RFC 5321 §4.1.1.2: rules on the HELO name and the sender.
    async fn mail(&self, ctx: &Context, sender: Option<&str>) -> Verdict {
        if !screened(ctx, &self.trusted) || passed(ctx, None) {
            return Verdict::Accept;
        }
        let sender = sender.unwrap_or("");
        let Some(rule) = self.table.envelope(ctx.helo.as_deref(), sender) else {
            return Verdict::Accept;
        };
        match refusal(rule) {
            Some(v) => v,
            None => {
                ctx.with_findings(|f| {
                    f.transaction
                        .notes
                        .insert(NOTE_OK.into(), "access envelope".into())
                });
                Verdict::Accept
            }
        }
    }

    /// RFC 5321 §4.1.1.3: rules on the recipient.
    async fn rcpt(&self, ctx: &Context, recipient: &str) -> Verdict {
        if !screened(ctx, &self.trusted) || passed(ctx, None) {
            return Verdict::Accept;
        }
        let Some(rule) = self.table.recipient(recipient) else {
            return Verdict::Accept;
        };
        match refusal(rule) {
            Some(v) => v,
            None => {
                ctx.with_findings(|f| {
                    f.transaction
                        .notes
                        .insert(note_ok_rcpt(recipient), "access recipient".into())
                });
                Verdict::Accept
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lines_and_matching() {
        let rules = parse_file(
            "# the access file\n\
             client 192.0.2.0/24 reject Go away  # spam source\n\
             client 2001:db8::/32 tempfail\n\
             \n\
             helo Bad.Example reject No fake names\n\
             sender spammer.example reject\n\
             sender boss@corp.example ok\n\
             recipient abuse@example.org ok\n\
             RECIPIENT closed.example.org Reject This domain is closed\n",
        )
        .unwrap();
        assert_eq!(rules.len(), 7);
        let t = AccessTable::new(rules);
        let r = t.client("192.0.2.9".parse().unwrap()).unwrap();
        assert_eq!(r.action, AccessAction::Reject);
        assert_eq!(r.message.as_deref(), Some("Go away"));
        assert_eq!(
            t.client("2001:db8::1".parse().unwrap()).unwrap().action,
            AccessAction::Tempfail
        );
        assert!(t.client("198.51.100.1".parse().unwrap()).is_none());
        // HELO: the name and its subdomains, any case.
        assert!(t.envelope(Some("mx.BAD.example."), "a@b.test").is_some());
        assert!(t.envelope(Some("notbad.example"), "a@b.test").is_none());
        // Sender: a domain matches it and its subdomains, an address only itself.
        let r = t.envelope(None, "x@mail.Spammer.example").unwrap();
        assert_eq!(r.action, AccessAction::Reject);
        assert!(t.envelope(None, "x@notspammer.example").is_none());
        assert_eq!(
            t.envelope(None, "Boss@corp.example").unwrap().action,
            AccessAction::Ok
        );
        assert!(t.envelope(None, "other@corp.example").is_none());
        assert!(t.envelope(None, "").is_none());
        assert_eq!(
            t.recipient("someone@closed.example.org")
                .unwrap()
                .message
                .as_deref(),
            Some("This domain is closed")
        );
        assert_eq!(
            t.recipient("ABUSE@example.org").unwrap().action,
            AccessAction::Ok
        );
        assert!(t.recipient("bob@example.org").is_none());
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, want) in [
            ("client 192.0.2.0/24\n", "line 1: "),
            (
                "\nclient 300.1.2.3 reject\n",
                "line 2: \"300.1.2.3\" is not an address",
            ),
            ("sender x.example drop\n", "line 1: action \"drop\""),
            ("peer 192.0.2.1 reject\n", "line 1: \"peer\" is not client"),
        ] {
            let e = parse_file(text).unwrap_err();
            assert!(e.starts_with(want), "{e}");
        }
    }

    #[test]
    fn refusals_carry_their_codes() {
        let rule = |action, message: Option<&str>| AccessRule {
            matches: AccessMatch::Helo("x".into()),
            action,
            message: message.map(str::to_string),
        };
        assert_eq!(
            refusal(&rule(AccessAction::Reject, Some("Go away"))),
            Some(Verdict::Reject("554 5.7.1 Go away\r\n".into()))
        );
        assert_eq!(
            refusal(&rule(AccessAction::Tempfail, None)),
            Some(Verdict::Tempfail("451 4.7.1 Access denied\r\n".into()))
        );
        assert_eq!(refusal(&rule(AccessAction::Ok, None)), None);
    }
}
