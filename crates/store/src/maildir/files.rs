//! Maildir file names, the `:2,` info part, and small durable-file helpers.
//!
//! A message file name is `<unique>[,<field>=<value>...][:2,<info letters>]`
//! (<https://cr.yp.to/proto/maildir.html>, Maildir++ `,S=<size>`); postern adds `,U=<uid>`
//! so a rebuilt index keeps UIDs, e.g. `1700000000.M123P45Q6.host,S=1234,U=17:2,FS`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Result, StoreError};
use crate::maildir::keywords::KeywordLetters;
use crate::types::{Flags, SpecialUse, SystemFlags, FORWARDED_KEYWORD};

/// An I/O error on `path`, named logically: errors leave the store without file paths (the
/// last component says which file or folder; the full path goes to the debug log).
pub(crate) fn io_at(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> StoreError {
    let path = path.as_ref();
    tracing::debug!(op, path = %path.display(), error = %source, "store I/O error");
    let target = match path.file_name() {
        Some(n) if n == crate::maildir::index::INDEX_FILE => "index".to_owned(),
        Some(n) => n.to_string_lossy().into_owned(),
        None => "store".to_owned(),
    };
    StoreError::io(op, target, source)
}

/// Adds logical context to `io::Result`s (see [`io_at`]).
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| io_at(op, path, e))
    }
}

/// Name of the per-folder metadata file that keeps UIDVALIDITY (and hints) beside the mail.
pub(super) const META_FILE: &str = "postern-uidvalidity";
/// Maildir++ marker file in every folder directory.
pub(super) const MAILDIRFOLDER: &str = "maildirfolder";

/// Generates unique Maildir base names: `<secs>.M<usecs>P<pid>Q<counter>.<host>`.
#[derive(Debug)]
pub struct NameGen {
    host: String,
    counter: AtomicU64,
}

impl NameGen {
    /// `hostname` is sanitised: anything but `[A-Za-z0-9.-_]` becomes `_`.
    pub fn new(hostname: &str) -> Self {
        let mut host: String = hostname
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if host.is_empty() {
            host.push_str("localhost");
        }
        NameGen {
            host,
            counter: AtomicU64::new(0),
        }
    }

    /// A fresh unique base name (no fields, no info).
    pub fn unique(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}.M{}P{}Q{}.{}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            n,
            self.host
        )
    }
}

/// A message file name taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedName<'a> {
    /// Everything before the `:` (unique part plus fields); identifies the message.
    pub base: &'a str,
    /// The `,U=` field, if present and valid.
    pub uid: Option<u32>,
    /// The `,W=` field: the size with CRLF line ends (see [`wire_size`]), as Dovecot writes it.
    pub wire_size: Option<u64>,
    /// The `,K=` field: the delivery key of a message placed by [`MaildirStore::deliver`](crate::maildir::MaildirStore::deliver).
    pub key: Option<&'a str>,
    /// The info part after `:` (e.g. `2,FS`), if any.
    pub info: Option<&'a str>,
}

/// Splits a file name into base, `,U=` and info.
pub fn parse_name(fname: &str) -> ParsedName<'_> {
    let (base, info) = match fname.split_once(':') {
        Some((b, i)) => (b, Some(i)),
        None => (fname, None),
    };
    let uid = base
        .split(',')
        .skip(1)
        .find_map(|f| f.strip_prefix("U="))
        .and_then(|v| {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                v.parse::<u32>().ok().filter(|&u| u > 0)
            }
        });
    let key = base
        .split(',')
        .skip(1)
        .find_map(|f| f.strip_prefix("K="))
        .filter(|k| valid_delivery_key(k));
    let wire_size = base
        .split(',')
        .skip(1)
        .find_map(|f| f.strip_prefix("W="))
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok());
    ParsedName {
        base,
        uid,
        wire_size,
        info,
        key,
    }
}

/// A delivery key is safe in a file name and short: ASCII letters, digits, `-` and `_`, at most
/// 64 characters.
pub fn valid_delivery_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Rebuilds a base with the given size (`S=`), wire size (`W=`) and uid (`U=`) fields; other
/// fields are kept.
pub(super) fn base_with_fields(base: &str, size: u64, wire_size: u64, uid: u32) -> String {
    let mut parts = base.split(',');
    let mut out = String::with_capacity(base.len() + 36);
    out.push_str(parts.next().unwrap_or(base));
    for f in parts {
        if f.starts_with("S=") || f.starts_with("W=") || f.starts_with("U=") || f.is_empty() {
            continue;
        }
        out.push(',');
        out.push_str(f);
    }
    out.push_str(&format!(",S={size},W={wire_size},U={uid}"));
    out
}

