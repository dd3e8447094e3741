//! The admin commands, run as a user would run them.

mod common;
use common::Env;

#[test]
fn domain_user_alias_lifecycle() {
    let env = Env::new();
    env.ok(&["domain", "add", "Example.ORG"], "");
    assert_eq!(env.ok(&["domain", "list"], "").trim(), "example.org");
    let e = env.fails(&["domain", "add", "example.org"], "");
    assert!(e.contains("example.org"), "{e}");

    // The password comes from standard input; the account exists as a Maildir a person can ls.
    env.ok(&["user", "add", "Alice@Example.org"], "correct horse\n");
    let md = env.maildir("alice@example.org");
    for sub in [
        "cur",
        "new",
        "tmp",
        ".Sent/cur",
        ".Drafts/new",
        ".Trash/tmp",
        ".Junk/cur",
        ".Archive/cur",
    ] {
        assert!(md.join(sub).is_dir(), "{} missing", md.join(sub).display());
    }
    let listed = env.ok(&["user", "list"], "");
    assert!(listed.contains("alice@example.org"), "{listed}");

    // Refusals are clear.
    let e = env.fails(&["user", "add", "bob@nowhere.test"], "pw\n");
    assert!(e.contains("nowhere.test"), "{e}");
    let e = env.fails(&["user", "add", "alice@example.org"], "pw\n");
    assert!(e.contains("alice@example.org"), "{e}");
    let e = env.fails(&["user", "add", "carol@example.org"], "");
    assert!(e.contains("password"), "{e}");

    env.ok(&["user", "passwd", "alice@example.org"], "battery staple\n");

    env.ok(&["user", "add", "bob@example.org"], "pw\n");
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
    env.ok(&["alias", "add", "@example.org", "alice@example.org"], "");
    let aliases = env.ok(&["alias", "list"], "");
    assert!(aliases.contains("team@example.org"), "{aliases}");
    assert!(aliases.contains("bob@example.org"), "{aliases}");
    assert!(aliases.contains("@example.org"), "{aliases}");
    let e = env.fails(
        &["alias", "add", "x@elsewhere.test", "alice@example.org"],
        "",
    );
    assert!(e.contains("elsewhere.test"), "{e}");
    env.ok(
        &["alias", "remove", "team@example.org", "bob@example.org"],
        "",
    );
    let aliases = env.ok(&["alias", "list"], "");
    assert!(!aliases.contains("bob@example.org"), "{aliases}");

    // A domain with accounts is not removed by accident.
    let e = env.fails(&["domain", "remove", "example.org"], "");
    assert!(e.contains("example.org"), "{e}");

    // Removing an account keeps its mail unless asked.
    env.ok(&["user", "remove", "bob@example.org"], "");
    assert!(env.maildir("bob@example.org").join("cur").is_dir());
    env.ok(&["user", "remove", "alice@example.org", "--purge"], "");
    assert!(!md.exists());
    assert!(!env.ok(&["user", "list"], "").contains("alice@"));
}

#[test]
fn importing_a_legacy_hash() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    // SHA-512 crypt of "password" with salt "saltsalt", as /etc/shadow stores it.
    let shadow = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/\n";
    env.ok(&["user", "add", "--hash", "old@example.org"], shadow);
    // Without the plaintext there are no SCRAM keys yet; the listing says so and never
    // shows key material.
    let listed = env.ok(&["user", "list"], "");
    let line = listed.lines().find(|l| l.starts_with("old@")).unwrap();
    assert!(line.contains("no SCRAM keys yet"), "{listed}");
    let e = env.fails(
        &["user", "add", "--hash", "bad@example.org"],
        "not-a-hash\n",
    );
    assert!(e.to_lowercase().contains("hash"), "{e}");
}

