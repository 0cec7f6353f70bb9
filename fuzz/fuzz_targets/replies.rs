//! The reader of what a server sends after its flight (`checks::tls::wire::parse_replies`), on
//! arbitrary bytes: it never panics, never claims more bytes than it was given, and reading the
//! complete records again gives the same records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secgate::checks::tls::wire::parse_replies;

fuzz_target!(|data: &[u8]| {
    if let Ok((replies, used)) = parse_replies(data) {
        assert!(used <= data.len());
        let again = parse_replies(&data[..used]);
        assert_eq!(again, Ok((replies, used)));
    }
});
