//! `postern fetch add|list|remove|run`: the remote accounts of local accounts, managed and
//! fetched from the command line (while `serve` runs too: the state is shared through
//! `fetch.db`, and an account is fetched by one process at a time).

use super::{all_accounts, lock_account, run_account, summary, Engine, LocalInbox};
use crate::lmtp::LocalSink;
use anyhow::{bail, Context as _};
use async_trait::async_trait;
use postern_config::Config;
use postern_delivery::{LocalDelivery, Srs, SrsDirectory};
use postern_fetch::db::SqliteFetchDb;
use postern_fetch::{
    Accounts, Connector, Delivered, EnvelopeRule, ErrorKind, FetchAccount, FetchError,
    FetchOptions, FetchState, FetchedMessage, FolderState, Folders, Inbox, Origin, Progress,
    RemoteUrl, Run, RunReport, SeenMessage,
};
use postern_spool::Spool;
use std::collections::HashMap;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// `postern fetch ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum FetchCommand {
    /// Add a remote POP3/IMAP account to a local account (the password from standard input or
    /// a prompt, checked with one login, stored encrypted in data_dir)
    Add(AddArgs),
    /// List remote accounts (all, or one local account's) with their last success, last
    /// error and counts
    List {
        /// Only the remote accounts of this local account
        address: Option<String>,
    },
    /// Remove a remote account added with `fetch add` (its state goes too; its mail stays)
    Remove {
        /// The account's id, as `fetch list` shows it
        id: String,
    },
    /// Fetch now: every remote account, those of one local account, or one by id (exits
    /// non-zero if an account failed)
    Run {
        /// A local account's address, or a remote account's id
        target: Option<String>,
    },
}

/// Arguments of `postern fetch add`.
#[derive(Debug, clap::Args)]
pub(crate) struct AddArgs {
    /// The local account that gets the mail
    pub address: String,
    /// pop3s://user@host[:port], pop3://... (STLS), imaps://...[/folder], imap://... (STARTTLS)
    #[arg(long)]
    pub url: String,
    /// Leave messages on the server (the default)
    #[arg(long, conflicts_with = "delete")]
    pub keep: bool,
    /// Delete messages on the server once they are delivered here
    #[arg(long)]
    pub delete: bool,
    /// IMAP: fetch only messages without \Seen
    #[arg(long)]
    pub only_unseen: bool,
    /// IMAP: set \Seen on the server once a message is delivered
    #[arg(long)]
    pub mark_seen: bool,
    /// Leave messages larger than this many bytes on the server
    #[arg(long, value_name = "BYTES")]
    pub size_limit: Option<u64>,
    /// At most this many messages a minute
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// IMAP folders: `all`, or a comma-separated list (default: INBOX)
    #[arg(long, value_name = "all|A,B")]
    pub folders: Option<String>,
    /// Deliver to the local recipients named in these header fields (default
    /// Delivered-To,X-Original-To,Received), else to the account
    #[arg(long, value_name = "HEADERS", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub multidrop: Option<String>,
    /// Seconds between polls in serve (minimum 10; default [fetch] interval_secs)
    #[arg(long, value_name = "SECS")]
    pub interval: Option<u64>,
    /// IMAP: poll instead of waiting for new mail with IDLE
    #[arg(long)]
    pub no_idle: bool,
    /// POP3: do not use APOP even when the server offers it
    #[arg(long)]
    pub no_apop: bool,
    /// Log in without TLS when the server offers none
    #[arg(long)]
    pub allow_plaintext: bool,
    /// Trust the certificates in this PEM file too (a private CA, a self-signed server)
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Read the password from standard input (one line) even on a terminal
    #[arg(long)]
    pub password_stdin: bool,
    /// Store the account without trying to log in first
    #[arg(long)]
    pub no_check: bool,
}

/// Runs a `postern fetch` command.
pub(crate) fn run(config: &Config, cmd: FetchCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    match cmd {
        FetchCommand::Add(args) => runtime.block_on(add(config, args)),
        FetchCommand::List { address } => list(config, address.as_deref()),
        FetchCommand::Remove { id } => remove(config, &id),
        FetchCommand::Run { target } => runtime.block_on(fetch_now(config, target.as_deref())),
    }
}

/// The fetch database of the data directory (created on first use, like serve does).
pub(crate) fn open_db(config: &Config) -> anyhow::Result<SqliteFetchDb> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("data_dir: cannot create {}", config.data_dir.display()))?;
    SqliteFetchDb::open(&config.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "opening {}: {}",
            config.data_dir.join("fetch.db").display(),
            e.message
        )
    })
}

