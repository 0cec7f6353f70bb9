//! TLS servers for the lab: certificate chains made with rcgen (expired, not yet valid, wrong
//! name, self-signed, missing intermediate, no subjectAltName...) served by rustls; a scripted
//! legacy responder for what no TLS library here will do any more (SSL 3.0, RC4, DEFLATE
//! compression, no secure renegotiation); and servers that send broken records.
//!
//! The legacy responder answers a ClientHello with a ServerHello, its Certificate, a
//! ServerKeyExchange for (EC)DHE suites and ServerHelloDone, exactly as an old OpenSSL would,
//! then waits for the client to hang up: it never completes a handshake (it has no key
//! schedule), which is all a scanner's ClientHello probe needs to see. Its ClientHello parser is
//! bounded like the scanner's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{LabServer, accept_loop};

/// The longest a scripted TLS connection is served.
const CONN_LIMIT: Duration = Duration::from_secs(10);

impl LabServer {
    /// Wrap a server task that accepts on `addr` (dropping the result stops it).
    pub fn from_task(addr: SocketAddr, task: tokio::task::JoinHandle<()>) -> LabServer {
        LabServer { addr, task }
    }
}

/// What a lab leaf certificate looks like.
#[derive(Clone, Debug)]
pub struct LeafSpec {
    /// subjectAltName entries (DNS names or IP literals); also the CN when `san` is false.
    pub names: Vec<String>,
    /// Put the names in subjectAltName (else only the first, as CN).
    pub san: bool,
    /// Validity start relative to now, in days (negative: in the past).
    pub not_before_days: i64,
    /// Validity end relative to now, in days.
    pub not_after_days: i64,
    /// Send the intermediate along (false: the chain is incomplete).
    pub send_intermediate: bool,
    /// Extensions added as they are (e.g. [`super::ocsp::must_staple`],
    /// [`super::ocsp::embedded_scts`]).
    pub extensions: Vec<rcgen::CustomExtension>,
}

impl LeafSpec {
    /// A correct leaf for `names`, valid for a year.
    pub fn new(names: &[&str]) -> LeafSpec {
        LeafSpec {
            names: names.iter().map(|n| (*n).to_string()).collect(),
            san: true,
            not_before_days: -1,
            not_after_days: 365,
            send_intermediate: true,
            extensions: Vec::new(),
        }
    }
}

/// A certificate authority of the lab: its certificate (DER and PEM), its key in PEM (for
/// `openssl x509 -req -CAkey`, e.g. to sign with SHA-1, which rcgen cannot) and its issuer.
pub struct LabCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
    key_pem: String,
}

impl std::fmt::Debug for LabCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LabCa")
    }
}

