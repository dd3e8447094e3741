//! Mailbox names and account ids: validation, canonical form and on-disk encoding.
//!
//! API mailbox names are UTF-8 with `/` as the hierarchy separator and `INBOX` matched
//! case-insensitively (RFC 9051 §5.1). On disk a mailbox `A/B` is the Maildir++ folder
//! directory `.A.B`; each component is percent-encoded so that `.`, `/`, `%`, non-ASCII and
//! other awkward bytes never reach the file system raw, while plain ASCII names stay readable.

use std::path::PathBuf;

use crate::error::{Result, StoreError};

/// The canonical name of the inbox (RFC 9051 §5.1).
pub const INBOX: &str = "INBOX";
/// The hierarchy separator of API names.
pub const SEPARATOR: char = '/';
/// Longest accepted mailbox name in bytes.
pub const MAX_NAME_LEN: usize = 512;
/// Deepest accepted hierarchy.
pub const MAX_DEPTH: usize = 32;
/// Longest folder directory name (file systems cap names at 255 bytes).
const MAX_DIR_LEN: usize = 250;

fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Longest Sieve script name RFC 5804 §1.6 allows, in octets.
pub const MAX_SCRIPT_NAME_LEN: usize = 1024;

/// Checks a Sieve script name: RFC 5804 §1.6 (not empty, at most 1024 octets, no control
/// characters, no U+2028/U+2029), and what storing it as a file needs: no `/`, and no leading
/// `.` so that it never names a hidden file (the vacation script and temporary files are
/// dot-files).
pub fn check_script_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(StoreError::bad_script_name(name, "empty name"));
    }
    if name.len() > MAX_SCRIPT_NAME_LEN {
        return Err(StoreError::bad_script_name(name, "name too long"));
    }
    if name.chars().any(is_control) {
        return Err(StoreError::bad_script_name(
            name,
            "control character in name",
        ));
    }
    if name.contains('/') {
        return Err(StoreError::bad_script_name(name, "'/' in name"));
    }
    if name.starts_with('.') {
        return Err(StoreError::bad_script_name(name, "name starts with '.'"));
    }
    Ok(())
}

/// Validates a mailbox name and returns its canonical form (`INBOX` upper-cased when it is the
/// first component).
pub fn canonical_mailbox(name: &str) -> Result<String> {
    if name.is_empty() {
        return Err(StoreError::bad_name(name, "empty name"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StoreError::bad_name(name, "name too long"));
    }
    if name.chars().any(is_control) {
        return Err(StoreError::bad_name(name, "control character in name"));
    }
    if name.starts_with(SEPARATOR) {
        return Err(StoreError::bad_name(name, "leading hierarchy separator"));
    }
    if name.ends_with(SEPARATOR) {
        return Err(StoreError::bad_name(name, "trailing hierarchy separator"));
    }
    let mut out = String::with_capacity(name.len());
    for (i, comp) in name.split(SEPARATOR).enumerate() {
        if i >= MAX_DEPTH {
            return Err(StoreError::bad_name(name, "hierarchy too deep"));
        }
        if comp.is_empty() {
            return Err(StoreError::bad_name(name, "empty hierarchy level"));
        }
        if comp == "." || comp == ".." {
            return Err(StoreError::bad_name(name, "'.' or '..' hierarchy level"));
        }
        if comp.trim() != comp {
            return Err(StoreError::bad_name(
                name,
                "leading or trailing white space",
            ));
        }
        if i > 0 {
            out.push(SEPARATOR);
        }
        if i == 0 && comp.eq_ignore_ascii_case(INBOX) {
            out.push_str(INBOX);
        } else {
            out.push_str(comp);
        }
    }
    if let Some(dir) = folder_dir_name(&out) {
        if dir.len() > MAX_DIR_LEN {
            return Err(StoreError::bad_name(name, "name too long once encoded"));
        }
    }
    Ok(out)
}

/// True for the (canonical) inbox name.
pub fn is_inbox(canonical: &str) -> bool {
    canonical == INBOX
}

/// The parent of a canonical name, if any.
pub fn parent(canonical: &str) -> Option<&str> {
    canonical.rsplit_once(SEPARATOR).map(|(p, _)| p)
}

/// True if `name` is strictly below `ancestor`.
pub fn is_descendant(name: &str, ancestor: &str) -> bool {
    name.len() > ancestor.len() + 1
        && name.starts_with(ancestor)
        && name.as_bytes()[ancestor.len()] == SEPARATOR as u8
}

fn safe_component_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'+'
                | b'@'
                | b'!'
                | b'#'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b','
                | b';'
                | b'='
                | b'['
                | b']'
                | b'^'
                | b'{'
                | b'}'
                | b'~'
                | b'$'
                | b' '
        )
}

