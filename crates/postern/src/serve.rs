//! `postern serve`: open the data, bind every enabled listener, run until SIGTERM/SIGINT.

use crate::admin::Context as AdminContext;
use crate::{private_data, privileges, server_lock};
use anyhow::Context;
use postern_config::{Config, Service, Source};
use postern_delivery::{
    FileTracker, LocalDelivery, ScriptCache, SieveSetup, Srs, SrsDirectory, Tracker,
};
use postern_directory::{AuthThrottle, SqliteDirectory, ThrottleConfig};
use postern_imap::ImapServer;
use postern_net::CancellationToken;
use postern_net::{bind_service, BindPolicy, ConnectionLimiter, Live, Server, SessionHandler};
use postern_pop3::Pop3Server;
use postern_spool::{Outcome, QueueEntry, QueueRunner, Spool, Transport};
use postern_store::{ScriptStore, Store};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

pub(crate) fn run(config: Config) -> anyhow::Result<()> {
    config.check_files()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("postern")
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Started as root with [server] user: bind first, then become that user before any
    // mail or secret is opened, so everything is created by and for that user.
    let run_as = match &config.server.user {
        Some(user) if privileges::current_uid() == 0 => {
            Some(privileges::resolve(user, config.server.group.as_deref())?)
        }
        Some(user) => {
            tracing::info!(
                "server.user is {user:?} but postern was not started as root: it runs as {}",
                privileges::current_user_name()
            );
            None
        }
        None => None,
    };
    let data_dir = &config.data_dir;
    privileges::ensure_dir_for(data_dir, run_as.as_ref())?;

    // As root only what needs root: a configured key is often readable by root alone, and
    // ports below 1024. Everything in data_dir is touched after the drop, as its owner.
    let load_tls = || {
        postern_net::load_or_generate(
            config.tls.cert.as_deref(),
            config.tls.key.as_deref(),
            &config.generated_tls_dir(),
            &config.hostname,
        )
    };
    let configured_tls = match config.tls.cert {
        Some(_) => Some(load_tls()?),
        None => None,
    };
    let policy = BindPolicy {
        unprivileged_fallback: config.source == Source::Defaults,
    };
    let mut bound = Vec::new();
    for (service, addrs) in config.enabled_services() {
        for listener in bind_service(service, &addrs, policy).await? {
            bound.push((service, listener));
        }
    }
    // The LMTP Unix socket is bound like the ports (as root when started so), owned by the
    // server user.
    let lmtp_socket = crate::lmtp::bind_socket(&config, run_as.as_ref())?;
    match &run_as {
        Some(who) => {
            privileges::drop_to(who)?;
            tracing::info!(user = %who.user, uid = who.uid, gid = who.gid, "dropped root");
        }
        None if privileges::current_uid() == 0 => tracing::warn!(
            "running as root: set [server] user (e.g. \"postern\") so that serve drops root after binding"
        ),
        None => {}
    }

    private_data::refuse_unsafe(data_dir, privileges::current_uid())?;
    let _lock = server_lock::acquire(data_dir)?;
    let tls = match configured_tls {
        Some(tls) => tls,
        None => load_tls()?,
    };
    if tls.self_signed {
        tracing::info!(cert = %tls.cert_path.display(), "using the self-signed certificate");
    }

    // The directory and the store are opened (and created on first start) before any session
    // runs, so a data_dir problem stops the server with a clear message.
    let ctx = AdminContext::open(&config).with_context(|| {
        format!(
            "as user {}: is {} reachable and writable?",
            privileges::current_user_name(),
            data_dir.display()
        )
    })?;
    tracing::info!(
        hostname = %config.hostname,
        data_dir = %data_dir.display(),
        domains = ctx.directory.list_domains()?.len(),
        "starting postern {}",
        env!("CARGO_PKG_VERSION")
    );

    let limiter = ConnectionLimiter::new(
        config.limits.max_connections,
        config.limits.max_connections_per_ip,
    );
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server = Server::new(limiter, Some(tls))
        .with_session_threads(cores)
        .context("starting the session threads")?;
    let spool_dir = data_dir.join("spool");
    let spool = Arc::new(
        Spool::open(&spool_dir)
            .with_context(|| format!("opening the spool {}", spool_dir.display()))?,
    );
    // Sieve's secrets and memory live in the data directory like the others: the SRS key
    // (0600) and the per-account tracker (vacation replies, duplicate marks, side effects).
    let srs_key = data_dir.join("srs.key");
    let srs = Arc::new(
        Srs::load_or_create(&srs_key)
            .with_context(|| format!("reading or creating {}", srs_key.display()))?,
    );
    // The screens' state (greylist database, rate counters, access rules) outlives reloads.
    let screens = Arc::new(postern_policy::screens::Screens::open(&config)?);
    // [policy]: one resolver and cache for every session's SPF/DKIM/DMARC/ARC/iprev, and
    // the DMARC evaluations' writer (data_dir/dmarc.db), made once here.
    let authenticator = Arc::new(
        postern_policy::auth::Authenticator::new(&config.dns).map_err(anyhow::Error::msg)?,
    );
    let dmarc_records = postern_policy::auth::DmarcRecorder::start(data_dir)
        .map_err(anyhow::Error::msg)
        .context("opening the DMARC records")?;
    let shared = Shared {
        screens,
        authenticator,
        dmarc_records,
        sieve_tracker: Arc::new(FileTracker::new(data_dir.join("sieve-state"))),
        srs,
        config: Arc::new(config.clone()),
        directory: Arc::new(ctx.directory),
        store: Arc::new(ctx.store.clone()),
        scripts: Arc::new(ctx.store),
        spool,
        throttle: Arc::new(AuthThrottle::new(ThrottleConfig {
            account_limit: config.auth.max_failures,
            window: Duration::from_secs(config.auth.failure_window_secs),
            ..ThrottleConfig::default()
        })),
    };
    // IMAP, POP3 and ManageSieve register logged-in sessions here; `postern kick` ends them.
    let sessions = postern_net::Sessions::default();
    // The HTTPS listener's autoconfiguration names the ports really bound (port 0 resolved).
    let endpoints = postern_web::Endpoints::from_listeners(
        &config.hostname,
        &bound
            .iter()
            .map(|(service, l)| (*service, l.local_addr))
            .collect::<Vec<_>>(),
    );
    let handlers = Handlers::new(&shared, &sessions, endpoints);
    let control_stop = CancellationToken::new();
    crate::control::spawn(data_dir, sessions, control_stop.clone())?;
    // sendmail: data_dir/public/submit.sock and the maildrop (see crate::submit).
    crate::submit::server::spawn(
        shared.config.clone(),
        shared.spool.clone(),
        control_stop.clone(),
    )?;
    let listening = bound.len();
    for (service, listener) in bound {
        tracing::info!(
            "{service}: listening on {}{}",
            listener.local_addr,
            if service.implicit_tls() { " (TLS)" } else { "" }
        );
        server.spawn_live_listener(listener, handlers.for_service(service));
    }
    if let Some(bound) = lmtp_socket {
        crate::lmtp::spawn_socket(&server, &config, bound, handlers.lmtp.clone());
    }
    if listening == 0 {
        tracing::warn!("every service is disabled in [listen]; nothing to serve");
    }
    let queue_stop = CancellationToken::new();
    let router = Arc::new(Live::new(Arc::new(build_router(&config, &shared)?)));
    let queue = tokio::spawn(
        QueueRunner::new(
            shared.spool.clone(),
            // DMARC aggregate reports delivered to our domains are stored in dmarc.db.
            Arc::new(crate::dmarc_reports::ReportIntake {
                inner: LiveTransport(router.clone()),
                data_dir: data_dir.clone(),
                directory: shared.directory.clone(),
            }),
            crate::router::runner_settings(&config),
        )
        .run(queue_stop.clone()),
    );
    // [fetch]: remote POP3/IMAP accounts polled or watched (crate::fetch::schedule).
    let fetch_db = Arc::new(crate::fetch::cli::open_db(&config)?);
    crate::fetch::check_owners(&config, shared.directory.as_ref()).await?;
    let (fetch_engines, fetch_watch) =
        tokio::sync::watch::channel(Arc::new(fetch_engine(&config, &shared, &fetch_db)?));
    let fetch_stop = CancellationToken::new();
    let fetch = crate::fetch::schedule::spawn(fetch_watch, fetch_stop.clone());
    // [policy] dmarc_reports: the daily DMARC aggregate reports (RFC 7489 §7.2).
    let dmarc_stop = CancellationToken::new();
    let dmarc_job = config.policy.reports.enabled.then(|| {
        crate::dmarc_reports::spawn(
            shared.config.clone(),
            shared.directory.clone(),
            shared.spool.clone(),
            dmarc_stop.clone(),
        )
    });
    // [outbound] tls_reports: the daily TLS-RPT reports (RFC 8460).
    let tlsrpt_stop = CancellationToken::new();
    let tlsrpt_job = config.outbound.tls_reports.then(|| {
        crate::tls_reports::spawn(
            shared.config.clone(),
            shared.directory.clone(),
            shared.spool.clone(),
            tlsrpt_stop.clone(),
        )
    });
    tracing::info!("ready");

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("installing the SIGUSR1 handler")?;
    let mut usr2 = signal(SignalKind::user_defined2()).context("installing the SIGUSR2 handler")?;
    let mut running = config.clone();
    let which = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            _ = hup.recv() => match reload(&running, &server, &handlers, &shared, &router) {
                Ok(new) => {
                    match fetch_engine(&new, &shared, &fetch_db) {
                        Ok(engine) => { fetch_engines.send_replace(Arc::new(engine)); }
                        Err(e) => tracing::error!("SIGHUP: fetch keeps its running setup: {e:#}"),
                    }
                    running = new;
                    tracing::info!("SIGHUP: configuration, TLS certificate and DKIM keys reloaded");
                }
                // One line, so that grep finds the cause with the refusal.
                Err(e) => tracing::error!(
                    "SIGHUP: reload refused, the running configuration stays: {}",
                    crate::describe_error(&e).split_whitespace().collect::<Vec<_>>().join(" ")
                ),
            },
            _ = usr1.recv() => tracing::info!("SIGUSR1 ignored"),
            _ = usr2.recv() => tracing::info!("SIGUSR2 ignored"),
        }
    };
    tracing::info!(open = server.open_connections(), "{which}: shutting down");
    server
        .shutdown(Duration::from_secs(running.limits.shutdown_grace_secs))
        .await;
    // Sessions first (they may still be queueing mail), then the deliveries in flight.
    fetch_stop.cancel();
    let _ = fetch.await;
    control_stop.cancel();
    dmarc_stop.cancel();
    if let Some(job) = dmarc_job {
        let _ = job.await;
    }
    tlsrpt_stop.cancel();
    if let Some(job) = tlsrpt_job {
        let _ = job.await;
    }
    queue_stop.cancel();
    let _ = queue.await;
    tracing::info!("stopped");
    Ok(())
}

