//! The record/ServerHello parser on arbitrary bytes, in every mode, plus the
//! ServerKeyExchange reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secgate::checks::tls::wire::{SkeLayout, parse_answer, parse_key_exchange};

fuzz_target!(|data: &[u8]| {
    for full in [false, true] {
        for eof in [false, true] {
            let _ = parse_answer(data, full, eof);
        }
    }
    for layout in [
        SkeLayout::Dh,
        SkeLayout::Ecdh,
        SkeLayout::DhPsk,
        SkeLayout::EcdhPsk,
    ] {
        let _ = parse_key_exchange(data, layout);
    }
});
