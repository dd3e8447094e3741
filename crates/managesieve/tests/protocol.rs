//! The ManageSieve server in process over loopback, driven with a raw socket through the
//! protocol's corners (RFC 5804): greeting, SASL with and without an initial response,
//! literals, quotas, NONEXISTENT, ACTIVE, ALREADYEXISTS, bad commands, UNAUTHENTICATE.

use base64::Engine as _;
use postern_config::{Config, Service, Source};
use postern_directory::{
    AuthThrottle, DirectoryOptions, PasswordParams, SqliteDirectory, ThrottleConfig,
};
use postern_managesieve::{ManageSieveServer, ManageSieveSettings};
use postern_net::{bind_service, BindPolicy, ConnectionLimiter, Server, Sessions};
use postern_store::maildir::MaildirStore;
use postern_store::ScriptStore;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

const USER: &str = "alice@example.org";
const PASS: &str = "correct horse";
const FILTER: &str = "require [\"fileinto\"];\r\nif header :contains \"subject\" \"[list]\" {\r\n  fileinto \"Lists\";\r\n}\r\n";

struct Harness {
    _dir: tempfile::TempDir,
    store: MaildirStore,
    sessions: Sessions,
    addr: SocketAddr,
    _server: Server,
}

impl Harness {
    async fn new(settings: ManageSieveSettings) -> Harness {
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
        let store = MaildirStore::open(dir.path().join("mail"), "mx.test").unwrap();
        let tls =
            postern_net::load_or_generate(None, None, &dir.path().join("tls"), "mx.test").unwrap();
        let scripts: Arc<dyn ScriptStore> = Arc::new(store.clone());
        let handler = ManageSieveServer::with_settings(
            Arc::new(config),
            Arc::new(directory),
            scripts,
            Arc::new(AuthThrottle::new(ThrottleConfig::default())),
            settings,
        );
        let sessions = Sessions::default();
        let handler = handler.with_sessions(sessions.clone());
        let server = Server::new(ConnectionLimiter::new(100, 100), Some(tls));
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let bound = bind_service(Service::ManageSieve, &[loopback], BindPolicy::default())
            .await
            .unwrap()
            .remove(0);
        let addr = bound.local_addr;
        server.spawn_listener(bound, Arc::new(handler));
        Harness {
            _dir: dir,
            store,
            sessions,
            addr,
            _server: server,
        }
    }

    async fn connect(&self) -> Client {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        let (r, w) = stream.into_split();
        let mut c = Client {
            r: BufReader::new(r),
            w,
        };
        let greeting = c.response().await;
        assert!(
            greeting.ends_with("OK \"postern ManageSieve ready\"\r\n"),
            "{greeting}"
        );
        c
    }

