//! Server side of SASL (RFC 4422), independent of the protocol that carries it.
//!
//! The protocol layer (SMTP AUTH, IMAP AUTHENTICATE, POP3 AUTH) decodes base64,
//! handles the client's `*` cancellation and maps outcomes to its replies; this
//! module sees raw bytes only:
//!
//! ```text
//! let mut s = SaslSession::new(mech, authenticator);
//! let mut step = s.start(initial_response)?;          // Option<&[u8]>
//! while let SaslStep::Challenge(c) = step {
//!     send(c); step = s.step(&receive())?;
//! }
//! // SaslStep::Done(credentials)
//! ```
//!
//! `start` and `step` may verify a password, which is CPU-heavy (argon2id): run them
//! in `tokio::task::spawn_blocking`. The session owns an `Arc<dyn Authenticator>`,
//! so it is `Send + 'static` and can move into the blocking task and back.
//!
//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677; see [`crate::scram`]) fit
//! the same shape: their keys come from [`Authenticator::scram_credentials`], and the
//! protocol passes the connection's [`ChannelBindings`] with
//! [`SaslSession::with_channel_bindings`]. Their last challenge is the server-final
//! message, which the client answers with an empty response. When the client cancels
//! (`*`) instead, [`SaslSession::cancel`] says whether that counts as a failure.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::address::Address;
use crate::error::DirectoryError;
use crate::scram::{self, Verdict};
pub use crate::scram::{ChannelBindingType, ChannelBindings};

/// Longest authcid, authzid or LOGIN username accepted (octets).
const MAX_IDENTITY_LEN: usize = 1024;
/// Longest password accepted (octets).
const MAX_PASSWORD_LEN: usize = 1024;

/// The SASL mechanisms the server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    /// RFC 4616.
    Plain,
    /// draft-murchison-sasl-login.
    Login,
    /// RFC 7677 (RFC 5802 with SHA-256).
    ScramSha256,
    /// RFC 7677 with channel binding (RFC 5802 §6).
    ScramSha256Plus,
}

impl SaslMechanism {
    /// All implemented mechanisms, in order of preference for advertising.
    pub const ALL: &'static [SaslMechanism] = &[
        SaslMechanism::ScramSha256Plus,
        SaslMechanism::ScramSha256,
        SaslMechanism::Plain,
        SaslMechanism::Login,
    ];

    /// Parses a mechanism name case-insensitively (RFC 4422 §3.1).
    pub fn from_name(name: &str) -> Option<Self> {
        SaslMechanism::ALL
            .iter()
            .copied()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The registered name, upper case.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Login => "LOGIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
        }
    }

    /// Whether the mechanism binds to the TLS channel (only offered over TLS).
    pub fn needs_channel_binding(self) -> bool {
        matches!(self, SaslMechanism::ScramSha256Plus)
    }

    /// Whether this connection may use the mechanism: plaintext ones only where
    /// `channel_secure`, -PLUS only over `tls` (where channel binding data exists). A
    /// mechanism may be usable without being advertised (see [`advertised_mechanisms`]).
    pub fn usable(self, channel_secure: bool, tls: bool) -> bool {
        if self.is_plaintext() {
            channel_secure
        } else if self.needs_channel_binding() {
            tls
        } else {
            true
        }
    }

    /// Whether the password crosses the wire in the clear (only allowed on a
    /// secure channel).
    pub fn is_plaintext(self) -> bool {
        matches!(self, SaslMechanism::Plain | SaslMechanism::Login)
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SaslMechanism {
    type Err = SaslError;
    fn from_str(s: &str) -> Result<Self, SaslError> {
        SaslMechanism::from_name(s)
            .ok_or_else(|| SaslError::UnsupportedMechanism(s.chars().take(40).collect::<String>()))
    }
}

/// The mechanisms to advertise, best first: SCRAM-SHA-256-PLUS, SCRAM-SHA-256, PLAIN,
/// LOGIN. `channel_secure` is true on TLS, or where the admin allows plaintext
/// passwords (e.g. loopback): plaintext mechanisms are offered only then. SCRAM sends
/// no password and is always offered; -PLUS only where `offer_plus`, which is
/// [`ChannelBindings::advertise_plus`] of the connection (TLS 1.3).
pub fn advertised_mechanisms(channel_secure: bool, offer_plus: bool) -> Vec<SaslMechanism> {
    SaslMechanism::ALL
        .iter()
        .copied()
        .filter(|m| match m {
            SaslMechanism::ScramSha256Plus => offer_plus,
            m => m.usable(channel_secure, offer_plus),
        })
        .collect()
}

/// Salted keys for SCRAM (RFC 5802 §3, RFC 7677).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// Normalised account address.
    pub account: String,
    /// The salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// StoredKey = H(ClientKey).
    pub stored_key: Vec<u8>,
    /// ServerKey.
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("account", &self.account)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// What a SASL session needs from the account directory. Implemented by
/// `SqliteDirectory` and, for any [`crate::Directory`], by [`crate::ClientAuth`];
/// tests may supply their own.
pub trait Authenticator: Send + Sync {
    /// Checks a plaintext password. Returns the normalised account on success,
    /// `None` on failure (unknown account, disabled, wrong password). CPU-heavy.
    fn verify_plain(
        &self,
        authcid: &str,
        password: &[u8],
    ) -> Result<Option<String>, DirectoryError>;

    /// SCRAM keys for `authcid`, if the directory has them for an enabled account.
    /// The default has none, which makes SCRAM fail for every account.
    fn scram_credentials(
        &self,
        authcid: &str,
        mechanism: &str,
    ) -> Result<Option<ScramCredentials>, DirectoryError> {
        let _ = (authcid, mechanism);
        Ok(None)
    }

    /// The salt and iteration count to answer for an `authcid` without SCRAM keys
    /// (unknown, disabled, or with an imported hash), so that the server-first message
    /// does not tell it apart: the same salt every time for the same name, the usual
    /// count. The default derives the salt from a secret of this process; the
    /// directory keeps its secret in the database, so restarts do not change it.
    fn scram_decoy(
        &self,
        authcid: &str,
        mechanism: &str,
    ) -> Result<(Vec<u8>, u32), DirectoryError> {
        static SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
        let secret = SECRET.get_or_init(|| {
            let mut k = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k);
            k
        });
        Ok((
            scram::decoy_salt(secret, mechanism, &canonical_name(authcid)),
            scram::DEFAULT_ITERATIONS,
        ))
    }

    /// Asked, whatever the mechanism, once the exchange names `authcid` and before its
    /// credentials are looked up or checked; an error ends the exchange. The failure
    /// throttle lives here (see [`crate::gate`]); the default admits everyone.
    fn admit(&self, authcid: &str) -> Result<(), SaslError> {
        let _ = authcid;
        Ok(())
    }

    /// Told, whatever the mechanism, how the exchange ended for `authcid`: the account
    /// on success, `None` on failure. The default forgets it.
    fn outcome(&self, authcid: &str, account: Option<&str>) {
        let _ = (authcid, account);
    }
}

