//! POP3 retrieval (RFC 1939): the client ([`client`]: greeting, CAPA, STLS, APOP / AUTH PLAIN /
//! USER-PASS, UIDL, LIST, pipelined RETR, DELE, QUIT) and the sync of an account's INBOX
//! ([`sync()`]).
//!
//! Messages are identified by their UIDL (the state's ids); a server without UIDL is fetched
//! only by an account that deletes what it fetches. Deletions are sent after the messages are
//! delivered and recorded, and confirmed by QUIT's `+OK` (RFC 1939 §6).

mod client;
mod sync;
#[cfg(test)]
mod tests;

pub use sync::sync;
