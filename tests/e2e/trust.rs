//! Answers a user can trust at first sight (issue 13): a divergence is the first line of
//! every output, unusable logs are refused, verdicts quote what they tested, the epoch
//! length is suggested when drops recur, and the terminal says each thing once.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

/// Uniform noise in [-0.5, 0.5) from a fixed LCG, so logs are the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

/// `n` steps of a decaying loss with ±10% noise; `sawtooth` drops it by 22% every that
/// many steps (then it creeps 70% back); `f` rewrites each (step, loss).
fn write_log(p: &Path, n: u64, sawtooth: Option<u64>, f: impl Fn(u64, f64) -> f64) {
    let mut rng = Lcg(99);
    let mut s = String::from("step,loss\n");
    for step in 0..n {
        let mut level = 2.0 * (-(step as f64) / 4000.0).exp() + 0.3;
        if let Some(p) = sawtooth.filter(|&p| step >= p) {
            let k = (step % p) as f64 / p as f64;
            level *= 1.0 - 0.22 * (1.0 - 0.7 * k);
        }
        let loss = f(step, level * (1.0 + 0.2 * rng.next()));
        s.push_str(&format!("{step},{loss}\n"));
    }
    std::fs::write(p, s).unwrap();
}

fn json_of(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    let o = run(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn first_summary_item(md: &str) -> &str {
    md.lines().find(|l| l.starts_with("- ")).unwrap_or("")
}

#[test]
fn investigate_leads_every_output_with_a_divergence() {
    let d = temp_dir("trust-diverged-log");
    let log = d.join("log.csv");
    write_log(&log, 3000, Some(300), |step, v| {
        if step >= 2500 { f64::NAN } else { v }
    });
    let want = "DIVERGED at step 2500 (loss NaN/inf from there on)";
    let rep = d.join("rep");
    let o = run(&[
        "investigate",
        log.to_str().unwrap(),
        "--steps-per-epoch",
        "300",
        "--report",
        rep.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "divergence is a result: {}", stderr(&o));
    let text = stdout(&o);
    assert!(text.lines().next().unwrap().starts_with(want), "{text}");
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    assert!(
        first_summary_item(&md).starts_with(&format!("- {want}")),
        "{md}"
    );
    let v = json_of(&["investigate", log.to_str().unwrap()]);
    assert!(
        v["headline"][0].as_str().unwrap().starts_with(want),
        "{}",
        v["headline"]
    );
    assert_eq!(v["diverged_at"], 2500);
    // The analysis covers the finite part.
    assert_eq!(v["cleaning"]["n_kept"], 2500);
}

#[test]
fn run_leads_every_output_with_each_diverged_cell() {
    let d = temp_dir("trust-diverged-run");
    let s = tiny_scenario(&d, "[train.lr]\nbase = 1e9\n");
    let out = d.join("out");
    let o = run_ok(s.to_str().unwrap(), &out, &[]);
    let text = stdout(&o);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("DIVERGED at step ")
            && first.contains("(loss NaN/inf from there on): arm "),
        "{text}"
    );
    let md = std::fs::read_to_string(out.join("report/report.md")).unwrap();
    assert!(
        first_summary_item(&md).starts_with("- DIVERGED at step "),
        "{md}"
    );
    let o = run_ok(s.to_str().unwrap(), &d.join("out2"), &["--format", "json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        v["headline"][0]
            .as_str()
            .unwrap()
            .starts_with("DIVERGED at step "),
        "{}",
        v["headline"]
    );
    assert!(!v["diverged"].as_array().unwrap().is_empty());
}

#[test]
fn investigate_refuses_a_log_without_usable_losses() {
    let d = temp_dir("trust-unusable");
    let want =
        "dropscope analyses log(loss); for a log-likelihood or a reward, pass --negate / --offset";
    let negative = d.join("loglik.csv");
    write_log(&negative, 3000, None, |_, v| -v);
    let nan = d.join("nan.csv");
    write_log(&nan, 500, None, |_, _| f64::NAN);
    let short = d.join("short.csv");
    std::fs::write(&short, "step,loss\n0,1.0\n1,0.9\n2,0.8\n").unwrap();
    for (p, what) in [
        (&negative, "no positive finite losses"),
        (&nan, "no positive finite losses"),
        (&short, "only 3 positive finite losses"),
    ] {
        let o = run(&["investigate", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{}: {}", p.display(), stdout(&o));
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(what) && err.contains(want), "{err}");
    }
    // Negated, the log-likelihood is a loss like any other.
    let v = json_of(&["investigate", negative.to_str().unwrap(), "--negate"]);
    assert_eq!(v["cleaning"]["n_kept"], 3000);
    // An offset lifts a reward-like series above zero.
    let v = json_of(&[
        "investigate",
        negative.to_str().unwrap(),
        "--negate",
        "--offset",
        "-0.1",
    ]);
    assert_eq!(v["cleaning"]["n_kept"], 3000);
}

#[test]
fn investigate_counts_add_up_and_warn_when_many_losses_were_dropped() {
    let d = temp_dir("trust-dropped");
    let log = d.join("zeros.csv");
    write_log(
        &log,
        3000,
        None,
        |step, v| if step % 5 == 0 { 0.0 } else { v },
    );
    let v = json_of(&["investigate", log.to_str().unwrap()]);
    let c = &v["cleaning"];
    let n = |k: &str| c[k].as_u64().unwrap();
    assert_eq!(
        n("n_kept") + n("n_nan") + n("n_inf") + n("n_nonpositive") + n("n_duplicates"),
        n("n_input"),
        "{c}"
    );
    assert_eq!(n("n_nonpositive"), 600);
    let o = run(&["investigate", log.to_str().unwrap()]);
    assert!(
        stdout(&o).contains("Warning: 20% of the losses were left out"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn investigate_suggests_the_epoch_length_when_drops_recur() {
    let d = temp_dir("trust-period");
    let log = d.join("periodic.csv");
    write_log(&log, 6000, Some(600), |_, v| v);
    let o = run(&["investigate", log.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(
            "Drops recur every 600 steps: epoch starts? Rerun with --steps-per-epoch 600"
        ),
        "{text}"
    );
    let v = json_of(&["investigate", log.to_str().unwrap()]);
    assert_eq!(v["hints"][0]["period"], 600, "{}", v["hints"]);
    // Given the epoch length, the drops are epoch starts and nothing is left to suggest.
    let v = json_of(&[
        "investigate",
        log.to_str().unwrap(),
        "--steps-per-epoch",
        "600",
    ]);
    assert!(v["hints"].as_array().unwrap().is_empty());
    assert_eq!(v["causes"][0]["cause"], "epoch_boundary", "{}", v["causes"]);
    // A log whose only drop is one LR cut suggests nothing.
    let once = d.join("once.csv");
    write_log(
        &once,
        6000,
        None,
        |step, v| if step >= 3000 { 0.6 * v } else { v },
    );
    let v = json_of(&["investigate", once.to_str().unwrap()]);
    assert!(v["hints"].as_array().unwrap().is_empty(), "{}", v["hints"]);
    let o = run(&["investigate", once.to_str().unwrap()]);
    assert!(!stdout(&o).contains("Rerun with"), "{}", stdout(&o));
}

#[test]
fn investigate_text_names_what_each_cause_rests_on_once_with_drops_negative() {
    let d = temp_dir("trust-text");
    let log = d.join("saw.csv");
    write_log(&log, 6000, Some(600), |_, v| v);
    let o = run(&[
        "investigate",
        log.to_str().unwrap(),
        "--steps-per-epoch",
        "600",
    ]);
    let text = stdout(&o);
    let cause = text
        .lines()
        .find(|l| l.contains("Cause epoch_boundary ("))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(cause.contains("(high, confidence"), "{cause}");
    assert!(
        cause.contains("evidence: the test at epoch starts"),
        "{cause}"
    );
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let n = lines.len();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), n, "a line repeats:\n{text}");
    // Drop rows: step, then a negative log change, relative change and z.
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|c| {
            c.len() >= 7 && c[0].parse::<u64>().is_ok() && c.last() == Some(&"epoch_boundary")
        })
        .collect();
    assert!(!rows.is_empty(), "{text}");
    for r in rows {
        assert!(
            r[1].starts_with('-') && r[2].starts_with('-') && r[3].starts_with('-'),
            "{r:?}"
        );
    }
    // The summary counts what the drop list says.
    let v = json_of(&[
        "investigate",
        log.to_str().unwrap(),
        "--steps-per-epoch",
        "600",
    ]);
    let drops = v["drops"].as_array().unwrap();
    let boundary = drops
        .iter()
        .filter(|d| d["explained_by"] == "epoch_boundary")
        .count();
    let line = v["headline"][0].as_str().unwrap();
    assert!(
        line.contains(&format!("{boundary} epoch_boundary")),
        "{line}"
    );
}

#[test]
fn investigate_overfitting_quotes_the_window_it_tested() {
    let d = temp_dir("trust-overfit");
    let log = d.join("log.csv");
    write_log(&log, 3000, None, |_, v| v);
    // Falls to epoch 8, then rises for 7 epochs.
    let val = d.join("val.csv");
    let mut s = String::from("epoch,step,val_loss\n");
    for e in 0..15u64 {
        let x = e as f64 - 8.0;
        s.push_str(&format!(
            "{e},{},{}\n",
            (e + 1) * 200,
            0.8 + 0.004 * x * x + 0.002 * x
        ));
    }
    std::fs::write(&val, s).unwrap();
    let v = json_of(&[
        "investigate",
        log.to_str().unwrap(),
        "--val",
        val.to_str().unwrap(),
    ]);
    let o = &v["overfitting"];
    assert_eq!(o["verdict"], "overfitting", "{o}");
    let w = &o["window"];
    assert_eq!(
        (w["test"].as_str(), w["from_epoch"].as_u64()),
        (Some("rise_after_best"), Some(9))
    );
    let msg = o["message"].as_str().unwrap();
    assert!(msg.contains("epochs 9-14"), "{msg}");
    assert!(!msg.contains("gap"), "{msg}");
    let rep = d.join("rep");
    let out = run(&[
        "investigate",
        log.to_str().unwrap(),
        "--val",
        val.to_str().unwrap(),
        "--report",
        rep.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    assert!(
        md.contains("| epochs 9-14, after the best (6 points) |"),
        "{md}"
    );
    assert!(!md.contains("recent slope"), "{md}");
}

#[test]
fn run_text_and_report_say_each_thing_once_and_which_seed_is_plotted() {
    let d = temp_dir("trust-run-text");
    let s = tiny_scenario(&d, "");
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace("seeds = [1]", "seeds = [1, 2]");
    std::fs::write(&s, text).unwrap();
    let out = d.join("out");
    let o = run_ok(s.to_str().unwrap(), &out, &[]);
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    let mut unique = lines.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "a line repeats:\n{text}");
    for bad in ["log|step change|", "High", "Medium", " : "] {
        assert!(!text.contains(bad), "{bad}:\n{text}");
    }
    let v: Value =
        serde_json::from_slice(&std::fs::read(out.join("report/report.json")).unwrap()).unwrap();
    let plots = v["plots"].as_array().unwrap();
    let title = plots
        .iter()
        .find(|p| p["name"] == "loss-constant")
        .map(|p| p["title"].as_str().unwrap().to_string())
        .unwrap();
    assert!(title.contains("seed 1 shown (of 2 seeds)"), "{title}");
    // The folded profile is drawn only where a within-epoch cause was named.
    let within = v["arms"].as_array().unwrap().iter().any(|a| {
        a["causes"].as_array().unwrap().iter().any(|c| {
            [
                "epoch_boundary",
                "running_mean_artifact",
                "data_order",
                "last_batch",
            ]
            .contains(&c["cause"].as_str().unwrap())
        })
    });
    assert_eq!(out.join("report/folded.png").is_file(), within);
}
