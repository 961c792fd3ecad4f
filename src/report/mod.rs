//! The report folder: `report.md` (pastes into an issue), `report.html` (one
//! self-contained file), `report.json` (machine-readable, see `report.schema.json`)
//! and the plots as PNG files next to them.
//!
//! Reads traces and analyses only; it never re-runs training, so `dropscope report DIR`
//! can rebuild a folder from saved traces.

pub(crate) mod content;
mod downsample;
mod figure;
mod html;
mod json;
mod markdown;
mod plots;
mod render;
#[cfg(test)]
mod schema_check;
#[cfg(test)]
mod tests;
pub mod text;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use crate::attribute::{FoldedProfile, RunAnalysis, TraceAnalysis};
use crate::error::InputError;
use crate::manifest::Manifest;
use crate::trace::Trace;

use content::{Doc, Plot};
use figure::Figure;
use plots::EffectSeries;

pub const REPORT_SCHEMA_VERSION: u32 = 2;

/// The JSON Schema that report.json (and `run_json`/`trace_json`) follow.
pub const REPORT_SCHEMA: &str = include_str!("report.schema.json");

/// What a report folder holds, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFiles {
    pub dir: PathBuf,
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub json: PathBuf,
    pub plots: Vec<PathBuf>,
}

/// A scenario run: the manifest, the run analysis, and every cell's trace keyed by (arm, seed).
pub fn write_run_report(
    dir: &Path,
    manifest: &Manifest,
    run: &RunAnalysis,
    traces: &BTreeMap<(String, u64), Trace>,
) -> Result<ReportFiles, InputError> {
    let mut figs: Vec<Figure> = Vec::new();
    figs.extend(plots::arms("arms", run));
    let profiles: Vec<(String, &FoldedProfile)> = run
        .arms
        .iter()
        .filter_map(|a| {
            let c = content::representative(a)?;
            Some((
                format!("{}, {}", a.name, seed_shown(a, c.seed)),
                c.analysis.profile.as_ref()?,
            ))
        })
        .collect();
    // The folded profile shows nothing but noise unless some arm has a within-epoch cause.
    let within_epoch = run.arms.iter().any(|a| {
        content::representative(a).is_some_and(|c| plots::has_within_epoch_cause(&c.analysis))
    });
    if within_epoch {
        figs.extend(plots::folded("folded", &profiles));
    }
    let series: Vec<EffectSeries<'_>> = run
        .arms
        .iter()
        .enumerate()
        .flat_map(|(i, a)| {
            a.cells.iter().map(move |c| EffectSeries {
                arm: a.name.clone(),
                color: i,
                analysis: &c.analysis,
            })
        })
        .collect();
    figs.extend(plots::effects("effects", &series));
    let mut used = Vec::new();
    for a in &run.arms {
        let Some(c) = content::representative(a) else {
            continue;
        };
        let Some(t) = traces.get(&(a.name.clone(), c.seed)) else {
            continue;
        };
        let slug = unique_slug(&a.name, &mut used);
        let label = format!("arm {}, {}", a.name, seed_shown(a, c.seed));
        figs.push(plots::loss_curve(
            &format!("loss-{slug}"),
            &label,
            t,
            &c.analysis,
        ));
        figs.extend(plots::train_val(
            &format!("val-{slug}"),
            &label,
            t,
            &c.analysis,
        ));
    }
    let (rendered, failed) = render_all(dir, figs)?;
    let mut details = content::run_details(run);
    details.extend(failed);
    let cells = manifest.cells.len();
    let doc = Doc {
        title: format!("dropscope report: scenario {}", run.scenario),
        subject: format!(
            "Scenario file {}, {} cell{} ({} arm{} × {} seed{}), device {}, dropscope {}.",
            manifest.scenario.path,
            cells,
            if cells == 1 { "" } else { "s" },
            manifest.arms.len(),
            if manifest.arms.len() == 1 { "" } else { "s" },
            manifest.seeds.len(),
            if manifest.seeds.len() == 1 { "" } else { "s" },
            manifest.device,
            manifest.dropscope_version
        ),
        headline: content::run_headline(run),
        details,
        next_steps: content::run_next_steps(run),
        tables: content::run_tables(run),
        plots: rendered,
    };
    let value = json::run(run, Some(&doc.plots));
    write_all(dir, &doc, &value)
}

