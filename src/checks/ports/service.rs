//! Service identification on open ports: read what the service says first (a banner), or send
//! one small probe at a time, each on its own connection, with a byte cap and a timeout.
//!
//! The classifiers are pure functions over the bytes received (unit-tested on hand-built and
//! hostile input); [`identify`] does the I/O. The harmless line probes (Redis `PING`, Memcached
//! `version`) go before HTTP and TLS, because some services close the connection on an HTTP
//! request (Redis does) or stay silent on a ClientHello. A probe that gets no answer does not
//! end identification: the next probe is tried, with shorter waits, all silent waits together
//! bounded by one answer timeout. So a port that accepts and never answers (a tarpit) costs
//! one banner wait and one answer timeout, then is reported as an unknown, silent service.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most bytes read from a service in one exchange.
pub const READ_CAP: usize = 4096;
/// The most banner bytes kept as evidence.
pub const BANNER_CAP: usize = 256;

/// A service secgate can recognise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// SSH (`SSH-2.0-...` banner).
    Ssh,
    /// FTP (`220` greeting naming FTP, or on port 21).
    Ftp,
    /// SMTP (`220` greeting naming SMTP/ESMTP, or on a mail port).
    Smtp,
    /// Telnet (IAC option negotiation, or a login prompt on port 23).
    Telnet,
    /// MySQL or MariaDB (protocol-10 greeting or an error packet).
    Mysql,
    /// HTTP.
    Http,
    /// Elasticsearch (its HTTP API).
    Elasticsearch,
    /// TLS (a handshake or alert record in answer to a ClientHello).
    Tls,
    /// Redis (`PING`).
    Redis,
    /// Memcached (`version`).
    Memcached,
    /// PostgreSQL (answers an SSLRequest with `S` or `N`).
    Postgresql,
    /// MongoDB (answers an OP_MSG `hello`).
    Mongodb,
    /// Not recognised.
    Unknown,
}

impl Service {
    /// Lower-case name, as in reports.
    pub fn name(self) -> &'static str {
        match self {
            Service::Ssh => "ssh",
            Service::Ftp => "ftp",
            Service::Smtp => "smtp",
            Service::Telnet => "telnet",
            Service::Mysql => "mysql",
            Service::Http => "http",
            Service::Elasticsearch => "elasticsearch",
            Service::Tls => "tls",
            Service::Redis => "redis",
            Service::Memcached => "memcached",
            Service::Postgresql => "postgresql",
            Service::Mongodb => "mongodb",
            Service::Unknown => "unknown",
        }
    }

    /// A datastore that should never be reachable from outside.
    pub fn is_datastore(self) -> bool {
        matches!(
            self,
            Service::Redis
                | Service::Memcached
                | Service::Mongodb
                | Service::Elasticsearch
                | Service::Mysql
                | Service::Postgresql
        )
    }

    /// A protocol that carries credentials and data in clear text.
    pub fn is_cleartext(self) -> bool {
        matches!(self, Service::Telnet | Service::Ftp)
    }
}

/// What identification found on one port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identified {
    /// The service.
    pub service: Service,
    /// The first bytes the service sent (banner or answer to a probe), capped.
    pub banner: Option<Vec<u8>>,
    /// Whether the service answered a command that needs authentication without it
    /// (`Some(true)`), asked for authentication (`Some(false)`), or was not tested (`None`).
    pub unauthenticated: Option<bool>,
    /// What showed it, e.g. `PING answered +PONG` or `no answer within 1s`.
    pub note: String,
    /// The datastore whose default port this is, when the port answered only TLS (the service
    /// behind TLS was not identified).
    pub likely: Option<Service>,
    /// Identification could not run to its end (a connect failed): nothing is known.
    pub incomplete: bool,
    /// On a TLS port: whether HTTP answered inside the TLS session (`Some(true)`: HTTPS),
    /// did not (`Some(false)`), or was not asked (`None`: a datastore's default port).
    pub https: Option<bool>,
}

impl Identified {
    fn new(service: Service, banner: &[u8], note: impl Into<String>) -> Identified {
        Identified {
            service,
            banner: (!banner.is_empty()).then(|| sanitise(banner)),
            unauthenticated: None,
            note: note.into(),
            likely: None,
            incomplete: false,
            https: None,
        }
    }
}

/// The datastore that listens on `port` by default.
pub fn default_datastore(port: u16) -> Option<Service> {
    match port {
        6379 | 6380 => Some(Service::Redis),
        11211 => Some(Service::Memcached),
        27017..=27019 => Some(Service::Mongodb),
        9200 => Some(Service::Elasticsearch),
        3306 => Some(Service::Mysql),
        5432 => Some(Service::Postgresql),
        _ => None,
    }
}

/// Cut a banner to [`BANNER_CAP`] bytes and drop trailing line ends and NULs. Other bytes are
/// kept as they are: evidence keeps non-UTF-8 losslessly and reports escape control characters.
pub fn sanitise(bytes: &[u8]) -> Vec<u8> {
    let cut = bytes.get(..BANNER_CAP).unwrap_or(bytes);
    let end = cut
        .iter()
        .rposition(|b| !matches!(b, b'\r' | b'\n' | 0 | b' '))
        .map_or(0, |i| i + 1);
    cut.get(..end).unwrap_or_default().to_vec()
}

