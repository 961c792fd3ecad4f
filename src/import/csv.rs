//! CSV logs with a header row, including dropscope's own `trace.csv` and `val.csv`.

use std::path::Path;

use ::csv::{ReaderBuilder, StringRecord};

use super::detect::Probe;
use super::fields::{self, Role};
use super::lines::{MAX_LINE_BYTES, too_long};
use super::num::{parse_epoch, parse_f64, parse_u64};
use super::registry::{Confidence, LogFormat};
use super::rows::{Row, TraceBuilder};
use super::sampling::Sampling;
use super::{Format, ImportOptions, Imported, trace_name};
use crate::error::{InputError, excerpt};
use crate::trace::ValRecord;

/// Any CSV (or tab-separated) log with a header row: the reader of last resort
/// for text that no specific format claims.
pub struct CsvLog;

impl LogFormat for CsvLog {
    fn name(&self) -> &'static str {
        "csv"
    }

    fn summary(&self) -> &'static str {
        "any CSV or TSV with a header (step, loss, epoch, lr, val_loss in the usual spellings)"
    }

    fn recognize(&self, probe: &Probe<'_>) -> Confidence {
        match probe.starts_with_brace() || probe.mostly_json {
            true => Confidence::No,
            false => Confidence::Shape,
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

/// Parses a training log in CSV.
pub fn parse(name: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Imported, InputError> {
    let table = Table::read(name, bytes)?;
    let cols = TraceColumns::resolve(name, &table.header, opts)?;
    let mut warnings = Vec::new();
    let mut builder = TraceBuilder::new(trace_name(name));
    builder.reserve_lines(bytes);
    for row in table.rows() {
        let (line, record) = row?;
        builder.push(cols.row(name, &table.header, line, &record)?);
    }
    if builder.steps_len() == 0 {
        return Err(InputError::new(name, "no training loss values in the file"));
    }
    let trace = builder.finish(&mut warnings);
    Ok(Imported {
        sampling: Sampling::unknown(&trace.steps),
        trace,
        format: Format::Csv,
        warnings,
    })
}

/// Parses a validation CSV (`epoch[,step],val_loss[,val_accuracy,train_loss_eval]`).
///
/// Without a step column every point's step is [`UNKNOWN_STEP`](super::UNKNOWN_STEP).
pub fn parse_val(name: &Path, bytes: &[u8]) -> Result<Vec<ValRecord>, InputError> {
    let table = Table::read(name, bytes)?;
    let h = &table.header;
    let find = |role: Role| {
        fields::find_in_val_file(h, role)
            .map(|col| unique(name, h, col))
            .transpose()
    };
    // The flags (--step-col, ...) name the training log's columns, not these.
    let required = |role: Role| {
        find(role)?.ok_or_else(|| {
            InputError::new(
                name,
                format!(
                    "no {} column: a validation file needs epoch and val_loss (step is \
                     optional); its columns are: {}",
                    role.name(),
                    listed(h)
                ),
            )
            .at_line(1)
            .field(role.name())
        })
    };
    let (epoch, val_loss) = (required(Role::Epoch)?, required(Role::ValLoss)?);
    let step = find(Role::Step)?;
    let accuracy = find(Role::ValAccuracy)?;
    let train_eval = find(Role::TrainLossEval)?;
    let mut out = Vec::new();
    for row in table.rows() {
        let (line, record) = row?;
        let cell = Cell {
            name,
            header: h,
            line,
            record: &record,
        };
        let Some(val_loss) = cell.float(Some(val_loss))? else {
            continue;
        };
        out.push(ValRecord {
            epoch: cell.required(Some(epoch), parse_epoch, "an epoch number")?,
            step: match step {
                Some(_) => cell.required(step, parse_u64, "a step number")?,
                None => super::UNKNOWN_STEP,
            },
            val_loss,
            val_accuracy: cell.float(accuracy)?,
            train_loss_eval: cell.float(train_eval)?,
        });
    }
    Ok(out)
}

/// The header, and the data records read one at a time (each with its line number,
/// checked for shape) so a million-row log is never held as text: only what the caller
/// keeps of each row stays in memory.
pub(crate) struct Table<'a> {
    pub header: Vec<String>,
    name: &'a Path,
    bytes: &'a [u8],
}

impl<'a> Table<'a> {
    pub(crate) fn read(name: &'a Path, bytes: &'a [u8]) -> Result<Table<'a>, InputError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(InputError::new(name, "empty file"));
        }
        check_line_lengths(name, bytes)?;
        let header = match reader(bytes).into_records().next() {
            Some(r) => r.map_err(|e| csv_error(name, &e))?,
            None => return Err(InputError::new(name, "empty file")),
        };
        let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
        if header.iter().all(|h| parse_f64(h).is_some()) {
            return Err(InputError::new(
                name,
                "no header: the first line holds numbers, not column names such as step,loss",
            )
            .at_line(1));
        }
        Ok(Table {
            header,
            name,
            bytes,
        })
    }

    /// The data records in order, each `(line, record)`; the first error ends them.
    pub(crate) fn rows(&self) -> Rows<'_> {
        let mut records = reader(self.bytes).into_records().peekable();
        records.next(); // the header, checked by `read`
        Rows {
            table: self,
            records,
            ends_with_newline: self.bytes.ends_with(b"\n"),
        }
    }
}

