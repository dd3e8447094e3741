//! postern's HTTPS listener (`[listen] https`): one small HTTP/1.1 server on hyper, over the
//! same TLS acceptor, certificate, connection limits and accept loop as every mail listener
//! (it is a [`SessionHandler`] of `postern-net`).
//!
//! It serves only documented paths ([`Router`]), everything else is 404:
//! - the MTA-STS policy (RFC 8461 §3.3) on `mta-sts.<domain>/.well-known/mta-sts.txt`;
//! - Thunderbird autoconfig, Microsoft Autodiscover (POX) and an Apple `.mobileconfig`
//!   profile, naming the ports postern listens on ([`autoconfig`]).
//!
//! Limits: request headers 16 KiB and 30 s to arrive, bodies per route (16 KiB for
//! Autodiscover, none elsewhere) and 30 s to arrive, a connection at most 5 minutes.
//! The later admin pages and ACME challenges add routes to the [`Router`].
//! It also computes what `postern dns` publishes for it: the policy id ([`Policy`]) and the
//! TLSA digest of the certificate ([`spki_sha256`]).

pub mod autoconfig;
mod mta_sts;
mod router;
mod tlsa;

pub use autoconfig::{autodiscover_address, AutodiscoverError};
pub use autoconfig::{Endpoint, Endpoints};
pub use mta_sts::Policy;
pub use router::TargetError;
pub use router::{decode_path, decode_query, error, response, Handler, Request, Response, Router};
pub use tlsa::{spki_sha256, spki_sha256_der, TlsaError};

use async_trait::async_trait;
use http_body_util::{BodyExt, Limited};
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use postern_config::{Config, Service};
use postern_directory::Directory;
use postern_net::{Connection, Refusal, SessionHandler};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Time for a request's header section to arrive (hyper closes the connection after it).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Time for a request's body to arrive (408 after it).
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a connection stays open, however busy.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Request line and header fields together (431 beyond, RFC 6585 §5).
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Header fields in one request.
const MAX_HEADERS: usize = 64;

/// The HTTP(S) listener's session handler.
#[derive(Debug, Clone)]
pub struct WebServer {
    router: Arc<Router>,
    hostname: String,
    fallback: Fallback,
}

/// What a path without a route gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallback {
    /// 404.
    NotFound,
    /// A redirect to the same host and target over HTTPS on this port.
    Https(u16),
}

impl WebServer {
    /// The server with postern's routes: MTA-STS policy from `config`, autoconfiguration
    /// announcing `endpoints`, local domains from `directory`.
    pub fn new(config: &Config, directory: Arc<dyn Directory>, endpoints: Endpoints) -> WebServer {
        WebServer::with_router(
            standard_routes(config, directory, endpoints),
            &config.hostname,
        )
    }

    /// A server with these routes (the admin interface adds its own).
    pub fn with_router(router: Router, hostname: &str) -> WebServer {
        WebServer {
            router: Arc::new(router),
            hostname: hostname.to_string(),
            fallback: Fallback::NotFound,
        }
    }

    /// The plain-HTTP listener (`[listen] http`): `router`'s paths (none yet; ACME HTTP-01
    /// will be one), and for every other request a redirect to the same host and target on
    /// HTTPS port `https_port`.
    pub fn redirecting(router: Router, hostname: &str, https_port: u16) -> WebServer {
        WebServer {
            fallback: Fallback::Https(https_port),
            ..WebServer::with_router(router, hostname)
        }
    }
}

/// The routes every postern serves.
pub fn standard_routes(
    config: &Config,
    directory: Arc<dyn Directory>,
    endpoints: Endpoints,
) -> Router {
    let get = [Method::GET];
    let policy = Arc::new(mta_sts::PolicyHandler {
        policy: Policy::from_config(config),
        directory: directory.clone(),
    });
    let thunderbird = Arc::new(autoconfig::Thunderbird {
        endpoints: endpoints.clone(),
        directory: directory.clone(),
    });
    let autodiscover = Arc::new(autoconfig::Autodiscover {
        endpoints: endpoints.clone(),
        directory: directory.clone(),
    });
    let apple = Arc::new(autoconfig::MobileConfig {
        endpoints,
        directory,
    });
    let max = autoconfig::MAX_AUTODISCOVER_BODY;
    Router::new()
        .route("/.well-known/mta-sts.txt", &get, 0, policy)
        .route("/mail/config-v1.1.xml", &get, 0, thunderbird.clone())
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            &get,
            0,
            thunderbird,
        )
        .route(
            "/autodiscover/autodiscover.xml",
            &[Method::POST],
            max,
            autodiscover.clone(),
        )
        .route(
            "/Autodiscover/Autodiscover.xml",
            &[Method::POST],
            max,
            autodiscover,
        )
        .route("/apple/mobileconfig", &get, 0, apple)
}