pub(crate) use crate::types::wire_size;

/// [`wire_size`] of a file, read in chunks.
pub(super) fn file_wire_size(path: &Path) -> std::io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut total, mut prev) = (0u64, 0u8);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        for &b in &buf[..n] {
            if b == b'\n' && prev != b'\r' {
                total += 1;
            }
            prev = b;
        }
        total += n as u64;
    }
}

/// The flags a Maildir info part encodes: system flags, whether `P` ($Forwarded) is set, and
/// letters we do not interpret (kept verbatim on rename, e.g. Dovecot keyword letters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InfoFlags {
    /// System flags from `D F R S T`.
    pub system: SystemFlags,
    /// `P` present.
    pub forwarded: bool,
    /// Keyword letters `a`-`z` (see [`KeywordLetters`]), sorted.
    pub keyword_letters: String,
    /// Other letters, sorted.
    pub extra: String,
}

/// Parses `2,<letters>`; experimental (`1,`) or missing info means no flags.
pub fn parse_info(info: Option<&str>) -> InfoFlags {
    let mut out = InfoFlags::default();
    let Some(letters) = info.and_then(|i| i.strip_prefix("2,")) else {
        return out;
    };
    for c in letters.chars() {
        match c {
            'D' => out.system.insert(SystemFlags::DRAFT),
            'F' => out.system.insert(SystemFlags::FLAGGED),
            'P' => out.forwarded = true,
            'R' => out.system.insert(SystemFlags::ANSWERED),
            'S' => out.system.insert(SystemFlags::SEEN),
            'T' => out.system.insert(SystemFlags::DELETED),
            'a'..='z' if !out.keyword_letters.contains(c) => out.keyword_letters.push(c),
            'a'..='z' => {}
            c if c.is_ascii_graphic()
                && c != ','
                && c != ':'
                && c != '/'
                && !out.extra.contains(c) =>
            {
                out.extra.push(c)
            }
            _ => {}
        }
    }
    for s in [&mut out.extra, &mut out.keyword_letters] {
        let mut v: Vec<char> = s.chars().collect();
        v.sort_unstable();
        *s = v.into_iter().collect();
    }
    out
}

/// The info part (`2,` + letters in ASCII order) for `flags`, with the folder's keyword
/// letters, keeping `extra` letters.
pub fn info_for(flags: &Flags, extra: &str, kw: &KeywordLetters) -> String {
    let s = flags.system();
    let mut letters: Vec<char> = Vec::with_capacity(8);
    if s.contains(SystemFlags::DRAFT) {
        letters.push('D');
    }
    if s.contains(SystemFlags::FLAGGED) {
        letters.push('F');
    }
    if flags.has_keyword(FORWARDED_KEYWORD) {
        letters.push('P');
    }
    if s.contains(SystemFlags::ANSWERED) {
        letters.push('R');
    }
    if s.contains(SystemFlags::SEEN) {
        letters.push('S');
    }
    if s.contains(SystemFlags::DELETED) {
        letters.push('T');
    }
    letters.extend(extra.chars());
    letters.extend(kw.letters(flags).chars());
    letters.sort_unstable();
    letters.dedup();
    let mut out = String::from("2,");
    out.extend(letters);
    out
}

/// Full file name from base and flags.
pub fn file_name(base: &str, flags: &Flags, extra: &str, kw: &KeywordLetters) -> String {
    format!("{base}:{}", info_for(flags, extra, kw))
}

/// Merges the flags in a file's info with what the index knows: system flags, `$Forwarded`
/// and the keywords the folder numbers come from the file, other keywords from the index.
pub fn merge_info(index: &Flags, info: &InfoFlags, kw: &KeywordLetters) -> Flags {
    let mut f = index.clone();
    let numbered: Vec<String> = f
        .keywords()
        .iter()
        .filter(|k| kw.has_letter(k))
        .cloned()
        .collect();
    for k in numbered {
        f.remove(&crate::types::Flag::Keyword(k));
    }
    for k in kw.keywords(&info.keyword_letters) {
        f.insert(crate::types::Flag::Keyword(k.to_owned()));
    }
    f.set_system(info.system);
    let fwd = crate::types::Flag::Keyword(FORWARDED_KEYWORD.to_owned());
    if info.forwarded {
        f.insert(fwd);
    } else {
        f.remove(&fwd);
    }
    f
}

