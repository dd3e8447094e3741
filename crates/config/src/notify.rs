//! `[notify]`: new-mail notification hooks run after each message stored by local delivery —
//! commands run directly (never through a shell), HTTP(S) webhooks with an HMAC signature, and
//! the classic comsat/biff datagram to a local biff listener.

use crate::check::positive;
use crate::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[notify]`: what happens when mail is stored into a mailbox.
#[derive(Debug, Clone, Serialize)]
pub struct Notify {
    /// Hooks (commands, webhook requests, comsat datagrams) running at once, over all hooks.
    pub max_running: usize,
    /// Notifications (one per hook and message) waiting for a free slot, or for a webhook's
    /// next retry; beyond this, new ones are dropped (one warning per burst).
    pub queue_size: usize,
    /// Send the comsat datagram (`user@offset:path`) to the biff listener on 127.0.0.1.
    /// Default false.
    pub comsat: bool,
    /// The UDP port of the biff listener (`biff 512/udp` in /etc/services).
    pub comsat_port: u16,
    /// How an account maps to a Unix login for comsat.
    pub comsat_users: ComsatUsers,
    /// `[[notify.command]]`: programs run for each new message.
    pub command: Vec<NotifyCommand>,
    /// `[[notify.webhook]]`: URLs a signed JSON document is POSTed to for each new message.
    pub webhook: Vec<NotifyWebhook>,
}

impl Default for Notify {
    fn default() -> Notify {
        Notify {
            max_running: 8,
            queue_size: 1000,
            comsat: false,
            comsat_port: 512,
            comsat_users: ComsatUsers::LocalPart,
            command: Vec::new(),
            webhook: Vec::new(),
        }
    }
}

impl Notify {
    /// Whether any hook is configured.
    pub fn any(&self) -> bool {
        self.comsat || !self.command.is_empty() || !self.webhook.is_empty()
    }
}

/// How an account maps to a Unix login for comsat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ComsatUsers {
    /// The account's local part (`alice` of `alice@example.org`) is a login on this machine;
    /// accounts whose local part is no login get no datagram.
    #[serde(rename = "localpart")]
    LocalPart,
}

/// `[[notify.command]]`: a program run for each new message, with the event in its environment.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyCommand {
    /// The program, an absolute path (it is executed directly, not through a shell).
    pub program: PathBuf,
    /// Its arguments, passed as they are (no word splitting, no expansion).
    pub args: Vec<String>,
    /// The accounts it runs for (`user@domain`, or `@domain` for every account of a domain);
    /// empty: every account.
    pub accounts: Vec<String>,
    /// Seconds the program may run; then its process group is killed.
    pub timeout_secs: u64,
}

/// `[[notify.webhook]]`: an HTTP(S) endpoint that gets a signed JSON document per new message.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyWebhook {
    /// The URL as written (`https://host[:port]/path` or `http://...`).
    pub url: String,
    /// The URL's parts.
    #[serde(skip)]
    pub target: WebhookUrl,
    /// The file holding the shared secret the signature is made with (trailing newline ignored).
    pub secret_file: PathBuf,
    /// The accounts it runs for (`user@domain`, or `@domain`); empty: every account.
    pub accounts: Vec<String>,
    /// Seconds one attempt may take, connecting to reading the answer.
    pub timeout_secs: u64,
    /// Attempts after the first when the endpoint fails with 5xx, 408, 429 or a network error.
    pub retries: u32,
    /// Certificates (PEM) trusted besides the system's roots, for a private CA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// A webhook URL, split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookUrl {
    /// `https` (true) or `http`.
    pub tls: bool,
    /// The host: a DNS name, an IPv4 address, or an IPv6 address (without brackets).
    pub host: String,
    /// The port (default 443 or 80).
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

