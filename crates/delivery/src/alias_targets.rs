//! aliases(5) command and file targets (`|command`, `/path/file`), which only `newaliases`
//! imports and only when `[aliases] allow_commands` / `allow_files` say so.
//!
//! **Commands** run as the server's user (the `[server] user` serve dropped to), with the
//! message on standard input: `Return-Path:` and `Delivered-To:` first, then the message
//! with Unix line endings. aliases(5) commands are shell command lines, and Postfix's
//! local(8) runs them with `/bin/sh -c`; we do the same when the line has shell syntax
//! (quotes, `$`, redirections, pipes, globs ...) and otherwise execute it directly, split at
//! white space, without a shell (so, as with Postfix, a lone shell builtin such as `exit 75`
//! is "not found": write it with shell syntax). What keeps this safe: the command line is only ever the
//! admin's text from the aliases file; nothing from the message or the envelope is put into
//! it. The envelope reaches the command only in environment variables (`SENDER`,
//! `RECIPIENT`, `ORIGINAL_RECIPIENT`, `LOCAL`, `DOMAIN`, `EXTENSION`, `ALIAS`, `QUEUE_ID`)
//! in an otherwise cleared environment (plus `PATH`, `HOME`, `SHELL`, `USER`, `LOGNAME`),
//! so a script must quote them as it quotes any untrusted value. The command runs in `/`,
//! in a process group of its own that is killed as a whole when `command_timeout_secs`
//! passes. Results (Postfix's local(8) and sysexits.h): exit 0 is delivered; exit 75
//! (EX_TEMPFAIL), death by a signal, or the time limit are temporary failures (retried);
//! any other status is a permanent failure whose text is the first line the command wrote
//! on standard error (else standard output).
//!
//! **Files** get the message appended in mbox format (mboxrd): a `From sender date` line,
//! `Return-Path:` and `Delivered-To:`, the message with Unix line endings and every line
//! matching `>*From ` quoted with one more `>`, and an empty line. The file is opened
//! without following a symbolic link, must be a regular file (created 0600 when missing),
//! is locked with both fcntl(2) and flock(2) (what mutt, Python's mailbox and procmail
//! honour), fsynced before the delivery counts, and cut back to its old size when a write
//! fails. Paths must be absolute.
//!
//! An alias that expands to such targets has them performed during the delivery of the
//! alias address itself (its address targets are forwarded as usual). If one of them fails
//! temporarily the whole alias is retried later, so targets that had already succeeded may
//! see the message twice — Postfix's local(8) behaves the same way.

use postern_mail::{EnhancedCode, Status};
use postern_spool::Outcome;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::io::AsRawFd as _;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Most bytes of a command's standard output and error kept for the failure text.
const OUTPUT_LIMIT: usize = 64 * 1024;
/// How long a file delivery waits for another program's lock.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// What aliases(5) command and file targets may do (from `[aliases]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasTargets {
    /// `|command` targets are run (else they fail permanently).
    pub allow_commands: bool,
    /// `/path/file` targets are appended to (else they fail permanently).
    pub allow_files: bool,
    /// Longest a command may run before it is killed (a temporary failure).
    pub command_timeout: Duration,
}

impl Default for AliasTargets {
    fn default() -> AliasTargets {
        AliasTargets::from_config(&postern_config::Aliases::default())
    }
}

impl AliasTargets {
    /// The settings of `[aliases]`.
    pub fn from_config(c: &postern_config::Aliases) -> AliasTargets {
        AliasTargets {
            allow_commands: c.allow_commands,
            allow_files: c.allow_files,
            command_timeout: Duration::from_secs(c.command_timeout_secs),
        }
    }
}

/// The envelope of one command or file delivery.
#[derive(Debug, Clone)]
pub(crate) struct Job<'a> {
    /// The envelope sender (`None` = `<>`).
    pub sender: Option<&'a str>,
    /// The recipient being delivered (the `Delivered-To:` address).
    pub recipient: &'a str,
    /// The alias that has the target.
    pub alias: &'a str,
    /// The original recipient (ORCPT), if the queue knows one.
    pub original: Option<&'a str>,
    /// The plus-address detail of the recipient, if any.
    pub extension: Option<&'a str>,
    /// The message's queue id.
    pub queue_id: &'a str,
}

