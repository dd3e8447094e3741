use super::*;
use crate::account::{FetchOptions, Folders};
use crate::error::ErrorKind;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn account(local: &str, url: &str) -> FetchAccount {
    FetchAccount {
        id: String::new(),
        local: local.into(),
        url: RemoteUrl::parse(url).unwrap(),
        options: FetchOptions::default(),
        origin: Origin::Cli,
    }
}

fn seen(id: &str, fingerprint: Option<&str>, delete_pending: bool) -> SeenMessage {
    SeenMessage {
        id: id.into(),
        fingerprint: fingerprint.map(String::from),
        delete_pending,
    }
}

fn by_id(messages: &[SeenMessage]) -> HashMap<String, SeenMessage> {
    messages.iter().map(|m| (m.id.clone(), m.clone())).collect()
}

#[tokio::test]
async fn state_round_trips_per_account_and_folder() {
    let t = tempfile::tempdir().unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    assert_eq!(db.load("1", "INBOX").await.unwrap(), FolderState::default());
    let batch = [
        seen("a1", None, false),
        seen("a2", None, true),
        seen("a3", Some("<x@y>|120"), false),
    ];
    db.record("1", "INBOX", &batch).await.unwrap();
    db.record("1", "Sent", &[seen("9", Some("<s@y>|7"), false)])
        .await
        .unwrap();
    db.record("config:work", "INBOX", &[seen("a1", None, false)])
        .await
        .unwrap();
    let inbox = db.load("1", "INBOX").await.unwrap();
    assert_eq!(inbox.uidvalidity, None);
    assert_eq!(inbox.seen, by_id(&batch));
    assert_eq!(db.load("1", "Sent").await.unwrap().seen.len(), 1);
    assert_eq!(db.load("config:work", "INBOX").await.unwrap().seen.len(), 1);

    // Recording again replaces by id (a deletion confirmed pending, say).
    db.record("1", "INBOX", &[seen("a1", None, true)])
        .await
        .unwrap();
    assert!(db.load("1", "INBOX").await.unwrap().seen["a1"].delete_pending);

    db.forget("1", "INBOX", &["a1".into(), "a2".into(), "nope".into()])
        .await
        .unwrap();
    let inbox = db.load("1", "INBOX").await.unwrap();
    assert_eq!(inbox.seen.keys().collect::<Vec<_>>(), ["a3"]);
    assert_eq!(db.load("1", "Sent").await.unwrap().seen.len(), 1);
}

#[tokio::test]
async fn replace_swaps_the_whole_folder_and_its_uidvalidity() {
    let t = tempfile::tempdir().unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    let first = FolderState {
        uidvalidity: Some(100),
        seen: HashMap::new(),
    };
    db.replace("1", "INBOX", &first).await.unwrap();
    db.record(
        "1",
        "INBOX",
        &[
            seen("1", Some("<a@x>|10"), false),
            seen("2", Some("<b@x>|20"), false),
        ],
    )
    .await
    .unwrap();
    let loaded = db.load("1", "INBOX").await.unwrap();
    assert_eq!(loaded.uidvalidity, Some(100));
    assert_eq!(loaded.seen.len(), 2);

    // UIDVALIDITY changed: the message <b@x> is now UID 7, <a@x> is gone.
    let second = FolderState {
        uidvalidity: Some(u32::MAX),
        seen: by_id(&[seen("7", Some("<b@x>|20"), false)]),
    };
    db.replace("1", "INBOX", &second).await.unwrap();
    assert_eq!(db.load("1", "INBOX").await.unwrap(), second);
    // Another folder was not touched.
    db.replace("1", "Other", &FolderState::default())
        .await
        .unwrap();
    assert_eq!(db.load("1", "INBOX").await.unwrap(), second);
    assert_eq!(db.load("1", "Other").await.unwrap(), FolderState::default());
}

#[tokio::test]
async fn drop_account_forgets_state_and_status_of_that_account_only() {
    let t = tempfile::tempdir().unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    for id in ["config:a", "config:b"] {
        db.replace(
            id,
            "INBOX",
            &FolderState {
                uidvalidity: Some(5),
                seen: by_id(&[seen("1", None, false)]),
            },
        )
        .await
        .unwrap();
        db.record_run(id, SystemTime::now(), Ok(&RunReport::default()))
            .unwrap();
    }
    db.drop_account("config:a").await.unwrap();
    assert_eq!(
        db.load("config:a", "INBOX").await.unwrap(),
        FolderState::default()
    );
    assert_eq!(db.status("config:a").unwrap(), AccountStatus::default());
    assert_eq!(db.load("config:b", "INBOX").await.unwrap().seen.len(), 1);
    assert!(db.status("config:b").unwrap().last_run.is_some());
}

