//! The gate's policy: the thresholds a scan is held to (`[policy]` in the config, and the
//! `--min-score` / `--max-critical` flags). The score and the gate themselves are computed
//! by [`crate::summarise`].

use serde::{Deserialize, Serialize};

/// Gate thresholds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Lowest passing score, 0–100.
    pub min_score: f64,
    /// Most critical findings allowed.
    pub max_critical: u32,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            min_score: 95.0,
            max_critical: 0,
        }
    }
}
