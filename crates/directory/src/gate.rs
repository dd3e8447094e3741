//! The one door every login passes, whatever the protocol or the mechanism.
//!
//! IMAP LOGIN, POP3 USER/PASS and APOP, and every SASL mechanism of IMAP, POP3 and
//! SMTP check credentials through a [`ClientAuth`]. It asks the [`AuthThrottle`]
//! before any credential is looked up, records every outcome, and writes the one log
//! line per failure that an admin (or fail2ban) reads, always in this shape:
//!
//! ```text
//! INFO postern_directory::gate: authentication failed protocol="imap" client=192.0.2.7 login="alice@example.org" method="PLAIN"
//! ```
//!
//! A protocol therefore cannot forget the throttle on one of its paths: it has no
//! other way to reach the directory's secrets.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::address::Address;
use crate::error::DirectoryError;
use crate::sasl::{
    Authenticator, ChannelBindings, SaslError, SaslMechanism, SaslSession, ScramCredentials,
};
use crate::throttle::{AuthThrottle, ThrottleDecision};
use crate::Directory;

/// The directory and the failure throttle, shared by every listener.
#[derive(Debug, Clone)]
pub struct AuthGate {
    directory: Arc<dyn Directory>,
    throttle: Arc<AuthThrottle>,
}

impl AuthGate {
    /// A gate in front of `directory`, counting failures in `throttle`.
    pub fn new(directory: Arc<dyn Directory>, throttle: Arc<AuthThrottle>) -> Self {
        AuthGate {
            directory,
            throttle,
        }
    }

    /// The failure counters.
    pub fn throttle(&self) -> &Arc<AuthThrottle> {
        &self.throttle
    }

    /// The door for one connection from `ip`, speaking `protocol` (for the logs).
    pub fn client(&self, protocol: &'static str, ip: IpAddr) -> Arc<ClientAuth> {
        Arc::new(ClientAuth {
            directory: self.directory.clone(),
            throttle: self.throttle.clone(),
            protocol,
            ip,
            method: Mutex::new(""),
            penalty: Mutex::new(Duration::ZERO),
        })
    }
}

/// One client's way to authenticate. Its methods that check a password are
/// CPU-heavy (argon2id): call them from a blocking context.
#[derive(Debug)]
pub struct ClientAuth {
    directory: Arc<dyn Directory>,
    throttle: Arc<AuthThrottle>,
    protocol: &'static str,
    ip: IpAddr,
    /// The command or mechanism being tried, for the log line.
    method: Mutex<&'static str>,
    /// How long to wait before answering the last failure.
    penalty: Mutex<Duration>,
}

/// Shortest wait before a failure is answered, however clean the client's record.
pub const MIN_FAILURE_DELAY: Duration = Duration::from_millis(200);

impl ClientAuth {
    /// Asked before an exchange that does not name an account yet (AUTHENTICATE,
    /// AUTH): refuses a client network that is blocked.
    pub fn admit_client(&self) -> Result<(), SaslError> {
        self.decide(self.throttle.check(None, self.ip), None)
    }

    /// A password login: IMAP LOGIN (RFC 9051 §6.2.3), POP3 USER/PASS (RFC 1939 §7).
    /// Returns the normalised account.
    pub fn login(
        &self,
        method: &'static str,
        login: &str,
        password: &[u8],
    ) -> Result<String, SaslError> {
        self.set_method(method);
        self.admit(login)?;
        let account = self.directory.authenticate(login, password)?;
        self.outcome(login, account.as_deref());
        account.ok_or_else(|| SaslError::AuthenticationFailed {
            authcid: login.to_string(),
        })
    }

    /// POP3 APOP (RFC 1939 §7): `digest_matches` is given the account's shared secret
    /// and says whether the client's digest was made with it.
    pub fn apop(
        &self,
        name: &str,
        digest_matches: impl FnOnce(&str) -> bool,
    ) -> Result<String, SaslError> {
        self.set_method("APOP");
        self.admit(name)?;
        let secret = self.directory.apop_secret(name)?;
        let account = Address::parse(name).ok().map(|a| a.to_string());
        let account = match (secret, account) {
            (Some(secret), Some(account)) if digest_matches(&secret) => Some(account),
            _ => None,
        };
        self.outcome(name, account.as_deref());
        account.ok_or_else(|| SaslError::AuthenticationFailed {
            authcid: name.to_string(),
        })
    }

