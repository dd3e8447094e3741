//! The screens of `[policy]`: DNS block and allow lists (RFC 5782), the pre-greeting test,
//! greylisting, rate limits and access tables. Their keys sit flat in `[policy]`; this module
//! holds their types and validation so that `policy.rs` only lists them.

use crate::{ConfigError, Network};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// The screens' settings (`[policy]` keys `dnsbl*`, `pregreet_*`, `greylist*`, `rate_limit`,
/// `access*`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Screens {
    /// The DNS lists asked at connect: the simple `dnsbl = [zones]` form (block lists that
    /// reject) followed by the `[[policy.dnsbl_list]]` tables.
    #[serde(rename = "dnsbl_list")]
    pub dns_lists: Vec<DnsList>,
    /// Where a block listing is refused: at connect, or at each RCPT (postmaster passes).
    pub dnsbl_reject_at: RejectAt,
    /// The longest the DNS lists may delay the greeting, in milliseconds; lists that have not
    /// answered by then are ignored for this connection.
    pub dnsbl_timeout_ms: u64,
    /// Milliseconds to wait before the banner (0: off); a client talking first is dropped.
    pub pregreet_wait_ms: u64,
    /// Whether the pre-greeting wait also applies to loopback clients (tests).
    pub pregreet_loopback: bool,
    /// Whether greylisting runs.
    pub greylist: bool,
    /// Seconds a new triplet must wait before a retry passes.
    pub greylist_delay_secs: u64,
    /// Seconds after which a triplet never retried is forgotten (its next try starts over).
    pub greylist_expire_secs: u64,
    /// Passed triplets after which the client network is no longer greylisted (0: never).
    pub greylist_auto_allow: u32,
    /// Rate limits, each on its own key.
    #[serde(rename = "rate_limit")]
    pub rate_limits: Vec<RateLimit>,
    /// Access rules from the configuration, asked before the rules of `access_file`.
    pub access: Vec<AccessRule>,
    /// A file of access rules, one per line, re-read at each reload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_file: Option<PathBuf>,
}

impl Default for Screens {
    fn default() -> Screens {
        Screens {
            dns_lists: Vec::new(),
            dnsbl_reject_at: RejectAt::Connect,
            dnsbl_timeout_ms: 2000,
            pregreet_wait_ms: 0,
            pregreet_loopback: false,
            greylist: false,
            greylist_delay_secs: 300,
            greylist_expire_secs: 4 * 3600,
            greylist_auto_allow: 5,
            rate_limits: Vec::new(),
            access: Vec::new(),
            access_file: None,
        }
    }
}

/// Where a DNS block listing is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RejectAt {
    /// `554` instead of the greeting.
    Connect,
    /// `554` at each RCPT but postmaster's (RFC 5321 §4.5.1).
    Rcpt,
}

/// Whether a DNS list names bad or good senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    /// A DNSBL: a listed client is refused or scored up.
    Block,
    /// A DNSWL: a listed client is scored down and skips greylisting and the other screens.
    Allow,
}

/// One DNS list (RFC 5782).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsList {
    /// The list's zone, e.g. `zen.example`.
    pub zone: String,
    /// Block or allow.
    pub kind: ListKind,
    /// Points a listing adds (negative for an allow list); `None` on a block list: refuse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// The answers that count, each with its own points (`None`: the list's `weight`). Empty:
    /// every answer in 127.0.0.0/8 counts.
    #[serde(
        serialize_with = "codes_as_written",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub codes: Vec<ListCode>,
}

/// One answer of a DNS list that counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ListCode {
    /// The answer, in 127.0.0.0/8.
    pub answer: Ipv4Addr,
    /// Its points (`None`: the list's `weight`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

/// `codes` as the configuration writes them: a list of answers, or a table of their weights.
fn codes_as_written<S: serde::Serializer>(codes: &[ListCode], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::{SerializeMap, SerializeSeq};
    if codes.iter().all(|c| c.weight.is_none()) {
        let mut seq = s.serialize_seq(Some(codes.len()))?;
        for c in codes {
            seq.serialize_element(&c.answer.to_string())?;
        }
        return seq.end();
    }
    let mut map = s.serialize_map(Some(codes.len()))?;
    for c in codes {
        map.serialize_entry(&c.answer.to_string(), &c.weight.unwrap_or(0.0))?;
    }
    map.end()
}

