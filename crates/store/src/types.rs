//! Plain, protocol-neutral data types of the store API.

use std::fmt;

use crate::error::{Result, StoreError};

/// The system flags of RFC 9051 §2.3.2 as a bitset (`\Recent` is not stored; see
/// [`MessageMeta::recent`]).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SystemFlags(u8);

impl SystemFlags {
    /// `\Seen`: the message has been read.
    pub const SEEN: SystemFlags = SystemFlags(1);
    /// `\Answered`: the message has been answered.
    pub const ANSWERED: SystemFlags = SystemFlags(2);
    /// `\Flagged`: the message is flagged for attention.
    pub const FLAGGED: SystemFlags = SystemFlags(4);
    /// `\Deleted`: the message is marked for removal by a later expunge.
    pub const DELETED: SystemFlags = SystemFlags(8);
    /// `\Draft`: the message is a draft.
    pub const DRAFT: SystemFlags = SystemFlags(16);
    const MASK: u8 = 31;

    /// No flag set.
    pub const fn empty() -> Self {
        SystemFlags(0)
    }
    /// The raw bits (stable: they are stored in the index).
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// From raw bits, ignoring unknown ones.
    pub const fn from_bits_truncate(bits: u8) -> Self {
        SystemFlags(bits & Self::MASK)
    }
    /// True if every flag of `other` is set in `self`.
    pub const fn contains(self, other: SystemFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// True if no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: SystemFlags) {
        self.0 |= other.0;
    }
    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: SystemFlags) {
        self.0 &= !other.0;
    }
    /// `self | other`.
    pub const fn union(self, other: SystemFlags) -> Self {
        SystemFlags(self.0 | other.0)
    }
    /// `self & !other`.
    pub const fn difference(self, other: SystemFlags) -> Self {
        SystemFlags(self.0 & !other.0)
    }
}

impl fmt::Debug for SystemFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for (bit, name) in SYSTEM_NAMES {
            if self.contains(*bit) {
                l.entry(name);
            }
        }
        l.finish()
    }
}

const SYSTEM_NAMES: &[(SystemFlags, &str)] = &[
    (SystemFlags::SEEN, "\\Seen"),
    (SystemFlags::ANSWERED, "\\Answered"),
    (SystemFlags::FLAGGED, "\\Flagged"),
    (SystemFlags::DELETED, "\\Deleted"),
    (SystemFlags::DRAFT, "\\Draft"),
];

/// The keyword that Maildir stores as the `P` ("passed") info letter.
pub const FORWARDED_KEYWORD: &str = "$Forwarded";

/// Longest keyword the store accepts.
pub const MAX_KEYWORD_LEN: usize = 128;

/// One flag: a system flag or a keyword (RFC 9051 §2.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
    /// A keyword (an atom not starting with `\`), e.g. `$Forwarded` or `$Junk`.
    Keyword(String),
}

impl Flag {
    /// Parses a flag name case-insensitively (`\seen` = `\Seen`). Refuses `\Recent` (it is
    /// session state, not stored), other `\`-names, and keywords that are not IMAP atoms
    /// (RFC 9051 §9 `flag-keyword`).
    pub fn parse(name: &str) -> Result<Flag> {
        if let Some(rest) = name.strip_prefix('\\') {
            return match rest.to_ascii_lowercase().as_str() {
                "seen" => Ok(Flag::Seen),
                "answered" => Ok(Flag::Answered),
                "flagged" => Ok(Flag::Flagged),
                "deleted" => Ok(Flag::Deleted),
                "draft" => Ok(Flag::Draft),
                _ => Err(StoreError::InvalidFlag(name.chars().take(80).collect())),
            };
        }
        if !valid_keyword(name) {
            return Err(StoreError::InvalidFlag(name.chars().take(80).collect()));
        }
        if name.eq_ignore_ascii_case(FORWARDED_KEYWORD) {
            return Ok(Flag::Keyword(FORWARDED_KEYWORD.to_owned()));
        }
        Ok(Flag::Keyword(name.to_owned()))
    }

    /// The canonical name (`\Seen`, or the keyword itself).
    pub fn name(&self) -> &str {
        match self {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
            Flag::Keyword(k) => k,
        }
    }