impl LabCa {
    /// A CA named `cn`, self-signed (`parent` none) or issued by `parent`, valid from
    /// `not_before_days` to `not_after_days` relative to now.
    pub fn new(
        cn: &str,
        parent: Option<&LabCa>,
        not_before_days: i64,
        not_after_days: i64,
    ) -> Result<LabCa, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params = ca_params(cn)?;
        params.not_before = days(not_before_days);
        params.not_after = days(not_after_days);
        let cert = match parent {
            Some(p) => params.signed_by(&key, &p.issuer),
            None => params.self_signed(&key),
        }
        .map_err(|e| e.to_string())?;
        Ok(LabCa {
            der: cert.der().clone(),
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// An intermediate named `cn` issued by `parent`, valid for a year, whose Authority
    /// Information Access extension says its issuer's certificate is published at `ca_issuers`
    /// (as public CAs' intermediates do).
    pub fn published(cn: &str, parent: &LabCa, ca_issuers: &str) -> Result<LabCa, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params = ca_params(cn)?;
        params.not_before = days(-1);
        params.not_after = days(365);
        // SEQUENCE { SEQUENCE { id-ad-caIssuers, [6] uniformResourceIdentifier } }
        let uri = ca_issuers.as_bytes();
        let method = [0x06, 0x08, 0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
        let mut desc = method.to_vec();
        desc.push(0x86);
        desc.push(u8::try_from(uri.len()).map_err(|_| "URI too long")?);
        desc.extend_from_slice(uri);
        let mut one = vec![0x30, u8::try_from(desc.len()).map_err(|_| "URI too long")?];
        one.extend(desc);
        let mut aia = vec![0x30, u8::try_from(one.len()).map_err(|_| "URI too long")?];
        aia.extend(one);
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                aia,
            ));
        let cert = params
            .signed_by(&key, &parent.issuer)
            .map_err(|e| e.to_string())?;
        Ok(LabCa {
            der: cert.der().clone(),
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// The CA certificate.
    pub fn der(&self) -> CertificateDer<'static> {
        self.der.clone()
    }

    /// The CA certificate in PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA's key pair (the lab OCSP signer signs with it).
    pub fn key_pair(&self) -> &rcgen::KeyPair {
        self.issuer.key()
    }

    /// A certificate for `params` and `key`, issued by this CA.
    pub fn issue(
        &self,
        params: &rcgen::CertificateParams,
        key: &rcgen::KeyPair,
    ) -> Result<CertificateDer<'static>, String> {
        params
            .signed_by(key, &self.issuer)
            .map(|c| c.der().clone())
            .map_err(|e| e.to_string())
    }

    /// The CA's private key in PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A leaf issued by this CA: the chain is the leaf alone (the caller adds what the server
    /// should send).
    pub fn leaf(
        &self,
        spec: &LeafSpec,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = leaf_params(spec)?
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        Ok((vec![cert.der().clone()], pkcs8(&key)))
    }
}

/// A root CA and an intermediate that issues lab leaves (root → intermediate → leaf).
#[derive(Debug)]
pub struct TlsPki {
    root: LabCa,
    int: LabCa,
}

/// The parameters of a CA certificate named `cn` (no validity set).
pub(crate) fn ca_params(cn: &str) -> Result<rcgen::CertificateParams, String> {
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    Ok(params)
}

fn days(d: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::days(d)
}

impl TlsPki {
    /// A new root ("secgate lab root") and intermediate ("secgate lab intermediate").
    pub fn new() -> Result<TlsPki, String> {
        let root = LabCa::new("secgate lab root", None, -30, 3650)?;
        let int = LabCa::new("secgate lab intermediate", Some(&root), -30, 1825)?;
        Ok(TlsPki { root, int })
    }

    /// The root in PEM (for `--ca-file`).
    pub fn root_pem(&self) -> &str {
        self.root.pem()
    }

    /// The root (a trust anchor).
    pub fn root_der(&self) -> CertificateDer<'static> {
        self.root.der()
    }

    /// The root CA.
    pub fn root(&self) -> &LabCa {
        &self.root
    }

    /// The intermediate CA.
    pub fn intermediate(&self) -> &LabCa {
        &self.int
    }

    /// A leaf issued by the intermediate, with its chain as the server would send it.
    pub fn leaf(
        &self,
        spec: &LeafSpec,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        let (mut chain, key) = self.int.leaf(spec)?;
        if spec.send_intermediate {
            chain.push(self.int.der());
        }
        Ok((chain, key))
    }

    /// A leaf signed directly by the root (no intermediate).
    pub fn leaf_from_root(
        &self,
        spec: &LeafSpec,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        self.root.leaf(spec)
    }
}

fn leaf_params(spec: &LeafSpec) -> Result<rcgen::CertificateParams, String> {
    let mut params = if spec.san {
        rcgen::CertificateParams::new(spec.names.clone()).map_err(|e| e.to_string())?
    } else {
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?
    };
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        spec.names.first().cloned().unwrap_or_default(),
    );
    params.not_before = days(spec.not_before_days);
    params.not_after = days(spec.not_after_days);
    params
        .custom_extensions
        .extend(spec.extensions.iter().cloned());
    Ok(params)
}

fn pkcs8(key: &rcgen::KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

/// A self-signed leaf for `names` (valid for a year).
pub fn self_signed(
    names: &[&str],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = leaf_params(&LeafSpec::new(names))?
        .self_signed(&key)
        .map_err(|e| e.to_string())?;
    Ok((vec![cert.der().clone()], pkcs8(&key)))
}

/// A rustls server configuration (TLS 1.2 and 1.3) presenting `chain`.
pub fn rustls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The heartbeat behaviour (RFC 6520) of the scripted legacy responder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabHeartbeat {
    /// No heartbeat support: the extension is not echoed, a heartbeat record gets alert
    /// unexpected_message.
    Absent,
    /// Heartbeats as RFC 6520 says: a request whose claimed payload is longer than the
    /// record is discarded silently, any other is echoed.
    Patched,
    /// Heartbleed: a request is answered with as many bytes as it claims, copied from the
    /// responder's memory past the request (a buffer that holds [`LAB_SECRET`]).
    Bleeding,
}

/// What the scripted legacy responder does after its flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Afterwards {
    /// Answer the client's records as the other settings say.
    Answer,
    /// Answer whatever comes next with 1 KiB of bytes that are not TLS records.
    Garbage,
    /// Answer with half an alert record, then close.
    Truncate,
    /// Read and say nothing (until the 5-second limit).
    Silence,
}