/// A probe sent to a service that does not speak first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `GET / HTTP/1.0`.
    Http,
    /// A TLS 1.2 ClientHello.
    Tls,
    /// Redis `PING`.
    Redis,
    /// Memcached `version` (then `stats`).
    Memcached,
    /// PostgreSQL SSLRequest.
    Postgresql,
    /// MongoDB OP_MSG `hello`.
    Mongodb,
}

/// The probe a well-known port's number suggests: the service registered there speaks second,
/// so identification sends this at once instead of waiting for a banner. `None` for ports whose
/// service speaks first (SSH, FTP, SMTP, Telnet, MySQL: their banner comes at once) and for
/// ports that suggest nothing (the full banner wait applies).
pub fn hint(port: u16) -> Option<Probe> {
    match port {
        6379 | 6380 | 26379 => Some(Probe::Redis),
        11211 => Some(Probe::Memcached),
        5432 | 5433 | 6432 => Some(Probe::Postgresql),
        27017..=27019 => Some(Probe::Mongodb),
        80 | 8080 | 8000 | 8008 | 8888 | 9200 => Some(Probe::Http),
        443 | 8443 | 9443 | 4443 | 7443 | 10443 | 993 | 995 | 636 | 990 | 465 | 6443 => {
            Some(Probe::Tls)
        }
        _ => None,
    }
}

/// The probes for a silent port, most likely first for its number.
pub fn probe_order(port: u16) -> Vec<Probe> {
    let mut order: Vec<Probe> = hint(port).into_iter().collect();
    // The line probes first: harmless, and Redis closes the connection on an HTTP request.
    for p in [
        Probe::Redis,
        Probe::Memcached,
        Probe::Http,
        Probe::Tls,
        Probe::Postgresql,
        Probe::Mongodb,
    ] {
        if !order.contains(&p) {
            order.push(p);
        }
    }
    order
}

/// The MongoDB request id secgate uses (echoed in `responseTo`).
const MONGO_REQUEST_ID: i32 = 0x5ec6_a7e0;

/// The bytes of a probe.
pub fn probe_bytes(probe: Probe, host: &str) -> Vec<u8> {
    match probe {
        Probe::Http => format!(
            "GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: {}\r\nAccept: */*\r\n\r\n",
            crate::engine::net::USER_AGENT
        )
        .into_bytes(),
        Probe::Tls => client_hello(),
        Probe::Redis => b"PING\r\n".to_vec(),
        Probe::Memcached => b"version\r\n".to_vec(),
        Probe::Postgresql => vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f],
        Probe::Mongodb => mongo_hello(),
    }
}

/// A minimal TLS 1.2 ClientHello (ECDHE with AES-GCM and ChaCha20, common groups and
/// signature schemes): enough for any TLS server to answer with a handshake or an alert.
fn client_hello() -> Vec<u8> {
    let suites: [u16; 6] = [0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8];
    let mut ext = Vec::new();
    // supported_groups: x25519, secp256r1, secp384r1
    ext.extend_from_slice(&[
        0x00, 0x0a, 0x00, 0x08, 0x00, 0x06, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18,
    ]);
    // ec_point_formats: uncompressed
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    // signature_algorithms
    let sigs: [u16; 8] = [
        0x0403, 0x0503, 0x0804, 0x0805, 0x0401, 0x0501, 0x0807, 0x0601,
    ];
    ext.extend_from_slice(&[0x00, 0x0d]);
    ext.extend_from_slice(&u16_be(sigs.len() * 2 + 2));
    ext.extend_from_slice(&u16_be(sigs.len() * 2));
    for s in sigs {
        ext.extend_from_slice(&s.to_be_bytes());
    }
    let mut body = vec![0x03, 0x03];
    body.extend((0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(11))); // random
    body.push(0); // session id
    body.extend_from_slice(&u16_be(suites.len() * 2));
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&u16_be(ext.len()));
    body.extend_from_slice(&ext);
    let mut hs = vec![0x01];
    let len = u32::try_from(body.len()).unwrap_or(0).to_be_bytes();
    hs.extend_from_slice(len.get(1..).unwrap_or_default());
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&u16_be(hs.len()));
    rec.extend_from_slice(&hs);
    rec
}

fn u16_be(n: usize) -> [u8; 2] {
    u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes()
}

/// OP_MSG `{hello: 1, $db: "admin"}`.
fn mongo_hello() -> Vec<u8> {
    let mut doc = Vec::new();
    doc.push(0x10); // int32
    doc.extend_from_slice(b"hello\0");
    doc.extend_from_slice(&1i32.to_le_bytes());
    doc.push(0x02); // string
    doc.extend_from_slice(b"$db\0");
    doc.extend_from_slice(&6i32.to_le_bytes());
    doc.extend_from_slice(b"admin\0");
    doc.push(0);
    let doc_len = i32::try_from(doc.len() + 4).unwrap_or(0);
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_le_bytes()); // flagBits
    body.push(0); // section kind 0
    body.extend_from_slice(&doc_len.to_le_bytes());
    body.extend_from_slice(&doc);
    let total = i32::try_from(body.len() + 16).unwrap_or(0);
    let mut msg = Vec::new();
    msg.extend_from_slice(&total.to_le_bytes());
    msg.extend_from_slice(&MONGO_REQUEST_ID.to_le_bytes());
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(&2013i32.to_le_bytes());
    msg.extend_from_slice(&body);
    msg
}

