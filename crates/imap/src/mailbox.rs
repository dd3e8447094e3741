//! Mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 9051 §6.3.4-8),
//! LIST with LIST-EXTENDED / LIST-STATUS / SPECIAL-USE (RFC 9051 §6.3.9, RFC 5258, RFC 5819,
//! RFC 6154), LSUB (RFC 3501 §6.3.9), STATUS (RFC 9051 §6.3.11, RFC 8438), QUOTA (RFC 9208).

use postern_store::{MailboxInfo, SpecialUse};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::parser::{ListReturn, ListSelect};
use crate::response::{bad, no_code, ok, store_no, Code, Reply};
use crate::session::{SResult, Session};

/// Wildcard match of RFC 9051 §6.3.9: `*` matches anything, `%` anything but the separator.
pub(crate) fn pattern_match(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|i| pattern_match(rest, &name[i..])),
        Some(('%', rest)) => {
            for i in 0..=name.len() {
                if pattern_match(rest, &name[i..]) {
                    return true;
                }
                if name.get(i) == Some(&'/') {
                    break;
                }
            }
            false
        }
        Some((c, rest)) => name.first() == Some(c) && pattern_match(rest, &name[1..]),
    }
}

fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    if pattern_match(&p, &n) {
        return true;
    }
    // INBOX is case-insensitive (RFC 9051 §5.1).
    if name.eq_ignore_ascii_case("INBOX") || name.to_ascii_uppercase().starts_with("INBOX/") {
        let mut up: Vec<char> = pattern.chars().collect();
        let prefix: Vec<char> = up.iter().take(5).map(|c| c.to_ascii_uppercase()).collect();
        if prefix == ['I', 'N', 'B', 'O', 'X'] {
            up.splice(0..5, prefix);
            return pattern_match(&up, &n);
        }
    }
    false
}

impl Session {
    /// RFC 9051 §6.3.4 CREATE (RFC 6154 §3 USE)
    pub(crate) async fn create(&mut self, raw: &[u8], special_use: &[String]) -> Reply {
        let name = match self.mailbox_in(raw) {
            Ok(n) => n,
            Err(r) => return r,
        };
        let name = name.trim_end_matches('/').to_string();
        if name.is_empty() {
            return no_code(Code::Cannot, "Empty mailbox name");
        }
        let su = match special_use {
            [] => None,
            [one] => match SpecialUse::parse(one) {
                Some(u) => Some(u),
                None => return no_code(Code::UseAttr, "Unsupported special-use attribute"),
            },
            _ => return no_code(Code::UseAttr, "Only one special-use attribute per mailbox"),
        };
        match self
            .srv
            .store
            .create_mailbox(self.account(), &name, su)
            .await
        {
            Ok(()) => ok("CREATE completed"),
            Err(e) => store_no(&e),
        }
    }

    /// RFC 9051 §6.3.5 DELETE
    pub(crate) async fn delete(&mut self, raw: &[u8]) -> Reply {
        let name = match self.mailbox_in(raw) {
            Ok(n) => n,
            Err(r) => return r,
        };
        match self.srv.store.delete_mailbox(self.account(), &name).await {
            Ok(()) => {
                // The session's own mailbox is gone: it is no longer selected. A refused
                // DELETE changes nothing, the selection included.
                if self.sel.as_ref().is_some_and(|s| s.name == name) {
                    self.sel = None;
                }
                ok("DELETE completed")
            }
            Err(e) => store_no(&e),
        }
    }

