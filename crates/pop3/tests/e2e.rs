//! End-to-end tests of the POP3 server, in process, over loopback, with real independent clients
//! (Python's poplib, curl, fetchmail) and a raw socket for protocol corners. The IMAP side of the
//! concurrency test is played through the store API, as an IMAP session would use it.

use postern_config::{Config, Service, Source};
use postern_directory::{
    AuthThrottle, DirectoryOptions, PasswordParams, SqliteDirectory, ThrottleConfig,
};
use postern_net::{bind_service, BindPolicy, ConnectionLimiter, Server};
use postern_pop3::{Pop3Server, Pop3Settings};
use postern_store::maildir::MaildirStore;
use postern_store::{FlagOp, Flags, MailboxEvent, SystemFlags, UidSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

const USER: &str = "alice@example.org";
const PASS: &str = "correct horse";
const APOP_SECRET: &str = "tanstaaf";

struct Harness {
    dir: tempfile::TempDir,
    store: Arc<MaildirStore>,
    directory: Arc<SqliteDirectory>,
    pop3: SocketAddr,
    pop3s: SocketAddr,
    ca: PathBuf,
    server: Option<Server>,
    pop: Pop3Server,
}

impl Harness {
    async fn new() -> Harness {
        Harness::with(Pop3Settings::default(), ThrottleConfig::default()).await
    }

    async fn with(settings: Pop3Settings, throttle: ThrottleConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_toml(
            &format!(
                "hostname = \"mx.test\"\ndata_dir = \"{}\"\n",
                dir.path().display()
            ),
            Source::Defaults,
        )
        .unwrap();
        let directory = SqliteDirectory::open_with(
            dir.path().join("directory.sqlite"),
            DirectoryOptions {
                password_params: PasswordParams::insecure_fast_for_tests(),
                ..DirectoryOptions::default()
            },
        )
        .unwrap();
        directory.add_domain("example.org").unwrap();
        directory.add_account(USER, PASS).unwrap();
        directory.add_account("bob@example.org", PASS).unwrap();
        directory.set_apop_secret(USER, APOP_SECRET).unwrap();
        let store = MaildirStore::open(dir.path().join("mail"), "mx.test").unwrap();
        store.create_account(USER).unwrap();
        store.create_account("bob@example.org").unwrap();
        let tls =
            postern_net::load_or_generate(None, None, &dir.path().join("tls"), "mx.test").unwrap();
        let ca = tls.cert_path.clone();
        let (store, directory) = (Arc::new(store), Arc::new(directory));
        let pop = Pop3Server::with_settings(
            Arc::new(config),
            directory.clone(),
            store.clone(),
            Arc::new(AuthThrottle::new(throttle)),
            settings,
        );
        let server = Server::new(ConnectionLimiter::new(100, 100), Some(tls));
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut addrs = Vec::new();
        for service in [Service::Pop3, Service::Pop3s] {
            let bound = bind_service(service, &[loopback], BindPolicy::default())
                .await
                .unwrap()
                .remove(0);
            addrs.push(bound.local_addr);
            server.spawn_listener(bound, Arc::new(pop.clone()));
        }
        Harness {
            dir,
            store,
            directory,
            pop3: addrs[0],
            pop3s: addrs[1],
            ca,
            server: Some(server),
            pop,
        }
    }

    /// Appends `n` messages to alice's INBOX, the way SMTP delivery would; returns their UIDs.
    fn fill(&self, n: usize) -> Vec<u32> {
        (1..=n)
            .map(|i| {
                let body = format!(
                    "From: bob@example.org\nTo: alice@example.org\nSubject: message {i}\n\nline one of {i}\n.a line starting with a dot\n..two dots\nlast line\n"
                );
                self.store
                    .append(USER, "INBOX", body.as_bytes(), &Flags::default(), None)
                    .unwrap()
                    .uid
            })
            .collect()
    }

    fn inbox_uids(&self) -> Vec<u32> {
        self.store
            .select(USER, "INBOX", false)
            .unwrap()
            .messages
            .iter()
            .map(|m| m.uid)
            .collect()
    }

    fn work(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

async fn run(cmd: &mut tokio::process::Command) -> Output {
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.kill_on_drop(true).output())
        .await
        .expect("client finished in time")
        .expect("client started");
    out
}

fn assert_ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn python(script: &str, args: &[String]) -> String {
    let out = run(tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args))
    .await;
    assert_ok(&out, "python3")
}

/// A raw POP3 client for protocol corners no library exposes.
struct Raw {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> (Raw, String) {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut c = Raw {
            r: BufReader::new(r),
            w,
        };
        let greeting = c.line().await;
        (c, greeting)
    }

    async fn line(&mut self) -> String {
        let mut s = String::new();
        tokio::time::timeout(Duration::from_secs(10), self.r.read_line(&mut s))
            .await
            .expect("reply in time")
            .unwrap();
        s
    }

    async fn send(&mut self, line: &str) {
        self.w.write_all(line.as_bytes()).await.unwrap();
        self.w.write_all(b"\r\n").await.unwrap();
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.send(line).await;
        self.line().await
    }

    /// The lines of a multi-line response after its status line, unstuffed, without the ".".
    async fn multi(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let l = self.line().await;
            assert!(l.ends_with("\r\n"), "CRLF line ends: {l:?}");
            let l = l.trim_end_matches("\r\n");
            if l == "." {
                return out;
            }
            out.push(l.strip_prefix('.').unwrap_or(l).to_owned());
        }
    }

    async fn login(addr: SocketAddr) -> Raw {
        let (mut c, _) = Raw::connect(addr).await;
        assert!(c.cmd(&format!("USER {USER}")).await.starts_with("+OK"));
        let r = c.cmd(&format!("PASS {PASS}")).await;
        assert!(r.starts_with("+OK"), "{r}");
        c
    }

    async fn closed(&mut self) -> bool {
        let mut s = String::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.r.read_line(&mut s)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

const POPLIB_SESSION: &str = r#"
import poplib, sys
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = poplib.POP3(host, port)
assert b'<' in c.getwelcome(), c.getwelcome()
c.user(user); c.pass_(pw)
n, size = c.stat()
assert n == 3, (n, size)
resp, listing, _ = c.list()
sizes = [int(l.split()[1]) for l in listing]
assert sum(sizes) == size, (sizes, size)
resp, lines, octets = c.retr(2)
assert resp.startswith(b'+OK'), resp
assert b'.a line starting with a dot' in lines and b'..two dots' in lines, lines
# The announced size is what arrives with CRLF line ends (RFC 1939 section 11).
assert sum(len(l) + 2 for l in lines) == sizes[1], (lines, sizes[1])
resp, top, _ = c.top(1, 1)
assert top[-2:] == [b'', b'line one of 1'], top
resp, top, _ = c.top(1, 0)
assert top[-1] == b'' and b'Subject: message 1' in top, top
resp, uidl, _ = c.uidl()
assert len(uidl) == 3
assert c.uidl(3).split()[2] == uidl[2].split()[1]
c.dele(1)
try:
    c.retr(1); raise SystemExit('deleted message retrieved')
except poplib.error_proto as e:
    assert b'deleted' in e.args[0], e
assert c.stat()[0] == 2
c.rset()
assert c.stat()[0] == 3
c.dele(3)
print(' '.join(l.decode().split()[1] for l in uidl))
print(c.quit().decode())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poplib_user_pass_top_uidl_rset_dele_quit_and_stable_uidl() {
    let h = Harness::new().await;
    let uids = h.fill(3);
    let out = python(
        POPLIB_SESSION,
        &[
            "127.0.0.1".into(),
            h.pop3.port().to_string(),
            USER.into(),
            PASS.into(),
        ],
    )
    .await;
    let mut lines = out.lines();
    let first_uidl: Vec<String> = lines
        .next()
        .unwrap()
        .split(' ')
        .map(str::to_owned)
        .collect();
    assert!(lines.next().unwrap().starts_with("+OK"), "{out}");
    // Only message 3 went: DELE 1 was undone by RSET.
    assert_eq!(h.inbox_uids(), &uids[..2]);

    // UIDL survives a new session and a reindex.
    let list_uidl = r#"
import poplib, sys
c = poplib.POP3(sys.argv[1], int(sys.argv[2])); c.user(sys.argv[3]); c.pass_(sys.argv[4])
print(' '.join(l.decode().split()[1] for l in c.uidl()[1])); c.quit()
"#;
    let args = [
        "127.0.0.1".to_string(),
        h.pop3.port().to_string(),
        USER.into(),
        PASS.into(),
    ];
    let again = python(list_uidl, &args).await;
    assert_eq!(again.trim(), first_uidl[..2].join(" "));
    h.store.reindex(USER).unwrap();
    let after_reindex = python(list_uidl, &args).await;
    assert_eq!(after_reindex.trim(), first_uidl[..2].join(" "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poplib_apop() {
    let h = Harness::new().await;
    h.fill(2);
    let script = r#"
import poplib, sys
host, port, user, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = poplib.POP3(host, port)
print(c.apop(user, secret).decode()); print(c.stat()); c.quit()
for who, s in [(user, 'wrong'), ('bob@example.org', secret)]:
    c = poplib.POP3(host, port)
    try:
        c.apop(who, s); raise SystemExit('APOP with a bad secret succeeded')
    except poplib.error_proto as e:
        assert e.args[0].startswith(b'-ERR [AUTH]'), e
    c.quit()
"#;
    let out = python(
        script,
        &[
            "127.0.0.1".into(),
            h.pop3.port().to_string(),
            USER.into(),
            APOP_SECRET.into(),
        ],
    )
    .await;
    assert!(out.starts_with("+OK maildrop has 2 messages"), "{out}");
    // Clearing the secret turns APOP off for the account.
    h.directory.clear_apop_secret(USER).unwrap();
    let (mut c, greeting) = Raw::connect(h.pop3).await;
    let ts = &greeting[greeting.find('<').unwrap()..=greeting.find('>').unwrap()];
    let digest = postern_pop3::authorization::apop_digest(ts, APOP_SECRET);
    assert!(c
        .cmd(&format!("APOP {USER} {digest}"))
        .await
        .starts_with("-ERR [AUTH]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_policy_needs_stls_and_pop3s_works() {
    let h = Harness::with(
        Pop3Settings {
            trust_loopback: false,
            ..Pop3Settings::default()
        },
        ThrottleConfig::default(),
    )
    .await;
    h.fill(1);
    let script = r#"
import poplib, ssl, sys
host, port, sport, user, pw, ca = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
c = poplib.POP3(host, port)
caps = c.capa()
# Only SCRAM, which sends no password, before TLS.
assert 'USER' not in caps and caps['SASL'] == ['SCRAM-SHA-256'] and 'STLS' in caps, caps
try:
    c.user(user); raise SystemExit('USER accepted in the clear')
except poplib.error_proto as e:
    assert e.args[0].startswith(b'-ERR [AUTH]'), e
ctx = ssl.create_default_context(cafile=ca)
c.stls(ctx)
caps = c.capa()
assert 'USER' in caps and caps['SASL'] == ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256', 'PLAIN', 'LOGIN'] and 'STLS' not in caps, caps
c.user(user); c.pass_(pw)
assert c.stat()[0] == 1
c.quit()
s = poplib.POP3_SSL('localhost', sport, context=ctx)
s.user(user); s.pass_(pw)
print(s.retr(1)[1][2].decode()); s.quit()
"#;
    let out = python(
        script,
        &[
            "127.0.0.1".into(),
            h.pop3.port().to_string(),
            h.pop3s.port().to_string(),
            USER.into(),
            PASS.into(),
            h.ca.display().to_string(),
        ],
    )
    .await;
    assert_eq!(out.trim(), "Subject: message 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_list_retr_dele_with_sasl() {
    let h = Harness::new().await;
    let uids = h.fill(3);
    let base = format!("pop3://127.0.0.1:{}", h.pop3.port());
    let creds = format!("{USER}:{PASS}");
    // LIST with AUTH PLAIN and an initial response (RFC 5034 SASL-IR).
    let out = run(tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--sasl-ir",
            "--login-options",
            "AUTH=PLAIN",
            "-u",
            &creds,
        ])
        .arg(format!("{base}/")))
    .await;
    let list = assert_ok(&out, "curl LIST");
    assert_eq!(list.lines().count(), 3, "{list}");
    // RETR with AUTH LOGIN (challenges).
    let out = run(tokio::process::Command::new("curl")
        .args(["-sS", "--login-options", "AUTH=LOGIN", "-u", &creds])
        .arg(format!("{base}/2")))
    .await;
    let msg = assert_ok(&out, "curl RETR");
    assert!(
        msg.contains("Subject: message 2\r\n") && msg.contains("\r\n.a line starting"),
        "{msg:?}"
    );
    // DELE over pop3s, verified against the generated CA.
    let out = run(tokio::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&h.ca)
        .args([
            "--resolve",
            &format!("localhost:{}:127.0.0.1", h.pop3s.port()),
        ])
        .args(["-X", "DELE", "-I", "-u", &creds])
        .arg(format!("pop3s://localhost:{}/1", h.pop3s.port())))
    .await;
    assert_ok(&out, "curl DELE");
    assert_eq!(h.inbox_uids(), &uids[1..]);
    // Wrong password: curl fails, nothing changes.
    let out = run(tokio::process::Command::new("curl")
        .args(["-sS", "-u", &format!("{USER}:nope")])
        .arg(format!("{base}/")))
    .await;
    assert!(!out.status.success());
}

async fn fetchmail(h: &Harness, name: &str, port: u16, options: &str) -> (String, String) {
    let w = h.work();
    let mbox = w.join(format!("{name}.mbox"));
    let rc = w.join(format!("{name}.rc"));
    std::fs::write(
        &rc,
        format!(
            "poll \"127.0.0.1\" service {port} proto pop3 user \"{USER}\" password \"{PASS}\" {options} mda \"cat >> {}\"\n",
            mbox.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = run(tokio::process::Command::new("fetchmail")
        .arg("-f")
        .arg(&rc)
        .arg("-i")
        .arg(w.join(format!("{name}.ids")))
        .arg("--pidfile")
        .arg(w.join(format!("{name}.pid")))
        .args(["--nosyslog", "-v"])
        .env("HOME", &w))
    .await;
    let log = assert_ok(&out, "fetchmail");
    (std::fs::read_to_string(&mbox).unwrap_or_default(), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchmail_keep_and_flush_over_pop3_and_pop3s() {
    let h = Harness::new().await;
    let uids = h.fill(4);
    // Keep mode, plain POP3 (loopback), no STLS.
    let (mbox, _) = fetchmail(&h, "keep", h.pop3.port(), "keep fetchall sslproto \"\"").await;
    assert_eq!(mbox.matches("Subject: message ").count(), 4, "{mbox}");
    assert!(mbox.contains("\n.a line starting with a dot\n"), "{mbox}");
    assert_eq!(h.inbox_uids(), uids);
    // Keep mode over POP3 with STLS, certificate checked against the generated CA.
    let ca = h.ca.display().to_string();
    let (mbox, log) = fetchmail(
        &h,
        "stls",
        h.pop3.port(),
        &format!("keep fetchall sslproto \"tls1.2+\" sslcertck sslcertfile \"{ca}\" sslcommonname localhost"),
    )
    .await;
    assert!(log.contains("STLS"), "{log}");
    assert_eq!(mbox.matches("Subject: message ").count(), 4);
    // Flush mode (delete after download) over POP3S.
    let (mbox, _) = fetchmail(
        &h,
        "flush",
        h.pop3s.port(),
        &format!("fetchall ssl sslcertck sslcertfile \"{ca}\" sslcommonname localhost"),
    )
    .await;
    assert_eq!(mbox.matches("Subject: message ").count(), 4);
    assert!(h.inbox_uids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_exchanges_and_cancel() {
    let h = Harness::new().await;
    h.fill(1);
    use base64::Engine as _;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let (mut c, _) = Raw::connect(h.pop3).await;
    // PLAIN without initial response: empty challenge, then the response; "*" cancels.
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ \r\n");
    assert!(c.cmd("*").await.starts_with("-ERR"));
    assert_eq!(
        c.cmd("AUTH LOGIN").await,
        format!("+ {}\r\n", b64(b"Username:"))
    );
    assert_eq!(
        c.cmd(&b64(USER.as_bytes())).await,
        format!("+ {}\r\n", b64(b"Password:"))
    );
    assert!(c.cmd(&b64(b"wrong")).await.starts_with("-ERR [AUTH]"));
    assert!(c
        .cmd("AUTH PLAIN !!!")
        .await
        .starts_with("-ERR invalid base64"));
    let ir = b64(format!("\0{USER}\0{PASS}").as_bytes());
    let r = c.cmd(&format!("AUTH PLAIN {ir}")).await;
    assert!(r.starts_with("+OK maildrop has 1 messages"), "{r}");
    // After login: CAPA drops the login capabilities; AUTH is refused.
    c.send("CAPA").await;
    assert!(c.line().await.starts_with("+OK"));
    let caps = c.multi().await;
    assert!(caps.contains(&"UIDL".to_string()) && !caps.iter().any(|l| l.starts_with("SASL")));
    assert!(c.cmd("AUTH PLAIN").await.starts_with("-ERR"));
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maildrop_lock_pipelining_and_dropped_connection() {
    let h = Harness::new().await;
    let uids = h.fill(3);
    let mut first = Raw::login(h.pop3).await;
    assert!(h.pop.locks().is_locked(USER));
    // RFC 1939 §8: a second session for the same maildrop is refused with [IN-USE].
    let (mut second, _) = Raw::connect(h.pop3).await;
    assert!(second.cmd(&format!("USER {USER}")).await.starts_with("+OK"));
    assert!(second
        .cmd(&format!("PASS {PASS}"))
        .await
        .starts_with("-ERR [IN-USE]"));
    // Pipelined commands (RFC 2449 §6.6) are answered in order.
    first
        .w
        .write_all(b"DELE 1\r\nDELE 2\r\nSTAT\r\nNOOP\r\n")
        .await
        .unwrap();
    assert!(first.line().await.starts_with("+OK message 1 deleted"));
    assert!(first.line().await.starts_with("+OK message 2 deleted"));
    assert!(first.line().await.starts_with("+OK 1 "));
    assert_eq!(first.line().await, "+OK\r\n");
    // Dropping the connection without QUIT deletes nothing and releases the lock.
    drop(first);
    for _ in 0..100 {
        if !h.pop.locks().is_locked(USER) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.inbox_uids(), uids);
    assert!(second.cmd(&format!("USER {USER}")).await.starts_with("+OK"));
    assert!(second
        .cmd(&format!("PASS {PASS}"))
        .await
        .starts_with("+OK maildrop has 3"));
    assert!(second.cmd("QUIT").await.starts_with("+OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_and_imap_on_one_mailbox() {
    let h = Harness::new().await;
    let uids = h.fill(4);
    let mut events = h.store.subscribe(USER, "INBOX").unwrap();
    let mut pop = Raw::login(h.pop3).await;
    // The "IMAP session": STORE \Deleted on message 2, then EXPUNGE, while POP3 is in TRANSACTION.
    h.store
        .store_flags(
            USER,
            "INBOX",
            &UidSet::single(uids[1]),
            FlagOp::Add,
            &Flags::from_system(SystemFlags::DELETED),
            None,
        )
        .unwrap();
    assert_eq!(h.store.expunge(USER, "INBOX", None).unwrap(), vec![uids[1]]);
    // The IMAP session takes the expunge (and with it the last hold on the file).
    let mut expunged = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let MailboxEvent::Expunged { uid, .. } = ev {
            expunged.push(uid);
        }
    }
    // POP3 keeps its snapshot: message 2 is still listed, but RETR says clearly it is gone.
    assert!(pop.cmd("STAT").await.starts_with("+OK 4 "));
    let r = pop.cmd("RETR 2").await;
    assert!(r.starts_with("-ERR message 2 no longer exists"), "{r}");
    assert!(pop.cmd("TOP 2 1").await.starts_with("-ERR"));
    // The others are fine.
    assert!(pop.cmd("RETR 3").await.starts_with("+OK"));
    assert!(pop
        .multi()
        .await
        .contains(&"Subject: message 3".to_string()));
    // New mail arriving meanwhile is not in the snapshot.
    h.fill(1);
    assert!(pop.cmd("LIST 5").await.starts_with("-ERR"));
    // DELE 1 and 2 (2 already expunged), QUIT: the IMAP side sees EXPUNGE for message 1.
    assert!(pop.cmd("DELE 1").await.starts_with("+OK"));
    assert!(pop.cmd("DELE 2").await.starts_with("+OK"));
    assert!(pop.cmd("QUIT").await.starts_with("+OK"));
    while let Ok(Ok(ev)) = tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
        if let MailboxEvent::Expunged { uid, .. } = ev {
            expunged.push(uid);
            if uid == uids[0] {
                break;
            }
        }
    }
    assert_eq!(expunged, vec![uids[1], uids[0]]);
    assert_eq!(h.inbox_uids().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_idle_line_length_throttle_and_shutdown() {
    let mut h = Harness::with(
        Pop3Settings {
            idle_timeout: Duration::from_millis(500),
            max_line: 300,
            ..Pop3Settings::default()
        },
        ThrottleConfig {
            account_limit: 4,
            free_failures: 1,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            ..ThrottleConfig::default()
        },
    )
    .await;
    // Idle: closed without a response (RFC 1939 §3).
    let (mut idle, _) = Raw::connect(h.pop3).await;
    assert!(idle.closed().await);
    // An overlong line is refused; the session goes on.
    let (mut c, _) = Raw::connect(h.pop3).await;
    let long = format!("USER {}", "x".repeat(1000));
    assert_eq!(c.cmd(&long).await, "-ERR line too long\r\n");
    assert!(c.cmd("CAPA").await.starts_with("+OK"));
    c.multi().await;
    // Failed logins: [AUTH], and the session closes after three.
    for i in 0..3 {
        c.cmd(&format!("USER {USER}")).await;
        let r = c.cmd("PASS wrong").await;
        assert!(r.starts_with("-ERR [AUTH]"), "{i}: {r}");
    }
    assert!(c
        .line()
        .await
        .starts_with("-ERR [AUTH] too many failed logins"));
    assert!(c.closed().await);
    // One more failure blocks the account: even the right password gets [SYS/TEMP].
    let (mut c, _) = Raw::connect(h.pop3).await;
    c.cmd(&format!("USER {USER}")).await;
    assert!(c.cmd("PASS wrong").await.starts_with("-ERR [AUTH]"));
    c.cmd(&format!("USER {USER}")).await;
    let r = c.cmd(&format!("PASS {PASS}")).await;
    assert!(r.starts_with("-ERR [SYS/TEMP]"), "{r}");
    // Another account is unaffected; graceful shutdown says goodbye with -ERR.
    let (mut bob, _) = Raw::connect(h.pop3).await;
    bob.cmd("USER bob@example.org").await;
    assert!(bob.cmd(&format!("PASS {PASS}")).await.starts_with("+OK"));
    let server = h.server.take().unwrap();
    let stop = tokio::spawn(server.shutdown(Duration::from_secs(5)));
    let r = bob.line().await;
    assert!(r.starts_with("-ERR [SYS/TEMP] server shutting down"), "{r}");
    assert!(bob.closed().await);
    stop.await.unwrap();
}
