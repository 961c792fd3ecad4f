//! The report's plots, as [`Figure`]s built from traces and analyses.
//!
//! Every builder copes with empty, NaN-ridden or one-point input: a plot with nothing
//! to show is left out (None) or says so in its notes, never a panic.

use crate::attribute::{Cause, FoldedProfile, OverfitVerdict, RunAnalysis, TraceAnalysis};
use crate::detect::DropShape;
use crate::events::EventKind;
use crate::trace::Trace;

use super::downsample::{COLUMNS, envelope, interpolate, quantiles, thin_line};
use super::figure::{Dash, Figure, Layer, Sample, Shape, okabe_ito as oi};

/// A loss range whose ends differ by this factor or more is drawn on a log axis.
const LOG_RATIO: f64 = 10.0;
/// More epoch lines than this would paint the plot grey.
const MAX_EPOCH_LINES: usize = 60;
const MAX_EVENT_LINES: usize = 150;
/// A recovery drop this many steps after a spike is its fall (the detector's own
/// `spike_max_width` default).
const SPIKE_FALL_WITHIN: u64 = 500;

/// A non-empty, finite range: a single value or nothing widens to something drawable.
fn span(lo: f64, hi: f64) -> (f64, f64) {
    match (lo.is_finite(), hi.is_finite()) {
        (true, true) if hi > lo => (lo, hi),
        (true, true) => (lo - 0.5 - lo.abs() * 0.05, lo + 0.5 + lo.abs() * 0.05),
        _ => (0.0, 1.0),
    }
}

/// The y axis for loss-like values: `lo..hi` padded, on a log scale when it is wide
/// and positive.
fn y_axis(lo: f64, hi: f64) -> ((f64, f64), bool) {
    if lo.is_finite() && hi.is_finite() && lo > 0.0 && hi / lo >= LOG_RATIO {
        return ((lo / 1.15, hi * 1.15), true);
    }
    let (lo, hi) = span(lo, hi);
    let pad = (hi - lo) * 0.05;
    ((lo - pad, hi + pad), false)
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        })
}

fn step_range(trace: &Trace) -> (f64, f64) {
    let (lo, hi) = min_max(trace.steps.iter().map(|s| s.step as f64));
    span(lo, hi)
}

fn loss_label(log: bool) -> String {
    if log { "loss (log scale)" } else { "loss" }.to_string()
}

