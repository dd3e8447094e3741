//! APPEND (RFC 9051 §6.3.12, RFC 3502 MULTIAPPEND-style lists, RFC 4315 APPENDUID,
//! RFC 7889 APPENDLIMIT, RFC 3516 binary literals).

use postern_store::{Flags, StoreError};

use crate::parser::AppendMessage;
use crate::response::{bad, no_code, ok_code, store_no, Code, Reply};
use crate::selected::set_string;
use crate::session::Session;

impl Session {
    /// RFC 9051 §6.3.12 APPEND
    pub(crate) async fn append(&mut self, raw: &[u8], messages: Vec<AppendMessage>) -> Reply {
        let name = match self.mailbox_in(raw) {
            Ok(n) => n,
            Err(r) => return r,
        };
        let account = self.account().to_string();
        let total: u64 = messages.iter().map(|m| m.data.len() as u64).sum();
        if let Some(refusal) = self.refuse_over_quota(total).await {
            return refusal;
        }
        let mut uids = Vec::new();
        let mut uidvalidity = 0;
        for m in messages {
            if m.data.len() as u64 > self.srv.limits.append_limit {
                return no_code(Code::TooBig, "Message exceeds APPENDLIMIT");
            }
            if m.data.is_empty() {
                return bad("Empty message");
            }
            let names: Vec<&String> = m
                .flags
                .iter()
                .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                .collect();
            let flags = match Flags::from_names(names) {
                Ok(f) => f,
                Err(e) => return bad(e.to_string()),
            };
            match self
                .srv
                .store
                .append(&account, &name, m.data, flags, m.date)
                .await
            {
                Ok(o) => {
                    uidvalidity = o.uidvalidity;
                    uids.push(o.uid);
                }
                Err(StoreError::MailboxNotFound(_)) => {
                    return no_code(Code::TryCreate, "Mailbox does not exist")
                }
                Err(e) => return store_no(&e),
            }
        }
        ok_code(
            Code::AppendUid {
                uidvalidity,
                uids: set_string(uids),
            },
            "APPEND completed",
        )
    }
}
