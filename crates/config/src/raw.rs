//! The file as written: every key optional, unknown keys refused. `validate` turns it into [`Config`].

use crate::check::positive;
use crate::{
    Auth, Config, ConfigError, ExpnPolicy, Limits, Listen, Mail, Network, Service, Smtp, Source,
    Tls, VrfyPolicy,
};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    hostname: Option<String>,
    data_dir: Option<PathBuf>,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    listen: RawListen,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    mail: RawMail,
    #[serde(default)]
    smtp: RawSmtp,
    #[serde(default)]
    imap: crate::access::RawImap,
    #[serde(default)]
    pop3: crate::access::RawPop3,
    #[serde(default)]
    managesieve: crate::managesieve::RawManageSieve,
    #[serde(default)]
    queue: crate::outbound::RawQueue,
    #[serde(default)]
    outbound: crate::outbound::RawOutbound,
    #[serde(default)]
    relay: crate::outbound::RawRelay,
    #[serde(default)]
    sieve: crate::sieve::RawSieve,
    #[serde(default)]
    notify: crate::notify::RawNotify,
    #[serde(default)]
    lmtp: crate::lmtp::RawLmtp,
    #[serde(default)]
    aliases: crate::aliases::RawAliases,
    #[serde(default)]
    sendmail: crate::sendmail::RawSendmail,
    #[serde(default)]
    dns: crate::dns::RawDns,
    #[serde(default)]
    policy: crate::policy::RawPolicy,
    #[serde(default)]
    fetch: crate::fetch::RawFetch,
    #[serde(default)]
    mta_sts: crate::mta_sts::RawMtaSts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    smtp: Option<Vec<String>>,
    submission: Option<Vec<String>>,
    submissions: Option<Vec<String>>,
    imap: Option<Vec<String>>,
    imaps: Option<Vec<String>>,
    pop3: Option<Vec<String>>,
    pop3s: Option<Vec<String>>,
    managesieve: Option<Vec<String>>,
    lmtp: Option<Vec<String>>,
    https: Option<Vec<String>>,
    http: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    user: Option<String>,
    group: Option<String>,
}