/// Plot 1: the raw loss (its per-column envelope when long), the detector's trend,
/// events as vertical lines, and detected drops as markers from the analysis.
pub fn loss_curve(stem: &str, label: &str, trace: &Trace, a: &TraceAnalysis) -> Figure {
    let mut f = Figure::new(stem, format!("Training loss: {label}"));
    f.x_label = "optimizer step".into();
    f.x_is_steps = true;
    f.x_range = step_range(trace);

    let mut finite: Vec<f64> = trace
        .steps
        .iter()
        .map(|s| s.loss)
        .filter(|v| v.is_finite())
        .collect();
    // The trend is drawn without the points inside a spike: the local fits between a
    // spike's rise and its fall follow it up, and a trend line that climbs with every
    // spike hides the level the drops are measured against.
    let spans = spike_spans(a);
    let in_spike = |step: u64| spans.iter().any(|&(lo, hi)| step + 1 >= lo && step <= hi);
    let trend: Vec<(f64, f64)> = a
        .detection
        .trend
        .iter()
        .filter(|t| t.value.is_finite() && !in_spike(t.step))
        .map(|t| (t.step as f64, t.value))
        .collect();
    // The raw range without its rarest outliers, so one exploding step does not flatten
    // the curve; the trend keeps the early high losses in view.
    let q = quantiles(&mut finite, &[0.001, 0.999]);
    let (tlo, thi) = min_max(trend.iter().map(|p| p.1));
    let (mut lo, hi) = (q[0].min(tlo), q[1].max(thi));
    if lo <= 0.0 {
        // A log axis needs positive values; the smallest positive one is the floor.
        let pos = min_max(finite.iter().copied().filter(|&v| v > 0.0)).0;
        if pos.is_finite()
            && hi / pos >= LOG_RATIO
            && finite.iter().filter(|&&v| v <= 0.0).count() * 100 < finite.len()
        {
            lo = pos;
        }
    }
    let (yr, log) = y_axis(lo, hi);
    f.y_range = yr;
    f.y_log = log;
    f.y_label = loss_label(log);

    event_lines(&mut f, a);

    let raw = trace.steps.iter().filter(|s| s.loss.is_finite());
    if trace.steps.len() > 2 * COLUMNS {
        let (x, lo, hi) = envelope(
            raw.map(|s| (s.step as f64, s.loss, s.loss)),
            f.x_range,
            COLUMNS,
        );
        f.layers.push(Layer::Band {
            x,
            lo,
            hi,
            color: oi::GREY,
            opacity: 0.35,
        });
        f.legend(
            "per-step loss (min–max per pixel)",
            oi::GREY,
            Sample::Band(0.35),
        );
    } else {
        let mut pts: Vec<(f64, f64)> = raw.map(|s| (s.step as f64, s.loss)).collect();
        pts.sort_by(|p, q| p.0.total_cmp(&q.0));
        f.layers.push(Layer::Line {
            points: pts,
            color: oi::GREY,
            width: 1,
            opacity: 0.6,
            dash: Dash::Solid,
        });
        f.legend("per-step loss", oi::GREY, Sample::Line(Dash::Solid, 1));
    }
    if !trend.is_empty() {
        f.layers.push(Layer::Line {
            points: thin_line(&trend, f.x_range, COLUMNS),
            color: oi::BLUE,
            width: 2,
            opacity: 1.0,
            dash: Dash::Solid,
        });
        f.legend(
            if spans.is_empty() {
                "trend (detector's local fit)"
            } else {
                "trend (detector's local fit, spikes left out)"
            },
            oi::BLUE,
            Sample::Line(Dash::Solid, 2),
        );
    }
    drop_markers(&mut f, a);
    spike_markers(&mut f, trace, a);
    let n_drops = a.detection.drops.len();
    f.caption = format!(
        "Training loss of {label} per optimizer step{}, the detector's trend (blue), {n_drops} detected drop{} (triangles pointing down, the bar spans the drop), spikes (triangles pointing up), and the events tested (vertical lines).",
        if trace.steps.len() > 2 * COLUMNS {
            " (grey band: min–max of each pixel column)"
        } else {
            " (grey)"
        },
        if n_drops == 1 { "" } else { "s" },
    );
    if trace.steps.iter().all(|s| !s.loss.is_finite()) {
        f.notes.push("no finite loss value to draw".into());
    }
    f
}

fn event_lines(f: &mut Figure, a: &TraceAnalysis) {
    let styles = [
        // Dotted sky blue, so epoch starts never share the grey of the per-step loss.
        (
            EventKind::EpochStart,
            oi::SKY_BLUE,
            1,
            Dash::Dotted,
            "epoch start",
        ),
        (
            EventKind::LrDecrease,
            oi::GREEN,
            2,
            Dash::Dashed,
            "LR decrease",
        ),
        (
            EventKind::WarmRestart,
            oi::ORANGE,
            2,
            Dash::LongDashed,
            "warm restart",
        ),
        (
            EventKind::LrIncrease,
            oi::PURPLE,
            2,
            Dash::Dashed,
            "LR increase",
        ),
        (
            EventKind::OptimizerReset,
            oi::BLACK,
            2,
            Dash::Dotted,
            "optimizer reset",
        ),
    ];
    for (kind, color, width, dash, label) in styles {
        let xs: Vec<f64> = a.events.of(kind).map(|e| e.step as f64).collect();
        if xs.is_empty() {
            continue;
        }
        let cap = if kind == EventKind::EpochStart {
            MAX_EPOCH_LINES
        } else {
            MAX_EVENT_LINES
        };
        if xs.len() > cap {
            f.notes.push(format!(
                "{} {label}s: too dense to draw as lines{}",
                xs.len(),
                match (kind, a.steps_per_epoch) {
                    (EventKind::EpochStart, Some(spe)) => format!(" (one every {spe:.0} steps)"),
                    _ => String::new(),
                }
            ));
            continue;
        }
        f.layers.push(Layer::VLines {
            xs,
            color,
            width,
            dash,
        });
        f.legend(label, color, Sample::Line(dash, width));
    }
}

