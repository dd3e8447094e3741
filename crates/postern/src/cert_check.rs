//! `check-config`'s look at the TLS certificate: what a remote MTA or a mail client would
//! refuse or warn about, said before they do.

use std::path::Path;
use x509_parser::prelude::*;

/// Days before expiry from which a warning is given.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// Names that never resolve on the public Internet (RFC 6761, RFC 2606).
fn is_private_name(hostname: &str) -> bool {
    !hostname.contains('.')
        || [
            ".localhost",
            ".local",
            ".test",
            ".invalid",
            ".example",
            ".internal",
            ".lan",
        ]
        .iter()
        .any(|suffix| hostname.ends_with(suffix))
        || hostname == "localhost"
}

/// RFC 6125 §6.4: exact match, or a wildcard for exactly the left-most label.
fn name_matches(pattern: &str, hostname: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    if let Some(rest) = pattern.strip_prefix("*.") {
        return hostname
            .split_once('.')
            .is_some_and(|(label, tail)| !label.is_empty() && tail == rest);
    }
    pattern == hostname
}

/// Warnings about the certificate chain in `pem` (its first certificate) for `hostname`,
/// as of `now` (Unix seconds).
pub(crate) fn warnings(pem: &[u8], hostname: &str, now: i64) -> Vec<String> {
    let mut out = Vec::new();
    let parsed = match parse_x509_pem(pem) {
        Ok((_, pem)) => pem,
        Err(e) => return vec![format!("cannot read the certificate as PEM: {e}")],
    };
    let cert = match parsed.parse_x509() {
        Ok(c) => c,
        Err(e) => return vec![format!("cannot parse the certificate: {e}")],
    };
    let validity = cert.validity();
    let not_after = validity.not_after.timestamp();
    let not_before = validity.not_before.timestamp();
    if not_after < now {
        out.push(format!(
            "the certificate expired on {}: clients will refuse it",
            validity.not_after
        ));
    } else if not_after - now < EXPIRY_WARNING_DAYS * 86_400 {
        out.push(format!(
            "the certificate expires on {} (in less than {EXPIRY_WARNING_DAYS} days)",
            validity.not_after
        ));
    }
    if not_before > now {
        out.push(format!(
            "the certificate is not valid before {}",
            validity.not_before
        ));
    }
    if cert.issuer() == cert.subject() && !is_private_name(hostname) {
        out.push(format!(
            "the certificate is self-signed, but {hostname} is a public name: mail clients will \
             warn and verifying MTAs will refuse it; set [tls] cert and key to one from a CA"
        ));
    }
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(n) = name {
                names.push(n.to_string());
            }
        }
    }
    if names.is_empty() {
        // RFC 6125 §6.4.4: the common name only when there is no DNS name at all.
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_string)),
        );
    }
    if !names.iter().any(|n| name_matches(n, hostname)) {
        out.push(format!(
            "the certificate does not name the hostname {hostname} (it names: {})",
            if names.is_empty() {
                "nothing".to_string()
            } else {
                names.join(", ")
            }
        ));
    }
    out
}

/// Reads `path` and returns its warnings (or why it cannot be read).
pub(crate) fn check_file(path: &Path, hostname: &str) -> Vec<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    match std::fs::read(path) {
        Ok(pem) => warnings(&pem, hostname, now)
            .into_iter()
            .map(|w| format!("{}: {w}", path.display()))
            .collect(),
        Err(e) => vec![format!("{}: cannot read: {e}", path.display())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(names: &[&str]) -> String {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn self_signed_on_a_public_name_and_mismatch() {
        let pem = self_signed(&["mail.example.com"]);
        let w = warnings(pem.as_bytes(), "mail.example.com", now());
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("self-signed"));
        let w = warnings(pem.as_bytes(), "mx.example.net", now());
        assert!(w.iter().any(|w| w.contains("does not name")), "{w:?}");
        // A private test name: self-signed is expected there.
        let pem = self_signed(&["mx.test"]);
        assert!(warnings(pem.as_bytes(), "mx.test", now()).is_empty());
    }

    #[test]
    fn expiry_and_wildcards() {
        let pem = self_signed(&["*.example.test"]);
        assert!(warnings(pem.as_bytes(), "mx.example.test", now()).is_empty());
        assert!(!warnings(pem.as_bytes(), "a.mx.example.test", now()).is_empty());
        // rcgen's default validity ends in 4096; far in the future it has expired.
        let w = warnings(pem.as_bytes(), "mx.example.test", 100_000_000_000);
        assert!(w.iter().any(|w| w.contains("expired")), "{w:?}");
        assert!(warnings(b"not pem", "mx.test", now())[0].contains("PEM"));
    }
}
