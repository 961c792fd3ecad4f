//! `dropscope run`: traces, manifest, reproducibility, devices, bad input.

use std::path::Path;

use crate::common::*;
use dropscope::manifest::{CellStatus, Manifest};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_run_writes_a_trace_per_cell_and_a_manifest() {
    let d = temp_dir("run-basic");
    let s = tiny_scenario(&d, "");
    let out = d.join("out");
    run_ok(s.to_str().unwrap(), &out, &[]);

    let m = Manifest::read(&out).unwrap();
    assert_eq!(m.arms.len(), 2);
    assert_eq!(m.cells.len(), 2);
    assert_eq!(m.burn_version, "0.22.1");
    assert_eq!(m.device, "flex");
    assert!(m.cells.iter().all(|c| c.status == CellStatus::Completed));
    assert!(m.scenario.source.contains("tiny"));

    // 160 training examples in batches of 32: 5 steps per epoch, 3 epochs.
    let trace = read(&out.join("constant/seed-1/trace.csv"));
    let mut lines = trace.lines();
    assert_eq!(lines.next(), Some("step,epoch,batch,loss,lr,batch_size"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 15);
    assert_eq!(rows[5], ["5", "1", "0", rows[5][3], "0.05", "32"]);
    assert!(rows.iter().all(|r| r[3].parse::<f64>().unwrap() > 0.0));

    let val = read(&out.join("cosine/seed-1/val.csv"));
    let mut lines = val.lines();
    assert_eq!(
        lines.next(),
        Some("epoch,step,val_loss,val_accuracy,train_loss_eval")
    );
    let v: Vec<&str> = lines.collect();
    assert_eq!(v.len(), 3);
    assert!(v[2].starts_with("2,15,"));
    // The cosine arm logs a falling LR.
    let cos = read(&out.join("cosine/seed-1/trace.csv"));
    let lr: Vec<f64> = cos
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(4).unwrap().parse().unwrap())
        .collect();
    assert!(lr[0] > lr[14]);
}

#[test]
fn reruns_of_the_same_seed_on_cpu_are_byte_identical() {
    let d = temp_dir("run-repro");
    let s = tiny_scenario(&d, "").to_str().unwrap().to_string();
    for device in ["flex", "ndarray"] {
        let a = d.join(format!("a-{device}"));
        let b = d.join(format!("b-{device}"));
        for out in [&a, &b] {
            run_ok(&s, out, &["--device", device]);
        }
        for cell in ["constant/seed-1", "cosine/seed-1"] {
            assert_eq!(
                std::fs::read(a.join(cell).join("trace.csv")).unwrap(),
                std::fs::read(b.join(cell).join("trace.csv")).unwrap(),
                "{device} {cell}"
            );
        }
    }
}

#[test]
fn another_seed_gives_another_trace() {
    let d = temp_dir("run-seeds");
    let s = tiny_scenario(&d, "");
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace("seeds = [1]", "seeds = [1, 2]");
    std::fs::write(&s, text).unwrap();
    let out = d.join("out");
    run_ok(s.to_str().unwrap(), &out, &[]);
    assert_ne!(
        read(&out.join("constant/seed-1/trace.csv")),
        read(&out.join("constant/seed-2/trace.csv"))
    );
}

#[test]
fn wgpu_trains_a_few_steps_even_without_a_gpu() {
    let d = temp_dir("run-wgpu");
    let p = d.join("w.toml");
    std::fs::write(
        &p,
        "seeds = [1]\n[data]\nsamples = 40\nfeatures = 4\nclasses = 2\n[model]\nhidden = [8]\nbatch_norm = true\n[train]\nepochs = 1\nbatch_size = 8\n",
    )
    .unwrap();
    let out = d.join("out");
    let o = run_ok(p.to_str().unwrap(), &out, &["--device", "gpu"]);
    let m = Manifest::read(&out).unwrap();
    assert_eq!(m.device, "wgpu");
    // Which adapter ran it is recorded, and a software one is said out loud (even --quiet).
    let adapter = m.adapter.expect("adapter recorded");
    let warned = stderr(&o).contains("software adapter");
    assert_eq!(
        adapter.kind == dropscope::manifest::AdapterKind::SoftwareGpu,
        warned,
        "{adapter:?}: {}",
        stderr(&o)
    );
    let trace = read(&out.join("base/seed-1/trace.csv"));
    // 32 training examples in batches of 8.
    assert_eq!(trace.lines().count(), 1 + 4);
    for l in trace.lines().skip(1) {
        let loss: f64 = l.split(',').nth(3).unwrap().parse().unwrap();
        assert!(loss.is_finite() && loss > 0.0, "{l}");
    }
}

