//! The verdict: the last check, it adds up every score the checks before it found. At or above
//! `[policy] reject_score` the message is refused (`550 5.7.1` with the reasons); at or above
//! `junk_score` it is marked `X-Postern-Verdict: junk; score=...; reasons=...`, which local
//! delivery files into the account's `Junk` folder unless its Sieve script decides otherwise.
//! Incoming `X-Postern-Verdict` and `X-Postern-Score` fields are always removed: only ours
//! count.

use super::header;
use async_trait::async_trait;
use postern_config::{AuthPolicy, Network};
use postern_mail::EnhancedCode;
use postern_smtp::{Check, Context, SessionFindings, Verdict};
use postern_spool::Envelope;

/// The header field that marks a junk message (read by local delivery).
pub const VERDICT_FIELD: &str = "X-Postern-Verdict";
/// The header field with the total score.
pub const SCORE_FIELD: &str = "X-Postern-Score";

/// The verdict check (put it last).
pub struct VerdictCheck {
    enabled: bool,
    junk_score: f64,
    reject_score: f64,
    trusted: Vec<Network>,
}

impl VerdictCheck {
    /// The verdict of `policy`; `trusted` is `[smtp] trusted_networks`.
    pub fn new(policy: &AuthPolicy, trusted: Vec<Network>) -> VerdictCheck {
        VerdictCheck {
            enabled: policy.enabled,
            junk_score: policy.junk_score,
            reject_score: policy.reject_score,
            trusted,
        }
    }
}

/// `spf=fail(+3.0), dmarc=fail(+2.5)`: the non-zero scores, largest first.
fn reasons(f: &SessionFindings) -> String {
    let mut scores: Vec<_> = f.scores().filter(|s| s.points != 0.0).collect();
    scores.sort_by(|a, b| b.points.total_cmp(&a.points));
    scores
        .iter()
        .map(|s| {
            let reason: String = s
                .reason
                .chars()
                .filter(|c| !matches!(c, ';' | ',' | '\r' | '\n'))
                .collect();
            format!("{reason}({:+.1})", s.points)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl Check for VerdictCheck {
    fn name(&self) -> &str {
        "verdict"
    }

    async fn data(&self, ctx: &Context, _envelope: &Envelope, _message: &[u8]) -> Verdict {
        if !super::checked(self.enabled, &self.trusted, ctx) {
            return Verdict::Accept;
        }
        let (total, why) = ctx.with_findings(|f| (f.total(), reasons(f)));
        if total >= self.reject_score {
            return Verdict::reject(
                550,
                EnhancedCode::new(5, 7, 1),
                &format!("message refused as spam (score {total:.1}: {why})"),
            );
        }
        Verdict::Accept
    }

    async fn edit(&self, ctx: &Context, _envelope: &Envelope, message: &mut Vec<u8>) {
        header::remove_fields(message, |name, _| {
            name.eq_ignore_ascii_case(VERDICT_FIELD) || name.eq_ignore_ascii_case(SCORE_FIELD)
        });
        if !super::checked(self.enabled, &self.trusted, ctx) {
            return;
        }
        let (total, why) = ctx.with_findings(|f| (f.total(), reasons(f)));
        if total >= self.junk_score {
            header::prepend(
                message,
                &format!("{VERDICT_FIELD}: junk; score={total:.1}; reasons={why}"),
            );
        }
        header::prepend(message, &format!("{SCORE_FIELD}: {total:.1}"));
    }
}
