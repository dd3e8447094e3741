//! DANE for SMTP (RFC 7672, RFC 7671, RFC 6698): TLSA records and the certificate match.
//!
//! Only DANE-TA(2) and DANE-EE(3) are usable for SMTP (RFC 7672 §3.1.3); PKIX-TA(0) and
//! PKIX-EE(1) records, unknown selectors and matching types are unusable and ignored.

use crate::policy::FailureType;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::Digest;
use std::sync::Arc;

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    /// Certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// Selector: 0 the whole certificate, 1 its SubjectPublicKeyInfo.
    pub selector: u8,
    /// Matching type: 0 exact, 1 SHA2-256, 2 SHA2-512.
    pub matching: u8,
    /// The certificate association data.
    pub data: Vec<u8>,
}

/// RFC 7672 §3.1.3 and RFC 7671 §4: usages 2 and 3, selectors 0 and 1, matching types 0-2.
pub fn usable(t: &Tlsa) -> bool {
    matches!(t.usage, 2 | 3)
        && t.selector <= 1
        && t.matching <= 2
        && match t.matching {
            1 => t.data.len() == 32,
            2 => t.data.len() == 64,
            _ => !t.data.is_empty(),
        }
}

/// The selected content of a certificate (RFC 6698 §2.1.2): the whole DER or its SPKI.
fn selected(cert: &[u8], selector: u8) -> Option<Vec<u8>> {
    match selector {
        0 => Some(cert.to_vec()),
        1 => {
            let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
            Some(parsed.tbs_certificate.subject_pki.raw.to_vec())
        }
        _ => None,
    }
}

/// Does `cert` match the record (RFC 6698 §2.1.3, selector then matching type)?
pub fn matches(t: &Tlsa, cert: &[u8]) -> bool {
    let Some(content) = selected(cert, t.selector) else {
        return false;
    };
    match t.matching {
        0 => content == t.data,
        1 => sha2::Sha256::digest(&content).as_slice() == t.data.as_slice(),
        2 => sha2::Sha512::digest(&content).as_slice() == t.data.as_slice(),
        _ => false,
    }
}

/// RFC 7672 §3.1 / RFC 7671 §5: the server's chain against the usable records. DANE-EE(3):
/// the end-entity certificate matches; no name or validity checks (RFC 7672 §3.1.1). DANE-TA(2):
/// a certificate the server sent matches and is a trust anchor for a valid chain to the
/// end-entity certificate, whose names must include one of `names` (RFC 7672 §3.2.2: the TLSA
/// base domain, i.e. the MX host name, and the next-hop domain).
pub fn verify(
    records: &[Tlsa],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    names: &[String],
    now: UnixTime,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<(), (FailureType, String)> {
    let usable: Vec<&Tlsa> = records.iter().filter(|t| usable(t)).collect();
    if usable
        .iter()
        .any(|t| t.usage == 3 && matches(t, end_entity.as_ref()))
    {
        return Ok(());
    }
    let mut ta_error = None;
    for t in usable.iter().filter(|t| t.usage == 2) {
        for ta in intermediates
            .iter()
            .chain(std::iter::once(end_entity))
            .filter(|c| matches(t, c.as_ref()))
        {
            match verify_chain(ta, end_entity, intermediates, names, now, provider) {
                Ok(()) => return Ok(()),
                Err(e) => ta_error = Some(e),
            }
        }
    }
    Err(ta_error.unwrap_or_else(|| {
        (
            FailureType::TlsaInvalid,
            "no TLSA record matches the server's certificate chain".into(),
        )
    }))
}

/// PKIX path validation from a DANE-TA trust anchor, with the name checks of RFC 7672 §3.2.2.
fn verify_chain(
    ta: &CertificateDer<'_>,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    names: &[String],
    now: UnixTime,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<(), (FailureType, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ta.clone().into_owned()).map_err(|e| {
        (
            FailureType::TlsaInvalid,
            format!("the DANE-TA certificate is not a usable trust anchor: {e}"),
        )
    })?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| (FailureType::ValidationFailure, e.to_string()))?;
    verify_names(verifier.as_ref(), end_entity, intermediates, names, now)
}