/// Local delivery as `postern deliver` sets it up: the directory, the store, the spool for
/// alias forwards, Sieve.
fn open_engine(config: &Config) -> anyhow::Result<(Engine, Arc<Spool>)> {
    let ctx = crate::admin::Context::open(config)?;
    let data_dir = &config.data_dir;
    let spool_dir = data_dir.join("spool");
    let spool = Arc::new(
        Spool::open(&spool_dir)
            .with_context(|| format!("opening the spool {}", spool_dir.display()))?,
    );
    let srs =
        Arc::new(Srs::load_or_create(&data_dir.join("srs.key")).context("reading the SRS key")?);
    let directory: Arc<dyn postern_directory::Directory> =
        Arc::new(SrsDirectory::new(Arc::new(ctx.directory), srs.clone()));
    let store = Arc::new(ctx.store);
    let sieve = crate::deliver::process_sieve(config, store.clone(), spool.clone(), srs, 64);
    let mut local = LocalDelivery::new(directory.clone(), store.clone())
        .with_sieve(sieve)
        .with_alias_targets(postern_delivery::AliasTargets::from_config(&config.aliases));
    if let Some(hub) = postern_notify::Hub::from_config(&config.notify)? {
        local = local.with_notifier(hub);
    }
    let inbox = LocalInbox::new(
        LocalSink::new(local, spool.clone()),
        store,
        directory,
        &config.hostname,
    );
    let engine = Engine {
        config: Arc::new(config.clone()),
        inbox,
        db: Arc::new(open_db(config)?),
    };
    Ok((engine, spool))
}

/// The password of `fetch add`: one line from standard input (`--password-stdin`, or
/// whenever it is not a terminal), else asked for twice at the terminal.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin && std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(password);
    }
    crate::secret::read_secret("remote password")
}

fn options(config: &Config, args: &AddArgs, url: &RemoteUrl) -> anyhow::Result<FetchOptions> {
    let is_pop3 = url.protocol == postern_fetch::Protocol::Pop3;
    let folders = match args.folders.as_deref() {
        None => Folders::Inbox,
        Some(f) if f.eq_ignore_ascii_case("all") => Folders::All,
        Some(f) if f.eq_ignore_ascii_case("inbox") => Folders::Inbox,
        Some(f) => {
            let list: Vec<String> = f.split(',').map(|s| s.trim().to_string()).collect();
            if list.iter().any(String::is_empty) {
                bail!("--folders {f:?}: an empty folder name");
            }
            Folders::Named(list)
        }
    };
    if is_pop3 && folders != Folders::Inbox {
        bail!("--folders: a POP3 account has only its INBOX");
    }
    if is_pop3 && (args.only_unseen || args.mark_seen) {
        bail!("--only-unseen and --mark-seen are for IMAP accounts (POP3 has no \\Seen flag)");
    }
    let envelope = match args.multidrop.as_deref() {
        None => EnvelopeRule::Owner,
        Some("") => EnvelopeRule::default_multidrop(),
        Some(h) => {
            let headers: Vec<String> = h.split(',').map(|s| s.trim().to_string()).collect();
            if headers
                .iter()
                .any(|h| h.is_empty() || !h.bytes().all(|b| b.is_ascii_graphic() && b != b':'))
            {
                bail!(
                    "--multidrop={h:?}: give header field names, like Delivered-To,X-Original-To"
                );
            }
            EnvelopeRule::Multidrop { headers }
        }
    };
    let interval = args.interval.unwrap_or(config.fetch.interval_secs);
    if interval < postern_config::FETCH_MIN_INTERVAL_SECS {
        bail!(
            "--interval {interval}: poll at most every {} seconds",
            postern_config::FETCH_MIN_INTERVAL_SECS
        );
    }
    if args.size_limit == Some(0) || args.rate_limit == Some(0) {
        bail!("--size-limit and --rate-limit must be greater than zero");
    }
    if let Some(ca) = &args.ca_file {
        std::fs::File::open(ca).with_context(|| format!("--ca-file {}", ca.display()))?;
    }
    Ok(FetchOptions {
        keep: !args.delete,
        only_unseen: args.only_unseen,
        mark_seen: args.mark_seen,
        size_limit: args.size_limit,
        rate_limit: args.rate_limit,
        folders,
        envelope,
        interval: Duration::from_secs(interval),
        idle: !args.no_idle,
        apop: !args.no_apop,
        allow_plaintext: args.allow_plaintext,
        ca_file: args.ca_file.clone(),
    })
}

