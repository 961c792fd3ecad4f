//! Tests across formats: the registry, detection of every fixture and real
//! log, reading them, and the fuzz targets that must follow the registry.

use std::path::{Path, PathBuf};

use super::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import")
}

/// The published logs the project keeps beside the repository (shared/real-logs).
fn real_logs() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/real-logs");
    dir.is_dir().then_some(dir)
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The format each fixture folder holds; `None` for folders of folder formats
/// (burn-train) and for files that are not logs.
fn expected_for_fixture(rel: &Path) -> Option<Format> {
    let name = rel.file_name()?.to_string_lossy();
    if name == "README.md" || name.ends_with(".py") || name.ends_with(".txt") {
        return None;
    }
    let top = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    Some(match top.as_str() {
        "csv" | "cell" | "val" => Format::Csv,
        "jsonl" => Format::Jsonl,
        "hf" => Format::HfTrainer,
        "tensorboard" => Format::TensorBoard,
        "detectron2" => Format::Detectron2,
        "llama_factory" => Format::LlamaFactory,
        "lightning" => Format::Lightning,
        "keras" => Format::Keras,
        "mmengine" => Format::MmEngine,
        "wandb" => Format::Wandb,
        // A file with no log line cannot be told from text: it falls to the CSV reader.
        "text" if name == "no_log_line.log" => Format::Csv,
        "text" => Format::Text,
        _ => return None,
    })
}

fn expected_for_real_log(name: &str) -> Option<Format> {
    Some(match name {
        n if n.ends_with(".converted.csv") => Format::Csv,
        n if n.starts_with("hf_") => Format::HfTrainer,
        n if n.starts_with("tb_") => Format::TensorBoard,
        n if n.starts_with("lf_") => Format::LlamaFactory,
        n if n.starts_with("d2_") => Format::Detectron2,
        _ => return None,
    })
}

fn detect(path: &Path) -> Format {
    detect_format(path, &std::fs::read(path).unwrap())
}

fn read(rel: &str) -> Imported {
    let path = fixtures().join(rel);
    read_trace(&path, &ImportOptions::default()).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn every_format_has_a_unique_name_that_parses_back_and_appears_in_the_help() {
    let help = Format::help();
    for (i, f) in Format::ALL.iter().enumerate() {
        assert_eq!(f.name().parse::<Format>(), Ok(*f));
        assert_eq!(f.to_string(), f.name());
        assert!(help.contains(&format!("{}: ", f.name())), "{help}");
        assert!(Format::ALL[..i].iter().all(|g| g.name() != f.name()));
    }
    let err = "parquet".parse::<Format>().unwrap_err();
    assert!(err.ends_with(&Format::names()), "{err}");
}

#[test]
fn every_format_has_a_fuzz_target_listed_in_the_fuzz_manifest() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    for f in Format::ALL {
        let target = f.fuzz_target();
        let file = fuzz.join("fuzz_targets").join(format!("{target}.rs"));
        assert!(
            file.is_file(),
            "{} has no fuzz target {}",
            f,
            file.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "fuzz/Cargo.toml does not list {target}"
        );
    }
}

#[test]
fn every_fixture_file_is_detected_as_its_format() {
    let root = fixtures();
    let mut files = Vec::new();
    files_under(&root, &mut files);
    let mut checked = 0;
    for file in files {
        let rel = file.strip_prefix(&root).unwrap();
        let Some(wanted) = expected_for_fixture(rel) else {
            continue;
        };
        assert_eq!(detect(&file), wanted, "{}", rel.display());
        checked += 1;
    }
    assert!(checked > 40, "only {checked} fixtures found");
}

#[test]
fn fixture_folders_are_detected_as_their_format() {
    let cases = [
        ("burn_train/artifact", Some(Format::BurnTrain)),
        ("tensorboard/keras", Some(Format::TensorBoard)),
        ("hf/checkpoint-40", Some(Format::HfTrainer)),
        ("cell", None),
    ];
    for (rel, wanted) in cases {
        let got = match detect::dir_format(&fixtures().join(rel)).unwrap() {
            detect::DirKind::Format(f) => Some(f),
            detect::DirKind::Cell => None,
        };
        assert_eq!(got, wanted, "{rel}");
    }
}

