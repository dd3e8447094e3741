//! The spool with its journal, on real files.

use crate::journal::{self, Limits};
use crate::{QueueId, RcptStatus, Spool, SpoolError};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use crate::spool::tests::envelope;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn q_files(root: &Path) -> Vec<String> {
    names(&root.join("q"))
}

fn segments(root: &Path) -> Vec<String> {
    names(&root.join("journal"))
        .into_iter()
        .filter(|n| n.starts_with("seg-"))
        .collect()
}

/// The message bytes of a classic `q/<id>` file.
fn classic(root: &Path, id: &QueueId) -> Vec<u8> {
    let all = std::fs::read(root.join("q").join(id.as_str())).unwrap();
    let nl = all.iter().position(|&b| b == b'\n').unwrap();
    all[nl + 1..].to_vec()
}

fn body(n: usize, size: usize) -> Vec<u8> {
    let mut m = format!("Subject: m{n}\r\n\r\n").into_bytes();
    while m.len() < size {
        m.extend_from_slice(format!("line {n} {}\r\n", m.len()).as_bytes());
    }
    m
}

fn limits(segment_max: u64) -> Limits {
    Limits {
        segment_max,
        idle_rotate: u64::MAX,
        max_message: 1 << 20,
        max_segments: 1000,
    }
}

#[test]
fn a_fresh_message_lives_in_the_journal_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let spool = Spool::open(root).unwrap();
    let msg = body(1, 4000);
    let id = spool.enqueue(&envelope(&["a@x.test"]), &msg).unwrap();
    assert_eq!(spool.message(&id).unwrap(), msg);
    let e = spool.entry(&id).unwrap();
    assert_eq!((e.id.clone(), e.size), (id.clone(), msg.len() as u64));
    assert_eq!(spool.ids().unwrap(), vec![id.clone()]);
    assert!(spool.exists(&id));
    assert!(q_files(root).is_empty(), "no file of its own");
    assert!(names(&root.join("tmp")).is_empty());
    spool.remove(&id).unwrap();
    assert!(!spool.exists(&id));
    assert!(spool.ids().unwrap().is_empty());
    assert!(matches!(spool.entry(&id), Err(SpoolError::NotFound(_))));
    assert!(matches!(spool.message(&id), Err(SpoolError::NotFound(_))));
    assert!(matches!(spool.remove(&id), Err(SpoolError::NotFound(_))));
    assert!(q_files(root).is_empty());
}

#[test]
fn a_restart_honours_done_records_and_promotes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let spool = Spool::open(root).unwrap();
    let gone = spool.enqueue(&envelope(&["a@x.test"]), b"gone").unwrap();
    let msg = body(2, 3000);
    let kept = spool
        .enqueue(&envelope(&["b@x.test", "c@x.test"]), &msg)
        .unwrap();
    let kept_entry = spool.entry(&kept).unwrap();
    spool.remove(&gone).unwrap();
    let old_segments = segments(root);
    drop(spool);

    let spool = Spool::open(root).unwrap();
    assert_eq!(spool.ids().unwrap(), vec![kept.clone()]);
    assert_eq!(q_files(root), vec![kept.to_string()]);
    assert_eq!(spool.entry(&kept).unwrap(), kept_entry);
    assert_eq!(spool.message(&kept).unwrap(), msg);
    assert_eq!(classic(root, &kept), msg);
    let now = segments(root);
    assert_eq!(now.len(), 1, "{now:?}");
    assert!(
        old_segments.iter().all(|s| !now.contains(s)),
        "old segments deleted"
    );
    // It is a classic message now: removal works as always, and a restart finds nothing.
    spool.remove(&kept).unwrap();
    drop(spool);
    let spool = Spool::open(root).unwrap();
    assert!(spool.ids().unwrap().is_empty());
}

