//! `sendmail` end to end: the real binary (as `postern sendmail`, and by the names
//! `sendmail`/`mailq` through `install-links`), run as root and as the unprivileged `nobody`,
//! with `serve` running (the socket) and stopped (the maildrop); Python's smtplib speaking
//! SMTP to `sendmail -bs` over a pipe; bsd-mailx and mutt configured to use it. Mail is checked
//! where it lands: the recipient's Maildir.

mod common;

use common::{on_path, python, run_command, Env};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A server with accounts alice and bob in mx.test; the temp directory is traversable (not
/// listable) so that `nobody` can reach the configuration and the public socket.
fn setup() -> Env {
    let env = Env::new();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    env.ok(&["domain", "add", "mx.test"], "");
    env.ok(&["user", "add", "alice@mx.test"], "secret\n");
    env.ok(&["user", "add", "bob@mx.test"], "secret\n");
    env
}

/// `postern --config CFG ARGS` as `nobody`.
fn as_nobody(env: &Env, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_postern"))
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .current_dir(env.dir.path())
        .env("HOME", "/nonexistent")
        .env_remove("POSTERN_CONFIG");
    c
}

fn sendmail(env: &Env, args: &[&str], stdin: &str) -> Output {
    let mut all = vec!["sendmail"];
    all.extend_from_slice(args);
    env.run(&all, stdin)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The messages in an account's Maildir INBOX, waiting (up to a minute) until there are `n`.
fn wait_for_mail(env: &Env, address: &str, n: usize) -> Vec<String> {
    let dir = env.maildir(address);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
                for e in entries.flatten() {
                    found.push(std::fs::read_to_string(e.path()).unwrap());
                }
            }
        }
        if found.len() >= n || Instant::now() > deadline {
            assert_eq!(found.len(), n, "messages for {address}: {found:?}");
            found.sort();
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn with_subject<'a>(messages: &'a [String], subject: &str) -> &'a str {
    messages
        .iter()
        .find(|m| m.contains(&format!("Subject: {subject}\r\n")))
        .unwrap_or_else(|| panic!("no message with subject {subject:?} in {messages:?}"))
}

