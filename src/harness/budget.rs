//! What a run will cost, estimated before anything is trained or written, so that a typo
//! (`hidden = [100000, 100000]`, `samples = 1e12`, `epochs = 1e9`) is a one-line refusal
//! and not an allocation abort or a job that never ends.
//!
//! The memory estimate is an upper-end sum for one cell (cells run one after another):
//! parameters with their gradients and optimizer state, the activations of a batch, the
//! data set in its copies, and the one-shot evaluation of the training set. It is meant to
//! be right within a small factor, which is all a refusal needs.

use crate::error::InputError;
use crate::scenario::{DataSource, OptimizerKind, Scenario, ScenarioFile, train_size};

use super::train::planned_steps;

/// Cell-steps (cells × optimizer steps) a run may train without `--yes`: about an hour on
/// one core for the benchmark MLP; far beyond every bundled scenario (at most ~30,000).
pub const WORK_WITHOUT_ASKING: u64 = 10_000_000;
/// Bytes per f32.
const F32: u64 = 4;
/// Per parameter: the weight, its gradient, autodiff's copy of the graph's input, and
/// room for a second gradient buffer during the update.
const PARAM_COPIES: u64 = 4;
/// Per activation value in a training batch: forward output, saved input for backward,
/// batch norm's normalized copy, the gradient, and the activation function's mask.
const ACTIVATION_COPIES: u64 = 6;
/// The data set lives on the host, on the autodiff device and on the plain device (for
/// evaluation), each as features plus one label.
const DATA_COPIES: u64 = 3;
/// The whole training set is evaluated in one forward pass: its activations and outputs.
const EVAL_COPIES: u64 = 2;
/// The digits data set's width (8×8 images).
const DIGITS_FEATURES: u64 = 64;

/// The cost of a run, per cell and in total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Peak bytes of the largest cell.
    pub peak_bytes: u64,
    /// Parameters of the largest model.
    pub params: u64,
    /// Optimizer steps over all cells.
    pub cell_steps: u64,
}

fn features(s: &Scenario) -> u64 {
    let d = &s.data;
    match d.source {
        DataSource::Clusters => d.features as u64,
        DataSource::Digits => DIGITS_FEATURES,
        // The file is read anyway; its size in bytes bounds its values' count.
        DataSource::Csv => d
            .path
            .as_deref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len() / d.samples.max(1) as u64),
    }
}

/// Bytes one cell of this arm needs at its peak, and its parameter count.
fn cell_bytes(s: &Scenario) -> (u64, u64) {
    let f = features(s);
    let mut widths = vec![f];
    widths.extend(s.model.hidden.iter().map(|&h| h as u64));
    widths.push(s.data.classes as u64);
    let params = widths
        .windows(2)
        .map(|w| w[0].saturating_mul(w[1]).saturating_add(w[1]))
        .fold(0u64, u64::saturating_add);
    let state = match s.train.optimizer.kind {
        OptimizerKind::Sgd if s.train.optimizer.momentum > 0.0 => 1,
        OptimizerKind::Sgd => 0,
        OptimizerKind::Adam | OptimizerKind::Adamw => 2,
    };
    let per_row: u64 = widths.iter().fold(0u64, |a, &w| a.saturating_add(w));
    let n = s.data.samples as u64;
    let train_n = train_size(s.data.samples, s.data.validation_fraction) as u64;
    let parts = [
        params.saturating_mul(F32 * (PARAM_COPIES + state)),
        (s.train.batch_size as u64)
            .saturating_mul(per_row)
            .saturating_mul(F32 * ACTIVATION_COPIES),
        n.saturating_mul(f.saturating_add(1))
            .saturating_mul(F32 * DATA_COPIES),
        train_n
            .saturating_mul(per_row)
            .saturating_mul(F32 * EVAL_COPIES),
    ];
    (parts.iter().fold(0u64, |a, &b| a.saturating_add(b)), params)
}

/// Estimates a run of every arm × seed of `file`; `train_len(arm)` is the arm's training-set size.
pub fn estimate(file: &ScenarioFile, train_len: impl Fn(usize) -> usize) -> Estimate {
    let seeds = file.scenario.seeds.len() as u64;
    let mut e = Estimate {
        peak_bytes: 0,
        params: 0,
        cell_steps: 0,
    };
    for (i, arm) in file.arms.iter().enumerate() {
        let (bytes, params) = cell_bytes(&arm.config);
        e.peak_bytes = e.peak_bytes.max(bytes);
        e.params = e.params.max(params);
        let steps = planned_steps(&arm.config, train_len(i)).saturating_mul(seeds);
        e.cell_steps = e.cell_steps.saturating_add(steps);
    }
    e
}

/// Memory the system can give a new process now (MemAvailable), if the OS says.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

/// Refuses a run that cannot fit in memory, or that is larger than
/// [`WORK_WITHOUT_ASKING`] cell-steps without `yes`.
pub fn admit(
    file: &ScenarioFile,
    e: &Estimate,
    available: Option<u64>,
    yes: bool,
) -> Result<(), InputError> {
    if let Some(avail) = available
        && e.peak_bytes > avail
    {
        return Err(InputError::new(
            &file.path,
            format!(
                "one cell needs about {} ({} parameters, data and activations), more than the {} \
                 of memory available; make the model or the data smaller",
                gib(e.peak_bytes),
                e.params,
                gib(avail)
            ),
        ));
    }
    if e.cell_steps > WORK_WITHOUT_ASKING && !yes {
        return Err(InputError::new(
            &file.path,
            format!(
                "this run trains {} cell-steps (cells × optimizer steps), more than the {} that \
                 run without asking; check epochs, samples and the vary levels, or pass --yes",
                e.cell_steps, WORK_WITHOUT_ASKING
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn file(extra: &str) -> ScenarioFile {
        ScenarioFile::parse(Path::new("t.toml"), &format!("seeds = [1, 2]\n{extra}")).unwrap()
    }

    fn est(f: &ScenarioFile) -> Estimate {
        estimate(f, |i| {
            let d = &f.arms[i].config.data;
            train_size(d.samples, d.validation_fraction)
        })
    }

    #[test]
    fn a_small_scenario_is_admitted_without_asking() {
        let f = file("");
        let e = est(&f);
        assert!(e.peak_bytes < 100 << 20, "{e:?}");
        assert!(admit(&f, &e, Some(1 << 30), false).is_ok());
    }

    #[test]
    fn a_huge_model_is_refused_with_its_estimate() {
        let f = file("[model]\nhidden = [100000, 100000]\n");
        let e = est(&f);
        assert!(e.params > 10_000_000_000, "{e:?}");
        let err = admit(&f, &e, Some(24 << 30), true).unwrap_err();
        assert!(err.message.contains("GiB"), "{err}");
    }

    #[test]
    fn huge_data_is_refused_without_overflow() {
        let f = file("[data]\nsamples = 1000000000000\nfeatures = 10000000\n");
        let e = est(&f);
        assert!(admit(&f, &e, Some(24 << 30), true).is_err());
    }

    #[test]
    fn a_billion_epochs_needs_yes() {
        let f = file("[train]\nepochs = 1000000000\n");
        let e = est(&f);
        let err = admit(&f, &e, None, false).unwrap_err();
        assert!(err.message.contains("--yes"), "{err}");
        assert!(admit(&f, &e, None, true).is_ok());
    }
}
