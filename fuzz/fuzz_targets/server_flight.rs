//! The record/ServerHello parser on arbitrary bytes, in every mode, plus the
//! ServerKeyExchange reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secgate::checks::tls::wire::{parse_answer, parse_key_exchange};

fuzz_target!(|data: &[u8]| {
    for full in [false, true] {
        for eof in [false, true] {
            let _ = parse_answer(data, full, eof);
        }
    }
    let _ = parse_key_exchange(data, true);
    let _ = parse_key_exchange(data, false);
});