/// The CSV reader every pass over a table uses.
fn reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    ReaderBuilder::new()
        .has_headers(false)
        // Field counts are checked here, to tell a truncated last line from a bad one.
        .flexible(true)
        .delimiter(delimiter(bytes))
        .from_reader(bytes)
}

/// The data records of a [`Table`], read as they are asked for.
pub(crate) struct Rows<'t> {
    table: &'t Table<'t>,
    records: std::iter::Peekable<csv::StringRecordsIntoIter<&'t [u8]>>,
    ends_with_newline: bool,
}

impl Iterator for Rows<'_> {
    type Item = Result<(u64, StringRecord), InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = self.records.next()?;
        let name = self.table.name;
        Some(record.map_err(|e| csv_error(name, &e)).and_then(|record| {
            let line = record.position().map_or(0, |p| p.line());
            let is_last = self.records.peek().is_none();
            check_width(
                name,
                &self.table.header,
                line,
                &record,
                is_last && !self.ends_with_newline,
            )?;
            Ok((line, record))
        }))
    }
}

/// A line over the cap means this is not a CSV log; say so before the CSV
/// reader buffers it.
fn check_line_lengths(name: &Path, bytes: &[u8]) -> Result<(), InputError> {
    let long = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .find(|(_, line)| line.len() > MAX_LINE_BYTES);
    match long {
        Some((i, line)) => Err(too_long(name, i as u64 + 1, line.len())),
        None => Ok(()),
    }
}

/// Tab-separated logs are common enough to accept without a flag.
pub(crate) fn delimiter(bytes: &[u8]) -> u8 {
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    if first_line.contains(&b'\t') && !first_line.contains(&b',') {
        b'\t'
    } else {
        b','
    }
}

fn check_width(
    name: &Path,
    header: &[String],
    line: u64,
    record: &StringRecord,
    unterminated_last: bool,
) -> Result<(), InputError> {
    let (found, wanted) = (record.len(), header.len());
    if found == wanted {
        return Ok(());
    }
    let at = |field: &str, message: String| {
        InputError::new(name, message)
            .at_line(line)
            .field(field.to_string())
    };
    if found < wanted {
        let missing = field_name(header.get(found).map_or("", String::as_str));
        if unterminated_last {
            return Err(at(
                &missing,
                format!(
                    "truncated last line: {found} of {wanted} fields and no newline at the end \
                     (was the file still being written?)"
                ),
            ));
        }
        return Err(at(
            &missing,
            format!("{found} fields where the header has {wanted}"),
        ));
    }
    Err(at(
        &format!("field {}", wanted + 1),
        format!("{found} fields where the header has {wanted}"),
    ))
}

fn csv_error(name: &Path, err: &::csv::Error) -> InputError {
    let message = match err.kind() {
        ::csv::ErrorKind::Utf8 { err, .. } => {
            format!("field {} is not valid UTF-8", err.field() + 1)
        }
        _ => err.to_string(),
    };
    let e = InputError::new(name, message);
    match err.position() {
        Some(p) => e.at_line(p.line()),
        None => e,
    }
}

pub(crate) fn missing_column(
    name: &Path,
    header: &[String],
    role: Role,
    flag: Option<&str>,
) -> InputError {
    let found = listed(header);
    let message = match flag {
        Some(flag) => format!("no such column (from {flag}); the columns are: {found}"),
        None => {
            let hint = match role {
                Role::Loss => " (name it with --loss-col)",
                Role::Step => " (name it with --step-col)",
                _ => "",
            };
            format!("no {} column; the columns are: {found}{hint}", role.name())
        }
    };
    InputError::new(name, message).at_line(1).field(role.name())
}

