//! What the watcher reports: plain data, serializable; `text` renders it.

use serde::{Deserialize, Serialize};

use crate::attribute::Cause;
use crate::detect::DropShape;
use crate::events::EventKind;

/// One confirmed event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Where the event is: the drop's first lower step, the spike's first high step, the
    /// first non-finite loss, the validation point after the best.
    pub step: u64,
    /// The step of the point that confirmed it (the delay is `at - step`). For `--once`,
    /// `step` itself: the whole log was there.
    pub at: u64,
    #[serde(flatten)]
    pub kind: AlertKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertKind {
    /// The loss turned NaN or infinite, or rose for good.
    Divergence {
        #[serde(flatten)]
        reason: DivergenceReason,
    },
    /// The loss jumped up. `episode`: several-fold and sustained (what `--fail-on spike`
    /// stops on); the batch detector also reports smaller sharp rises.
    SpikeStarted {
        /// Height over the running level, in log-loss, when confirmed.
        height_log: f64,
        episode: bool,
    },
    /// The loss came back from a spike that started at `started`.
    SpikeRecovered { started: u64, peak_log: f64 },
    /// A sudden drop, with what explains it.
    Drop {
        /// ln(before) - ln(after): positive for a drop.
        log: f64,
        rel: f64,
        z: f64,
        shape: DropShape,
        explained_by: Cause,
        /// The event it is tied to, as `investigate`'s "at event" column.
        event: Option<EventKind>,
    },
    /// Validation loss turned up: the overfitting onset, by `investigate`'s rule.
    Overfitting {
        /// The first epoch after the best one.
        epoch: u64,
        best_epoch: u64,
        best_val_loss: f64,
        val_loss: f64,
        /// Mann-Kendall p-value of the rise after the best epoch.
        p_value: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DivergenceReason {
    /// The loss is NaN or infinite.
    NonFinite,
    /// The mean log-loss over `window` points has stayed `ratio` times above its best
    /// level for `held` points.
    SustainedRise {
        ratio: f64,
        window: usize,
        held: usize,
    },
}

/// The kinds `--fail-on` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailKind {
    Divergence,
    /// A spike episode started (several-fold, sustained).
    Spike,
    /// A drop explained by nothing.
    UnexplainedDrop,
    Overfitting,
}

impl Alert {
    /// The `--fail-on` kind this alert counts as, if any.
    pub fn fail_kind(&self) -> Option<FailKind> {
        match &self.kind {
            AlertKind::Divergence { .. } => Some(FailKind::Divergence),
            AlertKind::SpikeStarted { episode: true, .. } => Some(FailKind::Spike),
            AlertKind::Drop {
                explained_by: Cause::Unexplained,
                ..
            } => Some(FailKind::UnexplainedDrop),
            AlertKind::Overfitting { .. } => Some(FailKind::Overfitting),
            _ => None,
        }
    }

    /// The kind's name in JSON and text (`drop`, `spike_started`, ...).
    pub fn name(&self) -> &'static str {
        match self.kind {
            AlertKind::Divergence { .. } => "divergence",
            AlertKind::SpikeStarted { .. } => "spike_started",
            AlertKind::SpikeRecovered { .. } => "spike_recovered",
            AlertKind::Drop { .. } => "drop",
            AlertKind::Overfitting { .. } => "overfitting",
        }
    }
}
