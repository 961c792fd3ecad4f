//! report.json: built field by field rather than by deriving from the analysis types,
//! so the published layout (`report.schema.json`) changes only when this file does.
//! Non-finite numbers become `null`: JSON has no NaN.

use serde_json::{Value, json};

use crate::attribute::arms::{ArmAnalysis, FactorEffect, level_text};
use crate::attribute::{
    CauseFinding, EventStat, EventTest, ExplainedDrop, Hint, Interval, Overfitting, RunAnalysis,
    TraceAnalysis,
};
use crate::events::EventKind;

use super::REPORT_SCHEMA_VERSION;
use super::content::{self, Plot};

fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn opt_num(x: Option<f64>) -> Value {
    x.map_or(Value::Null, num)
}

/// Enums as their serde names (snake_case), so JSON and the Rust types agree.
fn name<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn interval(i: &Interval) -> Value {
    json!({"estimate": num(i.estimate), "low": num(i.low), "high": num(i.high), "level": num(i.level)})
}

fn cause(a: &TraceAnalysis, f: &CauseFinding) -> Value {
    json!({
        "cause": f.cause.as_str(),
        "confidence": num(f.confidence),
        "level": name(&f.level),
        "effect_log": f.effect_log.as_ref().map_or(Value::Null, interval),
        "basis": name(&f.basis()),
        "drops_explained": content::drops_explained(a, f.cause),
        "evidence": content::cause_evidence(a, f),
        "evidence_data": f.evidence,
        "advice": f.cause.advice(),
    })
}

/// Signed as every change in the report: negative for a drop.
fn drop(d: &ExplainedDrop) -> Value {
    json!({
        "step": d.step,
        "change_log": num(-d.log),
        "rel_change": num(-d.rel),
        "z": num(d.z),
        "shape": name(&d.shape),
        "explained_by": d.explained_by.as_str(),
        "event": d.event.as_ref().map_or(Value::Null, name),
        "minor": d.minor,
    })
}

fn event_stat(s: &EventStat) -> Value {
    json!({
        "event": name(&s.kind),
        "n_events": s.n_events,
        "n_tested": s.n_tested,
        "n_significant_drops": s.n_significant_drops,
        "n_significant_rises": s.n_significant_rises,
        "median_effect_log": interval(&s.median_effect_log),
        "p_drop": num(s.p_drop),
        "p_rise": num(s.p_rise),
        "p_drop_adjusted": num(s.p_drop_adjusted),
        "p_rise_adjusted": num(s.p_rise_adjusted),
        "null_model": s.null,
        "effects": s.effects.iter().map(|e| json!({"step": e.step, "jump_log": num(e.jump_log), "z": num(e.z)})).collect::<Vec<_>>(),
    })
}

/// The detector's sharp rises (`kind` "point", as found) and the spike episodes
/// (`kind` "episode": start, peak, recovered step; a point spike inside an episode is
/// part of it).
fn spikes(a: &TraceAnalysis) -> Vec<Value> {
    let inside = |step: u64| a.spike_episodes.iter().any(|e| e.covers(step, 0));
    let mut v: Vec<(u64, Value)> = a
        .detection
        .spikes
        .iter()
        .filter(|s| !inside(s.step))
        .map(|s| {
            (
                s.step,
                json!({
                    "kind": "point", "step": s.step, "height_log": num(s.height_log),
                    "z": num(s.z), "width": s.width
                }),
            )
        })
        .collect();
    for e in &a.spike_episodes {
        let z = a
            .detection
            .spikes
            .iter()
            .find(|s| e.covers(s.step, 0))
            .map_or(Value::Null, |s| num(s.z));
        v.push((
            e.start,
            json!({
                "kind": "episode", "step": e.start, "height_log": num(e.height_log), "z": z,
                "width": e.width, "start": e.start, "peak": e.peak, "recovered": e.recovered,
                "message": content::spike_episode_line(e),
            }),
        ));
    }
    v.sort_by_key(|x| x.0);
    v.into_iter().map(|x| x.1).collect()
}

fn event_test(t: &EventTest) -> Value {
    json!({
        "event": name(&t.kind),
        "step": t.step,
        "ordinal": t.ordinal,
        "jump_log": num(t.jump_log),
        "z": num(t.z),
        "direction": name(&t.direction),
        "p": num(t.p),
        "p_adjusted": num(t.p_adjusted),
        "acted": t.acted,
    })
}

