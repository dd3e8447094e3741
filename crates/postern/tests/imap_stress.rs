//! IMAP under concurrent load, every response checked: `scripts/imap-stress.py` runs ten clients
//! over two accounts (so several sessions share each mailbox) against the real `postern serve` for
//! a few seconds — SELECT/EXAMINE, FETCH, STORE, EXPUNGE, APPEND, IDLE, STATUS, ENABLE CONDSTORE,
//! LOGOUT/LOGIN — and checks the RFC 3501 invariants on every response: message numbers within the
//! session's count, EXISTS never shrinking, \Recent in one session only, keywords announced by
//! `* FLAGS` before use, no NO for messages the session still sees, UIDs and MODSEQs in order.
//! Any violation fails the test, with the checker's report. `IMAP_STRESS_SEED` replays a seed.

mod common;
use common::Env;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/imap-stress.py");

/// Runs `python3 SCRIPT ARGS` with its output in a file (no pipe to fill up); kills it after `limit`.
fn run_script(env: &Env, args: &[String], limit: Duration) -> (Option<ExitStatus>, String) {
    let path = env.dir.path().join("imap-stress.out");
    let out = std::fs::File::create(&path).unwrap();
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("python3 runs");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, std::fs::read_to_string(&path).unwrap_or_default())
}

#[test]
fn checker_catches_scripted_violations() {
    let env = Env::new();
    let (status, out) = run_script(&env, &["--self-test".into()], Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "imap-stress.py --self-test failed:\n{out}"
    );
}

#[test]
fn concurrent_clients_keep_every_invariant() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.test"], "");
    let users = ["alice@example.test", "bob@example.test"];
    for user in users {
        env.ok(&["user", "add", user], "pass\n");
    }
    let running = env.serve();
    let seed = std::env::var("IMAP_STRESS_SEED").unwrap_or_else(|_| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        (t.as_micros() % 1_000_000).to_string()
    });
    let mut args = vec![running.addrs["imap"].to_string()];
    for user in users {
        args.extend(["--user".to_string(), user.to_string()]);
    }
    for (k, v) in [
        ("--password", "pass"),
        ("--clients", "10"),
        ("--seconds", "8"),
        ("--mailboxes", "3"),
        ("--seed", seed.as_str()),
        ("--timeout", "30"),
        ("--context", "12"),
        ("--show", "30"),
    ] {
        args.extend([k.to_string(), v.to_string()]);
    }
    let (status, out) = run_script(&env, &args, Duration::from_secs(240));
    drop(running);
    let status = status.unwrap_or_else(|| panic!("imap-stress did not finish in time:\n{out}"));
    assert!(
        status.success(),
        "imap-stress (IMAP_STRESS_SEED={seed}) found protocol violations or failed:\n{out}"
    );
    assert!(
        out.lines()
            .last()
            .is_some_and(|l| l.starts_with("imap-stress: ") && l.ends_with(" 0 violations")),
        "unexpected imap-stress output:\n{out}"
    );
}
