//! `dropscope bench watch`: the watcher's throughput, its detection delay per event kind,
//! and its false alarms and misses beside the rules of common training-loop watchdogs.
//!
//! Series are the detector benchmark's planted curves (`synth`), with spikes, sustained
//! rises, NaNs and epoch-start memorization drops planted on top, all from seeds.

use std::fmt;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Alert, AlertKind, WatchConfig, Watcher};
use crate::attribute::Cause;
use crate::detect::bench::TOLERANCE;
use crate::synth::{Difficulty, NoiseKind, SynthSpec, planted, spike_then_recovery};

/// Points per planted series: the detector benchmark's length.
const SERIES_POINTS: usize = 10_000;
/// Steps per epoch of the memorization series: 19 epoch starts per series.
const EPOCH_STEPS: u64 = 500;
/// A planted spike is `SPIKE_HEIGHT` times the loss at its start (drawn in log space) and
/// decays back with a time constant of `SPIKE_TAU` steps: several-fold for tens of steps,
/// as LLM loss spikes are.
const SPIKE_HEIGHT: (f64, f64) = (3.0, 8.0);
const SPIKE_TAU: (f64, f64) = (20.0, 60.0);
/// A planted sustained rise doubles the loss every this many steps from its start.
const RISE_DOUBLING_STEPS: f64 = 100.0;
/// A baseline rule catches a planted spike if it fires within this many steps of its
/// start, and a rise within this many of its start.
const SPIKE_CATCH_STEPS: u64 = 50;
const RISE_CATCH_STEPS: u64 = 1000;
/// A rule catches a planted drop (at no event) if it fires within this many steps after
/// it: the watcher's confirmation needs up to a few hundred points for a small drop.
const DROP_CATCH_STEPS: u64 = 300;
/// Sizes, in noise sigmas, of the planted drops at no event that a rule should flag:
/// above attribution's `min_drop_noise_sigmas` (2), below which a drop asks for no cause
/// (`investigate` calls it minor, and so does `watch`).
const UNEXPLAINED_SIGMAS: (f64, f64) = (2.5, 4.0);

/// One measured table of everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchBench {
    pub throughput: Throughput,
    pub delays: Vec<DelayRow>,
    pub alarms: Vec<AlarmRow>,
    /// What explained the drops the watcher confirmed, per kind of series.
    pub explained: Vec<Explained>,
    pub series: usize,
    pub seed: u64,
}

/// The explanations of the drops confirmed on one kind of series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explained {
    pub series: String,
    pub drops: Vec<(Cause, usize)>,
}

