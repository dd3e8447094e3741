//! Helpers for the Sieve extensions that look inside the message or build new ones: pure
//! functions over bytes and strings that the interpreter calls. Each module is one extension.

pub(crate) mod body;
pub(crate) mod date;
pub(crate) mod editheader;
pub(crate) mod encoded;
pub(crate) mod headers;
pub(crate) mod mailto;
pub(crate) mod vacation;
