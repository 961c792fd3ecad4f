//! A second look at drop candidates the local tests did not confirm: each is re-tested in
//! a joint fit over a long window, with a smooth trend and every confirmed change in that
//! window modelled together, so the trend is pinned down by far more points than the two
//! sides of one boundary.

use super::DetectConfig;
use super::joint::{Term, drop_fit, joint_fit, target_residuals};
use super::prepare::Prepared;
use super::reach::Reach;
use super::select::{Change, best_fit, sudden};

/// Half-width of the joint window, as a multiple of the local reach.
pub(crate) const SPAN_REACH: usize = 2;
/// Polynomial degree of the trend in the joint window.
pub(crate) const DEG: usize = 2;
/// Time constant of the recovery term, in points.
pub(crate) const TR: f64 = 170.0;
/// Most confirmed changes modelled in one window.
const MAX_TERMS: usize = 8;
/// Points each side searched when placing a rescued drop.
const RADIUS: usize = 48;

/// Points each side of the searched range the placing split uses.
const PLACE_REACH: usize = 256;

/// The split of `r` (values at `r0..`) into two constant levels, downward, that explains
/// the most, for a split point in `[a, b]`.
fn best_split(r: &[f64], r0: usize, (a, b): (usize, usize)) -> Option<usize> {
    let m = r.len();
    let total: f64 = r.iter().sum();
    let mut pre = 0.0;
    let mut best: Option<(f64, usize)> = None;
    for (i, v) in r.iter().enumerate() {
        let t = r0 + i;
        if t >= a && t <= b && i > 0 && i < m {
            let (nl, nr) = (i as f64, (m - i) as f64);
            let d = (total - pre) / nr - pre / nl;
            let score = d * d * nl * nr / m as f64;
            if d < 0.0 && best.is_none_or(|bb| score > bb.0) {
                best = Some((score, t));
            }
        }
        pre += v;
    }
    best.map(|b| b.1)
}

/// Share of the needed |z| a candidate must show at first look.
const PREFILTER: f64 = 0.7;
/// Chi-square (2 degrees of freedom) a quartic may gain over the quadratic trend.
const LACK_OF_FIT: f64 = 6.0;
/// Standard errors the quartic's jump may differ from the quadratic's.
const AGREE_K: f64 = 1.0;
/// Shortest half-span tried: shorter, the quadratic trend takes too much of a small jump.
const MIN_SPAN: usize = 512;

fn span(p: &Prepared, changes: &[Change], at: usize, reach: &Reach) -> Option<(usize, usize)> {
    let n = p.len();
    let mut w = SPAN_REACH * reach.at(at);
    while w >= MIN_SPAN {
        let (lo, hi) = (at.saturating_sub(w), (at + w).min(n));
        let mut terms = terms_near(changes, lo, hi);
        let k = terms.partition_point(|t| t.at < at);
        terms.insert(
            k,
            Term {
                at,
                recovers: false,
            },
        );
        let q = joint_fit(p, (lo, hi), &terms, k, DEG, TR);
        let r = joint_fit(p, (lo, hi), &terms, k, DEG + 2, TR);
        if let (Some(q), Some(r)) = (q, r)
            && q.s2 > 0.0
            && (q.rss - r.rss) / q.s2 <= LACK_OF_FIT
            && (q.jump - r.jump).abs() <= AGREE_K * r.se
        {
            return Some((lo, hi));
        }
        w /= 2;
    }
    None
}

fn terms_near(changes: &[Change], lo: usize, hi: usize) -> Vec<Term> {
    let mut t: Vec<Term> = changes
        .iter()
        .filter(|c| c.at > lo && c.at < hi)
        .map(|c| Term {
            at: c.at,
            recovers: c.down,
        })
        .collect();
    t.truncate(MAX_TERMS);
    t
}

pub(crate) fn rescue(
    p: &Prepared,
    mut changes: Vec<Change>,
    mut pool: Vec<usize>,
    reach: &Reach,
    cfg: &DetectConfig,
) -> Vec<Change> {
    let n = p.len();
    pool.sort_unstable();
    pool.dedup();
    let z_need = cfg.z_joint;
    if !(z_need.is_finite()) || z_need <= 0.0 {
        return changes;
    }
    let mut added: Vec<Change> = Vec::new();
    for &at in &pool {
        if changes
            .iter()
            .chain(added.iter())
            .any(|c| c.at.abs_diff(at) < RADIUS)
        {
            continue;
        }
        // A first look over the widest span: most candidates are noise and end here.
        let w = SPAN_REACH * reach.at(at);
        let wide = (at.saturating_sub(w), (at + w).min(n));
        let mut terms = terms_near(&changes, wide.0, wide.1);
        let k = terms.partition_point(|t| t.at < at);
        terms.insert(
            k,
            Term {
                at,
                recovers: false,
            },
        );
        if drop_fit(p, wide, &mut terms, k, DEG, TR).is_none_or(|f| f.z > -PREFILTER * z_need) {
            continue;
        }
        // The longest span whose trend a quadratic follows: a quartic must neither fit
        // it much better nor move the jump.
        let Some((lo, hi)) = span(p, &changes, at, reach) else {
            continue;
        };
        let mut terms = terms_near(&changes, lo, hi);
        let k = terms.partition_point(|t| t.at < at);
        terms.insert(
            k,
            Term {
                at,
                recovers: false,
            },
        );
        let Some(f) = drop_fit(p, (lo, hi), &mut terms, k, DEG, TR) else {
            continue;
        };
        if f.z > -z_need * 0.8 {
            continue;
        }
        // Place it: the best split of the residuals left by the trend and the other
        // changes, within the search radius.
        let a = at.saturating_sub(RADIUS).max(lo + 8);
        let b = (at + RADIUS).min(hi.saturating_sub(8));
        let lo_t = if k > 0 { terms[k - 1].at.max(a) } else { a };
        let hi_t = if k + 1 < terms.len() {
            terms[k + 1].at.min(b)
        } else {
            b
        };
        let (ra, rb) = (
            a.saturating_sub(PLACE_REACH).max(lo),
            (b + PLACE_REACH).min(hi),
        );
        let at = match target_residuals(p, (lo, hi), &terms, k, DEG, TR, (ra, rb)) {
            Some(r) if lo_t < hi_t => best_split(&r, ra, (lo_t, hi_t)).unwrap_or(at),
            _ => at,
        };
        terms[k].at = at;
        let Some(f) = drop_fit(p, (lo, hi), &mut terms, k, DEG, TR) else {
            continue;
        };
        if f.z > -z_need || -f.jump < cfg.min_drop_log {
            continue;
        }
        let prev = changes.iter().rev().find(|c| c.at < at).map_or(0, |c| c.at);
        let next = changes.iter().find(|c| c.at > at).map_or(n, |c| c.at);
        let Some(mut fit) = best_fit(p, at, true, (prev, next), reach, cfg) else {
            continue;
        };
        // Like every confirmed change, it must be sudden: shorter windows see it too.
        if !sudden(p, at, true, (prev, next), &fit) {
            continue;
        }
        fit.jump = f.jump;
        fit.z = f.z;
        fit.se = f.se;
        added.push(Change {
            at,
            down: true,
            fit,
        });
    }
    if added.is_empty() {
        return changes;
    }
    changes.extend(added);
    changes.sort_by_key(|c| c.at);
    changes
}
