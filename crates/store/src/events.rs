//! In-process change notification: one `tokio::sync::broadcast` channel per open mailbox.
//!
//! Events are sent after the index transaction that caused them has committed, for changes made
//! through this process and for changes noticed by a sync (files changed by other programs or
//! other postern processes). A receiver that lags behind gets `RecvError::Lagged` and must
//! re-read the mailbox (e.g. with `changes_since`).
//!
//! Other processes (another postern, the admin CLI, procmail, mutt) cannot reach these
//! channels: their changes become events when this process next syncs the mailbox, so an IMAP
//! IDLE loop should call `Store::refresh` every few seconds besides waiting on its receiver.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::types::MailboxEvent;

/// Buffered events per mailbox channel.
pub const CHANNEL_CAPACITY: usize = 1024;

/// The channels of all mailboxes with at least one subscriber.
#[derive(Debug, Default)]
pub struct EventHub {
    channels: Mutex<HashMap<(String, String), broadcast::Sender<MailboxEvent>>>,
}

impl EventHub {
    /// Subscribes to a mailbox (canonical name) of an account.
    pub fn subscribe(&self, account: &str, mailbox: &str) -> broadcast::Receiver<MailboxEvent> {
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((account.to_owned(), mailbox.to_owned()))
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe()
    }

    /// How many sessions listen to a mailbox.
    pub fn listeners(&self, account: &str, mailbox: &str) -> usize {
        let map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(account.to_owned(), mailbox.to_owned()))
            .map_or(0, broadcast::Sender::receiver_count)
    }

    /// Sends events; channels nobody listens to any more are dropped.
    pub fn emit(&self, account: &str, events: Vec<(String, MailboxEvent)>) {
        if events.is_empty() {
            return;
        }
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        for (mailbox, ev) in events {
            let key = (account.to_owned(), mailbox);
            if let Some(tx) = map.get(&key) {
                if tx.send(ev).is_err() {
                    map.remove(&key);
                }
            }
        }
    }
}
