//! `investigate`, `report`, `check`, `baseline`, `merge`: the analysis side of the CLI.

use std::path::Path;

use crate::common::*;

/// A per-step log with a clear LR cut at step 600 and epochs of 100 steps.
fn write_lr_cut_log(p: &Path) {
    let mut s = String::from("global_step,train_loss,learning_rate,epoch\n");
    let mut x: u64 = 12345;
    for step in 0..1200u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
        let lr = if step < 600 { 0.1 } else { 0.01 };
        let level = (-(step as f64) / 1500.0).exp() * if step < 600 { 1.0 } else { 0.55 };
        let loss = level * (1.0 + 0.25 * u);
        s.push_str(&format!("{step},{loss},{lr},{}\n", step / 100));
    }
    std::fs::write(p, s).unwrap();
}

#[test]
fn investigate_names_the_lr_cut_in_text_and_json() {
    let d = temp_dir("investigate-lr");
    let log = d.join("log.csv");
    write_lr_cut_log(&log);
    let o = run(&["investigate", log.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("lr_change"), "{text}");
    let drop_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("600 "))
        .unwrap_or_else(|| panic!("no drop at 600:\n{text}"));
    assert!(drop_line.contains("lr_change"), "{drop_line}");

    let o = run(&[
        "investigate",
        log.to_str().unwrap(),
        "--format",
        "json",
        "--report",
        d.join("rep").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["kind"], "trace");
    let causes: Vec<&str> = v["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cause"].as_str().unwrap())
        .collect();
    assert!(causes.contains(&"lr_change"), "{causes:?}");
    assert!(
        v["drops"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["step"] == 600 && d["explained_by"] == "lr_change")
    );
    assert!(v["overfitting"]["verdict"].is_string());
    assert!(d.join("rep/report.md").is_file() && d.join("rep/report.html").is_file());
}

