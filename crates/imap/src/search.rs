//! SEARCH (RFC 9051 §6.4.4, RFC 4731 ESEARCH, RFC 7162 MODSEQ), SORT and THREAD (RFC 5256).

use std::collections::HashMap;

use mail_parser::HeaderName;
use postern_store::SystemFlags;

use crate::mime;
use crate::parser::{SearchKey, SearchReturn, SortKey};
use crate::response::to_crlf;
use crate::selected::{set_string, Msg};
use crate::session::{bad, ok, Reply, SResult, Session};

#[derive(Default, Clone, Copy)]
struct Needs {
    header: bool,
    full: bool,
    size: bool,
}

fn key_needs(k: &SearchKey, n: &mut Needs) {
    use SearchKey as K;
    match k {
        K::Bcc(_)
        | K::Cc(_)
        | K::From(_)
        | K::To(_)
        | K::Subject(_)
        | K::Header(..)
        | K::SentBefore(_)
        | K::SentOn(_)
        | K::SentSince(_) => n.header = true,
        K::Body(_) | K::Text(_) => n.full = true,
        K::Larger(_) | K::Smaller(_) => n.size = true,
        K::Not(k) => key_needs(k, n),
        K::Or(a, b) => {
            key_needs(a, n);
            key_needs(b, n);
        }
        K::And(v) => v.iter().for_each(|k| key_needs(k, n)),
        _ => {}
    }
}

fn uses_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::Modseq(_) => true,
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::And(v) => v.iter().any(uses_modseq),
        _ => false,
    }
}

/// Case-insensitive substring match (RFC 9051 §6.4.4 "contains").
fn contains(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    hay.to_lowercase().contains(&needle.to_lowercase())
}

struct Ctx<'a> {
    seq: u32,
    max_seq: u32,
    max_uid: u32,
    m: &'a Msg,
    size: u64,
    header: Option<&'a [u8]>,
    full: Option<&'a [u8]>,
    now: i64,
}

fn day_of(t: i64) -> i64 {
    t.div_euclid(86400)
}

fn header_has(ctx: &Ctx, field: &str, needle: &str) -> bool {
    let Some(h) = ctx.header else { return false };
    let values = mime::decoded_field(h, field);
    if field != "subject" && needle.is_empty() {
        return !values.is_empty();
    }
    values.iter().any(|v| contains(v, needle))
        || values.iter().any(|_| {
            // Raw match as well (addresses inside encoded words etc.).
            mime::header_value(h, field)
                .is_some_and(|raw| contains(&String::from_utf8_lossy(&raw), needle))
        })
}

