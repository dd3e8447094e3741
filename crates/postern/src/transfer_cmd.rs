//! `postern import mbox|maildir` and `postern export`: mail in and out as mbox files and
//! Maildir trees (the formats are in crate `postern-transfer`; this is the wiring to the
//! store, the progress display and the resumable state).
//!
//! **Resuming without duplicates.** Every imported message carries an idempotency key
//! derived from where it came from (the mbox file's canonical path and the byte offset of its
//! `From ` line; the Maildir folder's path and the file's unique name), stored with it like a
//! delivery key, so running an interrupted import again never stores a message twice, even
//! after a crash in the middle of a batch. For mbox files, a state file in
//! `data_dir/import-state/` (named by the file, account and folder, holding the file's size
//! and mtime and the offset reached) also lets a re-run skip the part already done without
//! reading it; it is ignored when the file's size or mtime changed (then the keys do the
//! work). A Maildir import re-reads its files on a re-run and the keys skip them.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, IsTerminal, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use postern_config::Config;
use postern_store::maildir::MaildirStore;
use postern_store::{Flag, Flags, ImportMessage, StoreError, SystemFlags};
use postern_transfer::maildir::{self as md, MaildirWriter};
use postern_transfer::mbox::{Item, MboxReader, MboxWriter, Variant};
use postern_transfer::{Message, MessageFlags};

use crate::admin::Context;

/// Messages per store batch (one flush, one index transaction each).
const BATCH_MESSAGES: usize = 500;
/// Bytes per store batch, at most (about).
const BATCH_BYTES: usize = 16 << 20;
/// Reasons listed in the summary, at most (the rest are counted).
const REASONS_SHOWN: usize = 20;

/// `postern import`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ImportCommand {
    /// Import an mbox file (mboxo, mboxrd, mboxcl, mboxcl2) into one mailbox, with the
    /// flags of its Status/X-Status/X-Keywords headers and the From_ line's date
    Mbox {
        /// The mbox file
        file: PathBuf,
        /// The account's address
        address: String,
        /// The mailbox to import into (created if missing)
        #[arg(long, default_value = "INBOX", value_name = "NAME")]
        folder: String,
        /// The mbox dialect: auto, mboxo, mboxrd, mboxcl or mboxcl2
        #[arg(long, default_value = "auto")]
        variant: String,
        /// Skip messages larger than this [default: [smtp] max_message_size]
        #[arg(long, value_name = "BYTES")]
        max_message_size: Option<u64>,
    },
    /// Import a Maildir or Maildir++ tree (Dovecot's, Courier's, mutt's) with its folders,
    /// flags and keywords; with a dovecot-uidlist, UIDs and UIDVALIDITY are kept when the
    /// target mailbox is empty
    Maildir {
        /// The Maildir (the directory holding cur/ new/ tmp/)
        dir: PathBuf,
        /// The account's address
        address: String,
        /// Put the folders under this mailbox (INBOX becomes PREFIX itself)
        #[arg(long, value_name = "PREFIX")]
        folder_prefix: Option<String>,
        /// Skip messages larger than this [default: [smtp] max_message_size]
        #[arg(long, value_name = "BYTES")]
        max_message_size: Option<u64>,
    },
}

/// The format of `postern export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// One mboxrd file per mailbox: DIR/INBOX.mbox, DIR/Lists/Rust.mbox, ...
    Mbox,
    /// A Maildir++ tree with dovecot-keywords and dovecot-uidlist (UIDs and UIDVALIDITY)
    Maildir,
}

/// `postern export`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// The account's address
    pub address: String,
    /// The directory to write (new or empty)
    pub dir: PathBuf,
    /// mbox or maildir
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Export only this mailbox
    #[arg(long, value_name = "NAME")]
    pub folder: Option<String>,
}

/// What an import or export did, printed at the end.
#[derive(Debug, Default)]
struct Summary {
    messages: u64,
    existed: u64,
    bytes: u64,
    folders: Vec<String>,
    skipped: u64,
    reasons: Vec<String>,
    notes: Vec<String>,
}

impl Summary {
    fn skip(&mut self, reason: String) {
        self.skipped += 1;
        if self.reasons.len() < REASONS_SHOWN {
            self.reasons.push(reason);
        }
    }

