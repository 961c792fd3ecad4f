//! Nothing lost, nothing green by mistake: overlapping folders, overwrites, locks,
//! incomplete runs, untrusted manifests, resource bounds, duplicate and out-of-range input.

use std::path::{Path, PathBuf};

use crate::common::*;
use dropscope::manifest::{CellStatus, Manifest};

/// Every file under `dir` with its bytes, to show that a refused command changed nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn exit_2_one_line(o: &std::process::Output) -> String {
    assert_eq!(o.status.code(), Some(2), "{}\n{}", stdout(o), stderr(o));
    let err = stderr(o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    err
}

/// Two shards of the tiny scenario (two arms, two seeds: four cells).
fn two_shards(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let sc = tiny_scenario(d, "");
    let text = std::fs::read_to_string(&sc)
        .unwrap()
        .replace("seeds = [1]", "seeds = [1, 2]");
    std::fs::write(&sc, text).unwrap();
    let (s0, s1) = (d.join("s0"), d.join("s1"));
    run_ok(s(&sc), &s0, &["--shard", "0/2"]);
    run_ok(s(&sc), &s1, &["--shard", "1/2"]);
    (sc, s0, s1)
}

/// Marks one cell of a finished run as killed part-way: the manifest says running, the
/// trace keeps its first epoch (what a kill -9 leaves).
fn kill_cell(run: &Path, k: usize) {
    let mut m = Manifest::read(run).unwrap();
    let c = &mut m.cells[k];
    c.status = CellStatus::Running;
    c.steps = 5;
    c.epochs = 1;
    let trace = run.join(&c.dir).join("trace.csv");
    let text = std::fs::read_to_string(&trace).unwrap();
    let kept: Vec<&str> = text.lines().take(6).collect();
    std::fs::write(&trace, kept.join("\n") + "\n").unwrap();
    m.write(run).unwrap();
}

