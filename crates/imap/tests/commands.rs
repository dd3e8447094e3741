//! Per-command tests of the IMAP server: each drives a real session over an in-memory stream
//! and checks the exact protocol behaviour the RFC section in its doc comment asks for.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use common::{message, Client, Env, PASS, USER};
use postern_directory::ThrottleConfig;
use postern_imap::ImapLimits;

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;

/// The flags of a `FLAGS (...)` item in a line, as a set.
fn flags_in(line: &str) -> BTreeSet<String> {
    let i = line.find("FLAGS (").expect("FLAGS item") + "FLAGS (".len();
    let end = line[i..].find(')').expect("end of FLAGS") + i;
    line[i..end]
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn set(flags: &[&str]) -> BTreeSet<String> {
    flags.iter().map(|s| s.to_string()).collect()
}

/// The number after `key` in a line (`UIDVALIDITY 123`).
fn number_after(line: &str, key: &str) -> u64 {
    let i = line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
    line[i..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("number after {key} in {line}"))
}

/// The INTERNALDATE of a FETCH line as Unix seconds (RFC 9051 §9 `date-time`).
fn internal_date(line: &str) -> i64 {
    let i = line.find("INTERNALDATE \"").expect("INTERNALDATE") + "INTERNALDATE \"".len();
    let s = &line[i..i + 26];
    let (d, rest) = s.trim_start().split_once('-').unwrap();
    let (mon, rest) = rest.split_once('-').unwrap();
    let (y, rest) = rest.split_once(' ').unwrap();
    let (time, zone) = rest.split_once(' ').unwrap();
    let m = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|x| *x == mon)
    .unwrap() as i64
        + 1;
    let (y, d): (i64, i64) = (y.parse().unwrap(), d.trim().parse().unwrap());
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    let t: Vec<i64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    let z: i64 = zone[1..5].parse().unwrap();
    let off = (z / 100 * 3600 + z % 100 * 60) * if zone.starts_with('-') { -1 } else { 1 };
    days * 86400 + t[0] * 3600 + t[1] * 60 + t[2] - off
}

/// Appends `n` messages "m1".."mn" to INBOX.
async fn fill_inbox(c: &mut Client, n: usize) {
    for i in 1..=n {
        let from = if i % 2 == 1 {
            "Alice <alice@example.org>"
        } else {
            "Carol <carol@example.com>"
        };
        c.append(
            "INBOX",
            "",
            &message(&format!("m{i}"), from, &format!("body {i}")),
        )
        .await
        .assert_ok();
    }
}

// ----- any state ---------------------------------------------------------------------------

/// RFC 9051 §7.1.1 greeting, §6.1.1 CAPABILITY, §6.1.2 NOOP, §6.1.3 LOGOUT (BYE before OK).
#[tokio::test]
async fn capability_noop_logout() {
    let env = Env::new().await;
    let mut c = env.connect().await;
    assert!(
        c.greeting.starts_with("* OK [CAPABILITY "),
        "{}",
        c.greeting
    );
    let r = c.cmd("CAPABILITY").await;
    r.assert_ok();
    let caps: Vec<&str> = r.one("CAPABILITY ").split(' ').skip(1).collect();
    for want in [
        "IMAP4rev2",
        "IMAP4rev1",
        "AUTH=PLAIN",
        "SASL-IR",
        "ID",
        "IDLE",
    ] {
        assert!(caps.contains(&want), "{want} missing from {caps:?}");
    }
    // Loopback peer: plaintext passwords are allowed, so LOGIN is not disabled.
    assert!(!caps.contains(&"LOGINDISABLED"), "{caps:?}");
    // No TLS configured: STARTTLS is not offered.
    assert!(!caps.contains(&"STARTTLS"), "{caps:?}");
    let r = c.cmd("NOOP").await;
    r.assert_ok();
    assert!(r.untagged.is_empty(), "{r:?}");
    let tag = c.tag();
    c.send(&format!("{tag} LOGOUT")).await;
    let bye = c.line().await;
    assert!(bye.starts_with("* BYE "), "{bye}");
    let done = c.line().await;
    assert!(done.starts_with(&format!("{tag} OK")), "{done}");
    assert!(c.closed().await);
}

/// RFC 9051 §7.2.2: after login the capability list shows the authenticated-state extensions.
#[tokio::test]
async fn capability_after_login() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let r = c.cmd("CAPABILITY").await;
    r.assert_ok();
    let caps: Vec<&str> = r.one("CAPABILITY ").split(' ').skip(1).collect();
    for want in [
        "IMAP4rev2",
        "IMAP4rev1",
        "UIDPLUS",
        "MOVE",
        "CONDSTORE",
        "QRESYNC",
        "ESEARCH",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "SPECIAL-USE",
        "UNSELECT",
        "QUOTA",
    ] {
        assert!(caps.contains(&want), "{want} missing from {caps:?}");
    }
    assert!(!caps.iter().any(|c| c.starts_with("AUTH=")), "{caps:?}");
    c.finish().await;
}

/// RFC 2971 §3.1 ID: one untagged ID response, in any state, also for `ID NIL`.
#[tokio::test]
async fn id_before_and_after_login() {
    let env = Env::new().await;
    let mut c = env.connect().await;
    let r = c
        .cmd("ID (\"name\" \"test-client\" \"version\" \"1\")")
        .await;
    r.assert_ok();
    let id = r.one("ID ");
    assert!(id.starts_with("ID (\"name\" \"postern\""), "{id}");
    let r = c.cmd("ID NIL").await;
    r.assert_ok();
    r.one("ID ");
    c.cmd(&format!("LOGIN {USER} \"{PASS}\"")).await.assert_ok();
    c.cmd("ID NIL").await.assert_ok().one("ID ");
    c.finish().await;
}

// ----- not authenticated -------------------------------------------------------------------

/// RFC 9051 §6.2.3 LOGIN: OK (with a CAPABILITY code), NO [AUTHENTICATIONFAILED] (RFC 5530)
/// for a wrong password or an unknown user, BAD when already authenticated.
#[tokio::test]
async fn login() {
    let env = Env::new().await;
    let mut c = env.connect().await;
    let r = c.cmd(&format!("LOGIN {USER} wrong")).await;
    r.assert_no();
    assert_eq!(r.code(), Some("AUTHENTICATIONFAILED"), "{r:?}");
    let r = c.cmd("LOGIN nobody@example.org whatever").await;
    r.assert_no();
    assert_eq!(r.code(), Some("AUTHENTICATIONFAILED"), "{r:?}");
    // Quoted and literal forms of astring.
    let r = c
        .cmd_parts(&[
            format!("LOGIN \"{USER}\" {{{}}}", PASS.len()).as_bytes(),
            PASS.as_bytes(),
        ])
        .await;
    r.assert_ok();
    assert!(
        r.code().is_some_and(|c| c.starts_with("CAPABILITY ")),
        "{r:?}"
    );
    c.cmd(&format!("LOGIN {USER} \"{PASS}\""))
        .await
        .assert_bad();
    c.finish().await;
}

/// RFC 7888 §3 LITERAL+: a non-synchronising literal needs no continuation request.
#[tokio::test]
async fn login_with_non_synchronising_literal() {
    let env = Env::new().await;
    let mut c = env.connect().await;
    let tag = c.tag();
    c.send_raw(format!("{tag} LOGIN {USER} {{{}+}}\r\n{PASS}\r\n", PASS.len()).as_bytes())
        .await;
    let r = c.read_until_tagged(&tag).await;
    r.assert_ok();
    assert!(r.untagged.iter().all(|l| !l.starts_with('+')), "{r:?}");
    c.finish().await;
}

/// RFC 9051 §3.1/§6: commands of the authenticated and selected states are refused before
/// login (the server answers BAD).
#[tokio::test]
async fn commands_before_login_are_refused() {
    let env = Env::new().await;
    let mut c = env.connect().await;
    for cmd in [
        "SELECT INBOX",
        "LIST \"\" *",
        "NAMESPACE",
        "ENABLE CONDSTORE",
        "STATUS INBOX (MESSAGES)",
        "FETCH 1 FLAGS",
        "CREATE Foo",
        "IDLE",
    ] {
        let r = c.cmd(cmd).await;
        r.assert_bad();
        assert!(r.untagged.is_empty(), "{cmd}: {r:?}");
    }
    // The session is still usable.
    c.cmd(&format!("LOGIN {USER} \"{PASS}\"")).await.assert_ok();
    c.finish().await;
}

/// RFC 9051 §6.2.2 AUTHENTICATE PLAIN with an RFC 4959 SASL-IR initial response.
#[tokio::test]
async fn authenticate_plain_initial_response() {
    let env = Env::new().await;
    let mut c = env.connect().await;
    let ir = B64.encode(format!("\0{USER}\0{PASS}"));
    let r = c.cmd(&format!("AUTHENTICATE PLAIN {ir}")).await;
    r.assert_ok();
    assert!(r.untagged.is_empty(), "{r:?}");
    c.cmd("SELECT INBOX").await.assert_ok();
    c.finish().await;
}

/// RFC 9051 §6.2.2 AUTHENTICATE PLAIN with an empty challenge ("+ ") and a continuation.
#[tokio::test]
async fn authenticate_plain_continuation() {
    let env = Env::new().await;
    let mut c = env.connect().await;
    let tag = c.tag();
    c.send(&format!("{tag} AUTHENTICATE PLAIN")).await;
    let cont = c.line().await;
    assert_eq!(cont.trim_end(), "+", "{cont:?}");
    assert!(cont.starts_with("+ ") || cont == "+", "{cont:?}");
    c.send(&B64.encode(format!("{USER}\0{USER}\0{PASS}"))).await;
    let r = c.read_until_tagged(&tag).await;
    r.assert_ok();
    c.finish().await;
}

/// RFC 9051 §6.2.2: "*" cancels (tagged BAD), invalid base64 is BAD, a wrong password is
/// NO [AUTHENTICATIONFAILED], an unsupported mechanism is NO.
#[tokio::test]
async fn authenticate_failures() {
    let env = Env::new().await;
    let mut c = env.connect().await;
    let tag = c.tag();
    c.send(&format!("{tag} AUTHENTICATE PLAIN")).await;
    assert!(c.line().await.starts_with('+'));
    c.send("*").await;
    c.read_until_tagged(&tag).await.assert_bad();

    let tag = c.tag();
    c.send(&format!("{tag} AUTHENTICATE PLAIN")).await;
    assert!(c.line().await.starts_with('+'));
    c.send("!!!not base64!!!").await;
    c.read_until_tagged(&tag).await.assert_bad();

    let ir = B64.encode(format!("\0{USER}\0wrong"));
    let r = c.cmd(&format!("AUTHENTICATE PLAIN {ir}")).await;
    r.assert_no();
    assert_eq!(r.code(), Some("AUTHENTICATIONFAILED"), "{r:?}");

    c.cmd("AUTHENTICATE X-UNKNOWN-MECH").await.assert_no();
    // Still not authenticated.
    c.cmd("SELECT INBOX").await.assert_bad();
    c.finish().await;
}

// ----- authenticated -----------------------------------------------------------------------

/// RFC 9051 §6.3.10 NAMESPACE (RFC 2342): one personal namespace "" with the separator.
#[tokio::test]
async fn namespace() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let r = c.cmd("NAMESPACE").await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* NAMESPACE ((\"\" \"/\")) NIL NIL"]);
    c.finish().await;
}

/// RFC 9051 §6.3.1 / RFC 5161 §3.1 ENABLE: ENABLED lists what was enabled; unknown names
/// are ignored; RFC 7162 §3.2.3 QRESYNC.
#[tokio::test]
async fn enable() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let r = c.cmd("ENABLE CONDSTORE").await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* ENABLED CONDSTORE"]);
    let r = c.cmd("ENABLE X-NOT-A-THING").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    assert_eq!(r.untagged[0].trim_end(), "* ENABLED");
    let r = c.cmd("ENABLE QRESYNC IMAP4rev2").await;
    r.assert_ok();
    let l = r.one("ENABLED");
    let got: BTreeSet<&str> = l.split(' ').skip(1).collect();
    assert_eq!(got, BTreeSet::from(["QRESYNC", "IMAP4rev2"]), "{l}");
    c.finish().await;
}

/// RFC 9051 §6.3.2 SELECT: FLAGS, PERMANENTFLAGS, EXISTS, UIDVALIDITY, UIDNEXT (and for
/// IMAP4rev1 RECENT and UNSEEN), RFC 7162 §3.1.2.1 HIGHESTMODSEQ, tagged OK [READ-WRITE].
#[tokio::test]
async fn select() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.cmd("STORE 1 +FLAGS (\\Seen)").await.assert_bad(); // no mailbox selected yet
    let r = c.select("INBOX").await;
    assert!(r.tagged.starts_with("OK [READ-WRITE]"), "{:?}", r.tagged);
    let flags = flags_in(r.one("FLAGS ("));
    assert_eq!(
        flags,
        set(&["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"])
    );
    let perm = r.one("OK [PERMANENTFLAGS (");
    assert!(perm.contains("\\*"), "{perm}");
    for f in ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"] {
        assert!(perm.contains(f), "{perm}");
    }
    assert_eq!(r.one("2 EXISTS"), "2 EXISTS");
    r.one("2 RECENT"); // IMAP4rev1: appended messages are \Recent to the first session
    assert_eq!(r.one("OK [UNSEEN "), "OK [UNSEEN 1] First unseen");
    let uv = number_after(r.one("OK [UIDVALIDITY "), "UIDVALIDITY");
    assert!(uv > 0);
    assert_eq!(number_after(r.one("OK [UIDNEXT "), "UIDNEXT"), 3);
    assert!(number_after(r.one("OK [HIGHESTMODSEQ "), "HIGHESTMODSEQ") >= 1);
    // The messages are no longer \Recent for the next session.
    let mut c2 = env.login().await;
    let r2 = c2.select("INBOX").await;
    r2.one("0 RECENT");
    assert_eq!(
        number_after(r2.one("OK [UIDVALIDITY "), "UIDVALIDITY"),
        uv,
        "UIDVALIDITY is stable"
    );
    c2.finish().await;
    c.finish().await;
}

/// RFC 9051 §6.3.3 EXAMINE: read-only, tagged OK [READ-ONLY], no \Seen from FETCH BODY[],
/// STORE refused.
#[tokio::test]
async fn examine_is_read_only() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    let r = c.cmd("EXAMINE INBOX").await;
    r.assert_ok();
    assert!(r.tagged.starts_with("OK [READ-ONLY]"), "{:?}", r.tagged);
    r.one("1 EXISTS");
    let r = c.cmd("FETCH 1 (BODY[TEXT])").await;
    r.assert_ok();
    assert!(!r.untagged[0].contains("\\Seen"), "{r:?}");
    let r = c.cmd("FETCH 1 FLAGS").await;
    assert!(!flags_in(&r.untagged[0]).contains("\\Seen"), "{r:?}");
    c.cmd("STORE 1 +FLAGS (\\Flagged)").await.assert_no();
    c.cmd("EXPUNGE").await.assert_no();
    c.finish().await;
}

/// RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected; a SELECT while one is
/// selected closes it with OK [CLOSED] (RFC 7162 §3.2.11, RFC 9051 §7.1).
#[tokio::test]
async fn select_failures_and_reselect() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let r = c.cmd("SELECT Nope").await;
    r.assert_no();
    assert_eq!(r.code(), Some("NONEXISTENT"), "{r:?}");
    let r = c.select("INBOX").await;
    assert!(r.lines("OK [CLOSED]").is_empty(), "{r:?}");
    let r = c.select("Sent").await;
    assert_eq!(r.untagged[0], "* OK [CLOSED] Previous mailbox closed");
    c.cmd("SELECT Nope").await.assert_no();
    // Back in the authenticated state.
    c.cmd("FETCH 1:* FLAGS").await.assert_bad();
    c.finish().await;
}

/// RFC 9051 §6.3.2 with IMAP4rev2 enabled: no RECENT or UNSEEN, a LIST response for the
/// mailbox.
#[tokio::test]
async fn select_imap4rev2() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    c.cmd("ENABLE IMAP4rev2").await.assert_ok();
    let r = c.select("INBOX").await;
    assert!(r.lines("1 RECENT").is_empty() && r.lines("0 RECENT").is_empty());
    assert!(r.lines("OK [UNSEEN").is_empty(), "{r:?}");
    assert_eq!(r.one("LIST "), "LIST () \"/\" \"INBOX\"");
    r.one("1 EXISTS");
    c.finish().await;
}

