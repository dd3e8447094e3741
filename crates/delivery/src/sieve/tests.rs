//! Delivery with Sieve: the actions performed on the store and the queue.

use super::sequence::{Filtered, ImplicitKeep};
use super::tracker::FileTracker;
use super::*;
use crate::LocalDelivery;
use async_trait::async_trait;
use postern_directory::{DirectoryOptions, PasswordParams, SqliteDirectory};
use postern_sieve::{Action, DuplicateMark, Host, Vacation};
use postern_spool::{Outcome, Spool};
use postern_store::maildir::MaildirStore;
use postern_store::{ScriptInfo, StoreError, SystemFlags};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// Scripts in memory: the test double of the Maildir script store.
#[derive(Default)]
struct MemScripts {
    scripts: Mutex<BTreeMap<(String, String), String>>,
    active: Mutex<BTreeMap<String, String>>,
    vacation: Mutex<BTreeMap<String, String>>,
}

#[async_trait]
impl ScriptStore for MemScripts {
    async fn list_scripts(&self, account: &str) -> postern_store::Result<Vec<ScriptInfo>> {
        let active = self.active.lock().unwrap().get(account).cloned();
        Ok(self
            .scripts
            .lock()
            .unwrap()
            .iter()
            .filter(|((a, _), _)| a == account)
            .map(|((_, n), s)| ScriptInfo {
                name: n.clone(),
                active: active.as_deref() == Some(n.as_str()),
                size: s.len() as u64,
            })
            .collect())
    }
    async fn get_script(&self, account: &str, name: &str) -> postern_store::Result<Option<String>> {
        Ok(self
            .scripts
            .lock()
            .unwrap()
            .get(&(account.into(), name.into()))
            .cloned())
    }
    async fn active_script(
        &self,
        account: &str,
    ) -> postern_store::Result<Option<(String, String)>> {
        let Some(name) = self.active.lock().unwrap().get(account).cloned() else {
            return Ok(None);
        };
        Ok(self.get_script(account, &name).await?.map(|s| (name, s)))
    }
    async fn put_script(
        &self,
        account: &str,
        name: &str,
        source: &str,
    ) -> postern_store::Result<()> {
        self.scripts
            .lock()
            .unwrap()
            .insert((account.into(), name.into()), source.into());
        Ok(())
    }
    async fn activate_script(
        &self,
        account: &str,
        name: Option<&str>,
    ) -> postern_store::Result<()> {
        match name {
            Some(n) => self.active.lock().unwrap().insert(account.into(), n.into()),
            None => self.active.lock().unwrap().remove(account),
        };
        Ok(())
    }
    async fn delete_script(&self, account: &str, name: &str) -> postern_store::Result<()> {
        self.scripts
            .lock()
            .unwrap()
            .remove(&(account.into(), name.into()))
            .map(|_| ())
            .ok_or_else(|| StoreError::MailboxNotFound(name.into()))
    }
    async fn rename_script(
        &self,
        account: &str,
        old: &str,
        new: &str,
    ) -> postern_store::Result<()> {
        let s = self
            .scripts
            .lock()
            .unwrap()
            .remove(&(account.into(), old.into()));
        if let Some(s) = s {
            self.put_script(account, new, &s).await?;
        }
        Ok(())
    }
    async fn vacation_script(&self, account: &str) -> postern_store::Result<Option<String>> {
        Ok(self.vacation.lock().unwrap().get(account).cloned())
    }
    async fn set_vacation_script(
        &self,
        account: &str,
        source: Option<&str>,
    ) -> postern_store::Result<()> {
        match source {
            Some(s) => self
                .vacation
                .lock()
                .unwrap()
                .insert(account.into(), s.into()),
            None => self.vacation.lock().unwrap().remove(account),
        };
        Ok(())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: MaildirStore,
    spool: Arc<Spool>,
    scripts: Arc<MemScripts>,
    setup: SieveSetup,
    directory: Arc<dyn postern_directory::Directory>,
}

const ALICE: &str = "alice@example.org";
const MSG: &[u8] = b"From: bob@remote.test\r\nTo: alice@example.org\r\nSubject: hello\r\nMessage-ID: <m1@remote.test>\r\n\r\nbody\r\n";

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
    directory.add_account(ALICE, "pw").unwrap();
    let store = MaildirStore::open(dir.path().join("mail"), "mx.test").unwrap();
    store.create_account(ALICE).unwrap();
    let spool = Arc::new(Spool::open(dir.path().join("spool")).unwrap());
    let scripts = Arc::new(MemScripts::default());
    let setup = SieveSetup {
        scripts: scripts.clone(),
        queue: spool.clone(),
        tracker: Arc::new(FileTracker::new(dir.path().join("sieve-state"))),
        srs: Arc::new(Srs::new(b"test key of sufficient length!!".to_vec())),
        config: postern_config::Sieve::default(),
        separator: '/',
        hostname: "mx.test".into(),
        cache: Arc::new(ScriptCache::new(postern_sieve::Limits::default(), 16)),
    };
    Fixture {
        _dir: dir,
        store,
        spool,
        scripts,
        setup,
        directory,
    }
}

