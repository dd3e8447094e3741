//! The store through its public API: delivery, APPEND, flags, COPY/MOVE, EXPUNGE, mailbox
//! names, external changes to the Maildir, and crash leftovers.

mod common;

use std::collections::HashSet;
use std::fs;
use std::time::Duration;

use common::*;
use postern_store::maildir::MaildirStore;
use postern_store::{
    FlagOp, Flags, MailboxEvent, MessagePart, SpecialUse, StoreError, SystemFlags, UidSet,
};

#[test]
fn new_account_has_default_folders() {
    let (_t, s) = setup();
    let list = s.list_mailboxes(ACCT).unwrap();
    let names: Vec<&str> = list.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
    );
    let sent = list.iter().find(|m| m.name == "Sent").unwrap();
    assert_eq!(sent.special_use, Some(SpecialUse::Sent));
    assert!(list.iter().all(|m| m.subscribed && !m.has_children));
    let root = inbox_dir(&s);
    for d in [".Sent", ".Drafts", ".Trash", ".Junk", ".Archive"] {
        assert!(root.join(d).join("maildirfolder").is_file(), "{d}");
        assert!(root.join(d).join("cur").is_dir());
        assert!(root.join(d).join("postern-uidvalidity").is_file());
    }
    assert!(matches!(
        s.create_account(ACCT),
        Err(StoreError::AccountExists(_))
    ));
    assert!(!s.ensure_account(ACCT).unwrap());
    let uvs: HashSet<u32> = names
        .iter()
        .map(|n| s.status(ACCT, n).unwrap().uidvalidity)
        .collect();
    assert_eq!(uvs.len(), 6, "UIDVALIDITYs are distinct");
}

#[test]
fn unknown_account_and_mailbox() {
    let (_t, s) = setup();
    assert!(matches!(
        s.status("bob@example.org", "INBOX"),
        Err(StoreError::AccountNotFound(_))
    ));
    assert!(matches!(
        s.status(ACCT, "Nope"),
        Err(StoreError::MailboxNotFound(_))
    ));
    assert!(matches!(
        s.fetch(ACCT, "INBOX", 1),
        Err(StoreError::MessageNotFound(1))
    ));
}

#[test]
fn append_fetch_select_status() {
    let (_t, s) = setup();
    let o1 = s
        .append(ACCT, "INBOX", &msg(1), &Flags::new(), Some(1_600_000_000))
        .unwrap();
    let o2 = s
        .append(
            ACCT,
            "inbox",
            &msg(2),
            &flags(&["\\Seen", "$Forwarded", "Work"]),
            None,
        )
        .unwrap();
    assert_eq!((o1.uid, o2.uid), (1, 2));
    assert!(o2.modseq > o1.modseq);
    assert_eq!(o1.uidvalidity, o2.uidvalidity);
    assert_eq!(s.fetch(ACCT, "INBOX", 1).unwrap(), msg(1));
    assert_eq!(
        s.fetch_header(ACCT, "INBOX", 2).unwrap(),
        b"From: a@b.c\r\nSubject: test 2\r\n\r\n"
    );
    let snap = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(snap.uidnext, 3);
    assert_eq!(snap.messages.len(), 2);
    assert_eq!(snap.messages[0].internal_date, 1_600_000_000);
    assert_eq!(snap.messages[0].size, msg(1).len() as u64);
    assert!(snap.messages[1].flags.has_keyword("work"));
    assert!(snap.messages.iter().all(|m| m.recent));
    let st = s.status(ACCT, "INBOX").unwrap();
    assert_eq!(
        (st.messages, st.unseen, st.recent, st.deleted),
        (2, 1, 2, 0)
    );
    assert_eq!(st.size, (msg(1).len() + msg(2).len()) as u64);
    // Claiming recent clears it for later sessions.
    assert!(s.select(ACCT, "INBOX", true).unwrap().messages[0].recent);
    assert!(!s.select(ACCT, "INBOX", true).unwrap().messages[0].recent);
    // Flags are in the file name, UID too.
    let cur = files_in(&inbox_dir(&s).join("cur"));
    assert_eq!(cur.len(), 2);
    // (`a` is the folder's first numbered keyword, see `dovecot-keywords`.)
    assert!(cur.iter().any(|f| f.ends_with(",U=2:2,PSa")), "{cur:?}");
    assert!(cur
        .iter()
        .any(|f| f.contains(&format!(",S={0},W={0},U=1:2,", msg(1).len()))));
    let q = s.quota_usage(ACCT).unwrap();
    assert_eq!(q.messages, 2);
    let m = s.message_meta(ACCT, "INBOX", 2).unwrap();
    assert_eq!(m.modseq, o2.modseq);
}