    /// RFC 9051 §6.3.6 RENAME
    pub(crate) async fn rename(&mut self, from: &[u8], to: &[u8]) -> Reply {
        let (from, to) = match (self.mailbox_in(from), self.mailbox_in(to)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        match self
            .srv
            .store
            .rename_mailbox(self.account(), &from, &to)
            .await
        {
            Ok(()) => {
                self.follow_rename(&from, &to);
                ok("RENAME completed")
            }
            Err(e) => store_no(&e),
        }
    }

    /// The session's selected mailbox, or one of its parents, was renamed by the session
    /// itself: it stays selected under its new name (its UIDs are kept, RFC 9051 §6.3.6).
    /// INBOX is not followed: renaming it moves its messages away, and the session hears
    /// of that as expunges.
    fn follow_rename(&mut self, from: &str, to: &str) {
        let account = self.account().to_string();
        let Some(sel) = self.sel.as_mut() else { return };
        if postern_store::names::is_inbox(from) {
            return;
        }
        let new_name = if sel.name == from {
            to.to_string()
        } else if let Some(rest) = sel.name.strip_prefix(&format!("{from}/")) {
            format!("{to}/{rest}")
        } else {
            return;
        };
        match self.srv.store.subscribe(&account, &new_name) {
            Ok(events) => {
                sel.events = events;
                sel.name = new_name;
                // Changes between the rename and the new subscription: read them afresh.
                sel.lagged = true;
            }
            Err(e) => tracing::warn!("cannot follow the rename of the selected mailbox: {e}"),
        }
    }

    /// RFC 9051 §6.3.7 SUBSCRIBE / §6.3.8 UNSUBSCRIBE
    pub(crate) async fn subscribe(&mut self, raw: &[u8], on: bool) -> Reply {
        let name = match self.mailbox_in(raw) {
            Ok(n) => n,
            Err(r) => return r,
        };
        match self
            .srv
            .store
            .set_subscribed(self.account(), &name, on)
            .await
        {
            Ok(()) => ok(if on {
                "SUBSCRIBE completed"
            } else {
                "UNSUBSCRIBE completed"
            }),
            Err(e) => store_no(&e),
        }
    }

    fn list_line(&mut self, verb: &str, attrs: &[String], name: &str, childinfo: &[&str]) {
        let sep = self.srv.config.mail.hierarchy_separator;
        let mut line = format!("* {verb} ({}) \"{sep}\" ", attrs.join(" ")).into_bytes();
        self.mailbox_out(&mut line, name);
        if !childinfo.is_empty() {
            // RFC 5258 §3.5 mbox-list-extended-item "CHILDINFO"
            let tags: Vec<String> = childinfo.iter().map(|t| format!("\"{t}\"")).collect();
            line.extend_from_slice(format!(" (\"CHILDINFO\" ({}))", tags.join(" ")).as_bytes());
        }
        line.extend_from_slice(b"\r\n");
        self.io.write(&line);
    }

    /// RFC 9051 §6.3.9 LIST with RFC 5258 options.
    pub(crate) async fn list(
        &mut self,
        select: ListSelect,
        reference: &[u8],
        patterns: &[Vec<u8>],
        ret: ListReturn,
        extended: bool,
    ) -> SResult<Reply> {
        if patterns.len() == 1 && patterns[0].is_empty() && !extended {
            // RFC 9051 §6.3.9: the hierarchy delimiter and root.
            let sep = self.srv.config.mail.hierarchy_separator;
            self.untagged(&format!("LIST (\\Noselect) \"{sep}\" \"\""));
            return Ok(ok("LIST completed"));
        }
        if let Some(items) = &ret.status {
            if let Some(i) = items.iter().find(|i| !STATUS_ITEMS.contains(&i.as_str())) {
                return Ok(bad(format!("Unknown STATUS item {i}")));
            }
            if items.iter().any(|i| i == "HIGHESTMODSEQ") {
                self.enable_condstore();
            }
        }
        let reference = match self.pattern_in(reference) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(ok("LIST completed")),
            Err(r) => return Ok(r),
        };
        let mut pats = Vec::new();
        for p in patterns {
            match self.pattern_in(p) {
                Ok(Some(p)) => pats.push(format!("{reference}{p}")),
                Ok(None) => {}
                Err(r) => return Ok(r),
            }
        }
        if pats.is_empty() {
            return Ok(ok("LIST completed"));
        }
        let account = self.account().to_string();
        let boxes = match self.srv.store.list_mailboxes(&account).await {
            Ok(b) => b,
            Err(e) => return Ok(store_no(&e)),
        };
        let subs = if select.subscribed || ret.subscribed {
            match self.srv.store.list_subscriptions(&account).await {
                Ok(s) => s,
                Err(e) => return Ok(store_no(&e)),
            }
        } else {
            Vec::new()
        };
        let absent = if self.rev2 || extended {
            "\\NonExistent"
        } else {
            "\\Noselect"
        };
        let entries = list_entries(&boxes, &subs, &pats, select, &ret, absent);
        for e in entries {
            self.list_line("LIST", &e.attrs, &e.name, &e.childinfo);
            if let (Some(items), true) = (&ret.status, e.exists) {
                // RFC 5819 §2: STATUS for each selectable mailbox listed.
                if let Ok(st) = self.srv.store.status(&account, &e.name).await {
                    let body = status_items(items, &st, self.srv.limits.append_limit, self.rev2);
                    let mut line = b"* STATUS ".to_vec();
                    self.mailbox_out(&mut line, &e.name);
                    line.extend_from_slice(format!(" ({body})\r\n").as_bytes());
                    self.io.write(&line);
                }
            }
            self.maybe_flush().await?;
        }
        Ok(ok("LIST completed"))
    }