impl RawServer {
    fn validate(self) -> Result<crate::Server, ConfigError> {
        // POSIX portable user and group names, as useradd(8) accepts them.
        let check = |key: &str, name: &str| {
            let ok = !name.is_empty()
                && name.len() <= 32
                && !name.starts_with('-')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if ok {
                Ok(())
            } else {
                Err(ConfigError::invalid(format!(
                    "server.{key}: {name:?} is not a user or group name"
                )))
            }
        };
        if let Some(u) = &self.user {
            check("user", u)?;
        }
        if let Some(g) = &self.group {
            check("group", g)?;
            if self.user.is_none() {
                return Err(ConfigError::invalid(
                    "server.group: set server.user too (the group alone cannot drop root)",
                ));
            }
        }
        Ok(crate::Server {
            user: self.user,
            group: self.group,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    allow_plaintext: Option<bool>,
    max_failures: Option<u32>,
    failure_window_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    shutdown_grace_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    recipient_delimiter: Option<String>,
    hierarchy_separator: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    max_message_size: Option<u64>,
    max_recipients: Option<usize>,
    max_line_length: Option<usize>,
    max_commands: Option<u32>,
    max_bad_commands: Option<u32>,
    command_timeout_secs: Option<u64>,
    data_timeout_secs: Option<u64>,
    trusted_networks: Option<Vec<String>>,
    vrfy: Option<String>,
    expn: Option<String>,
    sender_must_match_login: Option<bool>,
    max_received_headers: Option<usize>,
}

impl RawSmtp {
    fn validate(self) -> Result<Smtp, ConfigError> {
        let max_line_length = self.max_line_length.unwrap_or(2048);
        if max_line_length < 512 {
            return Err(ConfigError::invalid(format!(
                "smtp.max_line_length: {max_line_length} is below the 512 octets RFC 5321 §4.5.3.1.4 requires"
            )));
        }
        let max_recipients = positive("smtp.max_recipients", self.max_recipients, 100)?;
        let trusted_networks = match self.trusted_networks {
            None => vec![
                Network::parse("127.0.0.0/8").expect("valid literal"),
                Network::parse("::1/128").expect("valid literal"),
            ],
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    Network::parse(text).ok_or_else(|| {
                        ConfigError::invalid(format!(
                            "smtp.trusted_networks[{i}]: {text:?} is not a network (write e.g. \"192.0.2.0/24\" or \"2001:db8::/32\")"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let vrfy = match self.vrfy.as_deref() {
            None | Some("ambiguous") => VrfyPolicy::Ambiguous,
            Some("off") => VrfyPolicy::Off,
            Some("authenticated") => VrfyPolicy::Authenticated,
            Some(other) => {
                return Err(ConfigError::invalid(format!(
                    "smtp.vrfy: {other:?} must be \"off\", \"ambiguous\" or \"authenticated\""
                )))
            }
        };
        let expn = match self.expn.as_deref() {
            None | Some("off") => ExpnPolicy::Off,
            Some("authenticated") => ExpnPolicy::Authenticated,
            Some(other) => {
                return Err(ConfigError::invalid(format!(
                    "smtp.expn: {other:?} must be \"off\" or \"authenticated\""
                )))
            }
        };
        Ok(Smtp {
            max_message_size: positive("smtp.max_message_size", self.max_message_size, 26_214_400)?,
            max_recipients,
            max_line_length,
            max_commands: positive("smtp.max_commands", self.max_commands, 10_000)?,
            max_bad_commands: positive("smtp.max_bad_commands", self.max_bad_commands, 20)?,
            command_timeout_secs: positive(
                "smtp.command_timeout_secs",
                self.command_timeout_secs,
                300,
            )?,
            data_timeout_secs: positive("smtp.data_timeout_secs", self.data_timeout_secs, 300)?,
            trusted_networks,
            vrfy,
            expn,
            sender_must_match_login: self.sender_must_match_login.unwrap_or(true),
            max_received_headers: positive(
                "smtp.max_received_headers",
                self.max_received_headers,
                50,
            )?,
        })
    }
}

impl RawListen {
    fn get(&self, service: Service) -> Option<&Vec<String>> {
        match service {
            Service::Smtp => self.smtp.as_ref(),
            Service::Submission => self.submission.as_ref(),
            Service::Submissions => self.submissions.as_ref(),
            Service::Imap => self.imap.as_ref(),
            Service::Imaps => self.imaps.as_ref(),
            Service::Pop3 => self.pop3.as_ref(),
            Service::Pop3s => self.pop3s.as_ref(),
            Service::ManageSieve => self.managesieve.as_ref(),
            Service::Lmtp => self.lmtp.as_ref(),
            Service::Https => self.https.as_ref(),
            Service::Http => self.http.as_ref(),
        }
    }

    fn resolve(&self, service: Service) -> Result<Vec<SocketAddr>, ConfigError> {
        let Some(list) = self.get(service) else {
            if !service.enabled_by_default() {
                return Ok(Vec::new());
            }
            // The default: every address, IPv6 and (dual-stack) IPv4, on the standard port.
            return Ok(vec![SocketAddr::from((
                std::net::Ipv6Addr::UNSPECIFIED,
                service.standard_port(),
            ))]);
        };
        let mut out = Vec::with_capacity(list.len());
        for (i, text) in list.iter().enumerate() {
            let addr: SocketAddr = text.trim().parse().map_err(|_| {
                ConfigError::invalid(format!(
                    "listen.{}[{i}]: {text:?} is not a socket address \
                     (write an IP address and a port, e.g. \"[::]:{port}\" or \"127.0.0.1:{port}\")",
                    service.key(),
                    port = service.standard_port(),
                ))
            })?;
            if out.contains(&addr) {
                return Err(ConfigError::invalid(format!(
                    "listen.{}[{i}]: {addr} is listed twice",
                    service.key()
                )));
            }
            out.push(addr);
        }
        Ok(out)
    }
}

fn default_hostname() -> String {
    let name = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_string();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

impl RawConfig {
    pub(crate) fn validate(self, source: Source) -> Result<Config, ConfigError> {
        let hostname = match self.hostname {
            Some(h) => {
                let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
                if !crate::check::hostname(&h) {
                    return Err(ConfigError::invalid(format!(
                        "hostname: {h:?} is not a valid host name (letters, digits, '-' and '.')"
                    )));
                }
                h
            }
            None => default_hostname(),
        };
        let data_dir = self
            .data_dir
            .unwrap_or_else(|| PathBuf::from("./postern-data"));
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data_dir: must not be empty"));
        }

        let server = self.server.validate()?;
        let listen = Listen {
            smtp: self.listen.resolve(Service::Smtp)?,
            submission: self.listen.resolve(Service::Submission)?,
            submissions: self.listen.resolve(Service::Submissions)?,
            imap: self.listen.resolve(Service::Imap)?,
            imaps: self.listen.resolve(Service::Imaps)?,
            pop3: self.listen.resolve(Service::Pop3)?,
            pop3s: self.listen.resolve(Service::Pop3s)?,
            managesieve: self.listen.resolve(Service::ManageSieve)?,
            lmtp: self.listen.resolve(Service::Lmtp)?,
            https: self.listen.resolve(Service::Https)?,
            http: self.listen.resolve(Service::Http)?,
        };
        if !listen.http.is_empty() && listen.https.is_empty() {
            return Err(ConfigError::invalid(
                "listen.http: plain HTTP only redirects to HTTPS; set listen.https too",
            ));
        }
        // One address cannot serve two protocols.
        let mut seen: Vec<(SocketAddr, Service)> = Vec::new();
        for service in Service::ALL {
            for addr in listen.addresses(service) {
                if let Some((_, other)) = seen.iter().find(|(a, _)| a == addr && addr.port() != 0) {
                    return Err(ConfigError::invalid(format!(
                        "listen.{service}: {addr} is already used by listen.{other}"
                    )));
                }
                seen.push((*addr, service));
            }
        }

        let tls = match (self.tls.cert, self.tls.key) {
            (Some(cert), Some(key)) => Tls {
                cert: Some(cert),
                key: Some(key),
            },
            (None, None) => Tls::default(),
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    "tls.key: missing (tls.cert is set; give both, or neither for a self-signed certificate)",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "tls.cert: missing (tls.key is set; give both, or neither for a self-signed certificate)",
                ))
            }
        };

        let auth = Auth {
            allow_plaintext: self.auth.allow_plaintext.unwrap_or(false),
            max_failures: positive("auth.max_failures", self.auth.max_failures, 10)?,
            failure_window_secs: positive(
                "auth.failure_window_secs",
                self.auth.failure_window_secs,
                900,
            )?,
        };
        let limits = Limits {
            max_connections: positive("limits.max_connections", self.limits.max_connections, 2000)?,
            max_connections_per_ip: positive(
                "limits.max_connections_per_ip",
                self.limits.max_connections_per_ip,
                50,
            )?,
            shutdown_grace_secs: self.limits.shutdown_grace_secs.unwrap_or(10),
        };
        if limits.max_connections_per_ip > limits.max_connections {
            return Err(ConfigError::invalid(
                "limits.max_connections_per_ip: larger than limits.max_connections",
            ));
        }

        let recipient_delimiter = self.mail.recipient_delimiter.unwrap_or_else(|| "+".into());
        if recipient_delimiter.chars().count() > 1
            || recipient_delimiter
                .chars()
                .any(|c| c == '@' || c.is_whitespace() || c.is_control() || c == '"')
        {
            return Err(ConfigError::invalid(format!(
                "mail.recipient_delimiter: {recipient_delimiter:?} must be one character other than '@', '\"' or white space, or empty"
            )));
        }
        let hierarchy_separator = match self.mail.hierarchy_separator.as_deref() {
            None | Some("/") => '/',
            Some(".") => '.',
            Some(other) => {
                return Err(ConfigError::invalid(format!(
                    "mail.hierarchy_separator: {other:?} must be \"/\" or \".\""
                )))
            }
        };

        let smtp = self.smtp.validate()?;
        let sendmail = self.sendmail.validate(server.user.as_deref())?;

        Ok(Config {
            hostname,
            data_dir,
            server,
            listen,
            tls,
            auth,
            limits,
            mail: Mail {
                recipient_delimiter,
                hierarchy_separator,
            },
            smtp,
            imap: self.imap.validate()?,
            pop3: self.pop3.validate()?,
            managesieve: self.managesieve.validate()?,
            lmtp: self.lmtp.validate()?,
            queue: self.queue.validate()?,
            outbound: self.outbound.validate()?,
            relay: self.relay.validate()?,
            sieve: self.sieve.validate()?,
            notify: self.notify.validate()?,
            aliases: self.aliases.validate()?,
            sendmail,
            dns: self.dns.validate()?,
            policy: self.policy.validate()?,
            fetch: self.fetch.validate()?,
            mta_sts: self.mta_sts.validate()?,
            source,
        })
    }
}
