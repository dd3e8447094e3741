//! Retrieval from remote POP3/IMAP mailboxes, the binary's side (the protocol side is the
//! `postern-fetch` crate): the [`LocalInbox`] fetched mail is delivered through, the schedule
//! inside `serve` ([`schedule`]), and the `postern fetch` commands ([`cli`]).
//!
//! Accounts come from two places: `postern fetch add` (kept in `data_dir/fetch.db`, password
//! encrypted under `data_dir/fetch.key`) and `[[fetch.account]]` tables (id `config:NAME`,
//! password in a private file). Both share the state and status in `fetch.db`. A CLI run and
//! `serve` never fetch one account at once: each run holds `flock` on
//! `data_dir/fetch-locks/<id>.lock`.

pub(crate) mod cli;
mod inbox;
mod multidrop;
pub(crate) mod schedule;

pub(crate) use inbox::LocalInbox;

use postern_config::{Config, Fetch, FetchAccountConfig, FetchEnvelope, FetchFolders};
use postern_fetch::db::SqliteFetchDb;
use postern_fetch::{
    Accounts, Connector, EnvelopeRule, FetchAccount, FetchError, FetchOptions, Folders, Origin,
    Progress, RemoteUrl, Run, RunReport, Secret,
};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// What a run of any account needs: the configuration, local delivery, the fetch database.
pub(crate) struct Engine {
    /// The configuration the accounts of the file come from.
    pub(crate) config: Arc<Config>,
    /// Local delivery.
    pub(crate) inbox: LocalInbox,
    /// State, CLI accounts and every account's status.
    pub(crate) db: Arc<SqliteFetchDb>,
}

/// The `FetchAccount` of a `[[fetch.account]]` table (id `config:NAME`).
pub(crate) fn config_account(
    a: &FetchAccountConfig,
    defaults: &Fetch,
) -> Result<FetchAccount, FetchError> {
    let url = RemoteUrl::parse(&a.url)
        .map_err(|e| FetchError::config(format!("fetch.account ({}).url: {e}", a.name)))?;
    let folders = match &a.folders {
        FetchFolders::Keyword(k) if k == "all" => Folders::All,
        FetchFolders::Keyword(_) => Folders::Inbox,
        FetchFolders::Named(list) => Folders::Named(list.clone()),
    };
    let envelope = match &a.envelope {
        FetchEnvelope::Keyword(k) if k == "multidrop" => EnvelopeRule::default_multidrop(),
        FetchEnvelope::Keyword(_) => EnvelopeRule::Owner,
        FetchEnvelope::Headers(h) => EnvelopeRule::Multidrop { headers: h.clone() },
    };
    Ok(FetchAccount {
        id: format!("config:{}", a.name),
        local: a.local.clone(),
        url,
        options: FetchOptions {
            keep: a.keep,
            only_unseen: a.only_unseen,
            mark_seen: a.mark_seen,
            size_limit: a.size_limit,
            rate_limit: a.rate_limit,
            folders,
            envelope,
            interval: Duration::from_secs(a.interval_secs.unwrap_or(defaults.interval_secs)),
            idle: a.idle,
            apop: a.apop,
            allow_plaintext: a.allow_plaintext,
            ca_file: a.ca_file.clone(),
        },
        origin: Origin::Config,
    })
}

/// Accounts of the configuration file that cannot be used: (id, why).
pub(crate) type Broken = Vec<(String, FetchError)>;

/// Every account: those of the configuration file, then those of `postern fetch add`. An
/// account of the file that cannot be used is reported in `broken` (id, error) and left out.
pub(crate) fn all_accounts(
    config: &Config,
    db: &dyn Accounts,
) -> Result<(Vec<FetchAccount>, Broken), FetchError> {
    let mut out = Vec::new();
    let mut broken = Vec::new();
    for a in &config.fetch.account {
        match config_account(a, &config.fetch) {
            Ok(account) => out.push(account),
            Err(e) => broken.push((format!("config:{}", a.name), e)),
        }
    }
    out.extend(db.list(None)?);
    Ok((out, broken))
}

/// `serve` starts only if every `[[fetch.account]]` belongs to a local account.
pub(crate) async fn check_owners(
    config: &Config,
    directory: &dyn postern_directory::Directory,
) -> anyhow::Result<()> {
    for a in &config.fetch.account {
        if directory.account(&a.local).await?.is_none() {
            anyhow::bail!(
                "fetch.account ({}).local: {} is not a local account (postern user add creates it)",
                a.name,
                a.local
            );
        }
    }
    Ok(())
}

/// The remote password of an account: its private file (configuration accounts, read anew at
/// each run) or the fetch database.
pub(crate) fn password(
    config: &Config,
    db: &dyn Accounts,
    account: &FetchAccount,
) -> Result<Secret, FetchError> {
    match account.origin {
        Origin::Cli => db.password(&account.id),
        Origin::Config => {
            let name = account.id.strip_prefix("config:").unwrap_or(&account.id);
            let entry = config
                .fetch
                .account
                .iter()
                .find(|a| a.name == name)
                .ok_or_else(|| {
                    FetchError::config(format!("{}: no longer in the configuration", account.id))
                })?;
            read_password_file(&entry.password_file)
        }
    }
}