fn failed(code: (u8, u16, u16), text: String) -> Outcome {
    Outcome::Failed(Status::new(EnhancedCode::new(code.0, code.1, code.2), text))
}

fn deferred(code: (u8, u16, u16), text: String) -> Outcome {
    Outcome::Deferred(Status::new(EnhancedCode::new(code.0, code.1, code.2), text))
}

/// The message with Unix line endings (CRLF → LF), as commands and mbox files expect.
fn unix_lines(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut i = 0;
    while i < message.len() {
        if message[i] == b'\r' && message.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(message[i]);
        i += 1;
    }
    out
}

/// The trace headers of [`crate::headers::trace_headers`] with Unix line endings.
fn trace(sender: Option<&str>, recipient: &str) -> Vec<u8> {
    unix_lines(&crate::headers::trace_headers(sender, recipient))
}

/// Whether a command line needs `/bin/sh` (any shell syntax beyond words and spaces).
pub(crate) fn needs_shell(command: &str) -> bool {
    command.chars().any(|c| {
        matches!(
            c,
            '|' | '&'
                | ';'
                | '<'
                | '>'
                | '('
                | ')'
                | '$'
                | '`'
                | '\\'
                | '"'
                | '\''
                | '*'
                | '?'
                | '['
                | ']'
                | '#'
                | '~'
                | '='
                | '%'
                | '{'
                | '}'
                | '\n'
                | '\r'
        )
    })
}

/// The environment a command gets (nothing else is inherited).
fn environment(job: &Job<'_>) -> Vec<(&'static str, String)> {
    let (local, domain) = job
        .recipient
        .rsplit_once('@')
        .map_or((job.recipient, ""), |(l, d)| (l, d));
    let user = current_user();
    vec![
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
        ("SHELL", "/bin/sh".to_string()),
        ("HOME", "/".to_string()),
        ("USER", user.clone()),
        ("LOGNAME", user),
        ("SENDER", job.sender.unwrap_or("").to_string()),
        ("RECIPIENT", job.recipient.to_string()),
        (
            "ORIGINAL_RECIPIENT",
            job.original.unwrap_or(job.recipient).to_string(),
        ),
        ("LOCAL", local.to_string()),
        ("DOMAIN", domain.to_string()),
        ("EXTENSION", job.extension.unwrap_or("").to_string()),
        ("ALIAS", job.alias.to_string()),
        ("QUEUE_ID", job.queue_id.to_string()),
    ]
}

/// The name of the effective user (what the command runs as).
fn current_user() -> String {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let mut buf = vec![0u8; 4096];
    // SAFETY: pwd is plain data, filled by getpwuid_r; buf outlives the reads below.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call and buf's length is given.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return uid.to_string();
    }
    // SAFETY: pw_name points into buf, NUL-terminated by getpwuid_r.
    unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned()
}

