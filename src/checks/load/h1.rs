//! HTTP/1.1 keep-alive for the load generator: one request at a time on a connection, its
//! bytes written as prepared once per template ([`RequestSpec::wire`]), the answer's head
//! parsed by `httparse` and its body read and thrown away (up to [`BODY_CAP`]).
//!
//! Why not hyper's client connection, as the rest of secgate uses: a load generator sends
//! the same few requests tens of thousands of times a second and holds up to 50,000
//! connections. hyper keeps an 8 KB read and an 8 KB write buffer on every connection
//! (its smallest) and builds a request and a header map for every exchange; here a request
//! is one `write` of bytes prepared in advance, and an idle connection keeps no buffer at
//! all ([`H1::release`]), so 10,000 held connections cost their sockets and little else.
//!
//! What a server sends is checked as hyper would: a head over [`HEAD_CAP`], a malformed
//! status line or header, a bad `Content-Length` or chunk size is `malformed` (or
//! `too_large`); a close before the answer ends is `reset`. Framing follows RFC 9112
//! section 6: no body for HEAD, 1xx, 204 and 304; `Transfer-Encoding: chunked`; else
//! `Content-Length`; else the body runs to the close. Interim 1xx answers (100, 103) are
//! skipped; `101` was not asked for and is `malformed`. A connection is not reused after
//! `Connection: close`, an HTTP/1.0 answer without keep-alive, a body read to the close, or
//! bytes the server sent unasked.

use futures::FutureExt as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::generator::{BODY_CAP, ErrorKind, RequestSpec};

/// The largest response head accepted.
pub const HEAD_CAP: usize = 64 * 1024;
/// Headers parsed in one response head, at most.
const MAX_HEADERS: usize = 128;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 8192;

/// One HTTP/1.1 connection over `S` (a TCP or TLS stream; anything that reads and writes,
/// for tests and fuzzing).
pub struct H1<S> {
    io: S,
    /// Bytes read and not yet consumed (empty between exchanges).
    buf: Vec<u8>,
    /// The connection cannot carry another request.
    closed: bool,
}

/// How the body of an answer is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// The parts of a response head the exchange needs.
struct Head {
    status: u16,
    len: usize,
    framing: Framing,
    keep_alive: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> H1<S> {
    /// An HTTP/1.1 connection over `io` (nothing is sent yet).
    pub fn new(io: S) -> H1<S> {
        H1 {
            io,
            buf: Vec::new(),
            closed: false,
        }
    }

    /// Whether the connection can no longer be used: it failed or was closed by an answer,
    /// or (checked without waiting) the server closed it, or sent something unasked, while
    /// it was idle.
    pub fn is_closed(&mut self) -> bool {
        if self.closed {
            return true;
        }
        let mut probe = [0u8; 1];
        match self.io.read(&mut probe).now_or_never() {
            None => false,
            Some(_) => {
                // End of stream, an error, or unasked bytes.
                self.closed = true;
                true
            }
        }
    }

    /// Free the read buffer of an idle connection (the next exchange allocates one again).
    pub fn release(&mut self) {
        self.buf = Vec::new();
    }

    /// Send `spec` and read its answer: the status, or why the exchange failed. No timeout
    /// of its own: the caller's. After an error the connection is closed.
    pub async fn exchange(&mut self, spec: &RequestSpec) -> Result<u16, ErrorKind> {
        if self.closed {
            return Err(ErrorKind::Reset);
        }
        let r = self.exchange_open(spec).await;
        if r.is_err() {
            self.closed = true;
            self.buf = Vec::new();
        }
        r
    }

    async fn exchange_open(&mut self, spec: &RequestSpec) -> Result<u16, ErrorKind> {
        let wire = spec.wire().ok_or(ErrorKind::Malformed)?;
        self.buf.clear();
        self.io
            .write_all(wire)
            .await
            .map_err(|_| ErrorKind::Reset)?;
        self.io.flush().await.map_err(|_| ErrorKind::Reset)?;
        let head_only = spec.method == hyper::Method::HEAD;
        let head = loop {
            let head = self.read_head(head_only).await?;
            if (100..200).contains(&head.status) {
                // An interim answer (100 Continue, 103 Early Hints): the final one follows.
                self.buf.drain(..head.len);
                continue;
            }
            break head;
        };
        self.buf.drain(..head.len);
        match head.framing {
            Framing::Empty => {}
            Framing::Length(n) => self.skip_exact(n).await?,
            Framing::Chunked => self.skip_chunked().await?,
            Framing::UntilClose => self.skip_to_close().await?,
        }
        if !head.keep_alive
            || head.framing == Framing::UntilClose
            || !self.buf.is_empty()
            || spec.closes()
        {
            self.closed = true;
        }
        self.buf.clear();
        Ok(head.status)
    }

    /// Read more bytes into the buffer; `Ok(false)` at the end of the stream.
    async fn fill(&mut self) -> Result<bool, ErrorKind> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
            self.buf.reserve(READ_CHUNK);
        }
        match self.io.read_buf(&mut self.buf).await {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(_) => Err(ErrorKind::Reset),
        }
    }

    async fn read_head(&mut self, head_only: bool) -> Result<Head, ErrorKind> {
        loop {
            if !self.buf.is_empty()
                && let Some(head) = parse_head(&self.buf, head_only)?
            {
                return Ok(head);
            }
            if self.buf.len() >= HEAD_CAP {
                return Err(ErrorKind::TooLarge);
            }
            if !self.fill().await? {
                return Err(ErrorKind::Reset);
            }
        }
    }

    /// Consume `n` body bytes, from the buffer first.
    async fn skip_exact(&mut self, mut n: u64) -> Result<(), ErrorKind> {
        if n > BODY_CAP as u64 {
            return Err(ErrorKind::TooLarge);
        }
        loop {
            let have = u64::try_from(self.buf.len()).unwrap_or(u64::MAX).min(n);
            self.buf
                .drain(..usize::try_from(have).unwrap_or(usize::MAX));
            n -= have;
            if n == 0 {
                return Ok(());
            }
            if !self.fill().await? {
                return Err(ErrorKind::Reset);
            }
        }
    }

    /// Consume a chunked body and its trailers.
    async fn skip_chunked(&mut self) -> Result<(), ErrorKind> {
        let mut total: u64 = 0;
        loop {
            // The chunk-size line (httparse accepts one without digits: hyper, RFC 9112
            // section 7.1 and secgate do not).
            let size = loop {
                if self.buf.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                    return Err(ErrorKind::Malformed);
                }
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.buf.drain(..used);
                        break size;
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.buf.len() >= HEAD_CAP {
                            return Err(ErrorKind::Malformed);
                        }
                        if !self.fill().await? {
                            return Err(ErrorKind::Reset);
                        }
                    }
                    Err(_) => return Err(ErrorKind::Malformed),
                }
            };
            if size == 0 {
                return self.skip_trailers().await;
            }
            total = total.saturating_add(size);
            if total > BODY_CAP as u64 {
                return Err(ErrorKind::TooLarge);
            }
            self.skip_exact(size).await?;
            // The CRLF after the chunk's data.
            while self.buf.len() < 2 {
                if !self.fill().await? {
                    return Err(ErrorKind::Reset);
                }
            }
            if self.buf.get(..2) != Some(b"\r\n".as_slice()) {
                return Err(ErrorKind::Malformed);
            }
            self.buf.drain(..2);
        }
    }

    /// Consume the trailer section after the last chunk, up to its empty line.
    async fn skip_trailers(&mut self) -> Result<(), ErrorKind> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                self.buf.drain(..end + 2);
                if end == 0 {
                    return Ok(());
                }
                continue;
            }
            if self.buf.len() >= HEAD_CAP {
                return Err(ErrorKind::TooLarge);
            }
            if !self.fill().await? {
                return Err(ErrorKind::Reset);
            }
        }
    }

    /// Consume a body that runs to the end of the stream.
    async fn skip_to_close(&mut self) -> Result<(), ErrorKind> {
        let mut total = self.buf.len();
        self.buf.clear();
        loop {
            if total > BODY_CAP {
                return Err(ErrorKind::TooLarge);
            }
            if !self.fill().await? {
                return Ok(());
            }
            total += self.buf.len();
            self.buf.clear();
        }
    }
}

