//! The tests at events: each event type's jump against the same statistic at random
//! times (or against the other epoch starts), and each single event's own test.
//!
//! A jump is the gap between two local lines at the event ([`JumpShape`]); windows stop at
//! other events ([`windows`]), and the null moves the same windows to random times with the
//! same room ([`jumps`]). [`event_stat`] returns the type-level statistic and the per-event
//! tests; causes read both (see `causes/`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::evidence::{Direction, EventTest, LogUnits};
use super::{AnalyzeOptions, AttributionConfig, EventEffect, EventStat, stats};
use crate::detect::Prepared;
use crate::events::EventKind;

/// How an event type's jump is measured: local lines on either side of the event, the one
/// before stopping `gap` points early and the one after starting `settle` points late, each
/// at most `window` points long. With a `period` (a cycle within the epoch, see
/// [`super::cycle`]), the lines run through the means of whole periods instead of points.
#[derive(Debug, Clone, Copy)]
struct JumpShape {
    gap: usize,
    settle: usize,
    window: usize,
    period: Option<usize>,
}

/// Fewest whole periods on each side of an event for a line through period means (two
/// would fit exactly and leave no noise estimate).
const MIN_PERIODS: usize = 3;

impl JumpShape {
    /// The shape for `kind` in the log's own units, on a series of `n` points: physical
    /// delays (an LR cut's settling) are steps turned into points, every line has at least
    /// `min_window_points` and at most `max_window_share` of the series, and in a log of
    /// window summaries the point whose window straddles the event belongs to neither side.
    ///
    /// At epoch starts with a within-epoch `period`, each line covers whole periods (at
    /// least [`MIN_PERIODS`]): the cycle's phase is the same at every epoch start and
    /// anywhere at random times, so a line through points would measure the phase too.
    fn of(
        kind: EventKind,
        units: LogUnits,
        cfg: &AttributionConfig,
        n: usize,
        period: Option<usize>,
    ) -> JumpShape {
        let cap = ((n as f64 * cfg.max_window_share) as usize).max(cfg.min_window_points.min(n));
        let window = |steps: u64| units.points(steps).max(cfg.min_window_points).min(cap);
        match kind {
            // A short last batch right before the boundary must not pose as a drop after it;
            // re-seen samples act on the very first batch, so the line after starts at once.
            EventKind::EpochStart => {
                let w = window(cfg.event_window_steps);
                let period = period.filter(|&p| p > 0 && MIN_PERIODS * p <= cap);
                JumpShape {
                    gap: 1,
                    settle: units.straddle(),
                    window: period.map_or(w, |p| (w / p).max(MIN_PERIODS) * p),
                    period,
                }
            }
            // An LR cut acts through the optimizer: momentum and the shrinking noise ball
            // take tens of steps to bring the loss to its new level, so the line after the
            // cut starts once that has settled, and reaches further to see the new level.
            EventKind::LrDecrease => JumpShape {
                gap: 0,
                settle: units.points(cfg.lr_settle_steps) + units.straddle(),
                window: window(cfg.lr_window_steps),
                period: None,
            },
            _ => JumpShape {
                gap: 0,
                settle: units.straddle(),
                window: window(cfg.event_window_steps),
                period: None,
            },
        }
    }
}

/// A jump test shaped by `shape`, measured as the gap between the two lines at the event.
fn shaped_jump(
    p: &Prepared,
    at: usize,
    left: usize,
    right: usize,
    shape: JumpShape,
) -> Option<(f64, f64)> {
    let l_end = at.checked_sub(shape.gap)?;
    let lo = left.max(l_end.saturating_sub(shape.window));
    let r_start = at + shape.settle;
    let hi = right.min(r_start + shape.window).min(p.len());
    if l_end < lo + 3 || hi < r_start + 3 {
        return None;
    }
    let x0 = p.steps()[at] as f64;
    let point = |i: usize| Some((p.steps()[i] as f64 - x0, p.log_loss(i)?));
    // With a period, one point per whole period (its mean place and level), counted from
    // the event outwards so that each side holds whole periods only.
    let block = |a: usize, b: usize| -> Option<(f64, f64)> {
        let (xs, ys): (Vec<f64>, Vec<f64>) = (a..b).filter_map(point).unzip();
        (2 * xs.len() >= b - a).then(|| (stats::mean(&xs), stats::mean(&ys)))
    };
    let points = |a: usize, b: usize, from_end: bool| -> (Vec<f64>, Vec<f64>) {
        match shape.period {
            None => (a..b).filter_map(point).unzip(),
            Some(per) => {
                let whole = (b - a) / per;
                (0..whole)
                    .filter_map(|k| {
                        let (s, e) = if from_end {
                            (b - (k + 1) * per, b - k * per)
                        } else {
                            (a + k * per, a + (k + 1) * per)
                        };
                        block(s, e)
                    })
                    .unzip()
            }
        }
    };
    let side = |a: usize, b: usize| -> Option<(f64, f64, f64, usize)> {
        let (xs, ys) = points(a, b, a < at);
        let (icpt, slope, rss) = stats::fit_line(&xs, &ys)?;
        let n = xs.len() as f64;
        let mx = stats::mean(&xs);
        let sxx: f64 = xs.iter().map(|v| (v - mx).powi(2)).sum();
        // Variance factor of the fitted level at x = 0 (the boundary).
        Some((icpt + slope * 0.0, 1.0 / n + mx * mx / sxx, rss, xs.len()))
    };
    let (yl, vl, rl, nl) = side(lo, l_end)?;
    let (yr, vr, rr, nr) = side(r_start, hi)?;
    if shape.period.is_some() && nl.min(nr) < MIN_PERIODS {
        return None;
    }
    let dof = (nl + nr) as f64 - 4.0;
    // The floor on the noise: half the local noise per point, over the points a period
    // mean averages.
    let per_point = shape.period.unwrap_or(1) as f64;
    let s2 = ((rl + rr) / dof.max(1.0)).max((0.5 * p.local_sigma(at)).powi(2) / per_point);
    let se = (s2 * (vl + vr)).sqrt();
    let jump = yr - yl;
    Some((jump, if se > 0.0 { jump / se } else { 0.0 }))
}

