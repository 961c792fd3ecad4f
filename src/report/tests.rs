use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;
use crate::attribute::{AnalyzeOptions, analyze_run, analyze_trace};
use crate::attribute::{Cause, OverfitVerdict};
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
                    planned_steps: 0,
                    diverged_at_step: None,
                    wall_s: 0.0,
                    error: None,
                })
            })
            .collect(),
        shard: None,
        adapter: None,
        missing_cells: Vec::new(),
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

/// `trace` with every loss from `from` on NaN (and one infinite): a run that diverged there.
fn diverge(mut t: Trace, from: usize) -> Trace {
    for s in &mut t.steps[from..] {
        s.loss = f64::NAN;
    }
    if let Some(s) = t.steps.get_mut(from + 3) {
        s.loss = f64::INFINITY;
    }
    t
}

#[test]
fn a_diverged_log_says_so_on_the_first_line_of_every_output() {
    let t = diverge(epoch_trace("div", 8, 250, 0.2, None, false, 2), 1500);
    let a = analyze_trace(&t, &AnalyzeOptions::default());
    assert_eq!(a.diverged_at, Some(1500));
    let want = "DIVERGED at step 1500 (loss NaN/inf from there on)";
    let text = text::trace("div.csv", &a, &[]);
    assert!(text.lines().next().unwrap().starts_with(want), "{text}");
    let json = trace_json("div.csv", &t, &a);
    assert!(json["headline"][0].as_str().unwrap().starts_with(want));
    assert_eq!(json["diverged_at"], 1500);
    let dir = out_dir("diverged");
    let files = write_trace_report(&dir, "div.csv", &t, &a).unwrap();
    let (_, md, _) = check_folder(&files);
    let first_item = md.lines().find(|l| l.starts_with("- ")).unwrap();
    assert!(first_item.starts_with(&format!("- {want}")), "{md}");
    // The analysis covers the finite part: the epoch starts before 1500 are still tested.
    assert!(a.names(Cause::EpochBoundary), "{:?}", a.causes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_with_diverged_cells_leads_with_each_of_them() {
    let m = manifest(&[("a", true, true), ("b", false, false)], &[1, 2]);
    let mut traces = BTreeMap::new();
    for (arm, seed) in [("a", 1), ("a", 2), ("b", 1), ("b", 2)] {
        let t = epoch_trace(arm, 4, 200, 0.0, None, true, seed);
        let t = if arm == "b" && seed == 2 {
            diverge(t, 300)
        } else {
            t
        };
        traces.insert((arm.to_string(), seed), t);
    }
    let run = analyze_run(&m, &traces, &AnalyzeOptions::default());
    let diverged = run.diverged_cells();
    assert_eq!(diverged.len(), 1);
    assert_eq!((diverged[0].arm.as_str(), diverged[0].seed), ("b", 2));
    let want = "DIVERGED at step 300 (loss NaN/inf from there on): arm b, seed 2";
    let text = text::run(&run);
    assert!(text.starts_with(want), "{text}");
    let json = run_json(&m, &run);
    assert_valid(&json);
    assert!(json["headline"][0].as_str().unwrap().starts_with(want));
    assert_eq!(json["diverged"][0]["step"], 300);
    let dir = out_dir("diverged-run");
    let files = write_run_report(&dir, &m, &run, &traces).unwrap();
    let (_, md, _) = check_folder(&files);
    let first_item = md.lines().find(|l| l.starts_with("- ")).unwrap();
    assert!(first_item.starts_with(&format!("- {want}")), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cleaning_counts_add_up_and_a_large_unusable_share_is_warned_about() {
    let mut t = epoch_trace("holes", 8, 250, 0.0, None, false, 4);
    for (i, s) in t.steps.iter_mut().enumerate() {
        match i % 10 {
            3 => s.loss = 0.0,
            7 => s.loss = f64::NAN,
            _ => {}
        }
    }
    let a = analyze_trace(&t, &AnalyzeOptions::default());
    let json = trace_json("holes.csv", &t, &a);
    let c = &json["cleaning"];
    let n = |k: &str| c[k].as_u64().unwrap();
    assert_eq!(
        n("n_kept") + n("n_nan") + n("n_inf") + n("n_nonpositive") + n("n_duplicates"),
        n("n_input"),
        "{c}"
    );
    assert_eq!((n("n_nonpositive"), n("n_kept")), (200, 1600));
    let headline = content::trace_headline(&a);
    assert!(
        headline
            .iter()
            .any(|l| l.starts_with("Warning: 20% of the losses")),
        "{headline:?}"
    );
    // A few bad rows are no news.
    let mut few = epoch_trace("few", 8, 250, 0.0, None, false, 4);
    few.steps[100].loss = f64::NAN;
    let a = analyze_trace(&few, &AnalyzeOptions::default());
    assert!(content::cleaning_warning(&a).is_none());
}

#[test]
fn a_cause_named_by_its_test_alone_says_so_beside_no_drops() {
    // Small sawtooth drops: significant together at the epoch starts, none alone.
    let t = epoch_trace("small", 16, 250, 0.05, None, false, 3);
    let a = analyze_trace(&t, &AnalyzeOptions::default());
    assert!(a.drops.is_empty(), "{:?}", a.drops);
    let f = a.finding(Cause::EpochBoundary).expect("named by the test");
    assert_eq!(f.basis(), crate::attribute::Basis::Test);
    let line = content::cause_line(f);
    assert!(
        line.contains("the test at epoch starts only; no detected drop is attributed to it"),
        "{line}"
    );
    let text = text::trace("small.csv", &a, &[]);
    assert!(text.contains("drops: none detected"), "{text}");
    assert!(text.contains(&line), "{text}");
    let json = trace_json("small.csv", &t, &a);
    assert_eq!(json["causes"][0]["basis"], "test");
}

#[test]
fn summary_counts_come_from_the_printed_drop_list() {
    let t = epoch_trace("saw", 16, 250, 0.25, Some(11), false, 3);
    let a = analyze_trace(&t, &AnalyzeOptions::default());
    assert!(a.drops.len() > 5);
    let line = content::drops_line(&a);
    let mut total = 0;
    for c in Cause::ALL {
        let n = a.drops.iter().filter(|d| d.explained_by == c).count();
        if n > 0 {
            assert!(line.contains(&format!("{n} {c}")), "{line}");
            total += n;
        }
    }
    assert_eq!(total, a.drops.len());
    // The event column agrees with the cause: an epoch_boundary drop is at an epoch start.
    for d in &a.drops {
        if d.explained_by == Cause::EpochBoundary {
            assert_eq!(d.event, Some(crate::events::EventKind::EpochStart), "{d:?}");
        }
    }
}

#[test]
fn a_single_event_has_no_zero_width_interval() {
    let t = epoch_trace("cut", 16, 250, 0.0, Some(11), false, 3);
    let a = analyze_trace(&t, &AnalyzeOptions::default());
    let lr = a.stat(crate::events::EventKind::LrDecrease).unwrap();
    assert_eq!(lr.n_tested, 1);
    let json = trace_json("cut.csv", &t, &a);
    let s = json["event_stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["event"] == "lr_decrease")
        .unwrap();
    assert!(s["median_effect_log"]["low"].is_null(), "{s}");
    let table = content::events_table("t", &a);
    let row = table.rows.iter().find(|r| r[0] == "LR decrease").unwrap();
    assert!(row[5].ends_with("(one event, no CI)"), "{row:?}");
    let f = a.finding(Cause::LrChange).expect("the cut is named");
    let first = content::evidence_text(&f.evidence[0]);
    assert!(first.contains("one event, no CI"), "{first}");
    assert!(!first.contains("95% CI"), "{first}");
}

#[test]
fn the_overfitting_table_shows_the_window_the_verdict_tested() {
    let t = epoch_trace("u", 16, 250, 0.0, None, true, 3);
    let a = analyze_trace(&t, &AnalyzeOptions::default());
    let o = &a.overfitting;
    assert_eq!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
    let w = o.window.as_ref().unwrap();
    let table = content::overfit_table("o", &[("u".into(), o)]);
    assert_eq!(table.header[5], "window tested");
    let row = &table.rows[0];
    assert_eq!(row[5], content::window_text(w));
    assert!(row[5].contains("after the best"), "{row:?}");
    assert_eq!(row[6], content::signed(w.slope_per_epoch));
    assert_eq!(row[7], content::pval(w.p_value));
    // The message quotes the same window and does not end on the note that a gap alone is
    // no overfitting: the gap was tested over the window (the log's epoch means), and widened.
    assert!(
        o.message
            .contains(&format!("epochs {}-{}", w.from_epoch, w.to_epoch)),
        "{}",
        o.message
    );
    assert!(
        !o.message.contains("alone is not overfitting"),
        "{}",
        o.message
    );
    let g = w.gap_trend.as_ref().expect("the gap is tested");
    assert!(g.widened, "{g:?}");
    assert!(o.message.contains("gap"), "{}", o.message);
    assert_eq!(row[9], content::gap_trend_text(g));
    let json = trace_json("u.csv", &t, &a);
    assert_eq!(json["overfitting"]["window"]["test"], "rise_after_best");
    assert_eq!(json["overfitting"]["window"]["from_epoch"], w.from_epoch);
    let jg = &json["overfitting"]["window"]["gap_trend"];
    assert_eq!(jg["source"], "epoch_mean");
    assert_eq!(jg["widened"], true);
    assert!(jg["p_value"].as_f64().is_some_and(|p| p < 0.05), "{jg}");
    assert_valid(&json);
}

/// `epoch_trace` as a log without an epoch column.
fn without_epochs(mut t: Trace) -> Trace {
    for s in &mut t.steps {
        s.epoch = None;
        s.batch = None;
    }
    t
}

#[test]
fn drops_recurring_without_an_epoch_column_suggest_the_epoch_length() {
    let t = without_epochs(epoch_trace("p", 10, 600, 0.25, None, false, 5));
    let a = analyze_trace(&t, &AnalyzeOptions::default());
    let [crate::attribute::Hint::RecurringDrops(h)] = a.hints.as_slice() else {
        panic!("no hint: {:?} drops at {:?}", a.hints, a.drops);
    };
    assert!(h.period.abs_diff(600) <= 3, "{h:?}");
    let line = content::hint_line(&a.hints[0]);
    assert!(
        line.contains(&format!(
            "Drops recur every {0} steps: epoch starts? Rerun with --steps-per-epoch {0}",
            h.period
        )),
        "{line}"
    );
    let json = trace_json("p.csv", &t, &a);
    assert_eq!(json["hints"][0]["kind"], "recurring_drops");
    assert_valid(&json);
    // With the epochs known there is nothing to suggest.
    let known = epoch_trace("p", 10, 600, 0.25, None, false, 5);
    assert!(
        analyze_trace(&known, &AnalyzeOptions::default())
            .hints
            .is_empty()
    );
    // Nor without periodic drops: a clean curve, and one with an LR cut and a spike.
    for t in [
        without_epochs(epoch_trace("flat", 10, 600, 0.0, None, false, 6)),
        without_epochs(epoch_trace("cut", 10, 600, 0.0, Some(4), false, 7)),
    ] {
        let a = analyze_trace(&t, &AnalyzeOptions::default());
        assert!(a.hints.is_empty(), "{:?} drops {:?}", a.hints, a.drops);
    }
}

#[test]
fn terminal_text_says_each_thing_once_in_plain_words_with_one_sign_convention() {
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
    let text = text::run(&run);
    let lines: Vec<&str> = text.lines().collect();
    let mut unique = lines.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "a line repeats:\n{text}");
    // One line per arm, naming its causes once.
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("epoch_boundary"))
            .count(),
        2,
        "the factor line and the arm line:\n{text}"
    );
    for bad in ["log|", "High", "Medium", "Low"] {
        assert!(!text.contains(bad), "{bad}:\n{text}");
    }
    for l in &lines[1..] {
        let first = l.trim_start_matches(['-', ' ']).chars().next().unwrap();
        assert!(first.is_uppercase(), "{l}");
    }
    // A drop is negative in every column that carries a sign.
    let a = &run.arms[1].cells[0].analysis;
    let t = text::trace("fixed.csv", a, &[]);
    let row = t
        .lines()
        .find(|l| l.trim_start().starts_with(&a.drops[0].step.to_string()))
        .unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert!(
        cols[1].starts_with('-') && cols[2].starts_with('-') && cols[3].starts_with('-'),
        "{row}"
    );
    let json = trace_json("fixed.csv", &traces[&("fixed set".to_string(), 1)], a);
    let d = &json["drops"][0];
    assert!(d["change_log"].as_f64().unwrap() < 0.0 && d["z"].as_f64().unwrap() < 0.0);
    let e = &json["event_stats"][0]["median_effect_log"]["estimate"];
    assert!(e.as_f64().unwrap() < 0.0);
}

#[test]
fn plots_tell_epoch_starts_from_the_loss_mark_spikes_and_keep_the_trend_down() {
    let mut t = epoch_trace("spiky", 16, 250, 0.25, None, false, 3);
    for (i, s) in t.steps.iter_mut().enumerate().skip(1700).take(200) {
        s.loss *= (-((i - 1700) as f64) / 30.0).exp().exp();
    }
    let a = analyze_trace(&t, &AnalyzeOptions::default());
    assert_eq!(a.detection.spikes.len(), 1, "{:?}", a.detection.spikes);
    let f = plots::loss_curve("loss", "spiky", &t, &a);
    let color = |label: &str| {
        f.legend
            .iter()
            .find(|e| e.label.starts_with(label))
            .unwrap_or_else(|| panic!("no legend entry {label}: {:?}", f.legend))
            .color
    };
    assert_ne!(color("epoch start"), color("per-step loss"));
    assert_eq!(color("spike (1)"), figure::okabe_ito::ORANGE);
    // No trend point between the spike's rise and its fall.
    let s = &a.detection.spikes[0];
    let trend = f
        .layers
        .iter()
        .find_map(|l| match l {
            figure::Layer::Line {
                points, width: 2, ..
            } => Some(points),
            _ => None,
        })
        .unwrap();
    assert!(
        !trend
            .iter()
            .any(|p| p.0 >= s.step as f64 && p.0 <= (s.step + s.width) as f64),
        "the trend follows the spike"
    );
}

#[test]
fn plots_say_which_seed_they_show_and_skip_an_empty_fold() {
    let m = manifest(&[("a", true, true), ("b", false, false)], &[1, 2]);
    let mut traces = BTreeMap::new();
    for (arm, seed) in [("a", 1), ("a", 2), ("b", 1), ("b", 2)] {
        traces.insert(
            (arm.to_string(), seed),
            epoch_trace(arm, 4, 200, 0.0, None, false, seed),
        );
    }
    let run = analyze_run(&m, &traces, &AnalyzeOptions::default());
    let dir = out_dir("seed-shown");
    let files = write_run_report(&dir, &m, &run, &traces).unwrap();
    let (json, _, _) = check_folder(&files);
    let plots = json["plots"].as_array().unwrap();
    let loss = plots.iter().find(|p| p["name"] == "loss-a").unwrap();
    assert!(
        loss["title"]
            .as_str()
            .unwrap()
            .contains("seed 1 shown (of 2 seeds)"),
        "{loss}"
    );
    // No arm has a within-epoch cause: the folded profile would show noise only.
    assert!(!plots.iter().any(|p| p["name"] == "folded"), "{plots:?}");
    let _ = std::fs::remove_dir_all(&dir);
    let saw = epoch_trace("saw", 8, 250, 0.25, None, false, 3);
    let j = report_of("saw-fold", &saw);
    assert!(
        j["plots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "folded")
    );
}
