//! Overfitting, as the forum's expert answer defines it: validation loss rising
//! systematically while the model fits its training data no worse, so that the gap
//! between them widens. A gap between training and validation loss alone is not
//! overfitting, and neither is validation loss rising with training loss.

use serde::{Deserialize, Serialize};

use super::stats::{mann_kendall, mann_kendall_ar1, mean, theil_sen};
use crate::trace::{LogMode, StepRecord, ValRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverfitVerdict {
    /// Validation loss rises systematically after its best epoch.
    Overfitting,
    /// Validation loss is still falling.
    NotOverfitting,
    /// Validation loss has stopped falling: flat, or rising with training loss (the
    /// train/validation gap not widening).
    Plateau,
    /// Too few validation points to say.
    Unknown,
}

impl OverfitVerdict {
    pub fn label(self) -> &'static str {
        match self {
            OverfitVerdict::Overfitting => "overfitting",
            OverfitVerdict::NotOverfitting => "not overfitting",
            OverfitVerdict::Plateau => "plateau",
            OverfitVerdict::Unknown => "unknown",
        }
    }
}

/// Which question a verdict's trend test answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendTest {
    /// Does validation loss rise over the epochs after its best one? (decides `overfitting`)
    RiseAfterBest,
    /// Does validation loss still fall over the last part of training? (decides
    /// `not_overfitting` against `plateau`)
    RecentFall,
}

/// The one window of validation points a verdict was decided on, and its statistics:
/// what a report shows is exactly what was tested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendWindow {
    pub test: TrendTest,
    pub from_epoch: u64,
    pub to_epoch: u64,
    pub points: usize,
    /// Theil-Sen slope of validation loss per epoch over the window.
    pub slope_per_epoch: f64,
    /// Mann-Kendall two-sided p-value of the window's trend (the rise test's corrected for
    /// serial correlation: see `serial_correlation`).
    pub p_value: f64,
    /// The rise test only: the AR(1) coefficient of the window's noise that the p-value was
    /// corrected for (0: none found). Absent for the fall test, which is not corrected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_correlation: Option<f64>,
    /// The rise test only, when a per-epoch training loss was had for every point of the
    /// window: does the gap between validation and training loss widen over it? A rise
    /// is called overfitting only when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_trend: Option<GapTrend>,
}

/// Where a window's per-epoch training loss came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainLossSource {
    /// The training set evaluated in eval mode after each epoch (`train_loss_eval`).
    Evaluated,
    /// The training log's losses over each epoch: their mean (a per-step log) or the
    /// epoch's last value (a running-mean log, whose last value is the epoch's mean).
    EpochMean,
}

/// The trend of the gap, validation loss minus training loss, over a rise window's epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapTrend {
    pub source: TrainLossSource,
    /// Theil-Sen slope of the gap per epoch.
    pub slope_per_epoch: f64,
    /// One-sided Mann-Kendall p-value for a widening gap, its variance widened for the
    /// gap's serial correlation as the rise test's is.
    pub p_value: f64,
    /// The AR(1) coefficient of the gap's noise that the p-value was corrected for.
    pub serial_correlation: f64,
    /// p < 0.05 and a positive S: the gap widened.
    pub widened: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overfitting {
    pub verdict: OverfitVerdict,
    /// The first epoch after the best one, when overfitting.
    pub started_epoch: Option<u64>,
    /// The checkpoint to keep: the epoch of lowest validation loss.
    pub best_epoch: Option<u64>,
    pub best_val_loss: Option<f64>,
    pub final_val_loss: Option<f64>,
    /// The window and statistic the verdict rests on (None when there were too few points).
    pub window: Option<TrendWindow>,
    /// Final validation loss minus final training loss (evaluated in eval mode when logged).
    pub gap: Option<f64>,
    pub message: String,
}

/// Validation points after the best one needed before a rise can be called systematic:
/// with fewer, a steady rise cannot reach p < 0.05 in a two-sided Mann-Kendall test (5
/// rising points give p = 0.03, 4 give p = 0.09).
pub const MIN_EPOCHS_AFTER_BEST: usize = 5;
/// Fewest points in the "still falling?" window: a rank test on fewer cannot be significant.
const MIN_RECENT_POINTS: usize = 6;
const ALPHA: f64 = 0.05;

