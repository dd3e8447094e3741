//! What a remote account is: where it lives ([`RemoteUrl`]), whose it is, and how to fetch it
//! ([`FetchOptions`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The remote protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// POP3 (RFC 1939).
    Pop3,
    /// IMAP (RFC 9051, RFC 3501).
    Imap,
}

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Security {
    /// TLS from the first byte (`pop3s://` on 995, `imaps://` on 993; RFC 8314).
    Implicit,
    /// Upgraded with STLS (RFC 2595 §4) or STARTTLS (RFC 9051 §6.2.1) before login
    /// (`pop3://` on 110, `imap://` on 143). A server that offers no upgrade is refused unless
    /// the account allows plaintext ([`FetchOptions::allow_plaintext`]).
    StartTls,
}

/// `pop3s://user@host[:port]`, `imaps://...`, `imap://...`, `pop3://...`, with an optional
/// `/folder` path for IMAP (RFC 5092 §6 style, percent-encoded). The user may be
/// percent-encoded (`bob%40example.com@host`); a password in the URL is refused (it belongs
/// on stdin, never in argv).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RemoteUrl {
    /// POP3 or IMAP.
    pub protocol: Protocol,
    /// Implicit TLS or STARTTLS.
    pub security: Security,
    /// The login name.
    pub user: String,
    /// Host name or IP address literal (without brackets).
    pub host: String,
    /// The port (the scheme's default when the URL gives none).
    pub port: u16,
    /// The IMAP folder named in the URL's path, if any.
    pub folder: Option<String>,
}

impl RemoteUrl {
    /// Parses a remote account URL.
    pub fn parse(text: &str) -> Result<RemoteUrl, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("{text:?} is not a URL like pop3s://user@host"))?;
        let (protocol, security, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "pop3" => (Protocol::Pop3, Security::StartTls, 110),
            "pop3s" => (Protocol::Pop3, Security::Implicit, 995),
            "imap" => (Protocol::Imap, Security::StartTls, 143),
            "imaps" => (Protocol::Imap, Security::Implicit, 993),
            other => {
                return Err(format!(
                    "unknown scheme {other:?}: use pop3s, pop3, imaps or imap"
                ))
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| format!("{text:?} names no user: write {scheme}://user@host"))?;
        if userinfo.contains(':') {
            return Err(
                "the URL holds a password: give the password on stdin or at the prompt, never in the URL"
                    .into(),
            );
        }
        let user = percent_decode(userinfo)?;
        if user.is_empty() {
            return Err(format!("{text:?} names no user"));
        }
        let (host, port) = split_host_port(hostport)?;
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("bad port {p:?}"))?,
            None => default_port,
        };
        if host.is_empty() {
            return Err(format!("{text:?} names no host"));
        }
        let folder = match path.map(percent_decode).transpose()? {
            Some(f) if !f.is_empty() => {
                if protocol == Protocol::Pop3 {
                    return Err("a POP3 account has only its INBOX: the URL takes no path".into());
                }
                Some(f)
            }
            _ => None,
        };
        Ok(RemoteUrl {
            protocol,
            security,
            user,
            host: host.to_string(),
            port,
            folder,
        })
    }

    /// The scheme as written in URLs.
    pub fn scheme(&self) -> &'static str {
        match (self.protocol, self.security) {
            (Protocol::Pop3, Security::Implicit) => "pop3s",
            (Protocol::Pop3, Security::StartTls) => "pop3",
            (Protocol::Imap, Security::Implicit) => "imaps",
            (Protocol::Imap, Security::StartTls) => "imap",
        }
    }
}

impl fmt::Display for RemoteUrl {
    /// The URL in canonical form (user percent-encoded where needed, port always shown).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "{}://{}@{}:{}",
            self.scheme(),
            percent_encode(&self.user),
            host,
            self.port
        )?;
        if let Some(folder) = &self.folder {
            write!(f, "/{}", percent_encode(folder))?;
        }
        Ok(())
    }
}

fn split_host_port(hostport: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed [ in {hostport:?}"))?;
        match after {
            "" => Ok((host, None)),
            a => match a.strip_prefix(':') {
                Some(p) => Ok((host, Some(p))),
                None => Err(format!("bad host {hostport:?}")),
            },
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => Ok((h, Some(p))),
            None => Ok((hostport, None)),
        }
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad %-escape in {text:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~+!$&'()*,;=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A remote password, kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Secret {
        Secret(password.into())
    }

    /// The password itself, for the login command only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Which remote folders an IMAP account fetches (POP3 has only its INBOX).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Folders {
    /// INBOX only (or the folder the URL names).
    #[default]
    Inbox,
    /// These folders.
    Named(Vec<String>),
    /// Every selectable folder (`LIST "" "*"`), each into the local folder of the same name.
    All,
}

/// Who a fetched message is for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum EnvelopeRule {
    /// The local account that owns the remote account (fetchmail's single-drop).
    #[default]
    Owner,
    /// Multidrop: the recipients are read from these header fields, in order (the first field
    /// present wins; `Received` means the `for <addr>` clause of the topmost Received fields);
    /// only local addresses are kept, and a message naming none goes to the owner.
    Multidrop {
        /// Header field names, e.g. `Delivered-To`, `X-Original-To`, `Received`.
        headers: Vec<String>,
    },
}

