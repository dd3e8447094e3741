//! One retrieval run of a POP3 account: the shared sync algorithm (see the crate's doc) over
//! [`Client`], with RETRs pipelined and several deliveries running at once.
//!
//! Order of effects, per message: RETR → `Inbox::deliver` (durable) → `FetchState::record`
//! (durable, in batches) → DELE → QUIT `+OK` → `FetchState::forget`. A run stopped anywhere
//! leaves a state from which the next run neither loses nor duplicates a message.

use super::client::{Client, Listed};
use crate::error::FetchError;
use crate::inbox::{delivery_key, Delivered, FetchedMessage};
use crate::pace::Pacer;
use crate::state::{RunReport, SeenMessage};
use crate::Run;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The only POP3 folder.
const FOLDER: &str = "INBOX";
/// RETRs in flight at most (PIPELINING servers).
const PIPELINE_DEPTH: usize = 32;
/// Bytes of messages requested but not yet read, at most (one message always may be).
const PIPELINE_BYTES: u64 = 8 * 1024 * 1024;
/// Deliveries running at once at most (local delivery commits concurrent ones together).
const MAX_DELIVERIES: usize = 16;
/// Bytes held by running deliveries at most (one always may run).
const DELIVERY_BYTES: u64 = 64 * 1024 * 1024;
/// How long a cancelled run may still spend reading the message it is in the middle of before
/// it drops the connection (then without QUIT: the server deletes nothing).
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// Delivered messages are recorded at least this often...
const RECORD_EVERY: usize = 100;
/// ...and at least this soon after delivery.
const RECORD_AFTER: Duration = Duration::from_secs(1);

/// One remote message to fetch.
#[derive(Clone, Debug)]
struct Job {
    number: u32,
    /// The UIDL; `None` on a server without UIDL (then the account deletes what it fetches).
    uid: Option<String>,
    size: u64,
}

