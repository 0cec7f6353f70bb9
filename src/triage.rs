//! Stage 5, triage: decide, per finding, what the gate makes of it before anything is
//! scored. Today every finding counts as found; suppressions (with expiry) and a baseline of
//! an earlier run act here, between the collected results and the score, so that the score
//! and every report see the same decision.

use crate::model::ScanResult;

/// Results after triage: what [`crate::summarise`] scores and the reports show.
#[derive(Clone, Debug)]
pub struct Triaged {
    /// The scan's results.
    pub result: ScanResult,
}

/// Triage a scan's results.
pub fn triage(result: ScanResult) -> Triaged {
    Triaged { result }
}
