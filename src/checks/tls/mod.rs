//! The TLS family (`--checks tls`): certificate and chain, protocol versions, cipher suites,
//! key exchange, compression and renegotiation, downgrade protection and named vulnerabilities
//! (Heartbleed, CCS injection, SSLv2 and DROWN, Ticketbleed, ROBOT), OCSP stapling, revocation
//! and Certificate Transparency, judged from the outside like testssl.sh and sslyze do.
//!
//! **Probe** ([`probe`], all network I/O): hand-built ClientHello messages ([`wire`]) for SSL
//! 3.0 to TLS 1.3, parsed by a strict, bounded parser; cipher-suite enumeration over the full
//! IANA registry ([`registry`], `checks/lists/ciphers.toml`) by offer-pick-remove; and one
//! rustls handshake whose verifier captures the certificate chain, judged with webpki
//! ([`cert`]). One connection each asks for a fallback with TLS_FALLBACK_SCSV, sends an
//! overlong heartbeat, an early ChangeCipherSpec, and a client-initiated renegotiation after a
//! TLS 1.2 handshake finished by [`tls12`]. The stapled OCSP response and the SCTs come with
//! handshakes already made ([`status`]): the rustls handshake and the TLS ≤ 1.2 survey hellos
//! ask for them. Every connection is under the per-host limit and the timeout.
//!
//! **Rules** (pure, one file per topic): they read the [`TlsObservation`] and emit one outcome
//! per rule id. A chain problem is reported once, by its real cause: the trust verdict is taken
//! at a time inside the leaf's validity, so an expired leaf is `expired` and not also
//! `untrusted`; a trusted chain that only fails for a SHA-1 signature is `weak_signature`.
//! A server may present several certificates (an ECDSA and an RSA one, chosen by the suite):
//! every distinct leaf seen is judged, and the certificate rules merge the verdicts (the worst
//! wins, the evidence says which certificate, like testssl.sh's "Server Certificate #1/#2").
//! Nothing passes on a partial view: a version whose answer is unknown makes the suite,
//! key-exchange, compression and renegotiation rules inconclusive unless a failure is certain.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use crate::engine::Emitter;
use crate::engine::{Cx, Family};
use crate::model::{Evidence, Observed, Outcome, Reason, ReasonKind, Status};
use crate::options::{FamilyOptions, OptionsSpec, Spec};
use crate::plan::Settings;
use crate::target::{Target, TargetKind};

pub mod cert;
pub mod ocsp;
pub mod options;
pub mod probe;
pub mod registry;
pub mod sslv2_wire;
pub mod ticket_wire;
pub mod wire;

mod ccs;
mod ciphers;
mod client_renegotiation;
mod compression;
mod ct;
pub mod drown;
mod fallback;
mod heartbleed;
mod kex;
mod lifetime;
mod name;
mod profile;
mod protocols;
mod renegotiation;
pub mod robot;
pub mod sslv2;
mod stapling;
pub mod status;
mod strength;
pub mod ticketbleed;
pub mod tls12;
mod trust;
mod validity;

use cert::{CertSummary, NameMatch, Trust};
use wire::Version;

/// The TLS family.
#[derive(Debug)]
pub struct Tls;

/// Family name.
pub const FAMILY: &str = "tls";

/// Every rule id of the family, in catalogue order.
pub const RULE_IDS: &[&str] = &[
    validity::EXPIRED,
    validity::NOT_YET_VALID,
    name::HOSTNAME_MISMATCH,
    trust::UNTRUSTED,
    trust::INCOMPLETE_CHAIN,
    validity::EXPIRING_SOON,
    strength::WEAK_KEY,
    strength::WEAK_SIGNATURE,
    name::NO_SAN,
    sslv2::SSLV2,
    protocols::SSLV3,
    protocols::TLS10,
    protocols::TLS11,
    protocols::NO_TLS13,
    protocols::NO_MODERN,
    ciphers::WEAK,
    ciphers::NO_FORWARD_SECRECY,
    ciphers::CBC,
    kex::WEAK_DH,
    compression::COMPRESSION,
    renegotiation::INSECURE,
    fallback::MISSING,
    heartbleed::HEARTBLEED,
    ccs::CCS_INJECTION,
    drown::DROWN,
    ticketbleed::TICKETBLEED,
    client_renegotiation::CLIENT_INITIATED,
    robot::ROBOT,
    lifetime::LIFETIME,
    stapling::REVOKED,
    stapling::MUST_STAPLE_MISSING,
    stapling::STAPLED_INVALID,
    stapling::NO_STAPLING,
    ct::MISSING,
    profile::PROTOCOLS,
    profile::SUITES,
    profile::SERVER_ORDER,
    profile::GROUPS,
    profile::KEY_TYPE,
    profile::CERT_SIGNATURE,
    profile::CERT_LIFETIME,
];

/// A rule of this family (see [`crate::checks::Rule`]).
pub type Rule = crate::engine::Rule<TlsObservation>;

