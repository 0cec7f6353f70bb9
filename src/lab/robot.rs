//! Scripted TLS 1.0–1.2 servers with static RSA key exchange, for the ROBOT probe
//! (`tls.vuln.robot`): each answers a ClientHello offering `TLS_RSA_WITH_*` suites with a
//! ServerHello, its RSA certificate and ServerHelloDone, then really decrypts the
//! ClientKeyExchange with its private key, checks the PKCS#1 v1.5 padding (RFC 5246 §7.4.7.1)
//! and answers as its [`RobotOracle`] says: uniformly, as a correct server does; with a
//! different alert for a bad padding (a strong oracle); differently only for a wrong version
//! (a weak oracle); inconsistently (noise); or with garbage, half a record or silence.
//!
//! The key is [`TEST_ONLY_RSA_KEY_PEM`], fixed so that tests do not wait for an RSA key
//! generation in a debug build. It is published here and protects nothing: it is for the lab
//! only. The RSA decryption is `num-bigint`'s modular exponentiation (with the CRT), which is
//! not constant time: fine for a lab server whose key is public anyway.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use num_bigint::BigUint;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{LabServer, accept_loop};

/// The longest one connection is served.
const CONN_LIMIT: Duration = Duration::from_secs(10);

/// The RSA key-exchange suites it accepts, in its order.
pub const ROBOT_SUITES: [u16; 3] = [0x009C, 0x002F, 0x0035];

/// How the server answers a ClientKeyExchange (followed by ChangeCipherSpec and Finished).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RobotOracle {
    /// As a correct server: whatever the padding, it goes on with a random premaster secret,
    /// and the client's Finished fails (alert bad_record_mac).
    Uniform,
    /// A block that does not start with `00 02`, or has no 0x00 separator, gets alert
    /// decrypt_error; any other goes on (alert bad_record_mac): a strong oracle.
    Strong,
    /// A conformant block with a wrong version number makes it close the connection without
    /// an alert; any other gets bad_record_mac: a weak oracle.
    Weak,
    /// The first connection whose block is not conformant gets alert decrypt_error, every
    /// other bad_record_mac: an answer that does not repeat.
    Noisy,
    /// Answers the ClientKeyExchange with 1 KiB of bytes that are not TLS records.
    Garbage,
    /// Answers it with half an alert record, then closes.
    Truncate,
    /// Reads it and says nothing (until the client hangs up or the 10-second limit).
    Silence,
}

