//! The POP3 client and sync against scripted fake servers on loopback: a small POP3 server in
//! this file keeps a mailbox in memory, logs every command in one shared event log (with the
//! state's records and the inbox's deliveries, so their order can be checked), and can be told
//! to misbehave.

use super::client::{
    apop_digest, apop_timestamp, error_kind, parse_list_line, parse_uidl_line, Capabilities,
    Client, Listed, Reply,
};
use crate::account::{FetchAccount, FetchOptions, Origin, RemoteUrl, Secret};
use crate::connect::Connector;
use crate::error::{ErrorKind, FetchError};
use crate::inbox::{delivery_key, Delivered, FetchedMessage, Inbox, LocalRefusal};
use crate::state::{FetchState, FolderState, NoProgress, RunReport, SeenMessage};
use crate::Run;
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

type Log = Arc<Mutex<Vec<String>>>;

/// How the fake server behaves.
#[derive(Clone)]
struct Script {
    greeting: String,
    /// CAPA lines; `None`: CAPA answers -ERR (an RFC 1939-only server).
    capa: Option<Vec<String>>,
    uidl: bool,
    /// The answer to a wrong password (and to every login when `refuse_all`).
    refusal: String,
    refuse_all: bool,
    /// LIST announces 100 octets for every message.
    lie_about_size: bool,
    /// Closes the connection instead of answering the n-th RETR (1-based).
    hang_up_at_retr: Option<usize>,
    quit_error: bool,
    /// Sends the first line of the n-th RETR's message (1-based), then nothing for a minute.
    stall_at_retr: Option<usize>,
    /// Offers STLS (RFC 2595) with this certificate.
    tls: Option<TlsAcceptor>,
    /// TLS from the first octet (pop3s, RFC 8314) with the certificate of `tls`.
    implicit_tls: bool,
    /// Sends a second line right after STLS's +OK, before the handshake.
    inject_after_stls: bool,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            greeting: "+OK fake POP3 ready".into(),
            capa: Some(vec![
                "USER".into(),
                "UIDL".into(),
                "PIPELINING".into(),
                "RESP-CODES".into(),
                "AUTH-RESP-CODE".into(),
            ]),
            uidl: true,
            refusal: "-ERR [AUTH] Authentication failed.".into(),
            refuse_all: false,
            lie_about_size: false,
            hang_up_at_retr: None,
            quit_error: false,
            stall_at_retr: None,
            tls: None,
            implicit_tls: false,
            inject_after_stls: false,
        }
    }
}

#[derive(Clone)]
struct Msg {
    uid: String,
    body: Vec<u8>,
}

struct Fake {
    port: u16,
    mailbox: Arc<Mutex<Vec<Msg>>>,
    log: Log,
}

const PASSWORD: &str = "s3cret";

impl Fake {
    async fn start(script: Script, messages: Vec<Msg>, log: Log) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mailbox = Arc::new(Mutex::new(messages));
        let (mb, lg) = (mailbox.clone(), log.clone());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (script, mb, lg) = (script.clone(), mb.clone(), lg.clone());
                tokio::spawn(async move {
                    if script.implicit_tls {
                        let acceptor = script
                            .tls
                            .clone()
                            .expect("implicit TLS needs a certificate");
                        if let Ok(tls) = acceptor.accept(sock).await {
                            let _ = serve(tls, true, true, &script, &mb, &lg).await;
                        }
                        return;
                    }
                    let Ok(Some(tcp)) = serve(sock, false, true, &script, &mb, &lg).await else {
                        return;
                    };
                    let Some(acceptor) = script.tls.clone() else {
                        return;
                    };
                    match acceptor.accept(tcp).await {
                        Ok(tls) => {
                            let _ = serve(tls, true, false, &script, &mb, &lg).await;
                        }
                        Err(e) => lg.lock().unwrap().push(format!("handshake failed: {e}")),
                    }
                });
            }
        });
        Fake { port, mailbox, log }
    }

    fn uids(&self) -> Vec<String> {
        self.mailbox
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.uid.clone())
            .collect()
    }

    fn commands(&self, prefix: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .cloned()
            .collect()
    }
}