/// What every protocol server shares within one `serve` process.
pub(crate) struct Shared {
    pub config: Arc<Config>,
    pub directory: Arc<SqliteDirectory>,
    /// The mail store, as the backend-neutral trait the protocol servers use.
    pub store: Arc<dyn Store>,
    /// The accounts' Sieve scripts (the same store: scripts live with the account), for
    /// delivery and ManageSieve.
    pub scripts: Arc<dyn ScriptStore>,
    /// What Sieve delivery remembers between messages.
    pub sieve_tracker: Arc<dyn Tracker>,
    /// The sender rewriting of redirects to remote domains.
    pub srs: Arc<Srs>,
    /// The durable queue every accepted message goes to before its `250`.
    pub spool: Arc<Spool>,
    /// Authentication failures per account and client network, across all protocols.
    pub throttle: Arc<AuthThrottle>,
    /// The MX's screens (DNS lists, greylisting, rate limits, access tables).
    pub screens: Arc<postern_policy::screens::Screens>,
    /// The resolver and caches of the message authentication checks ([policy]).
    pub authenticator: Arc<postern_policy::auth::Authenticator>,
    /// Where DMARC evaluations are recorded (data_dir/dmarc.db).
    pub dmarc_records: postern_policy::auth::DmarcRecorder,
}

