//! The record/ServerHello parser on arbitrary bytes, in every mode, plus the
//! ServerKeyExchange reader. The incremental parser, fed the same bytes in two pieces cut
//! anywhere, must agree with the one-shot parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secgate::checks::tls::wire::{
    AnswerParser, MAX_FLIGHT, Progress, SkeLayout, parse_answer, parse_key_exchange,
};

fuzz_target!(|data: &[u8]| {
    for full in [false, true] {
        for eof in [false, true] {
            let whole = parse_answer(data, full, eof);
            if data.len() > MAX_FLIGHT {
                continue;
            }
            // Cut at a point the input chooses (its first two bytes).
            let cut = data
                .get(..2)
                .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                % (data.len() + 1);
            let mut p = AnswerParser::new(full);
            let first = p.advance(&data[..cut], false);
            let got = match first {
                Ok(Progress::NeedMore) => p.advance(data, eof),
                done => done,
            };
            assert_eq!(got, whole, "cut at {cut}");
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
