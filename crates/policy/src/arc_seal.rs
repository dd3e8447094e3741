//! ARC sealing (RFC 8617 §5.1) of mail postern forwards but did not originate: an alias that
//! points to a remote address, a Sieve `redirect`.
//!
//! What the seal needs from reception travels in the message itself: the `Authentication-Results`
//! field the MX wrote under our authserv-id (RFC 8601) becomes the `ARC-Authentication-Results`,
//! and its `arc=` result is the chain's validation status at reception (RFC 8617 §5.2). No DNS
//! is asked again at seal time, the spool format is unchanged, and a message that was never
//! checked by our MX (no such field) is never sealed: we have no results to vouch for.

use crate::{DkimKeys, SIGNED_HEADERS};
use base64::Engine;
use mail_auth::arc::{ArcSet, ChainValidation, Set};
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::{Header, HeaderWriter};
use mail_auth::{ArcOutput, AuthenticatedMessage, AuthenticationResults, DkimResult, Error};

/// RFC 8617 §4.2.1: instance numbers run from 1 to 50.
pub const MAX_INSTANCE: u32 = 50;

/// Why a forwarded message leaves without a new ARC set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSealed {
    /// The message carries no `Authentication-Results` of ours on top: our MX did not check it.
    #[error(
        "no Authentication-Results field of {0} on top: the message was not checked on reception"
    )]
    NoResults(String),
    /// The forwarding domain has no DKIM key to seal with.
    #[error("no DKIM key for {0} to seal with")]
    NoKey(String),
    /// RFC 8617 §4.2.1: the chain already has 50 sets.
    #[error("the ARC chain already has {0} sets (RFC 8617 §4.2.1 allows 50)")]
    TooLong(u32),
    /// RFC 8617 §5.1.2: the highest set already says `cv=fail`; nothing is added after it.
    #[error("the ARC chain already ended in cv=fail")]
    AlreadyFailed,
    /// Our results have no usable `arc=` for a message that has a chain (temperror at
    /// reception): sealing with `cv=fail` would condemn a chain that may well be valid.
    #[error("the chain's validation at reception was {0}, neither pass nor fail")]
    Undecided(String),
    /// The header section could not be parsed.
    #[error("the header section cannot be parsed")]
    Unparsable,
    /// mail-auth refused to sign.
    #[error("sealing failed: {0}")]
    Signing(String),
}

/// Collapses runs of whitespace (folding included) to one space: the form of the AAR value
/// both the seal's relaxed canonicalization (RFC 6376 §3.4.2) and the written field share.
fn one_line(value: &[u8]) -> String {
    String::from_utf8_lossy(value)
        .split_ascii_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The fields local delivery and our verdict put above the MX's `Authentication-Results`
/// (RFC 9228 `Delivered-To`, RFC 5321 §4.4 `Return-Path`, the verdict); any other field above
/// it means the message came in some other way (`postern deliver` and fetch add `Received:`).
pub const ABOVE_RESULTS: &[&str] = &[
    "Delivered-To",
    "Return-Path",
    "X-Original-To",
    crate::auth::SCORE_FIELD,
    crate::auth::VERDICT_FIELD,
];

/// The value of our MX's `Authentication-Results` (authserv-id `authserv_id`, RFC 8601 §2.2):
/// the topmost field once [`ABOVE_RESULTS`] are passed. One further down was not written by
/// our MX at reception (the MX removes forged ones; mail fetched or handed to `postern
/// deliver` keeps whatever it brought, under a `Received:` of ours).
fn our_results<'x>(msg: &AuthenticatedMessage<'x>, authserv_id: &str) -> Option<&'x [u8]> {
    msg.headers
        .iter()
        .find(|(name, _)| {
            !ABOVE_RESULTS
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
        })
        .filter(|(name, value)| {
            name.eq_ignore_ascii_case(b"Authentication-Results")
                && crate::auth::header_authserv_id(value).eq_ignore_ascii_case(authserv_id)
        })
        .map(|(_, value)| *value)
}

/// The `arc=` result word among the resinfos of an `Authentication-Results` value.
fn arc_word(results: &str) -> Option<String> {
    results.split(';').skip(1).find_map(|r| {
        let r = r.trim();
        let (method, rest) = r.split_once('=')?;
        method.trim().eq_ignore_ascii_case("arc").then(|| {
            rest.trim()
                .split(|c: char| c.is_ascii_whitespace() || c == '(')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        })
    })
}

