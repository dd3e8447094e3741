//! Line-oriented, buffered I/O over a [`MailStream`] that can be upgraded to TLS in place
//! (RFC 2595 §4 STLS): input is read in large chunks and split into lines here, output is
//! gathered and flushed when the client has nothing more queued (RFC 2449 §6.6 PIPELINING).

use postern_directory::ChannelBindings;
use postern_net::{ChannelBindingKind, MailStream, TlsContext};
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One input line, or why there is none.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// A line including its line end.
    Line(Vec<u8>),
    /// A line longer than the limit was received and discarded.
    TooLong,
    /// The client closed the connection.
    Closed,
}

/// Buffered line I/O on a connection.
pub struct LineIo {
    stream: Option<MailStream>,
    inbuf: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
}

const READ_CHUNK: usize = 16 * 1024;
/// Output is written once this much is gathered, even if more input is queued.
const FLUSH_THRESHOLD: usize = 128 * 1024;

fn lost() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "connection lost during TLS upgrade",
    )
}

impl LineIo {
    pub fn new(stream: MailStream) -> LineIo {
        LineIo {
            stream: Some(stream),
            inbuf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            out: Vec::with_capacity(READ_CHUNK),
        }
    }

    /// Whether the client has sent more than what was consumed (pipelined commands).
    pub fn has_buffered_input(&self) -> bool {
        self.pos < self.inbuf.len()
    }

    /// Reads one line of at most `max` octets (line end included).
    pub async fn read_line(&mut self, max: usize) -> io::Result<Input> {
        let mut discarding = false;
        loop {
            if let Some(i) = self.inbuf[self.pos..].iter().position(|b| *b == b'\n') {
                let end = self.pos + i + 1;
                let line = self.inbuf[self.pos..end].to_vec();
                self.pos = end;
                if discarding || line.len() > max {
                    return Ok(Input::TooLong);
                }
                return Ok(Input::Line(line));
            }
            if self.inbuf.len() - self.pos > max {
                discarding = true;
                self.inbuf.clear();
                self.pos = 0;
            } else if self.pos > 0 {
                self.inbuf.drain(..self.pos);
                self.pos = 0;
            }
            let stream = self.stream.as_mut().ok_or_else(lost)?;
            self.inbuf.reserve(READ_CHUNK);
            if stream.read_buf(&mut self.inbuf).await? == 0 {
                return Ok(Input::Closed);
            }
        }
    }

    /// Queues output.
    pub fn write(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// The output buffer, for encoders that append directly.
    pub fn out_mut(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Sends queued output if the client has no further commands queued, or if much is queued.
    pub async fn flush_if_idle(&mut self) -> io::Result<()> {
        if !self.has_buffered_input() || self.out.len() >= FLUSH_THRESHOLD {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends all queued output.
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let stream = self.stream.as_mut().ok_or_else(lost)?;
        stream.write_all(&self.out).await?;
        stream.flush().await?;
        self.out.clear();
        if self.out.capacity() > 4 * FLUSH_THRESHOLD {
            self.out.shrink_to(READ_CHUNK);
        }
        Ok(())
    }

    /// Flushes, then performs the server side of the TLS handshake (RFC 2595 §4). Input the
    /// client sent before the handshake is discarded (a command injection defence, RFC 3207 §6).
    pub async fn upgrade(&mut self, tls: &TlsContext) -> io::Result<()> {
        self.flush().await?;
        self.inbuf.clear();
        self.pos = 0;
        let stream = self.stream.take().ok_or_else(lost)?;
        self.stream = Some(stream.upgrade(tls).await?);
        Ok(())
    }

    /// The connection's channel binding data (RFC 5056), for SCRAM-SHA-256-PLUS.
    pub fn channel_bindings(&self) -> ChannelBindings {
        match &self.stream {
            Some(s) => ChannelBindings::new(
                s.channel_binding(ChannelBindingKind::TlsExporter),
                s.channel_binding(ChannelBindingKind::TlsServerEndPoint),
            ),
            None => ChannelBindings::none(),
        }
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(MailStream::is_tls)
    }

    /// Closes the write side politely.
    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        if let Some(s) = self.stream.as_mut() {
            let _ = s.shutdown().await;
        }
    }
}