fn percent_encode(out: &mut String, s: &str, safe: impl Fn(u8) -> bool) {
    for &b in s.as_bytes() {
        if safe(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| HEX.iter().position(|&h| h == c);
            let hi = hex(*b.get(i + 1)?)?;
            let lo = hex(*b.get(i + 2)?)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The Maildir++ folder directory of a canonical name (`None` for INBOX, the Maildir root).
pub fn folder_dir_name(canonical: &str) -> Option<String> {
    if is_inbox(canonical) {
        return None;
    }
    let mut out = String::with_capacity(canonical.len() + 8);
    for comp in canonical.split(SEPARATOR) {
        out.push('.');
        percent_encode(&mut out, comp, safe_component_byte);
    }
    Some(out)
}

/// The mailbox name of a Maildir++ folder directory, if the directory name is a canonical
/// encoding of a valid name (anything else in the account directory is ignored).
pub fn decode_folder_dir(dir: &str) -> Option<String> {
    let rest = dir.strip_prefix('.')?;
    if rest.is_empty() {
        return None;
    }
    let mut name = String::new();
    for (i, comp) in rest.split('.').enumerate() {
        if i > 0 {
            name.push(SEPARATOR);
        }
        name.push_str(&percent_decode(comp)?);
    }
    let canonical = canonical_mailbox(&name).ok()?;
    if is_inbox(&canonical) || folder_dir_name(&canonical).as_deref() != Some(dir) {
        return None;
    }
    Some(canonical)
}

fn safe_account_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'=' | b'.')
}

fn encode_account_part(part: &str) -> String {
    let mut out = String::with_capacity(part.len() + 4);
    percent_encode(&mut out, part, safe_account_byte);
    if out.starts_with('.') {
        out.replace_range(0..1, "%2E");
    }
    out
}

/// The account directory relative to the store root: `<domain>/<local>`, each part
/// percent-encoded so that no `/`, `..` or leading dot gets through.
pub fn account_relpath(account: &str) -> Result<PathBuf> {
    if account.is_empty() {
        return Err(StoreError::bad_account(account, "empty"));
    }
    if account.len() > 320 {
        return Err(StoreError::bad_account(account, "too long"));
    }
    if account.chars().any(is_control) {
        return Err(StoreError::bad_account(account, "control character"));
    }
    let Some((local, domain)) = account.rsplit_once('@') else {
        return Err(StoreError::bad_account(account, "no '@domain'"));
    };
    if local.is_empty() || local.len() > 128 {
        return Err(StoreError::bad_account(account, "bad local part length"));
    }
    if domain.is_empty() || domain.len() > 255 {
        return Err(StoreError::bad_account(account, "bad domain length"));
    }
    if domain.contains(['/', '\\', '@', '%']) || domain.starts_with('.') || domain.contains("..") {
        return Err(StoreError::bad_account(account, "malformed domain"));
    }
    let mut p = PathBuf::from(encode_account_part(domain));
    p.push(encode_account_part(local));
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_names_per_rfc5804_1_6() {
        for ok in [
            "main",
            "Vacation rules",
            "été",
            "a.sieve",
            &"x".repeat(1024),
        ] {
            assert!(check_script_name(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            ".hidden",
            "..",
            "a/b",
            "tab\there",
            "nul\0",
            "del\u{7f}",
            "c1\u{85}",
            "line\u{2028}sep",
            &"x".repeat(1025),
        ] {
            assert!(
                matches!(
                    check_script_name(bad),
                    Err(StoreError::InvalidScriptName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_mailbox("inbox").unwrap(), "INBOX");
        assert_eq!(canonical_mailbox("Inbox/Sub").unwrap(), "INBOX/Sub");
        assert_eq!(canonical_mailbox("Sent").unwrap(), "Sent");
        assert_eq!(canonical_mailbox("a/inbox").unwrap(), "a/inbox");
        for bad in [
            "", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "a\0b", "a\nb", "a\u{7f}",
            "a\u{85}b", " a",
        ] {
            assert!(canonical_mailbox(bad).is_err(), "{bad:?} accepted");
        }
        assert!(canonical_mailbox("x/".repeat(40).trim_end_matches('/')).is_err());
        assert!(canonical_mailbox(&"é".repeat(200)).is_err());
    }

    #[test]
    fn folder_encoding_round_trips() {
        for name in [
            "Sent",
            "A/B",
            "a.b",
            "50%",
            "Entwürfe",
            "日本語/メール",
            "x:y*z?",
            "INBOX/child",
            "with space",
            "~home",
        ] {
            let c = canonical_mailbox(name).unwrap();
            let dir = folder_dir_name(&c).unwrap();
            assert!(dir.starts_with('.'));
            assert!(!dir[1..].starts_with('.'));
            assert!(!dir.contains('/'));
            assert_eq!(
                decode_folder_dir(&dir).as_deref(),
                Some(c.as_str()),
                "{dir}"
            );
        }
        assert_eq!(folder_dir_name("A/B").unwrap(), ".A.B");
        assert_eq!(folder_dir_name("a.b").unwrap(), ".a%2Eb");
        assert_eq!(folder_dir_name("INBOX"), None);
        assert_eq!(decode_folder_dir(".a%2eb"), None); // non-canonical hex
        assert_eq!(decode_folder_dir(".."), None);
        assert_eq!(decode_folder_dir("."), None);
        assert_eq!(decode_folder_dir(".a..b"), None);
        assert_eq!(decode_folder_dir(".INBOX"), None);
        assert_eq!(decode_folder_dir(".inbox.x"), None);
        assert_eq!(decode_folder_dir("cur"), None);
    }

    #[test]
    fn account_paths() {
        assert_eq!(
            account_relpath("alice@example.org").unwrap(),
            PathBuf::from("example.org/alice")
        );
        assert_eq!(
            account_relpath("a.b+c@example.org").unwrap(),
            PathBuf::from("example.org/a.b+c")
        );
        assert_eq!(
            account_relpath("../x@example.org").unwrap(),
            PathBuf::from("example.org/%2E.%2Fx")
        );
        assert_eq!(
            account_relpath(".hidden@example.org").unwrap(),
            PathBuf::from("example.org/%2Ehidden")
        );
        for bad in [
            "",
            "alice",
            "@example.org",
            "alice@",
            "alice@../etc",
            "alice@a/b",
            "alice@.x",
            "alice@x\0",
            "al\nice@x",
        ] {
            assert!(account_relpath(bad).is_err(), "{bad:?} accepted");
        }
    }
}
