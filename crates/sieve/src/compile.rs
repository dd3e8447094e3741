//! From the syntax tree to the typed [`Program`]: `require` first and complete, every command
//! and test only with its extension, every argument of the right type, tags per command.

use std::collections::{HashSet, VecDeque};

use crate::checks;
use crate::lexer::Pos;
use crate::matching::{Comparator, Relation};
use crate::parser::{Arg, CommandNode, TestNode};
use crate::program::*;
use crate::{CompileError, IncludeLocation, Limits, EXTENSIONS};

/// Compiles a parsed script.
pub(crate) fn compile_program(
    nodes: &[CommandNode],
    limits: &Limits,
) -> Result<Program, CompileError> {
    let mut compiler = Compiler {
        required: HashSet::new(),
        limits: limits.clone(),
    };
    let mut start = 0;
    for node in nodes {
        if node.name != "require" {
            break;
        }
        compiler.require(node)?;
        start += 1;
    }
    let commands = compiler.block(&nodes[start..], 0)?;
    Ok(Program {
        commands,
        variables: compiler.has("variables"),
    })
}

struct Compiler {
    required: HashSet<String>,
    limits: Limits,
}

/// The extension each command needs (`None` = RFC 5228 base).
fn command_extension(name: &str) -> Option<Option<&'static str>> {
    Some(match name {
        "keep" | "discard" | "redirect" | "stop" | "if" | "elsif" | "else" | "require" => None,
        "fileinto" => Some("fileinto"),
        "reject" => Some("reject"),
        "ereject" => Some("ereject"),
        "set" => Some("variables"),
        "setflag" | "addflag" | "removeflag" => Some("imap4flags"),
        "include" | "return" | "global" => Some("include"),
        "addheader" | "deleteheader" => Some("editheader"),
        "vacation" => Some("vacation"),
        "notify" => Some("enotify"),
        _ => return None,
    })
}

/// The extension each test needs (`None` = RFC 5228 base).
fn test_extension(name: &str) -> Option<Option<&'static str>> {
    Some(match name {
        "true" | "false" | "not" | "allof" | "anyof" | "exists" | "size" | "header" | "address" => {
            None
        }
        "envelope" => Some("envelope"),
        "string" => Some("variables"),
        "hasflag" => Some("imap4flags"),
        "mailboxexists" => Some("mailbox"),
        "body" => Some("body"),
        "date" | "currentdate" => Some("date"),
        "duplicate" => Some("duplicate"),
        "valid_notify_method" | "notify_method_capability" => Some("enotify"),
        _ => return None,
    })
}

/// The arguments of one command or test, consumed front to back.
struct Args {
    items: VecDeque<Arg>,
    owner: String,
    kind: &'static str,
    pos: Pos,
}

impl Args {
    fn new(args: &[Arg], owner: &str, kind: &'static str, pos: Pos) -> Args {
        Args {
            items: args.iter().cloned().collect(),
            owner: owner.to_string(),
            kind,
            pos,
        }
    }

    fn where_(&self) -> String {
        format!("the {} {}", self.owner, self.kind)
    }

    fn next_pos(&self) -> Pos {
        self.items.front().map_or(self.pos, Arg::pos)
    }

    /// The next tag, taken off the front.
    fn tag(&mut self) -> Option<(String, Pos)> {
        match self.items.front() {
            Some(Arg::Tag(t, p)) => {
                let r = (t.clone(), *p);
                self.items.pop_front();
                Some(r)
            }
            _ => None,
        }
    }

    fn missing(&self, what: &str) -> CompileError {
        if let Some(Arg::Tag(t, p)) = self.items.front() {
            return p.error(format!(
                "unknown tagged argument ':{t}' for {}",
                self.where_()
            ));
        }
        self.next_pos()
            .error(format!("{} expects {what} as argument", self.where_()))
    }

    fn number(&mut self, what: &str) -> Result<u64, CompileError> {
        match self.items.pop_front() {
            Some(Arg::Number(n, _)) => Ok(n),
            Some(other) => {
                self.items.push_front(other);
                Err(self.missing(&format!("a number ({what})")))
            }
            None => Err(self.missing(&format!("a number ({what})"))),
        }
    }

    fn string(&mut self, what: &str) -> Result<(String, Pos), CompileError> {
        match self.items.pop_front() {
            Some(Arg::Str(s, p)) => Ok((s, p)),
            Some(other) => {
                self.items.push_front(other);
                Err(self.missing(&format!("a string ({what})")))
            }
            None => Err(self.missing(&format!("a string ({what})"))),
        }
    }

    fn string_list(&mut self, what: &str) -> Result<(Vec<String>, Pos), CompileError> {
        match self.items.pop_front() {
            Some(Arg::Str(s, p)) => Ok((vec![s], p)),
            Some(Arg::List(l, p)) => Ok((l, p)),
            Some(other) => {
                self.items.push_front(other);
                Err(self.missing(&format!("a string list ({what})")))
            }
            None => Err(self.missing(&format!("a string list ({what})"))),
        }
    }

