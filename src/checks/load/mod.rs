//! The load family (`--checks load`): an open-model latency and error-rate probe whose
//! thresholds are rules of the catalogue, so they count in the same score and gate.
//!
//! **A load test is not a scan**, so this family is off unless asked for twice over: it runs
//! by default only on targets of a config file that opt in (`load = true` or `load = { ... }`
//! on the `[[target]]`), and when named with `--checks load` (or a `checks` list) also on
//! URL targets given on the command line; never on a range, a host without opt-in, or a
//! config target that did not opt in. Its options have hard ceilings (see [`options`]): a
//! value above one is a usage error.
//!
//! **Probe** ([`generator`]): up to three phases on one set of kept-alive HTTP/1.1
//! connections: a *warm-up* at the steady rate (not judged), an *idle* baseline at 20 req/s
//! on one connection (for `load.degradation`), and the *steady* phase at the target rate on
//! `connections` connections, which the other rules judge. Requests go out at a constant
//! arrival rate and latency is measured from each request's scheduled send time. The whole run's
//! requests are reserved from the budget up front ([`crate::engine::Cx::reserve`]): the
//! generator keeps its own schedule instead of the facade's per-request permits and pacing.
//! It stops early when the error rate stays over 10× its threshold for 5 s (`abort_on_fail`).
//! The requests follow one template or a weighted mix of several ([`mix`]); figures per
//! template and per second of the schedule ([`series`]) go into the evidence, from which the
//! reports draw their latency tables and chart. [`dryrun`] prints the plan without sending.
//!
//! **Judging**: a result needs enough samples (see [`stats`]); when the generator could not
//! keep its schedule (schedule lag, dropped iterations), latency results are never a pass.

mod availability;
mod breaking;
pub mod client;
mod concurrency;
mod degradation;
pub mod dryrun;
mod errors;
pub mod generator;
pub mod h1;
pub mod hold;
mod latency;
pub mod mix;
pub mod options;
pub mod series;
pub mod stats;
mod throughput;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use futures::future::BoxFuture;
use rustls::pki_types::ServerName;

use crate::engine::{Cx, Emitter, Family};
use crate::model::{Evidence, Observed, Outcome, Reason, ReasonKind};
use crate::options::{FamilyOptions, OptionsSpec, Spec};
use crate::plan::Settings;
use crate::target::{Target, TargetKind};
use generator::{PhaseSpec, PhaseStats};
use options::{IDLE_RATE, LoadOptions};

/// The load family.
#[derive(Debug)]
pub struct Load;

/// Family name.
pub const FAMILY: &str = "load";

/// Every rule id of the family, in catalogue order.
pub const RULE_IDS: &[&str] = &[
    latency::P95,
    errors::ERROR_RATE,
    throughput::THROUGHPUT,
    degradation::DEGRADATION,
    concurrency::CONCURRENCY,
    breaking::BREAKING_POINT,
    availability::AVAILABILITY,
];

/// A rule of this family.
pub type Rule = crate::engine::Rule<LoadObservation>;

/// The rules, in evaluation order.
pub static RULES: &[Rule] = &[
    latency::RULE,
    errors::RULE,
    throughput::RULE,
    degradation::RULE,
    concurrency::RULE,
    breaking::RULE,
    availability::RULE,
];

/// What the run measured.
#[derive(Clone, Debug)]
pub struct LoadObservation {
    /// The options it ran with (thresholds included).
    pub options: LoadOptions,
    /// The phases that ran, in order; an error when the run could not start.
    pub phases: Result<Vec<PhaseStats>, Reason>,
    /// The concurrency phase, when asked for and reached.
    pub hold: Option<hold::HoldStats>,
}

impl LoadObservation {
    fn phase(&self, name: &str) -> Option<&PhaseStats> {
        self.phases
            .as_ref()
            .ok()
            .and_then(|p| p.iter().find(|s| s.spec.name == name))
    }