fn overfitting(o: &Overfitting) -> Value {
    json!({
        "verdict": name(&o.verdict),
        "started_epoch": o.started_epoch,
        "best_epoch": o.best_epoch,
        "best_val_loss": opt_num(o.best_val_loss),
        "final_val_loss": opt_num(o.final_val_loss),
        "window": o.window.as_ref().map_or(Value::Null, |w| json!({
            "test": name(&w.test),
            "from_epoch": w.from_epoch,
            "to_epoch": w.to_epoch,
            "points": w.points,
            "slope_per_epoch": num(w.slope_per_epoch),
            "p_value": num(w.p_value),
            "serial_correlation": opt_num(w.serial_correlation),
            "gap_trend": w.gap_trend.as_ref().map_or(Value::Null, |g| json!({
                "source": name(&g.source),
                "slope_per_epoch": num(g.slope_per_epoch),
                "p_value": num(g.p_value),
                "serial_correlation": num(g.serial_correlation),
                "widened": g.widened,
            })),
        })),
        "gap": opt_num(o.gap),
        "message": o.message,
    })
}

/// A hint as data with the sentence a reader sees.
fn hint(h: &Hint) -> Value {
    let mut v = serde_json::to_value(h).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("message".into(), json!(content::hint_line(h)));
        if let Some(p) = m.get("p_value").and_then(Value::as_f64) {
            m.insert("p_value".into(), num(p));
        }
    }
    v
}

fn signatures(a: &TraceAnalysis) -> Value {
    json!({
        "profile": a.profile.as_ref().map_or(Value::Null, |p| json!({
            "steps_per_epoch": p.steps_per_epoch,
            "epochs": p.epochs,
            "points": p.points.iter().map(|q| json!({
                "position": q.position, "mean": num(q.mean), "low": num(q.low), "high": num(q.high)
            })).collect::<Vec<_>>(),
        })),
        "data_order": a.data_order.as_ref().map_or(Value::Null, |d| json!({
            "f": num(d.f), "p_value": num(d.p_value), "eta_squared": num(d.eta_squared),
            "split_half_r": num(d.split_half_r), "epochs": d.epochs,
        })),
        "running_mean": a.running_mean.as_ref().map_or(Value::Null, |r| json!({
            "slope": num(r.slope), "r_squared": num(r.r_squared), "epochs": r.epochs,
        })),
        "last_batch": a.last_batch.as_ref().map_or(Value::Null, |l| json!({
            "median_z": num(l.median_z), "median_effect_log": num(l.median_effect_log),
            "p_value": num(l.p_value), "epochs": l.epochs,
            "spread_ratio": num(l.spread_ratio), "spread_p": num(l.spread_p),
            "spread_positions": l.spread_positions,
        })),
        "within_epoch_period_steps": a.within_epoch_period,
    })
}