    fn has_positional(&self) -> bool {
        matches!(self.items.front(), Some(Arg::Str(..) | Arg::List(..)))
    }

    fn finish(self) -> Result<(), CompileError> {
        match self.items.front() {
            None => Ok(()),
            Some(Arg::Tag(t, p)) => Err(p.error(format!(
                "unknown tagged argument ':{t}' for {}",
                self.where_()
            ))),
            Some(a) => Err(a
                .pos()
                .error(format!("too many arguments for {}", self.where_()))),
        }
    }
}

/// The comparator, match type and address part/index tags a test may carry.
#[derive(Default)]
struct Tags {
    comparator: Option<Comparator>,
    kind: Option<MatchKind>,
    part: Option<AddressPart>,
    index: Option<usize>,
    last: bool,
}

/// Which families of tags a test accepts.
#[derive(Clone, Copy)]
struct Accepts {
    matching: bool,
    address: bool,
    index: bool,
}

impl Compiler {
    fn has(&self, ext: &str) -> bool {
        self.required.contains(ext)
    }

    fn need(&self, ext: &str, what: &str, pos: Pos) -> Result<(), CompileError> {
        if self.has(ext) {
            Ok(())
        } else {
            Err(pos.error(format!("{what} requires the '{ext}' extension")))
        }
    }

    /// A tag of an extension that was not required: unknown, as Pigeonhole says it.
    fn need_tag(&self, ext: &str, tag: &str, pos: Pos) -> Result<(), CompileError> {
        if self.has(ext) {
            Ok(())
        } else {
            Err(pos.error(format!(
                "unknown tagged argument ':{tag}' (it requires the '{ext}' extension)"
            )))
        }
    }

    /// RFC 5228 §3.2: `require <capabilities: string-list>`; an unknown capability is an error.
    fn require(&mut self, node: &CommandNode) -> Result<(), CompileError> {
        if node.block.is_some() || !node.tests.is_empty() {
            return Err(node
                .pos
                .error("the require command takes no tests or block"));
        }
        let mut args = Args::new(&node.args, "require", "command", node.pos);
        let (names, pos) = args.string_list("capabilities")?;
        args.finish()?;
        for name in names {
            // Capability names are compared exactly, as Pigeonhole does (`FILEINTO` is unknown).
            let known = EXTENSIONS.contains(&name.as_str())
                || matches!(
                    name.as_str(),
                    "comparator-i;octet" | "comparator-i;ascii-casemap"
                );
            if !known {
                return Err(pos.error(format!(
                    "require command: unknown Sieve capability `{name}'"
                )));
            }
            // RFC 6131 §2: vacation-seconds implies vacation.
            if name == "vacation-seconds" {
                self.required.insert("vacation".to_string());
            }
            self.required.insert(name);
        }
        Ok(())
    }

    /// A string argument as a value: `encoded-character` decoded (RFC 5228 §2.4.2.4), and
    /// marked for `${…}` expansion when `variables` is on.
    fn value(&self, text: String, pos: Pos) -> Result<Value, CompileError> {
        let text = if self.has("encoded-character") && text.contains("${") {
            checks::decode_encoded(&text).map_err(|e| pos.error(e))?
        } else {
            text
        };
        let expand = self.has("variables") && text.contains("${");
        Ok(Value { text, expand })
    }

    fn values(&self, list: Vec<String>, pos: Pos) -> Result<Vec<Value>, CompileError> {
        list.into_iter().map(|s| self.value(s, pos)).collect()
    }

    fn block(&self, nodes: &[CommandNode], depth: usize) -> Result<Vec<Command>, CompileError> {
        let mut out: Vec<Command> = Vec::new();
        // Whether the previous command was an if/elsif chain that may take elsif/else.
        let mut open_if = false;
        for node in nodes {
            match node.name.as_str() {
                "elsif" | "else" => {
                    let Some(Command {
                        kind:
                            Cmd::If {
                                branches,
                                otherwise,
                            },
                        ..
                    }) = out.last_mut().filter(|_| open_if)
                    else {
                        return Err(node.pos.error(format!(
                            "the {} command must follow an if or elsif command",
                            node.name
                        )));
                    };
                    let body = self.block(node_block(node)?, depth + 1)?;
                    if node.name == "elsif" {
                        let test = self.single_test(node)?;
                        branches.push((test, body));
                    } else {
                        if !node.args.is_empty() || !node.tests.is_empty() {
                            return Err(node.pos.error("the else command takes no arguments"));
                        }
                        *otherwise = Some(body);
                        open_if = false;
                    }
                }
                _ => {
                    let command = self.command(node, depth)?;
                    open_if = matches!(command.kind, Cmd::If { .. });
                    out.push(command);
                }
            }
        }
        Ok(out)
    }

    fn single_test(&self, node: &CommandNode) -> Result<Test, CompileError> {
        if node.tests.len() != 1 || node.test_list || !node.args.is_empty() {
            return Err(node
                .pos
                .error(format!("the {} command expects a single test", node.name)));
        }
        self.test(&node.tests[0])
    }

