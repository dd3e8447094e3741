//! The accept loop: one task per listener, one task per connection, limits, implicit TLS, shutdown.

use crate::threads::SessionThreads;
use crate::{
    BoundListener, ConnectionGuard, ConnectionLimiter, Live, MailStream, Refusal, TlsContext,
    HANDSHAKE_TIMEOUT,
};
use async_trait::async_trait;
use postern_config::Service;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// An accepted socket on its way to the runtime that will serve it.
enum Socket {
    Tokio(tokio::net::TcpStream),
    Std(std::net::TcpStream),
    TokioUnix(tokio::net::UnixStream),
    StdUnix(std::os::unix::net::UnixStream),
}

impl Socket {
    /// The socket as a std socket, to move it to another runtime.
    fn into_std(self) -> std::io::Result<Socket> {
        Ok(match self {
            Socket::Tokio(t) => Socket::Std(t.into_std()?),
            Socket::TokioUnix(u) => Socket::StdUnix(u.into_std()?),
            other => other,
        })
    }

    /// The socket registered with the current runtime, as a plaintext stream.
    fn into_stream(self) -> std::io::Result<MailStream> {
        Ok(match self {
            Socket::Tokio(t) => MailStream::Plain(t),
            Socket::Std(s) => MailStream::Plain(tokio::net::TcpStream::from_std(s)?),
            Socket::TokioUnix(u) => MailStream::Unix(u),
            Socket::StdUnix(u) => MailStream::Unix(tokio::net::UnixStream::from_std(u)?),
        })
    }
}

/// The address a Unix-socket client is known by (its peer and local address in a
/// [`Connection`]): it is a process on this machine, so loopback, port 0.
pub const UNIX_PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// One accepted client, handed to a protocol's [`SessionHandler`].
#[derive(Debug)]
pub struct Connection {
    /// The client's stream: plaintext, or TLS already on implicit-TLS services.
    pub stream: MailStream,
    /// The client's address ([`UNIX_PEER`] on a Unix socket).
    pub peer: SocketAddr,
    /// The listener's local address the client connected to ([`UNIX_PEER`] on a Unix socket).
    pub local: SocketAddr,
    /// The service of the listener that accepted the connection.
    pub service: Service,
    /// Unique within this process; also in the connection's tracing span.
    pub session_id: u64,
    /// The server's TLS identity, for STARTTLS/STLS on plaintext ports.
    pub tls: Option<TlsContext>,
    /// Cancelled when the server starts a graceful shutdown: finish the current command, say goodbye
    /// the protocol's way (SMTP 421, IMAP BYE, POP3 -ERR) and return.
    pub shutdown: CancellationToken,
}

impl Connection {
    /// Whether the client connects from the loopback interface (a local program).
    pub fn peer_is_loopback(&self) -> bool {
        crate::is_loopback(&self.peer.ip())
    }
}

/// A protocol server: SMTP, IMAP, POP3 each implement this.
#[async_trait]
pub trait SessionHandler: Send + Sync + 'static {
    /// Runs one session until the client leaves or shutdown asks it to stop.
    async fn handle(&self, conn: Connection);

    /// The one reply (with line ending) sent to a client turned away by a limit, before closing.
    fn refusal(&self, service: Service, why: Refusal) -> Vec<u8>;
}

/// Runs listeners and their sessions, and shuts them down gracefully.
pub struct Server {
    limiter: ConnectionLimiter,
    /// Replaced by [`Server::set_tls`] (a reload); connections keep the one they started with.
    tls: Arc<Live<Option<TlsContext>>>,
    graceful: CancellationToken,
    hard_stop: CancellationToken,
    tracker: TaskTracker,
    next_session: Arc<AtomicU64>,
    threads: Option<Arc<SessionThreads>>,
}

impl Server {
    /// A server that admits connections within `limiter`, with `tls` as its initial TLS identity
    /// (replaceable by [`Server::set_tls`]). It accepts nothing until a listener is spawned.
    pub fn new(limiter: ConnectionLimiter, tls: Option<TlsContext>) -> Server {
        Server {
            limiter,
            tls: Arc::new(Live::new(Arc::new(tls))),
            graceful: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
            next_session: Arc::new(AtomicU64::new(1)),
            threads: None,
        }
    }

