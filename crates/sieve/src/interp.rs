//! The interpreter: runs a compiled [`Program`] against one message and collects the actions,
//! the implicit keep and the flags (RFC 5228 §2.10, with the extensions' actions).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::message;
use crate::program::*;
use crate::variables::{self, Lookup};
use crate::{Action, Context, DuplicateMark, Host, IncludeLocation, Outcome, RuntimeError, Script};

/// What a command tells the block around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Next,
    /// `stop` (RFC 5228 §3.3): ends every script of the run.
    Stop,
    /// `return` (RFC 6609 §3.3): ends the current script only.
    Return,
}

/// The variables of one script (RFC 5229 §3: each script has its own; RFC 6609 §3.4: `global`
/// ones are shared with the whole run).
#[derive(Default)]
pub(crate) struct Scope {
    vars: HashMap<String, String>,
    pub(crate) matches: Vec<String>,
    globals_declared: HashSet<String>,
    pub(crate) variables_enabled: bool,
}

/// Everything one run accumulates.
pub(crate) struct Run<'a> {
    original: &'a [u8],
    /// The message as editheader left it so far (RFC 5293 §3: later tests see the edits).
    pub(crate) edited: Option<Arc<[u8]>>,
    pub(crate) ctx: &'a Context,
    pub(crate) host: &'a mut dyn Host,
    pub(crate) actions: Vec<Action>,
    /// The line each action came from (for conflict messages).
    action_lines: Vec<u32>,
    pub(crate) implicit_keep: bool,
    /// imap4flags' internal variable (RFC 5232 §3), in the order flags were added.
    pub(crate) flags: Vec<String>,
    globals: HashMap<String, String>,
    included: HashSet<(IncludeLocation, String)>,
    include_stack: Vec<(IncludeLocation, String)>,
    pub(crate) duplicate_marks: Vec<DuplicateMark>,
    pub(crate) line: u32,
    /// The line of the vacation command that ran, 0 = none yet (one per run, RFC 5230 §4).
    pub(crate) vacation_line: u32,
    /// Body texts already extracted, per transform (cleared when editheader changes the
    /// message).
    pub(crate) body_cache: Vec<(crate::ext::body::BodyTransform, Arc<Vec<String>>)>,
}

/// Variables as [`Lookup`] sees them: the script's own, or the run's globals.
struct View<'s> {
    scope: &'s Scope,
    globals: &'s HashMap<String, String>,
}

impl Lookup for View<'_> {
    fn variable(&self, name: &str) -> Option<&str> {
        if let Some(g) = name.strip_prefix("global.") {
            return self.globals.get(g).map(String::as_str);
        }
        if self.scope.globals_declared.contains(name) {
            return self.globals.get(name).map(String::as_str);
        }
        self.scope.vars.get(name).map(String::as_str)
    }

    fn match_variable(&self, n: usize) -> Option<&str> {
        self.scope.matches.get(n).map(String::as_str)
    }
}

type Result<T> = std::result::Result<T, RuntimeError>;

/// Runs `script` to the end and builds the outcome; a run-time error becomes the safe outcome
/// (no actions, implicit keep into INBOX without flags: nothing is lost).
pub(crate) fn run(script: &Script, message: &[u8], ctx: &Context, host: &mut dyn Host) -> Outcome {
    let mut run = Run {
        original: message,
        edited: None,
        ctx,
        host,
        actions: Vec::new(),
        action_lines: Vec::new(),
        implicit_keep: true,
        flags: Vec::new(),
        globals: HashMap::new(),
        included: HashSet::new(),
        include_stack: Vec::new(),
        duplicate_marks: Vec::new(),
        line: 0,
        vacation_line: 0,
        body_cache: Vec::new(),
    };
    match run.script(&script.program) {
        Ok(_) => {
            let implicit_keep = run.implicit_keep;
            Outcome {
                implicit_keep,
                implicit_keep_flags: if implicit_keep {
                    run.flags.clone()
                } else {
                    Vec::new()
                },
                implicit_keep_edited: if implicit_keep {
                    run.edited.clone()
                } else {
                    None
                },
                actions: run.actions,
                duplicate_marks: run.duplicate_marks,
                error: None,
            }
        }
        Err(error) => Outcome {
            actions: Vec::new(),
            implicit_keep: true,
            implicit_keep_flags: Vec::new(),
            implicit_keep_edited: None,
            duplicate_marks: Vec::new(),
            error: Some(error),
        },
    }
}