fn stuffed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in body.split_inclusive(|b| *b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\r\n") && !out.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Serves one connection; `Ok(Some(stream))` when the client asked for STLS (the caller runs
/// the TLS handshake and serves again, `tls` set).
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    tls: bool,
    greet: bool,
    script: &Script,
    mailbox: &Mutex<Vec<Msg>>,
    log: &Log,
) -> std::io::Result<Option<S>> {
    let mut r = BufReader::new(stream);
    if greet {
        r.get_mut()
            .write_all(format!("{}\r\n", script.greeting).as_bytes())
            .await?;
    }
    let snapshot: Vec<Msg> = mailbox.lock().unwrap().clone();
    let mut deleted: HashSet<usize> = HashSet::new();
    let mut user = None;
    let mut retrs = 0;
    let stamp = apop_timestamp(&script.greeting).map(str::to_string);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let line = line.trim_end().to_string();
        let pipelined = !r.buffer().is_empty();
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.to_string()),
            None => (line.to_ascii_uppercase(), String::new()),
        };
        let logged = if verb == "PASS" {
            "PASS ****".to_string()
        } else {
            line.clone()
        };
        let logged = if pipelined && verb == "RETR" {
            format!("{logged} (pipelined)")
        } else {
            logged
        };
        log.lock().unwrap().push(if tls {
            format!("{logged} [tls]")
        } else {
            logged
        });
        let msg = |arg: &str| -> Option<usize> {
            let n: usize = arg.trim().parse().ok()?;
            (n >= 1 && n <= snapshot.len() && !deleted.contains(&(n - 1))).then_some(n - 1)
        };
        let reply: Vec<u8> = match verb.as_str() {
            "STLS" if script.tls.is_some() && !tls => {
                let go = if script.inject_after_stls {
                    &b"+OK Begin TLS\r\n+OK injected\r\n"[..]
                } else {
                    &b"+OK Begin TLS\r\n"[..]
                };
                r.get_mut().write_all(go).await?;
                return Ok(Some(r.into_inner()));
            }
            "CAPA" => match &script.capa {
                Some(lines) => {
                    let mut out = String::from("+OK\r\n");
                    if script.tls.is_some() && !tls && !script.implicit_tls {
                        out.push_str("STLS\r\n");
                    }
                    for l in lines {
                        out.push_str(l);
                        out.push_str("\r\n");
                    }
                    out.push_str(".\r\n");
                    out.into_bytes()
                }
                None => b"-ERR unknown command\r\n".to_vec(),
            },
            "USER" => {
                user = Some(arg.clone());
                b"+OK\r\n".to_vec()
            }
            "PASS" => {
                if !script.refuse_all && user.is_some() && arg == PASSWORD {
                    b"+OK logged in\r\n".to_vec()
                } else {
                    format!("{}\r\n", script.refusal).into_bytes()
                }
            }
            "APOP" => {
                let good = stamp
                    .as_deref()
                    .is_some_and(|s| arg.ends_with(&format!(" {}", apop_digest(s, PASSWORD))));
                if good && !script.refuse_all {
                    b"+OK apop\r\n".to_vec()
                } else {
                    format!("{}\r\n", script.refusal).into_bytes()
                }
            }
            "AUTH" => {
                // RFC 5034 §4: the initial response on the line, or after an empty challenge.
                let response = match arg.strip_prefix("PLAIN") {
                    Some("") => {
                        r.get_mut().write_all(b"+ \r\n").await?;
                        let mut more = String::new();
                        r.read_line(&mut more).await?;
                        log.lock().unwrap().push("(AUTH continuation)".into());
                        Some(more.trim_end().to_string())
                    }
                    Some(rest) => rest.strip_prefix(' ').map(str::to_string),
                    None => None,
                };
                use base64::Engine as _;
                let decoded = response
                    .and_then(|r| base64::engine::general_purpose::STANDARD.decode(r).ok())
                    .unwrap_or_default();
                let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
                match parts[..] {
                    [b"", user, pass] if pass == PASSWORD.as_bytes() && !script.refuse_all => {
                        let user = String::from_utf8_lossy(user).to_string();
                        log.lock().unwrap().push(format!("(authcid {user})"));
                        b"+OK sasl\r\n".to_vec()
                    }
                    _ => format!("{}\r\n", script.refusal).into_bytes(),
                }
            }
            "UIDL" if script.uidl => {
                let mut out = String::from("+OK\r\n");
                for (i, m) in snapshot.iter().enumerate() {
                    if !deleted.contains(&i) {
                        out.push_str(&format!("{} {}\r\n", i + 1, m.uid));
                    }
                }
                out.push_str(".\r\n");
                out.into_bytes()
            }
            "LIST" => {
                let mut out = String::from("+OK\r\n");
                for (i, m) in snapshot.iter().enumerate() {
                    if !deleted.contains(&i) {
                        let size = if script.lie_about_size {
                            100
                        } else {
                            m.body.len()
                        };
                        out.push_str(&format!("{} {}\r\n", i + 1, size));
                    }
                }
                out.push_str(".\r\n");
                out.into_bytes()
            }
            "RETR" => match msg(&arg) {
                Some(i) => {
                    retrs += 1;
                    if script.hang_up_at_retr == Some(retrs) {
                        return Ok(None);
                    }
                    if script.stall_at_retr == Some(retrs) {
                        r.get_mut().write_all(b"+OK\r\nSubject: half\r\n").await?;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return Ok(None);
                    }
                    let mut out = b"+OK message follows\r\n".to_vec();
                    out.extend_from_slice(&stuffed(&snapshot[i].body));
                    out
                }
                None => b"-ERR no such message\r\n".to_vec(),
            },
            "DELE" => match msg(&arg) {
                Some(i) => {
                    deleted.insert(i);
                    b"+OK deleted\r\n".to_vec()
                }
                None => b"-ERR no such message\r\n".to_vec(),
            },
            "QUIT" => {
                if script.quit_error {
                    r.get_mut()
                        .write_all(b"-ERR [SYS/TEMP] some deleted messages not removed\r\n")
                        .await?;
                    return Ok(None);
                }
                let gone: HashSet<String> =
                    deleted.iter().map(|i| snapshot[*i].uid.clone()).collect();
                mailbox.lock().unwrap().retain(|m| !gone.contains(&m.uid));
                r.get_mut().write_all(b"+OK bye\r\n").await?;
                return Ok(None);
            }
            _ => b"-ERR unknown command\r\n".to_vec(),
        };
        r.get_mut().write_all(&reply).await?;
    }
}

/// The state in memory, logging its records and forgets.
struct MemState {
    folders: Mutex<HashMap<String, FolderState>>,
    log: Log,
    fail_record: bool,
}

impl MemState {
    fn new(log: Log) -> MemState {
        MemState {
            folders: Mutex::new(HashMap::new()),
            log,
            fail_record: false,
        }
    }

