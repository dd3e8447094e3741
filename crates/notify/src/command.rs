//! Command hooks: a program executed directly (`execve`, never `sh -c`, so a subject such as
//! `$(rm -rf ~); x` reaches it as plain text), with
//!
//! - a clean environment: `PATH` and the event (`POSTERN_ACCOUNT`, `POSTERN_MAILBOX`,
//!   `POSTERN_SENDER` (empty for `<>`), `POSTERN_SUBJECT` (decoded, empty when absent),
//!   `POSTERN_UID`, `POSTERN_SIZE`, `POSTERN_PATH` (empty when the store has no file));
//! - stdin from /dev/null, the working directory `/`, its own process group;
//! - stdout and stderr captured (the first line is logged when it fails);
//! - a timeout, after which its whole process group is killed (SIGKILL).
//!
//! It runs as the server's user (serve has dropped root before any mail is delivered).

use crate::Event;
use postern_config::NotifyCommand;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The `PATH` a hook gets (the other variables are removed).
pub const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Bytes of each output stream kept; the rest is read and discarded.
const OUTPUT_KEPT: usize = 8 * 1024;

/// Longest environment value passed (the subject is cut at a character boundary).
const MAX_VALUE: usize = 4096;

/// One configured command.
#[derive(Clone, Debug)]
pub struct CommandHook {
    /// The program (absolute path).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The accounts it runs for (empty: all).
    pub accounts: Vec<String>,
    /// How long it may run.
    pub timeout: Duration,
}

impl CommandHook {
    /// From `[[notify.command]]`.
    pub fn from_config(c: &NotifyCommand) -> CommandHook {
        CommandHook {
            program: c.program.clone(),
            args: c.args.clone(),
            accounts: c.accounts.clone(),
            timeout: Duration::from_secs(c.timeout_secs),
        }
    }

    /// Runs the program for `event`; `Ok` with a note when it exits with status 0, else why not.
    pub async fn run(&self, event: &Event) -> Result<String, String> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .env("PATH", HOOK_PATH)
            .envs(environment(event))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
        let pid = child.id();
        let stdout = tokio::spawn(read_kept(child.stdout.take()));
        let stderr = tokio::spawn(read_kept(child.stderr.take()));
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return Err(format!("waiting for it: {e}")),
            Err(_) => {
                if let Some(pid) = pid {
                    kill_group(pid);
                }
                let _ = child.wait().await;
                stdout.abort();
                stderr.abort();
                return Err(format!(
                    "still running after {} s: its process group was killed",
                    self.timeout.as_secs()
                ));
            }
        };
        // A process the hook left in the background may hold the pipes open: wait a little
        // for the output, not for it.
        let grace = Duration::from_secs(2);
        let out = tokio::time::timeout(grace, stdout)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let err = tokio::time::timeout(grace, stderr)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        if status.success() {
            Ok("exit status 0".into())
        } else {
            let said = first_line(&err)
                .or_else(|| first_line(&out))
                .map(|l| format!(": {l}"))
                .unwrap_or_default();
            Err(format!("{status}{said}"))
        }
    }
}

/// The event as environment variables.
pub fn environment(event: &Event) -> Vec<(&'static str, String)> {
    let m = &event.mail;
    vec![
        ("POSTERN_ACCOUNT", value(&m.account)),
        ("POSTERN_MAILBOX", value(&m.mailbox)),
        (
            "POSTERN_SENDER",
            value(m.sender.as_deref().unwrap_or_default()),
        ),
        (
            "POSTERN_SUBJECT",
            value(m.subject.as_deref().unwrap_or_default()),
        ),
        ("POSTERN_UID", m.uid.to_string()),
        ("POSTERN_SIZE", m.size.to_string()),
        (
            "POSTERN_PATH",
            m.path
                .as_ref()
                .map(|p| value(&p.to_string_lossy()))
                .unwrap_or_default(),
        ),
    ]
}

