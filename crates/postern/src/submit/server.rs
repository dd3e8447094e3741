//! The server side in `serve`: `data_dir/public/submit.sock` and the maildrop scans.
//!
//! One request per connection. The first line names it:
//! * `SUBMIT` then a [`Request`]; the client half-closes after it. Answer: `ok QUEUEID` once
//!   the message is in the spool (fsynced), else `error EXITCODE TEXT`.
//! * `MAILQ`: the queue listing, for users who cannot read the spool.
//! * `PICKUP`: scan the maildrop now; answer `ok N` (messages queued).
//!
//! The caller's identity is the kernel's (SO_PEERCRED), never anything it sends.

use super::maildrop;
use super::request::{Request, MAX_HEAD};
use super::users::{by_uid, Identity};
use super::{Refusal, EX_DATAERR, EX_NOUSER, EX_SOFTWARE, EX_TEMPFAIL};
use postern_config::Config;
use postern_net::CancellationToken;
use postern_spool::{Envelope, Queue, QueueId, Spool};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// A client that takes longer than this for one request is cut off.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The log line of every locally submitted message.
pub(crate) fn log_queued(id: &QueueId, who: &Identity, env: &Envelope, size: usize, via: &str) {
    tracing::info!(
        queue_id = %id,
        uid = who.uid,
        user = %who.login,
        sender = env.sender.as_deref().unwrap_or("<>"),
        recipients = %env.recipients.iter().map(|r| r.address.as_str()).collect::<Vec<_>>().join(","),
        size,
        via,
        "message queued by local submission"
    );
}

fn chmod(path: &Path, mode: u32) -> anyhow::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| anyhow::anyhow!("chmod {mode:o} {}: {e}", path.display()))
}

/// Creates the public part of `data_dir` with its modes: `data_dir` 0711, `public/` 0711,
/// `public/maildrop/` 1733.
pub(crate) fn prepare_public(data_dir: &Path) -> anyhow::Result<()> {
    chmod(data_dir, 0o711)?;
    let public = super::public_dir(data_dir);
    let maildrop = super::maildrop_dir(data_dir);
    for (dir, mode) in [(&public, 0o711), (&maildrop, 0o1733)] {
        match std::fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => anyhow::bail!("creating {}: {e}", dir.display()),
        }
        chmod(dir, mode)?;
    }
    Ok(())
}

/// The queue listing `MAILQ` answers with: Postfix's mailq format, as `postern mailq` prints it.
fn mailq_listing(queue: &dyn Queue) -> String {
    crate::mailq::render(queue, std::time::SystemTime::now())
}

/// Starts the socket and the maildrop scans (at once, every `[sendmail]
/// pickup_interval_secs`, and on request) until `stop`. The caller holds the server lock, so a
/// socket file found there is stale.
pub(crate) fn spawn(
    config: Arc<Config>,
    spool: Arc<Spool>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let data_dir = &config.data_dir;
    prepare_public(data_dir)?;
    let path = super::socket_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("removing the stale {}: {e}", path.display()),
    }
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
    chmod(&path, 0o666)?;
    let wake = Arc::new(tokio::sync::Notify::new());

    // The maildrop scans: one at a time, on a blocking thread.
    {
        let config = config.clone();
        let spool = spool.clone();
        let wake = wake.clone();
        let stop = stop.clone();
        let interval = Duration::from_secs(config.sendmail.pickup_interval_secs);
        tokio::spawn(async move {
            loop {
                let c = config.clone();
                let q = spool.clone();
                match tokio::task::spawn_blocking(move || maildrop::pickup(&c, q.as_ref())).await {
                    Ok(scan) if scan != maildrop::Scan::default() => tracing::info!(
                        queued = scan.queued,
                        set_aside = scan.set_aside,
                        left = scan.left,
                        "maildrop scanned"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::error!("maildrop scan failed: {e}"),
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(interval) => {}
                    _ = wake.notified() => {}
                }
            }
        });
    }

    tracing::info!(
        "sendmail: accepting local submissions on {}",
        path.display()
    );
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = stop.cancelled() => break,
                r = listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!("submit socket: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let config = config.clone();
            let spool = spool.clone();
            let wake = wake.clone();
            tokio::spawn(async move {
                let r =
                    tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &config, spool, &wake))
                        .await;
                if let Ok(Err(e)) = r {
                    tracing::debug!("submit socket: {e}");
                }
            });
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(())
}

