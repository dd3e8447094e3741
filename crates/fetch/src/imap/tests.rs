//! Sync and login against scripted fake servers on loopback: each server answers every
//! command line with what a script function returns, and logs the commands it got.

use crate::state::{FolderState, SeenMessage};
use crate::{
    Connector, Delivered, ErrorKind, FetchAccount, FetchError, FetchOptions, FetchState,
    FetchedMessage, Inbox, LocalRefusal, NoProgress, Origin, RemoteUrl, Run, RunReport, Secret,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

type Script = dyn Fn(&str) -> String + Send + Sync;

/// A fake IMAP server: greets, then answers each command line with `script(command)`, where
/// `TAG` at the start of a line stands for the command's tag.
struct Fake {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

/// A connection the fake serves: TCP, or TLS after STARTTLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Fake {
    async fn start(greeting: &str, script: Arc<Script>) -> Fake {
        Fake::start_tls(greeting, script, None).await
    }

    /// With `tls`, a STARTTLS the script answers with OK is followed by a handshake.
    async fn start_tls(
        greeting: &str,
        script: Arc<Script>,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Fake {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let greeting = greeting.to_string();
        let log2 = log.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let (script, log, tls) = (script.clone(), log2.clone(), tls.clone());
                let greeting = greeting.clone();
                tokio::spawn(async move {
                    let mut io: Box<dyn Io> = Box::new(s);
                    let _ = io.write_all(greeting.as_bytes()).await;
                    while let Some(plain) = Fake::session(io, &script, &log).await {
                        let Some(tls) = &tls else { break };
                        match tls.accept(plain).await {
                            Ok(t) => io = Box::new(t),
                            Err(_) => break,
                        }
                    }
                });
            }
        });
        Fake { port, log }
    }

    /// Serves commands; returns the connection when STARTTLS was accepted.
    async fn session(
        io: Box<dyn Io>,
        script: &Arc<Script>,
        log: &Mutex<Vec<String>>,
    ) -> Option<Box<dyn Io>> {
        let mut r = BufReader::new(io);
        let mut line = String::new();
        let mut last_tag = String::new();
        while r.read_line(&mut line).await.unwrap_or(0) > 0 {
            let l = line.trim_end().to_string();
            line.clear();
            // A line without a space continues the last command (SASL).
            let (tag, cmd) = match l.split_once(' ') {
                Some((t, c)) => (t.to_string(), c.to_string()),
                None => (last_tag.clone(), format!("+{l}")),
            };
            last_tag = tag.clone();
            let cmd = cmd.as_str();
            log.lock().unwrap().push(cmd.to_string());
            let reply = script(cmd);
            let out = reply
                .split_inclusive("\r\n")
                .map(|l| match l.strip_prefix("TAG ") {
                    Some(rest) => format!("{tag} {rest}"),
                    None => l.to_string(),
                })
                .collect::<String>();
            // A script line "CLOSE" hangs up (a server dying mid-session).
            let (out, hang_up) = match out.strip_suffix("CLOSE\r\n") {
                Some(o) => (o.to_string(), true),
                None => (out, false),
            };
            if r.get_mut().write_all(out.as_bytes()).await.is_err() || cmd == "LOGOUT" || hang_up {
                return None;
            }
            if cmd == "STARTTLS" && reply.starts_with("TAG OK") {
                return Some(r.into_inner());
            }
        }
        None
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// The common part of a server's script: capability, login, logout.
fn base(cmd: &str) -> Option<String> {
    Some(match cmd {
        "CAPABILITY" => {
            "* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS IDLE\r\nTAG OK done\r\n".into()
        }
        c if c.starts_with("AUTHENTICATE PLAIN ") => {
            "TAG OK [CAPABILITY IMAP4rev1 UIDPLUS IDLE] Logged in\r\n".into()
        }
        // Without SASL-IR (RFC 4959) the response comes after "+".
        "AUTHENTICATE PLAIN" => "+ \r\n".into(),
        "+AGFsaWNlAHNlY3JldA==" => "TAG OK Logged in\r\n".into(),
        "LOGOUT" => "* BYE bye\r\nTAG OK done\r\n".into(),
        _ => return None,
    })
}

fn msg(id: &str, body: &str) -> String {
    format!("Message-ID: <{id}>\r\nSubject: t\r\n\r\n{body}\r\n")
}

/// `* n FETCH (UID u FLAGS () BODY[] {len}\r\nbody)` for each (uid, message).
fn bodies(list: &[(u32, String)]) -> String {
    list.iter()
        .enumerate()
        .map(|(i, (uid, m))| {
            format!(
                "* {} FETCH (UID {uid} FLAGS () BODY[] {{{}}}\r\n{m})\r\n",
                i + 1,
                m.len()
            )
        })
        .collect()
}

fn sizes(list: &[(u32, String)]) -> String {
    list.iter()
        .enumerate()
        .map(|(i, (uid, m))| {
            format!(
                "* {} FETCH (UID {uid} RFC822.SIZE {} FLAGS ())\r\n",
                i + 1,
                m.len()
            )
        })
        .collect()
}

#[derive(Default)]
struct MemState(Mutex<HashMap<String, FolderState>>);

#[async_trait]
impl FetchState for MemState {
    async fn load(&self, _a: &str, folder: &str) -> Result<FolderState, FetchError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(folder)
            .cloned()
            .unwrap_or_default())
    }
    async fn record(&self, _a: &str, folder: &str, m: &[SeenMessage]) -> Result<(), FetchError> {
        let mut s = self.0.lock().unwrap();
        let f = s.entry(folder.into()).or_default();
        for m in m {
            f.seen.insert(m.id.clone(), m.clone());
        }
        Ok(())
    }
    async fn forget(&self, _a: &str, folder: &str, ids: &[String]) -> Result<(), FetchError> {
        let mut s = self.0.lock().unwrap();
        let f = s.entry(folder.into()).or_default();
        for id in ids {
            f.seen.remove(id);
        }
        Ok(())
    }
    async fn replace(&self, _a: &str, folder: &str, st: &FolderState) -> Result<(), FetchError> {
        self.0.lock().unwrap().insert(folder.into(), st.clone());
        Ok(())
    }
    async fn drop_account(&self, _a: &str) -> Result<(), FetchError> {
        self.0.lock().unwrap().clear();
        Ok(())
    }
}