async fn add(config: &Config, args: AddArgs) -> anyhow::Result<()> {
    let url = RemoteUrl::parse(&args.url).map_err(|e| anyhow::anyhow!("--url: {e}"))?;
    let options = options(config, &args, &url)?;
    let ctx = crate::admin::Context::open(config)?;
    let local = args.address.trim().to_lowercase();
    let directory: &dyn postern_directory::Directory = &ctx.directory;
    if directory.account(&local).await?.is_none() {
        bail!("{local} is not a local account (postern user list shows them)");
    }
    let password = postern_fetch::Secret::new(read_password(args.password_stdin)?);
    let account = FetchAccount {
        id: String::new(),
        local,
        url,
        options,
        origin: Origin::Cli,
    };
    if !args.no_check {
        check_login(&account, &password).await.map_err(|e| {
            anyhow::anyhow!("{e} (nothing stored; --no-check stores the account without trying)")
        })?;
    }
    let db = open_db(config)?;
    let added = tokio::task::spawn_blocking(move || db.add(&account, &password)).await??;
    println!(
        "added {} for {}: {} ({})",
        added.id,
        added.local,
        added.url,
        describe_options(&added.options)
    );
    Ok(())
}

/// Logs in once, as a run would, and stops at the first message (nothing is delivered,
/// recorded or changed on the server).
async fn check_login(
    account: &FetchAccount,
    password: &postern_fetch::Secret,
) -> Result<(), FetchError> {
    const CHECKED: &str = "login checked";
    let connector = Connector::new(account.options.ca_file.as_deref())?;
    let mut probe = account.clone();
    probe.id = "login-check".into();
    // Only the login matters: no size limit, no pacing.
    probe.options.rate_limit = None;
    let run = Run {
        account: &probe,
        password,
        connector: &connector,
        state: &EmptyState,
        inbox: &StopAtFirst(CHECKED),
        progress: &postern_fetch::NoProgress,
        cancel: CancellationToken::new(),
    };
    match postern_fetch::run_once(&run).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::Local && e.message == CHECKED => Ok(()),
        Err(e) => Err(e),
    }
}