/// Fetches the account's new messages (one pass) into its inbox: RFC 1939 UIDL and LIST, RETR
/// (pipelined, RFC 2449 §6.6), then DELE and QUIT (RFC 1939 §6) for what is delivered and
/// recorded when the account does not keep mail on the server.
pub async fn sync(run: &Run<'_>) -> Result<RunReport, FetchError> {
    let account = run.account;
    let options = &account.options;
    let mut client = Client::connect(
        run.connector,
        &account.url,
        run.password,
        options.apop,
        options.allow_plaintext,
    )
    .await?;
    let url = account.url.to_string();
    let mut report = RunReport {
        folders: 1,
        ..RunReport::default()
    };

    let state = run.state.load(&account.id, FOLDER).await?;
    let listed = client.list().await?;
    let uids = client.uidl().await?;
    let (remote, by_uid) = match uids {
        Some(uids) => {
            let by_number: HashMap<u32, String> = uids.into_iter().collect();
            let mut remote = Vec::with_capacity(listed.len());
            let mut by_uid: HashMap<String, u32> = HashMap::with_capacity(listed.len());
            for Listed { number, size } in &listed {
                let uid = by_number.get(number).ok_or_else(|| {
                    FetchError::protocol(format!(
                        "{url} listed message {number} but gave it no UIDL"
                    ))
                })?;
                if by_uid.insert(uid.clone(), *number).is_some() {
                    return Err(FetchError::protocol(format!(
                        "{url} gave the same UIDL {uid:?} to two messages"
                    )));
                }
                remote.push(Job {
                    number: *number,
                    uid: Some(uid.clone()),
                    size: *size,
                });
            }
            (remote, Some(by_uid))
        }
        None if !options.keep => {
            // RFC 1939 §7: UIDL is optional. Without it messages are told apart only within
            // this session: every one is fetched and deleted; none is recorded.
            let remote = listed
                .iter()
                .map(|l| Job {
                    number: l.number,
                    uid: None,
                    size: l.size,
                })
                .collect();
            (remote, None)
        }
        None => {
            let _ = client.quit().await;
            return Err(FetchError::protocol(format!(
                "{url} has no UIDL, so messages left on it cannot be told from new ones; \
                 fetch it with keep = false (delete after fetching)"
            )));
        }
    };

    // The state against the remote: what is gone is forgotten; what awaits deletion is
    // deleted now, without fetching it again.
    let mut to_delete: Vec<(u32, Option<String>)> = Vec::new();
    if let Some(by_uid) = &by_uid {
        let gone: Vec<String> = state
            .seen
            .keys()
            .filter(|id| !by_uid.contains_key(*id))
            .cloned()
            .collect();
        if !gone.is_empty() {
            run.state.forget(&account.id, FOLDER, &gone).await?;
        }
        for (id, seen) in &state.seen {
            if seen.delete_pending {
                if let Some(n) = by_uid.get(id) {
                    to_delete.push((*n, Some(id.clone())));
                }
            }
        }
        to_delete.sort_unstable();
    }
    let mut jobs = Vec::new();
    let mut new_bytes = 0;
    for job in remote {
        if job.uid.as_ref().is_some_and(|u| state.seen.contains_key(u)) {
            continue;
        }
        if options.size_limit.is_some_and(|limit| job.size > limit) {
            report.too_big += 1;
            continue;
        }
        new_bytes += job.size;
        jobs.push(job);
    }
    if report.too_big > 0 {
        tracing::info!(
            account = %account.id,
            url = %url,
            "{} message(s) larger than the size limit of {} octets left on the remote",
            report.too_big,
            options.size_limit.unwrap_or_default()
        );
    }
    tracing::debug!(
        account = %account.id,
        url = %url,
        remote = listed.len(),
        new = jobs.len(),
        delete = to_delete.len(),
        pipelining = client.capa.pipelining,
        "POP3 mailbox listed"
    );
    run.progress
        .folder(account, FOLDER, jobs.len() as u64, new_bytes);

    // Fetch and deliver.
    let stop = CancellationToken::new();
    let (tx, rx) = mpsc::channel::<(Job, Vec<u8>)>(4);
    let reader = read_messages(run, &mut client, &jobs, tx, &stop);
    let deliverer = deliver_messages(run, rx, &stop, by_uid.is_some());
    let (read, delivered) = tokio::join!(reader, deliverer);
    report.fetched += delivered.report.fetched;
    report.bytes += delivered.report.bytes;
    report.duplicates += delivered.report.duplicates;
    report.refused += delivered.report.refused;
    to_delete.extend(delivered.to_delete);

    // A connection that failed is of no more use: what was delivered is recorded, and its
    // deletion waits for the next run.
    if !read? {
        tracing::info!(
            account = %account.id,
            "cancelled in the middle of a message: connection dropped, deletions wait for the next run"
        );
        return match delivered.error {
            Some(e) => Err(e),
            None => Ok(report),
        };
    }

    // Delete what is delivered and recorded, then QUIT (RFC 1939 §6: the deletions happen in
    // the UPDATE state, after QUIT's +OK only).
    if let Err(e) = finish(run, client, &to_delete, &mut report).await {
        // Everything fetched is delivered and recorded; only deletions (or the goodbye) failed,
        // and the next run deletes what is still marked.
        tracing::warn!(account = %account.id, "{e}; deletions pending are retried next run");
    }
    match delivered.error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Marks `to_delete` deleted, QUITs, and forgets what the remote confirmed deleted.
async fn finish(
    run: &Run<'_>,
    mut client: Client,
    to_delete: &[(u32, Option<String>)],
    report: &mut RunReport,
) -> Result<(), FetchError> {
    let account = run.account;
    if to_delete.is_empty() {
        // Nothing to commit: a failed goodbye changes nothing.
        if let Err(e) = client.quit().await {
            tracing::debug!(account = %account.id, "QUIT: {e}");
        }
        return Ok(());
    }
    let numbers: Vec<u32> = to_delete.iter().map(|(n, _)| *n).collect();
    let marked = client.dele(&numbers).await?;
    client.quit().await.map_err(|e| {
        FetchError::new(
            e.kind,
            format!("{}; the messages to delete stay on the remote", e.message),
        )
    })?;
    report.deleted += marked.len() as u64;
    let marked: HashSet<u32> = marked.into_iter().collect();
    let ids: Vec<String> = to_delete
        .iter()
        .filter(|(n, _)| marked.contains(n))
        .filter_map(|(_, id)| id.clone())
        .collect();
    if !ids.is_empty() {
        run.state.forget(&account.id, FOLDER, &ids).await?;
    }
    Ok(())
}

/// The reading side: sends RETRs ahead (up to [`PIPELINE_DEPTH`] when the server pipelines and
/// no rate limit applies) and passes each message read to the deliveries. When `stop` or the
/// run's cancel fires it sends no more RETRs and reads (and drops) the answers still due; after
/// [`CANCEL_GRACE`] of a cancelled run it gives up on them. `Ok(false)`: it gave up, and the
/// connection is out of step.
async fn read_messages(
    run: &Run<'_>,
    client: &mut Client,
    jobs: &[Job],
    tx: mpsc::Sender<(Job, Vec<u8>)>,
    stop: &CancellationToken,
) -> Result<bool, FetchError> {
    let options = &run.account.options;
    let depth = if client.capa.pipelining && options.rate_limit.is_none() {
        PIPELINE_DEPTH
    } else {
        1
    };
    let mut pacer = Pacer::new(options.rate_limit);
    let stopped = || stop.is_cancelled() || run.cancel.is_cancelled();
    let (mut sent, mut read) = (0usize, 0usize);
    let mut in_flight_bytes = 0u64;
    loop {
        let mut batch = Vec::new();
        while sent < jobs.len()
            && sent - read < depth
            && (sent == read || in_flight_bytes + jobs[sent].size <= PIPELINE_BYTES)
            && !stopped()
        {
            tokio::select! {
                _ = pacer.wait() => {}
                _ = run.cancel.cancelled() => break,
                _ = stop.cancelled() => break,
            }
            batch.push(jobs[sent].number);
            in_flight_bytes += jobs[sent].size;
            sent += 1;
        }
        if !batch.is_empty() {
            client.send_retr(&batch).await?;
        }
        if read == sent {
            return Ok(true);
        }
        let job = &jobs[read];
        let give_up = async {
            run.cancel.cancelled().await;
            tokio::time::sleep(CANCEL_GRACE).await;
        };
        let raw = tokio::select! {
            raw = client.read_retr(job.number, job.size) => raw?,
            _ = give_up => return Ok(false),
        };
        read += 1;
        in_flight_bytes -= job.size;
        if stopped() {
            continue;
        }
        if tx.send((job.clone(), raw)).await.is_err() {
            stop.cancel();
        }
    }
}

/// What the deliveries did.
#[derive(Default)]
struct Deliveries {
    report: RunReport,
    /// Delivered and recorded messages to delete on the remote.
    to_delete: Vec<(u32, Option<String>)>,
    /// The first failure of the inbox or the state; the run stops at it.
    error: Option<FetchError>,
}

type Delivery<'a> =
    Pin<Box<dyn Future<Output = (Job, u64, Result<Delivered, FetchError>)> + Send + 'a>>;

/// The delivering side: up to [`MAX_DELIVERIES`] at once; each delivered message is recorded
/// (in batches of [`RECORD_EVERY`] or after [`RECORD_AFTER`]) before it may be deleted.
async fn deliver_messages<'a>(
    run: &'a Run<'a>,
    mut rx: mpsc::Receiver<(Job, Vec<u8>)>,
    stop: &CancellationToken,
    record: bool,
) -> Deliveries {
    let account = run.account;
    let keep = account.options.keep;
    let mut out = Deliveries::default();
    let mut running: Vec<Delivery<'a>> = Vec::new();
    let mut running_bytes = 0u64;
    let mut pending: Vec<SeenMessage> = Vec::new();
    let mut pending_delete: Vec<(u32, Option<String>)> = Vec::new();
    let mut flush_at: Option<Instant> = None;
    let mut open = true;
    loop {
        if !open && running.is_empty() {
            break;
        }
        let room = running.is_empty()
            || (running.len() < MAX_DELIVERIES && running_bytes < DELIVERY_BYTES);
        let receive = open && room;
        let deadline = flush_at.unwrap_or_else(Instant::now);
        let timed = flush_at.is_some();
        let busy = !running.is_empty();
        tokio::select! {
            (job, size, outcome) = next_done(&mut running), if busy => {
                running_bytes -= size;
                let Some(deletable) = handle(run, &job, size, outcome, &mut out) else {
                    stop.cancel();
                    continue;
                };
                run.progress.message(account, size);
                if let Some(uid) = &job.uid {
                    pending.push(SeenMessage {
                        id: uid.clone(),
                        fingerprint: None,
                        delete_pending: deletable && !keep,
                    });
                }
                if deletable && !keep {
                    pending_delete.push((job.number, job.uid.clone()));
                }
                flush_at.get_or_insert_with(|| Instant::now() + RECORD_AFTER);
                if pending.len() >= RECORD_EVERY {
                    flush(run, record, &mut pending, &mut pending_delete, &mut out, stop).await;
                    flush_at = None;
                }
            }
            next = rx.recv(), if receive => match next {
                None => open = false,
                Some(_) if stop.is_cancelled() => {}
                Some((job, raw)) => {
                    let size = raw.len() as u64;
                    running_bytes += size;
                    running.push(start_delivery(run, job, raw));
                }
            },
            _ = tokio::time::sleep_until(deadline), if timed => {
                flush(run, record, &mut pending, &mut pending_delete, &mut out, stop).await;
                flush_at = None;
            }
        }
    }
    flush(
        run,
        record,
        &mut pending,
        &mut pending_delete,
        &mut out,
        stop,
    )
    .await;
    out
}

