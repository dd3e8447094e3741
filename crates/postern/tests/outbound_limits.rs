//! Outbound connection handling end to end (issue #18): happy eyeballs (RFC 8305) with an MX
//! host whose first address (IPv6 `::1`, port 25) is blackholed — a listening socket whose
//! accept queue is full, so the kernel drops further SYNs and a connect there hangs — and
//! whose second address (127.0.0.192) works; and the per-destination connection limit,
//! observed by a Python SMTP server that counts simultaneous sessions. DNS is an `unbound` on
//! loopback; MX delivery uses port 25 (the tests run as root).

mod common;
use common::unbound::{Unbound, Zone};
use common::Env;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WORKING: &str = "127.0.0.192";

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a Python script and waits for its first line, which must be `expect`.
fn python_server(script: &str, expect: &str) -> Kill {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let child = Kill(child);
    assert_eq!(line.trim(), expect, "the Python helper did not start");
    child
}

/// `[::1]:25` listening with a full accept queue: connects there hang (SYNs dropped).
fn blackhole() -> Kill {
    python_server(
        r#"
import socket, time
l = socket.socket(socket.AF_INET6)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("::1", 25))
l.listen(0)
fill = []
for i in range(4):
    c = socket.socket(socket.AF_INET6)
    c.setblocking(False)
    c.connect_ex(("::1", 25))
    fill.append(c)
time.sleep(2)
probe = socket.socket(socket.AF_INET6)
probe.settimeout(3)
try:
    probe.connect(("::1", 25))
    print("not blackholed", flush=True)
except socket.timeout:
    print("blackholed", flush=True)
while True:
    time.sleep(3600)
"#,
        "blackholed",
    )
}

