//! ROBOT, the Return Of Bleichenbacher's Oracle Threat (Böck, Somorovsky, Young, USENIX
//! Security 2018; CVE-2017-13099 and the vendor CVEs): a server that decrypts an RSA key
//! exchange and lets a client tell, by its answer, whether the PKCS#1 v1.5 padding was right
//! is a decryption oracle. With it an attacker decrypts recorded sessions or signs with the
//! server's key, without the key.
//!
//! **Probe** (only when the server accepts a `TLS_RSA_WITH_*` suite): one connection per
//! variant, each a ClientHello offering only the RSA key-exchange suites it accepts, then a
//! ClientKeyExchange whose premaster secret block is one of the paper's five ([`Variant`]),
//! encrypted with the public key of the certificate the server sent on that connection,
//! followed by a ChangeCipherSpec and a Finished of garbage. The answer ([`Reaction`]: the
//! records that came back, alerts by level and description, and how the connection ended:
//! closed, reset, or silence until the timeout) is recorded. Timing is never used. When the
//! answers differ, one variant of each minority answer is asked once more ([`to_repeat`]), at
//! most [`MAX_REPEATS`] times: at most 7 connections in all.
//!
//! **Judgement** ([`verdict`], sslyze's and robot-detect's definitions): identical answers are
//! no oracle; a repeat that disagrees with its first answer is noise (inconclusive). Otherwise
//! the server is an oracle: *weak* when the three malformed blocks (wrong first bytes, 0x00 in
//! a wrong position, no 0x00) all get the same answer, so that only a fully conformant block
//! (or only its version) is told apart, which costs an attacker far more queries; *strong*
//! when those three are told apart, so that the server reveals the `00 02` prefix check alone,
//! the oracle of Bleichenbacher's attack that the paper ran in hours.
//!
//! The RSA operation is `num-bigint`'s modular exponentiation on public values only (nothing
//! here is secret, so constant time does not matter); aws-lc-rs offers RSA encryption only with
//! its own padding.

use std::collections::BTreeMap;
use std::time::Duration;

use num_bigint::BigUint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::probe::Prober;
use super::wire::{self, Reply, Version, WireError};
use super::{Accepted, Rule, TlsObservation};
use crate::engine::{Emitter, net};
use crate::model::{Evidence, Observed, Reason, ReasonKind, Severity};

pub(super) const ROBOT: &str = "tls.vuln.robot";
const IDS: &[&str] = &[ROBOT];

pub(super) const RULE: Rule = Rule { ids: IDS, eval };

/// Most variants asked a second time.
pub const MAX_REPEATS: usize = 2;

/// Most records kept of one answer (more are counted as one "more records" entry).
pub const MAX_SEEN: usize = 8;

/// Smallest and largest RSA modulus the probe encrypts for, in bytes (512 to 8192 bits).
pub const MODULUS_BYTES: (usize, usize) = (64, 1024);

/// The five premaster secret blocks of the ROBOT paper (section 4 and robot-detect).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    /// `00 02 pad 00 version random[46]`: a correctly formatted block.
    Correct,
    /// `41 17 pad 00 version random[46]`: wrong first two bytes.
    WrongFirstBytes,
    /// `00 02 pad 11 random[46] 00 11`: the 0x00 separator in a wrong position.
    WrongZeroPosition,
    /// `00 02 pad 11 11 11 random[46]`: no 0x00 separator at all.
    NoZero,
    /// `00 02 pad 00 02 02 random[46]`: a wrong version number in the premaster secret.
    WrongVersion,
}

impl Variant {
    /// Every variant, in the order they are sent and reported.
    pub const ALL: [Variant; 5] = [
        Variant::Correct,
        Variant::WrongFirstBytes,
        Variant::WrongZeroPosition,
        Variant::NoZero,
        Variant::WrongVersion,
    ];