/// The session handler of each protocol, replaced for new sessions by a reload.
struct Handlers {
    smtp: Arc<Live<dyn SessionHandler>>,
    imap: Arc<Live<dyn SessionHandler>>,
    pop3: Arc<Live<dyn SessionHandler>>,
    managesieve: Arc<Live<dyn SessionHandler>>,
    /// LMTP, on `[listen] lmtp` and the `[lmtp] socket`.
    lmtp: Arc<Live<dyn SessionHandler>>,
    /// HTTPS (`[listen] https`): MTA-STS policy and client autoconfiguration.
    https: Arc<Live<dyn SessionHandler>>,
    /// Plain HTTP (`[listen] http`): redirects to HTTPS.
    http: Arc<Live<dyn SessionHandler>>,
    /// What the autoconfiguration documents announce (fixed: `[listen]` needs a restart).
    endpoints: postern_web::Endpoints,
    /// Logged-in sessions of every protocol, for `postern kick`.
    sessions: postern_net::Sessions,
    /// The current IMAP and POP3 servers: a reload derives the next ones from them, keeping
    /// their per-account session counts and maildrop locks.
    current: Mutex<(ImapServer, Pop3Server)>,
}

impl Handlers {
    fn new(
        shared: &Shared,
        sessions: &postern_net::Sessions,
        endpoints: postern_web::Endpoints,
    ) -> Handlers {
        let imap = ImapServer::new(
            shared.config.clone(),
            shared.directory.clone(),
            shared.store.clone(),
            shared.throttle.clone(),
        )
        .with_sessions(sessions.clone());
        let pop3 = Pop3Server::new(
            shared.config.clone(),
            shared.directory.clone(),
            shared.store.clone(),
            shared.throttle.clone(),
        )
        .with_sessions(sessions.clone());
        Handlers {
            smtp: Arc::new(Live::new(smtp_server(shared, &shared.config))),
            imap: Arc::new(Live::new(Arc::new(imap.clone()))),
            pop3: Arc::new(Live::new(Arc::new(pop3.clone()))),
            managesieve: Arc::new(Live::new(managesieve_server(
                shared,
                &shared.config,
                sessions,
            ))),
            lmtp: Arc::new(Live::new(lmtp_server(shared, &shared.config))),
            https: Arc::new(Live::new(web_server(shared, &shared.config, &endpoints))),
            http: Arc::new(Live::new(redirect_server(&shared.config, &endpoints))),
            endpoints,
            sessions: sessions.clone(),
            current: Mutex::new((imap, pop3)),
        }
    }

