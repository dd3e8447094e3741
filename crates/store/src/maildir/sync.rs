//! Bringing the index in line with the Maildir files.
//!
//! Plain files are the truth: other programs (procmail, mutt, rsync, a text editor) may add,
//! rename or delete message files and folders at any time. Before a mailbox is used the store
//! runs [`sync_mailbox`], which is cheap when nothing changed (two `stat`s compared with the
//! directory mtimes recorded in the index) and otherwise reads `new/` and `cur/` and reconciles:
//!
//! * a file whose base name matches a row is that message; a changed `:2,` info part is a flag
//!   change (new MODSEQ, [`MailboxEvent::Flags`]); a file in `new/` is moved to `cur/`;
//! * a row whose file is gone is expunged (tombstone with a new MODSEQ, [`MailboxEvent::Expunged`]),
//!   unless a file carrying its `,U=` appears under another base name (a rename);
//! * an unknown file becomes a new message ([`MailboxEvent::New`]). Its `,U=<n>` is kept if
//!   `n >= UIDNEXT` (this adopts a file whose append crashed before the index committed);
//!   otherwise it gets a fresh UID and is renamed, so UIDs are never reused.
//!
//! [`discover_mailboxes`] does the same for folders: directories without a row are indexed
//! (keeping the UIDVALIDITY of their `postern-uidvalidity` file and trusting every `,U=`), rows
//! without a directory are dropped.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::Connection;

use crate::error::{Result, StoreError};
use crate::maildir::files::{
    self as maildir, base_with_fields, is_not_found, merge_info, parse_info, parse_name,
    unix_nanos, unix_secs, MetaFile, NameGen,
};
use crate::maildir::files::{io_at, IoContext};
use crate::maildir::index::{self, FileRow, MailboxRow, NewMessage};
use crate::maildir::keywords::KeywordLetters;
use crate::names;
use crate::types::{Flags, MailboxEvent};

/// A directory mtime younger than this is not trusted for change detection: another change
/// within the same timestamp tick would go unnoticed.
const MTIME_TRUST_AGE: Duration = Duration::from_secs(2);
/// Files in `tmp/` older than this are leftovers of crashed deliveries (Maildir spec: 36 hours).
pub(super) const TMP_MAX_AGE: Duration = Duration::from_secs(36 * 3600);
/// Highest `,U=` value adopted from a file name; larger ones are renumbered so that one stray
/// file cannot exhaust the UID space.
pub(super) const MAX_ADOPTED_UID: u32 = 0x7fff_ffff;

/// Events produced by an operation, emitted after its transaction commits.
pub(super) type EventLog = Vec<(String, MailboxEvent)>;

/// The directory of a mailbox inside an account directory.
pub(super) fn mailbox_dir(account_root: &Path, canonical: &str) -> PathBuf {
    match names::folder_dir_name(canonical) {
        Some(d) => account_root.join(d),
        None => account_root.to_path_buf(),
    }
}

/// Which subdirectory a message file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Sub {
    New,
    Cur,
}