    /// The judged phase, complete: or why there is none to judge.
    pub fn steady(&self) -> Result<&PhaseStats, Reason> {
        let phases = self.phases.as_ref().map_err(Clone::clone)?;
        // A stop during the ramp, after the steady phase, does not undo the steady phase.
        let upto = phases
            .iter()
            .position(|p| p.spec.name == "steady")
            .map_or(phases.len(), |i| i + 1);
        if let Some(stopped) = phases.iter().take(upto).find_map(|p| p.stopped.as_ref()) {
            return Err(Reason::new(
                ReasonKind::Interrupted,
                format!("the run did not finish: {stopped}"),
            ));
        }
        self.phase("steady")
            .ok_or_else(|| Reason::new(ReasonKind::Bug, "the steady phase did not run"))
    }

    /// The idle baseline, if it ran.
    pub fn idle(&self) -> Option<&PhaseStats> {
        self.phase("idle")
    }

    /// The ramp's steps that ran, in order.
    pub fn ramp(&self) -> Vec<&PhaseStats> {
        self.phases
            .as_ref()
            .map(|p| p.iter().filter(|s| s.spec.name == "ramp").collect())
            .unwrap_or_default()
    }

    /// The phase an early stop happened in, with its reason.
    pub fn aborted(&self) -> Option<(&PhaseStats, &str)> {
        self.phases
            .as_ref()
            .ok()?
            .iter()
            .find_map(|p| p.stopped.as_deref().map(|s| (p, s)))
    }
}

/// The quantile of the schedule lag compared with [`lag_tolerance`]: the generator kept its
/// schedule when at most 5 % of its sends were late by more than the tolerance. A few sends
/// late (the process was preempted) only make the offered load burstier, which is no easier
/// for the target; a generator that is CPU-bound is late on many.
pub const LAG_QUANTILE: f64 = 0.95;

/// The schedule lag a free worker may show (at [`LAG_QUANTILE`]) before the figures are
/// taken to be the generator's rather than the target's: a fifth of the p95 threshold, at
/// least 5 ms (tokio's timer ticks in milliseconds).
pub fn lag_tolerance(o: &LoadOptions) -> Duration {
    (o.p95 / 5).max(Duration::from_millis(5))
}

/// Why the generator's own figures cannot be trusted for `st`, if they cannot: its schedule
/// lag was over the tolerance (this machine was the limit, not the target).
pub fn generator_limit(st: &PhaseStats, o: &LoadOptions) -> Option<Reason> {
    if let Some(reason) = local_limit(st) {
        return Some(reason);
    }
    // Late free workers, or a late heartbeat: the heartbeat also catches a busy client whose
    // connections are all busy, which would otherwise look like a slow target.
    let lag = stats::at_quantile(&st.lag, LAG_QUANTILE)
        .max(stats::at_quantile(&st.heartbeat, LAG_QUANTILE));
    ((!st.lag.is_empty() || !st.heartbeat.is_empty()) && lag > lag_tolerance(o)).then(|| {
        Reason::new(
            ReasonKind::Budget,
            format!(
                "the load generator could not keep its schedule: over 5 % of its sends (or of its heartbeat timer's ticks) were late by more than {1} (p95 {0}); this machine, not the target, was the limit: lower the rate or run secgate on a less busy machine",
                stats::ms(lag),
                stats::ms(lag_tolerance(o))
            ),
        )
    })
}

/// Why the target broke in `st`, if it did: iterations dropped (every connection busy past
/// the timeout), an error rate surely over its threshold (95 % lower bound), a p95 over its
/// threshold (with enough samples), or an early stop for errors.
pub fn broken(st: &PhaseStats, o: &LoadOptions) -> Option<String> {
    if let Some(why) = &st.stopped
        && why.starts_with("stopped early")
    {
        return Some(why.clone());
    }
    if st.dropped > 0 {
        return Some(format!(
            "{} iterations dropped (all {} connections busy past the timeout)",
            st.dropped, st.spec.connections
        ));
    }
    let (k, n) = (st.error_count(), st.completed());
    if stats::lower_bound(k, n) > o.error_rate {
        #[allow(clippy::cast_precision_loss, reason = "counts are at most millions")]
        let rate = k as f64 / n.max(1) as f64;
        return Some(format!(
            "error rate {} over {}",
            stats::pct(rate),
            stats::pct(o.error_rate)
        ));
    }
    let p95 = stats::at_quantile(&st.corrected, 0.95);
    (st.corrected.len() >= stats::samples_needed(0.95) && p95 > o.p95)
        .then(|| format!("p95 {} over {}", stats::ms(p95), stats::ms(o.p95)))
}

