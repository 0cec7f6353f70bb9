//! The load generator's client side: TCP connects (from a chosen source address), CONNECT
//! tunnels, TLS (with session resumption), and HTTP/1.1 or HTTP/2 on top.
//!
//! **HTTP/1.1**: one request in flight per connection, exchanged *in the task that sends
//! on it* by secgate's own small HTTP/1.1 exchange ([`super::h1`]: prepared request bytes,
//! `httparse` for the answer, no buffer kept while idle). A spawned connection driver would
//! cost two task wake-ups per request, often across the runtime's threads. Before an idle
//! connection is used again it is read once without waiting, so a connection the server
//! closed meanwhile is seen as closed (and replaced) instead of failing the next request.
//!
//! **HTTP/2** (`http2 = true`): ALPN `h2` over TLS, prior knowledge (h2c) over plain TCP.
//! Streams are multiplexed: several workers share one connection (its driver runs on a task
//! of its own, as the streams come from several tasks), see [`Lane`].
//!
//! **TLS session resumption**: every connection uses the scan's TLS configuration, whose
//! session store keeps the tickets servers send, so a new connection to the same server
//! resumes when a ticket is left ([`Conn::resumed`] says whether it did).
//!
//! **Source addresses**: ephemeral ports are per source address, so connections to a
//! loopback IPv4 target come from 127.0.0.1 to 127.0.0.64 in turn, and `source_range`
//! spreads them over a configured range of this machine's addresses. A connect that fails for
//! lack of descriptors, ports or source addresses is [`ErrorKind::Local`]: the machine, not
//! the target, was the limit.
//!
//! Every connect, tunnel, handshake and exchange has the endpoint's timeout; response heads
//! and bodies are read up to caps.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::generator::{BODY_CAP, Endpoint, ErrorKind, RequestSpec, Tunnel};
use super::h1::{H1, HEAD_CAP};
/// Source addresses used for a loopback IPv4 target (127.0.0.1 to 127.0.0.64).
pub const LOOPBACK_SOURCES: u8 = 64;
/// The longest proxy answer to a CONNECT read.
const TUNNEL_HEAD_CAP: usize = 8192;

/// The protocol of the load connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 keep-alive, one request at a time per connection.
    Http1,
    /// HTTP/2, up to this many streams at once per connection.
    Http2 {
        /// Concurrent streams (workers) per connection.
        streams: u32,
    },
}

impl Protocol {
    /// Name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "http/1.1",
            Protocol::Http2 { .. } => "h2",
        }
    }

    /// Workers sharing one connection.
    pub fn streams(self) -> u32 {
        match self {
            Protocol::Http1 => 1,
            Protocol::Http2 { streams } => streams.max(1),
        }
    }
}

/// Where connections come from: the addresses of `source_range`, or nothing configured.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `source_range`: this machine's addresses to bind, used in turn.
    pub range: Option<ipnet::IpNet>,
}

impl Sources {
    /// The source address of connection number `slot` to `dest`: the range's addresses in
    /// turn (when of the destination's family), 127.0.0.1–127.0.0.64 in turn for a loopback
    /// IPv4 destination, or none (the kernel chooses).
    pub fn for_slot(&self, dest: SocketAddr, slot: u32) -> Option<IpAddr> {
        if let Some(range) = &self.range {
            return nth_host(range, slot).filter(|ip| ip.is_ipv4() == dest.is_ipv4());
        }
        match dest.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => {
                let n = u8::try_from(slot % u32::from(LOOPBACK_SOURCES)).unwrap_or(0);
                Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + n)))
            }
            _ => None,
        }
    }

    /// How many source addresses connections to `dest` are spread over (1: the kernel's).
    pub fn count(&self, dest: Option<SocketAddr>) -> u64 {
        match (&self.range, dest) {
            (Some(r), _) => host_count(r),
            (None, Some(d)) if d.is_ipv4() && d.ip().is_loopback() => u64::from(LOOPBACK_SOURCES),
            _ => 1,
        }
    }
}

