//! Port lists: `--ports 22,80,443`, ranges `1-1024`, `top100`, `top1000` (our own ordered list,
//! `checks/lists/ports.toml`) and `all`, in any comma-separated mix.

use std::sync::LazyLock;

use serde::Deserialize;

/// The embedded list of common ports, most important first.
const PORTS_TOML: &str = include_str!("../../../checks/lists/ports.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortsFile {
    top: Vec<u16>,
}

static TOP: LazyLock<Vec<u16>> = LazyLock::new(|| {
    toml::from_str::<PortsFile>(PORTS_TOML)
        .map(|f| f.top)
        .unwrap_or_default()
});

/// The `n` most important ports of the embedded list (at most 1000).
pub fn top(n: usize) -> &'static [u16] {
    TOP.get(..n.min(TOP.len())).unwrap_or_default()
}

/// A parsed port list: distinct ports in the order given (named lists keep their order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// The text it was parsed from (for reports).
    pub text: String,
    /// The ports, distinct, in scan order.
    pub ports: Vec<u16>,
}

impl PortSpec {
    /// Parse `22,80,443`, `1-1024`, `top100`, `top1000`, `all`, or a comma-separated mix.
    pub fn parse(input: &str) -> Result<PortSpec, String> {
        let mut seen = vec![false; 65_536];
        let mut ports = Vec::new();
        let mut push = |p: u16, ports: &mut Vec<u16>| {
            if let Some(slot) = seen.get_mut(usize::from(p))
                && !*slot
            {
                *slot = true;
                ports.push(p);
            }
        };
        for item in input.split(',').map(str::trim) {
            match item.to_ascii_lowercase().as_str() {
                "" => return Err(format!("'{input}': empty entry in the port list")),
                "all" => (1..=65_535).for_each(|p| push(p, &mut ports)),
                "top100" => top(100).iter().for_each(|p| push(*p, &mut ports)),
                "top1000" => top(1000).iter().for_each(|p| push(*p, &mut ports)),
                _ => {
                    let (lo, hi) = match item.split_once('-') {
                        Some((lo, hi)) => (port(input, lo)?, port(input, hi)?),
                        None => {
                            let p = port(input, item)?;
                            (p, p)
                        }
                    };
                    if lo > hi {
                        return Err(format!("'{input}': range {item} is reversed"));
                    }
                    (lo..=hi).for_each(|p| push(p, &mut ports));
                }
            }
        }
        Ok(PortSpec {
            text: input.trim().to_string(),
            ports,
        })
    }

    /// A list of one port.
    pub fn single(port: u16) -> PortSpec {
        PortSpec {
            text: port.to_string(),
            ports: vec![port],
        }
    }
}

fn port(input: &str, s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!(
            "'{input}': invalid port '{}' (expected 1-65535, a range like 1-1024, top100, top1000 or all)",
            s.trim()
        )),
        Ok(p) => Ok(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_list_holds_1000_distinct_ports() {
        let all = top(1000);
        assert_eq!(all.len(), 1000);
        let mut sorted = all.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 1000);
        assert!(!sorted.contains(&0));
        assert_eq!(&top(3), &[80, 443, 8080]);
        for p in [22, 3306, 5432, 6379, 11211, 27017, 9200, 23, 21] {
            assert!(top(100).contains(&p), "{p} should be in top100");
        }
    }

    #[test]
    fn parses_lists_ranges_and_names() {
        assert_eq!(
            PortSpec::parse("22,80,443").unwrap().ports,
            vec![22, 80, 443]
        );
        assert_eq!(
            PortSpec::parse("1-3, 2, 80").unwrap().ports,
            vec![1, 2, 3, 80]
        );
        assert_eq!(PortSpec::parse("all").unwrap().ports.len(), 65_535);
        assert_eq!(PortSpec::parse("TOP100").unwrap().ports.len(), 100);
        assert_eq!(
            PortSpec::parse("top1000,1-1024").unwrap().ports.len(),
            1000 + 1024 - top(1000).iter().filter(|p| **p <= 1024).count()
        );
        assert_eq!(PortSpec::parse("65535").unwrap().ports, vec![65_535]);
        for bad in [
            "", "0", "65536", "80,", "10-5", "a-b", "top5", "1-2-3", "-5",
        ] {
            assert!(PortSpec::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