/// Why `st`'s failures are this machine's, if some are (out of descriptors or ports).
pub fn local_limit(st: &PhaseStats) -> Option<Reason> {
    st.errors.get(&generator::ErrorKind::Local).map(|n| {
        Reason::new(
            ReasonKind::Budget,
            format!("{n} requests failed on this machine (out of file descriptors or source ports), not at the target"),
        )
    })
}

fn us(d: Duration) -> Observed {
    Observed::Number(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn count(n: u64) -> Observed {
    Observed::Number(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The percentiles reported for a histogram (µs): p50, p90, p95, p99, p99.9, max.
pub const QUANTILES: &[(&str, f64)] = &[
    ("p50", 0.50),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("max", 1.0),
];

/// The numbers of a phase, for every rule's evidence (what CI reads).
pub fn phase_evidence(st: &PhaseStats) -> Evidence {
    let pcts = |h: &hdrhistogram::Histogram<u64>| {
        Observed::texts(
            QUANTILES
                .iter()
                .map(|(name, q)| format!("{name}={}", stats::at_quantile(h, *q).as_micros())),
        )
    };
    let errors = Observed::texts(st.errors.iter().map(|(k, v)| format!("{}={v}", k.as_str())));
    Evidence::none()
        .text("phase", st.spec.name)
        .text("rate_per_s", format!("{}", st.spec.rate))
        .with(
            "duration_ms",
            count(u64::try_from(st.spec.duration.as_millis()).unwrap_or(u64::MAX)),
        )
        .with("connections", count(u64::from(st.spec.connections)))
        .with("scheduled", count(st.scheduled))
        .with("sent", count(st.sent))
        .with("ok", count(st.ok))
        .with("errors", count(st.error_count()))
        .with("errors_by_kind", errors)
        .with("dropped_iterations", count(st.dropped))
        .with("waited_for_connection", count(st.waited))
        .with("latency_samples", count(st.corrected.len()))
        .with("latency_us", pcts(&st.corrected))
        .with("uncorrected_latency_us", pcts(&st.uncorrected))
        .with("schedule_lag_p50_us", us(stats::at_quantile(&st.lag, 0.50)))
        .with("schedule_lag_p95_us", us(stats::at_quantile(&st.lag, 0.95)))
        .with("schedule_lag_p99_us", us(stats::at_quantile(&st.lag, 0.99)))
        .with("schedule_lag_max_us", us(stats::at_quantile(&st.lag, 1.0)))
        .with(
            "heartbeat_lag_p95_us",
            us(stats::at_quantile(&st.heartbeat, 0.95)),
        )
        .with("connections_opened", count(st.connects))
        .with("tls_resumed", count(st.tls_resumed))
}

/// Columns of the `phase_rows` evidence (one row per phase that ran; latencies in µs from
/// the scheduled send time).
pub const PHASE_COLUMNS: &[&str] = &[
    "phase",
    "rate_per_s",
    "duration_ms",
    "connections",
    "sent",
    "ok",
    "errors",
    "dropped",
    "p50_us",
    "p90_us",
    "p95_us",
    "p99_us",
    "p99.9_us",
    "max_us",
    "errors_by_kind",
];

/// Columns of the `steady_series` evidence: one row per second of the steady phase's
/// schedule (requests scheduled in that second with an outcome, of them failed, their p95).
pub const SERIES_COLUMNS: &[&str] = &["second", "requests", "errors", "p95_us"];

/// Columns of the `template_rows` evidence (one row per request template of a mix).
pub const TEMPLATE_COLUMNS: &[&str] = &[
    "template",
    "weight",
    "requests",
    "ok",
    "errors",
    "p50_us",
    "p95_us",
    "p99_us",
    "errors_by_kind",
];

fn kinds(errors: &std::collections::BTreeMap<generator::ErrorKind, u64>) -> Observed {
    Observed::text(
        errors
            .iter()
            .map(|(k, v)| format!("{}={v}", k.as_str()))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The figures behind the latency table and chart: every phase that ran (`phase_rows`) and
/// the steady phase's per-second series (`steady_series`), each with its columns.
pub fn report_evidence(e: Evidence, obs: &LoadObservation) -> Evidence {
    let Ok(phases) = &obs.phases else {
        return e;
    };
    let rows = phases.iter().map(|st| {
        let mut row = vec![
            Observed::text(st.spec.name),
            Observed::text(format!("{}", st.spec.rate)),
            count(u64::try_from(st.spec.duration.as_millis()).unwrap_or(u64::MAX)),
            count(u64::from(st.spec.connections)),
            count(st.sent),
            count(st.ok),
            count(st.error_count()),
            count(st.dropped),
        ];
        row.extend(
            QUANTILES
                .iter()
                .map(|(_, q)| us(stats::at_quantile(&st.corrected, *q))),
        );
        row.push(kinds(&st.errors));
        Observed::List(row)
    });
    let mut e = e
        .with(
            "phase_columns",
            Observed::texts(PHASE_COLUMNS.iter().copied()),
        )
        .with("phase_rows", Observed::List(rows.collect()));
    if let Some(st) = phases.iter().find(|p| p.spec.name == "steady") {
        // Seconds of the schedule only (a last, partial second counts).
        let secs = usize::try_from(st.spec.duration.as_secs()).unwrap_or(0)
            + usize::from(st.spec.duration.subsec_nanos() > 0);
        let series = st
            .seconds
            .iter()
            .zip(st.second_p95_us.iter().chain(std::iter::repeat(&0)))
            .take(secs.max(1))
            .enumerate()
            .map(|(i, ((ok, err), p95))| {
                Observed::List(vec![
                    count(u64::try_from(i).unwrap_or(u64::MAX)),
                    count(u64::from(*ok) + u64::from(*err)),
                    count(u64::from(*err)),
                    count(*p95),
                ])
            });
        e = e
            .with(
                "steady_series_columns",
                Observed::texts(SERIES_COLUMNS.iter().copied()),
            )
            .with("steady_series", Observed::List(series.collect()));
    }
    e
}

/// Per-template figures of `st` (`template_rows`, with its columns), when it mixed several.
pub fn template_evidence(e: Evidence, st: &PhaseStats, o: &LoadOptions) -> Evidence {
    if st.by_template.is_empty() {
        return e;
    }
    let rows = st.by_template.iter().zip(&o.mix).map(|(t, entry)| {
        let q = |x: f64| {
            if t.latency.is_empty() {
                count(0)
            } else {
                count(t.latency.value_at_quantile(x))
            }
        };
        Observed::List(vec![
            Observed::text(entry.name.clone()),
            count(u64::from(entry.weight)),
            count(t.completed()),
            count(t.ok),
            count(t.completed() - t.ok),
            q(0.50),
            q(0.95),
            q(0.99),
            kinds(&t.errors),
        ])
    });
    e.with(
        "template_columns",
        Observed::texts(TEMPLATE_COLUMNS.iter().copied()),
    )
    .with("template_rows", Observed::List(rows.collect()))
}

static OPTIONS: Spec<LoadOptions> = Spec::new();

impl FamilyOptions for Load {
    fn family(&self) -> &'static str {
        FAMILY
    }

    fn options(&self) -> &'static dyn OptionsSpec {
        &OPTIONS
    }
}

fn target_options(target: &Target) -> LoadOptions {
    target
        .options
        .get::<LoadOptions>(FAMILY)
        .cloned()
        .unwrap_or_default()
}

fn not_a_range(target: &Target) -> bool {
    !matches!(target.kind, TargetKind::Cidr { .. }) && target.http_url().is_some()
}

impl Family for Load {
    fn summary(&self) -> &'static str {
        "open-model load probe: p95 latency, error rate, throughput, degradation, availability"
    }

    fn rule_ids(&self) -> &'static [&'static str] {
        RULE_IDS
    }

    /// Only targets that opted in (`load = true` in the config).
    fn applies_to(&self, target: &Target) -> bool {
        not_a_range(target) && target_options(target).opt_in
    }

    /// Asked for by name: also a URL target typed on the command line (the user named both
    /// the target and the family); never a config target that did not opt in, nor a range.
    fn can_run(&self, target: &Target, settings: &Settings) -> bool {
        self.applies_with(target, settings)
            || (target.origin.is_none() && matches!(target.kind, TargetKind::Url(_)))
    }

    /// It measures: nothing else of secgate's should hit the target's login or rate limiter
    /// at the same time (the auth and ratelimit families take turns with it).
    fn exclusive(&self, _target: &Target) -> bool {
        true
    }

    fn dry_run(&self, target: &Target, _settings: &Settings) -> Vec<String> {
        let mut out = vec![self.summary().to_string()];
        out.extend(dryrun::lines(&target_options(target), target));
        out
    }

    fn budget(&self, target: &Target, _settings: &Settings) -> u32 {
        u32::try_from(target_options(target).total_requests()).unwrap_or(u32::MAX)
    }

    fn deadline(&self, settings: &Settings, target: &Target) -> Duration {
        let o = target_options(target);
        o.total_duration()
            + crate::engine::net::request_deadline(settings.timeout) * 3
            + crate::engine::MAX_BACKOFF_WAIT
    }

    fn run<'a>(&'a self, cx: &'a Cx<'a>) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let target = &cx.target().target;
            let options = cx.options::<LoadOptions>();
            let (phases, hold) = match probe(cx, &options).await {
                Ok((p, h)) => (Ok(p), h),
                Err(r) => (Err(r), None),
            };
            evaluate(
                &LoadObservation {
                    options,
                    phases,
                    hold,
                },
                &target.id,
            )
        })
    }
}