    /// A SASL exchange whose every credential check passes through this door.
    /// `bindings` is the connection's channel binding data, taken now (after any
    /// STARTTLS): empty on plaintext, where SCRAM-SHA-256-PLUS is refused.
    pub fn sasl(
        self: &Arc<Self>,
        mechanism: SaslMechanism,
        bindings: ChannelBindings,
    ) -> SaslSession {
        self.set_method(mechanism.name());
        SaslSession::new(mechanism, self.clone()).with_channel_bindings(bindings)
    }

    /// How long to wait before answering the last failure: the throttle's delay,
    /// at least [`MIN_FAILURE_DELAY`].
    pub fn failure_delay(&self) -> Duration {
        (*lock(&self.penalty)).max(MIN_FAILURE_DELAY)
    }

    fn set_method(&self, method: &'static str) {
        *lock(&self.method) = method;
    }

    fn decide(&self, decision: ThrottleDecision, login: Option<&str>) -> Result<(), SaslError> {
        match decision {
            ThrottleDecision::Allow { .. } => Ok(()),
            ThrottleDecision::Blocked { retry_after } => {
                tracing::info!(
                    protocol = self.protocol,
                    client = %self.ip,
                    login,
                    method = *lock(&self.method),
                    "authentication refused by the failure throttle"
                );
                Err(SaslError::Throttled { retry_after })
            }
        }
    }
}

impl Authenticator for ClientAuth {
    fn verify_plain(
        &self,
        authcid: &str,
        password: &[u8],
    ) -> Result<Option<String>, DirectoryError> {
        self.directory.authenticate(authcid, password)
    }

    fn scram_credentials(
        &self,
        authcid: &str,
        mechanism: &str,
    ) -> Result<Option<ScramCredentials>, DirectoryError> {
        self.directory.scram_credentials(authcid, mechanism)
    }

    fn scram_decoy(
        &self,
        authcid: &str,
        mechanism: &str,
    ) -> Result<(Vec<u8>, u32), DirectoryError> {
        self.directory.scram_decoy(authcid, mechanism)
    }

    fn admit(&self, authcid: &str) -> Result<(), SaslError> {
        self.decide(self.throttle.check(Some(authcid), self.ip), Some(authcid))
    }