    fn for_service(&self, service: Service) -> Arc<Live<dyn SessionHandler>> {
        match service {
            Service::Smtp | Service::Submission | Service::Submissions => self.smtp.clone(),
            Service::Imap | Service::Imaps => self.imap.clone(),
            Service::Pop3 | Service::Pop3s => self.pop3.clone(),
            Service::ManageSieve => self.managesieve.clone(),
            Service::Lmtp => self.lmtp.clone(),
            Service::Https => self.https.clone(),
            Service::Http => self.http.clone(),
        }
    }

    /// New sessions of every protocol run with `config` from now on.
    fn reconfigure(&self, shared: &Shared, config: &Arc<Config>) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let imap = current.0.reconfigured(config.clone());
        let pop3 = current.1.reconfigured(config.clone());
        self.smtp.set(smtp_server(shared, config));
        self.imap.set(Arc::new(imap.clone()));
        self.pop3.set(Arc::new(pop3.clone()));
        self.managesieve
            .set(managesieve_server(shared, config, &self.sessions));
        self.lmtp.set(lmtp_server(shared, config));
        self.https.set(web_server(shared, config, &self.endpoints));
        self.http.set(redirect_server(config, &self.endpoints));
        *current = (imap, pop3);
    }
}

fn smtp_server(shared: &Shared, config: &Config) -> Arc<dyn SessionHandler> {
    let server = postern_smtp::SmtpServer::new(
        config,
        mail_directory(shared),
        shared.throttle.clone(),
        shared.spool.clone(),
    );
    let mut checks = postern_smtp::Checks::new();
    // Screens first: access tables and DNS lists (connect stage).
    for check in shared.screens.early(config) {
        checks = checks.with(check);
    }
    // [policy] message authentication: SPF, DKIM, DMARC, ARC, iprev.
    if config.policy.auth.enabled {
        checks = checks.with(Arc::new(postern_policy::auth::AuthCheck::new(
            shared.authenticator.clone(),
            &config.policy.auth,
            &config.hostname,
            config.smtp.trusted_networks.clone(),
            Some(shared.dmarc_records.clone()),
        )));
    }
    // Then greylisting and rate limits.
    for check in shared.screens.late(config) {
        checks = checks.with(check);
    }
    let server = match postern_policy::screens::Screens::pregreet(config) {
        Some((wait, loopback)) => server.with_pregreet(wait, loopback),
        None => server,
    };
    if config.sieve.enabled {
        let reject = crate::sieve_check::SieveReject {
            local: LocalDelivery::new(mail_directory(shared), shared.store.clone())
                .with_sieve(sieve_setup(config, shared)),
        };
        checks = checks.with(Arc::new(reject));
    }
    // [policy] verdict: LAST, it adds up every score found before it (and always strips
    // forged X-Postern-Verdict/X-Postern-Score fields, even with the checks off).
    checks = checks.with(Arc::new(postern_policy::auth::VerdictCheck::new(
        &config.policy.auth,
        config.smtp.trusted_networks.clone(),
    )));
    Arc::new(server.with_checks(checks))
}

