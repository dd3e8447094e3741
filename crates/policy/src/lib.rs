//! Mail authentication for outbound mail: DKIM keys (RFC 6376, RFC 8463 Ed25519), signing with
//! mail-auth, and the DNS records an admin publishes (SPF, DKIM, DMARC, MTA-STS, TLS-RPT, SRV).
//!
//! Keys live in `data_dir/dkim/<domain>/<selector>.ed25519` (PKCS#8 DER) and
//! `data_dir/dkim/<domain>/<selector>.rsa` (PKCS#1 DER), readable by the owner only.
//!
//! Used by the binary's router; it must never depend on a protocol server crate (smtp, imap,
//! pop3) nor on the store: a check sees a message and DNS, not sessions or mailboxes.

pub mod arc_seal;
pub mod auth;
pub mod screens;

use base64::Engine;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::generate::DkimKeyPair;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Why a DKIM key operation failed, worded for the administrator.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file or directory under `data_dir/dkim` could not be read, written or moved.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done: `list`, `create`, `read`, `write`, `fsync`, `move`, `remove`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A key file exists but does not hold a usable key.
    #[error("DKIM key {path}: {message}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What mail-auth said about it.
        message: String,
    },
    /// Key generation or signing failed in mail-auth.
    #[error("DKIM: {0}")]
    Dkim(String),
    /// A refused domain or selector name: (the name, `"domain"` or `"selector"`).
    #[error("{0:?} is not a valid {1}")]
    Invalid(String, &'static str),
    /// `generate` would overwrite the key files of this selector.
    #[error("DKIM keys for selector {0} already exist (remove them first to replace them)")]
    Exists(String),
    /// `remove` found no key of this selector (`<selector> for <domain>`).
    #[error("no DKIM key {0}")]
    NoSuchKey(String),
}

fn io<T>(r: std::io::Result<T>, op: &'static str, path: &Path) -> Result<T, PolicyError> {
    r.map_err(|source| PolicyError::Io {
        op,
        path: path.to_path_buf(),
        source,
    })
}

/// The headers signed when present (RFC 6376 §5.4.1's recommendations).
pub(crate) const SIGNED_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Id",
    "List-Unsubscribe",
];

/// Key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    /// RFC 8463 ed25519-sha256.
    Ed25519,
    /// RFC 6376 rsa-sha256.
    Rsa,
}

impl Algorithm {
    fn extension(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Rsa => "rsa",
        }
    }
    /// The `k=` tag of the DNS record (RFC 6376 §3.6.1).
    pub(crate) fn k_tag(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Rsa => "rsa",
        }
    }
}

enum Key {
    Ed25519(Box<DkimSigner<Ed25519Key, Done>>),
    Rsa(Box<DkimSigner<RsaKey<Sha256>, Done>>),
}

/// One loaded key.
pub struct Selector {
    /// The signing domain (`d=`).
    pub domain: String,
    /// The selector (`s=`): the key file's name without its extension, e.g. `postern-ed25519`.
    pub selector: String,
    /// The key's algorithm, from the file's extension.
    pub algorithm: Algorithm,
    key: Key,
    public: Vec<u8>,
    sealer: arc_seal::Sealer,
}

impl Selector {
    /// The DKIM TXT record value (RFC 6376 §3.6.1): `v=DKIM1; k=...; p=...`.
    pub fn txt_record(&self) -> String {
        let public = match self.algorithm {
            Algorithm::Ed25519 => self.public.clone(),
            Algorithm::Rsa => rsa_spki(&self.public),
        };
        format!(
            "v=DKIM1; k={}; p={}",
            self.algorithm.k_tag(),
            base64::engine::general_purpose::STANDARD.encode(public)
        )
    }

    /// The DNS name of the record: `<selector>._domainkey.<domain>`.
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// A `DKIM-Signature:` header line for `message` (relaxed/relaxed).
    fn sign(&self, message: &[u8]) -> Result<String, PolicyError> {
        let signature = match &self.key {
            Key::Ed25519(k) => k.sign(message),
            Key::Rsa(k) => k.sign(message),
        }
        .map_err(|e| PolicyError::Dkim(e.to_string()))?;
        Ok(signature.to_header())
    }