#[test]
fn store_flags_and_unchangedsince() {
    let (_t, s) = setup();
    for i in 0..3 {
        s.append(ACCT, "INBOX", &msg(i), &Flags::new(), None)
            .unwrap();
    }
    let all = UidSet::range(1, 3);
    let r = s
        .store_flags(
            ACCT,
            "INBOX",
            &all,
            FlagOp::Add,
            &flags(&["\\Seen", "\\Flagged"]),
            None,
        )
        .unwrap();
    assert_eq!(r.updated.len(), 3);
    let m1 = r.updated[0].modseq;
    assert!(r
        .updated
        .iter()
        .all(|c| c.modseq == m1 && c.flags.has(SystemFlags::SEEN)));
    let cur = files_in(&inbox_dir(&s).join("cur"));
    assert!(cur.iter().all(|f| f.ends_with(":2,FS")), "{cur:?}");
    // Unchanged flags: no new modseq.
    let r = s
        .store_flags(ACCT, "INBOX", &all, FlagOp::Add, &flags(&["\\Seen"]), None)
        .unwrap();
    assert!(r.updated.is_empty());
    // Change message 2 only, then UNCHANGEDSINCE m1 fails for 2.
    let r = s
        .store_flags(
            ACCT,
            "INBOX",
            &UidSet::single(2),
            FlagOp::Remove,
            &flags(&["\\Flagged"]),
            None,
        )
        .unwrap();
    let m2 = r.updated[0].modseq;
    assert!(m2 > m1);
    let r = s
        .store_flags(
            ACCT,
            "INBOX",
            &all,
            FlagOp::Replace,
            &flags(&["kw"]),
            Some(m1),
        )
        .unwrap();
    assert_eq!(r.failed, vec![2]);
    assert_eq!(
        r.updated.iter().map(|c| c.uid).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert!(r.updated[0].modseq > m2);
    let snap = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(snap.messages[0].flags, flags(&["kw"]));
    assert_eq!(snap.messages[1].flags, flags(&["\\Seen"]));
    assert_eq!(snap.highestmodseq, r.updated[0].modseq);
    assert!(matches!(
        Flags::from_names(["\\Recent"]),
        Err(StoreError::InvalidFlag(_))
    ));
    assert!(Flags::from_names(["bad(kw"]).is_err());
}

#[test]
fn expunge_and_changes_since() {
    let (_t, s) = setup();
    for i in 0..5 {
        s.append(ACCT, "INBOX", &msg(i), &Flags::new(), None)
            .unwrap();
    }
    let base = s.status(ACCT, "INBOX").unwrap().highestmodseq;
    let del = flags(&["\\Deleted"]);
    s.store_flags(ACCT, "INBOX", &UidSet::range(2, 4), FlagOp::Add, &del, None)
        .unwrap();
    // UID EXPUNGE of 3:5 removes only the \Deleted ones in the set.
    let gone = s
        .expunge(ACCT, "INBOX", Some(&UidSet::range(3, 5)))
        .unwrap();
    assert_eq!(gone, vec![3, 4]);
    let gone = s.expunge(ACCT, "INBOX", None).unwrap();
    assert_eq!(gone, vec![2]);
    assert_eq!(files_in(&inbox_dir(&s).join("cur")).len(), 2);
    let ch = s.changes_since(ACCT, "INBOX", base).unwrap();
    assert_eq!(ch.vanished, UidSet::range(2, 4));
    assert!(ch.changed.is_empty());
    let ch = s.changes_since(ACCT, "INBOX", 0).unwrap();
    assert_eq!(ch.changed.len(), 2);
    // UIDs are not reused.
    let o = s
        .append(ACCT, "INBOX", &msg(9), &Flags::new(), None)
        .unwrap();
    assert_eq!(o.uid, 6);
    let removed = s
        .remove_messages(ACCT, "INBOX", &UidSet::single(6))
        .unwrap();
    assert_eq!(removed, vec![6]);
}

#[test]
fn copy_and_move_map_uids() {
    let (_t, s) = setup();
    for i in 0..4 {
        s.append(ACCT, "INBOX", &msg(i), &flags(&["\\Seen", "tag"]), None)
            .unwrap();
    }
    s.append(ACCT, "Archive", &msg(10), &Flags::new(), None)
        .unwrap();
    let mut inbox_ev = s.subscribe(ACCT, "INBOX").unwrap();
    let mut arch_ev = s.subscribe(ACCT, "Archive").unwrap();
    let c = s
        .copy(ACCT, "INBOX", &UidSet::range(2, 3), "Archive")
        .unwrap();
    assert_eq!(c.mapping, vec![(2, 2), (3, 3)]);
    assert_eq!(
        c.uidvalidity,
        s.status(ACCT, "Archive").unwrap().uidvalidity
    );
    assert_eq!(s.fetch(ACCT, "Archive", 3).unwrap(), msg(2));
    let m = s
        .move_messages(ACCT, "INBOX", &UidSet::from_iter([1, 4, 99]), "Archive")
        .unwrap();
    assert_eq!(m.mapping, vec![(1, 4), (4, 5)]);
    assert_eq!(s.fetch(ACCT, "Archive", 5).unwrap(), msg(3));
    let snap = s.select(ACCT, "Archive", false).unwrap();
    assert!(snap.messages[3].flags.has_keyword("tag"));
    let inbox = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(
        inbox.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(files_in(&inbox_dir(&s).join("cur")).len(), 2);
    assert_eq!(files_in(&inbox_dir(&s).join(".Archive/cur")).len(), 5);
    let mut got = Vec::new();
    while let Ok(e) = arch_ev.try_recv() {
        got.push(e);
    }
    assert_eq!(
        got,
        (2..=5)
            .map(|uid| MailboxEvent::New { uid })
            .collect::<Vec<_>>()
    );
    let mut got = Vec::new();
    while let Ok(e) = inbox_ev.try_recv() {
        match e {
            // A listener is there, so the moved files are held for it.
            MailboxEvent::Expunged { uid, held } => got.push((uid, held.is_some())),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, [(1, true), (4, true)]);
    // Copy within the same mailbox, and move within it.
    let c = s.copy(ACCT, "INBOX", &UidSet::single(2), "INBOX").unwrap();
    assert_eq!(c.mapping, vec![(2, 5)]);
    let m = s
        .move_messages(ACCT, "INBOX", &UidSet::single(3), "inbox")
        .unwrap();
    assert_eq!(m.mapping, vec![(3, 6)]);
    let inbox = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(
        inbox.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![2, 5, 6]
    );
}

#[test]
fn rename_delete_with_children() {
    let (_t, s) = setup();
    s.create_mailbox(ACCT, "Work/Projects/X", None).unwrap();
    s.create_mailbox(ACCT, "Lists", Some(SpecialUse::All))
        .unwrap();
    s.append(ACCT, "Work/Projects", &msg(1), &Flags::new(), None)
        .unwrap();
    let uv = s.status(ACCT, "Work/Projects").unwrap().uidvalidity;
    let list = s.list_mailboxes(ACCT).unwrap();
    let work = list.iter().find(|m| m.name == "Work").unwrap();
    assert!(work.has_children);
    assert_eq!(
        list.iter().find(|m| m.name == "Lists").unwrap().special_use,
        Some(SpecialUse::All)
    );
    assert!(matches!(
        s.create_mailbox(ACCT, "work/../x", None),
        Err(StoreError::InvalidMailboxName { .. })
    ));
    assert!(matches!(
        s.create_mailbox(ACCT, "Work", None),
        Err(StoreError::MailboxExists(_))
    ));
    assert!(matches!(
        s.rename_mailbox(ACCT, "Work", "Work/Sub"),
        Err(StoreError::NotPermitted(_))
    ));
    assert!(matches!(
        s.rename_mailbox(ACCT, "Work", "Lists"),
        Err(StoreError::MailboxExists(_))
    ));
    let mut ev = s.subscribe(ACCT, "Work/Projects").unwrap();
    s.rename_mailbox(ACCT, "Work", "Old/Job").unwrap();
    assert_eq!(ev.try_recv().unwrap(), MailboxEvent::Invalidated);
    let names: Vec<String> = s
        .list_mailboxes(ACCT)
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    for n in ["Old", "Old/Job", "Old/Job/Projects", "Old/Job/Projects/X"] {
        assert!(names.contains(&n.to_owned()), "{n} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("Work")));
    let st = s.status(ACCT, "Old/Job/Projects").unwrap();
    assert_eq!((st.messages, st.uidvalidity), (1, uv));
    assert!(inbox_dir(&s).join(".Old.Job.Projects.X/cur").is_dir());

    assert!(matches!(
        s.delete_mailbox(ACCT, "Old/Job"),
        Err(StoreError::HasChildren(_))
    ));
    assert!(matches!(
        s.delete_mailbox(ACCT, "INBOX"),
        Err(StoreError::NotPermitted(_))
    ));
    s.delete_mailbox(ACCT, "Old/Job/Projects/X").unwrap();
    let deleted = s.delete_mailbox_recursive(ACCT, "Old").unwrap();
    assert_eq!(deleted, vec!["Old/Job/Projects", "Old/Job", "Old"]);
    assert!(matches!(
        s.status(ACCT, "Old/Job/Projects"),
        Err(StoreError::MailboxNotFound(_))
    ));
    // A re-created mailbox gets a new UIDVALIDITY.
    s.create_mailbox(ACCT, "Old/Job/Projects", None).unwrap();
    assert_ne!(s.status(ACCT, "Old/Job/Projects").unwrap().uidvalidity, uv);
    let leftovers: Vec<String> = files_in(&inbox_dir(&s))
        .into_iter()
        .filter(|f| {
            f.starts_with("postern-")
                && !f.starts_with("postern-index")
                && f != "postern-uidvalidity"
                && f != "postern-subscriptions"
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn rename_inbox_moves_messages() {
    let (_t, s) = setup();
    s.create_mailbox(ACCT, "INBOX/Child", None).unwrap();
    for i in 0..3 {
        s.append(ACCT, "INBOX", &msg(i), &flags(&["\\Flagged"]), None)
            .unwrap();
    }
    let before = s.status(ACCT, "INBOX").unwrap();
    s.rename_mailbox(ACCT, "inbox", "Old Inbox").unwrap();
    let inbox = s.status(ACCT, "INBOX").unwrap();
    assert_eq!(inbox.messages, 0);
    assert_eq!(inbox.uidvalidity, before.uidvalidity);
    assert_eq!(inbox.uidnext, before.uidnext, "INBOX UIDs are not reused");
    let old = s.select(ACCT, "Old Inbox", false).unwrap();
    assert_eq!(old.messages.len(), 3);
    assert!(old
        .messages
        .iter()
        .all(|m| m.flags.has(SystemFlags::FLAGGED)));
    assert_eq!(s.fetch(ACCT, "Old Inbox", 3).unwrap(), msg(2));
    assert!(s.status(ACCT, "INBOX/Child").is_ok());
}

#[test]
fn subscriptions_may_name_missing_mailboxes() {
    let (_t, s) = setup();
    s.set_subscribed(ACCT, "Ghost/Folder", true).unwrap();
    s.set_subscribed(ACCT, "Junk", false).unwrap();
    let subs = s.list_subscriptions(ACCT).unwrap();
    assert!(subs.contains(&"Ghost/Folder".to_owned()));
    assert!(!subs.contains(&"Junk".to_owned()));
    assert!(s.set_subscribed(ACCT, "a//b", true).is_err());
}

#[test]
fn hostile_names_and_accounts_refused() {
    let (_t, s) = setup();
    for bad in [
        "",
        "/etc",
        "a/",
        "..",
        "a/../../b",
        ".",
        "x\0y",
        "x\ny",
        "a//b",
    ] {
        assert!(
            matches!(
                s.create_mailbox(ACCT, bad, None),
                Err(StoreError::InvalidMailboxName { .. })
            ),
            "{bad:?}"
        );
    }
    let long = "x".repeat(300);
    assert!(s.create_mailbox(ACCT, &long, None).is_err());
    let deep = vec!["d"; 40].join("/");
    assert!(s.create_mailbox(ACCT, &deep, None).is_err());
    for bad in [
        "../../etc@x",
        "a@..",
        "a@b/c",
        "noat",
        "a@.hidden",
        "a\0@b.c",
    ] {
        let r = s.create_account(bad);
        assert!(
            matches!(r, Err(StoreError::InvalidAccount { .. })) || bad == "../../etc@x",
            "{bad:?}: {r:?}"
        );
    }
    // A local part with slashes and dots is escaped, not interpreted.
    s.create_account("../../etc@x.org").unwrap();
    let dir = s.account_dir("../../etc@x.org").unwrap();
    assert!(dir.starts_with(s.root()));
    assert_eq!(dir.parent().unwrap().file_name().unwrap(), "x.org");
    // Odd but valid names round-trip through the file system.
    for name in ["50% off", "a.b", "Ünïcödé/日本", "x:y"] {
        s.create_mailbox(ACCT, name, None).unwrap();
        s.append(ACCT, name, &msg(1), &Flags::new(), None).unwrap();
    }
    let names: HashSet<String> = s
        .list_mailboxes(ACCT)
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    for name in ["50% off", "a.b", "Ünïcödé", "Ünïcödé/日本", "x:y"] {
        assert!(names.contains(name), "{name}");
    }
}

#[test]
fn external_changes_are_picked_up() {
    let (_t, s) = setup();
    let root = inbox_dir(&s);
    s.append(ACCT, "INBOX", &msg(1), &Flags::new(), None)
        .unwrap();
    s.append(ACCT, "INBOX", &msg(2), &Flags::new(), None)
        .unwrap();
    let hms = s.status(ACCT, "INBOX").unwrap().highestmodseq;
    let mut ev = s.subscribe(ACCT, "INBOX").unwrap();

    // procmail drops a message into new/.
    fs::write(root.join("new/1700000000.M1P1.other"), msg(3)).unwrap();
    // mutt marks message 1 seen and flagged (renames the info part).
    let cur = files_in(&root.join("cur"));
    let one = cur.iter().find(|f| f.contains(",U=1:")).unwrap().clone();
    let base = one.split(':').next().unwrap();
    fs::rename(
        root.join("cur").join(&one),
        root.join("cur").join(format!("{base}:2,FS")),
    )
    .unwrap();
    // someone deletes message 2 by hand.
    let two = cur.iter().find(|f| f.contains(",U=2:")).unwrap();
    fs::remove_file(root.join("cur").join(two)).unwrap();

    let snap = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(
        snap.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert_eq!(snap.messages[0].flags, flags(&["\\Seen", "\\Flagged"]));
    assert!(snap.messages[0].modseq > hms);
    assert!(snap.messages[1].recent);
    assert_eq!(s.fetch(ACCT, "INBOX", 3).unwrap(), msg(3));
    assert!(files_in(&root.join("new")).is_empty(), "moved to cur/");
    assert!(files_in(&root.join("cur"))
        .iter()
        .any(|f| f.contains(",U=3:2,")));
    let mut got = Vec::new();
    while let Ok(e) = ev.try_recv() {
        got.push(e);
    }
    assert!(got.contains(&MailboxEvent::New { uid: 3 }), "{got:?}");
    assert!(
        got.contains(&MailboxEvent::Expunged { uid: 2, held: None }),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|e| matches!(e, MailboxEvent::Flags { uid: 1, .. })),
        "{got:?}"
    );
    let ch = s.changes_since(ACCT, "INBOX", hms).unwrap();
    assert_eq!(ch.vanished, UidSet::single(2));

    // A file renamed to a new base but keeping its U= is the same message.
    let three = files_in(&root.join("cur"))
        .into_iter()
        .find(|f| f.contains(",U=3:"))
        .unwrap();
    fs::rename(
        root.join("cur").join(&three),
        root.join("cur").join("renamed.by.hand,U=3:2,S"),
    )
    .unwrap();
    // A copy of message 1 under another base with the same U= gets a new UID.
    let one_now = files_in(&root.join("cur"))
        .into_iter()
        .find(|f| f.contains(",U=1:"))
        .unwrap();
    fs::copy(
        root.join("cur").join(&one_now),
        root.join("cur").join("dup.copy,U=1:2,S"),
    )
    .unwrap();
    let snap = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(
        snap.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 3, 4]
    );
    assert!(snap.messages[1].flags.has(SystemFlags::SEEN));
    assert_eq!(s.fetch(ACCT, "INBOX", 4).unwrap(), msg(1));
    let cur = files_in(&root.join("cur"));
    assert!(
        !cur.iter()
            .any(|f| f.starts_with("dup.copy") && f.contains(",U=1:")),
        "{cur:?}"
    );
    assert_eq!(cur.iter().filter(|f| f.contains(",U=4:")).count(), 1);

    // Junk in the directories never crashes a sync.
    fs::create_dir(root.join("cur/a-directory")).unwrap();
    fs::write(root.join("cur/.hidden"), b"x").unwrap();
    fs::write(root.join("cur/weird:name:with:colons"), b"x").unwrap();
    let snap = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(snap.messages.len(), 4);
    // Folders made by other programs appear; removed ones disappear.
    let ext = root.join(".External");
    for d in ["cur", "new", "tmp"] {
        fs::create_dir_all(ext.join(d)).unwrap();
    }
    fs::write(ext.join("new/123.M1.x"), msg(7)).unwrap();
    assert!(s
        .list_mailboxes(ACCT)
        .unwrap()
        .iter()
        .any(|m| m.name == "External"));
    assert_eq!(s.fetch(ACCT, "External", 1).unwrap(), msg(7));
    fs::remove_dir_all(&ext).unwrap();
    assert!(!s
        .list_mailboxes(ACCT)
        .unwrap()
        .iter()
        .any(|m| m.name == "External"));
}

#[test]
fn cheap_sync_path_still_notices_changes() {
    let (_t, s) = setup();
    let root = inbox_dir(&s);
    s.append(ACCT, "INBOX", &msg(1), &Flags::new(), None)
        .unwrap();
    for d in ["cur", "new"] {
        age(&root.join(d), Duration::from_secs(60));
    }
    s.sync_mailbox(ACCT, "INBOX").unwrap(); // records the (old) mtimes
    assert_eq!(s.select(ACCT, "INBOX", false).unwrap().messages.len(), 1);
    fs::write(root.join("new/999.M1.ext"), msg(2)).unwrap();
    assert_eq!(s.select(ACCT, "INBOX", false).unwrap().messages.len(), 2);
}

#[test]
fn crash_during_append_leaves_consistent_store() {
    let (_t, s) = setup();
    let root = inbox_dir(&s);
    s.append(ACCT, "INBOX", &msg(1), &Flags::new(), None)
        .unwrap();
    // Crash 1: the file only reached tmp/. Invisible; removed once stale.
    let stale = root.join("tmp/1600000000.M1P1Q1.test.host");
    fs::write(&stale, msg(2)).unwrap();
    let fresh = root.join("tmp/1600000000.M1P1Q2.test.host");
    fs::write(&fresh, msg(3)).unwrap();
    age(&stale, Duration::from_secs(40 * 3600));
    assert_eq!(s.select(ACCT, "INBOX", false).unwrap().messages.len(), 1);
    // Crash 2: renamed into cur/ with U=uidnext but the index did not commit.
    fs::write(
        root.join("cur/1600000001.M2P2Q2.test.host,S=10,U=2:2,S"),
        msg(4),
    )
    .unwrap();
    let snap = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(
        snap.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(snap.uidnext, 3);
    assert!(snap.messages[1].flags.has(SystemFlags::SEEN));
    assert_eq!(s.fetch(ACCT, "INBOX", 2).unwrap(), msg(4));
    // The corrected S= is written back.
    assert!(files_in(&root.join("cur"))
        .iter()
        .any(|f| f.contains(&format!(",S={0},W={0},U=2:", msg(4).len()))));
    assert_eq!(
        s.append(ACCT, "INBOX", &msg(5), &Flags::new(), None)
            .unwrap()
            .uid,
        3
    );
    // The stale tmp file is swept when the account is opened again.
    let s2 = MaildirStore::open(s.root(), "other").unwrap();
    s2.status(ACCT, "INBOX").unwrap();
    assert!(!stale.exists());
    assert!(fresh.exists());
}

/// The HIGHESTMODSEQ a rebuilt index starts from is the folder's hint or the millisecond
/// clock, whichever is higher. Changes made faster than one per millisecond after a rebuild
/// outran the clock, and a second rebuild went back in MODSEQ (RFC 7162 §3.1): the flaky
/// `uids_and_modseqs_are_monotonic` property. Every change now keeps the hint ahead.
#[test]
fn hint_stays_ahead_of_modseq_so_rebuilds_never_go_back() {
    let (_t, s) = setup();
    let root = inbox_dir(&s);
    let hint_modseq = || -> u64 {
        let text = fs::read_to_string(root.join("postern-uidvalidity")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("highestmodseq "))
            .unwrap()
            .parse()
            .unwrap()
    };
    let rebuild = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(root.join(format!("postern-index.sqlite{suffix}")));
        }
        s.reindex(ACCT).unwrap();
    };
    s.append(ACCT, "INBOX", &msg(1), &Flags::default(), None)
        .unwrap();
    rebuild();
    let mut seen = 0;
    for i in 0..20u32 {
        let op = if i % 2 == 0 {
            FlagOp::Add
        } else {
            FlagOp::Remove
        };
        s.store_flags(ACCT, "INBOX", &UidSet::all(), op, &flags(&["\\Seen"]), None)
            .unwrap();
        if i % 5 == 0 {
            s.append(ACCT, "INBOX", &msg(2), &Flags::default(), None)
                .unwrap();
        }
        seen = s.status(ACCT, "INBOX").unwrap().highestmodseq;
        assert!(hint_modseq() >= seen, "hint behind HIGHESTMODSEQ {seen}");
    }
    rebuild();
    assert!(s.status(ACCT, "INBOX").unwrap().highestmodseq >= seen);
}

#[test]
fn reindex_keeps_uids_flags_uidvalidity() {
    let (_t, s) = setup();
    s.create_mailbox(ACCT, "Projects", Some(SpecialUse::Flagged))
        .unwrap();
    for i in 0..6 {
        s.append(ACCT, "INBOX", &msg(i), &Flags::new(), None)
            .unwrap();
    }
    s.append(ACCT, "Projects", &msg(9), &flags(&["\\Draft"]), None)
        .unwrap();
    s.store_flags(
        ACCT,
        "INBOX",
        &UidSet::from_iter([2, 6]),
        FlagOp::Add,
        &flags(&["\\Deleted"]),
        None,
    )
    .unwrap();
    s.expunge(ACCT, "INBOX", None).unwrap(); // removes 2 and the highest UID, 6
    s.store_flags(
        ACCT,
        "INBOX",
        &UidSet::single(3),
        FlagOp::Add,
        &flags(&["\\Answered", "$Forwarded"]),
        None,
    )
    .unwrap();
    s.set_subscribed(ACCT, "Projects", true).unwrap();
    let before = s.select(ACCT, "INBOX", false).unwrap();
    let before_p = s.status(ACCT, "Projects").unwrap();

    let root = inbox_dir(&s);
    drop(s);
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(root.join(format!("postern-index.sqlite{suffix}")));
    }
    let s = MaildirStore::open(root.parent().unwrap().parent().unwrap(), "test.host").unwrap();
    let r = s.reindex(ACCT).unwrap();
    assert_eq!(r.renumbered, 0);
    assert_eq!(r.mailboxes, 7);
    let after = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(after.uidvalidity, before.uidvalidity);
    assert!(after.highestmodseq >= before.highestmodseq);
    // The hint reserves UIDs ahead, so the rebuilt index may skip some; it never reuses one.
    assert!(after.uidnext >= 7, "expunged top UID is not reused");
    let pairs = |s: &postern_store::MailboxSnapshot| -> Vec<(u32, SystemFlags, bool)> {
        s.messages
            .iter()
            .map(|m| (m.uid, m.flags.system(), m.flags.has_keyword("$Forwarded")))
            .collect()
    };
    assert_eq!(pairs(&after), pairs(&before));
    let p = s.status(ACCT, "Projects").unwrap();
    assert_eq!((p.uidvalidity, p.messages), (before_p.uidvalidity, 1));
    let list = s.list_mailboxes(ACCT).unwrap();
    let proj = list.iter().find(|m| m.name == "Projects").unwrap();
    assert_eq!(proj.special_use, Some(SpecialUse::Flagged));
    assert!(proj.subscribed);
    assert_eq!(
        list.iter().find(|m| m.name == "Trash").unwrap().special_use,
        Some(SpecialUse::Trash)
    );
    // Expunges before the rebuild can no longer be listed exactly: every missing UID is.
    let ch = s.changes_since(ACCT, "INBOX", 1).unwrap();
    assert!(ch.vanished.contains(2) && ch.vanished.contains(6));
    assert!(!ch.vanished.contains(3));
    let next = s
        .append(ACCT, "INBOX", &msg(7), &Flags::new(), None)
        .unwrap()
        .uid;
    assert_eq!(next, after.uidnext);
    // Reindex on a live index also works and keeps everything.
    let again = s.reindex(ACCT).unwrap();
    assert_eq!(again.messages, 6);
    assert!(s.select(ACCT, "INBOX", false).unwrap().uidnext > next);
}

#[test]
fn concurrent_appends_never_share_a_uid() {
    let (_t, s) = setup();
    let other = MaildirStore::open(s.root(), "second.host").unwrap();
    let mut handles = Vec::new();
    for (t, st) in [
        (0, s.clone()),
        (1, s.clone()),
        (2, other.clone()),
        (3, other),
    ] {
        handles.push(std::thread::spawn(move || {
            (0..15)
                .map(|i| {
                    st.append(ACCT, "INBOX", &msg(t * 100 + i), &Flags::new(), None)
                        .unwrap()
                        .uid
                })
                .collect::<Vec<u32>>()
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        let uids = h.join().unwrap();
        assert!(uids.windows(2).all(|w| w[0] < w[1]), "ascending per thread");
        all.extend(uids);
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "no duplicate UIDs");
    let snap = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(snap.messages.len(), n);
    assert_eq!(snap.uidnext as usize, n + 1);
    assert_eq!(files_in(&inbox_dir(&s).join("cur")).len(), n);
}

#[test]
fn delete_account_removes_everything() {
    let (_t, s) = setup();
    s.append(ACCT, "INBOX", &msg(1), &Flags::new(), None)
        .unwrap();
    let dir = inbox_dir(&s);
    s.delete_account(ACCT).unwrap();
    assert!(!dir.exists());
    assert!(matches!(
        s.status(ACCT, "INBOX"),
        Err(StoreError::AccountNotFound(_))
    ));
    assert!(!s.account_exists(ACCT).unwrap());
    s.create_account(ACCT).unwrap();
    assert_eq!(s.status(ACCT, "INBOX").unwrap().messages, 0);
}

#[tokio::test]
async fn async_trait_object() {
    use postern_store::Store;
    use std::sync::Arc;
    let t = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MaildirStore::open(t.path(), "h").unwrap());
    store.create_account(ACCT).await.unwrap();
    let mut rx = store.subscribe(ACCT, "INBOX").unwrap();
    let o = store
        .append(ACCT, "INBOX", msg(1), Flags::new(), None)
        .await
        .unwrap();
    assert_eq!(rx.recv().await.unwrap(), MailboxEvent::New { uid: o.uid });
    let r = store
        .store_flags(
            ACCT,
            "INBOX",
            UidSet::all(),
            FlagOp::Add,
            flags(&["\\Seen"]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        rx.recv().await.unwrap(),
        MailboxEvent::Flags {
            uid: 1,
            flags: flags(&["\\Seen"]),
            modseq: r.updated[0].modseq
        }
    );
    assert_eq!(store.fetch(ACCT, "INBOX", 1).await.unwrap(), msg(1));
    assert_eq!(store.status(ACCT, "INBOX").await.unwrap().unseen, 0);
}

#[test]
fn fetch_follows_a_file_renamed_by_another_program() {
    let (_t, s) = setup();
    let root = inbox_dir(&s);
    s.append(ACCT, "INBOX", &msg(1), &Flags::new(), None)
        .unwrap();
    s.append(ACCT, "INBOX", &msg(2), &Flags::new(), None)
        .unwrap();
    let hms = s.status(ACCT, "INBOX").unwrap().highestmodseq;
    let f = files_in(&root.join("cur"))
        .into_iter()
        .find(|f| f.contains(",U=2:"))
        .unwrap();
    let base = f.split(':').next().unwrap().to_owned();
    fs::rename(
        root.join("cur").join(&f),
        root.join("cur").join(format!("{base}:2,RS")),
    )
    .unwrap();
    // No explicit sync: fetch notices the missing file, syncs and retries.
    assert_eq!(s.fetch(ACCT, "INBOX", 2).unwrap(), msg(2));
    let ch = s.changes_since(ACCT, "INBOX", hms).unwrap();
    assert_eq!(ch.changed.len(), 1);
    assert_eq!(ch.changed[0].uid, 2);
    assert_eq!(ch.changed[0].flags, flags(&["\\Answered", "\\Seen"]));
    assert!(ch.vanished.is_empty());
    assert!(ch.highestmodseq > hms);
}

/// After our own change the recorded directory state is kept (no rescan on the next access), yet a
/// change by another program is still seen: at once when it lands in a later timestamp tick, and
/// by the re-check deadline when it shares the tick of our own change.
#[test]
fn external_change_right_after_our_own_is_seen() {
    let (_t, s) = setup();
    let root = inbox_dir(&s);
    let first = s
        .append(ACCT, "INBOX", &msg(1), &Flags::new(), None)
        .unwrap();
    s.select(ACCT, "INBOX", false).unwrap();
    s.store_flags(
        ACCT,
        "INBOX",
        &UidSet::single(first.uid),
        FlagOp::Add,
        &flags(&["\\Seen"]),
        None,
    )
    .unwrap();

    // A later tick: mutt marks the message flagged; seen on the very next access.
    std::thread::sleep(Duration::from_millis(30));
    let name = files_in(&root.join("cur")).pop().unwrap();
    let flagged = name.replace(":2,S", ":2,FS");
    fs::rename(
        root.join("cur").join(&name),
        root.join("cur").join(&flagged),
    )
    .unwrap();
    let snap = s.select(ACCT, "INBOX", false).unwrap();
    assert!(snap.messages[0].flags.has(SystemFlags::FLAGGED));

    // Same tick as our own append, possibly: a drop into cur/ right after it is seen by the
    // deadline at the latest.
    s.append(ACCT, "INBOX", &msg(2), &Flags::new(), None)
        .unwrap();
    fs::write(root.join("cur/1700000000.M9P9.elsewhere:2,"), msg(3)).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(s.select(ACCT, "INBOX", false).unwrap().messages.len(), 3);
}

/// Final delivery lands in new/ (as Maildir readers expect) and is idempotent by its key, also
/// after a crash between the rename and the index commit, and after a reindex.
#[test]
fn delivery_is_idempotent_by_key_and_lands_in_new() {
    let (_t, s) = setup();
    let root = inbox_dir(&s);
    let first = s.deliver(ACCT, "INBOX", &msg(1), "Q1").unwrap();
    let again = s.deliver(ACCT, "INBOX", &msg(1), "Q1").unwrap();
    assert_eq!(first, again, "the same key stores no second copy");
    let new_files = files_in(&root.join("new"));
    assert_eq!(new_files.len(), 1);
    assert!(
        new_files[0].contains(",K=Q1,") && !new_files[0].contains(':'),
        "{new_files:?}"
    );
    assert!(
        files_in(&root.join("tmp")).is_empty(),
        "the spare copy was removed"
    );
    let snap = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(snap.messages.len(), 1);
    assert_eq!(s.fetch(ACCT, "INBOX", first.uid).unwrap(), msg(1));

    // A crash after the rename, before the index commit: the file is there, the row is not.
    let uidnext = s.status(ACCT, "INBOX").unwrap().uidnext;
    let orphan = format!("1700000000.M1P1Q1.test.host,K=Q2,S=40,U={uidnext}");
    fs::write(root.join("new").join(&orphan), msg(2)).unwrap();
    let retried = s.deliver(ACCT, "INBOX", &msg(2), "Q2").unwrap();
    assert_eq!(
        retried.uid, uidnext,
        "the orphan was adopted, not duplicated"
    );
    assert_eq!(s.select(ACCT, "INBOX", false).unwrap().messages.len(), 2);

    // Reindex keeps keys.
    std::fs::remove_file(root.join("postern-index.sqlite")).unwrap();
    let _ = std::fs::remove_file(root.join("postern-index.sqlite-wal"));
    let _ = std::fs::remove_file(root.join("postern-index.sqlite-shm"));
    s.reindex(ACCT).unwrap();
    assert_eq!(
        s.deliver(ACCT, "INBOX", &msg(1), "Q1").unwrap().uid,
        first.uid
    );
    assert_eq!(s.select(ACCT, "INBOX", false).unwrap().messages.len(), 2);

    assert!(matches!(
        s.deliver(ACCT, "INBOX", &msg(3), "../x"),
        Err(StoreError::InvalidDeliveryKey(_))
    ));
}

/// A delivery with flags (Sieve imap4flags) lands in cur/ with its info part, keeps them
/// through a reindex, and stays idempotent by key.
#[test]
fn flagged_delivery_lands_in_cur_with_flags() {
    let (_t, s) = setup();
    let root = inbox_dir(&s);
    let f = flags(&["\\Seen", "$label1"]);
    let first = s.deliver_flagged(ACCT, "INBOX", &msg(1), "F1", &f).unwrap();
    let again = s.deliver_flagged(ACCT, "INBOX", &msg(1), "F1", &f).unwrap();
    assert_eq!(first, again, "the same key stores no second copy");
    assert!(files_in(&root.join("new")).is_empty());
    let cur = files_in(&root.join("cur"));
    assert_eq!(cur.len(), 1);
    assert!(
        cur[0].contains(",K=F1,") && cur[0].contains(":2,"),
        "{cur:?}"
    );
    let check = |s: &MaildirStore| {
        let snap = s.select(ACCT, "INBOX", false).unwrap();
        assert_eq!(snap.messages.len(), 1);
        assert!(snap.messages[0].flags.has(SystemFlags::SEEN));
        assert!(snap.messages[0].flags.has_keyword("$label1"));
    };
    check(&s);
    std::fs::remove_file(root.join("postern-index.sqlite")).unwrap();
    let _ = std::fs::remove_file(root.join("postern-index.sqlite-wal"));
    let _ = std::fs::remove_file(root.join("postern-index.sqlite-shm"));
    s.reindex(ACCT).unwrap();
    check(&s);
}

/// Concurrent deliveries share group commits and still get distinct UIDs; two deliveries with
/// one key racing each other store one copy.
#[test]
fn concurrent_deliveries_group_commit() {
    let (_t, s) = setup();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut uids = Vec::new();
                for i in 0..40 {
                    uids.push(
                        s.deliver(ACCT, "INBOX", &msg(i), &format!("T{t}N{i}"))
                            .unwrap()
                            .uid,
                    );
                    // Every thread also races on one shared key.
                    uids.push(s.deliver(ACCT, "INBOX", &msg(999), "SHARED").unwrap().uid);
                }
                uids
            })
        })
        .collect();
    let mut all: Vec<u32> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let shared: HashSet<u32> = all
        .iter()
        .copied()
        .filter(|u| all.iter().filter(|v| *v == u).count() > 1)
        .collect();
    assert_eq!(shared.len(), 1, "the shared key maps to one message");
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 8 * 40 + 1);
    let snap = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(snap.messages.len(), 8 * 40 + 1);
    assert_eq!(files_in(&inbox_dir(&s).join("new")).len(), 8 * 40 + 1);
    assert!(files_in(&inbox_dir(&s).join("tmp")).is_empty());
}

#[test]
fn fetch_many_in_order_with_gaps_and_moved_files() {
    let (_t, s) = setup();
    for n in 1..=4 {
        s.append(ACCT, "INBOX", &msg(n), &Flags::new(), None)
            .unwrap();
    }
    let all = s
        .fetch_many(ACCT, "INBOX", &[3, 1, 9, 2], MessagePart::Full)
        .unwrap();
    assert_eq!(all, vec![Some(msg(3)), Some(msg(1)), None, Some(msg(2))]);
    let headers = s
        .fetch_many(ACCT, "INBOX", &[2], MessagePart::Header)
        .unwrap();
    assert_eq!(
        headers,
        vec![Some(b"From: a@b.c\r\nSubject: test 2\r\n\r\n".to_vec())]
    );

    // Another program renames a file (a flag change): the batch still finds it.
    let cur = inbox_dir(&s).join("cur");
    let f = files_in(&cur)
        .into_iter()
        .find(|f| f.contains(",U=4:2,"))
        .unwrap();
    fs::rename(cur.join(&f), cur.join(format!("{f}S"))).unwrap();
    assert_eq!(
        s.fetch_many(ACCT, "INBOX", &[4], MessagePart::Full)
            .unwrap(),
        vec![Some(msg(4))]
    );

    // The inline path answers small reads and declines what it cannot do at once.
    let now = s.try_fetch_many_now(ACCT, "INBOX", &[1, 2], MessagePart::Full, 1 << 20);
    assert_eq!(now.unwrap().unwrap(), vec![Some(msg(1)), Some(msg(2))]);
    assert!(s
        .try_fetch_many_now(ACCT, "INBOX", &[1, 9], MessagePart::Full, 1 << 20)
        .is_none());
    assert!(s
        .try_fetch_many_now(ACCT, "INBOX", &[1, 2], MessagePart::Full, 10)
        .is_none());
    // A rebuilt index is read through fresh connections.
    s.reindex(ACCT).unwrap();
    s.select(ACCT, "INBOX", false).unwrap();
    let now = s.try_fetch_many_now(ACCT, "INBOX", &[3], MessagePart::Header, 1 << 20);
    assert_eq!(
        now.unwrap().unwrap(),
        vec![Some(b"From: a@b.c\r\nSubject: test 3\r\n\r\n".to_vec())]
    );
}

#[test]
fn large_select_snapshot_follows_every_change() {
    let (t, s) = setup();
    let new = inbox_dir(&s).join("new");
    for n in 0..2_100 {
        fs::write(new.join(format!("1700000000.M{n}P1.drop")), msg(n)).unwrap();
    }
    age(&new, Duration::from_secs(60));
    let first = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(first.messages.len(), 2_100);
    age(&new, Duration::from_secs(60));
    age(&inbox_dir(&s).join("cur"), Duration::from_secs(60));
    let again = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(again.messages, first.messages);

    // Our own change.
    s.store_flags(
        ACCT,
        "INBOX",
        &UidSet::single(5),
        FlagOp::Add,
        &flags(&["\\Seen"]),
        None,
    )
    .unwrap();
    let after = s.select(ACCT, "INBOX", false).unwrap();
    assert!(after.messages[4].flags.has(SystemFlags::SEEN));

    // Another process's change (its own index connection).
    let other = MaildirStore::open(t.path().join("mail"), "test.host").unwrap();
    other
        .store_flags(
            ACCT,
            "INBOX",
            &UidSet::single(6),
            FlagOp::Add,
            &flags(&["\\Flagged"]),
            None,
        )
        .unwrap();
    let seen_by_first = s.select(ACCT, "INBOX", false).unwrap();
    assert!(seen_by_first.messages[5].flags.has(SystemFlags::FLAGGED));
    assert!(seen_by_first.messages[4].flags.has(SystemFlags::SEEN));

    // Claiming \Recent is a change too.
    assert!(s.select(ACCT, "INBOX", true).unwrap().messages[0].recent);
    assert!(!s.select(ACCT, "INBOX", false).unwrap().messages[0].recent);
}

/// RFC 2180 §4.1.1: a message another session expunged stays readable for a session that has
/// not been told yet, and its file goes once every listener has taken the event.
#[test]
fn expunged_message_stays_readable_until_every_listener_is_told() {
    let (_t, s) = setup();
    for i in 1..=3 {
        s.append(ACCT, "INBOX", &msg(i), &Flags::default(), None)
            .unwrap();
    }
    let mut listener = s.subscribe(ACCT, "INBOX").unwrap();
    let root = inbox_dir(&s);
    s.store_flags(
        ACCT,
        "INBOX",
        &UidSet::single(2),
        FlagOp::Add,
        &flags(&["\\Deleted"]),
        None,
    )
    .unwrap();
    assert_eq!(s.expunge(ACCT, "INBOX", None).unwrap(), vec![2]);
    assert!(!files_in(&root.join("cur"))
        .iter()
        .any(|f| f.contains(",U=2:")));
    // Not told yet: the message is still there for this listener.
    assert_eq!(s.fetch(ACCT, "INBOX", 2).unwrap(), msg(2));
    assert_eq!(files_in(&root.join("postern-expunged")).len(), 1);
    let mut held = None;
    while let Ok(e) = listener.try_recv() {
        if let MailboxEvent::Expunged { uid: 2, held: h } = e {
            held = h;
        }
    }
    assert!(held.is_some(), "the event carries the hold");
    // Still held while the session keeps the handle (it has not reported the expunge).
    assert_eq!(s.fetch(ACCT, "INBOX", 2).unwrap(), msg(2));
    drop(held);
    assert!(matches!(
        s.fetch(ACCT, "INBOX", 2),
        Err(StoreError::MessageNotFound(2))
    ));
    assert!(files_in(&root.join("postern-expunged")).is_empty());

    // A move holds the source too; with nobody listening nothing is kept.
    s.move_messages(ACCT, "INBOX", &UidSet::single(3), "Archive")
        .unwrap();
    assert_eq!(s.fetch(ACCT, "INBOX", 3).unwrap(), msg(3));
    drop(listener);
    assert!(s.fetch(ACCT, "INBOX", 3).is_err());
    s.store_flags(
        ACCT,
        "INBOX",
        &UidSet::single(1),
        FlagOp::Add,
        &flags(&["\\Deleted"]),
        None,
    )
    .unwrap();
    s.expunge(ACCT, "INBOX", None).unwrap();
    assert!(files_in(&root.join("postern-expunged")).is_empty());
}

/// RFC 3501 §2.3.2: of the sessions that learn of a new message, exactly one sees \Recent.
#[test]
fn recent_is_claimed_once() {
    let (_t, s) = setup();
    s.append(ACCT, "INBOX", &msg(1), &Flags::default(), None)
        .unwrap();
    let first = s.select(ACCT, "INBOX", true).unwrap();
    assert!(first.messages[0].recent);
    s.append(ACCT, "INBOX", &msg(2), &Flags::default(), None)
        .unwrap();
    assert_eq!(s.status(ACCT, "INBOX").unwrap().recent, 1);
    // A read-only look does not take it.
    let peek = s.messages_after(ACCT, "INBOX", 1, false).unwrap();
    assert!(peek[0].recent);
    let a = s.messages_after(ACCT, "INBOX", 1, true).unwrap();
    let b = s.messages_after(ACCT, "INBOX", 1, true).unwrap();
    assert_eq!((a.len(), b.len()), (1, 1));
    assert!(a[0].recent && !b[0].recent);
    assert_eq!(s.status(ACCT, "INBOX").unwrap().recent, 0);
    assert!(!s.select(ACCT, "INBOX", true).unwrap().messages[1].recent);
}

/// Keywords live in the file names as Dovecot writes them (`dovecot-keywords` numbering, letters
/// `a`-`z` in the `:2,` info): they survive a reindex, and a Dovecot Maildir's keywords are read.
#[test]
fn keywords_are_kept_in_the_maildir_as_dovecot_does() {
    let (_t, s) = setup();
    for i in 1..=2 {
        s.append(ACCT, "INBOX", &msg(i), &flags(&["$Label1"]), None)
            .unwrap();
    }
    s.store_flags(
        ACCT,
        "INBOX",
        &UidSet::single(2),
        FlagOp::Add,
        &flags(&["Work", "\\Seen"]),
        None,
    )
    .unwrap();
    let root = inbox_dir(&s);
    let numbering = fs::read_to_string(root.join("dovecot-keywords")).unwrap();
    assert_eq!(numbering, "0 $Label1\n1 Work\n");
    let names = files_in(&root.join("cur"));
    assert!(names.iter().any(|f| f.contains(",U=1:2,a")), "{names:?}");
    assert!(names.iter().any(|f| f.contains(",U=2:2,Sab")), "{names:?}");
    // A copy into another folder gets that folder's own numbering.
    s.copy(ACCT, "INBOX", &UidSet::single(2), "Archive")
        .unwrap();
    assert_eq!(
        fs::read_to_string(root.join(".Archive/dovecot-keywords")).unwrap(),
        "0 $Label1\n1 Work\n"
    );

    s.reindex(ACCT).unwrap();
    let snap = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(snap.messages[0].flags, flags(&["$Label1"]));
    assert_eq!(
        snap.messages[1].flags,
        flags(&["$Label1", "Work", "\\Seen"])
    );

    // Another program (Dovecot) numbers a keyword and sets it on a file: picked up on sync.
    fs::write(
        root.join("dovecot-keywords"),
        "0 $Label1\n1 Work\n2 $Junk\n",
    )
    .unwrap();
    let one = files_in(&root.join("cur"))
        .into_iter()
        .find(|f| f.contains(",U=1:"))
        .unwrap();
    let base = one.split(':').next().unwrap().to_owned();
    fs::rename(
        root.join("cur").join(&one),
        root.join("cur").join(format!("{base}:2,Fc")),
    )
    .unwrap();
    let cur = root.join("cur");
    age(&cur, Duration::from_secs(10));
    let snap = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(snap.messages[0].flags, flags(&["$Junk", "\\Flagged"]));
}

/// The store knows each message's size with CRLF line ends (IMAP RFC822.SIZE, POP3 sizes): from
/// the data when it writes a message, from the `,W=` field or the file when it adopts one.
#[test]
fn wire_size_is_known_for_every_message() {
    let (_t, s) = setup();
    let lf = b"Subject: lf\n\nline one\nline two\n".to_vec();
    s.append(ACCT, "INBOX", &lf, &Flags::default(), None)
        .unwrap();
    s.deliver(ACCT, "INBOX", b"Subject: crlf\r\n\r\nbody\r\n", "k1")
        .unwrap();
    let root = inbox_dir(&s);
    // Another program drops a file with LF line ends and no W= field.
    fs::write(root.join("new").join("1700000000.dropped.host"), &lf).unwrap();
    age(&root.join("new"), Duration::from_secs(10));
    let snap = s.select(ACCT, "INBOX", false).unwrap();
    let sizes: Vec<(u64, u64)> = snap
        .messages
        .iter()
        .map(|m| (m.size, m.wire_size))
        .collect();
    assert_eq!(sizes, [(31, 35), (23, 23), (31, 35)]);
    assert!(files_in(&root.join("cur"))
        .iter()
        .all(|f| f.contains(",W=")));
    assert_eq!(s.status(ACCT, "INBOX").unwrap().size, 35 + 23 + 35);
    s.reindex(ACCT).unwrap();
    let again = s.select(ACCT, "INBOX", false).unwrap();
    assert_eq!(
        again
            .messages
            .iter()
            .map(|m| m.wire_size)
            .collect::<Vec<_>>(),
        [35, 23, 35]
    );
}

/// LIST, SELECT and STATUS answer through a reader connection (never waiting for a writer)
/// exactly what the locked path answers, and step aside whenever the locked path has work to
/// do: a folder made by another program, a mailbox changed on disk, recent marks to claim.
#[test]
fn reader_paths_agree_with_the_locked_ones_and_step_aside() {
    let (_t, s) = setup();
    s.append(ACCT, "INBOX", &msg(1), &Flags::default(), None)
        .unwrap();
    let listed = s.list_mailboxes(ACCT).unwrap();
    assert_eq!(s.try_list_now(ACCT), Some(listed));
    assert_eq!(
        s.try_status_now(ACCT, "INBOX"),
        Some(s.status(ACCT, "INBOX").unwrap())
    );
    // The message is recent: a claiming SELECT needs the writer, a plain one does not.
    assert_eq!(s.try_select_now(ACCT, "INBOX", true), None);
    let plain = s.try_select_now(ACCT, "INBOX", false).unwrap();
    assert_eq!(plain, s.select(ACCT, "INBOX", false).unwrap());
    s.select(ACCT, "INBOX", true).unwrap();
    assert!(s.try_select_now(ACCT, "INBOX", true).is_some());

    // Another program makes a folder: LIST must discover it through the locked path.
    let root = inbox_dir(&s);
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(root.join(".Hand").join(sub)).unwrap();
    }
    assert_eq!(s.try_list_now(ACCT), None);
    assert!(s
        .list_mailboxes(ACCT)
        .unwrap()
        .iter()
        .any(|m| m.name == "Hand"));
    assert!(s.try_list_now(ACCT).is_some());

    // A file dropped into new/: the mailbox is not current, so the reader paths step aside.
    fs::write(root.join("new").join("1700000000.x.host"), msg(2)).unwrap();
    assert_eq!(s.try_status_now(ACCT, "INBOX"), None);
    assert_eq!(s.try_select_now(ACCT, "INBOX", false), None);
    assert_eq!(s.status(ACCT, "INBOX").unwrap().messages, 2);
}