fn eval(k: &SearchKey, c: &Ctx) -> bool {
    use SearchKey as K;
    let f = &c.m.flags;
    match k {
        K::All => true,
        K::Answered => f.has(SystemFlags::ANSWERED),
        K::Deleted => f.has(SystemFlags::DELETED),
        K::Draft => f.has(SystemFlags::DRAFT),
        K::Flagged => f.has(SystemFlags::FLAGGED),
        K::Seen => f.has(SystemFlags::SEEN),
        K::Unanswered => !f.has(SystemFlags::ANSWERED),
        K::Undeleted => !f.has(SystemFlags::DELETED),
        K::Undraft => !f.has(SystemFlags::DRAFT),
        K::Unflagged => !f.has(SystemFlags::FLAGGED),
        K::Unseen => !f.has(SystemFlags::SEEN),
        K::Recent => c.m.recent,
        K::New => c.m.recent && !f.has(SystemFlags::SEEN),
        K::Old => !c.m.recent,
        K::Keyword(kw) => f.has_keyword(kw),
        K::Unkeyword(kw) => !f.has_keyword(kw),
        K::Before(d) => day_of(c.m.internal_date) < *d,
        K::On(d) => day_of(c.m.internal_date) == *d,
        K::Since(d) => day_of(c.m.internal_date) >= *d,
        K::Older(s) => c.m.internal_date <= c.now - *s as i64,
        K::Younger(s) => c.m.internal_date >= c.now - *s as i64,
        K::SentBefore(d) | K::SentOn(d) | K::SentSince(d) => {
            let sent = c
                .header
                .and_then(mime::sent_date)
                .unwrap_or(c.m.internal_date);
            let day = day_of(sent);
            match k {
                K::SentBefore(_) => day < *d,
                K::SentOn(_) => day == *d,
                _ => day >= *d,
            }
        }
        K::Larger(n) => c.size > *n,
        K::Smaller(n) => c.size < *n,
        K::Uid(set) => set
            .resolve(c.max_uid)
            .iter()
            .any(|&(a, b)| a <= c.m.uid && c.m.uid <= b),
        K::Seq(set) => set
            .resolve(c.max_seq)
            .iter()
            .any(|&(a, b)| a <= c.seq && c.seq <= b),
        K::Modseq(n) => c.m.modseq >= *n,
        K::Bcc(s) => header_has(c, "bcc", s),
        K::Cc(s) => header_has(c, "cc", s),
        K::From(s) => header_has(c, "from", s),
        K::To(s) => header_has(c, "to", s),
        K::Subject(s) => header_has(c, "subject", s),
        K::Header(name, s) => header_has(c, &name.to_ascii_lowercase(), s),
        K::Body(s) | K::Text(s) => {
            let Some(full) = c.full else { return false };
            let root = mime::parse(full);
            let scope: &[u8] = if matches!(k, K::Body(_)) {
                &full[root.body.clone()]
            } else {
                full
            };
            if contains(&String::from_utf8_lossy(scope), s) {
                return true;
            }
            // Also look into decoded leaf parts (base64 / quoted-printable text).
            let mut stack = vec![&root];
            while let Some(p) = stack.pop() {
                stack.extend(p.children.iter());
                if let Some(m) = &p.message {
                    stack.push(m);
                }
                if p.children.is_empty() && p.ctype == "text" {
                    if let Ok(d) = mime::decoded(full, p) {
                        if contains(&String::from_utf8_lossy(&d), s) {
                            return true;
                        }
                    }
                }
            }
            false
        }
        K::Not(k) => !eval(k, c),
        K::Or(a, b) => eval(a, c) || eval(b, c),
        K::And(v) => v.iter().all(|k| eval(k, c)),
    }
}

/// Base subject of RFC 5256 §2.1 (simplified: strips reply/forward prefixes and trailers).
pub fn base_subject(s: &str) -> String {
    let mut s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        let before = s.clone();
        while s.to_ascii_lowercase().ends_with("(fwd)") {
            s.truncate(s.len() - 5);
            s = s.trim_end().to_string();
        }
        loop {
            let t = s.trim_start();
            let lower = t.to_ascii_lowercase();
            let mut rest: Option<&str> = None;
            for p in ["re", "fwd", "fw"] {
                if lower.starts_with(p) {
                    let after = &t[p.len()..];
                    let after = after.trim_start();
                    let after = if after.starts_with('[') {
                        match after.find(']') {
                            Some(e) => after[e + 1..].trim_start(),
                            None => after,
                        }
                    } else {
                        after
                    };
                    if let Some(a) = after.strip_prefix(':') {
                        rest = Some(a);
                        break;
                    }
                }
            }
            if rest.is_none() && t.starts_with('[') {
                if let Some(e) = t.find(']') {
                    let after = t[e + 1..].trim_start();
                    if !after.is_empty() {
                        rest = Some(after);
                    }
                }
            }
            match rest {
                Some(r) => s = r.trim_start().to_string(),
                None => break,
            }
        }
        if s.len() > 6 && s.to_ascii_lowercase().starts_with("[fwd:") && s.ends_with(']') {
            s = s[5..s.len() - 1].trim().to_string();
        }
        if s == before {
            break;
        }
    }
    s.to_lowercase()
}

