//! Drops that recur at a fixed distance: the epoch length a log without an epoch column
//! does not state.
//!
//! A log with no epoch column (and no `--steps-per-epoch`) has no epoch starts to test, so
//! memorization drops every 600 steps come out `unexplained`. Here the detected drops are
//! searched for a period, and the best one is judged against drops placed at random over the
//! same steps with the same search (so the search's own freedom is in the null). A period
//! found is a hint with its p-value, not a cause: the epoch length is the user's to confirm.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, DiscreteCDF};

use crate::detect::{Detection, DropShape};

/// What the analysis suggests beyond its findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hint {
    /// Drops recur every `period` steps: perhaps epoch starts.
    RecurringDrops(RecurringDrops),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecurringDrops {
    /// Steps between recurrences (a least-squares fit to the drops on the lattice).
    pub period: u64,
    /// A step on the lattice, in `0..period`: the drops sit near `phase + k * period`.
    pub phase: u64,
    /// Drops within the tolerance of the lattice, and drops considered.
    pub on_period: usize,
    pub drops: usize,
    /// The chance that drops at random steps, searched the same way, recur as strongly.
    pub p_value: f64,
}

/// Fewest drops on the lattice for a period to mean anything: three points always lie
/// near some lattice.
const MIN_ON_PERIOD: usize = 4;
/// Shortest period searched. Below it the tolerance (at least 2 steps each side) covers a
/// fifth of all steps, so any cluster of drops looks periodic.
const MIN_PERIOD: u64 = 25;
/// Distance from the lattice a drop may be, as a share of the period (at least 2 steps):
/// detected drops are placed within a few steps of the change, and the epoch-start test
/// ties a drop to an event within 5% of an epoch; 2% keeps the chance hit rate low.
const TOLERANCE_SHARE: f64 = 0.02;
/// Random drop sets for the null; p-values resolve to 1/200.
const NULL_SETS: usize = 199;
/// The hint is given at this p-value or below.
const ALPHA: f64 = 0.01;
/// Most drops searched (the largest): the search costs about n² log n per drop set.
const MAX_DROPS: usize = 120;

/// The period of the detected drops, when they recur more regularly than random drops
/// would. Spike recoveries are left out: they follow the spike, not the data.
pub fn recurring_drops(d: &Detection, seed: u64) -> Option<RecurringDrops> {
    let mut drops: Vec<(u64, f64)> = d
        .drops
        .iter()
        .filter(|x| x.shape != DropShape::Recovery)
        .map(|x| (x.step, x.log))
        .collect();
    if drops.len() < MIN_ON_PERIOD {
        return None;
    }
    drops.sort_by(|a, b| b.1.total_cmp(&a.1));
    drops.truncate(MAX_DROPS);
    let mut steps: Vec<u64> = drops.iter().map(|x| x.0).collect();
    steps.sort_unstable();
    let (first, last) = (d.trend.first()?.step, d.trend.last()?.step);
    let best = search(&steps)?;
    if best.hits < MIN_ON_PERIOD {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x009e_710d);
    let mut as_strong = 0usize;
    for _ in 0..NULL_SETS {
        let mut random: Vec<u64> = (0..steps.len())
            .map(|_| rng.random_range(first..=last.max(first + 1)))
            .collect();
        random.sort_unstable();
        if search(&random).is_some_and(|r| r.score >= best.score) {
            as_strong += 1;
        }
    }
    let p_value = (as_strong + 1) as f64 / (NULL_SETS + 1) as f64;
    let period = (best.period.round() as u64).max(1);
    (p_value <= ALPHA).then(|| RecurringDrops {
        period,
        phase: best.phase.rem_euclid(best.period).round() as u64 % period,
        on_period: best.hits,
        drops: steps.len(),
        p_value,
    })
}

#[derive(Debug, Clone, Copy)]
struct Lattice {
    period: f64,
    phase: f64,
    hits: usize,
    /// -ln of the binomial chance of at least this many hits, had the drops fallen at
    /// random: comparable across periods, whose lattices cover different shares of steps.
    score: f64,
}

fn tolerance(period: f64) -> f64 {
    (TOLERANCE_SHARE * period).max(2.0)
}

/// The lattice that holds the drops most improbably well. Candidate periods are the gaps
/// between consecutive drops, each averaged with the gaps within 5% of it (one gap is off
/// by the drops' placement error; the average is not, and a wrong period drifts off the
/// lattice over many epochs).
fn search(steps: &[u64]) -> Option<Lattice> {
    let gaps: Vec<f64> = steps
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64)
        .filter(|&g| g >= MIN_PERIOD as f64)
        .collect();
    let mut periods: Vec<f64> = gaps
        .iter()
        .map(|&g| {
            let near: Vec<f64> = gaps
                .iter()
                .copied()
                .filter(|x| (x - g).abs() <= 0.05 * g)
                .collect();
            near.iter().sum::<f64>() / near.len() as f64
        })
        .collect();
    periods.sort_by(f64::total_cmp);
    periods.dedup_by(|a, b| (*a - *b).abs() < 0.5);
    periods
        .into_iter()
        .filter_map(|p| refine(steps, best_phase(steps, p)?))
        .max_by(|a, b| a.score.total_cmp(&b.score))
}