/// The phases a run with `o` goes through.
pub fn plan(o: &LoadOptions) -> Vec<PhaseSpec> {
    let mut phases = Vec::new();
    if !o.warmup.is_zero() {
        phases.push(PhaseSpec {
            name: "warmup",
            rate: o.rate,
            duration: o.warmup,
            connections: o.connections,
        });
    }
    if !o.idle.is_zero() {
        phases.push(PhaseSpec {
            name: "idle",
            rate: IDLE_RATE,
            duration: o.idle,
            connections: 1,
        });
    }
    phases.push(PhaseSpec {
        name: "steady",
        rate: o.rate,
        duration: o.duration,
        connections: o.connections,
    });
    for rate in o.ramp_rates() {
        phases.push(PhaseSpec {
            name: "ramp",
            rate,
            duration: o.ramp_step,
            connections: o.connections,
        });
    }
    phases
}

/// Build the request and run every phase against the target.
async fn probe(
    cx: &Cx<'_>,
    o: &LoadOptions,
) -> Result<(Vec<PhaseStats>, Option<hold::HoldStats>), Reason> {
    let target = &cx.target().target;
    let url = target
        .http_url()
        .ok_or_else(|| Reason::new(ReasonKind::Bug, "the load family needs an HTTP URL"))?;
    let host = url
        .host_str()
        .ok_or_else(|| Reason::new(ReasonKind::Malformed, "the target URL has no host"))?
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let templates = mix::resolve(o, &target.endpoints, &target_path(&url))
        .map_err(|m| Reason::new(ReasonKind::Bug, m))?;
    let tls = if url.scheme() == "https" {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_string()).map_err(|_| {
            Reason::new(
                ReasonKind::Malformed,
                format!("'{host}' is not a TLS server name"),
            )
        })?;
        let mut config = cx.scan().tls.clone();
        if o.http2 {
            // The same configuration (verifier, session store) offering h2 alone: asked for
            // HTTP/2, a server that does not speak it is an error, not a silent HTTP/1.1 run.
            let mut h2 = (*config).clone();
            h2.alpn_protocols = vec![b"h2".to_vec()];
            config = Arc::new(h2);
        }
        Some((config, name))
    } else {
        None
    };
    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let specs: Vec<(String, u32, generator::RequestSpec)> = templates
        .iter()
        .map(|t| (t.name.clone(), t.weight, t.spec(&host_header)))
        .collect();
    let request = specs
        .first()
        .map(|s| s.2.clone())
        .ok_or_else(|| Reason::new(ReasonKind::Bug, "the load run has no request template"))?;
    let mix = (specs.len() > 1).then(|| Arc::new(mix::Mix::new(specs)));
    let live = cx
        .settings()
        .progress
        .is_shown()
        .then(|| Arc::new(series::Live::default()));
    let total = u32::try_from(o.total_requests()).unwrap_or(u32::MAX);
    let reservation = cx.reserve(total, o.rate).await?;
    let addrs: Vec<std::net::SocketAddr> = reservation
        .addrs
        .iter()
        .map(|a| std::net::SocketAddr::new(a.ip(), port))
        .collect();
    let proxy = tunnel(cx.settings().proxy.as_ref(), &url, &host, port);
    if let Some(range) = &o.source_range {
        let dests: Vec<std::net::SocketAddr> = match &proxy {
            Some(t) => vec![t.proxy],
            None => addrs.clone(),
        };
        if !dests
            .iter()
            .any(|d| d.is_ipv4() == matches!(range, ipnet::IpNet::V4(_)))
        {
            cx.settle(reservation, 0);
            return Err(Reason::new(
                ReasonKind::Io,
                format!("source_range {range} is not of the address family the connections go to"),
            ));
        }
    }
    let ep = generator::Endpoint {
        addrs,
        tls,
        timeout: cx.settings().timeout,
        request,
        proxy,
        mix,
        live: live.clone(),
        protocol: if o.http2 {
            client::Protocol::Http2 { streams: o.streams }
        } else {
            client::Protocol::Http1
        },
        sources: client::Sources {
            range: o.source_range,
        },
    };
    let abort = o.abort_on_fail.then_some(generator::AbortRule {
        error_rate: o.error_rate,
    });
    let stop = Arc::new(AtomicBool::new(false));
    // The ramp goes on while the target holds and the generator keeps its schedule.
    let go_on = |st: &PhaseStats| {
        st.spec.name != "ramp" || (broken(st, o).is_none() && generator_limit(st, o).is_none())
    };
    let phases = plan(o);
    let run = generator::run_until(&ep, &phases, stop.clone(), abort, go_on);
    // The progress line shows the running phase's rate, p95 and errors, four times a second.
    let phases = match &live {
        Some(live) => {
            let mut run = std::pin::pin!(run);
            loop {
                tokio::select! {
                    p = &mut run => break p,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {
                        cx.settings().progress.message(live.message(&target.id));
                    }
                }
            }
        }
        None => run.await,
    };
    let mut sent: u64 = phases.iter().map(|p| p.sent).sum();
    let finished = phases
        .iter()
        .all(|p| p.stopped.is_none() || p.spec.name == "ramp");
    let held = if o.hold_connections > 0 && finished {
        let h = hold::run(&ep, o.hold_connections, o.hold, stop).await;
        sent += h.sent;
        Some(h)
    } else {
        None
    };
    cx.settle(reservation, u32::try_from(sent).unwrap_or(u32::MAX));
    Ok((phases, held))
}

