//! LOGIN (RFC 9051 §6.2.3) and AUTHENTICATE (RFC 9051 §6.2.2, SASL-IR RFC 4959).
//!
//! Both check credentials only through the session's [`postern_directory::ClientAuth`],
//! which applies the failure throttle to every path alike.

use base64::Engine;
use postern_directory::{SaslError, SaslMechanism, SaslStep};

use crate::response::{bad, no_code, ok_code, Code, Reply};
use crate::session::{SResult, Session};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl Session {
    /// After a successful authentication: per-user limit, store account, state change.
    async fn logged_in(&mut self, account: String) -> Reply {
        let Some(guard) = self.srv.acquire_user(&account) else {
            return no_code(Code::Limit, "Too many sessions for this account");
        };
        if let Err(e) = self.srv.store.ensure_account(&account).await {
            tracing::warn!("cannot open the mail store of {account}: {e}");
            return no_code(Code::Unavailable, "Mail store unavailable");
        }
        tracing::info!(user = %account, "logged in");
        // From now on an admin can end this session alone (`postern kick`).
        let kick = self.server_shutdown.child_token();
        self.registration = Some(self.srv.sessions.register(&account, kick.clone()));
        self.shutdown = kick;
        self.io.set_stop(Some(self.shutdown.clone()));
        self.user = Some(account);
        self.user_guard = Some(guard);
        ok_code(Code::Capability(self.capabilities()), "Logged in")
    }

    /// The tagged answer to an exchange that did not log in.
    async fn refused(&mut self, error: SaslError) -> Reply {
        match error {
            e if e.is_auth_failure() => {
                tokio::time::sleep(self.auth.failure_delay()).await;
                no_code(Code::AuthenticationFailed, "Authentication failed")
            }
            SaslError::Throttled { .. } => no_code(
                Code::Unavailable,
                "Too many failed attempts, try again later",
            ),
            SaslError::Malformed(m) => bad(format!("Malformed response: {m}")),
            SaslError::Directory(e) => {
                tracing::warn!("directory error: {e}");
                no_code(Code::Unavailable, "Authentication temporarily unavailable")
            }
            e => no_code(Code::AuthenticationFailed, e.to_string()),
        }
    }

    /// RFC 9051 §6.2.3 LOGIN
    pub(crate) async fn login(&mut self, user: String, password: Vec<u8>) -> Reply {
        if self.user.is_some() {
            return bad("Already authenticated");
        }
        if !self.plaintext_ok() {
            return no_code(Code::PrivacyRequired, "LOGIN is disabled until STARTTLS");
        }
        let auth = self.auth.clone();
        let r = tokio::task::spawn_blocking(move || auth.login("LOGIN", &user, &password)).await;
        match r {
            Ok(Ok(account)) => self.logged_in(account).await,
            Ok(Err(e)) => self.refused(e).await,
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
        let bindings = self.channel_bindings();
        if !mech.usable(true, bindings.any()) {
            return Ok(no_code(
                Code::Cannot,
                "SCRAM-SHA-256-PLUS needs TLS (use STARTTLS or port 993)",
            ));
        }
        if let Err(e) = self.auth.admit_client() {
            return Ok(self.refused(e).await);
        }
        let initial = match initial {
            None => None,
            Some(ir) if ir == b"=" => Some(Vec::new()),
            Some(ir) => match B64.decode(&ir) {
                Ok(v) => Some(v),
                Err(_) => return Ok(bad("Invalid base64 in initial response")),
            },
        };
        let mut sasl = self.auth.sasl(mech, bindings);
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
                    self.io.write(b"+ ");
                    self.io.write(B64.encode(&c).as_bytes());
                    self.io.write(b"\r\n");
                    self.flush().await?;
                    let line = self
                        .read_line(self.srv.limits.max_line, self.srv.limits.login_timeout)
                        .await?;
                    let line = String::from_utf8_lossy(&line).trim_end().to_string();
                    if line == "*" {
                        // After SCRAM's e= the exchange has already failed: say so.
                        if let Some(e) = sasl.cancel() {
                            return Ok(self.refused(e).await);
                        }
                        return Ok(bad("Authentication cancelled"));
                    }
                    match B64.decode(line.as_bytes()) {
                        Ok(v) => input = Some(v),
                        Err(_) => return Ok(bad("Invalid base64 response")),
                    }
                }
                Err(e) => return Ok(self.refused(e).await),
            }
        }
    }
}