/// RFC 9051 §6.3.4 CREATE: ALREADYEXISTS (RFC 5530) for a duplicate, superior names created,
/// a trailing separator accepted, INBOX cannot be created.
#[tokio::test]
async fn create() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.cmd("CREATE Foo").await.assert_ok();
    let r = c.cmd("CREATE Foo").await;
    r.assert_no();
    assert_eq!(r.code(), Some("ALREADYEXISTS"), "{r:?}");
    c.cmd("CREATE INBOX").await.assert_no();
    c.cmd("CREATE inbox").await.assert_no();
    c.cmd("CREATE a/b/c").await.assert_ok();
    c.cmd("CREATE Dir/").await.assert_ok();
    let r = c.cmd("LIST \"\" *").await;
    r.assert_ok();
    let names: BTreeSet<String> = r
        .untagged
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().trim_matches('"').to_string())
        .collect();
    for n in ["INBOX", "Foo", "a", "a/b", "a/b/c", "Dir"] {
        assert!(names.contains(n), "{n} not listed: {r:?}");
    }
    // RFC 6154 §3 CREATE-SPECIAL-USE.
    c.cmd("CREATE MyFlagged (USE (\\Flagged))")
        .await
        .assert_ok();
    let r = c.cmd("LIST \"\" MyFlagged").await;
    assert!(r.one("LIST ").contains("\\Flagged"), "{r:?}");
    c.finish().await;
}

/// RFC 9051 §6.3.5 DELETE: NONEXISTENT, INBOX cannot be deleted, inferior names survive.
#[tokio::test]
async fn delete() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.cmd("CREATE Foo").await.assert_ok();
    c.cmd("DELETE Foo").await.assert_ok();
    let r = c.cmd("DELETE Foo").await;
    r.assert_no();
    assert_eq!(r.code(), Some("NONEXISTENT"), "{r:?}");
    c.cmd("DELETE INBOX").await.assert_no();
    c.cmd("CREATE p/q").await.assert_ok();
    let r = c.cmd("DELETE p").await;
    // Either removed, keeping p/q (which then shows p as \Noselect or \NonExistent), or refused
    // with HASCHILDREN (RFC 5530).
    if r.status() == "NO" {
        assert_eq!(r.code(), Some("HASCHILDREN"), "{r:?}");
    } else {
        r.assert_ok();
    }
    let r = c.cmd("LIST \"\" p/q").await;
    r.one("LIST ");
    c.finish().await;
}

/// RFC 9051 §6.3.6 RENAME: inferior names move along, ALREADYEXISTS and NONEXISTENT codes.
#[tokio::test]
async fn rename() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.cmd("CREATE Old/Child").await.assert_ok();
    c.cmd("CREATE Other").await.assert_ok();
    c.append("Old", "", &message("x", "a@b.c", "y"))
        .await
        .assert_ok();
    c.cmd("RENAME Old New").await.assert_ok();
    let r = c.cmd("LIST \"\" *").await;
    let all = r.untagged.join("\n");
    assert!(!all.contains("\"Old"), "{all}");
    assert!(all.contains("\"New\""), "{all}");
    assert!(all.contains("\"New/Child\""), "{all}");
    let r = c.cmd("STATUS New (MESSAGES)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"New\" (MESSAGES 1)");
    let r = c.cmd("RENAME New Other").await;
    r.assert_no();
    assert_eq!(r.code(), Some("ALREADYEXISTS"), "{r:?}");
    let r = c.cmd("RENAME Gone Elsewhere").await;
    r.assert_no();
    assert_eq!(r.code(), Some("NONEXISTENT"), "{r:?}");
    c.finish().await;
}

/// RFC 9051 §6.3.6: renaming INBOX moves its messages to the new name and leaves INBOX
/// empty.
#[tokio::test]
async fn rename_inbox() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.cmd("RENAME INBOX Saved").await.assert_ok();
    let r = c.cmd("STATUS Saved (MESSAGES)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"Saved\" (MESSAGES 2)");
    let r = c.cmd("STATUS INBOX (MESSAGES)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"INBOX\" (MESSAGES 0)");
    c.finish().await;
}

/// RFC 9051 §6.3.7 SUBSCRIBE, §6.3.8 UNSUBSCRIBE, RFC 3501 §6.3.9 LSUB, RFC 5258 §3.1
/// LIST (SUBSCRIBED).
#[tokio::test]
async fn subscribe_unsubscribe_lsub() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.cmd("CREATE Foo").await.assert_ok();
    let r = c.cmd("LSUB \"\" Foo").await;
    r.assert_ok();
    assert!(r.untagged.is_empty(), "{r:?}");
    c.cmd("SUBSCRIBE Foo").await.assert_ok();
    let r = c.cmd("LSUB \"\" Foo").await;
    assert_eq!(r.untagged, ["* LSUB () \"/\" \"Foo\""]);
    let r = c.cmd("LIST (SUBSCRIBED) \"\" Foo").await;
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    assert!(r.untagged[0].contains("\\Subscribed"), "{r:?}");
    let r = c.cmd("LIST \"\" Foo RETURN (SUBSCRIBED)").await;
    assert!(r.one("LIST ").contains("\\Subscribed"), "{r:?}");
    c.cmd("UNSUBSCRIBE Foo").await.assert_ok();
    let r = c.cmd("LSUB \"\" Foo").await;
    assert!(r.untagged.is_empty(), "{r:?}");
    let r = c.cmd("LIST (SUBSCRIBED) \"\" Foo").await;
    assert!(r.untagged.is_empty(), "{r:?}");
    // The default folders are subscribed.
    let r = c.cmd("LSUB \"\" *").await;
    let names: Vec<&str> = r
        .untagged
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().trim_matches('"'))
        .collect();
    for n in ["INBOX", "Sent", "Drafts", "Trash"] {
        assert!(names.contains(&n), "{n}: {r:?}");
    }
    c.finish().await;
}

/// RFC 9051 §6.3.9 LIST: the empty pattern returns the delimiter; `%` stops at the
/// delimiter; `*` does not; INBOX is case-insensitive.
#[tokio::test]
async fn list_patterns() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let r = c.cmd("LIST \"\" \"\"").await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* LIST (\\Noselect) \"/\" \"\""]);
    c.cmd("CREATE Work/Projects").await.assert_ok();
    let r = c.cmd("LIST \"\" %").await;
    let all = r.untagged.join("\n");
    assert!(all.contains("\"Work\""), "{all}");
    assert!(!all.contains("Work/Projects"), "{all}");
    assert!(r.untagged[0].ends_with("\"INBOX\""), "INBOX first: {all}");
    let r = c.cmd("LIST \"\" Work/*").await;
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    assert!(r.untagged[0].ends_with("\"Work/Projects\""), "{r:?}");
    assert!(r.untagged[0].contains("\\HasNoChildren"), "{r:?}");
    let r = c.cmd("LIST \"Work/\" %").await;
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    assert!(r.untagged[0].ends_with("\"Work/Projects\""), "{r:?}");
    let r = c.cmd("LIST \"\" Work").await;
    assert!(r.one("LIST ").contains("\\HasChildren"), "{r:?}");
    let r = c.cmd("LIST \"\" inbox").await;
    assert_eq!(r.one("LIST ").rsplit(' ').next(), Some("\"INBOX\""));
    c.finish().await;
}

/// RFC 5258 §3 LIST-EXTENDED with several patterns, RFC 6154 §2 (SPECIAL-USE) selection and
/// RFC 5819 RETURN (STATUS): a STATUS response follows each selectable mailbox's LIST.
#[tokio::test]
async fn list_extended_special_use_status() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    let r = c.cmd("LIST \"\" (INBOX Sent)").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 2, "{r:?}");
    let r = c.cmd("LIST (SPECIAL-USE) \"\" *").await;
    r.assert_ok();
    let uses: BTreeSet<String> = r
        .untagged
        .iter()
        .map(|l| {
            let attrs = &l[l.find('(').unwrap() + 1..l.find(')').unwrap()];
            attrs
                .split(' ')
                .find(|a| !a.starts_with("\\Has"))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        uses,
        set(&["\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"]),
        "{r:?}"
    );
    let r = c
        .cmd("LIST \"\" (INBOX Trash) RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))")
        .await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 4, "{r:?}");
    assert!(r.untagged[0].starts_with("* LIST ") && r.untagged[0].ends_with("\"INBOX\""));
    assert_eq!(r.untagged[1], "* STATUS \"INBOX\" (MESSAGES 2 UNSEEN 2)");
    assert!(r.untagged[2].contains("\\Trash"), "{r:?}");
    assert_eq!(r.untagged[3], "* STATUS \"Trash\" (MESSAGES 0 UNSEEN 0)");
    c.cmd("LIST (BOGUS) \"\" *").await.assert_bad();
    c.finish().await;
}

/// RFC 9051 §6.3.11 STATUS with every item (and RFC 8438 SIZE, RFC 7162 HIGHESTMODSEQ,
/// RFC 7889 APPENDLIMIT); NONEXISTENT for a missing mailbox, BAD for an unknown item.
#[tokio::test]
async fn status_items() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 3).await;
    let r = c.select("INBOX").await;
    let uv = number_after(r.one("OK [UIDVALIDITY "), "UIDVALIDITY");
    c.cmd("STORE 1 +FLAGS.SILENT (\\Seen \\Deleted)")
        .await
        .assert_ok();
    let sizes = c.cmd("FETCH 1:* RFC822.SIZE").await;
    let total: u64 = sizes
        .untagged
        .iter()
        .map(|l| number_after(l, "RFC822.SIZE"))
        .sum();
    c.cmd("UNSELECT").await.assert_ok();
    let r = c
        .cmd("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT HIGHESTMODSEQ APPENDLIMIT)")
        .await;
    r.assert_ok();
    let l = r.one("STATUS ");
    assert!(
        l.starts_with("STATUS \"INBOX\" (MESSAGES 3 UIDNEXT 4 "),
        "{l}"
    );
    assert_eq!(number_after(l, "UIDVALIDITY"), uv);
    assert_eq!(number_after(l, "UNSEEN"), 2, "{l}");
    assert_eq!(number_after(l, "DELETED"), 1, "{l}");
    assert_eq!(number_after(l, "SIZE"), total, "{l}");
    assert_eq!(number_after(l, "RECENT"), 0, "{l}");
    assert!(number_after(l, "HIGHESTMODSEQ") > 1, "{l}");
    assert_eq!(
        number_after(l, "APPENDLIMIT"),
        ImapLimits::default().append_limit,
        "{l}"
    );
    let r = c.cmd("STATUS Nope (MESSAGES)").await;
    r.assert_no();
    assert_eq!(r.code(), Some("NONEXISTENT"), "{r:?}");
    c.cmd("STATUS INBOX (BOGUS)").await.assert_bad();
    c.finish().await;
}

/// RFC 9051 §6.3.12 APPEND with flags and an internal date; RFC 4315 §3 APPENDUID; the
/// message reads back octet for octet.
#[tokio::test]
async fn append_flags_date_appenduid() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let msg = message("hello", "Alice <alice@example.org>", "Hi there");
    let r = c
        .append(
            "INBOX",
            "(\\Seen \\Flagged $Label) \"14-Jul-2021 02:44:25 -0700\"",
            &msg,
        )
        .await;
    r.assert_ok();
    let code = r.code().expect("APPENDUID code");
    let parts: Vec<&str> = code.split(' ').collect();
    assert_eq!(parts[0], "APPENDUID");
    assert_eq!(parts[2], "1", "{code}");
    let s = c.select("INBOX").await;
    assert_eq!(
        number_after(s.one("OK [UIDVALIDITY "), "UIDVALIDITY").to_string(),
        parts[1]
    );
    // The keyword is announced in FLAGS and PERMANENTFLAGS.
    assert!(flags_in(s.one("FLAGS (")).contains("$Label"), "{s:?}");
    let r = c
        .cmd("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        .await;
    r.assert_ok();
    let l = &r.untagged[0];
    assert_eq!(
        flags_in(l)
            .into_iter()
            .filter(|f| f != "\\Recent")
            .collect::<BTreeSet<_>>(),
        set(&["\\Seen", "\\Flagged", "$Label"])
    );
    // The same instant, in the zone given or in another (RFC 9051 §2.3.3 keeps the instant).
    assert_eq!(
        internal_date(l),
        internal_date("INTERNALDATE \"14-Jul-2021 02:44:25 -0700\""),
        "{l}"
    );
    assert!(l.contains(&format!("RFC822.SIZE {}", msg.len())), "{l}");
    let body = format!(
        "BODY[] {{{}}}\r\n{}",
        msg.len(),
        String::from_utf8_lossy(&msg)
    );
    assert!(l.contains(&body), "{l}");
    c.finish().await;
}

/// RFC 9051 §6.3.12: APPEND to a missing mailbox is NO [TRYCREATE]; an invalid date is BAD.
#[tokio::test]
async fn append_errors() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let msg = message("x", "a@b.c", "y");
    let r = c.append("Nope", "", &msg).await;
    r.assert_no();
    assert_eq!(r.code(), Some("TRYCREATE"), "{r:?}");
    let r = c
        .append("INBOX", "\"32-Foo-2021 99:00:00 +0000\"", &msg)
        .await;
    r.assert_bad();
    let r = c.append("INBOX", "(\\Bogus)", &msg).await;
    r.assert_bad();
    c.finish().await;
}

/// RFC 7888 §3 LITERAL+: APPEND with a non-synchronising literal, no continuation request.
#[tokio::test]
async fn append_non_synchronising_literal() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let msg = message("plus", "a@b.c", "literal plus");
    let tag = c.tag();
    let mut raw = format!("{tag} APPEND INBOX (\\Draft) {{{}+}}\r\n", msg.len()).into_bytes();
    raw.extend_from_slice(&msg);
    raw.extend_from_slice(b"\r\n");
    c.send_raw(&raw).await;
    let r = c.read_until_tagged(&tag).await;
    r.assert_ok();
    assert!(r.untagged.is_empty(), "no continuation: {r:?}");
    assert!(r.code().unwrap().starts_with("APPENDUID "), "{r:?}");
    c.finish().await;
}

/// RFC 3502 MULTIAPPEND-style list of messages in one APPEND, RFC 4315 APPENDUID with a set.
#[tokio::test]
async fn append_several_messages() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let a = message("one", "a@b.c", "1");
    let b = message("two", "a@b.c", "2");
    let head = format!("APPEND INBOX {{{}}}", a.len());
    let mid = [
        a.as_slice(),
        format!(" (\\Seen) {{{}}}", b.len()).as_bytes(),
    ]
    .concat();
    let r = c.cmd_parts(&[head.as_bytes(), &mid, &b]).await;
    r.assert_ok();
    let code = r.code().unwrap();
    assert!(code.ends_with(" 1:2"), "{code}");
    let r = c.cmd("STATUS INBOX (MESSAGES UNSEEN)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"INBOX\" (MESSAGES 2 UNSEEN 1)");
    c.finish().await;
}

/// RFC 7889 §4 / RFC 9051 §6.3.12: a message over APPENDLIMIT is refused with NO [TOOBIG]
/// before its literal is sent (synchronising) or after it is swallowed (LITERAL+).
#[tokio::test]
async fn append_too_big() {
    let env = Env::with_limits(ImapLimits {
        append_limit: 100,
        ..ImapLimits::default()
    })
    .await;
    let mut c = env.login().await;
    let r = c.cmd("CAPABILITY").await;
    assert!(r.one("CAPABILITY").contains(" APPENDLIMIT=100"), "{r:?}");
    // Synchronising: the tagged NO comes instead of the continuation request.
    let tag = c.tag();
    c.send(&format!("{tag} APPEND INBOX {{500}}")).await;
    let l = c.line().await;
    assert!(l.starts_with(&format!("{tag} NO [TOOBIG]")), "{l}");
    // Non-synchronising: the data is read and dropped, then NO [TOOBIG].
    let tag = c.tag();
    let mut raw = format!("{tag} APPEND INBOX {{500+}}\r\n").into_bytes();
    raw.extend_from_slice(&[b'x'; 500]);
    raw.extend_from_slice(b"\r\n");
    c.send_raw(&raw).await;
    let r = c.read_until_tagged(&tag).await;
    r.assert_no();
    assert_eq!(r.code(), Some("TOOBIG"), "{r:?}");
    // The session is in sync afterwards.
    c.cmd("NOOP").await.assert_ok();
    let r = c.cmd("STATUS INBOX (MESSAGES)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"INBOX\" (MESSAGES 0)");
    c.finish().await;
}

/// RFC 9051 §6.3.12: appending to the selected mailbox announces the new message (EXISTS)
/// no later than the tagged response.
#[tokio::test]
async fn append_to_selected_mailbox_reports_exists() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    c.select("INBOX").await;
    let r = c.append("INBOX", "", &message("new", "a@b.c", "x")).await;
    r.assert_ok();
    r.one("2 EXISTS");
    c.finish().await;
}

// ----- selected: FETCH ---------------------------------------------------------------------

/// The ENVELOPE every `message()` from Alice with subject "m1" has (RFC 9051 §7.5.2).
const ENVELOPE_M1: &str = "ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800\" \"m1\" \
    ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) \
    ((\"Alice\" NIL \"alice\" \"example.org\")) ((NIL NIL \"bob\" \"example.net\")) \
    NIL NIL NIL \"<m1@example.org>\")";