fn drop_markers(f: &mut Figure, a: &TraceAnalysis) {
    let cause_at = |step: u64| {
        a.drops
            .iter()
            .find(|d| d.step == step)
            .map(|d| d.explained_by)
    };
    for explained in [true, false] {
        let drops: Vec<_> = a
            .detection
            .drops
            .iter()
            .filter(|d| d.before.is_finite() && d.after.is_finite())
            .filter(|d| {
                (cause_at(d.step).unwrap_or(Cause::Unexplained) != Cause::Unexplained) == explained
            })
            .collect();
        if drops.is_empty() {
            continue;
        }
        let color = if explained { oi::VERMILLION } else { oi::BLACK };
        f.layers.push(Layer::Segments {
            segments: drops
                .iter()
                .map(|d| ((d.step as f64, d.before), (d.step as f64, d.after)))
                .collect(),
            color,
            width: 2,
        });
        f.layers.push(Layer::Markers {
            points: drops.iter().map(|d| (d.step as f64, d.before)).collect(),
            color,
            shape: Shape::DownTriangle,
            size: 5,
        });
        let what = if explained {
            "explained"
        } else {
            "unexplained"
        };
        f.legend(
            format!("detected drop, {what} ({})", drops.len()),
            color,
            Sample::Marker(Shape::DownTriangle),
        );
    }
}

/// Steps each spike holds the loss up: from its rise to the fall the detector found after
/// it (a `recovery` drop), or to twice its half-height width when it found none.
fn spike_spans(a: &TraceAnalysis) -> Vec<(u64, u64)> {
    a.detection
        .spikes
        .iter()
        .map(|s| {
            let fall = a
                .detection
                .drops
                .iter()
                .filter(|d| d.shape == DropShape::Recovery && d.step > s.step)
                .map(|d| d.step)
                .min()
                .filter(|&f| f <= s.step + SPIKE_FALL_WITHIN);
            (s.step, fall.unwrap_or(s.step + 2 * s.width.max(1)))
        })
        .collect()
}

/// Spikes as triangles pointing up at their highest logged loss, with a legend entry: a
/// spike is not a drop, but the fall after it is, and a reader must see both.
fn spike_markers(f: &mut Figure, trace: &Trace, a: &TraceAnalysis) {
    let peak = |from: u64, to: u64| {
        trace
            .steps
            .iter()
            .filter(|s| s.step >= from && s.step <= to && s.loss.is_finite())
            .map(|s| (s.step as f64, s.loss))
            .max_by(|x, y| x.1.total_cmp(&y.1))
    };
    let points: Vec<(f64, f64)> = a
        .detection
        .spikes
        .iter()
        .filter_map(|s| peak(s.step, s.step + s.width.max(1)))
        .collect();
    if points.is_empty() {
        return;
    }
    f.legend(
        format!("spike ({})", points.len()),
        oi::ORANGE,
        Sample::Marker(Shape::UpTriangle),
    );
    f.layers.push(Layer::Markers {
        points,
        color: oi::ORANGE,
        shape: Shape::UpTriangle,
        size: 5,
    });
}

/// Whether a within-epoch cause was named: only then does the folded profile show
/// anything but noise around zero.
pub fn has_within_epoch_cause(a: &TraceAnalysis) -> bool {
    [
        Cause::EpochBoundary,
        Cause::RunningMeanArtifact,
        Cause::DataOrder,
        Cause::LastBatch,
    ]
    .into_iter()
    .any(|c| a.names(c))
}

