//! `postern newaliases` and `postern mailq` end to end: a classic aliases(5) file imported,
//! mail sent with Python's smtplib fanning out through it (to Maildirs, to a command, to an
//! mbox file read back with Python's `mailbox`), a removed line removed on re-import, and the
//! queue listed in Postfix's mailq format with a deferred (relay to a closed port) and a held
//! message. When Postfix is installed, its own `postqueue -p` output of a deferred message is
//! parsed with the same patterns.

mod common;
use common::{on_path, python, Env};
use std::path::Path;
use std::time::{Duration, Instant};

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Messages in a Maildir's new/ and cur/.
fn count(maildir: &Path) -> usize {
    ["new", "cur"]
        .iter()
        .map(|d| {
            std::fs::read_dir(maildir.join(d))
                .map(|r| r.count())
                .unwrap_or(0)
        })
        .sum()
}

/// Sends one message with smtplib; returns "OK" or the refused recipients.
fn send(port: u16, to: &[&str], subject: &str) -> String {
    let mut args = vec![port.to_string(), subject.to_string()];
    args.extend(to.iter().map(|s| s.to_string()));
    python(
        r#"
import smtplib, sys
port, subject, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
msg = ("From: carol@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\nFrom the start of a line\r\nbye\r\n"
       % (", ".join(rcpts), subject))
with smtplib.SMTP("127.0.0.1", port) as s:
    try:
        s.sendmail("carol@remote.test", rcpts, msg)
        print("OK")
    except smtplib.SMTPRecipientsRefused as e:
        print("REFUSED", sorted(e.recipients))
"#,
        &args,
    )
    .trim()
    .to_string()
}

#[test]
fn command_and_file_targets_are_refused_by_default() {
    let env = Env::new();
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "pw-alice\n");
    let file = env.dir.path().join("aliases");
    std::fs::write(&file, "staff: alice\n\n# logger\nlog: |/usr/bin/logger\n").unwrap();
    let err = env.fails(&["newaliases", "--file", file.to_str().unwrap()], "");
    assert!(
        err.contains(&format!(
            "{}:4: |/usr/bin/logger: command targets are refused",
            file.display()
        )),
        "{err}"
    );
    std::fs::write(&file, "staff: alice\narchive: /tmp/archive\n").unwrap();
    let err = env.fails(&["newaliases", "--file", file.to_str().unwrap()], "");
    assert!(
        err.contains(":2: /tmp/archive: file targets are refused"),
        "{err}"
    );
    // All or nothing: staff was not imported either.
    let list = env.ok(&["alias", "list"], "");
    assert!(!list.contains("staff@"), "{list}");

    // Syntax errors name their line; loops are refused as `alias add` refuses them.
    std::fs::write(&file, "a: b\n  , c\nb a\n").unwrap();
    let err = env.fails(&["newaliases", "--file", file.to_str().unwrap()], "");
    assert!(err.contains(":3: expected `name: target"), "{err}");
    std::fs::write(&file, "a: b\nb: a\n").unwrap();
    let err = env.fails(&["newaliases", "--file", file.to_str().unwrap()], "");
    assert!(
        err.contains(":1: a@example.org: ") && err.contains("loop"),
        "{err}"
    );
}

