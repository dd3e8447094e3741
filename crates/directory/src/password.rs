//! Password hashing and verification.
//!
//! New hashes are argon2id PHC strings (RFC 9106). For importing existing users,
//! verification also accepts what `/etc/shadow`, Dovecot passwd-files, SQL user
//! tables of Postfix/Dovecot setups (postfixadmin) and LDAP directories hold:
//!
//! * crypt(3) strings, with or without a Dovecot `{SCHEME}` prefix such as
//!   `{SHA512-CRYPT}` or `{CRYPT}`: SHA-512-crypt (`$6$`), SHA-256-crypt (`$5$`),
//!   yescrypt (`$y$`), bcrypt (`$2a$`, `$2b$`, `$2y$`) and MD5-crypt (`$1$`,
//!   implemented here from its definition, module `md5_crypt`). They identify
//!   themselves and are stored without the prefix.
//! * Dovecot's prefixed schemes, whose body does not say what it is, so they are
//!   stored with their `{SCHEME}` prefix: `{SSHA}`, `{SSHA256}`, `{SSHA512}`
//!   (base64 of `H(password ‖ salt) ‖ salt`), `{SHA}`, `{SHA256}`, `{SHA512}`
//!   (`H(password)`, base64 or hex), and `{PLAIN}` (alias `{CLEAR}`, `{CLEARTEXT}`):
//!   the password itself, accepted only to migrate such installations.
//!
//! A successful verification against anything but argon2id with at least the
//! configured cost reports `needs_rehash`, so the caller can store a fresh argon2id
//! hash: every legacy hash, the plaintext included, is gone after the first login.
//!
//! Comparisons are constant-time: the schemes' own verifiers, or
//! [`subtle::ConstantTimeEq`] over equal-length digests for those written here.
//! Cost parameters read from a hash are bounded so that a hostile or mistyped
//! imported hash cannot make one login allocate gigabytes or run for hours.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use rand::RngCore;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use crate::error::{DirectoryError, Result};
use crate::md5_crypt;

/// Largest memory cost (KiB) accepted from an argon2 hash: 1 GiB.
const MAX_ARGON2_M_KIB: u32 = 1024 * 1024;
/// Largest time cost accepted from an argon2 hash.
const MAX_ARGON2_T: u32 = 64;
/// Largest parallelism accepted from an argon2 hash.
const MAX_ARGON2_P: u32 = 64;
/// Largest `rounds=` accepted from a SHA-crypt hash.
const MAX_SHA_CRYPT_ROUNDS: u64 = 10_000_000;
/// Largest bcrypt cost accepted.
const MAX_BCRYPT_COST: u32 = 18;
/// Largest yescrypt memory (128·N·r bytes) accepted: 1 GiB.
const MAX_YESCRYPT_BYTES: u128 = 1 << 30;
/// Longest salt accepted in a `{SSHA*}` hash (Dovecot makes 4 bytes, others up to 16).
const MAX_SSHA_SALT: usize = 256;
/// Longest `{PLAIN}` password accepted.
const MAX_PLAIN_LEN: usize = 1024;

/// Cost parameters for new argon2id hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory cost in KiB.
    pub m_cost_kib: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Degree of parallelism.
    pub p_cost: u32,
    /// PBKDF2 iteration count of new SCRAM-SHA-256 keys (RFC 7677 §4: at least 4096;
    /// see [`crate::scram::DEFAULT_ITERATIONS`]). Keys with fewer iterations are
    /// re-derived at the next plaintext login.
    pub scram_iterations: u32,
}

impl Default for PasswordParams {
    /// OWASP's argon2id recommendation: m = 19 MiB, t = 2, p = 1.
    fn default() -> Self {
        PasswordParams {
            m_cost_kib: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
            scram_iterations: crate::scram::DEFAULT_ITERATIONS,
        }
    }
}

impl PasswordParams {
    /// Very cheap parameters for test suites (of this and other crates).
    /// Never use them for real accounts.
    pub const fn insecure_fast_for_tests() -> Self {
        PasswordParams {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
            scram_iterations: crate::scram::MIN_ITERATIONS,
        }
    }

    fn argon2(&self) -> Result<argon2::Argon2<'static>> {
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, None)
            .map_err(|e| DirectoryError::Hashing(format!("invalid argon2 parameters: {e}")))?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }
}

/// The password hash schemes the directory can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashScheme {
    /// argon2id PHC string (`$argon2id$…`), RFC 9106. The only scheme used for new hashes.
    Argon2id,
    /// argon2i PHC string.
    Argon2i,
    /// argon2d PHC string.
    Argon2d,
    /// SHA-512-crypt (`$6$`).
    Sha512Crypt,
    /// SHA-256-crypt (`$5$`).
    Sha256Crypt,
    /// yescrypt (`$y$`).
    Yescrypt,
    /// bcrypt (`$2a$`, `$2b$`, `$2y$`).
    Bcrypt,
    /// MD5-crypt (`$1$`), the FreeBSD/glibc scheme (old postfixadmin default).
    Md5Crypt,
    /// Dovecot `{SSHA}`: base64 of SHA-1(password ‖ salt) ‖ salt.
    Ssha,
    /// Dovecot `{SSHA256}`: as `{SSHA}` with SHA-256.
    Ssha256,
    /// Dovecot `{SSHA512}`: as `{SSHA}` with SHA-512.
    Ssha512,
    /// Dovecot `{SHA}` (alias `{SHA1}`): SHA-1(password), base64 or hex.
    Sha1,
    /// Dovecot `{SHA256}`: SHA-256(password), base64 or hex.
    Sha256,
    /// Dovecot `{SHA512}`: SHA-512(password), base64 or hex.
    Sha512,
    /// Dovecot `{PLAIN}` (aliases `{CLEAR}`, `{CLEARTEXT}`): the password itself.
    /// Only for migrating: it is replaced by argon2id at the first login.
    Plain,
}

