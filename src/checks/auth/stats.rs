//! The statistics of the timing test: a two-sided Mann-Whitney U test (normal approximation
//! with tie correction), which assumes nothing about the shape of response-time distributions.

/// Largest sample size per class for the exact distribution (beyond it, the normal
/// approximation is accurate).
const EXACT_MAX: usize = 30;

/// Two-sided p-value that samples `a` and `b` come from the same distribution: exact for
/// samples of up to 30 without ties, the normal approximation otherwise.
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let mut pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    pooled.sort_by(f64::total_cmp);
    let ties = pooled.windows(2).any(|w| matches!(w, [x, y] if x == y));
    if !ties && n1 <= EXACT_MAX && n2 <= EXACT_MAX {
        return exact_p(a, b);
    }
    normal_p(a, b)
}

/// The exact two-sided p-value of U (pairs with a > b) under the null hypothesis, from the
/// count of arrangements of m a's and n b's with each U (recurrence on the last element).
fn exact_p(a: &[f64], b: &[f64]) -> f64 {
    let (m, n) = (a.len(), b.len());
    let u = a
        .iter()
        .map(|x| b.iter().filter(|y| x > *y).count())
        .sum::<usize>();
    // counts[j][u] for the current i: arrangements of i a's and j b's with statistic u.
    let max_u = m * n;
    let mut prev: Vec<Vec<f64>> = (0..=n)
        .map(|_| {
            let mut v = vec![0.0; max_u + 1];
            if let Some(first) = v.first_mut() {
                *first = 1.0;
            }
            v
        })
        .collect();
    for i in 1..=m {
        let mut cur: Vec<Vec<f64>> = vec![vec![0.0; max_u + 1]; n + 1];
        if let Some(c0) = cur.first_mut().and_then(|c| c.first_mut()) {
            *c0 = 1.0; // i a's, no b's: U = 0
        }
        for j in 1..=n {
            for k in 0..=max_u.min(i * j) {
                // Last element an a: it is greater than all j b's (adds j).
                let from_a = if k >= j {
                    prev.get(j)
                        .and_then(|v| v.get(k - j))
                        .copied()
                        .unwrap_or(0.0)
                } else {
                    0.0
                };
                // Last element a b: adds nothing.
                let from_b = cur
                    .get(j - 1)
                    .and_then(|v| v.get(k))
                    .copied()
                    .unwrap_or(0.0);
                if let Some(slot) = cur.get_mut(j).and_then(|v| v.get_mut(k)) {
                    *slot = from_a + from_b;
                }
            }
        }
        prev = cur;
    }
    let dist = prev.get(n).cloned().unwrap_or_default();
    let total: f64 = dist.iter().sum();
    if total <= 0.0 {
        return 1.0;
    }
    let below: f64 = dist.iter().take(u + 1).sum();
    let above: f64 = dist.iter().skip(u).sum();
    (2.0 * below.min(above) / total).min(1.0)
}

/// The normal approximation with tie correction and continuity correction.
fn normal_p(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len(), b.len());
    // Rank the pooled samples, averaging ranks over ties.
    let mut pooled: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = pooled.len();
    let mut ranks = vec![0.0; n];
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && pooled.get(j + 1).map(|p| p.0) == pooled.get(i).map(|p| p.0) {
            j += 1;
        }
        #[allow(clippy::cast_precision_loss, reason = "sample counts are small")]
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for r in ranks.iter_mut().take(j + 1).skip(i) {
            *r = avg;
        }
        #[allow(clippy::cast_precision_loss, reason = "sample counts are small")]
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    let r1: f64 = pooled
        .iter()
        .zip(&ranks)
        .filter(|(p, _)| p.1)
        .map(|(_, r)| r)
        .sum();
    #[allow(clippy::cast_precision_loss, reason = "sample counts are small")]
    let (n1, n2, n) = (n1 as f64, n2 as f64, n as f64);
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    // Continuity correction.
    let z = ((u1 - mean).abs() - 0.5).max(0.0) / var.sqrt();
    (2.0 * normal_sf(z)).min(1.0)
}

/// Upper tail of the standard normal distribution (Abramowitz–Stegun 26.2.17, error < 7.5e-8).
fn normal_sf(z: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.231_641_9 * z.abs());
    let poly = t
        * (0.319_381_530
            + t * (-0.356_563_782
                + t * (1.781_477_937 + t * (-1.821_255_978 + t * 1.330_274_429))));
    let tail = (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() * poly;
    if z >= 0.0 { tail } else { 1.0 - tail }
}

/// The median of a sample (0 for an empty one).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => v.get(n / 2).copied().unwrap_or(0.0),
        _ => {
            (v.get(n / 2 - 1).copied().unwrap_or(0.0) + v.get(n / 2).copied().unwrap_or(0.0)) / 2.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_samples_are_significant() {
        let a: Vec<f64> = (0..10).map(|i| 5.0 + f64::from(i) * 0.1).collect();
        let b: Vec<f64> = (0..10).map(|i| 100.0 + f64::from(i) * 0.1).collect();
        let p = mann_whitney_p(&a, &b);
        assert!(p < 0.001, "{p}");
    }

    #[test]
    fn the_exact_test_matches_known_values() {
        // Complete separation of 7 and 7: p = 2 / C(14, 7) = 2 / 3432.
        let a: Vec<f64> = (0..7).map(f64::from).collect();
        let b: Vec<f64> = (10..17).map(f64::from).collect();
        assert!((mann_whitney_p(&a, &b) - 2.0 / 3432.0).abs() < 1e-12);
        assert!((mann_whitney_p(&b, &a) - 2.0 / 3432.0).abs() < 1e-12);
        // 3 vs 3 complete separation: 2 / C(6, 3) = 0.1.
        assert!((mann_whitney_p(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn interleaved_samples_are_not() {
        let a: Vec<f64> = (0..10).map(|i| f64::from(i * 2)).collect();
        let b: Vec<f64> = (0..10).map(|i| f64::from(i * 2 + 1)).collect();
        assert!(mann_whitney_p(&a, &b) > 0.5);
        assert!((mann_whitney_p(&[1.0; 5], &[1.0; 5]) - 1.0).abs() < 1e-9);
        assert!((mann_whitney_p(&[], &[1.0]) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn normal_tail_matches_tables() {
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-6);
        assert!((normal_sf(1.96) - 0.025).abs() < 1e-4);
        assert!((normal_sf(-1.96) - 0.975).abs() < 1e-4);
    }

    #[test]
    fn medians() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-9);
        assert!((median(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-9);
        assert!(median(&[]).abs() < 1e-9);
    }
}
