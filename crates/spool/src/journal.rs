//! The spool's write-ahead journal: where a message waits during its first delivery attempt.
//!
//! # Why
//! Most mail is delivered within milliseconds of its arrival. Writing every message as its own
//! `q/<id>` file and unlinking it right after costs an inode allocation and release, a file
//! fsync, and two directory fsyncs per message; under load the filesystem's inode allocator
//! (`find_inode_bit`, `recently_deleted` on ext4) dominated reception. Here a message delivered at
//! its first attempt costs one append to a shared file plus a share of one group-committed
//! `fdatasync`, and its removal one small append with no fsync at all.
//!
//! # On disk
//! `journal/seg-<20-digit number>` are segment files, appended to in number order (only the
//! newest, the *active* one, is written); `journal/lock` is `flock`ed by the process that owns
//! the journal (the server); other processes (queue administration, `sendmail`) only read it.
//!
//! A segment is a sequence of records, integers little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `PJ1\0` |
//! | 1 | kind: `E` entry, `D` done |
//! | 4 | payload length |
//! | 4 | CRC-32 of the payload |
//! | n | payload |
//!
//! An entry's payload is a `u32` length, the JSON of the initial [`QueueEntry`] (what the first
//! line of a `q/<id>` file holds), then the message bytes. A done record's payload is the queue
//! id: the message has left the journal (delivered, deleted, or *promoted* to a classic `q/<id>`
//! file). A reader stops at the first record that is short or has a bad magic or CRC: a torn
//! tail left by a crash, whose writer never returned success.
//!
//! Segments are created full size, filled with zeros and fsynced before use, so a record is
//! written over allocated space: its `fdatasync` then flushes data only, instead of also
//! waiting for a file-system journal commit for the new file size (shared with every other
//! fsync on the disk; this halved the enqueue latency on ext4). Zeros after the last record
//! are the unused rest of a segment. The next segment is prepared in the background as
//! `journal/spare-<number>` and renamed into place at rotation.
//!
//! # Durability
//! A message is acknowledged only after its entry record was `fdatasync`ed. A segment file is
//! created, and `journal/` fsynced, before its first record is written, so the file itself
//! survives a crash; `fdatasync` then covers the data (and the size, past the preallocation). Appends happen under
//! one lock, and a leader/follower group commit (as in `dirsync`) makes one `fdatasync` cover
//! every record appended before it started. When the active segment is replaced, the old one is
//! `fdatasync`ed first, so every position before the active segment is durable.
//!
//! Done records are not synced: a crash that loses one only makes the next owner promote the
//! message again (final local delivery is idempotent by queue id). Two exceptions make a
//! promotion safe: its done record is synced before the promotion returns (else a later unlink
//! of `q/<id>` plus a crash would resurrect the message), and segments are deleted oldest first,
//! with `journal/` fsynced after, because a done record lives in the same or a later segment
//! than its entry, and deleting a later segment before an earlier one would lose the done
//! records for the earlier one's entries.
//!
//! At start-up the owner promotes every entry without a done record to `q/<id>` (unless that
//! file exists), then deletes every segment and starts a new one. Messages larger than
//! [`Limits::max_message`] never enter the journal.

use crate::error::IoContext;
use crate::{QueueEntry, QueueId, SpoolError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

const MAGIC: &[u8; 4] = b"PJ1\0";
/// Magic, kind, length, CRC.
const HEADER: usize = 13;
const KIND_ENTRY: u8 = b'E';
const KIND_DONE: u8 = b'D';

/// Sizes that decide when the journal is used and when segments change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The active segment is replaced when an append finds it this large.
    pub(crate) segment_max: u64,
    /// The active segment, when it is the only one and holds no live message, is replaced (and
    /// deleted) once this large.
    pub(crate) idle_rotate: u64,
    /// Larger messages are written as classic `q/<id>` files.
    pub(crate) max_message: usize,
    /// With more segments than this (an old one kept by a message whose first attempt takes
    /// long), the live messages of the oldest segment are promoted so it can be deleted.
    pub(crate) max_segments: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            segment_max: 8 << 20,
            // Segments are preallocated to `segment_max`: replacing an idle one earlier frees
            // no space and costs a whole new segment of zeros.
            idle_rotate: 8 << 20,
            max_message: 1 << 20,
            max_segments: 16,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn segment_path(dir: &Path, no: u64) -> PathBuf {
    dir.join(format!("seg-{no:020}"))
}

fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).ctx("fsync", dir)
}