/// The window's statistics and its Mann-Kendall S (positive for a rise). The rise test's
/// p-value allows for serially correlated points ([`mann_kendall_ar1`]): successive epochs'
/// models share most of their weights, so a flat validation curve wanders slowly, and the
/// plain test, which assumes independent points, reads that wander as a rise (measured by
/// `dropscope bench overfit` on runs that cannot overfit; see docs/benchmarks.md).
fn window(pts: &[&ValRecord], test: TrendTest) -> (TrendWindow, f64) {
    let y: Vec<f64> = pts.iter().map(|v| v.val_loss).collect();
    let (s, p, serial_correlation) = match test {
        TrendTest::RiseAfterBest => {
            let (s, p, phi) = mann_kendall_ar1(&y);
            (s, p, Some(phi))
        }
        TrendTest::RecentFall => {
            let (s, p) = mann_kendall(&y);
            (s, p, None)
        }
    };
    let w = TrendWindow {
        test,
        from_epoch: pts.first().map_or(0, |v| v.epoch),
        to_epoch: pts.last().map_or(0, |v| v.epoch),
        points: pts.len(),
        slope_per_epoch: theil_sen(&y),
        p_value: p,
        serial_correlation,
        gap_trend: None,
    };
    (w, s)
}

/// Per-epoch training loss from a training log: `(epoch, loss)` in epoch order, from the
/// steps that carry an epoch and a finite loss. A per-step log gives each epoch's mean; a
/// running-mean log (`log_mode`), each epoch's last value, which is that epoch's mean.
pub fn epoch_train_losses(steps: &[StepRecord], log_mode: Option<LogMode>) -> Vec<(u64, f64)> {
    let mut by_epoch: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
    for s in steps {
        if let Some(e) = s.epoch
            && s.loss.is_finite()
        {
            by_epoch.entry(e).or_default().push(s.loss);
        }
    }
    by_epoch
        .into_iter()
        .map(|(e, v)| match log_mode {
            Some(LogMode::RunningMean) => (e, v[v.len() - 1]),
            _ => (e, mean(&v)),
        })
        .collect()
}

/// The gap's trend over a rise window, or None without a training loss for every point:
/// the window's evaluated training loss (`train_loss_eval`) when every point has one, else
/// the training log's per-epoch loss (`train`) when every epoch has one.
fn gap_trend(pts: &[&ValRecord], train: &[(u64, f64)]) -> Option<GapTrend> {
    let evaluated: Option<Vec<f64>> = pts
        .iter()
        .map(|v| v.train_loss_eval.filter(|t| t.is_finite()))
        .collect();
    let (source, t) = match evaluated {
        Some(t) => (TrainLossSource::Evaluated, t),
        None => {
            let t: Option<Vec<f64>> = pts
                .iter()
                .map(|v| train.iter().find(|&&(e, _)| e == v.epoch).map(|&(_, t)| t))
                .collect();
            (TrainLossSource::EpochMean, t?)
        }
    };
    let gap: Vec<f64> = pts.iter().zip(&t).map(|(v, t)| v.val_loss - t).collect();
    let (s, p, phi) = mann_kendall_ar1(&gap);
    let p = if s > 0.0 { p / 2.0 } else { 1.0 - p / 2.0 };
    Some(GapTrend {
        source,
        slope_per_epoch: theil_sen(&gap),
        p_value: p,
        serial_correlation: phi,
        widened: s > 0.0 && p < ALPHA,
    })
}

