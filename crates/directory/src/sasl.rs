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
//! Mechanisms needing stored keys and several round trips (SCRAM-SHA-256, RFC 7677)
//! fit the same shape: [`Authenticator::scram_credentials`] is the hook they will use.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::address::Address;
use crate::error::DirectoryError;

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
}

impl SaslMechanism {
    /// All implemented mechanisms, in order of preference for advertising.
    pub const ALL: &'static [SaslMechanism] = &[SaslMechanism::Plain, SaslMechanism::Login];

    /// Parses a mechanism name case-insensitively (RFC 4422 §3.1).
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(SaslMechanism::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(SaslMechanism::Login)
        } else {
            None
        }
    }

    /// The registered name, upper case.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Login => "LOGIN",
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

/// The mechanisms to advertise. `channel_secure` is true on TLS, or where the
/// admin allows plaintext passwords (e.g. loopback): plaintext mechanisms are
/// offered only then.
pub fn advertised_mechanisms(channel_secure: bool) -> Vec<SaslMechanism> {
    SaslMechanism::ALL
        .iter()
        .copied()
        .filter(|m| channel_secure || !m.is_plaintext())
        .collect()
}

/// Salted keys for SCRAM (RFC 5802 §3, RFC 7677). Reserved for SCRAM-SHA-256.
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
/// [`crate::Directory`]; tests may supply their own.
pub trait Authenticator: Send + Sync {
    /// Checks a plaintext password. Returns the normalised account on success,
    /// `None` on failure (unknown account, disabled, wrong password). CPU-heavy.
    fn verify_plain(
        &self,
        authcid: &str,
        password: &[u8],
    ) -> Result<Option<String>, DirectoryError>;

    /// SCRAM keys for `authcid`, if the directory has them. The default has none,
    /// which makes SCRAM mechanisms unavailable for the account.
    fn scram_credentials(
        &self,
        authcid: &str,
        mechanism: &str,
    ) -> Result<Option<ScramCredentials>, DirectoryError> {
        let _ = (authcid, mechanism);
        Ok(None)
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

impl Authenticator for crate::Directory {
    fn verify_plain(
        &self,
        authcid: &str,
        password: &[u8],
    ) -> Result<Option<String>, DirectoryError> {
        self.authenticate(authcid, password)
    }
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
    LoginAwaitingPassword { username: String },
    Finished,
}

/// One server-side SASL exchange.
pub struct SaslSession {
    mechanism: SaslMechanism,
    authenticator: Arc<dyn Authenticator>,
    state: State,
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
        }
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
        }
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
fn same_identity(a: &str, b: &str) -> bool {
    match (Address::parse(a), Address::parse(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(
            advertised_mechanisms(true),
            vec![SaslMechanism::Plain, SaslMechanism::Login]
        );
        assert!(advertised_mechanisms(false).is_empty());
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
                        login in proptest::prelude::any::<bool>()) {
            let m = if login { SaslMechanism::Login } else { SaslMechanism::Plain };
            let (mut s, _) = session(m);
            let _ = s.start(ir.as_deref());
            for st in &steps {
                let _ = s.step(st);
            }
        }
    }
}