/// Keeps bodies; refuses those containing "REFUSE", fails on "FAIL"; cancels `cancel_after` deliveries in.
#[derive(Default)]
struct MemInbox {
    got: Mutex<Vec<Vec<u8>>>,
    cancel_after: Option<(usize, CancellationToken)>,
}

#[async_trait]
impl Inbox for MemInbox {
    async fn deliver(&self, m: FetchedMessage<'_>) -> Result<Delivered, FetchError> {
        if m.raw.windows(4).any(|w| w == b"FAIL") {
            return Err(FetchError::local("the disk is full"));
        }
        if m.raw.windows(6).any(|w| w == b"REFUSE") {
            return Ok(Delivered::Refused(LocalRefusal(
                "5.1.1 no such user".into(),
            )));
        }
        let mut got = self.got.lock().unwrap();
        got.push(m.raw);
        if let Some((n, token)) = &self.cancel_after {
            if got.len() == *n {
                token.cancel();
            }
        }
        Ok(Delivered::Stored)
    }
}

fn account(port: u16, scheme: &str, options: FetchOptions) -> FetchAccount {
    FetchAccount {
        id: "7".into(),
        local: "alice@example.test".into(),
        url: RemoteUrl::parse(&format!("{scheme}://alice@127.0.0.1:{port}")).unwrap(),
        options,
        origin: Origin::Cli,
    }
}

async fn run_sync(
    acct: &FetchAccount,
    state: &MemState,
    inbox: &MemInbox,
    cancel: CancellationToken,
) -> Result<RunReport, FetchError> {
    let connector = Connector::new(None).unwrap();
    let password = Secret::new("secret");
    let run = Run {
        account: acct,
        password: &password,
        connector: &connector,
        state,
        inbox,
        progress: &NoProgress,
        cancel,
    };
    super::sync(&run).await
}