    fn seen(&self) -> HashMap<String, SeenMessage> {
        self.folders
            .lock()
            .unwrap()
            .get("INBOX")
            .map(|f| f.seen.clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl FetchState for MemState {
    async fn load(&self, _account: &str, folder: &str) -> Result<FolderState, FetchError> {
        Ok(self
            .folders
            .lock()
            .unwrap()
            .get(folder)
            .cloned()
            .unwrap_or_default())
    }

    async fn record(
        &self,
        _account: &str,
        folder: &str,
        messages: &[SeenMessage],
    ) -> Result<(), FetchError> {
        if self.fail_record {
            return Err(FetchError::local("disk full"));
        }
        let mut folders = self.folders.lock().unwrap();
        let f = folders.entry(folder.to_string()).or_default();
        for m in messages {
            self.log.lock().unwrap().push(format!("record {}", m.id));
            f.seen.insert(m.id.clone(), m.clone());
        }
        Ok(())
    }

    async fn forget(&self, _account: &str, folder: &str, ids: &[String]) -> Result<(), FetchError> {
        let mut folders = self.folders.lock().unwrap();
        let f = folders.entry(folder.to_string()).or_default();
        for id in ids {
            self.log.lock().unwrap().push(format!("forget {id}"));
            f.seen.remove(id);
        }
        Ok(())
    }

    async fn replace(
        &self,
        _account: &str,
        folder: &str,
        state: &FolderState,
    ) -> Result<(), FetchError> {
        self.folders
            .lock()
            .unwrap()
            .insert(folder.to_string(), state.clone());
        Ok(())
    }

    async fn drop_account(&self, _account: &str) -> Result<(), FetchError> {
        self.folders.lock().unwrap().clear();
        Ok(())
    }
}

/// An inbox in memory: keys make deliveries idempotent, as local delivery's are.
#[derive(Default)]
struct MemInbox {
    delivered: Mutex<Vec<(String, Vec<u8>)>>,
    keys: Mutex<HashSet<String>>,
    log: Log,
    /// Deliveries of messages containing this text fail (temporarily).
    fail_on: Option<&'static str>,
    /// Deliveries of messages containing this text are refused for good.
    refuse_on: Option<&'static str>,
    /// Cancelled once this many messages are delivered.
    cancel_after: Option<(usize, CancellationToken)>,
}

#[async_trait]
impl Inbox for MemInbox {
    async fn deliver(&self, m: FetchedMessage<'_>) -> Result<Delivered, FetchError> {
        assert_eq!((m.remote_folder, m.local_folder), ("INBOX", None));
        // Let other deliveries overlap, as real ones do.
        tokio::task::yield_now().await;
        let text = String::from_utf8_lossy(&m.raw).to_string();
        if self.fail_on.is_some_and(|f| text.contains(f)) {
            return Err(FetchError::local("quota of the store exceeded, try later"));
        }
        if self.refuse_on.is_some_and(|f| text.contains(f)) {
            return Ok(Delivered::Refused(LocalRefusal(
                "5.1.1 no such user".into(),
            )));
        }
        if !self.keys.lock().unwrap().insert(m.key.clone()) {
            return Ok(Delivered::Duplicate);
        }
        let subject = text.lines().next().unwrap_or_default().to_string();
        self.log.lock().unwrap().push(format!("deliver {subject}"));
        let mut delivered = self.delivered.lock().unwrap();
        delivered.push((m.key, m.raw));
        if let Some((n, token)) = &self.cancel_after {
            if delivered.len() >= *n {
                token.cancel();
            }
        }
        Ok(Delivered::Stored)
    }
}

fn account(port: u16, options: FetchOptions) -> FetchAccount {
    FetchAccount {
        id: "7".into(),
        local: "alice@example.test".into(),
        url: RemoteUrl::parse(&format!("pop3://bob@127.0.0.1:{port}")).unwrap(),
        options: FetchOptions {
            allow_plaintext: true,
            ..options
        },
        origin: Origin::Cli,
    }
}

async fn sync_with(
    account: &FetchAccount,
    state: &MemState,
    inbox: &MemInbox,
    cancel: CancellationToken,
) -> Result<RunReport, FetchError> {
    sync_through(
        &Connector::new(None).unwrap(),
        account,
        state,
        inbox,
        cancel,
    )
    .await
}

async fn sync_through(
    connector: &Connector,
    account: &FetchAccount,
    state: &MemState,
    inbox: &MemInbox,
    cancel: CancellationToken,
) -> Result<RunReport, FetchError> {
    let password = Secret::new(PASSWORD);
    let run = Run {
        account,
        password: &password,
        connector,
        state,
        inbox,
        progress: &NoProgress,
        cancel,
    };
    super::sync(&run).await
}

/// `n` messages whose first line is `Subject: m<i>` and whose UIDL is `u<i>`.
fn messages(n: usize) -> Vec<Msg> {
    (1..=n)
        .map(|i| Msg {
            uid: format!("u{i}"),
            body: format!("Subject: m{i}\r\nMessage-ID: <{i}@x>\r\n\r\nbody {i}\r\n").into_bytes(),
        })
        .collect()
}

fn position(log: &[String], entry: &str) -> usize {
    log.iter()
        .position(|l| l == entry)
        .unwrap_or_else(|| panic!("{entry:?} not in {log:#?}"))
}

#[test]
fn replies_and_their_codes() {
    let r = Reply::parse(b"-ERR [IN-USE] mailbox locked").unwrap();
    assert!(!r.ok);
    assert_eq!(r.code().as_deref(), Some("IN-USE"));
    assert_eq!(error_kind(&r, ErrorKind::Auth), ErrorKind::Remote);
    let r = Reply::parse(b"-ERR [auth] bad password").unwrap();
    assert_eq!(error_kind(&r, ErrorKind::Remote), ErrorKind::Auth);
    let r = Reply::parse(b"-ERR [SYS/TEMP] try later").unwrap();
    assert_eq!(error_kind(&r, ErrorKind::Auth), ErrorKind::Remote);
    let r = Reply::parse(b"-ERR no").unwrap();
    assert_eq!(
        (r.code(), error_kind(&r, ErrorKind::Auth)),
        (None, ErrorKind::Auth)
    );
    assert_eq!(Reply::parse(b"+OK").unwrap().text, "");
    assert_eq!(Reply::parse(b"+ok 2 320").unwrap().text, "2 320");
    assert_eq!(Reply::parse(b"+OKAY"), None);
    assert_eq!(Reply::parse(b"* OK imap"), None);
}

#[test]
fn apop_digest_of_rfc_1939() {
    // RFC 1939 §7's example inputs; the digest as Python's hashlib.md5 computes it.
    let greeting = "POP3 server ready <1896.697170952@dbc.mtview.ca.us>";
    let stamp = apop_timestamp(greeting).unwrap();
    assert_eq!(stamp, "<1896.697170952@dbc.mtview.ca.us>");
    assert_eq!(
        apop_digest(stamp, "tanstaafl"),
        "a6f0dd348916c9ee9539661f94c75203"
    );
    assert_eq!(apop_timestamp("ready <no-at-sign>"), None);
    assert_eq!(apop_timestamp("Dovecot ready."), None);
}

#[test]
fn capabilities_of_rfc_2449() {
    let lines: Vec<Vec<u8>> = [
        "TOP",
        "USER",
        "SASL PLAIN login",
        "stls",
        "PIPELINING",
        "UIDL",
        "RESP-CODES",
    ]
    .iter()
    .map(|l| l.as_bytes().to_vec())
    .collect();
    let c = Capabilities::parse(&lines);
    assert!(c.known && c.stls && c.pipelining && c.uidl && c.user && c.resp_codes);
    assert!(!c.auth_resp_code);
    assert_eq!(c.sasl, ["PLAIN", "LOGIN"]);
}

#[test]
fn uidl_and_list_lines() {
    assert_eq!(
        parse_uidl_line(b"1 0000000158d1b3a6"),
        Some((1, "0000000158d1b3a6".into()))
    );
    assert_eq!(
        parse_uidl_line(b"12 QhdPYR:00WBw1Ph7x7"),
        Some((12, "QhdPYR:00WBw1Ph7x7".into()))
    );
    for bad in [
        &b"1"[..],
        b"0 abc",
        b"x abc",
        b"1 abc def",
        b"1  abc",
        b"-1 abc",
        b"1 caf\xc3\xa9",
        b"1 \x7f",
    ] {
        assert_eq!(
            parse_uidl_line(bad),
            None,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // RFC 1939 §7: at most 70 characters.
    assert!(parse_uidl_line(format!("1 {}", "a".repeat(70)).as_bytes()).is_some());
    assert!(parse_uidl_line(format!("1 {}", "a".repeat(71)).as_bytes()).is_none());
    assert_eq!(
        parse_list_line(b"2 320"),
        Some(Listed {
            number: 2,
            size: 320
        })
    );
    assert_eq!(
        parse_list_line(b"3 200 more info"),
        Some(Listed {
            number: 3,
            size: 200
        })
    );
    for bad in [&b"2"[..], b"0 10", b"2 -1", b"2 x", b""] {
        assert_eq!(parse_list_line(bad), None);
    }
}

#[tokio::test]
async fn fetches_every_message_dot_unstuffed_and_byte_identical() {
    let log = Log::default();
    let mut msgs = messages(3);
    msgs.push(Msg {
        uid: "dots".into(),
        body: b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n. \r\nlast\r\n".to_vec(),
    });
    msgs.push(Msg {
        uid: "8bit".into(),
        body: "Subject: 8bit\r\n\r\nGr\u{fc}\u{df}e, \u{65e5}\u{672c}\r\n"
            .as_bytes()
            .to_vec(),
    });
    let fake = Fake::start(Script::default(), msgs.clone(), log.clone()).await;
    let state = MemState::new(log.clone());
    let inbox = MemInbox {
        log: log.clone(),
        ..MemInbox::default()
    };
    let acct = account(fake.port, FetchOptions::default());
    let report = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((report.fetched, report.deleted, report.folders), (5, 0, 1));
    let got: HashMap<String, Vec<u8>> = inbox.delivered.lock().unwrap().iter().cloned().collect();
    for m in &msgs {
        let key = delivery_key("7", "INBOX", 0, &m.uid);
        assert_eq!(got.get(&key), Some(&m.body), "message {}", m.uid);
    }
    assert_eq!(state.seen().len(), 5);
    assert!(state
        .seen()
        .values()
        .all(|s| !s.delete_pending && s.fingerprint.is_none()));
    // keep = true: nothing deleted; a second run fetches nothing.
    assert_eq!(fake.uids().len(), 5);
    assert!(fake.commands("DELE").is_empty());
    let report = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((report.fetched, report.duplicates), (0, 0));
    assert_eq!(fake.commands("RETR").len(), 5);
    assert_eq!(fake.commands("QUIT").len(), 2);
}

#[tokio::test]
async fn pipelines_only_when_the_server_says_so() {
    let log = Log::default();
    let script = Script {
        capa: Some(vec!["USER".into(), "UIDL".into()]),
        ..Script::default()
    };
    let fake = Fake::start(script, messages(20), log.clone()).await;
    let state = MemState::new(log.clone());
    let inbox = MemInbox::default();
    let acct = account(fake.port, FetchOptions::default());
    let report = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.fetched, 20);
    let retrs = fake.commands("RETR");
    assert_eq!(retrs.len(), 20);
    assert!(
        retrs.iter().all(|r| !r.ends_with("(pipelined)")),
        "{retrs:?}"
    );
}

#[tokio::test]
async fn logs_in_with_apop_auth_plain_or_user_pass() {
    // APOP when the greeting has a timestamp.
    let log = Log::default();
    let mut script = Script {
        greeting: "+OK ready <4711.1@fake.example>".into(),
        ..Script::default()
    };
    script.capa.as_mut().unwrap().push("SASL PLAIN".into());
    let fake = Fake::start(script.clone(), messages(1), log.clone()).await;
    let acct = account(fake.port, FetchOptions::default());
    let (state, inbox) = (MemState::new(log.clone()), MemInbox::default());
    sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    let apop = fake.commands("APOP");
    assert_eq!(apop.len(), 1);
    assert!(apop[0].starts_with("APOP bob "), "{apop:?}");
    assert!(fake.commands("AUTH").is_empty() && fake.commands("USER").is_empty());

    // apop = false: AUTH PLAIN, which CAPA lists.
    let log = Log::default();
    let fake = Fake::start(script, messages(1), log.clone()).await;
    let acct = account(
        fake.port,
        FetchOptions {
            apop: false,
            ..FetchOptions::default()
        },
    );
    let (state, inbox) = (MemState::new(log.clone()), MemInbox::default());
    sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(fake.commands("AUTH PLAIN ").len(), 1);
    assert!(fake.commands("APOP").is_empty());

    // Neither: USER and PASS.
    let log = Log::default();
    let fake = Fake::start(Script::default(), messages(1), log.clone()).await;
    let acct = account(fake.port, FetchOptions::default());
    let (state, inbox) = (MemState::new(log.clone()), MemInbox::default());
    let report = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.fetched, 1);
    assert_eq!(fake.commands("USER bob"), ["USER bob"]);
    assert_eq!(fake.commands("PASS"), ["PASS ****"]);
}

async fn refused_with(refusal: &str) -> FetchError {
    let log = Log::default();
    let script = Script {
        refuse_all: true,
        refusal: refusal.into(),
        ..Script::default()
    };
    let fake = Fake::start(script, messages(1), log.clone()).await;
    let acct = account(fake.port, FetchOptions::default());
    let (state, inbox) = (MemState::new(log.clone()), MemInbox::default());
    let e = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(fake.commands("RETR").is_empty());
    assert!(
        e.message.contains(&format!("127.0.0.1:{}", fake.port)),
        "{e}"
    );
    assert!(e.message.contains(refusal), "{e}");
    e
}

#[tokio::test]
async fn refusals_name_the_server_quote_it_and_have_their_kind() {
    let e = refused_with("-ERR [AUTH] Authentication failed.").await;
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(
        e.message
            .starts_with("login refused by pop3://bob@127.0.0.1:"),
        "{e}"
    );
    assert_eq!(refused_with("-ERR bad login").await.kind, ErrorKind::Auth);
    assert_eq!(
        refused_with("-ERR [IN-USE] Mailbox is locked").await.kind,
        ErrorKind::Remote
    );
    assert_eq!(
        refused_with("-ERR [SYS/TEMP] Try again later").await.kind,
        ErrorKind::Remote
    );
    assert_eq!(
        refused_with("-ERR [LOGIN-DELAY] Wait").await.kind,
        ErrorKind::Remote
    );
}

#[tokio::test]
async fn plaintext_needs_consent_and_a_bad_greeting_is_remote() {
    let log = Log::default();
    let fake = Fake::start(Script::default(), messages(1), log.clone()).await;
    let mut acct = account(fake.port, FetchOptions::default());
    acct.options.allow_plaintext = false;
    let (state, inbox) = (MemState::new(log.clone()), MemInbox::default());
    let e = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls);
    assert!(
        e.message.contains("offers no STLS; set allow_plaintext"),
        "{e}"
    );
    assert!(fake.commands("USER").is_empty() && fake.commands("PASS").is_empty());

    let script = Script {
        greeting: "-ERR [SYS/TEMP] too many connections".into(),
        ..Script::default()
    };
    let fake = Fake::start(script, messages(1), log.clone()).await;
    let acct = account(fake.port, FetchOptions::default());
    let e = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Remote);
    assert!(e.message.contains("too many connections"), "{e}");
}

#[tokio::test]
async fn deletes_only_after_delivery_and_recording_and_forgets_after_quit() {
    let log = Log::default();
    let fake = Fake::start(Script::default(), messages(150), log.clone()).await;
    let state = MemState::new(log.clone());
    let inbox = MemInbox {
        log: log.clone(),
        ..MemInbox::default()
    };
    let acct = account(
        fake.port,
        FetchOptions {
            keep: false,
            ..FetchOptions::default()
        },
    );
    let report = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((report.fetched, report.deleted), (150, 150));
    assert!(fake.uids().is_empty());
    assert!(state.seen().is_empty(), "confirmed deletions are forgotten");
    let log = log.lock().unwrap().clone();
    let quit = position(&log, "QUIT");
    for i in 1..=150 {
        let delivered = position(&log, &format!("deliver Subject: m{i}"));
        let recorded = position(&log, &format!("record u{i}"));
        let dele = position(&log, &format!("DELE {i}"));
        let forgotten = position(&log, &format!("forget u{i}"));
        assert!(delivered < recorded && recorded < dele && dele < quit && quit < forgotten);
    }
}

#[tokio::test]
async fn a_failing_inbox_stops_the_run_and_only_delivered_mail_is_deleted() {
    let log = Log::default();
    let fake = Fake::start(Script::default(), messages(40), log.clone()).await;
    let state = MemState::new(log.clone());
    let inbox = MemInbox {
        log: log.clone(),
        fail_on: Some("Subject: m20\r"),
        ..MemInbox::default()
    };
    let acct = account(
        fake.port,
        FetchOptions {
            keep: false,
            ..FetchOptions::default()
        },
    );
    let e = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Local);
    assert!(e.message.contains("quota"), "{e}");
    let delivered: HashSet<String> = inbox
        .delivered
        .lock()
        .unwrap()
        .iter()
        .map(|(_, raw)| String::from_utf8_lossy(raw).lines().next().unwrap()[9..].to_string())
        .collect();
    assert!(!delivered.contains("m20"));
    assert!(
        delivered.len() >= 19,
        "messages before the failure are delivered"
    );
    assert!(delivered.len() < 40, "the run stopped");
    let remote: HashSet<String> = fake.uids().into_iter().collect();
    for i in 1..=40 {
        // Deleted exactly when delivered (and so recorded); the rest untouched.
        assert_eq!(
            remote.contains(&format!("u{i}")),
            !delivered.contains(&format!("m{i}")),
            "u{i}"
        );
    }
    assert!(
        state.seen().is_empty(),
        "every delivered message was deleted and forgotten"
    );