/// What the Heartbleed responder's memory holds after a request: tests check that reports
/// never show it.
pub const LAB_SECRET: &[u8] = b"-----BEGIN PRIVATE KEY----- secgate-lab-secret ";

/// What the scripted legacy responder accepts.
#[derive(Clone, Debug)]
pub struct Legacy {
    /// Protocol versions it speaks (0x0300 SSL 3.0 ... 0x0303 TLS 1.2).
    pub versions: Vec<u16>,
    /// Cipher suites, in its preference order (it enforces this order).
    pub suites: Vec<u16>,
    /// Select DEFLATE when offered.
    pub compression: bool,
    /// Answer the renegotiation signal with `renegotiation_info`.
    pub secure_renegotiation: bool,
    /// Size of the DH prime sent with DHE suites.
    pub dh_bits: usize,
    /// Negotiate finite-field groups (RFC 7919): a hello that offers ffdhe2048 gets that group,
    /// any other the `dh_bits` one.
    pub rfc7919: bool,
    /// Refuse (alert handshake_failure) any hello that carries extensions, as some old stacks
    /// did.
    pub extension_intolerant: bool,
    /// Refuse a hello below its highest version that carries TLS_FALLBACK_SCSV (RFC 7507) with
    /// inappropriate_fallback; without it, such a hello is served like any other.
    pub fallback_scsv: bool,
    /// What it does with the heartbeat extension and heartbeat requests.
    pub heartbeat: LabHeartbeat,
    /// Accept a ChangeCipherSpec before the key exchange, as OpenSSL before 1.0.1h did
    /// (CVE-2014-0224): it switches keys, so the next record fails to decrypt (alert
    /// bad_record_mac). Without it, an early ChangeCipherSpec gets alert unexpected_message.
    pub early_ccs: bool,
    /// What it does after its flight.
    pub afterwards: Afterwards,
    /// The certificate chain it presents.
    pub chain: Vec<CertificateDer<'static>>,
}

impl Legacy {
    /// An old server: SSL 3.0 and TLS 1.0, RC4, 3DES and static RSA, DEFLATE, 1024-bit DHE, no
    /// secure renegotiation and no TLS_FALLBACK_SCSV (heartbeats absent, early
    /// ChangeCipherSpec refused).
    pub fn ancient(chain: Vec<CertificateDer<'static>>) -> Legacy {
        Legacy {
            versions: vec![0x0300, 0x0301],
            suites: vec![0x0005, 0x000A, 0x002F, 0x0033],
            compression: true,
            secure_renegotiation: false,
            dh_bits: 1024,
            rfc7919: false,
            extension_intolerant: false,
            fallback_scsv: false,
            heartbeat: LabHeartbeat::Absent,
            early_ccs: false,
            afterwards: Afterwards::Answer,
            chain,
        }
    }
}

/// The RFC 7919 ffdhe2048 prime (RFC 7919 appendix A.1), big-endian.
const FFDHE2048: &str = "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617AD3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797ABC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F619172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005C58EF1837D1683B2C6F34A26C1B2EFFA886B423861285C97FFFFFFFFFFFFFFFF";

fn hex_bytes(hex: &str) -> Vec<u8> {
    hex.as_bytes()
        .chunks(2)
        .filter_map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// Serve the scripted legacy responder on `listener` (at most 64 connections at once).
pub fn serve_legacy(listener: TcpListener, legacy: Legacy) -> LabServer {
    let legacy = Arc::new(legacy);
    accept_loop(listener, Some(CONN_LIMIT), move |stream| {
        let legacy = legacy.clone();
        async move { legacy_conn(stream, &legacy).await }
    })
}

/// Records that break the TLS framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadRecord {
    /// A handshake record header announcing 65535 bytes (over the 2^14 + 2048 limit).
    Oversized,
    /// A handshake record header announcing 500 bytes, 10 of them, then close.
    Truncated,
    /// A 64 KB ServerHello carrying 16,000 distinct extensions, then 300 tiny records (each
    /// a HelloRequest): what it costs a reader that parses the answer again after every record.
    ExtensionFlood,
}

