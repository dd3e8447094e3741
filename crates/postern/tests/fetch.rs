//! Retrieval from remote mailboxes, end to end: the real `postern` binary (`fetch add|run|list`
//! and `serve`'s scheduler) against a real Dovecot (POP3, POP3S, IMAP, IMAPS, started privately
//! by scripts/start-dovecot.sh with a certificate made here by openssl), whose Maildir is
//! filled with awkward messages (8-bit, large, lines starting with '.', duplicate
//! Message-IDs). Mail must arrive byte-identical (after our trace fields) in postern's Maildir,
//! once; through local delivery (a Sieve script files it); to two local accounts by multidrop;
//! within seconds under IDLE; without loss or duplicate after `kill -9`; TLS verified (a
//! self-signed server refused until its certificate is given); a wrong password backs off
//! instead of hammering, and never shows in `ps` or the log.

mod common;

use common::Env;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ALICE: &str = "alice@example.org";
const CAROL: &str = "carol@example.org";
const PASS: &str = "local-pass-1";
/// Dovecot's static passdb takes this password for every user.
const REMOTE_PASS: &str = "pass";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn path_with_sbin() -> String {
    format!(
        "{}:/usr/sbin:/sbin",
        std::env::var("PATH").unwrap_or_default()
    )
}

fn have_dovecot() -> bool {
    let ok = common::on_path("dovecot")
        && Path::new("/usr/lib/dovecot/pop3").exists()
        && common::on_path("openssl");
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "dovecot-imapd, dovecot-pop3d and openssl are needed but CI is set (./test.sh installs them)"
        );
        eprintln!("\n*** SKIPPED: dovecot-imapd, dovecot-pop3d or openssl is not installed ***\n");
    }
    ok
}

/// A private Dovecot with TLS (a certificate for 127.0.0.1 from a private CA), stopped when
/// dropped.
struct Remote {
    dir: tempfile::TempDir,
    imap: u16,
    imaps: u16,
    pop3: u16,
    pop3s: u16,
}

impl Remote {
    fn start() -> Remote {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A private CA (cert.pem, what --ca-file gets) and the server's certificate it signs.
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Test CA",
            "-keyout",
            "ca-key.pem",
            "-out",
            "cert.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            d.join("ext.cnf"),
            "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "cert.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ]);
        let (imap, imaps, pop3, pop3s) = (free_port(), free_port(), free_port(), free_port());
        let out = Command::new("bash")
            .arg(repo().join("scripts/start-dovecot.sh"))
            .arg(d.join("dovecot"))
            .arg(imap.to_string())
            .env("PATH", path_with_sbin())
            .env("POP3_PORT", pop3.to_string())
            .env("POP3S_PORT", pop3s.to_string())
            .env("IMAPS_PORT", imaps.to_string())
            .env("TLS_CERT", d.join("server.pem"))
            .env("TLS_KEY", d.join("key.pem"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "start-dovecot.sh: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for port in [imaps, pop3, pop3s] {
            let start = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(start.elapsed() < Duration::from_secs(30), "port {port}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Remote {
            dir,
            imap,
            imaps,
            pop3,
            pop3s,
        }
    }

    /// The private CA's certificate.
    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot/dovecot.log")).unwrap_or_default()
    }

    /// Puts messages into `user`'s Maildir new/, as a local delivery agent would.
    fn add(&self, user: &str, messages: &[Vec<u8>]) {
        let md = self.dir.path().join("dovecot/mail").join(user);
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(md.join(sub)).unwrap();
        }
        let base = std::fs::read_dir(md.join("new")).unwrap().count()
            + std::fs::read_dir(md.join("cur")).unwrap().count();
        for (i, m) in messages.iter().enumerate() {
            let name = format!("1700000000.M{}P1.test", base + i);
            std::fs::write(md.join("tmp").join(&name), m).unwrap();
            std::fs::rename(md.join("tmp").join(&name), md.join("new").join(&name)).unwrap();
        }
        if unsafe { libc::geteuid() } == 0 {
            let ok = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(self.dir.path().join("dovecot/mail"))
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/start-dovecot.sh"))
            .arg("--stop")
            .arg(self.dir.path().join("dovecot"))
            .env("PATH", path_with_sbin())
            .status();
    }
}

