//! The stacked engine: cells of one model shape trained as one model with a leading
//! cell axis.
//!
//! Weights are `[cells, in, out]`, biases and batch-norm parameters `[cells, 1, out]`; a
//! step is one batched matmul per layer over every cell's own minibatch (gathered in one
//! `select` from the cells' training sets laid end to end). Batch norm runs on
//! `[batch, cells × width]`, so burn's own batch-norm op keeps statistics per cell and
//! per feature. The loss is per cell (`[cells]`) and their sum is differentiated: a
//! cell's gradient depends on its own loss only. The optimizers are written out as tensor
//! ops with a learning rate (and hyper-parameters) per cell, following burn-optim 0.22.1's
//! SGD (momentum with dampening 0.1, Nesterov, weight decay), Adam and AdamW formulas step
//! for step. Each cell starts from the weights the cell engine initializes for its seed
//! (the same [`Mlp`], stacked), reads its own data order, label noise and fresh data, and
//! writes the same trace and validation rows. A cell whose loss turns non-finite is
//! written up to that epoch, marked diverged and taken out of the stack; a cell that has
//! run its epochs leaves it too.
//!
//! Refused: dropout (its masks come from burn's random stream one cell at a time).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::nn::BatchNormConfig;
use burn::nn::activation::{Activation, ActivationConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::module::{batch_norm, batch_norm_train};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::data::{CellData, Dataset, batches, derive_seed, epoch_order};
use super::model::Mlp;
use super::schedule::lr_at;
use super::train::{CellOutcome, io, planned_steps, read_losses, score, write_epoch_rows};
use crate::error::InputError;
use crate::manifest::CellStatus;
use crate::scenario::{
    ActivationKind, BatchNormMode, OptimizerKind, OptimizerSpec, Scenario, ScheduleUnit,
};
use crate::trace::{StepRecord, TraceWriter, ValRecord, ValWriter};

/// Which engine trains a scenario's cells (`--engine`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Engine {
    /// Stacked where it is supported and faster: on a CPU device, for every group of two
    /// or more cells of one shape; the other cells one at a time.
    Auto,
    /// Each cell alone (in a worker process of its own with `--jobs N`).
    #[default]
    Cell,
    /// Every cell in a stack of its shape; refuses settings it cannot stack.
    Stacked,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Auto => "auto",
            Engine::Cell => "cell",
            Engine::Stacked => "stacked",
        })
    }
}

/// Why a cell of this configuration cannot be stacked, if it cannot.
pub fn unsupported(s: &Scenario) -> Option<String> {
    (s.model.dropout > 0.0).then(|| {
        format!(
            "model.dropout = {}: dropout masks come from burn's random stream one cell at a \
             time, which a stack cannot reproduce",
            s.model.dropout
        )
    })
}

/// What cells must share to train in one stack: the model's shape, the batch shape, the
/// data's size and the optimizer's form (its values may differ per cell).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StackKey {
    hidden: Vec<usize>,
    activation: String,
    batch_norm: Option<bool>,
    batch_size: usize,
    drop_last: bool,
    optimizer: String,
    momentum: bool,
    nesterov: bool,
    train_len: usize,
    data: String,
}

/// Per-step work of one cell of a stack, as batch × widest hidden layer: `auto` stacks
/// only where this is small (see [`AUTO_MAX_WORK`]).
impl StackKey {
    pub fn work(&self) -> usize {
        self.batch_size * self.hidden.iter().copied().max().unwrap_or(1)
    }
}

/// Largest per-cell step (batch × widest layer) `auto` stacks on a CPU. Measured on 2
/// cores with 16 cells (`bench sweep --cells 16 --steps 300`), stacked against one cell
/// at a time: 1.81× at (32, 64) = 2,048, 1.32× at (32, 128), 1.56× at (64, 64), 0.84× at
/// (64, 256); and the bundled `lr-step` (512 × 64) and `epoch-memorization` (32 × 512)
/// ran slower stacked (11.0 s against 8.2 s, 1.8 s against 1.4 s). Above a few thousand
/// the step is compute-bound and stacking only adds copies.
pub const AUTO_MAX_WORK: usize = 2048;

/// Whether `auto` stacks a group of `cells` cells of `key` when `jobs` cells run at once
/// otherwise: steps small enough ([`AUTO_MAX_WORK`]) and at least twice as many cells as
/// parallel workers.
pub fn auto_stacks(key: &StackKey, cells: usize, jobs: usize) -> bool {
    cells >= 2.max(2 * jobs) && key.work() <= AUTO_MAX_WORK
}

