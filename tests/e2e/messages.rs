//! Messages that say what to do: a log given to `run`, a folder given to `report`, Rust
//! type names in scenario errors, and `scenario show` to start from.

use crate::common::*;

#[test]
fn a_training_log_given_to_run_points_at_investigate() {
    let d = temp_dir("msg-log-to-run");
    let log = d.join("epochs.csv");
    std::fs::write(&log, "step,loss\n0,1.0\n1,0.9\n").unwrap();
    let o = run(&["run", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("dropscope investigate"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("expected '.'"), "{}", stderr(&o));
}

#[test]
fn a_folder_without_a_manifest_given_to_report_says_what_report_takes() {
    let d = temp_dir("msg-report-folder");
    let o = run(&["report", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("not a run folder"), "{err}");
    assert!(!err.contains("No such file"), "{err}");
}

#[test]
fn scenario_errors_name_toml_types_not_rust_types() {
    let d = temp_dir("msg-types");
    let p = d.join("t.toml");
    std::fs::write(&p, "seeds = [1]\n[train]\nepochs = -3\n").unwrap();
    let o = run(&[
        "run",
        p.to_str().unwrap(),
        "--out",
        d.join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("t.toml:3"), "{err}");
    assert!(
        !err.contains("u64") && err.contains("whole number"),
        "{err}"
    );
}

#[test]
fn scenario_show_prints_a_bundled_scenario_that_runs_as_a_file() {
    let o = run(&["scenario", "show", "lr-step"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let bundled = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/lr-step.toml"),
    )
    .unwrap();
    assert_eq!(text, bundled);
    let o = run(&["scenario", "show", "no-such"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("epoch-memorization"), "{}", stderr(&o));
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let mut child = bin()
        .args(["scenario", "show", "epoch-memorization"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn a_log_written_every_k_steps_is_sized_in_log_points_and_its_epochs_in_steps() {
    let log = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real/hf_mistral7b_translator_4ep.trainer_state.json");
    let o = run(&["investigate", log.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = stdout(&o).lines().next().unwrap_or_default().to_string();
    assert!(
        first.ends_with("866 log points (every 10 steps), epochs of 2160 steps"),
        "{first}"
    );
}