    fn system(&self) -> Option<SystemFlags> {
        Some(match self {
            Flag::Seen => SystemFlags::SEEN,
            Flag::Answered => SystemFlags::ANSWERED,
            Flag::Flagged => SystemFlags::FLAGGED,
            Flag::Deleted => SystemFlags::DELETED,
            Flag::Draft => SystemFlags::DRAFT,
            Flag::Keyword(_) => return None,
        })
    }
}

/// RFC 9051 §9: `atom` minus `]` (flag-keyword), bounded in length.
pub(crate) fn valid_keyword(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= MAX_KEYWORD_LEN
        && k.bytes().all(|b| {
            (0x21..0x7f).contains(&b)
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

/// The flags of a message: system flags plus keywords.
///
/// Keywords compare case-insensitively (RFC 9051 §2.3.2); the set keeps the first spelling
/// it saw and is kept sorted (case-insensitively) so that equal sets compare equal.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    system: SystemFlags,
    keywords: Vec<String>,
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Flags {
    /// No flags.
    pub fn new() -> Self {
        Flags::default()
    }

    /// Only system flags.
    pub fn from_system(system: SystemFlags) -> Self {
        Flags {
            system,
            keywords: Vec::new(),
        }
    }

    /// Parses a list of flag names (see [`Flag::parse`]).
    pub fn from_names<I, S>(names: I) -> Result<Flags>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut f = Flags::new();
        for n in names {
            f.insert(Flag::parse(n.as_ref())?);
        }
        Ok(f)
    }

    /// The system flags.
    pub fn system(&self) -> SystemFlags {
        self.system
    }

    /// The keywords, sorted case-insensitively.
    pub fn keywords(&self) -> &[String] {
        &self.keywords
    }

    /// True if no flag and no keyword is set.
    pub fn is_empty(&self) -> bool {
        self.system.is_empty() && self.keywords.is_empty()
    }

    /// Shorthand for `system().contains(f)`.
    pub fn has(&self, f: SystemFlags) -> bool {
        self.system.contains(f)
    }

    /// True if the flag is set (keywords case-insensitively).
    pub fn contains(&self, flag: &Flag) -> bool {
        match flag.system() {
            Some(s) => self.system.contains(s),
            None => self.has_keyword(flag.name()),
        }
    }

    /// True if the keyword is set (case-insensitively).
    pub fn has_keyword(&self, k: &str) -> bool {
        self.keyword_pos(k).is_ok()
    }

    fn keyword_pos(&self, k: &str) -> std::result::Result<usize, usize> {
        self.keywords.binary_search_by(|probe| cmp_ci(probe, k))
    }

    /// Sets a flag.
    pub fn insert(&mut self, flag: Flag) {
        match flag.system() {
            Some(s) => self.system.insert(s),
            None => {
                if let Flag::Keyword(k) = flag {
                    self.insert_keyword_unchecked(k);
                }
            }
        }
    }

    /// Adds a keyword after validating it.
    pub fn insert_keyword(&mut self, k: &str) -> Result<()> {
        self.insert(Flag::parse(k)?);
        Ok(())
    }

    pub(crate) fn insert_keyword_unchecked(&mut self, k: String) {
        if let Err(pos) = self.keyword_pos(&k) {
            self.keywords.insert(pos, k);
        }
    }

    /// Clears a flag.
    pub fn remove(&mut self, flag: &Flag) {
        match flag.system() {
            Some(s) => self.system.remove(s),
            None => {
                if let Ok(pos) = self.keyword_pos(flag.name()) {
                    self.keywords.remove(pos);
                }
            }
        }
    }

    /// Sets or clears the system flags in `s`.
    pub fn set_system(&mut self, s: SystemFlags) {
        self.system = s;
    }

    /// `self ∪ other`.
    pub fn union(&self, other: &Flags) -> Flags {
        let mut out = self.clone();
        out.system.insert(other.system);
        for k in &other.keywords {
            out.insert_keyword_unchecked(k.clone());
        }
        out
    }

    /// `self ∖ other`.
    pub fn difference(&self, other: &Flags) -> Flags {
        Flags {
            system: self.system.difference(other.system),
            keywords: self
                .keywords
                .iter()
                .filter(|k| !other.has_keyword(k))
                .cloned()
                .collect(),
        }
    }

    /// The flag names in a stable order: system flags first, then keywords.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(5 + self.keywords.len());
        for (bit, name) in SYSTEM_NAMES {
            if self.system.contains(*bit) {
                out.push((*name).to_owned());
            }
        }
        out.extend(self.keywords.iter().cloned());
        out
    }

    /// The keywords joined by spaces (index storage form).
    #[cfg(feature = "maildir")]
    pub(crate) fn keywords_joined(&self) -> String {
        self.keywords.join(" ")
    }

    /// From the index storage form; invalid words are dropped.
    #[cfg(feature = "maildir")]
    pub(crate) fn from_stored(bits: u8, keywords: &str) -> Flags {
        let mut f = Flags::from_system(SystemFlags::from_bits_truncate(bits));
        for k in keywords.split(' ').filter(|k| valid_keyword(k)) {
            f.insert_keyword_unchecked(k.to_owned());
        }
        f
    }
}

fn cmp_ci(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// How [`crate::maildir::MaildirStore::store_flags`] combines the given flags with the current ones
/// (RFC 9051 §6.4.6 `FLAGS`, `+FLAGS`, `-FLAGS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOp {
    /// Replace the flags.
    Replace,
    /// Add the flags.
    Add,
    /// Remove the flags.
    Remove,
}

impl FlagOp {
    /// The new flags of a message whose flags are `old`.
    pub fn apply(self, old: &Flags, given: &Flags) -> Flags {
        match self {
            FlagOp::Replace => given.clone(),
            FlagOp::Add => old.union(given),
            FlagOp::Remove => old.difference(given),
        }
    }
}

/// SPECIAL-USE mailbox roles (RFC 6154 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    /// `\All`: a virtual view of all messages.
    All,
    /// `\Archive`
    Archive,
    /// `\Drafts`
    Drafts,
    /// `\Flagged`: a virtual view of flagged messages.
    Flagged,
    /// `\Junk`
    Junk,
    /// `\Sent`
    Sent,
    /// `\Trash`
    Trash,
}

