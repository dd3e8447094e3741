//! `[policy]`, message authentication and verdict keys: SPF (RFC 7208), DKIM (RFC 6376),
//! DMARC (RFC 7489), ARC (RFC 8617), iprev (RFC 8601 §3) and the score thresholds of the
//! verdict. The keys sit directly in `[policy]`; this module types and checks them.

use crate::{ConfigError, Network};
use serde::Serialize;

/// Points added to a message's score for each authentication result (positive: suspicious,
/// negative: trusted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthScores {
    /// `spf_pass_score`: SPF pass.
    #[serde(rename = "spf_pass_score")]
    pub spf_pass: f64,
    /// `spf_fail_score`: SPF fail (`-all` matched).
    #[serde(rename = "spf_fail_score")]
    pub spf_fail: f64,
    /// `spf_softfail_score`: SPF softfail (`~all`).
    #[serde(rename = "spf_softfail_score")]
    pub spf_softfail: f64,
    /// `spf_neutral_score`: SPF neutral (`?all`).
    #[serde(rename = "spf_neutral_score")]
    pub spf_neutral: f64,
    /// `spf_none_score`: no SPF record.
    #[serde(rename = "spf_none_score")]
    pub spf_none: f64,
    /// `spf_temperror_score`: a DNS error during SPF.
    #[serde(rename = "spf_temperror_score")]
    pub spf_temperror: f64,
    /// `spf_permerror_score`: a broken SPF record.
    #[serde(rename = "spf_permerror_score")]
    pub spf_permerror: f64,
    /// `dkim_pass_score`: at least one DKIM signature verified.
    #[serde(rename = "dkim_pass_score")]
    pub dkim_pass: f64,
    /// `dkim_fail_score`: signatures present, none verified.
    #[serde(rename = "dkim_fail_score")]
    pub dkim_fail: f64,
    /// `dkim_none_score`: no DKIM signature.
    #[serde(rename = "dkim_none_score")]
    pub dkim_none: f64,
    /// `dmarc_pass_score`: DMARC pass.
    #[serde(rename = "dmarc_pass_score")]
    pub dmarc_pass: f64,
    /// `dmarc_fail_score`: DMARC fail where the domain publishes `p=none` (or its policy was
    /// overridden).
    #[serde(rename = "dmarc_fail_score")]
    pub dmarc_fail: f64,
    /// `dmarc_quarantine_score`: DMARC fail where the domain asks for quarantine; large enough
    /// to make the message junk.
    #[serde(rename = "dmarc_quarantine_score")]
    pub dmarc_quarantine: f64,
    /// `iprev_pass_score`: the client's reverse DNS confirms its address.
    #[serde(rename = "iprev_pass_score")]
    pub iprev_pass: f64,
    /// `iprev_fail_score`: no PTR, or its names do not resolve back to the client.
    #[serde(rename = "iprev_fail_score")]
    pub iprev_fail: f64,
    /// `iprev_temperror_score`: a DNS error during iprev.
    #[serde(rename = "iprev_temperror_score")]
    pub iprev_temperror: f64,
}

impl Default for AuthScores {
    fn default() -> AuthScores {
        AuthScores {
            spf_pass: -0.5,
            spf_fail: 3.0,
            spf_softfail: 1.5,
            spf_neutral: 0.5,
            spf_none: 0.5,
            spf_temperror: 0.0,
            spf_permerror: 1.0,
            dkim_pass: -1.0,
            dkim_fail: 2.0,
            dkim_none: 0.5,
            dmarc_pass: -1.0,
            dmarc_fail: 2.0,
            dmarc_quarantine: 10.0,
            iprev_pass: -0.5,
            iprev_fail: 1.0,
            iprev_temperror: 0.0,
        }
    }
}

/// The message authentication and verdict part of `[policy]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthPolicy {
    /// `enabled`: run SPF, DKIM, DMARC, ARC and iprev on the MX (unauthenticated clients outside
    /// `[smtp] trusted_networks`), and the verdict.
    pub enabled: bool,
    /// `authserv_id`: our name in `Authentication-Results` (RFC 8601 §2.5); `None`: the
    /// hostname.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authserv_id: Option<String>,
    /// `junk_score`: a total at or above this marks the message junk (header, `Junk` folder).
    pub junk_score: f64,
    /// `reject_score`: a total at or above this refuses the message (`550 5.7.1`).
    pub reject_score: f64,
    /// `spf_reject_fail`: refuse `MAIL FROM` whose SPF result is fail (`550 5.7.23`).
    pub spf_reject_fail: bool,
    /// `iprev_reject`: refuse clients whose reverse DNS fails (`550 5.7.25`) at connect.
    pub iprev_reject: bool,
    /// `dmarc_forwarders`: networks (forwarders, mailing lists) whose DMARC failures are never
    /// refused (RFC 7489 §6.7 local policy).
    pub dmarc_forwarders: Vec<Network>,
    /// `trusted_arc_sealers`: domains whose passing ARC chain overrides a DMARC failure
    /// (RFC 8617 §7.2).
    pub trusted_arc_sealers: Vec<String>,
    /// `dkim_min_rsa_bits`: RSA keys shorter than this fail DKIM (RFC 8301 §3.2: 1024).
    pub dkim_min_rsa_bits: u32,
    /// `verify_timeout_secs`: the longest the DATA-stage verification (DKIM, ARC, DMARC) may
    /// take; past it the results are `temperror`.
    pub verify_timeout_secs: u64,
    /// `arc_seal`: add an ARC set (RFC 8617 §5.1) to received mail postern forwards (aliases
    /// to remote addresses, Sieve redirect), signed with the forwarding domain's DKIM key.
    pub arc_seal: bool,
    /// `dkim_max_signatures`: DKIM signatures verified per message; the ones after are
    /// reported `policy` (RFC 8601 §2.7.1) without a key lookup.
    pub dkim_max_signatures: u32,
    /// The per-result scores (`*_score` keys).
    #[serde(flatten)]
    pub scores: AuthScores,
}

