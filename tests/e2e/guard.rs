//! Guarding a foreign pipeline: `check LOG` against expectations (file or inline) and
//! against golden logs, and what `investigate` says about a killed cell.

use std::path::{Path, PathBuf};

use crate::common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/investigate")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn check_holds_a_foreign_log_to_an_expectations_file_with_junit() {
    let d = temp_dir("guard-expect");
    let log = fixture("sklearn_lr_step.csv");
    let e = d.join("expect.toml");
    std::fs::write(
        &e,
        "causes = [\"lr_change\"]\nnot_causes = [\"data_order\"]\n",
    )
    .unwrap();
    let junit = d.join("junit.xml");
    let o = run(&["check", s(&log), "--expect", s(&e), "--junit", s(&junit)]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("cause lr_change is named"), "{xml}");

    // Inline expectations, and a failing one: exit 1.
    let o = run(&[
        "check",
        s(&log),
        "--not-cause",
        "lr_change",
        "--no-divergence",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("FAIL"), "{}", stdout(&o));

    // A misspelled cause in the file: exit 2 at its line.
    std::fs::write(&e, "max_unexplained_drops = 3\ncauses = [\"lr-change\"]\n").unwrap();
    let o = run(&["check", s(&log), "--expect", s(&e)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("expect.toml:2: causes"),
        "{}",
        stderr(&o)
    );

    // Nothing to check against is bad input, not a pass.
    let o = run(&["check", s(&log)]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
}

#[test]
fn golden_logs_compare_on_common_steps_and_catch_a_slower_pipeline() {
    let d = temp_dir("guard-golden");
    let a = fixture("sklearn_lr_step.csv");
    let b = fixture("sklearn_lr_constant.csv");
    let base = d.join("base");
    let o = run(&["baseline", "save", s(&a), s(&base)]);
    assert!(o.status.success(), "{}", stderr(&o));
    for mode in ["exact", "tolerance", "statistical"] {
        let o = run(&["check", s(&a), "--baseline", s(&base), "--mode", mode]);
        assert_eq!(o.status.code(), Some(0), "{mode}: {}", stdout(&o));
    }
    // The same run written every 10th step: compared on the steps both have, and said so.
    let text = std::fs::read_to_string(&a).unwrap();
    let sparse: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i == 0 || (i - 1) % 10 == 0)
        .map(|(_, l)| l)
        .collect();
    let every10 = d.join("every10.csv");
    std::fs::write(&every10, sparse.join("\n") + "\n").unwrap();
    let o = run(&[
        "check",
        s(&every10),
        "--baseline",
        s(&base),
        "--mode",
        "tolerance",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("common steps"), "{}", stdout(&o));
    // Another pipeline (no LR cut) is not the golden one step by step.
    let o = run(&[
        "check",
        s(&b),
        "--baseline",
        s(&base),
        "--mode",
        "tolerance",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    // A baseline of logs is not replaced silently.
    let o = run(&["baseline", "save", s(&a), s(&b), s(&base)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn investigate_on_a_killed_cell_says_the_run_is_incomplete_first() {
    let d = temp_dir("guard-killed-cell");
    let sc = tiny_scenario(&d, "");
    // Enough steps for an analysis (at least 20 usable losses).
    let text = std::fs::read_to_string(&sc)
        .unwrap()
        .replace("epochs = 3", "epochs = 6");
    std::fs::write(&sc, text).unwrap();
    let out = d.join("out");
    run_ok(s(&sc), &out, &[]);
    let mut m = dropscope::manifest::Manifest::read(&out).unwrap();
    m.cells[1].status = dropscope::manifest::CellStatus::Running;
    m.write(&out).unwrap();
    let o = run(&["investigate", s(&out.join("cosine/seed-1"))]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let first_warning = text.lines().find(|l| l.contains("warning:")).unwrap_or("");
    assert!(
        first_warning.contains("incomplete run: 1 of 2 cells complete"),
        "{text}"
    );
}