#[test]
fn old_installation_hashes_log_in_over_imap_and_become_argon2id() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    // `openssl passwd -1 -salt saltsalt password`: postfixadmin's old MD5-crypt.
    env.ok(
        &["user", "add", "--hash", "md5@example.org"],
        "{MD5-CRYPT}$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/\n",
    );
    // `doveadm pw -s SSHA512 -p hunter2`.
    let ssha512 = "{SSHA512}CQj2OMeSV1K4Kz8wNHTkkitd/XQxB8mQzPGYOt76WzM2ko/0qvubJAqUj0swnt2KpZpr9Ye4yk9Lek3zAD/HhMCf6Hw=";
    env.ok(
        &["user", "add", "--hash", "ssha@example.org"],
        &format!("{ssha512}\n"),
    );
    // A plaintext passwd-file entry; the trailing space belongs to the password.
    env.ok(&["user", "add", "plain@example.org"], "temporary\n");
    env.ok(
        &["user", "passwd", "--hash", "plain@example.org"],
        "{CLEARTEXT}two words \n",
    );
    let e = env.fails(
        &["user", "add", "--hash", "bad@example.org"],
        "{SSHA512}c2FsdA==\n",
    );
    assert!(e.contains("SSHA512"), "{e}");

    // What the directory stores: MD5-crypt bare (it identifies itself), the others
    // with their prefix.
    let db = env.data().join("directory.db");
    let read_hashes = || {
        common::python(
            r#"
import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
for a, h in c.execute("SELECT address, password_hash FROM accounts ORDER BY address"):
    print(a + "\t" + h)
"#,
            &[db.display().to_string()],
        )
    };
    let before = read_hashes();
    assert!(
        before.contains("md5@example.org\t$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/\n"),
        "{before}"
    );
    assert!(
        before.contains(&format!("ssha@example.org\t{ssha512}\n")),
        "{before}"
    );
    assert!(
        before.contains("plain@example.org\t{PLAIN}two words \n"),
        "{before}"
    );
    let listed = env.ok(&["user", "list"], "");
    for user in ["md5@", "ssha@", "plain@"] {
        let line = listed.lines().find(|l| l.starts_with(user)).unwrap();
        assert!(line.contains("no SCRAM keys yet"), "{listed}");
    }

    let run = env.serve();
    let login = r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
try:
    m.login(sys.argv[3], sys.argv[4]); print("in"); m.logout()
except imaplib.IMAP4.error:
    print("refused")
"#;
    let imap = run.addrs["imap"];
    for (user, wrong, right) in [
        ("md5@example.org", "passwore", "password"),
        ("ssha@example.org", "hunter3", "hunter2"),
        ("plain@example.org", "two words", "two words "),
    ] {
        let try_login = |pw: &str| common::python(login, &common::login_args(imap, user, pw));
        assert_eq!(try_login(wrong).trim(), "refused", "{user}");
        assert_eq!(try_login(right).trim(), "in", "{user}");
        // Still the same password after the upgrade.
        assert_eq!(try_login(right).trim(), "in", "{user}");
        assert_eq!(try_login(wrong).trim(), "refused", "{user}");
    }

    let after = read_hashes();
    for user in ["md5@", "ssha@", "plain@"] {
        let line = after.lines().find(|l| l.starts_with(user)).unwrap();
        assert!(line.contains("\t$argon2id$"), "{after}");
    }
    let listed = env.ok(&["user", "list"], "");
    assert!(!listed.contains("no SCRAM keys yet"), "{listed}");
    drop(run);
}

#[test]
fn apop_secret_set_and_clear() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "pop@example.org"], "login-pw\n");
    env.ok(&["user", "apop", "pop@example.org"], "apop-secret\n");
    env.ok(&["user", "apop", "pop@example.org", "--clear"], "");
    let e = env.fails(&["user", "apop", "nobody@example.org"], "x\n");
    assert!(e.contains("nobody@example.org"), "{e}");
}

#[test]
fn reindex_picks_up_mail_dropped_in_by_another_program() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "pw\n");
    let new = env.maildir("alice@example.org").join("new");
    std::fs::write(
        new.join("1700000000.P1Q1.elsewhere"),
        "From: a@b.test\r\nSubject: dropped\r\n\r\nhello\r\n",
    )
    .unwrap();
    let out = env.ok(&["reindex", "alice@example.org"], "");
    assert!(out.contains("alice@example.org"), "{out}");
    assert!(out.contains("1 message"), "{out}");
    // All accounts at once works too, and keeps what it found.
    let out = env.ok(&["reindex"], "");
    assert!(out.contains("1 message"), "{out}");
    let e = env.fails(&["reindex", "ghost@example.org"], "");
    assert!(e.contains("ghost@example.org"), "{e}");
}

