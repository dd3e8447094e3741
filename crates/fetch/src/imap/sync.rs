//! One pass over an account's remote folders: what is new is fetched in pipelined chunks,
//! delivered by up to [`MAX_DELIVERIES`] deliveries at once, recorded, and only then flagged
//! or deleted on the remote.

use super::client::Client;
use super::mutf7;
use super::response::{Code, Untagged, Value, MAX_LITERAL};
use crate::account::Folders;
use crate::inbox::{delivery_key, Delivered, FetchedMessage};
use crate::state::{FolderState, RunReport, SeenMessage};
use crate::{FetchError, Pacer, Run};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Deliveries running at once (local delivery groups them into one fsync).
pub(crate) const MAX_DELIVERIES: usize = 16;
/// UIDs per `UID FETCH` of bodies.
const CHUNK_UIDS: usize = 200;
/// Announced bytes per `UID FETCH` of bodies.
const CHUNK_BYTES: u64 = 8 * 1024 * 1024;
/// Body fetch commands kept in flight.
const WINDOW: usize = 2;
/// UIDs per STORE/EXPUNGE/metadata command.
const SET_UIDS: usize = 500;
/// Recorded at least every this many messages...
const RECORD_EVERY: usize = 100;
/// ... or this often.
const RECORD_INTERVAL: Duration = Duration::from_secs(1);

/// A remote folder and where its mail goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Folder {
    /// The name as the server knows it (modified UTF-7 on IMAP4rev1).
    pub(crate) remote: String,
    /// Its name in UTF-8 with `/` between levels: the state's key (`INBOX` for the inbox).
    pub(crate) name: String,
    /// `None` for INBOX (local delivery), else the local folder.
    pub(crate) local: Option<String>,
}

impl Folder {
    /// A name from LIST; `utf8`: the server speaks only IMAP4rev2, whose names are UTF-8
    /// (RFC 9051 §5.1), else modified UTF-7 (RFC 3501 §5.1.3).
    fn new(remote: &str, delimiter: Option<char>, utf8: bool) -> Folder {
        let decoded = if utf8 {
            remote.to_string()
        } else {
            mutf7::decode(remote)
        };
        let name = match delimiter {
            Some(d) if d != '/' => decoded.replace(d, "/"),
            _ => decoded,
        };
        let inbox = name.eq_ignore_ascii_case("INBOX");
        Folder {
            remote: remote.to_string(),
            name: if inbox { "INBOX".into() } else { name.clone() },
            local: (!inbox).then_some(name),
        }
    }

    /// A folder named by the user (URL path, `folders = [..]`), `/` between levels.
    fn named(name: &str, delimiter: Option<char>, utf8: bool) -> Folder {
        let remote = match delimiter {
            Some(d) if d != '/' => name.replace('/', &d.to_string()),
            _ => name.to_string(),
        };
        if utf8 {
            Folder::new(&remote, delimiter, true)
        } else {
            Folder::new(&mutf7::encode(&remote), delimiter, false)
        }
    }
}

/// `imap::sync`: logs in, syncs every folder of the account once, logs out.
pub(crate) async fn sync(run: &Run<'_>) -> Result<RunReport, FetchError> {
    let mut client = tokio::select! {
        c = Client::login(run) => c?,
        _ = run.cancel.cancelled() => return Ok(RunReport::default()),
    };
    let result = async {
        let folders = folders(&mut client, run).await?;
        sync_folders(&mut client, run, &folders).await
    }
    .await;
    finish(client, &result).await;
    result
}

/// Logs out after a run, unless the connection itself failed.
pub(crate) async fn finish<T>(client: Client, result: &Result<T, FetchError>) {
    match result {
        Err(e)
            if matches!(
                e.kind,
                crate::ErrorKind::Network | crate::ErrorKind::Protocol
            ) => {}
        _ => client.logout().await,
    }
}

/// Syncs `folders` in order; stops between folders when cancelled.
pub(crate) async fn sync_folders(
    client: &mut Client,
    run: &Run<'_>,
    folders: &[Folder],
) -> Result<RunReport, FetchError> {
    let mut report = RunReport::default();
    let pacer = tokio::sync::Mutex::new(Pacer::new(run.account.options.rate_limit));
    for folder in folders {
        if run.cancel.is_cancelled() {
            break;
        }
        let r = sync_folder(client, run, folder, &pacer).await?;
        report.add(&r);
    }
    Ok(report)
}