impl Fixture {
    async fn perform(&self, filtered: Filtered, key: &str) -> Outcome {
        self.perform_notified(filtered, key, None).await
    }

    async fn perform_notified(
        &self,
        filtered: Filtered,
        key: &str,
        notifier: Option<&Arc<dyn crate::Notifier>>,
    ) -> Outcome {
        let store: Arc<dyn Store> = Arc::new(self.store.clone());
        let rcpt = Recipient {
            account: ALICE,
            address: ALICE,
            sender: Some("bob@remote.test"),
            orig_to: None,
            auth: None,
            requiretls: false,
        };
        perform(
            &self.setup,
            &store,
            &self.directory,
            &rcpt,
            MSG,
            key,
            filtered,
            notifier,
        )
        .await
    }

    fn queued(&self) -> Vec<(postern_spool::QueueEntry, Vec<u8>)> {
        self.spool
            .ids()
            .unwrap()
            .into_iter()
            .map(|id| {
                (
                    self.spool.entry(&id).unwrap(),
                    self.spool.message(&id).unwrap(),
                )
            })
            .collect()
    }

    fn host(&self) -> host::DeliveryHost {
        host::DeliveryHost {
            runtime: tokio::runtime::Handle::current(),
            account: ALICE.into(),
            scripts: self.scripts.clone(),
            tracker: self.setup.tracker.clone(),
            cache: self.setup.cache.clone(),
            global_dir: None,
            mailboxes: host::Mailboxes::lazy(Arc::new(self.store.clone())),
            separator: '/',
            now: unix_now(),
        }
    }
}

fn only(actions: Vec<Action>) -> Filtered {
    Filtered {
        actions,
        ..Filtered::default()
    }
}

/// RFC 5228 §4.1 fileinto, RFC 5490 §3.2 `:create`, RFC 5232 §5 flags on the stored message.
#[tokio::test]
async fn fileinto_creates_the_folder_and_sets_flags() {
    let f = fixture();
    let o = f
        .perform(
            only(vec![Action::FileInto {
                mailbox: "Lists/rust".into(),
                flags: vec!["\\Seen".into(), "$label1".into()],
                copy: false,
                create: true,
                edited: None,
            }]),
            "Q1",
        )
        .await;
    assert!(matches!(o, Outcome::Delivered { .. }), "{o:?}");
    let snap = f.store.select(ALICE, "Lists/rust", false).unwrap();
    assert_eq!(snap.messages.len(), 1);
    assert!(snap.messages[0].flags.has(SystemFlags::SEEN));
    assert!(snap.messages[0].flags.has_keyword("$label1"));
    assert!(f
        .store
        .select(ALICE, "INBOX", false)
        .unwrap()
        .messages
        .is_empty());
    // The retry of the same queue id stores nothing new.
    f.perform(
        only(vec![Action::FileInto {
            mailbox: "Lists/rust".into(),
            flags: vec!["\\Seen".into()],
            copy: false,
            create: true,
            edited: None,
        }]),
        "Q1",
    )
    .await;
    assert_eq!(
        f.store
            .select(ALICE, "Lists/rust", false)
            .unwrap()
            .messages
            .len(),
        1
    );
}

