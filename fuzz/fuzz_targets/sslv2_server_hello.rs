//! The SSLv2 answer parser (`checks::tls::sslv2_wire::parse_answer`) on arbitrary bytes: it
//! never panics; a complete answer stays the same with more bytes after it or at EOF; every
//! prefix of an input that parses is either still waiting or the same verdict, never a
//! different answer; and a SERVER-HELLO keeps at most `MAX_CIPHERS` ciphers and a 16 to 32
//! byte connection id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secgate::checks::tls::sslv2_wire::{
    MAX_CIPHERS, Sslv2Answer, Sslv2Progress, parse_answer,
};

fuzz_target!(|data: &[u8]| {
    let open = parse_answer(data, false);
    let closed = parse_answer(data, true);
    match &open {
        Ok(Sslv2Progress::Done(answer)) => {
            assert_eq!(&closed, &open);
            if let Sslv2Answer::Hello(h) = answer {
                assert!(h.ciphers.len() <= MAX_CIPHERS);
                assert!((16..=32).contains(&h.connection_id_len));
                assert!(h.certificate.len() <= data.len());
            }
        }
        Ok(Sslv2Progress::NeedMore) => assert!(closed.is_err()),
        Err(_) => {}
    }
    if let Ok(Sslv2Progress::Done(_)) = &open {
        // Up to 64 cuts, spread over the input (every one on short inputs).
        for cut in (0..data.len()).step_by((data.len() / 64).max(1)) {
            match parse_answer(&data[..cut], false) {
                Ok(Sslv2Progress::NeedMore) => {}
                Ok(Sslv2Progress::Done(a)) => assert_eq!(Ok(Sslv2Progress::Done(a)), open),
                Err(_) => {}
            }
        }
    }
});
