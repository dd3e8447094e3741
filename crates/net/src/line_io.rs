//! The one connection I/O layer of every line protocol (SMTP, LMTP, IMAP, POP3, ManageSieve):
//! a bounded read buffer split into lines, literals and data; replies gathered and written in
//! one go when the client has pipelined (RFC 2920 §3.2, RFC 9051 §5.5, RFC 2449 §6.6); the
//! STARTTLS/STLS upgrade in place with a handshake timeout (RFC 3207 §4, RFC 2595 §4).
//!
//! Protocol crates keep their own syntax: this layer only says *why* a read stopped
//! ([`LineError`]) and each protocol answers in its own words.

use crate::{ChannelBindingKind, MailStream, TlsContext, TlsInfo};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// How long a client may take for the TLS handshake, after STARTTLS/STLS and on implicit-TLS
/// ports alike.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long closing the write side may take at the end of a session.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// What to do with a line longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongLine {
    /// Read and drop it up to its end, then report [`LineError::TooLong`]: the protocol answers
    /// an error and goes on (SMTP, POP3).
    Skip,
    /// Report [`LineError::TooLong`] as soon as the limit is passed, without waiting for the
    /// line's end: the protocol closes the connection (IMAP).
    Stop,
}

/// The tunables of a [`LineIo`], chosen by each protocol.
#[derive(Debug, Clone)]
pub struct IoSettings {
    /// Octets asked of the socket per read.
    pub read_chunk: usize,
    /// How long writing the gathered output may take.
    pub write_timeout: Duration,
    /// Output held back while the client has more input buffered is written once it reaches
    /// this size ([`LineIo::flush_if_idle`]).
    pub pipeline_limit: usize,
    /// The TLS handshake after [`LineIo::starttls`]; [`HANDSHAKE_TIMEOUT`] unless a test
    /// shortens it.
    pub handshake_timeout: Duration,
    /// What a too long line does.
    pub long_line: LongLine,
}

impl Default for IoSettings {
    fn default() -> Self {
        IoSettings {
            read_chunk: 16 * 1024,
            write_timeout: Duration::from_secs(300),
            pipeline_limit: 128 * 1024,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            long_line: LongLine::Skip,
        }
    }
}

/// Why a read, a write or the TLS upgrade stopped.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// A line was longer than the limit (see [`LongLine`]).
    #[error("line too long")]
    TooLong,
    /// The client closed the connection (or a failed upgrade consumed it).
    #[error("connection closed")]
    Closed,
    /// The client sent nothing for the read timeout, did not read for the write timeout, or
    /// did not finish the TLS handshake in time.
    #[error("timed out")]
    Timeout,
    /// The stop token ([`LineIo::set_stop`]) was cancelled while waiting for the client.
    #[error("stopped")]
    Stopped,
    /// The socket or the TLS layer failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// A buffered, upgradable connection read as lines (and literals, and data) and written in
/// batches.
#[derive(Debug)]
pub struct LineIo {
    /// `None` only after a failed TLS handshake consumed it.
    stream: Option<MailStream>,
    peer: SocketAddr,
    rbuf: Vec<u8>,
    /// Start of the unread input in `rbuf`.
    rpos: usize,
    wbuf: Vec<u8>,
    settings: IoSettings,
    stop: Option<CancellationToken>,
}

/// The length a line counts for its limit: its content plus CRLF, whichever line end it had
/// (RFC 5321 §4.5.3.1.4 counts the CRLF).
fn counted_len(raw: &[u8]) -> usize {
    let body = raw.strip_suffix(b"\n").unwrap_or(raw);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    body.len() + 2
}

/// A line without its line end (CRLF, or a bare LF).
pub fn trim_eol(raw: &[u8]) -> &[u8] {
    let body = raw.strip_suffix(b"\n").unwrap_or(raw);
    body.strip_suffix(b"\r").unwrap_or(body)
}

impl LineIo {
    /// Wraps an accepted connection from `peer`.
    pub fn new(stream: MailStream, peer: SocketAddr, settings: IoSettings) -> LineIo {
        LineIo {
            stream: Some(stream),
            peer,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::with_capacity(1024),
            settings,
            stop: None,
        }
    }

