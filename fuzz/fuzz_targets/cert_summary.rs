//! The certificate summariser on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secgate::checks::tls::cert::summarise;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = summarise(data) {
        let _ = (s.key_label(), s.weak_key(), s.chain_line());
    }
});
