//! `dropscope watch`: a log written while it is followed, truncated, rotated; a
//! TensorBoard folder gaining an event file; `--once` against `investigate`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::Value;

use crate::common::{bin, run, stderr, stdout, temp_dir};

/// Longest a test waits for a line or for the watcher to exit.
const PATIENCE: Duration = Duration::from_secs(60);

/// A `dropscope watch` process and its stdout, line by line.
struct Watching {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watching {
    fn start(args: &[&str]) -> Watching {
        let mut child = bin()
            .arg("watch")
            .args(args)
            .args(["--interval", "0.05", "--format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dropscope watch");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watching {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `want`; returns it.
    fn wait_for(&mut self, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    let v: Value = serde_json::from_str(&line).expect("a JSON line");
                    if want(&v) {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("timed out; saw {:#?}", self.seen),
                Err(RecvTimeoutError::Disconnected) => panic!("watch ended; saw {:#?}", self.seen),
            }
        }
    }

    /// Waits for the process to exit and returns its status with every line it printed.
    fn finish(mut self) -> (ExitStatus, Vec<Value>) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "watch did not exit; saw {:#?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.seen.extend(self.lines.iter());
        let lines = self
            .seen
            .iter()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        (status, lines)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        // Only the watcher this test started, should an assertion have failed first.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn is_following(v: &Value) -> bool {
    kind(v) == "notice"
        && v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("following")
}

/// CSV rows `step,epoch,loss,lr` for `steps`: a slow decay with noise 0.05 on log-loss,
/// epochs of 500 steps, `drop` log-loss lower from `drop_at`, and NaN from `nan_at`.
fn rows(steps: std::ops::Range<u64>, drop_at: u64, nan_at: u64, seed: u64) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    steps
        .map(|s| {
            let noise: f64 = StandardNormal.sample(&mut rng);
            let drop = if s >= drop_at { 0.3 } else { 0.0 };
            let log = 0.5 - s as f64 / 20_000.0 - drop + 0.05 * noise;
            let loss = if s >= nan_at { f64::NAN } else { log.exp() };
            format!("{s},{},{loss},0.1\n", s / 500)
        })
        .collect()
}

fn write_csv(path: &Path, rows: &[String]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(b"step,epoch,loss,lr\n").unwrap();
    f.write_all(rows.concat().as_bytes()).unwrap();
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.flush().unwrap();
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn watch_follows_a_growing_csv_and_exits_1_on_fail_on() {
    let dir = temp_dir("watch-growing");
    let log = dir.join("train.csv");
    let all = rows(0..1600, 1000, 1550, 1);
    write_csv(&log, &all[..700]);
    let mut w = Watching::start(&[arg(&log), "--fail-on", "divergence"]);
    w.wait_for(is_following);
    // A test thread writes the rest in batches, each batch's last line in two writes,
    // so the watcher sees lines cut mid-way.
    let path = log.clone();
    let writer = std::thread::spawn(move || {
        for batch in all[700..].chunks(50) {
            let text = batch.concat();
            let cut = text.len() - 7;
            append(&path, &text[..cut]);
            std::thread::sleep(Duration::from_millis(30));
            append(&path, &text[cut..]);
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let drop = w.wait_for(|v| kind(v) == "drop");
    assert_eq!(drop["explained_by"], "epoch_boundary", "{drop}");
    assert_eq!(drop["event"], "epoch_start", "{drop}");
    assert!(drop["step"].as_u64().unwrap().abs_diff(1000) <= 5, "{drop}");
    writer.join().unwrap();
    let (status, lines) = w.finish();
    assert_eq!(status.code(), Some(1), "{lines:#?}");
    let last = lines.last().unwrap();
    assert_eq!(
        (kind(last), last["step"].as_u64()),
        ("divergence", Some(1550))
    );
    assert_eq!(last["reason"], "non_finite");
}

#[test]
fn watch_starts_over_when_the_log_is_truncated() {
    let dir = temp_dir("watch-truncated");
    let log = dir.join("train.csv");
    write_csv(&log, &rows(0..400, u64::MAX, u64::MAX, 2));
    let mut w = Watching::start(&[arg(&log), "--fail-on", "divergence"]);
    w.wait_for(is_following);
    // A new run writes over the file: shorter than what was read.
    write_csv(&log, &rows(0..120, u64::MAX, 100, 3));
    let notice = w.wait_for(|v| kind(v) == "notice");
    let message = notice["message"].as_str().unwrap();
    assert!(
        message.contains("truncated") && message.contains("starting over"),
        "{message}"
    );
    let (status, lines) = w.finish();
    assert_eq!(status.code(), Some(1));
    let last = lines.last().unwrap();
    assert_eq!(
        (kind(last), last["step"].as_u64()),
        ("divergence", Some(100))
    );
}

#[test]
fn watch_starts_over_when_the_log_is_rotated() {
    let dir = temp_dir("watch-rotated");
    let log = dir.join("train.csv");
    write_csv(&log, &rows(0..400, u64::MAX, u64::MAX, 4));
    let mut w = Watching::start(&[arg(&log), "--fail-on", "divergence"]);
    w.wait_for(is_following);
    // Rotation: the old file moves away and a new one (longer) takes its name.
    std::fs::rename(&log, dir.join("train.csv.1")).unwrap();
    write_csv(&log, &rows(0..700, u64::MAX, 650, 5));
    let notice = w.wait_for(|v| kind(v) == "notice");
    let message = notice["message"].as_str().unwrap();
    assert!(message.contains("replaced by a new file"), "{message}");
    let (status, lines) = w.finish();
    assert_eq!(status.code(), Some(1));
    let last = lines.last().unwrap();
    assert_eq!(
        (kind(last), last["step"].as_u64()),
        ("divergence", Some(650))
    );
}

/// One TensorBoard scalar event as TFRecord bytes: `Event { wall_time, step, summary {
/// value { tag, simple_value } } }`, encoded by hand.
fn scalar_event(step: u64, tag: &str, value: f32) -> Vec<u8> {
    let message = |field: u8, body: &[u8]| {
        let mut out = vec![(field << 3) | 2, body.len() as u8];
        out.extend_from_slice(body);
        out
    };
    let mut val = message(1, tag.as_bytes());
    val.push((2 << 3) | 5);
    val.extend_from_slice(&value.to_le_bytes());
    let summary = message(1, &val);
    let mut event = vec![(1 << 3) | 1];
    event.extend_from_slice(&1.7e9f64.to_le_bytes());
    event.push(2 << 3);
    let mut s = step;
    loop {
        let byte = (s & 0x7f) as u8;
        s >>= 7;
        if s == 0 {
            event.push(byte);
            break;
        }
        event.push(byte | 0x80);
    }
    event.extend(message(5, &summary));
    dropscope::import::tensorboard::frame(&event)
}

fn event_file(steps: std::ops::Range<u64>, nan_at: u64, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    steps
        .flat_map(|s| {
            let noise: f64 = StandardNormal.sample(&mut rng);
            let loss = (0.5 - s as f64 / 20_000.0 + 0.05 * noise).exp();
            let loss = if s >= nan_at { f32::NAN } else { loss as f32 };
            scalar_event(s, "train/loss", loss)
        })
        .collect()
}

#[test]
fn watch_reads_a_new_event_file_in_a_tensorboard_folder() {
    let dir = temp_dir("watch-tensorboard");
    let first = dir.join("events.out.tfevents.1700000000.host.1.0");
    std::fs::write(&first, event_file(0..600, u64::MAX, 6)).unwrap();
    let mut w = Watching::start(&[arg(&dir), "--fail-on", "divergence"]);
    let notice = w.wait_for(is_following);
    assert!(
        notice["message"].as_str().unwrap().contains("TensorBoard"),
        "{notice}"
    );
    // The run resumes into a new event file, which grows a record and a half at a time.
    let second = dir.join("events.out.tfevents.1700000500.host.1.0");
    let bytes = event_file(600..800, 700, 7);
    std::fs::write(&second, b"").unwrap();
    for part in bytes.chunks(61) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&second)
            .unwrap();
        f.write_all(part).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let (status, lines) = w.finish();
    assert_eq!(status.code(), Some(1), "{lines:#?}");
    let last = lines.last().unwrap();
    assert_eq!(
        (kind(last), last["step"].as_u64()),
        ("divergence", Some(700))
    );
}

#[test]
fn watch_names_the_file_and_line_of_a_bad_row_and_exits_2() {
    let dir = temp_dir("watch-bad-row");
    let log = dir.join("train.csv");
    write_csv(&log, &rows(0..400, u64::MAX, u64::MAX, 8));
    let mut w = Watching::start(&[arg(&log)]);
    w.wait_for(is_following);
    append(&log, "400,0,not-a-number,0.1\n");
    let (status, _) = w.finish();
    assert_eq!(status.code(), Some(2));
    let o = run(&["watch", arg(&log), "--once", "--input-format", "csv"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("train.csv:402"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// The fixtures `--once` must agree with `investigate` on: every real log and the
/// scikit-learn runs.
fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for dir in ["real", "investigate"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let log = !name.ends_with(".md") && !name.ends_with(".py") && !name.contains("_val");
            if log {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// The events of investigate's report: divergence, spikes, drops with their cause,
/// overfitting onset.
fn investigate_events(report: &Value) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    if let Some(s) = report["diverged_at"].as_u64() {
        out.push(("divergence".into(), s, String::new()));
    }
    for s in report["spikes"].as_array().unwrap() {
        out.push((
            "spike_started".into(),
            s["step"].as_u64().unwrap(),
            String::new(),
        ));
    }
    for d in report["drops"].as_array().unwrap() {
        let cause = d["explained_by"].as_str().unwrap().to_string();
        out.push(("drop".into(), d["step"].as_u64().unwrap(), cause));
    }
    if report["overfitting"]["verdict"] == "overfitting" {
        let epoch = report["overfitting"]["started_epoch"].as_u64().unwrap();
        out.push(("overfitting".into(), epoch, String::new()));
    }
    out.sort();
    out
}

fn once_events(lines: &str) -> Vec<(String, u64, String)> {
    let mut out: Vec<(String, u64, String)> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| kind(v) != "spike_recovered")
        .map(|v| {
            let step = match kind(&v) {
                "overfitting" => v["epoch"].as_u64().unwrap(),
                _ => v["step"].as_u64().unwrap(),
            };
            let cause = v["explained_by"].as_str().unwrap_or_default().to_string();
            (kind(&v).to_string(), step, cause)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn watch_once_reports_the_events_investigate_finds_on_every_fixture() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 15, "{fixtures:?}");
    for f in fixtures {
        let inv = run(&["investigate", arg(&f), "--format", "json"]);
        assert!(inv.status.success(), "{}: {}", f.display(), stderr(&inv));
        let report: Value = serde_json::from_str(&stdout(&inv)).unwrap();
        let once = run(&["watch", arg(&f), "--once", "--format", "json"]);
        assert_eq!(
            once.status.code(),
            Some(0),
            "{}: {}",
            f.display(),
            stderr(&once)
        );
        assert_eq!(
            once_events(&stdout(&once)),
            investigate_events(&report),
            "{}",
            f.display()
        );
    }
}

#[test]
fn watch_once_exits_1_when_fail_on_names_an_event_it_reports() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real/hf_alpaca_llama7b_fullft_3ep.trainer_state.json");
    let o = run(&["watch", arg(&f), "--once", "--fail-on", "unexplained-drop"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("explained by epoch_boundary"),
        "{}",
        stdout(&o)
    );
    let dir = temp_dir("watch-once-nan");
    let log = dir.join("train.csv");
    write_csv(&log, &rows(0..600, u64::MAX, 500, 9));
    let o = run(&[
        "watch",
        arg(&log),
        "--once",
        "--fail-on",
        "divergence,spike",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).starts_with("step 500: divergence"),
        "{}",
        stdout(&o)
    );
}
