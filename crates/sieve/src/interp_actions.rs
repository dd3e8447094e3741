//! The interpreter's side of editheader, vacation and enotify: arguments expanded and
//! checked, the `ext` helpers called, the resulting actions recorded.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::ext;
use crate::interp::{Run, Scope};
use crate::program::{Index, Keys, MatchSpec, NotifyCmd, VacationCmd};
use crate::{Action, Notify, RuntimeError, Vacation};

type Result<T> = std::result::Result<T, RuntimeError>;

impl Run<'_> {
    /// RFC 5293 §4: adds a field at the top (or the end with `:last`). Adding Received or
    /// Auto-Submitted is allowed (RFC 5293 §7 protects them from deletion; Pigeonhole agrees).
    pub(crate) fn add_header(&mut self, name: &str, value: &str, last: bool) -> Result<()> {
        if !ext::editheader::valid_name(name) {
            return Err(self.error(format!(
                "addheader: specified field name '{name}' is invalid"
            )));
        }
        if value.len() > crate::checks::MAX_HEADER_VALUE_BYTES {
            return Err(self.error(format!(
                "addheader action: the specified header value is too large ({} bytes)",
                value.len()
            )));
        }
        let edited = ext::editheader::add_header(self.message(), name, value, last);
        self.edited = Some(Arc::from(edited));
        self.body_cache.clear();
        Ok(())
    }

    /// RFC 5293 §5: deletes the occurrences of a field, all or the `:index`ed one, whose value
    /// matches one of the patterns (all when there are none).
    pub(crate) fn delete_header(
        &mut self,
        name: &str,
        index: Option<Index>,
        spec: &MatchSpec,
        keys: Option<&Keys>,
        scope: &mut Scope,
    ) -> Result<()> {
        if !ext::editheader::valid_name(name) {
            return Err(self.error(format!(
                "deleteheader: specified field name '{name}' is invalid"
            )));
        }
        // RFC 5293 §7: Received and Auto-Submitted are never deleted (Pigeonhole warns and
        // goes on).
        if ext::editheader::is_protected(name) {
            return Ok(());
        }
        let index = index.map(|i| (i.n, i.last));
        // Which values match is decided here, before the edit, with the test machinery.
        let mut deleted = Vec::new();
        if let Some(keys) = keys {
            for value in crate::message::raw_values(self.message(), name) {
                if self.matches(scope, spec, std::slice::from_ref(&value), keys)? {
                    deleted.push(value);
                }
            }
        }
        let keep = |value: &str| keys.is_some() && !deleted.iter().any(|d| d == value.trim());
        let edited = ext::editheader::delete_header(self.message(), name, index, &keep);
        if edited.as_slice() != self.message() {
            self.edited = Some(Arc::from(edited));
            self.body_cache.clear();
        }
        Ok(())
    }

    /// RFC 5230 §4: a reply is recorded only when every rule of §4.5–§4.6 and RFC 3834 allows
    /// it and none was sent to this sender under this handle within the period.
    pub(crate) fn vacation(&mut self, v: &VacationCmd, scope: &Scope) -> Result<()> {
        if self.vacation_line != 0 {
            return Err(self.error(format!(
                "duplicate vacation action not allowed (previously triggered one was here: line {})",
                self.vacation_line
            )));
        }
        self.vacation_line = self.line;
        let subject = v.subject.as_ref().map(|s| self.expand(s, scope));
        let from = v.from.as_ref().map(|s| self.expand(s, scope));
        let reason = self.expand(&v.reason, scope);
        let mut addresses = self.ctx.user_addresses.clone();
        addresses.extend(self.expand_all(&v.addresses, scope));
        let handle = match &v.handle {
            Some(h) => self.expand(h, scope),
            None => default_handle(subject.as_deref(), from.as_deref(), v.mime, &reason),
        };
        // RFC 5230 §4.1 / RFC 6131 §2: the site's default and bounds (Pigeonhole's defaults
        // in `Limits::default`: 7 days when not given, at least 1 day, no maximum).
        let period = self.ctx.limits.vacation_period(v.period);
        if ext::vacation::check(self.message(), &self.ctx.envelope, &addresses).is_err() {
            return Ok(());
        }
        let sender = self.ctx.envelope.from.clone();
        if self.host.vacation_replied(&handle, &sender, period) {
            return Ok(());
        }
        self.push(Action::Vacation(Vacation {
            to: sender,
            from,
            subject,
            reason,
            mime: v.mime,
            handle,
            period,
        }))
    }

    /// RFC 5435 §3: a notification through a valid method.
    pub(crate) fn notify(&mut self, n: &NotifyCmd, scope: &Scope) -> Result<()> {
        let method = self.expand(&n.method, scope);
        if let Err(e) = ext::mailto::valid_method(&method) {
            return Err(self.error(format!("notify: invalid method '{method}': {e}")));
        }
        let importance = match n.importance.as_ref().map(|i| self.expand(i, scope)) {
            None => 2,
            Some(i) => match i.as_str() {
                "1" => 1,
                "2" => 2,
                "3" => 3,
                _ => return Err(self.error(format!("notify: invalid importance '{i}'"))),
            },
        };
        let notify = Notify {
            method,
            from: n.from.as_ref().map(|f| self.expand(f, scope)),
            importance,
            options: self.expand_all(&n.options, scope),
            message: n.message.as_ref().map(|m| self.expand(m, scope)),
        };
        // RFC 5435 §3.6: the same notification twice is sent once.
        if self
            .actions
            .iter()
            .any(|a| matches!(a, Action::Notify(o) if o.method == notify.method))
        {
            return Ok(());
        }
        self.push(Action::Notify(notify))
    }

    /// RFC 5435 §5: `valid_notify_method`.
    pub(crate) fn valid_notify_method(&self, uri: &str) -> bool {
        ext::mailto::valid_method(uri).is_ok()
    }

    /// RFC 5435 §6: `notify_method_capability`.
    pub(crate) fn notify_capability(&self, uri: &str, capability: &str) -> Option<String> {
        ext::mailto::capability(uri, capability)
    }
}

/// RFC 5230 §4.2: without `:handle`, replies are tracked under a handle derived from the
/// arguments, so changing the reply text starts a new period.
pub(crate) fn default_handle(
    subject: Option<&str>,
    from: Option<&str>,
    mime: bool,
    reason: &str,
) -> String {
    let mut hash = Sha256::new();
    for part in [
        subject.unwrap_or(""),
        from.unwrap_or(""),
        if mime { "mime" } else { "" },
        reason,
    ] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    hash.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}