    fn print(&self, verb: &str) {
        println!(
            "{verb} {} message(s), {} byte(s), {} folder(s){}",
            self.messages,
            self.bytes,
            self.folders.len(),
            if self.existed > 0 {
                format!("; {} already there (skipped)", self.existed)
            } else {
                String::new()
            }
        );
        for f in &self.folders {
            println!("  folder {f}");
        }
        for n in &self.notes {
            println!("  note: {n}");
        }
        if self.skipped > 0 {
            println!("{} message(s) not {verb}:", self.skipped);
            for r in &self.reasons {
                println!("  {r}");
            }
            if self.skipped as usize > self.reasons.len() {
                println!(
                    "  ... and {} more",
                    self.skipped as usize - self.reasons.len()
                );
            }
        }
    }

    fn result(&self, verb: &str) -> anyhow::Result<()> {
        if self.skipped > 0 {
            bail!("{} message(s) were not {verb} (listed above)", self.skipped);
        }
        Ok(())
    }
}

/// Progress on stderr: a redrawn line with rate and ETA on a terminal, a log line every 10 s
/// otherwise. `postern fetch run` shows its bar too.
pub(crate) struct Progress {
    tty: bool,
    total: u64,
    unit: &'static str,
    start: Instant,
    last: Instant,
    shown: bool,
}

impl Progress {
    pub(crate) fn new(total: u64, unit: &'static str) -> Progress {
        let now = Instant::now();
        Progress {
            tty: std::io::stderr().is_terminal(),
            total,
            unit,
            start: now,
            last: now,
            shown: false,
        }
    }

    pub(crate) fn update(&mut self, done: u64, messages: u64) {
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        let rate = messages as f64 / secs;
        let frac = if self.total > 0 {
            (done as f64 / self.total as f64).min(1.0)
        } else {
            0.0
        };
        let eta = if frac > 0.0 {
            let left = secs / frac - secs;
            format!("{}:{:02}", left as u64 / 60, left as u64 % 60)
        } else {
            "?".into()
        };
        let line = format!(
            "{messages} messages, {:.0}% of {} {}, {rate:.0} msg/s, ETA {eta}",
            frac * 100.0,
            self.total,
            self.unit
        );
        if self.tty {
            let width = 30usize;
            let filled = (frac * width as f64) as usize;
            eprint!(
                "\r[{}{}] {line}\x1b[K",
                "#".repeat(filled),
                "-".repeat(width - filled)
            );
            self.shown = true;
        } else {
            eprintln!("postern: {line}");
        }
    }

    pub(crate) fn finish(&self) {
        if self.tty && self.shown {
            eprintln!();
        }
    }
}

fn to_store_flags(f: &MessageFlags) -> Flags {
    let mut out = Flags::new();
    for (on, flag) in [
        (f.seen, Flag::Seen),
        (f.answered, Flag::Answered),
        (f.flagged, Flag::Flagged),
        (f.deleted, Flag::Deleted),
        (f.draft, Flag::Draft),
    ] {
        if on {
            out.insert(flag);
        }
    }
    for k in &f.keywords {
        // The reader only gives valid keyword atoms; anything else is dropped.
        let _ = out.insert_keyword(k);
    }
    out
}

fn from_store_flags(f: &Flags, recent: bool) -> MessageFlags {
    let s = f.system();
    MessageFlags {
        seen: s.contains(SystemFlags::SEEN),
        answered: s.contains(SystemFlags::ANSWERED),
        flagged: s.contains(SystemFlags::FLAGGED),
        deleted: s.contains(SystemFlags::DELETED),
        draft: s.contains(SystemFlags::DRAFT),
        recent,
        keywords: f.keywords().to_vec(),
    }
}

