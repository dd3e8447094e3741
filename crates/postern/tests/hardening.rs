//! Issue #11 as a Unix administrator checks it: private data at rest whatever the umask,
//! one server per data directory, and root dropped after binding.

mod common;

use common::{python, Env};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Sends one message over SMTP and reads it back over IMAP (Python's smtplib and imaplib).
const MAIL_FLOWS: &str = r#"
import imaplib, smtplib, sys
host, smtp_port, imap_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with smtplib.SMTP(host, smtp_port) as s:
    s.sendmail("someone@remote.example", ["alice@example.org"],
               "From: someone@remote.example\r\nTo: alice@example.org\r\nSubject: private\r\n\r\nbody\r\n")
m = imaplib.IMAP4(host, imap_port)
m.login("alice@example.org", "alice-pw")
typ, data = m.select("INBOX")
assert typ == "OK" and data[0] == b"1", data
typ, data = m.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)])")
assert b"private" in data[0][1], data
m.logout()
print("ok")
"#;

fn mail_flows(run: &common::Running) {
    let out = python(
        MAIL_FLOWS,
        &[
            run.addrs["smtp"].ip().to_string(),
            run.addrs["smtp"].port().to_string(),
            run.addrs["imap"].port().to_string(),
        ],
    );
    assert_eq!(out.trim(), "ok");
}

/// Every path under `root` with its mode, without following symlinks.
fn walk(root: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        out.push((p, meta));
    }
    out
}

fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask only changes this process's creation mask (inherited by children).
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

fn setup_alice(env: &Env) {
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "alice-pw\n");
}

#[test]
fn nothing_in_data_dir_is_readable_by_others_with_umask_022() {
    let old = set_umask(0o022);
    let env = Env::new();
    setup_alice(&env);
    let run = env.serve();
    mail_flows(&run);
    drop(run);
    set_umask(old);

    let data = env.data();
    let cert = data.join("tls/cert.pem");
    // The sendmail part local users reach, exactly so (see crate::submit).
    let public = [
        (data.clone(), 0o711),
        (data.join("public"), 0o711),
        (data.join("public/maildrop"), 0o1733),
        (data.join("public/submit.sock"), 0o666),
    ];
    let mut seen = 0;
    for (path, meta) in walk(&data) {
        seen += 1;
        if path == cert {
            continue;
        }
        if let Some((_, mode)) = public.iter().find(|(p, _)| *p == path) {
            assert_eq!(meta.mode() & 0o7777, *mode, "{}", path.display());
            continue;
        }
        assert_eq!(
            meta.mode() & 0o077,
            0,
            "{} is mode {:o}",
            path.display(),
            meta.mode() & 0o7777
        );
    }
    assert!(seen > 20, "the walk saw the whole tree ({seen} paths)");
    let maildir = env.maildir("alice@example.org");
    assert!(
        std::fs::read_dir(maildir.join("new"))
            .unwrap()
            .chain(std::fs::read_dir(maildir.join("cur")).unwrap())
            .count()
            >= 1
    );

    // check-config is quiet about a private tree, and names what others can read.
    let out = env.run(&["check-config"], "");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("can be read"), "{stderr}");
    let db = data.join("directory.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = String::from_utf8(env.run(&["check-config"], "").stderr).unwrap();
    assert!(
        stderr.contains(&format!("{} (mode 0644) can be read", db.display())),
        "{stderr}"
    );
    assert!(stderr.contains("postern fix-permissions"), "{stderr}");

    // A data directory others can write is refused at start, with the path and the fix.
    let mail = data.join("mail");
    std::fs::set_permissions(&mail, std::fs::Permissions::from_mode(0o777)).unwrap();
    let stderr = env.fails(&["serve"], "");
    assert!(
        stderr.contains(&format!("{} (mode 0777) can be written", mail.display())),
        "{stderr}"
    );
    assert!(stderr.contains("fix-permissions"), "{stderr}");

    let out = env.ok(&["fix-permissions"], "");
    assert!(out.contains("2 mode(s)"), "{out}");
    assert_eq!(std::fs::metadata(&db).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&mail).unwrap().mode() & 0o777, 0o700);
    let stderr = String::from_utf8(env.run(&["check-config"], "").stderr).unwrap();
    assert!(!stderr.contains("can be"), "{stderr}");
    let _run = env.serve();
}

#[test]
fn a_second_serve_on_the_same_data_dir_is_refused_and_names_the_first() {
    let env = Env::new();
    let first = env.serve();
    let stderr = env.fails(&["serve"], "");
    assert!(
        stderr.contains(&format!(
            "another postern serve (pid {}) is already running",
            first.child.id()
        )),
        "{stderr}"
    );
    // Admin commands keep working beside it.
    env.ok(&["domain", "add", "example.org"], "");
}

/// A throwaway system user, removed when dropped.
struct TempUser {
    name: String,
}

