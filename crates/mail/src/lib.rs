//! Mail primitives every postern crate shares: RFC 5322 dates ([`date`]), the header section and
//! header folding ([`header`]), line ends, wire size and dot-stuffing ([`wire`]), RFC 3461 xtext
//! ([`xtext`]), and RFC 3463 enhanced status codes with the typed delivery [`Status`]
//! ([`status`]).
//!
//! Everything here is pure: bytes and strings in, bytes and strings out. This crate must never
//! depend on tokio, on any I/O (files, sockets, clocks: callers pass the time in), or on any other
//! postern crate; every other crate may depend on it.

pub mod date;
pub mod header;
pub mod status;
pub mod wire;
pub mod xtext;

pub use status::{EnhancedCode, Status};