/// For one period: the phase that puts the most drops within the tolerance (a sliding
/// window over the drops' positions within the period, wrapping round).
fn best_phase(steps: &[u64], period: f64) -> Option<Lattice> {
    let tol = tolerance(period);
    let mut r: Vec<f64> = steps
        .iter()
        .map(|&s| (s as f64).rem_euclid(period))
        .collect();
    r.sort_by(f64::total_cmp);
    let n = r.len();
    let wrapped: Vec<f64> = r
        .iter()
        .copied()
        .chain(r.iter().map(|x| x + period))
        .collect();
    let (mut best, mut at) = (0usize, 0.0);
    let mut j = 0;
    for i in 0..n {
        j = j.max(i);
        while j + 1 < i + n && wrapped[j + 1] - wrapped[i] <= 2.0 * tol {
            j += 1;
        }
        if j + 1 - i > best {
            best = j + 1 - i;
            at = 0.5 * (wrapped[i] + wrapped[j]);
        }
    }
    Some(Lattice {
        period,
        phase: at,
        hits: best,
        score: score(best, n, period),
    })
}

/// Refits period and phase by least squares on the drops near the lattice, and counts again.
fn refine(steps: &[u64], l: Lattice) -> Option<Lattice> {
    let tol = tolerance(l.period);
    let on: Vec<(f64, f64)> = steps
        .iter()
        .map(|&s| {
            let k = ((s as f64 - l.phase) / l.period).round();
            (k, s as f64)
        })
        .filter(|&(k, s)| (s - (l.phase + k * l.period)).abs() <= tol)
        .collect();
    if on.len() < 2 {
        return Some(l);
    }
    let (_, slope, _) = super::stats::fit_line(
        &on.iter().map(|p| p.0).collect::<Vec<_>>(),
        &on.iter().map(|p| p.1).collect::<Vec<_>>(),
    )
    .unwrap_or((l.phase, l.period, 0.0));
    // A NaN slope (no spread in cycle numbers) or a period too short keeps the first fit.
    if slope.is_nan() || slope < MIN_PERIOD as f64 {
        return Some(l);
    }
    let refit = best_phase(steps, slope)?;
    Some(if refit.score > l.score { refit } else { l })
}

fn score(hits: usize, n: usize, period: f64) -> f64 {
    if hits < 2 || n < 2 {
        return 0.0;
    }
    // The drop that fixes the phase is on the lattice by construction; each other one
    // lands within the tolerance by chance with probability (2 tol + 1) / period.
    let f = ((2.0 * tolerance(period) + 1.0) / period).min(1.0);
    let tail = Binomial::new(f, (n - 1) as u64)
        .map(|b| b.sf((hits - 2) as u64))
        .unwrap_or(1.0);
    -tail.max(1e-300).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{LossDrop, TrendPoint};
    use rand::Rng;

    fn detection(steps: &[u64], last: u64) -> Detection {
        Detection {
            drops: steps
                .iter()
                .enumerate()
                .map(|(i, &s)| LossDrop {
                    step: s,
                    index: s as usize,
                    before: 1.0,
                    after: 0.8,
                    abs: 0.2,
                    rel: 0.2,
                    log: 0.22 + 0.001 * i as f64,
                    z: -6.0,
                    shape: DropShape::Sawtooth,
                    recovered_fraction: 0.5,
                })
                .collect(),
            spikes: Vec::new(),
            noise_sigma: 0.1,
            trend: vec![
                TrendPoint {
                    step: 0,
                    value: 1.0,
                    sigma: 0.1,
                },
                TrendPoint {
                    step: last,
                    value: 1.0,
                    sigma: 0.1,
                },
            ],
            cleaning: Default::default(),
            event_tests: Vec::new(),
        }
    }

    #[test]
    fn drops_every_600_steps_give_the_period() {
        // Placed a few steps off, one epoch start missed, one stray drop.
        let steps = [603, 1198, 1801, 3002, 3597, 4200, 4801, 5399, 2345];
        let h = recurring_drops(&detection(&steps, 6000), 1).expect("a period");
        assert!(h.period.abs_diff(600) <= 2, "{h:?}");
        assert!(h.phase <= 5 || h.phase >= 595, "{h:?}");
        assert_eq!((h.on_period, h.drops), (8, 9));
        assert!(h.p_value <= ALPHA);
    }

    #[test]
    fn drops_at_random_steps_give_no_period() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut fired = 0;
        for _ in 0..20 {
            let n = rng.random_range(4..15);
            let steps: Vec<u64> = (0..n).map(|_| rng.random_range(0..20_000)).collect();
            fired += recurring_drops(&detection(&steps, 20_000), 3).is_some() as usize;
        }
        assert_eq!(fired, 0, "random drops called periodic");
        // Too few drops to say anything.
        assert!(recurring_drops(&detection(&[600, 1200, 1800], 3000), 1).is_none());
    }
}