/// Everything about one trace; the trace report puts these fields at its top level.
fn analysis(a: &TraceAnalysis) -> serde_json::Map<String, Value> {
    let counts: serde_json::Map<String, Value> = EventKind::all()
        .into_iter()
        .filter_map(|k| {
            let n = a.events.count(k);
            (n > 0).then(|| (name(&k).as_str().unwrap_or_default().to_string(), json!(n)))
        })
        .collect();
    let c = &a.detection.cleaning;
    let v = json!({
        "name": a.name,
        "n_steps": a.n_steps,
        "steps_per_epoch": opt_num(a.steps_per_epoch),
        "diverged": a.diverged,
        "diverged_at": a.diverged_at,
        "log_mode": a.log_mode.as_ref().map_or(Value::Null, name),
        "noise_sigma": num(a.detection.noise_sigma),
        "event_counts": counts,
        "causes": content::ranked_causes(a).into_iter().map(|f| cause(a, f)).collect::<Vec<_>>(),
        "drops": a.drops.iter().map(drop).collect::<Vec<_>>(),
        "spikes": spikes(a),
        "event_stats": a.event_stats.iter().map(event_stat).collect::<Vec<_>>(),
        "event_tests": a.event_tests.iter().map(event_test).collect::<Vec<_>>(),
        "log_units": {"interval_steps": a.units.interval_steps, "aggregated": a.units.aggregated},
        "signatures": signatures(a),
        "overfitting": overfitting(&a.overfitting),
        "hints": a.hints.iter().map(hint).collect::<Vec<_>>(),
        "cleaning": {
            "n_input": c.n_input, "n_kept": c.n_kept, "n_nan": c.n_nan, "n_inf": c.n_inf,
            "n_nonpositive": c.n_nonpositive, "n_duplicates": c.n_duplicates,
            "unsorted": c.unsorted, "n_gaps": c.n_gaps,
        },
    });
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

fn plots(plots: &[Plot]) -> Value {
    plots
        .iter()
        .map(|p| json!({"name": p.figure.name, "file": p.png, "title": p.figure.title, "caption": p.figure.caption}))
        .collect()
}

pub fn trace(source: &str, a: &TraceAnalysis, rendered: Option<&[Plot]>) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("schema_version".into(), json!(REPORT_SCHEMA_VERSION));
    m.insert("kind".into(), json!("trace"));
    m.insert("dropscope_version".into(), json!(env!("CARGO_PKG_VERSION")));
    m.insert("source".into(), json!(source));
    m.insert("headline".into(), json!(content::trace_headline(a)));
    m.insert("summary".into(), json!(content::trace_summary(a)));
    m.insert("next_steps".into(), json!(content::trace_next_steps(a)));
    m.extend(analysis(a));
    if let Some(p) = rendered {
        m.insert("plots".into(), plots(p));
    }
    Value::Object(m)
}

fn factor(f: &FactorEffect) -> Value {
    json!({
        "factor": f.factor,
        "cause": f.cause.as_str(),
        "statistic": f.statistic,
        "levels": f.levels.iter().map(|l| json!({
            "level": l.level,
            "label": level_text(&l.level),
            "is_control": l.is_control,
            "per_seed": l.per_seed.iter().map(|&v| num(v)).collect::<Vec<_>>(),
            "mean": num(l.mean),
            "seeds_named": l.seeds_named,
            "seeds": l.seeds,
        })).collect::<Vec<_>>(),
        "difference": interval(&f.difference),
        "explains": f.explains,
        "statement": content::factor_statement(f),
    })
}

fn arm(a: &ArmAnalysis) -> Value {
    let rep = content::representative(a);
    json!({
        "name": a.name,
        "factors": a.factors,
        "is_control": a.is_control,
        "seeds": a.cells.iter().map(|c| c.seed).collect::<Vec<_>>(),
        "consistent_causes": a.consistent_causes().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "cause_counts": a.causes.iter().map(|c| json!({
            "cause": c.cause.as_str(), "seeds_named": c.seeds_named, "seeds": c.seeds,
            "mean_confidence": num(c.mean_confidence),
        })).collect::<Vec<_>>(),
        "representative_seed": rep.map(|c| c.seed),
        "causes": rep.map_or(Vec::new(), |c| content::ranked_causes(&c.analysis).into_iter().map(|f| cause(&c.analysis, f)).collect()),
        "drops": rep.map_or(Vec::new(), |c| c.analysis.drops.iter().map(drop).collect()),
        "overfitting": rep.map_or(Value::Null, |c| overfitting(&c.analysis.overfitting)),
        "cells": a.cells.iter().map(|c| json!({
            "seed": c.seed,
            "status": name(&c.status),
            "analysis": Value::Object(analysis(&c.analysis)),
        })).collect::<Vec<_>>(),
    })
}

pub fn run(run: &RunAnalysis, rendered: Option<&[Plot]>) -> Value {
    let mut v = json!({
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "run",
        "dropscope_version": env!("CARGO_PKG_VERSION"),
        "scenario": {"name": run.scenario, "description": run.description},
        "summary": content::run_summary(run),
        "next_steps": content::run_next_steps(run),
        "headline": content::run_headline(run),
        "diverged": run.diverged_cells().iter().map(|d| json!({
            "arm": d.arm, "seed": d.seed, "step": d.step,
        })).collect::<Vec<_>>(),
        "factors": run.factors.iter().map(factor).collect::<Vec<_>>(),
        "arms": run.arms.iter().map(arm).collect::<Vec<_>>(),
    });
    if let (Some(p), Value::Object(m)) = (rendered, &mut v) {
        m.insert("plots".into(), plots(p));
    }
    v
}
