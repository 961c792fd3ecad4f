//! What each rule adds, on small constructed traces.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::attribute::{AnalyzeOptions, Cause, Evidence, analyze_trace};
use crate::trace::{StepRecord, Trace};

const EPOCHS: u64 = 11;
const SPE: u64 = 300;

/// Eleven epochs of 300 steps with noise 0.05 on log-loss, a slow decline, and the last
/// step of epoch e moved by `last_offsets[e]` log-loss; batch sizes 32 with a last batch of
/// `last_batch` (or none recorded).
fn trace(last_offsets: &[f64], last_batch: Option<u64>, seed: u64) -> Trace {
    with_aftermath(last_offsets, last_batch, 0.0, seed)
}

/// As [`trace`], and the bad last-batch update (batch norm statistics of two examples)
/// lifts the next epoch's first steps by `aftermath` times the offset, fading over 10 steps.
fn with_aftermath(
    last_offsets: &[f64],
    last_batch: Option<u64>,
    aftermath: f64,
    seed: u64,
) -> Trace {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = Trace::new("lb");
    for step in 0..EPOCHS * SPE {
        let (epoch, batch) = (step / SPE, step % SPE);
        let last = batch == SPE - 1;
        let noise: f64 = StandardNormal.sample(&mut rng);
        let off = |e: u64| last_offsets[e as usize % last_offsets.len()];
        let offset = if last {
            off(epoch)
        } else if epoch > 0 {
            aftermath * off(epoch - 1) * (-(batch as f64) / 10.0).exp()
        } else {
            0.0
        };
        let log = 0.5 - 0.3 * step as f64 / (EPOCHS * SPE) as f64 + 0.05 * noise + offset;
        t.steps.push(StepRecord {
            step,
            epoch: Some(epoch),
            batch: Some(batch),
            loss: log.exp(),
            lr: Some(0.1),
            batch_size: last_batch.map(|b| if last { b } else { 32 }),
        });
    }
    t
}

/// As the real PyTorch run: far off in 8 of 11 epochs, below in 3, so the sign test
/// has no power (p = 0.23) but the scatter is ten noise sigmas.
const BOTH_WAYS: [f64; 11] = [0.6, 0.5, -0.4, 0.7, 0.5, -0.5, 0.45, 0.6, -0.35, 0.55, 0.5];

#[test]
fn a_short_last_batch_that_scatters_both_ways_is_named_by_its_spread() {
    let a = analyze_trace(&trace(&BOTH_WAYS, Some(2), 1), &AnalyzeOptions::default());
    let lb = a.last_batch.as_ref().unwrap();
    assert!(lb.p_value > 0.1, "the sign test alone has no power: {lb:?}");
    let f = a
        .finding(Cause::LastBatch)
        .expect("named by the dispersion test");
    assert!(
        f.evidence
            .iter()
            .any(|e| matches!(e, Evidence::LastStepSpread { ratio, .. } if *ratio > 3.0)),
        "{:?}",
        f.evidence
    );
    assert!(
        f.evidence.iter().any(|e| matches!(
            e,
            Evidence::LastBatchSize {
                last: 2,
                typical: 32
            }
        )),
        "{:?}",
        f.evidence
    );
    assert!(!a.names(Cause::EpochBoundary), "{:?}", a.causes);
}

#[test]
fn a_drop_right_after_a_named_last_batch_is_its_recovery_not_an_epoch_start_drop() {
    let t = with_aftermath(&[0.6], Some(2), 0.5, 2);
    let a = analyze_trace(&t, &AnalyzeOptions::default());
    assert!(a.names(Cause::LastBatch), "{:?}", a.causes);
    let at_starts: Vec<_> = a
        .drops
        .iter()
        .filter(|d| d.step % SPE <= SPE / 20)
        .collect();
    assert!(!at_starts.is_empty(), "{:?}", a.drops);
    for d in at_starts {
        assert_eq!(d.explained_by, Cause::LastBatch, "{d:?}");
    }
    assert!(!a.names(Cause::EpochBoundary), "{:?}", a.causes);
}

#[test]
fn a_last_batch_as_large_as_the_others_is_never_the_cause() {
    let a = analyze_trace(&trace(&BOTH_WAYS, Some(32), 3), &AnalyzeOptions::default());
    assert!(!a.names(Cause::LastBatch), "{:?}", a.causes);
}