fn record(kind: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut rec = Vec::with_capacity(HEADER + len);
    rec.extend_from_slice(MAGIC);
    rec.push(kind);
    rec.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    rec.extend_from_slice(&[0; 4]);
    for p in parts {
        rec.extend_from_slice(p);
    }
    let crc = crc32fast::hash(&rec[HEADER..]);
    rec[9..HEADER].copy_from_slice(&crc.to_le_bytes());
    rec
}

/// An entry record: the initial [`QueueEntry`] as JSON, then the message.
pub(crate) fn entry_record(json: &[u8], message: &[u8]) -> Vec<u8> {
    let json_len = u32::try_from(json.len()).unwrap_or(u32::MAX).to_le_bytes();
    record(KIND_ENTRY, &[&json_len, json, message])
}

pub(crate) fn done_record(id: &QueueId) -> Vec<u8> {
    record(KIND_DONE, &[id.as_str().as_bytes()])
}

/// Where the message bytes of an entry record start, relative to the record's start.
fn message_offset(json_len: usize) -> u64 {
    (HEADER + 4 + json_len) as u64
}

/// One valid record: its kind and where its payload lies in the buffer.
struct Rec {
    kind: u8,
    payload: std::ops::Range<usize>,
}

/// The valid records at the start of `buf`, and where they end.
fn parse(buf: &[u8]) -> (Vec<Rec>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(head) = buf.get(at..at + HEADER) {
        if &head[..4] != MAGIC || !matches!(head[4], KIND_ENTRY | KIND_DONE) {
            break;
        }
        let len = u32::from_le_bytes([head[5], head[6], head[7], head[8]]) as usize;
        let crc = u32::from_le_bytes([head[9], head[10], head[11], head[12]]);
        let start = at + HEADER;
        let Some(payload) = buf.get(start..start + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        out.push(Rec {
            kind: head[4],
            payload: start..start + len,
        });
        at = start + len;
    }
    (out, at)
}

/// One record of a segment, as [`read_segment`] understood it.
#[doc(hidden)]
#[derive(Debug)]
pub enum SegmentRecord {
    /// An entry record: the queue entry, and where its message lies in the segment's bytes.
    Entry {
        id: QueueId,
        entry: Box<QueueEntry>,
        message: std::ops::Range<usize>,
    },
    /// A done record: the message left the journal.
    Done(QueueId),
    /// A record that passed its CRC but could not be understood.
    Bad,
}

/// What the bytes of one segment file hold (I/O-free, so it can be fuzzed: the journal is
/// read back from disk after a crash).
#[doc(hidden)]
#[derive(Debug)]
pub struct SegmentRead {
    /// The valid records, in file order.
    pub records: Vec<SegmentRecord>,
    /// Where the valid records end.
    pub end: usize,
    /// Whether anything but zeros (the unused, preallocated space) follows them.
    pub torn: bool,
}

/// Decodes the bytes of one segment file: its valid records up to the first torn or corrupt
/// one.
#[doc(hidden)]
pub fn read_segment(buf: &[u8]) -> SegmentRead {
    let (records, end) = parse(buf);
    // Zeros after the last record are the segment's unused, preallocated space.
    let torn = buf[end..].iter().any(|&b| b != 0);
    let records = records
        .into_iter()
        .map(|rec| {
            let payload = &buf[rec.payload.clone()];
            if rec.kind == KIND_DONE {
                return match std::str::from_utf8(payload).ok().and_then(QueueId::parse) {
                    Some(id) => SegmentRecord::Done(id),
                    None => SegmentRecord::Bad,
                };
            }
            let decoded = payload
                .get(..4)
                .map(|n| u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize)
                .and_then(|json_len| {
                    let json = payload.get(4..4 + json_len)?;
                    let entry: QueueEntry = serde_json::from_slice(json).ok()?;
                    let id = checked_id(entry.id.clone())?;
                    Some((id, entry, json_len))
                });
            let Some((id, entry, json_len)) = decoded else {
                return SegmentRecord::Bad;
            };
            let record_start = rec.payload.start - HEADER;
            let msg_off = record_start + message_offset(json_len) as usize;
            SegmentRecord::Entry {
                id,
                entry: Box::new(entry),
                message: msg_off..rec.payload.end,
            }
        })
        .collect();
    SegmentRead { records, end, torn }
}

/// A queue id exactly as we generate them (so it is safe as a file name).
fn checked_id(id: QueueId) -> Option<QueueId> {
    (QueueId::parse(id.as_str()).as_ref() == Some(&id)).then_some(id)
}

/// A live entry found by reading the segments.
pub(crate) struct Located {
    pub(crate) segment: u64,
    file: Arc<File>,
    pub(crate) entry: QueueEntry,
    msg_off: u64,
    msg_len: u64,
}

impl Located {
    pub(crate) fn message(&self, dir: &Path) -> Result<Vec<u8>, SpoolError> {
        read_at(&self.file, self.msg_off, self.msg_len)
            .ctx("read", &segment_path(dir, self.segment))
    }
}

fn read_at(file: &File, off: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; usize::try_from(len).map_err(std::io::Error::other)?];
    file.read_exact_at(&mut buf, off)?;
    Ok(buf)
}