    async fn logged_in(&self) -> Client {
        let mut c = self.connect().await;
        let ir = b64(&format!("\0{USER}\0{PASS}"));
        let r = c.cmd(&format!("AUTHENTICATE \"PLAIN\" \"{ir}\"\r\n")).await;
        assert!(r.starts_with("OK"), "{r}");
        c
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

struct Client {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

impl Client {
    async fn line(&mut self) -> String {
        let mut l = String::new();
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), self.r.read_line(&mut l))
            .await
            .expect("server answered in time")
            .unwrap();
        assert!(n > 0, "connection closed");
        l
    }

    /// Everything up to and including the final OK/NO/BYE line, literals read whole.
    async fn response(&mut self) -> String {
        let mut out = String::new();
        loop {
            let l = self.line().await;
            out.push_str(&l);
            if let Some(n) = literal_len(&l) {
                let mut buf = vec![0; n];
                self.r.read_exact(&mut buf).await.unwrap();
                out.push_str(&String::from_utf8(buf).unwrap());
                let rest = self.line().await;
                out.push_str(&rest);
                if rest.starts_with("\r\n") && is_final(&l) {
                    return out;
                }
                continue;
            }
            if is_final(&l) {
                return out;
            }
        }
    }

    async fn send(&mut self, s: &str) {
        self.w.write_all(s.as_bytes()).await.unwrap();
    }

    async fn cmd(&mut self, s: &str) -> String {
        self.send(s).await;
        self.response().await
    }
}

fn is_final(line: &str) -> bool {
    ["OK", "NO", "BYE"]
        .iter()
        .any(|w| line.starts_with(&format!("{w} ")) || line.trim_end() == *w)
}

/// `{n}` at the end of a response line.
fn literal_len(line: &str) -> Option<usize> {
    let body = line.trim_end().strip_suffix('}')?;
    let open = body.rfind('{')?;
    body[open + 1..].parse().ok()
}

#[tokio::test]
async fn greeting_capabilities() {
    let h = Harness::new(ManageSieveSettings::default()).await;
    let mut c = h.connect().await;
    let caps = c.cmd("CAPABILITY\r\n").await;
    for want in [
        "\"IMPLEMENTATION\" \"postern",
        "\"SIEVE\" \"fileinto",
        "\"NOTIFY\" \"mailto\"",
        "\"STARTTLS\"\r\n",
        "\"MAXREDIRECTS\" \"",
        "\"VERSION\" \"1.0\"",
        "\"UNAUTHENTICATE\"\r\n",
    ] {
        assert!(caps.contains(want), "{want} missing: {caps}");
    }
    // Loopback is trusted for passwords by default: PLAIN is offered.
    assert!(
        caps.contains("\"SASL\" \"SCRAM-SHA-256 PLAIN LOGIN\""),
        "{caps}"
    );
    assert!(caps.ends_with("OK \"Capability completed\"\r\n"), "{caps}");
    let bye = c.cmd("LOGOUT\r\n").await;
    assert_eq!(bye, "OK \"Logout completed\"\r\n");
}

#[tokio::test]
async fn upload_list_activate_download_delete() {
    let h = Harness::new(ManageSieveSettings::default()).await;
    let mut c = h.logged_in().await;
    // A non-synchronising literal, as RFC 5804 §2.6's example.
    let r = c
        .cmd(&format!(
            "PUTSCRIPT \"lists\" {{{}+}}\r\n{FILTER}\r\n",
            FILTER.len()
        ))
        .await;
    assert_eq!(r, "OK \"PUTSCRIPT completed\"\r\n");
    // A synchronising literal is read the same way (no continuation in ManageSieve).
    let r = c.cmd("PUTSCRIPT \"other\" {5}\r\nkeep;\r\n").await;
    assert_eq!(r, "OK \"PUTSCRIPT completed\"\r\n");
    assert_eq!(
        c.cmd("LISTSCRIPTS\r\n").await,
        "\"lists\"\r\n\"other\"\r\nOK \"LISTSCRIPTS completed\"\r\n"
    );
    assert_eq!(
        c.cmd("SETACTIVE \"lists\"\r\n").await,
        "OK \"SETACTIVE completed\"\r\n"
    );
    assert_eq!(
        c.cmd("LISTSCRIPTS\r\n").await,
        "\"lists\" ACTIVE\r\n\"other\"\r\nOK \"LISTSCRIPTS completed\"\r\n"
    );
    // Scripts with line ends come back as a literal.
    let got = c.cmd("GETSCRIPT \"lists\"\r\n").await;
    assert_eq!(
        got,
        format!(
            "{{{}}}\r\n{FILTER}\r\nOK \"GETSCRIPT completed\"\r\n",
            FILTER.len()
        )
    );
    assert_eq!(
        h.store.active_script(USER).unwrap(),
        Some(("lists".into(), FILTER.into()))
    );
    // RFC 5804 §2.10: the active script cannot be deleted.
    let r = c.cmd("DELETESCRIPT \"lists\"\r\n").await;
    assert!(r.starts_with("NO (ACTIVE) "), "{r}");
    assert_eq!(
        c.cmd("DELETESCRIPT \"other\"\r\n").await,
        "OK \"DELETESCRIPT completed\"\r\n"
    );
    // RFC 5804 §2.11.1: RENAMESCRIPT keeps it active.
    assert_eq!(
        c.cmd("RENAMESCRIPT \"lists\" \"mailing lists\"\r\n").await,
        "OK \"RENAMESCRIPT completed\"\r\n"
    );
    assert_eq!(
        h.store.active_script(USER).unwrap().unwrap().0,
        "mailing lists"
    );
    // SETACTIVE "" deactivates (RFC 5804 §2.8).
    assert_eq!(
        c.cmd("SETACTIVE \"\"\r\n").await,
        "OK \"SETACTIVE completed\"\r\n"
    );
    assert_eq!(h.store.active_script(USER).unwrap(), None);
}

#[tokio::test]
async fn nonexistent_and_already_exists() {
    let h = Harness::new(ManageSieveSettings::default()).await;
    let mut c = h.logged_in().await;
    for cmd in [
        "GETSCRIPT \"nope\"\r\n",
        "SETACTIVE \"nope\"\r\n",
        "DELETESCRIPT \"nope\"\r\n",
        "RENAMESCRIPT \"nope\" \"x\"\r\n",
    ] {
        let r = c.cmd(cmd).await;
        assert!(r.starts_with("NO (NONEXISTENT) "), "{cmd}: {r}");
    }
    c.cmd("PUTSCRIPT \"a\" \"keep;\"\r\n").await;
    c.cmd("PUTSCRIPT \"b\" \"keep;\"\r\n").await;
    let r = c.cmd("RENAMESCRIPT \"a\" \"b\"\r\n").await;
    assert!(r.starts_with("NO (ALREADYEXISTS) "), "{r}");
}

#[tokio::test]
async fn invalid_scripts_are_refused_with_their_line() {
    let h = Harness::new(ManageSieveSettings::default()).await;
    let mut c = h.logged_in().await;
    let bad = "keep;\r\nfrobnicate;\r\n";
    let r = c
        .cmd(&format!(
            "PUTSCRIPT \"bad\" {{{}+}}\r\n{bad}\r\n",
            bad.len()
        ))
        .await;
    assert!(r.starts_with("NO "), "{r}");
    assert!(r.contains("line 2: error: "), "{r}");
    assert!(r.contains("frobnicate"), "{r}");
    assert!(h.store.list_scripts(USER).unwrap().is_empty());
    // fileinto without its require (RFC 5228 §3.2).
    let r = c.cmd("CHECKSCRIPT \"fileinto \\\"x\\\";\"\r\n").await;
    assert!(r.starts_with("NO ") && r.contains("line 1: error: "), "{r}");
    assert_eq!(
        c.cmd("CHECKSCRIPT \"keep;\"\r\n").await,
        "OK \"script is valid\"\r\n"
    );
    let r = c.cmd("PUTSCRIPT \".hidden\" \"keep;\"\r\n").await;
    assert!(
        r.starts_with("NO ") && r.contains("invalid script name"),
        "{r}"
    );
    // RFC 5804 §1.6: names are NFC; "e" + U+0301 is the decomposed "é".
    let r = c.cmd("PUTSCRIPT \"cafe\u{301}\" \"keep;\"\r\n").await;
    assert!(r.starts_with("NO ") && r.contains("normalization"), "{r}");
    assert_eq!(
        c.cmd("PUTSCRIPT \"caf\u{e9}\" \"keep;\"\r\n").await,
        "OK \"PUTSCRIPT completed\"\r\n"
    );
}

#[tokio::test]
async fn quotas() {
    let h = Harness::new(ManageSieveSettings {
        max_scripts: 2,
        max_script_size: 100,
        ..ManageSieveSettings::default()
    })
    .await;
    let mut c = h.logged_in().await;
    assert_eq!(
        c.cmd("HAVESPACE \"a\" 100\r\n").await,
        "OK \"HAVESPACE completed\"\r\n"
    );
    let r = c.cmd("HAVESPACE \"a\" 101\r\n").await;
    assert!(r.starts_with("NO (QUOTA/MAXSIZE) "), "{r}");
    c.cmd("PUTSCRIPT \"a\" \"keep;\"\r\n").await;
    c.cmd("PUTSCRIPT \"b\" \"keep;\"\r\n").await;
    let r = c.cmd("PUTSCRIPT \"c\" \"keep;\"\r\n").await;
    assert!(r.starts_with("NO (QUOTA/MAXSCRIPTS) "), "{r}");
    let r = c.cmd("HAVESPACE \"c\" 10\r\n").await;
    assert!(r.starts_with("NO (QUOTA/MAXSCRIPTS) "), "{r}");
    // Replacing an existing script is within the count.
    assert_eq!(
        c.cmd("PUTSCRIPT \"a\" \"discard;\"\r\n").await,
        "OK \"PUTSCRIPT completed\"\r\n"
    );
    // A literal over the size limit is swallowed and refused; the session goes on.
    let big = format!("# {}\r\nkeep;\r\n", "x".repeat(200));
    let r = c
        .cmd(&format!("PUTSCRIPT \"b\" {{{}+}}\r\n{big}\r\n", big.len()))
        .await;
    assert!(r.starts_with("NO (QUOTA/MAXSIZE) "), "{r}");
    assert_eq!(c.cmd("NOOP\r\n").await, "OK \"NOOP completed\"\r\n");
    assert_eq!(
        h.store.get_script(USER, "b").unwrap().as_deref(),
        Some("keep;")
    );
}

#[tokio::test]
async fn authentication_states_and_continuations() {
    let h = Harness::new(ManageSieveSettings::default()).await;
    let mut c = h.connect().await;
    let r = c.cmd("LISTSCRIPTS\r\n").await;
    assert!(r.starts_with("NO "), "{r}");
    // RFC 5804 §2.1: no initial response, an empty challenge, the response as a literal.
    c.send("AUTHENTICATE \"PLAIN\"\r\n").await;
    assert_eq!(c.line().await, "\"\"\r\n");
    let wrong = b64(&format!("\0{USER}\0wrong"));
    let r = c.cmd(&format!("{{{}+}}\r\n{wrong}\r\n", wrong.len())).await;
    assert_eq!(r, "NO \"Authentication failed\"\r\n");
    // Cancelled with "*".
    c.send("AUTHENTICATE \"PLAIN\"\r\n").await;
    assert_eq!(c.line().await, "\"\"\r\n");
    assert_eq!(
        c.cmd("\"*\"\r\n").await,
        "NO \"authentication cancelled\"\r\n"
    );
    c.send("AUTHENTICATE \"PLAIN\"\r\n").await;
    assert_eq!(c.line().await, "\"\"\r\n");
    let right = b64(&format!("\0{USER}\0{PASS}"));
    assert_eq!(
        c.cmd(&format!("\"{right}\"\r\n")).await,
        "OK \"Authenticate completed\"\r\n"
    );
    let caps = c.cmd("CAPABILITY\r\n").await;
    assert!(caps.contains(&format!("\"OWNER\" \"{USER}\"")), "{caps}");
    // RFC 5804 §2.2: no STARTTLS after authentication.
    assert!(!caps.contains("\"STARTTLS\""), "{caps}");
    let r = c.cmd("STARTTLS\r\n").await;
    assert!(r.starts_with("NO "), "{r}");
    assert_eq!(
        c.cmd("LISTSCRIPTS\r\n").await,
        "OK \"LISTSCRIPTS completed\"\r\n"
    );
    assert_eq!(
        c.cmd("UNAUTHENTICATE\r\n").await,
        "OK \"Unauthenticate completed\"\r\n"
    );
    let r = c.cmd("LISTSCRIPTS\r\n").await;
    assert!(r.starts_with("NO "), "{r}");
}

#[tokio::test]
async fn cleartext_passwords_need_tls_off_loopback() {
    let h = Harness::new(ManageSieveSettings {
        trust_loopback: false,
        ..ManageSieveSettings::default()
    })
    .await;
    let mut c = h.connect().await;
    let caps = c.cmd("CAPABILITY\r\n").await;
    assert!(caps.contains("\"SASL\" \"SCRAM-SHA-256\""), "{caps}");
    let ir = b64(&format!("\0{USER}\0{PASS}"));
    let r = c.cmd(&format!("AUTHENTICATE \"PLAIN\" \"{ir}\"\r\n")).await;
    assert!(r.starts_with("NO (ENCRYPT-NEEDED) "), "{r}");
}

#[tokio::test]
async fn bad_commands_and_noop_tag() {
    let h = Harness::new(ManageSieveSettings {
        max_bad_commands: 3,
        ..ManageSieveSettings::default()
    })
    .await;
    let mut c = h.connect().await;
    assert_eq!(
        c.cmd("NOOP \"STARTTLS-SYNC-42\"\r\n").await,
        "OK (TAG \"STARTTLS-SYNC-42\") \"NOOP completed\"\r\n"
    );
    let r = c.cmd("FROB\r\n").await;
    assert_eq!(r, "NO \"unknown command FROB\"\r\n");
    let r = c.cmd("GETSCRIPT unquoted\r\n").await;
    assert!(r.starts_with("NO \"syntax error: "), "{r}");
    // The third bad command in a row ends the session.
    let r = c.cmd("\r\n").await;
    assert_eq!(r, "NO \"syntax error: expected a command\"\r\n");
    assert_eq!(c.line().await, "BYE \"too many invalid commands\"\r\n");
    let mut rest = String::new();
    assert_eq!(c.r.read_line(&mut rest).await.unwrap(), 0, "closed: {rest}");
}

#[tokio::test]
async fn an_admin_kick_ends_logged_in_sessions_only() {
    let h = Harness::new(ManageSieveSettings::default()).await;
    let mut anonymous = h.connect().await;
    let mut c = h.logged_in().await;
    assert_eq!(h.sessions.count(USER), 1);
    assert_eq!(h.sessions.kick(USER), 1);
    assert_eq!(
        c.line().await,
        "BYE \"session ended by the administrator\"\r\n"
    );
    // A session that has not logged in is nobody's: it goes on.
    assert_eq!(anonymous.cmd("NOOP\r\n").await, "OK \"NOOP completed\"\r\n");
    // UNAUTHENTICATE leaves the registry.
    let mut c = h.logged_in().await;
    assert_eq!(h.sessions.count(USER), 1);
    c.cmd("UNAUTHENTICATE\r\n").await;
    assert_eq!(h.sessions.count(USER), 0);
}

#[tokio::test]
async fn silent_clients_are_logged_out() {
    let h = Harness::new(ManageSieveSettings {
        login_timeout: std::time::Duration::from_millis(300),
        ..ManageSieveSettings::default()
    })
    .await;
    let mut c = h.connect().await;
    assert_eq!(c.line().await, "BYE \"disconnected for inactivity\"\r\n");
    let mut rest = String::new();
    assert_eq!(c.r.read_line(&mut rest).await.unwrap(), 0, "closed: {rest}");
}