/// fsyncs a directory so renames and unlinks in it are durable.
pub(super) fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).ctx("open directory", dir)?;
    f.sync_all().ctx("fsync directory", dir)
}

/// Mode of every directory the store creates: mail is private whatever the umask.
pub(super) const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of every file the store creates.
pub(super) const PRIVATE_FILE_MODE: u32 = 0o600;

/// `mkdir` with mode 0700. Fails if it exists.
pub(super) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(PRIVATE_DIR_MODE).create(path)
}

/// `mkdir -p` with mode 0700 for every directory it creates.
pub(super) fn create_private_dir_all(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(path)
}

/// Creates `path` with `data`, fsyncs it and optionally sets its mtime. Fails if it exists
/// (O_EXCL: a planted symlink is not followed either).
pub(super) fn write_new_file(path: &Path, data: &[u8], mtime: Option<SystemTime>) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ctx("create", path)?;
    f.write_all(data).ctx("write", path)?;
    if let Some(t) = mtime {
        f.set_modified(t).ctx("set mtime", path)?;
    }
    f.sync_all().ctx("fsync", path)
}

/// [`write_new_file`] without the fsync: for batches made durable at once (see
/// [`sync_filesystem`]).
pub(super) fn write_new_file_unsynced(path: &Path, data: &[u8], mtime: SystemTime) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ctx("create", path)?;
    f.write_all(data).ctx("write", path)?;
    f.set_modified(mtime).ctx("set mtime", path)
}

/// Flushes every file written on the filesystem holding `dir` in one call (`syncfs` on
/// Linux; one `sync` elsewhere): a batch of new files costs one flush, not one fsync each.
pub(super) fn sync_filesystem(dir: &Path) -> Result<()> {
    let f = File::open(dir).ctx("open", dir)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs on a descriptor we own, open for the whole call.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(io_at("syncfs", dir, io::Error::last_os_error()));
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        drop(f);
        // SAFETY: sync takes no arguments and cannot fail.
        unsafe { libc::sync() };
    }
    Ok(())
}

/// Atomically replaces `path` with `data` (write a sibling, fsync, rename, fsync dir).
pub(super) fn write_atomic(path: &Path, data: &[u8], gen: &NameGen) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".postern-tmp-{}", gen.unique()));
    write_new_file(&tmp, data, None)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_at("rename", path, e));
    }
    fsync_dir(dir)
}

/// The contents of [`META_FILE`]: the UIDVALIDITY on the first line, then hints that let a
/// rebuilt index keep UIDs and mod-sequences monotonic, and the SPECIAL-USE role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaFile {
    /// RFC 9051 §2.3.1.1 UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT as of the last expunge (UIDs below it may have been used).
    pub uidnext: u32,
    /// HIGHESTMODSEQ as of the last expunge.
    pub highestmodseq: u64,
    /// RFC 6154 role.
    pub special_use: Option<SpecialUse>,
}

impl MetaFile {
    /// Serialises.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{}\nuidnext {}\nhighestmodseq {}\n",
            self.uidvalidity, self.uidnext, self.highestmodseq
        );
        if let Some(u) = self.special_use {
            s.push_str(&format!("special-use {}\n", u.as_str()));
        }
        s
    }

    /// Parses leniently; `None` if there is no usable UIDVALIDITY.
    pub fn parse(text: &str) -> Option<MetaFile> {
        let mut lines = text.lines();
        let uidvalidity: u32 = lines.next()?.trim().parse().ok().filter(|&v| v > 0)?;
        let mut m = MetaFile {
            uidvalidity,
            ..MetaFile::default()
        };
        for l in lines {
            let Some((k, v)) = l.trim().split_once(' ') else {
                continue;
            };
            let v = v.trim();
            match k {
                "uidnext" => m.uidnext = v.parse().unwrap_or(0),
                "highestmodseq" => m.highestmodseq = v.parse().unwrap_or(0),
                "special-use" => m.special_use = SpecialUse::parse(v),
                _ => {}
            }
        }
        Some(m)
    }

    /// Reads `<dir>/postern-uidvalidity`; missing or unreadable gives `None`.
    pub fn load(dir: &Path) -> Option<MetaFile> {
        match fs::read(dir.join(META_FILE)) {
            Ok(b) => MetaFile::parse(&String::from_utf8_lossy(&b)),
            Err(_) => None,
        }
    }

    /// Writes it durably.
    pub fn store(&self, dir: &Path, gen: &NameGen) -> Result<()> {
        write_atomic(&dir.join(META_FILE), self.render().as_bytes(), gen)
    }
}

