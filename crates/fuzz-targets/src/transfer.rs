//! The readers of `postern import`: mbox files and Dovecot's Maildir lists.

use postern_transfer::maildir::{
    decode_mutf7, encode_mutf7, parse_info, parse_keywords, parse_uidlist,
};
use postern_transfer::mbox::{Item, MboxReader, MboxWriter, Variant};

/// Largest message the target lets the reader hold.
const MAX: u64 = 4096;

/// An mbox file read as every variant, and Dovecot's `dovecot-uidlist`, `dovecot-keywords`,
/// info parts and modified UTF-7 folder names read from the same bytes.
///
/// Checks: no panic; every message is within the size limit, else skipped; offsets ascend and
/// point at a `From ` line; a message read with mboxrd, written by the mboxrd writer and read
/// again comes back with the same bytes and flags (when it ends with a line end: mbox cannot
/// say that it does not); keywords are valid atoms; modified UTF-7 encoding decodes back.
pub fn mbox_file(data: &[u8]) {
    for variant in [
        Variant::Auto,
        Variant::Mboxo,
        Variant::Mboxrd,
        Variant::Mboxcl,
        Variant::Mboxcl2,
    ] {
        let mut r = MboxReader::new(data, variant, MAX);
        let mut last = None;
        let mut count = 0;
        while let Some(item) = r.next() {
            count += 1;
            assert!(count <= data.len() + 1, "more messages than bytes");
            let Ok(item) = item else { break };
            let offset = match &item {
                Item::Message { offset, .. } | Item::Skipped { offset, .. } => *offset,
            };
            assert!(last.is_none_or(|l| offset > l), "offsets ascend");
            assert!(data[offset as usize..].starts_with(b"From "));
            last = Some(offset);
            if let Item::Message { message, .. } = item {
                assert!(message.data.len() as u64 <= MAX);
                assert!(message
                    .flags
                    .keywords
                    .iter()
                    .all(|k| postern_transfer::valid_keyword(k)));
                if variant == Variant::Mboxrd && message.data.ends_with(b"\n") {
                    let mut w = MboxWriter::new(Vec::new());
                    w.write(&message).expect("writing to memory");
                    let file = w.into_inner();
                    let mut again = MboxReader::new(&file[..], Variant::Mboxrd, u64::MAX);
                    match again.next() {
                        Some(Ok(Item::Message { message: m2, .. })) => {
                            assert_eq!(m2.data, message.data, "mboxrd round trip");
                            assert_eq!(m2.flags, message.flags);
                        }
                        other => panic!("written message not read back: {other:?}"),
                    }
                }
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = parse_uidlist(&text);
    let letters = parse_keywords(&text);
    let flags = parse_info(Some(&text), &letters);
    assert!(flags
        .keywords
        .iter()
        .all(|k| postern_transfer::valid_keyword(k)));
    let decoded = decode_mutf7(&text);
    assert_eq!(decode_mutf7(&encode_mutf7(&decoded)), decoded);
}
