//! mbox and Maildir, read and written, for `postern import` and `postern export`.
//!
//! Pure logic and plain blocking I/O (no async runtime): the binary drives these readers and
//! writers and talks to the store itself.
//!
//! * [`mbox`]: a streaming reader of mboxo, mboxrd, mboxcl and mboxcl2 files (one message in
//!   memory at a time, a size limit above which a message is skipped, not buffered) and an
//!   mboxrd writer.
//! * [`maildir`]: a reader of Maildir / Maildir++ trees as Dovecot, Courier and mutt leave
//!   them (info flags, `dovecot-keywords`, `dovecot-uidlist`), and a writer of the same.
//! * [`asctime`]: the date of the mbox `From ` line.
//!
//! Flags travel as [`MessageFlags`]: the IMAP system flags, keywords, and whether the message
//! is still new (`\Recent`) in its source.

pub mod asctime;
pub mod maildir;
pub mod mbox;

use std::io;
use std::path::PathBuf;

/// The flags of a message in a source or destination file, independent of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFlags {
    /// `\Seen` (mbox `Status: R`, Maildir `S`).
    pub seen: bool,
    /// `\Answered` (mbox `X-Status: A`, Maildir `R`).
    pub answered: bool,
    /// `\Flagged` (mbox `X-Status: F`, Maildir `F`).
    pub flagged: bool,
    /// `\Deleted` (mbox `X-Status: D`, Maildir `T`).
    pub deleted: bool,
    /// `\Draft` (mbox `X-Status: T`, Maildir `D`).
    pub draft: bool,
    /// Not yet seen by any mail reader: mbox without `Status: O`, Maildir `new/`.
    pub recent: bool,
    /// Keywords (IMAP flag atoms such as `$Forwarded`, `$Junk`, `Work`), in source order,
    /// without duplicates (compared case-insensitively).
    pub keywords: Vec<String>,
}

impl MessageFlags {
    /// Adds a keyword unless it is there already (case-insensitively) or is not a valid IMAP
    /// flag atom (RFC 9051 §9 `flag-keyword`); returns whether it was valid.
    pub fn add_keyword(&mut self, k: &str) -> bool {
        if !valid_keyword(k) {
            return false;
        }
        if !self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
            self.keywords.push(k.to_owned());
        }
        true
    }
}

/// RFC 9051 §9 `flag-keyword`: an atom (no `(){%*"\]`, controls or spaces), at most 128 bytes.
pub fn valid_keyword(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 128
        && k.bytes().all(|b| {
            (0x21..0x7f).contains(&b)
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

/// One message read from a source, or to be written to a destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The message as stored (RFC 5322 header section and body), without mbox framing and
    /// without the mbox status headers (see [`mbox`]).
    pub data: Vec<u8>,
    /// Flags and keywords.
    pub flags: MessageFlags,
    /// The internal date (IMAP INTERNALDATE), Unix seconds, when the source has one.
    pub internal_date: Option<i64>,
    /// The envelope sender (the mbox `From ` line's address), when known.
    pub sender: Option<String>,
    /// The UID in the source's `dovecot-uidlist`, if it has one.
    pub uid: Option<u32>,
}

/// Errors of the readers and writers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The source is not what it should be (not an mbox, not a Maildir).
    #[error("{0}")]
    Format(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Flushes everything written on the filesystem holding `path` to disk: one `syncfs` for a
/// whole batch of files instead of one `fsync` each (Linux); elsewhere `sync`.
pub fn sync_filesystem(path: &std::path::Path) -> Result<()> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs on a file descriptor we own and keep open for the call.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(Error::io(path, io::Error::last_os_error()));
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = &f;
        // SAFETY: sync takes no arguments and cannot fail.
        unsafe { libc::sync() };
    }
    Ok(())
}
