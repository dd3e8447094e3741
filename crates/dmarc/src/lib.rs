//! DMARC aggregate reports (RFC 7489 §7.2): the daily reports this server sends to the
//! domains whose mail its MX evaluated, and the reports it receives for its own domains.
//!
//! * [`feedback`]: the report document (Appendix C) written with quick-xml and read back
//!   tolerantly (what real reporters send differs from the schema in small ways).
//! * [`extract`]: the report inside a message or a file (gzip, zip or plain XML).
//! * [`db`]: the tables of `data_dir/dmarc.db` beside the MX's evaluations.
//! * [`send`]: the reports of one UTC day: the policy looked up again, the §7.1 check of
//!   external destinations, the §7.2.1.1 message, the size limits, the spool.
//! * [`summary`]: what an administrator reads about the reports received.
//!
//! The writer is ours rather than mail-auth's `report` feature: mail-auth writes the DMARCbis
//! elements (`np`, `testing`, `discovery_method`) that the RFC 7489 schema refuses.

pub mod db;
pub mod extract;
pub mod feedback;
pub mod send;
pub mod summary;

/// Why a report could not be read, written, stored or sent, in plain words.
#[derive(Debug, thiserror::Error)]
pub enum DmarcError {
    /// The input is not a (readable) aggregate report.
    #[error("{0}")]
    Report(String),
    /// `dmarc.db` could not be opened, read or written.
    #[error("{0}")]
    Db(String),
    /// A DNS lookup failed.
    #[error("{0}")]
    Dns(String),
    /// The report could not be queued.
    #[error("{0}")]
    Queue(String),
}
