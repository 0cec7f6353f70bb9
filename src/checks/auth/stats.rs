//! The statistics of the timing test: a two-sided Mann-Whitney U test (normal approximation
//! with tie correction), which assumes nothing about the shape of response-time distributions.

/// Two-sided p-value that samples `a` and `b` come from the same distribution.
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
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
