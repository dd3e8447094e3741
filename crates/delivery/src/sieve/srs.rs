//! The Sender Rewriting Scheme for redirected mail: a message forwarded to another domain
//! leaves with an envelope sender of ours (`SRS0=HHHH=TT=domain=local@our.domain`), so SPF at
//! the destination checks our servers, not the original sender's; a bounce to that address can
//! be traced back to the original sender, and nobody else can forge one (HHHH is an HMAC under
//! a key kept in the data directory).
//!
//! The format is the customary SRS0 of Shevek's "Sender Rewriting Scheme" paper: a hash, a
//! day stamp (base32, modulo 1024 days), then the original domain and local part.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use postern_directory::{Address, Destination, Directory, Resolution, Result as DirResult};
use sha2::Sha256;
use std::io::{self, Read, Write};
use std::path::Path;

/// Days an SRS address stays valid for a bounce.
const MAX_AGE_DAYS: u64 = 21;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The rewriting key and its operations.
pub struct Srs {
    key: Vec<u8>,
}

impl Srs {
    /// A rewriter with this secret key.
    pub fn new(key: Vec<u8>) -> Srs {
        Srs { key }
    }

    /// The key in `path` (32 random bytes), created (mode 0600) when it does not exist yet,
    /// like the other secrets in the data directory.
    pub fn load_or_create(path: &Path) -> io::Result<Srs> {
        match std::fs::File::open(path) {
            Ok(mut f) => {
                let mut key = Vec::new();
                f.read_to_end(&mut key)?;
                if key.len() < 16 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: SRS key too short", path.display()),
                    ));
                }
                Ok(Srs::new(key))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                use rand::RngCore;
                use std::os::unix::fs::OpenOptionsExt;
                let mut key = vec![0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                // A name of this attempt's own: processes racing to create the key (Postfix
                // runs several `postern deliver` at once) must not share, truncate or remove
                // each other's temporary file.
                let tmp = path.with_extension(format!(
                    "tmp.{}.{:016x}",
                    std::process::id(),
                    rand::rngs::OsRng.next_u64()
                ));
                {
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&tmp)?;
                    f.write_all(&key)?;
                    f.sync_all()?;
                }
                // Another process may have won the race: its key stays, ours is dropped.
                match std::fs::hard_link(&tmp, path) {
                    Ok(()) => {
                        let _ = std::fs::remove_file(&tmp);
                        if let Some(dir) = path.parent() {
                            std::fs::File::open(dir)?.sync_all()?;
                        }
                        Ok(Srs::new(key))
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let _ = std::fs::remove_file(&tmp);
                        Srs::load_or_create(path)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn hash(&self, stamp: &str, domain: &str, local: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        for part in [stamp, domain, local] {
            mac.update(part.to_ascii_lowercase().as_bytes());
            mac.update(b"\0");
        }
        let digest = mac.finalize().into_bytes();
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&digest[..])[..4].to_string()
    }

    /// The envelope sender for `sender` forwarded by `our_domain` at `now` (Unix seconds).
    /// An address that is already one of our SRS0 addresses is kept (its bounce path works).
    pub fn forward(&self, sender: &str, our_domain: &str, now: i64) -> String {
        if self.reverse(sender, now).is_some()
            && sender
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(our_domain))
        {
            return sender.to_string();
        }
        let Some((local, domain)) = sender.rsplit_once('@') else {
            return sender.to_string();
        };
        let stamp = day_stamp(now);
        let hash = self.hash(&stamp, domain, local);
        format!("SRS0={hash}={stamp}={domain}={local}@{our_domain}")
    }

    /// The original sender of an SRS0 address of ours, when its hash is right and it is at most
    /// 21 days old (a bounce to it goes back there); `None` otherwise.
    pub fn reverse(&self, address: &str, now: i64) -> Option<String> {
        let (local, _) = address.rsplit_once('@')?;
        let rest = local
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("SRS0="))
            .map(|_| &local[5..])?;
        let mut parts = rest.splitn(4, '=');
        let (hash, stamp, domain, orig_local) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // Directories lower-case local parts (RFC 5321 §2.4 allows it), so the hash is compared
        // without case, as SRS implementations do.
        if !hash.eq_ignore_ascii_case(&self.hash(stamp, domain, orig_local)) || domain.is_empty() {
            return None;
        }
        let then = stamp_value(stamp)?;
        let today = day_number(now) % 1024;
        let age = (today + 1024 - then) % 1024;
        (age <= MAX_AGE_DAYS).then(|| format!("{orig_local}@{domain}"))
    }
}

/// The directory as SMTP and local delivery see it, plus SRS bounces: an SRS0 address of ours
/// whose hash and age are right resolves to the original sender (a remote destination), so a
/// bounce of a redirected message reaches whoever sent it. Everything else is the inner
/// directory's answer.
#[derive(Debug)]
pub struct SrsDirectory {
    inner: std::sync::Arc<dyn Directory>,
    srs: std::sync::Arc<Srs>,
}

