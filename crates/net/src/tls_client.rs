//! The TLS client side shared by every outgoing connection that verifies its peer (webhooks,
//! remote mailboxes of fetch): the system's roots plus an optional CA file, aws-lc-rs.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// A TLS client configuration trusting the system's roots and the certificates in `ca_file`.
pub fn client_tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    static SYSTEM: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    let system = SYSTEM.get_or_init(|| rustls_native_certs::load_native_certs().certs);
    let mut roots = rustls::RootCertStore::empty();
    for cert in system {
        let _ = roots.add(cert.clone());
    }
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("not PEM certificates: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("a certificate is not usable: {e}"))?;
            n += 1;
        }
        if n == 0 {
            return Err("no certificate in it".into());
        }
    }
    if roots.is_empty() {
        return Err(
            "no trusted root certificate: install the system's CA certificates or set ca_file"
                .into(),
        );
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
