//! Sieve mail filtering (RFC 5228 and the extensions Pigeonhole users rely on): a parser, a
//! compiler that checks `require` and every argument once, and an interpreter that runs a
//! compiled script against one message and returns the actions to take.
//!
//! Pure: no I/O, no tokio, no clock. Everything the script may ask of the world (does a mailbox
//! exist, was this message seen before, the text of an included script, the time) comes through
//! [`Host`] and [`Context`]; the caller (local delivery, `postern sieve test`, ManageSieve's
//! CHECKSCRIPT) performs the actions.
//!
//! Semantics follow Pigeonhole (Dovecot's `sieve-test` is the reference):
//! - The implicit keep (RFC 5228 §2.10.2) is cancelled by keep, fileinto and redirect without
//!   `:copy`, reject/ereject and discard; vacation and notify leave it.
//! - Storing into one mailbox twice (or keep twice) is one action: the later one's flags win and
//!   the duplicate changes nothing else. `fileinto "INBOX"` is [`Action::Keep`]. Redirecting
//!   twice to one address (domain compared without case) sends once.
//! - reject/ereject with keep, fileinto, redirect (even `:copy`) or vacation, a second reject,
//!   a second vacation, and exceeding [`Limits`] are run-time errors: [`Outcome::error`] is set,
//!   the actions are dropped and the implicit keep stores into INBOX, so nothing is lost.
//! - Variables hold at most 4000 bytes and addheader values 2048 (Pigeonhole's defaults).

use std::sync::Arc;

mod cache;
mod checks;
mod compile;
mod ext;
mod interp;
mod interp_actions;
mod interp_ext;
mod lexer;
mod matching;
mod message;
mod parser;
mod program;
mod variables;

pub use cache::ScriptCache;

/// Limits that keep one script from costing more than it should. Defaults are safe; the
/// `[sieve]` config section overrides them. A script that exceeds a limit at run time fails into
/// implicit keep (see [`Outcome::error`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest script source accepted, in bytes.
    pub max_script_bytes: usize,
    /// Most actions one run may produce (keep, fileinto, redirect, vacation, notify …).
    pub max_actions: usize,
    /// Most redirects one run may produce (RFC 5228 §4.2 asks implementations to limit them).
    pub max_redirects: usize,
    /// Deepest include nesting (RFC 6609 §3.2).
    pub max_include_depth: usize,
    /// Largest compiled regular expression (`:regex`), in bytes of the engine's program.
    pub max_regex_bytes: usize,
    /// Shortest vacation period, in seconds: a `:days` or `:seconds` below it is raised to it
    /// (RFC 5230 §4.1 lets the site set a minimum; RFC 6131 §2 lets `:seconds` go below a
    /// day only as far as the site allows). Pigeonhole's `sieve_vacation_min_period`: 1 day.
    pub vacation_min_period: u64,
    /// The vacation period when the script gives neither `:days` nor `:seconds`, in seconds
    /// (RFC 5230 §4.1 suggests 7 days; Pigeonhole's `sieve_vacation_default_period`). Kept
    /// within the minimum and maximum.
    pub vacation_default_period: u64,
    /// Longest vacation period, in seconds: a longer one is lowered to it (RFC 5230 §4.1).
    /// `u64::MAX` is no maximum, as Pigeonhole's default `sieve_vacation_max_period = 0`.
    pub vacation_max_period: u64,
}

impl Limits {
    /// The tracking period of a vacation reply (RFC 5230 §4.1, RFC 6131 §2): what the script
    /// asked for (`requested`, in seconds) or the default, clamped into the site's bounds.
    /// A maximum below the minimum counts as the minimum.
    pub fn vacation_period(&self, requested: Option<u64>) -> u64 {
        let min = self.vacation_min_period;
        let max = self.vacation_max_period.max(min);
        requested
            .unwrap_or(self.vacation_default_period)
            .clamp(min, max)
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_script_bytes: 1 << 20,
            max_actions: 32,
            max_redirects: 4,
            max_include_depth: 10,
            max_regex_bytes: 1 << 20,
            vacation_min_period: 86_400,
            vacation_default_period: 7 * 86_400,
            vacation_max_period: u64::MAX,
        }
    }
}

/// A script that does not compile: where, and what was expected there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// 1-based line of the offending token.
    pub line: u32,
    /// 1-based column (in characters) of the offending token.
    pub column: u32,
    /// What is wrong, in the style of Pigeonhole ("unknown command 'foo'", "the 'fileinto'
    /// command requires the 'fileinto' extension", "expected ';' after command").
    pub message: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for CompileError {}

/// A compiled script: parsed, `require`d extensions checked, arguments validated. Cheap to
/// share between threads and runs.
#[derive(Debug)]
pub struct Script {
    program: program::Program,
}

