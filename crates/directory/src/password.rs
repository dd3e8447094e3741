//! Password hashing and verification.
//!
//! New hashes are argon2id PHC strings (RFC 9106). For importing existing users,
//! verification also accepts the crypt(3) formats found in `/etc/shadow` and
//! Dovecot passwd-files: SHA-512-crypt (`$6$`), SHA-256-crypt (`$5$`), yescrypt
//! (`$y$`) and bcrypt (`$2a$`, `$2b$`, `$2y$`), optionally behind a Dovecot
//! `{SCHEME}` prefix such as `{SHA512-CRYPT}` or `{CRYPT}`. A successful
//! verification against anything but argon2id with at least the configured cost
//! reports `needs_rehash`, so the caller can store a fresh argon2id hash.
//!
//! All comparisons are done by the schemes' own constant-time verifiers. Cost
//! parameters read from a hash are bounded so that a hostile or mistyped imported
//! hash cannot make one login allocate gigabytes or run for hours.

use std::fmt;
use std::str::FromStr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

use crate::error::{DirectoryError, Result};

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
        }
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
        // {CRYPT} is "whatever crypt(3) understands".
        "CRYPT" => !scheme.is_argon2(),
        _ => return None,
    };
    Some(allowed)
}

/// Identifies a stored or imported hash. Returns the scheme and the hash with any
/// Dovecot `{SCHEME}` prefix removed (the form the directory stores).
pub fn identify(hash: &str) -> Result<(HashScheme, &str)> {
    let trimmed = hash.trim();
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
/// returning the form to store (prefix stripped). Used when importing hashes.
pub fn validate_hash(hash: &str) -> Result<(HashScheme, String)> {
    let (scheme, body) = identify(hash)?;
    check_costs(scheme, body)?;
    Ok((scheme, body.to_string()))
}

fn malformed(scheme: HashScheme, what: impl fmt::Display) -> DirectoryError {
    DirectoryError::MalformedHash(format!("{}: {what}", scheme.name()))
}

/// Parses and bounds the cost parameters of a hash.
fn check_costs(scheme: HashScheme, body: &str) -> Result<()> {
    match scheme {
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
            identify("$1$salt$abc"),
            Err(DirectoryError::UnsupportedHashScheme(_))
        ));
        assert!(matches!(
            identify("{PLAIN}secret"),
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

    proptest::proptest! {
        #[test]
        fn identify_never_panics(s in ".{0,120}") {
            let _ = validate_hash(&s);
        }
    }
}
