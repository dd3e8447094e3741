//! RFC 5228 base language and the extensions the core implements itself: actions, implicit
//! keep, tests, comparators, match types, relational, subaddress, variables, imap4flags,
//! reject, mailbox, copy, regex, include, duplicate, index.

mod common;

use common::*;
use postern_sieve::{compile, Action, Limits};

fn fileinto(o: &postern_sieve::Outcome) -> Vec<String> {
    o.actions
        .iter()
        .filter_map(|a| match a {
            Action::FileInto { mailbox, .. } => Some(mailbox.clone()),
            _ => None,
        })
        .collect()
}

/// RFC 5228 §2.10.2: no action means the implicit keep.
#[test]
fn empty_script_keeps() {
    let o = run("");
    assert!(o.implicit_keep);
    assert!(o.actions.is_empty());
    assert!(o.error.is_none());
}

/// RFC 5228 §4.1, §2.10.2: fileinto cancels the implicit keep; `:copy` (RFC 3894 §3) does not.
#[test]
fn fileinto_and_copy() {
    let o = run("require \"fileinto\"; fileinto \"Lists\";");
    assert_eq!(fileinto(&o), ["Lists"]);
    assert!(!o.implicit_keep);
    let o = run("require [\"fileinto\", \"copy\"]; fileinto :copy \"Lists\";");
    assert!(o.implicit_keep);
    assert!(matches!(&o.actions[0], Action::FileInto { copy: true, .. }));
}

/// RFC 5228 §2.10.3: the same mailbox twice is one delivery; `fileinto "INBOX"` is keep.
#[test]
fn duplicates_merged_and_inbox_is_keep() {
    let o = run("require \"fileinto\"; fileinto \"A\"; fileinto \"A\"; fileinto \"INBOX\"; keep;");
    assert_eq!(o.actions.len(), 2, "{:?}", o.actions);
    assert!(matches!(&o.actions[1], Action::Keep { .. }));
    assert!(!o.implicit_keep);
}

/// RFC 5228 §4.2 redirect, §4.4 discard, §3.3 stop.
#[test]
fn redirect_discard_stop() {
    let o = run("redirect \"a@example.net\"; stop; discard;");
    assert_eq!(
        o.actions,
        [Action::Redirect {
            address: "a@example.net".into(),
            copy: false,
            edited: None
        }]
    );
    assert!(!o.implicit_keep);
    let o = run("discard;");
    assert_eq!(o.actions, [Action::Discard]);
    assert!(!o.implicit_keep);
}