#[test]
fn a_torn_tail_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let spool = Spool::open(root).unwrap();
    let id = spool.enqueue(&envelope(&["a@x.test"]), b"whole").unwrap();
    let mut torn_entry = spool.entry(&id).unwrap();
    drop(spool);
    // A crash in the middle of the next append: half a record at the end of the segment.
    torn_entry.id = QueueId::parse("ABCDEF0123").unwrap();
    let rec = journal::entry_record(&serde_json::to_vec(&torn_entry).unwrap(), b"torn message");
    let seg = root.join("journal").join(segments(root).pop().unwrap());
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&rec[..rec.len() / 2]);
    std::fs::write(&seg, bytes).unwrap();

    let spool = Spool::open(root).unwrap();
    assert_eq!(spool.ids().unwrap(), vec![id.clone()]);
    assert_eq!(spool.message(&id).unwrap(), b"whole");
    assert_eq!(q_files(root), vec![id.to_string()]);
}

#[test]
fn saving_a_fresh_message_promotes_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let spool = Spool::open(root).unwrap();
    let msg = body(3, 2000);
    let id = spool
        .enqueue(&envelope(&["a@x.test", "b@x.test"]), &msg)
        .unwrap();
    let mut e = spool.entry(&id).unwrap();
    e.recipients[0].status = RcptStatus::Delivered {
        at: 1,
        note: postern_mail::Status::with_text(postern_mail::EnhancedCode::SUCCESS, "ok"),
    };
    spool.save(&e).unwrap();
    assert_eq!(q_files(root), vec![id.to_string()]);
    assert!(root.join("state").join(id.as_str()).exists());
    assert_eq!(classic(root, &id), msg);
    assert_eq!(spool.entry(&id).unwrap(), e);
    assert_eq!(spool.message(&id).unwrap(), msg);
    assert_eq!(spool.ids().unwrap(), vec![id.clone()]);
    // A restart keeps the saved state, and the journal does not bring back a second copy.
    drop(spool);
    let spool = Spool::open(root).unwrap();
    assert_eq!(spool.entry(&id).unwrap(), e);
    spool.remove(&id).unwrap();
    assert!(q_files(root).is_empty());
    assert!(names(&root.join("state")).is_empty());
    drop(spool);
    let spool = Spool::open(root).unwrap();
    assert!(spool.ids().unwrap().is_empty());
    // hold() goes through save() too.
    let id = spool.enqueue(&envelope(&["a@x.test"]), b"m").unwrap();
    assert!(spool.hold(&id).unwrap().held);
    assert_eq!(q_files(root), vec![id.to_string()]);
}

