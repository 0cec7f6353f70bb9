//! The Ticketbleed probe's parsers (`checks::tls::ticket_wire`) on arbitrary bytes: the
//! plaintext handshake stream reader, fed the input whole and in two pieces cut where the
//! input's first byte says, must agree; it never keeps more than `MAX_MESSAGES` messages; the
//! ServerHello and NewSessionTicket parsers never panic and never return more bytes than given;
//! and `with_ticket` on the input as a hello never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secgate::checks::tls::ticket_wire::{
    MAX_MESSAGES, PlainStream, parse_new_session_ticket, parse_server_hello, with_ticket,
};

fuzz_target!(|input: &[u8]| {
    // The first byte says where to cut; the rest is what the server sent.
    let Some((first, data)) = input.split_first() else {
        return;
    };
    let mut whole = PlainStream::new();
    let a = whole.advance(data);
    let cut = usize::from(*first) * data.len() / 256;
    let mut split = PlainStream::new();
    let b = split.advance(&data[..cut]).and_then(|()| split.advance(data));
    assert_eq!(a.is_ok(), b.is_ok(), "cut at {cut}");
    if a.is_ok() {
        assert_eq!(whole.messages, split.messages);
        assert_eq!(whole.end, split.end);
    }
    assert!(whole.messages.len() <= MAX_MESSAGES);
    for (_, body) in &whole.messages {
        let _ = parse_server_hello(body);
        let _ = parse_new_session_ticket(body);
    }
    if let Ok(h) = parse_server_hello(data) {
        assert!(h.session_id.len() <= 32);
    }
    if let Ok(t) = parse_new_session_ticket(data) {
        assert!(t.len() + 6 == data.len());
    }
    let sid = data.get(..1).unwrap_or_default();
    let _ = with_ticket(data, sid, data.get(1..).unwrap_or_default());
});
