//! A Maildir moved between postern and Dovecot keeps its flags and keywords both ways: postern
//! writes keywords as Dovecot does (`dovecot-keywords` numbering, letters `a`-`z` in the `:2,`
//! info), so Dovecot serving a copy of postern's Maildir shows them, and postern re-indexing a
//! Maildir Dovecot changed shows Dovecot's. Dovecot (Debian `dovecot-imapd`, installed by
//! `./test.sh`) is started by `scripts/start-dovecot.sh` on a port of this test's choosing.

mod common;
use common::{login_args, python, Env};
use std::path::Path;
use std::process::Command;

const START_DOVECOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/start-dovecot.sh"
);
const USER: &str = "alice@example.org";
const PASS: &str = "secret-pw";

/// Logs in and prints `FLAGS` of every message, one line each, in order.
const LIST_FLAGS: &str = r#"
import imaplib, sys, re
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4])
m.select('INBOX')
typ, data = m.fetch('1:*', '(FLAGS)')
for d in data:
    flags = sorted(re.search(rb'FLAGS \(([^)]*)\)', d).group(1).decode().split())
    print(' '.join(f for f in flags if f != '\\Recent'))
m.logout()
"#;

/// Logs in and runs `STORE seq +FLAGS (flags)` for each `seq=flags` argument.
const ADD_FLAGS: &str = r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4])
m.select('INBOX')
for arg in sys.argv[5:]:
    seq, flags = arg.split('=')
    typ, data = m.store(seq, '+FLAGS', '(%s)' % flags)
    assert typ == 'OK', data
m.logout()
"#;

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Dovecot {
    dir: std::path::PathBuf,
    port: u16,
}

impl Dovecot {
    fn start(dir: &Path) -> Dovecot {
        let port = free_port();
        let out = Command::new("bash")
            .arg(START_DOVECOT)
            .arg(dir)
            .arg(port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "start-dovecot.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Dovecot {
            dir: dir.to_path_buf(),
            port,
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("run/master.pid")) {
            let pid = pid.trim();
            let _ = Command::new("kill").arg(pid).status();
            // The master exits once its children have: wait, so no Dovecot outlives the test.
            let proc_dir = Path::new("/proc").join(pid);
            for _ in 0..100 {
                if !proc_dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn keywords_survive_a_move_to_dovecot_and_back() {
    if !common::on_path("dovecot") {
        assert!(
            std::env::var_os("CI").is_none(),
            "dovecot is missing under CI (./test.sh installs dovecot-imapd)"
        );
        eprintln!("SKIPPED: dovecot is not installed (./test.sh installs dovecot-imapd)");
        return;
    }
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", USER], &format!("{PASS}\n"));
    let running = env.serve();
    let imap = running.addrs["imap"];
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v = login_args(imap, USER, PASS);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    python(
        "import imaplib,sys\nm=imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4])\nfor i in range(3): m.append('INBOX', None, None, b'Subject: m%d\\r\\n\\r\\nbody\\r\\n' % i)\nm.logout()",
        &args(&[]),
    );
    python(
        ADD_FLAGS,
        &args(&["1=$Label1 Work", "2=\\Flagged $Label1", "3=\\Seen"]),
    );
    let ours = python(LIST_FLAGS, &args(&[]));
    assert_eq!(ours, "$Label1 Work\n$Label1 \\Flagged\n\\Seen\n");
    drop(running);

    // postern's Maildir, served by Dovecot: the same flags and keywords.
    let peer = tempfile::tempdir().unwrap();
    // Dovecot's mail processes run as nobody when started as root: they must reach the Maildir.
    std::fs::set_permissions(
        peer.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let dovecot_dir = peer.path().join("dovecot");
    std::fs::create_dir_all(dovecot_dir.join("mail")).unwrap();
    copy_dir(&env.maildir(USER), &dovecot_dir.join("mail").join("alice"));
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    if String::from_utf8_lossy(&uid).trim() == "0" {
        let s = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(dovecot_dir.join("mail"))
            .status()
            .unwrap();
        assert!(s.success());
    }
    let dovecot = Dovecot::start(&dovecot_dir);
    let dargs = |extra: &[&str]| -> Vec<String> {
        let peer_addr = std::net::SocketAddr::from(([127, 0, 0, 1], dovecot.port));
        let mut v = login_args(peer_addr, "alice", "pass");
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    assert_eq!(
        python(LIST_FLAGS, &dargs(&[])),
        ours,
        "Dovecot reads our keywords"
    );

    // Dovecot adds keywords (a new one among them); postern takes the Maildir back.
    python(ADD_FLAGS, &dargs(&["3=$Dove Work", "2=\\Answered"]));
    let theirs = python(LIST_FLAGS, &dargs(&[]));
    assert_eq!(
        theirs,
        "$Label1 Work\n$Label1 \\Answered \\Flagged\n$Dove Work \\Seen\n"
    );
    drop(dovecot);
    let back = env.maildir(USER);
    std::fs::remove_dir_all(&back).unwrap();
    copy_dir(&dovecot_dir.join("mail").join("alice"), &back);
    // Copied with Dovecot's owner (nobody, when the tests run as root): serve would refuse a
    // tree others own, so the admin gives it back as the README says.
    env.ok(&["fix-permissions"], "");
    env.ok(&["reindex", USER], "");
    let running = env.serve();
    let imap = running.addrs["imap"];
    let again = python(LIST_FLAGS, &login_args(imap, USER, PASS));
    assert_eq!(again, theirs, "postern reads Dovecot's keywords");
}
