//! `pop3::sync` against the real Dovecot POP3 server (Debian's dovecot-pop3d, started privately
//! by scripts/start-dovecot.sh on loopback ports): a Maildir filled with awkward messages (8-bit,
//! 5 MB, lines starting with '.', a 10,000-octet line, duplicate Message-IDs and duplicate
//! files) must arrive byte-identical (the Maildir's LF line ends as CRLF), once; a second sync
//! fetches nothing; mail added later is all a third sync fetches; an account that deletes leaves
//! the remote Maildir and its own state empty.

use async_trait::async_trait;
use postern_fetch::{
    pop3, Delivered, FetchAccount, FetchError, FetchOptions, FetchState, FetchedMessage,
    FolderState, Inbox, NoProgress, Origin, RemoteUrl, RunReport, Secret, SeenMessage,
};
use postern_fetch::{Connector, Run};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

const USER: &str = "bob";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn path_with_sbin() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{path}:/usr/sbin:/sbin")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The private Dovecot, stopped when dropped.
struct Dovecot {
    dir: PathBuf,
    pop3_port: u16,
}

impl Dovecot {
    /// Dovecot with POP3, or `None` (the test is skipped, loudly) where it is not installed.
    fn start(dir: &Path) -> Option<Dovecot> {
        if !Path::new("/usr/lib/dovecot/pop3").exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "dovecot-pop3d is not installed but CI is set (./test.sh installs it)"
            );
            eprintln!(
                "\n\n*** SKIPPED pop3_dovecot: dovecot-pop3d is not installed \
                 (apt-get install dovecot-pop3d, or run ./test.sh) ***\n\n"
            );
            return None;
        }
        let (imap_port, pop3_port) = (free_port(), free_port());
        let out = Command::new("bash")
            .arg(repo().join("scripts/start-dovecot.sh"))
            .arg(dir)
            .arg(imap_port.to_string())
            .env("PATH", path_with_sbin())
            .env("POP3_PORT", pop3_port.to_string())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "start-dovecot.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The IMAP port answers first; wait for POP3's too.
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", pop3_port)).is_err() {
            assert!(
                start.elapsed().as_secs() < 30,
                "Dovecot's POP3 did not listen on {pop3_port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(Dovecot {
            dir: dir.to_path_buf(),
            pop3_port,
        })
    }

    fn maildir(&self) -> PathBuf {
        self.dir.join("mail").join(USER)
    }

    /// Puts messages into the Maildir's new/ as a local delivery agent would.
    fn add(&self, messages: &[Vec<u8>]) {
        let md = self.maildir();
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(md.join(sub)).unwrap();
        }
        let base = std::fs::read_dir(md.join("new")).unwrap().count()
            + std::fs::read_dir(md.join("cur")).unwrap().count();
        for (i, m) in messages.iter().enumerate() {
            let name = format!("1700000000.M{}P1.test", base + i);
            std::fs::write(md.join("tmp").join(&name), m).unwrap();
            std::fs::rename(md.join("tmp").join(&name), md.join("new").join(&name)).unwrap();
        }
        // Dovecot's mail processes run as nobody when we are root.
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        if root {
            let ok = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(&md)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the Maildir failed");
        }
    }

    /// The Maildir's messages as POP3 serves them: LF line ends become CRLF.
    fn messages(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(dir) = std::fs::read_dir(self.maildir().join(sub)) else {
                continue;
            };
            for entry in dir {
                out.push(crlf(&std::fs::read(entry.unwrap().path()).unwrap()));
            }
        }
        out.sort();
        out
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/start-dovecot.sh"))
            .arg("--stop")
            .arg(&self.dir)
            .env("PATH", path_with_sbin())
            .status();
    }
}

