//! SIGHUP and `postern reload`: the configuration and the certificate change for new
//! connections, open sessions go on, a broken configuration changes nothing, and no signal an
//! admin's habits send (HUP, USR1, USR2, PIPE) stops the server.

mod common;

use common::Env;
use std::time::{Duration, Instant};

/// Holds an IMAP session open across the reload; prints the EHLO SIZE and the IMAPS
/// certificate on request, and checks the old session still answers.
const CLIENT: &str = r#"
import imaplib, smtplib, ssl, sys
host, imap_port, imaps_port, smtp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
held = imaplib.IMAP4(host, imap_port)
held.login("alice@example.org", "pw-alice")
held.select("INBOX")
def size():
    with smtplib.SMTP(host, smtp_port) as s:
        s.ehlo("client.test")
        return s.esmtp_features.get("size", "?")
def cert():
    return ssl.get_server_certificate((host, imaps_port)).strip().splitlines()[1]
print("size", size(), flush=True)
print("cert", cert(), flush=True)
for line in sys.stdin:
    typ, _ = held.noop()
    assert typ == "OK", typ
    print("size", size(), flush=True)
    print("cert", cert(), flush=True)
held.logout()
"#;

struct Client {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Client {
    fn start(run: &common::Running) -> Client {
        let mut child = std::process::Command::new("python3")
            .arg("-c")
            .arg(CLIENT)
            .args([
                run.addrs["imap"].ip().to_string(),
                run.addrs["imap"].port().to_string(),
                run.addrs["imaps"].port().to_string(),
                run.addrs["smtp"].port().to_string(),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        Client { child, out }
    }

    /// (EHLO SIZE, certificate line) as a new connection sees them.
    fn observe(&mut self) -> (String, String) {
        use std::io::BufRead;
        let mut read = || {
            let mut line = String::new();
            self.out.read_line(&mut line).unwrap();
            line.trim().split_once(' ').unwrap().1.to_string()
        };
        (read(), read())
    }

    fn again(&mut self) -> (String, String) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
        self.observe()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn wait_for_log(run: &common::Running, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(line) = run.log.recv_timeout(Duration::from_millis(200)) {
            if line.contains(needle) {
                return line;
            }
        }
    }
    panic!("no log line with {needle:?}");
}

fn signal(run: &common::Running, sig: libc::c_int) {
    // SAFETY: signalling the child this test started.
    assert_eq!(unsafe { libc::kill(run.child.id() as libc::pid_t, sig) }, 0);
}

#[test]
fn reload_applies_to_new_connections_and_keeps_the_old_ones() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "pw-alice\n");
    let mut run = env.serve();
    let mut client = Client::start(&run);
    let (size0, cert0) = client.observe();
    assert_eq!(size0, "26214400");

    // A new limit in the file and a new certificate (the generated one, removed).
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        format!("{text}\n[smtp]\nmax_message_size = 1000000\n"),
    )
    .unwrap();
    std::fs::remove_file(env.data().join("tls/cert.pem")).unwrap();
    std::fs::remove_file(env.data().join("tls/key.pem")).unwrap();
    let out = env.ok(&["reload"], "");
    assert!(out.contains(&format!("pid {}", run.child.id())), "{out}");
    wait_for_log(&run, "reloaded");
    let (size1, cert1) = client.again();
    assert_eq!(size1, "1000000");
    assert_ne!(cert1, cert0, "new connections get the new certificate");

    // A configuration that does not validate: refused, the running one stays.
    std::fs::write(
        &env.config,
        format!("{text}\n[smtp]\nmax_message_size = \"big\"\n"),
    )
    .unwrap();
    signal(&run, libc::SIGHUP);
    let refused = wait_for_log(&run, "reload refused");
    assert!(refused.contains("max_message_size"), "{refused}");
    assert_eq!(client.again(), (size1.clone(), cert1.clone()));

    // Habits that must not stop a mail server.
    for sig in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGPIPE] {
        signal(&run, sig);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(run.child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(client.again(), (size1, cert1));
    drop(client);

    signal(&run, libc::SIGTERM);
    let status = run.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    std::fs::write(&env.config, &text).unwrap();
    let e = env.fails(&["reload"], "");
    assert!(e.contains("no postern serve is running"), "{e}");
}

/// Opens two IMAP sessions of one account and reports, one word each: the second login's
/// answer, the APPENDLIMIT new sessions see, and whether the POP3 greeting offers APOP.
const SETTINGS_PROBE: &str = r#"
import imaplib, poplib, sys
host, imap_port, pop3_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
first = imaplib.IMAP4(host, imap_port)
first.login("alice@example.org", "pw-alice")
second = imaplib.IMAP4(host, imap_port)
try:
    second.login("alice@example.org", "pw-alice")
    print("second-login-ok")
except imaplib.IMAP4.error as e:
    print("second-login-refused" if "LIMIT" in str(e) else "second-login-other:" + str(e))
typ, data = first.capability()
limit = [c for c in data[0].decode().split() if c.startswith("APPENDLIMIT=")]
print(limit[0] if limit else "no-appendlimit")
greeting = poplib.POP3(host, pop3_port).getwelcome().decode()
print("apop" if "<" in greeting else "no-apop")
first.logout()
"#;

fn probe_settings(run: &common::Running) -> Vec<String> {
    let out = common::python(
        SETTINGS_PROBE,
        &[
            run.addrs["imap"].ip().to_string(),
            run.addrs["imap"].port().to_string(),
            run.addrs["pop3"].port().to_string(),
        ],
    );
    out.lines().map(str::to_string).collect()
}

/// `[imap]` and `[pop3]` reach the servers, at start and on reload.
#[test]
fn imap_and_pop3_sections_apply_at_start_and_on_reload() {
    let env = Env::with_config(
        "[imap]\nmax_connections_per_user = 1\nappend_limit = 1000\n[pop3]\napop = false\n",
    );
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "pw-alice\n");
    env.ok(&["user", "apop", "alice@example.org"], "apop-secret\n");
    let run = env.serve();
    assert_eq!(
        probe_settings(&run),
        ["second-login-refused", "APPENDLIMIT=1000", "no-apop"]
    );

    let text = std::fs::read_to_string(&env.config).unwrap();
    let text = text
        .replace(
            "max_connections_per_user = 1",
            "max_connections_per_user = 2",
        )
        .replace("append_limit = 1000", "append_limit = 2000")
        .replace("apop = false", "apop = true");
    std::fs::write(&env.config, text).unwrap();
    env.ok(&["reload"], "");
    wait_for_log(&run, "reloaded");
    assert_eq!(
        probe_settings(&run),
        ["second-login-ok", "APPENDLIMIT=2000", "apop"]
    );
}