impl Session {
    /// Messages (indexes) matching `key`, in sequence order.
    async fn matching(&mut self, key: &SearchKey) -> Vec<usize> {
        let mut need = Needs::default();
        key_needs(key, &mut need);
        let Some(sel) = self.sel.as_ref() else {
            return Vec::new();
        };
        let msgs = sel.msgs.clone();
        let name = sel.name.clone();
        let account = self.account().to_string();
        let max_seq = msgs.len() as u32;
        let max_uid = msgs.last().map_or(0, |m| m.uid);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut out = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            let full = if need.full {
                self.load_message(m.uid).await
            } else {
                None
            };
            let header = if need.header && full.is_none() {
                self.srv
                    .store
                    .fetch_header(&account, &name, m.uid)
                    .await
                    .ok()
                    .map(to_crlf)
            } else {
                None
            };
            let hdr_slice: Option<&[u8]> = match (&full, &header) {
                (Some(f), _) => {
                    let end = f
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map_or(f.len(), |p| p + 4);
                    Some(&f[..end])
                }
                (_, Some(h)) => Some(h),
                _ => None,
            };
            let size = if need.size {
                match &full {
                    Some(f) => f.len() as u64,
                    None => self.message_size(m.uid, m.size).await,
                }
            } else {
                m.size
            };
            let ctx = Ctx {
                seq: i as u32 + 1,
                max_seq,
                max_uid,
                m,
                size,
                header: hdr_slice,
                full: full.as_deref(),
                now,
            };
            if eval(key, &ctx) {
                out.push(i);
            }
        }
        out
    }

    /// RFC 9051 §6.4.4 SEARCH / RFC 4731 ESEARCH
    pub(crate) async fn search(
        &mut self,
        tag: &str,
        uid: bool,
        ret: Option<SearchReturn>,
        key: SearchKey,
    ) -> SResult<Reply> {
        let hits = self.matching(&key).await;
        let Some(sel) = self.sel.as_ref() else {
            return Ok(bad("No mailbox selected"));
        };
        let nums: Vec<u32> = hits
            .iter()
            .map(|&i| if uid { sel.msgs[i].uid } else { i as u32 + 1 })
            .collect();
        let modseq =
            uses_modseq(&key).then(|| hits.iter().map(|&i| sel.msgs[i].modseq).max().unwrap_or(0));
        if modseq.is_some() {
            self.condstore = true;
        }
        let ret = match ret {
            Some(r) => Some(r),
            None if self.rev2 => Some(SearchReturn {
                all: true,
                ..SearchReturn::default()
            }),
            None => None,
        };
        match ret {
            None => {
                let mut l = String::from("SEARCH");
                for n in &nums {
                    l.push(' ');
                    l.push_str(&n.to_string());
                }
                if let Some(ms) = modseq.filter(|_| !nums.is_empty()) {
                    l.push_str(&format!(" (MODSEQ {ms})"));
                }
                self.untagged(&l);
            }
            Some(r) => {
                let mut l = format!("ESEARCH (TAG \"{tag}\")");
                if uid {
                    l.push_str(" UID");
                }
                if r.min {
                    if let Some(m) = nums.iter().min() {
                        l.push_str(&format!(" MIN {m}"));
                    }
                }
                if r.max {
                    if let Some(m) = nums.iter().max() {
                        l.push_str(&format!(" MAX {m}"));
                    }
                }
                if r.all && !nums.is_empty() {
                    l.push_str(&format!(" ALL {}", set_string(nums.iter().copied())));
                }
                if r.count {
                    l.push_str(&format!(" COUNT {}", nums.len()));
                }
                if let Some(ms) = modseq.filter(|_| !nums.is_empty()) {
                    l.push_str(&format!(" MODSEQ {ms}"));
                }
                self.untagged(&l);
            }
        }
        Ok(ok("SEARCH completed"))
    }

    /// Sort keys of one message.
    async fn sort_info(&mut self, m: &Msg) -> SortInfo {
        let name = self
            .sel
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let hdr = self
            .srv
            .store
            .fetch_header(self.account(), &name, m.uid)
            .await
            .map(to_crlf)
            .unwrap_or_default();
        let from = mime::first_address(&hdr, HeaderName::From).unwrap_or_default();
        let to = mime::first_address(&hdr, HeaderName::To).unwrap_or_default();
        let cc = mime::first_address(&hdr, HeaderName::Cc).unwrap_or_default();
        SortInfo {
            date: mime::sent_date(&hdr).unwrap_or(m.internal_date),
            subject: base_subject(&mime::subject(&hdr)),
            from,
            to,
            cc,
            message_id: mime::header_value(&hdr, "message-id")
                .map(|v| String::from_utf8_lossy(&v).trim().to_string())
                .unwrap_or_default(),
            references: {
                let mut r = Vec::new();
                for f in ["references", "in-reply-to"] {
                    if let Some(v) = mime::header_value(&hdr, f) {
                        let v = String::from_utf8_lossy(&v).into_owned();
                        let ids: Vec<String> = v
                            .split('<')
                            .skip(1)
                            .filter_map(|p| p.split_once('>').map(|(id, _)| format!("<{id}>")))
                            .collect();
                        if f == "references" && !ids.is_empty() {
                            r = ids;
                            break;
                        }
                        if f == "in-reply-to" {
                            r = ids.into_iter().take(1).collect();
                        }
                    }
                }
                r
            },
        }
    }

    /// RFC 5256 §3 SORT
    pub(crate) async fn sort(
        &mut self,
        tag: &str,
        uid: bool,
        criteria: Vec<(bool, SortKey)>,
        key: SearchKey,
        ret: Option<SearchReturn>,
    ) -> SResult<Reply> {
        let hits = self.matching(&key).await;
        let msgs = self
            .sel
            .as_ref()
            .map(|s| s.msgs.clone())
            .unwrap_or_default();
        let mut rows = Vec::new();
        for &i in &hits {
            let m = &msgs[i];
            let info = self.sort_info(m).await;
            let size = self.message_size(m.uid, m.size).await;
            rows.push((i, m.uid, size, info));
        }
        rows.sort_by(|a, b| {
            for &(rev, k) in &criteria {
                let o = match k {
                    SortKey::Arrival => a.0.cmp(&b.0),
                    SortKey::Date => a.3.date.cmp(&b.3.date),
                    SortKey::Size => a.2.cmp(&b.2),
                    SortKey::Subject => a.3.subject.cmp(&b.3.subject),
                    SortKey::From => a.3.from.0.cmp(&b.3.from.0),
                    SortKey::To => a.3.to.0.cmp(&b.3.to.0),
                    SortKey::Cc => a.3.cc.0.cmp(&b.3.cc.0),
                    SortKey::DisplayFrom => a.3.from.1.cmp(&b.3.from.1),
                    SortKey::DisplayTo => a.3.to.1.cmp(&b.3.to.1),
                };
                let o = if rev { o.reverse() } else { o };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            a.0.cmp(&b.0)
        });
        let nums: Vec<u32> = rows
            .iter()
            .map(|r| if uid { r.1 } else { r.0 as u32 + 1 })
            .collect();
        match ret {
            Some(r) => {
                let mut l = format!("ESEARCH (TAG \"{tag}\")");
                if uid {
                    l.push_str(" UID");
                }
                if r.min {
                    if let Some(m) = nums.first() {
                        l.push_str(&format!(" MIN {m}"));
                    }
                }
                if r.max {
                    if let Some(m) = nums.last() {
                        l.push_str(&format!(" MAX {m}"));
                    }
                }
                if r.all && !nums.is_empty() {
                    let v: Vec<String> = nums.iter().map(u32::to_string).collect();
                    l.push_str(&format!(" ALL {}", v.join(",")));
                }
                if r.count {
                    l.push_str(&format!(" COUNT {}", nums.len()));
                }
                self.untagged(&l);
            }
            None => {
                let mut l = String::from("SORT");
                for n in nums {
                    l.push_str(&format!(" {n}"));
                }
                self.untagged(&l);
            }
        }
        Ok(ok("SORT completed"))
    }

    /// RFC 5256 §4 THREAD (ORDEREDSUBJECT and REFERENCES)
    pub(crate) async fn thread(
        &mut self,
        uid: bool,
        references: bool,
        key: SearchKey,
    ) -> SResult<Reply> {
        let hits = self.matching(&key).await;
        let msgs = self
            .sel
            .as_ref()
            .map(|s| s.msgs.clone())
            .unwrap_or_default();
        let mut items = Vec::new();
        for &i in &hits {
            let m = &msgs[i];
            let info = self.sort_info(m).await;
            items.push(ThreadItem {
                num: if uid { m.uid } else { i as u32 + 1 },
                date: info.date,
                subject: info.subject,
                id: info.message_id,
                refs: info.references,
            });
        }
        let trees = if references {
            thread_references(items)
        } else {
            thread_ordered_subject(items)
        };
        let mut l = String::from("THREAD ");
        for t in &trees {
            render(t, &mut l, true);
        }
        self.untagged(l.trim_end());
        Ok(ok("THREAD completed"))
    }
}

