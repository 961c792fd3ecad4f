//! The training loop of one cell, logging every step.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::data::{CellData, Dataset, batches, derive_seed, epoch_order};
use super::model::Mlp;
use super::schedule::lr_at;
use crate::error::InputError;
use crate::manifest::CellStatus;
use crate::scenario::{OptimizerKind, OptimizerSpec, Scenario};
use crate::trace::{LogMode, StepRecord, TraceWriter, ValRecord, ValWriter};

/// What happened to one cell.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CellOutcome {
    pub status: CellStatus,
    pub steps: u64,
    pub epochs: u64,
    pub diverged_at_step: Option<u64>,
    pub wall_s: f64,
}

/// What a training cell reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// One optimizer step done.
    Step,
    /// The epoch's steps are done and its rows are about to be written: a parallel worker
    /// waits here until the parent has the previous epoch in the manifest, so the manifest
    /// trails the disk by one epoch at most without stalling every epoch on that write.
    EpochTrained,
    /// An epoch's trace rows are flushed to disk: `steps` rows in `epochs` epochs so far.
    Epoch { steps: u64, epochs: u64 },
}

/// Optimizer steps one cell will take: the progress bar's length.
pub fn planned_steps(s: &Scenario, train_len: usize) -> u64 {
    let b = s.train.batch_size.max(1);
    let per_epoch = if s.train.drop_last {
        train_len / b
    } else {
        train_len.div_ceil(b)
    };
    (per_epoch as u64).saturating_mul(s.train.epochs)
}

fn optimizer(o: &OptimizerSpec) -> ModuleOptimizer {
    let wd = (o.weight_decay > 0.0).then(|| WeightDecayConfig::new(o.weight_decay as f32));
    match o.kind {
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum((o.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(o.momentum)
                    .with_nesterov(o.nesterov)
            }))
            .with_weight_decay(wd)
            .init(),
        OptimizerKind::Adam => AdamConfig::new()
            .with_beta_1(o.beta1 as f32)
            .with_beta_2(o.beta2 as f32)
            .with_weight_decay(wd)
            .init(),
        OptimizerKind::Adamw => AdamWConfig::new()
            .with_beta_1(o.beta1 as f32)
            .with_beta_2(o.beta2 as f32)
            .with_weight_decay(o.weight_decay as f32)
            .init(),
    }
}

fn upload_x(d: &Dataset, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(d.x.clone(), [d.len(), d.features]), device)
}

fn upload_y(d: &Dataset, device: &Device) -> Tensor<1, Int> {
    let y: Vec<i64> = d.y.iter().map(|&v| v as i64).collect();
    Tensor::from_data(TensorData::new(y, [d.len()]), device)
}

/// Mean cross-entropy and accuracy of `model` in eval mode, computed on the host in f64
/// so every device reports them the same way.
fn evaluate(model: &Mlp, x: &Tensor<2>, y: &[u32]) -> (f64, f64) {
    if y.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let logits = model.valid().forward(x.clone());
    let k = logits.dims()[1];
    let data = logits.into_data();
    let v: Vec<f32> = data.try_to_vec_as::<f32>().unwrap_or_default();
    score(&v, k, y)
}

/// Mean cross-entropy and accuracy of row-major logits (`k` classes) against `y`, in f64.
pub(crate) fn score(v: &[f32], k: usize, y: &[u32]) -> (f64, f64) {
    if y.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut loss = 0.0;
    let mut correct = 0usize;
    for (i, row) in v.chunks(k).enumerate() {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let lse = m + row.iter().map(|&z| (z as f64 - m).exp()).sum::<f64>().ln();
        let t = y[i] as usize;
        loss += lse - row[t] as f64;
        let best = row
            .iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |acc, (j, &z)| if z > acc.1 { (j, z) } else { acc },
            )
            .0;
        correct += (best == t) as usize;
    }
    let n = y.len() as f64;
    (loss / n, correct as f64 / n)
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> InputError + '_ {
    move |e| InputError::io(path, &e)
}

/// Fills in an epoch's losses (`raw`, one per row) as the scenario logs them, flags the
/// first non-finite loss as divergence, and writes the rows: what both engines write.
pub(crate) fn write_epoch_rows(
    s: &Scenario,
    rows: &mut [StepRecord],
    raw: &[f64],
    watcher: &mut crate::watch::Watcher,
    diverged_at: &mut Option<u64>,
    trace: &mut TraceWriter,
    trace_path: &Path,
) -> Result<(), InputError> {
    let mut sum = 0.0;
    for (k, (row, &l)) in rows.iter_mut().zip(raw).enumerate() {
        sum += l;
        row.loss = match s.train.log {
            LogMode::PerStep => l,
            LogMode::RunningMean => sum / (k + 1) as f64,
        };
        let diverging = watcher
            .push(row.step, l, row.lr, row.epoch)
            .into_iter()
            .find(|a| {
                // A loss that rose for good is a result to analyse, not a reason to stop.
                matches!(
                    a.kind,
                    crate::watch::AlertKind::Divergence {
                        reason: crate::watch::DivergenceReason::NonFinite
                    }
                )
            });
        if let Some(a) = diverging
            && diverged_at.is_none()
        {
            *diverged_at = Some(a.step);
        }
        trace.write(row).map_err(io(trace_path))?;
    }
    Ok(())
}

/// An epoch's losses, kept on the device step by step, read back in one go: one
/// synchronization per epoch instead of one per step.
pub(crate) fn read_losses(losses: Vec<Tensor<1>>) -> Vec<f32> {
    if losses.is_empty() {
        return Vec::new();
    }
    Tensor::cat(losses, 0)
        .into_data()
        .try_to_vec_as::<f32>()
        .unwrap_or_default()
}

