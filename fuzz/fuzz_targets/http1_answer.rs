//! The load generator's HTTP/1.1 exchange (`H1::exchange`) on an arbitrary server byte
//! stream: up to three requests on one connection, the answers read from the input in
//! pieces of varying size. Input: a flags byte (bit 0: the requests are HEAD; bits 1-7: the
//! read size, 1 to 128 bytes), then what the server sends. Every exchange must end (the
//! stream never waits: when the input is spent, it reads as closed) without a panic.
#![no_main]

use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use libfuzzer_sys::fuzz_target;
use secgate::checks::load::generator::RequestSpec;
use secgate::checks::load::h1::H1;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The server's bytes, handed out `step` at a time; writes are accepted and dropped.
struct Script {
    data: Vec<u8>,
    at: usize,
    step: usize,
}

impl AsyncRead for Script {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let end = (self.at + self.step)
            .min(self.data.len())
            .min(self.at + buf.remaining());
        let piece = &self.data[self.at..end];
        buf.put_slice(piece);
        self.at = end;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Script {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let method = if flags & 1 == 1 {
        hyper::Method::HEAD
    } else {
        hyper::Method::GET
    };
    let spec = RequestSpec::new(
        method,
        "/".into(),
        "fuzz".into(),
        Vec::new(),
        Default::default(),
    );
    let script = Script {
        data: rest.to_vec(),
        at: 0,
        step: usize::from(flags >> 1) + 1,
    };
    let mut conn = H1::new(script);
    runtime().block_on(async {
        for _ in 0..3 {
            if conn.exchange(&spec).await.is_err() {
                break;
            }
        }
    });
    let _ = conn.is_closed();
});