    fn outcome(&self, authcid: &str, account: Option<&str>) {
        let method = *lock(&self.method);
        match account {
            Some(account) => {
                self.throttle.record_success(account, self.ip);
                *lock(&self.penalty) = Duration::ZERO;
                tracing::debug!(protocol = self.protocol, client = %self.ip, account, method, "authenticated");
            }
            None => {
                let next = self.throttle.record_failure(Some(authcid), self.ip);
                *lock(&self.penalty) = next.delay();
                tracing::info!(
                    protocol = self.protocol,
                    client = %self.ip,
                    login = authcid,
                    method,
                    "authentication failed"
                );
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::sasl::SaslStep;
    use crate::{DirectoryOptions, PasswordParams, SqliteDirectory, ThrottleConfig};

    fn gate(account_limit: u32) -> AuthGate {
        let dir = SqliteDirectory::open_in_memory(DirectoryOptions {
            password_params: PasswordParams::insecure_fast_for_tests(),
            ..DirectoryOptions::default()
        })
        .unwrap();
        dir.add_domain("example.org").unwrap();
        dir.add_account("alice@example.org", "secret").unwrap();
        dir.set_apop_secret("alice@example.org", "apop-secret")
            .unwrap();
        AuthGate::new(
            Arc::new(dir),
            Arc::new(AuthThrottle::new(ThrottleConfig {
                account_limit,
                ..ThrottleConfig::default()
            })),
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Every path refuses the right password once the account is blocked for the
    /// client, and counts its failures in the same place.
    #[test]
    fn every_path_shares_one_throttle() {
        let g = gate(3);
        let c = g.client("test", ip("192.0.2.1"));
        let wrong = |i: usize| match i % 3 {
            0 => c.login("LOGIN", "alice@example.org", b"wrong").unwrap_err(),
            1 => c.apop("alice@example.org", |_| false).unwrap_err(),
            _ => c
                .sasl(SaslMechanism::Plain, ChannelBindings::none())
                .start(Some(b"\0alice@example.org\0wrong"))
                .unwrap_err(),
        };
        for i in 0..3 {
            assert!(wrong(i).is_auth_failure(), "attempt {i}");
        }
        assert!(c.failure_delay() >= MIN_FAILURE_DELAY);
        let blocked = |e: SaslError| matches!(e, SaslError::Throttled { .. });
        assert!(blocked(
            c.login("LOGIN", "alice@example.org", b"secret")
                .unwrap_err()
        ));
        assert!(blocked(
            c.apop("alice@example.org", |s| s == "apop-secret")
                .unwrap_err()
        ));
        for mech in [SaslMechanism::Plain, SaslMechanism::Login] {
            let mut s = c.sasl(mech, ChannelBindings::none());
            let r = match mech {
                SaslMechanism::Plain => s.start(Some(b"\0alice@example.org\0secret")),
                _ => s
                    .start(Some(b"alice@example.org"))
                    .and_then(|_| s.step(b"secret")),
            };
            assert!(blocked(r.unwrap_err()), "{mech}");
        }
        // The owner, from another network, still gets in.
        let home = g.client("test", ip("198.51.100.4"));
        assert_eq!(
            home.login("LOGIN", "Alice@example.org", b"secret").unwrap(),
            "alice@example.org"
        );
        assert_eq!(
            home.apop("alice@example.org", |s| s == "apop-secret")
                .unwrap(),
            "alice@example.org"
        );
    }

    /// A whole SCRAM-SHA-256 exchange as a client would run it.
    fn scram(c: &Arc<ClientAuth>, user: &str, password: &str) -> Result<String, SaslError> {
        let mut s = c.sasl(SaslMechanism::ScramSha256, ChannelBindings::none());
        let bare = format!("n={user},r=clientnonce");
        let SaslStep::Challenge(sf) = s.start(Some(format!("n,,{bare}").as_bytes()))? else {
            panic!("server-first expected");
        };
        let sf = String::from_utf8(sf).unwrap();
        let fin = crate::sasl::tests::client_final(password, &bare, &sf, b"n,,");
        s.step(fin.as_bytes())?;
        match s.step(b"")? {
            SaslStep::Done(c) => Ok(c.account),
            other => panic!("{other:?}"),
        }
    }

    /// SCRAM failures count with the others, and a blocked account is refused SCRAM too.
    #[test]
    fn scram_shares_the_throttle() {
        let g = gate(3);
        let c = g.client("test", ip("192.0.2.1"));
        assert_eq!(
            scram(&c, "alice@example.org", "secret").unwrap(),
            "alice@example.org"
        );
        for _ in 0..2 {
            assert!(scram(&c, "alice@example.org", "wrong")
                .unwrap_err()
                .is_auth_failure());
        }
        assert!(c.login("LOGIN", "alice@example.org", b"wrong").is_err());
        assert!(matches!(
            scram(&c, "alice@example.org", "secret").unwrap_err(),
            SaslError::Throttled { .. }
        ));
        assert!(matches!(
            c.login("LOGIN", "alice@example.org", b"secret")
                .unwrap_err(),
            SaslError::Throttled { .. }
        ));
        // Unknown names fail the same way, at the proof.
        let other = g.client("test", ip("198.51.100.4"));
        assert!(scram(&other, "nobody@example.org", "secret")
            .unwrap_err()
            .is_auth_failure());
        assert_eq!(
            scram(&other, "alice@example.org", "secret").unwrap(),
            "alice@example.org"
        );
    }

    #[test]
    fn blocked_network_is_refused_before_any_name() {
        let g = gate(100);
        let c = g.client("test", ip("192.0.2.1"));
        for i in 0..ThrottleConfig::default().network_limit {
            let _ = c.login("LOGIN", &format!("u{i}@example.org"), b"x");
        }
        assert!(matches!(
            g.client("test", ip("192.0.2.99")).admit_client(),
            Err(SaslError::Throttled { .. })
        ));
        assert!(g.client("test", ip("192.0.3.1")).admit_client().is_ok());
    }
}