/// RFC 9051 §6.4.5 FETCH: FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE (§7.5.2, From
/// doubling as Sender and Reply-To), BODY and BODYSTRUCTURE of a plain text message.
#[tokio::test]
async fn fetch_metadata_envelope_bodystructure() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    c.select("INBOX").await;
    let r = c
        .cmd("FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
        .await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    let l = &r.untagged[0];
    assert!(l.starts_with("* 1 FETCH (UID 1 FLAGS ("), "{l}");
    let size = message("m1", "Alice <alice@example.org>", "body 1").len();
    assert!(l.contains(&format!(" RFC822.SIZE {size} ")), "{l}");
    assert!(l.contains(ENVELOPE_M1), "{l}\n{ENVELOPE_M1}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (internal_date(l) - now).abs() < 600,
        "internal date is the append time: {l}"
    );
    let r = c.cmd("FETCH 1 (BODY BODYSTRUCTURE)").await;
    r.assert_ok();
    let l = r.untagged[0].to_ascii_uppercase();
    // "body 1\r\n": 8 octets, 1 line; no Content-Type: text/plain; charset=us-ascii (RFC 2045
    // §5.2), 7BIT; extension data md5, disposition, language, location all NIL.
    assert!(
        l.contains("BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 8 1)"),
        "{l}"
    );
    assert!(
        l.contains(
            "BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 8 1 NIL NIL NIL NIL)"
        ),
        "{l}"
    );
    // FETCH macros (RFC 9051 §6.4.5): FAST = (FLAGS INTERNALDATE RFC822.SIZE).
    let r = c.cmd("FETCH 1 FAST").await;
    let l = &r.untagged[0];
    assert!(
        l.contains("FLAGS (") && l.contains("INTERNALDATE \"") && l.contains("RFC822.SIZE "),
        "{l}"
    );
    assert!(!l.contains("ENVELOPE"), "{l}");
    let r = c.cmd("FETCH 1 ALL").await;
    assert!(r.untagged[0].contains(ENVELOPE_M1), "{r:?}");
    c.finish().await;
}

/// RFC 9051 §6.4.5 BODY[] and BODY.PEEK[]: the whole message as a literal; partial fetch
/// `<0.10>` answers `BODY[]<0>`; HEADER.FIELDS and HEADER.FIELDS.NOT include the blank line.
#[tokio::test]
async fn fetch_body_sections() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    c.select("INBOX").await;
    let msg = String::from_utf8(message("m1", "Alice <alice@example.org>", "body 1")).unwrap();
    let r = c.cmd("FETCH 1 BODY.PEEK[]").await;
    r.assert_ok();
    assert_eq!(
        r.untagged,
        [format!("* 1 FETCH (BODY[] {{{}}}\r\n{msg})", msg.len())]
    );
    let r = c.cmd("FETCH 1 BODY.PEEK[]<0.10>").await;
    assert_eq!(
        r.untagged,
        [format!("* 1 FETCH (BODY[]<0> {{10}}\r\n{})", &msg[..10])]
    );
    let r = c.cmd("FETCH 1 BODY.PEEK[]<6.5>").await;
    assert_eq!(r.untagged, ["* 1 FETCH (BODY[]<6> {5}\r\nAlice)"]);
    // A partial range beyond the end is empty (RFC 9051 §6.4.5).
    let r = c.cmd("FETCH 1 BODY.PEEK[]<100000.5>").await;
    r.assert_ok();
    assert!(
        r.untagged[0] == "* 1 FETCH (BODY[]<100000> \"\")"
            || r.untagged[0] == "* 1 FETCH (BODY[]<100000> {0}\r\n)",
        "{r:?}"
    );
    let r = c
        .cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject From)]")
        .await;
    r.assert_ok();
    let want = "From: Alice <alice@example.org>\r\nSubject: m1\r\n\r\n";
    let l = &r.untagged[0];
    assert!(
        l.to_ascii_uppercase()
            .starts_with("* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] "),
        "{l}"
    );
    assert!(
        l.ends_with(&format!(" {{{}}}\r\n{want})", want.len())),
        "{l:?}"
    );
    let r = c
        .cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (Subject From To Date)]")
        .await;
    let want = "Message-ID: <m1@example.org>\r\n\r\n";
    assert!(
        r.untagged[0].ends_with(&format!(" {{{}}}\r\n{want})", want.len())),
        "{r:?}"
    );
    let r = c.cmd("FETCH 1 (BODY.PEEK[TEXT] RFC822.HEADER)").await;
    let l = &r.untagged[0];
    assert!(l.contains("BODY[TEXT] {8}\r\nbody 1\r\n"), "{l:?}");
    let header = &msg[..msg.find("\r\n\r\n").unwrap() + 4];
    assert!(
        l.contains(&format!("RFC822.HEADER {{{}}}\r\n{header}", header.len())),
        "{l:?}"
    );
    // Nothing of this set \Seen.
    let r = c.cmd("FETCH 1 FLAGS").await;
    assert!(!flags_in(&r.untagged[0]).contains("\\Seen"), "{r:?}");
    c.finish().await;
}

/// RFC 9051 §6.4.5: BODY[section] (not PEEK) and RFC822.TEXT set \Seen, and the changed
/// FLAGS are included in the FETCH response.
#[tokio::test]
async fn fetch_sets_seen_implicitly() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1 BODY[TEXT]").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    assert!(flags_in(&r.untagged[0]).contains("\\Seen"), "{r:?}");
    let r = c.cmd("FETCH 2 RFC822.TEXT").await;
    assert!(flags_in(&r.untagged[0]).contains("\\Seen"), "{r:?}");
    // Already seen: FLAGS is not repeated unasked.
    let r = c.cmd("FETCH 1 BODY[TEXT]").await;
    assert_eq!(r.untagged, ["* 1 FETCH (BODY[TEXT] {8}\r\nbody 1\r\n)"]);
    let r = c.cmd("STATUS INBOX (UNSEEN)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"INBOX\" (UNSEEN 0)");
    c.finish().await;
}

/// RFC 9051 §6.4.5 / RFC 2045 / RFC 3516: sections of a multipart message, MIME headers,
/// BODYSTRUCTURE of the parts and BINARY (decoded, literal8 `~{n}` for NULs).
#[tokio::test]
async fn fetch_multipart() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let msg = b"From: a@b.c\r\nSubject: mp\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--XX\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\n\r\nAAEC\r\n--XX--\r\n";
    c.append("INBOX", "", msg).await.assert_ok();
    c.select("INBOX").await;
    let r = c
        .cmd("FETCH 1 (BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[2.MIME])")
        .await;
    r.assert_ok();
    let l = &r.untagged[0];
    assert!(l.contains("BODY[1] {5}\r\nhello"), "{l:?}");
    assert!(l.contains("BODY[2] {4}\r\nAAEC"), "{l:?}");
    let mime = "Content-Type: application/octet-stream; name=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\n\r\n";
    assert!(
        l.contains(&format!("BODY[2.MIME] {{{}}}\r\n{mime}", mime.len())),
        "{l:?}"
    );
    let r = c.cmd("FETCH 1 BODYSTRUCTURE").await;
    let l = r.untagged[0].to_ascii_uppercase();
    assert!(
        l.contains("(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"A.BIN\") NIL NIL \"BASE64\" 4 NIL (\"ATTACHMENT\" (\"FILENAME\" \"A.BIN\")) NIL NIL)"),
        "{l}"
    );
    assert!(
        l.contains(" \"MIXED\" (\"BOUNDARY\" \"XX\") NIL NIL NIL)"),
        "{l}"
    );
    assert!(
        l.starts_with("* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"7BIT\" 5 "),
        "{l}"
    );
    let r = c.cmd("FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])").await;
    r.assert_ok();
    let l = &r.untagged[0];
    assert!(l.contains("BINARY[2] ~{3}\r\n\0\u{1}\u{2}"), "{l:?}");
    assert!(l.contains("BINARY.SIZE[2] 3"), "{l:?}");
    c.finish().await;
}

/// RFC 9051 §6.4.9 UID FETCH: every response carries UID; a range with no messages is OK
/// and empty; `n:*` includes the last message even when n is larger than its UID.
#[tokio::test]
async fn uid_fetch() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 3).await;
    c.select("INBOX").await;
    let r = c.cmd("UID FETCH 2:3 FLAGS").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 2, "{r:?}");
    assert!(
        r.untagged[0].starts_with("* 2 FETCH (UID 2 FLAGS ("),
        "{r:?}"
    );
    let r = c.cmd("UID FETCH 50:60 FLAGS").await;
    r.assert_ok();
    assert!(r.untagged.is_empty(), "{r:?}");
    let r = c.cmd("UID FETCH 50:* UID").await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* 3 FETCH (UID 3)"]);
    c.finish().await;
}

// ----- selected: STORE ---------------------------------------------------------------------

fn without_recent(line: &str) -> BTreeSet<String> {
    flags_in(line)
        .into_iter()
        .filter(|f| f != "\\Recent")
        .collect()
}

/// RFC 9051 §6.4.6 STORE: FLAGS replaces, +FLAGS adds, -FLAGS removes, each answered with
/// the new flags; .SILENT answers nothing; UID STORE includes UID (§6.4.9).
#[tokio::test]
async fn store_flags() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.select("INBOX").await;
    let r = c.cmd("STORE 1 +FLAGS (\\Flagged \\Seen)").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    assert!(r.untagged[0].starts_with("* 1 FETCH (FLAGS ("), "{r:?}");
    assert_eq!(
        without_recent(&r.untagged[0]),
        set(&["\\Flagged", "\\Seen"])
    );
    let r = c.cmd("STORE 1 -FLAGS (\\Flagged)").await;
    assert_eq!(without_recent(&r.untagged[0]), set(&["\\Seen"]));
    let r = c.cmd("STORE 1 FLAGS (\\Answered)").await;
    assert_eq!(without_recent(&r.untagged[0]), set(&["\\Answered"]));
    let r = c.cmd("STORE 1:2 +FLAGS.SILENT (\\Draft)").await;
    r.assert_ok();
    assert!(r.untagged.is_empty(), "{r:?}");
    let r = c.cmd("FETCH 1:2 FLAGS").await;
    assert_eq!(
        without_recent(&r.untagged[0]),
        set(&["\\Answered", "\\Draft"])
    );
    assert_eq!(without_recent(&r.untagged[1]), set(&["\\Draft"]));
    let r = c.cmd("UID STORE 2 +FLAGS (\\Seen)").await;
    assert!(r.untagged[0].starts_with("* 2 FETCH ("), "{r:?}");
    assert!(r.untagged[0].contains("UID 2"), "{r:?}");
    // Flags without parentheses are allowed too.
    c.cmd("STORE 2 -FLAGS \\Seen \\Draft").await.assert_ok();
    let r = c.cmd("FETCH 2 FLAGS").await;
    assert!(without_recent(&r.untagged[0]).is_empty(), "{r:?}");
    c.finish().await;
}

/// RFC 9051 §7.3.5 / RFC 3501 §7.2.6: a new keyword is announced with FLAGS (and
/// PERMANENTFLAGS) before a FETCH shows it.
#[tokio::test]
async fn store_new_keyword_announces_flags() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    c.select("INBOX").await;
    let r = c.cmd("STORE 1 +FLAGS ($Work)").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 3, "{r:?}");
    assert!(flags_in(&r.untagged[0]).contains("$Work"), "{r:?}");
    assert!(r.untagged[0].starts_with("* FLAGS ("), "{r:?}");
    assert!(
        r.untagged[1].starts_with("* OK [PERMANENTFLAGS (") && r.untagged[1].contains("$Work"),
        "{r:?}"
    );
    assert!(r.untagged[2].starts_with("* 1 FETCH (FLAGS ("), "{r:?}");
    assert!(flags_in(&r.untagged[2]).contains("$Work"), "{r:?}");
    c.finish().await;
}

/// RFC 9051 §6.4.6: an invalid flag or a sequence number beyond EXISTS is BAD.
#[tokio::test]
async fn store_errors() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    c.select("INBOX").await;
    c.cmd("STORE 1 +FLAGS (\\Bogus)").await.assert_bad();
    c.cmd("STORE 5 +FLAGS (\\Seen)").await.assert_bad();
    c.cmd("STORE 1 PLUSFLAGS (\\Seen)").await.assert_bad();
    c.finish().await;
}

/// RFC 7162 §3.1.3 STORE UNCHANGEDSINCE: applied when the modseq is not above the value
/// (with MODSEQ in the answer), refused per message with OK [MODIFIED set] otherwise.
#[tokio::test]
async fn store_unchangedsince() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.cmd("ENABLE CONDSTORE").await.assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1:2 MODSEQ").await;
    let m1 = number_after(&r.untagged[0], "MODSEQ (");
    let m2 = number_after(&r.untagged[1], "MODSEQ (");
    // Message 1 changes: its modseq grows past m1.
    c.cmd("STORE 1 +FLAGS.SILENT (\\Seen)").await.assert_ok();
    let r = c
        .cmd(&format!(
            "STORE 1:2 (UNCHANGEDSINCE {}) +FLAGS (\\Flagged)",
            m1.max(m2)
        ))
        .await;
    r.assert_ok();
    assert_eq!(r.code(), Some("MODIFIED 1"), "{r:?}");
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    let l = &r.untagged[0];
    assert!(l.starts_with("* 2 FETCH ("), "{l}");
    assert!(without_recent(l).contains("\\Flagged"), "{l}");
    assert!(number_after(l, "MODSEQ (") > m2, "{l}");
    // UNCHANGEDSINCE 0 always fails (RFC 7162 §3.1.3).
    let r = c
        .cmd("UID STORE 2 (UNCHANGEDSINCE 0) +FLAGS (\\Answered)")
        .await;
    r.assert_ok();
    assert_eq!(r.code(), Some("MODIFIED 2"), "{r:?}");
    c.finish().await;
}

// ----- selected: COPY, MOVE, EXPUNGE, CLOSE --------------------------------------------------

/// RFC 9051 §6.4.7 COPY with RFC 4315 §3 COPYUID; NO [TRYCREATE] for a missing mailbox.
#[tokio::test]
async fn copy() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 3).await;
    c.cmd("CREATE Dest").await.assert_ok();
    let st = c.cmd("STATUS Dest (UIDVALIDITY)").await;
    let uv = number_after(st.one("STATUS "), "UIDVALIDITY");
    c.select("INBOX").await;
    c.cmd("STORE 2 +FLAGS.SILENT (\\Flagged)").await.assert_ok();
    let r = c.cmd("COPY 2:3 Dest").await;
    r.assert_ok();
    assert_eq!(r.code(), Some(format!("COPYUID {uv} 2:3 1:2").as_str()));
    let r = c.cmd("UID COPY 1 Dest").await;
    assert_eq!(r.code(), Some(format!("COPYUID {uv} 1 3").as_str()));
    let r = c.cmd("COPY 1 Nope").await;
    r.assert_no();
    assert_eq!(r.code(), Some("TRYCREATE"), "{r:?}");
    c.cmd("COPY 9 Dest").await.assert_bad();
    // Flags travel with the copy; the source is unchanged.
    let r = c.cmd("STATUS INBOX (MESSAGES)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"INBOX\" (MESSAGES 3)");
    c.select("Dest").await;
    let r = c.cmd("UID FETCH 1 FLAGS").await;
    assert!(
        without_recent(&r.untagged[0]).contains("\\Flagged"),
        "{r:?}"
    );
    c.finish().await;
}

/// RFC 6851 §3.3/§4.3 MOVE: an untagged OK [COPYUID] before the EXPUNGE responses, then the
/// tagged OK; with QRESYNC (RFC 7162 §3.2.10) VANISHED instead of EXPUNGE.
#[tokio::test]
async fn move_messages() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 4).await;
    c.cmd("CREATE Dest").await.assert_ok();
    let st = c.cmd("STATUS Dest (UIDVALIDITY)").await;
    let uv = number_after(st.one("STATUS "), "UIDVALIDITY");
    c.select("INBOX").await;
    let r = c.cmd("MOVE 2 Dest").await;
    r.assert_ok();
    assert_eq!(
        r.untagged,
        [
            format!("* OK [COPYUID {uv} 2 1] Moved"),
            "* 2 EXPUNGE".to_string()
        ]
    );
    let r = c.cmd("UID MOVE 3:4 Dest").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 3, "{r:?}");
    assert_eq!(r.untagged[0], format!("* OK [COPYUID {uv} 3:4 2:3] Moved"));
    assert_eq!(&r.untagged[1..], ["* 2 EXPUNGE", "* 2 EXPUNGE"]);
    let r = c.cmd("MOVE 1 Nope").await;
    r.assert_no();
    assert_eq!(r.code(), Some("TRYCREATE"), "{r:?}");
    c.cmd("ENABLE QRESYNC").await.assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("MOVE 1 Dest").await;
    r.assert_ok();
    assert_eq!(
        r.untagged,
        [
            format!("* OK [COPYUID {uv} 1 4] Moved"),
            "* VANISHED 1".to_string()
        ]
    );
    let r = c.cmd("STATUS Dest (MESSAGES)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"Dest\" (MESSAGES 4)");
    c.finish().await;
}