/// The chain validation status to seal with (RFC 8617 §4.1.3, §5.1.1): `None` for the first
/// set, else what our reception found.
fn chain_status(
    msg: &AuthenticatedMessage<'_>,
    word: Option<&str>,
) -> Result<DkimResult, NotSealed> {
    if msg.as_headers.is_empty() && msg.ams_headers.is_empty() && msg.aar_headers.is_empty() {
        return Ok(DkimResult::None);
    }
    let highest = msg
        .as_headers
        .iter()
        .map(|h| h.header.i)
        .chain(msg.ams_headers.iter().map(|h| h.header.i))
        .chain(msg.aar_headers.iter().map(|h| h.header.i))
        .max()
        .unwrap_or(0);
    if highest >= MAX_INSTANCE {
        return Err(NotSealed::TooLong(highest));
    }
    if msg
        .as_headers
        .iter()
        .max_by_key(|h| h.header.i)
        .is_some_and(|h| h.header.cv == ChainValidation::Fail)
    {
        return Err(NotSealed::AlreadyFailed);
    }
    let fail = || DkimResult::Fail(Error::Arc(mail_auth::arc::ArcError::BrokenChain));
    if msg.has_arc_errors {
        return Ok(fail());
    }
    match word {
        Some("pass") => Ok(DkimResult::Pass),
        Some("fail" | "permerror" | "neutral" | "policy") => Ok(fail()),
        // A chain the MX saw as none can only be one added after reception: not ours to vouch.
        Some("none") => Ok(fail()),
        other => Err(NotSealed::Undecided(other.unwrap_or("missing").to_string())),
    }
}

/// The existing sets in instance order, as mail-auth's sealer wants them; `None` when the
/// sets do not line up 1..=n (a broken chain: sealed `cv=fail` over what is there).
fn sets<'x>(msg: &'x AuthenticatedMessage<'x>) -> Option<Vec<Set<'x>>> {
    let n = msg.as_headers.len();
    if msg.ams_headers.len() != n || msg.aar_headers.len() != n {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for i in 1..=n as u32 {
        let seal = msg.as_headers.iter().find(|h| h.header.i == i)?;
        let sig = msg.ams_headers.iter().find(|h| h.header.i == i)?;
        let res = msg.aar_headers.iter().find(|h| h.header.i == i)?;
        out.push(Set {
            signature: Header::new(sig.name, sig.value, &sig.header),
            seal: Header::new(seal.name, seal.value, &seal.header),
            results: Header::new(res.name, res.value, &res.header),
        });
    }
    Some(out)
}

/// The header fields AMS signs: DKIM's list plus the DKIM signatures (RFC 8617 §4.1.2).
fn ams_headers() -> impl Iterator<Item = &'static str> {
    SIGNED_HEADERS.iter().copied().chain(["DKIM-Signature"])
}

impl DkimKeys {
    /// RFC 8617 §5.1: a new ARC set (`ARC-Seal`, `ARC-Message-Signature`,
    /// `ARC-Authentication-Results`, CRLF-terminated) to put in front of `message`, signed
    /// with `domain`'s key (RSA preferred: RFC 8617 §4.1 names rsa-sha256), the instance
    /// after the highest one, `cv=none` for the first set, else the validation our MX recorded
    /// in its `Authentication-Results` of `authserv_id`.
    pub fn arc_seal(
        &self,
        domain: &str,
        authserv_id: &str,
        message: &[u8],
    ) -> Result<Vec<u8>, NotSealed> {
        let selector = self
            .selectors(domain)
            .iter()
            .max_by_key(|s| s.algorithm == crate::Algorithm::Rsa)
            .ok_or_else(|| NotSealed::NoKey(domain.to_string()))?;
        let msg = AuthenticatedMessage::parse(message).ok_or(NotSealed::Unparsable)?;
        let raw = our_results(&msg, authserv_id)
            .ok_or_else(|| NotSealed::NoResults(authserv_id.to_string()))?;
        let text = one_line(raw);
        let status = chain_status(&msg, arc_word(&text).as_deref())?;
        let mut output = ArcOutput::default().with_result(status.clone());
        match sets(&msg) {
            Some(all) => {
                for set in all {
                    output = output.with_set(set);
                }
            }
            None => {
                // RFC 8617 §5.1.2: a failed chain; the seal covers what it can find, in order,
                // and its instance follows the highest one.
                let mut found: Vec<Set<'_>> = Vec::new();
                for seal in &msg.as_headers {
                    let i = seal.header.i;
                    if let (Some(sig), Some(res)) = (
                        msg.ams_headers.iter().find(|h| h.header.i == i),
                        msg.aar_headers.iter().find(|h| h.header.i == i),
                    ) {
                        found.push(Set {
                            signature: Header::new(sig.name, sig.value, &sig.header),
                            seal: Header::new(seal.name, seal.value, &seal.header),
                            results: Header::new(res.name, res.value, &res.header),
                        });
                    }
                }
                if found.is_empty() {
                    return Err(NotSealed::Undecided(
                        "a chain without any complete set".into(),
                    ));
                }
                found.sort_by_key(|s| s.seal.header.i);
                for set in found {
                    output = output.with_set(set);
                }
                output = output.with_result(DkimResult::Fail(Error::Arc(
                    mail_auth::arc::ArcError::BrokenChain,
                )));
            }
        }
        // The AAR value is "authserv-id; results" on one line, exactly as it is hashed.
        let results = AuthenticationResults::new(&text);
        let set: ArcSet<'_> = selector
            .arc_seal(&msg, &results, &output)
            .map_err(|e| NotSealed::Signing(e.to_string()))?;
        let headers = fold_results(&set.to_header());
        if matches!(output.result(), DkimResult::None | DkimResult::Pass) {
            return Ok(headers.into_bytes());
        }
        // RFC 8617 §5.1.2: for a failed chain the seal covers only the set being added (mail-auth
        // covers every set; signed again here).
        seal_alone(&headers, |data| selector.arc_sign_raw(data)).map(String::into_bytes)
    }
}

