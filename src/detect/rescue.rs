//! A second look at drop candidates the local tests did not confirm: each is re-tested in
//! a joint fit over a long window, with a smooth trend and every confirmed change in that
//! window modelled together, so the trend is pinned down by far more points than the two
//! sides of one boundary.

use super::joint::{Term, drop_fit, joint_fit, target_residuals};
use super::prepare::Prepared;
use super::reach::Reach;
use super::select::{Change, best_fit, sudden};
use super::{DetectConfig, RescueConfig};

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

fn span(
    p: &Prepared,
    changes: &[Change],
    at: usize,
    reach: &Reach,
    c: &RescueConfig,
) -> Option<(usize, usize)> {
    let n = p.len();
    let mut w = c.span_reach * reach.at(at);
    while w >= c.min_span {
        let (lo, hi) = (at.saturating_sub(w), (at + w).min(n));
        let mut terms = terms_near(changes, lo, hi, c.max_terms);
        let k = terms.partition_point(|t| t.at < at);
        terms.insert(
            k,
            Term {
                at,
                recovers: false,
            },
        );
        let q = joint_fit(p, (lo, hi), &terms, k, c.degree, c.recovery_tau);
        let r = joint_fit(p, (lo, hi), &terms, k, c.degree + 2, c.recovery_tau);
        if let (Some(q), Some(r)) = (q, r)
            && q.s2 > 0.0
            && (q.rss - r.rss) / q.s2 <= c.lack_of_fit
            && (q.jump - r.jump).abs() <= c.agree_k * r.se
        {
            return Some((lo, hi));
        }
        w /= 2;
    }
    None
}

fn terms_near(changes: &[Change], lo: usize, hi: usize, max_terms: usize) -> Vec<Term> {
    let mut t: Vec<Term> = changes
        .iter()
        .filter(|c| c.at > lo && c.at < hi)
        .map(|c| Term {
            at: c.at,
            recovers: c.down,
        })
        .collect();
    t.truncate(max_terms);
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
    let c = &cfg.rescue;
    if !(z_need.is_finite()) || z_need <= 0.0 {
        return changes;
    }
    let mut added: Vec<Change> = Vec::new();
    for &at in &pool {
        if changes
            .iter()
            .chain(added.iter())
            .any(|x| x.at.abs_diff(at) < c.radius)
        {
            continue;
        }
        // A first look over the widest span: most candidates are noise and end here.
        let w = c.span_reach * reach.at(at);
        let wide = (at.saturating_sub(w), (at + w).min(n));
        let mut terms = terms_near(&changes, wide.0, wide.1, c.max_terms);
        let k = terms.partition_point(|t| t.at < at);
        terms.insert(
            k,
            Term {
                at,
                recovers: false,
            },
        );
        if drop_fit(p, wide, &mut terms, k, c.degree, c.recovery_tau)
            .is_none_or(|f| f.z > -c.prefilter * z_need)
        {
            continue;
        }
        // The longest span whose trend a quadratic follows: a quartic must neither fit
        // it much better nor move the jump.
        let Some((lo, hi)) = span(p, &changes, at, reach, c) else {
            continue;
        };
        let mut terms = terms_near(&changes, lo, hi, c.max_terms);
        let k = terms.partition_point(|t| t.at < at);
        terms.insert(
            k,
            Term {
                at,
                recovers: false,
            },
        );
        let Some(f) = drop_fit(p, (lo, hi), &mut terms, k, c.degree, c.recovery_tau) else {
            continue;
        };
        if f.z > -z_need * 0.8 {
            continue;
        }
        // Place it: the best split of the residuals left by the trend and the other
        // changes, within the search radius.
        let a = at.saturating_sub(c.radius).max(lo + 8);
        let b = (at + c.radius).min(hi.saturating_sub(8));
        let lo_t = if k > 0 { terms[k - 1].at.max(a) } else { a };
        let hi_t = if k + 1 < terms.len() {
            terms[k + 1].at.min(b)
        } else {
            b
        };
        let (ra, rb) = (
            a.saturating_sub(c.place_reach).max(lo),
            (b + c.place_reach).min(hi),
        );
        let at = match target_residuals(p, (lo, hi), &terms, k, c.degree, c.recovery_tau, (ra, rb))
        {
            Some(r) if lo_t < hi_t => best_split(&r, ra, (lo_t, hi_t)).unwrap_or(at),
            _ => at,
        };
        terms[k].at = at;
        let Some(f) = drop_fit(p, (lo, hi), &mut terms, k, c.degree, c.recovery_tau) else {
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
        if !sudden(p, at, true, (prev, next), &fit, cfg) {
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