struct Windows {
    at: Vec<usize>,
    left: Vec<usize>,
    right: Vec<usize>,
    fences: Vec<usize>,
    /// The fences of other events only (not this type's own).
    other_fences: Vec<usize>,
}

/// Each event's window reaches to its neighbouring events of the same type, and stops at
/// any `fence` (other events' steps) so a window never straddles another cause.
fn windows(p: &Prepared, steps: &[u64], fences: &[u64]) -> Windows {
    let mut at: Vec<usize> = steps
        .iter()
        .filter_map(|&s| p.index_of(s))
        .filter(|&i| i > 0)
        .collect();
    at.sort_unstable();
    at.dedup();
    let n = p.len();
    let mut fence_idx: Vec<usize> = fences.iter().filter_map(|&s| p.index_of(s)).collect();
    fence_idx.sort_unstable();
    let mut left = Vec::with_capacity(at.len());
    let mut right = Vec::with_capacity(at.len());
    for (k, &a) in at.iter().enumerate() {
        let mut l = if k == 0 { 0 } else { at[k - 1] };
        let mut r = if k + 1 < at.len() { at[k + 1] } else { n };
        for &f in &fence_idx {
            if f + 1 < a && f > l {
                l = f;
            }
            if f > a + 1 && f < r {
                r = f;
            }
        }
        left.push(l);
        right.push(r);
    }
    // At random times the windows also stop at this type's own events, so a null window
    // never straddles the very drop under test (which would pull the null towards it).
    let other_fences = fence_idx.clone();
    fence_idx.extend(at.iter().copied());
    fence_idx.sort_unstable();
    fence_idx.dedup();
    Windows {
        at,
        left,
        right,
        fences: fence_idx,
        other_fences,
    }
}

/// One measured jump: the event's place in its type's list, the index it was measured
/// at, the jump in log-loss and its z.
#[derive(Debug, Clone, Copy)]
struct Jump {
    k: usize,
    at: usize,
    jump: f64,
    z: f64,
    /// At a random time: the windows kept at least three quarters of the event's own room
    /// on each side after stopping at other events' fences too (only such draws test one
    /// event alone).
    full: bool,
}

