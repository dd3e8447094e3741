//! The outbound client's DATA writer against the SMTP server's DATA reader (RFC 5321 §4.5.2):
//! whatever postern sends, postern reads back as the same message. Here because this crate
//! depends on both `postern-outbound` and `postern-smtp`; the `smtp_data` fuzz target checks the
//! same on the fuzzer's inputs.

use postern_mail::wire::dot_stuff;
use postern_smtp::message::DataDecoder;
use proptest::prelude::*;

proptest! {
    #[test]
    fn the_server_reads_back_what_the_client_stuffs(
        message in proptest::collection::vec(
            prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), any::<u8>()], 0..200),
        piece in 1usize..16,
    ) {
        let wire = dot_stuff(&message);
        let mut d = DataDecoder::new(1 << 20);
        let mut end = None;
        for (i, chunk) in wire.chunks(piece).enumerate() {
            if let Some(n) = d.feed(chunk) {
                end = Some(i * piece + n);
                break;
            }
        }
        prop_assert_eq!(end, Some(wire.len()), "the end of data was found early or not at all");
        let mut canonical = Vec::new();
        let mut prev = 0u8;
        for &b in &message {
            if b == b'\n' && prev != b'\r' {
                canonical.push(b'\r');
            }
            canonical.push(b);
            prev = b;
        }
        if !message.is_empty() && prev != b'\n' {
            canonical.extend_from_slice(b"\r\n");
        }
        prop_assert_eq!(d.into_message(), canonical);
    }
}