    /// An ARC set with this key (RFC 8617 §5.1).
    fn arc_seal<'x>(
        &self,
        msg: &'x mail_auth::AuthenticatedMessage<'x>,
        results: &'x mail_auth::AuthenticationResults<'x>,
        output: &mail_auth::ArcOutput<'_>,
    ) -> mail_auth::Result<mail_auth::arc::ArcSet<'x>> {
        self.sealer.seal(msg, results, output)
    }

    /// A raw signature with this key (the ARC-Seal of a failed chain).
    fn arc_sign_raw(&self, data: &[u8]) -> mail_auth::Result<Vec<u8>> {
        self.sealer.sign_raw(data)
    }
}

fn template<T: mail_auth::common::crypto::SigningKey>(
    key: T,
    domain: &str,
    selector: &str,
) -> DkimSigner<T, Done> {
    DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(SIGNED_HEADERS.iter().copied())
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

/// DER length octets.
fn der_len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo (RFC 5280 §4.1), the form DKIM
/// verifiers expect in `p=`.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    const ALGORITHM: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x03];
    der_len(pkcs1.len() + 1, &mut bits);
    bits.push(0);
    bits.extend_from_slice(pkcs1);
    let mut out = vec![0x30];
    der_len(ALGORITHM.len() + bits.len(), &mut out);
    out.extend_from_slice(ALGORITHM);
    out.extend(bits);
    out
}

fn valid_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_domain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(valid_label) && s.contains('.')
}

/// `data_dir/dkim`.
pub fn key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("dkim")
}

/// Makes an Ed25519 and an RSA-2048 key pair for `domain`, selectors `<selector>-ed25519` and
/// `<selector>-rsa`, and returns them.
pub fn generate(
    data_dir: &Path,
    domain: &str,
    selector: &str,
) -> Result<Vec<Selector>, PolicyError> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if !valid_domain(&domain) {
        return Err(PolicyError::Invalid(domain, "domain"));
    }
    if !valid_label(selector) {
        return Err(PolicyError::Invalid(selector.into(), "selector"));
    }
    let dir = key_dir(data_dir).join(&domain);
    io(fs::create_dir_all(&dir), "create", &dir)?;
    let mut written = Vec::new();
    for alg in [Algorithm::Ed25519, Algorithm::Rsa] {
        let name = format!("{selector}-{}", alg.extension());
        let path = dir.join(format!("{name}.{}", alg.extension()));
        if path.exists() {
            return Err(PolicyError::Exists(name));
        }
        let pair = match alg {
            Algorithm::Ed25519 => DkimKeyPair::generate_ed25519(),
            Algorithm::Rsa => DkimKeyPair::generate_rsa(2048),
        }
        .map_err(|e| PolicyError::Dkim(e.to_string()))?;
        write_private(&path, pair.private_key())?;
        written.push(path);
    }
    let all = load_domain(&dir, &domain)?;
    Ok(all
        .into_iter()
        .filter(|s| s.selector.starts_with(&format!("{selector}-")))
        .collect())
}

/// Where a domain's retired keys wait: no longer used to sign, still listed, so that their
/// DNS records stay published until mail signed with them has been verified.
const RETIRED: &str = "retired";

/// Key rotation: new key pairs under `selector`, and every key the domain signed with until
/// now moved to `retired/`. Returns the new selectors and the names of the retired ones.
pub fn rotate(
    data_dir: &Path,
    domain: &str,
    selector: &str,
) -> Result<(Vec<Selector>, Vec<String>), PolicyError> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let dir = key_dir(data_dir).join(&domain);
    let old = match fs::read_dir(&dir) {
        Ok(_) => load_domain(&dir, &domain)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return io(Err(e), "list", &dir),
    };
    let made = generate(data_dir, &domain, selector)?;
    let retired_dir = dir.join(RETIRED);
    let mut retired = Vec::new();
    for s in old {
        let file = format!("{}.{}", s.selector, s.algorithm.extension());
        io(fs::create_dir_all(&retired_dir), "create", &retired_dir)?;
        let (from, to) = (dir.join(&file), retired_dir.join(&file));
        io(fs::rename(&from, &to), "move", &from)?;
        retired.push(s.selector);
    }
    Ok((made, retired))
}