/// The jumps at the events of `w`, moved by `offset` points (0: at the events themselves).
/// At a random time the windows must have about the room the event's own had before the
/// ends of the series (at least three quarters on each side): a line shortened by the end
/// bends less with the curve, and a null of short windows would make any event on a curved
/// stretch look significant (short logs). Fences cut random windows as they cut the event's.
fn jumps(p: &Prepared, w: &Windows, offset: isize, shape: JumpShape) -> Vec<Jump> {
    let n = p.len() as isize;
    w.at.iter()
        .enumerate()
        .filter_map(|(k, &a)| {
            let shift = |i: usize| ((i as isize + offset).rem_euclid(n)) as usize;
            let a2 = shift(a);
            let wl = a - w.left[k];
            let wr = w.right[k] - a;
            let mut lo = a2.saturating_sub(wl);
            let mut hi = (a2 + wr).min(p.len());
            if offset != 0 {
                // Not cut short by the ends of the series (fences cut the event's own too).
                let own_l = wl.min(shape.gap + shape.window);
                let own_r = wr.min(shape.settle + shape.window);
                if 4 * (a2 - lo) < 3 * own_l || 4 * (hi - a2) < 3 * own_r {
                    return None;
                }
            }
            // At a random time the windows stop at fences too, as the event's own did. At
            // offset 0 the own events among them are the window ends already.
            let i = w.fences.partition_point(|&f| f < a2);
            if i > 0 {
                lo = lo.max(w.fences[i - 1]);
            }
            if i < w.fences.len() && w.fences[i] > a2 {
                hi = hi.min(w.fences[i]);
            }
            // Room left by other events' fences (this type's own events cut a random window
            // only to keep the null from straddling them, which can only make it wider).
            let (mut lo_o, mut hi_o) = (a2.saturating_sub(wl), (a2 + wr).min(p.len()));
            let j = w.other_fences.partition_point(|&f| f < a2);
            if j > 0 {
                lo_o = lo_o.max(w.other_fences[j - 1]);
            }
            if j < w.other_fences.len() && w.other_fences[j] > a2 {
                hi_o = hi_o.min(w.other_fences[j]);
            }
            let own_l = wl.min(shape.gap + shape.window);
            let own_r = wr.min(shape.settle + shape.window);
            let full = 4 * (a2 - lo_o) >= 3 * own_l && 4 * (hi_o - a2) >= 3 * own_r;
            shaped_jump(p, a2, lo, hi, shape).map(|(jump, z)| Jump {
                k,
                at: a2,
                jump,
                z,
                full,
            })
        })
        .collect()
}

/// Fewest random times a p-value may rest on: with fewer, p cannot reach 5%.
const MIN_NULL_DRAWS: usize = 19;

/// What the tests at one event type need besides the series.
pub(crate) struct StatInput<'a> {
    pub(crate) kind: EventKind,
    pub(crate) steps: &'a [u64],
    /// Steps near which no random time may fall (every event).
    pub(crate) avoid: &'a [u64],
    /// Steps at which windows stop.
    pub(crate) fences: &'a [u64],
    /// For events on epoch boundaries: the other boundaries, the reference.
    pub(crate) epoch_starts: Option<&'a [u64]>,
    pub(crate) units: LogUnits,
    /// A cycle within the epoch, in log points (epoch starts compare whole periods).
    pub(crate) period: Option<usize>,
}

