//! From scan candidates to confirmed changes: each candidate is re-tested with windows
//! that reach to its neighbours, and the weakest failures are removed until every
//! survivor stands on its own.

use super::DetectConfig;
use super::jump::{Fit, curvature, shared_slope};
use super::prepare::Prepared;
use super::reach::Reach;

/// A confirmed level shift.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change {
    pub at: usize,
    /// Downward (a drop) or upward (a rise).
    pub down: bool,
    /// The window pair that gave the strongest evidence.
    pub fit: Fit,
}

/// The strongest fit for a shift at `at` in direction `down`, with the left side reaching
/// back to `prev` and the right side on to `next` (both capped by `reach`), trying
/// short sides too: a shift that soon recovers is only visible at short range.
pub(crate) fn best_fit(
    p: &Prepared,
    at: usize,
    down: bool,
    (prev, next): (usize, usize),
    reach: &Reach,
    cfg: &DetectConfig,
) -> Option<Fit> {
    let w = reach.at(at);
    let l = prev.max(at.saturating_sub(w));
    // A drop must hold for a while: a dip that a rise soon undoes is noise (or a spike
    // upside down), so a drop's right side never stops short of `min_after_drop` points,
    // even at a neighbour.
    let next = if down {
        next.max(at + cfg.confirm.min_after_drop)
    } else {
        next
    };
    let r = next.min(at + w).min(p.len());
    if at < l + super::MIN_SIDE || r < at + super::MIN_SIDE {
        return None;
    }
    let sign = if down { -1.0 } else { 1.0 };
    let mut best: Option<Fit> = None;
    let mut consider = |f: Option<Fit>| {
        if let Some(f) = f
            && best.is_none_or(|b| sign * f.z > sign * b.z)
        {
            best = Some(f);
        }
    };
    // The long side is kept within `long_ratio` of the short one, and the curvature taken
    // out is measured over the long side's reach: a trend that bends at a changing rate
    // (fast early decay) is then only extrapolated as far as a quadratic holds.
    let ratio = cfg.long_ratio.max(1);
    let fit = |a: usize, b: usize| {
        let (nl, nr) = (at - a, b - at);
        let (nl, nr) = (nl.min(ratio * nr), nr.min(ratio * nl));
        let (a, b) = (at - nl, at + nr);
        let curv = if nl != nr {
            let reach = nl.max(nr);
            curvature(p, at, at.saturating_sub(reach).max(l), (at + reach).min(r))
        } else {
            None
        };
        shared_slope(p, at, (a, at), (at, b), curv)
    };
    consider(fit(l, r));
    for &w in &cfg.confirm_windows {
        if at + w < r && w >= super::MIN_SIDE {
            consider(fit(l, at + w));
        }
    }
    best
}

fn passes(f: &Option<Fit>, down: bool, cfg: &DetectConfig) -> bool {
    match f {
        Some(f) if down => f.z <= -cfg.z_threshold && -f.jump >= cfg.min_drop_log,
        Some(f) => f.z >= cfg.z_threshold && f.jump >= cfg.min_drop_log,
        None => false,
    }
}

/// A shift is sudden: seen over a few dozen points it is about as large as over hundreds.
/// A trend that bends in a way the fits do not allow (a curvature that changes, as in a
/// fast early decay) makes a bias that grows with the cube of the window, so a shift that
/// shorter windows do not see (beyond their noise) is a misfit, not a change.
pub(crate) fn sudden(
    p: &Prepared,
    at: usize,
    down: bool,
    (prev, next): (usize, usize),
    f: &Fit,
    cfg: &DetectConfig,
) -> bool {
    let c = &cfg.confirm;
    let room = (at - prev).min(next - at);
    let long = f.n_left.min(f.n_right);
    [c.check_half, long / c.check_shrink].iter().all(|&w| {
        let w = w.min(room);
        if w >= long || w < super::MIN_SIDE {
            return true;
        }
        match shared_slope(p, at, (at - w, at), (at, at + w), None) {
            Some(s) => {
                let shortfall = if down {
                    s.jump - f.jump
                } else {
                    f.jump - s.jump
                };
                shortfall <= c.check_k * s.se
            }
            None => true,
        }
    })
}

/// Where the left window of candidate `k` may start. After a drop the loss may spend a
/// while coming back (a sawtooth), which no line follows; so the first stretch after a
/// drop (up to `settle` points, at most half the gap) is left out, or the recovery would
/// pass for a drop of its own.
fn left_bound(cands: &[(usize, bool)], k: usize, settle: usize) -> usize {
    match k.checked_sub(1).map(|j| cands[j]) {
        Some((prev, true)) => prev + ((cands[k].0 - prev) / 2).min(settle),
        Some((prev, false)) => prev,
        None => 0,
    }
}

/// The best fit at `at` if it passes every test, `None` otherwise.
fn accept(
    p: &Prepared,
    at: usize,
    down: bool,
    (prev, next): (usize, usize),
    reach: &Reach,
    cfg: &DetectConfig,
) -> Option<Fit> {
    let f = best_fit(p, at, down, (prev, next), reach, cfg);
    match f {
        Some(fit) if passes(&f, down, cfg) && sudden(p, at, down, (prev, next), &fit, cfg) => {
            Some(fit)
        }
        _ => None,
    }
}