/// The stack a cell of `s` goes in; `train_len` is its training set's size.
pub fn key(s: &Scenario, train_len: usize) -> StackKey {
    let d = &s.data;
    let o = &s.train.optimizer;
    StackKey {
        hidden: s.model.hidden.clone(),
        activation: format!("{:?}", s.model.activation),
        batch_norm: s
            .model
            .batch_norm
            .then_some(s.train.batch_norm_mode == BatchNormMode::Train),
        batch_size: s.train.batch_size,
        drop_last: s.train.drop_last,
        optimizer: format!("{:?}", o.kind),
        momentum: o.kind == OptimizerKind::Sgd && o.momentum > 0.0,
        nesterov: o.kind == OptimizerKind::Sgd && o.momentum > 0.0 && o.nesterov,
        train_len,
        // Everything that fixes the data's shape (features, classes, validation size).
        data: format!(
            "{:?} {} {} {} {} {:?} {}",
            d.source,
            d.samples,
            d.features,
            d.classes,
            d.validation_fraction,
            d.path,
            d.label_column
        ),
    }
}

/// One cell of a stack.
pub struct Member<'a> {
    pub scenario: &'a Scenario,
    pub seed: u64,
    pub dir: PathBuf,
}

/// What a stack reports as it goes; `member` indexes the slice given to [`train_stack`].
#[derive(Debug, Clone, PartialEq)]
pub enum StackEvent {
    /// One optimizer step of `cells` cells.
    Steps(u64),
    /// A member's epoch rows are on disk.
    Epoch {
        member: usize,
        steps: u64,
        epochs: u64,
    },
    /// A member left the stack (done or diverged).
    Done { member: usize, outcome: CellOutcome },
}

/// The host side of one cell in a stack.
struct Live<'a> {
    member: usize,
    s: &'a Scenario,
    data: CellData,
    epoch_train: Dataset,
    shuffle_seed: u64,
    total_steps: u64,
    trace: TraceWriter,
    trace_path: PathBuf,
    val_out: ValWriter,
    val_path: PathBuf,
    watcher: crate::watch::Watcher,
    diverged_at: Option<u64>,
    epochs_done: u64,
}

/// One cell's optimizer in a stack: its settings and the host side of its state.
pub(crate) struct OptCell<'a> {
    spec: &'a OptimizerSpec,
    /// SGD momentum: whether the cell has a velocity yet (burn's first step uses the
    /// gradient as it is).
    has_velocity: bool,
    /// Adam/AdamW: steps since the state began.
    time: i32,
}

impl<'a> OptCell<'a> {
    pub(crate) fn new(spec: &'a OptimizerSpec) -> Self {
        OptCell {
            spec,
            has_velocity: false,
            time: 0,
        }
    }
}

/// The model's form, shared by the stack.
struct Shape {
    layers: usize,
    batch_norm: bool,
    bn_train: bool,
    activation: Activation,
    epsilon: f64,
    bn_momentum: f64,
}

/// One value per cell as a `[cells, 1, 1]` tensor, broadcast over a parameter.
fn col(v: &[f32], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len(), 1, 1]), device)
}

fn upload_x(sets: &[&Dataset], device: &Device) -> Tensor<2> {
    let n: usize = sets.iter().map(|d| d.len()).sum();
    let f = sets[0].features;
    let x: Vec<f32> = sets.iter().flat_map(|d| d.x.iter().copied()).collect();
    Tensor::from_data(TensorData::new(x, [n, f]), device)
}

fn upload_y(sets: &[&Dataset], device: &Device) -> Tensor<1, Int> {
    let y: Vec<i64> = sets
        .iter()
        .flat_map(|d| d.y.iter().map(|&v| v as i64))
        .collect();
    let n = y.len();
    Tensor::from_data(TensorData::new(y, [n]), device)
}