struct SortInfo {
    date: i64,
    subject: String,
    from: (String, String),
    to: (String, String),
    cc: (String, String),
    message_id: String,
    references: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ThreadItem {
    pub num: u32,
    pub date: i64,
    pub subject: String,
    pub id: String,
    pub refs: Vec<String>,
}

/// A thread tree node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub num: Option<u32>,
    pub children: Vec<Node>,
}

fn render(n: &Node, out: &mut String, top: bool) {
    // RFC 5256 §4: "(a b (c)(d))": a chain is written flat, siblings in parentheses.
    if top {
        out.push('(');
    }
    if let Some(x) = n.num {
        out.push_str(&x.to_string());
    }
    match n.children.len() {
        0 => {}
        1 => {
            if n.num.is_some() {
                out.push(' ');
            }
            render(&n.children[0], out, false);
        }
        _ => {
            if n.num.is_some() {
                out.push(' ');
            }
            for c in &n.children {
                out.push('(');
                render(c, out, false);
                out.push(')');
            }
        }
    }
    if top {
        out.push(')');
    }
}

/// RFC 5256 §4 ORDEREDSUBJECT
pub fn thread_ordered_subject(mut items: Vec<ThreadItem>) -> Vec<Node> {
    items.sort_by(|a, b| {
        a.subject
            .cmp(&b.subject)
            .then(a.date.cmp(&b.date))
            .then(a.num.cmp(&b.num))
    });
    let mut groups: Vec<(i64, u32, Node)> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let mut j = i + 1;
        while j < items.len() && items[j].subject == items[i].subject {
            j += 1;
        }
        let first = &items[i];
        let children: Vec<Node> = items[i + 1..j]
            .iter()
            .map(|x| Node {
                num: Some(x.num),
                children: vec![],
            })
            .collect();
        groups.push((
            first.date,
            first.num,
            Node {
                num: Some(first.num),
                children,
            },
        ));
        i = j;
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    groups.into_iter().map(|g| g.2).collect()
}

