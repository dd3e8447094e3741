//! Bulk import: flags, internal dates, `\Recent`, kept UIDs and UIDVALIDITY, idempotency keys,
//! and that a rebuilt index keeps what the import stored.

mod common;

use common::*;
use postern_store::{ImportMessage, StoreError, SystemFlags};

fn im(n: usize, uid: Option<u32>, key: Option<&str>) -> ImportMessage {
    ImportMessage {
        data: msg(n),
        flags: flags(&["\\Seen", "Work"]),
        internal_date: Some(1_000_000_000 + n as i64),
        recent: false,
        uid,
        key: key.map(str::to_owned),
    }
}

#[test]
fn import_keeps_flags_dates_and_uids() {
    let (_t, s) = setup();
    assert!(s.adopt_uidvalidity(ACCT, "INBOX", 1234, 10).unwrap());
    let batch = vec![
        im(1, Some(12), Some("k1")),
        im(2, Some(11), Some("k2")), // below UIDNEXT by then: gets the next UID
        ImportMessage {
            data: msg(3),
            recent: true,
            ..ImportMessage::default()
        },
    ];
    let out = s.import(ACCT, "INBOX", batch).unwrap();
    let uids: Vec<u32> = out.iter().map(|o| o.appended.uid).collect();
    assert_eq!(uids, [12, 13, 14]);
    assert!(out
        .iter()
        .all(|o| !o.existed && o.appended.uidvalidity == 1234));
    let snap = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(snap.uidvalidity, 1234);
    assert_eq!(snap.uidnext, 15);
    let m = &snap.messages[0];
    assert!(m.flags.has(SystemFlags::SEEN) && m.flags.has_keyword("Work"));
    assert_eq!(m.internal_date, 1_000_000_001);
    assert!(!m.recent);
    assert!(snap.messages[2].recent && snap.messages[2].flags.is_empty());
    assert_eq!(s.fetch(ACCT, "INBOX", 13).unwrap(), msg(2));

    // A second run with the same keys stores nothing new.
    let again = s
        .import(
            ACCT,
            "INBOX",
            vec![im(1, Some(12), Some("k1")), im(4, None, Some("k4"))],
        )
        .unwrap();
    assert!(again[0].existed && again[0].appended.uid == 12);
    assert!(!again[1].existed && again[1].appended.uid == 15);
    assert_eq!(s.status(ACCT, "INBOX").unwrap().messages, 4);

    // The files carry it all: a rebuilt index gives the same UIDs, flags and UIDVALIDITY.
    s.reindex(ACCT).unwrap();
    let after = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(after.uidvalidity, 1234);
    let a: Vec<_> = after
        .messages
        .iter()
        .map(|m| (m.uid, m.flags.clone()))
        .collect();
    let b: Vec<_> = snap
        .messages
        .iter()
        .map(|m| (m.uid, m.flags.clone()))
        .collect();
    assert_eq!(&a[..3], &b[..]);
}

#[test]
fn uidvalidity_is_adopted_only_by_empty_mailboxes() {
    let (_t, s) = setup();
    s.append(ACCT, "INBOX", &msg(1), &flags(&[]), None).unwrap();
    assert!(!s.adopt_uidvalidity(ACCT, "INBOX", 99, 5).unwrap());
    // Another mailbox's UIDVALIDITY: an empty one gives it up, one with mail keeps it.
    let sent = s.status(ACCT, "Sent").unwrap().uidvalidity;
    assert!(s.adopt_uidvalidity(ACCT, "Junk", sent, 5).unwrap());
    let sent_now = s.status(ACCT, "Sent").unwrap().uidvalidity;
    assert!(sent_now > sent);
    assert_eq!(s.status(ACCT, "Junk").unwrap().uidvalidity, sent);
    let inbox = s.status(ACCT, "INBOX").unwrap().uidvalidity;
    assert!(!s.adopt_uidvalidity(ACCT, "Trash", inbox, 5).unwrap());
    assert!(s.adopt_uidvalidity(ACCT, "Drafts", 77, 5).unwrap());
    // A resumed import asks again: same UIDVALIDITY is fine, and UIDNEXT only grows.
    s.import(ACCT, "Drafts", vec![im(1, Some(6), None)])
        .unwrap();
    assert!(s.adopt_uidvalidity(ACCT, "Drafts", 77, 3).unwrap());
    let st = s.status(ACCT, "Drafts").unwrap();
    assert_eq!((st.uidvalidity, st.uidnext), (77, 7));
}

#[test]
fn bad_batches_store_nothing() {
    let (_t, s) = setup();
    let r = s.import(
        ACCT,
        "INBOX",
        vec![im(1, None, Some("ok")), im(2, None, Some("not a key!"))],
    );
    assert!(matches!(r, Err(StoreError::InvalidDeliveryKey(_))));
    assert_eq!(s.status(ACCT, "INBOX").unwrap().messages, 0);
    assert!(matches!(
        s.import(ACCT, "Nope", vec![im(1, None, None)]),
        Err(StoreError::MailboxNotFound(_))
    ));
    assert!(files_in(&inbox_dir(&s).join("tmp")).is_empty());
}