/// The retired selectors of a domain (see [`rotate`]).
pub fn retired(data_dir: &Path, domain: &str) -> Result<Vec<Selector>, PolicyError> {
    let dir = key_dir(data_dir).join(domain).join(RETIRED);
    match fs::read_dir(&dir) {
        Ok(_) => load_domain(&dir, domain),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => io(Err(e), "list", &dir),
    }
}

/// Deletes the keys of `selector` (a full selector such as `postern-rsa`, or the prefix given
/// to [`generate`], for both algorithms), active or retired. Returns the files removed.
pub fn remove(data_dir: &Path, domain: &str, selector: &str) -> Result<Vec<PathBuf>, PolicyError> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if !valid_label(selector) {
        return Err(PolicyError::Invalid(selector.into(), "selector"));
    }
    let dir = key_dir(data_dir).join(&domain);
    let mut removed = Vec::new();
    for d in [dir.clone(), dir.join(RETIRED)] {
        for alg in [Algorithm::Ed25519, Algorithm::Rsa] {
            let ext = alg.extension();
            for stem in [selector.to_string(), format!("{selector}-{ext}")] {
                let path = d.join(format!("{stem}.{ext}"));
                if path.is_file() {
                    io(fs::remove_file(&path), "remove", &path)?;
                    removed.push(path);
                }
            }
        }
    }
    if removed.is_empty() {
        return Err(PolicyError::NoSuchKey(format!("{selector} for {domain}")));
    }
    Ok(removed)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PolicyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = io(
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path),
        "create",
        path,
    )?;
    io(f.write_all(bytes), "write", path)?;
    io(f.sync_all(), "fsync", path)
}

fn load_domain(dir: &Path, domain: &str) -> Result<Vec<Selector>, PolicyError> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = io(fs::read_dir(dir), "list", dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for path in files {
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        let bytes = || io(fs::read(&path), "read", &path);
        let bad = |e: mail_auth::Error| PolicyError::Key {
            path: path.clone(),
            message: e.to_string(),
        };
        let (algorithm, key, public, sealer) = match ext {
            "ed25519" => {
                let der = bytes()?;
                let key = Ed25519Key::from_pkcs8_der(&der).map_err(bad)?;
                let public = key.public_key();
                let sealer = arc_seal::Sealer::ed25519(
                    Ed25519Key::from_pkcs8_der(&der).map_err(bad)?,
                    Ed25519Key::from_pkcs8_der(&der).map_err(bad)?,
                    domain,
                    stem,
                );
                (
                    Algorithm::Ed25519,
                    Key::Ed25519(Box::new(template(key, domain, stem))),
                    public,
                    sealer,
                )
            }
            "rsa" => {
                let der = bytes()?;
                let parse = || {
                    RsaKey::<Sha256>::from_key_der(rustls_pki_types::PrivateKeyDer::Pkcs1(
                        rustls_pki_types::PrivatePkcs1KeyDer::from(der.as_slice()),
                    ))
                    .map_err(bad)
                };
                let key = parse()?;
                let public = key.public_key();
                let sealer = arc_seal::Sealer::rsa(parse()?, parse()?, domain, stem);
                (
                    Algorithm::Rsa,
                    Key::Rsa(Box::new(template(key, domain, stem))),
                    public,
                    sealer,
                )
            }
            _ => continue,
        };
        out.push(Selector {
            domain: domain.to_string(),
            selector: stem.to_string(),
            algorithm,
            key,
            public,
            sealer,
        });
    }
    Ok(out)
}

/// Every domain's keys, for signing.
pub struct DkimKeys {
    by_domain: BTreeMap<String, Vec<Selector>>,
}