#[test]
fn without_batch_sizes_only_a_wide_scatter_names_the_last_batch() {
    let wide = analyze_trace(&trace(&BOTH_WAYS, None, 4), &AnalyzeOptions::default());
    assert!(wide.names(Cause::LastBatch), "{:?}", wide.causes);
    // Ordinary noise at the last step, many seeds: never named without a batch size.
    for seed in 10..20 {
        let a = analyze_trace(&trace(&[0.0], None, seed), &AnalyzeOptions::default());
        assert!(
            !a.names(Cause::LastBatch),
            "seed {seed}: {:?}",
            a.last_batch
        );
    }
}

/// Six epochs of 800 steps whose batches are grouped by length: the loss saw-tooths with a
/// period of 40 steps and height 0.15, starting each epoch at the same phase (`long_first`:
/// long sequences, high loss, first), with noise 0.04; each epoch start drops the loss by
/// `drop` log-loss (memorization).
fn length_grouped(drop: f64, long_first: bool, seed: u64) -> Trace {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = Trace::new("grouped");
    let spe = 800;
    for step in 0..6 * spe {
        let (epoch, batch) = (step / spe, step % spe);
        let noise: f64 = StandardNormal.sample(&mut rng);
        let saw = 0.15 * (0.5 - (batch % 40) as f64 / 40.0) * if long_first { 1.0 } else { -1.0 };
        let log =
            0.8 - 0.2 * step as f64 / (6 * spe) as f64 - drop * epoch as f64 + saw + 0.04 * noise;
        t.steps.push(StepRecord {
            step,
            epoch: Some(epoch),
            batch: Some(batch),
            loss: log.exp(),
            lr: Some(1e-4),
            batch_size: Some(8),
        });
    }
    t
}

#[test]
fn with_length_grouped_batches_both_the_pattern_and_the_epoch_start_drops_are_named() {
    // A line through the points either side of an epoch start would measure the
    // saw-tooth's phase there (+0.03) with the 0.04 drop and name nothing.
    let a = analyze_trace(&length_grouped(0.04, true, 5), &AnalyzeOptions::default());
    assert_eq!(a.within_epoch_period, Some(40));
    assert!(a.names(Cause::DataOrder), "{:?}", a.causes);
    let f = a
        .finding(Cause::EpochBoundary)
        .expect("the staircase is named");
    assert!(
        f.evidence
            .iter()
            .any(|e| matches!(e, Evidence::WholePeriods { period_steps: 40 })),
        "{:?}",
        f.evidence
    );
}

#[test]
fn a_cycle_in_phase_with_the_epoch_is_not_an_epoch_start_drop() {
    // Short sequences first: each epoch starts low, a drop at every start to a line
    // through the points.
    for seed in 6..12 {
        let a = analyze_trace(
            &length_grouped(0.0, false, seed),
            &AnalyzeOptions::default(),
        );
        assert!(
            !a.names(Cause::EpochBoundary),
            "seed {seed}: {:?}",
            a.causes
        );
    }
}

/// A quiet log written every 5 steps (noise 0.002 per point) that falls fast and steadily
/// during an LR warm-up, 1% a point, and flattens at once at step `kink` (as hf_nsllm does
/// at step 55), with a drop of `drop` log-loss planted at step `drop_at`.
fn warmup(kink: u64, drop: f64, drop_at: u64, seed: u64) -> Trace {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = Trace::new("warmup");
    for step in (5..2000u64).step_by(5) {
        let noise: f64 = StandardNormal.sample(&mut rng);
        let fall = if step < kink {
            0.002 * step as f64
        } else {
            0.002 * kink as f64 + 0.02 * (step - kink) as f64 / 1945.0
        };
        let planted = if step >= drop_at { drop } else { 0.0 };
        t.steps.push(StepRecord {
            step,
            epoch: None,
            batch: None,
            loss: (0.85 - fall - planted + 0.002 * noise).exp(),
            lr: Some(5e-5 * (step as f64 / kink as f64).min(1.0)),
            batch_size: None,
        });
    }
    t
}

#[test]
fn the_fall_of_a_warm_up_flattening_is_no_sudden_drop() {
    for seed in 0..5 {
        let a = analyze_trace(&warmup(55, 0.0, 0, seed), &AnalyzeOptions::default());
        assert!(a.unexplained_drops.is_empty(), "seed {seed}: {:?}", a.drops);
    }
}

#[test]
fn a_large_drop_early_in_training_is_still_found() {
    // 5% at the 40th point of an 80-point fall of 1% a point: five points' fall at once,
    // with a bend 40 points after it that every window longer than that crosses.
    for seed in 0..5 {
        let a = analyze_trace(&warmup(400, 0.05, 200, seed), &AnalyzeOptions::default());
        assert!(
            a.drops
                .iter()
                .any(|d| d.step.abs_diff(200) <= 10 && d.explained_by == Cause::Unexplained),
            "seed {seed}: {:?}",
            a.drops
        );
    }
}
