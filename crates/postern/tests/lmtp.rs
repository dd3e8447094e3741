//! LMTP (RFC 2033) and the `postern deliver` LDA, driven by real clients: Python's
//! `smtplib.LMTP` over TCP and the Unix socket, swaks `--protocol LMTP` on both, and Postfix as
//! the MTA that hands its mail over (a private instance on loopback, `lmtp:inet:` then
//! `lmtp:unix:`).

mod common;

use common::{on_path, python, run_command, Env};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PASS: &str = "correct horse battery";

/// Every service off but SMTP and LMTP on loopback, the LMTP socket in `run/` beside the data
/// directory (not in it: the data directory stays private).
fn lmtp_env(extra: &str) -> (Env, PathBuf) {
    let env = Env::with_config("");
    let run = env.dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let socket = run.join("lmtp.sock");
    let text = std::fs::read_to_string(&env.config).unwrap();
    // Replace the generated [listen] section by ours.
    let head = text.split("[listen]").next().unwrap().to_string();
    let config = format!(
        "{head}[listen]\nsmtp = [\"127.0.0.1:0\"]\nlmtp = [\"127.0.0.1:0\"]\nsubmission = []\nsubmissions = []\n\
         imap = []\nimaps = []\npop3 = []\npop3s = []\nmanagesieve = []\n\
         [lmtp]\nsocket = \"{}\"\n{extra}\n",
        socket.display()
    );
    std::fs::write(&env.config, config).unwrap();
    env.ok(&["domain", "add", "example.org"], "");
    for user in ["alice@example.org", "bob@example.org"] {
        env.ok(&["user", "add", user], &format!("{PASS}\n"));
    }
    env.ok(
        &[
            "alias",
            "add",
            "team@example.org",
            "alice@example.org",
            "bob@example.org",
        ],
        "",
    );
    env.ok(
        &["alias", "add", "fwd@example.org", "carol@remote.test"],
        "",
    );
    (env, socket)
}

/// The messages in an account's folder (`""` for INBOX, else the Maildir++ name like `.Lists`):
/// (file name, content).
fn messages(env: &Env, account: &str, folder: &str) -> Vec<(String, String)> {
    let dir = env.maildir(account).join(folder);
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let text = String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned();
            out.push((e.file_name().to_string_lossy().into_owned(), text));
        }
    }
    out.sort();
    out
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One LMTP transaction with Python's smtplib.LMTP: LHLO, MAIL, one RCPT per address, DATA,
/// then (RFC 2033 §4.2) one reply per accepted recipient. Prints `RCPT <addr> <code>` and
/// `DATA <code> <text>` lines. `target` is `host:port` or a socket path.
const LMTP_SCRIPT: &str = r#"
import smtplib, sys
target, sender, subject = sys.argv[1], sys.argv[2], sys.argv[3]
rcpts = sys.argv[4:]
if target.startswith("/"):
    s = smtplib.LMTP(target)
else:
    host, port = target.rsplit(":", 1)
    s = smtplib.LMTP(host, int(port))
code, _ = s.ehlo("client.test")  # smtplib.LMTP sends LHLO
assert code == 250, code
assert s.has_extn("pipelining") and s.has_extn("enhancedstatuscodes") and s.has_extn("chunking")
code, msg = s.mail(sender)
assert code == 250, (code, msg)
accepted = []
for r in rcpts:
    code, msg = s.rcpt(r)
    print("RCPT", r, code)
    if code == 250:
        accepted.append(r)
body = "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nHello over LMTP.\r\n" % (sender, rcpts[0], subject)
code, msg = s.data(body)
print("DATA", code, msg.decode())
for r in accepted[1:]:
    code, msg = s.getreply()
    print("DATA", code, msg.decode())
s.quit()
"#;

fn lmtp_python(target: &str, sender: &str, subject: &str, rcpts: &[&str]) -> String {
    let mut args = vec![target.to_string(), sender.to_string(), subject.to_string()];
    args.extend(rcpts.iter().map(|r| r.to_string()));
    python(LMTP_SCRIPT, &args)
}