impl SpecialUse {
    /// Every role.
    pub const ALL: [SpecialUse; 7] = [
        SpecialUse::All,
        SpecialUse::Archive,
        SpecialUse::Drafts,
        SpecialUse::Flagged,
        SpecialUse::Junk,
        SpecialUse::Sent,
        SpecialUse::Trash,
    ];

    /// The attribute name, e.g. `\Sent`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }

    /// Parses an attribute name case-insensitively, with or without the backslash.
    pub fn parse(s: &str) -> Option<SpecialUse> {
        let s = s.strip_prefix('\\').unwrap_or(s);
        SpecialUse::ALL
            .into_iter()
            .find(|u| u.as_str()[1..].eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for SpecialUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of UIDs as sorted, disjoint, non-adjacent inclusive ranges.
///
/// RFC 9051 §9 `sequence-set` after the protocol layer has resolved `*`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct UidSet {
    ranges: Vec<(u32, u32)>,
}

impl fmt::Debug for UidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UidSet(")?;
        for (i, (a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}:{b}")?;
            }
        }
        write!(f, ")")
    }
}

impl UidSet {
    /// The empty set.
    pub fn new() -> Self {
        UidSet::default()
    }
    /// `{uid}`.
    pub fn single(uid: u32) -> Self {
        UidSet {
            ranges: vec![(uid, uid)],
        }
    }
    /// `first..=last` (the bounds may come in either order, as in RFC 9051 `seq-range`).
    pub fn range(first: u32, last: u32) -> Self {
        UidSet {
            ranges: vec![(first.min(last), first.max(last))],
        }
    }
    /// Every possible UID.
    pub fn all() -> Self {
        UidSet::range(1, u32::MAX)
    }
    /// Adds one UID.
    pub fn insert(&mut self, uid: u32) {
        self.insert_range(uid, uid);
    }
    /// Adds `first..=last`.
    pub fn insert_range(&mut self, first: u32, last: u32) {
        let (a, b) = (first.min(last), first.max(last));
        if let Some(l) = self.ranges.last_mut() {
            if a >= l.0 {
                if a <= l.1.saturating_add(1) {
                    l.1 = l.1.max(b);
                } else {
                    self.ranges.push((a, b));
                }
                return;
            }
        } else {
            self.ranges.push((a, b));
            return;
        }
        self.ranges.push((a, b));
        self.normalize();
    }
    fn normalize(&mut self) {
        self.ranges.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(self.ranges.len());
        for &(a, b) in &self.ranges {
            match out.last_mut() {
                Some(l) if a <= l.1.saturating_add(1) => l.1 = l.1.max(b),
                _ => out.push((a, b)),
            }
        }
        self.ranges = out;
    }
    /// True if `uid` is in the set.
    pub fn contains(&self, uid: u32) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < uid);
        self.ranges.get(i).is_some_and(|r| r.0 <= uid)
    }
    /// The ranges, ascending.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
    /// Number of UIDs in the set.
    pub fn len(&self) -> u64 {
        self.ranges
            .iter()
            .map(|(a, b)| u64::from(*b) - u64::from(*a) + 1)
            .sum()
    }
    /// Every UID, ascending (beware of huge ranges such as [`UidSet::all`]).
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }
}