impl DkimKeys {
    /// Loads `data_dir/dkim/*/*` (no directory: no keys).
    pub fn load(data_dir: &Path) -> Result<DkimKeys, PolicyError> {
        let root = key_dir(data_dir);
        let mut by_domain = BTreeMap::new();
        let entries = match fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DkimKeys { by_domain })
            }
            Err(e) => return io(Err(e), "list", &root),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let Some(domain) = path
                .file_name()
                .and_then(|d| d.to_str())
                .map(str::to_ascii_lowercase)
            else {
                continue;
            };
            let keys = load_domain(&path, &domain)?;
            if !keys.is_empty() {
                by_domain.insert(domain, keys);
            }
        }
        Ok(DkimKeys { by_domain })
    }

    /// Whether no domain has a key (then nothing is signed).
    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    /// The selectors of one domain.
    pub fn selectors(&self, domain: &str) -> &[Selector] {
        self.by_domain
            .get(&domain.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// Whether keys exist for `domain`.
    pub fn has(&self, domain: &str) -> bool {
        !self.selectors(domain).is_empty()
    }

    /// `DKIM-Signature:` headers (CRLF-terminated, one per key of `domain`) to put in front of
    /// `message`; empty when the domain has no keys.
    pub fn sign(&self, domain: &str, message: &[u8]) -> Result<Vec<u8>, PolicyError> {
        let mut out = Vec::new();
        for s in self.selectors(domain) {
            out.extend_from_slice(s.sign(message)?.as_bytes());
        }
        Ok(out)
    }
}

/// The domain of the first `From:` address of a message (RFC 5322 §3.6.2), lower-case.
pub fn from_domain(message: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::default().parse_headers(message)?;
    let from = parsed.from()?.first()?.address()?.to_string();
    from.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())
}

/// The DNS records to publish for `domain`, in zone-file syntax. `mail_host` is this server's
/// host name (the MX target and the SRV targets); `report_to`, an address that exists, receives
/// DMARC and TLS reports (without one, the records ask for none).
pub fn dns_records(
    domain: &str,
    mail_host: &str,
    keys: &DkimKeys,
    report_to: Option<&str>,
) -> String {
    dns_records_with(
        domain,
        mail_host,
        keys,
        report_to,
        &TransportRecords::default(),
    )
}

/// What `postern dns` knows of our own transport security (issue #18): the MTA-STS policy
/// the HTTPS listener serves and the digest of the certificate's key.
#[derive(Debug, Clone, Default)]
pub struct TransportRecords {
    /// The served MTA-STS policy (RFC 8461 §3.2, CRLF lines) and its id (§3.1).
    pub mta_sts: Option<(String, String)>,
    /// Whether `[listen] https` serves the policy.
    pub https_listening: bool,
    /// The SHA-256 (hex) of the certificate's SubjectPublicKeyInfo, or why it is unknown.
    pub tlsa_spki_sha256: Option<Result<String, String>>,
}