/// LMTP: each recipient through local delivery with the queue's setup (aliases, Sieve, quota);
/// alias forwards into the spool.
fn lmtp_server(shared: &Shared, config: &Config) -> Arc<dyn SessionHandler> {
    // The router's local delivery was built from the same config first and refused it if the
    // hooks could not be set up, so this only fails if a hook's file changed in between.
    let local = local_delivery(config, shared).unwrap_or_else(|e| {
        tracing::warn!("lmtp: new-mail hooks not available: {e:#}");
        LocalDelivery::new(mail_directory(shared), shared.store.clone())
            .with_sieve(sieve_setup(config, shared))
            .with_alias_targets(postern_delivery::AliasTargets::from_config(&config.aliases))
    });
    crate::lmtp::server(
        config,
        mail_directory(shared),
        crate::lmtp::LocalSink::new(local, shared.spool.clone()),
    )
}

/// The HTTPS listener: the MTA-STS policy of `config` and autoconfiguration for `endpoints`.
fn web_server(
    shared: &Shared,
    config: &Config,
    endpoints: &postern_web::Endpoints,
) -> Arc<dyn SessionHandler> {
    Arc::new(postern_web::WebServer::new(
        config,
        shared.directory.clone(),
        endpoints.clone(),
    ))
}

/// The plain-HTTP listener: redirects to the HTTPS listener's port.
fn redirect_server(config: &Config, endpoints: &postern_web::Endpoints) -> Arc<dyn SessionHandler> {
    Arc::new(postern_web::WebServer::redirecting(
        postern_web::Router::new(),
        &config.hostname,
        endpoints.https.unwrap_or(Service::Https.standard_port()),
    ))
}

/// ManageSieve keeps no state across sessions: a reload simply starts a new server.
fn managesieve_server(
    shared: &Shared,
    config: &Arc<Config>,
    sessions: &postern_net::Sessions,
) -> Arc<dyn SessionHandler> {
    Arc::new(
        postern_managesieve::ManageSieveServer::new(
            config.clone(),
            shared.directory.clone(),
            shared.scripts.clone(),
            shared.throttle.clone(),
        )
        .with_sessions(sessions.clone()),
    )
}

fn build_router(config: &Config, shared: &Shared) -> anyhow::Result<crate::router::Router> {
    let local = local_delivery(config, shared)?;
    crate::router::build(config, local, shared.directory.clone())
}

/// Local delivery as the queue and LMTP run it: Sieve, `[aliases]` command and file targets,
/// and the `[notify]` new-mail hooks (built anew, secrets re-read, at each start and reload).
fn local_delivery(config: &Config, shared: &Shared) -> anyhow::Result<LocalDelivery> {
    let mut local = LocalDelivery::new(mail_directory(shared), shared.store.clone())
        .with_sieve(sieve_setup(config, shared))
        .with_alias_targets(postern_delivery::AliasTargets::from_config(&config.aliases));
    if let Some(hub) = postern_notify::Hub::from_config(&config.notify)? {
        local = local.with_notifier(hub);
    }
    Ok(local)
}

/// The directory recipients are resolved in (SMTP RCPT, local delivery): the accounts and
/// aliases, plus the SRS0 addresses of our redirects, so their bounces reach the sender.
fn mail_directory(shared: &Shared) -> Arc<dyn postern_directory::Directory> {
    Arc::new(SrsDirectory::new(
        shared.directory.clone(),
        shared.srs.clone(),
    ))
}

