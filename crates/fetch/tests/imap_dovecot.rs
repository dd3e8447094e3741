//! The IMAP driver against a real Dovecot (Debian's `dovecot-imapd`, run privately through
//! scripts/start-dovecot.sh on a loopback port), filled and inspected with Python's imaplib:
//! every folder fetched byte for byte (8-bit, 5 MB, duplicate Message-IDs, a non-ASCII folder
//! name), nothing fetched twice, only what was appended later, `mark_seen` and delete seen by
//! imaplib, mail appended while `watch` idles, and a UIDVALIDITY change that refetches nothing.
//!
//! `cargo test -p postern-fetch --test imap_dovecot -- --ignored bench --nocapture` measures
//! the sync rate for 5,000 messages into an inbox that does nothing.

use async_trait::async_trait;
use postern_fetch::state::FolderState;
use postern_fetch::{
    Connector, Delivered, FetchAccount, FetchError, FetchOptions, FetchState, FetchedMessage,
    Folders, Inbox, NoProgress, Origin, Progress, RemoteUrl, Run, RunReport, Secret, SeenMessage,
};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const USER: &str = "alice";

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
    port: u16,
}

impl Dovecot {
    fn start(dir: &Path) -> Dovecot {
        let d = Dovecot {
            dir: dir.to_path_buf(),
            port: free_port(),
        };
        d.run();
        d
    }

    fn run(&self) {
        let out = Command::new("bash")
            .arg(repo().join("scripts/start-dovecot.sh"))
            .arg(&self.dir)
            .arg(self.port.to_string())
            .env("PATH", path_with_sbin())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "start-dovecot.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&self) {
        let out = Command::new("bash")
            .arg(repo().join("scripts/start-dovecot.sh"))
            .arg("--stop")
            .arg(&self.dir)
            .env("PATH", path_with_sbin())
            .output()
            .expect("bash runs");
        assert!(out.status.success(), "{out:?}");
    }

    fn maildir(&self) -> PathBuf {
        self.dir.join("mail").join(USER)
    }

    /// Runs a Python script with `M`, an imaplib session logged in as alice; returns stdout.
    fn py(&self, body: &str) -> String {
        let script = format!(
            "import imaplib, sys\nM = imaplib.IMAP4('127.0.0.1', {})\nM.login('{USER}', 'pass')\n{body}\nM.logout()\n",
            self.port
        );
        let mut child = Command::new("python3")
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "python failed:\n{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// APPENDs messages (raw bytes) to a folder with flags, through imaplib.
    fn append(&self, folder: &str, flags: &str, messages: &[Vec<u8>]) {
        let dir = tempfile::tempdir().unwrap();
        for (i, m) in messages.iter().enumerate() {
            std::fs::write(dir.path().join(format!("{i:06}")), m).unwrap();
        }
        let flags = if flags.is_empty() {
            "None".to_string()
        } else {
            format!("{:?}", format!("({flags})"))
        };
        self.py(&format!(
            "import os\nd = {:?}\nfor n in sorted(os.listdir(d)):\n    t, r = M.append({folder:?}, {flags}, None, open(os.path.join(d, n), 'rb').read())\n    assert t == 'OK', r",
            dir.path().to_str().unwrap(),
        ));
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/start-dovecot.sh"))
            .arg("--stop")
            .arg(&self.dir)
            .env("PATH", path_with_sbin())
            .output();
    }
}

/// A Dovecot in a private directory nobody can trip over (DIR must be reachable by nobody).
fn dovecot() -> (tempfile::TempDir, Dovecot) {
    let tmp = tempfile::Builder::new()
        .prefix("fetch-imap-")
        .tempdir_in("/tmp")
        .unwrap();
    let d = Dovecot::start(tmp.path());
    (tmp, d)
}

/// A message as a client would submit it.
fn message(id: Option<&str>, subject: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(b"From: Bob <bob@remote.example>\r\nTo: alice@remote.example\r\n");
    if let Some(id) = id {
        m.extend_from_slice(format!("Message-ID: <{id}>\r\n").as_bytes());
    }
    m.extend_from_slice(format!("Subject: {subject}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n").as_bytes());
    m.extend_from_slice(body);
    m
}

/// What the in-memory inbox received.
#[derive(Clone, Debug)]
struct Got {
    local_folder: Option<String>,
    raw: Vec<u8>,
    flags: Vec<String>,
}

/// An inbox that keeps messages in memory, by delivery key.
#[derive(Default)]
struct MemInbox {
    got: Mutex<Vec<(String, Got)>>,
    keep_bodies: bool,
}

impl MemInbox {
    fn new() -> MemInbox {
        MemInbox {
            got: Mutex::new(Vec::new()),
            keep_bodies: true,
        }
    }

