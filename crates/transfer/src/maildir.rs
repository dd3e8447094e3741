//! Maildir and Maildir++ trees: a reader (Dovecot's, Courier's and mutt's layouts) and a writer.
//!
//! * Messages are the files in `cur/` and `new/` (<https://cr.yp.to/proto/maildir.html>); the
//!   info part after `:2,` carries the flags: `S` `\Seen`, `R` `\Answered`, `F` `\Flagged`,
//!   `T` `\Deleted`, `D` `\Draft`, `P` the `$Forwarded` keyword; a file in `new/` is still
//!   `\Recent`. Lower-case letters are Dovecot keywords, numbered by the folder's
//!   `dovecot-keywords` file (`0 name` = `a`, up to `25` = `z`).
//! * Folders: Maildir++ directories `.A.B` beside `cur/` (mailbox `A/B`, names in IMAP's
//!   modified UTF-7, RFC 3501 §5.1.3, as Dovecot and Courier keep them), and mutt-style plain
//!   subdirectories holding `cur/`, `new/`, `tmp/` (mailbox = relative path).
//! * `dovecot-uidlist` (version 3: `3 V<uidvalidity> N<nextuid> ...`, then `<uid>
//!   [<ext>...] :<file name>`; version 1: `1 <uidvalidity> <nextuid>` then `<uid> <file
//!   name>`) gives each file its UID and the folder its UIDVALIDITY, so an import can keep them.
//! * The internal date is the file's modification time, as Dovecot and Courier use it.
//!
//! The reader lists files and their flags first ([`scan`]); message contents are read one at a
//! time ([`Entry::read`]).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Error, Message, MessageFlags, Result};

/// The keyword Maildir writes as the `P` info letter.
pub const FORWARDED: &str = "$Forwarded";
/// Dovecot's keyword-letter file.
pub const KEYWORDS_FILE: &str = "dovecot-keywords";
/// Dovecot's UID list.
pub const UIDLIST_FILE: &str = "dovecot-uidlist";

/// A folder of a Maildir tree, as listed by [`scan`].
#[derive(Debug, Clone)]
pub struct Folder {
    /// The mailbox name: `INBOX`, or the folder's name with `/` between levels.
    pub name: String,
    /// Its directory.
    pub path: PathBuf,
    /// UIDVALIDITY from `dovecot-uidlist`, if there is one.
    pub uidvalidity: Option<u32>,
    /// The next UID from `dovecot-uidlist`.
    pub uidnext: Option<u32>,
    /// The messages: by UID where the uidlist has them, then the others by date and name.
    pub entries: Vec<Entry>,
}

/// A message file found by [`scan`].
#[derive(Debug, Clone)]
pub struct Entry {
    /// The file.
    pub path: PathBuf,
    /// The file's unique name (before `:`), stable across flag changes.
    pub base: String,
    /// Flags from the info part and the folder (`new/` = recent).
    pub flags: MessageFlags,
    /// UID from `dovecot-uidlist`.
    pub uid: Option<u32>,
    /// The file's modification time, Unix seconds.
    pub mtime: Option<i64>,
    /// The file's size in bytes.
    pub size: u64,
}

impl Entry {
    /// Reads the message (the caller has checked [`Entry::size`] against its limit).
    pub fn read(&self) -> Result<Message> {
        let data = fs::read(&self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(Message {
            data,
            flags: self.flags.clone(),
            internal_date: self.mtime,
            sender: None,
            uid: self.uid,
        })
    }
}

/// Lists the folders of the Maildir (or Maildir++) tree at `root` and their messages.
/// INBOX (the root itself) comes first, then the folders by name.
pub fn scan(root: &Path) -> Result<Vec<Folder>> {
    if !root.join("cur").is_dir() && !root.join("new").is_dir() {
        return Err(Error::Format(format!(
            "{} is not a Maildir: it has no cur/ or new/ directory",
            root.display()
        )));
    }
    let mut dirs: Vec<(String, PathBuf)> = vec![("INBOX".to_owned(), root.to_path_buf())];
    let mut entries: Vec<_> = fs::read_dir(root)
        .map_err(|e| Error::io(root, e))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for ent in entries {
        let fname = ent.file_name().to_string_lossy().into_owned();
        let path = ent.path();
        if !is_maildir(&path) {
            if path.is_dir()
                && !fname.starts_with('.')
                && !matches!(fname.as_str(), "cur" | "new" | "tmp")
            {
                find_plain(&path, &fname, &mut dirs)?;
            }
            continue;
        }
        if let Some(rest) = fname.strip_prefix('.') {
            if rest.is_empty() || rest == "." {
                continue;
            }
            // Courier's namespace prefix `.INBOX.Sub` is the folder `Sub`.
            let rest = rest.strip_prefix("INBOX.").unwrap_or(rest);
            let name = rest
                .split('.')
                .map(decode_mutf7)
                .collect::<Vec<_>>()
                .join("/");
            dirs.push((name, path));
        } else if !matches!(fname.as_str(), "cur" | "new" | "tmp") {
            dirs.push((fname.clone(), path.clone()));
            find_plain(&path, &fname, &mut dirs)?;
        }
    }
    dirs[1..].sort_by(|a, b| a.0.cmp(&b.0));
    dirs.into_iter()
        .map(|(name, path)| read_folder(name, path))
        .collect()
}

fn is_maildir(p: &Path) -> bool {
    p.join("cur").is_dir()
}

/// mutt-style nested folders: plain subdirectories that are Maildirs (recursively).
fn find_plain(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Ok(());
    };
    let mut ents: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    ents.sort_by_key(|e| e.file_name());
    for ent in ents {
        let fname = ent.file_name().to_string_lossy().into_owned();
        if fname.starts_with('.') || matches!(fname.as_str(), "cur" | "new" | "tmp") {
            continue;
        }
        let path = ent.path();
        if !path.is_dir() {
            continue;
        }
        let name = format!("{prefix}/{fname}");
        if is_maildir(&path) {
            out.push((name.clone(), path.clone()));
        }
        find_plain(&path, &name, out)?;
    }
    Ok(())
}

