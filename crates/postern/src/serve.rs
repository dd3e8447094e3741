//! `postern serve`: open the data, bind every enabled listener, run until SIGTERM/SIGINT.

use crate::admin::Context as AdminContext;
use anyhow::Context;
use postern_config::{Config, Source};
use postern_net::{
    bind_service, BindPolicy, ConnectionLimiter, Server, SessionHandler, Unavailable,
};
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
    let server = Server::new(limiter, Some(tls));
    let policy = BindPolicy {
        unprivileged_fallback: config.source == Source::Defaults,
    };
    // Protocol servers join here as they are built; until then a listener answers with its protocol's
    // standard "no service here" reply rather than not existing.
    let unavailable: Arc<dyn SessionHandler> = Arc::new(Unavailable {
        hostname: config.hostname.clone(),
    });
    let mut listening = 0;
    for (service, addrs) in config.enabled_services() {
        for bound in bind_service(service, &addrs, policy).await? {
            tracing::info!(
                "{service}: listening on {}{}",
                bound.local_addr,
                if service.implicit_tls() { " (TLS)" } else { "" }
            );
            server.spawn_listener(bound, unavailable.clone());
            listening += 1;
        }
    }
    if listening == 0 {
        tracing::warn!("every service is disabled in [listen]; nothing to serve");
    }
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
    tracing::info!("stopped");
    Ok(())
}