/// Plot 2: the epoch-folded profile, one mean line and 95% band per arm (or trace).
pub fn folded(stem: &str, profiles: &[(String, &FoldedProfile)]) -> Option<Figure> {
    let profiles: Vec<&(String, &FoldedProfile)> =
        profiles.iter().filter(|p| !p.1.points.is_empty()).collect();
    if profiles.is_empty() {
        return None;
    }
    let mut f = Figure::new(stem, "Loss within the epoch, folded over epochs");
    f.x_label = "position in epoch (optimizer steps since the epoch began)".into();
    f.y_label = "deviation from epoch mean (log-loss)".into();
    f.x_is_steps = true;
    let max_len = profiles
        .iter()
        .map(|p| p.1.steps_per_epoch)
        .max()
        .unwrap_or(1);
    f.x_range = span(0.0, max_len.saturating_sub(1) as f64);
    let (lo, hi) = min_max(
        profiles
            .iter()
            .flat_map(|p| p.1.points.iter().flat_map(|q| [q.low, q.high, q.mean])),
    );
    let (lo, hi) = span(lo, hi);
    let pad = (hi - lo) * 0.05;
    f.y_range = (lo - pad, hi + pad);
    f.layers.push(Layer::HLine {
        y: 0.0,
        color: oi::BLACK,
        dash: Dash::Dotted,
    });
    for (i, (label, p)) in profiles.iter().enumerate() {
        let color = oi::series(i);
        let pts = p.points.iter().map(|q| (q.position as f64, q.low, q.high));
        let (x, blo, bhi) = envelope(pts, f.x_range, COLUMNS.min(p.points.len().max(1)));
        f.layers.push(Layer::Band {
            x,
            lo: blo,
            hi: bhi,
            color,
            opacity: 0.2,
        });
        let line: Vec<(f64, f64)> = p
            .points
            .iter()
            .map(|q| (q.position as f64, q.mean))
            .collect();
        f.layers.push(Layer::Line {
            points: thin_line(&line, f.x_range, COLUMNS),
            color,
            // Long profiles are jagged; a thin line keeps the band readable beneath.
            width: if p.points.len() > 100 { 1 } else { 2 },
            opacity: 1.0,
            dash: Dash::Solid,
        });
        f.legend(
            format!("{label} ({} epochs)", p.epochs),
            color,
            Sample::Line(Dash::Solid, 2),
        );
    }
    f.notes
        .push("line: mean over epochs (first epoch left out); band: its 95% interval".into());
    f.caption = "Log-loss against the position within the epoch, each epoch centred on its own mean: a drop at position 0 is an epoch-boundary effect, a repeating shape is data order, a 1/k decay is a running mean.".into();
    Some(f)
}

/// An arm's legend label and each seed's trend as (step, loss).
type ArmTrends = (String, Vec<Vec<(f64, f64)>>);

/// Plot 3: every arm on the same axes, its seeds' trends as a min–max band around
/// their median.
pub fn arms(stem: &str, run: &RunAnalysis) -> Option<Figure> {
    let per_arm: Vec<ArmTrends> = run
        .arms
        .iter()
        .map(|arm| {
            let trends = arm
                .cells
                .iter()
                .map(|c| {
                    c.analysis
                        .detection
                        .trend
                        .iter()
                        .filter(|t| t.value.is_finite())
                        .map(|t| (t.step as f64, t.value))
                        .collect::<Vec<_>>()
                })
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>();
            let label = format!(
                "{}{} ({} seed{})",
                arm.name,
                if arm.is_control { ", control" } else { "" },
                trends.len(),
                if trends.len() == 1 { "" } else { "s" }
            );
            (label, trends)
        })
        .filter(|(_, t)| !t.is_empty())
        .collect();
    if per_arm.is_empty() {
        return None;
    }
    let mut f = Figure::new(stem, format!("Arms compared: {}", run.scenario));
    f.x_label = "optimizer step".into();
    f.x_is_steps = true;
    let all = || per_arm.iter().flat_map(|(_, t)| t.iter().flatten());
    let (x0, x1) = min_max(all().map(|p| p.0));
    f.x_range = span(x0, x1);
    let (lo, hi) = min_max(all().map(|p| p.1));
    let (yr, log) = y_axis(lo, hi);
    f.y_range = yr;
    f.y_log = log;
    f.y_label = loss_label(log);
    let grid: Vec<f64> = (0..COLUMNS)
        .map(|i| f.x_range.0 + (f.x_range.1 - f.x_range.0) * i as f64 / (COLUMNS - 1) as f64)
        .collect();
    for (i, (label, trends)) in per_arm.iter().enumerate() {
        let color = oi::series(i);
        let (mut bx, mut blo, mut bhi, mut line) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for &x in &grid {
            let mut v: Vec<f64> = trends.iter().filter_map(|t| interpolate(t, x)).collect();
            if v.is_empty() {
                continue;
            }
            let q = quantiles(&mut v, &[0.0, 0.5, 1.0]);
            bx.push(x);
            blo.push(q[0]);
            bhi.push(q[2]);
            line.push((x, q[1]));
        }
        if trends.len() > 1 {
            f.layers.push(Layer::Band {
                x: bx,
                lo: blo,
                hi: bhi,
                color,
                opacity: 0.25,
            });
        }
        f.layers.push(Layer::Line {
            points: line,
            color,
            width: 2,
            opacity: 1.0,
            dash: Dash::Solid,
        });
        f.legend(label.clone(), color, Sample::Line(Dash::Solid, 2));
    }
    f.notes
        .push("line: median across seeds of each seed's trend; band: min–max across seeds".into());
    f.caption = "Each arm's loss trend on the same axes: the line is the median over seeds, the band spans the seeds (min to max).".into();
    Some(f)
}