#[test]
fn concurrent_enqueues_are_all_durable_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let spool = Arc::new(Spool::open(&root).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let spool = spool.clone();
            std::thread::spawn(move || {
                (0..200)
                    .map(|i| {
                        let n = t * 1000 + i;
                        let m = body(n, 500 + (n % 7) * 300);
                        (spool.enqueue(&envelope(&["a@x.test"]), &m).unwrap(), m)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<(QueueId, Vec<u8>)> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(all.len(), 1600);
    let distinct: HashSet<&QueueId> = all.iter().map(|(id, _)| id).collect();
    assert_eq!(distinct.len(), 1600);
    for (id, m) in &all {
        assert_eq!(&spool.message(id).unwrap(), m);
        assert_eq!(spool.entry(id).unwrap().size, m.len() as u64);
    }
    assert_eq!(spool.ids().unwrap().len(), 1600);
    assert!(q_files(&root).is_empty());
    drop(spool);

    let spool = Spool::open(&root).unwrap();
    assert_eq!(q_files(&root).len(), 1600);
    for (id, m) in &all {
        assert_eq!(&classic(&root, id), m);
        assert_eq!(&spool.message(id).unwrap(), m);
    }
    assert_eq!(segments(&root).len(), 1);
}

#[test]
fn an_observer_reads_the_journal_but_changes_nothing_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let owner = Spool::open(root).unwrap();
    let msg = body(4, 1000);
    let id = owner.enqueue(&envelope(&["a@x.test"]), &msg).unwrap();
    // Queue administration while the server runs.
    let admin = Spool::open(root).unwrap();
    assert_eq!(admin.ids().unwrap(), vec![id.clone()]);
    assert_eq!(admin.entry(&id).unwrap(), owner.entry(&id).unwrap());
    assert_eq!(admin.message(&id).unwrap(), msg);
    assert!(admin.exists(&id));
    assert!(matches!(admin.hold(&id), Err(SpoolError::Busy(_))));
    assert!(matches!(admin.remove(&id), Err(SpoolError::Busy(_))));
    assert!(!owner.entry(&id).unwrap().held);
    let unknown = QueueId::parse("ABC123").unwrap();
    assert!(matches!(
        admin.remove(&unknown),
        Err(SpoolError::NotFound(_))
    ));
    assert!(matches!(
        admin.entry(&unknown),
        Err(SpoolError::NotFound(_))
    ));
    // What it enqueues (sendmail) is a classic file the server's runner finds.
    let other = admin
        .enqueue(&envelope(&["b@x.test"]), b"from sendmail")
        .unwrap();
    assert_eq!(q_files(root), vec![other.to_string()]);
    assert!(owner.exists(&other));
    assert_eq!(owner.ids().unwrap().len(), 2);
    assert_eq!(owner.message(&other).unwrap(), b"from sendmail");
    // Once the server promoted the message (its first attempt left work), the admin may act.
    let e = owner.entry(&id).unwrap();
    owner.save(&e).unwrap();
    assert!(admin.hold(&id).unwrap().held);
    assert!(owner.entry(&id).unwrap().held);
    admin.remove(&id).unwrap();
    assert!(!owner.exists(&id));
    // A message removed by the owner disappears from the admin's view.
    let third = owner.enqueue(&envelope(&["c@x.test"]), b"3").unwrap();
    assert!(admin.ids().unwrap().contains(&third));
    owner.remove(&third).unwrap();
    assert!(!admin.ids().unwrap().contains(&third));
    assert!(!admin.exists(&third));
}

#[test]
fn an_observer_takes_over_when_the_owner_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let owner = Spool::open(root).unwrap();
    let id = owner
        .enqueue(&envelope(&["a@x.test"]), b"left behind")
        .unwrap();
    let later = Spool::open(root).unwrap();
    assert!(matches!(later.hold(&id), Err(SpoolError::Busy(_))));
    drop(owner);
    // The next operation takes the journal over and recovers what the owner left.
    assert_eq!(later.ids().unwrap(), vec![id.clone()]);
    assert_eq!(q_files(root), vec![id.to_string()]);
    assert!(later.hold(&id).unwrap().held);
    assert_eq!(later.message(&id).unwrap(), b"left behind");
    // It owns the journal now: its own messages go there.
    let own = later.enqueue(&envelope(&["b@x.test"]), b"mine").unwrap();
    assert_eq!(q_files(root), vec![id.to_string()]);
    assert_eq!(later.message(&own).unwrap(), b"mine");
}

#[test]
fn segments_rotate_and_go_once_empty() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let spool = Spool::open_with(root.to_path_buf(), limits(16 << 10)).unwrap();
    let ids: Vec<QueueId> = (0..100)
        .map(|n| {
            spool
                .enqueue(&envelope(&["a@x.test"]), &body(n, 1000))
                .unwrap()
        })
        .collect();
    let before = segments(root);
    assert!(before.len() >= 5, "{before:?}");
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(spool.message(id).unwrap(), body(n, 1000));
    }
    // Removed out of order: a segment goes only once it and every older one are empty.
    let (evens, odds): (Vec<_>, Vec<_>) = ids.iter().enumerate().partition(|(n, _)| n % 2 == 0);
    for (_, id) in &evens {
        spool.remove(id).unwrap();
    }
    // Every segment still holds a live message: none went (done records may add one).
    let now = segments(root);
    assert!(before.iter().all(|s| now.contains(s)), "{now:?}");
    for (_, id) in odds.iter().rev() {
        spool.remove(id).unwrap();
    }
    assert_eq!(segments(root).len(), 1, "{:?}", segments(root));
    assert!(q_files(root).is_empty());
    drop(spool);
    let spool = Spool::open(root).unwrap();
    assert!(spool.ids().unwrap().is_empty());
}

