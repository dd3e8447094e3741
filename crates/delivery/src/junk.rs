//! Junk filing: a message the MX's verdict marked `X-Postern-Verdict: junk` is stored in the
//! account's SPECIAL-USE `\Junk` mailbox (RFC 6154 §2) instead of INBOX, unless the account's
//! Sieve script decided where it goes (an explicit `keep` or `fileinto`; Sieve sees the field
//! and may test it). An account without a `\Junk` mailbox gets `Junk` created.

use postern_store::{SpecialUse, Store, StoreError};
use std::sync::Arc;

/// The field the verdict check writes.
const VERDICT_FIELD: &[u8] = b"x-postern-verdict";

/// Whether the header section of `message` holds `X-Postern-Verdict: junk...`.
pub(crate) fn is_junk(message: &[u8]) -> bool {
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return false;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(VERDICT_FIELD)
        {
            let value = line[colon + 1..].trim_ascii();
            return value.len() >= 4 && value[..4].eq_ignore_ascii_case(b"junk");
        }
    }
    false
}

/// The name of the account's `\Junk` mailbox, created as `Junk` when it has none.
pub(crate) async fn junk_mailbox(
    store: &Arc<dyn Store>,
    account: &str,
) -> Result<String, StoreError> {
    let boxes = store.list_mailboxes(account).await?;
    if let Some(b) = boxes
        .iter()
        .find(|b| b.special_use == Some(SpecialUse::Junk))
    {
        return Ok(b.name.clone());
    }
    if boxes.iter().any(|b| b.name == "Junk") {
        return Ok("Junk".into());
    }
    match store
        .create_mailbox(account, "Junk", Some(SpecialUse::Junk))
        .await
    {
        Ok(()) | Err(StoreError::MailboxExists(_)) => Ok("Junk".into()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_verdict_in_the_header_only() {
        assert!(is_junk(
            b"Received: x\r\nX-Postern-Verdict: junk; score=7.5\r\n\r\nbody"
        ));
        assert!(is_junk(b"x-postern-verdict:JUNK\n\n"));
        assert!(!is_junk(b"Subject: hi\r\n\r\nX-Postern-Verdict: junk\r\n"));
        assert!(!is_junk(b"X-Postern-Verdict: clean\r\n\r\n"));
    }
}
