//! Network plumbing shared by every protocol: binding listeners, TLS (configured or self-signed),
//! plaintext/TLS streams with in-place STARTTLS upgrade, connection limits, and an accept loop with
//! graceful shutdown, and [`LineIo`], the one connection I/O layer (lines, literals, pipelining,
//! STARTTLS) every line protocol reads and writes through. Protocol crates implement
//! [`SessionHandler`]; nothing here knows SMTP or IMAP beyond the one-line refusal each protocol
//! sends when a limit is hit.

mod bind;
mod error;
mod limits;
mod line_io;
mod live;
mod peer;
mod server;
mod sessions;
mod stream;
mod threads;
mod tls;
mod tls_client;
mod unavailable;

pub use bind::{bind_service, bind_unix, BindPolicy, BoundListener, SocketAccess};
pub use error::NetError;
pub use limits::{ConnectionGuard, ConnectionLimiter, Refusal};
pub use line_io::{trim_eol, IoSettings, LineError, LineIo, LongLine, HANDSHAKE_TIMEOUT};
pub use live::Live;
pub use peer::{is_loopback, CleartextPolicy};
pub use server::{Connection, Server, SessionHandler, UNIX_PEER};
pub use sessions::{Registration, Sessions};
pub use stream::{ChannelBindingKind, MailStream, TlsInfo};
pub use tls::{load_or_generate, TlsContext};
pub use tls_client::client_tls_config;
pub use tokio_util::sync::CancellationToken;
pub use unavailable::Unavailable;
