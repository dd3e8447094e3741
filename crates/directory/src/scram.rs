//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, server side (RFC 5802, RFC 7677), with the
//! channel bindings `tls-exporter` (RFC 9266) and `tls-server-end-point` (RFC 5929 §4).
//!
//! The directory keeps, per account, the salt, the iteration count, StoredKey and
//! ServerKey (never the password): [`derive_keys`] makes them from a plaintext password.
//! An exchange is two client messages and two server messages, then the client's empty
//! answer to the server-final message (RFC 4422 §5, "additional data with success", sent
//! as a last challenge so that it fits IMAP, POP3 and SMTP alike):
//!
//! ```text
//! C: n,,n=user,r=<c-nonce>                        client-first
//! S: r=<c-nonce><s-nonce>,s=<salt>,i=<count>       server-first
//! C: c=biws,r=<nonce>,p=<ClientProof>              client-final
//! S: v=<ServerSignature>  (or e=<error>)           server-final
//! C: (empty)
//! ```
//!
//! An unknown, disabled or key-less account gets a decoy salt (deterministic per name,
//! see [`crate::Authenticator::scram_decoy`]) and the usual iteration count, and fails
//! at the proof exactly like a wrong password.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::sasl::{same_identity, Authenticator, Credentials, SaslError, ScramCredentials};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The name SCRAM-SHA-256 keys are stored under (both the plain and the -PLUS mechanism
/// use them: RFC 5802 §4).
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// RFC 7677 §4: the iteration count is at least 4096.
pub const MIN_ITERATIONS: u32 = 4096;
/// Largest iteration count accepted from the configuration: every client pays it at
/// every login.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Default iteration count for new keys (see [`crate::PasswordParams::scram_iterations`]).
pub const DEFAULT_ITERATIONS: u32 = 100_000;
/// Length of a new salt, in octets.
pub const SALT_LEN: usize = 16;
/// Random octets in the server's part of the nonce (base64: 32 printable characters).
const SERVER_NONCE_OCTETS: usize = 24;
/// Longest client nonce accepted (characters).
const MAX_CLIENT_NONCE: usize = 512;
/// Longest SCRAM message accepted (octets).
const MAX_MESSAGE: usize = 4096;
/// Length of SHA-256 output: keys, proofs and signatures.
const KEY_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// RFC 5802 §2.2 HMAC(key, str) with SHA-256.
pub(crate) fn hmac(key: &[u8], data: &[u8]) -> [u8; KEY_LEN] {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mut mac = <HmacSha256 as hmac::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// RFC 5802 §2.2 H(str) with SHA-256.
pub(crate) fn h(data: &[u8]) -> [u8; KEY_LEN] {
    Sha256::digest(data).into()
}

/// RFC 5802 §2.2 Normalize(password): SASLprep (RFC 4013). Instead of implementing
/// SASLprep, we take the RFC's other option and refuse non-ASCII: keys are derived only
/// for passwords of printable US-ASCII, for which SASLprep changes nothing. `None`
/// means "no SCRAM keys for this password" (such a user logs in with PLAIN or LOGIN).
pub fn normalize_password(password: &[u8]) -> Option<&[u8]> {
    (!password.is_empty() && password.iter().all(|b| (0x20..=0x7e).contains(b))).then_some(password)
}

/// Stored keys derived from a password: RFC 5802 §3.
#[derive(Clone, PartialEq, Eq)]
pub struct DerivedKeys {
    /// StoredKey := H(ClientKey).
    pub stored_key: [u8; KEY_LEN],
    /// ServerKey := HMAC(SaltedPassword, "Server Key").
    pub server_key: [u8; KEY_LEN],
}

impl fmt::Debug for DerivedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKeys { .. }")
    }
}

