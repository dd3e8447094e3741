//! The selected mailbox as one session sees it (RFC 9051 §5.2): its messages in sequence order,
//! the count and keywords the client was told, expunges not yet reported and the expunged
//! messages kept readable meanwhile. Pure state, no I/O: the commands that change it (SELECT,
//! the update pump, IDLE, EXPUNGE) are in `select_cmds`.

use std::collections::HashMap;

use postern_store::{Flags, Held, MailboxEvent, MessageMeta, UidSet};
use tokio::sync::broadcast;

use crate::parser::SeqSet;
use crate::response::{Code, Data, SYSTEM_FLAGS};

/// One message as this session knows it.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub uid: u32,
    pub flags: Flags,
    pub modseq: u64,
    pub internal_date: i64,
    /// Size of the stored file.
    pub size: u64,
    /// Size with CRLF line ends, as FETCH sends it (RFC822.SIZE).
    pub wire_size: u64,
    pub recent: bool,
}

impl From<MessageMeta> for Msg {
    fn from(m: MessageMeta) -> Self {
        Msg {
            uid: m.uid,
            flags: m.flags,
            modseq: m.modseq,
            internal_date: m.internal_date,
            size: m.size,
            wire_size: m.wire_size,
            recent: m.recent,
        }
    }
}

/// State of the selected mailbox.
pub(crate) struct Selected {
    /// Canonical name.
    pub name: String,
    pub readonly: bool,
    pub uidvalidity: u32,
    pub highestmodseq: u64,
    /// Messages in sequence order (ascending UID): the client's view, plus messages that
    /// arrived during the current command and are announced at its end.
    pub msgs: Vec<Msg>,
    /// The message count the client was last told (EXISTS, less the EXPUNGEs since).
    pub exists: usize,
    /// Keywords the client was told of in a FLAGS response (RFC 3501 §7.2.6).
    pub keywords: Vec<String>,
    pub events: broadcast::Receiver<MailboxEvent>,
    /// Expunges seen but not yet reported (RFC 9051 §7.5.1: not during FETCH/STORE/SEARCH).
    pub deferred_expunges: Vec<u32>,
    /// Keeps expunged messages readable until their expunge is reported (RFC 2180 §4.1.1).
    pub held: HashMap<u32, Held>,
    /// Events received while waiting in IDLE, handled by the next pump.
    pub stash: Vec<MailboxEvent>,
    /// The event stream overflowed: resynchronise from the store.
    pub lagged: bool,
}

impl Selected {
    /// Sequence number (1-based) of a UID.
    pub(crate) fn seq_of(&self, uid: u32) -> Option<usize> {
        self.msgs
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i + 1)
    }

    /// Takes a flag change this session made itself (STORE, FETCH setting `\Seen`): the
    /// message's flags and MODSEQ, and HIGHESTMODSEQ. The UID, unless it is not in the view.
    pub(crate) fn apply_own_change(&mut self, ch: postern_store::FlagChange) -> Option<u32> {
        let seq = self.seq_of(ch.uid)?;
        let m = &mut self.msgs[seq - 1];
        m.flags = ch.flags;
        m.modseq = ch.modseq;
        self.highestmodseq = self.highestmodseq.max(ch.modseq);
        Some(ch.uid)
    }

    pub(crate) fn max_uid(&self) -> u32 {
        self.msgs.last().map_or(0, |m| m.uid)
    }

    /// Resolves a UID set (`*` = largest UID) to existing messages' indexes.
    pub(crate) fn uid_indexes(&self, set: &SeqSet) -> Vec<usize> {
        let ranges = set.resolve(self.max_uid());
        let mut out: Vec<usize> = Vec::new();
        for (a, b) in ranges {
            let start = self.msgs.partition_point(|m| m.uid < a);
            let end = self.msgs.partition_point(|m| m.uid <= b);
            out.extend(start..end);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Resolves a sequence set; `Err` if a number exceeds the message count.
    pub(crate) fn seq_indexes(&self, set: &SeqSet) -> Result<Vec<usize>, ()> {
        let n = self.msgs.len() as u32;
        let ranges = set.resolve(n);
        let mut out = Vec::new();
        for (a, b) in ranges {
            if b > n || a == 0 {
                return Err(());
            }
            out.extend((a - 1) as usize..b as usize);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    pub(crate) fn uid_set(&self, idx: &[usize]) -> UidSet {
        idx.iter().map(|&i| self.msgs[i].uid).collect()
    }

    /// Notes another session's expunge of a message, if this session still shows it.
    pub(crate) fn defer_expunge(&mut self, uid: u32, held: Option<Held>) {
        if self.seq_of(uid).is_none() || self.deferred_expunges.contains(&uid) {
            return;
        }
        self.deferred_expunges.push(uid);
        if let Some(h) = held {
            self.held.insert(uid, h);
        }
    }

    /// Adds the keywords of `flags` the client has not been told of; true if there were any.
    pub(crate) fn learn_keywords<'a>(&mut self, flags: impl Iterator<Item = &'a Flags>) -> bool {
        learn(&mut self.keywords, flags)
    }

    /// Learns the keywords of every message in the view (at SELECT), without copying flags.
    pub(crate) fn learn_all_keywords(&mut self) -> bool {
        learn(&mut self.keywords, self.msgs.iter().map(|m| &m.flags))
    }

    /// RFC 3501 §7.2.6: before FETCH responses show the messages `uids` and those from index
    /// `from` on, the FLAGS and PERMANENTFLAGS responses to send if they use a keyword the
    /// client has not been told of.
    pub(crate) fn announce_keywords<'a>(
        &mut self,
        uids: impl IntoIterator<Item = &'a u32>,
        from: usize,
    ) -> Option<(String, String)> {
        let msgs = &self.msgs;
        let changed = uids
            .into_iter()
            .filter_map(|u| msgs.binary_search_by_key(u, |m| m.uid).ok())
            .map(|i| &msgs[i].flags);
        let added = msgs
            .get(from..)
            .unwrap_or_default()
            .iter()
            .map(|m| &m.flags);
        learn(&mut self.keywords, changed.chain(added)).then(|| self.flags_responses())
    }
}

/// Adds to `known` the keywords of `flags` it lacks (compared case-insensitively).
fn learn<'a>(known: &mut Vec<String>, flags: impl Iterator<Item = &'a Flags>) -> bool {
    let mut learned = false;
    for f in flags {
        for k in f.keywords() {
            if !known.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                known.push(k.clone());
                learned = true;
            }
        }
    }
    learned
}