impl Run<'_> {
    /// The message as the tests see it now.
    pub(crate) fn message(&self) -> &[u8] {
        match &self.edited {
            Some(m) => m,
            None => self.original,
        }
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> RuntimeError {
        RuntimeError {
            line: self.line,
            message: message.into(),
        }
    }

    fn script(&mut self, program: &Program) -> Result<Flow> {
        let mut scope = Scope {
            variables_enabled: program.variables,
            ..Scope::default()
        };
        self.block(&program.commands, &mut scope)
    }

    fn block(&mut self, commands: &[Command], scope: &mut Scope) -> Result<Flow> {
        for command in commands {
            self.line = command.line;
            let flow = self.command(&command.kind, scope)?;
            if flow != Flow::Next {
                return Ok(flow);
            }
        }
        Ok(Flow::Next)
    }

    /// A string argument with its variables expanded (RFC 5229 §3).
    pub(crate) fn expand(&self, value: &Value, scope: &Scope) -> String {
        if value.expand {
            variables::expand(
                &value.text,
                &View {
                    scope,
                    globals: &self.globals,
                },
            )
        } else {
            value.text.clone()
        }
    }

    pub(crate) fn expand_all(&self, values: &[Value], scope: &Scope) -> Vec<String> {
        values.iter().map(|v| self.expand(v, scope)).collect()
    }

    fn set_variable(&mut self, scope: &mut Scope, name: &str, value: String) {
        let value = variables::truncate(value, variables::MAX_VARIABLE_BYTES);
        if let Some(g) = name.strip_prefix("global.") {
            self.globals.insert(g.to_string(), value);
        } else if scope.globals_declared.contains(name) {
            self.globals.insert(name.to_string(), value);
        } else {
            scope.vars.insert(name.to_string(), value);
        }
    }

    fn get_variable(&self, scope: &Scope, name: &str) -> String {
        View {
            scope,
            globals: &self.globals,
        }
        .variable(name)
        .unwrap_or("")
        .to_string()
    }

    fn command(&mut self, cmd: &Cmd, scope: &mut Scope) -> Result<Flow> {
        match cmd {
            Cmd::If {
                branches,
                otherwise,
            } => {
                for (test, body) in branches {
                    if self.test(test, scope)? {
                        return self.block(body, scope);
                    }
                }
                if let Some(body) = otherwise {
                    return self.block(body, scope);
                }
            }
            Cmd::Stop => return Ok(Flow::Stop),
            Cmd::Return => return Ok(Flow::Return),
            Cmd::Keep { flags } => {
                let flags = self.action_flags(flags.as_deref(), scope);
                if self.add_keep(flags)? {
                    self.implicit_keep = false;
                }
            }
            Cmd::Discard => {
                // RFC 5228 §4.4: cancels the implicit keep; explicit deliveries stand.
                if !self.actions.contains(&Action::Discard) {
                    self.push(Action::Discard)?;
                }
                self.implicit_keep = false;
            }
            Cmd::FileInto {
                mailbox,
                flags,
                copy,
                create,
            } => {
                let mailbox = self.expand(mailbox, scope);
                let flags = self.action_flags(flags.as_deref(), scope);
                let added = if mailbox.eq_ignore_ascii_case("INBOX") {
                    // `fileinto "INBOX"` is the keep action (reported as such).
                    self.add_keep(flags)?
                } else {
                    self.add_fileinto(mailbox, flags, *copy, *create)?
                };
                if added && !copy {
                    self.implicit_keep = false;
                }
            }
            Cmd::Redirect { address, copy } => {
                let address = self.expand(address, scope);
                if !crate::checks::valid_redirect_address(&address) {
                    return Err(
                        self.error(format!("specified redirect address '{address}' is invalid"))
                    );
                }
                if self.add_redirect(address, *copy)? && !copy {
                    self.implicit_keep = false;
                }
            }
            Cmd::Reject { reason, extended } => {
                let reason = self.expand(reason, scope);
                if self
                    .actions
                    .iter()
                    .any(|a| matches!(a, Action::Reject { .. }))
                {
                    return Err(self.error("duplicate reject/ereject action not allowed"));
                }
                self.push(Action::Reject {
                    reason,
                    extended: *extended,
                })?;
                self.implicit_keep = false;
            }
            Cmd::Set {
                name,
                value,
                modifiers,
            } => {
                let value = variables::apply_modifiers(self.expand(value, scope), modifiers);
                self.set_variable(scope, name, value);
            }
            Cmd::Flags {
                op,
                variable,
                flags,
            } => {
                let given = split_flags(&self.expand_all(flags, scope));
                let current = match variable {
                    Some(v) => split_flags(&[self.get_variable(scope, v)]),
                    None => std::mem::take(&mut self.flags),
                };
                let updated = apply_flags(current, given, *op);
                match variable {
                    Some(v) => self.set_variable(scope, v, updated.join(" ")),
                    None => self.flags = updated,
                }
            }
            Cmd::Include {
                name,
                location,
                once,
                optional,
            } => return self.include(name, *location, *once, *optional),
            Cmd::Global(names) => {
                scope.globals_declared.extend(names.iter().cloned());
            }
            Cmd::AddHeader { name, value, last } => {
                let name = self.expand(name, scope);
                let value = self.expand(value, scope);
                self.add_header(&name, &value, *last)?;
            }
            Cmd::DeleteHeader {
                name,
                index,
                spec,
                keys,
            } => {
                let name = self.expand(name, scope);
                self.delete_header(&name, *index, spec, keys.as_ref(), scope)?;
            }
            Cmd::Vacation(v) => self.vacation(v, scope)?,
            Cmd::Notify(n) => self.notify(n, scope)?,
        }
        Ok(Flow::Next)
    }

    /// RFC 6609 §3.2: runs another script with its own variables and the shared globals.
    fn include(
        &mut self,
        name: &str,
        location: IncludeLocation,
        once: bool,
        optional: bool,
    ) -> Result<Flow> {
        let key = (location, name.to_string());
        if once && self.included.contains(&key) {
            return Ok(Flow::Next);
        }
        if self.include_stack.contains(&key) {
            return Err(self.error(format!(
                "include: script '{name}' includes itself (include loop)"
            )));
        }
        if self.include_stack.len() >= self.ctx.limits.max_include_depth {
            return Err(self.error(format!(
                "include: nesting too deep (limit {})",
                self.ctx.limits.max_include_depth
            )));
        }
        let script = match self.host.include(name, location) {
            Ok(s) => s,
            Err(_) if optional => return Ok(Flow::Next),
            Err(e) => {
                return Err(self.error(format!("include: failed to include script '{name}': {e}")))
            }
        };
        self.included.insert(key.clone());
        self.include_stack.push(key);
        let line = self.line;
        let flow = self.script(&script.program);
        self.include_stack.pop();
        self.line = line;
        Ok(match flow? {
            Flow::Stop => Flow::Stop,
            Flow::Next | Flow::Return => Flow::Next,
        })
    }

    /// The flags an action stores with: its `:flags` or the internal variable (RFC 5232 §5).
    fn action_flags(&self, given: Option<&[Value]>, scope: &Scope) -> Vec<String> {
        match given {
            Some(list) => apply_flags(
                Vec::new(),
                split_flags(&self.expand_all(list, scope)),
                FlagOp::Add,
            ),
            None => self.flags.clone(),
        }
    }

    /// Adds an action, enforcing `max_actions` and the reject conflicts.
    pub(crate) fn push(&mut self, action: Action) -> Result<()> {
        self.check_conflict(&action)?;
        if self.actions.len() >= self.ctx.limits.max_actions {
            return Err(self.error(format!(
                "total number of actions exceeds policy limit ({} > {})",
                self.actions.len() + 1,
                self.ctx.limits.max_actions
            )));
        }
        self.actions.push(action);
        self.action_lines.push(self.line);
        Ok(())
    }

    /// RFC 5429 §2.1, as Pigeonhole applies it: reject/ereject cannot be combined with an
    /// action that delivers the message (keep, fileinto, redirect, even with `:copy`) nor with
    /// vacation, which also answers the sender; nor with a second reject. Whichever comes
    /// second fails the run (implicit keep), with Pigeonhole's wording.
    fn check_conflict(&self, new: &Action) -> Result<()> {
        let is_reject = |a: &Action| matches!(a, Action::Reject { .. });
        if is_reject(new) && self.actions.iter().any(is_reject) {
            return Err(self.error("duplicate reject/ereject action not allowed"));
        }
        for (old, line) in self.actions.iter().zip(&self.action_lines) {
            let other = match (is_reject(new), is_reject(old)) {
                (true, false) => (old, *line),
                (false, true) => (new, self.line),
                _ => continue,
            };
            let why = match other.0 {
                Action::Keep { .. } | Action::FileInto { .. } => "the store action",
                Action::Redirect { .. } => "the redirect action",
                Action::Vacation(_) => "the vacation action",
                _ => continue,
            };
            let effect = if matches!(other.0, Action::Vacation(_)) {
                "also sends a response to the sender"
            } else {
                "tries to deliver the message"
            };
            return Err(self.error(format!(
                "reject/ereject action conflicts with other action: {why} (line {}) {effect}",
                other.1
            )));
        }
        Ok(())
    }

    /// RFC 5228 §2.10.3: storing into INBOX twice is done once. As in Pigeonhole, the later
    /// action's flags replace the earlier ones and the duplicate changes nothing else (it
    /// does not cancel the implicit keep). Returns whether a new action was added.
    fn add_keep(&mut self, flags: Vec<String>) -> Result<bool> {
        let edited = self.edited.clone();
        for action in &mut self.actions {
            if let Action::Keep {
                flags: f,
                edited: e,
            } = action
            {
                *f = flags;
                *e = edited;
                return Ok(false);
            }
        }
        self.push(Action::Keep { flags, edited })?;
        Ok(true)
    }

    /// RFC 5228 §4.1: the same mailbox twice is stored once (see [`Run::add_keep`]).
    fn add_fileinto(
        &mut self,
        mailbox: String,
        flags: Vec<String>,
        copy: bool,
        create: bool,
    ) -> Result<bool> {
        let edited = self.edited.clone();
        for action in &mut self.actions {
            if let Action::FileInto {
                mailbox: m,
                flags: f,
                create: cr,
                edited: e,
                ..
            } = action
            {
                if *m == mailbox {
                    *f = flags;
                    *cr |= create;
                    *e = edited;
                    return Ok(false);
                }
            }
        }
        self.push(Action::FileInto {
            mailbox,
            flags,
            copy,
            create,
            edited,
        })?;
        Ok(true)
    }

    /// RFC 5228 §4.2: redirecting twice to one address sends once (the domain compared
    /// without case, the local part exactly, as Pigeonhole does); `max_redirects` bounds the
    /// distinct ones. Returns whether a new action was added.
    fn add_redirect(&mut self, address: String, copy: bool) -> Result<bool> {
        let mut count = 0;
        for action in &self.actions {
            if let Action::Redirect { address: a, .. } = action {
                if same_address(a, &address) {
                    return Ok(false);
                }
                count += 1;
            }
        }
        if count >= self.ctx.limits.max_redirects {
            return Err(self.error(format!(
                "number of redirect actions exceeds policy limit ({} > {})",
                count + 1,
                self.ctx.limits.max_redirects
            )));
        }
        let edited = self.edited.clone();
        self.push(Action::Redirect {
            address,
            copy,
            edited,
        })?;
        Ok(true)
    }

    fn test(&mut self, test: &Test, scope: &mut Scope) -> Result<bool> {
        Ok(match test {
            Test::True => true,
            Test::False => false,
            Test::Not(t) => !self.test(t, scope)?,
            Test::AllOf(tests) => {
                for t in tests {
                    if !self.test(t, scope)? {
                        return Ok(false);
                    }
                }
                true
            }
            Test::AnyOf(tests) => {
                for t in tests {
                    if self.test(t, scope)? {
                        return Ok(true);
                    }
                }
                false
            }
            Test::Exists(names) => {
                let names = self.expand_all(names, scope);
                let msg = self.message();
                names
                    .iter()
                    .all(|n| postern_mail::header::fields(msg).any(|f| f.is(n)))
            }
            Test::Size { over, limit } => {
                // RFC 5228 §5.9: the size in octets as delivered (CRLF line ends).
                let size = postern_mail::wire::wire_size(self.message());
                if *over {
                    size > *limit
                } else {
                    size < *limit
                }
            }
            Test::Header {
                spec,
                names,
                keys,
                index,
            } => {
                let names = self.expand_all(names, scope);
                let mut values = Vec::new();
                for n in &names {
                    values.extend(select(message::header_values(self.message(), n), *index));
                }
                self.matches(scope, spec, &values, keys)?
            }
            Test::Address {
                spec,
                part,
                names,
                keys,
                index,
            } => {
                let names = self.expand_all(names, scope);
                let mut values = Vec::new();
                for n in &names {
                    for field in select(message::raw_values(self.message(), n), *index) {
                        let found = message::addresses(&field);
                        if found.is_empty() && !field.trim().is_empty() {
                            // RFC 5228 §2.7.4: a value that is no address list is still
                            // seen whole by :all (as Pigeonhole does), never by the parts.
                            if *part == AddressPart::All {
                                values.push(field.trim().to_string());
                            }
                            continue;
                        }
                        for a in found {
                            values.extend(self.part_or_counted(&a, *part, spec));
                        }
                    }
                }
                self.matches(scope, spec, &values, keys)?
            }
            Test::Envelope {
                spec,
                part,
                names,
                keys,
            } => {
                let names = self.expand_all(names, scope);
                let env = &self.ctx.envelope;
                let mut values = Vec::new();
                for n in &names {
                    let address = match n.to_ascii_lowercase().as_str() {
                        "from" => Some(env.from.clone()),
                        "to" => Some(env.to.clone()),
                        "auth" => env.auth.clone(),
                        _ => None,
                    };
                    if let Some(a) = address {
                        // RFC 5228 §5.4: the null reverse-path is the empty string, which
                        // only `:all` can see.
                        if a.is_empty() {
                            if *part == AddressPart::All {
                                values.push(String::new());
                            }
                        } else {
                            values.extend(self.part_or_counted(&a, *part, spec));
                        }
                    }
                }
                self.matches(scope, spec, &values, keys)?
            }
            Test::String {
                spec,
                sources,
                keys,
            } => {
                let mut values = self.expand_all(sources, scope);
                // RFC 5229 §5: with :count, empty strings are not counted.
                if matches!(spec.kind, MatchKind::Count(_)) {
                    values.retain(|v| !v.is_empty());
                }
                self.matches(scope, spec, &values, keys)?
            }
            Test::HasFlag {
                spec,
                variables,
                keys,
            } => {
                // RFC 5232 §4: the flags of the named variables (or the internal one).
                let values = if variables.is_empty() {
                    self.flags.clone()
                } else {
                    let raw: Vec<String> = variables
                        .iter()
                        .map(|v| self.get_variable(scope, v))
                        .collect();
                    split_flags(&raw)
                };
                self.matches(scope, spec, &values, keys)?
            }
            Test::MailboxExists(names) => {
                let names = self.expand_all(names, scope);
                names.iter().all(|n| self.host.mailbox_exists(n))
            }
            Test::Body {
                spec,
                transform,
                keys,
            } => {
                let values = self.body_texts(transform, scope);
                self.matches(scope, spec, values.as_slice(), keys)?
            }
            Test::Date {
                spec,
                zone,
                header,
                part,
                keys,
                index,
            } => {
                let header = self.expand(header, scope);
                let part = self.expand(part, scope);
                // RFC 5260 §6 picks the field with :index; without it Pigeonhole reads only
                // the first occurrence, and so do we.
                let index = index.or(Some(Index { n: 1, last: false }));
                let values: Vec<String> =
                    select(message::raw_values(self.message(), &header), index)
                        .iter()
                        .filter_map(|v| self.date_part(v, &part, zone))
                        .collect();
                self.matches(scope, spec, &values, keys)?
            }
            Test::CurrentDate {
                spec,
                zone,
                part,
                keys,
            } => {
                let part = self.expand(part, scope);
                let values: Vec<String> = self.current_date_part(&part, zone).into_iter().collect();
                self.matches(scope, spec, &values, keys)?
            }
            Test::Duplicate {
                handle,
                id,
                period,
                last,
            } => self.duplicate(handle.as_ref(), id, *period, *last, scope),
            Test::ValidNotifyMethod(uris) => {
                let uris = self.expand_all(uris, scope);
                uris.iter().all(|u| self.valid_notify_method(u))
            }
            Test::NotifyMethodCapability {
                spec,
                uri,
                capability,
                keys,
            } => {
                let uri = self.expand(uri, scope);
                let capability = self.expand(capability, scope);
                let values: Vec<String> = self
                    .notify_capability(&uri, &capability)
                    .into_iter()
                    .collect();
                self.matches(scope, spec, &values, keys)?
            }
        })
    }

    /// The part of `address` to compare; with `:count` every address counts, even one
    /// without that part (RFC 5231 §4.2 counts addresses; Pigeonhole agrees).
    fn part_or_counted(
        &self,
        address: &str,
        part: AddressPart,
        spec: &MatchSpec,
    ) -> Option<String> {
        let value = self.address_part(address, part);
        if matches!(spec.kind, MatchKind::Count(_)) {
            Some(value.unwrap_or_default())
        } else {
            value
        }
    }

    /// RFC 5228 §2.7.4 and RFC 5233 §4: one part of an address; `None` when the part does
    /// not exist (no domain, no detail).
    fn address_part(&self, address: &str, part: AddressPart) -> Option<String> {
        let (local, domain) = message::split_address(address);
        let delimiter = self.ctx.recipient_delimiter;
        match part {
            AddressPart::All => Some(address.to_string()),
            AddressPart::LocalPart => Some(local.to_string()),
            AddressPart::Domain => domain.map(str::to_string),
            AddressPart::User => Some(match delimiter.and_then(|d| local.split_once(d)) {
                Some((user, _)) => user.to_string(),
                None => local.to_string(),
            }),
            AddressPart::Detail => delimiter
                .and_then(|d| local.split_once(d))
                .map(|(_, detail)| detail.to_string()),
        }
    }

    /// RFC 5228 §2.7.1, RFC 5231 §4 and draft-ietf-sieve-regex: whether any value matches
    /// any key; on a match, `:matches` and `:regex` set the match variables (RFC 5229 §3.2).
    pub(crate) fn matches(
        &self,
        scope: &mut Scope,
        spec: &MatchSpec,
        values: &[String],
        keys: &Keys,
    ) -> Result<bool> {
        let key_texts = self.expand_all(&keys.values, scope);
        let cmp = spec.comparator;
        match spec.kind {
            MatchKind::Count(rel) => {
                // RFC 5231 §4.2: the number of values, compared as a number string.
                let count = values.len().to_string();
                return Ok(key_texts.iter().any(|k| rel.holds(cmp.order(&count, k))));
            }
            MatchKind::Regex => {
                let built;
                let regexes: &[regex::Regex] = match &keys.regexes {
                    Some(r) => r,
                    None => {
                        let mut v = Vec::with_capacity(key_texts.len());
                        for k in &key_texts {
                            v.push(
                                crate::checks::build_regex(k, cmp, self.ctx.limits.max_regex_bytes)
                                    .map_err(|e| self.error(e))?,
                            );
                        }
                        built = v;
                        &built
                    }
                };
                for value in values {
                    for re in regexes {
                        if let Some(c) = re.captures(value) {
                            if scope.variables_enabled {
                                scope.matches = c
                                    .iter()
                                    .take(10)
                                    .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
                                    .collect();
                            }
                            return Ok(true);
                        }
                    }
                }
                return Ok(false);
            }
            MatchKind::Contains if cmp == crate::matching::Comparator::AsciiCasemap => {
                // The common case of long bodies: fold each text once, not once per key.
                let keys: Vec<String> = key_texts.iter().map(|k| k.to_ascii_lowercase()).collect();
                return Ok(values.iter().any(|v| {
                    let v = v.to_ascii_lowercase();
                    keys.iter().any(|k| v.contains(k.as_str()))
                }));
            }
            _ => {}
        }
        for value in values {
            for key in &key_texts {
                let hit = match spec.kind {
                    MatchKind::Is => cmp.equal(value, key),
                    MatchKind::Contains => cmp.contains(value, key),
                    MatchKind::Value(rel) => rel.holds(cmp.order(value, key)),
                    MatchKind::Matches => match crate::matching::glob_match(key, value, cmp) {
                        Some(mut captures) => {
                            if scope.variables_enabled {
                                // RFC 5229 §3.2: ${0} to ${9}; later wildcards are not kept.
                                captures.truncate(10);
                                scope.matches = captures;
                            }
                            true
                        }
                        None => false,
                    },
                    MatchKind::Count(_) | MatchKind::Regex => false,
                };
                if hit {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// Local parts compared exactly, domains without case (RFC 5321 §2.4).
fn same_address(a: &str, b: &str) -> bool {
    let (la, da) = message::split_address(a);
    let (lb, db) = message::split_address(b);
    la == lb && da.map(str::to_ascii_lowercase) == db.map(str::to_ascii_lowercase)
}

/// RFC 5260 §6 `:index`: only the Nth field (from the end with `:last`).
fn select(values: Vec<String>, index: Option<Index>) -> Vec<String> {
    match index {
        None => values,
        Some(Index { n, last }) => {
            let pick = if last {
                values.len().checked_sub(n)
            } else {
                Some(n - 1).filter(|&i| i < values.len())
            };
            pick.and_then(|i| values.into_iter().nth(i))
                .into_iter()
                .collect()
        }
    }
}

/// RFC 5232 §3: a flag list is made of space-separated flags.
fn split_flags(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        for f in v.split_whitespace() {
            let Some(f) = canonical_flag(f) else {
                continue;
            };
            if !out.iter().any(|o| o.eq_ignore_ascii_case(&f)) {
                out.push(f);
            }
        }
    }
    out
}

/// IMAP system flags as clients write them (`\seen` → `\Seen`); keywords as given. Other
/// `\` names are no settable flag (RFC 3501 §2.3.2): `None`, and Pigeonhole ignores them too.
fn canonical_flag(flag: &str) -> Option<String> {
    const SYSTEM: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];
    if !flag.starts_with('\\') {
        return Some(flag.to_string());
    }
    SYSTEM
        .iter()
        .find(|s| s.eq_ignore_ascii_case(flag))
        .map(|s| (*s).to_string())
}

/// RFC 5232 §3.1–§3.3: setflag replaces, addflag adds (no duplicates, case-insensitive),
/// removeflag removes.
fn apply_flags(current: Vec<String>, given: Vec<String>, op: FlagOp) -> Vec<String> {
    match op {
        FlagOp::Set => given,
        FlagOp::Add => {
            let mut out = current;
            for f in given {
                if !out.iter().any(|o| o.eq_ignore_ascii_case(&f)) {
                    out.push(f);
                }
            }
            out
        }
        FlagOp::Remove => current
            .into_iter()
            .filter(|f| !given.iter().any(|g| g.eq_ignore_ascii_case(f)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5232 §3 examples of flag list handling.
    #[test]
    fn flag_lists() {
        let a = split_flags(&["\\seen  $Label \\Bogus".into(), "\\SEEN foo".into()]);
        assert_eq!(a, ["\\Seen", "$Label", "foo"]);
        let b = apply_flags(a.clone(), vec!["FOO".into()], FlagOp::Remove);
        assert_eq!(b, ["\\Seen", "$Label"]);
        let c = apply_flags(b, vec!["\\Flagged".into()], FlagOp::Set);
        assert_eq!(c, ["\\Flagged"]);
    }

    /// RFC 5260 §6 index selection.
    #[test]
    fn index_selection() {
        let v = vec!["a".to_string(), "b".into(), "c".into()];
        assert_eq!(select(v.clone(), Some(Index { n: 1, last: false })), ["a"]);
        assert_eq!(select(v.clone(), Some(Index { n: 1, last: true })), ["c"]);
        assert_eq!(
            select(v.clone(), Some(Index { n: 4, last: false })),
            Vec::<String>::new()
        );
        assert_eq!(
            select(v, Some(Index { n: 4, last: true })),
            Vec::<String>::new()
        );
    }
}
