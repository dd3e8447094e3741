//! Writes the spool journal seeds of the fuzz corpus with the spool's own writer (run by hand:
//! `cargo test -p postern-fuzz-targets --test seeds -- --ignored`), so the fuzzer starts from
//! segment files exactly as the server leaves them.

use std::fs;
use std::path::Path;

use postern_spool::{BodyType, Envelope, Recipient, Spool};

#[test]
#[ignore = "writes fuzz/corpus/spool_journal/seed-*; run by hand"]
fn write_spool_journal_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path().join("spool")).unwrap();
    let envelope = |sender: Option<&str>, rcpts: &[&str]| Envelope {
        sender: sender.map(str::to_string),
        recipients: rcpts.iter().map(|r| Recipient::new(*r)).collect(),
        ret: None,
        envid: Some("QQ314159".into()),
        body: BodyType::EightBitMime,
        smtputf8: false,
        requiretls: false,
        authenticated: Some("alice@example.org".into()),
        client_ip: Some([192, 0, 2, 7].into()),
        helo: Some("client.example.net".into()),
    };
    let a = spool
        .enqueue(
            &envelope(Some("bob@remote.test"), &["alice@example.org"]),
            b"Subject: one\r\n\r\nfirst message\r\n",
        )
        .unwrap();
    spool
        .enqueue(
            &envelope(None, &["alice@example.org", "x@remote.test"]),
            b"Subject: bounce\r\n\r\n",
        )
        .unwrap();
    spool.remove(&a).unwrap();
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/spool_journal");
    fs::create_dir_all(&out).unwrap();
    let journal = dir.path().join("spool/journal");
    let mut written = 0;
    for e in fs::read_dir(&journal).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("seg-") {
            continue;
        }
        let mut bytes = fs::read(&path).unwrap();
        // The preallocated rest of a segment is zeros: keep a little of it, not megabytes.
        let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        bytes.truncate(used + 16);
        if used == 0 {
            continue;
        }
        // The first octet of a seed is the target's mode: 0 reads the file as it is, 1 fixes CRCs.
        for mode in [0u8, 1] {
            let mut seed = vec![mode];
            seed.extend_from_slice(&bytes);
            fs::write(out.join(format!("seed-writer-{mode}-{written}")), seed).unwrap();
        }
        written += 1;
    }
    assert!(written > 0, "no journal segment in {}", journal.display());
}