#[test]
fn python_and_swaks_over_tcp_and_the_unix_socket() {
    if !on_path("python3") {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let (env, socket) = lmtp_env("");
    env.ok(&["user", "quota", "bob@example.org", "1"], "");
    let server = env.serve();
    let tcp = server.addrs["lmtp"];
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    // TCP: alice stored, nobody refused at RCPT, bob over quota, team (alias) forwarded.
    let out = lmtp_python(
        &tcp.to_string(),
        "sender@remote.test",
        "over tcp",
        &[
            "alice@example.org",
            "nobody@example.org",
            "someone@elsewhere.test",
            "bob@example.org",
            "team@example.org",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "RCPT alice@example.org 250", "{out}");
    assert_eq!(lines[1], "RCPT nobody@example.org 550", "{out}");
    assert_eq!(lines[2], "RCPT someone@elsewhere.test 550", "{out}");
    assert!(
        lines[5].starts_with(
            "DATA 250 2.0.0 <alice@example.org> stored in alice@example.org INBOX as UID "
        ),
        "{out}"
    );
    assert!(
        lines[6].starts_with("DATA 552 5.2.2 <bob@example.org> mailbox full"),
        "{out}"
    );
    assert!(
        lines[7]
            .starts_with("DATA 250 2.0.0 <team@example.org> forwarded to 2 addresses, queued as "),
        "{out}"
    );
    assert_eq!(lines.len(), 8, "{out}");
    // The first (UID 1) is the LMTP copy; the alias's copy may already follow it.
    let inbox = messages(&env, "alice@example.org", "");
    let text = &inbox[0].1;
    assert!(
        text.starts_with("Return-Path: <sender@remote.test>\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Delivered-To: alice@example.org\r\n"),
        "{text}"
    );
    assert_eq!(text.matches("Received: ").count(), 1, "{text}");
    assert!(
        text.contains("Received: from client.test ([127.0.0.1])"),
        "{text}"
    );
    assert!(text.contains("with LMTP id "), "{text}");
    // The alias's copies go through the queue: alice gets a second one (bob is full).
    wait_for("the forwarded copy in alice's INBOX", 30, || {
        messages(&env, "alice@example.org", "").len() == 2
    });

    // The Unix socket, with Python.
    let out = lmtp_python(
        socket.to_str().unwrap(),
        "sender@remote.test",
        "over the socket",
        &["alice@example.org"],
    );
    assert!(
        out.contains("DATA 250 2.0.0 <alice@example.org> stored"),
        "{out}"
    );

    // swaks on both: its transcript shows one reply per recipient after the data.
    if on_path("swaks") {
        for how in [
            vec![
                "--server".to_string(),
                tcp.ip().to_string(),
                "--port".to_string(),
                tcp.port().to_string(),
            ],
            vec!["--socket".to_string(), socket.display().to_string()],
        ] {
            let out = Command::new("swaks")
                .args(["--protocol", "LMTP", "--helo", "swaks.test"])
                .args(&how)
                .args([
                    "--from",
                    "s@remote.test",
                    "--to",
                    "alice@example.org,nobody@example.org,team@example.org",
                ])
                .args(["--header", "Subject: swaks", "--timeout", "30"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("LHLO swaks.test"), "{text}");
            assert!(text.contains("550 5.1.1"), "{text}");
            assert!(
                text.contains("250 2.0.0 <alice@example.org> stored in"),
                "{text}"
            );
            assert!(
                text.contains("250 2.0.0 <team@example.org> forwarded"),
                "{text}"
            );
        }
    } else {
        eprintln!("swaks part skipped: swaks is not installed");
    }

    // postern deliver beside the running server: the index hands out the next UID.
    let out = env.run(
        &["deliver", "-f", "x@remote.test", "-d", "alice@example.org"],
        "Subject: lda\n\nhi\n",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uids: std::collections::BTreeSet<String> = messages(&env, "alice@example.org", "")
        .iter()
        .map(|(name, _)| {
            name.split(",U=")
                .nth(1)
                .unwrap()
                .split([',', ':'])
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    let count = messages(&env, "alice@example.org", "").len();
    assert_eq!(uids.len(), count, "every message has its own UID: {uids:?}");
    drop(server);
}

/// Runs `postern deliver ARGS` with `stdin`; the exit code and standard error.
fn deliver(env: &Env, args: &[&str], stdin: &str) -> (i32, String) {
    let mut all = vec!["deliver"];
    all.extend_from_slice(args);
    let out = env.run(&all, stdin);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn deliver_exit_codes_sieve_and_forwarding() {
    let (env, _) = lmtp_env("");
    let msg = "From sender@remote.test Thu Dec  3 10:00:00 2026\nFrom: sender@remote.test\nSubject: plain\n\nhello\n";

    // 0: delivered; the From_ line is gone and line ends are CRLF.
    let (code, err) = deliver(
        &env,
        &["-f", "sender@remote.test", "-d", "alice@example.org"],
        msg,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "nothing on stderr on success: {err}");
    let inbox = messages(&env, "alice@example.org", "");
    let text = &inbox[0].1;
    assert!(
        text.starts_with(
            "Return-Path: <sender@remote.test>\r\nDelivered-To: alice@example.org\r\n"
        ),
        "{text}"
    );
    assert!(text.contains("(postern deliver, uid "), "{text}");
    assert!(!text.contains("From sender@remote.test Thu"), "{text}");
    assert!(text.ends_with("Subject: plain\r\n\r\nhello\r\n"), "{text}");

    // 67: no such user; one plain line on stderr.
    let (code, err) = deliver(&env, &["-d", "nobody@example.org"], msg);
    assert_eq!(code, 67, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("550 5.1.1 <nobody@example.org>"), "{err}");
    let (code, err) = deliver(&env, &["-d", "x@not-local.test"], msg);
    assert_eq!(code, 67, "{err}");

    // 65: bad input.
    let (code, err) = deliver(&env, &["-d", "alice@example.org"], "");
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("empty"), "{err}");
    // 64: a command line that is no address; a missing -d.
    assert_eq!(deliver(&env, &["-d", "not an address"], msg).0, 64);
    assert_eq!(deliver(&env, &[], msg).0, 64);

    // 75: the directory cannot be opened now (its database is not a database).
    let db = env.data().join("directory.db");
    let saved = env.data().join("directory.db.saved");
    std::fs::rename(&db, &saved).unwrap();
    std::fs::create_dir(&db).unwrap();
    let (code, err) = deliver(&env, &["-d", "bob@example.org"], msg);
    assert_eq!(code, 75, "{err}");
    assert!(err.contains("directory"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    std::fs::remove_dir(&db).unwrap();
    std::fs::rename(&saved, &db).unwrap();

    // Sieve: alice's script files the message.
    env.ok(
        &["sieve", "put", "alice@example.org", "filters", "-"],
        "require [\"fileinto\", \"mailbox\"];\nif header :contains \"subject\" \"rust\" { fileinto :create \"Lists\"; }\n",
    );
    env.ok(&["sieve", "activate", "alice@example.org", "filters"], "");
    let (code, err) = deliver(
        &env,
        &["-f", "<>", "-d", "<alice@example.org>"],
        "Subject: about rust\n\nborrowck\n",
    );
    assert_eq!(code, 0, "{err}");
    let filed = messages(&env, "alice@example.org", ".Lists");
    assert_eq!(filed.len(), 1, "{filed:?}");
    assert!(filed[0].1.contains("Subject: about rust"));
    assert_eq!(messages(&env, "alice@example.org", "").len(), 1);

    // An alias to a remote address: the copy waits in the queue for carol.
    let (code, err) = deliver(
        &env,
        &[
            "-f",
            "sender@remote.test",
            "-a",
            "fwd@example.org",
            "-d",
            "fwd@example.org",
        ],
        msg,
    );
    assert_eq!(code, 0, "{err}");
    let queue = env.ok(&["queue", "list"], "");
    assert!(queue.contains("carol@remote.test"), "{queue}");
    assert!(queue.contains("sender@remote.test"), "{queue}");

    // 77: a user who does not own the data directory.
    if unsafe_is_root() {
        let mut cmd = env.command();
        use std::os::unix::process::CommandExt;
        // The test directory must be traversable for the other user to find the config.
        let _ = std::fs::set_permissions(
            env.dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        );
        let _ = std::fs::set_permissions(
            &env.config,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        );
        cmd.uid(65534).gid(65534);
        cmd.args(["deliver", "-d", "alice@example.org"]);
        let out = run_command(&mut cmd, msg);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(77), "{err}");
        assert!(
            err.contains("run postern deliver as the server user"),
            "{err}"
        );
    } else {
        eprintln!("EX_NOPERM part skipped: the test is not root, so it cannot run as another user");
    }
}

fn unsafe_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

// ----- Postfix as the LMTP client ------------------------------------------------------------

/// A private Postfix instance (config, queue and log in a temp directory, `postfix -c DIR`),
/// its smtpd on a loopback port, relaying example.org through `transport` (an `lmtp:` next
/// hop). Stopped when dropped.
struct Postfix {
    conf: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Postfix {
    fn start(root: &Path, transport: &str) -> Result<Postfix, String> {
        Postfix::start_with(root, transport, "", "")
    }

    /// [`Postfix::start`] with lines added to main.cf and master.cf.
    fn start_with(
        root: &Path,
        transport: &str,
        main_extra: &str,
        master_extra: &str,
    ) -> Result<Postfix, String> {
        let dir = root.join(format!("postfix-{}", transport.replace([':', '/'], "_")));
        let conf = dir.join("conf");
        let queue = dir.join("queue");
        let data = dir.join("data");
        for d in [&conf, &queue, &data] {
            std::fs::create_dir_all(d).unwrap();
        }
        let chown = Command::new("chown").arg("postfix").arg(&data).status();
        if !chown.is_ok_and(|s| s.success()) {
            return Err("cannot give Postfix its data directory (no postfix user?)".into());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("maillog");
        std::fs::write(
            conf.join("main.cf"),
            format!(
                "compatibility_level = 3.6\n\
                 queue_directory = {queue}\n\
                 data_directory = {data}\n\
                 maillog_file = {log}\n\
                 maillog_file_prefixes = {dir}\n\
                 myhostname = relay.postfix.test\n\
                 mydomain = postfix.test\n\
                 inet_interfaces = 127.0.0.1\n\
                 inet_protocols = ipv4\n\
                 mydestination =\n\
                 mynetworks = 127.0.0.0/8\n\
                 alias_maps =\n\
                 alias_database =\n\
                 biff = no\n\
                 relay_domains = example.org\n\
                 relay_recipient_maps =\n\
                 smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
                 transport_maps = texthash:{conf}/transport\n\
                 local_transport = error:local delivery disabled in the test instance\n\
                 default_transport = error:outbound delivery disabled in the test instance\n\
                 relay_transport = error:relay disabled in the test instance\n\
                 notify_classes =\n\
                 {main_extra}\n",
                queue = queue.display(),
                data = data.display(),
                log = log.display(),
                dir = dir.display(),
                conf = conf.display(),
            ),
        )
        .unwrap();
        std::fs::write(conf.join("transport"), format!("example.org {transport}\n")).unwrap();
        std::fs::write(
            conf.join("master.cf"),
            format!(
                "127.0.0.1:{port} inet n - n - - smtpd\n\
                 pickup    unix n - n 60 1 pickup\n\
                 cleanup   unix n - n - 0 cleanup\n\
                 qmgr      unix n - n 300 1 qmgr\n\
                 rewrite   unix - - n - - trivial-rewrite\n\
                 bounce    unix - - n - 0 bounce\n\
                 defer     unix - - n - 0 bounce\n\
                 trace     unix - - n - 0 bounce\n\
                 verify    unix - - n - 1 verify\n\
                 flush     unix n - n 1000? 0 flush\n\
                 proxymap  unix - - n - - proxymap\n\
                 showq     unix n - n - - showq\n\
                 error     unix - - n - - error\n\
                 retry     unix - - n - - error\n\
                 discard   unix - - n - - discard\n\
                 lmtp      unix - - n - - lmtp\n\
                 anvil     unix - - n - 1 anvil\n\
                 scache    unix - - n - 1 scache\n\
                 postlog   unix-dgram n - n - 1 postlogd\n\
                 {master_extra}\n"
            ),
        )
        .unwrap();
        let out = Command::new("postfix")
            .arg("-c")
            .arg(&conf)
            .arg("start")
            .output()
            .map_err(|e| format!("cannot run postfix: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "postfix start failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let pf = Postfix { conf, log, port };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(30) {
                return Err("Postfix's smtpd did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(pf)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .output();
    }
}

/// Sends one message into Postfix's smtpd, to alice and to an address postern does not know.
fn send_through_postfix(port: u16, subject: &str) {
    python(
        r#"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.ehlo("client.test")
    refused = s.sendmail("sender@remote.test", ["alice@example.org", "nobody@example.org"],
        "From: sender@remote.test\r\nTo: alice@example.org\r\nSubject: %s\r\n\r\nvia Postfix\r\n" % sys.argv[2])
    assert not refused, refused
"#,
        &[port.to_string(), subject.to_string()],
    );
}

#[test]
fn postfix_hands_mail_over_lmtp_on_tcp_and_the_unix_socket() {
    if !on_path("postconf") || !on_path("postfix") {
        eprintln!("skipped: Postfix is not installed (test.sh installs it)");
        return;
    }
    if !unsafe_is_root() {
        eprintln!("skipped: a private Postfix instance must be started as root");
        return;
    }
    if !on_path("python3") {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let (env, socket) = lmtp_env("socket_group = \"postfix\"");
    // Postfix's lmtp client runs as the postfix user: it must reach the socket (group postfix).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        socket.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let server = env.serve();
    let tcp = server.addrs["lmtp"];

    for (n, transport) in [
        format!("lmtp:inet:127.0.0.1:{}", tcp.port()),
        format!("lmtp:unix:{}", socket.display()),
    ]
    .into_iter()
    .enumerate()
    {
        let postfix = match Postfix::start(env.dir.path(), &transport) {
            Ok(p) => p,
            Err(why) => {
                eprintln!("skipped: Postfix cannot run here: {why}");
                return;
            }
        };
        let subject = format!("via postfix {n}");
        send_through_postfix(postfix.port, &subject);
        wait_for(
            &format!("{transport}: the message in alice's INBOX"),
            60,
            || {
                messages(&env, "alice@example.org", "")
                    .iter()
                    .any(|(_, t)| t.contains(&subject))
            },
        );
        wait_for(
            &format!("{transport}: Postfix logs both results"),
            60,
            || {
                let log = postfix.log();
                log.contains("to=<nobody@example.org>") && log.contains("to=<alice@example.org>")
            },
        );
        let inbox = messages(&env, "alice@example.org", "");
        let (_, text) = inbox.iter().find(|(_, t)| t.contains(&subject)).unwrap();
        // Ours on top (LMTP is a hop), then Postfix's.
        let ours = text.find("Received: from relay.postfix.test").expect(text);
        let theirs = text.find("by relay.postfix.test (Postfix)").expect(text);
        assert!(ours < theirs, "{text}");
        assert!(text.contains("with LMTP id "), "{text}");
        let log = postfix.log();
        let alice = log
            .lines()
            .find(|l| l.contains("to=<alice@example.org>") && l.contains("status="))
            .unwrap_or_else(|| panic!("{log}"));
        assert!(
            alice.contains("status=sent (250 2.0.0 <alice@example.org> stored in"),
            "{alice}"
        );
        let nobody = log
            .lines()
            .find(|l| l.contains("to=<nobody@example.org>") && l.contains("status="))
            .unwrap_or_else(|| panic!("{log}"));
        assert!(nobody.contains("status=bounced"), "{nobody}");
        assert!(nobody.contains("550 5.1.1"), "{nobody}");
    }
    drop(server);
}

#[test]
fn postfix_pipes_into_postern_deliver() {
    if !on_path("postconf") || !on_path("postfix") || !on_path("python3") {
        eprintln!("skipped: Postfix or python3 is not installed (test.sh installs them)");
        return;
    }
    if !unsafe_is_root() {
        eprintln!("skipped: a private Postfix instance must be started as root");
        return;
    }
    let (env, _) = lmtp_env("");
    // pipe(8) never runs a command as root: the data directory belongs to nobody, as it would
    // to the server user, and the LDA runs as that user.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let chown = Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(env.data())
        .status()
        .unwrap();
    assert!(chown.success());
    let master = format!(
        "postern unix - n n - - pipe flags=hu user=nobody argv={} --config {} deliver -f ${{sender}} -a ${{original_recipient}} -d ${{recipient}}",
        env!("CARGO_BIN_EXE_postern"),
        env.config.display()
    );
    let postfix = match Postfix::start_with(
        env.dir.path(),
        "postern:",
        "postern_destination_recipient_limit = 1",
        &master,
    ) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("skipped: Postfix cannot run here: {why}");
            return;
        }
    };
    send_through_postfix(postfix.port, "piped");
    wait_for("Postfix logs both results of the pipe", 60, || {
        let log = postfix.log();
        log.contains("to=<nobody@example.org>") && log.contains("to=<alice@example.org>")
    });
    let log = postfix.log();
    let line = |who: &str| {
        log.lines()
            .find(|l| l.contains(&format!("to=<{who}>")) && l.contains("status="))
            .unwrap_or_else(|| panic!("{log}"))
            .to_string()
    };
    assert!(
        line("alice@example.org").contains("status=sent (delivered via postern service)"),
        "{log}"
    );
    let nobody = line("nobody@example.org");
    assert!(nobody.contains("status=bounced"), "{nobody}");
    assert!(nobody.contains("5.1.1"), "{nobody}");
    let inbox = messages(&env, "alice@example.org", "");
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    let text = &inbox[0].1;
    assert!(
        text.starts_with(
            "Return-Path: <sender@remote.test>\r\nDelivered-To: alice@example.org\r\n"
        ),
        "{text}"
    );
    assert!(text.contains("(postern deliver, uid 65534)"), "{text}");
    assert!(text.contains("by relay.postfix.test (Postfix)"), "{text}");
}