#[test]
fn status_counts_failures_in_a_row_and_totals() {
    let t = tempfile::tempdir().unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    let id = "config:home";
    assert_eq!(db.status(id).unwrap(), AccountStatus::default());
    let t0 = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let report = RunReport {
        fetched: 3,
        bytes: 3000,
        ..RunReport::default()
    };
    db.record_run(id, t0, Ok(&report)).unwrap();
    let down = FetchError::network("cannot connect to pop3s://bob@h:995: refused");
    let t1 = t0 + Duration::from_secs(60);
    let t2 = t0 + Duration::from_secs(120);
    db.record_run(id, t1, Err(&down)).unwrap();
    db.record_run(id, t2, Err(&down)).unwrap();
    assert_eq!(
        db.status(id).unwrap(),
        AccountStatus {
            last_run: Some(t2),
            last_success: Some(t0),
            last_error: Some("network: cannot connect to pop3s://bob@h:995: refused".into()),
            failures: 2,
            total_fetched: 3,
            total_bytes: 3000,
        }
    );
    let t3 = t0 + Duration::from_secs(180);
    db.record_run(id, t3, Ok(&report)).unwrap();
    assert_eq!(
        db.status(id).unwrap(),
        AccountStatus {
            last_run: Some(t3),
            last_success: Some(t3),
            last_error: None,
            failures: 0,
            total_fetched: 6,
            total_bytes: 6000,
        }
    );
    // A first run that fails.
    db.record_run("config:new", t1, Err(&down)).unwrap();
    let s = db.status("config:new").unwrap();
    assert_eq!(
        (s.failures, s.last_success, s.last_run),
        (1, None, Some(t1))
    );
}

#[test]
fn accounts_are_added_listed_and_removed() {
    let t = tempfile::tempdir().unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    let mut a = account("alice@example.org", "pop3s://alice@mail.example.com");
    a.id = "ignored".into();
    a.origin = Origin::Config;
    a.options.keep = false;
    a.options.folders = Folders::All;
    let a = db.add(&a, &Secret::new("pw-a")).unwrap();
    assert_eq!((a.id.as_str(), a.origin), ("1", Origin::Cli));
    let b = db
        .add(
            &account("bob@example.org", "imaps://bob%40x.org@[::1]:14993/Lists"),
            &Secret::new("pw-b"),
        )
        .unwrap();
    assert_eq!(b.id, "2");
    // The same owner may fetch another remote account.
    let c = db
        .add(
            &account("alice@example.org", "imaps://alice@mail.example.com"),
            &Secret::new("pw-c"),
        )
        .unwrap();

    assert_eq!(db.list(None).unwrap(), [a.clone(), b.clone(), c.clone()]);
    assert_eq!(
        db.list(Some("alice@example.org")).unwrap(),
        [a.clone(), c.clone()]
    );
    assert_eq!(db.list(Some("ALICE@example.org")).unwrap().len(), 2);
    assert_eq!(db.list(Some("carol@example.org")).unwrap(), []);

    // The same owner and URL (written differently) is refused.
    let e = db
        .add(
            &account("Alice@example.org", "POP3S://alice@mail.example.com:995"),
            &Secret::new("x"),
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("already (account 1)"), "{e}");

    assert_eq!(db.password("1").unwrap(), Secret::new("pw-a"));
    assert_eq!(db.password("2").unwrap(), Secret::new("pw-b"));
    assert_eq!(db.password("3").unwrap(), Secret::new("pw-c"));
    for missing in ["4", "0", "01", "config:x", ""] {
        let e = db.password(missing).unwrap_err();
        assert!(e.message.contains("no fetch account"), "{missing}: {e}");
    }

    assert!(db.remove("1").unwrap());
    assert!(!db.remove("1").unwrap());
    assert!(!db.remove("config:x").unwrap());
    assert_eq!(db.list(None).unwrap(), [b, c]);
    // Ids are not given out again.
    let d = db
        .add(
            &account("alice@example.org", "pop3s://alice@mail.example.com"),
            &Secret::new("pw-d"),
        )
        .unwrap();
    assert_eq!(d.id, "4");
}

