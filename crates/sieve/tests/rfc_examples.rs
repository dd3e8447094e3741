//! The RFCs' own example scripts, run on messages built for them.

mod common;

use common::*;
use postern_sieve::{Action, Outcome, Script, ScriptCache};

fn boxes(o: &Outcome) -> Vec<String> {
    o.actions
        .iter()
        .filter_map(|a| match a {
            Action::FileInto { mailbox, .. } => Some(mailbox.clone()),
            Action::Keep { .. } => Some("INBOX".into()),
            Action::Discard => Some("(discard)".into()),
            _ => None,
        })
        .collect()
}

fn message(headers: &str) -> String {
    format!("{}\r\n\r\nbody text\r\n", headers.replace('\n', "\r\n"))
}

/// RFC 5228 §9: the example filter (note the upper-case `:DOMAIN` and `NOT`: tags and names
/// are case-insensitive, §2.6.2 and §8.1).
#[test]
fn rfc5228_section9() {
    let script = r#"
# Example Sieve Filter
require ["fileinto"];
if header :is "Sender" "owner-ietf-mta-filters@imc.org"
        {
        fileinto "filter";  # move to "filter" mailbox
        }
elsif address :DOMAIN :is ["From", "To"] "example.com"
        {
        keep;               # keep in "In" mailbox
        }
elsif anyof (NOT address :all :contains
               ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject"
               ["*make*money*fast*", "*university*dipl*mas*"])
        {
        fileinto "spam";   # move to "spam" mailbox
        }
else
        {
        fileinto "personal";
        }
"#;
    let run = |h: &str| boxes(&run_on(script, &message(h), &mut TestHost::default()));
    assert_eq!(
        run("Sender: owner-ietf-mta-filters@imc.org\nTo: me@example.com"),
        ["filter"]
    );
    assert_eq!(run("From: boss@example.com\nTo: me@example.com"), ["INBOX"]);
    assert_eq!(run("From: x@other.org\nTo: you@other.org"), ["spam"]);
    assert_eq!(
        run("From: x@other.org\nCc: me@example.com\nSubject: Make lots of MONEY fast"),
        ["spam"]
    );
    assert_eq!(run("From: x@other.org\nCc: me@example.com"), ["personal"]);
    // §3.2: without its require line the script does not compile.
    let without = script.replace("require [\"fileinto\"];", "");
    assert!(compile_error(&without).starts_with("unknown command 'fileinto'"));
}

/// RFC 5229 §3.2: the match variable examples.
#[test]
fn rfc5229_match_variables() {
    let script = r#"
require ["fileinto", "variables"];
if header :matches "List-ID" "*<*@*" {
    fileinto "INBOX.lists.${2}"; stop;
}
if header :matches "Subject" "[*] *" {
    fileinto "INBOX.lists.${1}"; stop;
}
if address :matches ["To", "Cc"] ["coyote@**.com",
        "wile@**.com"] {
    fileinto "INBOX.business.${2}"; stop;
}
if anyof (true, address :domain :matches "To" "*.com") {
    stop;
}
"#;
    let run = |h: &str| boxes(&run_on(script, &message(h), &mut TestHost::default()));
    assert_eq!(
        run("List-ID: Sieve <sieve.example.org@lists.example.org>"),
        ["INBOX.lists.sieve.example.org"]
    );
    assert_eq!(
        run("Subject: [acme-users] [fwd] version 1.0 is out"),
        ["INBOX.lists.acme-users"]
    );
    assert_eq!(
        run("To: coyote@ACME.Example.COM"),
        ["INBOX.business.ACME.Example"]
    );
    assert!(run("To: nobody@example.org").is_empty());
}

/// RFC 5232 §6: flags set through a variable, then used by `:flags`.
#[test]
fn rfc5232_example() {
    let script = r#"
require ["imap4flags", "fileinto", "variables"];
if header :contains "from" "boss@frobnitzm.example.edu" {
    setflag "flagvar" "\\Flagged";
    fileinto :flags "${flagvar}" "INBOX.From Boss";
}
"#;
    let o = run_on(
        script,
        &message("From: boss@frobnitzm.example.edu"),
        &mut TestHost::default(),
    );
    assert!(
        matches!(&o.actions[..], [Action::FileInto { mailbox, flags, .. }]
            if mailbox == "INBOX.From Boss" && flags == &["\\Flagged"])
    );
}

