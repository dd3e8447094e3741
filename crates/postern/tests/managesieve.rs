//! ManageSieve and the Sieve admin commands through the real binary: `sieve-connect` (an
//! independent RFC 5804 client, Debian package `sieve-connect`) uploads, lists, activates,
//! downloads and deletes over STARTTLS checked against the generated certificate; `postern
//! sieve` and `postern vacation` see and change the same files, in Pigeonhole's layout.

mod common;
use common::{run_command, Env};
use std::process::{Command, Output};

const USER: &str = "erin@example.org";
const PASS: &str = "sieve pass";
const FILTER: &str = "require [\"fileinto\", \"imap4flags\"];\nif header :contains \"subject\" \"[list]\" {\n  fileinto \"Lists\";\n} elsif address :domain \"from\" \"example.net\" {\n  addflag \"$friends\";\n}\n";

/// Runs sieve-connect against `addr` with one action; the password goes in on fd 0.
fn sieve_connect(env: &Env, addr: std::net::SocketAddr, action: &[&str]) -> Output {
    let ca = env.data().join("tls").join("cert.pem");
    let mut cmd = Command::new("sieve-connect");
    cmd.args(["--server", "127.0.0.1", "--port", &addr.port().to_string()])
        .args(["--user", USER, "--passwordfd", "0", "--authmech", "PLAIN"])
        .arg("--tlscafile")
        .arg(&ca)
        .args(["--tlshostname", "mx.test", "--noclearchan"])
        .args(action)
        .current_dir(env.dir.path());
    run_command(&mut cmd, &format!("{PASS}\n"))
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "sieve-connect {what} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn sieve_connect_manages_scripts_over_starttls() {
    assert!(
        common::on_path("sieve-connect"),
        "sieve-connect is not installed (apt-get install sieve-connect; test.sh does)"
    );
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", USER], &format!("{PASS}\n"));
    let server = env.serve();
    let addr = server.addrs["managesieve"];
    let local = env.dir.path().join("filter.sieve");
    std::fs::write(&local, FILTER).unwrap();

    ok(
        sieve_connect(
            &env,
            addr,
            &[
                "--upload",
                "--localsieve",
                local.to_str().unwrap(),
                "--remotesieve",
                "filter",
            ],
        ),
        "--upload",
    );
    // The file is where Pigeonhole keeps it, as uploaded.
    let maildir = env.maildir(USER);
    assert_eq!(
        std::fs::read_to_string(maildir.join("sieve/filter.sieve")).unwrap(),
        FILTER
    );
    let listed = ok(sieve_connect(&env, addr, &["--list"]), "--list");
    assert!(listed.contains("filter"), "{listed}");
    assert!(
        !listed.contains("ACTIVE") && !listed.contains("<-"),
        "{listed}"
    );

    ok(
        sieve_connect(&env, addr, &["--activate", "--remotesieve", "filter"]),
        "--activate",
    );
    assert_eq!(
        std::fs::read_link(maildir.join(".dovecot.sieve")).unwrap(),
        std::path::Path::new("sieve/filter.sieve")
    );
    let listed = env.ok(&["sieve", "list", USER], "");
    assert!(
        listed.contains("filter") && listed.contains("(active)"),
        "{listed}"
    );

    let back = env.dir.path().join("back.sieve");
    ok(
        sieve_connect(
            &env,
            addr,
            &[
                "--download",
                "--remotesieve",
                "filter",
                "--localsieve",
                back.to_str().unwrap(),
            ],
        ),
        "--download",
    );
    assert_eq!(std::fs::read_to_string(&back).unwrap(), FILTER);

    // A script that does not compile is refused with its line, and not stored.
    let broken = env.dir.path().join("broken.sieve");
    std::fs::write(&broken, "keep;\nfileinto \"x\";\n").unwrap();
    let out = sieve_connect(
        &env,
        addr,
        &[
            "--upload",
            "--localsieve",
            broken.to_str().unwrap(),
            "--remotesieve",
            "broken",
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("line 2"), "{text}");
    assert!(!maildir.join("sieve/broken.sieve").exists());

    // The active script cannot be deleted; once deactivated it can.
    let out = sieve_connect(&env, addr, &["--delete", "--remotesieve", "filter"]);
    assert!(
        !out.status.success(),
        "deleting the active script must fail"
    );
    ok(sieve_connect(&env, addr, &["--deactivate"]), "--deactivate");
    ok(
        sieve_connect(&env, addr, &["--delete", "--remotesieve", "filter"]),
        "--delete",
    );
    assert!(!maildir.join("sieve/filter.sieve").exists());
    assert!(std::fs::symlink_metadata(maildir.join(".dovecot.sieve")).is_err());
}

#[test]
fn sieve_and_vacation_commands() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", USER], &format!("{PASS}\n"));
    let file = env.dir.path().join("f.sieve");
    std::fs::write(&file, FILTER).unwrap();
    env.ok(&["sieve", "put", USER, "main", file.to_str().unwrap()], "");
    // From standard input too.
    env.ok(&["sieve", "put", USER, "spare", "-"], "keep;\n");
    env.ok(&["sieve", "activate", USER, "main"], "");
    assert_eq!(env.ok(&["sieve", "get", USER, "main"], ""), FILTER);
    let list = env.ok(&["sieve", "list", USER], "");
    assert!(
        list.contains("main") && list.contains("(active)") && list.contains("spare"),
        "{list}"
    );

    // put validates first: the compile error with its line, nothing stored.
    let e = env.fails(&["sieve", "put", USER, "bad", "-"], "keep;\nfrobnicate;\n");
    assert!(e.contains("line 2:"), "{e}");
    assert!(env
        .fails(&["sieve", "get", USER, "bad"], "")
        .contains("no script"));
    let e = env.fails(&["sieve", "delete", USER, "main"], "");
    assert!(e.contains("active"), "{e}");
    assert!(env
        .fails(&["sieve", "list", "nobody@example.org"], "")
        .contains("no such account"));

    // Vacation lives apart: the user's scripts and the active mark are untouched.
    let msg = env.dir.path().join("away.txt");
    std::fs::write(&msg, "I am away until Monday.\n").unwrap();
    env.ok(
        &[
            "vacation",
            USER,
            "--subject",
            "Away",
            "--message-file",
            msg.to_str().unwrap(),
            "--days",
            "3",
            "--until",
            "2031-01-15",
        ],
        "",
    );
    let vac =
        std::fs::read_to_string(env.maildir(USER).join("sieve/.postern-vacation.sieve")).unwrap();
    assert!(vac.contains("vacation :days 3 :subject \"Away\""), "{vac}");
    assert!(
        vac.contains("currentdate :value \"le\" \"date\" \"2031-01-15\""),
        "{vac}"
    );
    let list = env.ok(&["sieve", "list", USER], "");
    assert!(list.contains("vacation is on"), "{list}");
    assert!(!list.contains(".postern-vacation"), "{list}");
    assert_eq!(env.ok(&["sieve", "get", USER, "main"], ""), FILTER);
    assert_eq!(
        std::fs::read_link(env.maildir(USER).join(".dovecot.sieve")).unwrap(),
        std::path::Path::new("sieve/main.sieve")
    );
    let e = env.fails(
        &[
            "vacation",
            USER,
            "--subject",
            "x",
            "--message-file",
            msg.to_str().unwrap(),
            "--until",
            "2031-02-30",
        ],
        "",
    );
    assert!(e.contains("--until"), "{e}");
    env.ok(&["vacation", USER, "--off"], "");
    assert!(!env
        .maildir(USER)
        .join("sieve/.postern-vacation.sieve")
        .exists());
    assert_eq!(env.ok(&["sieve", "get", USER, "main"], ""), FILTER);
    env.ok(&["sieve", "deactivate", USER], "");
    env.ok(&["sieve", "delete", USER, "main"], "");
    let list = env.ok(&["sieve", "list", USER], "");
    assert!(!list.contains("main") && list.contains("spare"), "{list}");
}

