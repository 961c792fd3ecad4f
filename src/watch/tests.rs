//! The watcher, one alert kind at a time, each on a small constructed series and each
//! with its negative case.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::*;
use crate::attribute::Cause;
use crate::events::EventKind;

/// Noise sigma of the constructed series, in log-loss.
const SIGMA: f64 = 0.05;

/// One point of a constructed run.
#[derive(Clone, Copy)]
struct Pt {
    step: u64,
    loss: f64,
    lr: Option<f64>,
    epoch: Option<u64>,
}

/// `n` points of a slow decay with Gaussian noise on log-loss, plus `shift(step)`.
fn run(n: u64, seed: u64, shift: impl Fn(u64) -> f64) -> Vec<Pt> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|step| {
            let noise: f64 = StandardNormal.sample(&mut rng);
            let log = 0.5 - step as f64 / 20_000.0 + shift(step) + SIGMA * noise;
            Pt {
                step,
                loss: log.exp(),
                lr: None,
                epoch: None,
            }
        })
        .collect()
}

fn watch(points: &[Pt]) -> Vec<Alert> {
    let mut w = Watcher::default();
    points
        .iter()
        .flat_map(|p| w.push(p.step, p.loss, p.lr, p.epoch))
        .collect()
}

fn drops(alerts: &[Alert]) -> Vec<(u64, Cause, Option<EventKind>)> {
    alerts
        .iter()
        .filter_map(|a| match a.kind {
            AlertKind::Drop {
                explained_by,
                event,
                ..
            } => Some((a.step, explained_by, event)),
            _ => None,
        })
        .collect()
}

fn kinds(alerts: &[Alert]) -> Vec<&'static str> {
    alerts.iter().map(Alert::name).collect()
}

/// A drop of `size` log-loss at `at`.
fn step_down(at: u64, size: f64) -> impl Fn(u64) -> f64 {
    move |s| if s >= at { -size } else { 0.0 }
}

#[test]
fn a_nan_loss_is_a_divergence_at_once() {
    let mut pts = run(1000, 1, |_| 0.0);
    pts[700].loss = f64::NAN;
    let alerts = watch(&pts);
    assert_eq!(kinds(&alerts), ["divergence"], "{alerts:?}");
    assert_eq!((alerts[0].step, alerts[0].at), (700, 700));
    assert_eq!(alerts[0].fail_kind(), Some(FailKind::Divergence));
}

#[test]
fn a_clean_noisy_decay_raises_no_alert_at_all() {
    for seed in 1..=5 {
        let alerts = watch(&run(20_000, seed, |_| 0.0));
        assert!(alerts.is_empty(), "seed {seed}: {alerts:?}");
    }
}

#[test]
fn a_loss_that_doubles_and_stays_up_is_a_divergence() {
    let alerts = watch(&run(3000, 2, |s| if s >= 2000 { 1.0 } else { 0.0 }));
    let div: Vec<&Alert> = alerts.iter().filter(|a| a.name() == "divergence").collect();
    assert_eq!(div.len(), 1, "{alerts:?}");
    assert!(matches!(
        div[0].kind,
        AlertKind::Divergence {
            reason: DivergenceReason::SustainedRise { .. }
        }
    ));
    // The window mean crosses ln 2 about 70 points in, then holds for 200.
    assert!((2000..2200).contains(&div[0].step), "{div:?}");
}

#[test]
fn a_spike_that_recovers_is_no_divergence() {
    // Four times the level for 60 points, then back.
    let alerts = watch(&run(3000, 3, |s| {
        if (2000..2060).contains(&s) { 1.4 } else { 0.0 }
    }));
    assert!(!kinds(&alerts).contains(&"divergence"), "{alerts:?}");
}

#[test]
fn a_several_fold_rise_for_tens_of_steps_is_a_spike_episode_that_recovers() {
    let alerts = watch(&run(3000, 4, |s| {
        if (2000..2040).contains(&s) { 1.2 } else { 0.0 }
    }));
    let started: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.name() == "spike_started")
        .collect();
    assert_eq!(started.len(), 1, "{alerts:?}");
    assert_eq!(started[0].step, 2000);
    assert_eq!(
        started[0].at, 2002,
        "three points in a row: attribution's spike_min_points"
    );
    assert_eq!(started[0].fail_kind(), Some(FailKind::Spike));
    let recovered = alerts.iter().find(|a| a.name() == "spike_recovered");
    let r = recovered.expect("the spike recovers");
    assert_eq!(r.step, 2040);
    assert!(matches!(
        r.kind,
        AlertKind::SpikeRecovered { started: 2000, .. }
    ));
}