/// Classify what a service sent on its own (a banner).
pub fn classify_banner(port: u16, banner: &[u8]) -> Option<Identified> {
    let text = String::from_utf8_lossy(banner.get(..512).unwrap_or(banner));
    let first_line = text.lines().next().unwrap_or_default();
    let lower = first_line.to_ascii_lowercase();
    if banner.starts_with(b"SSH-") {
        return Some(Identified::new(Service::Ssh, banner, "SSH version banner"));
    }
    // Telnet option negotiation: IAC (255) then WILL/WONT/DO/DONT (251-254).
    if let [255, cmd, ..] = banner
        && (251..=254).contains(cmd)
    {
        return Some(Identified::new(
            Service::Telnet,
            banner,
            "Telnet option negotiation",
        ));
    }
    if let Some(version) = mysql_greeting(banner) {
        return Some(Identified::new(Service::Mysql, banner, version));
    }
    if lower.starts_with("220") {
        let smtp = ["smtp", "esmtp", "postfix", "exim", "sendmail", "mail"]
            .iter()
            .any(|w| lower.contains(w));
        let ftp = ["ftp", "filezilla", "pure-ftpd"]
            .iter()
            .any(|w| lower.contains(w));
        let service = match (ftp, smtp, port) {
            (true, false, _) => Service::Ftp,
            (false, true, _) => Service::Smtp,
            (_, _, 21 | 990 | 2121) => Service::Ftp,
            (_, _, 25 | 465 | 587 | 2525) => Service::Smtp,
            (true, true, _) => Service::Smtp,
            (false, false, _) => {
                return Some(Identified::new(
                    Service::Unknown,
                    banner,
                    "a 220 greeting naming neither FTP nor SMTP",
                ));
            }
        };
        return Some(Identified::new(
            service,
            banner,
            format!("{} greeting", service.name().to_ascii_uppercase()),
        ));
    }
    let all_lower = text.to_ascii_lowercase();
    if (port == 23 || port == 2323)
        && ["login", "username", "password", "telnet"]
            .iter()
            .any(|w| all_lower.contains(w))
    {
        return Some(Identified::new(
            Service::Telnet,
            banner,
            "login prompt on a Telnet port",
        ));
    }
    if banner.starts_with(b"HTTP/1.") {
        return Some(Identified::new(
            Service::Http,
            banner,
            "unsolicited HTTP response",
        ));
    }
    None
}

/// The server version of a MySQL protocol-10 greeting, or the message of its error packet.
pub fn mysql_greeting(b: &[u8]) -> Option<String> {
    let (header, rest) = b.split_at_checked(4)?;
    let [l0, l1, l2, seq] = <[u8; 4]>::try_from(header).ok()?;
    let len = usize::from(l0) | usize::from(l1) << 8 | usize::from(l2) << 16;
    if seq != 0 || !(5..=1024).contains(&len) {
        return None;
    }
    let payload = rest.get(..len.min(rest.len()))?;
    match payload.split_first()? {
        (10, after) => {
            let end = after.iter().position(|c| *c == 0)?;
            let version = after.get(..end)?;
            if version.is_empty()
                || !version.iter().all(|c| c.is_ascii_graphic() || *c == b' ')
                || !version.first()?.is_ascii_digit()
            {
                return None;
            }
            Some(format!(
                "MySQL greeting, version {}",
                String::from_utf8_lossy(version)
            ))
        }
        (0xff, after) => {
            // Error packet: 2-byte code, then the message (4.1+: '#' and a 5-byte state).
            let (_code, msg) = after.split_at_checked(2)?;
            let msg = match msg.strip_prefix(b"#") {
                Some(m) => m.get(5..)?,
                None => msg,
            };
            if msg.is_empty() || !msg.iter().all(|c| c.is_ascii() && !c.is_ascii_control()) {
                return None;
            }
            Some(format!(
                "MySQL error packet: {}",
                String::from_utf8_lossy(msg)
            ))
        }
        _ => None,
    }
}

