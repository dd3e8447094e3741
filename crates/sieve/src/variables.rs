//! RFC 5229 variables: `${…}` expansion and the `set` modifiers.

use crate::program::Modifier;

/// Where expansion finds a variable's value.
pub(crate) trait Lookup {
    /// The value of a named variable (lower-cased name), `None` when unset.
    fn variable(&self, name: &str) -> Option<&str>;
    /// Match variable `n` (RFC 5229 §3.2), `None` when unset.
    fn match_variable(&self, n: usize) -> Option<&str>;
}

/// The longest value a variable holds (Pigeonhole's `sieve_variables_max_variable_size`
/// default): RFC 5229 §3 lets implementations limit it, and without a limit a few lines of
/// `set "x" "${x}${x}"` would double a string until memory runs out.
pub(crate) const MAX_VARIABLE_BYTES: usize = 4000;

/// The longest string an expansion produces (a long key list of references cannot grow
/// without bound either).
const MAX_EXPANDED_BYTES: usize = 1 << 20;

/// `value` cut to at most `max` bytes, at a character boundary.
pub(crate) fn truncate(mut value: String, max: usize) -> String {
    if value.len() > max {
        let mut cut = max;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        value.truncate(cut);
    }
    value
}

/// RFC 5229 §3: replaces every `${name}` and `${N}` by its value (unset ones by the empty
/// string). A `${` that does not start a valid reference stays as written. The result is
/// capped at [`MAX_EXPANDED_BYTES`].
pub(crate) fn expand(text: &str, vars: &dyn Lookup) -> String {
    truncate(expand_all(text, vars), MAX_EXPANDED_BYTES)
}

fn expand_all(text: &str, vars: &dyn Lookup) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if out.len() > MAX_EXPANDED_BYTES {
            return out;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            // RFC 5229 §3.2: "${0}" … "${9}"; leading zeros allowed.
            let value = name
                .parse::<usize>()
                .ok()
                .and_then(|n| vars.match_variable(n));
            out.push_str(value.unwrap_or(""));
            rest = &after[end + 1..];
        } else if is_reference(name) {
            let lower = name.to_ascii_lowercase();
            out.push_str(vars.variable(&lower).unwrap_or(""));
            rest = &after[end + 1..];
        } else {
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `identifier *("." identifier)` (RFC 5229 §3 variable-ref with namespaces).
fn is_reference(name: &str) -> bool {
    name.split('.').all(|part| {
        let mut c = part.chars();
        matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
            && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// RFC 5229 §4.1: applies the modifiers, already sorted from highest precedence to lowest.
pub(crate) fn apply_modifiers(value: String, modifiers: &[Modifier]) -> String {
    modifiers.iter().fold(value, |v, m| match m {
        Modifier::Lower => v.to_lowercase(),
        Modifier::Upper => v.to_uppercase(),
        Modifier::LowerFirst => first_char(&v, |c| c.to_lowercase().collect()),
        Modifier::UpperFirst => first_char(&v, |c| c.to_uppercase().collect()),
        Modifier::QuoteWildcard => crate::matching::quote_wildcard(&v),
        Modifier::QuoteRegex => regex::escape(&v),
        Modifier::EncodeUrl => encode_url(&v),
        Modifier::Length => v.chars().count().to_string(),
    })
}

fn first_char(v: &str, f: impl Fn(char) -> String) -> String {
    let mut chars = v.chars();
    match chars.next() {
        Some(c) => f(c) + chars.as_str(),
        None => String::new(),
    }
}

/// RFC 5435 §6 `:encodeurl`: percent-encode all but RFC 3986 unreserved characters.
fn encode_url(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Vars(HashMap<String, String>, Vec<String>);

    impl Lookup for Vars {
        fn variable(&self, name: &str) -> Option<&str> {
            self.0.get(name).map(String::as_str)
        }
        fn match_variable(&self, n: usize) -> Option<&str> {
            self.1.get(n).map(String::as_str)
        }
    }

    /// RFC 5229 §3 examples.
    #[test]
    fn expansion() {
        let vars = Vars(
            [("company".to_string(), "ACME".to_string())].into(),
            vec!["whole".into(), "one".into()],
        );
        assert_eq!(expand("${company}", &vars), "ACME");
        assert_eq!(expand("${BAD${Company}", &vars), "${BADACME");
        assert_eq!(
            expand("${President, ${Company} Inc.}", &vars),
            "${President, ACME Inc.}"
        );
        assert_eq!(expand("${unknown}x", &vars), "x");
        assert_eq!(expand("${01} ${2}", &vars), "one ");
        assert_eq!(expand("${", &vars), "${");
    }

    /// Values are cut at a character boundary.
    #[test]
    fn truncation() {
        assert_eq!(truncate("aé".into(), 2), "a");
        assert_eq!(truncate("abc".into(), 5), "abc");
    }

    /// RFC 5229 §4.1 examples: precedence order.
    #[test]
    fn modifiers() {
        use Modifier::*;
        assert_eq!(
            apply_modifiers("juMBlEd lETteRS".into(), &[Lower, UpperFirst]),
            "Jumbled letters"
        );
        assert_eq!(
            apply_modifiers("juMBlEd lETteRS".into(), &[Upper, LowerFirst]),
            "jUMBLED LETTERS"
        );
        assert_eq!(
            apply_modifiers("Ma*rk?".into(), &[QuoteWildcard, Length]),
            "8"
        );
        assert_eq!(
            apply_modifiers("a b/é".into(), &[EncodeUrl]),
            "a%20b%2F%C3%A9"
        );
    }
}