/// RFC 9051 §6.4.3 EXPUNGE: one EXPUNGE response per removed message, each numbered after
/// the previous ones are gone; RFC 4315 §2.1 UID EXPUNGE removes only the given UIDs.
#[tokio::test]
async fn expunge_and_uid_expunge() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 5).await;
    c.select("INBOX").await;
    c.cmd("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
        .await
        .assert_ok();
    let r = c.cmd("EXPUNGE").await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* 1 EXPUNGE", "* 2 EXPUNGE"]);
    let r = c.cmd("FETCH 1:* UID").await;
    assert_eq!(
        r.untagged,
        [
            "* 1 FETCH (UID 2)",
            "* 2 FETCH (UID 4)",
            "* 3 FETCH (UID 5)"
        ]
    );
    c.cmd("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        .await
        .assert_ok();
    let r = c.cmd("UID EXPUNGE 4:5").await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* 2 EXPUNGE", "* 2 EXPUNGE"]);
    let r = c.cmd("FETCH 1:* UID").await;
    assert_eq!(r.untagged, ["* 1 FETCH (UID 2)"]);
    let r = c.cmd("STATUS INBOX (MESSAGES)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"INBOX\" (MESSAGES 1)");
    c.finish().await;
}

/// RFC 9051 §6.4.2 CLOSE expunges silently and leaves the selected state; RFC 3691 UNSELECT
/// does not expunge; CLOSE after EXAMINE does not expunge.
#[tokio::test]
async fn close_and_unselect() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 3).await;
    c.select("INBOX").await;
    c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await.assert_ok();
    let r = c.cmd("UNSELECT").await;
    r.assert_ok();
    assert!(r.untagged.is_empty(), "{r:?}");
    c.cmd("FETCH 1 FLAGS").await.assert_bad();
    let r = c.cmd("STATUS INBOX (MESSAGES)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"INBOX\" (MESSAGES 3)");
    c.cmd("EXAMINE INBOX").await.assert_ok();
    c.cmd("CLOSE").await.assert_ok();
    let r = c.cmd("STATUS INBOX (MESSAGES)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"INBOX\" (MESSAGES 3)");
    c.select("INBOX").await;
    let r = c.cmd("CLOSE").await;
    r.assert_ok();
    assert!(r.untagged.is_empty(), "CLOSE sends no EXPUNGE: {r:?}");
    let r = c.cmd("STATUS INBOX (MESSAGES)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"INBOX\" (MESSAGES 2)");
    c.cmd("CLOSE").await.assert_bad();
    c.cmd("UNSELECT").await.assert_bad();
    c.finish().await;
}

// ----- selected: SEARCH, SORT, THREAD ------------------------------------------------------

/// Four messages: m1 (Alice), m2 (Carol, \Seen), m3 (Alice, \Flagged), m4 (Carol).
async fn search_fixture(env: &Env) -> Client {
    let mut c = env.login().await;
    fill_inbox(&mut c, 4).await;
    c.select("INBOX").await;
    c.cmd("STORE 2 +FLAGS.SILENT (\\Seen)").await.assert_ok();
    c.cmd("STORE 3 +FLAGS.SILENT (\\Flagged)").await.assert_ok();
    c
}

/// RFC 9051 §6.4.4 SEARCH (IMAP4rev1 `* SEARCH` response, RFC 3501 §7.2.5) with flag,
/// header, text, size, sequence-set and boolean keys; UID SEARCH answers UIDs (§6.4.9).
#[tokio::test]
async fn search_keys() {
    let env = Env::new().await;
    let mut c = search_fixture(&env).await;
    for (query, want) in [
        ("ALL", "* SEARCH 1 2 3 4"),
        ("UNSEEN", "* SEARCH 1 3 4"),
        ("SEEN", "* SEARCH 2"),
        ("FLAGGED NOT SEEN", "* SEARCH 3"),
        ("OR SEEN FLAGGED", "* SEARCH 2 3"),
        ("FROM carol", "* SEARCH 2 4"),
        ("FROM \"alice@example.org\"", "* SEARCH 1 3"),
        ("SUBJECT m3", "* SEARCH 3"),
        ("TO bob", "* SEARCH 1 2 3 4"),
        ("HEADER Message-ID \"<m2@example.org>\"", "* SEARCH 2"),
        ("BODY \"body 4\"", "* SEARCH 4"),
        ("TEXT \"body 1\"", "* SEARCH 1"),
        ("2:3", "* SEARCH 2 3"),
        ("2:* UNSEEN", "* SEARCH 3 4"),
        ("LARGER 1 SMALLER 100000", "* SEARCH 1 2 3 4"),
        (
            "SENTBEFORE 8-Feb-1994 SENTSINCE 7-Feb-1994",
            "* SEARCH 1 2 3 4",
        ),
        ("SENTON 6-Feb-1994", "* SEARCH"),
        ("KEYWORD $Nope", "* SEARCH"),
        ("UNKEYWORD $Nope", "* SEARCH 1 2 3 4"),
        ("CHARSET UTF-8 SUBJECT m1", "* SEARCH 1"),
        ("(SEEN) OR FLAGGED DELETED", "* SEARCH"),
    ] {
        let r = c.cmd(&format!("SEARCH {query}")).await;
        r.assert_ok();
        assert_eq!(r.untagged, [want], "SEARCH {query}");
    }
    let r = c.cmd("UID SEARCH UID 2:3").await;
    assert_eq!(r.untagged, ["* SEARCH 2 3"]);
    c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await.assert_ok();
    c.cmd("EXPUNGE").await.assert_ok();
    let r = c.cmd("UID SEARCH UNSEEN").await;
    assert_eq!(r.untagged, ["* SEARCH 3 4"]);
    let r = c.cmd("SEARCH UNSEEN").await;
    assert_eq!(r.untagged, ["* SEARCH 2 3"]);
    c.cmd("SEARCH BOGUSKEY").await.assert_bad();
    c.finish().await;
}

/// RFC 9051 §6.4.4 and RFC 5256 §3: an unsupported CHARSET is a tagged NO (not BAD) with
/// BADCHARSET, for SEARCH, SORT and THREAD.
#[tokio::test]
async fn search_unknown_charset_is_no() {
    let env = Env::new().await;
    let mut c = search_fixture(&env).await;
    let r = c.cmd("SEARCH CHARSET KOI8-R ALL").await;
    r.assert_no();
    assert!(
        r.code().is_some_and(|c| c.starts_with("BADCHARSET")),
        "{r:?}"
    );
    for cmd in ["SORT (SUBJECT) KOI8-R ALL", "THREAD REFERENCES KOI8-R ALL"] {
        let r = c.cmd(cmd).await;
        r.assert_no();
        assert!(
            r.code().is_some_and(|c| c.starts_with("BADCHARSET")),
            "{cmd}: {r:?}"
        );
    }
    c.finish().await;
}

/// RFC 4731 §3.1 ESEARCH: SEARCH RETURN (MIN MAX ALL COUNT), items omitted when nothing
/// matches, `RETURN ()` meaning ALL, UID in the UID variant; RFC 9051 §6.4.4 IMAP4rev2 answers
/// ESEARCH always.
#[tokio::test]
async fn search_esearch() {
    let env = Env::new().await;
    let mut c = search_fixture(&env).await;
    let tag = "s1";
    c.send(&format!("{tag} SEARCH RETURN (MIN MAX ALL COUNT) UNSEEN"))
        .await;
    let r = c.read_until_tagged(tag).await;
    r.assert_ok();
    assert_eq!(
        r.untagged,
        ["* ESEARCH (TAG \"s1\") MIN 1 MAX 4 ALL 1,3:4 COUNT 3"]
    );
    c.send("s2 UID SEARCH RETURN (COUNT) ALL").await;
    let r = c.read_until_tagged("s2").await;
    assert_eq!(r.untagged, ["* ESEARCH (TAG \"s2\") UID COUNT 4"]);
    c.send("s3 SEARCH RETURN () FLAGGED").await;
    let r = c.read_until_tagged("s3").await;
    assert_eq!(r.untagged, ["* ESEARCH (TAG \"s3\") ALL 3"]);
    c.send("s4 SEARCH RETURN (MIN MAX ALL) KEYWORD $Nope").await;
    let r = c.read_until_tagged("s4").await;
    assert_eq!(r.untagged, ["* ESEARCH (TAG \"s4\")"]);
    c.send("s5 SEARCH RETURN (COUNT) KEYWORD $Nope").await;
    let r = c.read_until_tagged("s5").await;
    assert_eq!(r.untagged, ["* ESEARCH (TAG \"s5\") COUNT 0"]);
    c.cmd("ENABLE IMAP4rev2").await.assert_ok();
    c.send("s6 SEARCH SEEN").await;
    let r = c.read_until_tagged("s6").await;
    assert_eq!(r.untagged, ["* ESEARCH (TAG \"s6\") ALL 2"]);
    c.finish().await;
}

/// RFC 5256 §3 SORT: by subject, reverse subject, from (the mailbox local part), arrival,
/// with a search key; UID SORT answers UIDs.
#[tokio::test]
async fn sort() {
    let env = Env::new().await;
    let mut c = search_fixture(&env).await;
    for (query, want) in [
        ("(SUBJECT) UTF-8 ALL", "* SORT 1 2 3 4"),
        ("(REVERSE SUBJECT) UTF-8 ALL", "* SORT 4 3 2 1"),
        ("(FROM) UTF-8 ALL", "* SORT 1 3 2 4"),
        ("(REVERSE FROM SUBJECT) UTF-8 ALL", "* SORT 2 4 1 3"),
        ("(ARRIVAL) US-ASCII UNSEEN", "* SORT 1 3 4"),
        ("(SUBJECT) UTF-8 KEYWORD $Nope", "* SORT"),
    ] {
        let r = c.cmd(&format!("SORT {query}")).await;
        r.assert_ok();
        assert_eq!(r.untagged, [want], "SORT {query}");
    }
    c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await.assert_ok();
    c.cmd("EXPUNGE").await.assert_ok();
    let r = c.cmd("UID SORT (REVERSE SUBJECT) UTF-8 ALL").await;
    assert_eq!(r.untagged, ["* SORT 4 3 2"]);
    // Equal keys keep sequence order, REVERSE or not (RFC 5256 §3): all arrived this second.
    let r = c.cmd("SORT (REVERSE ARRIVAL) UTF-8 ALL").await;
    assert_eq!(r.untagged, ["* SORT 1 2 3"]);
    c.cmd("SORT (BOGUS) UTF-8 ALL").await.assert_bad();
    // ARRIVAL is the internal date, DATE the Date header (RFC 5256 §3).
    c.cmd("CREATE Dated").await.assert_ok();
    for (day, date) in [(3, 1), (1, 3), (2, 2)] {
        let m = threaded(
            &format!("d{day}"),
            &format!("{day}@x"),
            None,
            &format!("Mon, {date} Jan 2024 10:00:00 +0000"),
        );
        c.append("Dated", &format!("\"0{day}-Feb-2024 10:00:00 +0000\""), &m)
            .await
            .assert_ok();
    }
    c.select("Dated").await;
    for (query, want) in [
        ("(ARRIVAL) UTF-8 ALL", "* SORT 2 3 1"),
        ("(REVERSE ARRIVAL) UTF-8 ALL", "* SORT 1 3 2"),
        ("(DATE) UTF-8 ALL", "* SORT 1 3 2"),
        ("(REVERSE DATE) UTF-8 ALL", "* SORT 2 3 1"),
    ] {
        let r = c.cmd(&format!("SORT {query}")).await;
        assert_eq!(r.untagged, [want], "SORT {query}");
    }
    c.finish().await;
}

fn threaded(subject: &str, id: &str, parent: Option<&str>, date: &str) -> Vec<u8> {
    let refs = parent
        .map(|p| format!("In-Reply-To: <{p}>\r\nReferences: <{p}>\r\n"))
        .unwrap_or_default();
    format!(
        "From: a@example.org\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}>\r\n{refs}\r\nx\r\n"
    )
    .into_bytes()
}

/// RFC 5256 §4 THREAD=ORDEREDSUBJECT and THREAD=REFERENCES.
#[tokio::test]
async fn thread() {
    let env = Env::new().await;
    let mut c = env.login().await;
    for m in [
        threaded("topic", "a@x", None, "Mon, 1 Jan 2024 10:00:00 +0000"),
        threaded("other", "b@x", None, "Mon, 1 Jan 2024 11:00:00 +0000"),
        threaded(
            "Re: topic",
            "c@x",
            Some("a@x"),
            "Mon, 1 Jan 2024 12:00:00 +0000",
        ),
        threaded(
            "Re: topic",
            "d@x",
            Some("c@x"),
            "Mon, 1 Jan 2024 13:00:00 +0000",
        ),
    ] {
        c.append("INBOX", "", &m).await.assert_ok();
    }
    c.select("INBOX").await;
    let r = c.cmd("THREAD ORDEREDSUBJECT UTF-8 ALL").await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* THREAD (1 (3)(4))(2)"]);
    let r = c.cmd("THREAD REFERENCES UTF-8 ALL").await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* THREAD (1 3 4)(2)"]);
    let r = c.cmd("UID THREAD REFERENCES UTF-8 NOT 2").await;
    assert_eq!(r.untagged, ["* THREAD (1 3 4)"]);
    let r = c.cmd("THREAD REFERENCES UTF-8 KEYWORD $Nope").await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* THREAD"]);
    c.cmd("THREAD BOGUS UTF-8 ALL").await.assert_bad();
    c.finish().await;
}

// ----- updates from other sessions, IDLE ---------------------------------------------------

/// RFC 2177 IDLE: a continuation request, untagged EXISTS / FETCH / EXPUNGE as another
/// session appends, flags and expunges, and the tagged OK after DONE.
#[tokio::test]
async fn idle_reports_other_sessions_changes() {
    let env = Env::new().await;
    let mut a = env.login().await;
    let mut b = env.login().await;
    a.select("INBOX").await;
    a.send("i1 IDLE").await;
    let cont = a.line().await;
    assert!(cont.starts_with("+ "), "{cont}");
    b.append("INBOX", "", &message("new", "a@b.c", "x"))
        .await
        .assert_ok();
    let l = a.line().await;
    assert_eq!(l, "* 1 EXISTS");
    let l = a.line().await;
    assert_eq!(l, "* 1 RECENT"); // IMAP4rev1 session
    b.select("INBOX").await;
    b.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)").await.assert_ok();
    let l = a.line().await;
    assert!(
        l.starts_with("* 1 FETCH (") && l.contains("\\Flagged"),
        "{l}"
    );
    b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await.assert_ok();
    let l = a.line().await;
    assert!(l.contains("\\Deleted"), "{l}");
    b.cmd("EXPUNGE").await.assert_ok();
    assert_eq!(a.line().await, "* 1 EXPUNGE");
    a.send("DONE").await;
    let r = a.read_until_tagged("i1").await;
    r.assert_ok();
    assert!(r.untagged.is_empty(), "{r:?}");
    a.cmd("NOOP").await.assert_ok();
    b.finish().await;
    a.finish().await;
}

/// RFC 2177: IDLE in the authenticated state is allowed; anything but DONE ends it with BAD.
#[tokio::test]
async fn idle_without_selection_and_bad_termination() {
    let env = Env::new().await;
    let mut a = env.login().await;
    a.send("i1 IDLE").await;
    assert!(a.line().await.starts_with("+ "));
    a.send("DONE").await;
    a.read_until_tagged("i1").await.assert_ok();
    a.send("i2 IDLE").await;
    assert!(a.line().await.starts_with("+ "));
    a.send("i3 NOOP").await;
    a.read_until_tagged("i2").await.assert_bad();
    a.cmd("NOOP").await.assert_ok();
    a.finish().await;
}

/// RFC 9051 §5.2 / §7.4.1: NOOP reports other sessions' changes; RFC 9051 §7.5.1: no
/// EXPUNGE is sent during FETCH, STORE or SEARCH, the next NOOP sends it.
#[tokio::test]
async fn noop_reports_and_fetch_defers_expunge() {
    let env = Env::new().await;
    let mut a = env.login().await;
    let mut b = env.login().await;
    fill_inbox(&mut a, 2).await;
    a.select("INBOX").await;
    b.select("INBOX").await;
    b.cmd("STORE 2 +FLAGS.SILENT (\\Answered)")
        .await
        .assert_ok();
    let r = a.cmd("NOOP").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    assert!(r.untagged[0].starts_with("* 2 FETCH (") && r.untagged[0].contains("\\Answered"));
    b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await.assert_ok();
    b.cmd("EXPUNGE").await.assert_ok();
    b.append("INBOX", "", &message("m3", "a@b.c", "x"))
        .await
        .assert_ok();
    let r = a.cmd("FETCH 1 UID").await;
    r.assert_ok();
    assert!(
        r.untagged.iter().all(|l| !l.ends_with("EXPUNGE")),
        "no EXPUNGE during FETCH: {r:?}"
    );
    assert!(
        r.untagged.contains(&"* 1 FETCH (UID 1)".to_string()),
        "{r:?}"
    );
    let r = a.cmd("SEARCH ALL").await;
    assert!(r.untagged.iter().all(|l| !l.ends_with("EXPUNGE")), "{r:?}");
    let r = a.cmd("NOOP").await;
    assert!(r.untagged.contains(&"* 1 EXPUNGE".to_string()), "{r:?}");
    let r = a.cmd("FETCH 1:* UID").await;
    assert_eq!(r.untagged, ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)"]);
    b.finish().await;
    a.finish().await;
}

