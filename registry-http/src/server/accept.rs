//! What a connection goes through before HTTP: nothing, or a TLS
//! handshake.

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Turns an accepted TCP stream into the stream HTTP is served on: a TLS
/// handshake, for instance.
///
/// [`accept`](Self::accept) is called on the accept loop, so it should
/// only start the work (take the configuration in force, say, so that a
/// certificate reload concerns later connections only); the future it
/// returns runs in the connection's task, bounded by the header read
/// timeout.
///
/// With `tokio-rustls`:
///
/// ```text
/// struct Rustls(tokio_rustls::TlsAcceptor);
///
/// impl Acceptor for Rustls {
///     type Io = tokio_rustls::server::TlsStream<TcpStream>;
///     fn accept(&self, stream: TcpStream)
///         -> impl Future<Output = io::Result<Self::Io>> + Send + 'static {
///         self.0.accept(stream)
///     }
/// }
/// ```
pub trait Acceptor: Send + Sync + 'static {
    /// The stream HTTP is served on.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Start accepting `stream`.
    fn accept(
        &self,
        stream: TcpStream,
    ) -> impl Future<Output = io::Result<Self::Io>> + Send + 'static;
}

/// Plain TCP: HTTP straight on the accepted stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainTcp;

impl Acceptor for PlainTcp {
    type Io = TcpStream;

    fn accept(
        &self,
        stream: TcpStream,
    ) -> impl Future<Output = io::Result<TcpStream>> + Send + 'static {
        std::future::ready(Ok(stream))
    }
}
