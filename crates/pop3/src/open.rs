//! Opening a maildrop: the INBOX snapshot with each message's size as the client receives it
//! (RFC 1939 §11: CRLF line ends), which the store keeps beside every message.

use crate::maildrop::{Entry, Maildrop};
use crate::Pop3Error;
use postern_store::Store;

/// The mailbox POP3 serves (RFC 1939 §1: the maildrop).
pub(crate) const MAILDROP: &str = "INBOX";

/// Opens the account's maildrop. A final line without a line end gets its CRLF from the
/// multi-line framing and is not counted, as Dovecot counts it.
pub(crate) async fn open_maildrop(store: &dyn Store, account: &str) -> Result<Maildrop, Pop3Error> {
    let snapshot = store.select(account, MAILDROP, false).await?;
    let entries = snapshot
        .messages
        .iter()
        .map(|m| Entry {
            uid: m.uid,
            size: m.wire_size,
            deleted: false,
        })
        .collect();
    Ok(Maildrop::new(snapshot.uidvalidity, entries))
}
