//! The selected mailbox: SELECT/EXAMINE (RFC 9051 §6.3.2-3, RFC 7162 §3.2.5 QRESYNC), the
//! untagged updates other sessions cause (RFC 9051 §7.4-7.5, §5.2), IDLE (RFC 2177), CLOSE,
//! UNSELECT and EXPUNGE.

use std::time::Duration;

use postern_store::{Flags, MailboxEvent, MessageMeta, UidSet};
use tokio::sync::broadcast;

use crate::parser::{Qresync, SeqSet};
use crate::session::{bad, no, ok, store_no, Reply, SResult, Session, SessionError};

/// One message as this session knows it.
#[derive(Debug, Clone)]
pub struct Msg {
    pub uid: u32,
    pub flags: Flags,
    pub modseq: u64,
    pub internal_date: i64,
    pub size: u64,
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
            recent: m.recent,
        }
    }
}

/// State of the selected mailbox.
pub struct Selected {
    /// Canonical name.
    pub name: String,
    pub readonly: bool,
    pub uidvalidity: u32,
    pub highestmodseq: u64,
    /// Messages in sequence order (ascending UID).
    pub msgs: Vec<Msg>,
    pub events: broadcast::Receiver<MailboxEvent>,
    /// Expunges seen but not yet reported (RFC 9051 §7.5.1: not during FETCH/STORE/SEARCH).
    pub deferred_expunges: Vec<u32>,
    /// Events received while waiting in IDLE, handled by the next pump.
    pub stash: Vec<MailboxEvent>,
    /// The event stream overflowed: resynchronise from the store.
    pub lagged: bool,
}