/// A stable 128-bit hash (two FNV-1a 64 with different bases), as 32 hex digits: the same
/// source gives the same keys in every version of postern.
fn stable_hash(parts: &[&[u8]]) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    for p in parts {
        for &byte in p.iter().chain(std::iter::once(&0u8)) {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            b = (b ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{a:016x}{b:016x}")
}

fn path_bytes(p: &Path) -> &[u8] {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes()
}

/// The account (as the directory spells it), with its mail store.
fn open_account(config: &Config, address: &str) -> anyhow::Result<(Context, String)> {
    let ctx = Context::open(config)?;
    let account = ctx
        .directory
        .get_account(address)?
        .with_context(|| format!("no such account: {address}"))?
        .address;
    ctx.store
        .ensure_account(&account)
        .with_context(|| format!("opening the mail store of {account}"))?;
    Ok((ctx, account))
}

/// Creates the mailbox (and its parents) unless it exists.
fn ensure_mailbox(store: &MaildirStore, account: &str, name: &str) -> anyhow::Result<()> {
    match store.create_mailbox(account, name, None) {
        Ok(()) | Err(StoreError::MailboxExists(_)) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating mailbox {name:?}")),
    }
}

/// Stores a batch and counts what happened.
fn flush(
    store: &MaildirStore,
    account: &str,
    mailbox: &str,
    batch: &mut Vec<ImportMessage>,
    sum: &mut Summary,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let bytes: u64 = batch.iter().map(|m| m.data.len() as u64).sum();
    let out = store
        .import(account, mailbox, std::mem::take(batch))
        .with_context(|| format!("storing into {mailbox:?}"))?;
    let existed = out.iter().filter(|o| o.existed).count() as u64;
    sum.existed += existed;
    sum.messages += out.len() as u64 - existed;
    sum.bytes += bytes;
    Ok(())
}

/// The mbox state file: where an earlier run of the same import got to.
struct MboxState {
    path: PathBuf,
    size: u64,
    mtime: i64,
}

impl MboxState {
    fn new(
        config: &Config,
        source: &Path,
        account: &str,
        folder: &str,
        md: &fs::Metadata,
    ) -> MboxState {
        let name = stable_hash(&[path_bytes(source), account.as_bytes(), folder.as_bytes()]);
        let mtime = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        MboxState {
            path: config
                .data_dir
                .join("import-state")
                .join(format!("{name}.state")),
            size: md.len(),
            mtime,
        }
    }

    /// The offset reached by an earlier run on the same (unchanged) file.
    fn load(&self) -> u64 {
        let Ok(text) = fs::read_to_string(&self.path) else {
            return 0;
        };
        let v: Vec<u64> = text
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        match v[..] {
            [size, mtime, offset] if size == self.size && mtime as i64 == self.mtime => {
                offset.min(self.size)
            }
            _ => 0,
        }
    }

    fn save(&self, offset: u64) -> anyhow::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = self.path.with_extension("tmp");
        fs::write(&tmp, format!("{} {} {offset}\n", self.size, self.mtime))
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &self.path).with_context(|| format!("writing {}", self.path.display()))
    }
}

/// `postern import ...`.
pub(crate) fn import(config: &Config, cmd: ImportCommand) -> anyhow::Result<()> {
    match cmd {
        ImportCommand::Mbox {
            file,
            address,
            folder,
            variant,
            max_message_size,
        } => {
            let variant: Variant = variant.parse().map_err(anyhow::Error::msg)?;
            let max = max_message_size.unwrap_or(config.smtp.max_message_size);
            import_mbox(config, &file, &address, &folder, variant, max)
        }
        ImportCommand::Maildir {
            dir,
            address,
            folder_prefix,
            max_message_size,
        } => {
            let max = max_message_size.unwrap_or(config.smtp.max_message_size);
            import_maildir(config, &dir, &address, folder_prefix.as_deref(), max)
        }
    }
}