#[test]
fn every_real_log_is_detected_as_its_format_and_reads() {
    let Some(dir) = real_logs() else {
        eprintln!("shared/real-logs is not beside the repository: skipped");
        return;
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(wanted) = expected_for_real_log(&name) else {
            continue;
        };
        assert_eq!(detect(&entry.path()), wanted, "{name}");
        checked += 1;
        if name.contains("_val.") {
            // Validation points only: read with --val, not as a training log.
            continue;
        }
        let got = read_trace(&entry.path(), &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!got.trace.steps.is_empty(), "{name}");
    }
    assert!(
        checked >= 9,
        "only {checked} real logs found in {}",
        dir.display()
    );
}

#[test]
fn every_good_fixture_of_the_new_formats_reads() {
    let root = fixtures();
    let mut files = Vec::new();
    for dir in [
        "detectron2",
        "llama_factory",
        "lightning",
        "keras",
        "mmengine",
        "wandb",
        "text",
    ] {
        files_under(&root.join(dir), &mut files);
    }
    for file in files {
        let rel = file.strip_prefix(&root).unwrap();
        if rel.components().any(|c| c.as_os_str() == "broken")
            || expected_for_fixture(rel).is_none()
        {
            continue;
        }
        let got = read_trace(&file, &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", rel.display()));
        assert!(got.trace.steps.len() >= 3, "{}", rel.display());
        assert_eq!(Some(got.format), expected_for_fixture(rel));
    }
}

#[test]
fn broken_fixtures_fail_with_one_line_naming_file_line_and_field() {
    let cases = [
        (
            "detectron2/broken/bad_iteration.metrics.json",
            Format::Detectron2,
            "2: iteration: ",
        ),
        (
            "llama_factory/broken/bad_elapsed.trainer_log.jsonl",
            Format::LlamaFactory,
            "2: elapsed_time: ",
        ),
        (
            "lightning/broken/bad_step.csv",
            Format::Lightning,
            "3: step: ",
        ),
        ("keras/broken/empty_loss.log", Format::Keras, "3: loss: "),
        (
            "mmengine/broken/bad_loss.json",
            Format::MmEngine,
            "2: loss: ",
        ),
        ("wandb/broken/bad_step.csv", Format::Wandb, "3: _step: "),
        (
            "text/broken/no_log_line.log",
            Format::Text,
            "1: no line has a step and a loss",
        ),
    ];
    for (rel, format, at) in cases {
        let path = fixtures().join(rel);
        let opts = ImportOptions {
            format: Some(format),
            ..ImportOptions::default()
        };
        let err = read_trace(&path, &opts).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}:{at}", path.display())),
            "{rel}: {err}"
        );
        assert!(!err.contains('\n'), "{rel}: {err}");
    }
}

#[test]
fn the_real_llama_factory_excerpt_averages_ranks_and_keeps_the_resumed_copy() {
    let got = read("llama_factory/qwen25_resume_excerpt.trainer_log.jsonl");
    let warnings = got.warnings.join("\n");
    assert!(
        warnings.contains("a resumed run logged steps 5010-5240 again"),
        "{warnings}"
    );
    assert!(
        warnings.contains("one line per process, up to 2 per step"),
        "{warnings}"
    );
    let t = &got.trace;
    let steps = t.step_numbers();
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "one record per step, in order"
    );
    // Step 5010: the resumed run's two ranks both logged 0.394.
    let at_5010 = t.steps.iter().find(|s| s.step == 5010).unwrap();
    assert!((at_5010.loss - 0.394).abs() < 1e-12, "{}", at_5010.loss);
    // Step 5060: the resumed run's ranks logged 0.3781 and 0.3782.
    let at_5060 = t.steps.iter().find(|s| s.step == 5060).unwrap();
    assert!((at_5060.loss - 0.37815).abs() < 1e-12, "{}", at_5060.loss);
    assert_eq!(got.sampling.interval_steps, Some(10));
}

