//! Chain judgement (`cert::judge_chain`: summaries, trust with webpki, name) on arbitrary
//! chains, names and times. Input: `now` (8 bytes, big-endian), a flags byte (bit 0: pin the
//! leaf as an extra root; bit 1: the last certificate as an extra root), a host name (one
//! length byte), then certificates as `u16 length + DER`, at most 8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustls::pki_types::CertificateDer;
use secgate::checks::tls::cert::judge_chain;

fuzz_target!(|data: &[u8]| {
    let Some((now, rest)) = data.split_at_checked(8) else {
        return;
    };
    let now = i64::from_be_bytes(now.try_into().unwrap_or([0; 8]));
    let Some((&flags, rest)) = rest.split_first() else {
        return;
    };
    let Some((&n, rest)) = rest.split_first() else {
        return;
    };
    let Some((host, mut rest)) = rest.split_at_checked(usize::from(n)) else {
        return;
    };
    let host = String::from_utf8_lossy(host);
    let mut chain: Vec<CertificateDer<'static>> = Vec::new();
    while chain.len() < 8 {
        let Some((len, tail)) = rest.split_at_checked(2) else {
            break;
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let Some((der, tail)) = tail.split_at_checked(len) else {
            break;
        };
        chain.push(CertificateDer::from(der.to_vec()));
        rest = tail;
    }
    let mut roots = Vec::new();
    if flags & 1 != 0 {
        roots.extend(chain.first().cloned());
    }
    if flags & 2 != 0 {
        roots.extend(chain.last().cloned());
    }
    if let Ok(c) = judge_chain(chain, "fuzz".into(), &host, now, &roots) {
        let _ = (c.leaf().map(|l| l.key_label()), c.issued().count());
    }
});
