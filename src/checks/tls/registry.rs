//! The cipher-suite registry (`checks/lists/ciphers.toml`, the IANA registry as data), how each
//! suite is classified, and the named groups the probes offer.

use std::sync::LazyLock;

use serde::Deserialize;

use super::wire::{SkeLayout, Version};

/// One IANA cipher suite.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// The two-byte code point.
    pub code: u16,
    /// IANA name, e.g. `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`.
    pub name: String,
    /// OpenSSL's name, where it differs from the IANA one.
    #[serde(default)]
    pub openssl: Option<String>,
    /// Key exchange (`RSA`, `DHE_RSA`, `ECDHE_ECDSA`, `DH_anon`, `TLS13`, ...).
    pub kex: String,
    /// Bulk cipher (`AES_128_GCM`, `3DES_EDE_CBC`, `NULL`, ...).
    pub enc: String,
    /// MAC or PRF hash.
    pub mac: String,
    /// Lowest protocol version that can negotiate it: `ssl3`, `tls12` or `tls13`.
    pub min: String,
}

/// Why a suite is weak, in the words of `tls.cipher.weak`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weakness {
    /// No encryption.
    Null,
    /// No authentication of the server.
    Anonymous,
    /// Export-grade (40/56-bit) keys or key exchange.
    Export,
    /// RC4 stream cipher.
    Rc4,
    /// Single DES (56-bit).
    Des,
    /// Triple DES (64-bit blocks: Sweet32).
    TripleDes,
    /// IDEA (64-bit blocks).
    Idea,
    /// RC2.
    Rc2,
}

impl Weakness {
    /// Short label for evidence.
    pub fn label(self) -> &'static str {
        match self {
            Weakness::Null => "NULL",
            Weakness::Anonymous => "anonymous",
            Weakness::Export => "EXPORT",
            Weakness::Rc4 => "RC4",
            Weakness::Des => "DES",
            Weakness::TripleDes => "3DES",
            Weakness::Idea => "IDEA",
            Weakness::Rc2 => "RC2",
        }
    }
}

impl Suite {
    /// Whether this is a TLS 1.3 suite.
    pub fn is_tls13(&self) -> bool {
        self.min == "tls13"
    }

    /// Whether `version` can negotiate this suite.
    pub fn usable_with(&self, version: Version) -> bool {
        match version {
            Version::Tls13 => self.is_tls13(),
            Version::Tls12 => !self.is_tls13(),
            Version::Ssl3 | Version::Tls10 | Version::Tls11 => self.min == "ssl3",
        }
    }

    /// The first reason the suite is weak, if any.
    pub fn weakness(&self) -> Option<Weakness> {
        let enc = self.enc.as_str();
        if enc == "NULL" {
            Some(Weakness::Null)
        } else if self.kex.contains("anon") {
            Some(Weakness::Anonymous)
        } else if self.kex.contains("EXPORT") || enc.ends_with("_40") || enc.starts_with("DES40") {
            Some(Weakness::Export)
        } else if enc.starts_with("RC4") {
            Some(Weakness::Rc4)
        } else if enc.starts_with("3DES") {
            Some(Weakness::TripleDes)
        } else if enc.starts_with("DES") {
            Some(Weakness::Des)
        } else if enc.starts_with("IDEA") {
            Some(Weakness::Idea)
        } else if enc.starts_with("RC2") {
            Some(Weakness::Rc2)
        } else {
            None
        }
    }

    /// Whether the key exchange is ephemeral (forward secret).
    pub fn forward_secret(&self) -> bool {
        self.is_tls13()
            || self.kex.starts_with("DHE")
            || self.kex.starts_with("ECDHE")
            || self.kex == "PSK_DHE"
            || self.kex == "ECCPWD"
    }

    /// Whether the key exchange is finite-field ephemeral Diffie-Hellman (its group size matters).
    pub fn is_dhe(&self) -> bool {
        self.kex.starts_with("DHE") || self.kex == "PSK_DHE" || self.kex.starts_with("DH_anon")
    }

    /// Whether the key exchange is ephemeral elliptic-curve Diffie-Hellman.
    pub fn is_ecdhe(&self) -> bool {
        self.kex.starts_with("ECDHE") || self.kex == "ECDH_anon"
    }