/// Classify the answer to a probe. `None`: not this service (try the next probe).
pub fn classify_answer(probe: Probe, answer: &[u8]) -> Option<Identified> {
    match probe {
        Probe::Http => classify_http(answer),
        Probe::Tls => match answer {
            [0x16, 0x03, minor, ..] if *minor <= 0x04 => Some(Identified::new(
                Service::Tls,
                &[],
                "TLS handshake in answer to a ClientHello",
            )),
            [0x15, 0x03, minor, ..] if *minor <= 0x04 => Some(Identified::new(
                Service::Tls,
                &[],
                "TLS alert in answer to a ClientHello",
            )),
            _ => None,
        },
        Probe::Redis => {
            let line = first_line(answer);
            let mut id = Identified::new(Service::Redis, answer, "");
            if line == "+PONG" {
                id.unauthenticated = Some(true);
                id.note = "PING answered +PONG without authentication".into();
            } else if line.starts_with("-NOAUTH")
                || line.starts_with("-WRONGPASS")
                || line.starts_with("-DENIED")
                || (line.starts_with("-ERR") && line.contains("Redis"))
            {
                id.unauthenticated = Some(false);
                id.note = format!("PING refused: {line}");
            } else {
                return None;
            }
            id.banner = Some(sanitise(line.as_bytes()));
            Some(id)
        }
        Probe::Memcached => {
            let line = first_line(answer);
            let version = line.strip_prefix("VERSION ")?;
            if version.is_empty() || version.len() > 64 {
                return None;
            }
            Some(Identified::new(
                Service::Memcached,
                line.as_bytes(),
                format!("version {version}"),
            ))
        }
        Probe::Postgresql => match answer {
            [b'S'] => Some(Identified::new(Service::Postgresql, &[], POSTGRES_TLS)),
            [b'N'] => Some(Identified::new(
                Service::Postgresql,
                &[],
                "SSLRequest answered N (no TLS)",
            )),
            [b'E', rest @ ..] if rest.len() >= 4 => Some(Identified::new(
                Service::Postgresql,
                &[],
                "SSLRequest answered with an error message",
            )),
            _ => None,
        },
        Probe::Mongodb => {
            let (head, _) = answer.split_at_checked(16)?;
            let field = |i: usize| -> Option<i32> {
                Some(i32::from_le_bytes(head.get(i..i + 4)?.try_into().ok()?))
            };
            let (len, response_to, opcode) = (field(0)?, field(8)?, field(12)?);
            if response_to == MONGO_REQUEST_ID && (opcode == 2013 || opcode == 1) && len >= 16 {
                Some(Identified::new(
                    Service::Mongodb,
                    &[],
                    "OP_MSG hello answered",
                ))
            } else {
                None
            }
        }
    }
}

/// The note of a PostgreSQL server that offers TLS.
const POSTGRES_TLS: &str = "SSLRequest answered S (TLS offered)";

/// Whether a PostgreSQL port answered SSLRequest with `S` (it speaks TLS after it).
pub fn offers_tls(id: &Identified) -> bool {
    id.service == Service::Postgresql && id.note == POSTGRES_TLS
}

/// Whether the answer to `stats` lists statistics (memcached without authentication).
pub fn memcached_stats_open(answer: &[u8]) -> bool {
    answer.starts_with(b"STAT ")
}

fn first_line(b: &[u8]) -> String {
    let line = b.split(|c| *c == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(line.get(..200).unwrap_or(line))
        .trim_end_matches('\r')
        .to_string()
}

/// An HTTP response head: HTTP, or Elasticsearch when its API answers.
fn classify_http(answer: &[u8]) -> Option<Identified> {
    if !answer.starts_with(b"HTTP/") {
        return None;
    }
    let text = String::from_utf8_lossy(answer);
    let status_line = text.lines().next().unwrap_or_default().to_string();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let header = |name: &str| -> Option<String> {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let server = header("server");
    // mongod answers HTTP on its driver port with a plain-text hint (any version since 2.6).
    if body.contains("trying to access MongoDB over HTTP on the native driver port") {
        return Some(Identified::new(
            Service::Mongodb,
            status_line.as_bytes(),
            "answers HTTP with MongoDB's native-driver-port message",
        ));
    }
    // With security on, Elasticsearch leaves out X-elastic-product on unauthenticated answers
    // (elastic/elasticsearch#73434): its 401 is recognised by the security_exception body and
    // the challenges of its security realm (`Basic realm="security"`, `ApiKey`).
    let challenges: Vec<String> = head
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("www-authenticate")
                .then(|| v.trim().to_string())
        })
        .collect();
    let security_realm = challenges.iter().any(|c| {
        let c = c.to_ascii_lowercase();
        c.starts_with("basic realm=\"security\"") || c == "apikey"
    });
    let security_exception = compact(body).contains("\"type\":\"security_exception\"");
    let elastic = header("x-elastic-product")
        .is_some_and(|v| v.eq_ignore_ascii_case("elasticsearch"))
        || body.contains("You Know, for Search")
        || (body.contains("\"cluster_name\"") && body.contains("\"cluster_uuid\""))
        || (status == 401 && (security_exception || security_realm));
    let banner = match &server {
        Some(s) => format!("{status_line}; Server: {s}"),
        None => status_line.clone(),
    };
    if elastic {
        let mut id = Identified::new(Service::Elasticsearch, banner.as_bytes(), "");
        if status == 200 {
            id.unauthenticated = Some(true);
            id.note = "GET / answered the cluster information without authentication".into();
        } else {
            id.unauthenticated = Some(false);
            id.note = format!("GET / answered {status}");
        }
        return Some(id);
    }
    Some(Identified::new(
        Service::Http,
        banner.as_bytes(),
        format!("GET / answered {status}"),
    ))
}