#[test]
fn root_and_an_unprivileged_user_send() {
    let env = setup();
    let _server = env.serve();

    // Arguments, an unqualified recipient, the lone dot ending the message (no -i).
    let out = sendmail(
        &env,
        &["-v", "alice"],
        "Subject: from root\nTo: alice@mx.test\n\n..leading dot\nline two\n.\nnot part of it\n",
    );
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    ok(&out);
    assert!(said.contains("queued as "), "{said}");
    let mail = wait_for_mail(&env, "alice@mx.test", 1);
    let m = with_subject(&mail, "from root");
    assert!(
        m.contains("Received: (from root@localhost)\r\n\tby mx.test (postern) id "),
        "{m}"
    );
    assert!(m.contains("\r\nDate: "), "{m}");
    assert!(m.contains("\r\nMessage-ID: <"), "{m}");
    assert!(m.contains("@mx.test>\r\n"), "{m}");
    assert!(m.contains("\r\nFrom: "), "{m}");
    assert!(m.contains("<root@mx.test>\r\n"), "{m}");
    assert!(m.ends_with("\r\n\r\n..leading dot\r\nline two\r\n"), "{m}");
    assert!(!m.contains("not part of it"));

    // -t: recipients from To/Cc/Bcc, the Bcc field removed; -i keeps a lone dot; root may
    // choose the sender.
    ok(&sendmail(
        &env,
        &["-t", "-i", "-f", "boss@elsewhere.example", "-F", "The Boss"],
        "Subject: extract\nTo: Alice <alice@mx.test>\nBcc: bob@mx.test\n\nbody\n.\nstill body\n",
    ));
    let alice = wait_for_mail(&env, "alice@mx.test", 2);
    let bob = wait_for_mail(&env, "bob@mx.test", 1);
    for m in [with_subject(&alice, "extract"), bob[0].as_str()] {
        assert!(!m.to_ascii_lowercase().contains("\nbcc:"), "{m}");
        assert!(
            m.contains("From: The Boss <boss@elsewhere.example>\r\n"),
            "{m}"
        );
        assert!(m.ends_with("\r\nbody\r\n.\r\nstill body\r\n"), "{m}");
    }

    if !is_root() {
        eprintln!("not root: the unprivileged half of this test needs setpriv as root; skipped");
        return;
    }
    // nobody sends as nobody@mx.test, and only as that.
    let out = run_command(
        &mut as_nobody(&env, &["sendmail", "alice@mx.test"]),
        "Subject: from nobody\n\nhi\n",
    );
    ok(&out);
    let alice = wait_for_mail(&env, "alice@mx.test", 3);
    let m = with_subject(&alice, "from nobody");
    assert!(m.contains("Received: (from nobody@localhost)"), "{m}");
    assert!(m.contains("<nobody@mx.test>\r\n"), "{m}");
    let out = run_command(
        &mut as_nobody(&env, &["sendmail", "-f", "root@mx.test", "alice@mx.test"]),
        "Subject: forged\n\nhi\n",
    );
    assert_eq!(out.status.code(), Some(77), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("may not send as <root@mx.test>"), "{err}");
    // Its own address, explicitly, is fine; the null sender is not.
    ok(&run_command(
        &mut as_nobody(&env, &["sendmail", "-f", "nobody", "alice@mx.test"]),
        "Subject: own -f\n\nhi\n",
    ));
    let out = run_command(
        &mut as_nobody(&env, &["sendmail", "-f", "<>", "alice@mx.test"]),
        "Subject: null\n\nhi\n",
    );
    assert_eq!(out.status.code(), Some(77));
    wait_for_mail(&env, "alice@mx.test", 4);
    // The queue through the socket (the spool itself is private).
    let out = run_command(&mut as_nobody(&env, &["sendmail", "-bp"]), "");
    let text = ok(&out);
    assert!(
        text.contains("Mail queue is empty") || text.contains("Kbytes in"),
        "{text}"
    );
    let out = run_command(&mut as_nobody(&env, &["mailq"]), "");
    assert!(
        !out.status.success(),
        "postern mailq reads the spool: not for nobody"
    );
}

#[test]
fn usage_errors_and_exit_codes() {
    let env = setup();
    let _server = env.serve();
    for (args, code, words) in [
        (&["-k", "alice"][..], 64, "unknown option -k"),
        (&["-bd"], 64, "postern serve"),
        (&["-N", "sometimes", "alice"], 64, "-N sometimes"),
        (&[], 64, "no recipients"),
        (&["-t"], 64, "no recipient addresses found"),
        (&["a@b@c"], 65, "not a valid address"),
    ] {
        let out = sendmail(&env, args, "Subject: x\n\nbody\n");
        assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("sendmail: "), "{err}");
        assert!(err.contains(words), "{args:?}: {err}");
    }
    // Too large for [smtp] max_message_size.
    let small = Env::with_config("[smtp]\nmax_message_size = 1000\n");
    let out = small.run(&["sendmail", "-i", "x@y.example"], &"a".repeat(2000));
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    // A broken configuration is EX_CONFIG.
    let out = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["sendmail", "-C", "/nonexistent/postern.toml", "x@y.example"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    // Ignored historical options.
    ok(&sendmail(
        &env,
        &[
            "-oem", "-odi", "-U", "-L", "tag", "-h", "5", "-B", "8BITMIME", "--", "alice",
        ],
        "Subject: ignored options\n\n8-bit: é\n",
    ));
    let m = wait_for_mail(&env, "alice@mx.test", 1);
    assert!(m[0].contains("8-bit: é"), "{}", m[0]);
}

