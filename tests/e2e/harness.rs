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
    let d = temp_dir("run-killed");
    let s = tiny_scenario(&d, "").to_str().unwrap().to_string();
    let text = std::fs::read_to_string(&s)
        .unwrap()
        .replace("epochs = 3", "epochs = 2000");
    std::fs::write(&s, text).unwrap();
    let out = d.join("out");
    let mut child = bin()
        .args(["run", &s, "--out", out.to_str().unwrap(), "--quiet"])
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
        "manifest {} vs disk {on_disk}",
        m.cells[0].steps
    );
    assert_eq!(m.cells[0].planned_steps, 10_000);
    assert!(!m.completeness().is_complete());
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