impl HashScheme {
    /// A short name for display (the Dovecot scheme name where there is one).
    pub fn name(self) -> &'static str {
        match self {
            HashScheme::Argon2id => "ARGON2ID",
            HashScheme::Argon2i => "ARGON2I",
            HashScheme::Argon2d => "ARGON2D",
            HashScheme::Sha512Crypt => "SHA512-CRYPT",
            HashScheme::Sha256Crypt => "SHA256-CRYPT",
            HashScheme::Yescrypt => "YESCRYPT",
            HashScheme::Bcrypt => "BLF-CRYPT",
            HashScheme::Md5Crypt => "MD5-CRYPT",
            HashScheme::Ssha => "SSHA",
            HashScheme::Ssha256 => "SSHA256",
            HashScheme::Ssha512 => "SSHA512",
            HashScheme::Sha1 => "SHA",
            HashScheme::Sha256 => "SHA256",
            HashScheme::Sha512 => "SHA512",
            HashScheme::Plain => "PLAIN",
        }
    }

    /// Whether the stored form keeps the `{SCHEME}` prefix: the body of these
    /// schemes (base64, hex, plaintext) does not identify itself.
    pub fn stored_with_prefix(self) -> bool {
        Self::from_prefix_only(self.name()) == Some(self)
    }

    /// The schemes recognised by their Dovecot prefix alone.
    fn from_prefix_only(prefix: &str) -> Option<HashScheme> {
        Some(match prefix.to_ascii_uppercase().as_str() {
            "SSHA" => HashScheme::Ssha,
            "SSHA256" => HashScheme::Ssha256,
            "SSHA512" => HashScheme::Ssha512,
            "SHA" | "SHA1" => HashScheme::Sha1,
            "SHA256" => HashScheme::Sha256,
            "SHA512" => HashScheme::Sha512,
            "PLAIN" | "CLEAR" | "CLEARTEXT" => HashScheme::Plain,
            _ => return None,
        })
    }

    /// Digest length of the SHA family schemes.
    fn sha_len(self) -> Option<usize> {
        match self {
            HashScheme::Ssha | HashScheme::Sha1 => Some(20),
            HashScheme::Ssha256 | HashScheme::Sha256 => Some(32),
            HashScheme::Ssha512 | HashScheme::Sha512 => Some(64),
            _ => None,
        }
    }

    fn is_salted_sha(self) -> bool {
        matches!(
            self,
            HashScheme::Ssha | HashScheme::Ssha256 | HashScheme::Ssha512
        )
    }

    fn is_argon2(self) -> bool {
        matches!(
            self,
            HashScheme::Argon2id | HashScheme::Argon2i | HashScheme::Argon2d
        )
    }
}

impl fmt::Display for HashScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Outcome of checking a password against a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The password matches.
    pub matched: bool,
    /// The hash is legacy or weaker than the configured parameters; store a new one
    /// after a successful login.
    pub needs_rehash: bool,
}

/// Hashes a password as an argon2id PHC string with a random 16-byte salt.
pub fn hash_password(password: &[u8], params: &PasswordParams) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| DirectoryError::Hashing(format!("salt encoding: {e}")))?;
    let hash = params
        .argon2()?
        .hash_password(password, &salt)
        .map_err(|e| DirectoryError::Hashing(e.to_string()))?;
    Ok(hash.to_string())
}

/// Dovecot scheme prefixes and the crypt formats each may carry.
fn prefix_allows(prefix: &str, scheme: HashScheme) -> Option<bool> {
    let p = prefix.to_ascii_uppercase();
    let allowed = match p.as_str() {
        "ARGON2ID" => scheme == HashScheme::Argon2id,
        "ARGON2I" => scheme == HashScheme::Argon2i,
        "ARGON2D" => scheme == HashScheme::Argon2d,
        "SHA512-CRYPT" => scheme == HashScheme::Sha512Crypt,
        "SHA256-CRYPT" => scheme == HashScheme::Sha256Crypt,
        "BLF-CRYPT" | "BCRYPT" => scheme == HashScheme::Bcrypt,
        "YESCRYPT" => scheme == HashScheme::Yescrypt,
        // Dovecot's MD5 is an alias of MD5-CRYPT (its plain MD5 is PLAIN-MD5).
        "MD5-CRYPT" | "MD5" => scheme == HashScheme::Md5Crypt,
        // {CRYPT} is "whatever crypt(3) understands".
        "CRYPT" => !scheme.is_argon2(),
        _ => return None,
    };
    Some(allowed)
}

/// Identifies a stored or imported hash. Returns the scheme and the hash with any
/// Dovecot `{SCHEME}` prefix removed (see [`validate_hash`] for the stored form).
///
/// Surrounding white space is ignored, except after `{PLAIN}`: there everything up
/// to the end is the password.
pub fn identify(hash: &str) -> Result<(HashScheme, &str)> {
    let trimmed = hash.trim_start();
    let (prefix, body) = match trimmed.strip_prefix('{') {
        Some(rest) => match rest.split_once('}') {
            Some((p, b)) => (Some(p), b),
            None => {
                return Err(DirectoryError::MalformedHash(
                    "unterminated {SCHEME} prefix".into(),
                ))
            }
        },
        None => (None, trimmed),
    };
    if let Some(scheme) = prefix.and_then(HashScheme::from_prefix_only) {
        let body = if scheme == HashScheme::Plain {
            body
        } else {
            body.trim_end()
        };
        return Ok((scheme, body));
    }
    let body = body.trim_end();
    let scheme = if body.starts_with("$argon2id$") {
        HashScheme::Argon2id
    } else if body.starts_with("$argon2i$") {
        HashScheme::Argon2i
    } else if body.starts_with("$argon2d$") {
        HashScheme::Argon2d
    } else if body.starts_with("$6$") {
        HashScheme::Sha512Crypt
    } else if body.starts_with("$5$") {
        HashScheme::Sha256Crypt
    } else if body.starts_with("$y$") {
        HashScheme::Yescrypt
    } else if body.starts_with("$2a$") || body.starts_with("$2b$") || body.starts_with("$2y$") {
        HashScheme::Bcrypt
    } else if body.starts_with(md5_crypt::MAGIC) {
        HashScheme::Md5Crypt
    } else {
        let shown = match prefix {
            Some(p) => format!("{{{p}}}"),
            None => body
                .split('$')
                .nth(1)
                .map_or_else(|| crate::error::shorten(body), |id| format!("${id}$")),
        };
        return Err(DirectoryError::UnsupportedHashScheme(shown));
    };
    if let Some(p) = prefix {
        match prefix_allows(p, scheme) {
            Some(true) => {}
            Some(false) => {
                return Err(DirectoryError::MalformedHash(format!(
                    "prefix {{{p}}} does not match a {} hash",
                    scheme.name()
                )))
            }
            None => return Err(DirectoryError::UnsupportedHashScheme(format!("{{{p}}}"))),
        }
    }
    Ok((scheme, body))
}

