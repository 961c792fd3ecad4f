//! `watch --once`: the events of a complete log, read off the same analysis `investigate`
//! prints, so the two cannot disagree.

use super::alert::{Alert, AlertKind, DivergenceReason};
use crate::attribute::{OverfitVerdict, TraceAnalysis};
use crate::trace::Trace;

/// Every event of an analysed trace, in step order: the divergence, the spike episodes
/// (started and recovered) and the detector's sharp rises outside them, the explained
/// drops, the overfitting onset. `at` is the event's own step: the whole log was there, there was no delay.
pub fn alerts(trace: &Trace, a: &TraceAnalysis) -> Vec<Alert> {
    let alert = |step: u64, kind: AlertKind| Alert {
        step,
        at: step,
        kind,
    };
    let mut out = Vec::new();
    if let Some(step) = a.diverged_at {
        let reason = DivergenceReason::NonFinite;
        out.push(alert(step, AlertKind::Divergence { reason }));
    }
    // As `investigate` lists them: the spike episodes, and the detector's sharp rises
    // outside them (not episodes: `--fail-on spike` does not stop on those).
    for e in &a.spike_episodes {
        let height_log = e.height_log;
        let started = AlertKind::SpikeStarted {
            height_log,
            episode: true,
        };
        out.push(alert(e.start, started));
        let recovered = AlertKind::SpikeRecovered {
            started: e.start,
            peak_log: height_log,
        };
        out.push(alert(e.recovered, recovered));
    }
    let inside = |step: u64| a.spike_episodes.iter().any(|e| e.covers(step, 0));
    for s in a.detection.spikes.iter().filter(|s| !inside(s.step)) {
        let kind = AlertKind::SpikeStarted {
            height_log: s.height_log,
            episode: false,
        };
        out.push(alert(s.step, kind));
    }
    for d in &a.drops {
        let kind = AlertKind::Drop {
            log: d.log,
            rel: d.rel,
            z: d.z,
            shape: d.shape,
            explained_by: d.explained_by,
            event: d.event,
        };
        out.push(alert(d.step, kind));
    }
    out.extend(overfitting(trace, a).map(|(step, kind)| alert(step, kind)));
    out.sort_by_key(|a| a.step);
    out
}

fn overfitting(trace: &Trace, a: &TraceAnalysis) -> Option<(u64, AlertKind)> {
    let o = &a.overfitting;
    if o.verdict != OverfitVerdict::Overfitting {
        return None;
    }
    let epoch = o.started_epoch?;
    let step = trace.val.iter().find(|v| v.epoch == epoch)?.step;
    let kind = AlertKind::Overfitting {
        epoch,
        best_epoch: o.best_epoch?,
        best_val_loss: o.best_val_loss?,
        val_loss: o.final_val_loss?,
        p_value: o.window.as_ref().map_or(f64::NAN, |w| w.p_value),
    };
    Some((step, kind))
}