/// A value safe in an environment variable and a log line: control characters (NUL, line
/// ends, escapes) become spaces; at most [`MAX_VALUE`] bytes.
fn value(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > MAX_VALUE {
        let mut end = MAX_VALUE;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// Reads a stream to its end, keeping the first [`OUTPUT_KEPT`] bytes.
async fn read_kept<R: AsyncRead + Unpin>(stream: Option<R>) -> Vec<u8> {
    let Some(mut stream) = stream else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = OUTPUT_KEPT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// The first non-empty line, trimmed, at most 200 characters.
fn first_line(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(value(&line.chars().take(200).collect::<String>()))
}

/// SIGKILL to the process group the hook leads (it was started with `process_group(0)`).
fn kill_group(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid > 0 {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_delivery::NewMail;
    use std::os::unix::fs::PermissionsExt;

    fn event(subject: &str) -> Event {
        Event::new(NewMail {
            account: "alice@example.org".into(),
            mailbox: "INBOX".into(),
            uid: 7,
            size: 1234,
            sender: None,
            subject: Some(subject.into()),
            path: Some("/var/mail/x/new/1".into()),
        })
    }

    fn script(dir: &std::path::Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn hook(program: PathBuf, args: &[&str], secs: u64) -> CommandHook {
        CommandHook {
            program,
            args: args.iter().map(|s| s.to_string()).collect(),
            accounts: Vec::new(),
            timeout: Duration::from_secs(secs),
        }
    }

    #[test]
    fn values_lose_control_characters() {
        assert_eq!(value("a\nb\0c\x1b"), "a b c ");
        let long = "é".repeat(3000);
        let v = value(&long);
        assert!(v.len() <= MAX_VALUE && v.chars().all(|c| c == 'é'));
        let env = environment(&event("hi"));
        assert!(env.contains(&("POSTERN_SENDER", String::new())));
        assert!(env.contains(&("POSTERN_UID", "7".into())));
        assert!(env.contains(&("POSTERN_PATH", "/var/mail/x/new/1".into())));
    }

    #[tokio::test]
    async fn runs_without_a_shell_in_a_clean_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env.txt");
        let program = script(
            dir.path(),
            "hook",
            "env > \"$1\"; printf '%s' \"$2\" >> \"$1\"",
        );
        let subject = "$(touch pwned); echo `id` > x";
        let h = hook(program, &[out.to_str().unwrap(), "$HOME;*"], 30);
        assert_eq!(h.run(&event(subject)).await.unwrap(), "exit status 0");
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.contains(&format!("POSTERN_SUBJECT={subject}\n")),
            "{text}"
        );
        assert!(
            text.contains("POSTERN_ACCOUNT=alice@example.org\n"),
            "{text}"
        );
        assert!(text.contains(&format!("PATH={HOOK_PATH}\n")), "{text}");
        assert!(!text.contains("HOME="), "{text}");
        // The argument is passed as written.
        assert!(text.ends_with("$HOME;*"), "{text}");
        assert!(!dir.path().join("pwned").exists());
    }

    #[tokio::test]
    async fn a_failure_reports_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let program = script(
            dir.path(),
            "fail",
            "echo; echo 'no such mailbox' >&2; exit 3",
        );
        let e = hook(program, &[], 30).run(&event("s")).await.unwrap_err();
        assert!(e.contains("3") && e.ends_with(": no such mailbox"), "{e}");
        let e = hook(dir.path().join("missing"), &[], 30)
            .run(&event("s"))
            .await
            .unwrap_err();
        assert!(e.starts_with("cannot start"), "{e}");
    }

    /// The timeout kills the whole process group, the child's children too.
    #[tokio::test]
    async fn a_hung_hook_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let program = script(
            dir.path(),
            "hang",
            &format!("sleep 300 & echo $! > {}; wait", pidfile.display()),
        );
        let e = hook(program, &[], 1).run(&event("s")).await.unwrap_err();
        assert!(e.contains("killed"), "{e}");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The killed grandchild is reaped by init; it must be gone or a zombie, never running.
        let mut gone = false;
        for _ in 0..100 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gone, "the background sleep still runs");
    }
}