#[test]
fn the_whole_real_llama_factory_log_has_one_point_per_logged_step() {
    let Some(dir) = real_logs() else { return };
    let path = dir.join("lf_qwen25_3b_fullft_7ep.trainer_log.jsonl");
    let got = read_trace(&path, &ImportOptions::default()).unwrap();
    // The README counts 656 unique steps.
    assert_eq!(got.trace.steps.len(), 656);
    assert!(
        got.warnings
            .iter()
            .any(|w| w.contains("steps 5010-5240 again")),
        "{:?}",
        got.warnings
    );
    assert_eq!(got.trace.steps.last().map(|s| s.epoch), Some(Some(6)));
}

#[test]
fn the_real_detectron2_log_is_a_twenty_iteration_median_every_twenty() {
    let got = read("detectron2/medwaste_excerpt.metrics.json");
    assert_eq!(got.trace.steps.len(), 16);
    assert_eq!(got.trace.steps[0].step, 1399);
    assert_eq!(got.sampling.interval_steps, Some(20));
    assert_eq!(
        got.sampling.aggregation,
        Aggregation::WindowMedian { window: 20 }
    );
    // The LR cut at iteration 1500 is in the lr column.
    let lr = |step| {
        got.trace
            .steps
            .iter()
            .find(|s| s.step == step)
            .and_then(|s| s.lr)
    };
    assert!(lr(1499).unwrap() > 10.0 * lr(1519).unwrap());
}

#[test]
fn the_lightning_fixtures_read_as_lightning_wrote_them() {
    let got = read("lightning/on_step_and_epoch/metrics.csv");
    assert_eq!(
        got.trace.step_numbers(),
        [2, 5, 8, 11, 14, 17, 20, 23, 26, 29]
    );
    assert_eq!(
        got.trace
            .val
            .iter()
            .map(|v| (v.epoch, v.step))
            .collect::<Vec<_>>(),
        [(0, 10), (1, 20), (2, 30)]
    );
    assert_eq!(
        got.sampling,
        Sampling {
            interval_steps: Some(3),
            aggregation: Aggregation::PerStep
        }
    );
    let got = read("lightning/lr_monitor/metrics.csv");
    assert_eq!(got.trace.steps.len(), 8);
    assert_eq!(got.trace.steps[0].lr, Some(0.05));
    assert!((got.trace.steps[7].lr.unwrap() - 0.005).abs() < 1e-12);
}

#[test]
fn the_keras_fixture_is_one_point_per_epoch_with_its_rate_cut() {
    let got = read("keras/training.log");
    assert_eq!(got.trace.step_numbers(), [0, 1, 2, 3, 4, 5]);
    assert_eq!(got.trace.val.len(), 6);
    assert!(got.trace.steps[3].lr.unwrap() < 0.011);
    assert!(got.warnings[0].starts_with("per-epoch log"));
}

#[test]
fn the_openmmlab_fixtures_give_global_steps_and_validation_points() {
    for rel in ["mmengine/scalars.json", "mmengine/20240101_000000.log.json"] {
        let got = read(rel);
        let steps: Vec<u64> = (1..=12).map(|i| i * 5).collect();
        assert_eq!(got.trace.step_numbers(), steps, "{rel}");
        let val: Vec<_> = got.trace.val.iter().map(|v| (v.epoch, v.step)).collect();
        assert_eq!(val, [(1, 20), (2, 40), (3, 60)], "{rel}");
        assert!(
            got.trace.steps[8].lr.unwrap() < 0.006,
            "{rel}: the MultiStepLR cut"
        );
    }
}