fn read_folder(name: String, path: PathBuf) -> Result<Folder> {
    let letters = match fs::read_to_string(path.join(KEYWORDS_FILE)) {
        Ok(t) => parse_keywords(&t),
        Err(_) => HashMap::new(),
    };
    let uidlist = match fs::read_to_string(path.join(UIDLIST_FILE)) {
        Ok(t) => parse_uidlist(&t),
        Err(_) => None,
    };
    let mut entries = Vec::new();
    for sub in ["cur", "new"] {
        let d = path.join(sub);
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for ent in rd {
            let ent = ent.map_err(|e| Error::io(&d, e))?;
            let fname = ent.file_name().to_string_lossy().into_owned();
            if fname.starts_with('.') {
                continue;
            }
            let md = match ent.metadata() {
                Ok(m) if m.is_file() => m,
                _ => continue,
            };
            let (base, info) = match fname.split_once(':') {
                Some((b, i)) => (b.to_owned(), Some(i)),
                None => (fname.clone(), None),
            };
            let mut flags = parse_info(info, &letters);
            flags.recent = sub == "new";
            let uid = uidlist.as_ref().and_then(|u| u.uids.get(&base).copied());
            entries.push(Entry {
                path: ent.path(),
                base,
                flags,
                uid,
                mtime: md.modified().ok().map(unix_secs),
                size: md.len(),
            });
        }
    }
    entries.sort_by(|a, b| {
        (a.uid.is_none(), a.uid, a.mtime, &a.base).cmp(&(b.uid.is_none(), b.uid, b.mtime, &b.base))
    });
    Ok(Folder {
        name,
        path,
        uidvalidity: uidlist.as_ref().map(|u| u.uidvalidity),
        uidnext: uidlist.as_ref().map(|u| u.uidnext),
        entries,
    })
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// `dovecot-keywords`: `<n> <keyword>` lines; n = 0 is letter `a`.
pub fn parse_keywords(text: &str) -> HashMap<char, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let Some((n, k)) = line.trim().split_once(' ') else {
            continue;
        };
        let Ok(n) = n.parse::<u8>() else { continue };
        if n < 26 && crate::valid_keyword(k.trim()) {
            out.insert(char::from(b'a' + n), k.trim().to_owned());
        }
    }
    out
}

/// The flags of a Maildir info part (`2,<letters>`); others (`1,` or none) have none.
pub fn parse_info(info: Option<&str>, letters: &HashMap<char, String>) -> MessageFlags {
    let mut f = MessageFlags::default();
    let Some(l) = info.and_then(|i| i.strip_prefix("2,")) else {
        return f;
    };
    for c in l.chars() {
        match c {
            'S' => f.seen = true,
            'R' => f.answered = true,
            'F' => f.flagged = true,
            'T' => f.deleted = true,
            'D' => f.draft = true,
            'P' => {
                f.add_keyword(FORWARDED);
            }
            'a'..='z' => {
                if let Some(k) = letters.get(&c) {
                    f.add_keyword(k);
                }
            }
            _ => {}
        }
    }
    f
}

/// A parsed `dovecot-uidlist`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidList {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// The next UID to be given.
    pub uidnext: u32,
    /// File unique name (before `:`) → UID.
    pub uids: HashMap<String, u32>,
}

