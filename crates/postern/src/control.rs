//! The admin's line to the running `serve`: a Unix socket, `data_dir/control.sock`. It is
//! created 0600 in the 0700 data directory, so only the server's user (and root) can use it.
//! One request per connection, one line each way:
//!
//! ```text
//! kick alice@example.org   ->   ok 2
//! ```

use postern_net::{CancellationToken, Sessions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const SOCKET: &str = "control.sock";
/// Longest request line.
const MAX_REQUEST: usize = 1024;

/// The socket's path in a data directory.
pub(crate) fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// Starts answering on `data_dir/control.sock` until `stop`. The caller holds the server
/// lock, so a socket file found there is a stale one and is replaced.
pub(crate) fn spawn(
    data_dir: &Path,
    sessions: Sessions,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let path = path_in(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("removing the stale {}: {e}", path.display()),
    }
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = stop.cancelled() => break,
                r = listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!("control socket: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let sessions = sessions.clone();
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), answer(stream, &sessions)).await;
            });
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(())
}

async fn answer(stream: tokio::net::UnixStream, sessions: &Sessions) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::io::AsyncReadExt::take(tokio::io::BufReader::new(read), MAX_REQUEST as u64)
        .read_line(&mut line)
        .await?;
    let reply = handle(line.trim_end(), sessions);
    write.write_all(format!("{reply}\n").as_bytes()).await
}

/// One request, one reply line.
fn handle(request: &str, sessions: &Sessions) -> String {
    match request.split_once(' ') {
        Some(("kick", address)) => match postern_directory::Address::parse(address.trim()) {
            Ok(a) => {
                let n = sessions.kick(&a.to_string());
                tracing::info!(account = %a, sessions = n, "sessions ended by the administrator");
                format!("ok {n}")
            }
            Err(e) => format!("error {e}"),
        },
        _ => "error unknown request".to_string(),
    }
}

/// Sends `request` to the running serve of `data_dir`. `Ok(None)` when no serve answers
/// (none runs, or it predates the socket).
pub(crate) fn request(data_dir: &Path, request: &str) -> anyhow::Result<Option<String>> {
    let path = path_in(data_dir);
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => anyhow::bail!("cannot reach serve through {}: {e}", path.display()),
    };
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(format!("{request}\n").as_bytes())?;
    let mut reply = String::new();
    std::io::BufReader::new(stream).read_line(&mut reply)?;
    let reply = reply.trim_end();
    match reply.strip_prefix("error ") {
        Some(e) => anyhow::bail!("serve refused {request:?}: {e}"),
        None => Ok(Some(reply.to_string())),
    }
}

/// Ends the open IMAP and POP3 sessions of `account` in the running serve, if one runs;
/// returns how many there were.
pub(crate) fn kick(data_dir: &Path, account: &str) -> anyhow::Result<Option<usize>> {
    Ok(match request(data_dir, &format!("kick {account}"))? {
        Some(reply) => Some(
            reply
                .strip_prefix("ok ")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("unexpected answer from serve: {reply:?}"))?,
        ),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let sessions = Sessions::default();
        let token = CancellationToken::new();
        let _r = sessions.register("alice@example.org", token.clone());
        assert_eq!(handle("kick Alice@Example.ORG", &sessions), "ok 1");
        assert!(token.is_cancelled());
        assert_eq!(handle("kick alice@example.org", &sessions), "ok 0");
        assert!(handle("kick not an address", &sessions).starts_with("error "));
        assert_eq!(handle("reboot", &sessions), "error unknown request");
    }
}