/// Answer every ClientHello with a bad record.
pub fn serve_bad_records(listener: TcpListener, kind: BadRecord) -> LabServer {
    accept_loop(listener, Some(CONN_LIMIT), move |mut stream| async move {
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await;
        let bytes: Vec<u8> = match kind {
            BadRecord::Oversized => {
                let mut b = vec![22, 3, 3, 0xff, 0xff];
                b.extend(std::iter::repeat_n(0u8, 1024));
                b
            }
            BadRecord::Truncated => {
                let mut b = vec![22, 3, 3, 0x01, 0xf4];
                b.extend([2u8, 0, 1, 0xf0, 3, 3, 0, 0, 0, 0]);
                b
            }
            BadRecord::ExtensionFlood => extension_flood(),
        };
        let _ = stream.write_all(&bytes).await;
        let _ = stream.flush().await;
    })
}

fn extension_flood() -> Vec<u8> {
    let mut exts = Vec::new();
    for kind in 0x1000u16..0x1000 + 16_000 {
        exts.extend_from_slice(&kind.to_be_bytes());
        exts.extend_from_slice(&[0, 0]);
    }
    let mut sh = vec![3, 3];
    sh.extend([7u8; 32]);
    sh.push(0);
    sh.extend_from_slice(&[0xC0, 0x2F, 0]);
    sh.extend_from_slice(&u16::try_from(exts.len()).unwrap_or(0).to_be_bytes());
    sh.extend(exts);
    let mut out = Vec::new();
    for chunk in message(2, &sh).chunks(16384) {
        out.extend(record(22, 0x0303, chunk));
    }
    for _ in 0..300 {
        out.extend(record(22, 0x0303, &message(0, &[])));
    }
    out
}

/// The parts of a ClientHello the responder needs.
struct ClientHello {
    version: u16,
    suites: Vec<u16>,
    deflate: bool,
    renegotiation: bool,
    supported_versions: Vec<u16>,
    groups: Vec<u16>,
    extensions: bool,
    heartbeat: bool,
}

fn be16(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// Parse a ClientHello record (bounded; `None` on anything unexpected).
fn parse_client_hello(rec: &[u8]) -> Option<ClientHello> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = rec.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    let header = take(5)?;
    if header.first() != Some(&22) {
        return None;
    }
    let hs = take(4)?;
    if hs.first() != Some(&1) {
        return None;
    }
    let version = be16(take(2)?)?;
    take(32)?;
    let sid = usize::from(*take(1)?.first()?);
    take(sid)?;
    let n = usize::from(be16(take(2)?)?);
    let suites: Vec<u16> = take(n)?.chunks(2).filter_map(be16).collect();
    let n = usize::from(*take(1)?.first()?);
    let deflate = take(n)?.contains(&1);
    let mut hello = ClientHello {
        version,
        renegotiation: suites.contains(&0x00FF),
        suites,
        deflate,
        supported_versions: Vec::new(),
        groups: Vec::new(),
        extensions: false,
        heartbeat: false,
    };
    let Some(len) = take(2).and_then(be16) else {
        return Some(hello);
    };
    hello.extensions = true;
    let exts = take(usize::from(len))?;
    let mut e = 0usize;
    while let (Some(kind), Some(n)) = (
        exts.get(e..e + 2).and_then(be16),
        exts.get(e + 2..e + 4).and_then(be16),
    ) {
        let data = exts.get(e + 4..e + 4 + usize::from(n))?;
        match kind {
            0xff01 => hello.renegotiation = true,
            0x002b => {
                hello.supported_versions = data.get(1..)?.chunks(2).filter_map(be16).collect();
            }
            0x000a => hello.groups = data.get(2..)?.chunks(2).filter_map(be16).collect(),
            0x000f => hello.heartbeat = true,
            _ => {}
        }
        e += 4 + usize::from(n);
    }
    Some(hello)
}