#[tokio::test]
async fn remove_drops_the_state_of_the_account() {
    let t = tempfile::tempdir().unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    let a = db
        .add(&account("a@x.org", "pop3s://a@h"), &Secret::new("p"))
        .unwrap();
    let b = db
        .add(&account("b@x.org", "pop3s://b@h"), &Secret::new("p"))
        .unwrap();
    for id in [&a.id, &b.id] {
        db.record(id, "INBOX", &[seen("u1", None, false)])
            .await
            .unwrap();
        db.record_run(id, SystemTime::now(), Ok(&RunReport::default()))
            .unwrap();
    }
    assert!(db.remove(&a.id).unwrap());
    assert!(db.load(&a.id, "INBOX").await.unwrap().seen.is_empty());
    assert_eq!(db.status(&a.id).unwrap(), AccountStatus::default());
    assert_eq!(db.load(&b.id, "INBOX").await.unwrap().seen.len(), 1);
}

#[test]
fn passwords_are_encrypted_at_rest_and_files_are_private() {
    let t = tempfile::tempdir().unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    assert!(
        !t.path().join(KEY_FILE).exists(),
        "the key is made on first need"
    );
    db.add(
        &account("a@x.org", "pop3s://a@h"),
        &Secret::new("correct horse battery staple ✓"),
    )
    .unwrap();
    for f in [DB_FILE, KEY_FILE] {
        let mode = fs::metadata(t.path().join(f)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    assert_eq!(fs::read(t.path().join(KEY_FILE)).unwrap().len(), 32);
    let c = db.inner.lock();
    let stored: String = c
        .conn
        .query_row("SELECT password FROM accounts WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    drop(c);
    assert!(stored.starts_with("v1:"), "{stored}");
    assert!(!stored.contains("horse"));
    drop(db);
    for f in fs::read_dir(t.path()).unwrap() {
        let bytes = fs::read(f.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(5).any(|w| w == b"horse"),
            "plaintext at rest"
        );
    }
    let db = SqliteFetchDb::open(t.path()).unwrap();
    assert_eq!(
        db.password("1").unwrap().expose(),
        "correct horse battery staple ✓"
    );
}

#[test]
fn a_key_file_of_another_database_is_named_as_such() {
    let t = tempfile::tempdir().unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    db.add(&account("a@x.org", "pop3s://a@h"), &Secret::new("p"))
        .unwrap();
    drop(db);
    let key = t.path().join(KEY_FILE);
    fs::write(&key, [0x42u8; 32]).unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    let e = db.password("1").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("does not match the database"), "{e}");
    // Adding with the wrong key is refused the same way: nothing is sealed with it.
    let e = db
        .add(&account("b@x.org", "pop3s://b@h"), &Secret::new("p"))
        .unwrap_err();
    assert!(e.message.contains("does not match the database"), "{e}");

    // A missing key is not silently replaced by a new one.
    fs::remove_file(&key).unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    let e = db.password("1").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("is missing"), "{e}");
    assert!(!key.exists());
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    db.add(&account("a@x.org", "pop3s://a@h"), &Secret::new("p"))
        .unwrap();
    drop(db);
    let key = t.path().join(KEY_FILE);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    let e = db.password("1").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("can be read by other users"), "{e}");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let mut bytes = fs::read(&key).unwrap();
    bytes.push(0);
    fs::write(&key, bytes).unwrap();
    let e = db.password("1").unwrap_err();
    assert!(e.message.contains("not 32"), "{e}");
}