/// RFC 7162 §3.2.5 SELECT (QRESYNC ...): VANISHED (EARLIER) for expunged UIDs and FETCH
/// with MODSEQ for messages changed since the client's modseq.
#[tokio::test]
async fn select_qresync() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 3).await;
    c.cmd("ENABLE QRESYNC").await.assert_ok();
    let r = c.select("INBOX").await;
    let uv = number_after(r.one("OK [UIDVALIDITY "), "UIDVALIDITY");
    let ms = number_after(r.one("OK [HIGHESTMODSEQ "), "HIGHESTMODSEQ");
    c.cmd("STORE 2 +FLAGS.SILENT (\\Seen)").await.assert_ok();
    c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await.assert_ok();
    c.cmd("EXPUNGE").await.assert_ok();
    c.cmd("UNSELECT").await.assert_ok();
    let r = c.cmd(&format!("SELECT INBOX (QRESYNC ({uv} {ms}))")).await;
    r.assert_ok();
    r.one("VANISHED (EARLIER) 1");
    let f = r.one("1 FETCH (");
    assert!(
        f.contains("UID 2") && f.contains("\\Seen") && f.contains("MODSEQ ("),
        "{f}"
    );
    // A wrong UIDVALIDITY: a plain SELECT.
    let r = c
        .cmd(&format!("SELECT INBOX (QRESYNC ({} {ms}))", uv + 1))
        .await;
    r.assert_ok();
    assert!(
        r.lines("VANISHED").is_empty() && r.lines("1 FETCH").is_empty(),
        "{r:?}"
    );
    c.finish().await;
}

// ----- QUOTA -------------------------------------------------------------------------------

/// RFC 9208 §4.1.1 GETQUOTA and §4.1.2 GETQUOTAROOT: the root "" with STORAGE (KiB, §5.1)
/// and MESSAGE usage; an unknown root is NO; SETQUOTA is refused (§4.1.3).
#[tokio::test]
async fn quota() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    let r = c.cmd("GETQUOTAROOT INBOX").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 2, "{r:?}");
    assert_eq!(r.untagged[0], "* QUOTAROOT \"INBOX\" \"\"");
    let q = r.untagged[1].clone();
    assert!(q.starts_with("* QUOTA \"\" (STORAGE 1 "), "{q}");
    assert!(q.contains(" MESSAGE 2 "), "{q}");
    let r = c.cmd("GETQUOTA \"\"").await;
    r.assert_ok();
    assert_eq!(r.untagged, [q]);
    c.cmd("GETQUOTA \"other\"").await.assert_no();
    let r = c.cmd("GETQUOTAROOT Nope").await;
    r.assert_no();
    assert_eq!(r.code(), Some("NONEXISTENT"), "{r:?}");
    c.cmd("SETQUOTA \"\" (STORAGE 10)").await.assert_no();
    c.finish().await;
}

/// RFC 9208 §4.1.1 / §4.2.1: GETQUOTA reports the account's configured storage limit (the
/// one local delivery enforces).
#[tokio::test]
async fn quota_reports_the_account_limit() {
    let env = Env::new().await;
    env.directory.set_quota(USER, Some(2048)).unwrap();
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    let r = c.cmd("GETQUOTA \"\"").await;
    r.assert_ok();
    assert!(
        r.one("QUOTA ").starts_with("QUOTA \"\" (STORAGE 1 2"),
        "{r:?}"
    );
    c.finish().await;
}

/// RFC 9208 §4.3.1 / RFC 5530: an APPEND that would exceed the account's storage limit is
/// NO [OVERQUOTA].
#[tokio::test]
async fn append_over_quota_is_refused() {
    let env = Env::new().await;
    env.directory.set_quota(USER, Some(2048)).unwrap();
    let mut c = env.login().await;
    let big = message("big", "a@b.c", &"x".repeat(4000));
    let r = c.append("INBOX", "", &big).await;
    r.assert_no();
    assert_eq!(r.code(), Some("OVERQUOTA"), "{r:?}");
    c.finish().await;
}

// ----- errors and the command loop ---------------------------------------------------------

/// RFC 9051 §7.1.3 BAD: an unknown command, a malformed one, a missing tag (`* BAD`); the
/// session stays usable.
#[tokio::test]
async fn protocol_errors() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    c.cmd("FROBNICATE").await.assert_bad();
    c.cmd("SELECT").await.assert_bad();
    c.cmd("LOGIN").await.assert_bad();
    c.cmd("SELECT INBOX extra junk").await.assert_bad();
    c.send("").await;
    let l = c.line().await;
    assert!(l.starts_with("* BAD") || l.starts_with("BAD"), "{l}");
    c.select("INBOX").await;
    // Sequence sets: 0, garbage, beyond EXISTS, reversed ranges are fine (RFC 9051 §9).
    c.cmd("FETCH 0 FLAGS").await.assert_bad();
    c.cmd("FETCH x FLAGS").await.assert_bad();
    c.cmd("FETCH 1:x FLAGS").await.assert_bad();
    c.cmd("FETCH 2 FLAGS").await.assert_bad();
    c.cmd("FETCH 1 (FLAGS").await.assert_bad();
    c.cmd("FETCH 1 BOGUS").await.assert_bad();
    let r = c.cmd("FETCH 1:1 FLAGS").await;
    r.assert_ok();
    let r = c.cmd("FETCH *:1 UID").await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* 1 FETCH (UID 1)"]);
    c.cmd("NOOP").await.assert_ok();
    c.finish().await;
}

/// RFC 9051 §6: selected-state commands in the authenticated state are refused.
#[tokio::test]
async fn selected_commands_need_a_mailbox() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    for cmd in [
        "FETCH 1 FLAGS",
        "STORE 1 +FLAGS (\\Seen)",
        "SEARCH ALL",
        "COPY 1 Trash",
        "MOVE 1 Trash",
        "EXPUNGE",
        "UID EXPUNGE 1",
        "CLOSE",
        "UNSELECT",
        "SORT (ARRIVAL) UTF-8 ALL",
        "THREAD REFERENCES UTF-8 ALL",
        "CHECK",
    ] {
        let r = c.cmd(cmd).await;
        r.assert_bad();
        assert!(r.untagged.is_empty(), "{cmd}: {r:?}");
    }
    c.finish().await;
}

/// RFC 9051 §5.5: pipelined commands are answered in order, each with its own tag.
#[tokio::test]
async fn pipelined_commands() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.send_raw(b"p1 SELECT INBOX\r\np2 FETCH 1:2 UID\r\np3 NOOP\r\np4 STATUS Trash (MESSAGES)\r\n")
        .await;
    c.read_until_tagged("p1").await.assert_ok();
    let r = c.read_until_tagged("p2").await;
    assert_eq!(r.untagged, ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 2)"]);
    c.read_until_tagged("p3").await.assert_ok();
    let r = c.read_until_tagged("p4").await;
    assert_eq!(r.untagged, ["* STATUS \"Trash\" (MESSAGES 0)"]);
    c.finish().await;
}

/// RFC 9051 §5.4: an idle client before login is logged out with an untagged BYE.
#[tokio::test]
async fn autologout_before_login() {
    let env = Env::with_limits(ImapLimits {
        login_timeout: Duration::from_millis(300),
        ..ImapLimits::default()
    })
    .await;
    let mut c = env.connect().await;
    let l = c.line().await;
    assert!(l.starts_with("* BYE "), "{l}");
    assert!(c.closed().await);
}

/// RFC 9051 §6.2.3 / RFC 5530: LOGIN stays refused for a while after repeated failures
/// (UNAVAILABLE), even with the right password.
#[tokio::test]
async fn login_throttled_after_failures() {
    let env = Env::with(
        ImapLimits::default(),
        ThrottleConfig {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
            account_limit: 3,
            ..ThrottleConfig::default()
        },
    )
    .await;
    let mut c = env.connect().await;
    let mut blocked = false;
    for _ in 0..12 {
        let r = c.cmd(&format!("LOGIN {USER} wrong")).await;
        r.assert_no();
        if r.code() == Some("UNAVAILABLE") {
            blocked = true;
            break;
        }
        assert_eq!(r.code(), Some("AUTHENTICATIONFAILED"), "{r:?}");
    }
    assert!(blocked, "never throttled");
    let r = c.cmd(&format!("LOGIN {USER} \"{PASS}\"")).await;
    r.assert_no();
    assert_eq!(r.code(), Some("UNAVAILABLE"), "{r:?}");
}

// ----- CONDSTORE / QRESYNC -----------------------------------------------------------------

/// RFC 7162 §3.1: once CONDSTORE is enabled, every untagged FETCH caused by STORE carries
/// both UID and MODSEQ.
#[tokio::test]
async fn condstore_store_responses_carry_uid() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.cmd("ENABLE CONDSTORE").await.assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("STORE 1 +FLAGS (\\Flagged)").await;
    r.assert_ok();
    let l = r.one("1 FETCH (");
    assert!(l.contains("UID 1") && l.contains("MODSEQ ("), "{l}");
    c.finish().await;
}

/// RFC 7162 §3.1: once CONDSTORE is enabled, the untagged FETCH of a FETCH that implicitly
/// sets \Seen carries UID and MODSEQ.
#[tokio::test]
async fn condstore_implicit_seen_carries_uid_and_modseq() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.cmd("ENABLE CONDSTORE").await.assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("FETCH 2 BODY[TEXT]").await;
    r.assert_ok();
    let l = r.one("2 FETCH (");
    assert!(
        l.contains("UID 2") && l.contains("MODSEQ (") && l.contains("\\Seen"),
        "{l}"
    );
    c.finish().await;
}

/// RFC 7162 §3.1: a command that enables CONDSTORE implicitly (FETCH MODSEQ, STORE
/// UNCHANGEDSINCE) reports `OK [HIGHESTMODSEQ n]` the first time only; afterwards the FETCH
/// responses of STORE and of an implicit \Seen carry UID and MODSEQ.
#[tokio::test]
async fn condstore_implicit_enable_reports_highestmodseq_once() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.select("INBOX").await;
    let r = c
        .cmd("STORE 1 (UNCHANGEDSINCE 9223372036854775807) +FLAGS (\\Answered)")
        .await;
    r.assert_ok();
    r.one("OK [HIGHESTMODSEQ ");
    let l = r.one("1 FETCH (");
    assert!(l.contains("UID 1") && l.contains("MODSEQ ("), "{l}");
    let r = c.cmd("FETCH 1 (MODSEQ)").await;
    assert!(
        r.untagged.iter().all(|l| !l.contains("HIGHESTMODSEQ")),
        "{r:?}"
    );
    let r = c.cmd("FETCH 2 (BODY[HEADER.FIELDS (SUBJECT)])").await;
    let l = r.one("2 FETCH (");
    assert!(
        l.contains(" UID 2") && l.contains(" MODSEQ (") && l.contains("\\Seen"),
        "{l}"
    );
    let mut d = env.login().await;
    d.select("INBOX").await;
    let r = d.cmd("FETCH 1 (FLAGS MODSEQ)").await;
    r.assert_ok();
    assert!(r.untagged[0].starts_with("* OK [HIGHESTMODSEQ "), "{r:?}");
    d.finish().await;
    c.finish().await;
}

/// RFC 7162 §3.1: once CONDSTORE is enabled, flag changes by another session arrive with UID
/// and MODSEQ.
#[tokio::test]
async fn condstore_unsolicited_fetch_carries_uid_and_modseq() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.cmd("ENABLE CONDSTORE").await.assert_ok();
    c.select("INBOX").await;
    let mut b = env.login().await;
    b.select("INBOX").await;
    b.cmd("STORE 1 +FLAGS.SILENT (\\Answered)")
        .await
        .assert_ok();
    let r = c.cmd("NOOP").await;
    let l = r.one("1 FETCH (");
    assert!(l.contains("UID 1") && l.contains("MODSEQ ("), "{l}");
    b.finish().await;
    c.finish().await;
}

/// RFC 7162 §3.1.10 STATUS HIGHESTMODSEQ and §3.1.4 FETCH MODSEQ: modseqs grow with each
/// change; FETCH (CHANGEDSINCE) returns only later changes, with MODSEQ (§3.1.4.1).
#[tokio::test]
async fn condstore_modseq_and_changedsince() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 3).await;
    let r = c.cmd("STATUS INBOX (HIGHESTMODSEQ)").await;
    let h0 = number_after(r.one("STATUS "), "HIGHESTMODSEQ");
    let r = c.cmd("SELECT INBOX (CONDSTORE)").await;
    r.assert_ok();
    assert_eq!(
        number_after(r.one("OK [HIGHESTMODSEQ "), "HIGHESTMODSEQ"),
        h0
    );
    c.cmd("STORE 2 +FLAGS.SILENT (\\Answered)")
        .await
        .assert_ok();
    let r = c
        .cmd(
            "FETCH 1:* (FLAGS) (CHANGEDSINCE {h0})"
                .replace("{h0}", &h0.to_string())
                .as_str(),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    let l = &r.untagged[0];
    assert!(l.starts_with("* 2 FETCH ("), "{l}");
    let m2 = number_after(l, "MODSEQ (");
    assert!(m2 > h0, "{l}");
    let r = c.cmd("STATUS INBOX (HIGHESTMODSEQ)").await;
    assert_eq!(number_after(r.one("STATUS "), "HIGHESTMODSEQ"), m2);
    // RFC 7162 §3.1.5 SEARCH MODSEQ (modseq at least the value): the highest modseq of the
    // matches follows the numbers.
    let r = c.cmd(&format!("SEARCH MODSEQ {}", h0 + 1)).await;
    assert_eq!(r.untagged, [format!("* SEARCH 2 (MODSEQ {m2})")]);
    c.finish().await;
}

/// RFC 7162 §3.2.6 UID FETCH (CHANGEDSINCE n VANISHED) reports expunged UIDs as VANISHED
/// (EARLIER); §3.2.10 EXPUNGE answers VANISHED once QRESYNC is enabled.
#[tokio::test]
async fn qresync_vanished() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 4).await;
    c.cmd("ENABLE QRESYNC").await.assert_ok();
    let r = c.select("INBOX").await;
    let h0 = number_after(r.one("OK [HIGHESTMODSEQ "), "HIGHESTMODSEQ");
    c.cmd("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        .await
        .assert_ok();
    let r = c.cmd("EXPUNGE").await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* VANISHED 1:2"]);
    c.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)").await.assert_ok();
    let r = c
        .cmd(&format!(
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h0} VANISHED)"
        ))
        .await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 2, "{r:?}");
    assert_eq!(r.untagged[0], "* VANISHED (EARLIER) 1:2");
    assert!(r.untagged[1].starts_with("* 1 FETCH (UID 3 "), "{r:?}");
    // VANISHED without QRESYNC is a BAD (RFC 7162 §3.2.6).
    let mut d = env.login().await;
    d.select("INBOX").await;
    d.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        .await
        .assert_bad();
    d.finish().await;
    c.finish().await;
}

// ----- mailbox naming and UID rules --------------------------------------------------------

/// RFC 3501 §5.1.3 modified UTF-7 mailbox names for IMAP4rev1 clients; RFC 6855 §3 and
/// RFC 9051 §5.1 UTF-8 names once UTF8=ACCEPT or IMAP4rev2 is enabled.
#[tokio::test]
async fn international_mailbox_names() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.cmd("CREATE \"&AOk-t&AOk-\"").await.assert_ok();
    let r = c.cmd("LIST \"\" \"&AOk-t&AOk-\"").await;
    assert!(r.one("LIST ").ends_with(" \"&AOk-t&AOk-\""), "{r:?}");
    let mut d = env.login().await;
    d.cmd("ENABLE UTF8=ACCEPT").await.assert_ok();
    let r = d.cmd("LIST \"\" \"été\"").await;
    r.assert_ok();
    assert!(r.one("LIST ").ends_with(" \"été\""), "{r:?}");
    d.cmd("SELECT \"été\"").await.assert_ok();
    d.finish().await;
    c.finish().await;
}

