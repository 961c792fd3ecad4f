use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;
use crate::attribute::{AnalyzeOptions, analyze_run, analyze_trace};
use crate::manifest::{ArmInfo, CellInfo, CellStatus, Manifest, ScenarioInfo};
use crate::synth::{Difficulty, NoiseKind, SynthSpec, planted};
use crate::trace::{StepRecord, Trace, ValRecord};

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dropscope-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A synth curve cut into epochs, with a sawtooth of `saw` log-loss at each epoch start
/// (0 for none), an LR cut at `lr_cut_epoch` that lowers the loss by 0.3 log-loss, and a
/// U-shaped validation curve when `val`.
fn epoch_trace(
    name: &str,
    epochs: u64,
    spe: u64,
    saw: f64,
    lr_cut_epoch: Option<u64>,
    val: bool,
    seed: u64,
) -> Trace {
    let n = (epochs * spe) as usize;
    let s = planted(&SynthSpec {
        n,
        ..SynthSpec::new(NoiseKind::Gaussian, Difficulty::Clean, seed)
    });
    let mut t = Trace::new(name);
    for (i, &base) in s.loss.iter().enumerate() {
        let step = i as u64;
        let (e, k) = (step / spe, step % spe);
        let mut log = base.ln();
        if e > 0 {
            // Drop at the epoch start, then creep back up 60% over the epoch.
            log -= saw * (1.0 - 0.6 * k as f64 / spe as f64);
        }
        let cut = lr_cut_epoch.is_some_and(|c| e >= c);
        if cut {
            log -= 0.3;
        }
        t.steps.push(StepRecord {
            step,
            epoch: Some(e),
            batch: Some(k),
            loss: log.exp(),
            lr: Some(if cut { 0.01 } else { 0.1 }),
            batch_size: Some(32),
        });
    }
    if val {
        for e in 0..epochs {
            let x = e as f64 / epochs as f64;
            t.val.push(ValRecord {
                epoch: e,
                step: (e + 1) * spe,
                val_loss: 0.6 + 1.5 * (x - 0.6).powi(2),
                val_accuracy: None,
                train_loss_eval: None,
            });
        }
    }
    t
}

fn schema() -> Value {
    serde_json::from_str(REPORT_SCHEMA).expect("the committed schema is JSON")
}

fn assert_valid(doc: &Value) {
    if let Err(e) = schema_check::validate(&schema(), doc) {
        panic!("report.json does not follow report.schema.json: {e}");
    }
}

/// Relative link targets in Markdown: `](target)`.
fn md_links(md: &str) -> Vec<String> {
    md.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(str::to_string)
        .collect()
}

fn check_folder(files: &ReportFiles) -> (Value, String, String) {
    for p in [&files.markdown, &files.html, &files.json] {
        assert!(p.is_file(), "{} missing", p.display());
    }
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    let html = std::fs::read_to_string(&files.html).unwrap();
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&files.json).unwrap()).unwrap();
    assert_valid(&json);
    let links = md_links(&md);
    assert_eq!(links.len(), files.plots.len(), "{links:?}");
    for l in &links {
        assert!(
            !l.contains("://") && !l.starts_with('/'),
            "link {l} is not relative"
        );
        assert!(
            files.dir.join(l).is_file(),
            "report.md links {l}, which is not in the folder"
        );
    }
    for p in &files.plots {
        let bytes = std::fs::read(p).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{} is no PNG", p.display());
    }
    let lower = html.to_lowercase();
    for bad in ["src=\"http", "<script", "<link", "href=\"http", "url("] {
        assert!(
            !lower.contains(bad),
            "report.html has an external reference: {bad}"
        );
    }
    assert_eq!(lower.matches("<svg").count(), files.plots.len());
    (json, md, html)
}

