//! The MX's screens end to end, with the real `postern` binary and independent clients:
//! Python's smtplib (from several loopback addresses with `source_address`), swaks, a raw
//! socket, and dnsmasq serving the DNS lists (RFC 5782) on loopback.
//!
//! Every server here has `[smtp] trusted_networks = []`, so that loopback clients are
//! strangers the screens judge.

mod common;

use common::{on_path, python, Env, Running};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A dnsmasq answering on loopback for the test's zones only, killed on drop.
struct Dnsmasq {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dnsmasq {
    /// Starts dnsmasq with these extra arguments (`--address=/name/127.0.0.2`, `--local=/zone/`).
    fn start(records: &[String]) -> Dnsmasq {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            // A port free for both UDP and TCP, released for dnsmasq to take.
            let port = {
                let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let port = udp.local_addr().unwrap().port();
                if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                    continue;
                }
                port
            };
            let mut child = Command::new("/usr/sbin/dnsmasq")
                .args([
                    "--keep-in-foreground",
                    "--no-resolv",
                    "--no-hosts",
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--user=root",
                    &format!("--port={port}"),
                    &format!("--pid-file={}", dir.path().join("pid").display()),
                ])
                .args(records)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("dnsmasq runs");
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Some(status) = child.try_wait().unwrap() {
                    let mut err = String::new();
                    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                    if err.contains("in use") {
                        break;
                    }
                    panic!("dnsmasq exited ({status}): {err}");
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Dnsmasq {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("dnsmasq did not start");
    }
}

/// `[dns]` pointing at `dns`, `[smtp]` trusting nobody, and `policy` as the `[policy]` body.
fn config(dns: Option<&Dnsmasq>, policy: &str) -> String {
    let nameservers = dns.map_or(String::new(), |d| {
        format!(
            "[dns]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout_secs = 2\nattempts = 1\n",
            d.port
        )
    });
    format!("{nameservers}[smtp]\ntrusted_networks = []\n[policy]\n{policy}\n")
}

fn setup(extra: &str) -> (Env, Running) {
    let env = Env::with_config(extra);
    env.ok(&["domain", "add", "example.org"], "");
    for user in ["alice", "bob", "carol", "dave"] {
        env.ok(
            &["user", "add", &format!("{user}@example.org")],
            &format!("pw-{user}\n"),
        );
    }
    let run = env.serve();
    (env, run)
}

/// One SMTP session with smtplib from `source`: prints `connect CODE TEXT`, then for each
/// `FROM>TO,TO` argument the MAIL, RCPT and DATA replies as `mail|rcpt|data CODE TEXT`. An
/// argument `auth=USER:PASS` logs in first.
const SESSION: &str = r#"
import smtplib, sys
host, port, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def say(what, code, text):
    if isinstance(text, bytes):
        text = text.decode()
    print(what, code, " ".join(text.split()), flush=True)
try:
    s = smtplib.SMTP(host, port, source_address=(source, 0), timeout=30)
except smtplib.SMTPConnectError as e:
    say("connect", e.smtp_code, e.smtp_error)
    sys.exit(0)
except smtplib.SMTPServerDisconnected as e:
    print("connect closed", e, flush=True)
    sys.exit(0)
say("connect", 220, "")
s.ehlo("client.test")
for arg in sys.argv[4:]:
    if arg.startswith("auth="):
        user, password = arg[5:].split(":", 1)
        s.login(user, password)
        continue
    sender, rcpts = arg.split(">", 1)
    code, text = s.mail(sender)
    say("mail", code, text)
    if code != 250:
        s.rset()
        continue
    ok = 0
    for r in rcpts.split(","):
        code, text = s.rcpt(r)
        say("rcpt", code, text)
        ok += code == 250
    if ok:
        code, text = s.data(b"From: " + sender.encode() + b"\r\nSubject: screens\r\n\r\nHello.\r\n")
        say("data", code, text)
    else:
        s.rset()
s.quit()
"#;

fn session(addr: SocketAddr, source: &str, plan: &[&str]) -> Vec<String> {
    let mut args = vec![
        addr.ip().to_string(),
        addr.port().to_string(),
        source.to_string(),
    ];
    args.extend(plan.iter().map(|s| s.to_string()));
    python(SESSION, &args).lines().map(str::to_string).collect()
}

/// Waits for a log line containing `needle` (30 s at most); returns it.
fn wait_log(run: &Running, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match run.log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no log line with {needle:?}");
}

fn listed_at(ip: &str, zone: &str, answer: &str) -> String {
    let rev: Vec<&str> = ip.split('.').rev().collect();
    format!("--address=/{}.{zone}/{answer}", rev.join("."))
}

#[test]
fn dnsbl_refuses_a_listed_client_and_names_the_list() {
    if !on_path("dnsmasq") {
        eprintln!("skipped: dnsmasq (Debian dnsmasq-base) is not installed");
        return;
    }
    let dns = Dnsmasq::start(&[
        "--local=/bl.test/".into(),
        listed_at("127.0.0.2", "bl.test", "127.0.0.2"),
    ]);
    let (_env, run) = setup(&config(Some(&dns), "dnsbl = [\"bl.test\"]"));
    let smtp = run.addrs["smtp"];
    // Not listed (NXDOMAIN): mail goes through.
    let out = session(smtp, "127.0.0.1", &["a@sender.test>bob@example.org"]);
    assert_eq!(out[0], "connect 220 ", "{out:?}");
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
    // Listed: refused instead of the greeting, the list named.
    let out = session(smtp, "127.0.0.2", &["a@sender.test>bob@example.org"]);
    assert_eq!(
        out,
        ["connect 554 5.7.1 Service unavailable; client [127.0.0.2] blocked using bl.test"]
    );
    wait_log(&run, "client listed");

    // Refused at RCPT instead: postmaster stays reachable (RFC 5321 §4.5.1).
    let (_env, run) = setup(&config(
        Some(&dns),
        "dnsbl = [\"bl.test\"]\ndnsbl_reject_at = \"rcpt\"",
    ));
    let out = session(
        run.addrs["smtp"],
        "127.0.0.2",
        &["a@sender.test>bob@example.org,postmaster@example.org"],
    );
    assert_eq!(out[0], "connect 220 ", "{out:?}");
    assert!(
        out.contains(
            &"rcpt 554 5.7.1 Service unavailable; client [127.0.0.2] blocked using bl.test"
                .to_string()
        ),
        "{out:?}"
    );
    assert!(out.iter().any(|l| l.starts_with("rcpt 250")), "{out:?}");
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
}

#[test]
fn a_dnswl_listing_and_an_access_ok_skip_greylisting() {
    if !on_path("dnsmasq") {
        eprintln!("skipped: dnsmasq (Debian dnsmasq-base) is not installed");
        return;
    }
    let dns = Dnsmasq::start(&[
        "--local=/wl.test/".into(),
        listed_at("127.0.0.3", "wl.test", "127.0.10.2"),
    ]);
    let (_env, run) = setup(&config(
        Some(&dns),
        "greylist = true\n\
         [[policy.dnsbl_list]]\nzone = \"wl.test\"\nkind = \"allow\"\nweight = -5.0\n\
         [[policy.access]]\nclient = \"127.0.2.0/24\"\naction = \"ok\"",
    ));
    let smtp = run.addrs["smtp"];
    let out = session(smtp, "127.0.0.3", &["a@sender.test>bob@example.org"]);
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
    let out = session(smtp, "127.0.2.1", &["a@sender.test>bob@example.org"]);
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
    // Others are greylisted.
    let out = session(smtp, "127.0.0.1", &["a@sender.test>bob@example.org"]);
    assert!(
        out.iter()
            .any(|l| l.starts_with("rcpt 451 4.7.1 Greylisted")),
        "{out:?}"
    );
}

#[test]
fn greylisting_waits_passes_and_allows_the_network() {
    let (env, run) = setup(&config(
        None,
        "greylist = true\ngreylist_delay_secs = 4\ngreylist_expire_secs = 3600\ngreylist_auto_allow = 1",
    ));
    let smtp = run.addrs["smtp"];
    // First try, and a retry at once: both 451 4.7.1.
    let out = session(
        smtp,
        "127.0.0.1",
        &[
            "a@sender.test>bob@example.org",
            "a@sender.test>bob@example.org",
        ],
    );
    let greylisted: Vec<&String> = out
        .iter()
        .filter(|l| l.starts_with("rcpt 451 4.7.1 Greylisted, please try again in "))
        .collect();
    assert_eq!(greylisted.len(), 2, "{out:?}");
    assert!(greylisted[0].ends_with("in 4 seconds"), "{out:?}");
    assert!(!out.iter().any(|l| l.starts_with("data")), "{out:?}");
    // After the delay (and longer: waiting more is never wrong) the retry passes.
    std::thread::sleep(Duration::from_secs(5));
    let out = session(smtp, "127.0.0.1", &["a@sender.test>bob@example.org"]);
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
    // One passed triplet allows the client's /24: a new triplet passes at once...
    let out = session(smtp, "127.0.0.9", &["other@sender.test>carol@example.org"]);
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
    // ... but not from another network.
    let out = session(smtp, "127.0.1.1", &["other@sender.test>carol@example.org"]);
    assert!(
        out.iter().any(|l| l.starts_with("rcpt 451 4.7.1")),
        "{out:?}"
    );
    // The state is private and survives a restart.
    use std::os::unix::fs::PermissionsExt;
    let db = env.data().join("greylist.db");
    let mode = std::fs::metadata(&db).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(run);
    let run = env.serve();
    let out = session(
        run.addrs["smtp"],
        "127.0.0.1",
        &["a@sender.test>dave@example.org"],
    );
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
}

#[test]
fn a_client_talking_before_the_greeting_is_dropped() {
    let (_env, run) = setup(&config(
        None,
        "pregreet_wait_ms = 1000\npregreet_loopback = true",
    ));
    let smtp = run.addrs["smtp"];
    let mut raw = TcpStream::connect(smtp).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    raw.write_all(b"EHLO impatient.test\r\n").unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "554 5.5.1 Protocol error\r\n");
    let line = wait_log(&run, "pregreet");
    assert!(line.contains("127.0.0.1"), "{line}");
    // A client that waits for the banner (swaks) is served.
    if on_path("swaks") {
        let out = Command::new("swaks")
            .args([
                "--server",
                &smtp.ip().to_string(),
                "--port",
                &smtp.port().to_string(),
                "--from",
                "a@sender.test",
                "--to",
                "bob@example.org",
                "--helo",
                "patient.test",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("<-  250"), "{text}");
    } else {
        let out = session(smtp, "127.0.0.1", &["a@sender.test>bob@example.org"]);
        assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
    }
    // The submission port is not tested.
    let mut raw = TcpStream::connect(run.addrs["submission"]).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    raw.write_all(b"EHLO impatient.test\r\n").unwrap();
    let mut buf = [0u8; 4];
    raw.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"220 ");
}

#[test]
fn rate_limits_by_address_sender_and_account() {
    let (_env, run) = setup(&config(
        None,
        "[[policy.rate_limit]]\nkey = \"ip\"\nmessages = 2\nwindow_secs = 3600\n\
         [[policy.rate_limit]]\nkey = \"sender\"\nrecipients = 2\nwindow_secs = 3600\n\
         [[policy.rate_limit]]\nkey = \"account\"\nmessages = 1\nwindow_secs = 3600",
    ));
    let smtp = run.addrs["smtp"];
    let m = "a@sender.test>bob@example.org";
    let out = session(smtp, "127.0.0.1", &[m, m, m]);
    let data: Vec<&String> = out.iter().filter(|l| l.starts_with("data 250")).collect();
    assert_eq!(data.len(), 2, "{out:?}");
    assert!(
        out.last()
            .unwrap()
            .starts_with("mail 451 4.7.1 Rate limit reached: at most 2 messages per 3600 seconds"),
        "{out:?}"
    );
    // Another address is not affected.
    let out = session(smtp, "127.0.0.4", &["b@sender.test>bob@example.org"]);
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
    // Recipients per sender: the third is refused with 452 4.5.3 (RFC 5321 §4.5.3.1.10).
    let out = session(
        smtp,
        "127.0.0.5",
        &["many@sender.test>alice@example.org,bob@example.org,carol@example.org"],
    );
    assert_eq!(
        out.iter().filter(|l| l.starts_with("rcpt 250")).count(),
        2,
        "{out:?}"
    );
    assert!(
        out.iter()
            .any(|l| l.starts_with("rcpt 452 4.5.3 Too many recipients")),
        "{out:?}"
    );
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
    // An authenticated account on submission: its own limit, not the address's.
    let out = session(
        run.addrs["submission"],
        "127.0.0.1",
        &[
            "auth=alice@example.org:pw-alice",
            "alice@example.org>bob@example.org",
            "alice@example.org>bob@example.org",
        ],
    );
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
    assert!(
        out.last().unwrap().starts_with("mail 451 4.7.1 Rate limit reached: at most 1 messages per 3600 seconds from this account"),
        "{out:?}"
    );
}

#[test]
fn access_tables_from_the_config_and_a_file_reloaded_at_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("access");
    std::fs::write(
        &file,
        "# test rules\nsender spammer.example reject No spam here\nrecipient carol@example.org tempfail Carol is away\n",
    )
    .unwrap();
    let (_env, run) = setup(&config(
        None,
        &format!(
            "access_file = \"{}\"\n[[policy.access]]\nclient = \"127.0.0.6\"\naction = \"reject\"\nmessage = \"Go away\"\n\
             [[policy.access]]\nhelo = \"client.test\"\naction = \"ok\"\n",
            file.display()
        ),
    ));
    let smtp = run.addrs["smtp"];
    let out = session(smtp, "127.0.0.6", &["a@sender.test>bob@example.org"]);
    assert_eq!(out, ["connect 554 5.7.1 Go away"]);
    // The HELO rule `ok` comes first for the envelope: the sender rule is skipped.
    let out = session(
        smtp,
        "127.0.0.1",
        &["x@mail.spammer.example>bob@example.org"],
    );
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
    // A file without the HELO rule, then a reload changes the answers.
    std::fs::write(
        &file,
        "sender spammer.example reject No spam here\nrecipient carol@example.org tempfail Carol is away\n",
    )
    .unwrap();
    let hup = |run: &Running| unsafe {
        libc::kill(run.child.id() as i32, libc::SIGHUP);
    };
    let (_env, run) = setup(&config(
        None,
        &format!("access_file = \"{}\"\n", file.display()),
    ));
    let smtp = run.addrs["smtp"];
    let out = session(
        smtp,
        "127.0.0.1",
        &[
            "x@mail.spammer.example>bob@example.org",
            "a@sender.test>carol@example.org,bob@example.org",
        ],
    );
    assert!(
        out.contains(&"mail 554 5.7.1 No spam here".to_string()),
        "{out:?}"
    );
    assert!(
        out.contains(&"rcpt 451 4.7.1 Carol is away".to_string()),
        "{out:?}"
    );
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
    std::fs::write(&file, "sender spammer.example ok\n").unwrap();
    hup(&run);
    wait_log(&run, "SIGHUP: configuration");
    let out = session(
        smtp,
        "127.0.0.1",
        &["x@mail.spammer.example>carol@example.org"],
    );
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
    // A broken file at reload: the error is logged, the rules stay.
    std::fs::write(&file, "client 999.1.1.1 reject\n").unwrap();
    hup(&run);
    let line = wait_log(&run, "policy.access_file");
    assert!(
        line.contains("line 1") && line.contains("999.1.1.1"),
        "{line}"
    );
    let out = session(
        smtp,
        "127.0.0.1",
        &["x@mail.spammer.example>carol@example.org"],
    );
    assert!(out.iter().any(|l| l.starts_with("data 250")), "{out:?}");
}