/// Reads up to [`OUTPUT_LIMIT`] bytes and drains the rest, so the command never blocks on a
/// full pipe.
async fn collect(mut r: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// The first non-empty line of the command's diagnostics, for the failure text.
fn first_line(stderr: &[u8], stdout: &[u8]) -> String {
    for out in [stderr, stdout] {
        if let Some(line) = String::from_utf8_lossy(out)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
        {
            let line: String = line
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(300)
                .collect();
            return line;
        }
    }
    "no diagnostic output".to_string()
}

/// Pipes the message to `command` (aliases(5) `|command`); see the module documentation.
pub(crate) async fn run_command(
    settings: &AliasTargets,
    command: &str,
    job: &Job<'_>,
    message: &[u8],
) -> Result<String, Outcome> {
    let shown: String = command.chars().take(100).collect();
    if !settings.allow_commands {
        return Err(failed(
            (5, 7, 1),
            format!(
                "<{}>: command targets are turned off ([aliases] allow_commands)",
                job.alias
            ),
        ));
    }
    let command = command.trim();
    if command.is_empty() {
        return Err(failed((5, 3, 5), format!("<{}>: empty command", job.alias)));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        tracing::warn!(
            alias = job.alias,
            "running an alias command as root (set [server] user)"
        );
    }
    let mut cmd = if needs_shell(command) {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(command);
        c
    } else {
        let mut words = command.split_whitespace();
        let program = words.next().unwrap_or(command);
        let mut c = tokio::process::Command::new(program);
        c.args(words);
        c
    };
    cmd.env_clear()
        .envs(environment(job))
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(failed(
                (5, 3, 0),
                format!("<{}>: command not found: {shown}", job.alias),
            ))
        }
        Err(e) => {
            return Err(deferred(
                (4, 3, 0),
                format!("<{}>: cannot run {shown}: {e}", job.alias),
            ))
        }
    };
    let pid = child.id();
    let mut input = trace(job.sender, job.recipient);
    input.extend_from_slice(&unix_lines(message));
    let stdin = child.stdin.take();
    let writer = tokio::spawn(async move {
        if let Some(mut stdin) = stdin {
            // A command that does not read all of its input is its own business (EPIPE).
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        }
    });
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_task = tokio::spawn(async move {
        match stdout {
            Some(s) => collect(s).await,
            None => Vec::new(),
        }
    });
    let err_task = tokio::spawn(async move {
        match stderr {
            Some(s) => collect(s).await,
            None => Vec::new(),
        }
    });
    let kill_group = || {
        if let Some(pid) = pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
            // SAFETY: signals the process group the command leads (process_group(0)).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    };
    let status = match tokio::time::timeout(settings.command_timeout, child.wait()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            kill_group();
            return Err(deferred(
                (4, 3, 0),
                format!("<{}>: waiting for {shown}: {e}", job.alias),
            ));
        }
        Err(_) => {
            kill_group();
            let _ = child.wait().await;
            writer.abort();
            return Err(deferred(
                (4, 3, 0),
                format!(
                    "<{}>: command time limit ({} s) exceeded: {shown}",
                    job.alias,
                    settings.command_timeout.as_secs()
                ),
            ));
        }
    };
    let _ = writer.await;
    // Children the command left behind may hold the pipes open: do not wait for them long.
    let grace = Duration::from_secs(5);
    let stdout = tokio::time::timeout(grace, out_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let stderr = tokio::time::timeout(grace, err_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(format!("piped to {shown}")),
        (Some(75), _) => Err(deferred(
            (4, 3, 0),
            format!(
                "<{}>: command {shown} failed temporarily (exit 75): {}",
                job.alias,
                first_line(&stderr, &stdout)
            ),
        )),
        (Some(code), _) => Err(failed(
            (5, 3, 0),
            format!(
                "<{}>: command {shown} failed (exit {code}): {}",
                job.alias,
                first_line(&stderr, &stdout)
            ),
        )),
        (None, signal) => Err(deferred(
            (4, 3, 0),
            format!(
                "<{}>: command {shown} killed by signal {}",
                job.alias,
                signal.unwrap_or(0)
            ),
        )),
    }
}

/// asctime(3)-style UTC date for the mbox `From ` line: `Thu Dec  3 11:00:00 2026`.
fn from_line_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = libc::time_t::try_from(secs).unwrap_or(0);
    // SAFETY: tm is plain data that gmtime_r fills.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::gmtime_r(&t, &mut tm) }.is_null() {
        return "Thu Jan  1 00:00:00 1970".to_string();
    }
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[usize::try_from(tm.tm_wday).unwrap_or(0) % 7],
        MONTHS[usize::try_from(tm.tm_mon).unwrap_or(0) % 12],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        i64::from(tm.tm_year) + 1900
    )
}