#[test]
fn smtplib_speaks_to_sendmail_bs_over_a_pipe() {
    let env = setup();
    let _server = env.serve();
    let script = r#"
import smtplib, socket, subprocess, sys
a, b = socket.socketpair()
p = subprocess.Popen(sys.argv[1:], stdin=b, stdout=b)
b.close()
s = smtplib.SMTP()
s.sock = a
s.file = None
code, msg = s.getreply()
assert code == 220, (code, msg)
code, msg = s.ehlo("client.local")
assert code == 250 and s.has_extn("8bitmime"), (code, msg)
refused = s.sendmail("root@mx.test", ["alice@mx.test", "bob@mx.test"],
                     b"Subject: via -bs\r\n\r\nhello from smtplib\r\n.dot\r\n")
assert refused == {}, refused
code, msg = s.docmd("AUTH", "PLAIN AGFAYg==")
assert code == 503, (code, msg)
s.quit()
a.close()
assert p.wait() == 0
print("done")
"#;
    let out = python(
        script,
        &[
            env!("CARGO_BIN_EXE_postern").to_string(),
            "--config".to_string(),
            env.config.display().to_string(),
            "sendmail".to_string(),
            "-bs".to_string(),
        ],
    );
    assert!(out.contains("done"), "{out}");
    for who in ["alice@mx.test", "bob@mx.test"] {
        let m = wait_for_mail(&env, who, 1);
        assert!(m[0].contains("Received: (from root@localhost)"), "{}", m[0]);
        assert!(!m[0].contains("[127.0.0.1]"), "{}", m[0]);
        assert!(
            m[0].ends_with("\r\n\r\nhello from smtplib\r\n.dot\r\n"),
            "{}",
            m[0]
        );
    }
}

#[test]
fn the_maildrop_keeps_mail_while_serve_is_stopped() {
    let env = setup();
    // The first start creates the public part; then serve is gone (killed: its socket file
    // stays behind, stale).
    drop(env.serve());
    let maildrop = env.data().join("public/maildrop");
    let mode = std::fs::metadata(&maildrop).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o1733);
    assert_eq!(
        std::fs::metadata(env.data()).unwrap().permissions().mode() & 0o777,
        0o711
    );

    let out = sendmail(
        &env,
        &["-v", "alice@mx.test"],
        "Subject: dropped by root\n\nwait\n",
    );
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("maildrop"));
    let mut expected = 1;
    if is_root() {
        ok(&run_command(
            &mut as_nobody(&env, &["sendmail", "bob@mx.test"]),
            "Subject: dropped by nobody\n\nwait\n",
        ));
        expected += 1;
        // What nobody cannot do: list the maildrop, read the spool or anything private.
        let data = env.data();
        for (cmd, path) in [
            ("ls", maildrop.clone()),
            ("ls", data.clone()),
            ("ls", data.join("spool")),
            ("cat", data.join("directory.db")),
        ] {
            let out = run_command(
                Command::new("setpriv")
                    .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
                    .arg(cmd)
                    .arg(&path),
                "",
            );
            assert!(
                !out.status.success(),
                "nobody could {cmd} {}",
                path.display()
            );
        }
        // Nor may it send as someone else through the maildrop.
        let out = run_command(
            &mut as_nobody(&env, &["sendmail", "-f", "alice@mx.test", "bob@mx.test"]),
            "Subject: forged\n\nx\n",
        );
        assert_eq!(out.status.code(), Some(77));
    }
    let files: Vec<_> = std::fs::read_dir(&maildrop).unwrap().flatten().collect();
    assert_eq!(files.len(), expected);
    for f in &files {
        let mode = f.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o604, "{}", f.path().display());
    }

    // A stranger's junk is set aside, not lost, not queued.
    std::fs::write(maildrop.join("0123456789abcdef0123456789abcdef"), "junk").unwrap();

    let server = env.serve();
    let m = wait_for_mail(&env, "alice@mx.test", 1);
    assert!(m[0].contains("Received: (from root@localhost)"), "{}", m[0]);
    if is_root() {
        let m = wait_for_mail(&env, "bob@mx.test", 1);
        assert!(
            m[0].contains("Received: (from nobody@localhost)"),
            "{}",
            m[0]
        );
        assert!(m[0].contains("<nobody@mx.test>"), "{}", m[0]);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&maildrop).unwrap().count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_dir(&maildrop).unwrap().count(), 0);
    let bad: Vec<_> = std::fs::read_dir(env.data().join("maildrop-bad"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(std::fs::read(bad[0].path()).unwrap(), b"junk");
    drop(server);
    // The data directory, with its public part, still passes serve's audit.
    drop(env.serve());
    let out = env.run(&["check-config"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("public"), "{err}");
}

/// A directory with `sendmail`, `mailq`, `newaliases` linked to postern by `install-links`.
fn links(env: &Env) -> PathBuf {
    let bin = env.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let said = env.ok(&["install-links", bin.to_str().unwrap()], "");
    assert!(said.contains("sendmail -> "), "{said}");
    // Again: nothing to do. A foreign file is refused without --force.
    let said = env.ok(&["install-links", bin.to_str().unwrap()], "");
    assert!(said.contains("already links to"), "{said}");
    bin
}

#[test]
fn called_by_name_through_install_links() {
    let env = setup();
    let _server = env.serve();
    let bin = links(&env);
    let other = env.dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("sendmail"), "#!/bin/sh\n").unwrap();
    let err = env.fails(&["install-links", other.to_str().unwrap()], "");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read(other.join("sendmail")).unwrap(),
        b"#!/bin/sh\n"
    );

    let out = run_command(
        Command::new(bin.join("sendmail"))
            .args(["-oi", "alice@mx.test"])
            .env("POSTERN_CONFIG", &env.config),
        "Subject: by name\n\nhi\n",
    );
    ok(&out);
    wait_for_mail(&env, "alice@mx.test", 1);
    let out = run_command(
        Command::new(bin.join("mailq")).env("POSTERN_CONFIG", &env.config),
        "",
    );
    let text = ok(&out);
    assert!(
        text.contains("Mail queue is empty") || text.contains("Kbytes in"),
        "{text}"
    );
}