/// RFC 5802 §3: SaltedPassword := Hi(Normalize(password), salt, i), then
/// ClientKey, StoredKey and ServerKey. `password` must already be normalised
/// ([`normalize_password`]). CPU-heavy for large `iterations`.
pub fn derive_keys(password: &[u8], salt: &[u8], iterations: u32) -> DerivedKeys {
    let mut salted = [0u8; KEY_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    DerivedKeys {
        stored_key: h(&client_key),
        server_key: hmac(&salted, b"Server Key"),
    }
}

/// A fresh random salt.
pub fn new_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    salt
}

/// The channel binding types the server can offer (RFC 5056 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelBindingType {
    /// RFC 9266: TLS exported keying material; the default for TLS 1.3.
    TlsExporter,
    /// RFC 5929 §4: the hash of the server's certificate.
    TlsServerEndPoint,
}

impl ChannelBindingType {
    /// Every type, in order of preference.
    pub const ALL: &'static [ChannelBindingType] = &[
        ChannelBindingType::TlsExporter,
        ChannelBindingType::TlsServerEndPoint,
    ];

    /// The registered name, as in `p=<name>` of the gs2 header.
    pub fn name(self) -> &'static str {
        match self {
            ChannelBindingType::TlsExporter => "tls-exporter",
            ChannelBindingType::TlsServerEndPoint => "tls-server-end-point",
        }
    }

    /// Parses a registered name (exact: cb-name is case-sensitive, RFC 5056 §2.1).
    pub fn from_name(name: &str) -> Option<Self> {
        ChannelBindingType::ALL
            .iter()
            .copied()
            .find(|t| t.name() == name)
    }
}

/// The channel binding data of one connection, taken at AUTH time (after STARTTLS).
/// Empty on a plaintext connection.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ChannelBindings {
    tls_exporter: Option<Vec<u8>>,
    tls_server_end_point: Option<Vec<u8>>,
}

impl fmt::Debug for ChannelBindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelBindings")
            .field("tls_exporter", &self.tls_exporter.is_some())
            .field("tls_server_end_point", &self.tls_server_end_point.is_some())
            .finish()
    }
}

impl ChannelBindings {
    /// No channel binding (a plaintext connection).
    pub fn none() -> Self {
        ChannelBindings::default()
    }

    /// The bindings a TLS connection can give; either may be missing.
    pub fn new(tls_exporter: Option<Vec<u8>>, tls_server_end_point: Option<Vec<u8>>) -> Self {
        ChannelBindings {
            tls_exporter,
            tls_server_end_point,
        }
    }

    /// The data of one type, if this connection has it.
    pub fn data(&self, kind: ChannelBindingType) -> Option<&[u8]> {
        match kind {
            ChannelBindingType::TlsExporter => self.tls_exporter.as_deref(),
            ChannelBindingType::TlsServerEndPoint => self.tls_server_end_point.as_deref(),
        }
    }

    /// Whether any binding exists (the connection is TLS).
    pub fn any(&self) -> bool {
        self.tls_exporter.is_some() || self.tls_server_end_point.is_some()
    }

    /// Whether SCRAM-SHA-256-PLUS is advertised on this connection: when `tls-exporter`
    /// is available, which is the default binding of TLS 1.3 (RFC 9266 §3). On TLS 1.2
    /// a client's default would be `tls-unique`, which we cannot give, so -PLUS is not
    /// advertised there (a client may still ask for it with `tls-server-end-point`).
    /// This is also "the server supports channel binding" of the `y` rule (RFC 5802 §6).
    pub fn advertise_plus(&self) -> bool {
        self.tls_exporter.is_some()
    }
}

/// The gs2-cbind-flag (RFC 5802 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CbindFlag {
    /// `n`: the client does not support channel binding.
    No,
    /// `y`: the client supports it but thinks the server does not.
    ClientSupports,
    /// `p=<cb-name>`: the client binds to this type.
    Bind(ChannelBindingType),
}

/// A parsed client-first-message (RFC 5802 §7).
#[derive(Debug)]
struct ClientFirst {
    flag: CbindFlag,
    /// The gs2-header, verbatim: `c=` of the client-final message repeats it.
    gs2_header: String,
    authzid: Option<String>,
    /// client-first-message-bare, verbatim (part of AuthMessage).
    bare: String,
    username: String,
    nonce: String,
}