/// `text` without ASCII whitespace (JSON spacing varies), from at most [`READ_CAP`] characters.
fn compact(text: &str) -> String {
    text.chars()
        .take(READ_CAP)
        .filter(|c| !c.is_ascii_whitespace())
        .collect()
}

/// Timeouts of identification.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Connect timeout.
    pub connect: Duration,
    /// How long to wait for a banner before probing.
    pub banner: Duration,
    /// How long to wait for an answer to a probe.
    pub answer: Duration,
}

enum Read {
    Data(Vec<u8>),
    Silent,
    Closed(&'static str),
}

/// How long a read may go on after the first byte (a service that trickles bytes is cut off).
const TRICKLE_LIMIT: Duration = Duration::from_millis(500);

/// Read until `cap` bytes, the end of the stream, or a pause: the first chunk may take up to
/// `first`, later ones up to a short pause (so a multi-packet banner is read whole), and all
/// of them together at most [`TRICKLE_LIMIT`] after the first.
async fn read_some<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    first: Duration,
    cap: usize,
) -> Read {
    let mut buf = vec![0u8; cap];
    let mut got = 0usize;
    let mut wait = first;
    let mut stop_at: Option<tokio::time::Instant> = None;
    while let Some(space) = buf.get_mut(got..).filter(|s| !s.is_empty()) {
        if let Some(at) = stop_at {
            wait = wait.min(at.saturating_duration_since(tokio::time::Instant::now()));
            if wait.is_zero() {
                break;
            }
        }
        match tokio::time::timeout(wait, stream.read(space)).await {
            Ok(Ok(0)) => {
                if got == 0 {
                    return Read::Closed("closed the connection without a byte");
                }
                break;
            }
            Ok(Ok(n)) => {
                got += n;
                stop_at.get_or_insert_with(|| tokio::time::Instant::now() + TRICKLE_LIMIT);
            }
            Ok(Err(e)) => {
                if got == 0 {
                    return Read::Closed(match e.kind() {
                        std::io::ErrorKind::ConnectionReset => "reset the connection",
                        _ => "failed the connection",
                    });
                }
                break;
            }
            Err(_) => {
                if got == 0 {
                    return Read::Silent;
                }
                break;
            }
        }
        wait = Duration::from_millis(150).min(first);
    }
    buf.truncate(got);
    Read::Data(buf)
}

/// Where identification connects: the scan's facade, under the permit of `host` (the
/// target's name, or the address for a range), one request of the family's budget each.
#[derive(Clone, Copy, Debug)]
pub struct Via<'a> {
    /// The family's view of the scan.
    pub cx: &'a crate::engine::Cx<'a>,
    /// The host whose connection permit each connection takes.
    pub host: &'a str,
}

type Held = (TcpStream, Option<tokio::sync::OwnedSemaphorePermit>);

async fn connect(via: Via<'_>, addr: SocketAddr) -> Result<Held, String> {
    via.cx
        .connect(via.host, &[addr])
        .await
        .map_err(|r| match r.kind {
            crate::model::ReasonKind::Timeout => "connect timed out".to_string(),
            _ => r.detail,
        })
}

/// The longest one probe waits for an answer: a third of the answer timeout (at least 300 ms,
/// or the whole timeout when it is shorter). All silent waits of one port together are bounded
/// by the answer timeout.
fn probe_wait(answer: Duration) -> Duration {
    let third = Duration::from_millis(u64::try_from((answer / 3).as_millis()).unwrap_or(u64::MAX));
    third.max(answer.min(Duration::from_millis(300)))
}

/// Identify the service on an open port: at most one banner read and six probes, each on its
/// own connection (and, on a TLS port, one HTTP request inside TLS). On a well-known port the
/// probe its number suggests ([`hint`]) goes first, at once; only a port that suggests nothing
/// waits for a banner first. A silent probe does not stop the search; silent waits together
/// take at most `t.answer`.
pub async fn identify(via: Via<'_>, addr: SocketAddr, t: Timeouts) -> Identified {
    let mut id = identify_inner(via, addr, t).await;
    if id.service == Service::Tls {
        id.likely = default_datastore(addr.port());
        if let Some(likely) = id.likely {
            id.note = format!(
                "{}; only TLS on the default port of {}",
                id.note,
                likely.name()
            );
        } else {
            let status = http_inside_tls(via, addr, t).await;
            id.https = Some(status.is_some());
            if let Some(line) = status {
                id.note = format!("{}; HTTP inside TLS answered {line}", id.note);
            }
        }
    }
    id
}