/// `col` when no other column has its name; an error at the header naming it when
/// one does (`step,loss,loss`): which of the two to read would be a guess.
pub(crate) fn unique(name: &Path, header: &[String], col: usize) -> Result<usize, InputError> {
    let wanted = header.get(col).map_or("", |h| h.trim());
    let twin = header
        .iter()
        .enumerate()
        .find(|&(i, h)| i != col && h.trim().eq_ignore_ascii_case(wanted));
    match twin {
        None => Ok(col),
        Some((other, _)) => {
            let (a, b) = (col.min(other) + 1, col.max(other) + 1);
            Err(InputError::new(
                name,
                format!("columns {a} and {b} have the same name: rename or drop one"),
            )
            .at_line(1)
            .field(field_name(wanted)))
        }
    }
}

/// Which column holds what in a training log.
struct TraceColumns {
    step: Option<usize>,
    epoch: Option<usize>,
    batch: Option<usize>,
    loss: usize,
    lr: Option<usize>,
    batch_size: Option<usize>,
    val_loss: Option<usize>,
    val_accuracy: Option<usize>,
    train_loss_eval: Option<usize>,
}

impl TraceColumns {
    fn resolve(
        name: &Path,
        header: &[String],
        opts: &ImportOptions,
    ) -> Result<TraceColumns, InputError> {
        let pick = |role: Role, flag: &str, given: &Option<String>| {
            let found = match given {
                Some(col) => fields::find(header, role, Some(col))
                    .map(Some)
                    .ok_or_else(|| {
                        missing_column(name, header, role, Some(flag)).field(field_name(col))
                    })?,
                None => fields::find(header, role, None),
            };
            found.map(|col| unique(name, header, col)).transpose()
        };
        let other = |role: Role| pick(role, "", &None);
        let loss = pick(Role::Loss, "--loss-col", &opts.loss_col)?
            .ok_or_else(|| missing_column(name, header, Role::Loss, None))?;
        Ok(TraceColumns {
            step: pick(Role::Step, "--step-col", &opts.step_col)?,
            epoch: pick(Role::Epoch, "--epoch-col", &opts.epoch_col)?,
            batch: other(Role::Batch)?,
            loss,
            lr: pick(Role::Lr, "--lr-col", &opts.lr_col)?,
            batch_size: other(Role::BatchSize)?,
            val_loss: other(Role::ValLoss)?,
            val_accuracy: other(Role::ValAccuracy)?,
            train_loss_eval: other(Role::TrainLossEval)?,
        })
    }

    fn row(
        &self,
        name: &Path,
        header: &[String],
        line: u64,
        record: &StringRecord,
    ) -> Result<Row, InputError> {
        let cell = Cell {
            name,
            header,
            line,
            record,
        };
        let loss = cell.float(Some(self.loss))?;
        let step = match self.step {
            // A row without a step cannot be placed on the curve.
            Some(_) if loss.is_some() => {
                Some(cell.required(self.step, parse_u64, "a step number")?)
            }
            col => cell.parsed(col, parse_u64, "a step number")?,
        };
        Ok(Row {
            step,
            epoch: cell.parsed(self.epoch, parse_epoch, "an epoch number")?,
            batch: cell.parsed(self.batch, parse_u64, "a batch index")?,
            loss,
            lr: cell.float(self.lr)?,
            batch_size: cell.parsed(self.batch_size, parse_u64, "a batch size")?,
            val_loss: cell.float(self.val_loss)?,
            val_accuracy: cell.float(self.val_accuracy)?,
            train_loss_eval: cell.float(self.train_loss_eval)?,
        })
    }
}

/// Reads the cells of one record, with errors that name the line and column.
pub(crate) struct Cell<'a> {
    pub name: &'a Path,
    pub header: &'a [String],
    pub line: u64,
    pub record: &'a StringRecord,
}

impl Cell<'_> {
    pub(crate) fn text(&self, col: usize) -> Option<&str> {
        self.record
            .get(col)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    pub(crate) fn error(&self, col: usize, message: String) -> InputError {
        InputError::new(self.name, message)
            .at_line(self.line)
            .field(field_name(self.header.get(col).map_or("", String::as_str)))
    }

    pub(crate) fn parsed<T>(
        &self,
        col: Option<usize>,
        parse: fn(&str) -> Option<T>,
        what: &str,
    ) -> Result<Option<T>, InputError> {
        let Some(col) = col else { return Ok(None) };
        let Some(text) = self.text(col) else {
            return Ok(None);
        };
        parse(text)
            .map(Some)
            .ok_or_else(|| self.error(col, format!("not {what}: '{}'", clip(text))))
    }

    pub(crate) fn required<T>(
        &self,
        col: Option<usize>,
        parse: fn(&str) -> Option<T>,
        what: &str,
    ) -> Result<T, InputError> {
        self.parsed(col, parse, what)?.ok_or_else(|| {
            let col = col.unwrap_or(usize::MAX);
            self.error(col, format!("empty cell where {what} is needed"))
        })
    }

    pub(crate) fn float(&self, col: Option<usize>) -> Result<Option<f64>, InputError> {
        self.parsed(col, parse_f64, "a number")
    }
}

