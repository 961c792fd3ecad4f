//! Confirmation: when the shift statistic raises a candidate, the batch detector runs on
//! the ring's most recent points, and the new drops it finds there are reported.
//!
//! A run costs about as much as `confirm_points` pushes. Runs happen only on candidates:
//! each is followed at doubling intervals (a handful of runs), and while candidates keep
//! coming without a confirmed drop (a bend of the curve) the pause between them doubles,
//! so the amortized cost per point stays O(1).

use std::collections::VecDeque;

use super::alert::AlertKind;
use super::config::WatchConfig;
use super::context::{Context, DropFacts};
use super::ring::Ring;
use super::spike::{Found, Spikes};
use crate::detect::detect;

/// Reported drops remembered, to report none twice as the window slides over it.
const REMEMBERED_DROPS: usize = 16;
/// A candidate is followed for this many times its right window: the detector's local
/// line fits need several times the points the shift statistic needs to see a drop (a
/// one-sigma drop shows in the statistic 50 points after it, to the detector after 150).
const FOLLOW_WINDOWS: usize = 8;
/// The detector runs on this many right windows of the scale that raised the candidate
/// (at most `confirm_points`): a drop the short scale sees is large, and 1,024 points
/// confirm it at half the cost of 2,048 (a run costs about 250 ns per point).
const CONFIRM_WINDOWS: usize = 16;

/// A candidate being followed: the detector runs on it at doubling intervals until it
/// confirms a drop or the candidate expires.
#[derive(Debug, Clone, Copy)]
struct Pending {
    fired: u64,
    next: u64,
    interval: usize,
    expires: u64,
    right: usize,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Confirm {
    pending: Option<Pending>,
    /// No new candidate is followed before this ring index, and the wait after the next
    /// one expires unconfirmed: a long bend of the curve keeps raising candidates.
    cooldown_until: u64,
    backoff: usize,
    /// Points in a row without a candidate.
    quiet: usize,
    /// Ring indices of the drops reported.
    reported: VecDeque<u64>,
    /// Detector runs so far (for the benchmark's cost accounting).
    pub(crate) runs: u64,
}

/// What a confirmation run reads besides the ring.
pub(crate) struct Known<'a> {
    pub context: &'a Context,
    pub spikes: &'a Spikes,
}

impl Confirm {
    /// Ring index of the last drop reported.
    pub(crate) fn last_reported(&self) -> Option<u64> {
        self.reported.back().copied()
    }

    /// Called once per point with the candidate, if any (the right window, in points, of
    /// the longest scale that sees it); runs the detector when a followed candidate is due.
    pub(crate) fn update(
        &mut self,
        candidate: Option<usize>,
        ring: &Ring,
        known: Known<'_>,
        cfg: &WatchConfig,
    ) -> Vec<Found> {
        let now = ring.count().saturating_sub(1);
        self.note_quiet(candidate.is_some(), cfg);
        self.follow(candidate, now, cfg);
        let Some(mut p) = self.due(candidate, now, cfg) else {
            return Vec::new();
        };
        // The drop that raised the candidate lay within the right window then, and has
        // moved back since.
        let reach = (p.right + p.right / 2) as u64 + (now - p.fired);
        let points = (CONFIRM_WINDOWS * p.right).min(cfg.confirm_points);
        let found = self.run(ring, known, (points, reach), cfg);
        if found.is_empty() {
            p.interval *= 2;
            p.next = now + p.interval as u64;
            self.pending = Some(p);
        } else {
            self.pending = None;
            self.backoff = cfg.retry_points;
        }
        found
    }

    /// Starts following a candidate, unless one is followed or the pause is not over.
    fn follow(&mut self, candidate: Option<usize>, now: u64, cfg: &WatchConfig) {
        if let Some(right) = candidate
            && self.pending.is_none()
            && now >= self.cooldown_until
        {
            self.pending = Some(Pending {
                fired: now,
                next: now,
                interval: cfg.retry_points.max(1),
                expires: now + (FOLLOW_WINDOWS * right) as u64,
                right,
            });
        }
    }

    /// The followed candidate when a run on it is due; one whose time is up expires, and
    /// the pause before the next doubles.
    fn due(&mut self, candidate: Option<usize>, now: u64, cfg: &WatchConfig) -> Option<Pending> {
        let p = self.pending.as_mut()?;
        p.right = p.right.max(candidate.unwrap_or(0));
        if now > p.expires {
            self.pending = None;
            self.cooldown_until = now + self.backoff as u64;
            self.backoff = (self.backoff * 2).min(cfg.max_retry_points);
            return None;
        }
        (now >= p.next).then_some(*p)
    }

    /// After a longest window without a candidate, the bend (if any) is over.
    fn note_quiet(&mut self, candidate: bool, cfg: &WatchConfig) {
        self.quiet = if candidate { 0 } else { self.quiet + 1 };
        let longest = cfg.scales.iter().max().copied().unwrap_or(0);
        if self.quiet > longest || self.backoff == 0 {
            self.backoff = cfg.retry_points;
        }
    }

    /// The drops the detector finds, on the newest `points`, within `reach` points of the
    /// newest (where the candidate points) that were not reported yet. Drops farther back were looked at
    /// when they were there; found again from a window that ends far after them, a drop
    /// the detector could not confirm on its own is often misplaced.
    fn run(
        &mut self,
        ring: &Ring,
        known: Known<'_>,
        (points, reach): (usize, u64),
        cfg: &WatchConfig,
    ) -> Vec<Found> {
        self.runs += 1;
        let (steps, losses) = ring.tail(points);
        let mut dcfg = cfg.detect.clone();
        // Steps per log point: tolerances are given in points and compared in steps.
        let interval = match (steps.first(), steps.last()) {
            (Some(a), Some(b)) if steps.len() > 1 => ((b - a) / (steps.len() as u64 - 1)).max(1),
            _ => 1,
        };
        if known.context.steps_per_epoch().is_some() {
            // As attribution does: place drops for the question asked of them.
            let tol = known.context.tolerance(interval, &cfg.attribution) / interval;
            dcfg.placement_window = dcfg.placement_window.min(tol as usize);
        }
        let det = detect(&steps, &losses, &[], &dcfg);
        let first = ring.count() - steps.len() as u64;
        let newest = ring.count() - 1;
        let shortest = cfg.scales.iter().min().copied().unwrap_or(64) as u64;
        let mut out = Vec::new();
        for d in &det.drops {
            let index = first + d.index as u64;
            let back = newest - index;
            if back < cfg.min_points_after as u64 || back > reach {
                continue;
            }
            if self.reported.iter().any(|&r| r.abs_diff(index) < shortest) {
                continue;
            }
            if self.reported.len() == REMEMBERED_DROPS {
                self.reported.pop_front();
            }
            self.reported.push_back(index);
            let facts = DropFacts {
                step: d.step,
                log: d.log,
                shape: d.shape,
                noise_sigma: det.noise_sigma,
                interval,
                in_spike: known.spikes.covers(d.step),
            };
            let e = known.context.explain(&facts, &cfg.attribution);
            let kind = AlertKind::Drop {
                log: d.log,
                rel: d.rel,
                z: d.z,
                shape: e.shape,
                explained_by: e.cause,
                event: e.event,
            };
            out.push((d.step, kind));
        }
        out
    }
}
