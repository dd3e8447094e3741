//! SELECT/EXAMINE (RFC 9051 §6.3.2-3, RFC 7162 §3.2.5 QRESYNC), the untagged updates other
//! sessions cause (RFC 9051 §7.4-7.5, §5.2), IDLE (RFC 2177), CLOSE, UNSELECT and EXPUNGE: the
//! commands that change a session's [`Selected`] view.

use std::collections::HashMap;
use std::time::Duration;

use postern_store::MailboxEvent;
use tokio::sync::broadcast;

use crate::parser::{Qresync, SeqSet};
use crate::response::{bad, no_code, ok, ok_code, store_no, Code, Data, Reply};
use crate::selected::{flags_string, set_string, Msg, Selected};
use crate::session::{SResult, Session, SessionError};

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
            self.data(Data::Ok(Code::Closed, "Previous mailbox closed"));
        }
        if qresync.is_some() && !self.qresync {
            return Ok(bad("QRESYNC must be enabled first"));
        }
        if condstore {
            // RFC 7162 §3.2.5: SELECT (CONDSTORE) enables CONDSTORE (HIGHESTMODSEQ follows
            // in the SELECT response itself).
            self.enable_condstore();
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
        let mut sel = Selected {
            name: name.clone(),
            readonly: examine,
            uidvalidity: snap.uidvalidity,
            highestmodseq: snap.highestmodseq,
            exists: msgs.len(),
            msgs,
            keywords: Vec::new(),
            events,
            deferred_expunges: Vec::new(),
            held: HashMap::new(),
            stash: Vec::new(),
            lagged: false,
        };
        // RFC 7162 §3.2.5.1: what changed since the client's last visit, read before the FLAGS
        // response so that it names every keyword these FETCH responses use.
        let mut resync_lines = Vec::new();
        if let Some(q) = qresync.filter(|q| q.uidvalidity == sel.uidvalidity && q.modseq > 0) {
            let ch = match store.changes_since(&account, &name, q.modseq).await {
                Ok(ch) => ch,
                Err(e) => return Ok(store_no(&e)),
            };
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
                let uids = set_string(vanished);
                resync_lines.push(
                    Data::Vanished {
                        earlier: true,
                        uids: &uids,
                    }
                    .render(),
                );
            }
            for m in ch.changed {
                if let Some(seq) = sel.seq_of(m.uid) {
                    sel.learn_keywords(std::iter::once(&m.flags));
                    let recent = sel.msgs[seq - 1].recent && !self.rev2;
                    let flags = flags_string(&m.flags, recent);
                    resync_lines.push(
                        Data::FlagsUpdate {
                            seq,
                            uid: Some(m.uid),
                            flags: &flags,
                            modseq: Some(m.modseq),
                        }
                        .render(),
                    );
                }
            }
        }
        sel.learn_all_keywords();
        let (flags, permanent) = sel.flags_responses();
        self.untagged(&flags);
        self.untagged(&permanent);
        self.data(Data::Exists(sel.exists));
        if !self.rev2 {
            let recent = sel.msgs.iter().filter(|m| m.recent).count();
            self.data(Data::Recent(recent));
            let first_unseen = sel
                .msgs
                .iter()
                .position(|m| !m.flags.has(postern_store::SystemFlags::SEEN));
            if let Some(i) = first_unseen {
                self.data(Data::Ok(Code::Unseen(i + 1), "First unseen"));
            }
        }
        self.data(Data::Ok(Code::UidValidity(snap.uidvalidity), "UIDs valid"));
        self.data(Data::Ok(Code::UidNext(snap.uidnext), "Predicted next UID"));
        self.data(Data::Ok(
            Code::HighestModseq(snap.highestmodseq.max(1)),
            "Highest",
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
            self.io.write(&line);
        }
        for l in resync_lines {
            self.untagged(&l);
        }
        // Any change between subscribe and snapshot is already in the snapshot; drop stale
        // events (they are recognised by UID and MODSEQ anyway).
        while let Ok(ev) = sel.events.try_recv() {
            if let MailboxEvent::Expunged { uid, held } = ev {
                sel.defer_expunge(uid, held);
            }
        }
        self.sel = Some(sel);
        Ok(if examine {
            ok_code(Code::ReadOnly, "EXAMINE completed")
        } else {
            ok_code(Code::ReadWrite, "SELECT completed")
        })
    }

    /// Sends pending updates of the selected mailbox in the session's own view (RFC 9051
    /// §5.2, §7.4.1, §7.5): a FLAGS response for keywords the session has not seen yet, flag
    /// changes (FETCH), expunges when `allow_expunge` (EXPUNGE or VANISHED), then new messages
    /// (EXISTS). No response names a sequence number above the last count the client was told.
    pub(crate) async fn pump(&mut self, allow_expunge: bool) -> SResult<()> {
        let account = self.account().to_string();
        let claim_recent = !self.rev2;
        let Some(sel) = self.sel.as_mut() else {
            return Ok(());
        };
        let claim_recent = claim_recent && !sel.readonly;
        let mut has_new = false;
        let mut flag_lines: Vec<u32> = Vec::new();
        let mut resync = std::mem::take(&mut sel.lagged);
        let mut stash = std::mem::take(&mut sel.stash).into_iter();
        loop {
            let next = match stash.next() {
                Some(ev) => Ok(ev),
                None => sel.events.try_recv(),
            };
            match next {
                Ok(MailboxEvent::New { uid }) => has_new |= uid > sel.max_uid(),
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
                    }
                    sel.highestmodseq = sel.highestmodseq.max(modseq);
                }
                Ok(MailboxEvent::Expunged { uid, held }) => sel.defer_expunge(uid, held),
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
                let gone: Vec<u32> = sel
                    .msgs
                    .iter()
                    .map(|m| m.uid)
                    .filter(|u| !present.contains(u))
                    .collect();
                for uid in gone {
                    sel.defer_expunge(uid, None);
                }
                let max = sel.max_uid();
                for m in snap.messages {
                    if m.uid > max {
                        has_new = true;
                    } else if let Some(seq) = sel.seq_of(m.uid) {
                        let cur = &mut sel.msgs[seq - 1];
                        if cur.flags != m.flags {
                            cur.flags = m.flags;
                            cur.modseq = m.modseq;
                            flag_lines.push(m.uid);
                        }
                    }
                }
            }
        }
        if has_new {
            let after = self.sel.as_ref().map_or(0, Selected::max_uid);
            match self
                .srv
                .store
                .messages_after(&account, &name, after, claim_recent)
                .await
            {
                Ok(fresh) => {
                    if let Some(sel) = self.sel.as_mut() {
                        for meta in fresh {
                            if meta.uid > sel.max_uid() {
                                sel.highestmodseq = sel.highestmodseq.max(meta.modseq);
                                sel.msgs.push(Msg::from(meta));
                            }
                        }
                    }
                }
                // Tried again at the next pump.
                Err(_) => {
                    if let Some(sel) = self.sel.as_mut() {
                        sel.lagged = true;
                    }
                }
            }
        }
        let Some(sel) = self.sel.as_mut() else {
            return Ok(());
        };
        // RFC 3501 §7.2.6: keywords are announced before a FETCH response uses them.
        flag_lines.sort_unstable();
        flag_lines.dedup();
        let from = sel.exists;
        if let Some((flags, permanent)) = sel.announce_keywords(&flag_lines, from) {
            self.untagged(&flags);
            self.untagged(&permanent);
        }
        // Flag updates first: their sequence numbers are those the client knows.
        for uid in flag_lines {
            let Some(sel) = self.sel.as_ref() else { break };
            if let Some(seq) = sel.seq_of(uid) {
                let m = &sel.msgs[seq - 1];
                let flags = flags_string(&m.flags, m.recent && !self.rev2);
                let line = Data::FlagsUpdate {
                    seq,
                    uid: Some(uid),
                    flags: &flags,
                    modseq: self.condstore.then_some(m.modseq),
                };
                self.data(line);
            }
        }
        if allow_expunge {
            self.report_expunges()?;
        }
        let rev2 = self.rev2;
        let Some(sel) = self.sel.as_mut() else {
            return Ok(());
        };
        if sel.msgs.len() > sel.exists {
            sel.exists = sel.msgs.len();
            let exists = sel.exists;
            let recent = sel.msgs.iter().filter(|m| m.recent).count();
            self.data(Data::Exists(exists));
            if !rev2 {
                self.data(Data::Recent(recent));
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
                sel.exists -= 1;
                sel.held.remove(&uid);
                gone.push(uid);
                if !qresync {
                    lines.push(Data::Expunge(seq).render());
                }
            }
        }
        sel.deferred_expunges.retain(|u| !gone.contains(u));
        // RFC 5182 §2.1: expunged messages leave the search result variable.
        self.saved.retain(|u| !gone.contains(u));
        if qresync && !gone.is_empty() {
            let uids = set_string(gone);
            lines.push(
                Data::Vanished {
                    earlier: false,
                    uids: &uids,
                }
                .render(),
            );
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
            return Ok(no_code(Code::ReadOnly, "Mailbox is read-only"));
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
        self.io.write(b"+ idling\r\n");
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
                let Session { io, sel, .. } = self;
                tokio::select! {
                    r = io.fill(wait) => match r {
                        Ok(()) | Err(postern_net::LineError::Timeout) => false,
                        Err(e) => return Err(crate::session::net_err(e)),
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
                    let _ = self.srv.store.refresh(&a, &m).await;
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
