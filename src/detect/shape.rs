//! What confirmed shifts are: spikes (a sharp rise), the falls back after them, drops that
//! stay down (steps) and drops that partly come back (sawtooth).

use super::jump::shared_slope;
use super::prepare::Prepared;
use super::reach::Reach;
use super::select::{Change, best_fit};
use super::{DetectConfig, DropShape, LossDrop, Spike};

/// Whether a rise is sharp: significant with only `cfg.spike_window` points after it.
pub(crate) fn is_sharp(
    p: &Prepared,
    c: &Change,
    prev: usize,
    reach: &Reach,
    cfg: &DetectConfig,
) -> bool {
    let next = (c.at + cfg.spike_window).min(p.len());
    let short = DetectConfig {
        confirm_windows: Vec::new(),
        ..cfg.clone()
    };
    best_fit(p, c.at, false, (prev, next), reach, &short).is_some_and(|f| f.z >= cfg.z_threshold)
}

/// A spike measured on the raw log-loss: its height above the level before, its width
/// (steps until back below half the height, capped), and the index where it got there.
struct SpikeShape {
    height: f64,
    width: u64,
    back: Option<usize>,
}

fn spike_shape(p: &Prepared, at: usize, base: f64, cfg: &DetectConfig) -> SpikeShape {
    // A median of three, so one stray point does not set the peak.
    let med3 = |i: usize| {
        let (a, b, c) = (
            p.raw(i.saturating_sub(1)),
            p.raw(i),
            p.raw((i + 1).min(p.len() - 1)),
        );
        a.min(b).max(a.max(b).min(c))
    };
    let peak = (at..(at + cfg.spike_window).min(p.len()))
        .map(med3)
        .fold(f64::NEG_INFINITY, f64::max);
    let height = (peak - base).max(0.0);
    const BLOCK: usize = 5;
    let start = p.steps()[at];
    let mut i = at;
    while i < p.len() {
        let step = p.steps()[i];
        if step - start >= cfg.spike_max_width {
            break;
        }
        let end = (i + BLOCK).min(p.len());
        let mean = (i..end).map(|j| p.raw(j)).sum::<f64>() / (end - i) as f64;
        if mean < base + height / 2.0 {
            return SpikeShape {
                height,
                width: step - start,
                back: Some(i),
            };
        }
        i = end;
    }
    let last = p.steps().last().copied().unwrap_or(start);
    SpikeShape {
        height,
        width: (last - start).min(cfg.spike_max_width),
        back: None,
    }
}

/// The fall back of a spike that no detected drop accounts for (it came down gradually),
/// reported where the loss got back below half the spike's height. A gradual fall has no
/// jump of its own to test; it undoes the rise, so it carries the rise's z, negated.
fn recovery_at(p: &Prepared, back: usize, (base, height): (f64, f64), spike_z: f64) -> LossDrop {
    let z = -spike_z;
    let before = (base + height + p.center()).exp();
    let after = (base + p.center()).exp();
    LossDrop {
        step: p.steps()[back],
        index: back,
        before,
        after,
        abs: before - after,
        rel: (before - after) / before,
        log: height,
        z,
        shape: DropShape::Recovery,
        recovered_fraction: 0.0,
    }
}

/// How much of a drop has come back by the end of its stretch (up to the next drop): the
/// shift measured late, against the shift measured just after the drop.
fn recovered_fraction(
    p: &Prepared,
    c: &Change,
    prev: usize,
    next_drop: usize,
    cfg: &DetectConfig,
) -> f64 {
    let l = prev.max(c.at.saturating_sub(cfg.max_window));
    let reach = next_drop.min(c.at + cfg.max_window).min(p.len()) - c.at;
    let probe = cfg.recovery_probe.min(reach);
    if probe < 8 || reach < 2 * probe {
        return 0.0;
    }
    // No curvature here: the right side holds the recovery itself, which would pass for
    // curvature and be taken out.
    let early = shared_slope(p, c.at, (l, c.at), (c.at, c.at + probe), None);
    let late = shared_slope(p, c.at, (l, c.at), (c.at + reach / 2, c.at + reach), None);
    match (early, late) {
        (Some(e), Some(lt)) if e.jump < 0.0 => (1.0 - lt.jump / e.jump).clamp(0.0, 1.0),
        _ => 0.0,
    }
}

/// Splits confirmed changes into drops (with shapes) and spikes.
pub(crate) fn classify(
    p: &Prepared,
    changes: &[Change],
    reach: &Reach,
    cfg: &DetectConfig,
) -> (Vec<LossDrop>, Vec<Spike>) {
    let mut drops = Vec::new();
    let mut spikes = Vec::new();
    // The spike a run of falls may be coming back from: its step and the height not yet
    // accounted for by falls.
    let mut open: Option<(u64, f64)> = None;
    // Spikes whose fall back no detected drop covers: (back index, base, height, spike z).
    let mut unmatched: Vec<(usize, f64, f64, f64)> = Vec::new();
    for (k, c) in changes.iter().enumerate() {
        let prev = if k > 0 { changes[k - 1].at } else { 0 };
        let step = p.steps()[c.at];
        if !c.down {
            open = None;
            if is_sharp(p, c, prev, reach, cfg) {
                let s = spike_shape(p, c.at, c.fit.before, cfg);
                spikes.push(Spike {
                    step,
                    index: c.at,
                    height_log: s.height,
                    z: c.fit.z,
                    width: s.width,
                });
                let next_drop_near = changes[k + 1..]
                    .first()
                    .is_some_and(|d| d.down && p.steps()[d.at] - step <= cfg.spike_max_width);
                if let (Some(back), false) = (s.back, next_drop_near) {
                    unmatched.push((back, c.fit.before, s.height, c.fit.z));
                }
                open = Some((step, s.height));
            }
            continue;
        }
        let size = -c.fit.jump;
        let recovery = match open {
            // Falls within reach of a spike that bring the loss back to about where it was
            // (not far below) are the spike ending, not progress.
            Some((s0, left)) if step - s0 <= cfg.spike_max_width && size <= 1.5 * left => {
                open = Some((s0, left - size));
                true
            }
            _ => {
                open = None;
                false
            }
        };
        let next_drop = changes[k + 1..]
            .iter()
            .find(|d| d.down)
            .map_or(p.len(), |d| d.at);
        let recovered = if recovery {
            0.0
        } else {
            recovered_fraction(p, c, prev, next_drop, cfg)
        };
        let shape = if recovery {
            DropShape::Recovery
        } else if recovered >= cfg.sawtooth_min_recovery {
            DropShape::Sawtooth
        } else {
            DropShape::Step
        };
        let before = (c.fit.before + p.center()).exp();
        let after = (c.fit.after + p.center()).exp();
        drops.push(LossDrop {
            step,
            index: c.at,
            before,
            after,
            abs: before - after,
            rel: (before - after) / before,
            log: size,
            z: c.fit.z,
            shape,
            recovered_fraction: recovered,
        });
    }
    for (back, base, height, z) in unmatched {
        drops.push(recovery_at(p, back, (base, height), z));
    }
    drops.sort_by_key(|d| d.index);
    (drops, spikes)
}