/// RFC 5233 §5 examples, with `+` as the delimiter.
#[test]
fn rfc5233_examples() {
    let script = r#"
require ["envelope", "subaddress", "fileinto"];
if envelope :user "to" "postmaster" {
    fileinto "inbox.postmaster"; stop;
}
if envelope :detail :is "to" "mta-filters" {
    fileinto "inbox.ietf-mta-filters";
}
"#;
    let run = |to: &str| {
        let mut ctx = context();
        ctx.envelope.to = to.into();
        let s = postern_sieve::compile(script, &ctx.limits).unwrap();
        boxes(&postern_sieve::execute(
            &s,
            message("To: x@y").as_bytes(),
            &ctx,
            &mut TestHost::default(),
        ))
    };
    assert_eq!(run("postmaster+x@example.org"), ["inbox.postmaster"]);
    assert_eq!(
        run("ken+mta-filters@example.org"),
        ["inbox.ietf-mta-filters"]
    );
    assert!(run("ken@example.org").is_empty());
}

/// RFC 5231 §6 examples: numeric :value and :count.
#[test]
fn rfc5231_examples() {
    let script = r#"
require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :value "lt" :comparator "i;ascii-numeric" ["x-priority"] ["3"] {
    fileinto "Priority";
}
elsif address :count "gt" :comparator "i;ascii-numeric" ["to", "cc"] ["3"] {
    fileinto "Many";
}
"#;
    let run = |h: &str| boxes(&run_on(script, &message(h), &mut TestHost::default()));
    assert_eq!(run("X-Priority: 1\nTo: a@x"), ["Priority"]);
    assert_eq!(run("X-Priority: 3\nTo: a@x, b@x\nCc: c@x, d@x"), ["Many"]);
    assert!(run("X-Priority: 10\nTo: a@x").is_empty());
}

/// RFC 5490 §3.2 and RFC 7352 §3.4 examples.
#[test]
fn rfc5490_and_rfc7352_examples() {
    let o = run(r#"require ["fileinto", "mailbox"];
        if header :contains "Subject" "version" { fileinto :create "INBOX.sieve"; }"#);
    assert!(matches!(
        &o.actions[..],
        [Action::FileInto { create: true, .. }]
    ));
    let script = r#"require ["duplicate", "fileinto", "mailbox"];
        if duplicate { fileinto :create "Trash/Duplicate"; }"#;
    let mut host = TestHost::default();
    assert!(boxes(&run_on(script, MESSAGE, &mut host)).is_empty());
    host.seen
        .insert((String::new(), "<abc@example.com>".into()));
    assert_eq!(
        boxes(&run_on(script, MESSAGE, &mut host)),
        ["Trash/Duplicate"]
    );
    let script = r#"require ["duplicate"];
        if duplicate :header "X-Event-ID" :handle "notifier" :seconds 60 { discard; }"#;
    let o = run_on(
        script,
        &message("X-Event-ID: 1234"),
        &mut TestHost::default(),
    );
    assert_eq!(o.duplicate_marks[0].id, "1234");
    assert_eq!(o.duplicate_marks[0].handle, "notifier");
}

/// RFC 5173 §7 and RFC 5429 §2.2 examples.
#[test]
fn rfc5173_and_rfc5429_examples() {
    let o = run(r#"require "body"; if body :raw :contains "MAGIC" { discard; }"#);
    assert_eq!(boxes(&o), ["(discard)"]);
    let o = run(r#"require ["body", "fileinto"];
        if body :content "text" :contains ["missile", "coordinates"] { fileinto "secrets"; }"#);
    assert!(o.actions.is_empty());
    let o = run("require [\"reject\"];\nif size :over 100 {\n  reject text:\nYour message is too big.\n.\n;\n}");
    assert_eq!(
        o.actions,
        [Action::Reject {
            reason: "Your message is too big.\r\n".into(),
            extended: false
        }]
    );
}

/// RFC 5260 §7 example: by the Date field's original zone.
#[test]
fn rfc5260_example() {
    let script = r#"require ["date", "relational", "fileinto"];
        if allof(header :is "from" "boss@example.com",
                 date :value "ge" :originalzone "date" "hour" "09",
                 date :value "lt" :originalzone "date" "hour" "17")
        { fileinto "urgent"; }"#;
    let run = |date: &str| {
        boxes(&run_on(
            script,
            &message(&format!("From: boss@example.com\nDate: {date}")),
            &mut TestHost::default(),
        ))
    };
    assert_eq!(run("Wed, 3 Dec 2025 10:30:00 -0800"), ["urgent"]);
    assert!(run("Wed, 3 Dec 2025 18:30:00 +0100").is_empty());
}

/// Compiled scripts are shared between threads (the cache hands out `Arc<Script>`).
#[test]
fn scripts_are_shareable() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Script>();
    shareable::<ScriptCache>();
}
