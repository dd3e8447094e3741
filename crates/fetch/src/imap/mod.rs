//! The IMAP client (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1 servers alike) and its two ways to
//! retrieve: [`sync`], one pass over the account's folders, and [`watch`], push mode with IDLE
//! (RFC 2177).
//!
//! - `response`: an I/O-free reader of server responses (RFC 9051 §7, §9), strict on tags,
//!   literals and line lengths, tolerant of untagged data anywhere.
//! - `client`: the connection: greeting, STARTTLS (RFC 9051 §6.2.1), AUTHENTICATE PLAIN or
//!   LOGIN, tagged commands with time-outs.
//! - `sync`: the crate's sync algorithm for one folder: UIDVALIDITY (with the Message-ID + size
//!   fallback when it changed), UID SEARCH, pipelined UID FETCH of bodies in chunks with up to
//!   16 deliveries at once, recording, then flags and deletions on the remote.
//! - `mutf7`: modified UTF-7 folder names (RFC 3501 §5.1.3).

mod client;
mod mutf7;
mod response;
mod sync;
#[cfg(test)]
mod tests;

use crate::{FetchError, Run, RunReport};
use client::Client;
use response::Response;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// RFC 2177 §3: a client re-issues IDLE at least every 29 minutes, before the server's
/// 30-minute inactivity time-out.
const IDLE_RENEW: Duration = Duration::from_secs(29 * 60);
/// While idling, silence this long means the connection is dead.
const IDLE_READ_TIMEOUT: Duration = Duration::from_secs(31 * 60);

/// One pass over the account's folders (the INBOX, the URL's folder, the named ones or all):
/// new messages are delivered, recorded, then flagged or deleted on the remote as the options
/// say. Returns what was done; a cancelled run returns what it did before it stopped.
pub async fn sync(run: &Run<'_>) -> Result<RunReport, FetchError> {
    sync::sync(run).instrument(span(run)).await
}

/// The span of an account's session in the logs (never its password).
fn span(run: &Run<'_>) -> tracing::Span {
    tracing::info_span!("fetch", account = %run.account.id, url = %run.account.url)
}

/// Push mode: syncs, then waits with IDLE (RFC 2177) on the INBOX (or the URL's folder) and
/// syncs it again as soon as the server announces mail, re-issuing IDLE every 29 minutes;
/// every folder is synced every `options.interval`. A server without IDLE (or an account with
/// `idle = false`) is polled every `options.interval`. Every sync's outcome goes to
/// `run.progress.synced`. Returns `Ok(())` when `run.cancel` fires, `Err` when the session
/// fails (the caller backs off and calls it again).
pub async fn watch(run: &Run<'_>) -> Result<(), FetchError> {
    watch_session(run).instrument(span(run)).await
}

async fn watch_session(run: &Run<'_>) -> Result<(), FetchError> {
    let mut client = tokio::select! {
        c = Client::login(run) => c?,
        _ = run.cancel.cancelled() => return Ok(()),
    };
    let result = watch_on(&mut client, run).await;
    sync::finish(client, &result).await;
    result
}

/// Why an IDLE ended.
#[derive(Debug, PartialEq, Eq)]
enum Wake {
    /// The server announced new messages.
    Mail,
    /// The time limit passed (keepalive or a full sync is due).
    Timer,
    /// `run.cancel` fired.
    Cancel,
}

