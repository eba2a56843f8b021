//! Client connections that a handler may cut: the transport under the AWS endpoint.
//!
//! A lost response of the `reset` kind must look to the client like a network failure after
//! the request was sent: no status line, no bytes, a TCP reset. HTTP handlers cannot do that
//! by themselves (they return responses), so every accepted connection carries a
//! [`ConnectionControl`] that handlers reach as connect info: once it is cut, the connection's
//! next write fails, and the socket closes with `SO_LINGER` 0, which sends a reset.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A handle on one client connection, shared by the connection and the requests it carries.
#[derive(Debug, Clone, Default)]
pub struct ConnectionControl {
    cut: Arc<AtomicBool>,
}

impl ConnectionControl {
    /// Resets the connection instead of writing anything more to it.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

/// A TCP listener whose connections carry a [`ConnectionControl`].
#[derive(Debug)]
pub struct ControlledListener {
    inner: TcpListener,
}

impl ControlledListener {
    pub fn new(inner: TcpListener) -> Self {
        ControlledListener { inner }
    }
}

impl Listener for ControlledListener {
    type Io = ControlledStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        let stream = ControlledStream {
            inner: stream,
            control: ConnectionControl::default(),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, ControlledListener>>
    for ConnectionControl
{
    fn connect_info(stream: IncomingStream<'_, ControlledListener>) -> Self {
        stream.io().control.clone()
    }
}

/// A TCP stream that fails every write, and resets on close, once its control is cut.
#[derive(Debug)]
pub struct ControlledStream {
    inner: TcpStream,
    control: ConnectionControl,
}

impl ControlledStream {
    fn refuse(&self) -> io::Error {
        // Zero linger turns the close that follows the failed write into a reset.
        if let Err(err) = self.inner.set_zero_linger() {
            tracing::warn!(error = %err, "could not arm a connection reset");
        }
        io::Error::new(io::ErrorKind::ConnectionReset, "connection cut by a fault")
    }
}

impl AsyncRead for ControlledStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ControlledStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.control.is_cut() {
            return Poll::Ready(Err(self.refuse()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.control.is_cut() {
            return Poll::Ready(Err(self.refuse()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.control.is_cut() {
            return Poll::Ready(Err(self.refuse()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