fn crlf(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 40);
    for &b in text {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// The retrieval state in memory.
#[derive(Default)]
struct MemState(Mutex<HashMap<(String, String), FolderState>>);

impl MemState {
    fn seen(&self, account: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .get(&(account.to_string(), "INBOX".to_string()))
            .map_or(0, |f| f.seen.len())
    }
}

#[async_trait]
impl FetchState for MemState {
    async fn load(&self, account: &str, folder: &str) -> Result<FolderState, FetchError> {
        let key = (account.to_string(), folder.to_string());
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&key)
            .cloned()
            .unwrap_or_default())
    }

    async fn record(
        &self,
        account: &str,
        folder: &str,
        messages: &[SeenMessage],
    ) -> Result<(), FetchError> {
        let key = (account.to_string(), folder.to_string());
        let mut map = self.0.lock().unwrap();
        let f = map.entry(key).or_default();
        for m in messages {
            f.seen.insert(m.id.clone(), m.clone());
        }
        Ok(())
    }

    async fn forget(&self, account: &str, folder: &str, ids: &[String]) -> Result<(), FetchError> {
        let key = (account.to_string(), folder.to_string());
        let mut map = self.0.lock().unwrap();
        let f = map.entry(key).or_default();
        for id in ids {
            f.seen.remove(id);
        }
        Ok(())
    }

    async fn replace(
        &self,
        account: &str,
        folder: &str,
        state: &FolderState,
    ) -> Result<(), FetchError> {
        let key = (account.to_string(), folder.to_string());
        self.0.lock().unwrap().insert(key, state.clone());
        Ok(())
    }

    async fn drop_account(&self, account: &str) -> Result<(), FetchError> {
        self.0.lock().unwrap().retain(|(a, _), _| a != account);
        Ok(())
    }
}