#[test]
fn the_text_fixtures_read_per_writer() {
    let got = read("text/llmc_gpt2_124m_excerpt.main.log");
    assert_eq!(got.trace.steps.len(), 260);
    assert_eq!(
        got.trace.val.iter().map(|v| v.step).collect::<Vec<_>>(),
        [0, 250]
    );
    assert_eq!(got.sampling.aggregation, Aggregation::PerStep);
    let got = read("text/nanogpt_stdout.log");
    assert_eq!(got.trace.steps.len(), 41);
    assert_eq!(got.trace.val.len(), 3);
    assert!(got.trace.val.iter().all(|v| v.train_loss_eval.is_some()));
    let got = read("text/megatron_stdout.log");
    assert_eq!(got.trace.step_numbers(), [10, 20, 30, 40]);
    assert_eq!(
        got.trace.val.iter().map(|v| v.step).collect::<Vec<_>>(),
        [20, 40]
    );
    assert_eq!(
        got.sampling.aggregation,
        Aggregation::WindowMean { window: Some(10) }
    );
}

#[test]
fn the_wandb_fixtures_use_the_trainer_step() {
    let got = read("wandb/history.csv");
    assert_eq!(got.trace.step_numbers(), [5, 10, 15, 20, 25, 30, 35, 40]);
    assert_eq!(
        got.trace.val.iter().map(|v| v.step).collect::<Vec<_>>(),
        [20, 40]
    );
    let got = read("wandb/panel_export.csv");
    assert_eq!(got.trace.steps.len(), 8);
}

#[test]
fn hf_sampling_comes_from_logging_steps() {
    let got = read("hf/checkpoint-40/trainer_state.json");
    assert_eq!(got.sampling, Sampling::window_mean(Some(5)));
    let Some(dir) = real_logs() else { return };
    let path = dir.join("hf_alpaca_llama7b_fullft_3ep.trainer_state.json");
    let got = read_trace(&path, &ImportOptions::default()).unwrap();
    assert_eq!(
        got.sampling,
        Sampling {
            interval_steps: Some(1),
            aggregation: Aggregation::PerStep
        }
    );
}

