//! Scripts come from users (ManageSieve, files): the parser, compiler and interpreter must
//! never panic, whatever the text, and a run must always end in a safe outcome.

mod common;

use common::*;
use postern_sieve::{compile, execute, Limits};
use proptest::prelude::*;

/// Fragments of real Sieve, so random scripts get past the lexer often.
const PIECES: &[&str] = &[
    "require [\"fileinto\", \"variables\", \"imap4flags\", \"relational\", \"regex\", \"body\", \"editheader\", \"date\", \"index\", \"vacation\", \"enotify\", \"include\", \"duplicate\", \"subaddress\", \"envelope\", \"copy\", \"mailbox\", \"reject\", \"encoded-character\", \"comparator-i;ascii-numeric\"];",
    "if ", "elsif ", "else ", "{", "}", "(", ")", "[", "]", ",", ";", " ",
    "header ", "address ", "envelope ", "exists ", "size ", "not ", "anyof ", "allof ",
    "true", "false", "string ", "hasflag ", "body ", "date ", "currentdate ", "duplicate ",
    ":is ", ":contains ", ":matches ", ":regex ", ":value \"gt\" ", ":count \"eq\" ",
    ":comparator \"i;ascii-numeric\" ", ":over ", ":under ", ":index 1 ", ":last ",
    ":localpart ", ":domain ", ":user ", ":detail ", ":raw ", ":text ", ":copy ", ":flags ",
    "\"subject\" ", "\"from\" ", "\"to\" ", "\"*a?b*\" ", "\"${1}\" ", "\"${x}\" ",
    "\"(a|b)*\" ", "\"\\\\Seen\" ", "\"hour\" ", "\"${hex:41}\" ", "10K ", "0 ",
    "keep", "discard", "stop", "fileinto \"X\"", "redirect \"a@b.org\"", "reject \"no\"",
    "set \"x\" \"${1}y\"", "setflag \"\\\\Seen\"", "addheader \"X-A\" \"b\"",
    "deleteheader \"x-spam-score\"", "vacation \"away\"", "notify \"mailto:a@b.org\"",
    "include \"lib\"", "return", "text:\r\nline\r\n.\r\n", "# c\n", "/* c */",
];

fn script() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any text: compile answers, with a position inside the script on error.
    #[test]
    fn compile_never_panics(source in "\\PC{0,200}") {
        if let Err(e) = compile(&source, &Limits::default()) {
            prop_assert!(e.line >= 1 && e.column >= 1);
            prop_assert!(e.line as usize <= source.lines().count().max(1) + 1);
        }
    }

    /// Sieve-shaped text: what compiles runs to an outcome that loses nothing.
    #[test]
    fn runs_end_safely(source in script()) {
        if let Ok(s) = compile(&source, &Limits::default()) {
            let mut host = TestHost::default();
            host.scripts.insert("lib".into(), "keep;".into());
            let o = execute(&s, MESSAGE.as_bytes(), &context(), &mut host);
            if o.error.is_some() {
                prop_assert!(o.actions.is_empty() && o.implicit_keep);
            }
            prop_assert!(o.actions.len() <= Limits::default().max_actions);
        }
    }
}

/// RFC 5229 §3 allows a size limit, and one is needed: doubling a variable 60 times would
/// otherwise take 2^60 bytes.
#[test]
fn variables_cannot_grow_without_bound() {
    let mut script = String::from("require [\"variables\", \"fileinto\"]; set \"x\" \"ab\";\n");
    for _ in 0..60 {
        script.push_str("set \"x\" \"${x}${x}\";\n");
    }
    script.push_str("set :length \"n\" \"${x}\"; fileinto \"${n}\";");
    let o = run(&script);
    assert!(
        matches!(&o.actions[..], [postern_sieve::Action::FileInto { mailbox, .. }] if mailbox == "4000")
    );
}
