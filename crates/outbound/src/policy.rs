//! The TLS policy of one delivery hop (DANE, MTA-STS, a configured requirement, or
//! opportunistic), the certificate check that enforces it, and the outcome each attempt reports
//! through [`TlsReporter`] (RFC 8460 result types), so TLS reporting can record it.

use crate::dane::{self, Tlsa};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// RFC 8460 §4.3 result types of a failed TLS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureType {
    /// The host did not offer STARTTLS.
    StarttlsNotSupported,
    /// The certificate names do not match the host.
    CertificateHostMismatch,
    /// The certificate has expired (or is not valid yet).
    CertificateExpired,
    /// The certificate does not chain to a trusted root.
    CertificateNotTrusted,
    /// Any other failure (the handshake itself failed...).
    ValidationFailure,
    /// No TLSA record matched (DANE).
    TlsaInvalid,
    /// The DNSSEC lookup of the TLSA records failed (bogus or SERVFAIL).
    DnssecInvalid,
    /// DANE is required (RFC 7672 §2.2) but the host did not do TLS.
    DaneRequired,
    /// The MTA-STS policy could not be fetched.
    StsPolicyFetchError,
    /// The MTA-STS policy is malformed, or the MX host is not in it.
    StsPolicyInvalid,
    /// The MTA-STS policy server's certificate did not verify.
    StsWebpkiInvalid,
}

impl FailureType {
    /// The RFC 8460 §4.3 name (`"certificate-expired"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureType::StarttlsNotSupported => "starttls-not-supported",
            FailureType::CertificateHostMismatch => "certificate-host-mismatch",
            FailureType::CertificateExpired => "certificate-expired",
            FailureType::CertificateNotTrusted => "certificate-not-trusted",
            FailureType::ValidationFailure => "validation-failure",
            FailureType::TlsaInvalid => "tlsa-invalid",
            FailureType::DnssecInvalid => "dnssec-invalid",
            FailureType::DaneRequired => "dane-required",
            FailureType::StsPolicyFetchError => "sts-policy-fetch-error",
            FailureType::StsPolicyInvalid => "sts-policy-invalid",
            FailureType::StsWebpkiInvalid => "sts-webpki-invalid",
        }
    }
}

/// RFC 8460 §4.1 policy types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// DANE (`"tlsa"`).
    Tlsa,
    /// MTA-STS (`"sts"`).
    Sts,
    /// Neither (`"no-policy-found"`).
    NoPolicyFound,
}

impl PolicyKind {
    /// The RFC 8460 name.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Tlsa => "tlsa",
            PolicyKind::Sts => "sts",
            PolicyKind::NoPolicyFound => "no-policy-found",
        }
    }
}

/// The TLS outcome of one connection attempt to an MX host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsResult {
    /// The recipient domain the policy belongs to.
    pub policy_domain: String,
    /// Which policy applied.
    pub policy: PolicyKind,
    /// The MX host name (empty for a failure of the policy itself, such as its fetch).
    pub mx_host: String,
    /// The address connected to (`None` for a failure of the policy itself).
    pub addr: Option<SocketAddr>,
    /// `None`: a TLS session as the policy asks; else the failure and its words.
    pub failure: Option<(FailureType, String)>,
}

/// Where TLS outcomes go (TLS-RPT recording); called once per connection attempt to a host
/// under a policy, and for each new TLS session without one.
pub trait TlsReporter: Send + Sync {
    /// One outcome.
    fn record(&self, result: &TlsResult);

    /// RFC 8460 §4.4 `policy-string`: the policy in force for `domain` (the MTA-STS policy's
    /// lines, or the TLSA records in presentation form), for the daily report.
    fn policy(&self, _domain: &str, _kind: PolicyKind, _strings: &[String]) {}
}

/// The default reporter: outcomes go to the log only.
pub struct LogReporter;

impl TlsReporter for LogReporter {
    fn record(&self, r: &TlsResult) {
        let addr = r.addr.map(|a| a.to_string()).unwrap_or_default();
        match &r.failure {
            None => tracing::debug!(
                domain = %r.policy_domain, host = %r.mx_host, addr = %addr,
                policy = r.policy.as_str(), "TLS session established"
            ),
            Some((kind, why)) => tracing::warn!(
                domain = %r.policy_domain, host = %r.mx_host, addr = %addr,
                policy = r.policy.as_str(), result = kind.as_str(), "TLS policy failure: {why}"
            ),
        }
    }
}