impl WebhookUrl {
    /// Parses an absolute `http` or `https` URL (RFC 3986 §3: no user info, no fragment).
    pub fn parse(url: &str) -> Result<WebhookUrl, String> {
        let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "https://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(url, "http://") {
            (false, r)
        } else {
            return Err("must start with https:// or http://".into());
        };
        if url.bytes().any(|b| b <= b' ' || b == 0x7f || b >= 0x80) {
            return Err("spaces, control and non-ASCII characters must be percent-encoded".into());
        }
        if url.contains('#') {
            return Err("a fragment (#...) has no meaning in a request".into());
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err("user information (user@host) is not supported; use secret_file".into());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| "an IPv6 address lacks its closing ']'".to_string())?;
            addr.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("{addr:?} is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or("junk after the IPv6 address")?),
            };
            (addr.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        if !host.contains(':') && !crate::check::domain_ok(&host) {
            return Err(format!("{host:?} is not a host name or address"));
        }
        let port = match port {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("{p:?} is not a port number"))?,
        };
        Ok(WebhookUrl {
            tls,
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }

    /// The `Host` header value (RFC 9110 §7.2): the port only when it is not the default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    max_running: Option<usize>,
    queue_size: Option<usize>,
    comsat: Option<bool>,
    comsat_port: Option<u16>,
    comsat_users: Option<String>,
    #[serde(default)]
    command: Vec<RawCommand>,
    #[serde(default)]
    webhook: Vec<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    program: Option<PathBuf>,
    args: Option<Vec<String>>,
    accounts: Option<Vec<String>>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Option<String>,
    secret_file: Option<PathBuf>,
    accounts: Option<Vec<String>>,
    timeout_secs: Option<u64>,
    retries: Option<u32>,
    ca_file: Option<PathBuf>,
}

/// Longest a hook may be allowed to run (a day); longer is a mistake.
const MAX_TIMEOUT_SECS: u64 = 86_400;
/// Most retries a webhook may ask for (with the doubling back-off, about a day of trying).
const MAX_RETRIES: u32 = 16;

impl RawNotify {
    pub(crate) fn validate(self) -> Result<Notify, ConfigError> {
        let d = Notify::default();
        let comsat_users = match self.comsat_users.as_deref() {
            None | Some("localpart") => ComsatUsers::LocalPart,
            Some(other) => {
                return Err(ConfigError::invalid(format!(
                    "notify.comsat_users: {other:?} is not supported; the one mapping is \"localpart\" (the account's local part is a Unix login)"
                )))
            }
        };
        let mut command = Vec::new();
        for (i, c) in self.command.into_iter().enumerate() {
            let key = format!("notify.command[{i}]");
            let program = c
                .program
                .ok_or_else(|| ConfigError::invalid(format!("{key}: program is required")))?;
            if !program.is_absolute() {
                return Err(ConfigError::invalid(format!(
                    "{key}.program: {} must be an absolute path (it is run directly, with PATH not searched)",
                    program.display()
                )));
            }
            let args = c.args.unwrap_or_default();
            if args.iter().any(|a| a.contains('\0')) {
                return Err(ConfigError::invalid(format!(
                    "{key}.args: an argument contains a NUL character"
                )));
            }
            command.push(NotifyCommand {
                program,
                args,
                accounts: accounts(&key, c.accounts)?,
                timeout_secs: timeout(&key, c.timeout_secs, 30)?,
            });
        }
        let mut webhook = Vec::new();
        for (i, w) in self.webhook.into_iter().enumerate() {
            let key = format!("notify.webhook[{i}]");
            let url = w
                .url
                .ok_or_else(|| ConfigError::invalid(format!("{key}: url is required")))?;
            let target = WebhookUrl::parse(&url)
                .map_err(|e| ConfigError::invalid(format!("{key}.url: {url:?}: {e}")))?;
            let secret_file = w.secret_file.ok_or_else(|| {
                ConfigError::invalid(format!(
                    "{key}: secret_file is required (the receiver checks the X-Postern-Signature header with that secret)"
                ))
            })?;
            let retries = w.retries.unwrap_or(3);
            if retries > MAX_RETRIES {
                return Err(ConfigError::invalid(format!(
                    "{key}.retries: {retries} is more than {MAX_RETRIES}"
                )));
            }
            webhook.push(NotifyWebhook {
                url,
                target,
                secret_file,
                accounts: accounts(&key, w.accounts)?,
                timeout_secs: timeout(&key, w.timeout_secs, 10)?,
                retries,
                ca_file: w.ca_file,
            });
        }
        Ok(Notify {
            max_running: positive("notify.max_running", self.max_running, d.max_running)?,
            queue_size: positive("notify.queue_size", self.queue_size, d.queue_size)?,
            comsat: self.comsat.unwrap_or(d.comsat),
            comsat_port: positive("notify.comsat_port", self.comsat_port, d.comsat_port)?,
            comsat_users,
            command,
            webhook,
        })
    }
}

fn timeout(key: &str, value: Option<u64>, default: u64) -> Result<u64, ConfigError> {
    let t = positive(&format!("{key}.timeout_secs"), value, default)?;
    if t > MAX_TIMEOUT_SECS {
        return Err(ConfigError::invalid(format!(
            "{key}.timeout_secs: {t} is more than a day ({MAX_TIMEOUT_SECS})"
        )));
    }
    Ok(t)
}

/// `user@domain` or `@domain`, lower-cased.
fn accounts(key: &str, list: Option<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for (i, a) in list.unwrap_or_default().into_iter().enumerate() {
        let a = a.trim().to_lowercase();
        let ok = match a.rsplit_once('@') {
            Some((local, domain)) => {
                crate::check::domain_ok(domain)
                    && !local.contains(char::is_whitespace)
                    && !local.contains('@')
            }
            None => false,
        };
        if !ok {
            return Err(ConfigError::invalid(format!(
                "{key}.accounts[{i}]: {a:?} is neither an address (user@domain) nor a domain (@domain)"
            )));
        }
        out.push(a);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Source};

    fn parse(text: &str) -> Result<Notify, String> {
        Config::from_toml(text, Source::Defaults)
            .map(|c| c.notify)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_off() {
        let n = parse("").unwrap();
        assert!(!n.any());
        assert!(!n.comsat);
        assert_eq!(n.comsat_port, 512);
        assert_eq!(n.comsat_users, ComsatUsers::LocalPart);
    }

    #[test]
    fn full_section() {
        let n = parse(
            r#"
[notify]
comsat = true
comsat_port = 5120
max_running = 2
[[notify.command]]
program = "/usr/local/bin/new-mail"
args = ["--from", "$SENDER"]
accounts = ["Alice@Example.org", "@example.net"]
timeout_secs = 5
[[notify.webhook]]
url = "https://hooks.example.com:8443/mail?x=1"
secret_file = "/etc/postern/hook.secret"
retries = 0
"#,
        )
        .unwrap();
        assert!(n.any());
        assert_eq!(n.command[0].args, ["--from", "$SENDER"]);
        assert_eq!(n.command[0].accounts, ["alice@example.org", "@example.net"]);
        assert_eq!(n.command[0].timeout_secs, 5);
        let w = &n.webhook[0];
        assert_eq!(
            w.target,
            WebhookUrl {
                tls: true,
                host: "hooks.example.com".into(),
                port: 8443,
                path: "/mail?x=1".into()
            }
        );
        assert_eq!(w.retries, 0);
        assert_eq!(w.timeout_secs, 10);
    }

    #[test]
    fn refusals_name_the_key() {
        for (text, needle) in [
            (
                "[[notify.command]]\nprogram = \"notify-send\"",
                "notify.command[0].program",
            ),
            ("[[notify.command]]\nargs = []", "program is required"),
            (
                "[[notify.webhook]]\nurl = \"ftp://x\"\nsecret_file = \"/s\"",
                "notify.webhook[0].url",
            ),
            (
                "[[notify.webhook]]\nurl = \"http://x.test/\"",
                "secret_file is required",
            ),
            ("[notify]\ncomsat_users = \"uid\"", "notify.comsat_users"),
            ("[notify]\nmax_running = 0", "notify.max_running"),
            (
                "[[notify.command]]\nprogram = \"/bin/true\"\naccounts = [\"bob\"]",
                "notify.command[0].accounts[0]",
            ),
            (
                "[[notify.webhook]]\nurl = \"http://x.test/\"\nsecret_file = \"/s\"\nretries = 99",
                "notify.webhook[0].retries",
            ),
            ("[notify]\nbogus = 1", "bogus"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn webhook_files_are_checked() {
        let c = Config::from_toml(
            "[[notify.webhook]]\nurl = \"http://h.test/\"\nsecret_file = \"/nonexistent/postern.secret\"",
            Source::Defaults,
        )
        .unwrap();
        let e = c.check_files().unwrap_err().to_string();
        assert!(
            e.starts_with("notify.webhook.secret_file: cannot read /nonexistent/postern.secret"),
            "{e}"
        );
    }

    #[test]
    fn urls() {
        let u = WebhookUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (false, 8080, "/"));
        assert_eq!(u.host_header(), "127.0.0.1:8080");
        let u = WebhookUrl::parse("HTTPS://[::1]/hook").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 443));
        assert_eq!(u.host_header(), "[::1]");
        let u = WebhookUrl::parse("https://h.test?q=1").unwrap();
        assert_eq!(u.path, "/?q=1");
        for bad in [
            "http://",
            "http://u:p@h.test/",
            "http://h.test:0/",
            "http://h.test:99999/",
            "http://h.test/a b",
            "http://h.test/#frag",
            "http://[::1/",
            "http://exa mple/",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