    /// The evidence key of the variant.
    pub fn label(self) -> &'static str {
        match self {
            Variant::Correct => "correct_padding",
            Variant::WrongFirstBytes => "wrong_first_bytes",
            Variant::WrongZeroPosition => "zero_in_wrong_position",
            Variant::NoZero => "no_zero_separator",
            Variant::WrongVersion => "wrong_version",
        }
    }

    /// The premaster secret block of this variant for a `k`-byte modulus: `fill` gives the
    /// padding and the 46 random bytes (it must hold at least `k` bytes, none of them zero),
    /// `version` is the ClientHello's version. None when `k` is out of [`MODULUS_BYTES`].
    pub fn block(self, k: usize, version: u16, fill: &[u8]) -> Option<Vec<u8>> {
        if !(MODULUS_BYTES.0..=MODULUS_BYTES.1).contains(&k) || fill.contains(&0) {
            return None;
        }
        // 2 + pad + 1 + 2 + 46 = k
        let pad_len = k.checked_sub(51)?;
        let pad = fill.get(..pad_len)?;
        let random = fill.get(pad_len..pad_len + 46)?;
        let [vh, vl] = version.to_be_bytes();
        let mut b = Vec::with_capacity(k);
        match self {
            Variant::Correct => {
                b.extend([0, 2]);
                b.extend_from_slice(pad);
                b.extend([0, vh, vl]);
                b.extend_from_slice(random);
            }
            Variant::WrongFirstBytes => {
                b.extend([0x41, 0x17]);
                b.extend_from_slice(pad);
                b.extend([0, vh, vl]);
                b.extend_from_slice(random);
            }
            Variant::WrongZeroPosition => {
                b.extend([0, 2]);
                b.extend_from_slice(pad);
                b.push(0x11);
                b.extend_from_slice(random);
                b.extend([0, 0x11]);
            }
            Variant::NoZero => {
                b.extend([0, 2]);
                b.extend_from_slice(pad);
                b.extend([0x11, 0x11, 0x11]);
                b.extend_from_slice(random);
            }
            Variant::WrongVersion => {
                b.extend([0, 2]);
                b.extend_from_slice(pad);
                b.extend([0, 0x02, 0x02]);
                b.extend_from_slice(random);
            }
        }
        (b.len() == k).then_some(b)
    }
}

/// An RSA public key: modulus and exponent, big-endian without leading zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaKey {
    /// The modulus.
    pub n: Vec<u8>,
    /// The public exponent.
    pub e: Vec<u8>,
}

impl RsaKey {
    /// The modulus length in bytes.
    pub fn len(&self) -> usize {
        self.n.len()
    }

    /// Whether the modulus is empty (never, for a key from [`rsa_key`]).
    pub fn is_empty(&self) -> bool {
        self.n.is_empty()
    }

    /// `block^e mod n`, left-padded to the modulus length. A block not below the modulus
    /// (possible only for [`Variant::WrongFirstBytes`] with an unusual modulus) has its first
    /// byte cleared, which keeps it malformed.
    pub fn encrypt(&self, block: &[u8]) -> Option<Vec<u8>> {
        let n = BigUint::from_bytes_be(&self.n);
        let e = BigUint::from_bytes_be(&self.e);
        let mut m = BigUint::from_bytes_be(block);
        if m >= n {
            let mut cleared = block.to_vec();
            *cleared.first_mut()? = 0;
            m = BigUint::from_bytes_be(&cleared);
        }
        let c = m.modpow(&e, &n).to_bytes_be();
        let mut out = vec![0u8; self.n.len().checked_sub(c.len())?];
        out.extend(c);
        Some(out)
    }
}

/// Why a certificate gives no key the probe can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// Its key is not RSA.
    NotRsa,
    /// It, or its RSA key, is unreadable or out of bounds (the detail says what).
    Bad(String),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::NotRsa => f.write_str("the certificate's key is not RSA"),
            KeyError::Bad(why) => f.write_str(why),
        }
    }
}

/// The RSA public key of a DER certificate.
pub fn rsa_key(der: &[u8]) -> Result<RsaKey, KeyError> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    use x509_parser::public_key::PublicKey;
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| KeyError::Bad(format!("unreadable certificate: {e}")))?;
    let key = cert
        .public_key()
        .parsed()
        .map_err(|e| KeyError::Bad(format!("unreadable public key: {e}")))?;
    let PublicKey::RSA(rsa) = key else {
        return Err(KeyError::NotRsa);
    };
    let strip = |b: &[u8]| -> Vec<u8> { b.iter().copied().skip_while(|x| *x == 0).collect() };
    let (n, e) = (strip(rsa.modulus), strip(rsa.exponent));
    if !(MODULUS_BYTES.0..=MODULUS_BYTES.1).contains(&n.len()) {
        return Err(KeyError::Bad(format!(
            "an RSA modulus of {} bytes is outside what the probe handles ({} to {})",
            n.len(),
            MODULUS_BYTES.0,
            MODULUS_BYTES.1
        )));
    }
    if e.is_empty() || e.len() > n.len() || n.last().is_some_and(|b| b % 2 == 0) {
        return Err(KeyError::Bad(
            "the certificate's RSA key is not a valid key".into(),
        ));
    }
    Ok(RsaKey { n, e })
}

/// The ClientKeyExchange, ChangeCipherSpec and garbage Finished records, at record version
/// `record_version` (what the ServerHello chose); `encrypted` has the modulus length.
pub fn key_exchange_flight(record_version: u16, encrypted: &[u8]) -> Option<Vec<u8>> {
    let [vh, vl] = record_version.to_be_bytes();
    let len = u16::try_from(encrypted.len()).ok()?;
    let body = u32::from(len) + 2;
    let mut msg = vec![16];
    msg.extend_from_slice(body.to_be_bytes().get(1..)?);
    msg.extend_from_slice(&len.to_be_bytes());
    msg.extend_from_slice(encrypted);
    let mut out = vec![22, vh, vl];
    out.extend_from_slice(&u16::try_from(msg.len()).ok()?.to_be_bytes());
    out.extend(msg);
    out.extend_from_slice(&[20, vh, vl, 0, 1, 1]);
    // A "Finished" record of 64 bytes that decrypt to nothing under any key: long enough for
    // every CBC and GCM suite (IV or explicit nonce, message, MAC or tag).
    out.extend_from_slice(&[22, vh, vl, 0, 64]);
    out.extend(std::iter::repeat_n(0x7a, 64));
    Some(out)
}