/// A password file: private (no group or other permission), its first line the password.
fn read_password_file(path: &Path) -> Result<Secret, FetchError> {
    use std::os::unix::fs::MetadataExt;
    let text =
        std::fs::read_to_string(path).and_then(|t| std::fs::metadata(path).map(|m| (t, m.mode())));
    let (text, mode) = text.map_err(|e| {
        FetchError::config(format!(
            "password_file {}: cannot read it: {e}",
            path.display()
        ))
    })?;
    if mode & 0o077 != 0 {
        return Err(FetchError::config(format!(
            "password_file {} can be read by other users (mode {:o}): chmod 600 it",
            path.display(),
            mode & 0o777
        )));
    }
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(FetchError::config(format!(
            "password_file {} is empty",
            path.display()
        )));
    }
    Ok(Secret::new(password))
}

/// The advisory lock of one account's runs (`flock` on `data_dir/fetch-locks/<id>.lock`),
/// released when dropped (and by the kernel when the process dies).
pub(crate) struct AccountLock {
    _file: File,
}

fn lock_path(data_dir: &Path, id: &str) -> PathBuf {
    let name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    data_dir.join("fetch-locks").join(format!("{name}.lock"))
}

/// Takes the lock of account `id`: `Ok(None)` when another process (or task) holds it and
/// `wait` is false.
pub(crate) fn lock_account(
    data_dir: &Path,
    id: &str,
    wait: bool,
) -> std::io::Result<Option<AccountLock>> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = lock_path(data_dir, id);
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)?;
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(Some(AccountLock { _file: file }));
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// One run of one account (the caller holds its lock): password, TLS settings, one pass
/// over its folders, and the status recorded.
pub(crate) async fn run_account(
    engine: &Engine,
    account: &FetchAccount,
    progress: &dyn Progress,
    cancel: CancellationToken,
) -> Result<RunReport, FetchError> {
    let outcome = run_unrecorded(engine, account, progress, cancel).await;
    record(engine, &account.id, outcome.as_ref()).await;
    outcome
}

async fn run_unrecorded(
    engine: &Engine,
    account: &FetchAccount,
    progress: &dyn Progress,
    cancel: CancellationToken,
) -> Result<RunReport, FetchError> {
    let (password, connector) = prepare(engine, account).await?;
    let run = Run {
        account,
        password: &password,
        connector: &connector,
        state: engine.db.as_ref(),
        inbox: &engine.inbox,
        progress,
        cancel,
    };
    postern_fetch::run_once(&run).await
}

/// The password and the connector of an account.
pub(crate) async fn prepare(
    engine: &Engine,
    account: &FetchAccount,
) -> Result<(Secret, Connector), FetchError> {
    let db = engine.db.clone();
    let config = engine.config.clone();
    let acc = account.clone();
    let password = tokio::task::spawn_blocking(move || password(&config, db.as_ref(), &acc))
        .await
        .map_err(|e| FetchError::local(format!("reading the password: {e}")))??;
    let connector = Connector::new(account.options.ca_file.as_deref())?;
    Ok((password, connector))
}

/// Records the end of a run in the account's status (a failure to record is logged: the run's
/// own outcome matters more).
pub(crate) async fn record(engine: &Engine, id: &str, outcome: Result<&RunReport, &FetchError>) {
    let db = engine.db.clone();
    let id = id.to_string();
    let outcome: Result<RunReport, FetchError> = outcome.cloned().map_err(Clone::clone);
    let done = tokio::task::spawn_blocking(move || {
        db.record_run(&id, SystemTime::now(), outcome.as_ref())
    })
    .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("fetch: cannot record the run's status: {e}"),
        Err(e) => tracing::warn!("fetch: cannot record the run's status: {e}"),
    }
}

/// One line for a person: what a run did.
pub(crate) fn summary(r: &RunReport) -> String {
    format!(
        "fetched {} ({} bytes), {} duplicates, {} too big, {} refused, {} deleted",
        r.fetched, r.bytes, r.duplicates, r.too_big, r.refused, r.deleted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_accounts_get_their_options() {
        let config = Config::from_toml(
            r#"
            [fetch]
            interval_secs = 120
            [[fetch.account]]
            name = "old"
            local = "a@example.org"
            url = "imap://a@imap.example:1143"
            password_file = "/nonexistent"
            folders = "all"
            envelope = "multidrop"
            keep = false
            "#,
            postern_config::Source::Defaults,
        )
        .unwrap();
        let a = config_account(&config.fetch.account[0], &config.fetch).unwrap();
        assert_eq!(a.id, "config:old");
        assert_eq!(a.url.port, 1143);
        assert_eq!(a.options.folders, Folders::All);
        assert_eq!(a.options.envelope, EnvelopeRule::default_multidrop());
        assert_eq!(a.options.interval, Duration::from_secs(120));
        assert!(!a.options.keep && a.options.idle);
    }

    #[test]
    fn password_files_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_password_file(&p).unwrap_err();
        assert!(e.message.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_password_file(&p).unwrap().expose(), "s3cret");
    }

    #[test]
    fn one_lock_holder_per_account() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_account(dir.path(), "config:a/b", false)
            .unwrap()
            .unwrap();
        assert!(lock_path(dir.path(), "config:a/b").ends_with("config_a_b.lock"));
        assert!(lock_account(dir.path(), "config:a/b", false)
            .unwrap()
            .is_none());
        assert!(lock_account(dir.path(), "7", false).unwrap().is_some());
        drop(held);
        assert!(lock_account(dir.path(), "config:a/b", false)
            .unwrap()
            .is_some());
    }
}
