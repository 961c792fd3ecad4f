//! Training throughput: optimizer steps per second on the benchmark MLP.
//!
//! The model is the one the issue fixes for comparison with PyTorch: 64 inputs,
//! one hidden layer with batch norm, 10 classes, SGD with momentum. Data are
//! generated on the host and uploaded once, as the harness does.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::DeviceChoice;
use super::model::Mlp;
use crate::error::InputError;
use crate::scenario::{BatchNormMode, ModelSpec};

#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRow {
    pub device: String,
    pub batch: usize,
    pub hidden: usize,
    pub steps: usize,
    pub steps_per_s: f64,
}

/// Times `steps` optimizer steps after `warmup` untimed ones.
///
/// The loss of every step is kept on the device and read once at the end, as the
/// harness reads an epoch's losses, so the figure includes that transfer.
pub fn train_throughput(
    device: DeviceChoice,
    batch: usize,
    hidden: usize,
    warmup: usize,
    steps: usize,
) -> ThroughputRow {
    let base = device.device();
    let ad = base.clone().autodiff();
    ad.seed(0);
    let (inputs, classes, pool) = (64, 10, 4096.max(batch));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x: Vec<f32> = (0..pool * inputs).map(|_| rng.random::<f32>()).collect();
    let y: Vec<i64> = (0..pool).map(|i| (i % classes) as i64).collect();
    let x_all = Tensor::<2>::from_data(TensorData::new(x, [pool, inputs]), &ad);
    let y_all = Tensor::<1, Int>::from_data(TensorData::new(y, [pool]), &ad);
    let spec = ModelSpec {
        hidden: vec![hidden],
        batch_norm: true,
        ..ModelSpec::default()
    };
    let mut model = Mlp::new(&spec, BatchNormMode::Train, inputs, classes, &ad);
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
        .init();
    let ce = CrossEntropyLossConfig::new().init(&ad);
    let batches: Vec<Tensor<1, Int>> = (0..16)
        .map(|b| {
            let ids: Vec<i64> = (0..batch)
                .map(|i| ((b * batch + i) % pool) as i64)
                .collect();
            Tensor::from_data(TensorData::new(ids, [batch]), &ad)
        })
        .collect();
    let mut run = |n: usize, model: Mlp| -> Mlp {
        let mut model = model;
        let mut losses = Vec::with_capacity(n);
        for s in 0..n {
            let ids = batches[s % batches.len()].clone();
            let logits = model.forward(x_all.clone().select(0, ids.clone()));
            let loss = ce.forward(logits, y_all.clone().select(0, ids));
            losses.push(loss.clone().without_autodiff());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(0.01, model, grads);
        }
        if !losses.is_empty() {
            let _ = Tensor::cat(losses, 0).into_data();
        }
        model
    };
    model = run(warmup, model);
    let t = Instant::now();
    model = run(steps, model);
    let secs = t.elapsed().as_secs_f64();
    drop(model.valid());
    ThroughputRow {
        device: device.resolve().to_string(),
        batch,
        hidden,
        steps,
        steps_per_s: steps as f64 / secs,
    }
}

/// The benchmark's sizes: (batch, hidden).
pub const SIZES: [(usize, usize); 3] = [(32, 64), (64, 256), (256, 1024)];

/// A step count per size that takes a second or two on a 2-core machine.
pub fn default_steps(batch: usize, hidden: usize) -> usize {
    match batch * hidden {
        n if n <= 4096 => 3000,
        n if n <= 32768 => 1500,
        _ => 300,
    }
}

/// One row of `bench sweep`: `cells` benchmark cells trained `jobs` at once through the
/// worker processes of `run --jobs`, timed from the first start to the last exit.
#[derive(Debug, Clone, Serialize)]
pub struct SweepRow {
    pub device: String,
    /// `cell` (one worker process per cell) or `stacked` (all cells as one stack in this
    /// process).
    pub engine: String,
    pub batch: usize,
    pub hidden: usize,
    pub cells: usize,
    pub jobs: usize,
    pub threads_per_job: usize,
    pub steps_per_cell: usize,
    pub wall_s: f64,
    /// Optimizer steps of all cells per second of wall time (process start-up included).
    pub cell_steps_per_s: f64,
    /// The same figure for one cell alone (the first row of each size).
    pub vs_one_cell: f64,
    /// The largest peak resident memory of one worker (Linux), in bytes.
    pub peak_rss_bytes: Option<u64>,
}

/// `BATCHxHIDDEN`, e.g. `256x1024`.
pub fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (b, h) = s
        .trim()
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("'{s}' is not BATCHxHIDDEN (e.g. 64x256)"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| (1..=1 << 16).contains(&n))
            .ok_or_else(|| format!("'{v}' in '{s}' is not a size from 1 to 65536"))
    };
    Ok((parse(b)?, parse(h)?))
}

/// Steps per cell of `bench sweep`: a few hundred, fewer where a step is slow, so that a
/// sweep of 1, 4 and 16 cells at three sizes takes about a minute on 2 cores.
pub fn sweep_steps(batch: usize, hidden: usize) -> usize {
    match batch * hidden {
        n if n <= 4096 => 600,
        n if n <= 32768 => 300,
        n if n <= 262_144 => 100,
        _ => 20,
    }
}

/// The worker side of `bench sweep`: one benchmark cell, its time reported to the parent.
pub fn sweep_worker(device: DeviceChoice, batch: usize, hidden: usize, steps: usize) -> i32 {
    let _parent = super::parallel::watch_parent();
    let row = train_throughput(device, batch, hidden, 0, steps);
    super::parallel::send(&super::parallel::WorkerMsg::Bench {
        steps: steps as u64,
        secs: steps as f64 / row.steps_per_s,
        peak_rss_bytes: super::parallel::peak_rss_bytes(),
    });
    0
}