    // The next run, with the inbox working again, fetches the rest once.
    let inbox2 = MemInbox::default();
    let report = sync_with(&acct, &state, &inbox2, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.fetched as usize, 40 - delivered.len());
    assert!(fake.uids().is_empty());
}

#[tokio::test]
async fn a_failing_state_deletes_nothing_it_did_not_record() {
    let log = Log::default();
    let fake = Fake::start(Script::default(), messages(5), log.clone()).await;
    let mut state = MemState::new(log.clone());
    state.fail_record = true;
    let inbox = MemInbox::default();
    let acct = account(
        fake.port,
        FetchOptions {
            keep: false,
            ..FetchOptions::default()
        },
    );
    let e = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(e.message.contains("disk full"), "{e}");
    assert_eq!(fake.uids().len(), 5);
    assert!(fake.commands("DELE").is_empty());
}

#[tokio::test]
async fn a_cancelled_run_stops_records_what_it_did_and_logs_out() {
    let log = Log::default();
    let fake = Fake::start(Script::default(), messages(200), log.clone()).await;
    let state = MemState::new(log.clone());
    let cancel = CancellationToken::new();
    let inbox = MemInbox {
        cancel_after: Some((3, cancel.clone())),
        ..MemInbox::default()
    };
    let acct = account(fake.port, FetchOptions::default());
    let report = sync_with(&acct, &state, &inbox, cancel).await.unwrap();
    let n = inbox.delivered.lock().unwrap().len();
    assert_eq!(report.fetched as usize, n);
    assert!((3..200).contains(&n), "{n} delivered");
    assert_eq!(state.seen().len(), n, "everything delivered is recorded");
    assert_eq!(fake.commands("QUIT").len(), 1);

    // The next run fetches the rest, nothing twice.
    let report = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((report.fetched as usize, report.duplicates), (200 - n, 0));
    assert_eq!(inbox.delivered.lock().unwrap().len(), 200);
}