/// Plot 4: train and validation loss per epoch, the best epoch marked, the verdict in
/// the title. None without validation points.
pub fn train_val(stem: &str, label: &str, trace: &Trace, a: &TraceAnalysis) -> Option<Figure> {
    let mut val: Vec<_> = trace
        .val
        .iter()
        .filter(|v| v.val_loss.is_finite())
        .collect();
    if val.is_empty() {
        return None;
    }
    val.sort_by_key(|v| (v.epoch, v.step));
    let o = &a.overfitting;
    let verdict = match o.verdict {
        OverfitVerdict::Overfitting => match o.started_epoch {
            Some(e) => format!("overfitting since epoch {e}"),
            None => "overfitting".into(),
        },
        OverfitVerdict::NotOverfitting => "not overfitting (validation loss still falling)".into(),
        OverfitVerdict::Plateau if o.window.as_ref().is_some_and(|w| w.gap_trend.is_some()) => {
            "not overfitting (validation loss rose with training loss)".into()
        }
        OverfitVerdict::Plateau => "not overfitting (validation loss flat)".into(),
        OverfitVerdict::Unknown => "too few epochs to judge overfitting".into(),
    };
    let mut f = Figure::new(stem, format!("{label}: {verdict}"));
    f.x_label = "epoch".into();

    // The training loss of an epoch: the mean of its finite step losses, found by the
    // validation steps that bound it (the log need not have an epoch column).
    let mut steps: Vec<(u64, f64)> = trace
        .steps
        .iter()
        .filter(|s| s.loss.is_finite())
        .map(|s| (s.step, s.loss))
        .collect();
    steps.sort_by_key(|s| s.0);
    let mut prefix = vec![0.0];
    for s in &steps {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + s.1);
    }
    let mut train = Vec::new();
    let mut prev = 0u64;
    for v in &val {
        let (i, j) = (
            steps.partition_point(|s| s.0 < prev),
            steps.partition_point(|s| s.0 < v.step),
        );
        if j > i {
            train.push((v.epoch as f64, (prefix[j] - prefix[i]) / (j - i) as f64));
        }
        prev = v.step;
    }
    let val_pts: Vec<(f64, f64)> = val.iter().map(|v| (v.epoch as f64, v.val_loss)).collect();
    let eval_pts: Vec<(f64, f64)> = val
        .iter()
        .filter_map(|v| {
            v.train_loss_eval
                .filter(|t| t.is_finite())
                .map(|t| (v.epoch as f64, t))
        })
        .collect();

    let (x0, x1) = min_max(val_pts.iter().map(|p| p.0));
    f.x_range = {
        let (a, b) = span(x0, x1);
        (a - 0.3, b + 0.3)
    };
    let (lo, hi) = min_max(val_pts.iter().chain(&train).chain(&eval_pts).map(|p| p.1));
    let (yr, log) = y_axis(lo, hi);
    f.y_range = yr;
    f.y_log = log;
    f.y_label = loss_label(log);

    let line = |pts: Vec<(f64, f64)>, color, dash, name: &str, f: &mut Figure| {
        if pts.is_empty() {
            return;
        }
        f.layers.push(Layer::Line {
            points: pts.clone(),
            color,
            width: 2,
            opacity: 1.0,
            dash,
        });
        f.layers.push(Layer::Markers {
            points: pts,
            color,
            shape: Shape::Circle,
            size: 3,
        });
        f.legend(name, color, Sample::Line(dash, 2));
    };
    line(
        train,
        oi::BLUE,
        Dash::Solid,
        "train (mean of step losses)",
        &mut f,
    );
    line(
        eval_pts,
        oi::SKY_BLUE,
        Dash::Dashed,
        "train (eval mode)",
        &mut f,
    );
    line(val_pts, oi::VERMILLION, Dash::Solid, "validation", &mut f);
    // Drawn last so the validation line's own markers do not cover it.
    if let (Some(e), Some(l)) = (o.best_epoch, o.best_val_loss) {
        f.layers.push(Layer::VLines {
            xs: vec![e as f64],
            color: oi::BLACK,
            width: 1,
            dash: Dash::Dashed,
        });
        f.layers.push(Layer::Markers {
            points: vec![(e as f64, l)],
            color: oi::BLACK,
            shape: Shape::Diamond,
            size: 7,
        });
        f.legend(
            format!("best epoch {e}: keep this checkpoint"),
            oi::BLACK,
            Sample::Marker(Shape::Diamond),
        );
    }
    f.caption = format!(
        "Training and validation loss of {label} per epoch; the dashed line marks the epoch of lowest validation loss. {}",
        o.message
    );
    Some(f)
}