/// The forward pass. Parameters in order: per hidden layer weight, bias (and gamma, beta
/// with batch norm); then the output weight and bias. `running` holds each batch-norm
/// layer's running mean and variance (`[cells, 1, width]`). With `train`, batch norm in
/// training mode uses the batch's statistics and returns them per layer (`[cells ×
/// width]`).
fn forward(
    p: &[Tensor<3>],
    running: &[Tensor<3>],
    shape: &Shape,
    x: Tensor<3>,
    train: bool,
) -> (Tensor<3>, Vec<(Tensor<1>, Tensor<1>)>) {
    let mut x = x;
    let mut k = 0;
    let mut stats = Vec::new();
    let device = x.device();
    for layer in 0..shape.layers {
        x = x.matmul(p[k].clone()) + p[k + 1].clone();
        k += 2;
        if shape.batch_norm {
            let [c, b, h] = x.dims();
            let flat = x.swap_dims(0, 1).reshape([b, c * h]);
            let gamma = p[k].clone().reshape([c * h]);
            let beta = p[k + 1].clone().reshape([c * h]);
            k += 2;
            let out = if train && shape.bn_train {
                let r = batch_norm_train(flat, gamma, beta, shape.epsilon);
                stats.push((r.mean.inner(), r.variance.inner()));
                r.output
            } else {
                let mean = running[2 * layer].clone().reshape([c * h]);
                let var = running[2 * layer + 1].clone().reshape([c * h]);
                batch_norm(
                    flat,
                    gamma,
                    beta,
                    mean.to_device(&device),
                    var.to_device(&device),
                    shape.epsilon,
                )
            };
            x = out.reshape([b, c, h]).swap_dims(0, 1);
        }
        x = shape.activation.forward(x);
    }
    (x.matmul(p[k].clone()) + p[k + 1].clone(), stats)
}

