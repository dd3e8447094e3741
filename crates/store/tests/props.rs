//! Property tests: UID and MODSEQ invariants under random operation sequences, including
//! changes made behind the store's back, and index rebuilds.

mod common;

use std::collections::{HashMap, HashSet};
use std::fs;

use common::*;
use postern_store::maildir::MaildirStore;
use postern_store::{FlagOp, Flags, SystemFlags, UidSet};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(usize, u8),
    SetFlags(usize, u8, u8),
    Expunge(Option<(u8, u8)>),
    Move(usize, u8, u8),
    Copy(usize, u8, u8),
    DropInNew(usize),
    DeleteByHand(usize, u8),
    MuttFlags(usize, u8, u8),
    Reindex,
}

const BOXES: [&str; 2] = ["INBOX", "Archive"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, 0u8..32).prop_map(|(b, f)| Op::Append(b, f)),
        2 => (0..2usize, 0u8..32, 0u8..3).prop_map(|(b, f, o)| Op::SetFlags(b, f, o)),
        2 => proptest::option::of((0u8..12, 0u8..12)).prop_map(Op::Expunge),
        1 => (0..2usize, 0u8..12, 0u8..12).prop_map(|(b, x, y)| Op::Move(b, x, y)),
        1 => (0..2usize, 0u8..12, 0u8..12).prop_map(|(b, x, y)| Op::Copy(b, x, y)),
        1 => (0..2usize).prop_map(Op::DropInNew),
        1 => (0..2usize, 0u8..12).prop_map(|(b, i)| Op::DeleteByHand(b, i)),
        1 => (0..2usize, 0u8..12, 0u8..32).prop_map(|(b, i, f)| Op::MuttFlags(b, i, f)),
        1 => Just(Op::Reindex),
    ]
}

fn sys(bits: u8) -> Flags {
    Flags::from_system(SystemFlags::from_bits_truncate(bits))
}

fn cur_dir(s: &MaildirStore, b: usize) -> std::path::PathBuf {
    let root = inbox_dir(s);
    if b == 0 {
        root.join("cur")
    } else {
        root.join(".Archive/cur")
    }
}

#[derive(Default)]
struct Model {
    max_uid: u32,
    live: HashSet<u32>,
    gone: HashSet<u32>,
    hms: u64,
    flags: HashMap<u32, (Flags, u64)>,
    uidvalidity: u32,
}

fn check(s: &MaildirStore, models: &mut [Model; 2]) -> Result<(), TestCaseError> {
    for (b, m) in models.iter_mut().enumerate() {
        let snap = s.select(ACCT, BOXES[b], false).unwrap();
        if m.uidvalidity != 0 {
            prop_assert_eq!(snap.uidvalidity, m.uidvalidity);
        }
        m.uidvalidity = snap.uidvalidity;
        let uids: Vec<u32> = snap.messages.iter().map(|x| x.uid).collect();
        prop_assert!(uids.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(snap.highestmodseq >= m.hms, "HIGHESTMODSEQ went back");
        let now: HashSet<u32> = uids.iter().copied().collect();
        let mut changed = false;
        let mut fresh: Vec<u32> = now.difference(&m.live).copied().collect();
        fresh.sort_unstable();
        for u in fresh {
            prop_assert!(u > m.max_uid, "uid {} not above {}", u, m.max_uid);
            prop_assert!(!m.gone.contains(&u), "uid {} reused", u);
            m.max_uid = u;
            changed = true;
        }
        for u in m.live.difference(&now) {
            m.gone.insert(*u);
            changed = true;
        }
        for msg in &snap.messages {
            prop_assert!(msg.uid < snap.uidnext);
            prop_assert!(msg.modseq <= snap.highestmodseq);
            if let Some((f, ms)) = m.flags.get(&msg.uid) {
                prop_assert!(msg.modseq >= *ms);
                if f.system() != msg.flags.system() {
                    prop_assert!(msg.modseq > *ms, "flag change without new MODSEQ");
                    changed = true;
                }
            }
        }
        if changed {
            prop_assert!(snap.highestmodseq > m.hms || m.hms == 0);
        }
        m.hms = snap.highestmodseq;
        m.live = now;
        m.flags = snap
            .messages
            .iter()
            .map(|x| (x.uid, (x.flags.clone(), x.modseq)))
            .collect();
    }
    Ok(())
}

fn pick(files: &[String], i: u8) -> Option<&String> {
    let v: Vec<&String> = files.iter().filter(|f| f.contains(",U=")).collect();
    if v.is_empty() {
        None
    } else {
        Some(v[usize::from(i) % v.len()])
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, max_shrink_iters: 100, ..ProptestConfig::default() })]

    #[test]
    fn uids_and_modseqs_are_monotonic(ops in proptest::collection::vec(op(), 1..14)) {
        let (_t, s) = setup();
        let mut models = [Model::default(), Model::default()];
        check(&s, &mut models)?;
        let mut n = 0;
        for op in ops {
            n += 1;
            match op {
                Op::Append(b, f) => {
                    s.append(ACCT, BOXES[b], &msg(n), &sys(f), None).unwrap();
                }
                Op::SetFlags(b, f, o) => {
                    let op = [FlagOp::Add, FlagOp::Remove, FlagOp::Replace][usize::from(o)];
                    s.store_flags(ACCT, BOXES[b], &UidSet::all(), op, &sys(f), None).unwrap();
                }
                Op::Expunge(r) => {
                    let set = r.map(|(a, b)| UidSet::range(u32::from(a) + 1, u32::from(b) + 1));
                    s.expunge(ACCT, "INBOX", set.as_ref()).unwrap();
                }
                Op::Move(b, x, y) => {
                    let set = UidSet::range(u32::from(x) + 1, u32::from(y) + 1);
                    let r = s.move_messages(ACCT, BOXES[b], &set, BOXES[1 - b]).unwrap();
                    prop_assert!(r.mapping.windows(2).all(|w| w[0].1 < w[1].1));
                }
                Op::Copy(b, x, y) => {
                    let set = UidSet::range(u32::from(x) + 1, u32::from(y) + 1);
                    s.copy(ACCT, BOXES[b], &set, BOXES[1 - b]).unwrap();
                }
                Op::DropInNew(b) => {
                    let new = cur_dir(&s, b).with_file_name("new");
                    fs::write(new.join(format!("17000{n}.M1P1.ext")), msg(n)).unwrap();
                }
                Op::DeleteByHand(b, i) => {
                    let files = files_in(&cur_dir(&s, b));
                    if let Some(f) = pick(&files, i) {
                        fs::remove_file(cur_dir(&s, b).join(f)).unwrap();
                    }
                }
                Op::MuttFlags(b, i, f) => {
                    let files = files_in(&cur_dir(&s, b));
                    if let Some(name) = pick(&files, i) {
                        let base = name.split(':').next().unwrap();
                        let info = postern_store::maildir::internals::info_for(&sys(f), "", &Default::default());
                        fs::rename(
                            cur_dir(&s, b).join(name),
                            cur_dir(&s, b).join(format!("{base}:{info}")),
                        )
                        .unwrap();
                    }
                }
                Op::Reindex => {
                    let root = inbox_dir(&s);
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = fs::remove_file(root.join(format!("postern-index.sqlite{suffix}")));
                    }
                    let r = s.reindex(ACCT).unwrap();
                    prop_assert_eq!(r.renumbered, 0);
                }
            }
            check(&s, &mut models)?;
        }
    }
}