/// One imported log (dropscope investigate).
pub fn write_trace_report(
    dir: &Path,
    source: &str,
    trace: &Trace,
    analysis: &TraceAnalysis,
) -> Result<ReportFiles, InputError> {
    let label = if trace.name.trim().is_empty() {
        source
    } else {
        trace.name.as_str()
    };
    let mut figs = vec![plots::loss_curve("loss", label, trace, analysis)];
    if let Some(p) = analysis
        .profile
        .as_ref()
        .filter(|_| plots::has_within_epoch_cause(analysis))
    {
        figs.extend(plots::folded("folded", &[(label.to_string(), p)]));
    }
    figs.extend(plots::train_val("val", label, trace, analysis));
    figs.extend(plots::effects(
        "effects",
        &[EffectSeries {
            arm: label.to_string(),
            color: 0,
            analysis,
        }],
    ));
    let (rendered, failed) = render_all(dir, figs)?;
    let mut details = content::trace_details(analysis);
    details.extend(failed);
    let doc = Doc {
        title: format!("dropscope report: {label}"),
        subject: format!(
            "Source {source}: {}{}.",
            content::trace_size(analysis, trace.steps.len()),
            if trace.val.is_empty() {
                ", no validation data".to_string()
            } else {
                format!(", {} validation points", trace.val.len())
            }
        ),
        headline: content::trace_headline(analysis),
        details,
        next_steps: content::trace_next_steps(analysis),
        tables: content::trace_tables(analysis),
        plots: rendered,
    };
    let value = json::trace(source, analysis, Some(&doc.plots));
    write_all(dir, &doc, &value)
}

/// The JSON document alone (for `--format json` on stdout), same schema as report.json
/// (without the `plots` list, which only a written folder has).
pub fn run_json(_manifest: &Manifest, run: &RunAnalysis) -> serde_json::Value {
    json::run(run, None)
}

pub fn trace_json(source: &str, _trace: &Trace, analysis: &TraceAnalysis) -> serde_json::Value {
    json::trace(source, analysis, None)
}

/// Which seed a per-arm plot shows: only one is drawn, and the reader must know it.
fn seed_shown(arm: &crate::attribute::ArmAnalysis, seed: u64) -> String {
    if arm.cells.len() > 1 {
        format!("seed {seed} shown (of {} seeds)", arm.cells.len())
    } else {
        format!("seed {seed}")
    }
}

/// A file-name-safe form of an arm name, distinct from those already `used`.
fn unique_slug(name: &str, used: &mut Vec<String>) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if s.is_empty() {
        s = "arm".into();
    }
    let mut out = s.clone();
    let mut i = 2;
    while used.contains(&out) {
        out = format!("{s}-{i}");
        i += 1;
    }
    used.push(out.clone());
    out
}

/// Draws every figure as PNG (in `dir`) and SVG (for the HTML). A plot that panics in
/// plotters is left out and said so, rather than costing the whole report; returns the
/// plots drawn and one sentence per plot left out.
fn render_all(dir: &Path, figs: Vec<Figure>) -> Result<(Vec<Plot>, Vec<String>), InputError> {
    std::fs::create_dir_all(dir).map_err(|e| InputError::io(dir, &e))?;
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for figure in figs {
        let png = format!("{}.png", figure.name);
        let path = dir.join(&png);
        let drawn = catch_unwind(AssertUnwindSafe(|| {
            render::png(&figure, &path)?;
            render::svg(&figure)
        }));
        match drawn {
            Ok(Ok(svg)) => out.push(Plot { figure, png, svg }),
            Ok(Err(e)) => return Err(InputError::new(&path, format!("cannot draw the plot: {e}"))),
            Err(_) => {
                let _ = std::fs::remove_file(&path);
                failed.push(format!(
                    "The plot {} could not be drawn and is left out.",
                    figure.name
                ));
            }
        }
    }
    Ok((out, failed))
}

fn write_all(dir: &Path, doc: &Doc, value: &serde_json::Value) -> Result<ReportFiles, InputError> {
    let write = |name: &str, text: String| -> Result<PathBuf, InputError> {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| InputError::io(&p, &e))?;
        Ok(p)
    };
    let json_text = serde_json::to_string_pretty(value)
        .map_err(|e| InputError::new(dir.join("report.json"), e.to_string()))?;
    Ok(ReportFiles {
        dir: dir.to_path_buf(),
        markdown: write("report.md", markdown::render(doc))?,
        html: write("report.html", html::render(doc))?,
        json: write("report.json", json_text + "\n")?,
        plots: doc.plots.iter().map(|p| dir.join(&p.png)).collect(),
    })
}