fn mua_env(env: &Env, bin: &Path, c: &mut Command) {
    c.env("POSTERN_CONFIG", &env.config)
        .env("HOME", env.dir.path())
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
}

#[test]
fn bsd_mailx_and_mutt_send_through_it() {
    let env = setup();
    let _server = env.serve();
    let bin = links(&env);
    let sendmail = bin.join("sendmail");
    let mut expected = 0;
    if on_path("bsd-mailx") {
        let rc = env.dir.path().join("mailrc");
        std::fs::write(&rc, format!("set sendmail={}\n", sendmail.display())).unwrap();
        let mut c = Command::new("bsd-mailx");
        c.args(["-s", "from mailx", "alice@mx.test"])
            .env("MAILRC", &rc);
        mua_env(&env, &bin, &mut c);
        ok(&run_command(&mut c, "written by bsd-mailx\n"));
        expected += 1;
    } else {
        eprintln!("bsd-mailx is not installed (test.sh installs it): skipped");
    }
    if on_path("mutt") {
        let rc = env.dir.path().join("muttrc");
        std::fs::write(
            &rc,
            format!(
                "set sendmail=\"{}\"\nset hostname=\"mx.test\"\nset from=\"root@mx.test\"\n\
                 set use_from=yes\nset copy=no\nset record=\"\"\n",
                sendmail.display()
            ),
        )
        .unwrap();
        let mut c = Command::new("mutt");
        c.args(["-n", "-F"])
            .arg(&rc)
            .args(["-s", "from mutt", "--", "alice@mx.test"]);
        mua_env(&env, &bin, &mut c);
        ok(&run_command(&mut c, "written by mutt\n"));
        expected += 1;
    } else {
        eprintln!("mutt is not installed (test.sh installs it): skipped");
    }
    if expected == 0 {
        return;
    }
    let mail = wait_for_mail(&env, "alice@mx.test", expected);
    if on_path("bsd-mailx") {
        let m = with_subject(&mail, "from mailx");
        assert!(m.contains("written by bsd-mailx"), "{m}");
        assert!(m.contains("Received: (from root@localhost)"), "{m}");
    }
    if on_path("mutt") {
        let m = with_subject(&mail, "from mutt");
        assert!(m.contains("written by mutt"), "{m}");
        assert!(
            m.contains("From: root@mx.test") || m.contains("<root@mx.test>"),
            "{m}"
        );
    }
}
