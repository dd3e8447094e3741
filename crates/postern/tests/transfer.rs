//! `postern import` and `postern export` with files made by other programs: mbox files written
//! by Python's `mailbox` module and by mutt, a Maildir made by Dovecot (UIDs and UIDVALIDITY
//! kept, checked over IMAP with imaplib), and the round trip export → import, compared byte
//! for byte with flags, dates and folders.

mod common;
use common::{login_args, python, Env};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const ALICE: &str = "alice@example.org";
const PASS: &str = "secret-pw";

fn env_with_users(users: &[&str]) -> Env {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    for u in users {
        env.ok(&["user", "add", u], &format!("{PASS}\n"));
    }
    env
}

/// Prints, as JSON, every message of the mailboxes given after the login arguments:
/// `{mailbox: {"uidvalidity": n, "uidnext": n, "messages": [[uid, [flags], date, body]]}}`; flags
/// sorted, `\Recent` left out, body as IMAP sends it (hex).
const DUMP: &str = r#"
import imaplib, sys, json, re
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4])
out = {}
for box in sys.argv[5:]:
    name, _, label = box.partition('=')
    typ, data = m.select('"%s"' % name, readonly=True)
    assert typ == 'OK', (name, data)
    uv = int(m.response('UIDVALIDITY')[1][0])
    un = int(m.response('UIDNEXT')[1][0])
    msgs = []
    typ, data = m.uid('FETCH', '1:*', '(UID FLAGS INTERNALDATE BODY.PEEK[])')
    for d in data:
        if not isinstance(d, tuple):
            continue
        head = d[0].decode()
        uid = int(re.search(r'UID (\d+)', head).group(1))
        flags = sorted(f for f in re.search(r'FLAGS \(([^)]*)\)', head).group(1).split() if f != '\\Recent')
        date = re.search(r'INTERNALDATE "([^"]*)"', head).group(1)
        msgs.append([uid, flags, date, d[1].hex()])
    out[label or name] = {'uidvalidity': uv, 'uidnext': un, 'messages': msgs}
m.logout()
print(json.dumps(out, sort_keys=True))
"#;

fn dump(addr: std::net::SocketAddr, user: &str, boxes: &[&str]) -> serde_json::Value {
    let mut args = login_args(addr, user, PASS);
    args.extend(boxes.iter().map(|s| s.to_string()));
    serde_json::from_str(&python(DUMP, &args)).unwrap()
}

/// Writes an mbox with Python's mailbox module: flags through mboxMessage.set_flags, a body
/// line starting with "From " (which the module quotes), LF line ends. Prints the messages
/// as the module was given them.
const PY_MBOX: &str = r#"
import mailbox, sys, json
box = mailbox.mbox(sys.argv[1])
specs = [
    ('RO', 'A', 'Seen and answered', 'Hello\nFrom the start of a line\n>From already quoted\n'),
    ('O', 'F', 'Old, unread, flagged', 'flagged body\n'),
    ('', '', 'Brand new', 'new body\n'),
    ('RO', 'DT', 'Deleted draft', 'draft body\n'),
]
sent = []
for i, (status, xstatus, subject, body) in enumerate(specs):
    text = 'From: Ann <ann@example.org>\nTo: alice@example.org\nSubject: %s\nMessage-ID: <m%d@example.org>\n\n%s' % (subject, i, body)
    msg = mailbox.mboxMessage(text)
    msg.set_flags(status + xstatus)
    msg.set_from('ann@example.org', (2024, 1, 2 + i, 3, 4, 5, 0, 0, 0))
    box.add(msg)
    sent.append(text)
box.flush(); box.close()
print(json.dumps(sent))
"#;

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

