//! The interpreter's side of the extensions whose message work lives in `ext`: body, date,
//! duplicate. Each method turns compiled arguments into the `ext` call and its result into
//! values to match or marks to record.

use std::sync::Arc;

use crate::ext;
use crate::interp::{Run, Scope};
use crate::program::{DuplicateId, Transform, Value, ZoneArg};
use crate::DuplicateMark;

/// RFC 7352 §3.3 leaves the periods to the implementation: Pigeonhole's defaults are 12 hours
/// without `:seconds` (`sieve_duplicate_default_period`) and at most 2 days
/// (`sieve_duplicate_max_period`, which its sieve-test reports when exceeded).
const DUPLICATE_DEFAULT_PERIOD: u64 = 12 * 3600;
const DUPLICATE_MAX_PERIOD: u64 = 2 * 86_400;

impl Run<'_> {
    /// RFC 5173 §5: the texts the body test matches against. Extracting them parses the
    /// MIME structure, so each transform's result is kept for the run (until an edit).
    pub(crate) fn body_texts(&mut self, transform: &Transform, scope: &Scope) -> Arc<Vec<String>> {
        let transform = match transform {
            Transform::Raw => ext::body::BodyTransform::Raw,
            Transform::Text => ext::body::BodyTransform::Text,
            Transform::Content(types) => {
                ext::body::BodyTransform::Content(self.expand_all(types, scope))
            }
        };
        if let Some((_, texts)) = self.body_cache.iter().find(|(t, _)| *t == transform) {
            return Arc::clone(texts);
        }
        let texts = Arc::new(ext::body::extract(self.message(), &transform));
        self.body_cache.push((transform, Arc::clone(&texts)));
        texts
    }

    fn zone(&self, zone: &ZoneArg) -> ext::date::Zone {
        match zone {
            ZoneArg::Local => ext::date::Zone::Local(self.ctx.zone_offset_minutes),
            ZoneArg::Original => ext::date::Zone::Original,
            ZoneArg::Fixed(m) => ext::date::Zone::Fixed(*m),
        }
    }

    /// RFC 5260 §4: one date-part of a header field's date.
    pub(crate) fn date_part(&self, value: &str, part: &str, zone: &ZoneArg) -> Option<String> {
        ext::date::header_part(value, part, &self.zone(zone))
    }

    /// RFC 5260 §5: one date-part of now.
    pub(crate) fn current_date_part(&self, part: &str, zone: &ZoneArg) -> Option<String> {
        ext::date::current_part(
            self.ctx.now,
            self.ctx.zone_offset_minutes,
            part,
            &self.zone(zone),
        )
    }

    /// RFC 7352 §3: true when this id was seen under this handle within the period. The mark
    /// is recorded (to be stored after delivery) unless it was seen and `:last` is not given
    /// (§3.3: only `:last` refreshes an existing mark's time).
    pub(crate) fn duplicate(
        &mut self,
        handle: Option<&Value>,
        id: &DuplicateId,
        period: Option<u64>,
        last: bool,
        scope: &Scope,
    ) -> bool {
        let handle = handle.map(|h| self.expand(h, scope)).unwrap_or_default();
        let id = match id {
            DuplicateId::MessageId => crate::message::raw_values(self.message(), "message-id")
                .into_iter()
                .next(),
            DuplicateId::Header(name) => {
                let name = self.expand(name, scope);
                crate::message::header_values(self.message(), &name)
                    .into_iter()
                    .next()
            }
            DuplicateId::UniqueId(v) => Some(self.expand(v, scope)),
        };
        // §3.1: with no id to check, the test is false and nothing is recorded.
        let Some(id) = id.map(|i| i.trim().to_string()).filter(|i| !i.is_empty()) else {
            return false;
        };
        let period = period
            .unwrap_or(DUPLICATE_DEFAULT_PERIOD)
            .min(DUPLICATE_MAX_PERIOD);
        // §3: ids met earlier in this same run are not duplicates; every test with the same
        // arguments gives the same answer, in included scripts too.
        let seen = self.host.duplicate_seen(&handle, &id, period);
        if !seen || last {
            self.duplicate_marks
                .retain(|m| !(m.handle == handle && m.id == id));
            self.duplicate_marks
                .push(DuplicateMark { handle, id, period });
        }
        seen
    }
}
