//! The statistics convoy's judgements rest on: robust location and scale,
//! Student's t and two-sample tests. Pure arithmetic on slices of `f64`:
//! no I/O, no randomness, no imports from the rest of the harness, so
//! change-point detection ([`crate::history`]) and run comparison
//! ([`crate::report::compare`]) share one tested implementation.

/// Scales a median absolute deviation to the standard deviation of
/// normally distributed values.
pub const MAD_TO_SIGMA: f64 = 1.4826;
/// Scales a mean absolute deviation to the standard deviation of normally
/// distributed values (`√(π/2)`).
pub const MEAN_DEVIATION_TO_SIGMA: f64 = 1.2533;

pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample variance (n − 1).
pub fn variance(xs: &[f64]) -> f64 {
    let m = mean(xs);
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64
}

/// Two-sided p-value of Welch's t-test (unequal variances) that `a` and
/// `b` have the same mean. Sides of fewer than two points cannot be
/// tested (1.0). Two noiseless sides are the same level when their means
/// are equal (1.0) and certainly different otherwise (0.0).
pub fn welch(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < 2 || b.len() < 2 {
        return 1.0;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (va, vb) = (variance(a) / na, variance(b) / nb);
    let diff = mean(a) - mean(b);
    let se2 = va + vb;
    // Relative to the level: sums of equal floats leave rounding dust.
    let scale = mean(a).abs().max(mean(b).abs()).max(f64::MIN_POSITIVE);
    if se2 <= (scale * 1e-12).powi(2) {
        return if diff.abs() <= scale * 1e-12 {
            1.0
        } else {
            0.0
        };
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    student_t_two_sided(t, df)
}

/// `P(|T| ≥ |t|)` for Student's t with `df` degrees of freedom.
pub fn student_t_two_sided(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    incomplete_beta(x, df / 2.0, 0.5).clamp(0.0, 1.0)
}

/// The regularised incomplete beta function `I_x(a, b)`, by its continued
/// fraction (modified Lentz), using the symmetry `I_x(a,b) = 1 − I_{1−x}(b,a)`
/// where the fraction converges slowly.
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(1.0 - x, b, a) / b
    }
}

fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for num in [
            m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0)),
        ] {
            d = 1.0 + num * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + num / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, nine coefficients).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the approximation where it is accurate.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        sum += g / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The quantile of Student's t with `df` degrees of freedom that leaves
/// `p` in both tails together: `t` with `P(|T| ≥ t) = p`. Bisection on
/// [`student_t_two_sided`], exact to 1e-9.
pub fn t_two_sided_quantile(p: f64, df: f64) -> f64 {
    let p = p.clamp(1e-300, 1.0);
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while student_t_two_sided(hi, df) > p && hi < 1e12 {
        hi *= 2.0;
    }
    while hi - lo > 1e-9 * hi.max(1.0) {
        let mid = 0.5 * (lo + hi);
        if student_t_two_sided(mid, df) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The robust standard deviation of `a` and `b` around their own medians:
/// `1.4826 × MAD` of the pooled deviations, or, when most of them tie on
/// their median (MAD 0), the mean absolute deviation × 1.2533, so the
/// points that did move still count.
pub fn robust_sigma(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (median(a), median(b));
    let deviations: Vec<f64> = a
        .iter()
        .map(|x| (x - ma).abs())
        .chain(b.iter().map(|x| (x - mb).abs()))
        .collect();
    if deviations.is_empty() {
        return 0.0;
    }
    let mad = median(&deviations);
    if mad > 0.0 {
        MAD_TO_SIGMA * mad
    } else {
        MEAN_DEVIATION_TO_SIGMA * mean(&deviations)
    }
}

/// The Hodges–Lehmann estimate of how far `b` sits above `a`: the median
/// of every difference `b_j − a_i`. Robust (a few wild points move it
/// little) and nearly as efficient as the difference of means on normal
/// data.
pub fn hodges_lehmann(a: &[f64], b: &[f64]) -> f64 {
    let diffs: Vec<f64> = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| y - x))
        .collect();
    median(&diffs)
}

