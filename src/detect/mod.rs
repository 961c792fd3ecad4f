//! Finds sudden drops in a training-loss curve.
//!
//! The loss decays smoothly, its minibatch noise is large and heavy-tailed, and a drop
//! can be smaller than one step's noise. So the detector works on log-loss, damps
//! outliers against a running median, and measures every shift as the gap between local
//! line fits on either side of it (a smooth decay then looks like no shift at all),
//! against the robust local noise.
//!
//! # The pipeline, in order
//!
//! Each stage is one function; what it adds, removes or moves, and why it exists.
//! `dropscope bench detect --ablate` measures what each earns (docs/detector.md).
//!
//! 1. **Clean** (`clean::clean`): sorts by step, drops duplicates, NaN/inf and
//!    non-positive losses, records gaps and the step from which the loss diverged.
//!    Removes points; never fails.
//! 2. **Prepare** (`prepare::prepare`): log-loss, the robust noise scale per block,
//!    winsorizing against a running median (clips outliers to 2.5 local sigmas so one
//!    wild batch cannot pose as a shift), prefix sums so any window's line fit is O(1).
//!    Moves values, adds nothing.
//! 3. **Reach** (`reach::Reach`): how far a window may extend at each point before the
//!    curve bends too much for a line. Adds a per-point bound used by every later fit.
//! 4. **Scan** (`scan::scan`, `scan::suppress_clusters`): a multiscale two-line test at
//!    every position and scale (`scales`, `long_ratio`), candidates at |z| ≥
//!    `z_candidate`, one per cluster. Adds candidates.
//! 5. **Stand-in** (`select::stand_in`, `stand_in`): a cluster whose strongest position
//!    fails the confirming fit stands on a member that passes at twice `z_threshold`
//!    (the scan's windows cross the bends of a fast early fall). Moves candidates.
//! 6. **Confirm** (`select::confirm`): re-tests each candidate with windows reaching to
//!    its neighbours (`confirm_windows`), keeps |z| ≥ `z_threshold` and the "sudden"
//!    check (as large over a few dozen points as over hundreds), removing the weakest
//!    failure round by round; then localizes each kept change. Removes and moves.
//! 7. **Rescans** (`scan::segment_scan`, `rescans` rounds): scans the stretches between
//!    confirmed changes with windows that stop at them, where the fixed scan shapes
//!    could not see a shift between close neighbours. Adds changes.
//! 8. **Rise filter** (`shape::is_sharp`, `rise_filter`): takes gradual rises out and
//!    confirms again (they are a drop coming back, and would prop up false drops).
//!    Removes changes.
//! 9. **Rescue** (`rescue::rescue`, `z_joint`): scan candidates that confirmation dropped
//!    get a second chance in a joint fit of a smooth trend and every change nearby.
//!    Adds changes.
//! 10. **Global search** (`stepwise::search`, `z_global`; series up to 50,000 points
//!     without a gap over `global.max_gap_strides`): a stepwise search against one
//!     whole-series trend (a decay to a floor plus a spline) adds drops the local tests
//!     missed and places drops both found; **support** (`z_support`) removes
//!     local-only drops the joint fit does not back. Adds, moves and removes drops.
//! 11. **Classify** (`shape::classify`): each change becomes a drop (step, sawtooth or a
//!     spike's recovery, by how much comes back within `recovery_probe`) or a spike;
//!     gradual rises are not reported. Labels.

mod bspline;
mod clean;
mod decay;
mod global;
mod joint;
mod jump;
mod noise;
mod prepare;
mod reach;
mod rescue;
mod scan;
mod select;
mod shape;
mod spd;
#[cfg(test)]
mod stages;
pub mod stepwise;
mod sums;
mod trend;

pub mod bench;

use serde::{Deserialize, Serialize};

pub use clean::CleaningReport;
pub use jump::{DEFAULT_ALPHA, JumpTest, MAX_TEST_WINDOW, jump_test, test_events};
pub use prepare::{Prepared, prepare, prepare_with};
pub use trend::TrendPoint;

