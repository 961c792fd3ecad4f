//! End-to-end examples of `detect`.

use super::*;
use crate::synth::{Difficulty, NoiseKind, SynthSeries, SynthSpec, planted, spike_then_recovery};

fn blind(s: &SynthSeries) -> Detection {
    detect(&s.steps, &s.loss, &[], &DetectConfig::default())
}

/// Drops that are drops of their own (not the fall after a spike).
fn real_drops(d: &Detection) -> Vec<u64> {
    d.drops
        .iter()
        .filter(|x| x.shape != DropShape::Recovery)
        .map(|x| x.step)
        .collect()
}

fn within(found: &[u64], step: u64, tol: u64) -> bool {
    found.iter().any(|&f| f.abs_diff(step) <= tol)
}

#[test]
fn easy_drops_are_found_where_they_were_planted() {
    for noise in [NoiseKind::Gaussian, NoiseKind::StudentT3] {
        let s = planted(&SynthSpec::new(noise, Difficulty::Easy, 21));
        let found = real_drops(&blind(&s));
        let hits = s
            .drops
            .iter()
            .filter(|t| within(&found, t.step, 20))
            .count();
        assert!(
            hits >= 7,
            "{noise:?}: {hits}/8 found; planted {:?}, found {found:?}",
            s.drop_steps()
        );
        let stray = found
            .iter()
            .filter(|&&f| !within(&s.drop_steps(), f, 20))
            .count();
        assert!(stray <= 1, "{noise:?}: stray drops in {found:?}");
    }
}

#[test]
fn hard_drops_are_found_often_and_nothing_is_reported_far_from_one() {
    let mut hits = 0;
    for seed in [3, 4] {
        let s = planted(&SynthSpec::new(
            NoiseKind::StudentT3,
            Difficulty::Hard,
            seed,
        ));
        let found = real_drops(&blind(&s));
        hits += s
            .drops
            .iter()
            .filter(|t| within(&found, t.step, 20))
            .count();
        for f in &found {
            assert!(
                within(&s.drop_steps(), *f, 100),
                "drop at {f} far from {:?}",
                s.drop_steps()
            );
        }
    }
    assert!(hits >= 8, "{hits}/16");
}

#[test]
fn clean_curves_have_no_drops() {
    for (noise, seed) in [(NoiseKind::Gaussian, 1), (NoiseKind::StudentT3, 2)] {
        let d = blind(&planted(&SynthSpec::new(noise, Difficulty::Clean, seed)));
        assert!(real_drops(&d).is_empty(), "{noise:?}: {:?}", d.drops);
        assert!(d.spikes.is_empty(), "{noise:?}: {:?}", d.spikes);
        // The noise is 0.1 per step in log-loss; a robust estimate lands close.
        assert!((d.noise_sigma - 0.1).abs() < 0.03, "{}", d.noise_sigma);
    }
}

#[test]
fn a_spike_is_reported_with_its_recovery_not_as_a_drop() {
    let s = spike_then_recovery(3000, 1500, 1.0, 30.0, 1);
    let d = blind(&s);
    assert_eq!(d.spikes.len(), 1, "{:?}", d.spikes);
    let spike = &d.spikes[0];
    assert!(spike.step.abs_diff(1500) <= 5, "{spike:?}");
    assert!((spike.height_log - 1.0).abs() < 0.25, "{spike:?}");
    // Half-height width of exp(-t/30) is 30 ln 2 = 21 steps.
    assert!((10..=45).contains(&spike.width), "{spike:?}");
    let recovery: Vec<&LossDrop> = d
        .drops
        .iter()
        .filter(|x| x.shape == DropShape::Recovery)
        .collect();
    assert!(!recovery.is_empty(), "{:?}", d.drops);
    assert!(
        recovery.iter().all(|r| r.step > 1500 && r.step < 1600),
        "{recovery:?}"
    );
    assert!(real_drops(&d).is_empty(), "{:?}", d.drops);
}

/// A clean curve with one 0.3 log-loss drop (3 noise sigmas) at step 3000, which either
/// stays down or comes 60% back with time constant 150 steps.
fn one_drop(recovers: bool) -> SynthSeries {
    let mut s = planted(&SynthSpec {
        n: 6000,
        ..SynthSpec::new(NoiseKind::Gaussian, Difficulty::Clean, 8)
    });
    for (t, v) in s.loss.iter_mut().enumerate().skip(3000) {
        let back = if recovers {
            0.6 * (1.0 - (-((t - 3000) as f64) / 150.0).exp())
        } else {
            0.0
        };
        *v *= (-0.3 * (1.0 - back)).exp();
    }
    s
}