#[tokio::test]
async fn a_resumed_run_fetches_nothing_twice() {
    let log = Log::default();
    let fake = Fake::start(Script::default(), messages(6), log.clone()).await;
    let state = MemState::new(log.clone());
    // State says u1..u3 were delivered; the inbox also has u4's key (killed between delivery
    // and recording); u5 awaits deletion from an earlier run.
    state
        .record(
            "7",
            "INBOX",
            &[1, 2, 3].map(|i| SeenMessage {
                id: format!("u{i}"),
                fingerprint: None,
                delete_pending: false,
            }),
        )
        .await
        .unwrap();
    state
        .record(
            "7",
            "INBOX",
            &[
                SeenMessage {
                    id: "u5".into(),
                    fingerprint: None,
                    delete_pending: true,
                },
                SeenMessage {
                    id: "gone".into(),
                    fingerprint: None,
                    delete_pending: false,
                },
            ],
        )
        .await
        .unwrap();
    let inbox = MemInbox::default();
    inbox
        .keys
        .lock()
        .unwrap()
        .insert(delivery_key("7", "INBOX", 0, "u4"));
    let acct = account(fake.port, FetchOptions::default());
    let report = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (report.fetched, report.duplicates, report.deleted),
        (1, 1, 1)
    );
    let retrs: Vec<String> = fake
        .commands("RETR")
        .iter()
        .map(|r| r.trim_end_matches(" (pipelined)").to_string())
        .collect();
    assert_eq!(retrs, ["RETR 4", "RETR 6"]);
    assert_eq!(fake.commands("DELE"), ["DELE 5"]);
    assert!(!fake.uids().contains(&"u5".to_string()));
    let seen = state.seen();
    assert!(!seen.contains_key("gone") && !seen.contains_key("u5"));
    assert_eq!(seen.len(), 5);
}