/// The name an identity is looked up under: the normalised address, or the text as
/// given when it is no address.
pub(crate) fn canonical_name(name: &str) -> String {
    Address::parse(name).map_or_else(|_| name.to_string(), |a| a.to_string())
}

/// The result of a successful exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authenticated account, normalised (`local@domain`).
    pub account: String,
    /// The authorization identity the client asked for, if any (always the same
    /// identity as the account: acting for others is refused).
    pub authzid: Option<String>,
}

/// One server move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send this challenge (raw bytes; the protocol layer encodes it) and pass the
    /// client's answer to [`SaslSession::step`].
    Challenge(Vec<u8>),
    /// Authentication succeeded.
    Done(Credentials),
}

/// Why an exchange ended without success.
#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    /// The client named a mechanism we do not implement.
    #[error("unsupported SASL mechanism {0:?}")]
    UnsupportedMechanism(String),
    /// The client's message does not follow the mechanism's syntax.
    #[error("malformed SASL response: {0}")]
    Malformed(&'static str),
    /// The client asked to act as someone else (RFC 4616 §2: authzid ≠ authcid).
    #[error("{authcid} may not act as {authzid}")]
    AuthzidNotPermitted {
        /// Who authenticated.
        authcid: String,
        /// Who they asked to be.
        authzid: String,
    },
    /// Wrong credentials. Feed `authcid` to the [`crate::AuthThrottle`].
    #[error("authentication failed for {authcid}")]
    AuthenticationFailed {
        /// The identity that failed (as the client sent it).
        authcid: String,
    },
    /// Too many recent failures for this identity or client: refused without a check.
    #[error("too many failed attempts, try again in {} seconds", retry_after.as_secs().max(1))]
    Throttled {
        /// Time until an attempt would be admitted again.
        retry_after: std::time::Duration,
    },
    /// `step` was called after the exchange ended.
    #[error("the SASL exchange is already finished")]
    Finished,
    /// The directory failed (a temporary server-side error, not the client's fault).
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl SaslError {
    /// The identity involved, when the client got far enough to name one.
    pub fn authcid(&self) -> Option<&str> {
        match self {
            SaslError::AuthzidNotPermitted { authcid, .. }
            | SaslError::AuthenticationFailed { authcid } => Some(authcid),
            _ => None,
        }
    }

    /// Whether this counts as a failed authentication attempt (for throttling).
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            SaslError::AuthenticationFailed { .. } | SaslError::AuthzidNotPermitted { .. }
        )
    }
}

enum State {
    New,
    PlainAwaitingResponse,
    LoginAwaitingUsername,
    LoginAwaitingPassword {
        username: String,
    },
    ScramAwaitingClientFirst,
    ScramAwaitingClientFinal(Box<scram::Exchange>),
    /// The server-final `v=` was sent; the client answers with an empty response.
    ScramAwaitingAck(Credentials),
    /// The server-final `e=` was sent: whatever the client answers, it failed.
    ScramFailed {
        authcid: String,
    },
    Finished,
}

/// One server-side SASL exchange.
pub struct SaslSession {
    mechanism: SaslMechanism,
    authenticator: Arc<dyn Authenticator>,
    state: State,
    bindings: ChannelBindings,
    /// A fixed SCRAM server nonce, for the RFC test vectors and the fuzzer only.
    server_nonce: Option<String>,
}

impl fmt::Debug for SaslSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslSession")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

/// The LOGIN mechanism's first challenge.
pub const LOGIN_USERNAME_CHALLENGE: &[u8] = b"Username:";
/// The LOGIN mechanism's second challenge.
pub const LOGIN_PASSWORD_CHALLENGE: &[u8] = b"Password:";

