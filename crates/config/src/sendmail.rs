//! `[sendmail]`: local submission with the `sendmail` command (who may choose the envelope
//! sender, the domain of local users' addresses, how often the maildrop is scanned).

use crate::check::{hostname, positive};
use crate::ConfigError;
use serde::{Deserialize, Serialize};

/// `[sendmail]`: the `sendmail` command and its server side.
#[derive(Debug, Clone, Serialize)]
pub struct Sendmail {
    /// Login names that may set any envelope sender with `-f`/`-r` (Postfix's
    /// `authorized_submit_users` idea, for the sender). Default: `root` and `[server] user`.
    pub trusted_users: Vec<String>,
    /// Groups whose members (primary or supplementary) may set any envelope sender. Default none.
    pub trusted_groups: Vec<String>,
    /// The domain of local users' own addresses (`login@domain`); `None`: the `hostname`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// How often `serve` scans the maildrop for messages written while it was not running, in
    /// seconds (it also scans at start and when asked through the socket).
    pub pickup_interval_secs: u64,
}

impl Sendmail {
    /// The defaults, with the server's own user trusted too.
    pub fn defaults(server_user: Option<&str>) -> Sendmail {
        let mut trusted_users = vec!["root".to_string()];
        if let Some(u) = server_user {
            if u != "root" {
                trusted_users.push(u.to_string());
            }
        }
        Sendmail {
            trusted_users,
            trusted_groups: Vec::new(),
            domain: None,
            pickup_interval_secs: 60,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSendmail {
    trusted_users: Option<Vec<String>>,
    trusted_groups: Option<Vec<String>>,
    domain: Option<String>,
    pickup_interval_secs: Option<u64>,
}

/// A user or group name as `/etc/passwd` and `/etc/group` allow it (no `:`, no space).
fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b':' && b != b',')
}

impl RawSendmail {
    pub(crate) fn validate(self, server_user: Option<&str>) -> Result<Sendmail, ConfigError> {
        let d = Sendmail::defaults(server_user);
        let names = |key: &str, list: Option<Vec<String>>, default: Vec<String>| {
            let list = list.unwrap_or(default);
            for (i, n) in list.iter().enumerate() {
                if !name_ok(n) {
                    return Err(ConfigError::invalid(format!(
                        "sendmail.{key}[{i}]: {n:?} is not a user or group name"
                    )));
                }
            }
            Ok(list)
        };
        let domain = match self.domain {
            None => None,
            Some(dom) => {
                let dom = dom.trim().trim_end_matches('.').to_lowercase();
                if !hostname(&dom) {
                    return Err(ConfigError::invalid(format!(
                        "sendmail.domain: {dom:?} is not a domain name"
                    )));
                }
                Some(dom)
            }
        };
        Ok(Sendmail {
            trusted_users: names("trusted_users", self.trusted_users, d.trusted_users)?,
            trusted_groups: names("trusted_groups", self.trusted_groups, d.trusted_groups)?,
            domain,
            pickup_interval_secs: positive(
                "sendmail.pickup_interval_secs",
                self.pickup_interval_secs,
                d.pickup_interval_secs,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Source};

    #[test]
    fn defaults_and_errors() {
        let c = Config::from_toml("", Source::Defaults).unwrap();
        assert_eq!(c.sendmail.trusted_users, ["root"]);
        assert_eq!(c.sendmail.pickup_interval_secs, 60);
        let c = Config::from_toml("[server]\nuser = \"postern\"\n", Source::Defaults).unwrap();
        assert_eq!(c.sendmail.trusted_users, ["root", "postern"]);
        let c = Config::from_toml(
            "[sendmail]\ntrusted_users = [\"cron\"]\ntrusted_groups = [\"mail\"]\ndomain = \"Example.ORG.\"\n",
            Source::Defaults,
        )
        .unwrap();
        assert_eq!(c.sendmail.trusted_users, ["cron"]);
        assert_eq!(c.sendmail.trusted_groups, ["mail"]);
        assert_eq!(c.sendmail.domain.as_deref(), Some("example.org"));
        for (bad, words) in [
            ("[sendmail]\ndomain = \"not a domain\"\n", "sendmail.domain"),
            (
                "[sendmail]\ntrusted_users = [\"a b\"]\n",
                "sendmail.trusted_users[0]",
            ),
            (
                "[sendmail]\npickup_interval_secs = 0\n",
                "greater than zero",
            ),
            ("[sendmail]\nsetgid = true\n", "unknown field"),
        ] {
            let e = Config::from_toml(bad, Source::Defaults)
                .unwrap_err()
                .to_string();
            assert!(e.contains(words), "{bad}: {e}");
        }
    }
}
