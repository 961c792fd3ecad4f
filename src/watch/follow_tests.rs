//! Following files: only new complete lines or records, each once; rewrites start over.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::follow::{Follower, Transform, Update};
use crate::import::ImportOptions;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dropscope-follow-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn follower(path: &Path) -> Follower {
    Follower::new(path, ImportOptions::default(), Transform::default())
}

/// The steps a poll returned, and whether it restarted.
fn poll(f: &mut Follower) -> (Vec<u64>, bool) {
    let mut steps = Vec::new();
    let mut restarted = false;
    for u in f.poll().unwrap() {
        match u {
            Update::Data(t) => steps.extend(t.steps.iter().map(|s| s.step)),
            Update::Restart { .. } => restarted = true,
        }
    }
    (steps, restarted)
}

#[test]
fn a_growing_csv_is_read_a_complete_line_at_a_time_with_its_header() {
    let dir = temp("csv");
    let log = dir.join("log.csv");
    append(&log, "step,loss,lr\n0,1.0,0.1\n1,0.9,0.1\n");
    let mut f = follower(&log);
    assert_eq!(poll(&mut f), (vec![0, 1], false));
    append(&log, "2,0.8");
    assert_eq!(poll(&mut f), (vec![], false), "half a line waits");
    append(&log, "5,0.1\n3,0.7,0.1\n");
    let (steps, _) = poll(&mut f);
    assert_eq!(steps, [2, 3]);
    let mut f2 = follower(&log);
    let first = f2.poll().unwrap();
    let Update::Data(t) = &first[0] else {
        panic!("{first:?}")
    };
    assert!(
        (t.steps[2].loss - 0.85).abs() < 1e-12,
        "the cut line read whole"
    );
    assert!(f.describe().unwrap().contains("csv lines"));
}

#[test]
fn rows_without_a_step_count_on_from_the_rows_before() {
    let dir = temp("stepless");
    let log = dir.join("log.csv");
    append(&log, "loss\n1.0\n0.9\n");
    let mut f = follower(&log);
    assert_eq!(poll(&mut f).0, [0, 1]);
    append(&log, "0.8\n0.7\n");
    assert_eq!(poll(&mut f).0, [2, 3]);
}

#[test]
fn a_truncated_or_rewritten_file_is_read_again_from_its_start() {
    let dir = temp("truncated");
    let log = dir.join("log.jsonl");
    let lines = |r: std::ops::Range<u64>| -> String {
        r.map(|s| format!("{{\"step\": {s}, \"loss\": 1.0}}\n"))
            .collect()
    };
    append(&log, &lines(0..50));
    let mut f = follower(&log);
    assert_eq!(poll(&mut f).0.len(), 50);
    std::fs::write(&log, lines(0..10)).unwrap();
    assert_eq!(poll(&mut f), ((0..10).collect(), true));
    // Rewritten in place past the old offset: the bytes before it changed.
    std::fs::write(&log, lines(100..200)).unwrap();
    assert_eq!(poll(&mut f), ((100..200).collect(), true));
}

#[test]
fn a_chunk_of_validation_lines_only_is_no_error_and_a_bad_line_is_named() {
    let dir = temp("jsonl");
    let log = dir.join("log.jsonl");
    append(&log, "{\"step\": 0, \"loss\": 1.0}\n");
    let mut f = follower(&log);
    assert_eq!(poll(&mut f).0, [0]);
    append(&log, "{\"step\": 1, \"val_loss\": 1.0}\n");
    assert_eq!(poll(&mut f).0, Vec::<u64>::new());
    append(&log, "{\"step\": 2, \"loss\": 0.9}\nnot json\n");
    let err = f.poll().unwrap_err();
    assert_eq!(err.line, Some(4), "{err}");
}

#[test]
fn a_rewritten_trainer_state_returns_only_the_new_steps() {
    let dir = temp("hf");
    let log = dir.join("trainer_state.json");
    let doc = |n: u64| {
        let entries: Vec<String> = (1..=n)
            .map(|s| {
                format!("{{\"step\": {s}, \"loss\": 1.0, \"epoch\": 0.1, \"learning_rate\": 1e-4}}")
            })
            .collect();
        format!(
            "{{\"global_step\": {n}, \"log_history\": [{}]}}",
            entries.join(", ")
        )
    };
    std::fs::write(&log, doc(3)).unwrap();
    let mut f = follower(&log);
    assert_eq!(poll(&mut f).0, [1, 2, 3]);
    assert!(f.describe().unwrap().contains("document"));
    std::fs::write(&log, format!("{}\n", doc(5))).unwrap();
    assert_eq!(poll(&mut f).0, [4, 5]);
    // Caught mid-write: waits for the writer rather than failing at once.
    std::fs::write(&log, &doc(6)[..20]).unwrap();
    assert_eq!(poll(&mut f), (vec![], false));
    std::fs::write(&log, doc(6)).unwrap();
    assert_eq!(poll(&mut f).0, [6]);
}

#[test]
fn a_log_that_does_not_exist_yet_is_waited_for() {
    let dir = temp("later");
    let log = dir.join("log.csv");
    let mut f = follower(&log);
    assert_eq!(poll(&mut f), (vec![], false));
    assert!(!f.started());
    append(&log, "step,loss\n0,1.0\n");
    assert_eq!(poll(&mut f).0, [0]);
}