#[test]
fn no_format_panics_on_truncated_or_garbled_fixtures() {
    let root = fixtures();
    let mut files = Vec::new();
    files_under(&root, &mut files);
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for cut in [
            0,
            1,
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len().saturating_sub(1),
        ] {
            let cut = cut.min(bytes.len());
            let mut garbled = bytes[..cut].to_vec();
            garbled.extend_from_slice(b"\xff\xfe{\"\n:=|NaN");
            for &format in Format::ALL {
                fuzz(format, &bytes[..cut]);
                fuzz(format, &garbled);
            }
        }
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dropscope-import-unit-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn forced(format: Format) -> ImportOptions {
    ImportOptions {
        format: Some(format),
        ..ImportOptions::default()
    }
}

#[test]
fn learning_rates_that_are_nan_or_infinite_become_none_with_one_warning_in_every_format() {
    let got = read("csv/nan_lr.csv");
    let lrs: Vec<_> = got.trace.steps.iter().map(|s| s.lr).collect();
    assert_eq!(lrs, [Some(0.1), None, None, None, Some(0.05)]);
    assert!(
        got.warnings
            .contains(&"3 learning rates were NaN or infinite and are ignored".to_string()),
        "{:?}",
        got.warnings
    );
    let cases: [(Format, &str); 7] = [
        (
            Format::Jsonl,
            "{\"step\": 0, \"loss\": 2.3, \"lr\": NaN}\n{\"step\": 1, \"loss\": 2.2, \"lr\": 0.1}\n",
        ),
        (
            Format::Detectron2,
            "{\"iteration\": 19, \"total_loss\": 2.3, \"lr\": NaN}\n\
             {\"iteration\": 39, \"total_loss\": 2.2, \"lr\": 0.1}\n",
        ),
        (
            Format::HfTrainer,
            "{\"log_history\": [{\"step\": 5, \"loss\": 2.3, \"learning_rate\": NaN}, \
             {\"step\": 10, \"loss\": 2.2, \"learning_rate\": 0.1}]}\n",
        ),
        (
            Format::Keras,
            "epoch,learning_rate,loss\n0,inf,2.3\n1,0.1,2.2\n",
        ),
        (
            Format::Wandb,
            "_step,train/loss,train/learning_rate\n0,2.3,NaN\n1,2.2,0.1\n",
        ),
        (
            Format::LlamaFactory,
            "{\"current_steps\": 5, \"total_steps\": 10, \"loss\": 2.3, \"lr\": NaN}\n\
             {\"current_steps\": 10, \"total_steps\": 10, \"loss\": 2.2, \"lr\": 0.1}\n",
        ),
        (
            Format::Text,
            "step 5 | loss 2.3 | lr nan\nstep 10 | loss 2.2 | lr 0.1\n",
        ),
    ];
    for (format, text) in cases {
        let got = parse_bytes(format, Path::new("x"), text.as_bytes(), &forced(format))
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        let lrs: Vec<_> = got.trace.steps.iter().map(|s| s.lr).collect();
        assert_eq!(lrs, [None, Some(0.1)], "{format}");
        let warned = got
            .warnings
            .iter()
            .filter(|w| w.contains("NaN or infinite"))
            .collect::<Vec<_>>();
        assert_eq!(
            warned,
            ["1 learning rate was NaN or infinite and is ignored"],
            "{format}"
        );
    }
    // Folders too: a dropscope cell folder read as a log.
    let dir = temp_dir("nan-lr-cell");
    std::fs::write(
        dir.join("trace.csv"),
        "step,loss,lr\n0,2.3,NaN\n1,2.2,0.1\n",
    )
    .unwrap();
    let got = read_trace(&dir, &ImportOptions::default()).unwrap();
    assert_eq!(got.trace.steps[0].lr, None);
    assert_eq!(got.warnings.len(), 1, "{:?}", got.warnings);
}

#[test]
fn a_jsonl_file_whose_first_line_is_cut_is_still_jsonl_and_fails_at_line_1() {
    let path = fixtures().join("jsonl/broken/garbled_first_line.jsonl");
    assert_eq!(detect(&path), Format::Jsonl);
    let err = read_trace(&path, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("{}:1: bad JSON", path.display())),
        "{err}"
    );
    // Garbage that does not even start like JSON, then JSON lines.
    let mut text = String::from("\u{1}\u{2}garbage, not a header\n");
    for s in 0..6 {
        text.push_str(&format!("{{\"step\": {s}, \"loss\": 2.0}}\n"));
    }
    let name = Path::new("run.log");
    assert_eq!(detect_format(name, text.as_bytes()), Format::Jsonl);
    // Two JSON lines in a CSV do not make it JSON Lines.
    let csv = "step,loss\n{\"a\": 1}\n0,2.3\n1,2.2\n2,2.1\n";
    assert_eq!(detect_format(name, csv.as_bytes()), Format::Csv);
}

#[test]
fn a_last_line_cut_mid_write_is_dropped_with_a_warning_naming_it() {
    let cases = [
        ("csv/killed_mid_line.csv", 4, 2),
        ("csv/broken/truncated.csv", 4, 2),
        ("jsonl/killed_mid_line.jsonl", 5, 4),
    ];
    for (rel, line, kept) in cases {
        let got = read(rel);
        assert_eq!(got.trace.steps.len(), kept, "{rel}");
        let wanted = format!("line {line} is incomplete (the file ends mid-line): ignored");
        assert_eq!(got.warnings.first(), Some(&wanted), "{rel}");
    }
    // Every line-oriented reader, e.g. Keras' CSVLogger killed mid-epoch.
    let keras = "epoch,loss\n0,2.3\n1,2.2\n2,2.1\n3,2.0e";
    let got = parse_bytes(
        Format::Keras,
        Path::new("training.log"),
        keras.as_bytes(),
        &forced(Format::Keras),
    )
    .unwrap();
    assert_eq!(got.trace.steps.len(), 3);
    assert!(got.warnings[0].starts_with("line 5 is incomplete"));
}