/// The path and query of `url`, the load requests' default.
pub fn target_path(url: &url::Url) -> String {
    let mut p = url.path().to_string();
    if let Some(q) = url.query() {
        p.push('?');
        p.push_str(q);
    }
    p
}

/// Run every rule on an observation.
pub fn evaluate(obs: &LoadObservation, target_id: &str) -> Vec<Outcome> {
    let mut out = Emitter::new(FAMILY, target_id);
    if let Err(reason) = &obs.phases {
        for id in RULE_IDS {
            out.inconclusive(id, reason);
        }
        return out.finish();
    }
    crate::engine::evaluate_rules(RULES, obs, &mut out);
    out.finish()
}

/// The CONNECT tunnel the load family's connections take under `--proxy` (for http:// too:
/// its connections speak origin-form requests, so they tunnel as well), unless `NO_PROXY`
/// (`--proxy env`) names the host: `*`, the host itself, or a domain it is under.
fn tunnel(
    proxy: Option<&crate::plan::Proxy>,
    url: &url::Url,
    host: &str,
    port: u16,
) -> Option<generator::Tunnel> {
    use base64::Engine as _;
    let p = proxy?;
    let via = if url.scheme() == "https" {
        p.https.as_ref()
    } else {
        p.http.as_ref()
    }?;
    let bypass = p.no_proxy.as_deref().is_some_and(|list| {
        list.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .any(|e| {
                let e = e.trim_start_matches('.').to_ascii_lowercase();
                e == "*" || host == e || host.ends_with(&format!(".{e}"))
            })
    });
    if bypass {
        return None;
    }
    let proxy = via
        .socket_addrs(|| Some(crate::plan::DEFAULT_PROXY_PORT))
        .ok()?
        .into_iter()
        .next()?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let authorization = (!via.username().is_empty() || via.password().is_some()).then(|| {
        let creds = format!(
            "{}:{}",
            decode(via.username()),
            decode(via.password().unwrap_or(""))
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(creds)
        )
    });
    // `host` is the URL's: an IPv6 literal keeps its brackets.
    let authority = format!("{host}:{port}");
    Some(generator::Tunnel {
        proxy,
        authority,
        authorization,
    })
}

