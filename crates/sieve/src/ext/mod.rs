//! Helpers for the Sieve extensions that look inside the message or build new ones: pure
//! functions over bytes and strings that the interpreter calls. Each module is one extension.

/// `body` (RFC 5173).
pub(crate) mod body;
/// `date` and `currentdate` (RFC 5260).
pub(crate) mod date;
/// `addheader` and `deleteheader` (RFC 5293).
pub(crate) mod editheader;
/// `encoded-character` (RFC 5228 §2.4.2.4).
pub(crate) mod encoded;
/// Header fields as the other modules write and read them (RFC 2047, RFC 5322 folding).
pub(crate) mod headers;
/// `enotify` with the `mailto:` method (RFC 5435, RFC 5436, RFC 6068).
pub(crate) mod mailto;
/// `vacation` (RFC 5230, RFC 3834).
pub(crate) mod vacation;