#[test]
fn bad_screens_settings_are_refused_in_words() {
    for (policy, want) in [
        ("dnsbl = [\"not a zone\"]", "policy.dnsbl[0]"),
        ("dnsbl_reject_at = \"helo\"", "policy.dnsbl_reject_at"),
        (
            "[[policy.dnsbl_list]]\nzone = \"x.test\"\ncodes = [\"10.0.0.1\"]",
            "127.0.0.0/8",
        ),
        (
            "greylist_delay_secs = 600\ngreylist_expire_secs = 60",
            "greylist_expire_secs",
        ),
        (
            "[[policy.rate_limit]]\nkey = \"ip\"",
            "give messages, recipients or both",
        ),
        (
            "[[policy.rate_limit]]\nkey = \"helo\"\nmessages = 1",
            "policy.rate_limit[0].key",
        ),
        (
            "[[policy.access]]\nclient = \"1.2.3.4\"\nsender = \"x.test\"\naction = \"ok\"",
            "exactly one of",
        ),
        (
            "[[policy.access]]\nsender = \"x.test\"\naction = \"discard\"",
            "not ok, reject or tempfail",
        ),
    ] {
        let env = Env::with_config(&config(None, policy));
        let err = env.fails(&["check-config"], "");
        assert!(err.contains(want), "{policy}: {err}");
    }
    // A missing access file stops serve with its name.
    let env = Env::with_config(&config(None, "access_file = \"/nonexistent/access\""));
    let out = env.run(&["serve"], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/access"), "{err}");
}

#[test]
fn an_ipv6_client_is_looked_up_in_nibble_form() {
    if !on_path("dnsmasq") {
        eprintln!("skipped: dnsmasq (Debian dnsmasq-base) is not installed");
        return;
    }
    // RFC 5782 §2.4: ::1 is asked as 1.0.0.0. ... .0.bl.test (32 nibbles, reversed).
    let mut nibbles = vec!["1"];
    nibbles.extend(std::iter::repeat_n("0", 31));
    let dns = Dnsmasq::start(&[
        "--local=/bl.test/".into(),
        format!("--address=/{}.bl.test/127.0.0.2", nibbles.join(".")),
    ]);
    let (_env, run) = setup(&format!(
        "{}[listen]\nsmtp = [\"[::1]:0\"]\n",
        config(Some(&dns), "dnsbl = [\"bl.test\"]")
    ));
    let out = session(run.addrs["smtp"], "::1", &["a@sender.test>bob@example.org"]);
    assert_eq!(
        out,
        ["connect 554 5.7.1 Service unavailable; client [::1] blocked using bl.test"]
    );
}