#[test]
fn check_config_prints_the_effective_configuration() {
    let env = Env::new();
    let out = env.ok(&["check-config"], "");
    assert!(out.contains("hostname = \"mx.test\""), "{out}");
    assert!(out.contains("configuration read from"), "{out}");
    assert!(out.contains("127.0.0.1:0"), "{out}");

    // With no file anywhere the built-in defaults apply.
    let bare = tempfile::tempdir().unwrap();
    let out = common::run_command(
        std::process::Command::new(env!("CARGO_BIN_EXE_postern"))
            .arg("check-config")
            .env_remove("POSTERN_CONFIG")
            .current_dir(bare.path()),
        "",
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("built-in defaults"), "{text}");
    assert!(text.contains("[::]:993"), "{text}");
}

#[test]
fn check_config_refuses_what_serve_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, "not a certificate\n").unwrap();
    std::fs::write(&key, "not a key\n").unwrap();
    let env = Env::with_config(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let e = env.fails(&["check-config"], "");
    assert!(
        e.contains("tls.cert") && e.contains("no certificate"),
        "{e}"
    );

    // A key that does not fit the certificate.
    let make = || {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mx.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let ((cert_a, _), (_, key_b)) = (make(), make());
    std::fs::write(&cert, cert_a).unwrap();
    std::fs::write(&key, key_b).unwrap();
    let env = Env::with_config(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let e = env.fails(&["check-config"], "");
    assert!(e.contains("does not fit the certificate"), "{e}");

    // A missing file: the cause is said once.
    let env =
        Env::with_config("[tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n");
    let e = env.fails(&["check-config"], "");
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");

    // Others can write the data directory: serve would refuse, so does check-config.
    let env = Env::new();
    std::fs::create_dir_all(env.data()).unwrap();
    std::fs::set_permissions(
        env.data(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let e = env.fails(&["check-config"], "");
    assert!(e.contains("can be written by other users"), "{e}");
}

#[test]
fn bad_configuration_is_named_and_refused() {
    let env = Env::with_config("[listen]\nimap = [\"localhost:143\"]\n");
    let e = env.fails(&["check-config"], "");
    assert!(
        e.contains("listen.imap[0]") && e.contains("postern.toml"),
        "{e}"
    );
    let e = env.fails(&["serve"], "");
    assert!(e.contains("listen.imap[0]"), "{e}");

    let env = Env::with_config("colour = \"blue\"\n");
    let e = env.fails(&["check-config"], "");
    assert!(e.contains("colour"), "{e}");

    let env =
        Env::with_config("[tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n");
    let e = env.fails(&["serve"], "");
    assert!(
        e.contains("tls.cert") && e.contains("/nonexistent/c.pem"),
        "{e}"
    );

    let e = common::run_command(
        std::process::Command::new(env!("CARGO_BIN_EXE_postern")).args([
            "--config",
            "/nonexistent/postern.toml",
            "check-config",
        ]),
        "",
    );
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("/nonexistent/postern.toml"));
}

#[test]
fn disable_enable_and_quota() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "pw-alice\n");
    let run = env.serve();
    let login = r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
try:
    m.login(sys.argv[3], sys.argv[4]); print("in")
except imaplib.IMAP4.error:
    print("refused")
"#;
    let args = common::login_args(run.addrs["imap"], "alice@example.org", "pw-alice");
    let out = env.ok(&["user", "disable", "alice@example.org"], "");
    assert!(out.contains("disabled"), "{out}");
    assert_eq!(common::python(login, &args).trim(), "refused");
    assert!(env.ok(&["user", "list"], "").contains("[disabled]"));
    env.ok(&["user", "enable", "alice@example.org"], "");
    assert_eq!(common::python(login, &args).trim(), "in");

    assert_eq!(
        env.ok(&["user", "quota", "alice@example.org", "2G"], "")
            .trim(),
        "quota of alice@example.org: 2.0 GiB"
    );
    assert!(env.ok(&["user", "list"], "").contains("[quota 2.0 GiB]"));
    env.ok(&["user", "quota", "alice@example.org", "none"], "");
    assert!(!env.ok(&["user", "list"], "").contains("quota"));
    let e = env.fails(&["user", "quota", "alice@example.org", "lots"], "");
    assert!(e.contains("not a number of bytes"), "{e}");
    let e = env.fails(&["user", "disable", "nobody@example.org"], "");
    assert!(e.contains("nobody@example.org"), "{e}");
}

#[test]
fn a_closed_pipe_ends_a_listing_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    for i in 0..3 {
        env.ok(&["user", "add", &format!("u{i}@example.org")], "pw\n");
    }
    let mut child = env
        .command()
        .args(["user", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the command writes, as `| head -0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{:?} {stderr}",
        out.status
    );
}

#[test]
fn without_configuration_or_data_an_admin_command_says_so_instead_of_creating_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["user", "list"])
        .current_dir(dir.path())
        .env_remove("POSTERN_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no configuration file"), "{stderr}");
    assert!(stderr.contains("postern-data"), "{stderr}");
    assert!(!dir.path().join("postern-data").exists());

    // With -v, every command says what it works on.
    let env = Env::new();
    let out = env.run(&["-v", "domain", "list"], "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("data_dir {}", env.data().display())),
        "{stderr}"
    );
}

#[test]
fn every_positional_argument_is_described_in_help() {
    let env = Env::new();
    for cmd in [
        &["domain", "add"][..],
        &["domain", "remove"],
        &["user", "add"],
        &["user", "list"],
        &["user", "quota"],
        &["alias", "add"],
        &["alias", "remove"],
        &["queue", "show"],
        &["dkim", "generate"],
        &["dns"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let help = env.ok(&args, "");
        let positional = help
            .split("Arguments:")
            .nth(1)
            .and_then(|rest| rest.split("Options:").next())
            .unwrap_or_else(|| panic!("{cmd:?} lists its arguments:\n{help}"));
        for line in positional
            .lines()
            .filter(|l| l.trim_start().starts_with('<') || l.trim_start().starts_with('['))
        {
            let described = line.trim().split_once("  ").map(|(_, d)| d.trim());
            assert!(
                described.is_some_and(|d| !d.is_empty()),
                "{cmd:?}: {line:?} has no description"
            );
        }
    }
}

#[test]
fn local_domains_are_mail_domains_with_postmaster_and_abuse() {
    let env = Env::new();
    for (name, why) in [
        ("localhost", "localhost names this machine"),
        ("mail.localhost", "localhost names this machine"),
        ("intranet", "at least one dot"),
        ("192.0.2.1", "IP address"),
    ] {
        let e = env.fails(&["domain", "add", name], "");
        assert!(e.contains(why), "{name}: {e}");
    }

    let out = env.ok(&["domain", "add", "example.org"], "");
    assert!(out.contains("will go to the first account"), "{out}");
    // No report address exists yet: the DNS advice asks for no reports.
    let zone = env.ok(&["dns", "example.org"], "");
    assert!(!zone.contains("rua="), "{zone}");
    let out = env.ok(&["user", "add", "alice@example.org"], "pw\n");
    assert!(
        out.contains("postmaster@example.org -> alice@example.org"),
        "{out}"
    );
    assert!(
        out.contains("abuse@example.org -> alice@example.org"),
        "{out}"
    );
    // The second account changes nothing.
    let out = env.ok(&["user", "add", "bob@example.org"], "pw\n");
    assert!(!out.contains("postmaster"), "{out}");
    let zone = env.ok(&["dns", "example.org"], "");
    assert!(zone.contains("rua=mailto:postmaster@example.org"), "{zone}");

    let e = env.fails(
        &[
            "domain",
            "add",
            "example.net",
            "--postmaster",
            "nobody@example.org",
        ],
        "",
    );
    assert!(e.contains("no such account"), "{e}");
    assert!(!env.ok(&["domain", "list"], "").contains("example.net"));
    env.ok(
        &[
            "domain",
            "add",
            "example.net",
            "--postmaster",
            "bob@example.org",
        ],
        "",
    );
    let aliases = env.ok(&["alias", "list"], "");
    for line in [
        "postmaster@example.org -> alice@example.org",
        "abuse@example.org -> alice@example.org",
        "postmaster@example.net -> bob@example.org",
        "abuse@example.net -> bob@example.org",
    ] {
        assert!(aliases.contains(line), "{line}: {aliases}");
    }
}

#[test]
fn remove_then_add_brings_the_mail_back_and_purge_works_after_a_plain_remove() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "carol@example.org"], "pw1\n");
    let md = env.maildir("carol@example.org");
    std::fs::write(md.join("new/1.test"), "Subject: kept\r\n\r\nx\r\n").unwrap();
    env.ok(&["reindex", "carol@example.org"], "");
    let out = env.ok(&["user", "remove", "carol@example.org"], "");
    assert!(out.contains("its mail stays"), "{out}");
    let out = env.ok(&["user", "add", "carol@example.org"], "pw2\n");
    assert!(out.contains("has its mail back"), "{out}");
    let list = env.ok(&["user", "list"], "");
    assert!(list.contains("carol@example.org\t1 messages"), "{list}");

    env.ok(&["user", "remove", "carol@example.org"], "");
    let out = env.ok(&["user", "remove", "--purge", "carol@example.org"], "");
    assert!(out.contains("deleted the mail left by"), "{out}");
    assert!(!md.exists());
    let e = env.fails(&["user", "remove", "--purge", "carol@example.org"], "");
    assert!(e.contains("no such account"), "{e}");
    // And a fresh account under the same name starts empty.
    env.ok(&["user", "add", "carol@example.org"], "pw3\n");
    let list = env.ok(&["user", "list"], "");
    assert!(list.contains("carol@example.org\t0 messages"), "{list}");
}

#[test]
fn addresses_smtp_cannot_carry_unquoted_and_alias_loops_are_refused_when_made() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.test"], "");
    for bad in [
        "a..b@example.test",
        ".a@example.test",
        "a.@example.test",
        "a b@example.test",
    ] {
        let e = env.fails(&["user", "add", bad], "pw\n");
        assert!(
            e.contains("not a dot-string") || e.contains("invalid address"),
            "{bad}: {e}"
        );
        let e = env.fails(&["alias", "add", bad, "x@remote.example"], "");
        assert!(
            e.contains("not a dot-string") || e.contains("invalid address"),
            "{bad}: {e}"
        );
    }
    env.ok(&["user", "add", "o'brien.x+y@example.test"], "pw\n");

    env.ok(&["alias", "add", "a@example.test", "b@example.test"], "");
    env.ok(
        &[
            "alias",
            "add",
            "b@example.test",
            "c@example.test",
            "friend@remote.example",
        ],
        "",
    );
    let e = env.fails(&["alias", "add", "c@example.test", "a@example.test"], "");
    assert!(e.contains("alias loop"), "{e}");
    assert!(
        e.contains("c@example.test -> a@example.test -> b@example.test -> c@example.test"),
        "{e}"
    );
    // Nothing of the refused alias was kept.
    assert!(!env.ok(&["alias", "list"], "").contains("c@example.test ->"));
}

/// Logs in over IMAP and POP3, signals "in", then waits for the server to end both
/// sessions and prints what each said.
const HELD_SESSIONS: &str = r#"
import imaplib, poplib, socket, sys
host, imap_port, pop3_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = imaplib.IMAP4(host, imap_port)
m.login("alice@example.org", "pw-alice")
m.select("INBOX")
p = poplib.POP3(host, pop3_port)
p.user("alice@example.org"); p.pass_("pw-alice")
print("in", flush=True)
sys.stdin.readline()
m.sock.settimeout(10)
bye = m.readline().decode().strip()
p.sock.settimeout(10)
err = p.file.readline().decode().strip()
print(bye)
print(err)
"#;

fn held_sessions(run: &common::Running) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new("python3")
        .args(["-c", HELD_SESSIONS])
        .args([
            run.addrs["imap"].ip().to_string(),
            run.addrs["imap"].port().to_string(),
            run.addrs["pop3"].port().to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "in");
    child
}

fn ended(child: std::process::Child) -> String {
    let mut child = child;
    drop(child.stdin.take());
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

#[test]
fn kick_disable_and_remove_end_open_sessions() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "pw-alice\n");
    let e = env.fails(&["kick", "alice@example.org"], "");
    assert!(e.contains("no postern serve is running"), "{e}");
    let run = env.serve();

    let held = held_sessions(&run);
    let out = env.ok(&["kick", "Alice@Example.org"], "");
    assert!(
        out.contains("ended 2 open session(s) of alice@example.org"),
        "{out}"
    );
    let said = ended(held);
    assert!(
        said.contains("* BYE Session ended by the administrator"),
        "{said}"
    );
    assert!(
        said.contains("-ERR session ended by the administrator"),
        "{said}"
    );

    let held = held_sessions(&run);
    let out = env.ok(&["user", "disable", "alice@example.org"], "");
    assert!(out.contains("ended 2 open session(s)"), "{out}");
    assert!(ended(held).contains("* BYE Session ended"));

    env.ok(&["user", "enable", "alice@example.org"], "");
    let held = held_sessions(&run);
    let out = env.ok(&["user", "remove", "alice@example.org"], "");
    assert!(out.contains("ended 2 open session(s)"), "{out}");
    assert!(ended(held).contains("* BYE Session ended"));
}