/// The inbox of a login check: stops the run at the first message.
struct StopAtFirst(&'static str);

#[async_trait]
impl Inbox for StopAtFirst {
    async fn deliver(&self, _message: FetchedMessage<'_>) -> Result<Delivered, FetchError> {
        Err(FetchError::local(self.0))
    }
}

/// The state of a login check: nothing fetched before, nothing kept.
struct EmptyState;

#[async_trait]
impl FetchState for EmptyState {
    async fn load(&self, _account_id: &str, _folder: &str) -> Result<FolderState, FetchError> {
        Ok(FolderState::default())
    }
    async fn record(&self, _: &str, _: &str, _: &[SeenMessage]) -> Result<(), FetchError> {
        Ok(())
    }
    async fn forget(&self, _: &str, _: &str, _: &[String]) -> Result<(), FetchError> {
        Ok(())
    }
    async fn replace(&self, _: &str, _: &str, _: &FolderState) -> Result<(), FetchError> {
        Ok(())
    }
    async fn drop_account(&self, _: &str) -> Result<(), FetchError> {
        Ok(())
    }
}

/// The options in short, for `fetch list` and `fetch add`.
fn describe_options(o: &FetchOptions) -> String {
    let mut out = vec![if o.keep { "keep" } else { "delete" }.to_string()];
    if o.only_unseen {
        out.push("only unseen".into());
    }
    if o.mark_seen {
        out.push("mark seen".into());
    }
    if let Some(n) = o.size_limit {
        out.push(format!("size limit {n}"));
    }
    if let Some(n) = o.rate_limit {
        out.push(format!("{n}/min"));
    }
    match &o.folders {
        Folders::Inbox => {}
        Folders::All => out.push("all folders".into()),
        Folders::Named(list) => out.push(format!("folders {}", list.join(","))),
    }
    if let EnvelopeRule::Multidrop { headers } = &o.envelope {
        out.push(format!("multidrop {}", headers.join(",")));
    }
    out.push(format!("every {} s", o.interval.as_secs()));
    if !o.idle {
        out.push("no idle".into());
    }
    if !o.apop {
        out.push("no apop".into());
    }
    if o.allow_plaintext {
        out.push("plaintext allowed".into());
    }
    if let Some(ca) = &o.ca_file {
        out.push(format!("ca {}", ca.display()));
    }
    out.join(", ")
}

fn when(t: Option<SystemTime>) -> String {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or("never".into(), |d| {
            postern_mail::date::rfc5322(i64::try_from(d.as_secs()).unwrap_or(0))
        })
}

fn list(config: &Config, address: Option<&str>) -> anyhow::Result<()> {
    let db = open_db(config)?;
    let (accounts, broken) = all_accounts(config, &db)?;
    let owner = address.map(|a| a.trim().to_lowercase());
    let mut shown = 0;
    for a in accounts
        .iter()
        .filter(|a| owner.as_deref().is_none_or(|o| a.local == o))
    {
        shown += 1;
        let status = db.status(&a.id)?;
        println!("{}  {}  {}", a.id, a.local, a.url);
        println!("    options: {}", describe_options(&a.options));
        println!(
            "    last success: {}; fetched {} messages ({} bytes) in all",
            when(status.last_success),
            status.total_fetched,
            status.total_bytes
        );
        match &status.last_error {
            Some(e) => println!(
                "    last error ({}, {} failure{} in a row): {e}",
                when(status.last_run),
                status.failures,
                if status.failures == 1 { "" } else { "s" }
            ),
            None => println!("    last error: none"),
        }
    }
    for (id, e) in &broken {
        println!("{id}  (not usable: {e})");
    }
    if shown == 0 && broken.is_empty() {
        match owner {
            Some(o) => println!("no remote accounts for {o}"),
            None => println!("no remote accounts (postern fetch add ADDRESS --url URL adds one)"),
        }
    }
    Ok(())
}

fn remove(config: &Config, id: &str) -> anyhow::Result<()> {
    if let Some(name) = id.strip_prefix("config:") {
        bail!(
            "{id} is defined in the configuration file ([[fetch.account]] name = {name:?}): remove it there"
        );
    }
    let db = open_db(config)?;
    // Preferably not while a run of it is going on; serve's IDLE watch of it holds the lock
    // for good, and stops within a minute of the removal.
    let start = std::time::Instant::now();
    let mut lock = lock_account(&config.data_dir, id, false)
        .with_context(|| format!("locking account {id}"))?;
    while lock.is_none() && start.elapsed() < LOCK_WAIT {
        std::thread::sleep(Duration::from_millis(200));
        lock = lock_account(&config.data_dir, id, false)
            .with_context(|| format!("locking account {id}"))?;
    }
    if !db.remove(id)? {
        bail!("there is no remote account {id} (postern fetch list shows them)");
    }
    if lock.is_none() {
        println!("removed {id} (serve, which is fetching it, stops within a minute)");
        return Ok(());
    }
    println!("removed {id}");
    Ok(())
}

/// A progress bar on a terminal (a log line every 10 s otherwise).
struct CliProgress {
    inner: Mutex<CliBar>,
}

struct CliBar {
    bar: Option<crate::transfer_cmd::Progress>,
    total: u64,
    done: u64,
    messages: u64,
}

impl Progress for CliProgress {
    fn folder(&self, _account: &FetchAccount, _folder: &str, new: u64, bytes: u64) {
        let mut p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if new == 0 {
            return;
        }
        p.total += bytes;
        let total = p.total;
        if let Some(bar) = &p.bar {
            bar.finish();
        }
        p.bar = Some(crate::transfer_cmd::Progress::new(total, "bytes"));
    }

    fn message(&self, _account: &FetchAccount, bytes: u64) {
        let mut p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        p.done += bytes;
        p.messages += 1;
        let (done, messages) = (p.done, p.messages);
        if let Some(bar) = p.bar.as_mut() {
            bar.update(done, messages);
        }
    }
}

impl CliProgress {
    fn new() -> CliProgress {
        CliProgress {
            inner: Mutex::new(CliBar {
                bar: None,
                total: 0,
                done: 0,
                messages: 0,
            }),
        }
    }

    fn finish(&self) {
        let p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = &p.bar {
            bar.finish();
        }
    }
}

/// How long `fetch run` waits for serve's run of an account to end.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Waits up to [`LOCK_WAIT`] for the lock of an account another process holds (serve's poll
/// ends soon; its IDLE watch does not).
async fn wait_for_lock(
    config: &Config,
    id: &str,
    cancel: &CancellationToken,
) -> anyhow::Result<Option<super::AccountLock>> {
    eprintln!("postern: {id}: serve (or another fetch run) is fetching it now; waiting");
    let start = std::time::Instant::now();
    while start.elapsed() < LOCK_WAIT && !cancel.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let data_dir = config.data_dir.clone();
        let id = id.to_string();
        if let Some(lock) =
            tokio::task::spawn_blocking(move || lock_account(&data_dir, &id, false)).await??
        {
            return Ok(Some(lock));
        }
    }
    Ok(None)
}

