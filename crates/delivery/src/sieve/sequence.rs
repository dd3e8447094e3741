//! The script sequence run for one recipient, with the semantics Pigeonhole documents for
//! `sieve_before` / `sieve_after`: global before scripts, the vacation script, the user's
//! active script, global after scripts. The next script runs only when the previous one ended
//! in a keep (implicit or explicit); actions accumulate; the last script run decides the
//! implicit keep. A script that fails to load, compile or run ends the sequence with a keep
//! into INBOX: nothing is lost.

use super::host::DeliveryHost;
use postern_sieve::{Action, Context, DuplicateMark};
use std::sync::Arc;

/// One script of the sequence: its name for the log, and its source (or why it could not be
/// read).
pub(crate) struct SequenceScript {
    pub(crate) name: String,
    pub(crate) source: Result<String, String>,
}

/// The implicit keep as the sequence leaves it (RFC 5228 §2.10.2, RFC 5232 §3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ImplicitKeep {
    pub(crate) flags: Vec<String>,
    pub(crate) edited: Option<Arc<[u8]>>,
}

/// What the whole sequence asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Filtered {
    pub(crate) actions: Vec<Action>,
    /// `Some` when the implicit keep is in force.
    pub(crate) implicit_keep: Option<ImplicitKeep>,
    pub(crate) duplicate_marks: Vec<DuplicateMark>,
    /// The first failure (already logged), if any.
    pub(crate) error: Option<String>,
}

impl Filtered {
    /// No script at all: the implicit keep, no flags.
    pub(crate) fn keep() -> Filtered {
        Filtered {
            implicit_keep: Some(ImplicitKeep::default()),
            ..Filtered::default()
        }
    }
}

/// Runs the sequence (blocking: call it on a blocking thread).
pub(crate) fn run(
    scripts: &[SequenceScript],
    message: &[u8],
    context: &Context,
    host: &mut DeliveryHost,
) -> Filtered {
    let mut result = Filtered::keep();
    let account = host.account.clone();
    for (i, script) in scripts.iter().enumerate() {
        let failure = |what: String| {
            // The log, not a message in INBOX: a broken script would add one message per
            // delivery (a flood exactly when the user is away), and a global script's error is
            // the admin's business, not the user's. The admin sees the account and script.
            tracing::error!(account = %account, script = %script.name, "sieve: {what}; message kept in INBOX");
            what
        };
        let source = match &script.source {
            Ok(s) => s,
            Err(e) => {
                result.error = Some(failure(format!("cannot read the script: {e}")));
                result.implicit_keep = Some(ImplicitKeep::default());
                break;
            }
        };
        let compiled = match host.cache.get_or_compile(source) {
            Ok(c) => c,
            Err(e) => {
                result.error = Some(failure(format!("does not compile: {e}")));
                result.implicit_keep = Some(ImplicitKeep::default());
                break;
            }
        };
        let outcome = postern_sieve::execute(&compiled, message, context, host);
        if let Some(e) = outcome.error {
            result.error = Some(failure(format!(
                "run-time error at line {}: {}",
                e.line, e.message
            )));
            // RFC 5228 §2.10.6: the failed script's actions are dropped; its keep into
            // INBOX, no flags, replaces the implicit keep.
            result.implicit_keep = Some(ImplicitKeep::default());
            break;
        }
        let explicit_keep = outcome
            .actions
            .iter()
            .any(|a| matches!(a, Action::Keep { .. }));
        let last = i + 1 == scripts.len();
        let continues = !last && (outcome.implicit_keep || explicit_keep);
        let mut actions = outcome.actions;
        if continues {
            // The keep of a script that hands over to the next one is not an action of its
            // own: the next script decides where the message goes (Pigeonhole: "the next
            // script is only executed when an (implicit) keep action is executed").
            actions.retain(|a| !matches!(a, Action::Keep { .. }));
        }
        result.actions.extend(actions);
        result.duplicate_marks.extend(outcome.duplicate_marks);
        result.implicit_keep =
            (outcome.implicit_keep || (continues && explicit_keep)).then_some(ImplicitKeep {
                flags: outcome.implicit_keep_flags,
                edited: outcome.implicit_keep_edited,
            });
        if !continues {
            break;
        }
    }
    result
}