    fn command(&self, node: &CommandNode, depth: usize) -> Result<Command, CompileError> {
        let name = node.name.as_str();
        let Some(ext) = command_extension(name) else {
            return Err(node.pos.error(format!("unknown command '{name}'")));
        };
        if let Some(ext) = ext.filter(|e| !self.has(e)) {
            return Err(node.pos.error(format!(
                "unknown command '{name}' (it requires the '{ext}' extension)"
            )));
        }
        if name == "require" {
            return Err(node.pos.error(
                "require commands can only be placed at top level at the beginning of the file",
            ));
        }
        let line = node.pos.line;
        if name == "if" {
            let test = self.single_test(node)?;
            let body = self.block(node_block(node)?, depth + 1)?;
            return Ok(Command {
                line,
                kind: Cmd::If {
                    branches: vec![(test, body)],
                    otherwise: None,
                },
            });
        }
        if node.block.is_some() {
            return Err(node
                .pos
                .error(format!("the {name} command takes no block (expected ';')")));
        }
        if !node.tests.is_empty() {
            // `keep stop;` parses as keep with a test: what is missing is the semicolon.
            return Err(node
                .pos
                .error(format!("missing semicolon ';' after {name} command")));
        }
        let mut args = Args::new(&node.args, name, "command", node.pos);
        let kind = self.command_kind(name, &mut args, node.pos)?;
        args.finish()?;
        Ok(Command { line, kind })
    }

    fn command_kind(&self, name: &str, args: &mut Args, pos: Pos) -> Result<Cmd, CompileError> {
        Ok(match name {
            "stop" => Cmd::Stop,
            "return" => Cmd::Return,
            "discard" => Cmd::Discard,
            "keep" => {
                let mut flags = None;
                while let Some((tag, p)) = args.tag() {
                    match tag.as_str() {
                        "flags" => flags = Some(self.flags_tag(args, p)?),
                        _ => return Err(unknown_tag(&tag, "keep", p)),
                    }
                }
                Cmd::Keep { flags }
            }
            "fileinto" => {
                let (mut flags, mut copy, mut create) = (None, false, false);
                while let Some((tag, p)) = args.tag() {
                    match tag.as_str() {
                        "flags" => flags = Some(self.flags_tag(args, p)?),
                        "copy" => {
                            self.need_tag("copy", "copy", p)?;
                            copy = true;
                        }
                        "create" => {
                            self.need_tag("mailbox", "create", p)?;
                            create = true;
                        }
                        _ => return Err(unknown_tag(&tag, "fileinto", p)),
                    }
                }
                let (mailbox, p) = args.string("folder")?;
                Cmd::FileInto {
                    mailbox: self.value(mailbox, p)?,
                    flags,
                    copy,
                    create,
                }
            }
            "redirect" => {
                let mut copy = false;
                while let Some((tag, p)) = args.tag() {
                    match tag.as_str() {
                        "copy" => {
                            self.need_tag("copy", "copy", p)?;
                            copy = true;
                        }
                        _ => return Err(unknown_tag(&tag, "redirect", p)),
                    }
                }
                let (address, p) = args.string("address")?;
                let address = self.value(address, p)?;
                if !address.expand && !checks::valid_redirect_address(&address.text) {
                    return Err(p.error(format!(
                        "specified redirect address '{}' is invalid",
                        address.text
                    )));
                }
                Cmd::Redirect { address, copy }
            }
            "reject" | "ereject" => {
                let (reason, p) = args.string("reason")?;
                Cmd::Reject {
                    reason: self.value(reason, p)?,
                    extended: name == "ereject",
                }
            }
            "set" => self.set(args)?,
            "setflag" | "addflag" | "removeflag" => {
                let op = match name {
                    "setflag" => FlagOp::Set,
                    "addflag" => FlagOp::Add,
                    _ => FlagOp::Remove,
                };
                let (first, p) = args.string_list("flags")?;
                let (variable, flags, fp) = if args.has_positional() {
                    self.need("variables", "a variable name in imap4flags commands", p)?;
                    let var = match <[String; 1]>::try_from(first) {
                        Ok([v]) => v,
                        Err(_) => {
                            return Err(p.error("expected a single variable name"));
                        }
                    };
                    let (flags, fp) = args.string_list("flags")?;
                    (Some(checks::variable_name(&var, p)?), flags, fp)
                } else {
                    (None, first, p)
                };
                Cmd::Flags {
                    op,
                    variable,
                    flags: self.values(flags, fp)?,
                }
            }
            "include" => {
                let (mut location, mut once, mut optional) =
                    (IncludeLocation::Personal, false, false);
                let mut located = false;
                while let Some((tag, p)) = args.tag() {
                    match tag.as_str() {
                        "personal" | "global" if !located => {
                            located = true;
                            location = if tag == "global" {
                                IncludeLocation::Global
                            } else {
                                IncludeLocation::Personal
                            };
                        }
                        "personal" | "global" => {
                            return Err(p.error("the include command takes one location tag"))
                        }
                        "once" => once = true,
                        "optional" => optional = true,
                        _ => return Err(unknown_tag(&tag, "include", p)),
                    }
                }
                let (name, p) = args.string("script name")?;
                // RFC 6609 §3.2: the name is constant; it may not hold a path.
                if name.is_empty()
                    || name.contains('/')
                    || name.contains("${") && self.has("variables")
                {
                    return Err(p.error(format!("include: invalid script name '{name}'")));
                }
                Cmd::Include {
                    name,
                    location,
                    once,
                    optional,
                }
            }
            "global" => {
                self.need("variables", "the 'global' command", pos)?;
                let (names, p) = args.string_list("variable names")?;
                let names = names
                    .iter()
                    .map(|n| checks::variable_name(n, p))
                    .collect::<Result<Vec<_>, _>>()?;
                Cmd::Global(names)
            }
            "addheader" => {
                let mut last = false;
                while let Some((tag, p)) = args.tag() {
                    match tag.as_str() {
                        "last" => last = true,
                        _ => return Err(unknown_tag(&tag, "addheader", p)),
                    }
                }
                let (field, p) = args.string("field name")?;
                let field = self.value(field, p)?;
                if !field.expand {
                    checks::header_name(&field.text, "addheader", p)?;
                }
                let (value, vp) = args.string("value")?;
                if !value.contains("${") && value.len() > checks::MAX_HEADER_VALUE_BYTES {
                    return Err(vp.error(format!(
                        "addheader command: specified header value is too large ({} bytes)",
                        value.len()
                    )));
                }
                Cmd::AddHeader {
                    name: field,
                    value: self.value(value, vp)?,
                    last,
                }
            }
            "deleteheader" => {
                let tags = self.match_tags(
                    args,
                    "deleteheader",
                    Accepts {
                        matching: true,
                        address: false,
                        index: true,
                    },
                )?;
                let index = tags_index(&tags, pos)?;
                let (field, p) = args.string("field name")?;
                let field = self.value(field, p)?;
                if !field.expand {
                    checks::header_name(&field.text, "deleteheader", p)?;
                }
                let spec = self.spec(&tags, pos)?;
                let keys = if args.has_positional() {
                    let (k, kp) = args.string_list("value patterns")?;
                    Some(self.keys(k, kp, &spec)?)
                } else {
                    None
                };
                Cmd::DeleteHeader {
                    name: field,
                    index,
                    spec,
                    keys,
                }
            }
            "vacation" => self.vacation(args)?,
            "notify" => self.notify(args)?,
            _ => return Err(pos.error(format!("unknown command '{name}'"))),
        })
    }

