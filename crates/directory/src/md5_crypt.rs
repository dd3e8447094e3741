//! MD5-crypt (`$1$`), Poul-Henning Kamp's FreeBSD password scheme, later adopted by
//! glibc crypt(3), OpenSSL (`openssl passwd -1`), Dovecot (`MD5-CRYPT`) and
//! postfixadmin (its old default). Only verified, never produced: it exists here so
//! that imported users can log in once and be upgraded to argon2id.
//!
//! The definition (FreeBSD `crypt-md5.c`, glibc `md5-crypt.c`): with magic `$1$`
//! and a salt of at most 8 bytes,
//! 1. `alt = MD5(pw ‖ salt ‖ pw)`;
//! 2. `ctx = MD5(pw ‖ magic ‖ salt ‖ alt repeated/truncated to |pw| bytes ‖ B)`, where
//!    `B` has one byte per bit of `|pw|`, lowest bit first: `0x00` for a 1 bit, the
//!    first byte of `pw` for a 0 bit;
//! 3. 1000 rounds `i`: `MD5((i odd ? pw : prev) ‖ (i % 3 ≠ 0 ? salt : ε) ‖
//!    (i % 7 ≠ 0 ? pw : ε) ‖ (i odd ? prev : pw))`;
//! 4. the 16 bytes are written as 22 characters of the crypt alphabet
//!    `./0-9A-Za-z`, least significant 6 bits first, from the byte triples
//!    (0,6,12) (1,7,13) (2,8,14) (3,9,15) (4,10,5) and the single byte 11.

use md5::{Digest, Md5};

/// The identifier of the scheme in a hash string.
pub(crate) const MAGIC: &str = "$1$";
/// Longest salt: crypt(3) ignores the bytes after the eighth.
pub(crate) const MAX_SALT: usize = 8;
/// Length of the encoded checksum.
pub(crate) const CHECKSUM_LEN: usize = 22;

const ROUNDS: usize = 1000;
const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The salt and encoded checksum of a `$1$salt$checksum` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parsed<'a> {
    pub salt: &'a str,
    pub checksum: &'a str,
}

/// Splits and checks a `$1$salt$checksum` string. The error says what is wrong.
pub(crate) fn parse(hash: &str) -> Result<Parsed<'_>, &'static str> {
    let rest = hash.strip_prefix(MAGIC).ok_or("missing $1$")?;
    let (salt, checksum) = rest.split_once('$').ok_or("missing '$' after the salt")?;
    if salt.len() > MAX_SALT {
        return Err("salt longer than 8 characters");
    }
    if salt.bytes().any(|b| b.is_ascii_control() || b == b':') {
        return Err("invalid character in salt");
    }
    if checksum.len() != CHECKSUM_LEN {
        return Err("wrong hash length (22 characters expected)");
    }
    if !checksum.bytes().all(|b| ALPHABET.contains(&b)) {
        return Err("invalid character in hash");
    }
    // The last character carries only the 2 top bits of byte 11: any other value
    // is not something crypt(3) writes.
    if !b"./01".contains(&checksum.as_bytes()[CHECKSUM_LEN - 1]) {
        return Err("non-canonical last character");
    }
    Ok(Parsed { salt, checksum })
}

/// The 22-character checksum of `password` with `salt` (at most 8 bytes are used).
pub(crate) fn checksum(password: &[u8], salt: &[u8]) -> String {
    let salt = &salt[..salt.len().min(MAX_SALT)];

    let alt = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();

    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(MAGIC)
        .chain_update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(alt.len());
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut bits = password.len();
    while bits != 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest = ctx.finalize();

    for i in 0..ROUNDS {
        let mut round = Md5::new();
        if i % 2 == 1 {
            round.update(password);
        } else {
            round.update(digest);
        }
        if i % 3 != 0 {
            round.update(salt);
        }
        if i % 7 != 0 {
            round.update(password);
        }
        if i % 2 == 1 {
            round.update(digest);
        } else {
            round.update(password);
        }
        digest = round.finalize();
    }

    let d = digest;
    let mut out = String::with_capacity(CHECKSUM_LEN);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        encode(
            &mut out,
            (u32::from(d[a]) << 16) | (u32::from(d[b]) << 8) | u32::from(d[c]),
            4,
        );
    }
    encode(&mut out, u32::from(d[11]), 2);
    out
}

/// Appends the `n` low 6-bit groups of `word`, least significant first.
fn encode(out: &mut String, mut word: u32, n: usize) {
    for _ in 0..n {
        out.push(char::from(ALPHABET[(word & 0x3f) as usize]));
        word >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers made with `openssl passwd -1 -salt SALT PASSWORD` (OpenSSL 3.0)
    /// on the development machine; two also checked against glibc crypt(3).
    const VECTORS: &[(&str, &str)] = &[
        ("hunter2", "$1$saltsalt$ZliGyAN3DciDHEkDboonh/"),
        ("password", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"),
        ("hunter2", "$1$abc$9dV135Rc3U8Xbm2DxadgF0"),
        ("", "$1$12345678$xek.CpjQUVgdf/P2N9KQf/"),
        ("", "$1$x$fwjfZtMwarkdetsjiQreU1"),
        (
            "01234567890123456789abcdefghijklmnopqrstuvwxyz",
            "$1$saltsalt$vdngsg9RXUbkQTkrCYZl./",
        ),
        ("héllo", "$1$Zz./9aB$8mB6jF5eoRSmWRV68KJDU/"),
        ("a", "$1$s1$WstYfLmN8xQYv0h2.s6O7."),
        ("hunter2", "$1$$vnSTnHkIF96nN6kxQkZrf."),
    ];

    #[test]
    fn known_answers() {
        for (password, hash) in VECTORS {
            let p = parse(hash).unwrap();
            assert_eq!(
                checksum(password.as_bytes(), p.salt.as_bytes()),
                p.checksum,
                "{hash}"
            );
        }
    }

    #[test]
    fn salt_is_cut_at_eight_bytes() {
        // `openssl passwd -1 -salt 123456789 pw` prints `$1$12345678$OYWcP3UEQ50eVnrC3.L3v/`.
        assert_eq!(checksum(b"pw", b"123456789"), "OYWcP3UEQ50eVnrC3.L3v/");
    }

    #[test]
    fn malformed() {
        for (bad, why) in [
            ("$1$saltsalt", "missing '$'"),
            ("$1$123456789$OYWcP3UEQ50eVnrC3.L3v/", "salt longer"),
            ("$1$salt$short", "wrong hash length"),
            ("$1$saltsalt$ZliGyAN3DciDHEkDboonh/x", "wrong hash length"),
            ("$1$saltsalt$ZliGyAN3DciDHEkDbo_nh/", "invalid character"),
            ("$1$saltsalt$ZliGyAN3DciDHEkDboonhz", "non-canonical"),
            (
                "$1$sa:t$ZliGyAN3DciDHEkDboonh/",
                "invalid character in salt",
            ),
            ("$6$saltsalt$ZliGyAN3DciDHEkDboonh/", "missing $1$"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
