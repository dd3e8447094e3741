//! Network plumbing shared by every protocol: binding listeners, TLS (configured or self-signed),
//! plaintext/TLS streams with in-place STARTTLS upgrade, connection limits, and an accept loop with
//! graceful shutdown. Protocol crates implement [`SessionHandler`]; nothing here knows SMTP or IMAP
//! beyond the one-line refusal each protocol sends when a limit is hit.

mod bind;
mod error;
mod limits;
mod live;
mod server;
mod sessions;
mod stream;
mod threads;
mod tls;
mod unavailable;

pub use bind::{bind_service, BindPolicy, BoundListener};
pub use error::NetError;
pub use limits::{ConnectionGuard, ConnectionLimiter, Refusal};
pub use live::Live;
pub use server::{Connection, Server, SessionHandler};
pub use sessions::{Registration, Sessions};
pub use stream::{ChannelBindingKind, MailStream, TlsInfo};
pub use tls::{load_or_generate, TlsContext};
pub use tokio_util::sync::CancellationToken;
pub use unavailable::Unavailable;