    /// `:flags <list-of-flags>` (RFC 5232 §5).
    fn flags_tag(&self, args: &mut Args, p: Pos) -> Result<Vec<Value>, CompileError> {
        self.need_tag("imap4flags", "flags", p)?;
        let (list, lp) = args.string_list("flags")?;
        self.values(list, lp)
    }

    /// RFC 5229 §4: `set [MODIFIER] <name: string> <value: string>`.
    fn set(&self, args: &mut Args) -> Result<Cmd, CompileError> {
        let mut modifiers: Vec<Modifier> = Vec::new();
        while let Some((tag, p)) = args.tag() {
            let m = match tag.as_str() {
                "lower" => Modifier::Lower,
                "upper" => Modifier::Upper,
                "lowerfirst" => Modifier::LowerFirst,
                "upperfirst" => Modifier::UpperFirst,
                "quotewildcard" => Modifier::QuoteWildcard,
                "length" => Modifier::Length,
                "quoteregex" => {
                    self.need_tag("regex", "quoteregex", p)?;
                    Modifier::QuoteRegex
                }
                "encodeurl" => {
                    self.need_tag("enotify", "encodeurl", p)?;
                    Modifier::EncodeUrl
                }
                _ => return Err(unknown_tag(&tag, "set", p)),
            };
            if modifiers.iter().any(|o| o.precedence() == m.precedence()) {
                return Err(p.error(format!(
                    "set command: modifier :{tag} cannot be combined with another modifier of the same precedence"
                )));
            }
            modifiers.push(m);
        }
        modifiers.sort_by_key(|m| std::cmp::Reverse(m.precedence()));
        let (name, p) = args.string("name")?;
        let name = checks::variable_name(&name, p)?;
        let (value, vp) = args.string("value")?;
        Ok(Cmd::Set {
            name,
            value: self.value(value, vp)?,
            modifiers,
        })
    }