/// How a connection ended after the key exchange flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ending {
    /// The server closed it (FIN).
    Closed,
    /// The server reset it (RST).
    Reset,
    /// Nothing more came within the timeout.
    Silent,
}

/// One record of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seen {
    /// An alert.
    Alert {
        /// 1 warning, 2 fatal (any other value as sent).
        level: u8,
        /// The description.
        description: u8,
    },
    /// Any other record, by content type.
    Record(u8),
    /// More than [`MAX_SEEN`] records came (the rest are not told apart).
    More,
}

/// What the server did after one key exchange flight: the records it sent, in order, and how
/// the connection ended. Two reactions are the same answer when they are equal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reaction {
    /// The records, at most [`MAX_SEEN`] and a [`Seen::More`].
    pub records: Vec<Seen>,
    /// How the connection ended.
    pub end: Ending,
}

impl Reaction {
    /// Whether nothing at all came back before the timeout.
    pub fn silent(&self) -> bool {
        self.records.is_empty() && self.end == Ending::Silent
    }

    /// A short description for messages and evidence.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .records
            .iter()
            .map(|s| match s {
                Seen::Alert { level, description } => format!(
                    "{} alert {}",
                    match level {
                        1 => "warning",
                        2 => "fatal",
                        _ => "odd-level",
                    },
                    wire::alert_name(*description)
                ),
                Seen::Record(kind) => format!("a record of type {kind}"),
                Seen::More => "more records".to_string(),
            })
            .collect();
        parts.push(
            match self.end {
                Ending::Closed => "connection closed",
                Ending::Reset => "connection reset",
                Ending::Silent => "no more within the timeout",
            }
            .to_string(),
        );
        parts.join(", then ")
    }
}

/// Read what a server sent after the key exchange flight (`received`, everything up to the
/// connection's `end`): whole records only (a record cut by the end is
/// [`WireError::Truncated`]), at most [`wire::MAX_REPLIES`] bytes.
pub fn reaction(received: &[u8], end: Ending) -> Result<Reaction, WireError> {
    let (replies, used) = wire::parse_replies(received)?;
    if used < received.len() {
        return Err(WireError::Truncated);
    }
    let mut records: Vec<Seen> = replies
        .iter()
        .take(MAX_SEEN)
        .map(|r| match r {
            Reply::Alert { level, description } => Seen::Alert {
                level: *level,
                description: *description,
            },
            Reply::Heartbeat { .. } => Seen::Record(wire::HEARTBEAT_RECORD),
            Reply::Other { kind, .. } => Seen::Record(*kind),
        })
        .collect();
    if replies.len() > MAX_SEEN {
        records.push(Seen::More);
    }
    Ok(Reaction { records, end })
}

/// The variants to ask once more after the first round: when the answers differ, the first
/// variant of each answer other than the most common one (ties: the one the earliest variant
/// got). `Err` when that is more than [`MAX_REPEATS`]: answers that scattered cannot be
/// confirmed within the budget.
pub fn to_repeat(first: &[(Variant, Reaction)]) -> Result<Vec<Variant>, String> {
    let mut classes: Vec<(&Reaction, Vec<Variant>)> = Vec::new();
    for (v, r) in first {
        match classes.iter_mut().find(|(c, _)| *c == r) {
            Some((_, vs)) => vs.push(*v),
            None => classes.push((r, vec![*v])),
        }
    }
    if classes.len() < 2 {
        return Ok(Vec::new());
    }
    let biggest = classes
        .iter()
        .enumerate()
        .max_by_key(|(i, (_, vs))| (vs.len(), std::cmp::Reverse(*i)))
        .map_or(0, |(i, _)| i);
    let repeat: Vec<Variant> = classes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != biggest)
        .filter_map(|(_, (_, vs))| vs.first().copied())
        .collect();
    if repeat.len() > MAX_REPEATS {
        return Err(format!(
            "the five variants got {} different answers, more than the probe can confirm with {MAX_REPEATS} more connections",
            classes.len()
        ));
    }
    Ok(repeat)
}

/// What the answers show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every variant got the same answer.
    NoOracle,
    /// The answers differ, but the three malformed blocks got the same one.
    Weak,
    /// The malformed blocks are told apart.
    Strong,
    /// A variant asked twice got two different answers (the detail says which).
    Noisy(String),
    /// Nothing came back to any variant within the timeout.
    Silent,
}

