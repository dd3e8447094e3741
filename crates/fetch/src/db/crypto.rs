//! Remote passwords at rest: AES-256-GCM under a 32-byte key kept in its own private file
//! (`data_dir/fetch.key`), so a copy of the database alone (a backup, a bug report) reveals
//! no password.
//!
//! A sealed value is `v1:` + base64(nonce ‖ ciphertext ‖ tag), with a fresh random 96-bit
//! nonce each time and the account id as associated data: a ciphertext copied into another
//! account's row does not open.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::error::FetchError;

/// Length of the key in `fetch.key`.
pub(super) const KEY_LEN: usize = 32;

/// The prefix of the current format of sealed values.
const PREFIX: &str = "v1:";

/// The key, ready to seal and open.
pub(super) struct Key(LessSafeKey);

/// Why a sealed value does not open.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum OpenError {
    /// Not `v1:` + base64 of at least a nonce and a tag.
    Format,
    /// The tag does not match: another key, another associated data, or changed bytes.
    Authentication,
}

impl Key {
    /// A key from its bytes.
    pub(super) fn new(bytes: &[u8; KEY_LEN]) -> Key {
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes).expect("AES-256-GCM takes a 32-byte key");
        Key(LessSafeKey::new(unbound))
    }

    /// Seals `plaintext` bound to `aad`.
    pub(super) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, FetchError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce)
            .map_err(|_| FetchError::local("the system's random number generator failed"))?;
        let mut buf = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| FetchError::local("encrypting a password failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}", BASE64.encode(out)))
    }

    /// Opens a value [`Key::seal`] made with the same `aad`.
    pub(super) fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, OpenError> {
        let body = sealed.strip_prefix(PREFIX).ok_or(OpenError::Format)?;
        let mut bytes = BASE64.decode(body).map_err(|_| OpenError::Format)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(OpenError::Format);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let plain = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut bytes[NONCE_LEN..],
            )
            .map_err(|_| OpenError::Authentication)?;
        Ok(plain.to_vec())
    }
}

/// The effective user id of the process.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Reads the key file, refusing one that is not a private regular file of this user holding
/// exactly [`KEY_LEN`] bytes. `Ok(None)` when it does not exist.
pub(super) fn read_key_file(path: &Path) -> Result<Option<[u8; KEY_LEN]>, FetchError> {
    let shown = path.display();
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(FetchError::config(format!(
                "the key file {shown} is a symbolic link: it must be a plain file"
            )))
        }
        Err(e) => {
            return Err(FetchError::config(format!(
                "cannot read the key file {shown}: {e}"
            )))
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| FetchError::config(format!("cannot read the key file {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(FetchError::config(format!(
            "the key file {shown} is not a plain file"
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(FetchError::config(format!(
            "the key file {shown} (mode {mode:04o}) can be read by other users: \
             run `chmod 600 {shown}` (or `postern fix-permissions`)"
        )));
    }
    if meta.uid() != euid() {
        return Err(FetchError::config(format!(
            "the key file {shown} belongs to uid {}, not to the user postern runs as (uid {})",
            meta.uid(),
            euid()
        )));
    }
    let mut bytes = Vec::with_capacity(KEY_LEN + 1);
    Read::by_ref(&mut file)
        .take(KEY_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| FetchError::config(format!("cannot read the key file {shown}: {e}")))?;
    let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
        FetchError::config(format!(
            "the key file {shown} holds {}{} bytes, not {KEY_LEN}: it is damaged or not postern's",
            bytes.len(),
            if bytes.len() > KEY_LEN { "+" } else { "" }
        ))
    })?;
    Ok(Some(key))
}

/// Makes a new key file with 32 random bytes from the OS, mode 0600, durable. It is written
/// to a temporary file (created with `O_EXCL`) and linked into place, which fails if the key
/// file exists: two processes doing this at once end up with the one key that won, which
/// this returns.
pub(super) fn create_key_file(path: &Path) -> Result<[u8; KEY_LEN], FetchError> {
    let shown = path.display();
    let io_err = |what: &str, e: std::io::Error| {
        FetchError::local(format!("cannot create the key file {shown}: {what}: {e}"))
    };
    let mut key = [0u8; KEY_LEN];
    aws_lc_rs::rand::fill(&mut key)
        .map_err(|_| FetchError::local("the system's random number generator failed"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map_or("fetch.key".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| io_err("temporary file", e))?;
        file.write_all(&key).map_err(|e| io_err("write", e))?;
        file.sync_all().map_err(|e| io_err("fsync", e))?;
        match fs::hard_link(&tmp, path) {
            Ok(()) => {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io_err("fsync of its directory", e))?;
                Ok(Some(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(io_err("link", e)),
        }
    })();
    let _ = fs::remove_file(&tmp);
    match result? {
        Some(key) => Ok(key),
        // Another process made it first: use theirs.
        None => read_key_file(path)?.ok_or_else(|| {
            FetchError::local(format!(
                "the key file {shown} vanished while it was created"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn seals_and_opens_bound_to_the_associated_data() {
        let key = Key::new(&[7; KEY_LEN]);
        let a = key.seal(b"hunter2", b"1").unwrap();
        let b = key.seal(b"hunter2", b"1").unwrap();
        assert!(a.starts_with("v1:"));
        assert_ne!(a, b, "a fresh nonce every time");
        assert_eq!(key.open(&a, b"1").unwrap(), b"hunter2");
        assert_eq!(key.open(&a, b"2"), Err(OpenError::Authentication));
        assert_eq!(
            Key::new(&[8; KEY_LEN]).open(&a, b"1"),
            Err(OpenError::Authentication)
        );
        for bad in ["hunter2", "v1:", "v1:!!!!", "v2:AAAA", "v1:AAAA"] {
            assert_eq!(key.open(bad, b"1"), Err(OpenError::Format), "{bad}");
        }
    }

    #[test]
    fn key_file_is_private_and_exact() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("fetch.key");
        assert_eq!(read_key_file(&path).unwrap(), None);
        let key = create_key_file(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(read_key_file(&path).unwrap(), Some(key));
        // A second creation keeps the first key.
        assert_eq!(create_key_file(&path).unwrap(), key);
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            1,
            "no temp file left"
        );

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let e = read_key_file(&path).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Config);
        assert!(e.message.contains("can be read by other users"), "{e}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, [1u8; 31]).unwrap();
        let e = read_key_file(&path).unwrap_err();
        assert!(e.message.contains("31 bytes, not 32"), "{e}");
        fs::write(&path, [1u8; 64]).unwrap();
        assert!(read_key_file(&path).unwrap_err().message.contains("33+"));

        let link = t.path().join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(read_key_file(&link)
            .unwrap_err()
            .message
            .contains("symbolic link"));
    }
}