/// The rules, in evaluation order.
pub static RULES: &[Rule] = &[
    validity::RULE,
    name::RULE,
    trust::RULE,
    strength::RULE,
    protocols::RULE,
    ciphers::RULE,
    kex::RULE,
    compression::RULE,
    renegotiation::RULE,
    fallback::RULE,
    heartbleed::RULE,
    ccs::RULE,
    sslv2::RULE,
    drown::RULE,
    ticketbleed::RULE,
    client_renegotiation::RULE,
    robot::RULE,
    lifetime::RULE,
    stapling::RULE,
    ct::RULE,
    profile::RULE,
    profile::CERT_RULE,
];

/// The default port of a host target.
pub const DEFAULT_PORT: u16 = 443;

/// The port the family probes on `target`: an https:// URL's port, a host's port (443 when
/// none is given); none for http:// URLs, `host:80` and address ranges.
/// Ports that speak TLS from the first byte (HTTPS, SMTPS, LDAPS, DNS over TLS, FTPS, IMAPS,
/// POP3S, SIP-TLS, Kubernetes API, and the usual alternative HTTPS ports).
pub const WELL_KNOWN_TLS_PORTS: &[u16] = &[
    443, 465, 636, 853, 989, 990, 992, 993, 995, 5061, 6443, 8443, 9443,
];

pub fn tls_port(target: &Target) -> Option<u16> {
    match &target.kind {
        TargetKind::Url(url) if url.scheme() == "https" => url.port_or_known_default(),
        TargetKind::Url(_) | TargetKind::Cidr { .. } => None,
        TargetKind::Host { port: Some(80), .. } => None,
        TargetKind::Host { port, .. } => Some(port.unwrap_or(DEFAULT_PORT)),
    }
}

static OPTIONS: Spec<options::TlsOptions> = Spec::new();

impl FamilyOptions for Tls {
    fn family(&self) -> &'static str {
        FAMILY
    }

    fn options(&self) -> &'static dyn OptionsSpec {
        &OPTIONS
    }
}

impl Family for Tls {
    fn summary(&self) -> &'static str {
        "certificate and chain, protocol versions, cipher suites, key exchange, compression, renegotiation, downgrade protection, Heartbleed, CCS injection, SSLv2 and DROWN, Ticketbleed, ROBOT, OCSP stapling and revocation, Certificate Transparency"
    }

    fn rule_ids(&self) -> &'static [&'static str] {
        RULE_IDS
    }

    /// By default: https:// URLs, bare hosts (443) and hosts given with a well-known TLS port.
    /// A host with another port (`db.example.com:5432`) is probed only when `--checks tls`
    /// asks for it, since most such ports do not speak TLS.
    fn applies_to(&self, target: &Target) -> bool {
        match &target.kind {
            TargetKind::Host { port: Some(p), .. } => WELL_KNOWN_TLS_PORTS.contains(p),
            _ => tls_port(target).is_some(),
        }
    }

    fn can_run(&self, target: &Target, _settings: &Settings) -> bool {
        tls_port(target).is_some()
    }

    /// DROWN is decided across the scan's endpoints ([`drown::join`]). In a shard, the
    /// endpoints that other shards audit with this family or discover with a port sweep are
    /// unseen, so no DROWN result of the shard passes.
    fn join(&self, outcomes: &mut [(usize, Outcome)], elsewhere: &[(Target, Vec<&'static str>)]) {
        let unseen = elsewhere
            .iter()
            .filter(|(_, fams)| fams.iter().any(|f| *f == FAMILY || *f == "ports"))
            .count();
        let partial = (unseen > 0).then(|| {
            format!(
                "this is one shard of a scan: {unseen} target{} audited by other shards may serve it over SSLv2",
                if unseen == 1 { "" } else { "s" }
            )
        });
        let mut mine: Vec<&mut Outcome> = outcomes
            .iter_mut()
            .map(|(_, o)| o)
            .filter(|o| o.rule_id == drown::DROWN)
            .collect();
        drown::join(&mut mine, partial.as_deref());
    }

    fn run<'a>(&'a self, cx: &'a Cx<'a>) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let target = cx.target();
            let Some(port) = tls_port(&target.target) else {
                let mut out = Emitter::new(FAMILY, target.target.id.clone());
                for id in RULE_IDS {
                    out.skipped(id, "this target has no TLS port (http:// URL or port 80)");
                }
                return out.finish();
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let obs = probe::observe(cx, port, now).await;
            // A bare host (no scheme, no port) is probed on 443 on the chance that it serves
            // TLS; when no connection was even accepted, it has no TLS service to judge, which
            // is not a reason to leave the gate undecided (an explicit port or URL would have
            // made the target unreachable instead).
            let bare_host = matches!(target.target.kind, TargetKind::Host { port: None, .. });
            if let (true, 0, Some(reason)) = (bare_host, obs.connected, &obs.protocols_error) {
                let mut out = Emitter::new(FAMILY, target.target.id.clone());
                let why = format!("no TLS service on port {port}: {}", reason.detail);
                for id in RULE_IDS {
                    out.skipped(id, why.clone());
                }
                return out.finish();
            }
            evaluate(&obs, &target.target.id)
        })
    }
}

/// Run every rule on an observation.
pub fn evaluate(obs: &TlsObservation, target_id: &str) -> Vec<Outcome> {
    let mut out = Emitter::new(FAMILY, target_id);
    crate::engine::evaluate_rules(RULES, obs, &mut out);
    out.finish()
}