/// One mbox entry (mboxrd): From_ line, trace headers, the quoted message, an empty line.
pub(crate) fn mbox_entry(
    sender: Option<&str>,
    recipient: &str,
    message: &[u8],
    now: i64,
) -> Vec<u8> {
    let from = match sender {
        None | Some("") => "MAILER-DAEMON",
        Some(s) => s,
    };
    // A From_ line is split at spaces by readers: keep the address one word.
    let from: String = from
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut out = format!("From {from} {}\n", from_line_date(now)).into_bytes();
    let mut body = trace(sender, recipient);
    body.extend_from_slice(&unix_lines(message));
    for line in body.split_inclusive(|&b| b == b'\n') {
        let unquoted = line.iter().position(|&b| b != b'>').unwrap_or(line.len());
        if line[unquoted..].starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// Appends the message to the mbox file `path` (aliases(5) `/path/file`); see the module
/// documentation.
pub(crate) async fn append_file(
    settings: &AliasTargets,
    path: &str,
    job: &Job<'_>,
    message: &[u8],
) -> Result<String, Outcome> {
    if !settings.allow_files {
        return Err(failed(
            (5, 7, 1),
            format!(
                "<{}>: file targets are turned off ([aliases] allow_files)",
                job.alias
            ),
        ));
    }
    if !std::path::Path::new(path).is_absolute() {
        return Err(failed(
            (5, 3, 5),
            format!(
                "<{}>: file target {path} is not an absolute path",
                job.alias
            ),
        ));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let entry = mbox_entry(job.sender, job.recipient, message, now);
    let path_owned = path.to_string();
    let alias = job.alias.to_string();
    let result = tokio::task::spawn_blocking(move || append_blocking(&path_owned, &entry))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    match result {
        Ok(()) => Ok(format!("appended to {path}")),
        Err(e) => {
            use std::io::ErrorKind as K;
            let permanent = matches!(
                e.kind(),
                K::NotFound | K::PermissionDenied | K::InvalidInput | K::IsADirectory
            ) || e.raw_os_error() == Some(libc::ELOOP);
            if permanent {
                Err(failed(
                    (5, 2, 0),
                    format!("<{alias}>: cannot deliver to file {path}: {e}"),
                ))
            } else {
                Err(deferred(
                    (4, 2, 0),
                    format!("<{alias}>: cannot deliver to file {path}: {e}"),
                ))
            }
        }
    }
}

fn append_blocking(path: &str, entry: &[u8]) -> std::io::Result<()> {
    let existed = std::fs::symlink_metadata(path).is_ok();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let fd = file.as_raw_fd();
    lock(fd)?;
    // The size under the lock: what a failed write is cut back to.
    let size = file.metadata()?.len();
    let written = file.write_all(entry).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = file.set_len(size);
        let _ = file.sync_all();
        return Err(e);
    }
    if !existed {
        // A new file's name must be durable too.
        if let Some(parent) = std::path::Path::new(path).parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    // Closing the file releases both locks.
    Ok(())
}

/// Takes an fcntl(2) write lock and an flock(2) exclusive lock on `fd`, waiting up to
/// [`LOCK_WAIT`] for other programs to let go.
fn lock(fd: std::os::unix::io::RawFd) -> std::io::Result<()> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        // SAFETY: flock is plain data; fcntl reads it.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: fd is an open descriptor and fl a valid flock.
        let posix = unsafe { libc::fcntl(fd, libc::F_SETLK, &fl) } == 0;
        if posix {
            // SAFETY: fd is an open descriptor.
            if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(());
            }
            fl.l_type = libc::F_UNLCK as libc::c_short;
            // SAFETY: as above: releases the fcntl lock before waiting.
            unsafe { libc::fcntl(fd, libc::F_SETLK, &fl) };
        }
        let err = std::io::Error::last_os_error();
        let busy = matches!(err.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES));
        if !busy && !posix {
            return Err(err);
        }
        if std::time::Instant::now() >= deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "the file stayed locked by another program",
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job<'static> {
        Job {
            sender: Some("alice@example.org"),
            recipient: "list@example.org",
            alias: "list@example.org",
            original: None,
            extension: None,
            queue_id: "ABC",
        }
    }

    fn allowed() -> AliasTargets {
        AliasTargets {
            allow_commands: true,
            allow_files: true,
            command_timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn shell_syntax_is_detected() {
        assert!(!needs_shell("/usr/bin/procmail -a foo"));
        assert!(needs_shell("cat > /tmp/x"));
        assert!(needs_shell("echo \"$SENDER\""));
    }

    #[test]
    fn mbox_entry_quotes_from_lines() {
        let m = b"Subject: s\r\n\r\nFrom here\r\n>From there\r\nplain";
        let e = mbox_entry(None, "a@b.test", m, 0);
        let text = String::from_utf8(e).unwrap();
        assert_eq!(
            text,
            "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nReturn-Path: <>\nDelivered-To: a@b.test\n\
             Subject: s\n\n>From here\n>>From there\nplain\n\n"
        );
    }

    #[tokio::test]
    async fn command_gets_message_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let cmd = format!(
            "cat > {0}; echo \"$SENDER $RECIPIENT $LOCAL $DOMAIN\" >> {0}",
            out.display()
        );
        run_command(&allowed(), &cmd, &job(), b"Subject: x\r\n\r\nhi\r\n")
            .await
            .unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            got,
            "Return-Path: <alice@example.org>\nDelivered-To: list@example.org\nSubject: x\n\nhi\n\
             alice@example.org list@example.org list example.org\n"
        );
    }

    #[tokio::test]
    async fn command_exit_codes() {
        let s = allowed();
        let m = b"x\r\n";
        match run_command(&s, "echo busy >&2; exit 75", &job(), m).await {
            Err(Outcome::Deferred(st)) => assert!(st.text.contains("busy"), "{}", st.text),
            other => panic!("{other:?}"),
        }
        match run_command(&s, "echo 'no such list' >&2; exit 67", &job(), m).await {
            Err(Outcome::Failed(st)) => assert!(st.text.contains("no such list"), "{}", st.text),
            other => panic!("{other:?}"),
        }
        match run_command(&s, "kill -9 $$", &job(), m).await {
            Err(Outcome::Deferred(st)) => assert!(st.text.contains("signal 9"), "{}", st.text),
            other => panic!("{other:?}"),
        }
        match run_command(&s, "/nonexistent/program", &job(), m).await {
            Err(Outcome::Failed(st)) => assert!(st.text.contains("not found"), "{}", st.text),
            other => panic!("{other:?}"),
        }
        let off = AliasTargets::default();
        assert!(matches!(
            run_command(&off, "true", &job(), m).await,
            Err(Outcome::Failed(_))
        ));
    }

    #[tokio::test]
    async fn command_time_limit_kills_the_group() {
        let s = AliasTargets {
            command_timeout: Duration::from_secs(1),
            ..allowed()
        };
        match run_command(&s, "sleep 30 & sleep 30", &job(), b"x\r\n").await {
            Err(Outcome::Deferred(st)) => assert!(st.text.contains("time limit"), "{}", st.text),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn file_append_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box");
        let p = path.to_str().unwrap();
        append_file(&allowed(), p, &job(), b"Subject: 1\r\n\r\none\r\n")
            .await
            .unwrap();
        append_file(&allowed(), p, &job(), b"Subject: 2\r\n\r\nFrom two\r\n")
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.matches("\nFrom alice@example.org ").count() + 1,
            2,
            "{text}"
        );
        assert!(text.starts_with("From alice@example.org "));
        assert!(text.contains("\n>From two\n\n"));
        assert!(matches!(
            append_file(&allowed(), "relative/box", &job(), b"x").await,
            Err(Outcome::Failed(_))
        ));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(
            append_file(&allowed(), link.to_str().unwrap(), &job(), b"x").await,
            Err(Outcome::Failed(_))
        ));
        assert!(matches!(
            append_file(&AliasTargets::default(), p, &job(), b"x").await,
            Err(Outcome::Failed(_))
        ));
    }
}