impl Selected {
    /// Sequence number (1-based) of a UID.
    pub fn seq_of(&self, uid: u32) -> Option<usize> {
        self.msgs
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i + 1)
    }

    pub fn max_uid(&self) -> u32 {
        self.msgs.last().map_or(0, |m| m.uid)
    }

    /// Resolves a UID set (`*` = largest UID) to existing messages' indexes.
    pub fn uid_indexes(&self, set: &SeqSet) -> Vec<usize> {
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
    pub fn seq_indexes(&self, set: &SeqSet) -> Result<Vec<usize>, ()> {
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

    pub fn uid_set(&self, idx: &[usize]) -> UidSet {
        idx.iter().map(|&i| self.msgs[i].uid).collect()
    }
}

/// Renders UIDs or numbers as an IMAP sequence set ("1:3,5"), sorted and without repeats.
pub fn set_string(nums: impl IntoIterator<Item = u32>) -> String {
    let mut v: Vec<u32> = nums.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    ordered_set_string(v)
}

/// Renders numbers in the order given, joining consecutive runs into ranges: RFC 4315 COPYUID
/// pairs the source and destination UID sets by position, so their order must be kept.
pub fn ordered_set_string(nums: impl IntoIterator<Item = u32>) -> String {
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

pub fn flags_string(f: &Flags, recent: bool) -> String {
    let mut names = f.names();
    if recent {
        names.push("\\Recent".into());
    }
    format!("({})", names.join(" "))
}

impl Session {
    /// RFC 9051 §6.3.2 SELECT / §6.3.3 EXAMINE
    pub(crate) async fn select(
        &mut self,
        raw: &[u8],
        examine: bool,
        condstore: bool,
        qresync: Option<Qresync>,
    ) -> SResult<Reply> {
        if self.sel.take().is_some() {
            // RFC 7162 §3.2.11 / RFC 9051 §6.3.2: the previous mailbox is closed.
            self.untagged("OK [CLOSED] Previous mailbox closed");
        }
        if qresync.is_some() && !self.qresync {
            return Ok(bad("QRESYNC must be enabled first"));
        }
        if condstore {
            self.condstore = true;
        }
        let name = match self.mailbox_in(raw) {
            Ok(n) => n,
            Err(r) => return Ok(r),
        };
        let account = self.account().to_string();
        let store = self.srv.store.clone();
        // Subscribe before the snapshot so no change falls between them.
        let events = match store.subscribe(&account, &name) {
            Ok(e) => e,
            Err(e) => return Ok(store_no(&e)),
        };
        let claim_recent = !examine && !self.rev2;
        let snap = match store.select(&account, &name, claim_recent).await {
            Ok(s) => s,
            Err(e) => return Ok(store_no(&e)),
        };
        let msgs: Vec<Msg> = snap.messages.into_iter().map(Msg::from).collect();
        let exists = msgs.len();
        let recent = msgs.iter().filter(|m| m.recent).count();
        let first_unseen = msgs
            .iter()
            .position(|m| !m.flags.has(postern_store::SystemFlags::SEEN));
        let mut keywords: Vec<String> = Vec::new();
        for m in &msgs {
            for k in m.flags.keywords() {
                if !keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) && keywords.len() < 200 {
                    keywords.push(k.clone());
                }
            }
        }
        let kw = if keywords.is_empty() {
            String::new()
        } else {
            format!(" {}", keywords.join(" "))
        };
        self.untagged(&format!(
            "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft{kw})"
        ));
        if examine {
            self.untagged("OK [PERMANENTFLAGS ()] Read-only mailbox");
        } else {
            self.untagged(&format!(
                "OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft{kw} \\*)] Flags permitted"
            ));
        }
        self.untagged(&format!("{exists} EXISTS"));
        if !self.rev2 {
            self.untagged(&format!("{recent} RECENT"));
            if let Some(i) = first_unseen {
                self.untagged(&format!("OK [UNSEEN {}] First unseen", i + 1));
            }
        }
        self.untagged(&format!("OK [UIDVALIDITY {}] UIDs valid", snap.uidvalidity));
        self.untagged(&format!("OK [UIDNEXT {}] Predicted next UID", snap.uidnext));
        self.untagged(&format!(
            "OK [HIGHESTMODSEQ {}] Highest",
            snap.highestmodseq.max(1)
        ));
        if self.rev2 {
            let mut line = b"* LIST () \"".to_vec();
            line.extend_from_slice(
                self.srv
                    .config
                    .mail
                    .hierarchy_separator
                    .to_string()
                    .as_bytes(),
            );
            line.extend_from_slice(b"\" ");
            self.mailbox_out(&mut line, &name);
            line.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(&line);
        }
        let mut sel = Selected {
            name: name.clone(),
            readonly: examine,
            uidvalidity: snap.uidvalidity,
            highestmodseq: snap.highestmodseq,
            msgs,
            events,
            deferred_expunges: Vec::new(),
            stash: Vec::new(),
            lagged: false,
        };
        if let Some(q) = qresync {
            if q.uidvalidity == sel.uidvalidity && q.modseq > 0 {
                match store.changes_since(&account, &name, q.modseq).await {
                    Ok(ch) => {
                        let known = q.known_uids.as_ref().map(|k| k.resolve(u32::MAX));
                        let in_known = |u: u32| {
                            known
                                .as_ref()
                                .is_none_or(|r| r.iter().any(|&(a, b)| a <= u && u <= b))
                        };
                        let vanished: Vec<u32> = ch
                            .vanished
                            .ranges()
                            .iter()
                            .flat_map(|&(a, b)| a..=b.min(sel.max_uid().max(a)))
                            .filter(|&u| in_known(u) && sel.seq_of(u).is_none())
                            .take(1_000_000)
                            .collect();
                        if !vanished.is_empty() {
                            self.untagged(&format!("VANISHED (EARLIER) {}", set_string(vanished)));
                        }
                        for m in ch.changed {
                            if let Some(seq) = sel.seq_of(m.uid) {
                                let recent = sel.msgs[seq - 1].recent && !self.rev2;
                                self.untagged(&format!(
                                    "{seq} FETCH (UID {} FLAGS {} MODSEQ ({}))",
                                    m.uid,
                                    flags_string(&m.flags, recent),
                                    m.modseq
                                ));
                            }
                        }
                    }
                    Err(e) => return Ok(store_no(&e)),
                }
            }
        }
        // Any change between subscribe and snapshot is already in the snapshot; drop stale
        // events (they are recognised by UID and MODSEQ anyway).
        while let Ok(ev) = sel.events.try_recv() {
            if let MailboxEvent::Expunged { uid } = ev {
                if sel.seq_of(uid).is_some() {
                    sel.deferred_expunges.push(uid);
                }
            }
        }
        self.sel = Some(sel);
        Ok(ok(if examine {
            "[READ-ONLY] EXAMINE completed"
        } else {
            "[READ-WRITE] SELECT completed"
        }))
    }

    /// Sends pending updates of the selected mailbox: new messages (EXISTS), flag changes
    /// (FETCH), and — when `allow_expunge` — expunges (EXPUNGE or VANISHED).
    pub(crate) async fn pump(&mut self, allow_expunge: bool) -> SResult<()> {
        let account = self.account().to_string();
        let Some(sel) = self.sel.as_mut() else {
            return Ok(());
        };
        let before = sel.msgs.len();
        let mut new_uids: Vec<u32> = Vec::new();
        let mut flag_lines: Vec<u32> = Vec::new();
        let mut resync = std::mem::take(&mut sel.lagged);
        let mut stash = std::mem::take(&mut sel.stash).into_iter();
        loop {
            let next = match stash.next() {
                Some(ev) => Ok(ev),
                None => sel.events.try_recv(),
            };
            match next {
                Ok(MailboxEvent::New { uid }) => {
                    if uid > sel.max_uid() && new_uids.last().is_none_or(|&l| uid > l) {
                        new_uids.push(uid);
                    }
                }
                Ok(MailboxEvent::Flags { uid, flags, modseq }) => {
                    if let Some(seq) = sel.seq_of(uid) {
                        let m = &mut sel.msgs[seq - 1];
                        if modseq > m.modseq {
                            let changed = m.flags != flags;
                            m.flags = flags;
                            m.modseq = modseq;
                            if changed || self.condstore {
                                flag_lines.push(uid);
                            }
                        }
                    } else if new_uids.contains(&uid) {
                        // Will be read fresh below.
                    }
                    sel.highestmodseq = sel.highestmodseq.max(modseq);
                }
                Ok(MailboxEvent::Expunged { uid }) => {
                    if sel.seq_of(uid).is_some() {
                        sel.deferred_expunges.push(uid);
                    } else {
                        new_uids.retain(|&u| u != uid);
                    }
                }
                Ok(MailboxEvent::Invalidated) => return Err(SessionError::MailboxGone),
                Err(broadcast::error::TryRecvError::Lagged(_)) => resync = true,
                Err(_) => break,
            }
        }
        let name = sel.name.clone();
        if resync {
            if let Ok(snap) = self.srv.store.select(&account, &name, false).await {
                let Some(sel) = self.sel.as_mut() else {
                    return Ok(());
                };
                let present: std::collections::HashSet<u32> =
                    snap.messages.iter().map(|m| m.uid).collect();
                for m in &sel.msgs {
                    if !present.contains(&m.uid) && !sel.deferred_expunges.contains(&m.uid) {
                        sel.deferred_expunges.push(m.uid);
                    }
                }
                let max = sel.max_uid();
                for m in snap.messages {
                    if m.uid > max {
                        if new_uids.last().is_none_or(|&l| m.uid > l) {
                            new_uids.push(m.uid);
                        }
                    } else if let Some(seq) = sel.seq_of(m.uid) {
                        let cur = &mut sel.msgs[seq - 1];
                        if cur.flags != m.flags {
                            cur.flags = m.flags;
                            cur.modseq = m.modseq;
                            flag_lines.push(m.uid);
                        }
                    }
                }
                new_uids.sort_unstable();
                new_uids.dedup();
            }
        }
        // Flag updates first (their sequence numbers are valid before any expunge).
        flag_lines.sort_unstable();
        flag_lines.dedup();
        for uid in flag_lines {
            let Some(sel) = self.sel.as_ref() else { break };
            if let Some(seq) = sel.seq_of(uid) {
                let m = &sel.msgs[seq - 1];
                let line = if self.condstore {
                    format!(
                        "{seq} FETCH (UID {uid} FLAGS {} MODSEQ ({}))",
                        flags_string(&m.flags, m.recent && !self.rev2),
                        m.modseq
                    )
                } else {
                    format!(
                        "{seq} FETCH (UID {uid} FLAGS {})",
                        flags_string(&m.flags, m.recent && !self.rev2)
                    )
                };
                self.untagged(&line);
            }
        }
        if allow_expunge {
            self.report_expunges()?;
        }
        for uid in new_uids {
            match self.srv.store.message_meta(&account, &name, uid).await {
                Ok(meta) => {
                    if let Some(sel) = self.sel.as_mut() {
                        if meta.uid > sel.max_uid() {
                            sel.highestmodseq = sel.highestmodseq.max(meta.modseq);
                            sel.msgs.push(Msg::from(meta));
                        }
                    }
                }
                Err(_) => continue,
            }
        }
        let Some(sel) = self.sel.as_ref() else {
            return Ok(());
        };
        let after = sel.msgs.len();
        if after != before || (allow_expunge && after < before) {
            let recent = sel.msgs.iter().filter(|m| m.recent).count();
            self.untagged(&format!("{after} EXISTS"));
            if !self.rev2 {
                self.untagged(&format!("{recent} RECENT"));
            }
        }
        Ok(())
    }

    /// Sends EXPUNGE (or VANISHED with QRESYNC) for deferred expunges and removes them.
    pub(crate) fn report_expunges(&mut self) -> SResult<()> {
        let Some(sel) = self.sel.as_mut() else {
            return Ok(());
        };
        if sel.deferred_expunges.is_empty() {
            return Ok(());
        }
        let mut uids = std::mem::take(&mut sel.deferred_expunges);
        uids.sort_unstable();
        uids.dedup();
        self.remove_and_report(&uids);
        Ok(())
    }

    /// Removes messages from the session's view and reports them (RFC 9051 §7.5.1 EXPUNGE,
    /// RFC 7162 §3.2.10 VANISHED).
    pub(crate) fn remove_and_report(&mut self, uids: &[u32]) {
        let qresync = self.qresync;
        let Some(sel) = self.sel.as_mut() else {
            return;
        };
        let mut lines = Vec::new();
        let mut gone = Vec::new();
        for &uid in uids {
            if let Some(seq) = sel.seq_of(uid) {
                sel.msgs.remove(seq - 1);
                gone.push(uid);
                if !qresync {
                    lines.push(format!("{seq} EXPUNGE"));
                }
            }
        }
        sel.deferred_expunges.retain(|u| !gone.contains(u));
        if qresync && !gone.is_empty() {
            lines.push(format!("VANISHED {}", set_string(gone)));
        }
        for l in lines {
            self.untagged(&l);
        }
    }

    /// RFC 9051 §6.4.2 CLOSE (expunge silently) / RFC 3691 UNSELECT.
    pub(crate) async fn close(&mut self, expunge: bool) -> Reply {
        let Some(sel) = self.sel.take() else {
            return bad("No mailbox selected");
        };
        if expunge && !sel.readonly {
            let a = self.account().to_string();
            if let Err(e) = self.srv.store.expunge(&a, &sel.name, None).await {
                tracing::debug!("expunge on close failed: {e}");
            }
        }
        ok(if expunge {
            "CLOSE completed"
        } else {
            "UNSELECT completed"
        })
    }

    /// RFC 9051 §6.4.3 EXPUNGE / RFC 4315 §2.1 UID EXPUNGE
    pub(crate) async fn expunge(&mut self, uids: Option<SeqSet>) -> SResult<Reply> {
        let account = self.account().to_string();
        let Some(sel) = self.sel.as_ref() else {
            return Ok(bad("No mailbox selected"));
        };
        if sel.readonly {
            return Ok(no("[READ-ONLY] Mailbox is read-only"));
        }
        let set = uids.as_ref().map(|s| {
            let idx = sel.uid_indexes(s);
            sel.uid_set(&idx)
        });
        if let Some(s) = &set {
            if s.is_empty() {
                return Ok(ok("EXPUNGE completed"));
            }
        }
        let name = sel.name.clone();
        self.report_expunges()?;
        match self.srv.store.expunge(&account, &name, set).await {
            Ok(mut gone) => {
                gone.sort_unstable();
                self.remove_and_report(&gone);
                Ok(ok("EXPUNGE completed"))
            }
            Err(e) => Ok(store_no(&e)),
        }
    }

    /// RFC 2177 IDLE: `+ idling`, then updates as they happen until `DONE`.
    pub(crate) async fn idle(&mut self, _tag: &str) -> SResult<Reply> {
        self.out.extend_from_slice(b"+ idling\r\n");
        if self.sel.is_some() {
            self.pump(true).await?;
        }
        self.flush().await?;
        let poll = self.srv.limits.idle_poll;
        let deadline = tokio::time::Instant::now() + self.srv.limits.autologout;
        loop {
            if self.has_line() {
                let line = self
                    .read_line(self.srv.limits.max_line, Duration::from_secs(1))
                    .await?;
                let l = String::from_utf8_lossy(&line);
                if l.trim().eq_ignore_ascii_case("DONE") {
                    return Ok(ok("IDLE terminated"));
                }
                return Ok(bad("Expected DONE"));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(SessionError::Timeout);
            }
            // Wait for input, an event, or the poll tick (other programs' Maildir changes).
            let wait = poll.min(deadline - now);
            let got_event = {
                let Session {
                    stream,
                    rbuf,
                    rpos,
                    shutdown,
                    sel,
                    ..
                } = self;
                tokio::select! {
                    r = crate::session::fill_from(stream, rbuf, rpos, shutdown, wait) => match r {
                        Ok(()) | Err(SessionError::Timeout) => false,
                        Err(e) => return Err(e),
                    },
                    ev = next_event(sel) => {
                        if let Some(s) = sel.as_mut() {
                            match ev {
                                Ok(ev) => s.stash.push(ev),
                                Err(_) => s.lagged = true,
                            }
                        }
                        true
                    }
                }
            };
            if self.has_line() {
                continue;
            }
            if let Some(sel) = &self.sel {
                let (a, m) = (self.account().to_string(), sel.name.clone());
                if !got_event {
                    let _ = self.srv.store.sync_mailbox(&a, &m).await;
                }
            }
            if self.sel.is_some() {
                self.pump(true).await?;
                self.flush().await?;
            }
        }
    }
}

async fn next_event(
    sel: &mut Option<Selected>,
) -> Result<MailboxEvent, broadcast::error::RecvError> {
    match sel {
        Some(s) => match s.events.recv().await {
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            r => r,
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets() {
        assert_eq!(set_string([1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(set_string([]), "");
        assert_eq!(set_string([4]), "4");
    }
}
