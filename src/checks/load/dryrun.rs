//! The load plan as `secgate scan --dry-run` prints it: the phases with their rates,
//! durations, connections and requests, the request mix, the thresholds and the ceilings
//! that apply. Pure: it reads the options and sends nothing.

use super::hold;
use super::mix;
use super::options::{
    IDLE_RATE, LoadOptions, MAX_CONNECTIONS, MAX_DURATION_SECS, MAX_RATE, MAX_TOTAL_REQUESTS,
};
use super::stats;
use crate::target::Target;

fn secs(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

fn conns(n: u32) -> String {
    if n == 1 {
        "1 connection".into()
    } else {
        format!("{n} connections")
    }
}

/// The lines of the load plan of `target` with options `o` (indented under the family's
/// line by the caller).
pub fn lines(o: &LoadOptions, target: &Target) -> Vec<String> {
    let ramp: u64 = o
        .ramp_rates()
        .iter()
        .map(|r| super::options::requests_in(*r, o.ramp_step))
        .sum();
    let mut out = vec![if ramp == 0 {
        format!(
            "{} requests over {}",
            o.total_requests(),
            secs(o.total_duration())
        )
    } else {
        format!(
            "{} requests over {}, and up to {ramp} more in {} ramp steps of {}",
            o.total_requests() - ramp,
            secs(o.total_duration()),
            o.ramp_rates().len(),
            secs(o.ramp_step)
        )
    }];
    for p in super::plan(o) {
        let what = match p.name {
            "warmup" => "warm-up, not judged",
            "idle" => "idle baseline for load.degradation",
            "steady" => "judged by every load rule",
            "ramp" => "ramp step: stops at the first that breaks",
            _ => "",
        };
        out.push(format!(
            "phase {:<7} {}/s for {} on {}: {} requests ({what})",
            p.name,
            p.rate,
            secs(p.duration),
            conns(p.connections),
            p.requests(),
        ));
    }
    if o.hold_connections > 0 {
        out.push(format!(
            "phase {:<7} {} held for {}: {} requests, one every {} at most on each (load.concurrency)",
            "hold",
            conns(o.hold_connections),
            secs(o.hold),
            o.hold_requests(),
            secs(hold::KEEPALIVE_EVERY),
        ));
    }
    let path = target
        .http_url()
        .map_or_else(|| "/".into(), |u| super::target_path(&u));
    match mix::resolve(o, &target.endpoints, &path) {
        Ok(templates) => {
            let total: u32 = templates.iter().map(|t| t.weight).sum();
            let steady = super::options::requests_in(o.rate, o.duration);
            let mixer = mix::Mix::new(
                templates
                    .iter()
                    .map(|t| (t.name.clone(), t.weight, t.spec("")))
                    .collect(),
            );
            let counts = mixer.counts(steady);
            for (t, n) in templates.iter().zip(counts) {
                let share = f64::from(t.weight) / f64::from(total.max(1));
                out.push(format!(
                    "request {} {}{} weight {} ({}): {n} of the steady phase's {steady}",
                    t.method,
                    t.path,
                    if t.name == t.path {
                        String::new()
                    } else {
                        format!(" ({})", t.name)
                    },
                    t.weight,
                    stats::pct(share),
                ));
            }
        }
        Err(m) => out.push(format!("request mix: {m}")),
    }
    let mut thresholds = vec![
        format!("p95 ≤ {}", stats::ms(o.p95)),
        format!("error rate ≤ {}", stats::pct(o.error_rate)),
        format!("throughput ≥ 95 % of {}/s", o.rate),
    ];
    if let Some(t) = o.p99 {
        thresholds.push(format!("p99 ≤ {}", stats::ms(t)));
    }
    if let Some(t) = o.max {
        thresholds.push(format!("max ≤ {}", stats::ms(t)));
    }
    if !o.idle.is_zero() {
        thresholds.push(format!("loaded p95 ≤ {}× idle p95", o.degradation));
    }
    out.push(format!("thresholds: {}", thresholds.join(", ")));
    out.push(format!(
        "needs {} clean requests to show the error rate (the steady phase has {})",
        stats::requests_needed(o.error_rate),
        super::options::requests_in(o.rate, o.duration)
    ));
    if o.abort_on_fail {
        out.push(format!(
            "stops early when the error rate stays over {} for {} s",
            stats::pct((o.error_rate * 10.0).min(0.99)),
            super::generator::ABORT_SECONDS
        ));
    }
    out.push(format!(
        "ceilings: rate ≤ {MAX_RATE}/s, all phases ≤ {MAX_DURATION_SECS} s, connections ≤ {MAX_CONNECTIONS}, requests ≤ {MAX_TOTAL_REQUESTS} per target; idle baseline at {IDLE_RATE}/s"
    ));
    out
}