/// Detector settings. The defaults were tuned on `synth` curves (see `bench`) to keep
/// false drops on clean curves at about 0.1 per 10,000 steps or fewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectConfig {
    /// |z| a shift must reach, re-tested with windows reaching to its neighbours, to be
    /// kept. Default 4.0: the scan looks at many positions and scales, so single-test
    /// levels would let noise through.
    pub z_threshold: f64,
    /// |z| at which the scan proposes a position. Default 3.5.
    pub z_candidate: f64,
    /// Smallest drop kept, in log-loss. Default 0.005 (half a percent).
    pub min_drop_log: f64,
    /// Short-side window lengths of the scan, in points. Default 64 to 512, doubling.
    pub scales: Vec<usize>,
    /// Long side of the asymmetric scan windows, as a multiple of the short side. Default 4.
    pub long_ratio: usize,
    /// Most points on one side of a blind test. Default 1024: longer windows find a few
    /// more small drops on slowly decaying curves but mistake fast early decay for drops.
    pub max_window: usize,
    /// Short sides tried when re-testing a candidate. Default 32, 64, 128, 256.
    pub confirm_windows: Vec<usize>,
    /// Points after a rise within which it must be significant to count as a spike. Default 32.
    pub spike_window: usize,
    /// Steps after a spike within which falls are its recovery. Default 500.
    pub spike_max_width: u64,
    /// Points after a drop over which its initial size is measured. Default 64.
    pub recovery_probe: usize,
    /// Recovered fraction from which a drop is a sawtooth rather than a step. Default 0.3.
    pub sawtooth_min_recovery: f64,
    /// Two-sided level of the event tests. Default 0.01.
    pub event_alpha: f64,
    /// Most points in the reported trend line. Default 2000.
    pub trend_points: usize,
    /// |z| a drop the local tests did not confirm must reach in a joint fit over a long
    /// window (smooth trend plus every confirmed change there) to be kept. Default 4.3;
    /// 0 turns the joint re-test off.
    pub z_joint: f64,
    /// |z| a drop found by the search against one global trend (a decay to a floor plus a
    /// spline, for the whole series, fitted together with every change) must reach to be
    /// kept. 0 turns it off.
    pub z_global: f64,
    /// |z| a drop only the local tests found must reach in the joint fit with the global
    /// search's changes, on series that search covers, to be kept. 0 keeps them all.
    pub z_support: f64,
    /// Half-width, in points, of the stretch a drop's reported step should fall in: the
    /// global search places each drop where the chance that the true change lies within
    /// that many points is largest (for a small drop, not the likelihood's single peak).
    /// Default 20, the benchmark's tolerance; attribution sets its own, the distance
    /// within which it ties a drop to an event.
    pub placement_window: usize,
    /// Rounds of rescanning the stretches between confirmed changes with windows that
    /// reach to them. Default 3 (a fourth round finds nothing more on the benchmark); 0
    /// turns the rescans off.
    pub rescans: usize,
    /// Take gradual rises out before the last confirmation round (they are mostly a drop
    /// coming back and would prop up false drops after it). Default on.
    pub rise_filter: bool,
    /// A scan cluster whose strongest position fails may stand on another member that
    /// passes at twice `z_threshold` (see `select::stand_in`). Default on.
    pub stand_in: bool,
    /// The confirming fits (stage 6) and the stand-in's bar.
    pub confirm: ConfirmConfig,
    /// Closest a rescan's new change may be to a confirmed one, in points. Default 8.
    pub rescan_min_separation: usize,
    /// The global search (stage 10).
    pub global: GlobalConfig,
    /// The rescue's joint fits (stage 9); its keep threshold is `z_joint`.
    pub rescue: RescueConfig,
    /// How far windows may reach where the curve bends (stage 3); the longest is
    /// `max_window`.
    pub reach: ReachConfig,
    /// The scans' window shapes and grid (stages 4 and 7); their scales are `scales`.
    pub scan: ScanConfig,
    /// The preparation (stage 2), for [`prepare_with`].
    pub prepare: PrepareConfig,
}

/// The preparation of a series before any test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrepareConfig {
    /// Local noise sigmas from the running median beyond which a value is clipped.
    /// Default 2.5: one wild batch cannot pose as a shift, and Gaussian noise loses little
    /// (2.0 and 1.5 were tried: more false drops on clean curves, 0.08 and 0.24 per 10k
    /// against 0.06, for no gain on hard drops).
    pub winsor_k: f64,
}

impl Default for PrepareConfig {
    fn default() -> Self {
        PrepareConfig { winsor_k: 2.5 }
    }
}