#[test]
fn python_mailbox_mbox_imports_with_flags_dates_and_unquoting() {
    let env = env_with_users(&[ALICE]);
    let mbox = env.dir.path().join("py.mbox");
    let sent: Vec<String> =
        serde_json::from_str(&python(PY_MBOX, &[mbox.display().to_string()])).unwrap();
    let out = env.ok(
        &[
            "import",
            "mbox",
            mbox.to_str().unwrap(),
            ALICE,
            "--folder",
            "Old/Py",
        ],
        "",
    );
    assert!(out.contains("imported 4 message(s)"), "{out}");

    // Again: nothing new (the state file), and again without it (the keys).
    let out = env.ok(
        &[
            "import",
            "mbox",
            mbox.to_str().unwrap(),
            ALICE,
            "--folder",
            "Old/Py",
        ],
        "",
    );
    assert!(out.contains("imported 0 message(s)"), "{out}");
    std::fs::remove_dir_all(env.data().join("import-state")).unwrap();
    let out = env.ok(
        &[
            "import",
            "mbox",
            mbox.to_str().unwrap(),
            ALICE,
            "--folder",
            "Old/Py",
        ],
        "",
    );
    assert!(
        out.contains("imported 0 message(s)") && out.contains("4 already there"),
        "{out}"
    );

    let running = env.serve();
    let d = dump(running.addrs["imap"], ALICE, &["Old/Py"]);
    let msgs = d["Old/Py"]["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 4);
    let flags: Vec<String> = msgs.iter().map(|m| m[1].to_string()).collect();
    assert_eq!(
        flags,
        [
            r#"["\\Answered","\\Seen"]"#,
            r#"["\\Flagged"]"#,
            "[]",
            r#"["\\Deleted","\\Draft","\\Seen"]"#
        ]
    );
    for (i, m) in msgs.iter().enumerate() {
        let body = String::from_utf8(hex(m[3].as_str().unwrap())).unwrap();
        // Status/X-Status were the mbox's; Python's ">From " went back to "From ". Python
        // writes mboxo, which leaves the author's own ">From " line as it is: every reader
        // (mboxo or mboxrd) takes one ">" off it, the ambiguity mboxrd was made to end.
        let want = crlf(&sent[i]).replace(">From already", "From already");
        assert_eq!(body, want, "message {i}");
        assert_eq!(
            m[2],
            format!("0{}-Jan-2024 03:04:05 +0000", 2 + i),
            "date of {i}"
        );
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn mutt_written_mbox_imports() {
    if !common::on_path("mutt") {
        assert!(
            std::env::var_os("CI").is_none(),
            "mutt is missing under CI (./test.sh installs it)"
        );
        eprintln!("SKIPPED: mutt is not installed (./test.sh installs it)");
        return;
    }
    let env = env_with_users(&[ALICE]);
    let mbox = env.dir.path().join("mutt.mbox");
    // mutt in batch mode (standard input not a terminal) "sends" through /bin/true and saves
    // its copy (record) with its own mbox writer: Content-Length, Status: RO, no From quoting.
    for (subject, body) in [
        (
            "first",
            "Hello\nFrom the mutt side\n>From quoted by the author\nbye\n",
        ),
        ("second", "Second\n"),
    ] {
        let setup = format!(
            "set sendmail=\"/bin/true\"; set from=\"ann@example.org\"; set use_from=yes; \
             set record=\"{}\"; set copy=yes; set mbox_type=mbox",
            mbox.display()
        );
        let out = common::run_command(
            Command::new("mutt")
                .args([
                    "-n",
                    "-F",
                    "/dev/null",
                    "-e",
                    &setup,
                    "-s",
                    subject,
                    "bob@example.org",
                ])
                .env("HOME", env.dir.path()),
            body,
        );
        assert!(
            out.status.success(),
            "mutt: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(&mbox).unwrap();
    assert!(text.contains("Content-Length:"), "mutt wrote {text}");
    let out = env.ok(&["import", "mbox", mbox.to_str().unwrap(), ALICE], "");
    assert!(out.contains("imported 2 message(s)"), "{out}");
    let running = env.serve();
    let d = dump(running.addrs["imap"], ALICE, &["INBOX"]);
    let msgs = d["INBOX"]["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    let first = String::from_utf8(hex(msgs[0][3].as_str().unwrap())).unwrap();
    assert!(first.contains("Subject: first\r\n"), "{first}");
    assert!(
        first.ends_with(
            "\r\n\r\nHello\r\nFrom the mutt side\r\n>From quoted by the author\r\nbye\r\n"
        ),
        "{first}"
    );
    assert!(!first.contains("Status:") && !first.contains("Content-Length:"));
    assert_eq!(msgs[0][1].to_string(), r#"["\\Seen"]"#);
    let second = String::from_utf8(hex(msgs[1][3].as_str().unwrap())).unwrap();
    assert!(second.ends_with("\r\n\r\nSecond\r\n"), "{second}");
}

const START_DOVECOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/start-dovecot.sh"
);

struct Dovecot(PathBuf);

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(START_DOVECOT)
            .arg("--stop")
            .arg(&self.0)
            .status();
    }
}

/// APPENDs to Dovecot with flags and keywords, in three folders, and expunges some so that
/// the UIDs have gaps.
const FILL_DOVECOT: &str = r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4])
for box in ['Work', 'Lists.Rust']:
    typ, data = m.create(box); assert typ == 'OK', data
plan = {
    'INBOX': [('(\\Seen)', 'one'), ('(\\Seen \\Answered $Label1)', 'two'), ('(\\Flagged Work)', 'three'),
              ('()', 'four'), ('(\\Draft $Forwarded)', 'five')],
    'Work': [('(\\Seen Project)', 'w1'), ('(\\Seen)', 'w2')],
    'Lists.Rust': [('()', 'r1')],
}
for box, msgs in plan.items():
    for i, (flags, subject) in enumerate(msgs):
        body = ('From: x@example.org\r\nSubject: %s\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n' % subject
                + 'body of %s\r\n' % subject * (i + 1)).encode()
        typ, data = m.append(box, flags, '"0%d-Feb-2024 10:11:12 +0000"' % (i + 1), body)
        assert typ == 'OK', data
# Gaps: expunge the second message of INBOX and the first of Work.
for box, seq in [('INBOX', '2'), ('Work', '1')]:
    m.select(box)
    m.store(seq, '+FLAGS', '(\\Deleted)')
    m.expunge()
m.logout()
"#;

#[test]
fn dovecot_maildir_imports_with_uids_and_uidvalidity_kept() {
    if !common::on_path("dovecot") {
        assert!(
            std::env::var_os("CI").is_none(),
            "dovecot is missing under CI (./test.sh installs dovecot-imapd)"
        );
        eprintln!("SKIPPED: dovecot is not installed (./test.sh installs dovecot-imapd)");
        return;
    }
    let env = env_with_users(&[ALICE]);
    let peer = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        peer.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let ddir = peer.path().join("dovecot");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new("bash")
        .arg(START_DOVECOT)
        .arg(&ddir)
        .arg(port.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "start-dovecot.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dovecot = Dovecot(ddir.clone());
    let daddr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    python(FILL_DOVECOT, &login_args(daddr, "alice", "pass"));
    let mut dargs = login_args(daddr, "alice", "pass");
    dargs.extend(["INBOX", "Work", "Lists.Rust=Lists/Rust"].map(String::from));
    let theirs: serde_json::Value = serde_json::from_str(&python(DUMP, &dargs)).unwrap();
    drop(dovecot);
    let inbox_uids: Vec<u64> = theirs["INBOX"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].as_u64().unwrap())
        .collect();
    assert_eq!(inbox_uids, [1, 3, 4, 5], "Dovecot's UIDs have a gap");

    let out = env.ok(
        &[
            "import",
            "maildir",
            ddir.join("mail/alice").to_str().unwrap(),
            ALICE,
        ],
        "",
    );
    assert!(out.contains("imported 6 message(s)"), "{out}");
    assert!(!out.contains("UIDs not kept"), "{out}");
    let running = env.serve();
    let ours = dump(
        running.addrs["imap"],
        ALICE,
        &["INBOX", "Work", "Lists/Rust"],
    );
    assert_eq!(
        ours, theirs,
        "same UIDVALIDITY, UIDNEXT, UIDs, flags, keywords, dates and bytes"
    );
}

/// A message file of an exported tree: its bytes, its flags, its mtime.
type TreeMessage = (Vec<u8>, Vec<String>, u64);

/// Every message of an exported Maildir tree: folder → sorted (bytes, info letters resolved to
/// flag names, mtime). Keywords come through the tree's `dovecot-keywords`.
fn read_tree(root: &Path) -> BTreeMap<String, Vec<TreeMessage>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![(String::from("INBOX"), root.to_path_buf())];
    for e in std::fs::read_dir(root).unwrap() {
        let e = e.unwrap();
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('.') && e.path().join("cur").is_dir() {
            dirs.push((n, e.path()));
        }
    }
    for (name, dir) in dirs {
        let kw: BTreeMap<char, String> = std::fs::read_to_string(dir.join("dovecot-keywords"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, k)| ((b'a' + n.parse::<u8>().unwrap()) as char, k.to_owned()))
            .collect();
        let mut msgs = Vec::new();
        for sub in ["cur", "new"] {
            for f in std::fs::read_dir(dir.join(sub)).unwrap() {
                let f = f.unwrap();
                let fname = f.file_name().to_string_lossy().into_owned();
                let info = fname.split_once(":2,").map_or("", |x| x.1).to_owned();
                let mut flags: Vec<String> = info
                    .chars()
                    .map(|c| kw.get(&c).cloned().unwrap_or_else(|| c.to_string()))
                    .collect();
                if sub == "new" {
                    flags.push("new".into());
                }
                flags.sort();
                let mtime = f
                    .metadata()
                    .unwrap()
                    .modified()
                    .unwrap()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                msgs.push((std::fs::read(f.path()).unwrap(), flags, mtime));
            }
        }
        msgs.sort();
        out.insert(name, msgs);
    }
    out
}

#[test]
fn export_then_import_gives_the_same_mail() {
    const BOB: &str = "bob@example.org";
    const CAROL: &str = "carol@example.org";
    let env = env_with_users(&[ALICE, BOB, CAROL]);
    // Alice's mail: an mbox from Python (flags, a quoted From line, LF ends) and IMAP APPENDs
    // (CRLF, keywords, a nested folder).
    let mbox = env.dir.path().join("py.mbox");
    python(PY_MBOX, &[mbox.display().to_string()]);
    env.ok(&["import", "mbox", mbox.to_str().unwrap(), ALICE], "");
    let running = env.serve();
    python(
        r#"
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4])
typ, data = m.create('Projects/&ANw-n&AO8-code'); assert typ == 'OK', data
m.append('Projects/&ANw-n&AO8-code', '(\\Flagged $Label2 Urgent)', '"05-Mar-2023 01:02:03 +0000"',
         b'Subject: nested\r\n\r\n>From a quoted line\r\nFrom an unquoted one\r\n')
m.append('Sent', '(\\Seen)', '"06-Mar-2023 01:02:03 +0000"', b'Subject: sent\r\n\r\nno final newline')
m.logout()
"#,
        &login_args(running.addrs["imap"], ALICE, PASS),
    );
    drop(running);

    let base = env.dir.path();
    let a_md = base.join("alice-maildir");
    let a_mbox = base.join("alice-mbox");
    env.ok(
        &[
            "export",
            ALICE,
            a_md.to_str().unwrap(),
            "--format",
            "maildir",
        ],
        "",
    );
    env.ok(
        &[
            "export",
            ALICE,
            a_mbox.to_str().unwrap(),
            "--format",
            "mbox",
        ],
        "",
    );

    // Maildir round trip into Bob.
    let out = env.ok(&["import", "maildir", a_md.to_str().unwrap(), BOB], "");
    assert!(out.contains("imported 6 message(s)"), "{out}");
    // mbox round trip into Carol, one file per mailbox.
    let mut files = Vec::new();
    let mut stack = vec![a_mbox.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    assert_eq!(files.len(), 8, "{files:?}"); // INBOX, the 5 default folders, Projects, Projects/Ünïcode
    for f in &files {
        let rel = f.strip_prefix(&a_mbox).unwrap().to_str().unwrap();
        let folder = rel.strip_suffix(".mbox").unwrap();
        env.ok(
            &[
                "import",
                "mbox",
                f.to_str().unwrap(),
                CAROL,
                "--folder",
                folder,
            ],
            "",
        );
    }

    let b_md = base.join("bob-maildir");
    let c_md = base.join("carol-maildir");
    env.ok(
        &["export", BOB, b_md.to_str().unwrap(), "--format", "maildir"],
        "",
    );
    env.ok(
        &[
            "export",
            CAROL,
            c_md.to_str().unwrap(),
            "--format",
            "maildir",
        ],
        "",
    );
    let a = read_tree(&a_md);
    assert_eq!(a.values().map(Vec::len).sum::<usize>(), 6);
    assert!(
        a.contains_key(".Projects.&ANw-n&AO8-code"),
        "{:?}",
        a.keys()
    );
    let nested = &a[".Projects.&ANw-n&AO8-code"][0];
    assert_eq!(nested.1, ["$Label2", "F", "Urgent"]);
    assert_eq!(read_tree(&b_md), a, "Maildir round trip");
    let c = read_tree(&c_md);
    assert_eq!(c.keys().collect::<Vec<_>>(), a.keys().collect::<Vec<_>>());
    for (folder, msgs) in &a {
        for (i, (data, flags, mtime)) in msgs.iter().enumerate() {
            let (cd, cf, cm) = &c[folder][i];
            if data.ends_with(b"\n") {
                assert_eq!(cd, data, "mbox round trip bytes in {folder}");
            } else {
                // mbox cannot say that a message lacks its last line end: it gets one.
                assert_eq!(&cd[..data.len()], &data[..], "{folder}");
            }
            assert_eq!(
                (cf, cm),
                (flags, mtime),
                "mbox round trip flags/date in {folder}"
            );
        }
    }
    // Bob kept Alice's UIDVALIDITY and UIDs (the export's dovecot-uidlist).
    let uidlist = |p: &Path| std::fs::read_to_string(p.join("dovecot-uidlist")).unwrap();
    let first = |s: String| s.lines().next().unwrap().to_owned();
    assert_eq!(first(uidlist(&b_md)), first(uidlist(&a_md)));
}

