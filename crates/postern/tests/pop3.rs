//! POP3 through the real `postern serve`: accounts and the APOP secret made with the CLI, mail
//! dropped into the Maildir by "another program", then real clients: Python's poplib (USER/PASS,
//! APOP, STLS), curl (LIST, RETR, DELE) and fetchmail over POP3S checked against the generated CA.

mod common;
use common::{run_command, Env};
use std::process::Command;

const USER: &str = "carol@example.org";
const PASS: &str = "pop pass";
const APOP: &str = "apop secret";

type Serve = common::Running;

fn serve(env: &Env) -> Serve {
    env.serve()
}

fn checked(cmd: &mut Command, what: &str) -> String {
    let out = run_command(cmd, "");
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn pop3_with_poplib_curl_and_fetchmail_against_the_binary() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", USER], &format!("{PASS}\n"));
    env.ok(&["user", "apop", USER], &format!("{APOP}\n"));
    let server = serve(&env);
    let pop3 = server.addrs["pop3"];
    let pop3s = server.addrs["pop3s"];
    let ca = env.data().join("tls").join("cert.pem");

    // Another program delivers into the Maildir (LF line ends); the store picks the files up.
    let new = env.maildir(USER).join("new");
    for i in 1..=3 {
        std::fs::write(
            new.join(format!("17000000{i}.P1Q{i}.mx.test")),
            format!("From: dave@example.net\nSubject: dropped {i}\n\nbody {i}\n.dot\n"),
        )
        .unwrap();
    }

    let script = r#"
import poplib, ssl, sys
host, port, user, pw, secret, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
c = poplib.POP3(host, port)
c.apop(user, secret)
n, size = c.stat()
assert n == 3, n
lines = c.retr(1)[1]
assert lines[-1] == b'.dot' and sum(len(l) + 2 for l in lines) == int(c.list(1).split()[2]), lines
print(len(c.uidl()[1]))
c.quit()
c = poplib.POP3(host, port)
c.stls(ssl.create_default_context(cafile=ca))
c.user(user); c.pass_(pw)
assert c.top(2, 0)[1][1] == b'Subject: dropped 2'
c.quit()
"#;
    let out = checked(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(pop3.ip().to_string())
            .arg(pop3.port().to_string())
            .args([USER, PASS, APOP])
            .arg(&ca),
        "poplib",
    );
    assert_eq!(out.trim(), "3");

    // curl: LIST, RETR, DELE.
    let creds = format!("{USER}:{PASS}");
    let base = format!("pop3://{pop3}");
    let list = checked(
        Command::new("curl").args(["-sS", "-u", &creds, &format!("{base}/")]),
        "curl LIST",
    );
    assert_eq!(list.lines().count(), 3, "{list}");
    let msg = checked(
        Command::new("curl").args(["-sS", "-u", &creds, &format!("{base}/3")]),
        "curl RETR",
    );
    assert!(msg.contains("Subject: dropped 3\r\n"), "{msg:?}");
    checked(
        Command::new("curl").args([
            "-sS",
            "-u",
            &creds,
            "-X",
            "DELE",
            "-I",
            &format!("{base}/3"),
        ]),
        "curl DELE",
    );

    // fetchmail over POP3S, certificate verified with the generated CA, flush mode.
    let work = env.dir.path();
    let mbox = work.join("fetched.mbox");
    let rc = work.join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "poll \"127.0.0.1\" service {} proto pop3 user \"{USER}\" password \"{PASS}\" fetchall ssl sslcertck sslcertfile \"{}\" sslcommonname localhost mda \"cat >> {}\"\n",
            pop3s.port(),
            ca.display(),
            mbox.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    checked(
        Command::new("fetchmail")
            .arg("-f")
            .arg(&rc)
            .arg("-i")
            .arg(work.join("ids"))
            .arg("--pidfile")
            .arg(work.join("pid"))
            .arg("--nosyslog")
            .env("HOME", work),
        "fetchmail",
    );
    let fetched = std::fs::read_to_string(&mbox).unwrap();
    assert_eq!(fetched.matches("Subject: dropped ").count(), 2, "{fetched}");
    let left: usize = ["new", "cur"]
        .iter()
        .map(|d| {
            std::fs::read_dir(env.maildir(USER).join(d))
                .unwrap()
                .count()
        })
        .sum();
    assert_eq!(left, 0, "flush mode removed everything");
    drop(server);
}
