//! The two sides of the Sieve differential test brought to one shape, and the list of
//! differences kept on purpose (crates/sieve/tests/corpus/DIFFERENCES.md).
//!
//! The normal form of one run is a JSON value:
//! `{"compiles": false, "line": N}` for a script that does not compile, else
//! `{"compiles": true, "runtime_error": B, "actions": [...], "implicit_keep": B,
//! "implicit_keep_flags": [...]}`. Actions are sorted (their order is not part of what a
//! delivery does), flags lower-cased, sorted and deduplicated (IMAP flags and keywords compare
//! case-insensitively, RFC 3501 §2.3.2), `fileinto "INBOX"` is a keep, and a reject reason
//! keeps only its printable characters (sieve-test prints control characters as `?`).

use serde_json::{json, Value};

/// Flags as a set: lower case, sorted, once each.
pub(crate) fn flags<'a>(list: impl IntoIterator<Item = &'a str>) -> Value {
    let mut v: Vec<String> = list
        .into_iter()
        .filter(|f| !f.is_empty())
        .map(|f| f.to_ascii_lowercase())
        .collect();
    v.sort();
    v.dedup();
    json!(v)
}

/// A reject reason without the characters sieve-test does not print as they are.
pub(crate) fn reason(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() && *c != '?')
        .collect::<String>()
        .trim()
        .to_string()
}

fn sorted(mut actions: Vec<Value>) -> Value {
    actions.sort_by_key(|a| a.to_string());
    json!(actions)
}

fn ran(runtime_error: bool, actions: Vec<Value>, implicit_keep: bool, keep_flags: Value) -> Value {
    json!({
        "compiles": true,
        "runtime_error": runtime_error,
        "actions": sorted(actions),
        "implicit_keep": implicit_keep,
        "implicit_keep_flags": keep_flags,
    })
}

fn failed_run() -> Value {
    ran(true, Vec::new(), true, json!([]))
}

/// A script that did not compile, and the line its first error is on.
pub(crate) fn not_compiled(line: u64) -> Value {
    json!({"compiles": false, "line": line})
}

/// `postern sieve test --json` output (and whether it exited 0) in normal form.
pub(crate) fn from_postern(stdout: &str, success: bool) -> Result<Value, String> {
    let v: Value = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("postern printed no JSON object ({e}): {stdout:?}"))?;
    if !success {
        let line = v["error"]["line"]
            .as_u64()
            .ok_or_else(|| format!("postern failed without an error line: {stdout}"))?;
        return Ok(not_compiled(line));
    }
    if !v["error"].is_null() {
        return Ok(failed_run());
    }
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut actions = Vec::new();
    for a in v["actions"].as_array().into_iter().flatten() {
        let kind = a["action"].as_str().unwrap_or("");
        let norm = match kind {
            "keep" => {
                json!({"action": "keep", "flags": flags(list(&a["flags"]).iter().map(String::as_str))})
            }
            "fileinto" => json!({
                "action": "fileinto",
                "mailbox": a["mailbox"],
                "flags": flags(list(&a["flags"]).iter().map(String::as_str)),
                "copy": a["copy"],
            }),
            "redirect" => json!({"action": "redirect", "address": a["address"], "copy": a["copy"]}),
            "reject" => {
                json!({"action": "reject", "reason": reason(a["reason"].as_str().unwrap_or(""))})
            }
            "discard" => json!({"action": "discard"}),
            "vacation" => {
                let mut o = json!({"action": "vacation", "to": a["to"]});
                for key in ["subject", "from"] {
                    if !a[key].is_null() {
                        o[key] = a[key].clone();
                    }
                }
                o
            }
            "notify" => {
                let method = a["method"].as_str().unwrap_or("");
                let scheme = method.split(':').next().unwrap_or("");
                json!({"action": "notify", "method": scheme, "importance": a["importance"]})
            }
            other => json!({"action": other, "raw": a}),
        };
        actions.push(norm);
    }
    let keep_flags = list(&v["implicit_keep_flags"]);
    Ok(ran(
        false,
        actions,
        v["implicit_keep"].as_bool().unwrap_or(false),
        flags(keep_flags.iter().map(String::as_str)),
    ))
}

