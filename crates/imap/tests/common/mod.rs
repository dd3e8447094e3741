//! A harness that drives real IMAP sessions over in-memory streams (no sockets): a server on
//! a temporary Maildir store and directory, and a small client that sends commands, answers
//! continuation requests and reads responses with their literals.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use postern_config::{Config, Service, Source};
use postern_directory::{
    AuthThrottle, DirectoryOptions, PasswordParams, SqliteDirectory, ThrottleConfig,
};
use postern_imap::{ImapLimits, ImapServer};
use postern_net::{CancellationToken, Connection, MailStream, SessionHandler};
use postern_store::maildir::MaildirStore;
use postern_store::Store;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

pub(crate) const USER: &str = "alice@example.org";
pub(crate) const PASS: &str = "correct horse";
pub(crate) const USER2: &str = "bob@example.org";
pub(crate) const PASS2: &str = "battery staple";

/// How long any single read may wait before the test fails (instead of hanging).
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// One server with its store and directory.
pub(crate) struct Env {
    pub dir: tempfile::TempDir,
    pub server: ImapServer,
    pub store: Arc<MaildirStore>,
    pub directory: Arc<SqliteDirectory>,
    next_id: AtomicU64,
}

impl Env {
    pub(crate) async fn new() -> Env {
        Env::with_limits(ImapLimits {
            idle_poll: Duration::from_millis(100),
            ..ImapLimits::default()
        })
        .await
    }

    pub(crate) async fn with_limits(limits: ImapLimits) -> Env {
        Env::with(limits, ThrottleConfig::default()).await
    }

    pub(crate) async fn with(limits: ImapLimits, throttle: ThrottleConfig) -> Env {
        Env::build(limits, throttle, "").await
    }

    /// A server whose configuration file ends with `extra_toml`.
    pub(crate) async fn with_config(extra_toml: &str) -> Env {
        Env::build(ImapLimits::default(), ThrottleConfig::default(), extra_toml).await
    }

    async fn build(limits: ImapLimits, throttle: ThrottleConfig, extra_toml: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::from_toml(
            &format!(
                "hostname = \"imap.test\"\ndata_dir = \"{}\"\n{extra_toml}",
                dir.path().display()
            ),
            Source::Defaults,
        )
        .expect("config");
        let directory = SqliteDirectory::open_with(
            dir.path().join("directory.db"),
            DirectoryOptions {
                password_params: PasswordParams::insecure_fast_for_tests(),
                ..DirectoryOptions::default()
            },
        )
        .expect("directory");
        directory.add_domain("example.org").expect("domain");
        directory.add_account(USER, PASS).expect("account");
        directory.add_account(USER2, PASS2).expect("account 2");
        let directory = Arc::new(directory);
        let store =
            Arc::new(MaildirStore::open(dir.path().join("mail"), "imap.test").expect("store"));
        let dyn_store: Arc<dyn Store> = store.clone();
        let throttle = Arc::new(AuthThrottle::new(throttle));
        let server = ImapServer::with_limits(
            Arc::new(config),
            directory.clone(),
            dyn_store,
            throttle,
            limits,
        );
        Env {
            dir,
            server,
            store,
            directory,
            next_id: AtomicU64::new(1),
        }
    }

    /// A new session from a loopback peer; the greeting is read and returned in `greeting`.
    pub(crate) async fn connect(&self) -> Client {
        self.connect_from("127.0.0.1:40000").await
    }

    pub(crate) async fn connect_from(&self, peer: &str) -> Client {
        let (client_half, server_half) = tokio::io::duplex(4 * 1024 * 1024);
        let peer: SocketAddr = peer.parse().expect("peer address");
        let conn = Connection {
            stream: MailStream::Memory(server_half),
            peer,
            local: "127.0.0.1:143".parse().expect("local address"),
            service: Service::Imap,
            session_id: self.next_id.fetch_add(1, Ordering::Relaxed),
            tls: None,
            shutdown: CancellationToken::new(),
        };
        let server = self.server.clone();
        let task = tokio::spawn(async move { server.handle(conn).await });
        let mut c = Client {
            io: BufReader::new(client_half),
            next_tag: 1,
            greeting: String::new(),
            task: Some(task),
        };
        c.greeting = c.line().await;
        c
    }