    /// RFC 5230 §4 and RFC 6131.
    fn vacation(&self, args: &mut Args) -> Result<Cmd, CompileError> {
        let mut v = VacationCmd {
            period: None,
            subject: None,
            from: None,
            addresses: Vec::new(),
            mime: false,
            handle: None,
            reason: Value {
                text: String::new(),
                expand: false,
            },
        };
        while let Some((tag, p)) = args.tag() {
            match tag.as_str() {
                "days" => v.period = Some(args.number("days")?.saturating_mul(86_400)),
                "seconds" => {
                    self.need_tag("vacation-seconds", "seconds", p)?;
                    v.period = Some(args.number("seconds")?);
                }
                "subject" => {
                    let (s, sp) = args.string("subject")?;
                    v.subject = Some(self.value(s, sp)?);
                }
                "from" => {
                    let (s, sp) = args.string("from")?;
                    if !s.contains("${") && !checks::valid_from_address(&s) {
                        return Err(sp.error(format!(
                            "specified :from address '{s}' is invalid for vacation action"
                        )));
                    }
                    v.from = Some(self.value(s, sp)?);
                }
                "addresses" => {
                    let (l, lp) = args.string_list("addresses")?;
                    v.addresses = self.values(l, lp)?;
                }
                "mime" => v.mime = true,
                "handle" => {
                    let (s, sp) = args.string("handle")?;
                    v.handle = Some(self.value(s, sp)?);
                }
                _ => return Err(unknown_tag(&tag, "vacation", p)),
            }
        }
        let (reason, p) = args.string("reason")?;
        v.reason = self.value(reason, p)?;
        Ok(Cmd::Vacation(Box::new(v)))
    }

    /// RFC 5435 §3.
    fn notify(&self, args: &mut Args) -> Result<Cmd, CompileError> {
        let mut n = NotifyCmd {
            method: Value {
                text: String::new(),
                expand: false,
            },
            from: None,
            importance: None,
            options: Vec::new(),
            message: None,
        };
        while let Some((tag, p)) = args.tag() {
            match tag.as_str() {
                "from" => {
                    let (s, sp) = args.string("from")?;
                    n.from = Some(self.value(s, sp)?);
                }
                "importance" => {
                    let (s, sp) = args.string("importance")?;
                    if !matches!(s.as_str(), "1" | "2" | "3") && !s.contains("${") {
                        return Err(sp.error("notify: :importance must be \"1\", \"2\" or \"3\""));
                    }
                    n.importance = Some(self.value(s, sp)?);
                }
                "options" => {
                    let (l, lp) = args.string_list("options")?;
                    n.options = self.values(l, lp)?;
                }
                "message" => {
                    let (s, sp) = args.string("message")?;
                    n.message = Some(self.value(s, sp)?);
                }
                _ => return Err(unknown_tag(&tag, "notify", p)),
            }
        }
        let (method, p) = args.string("method")?;
        n.method = self.value(method, p)?;
        if !n.method.expand {
            checks::notify_method(&n.method.text).map_err(|e| p.error(e))?;
        }
        Ok(Cmd::Notify(Box::new(n)))
    }

    /// Comparator, match type, address part and index tags, in any order (RFC 5228 §2.6.2).
    fn match_tags(
        &self,
        args: &mut Args,
        owner: &str,
        accepts: Accepts,
    ) -> Result<Tags, CompileError> {
        let mut tags = Tags::default();
        while let Some((tag, p)) = peek_tag(args) {
            let set_kind = |tags: &mut Tags, kind| {
                if tags.kind.is_some() {
                    return Err(p.error(format!("{owner}: more than one match type given")));
                }
                tags.kind = Some(kind);
                Ok(())
            };
            let set_part = |tags: &mut Tags, part| {
                if tags.part.is_some() {
                    return Err(p.error(format!("{owner}: more than one address part given")));
                }
                tags.part = Some(part);
                Ok(())
            };
            match tag.as_str() {
                "comparator" if accepts.matching => {
                    args.tag();
                    if tags.comparator.is_some() {
                        return Err(p.error(format!("{owner}: more than one comparator given")));
                    }
                    let (name, np) = args.string("comparator name")?;
                    let Some(c) = Comparator::from_name(&name) else {
                        return Err(np.error(format!("unknown comparator '{name}'")));
                    };
                    if c == Comparator::AsciiNumeric {
                        self.need(
                            "comparator-i;ascii-numeric",
                            "the 'i;ascii-numeric' comparator",
                            np,
                        )?;
                    }
                    tags.comparator = Some(c);
                }
                "is" | "contains" | "matches" if accepts.matching => {
                    args.tag();
                    set_kind(
                        &mut tags,
                        match tag.as_str() {
                            "is" => MatchKind::Is,
                            "contains" => MatchKind::Contains,
                            _ => MatchKind::Matches,
                        },
                    )?;
                }
                "regex" if accepts.matching => {
                    args.tag();
                    self.need_tag("regex", "regex", p)?;
                    set_kind(&mut tags, MatchKind::Regex)?;
                }
                "value" | "count" if accepts.matching => {
                    args.tag();
                    self.need_tag("relational", &tag, p)?;
                    let (rel, rp) = args.string("relational operator")?;
                    let Some(r) = Relation::from_name(&rel) else {
                        return Err(rp.error(format!("invalid relational match '{rel}'")));
                    };
                    set_kind(
                        &mut tags,
                        if tag == "value" {
                            MatchKind::Value(r)
                        } else {
                            MatchKind::Count(r)
                        },
                    )?;
                }
                "all" | "localpart" | "domain" if accepts.address => {
                    args.tag();
                    set_part(
                        &mut tags,
                        match tag.as_str() {
                            "all" => AddressPart::All,
                            "localpart" => AddressPart::LocalPart,
                            _ => AddressPart::Domain,
                        },
                    )?;
                }
                "user" | "detail" if accepts.address => {
                    args.tag();
                    self.need_tag("subaddress", &tag, p)?;
                    set_part(
                        &mut tags,
                        if tag == "user" {
                            AddressPart::User
                        } else {
                            AddressPart::Detail
                        },
                    )?;
                }
                "index" if accepts.index => {
                    args.tag();
                    // RFC 5293 §5 gives deleteheader its own :index; elsewhere it is RFC 5260's.
                    if owner != "deleteheader" {
                        self.need_tag("index", "index", p)?;
                    }
                    let n = args.number("index")?;
                    if n == 0 {
                        return Err(p.error(":index must be 1 or more"));
                    }
                    tags.index = Some(usize::try_from(n).unwrap_or(usize::MAX));
                }
                "last" if accepts.index => {
                    args.tag();
                    if owner != "deleteheader" {
                        self.need_tag("index", "last", p)?;
                    }
                    tags.last = true;
                }
                _ => break,
            }
        }
        Ok(tags)
    }

