use super::*;
use postern_directory::{DirectoryOptions, PasswordParams, SqliteDirectory};
use postern_store::maildir::MaildirStore;

struct Fixture {
    _dir: tempfile::TempDir,
    store: MaildirStore,
    directory: Arc<SqliteDirectory>,
    lda: LocalDelivery,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let directory = Arc::new(
        SqliteDirectory::open_in_memory(DirectoryOptions {
            password_params: PasswordParams::insecure_fast_for_tests(),
            ..DirectoryOptions::default()
        })
        .unwrap(),
    );
    directory.add_domain("example.org").unwrap();
    directory.add_account("alice@example.org", "pw").unwrap();
    directory.add_account("bob@example.org", "pw").unwrap();
    let store = MaildirStore::open(dir.path().join("mail"), "mx.test").unwrap();
    store.create_account("alice@example.org").unwrap();
    // bob's Maildir does not exist yet: delivery creates it.
    let lda = LocalDelivery::new(directory.clone(), Arc::new(store.clone()));
    Fixture {
        _dir: dir,
        store,
        directory,
        lda,
    }
}

const MSG: &[u8] = b"From: s@remote.test\r\nSubject: hello\r\n\r\nbody\r\n";

fn inbox(f: &Fixture, account: &str) -> Vec<Vec<u8>> {
    let snap = f.store.select(account, "INBOX", false).unwrap();
    snap.messages
        .iter()
        .map(|m| f.store.fetch(account, "INBOX", m.uid).unwrap())
        .collect()
}

fn delivered(o: &Outcome) -> (Vec<String>, Vec<String>) {
    match o {
        Outcome::Delivered {
            accounts, forward, ..
        } => (accounts.clone(), forward.clone()),
        other => panic!("not delivered: {other:?}"),
    }
}

#[tokio::test]
async fn direct_delivery_adds_trace_headers() {
    let f = fixture();
    let o = f
        .lda
        .deliver(
            Some("s@remote.test"),
            "Alice@Example.org",
            MSG,
            "K1",
            &BTreeSet::new(),
        )
        .await;
    assert_eq!(delivered(&o).0, vec!["alice@example.org".to_string()]);
    let got = inbox(&f, "alice@example.org");
    assert_eq!(got.len(), 1);
    let text = String::from_utf8(got[0].clone()).unwrap();
    assert!(text.starts_with(
        "Return-Path: <s@remote.test>\r\nDelivered-To: alice@example.org\r\nFrom: s@remote.test\r\n"
    ));
    // A null sender is written as <>; an account without a Maildir gets one.
    f.lda
        .deliver(None, "bob@example.org", MSG, "K1", &BTreeSet::new())
        .await;
    let bob = inbox(&f, "bob@example.org");
    assert!(bob[0].starts_with(b"Return-Path: <>\r\n"));
}

#[tokio::test]
async fn plus_address_reaches_the_account_and_keeps_the_detail() {
    let f = fixture();
    let o = f
        .lda
        .deliver(
            Some("s@remote.test"),
            "alice+lists@example.org",
            MSG,
            "K1",
            &BTreeSet::new(),
        )
        .await;
    assert_eq!(delivered(&o).0, vec!["alice@example.org".to_string()]);
    let got = inbox(&f, "alice@example.org");
    assert!(String::from_utf8_lossy(&got[0]).contains("Delivered-To: alice+lists@example.org\r\n"));
}

#[tokio::test]
async fn aliases_and_catch_all_expand_into_recipients() {
    let f = fixture();
    f.directory
        .add_alias(
            "team@example.org",
            &["alice@example.org", "bob@example.org", "far@remote.test"],
        )
        .unwrap();
    f.directory
        .add_alias("@example.org", &["bob@example.org"])
        .unwrap();
    let o = f
        .lda
        .deliver(None, "team+x@example.org", MSG, "K1", &BTreeSet::new())
        .await;
    let (accounts, mut forward) = delivered(&o);
    assert!(accounts.is_empty(), "an alias itself stores nothing");
    forward.sort();
    assert_eq!(
        forward,
        [
            "alice+x@example.org",
            "bob+x@example.org",
            "far@remote.test"
        ]
    );
    let o = f
        .lda
        .deliver(None, "nobody@example.org", MSG, "K1", &BTreeSet::new())
        .await;
    assert_eq!(delivered(&o).1, vec!["bob@example.org".to_string()]);
    assert!(inbox(&f, "alice@example.org").is_empty());
}

