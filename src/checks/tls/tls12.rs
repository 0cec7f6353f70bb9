//! Just enough TLS 1.2 to finish one handshake and ask for a renegotiation: ECDHE over x25519
//! with AES-128-GCM (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or its ECDSA twin), the extended
//! master secret when the server offers it, and record protection with the explicit nonce of
//! RFC 5288. rustls cannot renegotiate, so the probe for client-initiated renegotiation does
//! the handshake itself. The server's certificate and signature are not checked: nothing the
//! probe sends is secret, and it only watches what the server answers.
//!
//! The primitives are aws-lc-rs's (X25519, HMAC-SHA256, SHA-256, AES-GCM); only the TLS 1.2
//! PRF (RFC 5246 §5) and the record framing are written here.

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::{digest, hmac};

/// The suites the probe can finish a handshake with (SHA-256 PRF, AES-128-GCM, ECDHE).
pub const SUITES: [u16; 2] = [0xC02B, 0xC02F];

/// The TLS 1.2 PRF with SHA-256 (P_SHA256, RFC 5246 §5): `len` bytes.
pub fn prf(secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut label_seed = label.to_vec();
    label_seed.extend_from_slice(seed);
    let mut out = Vec::with_capacity(len + 32);
    let mut a = hmac::sign(&key, &label_seed).as_ref().to_vec();
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&a);
        ctx.update(&label_seed);
        out.extend_from_slice(ctx.sign().as_ref());
        a = hmac::sign(&key, &a).as_ref().to_vec();
    }
    out.truncate(len);
    out
}

/// SHA-256 of the handshake messages so far.
pub fn transcript_hash(transcript: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, transcript)
        .as_ref()
        .to_vec()
}

/// One direction's record protection (AES-128-GCM, RFC 5288).
pub struct Protection {
    key: LessSafeKey,
    iv: [u8; 4],
    seq: u64,
}

impl Protection {
    /// Keys from the key block slice for this direction.
    pub fn new(key: &[u8], iv: &[u8]) -> Option<Protection> {
        Some(Protection {
            key: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, key).ok()?),
            iv: iv.try_into().ok()?,
            seq: 0,
        })
    }

    fn nonce_aad(&self, explicit: [u8; 8], kind: u8, len: usize) -> Option<(Nonce, Aad<[u8; 13]>)> {
        let mut nonce = [0u8; 12];
        nonce.get_mut(..4)?.copy_from_slice(&self.iv);
        nonce.get_mut(4..)?.copy_from_slice(&explicit);
        let mut aad = [0u8; 13];
        aad.get_mut(..8)?.copy_from_slice(&self.seq.to_be_bytes());
        *aad.get_mut(8)? = kind;
        aad.get_mut(9..11)?.copy_from_slice(&[3, 3]);
        aad.get_mut(11..)?
            .copy_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
        Some((Nonce::assume_unique_for_key(nonce), Aad::from(aad)))
    }

    /// A protected record of `kind` carrying `plain`.
    pub fn seal(&mut self, kind: u8, plain: &[u8]) -> Option<Vec<u8>> {
        let explicit = self.seq.to_be_bytes();
        let (nonce, aad) = self.nonce_aad(explicit, kind, plain.len())?;
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(nonce, aad, &mut body)
            .ok()?;
        self.seq += 1;
        let mut record = vec![kind, 3, 3];
        record.extend_from_slice(&u16::try_from(8 + body.len()).ok()?.to_be_bytes());
        record.extend_from_slice(&explicit);
        record.extend(body);
        Some(record)
    }

    /// The plaintext of a protected record body of `kind`; none if it does not authenticate.
    pub fn open(&mut self, kind: u8, body: &[u8]) -> Option<Vec<u8>> {
        let (explicit, sealed) = body.split_at_checked(8)?;
        let plain_len = sealed.len().checked_sub(16)?;
        let (nonce, aad) = self.nonce_aad(explicit.try_into().ok()?, kind, plain_len)?;
        let mut buf = sealed.to_vec();
        let plain = self.key.open_in_place(nonce, aad, &mut buf).ok()?.to_vec();
        self.seq += 1;
        Some(plain)
    }
}

/// The keys of a finished key exchange.
pub struct Keys {
    /// The master secret.
    pub master: Vec<u8>,
    /// Client to server.
    pub client: Protection,
    /// Server to client.
    pub server: Protection,
}

/// Derive the master secret and the record keys. `ems`: the server agreed to the extended
/// master secret (RFC 7627), whose seed is the hash of the transcript through the
/// ClientKeyExchange.
pub fn keys(
    premaster: &[u8],
    ems: bool,
    transcript: &[u8],
    client_random: &[u8],
    server_random: &[u8],
) -> Option<Keys> {
    let master = if ems {
        prf(
            premaster,
            b"extended master secret",
            &transcript_hash(transcript),
            48,
        )
    } else {
        prf(
            premaster,
            b"master secret",
            &[client_random, server_random].concat(),
            48,
        )
    };
    let block = prf(
        &master,
        b"key expansion",
        &[server_random, client_random].concat(),
        40,
    );
    Some(Keys {
        client: Protection::new(block.get(..16)?, block.get(32..36)?)?,
        server: Protection::new(block.get(16..32)?, block.get(36..40)?)?,
        master,
    })
}

/// verify_data of a Finished message (`label`: `client finished` or `server finished`).
pub fn verify_data(master: &[u8], label: &[u8], transcript: &[u8]) -> Vec<u8> {
    prf(master, label, &transcript_hash(transcript), 12)
}

/// The x25519 public key of a TLS 1.2 ECDHE ServerKeyExchange body, if that is what it holds.
pub fn x25519_share(ske: &[u8]) -> Option<&[u8]> {
    let (head, rest) = ske.split_at_checked(4)?;
    if head != [3, 0, 29, 32] {
        return None;
    }
    rest.get(..32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prf_matches_the_published_test_vector() {
        // The TLS 1.2 PRF (SHA-256) test vector circulated on the IETF TLS list (used by
        // several TLS libraries' tests): the first 16 of 100 bytes.
        let secret = hex("9bbe436ba940f017b17652849a71db35");
        let seed = hex("a0ba9f936cda311827a6f796ffd5198c");
        let out = prf(&secret, b"test label", &seed, 100);
        assert_eq!(out.len(), 100);
        assert_eq!(&out[..16], &hex("e3f229ba727be17b8d122620557cd453")[..]);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn sealed_records_open_and_tampering_is_caught() {
        let mut tx = Protection::new(&[7; 16], &[1, 2, 3, 4]).unwrap();
        let mut rx = Protection::new(&[7; 16], &[1, 2, 3, 4]).unwrap();
        let rec = tx.seal(22, b"hello").unwrap();
        assert_eq!(rx.open(22, &rec[5..]).unwrap(), b"hello");
        let mut bad = tx.seal(22, b"again").unwrap();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(rx.open(22, &bad[5..]).is_none());
        assert!(rx.open(22, &[0; 10]).is_none());
    }

    #[test]
    fn reads_only_an_x25519_share() {
        let mut ske = vec![3, 0, 29, 32];
        ske.extend([9u8; 32]);
        ske.extend([0, 4, 0, 0, 0, 0]);
        assert_eq!(x25519_share(&ske), Some(&[9u8; 32][..]));
        ske[2] = 23;
        assert_eq!(x25519_share(&ske), None);
        assert_eq!(x25519_share(&[3, 0, 29, 32, 1]), None);
    }
}