/// One point series of the effect plot: a trace, coloured by its arm.
pub struct EffectSeries<'a> {
    pub arm: String,
    pub color: usize,
    pub analysis: &'a TraceAnalysis,
}

/// Plot 5: the median jump at each event type with its 95% interval, per arm (one
/// point per seed).
pub fn effects(stem: &str, series: &[EffectSeries<'_>]) -> Option<Figure> {
    let kinds: Vec<EventKind> = EventKind::all()
        .into_iter()
        .filter(|&k| series.iter().any(|s| s.analysis.stat(k).is_some()))
        .collect();
    if kinds.is_empty() {
        return None;
    }
    let mut f = Figure::new(stem, "Effect at each event type");
    f.x_label = "event type".into();
    f.y_label = "jump in log-loss (median, 95% CI)".into();
    f.x_categories = kinds.iter().map(|k| k.label().to_string()).collect();
    f.x_range = (-0.5, kinds.len() as f64 - 0.5);
    f.layers.push(Layer::HLine {
        y: 0.0,
        color: oi::BLACK,
        dash: Dash::Dotted,
    });
    let slot = 0.7 / series.len().max(1) as f64;
    let mut ys = vec![0.0];
    for (i, s) in series.iter().enumerate() {
        let color = oi::series(s.color);
        let (mut pts, mut segs) = (Vec::new(), Vec::new());
        for (k, &kind) in kinds.iter().enumerate() {
            let Some(st) = s.analysis.stat(kind) else {
                continue;
            };
            let m = st.median_effect_log;
            if !m.estimate.is_finite() {
                continue;
            }
            let x = k as f64 - 0.35 + (i as f64 + 0.5) * slot;
            pts.push((x, m.estimate));
            ys.push(m.estimate);
            if m.low.is_finite() && m.high.is_finite() {
                let cap = (slot * 0.12).min(0.04);
                segs.push(((x, m.low), (x, m.high)));
                segs.push(((x - cap, m.low), (x + cap, m.low)));
                segs.push(((x - cap, m.high), (x + cap, m.high)));
                ys.extend([m.low, m.high]);
            }
        }
        f.layers.push(Layer::Segments {
            segments: segs,
            color,
            width: 2,
        });
        f.layers.push(Layer::Markers {
            points: pts,
            color,
            shape: Shape::Circle,
            size: 4,
        });
        if !f.legend.iter().any(|e| e.label == s.arm) {
            f.legend(s.arm.clone(), color, Sample::Marker(Shape::Circle));
        }
    }
    let (lo, hi) = min_max(ys.into_iter());
    let (lo, hi) = span(lo, hi);
    let pad = (hi - lo) * 0.08;
    f.y_range = (lo - pad, hi + pad);
    f.notes.push("below 0: the loss drops at the event".into());
    // A single event has no interval: its point stands alone, and the note says why.
    if series.iter().any(|s| {
        s.analysis
            .event_stats
            .iter()
            .any(|st| !st.median_effect_log.has_bounds())
    }) {
        f.notes
            .push("a point without a bar: one event, no CI".into());
    }
    if series.len() > f.legend.len() {
        f.notes.push("one point per seed".into());
    }
    f.caption = "Median jump of the log-loss at each event type with its 95% bootstrap interval: an interval below zero means the loss drops at those events.".into();
    Some(f)
}