impl Sub {
    fn as_str(self) -> &'static str {
        match self {
            Sub::New => "new",
            Sub::Cur => "cur",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    sub: Sub,
    name: String,
}

impl Entry {
    fn rel(&self) -> String {
        format!("{}/{}", self.sub.as_str(), self.name)
    }
}

fn mtime_ns(path: &Path) -> Result<i64> {
    let md = fs::metadata(path).ctx("stat", path)?;
    Ok(md.modified().map(unix_nanos).unwrap_or(0))
}

/// Current mtimes of `new/` and `cur/`.
fn dir_mtimes(dir: &Path) -> Result<(i64, i64)> {
    Ok((mtime_ns(&dir.join("new"))?, mtime_ns(&dir.join("cur"))?))
}

/// True if the recorded directory state matches the disk (no scan needed). A recorded state that
/// was young when taken is trusted only until its `scan_due` deadline.
pub(super) fn is_current(mb: &MailboxRow, dir: &Path) -> Result<bool> {
    let (Some(n), Some(c)) = (mb.new_mtime, mb.cur_mtime) else {
        return Ok(false);
    };
    if mb.scan_due.is_some_and(|due| now_ns() >= due) {
        return Ok(false);
    }
    Ok(dir_mtimes(dir)? == (n, c))
}

fn now_ns() -> i64 {
    unix_nanos(SystemTime::now())
}

/// The deadline for re-checking mtimes that are younger than [`MTIME_TRUST_AGE`], if any is.
fn young_deadline(mtimes: [i64; 2]) -> Option<i64> {
    let age = i64::try_from(MTIME_TRUST_AGE.as_nanos()).unwrap_or(i64::MAX);
    let now = now_ns();
    mtimes
        .into_iter()
        .filter(|&t| now.saturating_sub(t) <= age)
        .max()
        .map(|t| t.saturating_add(age))
}

/// Call inside the write transaction before changing a mailbox's directories ourselves.
pub(super) fn before_own_change(mb: &MailboxRow, dir: &Path) -> Result<bool> {
    is_current(mb, dir)
}

/// Call after changing a mailbox's directories ourselves (still inside the write transaction,
/// which keeps other postern processes out). If the index was current before the change it is
/// current after it, so the new mtimes are recorded and the next access needs no scan; an earlier
/// pending re-check deadline is kept so continuous activity cannot postpone it. Otherwise the
/// recorded state already differs from the disk and the next access scans.
pub(super) fn after_own_change(mb: &mut MailboxRow, dir: &Path, was_current: bool) -> Result<()> {
    if was_current {
        let (n, c) = dir_mtimes(dir)?;
        mb.new_mtime = Some(n);
        mb.cur_mtime = Some(c);
        mb.scan_due = mb.scan_due.or(young_deadline([n, c]));
    }
    Ok(())
}

fn list(dir: &Path) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for sub in [Sub::Cur, Sub::New] {
        let d = dir.join(sub.as_str());
        let rd = match fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if is_not_found(&e) => {
                crate::maildir::files::create_private_dir_all(&d).ctx("create directory", &d)?;
                continue;
            }
            Err(e) => return Err(io_at("read directory", d, e)),
        };
        for ent in rd {
            let ent = ent.ctx("read directory", &d)?;
            let Ok(name) = ent.file_name().into_string() else {
                tracing::warn!(dir = %d.display(), "skipping non-UTF-8 file name");
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            out.push(Entry { sub, name });
        }
    }
    Ok(out)
}

struct Plan {
    /// (row index, entry index) pairs whose file name differs from the indexed one.
    moved: Vec<(usize, usize)>,
    missing: Vec<usize>,
    unknown: Vec<usize>,
}

type ScanRow = (u32, String);

fn row_base(fname: &str) -> &str {
    let name = fname.split_once('/').map_or(fname, |(_, n)| n);
    parse_name(name).base
}

fn plan(rows: &[ScanRow], files: &[Entry]) -> Plan {
    // Common case first: the file is exactly where the index says.
    let mut exact: HashMap<(Sub, &str), usize> = HashMap::with_capacity(files.len());
    for (i, e) in files.iter().enumerate() {
        exact.insert((e.sub, e.name.as_str()), i);
    }
    let mut used = vec![false; files.len()];
    let mut rest = Vec::new();
    for (r, (_, fname)) in rows.iter().enumerate() {
        let key = match fname.split_once('/') {
            Some(("cur", n)) => Some((Sub::Cur, n)),
            Some(("new", n)) => Some((Sub::New, n)),
            _ => None,
        };
        match key.and_then(|k| exact.get(&k)) {
            Some(&i) => used[i] = true,
            None => rest.push(r),
        }
    }
    drop(exact);
    // Then by base name: the info part (flags) or the subdirectory changed.
    let mut by_base: HashMap<&str, usize> = HashMap::new();
    let mut unknown = Vec::new();
    let rest_bases: HashSet<&str> = rest.iter().map(|&r| row_base(&rows[r].1)).collect();
    for (i, e) in files.iter().enumerate() {
        if used[i] {
            continue;
        }
        let base = parse_name(&e.name).base;
        if !rest_bases.contains(base) {
            unknown.push(i);
            continue;
        }
        // Same base twice (e.g. in new/ and cur/): the first (cur/ is listed first) is the
        // known message, the other one is treated as a newcomer.
        match by_base.entry(base) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(_) => unknown.push(i),
        }
    }
    let mut moved = Vec::new();
    let mut missing = Vec::new();
    for r in rest {
        match by_base.remove(row_base(&rows[r].1)) {
            Some(i) => moved.push((r, i)),
            None => missing.push(r),
        }
    }
    unknown.extend(by_base.into_values());
    unknown.sort_unstable();
    unknown.dedup();
    Plan {
        moved,
        missing,
        unknown,
    }
}