    /// How its ServerKeyExchange is laid out, for the (EC)DHE key exchanges whose group the
    /// probe reads; the PSK ones start with an identity hint (RFC 4279 §3, RFC 5489).
    pub fn ske_layout(&self) -> Option<SkeLayout> {
        let psk = self.kex.contains("PSK");
        match (self.is_dhe(), self.is_ecdhe(), psk) {
            (true, _, false) => Some(SkeLayout::Dh),
            (true, _, true) => Some(SkeLayout::DhPsk),
            (_, true, false) => Some(SkeLayout::Ecdh),
            (_, true, true) => Some(SkeLayout::EcdhPsk),
            _ => None,
        }
    }

    /// Whether the bulk cipher is a block cipher in CBC mode.
    pub fn is_cbc(&self) -> bool {
        self.enc.ends_with("_CBC") || self.enc.contains("_CBC_")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    suite: Vec<Suite>,
}

/// The embedded registry file.
pub const SOURCE: &str = include_str!("../../../checks/lists/ciphers.toml");

static SUITES: LazyLock<Result<Vec<Suite>, String>> = LazyLock::new(|| parse(SOURCE));

/// Parse a registry file: codes must be unique, `min` one of the known values.
pub fn parse(text: &str) -> Result<Vec<Suite>, String> {
    let file: SuiteFile =
        toml::from_str(text).map_err(|e| format!("checks/lists/ciphers.toml: {e}"))?;
    let mut seen = std::collections::HashSet::new();
    for s in &file.suite {
        if !seen.insert(s.code) {
            return Err(format!("duplicate suite 0x{:04X}", s.code));
        }
        if !matches!(s.min.as_str(), "ssl3" | "tls12" | "tls13") {
            return Err(format!("0x{:04X}: unknown min '{}'", s.code, s.min));
        }
    }
    Ok(file.suite)
}

/// Every suite (empty if the embedded file is malformed, which a unit test rules out).
pub fn suites() -> &'static [Suite] {
    match &*SUITES {
        Ok(s) => s,
        Err(_) => &[],
    }
}

/// Look a suite up by code.
pub fn suite(code: u16) -> Option<&'static Suite> {
    suites().iter().find(|s| s.code == code)
}

/// The IANA name of a code, or its hex form for an unassigned one.
pub fn suite_name(code: u16) -> String {
    suite(code).map_or_else(|| format!("0x{code:04X}"), |s| s.name.clone())
}

/// The codes a ClientHello for `version` offers.
pub fn candidates(version: Version) -> Vec<u16> {
    suites()
        .iter()
        .filter(|s| s.usable_with(version))
        .map(|s| s.code)
        .collect()
}

/// Named groups (IANA "TLS Supported Groups"): code, name, and whether it is finite-field DH.
pub const GROUPS: &[(u16, &str)] = &[
    (29, "x25519"),
    (23, "secp256r1"),
    (24, "secp384r1"),
    (25, "secp521r1"),
    (30, "x448"),
    (0x11EC, "X25519MLKEM768"),
    (0x11EB, "SecP256r1MLKEM768"),
    (0x11ED, "SecP384r1MLKEM1024"),
    (0x0200, "MLKEM512"),
    (0x0201, "MLKEM768"),
    (0x0202, "MLKEM1024"),
    (26, "brainpoolP256r1"),
    (27, "brainpoolP384r1"),
    (28, "brainpoolP512r1"),
    (31, "brainpoolP256r1tls13"),
    (32, "brainpoolP384r1tls13"),
    (33, "brainpoolP512r1tls13"),
    (34, "GC256A"),
    (35, "GC256B"),
    (36, "GC256C"),
    (37, "GC256D"),
    (38, "GC512A"),
    (39, "GC512B"),
    (40, "GC512C"),
    (41, "curveSM2"),
    (22, "secp256k1"),
    (21, "secp224r1"),
    (20, "secp224k1"),
    (19, "secp192r1"),
    (18, "secp192k1"),
    (17, "secp160r2"),
    (16, "secp160r1"),
    (15, "secp160k1"),
    (14, "sect571r1"),
    (13, "sect571k1"),
    (12, "sect409r1"),
    (11, "sect409k1"),
    (10, "sect283r1"),
    (9, "sect283k1"),
    (8, "sect239k1"),
    (7, "sect233r1"),
    (6, "sect233k1"),
    (5, "sect193r2"),
    (4, "sect193r1"),
    (3, "sect163r2"),
    (2, "sect163r1"),
    (1, "sect163k1"),
    (256, "ffdhe2048"),
    (257, "ffdhe3072"),
    (258, "ffdhe4096"),
    (259, "ffdhe6144"),
    (260, "ffdhe8192"),
];