#[test]
fn newaliases_fans_out_runs_commands_appends_mbox_and_forgets_removed_lines() {
    let env = Env::with_config("[aliases]\nallow_commands = true\nallow_files = true\n");
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "pw-alice\n");
    env.ok(&["user", "add", "bob@example.org"], "pw-bob\n");
    // An alias of the admin's own: newaliases must never touch it.
    env.ok(
        &["alias", "add", "admin@example.org", "bob@example.org"],
        "",
    );

    let work = env.dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let script = work.join("save.sh");
    let piped = work.join("piped.txt");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat > {0}\nprintf 'SENDER=%s RECIPIENT=%s LOCAL=%s DOMAIN=%s\\n' \"$SENDER\" \"$RECIPIENT\" \"$LOCAL\" \"$DOMAIN\" >> {0}\n",
            piped.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mbox = work.join("archive.mbox");
    let include = work.join("team.list");
    std::fs::write(&include, "# the team\nalice\nbob\n").unwrap();
    let file = work.join("aliases");
    std::fs::write(
        &file,
        format!(
            "# postern test aliases\n\
             staff: alice,\n\
             \tbob\n\
             team: :include:{}\n\
             pipe: \"|{}\"\n\
             archive: {}, alice\n\
             admin: alice\n\
             postmaster: root\n",
            include.display(),
            script.display(),
            mbox.display()
        ),
    )
    .unwrap();
    let out = env.run(&["newaliases", "--file", file.to_str().unwrap()], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("6 entries, 4 aliases imported, 0 removed, 2 skipped"),
        "{stdout}"
    );
    // admin (alias add) and postmaster (made by domain add) are kept, and said so.
    assert!(
        stderr.contains(":7: skipped: admin@example.org was made with `postern alias add`"),
        "{stderr}"
    );
    assert!(
        stderr.contains(":8: skipped: postmaster@example.org"),
        "{stderr}"
    );

    let server = env.serve();
    let smtp = server.addrs["smtp"].port();
    assert_eq!(send(smtp, &["staff@example.org"], "to staff"), "OK");
    assert_eq!(send(smtp, &["team@example.org"], "to team"), "OK");
    assert_eq!(send(smtp, &["pipe@example.org"], "to pipe"), "OK");
    assert_eq!(send(smtp, &["archive@example.org"], "to archive 1"), "OK");
    assert_eq!(send(smtp, &["archive@example.org"], "to archive 2"), "OK");
    let alice = env.maildir("alice@example.org");
    let bob = env.maildir("bob@example.org");
    wait_for("staff, team and archive copies", 60, || {
        count(&alice) == 4 && count(&bob) == 2
    });
    wait_for("the command's output", 60, || {
        std::fs::read_to_string(&piped).is_ok_and(|t| t.contains("RECIPIENT="))
    });
    let got = std::fs::read_to_string(&piped).unwrap();
    assert!(
        got.starts_with("Return-Path: <carol@remote.test>\nDelivered-To: pipe@example.org\n"),
        "{got}"
    );
    assert!(got.contains("Subject: to pipe\n"), "{got}");
    assert!(
        got.ends_with(
            "SENDER=carol@remote.test RECIPIENT=pipe@example.org LOCAL=pipe DOMAIN=example.org\n"
        ),
        "{got}"
    );
    wait_for("two messages in the mbox", 60, || {
        std::fs::read_to_string(&mbox).is_ok_and(|t| t.matches("Subject: to archive").count() == 2)
    });
    let read = python(
        r#"
import mailbox, sys
box = mailbox.mbox(sys.argv[1], create=False)
for m in box:
    print(m.get_from().split()[0], "|", m["Subject"], "|", m["Delivered-To"], "|", m.get_payload().splitlines()[0])
"#,
        &[mbox.display().to_string()],
    );
    // The body's "From " line is quoted in the file (Python's reader, mboxo-style, leaves the
    // quote in place), so it did not split the message: two messages, both intact.
    assert_eq!(
        read,
        "carol@remote.test | to archive 1 | archive@example.org | >From the start of a line\n\
         carol@remote.test | to archive 2 | archive@example.org | >From the start of a line\n"
    );

    // The line removed, the import again: staff is gone (refused at RCPT), the rest stays,
    // the admin's alias too.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("staff: alice,\n\tbob\n", "")).unwrap();
    let out = env.ok(&["newaliases", "--file", file.to_str().unwrap()], "");
    assert!(out.contains("3 aliases imported, 1 removed"), "{out}");
    let list = env.ok(&["alias", "list"], "");
    assert!(!list.contains("staff@example.org"), "{list}");
    assert!(
        list.contains(&format!(
            "team@example.org -> alice@example.org, bob@example.org  (from {}",
            file.display()
        )),
        "{list}"
    );
    assert!(
        list.contains("admin@example.org -> bob@example.org"),
        "{list}"
    );
    let refused = send(smtp, &["staff@example.org"], "to staff again");
    assert!(
        refused.starts_with("REFUSED ['staff@example.org']"),
        "{refused}"
    );
    drop(server);
}