/// Checks that a hash is well-formed, supported and within the cost bounds,
/// returning the form to store. Used when importing hashes.
///
/// The stored form of a self-identifying crypt(3) or PHC string is the string
/// without its prefix; the others keep a canonical `{SCHEME}` prefix
/// ([`HashScheme::stored_with_prefix`]), e.g. `{CLEAR}pw` is stored as `{PLAIN}pw`.
pub fn validate_hash(hash: &str) -> Result<(HashScheme, String)> {
    let (scheme, body) = identify(hash)?;
    check_costs(scheme, body)?;
    let stored = if scheme.stored_with_prefix() {
        format!("{{{}}}{body}", scheme.name())
    } else {
        body.to_string()
    };
    Ok((scheme, stored))
}

fn malformed(scheme: HashScheme, what: impl fmt::Display) -> DirectoryError {
    DirectoryError::MalformedHash(format!("{}: {what}", scheme.name()))
}

/// Parses and bounds the cost parameters of a hash, and checks the shape of the
/// schemes that have no cost.
fn check_costs(scheme: HashScheme, body: &str) -> Result<()> {
    match scheme {
        HashScheme::Md5Crypt => md5_crypt::parse(body)
            .map(|_| ())
            .map_err(|e| malformed(scheme, e)),
        HashScheme::Ssha
        | HashScheme::Ssha256
        | HashScheme::Ssha512
        | HashScheme::Sha1
        | HashScheme::Sha256
        | HashScheme::Sha512 => sha_parts(scheme, body).map(|_| ()),
        HashScheme::Plain => {
            if body.is_empty() {
                Err(malformed(scheme, "empty password"))
            } else if body.len() > MAX_PLAIN_LEN {
                Err(malformed(scheme, "longer than 1024 bytes"))
            } else {
                Ok(())
            }
        }
        HashScheme::Argon2id | HashScheme::Argon2i | HashScheme::Argon2d => {
            let parsed = PasswordHash::new(body).map_err(|e| malformed(scheme, e))?;
            let params = argon2::Params::try_from(&parsed).map_err(|e| malformed(scheme, e))?;
            if parsed.hash.is_none() || parsed.salt.is_none() {
                return Err(malformed(scheme, "missing salt or hash"));
            }
            if params.m_cost() > MAX_ARGON2_M_KIB
                || params.t_cost() > MAX_ARGON2_T
                || params.p_cost() > MAX_ARGON2_P
            {
                return Err(malformed(
                    scheme,
                    "cost parameters exceed the allowed maximum",
                ));
            }
            Ok(())
        }
        HashScheme::Sha512Crypt | HashScheme::Sha256Crypt => {
            let mut fields = body.split('$').skip(2);
            let first = fields
                .next()
                .ok_or_else(|| malformed(scheme, "missing salt"))?;
            let rounds = match first.strip_prefix("rounds=") {
                Some(r) => {
                    let r: u64 = r.parse().map_err(|_| malformed(scheme, "bad rounds="))?;
                    fields
                        .next()
                        .ok_or_else(|| malformed(scheme, "missing salt"))?;
                    r
                }
                None => 5000,
            };
            let digest = fields
                .next()
                .ok_or_else(|| malformed(scheme, "missing hash"))?;
            let expected_len = if scheme == HashScheme::Sha512Crypt {
                86
            } else {
                43
            };
            if digest.len() != expected_len || fields.next().is_some() {
                return Err(malformed(scheme, "wrong hash length"));
            }
            if !digest.bytes().all(is_crypt_b64) {
                return Err(malformed(scheme, "invalid character in hash"));
            }
            if rounds > MAX_SHA_CRYPT_ROUNDS {
                return Err(malformed(scheme, "rounds exceed the allowed maximum"));
            }
            Ok(())
        }
        HashScheme::Bcrypt => {
            let cost: u32 = body
                .get(4..6)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| malformed(scheme, "bad cost"))?;
            if body.len() != 60 || body.as_bytes().get(6) != Some(&b'$') {
                return Err(malformed(scheme, "wrong length"));
            }
            if !(4..=MAX_BCRYPT_COST).contains(&cost) {
                return Err(malformed(scheme, "cost outside 4..=18"));
            }
            Ok(())
        }
        HashScheme::Yescrypt => {
            let mut fields = body.split('$').skip(2);
            let params = fields
                .next()
                .ok_or_else(|| malformed(scheme, "missing parameters"))?;
            let params = yescrypt::Params::from_str(params)
                .map_err(|_| malformed(scheme, "bad parameters"))?;
            let bytes = 128u128 * u128::from(params.n()) * u128::from(params.r());
            if bytes > MAX_YESCRYPT_BYTES || params.p() > 1 {
                return Err(malformed(scheme, "parameters exceed the allowed maximum"));
            }
            let salt = fields
                .next()
                .ok_or_else(|| malformed(scheme, "missing salt"))?;
            let digest = fields
                .next()
                .ok_or_else(|| malformed(scheme, "missing hash"))?;
            if salt.is_empty() || digest.is_empty() || fields.next().is_some() {
                return Err(malformed(scheme, "wrong field count"));
            }
            Ok(())
        }
    }
}