/// Keeps a quoted cell short enough for a one-line message, control characters hidden.
pub(crate) fn clip(text: &str) -> String {
    excerpt(text, 40)
}

/// A column or key name fit for an error's field: a header cell can be anything.
pub(crate) fn field_name(name: &str) -> String {
    excerpt(name, 80)
}

/// Column or key names for a message: the first few, each clipped, and how many more.
pub(crate) fn listed<S: AsRef<str>>(names: &[S]) -> String {
    const SHOWN: usize = 20;
    let mut shown: Vec<String> = names.iter().take(SHOWN).map(|n| clip(n.as_ref())).collect();
    if names.len() > SHOWN {
        shown.push(format!("and {} more", names.len() - SHOWN));
    }
    excerpt(&shown.join(", "), 300)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{UNKNOWN_STEP, place_val_steps};
    use crate::trace::StepRecord;

    fn fixture(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/import")
            .join(rel)
    }

    fn parse_text(text: &str, opts: &ImportOptions) -> Result<Imported, InputError> {
        parse(Path::new("x.csv"), text.as_bytes(), opts)
    }

    #[test]
    fn a_column_named_twice_is_an_error_at_line_1_naming_it() {
        let path = fixture("csv/broken/duplicate_loss.csv");
        let err = crate::import::read_trace(&path, &ImportOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:1: loss: columns 2 and 3 have the same name: rename or drop one",
                path.display()
            )
        );
        let none = ImportOptions::default();
        for (text, field) in [
            ("Step,loss,step\n0,2.3,0\n", "Step"),
            ("step,epoch,loss,lr,lr\n0,0,2.3,0.1,0.2\n", "lr"),
            ("step,epoch,epoch,loss\n0,0,0,2.3\n", "epoch"),
        ] {
            let err = parse_text(text, &none).unwrap_err();
            assert_eq!(
                (err.line, err.field.as_deref()),
                (Some(1), Some(field)),
                "{text}"
            );
        }
        let given = ImportOptions {
            loss_col: Some("objective".into()),
            ..ImportOptions::default()
        };
        let err = parse_text("step,objective,objective\n0,2.3,2.4\n", &given).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("objective"));
        // Two spellings of one role are no clash: the preferred one is read.
        let got = parse_text("step,train_loss,loss\n0,2.3,2.4\n", &none).unwrap();
        assert_eq!(got.trace.steps[0].loss, 2.4);
        // Nor is a repeated column that is not read.
        assert!(parse_text("step,loss,note,note\n0,2.3,a,b\n", &none).is_ok());
    }

    #[test]
    fn a_val_csv_without_a_step_column_reads_and_places_its_points_by_epoch() {
        let val = crate::import::read_val_csv(&fixture("val/epoch_only.csv")).unwrap();
        let got: Vec<_> = val.iter().map(|v| (v.epoch, v.step, v.val_loss)).collect();
        assert_eq!(
            got,
            [
                (0, UNKNOWN_STEP, 2.0),
                (1, UNKNOWN_STEP, 1.5),
                (2, UNKNOWN_STEP, 1.4)
            ]
        );
        let mut trace = crate::trace::Trace::new("t");
        for step in 0..8 {
            trace.steps.push(StepRecord {
                step,
                epoch: Some(step / 4),
                batch: None,
                loss: 1.0,
                lr: None,
                batch_size: None,
            });
        }
        trace.val = val;
        // Epoch 2 has no training step: its point stays unknown.
        assert_eq!(place_val_steps(&mut trace), 1);
        let steps: Vec<_> = trace.val.iter().map(|v| v.step).collect();
        assert_eq!(steps, [4, 8, UNKNOWN_STEP]);
    }

    #[test]
    fn a_val_csv_error_names_its_own_columns_not_the_training_logs_flags() {
        let name = Path::new("val.csv");
        for (text, field) in [
            ("step,val_loss\n10,2.0\n", "epoch"),
            ("epoch,step,accuracy\n0,10,0.5\n", "val_loss"),
        ] {
            let err = parse_val(name, text.as_bytes()).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("val.csv:1: {field}: no {field} column")),
                "{message}"
            );
            assert!(message.contains("its columns are: "), "{message}");
            assert!(!message.contains("--"), "{message}");
        }
        let err = parse_val(name, b"epoch,val_loss,val_loss\n0,2.0,2.1\n").unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (Some(1), Some("val_loss"))
        );
        // With a step column, a row without a step is still an error at its line.
        let err = parse_val(name, b"epoch,step,val_loss\n0,,2.0\n").unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (Some(2), Some("step")));
    }
}