/// What the segments on disk hold: a read-only view (no lock needed).
#[derive(Default)]
pub(crate) struct Scan {
    /// Segment numbers, ascending.
    pub(crate) segments: Vec<u64>,
    /// Entries without a done record.
    pub(crate) live: HashMap<QueueId, Located>,
    /// Segments with a record that passed its CRC but could not be understood.
    pub(crate) bad: Vec<u64>,
    /// Segments whose valid records end before the file does: (segment, valid bytes, file size).
    pub(crate) torn: Vec<(u64, u64, u64)>,
}

/// Reads every segment in `dir`: entries minus done records.
pub(crate) fn scan(dir: &Path) -> Result<Scan, SpoolError> {
    let mut segments: Vec<u64> = fs::read_dir(dir)
        .ctx("list", dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| segment_number(&e.file_name().to_string_lossy()))
        .collect();
    segments.sort_unstable();
    // Open every segment first: one deleted meanwhile (by an owner at work) stays readable.
    let mut files = Vec::new();
    for &no in &segments {
        let path = segment_path(dir, no);
        match File::open(&path) {
            Ok(f) => files.push((no, Arc::new(f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(SpoolError::Io {
                    op: "open",
                    path,
                    source: e,
                })
            }
        }
    }
    let mut out = Scan {
        segments: files.iter().map(|(no, _)| *no).collect(),
        ..Scan::default()
    };
    for (no, file) in files {
        let path = segment_path(dir, no);
        let mut buf = Vec::new();
        (&*file).read_to_end(&mut buf).ctx("read", &path)?;
        let segment = read_segment(&buf);
        if segment.torn {
            out.torn.push((no, segment.end as u64, buf.len() as u64));
        }
        let mut bad = false;
        for record in segment.records {
            match record {
                SegmentRecord::Done(id) => {
                    out.live.remove(&id);
                }
                SegmentRecord::Entry { id, entry, message } => {
                    out.live.insert(
                        id,
                        Located {
                            segment: no,
                            file: file.clone(),
                            entry: *entry,
                            msg_off: message.start as u64,
                            msg_len: message.len() as u64,
                        },
                    );
                }
                SegmentRecord::Bad => bad = true,
            }
        }
        if bad {
            out.bad.push(no);
        }
    }
    Ok(out)
}

/// Removes the segments a recovery has dealt with (keeping any `bad` one aside for a human as
/// `bad-seg-...`), then makes that durable.
pub(crate) fn retire(dir: &Path, scan: &Scan) -> Result<(), SpoolError> {
    for &no in &scan.segments {
        let path = segment_path(dir, no);
        if scan.bad.contains(&no) {
            let aside = dir.join(format!("bad-seg-{no:020}"));
            tracing::error!(segment = %path.display(), "journal segment with unreadable records kept as {}", aside.display());
            fs::rename(&path, &aside).ctx("rename", &path)?;
        } else {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(SpoolError::Io {
                        op: "remove",
                        path,
                        source: e,
                    })
                }
            }
        }
    }
    if !scan.segments.is_empty() {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// The journal as its owner sees it: the active segment, the live messages, the group commit.
pub(crate) struct Journal {
    dir: PathBuf,
    limits: Limits,
    inner: Mutex<Inner>,
    commit: Mutex<Commit>,
    committed: Condvar,
    /// The next segment, zero-filled in the background so a rotation does not stall every
    /// enqueue behind writing it (an unused one on disk is an empty segment to a reader).
    spare: Mutex<Option<Spare>>,
}

type Spare = std::thread::JoinHandle<Result<(u64, File), SpoolError>>;

struct Inner {
    active: u64,
    /// Bytes written to the active segment.
    size: u64,
    /// The logical position of the active segment's first byte: positions grow across
    /// segments, so "durable up to" is one number.
    base: u64,
    segments: BTreeMap<u64, Segment>,
    /// Messages in their first attempt (entry durable, no done record yet).
    fresh: HashMap<QueueId, Fresh>,
    /// Fresh messages being written as classic files.
    promoting: HashSet<QueueId>,
    /// A failed append may have left bytes behind that could not be cut off: next append goes
    /// to a new segment.
    must_rotate: bool,
}

struct Segment {
    file: Arc<File>,
    /// Entries without a done record, counting appends still waiting for their fsync.
    live: usize,
}

struct Fresh {
    segment: u64,
    msg_off: u64,
    msg_len: u64,
    entry: QueueEntry,
}

#[derive(Default)]
struct Commit {
    /// Every position up to this one is durable (except inside `failures`).
    synced: u64,
    running: bool,
    /// Ranges (from, to] of positions whose fsync failed: never acknowledged.
    failures: Vec<(u64, u64, String)>,
}

/// What [`Journal::remove`] did.
pub(crate) enum Removal {
    /// Not a fresh message: look for a classic file.
    NotFresh,
    /// Being promoted right now: wait for that, then it is a classic file.
    Promoting,
    Removed,
}

/// What [`Journal::finish_promotion`] did.
pub(crate) struct Finished {
    /// The position of the last done record appended, to wait for.
    pub(crate) wait_for: Option<u64>,
    /// Ids whose done record could not be appended: still fresh.
    pub(crate) failed: Vec<QueueId>,
    pub(crate) error: Option<SpoolError>,
}

impl Inner {
    fn active_file(&self) -> &Arc<File> {
        &self.segments[&self.active].file
    }

    fn release(&mut self, segment: u64) {
        if let Some(s) = self.segments.get_mut(&segment) {
            s.live = s.live.saturating_sub(1);
        }
    }
}

impl Journal {
    /// Starts a journal in `dir` (which holds no segment of this number) with an empty active
    /// segment.
    pub(crate) fn start(dir: PathBuf, limits: Limits, first: u64) -> Result<Journal, SpoolError> {
        remove_spares(&dir);
        let file = create_segment(&dir, first, limits.segment_max)?;
        let mut segments = BTreeMap::new();
        segments.insert(
            first,
            Segment {
                file: Arc::new(file),
                live: 0,
            },
        );
        Ok(Journal {
            dir,
            limits,
            inner: Mutex::new(Inner {
                active: first,
                size: 0,
                base: 0,
                segments,
                fresh: HashMap::new(),
                promoting: HashSet::new(),
                must_rotate: false,
            }),
            commit: Mutex::new(Commit::default()),
            committed: Condvar::new(),
            spare: Mutex::new(None),
        })
        .inspect(|j| j.prepare_spare(first + 1))
    }

    /// Starts zero-filling the spare for segment `no` on a thread of its own.
    fn prepare_spare(&self, no: u64) {
        let (path, size) = (spare_path(&self.dir, no), self.limits.segment_max);
        let spare = std::thread::Builder::new()
            .name("postern-journal".into())
            .spawn(move || zeroed_file(&path, size).map(|f| (no, f)));
        // Without a thread the rotation creates the segment itself.
        *lock(&self.spare) = spare.ok();
    }

    /// Segment `no`: the spare renamed into place if it is that one and was made, else a new
    /// one; either way durable before use.
    fn take_segment(&self, no: u64) -> Result<File, SpoolError> {
        let spare = lock(&self.spare).take();
        if let Some(Ok(Ok((n, file)))) = spare.map(|h| h.join()) {
            let from = spare_path(&self.dir, n);
            if n == no && fs::rename(&from, segment_path(&self.dir, no)).is_ok() {
                fsync_dir(&self.dir)?;
                return Ok(file);
            }
            let _ = fs::remove_file(from);
        }
        create_segment(&self.dir, no, self.limits.segment_max)
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Appends an entry durably and records the message as fresh. `json` is `entry` serialised.
    pub(crate) fn enqueue(
        &self,
        entry: QueueEntry,
        json: &[u8],
        message: &[u8],
    ) -> Result<(), SpoolError> {
        let rec = entry_record(json, message);
        let (segment, off, pos) = {
            let mut inner = lock(&self.inner);
            let at = self.append(&mut inner, &rec)?;
            if let Some(s) = inner.segments.get_mut(&at.0) {
                s.live += 1;
            }
            at
        };
        match self.wait_durable(pos) {
            Ok(()) => {
                let fresh = Fresh {
                    segment,
                    msg_off: off + message_offset(json.len()),
                    msg_len: message.len() as u64,
                    entry,
                };
                let mut inner = lock(&self.inner);
                inner.fresh.insert(fresh.entry.id.clone(), fresh);
                Ok(())
            }
            Err(e) => {
                // Not acknowledged: make sure a restart does not deliver it either.
                let mut inner = lock(&self.inner);
                inner.release(segment);
                let _ = self.append(&mut inner, &done_record(&entry.id));
                let dead = self.collect_dead(&mut inner);
                drop(inner);
                self.delete_segments(&dead);
                Err(e)
            }
        }
    }

    /// Writes one record at the end of the active segment (replacing it first when full);
    /// returns the segment, the record's offset in it, and the logical position of its end.
    fn append(&self, inner: &mut Inner, rec: &[u8]) -> Result<(u64, u64, u64), SpoolError> {
        if inner.must_rotate || inner.size >= self.limits.segment_max {
            self.rotate(inner)?;
        }
        let off = inner.size;
        let file = inner.active_file().clone();
        if let Err(e) = file.write_all_at(rec, off) {
            // Cut off a partial record: a reader must never find valid records after it.
            if file.set_len(off).is_err() {
                inner.must_rotate = true;
            }
            return Err(SpoolError::Io {
                op: "write",
                path: segment_path(&self.dir, inner.active),
                source: e,
            });
        }
        inner.size += rec.len() as u64;
        Ok((inner.active, off, inner.base + inner.size))
    }

    /// Replaces the active segment by a new one. The old one is made durable first, so every
    /// position before the new segment is durable.
    fn rotate(&self, inner: &mut Inner) -> Result<(), SpoolError> {
        let old_end = inner.base + inner.size;
        let old_path = segment_path(&self.dir, inner.active);
        if let Err(e) = inner.active_file().sync_data() {
            let mut c = lock(&self.commit);
            let from = c.synced;
            c.failures.push((from, old_end, e.to_string()));
            self.committed.notify_all();
            return Err(SpoolError::Io {
                op: "fdatasync",
                path: old_path,
                source: e,
            });
        }
        {
            let mut c = lock(&self.commit);
            c.synced = c.synced.max(old_end);
            self.committed.notify_all();
        }
        let next = inner.active + 1;
        let file = self.take_segment(next)?;
        self.prepare_spare(next + 1);
        inner.segments.insert(
            next,
            Segment {
                file: Arc::new(file),
                live: 0,
            },
        );
        inner.active = next;
        inner.base = old_end;
        inner.size = 0;
        inner.must_rotate = false;
        Ok(())
    }

    /// Waits until every record ending at or before `pos` is durable: one caller at a time runs
    /// `fdatasync` on the active segment for everyone who appended before it started.
    pub(crate) fn wait_durable(&self, pos: u64) -> Result<(), SpoolError> {
        let mut c = lock(&self.commit);
        loop {
            if let Some((_, _, msg)) = c
                .failures
                .iter()
                .find(|(from, to, _)| pos > *from && pos <= *to)
            {
                return Err(SpoolError::Io {
                    op: "fdatasync",
                    path: self.dir.clone(),
                    source: std::io::Error::other(msg.clone()),
                });
            }
            if c.synced >= pos {
                return Ok(());
            }
            if !c.running {
                c.running = true;
                let from = c.synced;
                drop(c);
                let (file, covers) = {
                    let inner = lock(&self.inner);
                    (inner.active_file().clone(), inner.base + inner.size)
                };
                let r = file.sync_data();
                c = lock(&self.commit);
                c.running = false;
                match r {
                    Ok(()) => c.synced = c.synced.max(covers),
                    Err(e) => c.failures.push((from, covers, e.to_string())),
                }
                self.committed.notify_all();
                continue;
            }
            c = self.committed.wait(c).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Segments that can go: the oldest ones, while they are not active and hold nothing live
    /// (a done record may refer to an entry in any earlier segment, so never one out of order).
    /// The active segment, when alone, idle and big enough, is replaced first.
    fn collect_dead(&self, inner: &mut Inner) -> Vec<u64> {
        if inner.segments.len() == 1
            && inner.segments[&inner.active].live == 0
            && inner.size > self.limits.idle_rotate
        {
            if let Err(e) = self.rotate(inner) {
                tracing::warn!("replacing the journal segment: {e}");
            }
        }
        let mut dead = Vec::new();
        while let Some((&no, s)) = inner.segments.first_key_value() {
            if no == inner.active || s.live > 0 {
                break;
            }
            inner.segments.remove(&no);
            dead.push(no);
        }
        dead
    }

    /// Unlinks segments (outside the lock) and makes that durable: a segment resurrected by a
    /// crash could come back without the later done records of its entries.
    fn delete_segments(&self, dead: &[u64]) {
        if dead.is_empty() {
            return;
        }
        for &no in dead {
            let path = segment_path(&self.dir, no);
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(segment = %path.display(), "deleting a journal segment: {e}");
            }
        }
        if let Err(e) = fsync_dir(&self.dir) {
            tracing::warn!("{e}");
        }
    }

    pub(crate) fn contains(&self, id: &QueueId) -> bool {
        lock(&self.inner).fresh.contains_key(id)
    }

    pub(crate) fn entry(&self, id: &QueueId) -> Option<QueueEntry> {
        lock(&self.inner).fresh.get(id).map(|f| f.entry.clone())
    }

    /// A fresh message's bytes, read from its segment.
    pub(crate) fn message(&self, id: &QueueId) -> Option<Result<Vec<u8>, SpoolError>> {
        let (file, segment, off, len) = {
            let inner = lock(&self.inner);
            let f = inner.fresh.get(id)?;
            let file = inner.segments.get(&f.segment)?.file.clone();
            (file, f.segment, f.msg_off, f.msg_len)
        };
        Some(read_at(&file, off, len).ctx("read", &segment_path(&self.dir, segment)))
    }

    pub(crate) fn ids(&self) -> Vec<QueueId> {
        lock(&self.inner).fresh.keys().cloned().collect()
    }

    /// Marks a fresh message as being promoted and returns what to write. The caller holds the
    /// spool's promotion lock and ends with [`Journal::finish_promotion`] or
    /// [`Journal::abort_promotion`].
    pub(crate) fn begin_promotion(
        &self,
        id: &QueueId,
    ) -> Option<Result<(QueueEntry, Vec<u8>), SpoolError>> {
        let (entry, file, segment, off, len) = {
            let mut inner = lock(&self.inner);
            let f = inner.fresh.get(id)?;
            let entry = f.entry.clone();
            let (segment, off, len) = (f.segment, f.msg_off, f.msg_len);
            let file = inner.segments.get(&segment)?.file.clone();
            inner.promoting.insert(id.clone());
            (entry, file, segment, off, len)
        };
        Some(
            read_at(&file, off, len)
                .ctx("read", &segment_path(&self.dir, segment))
                .map(|bytes| (entry, bytes)),
        )
    }

    pub(crate) fn abort_promotion(&self, ids: &[QueueId]) {
        let mut inner = lock(&self.inner);
        for id in ids {
            inner.promoting.remove(id);
        }
    }

    /// The promoted messages' classic files are durable: append their done records and forget
    /// them. The caller waits for [`Finished::wait_for`].
    pub(crate) fn finish_promotion(&self, ids: &[QueueId]) -> Finished {
        let mut out = Finished {
            wait_for: None,
            failed: Vec::new(),
            error: None,
        };
        let mut inner = lock(&self.inner);
        for id in ids {
            inner.promoting.remove(id);
            if out.error.is_some() {
                out.failed.push(id.clone());
                continue;
            }
            if !inner.fresh.contains_key(id) {
                continue;
            }
            match self.append(&mut inner, &done_record(id)) {
                Ok((_, _, pos)) => {
                    out.wait_for = Some(pos);
                    if let Some(f) = inner.fresh.remove(id) {
                        inner.release(f.segment);
                    }
                }
                Err(e) => {
                    out.error = Some(e);
                    out.failed.push(id.clone());
                }
            }
        }
        let dead = self.collect_dead(&mut inner);
        drop(inner);
        self.delete_segments(&dead);
        out
    }

    /// Ends a fresh message: a done record, not synced (see the module documentation).
    pub(crate) fn remove(&self, id: &QueueId) -> Result<Removal, SpoolError> {
        let mut inner = lock(&self.inner);
        if inner.promoting.contains(id) {
            return Ok(Removal::Promoting);
        }
        let Some(segment) = inner.fresh.get(id).map(|f| f.segment) else {
            return Ok(Removal::NotFresh);
        };
        self.append(&mut inner, &done_record(id))?;
        inner.fresh.remove(id);
        inner.release(segment);
        let dead = self.collect_dead(&mut inner);
        drop(inner);
        self.delete_segments(&dead);
        Ok(Removal::Removed)
    }

    /// With too many segments, the fresh messages of the oldest one: promoting them lets it go.
    pub(crate) fn compaction_candidates(&self) -> Vec<QueueId> {
        let inner = lock(&self.inner);
        if inner.segments.len() <= self.limits.max_segments.max(1) {
            return Vec::new();
        }
        let Some(&oldest) = inner.segments.keys().next() else {
            return Vec::new();
        };
        let mut ids: Vec<QueueId> = inner
            .fresh
            .iter()
            .filter(|(id, f)| f.segment == oldest && !inner.promoting.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}

/// Creates segment `no`, zero-filled to `size` bytes, and makes it and its existence durable
/// before anything is written to it.
fn create_segment(dir: &Path, no: u64, size: u64) -> Result<File, SpoolError> {
    let file = zeroed_file(&segment_path(dir, no), size)?;
    fsync_dir(dir)?;
    Ok(file)
}

/// A new file of `size` zero bytes, durable. Appending to a file changes its size, so each
/// `fdatasync` would also wait for a commit of the file system's journal (shared with every
/// other file's fsync); records written over allocated zeros leave the metadata alone. A
/// reader stops at the zeros as at any invalid record.
fn zeroed_file(path: &Path, size: u64) -> Result<File, SpoolError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::spool::PRIVATE_FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ctx("create", path)?;
    let zeros = vec![0u8; 1 << 20];
    let mut off = 0u64;
    while off < size {
        let n = (size - off).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], off).ctx("write", path)?;
        off += n as u64;
    }
    file.sync_all().ctx("fsync", path)?;
    Ok(file)
}

/// Where the spare for segment `no` is prepared (not a segment name: readers skip it).
fn spare_path(dir: &Path, no: u64) -> PathBuf {
    dir.join(format!("spare-{no:020}"))
}

/// Removes spares a previous owner left behind.
fn remove_spares(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("spare-") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// The spool and its journal together, on real files.
#[cfg(test)]
mod spool_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_back_and_a_torn_tail_stops_the_reader() {
        let a = record(KIND_DONE, &[b"ABC"]);
        let b = entry_record(b"{}", b"message");
        let mut buf = [a.clone(), b.clone()].concat();
        let (recs, end) = parse(&buf);
        assert_eq!(recs.len(), 2);
        assert_eq!(end, buf.len());
        assert_eq!(&buf[recs[0].payload.clone()], b"ABC");
        assert_eq!(recs[1].kind, KIND_ENTRY);
        // Half a record, then a bad CRC: both end the valid part.
        buf.extend_from_slice(&b[..b.len() / 2]);
        assert_eq!(parse(&buf).0.len(), 2);
        let mut bad = b.clone();
        *bad.last_mut().unwrap() ^= 1;
        let buf = [a, bad, b].concat();
        let (recs, end) = parse(&buf);
        assert_eq!((recs.len(), end), (1, 16));
    }

    #[test]
    fn segment_names_round_trip() {
        let p = segment_path(Path::new("/x"), 42);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "seg-00000000000000000042");
        assert_eq!(segment_number(name), Some(42));
        assert_eq!(segment_number("seg-42"), None);
        assert_eq!(segment_number("lock"), None);
    }
}