/// Where a scan cluster stands: its strongest scan position, unless the fit there fails
/// (`passes` and `sudden`) and another position of the cluster passes, then the one of
/// those with the largest |z|. The scan's fixed window shapes cross the bends of a fast
/// early decay and can put the strongest scan z a few points off a large drop, where the
/// confirming fit then fails and the drop would be lost (issue 12, early training).
pub(crate) fn stand_in(
    p: &Prepared,
    cluster: &[usize],
    down: bool,
    reach: &Reach,
    cfg: &DetectConfig,
) -> usize {
    let whole = (0, p.len());
    let ok = |at: usize| accept(p, at, down, whole, reach, cfg);
    let first = cluster[0];
    if cluster.len() == 1 || ok(first).is_some() {
        return first;
    }
    cluster[1..]
        .iter()
        .filter_map(|&at| ok(at).map(|f| (at, f.z.abs())))
        .filter(|&(_, z)| z >= cfg.confirm.stand_in_z_factor * cfg.z_threshold)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(first, |(at, _)| at)
}

/// Confirms candidates `(index, down)`: removes, round by round, failing candidates weaker
/// than both neighbours (so a true shift whose window was cut short by a spurious neighbour
/// gets re-tested once that neighbour is gone).
pub(crate) fn confirm(
    p: &Prepared,
    mut cands: Vec<(usize, bool)>,
    reach: &Reach,
    cfg: &DetectConfig,
) -> Vec<Change> {
    cands.sort_unstable();
    cands.dedup_by_key(|c| c.0);
    loop {
        let fits: Vec<Option<Fit>> = (0..cands.len())
            .map(|k| {
                let prev = left_bound(&cands, k, cfg.confirm.settle);
                let next = cands.get(k + 1).map_or(p.len(), |c| c.0);
                best_fit(p, cands[k].0, cands[k].1, (prev, next), reach, cfg)
            })
            .collect();
        let strength = |k: usize| fits[k].map_or(0.0, |f| f.z.abs());
        let fail: Vec<bool> = (0..cands.len())
            .map(|k| {
                let (at, down) = cands[k];
                let prev = left_bound(&cands, k, cfg.confirm.settle);
                let next = cands.get(k + 1).map_or(p.len(), |c| c.0);
                !passes(&fits[k], down, cfg)
                    || fits[k].is_some_and(|f| !sudden(p, at, down, (prev, next), &f, cfg))
            })
            .collect();
        if !fail.iter().any(|&f| f) {
            return localize(p, &cands, reach, cfg);
        }
        let remove: Vec<bool> = (0..cands.len())
            .map(|k| {
                fail[k]
                    && (k == 0 || strength(k) <= strength(k - 1))
                    && (k + 1 == cands.len() || strength(k) <= strength(k + 1))
            })
            .collect();
        // The globally weakest failure always goes, so the loop ends.
        let weakest = (0..cands.len())
            .filter(|&k| fail[k])
            .min_by(|&a, &b| strength(a).total_cmp(&strength(b)));
        let mut k = 0;
        cands.retain(|_| {
            let keep = !remove[k] && Some(k) != weakest;
            k += 1;
            keep
        });
    }
}

/// Moves each confirmed change to its most likely position: the split of one fixed window
/// (reaching to the neighbours at most) that explains the most variance. The scan's
/// position comes from whichever window shape was strongest, and lopsided shapes place a
/// shift tens of steps off; and comparing z-scores across positions would favour wherever
/// the noise estimate happens to be low.
fn localize(
    p: &Prepared,
    cands: &[(usize, bool)],
    reach: &Reach,
    cfg: &DetectConfig,
) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::with_capacity(cands.len());
    for (k, &(at, down)) in cands.iter().enumerate() {
        let prev = left_bound(cands, k, cfg.confirm.settle);
        let next = cands.get(k + 1).map_or(p.len(), |c| c.0);
        let l =
            prev.max(at.saturating_sub(cfg.confirm.localize_radius + cfg.confirm.localize_reach));
        let r = next
            .min(at + cfg.confirm.localize_radius + cfg.confirm.localize_reach)
            .min(p.len());
        let lo = at
            .saturating_sub(cfg.confirm.localize_radius)
            .max(l + super::MIN_SIDE);
        let hi = (at + cfg.confirm.localize_radius).min(r.saturating_sub(super::MIN_SIDE));
        let right_way = |f: &Fit| if down { f.jump < 0.0 } else { f.jump > 0.0 };
        let best = (lo..=hi)
            .filter_map(|t| {
                let f = shared_slope(p, t, (l, t), (t, r), None)?;
                (right_way(&f) && f.v > 0.0).then(|| (t, f.jump * f.jump / f.v))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(at, |b| b.0);
        // The new position must still pass; otherwise the confirmed one stands.
        let fit = accept(p, best, down, (prev, next), reach, cfg)
            .map(|f| (best, f))
            .or_else(|| best_fit(p, at, down, (prev, next), reach, cfg).map(|f| (at, f)));
        if let Some((at, fit)) = fit {
            out.push(Change { at, down, fit });
        }
    }
    out
}