/// The verdict, from one window:
/// - `overfitting` when at least [`MIN_EPOCHS_AFTER_BEST`] validation points follow the best
///   one and they rise (Mann-Kendall over those points, the best left out, S > 0 and
///   p < 0.05, its variance widened for the points' serial correlation) to end above the
///   best, and, where a per-epoch training loss is had for each of those points, the gap
///   (validation minus training loss) widens over them (one-sided Mann-Kendall, p < 0.05,
///   corrected the same way);
/// - a rise whose gap does not widen (training loss moved with validation loss) is
///   `plateau`, on that window;
/// - otherwise `not_overfitting` when validation loss falls over the last half of training
///   (at least 6 points; same test, S < 0), else `plateau`.
///
/// The best point is left out of the rise test: it is the minimum by construction, and
/// would make any flat, noisy curve after it look like a rise.
///
/// `train` is the per-epoch training loss from the training log, `(epoch, loss)` (see
/// [`epoch_train_losses`]); a point's own `train_loss_eval` is preferred to it. Without
/// either for every point of the rise window, the rise alone decides.
pub fn assess(
    val: &[ValRecord],
    train: &[(u64, f64)],
    final_train_loss: Option<f64>,
) -> Overfitting {
    let pts: Vec<&ValRecord> = val.iter().filter(|v| v.val_loss.is_finite()).collect();
    let mut out = Overfitting {
        verdict: OverfitVerdict::Unknown,
        started_epoch: None,
        best_epoch: None,
        best_val_loss: None,
        final_val_loss: None,
        window: None,
        gap: None,
        message: String::new(),
    };
    if pts.len() < 3 {
        out.message = if val.is_empty() {
            "no validation data: overfitting cannot be judged (pass --val)".into()
        } else {
            "too few validation points to judge overfitting (need at least 3 epochs)".into()
        };
        return out;
    }
    let (bi, best) = pts
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.val_loss.total_cmp(&b.1.val_loss))
        .map(|(i, v)| (i, *v))
        .unwrap_or((0, pts[0]));
    let last = pts[pts.len() - 1];
    out.best_epoch = Some(best.epoch);
    out.best_val_loss = Some(best.val_loss);
    out.final_val_loss = Some(last.val_loss);
    let train_final = last.train_loss_eval.or(final_train_loss);
    out.gap = train_final.map(|t| last.val_loss - t);

    let after = &pts[bi + 1..];
    if after.len() >= MIN_EPOCHS_AFTER_BEST {
        let (mut w, s) = window(after, TrendTest::RiseAfterBest);
        if s > 0.0 && w.p_value < ALPHA && last.val_loss > best.val_loss {
            let rise = format!(
                "validation loss has risen over the {} epochs after its best (epochs {}-{}: {:+.4} per epoch, Mann-Kendall p = {})",
                w.points,
                w.from_epoch,
                w.to_epoch,
                w.slope_per_epoch,
                p_text(w.p_value),
            );
            w.gap_trend = gap_trend(after, train);
            let gap_text = w.gap_trend.as_ref().map(|g| {
                format!(
                    "the gap to training loss ({}) {} ({:+.4} per epoch, one-sided Mann-Kendall p = {})",
                    match g.source {
                        TrainLossSource::Evaluated => "evaluated after each epoch",
                        TrainLossSource::EpochMean => "each epoch's mean in the log",
                    },
                    if g.widened {
                        "widened over them"
                    } else {
                        "did not widen"
                    },
                    g.slope_per_epoch,
                    p_text(g.p_value),
                )
            });
            if w.gap_trend.as_ref().is_some_and(|g| !g.widened) {
                out.verdict = OverfitVerdict::Plateau;
                out.message = format!(
                    "not overfitting (plateau): {rise}, but {}: training loss moved with it, and that is no fitting of the training data at validation's expense; best {:.4} at epoch {}, now {:.4}",
                    gap_text.unwrap_or_default(),
                    best.val_loss,
                    best.epoch,
                    last.val_loss,
                );
                out.window = Some(w);
                return out;
            }
            out.verdict = OverfitVerdict::Overfitting;
            out.started_epoch = Some(after[0].epoch);
            out.message = format!(
                "overfitting: {rise}{}; best {:.4} at epoch {}, now {:.4}; keep the epoch-{} checkpoint",
                gap_text.map(|g| format!(", and {g}")).unwrap_or_default(),
                best.val_loss,
                best.epoch,
                last.val_loss,
                best.epoch
            );
            out.window = Some(w);
            return out;
        }
    }
    let n = (pts.len() / 2).max(MIN_RECENT_POINTS).min(pts.len());
    let (w, s) = window(&pts[pts.len() - n..], TrendTest::RecentFall);
    let gap_note = match out.gap {
        Some(g) if g > 0.0 => {
            format!(
                "; the train/validation gap ({g:.3}) alone is not overfitting: a gap is typical"
            )
        }
        _ => String::new(),
    };
    let falling = s < 0.0 && w.p_value < ALPHA;
    out.verdict = if falling {
        OverfitVerdict::NotOverfitting
    } else {
        OverfitVerdict::Plateau
    };
    out.message = format!(
        "{}: validation loss {} over epochs {}-{} ({:+.4} per epoch, Mann-Kendall p = {}){}{gap_note}",
        if falling {
            "not overfitting"
        } else {
            "not overfitting (plateau)"
        },
        if falling {
            "is still falling"
        } else {
            "neither falls nor rises systematically"
        },
        w.from_epoch,
        w.to_epoch,
        w.slope_per_epoch,
        p_text(w.p_value),
        if falling {
            "; keep training if you care"
        } else {
            ""
        },
    );
    out.window = Some(w);
    out
}