/// The certificate chain as presented, summarised and judged.
#[derive(Clone, Debug)]
pub struct CertObservation {
    /// Where the chain came from (`rustls handshake`, `TLS 1.0 handshake`).
    pub source: String,
    /// The presented chain, leaf first.
    pub chain: Vec<CertSummary>,
    /// The trust verdict.
    pub trust: Trust,
    /// The name verdict.
    pub name: NameMatch,
    /// OCSP stapling and Certificate Transparency facts ([`status`]).
    pub status: status::StatusFacts,
}

impl CertObservation {
    /// The leaf (a chain is never empty).
    pub fn leaf(&self) -> Option<&CertSummary> {
        self.chain.first()
    }

    /// The leaf and the intermediates: every presented certificate but self-issued roots.
    pub fn issued(&self) -> impl Iterator<Item = (usize, &CertSummary)> {
        self.chain
            .iter()
            .enumerate()
            .filter(|(i, c)| *i == 0 || !c.self_issued)
    }
}

/// Whether a protocol version is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolState {
    /// The server answered a ClientHello for it with a ServerHello of that version.
    Supported,
    /// Refused: an alert, another version, or the connection closed (the detail says which).
    Refused(String),
    /// Could not be decided.
    Unknown(Reason),
}

/// The suites one version accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Accepted suites: in the server's order when it enforces one, else by code.
    pub suites: Vec<u16>,
    /// Whether the server enforces its own order (none with fewer than two suites).
    pub server_order: Option<bool>,
}

/// What a hello one version below the highest accepted, with TLS_FALLBACK_SCSV, got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    /// The version of the hello.
    pub lower: Version,
    /// The highest version the server accepts.
    pub higher: Version,
    /// What it did.
    pub answer: FallbackAnswer,
}

/// See [`Fallback`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FallbackAnswer {
    /// Refused (the detail says how: `alert inappropriate_fallback` is what RFC 7507 asks).
    Refused(String),
    /// Accepted the lower version, but its ServerHello carries the TLS 1.3 downgrade
    /// sentinel (RFC 8446 §4.1.3), which TLS 1.3 clients check.
    Sentinel,
    /// Accepted the lower version: a forced fallback succeeds.
    Accepted,
}

/// What an overlong heartbeat request (RFC 6520) got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    /// The server did not take up the heartbeat extension.
    NotSupported,
    /// It did, and answered the overlong request with no heartbeat (the detail says what).
    Ignored(String),
    /// It answered with a heartbeat carrying bytes it was never sent (only their count is
    /// kept: they may be its memory).
    Leaked {
        /// The payload length the request claimed.
        claimed: u16,
        /// Bytes of payload and padding in the response.
        returned: usize,
    },
}

/// What a ChangeCipherSpec before any key exchange got (CVE-2014-0224).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EarlyCcs {
    /// Refused: an alert other than a decryption failure, or the connection closed.
    Refused(String),
    /// Accepted: the detail says what showed it.
    Accepted(String),
}

/// What a client-initiated renegotiation got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRenegotiation {
    /// The server answered the protected ClientHello with a ServerHello.
    Accepted,
    /// Refused (the detail says how).
    Refused(String),
}

/// Everything the TLS rules judge.
#[derive(Clone, Debug)]
pub struct TlsObservation {
    /// The host name or IP literal asked for.
    pub host: String,
    /// The port probed.
    pub port: u16,
    /// When the scan looked (Unix seconds).
    pub now: i64,
    /// `tls.cert.expiring_soon` threshold.
    pub expiry_days: u32,
    /// The policy profile whose TLS lists the `tls.profile.*` rules judge.
    pub profile: std::sync::Arc<crate::profile::Profile>,
    /// Every distinct certificate chain the server presented (by leaf), each judged, or why
    /// it could not be; never empty (when no chain was captured: one `Err` with the reason).
    /// The first is what a modern client gets (the rustls handshake).
    pub certs: Vec<Result<CertObservation, Reason>>,
    /// Each version's state.
    pub protocols: BTreeMap<Version, ProtocolState>,
    /// Set when no ClientHello got any answer (then every version is unknown).
    pub protocols_error: Option<Reason>,
    /// Accepted suites of each supported version.
    pub suites: BTreeMap<Version, Result<Accepted, Reason>>,
    /// Named groups accepted (none when no ephemeral EC/TLS 1.3 key exchange was seen).
    pub groups: Option<Result<Vec<u16>, Reason>>,
    /// DH prime size seen with each accepted DHE suite (the smaller of what a hello offering
    /// the RFC 7919 groups and one without them got).
    pub dh_bits: BTreeMap<u16, u32>,
    /// Why a DH group size could not be checked, if a probe for it failed.
    pub dh_error: Option<Reason>,
    /// DEFLATE accepted with the highest TLS ≤ 1.2 version (none: no such version).
    pub compression: Option<Result<bool, Reason>>,
    /// `renegotiation_info` in the ServerHello of the highest TLS ≤ 1.2 version.
    pub renegotiation: Option<Result<bool, Reason>>,
    /// The answer to a hello with TLS_FALLBACK_SCSV one version below the highest accepted
    /// (none: fewer than two versions accepted).
    pub fallback: Option<Result<Fallback, Reason>>,
    /// What an overlong heartbeat got with the highest TLS ≤ 1.2 version (none: no such
    /// version).
    pub heartbeat: Option<Result<Heartbeat, Reason>>,
    /// What an early ChangeCipherSpec got with the highest TLS ≤ 1.2 version (none: no such
    /// version).
    pub early_ccs: Option<Result<EarlyCcs, Reason>>,
    /// What a renegotiation the client asks for got (none: no TLS ≤ 1.2 version).
    pub client_renegotiation: Option<Result<ClientRenegotiation, Reason>>,
    /// What an SSLv2 CLIENT-HELLO got.
    pub sslv2: Result<sslv2::Sslv2, Reason>,
    /// What resuming a session ticket with a 1-byte session id got (none: no TLS ≤ 1.2
    /// version).
    pub ticketbleed: Option<Result<ticketbleed::Ticketbleed, Reason>>,
    /// Hex SHA-256 of the SubjectPublicKeyInfo of every distinct leaf served over TLS (DROWN).
    pub keys: Vec<String>,
    /// What the ROBOT probe saw (none: no TLS ≤ 1.2 version).
    pub robot: Option<Result<robot::Robot, Reason>>,
    /// Connections attempted.
    pub handshakes: u32,
    /// TCP connections that were accepted.
    pub connected: u32,
}

