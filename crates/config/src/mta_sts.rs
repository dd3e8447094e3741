//! `[mta_sts]`: the MTA-STS policy (RFC 8461) postern serves for its own domains on
//! `[listen] https` and whose id `postern dns` prints.

use crate::ConfigError;
use serde::{Deserialize, Serialize};

/// RFC 8461 §3.2: the longest `max_age` a policy may state (about one year).
pub(crate) const MAX_AGE_LIMIT: u64 = 31_557_600;

/// RFC 8461 §5: what a sending MTA does when our MX does not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MtaStsMode {
    /// Senders report failures (TLS-RPT) but deliver anyway: the safe start.
    Testing,
    /// Senders refuse to deliver unless the MX matches and its certificate verifies.
    Enforce,
    /// The policy is withdrawn (RFC 8461 §8.3).
    None,
}

impl MtaStsMode {
    /// The word in the policy's `mode:` line.
    pub fn as_str(self) -> &'static str {
        match self {
            MtaStsMode::Testing => "testing",
            MtaStsMode::Enforce => "enforce",
            MtaStsMode::None => "none",
        }
    }
}

/// `[mta_sts]`: the served policy.
#[derive(Debug, Clone, Serialize)]
pub struct MtaSts {
    /// The policy mode; default `testing`.
    pub mode: MtaStsMode,
    /// The MX host patterns (`mail.example.org` or `*.example.org`); empty: the host name.
    pub mx: Vec<String>,
    /// How long senders may cache the policy, in seconds; default one week (604800).
    pub max_age_secs: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMtaSts {
    mode: Option<String>,
    mx: Option<Vec<String>>,
    max_age_secs: Option<u64>,
}

impl RawMtaSts {
    pub(crate) fn validate(self) -> Result<MtaSts, ConfigError> {
        let mode = match self.mode.as_deref() {
            None | Some("testing") => MtaStsMode::Testing,
            Some("enforce") => MtaStsMode::Enforce,
            Some("none") => MtaStsMode::None,
            Some(other) => {
                return Err(ConfigError::invalid(format!(
                    "mta_sts.mode: {other:?} must be \"testing\", \"enforce\" or \"none\""
                )))
            }
        };
        let mut mx = Vec::new();
        for (i, pattern) in self.mx.unwrap_or_default().iter().enumerate() {
            let p = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
            // RFC 8461 §3.2: a host name, or "*." and a name (the wildcard covers one label).
            let name = p.strip_prefix("*.").unwrap_or(&p);
            if !crate::check::hostname(name) || !name.contains('.') {
                return Err(ConfigError::invalid(format!(
                    "mta_sts.mx[{i}]: {pattern:?} is not an MX host name or a \"*.domain\" pattern"
                )));
            }
            if !mx.contains(&p) {
                mx.push(p);
            }
        }
        let max_age_secs = self.max_age_secs.unwrap_or(604_800);
        if max_age_secs == 0 || max_age_secs > MAX_AGE_LIMIT {
            return Err(ConfigError::invalid(format!(
                "mta_sts.max_age_secs: {max_age_secs} must be between 1 and {MAX_AGE_LIMIT} (RFC 8461 §3.2)"
            )));
        }
        Ok(MtaSts {
            mode,
            mx,
            max_age_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, MtaStsMode, Source};

    fn load(text: &str) -> Result<Config, String> {
        Config::from_toml(text, Source::Defaults).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_values() {
        let c = load("").unwrap();
        assert_eq!(c.mta_sts.mode, MtaStsMode::Testing);
        assert!(c.mta_sts.mx.is_empty());
        assert_eq!(c.mta_sts.max_age_secs, 604_800);
        assert!(c.listen.https.is_empty());
        let c = load(
            "[mta_sts]\nmode = \"enforce\"\nmx = [\"MX1.Example.org.\", \"*.example.net\"]\nmax_age_secs = 86400\n[listen]\nhttps = [\"127.0.0.1:8443\"]\n",
        )
        .unwrap();
        assert_eq!(c.mta_sts.mode, MtaStsMode::Enforce);
        assert_eq!(c.mta_sts.mx, ["mx1.example.org", "*.example.net"]);
        assert_eq!(c.listen.https, ["127.0.0.1:8443".parse().unwrap()]);
        assert!(c.enabled_services().contains_key(&crate::Service::Https));
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        for (text, key) in [
            ("[mta_sts]\nmode = \"strict\"\n", "mta_sts.mode"),
            ("[mta_sts]\nmx = [\"bad name\"]\n", "mta_sts.mx[0]"),
            ("[mta_sts]\nmx = [\"*.*.example.org\"]\n", "mta_sts.mx[0]"),
            ("[mta_sts]\nmax_age_secs = 0\n", "mta_sts.max_age_secs"),
            (
                "[mta_sts]\nmax_age_secs = 40000000\n",
                "mta_sts.max_age_secs",
            ),
            ("[mta_sts]\nmod = \"testing\"\n", "mod"),
            ("[listen]\nhttp = [\"127.0.0.1:8080\"]\n", "listen.http"),
        ] {
            let e = load(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