#[test]
fn bad_input_is_refused_in_plain_words() {
    let env = env_with_users(&[ALICE]);
    let not_mbox = env.dir.path().join("notes.txt");
    std::fs::write(&not_mbox, "Subject: hi\n\nnot an mbox\n").unwrap();
    let err = env.fails(&["import", "mbox", not_mbox.to_str().unwrap(), ALICE], "");
    assert!(err.contains("not an mbox"), "{err}");
    let err = env.fails(
        &[
            "import",
            "mbox",
            not_mbox.to_str().unwrap(),
            "nobody@example.org",
        ],
        "",
    );
    assert!(err.contains("no such account"), "{err}");
    let err = env.fails(
        &[
            "import",
            "mbox",
            not_mbox.to_str().unwrap(),
            ALICE,
            "--variant",
            "mmdf",
        ],
        "",
    );
    assert!(err.contains("unknown mbox variant"), "{err}");
    let err = env.fails(
        &["import", "maildir", env.dir.path().to_str().unwrap(), ALICE],
        "",
    );
    assert!(err.contains("not a Maildir"), "{err}");
    // A message over the limit is skipped, named in the summary, and the exit status says so.
    let big = env.dir.path().join("big.mbox");
    let mut text = String::from("From a@b Thu Dec  3 11:39:31 2026\nSubject: big\n\n");
    text.push_str(&"x".repeat(5000));
    text.push_str("\n\nFrom a@b Thu Dec  3 11:39:31 2026\nSubject: small\n\nok\n");
    std::fs::write(&big, text).unwrap();
    let out = env.run(
        &[
            "import",
            "mbox",
            big.to_str().unwrap(),
            ALICE,
            "--max-message-size",
            "1000",
        ],
        "",
    );
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("imported 1 message(s)"), "{stdout}");
    assert!(
        stdout.contains("message at byte 0: larger than the limit of 1000 bytes"),
        "{stdout}"
    );
    let err = env.fails(
        &[
            "export",
            ALICE,
            env.dir.path().to_str().unwrap(),
            "--format",
            "mbox",
        ],
        "",
    );
    assert!(err.contains("not empty"), "{err}");
}