/// RFC 5804 §2.1 with SCRAM-SHA-256 (RFC 7677) from Python's `scramp`: the initial response,
/// one challenge as a string, and the server-final message in `OK (SASL "...")`, whose
/// signature the client checks. A wrong password fails with `NO (SASL "e=invalid-proof")`.
const SCRAM: &str = r#"
import base64, re, socket, sys
import scramp
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def response(f):
    lines = []
    while True:
        line = f.readline().decode()
        assert line, 'connection closed: %r' % lines
        lines.append(line)
        if re.match(r'^(OK|NO|BYE)\b', line):
            return lines

def login(password):
    s = socket.create_connection((host, port))
    f = s.makefile('rb')
    greeting = response(f)
    sasl = [l for l in greeting if l.startswith('"SASL"')][0]
    assert 'SCRAM-SHA-256' in sasl, greeting
    c = scramp.ScramClient(['SCRAM-SHA-256'], user, password)
    first = base64.b64encode(c.get_client_first().encode()).decode()
    s.sendall(('AUTHENTICATE "SCRAM-SHA-256" "%s"\r\n' % first).encode())
    challenge = f.readline().decode().strip()
    assert challenge.startswith('"'), challenge
    c.set_server_first(base64.b64decode(challenge.strip('"')).decode())
    final = base64.b64encode(c.get_client_final().encode()).decode()
    s.sendall(('"%s"\r\n' % final).encode())
    end = response(f)[-1]
    if end.startswith('OK'):
        m = re.match(r'^OK \(SASL "([^"]*)"\)', end)
        assert m, end
        c.set_server_final(base64.b64decode(m.group(1)).decode())  # checks v=
        s.sendall(b'LISTSCRIPTS\r\n')
        assert response(f)[-1].startswith('OK'), 'LISTSCRIPTS'
    s.close()
    return end