async fn watch_on(client: &mut Client, run: &Run<'_>) -> Result<(), FetchError> {
    let opts = &run.account.options;
    let interval = opts.interval.max(Duration::from_secs(1));
    let idle = opts.idle && client.has("IDLE");
    let mut folders = Vec::new();
    let mut last_full: Option<Instant> = None;
    loop {
        let full = last_full.is_none_or(|t| t.elapsed() >= interval);
        let outcome = async {
            if full {
                folders = sync::folders(client, run).await?;
                // The watched folder last, so that it stays selected for IDLE.
                let main = watched(&folders);
                if let Some(i) = main {
                    let f = folders.remove(i);
                    folders.push(f);
                }
                sync::sync_folders(client, run, &folders).await
            } else {
                sync::sync_folders(client, run, &folders[folders.len().saturating_sub(1)..]).await
            }
        }
        .await;
        if full {
            last_full = Some(Instant::now());
        }
        run.progress.synced(run.account, &outcome);
        outcome?;
        if run.cancel.is_cancelled() {
            return Ok(());
        }
        if client.grew {
            continue; // mail arrived while we synced
        }
        let since_full = last_full.map_or(Duration::ZERO, |t| t.elapsed());
        if !idle || folders.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(interval.saturating_sub(since_full)) => continue,
                _ = run.cancel.cancelled() => return Ok(()),
            }
        }
        loop {
            let since_full = last_full.map_or(Duration::ZERO, |t| t.elapsed());
            let limit = interval.saturating_sub(since_full).min(IDLE_RENEW);
            match idle_once(client, run, limit).await? {
                Wake::Mail => break,
                Wake::Cancel => return Ok(()),
                Wake::Timer if since_full + limit >= interval => break,
                Wake::Timer => {} // keepalive: IDLE again
            }
        }
    }
}

/// The folder to IDLE on: the INBOX if fetched, else the first one.
fn watched(folders: &[sync::Folder]) -> Option<usize> {
    if folders.is_empty() {
        return None;
    }
    Some(folders.iter().position(|f| f.local.is_none()).unwrap_or(0))
}

/// RFC 2177 IDLE on the selected folder until new mail, `limit`, or cancel; then DONE.
async fn idle_once(
    client: &mut Client,
    run: &Run<'_>,
    limit: Duration,
) -> Result<Wake, FetchError> {
    let tag = client.tag();
    client.send(format!("{tag} IDLE\r\n").as_bytes()).await?;
    loop {
        match client.read().await? {
            Response::Continue(_) => break,
            Response::Untagged(_) => {}
            Response::Tagged(t, done) => {
                client.ok("IDLE", &done)?;
                return Err(FetchError::protocol(format!(
                    "{} ended IDLE (tag {t}) before accepting it: {done}",
                    client.url
                )));
            }
        }
    }
    let deadline = Instant::now() + limit;
    let wake = loop {
        if client.grew {
            break Wake::Mail;
        }
        tokio::select! {
            r = client.read_within(IDLE_READ_TIMEOUT) => match r? {
                Response::Untagged(_) | Response::Continue(_) => {}
                Response::Tagged(t, done) => {
                    return Err(FetchError::protocol(format!(
                        "{} ended IDLE by itself (tag {t}): {done}",
                        client.url
                    )));
                }
            },
            _ = tokio::time::sleep_until(deadline) => break Wake::Timer,
            _ = run.cancel.cancelled() => break Wake::Cancel,
        }
    };
    client.send(b"DONE\r\n").await?;
    let (_, done) = client.finish(&tag).await?;
    client.ok("IDLE", &done)?;
    Ok(wake)
}

/// The fuzz target `imap_response` (crates/fuzz-targets): the response reader on any bytes,
/// with the first octet choosing the literal limit, then folder-name decoding. Panics only
/// when an invariant breaks: a parsed response takes between 1 and all of the bytes, an
/// incomplete one asks for more than there is, a refused literal is over the limit, and
/// modified UTF-7 round-trips.
#[doc(hidden)]
pub fn fuzz_response(data: &[u8]) {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let limit = 1u64 << (mode % 40);
    while !rest.is_empty() {
        match response::parse(rest, limit) {
            Ok(response::Parsed::Done(r, n)) => {
                assert!(n > 0 && n <= rest.len(), "took {n} of {}", rest.len());
                if let Response::Untagged(response::Untagged::List(e)) = &r {
                    let name = mutf7::decode(&e.name);
                    assert_eq!(mutf7::decode(&mutf7::encode(&name)), name);
                }
                rest = &rest[n..];
            }
            Ok(response::Parsed::Incomplete(response::Incomplete::Bytes(n))) => {
                assert!(n > rest.len(), "asks for {n} with {} there", rest.len());
                return;
            }
            Ok(response::Parsed::Incomplete(response::Incomplete::Line(from))) => {
                assert!(from <= rest.len());
                return;
            }
            Err(_) => return,
        }
    }
}
