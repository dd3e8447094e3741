//! `postern serve`: open the data, bind every enabled listener, run until SIGTERM/SIGINT.

use crate::admin::Context as AdminContext;
use anyhow::Context;
use postern_config::{Config, Service, Source};
use postern_delivery::LocalDelivery;
use postern_directory::{AuthThrottle, Directory, ThrottleConfig};
use postern_net::CancellationToken;
use postern_net::{bind_service, BindPolicy, ConnectionLimiter, Server, SessionHandler};
use postern_spool::{QueueRunner, Spool};
use postern_store::MaildirStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

pub fn run(config: Config) -> anyhow::Result<()> {
    config.check_files()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("postern")
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // The directory and the store are opened (and created on first start) before any port is bound, so
    // a data_dir problem stops the server with a clear message instead of failing the first session.
    let ctx = AdminContext::open(&config)?;
    tracing::info!(
        hostname = %config.hostname,
        data_dir = %config.data_dir.display(),
        domains = ctx.directory.list_domains()?.len(),
        "starting postern {}",
        env!("CARGO_PKG_VERSION")
    );

    let tls = postern_net::load_or_generate(
        config.tls.cert.as_deref(),
        config.tls.key.as_deref(),
        &config.generated_tls_dir(),
        &config.hostname,
    )?;
    if tls.self_signed {
        tracing::info!(cert = %tls.cert_path.display(), "using the self-signed certificate");
    }

    let limiter = ConnectionLimiter::new(
        config.limits.max_connections,
        config.limits.max_connections_per_ip,
    );
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server = Server::new(limiter, Some(tls))
        .with_session_threads(cores)
        .context("starting the session threads")?;
    let policy = BindPolicy {
        unprivileged_fallback: config.source == Source::Defaults,
    };
    let spool_dir = config.data_dir.join("spool");
    let spool = Arc::new(
        Spool::open(&spool_dir)
            .with_context(|| format!("opening the spool {}", spool_dir.display()))?,
    );
    let shared = Shared {
        config: Arc::new(config.clone()),
        directory: Arc::new(ctx.directory),
        store: Arc::new(ctx.store),
        spool,
        throttle: Arc::new(AuthThrottle::new(ThrottleConfig {
            account_limit: config.auth.max_failures,
            window: Duration::from_secs(config.auth.failure_window_secs),
            ..ThrottleConfig::default()
        })),
    };
    let handlers = Handlers::new(&shared);
    let mut listening = 0;
    for (service, addrs) in config.enabled_services() {
        for bound in bind_service(service, &addrs, policy).await? {
            tracing::info!(
                "{service}: listening on {}{}",
                bound.local_addr,
                if service.implicit_tls() { " (TLS)" } else { "" }
            );
            server.spawn_listener(bound, handlers.for_service(service));
            listening += 1;
        }
    }
    if listening == 0 {
        tracing::warn!("every service is disabled in [listen]; nothing to serve");
    }
    let queue_stop = CancellationToken::new();
    let queue = tokio::spawn(
        QueueRunner::new(
            shared.spool.clone(),
            Arc::new(crate::router::build(
                &config,
                LocalDelivery::new(shared.directory.clone(), shared.store.clone()),
                shared.directory.clone(),
            )?),
            crate::router::runner_settings(&config),
        )
        .run(queue_stop.clone()),
    );
    tracing::info!("ready");

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let which = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(open = server.open_connections(), "{which}: shutting down");
    server
        .shutdown(Duration::from_secs(config.limits.shutdown_grace_secs))
        .await;
    // Sessions first (they may still be queueing mail), then the deliveries in flight.
    queue_stop.cancel();
    let _ = queue.await;
    tracing::info!("stopped");
    Ok(())
}

/// What every protocol server shares within one `serve` process.
pub struct Shared {
    pub config: Arc<Config>,
    pub directory: Arc<Directory>,
    pub store: Arc<MaildirStore>,
    /// The durable queue every accepted message goes to before its `250`.
    pub spool: Arc<Spool>,
    /// Authentication failures per account and client network, across all protocols.
    pub throttle: Arc<AuthThrottle>,
}

/// The session handler of each protocol.
struct Handlers {
    smtp: Arc<dyn SessionHandler>,
    imap: Arc<dyn SessionHandler>,
    pop3: Arc<dyn SessionHandler>,
}

impl Handlers {
    fn new(shared: &Shared) -> Handlers {
        Handlers {
            smtp: Arc::new(postern_smtp::SmtpServer::new(
                &shared.config,
                shared.directory.clone(),
                shared.throttle.clone(),
                shared.spool.clone(),
            )),
            imap: Arc::new(postern_imap::ImapServer::new(
                shared.config.clone(),
                shared.directory.clone(),
                shared.store.clone(),
                shared.throttle.clone(),
            )),
            pop3: Arc::new(postern_pop3::Pop3Server::new(
                shared.config.clone(),
                shared.directory.clone(),
                shared.store.clone(),
                shared.throttle.clone(),
            )),
        }
    }

    fn for_service(&self, service: Service) -> Arc<dyn SessionHandler> {
        match service {
            Service::Smtp | Service::Submission | Service::Submissions => self.smtp.clone(),
            Service::Imap | Service::Imaps => self.imap.clone(),
            Service::Pop3 | Service::Pop3s => self.pop3.clone(),
        }
    }
}
