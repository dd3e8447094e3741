//! RFC 8689 (SMTP Require TLS Option) for the client: which hops a REQUIRETLS message may use,
//! the `TLS-Required: No` header field that waives DANE and MTA-STS, and the status a message
//! gets when no hop qualifies.

use crate::policy::HopTls;
use crate::route::Hop;
use postern_mail::{EnhancedCode, Status};
use postern_spool::Envelope;

/// How RFC 8689 shapes the delivery of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Demand {
    /// Neither REQUIRETLS nor `TLS-Required: No`: the destination's policies as they are.
    Normal,
    /// §4.2.1: REQUIRETLS: verified TLS only, to servers that advertise REQUIRETLS.
    RequireTls,
    /// §4.2.2: `TLS-Required: No`: DANE and MTA-STS failures are ignored.
    IgnorePolicies,
}

/// The demand of a message: its envelope's REQUIRETLS flag, else its `TLS-Required` field.
/// RFC 8689 §4.2.2: the field is ignored when the message has the REQUIRETLS parameter.
pub(crate) fn demand(envelope: &Envelope, message: &[u8]) -> Demand {
    if applies(envelope) {
        Demand::RequireTls
    } else if tls_required_no(message) {
        Demand::IgnorePolicies
    } else {
        Demand::Normal
    }
}

/// RFC 8689 §4.2.1: the REQUIRETLS requirements apply to a message with the flag and a
/// non-empty return path (a bounce, with the null sender, is sent as usual).
pub(crate) fn applies(envelope: &Envelope) -> bool {
    envelope.requiretls && envelope.sender.as_deref().is_some_and(|s| !s.is_empty())
}

/// RFC 8689 §4.2.2 / §5.1: the message has a `TLS-Required: No` header field (the value is
/// case-insensitive; comments and surrounding white space are allowed by the ABNF's CFWS).
pub(crate) fn tls_required_no(message: &[u8]) -> bool {
    postern_mail::header::fields(message)
        .filter(|f| f.is("TLS-Required"))
        .any(|f| {
            let value = String::from_utf8_lossy(f.raw_value);
            strip_comments(&value).trim().eq_ignore_ascii_case("no")
        })
}