/// Runs `verifier` for each reference name until one passes; the failure of the first
/// otherwise, in RFC 8460 §4.3 terms.
pub(crate) fn verify_names(
    verifier: &dyn rustls::client::danger::ServerCertVerifier,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    names: &[String],
    now: UnixTime,
) -> Result<(), (FailureType, String)> {
    let mut first = None;
    for name in names {
        let Ok(server_name) = ServerName::try_from(name.clone()) else {
            continue;
        };
        match verifier.verify_server_cert(end_entity, intermediates, &server_name, &[], now) {
            Ok(_) => return Ok(()),
            Err(e) => {
                if first.is_none() {
                    first = Some(classify(&e));
                }
            }
        }
    }
    Err(first.unwrap_or((
        FailureType::CertificateHostMismatch,
        "no reference name to check the certificate against".into(),
    )))
}

/// A rustls certificate error as an RFC 8460 §4.3 result type and words.
pub(crate) fn classify(e: &rustls::Error) -> (FailureType, String) {
    use rustls::CertificateError as C;
    let kind = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => FailureType::CertificateExpired,
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                FailureType::CertificateHostMismatch
            }
            C::UnknownIssuer | C::BadSignature | C::InvalidPurpose => {
                FailureType::CertificateNotTrusted
            }
            _ => FailureType::ValidationFailure,
        },
        _ => FailureType::ValidationFailure,
    };
    (kind, e.to_string())
}

impl Tlsa {
    /// The presentation form `usage selector matching HEX` (RFC 6698 §2.2).
    pub fn presentation(&self) -> String {
        let hex: String = self.data.iter().map(|b| format!("{b:02x}")).collect();
        format!("{} {} {} {hex}", self.usage, self.selector, self.matching)
    }
}