    /// The match spec from the tags, checking the comparator supports the match type.
    fn spec(&self, tags: &Tags, pos: Pos) -> Result<MatchSpec, CompileError> {
        let comparator = tags.comparator.unwrap_or(Comparator::AsciiCasemap);
        let kind = tags.kind.unwrap_or(MatchKind::Is);
        // RFC 4790 §9.1: i;ascii-numeric has equality and ordering, no substring matching.
        if comparator == Comparator::AsciiNumeric
            && matches!(
                kind,
                MatchKind::Contains | MatchKind::Matches | MatchKind::Regex
            )
        {
            return Err(pos.error(
                "the specified comparator 'i;ascii-numeric' does not support substring matching",
            ));
        }
        Ok(MatchSpec { comparator, kind })
    }

    /// The key list, with constant regexes compiled now (draft-ietf-sieve-regex §3: a bad
    /// expression is a compile error).
    fn keys(&self, list: Vec<String>, pos: Pos, spec: &MatchSpec) -> Result<Keys, CompileError> {
        let values = self.values(list, pos)?;
        let regexes = if spec.kind == MatchKind::Regex && values.iter().all(|v| !v.expand) {
            let mut compiled = Vec::with_capacity(values.len());
            for v in &values {
                compiled.push(
                    checks::build_regex(&v.text, spec.comparator, self.limits.max_regex_bytes)
                        .map_err(|e| pos.error(e))?,
                );
            }
            Some(compiled)
        } else {
            None
        };
        Ok(Keys { values, regexes })
    }

