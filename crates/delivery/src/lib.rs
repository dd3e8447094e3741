//! Local delivery: one call that takes a message and an envelope recipient and puts the message
//! in the right mailbox — alias and catch-all expansion, plus-addressing, loop detection, quota,
//! duplicate suppression, and the `Return-Path:` / `Delivered-To:` trace headers. The queue
//! runner, the `deliver` LDA command and fetch all use it. With a [`SieveSetup`], the account's
//! Sieve scripts decide where the message goes ([`sieve`]). With a [`Notifier`], every message
//! stored is announced to the new-mail hooks ([`notify`]).

mod alias_targets;
mod headers;
mod junk;
pub mod notify;
pub mod sieve;

pub use alias_targets::AliasTargets;
pub use notify::{NewMail, Notifier};
/// The compiled-script cache a [`SieveSetup`] holds (re-exported for the wiring).
pub use postern_sieve::ScriptCache;
pub use sieve::srs::{Srs, SrsDirectory};
pub use sieve::tracker::{FileTracker, TrackKind, Tracker};
pub use sieve::SieveSetup;

use headers::{has_delivered_to, trace_headers};
use postern_directory::{Address, Destination, Directory, Resolution};
use postern_mail::{EnhancedCode, Status};
use postern_spool::Outcome;
use postern_store::{Store, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What the queue knows of a recipient beyond its address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvelopeInfo {
    /// The original recipient (RFC 3461 ORCPT, `rfc822;` prefix removed), when it differs.
    pub orig_rcpt: Option<String>,
    /// The account that submitted the message (SMTP AUTH), if any.
    pub auth: Option<String>,
    /// The message has the REQUIRETLS flag (RFC 8689): what Sieve redirects keep it.
    pub requiretls: bool,
}

/// The local delivery agent.
pub struct LocalDelivery {
    directory: Arc<dyn Directory>,
    store: Arc<dyn Store>,
    sieve: Option<SieveSetup>,
    notifier: Option<Arc<dyn Notifier>>,
    alias_targets: AliasTargets,
}

impl LocalDelivery {
    /// Delivery that resolves recipients in `directory` and stores into `store`.
    pub fn new(directory: Arc<dyn Directory>, store: Arc<dyn Store>) -> LocalDelivery {
        LocalDelivery {
            directory,
            store,
            sieve: None,
            notifier: None,
            alias_targets: AliasTargets::default(),
        }
    }

    /// Whether aliases(5) `|command` and `/file` targets are performed, and how
    /// (`[aliases]`); by default they fail permanently.
    pub fn with_alias_targets(mut self, settings: AliasTargets) -> LocalDelivery {
        self.alias_targets = settings;
        self
    }

    /// Runs the accounts' Sieve scripts at delivery (unless `[sieve] enabled` is false).
    pub fn with_sieve(mut self, setup: SieveSetup) -> LocalDelivery {
        self.sieve = Some(setup);
        self
    }

    /// Tells `notifier` of every message stored (INBOX deliveries, Sieve keeps and fileintos).
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> LocalDelivery {
        self.notifier = Some(notifier);
        self
    }

    /// Delivers `message` from `sender` (`None` = `<>`) to the local address `rcpt`. `key`
    /// identifies the message (its queue id): delivering it again to a mailbox that has it is a
    /// no-op, so a retry after a crash never stores a second copy.
    ///
    /// An address that is an account (possibly with a `+detail`) is delivered to that account's
    /// INBOX, unless an account in `already` has the message (several addresses, one mailbox).
    /// An alias or catch-all is not delivered itself: its final destinations come back as
    /// `forward` addresses, which the queue delivers as recipients of their own, so each
    /// mailbox gets its own status, retry and bounce.
    pub async fn deliver(
        &self,
        sender: Option<&str>,
        rcpt: &str,
        message: &[u8],
        key: &str,
        already: &BTreeSet<String>,
    ) -> Outcome {
        self.deliver_with(
            sender,
            rcpt,
            message,
            key,
            already,
            &EnvelopeInfo::default(),
        )
        .await
    }

    /// [`LocalDelivery::deliver`] with what the queue knows beyond the address, for Sieve's
    /// `envelope` test (RFC 5228 §5.4 "to" with `:orig`, RFC 5228 §5.4 "auth").
    pub async fn deliver_with(
        &self,
        sender: Option<&str>,
        rcpt: &str,
        message: &[u8],
        key: &str,
        already: &BTreeSet<String>,
        info: &EnvelopeInfo,
    ) -> Outcome {
        let address = match Address::parse(rcpt) {
            Ok(a) => a,
            Err(e) => {
                return Outcome::Failed(Status::new(
                    EnhancedCode::new(5, 1, 3),
                    format!("<{rcpt}>: bad address: {e}"),
                ))
            }
        };
        let destinations = match self.directory.resolve(&address).await {
            Ok(Resolution::Deliver(d)) => d,
            Ok(Resolution::NotFound) => {
                return Outcome::Failed(Status::new(
                    EnhancedCode::new(5, 1, 1),
                    format!("<{address}>: no such user here"),
                ))
            }
            Ok(Resolution::NotLocal) => {
                return Outcome::Failed(Status::new(
                    EnhancedCode::new(5, 1, 2),
                    format!("<{address}>: the domain is no longer local"),
                ))
            }
            Err(e) if is_alias_limit(&e) => {
                return Outcome::Failed(Status::new(
                    EnhancedCode::new(5, 3, 0),
                    format!("<{address}>: {e}"),
                ))
            }
            Err(e) => {
                return Outcome::Deferred(Status::new(
                    EnhancedCode::new(4, 3, 0),
                    format!("directory unavailable: {e}"),
                ))
            }
        };

        match self.direct_account(&address, &destinations) {
            Some(account) if already.contains(&account) => Outcome::Delivered {
                note: Status::with_text(
                    EnhancedCode::SUCCESS,
                    format!("duplicate: {account} already has this message"),
                ),
                accounts: Vec::new(),
                forward: Vec::new(),
            },
            Some(account) => {
                self.to_mailbox(sender, &address, &account, message, key, info)
                    .await
            }
            None => {
                let performed = match self
                    .alias_programs(sender, &address, &destinations, message, key, info)
                    .await
                {
                    Ok(p) => p,
                    Err(failure) => return failure,
                };
                let forward: Vec<String> = destinations
                    .iter()
                    .filter(|d| matches!(d, Destination::Local { .. } | Destination::Remote(_)))
                    .map(|d| self.destination_address(d))
                    .collect();
                let mut note = format!("expanded to {} destination(s)", destinations.len());
                for p in performed {
                    note.push_str("; ");
                    note.push_str(&p);
                }
                Outcome::Delivered {
                    note: Status::with_text(EnhancedCode::SUCCESS, note),
                    accounts: Vec::new(),
                    forward,
                }
            }
        }
    }

    /// Performs the aliases(5) command and file targets among `destinations`, in order
    /// ([`alias_targets`]). The first temporary failure defers the whole alias (so nothing is
    /// forwarded twice); otherwise the first permanent failure fails it.
    async fn alias_programs(
        &self,
        sender: Option<&str>,
        address: &Address,
        destinations: &[Destination],
        message: &[u8],
        key: &str,
        info: &EnvelopeInfo,
    ) -> Result<Vec<String>, Outcome> {
        let recipient = address.to_string();
        let extension = self
            .directory
            .subaddress_separator()
            .and_then(|sep| address.split_detail(sep))
            .map(|(_, detail)| detail.to_string());
        let mut done = Vec::new();
        let mut permanent = None;
        for d in destinations {
            let (alias, result) = match d {
                Destination::Command { alias, command } => {
                    let job = alias_targets::Job {
                        sender,
                        recipient: &recipient,
                        alias,
                        original: info.orig_rcpt.as_deref(),
                        extension: extension.as_deref(),
                        queue_id: key,
                    };
                    let r = alias_targets::run_command(&self.alias_targets, command, &job, message)
                        .await;
                    (alias, r)
                }
                Destination::File { alias, path } => {
                    let job = alias_targets::Job {
                        sender,
                        recipient: &recipient,
                        alias,
                        original: info.orig_rcpt.as_deref(),
                        extension: extension.as_deref(),
                        queue_id: key,
                    };
                    let r =
                        alias_targets::append_file(&self.alias_targets, path, &job, message).await;
                    (alias, r)
                }
                Destination::Local { .. } | Destination::Remote(_) => continue,
            };
            match result {
                Ok(what) => {
                    tracing::info!(queue_id = key, alias = %alias, "{what}");
                    done.push(what);
                }
                Err(o @ Outcome::Deferred(_)) => return Err(o),
                Err(o) => {
                    if permanent.is_none() {
                        permanent = Some(o);
                    }
                }
            }
        }
        match permanent {
            Some(o) => Err(o),
            None => Ok(done),
        }
    }

    /// RFC 5429 §2.1-§2.2: whether the recipient's scripts reject this message, decided before
    /// the SMTP `250` so the refusal can be a `550` in the dialogue instead of a DSN later.
    /// Only looks (nothing is stored, queued or recorded); `Some(reason)` when the sequence
    /// rejects and keeps no copy. `None` whenever in doubt: delivery then decides as usual.
    pub async fn sieve_rejects(
        &self,
        sender: Option<&str>,
        rcpt: &str,
        message: &[u8],
    ) -> Option<String> {
        let setup = self.sieve.as_ref().filter(|s| s.config.enabled)?;
        let address = Address::parse(rcpt).ok()?;
        let Ok(Resolution::Deliver(destinations)) = self.directory.resolve(&address).await else {
            return None;
        };
        let account = self.direct_account(&address, &destinations)?;
        let delivered_to = address.to_string();
        let recipient = sieve::Recipient {
            account: &account,
            address: &delivered_to,
            sender,
            orig_to: None,
            auth: None,
            requiretls: false,
        };
        let delimiter = self.directory.subaddress_separator();
        sieve::rejects(setup, &self.store, delimiter, &recipient, message).await
    }

    /// The account when `address` reaches exactly one account that is the address itself
    /// (possibly with a detail), rather than through an alias or catch-all.
    fn direct_account(&self, address: &Address, destinations: &[Destination]) -> Option<String> {
        let [Destination::Local { account, .. }] = destinations else {
            return None;
        };
        let base = match self
            .directory
            .subaddress_separator()
            .and_then(|sep| address.split_detail(sep))
        {
            Some((user, _)) => format!("{user}@{}", address.domain()),
            None => address.to_string(),
        };
        (*account == address.to_string() || *account == base).then(|| account.clone())
    }

    /// The address a destination is delivered to as a recipient of its own (the alias's detail
    /// carried over, RFC 5233).
    fn destination_address(&self, d: &Destination) -> String {
        match d {
            Destination::Local {
                account,
                detail: Some(detail),
            } => match (
                account.rsplit_once('@'),
                self.directory.subaddress_separator(),
            ) {
                (Some((user, domain)), Some(sep)) => format!("{user}{sep}{detail}@{domain}"),
                _ => account.clone(),
            },
            Destination::Local { account, .. } => account.clone(),
            Destination::Remote(a) => a.clone(),
            // Performed at the alias itself, never forwarded (see `alias_programs`).
            Destination::Command { alias, .. } | Destination::File { alias, .. } => alias.clone(),
        }
    }

    async fn to_mailbox(
        &self,
        sender: Option<&str>,
        address: &Address,
        account: &str,
        message: &[u8],
        key: &str,
        info: &EnvelopeInfo,
    ) -> Outcome {
        let delivered_to = address.to_string();
        if has_delivered_to(message, &delivered_to) {
            // RFC 5321 §6.3: a message that already passed through this mailbox is looping.
            return Outcome::Failed(Status::new(
                EnhancedCode::new(5, 4, 6),
                format!("<{delivered_to}>: mail forwarding loop"),
            ));
        }
        if let Some(failure) = self.over_quota(account, message.len() as u64).await {
            return failure;
        }
        if let Some(setup) = self.sieve.as_ref().filter(|s| s.config.enabled) {
            if let Err(e) = self.store.ensure_account(account).await {
                return Outcome::Deferred(Status::new(
                    EnhancedCode::new(4, 2, 0),
                    format!("<{delivered_to}>: mailbox unavailable: {e}"),
                ));
            }
            let rcpt = sieve::Recipient {
                account,
                address: &delivered_to,
                sender,
                orig_to: info.orig_rcpt.as_deref(),
                auth: info.auth.as_deref(),
                requiretls: info.requiretls,
            };
            let delimiter = self.directory.subaddress_separator();
            let filtered = sieve::filter(setup, &self.store, delimiter, &rcpt, message).await;
            return sieve::perform(
                setup,
                &self.store,
                &self.directory,
                &rcpt,
                message,
                key,
                filtered,
                self.notifier.as_ref(),
            )
            .await;
        }
        let mut content = trace_headers(sender, &delivered_to);
        content.extend_from_slice(message);
        let size = content.len() as u64;
        let mut mailbox = String::from("INBOX");
        let stored = async {
            self.store.ensure_account(account).await?;
            if junk::is_junk(message) {
                mailbox = self.junk_folder(account).await?;
            }
            self.store.deliver(account, &mailbox, content, key).await
        }
        .await;
        if let Ok(a) = &stored {
            let stored = notify::Stored {
                account,
                mailbox: &mailbox,
                uid: a.uid,
                sender,
                size,
                message,
            };
            notify::announce(self.notifier.as_ref(), &self.store, stored).await;
        }
        match stored {
            Ok(a) => Outcome::Delivered {
                note: Status::with_text(
                    EnhancedCode::SUCCESS,
                    format!("stored in {account} {mailbox} as UID {}", a.uid),
                ),
                accounts: vec![account.to_string()],
                forward: Vec::new(),
            },
            Err(StoreError::MessageTooLarge(n)) => Outcome::Failed(Status::new(
                EnhancedCode::new(5, 3, 4),
                format!("<{delivered_to}>: message too large for the mailbox ({n} bytes)"),
            )),
            Err(e) if e.is_client_error() => Outcome::Failed(Status::new(
                EnhancedCode::new(5, 2, 0),
                format!("<{delivered_to}>: cannot store: {e}"),
            )),
            Err(e) => Outcome::Deferred(Status::new(
                EnhancedCode::new(4, 2, 0),
                format!("<{delivered_to}>: mailbox unavailable: {e}"),
            )),
        }
    }

    /// The `\\Junk` mailbox of `account` for a message the verdict marked junk; INBOX when it
    /// cannot be found or made (a refused name: never lose the message over a folder).
    async fn junk_folder(&self, account: &str) -> Result<String, StoreError> {
        match junk::junk_mailbox(&self.store, account).await {
            Ok(name) => Ok(name),
            Err(e) if e.is_client_error() => {
                tracing::warn!(account, "junk: no Junk folder ({e}); stored in INBOX");
                Ok("INBOX".into())
            }
            Err(e) => Err(e),
        }
    }

    /// RFC 3463 5.2.2 when the account has a quota the message would exceed.
    async fn over_quota(&self, account: &str, size: u64) -> Option<Outcome> {
        let quota = match self.directory.account(account).await {
            Ok(Some(a)) => a.quota_bytes?,
            Ok(None) => {
                return Some(Outcome::Failed(Status::new(
                    EnhancedCode::new(5, 1, 1),
                    format!("<{account}>: no such user here"),
                )))
            }
            Err(e) => {
                return Some(Outcome::Deferred(Status::new(
                    EnhancedCode::new(4, 3, 0),
                    format!("directory unavailable: {e}"),
                )))
            }
        };
        match self.store.quota_usage(account).await {
            Ok(usage) if usage.bytes.saturating_add(size) > quota => {
                Some(Outcome::Failed(Status::new(
                    EnhancedCode::new(5, 2, 2),
                    format!(
                        "<{account}>: mailbox full ({} of {} bytes used)",
                        usage.bytes, quota
                    ),
                )))
            }
            Ok(_) => None,
            Err(e) => Some(Outcome::Deferred(Status::new(
                EnhancedCode::new(4, 2, 0),
                format!("<{account}>: mailbox unavailable: {e}"),
            ))),
        }
    }
}

fn is_alias_limit(e: &postern_directory::DirectoryError) -> bool {
    matches!(
        e,
        postern_directory::DirectoryError::AliasTooDeep { .. }
            | postern_directory::DirectoryError::AliasTooLarge { .. }
    )
}

#[cfg(test)]
mod tests;