/// TEST-ONLY RSA-2048 key of the lab's ROBOT servers (PKCS#8). Published in the source, so it
/// protects nothing: never use it outside the lab.
pub const TEST_ONLY_RSA_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQC6/03TC80zQnqs
IIhawoVgoUkWODfZIsiYPrs5HwpaZhL00msxM1DjonG641EzLOgdUfvZMuZduWd5
mJkc9ppx7OSlLU9sZI1VZDLJSuBRduOv/cIdFeNBcdly0AC3oH0GVjDlwdH/1QVM
3kBWJfLpUHppHONN3xPbkuMkXuyyNtEfuBoXBMNiy3KcsdAfEsa7g3BpQnasm88C
HgF5TOLNcVong26qPiDBS/hnmAxqD550f+mo/HYstBBJ/Y13GchX4vmvOnhRZZqh
/U1cP8X3I7rMHVNhqmcb//w7ZQLcrRQJguwOasQWvb+Mt/KlD5sk2VDeQnpSPx5w
w0E3lPw/AgMBAAECggEAGlK9GFPld21Iynkr6KbQUrlxieSxC+pnFXNjNJfHg9Ex
ovAJ8duY6+pemyHLuOn95L65NqqBHjlutQHDr/2Q4S+pQg0+THJdKOOZeJeHO0CC
rbAJhsGhg4FszEo2h6LaZq10ZatijeJlRBxXLylZZ/mRucE8yCX6bCLhwalxJWbv
at/6LJhIz+JAmnOtpFaEhUKdC6Hj4rzUd8daPWmj8D0Kbeua6lkTIAaf7PeMDrwb
KKRejtTaf5m7VPJ7ydhcBP8vb3nJ71Cl3n226aBFl2O5p3sJLLiWFpNrXeeWcFkx
rUYu52C0Retqh5u/0sQPhLrTUOFIugS3fueB526s7QKBgQDg3/j6aqgNGFD9YAhV
i0TXE7eJ5i9chOJawdYM1bObhEZZA5VYhsIjt35/zWZQP4Jfw0RavTtKFRAvjGKI
CJARJCzDOkOz1nmpoIQ9Xwk98qGK97bPAdbimmkyF9DY3bIEerSGwDo6q7cQWoLs
SUv8+Y5bAxU+zvbvWXt8EanCcwKBgQDU4TVDtB6Dz34CnQNiL3WA4w0WsQ6JdBym
1bch1clUjaPAFV/nfllp6M1KxaLoyv4v3gv6Dg4Vc0aA+SkQDPQxZkPcOdoa5u7Z
mHChHyi0yVMb8RLuqRAc+8EqB/g30R8bMxJD6Fjds+dwsL/epiKYar7hm4DhIBgY
IAj+MC8QBQKBgGQl+1lzFKK4WKFvGmcWnjL3Gf91H1Sh7bkjqHOQ3Ot+zmGoQePq
KB4GA3VhgZZtol+JtDCBJB2LIek7KUqSHa80oCbWFP7LnuVXkm1OnOwU2bLtPWIV
3KCQyhbAGofqu/RYvXthss0cWmwTE0muHwRsE+Uei2Cshbb08BTCPQtXAoGAFsX8
78A+H3W8EkV/ziorlN01Uj8gwf2k7wgf7kOzpRL9+JeQyfAPWrAn/h7Efcjxhmdn
upl0UkEhwrxk8y2flgVNryqVNZmM5cRUEDiIH0cGWA/jKZr2eVNJZ9iwajA59qvx
AUjC8PzE/p45+HSncMzCnNoI4IyRZ0tOCvtWnY0CgYAD1Q5xGvvSkHal8Jbf4z58
fIEPLCwTgjEz0bWqt6NYf0YaMlR9mJPbWGHi2yeQP3durxSH24evQ9XXRPSNhJDL
x3g9xnPsyaPUX678xHKckWD1wR5NtNgfJXSdr3I+G/6//oT3DTggvNj8TDZRQSCD
uffAJY4HeCTLfWjKZLGVmw==
-----END PRIVATE KEY-----
";

// The CRT parts of the same TEST-ONLY key (prime1, prime2, exponent1, exponent2 and
// coefficient of `openssl rsa -text`), lab only.
const TEST_ONLY_P: &str = concat!(
    "e0dff8fa6aa80d1850fd6008558b44d713b789e62f5c84e25ac1d60cd5b39b84465903955886c223b77e7fcd",
    "66503f825fc3445abd3b4a15102f8c6288089011242cc33a43b3d679a9a0843d5f093df2a18af7b6cf01d6e2",
    "9a693217d0d8ddb2047ab486c03a3aabb7105a82ec494bfcf98e5b03153ecef6ef597b7c11a9c273",
);

const TEST_ONLY_Q: &str = concat!(
    "d4e13543b41e83cf7e029d03622f7580e30d16b10e89741ca6d5b721d5c9548da3c0155fe77e5969e8cd4ac5",
    "a2e8cafe2fde0bfa0e0e15734680f929100cf4316643dc39da1ae6eed99870a11f28b4c9531bf112eea9101c",
    "fbc12a07f837d11f1b331243e858ddb3e770b0bfdea622986abee19b80e12018182008fe302f1005",
);

const TEST_ONLY_DP: &str = concat!(
    "6425fb597314a2b858a16f1a67169e32f719ff751f54a1edb923a87390dceb7ece61a841e3ea281e06037561",
    "81966da25f89b43081241d8b21e93b294a921daf34a026d614fecb9ee557926d4e9cec14d9b2ed3d6215dca0",
    "90ca16c01a87eabbf458bd7b61b2cd1c5a6c131349ae1f046c13e51e8b60ac85b6f4f014c23d0b57",
);

