//! STORE (RFC 9051 §6.4.6, RFC 7162 §3.1.3 UNCHANGEDSINCE), COPY (RFC 9051 §6.4.7,
//! RFC 4315 COPYUID) and MOVE (RFC 6851).

use postern_store::{FlagOp, Flags, StoreError};

use crate::parser::{SeqSet, StoreOp};
use crate::response::{bad, no_code, ok, ok_code, store_no, Code, Data, Reply};
use crate::selected::{flags_string, set_string};
use crate::session::{SResult, Session};

impl Session {
    fn resolve(&self, uid: bool, set: &SeqSet) -> Result<Vec<usize>, Reply> {
        let Some(sel) = self.sel.as_ref() else {
            return Err(bad("No mailbox selected"));
        };
        if uid {
            Ok(sel.uid_indexes(set))
        } else {
            sel.seq_indexes(set)
                .map_err(|()| bad("Invalid message sequence number"))
        }
    }

    /// RFC 9051 §6.4.6 STORE
    pub(crate) async fn store(
        &mut self,
        uid: bool,
        set: SeqSet,
        op: StoreOp,
        silent: bool,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> SResult<Reply> {
        let idx = match self.resolve(uid, &set) {
            Ok(i) => i,
            Err(r) => return Ok(r),
        };
        let Some(sel) = self.sel.as_ref() else {
            return Ok(bad("No mailbox selected"));
        };
        if sel.readonly {
            return Ok(no_code(Code::ReadOnly, "Mailbox is read-only"));
        }
        let names: Vec<&String> = flags
            .iter()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .collect();
        let flags = match Flags::from_names(names) {
            Ok(f) => f,
            Err(e) => return Ok(bad(e.to_string())),
        };
        let uids = sel.uid_set(&idx);
        let name = sel.name.clone();
        let account = self.account().to_string();
        if unchanged_since.is_some() {
            // RFC 7162 §3.1: STORE UNCHANGEDSINCE enables CONDSTORE.
            self.enable_condstore();
        }
        let fop = match op {
            StoreOp::Replace => FlagOp::Replace,
            StoreOp::Add => FlagOp::Add,
            StoreOp::Remove => FlagOp::Remove,
        };
        let outcome = match self
            .srv
            .store
            .store_flags(&account, &name, uids, fop, flags, unchanged_since)
            .await
        {
            Ok(o) => o,
            Err(e) => return Ok(store_no(&e)),
        };
        let condstore = self.condstore;
        let rev2 = self.rev2;
        let Some(sel) = self.sel.as_mut() else {
            return Ok(bad("No mailbox selected"));
        };
        let mut changed = std::collections::HashSet::new();
        for ch in outcome.updated {
            if let Some(uid) = sel.apply_own_change(ch) {
                changed.insert(uid);
            }
        }
        let mut lines = Vec::new();
        // RFC 3501 §7.2.6: a new keyword is announced before a FETCH response shows it.
        let end = sel.msgs.len();
        if let Some((flags, permanent)) = sel.announce_keywords(&changed, end) {
            lines.push(flags);
            lines.push(permanent);
        }
        for &i in &idx {
            let Some(m) = sel.msgs.get(i) else { continue };
            if outcome.failed.contains(&m.uid) {
                continue;
            }
            // RFC 7162 §3.1.3: with UNCHANGEDSINCE, changed messages are reported even if silent.
            let report = !silent || (unchanged_since.is_some() && changed.contains(&m.uid));
            if !report {
                continue;
            }
            let flags = flags_string(&m.flags, m.recent && !rev2);
            lines.push(
                Data::FlagsUpdate {
                    seq: i + 1,
                    // RFC 7162 §3.1, §3.2.4: with CONDSTORE (or QRESYNC) on, every FETCH names
                    // the UID.
                    uid: (uid || condstore).then_some(m.uid),
                    flags: &flags,
                    modseq: condstore.then_some(m.modseq),
                }
                .render(),
            );
        }
        let failed: Vec<u32> = if uid {
            outcome.failed.clone()
        } else {
            outcome
                .failed
                .iter()
                .filter_map(|&u| sel.seq_of(u).map(|s| s as u32))
                .collect()
        };
        for l in lines {
            self.untagged(&l);
        }
        if !failed.is_empty() {
            return Ok(ok_code(
                Code::Modified(set_string(failed)),
                "Conditional STORE failed for some messages",
            ));
        }
        Ok(ok("STORE completed"))
    }

    /// RFC 9051 §6.4.7 COPY / RFC 6851 §3 MOVE
    pub(crate) async fn copy(
        &mut self,
        uid: bool,
        set: SeqSet,
        raw: &[u8],
        is_move: bool,
    ) -> SResult<Reply> {
        let idx = match self.resolve(uid, &set) {
            Ok(i) => i,
            Err(r) => return Ok(r),
        };
        let dest = match self.mailbox_in(raw) {
            Ok(n) => n,
            Err(r) => return Ok(r),
        };
        let Some(sel) = self.sel.as_ref() else {
            return Ok(bad("No mailbox selected"));
        };
        if is_move && sel.readonly {
            return Ok(no_code(Code::ReadOnly, "Mailbox is read-only"));
        }
        let what = if is_move { "MOVE" } else { "COPY" };
        if idx.is_empty() {
            return Ok(ok(format!("{what} completed (no messages)")));
        }
        let uids = sel.uid_set(&idx);
        let name = sel.name.clone();
        let account = self.account().to_string();
        let r = if is_move {
            self.srv
                .store
                .move_messages(&account, &name, uids, &dest)
                .await
        } else {
            self.srv.store.copy(&account, &name, uids, &dest).await
        };
        let outcome = match r {
            Ok(o) => o,
            Err(StoreError::MailboxNotFound(_)) => {
                return Ok(no_code(
                    Code::TryCreate,
                    "Destination mailbox does not exist",
                ))
            }
            Err(e) => return Ok(store_no(&e)),
        };
        // RFC 4315 §3 COPYUID; RFC 6851 §4.3: for MOVE in an untagged OK before the expunges.
        let code = (!outcome.mapping.is_empty()).then(|| Code::CopyUid {
            uidvalidity: outcome.uidvalidity,
            from: uid_list(outcome.mapping.iter().map(|m| m.0)),
            to: uid_list(outcome.mapping.iter().map(|m| m.1)),
        });
        if is_move {
            if let Some(code) = code {
                self.data(Data::Ok(code, "Moved"));
            }
            let mut gone: Vec<u32> = outcome.mapping.iter().map(|m| m.0).collect();
            gone.sort_unstable();
            self.report_expunges()?;
            self.remove_and_report(&gone);
            return Ok(ok(format!("{what} completed")));
        }
        Ok(match code {
            Some(code) => ok_code(code, format!("{what} completed")),
            None => ok(format!("{what} completed")),
        })
    }
}

/// RFC 4315 uid-set preserving the order of the mapping (ranges only where consecutive).
fn uid_list(uids: impl Iterator<Item = u32>) -> String {
    crate::selected::ordered_set_string(uids)
}
