//! The last delivery attempt's words, taken apart for `postern queue show`: the host tried,
//! the remote reply, the TLS policy that failed (with its RFC 8460 result type), and the reason
//! in clear words. Works on the texts this crate writes into a recipient's last error.

/// What a recipient's last error says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explained {
    /// `host [address]` of the last attempt, when the text names one.
    pub host: Option<String>,
    /// The remote server's reply (`450 4.2.0 ...`), when there was one.
    pub reply: Option<String>,
    /// The TLS policy that failed (`DANE (RFC 7672)`...) and its result type, when one did.
    pub tls_policy: Option<String>,
    /// The reason in clear words.
    pub reason: String,
}

/// RFC 8460 §4.3 result types, as written in our texts.
const RESULT_TYPES: &[&str] = &[
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
    "tlsa-invalid",
    "dnssec-invalid",
    "dane-required",
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
];

/// The `host [address]` at the start of `s` (after an enhanced code), if there is one.
fn host_at(s: &str) -> Option<String> {
    let open = s.find(" [")?;
    let close = s[open..].find(']')? + open;
    let host = s[..open].rsplit(' ').next().unwrap_or_default();
    if host.is_empty() || !host.contains('.') && host.parse::<std::net::IpAddr>().is_err() {
        return None;
    }
    Some(format!("{host}{}", &s[open..=close]))
}