/// Usable addresses of `range`: every address of a /31, /32, /127 or /128; otherwise not
/// the network's first (nor, for IPv4, its broadcast) address.
pub fn host_count(range: &ipnet::IpNet) -> u64 {
    let bits = u32::from(range.max_prefix_len() - range.prefix_len());
    let all = 1u128.checked_shl(bits).unwrap_or(u128::MAX);
    let usable = match range {
        ipnet::IpNet::V4(_) if bits >= 2 => all - 2,
        ipnet::IpNet::V6(_) if bits >= 1 => all - 1,
        _ => all,
    };
    u64::try_from(usable).unwrap_or(u64::MAX)
}

/// The `slot`-th usable address of `range` (in turn: slot modulo the usable count).
pub fn nth_host(range: &ipnet::IpNet, slot: u32) -> Option<IpAddr> {
    let n = host_count(range).max(1);
    let k = u64::from(slot) % n;
    let bits = u32::from(range.max_prefix_len() - range.prefix_len());
    match range {
        ipnet::IpNet::V4(r) => {
            let skip = u32::from(bits >= 2);
            let base = u32::from(r.network());
            let k = u32::try_from(k).ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(base.checked_add(skip + k)?)))
        }
        ipnet::IpNet::V6(r) => {
            let skip = u128::from(bits >= 1);
            let base = u128::from(r.network());
            Some(IpAddr::V6(base.checked_add(skip + u128::from(k))?.into()))
        }
    }
}

/// A TCP stream, or TLS over one.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Aborts the HTTP/2 driver task when the last handle of its connection goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Link {
    H1(H1<Stream>),
    H2 {
        sender: http2::SendRequest<Full<Bytes>>,
        _driver: Arc<AbortOnDrop>,
    },
}

/// One open connection.
pub struct Conn {
    link: Link,
    resumed: Option<bool>,
}

impl Conn {
    /// Whether the peer closed the connection. An HTTP/1.1 connection is read once without
    /// waiting first, so that a close that arrived while it was idle is seen.
    pub(super) fn is_closed(&mut self) -> bool {
        match &mut self.link {
            Link::H1(h1) => h1.is_closed(),
            Link::H2 { sender, .. } => sender.is_closed(),
        }
    }

    /// Free what an idle connection need not keep (an HTTP/1.1 connection's read buffer).
    pub(super) fn release(&mut self) {
        if let Link::H1(h1) = &mut self.link {
            h1.release();
        }
    }

    /// Over TLS: whether the handshake resumed a session (`None` without TLS).
    pub fn resumed(&self) -> Option<bool> {
        self.resumed
    }

    /// Another handle on the same HTTP/2 connection (`None` for HTTP/1.1: one user at a
    /// time).
    fn share(&self) -> Option<Conn> {
        match &self.link {
            Link::H2 { sender, _driver } => Some(Conn {
                link: Link::H2 {
                    sender: sender.clone(),
                    _driver: _driver.clone(),
                },
                resumed: self.resumed,
            }),
            Link::H1(_) => None,
        }
    }
}

/// Out of file descriptors (EMFILE, ENFILE), of source ports (EADDRINUSE on an explicit
/// bind) or of source addresses (EADDRNOTAVAIL): this machine's limit, not the target's.
fn local_or_connect(e: &std::io::Error) -> ErrorKind {
    if matches!(e.raw_os_error(), Some(23 | 24 | 98 | 99))
        || e.kind() == std::io::ErrorKind::AddrNotAvailable
    {
        ErrorKind::Local
    } else {
        ErrorKind::Connect
    }
}

/// Connect to the first of `addrs` that accepts, connection number `slot` (which picks its
/// source address), each within `timeout`.
async fn tcp_connect(
    addrs: &[SocketAddr],
    sources: &Sources,
    slot: u32,
    timeout: Duration,
) -> Result<TcpStream, ErrorKind> {
    let mut last = ErrorKind::Connect;
    for addr in addrs {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        };
        let socket = socket.map_err(|e| local_or_connect(&e))?;
        if let Some(ip) = sources.for_slot(*addr, slot) {
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| local_or_connect(&e))?;
        }
        match tokio::time::timeout(timeout, socket.connect(*addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = local_or_connect(&e),
            Err(_) => last = ErrorKind::Connect,
        }
    }
    Err(last)
}