async fn fetch_now(config: &Config, target: Option<&str>) -> anyhow::Result<()> {
    let (engine, spool) = open_engine(config)?;
    let (accounts, broken) = all_accounts(config, engine.db.as_ref())?;
    let target = target.map(|t| t.trim().to_string());
    let chosen: Vec<&FetchAccount> = accounts
        .iter()
        .filter(|a| match &target {
            None => true,
            Some(t) => a.id == *t || a.local.eq_ignore_ascii_case(t),
        })
        .collect();
    let mut failed = 0;
    for (id, e) in &broken {
        if target.as_deref().is_none_or(|t| t == id) {
            eprintln!("postern: {id}: {e}");
            failed += 1;
        }
    }
    if chosen.is_empty() && failed == 0 {
        match target {
            Some(t) => bail!("no remote account is {t} or belongs to {t} (postern fetch list)"),
            None => bail!("no remote accounts (postern fetch add ADDRESS --url URL adds one)"),
        }
    }
    // Ctrl-C (or SIGTERM) stops between messages: what was delivered is recorded.
    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            eprintln!("postern: stopping after the message in progress");
            cancel.cancel();
        });
    }
    let mut totals: HashMap<&str, RunReport> = HashMap::new();
    for account in chosen {
        if cancel.is_cancelled() {
            break;
        }
        let data_dir = config.data_dir.clone();
        let id = account.id.clone();
        let lock =
            tokio::task::spawn_blocking(move || lock_account(&data_dir, &id, false)).await??;
        let _lock = match lock {
            Some(l) => l,
            None => match wait_for_lock(config, &account.id, &cancel).await? {
                Some(l) => l,
                None if cancel.is_cancelled() => break,
                None => {
                    println!(
                        "{} ({}): skipped: serve is fetching it (an IMAP account it watches \
                         with IDLE stays current by itself)",
                        account.id, account.url
                    );
                    continue;
                }
            },
        };
        let progress = CliProgress::new();
        let outcome = run_account(&engine, account, &progress, cancel.clone()).await;
        progress.finish();
        match outcome {
            Ok(report) => {
                println!("{} ({}): {}", account.id, account.url, summary(&report));
                totals.entry(&account.local).or_default().add(&report);
            }
            Err(e) => {
                println!("{} ({}): failed: {e}", account.id, account.url);
                failed += 1;
            }
        }
    }
    if engine.inbox.forwarded() {
        if let Err(e) = spool.request_wake() {
            tracing::warn!("cannot wake the queue runner: {e}");
        }
    }
    if failed > 0 {
        bail!(
            "{failed} remote account{} failed",
            if failed == 1 { "" } else { "s" }
        );
    }
    if cancel.is_cancelled() {
        bail!("interrupted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        cmd: FetchCommand,
    }

    fn add_args(extra: &[&str]) -> AddArgs {
        let mut argv = vec!["t", "add", "a@example.org", "--url", "imaps://u@h"];
        argv.extend_from_slice(extra);
        match T::try_parse_from(argv).unwrap().cmd {
            FetchCommand::Add(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn add_options_from_flags() {
        let config = Config::from_toml("", postern_config::Source::Defaults).unwrap();
        let url = RemoteUrl::parse("imaps://u@h").unwrap();
        let o = options(&config, &add_args(&[]), &url).unwrap();
        assert_eq!(o, FetchOptions::default());
        let o = options(
            &config,
            &add_args(&[
                "--delete",
                "--folders",
                "INBOX,Lists/rust",
                "--multidrop",
                "--interval",
                "60",
                "--no-idle",
            ]),
            &url,
        )
        .unwrap();
        assert!(!o.keep && !o.idle);
        assert_eq!(
            o.folders,
            Folders::Named(vec!["INBOX".into(), "Lists/rust".into()])
        );
        assert_eq!(o.envelope, EnvelopeRule::default_multidrop());
        let o = options(&config, &add_args(&["--multidrop=X-Envelope-To"]), &url).unwrap();
        assert_eq!(
            o.envelope,
            EnvelopeRule::Multidrop {
                headers: vec!["X-Envelope-To".into()]
            }
        );
        assert!(options(&config, &add_args(&["--interval", "5"]), &url).is_err());
        let pop = RemoteUrl::parse("pop3s://u@h").unwrap();
        assert!(options(&config, &add_args(&["--folders", "all"]), &pop).is_err());
        assert!(
            T::try_parse_from(["t", "add", "a@b.c", "--url", "x", "--keep", "--delete"]).is_err()
        );
    }

    #[test]
    fn options_in_short() {
        let o = FetchOptions {
            keep: false,
            ..FetchOptions::default()
        };
        assert_eq!(describe_options(&o), "delete, every 300 s");
    }
}
