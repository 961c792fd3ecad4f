//! The textbook shape of a training curve, fitted to a whole series: the loss decays
//! exponentially to a floor, `c + a exp(-t / tau)`, on log-loss. Three numbers describe
//! it, against the dozen a spline needs for the same bend; subtracted first, it leaves the
//! spline only the curve's departures from that shape, so the spline can be stiff, and a
//! stiff trend takes far less of a small drop than a flexible one (see `stepwise`).
//! When a curve is not of this shape the spline bends more, and its knot choice (by BIC)
//! falls back to what it would do without this.

/// Blocks the series is averaged into for the fit: the shape has three parameters,
/// so a few hundred averages pin it down as well as every point does.
const BLOCKS: usize = 400;
/// Time constants tried, as multiples of the series length, log-spaced.
const TAU_RANGE: (f64, f64) = (0.005, 20.0);
const TAU_GRID: usize = 64;
/// Gauss-Newton rounds for the floor and amplitude at one time constant.
const ROUNDS: usize = 6;
/// Golden-section rounds refining the time constant: each narrows its range by 0.618.
const GOLDEN_ROUNDS: usize = 30;

/// The fitted shape at every index, on log-loss; `None` when no decay fits (too few
/// points, or a curve that rises).
pub(crate) fn fit(y: &[f64]) -> Option<Vec<f64>> {
    let n = y.len();
    if n < 64 {
        return None;
    }
    let per = n.div_ceil(BLOCKS);
    let (xs, ys): (Vec<f64>, Vec<f64>) = y
        .chunks(per)
        .enumerate()
        .map(|(b, c)| {
            let x = (b * per) as f64 + (c.len() as f64 - 1.0) / 2.0;
            (x, c.iter().sum::<f64>() / c.len() as f64)
        })
        .unzip();
    let ws: Vec<f64> = y.chunks(per).map(|c| c.len() as f64).collect();
    let (lo, hi) = (TAU_RANGE.0.ln(), TAU_RANGE.1.ln());
    let step = (hi - lo) / (TAU_GRID - 1) as f64;
    let at = |log_tau: f64| fit_at(&xs, &ys, &ws, n as f64 * log_tau.exp());
    let mut best: Option<(f64, f64)> = None;
    for k in 0..TAU_GRID {
        let lt = lo + step * k as f64;
        if let Some((_, _, rss)) = at(lt)
            && best.is_none_or(|b| rss < b.1)
        {
            best = Some((lt, rss));
        }
    }
    // Golden-section search between the grid neighbours of the best time constant: a
    // grid step of 14% in tau leaves a bend of a few hundredths in log-loss, as large as
    // the drops sought.
    let (mut a, mut b) = (best?.0 - step, best?.0 + step);
    let cost = |lt: f64| at(lt).map_or(f64::INFINITY, |r| r.2);
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    let (mut x1, mut x2) = (b - phi * (b - a), a + phi * (b - a));
    let (mut f1, mut f2) = (cost(x1), cost(x2));
    for _ in 0..GOLDEN_ROUNDS {
        if f1 <= f2 {
            b = x2;
            (x2, f2) = (x1, f1);
            x1 = b - phi * (b - a);
            f1 = cost(x1);
        } else {
            a = x1;
            (x1, f1) = (x2, f2);
            x2 = a + phi * (b - a);
            f2 = cost(x2);
        }
    }
    let lt = if f1.min(f2) <= best?.1 {
        if f1 <= f2 { x1 } else { x2 }
    } else {
        best?.0
    };
    let tau = n as f64 * lt.exp();
    let (c, a, _) = at(lt)?;
    let floor = f64::MIN_POSITIVE;
    Some(
        (0..n)
            .map(|t| (c + a * (-(t as f64) / tau).exp()).max(floor).ln())
            .collect(),
    )
}

/// Floor and amplitude at one time constant, least squares on log-loss; with the sum of
/// squares. Starts from the linear fit on the loss scale weighted by the inverse squared
/// loss (the log's first-order error), then refines by Gauss-Newton.
fn fit_at(xs: &[f64], ys: &[f64], ws: &[f64], tau: f64) -> Option<(f64, f64, f64)> {
    let us: Vec<f64> = xs.iter().map(|x| (-x / tau).exp()).collect();
    let (mut c, mut a) = {
        let mut m = [[0.0; 2]; 2];
        let mut r = [0.0; 2];
        for ((u, y), w) in us.iter().zip(ys).zip(ws) {
            let l = y.exp();
            let w = w / (l * l);
            let v = [1.0, *u];
            for i in 0..2 {
                r[i] += w * v[i] * l;
                for j in 0..2 {
                    m[i][j] += w * v[i] * v[j];
                }
            }
        }
        solve2(m, r)?
    };
    let rss = |c: f64, a: f64| -> Option<f64> {
        let mut s = 0.0;
        for ((u, y), w) in us.iter().zip(ys).zip(ws) {
            let l = c + a * u;
            if l.is_nan() || l <= 0.0 {
                return None;
            }
            s += w * (y - l.ln()).powi(2);
        }
        Some(s)
    };
    let mut cur = rss(c, a)?;
    for _ in 0..ROUNDS {
        let mut m = [[0.0; 2]; 2];
        let mut r = [0.0; 2];
        for ((u, y), w) in us.iter().zip(ys).zip(ws) {
            let l = c + a * u;
            let e = y - l.ln();
            let g = [1.0 / l, u / l];
            for i in 0..2 {
                r[i] += w * g[i] * e;
                for j in 0..2 {
                    m[i][j] += w * g[i] * g[j];
                }
            }
        }
        let Some((dc, da)) = solve2(m, r) else {
            break;
        };
        // Halve the step until it stays in the positive region and improves the fit.
        let mut s = 1.0;
        let mut moved = false;
        for _ in 0..20 {
            if let Some(v) = rss(c + s * dc, a + s * da)
                && v <= cur
            {
                c += s * dc;
                a += s * da;
                cur = v;
                moved = true;
                break;
            }
            s *= 0.5;
        }
        if !moved {
            break;
        }
    }
    cur.is_finite().then_some((c, a, cur))
}

fn solve2(m: [[f64; 2]; 2], r: [f64; 2]) -> Option<(f64, f64)> {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    if det.is_nan() || det.abs() <= 1e-12 * (m[0][0] * m[1][1]).abs().max(1e-300) {
        return None;
    }
    Some((
        (r[0] * m[1][1] - r[1] * m[0][1]) / det,
        (m[0][0] * r[1] - m[1][0] * r[0]) / det,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_noiseless_decay_to_a_floor() {
        let truth: Vec<f64> = (0..5000)
            .map(|t| (0.2 + 2.0 * (-(t as f64) / 900.0).exp()).ln())
            .collect();
        let g = fit(&truth).unwrap();
        let worst = g
            .iter()
            .zip(&truth)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 0.002, "{worst}");
    }

    #[test]
    fn a_rising_or_short_series_has_no_decay_and_a_flat_one_fits_flat() {
        assert!(fit(&[0.0; 10]).is_none());
        let flat = vec![-1.0; 1000];
        let g = fit(&flat).unwrap();
        assert!(g.iter().all(|v| (v + 1.0).abs() < 1e-6), "{:?}", &g[..3]);
        let rising: Vec<f64> = (0..1000).map(|t| (0.1 + t as f64 / 1000.0).ln()).collect();
        if let Some(g) = fit(&rising) {
            assert!(g.iter().all(|v| v.is_finite()));
        }
    }
}
