//! Our MTA-STS policy (RFC 8461 §3.2) and its id (§3.1), one for every local domain.

use crate::router::{error, response, Handler, Request, Response};
use async_trait::async_trait;
use hyper::StatusCode;
use postern_config::Config;
use postern_directory::Directory;
use std::sync::Arc;

/// The policy served at `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The policy file: `key: value` lines ending in CRLF (RFC 8461 §3.2).
    pub text: String,
    /// The `id=` of the `_mta-sts` TXT record: 20 hex digits of the SHA-256 of `text`, so it
    /// changes exactly when the policy does (RFC 8461 §3.1: 1 to 32 alphanumerics).
    pub id: String,
}

impl Policy {
    /// The policy `[mta_sts]` describes; its `mx` defaults to the host name.
    pub fn from_config(config: &Config) -> Policy {
        let p = &config.mta_sts;
        let mut text = format!("version: STSv1\r\nmode: {}\r\n", p.mode.as_str());
        if p.mx.is_empty() {
            text.push_str(&format!("mx: {}\r\n", config.hostname));
        }
        for mx in &p.mx {
            text.push_str(&format!("mx: {mx}\r\n"));
        }
        text.push_str(&format!("max_age: {}\r\n", p.max_age_secs));
        let id = hex(&sha256(text.as_bytes()))[..20].to_string();
        Policy { text, id }
    }

    /// The `_mta-sts.<domain>` TXT record's value (RFC 8461 §3.1).
    pub fn txt(&self) -> String {
        format!("v=STSv1; id={}", self.id)
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /.well-known/mta-sts.txt` on `mta-sts.<local domain>`.
pub(crate) struct PolicyHandler {
    pub(crate) policy: Policy,
    pub(crate) directory: Arc<dyn Directory>,
}

#[async_trait]
impl Handler for PolicyHandler {
    /// RFC 8461 §3.3: the policy is served as `text/plain` from `mta-sts.` + the domain;
    /// any other host (not one of our domains) is not found.
    async fn handle(&self, request: Request) -> Response {
        let Some(domain) = request.host.strip_prefix("mta-sts.") else {
            return error(
                StatusCode::NOT_FOUND,
                "MTA-STS policies are served on mta-sts.<domain>",
            );
        };
        match self.directory.is_local_domain(domain).await {
            Ok(true) => response(StatusCode::OK, "text/plain", self.policy.text.clone()),
            Ok(false) => error(StatusCode::NOT_FOUND, "not a domain of this server"),
            Err(e) => {
                tracing::warn!("directory lookup failed: {e}");
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the directory is not available",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_config::Source;

    fn config(extra: &str) -> Config {
        Config::from_toml(
            &format!("hostname = \"mx.a.test\"\n{extra}"),
            Source::Defaults,
        )
        .unwrap()
    }

    #[test]
    fn policy_text_and_id_follow_the_config() {
        let p = Policy::from_config(&config(""));
        assert_eq!(
            p.text,
            "version: STSv1\r\nmode: testing\r\nmx: mx.a.test\r\nmax_age: 604800\r\n"
        );
        assert_eq!(p.id.len(), 20);
        assert!(p.id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(p.txt(), format!("v=STSv1; id={}", p.id));
        // The same policy, the same id; a changed one, a new id.
        assert_eq!(Policy::from_config(&config("")).id, p.id);
        let e = Policy::from_config(&config(
            "[mta_sts]\nmode = \"enforce\"\nmx = [\"mx1.a.test\", \"*.b.test\"]\nmax_age_secs = 86400\n",
        ));
        assert_eq!(
            e.text,
            "version: STSv1\r\nmode: enforce\r\nmx: mx1.a.test\r\nmx: *.b.test\r\nmax_age: 86400\r\n"
        );
        assert_ne!(e.id, p.id);
    }
}