    fn all(&self) -> Vec<Got> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, g)| g.clone())
            .collect()
    }

    fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

#[async_trait]
impl Inbox for MemInbox {
    async fn deliver(&self, m: FetchedMessage<'_>) -> Result<Delivered, FetchError> {
        let mut got = self.got.lock().unwrap();
        if got.iter().any(|(k, _)| *k == m.key) {
            return Ok(Delivered::Duplicate);
        }
        got.push((
            m.key,
            Got {
                local_folder: m.local_folder.map(str::to_string),
                raw: if self.keep_bodies { m.raw } else { Vec::new() },
                flags: m.flags,
            },
        ));
        Ok(Delivered::Stored)
    }
}

/// Fetch state in memory.
#[derive(Default)]
struct MemState {
    folders: Mutex<HashMap<(String, String), FolderState>>,
}

impl MemState {
    fn get(&self, folder: &str) -> FolderState {
        self.folders
            .lock()
            .unwrap()
            .iter()
            .find(|((_, f), _)| f == folder)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl FetchState for MemState {
    async fn load(&self, account: &str, folder: &str) -> Result<FolderState, FetchError> {
        Ok(self
            .folders
            .lock()
            .unwrap()
            .get(&(account.into(), folder.into()))
            .cloned()
            .unwrap_or_default())
    }

    async fn record(
        &self,
        account: &str,
        folder: &str,
        messages: &[SeenMessage],
    ) -> Result<(), FetchError> {
        let mut f = self.folders.lock().unwrap();
        let s = f.entry((account.into(), folder.into())).or_default();
        for m in messages {
            s.seen.insert(m.id.clone(), m.clone());
        }
        Ok(())
    }

    async fn forget(&self, account: &str, folder: &str, ids: &[String]) -> Result<(), FetchError> {
        let mut f = self.folders.lock().unwrap();
        let s = f.entry((account.into(), folder.into())).or_default();
        for id in ids {
            s.seen.remove(id);
        }
        Ok(())
    }

    async fn replace(
        &self,
        account: &str,
        folder: &str,
        state: &FolderState,
    ) -> Result<(), FetchError> {
        self.folders
            .lock()
            .unwrap()
            .insert((account.into(), folder.into()), state.clone());
        Ok(())
    }

    async fn drop_account(&self, account: &str) -> Result<(), FetchError> {
        self.folders
            .lock()
            .unwrap()
            .retain(|(a, _), _| a != account);
        Ok(())
    }
}

fn account(d: &Dovecot, options: FetchOptions) -> FetchAccount {
    FetchAccount {
        id: "t1".into(),
        local: "alice@local.example".into(),
        url: RemoteUrl::parse(&format!("imap://{USER}@127.0.0.1:{}", d.port)).unwrap(),
        options: FetchOptions {
            allow_plaintext: true,
            ..options
        },
        origin: Origin::Config,
    }
}

async fn sync(
    acct: &FetchAccount,
    state: &MemState,
    inbox: &MemInbox,
) -> Result<RunReport, FetchError> {
    let connector = Connector::new(None).unwrap();
    let password = Secret::new("pass");
    let run = Run {
        account: acct,
        password: &password,
        connector: &connector,
        state,
        inbox,
        progress: &NoProgress,
        cancel: CancellationToken::new(),
    };
    postern_fetch::imap::sync(&run).await
}

/// INBOX: 8-bit, a 5 MB message, two with one Message-ID, one without; two folders with
/// flags, one named in French.
/// Messages as raw bytes.
type Raw = Vec<Vec<u8>>;

fn fill(d: &Dovecot) -> (Raw, Raw, Raw) {
    let mut inbox = Vec::new();
    for i in 0..6 {
        inbox.push(message(
            Some(&format!("m{i}@remote.example")),
            &format!("plain {i}"),
            format!("Hello {i}\r\n").as_bytes(),
        ));
    }
    inbox.push(message(
        Some("eight@remote.example"),
        "8-bit",
        "Grüße aus Köln, ça va? 日本語\r\n".as_bytes(),
    ));
    let big_line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTU\r\n";
    let big: String = big_line.repeat(5 * 1024 * 1024 / big_line.len());
    inbox.push(message(Some("big@remote.example"), "big", big.as_bytes()));
    // Same Message-ID, same size, other bodies: one fingerprint twice (a multiset).
    inbox.push(message(
        Some("dup@remote.example"),
        "dup",
        b"first  copy\r\n",
    ));
    inbox.push(message(
        Some("dup@remote.example"),
        "dup",
        b"second copy\r\n",
    ));
    inbox.push(message(None, "no id", b"no message-id here\r\n"));
    d.append("INBOX", "", &inbox);
    let archive = vec![
        message(Some("a1@remote.example"), "archived 1", b"one\r\n"),
        message(Some("a2@remote.example"), "archived 2", b"two\r\n"),
    ];
    let recus = vec![message(
        Some("r1@remote.example"),
        "reçu",
        "déjà lu\r\n".as_bytes(),
    )];
    d.py("assert M.create('Archive')[0] == 'OK'\nassert M.create('Re&AOc-us')[0] == 'OK'");
    d.append("Archive", "\\Seen \\Flagged $Label1", &archive);
    d.append("Re&AOc-us", "\\Answered", &recus);
    (inbox, archive, recus)
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

#[tokio::test]
async fn syncs_every_folder_byte_for_byte_then_only_what_is_new() {
    let (_tmp, d) = dovecot();
    let (inbox_msgs, archive, recus) = fill(&d);
    let acct = account(
        &d,
        FetchOptions {
            folders: Folders::All,
            ..FetchOptions::default()
        },
    );
    let (state, inbox) = (MemState::default(), MemInbox::new());
    let r = sync(&acct, &state, &inbox).await.unwrap();
    assert_eq!(r.folders, 3, "{r:?}");
    assert_eq!(r.fetched, 14, "{r:?}");
    let got = inbox.all();
    let of = |f: Option<&str>| {
        sorted(
            got.iter()
                .filter(|g| g.local_folder.as_deref() == f)
                .map(|g| g.raw.clone())
                .collect(),
        )
    };
    assert_eq!(of(None), sorted(inbox_msgs.clone()), "INBOX bodies differ");
    assert_eq!(of(Some("Archive")), sorted(archive));
    assert_eq!(of(Some("Reçus")), sorted(recus));
    for g in got
        .iter()
        .filter(|g| g.local_folder.as_deref() == Some("Archive"))
    {
        let mut f = g.flags.clone();
        f.sort();
        assert_eq!(f, ["$Label1", "\\Flagged", "\\Seen"], "{g:?}");
    }
    for g in got
        .iter()
        .filter(|g| g.local_folder.as_deref() == Some("Reçus"))
    {
        assert_eq!(g.flags, ["\\Answered"]);
    }
    // The state knows every message with a fingerprint.
    let s = state.get("INBOX");
    assert_eq!(s.seen.len(), inbox_msgs.len());
    assert!(s
        .seen
        .values()
        .all(|m| m.fingerprint.is_some() && !m.delete_pending));

    // Again: nothing new.
    let r = sync(&acct, &state, &inbox).await.unwrap();
    assert_eq!((r.fetched, r.duplicates), (0, 0), "{r:?}");

    // Appended later: only those.
    let later = vec![
        message(Some("later1@remote.example"), "later 1", b"x\r\n"),
        message(Some("later2@remote.example"), "later 2", b"y\r\n"),
    ];
    d.append("INBOX", "", &later);
    let r = sync(&acct, &state, &inbox).await.unwrap();
    assert_eq!(r.fetched, 2, "{r:?}");
    assert_eq!(inbox.count(), 16);

    // One folder by its UTF-8 name (sent as modified UTF-7), with a size limit.
    let named = FetchAccount {
        id: "t-named".into(),
        ..account(
            &d,
            FetchOptions {
                folders: Folders::Named(vec!["Reçus".into(), "INBOX".into()]),
                size_limit: Some(1024 * 1024),
                ..FetchOptions::default()
            },
        )
    };
    let (state2, inbox2) = (MemState::default(), MemInbox::new());
    let r = sync(&named, &state2, &inbox2).await.unwrap();
    assert_eq!((r.folders, r.fetched, r.too_big), (2, 13, 1), "{r:?}");
    assert_eq!(
        inbox2
            .all()
            .iter()
            .filter(|g| g.local_folder.as_deref() == Some("Reçus"))
            .count(),
        1
    );
    // Untouched on the remote: the INBOX still has everything, unseen (BODY.PEEK).
    let out = d
        .py("M.select('INBOX', readonly=True)\nprint(len(M.search(None, 'UNSEEN')[1][0].split()))");
    assert_eq!(out.trim(), "13");
}

#[tokio::test]
async fn mark_seen_and_delete_show_on_the_remote_after_delivery() {
    let (_tmp, d) = dovecot();
    let msgs: Vec<Vec<u8>> = (0..5)
        .map(|i| message(Some(&format!("s{i}@r")), "s", b"b\r\n"))
        .collect();
    d.append("INBOX", "", &msgs);
    let acct = account(
        &d,
        FetchOptions {
            mark_seen: true,
            ..FetchOptions::default()
        },
    );
    let (state, inbox) = (MemState::default(), MemInbox::new());
    let r = sync(&acct, &state, &inbox).await.unwrap();
    assert_eq!(r.fetched, 5);
    let out = d.py("M.select('INBOX', readonly=True)\nprint(len(M.search(None, 'SEEN')[1][0].split()), len(M.search(None, 'ALL')[1][0].split()))");
    assert_eq!(out.trim(), "5 5");

    // only_unseen: a new unseen message is fetched, the seen ones would not be.
    d.append("INBOX", "", &[message(Some("u@r"), "u", b"u\r\n")]);
    d.append("INBOX", "\\Seen", &[message(Some("v@r"), "v", b"v\r\n")]);
    let acct2 = FetchAccount {
        id: "t2".into(),
        ..account(
            &d,
            FetchOptions {
                only_unseen: true,
                keep: false,
                ..FetchOptions::default()
            },
        )
    };
    let (state2, inbox2) = (MemState::default(), MemInbox::new());
    let r = sync(&acct2, &state2, &inbox2).await.unwrap();
    assert_eq!((r.fetched, r.deleted), (1, 1), "{r:?}");
    assert!(inbox2.all()[0].raw.ends_with(b"u\r\n"));
    let out =
        d.py("M.select('INBOX', readonly=True)\nprint(len(M.search(None, 'ALL')[1][0].split()))");
    assert_eq!(
        out.trim(),
        "6",
        "the unseen message is deleted, the rest stays"
    );
    assert!(
        state2.get("INBOX").seen.is_empty(),
        "confirmed deletions are forgotten"
    );

    // keep = false: everything delivered is deleted, and forgotten.
    let acct3 = FetchAccount {
        id: "t3".into(),
        ..account(
            &d,
            FetchOptions {
                keep: false,
                ..FetchOptions::default()
            },
        )
    };
    let (state3, inbox3) = (MemState::default(), MemInbox::new());
    let r = sync(&acct3, &state3, &inbox3).await.unwrap();
    assert_eq!((r.fetched, r.deleted), (6, 6), "{r:?}");
    let out =
        d.py("M.select('INBOX', readonly=True)\nprint(len(M.search(None, 'ALL')[1][0].split()))");
    assert_eq!(out.trim(), "0");
    assert!(state3.get("INBOX").seen.is_empty());
}

/// Counts syncs.
#[derive(Default)]
struct Syncs(Mutex<Vec<Result<RunReport, FetchError>>>);

impl Progress for Syncs {
    fn synced(&self, _a: &FetchAccount, outcome: &Result<RunReport, FetchError>) {
        self.0.lock().unwrap().push(outcome.clone());
    }
}

#[tokio::test]
async fn watch_fetches_mail_appended_while_it_idles() {
    let (_tmp, d) = dovecot();
    d.append("INBOX", "", &[message(Some("w0@r"), "w0", b"0\r\n")]);
    let acct = account(&d, FetchOptions::default());
    let state = Arc::new(MemState::default());
    let inbox = Arc::new(MemInbox::new());
    let syncs = Arc::new(Syncs::default());
    let cancel = CancellationToken::new();
    let task = {
        let (acct, state, inbox, syncs, cancel) = (
            acct.clone(),
            state.clone(),
            inbox.clone(),
            syncs.clone(),
            cancel.clone(),
        );
        tokio::spawn(async move {
            let connector = Connector::new(None).unwrap();
            let password = Secret::new("pass");
            let run = Run {
                account: &acct,
                password: &password,
                connector: &connector,
                state: state.as_ref(),
                inbox: inbox.as_ref(),
                progress: syncs.as_ref(),
                cancel,
            };
            postern_fetch::imap::watch(&run).await
        })
    };
    let wait_for = |n: usize| {
        let inbox = inbox.clone();
        async move {
            let start = Instant::now();
            while inbox.count() < n {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "no mail after 60 s"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_for(1).await;
    // Let it settle into IDLE (whether it is there yet or not, the mail must arrive).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    d.append("INBOX", "", &[message(Some("w1@r"), "w1", b"1\r\n")]);
    wait_for(2).await;
    eprintln!("mail appended during IDLE arrived after {:?}", t0.elapsed());
    d.append("INBOX", "", &[message(Some("w2@r"), "w2", b"2\r\n")]);
    wait_for(3).await;
    cancel.cancel();
    task.await
        .unwrap()
        .expect("watch ends cleanly when cancelled");
    let syncs = syncs.0.lock().unwrap();
    assert!(syncs.len() >= 3, "{syncs:?}");
    assert!(syncs.iter().all(|s| s.is_ok()), "{syncs:?}");
    assert_eq!(inbox.count(), 3);
}

#[tokio::test]
async fn a_new_uidvalidity_refetches_nothing() {
    let (_tmp, d) = dovecot();
    let (inbox_msgs, _, _) = fill(&d);
    let acct = account(&d, FetchOptions::default());
    let (state, inbox) = (MemState::default(), MemInbox::new());
    let r = sync(&acct, &state, &inbox).await.unwrap();
    assert_eq!(r.fetched, inbox_msgs.len() as u64);
    let before = state.get("INBOX").uidvalidity.unwrap();
    // Dovecot forgets the INBOX's UIDs: a new UIDVALIDITY (RFC 9051 §2.3.1.1). Its new value
    // comes from the clock: wait for another second if it came out the same.
    let mut after = before;
    for _ in 0..5 {
        d.stop();
        std::thread::sleep(Duration::from_millis(1100));
        for f in std::fs::read_dir(d.maildir()).unwrap() {
            let p = f.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("dovecot-uidlist")
                || name.starts_with("dovecot-uidvalidity")
                || name.starts_with("dovecot.index")
                || name.starts_with("dovecot.list.index")
            {
                std::fs::remove_file(&p).unwrap();
            }
        }
        d.run();
        let out = d.py("t, r = M.select('INBOX', readonly=True)\nprint(M.response('UIDVALIDITY')[1][0].decode())");
        after = out.trim().parse().unwrap();
        if after != before {
            break;
        }
    }
    assert_ne!(before, after, "Dovecot kept UIDVALIDITY {before}");
    // One more message, new since the last sync.
    d.append("INBOX", "", &[message(Some("new@r"), "new", b"new\r\n")]);
    // A fresh inbox: anything refetched would show up as delivered, not as a duplicate.
    let fresh = MemInbox::new();
    let r = sync(&acct, &state, &fresh).await.unwrap();
    assert_eq!((r.fetched, r.duplicates), (1, 0), "{r:?}");
    assert!(fresh.all()[0].raw.ends_with(b"new\r\n"));
    let s = state.get("INBOX");
    assert_eq!(s.uidvalidity, Some(after));
    assert_eq!(s.seen.len(), inbox_msgs.len() + 1);
}

/// An inbox that counts and drops.
#[derive(Default)]
struct NullInbox(Mutex<u64>);

#[async_trait]
impl Inbox for NullInbox {
    async fn deliver(&self, _m: FetchedMessage<'_>) -> Result<Delivered, FetchError> {
        *self.0.lock().unwrap() += 1;
        Ok(Delivered::Stored)
    }
}

#[tokio::test]
#[ignore = "a measurement: run by hand with --ignored --nocapture"]
async fn bench_sync_5000() {
    let (_tmp, d) = dovecot();
    let n = 5000;
    let body = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n".repeat(40);
    let msgs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            message(
                Some(&format!("b{i}@r")),
                &format!("bench {i}"),
                body.as_bytes(),
            )
        })
        .collect();
    // Straight into the Maildir (APPEND fsyncs each message: minutes for 5,000); Dovecot
    // indexes them at the first SELECT.
    let t = Instant::now();
    let md = d.maildir();
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    for (i, m) in msgs.iter().enumerate() {
        std::fs::write(md.join("new").join(format!("1764000000.M{i}P1.bench")), m).unwrap();
    }
    if Command::new("id").arg("-u").output().unwrap().stdout == b"0\n" {
        let ok = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(&md)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    eprintln!("wrote {n} messages in {:?}", t.elapsed());
    for round in 0..3 {
        let acct = FetchAccount {
            id: format!("bench{round}"),
            ..account(&d, FetchOptions::default())
        };
        let state = MemState::default();
        let inbox = NullInbox::default();
        let connector = Connector::new(None).unwrap();
        let password = Secret::new("pass");
        let run = Run {
            account: &acct,
            password: &password,
            connector: &connector,
            state: &state,
            inbox: &inbox,
            progress: &NoProgress,
            cancel: CancellationToken::new(),
        };
        let t = Instant::now();
        let r = postern_fetch::imap::sync(&run).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(r.fetched, n);
        eprintln!(
            "round {round}: {n} messages ({} bytes) in {secs:.2} s: {:.0} messages/s",
            r.bytes,
            n as f64 / secs
        );
    }
}
