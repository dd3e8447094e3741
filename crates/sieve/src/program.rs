//! The compiled, typed form of a script: every command and test checked once, so the
//! interpreter never re-validates arguments.

use crate::matching::{Comparator, Relation};
use crate::IncludeLocation;

/// A string argument. `expand` is set when the `variables` extension is on and the text holds
/// a `${`, so constant strings cost nothing at run time (RFC 5229 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Value {
    pub(crate) text: String,
    pub(crate) expand: bool,
}

/// How a test compares (RFC 5228 §2.7).
#[derive(Clone, Debug)]
pub(crate) struct MatchSpec {
    pub(crate) comparator: Comparator,
    pub(crate) kind: MatchKind,
}

impl Default for MatchSpec {
    fn default() -> MatchSpec {
        MatchSpec {
            comparator: Comparator::AsciiCasemap,
            kind: MatchKind::Is,
        }
    }
}

/// The match type (RFC 5228 §2.7.1, RFC 5231 §4, draft-ietf-sieve-regex §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MatchKind {
    Is,
    Contains,
    Matches,
    Regex,
    Value(Relation),
    Count(Relation),
}

/// The key list of a test, with its regular expressions compiled once when they are constant.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    pub(crate) values: Vec<Value>,
    /// `Some` for `:regex` with constant keys.
    pub(crate) regexes: Option<Vec<regex::Regex>>,
}

/// Which part of an address is compared (RFC 5228 §2.7.4, RFC 5233 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AddressPart {
    All,
    LocalPart,
    Domain,
    User,
    Detail,
}

/// `:index N [:last]` (RFC 5260 §6): 1-based, counted from the end with `:last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) n: usize,
    pub(crate) last: bool,
}

/// The zone a date is shown in (RFC 5260 §4.1 `:zone`, `:originalzone`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ZoneArg {
    Local,
    Original,
    Fixed(i32),
}

/// RFC 5173 §5 body transforms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Transform {
    Raw,
    Content(Vec<Value>),
    Text,
}

/// Where the `duplicate` test takes its unique id from (RFC 7352 §3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DuplicateId {
    MessageId,
    Header(Value),
    UniqueId(Value),
}

/// A test (RFC 5228 §5 and the extensions').
#[derive(Clone, Debug)]
pub(crate) enum Test {
    True,
    False,
    Not(Box<Test>),
    AllOf(Vec<Test>),
    AnyOf(Vec<Test>),
    Exists(Vec<Value>),
    Size {
        over: bool,
        limit: u64,
    },
    Header {
        spec: MatchSpec,
        names: Vec<Value>,
        keys: Keys,
        index: Option<Index>,
    },
    Address {
        spec: MatchSpec,
        part: AddressPart,
        names: Vec<Value>,
        keys: Keys,
        index: Option<Index>,
    },
    Envelope {
        spec: MatchSpec,
        part: AddressPart,
        names: Vec<Value>,
        keys: Keys,
    },
    String {
        spec: MatchSpec,
        sources: Vec<Value>,
        keys: Keys,
    },
    HasFlag {
        spec: MatchSpec,
        variables: Vec<String>,
        keys: Keys,
    },
    MailboxExists(Vec<Value>),
    Body {
        spec: MatchSpec,
        transform: Transform,
        keys: Keys,
    },
    Date {
        spec: MatchSpec,
        zone: ZoneArg,
        header: Value,
        part: Value,
        keys: Keys,
        index: Option<Index>,
    },
    CurrentDate {
        spec: MatchSpec,
        zone: ZoneArg,
        part: Value,
        keys: Keys,
    },
    Duplicate {
        handle: Option<Value>,
        id: DuplicateId,
        period: Option<u64>,
        last: bool,
    },
    ValidNotifyMethod(Vec<Value>),
    NotifyMethodCapability {
        spec: MatchSpec,
        uri: Value,
        capability: Value,
        keys: Keys,
    },
}

/// A `set` modifier (RFC 5229 §4.1, draft-ietf-sieve-regex §5, RFC 5435 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Modifier {
    Lower,
    Upper,
    LowerFirst,
    UpperFirst,
    QuoteWildcard,
    QuoteRegex,
    EncodeUrl,
    Length,
}

impl Modifier {
    /// RFC 5229 §4.1 precedence: higher applies first; two of one level are an error.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            Modifier::Lower | Modifier::Upper => 40,
            Modifier::LowerFirst | Modifier::UpperFirst => 30,
            Modifier::QuoteWildcard | Modifier::QuoteRegex => 20,
            Modifier::EncodeUrl => 15,
            Modifier::Length => 10,
        }
    }
}

/// imap4flags' three commands (RFC 5232 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlagOp {
    Set,
    Add,
    Remove,
}

/// `vacation`'s arguments (RFC 5230 §4, RFC 6131).
#[derive(Clone, Debug)]
pub(crate) struct VacationCmd {
    /// Seconds, from `:days` or `:seconds`; `None` = the default.
    pub(crate) period: Option<u64>,
    pub(crate) subject: Option<Value>,
    pub(crate) from: Option<Value>,
    pub(crate) addresses: Vec<Value>,
    pub(crate) mime: bool,
    pub(crate) handle: Option<Value>,
    pub(crate) reason: Value,
}

/// `notify`'s arguments (RFC 5435 §3).
#[derive(Clone, Debug)]
pub(crate) struct NotifyCmd {
    pub(crate) method: Value,
    pub(crate) from: Option<Value>,
    pub(crate) importance: Option<Value>,
    pub(crate) options: Vec<Value>,
    pub(crate) message: Option<Value>,
}

/// A command with the line it came from (for run-time errors).
#[derive(Clone, Debug)]
pub(crate) struct Command {
    pub(crate) line: u32,
    pub(crate) kind: Cmd,
}

/// The commands (RFC 5228 §3–§4 and the extensions').
#[derive(Clone, Debug)]
pub(crate) enum Cmd {
    If {
        branches: Vec<(Test, Vec<Command>)>,
        otherwise: Option<Vec<Command>>,
    },
    Stop,
    Return,
    Keep {
        flags: Option<Vec<Value>>,
    },
    Discard,
    FileInto {
        mailbox: Value,
        flags: Option<Vec<Value>>,
        copy: bool,
        create: bool,
    },
    Redirect {
        address: Value,
        copy: bool,
    },
    Reject {
        reason: Value,
        extended: bool,
    },
    Set {
        name: String,
        value: Value,
        modifiers: Vec<Modifier>,
    },
    Flags {
        op: FlagOp,
        variable: Option<String>,
        flags: Vec<Value>,
    },
    Include {
        name: String,
        location: IncludeLocation,
        once: bool,
        optional: bool,
    },
    Global(Vec<String>),
    AddHeader {
        name: Value,
        value: Value,
        last: bool,
    },
    DeleteHeader {
        name: Value,
        index: Option<Index>,
        spec: MatchSpec,
        keys: Option<Keys>,
    },
    Vacation(Box<VacationCmd>),
    Notify(Box<NotifyCmd>),
}

/// A whole compiled script.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    pub(crate) commands: Vec<Command>,
    /// Whether `variables` was required (match variables are only kept then).
    pub(crate) variables: bool,
}
