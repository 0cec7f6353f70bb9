//! The OCSP reader (`checks::tls::ocsp::parse`) and the judgement of a stapled response
//! (`ocsp::judge_staple`: CertID match, responder, delegated responder, signature, times) on
//! arbitrary input. Input: a mode byte; mode even: the rest is a response, read and judged
//! against no chain; mode odd: `now` (8 bytes, big-endian), the response (`u16 length` +
//! DER), then certificates as `u16 length + DER` (leaf first, at most 4), and the response
//! is judged for that chain (bit 1 of the mode: the last certificate is also a `--ca-file`
//! root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustls::pki_types::CertificateDer;
use secgate::checks::tls::ocsp::{judge_staple, parse};

fn take(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = data.split_at_checked(2)?;
    rest.split_at_checked(usize::from(u16::from_be_bytes([len[0], len[1]])))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(r) = parse(rest) {
            assert!(r.responses.len() <= secgate::checks::tls::ocsp::MAX_SINGLE);
            assert!(r.tbs.len() <= rest.len());
        }
        let _ = judge_staple(rest, &[], &[], 0);
        return;
    }
    let Some((now, rest)) = rest.split_at_checked(8) else {
        return;
    };
    let now = i64::from_be_bytes(now.try_into().unwrap_or([0; 8]));
    let Some((staple, mut rest)) = take(rest) else {
        return;
    };
    let mut chain: Vec<CertificateDer<'static>> = Vec::new();
    while chain.len() < 4 {
        let Some((der, tail)) = take(rest) else {
            break;
        };
        chain.push(CertificateDer::from(der.to_vec()));
        rest = tail;
    }
    let roots: Vec<CertificateDer<'static>> = if mode & 2 != 0 {
        chain.last().cloned().into_iter().collect()
    } else {
        Vec::new()
    };
    let _ = judge_staple(staple, &chain, &roots, now);
});