#[async_trait]
impl SessionHandler for WebServer {
    /// RFC 9112: HTTP/1.1 with keep-alive, until the client leaves, a limit or shutdown.
    async fn handle(&self, conn: Connection) {
        let peer = conn.peer;
        let router = self.router.clone();
        let fallback = self.fallback;
        let service = hyper::service::service_fn(move |request| {
            let router = router.clone();
            async move {
                Ok::<_, std::convert::Infallible>(dispatch(&router, fallback, request, peer).await)
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(MAX_HEADER_BYTES)
            .max_headers(MAX_HEADERS)
            .keep_alive(true);
        let connection = builder.serve_connection(TokioIo::new(conn.stream), service);
        tokio::pin!(connection);
        let stop = tokio::select! {
            r = connection.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("http connection ended: {e}");
                }
                false
            }
            _ = conn.shutdown.cancelled() => true,
            _ = tokio::time::sleep(CONNECTION_LIFETIME) => true,
        };
        if stop {
            // Finish the request in flight, then close.
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
        }
    }

    fn refusal(&self, service: Service, why: Refusal) -> Vec<u8> {
        why.line(service, &self.hostname)
    }
}

/// Checks the request target and host, finds the route, reads the body within its limit.
async fn dispatch(
    router: &Router,
    fallback: Fallback,
    request: hyper::Request<hyper::body::Incoming>,
    peer: SocketAddr,
) -> Response {
    let (parts, body) = request.into_parts();
    route(router, fallback, parts, body, peer).await
}

/// RFC 9110 §15.4.2 / §15.4.9: 301 for GET and HEAD, 308 (method kept) otherwise, to the
/// same host and target over HTTPS.
fn redirect(host: &str, port: u16, parts: &hyper::http::request::Parts) -> Response {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let location = match port {
        443 => format!("https://{host}{target}"),
        port => format!("https://{host}:{port}{target}"),
    };
    let status = if parts.method == Method::GET || parts.method == Method::HEAD {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::PERMANENT_REDIRECT
    };
    let mut r = error(status, &format!("this server answers at {location}"));
    match hyper::header::HeaderValue::from_str(&location) {
        Ok(v) => {
            r.headers_mut().insert(hyper::header::LOCATION, v);
            r
        }
        Err(_) => error(
            StatusCode::BAD_REQUEST,
            "the request target cannot be redirected",
        ),
    }
}

async fn route(
    router: &Router,
    fallback: Fallback,
    parts: hyper::http::request::Parts,
    body: hyper::body::Incoming,
    peer: SocketAddr,
) -> Response {
    let bad = |why: &str| error(StatusCode::BAD_REQUEST, why);
    let path = match router::decode_path(parts.uri.path()) {
        Ok(p) => p,
        Err(e) => return bad(&e.to_string()),
    };
    let query = match router::decode_query(parts.uri.query()) {
        Ok(q) => q,
        Err(e) => return bad(&e.to_string()),
    };
    // RFC 9112 §3.2: a request without a valid Host is a 400.
    let Some(host) = router::request_host(&parts.uri, &parts.headers) else {
        return bad("the Host header field is missing or invalid");
    };
    let Some(route) = router.find(&path) else {
        return match fallback {
            Fallback::NotFound => error(StatusCode::NOT_FOUND, "no such page"),
            Fallback::Https(port) => redirect(&host, port, &parts),
        };
    };
    if !route.methods.contains(&parts.method) {
        return router::method_not_allowed(&route.methods);
    }
    // RFC 9110 §15.5.14: a body larger than the route takes is refused before it is read.
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is larger than {} bytes", route.max_body),
        )
    };
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > route.max_body as u64) {
        return too_large();
    }
    let body = match tokio::time::timeout(
        BODY_TIMEOUT,
        Limited::new(body, route.max_body).collect(),
    )
    .await
    {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Ok(Err(e)) => return bad(&format!("the body could not be read: {e}")),
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time",
            )
        }
    };
    let request = Request {
        method: parts.method,
        path,
        query,
        host,
        headers: parts.headers,
        body,
        peer,
    };
    let (method, path) = (request.method.clone(), request.path.clone());
    let response = route.handler.handle(request).await;
    tracing::debug!(%method, path, status = response.status().as_u16(), "http request");
    response
}