fn record(kind: u8, version: u16, body: &[u8]) -> Vec<u8> {
    let mut r = vec![kind];
    r.extend_from_slice(&version.to_be_bytes());
    r.extend_from_slice(&u16::try_from(body.len()).unwrap_or(0).to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let n = u32::try_from(body.len()).unwrap_or(0).to_be_bytes();
    let mut m = vec![kind];
    m.extend_from_slice(n.get(1..).unwrap_or_default());
    m.extend_from_slice(body);
    m
}

fn u24(n: usize) -> Vec<u8> {
    u32::try_from(n)
        .unwrap_or(0)
        .to_be_bytes()
        .get(1..)
        .unwrap_or_default()
        .to_vec()
}

async fn legacy_conn(mut stream: TcpStream, legacy: &Legacy) {
    let mut buf = vec![0u8; 8192];
    let mut got = 0usize;
    // Read one record (bounded by the buffer).
    loop {
        let Some(space) = buf.get_mut(got..) else {
            return;
        };
        if space.is_empty() {
            return;
        }
        match stream.read(space).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got += n,
        }
        let need = buf.get(3..5).and_then(be16).map(|n| usize::from(n) + 5);
        if need.is_some_and(|n| got >= n) {
            break;
        }
    }
    let Some(hello) = buf.get(..got).and_then(parse_client_hello) else {
        return;
    };
    let alert = |d: u8, v: u16| record(21, v, &[2, d]);
    if legacy.extension_intolerant && hello.extensions {
        let _ = stream.write_all(&alert(40, 0x0301)).await;
        return;
    }
    let top = legacy.versions.iter().copied().max().unwrap_or(0x0301);
    // TLS 1.3 is never spoken; a TLS 1.3-only hello is refused.
    if !hello.supported_versions.is_empty() && !hello.supported_versions.iter().any(|v| *v <= top) {
        let _ = stream.write_all(&alert(70, 0x0301)).await;
        return;
    }
    let version = hello.version.min(top);
    if !legacy.versions.contains(&version) {
        let _ = stream.write_all(&alert(70, 0x0301)).await;
        return;
    }
    if legacy.fallback_scsv && version < top && hello.suites.contains(&0x5600) {
        let _ = stream.write_all(&alert(86, version)).await;
        return;
    }
    let Some(suite) = legacy
        .suites
        .iter()
        .copied()
        .find(|s| hello.suites.contains(s))
    else {
        let _ = stream.write_all(&alert(40, version)).await;
        return;
    };
    let mut sh = Vec::new();
    sh.extend_from_slice(&version.to_be_bytes());
    let mut random = [0u8; 32];
    let _ = aws_lc_rs::rand::fill(&mut random);
    sh.extend_from_slice(&random);
    sh.push(0);
    sh.extend_from_slice(&suite.to_be_bytes());
    sh.push(u8::from(legacy.compression && hello.deflate));
    let mut exts = Vec::new();
    if legacy.secure_renegotiation && hello.renegotiation {
        exts.extend_from_slice(&[0xff, 0x01, 0, 1, 0]);
    }
    if legacy.heartbeat != LabHeartbeat::Absent && hello.heartbeat {
        exts.extend_from_slice(&[0x00, 0x0f, 0, 1, 1]);
    }
    if !exts.is_empty() {
        sh.extend_from_slice(&u16::try_from(exts.len()).unwrap_or(0).to_be_bytes());
        sh.extend(exts);
    }
    let mut flight = message(2, &sh);
    let mut certs = Vec::new();
    for c in &legacy.chain {
        certs.extend(u24(c.len()));
        certs.extend_from_slice(c);
    }
    let mut body = u24(certs.len());
    body.extend(certs);
    flight.extend(message(11, &body));
    let dhe = matches!(
        suite,
        0x0033 | 0x0039 | 0x0016 | 0x0067 | 0x006B | 0x009E | 0x009F
    );
    let ecdhe = (0xC006..=0xC032).contains(&suite) || (0xCCA8..=0xCCA9).contains(&suite);
    if dhe {
        let mut ske = Vec::new();
        let p = if legacy.rfc7919 && hello.groups.contains(&256) {
            hex_bytes(FFDHE2048)
        } else {
            let mut p = vec![0xffu8; legacy.dh_bits / 8];
            if let Some(last) = p.last_mut() {
                *last = 0xfd;
            }
            p
        };
        ske.extend_from_slice(&u16::try_from(p.len()).unwrap_or(0).to_be_bytes());
        ske.extend(p);
        ske.extend_from_slice(&[0, 1, 2]);
        ske.extend_from_slice(&[0, 1, 5]);
        ske.extend_from_slice(&[0, 4, 0, 0, 0, 0]);
        flight.extend(message(12, &ske));
    } else if ecdhe {
        let mut ske = vec![3, 0, 23, 65, 4];
        ske.extend([7u8; 64]);
        ske.extend_from_slice(&[0, 4, 0, 0, 0, 0]);
        flight.extend(message(12, &ske));
    }
    flight.extend(message(14, &[]));
    let mut out = Vec::new();
    for chunk in flight.chunks(16384) {
        out.extend(record(22, version, chunk));
    }
    if stream.write_all(&out).await.is_err() {
        return;
    }
    // What the client sends next (the handshake is never finished), for at most 5 seconds.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        match legacy.afterwards {
            Afterwards::Answer => after_flight(&mut stream, legacy, version).await,
            Afterwards::Garbage => {
                let _ = stream.read(&mut buf).await;
                let noise: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 0x41) as u8 | 0x80).collect();
                let _ = stream.write_all(&noise).await;
            }
            Afterwards::Truncate => {
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(&[21, 3, 1, 0, 2, 2]).await;
            }
            Afterwards::Silence => {
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            }
        }
    })
    .await;
}