/// Parse a response head at the start of `buf`: `None` while it is incomplete.
fn parse_head(buf: &[u8], head_only: bool) -> Result<Option<Head>, ErrorKind> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len > HEAD_CAP => return Err(ErrorKind::TooLarge),
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ErrorKind::TooLarge),
        Err(_) => return Err(ErrorKind::Malformed),
    };
    let status = resp.code.ok_or(ErrorKind::Malformed)?;
    if status == 101 {
        // Switching protocols: nothing asked for an upgrade.
        return Err(ErrorKind::Malformed);
    }
    let http10 = resp.version == Some(0);
    let mut keep_alive = !http10;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut length: Option<u64> = None;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    keep_alive = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            // Chunked only when it is the last coding (RFC 9112 section 6.3).
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(ErrorKind::Malformed)?;
            if length.is_some_and(|m| m != n) {
                return Err(ErrorKind::Malformed);
            }
            length = Some(n);
        }
    }
    let framing = if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if transfer_encoding {
        // A transfer coding other than chunked last runs to the close; with a length
        // beside it the framing is ambiguous (request smuggling's shape), and HTTP/1.0 has
        // no transfer codings (RFC 9112 section 6.1): refused.
        if length.is_some() || http10 {
            return Err(ErrorKind::Malformed);
        }
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    Ok(Some(Head {
        status,
        len,
        framing,
        keep_alive,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, ErrorKind> {
        parse_head(text.as_bytes(), false)
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.framing, h.keep_alive),
            (200, Framing::Length(3), true)
        );
        assert_eq!(h.len, 38);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::UntilClose);
        let h = head("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Empty);
        let h = head("HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Empty, true));
        let h =
            head("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\n")
                .unwrap()
                .unwrap();
        assert!(!h.keep_alive);
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Empty);
        assert!(head("HTTP/1.1 200 OK\r\nContent-Le").unwrap().is_none());
    }

    #[test]
    fn hostile_heads_are_refused() {
        for text in [
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "SSH-2.0-OpenSSH_9.2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(head(text).is_err(), "{text:?}");
        }
        let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            head(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")).err(),
            Some(ErrorKind::TooLarge)
        );
    }
}