/// A folder that does not exist, without `:create`: kept in INBOX, never lost.
#[tokio::test]
async fn fileinto_a_missing_folder_keeps_in_inbox() {
    let f = fixture();
    f.perform(
        only(vec![Action::FileInto {
            mailbox: "Nowhere".into(),
            flags: vec!["\\Flagged".into()],
            copy: false,
            create: false,
            edited: None,
        }]),
        "Q2",
    )
    .await;
    let snap = f.store.select(ALICE, "INBOX", false).unwrap();
    assert_eq!(snap.messages.len(), 1);
    assert!(snap.messages[0].flags.has(SystemFlags::FLAGGED));
}

/// Implicit keep with imap4flags' internal variable and an editheader edit.
#[tokio::test]
async fn implicit_keep_stores_flags_and_the_edited_message() {
    let f = fixture();
    let edited: Arc<[u8]> = Arc::from(&b"X-Spam: yes\r\nSubject: hello\r\n\r\nbody\r\n"[..]);
    f.perform(
        Filtered {
            implicit_keep: Some(ImplicitKeep {
                flags: vec!["\\Answered".into()],
                edited: Some(edited),
            }),
            ..Filtered::default()
        },
        "Q3",
    )
    .await;
    let snap = f.store.select(ALICE, "INBOX", false).unwrap();
    assert!(snap.messages[0].flags.has(SystemFlags::ANSWERED));
    let stored = f.store.fetch(ALICE, "INBOX", snap.messages[0].uid).unwrap();
    let text = String::from_utf8(stored).unwrap();
    assert!(
        text.starts_with(
            "Return-Path: <bob@remote.test>\r\nDelivered-To: alice@example.org\r\nX-Spam: yes\r\n"
        ),
        "{text}"
    );
}

