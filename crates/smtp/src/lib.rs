//! SMTP server sessions (RFC 5321): MX on port 25, submission on 587 and 465 (RFC 6409, RFC 8314).
//!
//! * [`parse`] — I/O-free command and address parsing.
//! * [`session`] — the I/O-free session state machine: policy (relay control, AUTH, limits), the
//!   envelope, the trace header.
//! * [`message`] — the DATA decoder (dot-stuffing, terminator, bare LF) and header helpers.
//! * [`SmtpServer`] — the async driver over a [`postern_net::Connection`], handing accepted mail to
//!   the [`postern_spool::Spool`] before answering `250`.

pub mod message;
pub mod parse;
mod reply;
mod server;
pub mod session;

pub use server::SmtpServer;
pub use session::{Outcome, Session, Settings, Step};

#[cfg(test)]
mod tests;