#[test]
fn an_idle_active_segment_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut l = limits(1 << 20);
    l.idle_rotate = 8 << 10;
    let spool = Spool::open_with(root.to_path_buf(), l).unwrap();
    let first = segments(root);
    for n in 0..20 {
        let id = spool
            .enqueue(&envelope(&["a@x.test"]), &body(n, 1000))
            .unwrap();
        spool.remove(&id).unwrap();
    }
    let now = segments(root);
    assert_eq!(now.len(), 1);
    assert_ne!(now, first, "replaced once it held 8 KiB and nothing live");
}

#[test]
fn a_long_first_attempt_does_not_pin_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut l = limits(8 << 10);
    l.max_segments = 3;
    let spool = Spool::open_with(root.to_path_buf(), l).unwrap();
    let slow = spool.enqueue(&envelope(&["slow@x.test"]), b"slow").unwrap();
    for n in 0..60 {
        let id = spool
            .enqueue(&envelope(&["a@x.test"]), &body(n, 1000))
            .unwrap();
        spool.remove(&id).unwrap();
    }
    assert!(segments(root).len() <= 4, "{:?}", segments(root));
    // The slow one was promoted on the way and is still whole.
    assert_eq!(q_files(root), vec![slow.to_string()]);
    assert_eq!(spool.message(&slow).unwrap(), b"slow");
    spool.remove(&slow).unwrap();
    drop(spool);
    assert!(Spool::open(root).unwrap().ids().unwrap().is_empty());
}

#[test]
fn a_big_message_is_a_classic_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let spool = Spool::open(root).unwrap();
    let big = body(5, (1 << 20) + 1);
    let id = spool.enqueue(&envelope(&["a@x.test"]), &big).unwrap();
    assert_eq!(q_files(root), vec![id.to_string()]);
    assert_eq!(classic(root, &id), big);
    assert_eq!(spool.message(&id).unwrap(), big);
    // Exactly the limit still goes to the journal.
    let limit = body(6, 1 << 20);
    let limit = &limit[..1 << 20];
    let j = spool.enqueue(&envelope(&["a@x.test"]), limit).unwrap();
    assert_eq!(q_files(root), vec![id.to_string()]);
    assert_eq!(spool.message(&j).unwrap(), limit);
    spool.remove(&id).unwrap();
    spool.remove(&j).unwrap();
    assert!(spool.ids().unwrap().is_empty());
}

#[test]
fn preallocated_zeros_end_a_segment_and_a_torn_record_in_them_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let spool = Spool::open(root).unwrap();
    let id = spool.enqueue(&envelope(&["a@x.test"]), b"whole").unwrap();
    let mut torn_entry = spool.entry(&id).unwrap();
    drop(spool);
    let seg = root.join("journal").join(segments(root).pop().unwrap());
    let jdir = root.join("journal");

    // A clean segment: one record, then the zeros it was created with. Not torn.
    let scan = journal::scan(&jdir).unwrap();
    assert!(scan.torn.is_empty());
    assert_eq!(scan.live.len(), 1);

    // A crash in the middle of the next append: half a record written over the zeros.
    let bytes = std::fs::read(&seg).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    torn_entry.id = QueueId::parse("ABCDEF0123").unwrap();
    let rec = journal::entry_record(&serde_json::to_vec(&torn_entry).unwrap(), b"torn message");
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.write_all_at(&rec[..rec.len() / 2], end as u64).unwrap();
    let scan = journal::scan(&jdir).unwrap();
    assert_eq!(scan.torn.len(), 1);
    assert_eq!(scan.live.len(), 1);

    let spool = Spool::open(root).unwrap();
    assert_eq!(spool.ids().unwrap(), vec![id.clone()]);
    assert_eq!(spool.message(&id).unwrap(), b"whole");
    // No spare left over from the previous owner (the new one's may be in the making).
    drop(spool);
    let spares: Vec<String> = names(&jdir)
        .into_iter()
        .filter(|n| n.starts_with("spare-"))
        .collect();
    assert!(spares.len() <= 1, "{spares:?}");
}