/// Compiles `source` (RFC 5228 §2 grammar) under `limits`.
pub fn compile(source: &str, limits: &Limits) -> Result<Script, CompileError> {
    if source.len() > limits.max_script_bytes {
        return Err(CompileError {
            line: 1,
            column: 1,
            message: format!(
                "script is too large (max {} bytes)",
                limits.max_script_bytes
            ),
        });
    }
    let nodes = parser::parse(source)?;
    let program = compile::compile_program(&nodes, limits)?;
    Ok(Script { program })
}

/// The SMTP envelope of the message being filtered (RFC 5228 §5.4, RFC 5233).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// MAIL FROM, without angle brackets; empty for the null sender `<>`.
    pub from: String,
    /// The final recipient (the account's address, with its `+detail` if it had one).
    pub to: String,
    /// The original recipient as given at RCPT TO, before alias expansion (if different).
    pub orig_to: Option<String>,
    /// The authenticated submitter, when known (`envelope "auth"`).
    pub auth: Option<String>,
}

/// What the interpreter needs to know about this run besides the message.
#[derive(Clone, Debug)]
pub struct Context {
    /// The envelope.
    pub envelope: Envelope,
    /// The recipient delimiter for `:user`/`:detail` (RFC 5233), e.g. `+`; `None` = no subaddresses.
    pub recipient_delimiter: Option<char>,
    /// Addresses that belong to the recipient (vacation's implicit `:addresses`, RFC 5230 §4.5).
    pub user_addresses: Vec<String>,
    /// Now, seconds since the Unix epoch (currentdate, vacation periods, duplicate periods).
    pub now: i64,
    /// The local time zone offset in minutes east of UTC (currentdate's default zone).
    pub zone_offset_minutes: i32,
    /// Limits for this run.
    pub limits: Limits,
}

/// Where an included script lives (RFC 6609 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IncludeLocation {
    /// `:personal` (the default): the user's own scripts.
    Personal,
    /// `:global`: the administrator's scripts.
    Global,
}

/// What the script may ask of the world. Local delivery implements it with the store and its
/// trackers; `postern sieve test` with files and an in-memory tracker.
pub trait Host {
    /// Whether the user has a mailbox of this name (RFC 5490 `mailboxexists`, `fileinto` checks).
    fn mailbox_exists(&self, name: &str) -> bool;

    /// The compiled script `name` for `include` (RFC 6609), or why it cannot be had.
    fn include(&mut self, name: &str, location: IncludeLocation) -> Result<Arc<Script>, String>;

    /// Whether a message with this `id` was seen by the `duplicate` test under `handle` within
    /// the last `period` seconds (RFC 7352 §3). Only looks: the marks to record come back in
    /// [`Outcome::duplicate_marks`], to be stored when the actions succeeded.
    fn duplicate_seen(&self, handle: &str, id: &str, period: u64) -> bool;

    /// Whether a vacation reply went to `sender` under `handle` within the last `period`
    /// seconds (RFC 5230 §4.2). The caller records a reply when it sends one.
    fn vacation_replied(&self, handle: &str, sender: &str, period: u64) -> bool;
}

/// One thing the script asks to be done with the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Store in INBOX (explicit `keep`, or `fileinto "INBOX"`), with these IMAP flags
    /// (`\Seen`, `$label`).
    Keep {
        /// IMAP flags and keywords to set on the stored message.
        flags: Vec<String>,
        /// The message as editheader left it when this action ran; `None` = unchanged.
        edited: Option<Arc<[u8]>>,
    },
    /// Store in `mailbox` (RFC 5228 §4.1, RFC 3894 `:copy`, RFC 5490 `:create`).
    FileInto {
        /// Mailbox name as the script gave it (IMAP form, `/` or `.` hierarchy as the store uses).
        mailbox: String,
        /// IMAP flags and keywords to set on the stored message.
        flags: Vec<String>,
        /// `:copy`: does not cancel the implicit keep.
        copy: bool,
        /// `:create`: create the mailbox if it does not exist.
        create: bool,
        /// The message as editheader left it when this action ran; `None` = unchanged.
        edited: Option<Arc<[u8]>>,
    },
    /// Forward to `address` (RFC 5228 §4.2).
    Redirect {
        /// The destination address.
        address: String,
        /// `:copy`: does not cancel the implicit keep.
        copy: bool,
        /// The message as editheader left it when this action ran; `None` = unchanged.
        edited: Option<Arc<[u8]>>,
    },
    /// Refuse the message (RFC 5429): at SMTP time when possible, else by a DSN/MDN.
    Reject {
        /// The reason given to the sender.
        reason: String,
        /// `ereject`: must be refused in the SMTP dialogue if at all possible.
        extended: bool,
    },
    /// Throw the message away (cancels implicit keep).
    Discard,
    /// Send a vacation reply (RFC 5230). Listed only when a reply is really due (every RFC
    /// 5230 §4.5–4.6 and RFC 3834 check passed and [`Host::vacation_replied`] said no).
    Vacation(Vacation),
    /// Send a notification (RFC 5435; only the `mailto:` method, RFC 5436).
    Notify(Notify),
}