    /// Runs sessions on `n` threads of their own, each with a single-threaded runtime (see
    /// [`crate::threads`]), instead of on the runtime that accepts.
    pub fn with_session_threads(mut self, n: usize) -> std::io::Result<Server> {
        self.threads = Some(Arc::new(SessionThreads::start(n)?));
        Ok(self)
    }

    /// The TLS identity for connections accepted from now on (after a certificate renewal).
    pub fn set_tls(&self, tls: TlsContext) {
        self.tls.set(Arc::new(Some(tls)));
    }

    /// Starts accepting on `bound`, handing each connection to `handler`.
    pub fn spawn_listener(&self, bound: BoundListener, handler: Arc<dyn SessionHandler>) {
        self.spawn_live_listener(bound, Arc::new(Live::new(handler)));
    }

    /// Starts accepting on `bound`, handing each connection to the handler current at accept
    /// time: replacing it (a reload) changes new sessions only.
    pub fn spawn_live_listener(
        &self,
        bound: BoundListener,
        handler: Arc<Live<dyn SessionHandler>>,
    ) {
        let ctx = AcceptContext {
            service: bound.service,
            local: bound.local_addr,
            handler,
            limiter: self.limiter.clone(),
            tls: self.tls.clone(),
            graceful: self.graceful.clone(),
            hard_stop: self.hard_stop.clone(),
            tracker: self.tracker.clone(),
            next_session: self.next_session.clone(),
            threads: self.threads.clone(),
        };
        self.tracker.spawn(accept_loop(bound.listener, ctx));
    }

    /// Starts accepting on the Unix stream socket `listener` (bound at `path`) for `service`,
    /// admitting at most what `limiter` allows (every client counts as [`UNIX_PEER`]). Each
    /// connection's stream is [`MailStream::Unix`]. The socket file is removed when the
    /// listener stops.
    pub fn spawn_unix_listener(
        &self,
        listener: tokio::net::UnixListener,
        path: std::path::PathBuf,
        service: Service,
        handler: Arc<Live<dyn SessionHandler>>,
        limiter: ConnectionLimiter,
    ) {
        let ctx = AcceptContext {
            service,
            local: UNIX_PEER,
            handler,
            limiter,
            tls: self.tls.clone(),
            graceful: self.graceful.clone(),
            hard_stop: self.hard_stop.clone(),
            tracker: self.tracker.clone(),
            next_session: self.next_session.clone(),
            threads: self.threads.clone(),
        };
        self.tracker.spawn(unix_accept_loop(listener, path, ctx));
    }

    /// Open connections now.
    pub fn open_connections(&self) -> usize {
        self.limiter.open()
    }

    /// Stops accepting, asks every session to finish, waits up to `grace`, then closes what is left.
    pub async fn shutdown(self, grace: Duration) {
        self.graceful.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.limiter.open(),
                "sessions still open after {}s; closing them",
                grace.as_secs()
            );
            self.hard_stop.cancel();
            self.tracker.wait().await;
        }
    }
}

struct AcceptContext {
    service: Service,
    local: SocketAddr,
    handler: Arc<Live<dyn SessionHandler>>,
    limiter: ConnectionLimiter,
    tls: Arc<Live<Option<TlsContext>>>,
    graceful: CancellationToken,
    hard_stop: CancellationToken,
    tracker: TaskTracker,
    next_session: Arc<AtomicU64>,
    threads: Option<Arc<SessionThreads>>,
}