/// RFC 5429 §2.1: reject fails the recipient with 5.7.1 and the reason; the queue sends the DSN.
#[tokio::test]
async fn reject_fails_with_5_7_1() {
    let f = fixture();
    let o = f
        .perform(
            only(vec![Action::Reject {
                reason: "I do not\nwant this".into(),
                extended: false,
            }]),
            "Q4",
        )
        .await;
    match o {
        Outcome::Failed(s) => {
            let text = s.to_string();
            assert!(text.contains("5.7.1"), "{text}");
            assert!(text.contains("I do not want this"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(f
        .store
        .select(ALICE, "INBOX", false)
        .unwrap()
        .messages
        .is_empty());
}

/// RFC 8689 §4.1: a redirect of a REQUIRETLS message is queued with REQUIRETLS; a redirect
/// of a message without it is queued without.
#[tokio::test]
async fn redirect_keeps_requiretls() {
    let f = fixture();
    let store: Arc<dyn Store> = Arc::new(f.store.clone());
    let rcpt = Recipient {
        account: ALICE,
        address: ALICE,
        sender: Some("bob@remote.test"),
        orig_to: None,
        auth: None,
        requiretls: true,
    };
    let redirect = only(vec![Action::Redirect {
        address: "carol@elsewhere.test".into(),
        copy: false,
        edited: None,
    }]);
    let o = perform(
        &f.setup,
        &store,
        &f.directory,
        &rcpt,
        MSG,
        "Q9",
        redirect,
        None,
    )
    .await;
    assert!(matches!(o, Outcome::Delivered { .. }), "{o:?}");
    let q = f.queued();
    assert_eq!(q.len(), 1);
    assert!(q[0].0.envelope.requiretls);
    // Without the flag, the redirect has none.
    f.perform(
        only(vec![Action::Redirect {
            address: "dave@elsewhere.test".into(),
            copy: false,
            edited: None,
        }]),
        "Q10",
    )
    .await;
    let q = f.queued();
    let dave = q
        .iter()
        .find(|(e, _)| e.envelope.recipients[0].address == "dave@elsewhere.test")
        .unwrap();
    assert!(!dave.0.envelope.requiretls);
}

/// RFC 5228 §4.2 redirect: queued as a new message, with an SRS sender for a remote domain,
/// the Delivered-To that detects a loop, and only once per queued message.
#[tokio::test]
async fn redirect_queues_once_with_an_srs_sender() {
    let f = fixture();
    let redirect = || {
        only(vec![Action::Redirect {
            address: "carol@elsewhere.test".into(),
            copy: false,
            edited: None,
        }])
    };
    let o = f.perform(redirect(), "Q5").await;
    assert!(matches!(o, Outcome::Delivered { .. }), "{o:?}");
    let q = f.queued();
    assert_eq!(q.len(), 1);
    let (entry, content) = &q[0];
    let sender = entry.envelope.sender.clone().unwrap();
    assert!(
        sender.starts_with("SRS0=") && sender.ends_with("=remote.test=bob@example.org"),
        "{sender}"
    );
    assert_eq!(
        f.setup.srs.reverse(&sender, unix_now()).as_deref(),
        Some("bob@remote.test")
    );
    assert_eq!(entry.envelope.recipients[0].address, "carol@elsewhere.test");
    assert!(content.starts_with(b"Delivered-To: alice@example.org\r\nFrom: bob@remote.test"));
    assert!(f
        .store
        .select(ALICE, "INBOX", false)
        .unwrap()
        .messages
        .is_empty());
    // A retry of the same delivery queues nothing more.
    f.perform(redirect(), "Q5").await;
    assert_eq!(f.queued().len(), 1);
    // To a local domain the sender is kept.
    f.perform(
        only(vec![Action::Redirect {
            address: "dave@example.org".into(),
            copy: true,
            edited: None,
        }]),
        "Q6",
    )
    .await;
    let local = f
        .queued()
        .into_iter()
        .find(|(e, _)| e.envelope.recipients[0].address == "dave@example.org")
        .unwrap();
    assert_eq!(local.0.envelope.sender.as_deref(), Some("bob@remote.test"));
}

/// RFC 5230: the reply is queued from `<>`, once; afterwards the host says this sender was
/// answered, so the interpreter sends no second reply within the period.
#[tokio::test]
async fn vacation_queues_one_reply_and_remembers_the_sender() {
    let f = fixture();
    let vacation = || {
        only(vec![Action::Vacation(Vacation {
            to: "bob@remote.test".into(),
            from: None,
            subject: Some("Away".into()),
            reason: "Back on Monday.".into(),
            mime: false,
            handle: "away".into(),
            period: 7 * 86_400,
        })])
    };
    let host = f.host();
    assert!(!host.vacation_replied("away", "bob@remote.test", 7 * 86_400));
    f.perform(vacation(), "Q7").await;
    let q = f.queued();
    assert_eq!(q.len(), 1);
    let (entry, reply) = &q[0];
    assert_eq!(entry.envelope.sender, None);
    assert_eq!(entry.envelope.recipients[0].address, "bob@remote.test");
    let reply = String::from_utf8(reply.clone()).unwrap();
    assert!(reply.contains("Auto-Submitted: auto-replied"), "{reply}");
    assert!(reply.contains("In-Reply-To: <m1@remote.test>"), "{reply}");
    assert!(host.vacation_replied("away", "Bob@Remote.test", 7 * 86_400));
    assert!(!host.vacation_replied("other", "bob@remote.test", 7 * 86_400));
    // The same delivery retried queues no second reply.
    f.perform(vacation(), "Q7").await;
    assert_eq!(f.queued().len(), 1);
}

/// RFC 7352 §3: marks are recorded once the message was stored.
#[tokio::test]
async fn duplicate_marks_are_recorded_after_storing() {
    let f = fixture();
    let host = f.host();
    assert!(!host.duplicate_seen("", "<m1@remote.test>", 3600));
    f.perform(
        Filtered {
            duplicate_marks: vec![DuplicateMark {
                handle: String::new(),
                id: "<m1@remote.test>".into(),
                period: 3600,
            }],
            ..Filtered::keep()
        },
        "Q8",
    )
    .await;
    assert!(host.duplicate_seen("", "<m1@remote.test>", 3600));
}

/// RFC 5490 §3.1 `mailboxexists`: the host lists the account's mailboxes on the first
/// question only, and answers from that list (INBOX in any case).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxexists_lists_the_account_once_when_asked() {
    let f = fixture();
    f.store.create_mailbox(ALICE, "Work", None).unwrap();
    let host = f.host();
    let store = f.store.clone();
    let answers = tokio::task::spawn_blocking(move || {
        let before = (
            host.mailbox_exists("Work"),
            host.mailbox_exists("inbox"),
            host.mailbox_exists("Nope"),
        );
        // Listed once: a folder created after the first question is not seen by this run.
        store.create_mailbox(ALICE, "Later", None).unwrap();
        (before, host.mailbox_exists("Later"))
    })
    .await
    .unwrap();
    assert_eq!(answers, ((true, true, false), false));
    // The next run lists again and sees it.
    let host = f.host();
    let later = tokio::task::spawn_blocking(move || host.mailbox_exists("Later"))
        .await
        .unwrap();
    assert!(later);
}

/// A script that does not compile keeps the message in INBOX (and logs; nothing is lost).
#[tokio::test]
async fn a_broken_script_keeps_in_inbox() {
    let f = fixture();
    f.scripts
        .put_script(ALICE, "broken", "if true {")
        .await
        .unwrap();
    f.scripts
        .activate_script(ALICE, Some("broken"))
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(f.store.clone());
    let lda = LocalDelivery::new(f.directory.clone(), store).with_sieve(SieveSetup {
        scripts: f.scripts.clone(),
        queue: f.spool.clone(),
        tracker: f.setup.tracker.clone(),
        srs: f.setup.srs.clone(),
        config: postern_config::Sieve::default(),
        separator: '/',
        hostname: "mx.test".into(),
        cache: f.setup.cache.clone(),
    });
    let o = lda
        .deliver(Some("bob@remote.test"), ALICE, MSG, "Q9", &BTreeSet::new())
        .await;
    assert!(matches!(o, Outcome::Delivered { .. }), "{o:?}");
    let snap = f.store.select(ALICE, "INBOX", false).unwrap();
    assert_eq!(snap.messages.len(), 1);
    assert!(f.queued().is_empty());
}

impl Fixture {
    fn lda(&self) -> LocalDelivery {
        let store: Arc<dyn Store> = Arc::new(self.store.clone());
        LocalDelivery::new(self.directory.clone(), store).with_sieve(SieveSetup {
            scripts: self.scripts.clone(),
            queue: self.spool.clone(),
            tracker: self.setup.tracker.clone(),
            srs: self.setup.srs.clone(),
            config: postern_config::Sieve::default(),
            separator: '/',
            hostname: "mx.test".into(),
            cache: self.setup.cache.clone(),
        })
    }

    async fn activate(&self, source: &str) {
        self.scripts
            .put_script(ALICE, "main", source)
            .await
            .unwrap();
        self.scripts
            .activate_script(ALICE, Some("main"))
            .await
            .unwrap();
    }
}

/// A real script end to end through `deliver`: RFC 5228 §4.1 fileinto with RFC 5232 flags.
#[tokio::test]
async fn script_files_into_a_folder_with_flags() {
    let f = fixture();
    f.activate(
        r#"require ["fileinto", "imap4flags", "mailbox"];
if header :contains "subject" "hello" {
    fileinto :create :flags ["\\Seen", "$greeting"] "Greetings";
}"#,
    )
    .await;
    let o = f
        .lda()
        .deliver(Some("bob@remote.test"), ALICE, MSG, "S1", &BTreeSet::new())
        .await;
    assert!(matches!(o, Outcome::Delivered { .. }), "{o:?}");
    let snap = f.store.select(ALICE, "Greetings", false).unwrap();
    assert_eq!(snap.messages.len(), 1);
    assert!(snap.messages[0].flags.has(SystemFlags::SEEN));
    assert!(snap.messages[0].flags.has_keyword("$greeting"));
    assert!(f
        .store
        .select(ALICE, "INBOX", false)
        .unwrap()
        .messages
        .is_empty());
}

/// RFC 5230 §4.2 through the interpreter: one reply per sender per period.
#[tokio::test]
async fn script_vacation_replies_once_per_sender() {
    let f = fixture();
    f.scripts
        .set_vacation_script(
            ALICE,
            Some(r#"require "vacation"; vacation :days 7 :subject "Away" "Back on Monday.";"#),
        )
        .await
        .unwrap();
    let lda = f.lda();
    for key in ["V1", "V2"] {
        let o = lda
            .deliver(Some("bob@remote.test"), ALICE, MSG, key, &BTreeSet::new())
            .await;
        assert!(matches!(o, Outcome::Delivered { .. }), "{o:?}");
    }
    let q = f.queued();
    assert_eq!(q.len(), 1, "one reply for two messages from one sender");
    assert_eq!(q[0].0.envelope.recipients[0].address, "bob@remote.test");
    // Both messages were kept (the vacation script does not cancel the implicit keep).
    assert_eq!(
        f.store
            .select(ALICE, "INBOX", false)
            .unwrap()
            .messages
            .len(),
        2
    );
}

/// A reject from a real script: the recipient fails with 5.7.1.
#[tokio::test]
async fn script_reject_fails_the_recipient() {
    let f = fixture();
    f.activate(r#"require "reject"; reject "no thanks";"#).await;
    let o = f
        .lda()
        .deliver(Some("bob@remote.test"), ALICE, MSG, "R1", &BTreeSet::new())
        .await;
    match o {
        Outcome::Failed(s) => {
            assert!(s.to_string().contains("5.7.1") && s.to_string().contains("no thanks"))
        }
        other => panic!("{other:?}"),
    }
}

/// RFC 5429 §2.2: the reject is known before the `250`, and looking changes nothing.
#[tokio::test]
async fn reject_is_known_before_the_250() {
    let f = fixture();
    let lda = f.lda();
    assert_eq!(
        lda.sieve_rejects(Some("bob@remote.test"), ALICE, MSG).await,
        None
    );
    f.activate(r#"require "ereject"; if header :is "subject" "hello" { ereject "go away"; }"#)
        .await;
    assert_eq!(
        lda.sieve_rejects(Some("bob@remote.test"), ALICE, MSG)
            .await
            .as_deref(),
        Some("go away")
    );
    let other = b"Subject: something else\r\n\r\nbody\r\n";
    assert_eq!(
        lda.sieve_rejects(Some("bob@remote.test"), ALICE, other)
            .await,
        None
    );
    assert!(f
        .store
        .select(ALICE, "INBOX", false)
        .unwrap()
        .messages
        .is_empty());
    assert!(f.queued().is_empty());
}

/// RFC 5435/5436: a mailto notification is queued from `<>`, once per delivery.
#[tokio::test]
async fn notify_queues_a_mailto_notification_once() {
    let f = fixture();
    let notify = || Filtered {
        actions: vec![Action::Notify(postern_sieve::Notify {
            method: "mailto:alice@mobile.test".into(),
            from: None,
            importance: 2,
            options: Vec::new(),
            message: Some("New mail from Bob".into()),
        })],
        ..Filtered::keep()
    };
    f.perform(notify(), "N1").await;
    f.perform(notify(), "N1").await;
    let q = f.queued();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].0.envelope.sender, None);
    assert_eq!(q[0].0.envelope.recipients[0].address, "alice@mobile.test");
    let text = String::from_utf8_lossy(&q[0].1).into_owned();
    assert!(text.contains("Auto-Submitted: auto-notified"), "{text}");
    assert_eq!(
        f.store
            .select(ALICE, "INBOX", false)
            .unwrap()
            .messages
            .len(),
        1
    );
}

/// A bounce to the SRS address of a redirect resolves to the original sender; a forged or
/// foreign one resolves as the directory says (no such user).
#[tokio::test]
async fn srs_bounces_resolve_to_the_original_sender() {
    use postern_directory::{Address, Destination, Directory, Resolution};
    let f = fixture();
    let dir = super::srs::SrsDirectory::new(f.directory.clone(), f.setup.srs.clone());
    let srs = f
        .setup
        .srs
        .forward("Bob@remote.test", "example.org", unix_now());
    let got = dir.resolve(&Address::parse(&srs).unwrap()).await.unwrap();
    assert_eq!(
        got,
        Resolution::Deliver(vec![Destination::Remote("bob@remote.test".into())])
    );
    let forged = Address::parse("SRS0=abcd=AA=remote.test=eve@example.org").unwrap();
    assert_eq!(dir.resolve(&forged).await.unwrap(), Resolution::NotFound);
    let alice = Address::parse(ALICE).unwrap();
    assert!(matches!(
        dir.resolve(&alice).await.unwrap(),
        Resolution::Deliver(_)
    ));
}

/// RFC 5228 §5.4 `envelope "auth"`: the submitter the queue knows reaches the script.
#[tokio::test]
async fn envelope_auth_reaches_the_script() {
    let f = fixture();
    f.activate(
        r#"require ["envelope", "fileinto", "mailbox"];
if envelope :is "auth" "carol@example.org" { fileinto :create "FromCarol"; }"#,
    )
    .await;
    let info = crate::EnvelopeInfo {
        orig_rcpt: None,
        auth: Some("carol@example.org".into()),
        requiretls: false,
    };
    let lda = f.lda();
    lda.deliver_with(
        Some("carol@example.org"),
        ALICE,
        MSG,
        "A1",
        &BTreeSet::new(),
        &info,
    )
    .await;
    lda.deliver(
        Some("carol@example.org"),
        ALICE,
        MSG,
        "A2",
        &BTreeSet::new(),
    )
    .await;
    assert_eq!(
        f.store
            .select(ALICE, "FromCarol", false)
            .unwrap()
            .messages
            .len(),
        1
    );
    assert_eq!(
        f.store
            .select(ALICE, "INBOX", false)
            .unwrap()
            .messages
            .len(),
        1
    );
}

/// RFC 5230 §4.1: `[sieve]`'s vacation periods reach the interpreter's limits, so a script
/// without `:days` gets the configured default and every period stays within the bounds.
#[test]
fn limits_carry_the_vacation_periods() {
    let config = postern_config::Sieve {
        vacation_min_period_secs: 600,
        vacation_default_period_secs: 3 * 86_400,
        vacation_max_period_secs: 30 * 86_400,
        max_redirects: 2,
        ..postern_config::Sieve::default()
    };
    let l = limits(&config);
    assert_eq!(l.max_redirects, 2);
    assert_eq!(l.vacation_period(None), 3 * 86_400);
    assert_eq!(l.vacation_period(Some(60)), 600);
    assert_eq!(l.vacation_period(Some(90 * 86_400)), 30 * 86_400);
}

/// Every copy stored (a fileinto and the keep) is announced to the new-mail hook, with the
/// mailbox it went into, its UID and its file; a message not stored is not announced.
#[tokio::test]
async fn stored_copies_are_announced() {
    let f = fixture();
    let notifier = Arc::new(crate::tests::Recorder::default());
    let hook: Arc<dyn crate::Notifier> = notifier.clone();
    f.perform_notified(
        Filtered {
            actions: vec![Action::FileInto {
                mailbox: "Lists/rust".into(),
                flags: Vec::new(),
                copy: true,
                create: true,
                edited: None,
            }],
            ..Filtered::keep()
        },
        "QN1",
        Some(&hook),
    )
    .await;
    let events = notifier.events();
    let mailboxes: Vec<_> = events.iter().map(|e| e.mailbox.as_str()).collect();
    assert_eq!(mailboxes, ["Lists/rust", "INBOX"]);
    for e in &events {
        assert_eq!(e.account, ALICE);
        assert_eq!(e.sender.as_deref(), Some("bob@remote.test"));
        let path = e.path.as_ref().expect("the Maildir file");
        let on_disk = std::fs::read(path).unwrap();
        assert_eq!(on_disk.len() as u64, e.size);
        assert_eq!(f.store.fetch(ALICE, &e.mailbox, e.uid).unwrap(), on_disk);
    }
    f.perform_notified(only(vec![Action::Discard]), "QN2", Some(&hook))
        .await;
    assert_eq!(notifier.events().len(), 2);
}

const JUNK_MSG: &[u8] = b"X-Postern-Verdict: junk; score=9.0; reasons=dmarc=fail p=quarantine(+10.0)\r\nFrom: bob@remote.test\r\nTo: alice@example.org\r\nSubject: hello\r\nMessage-ID: <j1@remote.test>\r\n\r\nbody\r\n";

impl Fixture {
    async fn perform_message(&self, filtered: Filtered, key: &str, message: &[u8]) -> Outcome {
        let store: Arc<dyn Store> = Arc::new(self.store.clone());
        let rcpt = Recipient {
            account: ALICE,
            address: ALICE,
            sender: Some("bob@remote.test"),
            orig_to: None,
            auth: None,
            requiretls: false,
        };
        perform(
            &self.setup,
            &store,
            &self.directory,
            &rcpt,
            message,
            key,
            filtered,
            None,
        )
        .await
    }

    fn count(&self, mailbox: &str) -> usize {
        self.store
            .select(ALICE, mailbox, false)
            .unwrap()
            .messages
            .len()
    }
}

/// A junk verdict moves only the implicit keep to `\Junk`: a script's own `keep` or
/// `fileinto` decides where the message goes.
#[tokio::test]
async fn junk_goes_to_junk_unless_the_script_decides() {
    let f = fixture();
    f.perform_message(Filtered::keep(), "J1", JUNK_MSG).await;
    assert_eq!((f.count("Junk"), f.count("INBOX")), (1, 0));
    f.perform_message(
        only(vec![Action::Keep {
            flags: Vec::new(),
            edited: None,
        }]),
        "J2",
        JUNK_MSG,
    )
    .await;
    assert_eq!((f.count("Junk"), f.count("INBOX")), (1, 1));
    f.perform_message(
        only(vec![Action::FileInto {
            mailbox: "Work".into(),
            flags: Vec::new(),
            copy: false,
            create: true,
            edited: None,
        }]),
        "J3",
        JUNK_MSG,
    )
    .await;
    assert_eq!((f.count("Junk"), f.count("Work")), (1, 1));
    // Not junk: the implicit keep is INBOX as always.
    f.perform_message(Filtered::keep(), "J4", MSG).await;
    assert_eq!((f.count("Junk"), f.count("INBOX")), (1, 2));
}