#[tokio::test]
async fn without_uidl_only_a_deleting_account_is_fetched() {
    let log = Log::default();
    let script = Script {
        capa: None,
        uidl: false,
        ..Script::default()
    };
    let fake = Fake::start(script, messages(4), log.clone()).await;
    let state = MemState::new(log.clone());
    let inbox = MemInbox::default();
    let acct = account(fake.port, FetchOptions::default());
    let e = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert!(
        e.message.contains("no UIDL") && e.message.contains("keep = false"),
        "{e}"
    );
    assert!(fake.commands("RETR").is_empty());

    let acct = account(
        fake.port,
        FetchOptions {
            keep: false,
            ..FetchOptions::default()
        },
    );
    let report = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((report.fetched, report.deleted), (4, 4));
    assert!(fake.uids().is_empty());
    assert!(
        state.seen().is_empty(),
        "message numbers are never recorded"
    );

    // A server that announced UIDL and then refuses it is failing, not lacking it.
    let script = Script {
        uidl: false,
        ..Script::default()
    };
    let fake = Fake::start(script, messages(1), log.clone()).await;
    let acct = account(fake.port, FetchOptions::default());
    let e = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Remote);
    assert!(e.message.contains("refused UIDL: -ERR"), "{e}");
}

#[tokio::test]
async fn too_big_and_refused_messages_stay_on_the_remote() {
    let log = Log::default();
    let mut msgs = messages(3);
    msgs[1].body.extend_from_slice(&[b'x'; 500]);
    msgs[1].body.extend_from_slice(b"\r\n");
    let fake = Fake::start(Script::default(), msgs, log.clone()).await;
    let state = MemState::new(log.clone());
    let inbox = MemInbox {
        refuse_on: Some("Subject: m3\r"),
        ..MemInbox::default()
    };
    let acct = account(
        fake.port,
        FetchOptions {
            keep: false,
            size_limit: Some(200),
            ..FetchOptions::default()
        },
    );
    let report = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (
            report.fetched,
            report.too_big,
            report.refused,
            report.deleted
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(fake.uids(), ["u2", "u3"]);
    let seen = state.seen();
    assert!(
        !seen.contains_key("u2"),
        "too big: not recorded, looked at again next run"
    );
    assert!(
        !seen["u3"].delete_pending,
        "refused: recorded, never deleted"
    );
    assert_eq!(fake.commands("RETR").len(), 2);
}

#[tokio::test]
async fn a_failed_quit_keeps_the_deletions_pending() {
    let log = Log::default();
    let script = Script {
        quit_error: true,
        ..Script::default()
    };
    let fake = Fake::start(script, messages(3), log.clone()).await;
    let state = MemState::new(log.clone());
    let inbox = MemInbox::default();
    let acct = account(
        fake.port,
        FetchOptions {
            keep: false,
            ..FetchOptions::default()
        },
    );
    let report = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((report.fetched, report.deleted), (3, 0));
    assert_eq!(fake.uids().len(), 3);
    assert!(state.seen().values().all(|s| s.delete_pending));
    assert_eq!(state.seen().len(), 3);
}

#[tokio::test]
async fn a_connection_lost_mid_run_keeps_what_was_delivered() {
    let log = Log::default();
    let script = Script {
        hang_up_at_retr: Some(5),
        ..Script::default()
    };
    let fake = Fake::start(script, messages(10), log.clone()).await;
    let state = MemState::new(log.clone());
    let inbox = MemInbox::default();
    let acct = account(fake.port, FetchOptions::default());
    let e = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network);
    assert!(
        e.message.contains("closed the connection during RETR 5"),
        "{e}"
    );
    assert_eq!(inbox.delivered.lock().unwrap().len(), 4);
    assert_eq!(state.seen().len(), 4);
}