/// How a hop's TLS is checked.
#[derive(Debug, Clone)]
pub enum HopTls {
    /// RFC 7435 opportunistic: STARTTLS when offered, any certificate, plaintext fallback.
    Opportunistic,
    /// `[outbound] require_tls` or the relay: TLS mandatory, WebPKI-verified when `verify`.
    Required {
        /// Verify against the system's roots.
        verify: bool,
    },
    /// RFC 7672 §2.2: secure usable TLSA records: TLS mandatory, the chain must match.
    Dane(Arc<Vec<Tlsa>>),
    /// RFC 7672 §2.2: a secure TLSA RRset with no usable record: TLS mandatory, unauthenticated.
    DaneUnauthenticated,
    /// RFC 7672 §2.2.1: the TLSA lookup failed (not a secure denial): this host is not used.
    DaneLookupFailed(String),
    /// RFC 8461 §4.2: the certificate must verify by WebPKI (with the extra CAs) for the MX
    /// host name; `enforce` false is `testing` mode: deliver anyway, report the failure.
    Sts {
        /// `mode: enforce`.
        enforce: bool,
    },
}

impl HopTls {
    /// The RFC 8460 policy type this hop reports under.
    pub fn kind(&self) -> PolicyKind {
        match self {
            HopTls::Dane(_) | HopTls::DaneUnauthenticated | HopTls::DaneLookupFailed(_) => {
                PolicyKind::Tlsa
            }
            HopTls::Sts { .. } => PolicyKind::Sts,
            _ => PolicyKind::NoPolicyFound,
        }
    }

    /// No plaintext fallback, no delivery without TLS.
    pub fn mandatory(&self) -> bool {
        match self {
            HopTls::Opportunistic => false,
            HopTls::Sts { enforce } => *enforce,
            _ => true,
        }
    }

    /// A short tag that keeps pooled connections of different policies apart.
    pub fn tag(&self) -> &'static str {
        match self {
            HopTls::Opportunistic => "opp",
            HopTls::Required { verify: true } => "req-v",
            HopTls::Required { verify: false } => "req",
            HopTls::Dane(_) => "dane",
            HopTls::DaneUnauthenticated => "dane-u",
            HopTls::DaneLookupFailed(_) => "dane-f",
            HopTls::Sts { enforce: true } => "sts-e",
            HopTls::Sts { enforce: false } => "sts-t",
        }
    }
}

/// What a [`PolicyVerifier`] checks.
#[derive(Debug, Clone)]
pub enum Check {
    /// Nothing (opportunistic, or DANE with only unusable records).
    Nothing,
    /// DANE: the TLSA records, and the reference names for DANE-TA.
    Dane(Arc<Vec<Tlsa>>, Vec<String>),
    /// WebPKI against these roots for the name the handshake was given.
    WebPki(Arc<rustls::RootCertStore>),
}

/// The check's verdict, kept for the caller after the handshake.
pub type Verdict = Arc<Mutex<Option<Result<(), (FailureType, String)>>>>;

/// A certificate verifier that runs a [`Check`], keeps its verdict, and fails the handshake
/// only when `enforce` is set (MTA-STS `testing` mode goes on and reports).
#[derive(Debug)]
pub struct PolicyVerifier {
    check: Check,
    enforce: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
    verdict: Verdict,
}

impl PolicyVerifier {
    /// A client configuration whose certificate check is `check`, and where its verdict lands.
    pub fn config(check: Check, enforce: bool) -> (Arc<rustls::ClientConfig>, Verdict) {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verdict: Verdict = Arc::new(Mutex::new(None));
        let verifier = Arc::new(PolicyVerifier {
            check,
            enforce,
            provider: provider.clone(),
            verdict: verdict.clone(),
        });
        (
            Arc::new(crate::client::with_verifier(provider, verifier)),
            verdict,
        )
    }
}

impl ServerCertVerifier for PolicyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = match &self.check {
            Check::Nothing => Ok(()),
            Check::Dane(records, names) => dane::verify(
                records,
                end_entity,
                intermediates,
                names,
                now,
                &self.provider,
            ),
            Check::WebPki(roots) => {
                match rustls::client::WebPkiServerVerifier::builder_with_provider(
                    roots.clone(),
                    self.provider.clone(),
                )
                .build()
                {
                    Ok(v) => v
                        .verify_server_cert(end_entity, intermediates, server_name, &[], now)
                        .map(|_| ())
                        .map_err(|e| dane::classify(&e)),
                    Err(e) => Err((FailureType::CertificateNotTrusted, e.to_string())),
                }
            }
        };
        *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(result.clone());
        match result {
            Err((kind, why)) if self.enforce => {
                Err(rustls::Error::General(format!("{}: {why}", kind.as_str())))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The system's roots plus the PEM certificates of `extra` (`[outbound] extra_ca_file`).
pub fn roots(extra: Option<&std::path::Path>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = extra {
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut n = 0;
        for cert in certs {
            let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            n += 1;
        }
        if n == 0 {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
    }
    Ok(roots)
}