#[test]
fn investigate_rejects_broken_logs_with_one_line_and_exit_2() {
    let d = temp_dir("investigate-bad");
    let cases = [
        ("empty.csv", "", "empty.csv"),
        ("noloss.csv", "step,acc\n0,0.5\n", "loss"),
        ("text.csv", "step,loss\n0,0.5\n1,abc\n", "empty.csv:3"),
        ("cut.csv", "step,loss,lr\n0,0.5,0.1\n1,0.4", "cut.csv:3"),
    ];
    for (name, body, _) in &cases {
        std::fs::write(d.join(name), body).unwrap();
    }
    for (name, _, want) in cases {
        let o = run(&["investigate", d.join(name).to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{name}: {err}");
        let want = want.replace("empty.csv", name);
        assert!(err.contains(&want) || err.contains(name), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = run(&["investigate", d.join("nope.csv").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

fn tiny_two_seeds(d: &Path) -> String {
    let s = tiny_scenario(d, "");
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace("seeds = [1]", "seeds = [1, 2]");
    std::fs::write(&s, text).unwrap();
    s.to_str().unwrap().to_string()
}

#[test]
fn shards_run_apart_merge_into_the_unsharded_run() {
    let d = temp_dir("shards");
    let s = tiny_two_seeds(&d);
    let whole = d.join("whole");
    let o = run(&["run", &s, "--out", whole.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let children: Vec<_> = (0..3)
        .map(|i| {
            bin()
                .args([
                    "run",
                    &s,
                    "--shard",
                    &format!("{i}/3"),
                    "--out",
                    d.join(format!("s{i}")).to_str().unwrap(),
                    "--quiet",
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let merged = d.join("merged");
    let shard_dirs: Vec<String> = (0..3)
        .map(|i| d.join(format!("s{i}")).to_str().unwrap().to_string())
        .collect();
    let mut args = vec!["merge", "--out", merged.to_str().unwrap()];
    args.extend(shard_dirs.iter().map(|s| s.as_str()));
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    for cell in [
        "constant/seed-1",
        "constant/seed-2",
        "cosine/seed-1",
        "cosine/seed-2",
    ] {
        for f in ["trace.csv", "val.csv"] {
            assert_eq!(
                std::fs::read(whole.join(cell).join(f)).unwrap(),
                std::fs::read(merged.join(cell).join(f)).unwrap(),
                "{cell}/{f}"
            );
        }
    }
    let o = run(&["report", merged.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let a: serde_json::Value =
        serde_json::from_slice(&std::fs::read(whole.join("report/report.json")).unwrap()).unwrap();
    let b: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("report/report.json")).unwrap()).unwrap();
    assert_eq!(a["arms"], b["arms"]);
    assert_eq!(a["factors"], b["factors"]);

    // Two shards of different sweeps do not merge.
    let o = run(&[
        "merge",
        "--out",
        d.join("bad").to_str().unwrap(),
        &shard_dirs[0],
        &shard_dirs[0],
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn check_enforces_expectations_and_writes_junit() {
    let d = temp_dir("check-expect");
    let s = tiny_scenario(
        &d,
        "[expect.all]\nno_divergence = true\n[expect.arm.cosine]\nnot_causes = [\"lr_change\"]\n",
    );
    let junit = d.join("junit.xml");
    let o = run(&[
        "check",
        s.to_str().unwrap(),
        "--out",
        d.join("run").to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("testcase") && xml.contains(r#"failures="0""#),
        "{xml}"
    );

    // The same run, held to a cause it cannot show, fails with exit 1.
    let text = std::fs::read_to_string(&s).unwrap().replace(
        "not_causes = [\"lr_change\"]",
        "causes = [\"warm_restart\"]",
    );
    std::fs::write(&s, text).unwrap();
    let o = run(&[
        "check",
        s.to_str().unwrap(),
        "--out",
        d.join("run2").to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("FAIL cosine/seed-1: cause warm_restart is named"),
        "{}",
        stdout(&o)
    );
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains(r#"failures="1""#)
    );

    // A misspelled cause is bad input.
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace("warm_restart", "warm-restart");
    std::fs::write(&s, text).unwrap();
    let o = run(&[
        "check",
        s.to_str().unwrap(),
        "--out",
        d.join("run3").to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

fn check_against(run_dir: &Path, base: &Path, mode: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "check",
        run_dir.to_str().unwrap(),
        "--baseline",
        base.to_str().unwrap(),
        "--mode",
        mode,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn baselines_catch_changes_in_each_mode() {
    let d = temp_dir("baseline");
    let s = tiny_two_seeds(&d);
    let a = d.join("a");
    let base = d.join("base");
    assert!(
        run(&[
            "run",
            &s,
            "--out",
            a.to_str().unwrap(),
            "--quiet",
            "--no-report"
        ])
        .status
        .success()
    );
    let o = run(&[
        "baseline",
        "save",
        a.to_str().unwrap(),
        base.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(base.join("baseline.json").is_file());
    assert!(base.join("cosine/seed-2/trace.csv").is_file());

    for mode in ["exact", "tolerance", "statistical"] {
        let o = check_against(&a, &base, mode, &[]);
        assert_eq!(o.status.code(), Some(0), "{mode}: {}", stdout(&o));
    }

    // Nudge one loss by 1%: exact fails, a 5% tolerance passes.
    let t = a.join("constant/seed-1/trace.csv");
    let text = std::fs::read_to_string(&t).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cols: Vec<String> = lines[3].split(',').map(String::from).collect();
    cols[3] = (cols[3].parse::<f64>().unwrap() * 1.01).to_string();
    lines[3] = cols.join(",");
    std::fs::write(&t, lines.join("\n") + "\n").unwrap();
    let o = check_against(&a, &base, "exact", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("line 4 differs"), "{}", stdout(&o));
    let o = check_against(&a, &base, "tolerance", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = check_against(&a, &base, "tolerance", &["--rtol", "0.001"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));

    // A run that learns with a tenth of the LR converges later: statistical mode fails.
    let slow = d.join("slow.toml");
    std::fs::write(
        &slow,
        std::fs::read_to_string(&s)
            .unwrap()
            .replace("[train]\n", "[train.lr]\nbase = 0.005\n[train]\n"),
    )
    .unwrap();
    let b = d.join("b");
    assert!(
        run(&[
            "run",
            slow.to_str().unwrap(),
            "--out",
            b.to_str().unwrap(),
            "--quiet",
            "--no-report"
        ])
        .status
        .success()
    );
    let o = check_against(&b, &base, "statistical", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("FAIL"), "{}", stdout(&o));
}

/// Logs written by a real scikit-learn training run (see tests/fixtures/investigate/
/// make_fixtures.py): the same causes as in dropscope's own scenarios.
#[test]
fn logs_from_another_framework_get_the_same_causes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/investigate");
    let causes = |file: &str| -> Vec<String> {
        let o = run(&[
            "investigate",
            dir.join(file).to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        v["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["cause"].as_str().unwrap().to_string())
            .collect()
    };
    let rm = causes("sklearn_running_mean.csv");
    assert!(rm.contains(&"running_mean_artifact".to_string()), "{rm:?}");
    let sorted = causes("sklearn_sorted.csv");
    assert!(sorted.contains(&"data_order".to_string()), "{sorted:?}");
    let fresh = causes("sklearn_fresh.csv");
    assert_eq!(fresh, ["none"], "the control run has nothing to explain");
    // Every drop is at an epoch start, though the small ones are placed a few steps off.
    let memorized = causes("sklearn_memorization.csv");
    assert_eq!(memorized, ["epoch_boundary"]);
    let cut = causes("sklearn_lr_step.csv");
    assert!(cut.contains(&"lr_change".to_string()), "{cut:?}");
    let constant = causes("sklearn_lr_constant.csv");
    assert!(!constant.contains(&"lr_change".to_string()), "{constant:?}");
}