/// Parses the presentation form `usage selector matching hex` (as in a zone file), for
/// configuration and tests.
pub fn parse(text: &str) -> Result<Tlsa, String> {
    let mut words = text.split_ascii_whitespace();
    let mut num = |what: &str| -> Result<u8, String> {
        words
            .next()
            .ok_or_else(|| format!("TLSA record {text:?} has no {what}"))?
            .parse::<u8>()
            .map_err(|_| format!("TLSA record {text:?}: the {what} is not a number 0-255"))
    };
    let usage = num("usage")?;
    let selector = num("selector")?;
    let matching = num("matching type")?;
    let hex: String = words.collect();
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return Err(format!(
            "TLSA record {text:?}: the data is not an even count of hex digits"
        ));
    }
    let data = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| format!("TLSA record {text:?}: the data is not hex"))?;
    Ok(Tlsa {
        usage,
        selector,
        matching,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Chain {
        ca: CertificateDer<'static>,
        leaf: CertificateDer<'static>,
    }

    /// A CA and a leaf for `mx.example` it signed.
    fn chain() -> Chain {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test TA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_params = rcgen::CertificateParams::new(vec!["mx.example".to_string()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        Chain {
            ca: ca.der().clone(),
            leaf: leaf.der().clone(),
        }
    }

    fn record(usage: u8, selector: u8, matching: u8, cert: &[u8]) -> Tlsa {
        let content = selected(cert, selector).unwrap();
        let data = match matching {
            0 => content,
            1 => sha2::Sha256::digest(&content).to_vec(),
            _ => sha2::Sha512::digest(&content).to_vec(),
        };
        Tlsa {
            usage,
            selector,
            matching,
            data,
        }
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    fn run(records: &[Tlsa], c: &Chain, names: &[&str]) -> Result<(), (FailureType, String)> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        verify(
            records,
            &c.leaf,
            std::slice::from_ref(&c.ca),
            &names,
            UnixTime::now(),
            &provider(),
        )
    }

    #[test]
    fn dane_ee_every_selector_and_matching_type() {
        let c = chain();
        for selector in 0..=1 {
            for matching in 0..=2 {
                let r = record(3, selector, matching, &c.leaf);
                assert!(usable(&r));
                assert!(matches(&r, &c.leaf), "3 {selector} {matching}");
                assert!(!matches(&r, &c.ca), "3 {selector} {matching} on the CA");
                // DANE-EE: no name check (RFC 7672 §3.1.1).
                assert_eq!(run(&[r], &c, &["unrelated.example"]), Ok(()));
            }
        }
    }

    #[test]
    fn wrong_digest_fails_as_tlsa_invalid() {
        let c = chain();
        let mut r = record(3, 1, 1, &c.leaf);
        r.data[0] ^= 1;
        let err = run(&[r], &c, &["mx.example"]).unwrap_err();
        assert_eq!(err.0, FailureType::TlsaInvalid);
        // No records at all is the same failure.
        assert_eq!(
            run(&[], &c, &["mx.example"]).unwrap_err().0,
            FailureType::TlsaInvalid
        );
    }

    #[test]
    fn pkix_usages_and_odd_parameters_are_unusable() {
        let c = chain();
        // RFC 7672 §3.1.3: PKIX-TA/EE are unusable even when they would match.
        for usage in [0, 1] {
            let r = record(usage, 1, 1, &c.leaf);
            assert!(!usable(&r));
            assert!(run(&[r], &c, &["mx.example"]).is_err());
        }
        let mut r = record(3, 1, 1, &c.leaf);
        r.selector = 2;
        assert!(!usable(&r));
        let mut r = record(3, 1, 1, &c.leaf);
        r.matching = 3;
        assert!(!usable(&r));
        let mut r = record(3, 1, 1, &c.leaf);
        r.data.pop(); // a SHA-256 that is not 32 bytes
        assert!(!usable(&r));
        assert!(!matches(&record(3, 1, 1, &c.leaf), b"not a certificate"));
    }

    #[test]
    fn dane_ta_chains_and_checks_names() {
        let c = chain();
        for (selector, matching) in [(0, 1), (1, 1), (0, 0), (1, 2)] {
            let r = record(2, selector, matching, &c.ca);
            assert_eq!(run(std::slice::from_ref(&r), &c, &["mx.example"]), Ok(()));
            // RFC 7672 §3.2.2: the MX host name or the next-hop domain.
            assert_eq!(
                run(
                    std::slice::from_ref(&r),
                    &c,
                    &["other.example", "mx.example"]
                ),
                Ok(())
            );
            let err = run(&[r], &c, &["other.example"]).unwrap_err();
            assert_eq!(err.0, FailureType::CertificateHostMismatch, "{err:?}");
        }
        // A TA the server did not send cannot be used (only certificates in the chain are
        // candidates).
        let other = chain();
        let r = record(2, 0, 1, &other.ca);
        assert_eq!(
            run(&[r], &c, &["mx.example"]).unwrap_err().0,
            FailureType::TlsaInvalid
        );
        // A chain to a different TA that happens to be sent does not verify.
        let r = record(2, 0, 1, &other.ca);
        let err = verify(
            &[r],
            &c.leaf,
            std::slice::from_ref(&other.ca),
            &["mx.example".to_string()],
            UnixTime::now(),
            &provider(),
        )
        .unwrap_err();
        assert_eq!(err.0, FailureType::CertificateNotTrusted, "{err:?}");
    }

    #[test]
    fn dane_ta_checks_expiry() {
        let c = chain();
        let r = record(2, 0, 1, &c.ca);
        // rcgen's certificates are valid 1975..4096; at 1970 they are not valid yet.
        let err = verify(
            &[r],
            &c.leaf,
            std::slice::from_ref(&c.ca),
            &["mx.example".to_string()],
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(1)),
            &provider(),
        )
        .unwrap_err();
        assert_eq!(err.0, FailureType::CertificateExpired, "{err:?}");
    }

    #[test]
    fn presentation_form() {
        let t = parse("3 1 1 0A0b ff").unwrap();
        assert_eq!((t.usage, t.selector, t.matching), (3, 1, 1));
        assert_eq!(t.data, [0x0a, 0x0b, 0xff]);
        for bad in [
            "",
            "3 1",
            "3 1 1",
            "3 1 1 abc",
            "3 1 1 zz",
            "256 1 1 00",
            "x 1 1 00",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