/// A parsed client-final-message (RFC 5802 §7).
#[derive(Debug)]
struct ClientFinal<'a> {
    channel_binding: Vec<u8>,
    nonce: &'a str,
    without_proof: &'a str,
    proof: Vec<u8>,
}

fn utf8(msg: &[u8]) -> Result<&str, SaslError> {
    if msg.len() > MAX_MESSAGE {
        return Err(SaslError::Malformed("SCRAM message too long"));
    }
    let s =
        std::str::from_utf8(msg).map_err(|_| SaslError::Malformed("SCRAM message is not UTF-8"))?;
    if s.contains('\0') {
        return Err(SaslError::Malformed("NUL in SCRAM message"));
    }
    Ok(s)
}

/// RFC 5802 §5.1 saslname: `=2C` is ',' and `=3D` is '='; any other '=' is an error.
fn decode_saslname(s: &str) -> Result<String, SaslError> {
    if s.is_empty() {
        return Err(SaslError::Malformed("empty SCRAM user name"));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3);
        match esc {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => {
                return Err(SaslError::Malformed(
                    "invalid '=' escape in SCRAM user name",
                ))
            }
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.chars().any(char::is_control) {
        return Err(SaslError::Malformed("control character in identity"));
    }
    Ok(out)
}

/// RFC 5802 §7 `attr-val = ALPHA "=" value`: an optional extension. Unknown ones are
/// ignored; mandatory ones (`m=`) are refused by the caller.
fn check_extension(field: &str) -> Result<(), SaslError> {
    let b = field.as_bytes();
    if b.len() < 3 || !b[0].is_ascii_alphabetic() || b[1] != b'=' {
        return Err(SaslError::Malformed("invalid SCRAM attribute"));
    }
    Ok(())
}

/// RFC 5802 §7 `printable`: the nonce is printable ASCII except ','.
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// RFC 5802 §7 client-first-message.
fn parse_client_first(msg: &[u8]) -> Result<ClientFirst, SaslError> {
    let s = utf8(msg)?;
    let mut parts = s.splitn(3, ',');
    let (Some(flag), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SaslError::Malformed(
            "SCRAM client-first message needs a gs2 header",
        ));
    };
    let flag = match flag {
        "n" => CbindFlag::No,
        "y" => CbindFlag::ClientSupports,
        _ => {
            let Some(name) = flag.strip_prefix("p=") else {
                return Err(SaslError::Malformed("invalid gs2 channel binding flag"));
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                return Err(SaslError::Malformed("invalid channel binding name"));
            }
            match ChannelBindingType::from_name(name) {
                Some(t) => CbindFlag::Bind(t),
                None => return Err(SaslError::Malformed("unsupported channel binding type")),
            }
        }
    };
    let authzid = if authzid.is_empty() {
        None
    } else {
        let Some(name) = authzid.strip_prefix("a=") else {
            return Err(SaslError::Malformed("invalid gs2 authzid"));
        };
        Some(decode_saslname(name)?)
    };
    let gs2_header = s[..s.len() - bare.len()].to_string();
    let mut fields = bare.split(',');
    let first = fields.next().unwrap_or_default();
    if first.starts_with("m=") {
        // RFC 5802 §5.1: no mandatory extension is defined, so any is unsupported.
        return Err(SaslError::Malformed(
            "SCRAM mandatory extensions are not supported",
        ));
    }
    let Some(username) = first.strip_prefix("n=") else {
        return Err(SaslError::Malformed("SCRAM client-first message needs n="));
    };
    let username = decode_saslname(username)?;
    let Some(nonce) = fields.next().and_then(|f| f.strip_prefix("r=")) else {
        return Err(SaslError::Malformed("SCRAM client-first message needs r="));
    };
    if !valid_nonce(nonce) || nonce.len() > MAX_CLIENT_NONCE {
        return Err(SaslError::Malformed("invalid SCRAM client nonce"));
    }
    for ext in fields {
        check_extension(ext)?;
    }
    Ok(ClientFirst {
        flag,
        gs2_header,
        authzid,
        bare: bare.to_string(),
        username,
        nonce: nonce.to_string(),
    })
}