/// Per-sync mutable state.
struct Ctx<'a> {
    conn: &'a Connection,
    dir: &'a Path,
    gen: &'a NameGen,
    events: &'a mut EventLog,
    mb: &'a mut MailboxRow,
    /// The folder's keyword letters (read once per sync).
    kw: KeywordLetters,
    modseq: Option<u64>,
    renamed: bool,
    report: SyncReport,
}

impl Ctx<'_> {
    fn modseq(&mut self) -> u64 {
        *self.modseq.get_or_insert_with(|| {
            self.mb.highestmodseq += 1;
            self.mb.highestmodseq
        })
    }

    fn event(&mut self, ev: MailboxEvent) {
        self.events.push((self.mb.name.clone(), ev));
    }

    /// Renames a file inside the mailbox; `Ok(false)` if the source vanished meanwhile.
    fn rename(&mut self, from: &str, to: &str) -> Result<bool> {
        if from == to {
            return Ok(true);
        }
        let (src, dst) = (self.dir.join(from), self.dir.join(to));
        match fs::rename(&src, &dst) {
            Ok(()) => {
                self.renamed = true;
                Ok(true)
            }
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(io_at("rename", src, e)),
        }
    }

    /// A known message whose file is `e`.
    fn reconcile(&mut self, row: &FileRow, e: &Entry) -> Result<()> {
        let p = parse_name(&e.name);
        let info = parse_info(p.info);
        let flags = merge_info(&row.flags, &info, &self.kw);
        let target = match e.sub {
            Sub::Cur => e.rel(),
            Sub::New => format!(
                "cur/{}",
                maildir::file_name(p.base, &flags, &info.extra, &self.kw)
            ),
        };
        if !self.rename(&e.rel(), &target)? {
            return Ok(());
        }
        if flags != row.flags {
            let m = self.modseq();
            index::update_flags(self.conn, self.mb.id, row.uid, &flags, m, &target)?;
            self.report.changed += 1;
            self.event(MailboxEvent::Flags {
                uid: row.uid,
                flags,
                modseq: m,
            });
        } else if target != row.fname {
            index::update_fname(self.conn, self.mb.id, row.uid, &target)?;
        }
        Ok(())
    }
}

/// What a sync found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct SyncReport {
    /// New messages indexed.
    pub added: usize,
    /// Of those, how many got a UID other than their `,U=`.
    pub renumbered: usize,
    /// Messages whose flags changed on disk.
    pub changed: usize,
    /// Messages whose files disappeared.
    pub expunged: usize,
    /// True if the directories were read (not the cheap path).
    pub scanned: bool,
}