    fn test(&self, node: &TestNode) -> Result<Test, CompileError> {
        let name = node.name.as_str();
        let Some(ext) = test_extension(name) else {
            return Err(node.pos.error(format!("unknown test '{name}'")));
        };
        if let Some(ext) = ext.filter(|e| !self.has(e)) {
            return Err(node.pos.error(format!(
                "unknown test '{name}' (it requires the '{ext}' extension)"
            )));
        }
        match name {
            "not" => {
                if node.tests.len() != 1 || node.test_list || !node.args.is_empty() {
                    return Err(node.pos.error("the not test expects a single test"));
                }
                return Ok(Test::Not(Box::new(self.test(&node.tests[0])?)));
            }
            "allof" | "anyof" => {
                if !node.test_list || !node.args.is_empty() {
                    return Err(node
                        .pos
                        .error(format!("the {name} test expects a test list")));
                }
                let tests = node
                    .tests
                    .iter()
                    .map(|t| self.test(t))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if name == "allof" {
                    Test::AllOf(tests)
                } else {
                    Test::AnyOf(tests)
                });
            }
            _ => {}
        }
        if !node.tests.is_empty() {
            return Err(node.pos.error(format!("the {name} test takes no tests")));
        }
        let mut args = Args::new(&node.args, name, "test", node.pos);
        let test = self.test_kind(name, &mut args, node.pos)?;
        args.finish()?;
        Ok(test)
    }

    fn test_kind(&self, name: &str, args: &mut Args, pos: Pos) -> Result<Test, CompileError> {
        const MATCH: Accepts = Accepts {
            matching: true,
            address: false,
            index: false,
        };
        Ok(match name {
            "true" => Test::True,
            "false" => Test::False,
            "exists" => {
                let (names, p) = args.string_list("header names")?;
                Test::Exists(self.values(names, p)?)
            }
            "size" => {
                let over = match args.tag() {
                    Some((t, _)) if t == "over" => true,
                    Some((t, _)) if t == "under" => false,
                    Some((t, p)) => return Err(unknown_tag(&t, "size", p)),
                    None => return Err(pos.error("the size test requires :over or :under")),
                };
                let limit = args.number("limit")?;
                Test::Size { over, limit }
            }
            "header" => {
                let tags = self.match_tags(
                    args,
                    name,
                    Accepts {
                        index: true,
                        ..MATCH
                    },
                )?;
                let index = tags_index(&tags, pos)?;
                let spec = self.spec(&tags, pos)?;
                let (names, np) = args.string_list("header names")?;
                let (keys, kp) = args.string_list("key list")?;
                Test::Header {
                    names: self.values(names, np)?,
                    keys: self.keys(keys, kp, &spec)?,
                    spec,
                    index,
                }
            }
            "address" | "envelope" => {
                let index_ok = name == "address";
                let tags = self.match_tags(
                    args,
                    name,
                    Accepts {
                        matching: true,
                        address: true,
                        index: index_ok,
                    },
                )?;
                let index = tags_index(&tags, pos)?;
                let spec = self.spec(&tags, pos)?;
                let part = tags.part.unwrap_or(AddressPart::All);
                let (names, np) = args.string_list("header names")?;
                let names = self.values(names, np)?;
                if name == "address" {
                    for n in names.iter().filter(|n| !n.expand) {
                        if !checks::is_address_header(&n.text) {
                            return Err(np.error(format!(
                                "specified header '{}' is not allowed for the address test",
                                n.text
                            )));
                        }
                    }
                }
                if name == "envelope" {
                    // Pigeonhole: "auth" is no address, so no address part may be named for it.
                    if let Some(explicit) = tags.part {
                        if names.iter().any(|n| n.text.eq_ignore_ascii_case("auth")) {
                            let tag = match explicit {
                                AddressPart::All => "all",
                                AddressPart::LocalPart => "localpart",
                                AddressPart::Domain => "domain",
                                AddressPart::User => "user",
                                AddressPart::Detail => "detail",
                            };
                            return Err(np.error(format!(
                                "address part ':{tag}' specified while non-address envelope part 'auth' is tested with the envelope test"
                            )));
                        }
                    }
                    for n in &names {
                        // Pigeonhole's envelope parts: from, to, auth.
                        if !n.expand
                            && !matches!(
                                n.text.to_ascii_lowercase().as_str(),
                                "from" | "to" | "auth"
                            )
                        {
                            return Err(np.error(format!(
                                "specified envelope part '{}' is not supported by the envelope test",
                                n.text
                            )));
                        }
                    }
                }
                let (keys, kp) = args.string_list("key list")?;
                let keys = self.keys(keys, kp, &spec)?;
                if name == "envelope" {
                    Test::Envelope {
                        spec,
                        part,
                        names,
                        keys,
                    }
                } else {
                    Test::Address {
                        spec,
                        part,
                        names,
                        keys,
                        index,
                    }
                }
            }
            "string" => {
                let tags = self.match_tags(args, name, MATCH)?;
                let spec = self.spec(&tags, pos)?;
                let (sources, sp) = args.string_list("source")?;
                let (keys, kp) = args.string_list("key list")?;
                Test::String {
                    sources: self.values(sources, sp)?,
                    keys: self.keys(keys, kp, &spec)?,
                    spec,
                }
            }
            "hasflag" => {
                let tags = self.match_tags(args, name, MATCH)?;
                let spec = self.spec(&tags, pos)?;
                let (first, fp) = args.string_list("flags")?;
                let (variables, keys, kp) = if args.has_positional() {
                    self.need("variables", "a variable list in hasflag", fp)?;
                    let vars = first
                        .iter()
                        .map(|v| checks::variable_name(v, fp))
                        .collect::<Result<Vec<_>, _>>()?;
                    let (keys, kp) = args.string_list("flags")?;
                    (vars, keys, kp)
                } else {
                    (Vec::new(), first, fp)
                };
                Test::HasFlag {
                    keys: self.keys(keys, kp, &spec)?,
                    spec,
                    variables,
                }
            }
            "mailboxexists" => {
                let (names, p) = args.string_list("mailbox names")?;
                Test::MailboxExists(self.values(names, p)?)
            }
            "body" => {
                let mut transform = None;
                let mut tags = Tags::default();
                loop {
                    let more = self.match_tags(args, name, MATCH)?;
                    merge_tags(&mut tags, more, pos)?;
                    let Some((t, p)) = peek_tag(args) else { break };
                    let tr = match t.as_str() {
                        "raw" => Transform::Raw,
                        "text" => Transform::Text,
                        "content" => {
                            args.tag();
                            let (types, tp) = args.string_list("content types")?;
                            Transform::Content(self.values(types, tp)?)
                        }
                        _ => break,
                    };
                    if !matches!(tr, Transform::Content(_)) {
                        args.tag();
                    }
                    if transform.is_some() {
                        return Err(p.error("body: more than one body transform given"));
                    }
                    transform = Some(tr);
                }
                let spec = self.spec(&tags, pos)?;
                let (keys, kp) = args.string_list("key list")?;
                Test::Body {
                    transform: transform.unwrap_or(Transform::Text),
                    keys: self.keys(keys, kp, &spec)?,
                    spec,
                }
            }
            "date" | "currentdate" => {
                let mut zone = ZoneArg::Local;
                let mut zoned = false;
                let mut tags = Tags::default();
                loop {
                    let more = self.match_tags(
                        args,
                        name,
                        Accepts {
                            index: name == "date",
                            ..MATCH
                        },
                    )?;
                    merge_tags(&mut tags, more, pos)?;
                    let Some((t, p)) = peek_tag(args) else { break };
                    let z = match t.as_str() {
                        "zone" => {
                            args.tag();
                            let (z, zp) = args.string("zone")?;
                            ZoneArg::Fixed(checks::zone_offset(&z).ok_or_else(|| {
                                zp.error(format!("{name}: invalid time zone '{z}'"))
                            })?)
                        }
                        "originalzone" if name == "date" => {
                            args.tag();
                            ZoneArg::Original
                        }
                        _ => break,
                    };
                    if zoned {
                        return Err(p.error(format!("{name}: more than one zone given")));
                    }
                    zoned = true;
                    zone = z;
                }
                let index = tags_index(&tags, pos)?;
                let spec = self.spec(&tags, pos)?;
                let header = if name == "date" {
                    let (h, hp) = args.string("header name")?;
                    Some(self.value(h, hp)?)
                } else {
                    None
                };
                let (part, pp) = args.string("date part")?;
                let part = self.value(part, pp)?;
                if !part.expand && !checks::valid_date_part(&part.text) {
                    return Err(pp.error(format!("{name}: unknown date part '{}'", part.text)));
                }
                let (keys, kp) = args.string_list("key list")?;
                let keys = self.keys(keys, kp, &spec)?;
                match header {
                    Some(header) => Test::Date {
                        spec,
                        zone,
                        header,
                        part,
                        keys,
                        index,
                    },
                    None => Test::CurrentDate {
                        spec,
                        zone,
                        part,
                        keys,
                    },
                }
            }
            "duplicate" => {
                let (mut handle, mut id, mut period, mut last) =
                    (None, DuplicateId::MessageId, None, false);
                while let Some((t, p)) = args.tag() {
                    match t.as_str() {
                        "handle" => {
                            let (h, hp) = args.string("handle")?;
                            handle = Some(self.value(h, hp)?);
                        }
                        "header" | "uniqueid" if id != DuplicateId::MessageId => {
                            return Err(
                                p.error("duplicate: :header and :uniqueid cannot be used together")
                            )
                        }
                        "header" => {
                            let (h, hp) = args.string("header name")?;
                            id = DuplicateId::Header(self.value(h, hp)?);
                        }
                        "uniqueid" => {
                            let (h, hp) = args.string("unique id")?;
                            id = DuplicateId::UniqueId(self.value(h, hp)?);
                        }
                        "seconds" => period = Some(args.number("seconds")?),
                        "last" => last = true,
                        _ => return Err(unknown_tag(&t, "duplicate", p)),
                    }
                }
                Test::Duplicate {
                    handle,
                    id,
                    period,
                    last,
                }
            }
            "valid_notify_method" => {
                let (uris, p) = args.string_list("notification URIs")?;
                Test::ValidNotifyMethod(self.values(uris, p)?)
            }
            "notify_method_capability" => {
                let tags = self.match_tags(args, name, MATCH)?;
                let spec = self.spec(&tags, pos)?;
                let (uri, up) = args.string("notification URI")?;
                let (cap, cp) = args.string("capability")?;
                let (keys, kp) = args.string_list("key list")?;
                Test::NotifyMethodCapability {
                    uri: self.value(uri, up)?,
                    capability: self.value(cap, cp)?,
                    keys: self.keys(keys, kp, &spec)?,
                    spec,
                }
            }
            _ => return Err(pos.error(format!("unknown test '{name}'"))),
        })
    }
}