/// What sieve-test's dry run printed, before its vacation is confirmed by `-e`.
pub(crate) struct DryRun {
    /// The normal form (vacation actions without their `to`).
    pub value: Value,
    /// Mailboxes the run stores into, to create before the `-e` run (its stores into missing
    /// mailboxes fail, and a failed store cancels the vacation reply too).
    pub mailboxes: Vec<String>,
}

/// The first `NAME: line N: error:` of sieve-test's standard error.
pub(crate) fn pigeonhole_error_line(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|l| {
        let rest = &l[l.find(": line ")? + ": line ".len()..];
        let (n, tail) = rest.split_once(':')?;
        tail.trim_start()
            .starts_with("error")
            .then(|| n.trim().parse().ok())?
    })
}

/// Parses sieve-test's dry run ("Performed actions:" and "Implicit keep:" sections on
/// standard output; "final result: failed" on standard error when the run failed).
pub(crate) fn from_pigeonhole_dry(stdout: &str, stderr: &str, code: i32) -> Result<DryRun, String> {
    if stderr.contains("failed to compile sieve script") {
        let line = pigeonhole_error_line(stderr).unwrap_or(0);
        return Ok(DryRun {
            value: not_compiled(line),
            mailboxes: Vec::new(),
        });
    }
    if stderr.contains("final result: failed") {
        return Ok(DryRun {
            value: failed_run(),
            mailboxes: Vec::new(),
        });
    }
    if code != 0 {
        return Err(format!("sieve-test exited {code}: {stderr}"));
    }
    enum Section {
        None,
        Actions,
        Keep,
    }
    let mut section = Section::None;
    let mut actions: Vec<Value> = Vec::new();
    let mut keep: Option<Value> = None;
    let mut mailboxes = Vec::new();
    let mut in_message = false;
    // Inside an item that is not a delivery action (its detail lines are skipped too).
    let mut skipping = false;
    for line in stdout.lines() {
        if in_message {
            in_message = line != "END MESSAGE";
            continue;
        }
        if line == "START MESSAGE" {
            in_message = true;
            continue;
        }
        match line {
            "Performed actions:" => {
                section = Section::Actions;
                continue;
            }
            "Implicit keep:" => {
                section = Section::Keep;
                continue;
            }
            _ => {}
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed == "(none)" {
            continue;
        }
        if skipping && !trimmed.starts_with("* ") {
            continue;
        }
        let target = match section {
            Section::Actions => actions.last_mut(),
            Section::Keep => keep.as_mut(),
            Section::None => continue,
        };
        if let Some(item) = trimmed.strip_prefix("* ") {
            // The duplicate test's mark (RFC 7352 §3) is a side effect recorded after delivery,
            // not a delivery action: postern returns it apart (Outcome::duplicate_marks).
            skipping = item.starts_with("track duplicate");
            if skipping {
                continue;
            }
            let value = action_line(item);
            if value["action"] == "fileinto" {
                mailboxes.push(value["mailbox"].as_str().unwrap_or("").to_string());
            }
            match section {
                Section::Actions => actions.push(value),
                _ => keep = Some(value),
            }
        } else if let Some(modifier) = trimmed.strip_prefix("+ ") {
            let Some(target) = target else { continue };
            if modifier == "preserve implicit keep" {
                target["copy"] = json!(true);
            } else if let Some(list) = modifier.strip_prefix("add IMAP flags: ") {
                target["flags"] = flags(list.split(' '));
            }
        } else if let Some(detail) = trimmed.strip_prefix("=> ") {
            let Some(target) = target else { continue };
            let Some((key, value)) = detail.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            match (target["action"].as_str(), key) {
                (Some("vacation"), "subject" | "from") => target[key] = json!(value),
                (Some("notify"), "importance") => {
                    target["importance"] = json!(value.parse::<u64>().unwrap_or(0))
                }
                _ => {}
            }
        }
    }
    let (implicit_keep, keep_flags) = match keep {
        Some(k) if k["action"] == "keep" => (true, k["flags"].clone()),
        Some(other) => return Err(format!("unexpected implicit keep {other}")),
        None => (false, json!([])),
    };
    // Keep an inbox store's copy mark out: a keep has none in postern's JSON.
    for a in &mut actions {
        if a["action"] == "keep" {
            if let Some(o) = a.as_object_mut() {
                o.remove("copy");
            }
        }
    }
    Ok(DryRun {
        value: ran(false, actions, implicit_keep, keep_flags),
        mailboxes,
    })
}

/// One `* ...` line of the dry run.
fn action_line(item: &str) -> Value {
    if let Some(mailbox) = item.strip_prefix("store message in folder: ") {
        if mailbox.eq_ignore_ascii_case("INBOX") {
            return json!({"action": "keep", "flags": []});
        }
        return json!({"action": "fileinto", "mailbox": mailbox, "flags": [], "copy": false});
    }
    if let Some(addr) = item.strip_prefix("redirect message to: ") {
        let addr = addr.trim_start_matches('<').trim_end_matches('>');
        return json!({"action": "redirect", "address": addr, "copy": false});
    }
    if let Some(text) = item.strip_prefix("reject message with reason: ") {
        return json!({"action": "reject", "reason": reason(text)});
    }
    if item == "discard" {
        return json!({"action": "discard"});
    }
    if item.starts_with("send vacation message") {
        return json!({"action": "vacation"});
    }
    if let Some(rest) = item.strip_prefix("send notification with method '") {
        let scheme = rest.split(':').next().unwrap_or("");
        return json!({"action": "notify", "method": scheme, "importance": 2});
    }
    json!({"action": "unknown", "text": item})
}

/// Applies what `sieve-test -e` decided about vacation: the reply goes to the address in
/// "sent vacation response to <X>", or is dropped when no such line was logged.
pub(crate) fn confirm_vacation(value: &mut Value, exec_stderr: &str) {
    let sent_to = exec_stderr.lines().find_map(|l| {
        let rest = &l[l.find("sent vacation response to <")? + 27..];
        Some(rest[..rest.find('>')?].to_string())
    });
    let Some(actions) = value["actions"].as_array() else {
        return;
    };
    let mut kept = Vec::new();
    for a in actions {
        if a["action"] == "vacation" {
            let Some(to) = &sent_to else { continue };
            let mut a = a.clone();
            a["to"] = json!(to);
            kept.push(a);
        } else {
            kept.push(a.clone());
        }
    }
    value["actions"] = sorted(kept);
}

/// A difference kept on purpose: `- \`SCRIPT\` \`MESSAGE\` \`ENVELOPE\`: reason` in
/// DIFFERENCES.md, where each part may be `*`.
pub(crate) struct Accepted {
    pub script: String,
    pub message: String,
    pub envelope: String,
}

impl Accepted {
    /// Whether the entry names this case; a pattern ending in `*` matches by prefix.
    pub(crate) fn covers(&self, script: &str, message: &str, envelope: &str) -> bool {
        let part = |pat: &str, name: &str| match pat.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => pat == name,
        };
        part(&self.script, script) && part(&self.message, message) && part(&self.envelope, envelope)
    }
}