const TEST_ONLY_DQ: &str = concat!(
    "16c5fcefc03e1f75bc12457fce2a2b94dd35523f20c1fda4ef081fee43b3a512fdf89790c9f00f5ab027fe1e",
    "c47dc8f1866767ba9974524121c2bc64f32d9f96054daf2a9535998ce5c4541038881f4706580fe3299af679",
    "534967d8b06a3039f6abf10148c2f0fcc4fe9e39f874a770ccc29cda08e08c91674b4e0afb569d8d",
);

const TEST_ONLY_QINV: &str = concat!(
    "03d50e711afbd29076a5f096dfe33e7c7c810f2c2c13823133d1b5aab7a3587f461a32547d9893db5861e2db",
    "27903f776eaf1487db87af43d5d744f48d8490cbc7783dc673ecc9a3d45faefcc4729c9160f5c11e4db4d81f",
    "25749daf723e1bfebffe84f70d3820bcd8fc4c3651412083b9f7c0258e077824cb7d68ca64b1959b",
);

/// The private half of [`TEST_ONLY_RSA_KEY_PEM`], for the CRT.
struct TestKey {
    p: BigUint,
    q: BigUint,
    dp: BigUint,
    dq: BigUint,
    qinv: BigUint,
    n: BigUint,
    k: usize,
}

fn big(hex: &str) -> Option<BigUint> {
    BigUint::parse_bytes(hex.as_bytes(), 16)
}

impl TestKey {
    fn load() -> Option<TestKey> {
        let (p, q) = (big(TEST_ONLY_P)?, big(TEST_ONLY_Q)?);
        let n = &p * &q;
        Some(TestKey {
            k: n.to_bytes_be().len(),
            dp: big(TEST_ONLY_DP)?,
            dq: big(TEST_ONLY_DQ)?,
            qinv: big(TEST_ONLY_QINV)?,
            p,
            q,
            n,
        })
    }

    /// `c^d mod n`, `k` bytes; none when `c` is not a ciphertext for this key.
    fn decrypt(&self, c: &[u8]) -> Option<Vec<u8>> {
        if c.len() != self.k {
            return None;
        }
        let c = BigUint::from_bytes_be(c);
        if c >= self.n {
            return None;
        }
        let m1 = c.modpow(&self.dp, &self.p);
        let m2 = c.modpow(&self.dq, &self.q);
        let diff = (&m1 + &self.p - (&m2 % &self.p)) % &self.p;
        let h = (&self.qinv * diff) % &self.p;
        let m = (m2 + h * &self.q).to_bytes_be();
        let mut out = vec![0u8; self.k.checked_sub(m.len())?];
        out.extend(m);
        Some(out)
    }
}

/// What the PKCS#1 v1.5 check of a decrypted premaster secret block found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// `00 02`, at least 8 padding bytes, 0x00, 48 bytes starting with the client's version.
    Conformant,
    /// It does not start with `00 02`.
    BadPrefix,
    /// No 0x00 after the padding.
    NoSeparator,
    /// The 0x00 is where the secret would not be 48 bytes (or the padding under 8).
    BadLength,
    /// Conformant but for the version number.
    BadVersion,
}

/// The PKCS#1 v1.5 check of block `m` for a ClientHello of `client_version`.
pub fn check_padding(m: &[u8], client_version: u16) -> Padding {
    if m.get(..2) != Some(&[0, 2][..]) {
        return Padding::BadPrefix;
    }
    let Some(zero) = m.iter().skip(2).position(|b| *b == 0).map(|i| i + 2) else {
        return Padding::NoSeparator;
    };
    if zero < 10 || m.len().saturating_sub(zero + 1) != 48 {
        return Padding::BadLength;
    }
    if m.get(zero + 1..zero + 3) != Some(&client_version.to_be_bytes()[..]) {
        return Padding::BadVersion;
    }
    Padding::Conformant
}