/// RFC 5802 §7 client-final-message.
fn parse_client_final(msg: &[u8]) -> Result<ClientFinal<'_>, SaslError> {
    let s = utf8(msg)?;
    let Some(cut) = s.rfind(",p=") else {
        return Err(SaslError::Malformed("SCRAM client-final message needs p="));
    };
    let (without_proof, proof) = (&s[..cut], &s[cut + 3..]);
    let mut fields = without_proof.split(',');
    let Some(cb) = fields.next().and_then(|f| f.strip_prefix("c=")) else {
        return Err(SaslError::Malformed("SCRAM client-final message needs c="));
    };
    let Some(nonce) = fields.next().and_then(|f| f.strip_prefix("r=")) else {
        return Err(SaslError::Malformed("SCRAM client-final message needs r="));
    };
    for ext in fields {
        check_extension(ext)?;
    }
    let channel_binding = B64
        .decode(cb)
        .map_err(|_| SaslError::Malformed("invalid base64 in SCRAM c="))?;
    let proof = B64
        .decode(proof)
        .map_err(|_| SaslError::Malformed("invalid base64 in SCRAM p="))?;
    if proof.len() != KEY_LEN {
        return Err(SaslError::Malformed("SCRAM proof has the wrong length"));
    }
    Ok(ClientFinal {
        channel_binding,
        nonce,
        without_proof,
        proof,
    })
}

/// The state between server-first and client-final.
pub(crate) struct Exchange {
    authcid: String,
    authzid: Option<String>,
    /// The account and its keys; `None` for the decoy of an unknown account.
    account: Option<String>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    /// What `c=` must decode to: the gs2 header, then the binding data for `p=`.
    expected_cb: Vec<u8>,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("authcid", &self.authcid)
            .finish_non_exhaustive()
    }
}

/// How the client-final message ended the exchange.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Send `server_final` (`v=...`); the client then answers with an empty response.
    Success {
        server_final: Vec<u8>,
        credentials: Credentials,
    },
    /// Send `server_final` (`e=...`); the exchange has failed for `authcid`.
    Failure {
        server_final: Vec<u8>,
        authcid: String,
    },
}

/// What one SCRAM exchange knows of its mechanism and connection.
pub(crate) struct ScramParams<'a> {
    /// SCRAM-SHA-256-PLUS (channel binding required) rather than SCRAM-SHA-256.
    pub plus: bool,
    pub bindings: &'a ChannelBindings,
    /// The server nonce to use instead of a random one (tests only).
    pub server_nonce: Option<&'a str>,
}

