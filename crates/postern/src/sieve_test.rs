//! `postern sieve test`: runs a Sieve script on a message without delivering it and prints the
//! actions, as Pigeonhole's `sieve-test` does, for a person or (with `--json`) for a program.
//!
//! The world the script sees is sieve-test's without a mail store: INBOX is the only mailbox,
//! `include` reads `NAME.sieve` beside the script, and there is no vacation or duplicate
//! history, so every reply that the RFC 5230 / RFC 3834 rules allow is reported as due.

use crate::cli::SieveTestArgs;
use anyhow::Context as _;
use postern_config::Config;
use postern_sieve::{Action, Context, Envelope, Host, IncludeLocation, Limits, Outcome, Script};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs the command. A script that does not compile prints its error (as JSON with `--json`)
/// and fails, so the process exits 1.
pub(crate) fn run(config: &Config, args: &SieveTestArgs) -> anyhow::Result<()> {
    let source = std::fs::read_to_string(&args.script)
        .with_context(|| format!("cannot read {}", args.script.display()))?;
    let message = std::fs::read(&args.message)
        .with_context(|| format!("cannot read {}", args.message.display()))?;
    // Pigeonhole's defaults, as sieve-test runs with (the corpus differential test compares).
    let limits = Limits::default();
    let script = match postern_sieve::compile(&source, &limits) {
        Ok(script) => script,
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    json!({"error": {"line": e.line, "message": e.message}})
                );
            }
            anyhow::bail!("{}: line {}: {}", args.script.display(), e.line, e.message);
        }
    };
    let now = now();
    let context = Context {
        envelope: Envelope {
            from: strip_brackets(&args.from).to_string(),
            to: strip_brackets(&args.to).to_string(),
            orig_to: None,
            auth: None,
        },
        recipient_delimiter: config.mail.recipient_delimiter.chars().next(),
        user_addresses: vec![strip_brackets(&args.to).to_string()],
        now,
        zone_offset_minutes: postern_delivery::sieve::local_zone_offset_minutes(now),
        limits: limits.clone(),
    };
    let dir = args
        .script
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut host = TestHost::new(dir, limits);
    let outcome = postern_sieve::execute(&script, &message, &context, &mut host);
    if args.json {
        println!("{}", to_json(&outcome));
    } else {
        print!("{}", to_text(&outcome));
    }
    Ok(())
}

/// `<a@b>` and `a@b` mean the same address on the command line.
fn strip_brackets(addr: &str) -> &str {
    let addr = addr.trim();
    addr.strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(addr)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The world as sieve-test sees it with an empty mail store.
struct TestHost {
    /// Where `include` looks for `NAME.sieve`.
    dir: PathBuf,
    limits: Limits,
    /// Included scripts compiled once per run, whatever the number of `include`s naming them.
    compiled: HashMap<String, Arc<Script>>,
}

impl TestHost {
    fn new(dir: PathBuf, limits: Limits) -> TestHost {
        TestHost {
            dir,
            limits,
            compiled: HashMap::new(),
        }
    }
}

impl Host for TestHost {
    /// RFC 5490 §3.1: with no mail store only INBOX exists (what sieve-test answers).
    fn mailbox_exists(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("INBOX")
    }

    /// RFC 6609 §3.2: `:personal` and `:global` both resolve beside the main script here;
    /// a name is a script name, never a path.
    fn include(&mut self, name: &str, _location: IncludeLocation) -> Result<Arc<Script>, String> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(format!("invalid script name '{name}'"));
        }
        if let Some(script) = self.compiled.get(name) {
            return Ok(script.clone());
        }
        let path = self.dir.join(format!("{name}.sieve"));
        let source = std::fs::read_to_string(&path)
            .map_err(|e| format!("included script '{name}' cannot be read: {e}"))?;
        let script = postern_sieve::compile(&source, &self.limits)
            .map_err(|e| format!("included script '{name}': line {}: {}", e.line, e.message))?;
        let script = Arc::new(script);
        self.compiled.insert(name.to_string(), script.clone());
        Ok(script)
    }

    /// No duplicate history: every message is new (RFC 7352 §3).
    fn duplicate_seen(&self, _handle: &str, _id: &str, _period: u64) -> bool {
        false
    }

    /// No vacation history: no reply was sent before (RFC 5230 §4.2).
    fn vacation_replied(&self, _handle: &str, _sender: &str, _period: u64) -> bool {
        false
    }
}

/// `fileinto "INBOX"` stores where `keep` does, so it is reported as a keep.
fn is_inbox(mailbox: &str) -> bool {
    mailbox.eq_ignore_ascii_case("INBOX")
}

/// The JSON object of issue #14: `{"error", "actions", "implicit_keep", "implicit_keep_flags"}`.
/// A run-time error is reported in `error` (with the implicit keep it fell back to).
pub(crate) fn to_json(outcome: &Outcome) -> Value {
    let actions: Vec<Value> = outcome.actions.iter().map(action_json).collect();
    let error = match &outcome.error {
        Some(e) => json!({"line": e.line, "message": e.message}),
        None => Value::Null,
    };
    json!({
        "error": error,
        "actions": actions,
        "implicit_keep": outcome.implicit_keep,
        "implicit_keep_flags": outcome.implicit_keep_flags,
    })
}