/// The lab certificate for [`TEST_ONLY_RSA_KEY_PEM`], self-signed, for `names`.
pub fn robot_certificate(names: &[&str]) -> Result<CertificateDer<'static>, String> {
    let key =
        rcgen::KeyPair::from_pem_and_sign_algo(TEST_ONLY_RSA_KEY_PEM, &rcgen::PKCS_RSA_SHA256)
            .map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_string()).collect::<Vec<_>>())
            .map_err(|e| e.to_string())?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().copied().unwrap_or("robot.test"),
    );
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok(cert.der().clone())
}

struct State {
    oracle: RobotOracle,
    key: TestKey,
    cert: CertificateDer<'static>,
    noise_spent: AtomicBool,
    key_exchanges: Arc<AtomicUsize>,
}

/// A running ROBOT lab server.
#[derive(Debug)]
pub struct RobotServer {
    /// The server (dropping it stops it).
    pub server: LabServer,
    /// ClientKeyExchange messages received so far (one per ROBOT probe connection).
    pub key_exchanges: Arc<AtomicUsize>,
}

/// Serve a ROBOT lab server for `names` on `listener`.
pub fn serve_robot(
    listener: TcpListener,
    oracle: RobotOracle,
    names: &[&str],
) -> Result<RobotServer, String> {
    let key_exchanges = Arc::new(AtomicUsize::new(0));
    let state = Arc::new(State {
        oracle,
        key: TestKey::load().ok_or("the lab's RSA key does not parse")?,
        cert: robot_certificate(names)?,
        noise_spent: AtomicBool::new(false),
        key_exchanges: key_exchanges.clone(),
    });
    let server = accept_loop(listener, Some(CONN_LIMIT), move |stream| {
        let state = state.clone();
        async move { robot_conn(stream, &state).await }
    });
    Ok(RobotServer {
        server,
        key_exchanges,
    })
}

fn be16(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
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

/// One record from `stream` (type, body), keeping what follows in `buf`; none on close,
/// error, a record over 18 KiB or 5 seconds without it.
async fn read_record(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(n) = buf.get(3..5).and_then(be16).map(usize::from) {
            if n > 16384 + 2048 {
                return None;
            }
            if buf.len() >= n + 5 {
                let rec: Vec<u8> = buf.drain(..n + 5).collect();
                return Some((*rec.first()?, rec.get(5..)?.to_vec()));
            }
        }
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(chunk.get(..n)?),
            _ => return None,
        }
    }
}

/// Version and suites of a ClientHello message body (bounded; none on anything unexpected).
fn parse_hello(body: &[u8]) -> Option<(u16, Vec<u16>)> {
    if body.first() != Some(&1) {
        return None;
    }
    let version = be16(body.get(4..6)?)?;
    let sid = usize::from(*body.get(38)?);
    let at = 39 + sid;
    let n = usize::from(be16(body.get(at..at + 2)?)?);
    let suites = body
        .get(at + 2..at + 2 + n)?
        .chunks(2)
        .filter_map(be16)
        .collect();
    Some((version, suites))
}