#[test]
fn a_diverging_cell_is_marked_and_the_run_goes_on() {
    let d = temp_dir("run-diverge");
    let s = tiny_scenario(&d, "[train.lr]\nbase = 1e9\n");
    let out = d.join("out");
    let o = run(&[
        "run",
        s.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        o.status.success(),
        "divergence is a result, not an error: {}",
        stderr(&o)
    );
    let m = Manifest::read(&out).unwrap();
    assert_eq!(m.cells.len(), 2, "both cells ran");
    let c = &m.cells[0];
    assert_eq!(c.status, CellStatus::Diverged);
    let at = c.diverged_at_step.unwrap();
    let trace = read(&out.join("constant/seed-1/trace.csv"));
    let row = trace.lines().nth(1 + at as usize).unwrap();
    let loss = row.split(',').nth(3).unwrap();
    assert!(loss == "NaN" || loss.ends_with("inf"), "{row}");
    assert!(
        m.cells[1].status == CellStatus::Diverged || m.cells[1].status == CellStatus::Completed
    );
}

#[test]
fn a_killed_run_leaves_analysable_traces() {
    // In this process (--jobs 1) and through worker processes (--jobs 2), which must stop
    // with their parent.
    for jobs in ["1", "2"] {
        let d = temp_dir(&format!("run-killed-{jobs}"));
        let s = tiny_scenario(&d, "").to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&s)
            .unwrap()
            .replace("epochs = 3", "epochs = 2000");
        std::fs::write(&s, text).unwrap();
        let out = d.join("out");
        let mut child = bin()
            .args(["run", &s, "--out", out.to_str().unwrap(), "--quiet"])
            .args(["--jobs", jobs])
            .spawn()
            .unwrap();
        let trace = out.join("constant/seed-1/trace.csv");
        let t0 = std::time::Instant::now();
        while std::fs::read_to_string(&trace)
            .map(|t| t.lines().count())
            .unwrap_or(0)
            < 20
        {
            assert!(t0.elapsed().as_secs() < 120, "no trace written");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let m = Manifest::read(&out).unwrap();
        assert_eq!(m.cells[0].status, CellStatus::Running);
        let t = dropscope::import::read_trace_dir(&out.join("constant/seed-1")).unwrap();
        assert!(t.steps.len() >= 19);
        // Whole epochs only: flushing happens at epoch ends.
        assert_eq!(t.steps.len() % 5, 0);
        // The manifest follows the disk epoch by epoch (a kill between the trace's flush and
        // the manifest's rewrite leaves it one epoch behind at most).
        let on_disk = t.steps.len() as u64;
        assert!(
            m.cells[0].steps <= on_disk && on_disk - m.cells[0].steps <= 5,
            "--jobs {jobs}: manifest {} vs disk {on_disk}",
            m.cells[0].steps
        );
        assert_eq!(m.cells[0].planned_steps, 10_000);
        assert!(!m.completeness().is_complete());
        // No worker outlives its parent: the trace stops growing.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let before = read(&trace);
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert_eq!(before, read(&trace), "--jobs {jobs}: a worker still writes");
    }
}

/// A scenario of `arms` × `seeds` small cells with dropout, so that every training step
/// draws from burn's random-number generator (what threads would have shared).
fn sweep_scenario(dir: &Path, epochs: u64, vary: &str, levels: &str, seeds: &str) -> String {
    let p = dir.join("sweep.toml");
    std::fs::write(
        &p,
        format!(
            r#"description = "parallel cells"
seeds = [{seeds}]

[data]
samples = 200
features = 8
classes = 3

[model]
hidden = [16]
dropout = 0.2

[train]
epochs = {epochs}
batch_size = 32

[[vary]]
path = "{vary}"
levels = [{levels}]
"#
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

/// Every file under `dir`, relative path → bytes.
fn files_under(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The manifest without what differs from run to run (wall times, start time).
fn manifest_sans_times(out: &Path) -> Manifest {
    let mut m = Manifest::read(out).unwrap();
    m.wall_s = 0.0;
    m.started_unix = 0;
    for c in &mut m.cells {
        c.wall_s = 0.0;
    }
    m
}

#[test]
fn cells_in_parallel_write_what_jobs_1_writes() {
    let d = temp_dir("run-jobs-parity");
    // 3 arms × 2 seeds: six cells, more than this machine's cores.
    let s = sweep_scenario(&d, 4, "train.lr.base", "0.05, 0.1, 0.2", "1, 2");
    let seq = d.join("seq");
    let par = d.join("par");
    run_ok(&s, &seq, &["--jobs", "1", "--format", "json"]);
    let o = run_ok(&s, &par, &["--jobs", "4", "--format", "json"]);
    let (a, b) = (manifest_sans_times(&seq), manifest_sans_times(&par));
    assert_eq!(a.cells.len(), 6);
    assert!(a.cells.iter().all(|c| c.status == CellStatus::Completed));
    assert_eq!(a, b, "manifests differ beyond wall times");
    // Every trace.csv and val.csv, and every report file, byte for byte.
    let (fa, fb) = (files_under(&seq), files_under(&par));
    let names: Vec<&String> = fa.keys().filter(|k| *k != "manifest.json").collect();
    assert_eq!(
        names,
        fb.keys()
            .filter(|k| *k != "manifest.json")
            .collect::<Vec<_>>()
    );
    assert_eq!(names.iter().filter(|k| k.ends_with("trace.csv")).count(), 6);
    assert!(names.iter().any(|k| k.starts_with("report")), "{names:?}");
    for k in names {
        assert!(fa[k] == fb[k], "{k} differs between --jobs 1 and --jobs 4");
    }
    assert!(!stdout(&o).trim().is_empty());
}

#[test]
fn a_diverging_arm_does_not_stop_the_cells_beside_it() {
    let d = temp_dir("run-jobs-diverge");
    let s = sweep_scenario(&d, 3, "train.lr.base", "0.05, 1e9, 0.1", "1, 2");
    let out = d.join("out");
    run_ok(&s, &out, &["--jobs", "3"]);
    let m = Manifest::read(&out).unwrap();
    assert_eq!(m.cells.len(), 6);
    for c in &m.cells {
        let lr = m.arm(&c.arm).unwrap().factors["train.lr.base"]
            .as_f64()
            .unwrap();
        let want = if lr > 1e6 {
            CellStatus::Diverged
        } else {
            CellStatus::Completed
        };
        assert_eq!(c.status, want, "{c:?}");
        assert_eq!(
            c.steps,
            if want == CellStatus::Completed {
                15
            } else {
                c.steps
            }
        );
    }
    assert_eq!(
        m.cells
            .iter()
            .filter(|c| c.status == CellStatus::Diverged)
            .count(),
        2,
        "{:?}",
        m.cells
    );
}

/// Process ids of the workers training into `out` (Linux /proc).
fn workers_of(out: &Path) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    let needle = out.to_str().unwrap();
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "internal-worker") && args.iter().any(|a| a == needle) {
            found.push((pid, args.join(" ")));
        }
    }
    found
}

#[cfg(target_os = "linux")]
#[test]
fn a_worker_that_dies_fails_its_cell_and_the_others_finish() {
    let d = temp_dir("run-jobs-crash");
    // The first cell trains long enough to be killed mid-way; the three others are short.
    let s = sweep_scenario(&d, 3, "train.epochs", "3000, 3, 4, 5", "1");
    let out = d.join("out");
    let child = bin()
        .args([
            "run",
            &s,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--jobs",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    let victim = loop {
        assert!(t0.elapsed().as_secs() < 120, "no worker found");
        let long = workers_of(&out)
            .into_iter()
            .find(|(_, cmd)| cmd.ends_with("--cell 0"));
        let started = std::fs::read_to_string(out.join(format!(
            "{}/seed-1/trace.csv",
            Manifest::read(&out).map(|m| m.cells[0].arm.clone()).unwrap_or_default()
        )))
        .map(|t| t.lines().count() > 20)
        .unwrap_or(false);
        if let (Some((pid, _)), true) = (long, started) {
            break pid;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let killed = std::process::Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "a failed cell fails the run: {}",
        stderr(&o)
    );
    let m = Manifest::read(&out).unwrap();
    assert_eq!(m.cells.len(), 4);
    assert_eq!(m.cells[0].status, CellStatus::Failed);
    let err = m.cells[0].error.as_deref().unwrap();
    assert!(err.contains("worker process stopped"), "{err}");
    assert!(stderr(&o).contains("failed"), "{}", stderr(&o));
    for c in &m.cells[1..] {
        assert_ne!(c.status, CellStatus::Failed, "{c:?}");
        assert_ne!(c.status, CellStatus::Pending, "{c:?}");
        assert_ne!(c.status, CellStatus::Running, "{c:?}");
    }
    assert!(workers_of(&out).is_empty());
}

#[test]
fn a_killed_parallel_run_resumes_to_the_jobs_1_result() {
    let d = temp_dir("run-jobs-resume");
    let s = sweep_scenario(&d, 150, "train.lr.base", "0.05, 0.1", "1, 2");
    let full = d.join("full");
    run_ok(&s, &full, &["--jobs", "1", "--no-report"]);
    let out = d.join("out");
    let mut child = bin()
        .args([
            "run",
            &s,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--jobs",
            "2",
        ])
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    // Wait until the first two cells are done and the next two have started.
    loop {
        assert!(t0.elapsed().as_secs() < 120, "the run did not get going");
        if let Ok(m) = Manifest::read(&out)
            && m.cells
                .iter()
                .filter(|c| c.status == CellStatus::Completed)
                .count()
                >= 1
            && m.cells
                .iter()
                .any(|c| c.status == CellStatus::Running && c.steps > 0)
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let m = Manifest::read(&out).unwrap();
    assert!(
        !m.completeness().is_complete(),
        "killed too late: {:?}",
        m.cells
    );
    let o = run_ok(&s, &out, &["--jobs", "2", "--no-report"]);
    let _ = o;
    assert_eq!(
        manifest_sans_times(&full).cells,
        manifest_sans_times(&out).cells
    );
    for c in &manifest_sans_times(&full).cells {
        for f in ["trace.csv", "val.csv"] {
            assert_eq!(
                read(&full.join(&c.dir).join(f)),
                read(&out.join(&c.dir).join(f)),
                "{}/{f}",
                c.dir
            );
        }
    }
}

#[test]
fn shards_times_jobs_merge_into_the_jobs_1_run() {
    let d = temp_dir("run-jobs-shards");
    let s = sweep_scenario(&d, 3, "train.lr.base", "0.05, 0.1, 0.2", "1, 2");
    let full = d.join("full");
    run_ok(&s, &full, &["--jobs", "1", "--no-report"]);
    let mut shard_dirs = Vec::new();
    for i in 0..2 {
        let dir = d.join(format!("shard-{i}"));
        run_ok(&s, &dir, &["--shard", &format!("{i}/2"), "--jobs", "2"]);
        shard_dirs.push(dir);
    }
    let merged = d.join("merged");
    let o = run(&[
        "merge",
        "--out",
        merged.to_str().unwrap(),
        shard_dirs[0].to_str().unwrap(),
        shard_dirs[1].to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (manifest_sans_times(&full), manifest_sans_times(&merged));
    assert_eq!(a.cells.len(), 6);
    for c in &a.cells {
        let twin = b
            .cells
            .iter()
            .find(|x| x.arm == c.arm && x.seed == c.seed)
            .unwrap();
        assert_eq!(c, twin);
        assert_eq!(
            read(&full.join(&c.dir).join("trace.csv")),
            read(&merged.join(&twin.dir).join("trace.csv"))
        );
    }
}

#[test]
fn bench_sweep_prints_cell_steps_against_one_cell() {
    let o = run(&[
        "bench", "sweep", "--cells", "1,3", "--sizes", "8x8", "--steps", "20", "--jobs", "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["cells"], 1);
    assert_eq!(rows[0]["vs_one_cell"], 1.0);
    assert_eq!(rows[1]["cells"], 3);
    assert_eq!(rows[1]["jobs"], 2);
    assert!(rows[1]["cell_steps_per_s"].as_f64().unwrap() > 0.0);
    assert!(rows[1]["vs_one_cell"].as_f64().unwrap() > 0.0);
    let o = run(&[
        "bench", "sweep", "--cells", "2", "--sizes", "8x8", "--steps", "5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("× one cell"), "{}", stdout(&o));
}

#[test]
fn bench_overfit_counts_each_seeds_verdict_as_the_report_gives_it() {
    let d = temp_dir("bench-overfit");
    let runs = d.join("runs");
    let o = run(&[
        "bench",
        "overfit",
        "--seeds",
        "4",
        "--seed",
        "7",
        "--controls",
        "2",
        "--epochs",
        "8",
        "--jobs",
        "2",
        "--quiet",
        "--out",
        runs.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let row = |label: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("| {label}")))
            .unwrap_or_else(|| panic!("no row '{label}' in:\n{text}"))
            .split('|')
            .map(|c| c.trim().to_string())
            .collect::<Vec<_>>()
    };
    let fresh = row("fresh every epoch (cannot overfit)");
    assert_eq!(
        (fresh[2].as_str(), fresh[3].as_str()),
        ("seeds 7-10", "4"),
        "{text}"
    );
    let counted: usize = [4, 6, 7, 8, 9]
        .iter()
        .map(|&i| fresh[i].parse::<usize>().unwrap())
        .sum();
    assert_eq!(
        counted, 4,
        "verdicts and failures add up to the seeds: {text}"
    );
    assert!(
        fresh[5].ends_with(']') && fresh[5].contains("% ["),
        "{text}"
    );
    let control = row("fixed 480 examples (control)");
    assert_eq!(
        (control[2].as_str(), control[3].as_str()),
        ("seeds 7-8", "2"),
        "{text}"
    );
    assert!(
        text.contains("not measured: fewer than 100 cells"),
        "{text}"
    );
    assert!(text.contains("detection rate on the control:"), "{text}");

    // The verdicts are those `report` gives the same run folders.
    for (folder, label) in [("fresh-data", "fresh"), ("fixed-data", "control")] {
        let rep = d.join(format!("report-{folder}"));
        let o = run(&[
            "report",
            runs.join(folder).to_str().unwrap(),
            "--out",
            rep.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let json: serde_json::Value =
            serde_json::from_str(&read(&rep.join("report.json"))).unwrap();
        let called = json["arms"][0]["cells"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["analysis"]["overfitting"]["verdict"] == "overfitting")
            .count();
        let r = row(if label == "fresh" {
            "fresh every epoch (cannot overfit)"
        } else {
            "fixed 480 examples (control)"
        });
        assert_eq!(r[4], called.to_string(), "{folder}: {text}");
    }

    // Without --out the run folders are temporary; --json carries the same counts.
    let o = run(&[
        "bench",
        "overfit",
        "--seeds",
        "3",
        "--controls",
        "0",
        "--epochs",
        "5",
        "--jobs",
        "1",
        "--quiet",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["fresh"]["seeds"], serde_json::json!([1, 2, 3]));
    assert_eq!(v["fresh"]["analysed"], 3);
    assert!(v["control"].is_null());
    let sum: u64 = ["overfitting", "not_overfitting", "plateau", "unknown"]
        .iter()
        .map(|k| v["fresh"][k].as_u64().unwrap())
        .sum();
    assert_eq!(sum, 3, "{v}");
}

#[test]
fn a_bad_scenario_is_one_line_naming_file_line_and_field_with_exit_2() {
    let d = temp_dir("run-bad");
    let p = d.join("bad.toml");
    std::fs::write(&p, "seeds = [1]\n[train]\nbatch_size = 5000\n").unwrap();
    let o = run(&[
        "run",
        p.to_str().unwrap(),
        "--out",
        d.join("out").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("bad.toml:3: train.batch_size:"), "{err}");
    assert!(!d.join("out").exists(), "nothing written before validation");

    let o = run(&["run", d.join("missing.toml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.toml"), "{}", stderr(&o));
}

#[test]
fn list_shows_every_bundled_scenario_with_a_description() {
    let o = run(&["list"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for name in [
        "epoch-memorization",
        "lr-step",
        "running-mean-log",
        "unshuffled",
        "last-batch-batchnorm",
        "warm-restarts",
        "digits-overfit",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(line.len() > name.len() + 20, "{line}");
    }
}

/// A scenario of 2 LR schedules × 2 seeds without dropout: one stack of four cells.
fn stackable_scenario(dir: &Path, epochs: u64, lr_levels: &str, vary: &str) -> String {
    let p = dir.join("stack.toml");
    std::fs::write(
        &p,
        format!(
            r#"description = "stacked cells"
seeds = [1, 2]

[data]
samples = 1000
features = 8
classes = 3
label_noise = 0.1

[model]
hidden = [16]

[train]
epochs = {epochs}
batch_size = 32

[train.lr]
period = 50

[[vary]]
path = "{vary}"
levels = [{lr_levels}]
"#
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

/// Per-step losses of every cell of a run: cell dir → losses.
fn losses_of(out: &Path) -> std::collections::BTreeMap<String, Vec<f64>> {
    let m = Manifest::read(out).unwrap();
    m.cells
        .iter()
        .map(|c| {
            let t = read(&out.join(&c.dir).join("trace.csv"));
            let l = t
                .lines()
                .skip(1)
                .map(|r| r.split(',').nth(3).unwrap().parse::<f64>().unwrap())
                .collect();
            (c.dir.clone(), l)
        })
        .collect()
}

#[test]
fn the_stacked_engine_matches_the_cell_engine_step_for_step() {
    let d = temp_dir("run-stacked-parity");
    // 4 cells (seeds × constant / cosine-restarts), 25 steps an epoch, 300 steps.
    let s = stackable_scenario(
        &d,
        12,
        r#""constant", "cosine-restarts""#,
        "train.lr.schedule",
    );
    let (cell, stack) = (d.join("cell"), d.join("stack"));
    run_ok(&s, &cell, &["--jobs", "1", "--no-report"]);
    run_ok(&s, &stack, &["--engine", "stacked", "--no-report"]);
    let (a, b) = (losses_of(&cell), losses_of(&stack));
    assert_eq!(a.len(), 4);
    for (dir, la) in &a {
        let lb = &b[dir];
        assert_eq!(la.len(), 300, "{dir}");
        assert_eq!(la.len(), lb.len(), "{dir}");
        for (k, (x, y)) in la.iter().zip(lb).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(y.abs()),
                "{dir} step {k}: cell {x} vs stacked {y}"
            );
        }
    }
    let (ma, mb) = (manifest_sans_times(&cell), manifest_sans_times(&stack));
    assert_eq!(ma.cells, mb.cells);
}

#[test]
fn two_stacked_runs_write_byte_identical_traces() {
    let d = temp_dir("run-stacked-repro");
    let s = stackable_scenario(&d, 3, r#""constant", "cosine""#, "train.lr.schedule");
    let (a, b) = (d.join("a"), d.join("b"));
    run_ok(&s, &a, &["--engine", "stacked", "--no-report"]);
    run_ok(&s, &b, &["--engine", "stacked", "--no-report"]);
    let (fa, fb) = (files_under(&a), files_under(&b));
    let names: Vec<&String> = fa.keys().filter(|k| *k != "manifest.json").collect();
    assert_eq!(names.iter().filter(|k| k.ends_with("trace.csv")).count(), 4);
    for k in names {
        assert!(fa[k] == fb[k], "{k} differs between two stacked runs");
    }
    assert_eq!(manifest_sans_times(&a), manifest_sans_times(&b));
}

#[test]
fn a_diverging_cell_leaves_its_stack_and_the_others_finish() {
    let d = temp_dir("run-stacked-diverge");
    let s = stackable_scenario(&d, 3, "0.05, 1e9, 0.1", "train.lr.base");
    let (cell, stack) = (d.join("cell"), d.join("stack"));
    run_ok(&s, &stack, &["--engine", "stacked", "--no-report"]);
    let m = Manifest::read(&stack).unwrap();
    assert_eq!(m.cells.len(), 6);
    for c in &m.cells {
        let lr = m.arm(&c.arm).unwrap().factors["train.lr.base"]
            .as_f64()
            .unwrap();
        if lr > 1e6 {
            assert_eq!(c.status, CellStatus::Diverged, "{c:?}");
            assert!(c.diverged_at_step.is_some());
        } else {
            assert_eq!(c.status, CellStatus::Completed, "{c:?}");
            assert_eq!((c.steps, c.epochs), (75, 3), "{c:?}");
        }
    }
    // The cells beside the diverged ones train as they would alone.
    run_ok(&s, &cell, &["--jobs", "1", "--no-report"]);
    assert_eq!(
        manifest_sans_times(&cell).cells,
        m.cells
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c.wall_s = 0.0;
                c
            })
            .collect::<Vec<_>>()
    );
    let (a, b) = (losses_of(&cell), losses_of(&stack));
    for c in m.cells.iter().filter(|c| c.status == CellStatus::Completed) {
        for (x, y) in a[&c.dir].iter().zip(&b[&c.dir]) {
            assert!((x - y).abs() <= 1e-4 * x.abs(), "{}: {x} vs {y}", c.dir);
        }
    }
}

#[test]
fn the_stacked_engine_refuses_dropout_in_one_line_and_auto_falls_back() {
    let d = temp_dir("run-stacked-refuse");
    let s = sweep_scenario(&d, 2, "train.lr.base", "0.05, 0.1", "1, 2");
    let out = d.join("out");
    let o = run(&[
        "run",
        &s,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--engine",
        "stacked",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("dropout"), "{err}");
    assert!(!out.join("manifest.json").exists());
    // auto trains them one cell at a time: the cell engine's files, byte for byte.
    let (auto, cell) = (d.join("auto"), d.join("cell"));
    run_ok(
        &s,
        &auto,
        &["--engine", "auto", "--jobs", "1", "--no-report"],
    );
    run_ok(&s, &cell, &["--jobs", "1", "--no-report"]);
    let (fa, fb) = (files_under(&auto), files_under(&cell));
    for k in fa.keys().filter(|k| k.ends_with(".csv")) {
        assert!(fa[k] == fb[k], "{k}");
    }
}

/// Causes named per arm in `run --format json`: arm → sorted causes.
fn causes_by_arm(json: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["arms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let mut c: Vec<String> = a["causes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["cause"].as_str().unwrap().to_string())
                .collect();
            c.sort();
            (a["name"].as_str().unwrap().to_string(), c)
        })
        .collect()
}

#[test]
fn a_bundled_scenario_names_the_same_causes_with_either_engine() {
    let d = temp_dir("run-stacked-bundled");
    let (cell, stack) = (d.join("cell"), d.join("stack"));
    let a = run_ok(
        "running-mean-log",
        &cell,
        &["--jobs", "1", "--format", "json"],
    );
    let b = run_ok(
        "running-mean-log",
        &stack,
        &["--engine", "stacked", "--format", "json"],
    );
    let (ca, cb) = (causes_by_arm(&stdout(&a)), causes_by_arm(&stdout(&b)));
    assert_eq!(ca.len(), 2);
    assert!(
        ca["running-mean"].contains(&"running_mean_artifact".to_string()),
        "{ca:?}"
    );
    assert_eq!(ca, cb);
}
