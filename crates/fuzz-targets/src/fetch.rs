//! Retrieval: the IMAP client's response reader.

/// IMAP server responses as the fetch client reads them (RFC 9051 §7, §9), through
/// [`postern_fetch::imap::fuzz_response`]: the first octet picks the literal limit, the rest
/// is a stream of responses. Checks: no panic; each parsed response takes between one octet
/// and what is there; an incomplete one asks for more than there is; LIST names survive a
/// modified UTF-7 round trip.
pub fn imap_response(data: &[u8]) {
    postern_fetch::imap::fuzz_response(data);
}