#[tokio::test]
async fn unknown_user_loop_duplicate_and_quota() {
    let f = fixture();
    let o = f
        .lda
        .deliver(None, "ghost@example.org", MSG, "K1", &BTreeSet::new())
        .await;
    assert!(
        matches!(&o, Outcome::Failed(r) if r.text.starts_with("5.1.1")),
        "{o:?}"
    );

    let looped = b"Delivered-To: alice@example.org\r\nSubject: x\r\n\r\nbody\r\n";
    let o = f
        .lda
        .deliver(None, "alice@example.org", looped, "K1", &BTreeSet::new())
        .await;
    assert!(
        matches!(&o, Outcome::Failed(r) if r.text.starts_with("5.4.6")),
        "{o:?}"
    );

    let already: BTreeSet<String> = ["alice@example.org".to_string()].into();
    let o = f
        .lda
        .deliver(None, "alice+again@example.org", MSG, "K1", &already)
        .await;
    assert!(delivered(&o).0.is_empty());
    assert!(inbox(&f, "alice@example.org").is_empty(), "no second copy");

    f.directory
        .set_quota("alice@example.org", Some(10))
        .unwrap();
    let o = f
        .lda
        .deliver(None, "alice@example.org", MSG, "K1", &BTreeSet::new())
        .await;
    assert!(
        matches!(&o, Outcome::Failed(r) if r.text.starts_with("5.2.2")),
        "{o:?}"
    );
}

#[tokio::test]
async fn a_retried_delivery_stores_no_second_copy() {
    let f = fixture();
    for _ in 0..2 {
        let o = f
            .lda
            .deliver(None, "alice@example.org", MSG, "QID7", &BTreeSet::new())
            .await;
        assert_eq!(delivered(&o).0, vec!["alice@example.org".to_string()]);
    }
    assert_eq!(inbox(&f, "alice@example.org").len(), 1);
}

/// A notifier that keeps the events (for the tests of the new-mail hook).
#[derive(Default)]
pub(crate) struct Recorder(std::sync::Mutex<Vec<NewMail>>);

impl Recorder {
    pub(crate) fn events(&self) -> Vec<NewMail> {
        self.0.lock().unwrap().clone()
    }
}

impl Notifier for Recorder {
    fn new_mail(&self, event: NewMail) {
        self.0.lock().unwrap().push(event);
    }
}

/// A plain delivery announces the message stored in INBOX; an alias expansion (nothing stored)
/// and a duplicate announce nothing.
#[tokio::test]
async fn plain_delivery_is_announced() {
    let f = fixture();
    let recorder = Arc::new(Recorder::default());
    let lda = LocalDelivery::new(f.directory.clone(), Arc::new(f.store.clone()))
        .with_notifier(recorder.clone());
    let msg = b"From: s@remote.test\r\nSubject: =?UTF-8?B?SGVsbG8gd29ybGQ=?=\r\n\r\nbody\r\n";
    let o = lda
        .deliver(
            Some("s@remote.test"),
            "alice@example.org",
            msg,
            "N1",
            &BTreeSet::new(),
        )
        .await;
    delivered(&o);
    let events = recorder.events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.account, "alice@example.org");
    assert_eq!(e.mailbox, "INBOX");
    assert_eq!(e.subject.as_deref(), Some("Hello world"));
    assert_eq!(e.sender.as_deref(), Some("s@remote.test"));
    let stored = f.store.fetch("alice@example.org", "INBOX", e.uid).unwrap();
    assert_eq!(stored.len() as u64, e.size);
    assert_eq!(std::fs::read(e.path.as_ref().unwrap()).unwrap(), stored);

    let already = BTreeSet::from(["alice@example.org".to_string()]);
    lda.deliver(None, "alice@example.org", msg, "N2", &already)
        .await;
    assert_eq!(recorder.events().len(), 1);
}