/// Brings one mailbox's index rows in line with its directory. Must run inside an IMMEDIATE
/// transaction; updates `mb` (and its row). With `trust_uids` (used when a mailbox is indexed
/// from scratch) every `,U=` in a file name is kept, duplicates aside.
pub(super) fn sync_mailbox(
    conn: &Connection,
    dir: &Path,
    mb: &mut MailboxRow,
    trust_uids: bool,
    gen: &NameGen,
    events: &mut EventLog,
) -> Result<SyncReport> {
    if !trust_uids && is_current(mb, dir)? {
        return Ok(SyncReport::default());
    }
    let (t_new, t_cur) = dir_mtimes(dir)?;
    let rows = index::scan_rows(conn, mb.id)?;
    let mut files = list(dir)?;
    let mut p = plan(&rows, &files);
    if !p.missing.is_empty() {
        // A concurrent rename can hide a file from one readdir: look once more before
        // declaring anything expunged.
        files = list(dir)?;
        p = plan(&rows, &files);
    }
    let mut cx = Ctx {
        conn,
        dir,
        gen,
        events,
        mb,
        kw: KeywordLetters::load(dir),
        modseq: None,
        renamed: false,
        report: SyncReport {
            scanned: true,
            ..SyncReport::default()
        },
    };
    for &(r, i) in &p.moved {
        if let Some(row) = index::file_row_by_uid(conn, cx.mb.id, rows[r].0)? {
            cx.reconcile(&row, &files[i])?;
        }
    }

    // Unknown files that carry the UID of a missing row were renamed by hand.
    let mut missing: HashSet<u32> = p.missing.iter().map(|&r| rows[r].0).collect();
    let mut newcomers = Vec::new();
    for &i in &p.unknown {
        let e = &files[i];
        let relinked = match parse_name(&e.name).uid {
            Some(u) if missing.remove(&u) => index::file_row_by_uid(conn, cx.mb.id, u)?,
            _ => None,
        };
        if let Some(row) = relinked {
            cx.reconcile(&row, e)?;
        } else {
            newcomers.push(i);
        }
    }

    // Rows without a file: expunged behind our back.
    let mut gone: Vec<u32> = missing.into_iter().collect();
    gone.sort_unstable();
    if !gone.is_empty() {
        let m = cx.modseq();
        reserve_meta_hint(cx.dir, cx.mb, gen)?;
        for uid in gone {
            index::expunge_row(conn, cx.mb.id, uid, m)?;
            cx.report.expunged += 1;
            cx.event(MailboxEvent::Expunged { uid, held: None });
        }
    }

    adopt(&mut cx, &files, &newcomers, &rows, trust_uids)?;

    if cx.renamed {
        maildir::fsync_dir(&dir.join("cur"))?;
        maildir::fsync_dir(&dir.join("new"))?;
    }
    let report = cx.report;
    let advanced = cx.modseq.is_some();
    // The state read before the scan: a change made during the scan leaves the disk newer than it.
    mb.new_mtime = Some(t_new);
    mb.cur_mtime = Some(t_cur);
    mb.scan_due = young_deadline([t_new, t_cur]);
    if report.expunged > 0 {
        index::prune_tombstones(conn, mb, index::TOMBSTONES_KEPT)?;
    }
    index::update_mailbox(conn, mb)?;
    if advanced {
        keep_modseq_hint(dir, mb, gen)?;
    }
    if report.added + report.changed + report.expunged > 0 {
        tracing::debug!(mailbox = %mb.name, ?report, "maildir sync");
    }
    Ok(report)
}

struct Newcomer {
    idx: usize,
    uid: Option<u32>,
    mtime: SystemTime,
    size: u64,
    /// From the `,W=` field, or read from the file.
    wire_size: u64,
}