/// RFC 5802 §5: the client-first message. Returns the server-first message.
pub(crate) fn client_first(
    params: &ScramParams<'_>,
    auth: &dyn Authenticator,
    msg: &[u8],
) -> Result<(Vec<u8>, Exchange), SaslError> {
    let cf = parse_client_first(msg)?;
    // RFC 5802 §6: -PLUS needs "p="; the plain mechanism must not carry it.
    let cb_data: &[u8] = match (params.plus, cf.flag) {
        (true, CbindFlag::Bind(kind)) => params.bindings.data(kind).ok_or(SaslError::Malformed(
            "channel binding type not available on this connection",
        ))?,
        (true, _) => {
            return Err(SaslError::Malformed(
                "SCRAM-SHA-256-PLUS needs channel binding (p=)",
            ))
        }
        (false, CbindFlag::Bind(_)) => {
            return Err(SaslError::Malformed(
                "channel binding needs SCRAM-SHA-256-PLUS",
            ))
        }
        (false, _) => &[],
    };
    let authcid = cf.username;
    auth.admit(&authcid)?;
    let authzid = match cf.authzid {
        Some(z) if !same_identity(&z, &authcid) => {
            auth.outcome(&authcid, None);
            return Err(SaslError::AuthzidNotPermitted {
                authcid,
                authzid: z,
            });
        }
        z => z,
    };
    if cf.flag == CbindFlag::ClientSupports && params.bindings.advertise_plus() {
        // RFC 5802 §6: the client supports channel binding and believes we do not,
        // yet we advertised -PLUS: someone removed it from the list.
        tracing::info!(login = %authcid, "SCRAM 'y' flag while -PLUS is offered: possible downgrade");
        auth.outcome(&authcid, None);
        return Err(SaslError::AuthenticationFailed { authcid });
    }
    let creds = auth.scram_credentials(&authcid, SCRAM_SHA_256)?;
    let (account, salt, iterations, stored_key, server_key) = match creds {
        Some(ScramCredentials {
            account,
            salt,
            iterations,
            stored_key,
            server_key,
        }) => (Some(account), salt, iterations, stored_key, server_key),
        None => {
            let (salt, iterations) = auth.scram_decoy(&authcid, SCRAM_SHA_256)?;
            let mut fake = [0u8; 2 * KEY_LEN];
            rand::rngs::OsRng.fill_bytes(&mut fake);
            let (a, b) = fake.split_at(KEY_LEN);
            (None, salt, iterations, a.to_vec(), b.to_vec())
        }
    };
    let server_nonce = match params.server_nonce {
        Some(n) => n.to_string(),
        None => {
            let mut raw = [0u8; SERVER_NONCE_OCTETS];
            rand::rngs::OsRng.fill_bytes(&mut raw);
            B64.encode(raw)
        }
    };
    let nonce = format!("{}{server_nonce}", cf.nonce);
    let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
    let mut expected_cb = cf.gs2_header.into_bytes();
    expected_cb.extend_from_slice(cb_data);
    let exchange = Exchange {
        authcid,
        authzid,
        account,
        stored_key,
        server_key,
        client_first_bare: cf.bare,
        server_first: server_first.clone(),
        nonce,
        expected_cb,
    };
    Ok((server_first.into_bytes(), exchange))
}

/// RFC 5802 §5: the client-final message; verifies the channel binding and the proof.
pub(crate) fn client_final(
    ex: Exchange,
    auth: &dyn Authenticator,
    msg: &[u8],
) -> Result<Verdict, SaslError> {
    let cf = parse_client_final(msg)?;
    if cf.nonce != ex.nonce {
        return Err(SaslError::Malformed("SCRAM nonce does not match"));
    }
    let fail = |error: &str| {
        auth.outcome(&ex.authcid, None);
        Ok(Verdict::Failure {
            server_final: format!("e={error}").into_bytes(),
            authcid: ex.authcid.clone(),
        })
    };
    if !bool::from(cf.channel_binding.ct_eq(&ex.expected_cb)) {
        return fail("channel-bindings-dont-match");
    }
    // RFC 5802 §3: AuthMessage, ClientSignature, ClientKey = ClientProof XOR ClientSignature.
    let auth_message = format!(
        "{},{},{}",
        ex.client_first_bare, ex.server_first, cf.without_proof
    );
    let client_signature = hmac(&ex.stored_key, auth_message.as_bytes());
    let mut client_key = [0u8; KEY_LEN];
    for (k, (p, s)) in client_key
        .iter_mut()
        .zip(cf.proof.iter().zip(client_signature.iter()))
    {
        *k = p ^ s;
    }
    let matches: bool = h(&client_key).ct_eq(ex.stored_key.as_slice()).into();
    let account = match (&ex.account, matches) {
        (Some(account), true) => account.clone(),
        _ => return fail("invalid-proof"),
    };
    auth.outcome(&ex.authcid, Some(&account));
    let server_signature = hmac(&ex.server_key, auth_message.as_bytes());
    Ok(Verdict::Success {
        server_final: format!("v={}", B64.encode(server_signature)).into_bytes(),
        credentials: Credentials {
            account,
            authzid: ex.authzid,
        },
    })
}