    /// A session logged in as alice.
    pub(crate) async fn login(&self) -> Client {
        self.login_as(USER, PASS).await
    }

    pub(crate) async fn login_as(&self, user: &str, pass: &str) -> Client {
        let mut c = self.connect().await;
        let r = c.cmd(&format!("LOGIN \"{user}\" \"{pass}\"")).await;
        assert!(r.tagged.starts_with("OK"), "login failed: {r:?}");
        c
    }
}

/// The responses to one command: the untagged and continuation lines, and the tagged line
/// without its tag.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    pub untagged: Vec<String>,
    pub tagged: String,
}

impl Resp {
    /// The tagged status: OK, NO or BAD.
    pub(crate) fn status(&self) -> &str {
        self.tagged.split(' ').next().unwrap_or_default()
    }

    #[track_caller]
    pub(crate) fn assert_ok(&self) -> &Self {
        assert_eq!(self.status(), "OK", "expected OK: {self:?}");
        self
    }

    #[track_caller]
    pub(crate) fn assert_no(&self) -> &Self {
        assert_eq!(self.status(), "NO", "expected NO: {self:?}");
        self
    }

    #[track_caller]
    pub(crate) fn assert_bad(&self) -> &Self {
        assert_eq!(self.status(), "BAD", "expected BAD: {self:?}");
        self
    }

    /// Untagged lines starting with `prefix` (after "* ").
    pub(crate) fn lines(&self, prefix: &str) -> Vec<&str> {
        self.untagged
            .iter()
            .filter_map(|l| l.strip_prefix("* "))
            .filter(|l| l.starts_with(prefix))
            .collect()
    }

    /// The one untagged line starting with `prefix`.
    #[track_caller]
    pub(crate) fn one(&self, prefix: &str) -> &str {
        let l = self.lines(prefix);
        assert_eq!(l.len(), 1, "expected one '* {prefix}' line: {self:?}");
        l[0]
    }

    /// The response code of the tagged line, e.g. `APPENDUID 1 2`.
    pub(crate) fn code(&self) -> Option<&str> {
        let rest = self.tagged.split_once(' ')?.1;
        let rest = rest.strip_prefix('[')?;
        Some(&rest[..rest.find(']')?])
    }
}