fn node_block(node: &CommandNode) -> Result<&[CommandNode], CompileError> {
    node.block.as_deref().ok_or_else(|| {
        node.pos
            .error(format!("the {} command expects a block", node.name))
    })
}

fn unknown_tag(tag: &str, owner: &str, pos: Pos) -> CompileError {
    pos.error(format!(
        "unknown tagged argument ':{tag}' for the {owner} command"
    ))
}

fn peek_tag(args: &Args) -> Option<(String, Pos)> {
    match args.items.front() {
        Some(Arg::Tag(t, p)) => Some((t.clone(), *p)),
        _ => None,
    }
}

fn merge_tags(into: &mut Tags, more: Tags, pos: Pos) -> Result<(), CompileError> {
    let dup = |what: &str| pos.error(format!("more than one {what} given"));
    if let Some(c) = more.comparator {
        if into.comparator.replace(c).is_some() {
            return Err(dup("comparator"));
        }
    }
    if let Some(k) = more.kind {
        if into.kind.replace(k).is_some() {
            return Err(dup("match type"));
        }
    }
    if let Some(i) = more.index {
        into.index = Some(i);
    }
    into.last |= more.last;
    Ok(())
}

/// RFC 5260 §6: `:last` only with `:index`.
fn tags_index(tags: &Tags, pos: Pos) -> Result<Option<Index>, CompileError> {
    match (tags.index, tags.last) {
        (Some(n), last) => Ok(Some(Index { n, last })),
        (None, true) => Err(pos.error("the :last tag requires the :index tag")),
        (None, false) => Ok(None),
    }
}
