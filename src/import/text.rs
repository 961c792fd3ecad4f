//! Plain-text training logs made of key/value lines, one importer for many writers:
//! - llm.c's `main.log`: `s:100 trl:3.2851 lr:0.000600 norm:0.31` and validation
//!   lines `s:250 tel:3.3001` (`logger_log_train`/`logger_log_val`, one line per step);
//! - nanoGPT's stdout: `iter 100: loss 3.2851, time 120.00ms, mfu 30.00%`, and its
//!   evaluations `step 250: train loss 3.28, val loss 3.30` (both estimated in eval mode);
//! - Megatron-LM's stdout: `iteration  100/ 500000 | ... | learning rate: 6.0E-04 |
//!   ... | lm loss: 3.2851E+00 | ...` (the mean over `log_interval` iterations), and
//!   `validation loss at iteration 1000 | lm loss value: 3.30E+00 | ...`;
//! - hand-written loops: `step 100 | loss 3.28 | lr 1e-4`, `epoch=1 step=100 loss=3.28`.
//!
//! A key is the words before a number (case-insensitive); keys and values are
//! separated by `:`, `=` or spaces, pairs by `|`, `,`, `;` or spaces. A line is
//! a log line when it has a step and a training or validation loss; other lines
//! (banners, config dumps) are skipped and counted. A line with a validation
//! loss is an evaluation: its training loss, if any, is the eval-mode one.

use std::path::Path;

use super::csv::clip;
use super::detect::Probe;
use super::lines::{MAX_LINE_BYTES, too_long};
use super::num::{floor_f64, integral_f64, parse_f64};
use super::registry::{Confidence, LogFormat};
use super::relog;
use super::rows::{Row, TraceBuilder};
use super::sampling::{Aggregation, Sampling, median_gap};
use super::{Format, ImportOptions, Imported, trace_name};
use crate::error::InputError;
use crate::trace::LogMode;

const STEP: &[&str] = &[
    "s",
    "step",
    "steps",
    "iter",
    "iteration",
    "it",
    "global_step",
    "global step",
    "validation loss at iteration",
];
const LOSS: &[&str] = &[
    "trl",
    "loss",
    "train_loss",
    "train loss",
    "training loss",
    "training_loss",
    "lm loss",
    "total_loss",
    "train/loss",
    "loss/train",
];
const VAL_LOSS: &[&str] = &[
    "tel",
    "val_loss",
    "val loss",
    "valid_loss",
    "valid loss",
    "validation loss",
    "validation_loss",
    "eval_loss",
    "eval loss",
    "val/loss",
    "lm loss value",
];
const LR: &[&str] = &["lr", "learning_rate", "learning rate", "lr/train"];
const EPOCH: &[&str] = &["epoch", "ep"];

/// llm.c's training key: its value is that step's loss.
const LLMC_LOSS: &str = "trl";
/// Megatron's training key: its value is the mean over the logging interval.
const MEGATRON_LOSS: &str = "lm loss";

pub struct KeyValueText;

impl LogFormat for KeyValueText {
    fn name(&self) -> &'static str {
        "text"
    }

    fn summary(&self) -> &'static str {
        "plain-text key/value lines: llm.c (s:N trl:X), nanoGPT (iter N: loss X), Megatron, step N | loss X"
    }

    fn recognize(&self, probe: &Probe<'_>) -> Confidence {
        if probe.starts_with_brace() || probe.mostly_json {
            return Confidence::No;
        }
        let keys = Keys::default();
        match probe.text_head().lines().any(|l| keys.record(l).is_some()) {
            true => Confidence::Keys,
            false => Confidence::No,
        }
    }

    fn parse(
        &self,
        name: &Path,
        bytes: &[u8],
        opts: &ImportOptions,
    ) -> Result<Imported, InputError> {
        parse(name, bytes, opts)
    }
}

/// The key spellings for each field, with the user's overrides first.
#[derive(Default)]
struct Keys {
    step: Option<String>,
    loss: Option<String>,
    lr: Option<String>,
    epoch: Option<String>,
}

/// What one log line says.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Record {
    step: u64,
    loss: Option<f64>,
    val_loss: Option<f64>,
    lr: Option<f64>,
    epoch: Option<u64>,
    /// Whether the training loss came from llm.c's or Megatron's key.
    loss_key: LossKey,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum LossKey {
    LlmC,
    Megatron,
    Other,
}