#[test]
fn a_trace_report_has_every_format_and_follows_the_schema() {
    let t = epoch_trace("sawtooth", 16, 250, 0.25, Some(11), true, 3);
    let a = analyze_trace(&t, &AnalyzeOptions::default());
    let dir = out_dir("trace");
    let files = write_trace_report(&dir, "logs/sawtooth.csv", &t, &a).unwrap();
    let (json, md, _) = check_folder(&files);
    assert_eq!(json["kind"], "trace");
    assert_eq!(json["schema_version"], REPORT_SCHEMA_VERSION);
    assert!(json["causes"].as_array().is_some_and(|c| !c.is_empty()));
    assert!(json["drops"].as_array().is_some_and(|d| {
        d.iter()
            .all(|d| d["step"].is_u64() && d["explained_by"].is_string())
    }));
    assert!(json["overfitting"]["verdict"].is_string());
    assert!(
        json["plots"].as_array().is_some_and(|p| p.len() == 4),
        "{}",
        json["plots"]
    );
    // Summary first: the first section after the title is the summary.
    let summary_at = md.find("## Summary").unwrap();
    assert!(summary_at < md.find("## Evidence").unwrap());
    assert!(md.contains("epoch"), "{md}");
    // The stdout document is the file's, less the plot list.
    let mut alone = trace_json("logs/sawtooth.csv", &t, &a);
    assert_valid(&alone);
    alone["plots"] = json["plots"].clone();
    // Through the same text round trip: serde_json's default float parsing may differ
    // from the written value in the last bit.
    let reparsed: Value =
        serde_json::from_str(&serde_json::to_string_pretty(&alone).unwrap()).unwrap();
    assert!(reparsed == json, "trace_json differs from report.json");
    let _ = std::fs::remove_dir_all(&dir);
}

fn manifest(arms: &[(&str, bool, bool)], seeds: &[u64]) -> Manifest {
    Manifest {
        schema_version: 1,
        dropscope_version: "0.1.0".into(),
        burn_version: "none".into(),
        scenario: ScenarioInfo {
            name: "memorization".into(),
            description: "fresh data each epoch against a fixed training set".into(),
            path: "scenarios/memorization.toml".into(),
            source: String::new(),
        },
        device: "cpu".into(),
        seeds: seeds.to_vec(),
        factors: vec!["data.fresh_each_epoch".into()],
        arms: arms
            .iter()
            .map(|&(name, fresh, control)| ArmInfo {
                name: name.into(),
                factors: BTreeMap::from([(
                    "data.fresh_each_epoch".to_string(),
                    Value::Bool(fresh),
                )]),
                is_control: control,
            })
            .collect(),
        cells: arms
            .iter()
            .flat_map(|&(name, _, _)| {
                seeds.iter().map(move |&seed| CellInfo {
                    arm: name.into(),
                    seed,
                    dir: format!("cells/{name}/{seed}"),
                    status: CellStatus::Completed,
                    steps: 0,
                    epochs: 0,
                    diverged_at_step: None,
                    wall_s: 0.0,
                    error: None,
                })
            })
            .collect(),
        shard: None,
        started_unix: 0,
        wall_s: 0.0,
    }
}

