//! The spool journal reader: the bytes of a segment file as found on disk after a crash.

use postern_spool::{read_segment, SegmentRecord};

const MAGIC: &[u8; 4] = b"PJ1\0";
const HEADER: usize = 13;

/// A record as the journal's writer lays it out (see `crates/spool/src/journal.rs`): magic,
/// kind, payload length and CRC-32 (little-endian), payload.
pub(crate) fn record(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(HEADER + payload.len());
    r.extend_from_slice(MAGIC);
    r.push(kind);
    r.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    r.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    r.extend_from_slice(payload);
    r
}

/// Rewrites the CRC of every record-shaped block, so the fuzzer can explore what lies behind the
/// checksum (the JSON of entries, queue ids) without having to find CRCs.
fn fix_crcs(buf: &mut [u8]) {
    let mut at = 0;
    while at + HEADER <= buf.len() && &buf[at..at + 4] == MAGIC {
        let len = u32::from_le_bytes([buf[at + 5], buf[at + 6], buf[at + 7], buf[at + 8]]) as usize;
        let start = at + HEADER;
        let Some(end) = start.checked_add(len).filter(|&e| e <= buf.len()) else {
            return;
        };
        let crc = crc32fast::hash(&buf[start..end]);
        buf[at + 9..at + 13].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

/// One spool journal segment file (`journal/seg-*`) through the reader recovery uses
/// ([`postern_spool::read_segment`]): records of magic, kind, length, CRC and payload; entry
/// payloads of a JSON queue entry and the message; done payloads of a queue id.
///
/// Input: the first octet's low bit asks for the CRC of every record-shaped block to be fixed
/// first (to get past the checksum); the rest is the file. Checks: no panic; the valid part ends
/// within the file, and the file is "torn" exactly when a non-zero octet follows it; every
/// entry's message lies within the valid part and its id is the entry's own; the valid part
/// alone, or followed by zeros (the preallocated rest of a segment), reads the same and is not
/// torn; each entry, written again as the writer writes it, reads back with the same id, entry
/// and message.
pub fn spool_journal(data: &[u8]) {
    let Some((&mode, file)) = data.split_first() else {
        return;
    };
    let mut buf = file.to_vec();
    if mode & 1 != 0 {
        fix_crcs(&mut buf);
    }
    let read = read_segment(&buf);
    assert!(read.end <= buf.len());
    assert_eq!(read.torn, buf[read.end..].iter().any(|&b| b != 0));
    assert!(read.records.len() <= read.end / HEADER);
    for r in &read.records {
        if let SegmentRecord::Entry { id, entry, message } = r {
            assert!(message.start <= message.end && message.end <= read.end);
            assert_eq!(&entry.id, id);
        }
    }
    let mut valid = buf[..read.end].to_vec();
    let again = read_segment(&valid);
    assert_eq!((again.end, again.torn), (read.end, false));
    assert_eq!(again.records.len(), read.records.len());
    valid.extend_from_slice(&[0; 64]);
    let padded = read_segment(&valid);
    assert_eq!((padded.end, padded.torn), (read.end, false));
    assert_eq!(padded.records.len(), read.records.len());
    for r in &read.records {
        let SegmentRecord::Entry { id, entry, message } = r else {
            continue;
        };
        let json = serde_json::to_vec(entry).expect("a queue entry serialises");
        let mut payload = u32::try_from(json.len())
            .expect("small JSON")
            .to_le_bytes()
            .to_vec();
        payload.extend_from_slice(&json);
        payload.extend_from_slice(&buf[message.clone()]);
        let rec = record(b'E', &payload);
        let back = read_segment(&rec);
        match back.records.as_slice() {
            [SegmentRecord::Entry {
                id: id2,
                entry: entry2,
                message: m2,
            }] => {
                assert_eq!(id2, id);
                assert_eq!(entry2, entry);
                assert_eq!(&rec[m2.clone()], &buf[message.clone()]);
            }
            other => panic!("a rewritten entry reads back as {other:?}"),
        }
    }
}