/// Seconds since the Unix epoch of a `SystemTime` (negative before 1970).
pub(super) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Nanoseconds since the epoch (for directory change detection).
pub(super) fn unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// The `SystemTime` of Unix seconds.
pub(super) fn from_unix_secs(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + std::time::Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - std::time::Duration::from_secs(secs.unsigned_abs())
    }
}

/// True if an I/O error means "it is not there".
pub(super) fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Flag;

    #[test]
    fn parse_and_compose() {
        let p = parse_name("1700000000.M123P45Q6.host,S=1234,U=17:2,FS");
        assert_eq!(p.base, "1700000000.M123P45Q6.host,S=1234,U=17");
        assert_eq!(p.uid, Some(17));
        assert_eq!(p.info, Some("2,FS"));
        let i = parse_info(p.info);
        assert_eq!(i.system, SystemFlags::FLAGGED.union(SystemFlags::SEEN));
        assert!(!i.forwarded);
        assert_eq!(parse_name("x,U=0").uid, None);
        assert_eq!(parse_name("x,U=+5").uid, None);
        assert_eq!(parse_name("x,U=99999999999").uid, None);
        assert_eq!(parse_name("x").uid, None);
        assert_eq!(
            base_with_fields("a.b.c,W=5,S=1,U=2,K=k", 10, 12, 3),
            "a.b.c,K=k,S=10,W=12,U=3"
        );
        assert_eq!(base_with_fields("a.b.c", 10, 10, 3), "a.b.c,S=10,W=10,U=3");
        assert_eq!(parse_name("a,S=10,W=12,U=3:2,").wire_size, Some(12));
        assert_eq!(parse_name("a,W=x").wire_size, None);
        assert_eq!(wire_size(b"a\nb\r\nc\n"), 9);
        assert_eq!(wire_size(b""), 0);
    }

    #[test]
    fn info_letters_sorted() {
        let mut f = Flags::from_system(
            SystemFlags::SEEN
                .union(SystemFlags::DELETED)
                .union(SystemFlags::DRAFT)
                .union(SystemFlags::ANSWERED)
                .union(SystemFlags::FLAGGED),
        );
        f.insert(Flag::Keyword("$forwarded".into()));
        f.insert(Flag::Keyword("other".into()));
        let none = KeywordLetters::default();
        assert_eq!(info_for(&f, "AB", &none), "2,ABDFPRST");
        let i = parse_info(Some("2,DFPRSTABb"));
        assert!(i.forwarded);
        assert_eq!(i.extra, "AB");
        assert_eq!(i.keyword_letters, "b");
        let merged = merge_info(&Flags::from_names(["other"]).unwrap(), &i, &none);
        assert!(merged.has_keyword("$Forwarded") && merged.has_keyword("OTHER"));
        // With a numbering, the letters are the truth for the keywords it numbers.
        let kw = KeywordLetters::parse("0 other\n1 Work\n");
        assert_eq!(info_for(&f, "", &kw), "2,DFPRSTa");
        let merged = merge_info(&Flags::from_names(["other", "Far"]).unwrap(), &i, &kw);
        assert!(merged.has_keyword("Work") && merged.has_keyword("Far"));
        assert!(!merged.has_keyword("other"));
        assert_eq!(parse_info(Some("1,xyz")), InfoFlags::default());
    }

    #[test]
    fn meta_file_round_trip() {
        let m = MetaFile {
            uidvalidity: 42,
            uidnext: 7,
            highestmodseq: 99,
            special_use: Some(SpecialUse::Sent),
        };
        assert_eq!(MetaFile::parse(&m.render()), Some(m));
        assert_eq!(MetaFile::parse("garbage"), None);
        assert_eq!(MetaFile::parse("0\n"), None);
    }
}