/// RFC 9051 §2.3.1.1: UIDs are never reused: not after an expunge of the last message, and a
/// mailbox deleted and created again gets a new UIDVALIDITY (or higher UIDs).
#[tokio::test]
async fn uids_are_not_reused() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.cmd("CREATE Box").await.assert_ok();
    let msg = message("x", "a@b.c", "y");
    c.append("Box", "", &msg).await.assert_ok();
    c.append("Box", "", &msg).await.assert_ok();
    c.select("Box").await;
    c.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)").await.assert_ok();
    c.cmd("CLOSE").await.assert_ok();
    let r = c.cmd("STATUS Box (UIDNEXT UIDVALIDITY)").await;
    let l = r.one("STATUS ");
    assert_eq!(number_after(l, "UIDNEXT"), 3, "{l}");
    let uv = number_after(l, "UIDVALIDITY");
    let r = c.append("Box", "", &msg).await;
    assert!(r.code().unwrap().ends_with(" 3"), "{r:?}");
    c.cmd("DELETE Box").await.assert_ok();
    c.cmd("CREATE Box").await.assert_ok();
    let r = c.append("Box", "", &msg).await;
    let code = r.code().unwrap().to_string();
    let parts: Vec<u64> = code
        .split(' ')
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(
        parts[0] != uv || parts[1] > 3,
        "a new incarnation reuses UIDs: {code}, old UIDVALIDITY {uv}"
    );
    c.finish().await;
}

/// RFC 9051 §6.3.6: after RENAME, a mailbox created under the old name does not reuse the
/// old incarnation's UIDs (new UIDVALIDITY or higher UIDs); the same after RENAME INBOX.
#[tokio::test]
async fn rename_keeps_uids_unique() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    let r = c.cmd("STATUS INBOX (UIDVALIDITY)").await;
    let uv = number_after(r.one("STATUS "), "UIDVALIDITY");
    c.cmd("RENAME INBOX Saved").await.assert_ok();
    let r = c.append("INBOX", "", &message("x", "a@b.c", "y")).await;
    let code = r.code().unwrap().to_string();
    let parts: Vec<u64> = code
        .split(' ')
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(parts[0] != uv || parts[1] > 2, "{code} vs UIDVALIDITY {uv}");
    c.finish().await;
}

/// RFC 9051 §6.3.9 / RFC 3501 §6.3.9: the server does not remove a subscription when the
/// mailbox is deleted; RFC 5258 §3.1 LIST (SUBSCRIBED) shows it \NonExistent.
#[tokio::test]
async fn subscriptions_outlive_their_mailbox() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.cmd("CREATE Gone").await.assert_ok();
    c.cmd("SUBSCRIBE Gone").await.assert_ok();
    c.cmd("DELETE Gone").await.assert_ok();
    let r = c.cmd("LSUB \"\" Gone").await;
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    let r = c.cmd("LIST (SUBSCRIBED) \"\" Gone").await;
    let l = r.one("LIST ");
    assert!(
        l.contains("\\NonExistent") && l.contains("\\Subscribed"),
        "{l}"
    );
    // Subscribing a name that does not exist is allowed (RFC 9051 §6.3.7).
    c.cmd("SUBSCRIBE Never").await.assert_ok();
    c.finish().await;
}

// ----- more selected-state corners ---------------------------------------------------------

/// RFC 9051 §6.4.7 COPY is allowed from a read-only mailbox; RFC 6851 §3.3 MOVE is not (it
/// expunges).
#[tokio::test]
async fn copy_and_move_from_examine() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    c.cmd("EXAMINE INBOX").await.assert_ok();
    c.cmd("COPY 1 Trash").await.assert_ok();
    c.cmd("MOVE 1 Trash").await.assert_no();
    let r = c.cmd("STATUS INBOX (MESSAGES)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"INBOX\" (MESSAGES 1)");
    c.finish().await;
}

/// RFC 2180 §4.1.1: a message another session expunged stays readable until this session is
/// told of the expunge.
#[tokio::test]
async fn fetch_of_a_message_expunged_elsewhere() {
    let env = Env::new().await;
    let mut a = env.login().await;
    let mut b = env.login().await;
    fill_inbox(&mut a, 2).await;
    a.select("INBOX").await;
    b.select("INBOX").await;
    b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await.assert_ok();
    b.cmd("EXPUNGE").await.assert_ok();
    let r = a.cmd("FETCH 1 BODY.PEEK[TEXT]").await;
    r.assert_ok();
    assert!(
        r.untagged
            .contains(&"* 1 FETCH (BODY[TEXT] {8}\r\nbody 1\r\n)".to_string()),
        "{r:?}"
    );
    let r = a.cmd("NOOP").await;
    assert!(r.untagged.contains(&"* 1 EXPUNGE".to_string()), "{r:?}");
    b.finish().await;
    a.finish().await;
}

/// RFC 3501 §6.4.1 CHECK in the selected state is OK.
#[tokio::test]
async fn check() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.select("INBOX").await;
    c.cmd("CHECK").await.assert_ok();
    c.finish().await;
}

/// RFC 9051 §4.3: a synchronising literal inside a SEARCH command.
#[tokio::test]
async fn search_with_literal() {
    let env = Env::new().await;
    let mut c = search_fixture(&env).await;
    let r = c.cmd_parts(&[b"SEARCH SUBJECT {2}", b"m4 UNSEEN"]).await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* SEARCH 4"]);
    c.finish().await;
}

/// The LOGIN SASL mechanism (draft-murchison-sasl-login): "Username:" and "Password:"
/// challenges as continuation requests (RFC 9051 §6.2.2).
#[tokio::test]
async fn authenticate_login_mechanism() {
    let env = Env::new().await;
    let mut c = env.connect().await;
    c.send("a1 AUTHENTICATE LOGIN").await;
    let l = c.line().await;
    assert!(l.starts_with("+ "), "{l}");
    c.send(&B64.encode(USER)).await;
    let l = c.line().await;
    assert!(l.starts_with("+ "), "{l}");
    c.send(&B64.encode(PASS)).await;
    c.read_until_tagged("a1").await.assert_ok();
    c.finish().await;
}

/// RFC 9051 §6.3.6: renaming the selected mailbox is a RENAME like any other: a tagged OK,
/// and the session goes on.
#[tokio::test]
async fn rename_of_the_selected_mailbox() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.cmd("CREATE Foo").await.assert_ok();
    c.select("Foo").await;
    c.cmd("RENAME Foo Bar").await.assert_ok();
    c.cmd("NOOP").await.assert_ok();
    let r = c.cmd("STATUS Bar (MESSAGES)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"Bar\" (MESSAGES 0)");
    c.finish().await;
}

/// RFC 9051 §6.3.5 / §7.1.2: a DELETE that fails (NO) changes nothing: the selected mailbox
/// stays selected.
#[tokio::test]
async fn failed_delete_keeps_the_selection() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    c.select("INBOX").await;
    c.cmd("DELETE INBOX").await.assert_no();
    let r = c.cmd("FETCH 1 UID").await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* 1 FETCH (UID 1)"]);
    c.finish().await;
}

/// RFC 9051 §7.5.2 ENVELOPE: quoted display names, group syntax (a NIL-host start and a
/// NIL-mailbox end), an empty group, encoded words left undecoded, Sender and Reply-To given,
/// In-Reply-To, and NIL for absent fields.
#[tokio::test]
async fn envelope_corners() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let m = b"From: \"Doe, John\" <j@x.org>\r\nSender: s@x.org\r\nReply-To: r@x.org\r\nTo: undisclosed-recipients:;\r\nCc: Group: a@x.org, B <b@x.org>;, c@x.org\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nIn-Reply-To: <p@x>\r\n\r\nhi\r\n";
    c.append("INBOX", "", m).await.assert_ok();
    c.append("INBOX", "", b"Subject: none\r\n\r\nhi\r\n")
        .await
        .assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1:2 ENVELOPE").await;
    r.assert_ok();
    assert_eq!(
        r.untagged,
        [
            "* 1 FETCH (ENVELOPE (NIL \"=?utf-8?q?caf=C3=A9?=\" ((\"Doe, John\" NIL \"j\" \"x.org\")) \
             ((NIL NIL \"s\" \"x.org\")) ((NIL NIL \"r\" \"x.org\")) \
             ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) \
             ((NIL NIL \"Group\" NIL)(NIL NIL \"a\" \"x.org\")(\"B\" NIL \"b\" \"x.org\")(NIL NIL NIL NIL)(NIL NIL \"c\" \"x.org\")) \
             NIL \"<p@x>\" NIL))",
            "* 2 FETCH (ENVELOPE (NIL \"none\" NIL NIL NIL NIL NIL NIL NIL NIL))",
        ]
    );
    c.finish().await;
}

/// RFC 9051 §6.4.5: a non-multipart message has a part 1 (its body); §7.5.2 BODYSTRUCTURE of
/// a message/rfc822 part carries the envelope, body structure and line count of the inner
/// message, and `2.HEADER` / `2.TEXT` address the inner message.
#[tokio::test]
async fn body_parts_and_message_rfc822() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.append("INBOX", "", b"Subject: none\r\n\r\nhi\r\n")
        .await
        .assert_ok();
    let m = b"From: a@b.c\r\nSubject: fwd\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: inner@x.org\r\nSubject: inner\r\n\r\ninner body\r\n--B--\r\n";
    c.append("INBOX", "", m).await.assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1 (BODY.PEEK[1] BODY.PEEK[HEADER])").await;
    assert_eq!(
        r.untagged,
        ["* 1 FETCH (BODY[1] {4}\r\nhi\r\n BODY[HEADER] {17}\r\nSubject: none\r\n\r\n)"]
    );
    let r = c
        .cmd("FETCH 2 (BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[1])")
        .await;
    assert_eq!(
        r.untagged,
        [
            "* 2 FETCH (BODY[2.HEADER] {37}\r\nFrom: inner@x.org\r\nSubject: inner\r\n\r\n \
          BODY[2.TEXT] {10}\r\ninner body BODY[1] {12}\r\nsee attached)"
        ]
    );
    let r = c.cmd("FETCH 2 BODYSTRUCTURE").await;
    let l = r.untagged[0].to_ascii_uppercase();
    assert!(
        l.contains(
            "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 47 (NIL \"INNER\" ((NIL NIL \"INNER\" \"X.ORG\")) \
             ((NIL NIL \"INNER\" \"X.ORG\")) ((NIL NIL \"INNER\" \"X.ORG\")) NIL NIL NIL NIL NIL) \
             (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 "
        ),
        "{l}"
    );
    assert!(
        l.ends_with(" \"MIXED\" (\"BOUNDARY\" \"B\") NIL NIL NIL))"),
        "{l}"
    );
    c.finish().await;
}

/// RFC 9051 §6.4.5 RFC822 (IMAP4rev1 form of BODY[]): the whole message, setting \Seen.
#[tokio::test]
async fn fetch_rfc822() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.append("INBOX", "", b"Subject: none\r\n\r\nhi\r\n")
        .await
        .assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1 RFC822").await;
    r.assert_ok();
    let l = &r.untagged[0];
    assert!(
        l.starts_with("* 1 FETCH (RFC822 {21}\r\nSubject: none\r\n\r\nhi\r\n"),
        "{l:?}"
    );
    assert!(flags_in(l).contains("\\Seen"), "{l:?}");
    c.finish().await;
}

/// RFC 9051 §2.3.4 / §6.4.5: a message appended with bare LF line ends is presented with
/// CRLF, and RFC822.SIZE is the size of what BODY[] returns.
#[tokio::test]
async fn bare_lf_message_is_presented_with_crlf() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.append("INBOX", "", b"Subject: lf\n\nbody\n")
        .await
        .assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1 (RFC822.SIZE BODY.PEEK[])").await;
    assert_eq!(
        r.untagged,
        ["* 1 FETCH (RFC822.SIZE 21 BODY[] {21}\r\nSubject: lf\r\n\r\nbody\r\n)"]
    );
    let r = c.cmd("STATUS INBOX (SIZE)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"INBOX\" (SIZE 21)");
    c.finish().await;
}

/// RFC 9051 §6.4.7: COPY keeps the flags and the internal date; RFC 6851 MOVE too.
#[tokio::test]
async fn copy_and_move_keep_flags_and_internal_date() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let date = "\"01-Mar-2020 08:00:00 +0000\"";
    c.append(
        "INBOX",
        &format!("(\\Answered $Tag) {date}"),
        &message("x", "a@b.c", "y"),
    )
    .await
    .assert_ok();
    c.append(
        "INBOX",
        &format!("(\\Flagged) {date}"),
        &message("z", "a@b.c", "y"),
    )
    .await
    .assert_ok();
    c.select("INBOX").await;
    c.cmd("COPY 1 Archive").await.assert_ok();
    c.cmd("MOVE 2 Archive").await.assert_ok();
    c.select("Archive").await;
    let r = c.cmd("FETCH 1:2 (FLAGS INTERNALDATE)").await;
    assert_eq!(r.untagged.len(), 2, "{r:?}");
    let want = internal_date(&format!("INTERNALDATE {date}"));
    assert_eq!(without_recent(&r.untagged[0]), set(&["\\Answered", "$Tag"]));
    assert_eq!(without_recent(&r.untagged[1]), set(&["\\Flagged"]));
    assert_eq!(internal_date(&r.untagged[0]), want, "{r:?}");
    assert_eq!(internal_date(&r.untagged[1]), want, "{r:?}");
    c.finish().await;
}

/// RFC 9051 §6.1.3 LOGOUT does not expunge (only CLOSE and EXPUNGE do, §6.4.2-3).
#[tokio::test]
async fn logout_does_not_expunge() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.select("INBOX").await;
    c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await.assert_ok();
    let r = c.cmd_logout().await;
    assert!(r.untagged.iter().any(|l| l.starts_with("* BYE")), "{r:?}");
    r.assert_ok();
    c.finish().await;
    let mut d = env.login().await;
    let r = d.cmd("STATUS INBOX (MESSAGES DELETED)").await;
    assert_eq!(r.one("STATUS "), "STATUS \"INBOX\" (MESSAGES 2 DELETED 1)");
    d.finish().await;
}

/// RFC 9051 §2.3.2: IMAP4rev2 has no \Recent flag: FETCH FLAGS never shows it.
#[tokio::test]
async fn imap4rev2_fetch_has_no_recent() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    c.cmd("ENABLE IMAP4rev2").await.assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1 FLAGS").await;
    assert_eq!(r.untagged, ["* 1 FETCH (FLAGS ())"]);
    c.finish().await;
}

// ----- limits ------------------------------------------------------------------------------

/// RFC 5530 LIMIT: a login beyond the per-account session limit is NO [LIMIT]; the slot is
/// free again once a session ends.
#[tokio::test]
async fn per_account_session_limit() {
    let env = Env::with_limits(ImapLimits {
        max_per_user: 1,
        ..ImapLimits::default()
    })
    .await;
    let mut a = env.login().await;
    let mut b = env.connect().await;
    let r = b.cmd(&format!("LOGIN {USER} \"{PASS}\"")).await;
    r.assert_no();
    assert_eq!(r.code(), Some("LIMIT"), "{r:?}");
    a.cmd_logout().await.assert_ok();
    a.finish().await;
    b.cmd(&format!("LOGIN {USER} \"{PASS}\"")).await.assert_ok();
    b.finish().await;
}

/// RFC 9051 §7.1 TOOBIG: a synchronising literal above the limit is refused without a
/// continuation request; a command line above the limit ends the session with BYE [TOOBIG].
#[tokio::test]
async fn literal_and_line_limits() {
    let env = Env::with_limits(ImapLimits {
        max_line: 1000,
        ..ImapLimits::default()
    })
    .await;
    let mut c = env.connect().await;
    c.send("x1 LOGIN {2000000}").await;
    let l = c.line().await;
    assert!(
        l.starts_with("x1 BAD [TOOBIG]") || l.starts_with("x1 NO [TOOBIG]"),
        "{l}"
    );
    c.cmd("NOOP").await.assert_ok();
    c.send(&format!("x2 NOOP {}", "x".repeat(2000))).await;
    let l = c.line().await;
    assert!(l.starts_with("* BYE [TOOBIG]"), "{l}");
    assert!(c.closed().await);
}

// ----- more authentication and naming ------------------------------------------------------

/// RFC 9051 §6.2.3 / §7.2.2 / RFC 5530 PRIVACYREQUIRED: from a non-loopback peer without TLS
/// the server advertises LOGINDISABLED, no AUTH=PLAIN, and refuses LOGIN and PLAIN.
#[tokio::test]
async fn plaintext_refused_from_remote_peer() {
    let env = Env::new().await;
    let mut c = env.connect_from("192.0.2.1:5000").await;
    assert!(c.greeting.contains(" LOGINDISABLED"), "{}", c.greeting);
    let r = c.cmd("CAPABILITY").await;
    let caps = r.one("CAPABILITY ");
    assert!(caps.contains(" LOGINDISABLED"), "{caps}");
    assert!(!caps.contains("AUTH=PLAIN"), "{caps}");
    let r = c.cmd(&format!("LOGIN {USER} \"{PASS}\"")).await;
    r.assert_no();
    assert_eq!(r.code(), Some("PRIVACYREQUIRED"), "{r:?}");
    let ir = B64.encode(format!("\0{USER}\0{PASS}"));
    let r = c.cmd(&format!("AUTHENTICATE PLAIN {ir}")).await;
    r.assert_no();
    assert_eq!(r.code(), Some("PRIVACYREQUIRED"), "{r:?}");
    c.cmd("SELECT INBOX").await.assert_bad();
    c.finish().await;
}

