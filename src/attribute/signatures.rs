//! Within-epoch signatures of causes that are not a single jump: the
//! epoch-folded profile, data order, the running-mean artifact, the last batch.
//!
//! All of them look at the loss as a table, epochs × position in the epoch,
//! built from the prepared (cleaned, log, winsorized) series.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, DiscreteCDF};

use super::stats::{correlation, f_sf, fit_line, mean, median};
use crate::detect::Prepared;
use crate::trace::Trace;

/// The loss as epochs × positions: `rows[e][k]` is the prepared log-loss at position k of
/// epoch e (None where the step is missing). Only epochs of the typical length are kept, so
/// positions line up.
#[derive(Debug, Clone)]
pub struct EpochTable {
    pub rows: Vec<Vec<Option<f64>>>,
    /// Raw (not log) loss, for the running-mean test, which is about the logged value itself.
    pub raw: Vec<Vec<Option<f64>>>,
    pub epochs: Vec<u64>,
    pub len: usize,
}

impl EpochTable {
    pub fn build(trace: &Trace, p: &Prepared, steps_per_epoch: usize) -> Option<EpochTable> {
        if steps_per_epoch < 4 || !trace.has_epochs() {
            return None;
        }
        let mut rows = Vec::new();
        let mut raw = Vec::new();
        let mut epochs = Vec::new();
        let mut i = 0;
        let s = &trace.steps;
        while i < s.len() {
            let e = s[i].epoch;
            let mut j = i;
            while j < s.len() && s[j].epoch == e {
                j += 1;
            }
            if j - i == steps_per_epoch {
                let mut row = Vec::with_capacity(j - i);
                let mut rrow = Vec::with_capacity(j - i);
                for r in &s[i..j] {
                    let v = p
                        .index_of(r.step)
                        .filter(|&k| p.steps()[k] == r.step)
                        .and_then(|k| p.log_loss(k));
                    row.push(v);
                    rrow.push(r.loss.is_finite().then_some(r.loss));
                }
                rows.push(row);
                raw.push(rrow);
                epochs.push(e.unwrap_or(0));
            }
            i = j;
        }
        (rows.len() >= 2).then_some(EpochTable {
            rows,
            raw,
            epochs,
            len: steps_per_epoch,
        })
    }