    /// RFC 3501 §6.3.9 LSUB
    pub(crate) async fn lsub(&mut self, reference: &[u8], pattern: &[u8]) -> SResult<Reply> {
        let (reference, pattern) = match (self.pattern_in(reference), self.pattern_in(pattern)) {
            (Ok(Some(a)), Ok(Some(b))) => (a, b),
            (Err(r), _) | (_, Err(r)) => return Ok(r),
            _ => return Ok(ok("LSUB completed")),
        };
        let pat = format!("{reference}{pattern}");
        let account = self.account().to_string();
        let subs = match self.srv.store.list_subscriptions(&account).await {
            Ok(s) => s,
            Err(e) => return Ok(store_no(&e)),
        };
        let boxes = self
            .srv
            .store
            .list_mailboxes(&account)
            .await
            .unwrap_or_default();
        let existing: HashSet<&str> = boxes.iter().map(|b| b.name.as_str()).collect();
        for (name, noselect) in lsub_entries(&subs, &existing, &pat) {
            let attrs = if noselect {
                vec!["\\Noselect".to_string()]
            } else {
                Vec::new()
            };
            self.list_line("LSUB", &attrs, &name, &[]);
        }
        Ok(ok("LSUB completed"))
    }

    /// RFC 9051 §6.3.11 STATUS
    pub(crate) async fn status(&mut self, raw: &[u8], items: &[String]) -> Reply {
        let name = match self.mailbox_in(raw) {
            Ok(n) => n,
            Err(r) => return r,
        };
        if let Some(i) = items.iter().find(|i| !STATUS_ITEMS.contains(&i.as_str())) {
            return bad(format!("Unknown STATUS item {i}"));
        }
        if items.iter().any(|i| i == "HIGHESTMODSEQ") {
            // RFC 7162 §3.1.10: STATUS HIGHESTMODSEQ is a CONDSTORE enabling command.
            self.enable_condstore();
        }
        match self.srv.store.status(self.account(), &name).await {
            Ok(st) => {
                let body = status_items(items, &st, self.srv.limits.append_limit, self.rev2);
                let mut line = b"* STATUS ".to_vec();
                self.mailbox_out(&mut line, &name);
                line.extend_from_slice(format!(" ({body})\r\n").as_bytes());
                self.io.write(&line);
                ok("STATUS completed")
            }
            Err(e) => store_no(&e),
        }
    }
}

/// STATUS data items (RFC 9051 §6.3.11, RFC 8438 SIZE, RFC 7162 HIGHESTMODSEQ, RFC 7889).
const STATUS_ITEMS: [&str; 9] = [
    "MESSAGES",
    "UIDNEXT",
    "UIDVALIDITY",
    "UNSEEN",
    "DELETED",
    "SIZE",
    "RECENT",
    "HIGHESTMODSEQ",
    "APPENDLIMIT",
];

/// One LIST response: name, attributes, RFC 5258 CHILDINFO tags, and whether it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListEntry {
    pub name: String,
    pub attrs: Vec<String>,
    pub childinfo: Vec<&'static str>,
    pub exists: bool,
}

/// The proper ancestors of a `/`-separated name, shortest first.
fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/').map(move |(i, _)| &name[..i])
}