fn adopt(
    cx: &mut Ctx<'_>,
    files: &[Entry],
    newcomers: &[usize],
    rows: &[ScanRow],
    trust_uids: bool,
) -> Result<()> {
    if newcomers.is_empty() {
        return Ok(());
    }
    let mut cands = Vec::with_capacity(newcomers.len());
    for &i in newcomers {
        let e = &files[i];
        let path = cx.dir.join(e.sub.as_str()).join(&e.name);
        let md = match fs::metadata(&path) {
            Ok(md) if md.is_file() => md,
            Ok(_) => continue,
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(io_at("stat", path, e)),
        };
        let p = parse_name(&e.name);
        let wire_size = match p.wire_size {
            Some(w) => w,
            None => match maildir::file_wire_size(&path) {
                Ok(w) => w,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(io_at("read", path, e)),
            },
        };
        cands.push(Newcomer {
            idx: i,
            uid: p.uid,
            mtime: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            size: md.len(),
            wire_size,
        });
    }
    let floor = if trust_uids { 1 } else { cx.mb.uidnext };
    let mut taken: HashSet<u32> = rows.iter().map(|r| r.0).collect();
    let (mut keep, mut renumber): (Vec<Newcomer>, Vec<Newcomer>) = cands
        .into_iter()
        .partition(|c| c.uid.is_some_and(|u| u >= floor && u <= MAX_ADOPTED_UID));
    keep.sort_by_key(|c| c.uid);
    let mut assigned: Vec<(Newcomer, u32)> = Vec::with_capacity(keep.len() + renumber.len());
    for c in keep {
        let Some(u) = c.uid else { continue };
        if taken.insert(u) {
            cx.mb.uidnext = cx.mb.uidnext.max(u + 1);
            assigned.push((c, u));
        } else {
            renumber.push(c);
        }
    }
    renumber.sort_by(|a, b| {
        a.mtime
            .cmp(&b.mtime)
            .then_with(|| files[a.idx].name.cmp(&files[b.idx].name))
    });
    for c in renumber {
        let u = cx.mb.uidnext;
        if u == u32::MAX {
            return Err(StoreError::UidsExhausted(cx.mb.name.clone()));
        }
        cx.mb.uidnext = u + 1;
        cx.report.renumbered += 1;
        assigned.push((c, u));
    }
    assigned.sort_by_key(|(_, u)| *u);

    // Bases already in use by known rows or earlier newcomers force a fresh base.
    let mut bases: HashSet<String> = rows.iter().map(|r| row_base(&r.1).to_owned()).collect();
    for (c, uid) in assigned {
        let e = &files[c.idx];
        let p = parse_name(&e.name);
        let info = parse_info(p.info);
        let flags = merge_info(&Flags::new(), &info, &cx.kw);
        let mut base = base_with_fields(p.base, c.size, c.wire_size, uid);
        if p.base.contains('/') || bases.contains(&base) || p.base.starts_with('.') {
            base = base_with_fields(&cx.gen.unique(), c.size, c.wire_size, uid);
        }
        let target = format!(
            "cur/{}",
            maildir::file_name(&base, &flags, &info.extra, &cx.kw)
        );
        if !cx.rename(&e.rel(), &target)? {
            continue;
        }
        bases.insert(base);
        let m = cx.modseq();
        index::insert_message(
            cx.conn,
            cx.mb.id,
            &NewMessage {
                uid,
                flags: &flags,
                modseq: m,
                internal_date: unix_secs(c.mtime),
                size: c.size,
                wire_size: c.wire_size,
                fname: &target,
                recent: e.sub == Sub::New,
                // A delivery whose index row did not commit keeps its key: retrying it finds
                // this message instead of storing a second copy.
                dkey: p.key,
            },
        )?;
        cx.report.added += 1;
        cx.event(MailboxEvent::New { uid });
    }
    Ok(())
}

/// UIDs and MODSEQs a rewritten hint reserves ahead of the mailbox (see [`reserve_meta_hint`]).
const HINT_UID_RESERVE: u32 = 1_000;
const HINT_MODSEQ_RESERVE: u64 = 100_000;

/// Before messages leave a folder: makes sure its hint is not behind the mailbox, so that a
/// rebuilt index never reuses a UID or a MODSEQ (RFC 9051 §2.3.1.1, RFC 7162 §3.1). The hint
/// is rewritten (two fsyncs) only when the mailbox has passed it, and then reserves room ahead,
/// so that an expunge rarely pays for it; a rebuilt index may skip the reserved values.
pub(super) fn reserve_meta_hint(dir: &Path, mb: &MailboxRow, gen: &NameGen) -> Result<()> {
    if let Some(h) = MetaFile::load(dir) {
        if h.uidvalidity == mb.uidvalidity
            && h.uidnext >= mb.uidnext
            && h.highestmodseq >= mb.highestmodseq
            && h.special_use == mb.special_use
        {
            return Ok(());
        }
    }
    store_hint(
        dir,
        &MetaFile {
            uidvalidity: mb.uidvalidity,
            uidnext: mb.uidnext.saturating_add(HINT_UID_RESERVE),
            highestmodseq: mb.highestmodseq.saturating_add(HINT_MODSEQ_RESERVE),
            special_use: mb.special_use,
        },
        gen,
    )
}

/// Writes the mailbox's `postern-uidvalidity` with the current UIDNEXT and HIGHESTMODSEQ so a
/// rebuilt index never reuses an expunged UID or goes back in MODSEQ.
pub(super) fn write_meta_hint(dir: &Path, mb: &MailboxRow, gen: &NameGen) -> Result<()> {
    store_hint(
        dir,
        &MetaFile {
            uidvalidity: mb.uidvalidity,
            uidnext: mb.uidnext,
            highestmodseq: mb.highestmodseq,
            special_use: mb.special_use,
        },
        gen,
    )
}