/// One `GET /` inside a TLS session (certificates not verified: this only asks whether the
/// service is HTTPS): the status line of the answer, or `None` when no HTTP answer came.
async fn http_inside_tls(via: Via<'_>, addr: SocketAddr, t: Timeouts) -> Option<String> {
    use rustls::pki_types::ServerName;
    let failures = std::sync::Arc::new(crate::engine::net::CertFailures::default());
    let config = crate::engine::net::tls_config(&[], true, failures);
    let name = match via.host.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(via.host.to_string()).ok()?,
    };
    let (_permit, stream) = crate::engine::net::permit_first(connect(via, addr).await.ok()?);
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = tokio::time::timeout(t.answer, connector.connect(name, stream))
        .await
        .ok()?
        .ok()?;
    let host = match addr.ip() {
        std::net::IpAddr::V6(ip) if via.host.parse::<std::net::IpAddr>().is_ok() => {
            format!("[{ip}]")
        }
        _ => via.host.to_string(),
    };
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        crate::engine::net::USER_AGENT
    );
    tokio::time::timeout(t.answer, tls.write_all(request.as_bytes()))
        .await
        .ok()?
        .ok()?;
    match read_some(&mut tls, probe_wait(t.answer), READ_CAP).await {
        Read::Data(answer) if answer.starts_with(b"HTTP/") => {
            Some(first_line(&answer).chars().take(80).collect())
        }
        _ => None,
    }
}