#[test]
fn a_bad_line_in_the_middle_or_a_bad_last_line_with_its_newline_stays_an_error() {
    let cases = [
        ("csv/broken/non_numeric.csv", 3),
        ("jsonl/broken/bad_json.jsonl", 3),
        ("jsonl/broken/non_numeric.jsonl", 2),
    ];
    for (rel, line) in cases {
        let path = fixtures().join(rel);
        let err = read_trace(&path, &ImportOptions::default()).unwrap_err();
        assert_eq!(err.line, Some(line), "{rel}: {err}");
    }
    // Cut before its last line, and bad in the middle: the middle line is the error.
    let text = "step,loss\n0,2.3\n1,oops\n2,2.1\n3,2.";
    let err = parse_bytes(
        Format::Csv,
        Path::new("x.csv"),
        text.as_bytes(),
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
    // A file that is only a cut line has nothing before it to read.
    let err = parse_bytes(
        Format::Csv,
        Path::new("x.csv"),
        b"step,loss\n0",
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(err.message.contains("truncated last line"), "{err}");
}

#[test]
fn huge_nested_arrays_or_names_give_a_short_error_message() {
    let nested = format!("[{}]", vec!["[0.1, 0.2, [0.3]]"; 12_000].join(", "));
    assert!(nested.len() > 200_000);
    let name = Path::new("arrays.jsonl");
    let mut cases = vec![format!("{nested}\n{nested}\n{nested}\n")];
    // A loss that is an array, a key 200 KB long, a CSV header 200 KB wide.
    cases.push(format!("{{\"step\": 0, \"loss\": {nested}}}\n"));
    cases.push(format!("{{\"{}\": 1}}\n", "k".repeat(200_000)));
    cases.push(format!("{}\n1\n", vec!["column"; 30_000].join(",")));
    for text in cases {
        let format = detect_format(name, text.as_bytes());
        let err =
            parse_bytes(format, name, text.as_bytes(), &ImportOptions::default()).unwrap_err();
        assert!(
            err.message.chars().count() < 400,
            "{format}: {} chars: {}",
            err.message.len(),
            crate::error::excerpt(&err.message, 200)
        );
        assert!(err.field.as_ref().is_none_or(|f| f.chars().count() < 100));
    }
}

#[test]
fn files_too_big_are_refused_before_reading_also_inside_folders() {
    let huge = |path: &Path| {
        // Sparse: the size is there, the disk blocks are not.
        let file = std::fs::File::create(path).unwrap();
        file.set_len(MAX_LOG_BYTES + 1).unwrap();
    };
    let wanted = format!("larger than {MAX_LOG_BYTES} bytes");
    let dir = temp_dir("huge");
    let log = dir.join("train.csv");
    huge(&log);
    let hf = dir.join("checkpoint-5");
    std::fs::create_dir_all(&hf).unwrap();
    huge(&hf.join("trainer_state.json"));
    let tb = dir.join("tb");
    std::fs::create_dir_all(&tb).unwrap();
    huge(&tb.join("events.out.tfevents.1.host"));
    for path in [&log, &hf, &tb] {
        let err = read_trace(path, &ImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&wanted), "{}: {err}", path.display());
        assert!(!err.contains('\n'));
    }
    let err = read_val_csv(&log).unwrap_err().to_string();
    assert!(err.contains(&wanted), "{err}");
}

#[cfg(unix)]
#[test]
fn a_burn_train_log_that_never_ends_a_line_fails_at_the_line_cap() {
    let zero = Path::new("/dev/zero");
    if !zero.exists() {
        return;
    }
    let dir = temp_dir("burn-zero");
    let epoch = dir.join("train/epoch-1");
    std::fs::create_dir_all(&epoch).unwrap();
    std::os::unix::fs::symlink(zero, epoch.join("Loss.log")).unwrap();
    let err = read_trace(&dir, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("Loss.log:1: line longer than 1 MiB"), "{err}");
}