fn import_mbox(
    config: &Config,
    file: &Path,
    address: &str,
    folder: &str,
    variant: Variant,
    max: u64,
) -> anyhow::Result<()> {
    let source =
        fs::canonicalize(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut f = File::open(&source).with_context(|| format!("cannot open {}", file.display()))?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        bail!("{} is not a file", file.display());
    }
    let (ctx, account) = open_account(config, address)?;
    ensure_mailbox(&ctx.store, &account, folder)?;
    let folder = postern_store::names::canonical_mailbox(folder)?;
    let state = MboxState::new(config, &source, &account, &folder, &meta);
    let start = state.load();
    if start > 0 {
        eprintln!(
            "postern: resuming the import of {} at byte {start} (an earlier run got there)",
            file.display()
        );
        f.seek(SeekFrom::Start(start))?;
    }
    let key_base = &stable_hash(&[path_bytes(&source)])[..20];
    let mut reader =
        MboxReader::at_offset(BufReader::with_capacity(256 * 1024, f), variant, max, start);
    let mut sum = Summary {
        folders: vec![folder.clone()],
        ..Summary::default()
    };
    let mut progress = Progress::new(meta.len(), "bytes");
    let mut batch: Vec<ImportMessage> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut seen = 0u64;
    while let Some(item) = reader.next() {
        let item = item.with_context(|| format!("reading {}", file.display()))?;
        match item {
            Item::Skipped { offset, reason } => {
                sum.skip(format!("message at byte {offset}: {reason}"));
            }
            Item::Message { message, offset } => {
                seen += 1;
                batch_bytes += message.data.len();
                batch.push(ImportMessage {
                    flags: to_store_flags(&message.flags),
                    recent: message.flags.recent,
                    internal_date: message.internal_date,
                    uid: None,
                    key: Some(format!("m{key_base}-{offset}")),
                    data: message.data,
                });
            }
        }
        if batch.len() >= BATCH_MESSAGES || batch_bytes >= BATCH_BYTES {
            flush(&ctx.store, &account, &folder, &mut batch, &mut sum)?;
            batch_bytes = 0;
            state.save(reader.next_offset())?;
        }
        progress.update(reader.next_offset(), seen);
    }
    flush(&ctx.store, &account, &folder, &mut batch, &mut sum)?;
    state.save(reader.next_offset())?;
    progress.finish();
    sum.print("imported");
    sum.result("imported")
}

fn import_maildir(
    config: &Config,
    dir: &Path,
    address: &str,
    prefix: Option<&str>,
    max: u64,
) -> anyhow::Result<()> {
    let root = fs::canonicalize(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    let folders = md::scan(&root)?;
    let (ctx, account) = open_account(config, address)?;
    let total: u64 = folders.iter().map(|f| f.entries.len() as u64).sum();
    let mut progress = Progress::new(total, "messages");
    let mut sum = Summary::default();
    let mut seen = 0u64;
    for folder in &folders {
        let target = match (prefix, folder.name.as_str()) {
            (Some(p), "INBOX") => p.to_owned(),
            (Some(p), n) => format!("{p}/{n}"),
            (None, n) => n.to_owned(),
        };
        let target = match postern_store::names::canonical_mailbox(&target) {
            Ok(t) => t,
            Err(e) => {
                for _ in &folder.entries {
                    sum.skip(format!("folder {:?}: {e}", folder.name));
                }
                continue;
            }
        };
        if target != "INBOX" {
            ensure_mailbox(&ctx.store, &account, &target)?;
        }
        sum.folders.push(target.clone());
        let keep_uids = match (folder.uidvalidity, folder.uidnext) {
            (Some(v), Some(_)) => {
                // UIDNEXT is raised to the source's once its messages are in (below).
                let ok = ctx.store.adopt_uidvalidity(&account, &target, v, 1)?;
                if !ok {
                    sum.notes.push(format!(
                        "{target}: UIDs not kept (the mailbox already holds mail, or UIDVALIDITY {v} is taken)"
                    ));
                }
                ok
            }
            _ => false,
        };
        let folder_key = stable_hash(&[path_bytes(&folder.path)]);
        let mut batch: Vec<ImportMessage> = Vec::new();
        let mut batch_bytes = 0usize;
        for e in &folder.entries {
            seen += 1;
            if e.size > max {
                sum.skip(format!(
                    "{}: {} bytes, larger than the limit of {max}",
                    e.path.display(),
                    e.size
                ));
                continue;
            }
            let m: Message = match e.read() {
                Ok(m) => m,
                Err(err) => {
                    sum.skip(format!("{err}"));
                    continue;
                }
            };
            let key = format!(
                "d{}",
                &stable_hash(&[folder_key.as_bytes(), e.base.as_bytes()])[..30]
            );
            batch_bytes += m.data.len();
            batch.push(ImportMessage {
                flags: to_store_flags(&m.flags),
                recent: m.flags.recent,
                internal_date: m.internal_date,
                uid: if keep_uids { m.uid } else { None },
                key: Some(key),
                data: m.data,
            });
            if batch.len() >= BATCH_MESSAGES || batch_bytes >= BATCH_BYTES {
                flush(&ctx.store, &account, &target, &mut batch, &mut sum)?;
                batch_bytes = 0;
            }
            progress.update(seen, seen);
        }
        flush(&ctx.store, &account, &target, &mut batch, &mut sum)?;
        if let (true, Some(v), Some(n)) = (keep_uids, folder.uidvalidity, folder.uidnext) {
            ctx.store.adopt_uidvalidity(&account, &target, v, n)?;
        }
    }
    progress.finish();
    sum.print("imported");
    sum.result("imported")
}

/// The envelope sender for the mbox `From ` line: the message's first Return-Path.
fn return_path(data: &[u8]) -> Option<String> {
    let v = postern_mail::header::field_value(data, "Return-Path")?;
    let v = v
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic())).then(|| v.to_owned())
}