#[test]
fn a_run_report_covers_arms_cells_and_factors() {
    let m = manifest(
        &[("fresh", true, true), ("fixed set", false, false)],
        &[1, 2],
    );
    let mut traces = BTreeMap::new();
    for seed in [1u64, 2] {
        traces.insert(
            ("fresh".to_string(), seed),
            epoch_trace("fresh", 12, 200, 0.0, None, true, seed),
        );
        traces.insert(
            ("fixed set".to_string(), seed),
            epoch_trace("fixed", 12, 200, 0.25, None, true, seed + 10),
        );
    }
    let run = analyze_run(&m, &traces, &AnalyzeOptions::default());
    let dir = out_dir("run");
    let files = write_run_report(&dir, &m, &run, &traces).unwrap();
    let (json, md, _) = check_folder(&files);
    assert_eq!(json["kind"], "run");
    let arms = json["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 2);
    for a in arms {
        assert_eq!(a["cells"].as_array().map(Vec::len), Some(2));
        assert!(a["causes"].is_array() && a["drops"].is_array() && a["overfitting"].is_object());
    }
    assert!(json["headline"].as_array().is_some_and(|h| !h.is_empty()));
    assert!(json["factors"].is_array());
    // Arm names with spaces still give plain file names.
    assert!(
        files
            .plots
            .iter()
            .any(|p| p.ends_with("loss-fixed-set.png")),
        "{:?}",
        files.plots
    );
    assert!(md.contains("## Summary"));
    assert_valid(&run_json(&m, &run));
    let _ = std::fs::remove_dir_all(&dir);
}

fn report_of(name: &str, t: &Trace) -> Value {
    let a = analyze_trace(t, &AnalyzeOptions::default());
    let dir = out_dir(name);
    let files = write_trace_report(&dir, name, t, &a).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (json, _, _) = check_folder(&files);
    let _ = std::fs::remove_dir_all(&dir);
    json
}

#[test]
fn awkward_traces_still_give_a_full_report() {
    report_of("empty", &Trace::new(""));
    let mut one = Trace::new("one");
    one.steps.push(StepRecord {
        step: 0,
        epoch: None,
        batch: None,
        loss: 1.0,
        lr: None,
        batch_size: None,
    });
    report_of("one-step", &one);
    // NaN and infinite losses, a divergence half-way, no validation data.
    let mut nan = epoch_trace("nan", 4, 100, 0.0, None, false, 5);
    for (i, s) in nan.steps.iter_mut().enumerate() {
        if i % 17 == 0 {
            s.loss = f64::NAN;
        }
        if i > 300 {
            s.loss = f64::INFINITY;
        }
    }
    let j = report_of("nan", &nan);
    assert_eq!(j["diverged"], true);
    let mut all_nan = epoch_trace("all-nan", 3, 50, 0.0, None, true, 5);
    all_nan.steps.iter_mut().for_each(|s| s.loss = f64::NAN);
    all_nan.val.iter_mut().for_each(|v| v.val_loss = f64::NAN);
    report_of("all-nan", &all_nan);
    // One epoch, zero and negative losses, a single validation point.
    let mut odd = epoch_trace("odd", 1, 400, 0.0, None, true, 6);
    odd.steps[10].loss = 0.0;
    odd.steps[20].loss = -1.0;
    report_of("one-epoch", &odd);
    // A flat loss: the y range has no width.
    let mut flat = epoch_trace("flat", 3, 100, 0.0, None, false, 7);
    flat.steps.iter_mut().for_each(|s| s.loss = 0.5);
    report_of("flat", &flat);
}

#[test]
fn a_run_with_missing_and_failed_cells_still_reports() {
    let mut m = manifest(&[("a", true, true), ("b", false, false)], &[1, 2]);
    m.cells[1].status = CellStatus::Failed;
    let mut traces = BTreeMap::new();
    traces.insert(
        ("a".to_string(), 1),
        epoch_trace("a", 3, 100, 0.0, None, false, 1),
    );
    let run = analyze_run(&m, &traces, &AnalyzeOptions::default());
    let dir = out_dir("sparse-run");
    let files = write_run_report(&dir, &m, &run, &traces).unwrap();
    let (json, _, _) = check_folder(&files);
    assert!(json["arms"][1]["overfitting"].is_null());
    let _ = std::fs::remove_dir_all(&dir);
}

fn dir_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn a_million_step_report_stays_small() {
    let n = 1_000_000usize;
    let spe = 5_000u64;
    let s = planted(&SynthSpec {
        n,
        min_gap: 20_000,
        ..SynthSpec::new(NoiseKind::StudentT3, Difficulty::Easy, 11)
    });
    let mut t = Trace::new("million");
    t.steps = s
        .steps
        .iter()
        .zip(&s.loss)
        .map(|(&step, &loss)| StepRecord {
            step,
            epoch: Some(step / spe),
            batch: Some(step % spe),
            loss,
            lr: None,
            batch_size: None,
        })
        .collect();
    let started = std::time::Instant::now();
    let a = analyze_trace(&t, &AnalyzeOptions::default());
    let analysed = started.elapsed();
    let dir = out_dir("million");
    let files = write_trace_report(&dir, "million.csv", &t, &a).unwrap();
    let html = dir_size(&files.html);
    println!(
        "1e6 steps: analysis {:.1} s, report {:.1} s, report.html {} bytes, report.json {} bytes",
        analysed.as_secs_f64(),
        (started.elapsed() - analysed).as_secs_f64(),
        html,
        dir_size(&files.json)
    );
    assert!(html < 3_000_000, "report.html is {html} bytes");
    check_folder(&files);
    let _ = std::fs::remove_dir_all(&dir);
}