/// Runs every part on `series` planted series per cell, seeds from `seed`.
pub fn run(series: usize, seed: u64, throughput_points: usize) -> WatchBench {
    WatchBench {
        throughput: throughput(throughput_points, seed),
        delays: delays(series, seed),
        alarms: alarms(series, seed),
        explained: explained(series, seed),
        series,
        seed,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub points: usize,
    pub seconds: f64,
    pub points_per_second: f64,
    /// The same on a clean series (no drop, so next to no detector run): the cost of the
    /// streaming statistics alone.
    pub clean_points_per_second: f64,
    /// Detector runs on the clean series: candidates that no drop explained.
    pub clean_detector_runs: u64,
    /// Batch-detector runs the candidates caused.
    pub detector_runs: u64,
    pub alerts: usize,
}

/// `Watcher::push` on one planted-drop series of `n` points (8 easy drops per 10,000,
/// Gaussian noise), one thread, generation not timed: the best of three runs.
pub fn throughput(n: usize, seed: u64) -> Throughput {
    let spec = SynthSpec {
        n,
        n_drops: n / 1250,
        ..SynthSpec::new(NoiseKind::Gaussian, Difficulty::Easy, seed)
    };
    let (seconds, detector_runs, alerts) = time_pushes(&planted(&spec));
    let clean = SynthSpec {
        drop_sigmas: None,
        ..spec
    };
    let (clean_seconds, clean_detector_runs, _) = time_pushes(&planted(&clean));
    Throughput {
        points: n,
        seconds,
        points_per_second: n as f64 / seconds,
        clean_points_per_second: n as f64 / clean_seconds,
        clean_detector_runs,
        detector_runs,
        alerts,
    }
}

/// The best of three timed runs through a fresh watcher: seconds, detector runs, alerts.
fn time_pushes(s: &crate::synth::SynthSeries) -> (f64, u64, usize) {
    let mut best = (f64::INFINITY, 0, 0);
    for _ in 0..3 {
        let t0 = Instant::now();
        let mut w = Watcher::default();
        let mut alerts = 0;
        for (&step, &loss) in s.steps.iter().zip(&s.loss) {
            alerts += w.push(step, loss, None, None).len();
        }
        let secs = t0.elapsed().as_secs_f64();
        if secs < best.0 {
            best = (secs, w.detector_runs(), alerts);
        }
    }
    best
}

/// One point of a benchmark series.
#[derive(Debug, Clone, Copy)]
struct Pt {
    step: u64,
    loss: f64,
    epoch: Option<u64>,
}

fn points(steps: &[u64], loss: &[f64], epoch_steps: Option<u64>) -> Vec<Pt> {
    steps
        .iter()
        .zip(loss)
        .map(|(&step, &loss)| Pt {
            step,
            loss,
            epoch: epoch_steps.map(|e| step / e),
        })
        .collect()
}

fn watch(pts: &[Pt]) -> Vec<Alert> {
    let mut w = Watcher::new(WatchConfig::default());
    pts.iter()
        .flat_map(|p| w.push(p.step, p.loss, None, p.epoch))
        .collect()
}

/// Delay from a planted event to its alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelayRow {
    pub kind: String,
    /// Unit of the delay: steps, or epochs for overfitting.
    pub unit: String,
    pub planted: usize,
    pub alerted: usize,
    pub median: Option<f64>,
    pub p90: Option<f64>,
}

fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[((v.len() - 1) as f64 * q).round() as usize])
}

fn delay_row(kind: &str, unit: &str, planted: usize, mut d: Vec<f64>) -> DelayRow {
    DelayRow {
        kind: kind.into(),
        unit: unit.into(),
        planted,
        alerted: d.len(),
        median: quantile(&mut d, 0.5),
        p90: quantile(&mut d, 0.9),
    }
}

/// Median and 90th-percentile steps from each planted event to its alert.
pub fn delays(series: usize, seed: u64) -> Vec<DelayRow> {
    let mut rows = Vec::new();
    let specs: [(&str, SpecOf); 3] = [
        ("drop, 0.75-2 sigma (easy)", easy),
        ("drop, 0.3-0.75 sigma (hard)", hard),
        ("unexplained drop, 2.5-4 sigma", unexplained),
    ];
    for (name, spec) in specs {
        let (planted_n, d) = drop_delays(series, seed, spec);
        rows.push(delay_row(name, "steps", planted_n, d));
    }
    let (start, recovered) = spike_delays(series, seed);
    rows.push(delay_row("spike started", "steps", series, start));
    rows.push(delay_row("spike recovered", "steps", series, recovered));
    let mut nan = Vec::new();
    let mut rise = Vec::new();
    for k in 0..series as u64 {
        let (pts, t0) = diverging(seed + k, false);
        nan.extend(first_delay(&watch(&pts), t0, |a| a.name() == "divergence"));
        let (pts, t0) = diverging(seed + k, true);
        rise.extend(first_delay(&watch(&pts), t0, |a| a.name() == "divergence"));
    }
    rows.push(delay_row("divergence (NaN)", "steps", series, nan));
    rows.push(delay_row("divergence (rise)", "steps", series, rise));
    rows.push(delay_row(
        "overfitting",
        "epochs",
        series,
        overfit_delays(series, seed),
    ));
    rows
}

/// Delay from `t0` to the first alert at or after it that `pick` takes.
fn first_delay(alerts: &[Alert], t0: u64, pick: impl Fn(&Alert) -> bool) -> Option<f64> {
    alerts
        .iter()
        .find(|a| a.at >= t0 && pick(a))
        .map(|a| (a.at - t0) as f64)
}

/// Drop alerts matched one-to-one with planted drops within the detector benchmark's
/// tolerance, nearest first; the delay runs from the planted step to the confirmation.
/// A planted series' spec from its seed.
type SpecOf = fn(u64) -> SynthSpec;