/// The value without RFC 5322 §3.2.2 comments (nested, with quoted-pairs) and line folds.
fn strip_comments(value: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if depth > 0 => {
                chars.next();
            }
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            '\r' | '\n' => out.push(' '),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// RFC 8689 §4.2.1: a hop whose TLS is authenticated: DANE with usable TLSA records (whose
/// MX lookup was DNSSEC-secure), MTA-STS in `enforce` mode, or a configured route or relay
/// whose certificate is verified.
pub(crate) fn verified(tls: &HopTls) -> bool {
    matches!(
        tls,
        HopTls::Dane(_) | HopTls::Sts { enforce: true } | HopTls::Required { verify: true }
    )
}

/// The hops a REQUIRETLS message may use (in order), or the permanent failure when there is
/// none (RFC 8689 §5: `5.7.30`, no downgrade).
pub(crate) fn require(
    hops: Vec<(Hop, HopTls)>,
    domain: &str,
) -> Result<Vec<(Hop, HopTls)>, Status> {
    let unverified: Vec<String> = hops
        .iter()
        .filter(|(_, t)| !verified(t))
        .map(|(h, _)| h.host.clone())
        .collect();
    let kept: Vec<(Hop, HopTls)> = hops.into_iter().filter(|(_, t)| verified(t)).collect();
    if kept.is_empty() {
        let mut names = unverified;
        names.dedup();
        return Err(failure(format_args!(
            "no route to {domain} has verified TLS (DANE, MTA-STS enforce, or a verified \
             required-TLS route), which REQUIRETLS needs: {}",
            names.join(", ")
        )));
    }
    Ok(kept)
}

/// RFC 8689 §4.2.2: with `TLS-Required: No` DANE and MTA-STS do not apply: every hop gets the
/// configured treatment (`fallback`: opportunistic TLS, or the configuration's requirement).
pub(crate) fn ignore_policies(hops: Vec<(Hop, HopTls)>, fallback: &HopTls) -> Vec<(Hop, HopTls)> {
    hops.into_iter()
        .map(|(h, t)| match t {
            HopTls::Required { .. } | HopTls::Opportunistic => (h, t),
            _ => (h, fallback.clone()),
        })
        .collect()
}

/// RFC 8689 §4.2.1: the session qualifies when it is over TLS and the server advertised
/// REQUIRETLS; else why not (a reason for the next hop or the bounce).
pub(crate) fn session_refusal(tls: bool, advertised: bool, peer: &str) -> Option<String> {
    if !tls {
        Some(format!(
            "5.7.30 {peer} did not use TLS, which REQUIRETLS needs"
        ))
    } else if !advertised {
        Some(format!(
            "5.7.30 {peer} does not advertise REQUIRETLS (RFC 8689 §4.2.1)"
        ))
    } else {
        None
    }
}

/// RFC 8689 §5: the status of a REQUIRETLS message that could not be relayed as it demands.
pub(crate) fn failure(why: impl std::fmt::Display) -> Status {
    let why = why.to_string();
    // The reason's own enhanced code (`4.7.5 ...`) gives way to 5.7.30.
    let words = match why.split_once(' ') {
        Some((code, rest)) if code.parse::<EnhancedCode>().is_ok() => rest,
        _ => why.as_str(),
    };
    Status::new(
        EnhancedCode::new(5, 7, 30),
        format_args!("REQUIRETLS support required: {words}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn tls_required_field() {
        assert!(tls_required_no(
            b"Subject: x\r\nTLS-Required: No\r\n\r\nbody\r\n"
        ));
        assert!(tls_required_no(
            b"tls-required:  no (sender says so)\r\n\r\n"
        ));
        assert!(tls_required_no(b"TLS-Required:\r\n no\r\n\r\n"));
        assert!(!tls_required_no(b"TLS-Required: yes\r\n\r\n"));
        assert!(!tls_required_no(b"Subject: x\r\n\r\nTLS-Required: No\r\n"));
        assert!(!tls_required_no(b"X-TLS-Required: No\r\n\r\n"));
        assert!(!tls_required_no(b"TLS-Required: Nope\r\n\r\n"));
    }

    fn envelope(requiretls: bool) -> Envelope {
        Envelope {
            sender: Some("a@example.org".into()),
            recipients: Vec::new(),
            ret: None,
            envid: None,
            body: postern_spool::BodyType::SevenBit,
            smtputf8: false,
            requiretls,
            authenticated: None,
            client_ip: None,
            helo: None,
        }
    }

    #[test]
    fn the_parameter_wins_over_the_field() {
        let no = b"TLS-Required: No\r\n\r\nx\r\n";
        assert_eq!(demand(&envelope(true), no), Demand::RequireTls);
        let mut bounce = envelope(true);
        bounce.sender = None;
        assert_eq!(demand(&bounce, b"\r\nx\r\n"), Demand::Normal);
        assert_eq!(demand(&envelope(false), no), Demand::IgnorePolicies);
        assert_eq!(demand(&envelope(false), b"\r\nx\r\n"), Demand::Normal);
    }

    fn hop(host: &str) -> Hop {
        Hop {
            host: host.into(),
            addr: "192.0.2.1:25".parse().unwrap(),
        }
    }

    #[test]
    fn only_verified_hops_carry_requiretls() {
        let hops = vec![
            (hop("a"), HopTls::Opportunistic),
            (hop("b"), HopTls::Sts { enforce: false }),
            (hop("c"), HopTls::DaneUnauthenticated),
            (hop("d"), HopTls::Required { verify: false }),
        ];
        let err = require(hops.clone(), "example.org").unwrap_err();
        assert_eq!(err.code, EnhancedCode::new(5, 7, 30));
        let mut more = hops;
        more.push((hop("e"), HopTls::Sts { enforce: true }));
        more.push((hop("f"), HopTls::Dane(Arc::new(Vec::new()))));
        more.push((hop("g"), HopTls::Required { verify: true }));
        let kept: Vec<String> = require(more, "example.org")
            .unwrap()
            .into_iter()
            .map(|(h, _)| h.host)
            .collect();
        assert_eq!(kept, ["e", "f", "g"]);
    }

    #[test]
    fn the_field_waives_dane_and_mta_sts() {
        let hops = vec![
            (hop("a"), HopTls::Dane(Arc::new(Vec::new()))),
            (hop("b"), HopTls::Sts { enforce: true }),
            (hop("c"), HopTls::DaneLookupFailed("servfail".into())),
        ];
        for (_, t) in ignore_policies(hops, &HopTls::Opportunistic) {
            assert!(matches!(t, HopTls::Opportunistic));
        }
    }

    #[test]
    fn the_failure_names_5_7_30_once() {
        let f = failure("4.7.5 mx [192.0.2.1]: the certificate does not satisfy DANE");
        assert_eq!(f.code, EnhancedCode::new(5, 7, 30));
        assert_eq!(
            f.text,
            "5.7.30 REQUIRETLS support required: mx [192.0.2.1]: the certificate does not satisfy DANE"
        );
    }

    #[test]
    fn sessions_qualify_with_tls_and_the_extension() {
        assert!(session_refusal(true, true, "p").is_none());
        assert!(session_refusal(false, true, "p")
            .unwrap()
            .starts_with("5.7.30"));
        assert!(session_refusal(true, false, "p")
            .unwrap()
            .starts_with("5.7.30"));
    }
}