impl TlsObservation {
    /// The state of one version.
    pub fn state(&self, v: Version) -> ProtocolState {
        self.protocols.get(&v).cloned().unwrap_or_else(|| {
            ProtocolState::Unknown(
                self.protocols_error
                    .clone()
                    .unwrap_or_else(|| Reason::new(ReasonKind::Bug, "not probed")),
            )
        })
    }

    /// Versions the server accepts.
    pub fn supported(&self) -> Vec<Version> {
        self.protocols
            .iter()
            .filter(|(_, s)| **s == ProtocolState::Supported)
            .map(|(v, _)| *v)
            .collect()
    }

    /// The first reason some version's suites are unknown, if any: no answer at all, a version
    /// whose acceptance is unknown (it may accept suites nobody enumerated), or a failed
    /// enumeration.
    pub fn suites_unknown(&self) -> Option<Reason> {
        if let Some(r) = &self.protocols_error {
            return Some(r.clone());
        }
        Version::ALL
            .into_iter()
            .find_map(|v| match self.state(v) {
                ProtocolState::Unknown(r) => Some(r),
                _ => None,
            })
            .or_else(|| self.suites.values().find_map(|r| r.as_ref().err().cloned()))
    }

    /// Why what the TLS ≤ 1.2 versions do (compression, renegotiation) is not fully known: a
    /// TLS ≤ 1.2 version whose acceptance is unknown.
    pub fn legacy_unknown(&self) -> Option<Reason> {
        if let Some(r) = &self.protocols_error {
            return Some(r.clone());
        }
        Version::ALL
            .into_iter()
            .filter(|v| *v <= Version::Tls12)
            .find_map(|v| match self.state(v) {
                ProtocolState::Unknown(r) => Some(r),
                _ => None,
            })
    }

    /// For a rule about TLS ≤ 1.2 only, when no TLS ≤ 1.2 version was accepted: pass when TLS
    /// 1.3 is accepted and every older version refused; inconclusive when a version is unknown;
    /// skipped when nothing is accepted at all.
    pub fn no_legacy(&self, out: &mut Emitter, id: &'static str, pass: &str) {
        if let Some(r) = self.legacy_unknown() {
            return out.inconclusive(id, &r);
        }
        match self.state(Version::Tls13) {
            ProtocolState::Supported => out.pass(id, pass, Evidence::none()),
            ProtocolState::Unknown(r) => out.inconclusive(id, &r),
            ProtocolState::Refused(_) => out.skipped(id, "the server accepts no protocol version"),
        }
    }

    /// Every accepted (version, suite) pair.
    pub fn accepted(&self) -> Vec<(Version, u16)> {
        self.suites
            .iter()
            .filter_map(|(v, r)| r.as_ref().ok().map(|a| (v, a)))
            .flat_map(|(v, a)| a.suites.iter().map(move |s| (*v, *s)))
            .collect()
    }

    /// Evidence: accepted suites per version, and whether the server imposes its order.
    pub fn suites_evidence(&self) -> Evidence {
        let mut ev = Evidence::none();
        let mut order = Vec::new();
        for (v, r) in &self.suites {
            match r {
                Ok(a) => {
                    ev = ev.with(
                        v.suites_key(),
                        Observed::texts(a.suites.iter().map(|s| registry::suite_name(*s))),
                    );
                    match a.server_order {
                        Some(enforced) => order.push(format!(
                            "{v}: {}",
                            if enforced { "server" } else { "client" }
                        )),
                        // One accepted suite has no order to impose.
                        None if a.suites.len() == 1 => order.push(format!("{v}: one suite")),
                        None => {}
                    }
                }
                Err(reason) => ev = ev.text(v.suites_key(), format!("unknown: {}", reason.detail)),
            }
        }
        ev.with("preference", Observed::texts(order))
            .with("handshakes", Observed::Number(self.handshakes.into()))
    }
}