/// The field `name` (`Name:` at a line start) in `headers`: (start, end) of its value, the
/// value ending after its CRLF and continuation lines.
fn field_value(headers: &str, name: &str) -> Option<(usize, usize)> {
    let prefix = format!("{name}:");
    let start = if headers.starts_with(&prefix) {
        prefix.len()
    } else {
        headers.find(&format!("\r\n{prefix}"))? + 2 + prefix.len()
    };
    let mut end = start;
    loop {
        end = headers[end..]
            .find("\r\n")
            .map_or(headers.len(), |i| end + i + 2);
        if end >= headers.len() || !headers[end..].starts_with([' ', '\t']) {
            return Some((start, end));
        }
    }
}

/// RFC 8617 §5.1.2: the `ARC-Seal` of `headers` (AS, AMS, AAR of one set, as mail-auth writes
/// them) signed again over that set alone: the AAR, the AMS and the AS with an empty `b=`, in
/// relaxed canonicalization (RFC 6376 §3.4.2), the AS without its CRLF (RFC 6376 §3.7).
fn seal_alone(
    headers: &str,
    sign: impl Fn(&[u8]) -> mail_auth::Result<Vec<u8>>,
) -> Result<String, NotSealed> {
    let broken = || NotSealed::Signing("the ARC set written cannot be read back".into());
    let (as_start, as_end) = field_value(headers, "ARC-Seal").ok_or_else(broken)?;
    let (ams_start, ams_end) = field_value(headers, "ARC-Message-Signature").ok_or_else(broken)?;
    let (aar_start, aar_end) =
        field_value(headers, "ARC-Authentication-Results").ok_or_else(broken)?;
    let seal = &headers[as_start..as_end];
    // The `b=` tag: after `;` or white space.
    let b_at = seal
        .match_indices("b=")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || seal[..i].ends_with([';', ' ', '\t', '\n']))
        .ok_or_else(broken)?
        + 2;
    let b_end = seal[b_at..].find(';').map_or(seal.len(), |i| b_at + i);
    let unsigned = format!(
        "{}{}",
        &seal[..b_at],
        seal[b_end..].trim_end_matches("\r\n")
    );
    let mut data = Vec::new();
    mail_auth::dkim::Canonicalization::Relaxed.canonicalize_headers(
        [
            (
                &b"ARC-Authentication-Results"[..],
                &headers.as_bytes()[aar_start..aar_end],
            ),
            (
                &b"ARC-Message-Signature"[..],
                &headers.as_bytes()[ams_start..ams_end],
            ),
            (&b"ARC-Seal"[..], unsigned.as_bytes()),
        ]
        .into_iter(),
        &mut data,
    );
    let b = sign(&data).map_err(|e| NotSealed::Signing(e.to_string()))?;
    let b = base64::engine::general_purpose::STANDARD.encode(b);
    Ok(format!(
        "{}{}{}",
        &headers[..as_start + b_at],
        b,
        &headers[as_start + b_end..]
    ))
}

