//! The reader of what a server answers to the ROBOT probe's key exchange flight
//! (`checks::tls::robot::reaction`), on arbitrary bytes and connection endings: it never
//! panics, keeps at most `MAX_SEEN` records and a "more" mark, and reads an accepted answer the
//! same way again. Five answers cut from the input go through the judgement (`to_repeat`,
//! `verdict`): never more than `MAX_REPEATS` repeats, and repeats that get the same answers
//! again are never judged noisy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secgate::checks::tls::robot::{
    Ending, MAX_REPEATS, MAX_SEEN, Variant, Verdict, reaction, to_repeat, verdict,
};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let end = match first % 3 {
        0 => Ending::Closed,
        1 => Ending::Reset,
        _ => Ending::Silent,
    };
    if let Ok(r) = reaction(rest, end) {
        assert!(r.records.len() <= MAX_SEEN + 1);
        assert_eq!(reaction(rest, end), Ok(r.clone()));
        let _ = r.describe();
    }
    let mut answers = Vec::new();
    for (v, chunk) in Variant::ALL.into_iter().zip(rest.chunks(rest.len().div_ceil(5).max(1))) {
        if let Ok(r) = reaction(chunk, end) {
            answers.push((v, r));
        }
    }
    if answers.len() == 5 {
        if let Ok(list) = to_repeat(&answers) {
            assert!(list.len() <= MAX_REPEATS);
            let repeats: Vec<_> = list
                .iter()
                .filter_map(|v| answers.iter().find(|(x, _)| x == v).cloned())
                .collect();
            assert!(!matches!(verdict(&answers, &repeats), Verdict::Noisy(_)));
        }
    }
});