#[test]
fn tampered_and_moved_ciphertexts_do_not_decrypt() {
    let t = tempfile::tempdir().unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    db.add(&account("a@x.org", "pop3s://a@h"), &Secret::new("secret-a"))
        .unwrap();
    db.add(&account("b@x.org", "pop3s://b@h"), &Secret::new("secret-b"))
        .unwrap();
    let sql = |q: &str| db.inner.lock().conn.execute_batch(q).unwrap();

    // Account 1's ciphertext copied into account 2's row.
    sql("UPDATE accounts SET password = (SELECT password FROM accounts WHERE id = 1) WHERE id = 2");
    assert_eq!(db.password("1").unwrap().expose(), "secret-a");
    let e = db.password("2").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("does not decrypt"), "{e}");

    // One bit of account 1's ciphertext flipped.
    let stored: String = db
        .inner
        .lock()
        .conn
        .query_row("SELECT password FROM accounts WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut raw = BASE64.decode(&stored[3..]).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    db.inner
        .lock()
        .conn
        .execute(
            "UPDATE accounts SET password = ?1 WHERE id = 1",
            params![format!("v1:{}", BASE64.encode(raw))],
        )
        .unwrap();
    let e = db.password("1").unwrap_err();
    assert!(e.message.contains("does not decrypt"), "{e}");

    sql("UPDATE accounts SET password = 'hunter2' WHERE id = 1");
    let e = db.password("1").unwrap_err();
    assert!(e.message.contains("not in a format"), "{e}");
}

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_records_from_many_tasks_all_land() {
    let t = tempfile::tempdir().unwrap();
    let db = SqliteFetchDb::open(t.path()).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..16 {
        let db = db.clone();
        tasks.spawn(async move {
            for batch in 0..10 {
                let messages: Vec<SeenMessage> = (0..10)
                    .map(|i| seen(&format!("{task}-{batch}-{i}"), None, i % 2 == 0))
                    .collect();
                let folder = if task % 2 == 0 { "INBOX" } else { "Other" };
                db.record("config:x", folder, &messages).await.unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let inbox = db.load("config:x", "INBOX").await.unwrap();
    let other = db.load("config:x", "Other").await.unwrap();
    assert_eq!((inbox.seen.len(), other.seen.len()), (800, 800));
    assert!(inbox.seen["4-9-8"].delete_pending);
    assert!(!other.seen["5-0-1"].delete_pending);
}

#[tokio::test]
async fn two_handles_on_one_file_see_each_other_and_reopen_keeps_everything() {
    let t = tempfile::tempdir().unwrap();
    let serve = SqliteFetchDb::open(t.path()).unwrap();
    let cli = SqliteFetchDb::open(t.path()).unwrap();
    let a = cli
        .add(
            &account("a@x.org", "imaps://a@h/Lists%2Frust"),
            &Secret::new("pw"),
        )
        .unwrap();
    assert_eq!(serve.list(None).unwrap(), std::slice::from_ref(&a));
    assert_eq!(serve.password(&a.id).unwrap().expose(), "pw");
    let state = FolderState {
        uidvalidity: Some(42),
        seen: by_id(&[seen("1", Some("<m@x>|5"), true)]),
    };
    serve.replace(&a.id, "Lists/rust", &state).await.unwrap();
    serve
        .record_run(
            &a.id,
            UNIX_EPOCH + Duration::from_secs(1),
            Ok(&RunReport {
                fetched: 1,
                bytes: 5,
                ..RunReport::default()
            }),
        )
        .unwrap();
    assert_eq!(cli.load(&a.id, "Lists/rust").await.unwrap(), state);
    drop(serve);
    drop(cli);

    let db = SqliteFetchDb::open(t.path()).unwrap();
    assert_eq!(db.list(None).unwrap(), std::slice::from_ref(&a));
    assert_eq!(db.password(&a.id).unwrap().expose(), "pw");
    assert_eq!(db.load(&a.id, "Lists/rust").await.unwrap(), state);
    assert_eq!(db.status(&a.id).unwrap().total_bytes, 5);
}

#[test]
fn refuses_a_file_that_is_not_a_fetch_database() {
    let t = tempfile::tempdir().unwrap();
    let conn = Connection::open(t.path().join(DB_FILE)).unwrap();
    conn.execute_batch("CREATE TABLE x (y)").unwrap();
    drop(conn);
    let e = SqliteFetchDb::open(t.path()).unwrap_err();
    assert!(e.message.contains("some other program"), "{e}");

    let t = tempfile::tempdir().unwrap();
    let conn = Connection::open(t.path().join(DB_FILE)).unwrap();
    conn.execute_batch("PRAGMA application_id = 1; PRAGMA user_version = 1")
        .unwrap();
    drop(conn);
    let e = SqliteFetchDb::open(t.path()).unwrap_err();
    assert!(e.message.contains("not postern's fetch database"), "{e}");

    let t = tempfile::tempdir().unwrap();
    drop(SqliteFetchDb::open(t.path()).unwrap());
    let conn = Connection::open(t.path().join(DB_FILE)).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let e = SqliteFetchDb::open(t.path()).unwrap_err();
    assert!(e.message.contains("newer than this postern"), "{e}");
}

#[test]
fn times_round_trip_through_milliseconds() {
    for ms in [0, 1, 1_700_000_000_123, -86_400_000] {
        assert_eq!(to_ms(from_ms(ms)), ms);
    }
}