/// A message with LF line ends (as Maildir files have them).
fn message(i: usize, message_id: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "Return-Path: <sender{i}@remote.example>\nFrom: Sender <sender{i}@remote.example>\n\
         To: bob@remote.example\nSubject: {subject}\nMessage-ID: <{message_id}>\n\
         Date: Thu, 03 Dec 2026 10:00:{:02} +0000\n\n{body}\n",
        i % 60
    )
    .into_bytes()
}

/// The awkward corpus: plain, 8-bit, dot lines, a large one, two different messages sharing a
/// Message-ID, and an exact copy of a message (another file).
fn corpus() -> Vec<Vec<u8>> {
    let mut out = vec![
        message(0, "plain@remote.example", "plain", "Hello."),
        message(
            1,
            "8bit@remote.example",
            "8-bit",
            "Gr\u{fc}\u{df}e aus K\u{f6}ln \u{2014} \u{1f600}",
        ),
        message(2, "dots@remote.example", "dots", ".\n..\n.leading dot\nend"),
        message(3, "same@remote.example", "same id one", "first of two"),
        message(4, "same@remote.example", "same id two", "second of two"),
    ];
    let mut big = String::new();
    while big.len() < 3 * 1024 * 1024 {
        big.push_str("large message line with some text in it, 0123456789 abcdefghij\n");
    }
    out.push(message(5, "large@remote.example", "large", &big));
    out.push(out[0].clone());
    out
}

/// Every message file under a postern account's Maildir (all folders), LF line ends.
fn local_messages(env: &Env, account: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![env.maildir(account)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.parent()
                    .and_then(|d| d.file_name())
                    .and_then(|n| n.to_str()),
                Some("new" | "cur")
            ) {
                let data = std::fs::read(&p).unwrap();
                out.push((p, lf(&data)));
            }
        }
    }
    out
}

fn lf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

/// Each remote message is in the local Maildir exactly once, its bytes intact after the trace
/// fields postern added on top (Return-Path, Delivered-To, Received).
fn assert_arrived_once(env: &Env, account: &str, remote: &[Vec<u8>]) {
    let local = local_messages(env, account);
    assert_eq!(local.len(), remote.len(), "message count in {account}");
    let mut used = vec![false; local.len()];
    for m in remote {
        let found = local.iter().enumerate().find(|(i, (_, data))| {
            !used[*i] && data.ends_with(m) && trace_only(&data[..data.len() - m.len()])
        });
        let Some((i, _)) = found else {
            panic!(
                "not found intact in {account}: {}",
                String::from_utf8_lossy(&m[..m.len().min(200)])
            );
        };
        used[i] = true;
    }
}

/// The prefix is nothing but our trace fields.
fn trace_only(prefix: &[u8]) -> bool {
    let text = String::from_utf8_lossy(prefix);
    text.split('\n').filter(|l| !l.is_empty()).all(|l| {
        l.starts_with(' ')
            || l.starts_with('\t')
            || l.starts_with("Return-Path:")
            || l.starts_with("Delivered-To:")
            || l.starts_with("Received:")
    }) && text.contains("Received: from 127.0.0.1 by mx.test with ")
}

fn message_ids(env: &Env, account: &str) -> Vec<String> {
    let mut ids: Vec<String> = local_messages(env, account)
        .iter()
        .filter_map(|(_, d)| {
            String::from_utf8_lossy(d)
                .lines()
                .find(|l| l.starts_with("Message-ID:"))
                .map(str::to_string)
        })
        .collect();
    ids.sort();
    ids
}

/// A postern with example.org and two accounts.
fn local_env(extra: &str) -> Env {
    let env = Env::with_config(extra);
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", ALICE], &format!("{PASS}\n"));
    env.ok(&["user", "add", CAROL], &format!("{PASS}\n"));
    env
}

fn add_account(env: &Env, local: &str, url: &str, extra: &[&str], password: &str) -> String {
    let mut args = vec!["fetch", "add", local, "--url", url];
    args.extend_from_slice(extra);
    let out = env.ok(&args, &format!("{password}\n"));
    // "added ID for ..."
    out.split_whitespace().nth(1).unwrap().to_string()
}

