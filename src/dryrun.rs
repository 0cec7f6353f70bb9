//! `secgate scan --dry-run`: the plan, printed instead of run. Per target, the families that
//! would run there and what each would do ([`crate::engine::Family::dry_run`]: the load
//! family's phases, rates, durations, connections, request mix, thresholds and ceilings;
//! every other family's summary and request budget), and the families asked for that would
//! not run. Built from the plan alone: nothing is sent, nothing is resolved, no report file
//! is written. A plan that does not validate never gets here (exit 2, like a scan).

use std::fmt::Write as _;

use crate::engine::Family;
use crate::engine::schedule::selected;
use crate::plan::ScanPlan;

/// The text of the dry run of `plan` with `families`.
pub fn describe(plan: &ScanPlan, families: &[&'static dyn Family]) -> String {
    let mut out = String::new();
    let n = plan.targets.len();
    let _ = writeln!(
        out,
        "secgate dry run: the plan for {n} target{}; nothing is sent and no report is written.",
        if n == 1 { "" } else { "s" }
    );
    let mut total: u64 = 0;
    let mut sweeps = false;
    for target in &plan.targets {
        let _ = writeln!(out);
        let from = target
            .origin
            .as_ref()
            .map(|o| format!("  ({}:{})", o.file.display(), o.line))
            .unwrap_or_default();
        let _ = writeln!(out, "{}{from}", target.id);
        let chosen = selected(plan, families, target);
        if chosen.is_empty() {
            let _ = writeln!(out, "  no family applies");
        }
        for (family, runs) in chosen {
            if !runs {
                let _ = writeln!(
                    out,
                    "  {}: not run here (it cannot run on this target)",
                    family.family()
                );
                continue;
            }
            total += u64::from(family.budget(target, &plan.settings));
            sweeps |= family.family() == "ports";
            let mut lines = family.dry_run(target, &plan.settings).into_iter();
            let first = lines.next().unwrap_or_default();
            let _ = writeln!(out, "  {}: {first}", family.family());
            for line in lines {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "at most {total} requests in all{}",
        if plan.settings.chain.is_empty() || !sweeps {
            String::new()
        } else {
            ", plus the audits of what a port sweep discovers (chaining)".to_string()
        }
    );
    out
}