/// Read the client's records after the flight and answer heartbeats and early
/// ChangeCipherSpecs as `legacy` says; anything else ends the connection.
async fn after_flight(stream: &mut TcpStream, legacy: &Legacy, version: u16) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut keys_changed = false;
    loop {
        // A complete record?
        let need = buf.get(3..5).and_then(be16).map(|n| usize::from(n) + 5);
        let Some(n) = need.filter(|n| buf.len() >= *n) else {
            if buf.len() > 64 * 1024 {
                return;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
            continue;
        };
        let rec: Vec<u8> = buf.drain(..n).collect();
        let kind = rec.first().copied().unwrap_or(0);
        let body = rec.get(5..).unwrap_or_default();
        let reply = if keys_changed {
            // Everything after the ChangeCipherSpec is read with keys the client never had.
            Some(record(21, version, &[2, 20]))
        } else {
            match kind {
                20 if legacy.early_ccs => {
                    keys_changed = true;
                    None
                }
                20 => Some(record(21, version, &[2, 10])),
                24 => heartbeat_reply(legacy.heartbeat, body, version),
                _ => return,
            }
        };
        if let Some(reply) = reply {
            let fatal = reply.get(5) == Some(&2);
            if stream.write_all(&reply).await.is_err() || fatal {
                return;
            }
        }
    }
}

/// The answer to a heartbeat record `body`, if any.
fn heartbeat_reply(mode: LabHeartbeat, body: &[u8], version: u16) -> Option<Vec<u8>> {
    let claimed = body.get(1..3).and_then(be16).map_or(0, usize::from);
    let payload = body.get(3..).unwrap_or_default();
    match mode {
        LabHeartbeat::Absent => Some(record(21, version, &[2, 10])),
        // RFC 6520 §4: at least 16 bytes of padding follow the payload, else discard.
        LabHeartbeat::Patched if body.first() != Some(&1) || claimed + 16 > payload.len() => None,
        LabHeartbeat::Patched => {
            let mut m = vec![2];
            m.extend_from_slice(body.get(1..3).unwrap_or_default());
            m.extend_from_slice(payload.get(..claimed).unwrap_or_default());
            m.extend([0u8; 16]);
            Some(record(24, version, &m))
        }
        LabHeartbeat::Bleeding => {
            // The request's payload, then whatever lies past it in memory, up to the claim.
            let claimed = claimed.min(16384 - 19);
            let memory: Vec<u8> = payload
                .iter()
                .copied()
                .chain(LAB_SECRET.iter().copied().cycle())
                .take(claimed)
                .collect();
            let mut m = vec![2];
            m.extend_from_slice(&u16::try_from(claimed).unwrap_or(0).to_be_bytes());
            m.extend(memory);
            m.extend([0u8; 16]);
            Some(record(24, version, &m))
        }
    }
}