/// Judge the answers of the first round and the repeats.
pub fn verdict(first: &[(Variant, Reaction)], repeats: &[(Variant, Reaction)]) -> Verdict {
    let answer = |v: Variant| first.iter().find(|(x, _)| *x == v).map(|(_, r)| r);
    for (v, again) in repeats {
        if let Some(before) = answer(*v).filter(|b| *b != again) {
            return Verdict::Noisy(format!(
                "{} got \"{}\" and then \"{}\"",
                v.label(),
                before.describe(),
                again.describe()
            ));
        }
    }
    let Some((_, one)) = first.first() else {
        return Verdict::Silent;
    };
    if first.iter().all(|(_, r)| r == one) {
        return if one.silent() {
            Verdict::Silent
        } else {
            Verdict::NoOracle
        };
    }
    let (a, b, c) = (
        answer(Variant::WrongFirstBytes),
        answer(Variant::WrongZeroPosition),
        answer(Variant::NoZero),
    );
    if a == b && b == c {
        Verdict::Weak
    } else {
        Verdict::Strong
    }
}

/// What the ROBOT probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Robot {
    /// No TLS 1.0–1.2 version accepts an RSA key-exchange suite.
    NoRsa,
    /// The server picks RSA key-exchange suites with a certificate whose key is not RSA (the
    /// detail says what it is): no RSA decryption can take place.
    KeyNotRsa(String),
    /// The variants were sent.
    Probed(Probed),
}

/// The answers of one ROBOT probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probed {
    /// The version spoken.
    pub version: Version,
    /// The RSA suites offered (those the server accepts with that version).
    pub suites: Vec<u16>,
    /// Each variant's answer, in [`Variant::ALL`] order.
    pub answers: Vec<(Variant, Reaction)>,
    /// The variants asked once more, and what they got.
    pub repeats: Vec<(Variant, Reaction)>,
    /// Set when the answers scattered too much to repeat (see [`to_repeat`]).
    pub scattered: Option<String>,
}

fn eval(obs: &TlsObservation, out: &mut Emitter) {
    let probed = match &obs.robot {
        None => {
            if let Some(r) = obs.legacy_unknown() {
                return out.inconclusive(ROBOT, &r);
            }
            return out.skipped(
                ROBOT,
                "no TLS 1.0–1.2 version is accepted, so there is no RSA key exchange",
            );
        }
        Some(Err(r)) => return out.inconclusive(ROBOT, r),
        Some(Ok(Robot::NoRsa)) => {
            if let Some(r) = obs.suites_unknown() {
                return out.inconclusive(ROBOT, &r);
            }
            return out.skipped(
                ROBOT,
                "the server accepts no RSA key-exchange suite (TLS_RSA_WITH_*)",
            );
        }
        Some(Ok(Robot::KeyNotRsa(why))) => {
            return out.skipped(
                ROBOT,
                format!("the server picks RSA key-exchange suites, but {why}: no RSA decryption takes place"),
            );
        }
        Some(Ok(Robot::Probed(p))) => p,
    };
    let mut evidence = Evidence::none()
        .text("version", probed.version.name())
        .with(
            "suites",
            Observed::texts(
                probed
                    .suites
                    .iter()
                    .map(|s| super::registry::suite_name(*s)),
            ),
        );
    for (v, r) in &probed.answers {
        evidence = evidence.text(v.label(), r.describe());
    }
    if !probed.repeats.is_empty() {
        evidence = evidence.with(
            "repeated",
            Observed::texts(
                probed
                    .repeats
                    .iter()
                    .map(|(v, r)| format!("{}: {}", v.label(), r.describe())),
            ),
        );
    }
    if let Some(why) = &probed.scattered {
        let reason = Reason::new(ReasonKind::Malformed, format!("noisy answers: {why}"));
        return out.inconclusive(ROBOT, &reason);
    }
    match verdict(&probed.answers, &probed.repeats) {
        Verdict::NoOracle => {
            let one = probed
                .answers
                .first()
                .map(|(_, r)| r.describe())
                .unwrap_or_default();
            out.pass(
                ROBOT,
                format!(
                    "no padding oracle: all five ClientKeyExchange variants got the same answer ({one})"
                ),
                evidence.text("oracle", "none"),
            );
        }
        Verdict::Strong => out.fail(
            ROBOT,
            format!(
                "strong Bleichenbacher oracle (ROBOT): the server answers malformed RSA key exchanges differently ({})",
                differing(probed)
            ),
            evidence.text("oracle", "strong"),
        ),
        Verdict::Weak => {
            out.fail(
                ROBOT,
                format!(
                    "weak Bleichenbacher oracle (ROBOT): the malformed RSA key exchanges get one answer, but a correctly formatted block or its version is told apart ({})",
                    differing(probed)
                ),
                evidence.text("oracle", "weak"),
            );
            // The catalogue's severity is the strong oracle's; a weak one needs far more
            // queries (see the rule's rationale).
            if let Some(o) = out.last(ROBOT) {
                o.severity = Severity::High;
            }
        }
        Verdict::Noisy(why) => out.inconclusive(
            ROBOT,
            &Reason::new(
                ReasonKind::Malformed,
                format!("noisy answers, asked twice: {why}"),
            ),
        ),
        Verdict::Silent => out.inconclusive(
            ROBOT,
            &Reason::new(
                ReasonKind::Timeout,
                "no ClientKeyExchange variant got any answer within the timeout",
            ),
        ),
    }
}