/// Trains `members` (cells of one [`StackKey`]) as one stack and writes each cell's
/// `trace.csv` and `val.csv`. Errors are bad input or an unwritable folder; divergence is
/// a result, reported per member.
pub fn train_stack(
    members: &[Member<'_>],
    scenario_path: &Path,
    base: &Device,
    on: &mut dyn FnMut(StackEvent),
) -> Result<(), InputError> {
    let started = Instant::now();
    let ad = base.clone().autodiff();
    let first = members
        .first()
        .ok_or_else(|| InputError::new(scenario_path, "an empty stack"))?
        .scenario;
    let mut live: Vec<Live<'_>> = Vec::new();
    let mut params: Vec<Vec<Tensor<2>>> = Vec::new();
    let mut running: Vec<Vec<Tensor<2>>> = Vec::new();
    for (m, member) in members.iter().enumerate() {
        let s = member.scenario;
        if let Some(why) = unsupported(s) {
            return Err(InputError::new(scenario_path, why));
        }
        std::fs::create_dir_all(&member.dir).map_err(io(&member.dir))?;
        let data = CellData::load(&s.data, member.seed, scenario_path)?;
        // The cell engine's initialization, step for step: seed, then build the model.
        let init_seed = s
            .model
            .init_seed
            .unwrap_or_else(|| derive_seed(member.seed, "init"));
        ad.seed(init_seed);
        base.seed(init_seed);
        let model = Mlp::new(
            &s.model,
            s.train.batch_norm_mode,
            data.train.features,
            data.train.classes,
            &ad,
        );
        let (p, r) = flat_params(&model);
        params.push(p);
        running.push(r);
        let trace_path = member.dir.join("trace.csv");
        let val_path = member.dir.join("val.csv");
        live.push(Live {
            member: m,
            s,
            epoch_train: data.train.clone(),
            shuffle_seed: s
                .train
                .shuffle_seed
                .unwrap_or_else(|| derive_seed(member.seed, "shuffle")),
            total_steps: planned_steps(s, data.train.len()),
            trace: TraceWriter::create(&trace_path).map_err(io(&trace_path))?,
            trace_path,
            val_out: ValWriter::create(&val_path).map_err(io(&val_path))?,
            val_path,
            watcher: crate::watch::Watcher::new(crate::watch::WatchConfig::default()),
            diverged_at: None,
            epochs_done: 0,
            data,
        });
    }
    let form = |l: &Live<'_>| {
        let d = &l.data;
        (
            d.train.len(),
            d.train.features,
            d.train.classes,
            d.val.len(),
        )
    };
    for l in &live[1..] {
        if form(l) != form(&live[0]) {
            return Err(InputError::new(
                scenario_path,
                "cells of one stack have data of different shapes",
            ));
        }
    }
    let mut p = stack_cells(params);
    let mut run = stack_cells(running);
    let shape = Shape {
        layers: first.model.hidden.len(),
        batch_norm: first.model.batch_norm,
        bn_train: first.train.batch_norm_mode == BatchNormMode::Train,
        activation: match first.model.activation {
            ActivationKind::Relu => ActivationConfig::Relu,
            ActivationKind::Gelu => ActivationConfig::Gelu,
            ActivationKind::Tanh => ActivationConfig::Tanh,
        }
        .init(base),
        epsilon: BatchNormConfig::new(1).epsilon,
        bn_momentum: BatchNormConfig::new(1).momentum,
    };
    let kind = first.train.optimizer.kind;
    let with_momentum = kind == OptimizerKind::Sgd && first.train.optimizer.momentum > 0.0;
    let nesterov = with_momentum && first.train.optimizer.nesterov;
    let adaptive = kind != OptimizerKind::Sgd;
    let mut opt: Vec<OptCell<'_>> = live
        .iter()
        .map(|l| OptCell::new(&l.s.train.optimizer))
        .collect();
    let mut m1: Vec<Tensor<3>> = if with_momentum || adaptive {
        p.iter().map(|t| t.zeros_like()).collect()
    } else {
        Vec::new()
    };
    let mut m2: Vec<Tensor<3>> = if adaptive {
        p.iter().map(|t| t.zeros_like()).collect()
    } else {
        Vec::new()
    };

    let train_len = live[0].data.train.len();
    let val_len = live[0].data.val.len();
    let features = live[0].data.train.features;
    let classes = live[0].data.train.classes;
    let max_epochs = live.iter().map(|l| l.s.train.epochs).max().unwrap_or(0);
    let mut step: u64 = 0;
    let mut upload = true;
    let (mut x_ad, mut y_ad, mut x_plain) = (None, None, None);
    let mut val_x: Option<Tensor<3>> = None;
    for epoch in 0..max_epochs {
        let c = live.len();
        if c == 0 {
            break;
        }
        for l in live.iter_mut() {
            if let Some(fresh) = l.data.train_for_epoch(epoch) {
                l.epoch_train = fresh;
                upload = true;
            }
        }
        if upload {
            let sets: Vec<&Dataset> = live.iter().map(|l| &l.epoch_train).collect();
            x_ad = Some(upload_x(&sets, &ad));
            y_ad = Some(upload_y(&sets, &ad));
            x_plain = Some(upload_x(&sets, base).reshape([c, train_len, features]));
            let vals: Vec<&Dataset> = live.iter().map(|l| &l.data.val).collect();
            val_x = (val_len > 0).then(|| upload_x(&vals, base).reshape([c, val_len, features]));
            upload = false;
        }
        let (Some(x_all), Some(y_all), Some(x_eval)) = (&x_ad, &y_ad, &x_plain) else {
            break;
        };
        // burn's optimizer reset: a fresh optimizer has no state.
        let keep: Vec<f32> = live
            .iter()
            .map(|l| match l.s.train.optimizer.reset_every_epochs {
                Some(every) if epoch > 0 && epoch % every == 0 => 0.0,
                _ => 1.0,
            })
            .collect();
        if keep.contains(&0.0) {
            let keep_t = col(&keep, base);
            for t in m1.iter_mut().chain(m2.iter_mut()) {
                *t = t.clone().mul(keep_t.clone());
            }
            for (o, &k) in opt.iter_mut().zip(&keep) {
                if k == 0.0 {
                    o.has_velocity = false;
                    o.time = 0;
                }
            }
        }
        let orders: Vec<Vec<usize>> = live
            .iter()
            .map(|l| epoch_order(&l.epoch_train.y, l.s.train.shuffle, l.shuffle_seed, epoch))
            .collect();
        let per_cell: Vec<Vec<&[usize]>> = orders
            .iter()
            .zip(&live)
            .map(|(o, l)| batches(o, l.s.train.batch_size, l.s.train.drop_last))
            .collect();
        let n_batches = per_cell[0].len();
        let epoch_lr: Vec<f64> = live
            .iter()
            .map(|l| lr_at(&l.s.train.lr, step, epoch, l.total_steps, l.s.train.epochs))
            .collect();
        let mut losses = Vec::with_capacity(n_batches);
        let mut rows: Vec<Vec<StepRecord>> = vec![Vec::with_capacity(n_batches); c];
        for b in 0..n_batches {
            let lrs: Vec<f64> = live
                .iter()
                .zip(&epoch_lr)
                .map(|(l, &e)| match l.s.train.lr.per {
                    ScheduleUnit::Epoch => e,
                    ScheduleUnit::Step => {
                        lr_at(&l.s.train.lr, step, epoch, l.total_steps, l.s.train.epochs)
                    }
                })
                .collect();
            let bs = per_cell[0][b].len();
            let ids: Vec<i64> = per_cell
                .iter()
                .enumerate()
                .flat_map(|(k, bt)| bt[b].iter().map(move |&i| (k * train_len + i) as i64))
                .collect();
            let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [c * bs]), &ad);
            let x = x_all
                .clone()
                .select(0, ids.clone())
                .reshape([c, bs, features]);
            let y = y_all.clone().select(0, ids).reshape([c, bs, 1]);
            let leaves: Vec<Tensor<3>> = p
                .iter()
                .map(|t| t.clone().autodiff().require_grad())
                .collect();
            let (logits, stats) = forward(&leaves, &run, &shape, x, true);
            let picked = log_softmax(logits, 2).gather(2, y);
            let loss = picked.reshape([c, bs]).mean_dim(1).neg().reshape([c]);
            losses.push(loss.clone().inner());
            let grads = loss.sum().backward();
            let grads: Vec<Tensor<3>> = leaves
                .iter()
                .map(|t| t.grad(&grads).expect("every parameter has a gradient"))
                .collect();
            update_running(&mut run, stats, shape.bn_momentum);
            update(
                &mut p, grads, &mut m1, &mut m2, &mut opt, &lrs, kind, nesterov, base,
            );
            for (k, row) in rows.iter_mut().enumerate() {
                row.push(StepRecord {
                    step,
                    epoch: Some(epoch),
                    batch: Some(b as u64),
                    loss: f64::NAN,
                    lr: Some(lrs[k]),
                    batch_size: Some(per_cell[k][b].len() as u64),
                });
            }
            step += 1;
            on(StackEvent::Steps(c as u64));
        }
        // One read of the epoch's losses: [steps × cells].
        let raw: Vec<f32> = read_losses(losses);
        let mut eval: Option<(Vec<f32>, Vec<f32>)> = None;
        let mut leaving = Vec::new();
        for (k, l) in live.iter_mut().enumerate() {
            let mine: Vec<f64> = (0..n_batches).map(|s| raw[s * c + k] as f64).collect();
            write_epoch_rows(
                l.s,
                &mut rows[k],
                &mine,
                &mut l.watcher,
                &mut l.diverged_at,
                &mut l.trace,
                &l.trace_path,
            )?;
            l.trace.flush().map_err(io(&l.trace_path))?;
            l.epochs_done = epoch + 1;
            on(StackEvent::Epoch {
                member: l.member,
                steps: step,
                epochs: l.epochs_done,
            });
            if l.diverged_at.is_none() {
                let (val, tr) = eval.get_or_insert_with(|| {
                    let logits = |x: Tensor<3>| -> Vec<f32> {
                        forward(&p, &run, &shape, x, false)
                            .0
                            .into_data()
                            .try_to_vec_as::<f32>()
                            .unwrap_or_default()
                    };
                    (
                        val_x.clone().map(logits).unwrap_or_default(),
                        logits(x_eval.clone()),
                    )
                });
                let slice = |v: &[f32], n: usize| -> Vec<f32> {
                    v.get(k * n * classes..(k + 1) * n * classes)
                        .map(<[f32]>::to_vec)
                        .unwrap_or_default()
                };
                let (val_loss, val_acc) = score(&slice(val, val_len), classes, &l.data.val.y);
                let (train_eval, _) = score(&slice(tr, train_len), classes, &l.epoch_train.y);
                l.val_out
                    .write(&ValRecord {
                        epoch,
                        step,
                        val_loss,
                        val_accuracy: Some(val_acc),
                        train_loss_eval: Some(train_eval),
                    })
                    .map_err(io(&l.val_path))?;
                l.val_out.flush().map_err(io(&l.val_path))?;
            }
            if l.diverged_at.is_some() || l.epochs_done >= l.s.train.epochs {
                leaving.push(k);
            }
        }
        if leaving.is_empty() {
            continue;
        }
        let stay: Vec<i64> = (0..c)
            .filter(|k| !leaving.contains(k))
            .map(|k| k as i64)
            .collect();
        let mut kept = Vec::new();
        let mut k = 0;
        opt.retain(|_| {
            k += 1;
            !leaving.contains(&(k - 1))
        });
        for (k, l) in live.into_iter().enumerate() {
            if leaving.contains(&k) {
                on(StackEvent::Done {
                    member: l.member,
                    outcome: CellOutcome {
                        status: if l.diverged_at.is_some() {
                            CellStatus::Diverged
                        } else {
                            CellStatus::Completed
                        },
                        steps: step,
                        epochs: l.epochs_done,
                        diverged_at_step: l.diverged_at,
                        wall_s: started.elapsed().as_secs_f64(),
                    },
                });
            } else {
                kept.push(l);
            }
        }
        live = kept;
        if stay.is_empty() {
            break;
        }
        let idx = Tensor::<1, Int>::from_data(TensorData::new(stay.clone(), [stay.len()]), base);
        for t in p
            .iter_mut()
            .chain(run.iter_mut())
            .chain(m1.iter_mut())
            .chain(m2.iter_mut())
        {
            *t = t.clone().select(0, idx.clone());
        }
        upload = true;
    }
    Ok(())
}