/// Sieve at delivery with `[sieve]` of `config` (a reload builds a new one, and with it a
/// new compiled-script cache under the new limits).
fn sieve_setup(config: &Config, shared: &Shared) -> SieveSetup {
    SieveSetup {
        scripts: shared.scripts.clone(),
        queue: shared.spool.clone(),
        tracker: shared.sieve_tracker.clone(),
        srs: shared.srs.clone(),
        config: config.sieve.clone(),
        separator: config.mail.hierarchy_separator,
        hostname: config.hostname.clone(),
        cache: Arc::new(ScriptCache::new(
            postern_delivery::sieve::limits(&config.sieve),
            1024,
        )),
    }
}

/// The queue's transport, replaced by a reload (new DKIM keys, routes, relay).
struct LiveTransport(Arc<Live<crate::router::Router>>);

#[async_trait::async_trait]
impl Transport for LiveTransport {
    async fn deliver(
        &self,
        entry: &QueueEntry,
        message: Arc<[u8]>,
        indices: &[usize],
    ) -> Vec<Outcome> {
        self.0.get().deliver(entry, message, indices).await
    }
}

/// SIGHUP: reads the configuration again (from where it was read at start), the TLS
/// certificate and key, and the DKIM keys; applies them to new connections and new
/// deliveries, or, if any of it fails, changes nothing.
fn reload(
    running: &Config,
    server: &Server,
    handlers: &Handlers,
    shared: &Shared,
    router: &Live<crate::router::Router>,
) -> anyhow::Result<Config> {
    let path = match &running.source {
        Source::File(p) => Some(p.as_path()),
        Source::Defaults => None,
    };
    let new = Config::load(path)?;
    new.check_files()?;
    let tls = postern_net::load_or_generate(
        new.tls.cert.as_deref(),
        new.tls.key.as_deref(),
        &new.generated_tls_dir(),
        &new.hostname,
    )
    .context("loading the TLS certificate (a key readable by root only cannot be re-read after the drop; make it readable by the server's group)")?;
    let next_router = build_router(&new, shared)?;
    // Everything is ready: nothing below can fail.
    for (what, changed) in [
        ("data_dir", new.data_dir != running.data_dir),
        (
            "[listen]",
            format!("{:?}", new.listen) != format!("{:?}", running.listen),
        ),
        (
            "[server]",
            format!("{:?}", new.server) != format!("{:?}", running.server),
        ),
        (
            "[limits]",
            format!("{:?}", new.limits) != format!("{:?}", running.limits),
        ),
        (
            "[auth] max_failures and failure_window_secs",
            (new.auth.max_failures, new.auth.failure_window_secs)
                != (running.auth.max_failures, running.auth.failure_window_secs),
        ),
        (
            "[lmtp] socket, socket_mode, socket_group and max_connections",
            (
                &new.lmtp.socket,
                new.lmtp.socket_mode,
                &new.lmtp.socket_group,
                new.lmtp.max_connections,
            ) != (
                &running.lmtp.socket,
                running.lmtp.socket_mode,
                &running.lmtp.socket_group,
                running.lmtp.max_connections,
            ),
        ),
        (
            "[queue]",
            format!("{:?}", new.queue) != format!("{:?}", running.queue),
        ),
    ] {
        if changed {
            tracing::warn!("{what} changed: it takes effect at the next restart");
        }
    }
    server.set_tls(tls);
    handlers.reconfigure(shared, &Arc::new(new.clone()));
    router.set(Arc::new(next_router));
    Ok(new)
}

/// Local delivery for fetched mail, as LMTP's (built anew at each reload, like the router's).
fn fetch_engine(
    config: &Config,
    shared: &Shared,
    db: &Arc<postern_fetch::db::SqliteFetchDb>,
) -> anyhow::Result<crate::fetch::Engine> {
    let sink = crate::lmtp::LocalSink::new(local_delivery(config, shared)?, shared.spool.clone());
    Ok(crate::fetch::Engine {
        config: Arc::new(config.clone()),
        inbox: crate::fetch::LocalInbox::new(
            sink,
            shared.store.clone(),
            mail_directory(shared),
            &config.hostname,
        ),
        db: db.clone(),
    })
}