impl TempUser {
    fn create() -> TempUser {
        let name = format!("pt{}", std::process::id());
        let ok = std::process::Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group"])
            .args(["--shell", "/usr/sbin/nologin", &name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "useradd {name}");
        TempUser { name }
    }

    fn ids(&self) -> (u32, u32) {
        let out = std::process::Command::new("id")
            .args(["-u", &self.name])
            .output()
            .unwrap();
        let uid = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let out = std::process::Command::new("id")
            .args(["-g", &self.name])
            .output()
            .unwrap();
        let gid = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        (uid, gid)
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = std::process::Command::new("userdel")
            .arg(&self.name)
            .status();
    }
}

fn status_line(pid: u32, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn started_as_root_it_binds_then_runs_as_the_configured_user() {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 || !common::on_path("useradd") {
        eprintln!("skipped: needs root and useradd to create a throwaway user");
        return;
    }
    let user = TempUser::create();
    let (uid, gid) = user.ids();
    let env = Env::with_config(&format!("[server]\nuser = \"{}\"\n", user.name));
    // The test's own directory must be traversable by the unprivileged user.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    // Run as root, the admin commands become the server's user too.
    setup_alice(&env);
    let run = env.serve();
    let pid = run.child.id();
    let ids = |key| {
        status_line(pid, key)
            .split_whitespace()
            .map(|s| s.parse::<u32>().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("Uid:"), [uid; 4], "real, effective, saved, fs uid");
    assert_eq!(ids("Gid:"), [gid; 4], "real, effective, saved, fs gid");
    assert_eq!(status_line(pid, "Groups:"), "", "no supplementary groups");
    assert_eq!(status_line(pid, "CapEff:"), "0000000000000000");

    mail_flows(&run);
    for (path, meta) in walk(&env.data()) {
        assert_eq!(meta.uid(), uid, "{} belongs to the user", path.display());
    }
    drop(run);

    // A data directory that belongs to someone else is refused, with the fix.
    std::os::unix::fs::chown(env.data(), Some(0), Some(0)).unwrap();
    let stderr = env.fails(&["serve"], "");
    assert!(stderr.contains("belongs to uid 0"), "{stderr}");
    env.ok(&["fix-permissions"], "");
    assert_eq!(std::fs::metadata(env.data()).unwrap().uid(), uid);

    // An unknown user is a clear error.
    let env = Env::with_config("[server]\nuser = \"no-such-postern-user\"\n");
    let stderr = env.fails(&["serve"], "");
    assert!(
        stderr.contains("there is no user \"no-such-postern-user\""),
        "{stderr}"
    );
}

/// Fails LOGIN until the account is blocked for this client, then tries the right password
/// on every other path: each must be refused as throttled, as the one gate decides.
const EVERY_PATH_THROTTLED: &str = r#"
import base64, imaplib, poplib, smtplib, sys
host, imap_port, pop3_port, sub_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
user, pw = "alice@example.org", "alice-pw"
m = imaplib.IMAP4(host, imap_port)
for i in range(3):
    try:
        m.login(user, "wrong")
        raise SystemExit("a wrong password logged in")
    except imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e), e
m.logout()

def imap_refused(f):
    m = imaplib.IMAP4(host, imap_port)
    try:
        f(m)
        raise SystemExit("a throttled login succeeded")
    except imaplib.IMAP4.error as e:
        assert "UNAVAILABLE" in str(e), e
    m.logout()

imap_refused(lambda m: m.login(user, pw))
imap_refused(lambda m: m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (user, pw)).encode()))

def pop_refused(lines):
    p = poplib.POP3(host, pop3_port)
    try:
        for l in lines:
            p._shortcmd(l)
        raise SystemExit("a throttled POP3 login succeeded")
    except poplib.error_proto as e:
        assert "SYS/TEMP" in str(e), e
    p.quit()

pop_refused(["USER " + user, "PASS " + pw])
plain = base64.b64encode(("\0%s\0%s" % (user, pw)).encode()).decode()
pop_refused(["AUTH PLAIN " + plain])

s = smtplib.SMTP(host, sub_port)
s.ehlo("client.test")
code, msg = s.docmd("AUTH", "PLAIN " + plain)
assert code == 454 and b"4.7.0" in msg, (code, msg)
s.quit()
print("ok")
"#;

#[test]
fn every_login_path_shares_one_throttle_and_logs_each_failure() {
    let env = Env::with_config("[auth]\nmax_failures = 3\n");
    setup_alice(&env);
    let run = env.serve();
    let out = python(
        EVERY_PATH_THROTTLED,
        &[
            run.addrs["imap"].ip().to_string(),
            run.addrs["imap"].port().to_string(),
            run.addrs["pop3"].port().to_string(),
            run.addrs["submission"].port().to_string(),
        ],
    );
    assert_eq!(out.trim(), "ok");
    // The log reader thread may be a line or two behind the client.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log: Vec<String> = run.log.try_iter().collect();
    let failures = log
        .iter()
        .filter(|l| {
            l.contains("authentication failed")
                && l.contains("protocol=\"imap\"")
                && l.contains("client=127.0.0.1")
                && l.contains("login=\"alice@example.org\"")
        })
        .count();
    assert_eq!(failures, 3, "{log:#?}");
    // A new account's first login is no news in the log.
    assert!(!log.iter().any(|l| l.contains("found on disk")), "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l.contains("refused by the failure throttle")
                && l.contains("protocol=\"smtp\"")),
        "{log:#?}"
    );
}

/// One handshake with `openssl s_client`, limited to `version`; returns its report.
fn handshake(addr: std::net::SocketAddr, version: &str) -> String {
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), version])
        // Let the client offer old versions at all, so that the server is what refuses.
        .args(["-cipher", "DEFAULT@SECLEVEL=0"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn tls_below_1_2_is_refused() {
    if !common::on_path("openssl") {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is missing under CI"
        );
        eprintln!("skipped: openssl is not installed (./test.sh installs it)");
        return;
    }
    let env = Env::new();
    let run = env.serve();
    let imaps = run.addrs["imaps"];
    for old in ["-tls1", "-tls1_1"] {
        let r = handshake(imaps, old);
        assert!(r.contains("Cipher is (NONE)"), "{old}: {r}");
    }
    // The handshake line ("New, TLSv1.3, Cipher is ..."); s_client may exit on the closed
    // standard input before it prints the session block.
    for (flag, version) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let r = handshake(imaps, flag);
        assert!(
            r.contains(&format!("New, {version}, Cipher is")) && !r.contains("(NONE)"),
            "{flag}: {r}"
        );
    }
}