/// `postern export`.
pub(crate) fn export(config: &Config, args: ExportArgs) -> anyhow::Result<()> {
    let (ctx, account) = open_account(config, &args.address)?;
    let store = &ctx.store;
    let mut names: Vec<String> = store
        .list_mailboxes(&account)?
        .into_iter()
        .map(|m| m.name)
        .collect();
    if let Some(f) = &args.folder {
        let want = postern_store::names::canonical_mailbox(f)?;
        if !names.contains(&want) {
            bail!("{account} has no mailbox {want:?}");
        }
        names = vec![want];
    }
    let writer = match args.format {
        ExportFormat::Maildir => Some(MaildirWriter::create(&args.dir, &config.hostname)?),
        ExportFormat::Mbox => {
            if args.dir.exists() && fs::read_dir(&args.dir)?.next().is_some() {
                bail!(
                    "{} is not empty: export into a new or empty directory",
                    args.dir.display()
                );
            }
            fs::create_dir_all(&args.dir)
                .with_context(|| format!("creating {}", args.dir.display()))?;
            None
        }
    };
    let mut total = 0u64;
    for n in &names {
        total += u64::from(store.status(&account, n)?.messages);
    }
    let mut progress = Progress::new(total, "messages");
    let mut sum = Summary::default();
    for name in &names {
        let snap = store.select(&account, name, false)?;
        sum.folders.push(name.clone());
        let mut mbox = None;
        let mut folder = None;
        match &writer {
            Some(w) => folder = Some(w.folder(name, snap.uidvalidity)?),
            None => {
                let path = args.dir.join(format!("{name}.mbox"));
                if let Some(p) = path.parent() {
                    fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
                }
                let f = File::options()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                mbox = Some((MboxWriter::new(BufWriter::new(f)), path));
            }
        }
        for meta in &snap.messages {
            let data = match store.fetch(&account, name, meta.uid) {
                Ok(d) => d,
                Err(StoreError::MessageNotFound(_)) => continue, // expunged meanwhile
                Err(e) => {
                    sum.skip(format!("{name} UID {}: {e}", meta.uid));
                    continue;
                }
            };
            let m = Message {
                sender: return_path(&data),
                flags: from_store_flags(&meta.flags, meta.recent),
                internal_date: Some(meta.internal_date),
                uid: Some(meta.uid),
                data,
            };
            let n = match (&mut mbox, &mut folder) {
                (Some((w, path)), _) => w
                    .write(&m)
                    .with_context(|| format!("writing {}", path.display()))?,
                (None, Some(fw)) => fw.write(&m)?,
                (None, None) => unreachable!("one writer per format"),
            };
            sum.messages += 1;
            sum.bytes += n;
            progress.update(sum.messages, sum.messages);
        }
        if let Some((w, path)) = mbox {
            let f = w
                .into_inner()
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("writing {}", path.display()))?;
            f.sync_all()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(fw) = folder {
            let dropped = fw.finish(snap.uidnext)?;
            if !dropped.is_empty() {
                sum.notes.push(format!(
                    "{name}: keywords beyond Maildir's 26 letters left off: {}",
                    dropped.join(" ")
                ));
            }
        }
    }
    postern_transfer::sync_filesystem(&args.dir)?;
    progress.finish();
    sum.print("exported");
    std::io::stdout().flush()?;
    sum.result("exported")
}
