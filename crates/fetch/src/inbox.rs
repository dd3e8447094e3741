//! Where fetched messages go: the binary's local delivery, behind the [`Inbox`] trait.

use crate::account::FetchAccount;
use async_trait::async_trait;
use sha2::{Digest, Sha256};

/// One message read from the remote.
#[derive(Debug)]
pub struct FetchedMessage<'a> {
    /// The remote account it came from.
    pub account: &'a FetchAccount,
    /// The remote folder (`INBOX` for POP3).
    pub remote_folder: &'a str,
    /// `None`: local delivery to the account (aliases, Sieve, INBOX), as SMTP mail gets. Used
    /// for the remote INBOX. `Some(name)`: stored straight into that local folder (created if
    /// missing) with `flags`, for the other remote folders the user filed mail into already.
    pub local_folder: Option<&'a str>,
    /// Identifies the remote message ([`delivery_key`]): local delivery stores a key once.
    pub key: String,
    /// The message exactly as the remote served it, lines ending in CRLF.
    pub raw: Vec<u8>,
    /// The remote IMAP flags (system flags with their backslash, keywords as they are); kept
    /// for messages stored into a folder (`local_folder`), ignored by local delivery.
    pub flags: Vec<String>,
}

/// A message that local delivery refused for good (no such recipient, Sieve `reject`). It
/// stays on the remote, untouched, and is recorded so that it is not fetched again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalRefusal(pub String);

/// What became of a delivered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivered {
    /// Stored (or forwarded): durable.
    Stored,
    /// Its key was stored before (a resumed run): nothing was added.
    Duplicate,
    /// Refused for good; see [`LocalRefusal`].
    Refused(LocalRefusal),
}

/// Local delivery as fetch sees it.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Delivers one message; returns once the outcome is durable (fsynced). An `Err` is a
    /// temporary failure (disk, quota, a forward that could not be queued): the run stops and
    /// the message is fetched again next time.
    async fn deliver(&self, message: FetchedMessage<'_>) -> Result<Delivered, crate::FetchError>;
}

/// The delivery key of a remote message: the same remote message always gets the same key, and
/// two different ones never do. `remote_id` is the POP3 UIDL or the IMAP UID; `uidvalidity`
/// is 0 for POP3. At most 64 letters and digits, as [`Inbox`] implementations require.
pub fn delivery_key(account_id: &str, folder: &str, uidvalidity: u32, remote_id: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        account_id.as_bytes(),
        folder.as_bytes(),
        remote_id.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(uidvalidity.to_be_bytes());
    let digest = h.finalize();
    let mut key = String::from("fetch-");
    for b in &digest[..20] {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_distinct_and_short() {
        let a = delivery_key("7", "INBOX", 0, "00000001abc");
        assert_eq!(a, delivery_key("7", "INBOX", 0, "00000001abc"));
        assert_ne!(a, delivery_key("8", "INBOX", 0, "00000001abc"));
        assert_ne!(a, delivery_key("7", "INBOX", 1, "00000001abc"));
        assert_ne!(
            delivery_key("7", "ab", 0, "c"),
            delivery_key("7", "a", 0, "bc")
        );
        assert!(a.len() <= 64 && a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
}
