//! A queued message's durable state: the envelope and what happened to each recipient.

use crate::{Envelope, QueueId, Recipient};
use postern_mail::{EnhancedCode, Status};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;

/// One message in the queue, as stored in `env/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// The message's queue id (also its file name).
    pub id: QueueId,
    /// The SMTP envelope as accepted.
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

/// The delivery state of one recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RcptState {
    /// The recipient, with its DSN parameters.
    pub recipient: Recipient,
    /// Where its delivery stands.
    pub status: RcptStatus,
    /// Delivery attempts made so far for this recipient.
    pub attempts: u32,
    /// Unix seconds of the next attempt while `Pending`.
    pub next_attempt: i64,
    /// The last temporary or permanent error.
    #[serde(
        default,
        serialize_with = "stored::ser_opt",
        deserialize_with = "stored::temporary_opt"
    )]
    pub last_error: Option<Status>,
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

/// Where a recipient stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RcptStatus {
    /// Not delivered yet (never tried, or deferred).
    Pending,
    /// Done, at this Unix time, with the transport's note.
    Delivered {
        /// Unix seconds.
        at: i64,
        /// The transport's note (class 2).
        #[serde(serialize_with = "stored::ser", deserialize_with = "stored::success")]
        note: Status,
    },
    /// Failed permanently, at this Unix time; kept for the bounce.
    Failed {
        /// Unix seconds.
        at: i64,
        /// Why (class 5, or class 4 for a temporary failure that lasted too long).
        #[serde(serialize_with = "stored::ser", deserialize_with = "stored::permanent")]
        reason: Status,
    },
}

/// A [`Status`] on disk: `{"code":"5.1.1","text":"..."}`. Files written before statuses were
/// typed hold the text alone; its code is read out of it once, here, at load (or the class's
/// `x.0.0` when the text names none).
mod stored {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Typed {
        code: String,
        text: String,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Typed(Typed),
        Text(String),
    }

    impl Stored {
        fn into_status(self, default: EnhancedCode) -> Status {
            match self {
                Stored::Typed(t) => match t.code.parse() {
                    Ok(code) => Status::with_text(code, t.text),
                    Err(_) => Status::from_text(t.text, default),
                },
                Stored::Text(text) => Status::from_text(text, default),
            }
        }
    }

    pub(super) fn ser<S: Serializer>(status: &Status, s: S) -> Result<S::Ok, S::Error> {
        Typed {
            code: status.code.to_string(),
            text: status.text.clone(),
        }
        .serialize(s)
    }

    pub(super) fn ser_opt<S: Serializer>(status: &Option<Status>, s: S) -> Result<S::Ok, S::Error> {
        match status {
            Some(status) => s.serialize_some(&Typed {
                code: status.code.to_string(),
                text: status.text.clone(),
            }),
            None => s.serialize_none(),
        }
    }

    pub(super) fn success<'de, D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        Ok(Stored::deserialize(d)?.into_status(EnhancedCode::SUCCESS))
    }

    pub(super) fn permanent<'de, D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        Ok(Stored::deserialize(d)?.into_status(EnhancedCode::PERMANENT))
    }

    pub(super) fn temporary_opt<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Status>, D::Error> {
        Ok(Option::<Stored>::deserialize(d)?.map(|s| s.into_status(EnhancedCode::TEMPORARY)))
    }
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

    /// Whether the recipient still waits for delivery.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_written_as_text_by_older_versions_still_load() {
        let old = r#"{"recipient":{"address":"a@x.test","notify":{"success":false,"failure":true,"delay":true},"orcpt":null},
            "status":{"Failed":{"at":5,"reason":"mx [1.2.3.4] said: 550 5.1.1 no such user"}},
            "attempts":1,"next_attempt":0,"last_error":"connection refused"}"#;
        let r: RcptState = serde_json::from_str(old).unwrap();
        assert_eq!(
            r.status,
            RcptStatus::Failed {
                at: 5,
                reason: Status::with_text(
                    EnhancedCode::new(5, 1, 1),
                    "mx [1.2.3.4] said: 550 5.1.1 no such user"
                )
            }
        );
        assert_eq!(
            r.last_error,
            Some(Status::with_text(
                EnhancedCode::TEMPORARY,
                "connection refused"
            ))
        );
        let delivered: RcptStatus =
            serde_json::from_str(r#"{"Delivered":{"at":1,"note":"stored in a INBOX"}}"#).unwrap();
        assert!(
            matches!(delivered, RcptStatus::Delivered { note, .. } if note.code == EnhancedCode::SUCCESS)
        );
        // And the typed form round-trips.
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains(r#""reason":{"code":"5.1.1","text":"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<RcptState>(&json).unwrap(), r);
    }
}