/// `label: answer` for each variant whose answer is not the first variant's.
fn differing(p: &Probed) -> String {
    let Some((_, base)) = p.answers.first() else {
        return String::new();
    };
    let mut parts = vec![format!("{}: {}", Variant::Correct.label(), base.describe())];
    parts.extend(
        p.answers
            .iter()
            .filter(|(_, r)| r != base)
            .map(|(v, r)| format!("{}: {}", v.label(), r.describe())),
    );
    parts.join("; ")
}

/// Whether `suite` uses RSA key exchange (TLS_RSA_WITH_*).
pub fn is_rsa_kex(suite: u16) -> bool {
    super::registry::suite(suite).is_some_and(|s| s.kex == "RSA")
}

/// The ROBOT probe: with the highest TLS 1.0–1.2 version that accepts RSA key-exchange
/// suites (from the enumeration in `suites`), the five variants, then the repeats. None when
/// no TLS ≤ 1.2 version is accepted.
pub(super) async fn probe(
    p: &Prober<'_>,
    suites: &BTreeMap<Version, Result<Accepted, Reason>>,
    groups: &[u16],
) -> Option<Result<Robot, Reason>> {
    let legacy: Vec<Version> = suites
        .keys()
        .copied()
        .filter(|v| *v <= Version::Tls12)
        .collect();
    if legacy.is_empty() {
        return None;
    }
    for v in legacy.into_iter().rev() {
        let rsa: Vec<u16> = match suites.get(&v) {
            Some(Ok(a)) => a
                .suites
                .iter()
                .copied()
                .filter(|s| is_rsa_kex(*s))
                .collect(),
            Some(Err(r)) => return Some(Err(r.clone())),
            None => continue,
        };
        if rsa.is_empty() {
            continue;
        }
        if v == Version::Ssl3 {
            return Some(Err(Reason::new(
                ReasonKind::Tls,
                "only SSL 3.0 accepts RSA key exchange, and the ROBOT probe speaks TLS 1.0 to 1.2",
            )));
        }
        return Some(run(p, v, &rsa, groups).await);
    }
    Some(Ok(Robot::NoRsa))
}

async fn run(
    p: &Prober<'_>,
    version: Version,
    suites: &[u16],
    groups: &[u16],
) -> Result<Robot, Reason> {
    // Padding and premaster bytes shared by every variant: random, never zero.
    let mut fill = vec![0u8; MODULUS_BYTES.1];
    aws_lc_rs::rand::fill(&mut fill)
        .map_err(|_| Reason::new(ReasonKind::Bug, "ROBOT probe: no randomness"))?;
    for b in &mut fill {
        if *b == 0 {
            *b = 0x5a;
        }
    }
    let first = futures::future::join_all(
        Variant::ALL
            .into_iter()
            .map(|v| one(p, version, suites, groups, v, &fill)),
    )
    .await;
    let mut answers = Vec::new();
    let mut not_rsa = Vec::new();
    for (v, r) in Variant::ALL.into_iter().zip(first) {
        match r? {
            Step::Answer(r) => answers.push((v, r)),
            Step::KeyNotRsa(why) => not_rsa.push(why),
        }
    }
    match (answers.is_empty(), not_rsa.first()) {
        (true, Some(why)) => return Ok(Robot::KeyNotRsa(why.clone())),
        (false, Some(why)) => {
            return Err(Reason::new(
                ReasonKind::Tls,
                format!(
                    "ROBOT probe to {}: the certificate sent with RSA key exchange is RSA on some connections only ({why} on {} of 5)",
                    p.host,
                    not_rsa.len()
                ),
            ));
        }
        _ => {}
    }
    let (repeats, scattered) = match to_repeat(&answers) {
        Ok(list) => {
            let again = futures::future::join_all(
                list.iter()
                    .map(|v| one(p, version, suites, groups, *v, &fill)),
            )
            .await;
            let mut repeats = Vec::new();
            for (v, r) in list.into_iter().zip(again) {
                match r? {
                    Step::Answer(r) => repeats.push((v, r)),
                    Step::KeyNotRsa(why) => {
                        return Err(Reason::new(
                            ReasonKind::Tls,
                            format!(
                                "ROBOT probe to {}: the certificate sent with RSA key exchange changed: {why}",
                                p.host
                            ),
                        ));
                    }
                }
            }
            (repeats, None)
        }
        Err(why) => (Vec::new(), Some(why)),
    };
    Ok(Robot::Probed(Probed {
        version,
        suites: suites.to_vec(),
        answers,
        repeats,
        scattered,
    }))
}

