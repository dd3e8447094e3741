//! The DANE TLSA record of our certificate (RFC 6698 §2.1, RFC 7671 §5.1: usage 3 DANE-EE,
//! selector 1 SubjectPublicKeyInfo, matching type 1 SHA-256), for `postern dns`.

use crate::mta_sts::{hex, sha256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::path::Path;

/// Why the TLSA digest could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum TlsaError {
    /// The certificate file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file holds no PEM certificate, or its first one does not parse.
    #[error("{path}: {message}")]
    Content {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// The SHA-256 (hex) of the SubjectPublicKeyInfo of the first (leaf) certificate of a PEM
/// chain file: the data of a `3 1 1` TLSA record.
pub fn spki_sha256(cert_pem: &Path) -> Result<String, TlsaError> {
    let path = cert_pem.display().to_string();
    let bytes = std::fs::read(cert_pem).map_err(|source| TlsaError::Read {
        path: path.clone(),
        source,
    })?;
    let content = |message: String| TlsaError::Content {
        path: path.clone(),
        message,
    };
    let leaf = CertificateDer::pem_slice_iter(&bytes)
        .next()
        .ok_or_else(|| content("contains no certificate".into()))?
        .map_err(|e| content(format!("not a PEM certificate: {e}")))?;
    spki_sha256_der(&leaf).map_err(content)
}

/// As [`spki_sha256`], of one DER certificate.
pub fn spki_sha256_der(der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(hex(&sha256(cert.tbs_certificate.subject_pki.raw)))
}
