//! The model under test: an MLP of linear (inner-product) layers, optionally with
//! batch norm and dropout.

use burn::module::Module;
use burn::nn::activation::{Activation, ActivationConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::scenario::{ActivationKind, BatchNormMode, ModelSpec};

/// One hidden layer's initial values (see [`Mlp::parts`]).
pub struct LayerParts {
    pub w: Tensor<2>,
    pub b: Tensor<1>,
    pub bn: Option<[Tensor<1>; 4]>,
}

#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    norms: Vec<BatchNorm>,
    activation: Activation,
    dropout: Dropout,
    output: Linear,
}

impl Mlp {
    /// Builds the model on `device`; the caller seeds the device first for reproducible weights.
    pub fn new(
        spec: &ModelSpec,
        bn_mode: BatchNormMode,
        inputs: usize,
        classes: usize,
        device: &Device,
    ) -> Self {
        let mut hidden = Vec::new();
        let mut norms = Vec::new();
        let mut width = inputs;
        for &h in &spec.hidden {
            hidden.push(LinearConfig::new(width, h).init(device));
            if spec.batch_norm {
                let mut bn = BatchNormConfig::new(h).init(device);
                if bn_mode == BatchNormMode::Eval {
                    // Frozen batch norm: running statistics in the forward pass, while its
                    // affine parameters still train.
                    bn.training = bn.training.with_value(false);
                }
                norms.push(bn);
            }
            width = h;
        }
        let activation = match spec.activation {
            ActivationKind::Relu => ActivationConfig::Relu,
            ActivationKind::Gelu => ActivationConfig::Gelu,
            ActivationKind::Tanh => ActivationConfig::Tanh,
        }
        .init(device);
        Mlp {
            hidden,
            norms,
            activation,
            dropout: DropoutConfig::new(spec.dropout).init(),
            output: LinearConfig::new(width, classes).init(device),
        }
    }

    /// The initial values the stacked engine copies, on the plain device: per hidden
    /// layer `(weight [in, out], bias [out], batch norm (gamma, beta, running mean,
    /// running var) if any)`, then the output layer's `(weight, bias)`.
    pub fn parts(&self) -> (Vec<LayerParts>, (Tensor<2>, Tensor<1>)) {
        let linear = |l: &Linear| {
            // Parameters initialize lazily, on first read, from the device's random
            // stream: read them in the order the forward pass does (weight, then bias).
            let w = l.weight.val().inner();
            let b = l.bias.as_ref().map(|b| b.val().inner());
            let out = w.dims()[1];
            let b = b.unwrap_or_else(|| Tensor::zeros([out], &w.device()));
            (w, b)
        };
        let layers = self
            .hidden
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let (w, b) = linear(l);
                let bn = self.norms.get(i).map(|n| {
                    [
                        n.gamma.val().inner(),
                        n.beta.val().inner(),
                        n.running_mean.value().inner(),
                        n.running_var.value().inner(),
                    ]
                });
                LayerParts { w, b, bn }
            })
            .collect();
        (layers, linear(&self.output))
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut x = x;
        for (i, layer) in self.hidden.iter().enumerate() {
            x = layer.forward(x);
            if let Some(bn) = self.norms.get(i) {
                x = bn.forward(x);
            }
            x = self.dropout.forward(self.activation.forward(x));
        }
        self.output.forward(x)
    }
}