#[test]
fn a_drop_that_comes_back_is_a_sawtooth_and_one_that_stays_is_a_step() {
    for (recovers, shape) in [(false, DropShape::Step), (true, DropShape::Sawtooth)] {
        let d = blind(&one_drop(recovers));
        let drops: Vec<&LossDrop> = d
            .drops
            .iter()
            .filter(|x| x.shape != DropShape::Recovery)
            .collect();
        assert_eq!(drops.len(), 1, "{:?}", d.drops);
        let x = drops[0];
        assert!(x.step.abs_diff(3000) <= 5, "{x:?}");
        assert_eq!(x.shape, shape, "{x:?}");
        assert!((x.log - 0.3).abs() < 0.08, "{x:?}");
        assert!(
            x.z < -5.0 && x.abs > 0.0 && x.rel > 0.0 && x.before > x.after,
            "{x:?}"
        );
        if recovers {
            assert!((0.3..=0.9).contains(&x.recovered_fraction), "{x:?}");
        } else {
            assert!(x.recovered_fraction < 0.3, "{x:?}");
        }
        assert!(
            d.spikes.is_empty(),
            "a recovery is not a spike: {:?}",
            d.spikes
        );
    }
}

#[test]
fn messy_logs_are_cleaned_reported_and_still_analysed() {
    let s = one_drop(false);
    let mut steps = s.steps.clone();
    let mut loss = s.loss.clone();
    loss[100] = f64::NAN;
    loss[200] = f64::INFINITY;
    loss[300] = f64::NEG_INFINITY;
    // A logging gap, a re-logged stretch, and a block written out of order.
    steps.drain(4000..4200);
    loss.drain(4000..4200);
    steps.extend_from_slice(&[10, 11, 12]);
    loss.extend_from_slice(&[loss[10], loss[11], loss[12]]);
    steps[5000..5010].reverse();
    loss[5000..5010].reverse();

    let d = detect(&steps, &loss, &[], &DetectConfig::default());
    let c = &d.cleaning;
    assert_eq!((c.n_nan, c.n_inf, c.n_duplicates), (1, 2, 3), "{c:?}");
    assert!(c.unsorted && c.n_out_of_order >= 2, "{c:?}");
    assert_eq!(
        (c.n_gaps, c.largest_gap, c.typical_stride),
        (1, 201, 1),
        "{c:?}"
    );
    assert_eq!(c.n_kept, 6000 - 200 - 3);
    let found = real_drops(&d);
    assert!(
        found.len() == 1 && found[0].abs_diff(3000) <= 5,
        "{:?}",
        d.drops
    );
}

#[test]
fn tiny_and_degenerate_inputs_give_empty_answers_not_panics() {
    let cfg = DetectConfig::default();
    let nan = f64::NAN;
    let cases: Vec<(Vec<u64>, Vec<f64>)> = vec![
        (vec![], vec![]),
        (vec![0], vec![1.0]),
        (vec![0, 1], vec![1.0, 0.5]),
        (vec![0, 1, 2], vec![nan, nan, nan]),
        ((0..500).collect(), vec![0.7; 500]),
        ((0..500).collect(), vec![0.0; 500]),
        (
            (0..500).collect(),
            (0..500)
                .map(|i| if i % 2 == 0 { -1.0 } else { 1.0 })
                .collect(),
        ),
        (vec![5, 5, 5, 5], vec![1.0, 2.0, 3.0, 4.0]),
    ];
    for (steps, loss) in cases {
        let d = detect(&steps, &loss, &[0, 2, 250], &cfg);
        assert!(real_drops(&d).is_empty(), "{steps:?}: {:?}", d.drops);
        assert!(d.noise_sigma.is_finite() && d.noise_sigma >= 0.0);
        assert!(
            d.trend
                .iter()
                .all(|t| t.value.is_finite() && t.value > 0.0 && t.sigma.is_finite())
        );
        assert!(
            d.event_tests
                .iter()
                .all(|t| t.p_value.is_finite() && t.z.is_finite())
        );
        // Every number survives a JSON round trip (no NaN or infinity leaks out).
        let back: Detection = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(
            (back.drops.len(), back.trend.len(), &back.cleaning),
            (d.drops.len(), d.trend.len(), &d.cleaning)
        );
    }
}