/// RFC 5228 §3.1 if/elsif/else; §5.3 allof, §5.2 anyof, §5.8 not.
#[test]
fn control_structure() {
    let s = "require \"fileinto\";
        if header :contains \"subject\" \"nothing\" { fileinto \"A\"; }
        elsif allof (not exists \"X-Nope\", anyof (false, true)) { fileinto \"B\"; }
        else { fileinto \"C\"; }";
    assert_eq!(fileinto(&run(s)), ["B"]);
}

/// RFC 5228 §5.7 header with the default comparator (i;ascii-casemap) and match types.
#[test]
fn header_test_match_types() {
    let t = |test: &str| !run(&format!("if {test} {{ discard; }}")).implicit_keep;
    assert!(t("header :is \"X-Spam-Score\" \"7\""));
    assert!(t("header :contains \"subject\" \"VERSION\""));
    assert!(!t(
        "header :comparator \"i;octet\" :contains \"subject\" \"VERSION\""
    ));
    assert!(t("header :matches \"subject\" \"*1.0*\""));
    assert!(t("header :matches \"subject\" \"\\\\[acme-users] *\""));
    assert!(!t("header :is \"subject\" \"version\""));
    assert!(t(
        "header :is [\"x-none\", \"cc\"] [\"a\", \"boss@example.org\"]"
    ));
}

/// RFC 5228 §5.1 address with :localpart/:domain/:all; RFC 5233 :user/:detail.
#[test]
fn address_parts() {
    let t = |test: &str| {
        !run(&format!(
            "require [\"subaddress\", \"envelope\"]; if {test} {{ discard; }}"
        ))
        .implicit_keep
    };
    assert!(t("address :is \"from\" \"sender@example.com\""));
    assert!(t("address :domain :is \"to\" \"example.net\""));
    assert!(t("address :localpart :is \"to\" \"other\""));
    assert!(!t("address :all :is \"from\" \"Some Sender\""));
    assert!(t("envelope :detail \"to\" \"box\""));
    assert!(t("envelope :user \"to\" \"me\""));
    assert!(!t("envelope :detail \"from\" \"\""));
    assert!(t("envelope :domain \"from\" \"example.com\""));
    // RFC 5231 §4.2: :count counts addresses, with or without the part.
    assert!(!t("address :detail :matches \"from\" \"*\""));
    let t2 = |test: &str| {
        !run(&format!(
            "require [\"subaddress\", \"relational\"]; if {test} {{ discard; }}"
        ))
        .implicit_keep
    };
    assert!(t2("address :detail :count \"eq\" \"from\" \"1\""));
}

/// RFC 5228 §5.9 size.
#[test]
fn size_test() {
    assert!(!run("if size :over 100 { discard; }").implicit_keep);
    assert!(run("if size :over 1M { discard; }").implicit_keep);
    assert!(!run("if size :under 1K { discard; }").implicit_keep);
}

/// RFC 5231 §4–§5 relational, with the RFC's example of numeric comparison.
#[test]
fn relational() {
    let t = |test: &str| {
        !run(&format!(
            "require [\"relational\", \"comparator-i;ascii-numeric\"]; if {test} {{ discard; }}"
        ))
        .implicit_keep
    };
    assert!(t(
        "header :value \"ge\" :comparator \"i;ascii-numeric\" \"x-spam-score\" \"5\""
    ));
    assert!(!t(
        "header :value \"gt\" :comparator \"i;ascii-numeric\" \"x-spam-score\" \"10\""
    ));
    assert!(t(
        "address :count \"eq\" :comparator \"i;ascii-numeric\" [\"to\", \"cc\"] \"3\""
    ));
    assert!(t(
        "header :count \"lt\" :comparator \"i;ascii-numeric\" \"received\" \"2\""
    ));
    assert!(t("header :value \"lt\" \"subject\" \"b\""));
}

/// RFC 5229 §3.2 match variables and §4 set with modifiers.
#[test]
fn variables_and_match_variables() {
    let s = "require [\"fileinto\", \"variables\"];
        if header :matches \"Subject\" \"[*] *\" { set :upperfirst \"list\" \"${1}\"; }
        set \"n\" \"${list}-x\";
        fileinto \"INBOX.${n}\";";
    assert_eq!(fileinto(&run(s)), ["INBOX.Acme-users-x"]);
    let s = "require [\"fileinto\", \"variables\"];
        set \"a\" \"one\"; set :length \"l\" \"${a}${a}\";
        if string :is \"${l}\" \"6\" { fileinto \"six\"; }";
    assert_eq!(fileinto(&run(s)), ["six"]);
    // §3.2: a failed match leaves the match variables as they were.
    let s = "require [\"fileinto\", \"variables\"];
        if header :matches \"Subject\" \"*fwd*\" {}
        if header :matches \"Subject\" \"nomatch*\" {}
        fileinto \"${1}\";";
    assert_eq!(fileinto(&run(s)), ["[acme-users] ["]);
}

/// RFC 5229 §5 string test with :count ignoring empty strings.
#[test]
fn string_count() {
    let s = "require [\"variables\", \"relational\", \"comparator-i;ascii-numeric\"];
        if string :count \"eq\" :comparator \"i;ascii-numeric\" [\"a\", \"\", \"b\"] \"2\" { discard; }";
    assert!(!run(s).implicit_keep);
}

/// RFC 5232 §3–§5: flags on keep/fileinto, the internal variable, hasflag, implicit keep.
#[test]
fn imap4flags() {
    let s = "require [\"imap4flags\", \"fileinto\"];
        setflag \"\\\\seen\"; addflag [\"$Label1\", \"\\\\Flagged\"]; removeflag \"\\\\flagged\";
        if hasflag :contains \"label\" { fileinto :flags \"\\\\Answered\" \"Other\"; }
        fileinto :copy \"X\";";
    let e = compile(s, &Limits::default()).unwrap_err();
    assert!(e.message.contains("copy"), "{e}");
    let s = "require [\"imap4flags\", \"fileinto\", \"copy\"];
        setflag \"\\\\seen\"; addflag [\"$Label1\", \"\\\\Flagged\"]; removeflag \"\\\\flagged\";
        if hasflag :contains \"label\" { fileinto :copy :flags \"\\\\Answered\" \"Other\"; }
        fileinto :copy \"X\";";
    let o = run(s);
    assert_eq!(
        o.actions[0],
        Action::FileInto {
            mailbox: "Other".into(),
            flags: vec!["\\Answered".into()],
            copy: true,
            create: false,
            edited: None
        }
    );
    assert!(
        matches!(&o.actions[1], Action::FileInto { flags, .. } if flags == &["\\Seen", "$Label1"])
    );
    assert!(o.implicit_keep);
    assert_eq!(o.implicit_keep_flags, ["\\Seen", "$Label1"]);
}

/// RFC 5232 §3 with a named variable.
#[test]
fn imap4flags_variable() {
    let s = "require [\"imap4flags\", \"variables\", \"fileinto\"];
        addflag \"f\" \"a b\"; addflag \"f\" \"c\"; removeflag \"f\" \"b\";
        fileinto \"${f}\";";
    assert_eq!(fileinto(&run(s)), ["a c"]);
}

/// RFC 5429 §2: reject cancels the implicit keep; with keep it is an error that keeps.
#[test]
fn reject_and_conflicts() {
    let o = run("require \"reject\"; reject \"go away\";");
    assert_eq!(
        o.actions,
        [Action::Reject {
            reason: "go away".into(),
            extended: false
        }]
    );
    assert!(!o.implicit_keep);
    let o = run("require [\"reject\", \"fileinto\"]; fileinto \"A\"; reject \"no\";");
    assert!(o.error.is_some());
    assert!(o.actions.is_empty());
    assert!(o.implicit_keep);
    let o = run("require \"ereject\"; ereject \"no\"; discard;");
    assert!(o.error.is_none());
}

/// Limits: too many redirects or actions fail safely into implicit keep.
#[test]
fn limits_fail_safe() {
    let o = run("redirect \"a@x.org\"; redirect \"b@x.org\"; redirect \"c@x.org\"; redirect \"d@x.org\"; redirect \"e@x.org\";");
    let e = o.error.expect("too many redirects");
    assert_eq!(
        e.message,
        "number of redirect actions exceeds policy limit (5 > 4)"
    );
    assert_eq!(e.line, 1);
    assert!(o.implicit_keep && o.actions.is_empty());
    let o = run("redirect \"a@x.org\"; redirect \"a@X.org\";");
    assert_eq!(o.actions.len(), 1);
    let big = "x".repeat(Limits::default().max_script_bytes + 1);
    assert!(compile(&big, &Limits::default())
        .unwrap_err()
        .message
        .contains("too large"));
}

/// RFC 5490 §3: mailboxexists and fileinto :create.
#[test]
fn mailbox_extension() {
    let mut host = TestHost::default();
    host.mailboxes.insert("Exists".into());
    let s = "require [\"mailbox\", \"fileinto\"];
        if mailboxexists \"Exists\" { fileinto :create \"New\"; }
        if mailboxexists [\"Exists\", \"Nope\"] { fileinto \"Wrong\"; }";
    let o = run_on(s, MESSAGE, &mut host);
    assert_eq!(fileinto(&o), ["New"]);
    assert!(matches!(
        &o.actions[0],
        Action::FileInto { create: true, .. }
    ));
}

/// draft-ietf-sieve-regex §3: match variables from groups; a bad constant regex fails to
/// compile.
#[test]
fn regex_match() {
    let s = "require [\"regex\", \"variables\", \"fileinto\"];
        if header :regex \"list-id\" \"<([a-z-]+)\\\\.lists\" { fileinto \"${1}\"; }";
    assert_eq!(fileinto(&run(s)), ["acme-users"]);
    assert!(
        compile_error("require \"regex\"; if header :regex \"x\" \"(\" {}")
            .contains("regular expression")
    );
}

/// RFC 6609: include, :once, return, global variables, loops, :optional.
#[test]
fn include() {
    let mut host = TestHost::default();
    host.scripts.insert(
        "lib".into(),
        "require [\"include\", \"variables\", \"fileinto\"]; global \"box\"; fileinto \"${box}\"; return; fileinto \"never\";".into(),
    );
    host.scripts.insert(
        "global/g".into(),
        "require \"fileinto\"; fileinto \"G\";".into(),
    );
    host.scripts.insert(
        "loop".into(),
        "require \"include\"; include \"loop\";".into(),
    );
    let s = "require [\"include\", \"variables\"]; global \"box\"; set \"box\" \"Shared\";
        include \"lib\"; include :once \"lib\"; include :global \"g\"; include :optional \"none\";";
    let o = run_on(s, MESSAGE, &mut host);
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(fileinto(&o), ["Shared", "G"]);
    let o = run_on("require \"include\"; include \"loop\";", MESSAGE, &mut host);
    assert!(o.error.unwrap().message.contains("loop"));
    let o = run_on("require \"include\"; include \"none\";", MESSAGE, &mut host);
    assert!(o.error.is_some());
}

/// RFC 7352 §3: the duplicate test and its marks.
#[test]
fn duplicate() {
    let mut host = TestHost::default();
    // §3: an id met earlier in the same run is not a duplicate; one mark is recorded.
    let o = run_on(
        "require \"duplicate\"; if duplicate { discard; } if duplicate { discard; }",
        MESSAGE,
        &mut host,
    );
    assert!(o.implicit_keep);
    assert_eq!(o.duplicate_marks.len(), 1);
    let o = run_on(
        "require \"duplicate\"; if duplicate { discard; }",
        MESSAGE,
        &mut host,
    );
    assert!(o.implicit_keep);
    assert_eq!(o.duplicate_marks[0].id, "<abc@example.com>");
    host.seen
        .insert((String::new(), "<abc@example.com>".into()));
    let o = run_on(
        "require \"duplicate\"; if duplicate { discard; }",
        MESSAGE,
        &mut host,
    );
    assert!(!o.implicit_keep);
    assert!(o.duplicate_marks.is_empty());
    let o = run_on(
        "require \"duplicate\"; if duplicate :handle \"h\" :uniqueid \"u\" :seconds 60 { discard; }",
        MESSAGE,
        &mut host,
    );
    assert_eq!(o.duplicate_marks[0].period, 60);
    assert_eq!(o.duplicate_marks[0].handle, "h");
    // Pigeonhole's periods: 12 hours by default, 2 days at most.
    let o = run("require \"duplicate\"; if duplicate { discard; }");
    assert_eq!(o.duplicate_marks[0].period, 12 * 3600);
    let o = run("require \"duplicate\"; if duplicate :seconds 9999999 { discard; }");
    assert_eq!(o.duplicate_marks[0].period, 2 * 86_400);
}

/// RFC 5260 §6: :index and :last.
#[test]
fn index() {
    let msg = "Received: first\r\nReceived: second\r\nReceived: third\r\n\r\nbody\r\n";
    let t = |test: &str| {
        !run_on(
            &format!("require \"index\"; if {test} {{ discard; }}"),
            msg,
            &mut TestHost::default(),
        )
        .implicit_keep
    };
    assert!(t("header :index 2 \"received\" \"second\""));
    assert!(t("header :index 1 :last \"received\" \"third\""));
    assert!(!t("header :index 1 \"received\" \"third\""));
}

/// RFC 5228 §2.4.2.4 encoded-character.
#[test]
fn encoded_character() {
    let s =
        "require [\"encoded-character\", \"fileinto\"]; fileinto \"${hex:41 42}${unicode:43}\";";
    assert_eq!(fileinto(&run(s)), ["ABC"]);
}

/// RFC 5228 §3.2 and Pigeonhole's errors: require first, unknown names, missing requires.
#[test]
fn compile_errors() {
    assert_eq!(compile_error("foo;"), "unknown command 'foo'");
    assert_eq!(
        compile_error("keep;\nfileinto \"x\";"),
        "unknown command 'fileinto' (it requires the 'fileinto' extension)"
    );
    assert!(compile_error("fileinto \"x\";").contains("'fileinto' extension"));
    assert!(compile_error("require \"nonsense\";").contains("unknown Sieve capability `nonsense'"));
    assert!(compile_error("keep; require \"fileinto\";").contains("beginning of the file"));
    assert!(compile_error("require \"FILEINTO\";").contains("unknown Sieve capability"));
    assert!(
        compile_error("require \"envelope\"; if envelope :all \"auth\" \"x\" {}")
            .contains("non-address envelope part 'auth'")
    );
    assert!(compile_error("if bogus { }").contains("unknown test 'bogus'"));
    assert!(compile_error("if header :contains \"a\" { }").contains("string list"));
    assert!(compile_error("keep :bogus;").contains("unknown tagged argument ':bogus'"));
    assert!(
        compile_error("if header :comparator \"i;nope\" \"a\" \"b\" {}")
            .contains("unknown comparator")
    );
    assert!(compile_error("elsif true {}").contains("must follow"));
    assert!(compile_error("redirect \"not an address\";").contains("invalid"));
    assert!(compile_error("if address \"subject\" \"x\" {}")
        .contains("not allowed for the address test"));
    assert!(compile_error("if envelope \"from\" \"x\" {}").contains("'envelope' extension"));
    assert!(
        compile_error("require \"envelope\"; if envelope \"bogus\" \"x\" {}")
            .contains("envelope part")
    );
    assert!(
        compile_error("require \"variables\"; set :lower :upper \"a\" \"b\";")
            .contains("precedence")
    );
    assert!(
        compile_error("if header :value \"gt\" \"a\" \"b\" {}").contains("'relational' extension")
    );
    let e = compile("keep;\nif true {\n  stop\n}", &Limits::default()).unwrap_err();
    assert_eq!(
        (e.line, e.message.contains("expected end of command ';'")),
        (4, true),
        "{e:?}"
    );
}

/// RFC 5230 §4.1 / RFC 6131 §2: the site's default period and bounds come from [`Limits`].
#[test]
fn vacation_periods_from_limits() {
    let personal = MESSAGE.replace("List-Id", "X-Not-List");
    let limits = Limits {
        vacation_min_period: 60,
        vacation_default_period: 3600,
        vacation_max_period: 10 * 86_400,
        ..Limits::default()
    };
    let mut ctx = context();
    ctx.limits = limits.clone();
    for (args, period) in [
        ("", 3600),
        (":seconds 10", 60),
        (":seconds 120", 120),
        (":days 2", 2 * 86_400),
        (":days 100", 10 * 86_400),
    ] {
        let s = format!("require \"vacation-seconds\"; vacation {args} \"x\";");
        let script = compile(&s, &limits).unwrap();
        let o =
            postern_sieve::execute(&script, personal.as_bytes(), &ctx, &mut TestHost::default());
        assert!(
            matches!(&o.actions[..], [Action::Vacation(v)] if v.period == period),
            "{args}: {:?}",
            o.actions
        );
    }
    // Pigeonhole's defaults: 7 days, at least 1 day, no maximum.
    let d = Limits::default();
    assert_eq!(d.vacation_period(None), 7 * 86_400);
    assert_eq!(d.vacation_period(Some(1)), 86_400);
    assert_eq!(d.vacation_period(Some(400 * 86_400)), 400 * 86_400);
    // A maximum below the minimum counts as the minimum.
    let odd = Limits {
        vacation_min_period: 100,
        vacation_default_period: 100,
        vacation_max_period: 10,
        ..Limits::default()
    };
    assert_eq!(odd.vacation_period(Some(5000)), 100);
}

/// RFC 5230 §4: a reply is due for personal mail; the tracker and the §4.5–§4.6 rules stop it.
#[test]
fn vacation() {
    let s = "require \"vacation\"; vacation :days 3 :subject \"Away\" \"I am away\";";
    // RFC 3834 §2: no reply to list mail (MESSAGE has a List-Id).
    assert!(run(s).actions.is_empty());
    let personal = MESSAGE.replace("List-Id", "X-Not-List");
    let o = run_on(s, &personal, &mut TestHost::default());
    let Action::Vacation(v) = &o.actions[0] else {
        panic!("{:?}", o.actions)
    };
    assert_eq!(v.to, "sender@example.com");
    assert_eq!(v.subject.as_deref(), Some("Away"));
    assert_eq!(v.period, 3 * 86_400);
    // Pigeonhole's periods: at least a day (:seconds too), no upper bound.
    for (args, period) in [
        (":days 0", 86_400),
        (":seconds 10", 86_400),
        (":days 100", 8_640_000),
    ] {
        let s = format!("require \"vacation-seconds\"; vacation {args} \"x\";");
        let o = run_on(&s, &personal, &mut TestHost::default());
        assert!(
            matches!(&o.actions[..], [Action::Vacation(v)] if v.period == period),
            "{args}"
        );
    }
    assert!(
        o.implicit_keep,
        "vacation does not cancel the implicit keep"
    );
    let mut host = TestHost::default();
    host.replied
        .insert((v.handle.clone(), "sender@example.com".into()));
    assert!(run_on(s, &personal, &mut host).actions.is_empty());
    let auto = personal.replace("X-Spam-Score: 7", "Auto-Submitted: auto-replied");
    assert!(run_on(s, &auto, &mut TestHost::default())
        .actions
        .is_empty());
    // RFC 5230 §4.2: the default handle depends on the reason.
    let other = run_on(
        "require \"vacation\"; vacation :days 3 :subject \"Away\" \"Other text\";",
        &personal,
        &mut TestHost::default(),
    );
    let Action::Vacation(w) = &other.actions[0] else {
        panic!()
    };
    assert_ne!(v.handle, w.handle);
    // RFC 5429 §2.1: reject with vacation is an error.
    let o = run_on(
        "require [\"vacation\", \"reject\"]; vacation \"x\"; reject \"y\";",
        &personal,
        &mut TestHost::default(),
    );
    assert!(o.error.is_some() && o.implicit_keep);
}

/// RFC 5293 §4–§5, §7: addheader/deleteheader; tests see the edits; Received cannot be
/// deleted, protected fields can be added (as in Pigeonhole).
#[test]
fn editheader() {
    let s = "require [\"editheader\", \"fileinto\"];
        addheader \"X-Filtered\" \"yes\";
        deleteheader :contains \"x-spam-score\" \"7\";
        deleteheader \"received\";
        addheader :last \"Auto-Submitted\" \"no\";
        if allof (header :is \"x-filtered\" \"yes\", not exists \"x-spam-score\", exists \"received\") {
            fileinto \"Edited\";
        }";
    let o = run(s);
    let Action::FileInto {
        mailbox, edited, ..
    } = &o.actions[0]
    else {
        panic!("{:?}", o)
    };
    assert_eq!(mailbox, "Edited");
    let edited = String::from_utf8_lossy(edited.as_deref().unwrap()).into_owned();
    assert!(edited.starts_with("X-Filtered: yes\r\n"), "{edited}");
    assert!(!edited.contains("X-Spam-Score"));
    assert!(
        edited.contains("Auto-Submitted: no\r\n"),
        "adding is allowed: {edited}"
    );
    // RFC 5293 §5: deleteheader has its own :index, without the index extension.
    let msg = "X-M: one\r\nX-M: two\r\n\r\nb\r\n";
    let o = run_on(
        "require [\"editheader\"]; deleteheader :index 1 \"x-m\"; if header :is \"x-m\" \"one\" { discard; }",
        msg,
        &mut TestHost::default(),
    );
    assert!(o.implicit_keep, "{o:?}");
}

/// RFC 5228 §2.10.3 as Pigeonhole's sieve-test resolves duplicates: the later store's flags
/// replace the earlier ones, the duplicate does not cancel the implicit keep, and
/// `fileinto :copy "INBOX"` leaves the implicit keep beside the explicit keep.
#[test]
fn duplicate_stores_as_pigeonhole() {
    let o = run("require [\"fileinto\", \"imap4flags\"]; fileinto :flags \"a\" \"X\"; fileinto :flags \"b\" \"X\";");
    assert!(matches!(&o.actions[..], [Action::FileInto { flags, .. }] if flags == &["b"]));
    let o = run("require [\"fileinto\", \"copy\"]; fileinto :copy \"X\"; fileinto \"X\";");
    assert!(matches!(
        &o.actions[..],
        [Action::FileInto { copy: true, .. }]
    ));
    assert!(o.implicit_keep);
    let o = run("require [\"fileinto\", \"copy\"]; fileinto :copy \"INBOX\";");
    assert!(matches!(&o.actions[..], [Action::Keep { .. }]));
    assert!(o.implicit_keep);
    // Pigeonhole's conflict wording, at the line of the second action.
    let o = run("require \"reject\";\nreject \"no\";\nkeep;");
    let e = o.error.unwrap();
    assert_eq!(e.line, 3);
    assert!(
        e.message
            .contains("the store action (line 3) tries to deliver"),
        "{e:?}"
    );
}

/// RFC 5435 §3, §5–§6 and RFC 5436: notify, valid_notify_method, notify_method_capability.
#[test]
fn enotify() {
    let s = "require [\"enotify\", \"variables\"];
        if valid_notify_method \"mailto:me@example.org\" {
            set :encodeurl \"s\" \"New mail & more\";
            notify :importance \"1\" :message \"hi\" \"mailto:me@example.org?subject=${s}\";
        }
        if notify_method_capability \"mailto:me@example.org\" \"online\" \"maybe\" {
            notify \"mailto:me@example.org?subject=${s}\";
        }";
    let o = run(s);
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(
        o.actions.len(),
        1,
        "the same notification is sent once: {:?}",
        o.actions
    );
    let Action::Notify(n) = &o.actions[0] else {
        panic!()
    };
    assert_eq!(
        n.method,
        "mailto:me@example.org?subject=New%20mail%20%26%20more"
    );
    assert_eq!(n.importance, 1);
    assert_eq!(n.message.as_deref(), Some("hi"));
    assert!(o.implicit_keep);
    assert!(
        compile_error("require \"enotify\"; notify \"xmpp:me@example.org\";")
            .contains("notify method")
    );
}

/// RFC 5228 §2.7.4 as Pigeonhole reads it: a field with no address in it (an empty group) is
/// seen whole by `:all`; RFC 5229 §3.2 wildcards as Pigeonhole assigns them.
#[test]
fn address_fallback_and_wildcards() {
    let msg = "To: a@x.org, b@y.org\r\nCc: undisclosed-recipients:;\r\nSubject: hello\r\n\r\nb\r\n";
    let s = "require [\"fileinto\", \"variables\"];
        if address :matches :all \"cc\" \"*\" { fileinto \"[${1}]\"; }
        if address :domain :matches \"cc\" \"*\" { fileinto \"never\"; }
        if header :matches \"subject\" \"?*?*\" { fileinto \"${1}|${2}|${3}|${4}\"; }";
    let o = run_on(s, msg, &mut TestHost::default());
    let boxes: Vec<_> = o
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::FileInto { mailbox, .. } => Some(mailbox.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(boxes, ["[undisclosed-recipients:;]", "h||e|llo"]);
}

/// RFC 5260 §4 date on a repeated field: without :index only the first occurrence counts (as
/// in Pigeonhole); with :index (RFC 5260 §6) the chosen one.
#[test]
fn date_on_repeated_fields() {
    let msg = "Received: by a; Thu, 03 Dec 2026 10:00:03 +0100\r\n\
        Received: by b; Thu, 03 Dec 2026 03:59:59 -0500\r\n\r\nbody\r\n";
    let t = |test: &str| {
        !run_on(
            &format!("require [\"date\", \"index\"]; if {test} {{ discard; }}"),
            msg,
            &mut TestHost::default(),
        )
        .implicit_keep
    };
    assert!(t("date :zone \"+0000\" \"received\" \"hour\" \"09\""));
    assert!(!t("date :zone \"+0000\" \"received\" \"hour\" \"08\""));
    assert!(t(
        "date :index 1 :last :zone \"+0000\" \"received\" \"hour\" \"08\""
    ));
    assert!(t("date :originalzone \"received\" \"zone\" \"+0100\""));
}

/// RFC 6131 §2: requiring vacation-seconds enables vacation.
#[test]
fn vacation_seconds_implies_vacation() {
    assert!(compile(
        "require \"vacation-seconds\"; vacation :seconds 3600 \"x\";",
        &Limits::default()
    )
    .is_ok());
}

/// Pigeonhole's words for tags of extensions not required, unknown tags where a positional
/// argument was due, and a forgotten semicolon.
#[test]
fn compile_errors_in_pigeonhole_words() {
    assert_eq!(
        compile_error("require \"fileinto\";\nfileinto :copy \"x\";"),
        "unknown tagged argument ':copy' (it requires the 'copy' extension)"
    );
    assert_eq!(
        compile_error("require \"date\"; if currentdate :originalzone \"year\" \"2026\" {}"),
        "unknown tagged argument ':originalzone' for the currentdate test"
    );
    assert_eq!(
        compile_error("keep\nstop;"),
        "missing semicolon ';' after keep command"
    );
}

/// An oversized addheader value does not compile, or (built from variables) fails the run
/// safely: the message is kept as it came.
#[test]
fn addheader_size_limit() {
    let big = "x".repeat(3000);
    let constant = format!("require \"editheader\"; addheader \"X-Big\" \"{big}\";");
    assert!(compile_error(&constant).contains("too large"));
    let half = "y".repeat(1500);
    let o = run(&format!(
        "require [\"editheader\", \"variables\"]; set \"v\" \"{half}\"; addheader \"X-Big\" \"${{v}}${{v}}\";"
    ));
    assert!(o.error.unwrap().message.contains("too large"));
    assert!(o.implicit_keep && o.implicit_keep_edited.is_none());
}

/// `max_actions`: one action too many fails the run into the implicit keep.
#[test]
fn action_limit() {
    let mut script = String::from("require \"fileinto\";\n");
    for i in 0..33 {
        script.push_str(&format!("fileinto \"box{i}\";\n"));
    }
    let o = run(&script);
    let e = o.error.expect("too many actions");
    assert_eq!(e.line, 34);
    assert_eq!(
        e.message,
        "total number of actions exceeds policy limit (33 > 32)"
    );
    assert!(o.actions.is_empty() && o.implicit_keep);
}

/// RFC 6609 §3.2: nesting beyond `max_include_depth` fails safely; `stop` in an included
/// script ends the whole run (§3.3: only `return` is local).
#[test]
fn include_depth_and_stop() {
    let mut host = TestHost::default();
    for i in 0..12 {
        host.scripts.insert(
            format!("s{i}"),
            format!("require \"include\"; include \"s{}\";", i + 1),
        );
    }
    host.scripts.insert("s12".into(), "keep;".into());
    let o = run_on("require \"include\"; include \"s0\";", MESSAGE, &mut host);
    assert!(o.error.unwrap().message.contains("nesting too deep"));
    host.scripts.insert(
        "stopper".into(),
        "require \"fileinto\"; fileinto \"A\"; stop;".into(),
    );
    let o = run_on(
        "require [\"include\", \"fileinto\"]; include \"stopper\"; fileinto \"B\";",
        MESSAGE,
        &mut host,
    );
    assert_eq!(fileinto(&o), ["A"]);
}