/// A Python SMTP server on WORKING:25 that holds each DATA reply for two seconds and writes
/// `max-simultaneous-sessions messages-received` to `stats` after each message.
fn counting_server(stats: &Path) -> Kill {
    python_server(
        &format!(
            r#"
import socketserver, threading, time, os
STATS = "{stats}"
lock = threading.Lock()
state = {{"active": 0, "max": 0, "messages": 0}}
def write():
    with open(STATS + ".tmp", "w") as f:
        f.write("%d %d" % (state["max"], state["messages"]))
    os.rename(STATS + ".tmp", STATS)
class H(socketserver.StreamRequestHandler):
    def handle(self):
        with lock:
            state["active"] += 1
            state["max"] = max(state["max"], state["active"])
        try:
            self.session()
        finally:
            with lock:
                state["active"] -= 1
    def say(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()
    def session(self):
        self.say("220 counter ESMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("ascii", "replace").strip().upper()
            if cmd.startswith("EHLO"):
                self.say("250-counter")
                self.say("250 PIPELINING")
            elif cmd.startswith("HELO") or cmd.startswith("MAIL") or cmd.startswith("RCPT") or cmd == "RSET" or cmd == "NOOP":
                self.say("250 ok")
            elif cmd == "DATA":
                self.say("354 go on")
                while self.rfile.readline() not in (b".\r\n", b""):
                    pass
                time.sleep(2)
                with lock:
                    state["messages"] += 1
                    write()
                self.say("250 2.0.0 queued")
            elif cmd == "QUIT":
                self.say("221 bye")
                return
            else:
                self.say("500 what")
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
srv = S(("{WORKING}", 25), H)
print("ready", flush=True)
srv.serve_forever()
"#,
            stats = stats.display()
        ),
        "ready",
    )
}

/// Submits `n` messages in one SMTP session, one recipient each.
fn submit_all(port: u16, n: u32) {
    common::python(
        &format!(
            r#"
import smtplib
from email.message import EmailMessage
with smtplib.SMTP("127.0.0.1", {port}) as s:
    for i in range({n}):
        m = EmailMessage()
        m["From"] = "alice@a.test"
        m["To"] = "user%d@he.test" % i
        m["Subject"] = "m%d" % i
        m.set_content("limits test\n")
        s.send_message(m)
"#
        ),
        &[],
    );
}

fn stats(path: &Path) -> (u32, u32) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut words = text.split_whitespace().map(|w| w.parse::<u32>().unwrap());
    (words.next().unwrap_or(0), words.next().unwrap_or(0))
}

#[test]
fn happy_eyeballs_and_connections_per_domain() {
    let missing: Vec<&str> = ["unbound", "python3"]
        .into_iter()
        .filter(|t| !common::on_path(t))
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped: {missing:?} not installed (test.sh installs them)");
        return;
    }
    let dns = Unbound::start(&[Zone {
        name: "he.test".into(),
        records: format!(
            "he.test. IN MX 10 mx.he.test.\nmx.he.test. IN AAAA ::1\nmx.he.test. IN A {WORKING}\n"
        ),
        signed: false,
    }]);
    let _hole = blackhole();
    let dir = tempfile::tempdir().unwrap();
    let stats_file = dir.path().join("stats");
    let _server = counting_server(&stats_file);
    // A connect timeout of ten minutes: without happy eyeballs the blackholed ::1 (tried first,
    // IPv6 before IPv4) would hold every message far longer than this test waits.
    let a = Env::with_config(&format!(
        "[queue]\nretry_delays_secs = [1]\ndelay_warning_secs = 0\n[dns]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_secs = 3\n[outbound]\nconnect_timeout_secs = 600\nmax_connections_per_domain = 2\nmax_messages_per_connection = 1\n",
        dns.port()
    ));
    a.ok(&["domain", "add", "a.test"], "");
    a.ok(&["user", "add", "alice@a.test"], "secret\n");
    let sa = a.serve();
    let port = sa.addrs["smtp"].port();
    let n = 8;
    submit_all(port, n);
    let deadline = Instant::now() + Duration::from_secs(120);
    while stats(&stats_file).1 < n {
        assert!(
            Instant::now() < deadline,
            "only {:?} (max sessions, messages) reached the server; mailq:\n{}",
            stats(&stats_file),
            a.ok(&["mailq"], "")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (max, messages) = stats(&stats_file);
    assert_eq!(messages, n);
    assert!(
        (1..=2).contains(&max),
        "{max} sessions at once with max_connections_per_domain = 2"
    );
    // Every message went out: nothing waits.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let q = a.ok(&["mailq"], "");
        if q.contains("empty") {
            break;
        }
        assert!(Instant::now() < deadline, "{q}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A receiver that greets every connection with `421` (too busy) and counts the connections
/// in `count`.
fn busy_server(ip: &str, count: &Path) -> Kill {
    python_server(
        &format!(
            r#"
import socketserver, threading, os
COUNT = "{count}"
lock = threading.Lock()
n = [0]
class H(socketserver.StreamRequestHandler):
    def handle(self):
        with lock:
            n[0] += 1
            with open(COUNT + ".tmp", "w") as f:
                f.write(str(n[0]))
            os.rename(COUNT + ".tmp", COUNT)
        self.wfile.write(b"421 4.7.0 too many connections from you, slow down\r\n")
        self.wfile.flush()
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
srv = S(("{ip}", 25), H)
print("ready", flush=True)
srv.serve_forever()
"#,
            count = count.display()
        ),
        "ready",
    )
}

#[test]
fn a_421_pauses_the_destination_instead_of_a_retry_storm() {
    if !common::on_path("unbound") || !common::on_path("python3") {
        eprintln!("skipped: unbound or python3 not installed (test.sh installs them)");
        return;
    }
    const BUSY: &str = "127.0.0.193";
    let dns = Unbound::start(&[Zone {
        name: "busy.test".into(),
        records: format!("busy.test. IN MX 10 mx.busy.test.\nmx.busy.test. IN A {BUSY}\n"),
        signed: false,
    }]);
    let dir = tempfile::tempdir().unwrap();
    let count_file = dir.path().join("count");
    let _server = busy_server(BUSY, &count_file);
    // Retries every second: without the pause each one would connect again.
    let a = Env::with_config(&format!(
        "[queue]\nretry_delays_secs = [1]\ndelay_warning_secs = 0\n[dns]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_secs = 3\n",
        dns.port()
    ));
    a.ok(&["domain", "add", "a.test"], "");
    a.ok(&["user", "add", "alice@a.test"], "secret\n");
    let sa = a.serve();
    common::python(
        &format!(
            r#"
import smtplib
with smtplib.SMTP("127.0.0.1", {}) as s:
    s.sendmail("alice@a.test", ["bob@busy.test"], "Subject: busy\r\n\r\nbusy\r\n")
"#,
            sa.addrs["smtp"].port()
        ),
        &[],
    );
    let connections = || {
        std::fs::read_to_string(&count_file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut q = String::new();
    while !q.contains("asked us to slow down") {
        assert!(Instant::now() < deadline, "no pause after the 421:\n{q}");
        std::thread::sleep(Duration::from_millis(200));
        q = a.ok(&["mailq"], "");
    }
    assert_eq!(connections(), 1, "{q}");
    // Several retry periods later: still that one connection (the pause is a minute).
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(connections(), 1);
    let id = q
        .lines()
        .find(|l| l.starts_with(|c: char| c.is_ascii_hexdigit()))
        .and_then(|l| l.split_whitespace().next())
        .map(|w| w.trim_end_matches(['*', '!']).to_string())
        .unwrap();
    let shown = a.ok(&["queue", "show", &id], "");
    assert!(
        shown.contains("reason: the destination asked us to slow down"),
        "{shown}"
    );
}