/// RFC 5256 §4 REFERENCES (the JWZ algorithm, steps 1-5 with subject grouping).
pub fn thread_references(items: Vec<ThreadItem>) -> Vec<Node> {
    // Containers by message-id.
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut num: Vec<Option<usize>> = Vec::new(); // container -> item
    let mut parent: Vec<Option<usize>> = Vec::new();
    let new_c = |num: &mut Vec<Option<usize>>, parent: &mut Vec<Option<usize>>| {
        num.push(None);
        parent.push(None);
        num.len() - 1
    };
    let is_ancestor = |parent: &Vec<Option<usize>>, a: usize, mut b: usize| {
        // Is `a` an ancestor of `b` (or equal)?
        let mut guard = 0;
        loop {
            if a == b {
                return true;
            }
            match parent[b] {
                Some(p) => b = p,
                None => return false,
            }
            guard += 1;
            if guard > 10_000 {
                return true;
            }
        }
    };
    for (idx, it) in items.iter().enumerate() {
        let key = if it.id.is_empty() || ids.get(&it.id).is_some_and(|&c| num[c].is_some()) {
            format!("\0unique{idx}")
        } else {
            it.id.clone()
        };
        let c = match ids.get(&key) {
            Some(&c) => c,
            None => {
                let c = new_c(&mut num, &mut parent);
                ids.insert(key, c);
                c
            }
        };
        num[c] = Some(idx);
        let mut prev: Option<usize> = None;
        for r in &it.refs {
            let rc = match ids.get(r) {
                Some(&x) => x,
                None => {
                    let x = new_c(&mut num, &mut parent);
                    ids.insert(r.clone(), x);
                    x
                }
            };
            if let Some(p) = prev {
                if parent[rc].is_none() && !is_ancestor(&parent, rc, p) {
                    parent[rc] = Some(p);
                }
            }
            prev = Some(rc);
        }
        // The message's parent is the last reference.
        match prev {
            Some(p) if !is_ancestor(&parent, c, p) => parent[c] = Some(p),
            _ => parent[c] = None,
        }
    }
    let n = num.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (c, p) in parent.iter().enumerate().take(n) {
        match *p {
            Some(p) => children[p].push(c),
            None => roots.push(c),
        }
    }
    let date_of =
        |c: usize, num: &Vec<Option<usize>>| num[c].map(|i| (items[i].date, items[i].num));
    // Build nodes, pruning empty containers (RFC 5256 step 4).
    fn build(
        c: usize,
        children: &Vec<Vec<usize>>,
        num: &Vec<Option<usize>>,
        items: &Vec<ThreadItem>,
        depth: usize,
    ) -> Vec<Node> {
        let mut kids: Vec<Node> = Vec::new();
        if depth < 1000 {
            for &k in &children[c] {
                kids.extend(build(k, children, num, items, depth + 1));
            }
        }
        kids.sort_by_key(|k| first_date(k, items));
        match num[c] {
            Some(i) => vec![Node {
                num: Some(items[i].num),
                children: kids,
            }],
            None => {
                if kids.len() <= 1 || depth > 0 {
                    kids
                } else {
                    vec![Node {
                        num: None,
                        children: kids,
                    }]
                }
            }
        }
    }
    fn first_date(n: &Node, items: &[ThreadItem]) -> (i64, u32) {
        match n.num {
            Some(x) => items
                .iter()
                .find(|i| i.num == x)
                .map_or((0, x), |i| (i.date, i.num)),
            None => n.children.first().map_or((0, 0), |c| first_date(c, items)),
        }
    }
    let _ = date_of;
    let mut top: Vec<Node> = Vec::new();
    for r in roots {
        top.extend(build(r, &children, &num, &items, 0));
    }
    // Step 5: group roots by base subject.
    let subject_of = |n: &Node| -> String {
        let mut cur = n;
        loop {
            if let Some(x) = cur.num {
                return items
                    .iter()
                    .find(|i| i.num == x)
                    .map(|i| i.subject.clone())
                    .unwrap_or_default();
            }
            match cur.children.first() {
                Some(c) => cur = c,
                None => return String::new(),
            }
        }
    };
    let mut grouped: Vec<Node> = Vec::new();
    let mut by_subject: HashMap<String, usize> = HashMap::new();
    top.sort_by_key(|n| first_date(n, &items));
    for n in top {
        let s = subject_of(&n);
        if s.is_empty() {
            grouped.push(n);
            continue;
        }
        match by_subject.get(&s) {
            Some(&g) => {
                let target = &mut grouped[g];
                target.children.push(n);
            }
            None => {
                by_subject.insert(s, grouped.len());
                grouped.push(n);
            }
        }
    }
    grouped.sort_by_key(|n| first_date(n, &items));
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it(num: u32, date: i64, subject: &str, id: &str, refs: &[&str]) -> ThreadItem {
        ThreadItem {
            num,
            date,
            subject: base_subject(subject),
            id: id.into(),
            refs: refs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn base_subjects() {
        assert_eq!(
            base_subject("Re: Fwd: [list] Hello  world (fwd)"),
            "hello world"
        );
        assert_eq!(base_subject("RE[2]: x"), "x");
        assert_eq!(base_subject("[Fwd: report]"), "report");
        assert_eq!(base_subject(""), "");
    }

    #[test]
    fn threads() {
        let items = vec![
            it(1, 10, "a", "<1@x>", &[]),
            it(2, 20, "Re: a", "<2@x>", &["<1@x>"]),
            it(3, 30, "b", "<3@x>", &[]),
            it(4, 40, "Re: a", "<4@x>", &["<1@x>", "<2@x>"]),
            it(5, 50, "Re: a", "<5@x>", &["<1@x>"]),
        ];
        let t = thread_references(items.clone());
        let mut s = String::new();
        for n in &t {
            render(n, &mut s, true);
        }
        assert_eq!(s, "(1 (2 4)(5))(3)");
        let t = thread_ordered_subject(items);
        let mut s = String::new();
        for n in &t {
            render(n, &mut s, true);
        }
        assert_eq!(s, "(1 (2)(4)(5))(3)");
    }
}