/// As [`dns_records`], with the MTA-STS record of the served policy and the TLSA record of
/// the current certificate.
pub fn dns_records_with(
    domain: &str,
    mail_host: &str,
    keys: &DkimKeys,
    report_to: Option<&str>,
    transport: &TransportRecords,
) -> String {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let h = mail_host.trim_end_matches('.');
    let mut out = String::new();
    let mut put = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    put(format!("; DNS records for {d} (mail host {h})"));
    put("; Mail exchanger (RFC 5321 §5.1)".into());
    put(format!("{d}.\t\t\tIN MX\t10 {h}."));
    match &transport.tlsa_spki_sha256 {
        // RFC 7672 §3.1, RFC 7671 §5.1: DANE-EE(3) SPKI(1) SHA-256(1) of the MX's key.
        Some(Ok(digest)) => {
            put("; DANE (RFC 7672): the TLSA record of the current certificate's key (sign the zone with DNSSEC)".into());
            put("; Before a key change, publish the next key's TLSA beside this one, wait for the TTL, then switch.".into());
            put(format!("_25._tcp.{h}.\tIN TLSA\t3 1 1 {digest}"));
        }
        Some(Err(why)) => put(format!("; DANE: no TLSA record: {why}")),
        None => {}
    }
    put("; SPF (RFC 7208): only the MX hosts send for this domain".into());
    put(format!("{d}.\t\t\tIN TXT\t\"v=spf1 mx -all\""));
    let selectors = keys.selectors(&d);
    if selectors.is_empty() {
        put(format!(
            "; DKIM: no keys yet; run `postern dkim generate {d}`"
        ));
    }
    for s in selectors {
        put(format!("; DKIM (RFC 6376 §3.6.2), {:?} key", s.algorithm));
        put(format!(
            "{}.\tIN TXT\t{}",
            s.dns_name(),
            txt_strings(&s.txt_record())
        ));
    }
    put(
        "; DMARC (RFC 7489): a starting policy; watch the reports, then tighten to p=reject".into(),
    );
    let rua = |tag: &str| report_to.map_or(String::new(), |a| format!("{tag}rua=mailto:{a}"));
    if report_to.is_none() {
        put(format!(
            "; no report address yet: add an account or postmaster@{d} to receive DMARC and TLS reports"
        ));
    }
    put(format!(
        "_dmarc.{d}.\t\tIN TXT\t\"v=DMARC1; p=quarantine{}; adkim=r; aspf=r\"",
        rua("; ")
    ));
    match &transport.mta_sts {
        Some((policy, id)) => {
            put(format!(
                "; MTA-STS (RFC 8461): https://mta-sts.{d}/.well-known/mta-sts.txt serves (the id changes with it):"
            ));
            for line in policy.lines() {
                put(format!(";   {line}"));
            }
            if !transport.https_listening {
                put(
                    "; (set [listen] https, e.g. [\"[::]:443\"], so that postern serves it)".into(),
                );
            }
            put(format!("mta-sts.{d}.\t\tIN CNAME\t{h}."));
            put(format!("_mta-sts.{d}.\t\tIN TXT\t\"v=STSv1; id={id}\""));
        }
        None => {
            put("; MTA-STS (RFC 8461): also serve https://mta-sts.DOMAIN/.well-known/mta-sts.txt containing".into());
            put(format!(
                ";   version: STSv1 / mode: testing / mx: {h} / max_age: 86400"
            ));
            put(format!("_mta-sts.{d}.\t\tIN TXT\t\"v=STSv1; id=1\""));
        }
    }
    put("; SMTP TLS reporting (RFC 8460)".into());
    if let Some(a) = report_to {
        put(format!(
            "_smtp._tls.{d}.\t\tIN TXT\t\"v=TLSRPTv1; rua=mailto:{a}\""
        ));
    }
    put("; Mail client autoconfiguration (RFC 6186, RFC 8314 §5.1)".into());
    for (svc, prio, port) in [
        ("_submissions._tcp", 0, 465),
        ("_submission._tcp", 10, 587),
        ("_imaps._tcp", 0, 993),
        ("_imap._tcp", 10, 143),
        ("_pop3s._tcp", 20, 995),
        ("_pop3._tcp", 30, 110),
    ] {
        put(format!("{svc}.{d}.\tIN SRV\t{prio} 1 {port} {h}."));
    }
    // RFC 5804 §1.8: where a client finds ManageSieve.
    put(format!("_sieve._tcp.{d}.\t\tIN SRV\t0 1 4190 {h}."));
    put(format!("autoconfig.{d}.\t\tIN CNAME\t{h}."));
    out
}

/// A TXT value as quoted strings of at most 255 octets (RFC 1035 §3.3.14).
fn txt_strings(value: &str) -> String {
    let chunks: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    if chunks.len() == 1 {
        chunks.into_iter().next().unwrap_or_default()
    } else {
        format!("( {} )", chunks.join(" "))
    }
}