/// The folders the account fetches (RFC 9051 §6.3.9 LIST for `Folders::All`).
pub(crate) async fn folders(client: &mut Client, run: &Run<'_>) -> Result<Vec<Folder>, FetchError> {
    let opts = &run.account.options;
    // We never ENABLE IMAP4rev2, so only a server without IMAP4rev1 speaks UTF-8 names.
    let utf8 = client.has("IMAP4rev2") && !client.has("IMAP4rev1");
    let named: Vec<String> = match (&opts.folders, &run.account.url.folder) {
        (Folders::All, _) => {
            let (data, done) = client.command("LIST \"\" \"*\"").await?;
            client.ok("LIST", &done)?;
            let mut out = Vec::new();
            for u in data {
                let Untagged::List(e) = u else { continue };
                // RFC 9051 §7.3.1: \Noselect and \NonExistent names cannot be selected.
                if e.attributes.iter().any(|a| {
                    a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
                }) {
                    continue;
                }
                let f = Folder::new(&e.name, e.delimiter, utf8);
                if !out.iter().any(|o: &Folder| o.name == f.name) {
                    out.push(f);
                }
            }
            // INBOX first: it is what users wait for.
            out.sort_by_key(|f| f.local.is_some());
            return Ok(out);
        }
        (Folders::Named(list), _) => list.clone(),
        (Folders::Inbox, Some(f)) => vec![f.clone()],
        (Folders::Inbox, None) => vec!["INBOX".into()],
    };
    let delimiter = if named.iter().any(|n| n.contains('/')) {
        // RFC 9051 §6.3.9: LIST "" "" returns the hierarchy delimiter.
        let (data, done) = client.command("LIST \"\" \"\"").await?;
        client.ok("LIST", &done)?;
        data.into_iter()
            .find_map(|u| match u {
                Untagged::List(e) => Some(e.delimiter),
                _ => None,
            })
            .flatten()
    } else {
        None
    };
    Ok(named
        .iter()
        .map(|n| Folder::named(n, delimiter, utf8))
        .collect())
}

/// A mailbox name as a quoted string (RFC 9051 §4.3).
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// What SELECT said.
pub(crate) struct Selected {
    pub(crate) uidvalidity: u32,
    pub(crate) exists: u32,
}

/// RFC 9051 §6.3.2 SELECT, or §6.3.3 EXAMINE when nothing will be changed.
pub(crate) async fn select(
    client: &mut Client,
    folder: &Folder,
    write: bool,
) -> Result<Selected, FetchError> {
    let verb = if write { "SELECT" } else { "EXAMINE" };
    let (data, done) = client
        .command(&format!("{verb} {}", quote(&folder.remote)))
        .await?;
    client.ok(&format!("{verb} {}", folder.name), &done)?;
    let mut uidvalidity = None;
    let mut exists = None;
    for u in &data {
        match u {
            Untagged::Status(st) => {
                if let Some(Code::UidValidity(v)) = st.code {
                    uidvalidity = Some(v);
                }
            }
            Untagged::Exists(n) => exists = Some(*n),
            _ => {}
        }
    }
    if let Some(Code::UidValidity(v)) = done.code {
        uidvalidity = Some(v);
    }
    client.grew = false;
    let uidvalidity = uidvalidity.ok_or_else(|| {
        FetchError::protocol(format!(
            "{} sent no UIDVALIDITY for {} (RFC 9051 §7.1)",
            client.url, folder.name
        ))
    })?;
    Ok(Selected {
        uidvalidity,
        exists: exists.unwrap_or(client.exists),
    })
}

/// RFC 9051 §6.4.4 UID SEARCH; the UIDs in ascending order.
async fn search(client: &mut Client, criteria: &str) -> Result<Vec<u32>, FetchError> {
    let (data, done) = client.command(&format!("UID SEARCH {criteria}")).await?;
    client.ok("UID SEARCH", &done)?;
    let mut uids: Vec<u32> = data
        .into_iter()
        .filter_map(|u| match u {
            Untagged::Search(ids) => Some(ids),
            _ => None,
        })
        .flatten()
        .collect();
    uids.sort_unstable();
    uids.dedup();
    Ok(uids)
}