pub(crate) fn event_stat(
    p: &Prepared,
    input: &StatInput<'_>,
    opts: &AnalyzeOptions,
) -> Option<(EventStat, Vec<EventTest>)> {
    let StatInput {
        kind,
        steps,
        avoid,
        fences,
        epoch_starts,
        units,
        period,
    } = *input;
    let cfg = &opts.attribution;
    let w = windows(p, steps, fences);
    let shape = JumpShape::of(kind, units, cfg, p.len(), period);
    let observed = jumps(p, &w, 0, shape);
    if observed.is_empty() {
        return None;
    }
    let effects: Vec<f64> = observed.iter().map(|o| o.jump).collect();
    // Against random times the statistic is the median z, not the median jump: a random
    // time's windows end at whatever fences lie near it, and a raw jump from a short window
    // is noisy enough to pose as any drop.
    let obs_median = stats::median(&observed.iter().map(|o| o.z).collect::<Vec<_>>());
    // One-sided 5% per event: under no effect about one event in twenty passes by chance.
    let z_crit = 1.645;
    let n_drop = observed.iter().filter(|o| o.z < -z_crit).count();
    let n_rise = observed.iter().filter(|o| o.z > z_crit).count();
    let seed = opts.seed ^ (kind as u64 + 1).wrapping_mul(0x9e37_79b9);
    // Measured as this type's jumps are, so a slower-settling test is not compared with
    // boundaries measured the epoch-start way.
    let others: Option<Vec<f64>> = epoch_starts.map(|starts| {
        jumps(p, &windows(p, starts, &[]), 0, shape)
            .iter()
            .map(|o| o.jump)
            .collect()
    });
    // Per event: (p_drop, p_rise).
    let mut per_event: Vec<(f64, f64)> = vec![(1.0, 1.0); observed.len()];
    let (p_drop, p_rise, null) = match others.as_deref() {
        // Events on epoch boundaries are compared with the other boundaries, so an epoch
        // effect cannot pose as, say, an LR effect.
        Some(others) if others.len() >= 3 => {
            // Median and MAD: one boundary in the first, fast-falling epoch (or in a
            // high-LR phase that bounces) must not widen the reference enough to hide a cut.
            let m = stats::median(others);
            let dev: Vec<f64> = others.iter().map(|v| (v - m).abs()).collect();
            let mad = 1.4826 * stats::median(&dev);
            let sd = if mad > 1e-12 {
                mad
            } else {
                (others.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (others.len() - 1) as f64)
                    .sqrt()
                    .max(1e-12)
            };
            let d = StudentsT::new(0.0, 1.0, (others.len() - 1) as f64).ok();
            let cdf_of = |mean: f64, count: usize| {
                let t = (mean - m) / (sd * (1.0 / count as f64 + 1.0 / others.len() as f64).sqrt());
                d.as_ref().map(|d| d.cdf(t)).unwrap_or(0.5)
            };
            for (slot, o) in per_event.iter_mut().zip(&observed) {
                let cdf = cdf_of(o.jump, 1);
                *slot = (cdf, 1.0 - cdf);
            }
            let cdf = cdf_of(stats::mean(&effects), effects.len());
            (cdf, 1.0 - cdf, "other epoch starts".to_string())
        }
        _ => {
            let n = p.len();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            // Within three log points of an event a random time would straddle it.
            let near_steps = units.steps(3);
            let near = |i: usize| {
                let s = p.steps()[i];
                avoid
                    .iter()
                    .chain(steps.iter())
                    .any(|&e| e.abs_diff(s) <= near_steps)
            };
            let mut le = 1usize;
            let mut ge = 1usize;
            let mut done = 0usize;
            // Per observed event: (null z at or below, at or above, draws).
            let mut each: Vec<(usize, usize, usize)> = vec![(0, 0, 0); observed.len()];
            let slot_of: Vec<Option<usize>> = (0..w.at.len())
                .map(|k| observed.iter().position(|o| o.k == k))
                .collect();
            let mut tries = 0usize;
            while done < opts.shifts && tries < opts.shifts * 20 && n > 8 {
                tries += 1;
                let off = rng.random_range(1..n) as isize;
                let moved = |a: usize| ((a as isize + off).rem_euclid(n as isize)) as usize;
                if w.at.iter().any(|&a| near(moved(a))) {
                    continue;
                }
                let null = jumps(p, &w, off, shape);
                if null.is_empty() {
                    continue;
                }
                // One event against itself moved: the jump, measured with windows of the
                // same room, fences included (`Jump::full`). Its z would reward the event's
                // place on the curve: where the curve bends harder the lines fit worse,
                // which shrinks z there.
                for j in null.iter().filter(|j| j.full) {
                    if let Some(slot) = slot_of[j.k] {
                        let e = &mut each[slot];
                        e.0 += (j.jump <= observed[slot].jump) as usize;
                        e.1 += (j.jump >= observed[slot].jump) as usize;
                        e.2 += 1;
                    }
                }
                let m = stats::median(&null.iter().map(|o| o.z).collect::<Vec<_>>());
                le += (m <= obs_median) as usize;
                ge += (m >= obs_median) as usize;
                done += 1;
            }
            for (slot, &(l, g, d)) in per_event.iter_mut().zip(&each) {
                if d >= MIN_NULL_DRAWS {
                    let d = (d + 1) as f64;
                    *slot = ((l + 1) as f64 / d, (g + 1) as f64 / d);
                }
            }
            if observed.len() == 1 {
                // One event: the type's test is that event's own, on its jump (see above).
                let (d, r) = per_event[0];
                let null = if each[0].2 >= MIN_NULL_DRAWS {
                    "random times"
                } else {
                    "none (too few random times)"
                };
                (d, r, null.to_string())
            } else if done < MIN_NULL_DRAWS {
                (1.0, 1.0, "none (too few random times)".to_string())
            } else {
                let d = (done + 1) as f64;
                (le as f64 / d, ge as f64 / d, "random times".to_string())
            }
        }
    };
    let direction = match kind {
        EventKind::WarmRestart | EventKind::LrIncrease => Direction::Rise,
        _ => Direction::Drop,
    };
    let raw_p: Vec<f64> = per_event
        .iter()
        .map(|&(d, r)| if direction == Direction::Drop { d } else { r })
        .collect();
    let adjusted = stats::holm(&raw_p);
    let tests: Vec<EventTest> = observed
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let right_way = match direction {
                Direction::Drop => o.jump <= -cfg.min_effect_log,
                Direction::Rise => o.jump >= cfg.min_effect_log,
            };
            EventTest {
                kind,
                step: p.steps()[o.at],
                ordinal: i + 1,
                jump_log: o.jump,
                z: o.z,
                direction,
                p: raw_p[i],
                p_adjusted: adjusted[i],
                acted: adjusted[i] < cfg.event_alpha && right_way,
            }
        })
        .collect();
    let stat = EventStat {
        kind,
        n_events: steps.len(),
        n_tested: observed.len(),
        n_significant_drops: n_drop,
        n_significant_rises: n_rise,
        median_effect_log: stats::bootstrap(&effects, stats::median, seed, 1000),
        p_drop,
        p_rise,
        p_drop_adjusted: p_drop,
        p_rise_adjusted: p_rise,
        null,
        effects: observed
            .iter()
            .map(|o| EventEffect {
                step: p.steps()[o.at],
                jump_log: o.jump,
                z: o.z,
            })
            .collect(),
    };
    Some((stat, tests))
}