/// Property tests: the file name is the truth for flags (DESIGN principle 2), so flags → info
/// part → flags must be the identity.
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::types::Flag;
    use proptest::prelude::*;

    /// The folder numbering the properties use: letters a, b, d (c unused).
    const NUMBERING: &str = "0 $Junk\n1 work\n3 Later\n";
    const NUMBERED: [&str; 3] = ["$Junk", "work", "Later"];

    fn flags(system: u8, forwarded: bool, numbered: u8, unnumbered: &[String]) -> Flags {
        let mut f = Flags::from_system(SystemFlags::from_bits_truncate(system));
        if forwarded {
            f.insert(Flag::Keyword(FORWARDED_KEYWORD.into()));
        }
        for (i, k) in NUMBERED.iter().enumerate() {
            if numbered & (1 << i) != 0 {
                f.insert(Flag::Keyword((*k).into()));
            }
        }
        for k in unnumbered {
            f.insert(Flag::Keyword(k.clone()));
        }
        f
    }

    proptest! {
        /// Flags → `file_name` → `parse_name` + `parse_info` → `merge_info` gives the flags back:
        /// system flags and `$Forwarded` from their letters, numbered keywords from theirs, the
        /// others from the index; letters we do not interpret survive unchanged.
        #[test]
        fn flags_survive_the_file_name(
            system in any::<u8>(),
            forwarded in any::<bool>(),
            numbered in 0u8..8,
            unnumbered in proptest::collection::vec("[A-Za-z][A-Za-z0-9_]{0,8}", 0..3),
            extra in "[A-CEG-OQU-Z0-9!#%&+=_~-]{0,4}",
            base in "[0-9]{10}\\.M[0-9]{1,6}P[0-9]{1,5}\\.[a-z]{1,8}(,S=[0-9]{1,6})?(,U=[1-9][0-9]{0,5})?",
        ) {
            let kw = KeywordLetters::parse(NUMBERING);
            // Unnumbered keywords must not collide with numbered ones or $Forwarded.
            let unnumbered: Vec<String> = unnumbered
                .into_iter()
                .filter(|k| !kw.has_letter(k) && !k.eq_ignore_ascii_case(FORWARDED_KEYWORD))
                .collect();
            let f = flags(system, forwarded, numbered, &unnumbered);
            let extra = {
                let mut v: Vec<char> = extra.chars().collect();
                v.sort_unstable();
                v.dedup();
                v.into_iter().collect::<String>()
            };
            let name = file_name(&base, &f, &extra, &kw);
            let parsed = parse_name(&name);
            prop_assert_eq!(parsed.base, base.as_str());
            let info = parse_info(parsed.info);
            prop_assert_eq!(&info.extra, &extra);
            prop_assert_eq!(info.system, f.system());
            prop_assert_eq!(info.forwarded, forwarded);
            // What the index knows: only the unnumbered keywords (and stale numbered ones,
            // which the letters override).
            let index = flags(0, !forwarded, !numbered & 7, &unnumbered);
            prop_assert_eq!(merge_info(&index, &info, &kw), f);
            // Writing the same flags again gives the same name (one spelling per flag set).
            prop_assert_eq!(file_name(parsed.base, &merge_info(&index, &info, &kw), &info.extra, &kw), name);
        }

        /// Any info part parses without panicking, and what it parses to writes back as letters
        /// in ASCII order that parse to the same thing.
        #[test]
        fn info_parts_normalise(letters in "[ -~]{0,20}") {
            let kw = KeywordLetters::parse(NUMBERING);
            let info = parse_info(Some(&format!("2,{letters}")));
            let f = merge_info(&Flags::default(), &info, &kw);
            let written = info_for(&f, &info.extra, &kw);
            let again = parse_info(Some(&written));
            prop_assert_eq!(again.system, info.system);
            prop_assert_eq!(again.forwarded, info.forwarded);
            prop_assert_eq!(&again.extra, &info.extra);
            let mut sorted: Vec<char> = written[2..].chars().collect();
            sorted.sort_unstable();
            prop_assert_eq!(written[2..].chars().collect::<Vec<_>>(), sorted);
        }
    }
}