/// An IMAP client over an in-memory stream.
pub(crate) struct Client {
    io: BufReader<DuplexStream>,
    next_tag: u32,
    pub greeting: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Client {
    pub(crate) fn tag(&mut self) -> String {
        let t = format!("t{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    /// Writes raw bytes.
    pub(crate) async fn send_raw(&mut self, data: &[u8]) {
        let w = self.io.get_mut();
        w.write_all(data).await.expect("write");
        w.flush().await.expect("flush");
    }

    /// Writes one line, adding CRLF.
    pub(crate) async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    /// Reads one response line with the literals it carries, without the final CRLF.
    pub(crate) async fn line(&mut self) -> String {
        String::from_utf8_lossy(&self.line_bytes().await).into_owned()
    }

    pub(crate) async fn line_bytes(&mut self) -> Vec<u8> {
        tokio::time::timeout(READ_TIMEOUT, self.read_response())
            .await
            .expect("timed out waiting for the server")
    }

    /// Reads one line with a short timeout; `None` if nothing arrives.
    pub(crate) async fn try_line(&mut self, wait: Duration) -> Option<String> {
        match tokio::time::timeout(wait, self.read_response()).await {
            Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            Err(_) => None,
        }
    }

    async fn read_response(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.io.read_until(b'\n', &mut line).await.expect("read");
            assert!(
                n > 0,
                "connection closed; read so far: {:?}",
                String::from_utf8_lossy(&out)
            );
            let body = line.strip_suffix(b"\r\n").unwrap_or(&line);
            match literal_len(body) {
                Some(len) => {
                    out.extend_from_slice(&line);
                    let mut data = vec![0u8; len];
                    self.io.read_exact(&mut data).await.expect("read literal");
                    out.extend_from_slice(&data);
                }
                None => {
                    out.extend_from_slice(body);
                    return out;
                }
            }
        }
    }

    /// Whether the server closed the connection (reads EOF within a short time).
    pub(crate) async fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.io.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    /// Reads lines until the tagged response for `tag`.
    pub(crate) async fn read_until_tagged(&mut self, tag: &str) -> Resp {
        let mut untagged = Vec::new();
        loop {
            let l = self.line().await;
            if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
                return Resp {
                    untagged,
                    tagged: rest.to_string(),
                };
            }
            untagged.push(l);
        }
    }

    /// Sends one command line and reads its responses. The command must not carry
    /// synchronising literals (see [`Client::cmd_parts`]).
    pub(crate) async fn cmd(&mut self, text: &str) -> Resp {
        let tag = self.tag();
        self.send(&format!("{tag} {text}")).await;
        let r = self.read_until_tagged(&tag).await;
        assert!(
            !r.untagged.iter().any(|l| l.starts_with('+')),
            "unexpected continuation request: {r:?}"
        );
        r
    }

    /// Sends a command made of `parts`, each but the last ending in a synchronising literal
    /// `{n}` whose data begins the next part: waits for the continuation request before each
    /// literal. If the server answers with a tagged response instead, that is returned.
    pub(crate) async fn cmd_parts(&mut self, parts: &[&[u8]]) -> Resp {
        let tag = self.tag();
        let mut first = format!("{tag} ").into_bytes();
        first.extend_from_slice(parts[0]);
        let mut untagged = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let data = if i == 0 { first.as_slice() } else { p };
            self.send_raw(data).await;
            if i + 1 < parts.len() {
                self.send_raw(b"\r\n").await;
                // Wait for "+" before sending the literal.
                loop {
                    let l = self.line().await;
                    if l.starts_with('+') {
                        break;
                    }
                    if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
                        return Resp {
                            untagged,
                            tagged: rest.to_string(),
                        };
                    }
                    untagged.push(l);
                }
            }
        }
        self.send_raw(b"\r\n").await;
        let mut r = self.read_until_tagged(&tag).await;
        untagged.append(&mut r.untagged);
        r.untagged = untagged;
        r
    }

    /// APPEND with a synchronising literal: `args` goes between the mailbox and the literal
    /// (flags and date, or empty).
    pub(crate) async fn append(&mut self, mailbox: &str, args: &str, message: &[u8]) -> Resp {
        let head = if args.is_empty() {
            format!("APPEND {mailbox} {{{}}}", message.len())
        } else {
            format!("APPEND {mailbox} {args} {{{}}}", message.len())
        };
        self.cmd_parts(&[head.as_bytes(), message]).await
    }

    /// LOGOUT: the BYE and the tagged OK.
    pub(crate) async fn cmd_logout(&mut self) -> Resp {
        let tag = self.tag();
        self.send(&format!("{tag} LOGOUT")).await;
        self.read_until_tagged(&tag).await
    }

    /// Selects a mailbox, asserting success.
    pub(crate) async fn select(&mut self, mailbox: &str) -> Resp {
        let r = self.cmd(&format!("SELECT {mailbox}")).await;
        r.assert_ok();
        r
    }

    /// Closes the client side and waits for the session task to end.
    pub(crate) async fn finish(mut self) {
        let _ = self.io.get_mut().shutdown().await;
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

/// The length of a literal (`{n}` or `~{n}`) that ends a response line.
fn literal_len(line: &[u8]) -> Option<usize> {
    let open = line.iter().rposition(|&b| b == b'{')?;
    let inner = line.get(open + 1..line.len().checked_sub(1)?)?;
    if line.last() != Some(&b'}') || inner.is_empty() {
        return None;
    }
    std::str::from_utf8(inner).ok()?.parse().ok()
}

/// A small RFC 5322 message with CRLF line ends.
pub(crate) fn message(subject: &str, from: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: bob@example.net\r\nSubject: {subject}\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <{}@example.org>\r\n\r\n{body}\r\n",
        subject.replace(' ', ".")
    )
    .into_bytes()
}