/// RFC 7677: SCRAM sends no password, so it is offered (and runs) where LOGIN is disabled;
/// -PLUS binds to TLS, so without TLS it is neither offered nor accepted (RFC 5802 §6).
#[tokio::test]
async fn scram_offered_without_tls_but_not_plus() {
    let env = Env::new().await;
    let mut c = env.connect_from("192.0.2.1:5000").await;
    let r = c.cmd("CAPABILITY").await;
    let caps = r.one("CAPABILITY ");
    assert!(caps.contains(" AUTH=SCRAM-SHA-256 "), "{caps}");
    assert!(!caps.contains("AUTH=SCRAM-SHA-256-PLUS"), "{caps}");
    let r = c.cmd("AUTHENTICATE SCRAM-SHA-256-PLUS").await;
    r.assert_no();
    assert_eq!(r.code(), Some("CANNOT"), "{r:?}");
    // The exchange starts (an empty challenge asks for the client-first message); the
    // server-first message follows; "*" cancels before any verdict.
    let tag = c.tag();
    c.send(&format!("{tag} AUTHENTICATE SCRAM-SHA-256")).await;
    assert_eq!(c.line().await.trim_end(), "+");
    c.send(&B64.encode(format!("n,,n={USER},r=abcdef"))).await;
    let server_first = c.line().await;
    let server_first = B64
        .decode(server_first.trim_end().strip_prefix("+ ").unwrap())
        .unwrap();
    let server_first = String::from_utf8(server_first).unwrap();
    assert!(server_first.starts_with("r=abcdef"), "{server_first}");
    assert!(server_first.contains(",s=") && server_first.contains(",i="));
    c.send("*").await;
    c.read_until_tagged(&tag).await.assert_bad();
    c.finish().await;
}

/// RFC 9051 §4.3 quoted strings: `\"` and `\\` escapes in a LOGIN password.
#[tokio::test]
async fn login_quoted_escapes() {
    let env = Env::new().await;
    env.directory
        .add_account("q@example.org", "a\"b\\c")
        .unwrap();
    let mut c = env.connect().await;
    c.cmd("LOGIN q@example.org \"a\\\"b\\\\c\"")
        .await
        .assert_ok();
    c.finish().await;
}

/// RFC 4616 §2: PLAIN with an authorisation identity other than the authentication identity
/// is refused for an ordinary user.
#[tokio::test]
async fn authenticate_plain_other_authzid_is_refused() {
    let env = Env::new().await;
    let mut c = env.connect().await;
    let ir = B64.encode(format!("{}\0{USER}\0{PASS}", common::USER2));
    let r = c.cmd(&format!("AUTHENTICATE PLAIN {ir}")).await;
    r.assert_no();
    c.cmd("SELECT INBOX").await.assert_bad();
    c.finish().await;
}

/// RFC 9051 §5.1 / RFC 5530 CANNOT: names with empty, "." or ".." levels or a leading
/// separator are refused; other characters are fine and quoted on output (§4.3).
#[tokio::test]
async fn mailbox_name_rules() {
    let env = Env::new().await;
    let mut c = env.login().await;
    for bad in ["\"a//b\"", "\"/abs\"", "\"Trash/../x\"", "\"x/./y\""] {
        let r = c.cmd(&format!("CREATE {bad}")).await;
        r.assert_no();
        assert_eq!(r.code(), Some("CANNOT"), "{bad}: {r:?}");
    }
    c.cmd("CREATE \"a\\\"b\"").await.assert_ok();
    let r = c.cmd("LIST \"\" \"a*\"").await;
    assert_eq!(r.untagged, ["* LIST (\\HasNoChildren) \"/\" \"a\\\"b\""]);
    c.cmd("SELECT \"a\\\"b\"").await.assert_ok();
    c.finish().await;
}

/// RFC 7162 §3.2.5: SELECT with QRESYNC before ENABLE QRESYNC is BAD.
#[tokio::test]
async fn qresync_select_needs_enable() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.cmd("SELECT INBOX (QRESYNC (1 1))").await.assert_bad();
    c.finish().await;
}

/// RFC 3501 §6.4.4 NEW, OLD, RECENT; RFC 9051 §6.4.4 BEFORE/SINCE on the internal date; UID
/// and `*` in search keys.
#[tokio::test]
async fn search_recent_dates_and_uid_keys() {
    let env = Env::new().await;
    let mut c = search_fixture(&env).await;
    for (query, want) in [
        ("NEW", "* SEARCH 1 3 4"),
        ("RECENT", "* SEARCH 1 2 3 4"),
        ("OLD", "* SEARCH"),
        ("SINCE 1-Jan-2020", "* SEARCH 1 2 3 4"),
        ("BEFORE 1-Jan-2020", "* SEARCH"),
        ("UID 3:*", "* SEARCH 3 4"),
        ("NOT NOT 1", "* SEARCH 1"),
        ("*", "* SEARCH 4"),
    ] {
        let r = c.cmd(&format!("SEARCH {query}")).await;
        r.assert_ok();
        assert_eq!(r.untagged, [want], "SEARCH {query}");
    }
    let mut d = env.login().await;
    d.select("INBOX").await;
    let r = d.cmd("SEARCH RECENT").await;
    assert_eq!(r.untagged, ["* SEARCH"], "\\Recent belongs to one session");
    d.finish().await;
    c.finish().await;
}

/// RFC 5957 §3 SORT DISPLAYFROM: by display name, falling back to the address.
#[tokio::test]
async fn sort_displayfrom() {
    let env = Env::new().await;
    let mut c = env.login().await;
    for (i, from) in ["Bob <z@b.org>", "Zed <a@z.org>", "Bob <z@b.org>"]
        .iter()
        .enumerate()
    {
        c.append("INBOX", "", &message(&format!("m{i}"), from, "x"))
            .await
            .assert_ok();
    }
    c.select("INBOX").await;
    let r = c.cmd("SORT (DISPLAYFROM) UTF-8 ALL").await;
    assert_eq!(r.untagged, ["* SORT 1 3 2"]);
    let r = c.cmd("SORT (FROM) UTF-8 ALL").await;
    assert_eq!(r.untagged, ["* SORT 2 1 3"]);
    c.finish().await;
}

/// RFC 9051 §6.4.5: HEADER.FIELDS of fields the message lacks is just the blank line; a
/// sequence set with repeats answers each message once.
#[tokio::test]
async fn fetch_absent_header_fields_and_repeated_set() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS (X-None)]").await;
    assert_eq!(
        r.untagged,
        ["* 1 FETCH (BODY[HEADER.FIELDS (X-NONE)] {2}\r\n\r\n)"]
    );
    let r = c.cmd("FETCH 1,1:2,2 UID").await;
    assert_eq!(r.untagged, ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 2)"]);
    c.finish().await;
}

// ----- 8-bit and binary content ------------------------------------------------------------

/// RFC 6855 §4: with UTF8=ACCEPT enabled, APPEND takes `UTF8 (~{n}...)` and the message is
/// stored as sent.
#[tokio::test]
async fn append_utf8_data_item() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.cmd("ENABLE UTF8=ACCEPT").await.assert_ok();
    let m = "Subject: café\r\nFrom: é@x.org\r\n\r\nbody é\r\n".as_bytes();
    let head = format!("APPEND INBOX UTF8 (~{{{}}}", m.len());
    let tail = [m, b")"].concat();
    let r = c.cmd_parts(&[head.as_bytes(), &tail]).await;
    r.assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1 BODY.PEEK[]").await;
    assert_eq!(
        r.untagged,
        [format!(
            "* 1 FETCH (BODY[] {{{}}}\r\n{})",
            m.len(),
            String::from_utf8_lossy(m)
        )]
    );
    c.finish().await;
}

/// RFC 3516 §4.4: APPEND with a literal8 (`~{n}`) carries binary content; BINARY[1] returns
/// it as a literal8 and BINARY.SIZE its decoded size.
#[tokio::test]
async fn append_binary_literal8() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let m = b"Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\r\n";
    let head = format!("APPEND INBOX ~{{{}}}", m.len());
    c.cmd_parts(&[head.as_bytes(), m]).await.assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])").await;
    assert_eq!(
        r.untagged,
        ["* 1 FETCH (BINARY[1] ~{5}\r\n\0\u{1}\u{2}\r\n BINARY.SIZE[1] 5)"]
    );
    c.finish().await;
}

/// RFC 9051 §9 (`literal` is `*CHAR8`, CHAR8 excludes NUL) and §7.5.2 (BODY[] data is
/// textual): a message with NUL octets is never sent in a plain `{n}` literal.
#[tokio::test]
async fn body_fetch_never_sends_nul_in_a_literal() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let m = b"Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\r\n";
    let head = format!("APPEND INBOX ~{{{}}}", m.len());
    c.cmd_parts(&[head.as_bytes(), m]).await.assert_ok();
    c.select("INBOX").await;
    for item in ["BODY.PEEK[]", "BODY.PEEK[TEXT]", "BODY.PEEK[1]", "RFC822"] {
        let r = c.cmd(&format!("FETCH 1 {item}")).await;
        r.assert_ok();
        assert!(
            !r.untagged[0].contains('\0'),
            "{item}: NUL in a literal: {:?}",
            r.untagged[0]
        );
    }
    c.finish().await;
}

/// RFC 9051 §4.3 (no NUL in a `literal`), as Dovecot: a NUL is sent as 0x80 (read here as
/// U+FFFD, the harness decodes lossily), so the literal
/// keeps its size and RFC822.SIZE agrees; BINARY[] (RFC 3516 §4.3) sends the raw octets in a
/// literal8.
#[tokio::test]
async fn body_fetch_replaces_nul_and_binary_keeps_it() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let m = b"Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\r\n";
    let head = format!("APPEND INBOX ~{{{}}}", m.len());
    c.cmd_parts(&[head.as_bytes(), m]).await.assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1 (RFC822.SIZE BODY.PEEK[TEXT])").await;
    assert_eq!(
        r.untagged,
        [format!(
            "* 1 FETCH (RFC822.SIZE {} BODY[TEXT] {{5}}\r\n\u{fffd}\u{1}\u{2}\r\n)",
            m.len()
        )]
    );
    let r = c.cmd("FETCH 1 (RFC822.SIZE BODY.PEEK[])").await;
    let l = &r.untagged[0];
    assert!(
        l.starts_with(&format!(
            "* 1 FETCH (RFC822.SIZE {0} BODY[] {{{0}}}\r\n",
            m.len()
        )),
        "{l:?}"
    );
    let r = c.cmd("FETCH 1 BINARY.PEEK[]").await;
    assert!(
        r.untagged[0].contains(&format!("BINARY[] ~{{{}}}", m.len())),
        "{r:?}"
    );
    assert!(r.untagged[0].contains("\0\u{1}\u{2}"), "{r:?}");
    c.finish().await;
}

/// RFC 3501 §5.1.3: without UTF8=ACCEPT, a mailbox name with `&` that is not modified UTF-7
/// is refused with NO (not taken as raw octets), and as a LIST/LSUB pattern matches nothing
/// (as Dovecot answers); with UTF8=ACCEPT (RFC 6855 §3) names are UTF-8 and `&` is plain.
#[tokio::test]
async fn mailbox_name_with_invalid_modified_utf7_is_refused() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.cmd("CREATE a&-b").await.assert_ok();
    for cmd in [
        "CREATE a&b",
        "SELECT a&b",
        "STATUS a&b (MESSAGES)",
        "SUBSCRIBE a&b",
        "RENAME a&-b &AGE-",
        "DELETE &",
    ] {
        let r = c.cmd(cmd).await;
        r.assert_no();
        assert_eq!(r.code(), Some("CANNOT"), "{cmd}: {r:?}");
    }
    let r = c.cmd("LIST \"\" a&b").await;
    r.assert_ok();
    assert!(r.untagged.is_empty(), "{r:?}");
    let r = c.cmd("LIST \"\" (a&b a&-b)").await;
    assert_eq!(r.untagged, ["* LIST (\\HasNoChildren) \"/\" \"a&-b\""]);
    let r = c.cmd("LSUB a&b *").await;
    r.assert_ok();
    assert!(r.untagged.is_empty(), "{r:?}");
    c.cmd("ENABLE UTF8=ACCEPT").await.assert_ok();
    c.cmd("SELECT a&b").await.assert_ok();
    c.finish().await;
}

/// RFC 5255 §4: I18NLEVEL=1 is advertised (SEARCH and SORT compare with i;unicode-casemap).
#[tokio::test]
async fn capability_i18nlevel() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let r = c.cmd("CAPABILITY").await;
    assert!(r.one("CAPABILITY ").contains(" I18NLEVEL=1"), "{r:?}");
    c.finish().await;
}

/// RFC 3516 §4.2: a literal8 outside APPEND is refused with BAD at once, without a
/// continuation request; a non-synchronising one is skipped with its command.
#[tokio::test]
async fn literal8_outside_append_is_bad_at_once() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.send("x SELECT ~{3}").await;
    let l = c.line().await;
    assert!(l.starts_with("x BAD "), "{l}");
    c.send_raw(b"y SELECT ~{5+}\r\nINBOX\r\n").await;
    let l = c.line().await;
    assert!(l.starts_with("y BAD "), "{l}");
    c.cmd("NOOP").await.assert_ok();
    c.finish().await;
}

/// RFC 2177 §3: DONE and the next command in one packet are both handled.
#[tokio::test]
async fn idle_done_pipelined_with_next_command() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.select("INBOX").await;
    c.send("i IDLE").await;
    assert!(c.line().await.starts_with("+ "));
    c.send_raw(b"DONE\r\nn NOOP\r\n").await;
    c.read_until_tagged("i").await.assert_ok();
    c.read_until_tagged("n").await.assert_ok();
    c.finish().await;
}

/// RFC 9051 §6.4.5: a FETCH over many messages (read in chunks) answers each message once,
/// in order, with its own content.
#[tokio::test]
async fn fetch_many_messages_in_order() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let n = 70;
    let mut parts: Vec<Vec<u8>> = Vec::new();
    // One APPEND with many messages (RFC 3502) to keep the test fast.
    let msgs: Vec<Vec<u8>> = (1..=n)
        .map(|i| message(&format!("s{i}"), "a@b.c", &format!("b{i}")))
        .collect();
    parts.push(format!("APPEND INBOX {{{}}}", msgs[0].len()).into_bytes());
    for i in 0..n {
        let mut p = msgs[i].clone();
        if i + 1 < n {
            p.extend_from_slice(format!(" {{{}}}", msgs[i + 1].len()).as_bytes());
        }
        parts.push(p);
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    c.cmd_parts(&refs).await.assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1:* (UID BODY.PEEK[])").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), n, "{r:?}");
    for (i, l) in r.untagged.iter().enumerate() {
        let m = String::from_utf8_lossy(&msgs[i]);
        assert_eq!(
            *l,
            format!(
                "* {} FETCH (UID {} BODY[] {{{}}}\r\n{m})",
                i + 1,
                i + 1,
                m.len()
            )
        );
    }
    c.finish().await;
}

/// RFC 9051 §6.4.4: string keys are case-insensitive substrings; BODY looks at the body
/// only, TEXT at header and body; HEADER with an empty string matches every message having
/// the field; LARGER and SMALLER are strict on RFC822.SIZE.
#[tokio::test]
async fn search_string_and_size_semantics() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.append("INBOX", "", b"Subject: other\r\nX-Foo: \r\n\r\nhello\r\n")
        .await
        .assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1 RFC822.SIZE").await;
    let size = number_after(&r.untagged[0], "RFC822.SIZE");
    for (query, want) in [
        ("SUBJECT M1".to_string(), "* SEARCH 1"),
        ("FROM ALICE@EXAMPLE".to_string(), "* SEARCH 1"),
        ("BODY Alice".to_string(), "* SEARCH"),
        ("TEXT Alice".to_string(), "* SEARCH 1"),
        ("TEXT HELLO".to_string(), "* SEARCH 3"),
        ("HEADER X-Foo \"\"".to_string(), "* SEARCH 3"),
        ("HEADER Subject \"\"".to_string(), "* SEARCH 1 2 3"),
        (format!("LARGER {size}"), "* SEARCH"),
        (format!("LARGER {}", size - 1), "* SEARCH 1 2"),
        (format!("SMALLER {size} NOT SUBJECT other"), "* SEARCH"),
        (format!("SMALLER {}", size + 1), "* SEARCH 1 2 3"),
    ] {
        let r = c.cmd(&format!("SEARCH {query}")).await;
        r.assert_ok();
        assert_eq!(r.untagged, [want], "SEARCH {query}");
    }
    c.finish().await;
}