/// Folds the one-line `ARC-Authentication-Results` mail-auth writes after each resinfo (RFC
/// 5322 §2.2.3: lines of at most 998 octets, 78 preferred): `; ` becomes `;` CRLF TAB, which
/// the seal's relaxed canonicalization (RFC 6376 §3.4.2) reads as the same `; `.
fn fold_results(headers: &str) -> String {
    let mut out = String::with_capacity(headers.len() + 64);
    for line in headers.split_inclusive("\r\n") {
        match line.strip_prefix("ARC-Authentication-Results: ") {
            Some(value) => {
                out.push_str("ARC-Authentication-Results: ");
                let mut parts = value.split("; ");
                if let Some(first) = parts.next() {
                    out.push_str(first);
                }
                for (n, part) in parts.enumerate() {
                    // "i=N; authserv-id" stay on the first line.
                    out.push_str(if n == 0 { "; " } else { ";\r\n\t" });
                    out.push_str(part);
                }
            }
            None => out.push_str(line),
        }
    }
    out
}

/// A loaded key's ARC sealer (mail-auth's builder, with our header list), and the key again
/// for the seal of a failed chain ([`seal_alone`]).
pub(crate) enum Sealer {
    Ed25519(
        Box<mail_auth::arc::ArcSealer<Ed25519Key, mail_auth::dkim::Done>>,
        Box<Ed25519Key>,
    ),
    Rsa(
        Box<mail_auth::arc::ArcSealer<RsaKey<Sha256>, mail_auth::dkim::Done>>,
        Box<RsaKey<Sha256>>,
    ),
}

impl Sealer {
    /// `key` and `again` are the same key, parsed twice (mail-auth's keys are not `Clone`).
    pub(crate) fn ed25519(
        key: Ed25519Key,
        again: Ed25519Key,
        domain: &str,
        selector: &str,
    ) -> Sealer {
        Sealer::Ed25519(
            Box::new(
                mail_auth::arc::ArcSealer::from_key(key)
                    .domain(domain)
                    .selector(selector)
                    .headers(ams_headers())
                    .header_canonicalization(mail_auth::dkim::Canonicalization::Relaxed)
                    .body_canonicalization(mail_auth::dkim::Canonicalization::Relaxed),
            ),
            Box::new(again),
        )
    }

    /// As [`Sealer::ed25519`], for RSA.
    pub(crate) fn rsa(
        key: RsaKey<Sha256>,
        again: RsaKey<Sha256>,
        domain: &str,
        selector: &str,
    ) -> Sealer {
        Sealer::Rsa(
            Box::new(
                mail_auth::arc::ArcSealer::from_key(key)
                    .domain(domain)
                    .selector(selector)
                    .headers(ams_headers())
                    .header_canonicalization(mail_auth::dkim::Canonicalization::Relaxed)
                    .body_canonicalization(mail_auth::dkim::Canonicalization::Relaxed),
            ),
            Box::new(again),
        )
    }