/// Trains one cell and writes `dir/trace.csv` and `dir/val.csv` as it goes.
///
/// `progress` is told after every optimizer step (for progress bars) and after every
/// epoch's trace is on disk (so the manifest can say how far the cell got). Divergence is a
/// result, not an error: the epoch in which the loss first turns NaN or infinite is
/// written out, then training stops.
pub fn train_cell(
    s: &Scenario,
    seed: u64,
    scenario_path: &Path,
    base: &Device,
    dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<CellOutcome, InputError> {
    let started = Instant::now();
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let data = CellData::load(&s.data, seed, scenario_path)?;
    let ad = base.clone().autodiff();
    let init_seed = s
        .model
        .init_seed
        .unwrap_or_else(|| derive_seed(seed, "init"));
    let shuffle_seed = s
        .train
        .shuffle_seed
        .unwrap_or_else(|| derive_seed(seed, "shuffle"));
    ad.seed(init_seed);
    base.seed(init_seed);
    let mut model = Mlp::new(
        &s.model,
        s.train.batch_norm_mode,
        data.train.features,
        data.train.classes,
        &ad,
    );
    let mut optim = optimizer(&s.train.optimizer);
    let ce = CrossEntropyLossConfig::new().init(&ad);

    let trace_path = dir.join("trace.csv");
    let val_path = dir.join("val.csv");
    let mut trace = TraceWriter::create(&trace_path).map_err(io(&trace_path))?;
    let mut val_out = ValWriter::create(&val_path).map_err(io(&val_path))?;

    let total_steps = planned_steps(s, data.train.len());
    let val_x = upload_x(&data.val, base);
    let mut step: u64 = 0;
    let mut epochs_done = 0;
    let mut diverged_at = None;
    // The library's live watchdog flags divergence as each epoch's losses arrive (the same
    // rule `dropscope watch` applies to a foreign run): a NaN/inf loss stops the cell after
    // its epoch.
    let mut watcher = crate::watch::Watcher::new(crate::watch::WatchConfig::default());
    let mut epoch_train = data.train.clone();
    let mut train_x = upload_x(&epoch_train, &ad);
    let mut train_y = upload_y(&epoch_train, &ad);
    // The same examples on the plain device, for evaluating the training set in eval mode.
    let mut train_x_plain = upload_x(&epoch_train, base);
    for epoch in 0..s.train.epochs {
        if let Some(fresh) = data.train_for_epoch(epoch) {
            epoch_train = fresh;
            train_x = upload_x(&epoch_train, &ad);
            train_y = upload_y(&epoch_train, &ad);
            train_x_plain = upload_x(&epoch_train, base);
        }
        if let Some(every) = s.train.optimizer.reset_every_epochs
            && epoch > 0
            && epoch % every == 0
        {
            optim = optimizer(&s.train.optimizer);
        }
        let order = epoch_order(&epoch_train.y, s.train.shuffle, shuffle_seed, epoch);
        let lr = lr_at(&s.train.lr, step, epoch, total_steps, s.train.epochs);
        let mut losses = Vec::new();
        let mut rows = Vec::new();
        for (b, idx) in batches(&order, s.train.batch_size, s.train.drop_last)
            .into_iter()
            .enumerate()
        {
            let lr = match s.train.lr.per {
                crate::scenario::ScheduleUnit::Epoch => lr,
                crate::scenario::ScheduleUnit::Step => {
                    lr_at(&s.train.lr, step, epoch, total_steps, s.train.epochs)
                }
            };
            let ids: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
            let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [idx.len()]), &ad);
            let x = train_x.clone().select(0, ids.clone());
            let y = train_y.clone().select(0, ids);
            let logits = model.forward(x);
            let loss = ce.forward(logits, y);
            // Keep the value on the device and read the epoch's losses in one transfer:
            // a read per step would synchronize a GPU every step.
            losses.push(loss.clone().without_autodiff());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            rows.push(StepRecord {
                step,
                epoch: Some(epoch),
                batch: Some(b as u64),
                loss: f64::NAN,
                lr: Some(lr),
                batch_size: Some(idx.len() as u64),
            });
            step += 1;
            progress(Progress::Step);
        }
        progress(Progress::EpochTrained);
        let raw: Vec<f64> = read_losses(losses).into_iter().map(f64::from).collect();
        write_epoch_rows(
            s,
            &mut rows,
            &raw,
            &mut watcher,
            &mut diverged_at,
            &mut trace,
            &trace_path,
        )?;
        trace.flush().map_err(io(&trace_path))?;
        epochs_done = epoch + 1;
        progress(Progress::Epoch {
            steps: step,
            epochs: epochs_done,
        });
        if diverged_at.is_some() {
            break;
        }
        let (val_loss, val_acc) = evaluate(&model, &val_x, &data.val.y);
        let (train_eval, _) = evaluate(&model, &train_x_plain, &epoch_train.y);
        val_out
            .write(&ValRecord {
                epoch,
                step,
                val_loss,
                val_accuracy: Some(val_acc),
                train_loss_eval: Some(train_eval),
            })
            .map_err(io(&val_path))?;
        val_out.flush().map_err(io(&val_path))?;
    }
    Ok(CellOutcome {
        status: if diverged_at.is_some() {
            CellStatus::Diverged
        } else {
            CellStatus::Completed
        },
        steps: step,
        epochs: epochs_done,
        diverged_at_step: diverged_at,
        wall_s: started.elapsed().as_secs_f64(),
    })
}
