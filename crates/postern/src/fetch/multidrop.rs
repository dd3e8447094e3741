//! Multidrop: who a message fetched from a shared remote mailbox is for, read from the header
//! fields the remote's MTA left (fetchmail's "envelope" option). Pure functions over the
//! message's bytes; the caller keeps only the addresses that are local.
//!
//! - `Delivered-To:` (Postfix, qmail, Exim) and `X-Original-To:` (Postfix): the address itself.
//! - `Received:` (RFC 5321 §4.4): the `for <addr>` clause of the topmost field that has one.
//! - Any other field named: the addresses in it (`<a@b>` forms, else bare `a@b` words).

/// The header section of a message (up to the blank line), fields unfolded (RFC 5322 §2.2.3):
/// `(name, value)` in message order.
pub(crate) fn header_fields(message: &[u8]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(line);
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(text.trim());
            }
            continue;
        }
        match text.split_once(':') {
            Some((name, value)) if !name.is_empty() && !name.contains(' ') => {
                fields.push((name.to_string(), value.trim().to_string()));
            }
            // Not a field (an mbox "From " line, junk): not part of any field.
            _ => {}
        }
    }
    fields
}

/// The recipients named by the first of `names` present in the header (in the order given),
/// deduplicated case-insensitively, in order of appearance.
pub(crate) fn recipients(message: &[u8], names: &[String]) -> Vec<String> {
    let fields = header_fields(message);
    for name in names {
        let mut found = Vec::new();
        if name.eq_ignore_ascii_case("Received") {
            if let Some(addr) = fields
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("Received"))
                .find_map(|(_, v)| received_for(v))
            {
                found.push(addr);
            }
        } else {
            for (_, value) in fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
                found.extend(addresses(value));
            }
        }
        if !found.is_empty() {
            let mut out: Vec<String> = Vec::new();
            for a in found {
                if !out.iter().any(|o| o.eq_ignore_ascii_case(&a)) {
                    out.push(a);
                }
            }
            return out;
        }
    }
    Vec::new()
}

/// The addresses in a field value (RFC 5322 §3.4 address lists, loosely): the list is split
/// at commas outside quotes; each part gives its `<...>` address, or else its word with an `@`.
pub(crate) fn addresses(value: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    let mut out = Vec::new();
    for part in parts {
        let addr = match (part.rfind('<'), part.rfind('>')) {
            (Some(open), Some(close)) if open < close => Some(part[open + 1..close].trim()),
            _ => part
                .split_whitespace()
                .map(|w| w.trim_end_matches(';'))
                .find(|w| plausible(w)),
        };
        if let Some(a) = addr.filter(|a| plausible(a)) {
            out.push(a.to_string());
        }
    }
    out
}

/// The address of a Received field's `for` clause (RFC 5321 §4.4 "For" = CFWS "FOR" FWS
/// ( Path / Mailbox )), before the `;` that starts the date.
pub(crate) fn received_for(value: &str) -> Option<String> {
    let clauses = value.rsplit_once(';').map_or(value, |(c, _)| c);
    let words: Vec<&str> = clauses.split_whitespace().collect();
    let i = words.iter().position(|w| w.eq_ignore_ascii_case("for"))?;
    let next = words.get(i + 1)?;
    let addr = next
        .trim_start_matches('<')
        .trim_end_matches([';', ','])
        .trim_end_matches('>');
    plausible(addr).then(|| addr.to_string())
}

/// `local@domain` without spaces or brackets.
fn plausible(addr: &str) -> bool {
    match addr.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !addr
                    .bytes()
                    .any(|b| b <= b' ' || matches!(b, b'<' | b'>' | b',' | b'(' | b')'))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const MESSAGE: &[u8] = b"Return-Path: <list@lists.example>\r\n\
Delivered-To: catchall@provider.example\r\n\
Received: from mx.provider.example by pop.provider.example\r\n\
\twith ESMTP id 123\r\n\
\tfor <Bob@Example.ORG>; Thu, 3 Dec 2026 10:00:00 +0000\r\n\
Received: from a by b with SMTP for carol@example.org; Thu, 3 Dec 2026 09:00:00 +0000\r\n\
X-Original-To: alice@example.org, \"Bob B\" <bob@example.org>\r\n\
X-Original-To: <ALICE@example.org>\r\n\
Subject: hi\r\n\
\r\n\
Delivered-To: body@example.org\r\n";

    #[test]
    fn fields_are_unfolded_and_stop_at_the_body() {
        let f = header_fields(MESSAGE);
        assert_eq!(f.len(), 7);
        assert_eq!(f[2].0, "Received");
        assert!(f[2].1.contains("with ESMTP id 123 for <Bob@Example.ORG>;"));
        assert!(!f.iter().any(|(_, v)| v.contains("body@")));
    }

    #[test]
    fn the_first_field_present_wins() {
        assert_eq!(
            recipients(MESSAGE, &names(&["X-Original-To", "Delivered-To"])),
            ["alice@example.org", "bob@example.org"]
        );
        assert_eq!(
            recipients(MESSAGE, &names(&["Delivered-To", "X-Original-To"])),
            ["catchall@provider.example"]
        );
        assert_eq!(
            recipients(MESSAGE, &names(&["X-Envelope-To", "Received"])),
            ["Bob@Example.ORG"]
        );
        assert!(recipients(MESSAGE, &names(&["X-Envelope-To"])).is_empty());
        assert!(recipients(b"Subject: x\r\n\r\nbody", &names(&["Received"])).is_empty());
    }

    #[test]
    fn received_for_clauses() {
        assert_eq!(
            received_for("from a by b with SMTP id 1 for <x@y.z>; Mon, 1 Jan 2024").as_deref(),
            Some("x@y.z")
        );
        assert_eq!(
            received_for("from a by b with LMTP id 1 FOR x@y.z; date").as_deref(),
            Some("x@y.z")
        );
        assert_eq!(received_for("from a by b; date"), None);
        assert_eq!(received_for("from a by b for <>; date"), None);
        // "for" only in the date part does not count.
        assert_eq!(received_for("from a by b; for x@y.z"), None);
    }

    #[test]
    fn addresses_in_values() {
        assert_eq!(addresses("\"A, B\" <a@b.c>, <d@e.f>"), ["a@b.c", "d@e.f"]);
        assert_eq!(addresses("a@b.c, d@e.f"), ["a@b.c", "d@e.f"]);
        assert!(addresses("undisclosed-recipients:;").is_empty());
        assert!(addresses("<>").is_empty());
    }
}