    /// The table without its first epoch: the initial fast fall is not a pattern.
    fn settled(&self) -> &[Vec<Option<f64>>] {
        if self.rows.len() > 2 && self.epochs.first() == Some(&0) {
            &self.rows[1..]
        } else {
            &self.rows
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfilePoint {
    pub position: usize,
    /// Mean deviation from the epoch's mean log-loss.
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// Loss against position within the epoch, averaged over epochs (first epoch left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldedProfile {
    pub steps_per_epoch: usize,
    pub epochs: usize,
    pub points: Vec<ProfilePoint>,
}

pub fn folded_profile(t: &EpochTable) -> FoldedProfile {
    let rows = t.settled();
    let centred: Vec<Vec<Option<f64>>> = rows
        .iter()
        .map(|r| {
            let m = mean(&r.iter().flatten().copied().collect::<Vec<_>>());
            r.iter().map(|v| v.map(|x| x - m)).collect()
        })
        .collect();
    let points = (0..t.len)
        .map(|k| {
            let col: Vec<f64> = centred.iter().filter_map(|r| r[k]).collect();
            let m = mean(&col);
            let sd = if col.len() > 1 {
                (col.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (col.len() - 1) as f64).sqrt()
            } else {
                0.0
            };
            let half = 1.96 * sd / (col.len().max(1) as f64).sqrt();
            ProfilePoint {
                position: k,
                mean: m,
                low: m - half,
                high: m + half,
            }
        })
        .collect();
    FoldedProfile {
        steps_per_epoch: t.len,
        epochs: rows.len(),
        points,
    }
}

/// A repeating within-epoch pattern beyond a per-epoch line (which a sawtooth is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataOrderTest {
    pub f: f64,
    pub p_value: f64,
    /// Share of the within-epoch variation explained by position.
    pub eta_squared: f64,
    /// Correlation of the profiles of even and odd epochs: a real pattern repeats.
    pub split_half_r: f64,
    pub epochs: usize,
}

pub fn data_order(t: &EpochTable) -> Option<DataOrderTest> {
    // Boundary positions belong to other causes (epoch start, last batch).
    data_order_from(t, 1)
}

/// The data-order test on the positions from `lo` to the one before the last.
pub fn data_order_from(t: &EpochTable, lo: usize) -> Option<DataOrderTest> {
    let rows = t.settled();
    let e = rows.len();
    let (lo, hi) = (lo.max(1), t.len.saturating_sub(1));
    let kk = hi.saturating_sub(lo);
    if e < 4 || kk < 4 {
        return None;
    }
    let mut resid: Vec<Vec<f64>> = Vec::new();
    for r in rows {
        let pts: Vec<(f64, f64)> = (lo..hi)
            .filter_map(|k| r[k].map(|v| (k as f64, v)))
            .collect();
        if pts.len() != kk {
            continue;
        }
        let (x, y): (Vec<f64>, Vec<f64>) = pts.into_iter().unzip();
        let (a, b, _) = fit_line(&x, &y)?;
        resid.push(x.iter().zip(&y).map(|(x, y)| y - a - b * x).collect());
    }
    let e = resid.len();
    if e < 4 {
        return None;
    }
    let profile: Vec<f64> = (0..kk)
        .map(|k| mean(&resid.iter().map(|r| r[k]).collect::<Vec<_>>()))
        .collect();
    let ss_pos: f64 = e as f64 * profile.iter().map(|m| m * m).sum::<f64>();
    let ss_err: f64 = resid
        .iter()
        .map(|r| {
            r.iter()
                .zip(&profile)
                .map(|(v, m)| (v - m).powi(2))
                .sum::<f64>()
        })
        .sum();
    let df1 = (kk - 1) as f64;
    let df2 = ((e * kk) as f64 - kk as f64 - 2.0 * e as f64).max(1.0);
    let f = (ss_pos / df1) / (ss_err / df2).max(1e-300);
    let half = |parity: usize| -> Vec<f64> {
        (0..kk)
            .map(|k| {
                mean(
                    &resid
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % 2 == parity)
                        .map(|(_, r)| r[k])
                        .collect::<Vec<_>>(),
                )
            })
            .collect()
    };
    Some(DataOrderTest {
        f,
        p_value: f_sf(f, df1, df2),
        eta_squared: ss_pos / (ss_pos + ss_err).max(1e-300),
        split_half_r: correlation(&half(0), &half(1)),
        epochs: e,
    })
}

/// The signature of an epoch-cumulative running mean: step-to-step changes shrink like
/// 1/k with the position k in the epoch, and reset at each epoch start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanTest {
    /// Slope of log |change| against log position: about -1 for a running mean, 0 for raw losses.
    pub slope: f64,
    pub r_squared: f64,
    pub epochs: usize,
}

pub fn running_mean(t: &EpochTable) -> Option<RunningMeanTest> {
    if t.len < 8 || t.raw.len() < 2 {
        return None;
    }
    let mut x = Vec::new();
    let mut y = Vec::new();
    for k in 1..t.len {
        let d: Vec<f64> = t
            .raw
            .iter()
            .filter_map(|r| Some((r[k]? - r[k - 1]?).abs()))
            .collect();
        let m = median(&d);
        if m.is_finite() && m > 0.0 {
            x.push(((k + 1) as f64).ln());
            y.push(m.ln());
        }
    }
    let (_, slope, rss) = fit_line(&x, &y)?;
    let my = mean(&y);
    let tss: f64 = y.iter().map(|v| (v - my).powi(2)).sum();
    Some(RunningMeanTest {
        slope,
        r_squared: if tss > 0.0 { 1.0 - rss / tss } else { 0.0 },
        epochs: t.raw.len(),
    })
}

/// Points before a position that its reference line runs through: enough to average the
/// noise, few enough that the curve's bend within an epoch does not enter the residual.
const LINE_POINTS: usize = 20;
/// Fewest points before a position in its epoch for it to be tested (a line through
/// fewer is too noisy).
const MIN_LINE_POINTS: usize = 6;
/// Fewest epochs a position's spread is a median over.
const MIN_EPOCHS: usize = 3;

/// How far the last step of each epoch sits from the line through the steps before it,
/// in which direction, and how widely it scatters against the other positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastBatchTest {
    /// Median over epochs of the last step's residual, in units of the local noise.
    pub median_z: f64,
    /// Median residual in log-loss.
    pub median_effect_log: f64,
    /// Two-sided sign test of the residuals against 0.
    pub p_value: f64,
    pub epochs: usize,
    /// Median |z| of the last steps over the median, across the other positions, of the
    /// same statistic (1 when the last step scatters like any other).
    #[serde(default)]
    pub spread_ratio: f64,
    /// One-sided rank p of the last step's median |z| among the other positions' (one
    /// added to both counts): a dispersion test, blind to the residuals' signs.
    #[serde(default = "one")]
    pub spread_p: f64,
    /// Other positions the last one was ranked among.
    #[serde(default)]
    pub spread_positions: usize,
}