#[tokio::test]
async fn a_message_longer_than_announced_is_a_protocol_error() {
    let log = Log::default();
    let script = Script {
        lie_about_size: true,
        ..Script::default()
    };
    let msgs = vec![Msg {
        uid: "big".into(),
        body: "Subject: big\r\n\r\n"
            .bytes()
            .chain(std::iter::repeat_n(b'y', 300_000))
            .chain(*b"\r\n")
            .collect(),
    }];
    let fake = Fake::start(script, msgs, log.clone()).await;
    let state = MemState::new(log.clone());
    let inbox = MemInbox::default();
    let acct = account(fake.port, FetchOptions::default());
    let e = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert!(e.message.contains("longer than"), "{e}");
    assert!(inbox.delivered.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.write_all(b"+OK hello\r\n").await.unwrap();
        // Never answers CAPA.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let connector = Connector::new(None).unwrap();
    let stream = connector.connect("127.0.0.1", port).await.unwrap();
    let url = RemoteUrl::parse(&format!("pop3://bob@127.0.0.1:{port}")).unwrap();
    let e = Client::start_with_timeout(stream, &url, Duration::from_millis(200))
        .await
        .err()
        .expect("a silent server times out");
    assert_eq!(e.kind, ErrorKind::Network);
    assert!(e.message.contains("did not answer CAPA"), "{e}");
    server.abort();
}

/// A certificate for `localhost` and a file holding it (the private CA of the account).
fn tls_server(dir: &std::path::Path) -> (TlsAcceptor, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, cert.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    (TlsAcceptor::from(Arc::new(config)), ca_file)
}

fn tls_account(port: u16) -> FetchAccount {
    let mut acct = account(port, FetchOptions::default());
    acct.url = RemoteUrl::parse(&format!("pop3://bob@localhost:{port}")).unwrap();
    acct.options.allow_plaintext = false;
    acct
}

#[tokio::test]
async fn stls_upgrades_verifies_the_certificate_and_asks_capa_again() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, ca_file) = tls_server(dir.path());
    let log = Log::default();
    let script = Script {
        tls: Some(acceptor),
        ..Script::default()
    };
    let fake = Fake::start(script, messages(3), log.clone()).await;
    let acct = tls_account(fake.port);
    let (state, inbox) = (MemState::new(log.clone()), MemInbox::default());
    let trusted = Connector::new(Some(&ca_file)).unwrap();
    let report = sync_through(&trusted, &acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.fetched, 3);
    let log = log.lock().unwrap().clone();
    // CAPA in the clear, STLS, CAPA again over TLS (RFC 2595 §4), and the login only then.
    assert_eq!(log[..3], ["CAPA", "STLS", "CAPA [tls]"]);
    assert!(log.contains(&"PASS **** [tls]".to_string()), "{log:#?}");
    assert!(!log.contains(&"PASS ****".to_string()), "{log:#?}");
}

#[tokio::test]
async fn stls_with_an_untrusted_certificate_or_injected_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, ca_file) = tls_server(dir.path());
    let log = Log::default();
    let script = Script {
        tls: Some(acceptor.clone()),
        ..Script::default()
    };
    let fake = Fake::start(script, messages(1), log.clone()).await;
    let acct = tls_account(fake.port);
    let (state, inbox) = (MemState::new(log.clone()), MemInbox::default());
    // The system's roots only: the self-signed certificate is not trusted.
    if let Ok(untrusted) = Connector::new(None) {
        let e = sync_through(&untrusted, &acct, &state, &inbox, CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Tls, "{e}");
        assert!(e.message.contains("localhost"), "{e}");
        assert!(fake.commands("PASS").is_empty() && fake.commands("USER").is_empty());
    }

    // A line after STLS's +OK was sent before TLS: a man in the middle's, refused.
    let log = Log::default();
    let script = Script {
        tls: Some(acceptor),
        inject_after_stls: true,
        ..Script::default()
    };
    let fake = Fake::start(script, messages(1), log.clone()).await;
    let acct = tls_account(fake.port);
    let trusted = Connector::new(Some(&ca_file)).unwrap();
    let e = sync_through(&trusted, &acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("after its +OK to STLS"), "{e}");
    assert!(fake.commands("PASS").is_empty());
}