fn easy(seed: u64) -> SynthSpec {
    SynthSpec::new(NoiseKind::Gaussian, Difficulty::Easy, seed)
}

fn hard(seed: u64) -> SynthSpec {
    SynthSpec::new(NoiseKind::Gaussian, Difficulty::Hard, seed)
}

fn drop_delays(series: usize, seed: u64, spec: SpecOf) -> (usize, Vec<f64>) {
    let mut planted_n = 0;
    let mut out = Vec::new();
    for k in 0..series as u64 {
        let s = planted(&spec(seed + k));
        let alerts = watch(&points(&s.steps, &s.loss, None));
        let mut found: Vec<&Alert> = alerts.iter().filter(|a| a.name() == "drop").collect();
        planted_n += s.drops.len();
        for d in &s.drops {
            let near = found
                .iter()
                .enumerate()
                .filter(|(_, a)| a.step.abs_diff(d.step) <= TOLERANCE)
                .min_by_key(|(_, a)| a.step.abs_diff(d.step))
                .map(|(i, _)| i);
            if let Some(i) = near {
                out.push((found[i].at - d.step) as f64);
                found.remove(i);
            }
        }
    }
    (planted_n, out)
}

/// A planted spike: its series, start, and the step its excess falls below half its
/// height (where the watcher's recovery rule starts counting).
fn spike_series(seed: u64) -> (Vec<Pt>, u64, u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5b1c_e000);
    let at = rng.random_range(2_000..SERIES_POINTS - 1_000);
    let height = rng.random_range(SPIKE_HEIGHT.0.ln()..SPIKE_HEIGHT.1.ln());
    let tau = rng.random_range(SPIKE_TAU.0..SPIKE_TAU.1);
    let s = spike_then_recovery(SERIES_POINTS, at, height, tau, seed);
    // Back below half the peak height: the watcher's (and attribution's) end of an episode.
    let back = at as u64 + (tau * 2f64.ln()).ceil() as u64;
    (points(&s.steps, &s.loss, None), at as u64, back)
}

fn spike_delays(series: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let (mut start, mut back) = (Vec::new(), Vec::new());
    for k in 0..series as u64 {
        let (pts, at, over) = spike_series(seed + k);
        let alerts = watch(&pts);
        start.extend(first_delay(&alerts, at, |a| a.name() == "spike_started"));
        let recovered = alerts.iter().find(|a| a.name() == "spike_recovered");
        back.extend(recovered.map(|a| a.at as f64 - over as f64));
    }
    (start, back)
}

/// A clean planted curve that turns NaN (or starts to double every
/// `RISE_DOUBLING_STEPS`) at a random step; the step is returned.
fn diverging(seed: u64, rise: bool) -> (Vec<Pt>, u64) {
    let mut s = planted(&SynthSpec::new(
        NoiseKind::Gaussian,
        Difficulty::Clean,
        seed,
    ));
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xd17e_7000);
    let t0 = rng.random_range(2_000..SERIES_POINTS - 2_000);
    for (t, l) in s.loss.iter_mut().enumerate().skip(t0) {
        *l = if rise {
            *l * (std::f64::consts::LN_2 * (t - t0) as f64 / RISE_DOUBLING_STEPS).exp()
        } else {
            f64::NAN
        };
    }
    (points(&s.steps, &s.loss, None), t0 as u64)
}

/// Validation curves that fall to a best epoch, then rise by 2% of the loss per epoch in
/// 1% noise; the delay counts epochs from the first one after the best to the alert.
fn overfit_delays(series: usize, seed: u64) -> Vec<f64> {
    use rand_distr::{Distribution, StandardNormal};
    let mut out = Vec::new();
    for k in 0..series as u64 {
        let mut rng = ChaCha8Rng::seed_from_u64((seed + k) ^ 0x0e7f_1700);
        let best = rng.random_range(8..16u64);
        let mut w = Watcher::default();
        for e in 0..40u64 {
            let trend = if e <= best {
                1.0 - 0.03 * e as f64
            } else {
                1.0 - 0.03 * best as f64 + 0.02 * (e - best) as f64
            };
            let noise: f64 = StandardNormal.sample(&mut rng);
            let alerts = w.push_val(e, (e + 1) * 100, trend + 0.01 * noise);
            if !alerts.is_empty() {
                out.push((e - best - 1) as f64);
                break;
            }
        }
    }
    out
}