/// The HIGHESTMODSEQ each folder's hint holds, as this process last wrote or read it:
/// directory → (UIDVALIDITY, HIGHESTMODSEQ). Spares [`keep_modseq_hint`] a read per change.
fn known_hints() -> std::sync::MutexGuard<'static, HashMap<PathBuf, (u32, u64)>> {
    static HINTS: std::sync::OnceLock<std::sync::Mutex<HashMap<PathBuf, (u32, u64)>>> =
        std::sync::OnceLock::new();
    HINTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn store_hint(dir: &Path, hint: &MetaFile, gen: &NameGen) -> Result<()> {
    hint.store(dir, gen)?;
    known_hints().insert(dir.to_path_buf(), (hint.uidvalidity, hint.highestmodseq));
    Ok(())
}

/// After a change raised the mailbox's HIGHESTMODSEQ: keeps its hint at or above it, so that an
/// index rebuilt from the files never goes back in MODSEQ (RFC 7162 §3.1). A rebuilt index
/// starts from the hint or the millisecond clock, whichever is higher; the clock alone is not
/// enough once changes have come faster than one per millisecond since the last rebuild. The
/// hint is rewritten (two fsyncs) only when the mailbox has passed it, and then reserves
/// [`HINT_MODSEQ_RESERVE`] ahead; UIDs keep what the hint already had.
pub(super) fn keep_modseq_hint(dir: &Path, mb: &MailboxRow, gen: &NameGen) -> Result<()> {
    if let Some(&(v, h)) = known_hints().get(dir) {
        if v == mb.uidvalidity && h >= mb.highestmodseq {
            return Ok(());
        }
    }
    let hint = MetaFile::load(dir).filter(|h| h.uidvalidity == mb.uidvalidity);
    if let Some(h) = hint
        .as_ref()
        .filter(|h| h.highestmodseq >= mb.highestmodseq)
    {
        known_hints().insert(dir.to_path_buf(), (h.uidvalidity, h.highestmodseq));
        return Ok(());
    }
    store_hint(
        dir,
        &MetaFile {
            uidvalidity: mb.uidvalidity,
            uidnext: hint
                .as_ref()
                .map_or(mb.uidnext, |h| h.uidnext.max(mb.uidnext)),
            highestmodseq: mb.highestmodseq.saturating_add(HINT_MODSEQ_RESERVE),
            special_use: mb.special_use,
        },
        gen,
    )
}

/// Removes files in `tmp/` older than [`TMP_MAX_AGE`]; returns how many.
pub(super) fn clean_tmp(dir: &Path) -> usize {
    let tmp = dir.join("tmp");
    let Ok(rd) = fs::read_dir(&tmp) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut n = 0;
    for ent in rd.flatten() {
        let Ok(md) = ent.metadata() else { continue };
        if !md.is_file() {
            continue;
        }
        let old = md
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > TMP_MAX_AGE);
        if old && fs::remove_file(ent.path()).is_ok() {
            n += 1;
        }
    }
    n
}

/// A mod-sequence floor for mailboxes indexed from scratch: milliseconds since the epoch,
/// which is above any counter that advanced less than once per millisecond since 1970, so a
/// client's cached HIGHESTMODSEQ (RFC 7162) stays below the rebuilt one.
pub(super) fn modseq_floor() -> u64 {
    u64::try_from(unix_nanos(SystemTime::now()) / 1_000_000).unwrap_or(1)
}

/// The Maildir++ folders present on disk: canonical name → directory (INBOX is the root).
pub(super) fn folders_on_disk(account_root: &Path) -> Result<HashMap<String, PathBuf>> {
    let mut out = HashMap::new();
    out.insert(names::INBOX.to_owned(), account_root.to_path_buf());
    let rd = fs::read_dir(account_root).ctx("read directory", account_root)?;
    for ent in rd {
        let ent = ent.ctx("read directory", account_root)?;
        let Ok(fname) = ent.file_name().into_string() else {
            continue;
        };
        let Some(name) = names::decode_folder_dir(&fname) else {
            continue;
        };
        let path = ent.path();
        if path.join("cur").is_dir() {
            out.insert(name, path);
        }
    }
    Ok(out)
}