#[test]
fn merge_and_baseline_refuse_to_write_onto_their_own_input() {
    let d = temp_dir("rel-overlap");
    let (_, s0, s1) = two_shards(&d);
    let before = (snapshot(&s0), snapshot(&s1));
    std::os::unix::fs::symlink(&s0, d.join("link")).unwrap();
    let dotdot = format!("{}/../s0", s(&s0));
    for out in [s(&s0), &dotdot, s(&d.join("link")), s(&s1), s(&d)] {
        let o = run(&["merge", "--out", out, s(&s0), s(&s1)]);
        let err = exit_2_one_line(&o);
        assert!(err.contains("--out"), "{err}");
    }
    let merged = d.join("merged");
    let o = run(&["merge", "--out", s(&merged), s(&s0), s(&s1)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["baseline", "save", s(&merged), s(&merged)]);
    exit_2_one_line(&o);
    let o = run(&["baseline", "save", s(&merged), s(&merged.join("constant"))]);
    exit_2_one_line(&o);
    assert_eq!((snapshot(&s0), snapshot(&s1)), before);
    assert!(snapshot(&merged).iter().all(|(_, b)| !b.is_empty()));
}

#[test]
fn a_run_folder_of_another_scenario_or_a_foreign_folder_is_not_overwritten() {
    let d = temp_dir("rel-overwrite");
    let tiny = tiny_scenario(&d, "");
    let out = d.join("out");
    run_ok(s(&tiny), &out, &[]);
    let other = d.join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&tiny)
            .unwrap()
            .replace("\"train.lr.schedule\"", "\"train.shuffle\"")
            .replace("[\"constant\", \"cosine\"]", "[\"every-epoch\", \"once\"]"),
    )
    .unwrap();
    let before = snapshot(&out);
    let o = run(&["run", s(&other), "--out", s(&out), "--quiet"]);
    let err = exit_2_one_line(&o);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(snapshot(&out), before);

    // --force replaces the run and clears its old arm folders, nothing else.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    run_ok(s(&other), &out, &["--force"]);
    assert!(!out.join("constant").exists() && !out.join("cosine").exists());
    assert!(out.join("once/seed-1/trace.csv").is_file());
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );

    // A file, or a folder that holds other things, is never written over.
    let file = d.join("a-file");
    std::fs::write(&file, "data").unwrap();
    exit_2_one_line(&run(&["run", s(&tiny), "--out", s(&file), "--quiet"]));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
    let foreign = d.join("foreign");
    std::fs::create_dir_all(foreign.join("constant/seed-1")).unwrap();
    std::fs::write(foreign.join("constant/seed-1/trace.csv"), "precious").unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["run", s(&tiny), "--out", s(&foreign), "--quiet"];
        args.extend_from_slice(extra);
        exit_2_one_line(&run(&args));
    }
    assert_eq!(
        std::fs::read_to_string(foreign.join("constant/seed-1/trace.csv")).unwrap(),
        "precious"
    );

    // A baseline is not replaced without --force, nor a run folder used as one.
    let base = d.join("base");
    let o = run(&["baseline", "save", s(&out), s(&base)]);
    assert!(o.status.success(), "{}", stderr(&o));
    exit_2_one_line(&run(&["baseline", "save", s(&out), s(&base)]));
    let o = run(&["baseline", "save", s(&out), s(&base), "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run2 = d.join("run2");
    run_ok(s(&tiny), &run2, &[]);
    let before = snapshot(&run2);
    exit_2_one_line(&run(&["baseline", "save", s(&out), s(&run2)]));
    assert_eq!(snapshot(&run2), before);
}

#[test]
fn a_second_writer_is_stopped_by_the_lock_and_a_stale_lock_is_taken_over() {
    let d = temp_dir("rel-lock");
    let tiny = tiny_scenario(&d, "");
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Process 1 is always running: a live writer.
    std::fs::write(out.join(".dropscope.lock"), "1\n").unwrap();
    let err = exit_2_one_line(&run(&["run", s(&tiny), "--out", s(&out), "--quiet"]));
    assert!(err.contains("process 1"), "{err}");
    assert!(!out.join("manifest.json").exists());
    std::fs::write(out.join(".dropscope.lock"), "4294967294\n").unwrap();
    run_ok(s(&tiny), &out, &[]);
    assert!(
        !out.join(".dropscope.lock").exists(),
        "the lock goes with its writer"
    );
}

#[test]
fn check_fails_on_a_killed_or_incomplete_run_naming_the_cells() {
    let d = temp_dir("rel-check");
    let sc = tiny_scenario(&d, "[expect.all]\nnot_causes = [\"lr_change\"]\n");
    let out = d.join("out");
    run_ok(s(&sc), &out, &[]);
    let o = run(&["check", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    kill_cell(&out, 1);
    let o = run(&["check", s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("cosine/seed-1: stopped after 5 of 15 steps"),
        "{}",
        stdout(&o)
    );

    // A cell the manifest forgot entirely is missing, not skipped.
    let mut m = Manifest::read(&out).unwrap();
    m.cells.truncate(1);
    m.write(&out).unwrap();
    let o = run(&["check", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("cosine/seed-1: missing"),
        "{}",
        stdout(&o)
    );

    // report says so first.
    let o = run(&["report", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("incomplete run: 1 of 2 cells complete"),
        "{}",
        stdout(&o)
    );
    let md = std::fs::read_to_string(out.join("report/report.md")).unwrap();
    assert!(md.contains("incomplete run: 1 of 2 cells"), "{md}");
}

#[test]
fn a_killed_run_resumes_where_it_stopped_and_matches_a_fresh_run() {
    let d = temp_dir("rel-resume");
    let sc = tiny_scenario(&d, "");
    let (a, b) = (d.join("a"), d.join("b"));
    run_ok(s(&sc), &a, &[]);
    run_ok(s(&sc), &b, &[]);
    kill_cell(&b, 1);
    let kept = std::fs::metadata(b.join("constant/seed-1/trace.csv"))
        .unwrap()
        .modified()
        .unwrap();
    let o = run(&["run", s(&sc), "--out", s(&b)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 of 2 cells already complete"),
        "{}",
        stderr(&o)
    );
    let after = std::fs::metadata(b.join("constant/seed-1/trace.csv"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(kept, after, "the finished cell was not retrained");
    for cell in ["constant/seed-1", "cosine/seed-1"] {
        assert_eq!(
            std::fs::read(a.join(cell).join("trace.csv")).unwrap(),
            std::fs::read(b.join(cell).join("trace.csv")).unwrap(),
        );
    }
    assert!(Manifest::read(&b).unwrap().completeness().is_complete());
}

#[test]
fn merge_refuses_a_missing_shard_unless_partial_is_allowed_and_then_check_fails() {
    let d = temp_dir("rel-merge-missing");
    let (sc, s0, _) = two_shards(&d);
    let merged = d.join("merged");
    let err = exit_2_one_line(&run(&["merge", "--out", s(&merged), s(&s0)]));
    assert!(
        err.contains("2 of 4 cells") && err.contains("--allow-partial"),
        "{err}"
    );
    assert!(!merged.exists());
    let o = run(&["merge", "--out", s(&merged), s(&s0), "--allow-partial"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = Manifest::read(&merged).unwrap();
    assert_eq!(m.missing_cells.len(), 2, "{:?}", m.missing_cells);
    let _ = sc;
    // An existing merged folder is replaced only with --force.
    exit_2_one_line(&run(&[
        "merge",
        "--out",
        s(&merged),
        s(&s0),
        "--allow-partial",
    ]));
}

#[test]
fn a_baseline_is_refused_for_a_killed_run_and_reads_back_for_a_complete_one() {
    let d = temp_dir("rel-baseline");
    let sc = tiny_scenario(&d, "");
    let text = std::fs::read_to_string(&sc)
        .unwrap()
        .replace("seeds = [1]", "seeds = [1, 2]");
    std::fs::write(&sc, text).unwrap();
    let out = d.join("out");
    run_ok(s(&sc), &out, &[]);
    let base = d.join("base");
    let o = run(&["baseline", "save", s(&out), s(&base)]);
    assert!(o.status.success(), "{}", stderr(&o));
    for mode in ["exact", "tolerance", "statistical"] {
        let o = run(&["check", s(&out), "--baseline", s(&base), "--mode", mode]);
        assert_eq!(o.status.code(), Some(0), "{mode}: {}", stdout(&o));
    }
    kill_cell(&out, 3);
    let err = exit_2_one_line(&run(&["baseline", "save", s(&out), s(&d.join("b2"))]));
    assert!(err.contains("incomplete run"), "{err}");
    assert!(!d.join("b2").exists());
    // The partial cell is not counted as a seed: the check fails on completeness.
    let o = run(&["check", s(&out), "--baseline", s(&base)]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("cosine/seed-2: stopped"),
        "{}",
        stdout(&o)
    );
    // A run folder given as the baseline says what it is.
    let err = exit_2_one_line(&run(&["check", s(&out), "--baseline", s(&out)]));
    assert!(err.contains("not a baseline"), "{err}");
}

#[test]
fn a_manifest_whose_cell_folder_climbs_out_is_an_input_error() {
    let d = temp_dir("rel-untrusted");
    let sc = tiny_scenario(&d, "");
    let out = d.join("out");
    run_ok(s(&sc), &out, &[]);
    let victim = d.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("trace.csv"), "keep me").unwrap();
    for dir in ["../victim", "x/y/../../../victim", s(&victim)] {
        let text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
        let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
        m["cells"][0]["dir"] = serde_json::json!(dir);
        std::fs::write(out.join("manifest.json"), m.to_string()).unwrap();
        for args in [
            vec!["report", s(&out)],
            vec!["merge", "--out", "/nonexistent-dropscope-merge", s(&out)],
            vec!["baseline", "save", s(&out)],
        ] {
            let mut args = args;
            if args[0] == "baseline" {
                args.push("/nonexistent-dropscope-base");
            }
            let err = exit_2_one_line(&run(&args));
            assert!(err.contains("cells[0].dir"), "{err}");
        }
    }
    assert_eq!(
        std::fs::read_to_string(victim.join("trace.csv")).unwrap(),
        "keep me"
    );
}

#[test]
fn oversized_scenarios_are_refused_before_anything_is_written() {
    let d = temp_dir("rel-bounds");
    for (extra, needle) in [
        ("[model]\nhidden = [100000, 100000]\n", "GiB"),
        ("[data]\nsamples = 1000000000000\n", "GiB"),
        ("[data]\nfeatures = 10000000\n", "GiB"),
        ("[train]\nepochs = 1000000000\n", "--yes"),
    ] {
        let p = d.join("big.toml");
        std::fs::write(&p, format!("seeds = [1]\n{extra}")).unwrap();
        let out = d.join("out");
        let err = exit_2_one_line(&run(&["run", s(&p), "--out", s(&out)]));
        assert!(err.contains(needle), "{extra}: {err}");
        assert!(!out.exists(), "{extra}");
    }
}

#[test]
fn duplicate_seeds_and_repeated_vary_paths_are_rejected_at_their_line() {
    let d = temp_dir("rel-dups");
    let p = d.join("dup.toml");
    std::fs::write(&p, "description = \"d\"\nseeds = [1, 1, 1]\n").unwrap();
    let err = exit_2_one_line(&run(&["run", s(&p), "--out", s(&d.join("o"))]));
    assert!(
        err.contains("dup.toml:2: seeds: seed 1 is listed twice"),
        "{err}"
    );
    std::fs::write(
        &p,
        "seeds = [1]\n[[vary]]\npath = \"train.shuffle\"\nlevels = [\"once\", \"none\"]\n\
         [[vary]]\npath = \"train.shuffle\"\nlevels = [\"every-epoch\", \"none\"]\n",
    )
    .unwrap();
    let err = exit_2_one_line(&run(&["run", s(&p), "--out", s(&d.join("o"))]));
    assert!(err.contains("dup.toml:6: vary[1].path"), "{err}");
}

#[test]
fn misspelled_expectations_and_empty_scenarios_are_rejected_before_training() {
    let d = temp_dir("rel-expect");
    let p = d.join("typo.toml");
    std::fs::write(
        &p,
        "seeds = [1]\n\n[expect.all]\ncauses = [\"data-order\"]\n",
    )
    .unwrap();
    let out = d.join("o");
    let err = exit_2_one_line(&run(&["run", s(&p), "--out", s(&out)]));
    assert!(
        err.contains("typo.toml:4: expect.all.causes: unknown cause 'data-order'"),
        "{err}"
    );
    assert!(!out.exists());
    std::fs::write(&p, "# nothing here\n").unwrap();
    let err = exit_2_one_line(&run(&["run", s(&p), "--out", s(&out)]));
    assert!(err.contains("empty"), "{err}");
    assert!(!out.exists());
}

#[test]
fn out_of_range_options_are_rejected_with_exit_2() {
    let d = temp_dir("rel-options");
    let sc = tiny_scenario(&d, "");
    let out = d.join("out");
    run_ok(s(&sc), &out, &[]);
    let base = d.join("base");
    assert!(
        run(&["baseline", "save", s(&out), s(&base)])
            .status
            .success()
    );
    for bad in [
        &["--alpha", "0"][..],
        &["--alpha", "2"],
        &["--alpha", "NaN"],
        &["--rtol", "inf"],
        &["--rtol", "-1"],
    ] {
        let mut args = vec!["check", s(&out), "--baseline", s(&base)];
        args.extend_from_slice(bad);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stdout(&o));
    }
    let o = run(&["bench", "detect", "--series", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
}

#[test]
fn a_data_file_outside_the_scenario_is_not_echoed_in_errors() {
    let d = temp_dir("rel-data-path");
    let secret = d.join("secret.txt");
    std::fs::write(&secret, format!("root:x:0:0:{}\n", "s".repeat(500))).unwrap();
    let p = d.join("csv.toml");
    std::fs::write(
        &p,
        "seeds = [1]\n[data]\nsource = \"csv\"\npath = \"secret.txt\"\nsamples = 10\n",
    )
    .unwrap();
    let o = run(&["run", s(&p), "--out", s(&d.join("o")), "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).len() < 300, "{}", stderr(&o));
    assert!(!stderr(&o).contains(&"s".repeat(30)), "{}", stderr(&o));
    assert!(!stderr(&o).contains("root:x"), "{}", stderr(&o));
}