/// False alarms per 100,000 steps and misses, for one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRow {
    pub rule: String,
    pub clean_gaussian: f64,
    pub clean_student_t3: f64,
    pub memorization: f64,
    /// Planted events missed, out of `planted` each.
    pub spikes_missed: usize,
    pub rises_missed: usize,
    pub drops_missed: usize,
    pub planted_spikes: usize,
    pub planted_rises: usize,
    pub planted_drops: usize,
}

/// An alarm rule over a loss series: which steps it fires at.
trait Rule {
    fn name(&self) -> String;
    fn fires(&self, pts: &[Pt]) -> Vec<u64>;
}

/// `dropscope watch --fail-on divergence,spike,unexplained-drop,overfitting`.
struct WatchRule;

impl Rule for WatchRule {
    fn name(&self) -> String {
        "dropscope watch --fail-on (all kinds)".into()
    }
    fn fires(&self, pts: &[Pt]) -> Vec<u64> {
        watch(pts)
            .iter()
            .filter(|a| a.fail_kind().is_some())
            .map(|a| a.at)
            .collect()
    }
}

/// The anchors' rules, each on the raw loss, counting the onsets of firing (a wrapper
/// stops at the first; a run of firing steps is one alarm).
enum Baseline {
    /// llm-foundry's kill-loss-spike: loss above 3x the mean of the previous 100 steps.
    MeanRatio,
    /// metaseq's skip-batch rule: loss over an EWA with alpha 0.99 above 2.
    EwaRatio,
    /// W&B-style alert: z-score above 3 against the previous 50 steps.
    ZScore,
}

impl Rule for Baseline {
    fn name(&self) -> String {
        match self {
            Baseline::MeanRatio => "loss > 3x mean of previous 100".into(),
            Baseline::EwaRatio => "loss / EWA(alpha 0.99) > 2".into(),
            Baseline::ZScore => "z-score > 3 over previous 50".into(),
        }
    }

    fn fires(&self, pts: &[Pt]) -> Vec<u64> {
        let mut out = Vec::new();
        let mut was = false;
        let mut ewa: Option<f64> = None;
        for (i, p) in pts.iter().enumerate() {
            let fire = match self {
                Baseline::MeanRatio => window(pts, i, 100)
                    .is_some_and(|w| !p.loss.is_finite() || p.loss > 3.0 * mean(&w)),
                Baseline::EwaRatio => ewa.is_some_and(|e| !p.loss.is_finite() || p.loss / e > 2.0),
                Baseline::ZScore => window(pts, i, 50).is_some_and(|w| {
                    let (m, sd) = (mean(&w), sd(&w));
                    !p.loss.is_finite() || (sd > 0.0 && (p.loss - m) / sd > 3.0)
                }),
            };
            if let (Baseline::EwaRatio, true) = (self, p.loss.is_finite()) {
                ewa = Some(ewa.map_or(p.loss, |e| 0.99 * e + 0.01 * p.loss));
            }
            if fire && !was {
                out.push(p.step);
            }
            was = fire;
        }
        out
    }
}

