//! What the tests read from the message: header field values (unfolded, RFC 2047 words
//! decoded, as Pigeonhole compares them) and the addresses in address fields.

use postern_mail::header;

/// The values of every field called `name`, in order, unfolded and trimmed, with RFC 2047
/// encoded words decoded in any charset mail-parser knows (RFC 5228 §2.7.2: comparisons
/// are done on the decoded values).
pub(crate) fn header_values(message: &[u8], name: &str) -> Vec<String> {
    header::fields(message)
        .filter(|f| f.is(name))
        .map(|f| crate::ext::headers::decode_value(f.raw_value))
        .collect()
}

/// The raw values of `name` (unfolded, not decoded), for the address and date tests.
pub(crate) fn raw_values(message: &[u8], name: &str) -> Vec<String> {
    header::fields(message)
        .filter(|f| f.is(name))
        .map(|f| f.value())
        .collect()
}

/// The addresses in an address-list field value (RFC 5322 §3.4): display names, comments,
/// groups and angle brackets removed; what Pigeonhole hands to `address`. A group with no
/// members gives nothing; an entry that is no address at all is kept as written.
pub(crate) fn addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Text of the current entry outside angle brackets, and the bracketed address if any.
    let mut current = String::new();
    let mut angle: Option<String> = None;
    let mut in_angle = false;
    let mut chars = value.chars().peekable();
    let flush = |current: &mut String, angle: &mut Option<String>, out: &mut Vec<String>| {
        let address = angle.take().unwrap_or_else(|| current.clone());
        current.clear();
        let address: String = address.split_whitespace().collect();
        if !address.is_empty() {
            out.push(address);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                // Quoted strings: kept in a local part, dropped with a display name.
                let mut quoted = String::from('"');
                while let Some(q) = chars.next() {
                    quoted.push(q);
                    if q == '\\' {
                        if let Some(e) = chars.next() {
                            quoted.push(e);
                        }
                    } else if q == '"' {
                        break;
                    }
                }
                match angle.as_mut().filter(|_| in_angle) {
                    Some(a) => a.push_str(&quoted),
                    None => current.push_str(&quoted),
                }
            }
            '(' => {
                let mut depth = 1;
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => {
                            chars.next();
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '<' if !in_angle => {
                in_angle = true;
                angle = Some(String::new());
            }
            '>' if in_angle => {
                in_angle = false;
                if let Some(a) = angle.as_mut() {
                    // `<@route:addr>` (RFC 5322 §4.4 obs-route): the route is dropped.
                    if a.starts_with('@') {
                        if let Some((_, addr)) = a.split_once(':') {
                            *a = addr.to_string();
                        }
                    }
                }
            }
            ':' if !in_angle && angle.is_none() => current.clear(),
            ',' | ';' if !in_angle => flush(&mut current, &mut angle, &mut out),
            c => match angle.as_mut().filter(|_| in_angle) {
                Some(a) => a.push(c),
                None => current.push(c),
            },
        }
    }
    flush(&mut current, &mut angle, &mut out);
    out
}

/// The local part and domain of an address (split at the last `@`); no `@`: all local part.
pub(crate) fn split_address(address: &str) -> (&str, Option<&str>) {
    match address.rsplit_once('@') {
        Some((l, d)) => (l, Some(d)),
        None => (address, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5322 §3.4 address lists, §A.1.3 groups.
    #[test]
    fn address_lists() {
        assert_eq!(
            addresses(
                "\"Joe Q. Public\" <john.q.public@example.com>, Mary <mary@x.test>, jdoe@one.test"
            ),
            ["john.q.public@example.com", "mary@x.test", "jdoe@one.test"]
        );
        assert_eq!(
            addresses("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, x@y"),
            ["c@a.test", "joe@where.test", "jdoe@one.test", "x@y"]
        );
        assert_eq!(addresses("Undisclosed recipients:;"), Vec::<String>::new());
        assert_eq!(
            addresses("pete(his account)@silly.test(his host)"),
            ["pete@silly.test"]
        );
        assert_eq!(addresses("\"a,b\"@example.org"), ["\"a,b\"@example.org"]);
    }

    /// Any field text: the parser answers without panicking, and never with white space
    /// inside an address.
    #[test]
    fn any_text_parses() {
        for text in [
            "",
            "<",
            ">",
            "\"",
            "(",
            "a@",
            "@b",
            ":;",
            "<<a@b>>",
            "\"\\",
            "(((",
            "a:b:c;d",
            "<@route:a@b>",
            "é <ü@x>",
            ",,,",
            ";",
            "\"a\" <",
            "g: <a@b>, (c) d@e ;",
        ] {
            for a in addresses(text) {
                assert!(!a.chars().any(char::is_whitespace), "{text:?} gave {a:?}");
            }
        }
    }

    proptest::proptest! {
        /// Random field text never panics the address parser.
        #[test]
        fn addresses_never_panic(text in "\\PC{0,120}") {
            for a in addresses(&text) {
                proptest::prop_assert!(!a.is_empty());
            }
        }
    }
}