/// One optimizer step for every cell, burn-optim 0.22.1's formulas with per-cell values.
#[allow(clippy::too_many_arguments)]
pub(crate) fn update(
    p: &mut [Tensor<3>],
    grads: Vec<Tensor<3>>,
    m1: &mut [Tensor<3>],
    m2: &mut [Tensor<3>],
    live: &mut [OptCell<'_>],
    lrs: &[f64],
    kind: OptimizerKind,
    nesterov: bool,
    device: &Device,
) {
    if kind != OptimizerKind::Sgd {
        for l in live.iter_mut() {
            l.time += 1;
        }
    }
    let per = |f: &dyn Fn(&OptCell<'_>) -> f32| -> Tensor<3> {
        col(&live.iter().map(f).collect::<Vec<_>>(), device)
    };
    let lr = col(&lrs.iter().map(|&l| l as f32).collect::<Vec<_>>(), device);
    let penalty: Vec<f32> = live.iter().map(|l| l.spec.weight_decay as f32).collect();
    let decay = (kind != OptimizerKind::Adamw && penalty.iter().any(|&w| w > 0.0))
        .then(|| col(&penalty, device));
    match kind {
        OptimizerKind::Sgd => {
            let momentum = (!m1.is_empty()).then(|| {
                let had = per(&|l| if l.has_velocity { 1.0 } else { 0.0 });
                let fresh = per(&|l| if l.has_velocity { 0.0 } else { 1.0 });
                (per(&|l| l.spec.momentum as f32), had, fresh)
            });
            for (i, g) in grads.into_iter().enumerate() {
                let mut g = g;
                if let Some(wd) = &decay {
                    g = p[i].clone().mul(wd.clone()).add(g);
                }
                if let Some((mo, had, fresh)) = &momentum {
                    // burn: velocity = grad·(1 − dampening) + velocity·momentum, or the
                    // grad itself on the first step.
                    let v = g
                        .clone()
                        .mul_scalar(1.0 - 0.1)
                        .add(m1[i].clone().mul(mo.clone()))
                        .mul(had.clone())
                        .add(g.clone().mul(fresh.clone()));
                    m1[i] = v.clone();
                    g = if nesterov {
                        v.mul(mo.clone()).add(g)
                    } else {
                        v
                    };
                }
                p[i] = p[i].clone() - g.mul(lr.clone());
            }
            for l in live.iter_mut() {
                l.has_velocity = momentum.is_some();
            }
        }
        OptimizerKind::Adam | OptimizerKind::Adamw => {
            let b1 = |l: &OptCell<'_>| l.spec.beta1 as f32;
            let b2 = |l: &OptCell<'_>| l.spec.beta2 as f32;
            let beta1 = per(&b1);
            let beta2 = per(&b2);
            let f1 = per(&|l| 1.0 - b1(l));
            let f2 = per(&|l| 1.0 - b2(l));
            let eps: f32 = 1e-5;
            for (i, g) in grads.into_iter().enumerate() {
                let mut g = g;
                if let Some(wd) = &decay {
                    g = p[i].clone().mul(wd.clone()).add(g);
                }
                m1[i] = m1[i]
                    .clone()
                    .mul(beta1.clone())
                    .add(g.clone().mul(f1.clone()));
                m2[i] = m2[i]
                    .clone()
                    .mul(beta2.clone())
                    .add(g.square().mul(f2.clone()));
            }
            if kind == OptimizerKind::Adam {
                let bc2 = |l: &OptCell<'_>| (1.0 - b2(l).powi(l.time)).sqrt();
                let factor = per(&|l| bc2(l) / (1.0 - b1(l).powi(l.time)));
                let shift = per(&|l| eps * bc2(l));
                for i in 0..p.len() {
                    let delta = m1[i]
                        .clone()
                        .mul(factor.clone())
                        .div(m2[i].clone().sqrt().add(shift.clone()));
                    p[i] = p[i].clone() - delta.mul(lr.clone());
                }
            } else {
                let d1 = per(&|l| 1f32 - b1(l).powi(l.time));
                let d2 = per(&|l| 1f32 - b2(l).powi(l.time));
                let keep: Vec<f32> = live
                    .iter()
                    .zip(lrs)
                    .map(|(l, &lr)| {
                        let rate = lr * ((l.spec.weight_decay as f32) as f64);
                        if rate == 0.0 {
                            1.0
                        } else {
                            (1.0 - rate) as f32
                        }
                    })
                    .collect();
                let keep = keep.iter().any(|&k| k != 1.0).then(|| col(&keep, device));
                for i in 0..p.len() {
                    let delta = m1[i]
                        .clone()
                        .div(d1.clone())
                        .div(m2[i].clone().div(d2.clone()).sqrt().add_scalar(eps));
                    let decayed = match &keep {
                        Some(k) => p[i].clone().mul(k.clone()),
                        None => p[i].clone(),
                    };
                    p[i] = decayed - delta.mul(lr.clone());
                }
            }
        }
    }
}

/// `bench sweep --engine stacked`: `cells` copies of the benchmark MLP (`bench train`'s:
/// 64 inputs, one hidden layer with batch norm, 10 classes, SGD momentum 0.9, LR 0.01)
/// trained as one stack for `steps` steps, each cell on its own minibatches, the losses
/// read once at the end. Returns the wall seconds, set-up included.
pub fn bench_stack(base: &Device, cells: usize, batch: usize, hidden: usize, steps: usize) -> f64 {
    use rand::{Rng, SeedableRng};
    let t = Instant::now();
    let ad = base.clone().autodiff();
    let (inputs, classes, pool) = (64, 10, 4096.max(batch));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let x: Vec<f32> = (0..pool * inputs).map(|_| rng.random::<f32>()).collect();
    let y: Vec<i64> = (0..pool).map(|i| (i % classes) as i64).collect();
    let x_all = Tensor::<2>::from_data(TensorData::new(x, [pool, inputs]), &ad);
    let y_all = Tensor::<1, Int>::from_data(TensorData::new(y, [pool]), &ad);
    let spec = crate::scenario::ModelSpec {
        hidden: vec![hidden],
        batch_norm: true,
        ..crate::scenario::ModelSpec::default()
    };
    let mut per_cell = Vec::new();
    let mut running = Vec::new();
    for c in 0..cells {
        ad.seed(c as u64);
        let (p, r) = flat_params(&Mlp::new(&spec, BatchNormMode::Train, inputs, classes, &ad));
        per_cell.push(p);
        running.push(r);
    }
    let mut p = stack_cells(per_cell);
    let mut run = stack_cells(running);
    let shape = Shape {
        layers: 1,
        batch_norm: true,
        bn_train: true,
        activation: ActivationConfig::Relu.init(base),
        epsilon: BatchNormConfig::new(1).epsilon,
        bn_momentum: BatchNormConfig::new(1).momentum,
    };
    let spec = OptimizerSpec::default();
    let mut opt: Vec<OptCell<'_>> = (0..cells).map(|_| OptCell::new(&spec)).collect();
    let mut m1: Vec<Tensor<3>> = p.iter().map(|t| t.zeros_like()).collect();
    let mut m2 = Vec::new();
    let lrs = vec![0.01; cells];
    let mut losses = Vec::with_capacity(steps);
    for s in 0..steps {
        let ids: Vec<i64> = (0..cells)
            .flat_map(|c| (0..batch).map(move |i| (((s + c) % 16 * batch + i) % pool) as i64))
            .collect();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [cells * batch]), &ad);
        let x = x_all
            .clone()
            .select(0, ids.clone())
            .reshape([cells, batch, inputs]);
        let y = y_all.clone().select(0, ids).reshape([cells, batch, 1]);
        let leaves: Vec<Tensor<3>> = p
            .iter()
            .map(|t| t.clone().autodiff().require_grad())
            .collect();
        let (logits, stats) = forward(&leaves, &run, &shape, x, true);
        let loss = log_softmax(logits, 2)
            .gather(2, y)
            .reshape([cells, batch])
            .mean_dim(1)
            .neg()
            .reshape([cells]);
        losses.push(loss.clone().inner());
        let grads = loss.sum().backward();
        let grads: Vec<Tensor<3>> = leaves.iter().filter_map(|t| t.grad(&grads)).collect();
        update_running(&mut run, stats, shape.bn_momentum);
        update(
            &mut p,
            grads,
            &mut m1,
            &mut m2,
            &mut opt,
            &lrs,
            OptimizerKind::Sgd,
            false,
            base,
        );
    }
    if !losses.is_empty() {
        let _ = Tensor::cat(losses, 0).into_data();
    }
    t.elapsed().as_secs_f64()
}

