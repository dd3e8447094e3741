//! LOGIN (RFC 9051 §6.2.3) and AUTHENTICATE (RFC 9051 §6.2.2, SASL-IR RFC 4959).

use std::sync::Arc;

use base64::Engine;
use postern_directory::{
    Authenticator, SaslError, SaslMechanism, SaslSession, SaslStep, ThrottleDecision,
};

use crate::response::{bad, no_code, ok_code, Code, Reply};
use crate::session::{SResult, Session};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl Session {
    fn throttle_check(&self, account: Option<&str>) -> ThrottleDecision {
        self.srv.throttle.check(account, self.peer.ip())
    }

    /// After a successful authentication: per-user limit, store account, state change.
    async fn logged_in(&mut self, account: String) -> Reply {
        self.srv.throttle.record_success(&account, self.peer.ip());
        let Some(guard) = self.srv.acquire_user(&account) else {
            return no_code(Code::Limit, "Too many sessions for this account");
        };
        if let Err(e) = self.srv.store.ensure_account(&account).await {
            tracing::warn!("cannot open the mail store of {account}: {e}");
            return no_code(Code::Unavailable, "Mail store unavailable");
        }
        tracing::info!(user = %account, "logged in");
        self.user = Some(account);
        self.user_guard = Some(guard);
        ok_code(Code::Capability(self.capabilities()), "Logged in")
    }

    async fn failed(&mut self, authcid: Option<&str>) -> Reply {
        let d = self.srv.throttle.record_failure(authcid, self.peer.ip());
        tokio::time::sleep(d.delay().max(std::time::Duration::from_millis(200))).await;
        no_code(Code::AuthenticationFailed, "Authentication failed")
    }

    /// RFC 9051 §6.2.3 LOGIN
    pub(crate) async fn login(&mut self, user: String, password: Vec<u8>) -> Reply {
        if self.user.is_some() {
            return bad("Already authenticated");
        }
        if !self.plaintext_ok() {
            return no_code(Code::PrivacyRequired, "LOGIN is disabled until STARTTLS");
        }
        match self.throttle_check(Some(&user)) {
            ThrottleDecision::Blocked { .. } => {
                return no_code(
                    Code::Unavailable,
                    "Too many failed attempts, try again later",
                )
            }
            ThrottleDecision::Allow { delay } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            }
        }
        let dir = self.srv.directory.clone();
        let login = user.clone();
        let r = tokio::task::spawn_blocking(move || dir.authenticate(&login, &password)).await;
        match r {
            Ok(Ok(Some(account))) => self.logged_in(account).await,
            Ok(Ok(None)) => self.failed(Some(&user)).await,
            Ok(Err(e)) => {
                tracing::warn!("directory error: {e}");
                no_code(Code::Unavailable, "Authentication temporarily unavailable")
            }
            Err(_) => no_code(Code::ServerBug, "Authentication failed internally"),
        }
    }

    /// RFC 9051 §6.2.2 AUTHENTICATE with RFC 4959 SASL-IR.
    pub(crate) async fn authenticate(
        &mut self,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) -> SResult<Reply> {
        if self.user.is_some() {
            return Ok(bad("Already authenticated"));
        }
        let Some(mech) = SaslMechanism::from_name(mechanism) else {
            return Ok(no_code(
                Code::Cannot,
                "Unsupported authentication mechanism",
            ));
        };
        if mech.is_plaintext() && !self.plaintext_ok() {
            return Ok(no_code(Code::PrivacyRequired, "Use STARTTLS first"));
        }
        if self.throttle_check(None).is_blocked() {
            return Ok(no_code(
                Code::Unavailable,
                "Too many failed attempts, try again later",
            ));
        }
        let initial = match initial {
            None => None,
            Some(ir) if ir == b"=" => Some(Vec::new()),
            Some(ir) => match B64.decode(&ir) {
                Ok(v) => Some(v),
                Err(_) => return Ok(bad("Invalid base64 in initial response")),
            },
        };
        let auth: Arc<dyn Authenticator> = self.srv.directory.clone();
        let mut sasl = SaslSession::new(mech, auth);
        let mut input: Option<Vec<u8>> = initial;
        let mut first = true;
        loop {
            let is_first = first;
            first = false;
            let data = input.take();
            let r = tokio::task::spawn_blocking(move || {
                let step = if is_first {
                    sasl.start(data.as_deref())
                } else {
                    sasl.step(data.as_deref().unwrap_or_default())
                };
                (sasl, step)
            })
            .await;
            let (s, step) = match r {
                Ok(v) => v,
                Err(_) => return Ok(no_code(Code::ServerBug, "Authentication failed internally")),
            };
            sasl = s;
            match step {
                Ok(SaslStep::Done(creds)) => return Ok(self.logged_in(creds.account).await),
                Ok(SaslStep::Challenge(c)) => {
                    self.out.extend_from_slice(b"+ ");
                    self.out.extend_from_slice(B64.encode(&c).as_bytes());
                    self.out.extend_from_slice(b"\r\n");
                    self.flush().await?;
                    let line = self
                        .read_line(self.srv.limits.max_line, self.srv.limits.login_timeout)
                        .await?;
                    let line = String::from_utf8_lossy(&line).trim_end().to_string();
                    if line == "*" {
                        return Ok(bad("Authentication cancelled"));
                    }
                    match B64.decode(line.as_bytes()) {
                        Ok(v) => input = Some(v),
                        Err(_) => return Ok(bad("Invalid base64 response")),
                    }
                }
                Err(e) if e.is_auth_failure() => {
                    let who = e.authcid().map(str::to_string);
                    return Ok(self.failed(who.as_deref()).await);
                }
                Err(SaslError::Malformed(m)) => return Ok(bad(format!("Malformed response: {m}"))),
                Err(SaslError::Directory(e)) => {
                    tracing::warn!("directory error: {e}");
                    return Ok(no_code(
                        Code::Unavailable,
                        "Authentication temporarily unavailable",
                    ));
                }
                Err(e) => return Ok(no_code(Code::AuthenticationFailed, e.to_string())),
            }
        }
    }
}