/// The scans' fits: when a shape allows for the curvature, and the rescans' grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScanConfig {
    /// Long side, in points, from which an asymmetric scan shape allows for the curvature.
    /// Default 512: below it a smooth decay bends too little to pass for a shift, and the
    /// curvature estimate would cost more than it saves.
    pub curvature_from: usize,
    /// Grid spacing of the rescans, in points. Default 16.
    pub segment_grid: usize,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            curvature_from: 512,
            segment_grid: 16,
        }
    }
}

/// How far a window may reach before the trend's changing curvature would pass for a
/// shift (see `detect/reach.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReachConfig {
    /// Points per block: reach is measured once per block. Default 256.
    pub block: usize,
    /// Shortest reach, in points; windows halve from `max_window` down to it. Default 256.
    pub shortest: usize,
    /// Allowed bias of a jump from the changing curvature, as a share of the jump's
    /// standard error. Default 0.5.
    pub bias_share: f64,
    /// Standard errors of the third-derivative estimate discounted as noise. Default 2.
    pub d_noise_se: f64,
}

impl Default for ReachConfig {
    fn default() -> Self {
        ReachConfig {
            block: 256,
            shortest: 256,
            bias_share: 0.5,
            d_noise_se: 2.0,
        }
    }
}

/// The rescue's joint fits: a polynomial trend plus every confirmed change nearby, over a
/// window a few times the local reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RescueConfig {
    /// Half-width of the joint window, as a multiple of the local reach. Default 2.
    pub span_reach: usize,
    /// Shortest half-span tried, in points. Default 512: shorter, the quadratic trend
    /// takes too much of a small jump.
    pub min_span: usize,
    /// Polynomial degree of the trend in the joint window. Default 2.
    pub degree: usize,
    /// Time constant of the recovery term, in points. Default 170 (the middle of the
    /// recoveries seen in the bundled scenarios).
    pub recovery_tau: f64,
    /// Most confirmed changes modelled in one window. Default 8.
    pub max_terms: usize,
    /// Points each side searched when placing a rescued drop. Default 48.
    pub radius: usize,
    /// Points each side of the searched range the placing split uses. Default 256.
    pub place_reach: usize,
    /// Share of `z_joint` a candidate must show at first look. Default 0.7.
    pub prefilter: f64,
    /// Chi-square (2 degrees of freedom) a quartic may gain over the quadratic trend before
    /// the window is too curved to trust. Default 6 (p ≈ 0.05).
    pub lack_of_fit: f64,
    /// Standard errors the quartic's jump may differ from the quadratic's. Default 1.
    pub agree_k: f64,
}

impl Default for RescueConfig {
    fn default() -> Self {
        RescueConfig {
            span_reach: 2,
            min_span: 512,
            degree: 2,
            recovery_tau: 170.0,
            max_terms: 8,
            radius: 48,
            place_reach: 256,
            prefilter: 0.7,
            lack_of_fit: 6.0,
            agree_k: 1.0,
        }
    }
}

/// Where the global search runs and how its drops meet the local tests' (stage 10). Its
/// keep threshold is `z_global`, its second opinion `z_support`, its placement window
/// `placement_window`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GlobalConfig {
    /// Longest series searched, in points. Default 50,000: beyond it the search costs more
    /// than the speed target allows (issue 11: this is a cliff still to remove).
    pub max_points: usize,
    /// Closest a drop from the global search may be to a change already confirmed, in
    /// points. Default 40.
    pub separation: usize,
    /// Longest logging gap the search runs across, in typical strides. Default 8 (the
    /// fewest points a line is fitted through): across it the trend along the index moves
    /// by at most that many points' fall. Longer gaps turn the search off (issue 11: a
    /// cliff still to remove, by searching each stretch between long gaps on its own).
    pub max_gap_strides: u64,
    /// Points at the start where the global search adds no drop and gives no second
    /// opinion. Default 250: early training falls faster than a trend stiff enough to
    /// leave steps alone can bend, and the spline's first knot span (the shortest tried)
    /// is where it is least determined. The local tests still look.
    pub lead_in: usize,
    /// The stepwise search itself: spline, scan, placement.
    pub search: stepwise::StepwiseConfig,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            max_points: 50_000,
            max_gap_strides: 8,
            separation: 40,
            lead_in: 250,
            search: stepwise::StepwiseConfig::default(),
        }
    }
}

/// Fewest points on either side of a two-line test, in every stage that fits one: a line
/// through fewer is too noisy to measure a shift at all.
const MIN_SIDE: usize = 8;