fn p_text(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(losses: &[f64]) -> Vec<ValRecord> {
        losses
            .iter()
            .enumerate()
            .map(|(e, &l)| ValRecord {
                epoch: e as u64,
                step: (e as u64 + 1) * 10,
                val_loss: l,
                val_accuracy: None,
                train_loss_eval: Some(l * 0.5),
            })
            .collect()
    }

    #[test]
    fn a_slowly_falling_validation_loss_with_a_gap_is_not_overfitting() {
        let v: Vec<f64> = (0..12).map(|e| 1.0 - 0.02 * e as f64).collect();
        let o = assess(&val(&v), &[], None);
        assert_eq!(o.verdict, OverfitVerdict::NotOverfitting, "{}", o.message);
        assert!(o.gap.unwrap() > 0.0);
        assert!(o.message.contains("gap"), "{}", o.message);
        assert_eq!(o.best_epoch, Some(11));
    }

    #[test]
    fn a_systematic_rise_after_the_best_epoch_is_overfitting() {
        let v = [1.0, 0.8, 0.7, 0.65, 0.66, 0.68, 0.71, 0.73, 0.76, 0.8];
        let o = assess(&val(&v), &[], None);
        assert_eq!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
        assert_eq!(o.best_epoch, Some(3));
        assert_eq!(o.started_epoch, Some(4));
        // The window shown is the one tested: the epochs after the best.
        let w = o.window.as_ref().unwrap();
        assert_eq!(w.test, TrendTest::RiseAfterBest);
        assert_eq!((w.from_epoch, w.to_epoch, w.points), (4, 9, 6));
        assert!(w.slope_per_epoch > 0.0 && w.p_value < 0.05);
        // Not the note that a gap alone is typical: the gap is tested, and widened.
        assert!(
            !o.message.contains("alone is not overfitting"),
            "{}",
            o.message
        );
        assert!(w.gap_trend.as_ref().is_some_and(|g| g.widened));
    }

    #[test]
    fn a_flat_noisy_curve_after_its_minimum_is_not_overfitting() {
        // Fresh data every epoch: validation loss only wobbles. The minimum is at epoch 6,
        // and the points after it are all above it by construction; that alone is no rise.
        let v = [
            1.0, 0.8, 0.7, 0.66, 0.655, 0.662, 0.648, 0.657, 0.651, 0.66, 0.653, 0.656,
        ];
        let o = assess(&val(&v), &[], None);
        assert_ne!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
        let w = o.window.as_ref().unwrap();
        assert_eq!(w.test, TrendTest::RecentFall);
        // The message quotes the window's own numbers.
        assert!(
            o.message
                .contains(&format!("epochs {}-{}", w.from_epoch, w.to_epoch)),
            "{}",
            o.message
        );
    }

    #[test]
    fn a_dip_in_a_plateau_and_its_way_back_is_not_overfitting() {
        // A run on fresh data every epoch (`bench overfit`, seed 100, rounded): the model
        // wanders to a lucky low at epoch 15 and drifts back to where it had been. The
        // points after the dip rise for the independent-points test (p = 0.048), but they
        // are serially correlated, and the corrected test does not call it.
        let v = [
            1.338, 1.031, 1.022, 1.013, 1.012, 0.996, 0.986, 1.009, 1.025, 0.996, 1.021, 0.996,
            1.012, 1.022, 0.955, 0.949, 0.964, 0.949, 0.987, 0.998, 1.016, 1.01, 1.008, 1.007,
            1.013,
        ];
        let after = &v[16..];
        assert!(mann_kendall(after).1 < ALPHA);
        let (_, p, phi) = mann_kendall_ar1(after);
        assert!(phi > 0.3 && p > ALPHA, "phi {phi}, p {p}");
        let o = assess(&val(&v), &[], None);
        assert_ne!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
        assert_eq!(o.best_epoch, Some(15));
    }

    #[test]
    fn the_rise_window_records_the_serial_correlation_it_allowed_for() {
        let v = [1.0, 0.8, 0.7, 0.65, 0.66, 0.68, 0.71, 0.73, 0.76, 0.8];
        let w = assess(&val(&v), &[], None).window.unwrap();
        assert!(
            w.serial_correlation
                .is_some_and(|r| (0.0..1.0).contains(&r))
        );
        let flat = [1.0, 0.9, 0.85, 0.84, 0.85, 0.84, 0.85, 0.84];
        let w = assess(&val(&flat), &[], None).window.unwrap();
        assert_eq!(w.test, TrendTest::RecentFall);
        assert_eq!(w.serial_correlation, None);
    }

    #[test]
    fn four_rising_epochs_after_the_best_are_too_few_to_call() {
        let v = [1.0, 0.8, 0.7, 0.6, 0.5, 0.4, 0.45, 0.5, 0.55, 0.6];
        let o = assess(&val(&v), &[], None);
        assert_ne!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
        let mut longer = v.to_vec();
        longer.push(0.65);
        let o = assess(&val(&longer), &[], None);
        assert_eq!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
    }

    #[test]
    fn one_bad_epoch_is_not_a_systematic_rise() {
        let v = [1.0, 0.8, 0.7, 0.65, 0.62, 0.7, 0.61, 0.6, 0.6, 0.59];
        let o = assess(&val(&v), &[], None);
        assert_ne!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
    }

    /// Validation points with an evaluated training loss of their own.
    fn val_train(losses: &[f64], train: &[f64]) -> Vec<ValRecord> {
        let mut v = val(losses);
        for (r, &t) in v.iter_mut().zip(train) {
            r.train_loss_eval = Some(t);
        }
        v
    }

    const RISE: [f64; 10] = [1.0, 0.8, 0.7, 0.65, 0.66, 0.68, 0.71, 0.73, 0.76, 0.8];

    #[test]
    fn a_validation_rise_with_training_loss_rising_with_it_is_not_overfitting() {
        // The gap stays at 0.2 give or take a wobble: the whole model got worse (a drift,
        // an LR too high), it did not fit its training data better.
        let train: Vec<f64> = RISE
            .iter()
            .enumerate()
            .map(|(e, v)| v - 0.2 + if e % 2 == 0 { 0.004 } else { -0.004 })
            .collect();
        let o = assess(&val_train(&RISE, &train), &[], None);
        assert_eq!(o.verdict, OverfitVerdict::Plateau, "{}", o.message);
        assert_eq!(o.started_epoch, None);
        assert_eq!(o.best_epoch, Some(3));
        // The window shown is the rise that was found, with the gap test that overruled it.
        let w = o.window.as_ref().unwrap();
        assert_eq!(w.test, TrendTest::RiseAfterBest);
        assert!(w.slope_per_epoch > 0.0 && w.p_value < ALPHA);
        let g = w.gap_trend.as_ref().unwrap();
        assert_eq!(g.source, TrainLossSource::Evaluated);
        assert!(!g.widened && g.p_value >= ALPHA, "{g:?}");
        assert!(o.message.contains("did not widen"), "{}", o.message);
        assert!(o.message.contains(&p_text(g.p_value)), "{}", o.message);
    }

    #[test]
    fn a_validation_rise_while_training_loss_keeps_falling_is_overfitting() {
        let train: Vec<f64> = (0..RISE.len()).map(|e| 0.9 - 0.06 * e as f64).collect();
        let o = assess(&val_train(&RISE, &train), &[], None);
        assert_eq!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
        assert_eq!(o.started_epoch, Some(4));
        let w = o.window.as_ref().unwrap();
        let g = w.gap_trend.as_ref().unwrap();
        assert!(
            g.widened && g.p_value < ALPHA && g.slope_per_epoch > 0.0,
            "{g:?}"
        );
        assert!(o.message.contains("gap"), "{}", o.message);
        assert!(o.message.contains("widened"), "{}", o.message);
        assert!(o.message.contains(&p_text(g.p_value)), "{}", o.message);
    }

    #[test]
    fn without_an_evaluated_training_loss_the_training_logs_epoch_means_are_used() {
        // A per-step log, 4 steps an epoch, no `train_loss_eval`: each epoch's mean.
        let steps = |train: &[f64]| -> Vec<StepRecord> {
            train
                .iter()
                .enumerate()
                .flat_map(|(e, &t)| [-0.03, 0.01, -0.01, 0.03].map(|d| (e as u64, t + d)))
                .enumerate()
                .map(|(i, (e, loss))| StepRecord {
                    step: i as u64,
                    epoch: Some(e),
                    batch: Some(i as u64 % 4),
                    loss,
                    lr: None,
                    batch_size: None,
                })
                .collect()
        };
        let mut v = val(&RISE);
        for r in &mut v {
            r.train_loss_eval = None;
        }
        let falling: Vec<f64> = (0..RISE.len()).map(|e| 0.9 - 0.06 * e as f64).collect();
        let means = epoch_train_losses(&steps(&falling), None);
        assert_eq!(means.len(), RISE.len());
        assert!((means[2].1 - falling[2]).abs() < 1e-12);
        let o = assess(&v, &means, None);
        assert_eq!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
        let g = o.window.as_ref().unwrap().gap_trend.clone().unwrap();
        assert_eq!(g.source, TrainLossSource::EpochMean);
        assert!(g.widened);
        let with_it: Vec<f64> = RISE
            .iter()
            .enumerate()
            .map(|(e, v)| v - 0.2 + if e % 2 == 0 { 0.004 } else { -0.004 })
            .collect();
        let o = assess(&v, &epoch_train_losses(&steps(&with_it), None), None);
        assert_eq!(o.verdict, OverfitVerdict::Plateau, "{}", o.message);
        // An epoch missing from the log: the gap cannot be had, and the rise alone decides.
        let mut gappy = means.clone();
        gappy.retain(|&(e, _)| e != 6);
        let o = assess(&v, &gappy, None);
        assert_eq!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
        assert!(o.window.unwrap().gap_trend.is_none());
        assert!(!o.message.contains("gap"), "{}", o.message);
    }

    #[test]
    fn a_running_mean_log_gives_each_epochs_last_value() {
        let steps: Vec<StepRecord> = [(0, 1.0), (0, 0.8), (1, 0.7), (1, f64::NAN), (1, 0.6)]
            .iter()
            .enumerate()
            .map(|(i, &(e, loss))| StepRecord {
                step: i as u64,
                epoch: Some(e),
                batch: None,
                loss,
                lr: None,
                batch_size: None,
            })
            .collect();
        assert_eq!(
            epoch_train_losses(&steps, Some(LogMode::RunningMean)),
            [(0, 0.8), (1, 0.6)]
        );
        let per_step = epoch_train_losses(&steps, Some(LogMode::PerStep));
        assert!((per_step[0].1 - 0.9).abs() < 1e-12 && (per_step[1].1 - 0.65).abs() < 1e-12);
    }
}