impl SaslSession {
    /// A new exchange for `mechanism`, checking credentials with `authenticator`.
    pub fn new(mechanism: SaslMechanism, authenticator: Arc<dyn Authenticator>) -> Self {
        SaslSession {
            mechanism,
            authenticator,
            state: State::New,
            bindings: ChannelBindings::none(),
            server_nonce: None,
        }
    }

    /// The channel binding data of the connection (RFC 5802 §6), taken when the
    /// exchange starts. Without it SCRAM-SHA-256-PLUS is refused.
    pub fn with_channel_bindings(mut self, bindings: ChannelBindings) -> Self {
        self.bindings = bindings;
        self
    }

    /// A fixed SCRAM server nonce instead of a random one: for test vectors and the fuzzer,
    /// which must be able to echo it. Never for a real exchange (RFC 5802 §9).
    #[doc(hidden)]
    pub fn with_server_nonce(mut self, nonce: &str) -> Self {
        self.server_nonce = Some(nonce.to_string());
        self
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }

    /// Whether the exchange has ended (successfully or not).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// Begins the exchange. `initial_response` is the client's initial response
    /// (RFC 4422 §4): `None` when absent, `Some(b"")` when present but empty
    /// (SMTP's `=`, RFC 4954 §4).
    pub fn start(&mut self, initial_response: Option<&[u8]>) -> Result<SaslStep, SaslError> {
        if !matches!(self.state, State::New) {
            return Err(SaslError::Finished);
        }
        if self.mechanism.needs_channel_binding() && !self.bindings.any() {
            self.state = State::Finished;
            return Err(SaslError::UnsupportedMechanism(
                "SCRAM-SHA-256-PLUS without TLS".into(),
            ));
        }
        match (self.mechanism, initial_response) {
            (SaslMechanism::Plain, None) => {
                // RFC 4616 §2: an empty challenge asks for the message.
                self.state = State::PlainAwaitingResponse;
                Ok(SaslStep::Challenge(Vec::new()))
            }
            (SaslMechanism::Plain, Some(message)) => self.finish_plain(message),
            (SaslMechanism::Login, None) => {
                self.state = State::LoginAwaitingUsername;
                Ok(SaslStep::Challenge(LOGIN_USERNAME_CHALLENGE.to_vec()))
            }
            (SaslMechanism::Login, Some(username)) => self.login_username(username),
            (SaslMechanism::ScramSha256 | SaslMechanism::ScramSha256Plus, None) => {
                // RFC 5802 §5: the client speaks first; an empty challenge asks for it.
                self.state = State::ScramAwaitingClientFirst;
                Ok(SaslStep::Challenge(Vec::new()))
            }
            (SaslMechanism::ScramSha256 | SaslMechanism::ScramSha256Plus, Some(msg)) => {
                self.scram_first(msg)
            }
        }
    }

    /// The client cancelled the exchange (`*`, RFC 4422 §3.5). Returns the error to
    /// report: an authentication failure when the exchange had already failed (SCRAM's
    /// `e=` was sent, and counted), `None` for a plain cancellation.
    pub fn cancel(&mut self) -> Option<SaslError> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::ScramFailed { authcid } => Some(SaslError::AuthenticationFailed { authcid }),
            _ => None,
        }
    }

    /// RFC 5802 §5.1 client-first-message → server-first-message.
    fn scram_first(&mut self, msg: &[u8]) -> Result<SaslStep, SaslError> {
        self.state = State::Finished;
        let server_nonce = self.server_nonce.as_deref();
        let params = scram::ScramParams {
            plus: self.mechanism.needs_channel_binding(),
            bindings: &self.bindings,
            server_nonce,
        };
        let (server_first, exchange) = scram::client_first(&params, &*self.authenticator, msg)?;
        self.state = State::ScramAwaitingClientFinal(Box::new(exchange));
        Ok(SaslStep::Challenge(server_first))
    }

    /// Feeds the client's response to the last challenge.
    pub fn step(&mut self, response: &[u8]) -> Result<SaslStep, SaslError> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::PlainAwaitingResponse => self.finish_plain(response),
            State::LoginAwaitingUsername => self.login_username(response),
            State::LoginAwaitingPassword { username } => {
                self.state = State::Finished;
                if response.len() > MAX_PASSWORD_LEN {
                    return Err(SaslError::Malformed("password too long"));
                }
                self.verify(username, response, None)
            }
            State::ScramAwaitingClientFirst => self.scram_first(response),
            State::ScramAwaitingClientFinal(exchange) => {
                match scram::client_final(*exchange, &*self.authenticator, response)? {
                    Verdict::Success {
                        server_final,
                        credentials,
                    } => {
                        self.state = State::ScramAwaitingAck(credentials);
                        Ok(SaslStep::Challenge(server_final))
                    }
                    Verdict::Failure {
                        server_final,
                        authcid,
                    } => {
                        self.state = State::ScramFailed { authcid };
                        Ok(SaslStep::Challenge(server_final))
                    }
                }
            }
            State::ScramAwaitingAck(credentials) => {
                // RFC 5802 §5: nothing follows the server-final message.
                if response.is_empty() {
                    Ok(SaslStep::Done(credentials))
                } else {
                    Err(SaslError::Malformed(
                        "SCRAM expects an empty final response",
                    ))
                }
            }
            State::ScramFailed { authcid } => Err(SaslError::AuthenticationFailed { authcid }),
            State::New | State::Finished => Err(SaslError::Finished),
        }
    }

    fn login_username(&mut self, username: &[u8]) -> Result<SaslStep, SaslError> {
        self.state = State::Finished;
        let username = identity(username, "username")?;
        if username.is_empty() {
            return Err(SaslError::Malformed("empty username"));
        }
        self.state = State::LoginAwaitingPassword { username };
        Ok(SaslStep::Challenge(LOGIN_PASSWORD_CHALLENGE.to_vec()))
    }

    /// RFC 4616 §2: `message = [authzid] UTF8NUL authcid UTF8NUL passwd`.
    fn finish_plain(&mut self, message: &[u8]) -> Result<SaslStep, SaslError> {
        self.state = State::Finished;
        let mut parts = message.split(|&b| b == 0);
        let (Some(authzid), Some(authcid), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SaslError::Malformed(
                "PLAIN needs authzid NUL authcid NUL password",
            ));
        };
        let authzid = identity(authzid, "authzid")?;
        let authcid = identity(authcid, "authcid")?;
        if authcid.is_empty() {
            return Err(SaslError::Malformed("empty authcid"));
        }
        if password.is_empty() {
            return Err(SaslError::Malformed("empty password"));
        }
        if password.len() > MAX_PASSWORD_LEN {
            return Err(SaslError::Malformed("password too long"));
        }
        if std::str::from_utf8(password).is_err() {
            return Err(SaslError::Malformed("password is not UTF-8"));
        }
        self.authenticator.admit(&authcid)?;
        let authzid = if authzid.is_empty() {
            None
        } else if same_identity(&authzid, &authcid) {
            Some(authzid)
        } else {
            self.authenticator.outcome(&authcid, None);
            return Err(SaslError::AuthzidNotPermitted { authcid, authzid });
        };
        self.verify(authcid, password, authzid)
    }

    fn verify(
        &mut self,
        authcid: String,
        password: &[u8],
        authzid: Option<String>,
    ) -> Result<SaslStep, SaslError> {
        self.state = State::Finished;
        self.authenticator.admit(&authcid)?;
        let account = self.authenticator.verify_plain(&authcid, password)?;
        self.authenticator.outcome(&authcid, account.as_deref());
        match account {
            Some(account) => Ok(SaslStep::Done(Credentials { account, authzid })),
            None => Err(SaslError::AuthenticationFailed { authcid }),
        }
    }
}