/// The confirming fits: how long a drop must hold, the "sudden" cross-check, where the
/// next change's window may start, and the placement search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfirmConfig {
    /// Points a drop is always measured over after it, even at a neighbour. Default 64: a
    /// dip that a rise soon undoes is noise (or a spike upside down), not a drop.
    pub min_after_drop: usize,
    /// Half-width, in points, of the shortest balanced windows a shift is cross-checked
    /// with. Default 64.
    pub check_half: usize,
    /// The other cross-check uses balanced windows this many times shorter than the fit's.
    /// Default 4.
    pub check_shrink: usize,
    /// Standard errors the short-range shift may fall short of the long-range one.
    /// Default 2.5: a bias from a changing curvature grows with the cube of the window, a
    /// real shift does not shrink.
    pub check_k: f64,
    /// Points after a drop left out of the next change's left window, at most. Default 200:
    /// after a drop the loss may spend a while coming back (a sawtooth), which no line
    /// follows.
    pub settle: usize,
    /// A stand-in must pass at this many times `z_threshold`. Default 2: it is a second
    /// look over several positions where local lines misfit most (on real logs a stand-in
    /// at 1× found an 8.9% "drop" at z -4.6 in the first epoch of a smooth SFT run).
    pub stand_in_z_factor: f64,
    /// Points each side of a confirmed change searched for its best position. Default 48.
    pub localize_radius: usize,
    /// Points each side of the searched range that the placing fits use. Default 256.
    pub localize_reach: usize,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        ConfirmConfig {
            min_after_drop: 64,
            check_half: 64,
            check_shrink: 4,
            check_k: 2.5,
            settle: 200,
            stand_in_z_factor: 2.0,
            localize_radius: 48,
            localize_reach: 256,
        }
    }
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            z_threshold: 4.0,
            z_candidate: 3.5,
            min_drop_log: 0.005,
            scales: vec![64, 128, 256, 512],
            long_ratio: 4,
            max_window: 1024,
            confirm_windows: vec![32, 64, 128, 256],
            spike_window: 32,
            spike_max_width: 500,
            recovery_probe: 64,
            sawtooth_min_recovery: 0.3,
            event_alpha: 0.01,
            trend_points: 2000,
            z_joint: 4.3,
            z_global: 3.8,
            z_support: 3.0,
            placement_window: 20,
            rescans: 3,
            rise_filter: true,
            stand_in: true,
            confirm: ConfirmConfig::default(),
            rescan_min_separation: 8,
            global: GlobalConfig::default(),
            rescue: RescueConfig::default(),
            reach: ReachConfig::default(),
            scan: ScanConfig::default(),
            prepare: PrepareConfig::default(),
        }
    }
}

/// What a drop looks like after it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropShape {
    /// A persistent level shift.
    Step,
    /// A drop followed by a gradual partial recovery, as at epoch starts.
    Sawtooth,
    /// The fall back after a spike: not a drop of its own.
    Recovery,
}

/// A detected drop. Levels are the local fits at the boundary, in loss units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossDrop {
    /// The first step at the lower level.
    pub step: u64,
    /// Its index in the cleaned series.
    pub index: usize,
    pub before: f64,
    pub after: f64,
    /// `before - after`.
    pub abs: f64,
    /// `abs / before`.
    pub rel: f64,
    /// `ln(before) - ln(after)`: positive for a drop.
    pub log: f64,
    /// The shift over its standard error against the local noise (negative for a drop).
    pub z: f64,
    pub shape: DropShape,
    /// How much of the drop came back before the next drop (0 to 1).
    pub recovered_fraction: f64,
}

/// A sharp rise in the loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spike {
    pub step: u64,
    pub index: usize,
    /// Height of the rise in log-loss (positive).
    pub height_log: f64,
    pub z: f64,
    /// Steps until the loss is back below half the height (capped at `spike_max_width`).
    pub width: u64,
}

/// Everything `detect` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub drops: Vec<LossDrop>,
    pub spikes: Vec<Spike>,
    /// Global robust sigma of the log-loss noise, per step.
    pub noise_sigma: f64,
    /// The fitted trend, downsampled to at most `trend_points` points.
    pub trend: Vec<TrendPoint>,
    pub cleaning: CleaningReport,
    /// One test per given event step that lies inside the series.
    pub event_tests: Vec<JumpTest>,
}

