//! A small router: exact paths, each with its methods, its body limit and its handler. The
//! later admin pages and ACME challenges add their routes here; nothing else is a framework.

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use hyper::{HeaderMap, Method, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;

/// What a handler answers.
pub type Response = hyper::Response<Full<Bytes>>;

/// One request, read whole (its body within the route's limit) and checked: the path is
/// percent-decoded UTF-8 without `.` or `..` segments, the query is decoded UTF-8.
#[derive(Debug, Clone)]
pub struct Request {
    /// GET, HEAD, POST...
    pub method: Method,
    /// The decoded path (`/.well-known/mta-sts.txt`).
    pub path: String,
    /// The decoded query pairs, in order (`+` is a space, as in HTML forms).
    pub query: Vec<(String, String)>,
    /// The host the client asked for (RFC 9110 §7.2), lower case, without port or final dot.
    pub host: String,
    /// The request's header fields.
    pub headers: HeaderMap,
    /// The body (empty for GET).
    pub body: Bytes,
    /// The client's address.
    pub peer: SocketAddr,
}

impl Request {
    /// The first value of query parameter `name` (case-insensitive name).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves one route.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The response to `request` (whose method the route allows).
    async fn handle(&self, request: Request) -> Response;
}

/// One path the server answers.
pub(crate) struct Route {
    pub(crate) path: String,
    pub(crate) methods: Vec<Method>,
    /// The largest request body accepted, in bytes (0 for GET routes).
    pub(crate) max_body: usize,
    pub(crate) handler: Arc<dyn Handler>,
}

/// The routes of the HTTPS listener.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.routes.iter().map(|r| &r.path))
            .finish()
    }
}

impl Router {
    /// A router without routes (everything is 404).
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds `path` (exact, case-sensitive) for `methods`, with bodies up to `max_body`
    /// bytes. GET implies HEAD (RFC 9110 §9.3.2).
    pub fn route(
        mut self,
        path: &str,
        methods: &[Method],
        max_body: usize,
        handler: Arc<dyn Handler>,
    ) -> Router {
        let mut methods = methods.to_vec();
        if methods.contains(&Method::GET) && !methods.contains(&Method::HEAD) {
            methods.push(Method::HEAD);
        }
        self.routes.push(Route {
            path: path.to_string(),
            methods,
            max_body,
            handler,
        });
        self
    }

    pub(crate) fn find(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.path == path)
    }
}

/// A response with `status`, `content_type` and `body`, never cached by intermediaries
/// unless the handler says otherwise.
pub fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response {
    let mut r = hyper::Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Browsers must not guess another type (a policy file is not a page).
    r.headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// A plain-text error response: the status and a line saying why.
pub fn error(status: StatusCode, why: &str) -> Response {
    response(
        status,
        "text/plain; charset=utf-8",
        format!(
            "{} {}: {why}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
    )
}

/// RFC 9110 §15.5.6: 405 with the `Allow` field listing what the path accepts.
pub(crate) fn method_not_allowed(methods: &[Method]) -> Response {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "this path does not accept that method",
    );
    let allow = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(v) = HeaderValue::from_str(&allow) {
        r.headers_mut().insert(ALLOW, v);
    }
    r
}

/// Why a request target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Percent-decoding gave bytes that are not UTF-8.
    #[error("the request target is not UTF-8 once percent-decoded")]
    NotUtf8,
    /// `.`/`..` segments, backslashes, NUL or empty segments.
    #[error("the path has '.', '..' or empty segments, a backslash or a NUL")]
    BadPath,
}

/// Decodes and checks a path (RFC 3986 §3.3): no `.`/`..` segment (no traversal, however
/// encoded), no empty segment, backslash or control character.
pub fn decode_path(raw: &str) -> Result<String, TargetError> {
    let path = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| TargetError::NotUtf8)?;
    if !path.starts_with('/') {
        return Err(TargetError::BadPath);
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (i, s) in segments.iter().enumerate() {
        if *s == "." || *s == ".." || (s.is_empty() && i != last) {
            return Err(TargetError::BadPath);
        }
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(TargetError::BadPath);
    }
    Ok(path.into_owned())
}

/// Decodes an `application/x-www-form-urlencoded` query (pairs split on `&`, `+` a space).
pub fn decode_query(raw: Option<&str>) -> Result<Vec<(String, String)>, TargetError> {
    let mut out = Vec::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            let s = s.replace('+', " ");
            percent_encoding::percent_decode_str(&s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| TargetError::NotUtf8)
        };
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

/// The host a request names: the authority of an absolute-form target, else the `Host`
/// field (RFC 9112 §3.2.2), lower case, without port or final dot; `None` if absent or
/// not a host name or address literal.
pub(crate) fn request_host(uri: &hyper::Uri, headers: &HeaderMap) -> Option<String> {
    let raw = match uri.authority() {
        Some(a) => a.host().to_string(),
        None => {
            let h = headers.get(hyper::header::HOST)?.to_str().ok()?;
            match h.strip_prefix('[') {
                Some(v6) => format!("[{}]", v6.split(']').next()?),
                None => h.rsplit_once(':').map_or(h, |(host, _)| host).to_string(),
            }
        }
    };
    let host = raw.trim_end_matches('.').to_ascii_lowercase();
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
    ok.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_and_traversal_refused() {
        assert_eq!(
            decode_path("/.well-known/mta%2Dsts.txt").unwrap(),
            "/.well-known/mta-sts.txt"
        );
        assert_eq!(decode_path("/").unwrap(), "/");
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/a/./b",
            "/a//b",
            "/a\\b",
            "/a%00",
            "relative",
        ] {
            assert_eq!(decode_path(bad), Err(TargetError::BadPath), "{bad}");
        }
        assert_eq!(decode_path("/%ff%fe"), Err(TargetError::NotUtf8));
    }

    #[test]
    fn query_pairs() {
        let q = decode_query(Some("emailaddress=a%2Bb%40x.test&x=1+2&flag")).unwrap();
        assert_eq!(
            q,
            [
                ("emailaddress".into(), "a+b@x.test".into()),
                ("x".into(), "1 2".into()),
                ("flag".into(), String::new())
            ]
        );
        assert_eq!(decode_query(Some("e=%C3%28")), Err(TargetError::NotUtf8));
        assert!(decode_query(None).unwrap().is_empty());
    }

    #[test]
    fn host_from_field_or_authority() {
        let mut h = HeaderMap::new();
        h.insert(
            hyper::header::HOST,
            HeaderValue::from_static("MTA-STS.A.test.:8443"),
        );
        let uri: hyper::Uri = "/x".parse().unwrap();
        assert_eq!(request_host(&uri, &h).as_deref(), Some("mta-sts.a.test"));
        let abs: hyper::Uri = "https://Autoconfig.b.test/x".parse().unwrap();
        assert_eq!(request_host(&abs, &h).as_deref(), Some("autoconfig.b.test"));
        h.insert(hyper::header::HOST, HeaderValue::from_static("[::1]:443"));
        assert_eq!(request_host(&uri, &h).as_deref(), Some("[::1]"));
        h.insert(hyper::header::HOST, HeaderValue::from_static("a b"));
        assert_eq!(request_host(&uri, &h), None);
        assert_eq!(request_host(&uri, &HeaderMap::new()), None);
    }
}