    pub(crate) fn seal<'x>(
        &self,
        msg: &'x AuthenticatedMessage<'x>,
        results: &'x AuthenticationResults<'x>,
        output: &ArcOutput<'_>,
    ) -> mail_auth::Result<ArcSet<'x>> {
        match self {
            Sealer::Ed25519(s, _) => s.seal(msg, results, output),
            Sealer::Rsa(s, _) => s.seal(msg, results, output),
        }
    }

    /// A signature of `data` with the key.
    pub(crate) fn sign_raw(&self, data: &[u8]) -> mail_auth::Result<Vec<u8>> {
        match self {
            Sealer::Ed25519(_, k) => k.sign(data),
            Sealer::Rsa(_, k) => k.sign(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arc_word_reads_the_resinfo() {
        let v =
            "mx.test; spf=pass smtp.mailfrom=a.test; arc=pass smtp.remote-ip=127.0.0.7; dmarc=none";
        assert_eq!(arc_word(v).as_deref(), Some("pass"));
        assert_eq!(
            arc_word("mx.test; arc=fail (broken chain) smtp.remote-ip=1.2.3.4").as_deref(),
            Some("fail")
        );
        assert_eq!(arc_word("mx.test; dkim=none"), None);
        // The authserv-id itself is never a resinfo.
        assert_eq!(arc_word("arc=pass.example; dkim=none"), None);
    }

    const MESSAGE: &str = "From: a@other.test\r\nTo: fwd@example.org\r\nSubject: hi\r\n\
                           Message-ID: <x@other.test>\r\n\r\nHello.\r\n";

    fn keys() -> (tempfile::TempDir, DkimKeys) {
        let dir = tempfile::tempdir().unwrap();
        crate::generate(dir.path(), "example.org", "k1").unwrap();
        let keys = DkimKeys::load(dir.path()).unwrap();
        (dir, keys)
    }

    fn with_results(results: &str, message: &[u8]) -> Vec<u8> {
        let mut m = format!("Authentication-Results: mx.test;\r\n\t{results}\r\n").into_bytes();
        m.extend_from_slice(message);
        m
    }

    /// RFC 8617 §5.1: the first set is i=1 cv=none; a chain that failed at reception gets
    /// cv=fail, and nothing is added after a cv=fail set.
    #[test]
    fn instances_and_chain_status() {
        let (_dir, keys) = keys();
        let m = with_results(
            "spf=none smtp.mailfrom=other.test;\r\n\tarc=none",
            MESSAGE.as_bytes(),
        );
        let set = String::from_utf8(keys.arc_seal("example.org", "mx.test", &m).unwrap()).unwrap();
        assert!(
            set.starts_with("ARC-Seal: i=1; a=rsa-sha256; s=k1-rsa; d=example.org; cv=none;"),
            "{set}"
        );
        assert!(set.contains("ARC-Message-Signature: i=1;"), "{set}");
        assert!(
            set.contains(
                "ARC-Authentication-Results: i=1; mx.test;\r\n\tspf=none smtp.mailfrom=other.test;\r\n\tarc=none\r\n"
            ),
            "{set}"
        );
        // Forwarded again after a reception that found the chain failing: i=2 cv=fail.
        let mut sealed = set.into_bytes();
        sealed.extend_from_slice(&m);
        let m2 = with_results("arc=fail (body changed)", &sealed);
        let set2 =
            String::from_utf8(keys.arc_seal("example.org", "mx.test", &m2).unwrap()).unwrap();
        assert!(
            set2.starts_with("ARC-Seal: i=2;") && set2.contains("cv=fail;"),
            "{set2}"
        );
        let mut failed = set2.into_bytes();
        failed.extend_from_slice(&m2);
        let m3 = with_results("arc=pass", &failed);
        assert_eq!(
            keys.arc_seal("example.org", "mx.test", &m3),
            Err(NotSealed::AlreadyFailed)
        );
        // A chain whose validation was a temperror is left as it is.
        let m4 = with_results("arc=temperror", &sealed);
        assert_eq!(
            keys.arc_seal("example.org", "mx.test", &m4),
            Err(NotSealed::Undecided("temperror".into()))
        );
    }

    #[test]
    fn refusals() {
        let (_dir, keys) = keys();
        // Not checked by our MX (or checked by someone else): nothing to vouch for.
        assert_eq!(
            keys.arc_seal("example.org", "mx.test", MESSAGE.as_bytes()),
            Err(NotSealed::NoResults("mx.test".into()))
        );
        let other = with_results("arc=none", MESSAGE.as_bytes());
        assert_eq!(
            keys.arc_seal("example.org", "mx2.test", &other),
            Err(NotSealed::NoResults("mx2.test".into()))
        );
        assert_eq!(
            keys.arc_seal("other.test", "mx.test", &other),
            Err(NotSealed::NoKey("other.test".into()))
        );
        // Results of ours below another trace field (fetched, or handed to `postern deliver`):
        // not written by our MX, never vouched for.
        let mut fetched = b"Received: from pop.example by mx.test with POP3\r\n".to_vec();
        fetched.extend_from_slice(&other);
        assert_eq!(
            keys.arc_seal("example.org", "mx.test", &fetched),
            Err(NotSealed::NoResults("mx.test".into()))
        );
        let mut redirected = b"Delivered-To: bob@example.org\r\nX-Postern-Score: 1.0\r\n".to_vec();
        redirected.extend_from_slice(&other);
        assert!(keys.arc_seal("example.org", "mx.test", &redirected).is_ok());
        // RFC 8617 §4.2.1: instance 50 is the last.
        let fifty =
            format!("ARC-Seal: i=50; a=rsa-sha256; d=x.test; s=s; cv=pass; b=AAAA\r\n{MESSAGE}");
        let m = with_results("arc=pass", fifty.as_bytes());
        assert_eq!(
            keys.arc_seal("example.org", "mx.test", &m),
            Err(NotSealed::TooLong(50))
        );
    }

    #[test]
    fn one_line_unfolds() {
        assert_eq!(
            one_line(b" mx.test;\r\n\tspf=pass  smtp.mailfrom=a.test;\r\n\tarc=none "),
            "mx.test; spf=pass smtp.mailfrom=a.test; arc=none"
        );
    }
}