/// Finds drops and spikes in a loss series, and tests the given event steps.
///
/// Steps may be unsorted, repeated, gappy; losses may be NaN, infinite, zero or negative:
/// see [`CleaningReport`] for what is done. Never panics.
pub fn detect(steps: &[u64], loss: &[f64], events: &[u64], cfg: &DetectConfig) -> Detection {
    let p = prepare_with(steps, loss, &cfg.prepare);
    detect_prepared(&p, events, cfg)
}

/// `detect` on a series already prepared (attribution prepares once and reuses it).
pub fn detect_prepared(p: &Prepared, events: &[u64], cfg: &DetectConfig) -> Detection {
    let reach = reach::Reach::build(p, cfg);
    let changes = find_changes(p, &reach, cfg);
    let (drops, spikes) = shape::classify(p, &changes, &reach, cfg);
    let cuts: Vec<usize> = changes.iter().map(|c| c.at).collect();
    Detection {
        drops,
        spikes,
        noise_sigma: p.noise_sigma(),
        trend: trend::trend(p, &cuts, cfg.trend_points),
        cleaning: p.cleaning().clone(),
        event_tests: test_events(p, events, cfg.event_alpha),
    }
}

/// Confirmed level shifts, in order: a blind scan, then rounds of rescanning the stretches
/// between what has been confirmed, then the gradual rises taken out.
fn find_changes(p: &Prepared, reach: &reach::Reach, cfg: &DetectConfig) -> Vec<select::Change> {
    let shapes = scan::shapes(cfg);
    let (down, up) = scan::scan(p, &shapes, reach, cfg.z_candidate);
    let cands: Vec<(usize, bool)> = scan::suppress_clusters(down, 4)
        .iter()
        .map(|(_, cluster)| match cfg.stand_in {
            true => (select::stand_in(p, cluster, true, reach, cfg), true),
            false => (cluster[0], true),
        })
        .chain(scan::suppress(up, 4).iter().map(|c| (c.at, false)))
        .collect();
    let mut pool: Vec<usize> = cands.iter().filter(|c| c.1).map(|c| c.0).collect();
    let mut changes = select::confirm(p, cands, reach, cfg);
    let grid = scan::segment_grid(p, cfg);
    // Only stretches next to a newly confirmed change can hold anything new.
    let mut fresh: Option<Vec<usize>> = None;
    for _ in 0..cfg.rescans {
        let cuts: Vec<usize> = changes.iter().map(|c| c.at).collect();
        let extra: Vec<(usize, bool)> =
            scan::segment_scan(p, &grid, (&cuts, fresh.as_deref()), reach, cfg.z_candidate)
                .into_iter()
                .filter(|&(t, _)| {
                    cuts.iter()
                        .all(|&c| c.abs_diff(t) >= cfg.rescan_min_separation)
                })
                .collect();
        pool.extend(extra.iter().filter(|c| c.1).map(|c| c.0));
        if extra.is_empty() {
            break;
        }
        let all = changes
            .iter()
            .map(|c| (c.at, c.down))
            .chain(extra)
            .collect();
        changes = select::confirm(p, all, reach, cfg);
        let new: Vec<usize> = changes
            .iter()
            .map(|c| c.at)
            .filter(|t| cuts.binary_search(t).is_err())
            .collect();
        if new.is_empty() {
            break;
        }
        fresh = Some(new);
    }
    // Gradual rises are not reported (only spikes are), and most are a drop coming back;
    // as neighbours they would cut that drop's recovery off and prop up false drops after
    // it, so they go before the last round.
    let sharp: Vec<(usize, bool)> = changes
        .iter()
        .enumerate()
        .filter(|(k, c)| {
            let prev = if *k > 0 { changes[k - 1].at } else { 0 };
            c.down || shape::is_sharp(p, c, prev, reach, cfg)
        })
        .map(|(_, c)| (c.at, c.down))
        .collect();
    if cfg.rise_filter && sharp.len() < changes.len() {
        changes = select::confirm(p, sharp, reach, cfg);
    }
    let changes = rescue::rescue(p, changes, pool, reach, cfg);
    global_drops(p, changes, reach, cfg)
}

