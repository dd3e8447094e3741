//! Comparators (RFC 5228 §2.7.3, RFC 4790 §9) and match types (RFC 5228 §2.7.1, RFC 5231
//! relational, draft-ietf-sieve-regex), with the match variables they produce (RFC 5229 §3.2).

use std::cmp::Ordering;

/// A comparator named by `:comparator` (RFC 5228 §2.7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Comparator {
    /// `i;octet`: bytes as they are.
    Octet,
    /// `i;ascii-casemap`: ASCII letters folded to one case (the default, RFC 5228 §2.7.3).
    AsciiCasemap,
    /// `i;ascii-numeric` (RFC 4790 §9.1): the leading decimal digits as a number; a string
    /// without one is positive infinity.
    AsciiNumeric,
}

impl Comparator {
    /// The comparator for a `:comparator` name, `None` when unknown.
    pub(crate) fn from_name(name: &str) -> Option<Comparator> {
        match name.to_ascii_lowercase().as_str() {
            "i;octet" => Some(Comparator::Octet),
            "i;ascii-casemap" => Some(Comparator::AsciiCasemap),
            "i;ascii-numeric" => Some(Comparator::AsciiNumeric),
            _ => None,
        }
    }

    fn chars_equal(self, a: char, b: char) -> bool {
        match self {
            Comparator::AsciiCasemap => a.eq_ignore_ascii_case(&b),
            _ => a == b,
        }
    }

    /// RFC 4790 ordering under this comparator.
    pub(crate) fn order(self, a: &str, b: &str) -> Ordering {
        match self {
            Comparator::Octet => a.as_bytes().cmp(b.as_bytes()),
            // Pigeonhole folds to lower case for ordering (so `_` sorts before `a`); RFC 4790
            // §9.2 speaks of upper case, but the reference decides what scripts see.
            Comparator::AsciiCasemap => a
                .bytes()
                .map(|c| c.to_ascii_lowercase())
                .cmp(b.bytes().map(|c| c.to_ascii_lowercase())),
            Comparator::AsciiNumeric => match (numeric_value(a), numeric_value(b)) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(x), Some(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
            },
        }
    }

    /// Equality under this comparator.
    pub(crate) fn equal(self, a: &str, b: &str) -> bool {
        match self {
            Comparator::Octet => a == b,
            Comparator::AsciiCasemap => a.eq_ignore_ascii_case(b),
            Comparator::AsciiNumeric => self.order(a, b) == Ordering::Equal,
        }
    }

    /// Substring under this comparator (`:contains`).
    pub(crate) fn contains(self, haystack: &str, needle: &str) -> bool {
        match self {
            Comparator::AsciiCasemap => haystack
                .to_ascii_lowercase()
                .contains(&needle.to_ascii_lowercase()),
            _ => haystack.contains(needle),
        }
    }
}

/// RFC 4790 §9.1.1: the leading digits with leading zeros dropped; `None` = positive infinity.
fn numeric_value(s: &str) -> Option<&str> {
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let d = s[..digits].trim_start_matches('0');
    Some(if d.is_empty() { "0" } else { d })
}

/// A relational operator (RFC 5231 §4: `"gt" / "ge" / "lt" / "le" / "eq" / "ne"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relation {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Relation {
    pub(crate) fn from_name(name: &str) -> Option<Relation> {
        match name.to_ascii_lowercase().as_str() {
            "gt" => Some(Relation::Gt),
            "ge" => Some(Relation::Ge),
            "lt" => Some(Relation::Lt),
            "le" => Some(Relation::Le),
            "eq" => Some(Relation::Eq),
            "ne" => Some(Relation::Ne),
            _ => None,
        }
    }

    pub(crate) fn holds(self, ord: Ordering) -> bool {
        match self {
            Relation::Gt => ord == Ordering::Greater,
            Relation::Ge => ord != Ordering::Less,
            Relation::Lt => ord == Ordering::Less,
            Relation::Le => ord != Ordering::Greater,
            Relation::Eq => ord == Ordering::Equal,
            Relation::Ne => ord != Ordering::Equal,
        }
    }
}

/// One element of a `:matches` pattern (RFC 5228 §2.7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Glob {
    Char(char),
    /// `?`: exactly one character.
    One,
    /// `*`: any run of characters.
    Many,
}

fn glob(pattern: &str) -> Vec<Glob> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '\\' => match chars.next() {
                Some(e) => Glob::Char(e),
                None => Glob::Char('\\'),
            },
            '?' => Glob::One,
            '*' => Glob::Many,
            c => Glob::Char(c),
        });
    }
    out
}

/// Whether `segment` (no `*` in it) matches `text` at `at`.
fn segment_at(segment: &[Glob], text: &[char], at: usize, cmp: Comparator) -> bool {
    at + segment.len() <= text.len()
        && segment.iter().zip(&text[at..]).all(|(g, &c)| match g {
            Glob::Char(p) => cmp.chars_equal(*p, c),
            Glob::One => true,
            Glob::Many => false,
        })
}