#[tokio::test]
async fn a_cancelled_run_stuck_in_a_message_gives_up_after_a_grace() {
    let log = Log::default();
    let script = Script {
        stall_at_retr: Some(2),
        ..Script::default()
    };
    let fake = Fake::start(script, messages(3), log.clone()).await;
    let state = MemState::new(log.clone());
    let cancel = CancellationToken::new();
    let inbox = MemInbox {
        cancel_after: Some((1, cancel.clone())),
        ..MemInbox::default()
    };
    let acct = account(
        fake.port,
        FetchOptions {
            keep: false,
            ..FetchOptions::default()
        },
    );
    let report = sync_with(&acct, &state, &inbox, cancel).await.unwrap();
    assert_eq!((report.fetched, report.deleted), (1, 0));
    // Delivered and recorded, but the connection was dropped without QUIT: its deletion
    // waits for the next run, and the server deleted nothing.
    assert!(state.seen()["u1"].delete_pending);
    assert!(fake.commands("QUIT").is_empty() && fake.commands("DELE").is_empty());
    assert_eq!(fake.uids().len(), 3);
}

#[tokio::test]
async fn auth_plain_sends_a_long_response_after_the_challenge() {
    let log = Log::default();
    let mut script = Script::default();
    script.capa.as_mut().unwrap().push("SASL PLAIN".into());
    let fake = Fake::start(script, messages(1), log.clone()).await;
    // RFC 5034 §4: a command line is at most 255 octets, so this one waits for "+ ".
    let user = format!("{}@example.net", "u".repeat(200));
    let mut acct = account(fake.port, FetchOptions::default());
    acct.url.user = user.clone();
    let (state, inbox) = (MemState::new(log.clone()), MemInbox::default());
    let report = sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.fetched, 1);
    assert_eq!(fake.commands("AUTH"), ["AUTH PLAIN"]);
    assert_eq!(fake.commands("(AUTH continuation)").len(), 1);
    assert_eq!(fake.commands("(authcid"), [format!("(authcid {user})")]);

    // A short one goes on the command line.
    let log = Log::default();
    let mut script = Script::default();
    script.capa.as_mut().unwrap().push("SASL PLAIN".into());
    let fake = Fake::start(script, messages(1), log.clone()).await;
    let acct = account(fake.port, FetchOptions::default());
    sync_with(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert!(fake.commands("(AUTH continuation)").is_empty());
    assert_eq!(fake.commands("(authcid"), ["(authcid bob)"]);
}

/// Progress as the CLI's bar sees it.
#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl crate::state::Progress for Seen {
    fn folder(&self, _: &FetchAccount, folder: &str, new: u64, bytes: u64) {
        self.0
            .lock()
            .unwrap()
            .push(format!("folder {folder} {new} {bytes}"));
    }
    fn message(&self, _: &FetchAccount, bytes: u64) {
        self.0.lock().unwrap().push(format!("message {bytes}"));
    }
}

#[tokio::test]
async fn a_rate_limit_fetches_one_at_a_time_and_progress_is_told() {
    let log = Log::default();
    let msgs = messages(5);
    let sizes: u64 = msgs.iter().map(|m| m.body.len() as u64).sum();
    let fake = Fake::start(Script::default(), msgs, log.clone()).await;
    let acct = account(
        fake.port,
        FetchOptions {
            rate_limit: Some(60_000),
            ..FetchOptions::default()
        },
    );
    let (state, inbox) = (MemState::new(log.clone()), MemInbox::default());
    let connector = Connector::new(None).unwrap();
    let password = Secret::new(PASSWORD);
    let progress = Seen::default();
    let run = Run {
        account: &acct,
        password: &password,
        connector: &connector,
        state: &state,
        inbox: &inbox,
        progress: &progress,
        cancel: CancellationToken::new(),
    };
    let report = super::sync(&run).await.unwrap();
    assert_eq!(report.fetched, 5);
    assert_eq!(report.bytes, sizes);
    let retrs = fake.commands("RETR");
    assert_eq!(retrs.len(), 5);
    assert!(
        retrs.iter().all(|r| !r.ends_with("(pipelined)")),
        "{retrs:?}"
    );
    let told = progress.0.lock().unwrap().clone();
    assert_eq!(told[0], format!("folder INBOX 5 {sizes}"));
    assert_eq!(told.len(), 6);
    let bytes: u64 = told[1..]
        .iter()
        .map(|t| t["message ".len()..].parse::<u64>().unwrap())
        .sum();
    assert_eq!(bytes, sizes);
}

#[tokio::test]
async fn pop3s_is_tls_from_the_first_octet() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, ca_file) = tls_server(dir.path());
    let log = Log::default();
    let script = Script {
        tls: Some(acceptor),
        implicit_tls: true,
        ..Script::default()
    };
    let fake = Fake::start(script, messages(2), log.clone()).await;
    let mut acct = tls_account(fake.port);
    acct.url = RemoteUrl::parse(&format!("pop3s://bob@localhost:{}", fake.port)).unwrap();
    let (state, inbox) = (MemState::new(log.clone()), MemInbox::default());
    let trusted = Connector::new(Some(&ca_file)).unwrap();
    let report = sync_through(&trusted, &acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.fetched, 2);
    let log = log.lock().unwrap().clone();
    assert_eq!(log[0], "CAPA [tls]");
    let commands = log
        .iter()
        .filter(|l| !l.starts_with("record ") && !l.starts_with("forget "));
    assert!(commands.clone().count() >= 7);
    assert!(commands.clone().all(|l| l.ends_with("[tls]")), "{log:#?}");
    assert!(fake.commands("STLS").is_empty());
}