fn plaintext() -> FetchOptions {
    FetchOptions {
        allow_plaintext: true,
        ..FetchOptions::default()
    }
}

#[tokio::test]
async fn a_new_uidvalidity_matched_by_message_id_and_size_refetches_nothing() {
    let a = msg("a@x", "one");
    let b = msg("b@x", "two");
    let c = msg("c@x", "three");
    let (a2, b2, c2) = (a.clone(), b.clone(), c.clone());
    let script: Arc<Script> = Arc::new(move |cmd: &str| {
        if let Some(r) = base(cmd) {
            return r;
        }
        match cmd {
            "EXAMINE \"INBOX\"" => {
                "* 3 EXISTS\r\n* OK [UIDVALIDITY 2] new\r\nTAG OK [READ-ONLY] done\r\n".into()
            }
            "UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])" => {
                let mut out = String::new();
                for (i, (uid, m)) in [(11, &a2), (12, &b2), (13, &c2)].iter().enumerate() {
                    let h = format!("{}\r\n\r\n", m.lines().next().unwrap());
                    out.push_str(&format!(
                        "* {} FETCH (UID {uid} RFC822.SIZE {} BODY[HEADER.FIELDS (MESSAGE-ID)] {{{}}}\r\n{h})\r\n",
                        i + 1, m.len(), h.len()
                    ));
                }
                out + "TAG OK done\r\n"
            }
            "UID SEARCH ALL" => "* SEARCH 11 12 13\r\nTAG OK done\r\n".into(),
            "UID FETCH 13 (UID RFC822.SIZE FLAGS)" => {
                sizes(&[(13, c2.clone())]) + "TAG OK done\r\n"
            }
            "UID FETCH 13 (UID FLAGS BODY.PEEK[])" => {
                bodies(&[(13, c2.clone())]) + "TAG OK done\r\n"
            }
            _ => "TAG BAD unexpected\r\n".into(),
        }
    });
    let fake = Fake::start("* OK ready\r\n", script).await;
    let state = MemState::default();
    let fp = |m: &str, id: &str| Some(format!("<{id}>|{}", m.len()));
    state
        .replace(
            "7",
            "INBOX",
            &FolderState {
                uidvalidity: Some(1),
                seen: [("1", fp(&a, "a@x")), ("2", fp(&b, "b@x"))]
                    .into_iter()
                    .map(|(id, f)| {
                        (
                            id.to_string(),
                            SeenMessage {
                                id: id.into(),
                                fingerprint: f,
                                delete_pending: false,
                            },
                        )
                    })
                    .collect(),
            },
        )
        .await
        .unwrap();
    let inbox = MemInbox::default();
    let acct = account(fake.port, "imap", plaintext());
    let r = run_sync(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((r.fetched, r.duplicates), (1, 0), "{r:?}");
    assert_eq!(*inbox.got.lock().unwrap(), [c.into_bytes()]);
    let s = state.load("7", "INBOX").await.unwrap();
    assert_eq!(s.uidvalidity, Some(2));
    let mut ids: Vec<_> = s.seen.keys().cloned().collect();
    ids.sort();
    assert_eq!(ids, ["11", "12", "13"]);
    assert_eq!(fake.log().last().map(String::as_str), Some("LOGOUT"));
}

/// The members of a UID set (`1:3,5`).
fn members(set: &str) -> Vec<u32> {
    set.split(',')
        .flat_map(|p| match p.split_once(':') {
            Some((a, b)) => a.parse::<u32>().unwrap()..=b.parse().unwrap(),
            None => p.parse::<u32>().unwrap()..=p.parse().unwrap(),
        })
        .collect()
}

/// A server holding `messages` (UID, text) in its INBOX, UIDVALIDITY 5, writable, UIDPLUS:
/// `UID EXPUNGE` removes messages.
fn mailbox(messages: Vec<(u32, String)>) -> Arc<Script> {
    shared_mailbox(Arc::new(Mutex::new(messages)))
}

/// [`mailbox`] over messages the test changes while the client runs.
fn shared_mailbox(messages: Arc<Mutex<Vec<(u32, String)>>>) -> Arc<Script> {
    Arc::new(move |cmd: &str| {
        if let Some(r) = base(cmd) {
            return r;
        }
        let mut messages = messages.lock().unwrap();
        let uids: Vec<String> = messages.iter().map(|(u, _)| u.to_string()).collect();
        if cmd.starts_with("SELECT ") || cmd.starts_with("EXAMINE ") {
            return format!(
                "* {} EXISTS\r\n* OK [UIDVALIDITY 5] v\r\n* OK [UIDNEXT 99] n\r\nTAG OK done\r\n",
                messages.len()
            );
        }
        if cmd == "UID SEARCH ALL" {
            return format!("* SEARCH {}\r\nTAG OK done\r\n", uids.join(" "));
        }
        if cmd.starts_with("UID FETCH ") && cmd.ends_with("(UID RFC822.SIZE FLAGS)") {
            return sizes(&messages) + "TAG OK done\r\n";
        }
        if cmd.starts_with("UID FETCH ") && cmd.ends_with("(UID FLAGS BODY.PEEK[])") {
            return bodies(&messages) + "TAG OK done\r\n";
        }
        if cmd.starts_with("UID STORE ") {
            return "TAG OK done\r\n".into();
        }
        if let Some(set) = cmd.strip_prefix("UID EXPUNGE ") {
            let gone = members(set);
            messages.retain(|(u, _)| !gone.contains(u));
            return "TAG OK done\r\n".into();
        }
        "TAG BAD unexpected\r\n".into()
    })
}

#[tokio::test]
async fn a_refused_message_is_recorded_but_never_flagged_or_deleted() {
    let fake = Fake::start(
        "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS] ready\r\n",
        mailbox(vec![
            (1, msg("1@x", "fine")),
            (2, msg("2@x", "REFUSE me")),
            (3, msg("3@x", "fine too")),
        ]),
    )
    .await;
    let acct = account(
        fake.port,
        "imap",
        FetchOptions {
            keep: false,
            mark_seen: true,
            ..plaintext()
        },
    );
    let state = MemState::default();
    let inbox = MemInbox::default();
    let r = run_sync(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((r.fetched, r.refused, r.deleted), (2, 1, 2), "{r:?}");
    let log = fake.log();
    assert!(
        log.contains(&"UID STORE 1,3 +FLAGS.SILENT (\\Seen)".to_string()),
        "{log:?}"
    );
    assert!(
        log.contains(&"UID STORE 1,3 +FLAGS.SILENT (\\Deleted)".to_string()),
        "{log:?}"
    );
    assert!(log.contains(&"UID EXPUNGE 1,3".to_string()), "{log:?}");
    assert!(log.iter().any(|c| c.starts_with("SELECT ")), "{log:?}");
    // The refused one is remembered (not fetched again), not pending deletion; the deleted
    // ones are forgotten once the remote confirmed.
    let s = state.load("7", "INBOX").await.unwrap();
    assert_eq!(s.seen.len(), 1);
    assert!(!s.seen["2"].delete_pending);
    // Next run: nothing fetched, nothing deleted.
    let r = run_sync(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((r.fetched, r.refused, r.deleted), (0, 0, 0), "{r:?}");
}

#[tokio::test]
async fn cancel_stops_between_messages_records_and_logs_out() {
    let messages: Vec<(u32, String)> = (1..=6)
        .map(|u| (u, msg(&format!("{u}@x"), "body")))
        .collect();
    let fake = Fake::start("* OK ready\r\n", mailbox(messages)).await;
    let acct = account(fake.port, "imap", plaintext());
    let cancel = CancellationToken::new();
    let state = MemState::default();
    let inbox = MemInbox {
        cancel_after: Some((2, cancel.clone())),
        ..MemInbox::default()
    };
    let r = run_sync(&acct, &state, &inbox, cancel).await.unwrap();
    assert_eq!(r.fetched, 2, "{r:?}");
    assert_eq!(inbox.got.lock().unwrap().len(), 2);
    assert_eq!(state.load("7", "INBOX").await.unwrap().seen.len(), 2);
    assert_eq!(fake.log().last().map(String::as_str), Some("LOGOUT"));
}

#[tokio::test]
async fn starttls_absent_or_refused_is_a_tls_error_unless_plaintext_is_allowed() {
    // Absent.
    let fake = Fake::start(
        "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n",
        mailbox(vec![]),
    )
    .await;
    let acct = account(fake.port, "imap", FetchOptions::default());
    let e = run_sync(
        &acct,
        &MemState::default(),
        &MemInbox::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
    assert!(e.message.contains("allow_plaintext"), "{e}");
    assert!(
        !fake.log().iter().any(|c| c.starts_with("AUTHENTICATE")),
        "no login without TLS"
    );
    // Allowed: the same server is fetched.
    let acct = account(fake.port, "imap", plaintext());
    run_sync(
        &acct,
        &MemState::default(),
        &MemInbox::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap();

    // Offered, then refused.
    let script: Arc<Script> = Arc::new(|cmd: &str| match cmd {
        "STARTTLS" => "TAG NO [UNAVAILABLE] TLS is broken today\r\n".into(),
        _ => "TAG BAD unexpected\r\n".into(),
    });
    let fake = Fake::start(
        "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n",
        script,
    )
    .await;
    let acct = account(fake.port, "imap", plaintext());
    let e = run_sync(
        &acct,
        &MemState::default(),
        &MemInbox::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
    assert!(e.message.contains("TLS is broken today"), "{e}");

    // Data injected after the go-ahead, before TLS.
    let script: Arc<Script> = Arc::new(|cmd: &str| match cmd {
        "STARTTLS" => "TAG OK Begin TLS\r\n* OK injected\r\n".into(),
        _ => "TAG BAD unexpected\r\n".into(),
    });
    let fake = Fake::start("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n", script).await;
    let acct = account(fake.port, "imap", FetchOptions::default());
    let e = run_sync(
        &acct,
        &MemState::default(),
        &MemInbox::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("injection"), "{e}");
}

#[tokio::test]
async fn login_falls_back_to_login_and_a_refusal_is_an_auth_error() {
    let script: Arc<Script> = Arc::new(|cmd: &str| match cmd {
        "CAPABILITY" => "* CAPABILITY IMAP4rev1\r\nTAG OK done\r\n".into(),
        c if c.starts_with("LOGIN ") => {
            "TAG NO [AUTHENTICATIONFAILED] Authentication failed.\r\n".into()
        }
        _ => "TAG BAD unexpected\r\n".into(),
    });
    let fake = Fake::start("* OK ready\r\n", script).await;
    let acct = account(fake.port, "imap", plaintext());
    let e = run_sync(
        &acct,
        &MemState::default(),
        &MemInbox::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    assert!(e.message.contains("Authentication failed."), "{e}");
    assert!(
        e.message
            .contains(&format!("imap://alice@127.0.0.1:{}", fake.port)),
        "{e}"
    );
    assert_eq!(fake.log()[1], "LOGIN \"alice\" \"secret\"");

    // LOGINDISABLED without AUTH=PLAIN: no password is sent at all.
    let script: Arc<Script> = Arc::new(|_: &str| "TAG BAD unexpected\r\n".into());
    let fake = Fake::start(
        "* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] ready\r\n",
        script,
    )
    .await;
    let acct = account(fake.port, "imap", plaintext());
    let e = run_sync(
        &acct,
        &MemState::default(),
        &MemInbox::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    assert!(
        !fake.log().iter().any(|c| c.starts_with("LOGIN")),
        "{:?}",
        fake.log()
    );
}

#[tokio::test]
async fn bye_is_a_remote_error_with_its_text() {
    let script: Arc<Script> = Arc::new(|cmd: &str| {
        if let Some(r) = base(cmd) {
            return r;
        }
        "* BYE [UNAVAILABLE] Server shutting down\r\n".into()
    });
    let fake = Fake::start("* OK ready\r\n", script).await;
    let acct = account(fake.port, "imap", plaintext());
    let e = run_sync(
        &acct,
        &MemState::default(),
        &MemInbox::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Remote, "{e}");
    assert!(e.message.contains("Server shutting down"), "{e}");
}

#[tokio::test]
async fn starttls_upgrades_verifies_the_certificate_and_logs_in_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = postern_net::load_or_generate(None, None, dir.path(), "localhost").unwrap();
    let inner = mailbox(vec![(1, msg("t@x", "over TLS"))]);
    let script: Arc<Script> = Arc::new(move |cmd: &str| match cmd {
        "STARTTLS" => "TAG OK Begin TLS negotiation now\r\n".into(),
        other => inner(other),
    });
    // Before TLS: STARTTLS and no login; after it (CAPABILITY asked again), AUTH=PLAIN.
    let fake = Fake::start_tls(
        "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n",
        script,
        Some(ctx.acceptor.clone()),
    )
    .await;
    let acct = account(fake.port, "imap", FetchOptions::default());

    // The self-signed certificate is refused until its CA is configured.
    let e = run_sync(
        &acct,
        &MemState::default(),
        &MemInbox::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");

    let connector = Connector::new(Some(&ctx.cert_path)).unwrap();
    let password = Secret::new("secret");
    let (state, inbox) = (MemState::default(), MemInbox::default());
    let run = Run {
        account: &acct,
        password: &password,
        connector: &connector,
        state: &state,
        inbox: &inbox,
        progress: &NoProgress,
        cancel: CancellationToken::new(),
    };
    let r = super::sync(&run).await.unwrap();
    assert_eq!(r.fetched, 1);
    let log = fake.log();
    let tls_at = log.iter().rposition(|c| c == "STARTTLS").unwrap();
    let auth_at = log
        .iter()
        .rposition(|c| c.starts_with("AUTHENTICATE"))
        .unwrap();
    assert!(tls_at < auth_at, "{log:?}");
    assert_eq!(
        log[tls_at + 1],
        "CAPABILITY",
        "capabilities asked again over TLS: {log:?}"
    );
}

/// Counts syncs.
#[derive(Default)]
struct Syncs(Mutex<Vec<Result<RunReport, FetchError>>>);

impl crate::Progress for Syncs {
    fn synced(&self, _a: &FetchAccount, outcome: &Result<RunReport, FetchError>) {
        self.0.lock().unwrap().push(outcome.clone());
    }
}

#[tokio::test]
async fn watch_polls_a_server_without_idle_and_stops_when_cancelled() {
    let messages = Arc::new(Mutex::new(vec![(1, msg("p1@x", "first"))]));
    // base() announces IDLE after login; this server does not.
    let inner = shared_mailbox(messages.clone());
    let script: Arc<Script> = Arc::new(move |cmd: &str| {
        if cmd.starts_with("AUTHENTICATE PLAIN ") {
            return "TAG OK [CAPABILITY IMAP4rev1 UIDPLUS] Logged in\r\n".into();
        }
        if cmd == "IDLE" {
            return "TAG BAD no IDLE here\r\n".into();
        }
        inner(cmd)
    });
    let fake = Fake::start(
        "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hi\r\n",
        script,
    )
    .await;
    let acct = account(
        fake.port,
        "imap",
        FetchOptions {
            interval: std::time::Duration::from_secs(1),
            ..plaintext()
        },
    );
    let (state, inbox, syncs) = (MemState::default(), MemInbox::default(), Syncs::default());
    let connector = Connector::new(None).unwrap();
    let password = Secret::new("secret");
    let cancel = CancellationToken::new();
    let run = Run {
        account: &acct,
        password: &password,
        connector: &connector,
        state: &state,
        inbox: &inbox,
        progress: &syncs,
        cancel: cancel.clone(),
    };
    let driver = async {
        let wait = |n: usize| {
            let inbox = &inbox;
            async move {
                let t = std::time::Instant::now();
                while inbox.got.lock().unwrap().len() < n {
                    assert!(t.elapsed().as_secs() < 60, "no mail after 60 s");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        };
        wait(1).await;
        messages.lock().unwrap().push((2, msg("p2@x", "second")));
        wait(2).await;
        cancel.cancel();
    };
    let (result, ()) = tokio::join!(super::watch(&run), driver);
    result.unwrap();
    assert_eq!(inbox.got.lock().unwrap().len(), 2);
    let syncs = syncs.0.lock().unwrap();
    assert!(
        syncs.len() >= 2 && syncs.iter().all(|s| s.is_ok()),
        "{syncs:?}"
    );
    let log = fake.log();
    assert!(!log.iter().any(|c| c == "IDLE"), "{log:?}");
    assert_eq!(log.last().map(String::as_str), Some("LOGOUT"));
}

#[tokio::test]
async fn a_silent_server_is_a_network_error_after_the_time_out() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        drop(s);
    });
    let acct = account(port, "imap", plaintext());
    let connector = Connector::new(None).unwrap();
    let password = Secret::new("secret");
    let (state, inbox) = (MemState::default(), MemInbox::default());
    let run = Run {
        account: &acct,
        password: &password,
        connector: &connector,
        state: &state,
        inbox: &inbox,
        progress: &NoProgress,
        cancel: CancellationToken::new(),
    };
    let e = super::client::Client::login_with_timeout(&run, std::time::Duration::from_millis(200))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::Network, "{e}");
    assert!(e.message.contains("sent nothing"), "{e}");
    server.abort();
}

#[tokio::test]
async fn a_local_failure_stops_the_run_after_recording_and_flagging_what_was_delivered() {
    let fake = Fake::start(
        "* OK ready\r\n",
        mailbox(vec![
            (1, msg("1@x", "fine")),
            (2, msg("2@x", "FAIL here")),
            (3, msg("3@x", "never reached")),
        ]),
    )
    .await;
    let acct = account(
        fake.port,
        "imap",
        FetchOptions {
            mark_seen: true,
            ..plaintext()
        },
    );
    let (state, inbox) = (MemState::default(), MemInbox::default());
    let e = run_sync(&acct, &state, &inbox, CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Local, "{e}");
    let s = state.load("7", "INBOX").await.unwrap();
    assert_eq!(s.seen.keys().collect::<Vec<_>>(), ["1"]);
    let log = fake.log();
    assert!(
        log.contains(&"UID STORE 1 +FLAGS.SILENT (\\Seen)".to_string()),
        "{log:?}"
    );
    assert_eq!(log.last().map(String::as_str), Some("LOGOUT"));
}

#[tokio::test]
async fn watch_returns_the_error_when_the_connection_dies_while_idling() {
    let inner = mailbox(vec![(1, msg("i@x", "one"))]);
    let script: Arc<Script> = Arc::new(move |cmd: &str| match cmd {
        // RFC 2177: "+ idling", then the server goes away.
        "IDLE" => "+ idling\r\nCLOSE\r\n".into(),
        other => inner(other),
    });
    let fake = Fake::start("* OK ready\r\n", script).await;
    let acct = account(fake.port, "imap", plaintext());
    let (state, inbox, syncs) = (MemState::default(), MemInbox::default(), Syncs::default());
    let connector = Connector::new(None).unwrap();
    let password = Secret::new("secret");
    let run = Run {
        account: &acct,
        password: &password,
        connector: &connector,
        state: &state,
        inbox: &inbox,
        progress: &syncs,
        cancel: CancellationToken::new(),
    };
    let e = super::watch(&run).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network, "{e}");
    assert!(e.message.contains("closed the connection"), "{e}");
    assert_eq!(inbox.got.lock().unwrap().len(), 1);
    let syncs = syncs.0.lock().unwrap();
    assert_eq!(syncs.len(), 1);
    assert!(syncs[0].is_ok(), "{syncs:?}");
}