impl FromIterator<u32> for UidSet {
    fn from_iter<T: IntoIterator<Item = u32>>(iter: T) -> Self {
        let mut s = UidSet::new();
        for u in iter {
            s.insert(u);
        }
        s
    }
}

/// Which part of a message a batched fetch reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessagePart {
    /// The whole message (RFC 9051 BODY[]).
    Full,
    /// The header section up to and including the blank line that ends it.
    Header,
}

/// What the store knows about one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageMeta {
    /// RFC 9051 §2.3.1.1 unique identifier.
    pub uid: u32,
    /// Its flags.
    pub flags: Flags,
    /// RFC 7162 §3.1 mod-sequence of its last change.
    pub modseq: u64,
    /// RFC 9051 §2.3.3 internal date, as Unix seconds (UTC).
    pub internal_date: i64,
    /// Exact size in bytes of the stored message (as delivered; not converted to CRLF).
    pub size: u64,
    /// Its size as IMAP and POP3 send it, every line ended by CRLF (RFC 9051 RFC822.SIZE,
    /// RFC 1939 §11); the protocol crates need not read the message to know it.
    pub wire_size: u64,
    /// The message arrived since a session last claimed it (RFC 3501 `\Recent`; only IMAP4rev1
    /// needs this).
    pub recent: bool,
}

/// The state of a mailbox as seen when opening it (RFC 9051 §6.3.2 SELECT).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxSnapshot {
    /// RFC 9051 §2.3.1.1 UIDVALIDITY.
    pub uidvalidity: u32,
    /// RFC 9051 §2.3.1.1 next UID.
    pub uidnext: u32,
    /// RFC 7162 §3.1.2.1 HIGHESTMODSEQ.
    pub highestmodseq: u64,
    /// The messages in ascending UID order (message sequence number = index + 1).
    pub messages: Vec<MessageMeta>,
}

/// Counters of a mailbox (RFC 9051 §6.3.11 STATUS, RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    /// Number of messages.
    pub messages: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// Messages flagged `\Deleted`.
    pub deleted: u32,
    /// Messages still marked recent.
    pub recent: u32,
    /// Total wire size in bytes (RFC 8438 STATUS SIZE: the sum of RFC822.SIZE).
    pub size: u64,
    /// Next UID.
    pub uidnext: u32,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// HIGHESTMODSEQ.
    pub highestmodseq: u64,
}

/// One entry of [`crate::maildir::MaildirStore::list_mailboxes`] (RFC 9051 §7.3.1 LIST attributes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Canonical name, `/`-separated.
    pub name: String,
    /// RFC 6154 role.
    pub special_use: Option<SpecialUse>,
    /// On the subscription list.
    pub subscribed: bool,
    /// Some mailbox exists below this one (`\HasChildren`, else `\HasNoChildren`).
    pub has_children: bool,
}

/// Result of an append (RFC 4315 §3 APPENDUID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// UIDVALIDITY of the destination.
    pub uidvalidity: u32,
    /// UID of the new message.
    pub uid: u32,
    /// Its mod-sequence.
    pub modseq: u64,
}