fn action_json(action: &Action) -> Value {
    match action {
        Action::Keep { flags, .. } => json!({"action": "keep", "flags": flags}),
        Action::FileInto { mailbox, flags, .. } if is_inbox(mailbox) => {
            json!({"action": "keep", "flags": flags})
        }
        Action::FileInto {
            mailbox,
            flags,
            copy,
            ..
        } => json!({"action": "fileinto", "mailbox": mailbox, "flags": flags, "copy": copy}),
        Action::Redirect { address, copy, .. } => {
            json!({"action": "redirect", "address": address, "copy": copy})
        }
        Action::Reject { reason, .. } => json!({"action": "reject", "reason": reason}),
        Action::Discard => json!({"action": "discard"}),
        Action::Vacation(v) => {
            let mut o = json!({"action": "vacation", "to": v.to});
            if let Some(subject) = &v.subject {
                o["subject"] = json!(subject);
            }
            if let Some(from) = &v.from {
                o["from"] = json!(from);
            }
            o
        }
        Action::Notify(n) => {
            let mut o = json!({"action": "notify", "method": n.method, "importance": n.importance});
            if let Some(message) = &n.message {
                o["message"] = json!(message);
            }
            o
        }
    }
}

/// The same, for a person: one line per action, then the implicit keep.
pub(crate) fn to_text(outcome: &Outcome) -> String {
    let mut out = String::new();
    if let Some(e) = &outcome.error {
        out.push_str(&format!(
            "error: line {}: {} (the message is kept in INBOX)\n",
            e.line, e.message
        ));
    }
    if outcome.actions.is_empty() {
        out.push_str("actions: none\n");
    } else {
        out.push_str("actions:\n");
    }
    for action in &outcome.actions {
        out.push_str("  ");
        out.push_str(&action_text(action));
        out.push('\n');
    }
    if outcome.implicit_keep {
        out.push_str(&format!(
            "implicit keep: store in INBOX{}\n",
            flags_text(&outcome.implicit_keep_flags)
        ));
    } else {
        out.push_str("implicit keep: cancelled\n");
    }
    out
}

fn flags_text(flags: &[String]) -> String {
    if flags.is_empty() {
        String::new()
    } else {
        format!(" with flags {}", flags.join(" "))
    }
}

fn action_text(action: &Action) -> String {
    match action {
        Action::Keep { flags, .. } => format!("keep: store in INBOX{}", flags_text(flags)),
        Action::FileInto { mailbox, flags, .. } if is_inbox(mailbox) => {
            format!("keep: store in INBOX{}", flags_text(flags))
        }
        Action::FileInto {
            mailbox,
            flags,
            copy,
            create,
            ..
        } => format!(
            "fileinto: store in \"{mailbox}\"{}{}{}",
            flags_text(flags),
            if *create { ", creating it" } else { "" },
            if *copy { " (copy)" } else { "" }
        ),
        Action::Redirect { address, copy, .. } => format!(
            "redirect: to <{address}>{}",
            if *copy { " (copy)" } else { "" }
        ),
        Action::Reject { reason, extended } => format!(
            "{}: \"{}\"",
            if *extended { "ereject" } else { "reject" },
            reason.escape_debug()
        ),
        Action::Discard => "discard".to_string(),
        Action::Vacation(v) => {
            let mut s = format!("vacation: reply to <{}>", v.to);
            if let Some(subject) = &v.subject {
                s.push_str(&format!(", subject \"{}\"", subject.escape_debug()));
            }
            if let Some(from) = &v.from {
                s.push_str(&format!(", from {from}"));
            }
            s
        }
        Action::Notify(n) => format!("notify: {}", n.method),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_sieve::{RuntimeError, Vacation};

    fn outcome(actions: Vec<Action>, implicit_keep: bool) -> Outcome {
        Outcome {
            actions,
            implicit_keep,
            ..Outcome::default()
        }
    }

    #[test]
    fn fileinto_inbox_is_reported_as_keep() {
        let o = outcome(
            vec![Action::FileInto {
                mailbox: "inbox".into(),
                flags: vec!["\\Seen".into()],
                copy: false,
                create: false,
                edited: None,
            }],
            false,
        );
        assert_eq!(
            to_json(&o),
            json!({"error": null, "actions": [{"action": "keep", "flags": ["\\Seen"]}],
                   "implicit_keep": false, "implicit_keep_flags": []})
        );
    }

    #[test]
    fn vacation_lists_subject_and_from_only_when_given() {
        let v = Vacation {
            to: "a@b.org".into(),
            from: None,
            subject: Some("away".into()),
            reason: "gone".into(),
            mime: false,
            handle: "h".into(),
            period: 86400,
        };
        let o = outcome(vec![Action::Vacation(v)], true);
        assert_eq!(
            to_json(&o)["actions"][0],
            json!({"action": "vacation", "to": "a@b.org", "subject": "away"})
        );
    }

    #[test]
    fn runtime_error_is_reported_with_the_fallback_keep() {
        let o = Outcome {
            implicit_keep: true,
            error: Some(RuntimeError {
                line: 3,
                message: "too many redirects".into(),
            }),
            ..Outcome::default()
        };
        let j = to_json(&o);
        assert_eq!(j["error"]["line"], 3);
        assert_eq!(j["implicit_keep"], true);
        assert!(to_text(&o).contains("line 3: too many redirects"));
    }

    #[test]
    fn include_refuses_paths() {
        let mut host = TestHost::new(PathBuf::from("."), Limits::default());
        assert!(host
            .include("../etc/passwd", IncludeLocation::Personal)
            .is_err());
        assert!(host.mailbox_exists("Inbox"));
        assert!(!host.mailbox_exists("Work"));
    }
}