/// The finite losses of the `n` points before `i`, once there are `n` points.
fn window(pts: &[Pt], i: usize, n: usize) -> Option<Vec<f64>> {
    (i >= n).then(|| {
        pts[i - n..i]
            .iter()
            .map(|p| p.loss)
            .filter(|l| l.is_finite())
            .collect()
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn sd(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64).sqrt()
}

/// A clean curve with a drop at every epoch start (1 to 3 noise sigmas, recovering 60%
/// over 100 to 250 steps, as memorized examples come round again), epochs known.
fn memorization(seed: u64) -> Vec<Pt> {
    let mut s = planted(&SynthSpec::new(
        NoiseKind::Gaussian,
        Difficulty::Clean,
        seed,
    ));
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x3e30_0000);
    let mut log: Vec<f64> = s.loss.iter().map(|l| l.ln()).collect();
    for start in (EPOCH_STEPS..SERIES_POINTS as u64).step_by(EPOCH_STEPS as usize) {
        let size = 0.1 * rng.random_range(1.0..3.0);
        let tau = rng.random_range(100.0..250.0);
        for (t, y) in log.iter_mut().enumerate().skip(start as usize) {
            let back = 0.6 * (1.0 - (-((t as u64 - start) as f64) / tau).exp());
            *y -= size * (1.0 - back);
        }
    }
    s.loss = log.iter().map(|y| y.exp()).collect();
    points(&s.steps, &s.loss, Some(EPOCH_STEPS))
}

fn per_100k(alarms: usize, steps: usize) -> f64 {
    alarms as f64 * 1e5 / steps.max(1) as f64
}

/// Every rule on the same series: false alarms on clean and memorization curves, misses
/// on planted spikes, rises and (unexplained) drops.
pub fn alarms(series: usize, seed: u64) -> Vec<AlarmRow> {
    let rules: [&dyn Rule; 4] = [
        &WatchRule,
        &Baseline::MeanRatio,
        &Baseline::EwaRatio,
        &Baseline::ZScore,
    ];
    let clean = |noise, k: u64| {
        let s = planted(&SynthSpec::new(noise, Difficulty::Clean, seed + k));
        points(&s.steps, &s.loss, None)
    };
    let steps = series * SERIES_POINTS;
    rules
        .iter()
        .map(|rule| {
            let count = |make: &dyn Fn(u64) -> Vec<Pt>| {
                let alarms = (0..series as u64).map(|k| rule.fires(&make(k)).len());
                per_100k(alarms.sum(), steps)
            };
            AlarmRow {
                rule: rule.name(),
                clean_gaussian: count(&|k| clean(NoiseKind::Gaussian, k)),
                clean_student_t3: count(&|k| clean(NoiseKind::StudentT3, k)),
                memorization: count(&|k| memorization(seed + k)),
                ..misses(*rule, series, seed)
            }
        })
        .collect()
}

/// A row with one rule's misses of planted spikes, rises and unexplained drops.
fn misses(rule: &dyn Rule, series: usize, seed: u64) -> AlarmRow {
    let mut row = AlarmRow {
        rule: rule.name(),
        clean_gaussian: 0.0,
        clean_student_t3: 0.0,
        memorization: 0.0,
        spikes_missed: 0,
        rises_missed: 0,
        drops_missed: 0,
        planted_spikes: series,
        planted_rises: series,
        planted_drops: 0,
    };
    for k in 0..series as u64 {
        let (pts, at, _) = spike_series(seed + k);
        row.spikes_missed += !caught(&rule.fires(&pts), at, SPIKE_CATCH_STEPS) as usize;
        let (pts, t0) = diverging(seed + k, true);
        row.rises_missed += !caught(&rule.fires(&pts), t0, RISE_CATCH_STEPS) as usize;
        let s = planted(&unexplained(seed + k));
        let fires = rule.fires(&points(&s.steps, &s.loss, None));
        row.planted_drops += s.drops.len();
        let missed = s
            .drops
            .iter()
            .filter(|d| !caught(&fires, d.step, DROP_CATCH_STEPS));
        row.drops_missed += missed.count();
    }
    row
}

/// The detector benchmark's curve with drops of `UNEXPLAINED_SIGMAS`, at no event.
fn unexplained(seed: u64) -> SynthSpec {
    SynthSpec {
        drop_sigmas: Some(UNEXPLAINED_SIGMAS),
        ..SynthSpec::new(NoiseKind::Gaussian, Difficulty::Easy, seed)
    }
}

/// Whether a rule fired within `within` steps after `at`.
fn caught(fires: &[u64], at: u64, within: u64) -> bool {
    fires.iter().any(|&f| f >= at && f <= at + within)
}

/// What explained the drops confirmed on the memorization series (epoch starts known)
/// and on the series with large drops at no event.
pub fn explained(series: usize, seed: u64) -> Vec<Explained> {
    let count = |make: &dyn Fn(u64) -> Vec<Pt>| {
        let alerts: Vec<Alert> = (0..series as u64).flat_map(|k| watch(&make(k))).collect();
        explanations(&alerts)
    };
    let memorizing = count(&|k| memorization(seed + k));
    let unexplained = count(&|k| {
        let s = planted(&unexplained(seed + k));
        points(&s.steps, &s.loss, None)
    });
    vec![
        Explained {
            series: "memorization drops at epoch starts".into(),
            drops: memorizing,
        },
        Explained {
            series: "drops of 2.5-4 sigma at no event".into(),
            drops: unexplained,
        },
    ]
}

/// How many drop alerts of each explanation the alerts hold, most first.
pub fn explanations(alerts: &[Alert]) -> Vec<(Cause, usize)> {
    let mut out: Vec<(Cause, usize)> = Vec::new();
    for a in alerts {
        if let AlertKind::Drop { explained_by, .. } = a.kind {
            match out.iter_mut().find(|(c, _)| *c == explained_by) {
                Some((_, n)) => *n += 1,
                None => out.push((explained_by, 1)),
            }
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.1));
    out
}

impl fmt::Display for WatchBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.throughput;
        writeln!(
            f,
            "throughput: Watcher::push on a {}-point planted-drop series, one thread: {:.3e} points/s ({:.1} ns/point, {} detector runs, {} alerts; target >= 1e6 points/s); on the clean series: {:.3e} points/s ({} detector runs)",
            t.points,
            t.points_per_second,
            t.seconds * 1e9 / t.points.max(1) as f64,
            t.detector_runs,
            t.alerts,
            t.clean_points_per_second,
            t.clean_detector_runs
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "detection delay ({} series per row, seeds {}..): from the planted event to the alert",
            self.series, self.seed
        )?;
        writeln!(
            f,
            "| event | planted | alerted | median delay | 90th percentile |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|")?;
        let num =
            |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.0} {unit}"));
        for r in &self.delays {
            writeln!(
                f,
                "| {} | {} | {} | {} | {} |",
                r.kind,
                r.planted,
                r.alerted,
                num(r.median, &r.unit),
                num(r.p90, &r.unit)
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "false alarms per 100,000 steps (target <= 1) and misses, on the same series"
        )?;
        writeln!(
            f,
            "| rule | clean, Gaussian | clean, Student-t3 | memorization drops at epoch starts | spikes missed | rises missed | unexplained drops missed |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|")?;
        for r in &self.alarms {
            writeln!(
                f,
                "| {} | {:.1} | {:.1} | {:.1} | {}/{} | {}/{} | {}/{} |",
                r.rule,
                r.clean_gaussian,
                r.clean_student_t3,
                r.memorization,
                r.spikes_missed,
                r.planted_spikes,
                r.rises_missed,
                r.planted_rises,
                r.drops_missed,
                r.planted_drops
            )?;
        }
        writeln!(f)?;
        for e in &self.explained {
            let counts: Vec<String> = e.drops.iter().map(|(c, n)| format!("{c} {n}")).collect();
            writeln!(f, "drops confirmed on {}: {}", e.series, counts.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::FailKind;

    #[test]
    fn baselines_fire_on_a_planted_spike_and_count_onsets() {
        let (pts, at, _) = spike_series(3);
        for rule in [Baseline::MeanRatio, Baseline::EwaRatio] {
            let fires = rule.fires(&pts);
            assert!(
                caught(&fires, at, SPIKE_CATCH_STEPS),
                "{}: {fires:?}",
                rule.name()
            );
        }
        let fires = Baseline::ZScore.fires(&pts);
        assert!(fires.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_tables_display_every_row() {
        let b = run(1, 1, 20_000);
        let text = b.to_string();
        assert!(text.contains("spike started") && text.contains("z-score > 3"));
        assert_eq!(b.alarms.len(), 4);
        assert!(b.throughput.points_per_second > 0.0);
    }

    #[test]
    fn memorization_drops_are_explained_by_the_epoch_boundary() {
        let alerts = watch(&memorization(1));
        let counts = explanations(&alerts);
        assert!(
            counts.iter().all(|(c, _)| *c != Cause::Unexplained),
            "{counts:?}"
        );
        assert!(
            !alerts
                .iter()
                .any(|a| a.fail_kind() == Some(FailKind::UnexplainedDrop))
        );
    }
}
