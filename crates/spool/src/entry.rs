//! A queued message's durable state: the envelope and what happened to each recipient.

use crate::{Envelope, QueueId, Recipient};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One message in the queue, as stored in `env/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub id: QueueId,
    pub envelope: Envelope,
    /// Arrival time, Unix seconds.
    pub arrived: i64,
    /// Message size in bytes.
    pub size: u64,
    /// Per-recipient state: the envelope's recipients in order, then any added by alias
    /// expansion to remote addresses.
    pub recipients: Vec<RcptState>,
    /// Local accounts that already have a copy (duplicate suppression across recipients and
    /// across retries, when several addresses lead to one mailbox).
    #[serde(default)]
    pub delivered_accounts: BTreeSet<String>,
    /// Held by the admin: not attempted until released.
    #[serde(default)]
    pub held: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RcptState {
    pub recipient: Recipient,
    pub status: RcptStatus,
    pub attempts: u32,
    /// Unix seconds of the next attempt while `Pending`.
    pub next_attempt: i64,
    /// The last temporary or permanent error text.
    pub last_error: Option<String>,
    /// The address whose alias expansion added this recipient.
    #[serde(default)]
    pub expanded_from: Option<String>,
    /// A final DSN for this recipient was queued (or none is due): nothing more to report.
    #[serde(default)]
    pub reported: bool,
    /// A delay warning (RFC 3464 Action: delayed) was queued.
    #[serde(default)]
    pub delay_reported: bool,
    /// When the back-off had scheduled the next attempt before an admin asked for one now
    /// (`queue retry`): a failed early attempt goes back to that time instead of backing
    /// off further.
    #[serde(default)]
    pub scheduled: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RcptStatus {
    /// Not delivered yet (never tried, or deferred).
    Pending,
    /// Done, at this Unix time, with the transport's note.
    Delivered { at: i64, note: String },
    /// Failed permanently, at this Unix time; kept for the bounce.
    Failed { at: i64, reason: String },
}

impl RcptState {
    pub(crate) fn new(recipient: Recipient, now: i64, expanded_from: Option<String>) -> RcptState {
        RcptState {
            recipient,
            status: RcptStatus::Pending,
            attempts: 0,
            next_attempt: now,
            last_error: None,
            expanded_from,
            reported: false,
            delay_reported: false,
            scheduled: None,
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(self.status, RcptStatus::Pending)
    }
}

impl QueueEntry {
    /// The earliest next attempt among pending recipients, or `None` when nothing is pending.
    pub fn next_due(&self) -> Option<i64> {
        self.recipients
            .iter()
            .filter(|r| r.is_pending())
            .map(|r| r.next_attempt)
            .min()
    }

    /// Whether every recipient reached a final state.
    pub fn is_finished(&self) -> bool {
        self.recipients.iter().all(|r| !r.is_pending())
    }

    /// Whether every recipient reached a final state and has been reported on.
    pub fn is_done(&self) -> bool {
        self.recipients
            .iter()
            .all(|r| !r.is_pending() && r.reported)
    }

    /// Whether any recipient failed permanently.
    pub fn has_failures(&self) -> bool {
        self.recipients
            .iter()
            .any(|r| matches!(r.status, RcptStatus::Failed { .. }))
    }
}
