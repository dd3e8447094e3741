//! The durable queue. Every accepted message is written here (content and envelope, fsynced)
//! before the SMTP `250`; the [`QueueRunner`] then hands each recipient to a [`Transport`]
//! (local delivery, later the SMTP client), retries temporary failures with back-off, and keeps
//! permanent failures for the bounce that outbound delivery will send.
//!
//! On disk (`data_dir/spool/`): `journal/` holds messages in their first delivery attempt
//! (appended records, group-committed `fdatasync`); `q/<id>` is a classic queued message (its
//! initial envelope and recipient state as a JSON line, then the message exactly as it will be
//! delivered); `state/<id>` the later per-recipient state (JSON, replaced atomically); `tmp/`
//! holds files being written. A live journal entry or a `q/` file is what makes a message
//! queued. See the `spool` and `journal` modules for the details.

mod dirsync;
mod dsn;
mod entry;
mod envelope;
mod error;
mod id;
mod journal;
mod queue;
mod runner;
mod schedule;
mod spool;

pub use dsn::{
    compose as compose_dsn, envelope_for as dsn_envelope, Action, DsnItem, NOTE_DSN_PASSED_ON,
    NOTE_RELAYED,
};
pub use entry::{QueueEntry, RcptState, RcptStatus};
pub use envelope::{BodyType, Envelope, Notify, Recipient, Ret};
pub use error::SpoolError;
pub use id::QueueId;
/// The segment reader, for the fuzz target (`postern-fuzz-targets`); not an API.
#[doc(hidden)]
pub use journal::{read_segment, SegmentRead, SegmentRecord};
pub use queue::Queue;
pub use runner::{DsnSettings, Outcome, QueueRunner, RunnerSettings, Transport};
pub use schedule::RetrySchedule;
pub use spool::Spool;