/// Ask the proxy on `tcp` for a tunnel; on `200` the stream is the target's.
async fn open_tunnel(tcp: &mut TcpStream, t: &Tunnel, timeout: Duration) -> Result<(), ErrorKind> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut req = format!("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n", t.authority);
    if let Some(a) = &t.authorization {
        req.push_str(&format!("Proxy-Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    let exchange = async {
        tcp.write_all(req.as_bytes())
            .await
            .map_err(|_| ErrorKind::Connect)?;
        // Byte by byte, so that nothing of the tunnel is read past the proxy's head.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() >= TUNNEL_HEAD_CAP {
                return Err(ErrorKind::TooLarge);
            }
            match tcp.read(&mut byte).await {
                Ok(0) | Err(_) => return Err(ErrorKind::Reset),
                Ok(_) => head.extend_from_slice(&byte),
            }
        }
        let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
        let status = line.split(|b| *b == b' ').nth(1).unwrap_or_default();
        if line.starts_with(b"HTTP/1.") && status == b"200" {
            Ok(())
        } else if line.starts_with(b"HTTP/1.") {
            // The proxy refused the tunnel (403, 407, 502...).
            Err(ErrorKind::Connect)
        } else {
            Err(ErrorKind::Malformed)
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ErrorKind::Timeout)?
}

/// Open connection number `slot` (TCP, the tunnel under `--proxy`, TLS when https, then the
/// HTTP/1.1 or HTTP/2 handshake).
pub(super) async fn connect(ep: &Endpoint, slot: u32) -> Result<Conn, ErrorKind> {
    let tcp = match &ep.proxy {
        Some(t) => {
            let mut tcp = tcp_connect(
                std::slice::from_ref(&t.proxy),
                &ep.sources,
                slot,
                ep.timeout,
            )
            .await?;
            open_tunnel(&mut tcp, t, ep.timeout).await?;
            tcp
        }
        None => tcp_connect(&ep.addrs, &ep.sources, slot, ep.timeout).await?,
    };
    let _ = tcp.set_nodelay(true);
    let (stream, resumed) = match &ep.tls {
        Some((config, name)) => {
            let tls = tokio_rustls::TlsConnector::from(config.clone());
            let stream = tokio::time::timeout(ep.timeout, tls.connect(name.clone(), tcp))
                .await
                .map_err(|_| ErrorKind::Timeout)?
                .map_err(|e| tls_error(&e))?;
            let (_, state) = stream.get_ref();
            let resumed = state.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            if matches!(ep.protocol, Protocol::Http2 { .. })
                && state.alpn_protocol() != Some(b"h2".as_slice())
            {
                // Asked for HTTP/2, and the server did not agree to it.
                return Err(ErrorKind::Protocol);
            }
            (Stream::Tls(Box::new(stream)), Some(resumed))
        }
        None => (Stream::Plain(tcp), None),
    };
    let link = match ep.protocol {
        Protocol::Http1 => Link::H1(H1::new(stream)),
        Protocol::Http2 { .. } => {
            let io = TokioIo::new(stream);
            let mut builder = http2::Builder::new(TokioExecutor::new());
            builder.max_header_list_size(u32::try_from(HEAD_CAP).unwrap_or(u32::MAX));
            let (sender, conn) = tokio::time::timeout(ep.timeout, builder.handshake(io))
                .await
                .map_err(|_| ErrorKind::Timeout)?
                .map_err(|_| ErrorKind::Protocol)?;
            let driver = tokio::spawn(async move {
                let _ = conn.await;
            });
            Link::H2 {
                sender,
                _driver: Arc::new(AbortOnDrop(driver)),
            }
        }
    };
    Ok(Conn { link, resumed })
}

/// A failed TLS handshake: `protocol` when the server refused every protocol offered in ALPN
/// (asked for h2 alone, a server without it answers `no_application_protocol`), else `tls`.
fn tls_error(e: &std::io::Error) -> ErrorKind {
    let alert = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    if matches!(
        alert,
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::NoApplicationProtocol
        ))
    ) {
        ErrorKind::Protocol
    } else {
        ErrorKind::Tls
    }
}

fn classify(e: &hyper::Error) -> ErrorKind {
    if e.is_parse() || e.is_parse_status() {
        ErrorKind::Malformed
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Reset
    }
}