/// `postern fetch ARGS`, which must succeed: its standard output (both streams shown if not).
fn fetch_ok(env: &Env, args: &[&str]) -> String {
    let out = env.run(args, "");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "postern {args:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn fetched(out: &str) -> u64 {
    out.lines()
        .filter_map(|l| l.split_once(": fetched "))
        .map(|(_, rest)| rest.split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn pop3s_and_pop3_stls_fetch_everything_once_byte_identical() {
    if !have_dovecot() {
        return;
    }
    let remote = Remote::start();
    let mail = corpus();
    remote.add("bob", &mail);
    remote.add("dave", &mail[..3]);
    let env = local_env("");
    let ca = remote.cert();
    let ca = ca.to_str().unwrap();
    add_account(
        &env,
        ALICE,
        &format!("pop3s://bob@127.0.0.1:{}", remote.pop3s),
        &["--ca-file", ca],
        REMOTE_PASS,
    );
    add_account(
        &env,
        CAROL,
        &format!("pop3://dave@127.0.0.1:{}", remote.pop3),
        &["--ca-file", ca],
        REMOTE_PASS,
    );
    let out = fetch_ok(&env, &["fetch", "run"]);
    assert_eq!(fetched(&out), (mail.len() + 3) as u64, "{out}");
    assert_arrived_once(&env, ALICE, &mail);
    assert_arrived_once(&env, CAROL, &mail[..3]);
    let alice = local_messages(&env, ALICE);
    assert!(alice
        .iter()
        .all(|(_, d)| String::from_utf8_lossy(d).contains(" with POP3S ")));
    assert!(local_messages(&env, CAROL)
        .iter()
        .all(|(_, d)| String::from_utf8_lossy(d).contains(" with POP3 ")));
    // Again: nothing new.
    let out = fetch_ok(&env, &["fetch", "run"]);
    assert_eq!(fetched(&out), 0, "{out}");
    assert_arrived_once(&env, ALICE, &mail);
    // New mail on the remote: only it is fetched.
    let more = vec![message(9, "later@remote.example", "later", "later")];
    remote.add("bob", &more);
    let out = fetch_ok(&env, &["fetch", "run", ALICE]);
    assert_eq!(fetched(&out), 1, "{out}");
    let list = env.ok(&["fetch", "list"], "");
    assert!(
        list.contains("last error: none") && list.contains("fetched 8 messages"),
        "{list}"
    );
    // The database and its key are private.
    use std::os::unix::fs::MetadataExt;
    for f in ["fetch.db", "fetch.key"] {
        let mode = std::fs::metadata(env.data().join(f)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
}

#[test]
fn imaps_and_imap_starttls_fetch_everything_once_and_sieve_files_it() {
    if !have_dovecot() {
        return;
    }
    let remote = Remote::start();
    let mail = corpus();
    remote.add("bob", &mail);
    remote.add("dave", &mail[..3]);
    let env = local_env("");
    // Alice's own Sieve script files the "dots" message: fetched mail goes through local
    // delivery.
    let script = env.dir.path().join("filter.sieve");
    std::fs::write(
        &script,
        "require [\"fileinto\", \"mailbox\"];\nif header :is \"subject\" \"dots\" { fileinto :create \"Filed\"; }\n",
    )
    .unwrap();
    env.ok(
        &["sieve", "put", ALICE, "main", script.to_str().unwrap()],
        "",
    );
    env.ok(&["sieve", "activate", ALICE, "main"], "");
    let ca = remote.cert();
    let ca = ca.to_str().unwrap();
    add_account(
        &env,
        ALICE,
        &format!("imaps://bob@127.0.0.1:{}", remote.imaps),
        &["--ca-file", ca],
        REMOTE_PASS,
    );
    add_account(
        &env,
        CAROL,
        &format!("imap://dave@127.0.0.1:{}", remote.imap),
        &["--ca-file", ca],
        REMOTE_PASS,
    );
    let out = fetch_ok(&env, &["fetch", "run"]);
    assert_eq!(fetched(&out), (mail.len() + 3) as u64, "{out}");
    assert_arrived_once(&env, ALICE, &mail);
    assert_arrived_once(&env, CAROL, &mail[..3]);
    let filed: Vec<_> = local_messages(&env, ALICE)
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().contains(".Filed"))
        .collect();
    assert_eq!(filed.len(), 1, "the Sieve script filed one message");
    assert!(String::from_utf8_lossy(&filed[0].1).contains("Subject: dots"));
    assert!(local_messages(&env, CAROL)
        .iter()
        .all(|(_, d)| String::from_utf8_lossy(d).contains(" with IMAP ")));
    let out = fetch_ok(&env, &["fetch", "run"]);
    assert_eq!(fetched(&out), 0, "{out}");
    assert_arrived_once(&env, ALICE, &mail);
}

#[test]
fn multidrop_from_the_configuration_file_reaches_two_accounts() {
    if !have_dovecot() {
        return;
    }
    let remote = Remote::start();
    let tagged = |i: usize, header: &str, to: &str| {
        let mut m = format!("{header}: {to}\n").into_bytes();
        m.extend(message(
            i,
            &format!("md{i}@remote.example"),
            &format!("md {i}"),
            "x",
        ));
        m
    };
    let mail = vec![
        tagged(0, "X-Original-To", ALICE),
        tagged(1, "X-Original-To", CAROL),
        // The remote delivered it to carol's address: not a loop here.
        tagged(2, "Delivered-To", CAROL),
        // Nobody local: the owner gets it.
        tagged(3, "X-Original-To", "stranger@elsewhere.example"),
    ];
    remote.add("shared", &mail);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("remote.pw");
    std::fs::write(&pw, format!("{REMOTE_PASS}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = local_env(&format!(
        "[[fetch.account]]\nname = \"shared\"\nlocal = \"{ALICE}\"\n\
         url = \"pop3s://shared@127.0.0.1:{}\"\npassword_file = \"{}\"\nca_file = \"{}\"\n\
         envelope = \"multidrop\"\n",
        remote.pop3s,
        pw.display(),
        remote.cert().display()
    ));
    let out = fetch_ok(&env, &["fetch", "run", "config:shared"]);
    assert_eq!(fetched(&out), 4, "{out}");
    let subjects = |a: &str| -> BTreeSet<String> {
        local_messages(&env, a)
            .iter()
            .filter_map(|(_, d)| {
                String::from_utf8_lossy(d)
                    .lines()
                    .find(|l| l.starts_with("Subject:"))
                    .map(str::to_string)
            })
            .collect()
    };
    assert_eq!(
        subjects(ALICE),
        BTreeSet::from(["Subject: md 0".to_string(), "Subject: md 3".to_string()])
    );
    assert_eq!(
        subjects(CAROL),
        BTreeSet::from(["Subject: md 1".to_string(), "Subject: md 2".to_string()])
    );
    // A password file others can read is refused.
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = env.fails(&["fetch", "run", "config:shared"], "");
    let out = env.run(&["fetch", "list"], "");
    let text = format!("{err}{}", String::from_utf8_lossy(&out.stdout));
    assert!(text.contains("chmod 600"), "{text}");
}

#[test]
fn idle_push_arrives_within_seconds_while_serving() {
    if !have_dovecot() {
        return;
    }
    let remote = Remote::start();
    remote.add("bob", &[message(0, "first@remote.example", "first", "x")]);
    let env = local_env("[fetch]\njitter_secs = 0\n");
    add_account(
        &env,
        ALICE,
        &format!("imaps://bob@127.0.0.1:{}", remote.imaps),
        &["--ca-file", remote.cert().to_str().unwrap()],
        REMOTE_PASS,
    );
    let mut serve = env.serve();
    let wait_for = |n: usize| {
        let start = Instant::now();
        while local_messages(&env, ALICE).len() < n {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{n} messages did not arrive"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for(1);
    // APPEND on the remote with Python's imaplib: IDLE tells postern at once.
    common::python(
        r#"
import imaplib, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
c.login("bob", "pass")
c.append("INBOX", None, None, b"From: x@remote.example\r\nSubject: pushed\r\nMessage-ID: <pushed@remote.example>\r\n\r\npushed\r\n")
c.logout()
"#,
        &[remote.imap.to_string()],
    );
    let appended = Instant::now();
    wait_for(2);
    eprintln!(
        "pushed message arrived {:?} after APPEND",
        appended.elapsed()
    );
    assert!(message_ids(&env, ALICE).contains(&"Message-ID: <pushed@remote.example>".to_string()));
    // serve watches the account: a CLI run waits for it a while, then leaves it to serve.
    let out = fetch_ok(&env, &["fetch", "run"]);
    assert!(out.contains("skipped: serve is fetching it"), "{out}");
    let list = env.ok(&["fetch", "list"], "");
    assert!(list.contains("fetched 2 messages"), "{list}");
    // SIGTERM: the watch ends (IDLE left, logged out) and serve stops by itself.
    let pid = libc::pid_t::try_from(serve.child.id()).unwrap();
    // SAFETY: signalling the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let start = Instant::now();
    while serve.child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "serve did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log: Vec<String> = serve.log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.ends_with("stopped")),
        "{}",
        log.join("\n")
    );
}

#[test]
fn killed_during_a_big_run_loses_and_duplicates_nothing() {
    if !have_dovecot() {
        return;
    }
    let remote = Remote::start();
    let n = 400;
    let mail: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            message(
                i,
                &format!("bulk{i}@remote.example"),
                &format!("bulk {i}"),
                &"some body text for the bulk messages\n".repeat(200),
            )
        })
        .collect();
    remote.add("bob", &mail);
    let env = local_env("");
    add_account(
        &env,
        ALICE,
        &format!("imaps://bob@127.0.0.1:{}", remote.imaps),
        &["--ca-file", remote.cert().to_str().unwrap(), "--no-check"],
        REMOTE_PASS,
    );
    let mut child = env
        .command()
        .args(["fetch", "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let got = local_messages(&env, ALICE).len();
        if got >= 20 || child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let before = local_messages(&env, ALICE).len();
    eprintln!("killed with {before} of {n} delivered");
    let out = env.run(&["fetch", "run"], "");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ids = message_ids(&env, ALICE);
    assert_eq!(ids.len(), n, "every message once");
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), n, "no duplicate");
    assert_arrived_once(&env, ALICE, &mail);
}

#[test]
fn a_self_signed_server_is_refused_until_its_certificate_is_given() {
    if !have_dovecot() {
        return;
    }
    let remote = Remote::start();
    remote.add("bob", &[message(0, "tls@remote.example", "tls", "x")]);
    let env = local_env("");
    let url = format!("imaps://bob@127.0.0.1:{}", remote.imaps);
    let err = env.fails(&["fetch", "add", ALICE, "--url", &url], "pass\n");
    assert!(
        err.to_lowercase().contains("tls") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
    assert!(env
        .ok(&["fetch", "list"], "")
        .contains("no remote accounts"));
    let url3 = format!("pop3s://bob@127.0.0.1:{}", remote.pop3s);
    let id = add_account(&env, ALICE, &url3, &["--no-check"], REMOTE_PASS);
    let err = env.fails(&["fetch", "run", &id], "");
    let list = env.ok(&["fetch", "list"], "");
    assert!(list.contains("tls:"), "{err}\n{list}");
    env.ok(&["fetch", "remove", &id], "");
    add_account(
        &env,
        ALICE,
        &url,
        &["--ca-file", remote.cert().to_str().unwrap()],
        REMOTE_PASS,
    );
    let out = fetch_ok(&env, &["fetch", "run"]);
    assert_eq!(fetched(&out), 1, "{out}");
}

#[test]
fn a_wrong_password_backs_off_and_never_shows() {
    if !have_dovecot() {
        return;
    }
    let remote = Remote::start();
    let secret = "Wr0ng-Secr3t-xyzzy";
    let env = local_env("[fetch]\njitter_secs = 0\n");
    let url = format!("pop3s://bob@127.0.0.1:{}", remote.pop3s);
    let ca = remote.cert();
    let ca = ca.to_str().unwrap();
    // Checked at add: refused, nothing stored.
    let err = env.fails(
        &["fetch", "add", ALICE, "--url", &url, "--ca-file", ca],
        &format!("{secret}\n"),
    );
    assert!(err.contains("auth"), "{err}");
    let id = add_account(&env, ALICE, &url, &["--ca-file", ca, "--no-check"], secret);
    let failures = |log: &str| log.matches("auth failed").count();
    let before = failures(&remote.log());
    let serve = env.serve();
    // serve tries once, then waits out the long back-off (auth_backoff_secs, an hour).
    let start = Instant::now();
    while failures(&remote.log()) == before {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "serve never tried"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The password is nowhere in any process's command line.
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            assert!(!String::from_utf8_lossy(&cmdline).contains(secret));
        }
    }
    std::thread::sleep(Duration::from_secs(6));
    let after = failures(&remote.log()) - before;
    assert_eq!(after, 1, "one attempt, then back-off:\n{}", remote.log());
    let log: Vec<String> = serve.log.try_iter().collect();
    let log = log.join("\n");
    assert!(log.contains("fetch failed: auth"), "{log}");
    assert!(!log.contains(secret) && !remote.log().contains(secret));
    let list = env.ok(&["fetch", "list"], "");
    assert!(list.contains("auth:") && list.contains(&id), "{list}");
    drop(serve);
    let out = env.run(&["fetch", "run"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("failed: auth"));
}

#[test]
fn serve_refuses_a_configuration_account_of_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "x\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = local_env(&format!(
        "[[fetch.account]]\nname = \"ghost\"\nlocal = \"ghost@example.org\"\n\
         url = \"imaps://g@127.0.0.1:1\"\npassword_file = \"{}\"\n",
        pw.display()
    ));
    let err = env.fails(&["serve"], "");
    assert!(
        err.contains("ghost@example.org is not a local account"),
        "{err}"
    );
    // A password file others can read is refused by check-config as by serve.
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = env.fails(&["check-config"], "");
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn all_imap_folders_land_in_local_folders_with_their_flags() {
    if !have_dovecot() {
        return;
    }
    let remote = Remote::start();
    remote.add(
        "bob",
        &[message(0, "inbox@remote.example", "in inbox", "x")],
    );
    // Folders and flags made by a real client (Python's imaplib) on the remote.
    common::python(
        r#"
import imaplib, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
c.login("bob", "pass")
c.create("Lists")
c.append("Lists", "(\\Flagged \\Seen)", None, b"From: l@remote.example\r\nSubject: in lists\r\nMessage-ID: <lists@remote.example>\r\n\r\nlist mail\r\n")
c.logout()
"#,
        &[remote.imap.to_string()],
    );
    let env = local_env("");
    add_account(
        &env,
        ALICE,
        &format!("imaps://bob@127.0.0.1:{}", remote.imaps),
        &[
            "--ca-file",
            remote.cert().to_str().unwrap(),
            "--folders",
            "all",
        ],
        REMOTE_PASS,
    );
    let out = fetch_ok(&env, &["fetch", "run"]);
    assert_eq!(fetched(&out), 2, "{out}");
    let local = local_messages(&env, ALICE);
    let (path, data) = local
        .iter()
        .find(|(_, d)| String::from_utf8_lossy(d).contains("Subject: in lists"))
        .expect("the Lists message arrived");
    let path = path.to_string_lossy();
    assert!(path.contains("/.Lists/"), "{path}");
    // Maildir info: F (flagged) and S (seen), as the remote had them.
    let info = path.rsplit(":2,").next().unwrap();
    assert!(info.contains('F') && info.contains('S'), "{path}");
    assert!(
        String::from_utf8_lossy(data).starts_with("Received: from 127.0.0.1 by mx.test with IMAPS")
    );
    let inbox = local
        .iter()
        .find(|(_, d)| String::from_utf8_lossy(d).contains("Subject: in inbox"))
        .unwrap();
    assert!(!inbox.0.to_string_lossy().contains("/.Lists/"));
    assert_eq!(fetched(&fetch_ok(&env, &["fetch", "run"])), 0);
}

#[test]
fn serve_polls_an_account_added_while_it_runs() {
    if !have_dovecot() {
        return;
    }
    let remote = Remote::start();
    remote.add("bob", &[message(0, "poll1@remote.example", "poll 1", "x")]);
    let env = local_env("[fetch]\ninterval_secs = 10\njitter_secs = 0\n");
    let serve = env.serve();
    // Added with the CLI while serve runs; `postern reload` makes serve read the list now.
    add_account(
        &env,
        ALICE,
        &format!("pop3://bob@127.0.0.1:{}", remote.pop3),
        &["--ca-file", remote.cert().to_str().unwrap()],
        REMOTE_PASS,
    );
    env.ok(&["reload"], "");
    let wait_for = |n: usize| {
        let start = Instant::now();
        while local_messages(&env, ALICE).len() < n {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{n} messages did not arrive"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_for(1);
    // The next poll (10 s later) brings what arrived in between.
    remote.add("bob", &[message(1, "poll2@remote.example", "poll 2", "y")]);
    wait_for(2);
    assert_eq!(message_ids(&env, ALICE).len(), 2);
    let log: Vec<String> = serve.log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("fetch: fetched 1 (")),
        "{}",
        log.join("\n")
    );
}