/// A Maildir++ tree written by Python's mailbox module: MaildirMessage flags and subdirs,
/// a folder, file dates.
const PY_MAILDIR: &str = r#"
import mailbox, sys
md = mailbox.Maildir(sys.argv[1], create=True)
specs = [('cur', 'S', 'seen'), ('cur', 'FRP', 'flagged, replied, passed'), ('new', '', 'new'),
         ('cur', 'DT', 'draft, trashed')]
for i, (sub, flags, subject) in enumerate(specs):
    m = mailbox.MaildirMessage('Subject: %s\n\nbody %d\n' % (subject, i))
    m.set_subdir(sub)
    if flags:
        m.set_flags(flags)
    m.set_date(1_500_000_000 + i * 86400)
    md.add(m)
sub = md.add_folder('Archive.2019')
m = mailbox.MaildirMessage('Subject: archived\n\nold\n')
m.set_subdir('cur'); m.set_flags('S'); m.set_date(1_400_000_000)
sub.add(m)
"#;

#[test]
fn python_mailbox_maildir_imports_with_flags_folders_and_dates() {
    let env = env_with_users(&[ALICE]);
    let src = env.dir.path().join("py-maildir");
    python(PY_MAILDIR, &[src.display().to_string()]);
    let out = env.ok(
        &[
            "import",
            "maildir",
            src.to_str().unwrap(),
            ALICE,
            "--folder-prefix",
            "Py",
        ],
        "",
    );
    assert!(out.contains("imported 5 message(s)"), "{out}");
    let running = env.serve();
    let d = dump(running.addrs["imap"], ALICE, &["Py", "Py/Archive/2019"]);
    let inbox: Vec<(String, String)> = d["Py"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m[1].to_string(), m[2].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        inbox,
        [
            (
                r#"["\\Seen"]"#.to_owned(),
                "14-Jul-2017 02:40:00 +0000".to_owned()
            ),
            (
                r#"["$Forwarded","\\Answered","\\Flagged"]"#.to_owned(),
                "15-Jul-2017 02:40:00 +0000".to_owned()
            ),
            ("[]".to_owned(), "16-Jul-2017 02:40:00 +0000".to_owned()),
            (
                r#"["\\Deleted","\\Draft"]"#.to_owned(),
                "17-Jul-2017 02:40:00 +0000".to_owned()
            ),
        ]
    );
    let archived = &d["Py/Archive/2019"]["messages"][0];
    assert_eq!(archived[1].to_string(), r#"["\\Seen"]"#);
    let body = String::from_utf8(hex(archived[3].as_str().unwrap())).unwrap();
    assert_eq!(body, "Subject: archived\r\n\r\nold\r\n");
}
