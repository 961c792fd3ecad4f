//! Downsampling that keeps what the eye must see.
//!
//! A million steps drawn into 650 pixel columns: plain decimation would keep one
//! point in 1,500 and could skip a drop or a spike entirely. Per-column extremes keep
//! every excursion visible, at a cost linear in the input.

/// Plot-area width in pixels, about: one column of the downsampled data per pixel.
pub const COLUMNS: usize = 650;

fn column(x: f64, x0: f64, x1: f64, cols: usize) -> usize {
    let f = if x1 > x0 { (x - x0) / (x1 - x0) } else { 0.0 };
    ((f * cols as f64) as usize).min(cols.saturating_sub(1))
}

/// Min/max of `(x, lo, hi)` per pixel column, as a band: `(x, lo, hi)` per non-empty
/// column. Non-finite values are skipped.
pub fn envelope(
    points: impl Iterator<Item = (f64, f64, f64)>,
    x_range: (f64, f64),
    cols: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let cols = cols.max(1);
    let (x0, x1) = x_range;
    let mut lo = vec![f64::INFINITY; cols];
    let mut hi = vec![f64::NEG_INFINITY; cols];
    for (x, l, h) in points {
        if !(x.is_finite() && l.is_finite() && h.is_finite()) {
            continue;
        }
        let c = column(x, x0, x1, cols);
        lo[c] = lo[c].min(l);
        hi[c] = hi[c].max(h);
    }
    let w = (x1 - x0) / cols as f64;
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for c in 0..cols {
        if lo[c] <= hi[c] {
            out.0.push(x0 + (c as f64 + 0.5) * w);
            out.1.push(lo[c]);
            out.2.push(hi[c]);
        }
    }
    out
}

/// A line thinned to at most four points per pixel column (first, min, max, last, in
/// x order), which draws the same pixels as the full line. Expects x sorted.
pub fn thin_line(points: &[(f64, f64)], x_range: (f64, f64), cols: usize) -> Vec<(f64, f64)> {
    if points.len() <= 4 * cols.max(1) {
        return points.to_vec();
    }
    let (x0, x1) = x_range;
    let mut out = Vec::with_capacity(4 * cols);
    let mut i = 0;
    while i < points.len() {
        let c = column(points[i].0, x0, x1, cols);
        let mut j = i;
        let (mut imin, mut imax) = (i, i);
        while j < points.len() && column(points[j].0, x0, x1, cols) == c {
            if points[j].1 < points[imin].1 {
                imin = j;
            }
            if points[j].1 > points[imax].1 {
                imax = j;
            }
            j += 1;
        }
        let mut keep = [i, imin, imax, j - 1];
        keep.sort_unstable();
        let mut last = usize::MAX;
        for k in keep {
            if k != last {
                out.push(points[k]);
                last = k;
            }
        }
        i = j;
    }
    out
}

/// The `q`-quantiles (0 to 1) of the finite values, by selection: O(n), no full sort.
pub fn quantiles(values: &mut [f64], qs: &[f64]) -> Vec<f64> {
    if values.is_empty() {
        return vec![f64::NAN; qs.len()];
    }
    let n = values.len();
    qs.iter()
        .map(|q| {
            let k = ((q.clamp(0.0, 1.0) * (n - 1) as f64).round() as usize).min(n - 1);
            *values.select_nth_unstable_by(k, |a, b| a.total_cmp(b)).1
        })
        .collect()
}

/// Linear interpolation in a step-sorted series; None outside it.
pub fn interpolate(series: &[(f64, f64)], x: f64) -> Option<f64> {
    let first = series.first()?;
    let last = series.last()?;
    if x < first.0 || x > last.0 {
        return None;
    }
    let i = series.partition_point(|p| p.0 < x);
    if i == 0 {
        return Some(first.1);
    }
    let (a, b) = (series[i - 1], series.get(i).copied().unwrap_or(*last));
    if b.0 > a.0 {
        Some(a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0))
    } else {
        Some(b.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keeps_a_one_point_dip() {
        let pts = (0..100_000).map(|i| {
            let y = if i == 54_321 { 0.01 } else { 1.0 };
            (i as f64, y, y)
        });
        let (x, lo, hi) = envelope(pts, (0.0, 99_999.0), 100);
        assert_eq!(x.len(), 100);
        assert!(lo.contains(&0.01));
        assert!(hi.iter().all(|&h| h == 1.0));
    }

    #[test]
    fn thin_line_keeps_extremes_in_order() {
        let pts: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (i as f64, if i == 777 { 9.0 } else { (i % 7) as f64 }))
            .collect();
        let t = thin_line(&pts, (0.0, 9_999.0), 50);
        assert!(t.len() <= 200);
        assert!(t.iter().any(|p| p.1 == 9.0));
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn quantiles_and_interpolation_handle_edges() {
        assert!(quantiles(&mut [], &[0.5])[0].is_nan());
        assert_eq!(
            quantiles(&mut [3.0, 1.0, 2.0], &[0.0, 0.5, 1.0]),
            [1.0, 2.0, 3.0]
        );
        let s = [(0.0, 0.0), (10.0, 1.0)];
        assert_eq!(interpolate(&s, 5.0), Some(0.5));
        assert_eq!(interpolate(&s, 11.0), None);
        assert_eq!(interpolate(&[], 1.0), None);
    }
}
