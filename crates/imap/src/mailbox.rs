//! Mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 9051 §6.3.4-8),
//! LIST with LIST-EXTENDED / LIST-STATUS / SPECIAL-USE (RFC 9051 §6.3.9, RFC 5258, RFC 5819,
//! RFC 6154), LSUB (RFC 3501 §6.3.9), STATUS (RFC 9051 §6.3.11, RFC 8438), QUOTA (RFC 9208).

use postern_store::{MailboxInfo, SpecialUse};
use std::collections::{BTreeSet, HashSet};

use crate::parser::{ListReturn, ListSelect};
use crate::session::{bad, no, ok, store_no, Reply, SResult, Session};

/// Wildcard match of RFC 9051 §6.3.9: `*` matches anything, `%` anything but the separator.
pub fn pattern_match(pattern: &[char], name: &[char]) -> bool {
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
            return no("[CANNOT] Empty mailbox name");
        }
        let su = match special_use {
            [] => None,
            [one] => match SpecialUse::parse(one) {
                Some(u) => Some(u),
                None => return no("[USEATTR] Unsupported special-use attribute"),
            },
            _ => return no("[USEATTR] Only one special-use attribute per mailbox"),
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
        if self.sel.as_ref().is_some_and(|s| s.name == name) {
            self.sel = None;
        }
        match self.srv.store.delete_mailbox(self.account(), &name).await {
            Ok(()) => ok("DELETE completed"),
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
            Ok(()) => ok("RENAME completed"),
            Err(e) => store_no(&e),
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

    fn list_line(&mut self, verb: &str, attrs: &[&str], name: &str) {
        let sep = self.srv.config.mail.hierarchy_separator;
        let mut line = format!("* {verb} ({}) \"{sep}\" ", attrs.join(" ")).into_bytes();
        self.mailbox_out(&mut line, name);
        line.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(&line);
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
        let reference = match self.mailbox_in(reference) {
            Ok(r) => r,
            Err(r) => return Ok(r),
        };
        let mut pats = Vec::new();
        for p in patterns {
            match self.mailbox_in(p) {
                Ok(p) => pats.push(format!("{reference}{p}")),
                Err(r) => return Ok(r),
            }
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
        let is_sub = |n: &str| {
            subs.iter().any(|s| {
                s == n || (s.eq_ignore_ascii_case("INBOX") && n.eq_ignore_ascii_case("INBOX"))
            })
        };
        let mut entries: Vec<(String, Vec<String>, bool)> = Vec::new(); // name, attrs, exists
        for b in &boxes {
            if !pats.iter().any(|p| matches(p, &b.name)) {
                continue;
            }
            if select.subscribed && !is_sub(&b.name) {
                continue;
            }
            if select.special_use && b.special_use.is_none() {
                continue;
            }
            entries.push((
                b.name.clone(),
                attrs(b, ret.subscribed || select.subscribed, is_sub(&b.name)),
                true,
            ));
        }
        if !select.subscribed && !select.special_use {
            // RFC 9051 §6.3.9, RFC 5258 §3.4: a level of hierarchy that matches but is no
            // mailbox itself (a folder another program made without its parent) is listed
            // with \Noselect (\NonExistent for rev2 and LIST-EXTENDED) and \HasChildren.
            let existing: HashSet<&str> = boxes.iter().map(|b| b.name.as_str()).collect();
            let mut missing: BTreeSet<&str> = BTreeSet::new();
            for b in &boxes {
                for (i, _) in b.name.match_indices('/') {
                    let parent = &b.name[..i];
                    if !existing.contains(parent) && pats.iter().any(|p| matches(p, parent)) {
                        missing.insert(parent);
                    }
                }
            }
            let absent = if self.rev2 || extended {
                "\\NonExistent"
            } else {
                "\\Noselect"
            };
            for name in missing {
                entries.push((
                    name.to_string(),
                    vec![absent.into(), "\\HasChildren".into()],
                    false,
                ));
            }
            // Parents before their children; INBOX first as always.
            entries.sort_by(|a, b| {
                (!a.0.eq_ignore_ascii_case("INBOX"), &a.0)
                    .cmp(&(!b.0.eq_ignore_ascii_case("INBOX"), &b.0))
            });
        }
        if select.subscribed {
            for s in &subs {
                if boxes.iter().any(|b| &b.name == s) || !pats.iter().any(|p| matches(p, s)) {
                    continue;
                }
                entries.push((
                    s.clone(),
                    vec!["\\NonExistent".into(), "\\Subscribed".into()],
                    false,
                ));
            }
        }
        for (name, attrs, exists) in entries {
            let a: Vec<&str> = attrs.iter().map(String::as_str).collect();
            self.list_line("LIST", &a, &name);
            if let (Some(items), true) = (&ret.status, exists) {
                if let Ok(st) = self.srv.store.status(&account, &name).await {
                    let body = status_items(items, &st, self.srv.limits.append_limit, self.rev2);
                    let mut line = b"* STATUS ".to_vec();
                    self.mailbox_out(&mut line, &name);
                    line.extend_from_slice(format!(" ({body})\r\n").as_bytes());
                    self.out.extend_from_slice(&line);
                }
            }
            self.maybe_flush().await?;
        }
        Ok(ok("LIST completed"))
    }

    /// RFC 3501 §6.3.9 LSUB
    pub(crate) async fn lsub(&mut self, reference: &[u8], pattern: &[u8]) -> SResult<Reply> {
        let (reference, pattern) = match (self.mailbox_in(reference), self.mailbox_in(pattern)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(r), _) | (_, Err(r)) => return Ok(r),
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
        for s in subs {
            if matches(&pat, &s) {
                let exists = boxes.iter().any(|b| b.name == s);
                let attrs: &[&str] = if exists { &[] } else { &["\\Noselect"] };
                self.list_line("LSUB", attrs, &s);
            }
        }
        Ok(ok("LSUB completed"))
    }

    /// RFC 9051 §6.3.11 STATUS
    pub(crate) async fn status(&mut self, raw: &[u8], items: &[String]) -> Reply {
        let name = match self.mailbox_in(raw) {
            Ok(n) => n,
            Err(r) => return r,
        };
        for i in items {
            if !matches!(
                i.as_str(),
                "MESSAGES"
                    | "UIDNEXT"
                    | "UIDVALIDITY"
                    | "UNSEEN"
                    | "DELETED"
                    | "SIZE"
                    | "RECENT"
                    | "HIGHESTMODSEQ"
                    | "APPENDLIMIT"
            ) {
                return bad(format!("Unknown STATUS item {i}"));
            }
        }
        if items.iter().any(|i| i == "HIGHESTMODSEQ") {
            self.condstore = true;
        }
        match self.srv.store.status(self.account(), &name).await {
            Ok(st) => {
                let body = status_items(items, &st, self.srv.limits.append_limit, self.rev2);
                let mut line = b"* STATUS ".to_vec();
                self.mailbox_out(&mut line, &name);
                line.extend_from_slice(format!(" ({body})\r\n").as_bytes());
                self.out.extend_from_slice(&line);
                ok("STATUS completed")
            }
            Err(e) => store_no(&e),
        }
    }

    /// RFC 9208 §4.2 GETQUOTA: the one root "" of the account.
    pub(crate) async fn get_quota(&mut self, root: &[u8]) -> Reply {
        if !root.is_empty() {
            return no("[NONEXISTENT] No such quota root");
        }
        match self.srv.store.quota_usage(self.account()).await {
            Ok(u) => {
                self.quota_line(u.bytes, u.messages);
                ok("GETQUOTA completed")
            }
            Err(e) => store_no(&e),
        }
    }

    fn quota_line(&mut self, bytes: u64, messages: u64) {
        // No limit is configured: report the usage with the largest limit RFC 9208 allows.
        let max = i64::MAX as u64;
        self.untagged(&format!(
            "QUOTA \"\" (STORAGE {} {} MESSAGE {} {})",
            bytes.div_ceil(1024),
            max / 1024,
            messages,
            max
        ));
    }

    /// RFC 9208 §4.3 GETQUOTAROOT
    pub(crate) async fn get_quota_root(&mut self, raw: &[u8]) -> Reply {
        let name = match self.mailbox_in(raw) {
            Ok(n) => n,
            Err(r) => return r,
        };
        let account = self.account().to_string();
        if let Err(e) = self.srv.store.status(&account, &name).await {
            return store_no(&e);
        }
        let mut line = b"* QUOTAROOT ".to_vec();
        self.mailbox_out(&mut line, &name);
        line.extend_from_slice(b" \"\"\r\n");
        self.out.extend_from_slice(&line);
        match self.srv.store.quota_usage(&account).await {
            Ok(u) => {
                self.quota_line(u.bytes, u.messages);
                ok("GETQUOTAROOT completed")
            }
            Err(e) => store_no(&e),
        }
    }
}

fn attrs(b: &MailboxInfo, show_sub: bool, subscribed: bool) -> Vec<String> {
    let mut a = vec![if b.has_children {
        "\\HasChildren".to_string()
    } else {
        "\\HasNoChildren".to_string()
    }];
    if let Some(u) = b.special_use {
        a.push(u.as_str().to_string());
    }
    if show_sub && subscribed {
        a.push("\\Subscribed".into());
    }
    a
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
