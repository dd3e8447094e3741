//! Argument checks the compiler makes once (and the interpreter repeats for values built from
//! variables): variable names, addresses, header names, regular expressions, zones.

use crate::ext;
use crate::lexer::Pos;
use crate::matching::Comparator;
use crate::CompileError;

/// RFC 5229 §3: `variable-name = [namespace "."] identifier`, case-insensitive (stored
/// lower-cased). The only namespace known is RFC 6609 §3.5's `global`.
pub(crate) fn variable_name(name: &str, pos: Pos) -> Result<String, CompileError> {
    let lower = name.to_ascii_lowercase();
    let mut parts = lower.split('.').collect::<Vec<_>>();
    let ok_ident = |s: &str| {
        let mut c = s.chars();
        matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
            && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let last = parts.pop().unwrap_or_default();
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(pos.error("cannot assign to match variable"));
    }
    if let Some(first) = parts.first().filter(|&&n| n != "global") {
        return Err(pos.error(format!(
            "referring to variable in unknown namespace '{first}'"
        )));
    }
    if !ok_ident(last) || parts.len() > 1 {
        return Err(pos.error(format!("invalid variable name '{name}'")));
    }
    Ok(lower)
}

/// RFC 5228 §2.4.2.4 encoded-character, done at compile time.
pub(crate) fn decode_encoded(text: &str) -> Result<String, String> {
    ext::encoded::decode(text)
}

/// RFC 5228 §4.2: redirect needs an RFC 5321 mailbox (`local@domain`, no display name).
pub(crate) fn valid_redirect_address(address: &str) -> bool {
    let a = address.trim();
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !a
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | ',' | '(' | ')'))
}

/// RFC 5228 §5.1: the address test applies to fields that hold addresses; these are the
/// ones Pigeonhole accepts (checked against its sieve-test).
pub(crate) fn is_address_header(name: &str) -> bool {
    const ADDRESS_HEADERS: [&str; 17] = [
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "resent-from",
        "resent-sender",
        "resent-reply-to",
        "resent-to",
        "resent-cc",
        "resent-bcc",
        "delivered-to",
        "errors-to",
        "x-original-to",
        "mail-followup-to",
        "mail-reply-to",
    ];
    ADDRESS_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// RFC 5230 §4.3: `:from` is a mailbox, with or without a display name
/// (`Name <local@domain>` or `local@domain`).
pub(crate) fn valid_from_address(from: &str) -> bool {
    let address = match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => &from[open + 1..close],
        (None, None) => from,
        _ => return false,
    };
    valid_redirect_address(address)
}

/// RFC 5322 §3.6.8 field-name: printable ASCII but `:`, at least one character.
pub(crate) fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// The largest value addheader may add (Pigeonhole's `sieve_editheader_max_header_size`
/// default), so edits cannot inflate the message.
pub(crate) const MAX_HEADER_VALUE_BYTES: usize = 2048;

/// RFC 5293 §4–§5: the field name of addheader/deleteheader must be a valid one.
pub(crate) fn header_name(name: &str, command: &str, pos: Pos) -> Result<(), CompileError> {
    if valid_header_name(name) {
        Ok(())
    } else {
        Err(pos.error(format!(
            "{command}: specified field name '{name}' is invalid"
        )))
    }
}

/// RFC 5435 §3.2: the method of `notify` must be one we support (`mailto`, RFC 5436) and
/// a valid URI of it.
pub(crate) fn notify_method(uri: &str) -> Result<(), String> {
    ext::mailto::valid_method(uri)
        .map_err(|e| format!("notify: invalid notify method '{uri}': {e}"))
}

/// RFC 5260 §4.2 date-part names.
pub(crate) fn valid_date_part(part: &str) -> bool {
    ext::date::is_valid_part(part)
}

/// RFC 5260 §4.1 `:zone` values (`+hhmm` / `-hhmm`), in minutes east of UTC.
pub(crate) fn zone_offset(zone: &str) -> Option<i32> {
    ext::date::parse_zone(zone)
}

/// draft-ietf-sieve-regex §3: POSIX extended expressions, run here by the `regex` crate (linear
/// time, no backreferences) with the program size capped so a script cannot exhaust memory.
/// `i;ascii-casemap` makes the match case-insensitive.
pub(crate) fn build_regex(
    pattern: &str,
    comparator: Comparator,
    max_bytes: usize,
) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(comparator == Comparator::AsciiCasemap)
        .size_limit(max_bytes)
        .dfa_size_limit(max_bytes)
        .build()
        .map_err(|e| format!("invalid regular expression '{pattern}' for regex match: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5229 §3 names, RFC 6609 §3.5 namespace.
    #[test]
    fn variable_names() {
        let p = Pos::default();
        assert_eq!(variable_name("Foo_1", p).unwrap(), "foo_1");
        assert_eq!(variable_name("global.x", p).unwrap(), "global.x");
        assert!(variable_name("1a", p).is_err());
        assert_eq!(
            variable_name("other.x", p).unwrap_err().message,
            "referring to variable in unknown namespace 'other'"
        );
        assert_eq!(
            variable_name("1", p).unwrap_err().message,
            "cannot assign to match variable"
        );
        assert!(variable_name("", p).is_err());
    }

    #[test]
    fn addresses_and_regexes() {
        assert!(valid_redirect_address("a@example.org"));
        assert!(!valid_redirect_address("Bob <a@example.org>"));
        assert!(!valid_redirect_address("nobody"));
        assert!(valid_from_address("Me <me@example.org>"));
        assert!(valid_from_address("me@example.org"));
        assert!(!valid_from_address("not an address"));
        assert!(!valid_from_address("Me <me@example.org"));
        assert!(build_regex("(a", Comparator::Octet, 1 << 20).is_err());
        assert!(build_regex("a{1000}{1000}", Comparator::Octet, 1 << 16).is_err());
        assert!(build_regex("^a.*b$", Comparator::Octet, 1 << 20).is_ok());
    }
}