impl Selected {
    /// The FLAGS response and the PERMANENTFLAGS response code (RFC 9051 §7.3.5, §7.1).
    pub(crate) fn flags_responses(&self) -> (String, String) {
        let flags = Data::Flags(&self.keywords).render();
        let permanent = if self.readonly {
            Data::Ok(Code::PermanentFlags(String::new()), "Read-only mailbox").render()
        } else {
            let mut all: Vec<&str> = SYSTEM_FLAGS.to_vec();
            all.extend(self.keywords.iter().map(String::as_str));
            all.push("\\*");
            Data::Ok(Code::PermanentFlags(all.join(" ")), "Flags permitted").render()
        };
        (flags, permanent)
    }
}

/// Renders UIDs or numbers as an IMAP sequence set ("1:3,5"), sorted and without repeats.
pub(crate) fn set_string(nums: impl IntoIterator<Item = u32>) -> String {
    let mut v: Vec<u32> = nums.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    ordered_set_string(v)
}

/// Renders numbers in the order given, joining consecutive runs into ranges: RFC 4315 COPYUID
/// pairs the source and destination UID sets by position, so their order must be kept.
pub(crate) fn ordered_set_string(nums: impl IntoIterator<Item = u32>) -> String {
    let v: Vec<u32> = nums.into_iter().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

pub(crate) fn flags_string(f: &Flags, recent: bool) -> String {
    let mut names = f.names();
    if recent {
        names.push("\\Recent".into());
    }
    format!("({})", names.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::SeqNum;

    fn view(uids: &[u32], readonly: bool) -> Selected {
        let msgs = uids
            .iter()
            .map(|&uid| Msg {
                uid,
                flags: Flags::new(),
                modseq: 1,
                internal_date: 0,
                size: 10,
                wire_size: 10,
                recent: false,
            })
            .collect::<Vec<_>>();
        Selected {
            name: "INBOX".into(),
            readonly,
            uidvalidity: 1,
            highestmodseq: 1,
            exists: msgs.len(),
            msgs,
            keywords: Vec::new(),
            events: broadcast::channel(4).1,
            deferred_expunges: Vec::new(),
            held: HashMap::new(),
            stash: Vec::new(),
            lagged: false,
        }
    }

    /// RFC 3501 §7.2.6: keywords are learned once, case-insensitively, and both the FLAGS and
    /// the PERMANENTFLAGS responses name them (read-only mailboxes permit nothing).
    #[test]
    fn keywords_are_announced_once() {
        let mut sel = view(&[1, 2], false);
        let f = Flags::from_names(["$Label1", "\\Seen"]).unwrap();
        assert!(sel.learn_keywords([&f].into_iter()));
        let again = Flags::from_names(["$label1"]).unwrap();
        assert!(!sel.learn_keywords([&again].into_iter()));
        let (flags, permanent) = sel.flags_responses();
        assert_eq!(
            flags,
            "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)"
        );
        assert_eq!(
            permanent,
            "OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)] Flags permitted"
        );
        let ro = view(&[1], true);
        assert_eq!(
            ro.flags_responses().1,
            "OK [PERMANENTFLAGS ()] Read-only mailbox"
        );
    }

    /// RFC 9051 §7.5.1: another session's expunge is remembered once, and only for a message
    /// this session still shows; sequence sets resolve against the session's own view.
    #[test]
    fn expunges_of_others_are_deferred_for_visible_messages() {
        let mut sel = view(&[3, 5, 9], false);
        sel.defer_expunge(5, None);
        sel.defer_expunge(5, None);
        sel.defer_expunge(7, None);
        assert_eq!(sel.deferred_expunges, [5]);
        assert_eq!(sel.seq_of(9), Some(3));
        let set = SeqSet(vec![(SeqNum::Num(2), SeqNum::Star)]);
        assert_eq!(sel.seq_indexes(&set), Ok(vec![1, 2]));
        assert_eq!(sel.uid_indexes(&set), vec![0, 1, 2]);
    }

    #[test]
    fn sets() {
        assert_eq!(set_string([1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(set_string([]), "");
        assert_eq!(set_string([4]), "4");
    }
}