#[cfg(test)]
mod fixture {
    //! A hand-built observation for the rules' unit tests.
    use super::*;

    pub(super) fn phase(name: &'static str, rate: f64, secs: u64, latency_us: u64) -> PhaseStats {
        let spec = PhaseSpec {
            name,
            rate,
            duration: Duration::from_secs(secs),
            connections: 8,
        };
        let n = spec.requests();
        let mut h = generator::histogram();
        let mut lag = generator::histogram();
        for _ in 0..n {
            h.saturating_record(latency_us);
            lag.saturating_record(200);
        }
        PhaseStats {
            scheduled: n,
            sent: n,
            ok: n,
            errors: Default::default(),
            dropped: 0,
            waited: 0,
            uncorrected: h.clone(),
            corrected: h,
            lag,
            heartbeat: generator::histogram(),
            seconds: vec![
                (u32::try_from(rate as u64).unwrap_or(0), 0);
                usize::try_from(secs).unwrap_or(0)
            ],
            connects: 8,
            by_template: Vec::new(),
            second_p95_us: vec![latency_us; usize::try_from(secs).unwrap_or(0) + 1],
            tls_resumed: 0,
            elapsed: spec.duration,
            stopped: None,
            spec,
        }
    }

    pub(super) fn obs(steady: PhaseStats) -> LoadObservation {
        LoadObservation {
            options: LoadOptions::default(),
            phases: Ok(vec![phase("idle", 20.0, 10, 1000), steady]),
            hold: None,
        }
    }

    pub(super) fn status(
        rule: &Rule,
        o: &LoadObservation,
        id: &'static str,
    ) -> crate::model::Status {
        let mut out = Emitter::new(FAMILY, "t");
        (rule.eval)(o, &mut out);
        out.finish()
            .into_iter()
            .find(|r| r.rule_id == id)
            .map(|r| r.status)
            .unwrap_or(crate::model::Status::Skipped)
    }
}