async fn answer(
    stream: tokio::net::UnixStream,
    config: &Arc<Config>,
    spool: Arc<Spool>,
    wake: &tokio::sync::Notify,
) -> std::io::Result<()> {
    let uid = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::new(read);
    let mut verb = Vec::new();
    (&mut read).take(16).read_until(b'\n', &mut verb).await?;
    let reply = match verb.as_slice() {
        b"SUBMIT\n" => {
            let limit = config.smtp.max_message_size + MAX_HEAD as u64;
            let mut data = Vec::new();
            (&mut read).take(limit + 1).read_to_end(&mut data).await?;
            if data.len() as u64 > limit {
                reply_line(Err(Refusal::new(
                    EX_DATAERR,
                    format!(
                        "the message is larger than {} octets (smtp.max_message_size)",
                        config.smtp.max_message_size
                    ),
                )))
            } else {
                let config = config.clone();
                match tokio::task::spawn_blocking(move || {
                    submit(&config, spool.as_ref(), uid, &data)
                })
                .await
                {
                    Ok(r) => reply_line(r),
                    Err(e) => reply_line(Err(Refusal::new(
                        EX_SOFTWARE,
                        format!("internal error: {e}"),
                    ))),
                }
            }
        }
        b"MAILQ\n" => {
            let q = spool.clone();
            tokio::task::spawn_blocking(move || mailq_listing(q.as_ref()))
                .await
                .unwrap_or_else(|e| format!("error {EX_SOFTWARE} internal error: {e}\n"))
        }
        b"PICKUP\n" => {
            wake.notify_one();
            "ok scanning\n".to_string()
        }
        _ => format!("error {} unknown request\n", super::EX_USAGE),
    };
    write.write_all(reply.as_bytes()).await?;
    write.shutdown().await
}

fn reply_line(r: Result<QueueId, Refusal>) -> String {
    match r {
        Ok(id) => format!("ok {id}\n"),
        Err(e) => format!("error {} {}\n", e.code, e.text.replace(['\r', '\n'], " ")),
    }
}

/// One `SUBMIT`: who the kernel says, the request, the policy, the spool (fsynced).
fn submit(config: &Config, queue: &dyn Queue, uid: u32, data: &[u8]) -> Result<QueueId, Refusal> {
    let req = Request::decode(data).map_err(|e| Refusal::new(EX_DATAERR, e.to_string()))?;
    let who = match by_uid(uid, !config.sendmail.trusted_groups.is_empty()) {
        Ok(Some(w)) => w,
        Ok(None) => {
            return Err(Refusal::new(
                EX_NOUSER,
                format!("uid {uid} has no login name in the user database"),
            ))
        }
        Err(e) => {
            return Err(Refusal::new(
                EX_TEMPFAIL,
                format!("looking up uid {uid}: {e}"),
            ))
        }
    };
    let id = QueueId::generate();
    let now = postern_smtp::message::now_unix();
    let (envelope, message) = match super::compose::prepare(config, &who, &req, &id, now) {
        Ok(x) => x,
        Err(r) => {
            tracing::info!(uid, user = %who.login, code = r.code, "local submission refused: {}", r.text);
            return Err(r);
        }
    };
    queue
        .enqueue_as(id.clone(), &envelope, &message)
        .map_err(|e| {
            tracing::error!("local submission: cannot spool the message: {e}");
            Refusal::new(
                EX_TEMPFAIL,
                "the mail queue cannot take the message now; try again later",
            )
        })?;
    log_queued(&id, &who, &envelope, message.len(), "socket");
    Ok(id)
}
