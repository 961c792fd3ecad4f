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