impl Default for AuthPolicy {
    fn default() -> AuthPolicy {
        AuthPolicy {
            enabled: true,
            authserv_id: None,
            junk_score: 5.0,
            reject_score: 15.0,
            spf_reject_fail: false,
            iprev_reject: false,
            dmarc_forwarders: Vec::new(),
            trusted_arc_sealers: Vec::new(),
            dkim_min_rsa_bits: 1024,
            verify_timeout_secs: 20,
            arc_seal: true,
            dkim_max_signatures: 10,
            scores: AuthScores::default(),
        }
    }
}

/// The keys as read (every one optional).
#[derive(Debug, Default)]
pub(crate) struct RawAuthPolicy {
    pub(crate) enabled: Option<bool>,
    pub(crate) authserv_id: Option<String>,
    pub(crate) junk_score: Option<f64>,
    pub(crate) reject_score: Option<f64>,
    pub(crate) spf_reject_fail: Option<bool>,
    pub(crate) iprev_reject: Option<bool>,
    pub(crate) dmarc_forwarders: Option<Vec<String>>,
    pub(crate) trusted_arc_sealers: Option<Vec<String>>,
    pub(crate) dkim_min_rsa_bits: Option<u32>,
    pub(crate) verify_timeout_secs: Option<u64>,
    pub(crate) arc_seal: Option<bool>,
    pub(crate) dkim_max_signatures: Option<u32>,
    /// `(key, value)` of each `*_score` given.
    pub(crate) scores: Vec<(&'static str, Option<f64>)>,
}

fn score(key: &str, value: f64) -> Result<f64, ConfigError> {
    if !value.is_finite() || value.abs() > 1000.0 {
        return Err(ConfigError::invalid(format!(
            "policy.{key}: {value} must be a number between -1000 and 1000"
        )));
    }
    Ok(value)
}

fn is_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl RawAuthPolicy {
    pub(crate) fn validate(self) -> Result<AuthPolicy, ConfigError> {
        let d = AuthPolicy::default();
        let junk_score = score("junk_score", self.junk_score.unwrap_or(d.junk_score))?;
        let reject_score = score("reject_score", self.reject_score.unwrap_or(d.reject_score))?;
        if junk_score > reject_score {
            return Err(ConfigError::invalid(format!(
                "policy.junk_score ({junk_score}) must not be above policy.reject_score ({reject_score})"
            )));
        }
        let authserv_id = match self.authserv_id {
            None => None,
            Some(id) if is_domain(&id) => Some(id.to_ascii_lowercase()),
            Some(id) => {
                return Err(ConfigError::invalid(format!(
                    "policy.authserv_id: {id:?} is not a host name (RFC 8601 §2.5: e.g. \"mx.example.org\")"
                )));
            }
        };
        let dmarc_forwarders = self
            .dmarc_forwarders
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, text)| {
                Network::parse(text).ok_or_else(|| {
                    ConfigError::invalid(format!(
                        "policy.dmarc_forwarders[{i}]: {text:?} is not a network (write e.g. \"192.0.2.0/24\" or \"2001:db8::/32\")"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut trusted_arc_sealers = Vec::new();
        for (i, name) in self
            .trusted_arc_sealers
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if !is_domain(&name) {
                return Err(ConfigError::invalid(format!(
                    "policy.trusted_arc_sealers[{i}]: {name:?} is not a domain name"
                )));
            }
            trusted_arc_sealers.push(name);
        }
        let dkim_min_rsa_bits = self.dkim_min_rsa_bits.unwrap_or(d.dkim_min_rsa_bits);
        if !(512..=8192).contains(&dkim_min_rsa_bits) {
            return Err(ConfigError::invalid(format!(
                "policy.dkim_min_rsa_bits: {dkim_min_rsa_bits} must be between 512 and 8192 (RFC 8301 asks for at least 1024)"
            )));
        }
        let verify_timeout_secs = self.verify_timeout_secs.unwrap_or(d.verify_timeout_secs);
        if verify_timeout_secs == 0 || verify_timeout_secs > 300 {
            return Err(ConfigError::invalid(
                "policy.verify_timeout_secs must be between 1 and 300",
            ));
        }
        let mut scores = d.scores.clone();
        for (key, value) in self.scores {
            let Some(value) = value else { continue };
            let value = score(key, value)?;
            let slot = match key {
                "spf_pass_score" => &mut scores.spf_pass,
                "spf_fail_score" => &mut scores.spf_fail,
                "spf_softfail_score" => &mut scores.spf_softfail,
                "spf_neutral_score" => &mut scores.spf_neutral,
                "spf_none_score" => &mut scores.spf_none,
                "spf_temperror_score" => &mut scores.spf_temperror,
                "spf_permerror_score" => &mut scores.spf_permerror,
                "dkim_pass_score" => &mut scores.dkim_pass,
                "dkim_fail_score" => &mut scores.dkim_fail,
                "dkim_none_score" => &mut scores.dkim_none,
                "dmarc_pass_score" => &mut scores.dmarc_pass,
                "dmarc_fail_score" => &mut scores.dmarc_fail,
                "dmarc_quarantine_score" => &mut scores.dmarc_quarantine,
                "iprev_pass_score" => &mut scores.iprev_pass,
                "iprev_fail_score" => &mut scores.iprev_fail,
                "iprev_temperror_score" => &mut scores.iprev_temperror,
                other => {
                    return Err(ConfigError::invalid(format!(
                        "policy.{other}: unknown score"
                    )));
                }
            };
            *slot = value;
        }
        let dkim_max_signatures = self.dkim_max_signatures.unwrap_or(d.dkim_max_signatures);
        if !(1..=100).contains(&dkim_max_signatures) {
            return Err(ConfigError::invalid(
                "policy.dkim_max_signatures must be between 1 and 100",
            ));
        }
        Ok(AuthPolicy {
            enabled: self.enabled.unwrap_or(d.enabled),
            authserv_id,
            junk_score,
            reject_score,
            spf_reject_fail: self.spf_reject_fail.unwrap_or(d.spf_reject_fail),
            iprev_reject: self.iprev_reject.unwrap_or(d.iprev_reject),
            dmarc_forwarders,
            trusted_arc_sealers,
            dkim_min_rsa_bits,
            verify_timeout_secs,
            arc_seal: self.arc_seal.unwrap_or(d.arc_seal),
            dkim_max_signatures,
            scores,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped example documents every key with its default value.
    #[test]
    fn the_example_shows_the_defaults() {
        let text = include_str!("../../../postern.toml.example");
        let c = crate::Config::from_toml(text, crate::Source::Defaults).unwrap();
        assert_eq!(c.policy.auth, AuthPolicy::default());
        let table: toml::Table = text.parse().unwrap();
        let policy = table["policy"].as_table().unwrap();
        for key in [
            "enabled",
            "junk_score",
            "reject_score",
            "spf_reject_fail",
            "iprev_reject",
            "dmarc_forwarders",
            "trusted_arc_sealers",
            "dkim_min_rsa_bits",
            "verify_timeout_secs",
            "arc_seal",
            "dkim_max_signatures",
            "spf_fail_score",
            "dkim_none_score",
            "dmarc_quarantine_score",
            "iprev_temperror_score",
        ] {
            assert!(policy.contains_key(key), "{key} is not documented");
        }
    }

    #[test]
    fn defaults_and_checks() {
        let p = RawAuthPolicy::default().validate().unwrap();
        assert_eq!(p, AuthPolicy::default());
        let bad = RawAuthPolicy {
            junk_score: Some(20.0),
            ..RawAuthPolicy::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("junk_score"));
        let bad = RawAuthPolicy {
            dmarc_forwarders: Some(vec!["10.0.0.0/40".into()]),
            ..RawAuthPolicy::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("dmarc_forwarders[0]"));
        let bad = RawAuthPolicy {
            authserv_id: Some("mx example".into()),
            ..RawAuthPolicy::default()
        };
        assert!(bad.validate().is_err());
        let bad = RawAuthPolicy {
            dkim_max_signatures: Some(0),
            ..RawAuthPolicy::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("dkim_max_signatures"));
        let p = RawAuthPolicy {
            scores: vec![("spf_fail_score", Some(7.0)), ("dkim_pass_score", None)],
            trusted_arc_sealers: Some(vec!["Google.COM.".into()]),
            ..RawAuthPolicy::default()
        }
        .validate()
        .unwrap();
        assert_eq!(p.scores.spf_fail, 7.0);
        assert_eq!(p.trusted_arc_sealers, vec!["google.com".to_string()]);
    }
}