fn is_crypt_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

/// The digest and salt of a `{SSHA*}` or `{SHA*}` body.
///
/// Dovecot's definitions (its "Password Schemes" documentation): the salted
/// schemes are the base64 (RFC 4648 §4, padded) of the digest followed by the salt,
/// which must not be empty (`doveadm pw -t` refuses a bare digest as "too short");
/// the unsalted ones are the digest in base64 or, as Dovecot also accepts for
/// fixed-length schemes, in hex. The two encodings of one digest length have
/// different lengths, so the choice is never ambiguous.
fn sha_parts(scheme: HashScheme, body: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    let Some(n) = scheme.sha_len() else {
        return Err(malformed(scheme, "not a SHA scheme"));
    };
    if scheme.is_salted_sha() {
        if body.len() > (n + MAX_SSHA_SALT).div_ceil(3) * 4 {
            return Err(malformed(scheme, "salt longer than 256 bytes"));
        }
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| malformed(scheme, format!("invalid base64: {e}")))?;
        if raw.len() <= n {
            return Err(malformed(
                scheme,
                format!(
                    "{} bytes decoded, a {n}-byte digest and a salt expected",
                    raw.len()
                ),
            ));
        }
        let salt = raw.split_off(n);
        return Ok((raw, salt));
    }
    let wrong_length = || {
        malformed(
            scheme,
            format!(
                "wrong length: a {n}-byte digest is {} base64 or {} hex characters",
                n.div_ceil(3) * 4,
                2 * n
            ),
        )
    };
    let digest = if body.len() == 2 * n {
        decode_hex(body).ok_or_else(|| malformed(scheme, "invalid hex"))?
    } else {
        match base64::engine::general_purpose::STANDARD.decode(body) {
            Ok(d) => d,
            // n is 20, 32 or 64, never a multiple of 3: its base64 ends in '=', so
            // a string of hex digits is hex of the wrong length.
            Err(_) if !body.is_empty() && body.bytes().all(|b| b.is_ascii_hexdigit()) => {
                return Err(wrong_length())
            }
            Err(e) => return Err(malformed(scheme, format!("invalid base64: {e}"))),
        }
    };
    if digest.len() != n {
        return Err(wrong_length());
    }
    Ok((digest, Vec::new()))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let digit = |b: u8| char::from(b).to_digit(16);
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some((digit(*hi)? * 16 + digit(*lo)?) as u8),
            _ => None,
        })
        .collect()
}

/// `H(password ‖ salt)` for the SHA family.
fn sha_digest(scheme: HashScheme, password: &[u8], salt: &[u8]) -> Vec<u8> {
    fn run<D: sha2::Digest>(password: &[u8], salt: &[u8]) -> Vec<u8> {
        D::new()
            .chain_update(password)
            .chain_update(salt)
            .finalize()
            .to_vec()
    }
    match scheme.sha_len() {
        Some(20) => run::<sha1::Sha1>(password, salt),
        Some(32) => run::<sha2::Sha256>(password, salt),
        _ => run::<sha2::Sha512>(password, salt),
    }
}

/// Verifies `password` against a stored hash (any supported scheme).
///
/// `params` are the current argon2id parameters: an argon2 hash weaker than them,
/// or a hash of another scheme, is reported as `needs_rehash` when it matches.
/// An `Err` means the stored hash itself is unusable (malformed or unsupported),
/// never that the password was wrong.
pub fn verify_password(
    password: &[u8],
    stored: &str,
    params: &PasswordParams,
) -> Result<Verification> {
    let (scheme, body) = identify(stored)?;
    check_costs(scheme, body)?;
    let matched = match scheme {
        HashScheme::Md5Crypt => {
            let parsed = md5_crypt::parse(body).map_err(|e| malformed(scheme, e))?;
            let computed = md5_crypt::checksum(password, parsed.salt.as_bytes());
            bool::from(computed.as_bytes().ct_eq(parsed.checksum.as_bytes()))
        }
        HashScheme::Ssha
        | HashScheme::Ssha256
        | HashScheme::Ssha512
        | HashScheme::Sha1
        | HashScheme::Sha256
        | HashScheme::Sha512 => {
            let (digest, salt) = sha_parts(scheme, body)?;
            bool::from(sha_digest(scheme, password, &salt).ct_eq(&digest))
        }
        HashScheme::Plain => {
            // Compared as digests, so that neither the content nor the length of
            // the stored password shows in the timing.
            let stored = sha2::Sha512::digest(body.as_bytes());
            bool::from(sha2::Sha512::digest(password).ct_eq(&stored))
        }
        HashScheme::Argon2id | HashScheme::Argon2i | HashScheme::Argon2d => {
            let parsed = PasswordHash::new(body).map_err(|e| malformed(scheme, e))?;
            match argon2::Argon2::default().verify_password(password, &parsed) {
                Ok(()) => true,
                Err(argon2::password_hash::Error::Password) => false,
                Err(e) => return Err(malformed(scheme, e)),
            }
        }
        HashScheme::Sha512Crypt | HashScheme::Sha256Crypt => {
            // crypt(3) passwords are C strings: the sha-crypt API takes &str, so a
            // password that is not UTF-8 cannot match a hash made by it.
            match std::str::from_utf8(password) {
                Ok(pw) => {
                    let r = if scheme == HashScheme::Sha512Crypt {
                        sha_crypt::sha512_check(pw, body)
                    } else {
                        sha_crypt::sha256_check(pw, body)
                    };
                    match r {
                        Ok(()) => true,
                        // The crate does not export its error type; its Debug
                        // form is the only way to tell a mismatch from bad input.
                        Err(e) => {
                            let e = format!("{e:?}");
                            if e == "HashMismatch" {
                                false
                            } else {
                                return Err(malformed(scheme, e));
                            }
                        }
                    }
                }
                Err(_) => false,
            }
        }
        HashScheme::Bcrypt => bcrypt::verify(password, body).map_err(|e| malformed(scheme, e))?,
        HashScheme::Yescrypt => {
            use yescrypt::PasswordVerifier as _;
            match yescrypt::Yescrypt::default().verify_password(password, body) {
                Ok(()) => true,
                Err(yescrypt::password_hash::Error::PasswordInvalid) => false,
                Err(e) => return Err(malformed(scheme, e)),
            }
        }
    };
    let needs_rehash = matched && argon2_needs_rehash(scheme, body, params);
    Ok(Verification {
        matched,
        needs_rehash,
    })
}

