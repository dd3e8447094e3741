//! Store benchmarks: durable append throughput, opening a 100,000-message mailbox, and listing
//! its flags. Prints figures (medians); asserts nothing about time.
//!
//! Run: `cargo bench -p postern-store` (set `POSTERN_BENCH_DIR` to measure another disk).

use std::fs;
use std::time::{Duration, Instant};

use postern_store::maildir::MaildirStore;
use postern_store::{FlagOp, Flags, SystemFlags, UidSet};

const ACCT: &str = "bench@example.org";
const APPENDS: usize = 2000;
const BIG: u32 = 100_000;

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: bench@example.org\r\nTo: x@example.org\r\nSubject: message {i}\r\n\
         Message-ID: <{i}@bench>\r\n\r\n"
    )
    .into_bytes();
    while m.len() + 2 < size {
        m.extend_from_slice(b"lorem ipsum dolor sit amet, consectetur adipiscing elit sed do\r\n");
    }
    m.truncate(size - 2);
    m.extend_from_slice(b"\r\n");
    m
}

fn main() {
    let base = std::env::var_os("POSTERN_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(base).expect("tempdir");
    let store = MaildirStore::open(tmp.path(), "bench.host").expect("open store");
    store.create_account(ACCT).expect("account");
    println!("postern-store benchmark (root {})", tmp.path().display());

    // 1. Durable appends of 4 KB messages into one mailbox.
    let data = message(0, 4096);
    let mut lat = Vec::with_capacity(APPENDS);
    let t0 = Instant::now();
    for _ in 0..APPENDS {
        let t = Instant::now();
        store
            .append(ACCT, "INBOX", &data, &Flags::new(), None)
            .expect("append");
        lat.push(t.elapsed());
    }
    let total = t0.elapsed();
    println!(
        "append 4 KB durable: {APPENDS} messages in {:.2} s = {:.0} appends/s; latency median {}, p99 {}",
        total.as_secs_f64(),
        APPENDS as f64 / total.as_secs_f64(),
        ms(median(&mut lat)),
        ms(pct(&mut lat, 0.99)),
    );

    // 2. A 100,000-message mailbox: files written directly (as rsync or an import would),
    //    then indexed by the store's own sync.
    store.create_mailbox(ACCT, "Big", None).expect("create");
    let dir = store.account_dir(ACCT).expect("dir").join(".Big");
    let body = message(1, 600);
    let t = Instant::now();
    for uid in 1..=BIG {
        let info = match uid % 4 {
            0 => "2,",
            1 => "2,S",
            2 => "2,FS",
            _ => "2,RS",
        };
        let name = format!(
            "1700000000.M{uid}P1Q{uid}.bench.host,S={},U={uid}:{info}",
            body.len()
        );
        fs::write(dir.join("cur").join(name), &body).expect("write");
    }
    println!(
        "build: wrote {BIG} files in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    store.sync_mailbox(ACCT, "Big").expect("sync");
    println!(
        "build: indexed {BIG} messages (first sync, adopting ,U= uids) in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // Open after a change in the directory (full readdir + compare).
    let mut rescan = Vec::new();
    for i in 0..5 {
        let probe = dir.join("new").join(format!("probe{i}"));
        fs::write(&probe, b"x").expect("probe");
        fs::remove_file(&probe).expect("probe");
        let t = Instant::now();
        let snap = store.select(ACCT, "Big", false).expect("select");
        rescan.push(t.elapsed());
        assert_eq!(snap.messages.len(), BIG as usize);
    }
    // Directory mtimes are trusted only once they are 2 s old.
    std::thread::sleep(Duration::from_millis(2100));
    store.sync_mailbox(ACCT, "Big").expect("sync");

    let mut open = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let snap = store.select(ACCT, "Big", false).expect("select");
        open.push(t.elapsed());
        assert_eq!(snap.messages.len(), BIG as usize);
    }
    let mut status = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let st = store.status(ACCT, "Big").expect("status");
        status.push(t.elapsed());
        assert_eq!(st.messages, BIG);
    }
    let mut flags = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        let ch = store.changes_since(ACCT, "Big", 0).expect("changes");
        flags.push(t.elapsed());
        let seen = ch
            .changed
            .iter()
            .filter(|m| m.flags.has(SystemFlags::SEEN))
            .count();
        assert_eq!(seen, 75_000);
    }
    println!(
        "open 100k mailbox (sync check + SELECT snapshot), unchanged dirs: median {}",
        ms(median(&mut open))
    );
    println!(
        "open 100k mailbox after a directory change (full readdir): median {}",
        ms(median(&mut rescan))
    );
    println!("status 100k mailbox: median {}", ms(median(&mut status)));
    println!(
        "list all flags of 100k mailbox (changes since 0): median {}",
        ms(median(&mut flags))
    );

    // Flag change and expunge on the big mailbox.
    let mut store_lat = Vec::new();
    for i in 0..20u32 {
        let t = Instant::now();
        store
            .store_flags(
                ACCT,
                "Big",
                &UidSet::single(1000 + i),
                FlagOp::Add,
                &Flags::from_system(SystemFlags::FLAGGED),
                None,
            )
            .expect("store");
        store_lat.push(t.elapsed());
    }
    println!(
        "store flags on one message of the 100k mailbox (durable rename + index commit): median {}",
        ms(median(&mut store_lat))
    );
}