fn one() -> f64 {
    1.0
}

/// The residual, in local noise units and in log-loss, of point `i` off the line through
/// up to [`LINE_POINTS`] points before it, from `begin` on. `buf` is scratch space reused
/// across calls: this runs at every position of every epoch.
fn residual_at(
    p: &Prepared,
    begin: usize,
    i: usize,
    buf: &mut (Vec<f64>, Vec<f64>),
) -> Option<(f64, f64)> {
    let from = begin.max(i.saturating_sub(LINE_POINTS));
    let (xs, ys) = buf;
    xs.clear();
    ys.clear();
    for j in from..i {
        if let Some(y) = p.log_loss(j) {
            xs.push(p.steps()[j] as f64);
            ys.push(y);
        }
    }
    if xs.len() < MIN_LINE_POINTS {
        return None;
    }
    let (a, b, rss) = fit_line(xs, ys)?;
    let y = p.log_loss(i)?;
    let sd = (rss / (xs.len() as f64 - 2.0))
        .sqrt()
        .max(p.local_sigma(i) * 0.5);
    let r = y - (a + b * p.steps()[i] as f64);
    (sd > 0.0).then_some((r / sd, r))
}

/// The last step of each epoch against the line through the steps before it: the sign test
/// (a short last batch with batch norm in train mode mostly raises the loss) and the
/// dispersion test (a mean over fewer examples scatters more, both ways: with 11 epochs
/// of which 3 fall below, a sign test has no power but the spread shows).
pub fn last_batch(trace: &Trace, p: &Prepared, starts: &[u64]) -> Option<LastBatchTest> {
    let mut z = Vec::new();
    let mut eff = Vec::new();
    // |z| by position from the epoch start, over epochs (the last step excluded).
    let mut by_pos: Vec<Vec<f64>> = Vec::new();
    let mut buf = (
        Vec::with_capacity(LINE_POINTS),
        Vec::with_capacity(LINE_POINTS),
    );
    let mut prev_start: Option<usize> = p.index_of(trace.steps.first()?.step);
    for &s in starts {
        let Some(next) = p.index_of(s) else { break };
        let Some(begin) = prev_start else { break };
        prev_start = Some(next);
        if next < begin + MIN_LINE_POINTS {
            continue;
        }
        let last = next - 1;
        if let Some((zi, r)) = residual_at(p, begin, last, &mut buf) {
            z.push(zi);
            eff.push(r);
        }
        for i in begin + MIN_LINE_POINTS..last {
            let k = i - begin;
            if let Some((zi, _)) = residual_at(p, begin, i, &mut buf) {
                if by_pos.len() <= k {
                    by_pos.resize(k + 1, Vec::new());
                }
                by_pos[k].push(zi.abs());
            }
        }
    }
    if z.len() < MIN_EPOCHS {
        return None;
    }
    // A sign test: the last batch's loss is noisy (few examples), so a t-test on its
    // residuals is at the mercy of one wild epoch; the direction is what repeats.
    let pos = z.iter().filter(|&&v| v > 0.0).count() as u64;
    let n = z.iter().filter(|&&v| v != 0.0).count() as u64;
    let k = pos.min(n - pos);
    let p_value = match Binomial::new(0.5, n) {
        Ok(b) if n > 0 => (2.0 * b.cdf(k)).min(1.0),
        _ => 1.0,
    };
    let abs_z: Vec<f64> = z.iter().map(|v| v.abs()).collect();
    let t_last = median(&abs_z);
    let others: Vec<f64> = by_pos
        .iter()
        .filter(|v| v.len() >= MIN_EPOCHS)
        .map(|v| median(v))
        .collect();
    let (spread_ratio, spread_p) = if others.is_empty() {
        (1.0, 1.0)
    } else {
        let typical = median(&others);
        let ge = others.iter().filter(|&&t| t >= t_last).count();
        (
            if typical > 0.0 { t_last / typical } else { 1.0 },
            (ge + 1) as f64 / (others.len() + 1) as f64,
        )
    };
    Some(LastBatchTest {
        median_z: median(&z),
        median_effect_log: median(&eff),
        p_value,
        epochs: z.len(),
        spread_ratio,
        spread_p,
        spread_positions: others.len(),
    })
}