/// Takes apart the text of a recipient's last error.
pub fn explain(text: &str) -> Explained {
    let mut out = Explained::default();
    // Our own enhanced code first, then the words.
    let body = match text.split_once(' ') {
        Some((code, rest)) if code.split('.').count() == 3 && code.starts_with(['4', '5']) => rest,
        _ => text,
    };
    // "HOST [IP] said: REPLY" / "HOST [IP] said after STAGE: REPLY"
    if text.contains("asked us to slow down") {
        // Our own back-off: the reply is quoted inside, no host was tried.
    } else if let Some(pos) = body.find(" said") {
        out.host = host_at(body);
        if let Some(colon) = body[pos..].find(": ") {
            out.reply = Some(body[pos + colon + 2..].to_string());
        }
    } else if let Some(pos) = body.find(" during ") {
        // "HOST: ADDR refused WHAT during STAGE: REPLY"
        if let Some((host, rest)) = body.split_once(": ") {
            if let Some(addr) = rest.split_whitespace().next() {
                out.host = Some(format!("{host} [{addr}]"));
            }
        }
        if let Some(colon) = body[pos..].find(": ") {
            out.reply = Some(body[pos + colon + 2..].to_string());
        }
    } else {
        out.host = host_at(body);
    }
    let result_type = RESULT_TYPES.iter().find(|r| text.contains(*r)).copied();
    let policy = if text.contains("DANE") || text.contains("TLSA") {
        Some("DANE (RFC 7672)")
    } else if text.contains("MTA-STS") {
        Some("MTA-STS (RFC 8461)")
    } else if text.contains("REQUIRETLS") {
        Some("REQUIRETLS (RFC 8689)")
    } else if text.contains("STARTTLS") && text.starts_with("4.7.") {
        Some("TLS required by the configuration")
    } else {
        None
    };
    out.tls_policy = policy.map(|p| match result_type {
        Some(r) => format!("{p}: {r}"),
        None => p.to_string(),
    });
    let reply_code = out
        .reply
        .as_deref()
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse::<u16>().ok());
    let reply_words = out.reply.as_deref().unwrap_or("");
    out.reason = if text.contains("asked us to slow down") {
        "the destination asked us to slow down (421 or 4.7.x); postern waits before its next attempt there".into()
    } else if let Some(p) = policy {
        match result_type {
            Some("tlsa-invalid") => format!("the server's certificate matches none of its TLSA records: {p} does not allow delivery"),
            Some("dnssec-invalid") => format!("the DNSSEC lookup of the TLSA records failed: {p} does not allow this host"),
            Some("certificate-not-trusted") => format!("the server's certificate does not chain to a trusted CA: {p} does not allow delivery"),
            Some("certificate-expired") => format!("the server's certificate has expired: {p} does not allow delivery"),
            Some("certificate-host-mismatch") => format!("the server's certificate is not for its MX name: {p} does not allow delivery"),
            Some("starttls-not-supported") => format!("the server does not offer STARTTLS, which {p} requires"),
            Some("sts-policy-invalid") => format!("the MX host is not in the domain's policy: {p}"),
            _ if text.contains("does not offer STARTTLS") => format!("the server does not offer STARTTLS, which {p} requires"),
            _ if text.contains("no MX host") => format!("no MX host of the domain is allowed by {p}"),
            _ => format!("TLS failed where {p} requires it"),
        }
    } else if text.contains("timed out") && text.contains("connect") {
        "the host did not answer (the TCP connection timed out)".into()
    } else if text.contains("Connection refused") || text.contains("connection refused") {
        "the host refused the connection (nothing listening on the SMTP port)".into()
    } else if text.contains("no address of") {
        "none of the host's addresses could be connected to".into()
    } else if text.contains("DNS lookup") || text.contains("no DNS resolver") {
        "the DNS lookup of the destination failed (temporarily)".into()
    } else if text.contains("has no address") || text.contains("does not exist") {
        "the destination domain or its MX host does not exist".into()
    } else if text.contains("null MX") {
        "the destination domain accepts no mail (null MX)".into()
    } else if text.contains("closed the connection") {
        "the server closed the connection in the middle of the session".into()
    } else if let Some(code) = reply_code {
        let enhanced = reply_words.split_whitespace().nth(1).unwrap_or("");
        match (code, enhanced) {
            (421, _) => "the server is busy or shutting down (421)".into(),
            (_, e) if e.starts_with("4.2.2") || e.starts_with("5.2.2") => {
                "the recipient's mailbox is full".into()
            }
            (_, e) if e.starts_with("4.7.") => {
                "the receiver refused for now by its policy (greylisting or a rate limit)".into()
            }
            (_, e) if e.starts_with("5.1.1") => "the recipient does not exist there".into(),
            (_, e) if e.starts_with("5.7.") => "the receiver refused it by its policy".into(),
            (400..=499, _) => "the receiver refused it for now (a temporary failure)".into(),
            (500..=599, _) => "the receiver refused it for good (a permanent failure)".into(),
            _ => "the receiver's reply".into(),
        }
    } else if text.contains("could be reached") {
        "no host of the destination could be reached".into()
    } else {
        "see the text above".into()
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_hosts_and_reasons() {
        let e = explain("mx.example [192.0.2.1] said after RCPT TO: 452 4.2.2 mailbox full");
        assert_eq!(e.host.as_deref(), Some("mx.example [192.0.2.1]"));
        assert_eq!(e.reply.as_deref(), Some("452 4.2.2 mailbox full"));
        assert_eq!(e.reason, "the recipient's mailbox is full");
        assert_eq!(e.tls_policy, None);

        let e = explain("4.4.2 mx.example: 192.0.2.1:25 refused the greeting during the greeting: 421 4.3.2 busy");
        assert_eq!(e.host.as_deref(), Some("mx.example [192.0.2.1:25]"));
        assert_eq!(e.reply.as_deref(), Some("421 4.3.2 busy"));
        assert!(e.reason.contains("busy"), "{e:?}");

        let e = explain("4.7.5 mx.example [192.0.2.1]: the certificate does not satisfy the MTA-STS policy (RFC 8461): certificate-not-trusted (unknown issuer)");
        assert_eq!(e.host.as_deref(), Some("mx.example [192.0.2.1]"));
        assert_eq!(
            e.tls_policy.as_deref(),
            Some("MTA-STS (RFC 8461): certificate-not-trusted")
        );
        assert!(e.reason.contains("does not chain"), "{e:?}");

        let e = explain("4.7.5 mx.example [192.0.2.1]: the certificate does not satisfy DANE (RFC 7672): tlsa-invalid (no match)");
        assert_eq!(
            e.tls_policy.as_deref(),
            Some("DANE (RFC 7672): tlsa-invalid")
        );
        assert!(e.reason.contains("TLSA"), "{e:?}");

        let e = explain(
            "4.4.2 connect to mx.example [192.0.2.1:25]: Connection refused (os error 111)",
        );
        assert!(e.reason.contains("refused the connection"), "{e:?}");
        assert_eq!(e.host.as_deref(), Some("mx.example [192.0.2.1:25]"));
        let e = explain(
            "4.4.5 example.test asked us to slow down (mx said: 421 x); no new attempt for 50 s",
        );
        assert!(e.reason.contains("slow down"), "{e:?}");
        assert_eq!(explain("").reason, "see the text above");
    }
}