/// The entries of DIFFERENCES.md; an entry without a reason is refused.
pub(crate) fn accepted(text: &str) -> Result<Vec<Accepted>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("- `") else {
            continue;
        };
        let parts: Vec<&str> = rest.splitn(6, '`').collect();
        // script ` space ` message ` space ` envelope ` : reason
        if parts.len() < 6 {
            return Err(format!("DIFFERENCES.md: malformed entry: {line}"));
        }
        let reason = parts[5].trim_start_matches(':').trim();
        if reason.is_empty() {
            return Err(format!("DIFFERENCES.md: an entry needs its reason: {line}"));
        }
        out.push(Accepted {
            script: parts[0].to_string(),
            message: parts[2].to_string(),
            envelope: parts[4].to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRY: &str = "\nPerformed actions:\n\n * store message in folder: Work\n        + add IMAP flags: \\seen\n * store message in folder: INBOX\n        + preserve implicit keep\n * redirect message to: <x@y.org>\n * send vacation message:\n    => seconds : 604800\n    => subject : away\n    => handle  : x\n\nSTART MESSAGE\nI'm away\nEND MESSAGE\n\nImplicit keep:\n\n * store message in folder: INBOX\n        + add IMAP flags: $Label \\flagged\n\n";

    #[test]
    fn dry_run_is_parsed() {
        let d = from_pigeonhole_dry(DRY, "", 0).unwrap();
        assert_eq!(d.mailboxes, vec!["Work".to_string()]);
        let v = d.value;
        assert_eq!(v["implicit_keep"], true);
        assert_eq!(v["implicit_keep_flags"], json!(["$label", "\\flagged"]));
        let actions = v["actions"].as_array().unwrap();
        assert!(actions.contains(&json!({"action": "keep", "flags": []})));
        assert!(actions.contains(
            &json!({"action": "fileinto", "mailbox": "Work", "flags": ["\\seen"], "copy": false})
        ));
        assert!(actions.contains(&json!({"action": "vacation", "subject": "away"})));
    }

    #[test]
    fn vacation_follows_the_executed_run() {
        let mut v = from_pigeonhole_dry(DRY, "", 0).unwrap().value;
        let mut dropped = v.clone();
        confirm_vacation(
            &mut v,
            "info: vacation action: sent vacation response to <a@b.org>.",
        );
        assert!(v["actions"]
            .as_array()
            .unwrap()
            .contains(&json!({"action": "vacation", "to": "a@b.org", "subject": "away"})));
        confirm_vacation(
            &mut dropped,
            "vacation action: discarding vacation response",
        );
        assert!(!dropped.to_string().contains("vacation"));
    }

    #[test]
    fn compile_errors_give_their_line() {
        let err = "x: line 3: error: unknown command 'foo'.\nx: error: validation failed.\nsieve-test: Fatal: failed to compile sieve script 'x.sieve'\n";
        assert_eq!(
            from_pigeonhole_dry("", err, 89).unwrap().value,
            not_compiled(3)
        );
        assert_eq!(
            from_postern(r#"{"error": {"line": 3, "message": "m"}}"#, false).unwrap(),
            not_compiled(3)
        );
    }

    #[test]
    fn postern_inbox_fileinto_and_flags_normalise() {
        let out = r#"{"error": null, "actions": [{"action":"keep","flags":["\\Seen","\\Seen"]}],
                      "implicit_keep": false, "implicit_keep_flags": []}"#;
        let v = from_postern(out, true).unwrap();
        assert_eq!(
            v["actions"],
            json!([{"action": "keep", "flags": ["\\seen"]}])
        );
    }

    #[test]
    fn differences_need_a_reason() {
        let ok = accepted("# x\n- `a.sieve` `*` `*`: because RFC says so\n").unwrap();
        assert!(ok[0].covers("a.sieve", "m.eml", "plain"));
        assert!(!ok[0].covers("b.sieve", "m.eml", "plain"));
        let prefix = accepted("- `vacation-*` `*` `detail`: why\n").unwrap();
        assert!(prefix[0].covers("vacation-days.sieve", "m.eml", "detail"));
        assert!(!prefix[0].covers("vacation-days.sieve", "m.eml", "plain"));
        assert!(accepted("- `a.sieve` `*` `*`:\n").is_err());
    }
}