/// Verifies the DKIM signatures of `message` against the given TXT records (name, value) instead
/// of DNS; returns `(domain, selector, passed)` per signature. For tests and `postern` checks.
pub async fn verify_with_records(
    message: &[u8],
    records: &[(String, String)],
) -> Vec<(String, String, bool)> {
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::common::verify::DomainKey;
    use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, Txt};
    use std::sync::Arc;
    let cache = MapCache::default();
    for (name, value) in records {
        let name = if name.ends_with('.') {
            name.clone()
        } else {
            format!("{name}.")
        };
        let txt = match DomainKey::parse(value.as_bytes()) {
            Ok(k) => Txt::DomainKey(Arc::new(k)),
            Err(e) => Txt::Error(e),
        };
        cache
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.into_boxed_str(), txt);
    }
    let Some(msg) = AuthenticatedMessage::parse(message) else {
        return Vec::new();
    };
    let Ok(auth) = MessageAuthenticator::new_cloudflare() else {
        return Vec::new();
    };
    let params = Parameters::new(&msg)
        .with_txt_cache(&cache)
        .with_mx_cache(&NoCache)
        .with_ipv4_cache(&NoCache)
        .with_ipv6_cache(&NoCache)
        .with_ptr_cache(&NoCache);
    let out = auth.verify_dkim(params).await;
    out.iter()
        .map(|o| {
            let (d, s) = o
                .signature()
                .map(|s| (s.d.clone(), s.s.clone()))
                .unwrap_or_default();
            (d, s, matches!(o.result(), DkimResult::Pass))
        })
        .collect()
}

#[derive(Default)]
struct MapCache(std::sync::Mutex<std::collections::HashMap<Box<str>, mail_auth::Txt>>);

impl mail_auth::ResolverCache<Box<str>, mail_auth::Txt> for MapCache {
    fn get<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }
    fn remove<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
    }
    fn insert(&self, key: Box<str>, value: mail_auth::Txt, _: std::time::Instant) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, value);
    }
}

/// A cache that never has anything.
struct NoCache;