/// RFC 9051 §6.4.4: searching matches the decoded text: RFC 2047 encoded words in headers
/// and the body's Content-Transfer-Encoding; a UTF-8 search string arrives as a literal (or
/// quoted once UTF8=ACCEPT is enabled, RFC 6855 §3).
#[tokio::test]
async fn search_decodes_headers_and_bodies() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.append(
        "INBOX",
        "",
        b"Subject: =?utf-8?q?caf=C3=A9?= =?iso-8859-1?q?_na=EFve?=\r\nFrom: =?utf-8?q?J=C3=B6rg?= <j@x.org>\r\n\r\nhello\r\n",
    )
    .await
    .assert_ok();
    c.append(
        "INBOX",
        "",
        b"Subject: plain\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nsch=C3=B6n\r\n",
    )
    .await
    .assert_ok();
    c.append(
        "INBOX",
        "",
        b"Subject: b64\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n",
    )
    .await
    .assert_ok();
    c.select("INBOX").await;
    for (key, value, want) in [
        ("SUBJECT", "café", "* SEARCH 1"),
        ("SUBJECT", "CAFÉ", "* SEARCH 1"),
        ("SUBJECT", "naïve", "* SEARCH 1"),
        ("FROM", "Jörg", "* SEARCH 1"),
        ("BODY", "schön", "* SEARCH 2"),
        ("BODY", "world", "* SEARCH 3"),
    ] {
        let head = format!("SEARCH CHARSET UTF-8 {key} {{{}}}", value.len());
        let r = c.cmd_parts(&[head.as_bytes(), value.as_bytes()]).await;
        r.assert_ok();
        assert_eq!(r.untagged, [want], "{key} {value}");
    }
    c.cmd("ENABLE UTF8=ACCEPT").await.assert_ok();
    let r = c.cmd("SEARCH SUBJECT \"café\"").await;
    assert_eq!(r.untagged, ["* SEARCH 1"]);
    c.finish().await;
}

/// RFC 9051 §6.4.7 / §7.4.1: COPY into the selected mailbox announces the new message with
/// EXISTS before the tagged OK.
#[tokio::test]
async fn copy_into_the_selected_mailbox() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    c.select("INBOX").await;
    let r = c.cmd("COPY 1 INBOX").await;
    r.assert_ok();
    r.one("2 EXISTS");
    c.finish().await;
}

/// RFC 7162 §3.2.10: with QRESYNC enabled, another session's expunge arrives as VANISHED
/// (not EARLIER), after the flag change that preceded it.
#[tokio::test]
async fn qresync_vanished_from_another_session() {
    let env = Env::new().await;
    let mut a = env.login().await;
    fill_inbox(&mut a, 2).await;
    a.select("INBOX").await;
    let mut b = env.login().await;
    b.cmd("ENABLE QRESYNC").await.assert_ok();
    b.select("INBOX").await;
    a.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await.assert_ok();
    a.cmd("EXPUNGE").await.assert_ok();
    let r = b.cmd("NOOP").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 2, "{r:?}");
    assert!(
        r.untagged[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Deleted) MODSEQ ("),
        "{r:?}"
    );
    assert_eq!(r.untagged[1], "* VANISHED 1");
    b.finish().await;
    a.finish().await;
}

/// RFC 7162 §3.1 (CONDSTORE enabled by a command while a mailbox is selected): the server
/// sends OK [HIGHESTMODSEQ] before the command's responses.
#[tokio::test]
async fn condstore_enabled_by_search_sends_highestmodseq() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 1).await;
    c.select("INBOX").await;
    let r = c.cmd("SEARCH MODSEQ \"/flags/\\\\draft\" all 1").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 2, "{r:?}");
    assert!(r.untagged[0].starts_with("* OK [HIGHESTMODSEQ "), "{r:?}");
    let h = number_after(&r.untagged[0], "HIGHESTMODSEQ");
    assert_eq!(r.untagged[1], format!("* SEARCH 1 (MODSEQ {h})"));
    c.finish().await;
}

/// RFC 9051 §9 date-day-fixed: APPEND accepts a space-padded day.
#[tokio::test]
async fn append_space_padded_date() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.append(
        "INBOX",
        "\" 1-Mar-2020 08:00:00 +0000\"",
        &message("x", "a@b.c", "y"),
    )
    .await
    .assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("FETCH 1 INTERNALDATE").await;
    assert_eq!(
        internal_date(&r.untagged[0]),
        internal_date("INTERNALDATE \"01-Mar-2020 08:00:00 +0000\"")
    );
    c.finish().await;
}

/// RFC 9051 §5.1.1 / §6.3.10: with "." configured as the hierarchy separator, NAMESPACE and
/// LIST show it, it builds the hierarchy, and "/" is refused in names (RFC 5530 CANNOT).
#[tokio::test]
async fn dot_hierarchy_separator() {
    let env = Env::with_config("[mail]\nhierarchy_separator = \".\"\n").await;
    let mut c = env.login().await;
    let r = c.cmd("NAMESPACE").await;
    assert_eq!(r.untagged, ["* NAMESPACE ((\"\" \".\")) NIL NIL"]);
    let r = c.cmd("LIST \"\" \"\"").await;
    assert_eq!(r.untagged, ["* LIST (\\Noselect) \".\" \"\""]);
    c.cmd("CREATE a.b").await.assert_ok();
    let r = c.cmd("CREATE \"x/y\"").await;
    r.assert_no();
    assert_eq!(r.code(), Some("CANNOT"), "{r:?}");
    let r = c.cmd("LIST \"\" a%").await;
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    assert!(r.untagged[0].ends_with("\".\" \"a\""), "{r:?}");
    assert!(r.untagged[0].contains("\\HasChildren"), "{r:?}");
    let r = c.cmd("LIST \"\" a.*").await;
    assert_eq!(r.untagged, ["* LIST (\\HasNoChildren) \".\" \"a.b\""]);
    c.cmd("SELECT a.b").await.assert_ok();
    c.finish().await;
}

/// RFC 9051 §6.4.6 .SILENT and §7.4.1: a session's own changes are not echoed back later
/// (no FETCH for its STORE, no second EXISTS for its APPEND).
#[tokio::test]
async fn own_changes_are_not_echoed() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 2).await;
    c.select("INBOX").await;
    c.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)").await.assert_ok();
    let r = c.cmd("NOOP").await;
    assert!(r.untagged.is_empty(), "{r:?}");
    let r = c.append("INBOX", "", &message("m3", "a@b.c", "x")).await;
    r.one("3 EXISTS");
    let r = c.cmd("NOOP").await;
    assert!(r.untagged.is_empty(), "{r:?}");
    c.finish().await;
}

/// RFC 9051 §7.4.1 / §7.5.1: another session's flag change, expunge and append arrive in an
/// order that keeps sequence numbers consistent: FETCH (old numbers), EXPUNGE, then EXISTS
/// and RECENT (RFC 3501 §7.3.2).
#[tokio::test]
async fn updates_from_another_session_in_order() {
    let env = Env::new().await;
    let mut a = env.login().await;
    fill_inbox(&mut a, 2).await;
    a.select("INBOX").await;
    let mut b = env.login().await;
    b.select("INBOX").await;
    b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await.assert_ok();
    b.cmd("EXPUNGE").await.assert_ok();
    b.append("INBOX", "", &message("m3", "a@b.c", "x"))
        .await
        .assert_ok();
    let r = a.cmd("NOOP").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 4, "{r:?}");
    assert!(r.untagged[0].starts_with("* 1 FETCH ("), "{r:?}");
    assert!(flags_in(&r.untagged[0]).contains("\\Deleted"), "{r:?}");
    // m2 is still \Recent here; m3 is \Recent to b, the session that appended it and was
    // told of it first (RFC 3501 §2.3.2).
    assert_eq!(
        &r.untagged[1..],
        ["* 1 EXPUNGE", "* 2 EXISTS", "* 1 RECENT"]
    );
    b.finish().await;
    a.finish().await;
}

/// RFC 9051 §7.1.5: when another session deletes the selected mailbox, the server ends the
/// session with an untagged BYE at the next command.
#[tokio::test]
async fn selected_mailbox_deleted_elsewhere_ends_the_session() {
    let env = Env::new().await;
    let mut a = env.login().await;
    a.cmd("CREATE Tmp").await.assert_ok();
    a.select("Tmp").await;
    let mut b = env.login().await;
    b.cmd("DELETE Tmp").await.assert_ok();
    a.send("x NOOP").await;
    let l = a.line().await;
    assert!(l.starts_with("* BYE "), "{l}");
    assert!(a.closed().await);
    b.finish().await;
}

/// RFC 9051 §6.4.4.1-2 (SEARCHRES, part of IMAP4rev2): SEARCH RETURN (SAVE) keeps the result,
/// and `$` refers to it in later commands.
#[tokio::test]
async fn searchres_dollar() {
    let env = Env::new().await;
    let mut c = env.login().await;
    fill_inbox(&mut c, 3).await;
    c.cmd("ENABLE IMAP4rev2").await.assert_ok();
    c.select("INBOX").await;
    c.cmd("STORE 2:3 +FLAGS.SILENT (\\Flagged)")
        .await
        .assert_ok();
    c.cmd("SEARCH RETURN (SAVE) FLAGGED").await.assert_ok();
    let r = c.cmd("FETCH $ UID").await;
    r.assert_ok();
    assert_eq!(r.untagged, ["* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"]);
    c.cmd("UID SEARCH RETURN (SAVE) UID 3").await.assert_ok();
    let r = c.cmd("UID FETCH $ UID").await;
    assert_eq!(r.untagged, ["* 3 FETCH (UID 3)"]);
    c.finish().await;
}

/// RFC 5182 §2.1-2.4 SEARCHRES: `$` as a search key, in STORE, COPY and UID EXPUNGE; SAVE
/// alone sends no ESEARCH; MIN/MAX alone save only those; expunged messages leave `$`; a
/// failed SAVE search empties it; SELECT resets it; the capability is advertised.
#[tokio::test]
async fn searchres_keys_commands_and_lifetime() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let r = c.cmd("CAPABILITY").await;
    assert!(r.one("CAPABILITY ").contains(" SEARCHRES"), "{r:?}");
    fill_inbox(&mut c, 5).await;
    c.select("INBOX").await;
    c.cmd("STORE 2,4,5 +FLAGS.SILENT (\\Flagged)")
        .await
        .assert_ok();
    let r = c.cmd("SEARCH RETURN (SAVE) FLAGGED").await;
    r.assert_ok();
    assert!(r.untagged.is_empty(), "{r:?}");
    let r = c.cmd("SEARCH $").await;
    assert_eq!(r.untagged, ["* SEARCH 2 4 5"]);
    let r = c.cmd("UID SEARCH UID $ NOT 5").await;
    assert_eq!(r.untagged, ["* SEARCH 2 4"]);
    let r = c.cmd("UID STORE $ +FLAGS (\\Answered)").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 3, "{r:?}");
    c.cmd("COPY $ Copies").await.assert_no();
    c.cmd("CREATE Copies").await.assert_ok();
    c.cmd("MOVE $ Copies").await.assert_ok();
    // Moved messages are expunged: `$` is empty now, and commands on it are OK and empty.
    let r = c.cmd("FETCH $ UID").await;
    r.assert_ok();
    assert!(r.untagged.is_empty(), "{r:?}");
    // MIN and MAX alone save only those messages.
    let r = c.cmd("UID SEARCH RETURN (SAVE MIN MAX) ALL").await;
    assert!(r.one("ESEARCH ").ends_with(" UID MIN 1 MAX 3"), "{r:?}");
    let r = c.cmd("UID FETCH $ UID").await;
    assert_eq!(r.untagged, ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"]);
    c.cmd("STORE $ +FLAGS.SILENT (\\Deleted)").await.assert_ok();
    let r = c.cmd("UID EXPUNGE $").await;
    r.assert_ok();
    assert_eq!(r.untagged.len(), 2, "{r:?}");
    let r = c.cmd("SEARCH ALL").await;
    assert_eq!(r.untagged, ["* SEARCH"]);
    // A failed SAVE search empties `$`.
    c.append("INBOX", "", &message("n", "a@b.c", "n"))
        .await
        .assert_ok();
    c.cmd("SEARCH RETURN (SAVE) ALL").await.assert_ok();
    c.cmd("SEARCH RETURN (SAVE) CHARSET X-UNKNOWN ALL")
        .await
        .assert_no();
    let r = c.cmd("SEARCH $").await;
    assert_eq!(r.untagged, ["* SEARCH"]);
    // SELECT resets it.
    c.cmd("SEARCH RETURN (SAVE) ALL").await.assert_ok();
    c.select("INBOX").await;
    let r = c.cmd("SEARCH $").await;
    assert_eq!(r.untagged, ["* SEARCH"]);
    // SORT RETURN (SAVE) saves too.
    c.cmd("SORT RETURN (SAVE) (ARRIVAL) UTF-8 ALL")
        .await
        .assert_ok();
    let r = c.cmd("SEARCH $").await;
    assert_eq!(r.untagged, ["* SEARCH 1"]);
    c.finish().await;
}

/// RFC 3516 §4.3 / RFC 9051 §7.1 UNKNOWN-CTE: BINARY of a part whose encoding the server
/// cannot decode is NO [UNKNOWN-CTE].
#[tokio::test]
async fn binary_unknown_cte() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let m = b"Subject: u\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--B--\r\n";
    c.append("INBOX", "", m).await.assert_ok();
    c.select("INBOX").await;
    for item in ["BINARY.PEEK[1]", "BINARY.SIZE[1]"] {
        let r = c.cmd(&format!("FETCH 1 {item}")).await;
        r.assert_no();
        assert_eq!(r.code(), Some("UNKNOWN-CTE"), "{item}: {r:?}");
    }
    c.finish().await;
}

/// RFC 9051 §6.2.2 / §6.2.3: AUTHENTICATE and LOGIN after authentication are BAD; RFC 2971
/// ID with an odd list is BAD; an unknown UID command is BAD.
#[tokio::test]
async fn more_bad_commands() {
    let env = Env::new().await;
    let mut c = env.login().await;
    let ir = B64.encode(format!("\0{USER}\0{PASS}"));
    c.cmd(&format!("AUTHENTICATE PLAIN {ir}"))
        .await
        .assert_bad();
    c.cmd("ID (\"a\")").await.assert_bad();
    c.cmd("UID").await.assert_bad();
    c.cmd("UID FOO 1").await.assert_bad();
    c.cmd("NOOP").await.assert_ok();
    c.finish().await;
}

/// RFC 3501 §6.3.2 / §2.3.2: EXAMINE does not take the \Recent flag away from the next
/// session that selects the mailbox.
#[tokio::test]
async fn examine_leaves_recent_alone() {
    let env = Env::new().await;
    let mut a = env.login().await;
    fill_inbox(&mut a, 2).await;
    let r = a.cmd("EXAMINE INBOX").await;
    r.assert_ok();
    r.one("2 RECENT");
    let mut b = env.login().await;
    let r = b.select("INBOX").await;
    r.one("2 RECENT");
    b.finish().await;
    a.finish().await;
}

/// RFC 3501 §6.3.9 LSUB: with "Foo/Bar" subscribed and "Foo" not, `LSUB "" %` returns Foo
/// with \Noselect.
#[tokio::test]
async fn lsub_percent_shows_unsubscribed_parent_noselect() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.cmd("CREATE Foo/Bar").await.assert_ok();
    c.cmd("SUBSCRIBE Foo/Bar").await.assert_ok();
    let r = c.cmd("LSUB \"\" Foo%").await;
    assert_eq!(r.untagged, ["* LSUB (\\Noselect) \"/\" \"Foo\""]);
    let r = c.cmd("LSUB \"\" Foo/%").await;
    assert_eq!(r.untagged, ["* LSUB () \"/\" \"Foo/Bar\""]);
    c.finish().await;
}

/// RFC 5258 §4 RETURN (CHILDREN) and RFC 9051 §6.3.4: a superior name created implicitly is
/// listed with \HasChildren, and creating it again is ALREADYEXISTS.
#[tokio::test]
async fn implicit_parent_has_children() {
    let env = Env::new().await;
    let mut c = env.login().await;
    c.cmd("CREATE P/Q").await.assert_ok();
    let r = c.cmd("LIST \"\" P RETURN (CHILDREN)").await;
    r.assert_ok();
    let l = r.one("LIST ");
    assert!(l.contains("\\HasChildren"), "{l}");
    assert!(!l.contains("\\HasNoChildren"), "{l}");
    let r = c.cmd("CREATE P").await;
    if r.status() == "NO" {
        assert_eq!(r.code(), Some("ALREADYEXISTS"), "{r:?}");
    } else {
        // A \NonExistent / \Noselect level may be turned into a mailbox.
        r.assert_ok();
    }
    c.finish().await;
}