/// The patterns a script that parses Postfix's mailq output would use.
const ID_LINE: &str = r"^([0-9A-F]{10,})([*!]?)\s+(\d+) ((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d)\s+(\S+)$";
const REASON_LINE: &str = r"^\s+\((.+)\)$";
const RCPT_LINE: &str = r"^ {41}(\S+)$";
const TOTAL_LINE: &str = r"^-- (\d+) Kbytes in (\d+) Requests?\.$";
const HEADER: &str = "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------";

/// Parses a mailq listing with the patterns above (in Python's `re`, as a script would):
/// prints one line per message `id status size sender | reason | recipients`.
fn parse_mailq(text: &str) -> String {
    python(
        r#"
import re, sys
text, id_line, reason_line, rcpt_line, total_line, header = sys.argv[1:7]
lines = text.split("\n")
assert lines[0] == header, lines[0]
assert lines[-1] == "", "ends with a newline"
assert re.match(total_line, lines[-2]), lines[-2]
assert lines[-3] == "", "a blank line before the total"
msgs, cur = [], None
for line in lines[1:-3]:
    if line == "":
        cur = None
        continue
    m = re.match(id_line, line)
    if m:
        cur = {"id": m.group(1), "status": m.group(2) or "-", "size": m.group(3), "sender": m.group(5), "reasons": [], "rcpts": []}
        msgs.append(cur)
        continue
    m = re.match(reason_line, line)
    if m:
        assert len(line) == 78 or line.startswith("("), repr(line)
        cur["reasons"].append(m.group(1))
        continue
    m = re.match(rcpt_line, line)
    assert m, "unparsed line %r" % line
    cur["rcpts"].append(m.group(1))
for m in msgs:
    print(m["status"], m["size"], m["sender"], "|", ";".join(m["reasons"]), "|", ",".join(m["rcpts"]))
"#,
        &[
            text.to_string(),
            ID_LINE.to_string(),
            REASON_LINE.to_string(),
            RCPT_LINE.to_string(),
            TOTAL_LINE.to_string(),
            HEADER.to_string(),
        ],
    )
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn mailq_lists_deferred_and_held_mail_in_postfix_format() {
    let port = closed_port();
    let env = Env::with_config(&format!(
        "[queue]\nretry_delays_secs = [3600]\ndelay_warning_secs = 0\n[outbound.routes]\n\"remote.test\" = \"127.0.0.1:{port}\"\n"
    ));
    env.ok(&["domain", "add", "example.org"], "");
    env.ok(&["user", "add", "alice@example.org"], "pw-alice\n");
    assert_eq!(env.ok(&["mailq"], ""), "Mail queue is empty\n");
    let server = env.serve();
    let smtp = server.addrs["smtp"].port();
    assert_eq!(
        send(smtp, &["x@remote.test", "y@remote.test"], "deferred"),
        "OK"
    );
    assert_eq!(send(smtp, &["z@remote.test"], "to be held"), "OK");
    wait_for("both messages deferred with a reason", 60, || {
        let q = env.ok(&["mailq"], "");
        q.matches("Connection refused").count() >= 2
    });
    let listing = env.ok(&["mailq"], "");
    let held_id = listing
        .lines()
        .find(|l| l.contains("carol@remote.test"))
        .and_then(|l| {
            let id = l.split_whitespace().next()?;
            let q = env.ok(&["queue", "show", id], "");
            q.contains("z@remote.test").then(|| id.to_string())
        })
        .or_else(|| {
            listing
                .lines()
                .filter(|l| l.contains("carol@remote.test"))
                .nth(1)
                .map(|l| l.split_whitespace().next().unwrap().to_string())
        })
        .unwrap();
    env.ok(&["queue", "hold", &held_id], "");
    let listing = env.ok(&["mailq"], "");
    let parsed = parse_mailq(&listing);
    let lines: Vec<&str> = parsed.lines().collect();
    assert_eq!(lines.len(), 2, "{listing}\n{parsed}");
    let reason = format!("[127.0.0.1:{port}]: Connection refused");
    let deferred = lines.iter().find(|l| l.contains("x@remote.test")).unwrap();
    let held = lines.iter().find(|l| l.contains("z@remote.test")).unwrap();
    assert!(deferred.starts_with("- "), "{deferred}\n{listing}");
    assert!(deferred.contains(" carol@remote.test | "), "{deferred}");
    assert!(
        deferred.ends_with(" | x@remote.test,y@remote.test"),
        "{deferred}\n{listing}"
    );
    assert!(
        deferred.contains("Connection refused") && !deferred.contains(';'),
        "one reason shown once for both recipients: {deferred}\n{listing}"
    );
    assert!(held.starts_with("! "), "{held}");
    assert!(held.ends_with(" | z@remote.test"), "{held}");
    assert!(deferred.contains(&reason), "{deferred}");
    assert!(
        listing.ends_with("\n-- 0 Kbytes in 2 Requests.\n"),
        "{listing}"
    );

    // When Postfix is installed, its own listing of a deferred message parses with the same
    // patterns (run as root: Postfix's master needs it).
    if on_path("postfix") && unsafe { libc::geteuid() } == 0 {
        let pf = postfix_deferred_listing();
        let parsed = parse_mailq(&pf);
        let line = parsed.lines().next().unwrap_or_default().to_string();
        assert!(
            line.contains(" root@postfix.test | ")
                && line.ends_with(" | a@remote.test,b@remote.test"),
            "Postfix listing:\n{pf}\nparsed: {parsed}"
        );
        eprintln!("postfix:\n{pf}\npostern:\n{listing}");
    }
    drop(server);
}

/// A private Postfix (its own config and queue under a temp dir) whose relayhost is a closed
/// loopback port: one message submitted with its sendmail, deferred; `postqueue -p`'s output.
fn postfix_deferred_listing() -> String {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = d.join("conf");
    let queue = d.join("queue");
    let data = d.join("data");
    for p in [&conf, &queue, &data] {
        std::fs::create_dir_all(p).unwrap();
    }
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let port = closed_port();
    std::fs::write(conf.join("main.cf"), "").unwrap();
    sh(&format!(
        "chmod 755 {d} && chown postfix {data} && postconf -c {conf} -e \
         'compatibility_level = 3.6' 'queue_directory = {queue}' 'data_directory = {data}' \
         'maillog_file = {d}/maillog' 'maillog_file_prefixes = {d}' 'myhostname = postfix.test' \
         'mydomain = postfix.test' 'myorigin = postfix.test' \
         'inet_interfaces = loopback-only' 'inet_protocols = ipv4' 'mydestination =' \
         'alias_maps =' 'alias_database =' 'biff = no' 'relayhost = [127.0.0.1]:{port}' \
         'smtp_connect_timeout = 5s' 'enable_long_queue_ids = no'",
        d = d.display(),
        data = data.display(),
        conf = conf.display(),
        queue = queue.display(),
    ));
    std::fs::write(
        conf.join("master.cf"),
        "pickup    unix n - n 60 1 pickup\n\
         cleanup   unix n - n - 0 cleanup\n\
         qmgr      unix n - n 300 1 qmgr\n\
         rewrite   unix - - n - - trivial-rewrite\n\
         bounce    unix - - n - 0 bounce\n\
         defer     unix - - n - 0 bounce\n\
         trace     unix - - n - 0 bounce\n\
         flush     unix n - n 1000? 0 flush\n\
         proxymap  unix - - n - - proxymap\n\
         showq     unix n - n - - showq\n\
         smtp      unix - - n - - smtp\n\
         relay     unix - - n - - smtp\n\
         error     unix - - n - - error\n\
         retry     unix - - n - - error\n\
         anvil     unix - - n - 1 anvil\n\
         scache    unix - - n - 1 scache\n\
         postlog   unix-dgram n - n - 1 postlogd\n",
    )
    .unwrap();
    let c = conf.display().to_string();
    sh(&format!("postfix -c {c} check && postfix -c {c} start"));
    struct Stop(String);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("/usr/sbin/postfix")
                .args(["-c", &self.0, "stop"])
                .output();
        }
    }
    let _stop = Stop(c.clone());
    sh(&format!(
        "printf 'Subject: deferred\\n\\nbody\\n' | sendmail -C {c} -f root@postfix.test a@remote.test b@remote.test"
    ));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = sh(&format!("postqueue -c {c} -p"));
        if out.contains("Connection refused") || out.contains("connect to") {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "Postfix did not defer in time:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
