//! Differential test of postern's IMAP against Dovecot: a generated corpus of awkward messages
//! (crates/imap/tests/corpus/gen.py) is appended to both servers, and every FETCH item
//! (ENVELOPE, BODYSTRUCTURE, each body section, BINARY) plus SEARCH, SORT and THREAD must
//! answer the same, except for the differences crates/imap/tests/corpus/accepted.txt lists
//! with their RFC reason (imap_diff.py). Dovecot comes from Debian (`dovecot-imapd`, which
//! ./test.sh installs) and runs privately through scripts/start-dovecot.sh.

mod common;
use common::{on_path, Env};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "alice@example.test";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The private Dovecot, stopped (SIGTERM to its master) when dropped.
struct Dovecot {
    dir: PathBuf,
}

impl Dovecot {
    fn start(dir: &Path, port: u16) -> Dovecot {
        let out = Command::new("bash")
            .arg(repo().join("scripts/start-dovecot.sh"))
            .arg(dir)
            .arg(port.to_string())
            .env("PATH", path_with_sbin())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "start-dovecot.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Dovecot {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let Ok(pid) = std::fs::read_to_string(self.dir.join("run/master.pid")) else {
            return;
        };
        let Ok(pid) = pid.trim().parse::<i32>() else {
            return;
        };
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) && unsafe { libc::kill(pid, 0) } == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn path_with_sbin() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{path}:/usr/sbin:/sbin")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a command with a deadline; returns (success, stdout + stderr).
fn run(cmd: &mut Command, limit: Duration) -> (bool, String) {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("command runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    match status {
        Some(s) => (s.success(), text),
        None => (false, format!("{text}\n(timed out after {limit:?})")),
    }
}

#[test]
fn fetch_search_sort_thread_match_dovecot() {
    if !on_path("dovecot") {
        assert!(
            std::env::var_os("CI").is_none(),
            "dovecot is not installed but CI is set: install dovecot-imapd (./test.sh does)"
        );
        eprintln!(
            "\n\n*** SKIPPED imap_dovecot_diff: dovecot is not installed \
             (apt-get install dovecot-imapd, or run ./test.sh) ***\n\n"
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    // Dovecot's mail processes run as nobody when we are root: they must reach their Maildir.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let corpus = work.path().join("corpus");
    let corpus_dir = repo().join("crates/imap/tests/corpus");
    let (ok, text) = run(
        Command::new("python3")
            .arg(corpus_dir.join("gen.py"))
            .arg(&corpus),
        Duration::from_secs(60),
    );
    assert!(ok, "gen.py failed: {text}");

    let port = free_port();
    let _dovecot = Dovecot::start(&work.path().join("dovecot"), port);

    let env = Env::new();
    env.ok(&["domain", "add", "example.test"], "");
    env.ok(&["user", "add", USER], "pass\n");
    let running = env.serve();
    let imap = running.addrs["imap"];

    let report = work.path().join("report.txt");
    let (ok, text) = run(
        Command::new("python3")
            .arg(corpus_dir.join("imap_diff.py"))
            .arg("--corpus")
            .arg(&corpus)
            .arg("--a")
            .arg(format!("{}:{}:{USER}:pass", imap.ip(), imap.port()))
            .arg("--b")
            .arg(format!("127.0.0.1:{port}:diff:pass"))
            .arg("--accepted")
            .arg(corpus_dir.join("accepted.txt"))
            .arg("--report")
            .arg(&report),
        Duration::from_secs(120),
    );
    eprintln!("{text}");
    assert!(
        ok,
        "postern and Dovecot differ beyond accepted.txt (full report: imap_diff.py --report):\n{text}"
    );
}