impl Keys {
    fn from(opts: &ImportOptions) -> Keys {
        let lower = |o: &Option<String>| o.as_ref().map(|s| s.trim().to_lowercase());
        Keys {
            step: lower(&opts.step_col),
            loss: lower(&opts.loss_col),
            lr: lower(&opts.lr_col),
            epoch: lower(&opts.epoch_col),
        }
    }

    /// The line as a record, when it has a step and a loss.
    fn record(&self, line: &str) -> Option<Record> {
        let pairs = pairs(line);
        let find = |given: &Option<String>, names: &[&str]| {
            pairs.iter().find(|(k, _)| match given {
                Some(g) => k == g,
                None => names.contains(&k.as_str()),
            })
        };
        let step = find(&self.step, STEP).and_then(|(_, v)| integral_f64(*v))?;
        let loss_pair = find(&self.loss, LOSS);
        let val_loss = find(&None, VAL_LOSS).map(|(_, v)| *v);
        if loss_pair.is_none() && val_loss.is_none() {
            return None;
        }
        let loss_key = match loss_pair.map(|(k, _)| k.as_str()) {
            Some(LLMC_LOSS) => LossKey::LlmC,
            Some(MEGATRON_LOSS) => LossKey::Megatron,
            _ => LossKey::Other,
        };
        Some(Record {
            step,
            loss: loss_pair.map(|(_, v)| *v),
            val_loss,
            lr: find(&self.lr, LR).map(|(_, v)| *v),
            epoch: find(&self.epoch, EPOCH).and_then(|(_, v)| floor_f64(*v)),
            loss_key,
        })
    }
}

/// A line's `key value` pairs: each number with the words just before it, the key in lower case.
fn pairs(line: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let mut key: Vec<&str> = Vec::new();
    // After `:` or `=` the key is complete: a word there starts a new key.
    let mut closed = false;
    for token in tokens(line) {
        match token {
            Token::Word(w) => {
                if closed {
                    key.clear();
                    closed = false;
                }
                key.push(w);
            }
            Token::Assign => closed = !key.is_empty(),
            Token::Number(value) => {
                if !key.is_empty() {
                    out.push((key.join(" ").to_lowercase(), value));
                }
                key.clear();
                closed = false;
            }
            Token::Separator => {
                key.clear();
                closed = false;
            }
        }
    }
    out
}

enum Token<'a> {
    Word(&'a str),
    Number(f64),
    /// `:` or `=` between a key and its value.
    Assign,
    /// `|`, `,`, `;` between pairs, or filler such as `...` and `-`.
    Separator,
}

fn tokens(line: &str) -> impl Iterator<Item = Token<'_>> {
    let mut rest = line;
    std::iter::from_fn(move || {
        rest = rest.trim_start();
        let c = rest.chars().next()?;
        let punct = match c {
            ':' | '=' => Some(Token::Assign),
            '|' | ',' | ';' => Some(Token::Separator),
            _ => None,
        };
        if let Some(token) = punct {
            rest = &rest[c.len_utf8()..];
            return Some(token);
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, ':' | '=' | '|' | ',' | ';'))
            .unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some(classify(word))
    })
}

/// Brackets and quotes around a token are decoration: `[iter`, `(ms)`, `"loss"`;
/// a token with no letter or digit (`...`, `-`, `>>`) only separates.
fn classify(raw: &str) -> Token<'_> {
    const DECORATION: &[char] = &['[', ']', '(', ')', '{', '}', '"', '\''];
    let word = raw.trim_matches(DECORATION);
    if !word.chars().any(char::is_alphanumeric) {
        return Token::Separator;
    }
    match number(word) {
        Some(x) => Token::Number(x),
        None => Token::Word(word),
    }
}

/// A number as logs print them: `3.2851`, `6.0E-04`, `nan`, `100/500000` (the
/// step of a total), `120.00ms` or `30.00%` (with a unit).
fn number(word: &str) -> Option<f64> {
    if let Some(x) = parse_f64(word) {
        return Some(x);
    }
    if let Some((done, total)) = word.split_once('/') {
        return (total.is_empty() || parse_f64(total).is_some())
            .then(|| parse_f64(done))
            .flatten();
    }
    let unit_start = word
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphabetic() || *c == '%')
        .last()
        .map(|(i, _)| i)?;
    let value = word.get(..unit_start)?;
    // A unit follows digits: `info` is a word, not `inf` with a unit.
    value
        .ends_with(|c: char| c.is_ascii_digit() || c == '.')
        .then(|| parse_f64(value))
        .flatten()
}