/// aliases(5) command and file targets: performed at the alias, its addresses forwarded; a
/// temporary failure defers the alias as a whole, a permanent one fails it; off by default.
#[tokio::test]
async fn alias_command_and_file_targets() {
    let f = fixture();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let mbox = work.path().join("box");
    let cmd = format!("|cat > {}", out.display());
    f.directory
        .replace_file_aliases(
            "file:/etc/aliases",
            &[
                postern_directory::FileAlias {
                    address: "both@example.org".into(),
                    targets: vec![cmd, mbox.display().to_string(), "bob".into()],
                },
                postern_directory::FileAlias {
                    address: "busy@example.org".into(),
                    targets: vec!["|echo busy >&2; exit 75".into(), "bob@example.org".into()],
                },
                postern_directory::FileAlias {
                    address: "broken@example.org".into(),
                    targets: vec!["|echo no such list >&2; exit 67".into()],
                },
            ],
        )
        .unwrap_err();
    // "bob" is not an address: the caller (newaliases) completes bare names.
    f.directory
        .replace_file_aliases(
            "file:/etc/aliases",
            &[
                postern_directory::FileAlias {
                    address: "both@example.org".into(),
                    targets: vec![
                        format!("|cat > {}", out.display()),
                        mbox.display().to_string(),
                        "bob@example.org".into(),
                    ],
                },
                postern_directory::FileAlias {
                    address: "busy@example.org".into(),
                    targets: vec!["|echo busy >&2; exit 75".into(), "bob@example.org".into()],
                },
                postern_directory::FileAlias {
                    address: "broken@example.org".into(),
                    targets: vec!["|echo no such list >&2; exit 67".into()],
                },
            ],
        )
        .unwrap();
    let none = BTreeSet::new();
    // Off by default: a permanent failure, nothing run.
    let o = f
        .lda
        .deliver(Some("s@remote.test"), "both@example.org", MSG, "Q1", &none)
        .await;
    assert!(matches!(o, Outcome::Failed(_)), "{o:?}");
    assert!(!out.exists());

    let lda = LocalDelivery::new(f.directory.clone(), Arc::new(f.store.clone()))
        .with_alias_targets(AliasTargets {
            allow_commands: true,
            allow_files: true,
            command_timeout: std::time::Duration::from_secs(30),
        });
    let o = lda
        .deliver(Some("s@remote.test"), "both@example.org", MSG, "Q2", &none)
        .await;
    let (accounts, forward) = delivered(&o);
    assert!(accounts.is_empty());
    assert_eq!(forward, ["bob@example.org"]);
    let piped = std::fs::read_to_string(&out).unwrap();
    assert!(piped.starts_with("Return-Path: <s@remote.test>\nDelivered-To: both@example.org\n"));
    let boxed = std::fs::read_to_string(&mbox).unwrap();
    assert!(boxed.starts_with("From s@remote.test "), "{boxed}");
    assert!(boxed.ends_with("body\n\n"), "{boxed}");

    let o = lda
        .deliver(Some("s@remote.test"), "busy@example.org", MSG, "Q3", &none)
        .await;
    assert!(matches!(o, Outcome::Deferred(_)), "{o:?}");
    let o = lda
        .deliver(
            Some("s@remote.test"),
            "broken@example.org",
            MSG,
            "Q4",
            &none,
        )
        .await;
    match o {
        Outcome::Failed(s) => assert!(s.text.contains("no such list"), "{}", s.text),
        other => panic!("{other:?}"),
    }
}

const JUNK: &[u8] =
    b"X-Postern-Verdict: junk; score=7.5; reasons=spf=fail(+3.0)\r\nFrom: s@remote.test\r\nSubject: offer\r\n\r\nbody\r\n";

/// A message the MX's verdict marked junk is filed in the account's `\Junk` mailbox (made when
/// the account has none); others still go to INBOX.
#[tokio::test]
async fn junk_verdict_files_into_the_junk_mailbox() {
    let f = fixture();
    let o = f
        .lda
        .deliver(
            Some("s@remote.test"),
            "alice@example.org",
            JUNK,
            "J1",
            &BTreeSet::new(),
        )
        .await;
    match &o {
        Outcome::Delivered { note, .. } => assert!(note.text.contains(" Junk as UID"), "{o:?}"),
        other => panic!("{other:?}"),
    }
    let junk = f.store.select("alice@example.org", "Junk", false).unwrap();
    assert_eq!(junk.messages.len(), 1);
    assert!(inbox(&f, "alice@example.org").is_empty());
    // bob has no Maildir yet: his account is made with its SPECIAL-USE folders, Junk included.
    f.lda
        .deliver(None, "bob@example.org", JUNK, "J2", &BTreeSet::new())
        .await;
    let boxes = f.store.list_mailboxes("bob@example.org").unwrap();
    let junk = boxes
        .iter()
        .find(|b| b.special_use == Some(postern_store::SpecialUse::Junk))
        .unwrap();
    assert_eq!(
        f.store
            .select("bob@example.org", &junk.name, false)
            .unwrap()
            .messages
            .len(),
        1
    );
    f.lda
        .deliver(None, "bob@example.org", MSG, "J3", &BTreeSet::new())
        .await;
    assert_eq!(inbox(&f, "bob@example.org").len(), 1);
}