/// Stacks each parameter over the cells: `[cells, a, b]` from each cell's `[a, b]`.
/// One cell's parameters in the stack's order (per hidden layer weight, bias as a row, and
/// with batch norm gamma and beta; then the output weight and bias) and its batch-norm
/// running statistics (mean, variance per layer), read in the order the forward pass
/// initializes them.
fn flat_params(model: &Mlp) -> (Vec<Tensor<2>>, Vec<Tensor<2>>) {
    let (layers, (ow, ob)) = model.parts();
    let mut p = Vec::new();
    let mut r = Vec::new();
    for l in layers {
        p.push(l.w);
        p.push(l.b.unsqueeze_dim::<2>(0));
        if let Some([g, b, rm, rv]) = l.bn {
            p.push(g.unsqueeze_dim::<2>(0));
            p.push(b.unsqueeze_dim::<2>(0));
            r.push(rm.unsqueeze_dim::<2>(0));
            r.push(rv.unsqueeze_dim::<2>(0));
        }
    }
    p.push(ow);
    p.push(ob.unsqueeze_dim::<2>(0));
    (p, r)
}

fn stack_cells(per_cell: Vec<Vec<Tensor<2>>>) -> Vec<Tensor<3>> {
    let n = per_cell.first().map_or(0, |p| p.len());
    let mut cols: Vec<Vec<Tensor<3>>> = (0..n).map(|_| Vec::new()).collect();
    for p in per_cell {
        for (i, t) in p.into_iter().enumerate() {
            let [a, b] = t.dims();
            cols[i].push(t.reshape([1, a, b]));
        }
    }
    cols.into_iter().map(|c| Tensor::cat(c, 0)).collect()
}