/// Parses a key/value text log.
pub fn parse(name: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Imported, InputError> {
    let keys = Keys::from(opts);
    let mut builder = TraceBuilder::new(trace_name(name));
    builder.reserve_lines(bytes);
    let (mut unmatched, mut first_line) = (0u64, None);
    let mut loss_keys = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let number = index as u64 + 1;
        if raw.len() > MAX_LINE_BYTES {
            return Err(too_long(name, number, raw.len()));
        }
        // A stray invalid byte (a progress bar, a cut write) spoils one line, not the log.
        let line = String::from_utf8_lossy(raw);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        first_line.get_or_insert((number, clip(line)));
        let Some(r) = keys.record(line) else {
            unmatched += 1;
            continue;
        };
        let eval = r.val_loss.is_some();
        if !eval {
            loss_keys.push(r.loss_key);
        }
        builder.push(Row {
            step: Some(r.step),
            epoch: r.epoch,
            loss: if eval { None } else { r.loss },
            lr: r.lr,
            val_loss: r.val_loss,
            train_loss_eval: if eval { r.loss } else { None },
            ..Row::default()
        });
    }
    if builder.steps_len() == 0 {
        return Err(no_log_line(name, first_line));
    }
    let mut warnings = Vec::new();
    let mut trace = builder.finish(&mut warnings);
    let (steps, relogged) = relog::keep_last(std::mem::take(&mut trace.steps));
    trace.steps = steps;
    trace.val = relog::keep_last_val(std::mem::take(&mut trace.val));
    warnings.extend(relog::warning(&relogged));
    if unmatched > 0 {
        warnings.push(format!(
            "{unmatched} lines without a step and a loss (banners, config, progress) skipped"
        ));
    }
    let interval = median_gap(&trace.steps);
    let sampling = match loss_keys.first() {
        Some(LossKey::LlmC) if loss_keys.iter().all(|k| *k == LossKey::LlmC) => {
            trace.log_mode = Some(LogMode::PerStep);
            Sampling::per_step(&trace.steps)
        }
        Some(LossKey::Megatron) => Sampling {
            interval_steps: interval,
            aggregation: Aggregation::WindowMean { window: interval },
        },
        _ => Sampling::unknown(&trace.steps),
    };
    Ok(Imported {
        trace,
        format: Format::Text,
        warnings,
        sampling,
    })
}

