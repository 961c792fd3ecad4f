//! Reading other pipelines' training logs into a `Trace`.
//!
//! The fixtures under tests/fixtures/import/ were written by the real writers
//! (see make_fixtures.py there): tensorboard's EventFileWriter, transformers'
//! TrainerState, burn-train's file layout.

use std::path::{Path, PathBuf};

use dropscope::error::InputError;
use dropscope::import::{
    self, Format, ImportOptions, Imported, read_trace, read_trace_dir, read_val_csv,
};
use dropscope::trace::{self, StepRecord, Trace, ValRecord};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(rel)
}

fn read(rel: &str) -> Imported {
    read_trace(&fixture(rel), &ImportOptions::default())
        .unwrap_or_else(|e| panic!("{rel} should read: {e}"))
}

fn read_err(rel: &str) -> String {
    read_err_with(rel, &ImportOptions::default())
}

fn read_err_with(rel: &str, opts: &ImportOptions) -> String {
    match read_trace(&fixture(rel), opts) {
        Ok(got) => panic!("{rel} should not read, got {:?}", got.trace.steps),
        Err(e) => e.to_string(),
    }
}

/// Asserts that a one-line error points at `FILE:LINE: FIELD:`.
fn assert_points_at(message: &str, rel: &str, line: u64, field: &str) {
    let wanted = format!("{}:{line}: {field}: ", fixture(rel).display());
    assert!(
        message.starts_with(&wanted),
        "expected '{wanted}...', got '{message}'"
    );
}

fn steps(t: &Trace) -> Vec<u64> {
    t.step_numbers()
}

fn epochs(t: &Trace) -> Vec<Option<u64>> {
    t.steps.iter().map(|s| s.epoch).collect()
}