/// Two-sided p-value that `a` and `b` sit at the same level, from the
/// Hodges–Lehmann shift over the pooled robust standard deviation: `t =
/// HL / (σ √(π/3) √(1/m + 1/n))` against Student's t with `m + n − 2`
/// degrees of freedom (`π/3` is the estimate's variance on normal data
/// relative to a difference of means). Both the shift and the scale come
/// from medians, so a few wild points neither fake a shift nor hide one.
/// Sides of fewer than two points cannot be tested (1.0); noiseless sides
/// are the same level when their medians are equal (1.0), else certainly
/// different (0.0).
pub fn robust_shift_test(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < 2 || b.len() < 2 {
        return 1.0;
    }
    let (m, n) = (a.len() as f64, b.len() as f64);
    let shift = hodges_lehmann(a, b);
    let sigma = robust_sigma(a, b);
    let scale = median(a).abs().max(median(b).abs()).max(f64::MIN_POSITIVE);
    if sigma <= scale * 1e-12 {
        return if shift.abs() <= scale * 1e-12 {
            1.0
        } else {
            0.0
        };
    }
    let se = sigma * (std::f64::consts::PI / 3.0).sqrt() * (1.0 / m + 1.0 / n).sqrt();
    student_t_two_sided(shift / se, m + n - 2.0)
}

/// Two-sided p-value of the Mann–Whitney rank-sum test that `a` and `b`
/// come from the same distribution (ties count half). Exact (counting
/// arrangements) for small samples and in the tail that matters, a normal
/// approximation with the tie and continuity corrections where the answer
/// is far from significant (above 0.2).
/// Distribution-free: whatever the noise looks like, the p-value of a
/// quiet series is right.
pub fn rank_sum_test(a: &[f64], b: &[f64]) -> f64 {
    let (m, n) = (a.len(), b.len());
    if m == 0 || n == 0 {
        return 1.0;
    }
    // U: pairs where b is above a.
    let mut u = 0.0f64;
    for x in a {
        for y in b {
            u += if y > x {
                1.0
            } else if y == x {
                0.5
            } else {
                0.0
            };
        }
    }
    let mn = (m * n) as f64;
    let tail = u.min(mn - u);
    // Normal approximation, tie-corrected, as a screen.
    let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
    all.sort_by(f64::total_cmp);
    let total = (m + n) as f64;
    let mut ties = 0.0;
    let mut i = 0;
    while i < all.len() {
        let j = all[i..].iter().take_while(|&&v| v == all[i]).count();
        let t = j as f64;
        ties += t * t * t - t;
        i += j;
    }
    let var = mn / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)).max(1.0));
    if var <= 0.0 {
        return 1.0;
    }
    let z = ((mn / 2.0 - tail) - 0.5).max(0.0) / var.sqrt();
    let approx = (2.0 * normal_upper_tail(z)).min(1.0);
    // Counting costs m·n·U: done wherever it is cheap or the answer could
    // matter; far from significance the approximation is close enough.
    // Counting is bounded in time and memory, and C(m + n, m) must fit an
    // f64: beyond that the samples are large enough for the approximation.
    let cost = (m * n).saturating_mul(tail as usize + 1);
    if (approx > 0.2 && cost > 20_000) || cost > 5_000_000 || m + n > 1_000 {
        return approx;
    }
    (2.0 * rank_sum_lower_tail(m, n, tail.floor() as usize)).min(1.0)
}

/// `P(U ≤ u)` for the Mann–Whitney statistic of samples of `m` and `n`
/// with no ties: the share of the `C(m + n, m)` arrangements whose `U` is
/// at most `u`, counted by `N(i, j, u) = N(i − 1, j, u) + N(i, j − 1,
/// u − i)` (the largest point belongs to `a`, adding nothing, or to `b`,
/// above all `i` points of `a`).
fn rank_sum_lower_tail(m: usize, n: usize, u: usize) -> f64 {
    // counts[j][v]: arrangements of i points of a and j of b with U = v.
    let mut counts = vec![vec![0.0f64; u + 1]; n + 1];
    for row in counts.iter_mut() {
        row[0] = 1.0;
    }
    for i in 1..=m {
        for j in 1..=n {
            for v in (0..=u).rev() {
                let add = if v >= i { counts[j - 1][v - i] } else { 0.0 };
                counts[j][v] += add;
            }
        }
    }
    // The loop above adds row j − 1 of the current i: rows are updated in
    // order of j, so counts[j − 1] already holds N(i, j − 1, ·).
    let below: f64 = counts[n].iter().sum();
    below / binomial(m + n, m)
}

fn binomial(n: usize, k: usize) -> f64 {
    (ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)).exp()
}