#[test]
fn a_single_point_outlier_is_no_spike_episode() {
    let mut pts = run(3000, 5, |_| 0.0);
    pts[2000].loss *= 20.0;
    pts[2500].loss *= 20.0;
    pts[2501].loss *= 20.0;
    let alerts = watch(&pts);
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn a_drop_at_no_event_is_an_unexplained_drop() {
    let alerts = watch(&run(4000, 6, step_down(2500, 0.15)));
    let d = drops(&alerts);
    assert_eq!(d.len(), 1, "{alerts:?}");
    assert!(d[0].0.abs_diff(2500) <= 10, "{d:?}");
    assert_eq!(d[0].1, Cause::Unexplained);
    let a = alerts.iter().find(|a| a.name() == "drop").unwrap();
    assert_eq!(a.fail_kind(), Some(FailKind::UnexplainedDrop));
    assert!(a.at > a.step && a.at - a.step < 300, "{a:?}");
}

#[test]
fn a_drop_at_an_epoch_start_is_explained_by_the_epoch_boundary() {
    let with_epochs = |epoch_len: u64| -> Vec<Pt> {
        let mut pts = run(4000, 7, step_down(2500, 0.15));
        for p in &mut pts {
            p.epoch = Some(p.step / epoch_len);
        }
        pts
    };
    let d = drops(&watch(&with_epochs(500)));
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (d[0].1, d[0].2),
        (Cause::EpochBoundary, Some(EventKind::EpochStart))
    );
    assert_eq!(watch(&with_epochs(500))[0].fail_kind(), None);
    // The same drop with epochs of 700 steps lies 300 steps from any epoch start.
    let d = drops(&watch(&with_epochs(700)));
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].1, Cause::Unexplained);
}

#[test]
fn a_drop_soon_after_an_lr_cut_is_the_cuts_own() {
    let with_cut = |cut: u64| -> Vec<Pt> {
        let mut pts = run(4000, 8, step_down(2530, 0.15));
        for p in &mut pts {
            p.lr = Some(if p.step >= cut { 0.01 } else { 0.1 });
        }
        pts
    };
    let d = drops(&watch(&with_cut(2500)));
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (d[0].1, d[0].2),
        (Cause::LrChange, Some(EventKind::LrDecrease))
    );
    // A cut after the drop explains nothing.
    let d = drops(&watch(&with_cut(3000)));
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].1, Cause::Unexplained);
}

#[test]
fn a_drop_inside_a_warm_restart_cycle_is_the_restarts() {
    let mut pts = run(4000, 9, step_down(2600, 0.15));
    for p in &mut pts {
        let phase = (p.step % 1000) as f64 / 1000.0;
        p.lr = Some(1e-3 + 0.1 * 0.5 * (1.0 + (std::f64::consts::PI * phase).cos()));
    }
    let d = drops(&watch(&pts));
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].1, Cause::WarmRestart);
}

#[test]
fn the_fall_back_after_a_spike_is_explained_by_the_spike() {
    // Four times the level for 150 points: the fall back is a drop, and the spike's.
    let alerts = watch(&run(4000, 10, |s| {
        if (2000..2150).contains(&s) { 1.4 } else { 0.0 }
    }));
    let d = drops(&alerts);
    assert!(!d.is_empty(), "{alerts:?}");
    assert!(d.iter().all(|d| d.1 == Cause::LossSpike), "{d:?}");
    assert!(
        alerts
            .iter()
            .all(|a| a.name() == "spike_started" || a.fail_kind().is_none())
    );
}

/// Validation losses, one per epoch of 100 steps.
fn val_alerts(losses: &[f64]) -> Vec<Alert> {
    let mut w = Watcher::default();
    let mut out = Vec::new();
    for (e, &v) in losses.iter().enumerate() {
        out.extend(w.push_val(e as u64, (e as u64 + 1) * 100, v));
    }
    out
}

#[test]
fn validation_loss_turning_up_is_overfitting_by_investigates_rule() {
    let v = [1.0, 0.8, 0.7, 0.65, 0.66, 0.68, 0.71, 0.73, 0.76, 0.8];
    let alerts = val_alerts(&v);
    assert_eq!(kinds(&alerts), ["overfitting"], "{alerts:?}");
    let a = &alerts[0];
    // Epoch 4 follows the best (3); the rise is called once 5 points follow the best.
    assert!(matches!(
        a.kind,
        AlertKind::Overfitting {
            epoch: 4,
            best_epoch: 3,
            ..
        }
    ));
    assert_eq!((a.step, a.at), (500, 900));
    let rule = crate::attribute::overfit::assess(
        &v.iter()
            .enumerate()
            .map(|(e, &l)| crate::trace::ValRecord {
                epoch: e as u64,
                step: (e as u64 + 1) * 100,
                val_loss: l,
                val_accuracy: None,
                train_loss_eval: None,
            })
            .collect::<Vec<_>>(),
        &[],
        None,
    );
    assert_eq!(rule.started_epoch, Some(4));
}

/// A validation rise with the training points of each epoch (100 steps of `train(epoch)`,
/// with a small wobble) pushed before it.
fn val_alerts_with_training(losses: &[f64], train: impl Fn(u64) -> f64) -> Vec<Alert> {
    let mut w = Watcher::default();
    let mut out = Vec::new();
    for (e, &v) in losses.iter().enumerate() {
        let e = e as u64;
        for k in 0..100u64 {
            let wobble = if k % 2 == 0 { 0.01 } else { -0.01 };
            out.extend(w.push(e * 100 + k, train(e) + wobble, Some(0.1), Some(e)));
        }
        out.extend(w.push_val(e, (e + 1) * 100, v));
    }
    out.retain(|a| a.name() == "overfitting");
    out
}