/// burn's running-statistics update, per cell: `running·(1 − m) + batch·m`.
fn update_running(run: &mut [Tensor<3>], stats: Vec<(Tensor<1>, Tensor<1>)>, mo: f64) {
    for (i, (mean, var)) in stats.into_iter().enumerate() {
        let dims = run[2 * i].dims();
        let n = dims[0] * dims[2];
        let rm = run[2 * i].clone().reshape([n]);
        let rv = run[2 * i + 1].clone().reshape([n]);
        run[2 * i] = rm
            .mul_scalar(1.0 - mo)
            .add(mean.mul_scalar(mo))
            .reshape(dims);
        run[2 * i + 1] = rv
            .mul_scalar(1.0 - mo)
            .add(var.mul_scalar(mo))
            .reshape(dims);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ModelSpec;

    #[test]
    fn auto_stacks_only_small_steps_with_cells_to_spare_over_the_workers() {
        let key = |batch: usize, hidden: usize| StackKey {
            hidden: vec![hidden],
            activation: "relu".into(),
            batch_norm: None,
            batch_size: batch,
            drop_last: false,
            optimizer: "sgd".into(),
            momentum: true,
            nesterov: false,
            train_len: 1000,
            data: "clusters".into(),
        };
        assert!(auto_stacks(&key(32, 64), 16, 2));
        assert!(auto_stacks(&key(32, 64), 4, 1));
        assert!(
            !auto_stacks(&key(32, 64), 3, 2),
            "fewer than twice the workers"
        );
        assert!(!auto_stacks(&key(32, 64), 1, 1), "one cell");
        assert!(!auto_stacks(&key(64, 256), 16, 1), "a compute-bound step");
        assert!(!auto_stacks(&key(512, 64), 16, 1), "lr-step's shape");
    }

    #[test]
    fn the_stacked_forward_of_one_cell_is_the_cell_models() {
        let base = Device::flex();
        let ad = base.clone().autodiff();
        ad.seed(3);
        let spec = ModelSpec {
            hidden: vec![16],
            ..ModelSpec::default()
        };
        let model = Mlp::new(&spec, BatchNormMode::Train, 8, 3, &ad);
        let x: Vec<f32> = (0..32 * 8).map(|i| ((i * 37 % 11) as f32) / 11.0).collect();
        let xt = Tensor::<2>::from_data(TensorData::new(x.clone(), [32, 8]), &ad);
        let want = model
            .forward(xt)
            .into_data()
            .try_to_vec_as::<f32>()
            .unwrap();
        let (layers, (ow, ob)) = model.parts();
        let mut p: Vec<Tensor<3>> = Vec::new();
        for l in layers {
            let [a, b] = l.w.dims();
            p.push(l.w.reshape([1, a, b]));
            p.push(l.b.reshape([1, 1, b]));
        }
        let [a, b] = ow.dims();
        p.push(ow.reshape([1, a, b]));
        p.push(ob.reshape([1, 1, b]));
        let shape = Shape {
            layers: 1,
            batch_norm: false,
            bn_train: true,
            activation: ActivationConfig::Relu.init(&base),
            epsilon: 1e-5,
            bn_momentum: 0.1,
        };
        let x3 = Tensor::<3>::from_data(TensorData::new(x, [1, 32, 8]), &base);
        let got = forward(&p, &[], &shape, x3, false)
            .0
            .into_data()
            .try_to_vec_as::<f32>()
            .unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
    }
}