/// A vacation reply to be sent (RFC 5230 §4–§5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vacation {
    /// Whom the reply goes to (the envelope sender of the original).
    pub to: String,
    /// `:from`, when the script gave it.
    pub from: Option<String>,
    /// `:subject`, when the script gave it (variables expanded).
    pub subject: Option<String>,
    /// The reason (the reply body, or a MIME entity when `mime` is set).
    pub reason: String,
    /// `:mime`: `reason` is a MIME part with its own headers.
    pub mime: bool,
    /// The handle replies are tracked under (RFC 5230 §4.2; derived from the arguments when
    /// the script gives no `:handle`).
    pub handle: String,
    /// The tracking period in seconds (`:days` × 86400 or `:seconds`, else
    /// [`Limits::vacation_default_period`], clamped by [`Limits::vacation_period`]).
    pub period: u64,
}

/// A notification to be sent (RFC 5435 §3, RFC 5436).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify {
    /// The method URI, e.g. `mailto:alice@example.org?subject=New%20mail`.
    pub method: String,
    /// `:from`.
    pub from: Option<String>,
    /// `:importance` 1 (high), 2 (normal, default) or 3 (low).
    pub importance: u8,
    /// `:options`.
    pub options: Vec<String>,
    /// `:message`, variables expanded.
    pub message: Option<String>,
}

/// A `duplicate` mark to record once the actions succeeded (RFC 7352 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateMark {
    /// The handle (empty when none was given).
    pub handle: String,
    /// The unique id (the Message-ID by default, or `:header`/`:uniqueid`).
    pub id: String,
    /// For how many seconds the mark counts.
    pub period: u64,
}

/// A run-time failure: the script is cancelled and the message kept in INBOX.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeError {
    /// Line of the command that failed.
    pub line: u32,
    /// What went wrong ("too many redirects (limit 4)").
    pub message: String,
}

/// The result of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Explicit actions, in the order the script gave them (duplicates merged).
    pub actions: Vec<Action>,
    /// Whether the implicit keep stays in force (RFC 5228 §2.10.2).
    pub implicit_keep: bool,
    /// Flags the implicit keep stores with (imap4flags' internal variable, RFC 5232 §3).
    pub implicit_keep_flags: Vec<String>,
    /// The message as editheader left it at the end, for the implicit keep; `None` = unchanged.
    pub implicit_keep_edited: Option<Arc<[u8]>>,
    /// Duplicate marks to record when delivery succeeded.
    pub duplicate_marks: Vec<DuplicateMark>,
    /// Set when the run failed: `actions` is then empty and `implicit_keep` true (into INBOX,
    /// no flags), so no mail is lost.
    pub error: Option<RuntimeError>,
}

/// Runs `script` on `message` (the raw RFC 5322 message, CRLF or LF line ends).
pub fn execute(script: &Script, message: &[u8], context: &Context, host: &mut dyn Host) -> Outcome {
    interp::run(script, message, context, host)
}

/// The vacation reply for `v` to `original` (RFC 5230 §5, RFC 3834 §3), CRLF line ends: the
/// From is `:from` when the script gave it, else `from` (the user's address); `date` and
/// `message_id` are the caller's. Local delivery queues it to `v.to`.
pub fn compose_vacation(
    v: &Vacation,
    original: &[u8],
    from: &str,
    date: &str,
    message_id: &str,
) -> Vec<u8> {
    ext::vacation::compose(v, original, from, date, message_id)
}

/// The notification message for `n` (RFC 5436 §2.7) about `original`: its recipients and
/// the message (CRLF line ends), or `None` when the method yields no recipient. `from`,
/// `date` and `message_id` are the caller's; local delivery queues it.
pub fn compose_notification(
    n: &Notify,
    original: &[u8],
    envelope: &Envelope,
    from: &str,
    date: &str,
    message_id: &str,
) -> Option<(Vec<String>, Vec<u8>)> {
    ext::mailto::compose_notification(n, original, envelope, from, date, message_id)
}

/// The extensions this implementation supports, as named in `require` and advertised in
/// ManageSieve's SIEVE capability (RFC 5804 §1.7) and NOTIFY capability.
pub const EXTENSIONS: &[&str] = &[
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "encoded-character",
    "comparator-i;ascii-numeric",
    "relational",
    "regex",
    "imap4flags",
    "copy",
    "include",
    "body",
    "variables",
    "vacation",
    "vacation-seconds",
    "subaddress",
    "date",
    "index",
    "mailbox",
    "editheader",
    "duplicate",
    "enotify",
];

/// Notification methods `enotify` supports (ManageSieve's NOTIFY capability).
pub const NOTIFY_METHODS: &[&str] = &["mailto"];
