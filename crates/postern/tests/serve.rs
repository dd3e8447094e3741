//! `postern serve` as a process: listeners on loopback, TLS checked by an independent client
//! (Python's ssl module), admin commands while it runs, graceful stop on SIGTERM.

mod common;
use common::Env;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command};
use std::time::Duration;

/// Starts `serve` and waits for "ready", collecting the address of every listener from the log.
fn start(env: &Env) -> common::Running {
    env.serve()
}

fn greeting(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Reads the first line over implicit TLS with Python's ssl module, verifying the generated
/// certificate as a client configured with it as its CA would.
fn tls_greeting_from_python(addr: SocketAddr, ca: &std::path::Path) -> String {
    let script = format!(
        "import socket, ssl\n\
         ctx = ssl.create_default_context(cafile={ca:?})\n\
         with socket.create_connection(('{ip}', {port}), timeout=10) as raw:\n\
         \x20   with ctx.wrap_socket(raw, server_hostname='localhost') as s:\n\
         \x20       print(s.version(), s.recv(512).decode().strip())\n",
        ca = ca.display().to_string(),
        ip = addr.ip(),
        port = addr.port(),
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn serve_listens_speaks_tls_allows_admin_and_stops_on_sigterm() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    let mut running = start(&env);
    for service in [
        "smtp",
        "submission",
        "submissions",
        "imap",
        "imaps",
        "pop3",
        "pop3s",
        "managesieve",
    ] {
        assert!(
            running.addrs.contains_key(service),
            "{service} not logged: {:?}",
            running.addrs
        );
    }

    // Plaintext ports answer at once in their protocol's words (served, or "no service here").
    let smtp = greeting(running.addrs["smtp"]);
    assert!(
        smtp.starts_with("220 mx.test") || smtp.starts_with("554 5.3.2 mx.test"),
        "{smtp}"
    );
    let imap = greeting(running.addrs["imap"]);
    assert!(
        imap.starts_with("* OK") || imap.starts_with("* BYE"),
        "{imap}"
    );
    let pop3 = greeting(running.addrs["pop3"]);
    assert!(
        pop3.starts_with("+OK") || pop3.starts_with("-ERR"),
        "{pop3}"
    );

    // Implicit-TLS ports complete a verified handshake with the generated certificate.
    let ca = env.data().join("tls").join("cert.pem");
    let line = tls_greeting_from_python(running.addrs["imaps"], &ca);
    assert!(line.starts_with("TLSv1.3 * "), "{line}");
    let line = tls_greeting_from_python(running.addrs["pop3s"], &ca);
    assert!(
        line.starts_with("TLSv1.3 +OK") || line.starts_with("TLSv1.3 -ERR"),
        "{line}"
    );
    let line = tls_greeting_from_python(running.addrs["submissions"], &ca);
    assert!(
        line.starts_with("TLSv1.3 220") || line.starts_with("TLSv1.3 554"),
        "{line}"
    );

    // Admin commands work while the server runs.
    env.ok(&["user", "add", "alice@example.org"], "pw\n");
    assert!(env.ok(&["user", "list"], "").contains("alice@example.org"));

    // An open SMTP session is told the server is going away; then the process exits cleanly.
    let mut open = TcpStream::connect(running.addrs["smtp"]).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 512];
    let _ = open.read(&mut buf).unwrap();
    unsafe { libc::kill(running.child.id() as i32, libc::SIGTERM) };
    let n = open.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("421"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let _ = open.write_all(b"QUIT\r\n");
    let status = wait_exit(&mut running.child, Duration::from_secs(15));
    assert!(status.success(), "serve exited with {status}");
    let rest: Vec<String> = running.log.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("SIGTERM")), "{rest:?}");
    assert!(rest.iter().any(|l| l.ends_with("stopped")), "{rest:?}");
}

#[test]
fn serve_refuses_to_start_on_a_busy_address() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let env = Env::with_config(&format!(
        "[listen]\nsmtp = []\nsubmission = []\nsubmissions = []\nimap = [\"{addr}\"]\nimaps = []\npop3 = []\npop3s = []\nmanagesieve = []\n"
    ));
    let e = env.fails(&["serve"], "");
    assert!(
        e.contains(&format!("listen.imap: cannot listen on {addr}")),
        "{e}"
    );
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("serve did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