#[test]
fn zero_losses_are_dropped_and_counted() {
    let steps: Vec<u64> = (0..400).collect();
    let loss: Vec<f64> = (0..400).map(|i| if i == 50 { 0.0 } else { 1.0 }).collect();
    let d = detect(&steps, &loss, &[], &DetectConfig::default());
    assert_eq!(d.cleaning.n_nonpositive, 1);
    assert!(real_drops(&d).is_empty(), "{:?}", d.drops);
}

#[test]
fn known_events_are_tested_one_by_one() {
    let s = one_drop(false);
    // Steps outside the series are skipped; the one at the drop is significant.
    let d = detect(
        &s.steps,
        &s.loss,
        &[1500, 3000, 4500, 99_999],
        &DetectConfig::default(),
    );
    assert_eq!(d.event_tests.len(), 3);
    let at_drop = &d.event_tests[1];
    assert_eq!(
        (at_drop.step, at_drop.n_left, at_drop.n_right),
        (3000, 1500, 1500)
    );
    assert!(
        at_drop.significant_drop && (at_drop.jump_log + 0.3).abs() < 0.05,
        "{at_drop:?}"
    );
    assert!(!d.event_tests[0].significant_drop && !d.event_tests[2].significant_drop);
}

#[test]
fn the_trend_is_downsampled_and_steps_at_the_drop() {
    let s = one_drop(false);
    let d = blind(&s);
    assert!(d.trend.len() <= 2000 && d.trend.len() > 1000);
    assert!(d.trend.windows(2).all(|w| w[0].step < w[1].step));
    let at = |step: u64| {
        d.trend
            .iter()
            .min_by_key(|t| t.step.abs_diff(step))
            .map(|t| t.value)
            .unwrap()
    };
    // Either side of the drop the trend differs by about the drop, not a smear of it.
    let ratio = at(3010) / at(2990);
    assert!((ratio - (-0.3f64).exp()).abs() < 0.05, "{ratio}");
    assert!(
        d.trend.iter().all(|t| (t.sigma - 0.1).abs() < 0.04),
        "local sigma off"
    );
}

#[test]
fn prepared_series_answer_lookups() {
    let p = prepare(&[10, 20, 30, 40], &[1.0, 1.0, 1.0, 1.0]);
    assert_eq!(p.len(), 4);
    assert_eq!(p.steps(), &[10, 20, 30, 40]);
    assert_eq!(p.index_of(0), Some(0));
    assert_eq!(p.index_of(25), Some(2));
    assert_eq!(p.index_of(41), None);
    assert!(!p.is_empty() && p.cleaning().n_kept == 4);
    assert!((p.log_loss(1).unwrap() - 0.0).abs() < 1e-12);
    assert_eq!(p.log_loss(4), None);
    assert!((p.mean_log_loss(0, 4).unwrap()).abs() < 1e-12);
}

#[test]
fn config_round_trips_and_fills_missing_fields_with_defaults() {
    let cfg: DetectConfig = serde_json::from_str(r#"{"z_threshold": 5.0}"#).unwrap();
    assert_eq!(cfg.z_threshold, 5.0);
    assert_eq!(cfg.max_window, DetectConfig::default().max_window);
    let shape: DropShape = serde_json::from_str("\"sawtooth\"").unwrap();
    assert_eq!(shape, DropShape::Sawtooth);
}

#[test]
fn steps_far_from_zero_and_logged_every_tenth_step_work_the_same() {
    let s = one_drop(false);
    let far: Vec<u64> = s.steps.iter().map(|t| 1_000_000_000_000 + 10 * t).collect();
    let d = detect(
        &far,
        &s.loss,
        &[1_000_000_030_000],
        &DetectConfig::default(),
    );
    let found = real_drops(&d);
    assert!(
        found.len() == 1 && found[0].abs_diff(1_000_000_030_000) <= 50,
        "{found:?}"
    );
    assert!(d.event_tests[0].significant_drop, "{:?}", d.event_tests);
    assert_eq!(d.cleaning.typical_stride, 10);
    // With a gap the fits use the steps themselves, far from zero.
    let (mut gappy, mut loss) = (far.clone(), s.loss.clone());
    gappy.drain(4000..4100);
    loss.drain(4000..4100);
    let d = detect(&gappy, &loss, &[], &DetectConfig::default());
    let found = real_drops(&d);
    assert!(
        found.len() == 1 && found[0].abs_diff(1_000_000_030_000) <= 50,
        "{found:?}"
    );
    assert_eq!(d.cleaning.n_gaps, 1);
}