/// Creates a mailbox row for a folder found on disk and indexes its files, keeping the
/// UIDVALIDITY of its metadata file when it does not clash with another mailbox.
pub(super) fn index_folder(
    conn: &Connection,
    name: &str,
    dir: &Path,
    gen: &NameGen,
    events: &mut EventLog,
) -> Result<(MailboxRow, SyncReport)> {
    for sub in ["cur", "new", "tmp"] {
        let d = dir.join(sub);
        crate::maildir::files::create_private_dir_all(&d).ctx("create directory", &d)?;
    }
    clean_tmp(dir);
    let meta = MetaFile::load(dir);
    let clash = |v: u32| -> Result<bool> {
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM mailboxes WHERE uidvalidity=?1",
            [i64::from(v)],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    };
    let (uidvalidity, uidnext, hms, su) = match &meta {
        Some(m) if !clash(m.uidvalidity)? => {
            index::note_uidvalidity(conn, m.uidvalidity)?;
            (
                m.uidvalidity,
                m.uidnext.max(1),
                m.highestmodseq,
                m.special_use,
            )
        }
        other => (
            index::next_uidvalidity(conn)?,
            1,
            0,
            other.as_ref().and_then(|m| m.special_use),
        ),
    };
    let floor = hms.max(modseq_floor());
    let id = index::insert_mailbox(conn, name, uidvalidity, uidnext, floor, su, floor)?;
    let mut mb = index::mailbox(conn, name)?
        .filter(|m| m.id == id)
        .ok_or_else(|| StoreError::Corrupt(format!("mailbox row {name:?} vanished")))?;
    let report = sync_mailbox(conn, dir, &mut mb, true, gen, events)?;
    // All adopted messages share one modseq; tombstones are complete from here on.
    mb.exact_since = mb.highestmodseq;
    index::update_mailbox(conn, &mb)?;
    write_meta_hint(dir, &mb, gen)?;
    Ok((mb, report))
}

/// Reconciles the mailbox rows with the folders on disk (inside an IMMEDIATE transaction).
/// Whether the folders on disk are exactly the indexed mailboxes, each with its indexed
/// UIDVALIDITY: then [`discover_mailboxes`] would change nothing.
pub(super) fn folders_match(account_root: &Path, rows: &[MailboxRow]) -> Result<bool> {
    let on_disk = folders_on_disk(account_root)?;
    if on_disk.len() != rows.len() {
        return Ok(false);
    }
    Ok(rows.iter().all(|row| match on_disk.get(&row.name) {
        None => false,
        Some(dir) => MetaFile::load(dir).is_none_or(|m| m.uidvalidity == row.uidvalidity),
    }))
}

pub(super) fn discover_mailboxes(
    conn: &Connection,
    account_root: &Path,
    gen: &NameGen,
    events: &mut EventLog,
) -> Result<SyncReport> {
    let mut total = SyncReport::default();
    let on_disk = folders_on_disk(account_root)?;
    let rows = index::mailboxes(conn)?;
    let mut known = HashSet::new();
    for row in rows {
        let stale = match on_disk.get(&row.name) {
            None => true,
            // A different folder now lives under this name (moved by hand).
            Some(dir) => MetaFile::load(dir).is_some_and(|m| m.uidvalidity != row.uidvalidity),
        };
        if stale {
            tracing::info!(mailbox = %row.name, "mailbox changed on disk; re-indexing");
            index::delete_mailbox(conn, row.id)?;
            events.push((row.name.clone(), MailboxEvent::Invalidated));
        } else {
            known.insert(row.name);
        }
    }
    let mut fresh: Vec<(&String, &PathBuf)> = on_disk
        .iter()
        .filter(|(n, _)| !known.contains(*n))
        .collect();
    fresh.sort();
    let mut indexed = 0;
    for (name, dir) in fresh {
        tracing::debug!(mailbox = %name, "indexing mailbox found on disk");
        let (_, r) = index_folder(conn, name, dir, gen, events)?;
        total.added += r.added;
        total.renumbered += r.renumbered;
        total.scanned = true;
        indexed += 1;
    }
    // A new account's empty folders are no news; mail that was already there is.
    if total.added > 0 {
        tracing::info!(
            mailboxes = indexed,
            messages = total.added,
            "indexed mail found on disk"
        );
    }
    Ok(total)
}