assert login(pw).startswith('OK'), 'scram login'
end = login('wrong password')
m = re.match(r'^NO \(SASL "([^"]*)"\)', end)
assert m and base64.b64decode(m.group(1)) == b'e=invalid-proof', end
print('managesieve scram ok')
"#;

#[test]
fn scram_sha_256_over_managesieve() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", USER], &format!("{PASS}\n"));
    let server = env.serve();
    let port = server.addrs["managesieve"].port().to_string();
    let out = common::python(SCRAM, &["127.0.0.1".into(), port, USER.into(), PASS.into()]);
    assert!(out.contains("managesieve scram ok"), "{out}");
}

/// Files `[list]` mail into Lists, read and labelled; tags mail from example.net in INBOX.
const E2E_FILTER: &str = "require [\"fileinto\", \"imap4flags\", \"mailbox\"];\nif header :contains \"subject\" \"[list]\" {\n  fileinto :create :flags [\"\\\\Seen\", \"$list\"] \"Lists\";\n} elsif address :domain \"from\" \"example.net\" {\n  addflag \"$friends\";\n}\n";

/// The whole path with independent clients (issue #14): sieve-connect uploads and activates
/// over STARTTLS (RFC 5804), Python's smtplib sends, the script files and flags at delivery
/// (RFC 5228 §4.1, RFC 5490 §3.2, RFC 5232), imaplib reads folders and flags back. Then
/// `serve` starts again with the script active: the data-dir audit accepts the
/// `.dovecot.sieve` link.
#[test]
fn uploaded_script_files_smtp_mail_read_over_imap() {
    assert!(
        common::on_path("sieve-connect"),
        "sieve-connect is not installed (apt-get install sieve-connect; test.sh does)"
    );
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", USER], &format!("{PASS}\n"));
    let server = env.serve();
    let local = env.dir.path().join("e2e.sieve");
    std::fs::write(&local, E2E_FILTER).unwrap();
    let sieve = server.addrs["managesieve"];
    ok(
        sieve_connect(
            &env,
            sieve,
            &[
                "--upload",
                "--localsieve",
                local.to_str().unwrap(),
                "--remotesieve",
                "e2e",
            ],
        ),
        "--upload",
    );
    ok(
        sieve_connect(&env, sieve, &["--activate", "--remotesieve", "e2e"]),
        "--activate",
    );

    let smtp_port = server.addrs["smtp"].port().to_string();
    common::python(
        r#"
import smtplib, sys
def msg(frm, subject):
    return ("From: %s\r\nTo: Erin <erin@example.org>\r\nSubject: %s\r\n"
            "Message-ID: <%s@remote.test>\r\n\r\nHello Erin.\r\n" % (frm, subject, subject.replace(' ', '-').strip('[]')))
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.sendmail("bob@remote.test", ["erin@example.org"], msg("bob@remote.test", "[list] release notes"))
    s.sendmail("fred@example.net", ["erin@example.org"], msg("Fred <fred@example.net>", "lunch"))
    s.sendmail("bob@remote.test", ["erin@example.org"], msg("bob@remote.test", "plain"))
"#,
        &[smtp_port],
    );

    // Delivery runs after the SMTP reply: wait until all three are stored, then read back.
    let out = common::python(
        r#"
import imaplib, sys, time
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
deadline = time.time() + 30
while True:
    lists = m.select('Lists')
    inbox = m.select('INBOX')
    if lists[0] == 'OK' and lists[1][0] == b'1' and inbox[1][0] == b'2':
        break
    assert time.time() < deadline, (lists, inbox)
    time.sleep(0.2)
m.select('Lists')
typ, data = m.fetch('1', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print('LISTS', data)
m.select('INBOX')
for i in (1, 2):
    typ, data = m.fetch(str(i), '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
    print('INBOX', data)
m.logout()
"#,
        &common::login_args(server.addrs["imap"], USER, PASS),
    );
    let line = |prefix: &str, subject: &str| {
        out.lines()
            .find(|l| l.starts_with(prefix) && l.contains(subject))
            .unwrap_or_else(|| panic!("no {prefix} {subject}: {out}"))
            .to_string()
    };
    let listed = line("LISTS", "[list] release notes");
    assert!(
        listed.contains("\\\\Seen") && listed.contains("$list"),
        "{listed}"
    );
    let lunch = line("INBOX", "lunch");
    assert!(
        lunch.contains("$friends") && !lunch.contains("\\\\Seen"),
        "{lunch}"
    );
    let plain = line("INBOX", "plain");
    assert!(
        !plain.contains("$friends") && !plain.contains("$list"),
        "{plain}"
    );

    // serve starts with the active script's link in the data directory.
    drop(server);
    assert!(std::fs::symlink_metadata(env.maildir(USER).join(".dovecot.sieve")).is_ok());
    let again = env.serve();
    assert!(again.addrs.contains_key("managesieve"));
    let listed = ok(
        sieve_connect(&env, again.addrs["managesieve"], &["--list"]),
        "--list",
    );
    assert!(listed.contains("e2e"), "{listed}");
}