fn sweep_once(
    device: DeviceChoice,
    (batch, hidden): (usize, usize),
    cells: usize,
    jobs: usize,
    steps: usize,
) -> Result<SweepRow, InputError> {
    use super::parallel::{Pool, PoolEvent, WorkerMsg, threads_per_job};
    let jobs = jobs.min(cells).max(1);
    let threads = threads_per_job(jobs);
    let mut pool = Pool::new(threads)?;
    let args: Vec<std::ffi::OsString> = [
        "bench".to_string(),
        "--device".into(),
        device.to_string(),
        "--batch".into(),
        batch.to_string(),
        "--hidden".into(),
        hidden.to_string(),
        "--steps".into(),
        steps.to_string(),
    ]
    .into_iter()
    .map(Into::into)
    .collect();
    let failed = |what: String| InputError::new("dropscope bench sweep", what);
    let t = Instant::now();
    let mut started = 0;
    let mut reported = vec![false; cells];
    let mut peak: Option<u64> = None;
    loop {
        while pool.running() < jobs && started < cells {
            pool.spawn(started, &args)
                .map_err(|e| failed(format!("cannot start a worker process: {e}")))?;
            started += 1;
        }
        let Some((id, event)) = pool.wait_next() else {
            break;
        };
        match event {
            PoolEvent::Msg(WorkerMsg::Bench { peak_rss_bytes, .. }) => {
                reported[id] = true;
                peak = peak.max(peak_rss_bytes);
            }
            PoolEvent::Msg(_) => {}
            PoolEvent::Exited(status) if !reported[id] => {
                return Err(failed(format!(
                    "benchmark cell {id} at ({batch}, {hidden}) stopped ({status}) without a result"
                )));
            }
            PoolEvent::Exited(_) => {}
        }
    }
    let wall = t.elapsed().as_secs_f64();
    Ok(SweepRow {
        device: device.resolve().to_string(),
        engine: "cell".into(),
        batch,
        hidden,
        cells,
        jobs,
        threads_per_job: threads,
        steps_per_cell: steps,
        wall_s: wall,
        cell_steps_per_s: (cells * steps) as f64 / wall,
        vs_one_cell: 1.0,
        peak_rss_bytes: peak,
    })
}

/// `bench sweep --engine stacked`: `cells` benchmark cells as one stack in this process.
fn sweep_stacked(
    device: DeviceChoice,
    (batch, hidden): (usize, usize),
    cells: usize,
    steps: usize,
) -> SweepRow {
    let wall = super::stacked::bench_stack(&device.device(), cells, batch, hidden, steps);
    SweepRow {
        device: device.resolve().to_string(),
        engine: "stacked".into(),
        batch,
        hidden,
        cells,
        jobs: 1,
        threads_per_job: std::thread::available_parallelism().map_or(1, |n| n.get()),
        steps_per_cell: steps,
        wall_s: wall,
        cell_steps_per_s: (cells * steps) as f64 / wall,
        vs_one_cell: 1.0,
        peak_rss_bytes: super::parallel::peak_rss_bytes(),
    }
}

/// `bench sweep`: at each size, one cell alone, then each count in `cells`, `jobs` at once
/// (the cell engine) or as one stack (the stacked engine).
pub fn sweep(
    device: DeviceChoice,
    sizes: &[(usize, usize)],
    cells: &[usize],
    jobs: usize,
    steps: Option<usize>,
    engine: super::Engine,
) -> Result<Vec<SweepRow>, InputError> {
    let stacked = engine == super::Engine::Stacked;
    let once = |size, c, steps| {
        if stacked {
            Ok(sweep_stacked(device, size, c, steps))
        } else {
            sweep_once(device, size, c, jobs, steps)
        }
    };
    let mut rows = Vec::new();
    for &(batch, hidden) in sizes {
        let steps = steps.unwrap_or_else(|| sweep_steps(batch, hidden));
        let one = once((batch, hidden), 1, steps)?;
        let base = one.cell_steps_per_s;
        rows.push(one);
        for &c in cells.iter().filter(|&&c| c > 1) {
            let mut r = once((batch, hidden), c, steps)?;
            r.vs_one_cell = r.cell_steps_per_s / base;
            rows.push(r);
        }
    }
    Ok(rows)
}

/// The sweep as a Markdown table.
pub fn sweep_table(rows: &[SweepRow]) -> String {
    let mut out = String::from(
        "| device | engine | batch | hidden | cells | jobs × threads | steps/cell | wall s | cell-steps/s | × one cell | peak RSS per worker |\n\
         |---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} × {} | {} | {:.2} | {:.0} | {:.2}× | {} |\n",
            r.device,
            r.engine,
            r.batch,
            r.hidden,
            r.cells,
            r.jobs,
            r.threads_per_job,
            r.steps_per_cell,
            r.wall_s,
            r.cell_steps_per_s,
            r.vs_one_cell,
            r.peak_rss_bytes
                .map_or_else(|| "-".into(), |b| format!("{} MiB", b >> 20)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_batch_x_hidden() {
        assert_eq!(parse_size("256x1024"), Ok((256, 1024)));
        assert_eq!(parse_size(" 32X64 "), Ok((32, 64)));
        assert!(parse_size("256").is_err());
        assert!(parse_size("0x64").is_err());
        assert!(parse_size("32x1000000").is_err());
    }
}