async fn read_answer(resp: hyper::Response<hyper::body::Incoming>) -> Result<u16, ErrorKind> {
    let status = resp.status().as_u16();
    match Limited::new(resp.into_body(), BODY_CAP).collect().await {
        Ok(_) => Ok(status),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ErrorKind::TooLarge)
        }
        Err(_) => Err(ErrorKind::Reset),
    }
}

/// One exchange on `conn`: the status, or why it failed. No timeout of its own: the caller's.
pub(super) async fn exchange(conn: &mut Conn, spec: &RequestSpec) -> Result<u16, ErrorKind> {
    match &mut conn.link {
        Link::H1(h1) => h1.exchange(spec).await,
        Link::H2 { sender, .. } => {
            let req = spec.build().ok_or(ErrorKind::Malformed)?;
            sender.ready().await.map_err(|e| classify(&e))?;
            let resp = sender.send_request(req).await.map_err(|e| classify(&e))?;
            read_answer(resp).await
        }
    }
}

/// A worker's way to a connection: its own (HTTP/1.1), or a share of one HTTP/2 connection
/// that several workers multiplex their streams on.
pub(super) struct Lane {
    own: Option<Conn>,
    shared: Option<Arc<tokio::sync::Mutex<Option<Conn>>>>,
}

/// What [`Lane::get`] did besides handing out a connection.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Opened {
    /// A connection was opened (TCP, TLS, HTTP handshake).
    pub connects: u64,
    /// Its TLS handshake resumed a session.
    pub resumed: bool,
}

impl Lane {
    /// A lane of its own, starting from `conn` if given.
    pub(super) fn own(conn: Option<Conn>) -> Lane {
        Lane {
            own: conn,
            shared: None,
        }
    }

    /// A lane on a shared HTTP/2 connection slot.
    pub(super) fn shared(slot: Arc<tokio::sync::Mutex<Option<Conn>>>) -> Lane {
        Lane {
            own: None,
            shared: Some(slot),
        }
    }

    /// A slot for [`Lane::shared`], seeded with `conn`.
    pub(super) fn slot(conn: Option<Conn>) -> Arc<tokio::sync::Mutex<Option<Conn>>> {
        Arc::new(tokio::sync::Mutex::new(conn))
    }

    /// The connection to send on, opening one (number `slot`) when there is none or the
    /// server closed it (a closed kept-alive connection is replaced, not counted as a
    /// failure, as browsers and other load tools do).
    pub(super) async fn get(
        &mut self,
        ep: &Endpoint,
        slot: u32,
        opened: &mut Opened,
    ) -> Result<&mut Conn, ErrorKind> {
        if self.own.as_mut().is_some_and(Conn::is_closed) {
            self.own = None;
        }
        if self.own.is_none() {
            let conn = match &self.shared {
                None => {
                    let c = connect(ep, slot).await?;
                    opened.connects += 1;
                    opened.resumed = c.resumed == Some(true);
                    c
                }
                Some(shared) => {
                    // The first worker to find the slot empty opens the connection; the
                    // others wait for it and share it.
                    let mut guard = shared.lock().await;
                    if guard.as_mut().is_some_and(Conn::is_closed) {
                        *guard = None;
                    }
                    if guard.is_none() {
                        let c = connect(ep, slot).await?;
                        opened.connects += 1;
                        opened.resumed = c.resumed == Some(true);
                        *guard = Some(c);
                    }
                    guard
                        .as_ref()
                        .and_then(Conn::share)
                        .ok_or(ErrorKind::Connect)?
                }
            };
            self.own = Some(conn);
        }
        self.own.as_mut().ok_or(ErrorKind::Connect)
    }

    /// Forget the connection (it failed): the next [`Lane::get`] opens another (a shared
    /// HTTP/2 connection only when it is closed: one failed stream does not close it).
    pub(super) fn drop_conn(&mut self) {
        self.own = None;
    }

    /// The lane's own connection, for the next phase (HTTP/1.1 only: shared ones are handed
    /// on through their slot).
    pub(super) fn into_conn(self) -> Option<Conn> {
        if self.shared.is_some() {
            None
        } else {
            self.own
        }
    }
}