    /// Waiting for the client ends with [`LineError::Stopped`] once `stop` is cancelled (a
    /// graceful shutdown or an admin's kick); `None` waits regardless.
    pub fn set_stop(&mut self, stop: Option<CancellationToken>) {
        self.stop = stop;
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(MailStream::is_tls)
    }

    /// The negotiated TLS parameters, or `None` on plaintext.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        self.stream.as_ref().and_then(MailStream::tls_info)
    }

    /// Channel binding data of the connection (RFC 5056), `None` on plaintext.
    pub fn channel_binding(&self, kind: ChannelBindingKind) -> Option<Vec<u8>> {
        self.stream.as_ref().and_then(|s| s.channel_binding(kind))
    }

    // ----- input -------------------------------------------------------------------------

    /// Whether the client has sent input not read yet (pipelined commands).
    pub fn has_buffered_input(&self) -> bool {
        self.rpos < self.rbuf.len()
    }

    /// Whether a complete line is buffered.
    pub fn has_line(&self) -> bool {
        self.rbuf[self.rpos..].contains(&b'\n')
    }

    /// Reads more input, waiting at most `timeout`. Gathered output is written first: whatever
    /// waits for the client first sends what the client waits for. Cancel-safe once the
    /// output is written.
    pub async fn fill(&mut self, timeout: Duration) -> Result<(), LineError> {
        self.flush().await?;
        if self.rpos > 0 {
            // Keep only the unread tail (a pipelining client may never leave the buffer empty).
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > 4 * self.settings.read_chunk {
            self.rbuf = Vec::new();
        }
        let stream = self.stream.as_mut().ok_or(LineError::Closed)?;
        self.rbuf.reserve(self.settings.read_chunk);
        let read = tokio::time::timeout(timeout, stream.read_buf(&mut self.rbuf));
        let read = match &self.stop {
            Some(stop) => tokio::select! {
                biased;
                _ = stop.cancelled() => return Err(LineError::Stopped),
                r = read => r,
            },
            None => read.await,
        };
        match read {
            Err(_) => Err(LineError::Timeout),
            Ok(Err(e)) => Err(LineError::Io(e)),
            Ok(Ok(0)) => Err(LineError::Closed),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Reads one line, with its line end, of at most `max` octets counted with CRLF. Each
    /// wait for input may take `timeout`.
    pub async fn read_line_raw(
        &mut self,
        max: usize,
        timeout: Duration,
    ) -> Result<&[u8], LineError> {
        let mut scanned = 0;
        let mut discarding = false;
        loop {
            let pending = &self.rbuf[self.rpos..];
            if let Some(i) = pending[scanned..].iter().position(|&b| b == b'\n') {
                let start = self.rpos;
                let end = start + scanned + i + 1;
                self.rpos = end;
                if discarding || counted_len(&self.rbuf[start..end]) > max {
                    return Err(LineError::TooLong);
                }
                return Ok(&self.rbuf[start..end]);
            }
            if pending.len() > max {
                match self.settings.long_line {
                    LongLine::Stop => return Err(LineError::TooLong),
                    LongLine::Skip => {
                        // Drop what we have and the rest of the line as it arrives.
                        self.rbuf.clear();
                        self.rpos = 0;
                        discarding = true;
                    }
                }
            }
            scanned = self.rbuf.len() - self.rpos;
            self.fill(timeout).await?;
        }
    }

    /// Reads one line without its line end (CRLF, or a bare LF as RFC 5321 §2.3.8 tolerates);
    /// see [`LineIo::read_line_raw`] for the limit.
    pub async fn read_line(&mut self, max: usize, timeout: Duration) -> Result<&[u8], LineError> {
        let raw = self.read_line_raw(max, timeout).await?;
        Ok(trim_eol(raw))
    }

    /// Appends exactly `n` octets to `dst` (an IMAP literal, RFC 9051 §4.3; a BDAT chunk,
    /// RFC 3030 §2).
    pub async fn read_exact_into(
        &mut self,
        n: u64,
        dst: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<(), LineError> {
        let mut need = n;
        while need > 0 {
            if !self.has_buffered_input() {
                self.fill(timeout).await?;
            }
            let take = need.min((self.rbuf.len() - self.rpos) as u64) as usize;
            dst.extend_from_slice(&self.rbuf[self.rpos..self.rpos + take]);
            self.rpos += take;
            need -= take as u64;
        }
        Ok(())
    }

    /// Reads and drops exactly `n` octets (a literal or chunk that is refused).
    pub async fn skip(&mut self, n: u64, timeout: Duration) -> Result<(), LineError> {
        let mut need = n;
        while need > 0 {
            if !self.has_buffered_input() {
                self.fill(timeout).await?;
            }
            let take = need.min((self.rbuf.len() - self.rpos) as u64) as usize;
            self.rpos += take;
            need -= take as u64;
        }
        Ok(())
    }

    /// Hands the input to `consume` as it arrives until it says where its data ends (the SMTP
    /// DATA phase, RFC 5321 §4.1.1.4): `Some(n)` consumes `n` octets and returns, `None`
    /// consumes all it was given and reads more.
    pub async fn feed(
        &mut self,
        timeout: Duration,
        mut consume: impl FnMut(&[u8]) -> Option<usize>,
    ) -> Result<(), LineError> {
        loop {
            if self.has_buffered_input() {
                if let Some(n) = consume(&self.rbuf[self.rpos..]) {
                    self.rpos += n.min(self.rbuf.len() - self.rpos);
                    return Ok(());
                }
                self.rpos = self.rbuf.len();
            }
            self.fill(timeout).await?;
        }
    }

    // ----- output ------------------------------------------------------------------------

    /// Gathers output; it is written by [`LineIo::flush`] or before the next wait for input.
    pub fn write(&mut self, bytes: &[u8]) {
        self.wbuf.extend_from_slice(bytes);
    }

    /// The output buffer, for encoders that append to it directly.
    pub fn out_mut(&mut self) -> &mut Vec<u8> {
        &mut self.wbuf
    }

    /// Octets gathered and not written yet.
    pub fn out_len(&self) -> usize {
        self.wbuf.len()
    }

    /// Writes the gathered output, unless the client has already sent more (pipelining):
    /// then the next replies join it in one write, up to [`IoSettings::pipeline_limit`].
    /// Nothing is held back from a waiting client, as reading flushes first.
    pub async fn flush_if_idle(&mut self) -> Result<(), LineError> {
        if !self.has_buffered_input() || self.wbuf.len() >= self.settings.pipeline_limit {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes all gathered output. After an error the output is dropped (the connection is
    /// of no further use but for a last word).
    pub async fn flush(&mut self) -> Result<(), LineError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let Some(stream) = self.stream.as_mut() else {
            self.wbuf.clear();
            return Err(LineError::Closed);
        };
        let wbuf = &self.wbuf;
        let write = async {
            stream.write_all(wbuf).await?;
            stream.flush().await
        };
        let r = tokio::time::timeout(self.settings.write_timeout, write).await;
        self.wbuf.clear();
        if self.wbuf.capacity() > 2 * self.settings.pipeline_limit {
            self.wbuf = Vec::with_capacity(1024);
        }
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(LineError::Io(e)),
            Err(_) => Err(LineError::Timeout),
        }
    }

    // ----- TLS and the end -----------------------------------------------------------------

    /// Writes the gathered output (the "go ahead" reply), then performs the server side of the
    /// TLS handshake (RFC 3207 §4, RFC 2595 §4, RFC 9051 §6.2.1) within the handshake timeout.
    /// Input the client pipelined after the command is discarded, never read as commands
    /// after the handshake (RFC 3207 §4.2 and §6, command injection); returns how many
    /// octets were dropped. After an error the connection is gone.
    pub async fn starttls(&mut self, tls: &TlsContext) -> Result<usize, LineError> {
        self.flush().await?;
        let discarded = self.rbuf.len() - self.rpos;
        self.rbuf.clear();
        self.rpos = 0;
        let plain = self.stream.take().ok_or(LineError::Closed)?;
        match tokio::time::timeout(self.settings.handshake_timeout, plain.upgrade(tls)).await {
            Ok(Ok(s)) => {
                self.stream = Some(s);
                Ok(discarded)
            }
            Ok(Err(e)) => Err(LineError::Io(e)),
            Err(_) => Err(LineError::Timeout),
        }
    }

    /// Writes what is gathered (errors ignored) and closes the write side politely.
    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        if let Some(s) = self.stream.as_mut() {
            let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, s.shutdown()).await;
        }
    }
}

#[cfg(test)]
mod tests;