/// Run a certificate rule (`judge`, emitting every id of `ids` for one chain) on each
/// certificate the server presented and emit one merged outcome per id. With one certificate
/// the outcome is the rule's own. With several, the worst status wins (fail, inconclusive,
/// skipped, pass); the message lists the certificates with that status ("certificate #2 of 2
/// (RSA 1024): ..."), the evidence is that of the first of them plus which certificate it is
/// and a line per certificate.
fn per_certificate(
    obs: &TlsObservation,
    out: &mut Emitter,
    ids: &'static [&'static str],
    judge: fn(&TlsObservation, &CertObservation, &mut Emitter),
) {
    let verdicts: Vec<Vec<Outcome>> = obs
        .certs
        .iter()
        .map(|c| {
            let mut one = Emitter::new(FAMILY, "");
            match c {
                Ok(c) => judge(obs, c, &mut one),
                Err(reason) => inconclusive_all(&mut one, ids, reason),
            }
            one.finish()
        })
        .collect();
    let n = verdicts.len();
    let subject = |i: usize| match obs.certs.get(i) {
        Some(Ok(c)) => c.leaf().map_or_else(crate::model::Subject::target, |l| {
            crate::model::Subject::new(
                crate::model::SubjectKind::Certificate,
                format!("{} ({})", l.subject, l.key_label()),
            )
        }),
        _ => crate::model::Subject::new(
            crate::model::SubjectKind::Certificate,
            format!("#{} (unreadable)", i + 1),
        ),
    };
    let label = |i: usize| match obs.certs.get(i) {
        Some(Ok(c)) => c
            .leaf()
            .map_or_else(|| "no leaf".to_string(), CertSummary::key_label),
        _ => "unreadable".to_string(),
    };
    let lines: Vec<String> = obs
        .certs
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            Ok(c) => c.leaf().map_or_else(
                || format!("#{}: no leaf", i + 1),
                |l| {
                    format!(
                        "#{}: {}, {}, sha256 {} ({})",
                        i + 1,
                        l.subject,
                        l.key_label(),
                        l.sha256,
                        c.source
                    )
                },
            ),
            Err(r) => format!("#{}: unreadable: {}", i + 1, r.detail),
        })
        .collect();
    for id in ids {
        let mine: Vec<(usize, &Outcome)> = verdicts
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.iter().find(|o| o.rule_id == *id).map(|o| (i, o)))
            .collect();
        let rank = |s: Status| match s {
            Status::Fail => 3,
            Status::Inconclusive => 2,
            Status::Skipped => 1,
            Status::Pass => 0,
        };
        let Some(status) = mine.iter().map(|(_, o)| o.status).max_by_key(|s| rank(*s)) else {
            out.skipped(id, "no certificate");
            continue;
        };
        let chosen: Vec<&(usize, &Outcome)> =
            mine.iter().filter(|(_, o)| o.status == status).collect();
        let Some((first_i, first)) = chosen.first().map(|(i, o)| (*i, *o)) else {
            continue;
        };
        if n == 1 {
            out.emit(
                id,
                status,
                first.message.clone(),
                first.evidence.clone(),
                first.reason.clone(),
            );
            per_subject(out, id, &mine, &subject);
            continue;
        }
        let same = chosen.iter().all(|(_, o)| o.message == first.message);
        let message = if same && chosen.len() == n {
            format!("all {n} certificates: {}", first.message)
        } else {
            chosen
                .iter()
                .map(|(i, o)| {
                    format!(
                        "certificate #{} of {n} ({}): {}",
                        i + 1,
                        label(*i),
                        o.message
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut evidence = first.evidence.clone();
        evidence = evidence
            .text("certificate", format!("#{} of {n}", first_i + 1))
            .with("certificates", Observed::texts(lines.iter().cloned()));
        out.emit(id, status, message, evidence, first.reason.clone());
        per_subject(out, id, &mine, &subject);
    }
}

/// Under the result of `id`: a finding for each certificate that failed it, and each other
/// certificate as a checked subject. A certificate's subject is its subject name and key
/// type, which stay the same when it is renewed (its SHA-256 is in the evidence).
fn per_subject(
    out: &mut Emitter,
    id: &'static str,
    mine: &[(usize, &Outcome)],
    subject: &dyn Fn(usize) -> crate::model::Subject,
) {
    let Some(result) = out.last(id) else { return };
    for (i, o) in mine {
        match o.status {
            Status::Fail => result.finding(subject(*i), o.message.clone(), o.evidence.clone()),
            status => result.checked(subject(*i), status, o.message.clone(), o.reason.clone()),
        }
    }
}

/// Evidence describing a certificate chain.
pub fn cert_evidence(cert: &CertObservation, now: i64) -> Evidence {
    let Some(leaf) = cert.leaf() else {
        return Evidence::none();
    };
    Evidence::none()
        .text("subject", &leaf.subject)
        .text("issuer", &leaf.issuer)
        .with("sans", Observed::texts(leaf.sans.iter().cloned()))
        .text("serial", &leaf.serial)
        .text("not_before", cert::date(leaf.not_before))
        .text("not_after", cert::date(leaf.not_after))
        .with("days_left", Observed::Number(days_left(leaf, now)))
        .text("key", leaf.key_label())
        .text("signature_algorithm", &leaf.signature)
        .with(
            "chain",
            Observed::texts(cert.chain.iter().map(CertSummary::chain_line)),
        )
        .text("sha256", &leaf.sha256)
        .text("source", &cert.source)
}

/// Whole days until a certificate expires (negative once expired).
pub fn days_left(c: &CertSummary, now: i64) -> i64 {
    (c.not_after - now).div_euclid(86_400)
}

/// Emit the same inconclusive reason for several rules.
fn inconclusive_all(out: &mut Emitter, ids: &[&'static str], reason: &Reason) {
    for id in ids {
        out.inconclusive(id, reason);
    }
}

/// Hand-built observations for the rules' unit tests.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;

    pub const NOW: i64 = 1_800_000_000;

    pub fn summary(subject: &str, issuer: &str) -> CertSummary {
        CertSummary {
            subject: subject.into(),
            issuer: issuer.into(),
            common_name: None,
            sans: vec!["DNS:app.test".into()],
            has_san: true,
            serial: "01".into(),
            not_before: NOW - 86_400 * 10,
            not_after: NOW + 86_400 * 200,
            key_type: "EC".into(),
            key_bits: 256,
            curve: Some("prime256v1".into()),
            signature: "ecdsa-with-SHA256".into(),
            weak_signature: false,
            is_ca: false,
            self_issued: subject == issuer,
            sha256: "00".repeat(32),
            ca_issuers: Vec::new(),
        }
    }

    /// A good observation: trusted chain, TLS 1.2 + 1.3 with modern suites.
    pub fn good() -> TlsObservation {
        let mut protocols = BTreeMap::new();
        for v in Version::ALL {
            protocols.insert(
                v,
                if v >= Version::Tls12 {
                    ProtocolState::Supported
                } else {
                    ProtocolState::Refused("alert protocol_version".into())
                },
            );
        }
        let mut suites = BTreeMap::new();
        suites.insert(
            Version::Tls12,
            Ok(Accepted {
                suites: vec![0xC02F, 0xC030],
                server_order: Some(true),
            }),
        );
        suites.insert(
            Version::Tls13,
            Ok(Accepted {
                suites: vec![0x1301],
                server_order: None,
            }),
        );
        TlsObservation {
            host: "app.test".into(),
            port: 443,
            now: NOW,
            expiry_days: 30,
            profile: crate::profile::default_profile(),
            certs: vec![Ok(CertObservation {
                source: "rustls handshake".into(),
                chain: vec![
                    summary("CN=app.test", "CN=Int"),
                    summary("CN=Int", "CN=Root"),
                ],
                trust: Trust::Trusted,
                name: NameMatch::Matches,
                status: status::StatusFacts {
                    asked_staple: true,
                    staple: Some(ocsp::Staple::Valid(ocsp::Verified {
                        status: ocsp::CertStatus::Good,
                        this_update: NOW - 3600,
                        next_update: Some(NOW + 86_400),
                        produced_at: NOW - 3600,
                        signer: "the issuer (CN=Int)".into(),
                        scts: 0,
                    })),
                    staple_bytes: 500,
                    must_staple: true,
                    scts_certificate: 2,
                    scts_extension: Some(0),
                    ..status::StatusFacts::default()
                },
            })],
            protocols,
            protocols_error: None,
            suites,
            groups: Some(Ok(vec![29, 23])),
            dh_bits: BTreeMap::new(),
            dh_error: None,
            compression: Some(Ok(false)),
            renegotiation: Some(Ok(true)),
            fallback: Some(Ok(Fallback {
                lower: Version::Tls12,
                higher: Version::Tls13,
                answer: FallbackAnswer::Refused("alert inappropriate_fallback".into()),
            })),
            heartbeat: Some(Ok(Heartbeat::NotSupported)),
            early_ccs: Some(Ok(EarlyCcs::Refused("alert unexpected_message".into()))),
            client_renegotiation: Some(Ok(ClientRenegotiation::Refused(
                "warning alert no_renegotiation".into(),
            ))),
            sslv2: Ok(sslv2::Sslv2::Refused("alert handshake_failure".into())),
            ticketbleed: Some(Ok(ticketbleed::Ticketbleed::NoTicket)),
            keys: vec!["cd".repeat(32)],
            robot: Some(Ok(robot::Robot::Probed(robot::Probed {
                version: Version::Tls12,
                suites: vec![0x009C],
                answers: robot::Variant::ALL
                    .into_iter()
                    .map(|v| {
                        (
                            v,
                            robot::Reaction {
                                records: vec![robot::Seen::Alert {
                                    level: 2,
                                    description: 20,
                                }],
                                end: robot::Ending::Closed,
                            },
                        )
                    })
                    .collect(),
                repeats: Vec::new(),
                scattered: None,
            }))),
            handshakes: 12,
            connected: 12,
        }
    }

    pub fn failed() -> TlsObservation {
        let reason = Reason::new(ReasonKind::Timeout, "t");
        let reason_copy = reason.clone();
        let mut o = good();
        o.certs = vec![Err(reason.clone())];
        for s in o.protocols.values_mut() {
            *s = ProtocolState::Unknown(reason.clone());
        }
        o.protocols_error = Some(reason);
        o.suites.clear();
        o.groups = None;
        o.compression = None;
        o.renegotiation = None;
        o.fallback = None;
        o.heartbeat = None;
        o.early_ccs = None;
        o.client_renegotiation = None;
        o.sslv2 = Err(reason_copy);
        o.ticketbleed = None;
        o.keys.clear();
        o.robot = None;
        o
    }

    /// The first certificate of an observation, to edit.
    pub fn cert(o: &mut TlsObservation) -> &mut CertObservation {
        match o.certs.first_mut() {
            Some(Ok(c)) => c,
            _ => panic!("no certificate"),
        }
    }

    pub fn run(rule: &Rule, obs: &TlsObservation) -> Vec<(&'static str, Status, String)> {
        let mut out = Emitter::new(FAMILY, "https://app.test/");
        (rule.eval)(obs, &mut out);
        out.finish()
            .into_iter()
            .map(|o| (o.rule_id, o.status, o.message))
            .collect()
    }

    pub fn status(rule: &Rule, obs: &TlsObservation, id: &str) -> Status {
        run(rule, obs)
            .into_iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, s, _)| s)
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_match_rules() {
        let mut a: Vec<&str> = RULES.iter().flat_map(|r| r.ids.iter().copied()).collect();
        let mut b = RULE_IDS.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }

    #[test]
    fn every_rule_emits_each_id_once_even_on_failure() {
        for obs in [fixture::good(), fixture::failed()] {
            for rule in RULES {
                let got: Vec<_> = fixture::run(rule, &obs)
                    .into_iter()
                    .map(|(i, _, _)| i)
                    .collect();
                assert_eq!(got, rule.ids.to_vec());
            }
        }
    }

    #[test]
    fn a_good_observation_passes_everything_and_a_failed_one_decides_nothing() {
        // The tls.profile.* rules are skipped without a profile that sets their lists; DROWN
        // waits for the scan-wide join (drown.rs tests it).
        let judged =
            |o: &&Outcome| !o.rule_id.starts_with("tls.profile.") && o.rule_id != drown::DROWN;
        let good = evaluate(&fixture::good(), "t");
        assert!(
            good.iter().filter(judged).all(|o| o.status == Status::Pass),
            "{good:#?}"
        );
        assert!(
            good.iter()
                .filter(|o| !judged(o) && o.rule_id != drown::DROWN)
                .all(|o| o.status == Status::Skipped)
        );
        let failed = evaluate(&fixture::failed(), "t");
        assert!(
            failed
                .iter()
                .filter(judged)
                .all(|o| o.status == Status::Inconclusive),
            "{failed:#?}"
        );
    }

    fn statuses(obs: &TlsObservation) -> BTreeMap<&'static str, Status> {
        evaluate(obs, "t")
            .into_iter()
            .map(|o| (o.rule_id, o.status))
            .collect()
    }

    #[test]
    fn a_version_whose_answer_is_unknown_leaves_the_suite_rules_undecided() {
        let mut o = fixture::good();
        o.protocols.insert(
            Version::Tls10,
            ProtocolState::Unknown(Reason::new(ReasonKind::Malformed, "garbled")),
        );
        let got = statuses(&o);
        for id in [
            protocols::TLS10,
            ciphers::WEAK,
            ciphers::NO_FORWARD_SECRECY,
            ciphers::CBC,
            kex::WEAK_DH,
            compression::COMPRESSION,
            renegotiation::INSECURE,
        ] {
            assert_eq!(got[id], Status::Inconclusive, "{id}");
        }
        assert_eq!(got[protocols::TLS11], Status::Pass);
        assert_eq!(got[trust::UNTRUSTED], Status::Pass);
        // A certain finding still fails.
        o.compression = Some(Ok(true));
        o.suites.insert(
            Version::Tls12,
            Ok(Accepted {
                suites: vec![0x000A],
                server_order: None,
            }),
        );
        let got = statuses(&o);
        assert_eq!(got[compression::COMPRESSION], Status::Fail);
        assert_eq!(got[ciphers::WEAK], Status::Fail);
        assert_eq!(got[ciphers::CBC], Status::Fail);
    }

    #[test]
    fn only_tls13_passes_compression_and_renegotiation_only_when_every_older_version_refuses() {
        let mut o = fixture::good();
        o.protocols.insert(
            Version::Tls12,
            ProtocolState::Refused("alert protocol_version".into()),
        );
        o.suites.remove(&Version::Tls12);
        o.compression = None;
        o.renegotiation = None;
        let got = statuses(&o);
        assert_eq!(got[compression::COMPRESSION], Status::Pass);
        assert_eq!(got[renegotiation::INSECURE], Status::Pass);
        // One older version unknown.
        let mut unknown = o.clone();
        unknown.protocols.insert(
            Version::Ssl3,
            ProtocolState::Unknown(Reason::new(ReasonKind::Timeout, "t")),
        );
        let got = statuses(&unknown);
        assert_eq!(got[compression::COMPRESSION], Status::Inconclusive);
        assert_eq!(got[renegotiation::INSECURE], Status::Inconclusive);
        // TLS 1.3 unknown as well as refused.
        let mut t13 = o.clone();
        t13.protocols.insert(
            Version::Tls13,
            ProtocolState::Unknown(Reason::new(ReasonKind::Timeout, "t")),
        );
        assert_eq!(
            statuses(&t13)[compression::COMPRESSION],
            Status::Inconclusive
        );
        // Nothing accepted at all: nothing to judge.
        t13.protocols
            .insert(Version::Tls13, ProtocolState::Refused("alert".into()));
        assert_eq!(statuses(&t13)[renegotiation::INSECURE], Status::Skipped);
    }

    #[test]
    fn each_certificate_is_judged_and_the_worst_verdict_says_which() {
        let mut o = fixture::good();
        let mut rsa = fixture::cert(&mut o).clone();
        rsa.source = "TLS 1.2 handshake (TLS_RSA_WITH_AES_128_GCM_SHA256)".into();
        rsa.chain[0].key_type = "RSA".into();
        rsa.chain[0].key_bits = 2048;
        rsa.chain[0].curve = None;
        rsa.chain[0].sha256 = "11".repeat(32);
        o.certs.push(Ok(rsa));
        let all = evaluate(&o, "t");
        assert!(
            all.iter()
                .filter(|r| !r.rule_id.starts_with("tls.profile.") && r.rule_id != drown::DROWN)
                .all(|r| r.status == Status::Pass),
            "{all:#?}"
        );
        let key = all
            .iter()
            .find(|r| r.rule_id == strength::WEAK_KEY)
            .unwrap();
        assert_eq!(
            key.message,
            "all 2 certificates: every key is strong enough"
        );
        // The RSA certificate has a 1024-bit key: weak_key fails and names it.
        if let Some(Ok(c)) = o.certs.get_mut(1) {
            c.chain[0].key_bits = 1024;
        }
        let all = evaluate(&o, "t");
        let key = all
            .iter()
            .find(|r| r.rule_id == strength::WEAK_KEY)
            .unwrap();
        assert_eq!(key.status, Status::Fail);
        assert_eq!(
            key.message,
            "certificate #2 of 2 (RSA 1024): weak key: CN=app.test: RSA 1024"
        );
        let ev: BTreeMap<&str, String> = key
            .evidence
            .0
            .iter()
            .map(|(k, v)| (*k, v.display()))
            .collect();
        assert_eq!(ev["certificate"], "#2 of 2");
        assert_eq!(ev["key"], "RSA 1024");
        assert!(
            ev["certificates"].starts_with("#1: CN=app.test, EC 256 (prime256v1), sha256 0000"),
            "{}",
            ev["certificates"]
        );
        assert!(
            ev["certificates"].contains("#2: CN=app.test, RSA 1024, sha256 1111"),
            "{}",
            ev["certificates"]
        );
        // Per certificate: the second is sent alone and its issuer is unknown, so it has no
        // path to a trusted root, and the likely cause is a missing intermediate.
        if let Some(Ok(c)) = o.certs.get_mut(1) {
            c.chain[0].key_bits = 2048;
            c.chain.truncate(1);
            c.trust = Trust::MissingIntermediate {
                issuer: "CN=Int".into(),
                top: "CN=app.test".into(),
            };
        }
        let got = statuses(&o);
        assert_eq!(got[trust::INCOMPLETE_CHAIN], Status::Fail);
        assert_eq!(got[trust::UNTRUSTED], Status::Fail);
        // An unreadable certificate is undecided, never a pass.
        o.certs[1] = Err(Reason::new(ReasonKind::Malformed, "bad DER"));
        let got = statuses(&o);
        assert_eq!(got[strength::WEAK_KEY], Status::Inconclusive);
        assert_eq!(got[validity::EXPIRED], Status::Inconclusive);
    }

    #[test]
    fn runs_by_default_on_tls_ports_only() {
        let t = |s: &str| Target::parse(s).unwrap();
        let settings = Settings::default();
        assert!(Tls.applies_to(&t("a.test:993")));
        assert!(!Tls.applies_to(&t("a.test:5432")));
        assert!(Tls.can_run(&t("a.test:5432"), &settings));
        assert!(Tls.applies_to(&t("a.test")));
        assert!(!Tls.can_run(&t("http://a.test/"), &settings));
    }

    #[test]
    fn tls_port_by_target_kind() {
        let port = |s: &str| tls_port(&Target::parse(s).unwrap());
        assert_eq!(port("10.0.0.0/30"), None);
        assert_eq!(port("https://a.test/"), Some(443));
        assert_eq!(port("https://a.test:8443/"), Some(8443));
        assert_eq!(port("http://a.test/"), None);
        assert_eq!(port("a.test"), Some(443));
        assert_eq!(port("a.test:993"), Some(993));
        assert_eq!(port("a.test:80"), None);
    }
}