impl EnvelopeRule {
    /// The fields fetchmail users mean by "envelope", in its order of preference.
    pub fn default_multidrop() -> EnvelopeRule {
        EnvelopeRule::Multidrop {
            headers: vec![
                "Delivered-To".into(),
                "X-Original-To".into(),
                "Received".into(),
            ],
        }
    }
}

/// How an account is fetched (the options a fetchmail user expects).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    /// Leave messages on the server (the default), or delete each once it is delivered
    /// locally and recorded.
    pub keep: bool,
    /// IMAP: fetch only messages without `\Seen` (RFC 9051 §2.3.2).
    pub only_unseen: bool,
    /// IMAP: set `\Seen` on the remote once a message is delivered (messages are read with
    /// `BODY.PEEK`, which leaves flags alone).
    pub mark_seen: bool,
    /// Messages larger than this stay on the remote untouched (counted, logged once).
    pub size_limit: Option<u64>,
    /// At most this many messages per minute (None: as fast as delivery goes).
    pub rate_limit: Option<u32>,
    /// IMAP folders to fetch.
    pub folders: Folders,
    /// Who the messages are for.
    pub envelope: EnvelopeRule,
    /// Time between polls.
    pub interval: Duration,
    /// IMAP: wait for new mail with IDLE (RFC 2177) when the server offers it, instead of
    /// polling.
    pub idle: bool,
    /// POP3: log in with APOP (RFC 1939 §7) when the greeting offers it.
    pub apop: bool,
    /// Log in without TLS when the remote offers none (never when it does).
    pub allow_plaintext: bool,
    /// Certificates trusted besides the system's roots (a private CA or a self-signed server).
    pub ca_file: Option<PathBuf>,
}

impl Default for FetchOptions {
    fn default() -> FetchOptions {
        FetchOptions {
            keep: true,
            only_unseen: false,
            mark_seen: false,
            size_limit: None,
            rate_limit: None,
            folders: Folders::Inbox,
            envelope: EnvelopeRule::Owner,
            interval: Duration::from_secs(300),
            idle: true,
            apop: true,
            allow_plaintext: false,
            ca_file: None,
        }
    }
}

/// Where an account was defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `postern fetch add` (kept in the fetch database, password encrypted there).
    Cli,
    /// A `[[fetch.account]]` table of the configuration file (password in a private file).
    Config,
}

/// One remote account of a local account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchAccount {
    /// Stable identity: the key of its state and status. `postern fetch add` accounts get a
    /// number (`"7"`); configuration accounts are `"config:NAME"`.
    pub id: String,
    /// The local account (address) that owns it; its mail goes there (or per multidrop).
    pub local: String,
    /// Where the remote mailbox is.
    pub url: RemoteUrl,
    /// How it is fetched.
    pub options: FetchOptions,
    /// Where it was defined.
    pub origin: Origin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme_with_defaults() {
        let u = RemoteUrl::parse("pop3s://bob@mail.example.com").unwrap();
        assert_eq!(
            (
                u.protocol,
                u.security,
                u.port,
                u.user.as_str(),
                u.host.as_str()
            ),
            (
                Protocol::Pop3,
                Security::Implicit,
                995,
                "bob",
                "mail.example.com"
            )
        );
        assert_eq!(RemoteUrl::parse("pop3://b@h").unwrap().port, 110);
        assert_eq!(RemoteUrl::parse("imaps://b@h").unwrap().port, 993);
        let u = RemoteUrl::parse("IMAP://b@h:1143/Lists%2Frust").unwrap();
        assert_eq!((u.security, u.port), (Security::StartTls, 1143));
        assert_eq!(u.folder.as_deref(), Some("Lists/rust"));
    }

    #[test]
    fn user_may_be_an_address_and_host_a_literal() {
        let u = RemoteUrl::parse("imaps://bob%40example.com@[::1]:14993").unwrap();
        assert_eq!(
            (u.user.as_str(), u.host.as_str(), u.port),
            ("bob@example.com", "::1", 14993)
        );
        assert_eq!(u.to_string(), "imaps://bob%40example.com@[::1]:14993");
        let u = RemoteUrl::parse("pop3s://bob@example.com@127.0.0.1:11995").unwrap();
        assert_eq!(
            (u.user.as_str(), u.host.as_str()),
            ("bob@example.com", "127.0.0.1")
        );
        assert_eq!(RemoteUrl::parse(&u.to_string()).unwrap(), u);
    }

    #[test]
    fn refuses_what_is_not_a_remote_account() {
        for bad in [
            "pop3s://host",
            "pop3s://bob:secret@host",
            "smtp://bob@host",
            "bob@host",
            "pop3s://bob@host:0",
            "pop3s://bob@host:99999",
            "pop3s://bob@",
            "pop3s://bob@host/INBOX",
            "imaps://bob@[::1",
            "imaps://%zz@host",
        ] {
            assert!(RemoteUrl::parse(bad).is_err(), "{bad} accepted");
        }
        let e = RemoteUrl::parse("pop3s://bob:secret@host").unwrap_err();
        assert!(e.contains("stdin"), "{e}");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(****)");
    }
}
