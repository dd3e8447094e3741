//! Webhooks: a JSON document POSTed for each new message, signed so the receiver can tell it
//! came from this server and is not a replay.
//!
//! The request:
//! ```text
//! POST /path HTTP/1.1
//! Content-Type: application/json
//! User-Agent: postern/0.1.0
//! X-Postern-Event: new-mail
//! X-Postern-Delivery: 6f1c...            (the event id, the same on every retry)
//! X-Postern-Timestamp: 1764762000        (Unix seconds when this attempt was signed)
//! X-Postern-Signature: sha256=5d2a...
//!
//! {"id":"6f1c...","account":"alice@example.org","mailbox":"INBOX","uid":42,"size":1234,
//!  "sender":"bob@example.net","subject":"Hello","date":"2026-12-03T11:40:00Z"}
//! ```
//! `sender` is the envelope sender (`null` for the null sender `<>`), `subject` the decoded
//! Subject (`null` when there is none), `date` when the message was stored (RFC 3339, UTC).
//!
//! **Checking the signature** (as with GitHub's `X-Hub-Signature-256`, plus a timestamp): the
//! signature is the HMAC-SHA256, keyed with the contents of `secret_file` (its trailing
//! newline removed), of the timestamp header's value, a `.`, and the raw body bytes, written
//! as `sha256=` and 64 lower-case hex digits. A receiver recomputes it over the body exactly as
//! received and compares in constant time (Python: `hmac.compare_digest`). Because the
//! timestamp is covered, a captured request cannot be replayed later: reject requests whose
//! timestamp is more than 5 minutes from your clock, and remember the `id`s seen in that
//! window to reject a replay within it (a retry carries the same `id` with a new timestamp).
//!
//! An attempt fails on a network error, a timeout or a status other than 2xx. A 5xx, 408 or
//! 429 answer and a network error or timeout are retried (`retries` times, waiting 2 s, 4 s,
//! 8 s... up to 10 minutes between attempts; no slot is held while waiting); any other 4xx or
//! a 3xx is not (redirects are not followed).

use crate::{Event, NotifyError};
use hmac::{Hmac, KeyInit, Mac};
use postern_config::{NotifyWebhook, WebhookUrl};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

/// The first wait before a retry; doubled each time.
pub const BACKOFF: Duration = Duration::from_secs(2);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// One configured webhook.
pub struct WebhookHook {
    /// The URL as written, for the log.
    pub url: String,
    target: WebhookUrl,
    secret: Vec<u8>,
    /// The accounts it runs for (empty: all).
    pub accounts: Vec<String>,
    timeout: Duration,
    retries: u32,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl WebhookHook {
    /// From `[[notify.webhook]]` number `index`: reads the secret and the CA file.
    pub fn from_config(index: usize, w: &NotifyWebhook) -> Result<WebhookHook, NotifyError> {
        let key = format!("notify.webhook[{index}].secret_file");
        let mut secret =
            std::fs::read(&w.secret_file).map_err(|source| NotifyError::Unreadable {
                key: key.clone(),
                path: w.secret_file.clone(),
                source,
            })?;
        while secret.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
            secret.pop();
        }
        if secret.is_empty() {
            return Err(NotifyError::Bad {
                key,
                path: w.secret_file.clone(),
                reason: "the file is empty".into(),
            });
        }
        let tls = if w.target.tls {
            Some(
                crate::http::tls_config(w.ca_file.as_deref()).map_err(|reason| {
                    NotifyError::Bad {
                        key: format!("notify.webhook[{index}].ca_file"),
                        path: w.ca_file.clone().unwrap_or_default(),
                        reason,
                    }
                })?,
            )
        } else {
            None
        };
        Ok(WebhookHook {
            url: w.url.clone(),
            target: w.target.clone(),
            secret,
            accounts: w.accounts.clone(),
            timeout: Duration::from_secs(w.timeout_secs),
            retries: w.retries,
            tls,
        })
    }

    /// Delivers `event`, each attempt holding one of `slots`, with `backoff` before the first
    /// retry. `Ok` with the answer's status, else the last failure.
    pub async fn deliver(
        &self,
        event: &Event,
        slots: &tokio::sync::Semaphore,
        backoff: Duration,
    ) -> Result<String, String> {
        let body = payload(event);
        let mut wait = backoff;
        let mut attempt = 0;
        loop {
            let result = {
                let Ok(_slot) = slots.acquire().await else {
                    return Err("shutting down".into());
                };
                self.attempt(event, &body).await
            };
            let (reason, retry) = match result {
                Ok(r) if (200..300).contains(&r.status) => {
                    return Ok(format!("{} {}", r.status, r.reason));
                }
                Ok(r) => (
                    format!("{} {}{}", r.status, r.reason, body_note(&r.body)),
                    r.status >= 500 || r.status == 408 || r.status == 429,
                ),
                Err(e) => (e.to_string(), true),
            };
            if !retry || attempt >= self.retries {
                let tries = if attempt == 0 {
                    String::new()
                } else {
                    format!(" (after {} attempts)", attempt + 1)
                };
                return Err(format!("{reason}{tries}"));
            }
            tracing::debug!(url = %self.url, "notify: webhook attempt {} failed: {reason}; retrying in {} s", attempt + 1, wait.as_secs_f32());
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        event: &Event,
        body: &[u8],
    ) -> Result<crate::http::Response, crate::http::HttpError> {
        let timestamp = crate::unix_now().to_string();
        let headers = [
            ("Content-Type", "application/json".to_string()),
            (
                "User-Agent",
                format!("postern/{}", env!("CARGO_PKG_VERSION")),
            ),
            ("X-Postern-Event", "new-mail".to_string()),
            ("X-Postern-Delivery", event.id.clone()),
            (
                "X-Postern-Signature",
                signature(&self.secret, &timestamp, body),
            ),
            ("X-Postern-Timestamp", timestamp),
        ];
        crate::http::post(
            &self.target,
            self.tls.as_ref(),
            &headers,
            body,
            self.timeout,
        )
        .await
    }
}

fn body_note(body: &str) -> String {
    let line = body.lines().map(str::trim).find(|l| !l.is_empty());
    match line {
        Some(l) => format!(
            ": {}",
            l.chars()
                .take(200)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
        ),
        None => String::new(),
    }
}

/// The JSON document for `event`.
pub fn payload(event: &Event) -> Vec<u8> {
    let m = &event.mail;
    let doc = serde_json::json!({
        "id": event.id,
        "account": m.account,
        "mailbox": m.mailbox,
        "uid": m.uid,
        "size": m.size,
        "sender": m.sender,
        "subject": m.subject,
        "date": rfc3339(event.date),
    });
    doc.to_string().into_bytes()
}

/// `sha256=` and the hex HMAC-SHA256 under `secret` of `timestamp`, `.`, `body`.
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .expect("HMAC takes keys of any length (RFC 2104 §3)");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", crate::hex(&mac.finalize().into_bytes()))
}

/// RFC 3339 §5.6 `date-time` in UTC (`2026-12-03T11:40:00Z`).
pub fn rfc3339(unix: i64) -> String {
    let c = postern_mail::date::civil_utc(unix);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests;
