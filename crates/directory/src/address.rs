//! Mail addresses: validation and normalisation for lookups.
//!
//! An [`Address`] is a local part and a domain, both in the canonical form used as
//! database keys:
//!
//! * the domain is lowercased and converted to its ASCII (A-label) form with UTS #46
//!   processing (RFC 5890/5891), so `bücher.example`, `BÜCHER.example` and
//!   `xn--bcher-kva.example` are the same domain. Address literals (`[192.0.2.1]`,
//!   `[IPv6:2001:db8::1]`, RFC 5321 §4.1.3) are accepted and canonicalised;
//! * the local part is NFC-normalised and lowercased (ASCII and Unicode; RFC 6531
//!   allows UTF-8 local parts). RFC 5321 says local parts *may* be case-sensitive,
//!   but for a mailbox *we* host, case-insensitive lookup is what users expect.
//!
//! Limits follow RFC 5321 §4.5.3.1: local part ≤ 64 octets, domain ≤ 255 octets
//! (the ASCII form is additionally held to the DNS limit of 253 octets and 63-octet
//! labels). Control characters are refused everywhere.
//!
//! Quoted-string syntax is the SMTP layer's business: the local part given here is
//! the *content* (already unquoted). Characters such as `%`, `!`, `:` and `@`
//! (old source-routing and "percent hack" tricks) are kept as plain local-part
//! characters: they never cause routing to another host.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use unicode_normalization::UnicodeNormalization;

/// Longest local part in octets (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_PART_LEN: usize = 64;
/// Longest domain in octets (RFC 5321 §4.5.3.1.2).
pub const MAX_DOMAIN_LEN: usize = 255;
/// Longest raw domain input we even try to process (a U-label domain may be longer
/// in UTF-8 than its A-label form; anything beyond this cannot fit once encoded).
const MAX_RAW_DOMAIN_INPUT: usize = 1024;

/// Why a string is not an acceptable address, local part or domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The input has no `@` separating local part and domain.
    #[error("address has no '@' between local part and domain")]
    MissingAt,
    /// The local part is empty.
    #[error("local part is empty")]
    EmptyLocalPart,
    /// The local part is longer than RFC 5321 allows.
    #[error("local part is {0} octets long; the limit is 64 (RFC 5321 §4.5.3.1.1)")]
    LocalPartTooLong(usize),
    /// The domain is empty.
    #[error("domain is empty")]
    EmptyDomain,
    /// The domain is longer than RFC 5321 / DNS allow.
    #[error("domain is {0} octets long; the limit is 255 (RFC 5321 §4.5.3.1.2)")]
    DomainTooLong(usize),
    /// A control character (C0, DEL or C1) was found.
    #[error("contains a control character (U+{0:04X})")]
    ControlCharacter(u32),
    /// The domain is not a valid (internationalised) host name.
    #[error("domain {0:?} is not a valid host name (letters, digits, hyphens and dots; IDNA labels allowed)")]
    InvalidDomain(String),
    /// A local part that would need quoting in SMTP (refused for new accounts and aliases).
    #[error("local part is not a dot-string (RFC 5321 §4.1.2): use letters, digits, !#$%&'*+-/=?^_`{{|}}~ and single dots between them")]
    NotDotString,
    /// A bracketed address literal that is not an IPv4 or `IPv6:` address.
    #[error("address literal {0:?} is not a valid IPv4 or IPv6 literal (RFC 5321 §4.1.3)")]
    InvalidAddressLiteral(String),
}

/// A normalised mail address: `local@domain`.
///
/// Construct with [`Address::parse`] or [`Address::new`]; both validate and
/// normalise, so two `Address` values are equal exactly when they name the same
/// mailbox for lookup purposes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local: String,
    domain: String,
}

impl Address {
    /// Builds an address from a local part (already unquoted) and a domain.
    pub fn new(local: &str, domain: &str) -> Result<Self, AddressError> {
        Ok(Address {
            local: normalize_local_part(local)?,
            domain: normalize_domain(domain)?,
        })
    }

