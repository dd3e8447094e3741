//! SMTP server sessions (RFC 5321): MX on port 25, submission on 587 and 465 (RFC 6409, RFC 8314).
//!
//! * [`parse`] — I/O-free command and address parsing.
//! * [`session`] — the I/O-free session state machine: policy (relay control, AUTH, limits), the
//!   envelope, the trace header.
//! * [`message`] — the DATA decoder (dot-stuffing, terminator, bare LF) and header helpers.
//! * [`check`] — policy hooks ([`Check`]) on the connect, MAIL, RCPT and DATA stages.
//! * [`sink`] — where accepted mail goes ([`Sink`]; [`SpoolSink`] for SMTP and sendmail).
//! * [`SmtpServer`] — the async driver over a [`postern_net::Connection`], answering the
//!   session's lookups and checks (`steps`) and handing accepted mail to its [`Sink`] before
//!   answering `250`.

pub mod check;
pub mod message;
pub mod parse;
mod reply;
mod server;
pub mod session;
pub mod sink;
pub mod steps;

pub use check::{Check, Checks, Context, Findings, Score, SessionFindings, Stage, Verdict};
pub use server::SmtpServer;
pub use session::{Answer, Lookup, Outcome, Session, Settings, SinkError, Step};
pub use sink::{Sink, SpoolSink};

#[cfg(test)]
mod tests;