/// What one probe on its own connection got.
enum Tried {
    /// Identified.
    Found(Identified),
    /// An answer neither the probe's classifier nor the banner classifier recognises.
    Unrecognised,
    /// Nothing within the wait (how long it waited).
    Silent(Duration),
    /// The connection was closed or refused the data.
    Closed(&'static str),
    /// The connect failed: identification cannot go on.
    Failed(String),
}

/// Send `probe` on a new connection and classify the answer: as the probe's, else as a
/// banner (a service that speaks first answers any probe with its banner).
async fn try_probe(
    via: Via<'_>,
    addr: SocketAddr,
    probe: Probe,
    wait: Duration,
    t: Timeouts,
) -> Tried {
    let (_permit, mut stream) = match connect(via, addr).await {
        Ok(s) => crate::engine::net::permit_first(s),
        Err(e) => return Tried::Failed(e),
    };
    let host = addr.ip().to_string();
    if tokio::time::timeout(wait, stream.write_all(&probe_bytes(probe, &host)))
        .await
        .map_or(true, |r| r.is_err())
    {
        return Tried::Closed("does not accept data");
    }
    let started = tokio::time::Instant::now();
    match read_some(&mut stream, wait, READ_CAP).await {
        Read::Data(answer) => {
            if let Some(mut id) = classify_answer(probe, &answer) {
                if probe == Probe::Memcached {
                    id.unauthenticated = Some(memcached_stats(&mut stream, t.answer).await);
                    if id.unauthenticated == Some(true) {
                        id.note = format!("{}; stats answered without authentication", id.note);
                    }
                }
                return Tried::Found(id);
            }
            // An HTTP error to a line probe is left to the HTTP probe, which tells
            // Elasticsearch and MongoDB from a web server.
            match classify_banner(addr.port(), &answer) {
                Some(id) if !matches!(id.service, Service::Unknown | Service::Http) => {
                    Tried::Found(id)
                }
                _ => Tried::Unrecognised,
            }
        }
        Read::Silent => Tried::Silent(started.elapsed()),
        Read::Closed(why) => Tried::Closed(why),
    }
}

/// What the probes of one port got so far.
struct Search {
    /// Silent waits left.
    silence_left: Duration,
    silent: usize,
    unrecognised: usize,
    closed_note: Option<&'static str>,
}

impl Search {
    /// Count what a probe got; the identification when it ends the search.
    fn tally(&mut self, tried: Tried) -> Option<Identified> {
        match tried {
            Tried::Found(id) => return Some(id),
            Tried::Failed(e) => {
                return Some(Identified {
                    incomplete: true,
                    ..Identified::new(Service::Unknown, &[], e)
                });
            }
            Tried::Unrecognised => self.unrecognised += 1,
            Tried::Silent(waited) => {
                self.silent += 1;
                self.silence_left = self.silence_left.saturating_sub(waited);
            }
            Tried::Closed(why) => self.closed_note = Some(why),
        }
        None
    }
}

async fn identify_inner(via: Via<'_>, addr: SocketAddr, t: Timeouts) -> Identified {
    let port = addr.port();
    let unknown = |note: String, banner: &[u8]| Identified::new(Service::Unknown, banner, note);
    let failed = |note: String| Identified {
        incomplete: true,
        ..Identified::new(Service::Unknown, &[], note)
    };
    let wait = probe_wait(t.answer);
    let mut search = Search {
        silence_left: t.answer,
        silent: 0,
        unrecognised: 0,
        closed_note: None,
    };
    // A well-known port whose service speaks second: its probe at once, no banner wait.
    let hinted = hint(port);
    if let Some(probe) = hinted {
        let tried = try_probe(via, addr, probe, wait.min(search.silence_left), t).await;
        if let Some(id) = search.tally(tried) {
            return id;
        }
    } else {
        let (permit, mut stream) = match connect(via, addr).await {
            Ok(s) => crate::engine::net::permit_first(s),
            Err(e) => return failed(e),
        };
        match read_some(&mut stream, t.banner, READ_CAP).await {
            Read::Data(banner) => {
                return classify_banner(port, &banner).unwrap_or_else(|| {
                    unknown("sends a banner secgate does not recognise".into(), &banner)
                });
            }
            Read::Silent => {}
            Read::Closed(why) => search.closed_note = Some(why),
        }
        drop((stream, permit));
    }
    for probe in probe_order(port) {
        if search.silence_left.is_zero() {
            break;
        }
        if Some(probe) == hinted {
            continue;
        }
        let tried = try_probe(via, addr, probe, wait.min(search.silence_left), t).await;
        if let Some(id) = search.tally(tried) {
            return id;
        }
    }
    let Search {
        silent,
        unrecognised,
        closed_note,
        ..
    } = search;
    let each = crate::engine::net::secs(wait);
    let probes = |n: usize| format!("{n} probe{}", if n == 1 { "" } else { "s" });
    let note = match (silent, closed_note) {
        (0, why) if unrecognised > 0 => format!(
            "answers probes with nothing secgate recognises{}",
            why.map(|w| format!(" (or {w})")).unwrap_or_default()
        ),
        (0, why) => format!(
            "{} to every probe",
            why.unwrap_or("gave no recognisable answer")
        ),
        (n, None) => format!(
            "accepts connections but sends nothing, even to {} (up to {each} each)",
            probes(n)
        ),
        (n, Some(why)) => format!(
            "{why}, and gave no answer to {} (up to {each} each)",
            probes(n)
        ),
    };
    unknown(note, &[])
}

async fn memcached_stats(stream: &mut TcpStream, wait: Duration) -> bool {
    if tokio::time::timeout(wait, stream.write_all(b"stats\r\n"))
        .await
        .map_or(true, |r| r.is_err())
    {
        return false;
    }
    match read_some(stream, wait, READ_CAP).await {
        Read::Data(answer) => memcached_stats_open(&answer),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banner(port: u16, b: &[u8]) -> Option<Service> {
        classify_banner(port, b).map(|i| i.service)
    }

    #[test]
    fn classifies_banners() {
        assert_eq!(
            banner(2200, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
            Some(Service::Ssh)
        );
        assert_eq!(banner(2100, b"220 (vsFTPd 3.0.3)\r\n"), Some(Service::Ftp));
        assert_eq!(
            banner(2500, b"220 mx.lab.test ESMTP Postfix\r\n"),
            Some(Service::Smtp)
        );
        assert_eq!(banner(21, b"220 Welcome\r\n"), Some(Service::Ftp));
        assert_eq!(banner(25, b"220 Welcome\r\n"), Some(Service::Smtp));
        assert_eq!(banner(9999, b"220 Welcome\r\n"), Some(Service::Unknown));
        assert_eq!(
            banner(2323, &[255, 253, 24, 255, 253, 32]),
            Some(Service::Telnet)
        );
        assert_eq!(
            banner(23, b"Ubuntu 22.04\r\nlogin: "),
            Some(Service::Telnet)
        );
        assert_eq!(banner(8080, b"hello"), None);
        let mut greeting = vec![0x4a, 0, 0, 0, 10];
        greeting.extend_from_slice(b"8.0.36\0");
        greeting.extend_from_slice(&[1; 0x4a - 8]);
        let id = classify_banner(3306, &greeting).unwrap();
        assert_eq!(
            (id.service, id.note.as_str()),
            (Service::Mysql, "MySQL greeting, version 8.0.36")
        );
        let mut err = vec![0x30, 0, 0, 0, 0xff, 0x6a, 0x04];
        err.extend_from_slice(b"Host '10.0.0.9' is not allowed to connect");
        assert_eq!(banner(3306, &err), Some(Service::Mysql));
    }

    #[test]
    fn hostile_bytes_never_panic_or_misidentify() {
        let cases: &[&[u8]] = &[
            b"",
            &[0],
            &[255],
            &[0xff, 0xff, 0xff, 0x00, 10],
            &[5, 0, 0, 0, 10, b'8'],
            &[5, 0, 0, 1, 10, b'8', b'.', b'0', 0],
            &[0x10, 0, 0, 0, 0xff],
            &[0x16],
            &[0x16, 0x03],
        ];
        for c in cases {
            let _ = classify_banner(3306, c);
            for p in probe_order(1) {
                let _ = classify_answer(p, c);
            }
            assert_eq!(mysql_greeting(c), None, "{c:?}");
        }
        // Noise of every length.
        let mut x: u32 = 7;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x.to_le_bytes()[0]
            })
            .collect();
        for n in 0..256 {
            let _ = classify_banner(23, &noise[..n]);
            for p in probe_order(1) {
                let _ = classify_answer(p, &noise[n..n + 64]);
            }
        }
    }

    #[test]
    fn classifies_probe_answers() {
        let redis = classify_answer(Probe::Redis, b"+PONG\r\n").unwrap();
        assert_eq!(
            (redis.service, redis.unauthenticated),
            (Service::Redis, Some(true))
        );
        let locked =
            classify_answer(Probe::Redis, b"-NOAUTH Authentication required.\r\n").unwrap();
        assert_eq!(locked.unauthenticated, Some(false));
        assert_eq!(classify_answer(Probe::Redis, b"+OK\r\n"), None);
        let mc = classify_answer(Probe::Memcached, b"VERSION 1.6.21\r\n").unwrap();
        assert_eq!(
            (mc.service, mc.note.as_str()),
            (Service::Memcached, "version 1.6.21")
        );
        assert!(memcached_stats_open(b"STAT pid 1\r\nEND\r\n"));
        assert!(!memcached_stats_open(b"ERROR\r\n"));
        assert_eq!(
            classify_answer(Probe::Postgresql, b"S").unwrap().service,
            Service::Postgresql
        );
        assert_eq!(classify_answer(Probe::Postgresql, b"SN"), None);
        assert_eq!(
            classify_answer(Probe::Tls, &[0x15, 0x03, 0x03, 0, 2, 2, 40])
                .unwrap()
                .service,
            Service::Tls
        );
        let es = classify_answer(
            Probe::Http,
            b"HTTP/1.1 200 OK\r\nX-elastic-product: Elasticsearch\r\n\r\n{\"cluster_name\":\"c\"}",
        )
        .unwrap();
        assert_eq!(
            (es.service, es.unauthenticated),
            (Service::Elasticsearch, Some(true))
        );
        let http = classify_answer(
            Probe::Http,
            b"HTTP/1.1 404 Not Found\r\nServer: lab\r\n\r\n",
        )
        .unwrap();
        assert_eq!(http.service, Service::Http);
        assert_eq!(
            http.banner.as_deref(),
            Some(&b"HTTP/1.1 404 Not Found; Server: lab"[..])
        );
        let mut reply = vec![0u8; 16];
        reply[8..12].copy_from_slice(&MONGO_REQUEST_ID.to_le_bytes());
        reply[12..16].copy_from_slice(&2013i32.to_le_bytes());
        reply[0] = 16;
        assert_eq!(
            classify_answer(Probe::Mongodb, &reply).unwrap().service,
            Service::Mongodb
        );
        reply[8] ^= 1;
        assert_eq!(classify_answer(Probe::Mongodb, &reply), None);
    }

    #[test]
    fn recognises_datastores_that_answer_http() {
        // mongod's answer to HTTP on its driver port (any port).
        let mongo = classify_answer(
            Probe::Http,
            b"HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 85\r\n\r\nIt looks like you are trying to access MongoDB over HTTP on the native driver port.\r\n",
        )
        .unwrap();
        assert_eq!(mongo.service, Service::Mongodb);
        // Elasticsearch with security on: no X-elastic-product on the 401.
        let es = classify_answer(
            Probe::Http,
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"security\", charset=\"UTF-8\"\r\nWWW-Authenticate: ApiKey\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n{\"error\":{\"root_cause\":[{\"type\" : \"security_exception\",\"reason\":\"missing authentication credentials for REST request [/]\"}],\"type\":\"security_exception\"},\"status\":401}",
        )
        .unwrap();
        assert_eq!(
            (es.service, es.unauthenticated),
            (Service::Elasticsearch, Some(false))
        );
        // The body alone, or the challenge alone, is enough on a 401.
        let body_only =
            b"HTTP/1.1 401 Unauthorized\r\n\r\n{\"error\":{\"type\":\"security_exception\"}}";
        assert_eq!(
            classify_answer(Probe::Http, body_only).unwrap().service,
            Service::Elasticsearch
        );
        let apikey = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: ApiKey\r\n\r\n";
        assert_eq!(
            classify_answer(Probe::Http, apikey).unwrap().service,
            Service::Elasticsearch
        );
        // Any other Basic realm is a web server asking for a password.
        let web = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"admin\"\r\n\r\n";
        assert_eq!(
            classify_answer(Probe::Http, web).unwrap().service,
            Service::Http
        );
        assert_eq!(default_datastore(9200), Some(Service::Elasticsearch));
        assert_eq!(default_datastore(443), None);
    }

    #[test]
    fn probes_are_well_formed() {
        let hello = probe_bytes(Probe::Tls, "x");
        assert_eq!(&hello[..3], &[0x16, 0x03, 0x01]);
        assert_eq!(
            usize::from(u16::from_be_bytes([hello[3], hello[4]])),
            hello.len() - 5
        );
        let mongo = probe_bytes(Probe::Mongodb, "x");
        assert_eq!(
            i32::from_le_bytes(mongo[..4].try_into().unwrap()) as usize,
            mongo.len()
        );
        assert_eq!(probe_order(6379)[0], Probe::Redis);
        assert_eq!(probe_order(443)[0], Probe::Tls);
        // Unhinted: the line probes before HTTP and TLS.
        assert_eq!(
            probe_order(7000),
            [
                Probe::Redis,
                Probe::Memcached,
                Probe::Http,
                Probe::Tls,
                Probe::Postgresql,
                Probe::Mongodb
            ]
        );
        assert_eq!(probe_wait(Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(
            probe_wait(Duration::from_secs(5)),
            Duration::from_millis(1666)
        );
        assert_eq!(
            probe_wait(Duration::from_millis(200)),
            Duration::from_millis(200)
        );
        assert_eq!(
            probe_wait(Duration::from_millis(600)),
            Duration::from_millis(300)
        );
        assert_eq!(sanitise(b"SSH-2.0-x\r\n\0"), b"SSH-2.0-x");
        assert_eq!(sanitise(&[b'a'; 1000]).len(), BANNER_CAP);
    }
}