fn is_below(name: &str, parent: &str) -> bool {
    name.len() > parent.len() + 1
        && name.starts_with(parent)
        && name.as_bytes()[parent.len()] == b'/'
}

/// RFC 9051 §6.3.9 and RFC 5258 LIST: the responses for `pats` (reference applied) over the
/// account's mailboxes and subscriptions. `absent` is `\NonExistent` (IMAP4rev2, extended
/// LIST) or `\Noselect` (IMAP4rev1) for a hierarchy level that is no mailbox.
/// - Without selection options (§6.3.9, RFC 5258 §3): matching mailboxes and hierarchy levels.
/// - SUBSCRIBED (RFC 5258 §3.1): matching subscriptions, `\NonExistent` if gone; SPECIAL-USE
///   (RFC 6154 §3): mailboxes with a role; both given: both apply.
/// - RECURSIVEMATCH (RFC 5258 §3.5): a name with a descendant meeting the selection carries
///   `CHILDINFO`; one that does not meet it itself is listed only when such a descendant is
///   not listed by the patterns (as Dovecot does: with "*" the descendants speak for
///   themselves).
/// - RETURN (SUBSCRIBED) adds `\Subscribed`; children and special-use attributes are always
///   given (RFC 5258 §4, RFC 6154 §3 allow it).
pub(crate) fn list_entries(
    boxes: &[MailboxInfo],
    subs: &[String],
    pats: &[String],
    select: ListSelect,
    ret: &ListReturn,
    absent: &str,
) -> Vec<ListEntry> {
    let matches_any = |n: &str| pats.iter().any(|p| matches(p, n));
    let by_name: HashMap<&str, &MailboxInfo> = boxes.iter().map(|b| (b.name.as_str(), b)).collect();
    let is_sub = |n: &str| {
        subs.iter()
            .any(|s| s == n || (s.eq_ignore_ascii_case("INBOX") && n.eq_ignore_ascii_case("INBOX")))
    };
    let has_children = |n: &str| boxes.iter().any(|b| is_below(&b.name, n));
    let selective = select.subscribed || select.special_use;
    // Whether a name meets the selection options.
    let selected = |n: &str| {
        (!select.subscribed || is_sub(n))
            && (!select.special_use || by_name.get(n).is_some_and(|b| b.special_use.is_some()))
    };
    // Candidate names: mailboxes, their hierarchy levels, and (when selecting) subscriptions
    // and their levels.
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for b in boxes {
        names.insert(&b.name);
        names.extend(ancestors(&b.name));
    }
    if select.subscribed {
        for s in subs {
            names.insert(s);
            names.extend(ancestors(s));
        }
    }
    let mut tags: Vec<&'static str> = Vec::new();
    if select.subscribed {
        tags.push("SUBSCRIBED");
    }
    if select.special_use {
        tags.push("SPECIAL-USE");
    }
    let mut out = Vec::new();
    for &n in &names {
        if !matches_any(n) {
            continue;
        }
        let info = by_name.get(n);
        let exists = info.is_some();
        let mut childinfo = Vec::new();
        if selective {
            let hits_below: Vec<&str> = names
                .iter()
                .copied()
                .filter(|d| is_below(d, n) && selected(d))
                .collect();
            if selected(n) {
                if select.recursive_match && !hits_below.is_empty() {
                    childinfo = tags.clone();
                }
            } else if select.recursive_match && hits_below.iter().any(|d| !matches_any(d)) {
                childinfo = tags.clone();
            } else {
                continue;
            }
        }
        let mut attrs: Vec<String> = Vec::new();
        if !exists {
            attrs.push(absent.to_string());
        }
        attrs.push(
            if info.map_or_else(|| has_children(n), |b| b.has_children) {
                "\\HasChildren".to_string()
            } else {
                "\\HasNoChildren".to_string()
            },
        );
        if let Some(u) = info.and_then(|b| b.special_use) {
            attrs.push(u.as_str().to_string());
        }
        if (ret.subscribed || select.subscribed) && is_sub(n) {
            attrs.push("\\Subscribed".into());
        }
        out.push(ListEntry {
            name: n.to_string(),
            attrs,
            childinfo,
            exists,
        });
    }
    // INBOX first, then by name (parents before their children).
    out.sort_by(|a, b| {
        (!a.name.eq_ignore_ascii_case("INBOX"), &a.name)
            .cmp(&(!b.name.eq_ignore_ascii_case("INBOX"), &b.name))
    });
    out
}

