//! How many samples a decision needs, and the confidence bounds of an error rate.
//!
//! - **Rates** (`load.error_rate`): one-sided 95 % Clopper-Pearson bounds of a binomial
//!   proportion. The rate passes when its *upper* bound is under the threshold, fails when its
//!   *lower* bound is over it, and is inconclusive in between. With no failure at all, the
//!   upper bound is `ln 20 / n` (the rule of three; the exact `1 - 0.05^(1/n)` is a hair
//!   lower): showing an error rate under 0.1 % takes at least 2,996 requests.
//! - **Percentiles**: a percentile `q` is judged only with at least `10 / (1 - q)` samples, so
//!   that ten samples lie beyond it: 200 for p95, 1,000 for p99, 10,000 for p99.9.

use std::time::Duration;

use hdrhistogram::Histogram;

/// One-sided confidence level of the rate bounds.
pub const CONFIDENCE: f64 = 0.95;
/// Samples that must lie beyond a percentile before it is judged.
pub const BEYOND: f64 = 10.0;

/// Requests needed to show a rate under `threshold` when none fails (rule of three).
pub fn requests_needed(threshold: f64) -> u64 {
    let n = ((1.0 - CONFIDENCE).ln().abs() / threshold.max(1e-9)).ceil();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "bounded"
    )]
    let n = n.min(1e15) as u64;
    n
}

/// Samples needed to judge quantile `q` (0.95 for p95); 1 for the maximum.
pub fn samples_needed(q: f64) -> u64 {
    if q >= 1.0 {
        return 1;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "bounded"
    )]
    let n = (BEYOND / (1.0 - q)).round() as u64;
    n
}

/// ln P(X ≤ k) for X ~ Binomial(n, p), summed in log space.
fn ln_cdf(k: u64, n: u64, p: f64) -> f64 {
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return if k >= n { 0.0 } else { f64::NEG_INFINITY };
    }
    #[allow(clippy::cast_precision_loss, reason = "counts are at most millions")]
    let (nf, kf) = (n as f64, k.min(n) as f64);
    let ratio = (p / (1.0 - p)).ln();
    let mut term = nf * (1.0 - p).ln();
    let mut max = term;
    let mut terms = Vec::with_capacity(usize::try_from(k.min(n)).unwrap_or(0) + 1);
    terms.push(term);
    let mut j = 0.0;
    while j < kf {
        term += ((nf - j) / (j + 1.0)).ln() + ratio;
        max = max.max(term);
        terms.push(term);
        j += 1.0;
    }
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}

fn bisect(f: impl Fn(f64) -> bool) -> f64 {
    // f is true below the answer and false above it.
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    for _ in 0..60 {
        let mid = f64::midpoint(lo, hi);
        if f(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// Above this many failures the bounds use the Wilson score interval (the exact sum gets
/// long, and the normal approximation is good there).
const EXACT_UP_TO: u64 = 2000;

fn wilson(k: u64, n: u64, upper: bool) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "counts are at most millions")]
    let (k, n) = (k as f64, n as f64);
    let z = 1.644_853_626_951_472_2; // one-sided 95 %
    let p = k / n;
    let centre = p + z * z / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    let denom = 1.0 + z * z / n;
    let v = if upper {
        centre + spread
    } else {
        centre - spread
    } / denom;
    v.clamp(0.0, 1.0)
}

/// The one-sided 95 % upper bound of a rate with `k` failures in `n` trials.
pub fn upper_bound(k: u64, n: u64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    if k >= n {
        return 1.0;
    }
    if k == 0 {
        // The rule of three, ln 20 / n: the Poisson bound, a hair above the exact
        // 1 - 0.05^(1/n), so that it agrees with [`requests_needed`].
        #[allow(clippy::cast_precision_loss, reason = "counts are at most millions")]
        return ((1.0 - CONFIDENCE).ln().abs() / n as f64).min(1.0);
    }
    if k > EXACT_UP_TO {
        return wilson(k, n, true);
    }
    let alpha = (1.0 - CONFIDENCE).ln();
    bisect(|p| ln_cdf(k, n, p) > alpha)
}

/// The one-sided 95 % lower bound of a rate with `k` failures in `n` trials.
pub fn lower_bound(k: u64, n: u64) -> f64 {
    if n == 0 || k == 0 {
        return 0.0;
    }
    if k > EXACT_UP_TO {
        return wilson(k, n, false);
    }
    // P(X ≥ k) = 1 - P(X ≤ k - 1) grows with p; the bound is where it reaches 5 %.
    let alpha = 1.0 - CONFIDENCE;
    bisect(|p| 1.0 - ln_cdf(k - 1, n, p).exp() < alpha)
}

/// A latency from a histogram of microseconds.
pub fn at_quantile(h: &Histogram<u64>, q: f64) -> Duration {
    if q >= 1.0 {
        Duration::from_micros(h.max())
    } else {
        Duration::from_micros(h.value_at_quantile(q))
    }
}

/// Milliseconds for messages: `0.42 ms`, `12.3 ms`, `1,003 ms`.
pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 10.0 {
        format!("{v:.2} ms")
    } else if v < 100.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// A fraction as a percentage for messages.
pub fn pct(f: f64) -> String {
    let v = f * 100.0;
    if v == 0.0 {
        "0 %".into()
    } else if v < 0.01 {
        format!("{v:.4} %")
    } else if v < 1.0 {
        format!("{v:.3} %")
    } else {
        format!("{v:.2} %")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_of_three() {
        assert_eq!(requests_needed(0.001), 2996);
        assert!(upper_bound(0, 2996) <= 0.001);
        assert!(upper_bound(0, 2995) > 0.001);
        // k6 would pass rate<0.001 on 100 clean requests; the bound there is about 3 %.
        assert!(upper_bound(0, 100) > 0.029);
    }

    #[test]
    fn bounds_bracket_the_observed_rate() {
        for (k, n) in [(1, 100), (30, 3000), (5, 10_000), (2500, 100_000)] {
            #[allow(clippy::cast_precision_loss, reason = "small")]
            let p = k as f64 / n as f64;
            let (lo, hi) = (lower_bound(k, n), upper_bound(k, n));
            assert!(lo < p && p < hi, "{k}/{n}: {lo} {p} {hi}");
        }
        // 30 errors in 3,000 (1 %) is surely over 0.1 %; 4 in 3,000 is not surely so.
        assert!(lower_bound(30, 3000) > 0.001);
        assert!(lower_bound(4, 3000) < 0.001);
        // Clopper-Pearson for 1 in 100: upper 4.66 %.
        assert!((upper_bound(1, 100) - 0.0466).abs() < 0.0005);
    }

    #[test]
    fn percentile_sample_floor() {
        assert_eq!(samples_needed(0.95), 200);
        assert_eq!(samples_needed(0.99), 1000);
        assert_eq!(samples_needed(0.999), 10_000);
        assert_eq!(samples_needed(1.0), 1);
    }
}