/// Parses a `dovecot-uidlist` of version 1 or 3; `None` if the header is unusable.
pub fn parse_uidlist(text: &str) -> Option<UidList> {
    let mut lines = text.lines();
    let header = lines.next()?;
    let mut words = header.split_ascii_whitespace();
    let version = words.next()?;
    let (uidvalidity, uidnext) = match version {
        "1" => (words.next()?.parse().ok()?, words.next()?.parse().ok()?),
        "3" => {
            let (mut v, mut n) = (None, None);
            for w in words {
                if let Some(x) = w.strip_prefix('V') {
                    v = x.parse().ok();
                } else if let Some(x) = w.strip_prefix('N') {
                    n = x.parse().ok();
                }
            }
            (v?, n?)
        }
        _ => return None,
    };
    if uidvalidity == 0 {
        return None;
    }
    let mut uids = HashMap::new();
    for line in lines {
        let Some((uid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(uid) = uid.parse::<u32>() else {
            continue;
        };
        if uid == 0 {
            continue;
        }
        let fname = if version == "1" {
            Some(rest.trim())
        } else {
            // Extension fields come first; the file name follows the first `:`-word.
            rest.find(':')
                .filter(|&p| p == 0 || rest.as_bytes()[p - 1] == b' ')
                .map(|p| &rest[p + 1..])
        };
        if let Some(f) = fname.filter(|f| !f.is_empty()) {
            let base = f.split(':').next().unwrap_or(f);
            uids.insert(base.to_owned(), uid);
        }
    }
    Some(UidList {
        uidvalidity,
        uidnext,
        uids,
    })
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Decodes IMAP's modified UTF-7 (RFC 3501 §5.1.3); text that is not valid is kept as is.
pub fn decode_mutf7(s: &str) -> String {
    fn inner(s: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = s;
        while let Some(p) = rest.find('&') {
            out.push_str(&rest[..p]);
            let after = &rest[p + 1..];
            let end = after.find('-')?;
            let enc = &after[..end];
            if enc.is_empty() {
                out.push('&');
            } else {
                let mut bits = 0u32;
                let mut n = 0;
                let mut units = Vec::new();
                for c in enc.bytes() {
                    let v = B64.iter().position(|&b| b == c)? as u32;
                    bits = (bits << 6) | v;
                    n += 6;
                    if n >= 16 {
                        n -= 16;
                        units.push((bits >> n) as u16);
                        bits &= (1 << n) - 1;
                    }
                }
                out.push_str(&String::from_utf16(&units).ok()?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }
    inner(s).unwrap_or_else(|| s.to_owned())
}

/// Encodes a folder name component in modified UTF-7 (RFC 3501 §5.1.3); `.` (the Maildir++
/// separator) and `/` are encoded too, so that they survive in a directory name.
pub fn encode_mutf7(s: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |out: &mut String, pending: &mut Vec<u16>| {
        if pending.is_empty() {
            return;
        }
        out.push('&');
        let mut bits = 0u32;
        let mut n = 0;
        for u in pending.drain(..) {
            bits = (bits << 16) | u32::from(u);
            n += 16;
            while n >= 6 {
                n -= 6;
                out.push(char::from(B64[((bits >> n) & 63) as usize]));
            }
            bits &= (1 << n) - 1;
        }
        if n > 0 {
            out.push(char::from(B64[((bits << (6 - n)) & 63) as usize]));
        }
        out.push('-');
    };
    for c in s.chars() {
        if c == '&' {
            flush(&mut out, &mut pending);
            out.push_str("&-");
        } else if (' '..='~').contains(&c) && c != '.' && c != '/' {
            flush(&mut out, &mut pending);
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

/// The Maildir++ directory name of a mailbox (`None` for INBOX, the root).
pub fn folder_dir(name: &str) -> Option<String> {
    if name.eq_ignore_ascii_case("INBOX") {
        return None;
    }
    let mut out = String::new();
    for comp in name.split('/') {
        out.push('.');
        out.push_str(&encode_mutf7(comp));
    }
    Some(out)
}

/// Writes a Maildir++ tree that Dovecot, Courier and mutt read: one [`FolderWriter`] per
/// mailbox. Files are written without one fsync each; [`crate::sync_filesystem`] once at the
/// end makes the whole export durable.
#[derive(Debug)]
pub struct MaildirWriter {
    root: PathBuf,
    host: String,
}

impl MaildirWriter {
    /// A writer into `root`, which must not exist or be an empty directory (an export never
    /// mixes with other mail).
    pub fn create(root: &Path, host: &str) -> Result<MaildirWriter> {
        if root.exists() {
            let mut rd = fs::read_dir(root).map_err(|e| Error::io(root, e))?;
            if rd.next().is_some() {
                return Err(Error::Format(format!(
                    "{} is not empty: export into a new or empty directory",
                    root.display()
                )));
            }
        }
        make_maildir(root)?;
        let host = host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Ok(MaildirWriter {
            root: root.to_path_buf(),
            host,
        })
    }

    /// Starts a folder (INBOX is the root) with the given UIDVALIDITY for its
    /// `dovecot-uidlist`.
    pub fn folder(&self, name: &str, uidvalidity: u32) -> Result<FolderWriter> {
        let dir = match folder_dir(name) {
            Some(d) => {
                let dir = self.root.join(d);
                make_maildir(&dir)?;
                File::create(dir.join("maildirfolder")).map_err(|e| Error::io(&dir, e))?;
                dir
            }
            None => self.root.clone(),
        };
        Ok(FolderWriter {
            dir,
            host: self.host.clone(),
            uidvalidity,
            keywords: Vec::new(),
            uids: Vec::new(),
            dropped: Vec::new(),
            counter: 0,
        })
    }
}

fn make_maildir(dir: &Path) -> Result<()> {
    for sub in ["cur", "new", "tmp"] {
        let d = dir.join(sub);
        fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
    }
    Ok(())
}

/// Writes the messages of one folder; [`FolderWriter::finish`] writes its keyword and UID
/// lists.
#[derive(Debug)]
pub struct FolderWriter {
    dir: PathBuf,
    host: String,
    uidvalidity: u32,
    keywords: Vec<String>,
    uids: Vec<(u32, String)>,
    dropped: Vec<String>,
    counter: u64,
}

impl FolderWriter {
    /// Writes a message: to `new/` if it is recent and has no flags, else to `cur/` with its
    /// info letters; the file's mtime is its internal date. With [`Message::uid`] set, the
    /// file is listed with that UID in `dovecot-uidlist` (UIDs must come ascending).
    pub fn write(&mut self, m: &Message) -> Result<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.counter += 1;
        let wire = postern_mail::wire::wire_size(&m.data);
        let base = format!(
            "{}.M{}P{}Q{}.{},S={},W={}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            self.counter,
            self.host,
            m.data.len(),
            wire
        );
        let f = &m.flags;
        let mut letters = String::new();
        for (on, c) in [
            (f.draft, 'D'),
            (f.flagged, 'F'),
            (
                f.keywords.iter().any(|k| k.eq_ignore_ascii_case(FORWARDED)),
                'P',
            ),
            (f.answered, 'R'),
            (f.seen, 'S'),
            (f.deleted, 'T'),
        ] {
            if on {
                letters.push(c);
            }
        }
        let mut kw_letters = Vec::new();
        for k in &f.keywords {
            if k.eq_ignore_ascii_case(FORWARDED) {
                continue;
            }
            let idx = match self.keywords.iter().position(|x| x.eq_ignore_ascii_case(k)) {
                Some(i) => i,
                None if self.keywords.len() < 26 => {
                    self.keywords.push(k.clone());
                    self.keywords.len() - 1
                }
                None => {
                    if !self.dropped.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                        self.dropped.push(k.clone());
                    }
                    continue;
                }
            };
            kw_letters.push(char::from(b'a' + idx as u8));
        }
        kw_letters.sort_unstable();
        letters.extend(kw_letters);
        let rel = if f.recent && letters.is_empty() {
            format!("new/{base}")
        } else {
            format!("cur/{base}:2,{letters}")
        };
        let path = self.dir.join(&rel);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        file.write_all(&m.data).map_err(|e| Error::io(&path, e))?;
        if let Some(d) = m.internal_date {
            let t = if d >= 0 {
                UNIX_EPOCH + std::time::Duration::from_secs(d as u64)
            } else {
                UNIX_EPOCH
            };
            file.set_modified(t).map_err(|e| Error::io(&path, e))?;
        }
        if let Some(uid) = m.uid {
            self.uids.push((uid, base));
        }
        Ok(m.data.len() as u64)
    }

    /// Writes `dovecot-keywords` and `dovecot-uidlist` (with `uidnext`); returns the keywords
    /// that did not fit in the 26 letters (left off those messages).
    pub fn finish(self, uidnext: u32) -> Result<Vec<String>> {
        if !self.keywords.is_empty() {
            let mut t = String::new();
            for (i, k) in self.keywords.iter().enumerate() {
                t.push_str(&format!("{i} {k}\n"));
            }
            write_file(&self.dir.join(KEYWORDS_FILE), t.as_bytes())?;
        }
        let next = self
            .uids
            .iter()
            .map(|u| u.0.saturating_add(1))
            .max()
            .unwrap_or(1)
            .max(uidnext);
        let mut t = format!("3 V{} N{}\n", self.uidvalidity, next);
        for (uid, base) in &self.uids {
            t.push_str(&format!("{uid} :{base}\n"));
        }
        write_file(&self.dir.join(UIDLIST_FILE), t.as_bytes())?;
        Ok(self.dropped)
    }
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    fs::write(path, data).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests;