fn no_log_line(name: &Path, first_line: Option<(u64, String)>) -> InputError {
    let hint = "no line has a step and a loss (such as 's:100 trl:3.28', 'iter 100: loss 3.28', \
                'step 100 | loss 3.28 | lr 1e-4')";
    match first_line {
        Some((line, text)) => {
            InputError::new(name, format!("{hint}; the first line reads '{text}'")).at_line(line)
        }
        None => InputError::new(name, "empty file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::detect_format;

    fn read(text: &str) -> Result<Imported, InputError> {
        parse(
            Path::new("main.log"),
            text.as_bytes(),
            &ImportOptions::default(),
        )
    }

    fn record(line: &str) -> Option<Record> {
        Keys::default().record(line)
    }

    const LLMC: &str = "s:0 tel:11.0095\ns:0 trl:11.0116 lr:0.000001 norm:14.96\n\
        s:1 trl:10.9586 lr:0.000002 norm:15.18\ns:2 trl:10.8 lr:0.000003 norm:nan\n\
        s:2 tel:10.7\ns:2 eval:0.2530\n";

    #[test]
    fn key_value_lines_are_detected_but_csv_and_json_are_not() {
        let name = Path::new("main.log");
        assert_eq!(detect_format(name, LLMC.as_bytes()), Format::Text);
        let nanogpt = "Overriding config with config/train_shakespeare_char.py:\nbatch_size = 64\n\
            iter 0: loss 4.2874, time 29.62ms, mfu -100.00%\n";
        assert_eq!(detect_format(name, nanogpt.as_bytes()), Format::Text);
        assert_eq!(
            detect_format(name, b"step,loss,lr\n19,0.1578,0.04\n"),
            Format::Csv
        );
        assert_eq!(detect_format(name, b"step loss\n0 1.5\n"), Format::Csv);
        assert_eq!(
            detect_format(name, b"{\"step\": 1, \"loss\": 2}\n"),
            Format::Jsonl
        );
    }

    #[test]
    fn llmc_lines_give_per_step_losses_rates_and_validation() {
        let got = read(LLMC).unwrap();
        let t = &got.trace;
        assert_eq!(t.step_numbers(), [0, 1, 2]);
        assert_eq!(t.losses(), [11.0116, 10.9586, 10.8]);
        assert_eq!(t.steps[1].lr, Some(0.000002));
        let val: Vec<_> = t.val.iter().map(|v| (v.step, v.val_loss)).collect();
        assert_eq!(val, [(0, 11.0095), (2, 10.7)]);
        assert_eq!(t.log_mode, Some(LogMode::PerStep));
        assert_eq!(
            got.sampling,
            Sampling {
                interval_steps: Some(1),
                aggregation: Aggregation::PerStep
            }
        );
        // The HellaSwag line (`eval:`) is no loss.
        assert!(
            got.warnings
                .iter()
                .any(|w| w.starts_with("1 lines without a step")),
            "{:?}",
            got.warnings
        );
    }

    #[test]
    fn nanogpt_iterations_and_evaluations() {
        let r = record("iter 100: loss 3.2851, time 120.00ms, mfu 30.00%").unwrap();
        assert_eq!((r.step, r.loss, r.val_loss), (100, Some(3.2851), None));
        let got = read("step 0: train loss 4.28, val loss 4.29\niter 0: loss 4.27, time 29.62ms\n")
            .unwrap();
        assert_eq!(got.trace.losses(), [4.27]);
        let v = got.trace.val[0];
        assert_eq!(
            (v.step, v.val_loss, v.train_loss_eval),
            (0, 4.29, Some(4.28))
        );
    }

    #[test]
    fn megatron_lines_with_padded_totals_and_spaced_keys() {
        let line = " [2024-01-01 10:00:00] iteration      100/  500000 | consumed samples:        51200 | \
            elapsed time per iteration (ms): 1234.5 | learning rate: 6.000E-04 | global batch size:   512 | \
            lm loss: 3.285100E+00 | loss scale: 1.0 | grad norm: 0.312 |";
        let r = record(line).unwrap();
        assert_eq!((r.step, r.loss, r.lr), (100, Some(3.2851), Some(6e-4)));
        let val = record(" validation loss at iteration 1000 | lm loss value: 3.300000E+00 | lm loss PPL: 2.7E+01 |").unwrap();
        assert_eq!((val.step, val.val_loss), (1000, Some(3.3)));
        let got = read(&format!("{line}\n{}\n", line.replace("100/", "200/"))).unwrap();
        assert_eq!(
            got.sampling.aggregation,
            Aggregation::WindowMean { window: Some(100) }
        );
    }

    #[test]
    fn hand_written_separators_all_read() {
        for line in [
            "step 7 | loss 0.5 | lr 1e-4",
            "epoch=1 step=7 loss=0.5 lr=1e-4",
            "step: 7, loss: 0.5, lr: 0.0001",
            "Step 7/100: loss 0.5 ... lr 1e-4",
        ] {
            let r = record(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!((r.step, r.loss, r.lr), (7, Some(0.5), Some(1e-4)), "{line}");
        }
        assert_eq!(record("epoch=1 step=7 loss=0.5").unwrap().epoch, Some(1));
        let keras = record("step 7 - loss: 0.5 - accuracy: 0.9 - val_loss: 0.6").unwrap();
        assert_eq!((keras.loss, keras.val_loss), (Some(0.5), Some(0.6)));
    }

    #[test]
    fn banners_and_config_dumps_do_not_match() {
        for line in [
            "number of parameters: 10.65M",
            "  iteration ......... 100",
            "step size: 3",
            "tokens per iteration will be: 16,384",
            "loss 0.5 without a step",
        ] {
            assert_eq!(record(line), None, "{line}");
        }
    }

    #[test]
    fn a_resumed_llmc_run_keeps_the_later_copy() {
        let got =
            read("s:0 trl:3.0\ns:1 trl:2.9\ns:2 trl:2.8\ns:1 trl:2.5\ns:2 trl:2.4\n").unwrap();
        assert_eq!(got.trace.losses(), [3.0, 2.5, 2.4]);
        assert!(
            got.warnings
                .iter()
                .any(|w| w.starts_with("steps 1-2 were logged again"))
        );
    }

    #[test]
    fn no_matching_line_is_one_error_naming_the_file_and_first_line() {
        let err = read("\nhello world\nno numbers here\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("main.log:2: no line has a step and a loss"),
            "{err}"
        );
        assert!(err.contains("'hello world'"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn numbers_as_logs_print_them() {
        assert_eq!(number("120.00ms"), Some(120.0));
        assert_eq!(number("30.00%"), Some(30.0));
        assert_eq!(number("100/"), Some(100.0));
        assert_eq!(number("7/100"), Some(7.0));
        assert!(number("nan").is_some_and(f64::is_nan));
        assert_eq!(number("info"), None);
        assert_eq!(number("d2.utils"), None);
        assert_eq!(number("M"), None);
    }
}