/// Counts a finished delivery; `Some(true)` when it may be deleted on the remote (stored or
/// stored before), `Some(false)` when it is kept (refused), `None` when the run must stop.
fn handle(
    run: &Run<'_>,
    job: &Job,
    size: u64,
    outcome: Result<Delivered, FetchError>,
    out: &mut Deliveries,
) -> Option<bool> {
    match outcome {
        Ok(Delivered::Stored) => {
            out.report.fetched += 1;
            out.report.bytes += size;
            Some(true)
        }
        Ok(Delivered::Duplicate) => {
            out.report.duplicates += 1;
            Some(true)
        }
        Ok(Delivered::Refused(reason)) => {
            out.report.refused += 1;
            tracing::warn!(
                account = %run.account.id,
                uidl = job.uid.as_deref().unwrap_or("-"),
                "message {} of {} refused by local delivery, left on the remote: {}",
                job.number,
                run.account.url,
                reason.0
            );
            Some(false)
        }
        Err(e) => {
            if out.error.is_none() {
                out.error = Some(e);
            }
            None
        }
    }
}

/// Records the delivered messages; only then may they be deleted on the remote.
async fn flush(
    run: &Run<'_>,
    record: bool,
    pending: &mut Vec<SeenMessage>,
    pending_delete: &mut Vec<(u32, Option<String>)>,
    out: &mut Deliveries,
    stop: &CancellationToken,
) {
    if record && !pending.is_empty() {
        if let Err(e) = run.state.record(&run.account.id, FOLDER, pending).await {
            if out.error.is_none() {
                out.error = Some(e);
            }
            stop.cancel();
            pending.clear();
            pending_delete.clear();
            return;
        }
    }
    pending.clear();
    out.to_delete.append(pending_delete);
}

fn start_delivery<'a>(run: &'a Run<'a>, job: Job, raw: Vec<u8>) -> Delivery<'a> {
    let account = run.account;
    let size = raw.len() as u64;
    let id = match &job.uid {
        Some(uid) => uid.clone(),
        // No UIDL: the message's digest identifies it, so a run cut short before QUIT does
        // not deliver it twice next time.
        None => {
            let digest = Sha256::digest(&raw);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256:{hex}")
        }
    };
    let key = delivery_key(&account.id, FOLDER, 0, &id);
    Box::pin(async move {
        let outcome = run
            .inbox
            .deliver(FetchedMessage {
                account,
                remote_folder: FOLDER,
                local_folder: None,
                key,
                raw,
                flags: Vec::new(),
            })
            .await;
        (job, size, outcome)
    })
}

/// The first of the running deliveries to finish (removed from the set).
async fn next_done(running: &mut Vec<Delivery<'_>>) -> (Job, u64, Result<Delivered, FetchError>) {
    std::future::poll_fn(move |cx| {
        for i in 0..running.len() {
            if let Poll::Ready(done) = running[i].as_mut().poll(cx) {
                drop(running.swap_remove(i));
                return Poll::Ready(done);
            }
        }
        Poll::Pending
    })
    .await
}