impl<K, V> mail_auth::ResolverCache<K, V> for NoCache {
    fn get<Q>(&self, _: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        None
    }
    fn remove<Q>(&self, _: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        None
    }
    fn insert(&self, _: K, _: V, _: std::time::Instant) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_retires_and_remove_deletes() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), "example.org", "s1").unwrap();
        let (made, retired) = rotate(dir.path(), "example.org", "s2").unwrap();
        assert_eq!(made.len(), 2);
        assert_eq!(retired, ["s1-ed25519", "s1-rsa"]);
        // Only the new keys sign; the old ones are listed as retired.
        let keys = DkimKeys::load(dir.path()).unwrap();
        let active: Vec<&str> = keys
            .selectors("example.org")
            .iter()
            .map(|s| s.selector.as_str())
            .collect();
        assert_eq!(active, ["s2-ed25519", "s2-rsa"]);
        let old: Vec<String> = super::retired(dir.path(), "example.org")
            .unwrap()
            .into_iter()
            .map(|s| s.selector)
            .collect();
        assert_eq!(old, ["s1-ed25519", "s1-rsa"]);
        assert_eq!(remove(dir.path(), "example.org", "s1").unwrap().len(), 2);
        assert!(super::retired(dir.path(), "example.org")
            .unwrap()
            .is_empty());
        assert_eq!(
            remove(dir.path(), "example.org", "s2-rsa").unwrap().len(),
            1
        );
        assert!(matches!(
            remove(dir.path(), "example.org", "s1"),
            Err(PolicyError::NoSuchKey(_))
        ));
        assert!(remove(dir.path(), "example.org", "../x").is_err());
    }

    #[tokio::test]
    async fn generate_sign_and_verify_both_algorithms() {
        let dir = tempfile::tempdir().unwrap();
        let made = generate(dir.path(), "Example.ORG", "s1").unwrap();
        assert_eq!(made.len(), 2);
        assert!(matches!(
            generate(dir.path(), "example.org", "s1"),
            Err(PolicyError::Exists(_))
        ));
        assert!(generate(dir.path(), "bad domain", "s1").is_err());
        let keys = DkimKeys::load(dir.path()).unwrap();
        let sels = keys.selectors("example.org");
        let names: Vec<&str> = sels.iter().map(|s| s.selector.as_str()).collect();
        assert_eq!(names, ["s1-ed25519", "s1-rsa"]);
        let msg = b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hi\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nHello.\r\n";
        assert_eq!(from_domain(msg).as_deref(), Some("example.org"));
        let sig = keys.sign("example.org", msg).unwrap();
        let text = String::from_utf8(sig.clone()).unwrap();
        assert_eq!(text.matches("DKIM-Signature:").count(), 2);
        assert!(text.contains("a=ed25519-sha256") && text.contains("a=rsa-sha256"));
        assert!(text.contains("c=relaxed/relaxed"));
        let mut signed = sig;
        signed.extend_from_slice(msg);
        let records: Vec<(String, String)> = sels
            .iter()
            .map(|s| (s.dns_name(), s.txt_record()))
            .collect();
        let results = verify_with_records(&signed, &records).await;
        assert_eq!(results.len(), 2, "{results:?}");
        assert!(results.iter().all(|r| r.2), "{results:?}");
        // A changed body fails.
        let tampered = String::from_utf8(signed)
            .unwrap()
            .replace("Hello.", "Hullo.");
        let results = verify_with_records(tampered.as_bytes(), &records).await;
        assert!(results.iter().all(|r| !r.2), "{results:?}");
        // The DNS advice names every selector, with long TXT values split.
        let zone = dns_records(
            "example.org",
            "mail.example.org",
            &keys,
            Some("postmaster@example.org"),
        );
        assert!(zone.contains("s1-rsa._domainkey.example.org.\tIN TXT\t( \"v=DKIM1; k=rsa; p="));
        assert!(
            zone.contains("s1-ed25519._domainkey.example.org.\tIN TXT\t\"v=DKIM1; k=ed25519; p=")
        );
        assert!(zone.contains("\"v=spf1 mx -all\""));
        assert!(
            zone.contains("_dmarc.example.org.\t\tIN TXT\t\"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.org;")
        );
        assert!(zone.contains("_submissions._tcp.example.org.\tIN SRV\t0 1 465 mail.example.org."));
        assert!(zone.contains("_sieve._tcp.example.org.\t\tIN SRV\t0 1 4190 mail.example.org."));
        assert!(zone.contains(
            "_smtp._tls.example.org.\t\tIN TXT\t\"v=TLSRPTv1; rua=mailto:postmaster@example.org\""
        ));
        assert!(zone.contains("_mta-sts.example.org."));
        // Without an address that exists, no reports are asked for.
        let zone = dns_records("example.org", "mail.example.org", &keys, None);
        assert!(!zone.contains("rua="), "{zone}");
        assert!(zone.contains("no report address yet"));
    }

    #[test]
    fn transport_records_name_the_served_policy_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DkimKeys::load(dir.path()).unwrap();
        let transport = TransportRecords {
            mta_sts: Some((
                "version: STSv1\r\nmode: enforce\r\nmx: mx.a.test\r\nmax_age: 604800\r\n".into(),
                "0123456789abcdef0123".into(),
            )),
            https_listening: false,
            tlsa_spki_sha256: Some(Ok("ab".repeat(32))),
        };
        let zone = dns_records_with("a.test", "mx.a.test", &keys, None, &transport);
        assert!(
            zone.contains(&format!(
                "_25._tcp.mx.a.test.\tIN TLSA\t3 1 1 {}\n",
                "ab".repeat(32)
            )),
            "{zone}"
        );
        assert!(zone.contains("publish the next key's TLSA"), "{zone}");
        assert!(
            zone.contains("_mta-sts.a.test.\t\tIN TXT\t\"v=STSv1; id=0123456789abcdef0123\"\n"),
            "{zone}"
        );
        assert!(zone.contains(";   mode: enforce\n"), "{zone}");
        assert!(zone.contains("set [listen] https"), "{zone}");
        assert!(!zone.contains("id=1\""), "{zone}");
        let without = TransportRecords {
            tlsa_spki_sha256: Some(Err("no certificate yet".into())),
            ..TransportRecords::default()
        };
        let zone = dns_records_with("a.test", "mx.a.test", &keys, None, &without);
        assert!(
            zone.contains("; DANE: no TLSA record: no certificate yet"),
            "{zone}"
        );
    }
}