/// A sequence set of UIDs (`1:5,9`), RFC 9051 §9 `sequence-set`; `uids` ascending.
pub(crate) fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let mut j = i;
        while j + 1 < uids.len() && uids[j + 1] == uids[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if i == j {
            out.push_str(&uids[i].to_string());
        } else {
            out.push_str(&format!("{}:{}", uids[i], uids[j]));
        }
        i = j + 1;
    }
    out
}

fn attr<'v>(items: &'v [(String, Value)], name: &str) -> Option<&'v Value> {
    items.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn attr_prefix<'v>(items: &'v [(String, Value)], prefix: &str) -> Option<&'v Value> {
    items
        .iter()
        .find(|(n, _)| n.starts_with(prefix))
        .map(|(_, v)| v)
}

fn flags_of(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|f| match f {
                // \Recent is session state, never stored (RFC 3501 §2.3.2).
                Value::Atom(a) if !a.eq_ignore_ascii_case("\\Recent") => Some(a.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The header section of a message: up to and including the empty line.
fn header_section(raw: &[u8]) -> &[u8] {
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => &raw[..i + 4],
        None => raw,
    }
}

/// The Message-ID field's value (RFC 5322 §3.6.4), unfolded and trimmed.
fn message_id(header: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let mut current: Option<String> = None;
    let mut found = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some(c) = current.as_mut() {
                c.push_str(line);
            }
            continue;
        }
        if let Some(c) = current.take() {
            found = Some(c);
            break;
        }
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim_end().eq_ignore_ascii_case("Message-ID") {
                current = Some(value.to_string());
            }
        }
    }
    let id = found.or(current)?;
    let id = id.split_whitespace().collect::<Vec<_>>().join(" ");
    (!id.is_empty()).then_some(id)
}

/// The identity of a message that survives a UIDVALIDITY change: `<message-id>|size`, or
/// without a Message-ID a hash of its header section and its size.
fn fingerprint(header: &[u8], size: u64) -> String {
    match message_id(header) {
        Some(id) => format!("{id}|{size}"),
        None => {
            let digest = Sha256::digest(header);
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("#{hex}|{size}")
        }
    }
}

/// RFC 9051 §2.3.1.1: the UIDs changed; the old state is carried over to the messages whose
/// fingerprint it had (as a multiset), the others are new.
async fn rebuild(
    client: &mut Client,
    run: &Run<'_>,
    folder: &Folder,
    old: FolderState,
    selected: &Selected,
) -> Result<FolderState, FetchError> {
    let mut by_fp: HashMap<String, Vec<SeenMessage>> = HashMap::new();
    for m in old.seen.into_values() {
        if let Some(fp) = m.fingerprint.clone() {
            by_fp.entry(fp).or_default().push(m);
        }
    }
    let mut seen = HashMap::new();
    if selected.exists > 0 && !by_fp.is_empty() {
        let (data, done) = client
            .command("UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            .await?;
        client.ok("UID FETCH", &done)?;
        let mut remote: Vec<(u32, u64, Option<String>)> = Vec::new();
        for u in data {
            let Untagged::Fetch(_, items) = u else {
                continue;
            };
            let (Some(uid), Some(size)) = (
                attr(&items, "UID").and_then(Value::number),
                attr(&items, "RFC822.SIZE").and_then(Value::number),
            ) else {
                continue;
            };
            let id = attr_prefix(&items, "BODY[HEADER.FIELDS")
                .and_then(Value::nstring)
                .and_then(message_id);
            remote.push((uid as u32, size, id.map(|id| format!("{id}|{size}"))));
        }
        let missing: Vec<u32> = remote
            .iter()
            .filter(|(_, _, fp)| fp.is_none())
            .map(|(uid, _, _)| *uid)
            .collect();
        let mut hashed = HashMap::new();
        for part in missing.chunks(SET_UIDS) {
            let cmd = format!("UID FETCH {} (UID BODY.PEEK[HEADER])", uid_set(part));
            let (data, done) = client.command(&cmd).await?;
            client.ok("UID FETCH", &done)?;
            for u in data {
                let Untagged::Fetch(_, items) = u else {
                    continue;
                };
                if let (Some(uid), Some(h)) = (
                    attr(&items, "UID").and_then(Value::number),
                    attr(&items, "BODY[HEADER]").and_then(Value::nstring),
                ) {
                    hashed.insert(uid as u32, h.to_vec());
                }
            }
        }
        remote.sort_unstable_by_key(|r| r.0);
        for (uid, size, fp) in remote {
            let fp = match fp {
                Some(fp) => fp,
                None => match hashed.get(&uid) {
                    Some(h) => fingerprint(h, size),
                    None => continue,
                },
            };
            if let Some(old) = by_fp.get_mut(&fp).and_then(Vec::pop) {
                seen.insert(
                    uid.to_string(),
                    SeenMessage {
                        id: uid.to_string(),
                        fingerprint: Some(fp),
                        delete_pending: old.delete_pending,
                    },
                );
            }
        }
    }
    tracing::info!(
        account = %run.account.id,
        folder = %folder.name,
        uidvalidity = selected.uidvalidity,
        matched = seen.len(),
        "remote UIDVALIDITY changed: state rebuilt from Message-ID and size"
    );
    let state = FolderState {
        uidvalidity: Some(selected.uidvalidity),
        seen,
    };
    run.state
        .replace(&run.account.id, &folder.name, &state)
        .await?;
    Ok(state)
}

/// A boxed delivery.
type Delivery<'f> = Pin<Box<dyn Future<Output = Outcome> + Send + 'f>>;

/// A delivery's result with what recording it needs.
struct Outcome {
    uid: u32,
    size: u64,
    fingerprint: String,
    result: Result<Delivered, FetchError>,
}

/// Deliveries in flight, polled together (no executor task: they borrow the run).
struct Deliveries<'f> {
    running: Vec<Delivery<'f>>,
}