/// RFC 5228 §2.7.1 `:matches`, with the wildcard values for RFC 5229 §3.2: `Some(captures)` on
/// a match, where `captures[0]` is the whole text and then one entry per `*` and `?` in order.
/// Each `*` takes as little as it can (the RFC 5229 §3.2 example: `"[*] *"` on
/// `"[acme-users] [fwd] version"` gives `acme-users`), which placing every star-free segment
/// leftmost achieves in linear passes, without backtracking.
pub(crate) fn glob_match(pattern: &str, text: &str, cmp: Comparator) -> Option<Vec<String>> {
    let pat = glob(pattern);
    let text: Vec<char> = text.chars().collect();
    let segments: Vec<&[Glob]> = pat.split(|g| *g == Glob::Many).collect();
    // Where each segment starts in the text.
    let mut starts = Vec::with_capacity(segments.len());
    if segments.len() == 1 {
        if pat.len() != text.len() || !segment_at(&pat, &text, 0, cmp) {
            return None;
        }
        starts.push(0);
    } else {
        let first = segments[0];
        let last = segments[segments.len() - 1];
        if first.len() + last.len() > text.len() || !segment_at(first, &text, 0, cmp) {
            return None;
        }
        let last_start = text.len() - last.len();
        if !segment_at(last, &text, last_start, cmp) {
            return None;
        }
        starts.push(0);
        let mut pos = first.len();
        for segment in &segments[1..segments.len() - 1] {
            let found = (pos..=last_start.checked_sub(segment.len())?)
                .find(|&at| segment_at(segment, &text, at, cmp))?;
            starts.push(found);
            pos = found + segment.len();
        }
        starts.push(last_start);
    }
    let mut captures = vec![text.iter().collect::<String>()];
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            let from = starts[i - 1] + segments[i - 1].len();
            captures.push(text[from..starts[i]].iter().collect());
        }
        for (k, g) in segment.iter().enumerate() {
            if *g == Glob::One {
                captures.push(text[starts[i] + k].to_string());
            }
        }
    }
    Some(captures)
}

/// RFC 5229 §4.1 `:quotewildcard`: a backslash before every `*`, `?` and `\`.
pub(crate) fn quote_wildcard(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5229 §3.2 examples.
    #[test]
    fn match_variables_from_rfc5229() {
        let c = glob_match(
            "[*] *",
            "[acme-users] [fwd] version 1.0 is out",
            Comparator::AsciiCasemap,
        )
        .unwrap();
        assert_eq!(c[1], "acme-users");
        assert_eq!(c[2], "[fwd] version 1.0 is out");
        let c = glob_match(
            "*<*@*",
            "coyote-sieve <coyote@example.org>",
            Comparator::AsciiCasemap,
        )
        .unwrap();
        assert_eq!(c[1..], ["coyote-sieve ", "coyote", "example.org>"]);
        let c = glob_match("?*?", "abcd", Comparator::Octet).unwrap();
        assert_eq!(c, ["abcd", "a", "bc", "d"]);
    }

    /// RFC 5228 §2.7.1: `*`, `?`, escapes, and the comparator's case handling.
    #[test]
    fn wildcards() {
        assert!(glob_match("*", "", Comparator::Octet).is_some());
        assert!(glob_match("a*b*c", "aXXbYc", Comparator::Octet).is_some());
        assert!(glob_match("a*b*c", "aXXbYcd", Comparator::Octet).is_none());
        assert!(glob_match("ab*ba", "aba", Comparator::Octet).is_none());
        assert!(glob_match("\\*x", "*x", Comparator::Octet).is_some());
        assert!(glob_match("\\*x", "ax", Comparator::Octet).is_none());
        assert!(glob_match("HELLO?", "hello!", Comparator::AsciiCasemap).is_some());
        assert!(glob_match("HELLO?", "hello!", Comparator::Octet).is_none());
        assert!(glob_match("?", "é", Comparator::Octet).is_some());
    }

    /// RFC 4790 §9.1: i;ascii-numeric.
    #[test]
    fn numeric_comparator() {
        let n = Comparator::AsciiNumeric;
        assert!(n.equal("007", "7"));
        assert_eq!(n.order("10", "9"), Ordering::Greater);
        assert_eq!(n.order("abc", "99999"), Ordering::Greater);
        assert!(n.equal("x", "y"));
        assert!(n.equal("12abc", "12"));
    }

    /// i;ascii-casemap ordering as Pigeonhole's sieve-test shows it: `"_x"` is not above `"a"`.
    #[test]
    fn casemap_ordering() {
        let c = Comparator::AsciiCasemap;
        assert_eq!(c.order("_x", "a"), Ordering::Less);
        assert_eq!(c.order("ABC", "abd"), Ordering::Less);
        assert_eq!(c.order("abc", "ABC"), Ordering::Equal);
    }

    /// RFC 5231 §4 relations.
    #[test]
    fn relations() {
        assert!(Relation::Ge.holds(Ordering::Equal));
        assert!(!Relation::Gt.holds(Ordering::Equal));
        assert!(Relation::Ne.holds(Ordering::Less));
        assert_eq!(Relation::from_name("LE"), Some(Relation::Le));
        assert_eq!(Relation::from_name("xx"), None);
    }
}