/// What a rate limit counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RateKey {
    /// The client's address.
    Ip,
    /// The client's network: /24 for IPv4, /64 for IPv6.
    Net,
    /// The envelope sender's address.
    Sender,
    /// The authenticated account.
    Account,
}

/// One `[[policy.rate_limit]]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimit {
    /// What is counted by.
    pub key: RateKey,
    /// Messages per window (`None`: not limited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<u32>,
    /// Recipients per window (`None`: not limited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients: Option<u32>,
    /// The window, in seconds.
    pub window_secs: u64,
}

/// What an access rule matches.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessMatch {
    /// The client's address is in this network.
    Client(Network),
    /// The HELO name is this name or a subdomain of it (lower case).
    Helo(String),
    /// The sender is this address, or (without `@`) at this domain or a subdomain.
    Sender(String),
    /// The recipient is this address, or (without `@`) at this domain or a subdomain.
    Recipient(String),
}

/// What an access rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessAction {
    /// Accept, and skip the remaining screens.
    Ok,
    /// `554 5.7.1`.
    Reject,
    /// `451 4.7.1`.
    Tempfail,
}

/// One access rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessRule {
    /// What it matches.
    #[serde(flatten)]
    pub matches: AccessMatch,
    /// What it does.
    pub action: AccessAction,
    /// The text of the refusal (a default one if `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl AccessRule {
    /// Builds a rule from its parts as written (`kind` is `client`, `helo`, `sender` or
    /// `recipient`); the error says what is wrong, in words.
    pub fn parse(
        kind: &str,
        value: &str,
        action: &str,
        message: Option<String>,
    ) -> Result<AccessRule, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("the {kind} to match is empty"));
        }
        let name = || value.trim_end_matches('.').to_ascii_lowercase();
        let matches = match kind {
            "client" => AccessMatch::Client(Network::parse(value).ok_or_else(|| {
                format!("{value:?} is not an address or network (e.g. \"192.0.2.0/24\")")
            })?),
            "helo" => AccessMatch::Helo(name()),
            "sender" => AccessMatch::Sender(name().trim_start_matches('@').to_string()),
            "recipient" => AccessMatch::Recipient(name().trim_start_matches('@').to_string()),
            other => {
                return Err(format!(
                    "{other:?} is not client, helo, sender or recipient"
                ))
            }
        };
        let action = match action.to_ascii_lowercase().as_str() {
            "ok" => AccessAction::Ok,
            "reject" => AccessAction::Reject,
            "tempfail" => AccessAction::Tempfail,
            other => return Err(format!("action {other:?} is not ok, reject or tempfail")),
        };
        let message = message
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty());
        if let Some(m) = &message {
            if m.chars().any(|c| c.is_control()) {
                return Err("the message has control characters".into());
            }
        }
        Ok(AccessRule {
            matches,
            action,
            message,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDnsList {
    zone: String,
    kind: Option<String>,
    weight: Option<f64>,
    codes: Option<RawCodes>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawCodes {
    List(Vec<String>),
    Weights(BTreeMap<String, f64>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    key: String,
    messages: Option<u32>,
    recipients: Option<u32>,
    window_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccess {
    client: Option<String>,
    helo: Option<String>,
    sender: Option<String>,
    recipient: Option<String>,
    action: String,
    message: Option<String>,
}

/// The screens' keys as read (see [`crate::policy`]).
#[derive(Debug, Default)]
pub(crate) struct RawScreens {
    pub(crate) dnsbl: Option<Vec<String>>,
    pub(crate) dnsbl_list: Option<Vec<RawDnsList>>,
    pub(crate) dnsbl_reject_at: Option<String>,
    pub(crate) dnsbl_timeout_ms: Option<u64>,
    pub(crate) pregreet_wait_ms: Option<u64>,
    pub(crate) pregreet_loopback: Option<bool>,
    pub(crate) greylist: Option<bool>,
    pub(crate) greylist_delay_secs: Option<u64>,
    pub(crate) greylist_expire_secs: Option<u64>,
    pub(crate) greylist_auto_allow: Option<u32>,
    pub(crate) rate_limit: Option<Vec<RawRateLimit>>,
    pub(crate) access: Option<Vec<RawAccess>>,
    pub(crate) access_file: Option<PathBuf>,
}

fn zone(text: &str, what: &str) -> Result<String, ConfigError> {
    let z = text.trim().trim_matches('.').to_ascii_lowercase();
    let ok = !z.is_empty()
        && z.len() <= 200
        && z.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !ok {
        return Err(ConfigError::invalid(format!(
            "{what}: {text:?} is not a DNS zone (e.g. \"zen.example.org\")"
        )));
    }
    Ok(z)
}

fn list_code(text: &str, what: &str) -> Result<Ipv4Addr, ConfigError> {
    text.trim()
        .parse::<Ipv4Addr>()
        .ok()
        .filter(|ip| ip.octets()[0] == 127)
        .ok_or_else(|| {
            ConfigError::invalid(format!(
                "{what}: {text:?} is not a list answer in 127.0.0.0/8 (e.g. \"127.0.0.2\")"
            ))
        })
}

impl RawScreens {
    pub(crate) fn validate(self) -> Result<Screens, ConfigError> {
        let d = Screens::default();
        let mut dns_lists = Vec::new();
        for (i, z) in self.dnsbl.unwrap_or_default().iter().enumerate() {
            dns_lists.push(DnsList {
                zone: zone(z, &format!("policy.dnsbl[{i}]"))?,
                kind: ListKind::Block,
                weight: None,
                codes: Vec::new(),
            });
        }
        for (i, raw) in self.dnsbl_list.unwrap_or_default().into_iter().enumerate() {
            let what = format!("policy.dnsbl_list[{i}]");
            let kind = match raw.kind.as_deref() {
                None | Some("block") => ListKind::Block,
                Some("allow") => ListKind::Allow,
                Some(other) => {
                    return Err(ConfigError::invalid(format!(
                        "{what}.kind: {other:?} is not \"block\" or \"allow\""
                    )))
                }
            };
            if let Some(w) = raw.weight {
                if !w.is_finite() {
                    return Err(ConfigError::invalid(format!(
                        "{what}.weight: {w} is not a number"
                    )));
                }
            }
            let codes = match raw.codes {
                None => Vec::new(),
                Some(RawCodes::List(l)) => l
                    .iter()
                    .map(|c| {
                        Ok(ListCode {
                            answer: list_code(c, &format!("{what}.codes"))?,
                            weight: None,
                        })
                    })
                    .collect::<Result<_, ConfigError>>()?,
                Some(RawCodes::Weights(m)) => m
                    .iter()
                    .map(|(c, w)| {
                        if !w.is_finite() {
                            return Err(ConfigError::invalid(format!(
                                "{what}.codes: the weight of {c} is not a number"
                            )));
                        }
                        Ok(ListCode {
                            answer: list_code(c, &format!("{what}.codes"))?,
                            weight: Some(*w),
                        })
                    })
                    .collect::<Result<_, ConfigError>>()?,
            };
            dns_lists.push(DnsList {
                zone: zone(&raw.zone, &format!("{what}.zone"))?,
                kind,
                weight: raw.weight,
                codes,
            });
        }
        let dnsbl_reject_at = match self.dnsbl_reject_at.as_deref() {
            None | Some("connect") => RejectAt::Connect,
            Some("rcpt") => RejectAt::Rcpt,
            Some(other) => {
                return Err(ConfigError::invalid(format!(
                    "policy.dnsbl_reject_at: {other:?} is not \"connect\" or \"rcpt\""
                )))
            }
        };
        let dnsbl_timeout_ms = self.dnsbl_timeout_ms.unwrap_or(d.dnsbl_timeout_ms);
        if !(1..=60_000).contains(&dnsbl_timeout_ms) {
            return Err(ConfigError::invalid(format!(
                "policy.dnsbl_timeout_ms: {dnsbl_timeout_ms} is not between 1 and 60000"
            )));
        }
        let pregreet_wait_ms = self.pregreet_wait_ms.unwrap_or(0);
        if pregreet_wait_ms > 60_000 {
            return Err(ConfigError::invalid(format!(
                "policy.pregreet_wait_ms: {pregreet_wait_ms} is over 60000 (clients give up after a few minutes; 6000 is usual)"
            )));
        }
        let greylist_delay_secs = self.greylist_delay_secs.unwrap_or(d.greylist_delay_secs);
        let greylist_expire_secs = self.greylist_expire_secs.unwrap_or(d.greylist_expire_secs);
        if greylist_expire_secs <= greylist_delay_secs {
            return Err(ConfigError::invalid(format!(
                "policy.greylist_expire_secs ({greylist_expire_secs}) must be longer than greylist_delay_secs ({greylist_delay_secs})"
            )));
        }
        let mut rate_limits = Vec::new();
        for (i, raw) in self.rate_limit.unwrap_or_default().into_iter().enumerate() {
            let what = format!("policy.rate_limit[{i}]");
            let key = match raw.key.as_str() {
                "ip" => RateKey::Ip,
                "net" => RateKey::Net,
                "sender" => RateKey::Sender,
                "account" => RateKey::Account,
                other => {
                    return Err(ConfigError::invalid(format!(
                        "{what}.key: {other:?} is not \"ip\", \"net\", \"sender\" or \"account\""
                    )))
                }
            };
            if raw.messages.is_none() && raw.recipients.is_none() {
                return Err(ConfigError::invalid(format!(
                    "{what}: give messages, recipients or both"
                )));
            }
            let window_secs = raw.window_secs.unwrap_or(3600);
            if window_secs == 0 {
                return Err(ConfigError::invalid(format!(
                    "{what}.window_secs: must be at least 1"
                )));
            }
            rate_limits.push(RateLimit {
                key,
                messages: raw.messages,
                recipients: raw.recipients,
                window_secs,
            });
        }
        let mut access = Vec::new();
        for (i, raw) in self.access.unwrap_or_default().into_iter().enumerate() {
            let what = format!("policy.access[{i}]");
            let given: Vec<(&str, &String)> = [
                ("client", &raw.client),
                ("helo", &raw.helo),
                ("sender", &raw.sender),
                ("recipient", &raw.recipient),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect();
            let [(kind, value)] = given.as_slice() else {
                return Err(ConfigError::invalid(format!(
                    "{what}: give exactly one of client, helo, sender, recipient"
                )));
            };
            access.push(
                AccessRule::parse(kind, value, &raw.action, raw.message.clone())
                    .map_err(|e| ConfigError::invalid(format!("{what}: {e}")))?,
            );
        }
        Ok(Screens {
            dns_lists,
            dnsbl_reject_at,
            dnsbl_timeout_ms,
            pregreet_wait_ms,
            pregreet_loopback: self.pregreet_loopback.unwrap_or(false),
            greylist: self.greylist.unwrap_or(false),
            greylist_delay_secs,
            greylist_expire_secs,
            greylist_auto_allow: self.greylist_auto_allow.unwrap_or(d.greylist_auto_allow),
            rate_limits,
            access,
            access_file: self.access_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Source};

    fn screens(policy: &str) -> Result<Screens, String> {
        Config::from_toml(&format!("[policy]\n{policy}\n"), Source::Defaults)
            .map(|c| c.policy.screens)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_off_and_sane() {
        let s = screens("").unwrap();
        assert_eq!(s, Screens::default());
        assert!(s.dns_lists.is_empty() && !s.greylist && s.pregreet_wait_ms == 0);
        assert_eq!((s.greylist_delay_secs, s.greylist_auto_allow), (300, 5));
    }

    #[test]
    fn every_key_is_read() {
        let s = screens(
            r#"dnsbl = ["Zen.Example."]
dnsbl_reject_at = "rcpt"
dnsbl_timeout_ms = 500
pregreet_wait_ms = 6000
greylist = true
greylist_delay_secs = 60
greylist_expire_secs = 600
greylist_auto_allow = 0
access_file = "/etc/postern/access"
[[policy.dnsbl_list]]
zone = "wl.example"
kind = "allow"
weight = -3.5
[[policy.dnsbl_list]]
zone = "scored.example"
codes = { "127.0.0.2" = 4.0, "127.0.0.4" = 1.0 }
[[policy.dnsbl_list]]
zone = "some.example"
codes = ["127.0.0.3"]
[[policy.rate_limit]]
key = "net"
messages = 10
[[policy.access]]
client = "192.0.2.0/24"
action = "reject"
message = "Go away"
[[policy.access]]
recipient = "@Example.ORG"
action = "ok"
"#,
        )
        .unwrap();
        assert_eq!(s.dns_lists.len(), 4);
        assert_eq!(s.dns_lists[0].zone, "zen.example");
        assert_eq!(s.dns_lists[0].weight, None);
        assert_eq!(s.dns_lists[1].kind, ListKind::Allow);
        assert_eq!(s.dns_lists[1].weight, Some(-3.5));
        assert_eq!(
            s.dns_lists[2].codes,
            [
                ListCode {
                    answer: Ipv4Addr::new(127, 0, 0, 2),
                    weight: Some(4.0)
                },
                ListCode {
                    answer: Ipv4Addr::new(127, 0, 0, 4),
                    weight: Some(1.0)
                }
            ]
        );
        assert_eq!(s.dns_lists[3].codes[0].weight, None);
        assert_eq!(s.dnsbl_reject_at, RejectAt::Rcpt);
        assert_eq!(s.rate_limits[0].key, RateKey::Net);
        assert_eq!(s.rate_limits[0].window_secs, 3600);
        assert_eq!(s.rate_limits[0].recipients, None);
        assert_eq!(s.access[0].action, AccessAction::Reject);
        assert_eq!(
            s.access[1].matches,
            AccessMatch::Recipient("example.org".into())
        );
        assert_eq!(s.greylist_auto_allow, 0);
        // check-config prints it back.
        let c = Config::from_toml(
            "[policy]\ndnsbl = [\"a.example\"]\n[[policy.dnsbl_list]]\nzone = \"b.example\"\ncodes = [\"127.0.0.2\"]\n[[policy.access]]\nhelo = \"x.example\"\naction = \"ok\"\n",
            Source::Defaults,
        )
        .unwrap();
        let text = c.to_toml();
        assert!(!text.contains("cannot render"), "{text}");
        let again = Config::from_toml(&text, Source::Defaults).unwrap();
        assert_eq!(again.policy, c.policy);
        assert_eq!(again.policy.screens.dns_lists.len(), 2);
    }

    #[test]
    fn mistakes_are_named() {
        for (policy, want) in [
            ("dnsbl = [\"bad zone\"]", "policy.dnsbl[0]"),
            ("dnsbl_timeout_ms = 0", "dnsbl_timeout_ms"),
            ("pregreet_wait_ms = 100000", "pregreet_wait_ms"),
            (
                "[[policy.dnsbl_list]]\nzone = \"a.test\"\nkind = \"grey\"",
                "kind",
            ),
            (
                "[[policy.rate_limit]]\nkey = \"ip\"\nmessages = 1\nwindow_secs = 0",
                "window_secs",
            ),
            ("[[policy.access]]\naction = \"ok\"", "exactly one of"),
            (
                "[[policy.access]]\nclient = \"x\"\naction = \"ok\"",
                "not an address",
            ),
            (
                "[[policy.access]]\nhelo = \"x\"\naction = \"ok\"\nmessage = \"a\\nb\"",
                "control",
            ),
            ("greylists = true", "greylists"),
        ] {
            let e = screens(policy).unwrap_err();
            assert!(e.contains(want), "{policy}: {e}");
        }
    }
}