/// The name of a group, or its number.
pub fn group_name(code: u16) -> String {
    GROUPS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| format!("0x{code:04X}"), |(_, n)| (*n).to_string())
}

/// Whether a group is finite-field Diffie-Hellman (RFC 7919).
pub fn is_ffdhe(code: u16) -> bool {
    (256..=511).contains(&code)
}

/// Whether a group is a classic elliptic curve (usable with TLS 1.2 ECDHE suites).
pub fn is_ec_curve(code: u16) -> bool {
    (1..=41).contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_parses_and_holds_the_iana_suites() {
        let all = parse(SOURCE).unwrap();
        assert_eq!(all.len(), 357);
        assert_eq!(suite_name(0x000A), "TLS_RSA_WITH_3DES_EDE_CBC_SHA");
        assert_eq!(
            suite_name(0x00FF),
            "0x00FF",
            "signalling values are not suites"
        );
        assert_eq!(candidates(Version::Tls13).len(), 15);
        assert!(candidates(Version::Tls10).contains(&0x002F));
        assert!(!candidates(Version::Tls10).contains(&0xC02F));
        assert!(candidates(Version::Tls12).contains(&0xC02F));
    }

    #[test]
    fn classification() {
        let s = |c| suite(c).unwrap();
        assert_eq!(s(0x000A).weakness(), Some(Weakness::TripleDes));
        assert_eq!(s(0x0005).weakness(), Some(Weakness::Rc4));
        assert_eq!(s(0x0003).weakness(), Some(Weakness::Export));
        assert_eq!(s(0x0009).weakness(), Some(Weakness::Des));
        assert_eq!(s(0x0034).weakness(), Some(Weakness::Anonymous));
        assert_eq!(s(0x0002).weakness(), Some(Weakness::Null));
        assert_eq!(s(0x0007).weakness(), Some(Weakness::Idea));
        // The EXPORT1024 suites (not IANA-assigned, but shipped).
        for code in 0x0060..=0x0065 {
            assert_eq!(s(code).weakness(), Some(Weakness::Export), "0x{code:04X}");
        }
        assert_eq!(s(0x0066).weakness(), Some(Weakness::Rc4));
        assert_eq!(s(0x0063).ske_layout(), Some(SkeLayout::Dh));
        assert_eq!(s(0xC02F).weakness(), None);
        assert!(!s(0x002F).forward_secret() && s(0x002F).is_cbc());
        assert!(s(0xC02F).forward_secret() && !s(0xC02F).is_cbc());
        assert!(s(0x1301).forward_secret());
        assert!(s(0x0033).is_dhe() && !s(0xC013).is_dhe() && s(0xC013).is_ecdhe());
        assert_eq!(s(0x009E).ske_layout(), Some(SkeLayout::Dh));
        assert_eq!(s(0x0034).ske_layout(), Some(SkeLayout::Dh));
        assert_eq!(s(0xC02F).ske_layout(), Some(SkeLayout::Ecdh));
        assert_eq!(s(0x00AA).ske_layout(), Some(SkeLayout::DhPsk)); // DHE_PSK_WITH_AES_128_GCM
        assert_eq!(s(0xC0AA).ske_layout(), Some(SkeLayout::DhPsk)); // PSK_DHE_WITH_AES_128_CCM_8
        assert_eq!(s(0xC035).ske_layout(), Some(SkeLayout::EcdhPsk)); // ECDHE_PSK
        assert_eq!(s(0x00AE).ske_layout(), None); // PSK
        assert_eq!(s(0x00B6).ske_layout(), None); // RSA_PSK
        assert_eq!(s(0x002F).ske_layout(), None);
        assert_eq!(group_name(29), "x25519");
        assert!(is_ffdhe(256) && !is_ffdhe(29) && is_ec_curve(23) && !is_ec_curve(0x11EC));
    }
}