/// An identity must be UTF-8 (RFC 4616 §2), short and free of control characters.
fn identity(bytes: &[u8], what: &'static str) -> Result<String, SaslError> {
    if bytes.len() > MAX_IDENTITY_LEN {
        return Err(SaslError::Malformed(match what {
            "authzid" => "authzid too long",
            "authcid" => "authcid too long",
            _ => "username too long",
        }));
    }
    let s = std::str::from_utf8(bytes).map_err(|_| {
        SaslError::Malformed(match what {
            "authzid" => "authzid is not UTF-8",
            "authcid" => "authcid is not UTF-8",
            _ => "username is not UTF-8",
        })
    })?;
    if s.chars().any(char::is_control) {
        return Err(SaslError::Malformed("control character in identity"));
    }
    Ok(s.to_string())
}

/// Whether two identities name the same account (after address normalisation).
pub(crate) fn same_identity(a: &str, b: &str) -> bool {
    match (Address::parse(a), Address::parse(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Accepts `alice@example.org` / `secret` and records what it was asked.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<(String, Vec<u8>)>>,
    }

    impl Authenticator for Fake {
        fn verify_plain(
            &self,
            authcid: &str,
            password: &[u8],
        ) -> Result<Option<String>, DirectoryError> {
            self.calls
                .lock()
                .unwrap()
                .push((authcid.to_string(), password.to_vec()));
            let ok = Address::parse(authcid)
                .map(|a| a.to_string() == "alice@example.org")
                .unwrap_or(false)
                && password == b"secret";
            Ok(ok.then(|| "alice@example.org".to_string()))
        }
    }

    fn session(m: SaslMechanism) -> (SaslSession, Arc<Fake>) {
        let fake = Arc::new(Fake::default());
        (SaslSession::new(m, fake.clone()), fake)
    }

    fn done(account: &str, authzid: Option<&str>) -> SaslStep {
        SaslStep::Done(Credentials {
            account: account.into(),
            authzid: authzid.map(str::to_string),
        })
    }

    #[test]
    fn mechanism_names() {
        assert_eq!(
            SaslMechanism::from_name("plain"),
            Some(SaslMechanism::Plain)
        );
        assert_eq!(
            SaslMechanism::from_name("LoGiN"),
            Some(SaslMechanism::Login)
        );
        assert_eq!(SaslMechanism::from_name("CRAM-MD5"), None);
        assert!("GSSAPI".parse::<SaslMechanism>().is_err());
        assert_eq!("PLAIN".parse::<SaslMechanism>().unwrap().name(), "PLAIN");
    }

    #[test]
    fn advertising() {
        use SaslMechanism::*;
        let none = ChannelBindings::none();
        let tls13 = ChannelBindings::new(Some(vec![1; 32]), Some(vec![2; 32]));
        let tls12 = ChannelBindings::new(None, Some(vec![2; 32]));
        assert!(!none.advertise_plus() && !none.any());
        assert!(tls13.advertise_plus());
        assert!(!tls12.advertise_plus() && tls12.any());
        assert_eq!(
            advertised_mechanisms(true, false),
            vec![ScramSha256, Plain, Login]
        );
        assert_eq!(advertised_mechanisms(false, false), vec![ScramSha256]);
        assert_eq!(
            advertised_mechanisms(true, true),
            vec![ScramSha256Plus, ScramSha256, Plain, Login]
        );
        // Usable without being advertised: -PLUS with tls-server-end-point on TLS 1.2.
        assert!(ScramSha256Plus.usable(true, tls12.any()));
        assert!(!ScramSha256Plus.usable(true, none.any()));
        assert!(ScramSha256.usable(false, false));
        assert!(!Plain.usable(false, false));
        assert_eq!(
            SaslMechanism::from_name("scram-sha-256-plus"),
            Some(ScramSha256Plus)
        );
    }

    #[test]
    fn plain_with_initial_response() {
        let (mut s, fake) = session(SaslMechanism::Plain);
        let r = s.start(Some(b"\0alice@example.org\0secret")).unwrap();
        assert_eq!(r, done("alice@example.org", None));
        assert!(s.is_finished());
        assert_eq!(fake.calls.lock().unwrap().len(), 1);
        assert!(matches!(s.step(b"again"), Err(SaslError::Finished)));
    }

    #[test]
    fn plain_without_initial_response() {
        let (mut s, _) = session(SaslMechanism::Plain);
        assert_eq!(s.start(None).unwrap(), SaslStep::Challenge(Vec::new()));
        let r = s.step(b"\0Alice@Example.ORG\0secret").unwrap();
        assert_eq!(r, done("alice@example.org", None));
    }

    #[test]
    fn plain_empty_initial_response_is_malformed() {
        let (mut s, fake) = session(SaslMechanism::Plain);
        assert!(matches!(s.start(Some(b"")), Err(SaslError::Malformed(_))));
        assert!(fake.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn plain_malformed() {
        for msg in [
            &b"alice@example.org\0secret"[..],
            b"\0alice@example.org\0secret\0extra",
            b"\0\0secret",
            b"\0alice@example.org\0",
            b"\0al\xffice@example.org\0secret",
            b"\xff\0alice@example.org\0secret",
            b"\0alice\r\n@example.org\0secret",
            b"\0alice@example.org\0sec\xffret",
            b"no nul at all",
        ] {
            let (mut s, fake) = session(SaslMechanism::Plain);
            let e = s.start(Some(msg)).unwrap_err();
            assert!(matches!(e, SaslError::Malformed(_)), "{msg:?}: {e:?}");
            assert!(!e.is_auth_failure());
            assert!(fake.calls.lock().unwrap().is_empty());
        }
        let long = [b"\0".as_slice(), &[b'a'; 2000], b"\0pw"].concat();
        let (mut s, _) = session(SaslMechanism::Plain);
        assert!(matches!(s.start(Some(&long)), Err(SaslError::Malformed(_))));
    }

    #[test]
    fn plain_authzid() {
        let (mut s, _) = session(SaslMechanism::Plain);
        let r = s
            .start(Some(b"ALICE@example.org\0alice@example.org\0secret"))
            .unwrap();
        assert_eq!(r, done("alice@example.org", Some("ALICE@example.org")));

        let (mut s, fake) = session(SaslMechanism::Plain);
        let e = s
            .start(Some(b"bob@example.org\0alice@example.org\0secret"))
            .unwrap_err();
        assert!(matches!(e, SaslError::AuthzidNotPermitted { .. }));
        assert!(e.is_auth_failure());
        assert_eq!(e.authcid(), Some("alice@example.org"));
        assert!(fake.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn plain_wrong_password() {
        let (mut s, _) = session(SaslMechanism::Plain);
        let e = s.start(Some(b"\0alice@example.org\0wrong")).unwrap_err();
        assert!(e.is_auth_failure());
        assert_eq!(e.authcid(), Some("alice@example.org"));
        assert!(s.is_finished());
    }

    #[test]
    fn login_without_initial_response() {
        let (mut s, fake) = session(SaslMechanism::Login);
        assert_eq!(
            s.start(None).unwrap(),
            SaslStep::Challenge(b"Username:".to_vec())
        );
        assert_eq!(
            s.step(b"alice@example.org").unwrap(),
            SaslStep::Challenge(b"Password:".to_vec())
        );
        assert_eq!(s.step(b"secret").unwrap(), done("alice@example.org", None));
        assert_eq!(
            fake.calls.lock().unwrap()[0],
            ("alice@example.org".to_string(), b"secret".to_vec())
        );
    }

    #[test]
    fn login_with_initial_response() {
        let (mut s, _) = session(SaslMechanism::Login);
        assert_eq!(
            s.start(Some(b"alice@example.org")).unwrap(),
            SaslStep::Challenge(b"Password:".to_vec())
        );
        let e = s.step(b"nope").unwrap_err();
        assert!(matches!(e, SaslError::AuthenticationFailed { .. }));
    }

    #[test]
    fn login_empty_or_bad_username() {
        let (mut s, _) = session(SaslMechanism::Login);
        assert!(matches!(s.start(Some(b"")), Err(SaslError::Malformed(_))));
        assert!(s.is_finished());
        let (mut s, _) = session(SaslMechanism::Login);
        s.start(None).unwrap();
        assert!(matches!(s.step(b"\xff\xfe"), Err(SaslError::Malformed(_))));
        assert!(matches!(s.step(b"x"), Err(SaslError::Finished)));
    }

    #[test]
    fn start_twice_is_refused() {
        let (mut s, _) = session(SaslMechanism::Login);
        s.start(None).unwrap();
        assert!(matches!(s.start(None), Err(SaslError::Finished)));
    }

    #[test]
    fn session_is_send_and_static() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<SaslSession>();
    }

    proptest::proptest! {
        #[test]
        fn never_panics(ir in proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)),
                        steps in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0..4),
                        mech in 0usize..4) {
            let m = SaslMechanism::ALL[mech];
            let (s, _) = session(m);
            let mut s = s.with_channel_bindings(ChannelBindings::new(Some(vec![1; 32]), None));
            let _ = s.start(ir.as_deref());
            for st in &steps {
                let _ = s.step(st);
            }
        }

        /// Well-formed SCRAM prefixes followed by arbitrary client-final messages.
        #[test]
        fn scram_never_panics(nonce in "[!-+--~]{1,40}", fin in "[ -~]{0,120}") {
            let (mut s, _) = scram_session(SaslMechanism::ScramSha256, ChannelBindings::none());
            let first = format!("n,,n=user,r={nonce}");
            if s.start(Some(first.as_bytes())).is_ok() {
                let _ = s.step(fin.as_bytes());
                let _ = s.step(b"");
            }
        }
    }

    // ----- SCRAM ------------------------------------------------------------------

    use base64::Engine as _;
    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    /// RFC 7677 §3: the test vector's salt, nonces and messages.
    const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const C_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const S_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

    /// Knows "user" / "pencil" with the RFC 7677 salt; records each call in order.
    #[derive(Default)]
    struct ScramFake {
        events: Mutex<Vec<String>>,
        blocked: bool,
    }

    impl ScramFake {
        fn log(&self, e: String) {
            self.events.lock().unwrap().push(e);
        }
        fn events(&self) -> Vec<String> {
            self.events.lock().unwrap().clone()
        }
    }

    impl Authenticator for ScramFake {
        fn verify_plain(&self, _: &str, _: &[u8]) -> Result<Option<String>, DirectoryError> {
            panic!("SCRAM never checks a plaintext password");
        }
        fn scram_credentials(
            &self,
            authcid: &str,
            mechanism: &str,
        ) -> Result<Option<ScramCredentials>, DirectoryError> {
            assert_eq!(mechanism, "SCRAM-SHA-256");
            self.log(format!("credentials {authcid}"));
            if authcid != "user" {
                return Ok(None);
            }
            let salt = B64.decode(SALT).unwrap();
            let k = scram::derive_keys(b"pencil", &salt, 4096);
            Ok(Some(ScramCredentials {
                account: "user".into(),
                salt,
                iterations: 4096,
                stored_key: k.stored_key.to_vec(),
                server_key: k.server_key.to_vec(),
            }))
        }
        fn scram_decoy(&self, authcid: &str, m: &str) -> Result<(Vec<u8>, u32), DirectoryError> {
            self.log(format!("decoy {authcid}"));
            Ok((scram::decoy_salt(b"test secret", m, authcid), 4096))
        }
        fn admit(&self, authcid: &str) -> Result<(), SaslError> {
            self.log(format!("admit {authcid}"));
            if self.blocked {
                return Err(SaslError::Throttled {
                    retry_after: std::time::Duration::from_secs(60),
                });
            }
            Ok(())
        }
        fn outcome(&self, authcid: &str, account: Option<&str>) {
            self.log(format!("outcome {authcid} {account:?}"));
        }
    }

    fn scram_session(m: SaslMechanism, cb: ChannelBindings) -> (SaslSession, Arc<ScramFake>) {
        let fake = Arc::new(ScramFake::default());
        let s = SaslSession::new(m, fake.clone())
            .with_channel_bindings(cb)
            .with_server_nonce(S_NONCE);
        (s, fake)
    }

    /// A client's final message for `password`, given the exchange so far.
    pub(crate) fn client_final(
        password: &str,
        bare: &str,
        server_first: &str,
        cbind_input: &[u8],
    ) -> String {
        let mut salt = None;
        let mut iterations = None;
        let mut nonce = None;
        for f in server_first.split(',') {
            match f.split_at(2) {
                ("r=", v) => nonce = Some(v.to_string()),
                ("s=", v) => salt = Some(B64.decode(v).unwrap()),
                ("i=", v) => iterations = Some(v.parse().unwrap()),
                _ => panic!("{f}"),
            }
        }
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
            password.as_bytes(),
            &salt.unwrap(),
            iterations.unwrap(),
            &mut salted,
        );
        let client_key = scram::hmac(&salted, b"Client Key");
        let without_proof = format!("c={},r={}", B64.encode(cbind_input), nonce.unwrap());
        let am = format!("{bare},{server_first},{without_proof}");
        let sig = scram::hmac(&scram::h(&client_key), am.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        format!("{without_proof},p={}", B64.encode(proof))
    }

    fn challenge(step: Result<SaslStep, SaslError>) -> String {
        match step {
            Ok(SaslStep::Challenge(c)) => String::from_utf8(c).unwrap(),
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    #[test]
    fn scram_rfc7677_test_vector() {
        let (mut s, fake) = scram_session(SaslMechanism::ScramSha256, ChannelBindings::none());
        let server_first = challenge(s.start(Some(format!("n,,n=user,r={C_NONCE}").as_bytes())));
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let fin = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                   p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            challenge(s.step(fin.as_bytes())),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        assert_eq!(s.step(b"").unwrap(), done("user", None));
        assert!(s.is_finished());
        // The throttle is asked before the keys are read, and told the verdict once.
        assert_eq!(
            fake.events(),
            [
                "admit user",
                "credentials user",
                "outcome user Some(\"user\")"
            ]
        );
    }

    #[test]
    fn scram_without_initial_response_and_with_authzid() {
        let (mut s, fake) = scram_session(SaslMechanism::ScramSha256, ChannelBindings::none());
        assert_eq!(s.start(None).unwrap(), SaslStep::Challenge(Vec::new()));
        let bare = format!("n=user,r={C_NONCE}");
        let sf = challenge(s.step(format!("n,a=user,{bare}").as_bytes()));
        let fin = client_final("pencil", &bare, &sf, b"n,a=user,");
        assert!(challenge(s.step(fin.as_bytes())).starts_with("v="));
        assert_eq!(s.step(b"").unwrap(), done("user", Some("user")));
        assert_eq!(fake.events().len(), 3);
    }

    #[test]
    fn scram_wrong_password_fails_at_the_proof() {
        for cancel in [false, true] {
            let (mut s, fake) = scram_session(SaslMechanism::ScramSha256, ChannelBindings::none());
            let bare = format!("n=user,r={C_NONCE}");
            let sf = challenge(s.start(Some(format!("n,,{bare}").as_bytes())));
            let fin = client_final("pencil2", &bare, &sf, b"n,,");
            assert_eq!(challenge(s.step(fin.as_bytes())), "e=invalid-proof");
            let e = if cancel {
                s.cancel().expect("a cancelled failure is still a failure")
            } else {
                s.step(b"").unwrap_err()
            };
            assert!(e.is_auth_failure(), "{e:?}");
            assert_eq!(e.authcid(), Some("user"));
            assert_eq!(
                fake.events(),
                ["admit user", "credentials user", "outcome user None"]
            );
        }
        // A plain cancellation is no failure.
        let (mut s, _) = scram_session(SaslMechanism::ScramSha256, ChannelBindings::none());
        s.start(None).unwrap();
        assert!(s.cancel().is_none());
    }

    #[test]
    fn scram_unknown_user_gets_a_stable_decoy_and_fails_at_the_proof() {
        let run = |password: &str| {
            let (mut s, fake) = scram_session(SaslMechanism::ScramSha256, ChannelBindings::none());
            let bare = format!("n=nobody,r={C_NONCE}");
            let sf = challenge(s.start(Some(format!("n,,{bare}").as_bytes())));
            let fin = client_final(password, &bare, &sf, b"n,,");
            assert_eq!(challenge(s.step(fin.as_bytes())), "e=invalid-proof");
            assert!(s.step(b"").unwrap_err().is_auth_failure());
            assert_eq!(
                fake.events(),
                [
                    "admit nobody",
                    "credentials nobody",
                    "decoy nobody",
                    "outcome nobody None"
                ]
            );
            sf
        };
        let first = run("pencil");
        assert_eq!(first, run("other"), "the same salt and count every time");
        assert!(first.ends_with(",i=4096"));
    }

    #[test]
    fn scram_throttled_before_lookup() {
        let fake = Arc::new(ScramFake {
            blocked: true,
            ..ScramFake::default()
        });
        let mut s = SaslSession::new(SaslMechanism::ScramSha256, fake.clone());
        let e = s
            .start(Some(format!("n,,n=user,r={C_NONCE}").as_bytes()))
            .unwrap_err();
        assert!(matches!(e, SaslError::Throttled { .. }));
        assert_eq!(fake.events(), ["admit user"]);
    }

    #[test]
    fn scram_authzid_for_someone_else() {
        let (mut s, fake) = scram_session(SaslMechanism::ScramSha256, ChannelBindings::none());
        let e = s
            .start(Some(format!("n,a=admin,n=user,r={C_NONCE}").as_bytes()))
            .unwrap_err();
        assert!(matches!(e, SaslError::AuthzidNotPermitted { .. }));
        assert_eq!(fake.events(), ["admit user", "outcome user None"]);
    }

    #[test]
    fn scram_malformed_messages() {
        for first in [
            "",
            "n,,n=user",
            "n,,m=x,n=user,r=abc",
            "n,,n=us=41er,r=abc",
            "q,,n=user,r=abc",
            "n,,n=user,r=a,b",
            "p=tls-exporter,,n=user,r=abc",
            "p=tls-unique,,n=user,r=abc",
        ] {
            let (mut s, fake) = scram_session(SaslMechanism::ScramSha256, ChannelBindings::none());
            let e = s.start(Some(first.as_bytes())).unwrap_err();
            assert!(matches!(e, SaslError::Malformed(_)), "{first:?}: {e:?}");
            assert!(fake.events().is_empty(), "{first:?}");
        }
        let bare = format!("n=user,r={C_NONCE}");
        let good = {
            let (mut s, _) = scram_session(SaslMechanism::ScramSha256, ChannelBindings::none());
            let sf = challenge(s.start(Some(format!("n,,{bare}").as_bytes())));
            client_final("pencil", &bare, &sf, b"n,,")
        };
        let proof = good.rsplit_once(",p=").unwrap().1;
        for fin in [
            String::new(),
            "c=biws".to_string(),
            format!("c=biws,r={C_NONCE}x,p={proof}"),
            format!("c=biws,r={C_NONCE},p={proof}"),
            good.replace(",p=", ",1=x,p="),
            format!("{good}A"),
        ] {
            let (mut s, fake) = scram_session(SaslMechanism::ScramSha256, ChannelBindings::none());
            s.start(Some(format!("n,,{bare}").as_bytes())).unwrap();
            let e = s.step(fin.as_bytes()).unwrap_err();
            assert!(matches!(e, SaslError::Malformed(_)), "{fin:?}: {e:?}");
            assert_eq!(fake.events().len(), 2, "no verdict on a malformed message");
        }
        // The final response must be empty.
        let (mut s, _) = scram_session(SaslMechanism::ScramSha256, ChannelBindings::none());
        s.start(Some(format!("n,,{bare}").as_bytes())).unwrap();
        challenge(s.step(good.as_bytes()));
        assert!(matches!(s.step(b"x"), Err(SaslError::Malformed(_))));
    }

    fn tls13() -> ChannelBindings {
        ChannelBindings::new(Some(vec![0xe1; 32]), Some(vec![0x5e; 32]))
    }

    #[test]
    fn scram_plus_binds_to_the_channel() {
        for kind in ChannelBindingType::ALL {
            let header = format!("p={},,", kind.name());
            let bare = format!("n=user,r={C_NONCE}");
            let mut input = header.clone().into_bytes();
            input.extend_from_slice(tls13().data(*kind).unwrap());
            let (mut s, fake) = scram_session(SaslMechanism::ScramSha256Plus, tls13());
            let sf = challenge(s.start(Some(format!("{header}{bare}").as_bytes())));
            let fin = client_final("pencil", &bare, &sf, &input);
            assert!(challenge(s.step(fin.as_bytes())).starts_with("v="));
            assert_eq!(s.step(b"").unwrap(), done("user", None));
            assert_eq!(fake.events().len(), 3);

            // The data of another channel (a man in the middle's) does not match.
            let (mut s, fake) = scram_session(SaslMechanism::ScramSha256Plus, tls13());
            let sf = challenge(s.start(Some(format!("{header}{bare}").as_bytes())));
            let mut other = header.clone().into_bytes();
            other.extend_from_slice(&[0u8; 32]);
            let fin = client_final("pencil", &bare, &sf, &other);
            assert_eq!(
                challenge(s.step(fin.as_bytes())),
                "e=channel-bindings-dont-match"
            );
            assert!(s.step(b"").unwrap_err().is_auth_failure());
            assert_eq!(fake.events().last().unwrap(), "outcome user None");
        }
        // Without the binding data, c= of the plain mechanism must be the bare header.
        let (mut s, _) = scram_session(SaslMechanism::ScramSha256, tls13());
        let bare = format!("n=user,r={C_NONCE}");
        let sf = challenge(s.start(Some(format!("n,,{bare}").as_bytes())));
        let fin = client_final("pencil", &bare, &sf, b"y,,");
        assert_eq!(
            challenge(s.step(fin.as_bytes())),
            "e=channel-bindings-dont-match"
        );
    }

    #[test]
    fn scram_plus_needs_tls_and_p() {
        let (mut s, _) = scram_session(SaslMechanism::ScramSha256Plus, ChannelBindings::none());
        assert!(matches!(
            s.start(None),
            Err(SaslError::UnsupportedMechanism(_))
        ));
        for first in ["n,,n=user,r=abc", "y,,n=user,r=abc"] {
            let (mut s, fake) = scram_session(SaslMechanism::ScramSha256Plus, tls13());
            assert!(matches!(
                s.start(Some(first.as_bytes())),
                Err(SaslError::Malformed(_))
            ));
            assert!(fake.events().is_empty());
        }
        // tls-exporter does not exist on TLS 1.2 here.
        let tls12 = ChannelBindings::new(None, Some(vec![1; 32]));
        let (mut s, _) = scram_session(SaslMechanism::ScramSha256Plus, tls12);
        assert!(matches!(
            s.start(Some(b"p=tls-exporter,,n=user,r=abc")),
            Err(SaslError::Malformed(_))
        ));
    }

    #[test]
    fn scram_y_flag_downgrade_rule() {
        let bare = format!("n=user,r={C_NONCE}");
        // RFC 5802 §6: "y" while we advertise -PLUS means the list was tampered with.
        let (mut s, fake) = scram_session(SaslMechanism::ScramSha256, tls13());
        let e = s.start(Some(format!("y,,{bare}").as_bytes())).unwrap_err();
        assert!(e.is_auth_failure(), "{e:?}");
        assert_eq!(fake.events(), ["admit user", "outcome user None"]);
        // Where -PLUS is not advertised (plaintext, TLS 1.2), "y" is honest.
        for cb in [
            ChannelBindings::none(),
            ChannelBindings::new(None, Some(vec![1; 32])),
        ] {
            let (mut s, _) = scram_session(SaslMechanism::ScramSha256, cb);
            let sf = challenge(s.start(Some(format!("y,,{bare}").as_bytes())));
            let fin = client_final("pencil", &bare, &sf, b"y,,");
            assert!(challenge(s.step(fin.as_bytes())).starts_with("v="));
            assert_eq!(s.step(b"").unwrap(), done("user", None));
        }
    }
}