/// Delivered messages by key (a key delivered twice is a duplicate, as in local delivery);
/// with `keep_bodies` false only their count (the throughput run).
struct MemInbox {
    keep_bodies: bool,
    messages: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemInbox {
    fn new(keep_bodies: bool) -> MemInbox {
        MemInbox {
            keep_bodies,
            messages: Mutex::new(HashMap::new()),
        }
    }

    fn bodies(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = self.messages.lock().unwrap().values().cloned().collect();
        out.sort();
        out
    }
}

#[async_trait]
impl Inbox for MemInbox {
    async fn deliver(&self, m: FetchedMessage<'_>) -> Result<Delivered, FetchError> {
        let mut map = self.messages.lock().unwrap();
        if map.contains_key(&m.key) {
            return Ok(Delivered::Duplicate);
        }
        let body = if self.keep_bodies { m.raw } else { Vec::new() };
        map.insert(m.key, body);
        Ok(Delivered::Stored)
    }
}

fn account(id: &str, port: u16, keep: bool) -> FetchAccount {
    FetchAccount {
        id: id.into(),
        local: "alice@example.test".into(),
        url: RemoteUrl::parse(&format!("pop3://{USER}@127.0.0.1:{port}")).unwrap(),
        options: FetchOptions {
            keep,
            // Dovecot here runs without TLS (ssl = no): no STLS is offered.
            allow_plaintext: true,
            ..FetchOptions::default()
        },
        origin: Origin::Cli,
    }
}

async fn sync(
    account: &FetchAccount,
    state: &MemState,
    inbox: &MemInbox,
) -> Result<RunReport, FetchError> {
    let connector = Connector::new(None).unwrap();
    let password = Secret::new("pass");
    let run = Run {
        account,
        password: &password,
        connector: &connector,
        state,
        inbox,
        progress: &NoProgress,
        cancel: CancellationToken::new(),
    };
    pop3::sync(&run).await
}

fn simple(i: usize) -> Vec<u8> {
    format!(
        "From: Carol <carol@example.org>\nTo: bob@example.net\nSubject: message {i}\n\
         Message-ID: <{i}.pop3@example.org>\nDate: Thu, 03 Dec 2026 10:00:00 +0000\n\n\
         Body of message {i}.\n"
    )
    .into_bytes()
}

fn awkward() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (1..=20).map(simple).collect();
    out.push(
        b"Subject: dots\nMessage-ID: <dots@example.org>\n\n.\n..\n.leading dot\n...three\n. \nend\n"
            .to_vec(),
    );
    let mut eight_bit = "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\nMessage-ID: <8bit@example.org>\n\
                         Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n\
                         Grüße aus Köln, 日本語\n"
        .as_bytes()
        .to_vec();
    eight_bit.extend_from_slice(b"latin-1 \xe9t\xe9 and a NUL-free \xff byte\n");
    out.push(eight_bit);
    // Two different messages with one Message-ID, and one file twice.
    out.push(b"Subject: dup A\nMessage-ID: <same@example.org>\n\nfirst\n".to_vec());
    out.push(b"Subject: dup B\nMessage-ID: <same@example.org>\n\nsecond\n".to_vec());
    out.push(simple(5));
    let mut long_line = b"Subject: long line\nMessage-ID: <long@example.org>\n\n".to_vec();
    long_line.extend(std::iter::repeat_n(b'a', 10_000));
    long_line.push(b'\n');
    out.push(long_line);
    let mut big = b"Subject: five megabytes\nMessage-ID: <big@example.org>\n\n".to_vec();
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n";
    while big.len() < 5 * 1024 * 1024 {
        big.extend_from_slice(line);
        big.extend_from_slice(b".a line starting with a dot\n");
    }
    out.push(big);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_dovecot_pop3_byte_identical_once_and_deletes() {
    let work = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let Some(dovecot) = Dovecot::start(&work.path().join("dovecot")) else {
        return;
    };
    let first = awkward();
    dovecot.add(&first);
    let state = MemState::default();
    let inbox = MemInbox::new(true);
    let keeper = account("keep", dovecot.pop3_port, true);

    let report = sync(&keeper, &state, &inbox).await.unwrap();
    assert_eq!(report.fetched as usize, first.len(), "{report:?}");
    assert_eq!((report.duplicates, report.deleted), (0, 0));
    assert_eq!(inbox.bodies(), dovecot.messages(), "byte-identical, CRLF");
    assert_eq!(state.seen("keep"), first.len());

    // Again: nothing new.
    let report = sync(&keeper, &state, &inbox).await.unwrap();
    assert_eq!((report.fetched, report.duplicates), (0, 0), "{report:?}");

    // New mail: only it.
    let later: Vec<Vec<u8>> = (100..103).map(simple).collect();
    dovecot.add(&later);
    let report = sync(&keeper, &state, &inbox).await.unwrap();
    assert_eq!((report.fetched, report.duplicates), (3, 0), "{report:?}");
    assert_eq!(inbox.bodies(), dovecot.messages());
    assert_eq!(
        dovecot.messages().len(),
        first.len() + 3,
        "kept on the server"
    );

    // An account that deletes: everything arrives, the remote and the state end empty.
    let deleter = account("delete", dovecot.pop3_port, false);
    let inbox2 = MemInbox::new(true);
    let remote = dovecot.messages();
    let report = sync(&deleter, &state, &inbox2).await.unwrap();
    assert_eq!(
        (report.fetched as usize, report.deleted as usize),
        (remote.len(), remote.len()),
        "{report:?}"
    );
    assert_eq!(inbox2.bodies(), remote);
    assert!(dovecot.messages().is_empty(), "Dovecot's Maildir is empty");
    assert_eq!(state.seen("delete"), 0, "confirmed deletions are forgotten");
    let report = sync(&deleter, &state, &inbox2).await.unwrap();
    assert_eq!((report.fetched, report.deleted), (0, 0));
}

/// Throughput against Dovecot: `POP3_BENCH_MESSAGES` (default 5,000) small messages into an
/// inbox that only counts them. Prints the figure; run by hand:
/// `cargo test -p postern-fetch --release --test pop3_dovecot -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_against_dovecot() {
    let n: usize = std::env::var("POP3_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let work = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let Some(dovecot) = Dovecot::start(&work.path().join("dovecot")) else {
        return;
    };
    let messages: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut m = simple(i);
            for l in 0..40 {
                m.extend_from_slice(
                    format!("line {l} of a typical few-kilobyte message body, {i}\n").as_bytes(),
                );
            }
            m
        })
        .collect();
    let bytes: usize = messages.iter().map(Vec::len).sum();
    dovecot.add(&messages);
    // A first session lets Dovecot build its index and UID list, as a mailbox in use has.
    let warm = MemInbox::new(false);
    let state = MemState::default();
    sync(&account("warm", dovecot.pop3_port, true), &state, &warm)
        .await
        .unwrap();
    for round in 1..=3 {
        let inbox = MemInbox::new(false);
        let state = MemState::default();
        let start = Instant::now();
        let report = sync(&account("bench", dovecot.pop3_port, true), &state, &inbox)
            .await
            .unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(report.fetched as usize, n);
        println!(
            "round {round}: {n} messages ({:.1} MB) in {secs:.2} s: {:.0} messages/s",
            bytes as f64 / 1e6,
            n as f64 / secs
        );
    }
}