/// A decoy salt for `name`: HMAC of the name under a secret, so the same name always
/// gets the same salt and nobody without the secret can tell it from a real one.
pub fn decoy_salt(secret: &[u8], mechanism: &str, name: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(mechanism.len() + name.len() + 16);
    data.extend_from_slice(b"postern decoy salt\0");
    data.extend_from_slice(mechanism.as_bytes());
    data.push(0);
    data.extend_from_slice(name.as_bytes());
    hmac(secret, &data)[..SALT_LEN].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7677_keys() {
        // RFC 7677 §3: user "user", password "pencil".
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let k = derive_keys(b"pencil", &salt, 4096);
        let first = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let am = format!("{first},{server},{fin}");
        assert_eq!(
            B64.encode(hmac(&k.server_key, am.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn saslnames() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert_eq!(decode_saslname("plain").unwrap(), "plain");
        for bad in ["", "a=2", "a=", "a=2c", "a=41", "a\u{7}b"] {
            assert!(decode_saslname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn password_normalisation() {
        assert_eq!(normalize_password(b"pencil pen"), Some(&b"pencil pen"[..]));
        assert_eq!(normalize_password(b""), None);
        assert_eq!(normalize_password("pässwort".as_bytes()), None);
        assert_eq!(normalize_password(b"tab\there"), None);
    }

    #[test]
    fn client_first_syntax() {
        let cf = parse_client_first(b"n,,n=user,r=abc").unwrap();
        assert_eq!(cf.flag, CbindFlag::No);
        assert_eq!(cf.gs2_header, "n,,");
        assert_eq!(cf.bare, "n=user,r=abc");
        let cf = parse_client_first(b"p=tls-exporter,a=u=3Dx,n=u=3Dx,r=abc,x=ext").unwrap();
        assert_eq!(cf.flag, CbindFlag::Bind(ChannelBindingType::TlsExporter));
        assert_eq!(cf.authzid.as_deref(), Some("u=x"));
        assert_eq!(cf.gs2_header, "p=tls-exporter,a=u=3Dx,");
        for bad in [
            &b"n,n=user,r=abc"[..],
            b"x,,n=user,r=abc",
            b"p=tls-unique,,n=user,r=abc",
            b"p=,,n=user,r=abc",
            b"n,b=user,n=user,r=abc",
            b"n,,m=ext,n=user,r=abc",
            b"n,,r=abc,n=user",
            b"n,,n=user",
            b"n,,n=user,r=",
            b"n,,n=user,r=a b",
            b"n,,n=,r=abc",
            b"n,,n=user,r=abc,=x",
            b"n,,n=user,r=abc,1=x",
            b"n,,n=us\xffer,r=abc",
            b"n,,n=us\0er,r=abc",
        ] {
            assert!(
                parse_client_first(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn client_final_syntax() {
        let p = B64.encode([7u8; 32]);
        let msg = format!("c=biws,r=abc,p={p}");
        let cf = parse_client_final(msg.as_bytes()).unwrap();
        assert_eq!(cf.channel_binding, b"n,,");
        assert_eq!(cf.nonce, "abc");
        assert_eq!(cf.without_proof, "c=biws,r=abc");
        for bad in [
            "c=biws,r=abc".to_string(),
            format!("r=abc,c=biws,p={p}"),
            format!("c=biws,p={p}"),
            format!("c=b!ws,r=abc,p={p}"),
            "c=biws,r=abc,p=AAAA".to_string(),
            format!("c=biws,r=abc,p={p}x"),
        ] {
            assert!(parse_client_final(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn decoy_is_deterministic_and_secret_dependent() {
        let a = decoy_salt(b"k1", SCRAM_SHA_256, "nobody@example.org");
        assert_eq!(a.len(), SALT_LEN);
        assert_eq!(a, decoy_salt(b"k1", SCRAM_SHA_256, "nobody@example.org"));
        assert_ne!(a, decoy_salt(b"k2", SCRAM_SHA_256, "nobody@example.org"));
        assert_ne!(a, decoy_salt(b"k1", SCRAM_SHA_256, "other@example.org"));
    }
}