#[test]
fn a_validation_rise_counts_as_overfitting_only_when_the_gap_to_training_loss_widens() {
    let v = [1.0, 0.8, 0.7, 0.65, 0.66, 0.68, 0.71, 0.73, 0.76, 0.8];
    // Training loss keeps falling: the gap widens, and the rise is overfitting.
    let widening = val_alerts_with_training(&v, |e| 0.9 - 0.06 * e as f64);
    assert_eq!(kinds(&widening), ["overfitting"], "{widening:?}");
    // Training loss rises with validation loss: the gap stays, no overfitting.
    let with_it = val_alerts_with_training(&v, |e| {
        v[e as usize] - 0.2 + if e % 2 == 0 { 0.004 } else { -0.004 }
    });
    assert!(with_it.is_empty(), "{with_it:?}");
    // An evaluated training loss given with the point is used in preference.
    let mut w = Watcher::default();
    let mut alerts = Vec::new();
    for (e, &l) in v.iter().enumerate() {
        alerts.extend(w.push_val_record(&crate::trace::ValRecord {
            epoch: e as u64,
            step: (e as u64 + 1) * 100,
            val_loss: l,
            val_accuracy: None,
            train_loss_eval: Some(l - 0.2 + if e % 2 == 0 { 0.004 } else { -0.004 }),
        }));
    }
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn a_still_falling_or_flat_validation_loss_is_no_overfitting() {
    let falling: Vec<f64> = (0..12).map(|e| 1.0 - 0.02 * e as f64).collect();
    assert!(val_alerts(&falling).is_empty());
    let flat = [
        1.0, 0.8, 0.7, 0.66, 0.655, 0.662, 0.648, 0.657, 0.651, 0.66, 0.653,
    ];
    assert!(val_alerts(&flat).is_empty());
}

#[test]
fn memory_stays_bounded_over_a_long_run() {
    let mut w = Watcher::default();
    for step in 0..300_000u64 {
        let loss = 2.0 + (step as f64 * 0.37).sin() * 0.1;
        w.push(step, loss, Some(0.1), Some(step / 1000));
        if step % 100 == 0 {
            w.push_val(step / 100, step, 1.0 + (step as f64).sin() * 0.01);
        }
    }
    assert_eq!(w.counts().0, 300_000);
    assert!(w.ring.len() <= w.cfg.ring_points() + 1);
    assert!(w.val.len() <= w.cfg.max_val_points);
    assert!(w.context.remembered() <= 2 * 512);
}

#[test]
fn steps_that_go_back_and_zero_losses_are_skipped() {
    let mut w = Watcher::default();
    assert!(w.push(10, 1.0, None, None).is_empty());
    assert!(w.push(10, 1.0, None, None).is_empty());
    assert!(w.push(5, 1.0, None, None).is_empty());
    assert!(w.push(11, 0.0, None, None).is_empty());
    assert_eq!(w.counts(), (1, 3));
}

/// What a burn training loop does (docs/watch.md): one `push` per optimizer step with the
/// epoch and LR it trained with, one `push_val` per evaluation, and a stop on divergence.
#[test]
fn a_training_loop_drives_the_watcher_and_stops_on_divergence() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut watcher = Watcher::default();
    let (steps_per_epoch, epochs) = (400u64, 20u64);
    let mut seen = Vec::new();
    let mut stopped_at = None;
    'train: for epoch in 0..epochs {
        let lr = if epoch < 10 { 0.1 } else { 0.01 };
        for batch in 0..steps_per_epoch {
            let step = epoch * steps_per_epoch + batch;
            // Memorization: each epoch starts lower; the run blows up in epoch 15.
            let noise: f64 = StandardNormal.sample(&mut rng);
            let log = 0.8 - 0.1 * epoch as f64 + SIGMA * noise;
            let loss = if step >= 15 * steps_per_epoch + 123 {
                f64::NAN
            } else {
                log.exp()
            };
            for alert in watcher.push(step, loss, Some(lr), Some(epoch)) {
                seen.push(alert.clone());
                if alert.fail_kind() == Some(FailKind::Divergence) {
                    stopped_at = Some(step);
                    break 'train;
                }
            }
        }
        watcher.push_val(
            epoch,
            (epoch + 1) * steps_per_epoch,
            1.0 - 0.01 * epoch as f64,
        );
    }
    assert_eq!(stopped_at, Some(15 * 400 + 123), "{seen:?}");
    // The epoch-start drops were each explained, never unexplained.
    let d = drops(&seen);
    assert!(d.len() >= 10, "{d:?}");
    for (step, cause, _) in &d {
        assert!(
            matches!(cause, Cause::EpochBoundary | Cause::LrChange),
            "{step}: {cause}"
        );
    }
}
