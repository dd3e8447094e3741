//! The driver's side of [`Step::Lookup`] and [`Step::Check`]: asks the directory and runs the
//! checks the session asks for, until it wants I/O again. Kept apart from the I/O code of
//! `server.rs`.

use postern_directory::Directory;

use crate::check::Context;
use crate::server::SmtpServer;
use crate::session::{Answer, Lookup, Outcome, Session, Step};

/// Answers the session's lookups and checks, starting with `step`, until it asks for
/// something else (a reply, TLS, AUTH, data).
pub(crate) async fn settle(server: &SmtpServer, session: &mut Session, mut step: Step) -> Step {
    loop {
        step = match step {
            Step::Lookup(l) => {
                let answer = lookup(&*server.directory, &l).await;
                session.answer(answer)
            }
            Step::Check(stage) => {
                let verdict = server.checks.stage(&stage, &Context::of(session)).await;
                session.checked(verdict)
            }
            other => return other,
        };
    }
}

/// Runs the DATA checks when the session asks for them; other outcomes pass through.
pub(crate) async fn data_outcome(
    server: &SmtpServer,
    session: &mut Session,
    outcome: Outcome,
) -> Outcome {
    match outcome {
        Outcome::Check(envelope, mut message, id) => {
            let verdict = server
                .checks
                .data(&Context::of(session), &envelope, &mut message)
                .await;
            session.data_checked(verdict, envelope, message, id)
        }
        other => other,
    }
}

/// Answers one [`Lookup`] from the directory (async: no runtime thread blocks).
pub async fn lookup(directory: &dyn Directory, lookup: &Lookup) -> Answer {
    match lookup {
        Lookup::Resolve(address) => {
            Answer::Resolution(directory.resolve(address).await.map_err(|e| e.to_string()))
        }
        Lookup::Expand(address) => {
            Answer::Resolution(directory.expand(address).await.map_err(|e| e.to_string()))
        }
        Lookup::PostmasterDomain(host) => {
            Answer::Domain(match directory.is_local_domain(host).await {
                Ok(true) => host.clone(),
                _ => directory
                    .domains()
                    .await
                    .ok()
                    .and_then(|d| d.into_iter().next())
                    .map_or_else(|| host.clone(), |d| d.name),
            })
        }
    }
}