async fn accept_loop(listener: tokio::net::TcpListener, ctx: AcceptContext) {
    loop {
        let accepted = tokio::select! {
            _ = ctx.graceful.cancelled() => break,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE, ENFILE, ECONNABORTED...: log, breathe, go on.
                tracing::warn!(service = %ctx.service, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let guard = match ctx.limiter.try_acquire(peer.ip()) {
            Ok(g) => g,
            Err(why) => {
                tracing::info!(service = %ctx.service, %peer, ?why, "connection refused");
                let reply = ctx.handler.get().refusal(ctx.service, why);
                let implicit_tls = ctx.service.implicit_tls();
                let tls = Option::clone(&ctx.tls.get());
                ctx.tracker.spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), async move {
                        let mut stream = MailStream::Plain(tcp);
                        if implicit_tls {
                            let Some(tls) = tls else { return };
                            let Ok(s) = stream.upgrade(&tls).await else {
                                return;
                            };
                            stream = s;
                        }
                        let _ = stream.write_all(&reply).await;
                        let _ = stream.shutdown().await;
                    })
                    .await;
                });
                continue;
            }
        };
        start_session(&ctx, Socket::Tokio(tcp), peer, guard);
    }
    tracing::debug!(service = %ctx.service, addr = %ctx.local, "listener closed");
}

/// Runs the session of an admitted connection, on a session thread when the server has them.
fn start_session(ctx: &AcceptContext, socket: Socket, peer: SocketAddr, guard: ConnectionGuard) {
    let session_id = ctx.next_session.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("session", id = session_id, service = %ctx.service, %peer);
    let handler = ctx.handler.get();
    let tls = Option::clone(&ctx.tls.get());
    let service = ctx.service;
    let local = ctx.local;
    let graceful = ctx.graceful.clone();
    let hard_stop = ctx.hard_stop.clone();
    // A socket moves to a session thread's runtime as a std socket and is registered there.
    let (socket, on) = match &ctx.threads {
        Some(threads) => match socket.into_std() {
            Ok(std_socket) => (std_socket, Some(threads.pick().clone())),
            Err(e) => {
                tracing::warn!(%peer, "handing the connection over failed: {e}");
                return;
            }
        },
        None => (socket, None),
    };
    let session = ctx.tracker.track_future(
        async move {
            let _guard = guard;
            let mut stream = match socket.into_stream() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("registering the connection failed: {e}");
                    return;
                }
            };
            if service.implicit_tls() {
                let Some(tls) = &tls else {
                    tracing::error!("implicit-TLS service without a TLS context");
                    return;
                };
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.upgrade(tls)).await {
                    Ok(Ok(s)) => stream = s,
                    Ok(Err(e)) => {
                        tracing::debug!("TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake timed out");
                        return;
                    }
                }
            }
            tracing::debug!("connected");
            let conn = Connection {
                stream,
                peer,
                local,
                service,
                session_id,
                tls,
                shutdown: graceful,
            };
            tokio::select! {
                _ = handler.handle(conn) => {}
                _ = hard_stop.cancelled() => tracing::debug!("closed by shutdown"),
            }
            tracing::debug!("disconnected");
        }
        .instrument(span),
    );
    match on {
        Some(rt) => drop(rt.spawn(session)),
        None => drop(tokio::spawn(session)),
    }
}

/// The accept loop of a Unix stream socket: as [`accept_loop`], without TLS.
async fn unix_accept_loop(
    listener: tokio::net::UnixListener,
    path: std::path::PathBuf,
    ctx: AcceptContext,
) {
    loop {
        let accepted = tokio::select! {
            _ = ctx.graceful.cancelled() => break,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(service = %ctx.service, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let guard = match ctx.limiter.try_acquire(UNIX_PEER.ip()) {
            Ok(g) => g,
            Err(why) => {
                tracing::info!(service = %ctx.service, socket = %path.display(), ?why, "connection refused");
                let reply = ctx.handler.get().refusal(ctx.service, why);
                ctx.tracker.spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), async move {
                        let mut stream = MailStream::Unix(stream);
                        let _ = stream.write_all(&reply).await;
                        let _ = stream.shutdown().await;
                    })
                    .await;
                });
                continue;
            }
        };
        start_session(&ctx, Socket::TokioUnix(stream), UNIX_PEER, guard);
    }
    let _ = std::fs::remove_file(&path);
    tracing::debug!(service = %ctx.service, socket = %path.display(), "listener closed");
}