/// One message for [`crate::Store::import`] (`postern import`): stored with the flags,
/// internal date and, where possible, the UID it had in its source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportMessage {
    /// The message.
    pub data: Vec<u8>,
    /// Flags and keywords to store it with.
    pub flags: Flags,
    /// INTERNALDATE (RFC 9051 §2.3.3), Unix seconds; now if `None`.
    pub internal_date: Option<i64>,
    /// Whether the message is `\Recent` (new in its source) after the import.
    pub recent: bool,
    /// The UID to give it: honoured if it is at or above the mailbox's UIDNEXT (so UIDs stay
    /// ascending and unused, RFC 9051 §2.3.1.1); otherwise the next UID is given.
    pub uid: Option<u32>,
    /// An idempotency key (letters, digits, `-`, `_`, at most 64), as for
    /// [`crate::Store::deliver`]: a message whose key is already in the mailbox is not stored
    /// again, so an interrupted import can be run again without duplicates.
    pub key: Option<String>,
}

/// What [`crate::Store::import`] did with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportOutcome {
    /// UIDVALIDITY, UID and MODSEQ of the stored message.
    pub appended: AppendOutcome,
    /// True if the key was already there: nothing was stored, `appended` is the earlier copy.
    pub existed: bool,
}

/// Result of a copy or move (RFC 4315 §3 COPYUID, RFC 6851 §4.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyOutcome {
    /// UIDVALIDITY of the destination.
    pub uidvalidity: u32,
    /// (source UID, destination UID) pairs in ascending source order. Source UIDs that did not
    /// exist are absent.
    pub mapping: Vec<(u32, u32)>,
}

/// A flag change of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagChange {
    /// The message.
    pub uid: u32,
    /// Its new flags.
    pub flags: Flags,
    /// Its new mod-sequence.
    pub modseq: u64,
}

/// Result of [`crate::maildir::MaildirStore::store_flags`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlagsOutcome {
    /// Messages whose flags changed, ascending UID.
    pub updated: Vec<FlagChange>,
    /// Messages that failed the UNCHANGEDSINCE test (RFC 7162 §3.1.3 `MODIFIED`), ascending.
    pub failed: Vec<u32>,
}

/// Changes since a mod-sequence (RFC 7162 §3.1.4 CHANGEDSINCE, §3.2.5.2 VANISHED).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Current HIGHESTMODSEQ.
    pub highestmodseq: u64,
    /// Messages created or changed after the given mod-sequence, ascending UID.
    pub changed: Vec<MessageMeta>,
    /// UIDs expunged after the given mod-sequence. When the store cannot know exactly (the
    /// index was rebuilt after that mod-sequence), this holds every UID below UIDNEXT that does
    /// not exist, which RFC 7162 §3.2.5.2 permits.
    pub vanished: UidSet,
}

/// Storage used by an account (RFC 9208 STORAGE and MESSAGE resources).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Total bytes of all messages.
    pub bytes: u64,
    /// Number of messages.
    pub messages: u64,
}

/// What [`crate::maildir::MaildirStore::reindex`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReindexReport {
    /// Mailboxes found.
    pub mailboxes: usize,
    /// Messages indexed.
    pub messages: usize,
    /// Messages that needed a new UID (no or conflicting `,U=`).
    pub renumbered: usize,
}

/// A change in a mailbox, broadcast to the sessions that have it open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailboxEvent {
    /// A message arrived (RFC 9051 §7.4.1 EXISTS).
    New {
        /// Its UID.
        uid: u32,
    },
    /// A message's flags changed (RFC 9051 §7.5.2 FETCH FLAGS, RFC 7162 MODSEQ).
    Flags {
        /// The message.
        uid: u32,
        /// Its new flags.
        flags: Flags,
        /// Its new mod-sequence.
        modseq: u64,
    },
    /// A message was expunged (RFC 9051 §7.5.1 EXPUNGE, RFC 7162 VANISHED).
    Expunged {
        /// Its UID.
        uid: u32,
        /// Keeps the message readable until every session that shows it has been told
        /// (RFC 2180 §4.1.1); `None` when nobody else was listening or the file was gone.
        held: Option<crate::held::Held>,
    },
    /// The mailbox was deleted, renamed, or re-indexed: sessions must close it
    /// (RFC 9051 §7.1 `BYE` or a fresh SELECT).
    Invalidated,
}

/// The size of a message as IMAP and POP3 send it: every bare LF becomes CRLF (RFC 9051
/// RFC822.SIZE, RFC 1939 §11). Dovecot calls this the virtual size and keeps it as `,W=`.
#[cfg(feature = "maildir")]
pub(crate) use postern_mail::wire::wire_size;