/// RFC 3501 §6.3.9 LSUB: subscriptions matching `pat` (`\Noselect` when the mailbox is gone)
/// and, for one that does not match, its unsubscribed hierarchy levels that do, as
/// `\Noselect` ("foo/bar" subscribed, "foo" not: `LSUB "" %` returns "foo" \Noselect).
pub(crate) fn lsub_entries(
    subs: &[String],
    existing: &HashSet<&str>,
    pat: &str,
) -> Vec<(String, bool)> {
    let subscribed: HashSet<&str> = subs.iter().map(String::as_str).collect();
    let mut out: BTreeMap<String, bool> = BTreeMap::new();
    for s in subs {
        if matches(pat, s) {
            out.insert(s.clone(), !existing.contains(s.as_str()));
            continue;
        }
        for p in ancestors(s) {
            if !subscribed.contains(p) && matches(pat, p) {
                out.insert(p.to_string(), true);
            }
        }
    }
    out.into_iter().collect()
}

fn status_items(
    items: &[String],
    st: &postern_store::MailboxStatus,
    append_limit: u64,
    rev2: bool,
) -> String {
    let mut parts = Vec::new();
    for i in items {
        let v = match i.as_str() {
            "MESSAGES" => st.messages.to_string(),
            "UIDNEXT" => st.uidnext.to_string(),
            "UIDVALIDITY" => st.uidvalidity.to_string(),
            "UNSEEN" => st.unseen.to_string(),
            "DELETED" => st.deleted.to_string(),
            "SIZE" => st.size.to_string(),
            "RECENT" if !rev2 => st.recent.to_string(),
            "RECENT" => "0".to_string(),
            "HIGHESTMODSEQ" => st.highestmodseq.max(1).to_string(),
            "APPENDLIMIT" => append_limit.to_string(),
            _ => continue,
        };
        parts.push(format!("{i} {v}"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(name: &str) -> MailboxInfo {
        MailboxInfo {
            name: name.into(),
            special_use: if name == "Sent" {
                Some(SpecialUse::Sent)
            } else {
                None
            },
            subscribed: false,
            has_children: false,
        }
    }

    fn render(e: &[ListEntry]) -> Vec<String> {
        e.iter()
            .map(|e| {
                let mut l = format!("({}) {}", e.attrs.join(" "), e.name);
                if !e.childinfo.is_empty() {
                    l.push_str(&format!(" CHILDINFO {:?}", e.childinfo));
                }
                l
            })
            .collect()
    }

    /// The mailboxes of RFC 5258 §5 example 9: "Foo/Bar" subscribed, "Foo" not.
    fn fixture() -> (Vec<MailboxInfo>, Vec<String>) {
        let mut boxes = [
            "INBOX",
            "Foo",
            "Foo/Bar",
            "Moo",
            "Moo/Deep/Er",
            "Sent",
            "Tofu",
        ]
        .map(mb)
        .to_vec();
        let names: Vec<String> = boxes.iter().map(|b| b.name.clone()).collect();
        for b in &mut boxes {
            b.has_children = names.iter().any(|n| is_below(n, &b.name));
        }
        let subs = ["INBOX", "Foo/Bar", "Moo/Deep/Er", "Tofu", "Gone"]
            .map(String::from)
            .to_vec();
        (boxes, subs)
    }

    fn sel(subscribed: bool, recursive_match: bool) -> ListSelect {
        ListSelect {
            subscribed,
            recursive_match,
            ..ListSelect::default()
        }
    }

    #[test]
    fn recursivematch_reports_parents_with_childinfo() {
        let (boxes, subs) = fixture();
        let r = ListReturn::default();
        let e = list_entries(
            &boxes,
            &subs,
            &["%".into()],
            sel(true, true),
            &r,
            "\\NonExistent",
        );
        assert_eq!(
            render(&e),
            [
                "(\\HasNoChildren \\Subscribed) INBOX",
                "(\\HasChildren) Foo CHILDINFO [\"SUBSCRIBED\"]",
                "(\\NonExistent \\HasNoChildren \\Subscribed) Gone",
                "(\\HasChildren) Moo CHILDINFO [\"SUBSCRIBED\"]",
                "(\\HasNoChildren \\Subscribed) Tofu",
            ]
        );
        // With "*" the subscribed descendants are listed themselves.
        let e = list_entries(
            &boxes,
            &subs,
            &["*".into()],
            sel(true, true),
            &r,
            "\\NonExistent",
        );
        assert_eq!(
            render(&e),
            [
                "(\\HasNoChildren \\Subscribed) INBOX",
                "(\\HasNoChildren \\Subscribed) Foo/Bar",
                "(\\NonExistent \\HasNoChildren \\Subscribed) Gone",
                "(\\HasNoChildren \\Subscribed) Moo/Deep/Er",
                "(\\HasNoChildren \\Subscribed) Tofu",
            ]
        );
        // Without RECURSIVEMATCH only the subscriptions themselves.
        let e = list_entries(
            &boxes,
            &subs,
            &["%".into()],
            sel(true, false),
            &r,
            "\\NonExistent",
        );
        assert_eq!(e.len(), 3);
        assert!(e.iter().all(|e| e.childinfo.is_empty()));
        // A subscribed parent of a subscribed child carries CHILDINFO as well.
        let mut subs2 = subs.clone();
        subs2.push("Foo".into());
        let e = list_entries(
            &boxes,
            &subs2,
            &["Foo".into()],
            sel(true, true),
            &r,
            "\\NonExistent",
        );
        assert_eq!(
            render(&e),
            ["(\\HasChildren \\Subscribed) Foo CHILDINFO [\"SUBSCRIBED\"]"]
        );
    }

    #[test]
    fn plain_list_return_options() {
        let (boxes, subs) = fixture();
        let r = ListReturn {
            subscribed: true,
            ..ListReturn::default()
        };
        let e = list_entries(
            &boxes,
            &subs,
            &["Moo/%".into(), "S*".into()],
            ListSelect::default(),
            &r,
            "\\Noselect",
        );
        assert_eq!(
            render(&e),
            [
                "(\\Noselect \\HasChildren) Moo/Deep",
                "(\\HasNoChildren \\Sent) Sent",
            ]
        );
        let special = ListSelect {
            special_use: true,
            ..ListSelect::default()
        };
        let e = list_entries(
            &boxes,
            &subs,
            &["*".into()],
            special,
            &ListReturn::default(),
            "\\NonExistent",
        );
        assert_eq!(render(&e), ["(\\HasNoChildren \\Sent) Sent"]);
    }

    #[test]
    fn lsub_percent_reports_unsubscribed_parents_as_noselect() {
        let (boxes, subs) = fixture();
        let existing: HashSet<&str> = boxes.iter().map(|b| b.name.as_str()).collect();
        let l = |p: &str| lsub_entries(&subs, &existing, p);
        let s = |v: &[(&str, bool)]| -> Vec<(String, bool)> {
            v.iter().map(|(n, b)| (n.to_string(), *b)).collect()
        };
        assert_eq!(
            l("%"),
            s(&[
                ("Foo", true),
                ("Gone", true),
                ("INBOX", false),
                ("Moo", true),
                ("Tofu", false)
            ])
        );
        assert_eq!(l("Moo/%"), s(&[("Moo/Deep", true)]));
        assert_eq!(
            l("*"),
            s(&[
                ("Foo/Bar", false),
                ("Gone", true),
                ("INBOX", false),
                ("Moo/Deep/Er", false),
                ("Tofu", false)
            ])
        );
    }

    #[test]
    fn wildcards() {
        assert!(matches("*", "a/b/c"));
        assert!(matches("%", "INBOX"));
        assert!(!matches("%", "a/b"));
        assert!(matches("a/%", "a/b"));
        assert!(!matches("a/%", "a/b/c"));
        assert!(matches("a/*", "a/b/c"));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("Inbox/%", "INBOX/x"));
        assert!(!matches("Sent", "Sent Items"));
        assert!(matches("S%t", "Sent"));
    }
}