impl<'f> Deliveries<'f> {
    /// The next delivery to finish; pending forever when none runs (guard the call).
    async fn next(&mut self) -> Outcome {
        std::future::poll_fn(|cx| {
            for i in 0..self.running.len() {
                if let Poll::Ready(o) = self.running[i].as_mut().poll(cx) {
                    drop(self.running.swap_remove(i));
                    return Poll::Ready(o);
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// What changes on the remote after recording.
struct After {
    seen: Vec<u32>,
    delete: Vec<u32>,
}

/// Syncs one folder (the algorithm of the crate's shared design).
pub(crate) async fn sync_folder(
    client: &mut Client,
    run: &Run<'_>,
    folder: &Folder,
    pacer: &tokio::sync::Mutex<Pacer>,
) -> Result<RunReport, FetchError> {
    let account = run.account;
    let opts = &account.options;
    let id = account.id.as_str();
    let mut report = RunReport {
        folders: 1,
        ..RunReport::default()
    };
    let mut state = run.state.load(id, &folder.name).await?;
    let pending_deletes = state.seen.values().any(|m| m.delete_pending);
    let write = !opts.keep || opts.mark_seen || pending_deletes;
    let selected = select(client, folder, write).await?;
    match state.uidvalidity {
        Some(v) if v == selected.uidvalidity => {}
        None if state.seen.is_empty() => {
            state.uidvalidity = Some(selected.uidvalidity);
            run.state.replace(id, &folder.name, &state).await?;
        }
        _ => state = rebuild(client, run, folder, state, &selected).await?,
    }
    let all = if selected.exists == 0 {
        Vec::new()
    } else {
        search(client, "ALL").await?
    };
    let present: HashSet<u32> = all.iter().copied().collect();
    // Gone from the remote (ours, expunged, or someone else's): forget.
    let gone: Vec<String> = state
        .seen
        .keys()
        .filter(|k| k.parse::<u32>().map_or(true, |u| !present.contains(&u)))
        .cloned()
        .collect();
    if !gone.is_empty() {
        run.state.forget(id, &folder.name, &gone).await?;
        for g in &gone {
            state.seen.remove(g);
        }
    }
    let mut after = After {
        seen: Vec::new(),
        delete: state
            .seen
            .values()
            .filter(|m| m.delete_pending)
            .filter_map(|m| m.id.parse().ok())
            .collect(),
    };
    let candidates = if opts.only_unseen && !all.is_empty() {
        // RFC 9051 §6.4.4: UNSEEN = without \Seen.
        search(client, "UNSEEN").await?
    } else {
        all
    };
    let new: Vec<u32> = candidates
        .into_iter()
        .filter(|u| !state.seen.contains_key(&u.to_string()))
        .collect();

    // Sizes and flags of the new messages.
    let mut meta: HashMap<u32, (u64, Vec<String>)> = HashMap::new();
    for part in new.chunks(SET_UIDS) {
        let cmd = format!("UID FETCH {} (UID RFC822.SIZE FLAGS)", uid_set(part));
        let (data, done) = client.command(&cmd).await?;
        client.ok("UID FETCH", &done)?;
        for u in data {
            let Untagged::Fetch(_, items) = u else {
                continue;
            };
            if let (Some(uid), Some(size)) = (
                attr(&items, "UID").and_then(Value::number),
                attr(&items, "RFC822.SIZE").and_then(Value::number),
            ) {
                meta.insert(uid as u32, (size, flags_of(attr(&items, "FLAGS"))));
            }
        }
    }
    let mut wanted = Vec::new();
    let mut bytes = 0;
    for uid in &new {
        let Some((size, _)) = meta.get(uid) else {
            continue; // expunged meanwhile
        };
        if opts.size_limit.is_some_and(|limit| *size > limit) {
            report.too_big += 1;
        } else {
            wanted.push(*uid);
            bytes += size;
        }
    }
    if report.too_big > 0 {
        tracing::info!(
            account = %id,
            folder = %folder.name,
            count = report.too_big,
            limit = opts.size_limit.unwrap_or(0),
            "messages left on the remote for their size"
        );
    }
    run.progress
        .folder(account, &folder.name, wanted.len() as u64, bytes);

    let fetched = fetch(
        client,
        run,
        folder,
        selected.uidvalidity,
        &wanted,
        &meta,
        pacer,
        &mut report,
        &mut after,
    )
    .await;

    // Only now, with every delivery recorded, is the remote changed: after a local delivery
    // failure too, for what was delivered before it (the session is still in step).
    match fetched {
        Ok(()) => {
            change_remote(client, run, folder, &after, &mut report).await?;
            Ok(report)
        }
        Err(e) if e.kind == crate::ErrorKind::Local => {
            if let Err(e2) = change_remote(client, run, folder, &after, &mut report).await {
                tracing::warn!(account = %id, folder = %folder.name, error = %e2,
                    "flags and deletions of the delivered messages wait for the next run");
            }
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Fetches `wanted` in pipelined chunks and delivers them; records every outcome.
#[allow(clippy::too_many_arguments)]
async fn fetch(
    client: &mut Client,
    run: &Run<'_>,
    folder: &Folder,
    uidvalidity: u32,
    wanted: &[u32],
    meta: &HashMap<u32, (u64, Vec<String>)>,
    pacer: &tokio::sync::Mutex<Pacer>,
    report: &mut RunReport,
    after: &mut After,
) -> Result<(), FetchError> {
    let account = run.account;
    let opts = &account.options;
    let id = account.id.as_str();
    // Chunks of at most CHUNK_UIDS UIDs and CHUNK_BYTES announced bytes.
    let mut chunks: VecDeque<Vec<u32>> = VecDeque::new();
    let mut cur = Vec::new();
    let mut cur_bytes = 0;
    let mut biggest = 0;
    for uid in wanted {
        let size = meta.get(uid).map_or(0, |m| m.0);
        biggest = biggest.max(size);
        if !cur.is_empty() && (cur.len() >= CHUNK_UIDS || cur_bytes + size > CHUNK_BYTES) {
            chunks.push_back(std::mem::take(&mut cur));
            cur_bytes = 0;
        }
        cur.push(*uid);
        cur_bytes += size;
    }
    if !cur.is_empty() {
        chunks.push_back(cur);
    }
    // A body may differ a little from its announced size; never by this much.
    client.literal_limit = (biggest.saturating_mul(2) + 1024 * 1024).min(MAX_LITERAL);

    let mut in_flight: VecDeque<String> = VecDeque::new();
    let mut deliveries = Deliveries {
        running: Vec::new(),
    };
    let mut batch: Vec<SeenMessage> = Vec::new();
    let mut last_record = Instant::now();
    let mut failure: Option<FetchError> = None;
    let mut stop = false;
    let mut issued: HashSet<u32> = HashSet::new();

    loop {
        // Cancelled: no new message is started; what runs finishes and is recorded.
        if run.cancel.is_cancelled() {
            stop = true;
        }
        // Keep WINDOW body fetches in flight.
        while !stop && in_flight.len() < WINDOW {
            let Some(chunk) = chunks.pop_front() else {
                break;
            };
            let tag = client.tag();
            let cmd = format!(
                "{tag} UID FETCH {} (UID FLAGS BODY.PEEK[])\r\n",
                uid_set(&chunk)
            );
            if let Err(e) = client.send(cmd.as_bytes()).await {
                failure = Some(e);
                stop = true;
                break;
            }
            issued.extend(chunk);
            in_flight.push_back(tag);
        }
        let reading = !stop && !in_flight.is_empty();
        if !reading && deliveries.running.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            outcome = deliveries.next(), if !deliveries.running.is_empty() => {
                let uid = outcome.uid;
                let delivered = match outcome.result {
                    Ok(Delivered::Stored) => {
                        report.fetched += 1;
                        report.bytes += outcome.size;
                        true
                    }
                    Ok(Delivered::Duplicate) => {
                        report.duplicates += 1;
                        true
                    }
                    Ok(Delivered::Refused(why)) => {
                        report.refused += 1;
                        tracing::warn!(account = %id, folder = %folder.name, uid,
                            reason = %why.0, "local delivery refused a fetched message; it stays on the remote");
                        false
                    }
                    Err(e) => {
                        if failure.is_none() {
                            failure = Some(e);
                        }
                        stop = true;
                        continue;
                    }
                };
                run.progress.message(account, outcome.size);
                if delivered {
                    if opts.mark_seen {
                        after.seen.push(uid);
                    }
                    if !opts.keep {
                        after.delete.push(uid);
                    }
                }
                batch.push(SeenMessage {
                    id: uid.to_string(),
                    fingerprint: Some(outcome.fingerprint),
                    delete_pending: delivered && !opts.keep,
                });
            }
            r = client.read(), if reading && deliveries.running.len() < MAX_DELIVERIES => {
                match r {
                    Err(e) => {
                        failure = Some(e);
                        stop = true;
                    }
                    Ok(super::response::Response::Tagged(tag, done)) => {
                        if in_flight.front() != Some(&tag) {
                            failure = Some(FetchError::protocol(format!(
                                "{} answered tag {tag} out of turn", client.url)));
                            stop = true;
                        } else {
                            in_flight.pop_front();
                            if let Err(e) = client.ok("UID FETCH", &done) {
                                failure = Some(e);
                                stop = true;
                            }
                        }
                    }
                    Ok(super::response::Response::Untagged(Untagged::Fetch(_, mut items))) => {
                        let uid = attr(&items, "UID").and_then(Value::number).map(|u| u as u32);
                        let body = items.iter().position(|(n, _)| n == "BODY[]");
                        if let (Some(uid), Some(i)) = (uid, body) {
                            if !issued.remove(&uid) {
                                continue; // not asked for, or already delivered
                            }
                            let raw = match std::mem::replace(&mut items[i].1, Value::Nil) {
                                Value::Str(b) => b,
                                _ => continue, // NIL: expunged meanwhile
                            };
                            let size = meta.get(&uid).map_or(raw.len() as u64, |m| m.0);
                            let fp = fingerprint(header_section(&raw), size);
                            let flags = flags_of(attr(&items, "FLAGS"));
                            let key = delivery_key(id, &folder.name, uidvalidity, &uid.to_string());
                            let local = folder.local.as_deref();
                            let remote = folder.name.as_str();
                            deliveries.running.push(Box::pin(async move {
                                pacer.lock().await.wait().await;
                                let result = run.inbox.deliver(FetchedMessage {
                                    account,
                                    remote_folder: remote,
                                    local_folder: local,
                                    key,
                                    raw,
                                    flags,
                                }).await;
                                Outcome { uid, size, fingerprint: fp, result }
                            }));
                        }
                    }
                    Ok(super::response::Response::Untagged(_)) => {}
                    Ok(super::response::Response::Continue(text)) => {
                        failure = Some(FetchError::protocol(format!(
                            "{} asked for data nobody offered (+ {text})", client.url)));
                        stop = true;
                    }
                }
            }
            _ = run.cancel.cancelled(), if !stop => {
                stop = true;
            }
        }
        if batch.len() >= RECORD_EVERY
            || (!batch.is_empty() && last_record.elapsed() >= RECORD_INTERVAL)
        {
            run.state.record(id, &folder.name, &batch).await?;
            batch.clear();
            last_record = Instant::now();
        }
    }
    if !batch.is_empty() {
        run.state.record(id, &folder.name, &batch).await?;
    }
    client.literal_limit = MAX_LITERAL;
    // Commands still in flight (cancel, or a delivery failure): read their answers so the
    // session stays usable for the flags and deletions of what was delivered.
    let local_failure = failure
        .as_ref()
        .is_some_and(|e| e.kind == crate::ErrorKind::Local);
    if failure.is_none() || local_failure {
        while let Some(tag) = in_flight.pop_front() {
            let (_, done) = client.finish(&tag).await?;
            client.ok("UID FETCH", &done)?;
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Flags and deletes on the remote what was delivered and recorded (RFC 9051 §6.4.6 UID
/// STORE, §6.4.3 EXPUNGE; RFC 4315 §2.1 UID EXPUNGE with UIDPLUS), then forgets what the
/// remote confirmed deleted.
async fn change_remote(
    client: &mut Client,
    run: &Run<'_>,
    folder: &Folder,
    after: &After,
    report: &mut RunReport,
) -> Result<(), FetchError> {
    let mut seen = after.seen.clone();
    seen.sort_unstable();
    for part in seen.chunks(SET_UIDS) {
        let cmd = format!("UID STORE {} +FLAGS.SILENT (\\Seen)", uid_set(part));
        let (_, done) = client.command(&cmd).await?;
        client.ok("UID STORE +FLAGS (\\Seen)", &done)?;
    }
    if after.delete.is_empty() {
        return Ok(());
    }
    let mut delete = after.delete.clone();
    delete.sort_unstable();
    delete.dedup();
    let uidplus = client.has("UIDPLUS");
    for part in delete.chunks(SET_UIDS) {
        let set = uid_set(part);
        let (_, done) = client
            .command(&format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"))
            .await?;
        client.ok("UID STORE +FLAGS (\\Deleted)", &done)?;
        if uidplus {
            let (_, done) = client.command(&format!("UID EXPUNGE {set}")).await?;
            client.ok("UID EXPUNGE", &done)?;
        }
    }
    if !uidplus {
        let (_, done) = client.command("EXPUNGE").await?;
        client.ok("EXPUNGE", &done)?;
    }
    let ids: Vec<String> = delete.iter().map(u32::to_string).collect();
    run.state
        .forget(&run.account.id, &folder.name, &ids)
        .await?;
    report.deleted += ids.len() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn message_ids_are_unfolded_and_fingerprinted_with_size() {
        let h = b"Subject: x\r\nMessage-ID:\r\n  <a@b.example>\r\nFrom: y\r\n\r\n";
        assert_eq!(message_id(h).as_deref(), Some("<a@b.example>"));
        assert_eq!(fingerprint(h, 42), "<a@b.example>|42");
        let h2 = b"message-id: <z@q>\r\n\r\n";
        assert_eq!(message_id(h2).as_deref(), Some("<z@q>"));
        let none = b"Subject: no id\r\n\r\n";
        let f = fingerprint(none, 7);
        assert!(f.starts_with('#') && f.ends_with("|7"), "{f}");
        assert_ne!(f, fingerprint(b"Subject: other\r\n\r\n", 7));
        assert_eq!(
            header_section(b"A: b\r\n\r\nbody\r\n\r\nmore"),
            b"A: b\r\n\r\n"
        );
    }

    #[test]
    fn folder_names_map_delimiters_and_decode_utf7() {
        let f = Folder::new("Archive.R&AOk-sum&AOk-", Some('.'), false);
        assert_eq!(f.remote, "Archive.R&AOk-sum&AOk-");
        assert_eq!(f.name, "Archive/Résumé");
        assert_eq!(f.local.as_deref(), Some("Archive/Résumé"));
        let i = Folder::new("inbox", Some('.'), false);
        assert_eq!((i.name.as_str(), i.local), ("INBOX", None));
        let n = Folder::named("Lists/été", Some('.'), false);
        assert_eq!(n.remote, "Lists.&AOk-t&AOk-");
        assert_eq!(n.name, "Lists/été");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        // IMAP4rev2-only servers: UTF-8 names as they are.
        let u = Folder::named("Lists/été", Some('.'), true);
        assert_eq!(
            (u.remote.as_str(), u.name.as_str()),
            ("Lists.été", "Lists/été")
        );
        assert_eq!(Folder::new("R&AOk-", None, true).name, "R&AOk-");
    }
}