/// Adds the drops that the search against one global trend finds and the local tests
/// missed: far from any confirmed change, sudden, and strong in the global fit.
fn global_drops(
    p: &Prepared,
    mut changes: Vec<select::Change>,
    reach: &reach::Reach,
    cfg: &DetectConfig,
) -> Vec<select::Change> {
    // The spline runs along the index: across a long logging gap the trend would seem to
    // bend sharply, which the search would take for a change. A short one (a few rows
    // dropped as NaN, a logger that skipped a beat) moves the trend by a few points' fall,
    // which is no shift; it must not cost the whole log its best stage.
    let c = p.cleaning();
    let long_gap = c.n_gaps > 0
        && c.largest_gap
            > c.typical_stride
                .max(1)
                .saturating_mul(cfg.global.max_gap_strides);
    if !(cfg.z_global.is_finite() && cfg.z_global > 0.0)
        || p.len() > cfg.global.max_points
        || long_gap
    {
        return changes;
    }
    let sc = stepwise::StepwiseConfig {
        z_keep: cfg.z_global,
        tolerance: cfg.placement_window,
        ..cfg.global.search.clone()
    };
    let seeds: Vec<usize> = changes.iter().map(|c| c.at).collect();
    let Some(found) = stepwise::search(p.values(), &sc, &seeds) else {
        return changes;
    };
    let f = &found.fit;
    let n = p.len();
    // A drop only the local tests found gets a second opinion from the joint fit: local
    // line fits mistake a bend of the trend for a shift more easily than the whole-series
    // trend does. The lead-in is left alone (the global search does not look there), and
    // so are falls soon after a rise: a spike's recovery belongs to the rise.
    let ups: Vec<usize> = changes.iter().filter(|c| !c.down).map(|c| c.at).collect();
    let gap = cfg.spike_max_width as usize;
    let near_global = |at: usize| {
        f.terms
            .iter()
            .zip(&f.jump)
            .any(|(t, &j)| j < 0.0 && t.at.abs_diff(at) < cfg.global.separation)
    };
    let doubtful: Vec<usize> = changes
        .iter()
        .filter(|c| {
            c.down
                && c.at >= cfg.global.lead_in
                && !ups.iter().any(|&u| u < c.at && c.at - u <= gap)
                && !near_global(c.at)
        })
        .map(|c| c.at)
        .collect();
    if cfg.z_support > 0.0
        && !doubtful.is_empty()
        && let Some(z) = stepwise::support(&found, &sc, &doubtful)
    {
        for (at, (z, placed)) in doubtful.iter().zip(&z) {
            let Some(j) = changes.iter().position(|c| c.at == *at) else {
                continue;
            };
            if -z < cfg.z_support {
                changes.remove(j);
                continue;
            }
            move_drop(p, &mut changes, j, *placed, reach, cfg);
        }
    }
    let mut added = Vec::new();
    for (k, t) in f.terms.iter().enumerate() {
        let at = t.at;
        if f.jump[k] >= 0.0 || -f.jump[k] < cfg.min_drop_log || at < cfg.global.lead_in {
            continue;
        }
        if let Some(j) = changes
            .iter()
            .position(|c| c.at.abs_diff(at) < cfg.global.separation)
        {
            // A drop both found: the global fit places it better, with the trend taken
            // from the whole series rather than from the two sides of the boundary.
            if changes[j].down {
                move_drop(p, &mut changes, j, at, reach, cfg);
            }
            continue;
        }
        let prev = changes.iter().rev().find(|c| c.at < at).map_or(0, |c| c.at);
        let next = changes.iter().find(|c| c.at > at).map_or(n, |c| c.at);
        let Some(mut fit) = select::best_fit(p, at, true, (prev, next), reach, cfg) else {
            continue;
        };
        if !select::sudden(p, at, true, (prev, next), &fit, cfg) {
            continue;
        }
        fit.jump = f.jump[k];
        fit.z = f.z[k];
        fit.se = -f.jump[k] / f.z[k];
        added.push(select::Change {
            at,
            down: true,
            fit,
        });
    }
    changes.extend(added);
    changes.sort_by_key(|c| c.at);
    changes
}

/// Moves drop `j` to `to`, with its local fit there, when `to` stays between its
/// neighbours and the fit there is still a drop.
fn move_drop(
    p: &Prepared,
    changes: &mut [select::Change],
    j: usize,
    to: usize,
    reach: &reach::Reach,
    cfg: &DetectConfig,
) {
    let prev = if j > 0 { changes[j - 1].at } else { 0 };
    let next = changes.get(j + 1).map_or(p.len(), |c| c.at);
    if to != changes[j].at
        && to > prev
        && to < next
        && let Some(fit) = select::best_fit(p, to, true, (prev, next), reach, cfg)
        && fit.jump < 0.0
    {
        changes[j].at = to;
        changes[j].fit = fit;
    }
}

#[cfg(test)]
mod tests;