fn argon2_needs_rehash(scheme: HashScheme, body: &str, params: &PasswordParams) -> bool {
    if scheme != HashScheme::Argon2id {
        return true;
    }
    let Ok(parsed) = PasswordHash::new(body) else {
        return true;
    };
    let Ok(p) = argon2::Params::try_from(&parsed) else {
        return true;
    };
    let old_version = parsed
        .version
        .is_some_and(|v| v != argon2::Version::V0x13 as u32);
    old_version || p.m_cost() < params.m_cost_kib || p.t_cost() < params.t_cost
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: PasswordParams = PasswordParams::insecure_fast_for_tests();

    // Known-answer vectors made on the development machine with
    // `openssl passwd -6/-5 -salt saltsalt hunter2` and glibc/libxcrypt crypt(3)
    // (Python's crypt module) for yescrypt and bcrypt.
    const SHA512: &str = "$6$saltsalt$8iYtNHxjWRl.NF6oNZ5tF.iKFlQREaXBLlSmZKP6dy9l5z3vsooWNW0/GZ6Nej73/TFug6pIPSqbJoCT6dfnj.";
    const SHA512_ROUNDS: &str = "$6$rounds=1000$saltsalt$gqUcWLKt3d1wsoaFq/ZlFXJndu400B3QqT3noJu6R/eEGKKt5.bf/H7jRZdxjThW3JpMB1IX.1Z2f5cgwsF710";
    const SHA256: &str = "$5$saltsalt$OIdfjX.u4Y3SJ4I2bX8w5BMf1VAUhHABNUirScDzZi3";
    const YESCRYPT: &str =
        "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$PmNgGTLMFjJn.URBv11CpTEm5RwlKtPjRtztKe6.b33";
    const YESCRYPT_J75: &str =
        "$y$j75$F5Jx5fExrKuPp53xLKQ..1$mZhhm4x1PBiGdeH3okkqUzPEm6W546J8CMrD.EZqi5B";
    const BCRYPT_2B: &str = "$2b$04$abcdefghijklmnopqrstuuV3duMsC0HpUex6N9qapiuOHHWkwRXVm";
    const BCRYPT_2Y: &str = "$2y$04$abcdefghijklmnopqrstuuV3duMsC0HpUex6N9qapiuOHHWkwRXVm";
    const BCRYPT_2A: &str = "$2a$04$abcdefghijklmnopqrstuuV3duMsC0HpUex6N9qapiuOHHWkwRXVm";

    fn check(hash: &str) {
        let good = verify_password(b"hunter2", hash, &FAST).unwrap();
        assert!(good.matched, "{hash} did not match");
        assert!(good.needs_rehash, "{hash} should need a rehash");
        let bad = verify_password(b"hunter3", hash, &FAST).unwrap();
        assert!(!bad.matched, "{hash} matched a wrong password");
        assert!(!bad.needs_rehash);
        assert!(!verify_password(b"", hash, &FAST).unwrap().matched);
    }

    #[test]
    fn sha512_crypt() {
        check(SHA512);
        check(SHA512_ROUNDS);
        check(&format!("{{SHA512-CRYPT}}{SHA512}"));
        check(&format!("{{CRYPT}}{SHA512}"));
        assert_eq!(identify(SHA512).unwrap().0, HashScheme::Sha512Crypt);
    }

    #[test]
    fn sha256_crypt() {
        check(SHA256);
        check(&format!("{{sha256-crypt}}{SHA256}"));
    }

    #[test]
    fn yescrypt() {
        check(YESCRYPT);
        check(YESCRYPT_J75);
        check(&format!("{{CRYPT}}{YESCRYPT}"));
    }

    #[test]
    fn bcrypt_variants() {
        check(BCRYPT_2B);
        check(BCRYPT_2Y);
        check(BCRYPT_2A);
        check(&format!("{{BLF-CRYPT}}{BCRYPT_2Y}"));
    }

    #[test]
    fn argon2id_roundtrip_and_no_rehash_at_current_params() {
        let h = hash_password(b"s3cret pass", &FAST).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        let v = verify_password(b"s3cret pass", &h, &FAST).unwrap();
        assert!(v.matched && !v.needs_rehash);
        assert!(!verify_password(b"s3cret pasS", &h, &FAST).unwrap().matched);
        let v = verify_password(b"s3cret pass", &format!("{{ARGON2ID}}{h}"), &FAST).unwrap();
        assert!(v.matched);
        // Different salts every time.
        assert_ne!(h, hash_password(b"s3cret pass", &FAST).unwrap());
    }

    #[test]
    fn argon2_known_answer() {
        // Made with the reference implementation's CLI (Debian package argon2):
        // `echo -n hunter2 | argon2 saltsaltsalt -id|-i -t 1 -k 64 -p 1 -l 32 -e`.
        let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap();
        let id = FAST
            .argon2()
            .unwrap()
            .hash_password(b"hunter2", &salt)
            .unwrap()
            .to_string();
        assert_eq!(id, ARGON2ID_KAT);
        check_argon_kat(ARGON2ID_KAT, false);
        check_argon_kat(ARGON2I_KAT, true);
    }

    const ARGON2ID_KAT: &str =
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$RImIjsyxaIflNWFI1IH5rOtwoBK9E4w1E8aTF6j+8ew";
    const ARGON2I_KAT: &str =
        "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$XFL5dU70NLNrVDmTBH5B2A6Ck4KeBaN8A9Eu0lvjlXY";

    fn check_argon_kat(h: &str, rehash: bool) {
        let v = verify_password(b"hunter2", h, &FAST).unwrap();
        assert!(v.matched, "{h}");
        assert_eq!(v.needs_rehash, rehash, "{h}");
        assert!(!verify_password(b"hunter", h, &FAST).unwrap().matched);
    }

    #[test]
    fn weaker_argon2id_needs_rehash() {
        let stronger = PasswordParams {
            m_cost_kib: 128,
            t_cost: 2,
            p_cost: 1,
            ..FAST
        };
        let v = verify_password(b"hunter2", ARGON2ID_KAT, &stronger).unwrap();
        assert!(v.matched && v.needs_rehash);
    }

    #[test]
    fn unsupported_and_malformed() {
        assert!(matches!(
            identify("$3$salt$abc"),
            Err(DirectoryError::UnsupportedHashScheme(_))
        ));
        assert!(matches!(
            identify("{PLAIN-MD5}5f4dcc3b5aa765d61d8327deb882cf99"),
            Err(DirectoryError::UnsupportedHashScheme(_))
        ));
        // Traditional DES crypt is not supported, with or without {CRYPT}.
        assert!(matches!(
            identify("{CRYPT}abJnggxhB/yWI"),
            Err(DirectoryError::UnsupportedHashScheme(_))
        ));
        // A base64 digest without its prefix says nothing about its scheme.
        assert!(matches!(
            identify(SSHA512_DOVEADM.split_once('}').unwrap().1),
            Err(DirectoryError::UnsupportedHashScheme(_))
        ));
        assert!(matches!(
            identify("*"),
            Err(DirectoryError::UnsupportedHashScheme(_))
        ));
        assert!(matches!(
            identify("!"),
            Err(DirectoryError::UnsupportedHashScheme(_))
        ));
        assert!(matches!(
            identify(&format!("{{BLF-CRYPT}}{SHA512}")),
            Err(DirectoryError::MalformedHash(_))
        ));
        assert!(matches!(
            identify("{SHA512-CRYPT"),
            Err(DirectoryError::MalformedHash(_))
        ));
        assert!(verify_password(b"x", "$6$salt$tooshort", &FAST).is_err());
        assert!(verify_password(b"x", "$2b$04$short", &FAST).is_err());
        assert!(verify_password(b"x", "$argon2id$v=19$garbage", &FAST).is_err());
        assert!(verify_password(b"x", "$y$j9T$", &FAST).is_err());
    }

    #[test]
    fn hostile_costs_refused() {
        let huge_sha = SHA512.replacen("$6$", "$6$rounds=999999999$", 1);
        assert!(validate_hash(&huge_sha).is_err());
        let huge_bcrypt = BCRYPT_2B.replacen("$04$", "$31$", 1);
        assert!(validate_hash(&huge_bcrypt).is_err());
        let huge_argon = ARGON2ID_KAT.replacen("m=64", "m=4000000000", 1);
        assert!(validate_hash(&huge_argon).is_err());
        // yescrypt N = 2^19, r = 32: 2 GiB.
        let huge_yes = YESCRYPT.replacen("j9T", "jGT", 1);
        assert!(validate_hash(&huge_yes).is_err());
        let huge_yes = YESCRYPT.replacen("j9T", "jzT", 1);
        assert!(validate_hash(&huge_yes).is_err());
    }

    #[test]
    fn validate_strips_prefix() {
        let (s, stored) = validate_hash(&format!("{{SHA512-CRYPT}}{SHA512}")).unwrap();
        assert_eq!(s, HashScheme::Sha512Crypt);
        assert_eq!(stored, SHA512);
    }

    #[test]
    fn non_utf8_password_does_not_match_sha_crypt() {
        let v = verify_password(b"\xffhunter2", SHA512, &FAST).unwrap();
        assert!(!v.matched);
    }

    // Vectors for the salted and unsalted SHA schemes, computed independently with
    // Python's hashlib and base64 (`base64.b64encode(hashlib.sha512(pw + salt).digest()
    // + salt)`) and checked with Dovecot's `doveadm pw -t HASH -p hunter2`.
    const SSHA: &str = "{SSHA}EwvBq0sMQSLLD3eOSZNmhQqOOkRzYWx0c2FsdA==";
    const SSHA_BINARY_SALT: &str = "{SSHA}YAIX2iwfDp9JqXhdp9/ucUYrCKcA/xAg";
    const SSHA256: &str = "{SSHA256}xdNXPNaoGgpEh79yIk9Gapc+mj1Dw6d/z6kEzvuCusdzYWx0c2FsdA==";
    const SSHA256_BINARY_SALT: &str = "{SSHA256}UCCNPucIy6JbbM290ff/ZfAWN2l2dQY5+TuQ2PJJ5tsA/xAg";
    const SSHA512: &str = "{SSHA512}GyU2EsF9+E4B0BGlXHMIpcC8ymBeVNNZCq6vehzMQb1dQrX5jIlEu3PDhxPGz7gJ/nvhdCWTC2lvcFKFX0i0qXNhbHRzYWx0";
    const SSHA512_BINARY_SALT: &str = "{SSHA512}KANh8lEtVlDgZGVp+bYhy+odbgCnw9oR9It0x+Z+VllA1JHlhTVVcQwOw5SP0hskjNQtg5JAVtLn2q9vr8DucgD/ECA=";
    const SHA1_B64: &str = "{SHA}87u9ZqY9S/F0eUBXjsPQEDUw4h0=";
    const SHA1_HEX: &str = "{SHA1}f3bbbd66a63d4bf1747940578ec3d0103530e21d";
    const SHA256_B64: &str = "{SHA256}9S+9MrKzuG/4jvbEkGKChfSCrxXdyylUH5S89Saj9sc=";
    const SHA256_HEX: &str =
        "{SHA256}F52FBD32B2B3B86FF88EF6C490628285F482AF15DDCB29541F94BCF526A3F6C7";
    const SHA512_B64: &str = "{SHA512}a5ftaNFOs/GqlZzl1Jx9xhLh6x2v1zsecFhHSD/WpsgJ8s606N9v+ZhMYpj/AoXKzmYUv42qnwBwEBtsiYmeIg==";
    const SHA512_HEX: &str = "{SHA512}6b97ed68d14eb3f1aa959ce5d49c7dc612e1eb1dafd73b1e705847483fd6a6c809f2ceb4e8df6ff9984c6298ff0285cace6614bf8daa9f0070101b6c89899e22";
    // Made by Dovecot itself: `doveadm pw -s SSHA512 -p hunter2` (and -s SSHA,
    // SSHA256, MD5-CRYPT), Dovecot 2.3, 4-byte random salts.
    const SSHA512_DOVEADM: &str = "{SSHA512}CQj2OMeSV1K4Kz8wNHTkkitd/XQxB8mQzPGYOt76WzM2ko/0qvubJAqUj0swnt2KpZpr9Ye4yk9Lek3zAD/HhMCf6Hw=";
    const SSHA_DOVEADM: &str = "{SSHA}d/T5eGslufDo0hX5TUtFKQDIvEo1PWOR";
    const SSHA256_DOVEADM: &str = "{SSHA256}1LfvqCv7GhXhFxp2sabYtNJkmwFhd98mF/EDexrL6JuUVTzW";
    const MD5_CRYPT_DOVEADM: &str = "{MD5-CRYPT}$1$BT.Vd/GB$TgEzcJxoi3UDjA3fwkGM60";
    // `openssl passwd -1 -salt saltsalt hunter2`.
    const MD5_CRYPT: &str = "$1$saltsalt$ZliGyAN3DciDHEkDboonh/";

    #[test]
    fn md5_crypt() {
        check(MD5_CRYPT);
        check(&format!("{{MD5-CRYPT}}{MD5_CRYPT}"));
        check(&format!("{{md5}}{MD5_CRYPT}"));
        check(&format!("{{CRYPT}}{MD5_CRYPT}"));
        check(MD5_CRYPT_DOVEADM);
        assert_eq!(identify(MD5_CRYPT).unwrap().0, HashScheme::Md5Crypt);
        // Stored without the prefix: the body identifies itself.
        let (s, stored) = validate_hash(MD5_CRYPT_DOVEADM).unwrap();
        assert_eq!(s, HashScheme::Md5Crypt);
        assert_eq!(stored, "$1$BT.Vd/GB$TgEzcJxoi3UDjA3fwkGM60");
        // MD5-crypt hashes bytes: a non-UTF-8 password is hashed as given.
        assert!(
            !verify_password(b"\xffhunter2", MD5_CRYPT, &FAST)
                .unwrap()
                .matched
        );
        // `openssl passwd -1 -salt 12345678 ''`: the empty password of an 8-char salt.
        let empty = verify_password(b"", "$1$12345678$xek.CpjQUVgdf/P2N9KQf/", &FAST).unwrap();
        assert!(empty.matched && empty.needs_rehash);
        assert!(matches!(
            identify(&format!("{{SHA512-CRYPT}}{MD5_CRYPT}")),
            Err(DirectoryError::MalformedHash(_))
        ));
    }

    #[test]
    fn salted_sha() {
        for h in [
            SSHA,
            SSHA_BINARY_SALT,
            SSHA256,
            SSHA256_BINARY_SALT,
            SSHA512,
            SSHA512_BINARY_SALT,
            SSHA512_DOVEADM,
            SSHA_DOVEADM,
            SSHA256_DOVEADM,
        ] {
            check(h);
        }
        // Python: base64.b64encode(hashlib.sha1(b"" + b"xy").digest() + b"xy").
        let empty = verify_password(b"", "{SSHA}X4RZmC+fYZ9LDZryVCoghuVqS+94eQ==", &FAST).unwrap();
        assert!(empty.matched);
        assert_eq!(identify(SSHA512).unwrap().0, HashScheme::Ssha512);
        assert_eq!(identify("{ssha256}x").unwrap().0, HashScheme::Ssha256);
    }

    #[test]
    fn unsalted_sha() {
        for h in [
            SHA1_B64, SHA1_HEX, SHA256_B64, SHA256_HEX, SHA512_B64, SHA512_HEX,
        ] {
            check(h);
        }
        assert_eq!(identify(SHA1_HEX).unwrap().0, HashScheme::Sha1);
    }

    #[test]
    fn plaintext() {
        check("{PLAIN}hunter2");
        check("{CLEAR}hunter2");
        check("{cleartext}hunter2");
        // Everything after the prefix is the password, white space included.
        let v = verify_password(b" hunter2 ", "{PLAIN} hunter2 ", &FAST).unwrap();
        assert!(v.matched && v.needs_rehash);
        assert!(
            !verify_password(b"hunter2", "{PLAIN} hunter2 ", &FAST)
                .unwrap()
                .matched
        );
        assert!(
            !verify_password(b"hunter", "{PLAIN}hunter2", &FAST)
                .unwrap()
                .matched
        );
        assert!(
            !verify_password(b"hunter22", "{PLAIN}hunter2", &FAST)
                .unwrap()
                .matched
        );
        // A body that looks like another scheme is still the password.
        let v = verify_password(
            MD5_CRYPT.as_bytes(),
            &format!("{{PLAIN}}{MD5_CRYPT}"),
            &FAST,
        );
        assert!(v.unwrap().matched);
    }

    #[test]
    fn prefixed_schemes_keep_a_canonical_prefix_in_storage() {
        for (input, scheme, stored) in [
            ("{CLEAR}hunter2", HashScheme::Plain, "{PLAIN}hunter2"),
            ("{cleartext}a b ", HashScheme::Plain, "{PLAIN}a b "),
            (SSHA512, HashScheme::Ssha512, SSHA512),
            (
                SHA1_HEX,
                HashScheme::Sha1,
                "{SHA}f3bbbd66a63d4bf1747940578ec3d0103530e21d",
            ),
            (&format!(" {SHA256_B64} \n"), HashScheme::Sha256, SHA256_B64),
        ] {
            let (s, st) = validate_hash(input).unwrap();
            assert_eq!((s, st.as_str()), (scheme, stored), "{input}");
            assert!(s.stored_with_prefix());
            // The stored form is recognised again, as the same scheme.
            assert_eq!(identify(&st).unwrap().0, scheme);
            assert!(verify_password(b"hunter2", &st, &FAST).is_ok());
        }
        for s in [
            HashScheme::Md5Crypt,
            HashScheme::Sha512Crypt,
            HashScheme::Argon2id,
        ] {
            assert!(!s.stored_with_prefix(), "{s}");
        }
    }

    #[test]
    fn crypt_prefixes_of_existing_schemes() {
        check(&format!("{{SHA512-CRYPT}}{SHA512_ROUNDS}"));
        check(&format!("{{SHA256-CRYPT}}{SHA256}"));
        check(&format!("{{CRYPT}}{SHA256}"));
        check(&format!("{{BLF-CRYPT}}{BCRYPT_2B}"));
        check(&format!("{{BLF-CRYPT}}{BCRYPT_2A}"));
        check(&format!("{{CRYPT}}{BCRYPT_2Y}"));
        check(&format!("{{YESCRYPT}}{YESCRYPT}"));
        for (prefix, hash) in [
            ("SHA512-CRYPT", SHA256),
            ("SHA256-CRYPT", SHA512),
            ("BLF-CRYPT", MD5_CRYPT),
            ("MD5-CRYPT", BCRYPT_2B),
            ("CRYPT", ARGON2ID_KAT),
        ] {
            let e = validate_hash(&format!("{{{prefix}}}{hash}")).unwrap_err();
            assert!(
                matches!(e, DirectoryError::MalformedHash(_)),
                "{prefix}: {e}"
            );
        }
    }

    #[test]
    fn malformed_legacy_bodies_are_refused_clearly() {
        let sha512_b64 = SHA512_B64.trim_start_matches("{SHA512}");
        for (bad, why) in [
            (
                "$1$saltsalt$ZliGyAN3DciDHEkDboonh",
                "MD5-CRYPT: wrong hash length",
            ),
            (
                "{MD5-CRYPT}$1$123456789$ZliGyAN3DciDHEkDboonh/",
                "MD5-CRYPT: salt longer",
            ),
            (
                "$1$saltsalt$ZliGyAN3DciDHEkDbo*nh/",
                "MD5-CRYPT: invalid character",
            ),
            ("$1$saltsalt", "MD5-CRYPT: missing"),
            ("{SSHA}not base64!", "SSHA: invalid base64"),
            (
                "{SSHA}EwvBq0sMQSLLD3eOSZNmhQqOOkRzYWx0c2FsdA",
                "SSHA: invalid base64",
            ),
            // 20 bytes: a digest with no salt (Dovecot: "SSHA password is too short").
            (
                "{SSHA}EwvBq0sMQSLLD3eOSZNmhQqOOkQ=",
                "SSHA: 20 bytes decoded",
            ),
            ("{SSHA512}c2FsdA==", "SSHA512: 4 bytes decoded"),
            ("{SSHA256}", "SSHA256: 0 bytes decoded"),
            ("{SHA}87u9ZqY9S/F0eUBXjsPQEDUw4h0", "SHA: invalid base64"),
            (
                "{SHA256}87u9ZqY9S/F0eUBXjsPQEDUw4h0=",
                "SHA256: wrong length",
            ),
            (
                "{SHA}f3bbbd66a63d4bf1747940578ec3d0103530e21g",
                "SHA: invalid hex",
            ),
            (
                "{SHA1}f3bbbd66a63d4bf1747940578ec3d0103530e2",
                "SHA: wrong length",
            ),
            ("{PLAIN}", "PLAIN: empty password"),
        ] {
            let e = validate_hash(bad).unwrap_err();
            assert!(matches!(e, DirectoryError::MalformedHash(_)), "{bad}: {e}");
            assert!(e.to_string().contains(why), "{bad}: {e}");
            // A malformed stored hash fails closed at login, as an error.
            assert!(verify_password(b"hunter2", bad, &FAST).is_err(), "{bad}");
        }
        let huge_salt = base64::engine::general_purpose::STANDARD.encode([7u8; 20 + 300]);
        assert!(validate_hash(&format!("{{SSHA}}{huge_salt}")).is_err());
        let huge_plain = format!("{{PLAIN}}{}", "x".repeat(2000));
        assert!(validate_hash(&huge_plain).is_err());
        assert!(validate_hash(&format!("{{SHA512}}{sha512_b64}")).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn identify_never_panics(s in ".{0,120}") {
            let _ = validate_hash(&s);
        }
    }
}