/// `P(Z ≥ z)` for the standard normal.
pub fn normal_upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' Chebyshev fit,
/// relative error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn the_t_distribution_and_its_quantiles_match_known_values() {
        // Two-sided critical values: t(10) = 2.228 at 5 %, t(5) = 4.032 at 1 %.
        assert!((student_t_two_sided(2.228, 10.0) - 0.05).abs() < 5e-4);
        assert!((student_t_two_sided(4.032, 5.0) - 0.01).abs() < 1e-4);
        assert!((student_t_two_sided(0.0, 7.0) - 1.0).abs() < 1e-12);
        assert!((student_t_two_sided(1.96, 1e6) - 0.05).abs() < 1e-3);
        assert!((t_two_sided_quantile(0.05, 10.0) - 2.228).abs() < 1e-3);
        assert!((t_two_sided_quantile(0.01, 5.0) - 4.032).abs() < 1e-3);
        assert!((t_two_sided_quantile(0.0027, 1e6) - 3.0).abs() < 1e-2);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((normal_upper_tail(1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_upper_tail(-1.959_964) - 0.975).abs() < 1e-6);
    }

    #[test]
    fn the_rank_sum_test_counts_arrangements_exactly() {
        // 3 against 3, all of b above all of a: 1 arrangement of C(6,3) = 20
        // each way.
        let p = rank_sum_test(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert!((p - 0.1).abs() < 1e-12, "{p}");
        // 40 against 3 above them all: 2 / C(43,3) = 2 / 12,341.
        let a: Vec<f64> = (0..40).map(f64::from).collect();
        let p = rank_sum_test(&a, &[100.0, 101.0, 102.0]);
        assert!((p - 2.0 / 12_341.0).abs() < 1e-12, "{p}");
        // Direction does not matter; interleaved samples are no evidence.
        assert_eq!(p, rank_sum_test(&[100.0, 101.0, 102.0], &a));
        let odd: Vec<f64> = (0..20).map(|i| f64::from(2 * i)).collect();
        let even: Vec<f64> = (0..20).map(|i| f64::from(2 * i + 1)).collect();
        assert!(rank_sum_test(&odd, &even) > 0.7);
        // The exact lower tail against brute force: 4 against 5, U ≤ 6.
        let mut count = 0;
        for mask in 0u32..(1 << 9) {
            if mask.count_ones() != 5 {
                continue;
            }
            // b holds the positions set in mask; U = pairs with b above a.
            let u: u32 = (0..9)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| (0..i).filter(|j| mask & (1 << j) == 0).count() as u32)
                .sum();
            count += u32::from(u <= 6);
        }
        let exact = rank_sum_lower_tail(4, 5, 6);
        assert!((exact - f64::from(count) / 126.0).abs() < 1e-12, "{exact}");
    }

    #[test]
    fn large_samples_are_approximated_not_counted() {
        // Beyond what counting can hold: answered at once, and sensibly.
        let a: Vec<f64> = (0..3000).map(f64::from).collect();
        let b: Vec<f64> = (0..3000).map(|i| f64::from(i) + 0.5).collect();
        let p = rank_sum_test(&a, &b);
        assert!(p > 0.5 && p <= 1.0, "{p}");
        let far: Vec<f64> = (0..600).map(|i| f64::from(i) + 10_000.0).collect();
        let p = rank_sum_test(&a[..600], &far);
        assert!(p < 1e-10, "{p}");
    }

    #[test]
    fn ties_and_constants_are_no_evidence() {
        assert_eq!(rank_sum_test(&[5.0; 10], &[5.0; 4]), 1.0);
        assert_eq!(rank_sum_test(&[], &[1.0]), 1.0);
        // A step from all zeros to all ones is as certain as ranks can be.
        let p = rank_sum_test(&[0.0; 10], &[1.0; 10]);
        assert!(p < 2e-5, "{p}");
    }

    #[test]
    fn robust_estimates_ignore_a_wild_point() {
        let a = [10.0, 10.2, 9.8, 10.1, 9.9, 10.0, 500.0];
        let b = [11.0, 11.2, 10.8, 11.1, 10.9, 11.0];
        let shift = hodges_lehmann(&a, &b);
        assert!((shift - 1.0).abs() < 0.2, "{shift}");
        let sigma = robust_sigma(&a, &b);
        assert!(sigma < 0.3, "{sigma}");
        assert!(robust_shift_test(&a, &b) < 1e-3);
        assert_eq!(robust_shift_test(&[3.0, 3.0], &[3.0, 3.0]), 1.0);
        assert_eq!(robust_shift_test(&[3.0, 3.0], &[4.0, 4.0]), 0.0);
    }
}