/// What one connection of the probe got.
enum Step {
    Answer(Reaction),
    /// The certificate sent with the RSA suite has no RSA key (what it has).
    KeyNotRsa(String),
}

/// One connection: a hello with the RSA suites, the variant's key exchange flight, and the
/// answer read until the server closes or resets the connection or the timeout passes.
async fn one(
    p: &Prober<'_>,
    version: Version,
    suites: &[u16],
    groups: &[u16],
    variant: Variant,
    fill: &[u8],
) -> Result<Step, Reason> {
    use super::probe::Exchange;
    use wire::Answer;
    let doing = format!("ROBOT probe ({}) to {}", variant.label(), p.host);
    let spec = p.spec(version, suites, groups);
    let kept = match p.hello_kept(&spec, true).await {
        Ok(k) => k,
        Err(Exchange::Failed(r)) => return Err(r),
        Err(Exchange::Closed(how)) => {
            return Err(Reason::new(
                ReasonKind::Reset,
                format!("{doing}: the server {how} after a hello with RSA suites it accepts"),
            ));
        }
        Err(Exchange::Answer(_)) => return Err(Reason::new(ReasonKind::Bug, doing)),
    };
    let flight = match &kept.answer {
        Answer::Hello(f) => f,
        Answer::Alert { description, .. } => {
            return Err(Reason::new(
                ReasonKind::Tls,
                format!(
                    "{doing}: alert {} to a hello with RSA suites it accepts otherwise",
                    wire::alert_name(*description)
                ),
            ));
        }
    };
    if !flight.complete
        || flight.hello.version != version.wire()
        || !suites.contains(&flight.hello.suite)
        || flight.server_key_exchange.is_some()
    {
        return Err(Reason::new(
            ReasonKind::Tls,
            format!("{doing}: the server did not answer with a {version} RSA key-exchange flight"),
        ));
    }
    let Some(leaf) = flight.certificates.first() else {
        return Err(Reason::new(
            ReasonKind::Malformed,
            format!("{doing}: the server sent no certificate"),
        ));
    };
    let key = match rsa_key(leaf) {
        Ok(k) => k,
        Err(KeyError::NotRsa) => {
            return Ok(Step::KeyNotRsa("its certificate's key is not RSA".into()));
        }
        Err(KeyError::Bad(e)) => return Err(Reason::new(ReasonKind::Tls, format!("{doing}: {e}"))),
    };
    let bytes = variant
        .block(key.len(), version.wire(), fill)
        .and_then(|b| key.encrypt(&b))
        .and_then(|c| key_exchange_flight(flight.hello.version, &c))
        .ok_or_else(|| Reason::new(ReasonKind::Bug, format!("{doing}: key exchange")))?;
    let (_permit, mut stream) = crate::engine::net::permit_first(kept.conn);
    let (received, end) = send_and_read(&mut stream, &bytes, p.timeout, &doing).await?;
    reaction(&received, end)
        .map(Step::Answer)
        .map_err(|e| super::probe::wire_reason(&e, &doing))
}