impl std::fmt::Debug for Srs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Srs { key: <secret> }")
    }
}

impl SrsDirectory {
    /// `inner` with SRS0 addresses of ours resolved by `srs`.
    pub fn new(inner: std::sync::Arc<dyn Directory>, srs: std::sync::Arc<Srs>) -> SrsDirectory {
        SrsDirectory { inner, srs }
    }

    async fn srs_resolution(&self, address: &Address) -> DirResult<Option<Resolution>> {
        let local = address.local_part();
        if !local
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("SRS0="))
        {
            return Ok(None);
        }
        if !self.inner.is_local_domain(address.domain()).await? {
            return Ok(None);
        }
        let now = super::unix_now();
        Ok(self
            .srs
            .reverse(&address.to_string(), now)
            .map(|original| Resolution::Deliver(vec![Destination::Remote(original)])))
    }
}

#[async_trait::async_trait]
impl Directory for SrsDirectory {
    async fn resolve(&self, address: &Address) -> DirResult<Resolution> {
        match self.srs_resolution(address).await? {
            Some(r) => Ok(r),
            None => self.inner.resolve(address).await,
        }
    }
    async fn expand(&self, address: &Address) -> DirResult<Resolution> {
        self.inner.expand(address).await
    }
    async fn is_local_domain(&self, name: &str) -> DirResult<bool> {
        self.inner.is_local_domain(name).await
    }
    async fn domains(&self) -> DirResult<Vec<postern_directory::Domain>> {
        self.inner.domains().await
    }
    async fn account(&self, address: &str) -> DirResult<Option<postern_directory::Account>> {
        self.inner.account(address).await
    }
    fn subaddress_separator(&self) -> Option<char> {
        self.inner.subaddress_separator()
    }
    fn authenticate(&self, login: &str, password: &[u8]) -> DirResult<Option<String>> {
        self.inner.authenticate(login, password)
    }
    fn apop_secret(&self, name: &str) -> DirResult<Option<String>> {
        self.inner.apop_secret(name)
    }
    fn scram_credentials(
        &self,
        login: &str,
        mechanism: &str,
    ) -> DirResult<Option<postern_directory::sasl::ScramCredentials>> {
        self.inner.scram_credentials(login, mechanism)
    }
    fn scram_decoy(&self, login: &str, mechanism: &str) -> DirResult<(Vec<u8>, u32)> {
        self.inner.scram_decoy(login, mechanism)
    }
}

fn day_number(now: i64) -> u64 {
    u64::try_from(now.max(0)).unwrap_or(0) / 86_400
}

fn day_stamp(now: i64) -> String {
    let d = day_number(now) % 1024;
    let hi = usize::try_from(d >> 5).unwrap_or(0);
    let lo = usize::try_from(d & 31).unwrap_or(0);
    [BASE32[hi] as char, BASE32[lo] as char].iter().collect()
}

fn stamp_value(stamp: &str) -> Option<u64> {
    let b = stamp.as_bytes();
    if b.len() != 2 {
        return None;
    }
    let val = |c: u8| {
        BASE32
            .iter()
            .position(|&x| x == c.to_ascii_uppercase())
            .map(|p| p as u64)
    };
    Some(val(b[0])? << 5 | val(b[1])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Several processes creating the key at once (Postfix runs `postern deliver` in parallel)
    /// all succeed, with the one key that won.
    #[test]
    fn racing_creators_all_get_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("srs.key");
        let keys: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let path = path.clone();
                    s.spawn(move || {
                        Srs::load_or_create(&path).unwrap().forward(
                            "a@remote.example",
                            "example.org",
                            0,
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "temporary files were left behind");
    }

    const NOW: i64 = 1_796_000_000;

    #[test]
    fn forward_and_reverse() {
        let srs = Srs::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let f = srs.forward("bob@sender.test", "example.org", NOW);
        assert!(f.starts_with("SRS0="), "{f}");
        assert!(f.ends_with("=sender.test=bob@example.org"), "{f}");
        assert_eq!(srs.reverse(&f, NOW).as_deref(), Some("bob@sender.test"));
        assert_eq!(
            srs.reverse(&f, NOW + 20 * 86_400).as_deref(),
            Some("bob@sender.test")
        );
        assert_eq!(srs.reverse(&f, NOW + 30 * 86_400), None, "too old");
        let forged = f.replacen("bob", "eve", 1);
        assert_eq!(srs.reverse(&forged, NOW), None, "hash covers the address");
        let other = Srs::new(b"another key, another hash value".to_vec());
        assert_eq!(other.reverse(&f, NOW), None);
        // Forwarding our own SRS address again keeps it.
        assert_eq!(srs.forward(&f, "example.org", NOW), f);
    }

    #[test]
    fn key_is_created_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("srs.key");
        let a = Srs::load_or_create(&path).unwrap();
        let b = Srs::load_or_create(&path).unwrap();
        assert_eq!(a.key, b.key);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }
}
