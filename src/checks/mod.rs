//! Check families. Each family is a folder: `mod.rs` probes the target (all network I/O,
//! through the engine's facade [`crate::engine::Cx`]) and hands one observation to its rules,
//! one pure function per file; `options.rs` holds its options, when it has any.
//!
//! Adding a family: its folder here, its catalogue `checks/<family>.toml` (embedded by
//! [`crate::catalogue::SOURCES`]), and one line in [`FAMILIES`]. README's development section
//! walks through it.

use crate::engine::Family;

pub mod auth;
pub mod behaviour;
pub mod dns;
pub mod headers;
pub mod load;
pub mod ports;
pub mod ratelimit;
pub mod tls;

/// Every family, in report order. The stages are handed this list; none names a family.
pub static FAMILIES: &[&dyn Family] = &[
    &headers::Headers,
    &tls::Tls,
    &auth::Auth,
    &ratelimit::RateLimit,
    &ports::Ports,
    &dns::Dns,
    &load::Load,
];

/// Look up a family by name.
pub fn family(name: &str) -> Option<&'static dyn Family> {
    FAMILIES.iter().copied().find(|c| c.family() == name)
}

/// Family names, for messages.
pub fn family_names() -> Vec<&'static str> {
    FAMILIES.iter().map(|c| c.family()).collect()
}