/// Write `bytes`, then read everything until the peer closes (FIN) or resets (RST) the
/// connection or nothing comes for the timeout (at most three timeouts in all), at most
/// [`wire::MAX_REPLIES`] bytes.
async fn send_and_read(
    stream: &mut tokio::net::TcpStream,
    bytes: &[u8],
    timeout: Duration,
    doing: &str,
) -> Result<(Vec<u8>, Ending), Reason> {
    use std::io::ErrorKind as K;
    let reset = |e: &std::io::Error| matches!(e.kind(), K::ConnectionReset | K::ConnectionAborted);
    match tokio::time::timeout(timeout, stream.write_all(bytes)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if reset(&e) || e.kind() == K::BrokenPipe => {
            return Ok((Vec::new(), Ending::Reset));
        }
        Ok(Err(e)) => return Err(net::io_reason(&e, doing)),
        Err(_) => {
            return Err(Reason::new(
                ReasonKind::Timeout,
                format!("{doing}: write timed out"),
            ));
        }
    }
    let deadline = Instant::now() + net::request_deadline(timeout);
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        let wait = timeout.min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, stream.read(&mut chunk)).await {
            Err(_) => return Ok((received, Ending::Silent)),
            Ok(Ok(0)) => return Ok((received, Ending::Closed)),
            Ok(Ok(n)) => {
                received.extend_from_slice(chunk.get(..n).unwrap_or_default());
                if received.len() > wire::MAX_REPLIES {
                    return Err(super::probe::wire_reason(
                        &WireError::FlightTooLarge(wire::MAX_REPLIES),
                        doing,
                    ));
                }
            }
            Ok(Err(e)) if reset(&e) => return Ok((received, Ending::Reset)),
            Ok(Err(e)) => return Err(net::io_reason(&e, doing)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::Status;

    fn alert(d: u8) -> Reaction {
        Reaction {
            records: vec![Seen::Alert {
                level: 2,
                description: d,
            }],
            end: Ending::Closed,
        }
    }

    fn answers(rs: [Reaction; 5]) -> Vec<(Variant, Reaction)> {
        Variant::ALL.into_iter().zip(rs).collect()
    }

    #[test]
    fn blocks_have_the_modulus_length_and_the_papers_shape() {
        let fill = vec![0xab; 256];
        for v in Variant::ALL {
            let b = v.block(256, 0x0303, &fill).unwrap();
            assert_eq!(b.len(), 256, "{v:?}");
        }
        let good = Variant::Correct.block(256, 0x0303, &fill).unwrap();
        assert_eq!(&good[..2], &[0, 2]);
        assert_eq!(&good[256 - 49..256 - 46], &[0, 3, 3]);
        let wrong = Variant::WrongZeroPosition
            .block(256, 0x0303, &fill)
            .unwrap();
        assert_eq!(wrong.iter().skip(2).position(|b| *b == 0), Some(256 - 4));
        let none = Variant::NoZero.block(256, 0x0303, &fill).unwrap();
        assert!(!none[2..].contains(&0));
        let ver = Variant::WrongVersion.block(256, 0x0303, &fill).unwrap();
        assert_eq!(&ver[256 - 49..256 - 46], &[0, 2, 2]);
        assert_eq!(
            &Variant::WrongFirstBytes.block(64, 0x0301, &fill).unwrap()[..2],
            &[0x41, 0x17]
        );
        assert!(Variant::Correct.block(63, 0x0303, &fill).is_none());
        assert!(Variant::Correct.block(256, 0x0303, &[0xab; 100]).is_none());
        assert!(Variant::Correct.block(256, 0x0303, &[0; 256]).is_none());
    }

    #[test]
    fn encryption_is_textbook_rsa() {
        // n = 61 * 53 = 3233 is too small for a block; check the arithmetic on a toy key and
        // the padding to the modulus length.
        let key = RsaKey {
            n: vec![0x0c, 0xa1],
            e: vec![17],
        };
        // 65^17 mod 3233 = 2790 (the textbook example).
        assert_eq!(key.encrypt(&[0, 65]).unwrap(), vec![0x0a, 0xe6]);
        // A block above the modulus has its first byte cleared.
        assert_eq!(key.encrypt(&[0xff, 65]), key.encrypt(&[0, 65]));
    }

    #[test]
    fn the_key_exchange_flight_is_three_records() {
        let f = key_exchange_flight(0x0303, &[9; 256]).unwrap();
        let (replies, used) = wire::parse_replies(&f).unwrap();
        assert_eq!(used, f.len());
        assert_eq!(
            replies,
            vec![
                Reply::Other { kind: 22, len: 262 },
                Reply::Other { kind: 20, len: 1 },
                Reply::Other { kind: 22, len: 64 },
            ]
        );
        assert_eq!(&f[5..11], &[16, 0, 1, 2, 1, 0]);
    }

    #[test]
    fn reactions_are_read_strictly() {
        let r = reaction(&[21, 3, 3, 0, 2, 2, 20], Ending::Closed).unwrap();
        assert_eq!(r, alert(20));
        assert_eq!(
            r.describe(),
            "fatal alert bad_record_mac, then connection closed"
        );
        assert_eq!(
            reaction(&[21, 3, 3, 0, 2, 2], Ending::Closed),
            Err(WireError::Truncated)
        );
        assert!(reaction(&[0xc1; 40], Ending::Reset).is_err());
        let silent = reaction(&[], Ending::Silent).unwrap();
        assert!(silent.silent());
        let many: Vec<u8> = std::iter::repeat_n([23u8, 3, 3, 0, 1, 0], 20)
            .flatten()
            .collect();
        let r = reaction(&many, Ending::Closed).unwrap();
        assert_eq!(r.records.len(), MAX_SEEN + 1);
        assert_eq!(r.records.last(), Some(&Seen::More));
    }

    #[test]
    fn repeats_are_one_variant_of_each_minority_answer() {
        let a = alert(20);
        let b = alert(51);
        let uniform = answers([a.clone(), a.clone(), a.clone(), a.clone(), a.clone()]);
        assert_eq!(to_repeat(&uniform), Ok(vec![]));
        let one = answers([b.clone(), a.clone(), a.clone(), a.clone(), a.clone()]);
        assert_eq!(to_repeat(&one), Ok(vec![Variant::Correct]));
        let two = answers([a.clone(), b.clone(), a.clone(), b.clone(), a.clone()]);
        assert_eq!(to_repeat(&two), Ok(vec![Variant::WrongFirstBytes]));
        let c = alert(40);
        let three = answers([a.clone(), b.clone(), c.clone(), a.clone(), a.clone()]);
        assert_eq!(
            to_repeat(&three),
            Ok(vec![Variant::WrongFirstBytes, Variant::WrongZeroPosition])
        );
        let d = alert(10);
        let four = answers([a.clone(), b, c, d, a]);
        assert!(to_repeat(&four).is_err());
    }

    #[test]
    fn verdicts_follow_the_papers_definitions() {
        let a = alert(20);
        let b = alert(51);
        let closed = Reaction {
            records: vec![],
            end: Ending::Closed,
        };
        let uniform = answers([a.clone(), a.clone(), a.clone(), a.clone(), a.clone()]);
        assert_eq!(verdict(&uniform, &[]), Verdict::NoOracle);
        // Bad prefix and no separator told apart from the rest: strong.
        let strong = answers([a.clone(), b.clone(), a.clone(), b.clone(), a.clone()]);
        assert_eq!(
            verdict(&strong, &[(Variant::WrongFirstBytes, b.clone())]),
            Verdict::Strong
        );
        // Only the wrong version differs: weak.
        let weak = answers([a.clone(), a.clone(), a.clone(), a.clone(), closed.clone()]);
        assert_eq!(
            verdict(&weak, &[(Variant::WrongVersion, closed.clone())]),
            Verdict::Weak
        );
        // Only the correct block differs: weak.
        let weak2 = answers([b.clone(), a.clone(), a.clone(), a.clone(), a.clone()]);
        assert_eq!(verdict(&weak2, &[]), Verdict::Weak);
        // The repeat disagrees with the first answer: noise.
        assert!(matches!(
            verdict(&weak, &[(Variant::WrongVersion, a.clone())]),
            Verdict::Noisy(_)
        ));
        let silent = Reaction {
            records: vec![],
            end: Ending::Silent,
        };
        let quiet = answers([
            silent.clone(),
            silent.clone(),
            silent.clone(),
            silent.clone(),
            silent,
        ]);
        assert_eq!(verdict(&quiet, &[]), Verdict::Silent);
    }

    fn probed(rs: [Reaction; 5], repeats: Vec<(Variant, Reaction)>) -> Probed {
        Probed {
            version: Version::Tls12,
            suites: vec![0x002F],
            answers: answers(rs),
            repeats,
            scattered: None,
        }
    }

    #[test]
    fn the_rule_fails_strong_critical_weak_high_and_skips_without_rsa() {
        let a = alert(20);
        let b = alert(51);
        let mut o = fixture::good();
        o.robot = Some(Ok(Robot::Probed(probed(
            [a.clone(), b.clone(), a.clone(), b.clone(), a.clone()],
            vec![(Variant::WrongFirstBytes, b.clone())],
        ))));
        let mut out = Emitter::new(super::super::FAMILY, "t");
        eval(&o, &mut out);
        let got = out.finish();
        assert_eq!(got[0].status, Status::Fail);
        assert_eq!(got[0].severity, Severity::Critical);
        assert!(got[0].message.contains("strong"), "{}", got[0].message);
        o.robot = Some(Ok(Robot::Probed(probed(
            [b.clone(), a.clone(), a.clone(), a.clone(), a.clone()],
            vec![(Variant::Correct, b.clone())],
        ))));
        let mut out = Emitter::new(super::super::FAMILY, "t");
        eval(&o, &mut out);
        let got = out.finish();
        assert_eq!(got[0].status, Status::Fail);
        assert_eq!(got[0].severity, Severity::High);
        o.robot = Some(Ok(Robot::Probed(probed(
            [a.clone(), a.clone(), a.clone(), a.clone(), a.clone()],
            vec![],
        ))));
        assert_eq!(fixture::status(&RULE, &o, ROBOT), Status::Pass);
        o.robot = Some(Ok(Robot::NoRsa));
        assert_eq!(fixture::status(&RULE, &o, ROBOT), Status::Skipped);
        o.robot = Some(Ok(Robot::KeyNotRsa(
            "its certificate's key is not RSA".into(),
        )));
        assert_eq!(fixture::status(&RULE, &o, ROBOT), Status::Skipped);
        // No RSA suite seen, but a version's suites are unknown: undecided.
        o.robot = Some(Ok(Robot::NoRsa));
        o.suites
            .insert(Version::Tls11, Err(Reason::new(ReasonKind::Timeout, "t")));
        assert_eq!(fixture::status(&RULE, &o, ROBOT), Status::Inconclusive);
        o.suites.remove(&Version::Tls11);
        o.robot = None;
        assert_eq!(fixture::status(&RULE, &o, ROBOT), Status::Skipped);
        let mut p = probed([a.clone(), a.clone(), a.clone(), a.clone(), a], vec![]);
        p.scattered = Some("four answers".into());
        o.robot = Some(Ok(Robot::Probed(p)));
        assert_eq!(fixture::status(&RULE, &o, ROBOT), Status::Inconclusive);
    }
}