    /// Parses `local@domain`, splitting at the **last** `@` so that a local part
    /// containing `@` (e.g. the content of a quoted string, or a source-route
    /// leftover like `@a:b@c`) stays in the local part.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let (local, domain) = split_address(input)?;
        Address::new(local, domain)
    }

    /// The normalised local part (NFC, lowercase).
    pub fn local_part(&self) -> &str {
        &self.local
    }

    /// The normalised domain in ASCII (A-label) form, lowercase.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The domain for display: U-labels where the A-labels decode cleanly.
    pub fn domain_unicode(&self) -> String {
        domain_to_unicode(&self.domain)
    }

    /// Splits the local part at the first occurrence of `separator`
    /// (plus-addressing, RFC 5233 "subaddress"): `user+tag` → (`user`, `tag`).
    ///
    /// Returns `None` when the separator is absent or the base would be empty.
    pub fn split_detail(&self, separator: char) -> Option<(&str, &str)> {
        let (base, detail) = self.local.split_once(separator)?;
        if base.is_empty() {
            None
        } else {
            Some((base, detail))
        }
    }

    /// Returns a copy with another local part (normalised and validated).
    pub fn with_local_part(&self, local: &str) -> Result<Self, AddressError> {
        Ok(Address {
            local: normalize_local_part(local)?,
            domain: self.domain.clone(),
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

/// RFC 5321 §4.1.2 Dot-string of atext (RFC 6531 §3.3: plus UTF-8): a local part SMTP
/// carries without quotes. The SMTP parser and the directory share this one rule.
pub fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && s.chars().all(|c| {
            c == '.' || (c.is_ascii() && is_atext(c as u8)) || (!c.is_ascii() && !c.is_control())
        })
}

/// RFC 5322 §3.2.3 atext.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// Splits `local@domain` at the last `@`.
pub fn split_address(input: &str) -> Result<(&str, &str), AddressError> {
    input.rsplit_once('@').ok_or(AddressError::MissingAt)
}

fn check_controls(s: &str) -> Result<(), AddressError> {
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(AddressError::ControlCharacter(u32::from(c))),
        None => Ok(()),
    }
}

/// Validates and normalises a local part: no control characters, not empty,
/// ≤ 64 octets (before and after normalisation), NFC, lowercase.
pub fn normalize_local_part(local: &str) -> Result<String, AddressError> {
    if local.is_empty() {
        return Err(AddressError::EmptyLocalPart);
    }
    if local.len() > MAX_LOCAL_PART_LEN {
        return Err(AddressError::LocalPartTooLong(local.len()));
    }
    check_controls(local)?;
    let lowered: String = local.nfc().collect::<String>().to_lowercase();
    let normalized: String = lowered.nfc().collect();
    if normalized.len() > MAX_LOCAL_PART_LEN {
        return Err(AddressError::LocalPartTooLong(normalized.len()));
    }
    Ok(normalized)
}

/// Keeps a local part as given (for remote addresses, whose case we must not
/// change) but validates it with the same rules as [`normalize_local_part`].
pub fn validate_local_part(local: &str) -> Result<(), AddressError> {
    normalize_local_part(local).map(|_| ())
}

/// Validates and normalises a domain to lowercase ASCII (A-labels), or a
/// canonical address literal.
pub fn normalize_domain(domain: &str) -> Result<String, AddressError> {
    if domain.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    check_controls(domain)?;
    if domain.starts_with('[') {
        return normalize_address_literal(domain);
    }
    if domain.len() > MAX_RAW_DOMAIN_INPUT {
        return Err(AddressError::DomainTooLong(domain.len()));
    }
    let ascii = idna::domain_to_ascii_strict(domain)
        .map_err(|_| AddressError::InvalidDomain(domain.to_string()))?;
    if ascii.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    if ascii.len() > MAX_DOMAIN_LEN {
        return Err(AddressError::DomainTooLong(ascii.len()));
    }
    // A name ending in a dot or made only of dots would pass some IDNA paths;
    // mail domains never have a trailing root dot (RFC 5321 §4.1.2).
    if ascii.starts_with('.') || ascii.ends_with('.') || ascii.contains("..") {
        return Err(AddressError::InvalidDomain(domain.to_string()));
    }
    Ok(ascii)
}

/// RFC 5321 §4.1.3: `[IPv4]` or `[IPv6:addr]`, canonicalised.
fn normalize_address_literal(domain: &str) -> Result<String, AddressError> {
    let bad = || AddressError::InvalidAddressLiteral(domain.chars().take(80).collect());
    if domain.len() > 64 {
        return Err(bad());
    }
    let inner = domain
        .strip_prefix('[')
        .and_then(|d| d.strip_suffix(']'))
        .ok_or_else(bad)?;
    if let Some(v6) = strip_prefix_ignore_ascii_case(inner, "IPv6:") {
        let ip: Ipv6Addr = v6.parse().map_err(|_| bad())?;
        return Ok(format!("[IPv6:{ip}]"));
    }
    let ip: Ipv4Addr = inner.parse().map_err(|_| bad())?;
    Ok(format!("[{ip}]"))
}

fn strip_prefix_ignore_ascii_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Converts a normalised ASCII domain to its Unicode display form.
pub fn domain_to_unicode(ascii: &str) -> String {
    if ascii.starts_with('[') {
        return ascii.to_string();
    }
    let (unicode, result) = idna::domain_to_unicode(ascii);
    if result.is_ok() {
        unicode
    } else {
        ascii.to_string()
    }
}

/// Parses an address literal domain back into an IP address, if it is one.
pub fn address_literal_ip(domain: &str) -> Option<IpAddr> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    match strip_prefix_ignore_ascii_case(inner, "IPv6:") {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => inner.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// Validates a forwarding target that may be remote: the local part keeps its
/// case (remote hosts may treat it case-sensitively, RFC 5321 §2.4), the domain
/// is normalised. Returns `local@ascii-domain`.
pub fn normalize_remote_address(input: &str) -> Result<String, AddressError> {
    let (local, domain) = split_address(input)?;
    validate_local_part(local)?;
    let domain = normalize_domain(domain)?;
    Ok(format!("{local}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lowercases_ascii() {
        let a = Address::parse("John.Doe@Example.COM").unwrap();
        assert_eq!(a.local_part(), "john.doe");
        assert_eq!(a.domain(), "example.com");
        assert_eq!(a.to_string(), "john.doe@example.com");
    }

    #[test]
    fn idna_u_and_a_labels_are_the_same_domain() {
        let u = Address::parse("info@Bücher.Example").unwrap();
        let a = Address::parse("info@xn--bcher-kva.example").unwrap();
        let upper = Address::parse("INFO@BÜCHER.EXAMPLE").unwrap();
        assert_eq!(u, a);
        assert_eq!(u, upper);
        assert_eq!(u.domain(), "xn--bcher-kva.example");
        assert_eq!(u.domain_unicode(), "bücher.example");
    }

    #[test]
    fn unicode_local_part_is_lowercased_and_nfc() {
        // "É" precomposed vs "E" + combining acute.
        let a = Address::parse("\u{00C9}lise@example.org").unwrap();
        let b = Address::parse("E\u{0301}LISE@example.org").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.local_part(), "\u{00E9}lise");
        let g = Address::parse("ΔΙΑΣ@example.org").unwrap();
        assert_eq!(g.local_part(), "διας");
    }

    #[test]
    fn splits_at_last_at() {
        let a = Address::parse("@a:b@c.example").unwrap();
        assert_eq!(a.local_part(), "@a:b");
        assert_eq!(a.domain(), "c.example");
        let q = Address::parse("odd@local@example.net").unwrap();
        assert_eq!(q.local_part(), "odd@local");
    }

    #[test]
    fn routing_characters_are_plain_local_part() {
        let a = Address::parse("user%remote.example@local.example").unwrap();
        assert_eq!(a.local_part(), "user%remote.example");
        assert_eq!(a.domain(), "local.example");
        let b = Address::parse("remote.example!user@local.example").unwrap();
        assert_eq!(b.local_part(), "remote.example!user");
    }

    #[test]
    fn rejects_empty_parts() {
        assert_eq!(
            Address::parse("@example.com"),
            Err(AddressError::EmptyLocalPart)
        );
        assert_eq!(Address::parse("user@"), Err(AddressError::EmptyDomain));
        assert_eq!(Address::parse("user"), Err(AddressError::MissingAt));
        assert_eq!(Address::parse(""), Err(AddressError::MissingAt));
    }

    #[test]
    fn enforces_length_limits() {
        let ok = "a".repeat(64);
        assert!(Address::new(&ok, "example.com").is_ok());
        let long = "a".repeat(65);
        assert_eq!(
            Address::new(&long, "example.com"),
            Err(AddressError::LocalPartTooLong(65))
        );
        // 4 labels of 63 = 255 with dots: over the DNS limit of 253.
        let label = "a".repeat(63);
        let d = [label.as_str(); 4].join(".");
        assert!(Address::new("u", &d).is_err());
        let label64 = "b".repeat(64);
        assert!(Address::new("u", &format!("{label64}.com")).is_err());
        let huge = "x".repeat(100_000);
        assert!(matches!(
            Address::new("u", &huge),
            Err(AddressError::DomainTooLong(_))
        ));
        // A local part that grows past 64 octets when lowercased.
        let dotted_i = "\u{0130}".repeat(32); // 2 octets each, 3 when lowercased
        assert!(matches!(
            Address::new(&dotted_i, "example.com"),
            Err(AddressError::LocalPartTooLong(_))
        ));
    }

    #[test]
    fn rejects_control_characters() {
        assert_eq!(
            Address::parse("us\u{0}er@example.com"),
            Err(AddressError::ControlCharacter(0))
        );
        assert!(Address::parse("user\r\n@example.com").is_err());
        assert!(Address::parse("user@exa\tmple.com").is_err());
        assert!(Address::parse("user\u{7f}@example.com").is_err());
        assert!(Address::parse("user\u{85}@example.com").is_err());
    }

    #[test]
    fn rejects_bad_domains() {
        for d in [
            "exa mple.com",
            "example..com",
            ".example.com",
            "example.com.",
            "ex_ample.com",
            "-example.com",
            "exam/ple.com",
            "[300.1.1.1]",
            "[IPv6:zz::1]",
            "[1.2.3.4",
        ] {
            assert!(normalize_domain(d).is_err(), "{d} accepted");
        }
    }

    #[test]
    fn address_literals() {
        assert_eq!(normalize_domain("[192.0.2.1]").unwrap(), "[192.0.2.1]");
        assert_eq!(
            normalize_domain("[ipv6:2001:DB8:0::1]").unwrap(),
            "[IPv6:2001:db8::1]"
        );
        assert_eq!(
            address_literal_ip("[IPv6:2001:db8::1]"),
            Some("2001:db8::1".parse().unwrap())
        );
    }

    #[test]
    fn split_detail() {
        let a = Address::parse("user+tag+more@example.com").unwrap();
        assert_eq!(a.split_detail('+'), Some(("user", "tag+more")));
        let b = Address::parse("+tag@example.com").unwrap();
        assert_eq!(b.split_detail('+'), None);
        let c = Address::parse("user+@example.com").unwrap();
        assert_eq!(c.split_detail('+'), Some(("user", "")));
    }

    #[test]
    fn remote_keeps_local_case() {
        assert_eq!(
            normalize_remote_address("John.Doe@Example.COM").unwrap(),
            "John.Doe@example.com"
        );
        assert!(normalize_remote_address("nobody").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = Address::parse(&s);
        }

        #[test]
        fn normalisation_is_idempotent(local in "\\PC{1,20}", domain in "[a-zA-Z0-9äöüßé]{1,20}\\.[a-zA-Z]{2,6}") {
            if let Ok(a) = Address::new(&local, &domain) {
                let again = Address::new(a.local_part(), a.domain()).unwrap();
                prop_assert_eq!(&again, &a);
                let reparsed = Address::parse(&a.to_string()).unwrap();
                prop_assert_eq!(&reparsed, &a);
                let via_unicode = Address::new(a.local_part(), &a.domain_unicode()).unwrap();
                prop_assert_eq!(via_unicode, a);
            }
        }

        #[test]
        fn normalised_parts_respect_limits(local in "\\PC{0,80}", domain in "\\PC{0,300}") {
            if let Ok(a) = Address::new(&local, &domain) {
                prop_assert!(!a.local_part().is_empty() && a.local_part().len() <= MAX_LOCAL_PART_LEN);
                prop_assert!(!a.domain().is_empty() && a.domain().len() <= MAX_DOMAIN_LEN);
                prop_assert!(!a.local_part().chars().any(char::is_control));
            }
        }
    }
}
