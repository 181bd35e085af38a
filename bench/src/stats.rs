//! Small statistics over latency samples, shared by every suite.

/// Sorts samples ascending so they can be passed to [`percentile`].
///
/// `f64::total_cmp` gives a total order, so a stray NaN cannot make the sort
/// panic or scramble the order; NaNs sort to the end.
pub(crate) fn sort_samples(samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
}

/// The `p`-th percentile (`p` in 0..=100, e.g. 50.0 for the median, 99.0 for
/// p99) of samples already sorted ascending (see [`sort_samples`]).
///
/// Interpolates linearly between the two nearest ranks (the same definition
/// as numpy's default), so p50 of an even-sized set is the mean of the two
/// middle samples rather than an arbitrary pick of one. `p` outside 0..=100
/// is clamped. An empty slice has no percentile: the result is NaN, which the
/// report prints as `NaN` (text) or `null` (JSON) rather than a fake number.
pub(crate) fn percentile(sorted_samples: &[f64], p: f64) -> f64 {
    debug_assert!(
        sorted_samples.windows(2).all(|w| w[0] <= w[1]),
        "percentile needs samples sorted ascending"
    );
    let n = sorted_samples.len();
    if n == 0 {
        return f64::NAN;
    }
    let p = if p.is_nan() {
        50.0
    } else {
        p.clamp(0.0, 100.0)
    };
    let rank = p / 100.0 * (n - 1) as f64;
    // `rank` is within 0..=n-1 by the clamp above, so both indexes are in
    // bounds; the casts truncate a non-negative value, which is the intent.
    let lower = rank.floor() as usize;
    let upper = rank.ceil() as usize;
    let weight = rank - lower as f64;
    sorted_samples[lower] + (sorted_samples[upper] - sorted_samples[lower]) * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_has_no_percentile() {
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn single_sample_is_every_percentile() {
        for p in [0.0, 50.0, 99.0, 100.0] {
            assert_eq!(percentile(&[7.5], p), 7.5);
        }
    }

    #[test]
    fn median_of_odd_and_even_sets() {
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), 2.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.5);
    }

    #[test]
    fn ends_and_interpolation() {
        let samples: Vec<f64> = (1..=101).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.0), 1.0);
        assert_eq!(percentile(&samples, 100.0), 101.0);
        assert_eq!(percentile(&samples, 99.0), 100.0);
        assert_eq!(percentile(&samples, 12.5), 13.5);
    }

    #[test]
    fn out_of_range_p_is_clamped() {
        let samples = [1.0, 2.0, 3.0];
        assert_eq!(percentile(&samples, -5.0), 1.0);
        assert_eq!(percentile(&samples, 250.0), 3.0);
    }

    #[test]
    fn sort_then_percentile() {
        let mut samples = vec![9.0, 1.0, 5.0, 3.0, 7.0];
        sort_samples(&mut samples);
        assert_eq!(samples, [1.0, 3.0, 5.0, 7.0, 9.0]);
        assert_eq!(percentile(&samples, 50.0), 5.0);
    }
}