fn lrs(t: &Trace) -> Vec<Option<f64>> {
    t.steps.iter().map(|s| s.lr).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// The fixtures' loss curve: a plateau that drops suddenly at step 20.
fn curve(step: u64) -> f64 {
    let base = if step < 20 { 2.3 } else { 0.9 };
    base - 0.01 * (step % 20) as f64
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dropscope-import-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// --- format names -------------------------------------------------------------

#[test]
fn format_names_parse_and_print_for_the_command_line() {
    for name in ["csv", "jsonl", "tensorboard", "burn-train", "hf-trainer"] {
        let format: Format = name.parse().unwrap();
        assert_eq!(format.to_string(), name);
    }
    assert_eq!("TensorBoard".parse::<Format>(), Ok(Format::TensorBoard));
    let err = "parquet".parse::<Format>().unwrap_err();
    assert!(
        err.contains("csv, jsonl, tensorboard, burn-train, hf-trainer"),
        "{err}"
    );
}

// --- CSV ----------------------------------------------------------------------

#[test]
fn csv_with_global_step_and_train_loss_names() {
    let got = read("csv/global_step.csv");
    assert_eq!(got.format, Format::Csv);
    let t = &got.trace;
    assert_eq!(t.name, "global_step");
    assert_eq!(steps(t), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(t.losses(), [2.25, 2.2, 2.15, 0.9, 0.85, 0.8, 0.75, 0.9]);
    // Hugging Face style fractional epochs are floored.
    let floored = [0, 0, 0, 1, 1, 1, 1, 2].map(Some);
    assert_eq!(epochs(t), floored);
    assert_eq!(lrs(t)[..4], [Some(0.1), Some(0.1), Some(0.1), Some(0.01)]);
    assert!(got.warnings.is_empty(), "{:?}", got.warnings);
}

#[test]
fn csv_column_overrides_name_odd_columns() {
    let opts = ImportOptions {
        step_col: Some("update no".into()),
        loss_col: Some("Objective".into()),
        epoch_col: Some("ep".into()),
        lr_col: Some("eta".into()),
        ..ImportOptions::default()
    };
    let t = read_trace(&fixture("csv/odd_names.csv"), &opts)
        .unwrap()
        .trace;
    assert_eq!(steps(&t), [0, 10, 20, 30, 40, 50]);
    assert_eq!(t.losses(), [2.3, 2.26, 2.22, 2.18, 2.14, 0.9]);
    assert_eq!(epochs(&t), [0, 0, 0, 1, 1, 1].map(Some));
    assert_eq!(lrs(&t)[5], Some(0.01));
}

#[test]
fn csv_override_naming_a_missing_column_lists_the_columns() {
    let opts = ImportOptions {
        loss_col: Some("objectiv".into()),
        ..ImportOptions::default()
    };
    let err = read_err_with("csv/odd_names.csv", &opts);
    assert_points_at(&err, "csv/odd_names.csv", 1, "objectiv");
    assert!(err.contains("Update No, Objective, Ep, eta"), "{err}");
}

#[test]
fn csv_without_a_step_column_numbers_rows_and_says_so() {
    let got = read("csv/no_step.csv");
    assert_eq!(steps(&got.trace), [0, 1, 2, 3, 4]);
    assert!(
        got.warnings.iter().any(|w| w.contains("row numbers")),
        "{:?}",
        got.warnings
    );
}

#[test]
fn dropscope_cell_folder_reads_with_its_non_finite_and_empty_cells() {
    let got = read("cell");
    let t = &got.trace;
    assert_eq!(t.name, "cell");
    assert_eq!(steps(t), [0, 1, 2, 3, 4, 5]);
    assert_eq!(t.steps[2].loss, 0.1 + 0.2);
    assert!(t.steps[3].loss.is_nan());
    assert_eq!(t.steps[4].loss, f64::INFINITY);
    assert_eq!(t.steps[5].loss, f64::NEG_INFINITY);
    assert_eq!(t.steps[4].epoch, None);
    assert_eq!(t.steps[3].batch_size, None);
    assert_eq!(
        lrs(t),
        [Some(0.1), Some(0.1), None, None, Some(0.001), Some(1e-7)]
    );
    assert_eq!(
        t.val,
        [
            ValRecord {
                epoch: 0,
                step: 2,
                val_loss: 2.05,
                val_accuracy: Some(0.41),
                train_loss_eval: None
            },
            ValRecord {
                epoch: 1,
                step: 4,
                val_loss: 0.85,
                val_accuracy: None,
                train_loss_eval: Some(0.8)
            },
        ]
    );
}

#[test]
fn trace_written_by_dropscope_reads_back_bit_identical() {
    let awkward = [
        0.1 + 0.2,
        1e-300,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
        -0.0,
        1.0 / 3.0,
        123_456_789.123_456_78,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut written = Trace::new("roundtrip");
    for (i, &loss) in awkward.iter().enumerate() {
        let i = i as u64;
        written.steps.push(StepRecord {
            step: i,
            epoch: (!i.is_multiple_of(3)).then_some(i / 4),
            batch: Some(i % 4),
            loss,
            lr: i
                .is_multiple_of(2)
                .then_some(awkward[(i as usize + 3) % awkward.len()]),
            batch_size: (!i.is_multiple_of(5)).then_some(32),
        });
    }
    written.val.push(ValRecord {
        epoch: 1,
        step: 4,
        val_loss: 2.0 / 3.0,
        val_accuracy: Some(0.1 + 0.7),
        train_loss_eval: None,
    });
    let dir = temp_dir("roundtrip");
    trace::write_dir(&written, &dir).unwrap();

    let back = read_trace_dir(&dir).unwrap();

    // Every field as bits, so -0.0 and 0.0 (or two NaNs) cannot pass for each other.
    let bits = |t: &Trace| -> Vec<[Option<u64>; 6]> {
        t.steps
            .iter()
            .map(|s| {
                [
                    Some(s.step),
                    s.epoch,
                    s.batch,
                    Some(s.loss.to_bits()),
                    s.lr.map(f64::to_bits),
                    s.batch_size,
                ]
            })
            .collect()
    };
    assert_eq!(bits(&back), bits(&written));
    assert_eq!(back.val, written.val);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn csv_nan_loss_is_kept_not_rejected() {
    let t = read_trace_dir(&fixture("cell")).unwrap();
    assert!(t.diverged());
}

#[test]
fn val_csv_accepts_the_usual_spellings() {
    let val = read_val_csv(&fixture("val/spellings.csv")).unwrap();
    assert_eq!(
        val,
        [
            ValRecord {
                epoch: 1,
                step: 20,
                val_loss: 2.0,
                val_accuracy: Some(0.4),
                train_loss_eval: None
            },
            ValRecord {
                epoch: 2,
                step: 40,
                val_loss: 0.8,
                val_accuracy: Some(0.85),
                train_loss_eval: None
            },
        ]
    );
}

#[test]
fn csv_errors_name_file_line_and_field() {
    let err = read_err("csv/broken/non_numeric.csv");
    assert_points_at(&err, "csv/broken/non_numeric.csv", 3, "loss");
    assert!(err.ends_with("not a number: 'abc'"), "{err}");

    let err = read_err("csv/broken/wrong_fields.csv");
    assert_points_at(&err, "csv/broken/wrong_fields.csv", 3, "field 4");
    assert!(err.contains("4 fields where the header has 3"), "{err}");

    let err = read_err("csv/broken/short_line.csv");
    assert_points_at(&err, "csv/broken/short_line.csv", 3, "lr");
    assert!(err.contains("2 fields where the header has 3"), "{err}");

    // A last line cut mid-write (no final newline) is what a killed writer leaves: the lines
    // before it are read, and a warning names the dropped line.
    let got = read("csv/broken/truncated.csv");
    assert_eq!(got.trace.steps.len(), 2);
    assert!(
        got.warnings
            .iter()
            .any(|w| w.contains("line 4 is incomplete")),
        "{:?}",
        got.warnings
    );

    let err = read_err("csv/broken/no_loss.csv");
    assert_points_at(&err, "csv/broken/no_loss.csv", 1, "loss");
    assert!(err.contains("the columns are: step, accuracy, lr"), "{err}");

    let err = read_err("csv/broken/no_header.csv");
    assert!(err.starts_with(&format!(
        "{}:1: ",
        fixture("csv/broken/no_header.csv").display()
    )));
    assert!(err.contains("no header"), "{err}");
}

#[test]
fn empty_and_missing_files_are_errors_naming_the_file() {
    let err = read_err("csv/broken/empty.csv");
    assert_eq!(
        err,
        format!("{}: empty file", fixture("csv/broken/empty.csv").display())
    );

    let err = read_err("csv/does_not_exist.csv");
    assert!(
        err.starts_with(&fixture("csv/does_not_exist.csv").display().to_string()),
        "{err}"
    );
}

// --- JSONL --------------------------------------------------------------------

#[test]
fn jsonl_training_lines_become_steps_and_eval_lines_val_points() {
    let got = read("jsonl/train.jsonl");
    assert_eq!(got.format, Format::Jsonl);
    let t = &got.trace;
    assert_eq!(steps(t), [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(&t.losses()[..6], [2.3, 2.26, 2.22, 2.18, 2.14, 0.9]);
    // Python's json writes a diverged loss as a bare NaN; it is kept.
    assert!(t.steps[6].loss.is_nan());
    assert_eq!(&epochs(t)[..6], [0, 0, 0, 1, 1, 1].map(Some));
    assert_eq!(t.steps[5].lr, Some(0.01));
    assert_eq!(t.steps[0].batch_size, Some(64));
    let val: Vec<_> = t
        .val
        .iter()
        .map(|v| (v.epoch, v.step, v.val_loss))
        .collect();
    assert_eq!(val, [(1, 3, 1.9), (2, 6, 0.7)]);
    assert!(
        got.warnings.iter().any(|w| w.contains("1 rows")),
        "{:?}",
        got.warnings
    );
}

#[test]
fn jsonl_key_overrides() {
    let opts = ImportOptions {
        step_col: Some("n".into()),
        loss_col: Some("objective".into()),
        lr_col: Some("eta".into()),
        ..ImportOptions::default()
    };
    let t = read_trace(&fixture("jsonl/odd_keys.jsonl"), &opts)
        .unwrap()
        .trace;
    assert_eq!(steps(&t), [0, 1, 2, 3]);
    assert_eq!(t.losses(), [2.3, 2.29, 2.28, 2.27]);
    assert_eq!(lrs(&t), [Some(0.5); 4]);
}

#[test]
fn jsonl_errors_name_file_line_and_key() {
    let err = read_err("jsonl/broken/bad_json.jsonl");
    assert!(
        err.starts_with(&format!(
            "{}:3: bad JSON",
            fixture("jsonl/broken/bad_json.jsonl").display()
        )),
        "{err}"
    );
    let err = read_err("jsonl/broken/non_numeric.jsonl");
    assert_points_at(&err, "jsonl/broken/non_numeric.jsonl", 2, "loss");
    assert!(err.ends_with("not a number: \"high\""), "{err}");
}

// --- TensorBoard --------------------------------------------------------------

#[test]
fn tensorboard_simple_value_scalars() {
    let got = read("tensorboard/simple");
    assert_eq!(got.format, Format::TensorBoard);
    let t = &got.trace;
    assert_eq!(t.name, "simple");
    assert_eq!(steps(t), (0..40).collect::<Vec<_>>());
    for s in &t.steps {
        assert!(close(s.loss, curve(s.step)), "step {}: {}", s.step, s.loss);
        let lr = if s.step < 20 { 0.1 } else { 0.01 };
        assert!(s.lr.is_some_and(|x| close(x, lr)));
        assert_eq!(s.epoch, Some(s.step / 20));
    }
    assert_eq!(t.val.len(), 2);
    assert_eq!(
        (t.val[0].epoch, t.val[0].step, t.val[0].val_loss),
        (0, 20, 2.0)
    );
    assert_eq!((t.val[1].epoch, t.val[1].step), (1, 40));
    assert!(close(t.val[1].val_loss, 0.8));
    assert!(t.val[1].val_accuracy.is_some_and(|a| close(a, 0.85)));
}

#[test]
fn tensorboard_file_is_read_alone_too() {
    let got = read("tensorboard/simple/events.out.tfevents.1700000000.fixture.1.0");
    assert_eq!(got.trace.steps.len(), 40);
}

#[test]
fn tensorboard_tf2_tensor_scalars() {
    let t = read("tensorboard/tf2").trace;
    assert_eq!(steps(&t), (0..10).collect::<Vec<_>>());
    // `loss` was written as a float_val tensor, `learning_rate` as tensor_content.
    assert!(close(t.steps[9].loss, curve(27)));
    assert!(t.steps[9].lr.is_some_and(|lr| close(lr, 0.01)));
    assert!(t.steps[0].lr.is_some_and(|lr| close(lr, 0.1)));
    assert_eq!(t.val.len(), 1);
    assert!(close(t.val[0].val_loss, 1.25));
}

#[test]
fn tensorboard_keras_train_and_validation_folders() {
    let t = read("tensorboard/keras").trace;
    assert_eq!(t.losses(), [1.5, 1.0, 0.5]);
    let val: Vec<_> = t.val.iter().map(|v| v.val_loss).collect();
    assert!(
        val.iter().zip([1.6, 1.1, 0.6]).all(|(a, b)| close(*a, b)),
        "{val:?}"
    );
}

#[test]
fn tensorboard_tag_option_picks_the_series() {
    let opts = ImportOptions {
        tag: Some("val/loss".into()),
        ..ImportOptions::default()
    };
    let t = read_trace(&fixture("tensorboard/simple"), &opts)
        .unwrap()
        .trace;
    // TensorBoard stores f32: compare at that precision.
    assert_eq!(t.losses(), [2.0, f64::from(0.8f32)]);

    let opts = ImportOptions {
        tag: Some("nope".into()),
        ..ImportOptions::default()
    };
    let err = read_err_with("tensorboard/simple", &opts);
    assert!(
        err.contains(": nope: no such scalar tag; the tags are: train/loss, train/lr"),
        "{err}"
    );
}

fn offset(rel: &str) -> usize {
    std::fs::read_to_string(fixture(rel))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn tensorboard_truncated_file_is_a_partial_read_with_a_warning() {
    let at = offset("tensorboard/broken/truncated_offset.txt");
    let got = read("tensorboard/broken/events.out.tfevents.truncated");
    let wanted = format!("partial read: truncated record at byte {at}");
    assert!(
        got.warnings.iter().any(|w| w.starts_with(&wanted)),
        "{:?}",
        got.warnings
    );
    let n = got.trace.steps.len();
    assert!(n > 30 && n < 40, "{n} steps");
    assert!(close(got.trace.steps[0].loss, 2.3));
}

#[test]
fn tensorboard_bad_checksum_stops_at_the_record() {
    let at = offset("tensorboard/broken/badcrc_offset.txt");
    let got = read("tensorboard/broken/events.out.tfevents.badcrc");
    let wanted = format!("partial read: bad data checksum in the record at byte {at}");
    assert!(
        got.warnings.iter().any(|w| w.starts_with(&wanted)),
        "{:?}",
        got.warnings
    );
    assert!(got.trace.steps.len() < 10);
}

#[test]
fn tensorboard_with_nothing_readable_is_an_error() {
    let err = read_err("tensorboard/broken/events.out.tfevents.empty_cut");
    assert!(
        err.contains(": byte 0: nothing could be read: truncated record at byte 0"),
        "{err}"
    );

    let opts = ImportOptions {
        format: Some(Format::TensorBoard),
        ..ImportOptions::default()
    };
    let err = read_err_with("csv/global_step.csv", &opts);
    assert!(
        err.ends_with(": byte 0: not a TensorBoard event file"),
        "{err}"
    );
}

#[test]
fn tensorboard_huge_record_length_stops_the_read_instead_of_allocating() {
    let path = fixture("tensorboard/simple/events.out.tfevents.1700000000.fixture.1.0");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len();
    bytes.extend(huge_record_header());

    let got = import::parse_bytes(
        Format::TensorBoard,
        &path,
        &bytes,
        &ImportOptions::default(),
    )
    .unwrap();

    assert_eq!(got.trace.steps.len(), 40);
    let wanted = format!("partial read: truncated record at byte {at}");
    assert!(
        got.warnings.iter().any(|w| w.starts_with(&wanted)),
        "{:?}",
        got.warnings
    );
}

/// A record header claiming 2^60 bytes, with a valid length checksum.
fn huge_record_header() -> Vec<u8> {
    // `frame` computes the masked CRC of its input's length; reuse it on an
    // 8-byte input whose bytes are the huge length, then keep its data part:
    // frame(x) = len(x) | crc(len(x)) | x | crc(x), so crc(huge) = the last 4 bytes.
    let huge = (1u64 << 60).to_le_bytes();
    let framed = import::tensorboard::frame(&huge);
    let crc = &framed[framed.len() - 4..];
    let mut out = huge.to_vec();
    out.extend_from_slice(crc);
    out.extend_from_slice(b"only a few bytes follow");
    out
}

// --- Hugging Face ----------------------------------------------------------------

#[test]
fn hf_trainer_state_from_a_checkpoint_folder() {
    let got = read("hf/checkpoint-40");
    assert_eq!(got.format, Format::HfTrainer);
    let t = &got.trace;
    assert_eq!(t.name, "checkpoint-40");
    assert_eq!(steps(t), [5, 10, 15, 20, 25, 30, 35, 40]);
    assert_eq!(t.losses(), [2.28, 2.23, 2.18, 2.13, 0.88, 0.83, 0.78, 0.73]);
    assert_eq!(epochs(t), [0, 0, 0, 1, 1, 1, 1, 2].map(Some));
    assert_eq!(lrs(t)[4], Some(0.01));
    assert_eq!(
        t.val,
        [
            ValRecord {
                epoch: 1,
                step: 20,
                val_loss: 2.0,
                val_accuracy: Some(0.4),
                train_loss_eval: None
            },
            ValRecord {
                epoch: 2,
                step: 40,
                val_loss: 0.8,
                val_accuracy: Some(0.85),
                train_loss_eval: None
            },
        ]
    );
    // logging_steps = 5: each loss is a mean over 5 steps.
    assert_eq!(t.log_mode, None);
    assert!(
        got.warnings.iter().any(|w| w.contains("logging_steps = 5")),
        "{:?}",
        got.warnings
    );
}

#[test]
fn hf_trainer_state_detected_by_content_and_nan_kept() {
    let got = read("hf/diverged_trainer_state.json");
    assert_eq!(got.format, Format::HfTrainer);
    assert!(got.trace.steps[3].loss.is_nan());
}

#[test]
fn hf_errors_name_the_entry_and_its_line() {
    let err = read_err("hf/broken/bad_loss.json");
    assert_points_at(&err, "hf/broken/bad_loss.json", 26, "log_history[2].loss");
    assert!(err.ends_with("not a number: \"abc\""), "{err}");

    let err = read_err("hf/broken/cut.json");
    assert!(err.contains("bad JSON"), "{err}");
    let line = err.split(':').nth(1).and_then(|l| l.parse::<u64>().ok());
    assert!(line.is_some_and(|l| l > 40), "{err}");
}

// --- burn-train ---------------------------------------------------------------

#[test]
fn burn_train_artifact_folder() {
    let got = read("burn_train/artifact");
    assert_eq!(got.format, Format::BurnTrain);
    let t = &got.trace;
    assert_eq!(t.name, "artifact");
    assert_eq!(steps(t), (0..12).collect::<Vec<_>>());
    assert_eq!(&t.losses()[..3], [2.3, 2.27, 2.24]);
    assert_eq!(epochs(t), [[Some(1); 6], [Some(2); 6]].concat());
    let batches: Vec<_> = t.steps.iter().map(|s| s.batch).collect();
    assert_eq!(batches[..7], [0, 1, 2, 3, 4, 5, 0].map(Some));
    assert_eq!(t.steps[5].batch_size, Some(8));
    assert_eq!(t.steps[0].batch_size, Some(32));
    assert_eq!(t.steps[11].lr, Some(0.01));
    assert_eq!(t.log_mode, Some(trace::LogMode::PerStep));
    // Validation: the epoch's `final` entry; accuracy from percent to a fraction.
    assert_eq!(t.val.len(), 2);
    assert_eq!((t.val[0].epoch, t.val[0].step), (1, 6));
    assert_eq!(
        (t.val[1].epoch, t.val[1].step, t.val[1].val_loss),
        (2, 12, 0.836)
    );
    assert_eq!(t.val[1].val_accuracy, Some(0.86));
}

#[test]
fn burn_train_train_folder_is_read_as_its_artifact_folder() {
    let t = read_trace(
        &fixture("burn_train/artifact/train"),
        &ImportOptions {
            format: Some(Format::BurnTrain),
            ..ImportOptions::default()
        },
    )
    .unwrap()
    .trace;
    assert_eq!(t.steps.len(), 12);
    assert_eq!(t.val.len(), 2);
}

#[test]
fn burn_train_error_names_file_line_and_metric() {
    let err = read_err("burn_train/broken");
    assert_points_at(&err, "burn_train/broken/train/epoch-1/Loss.log", 3, "Loss");
}

// --- bytes-level entry points -----------------------------------------------------

#[test]
fn parse_bytes_reads_a_log_held_in_memory() {
    let csv = b"step,loss\n0,1.5\n1,1.25\n";
    let got = import::parse_bytes(
        Format::Csv,
        Path::new("mem.csv"),
        csv,
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(got.trace.losses(), [1.5, 1.25]);
    let err: InputError = import::parse_bytes(
        Format::BurnTrain,
        Path::new("x"),
        b"",
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(err.message.contains("folder"));
}