async fn robot_conn(mut stream: TcpStream, st: &State) {
    let mut buf = Vec::new();
    let Some((22, body)) = read_record(&mut stream, &mut buf).await else {
        return;
    };
    let Some((client_version, suites)) = parse_hello(&body) else {
        return;
    };
    let alert = |d: u8, v: u16| record(21, v, &[2, d]);
    let version = client_version.min(0x0303);
    if version < 0x0301 {
        let _ = stream.write_all(&alert(70, 0x0301)).await;
        return;
    }
    let Some(suite) = ROBOT_SUITES.iter().copied().find(|s| suites.contains(s)) else {
        let _ = stream.write_all(&alert(40, version)).await;
        return;
    };
    let mut sh = version.to_be_bytes().to_vec();
    let mut random = [0u8; 32];
    let _ = aws_lc_rs::rand::fill(&mut random);
    sh.extend_from_slice(&random);
    sh.push(0);
    sh.extend_from_slice(&suite.to_be_bytes());
    sh.push(0);
    if suites.contains(&0x00FF) {
        sh.extend_from_slice(&[0, 5, 0xff, 0x01, 0, 1, 0]);
    }
    let mut flight = message(2, &sh);
    let mut certs = u24(st.cert.len());
    certs.extend_from_slice(&st.cert);
    let mut body = u24(certs.len());
    body.extend(certs);
    flight.extend(message(11, &body));
    flight.extend(message(14, &[]));
    let mut out = Vec::new();
    for chunk in flight.chunks(16384) {
        out.extend(record(22, version, chunk));
    }
    if stream.write_all(&out).await.is_err() {
        return;
    }
    // The ClientKeyExchange; anything else (a heartbeat, an early ChangeCipherSpec) ends it.
    let Some((kind, cke)) = read_record(&mut stream, &mut buf).await else {
        return;
    };
    let encrypted = (kind == 22 && cke.first() == Some(&16))
        .then(|| cke.get(6..))
        .flatten()
        .filter(|c| cke.get(4..6).and_then(be16).map(usize::from) == Some(c.len()));
    let Some(encrypted) = encrypted else {
        let _ = stream.write_all(&alert(10, version)).await;
        return;
    };
    st.key_exchanges.fetch_add(1, Ordering::SeqCst);
    match st.oracle {
        RobotOracle::Garbage => {
            let noise: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 0x41) as u8 | 0x80).collect();
            let _ = stream.write_all(&noise).await;
            return;
        }
        RobotOracle::Truncate => {
            let _ = stream.write_all(&[21, 3, 3, 0, 2, 2]).await;
            return;
        }
        RobotOracle::Silence => {
            let mut chunk = [0u8; 1024];
            while let Ok(n) = stream.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
            }
            return;
        }
        _ => {}
    }
    let padding = match st.key.decrypt(encrypted) {
        Some(m) => check_padding(&m, client_version),
        None => Padding::BadPrefix,
    };
    // The ChangeCipherSpec and Finished that follow, read before answering so that closing
    // never resets the connection over unread bytes.
    for _ in 0..2 {
        if read_record(&mut stream, &mut buf).await.is_none() {
            break;
        }
    }
    let bad_record_mac = Some(20u8);
    let answer = match (st.oracle, padding) {
        (RobotOracle::Strong, Padding::BadPrefix | Padding::NoSeparator) => Some(51),
        (RobotOracle::Weak, Padding::BadVersion) => None,
        (RobotOracle::Noisy, p)
            if p != Padding::Conformant && !st.noise_spent.swap(true, Ordering::SeqCst) =>
        {
            Some(51)
        }
        _ => bad_record_mac,
    };
    if let Some(d) = answer {
        let _ = stream.write_all(&alert(d, version)).await;
    }
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tls::robot::{Variant, rsa_key};

    #[test]
    fn the_certificate_carries_the_test_key_and_blocks_decrypt_to_their_variant() {
        let key = TestKey::load().unwrap();
        let public = rsa_key(&robot_certificate(&["robot.test"]).unwrap()).unwrap();
        assert_eq!(BigUint::from_bytes_be(&public.n), key.n);
        assert_eq!(public.len(), 256);
        let fill = vec![0x3c; 1024];
        let expect = [
            (Variant::Correct, Padding::Conformant),
            (Variant::WrongFirstBytes, Padding::BadPrefix),
            (Variant::WrongZeroPosition, Padding::BadLength),
            (Variant::NoZero, Padding::NoSeparator),
            (Variant::WrongVersion, Padding::BadVersion),
        ];
        for (v, padding) in expect {
            let block = v.block(256, 0x0303, &fill).unwrap();
            let c = public.encrypt(&block).unwrap();
            let m = key.decrypt(&c).unwrap();
            assert_eq!(m, block, "{v:?}");
            assert_eq!(check_padding(&m, 0x0303), padding, "{v:?}");
        }
        assert!(key.decrypt(&[0xff; 256]).is_none());
        assert!(key.decrypt(&[1; 10]).is_none());
    }
}
