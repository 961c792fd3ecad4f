//! Cells in parallel (`run --jobs N`): one worker process per cell, the parent owning the
//! run folder's manifest and the progress bar.
//!
//! Why processes and not threads: burn's CPU backends keep their random-number generator
//! in one process-wide slot (burn-flex 0.22.1: `static SEED: Mutex<Option<StdRng>>`, set by
//! `Device::seed` and advanced by every random op). A cell draws from it at model
//! initialization and, with dropout, at every training step; two cells on two threads
//! would interleave their draws in whatever order the scheduler picks, and the traces
//! would depend on timing. In a process of its own each cell owns that slot, so a worker
//! computes exactly what `--jobs 1` computes in-process. Processes also bound the damage
//! of a cell that aborts (an allocation failure or a crash inside burn fails that cell,
//! not the run) and give each cell a rayon pool of its own size (`RAYON_NUM_THREADS`,
//! which flex's kernels and its gemm read through the global pool).
//!
//! The protocol: the parent starts `dropscope internal-worker cell --out RUN --device D
//! --cell K` (K: the cell's index in scenario order); the worker reads the scenario from
//! `RUN/manifest.json`, trains the cell into its folder, and reports on stdout, one
//! `@dropscope {json}` line per message ([`WorkerMsg`]). The parent answers each epoch
//! report with an `ack` line on stdin once that epoch is in the manifest, and a worker
//! writes its next epoch only after that ack: the manifest trails the disk by at most one
//! epoch per cell, as in the sequential loop, while the manifest write overlaps the next
//! epoch's training. When its stdin closes (the parent died), a worker exits at once, so no
//! orphan keeps writing into a folder that a resumed run may own.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget};
use serde::{Deserialize, Serialize};

use super::train::{CellOutcome, Progress, train_cell};
use super::{DeviceChoice, RunOptions};
use crate::error::InputError;
use crate::manifest::{CellStatus, Manifest};
use crate::scenario::{Cell, ScenarioFile};

/// The hidden subcommand workers run as (`dropscope internal-worker ...`).
pub const WORKER_COMMAND: &str = "internal-worker";
/// Prefix of a protocol line on a worker's stdout; other lines go to stderr untouched.
const LINE_PREFIX: &str = "@dropscope ";
/// How often a worker reports finished steps between epochs (for the progress bar).
const STEP_REPORT_EVERY: Duration = Duration::from_millis(100);
/// Exit status of a worker whose parent went away.
const EXIT_ORPHANED: i32 = 3;
/// Memory a worker process takes before its cell: the binary, burn's runtime, the
/// allocator's arenas (measured: about 32 MiB resident for a tiny cell).
pub const WORKER_BASE_BYTES: u64 = 64 << 20;

/// `--jobs` when not given: the cores this process may use.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `--jobs N` as given, or the default.
pub fn jobs_or_default(jobs: Option<u64>) -> usize {
    jobs.map_or_else(default_jobs, |j| j.max(1) as usize)
}

/// Threads for each of `jobs` concurrent cells: the cores shared out, at least one each.
pub fn threads_per_job(jobs: usize) -> usize {
    (default_jobs() / jobs.max(1)).max(1)
}

/// How many cells to run at once: what was asked, no more than there are cells, and no
/// more than memory holds (`peak_bytes` per cell plus a worker's own footprint).
pub fn effective_jobs(
    asked: usize,
    cells: usize,
    peak_bytes: u64,
    available: Option<u64>,
) -> usize {
    let by_memory = available.map_or(usize::MAX, |a| {
        (a / peak_bytes.saturating_add(WORKER_BASE_BYTES).max(1)).max(1) as usize
    });
    asked.min(cells).min(by_memory).max(1)
}

/// One message from a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "msg")]
pub enum WorkerMsg {
    /// `n` more optimizer steps done.
    Steps { n: u64 },
    /// An epoch's rows are on disk; the worker writes no more before an `ack`.
    Epoch { steps: u64, epochs: u64 },
    /// The cell finished (completed or diverged).
    Done { outcome: CellOutcome },
    /// Bad input or an unwritable folder (what the sequential loop returns as an error).
    Error {
        file: PathBuf,
        line: Option<u64>,
        field: Option<String>,
        message: String,
    },
    /// Training panicked inside burn.
    Panic { message: String },
    /// A benchmark cell's result (`bench sweep`).
    Bench {
        steps: u64,
        secs: f64,
        peak_rss_bytes: Option<u64>,
    },
}

impl WorkerMsg {
    fn from_error(e: &InputError) -> Self {
        WorkerMsg::Error {
            file: e.file.clone(),
            line: e.line,
            field: e.field.clone(),
            message: e.message.clone(),
        }
    }
}

fn to_error(
    file: PathBuf,
    line: Option<u64>,
    field: Option<String>,
    message: String,
) -> InputError {
    InputError {
        file,
        line,
        field,
        message,
    }
}

/// Sends one message to the parent; a worker whose parent is gone stops.
pub fn send(msg: &WorkerMsg) {
    let text = serde_json::to_string(msg).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{LINE_PREFIX}{text}")
        .and_then(|_| out.flush())
        .is_err()
    {
        std::process::exit(EXIT_ORPHANED);
    }
}

/// Reads the worker's stdin on a thread of its own: each `ack` line is passed on; at end
/// of input (the parent exited or was killed) the process exits at once.
pub fn watch_parent() -> Receiver<()> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim() == "ack" => {
                    let _ = tx.send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        std::process::exit(EXIT_ORPHANED);
    });
    rx
}

/// Peak resident memory of this process (Linux: VmHWM), for the per-cell footprint.
pub fn peak_rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The worker side of `run --jobs`: trains cell `k` (scenario order) of the run in `out`.
/// Returns the process exit code (0 whenever a result was reported).
pub fn cell_worker(out: &Path, device: DeviceChoice, k: usize) -> i32 {
    let acks = watch_parent();
    let found = Manifest::read(out)
        .and_then(|m| ScenarioFile::parse(Path::new(&m.scenario.path), &m.scenario.source));
    let file = match found {
        Ok(f) => f,
        Err(e) => {
            send(&WorkerMsg::from_error(&e));
            return 0;
        }
    };
    let Some(cell) = file.cells().into_iter().nth(k) else {
        send(&WorkerMsg::Error {
            file: out.join("manifest.json"),
            line: None,
            field: None,
            message: format!("the scenario has no cell {k}"),
        });
        return 0;
    };
    let base = device.device();
    let dir = out.join(cell.rel_dir());
    let arm = &file.arms[cell.arm_index];
    let mut unreported = 0u64;
    let mut last = Instant::now();
    let mut awaiting_ack = false;
    let mut on_step = |p: Progress| match p {
        Progress::Step => {
            unreported += 1;
            if last.elapsed() >= STEP_REPORT_EVERY {
                send(&WorkerMsg::Steps { n: unreported });
                unreported = 0;
                last = Instant::now();
            }
        }
        // Before writing this epoch, wait until the parent has the last one in the
        // manifest (it had the whole epoch's training to do so).
        Progress::EpochTrained => {
            if std::mem::take(&mut awaiting_ack) && acks.recv().is_err() {
                std::process::exit(EXIT_ORPHANED);
            }
        }
        Progress::Epoch { steps, epochs } => {
            if unreported > 0 {
                send(&WorkerMsg::Steps { n: unreported });
                unreported = 0;
                last = Instant::now();
            }
            send(&WorkerMsg::Epoch { steps, epochs });
            awaiting_ack = true;
        }
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        train_cell(
            &arm.config,
            cell.seed,
            &file.path,
            &base,
            &dir,
            &mut on_step,
        )
    }));
    send(&match outcome {
        Ok(Ok(o)) => WorkerMsg::Done { outcome: o },
        Ok(Err(e)) => WorkerMsg::from_error(&e),
        Err(panic) => WorkerMsg::Panic {
            message: panic_message(panic.as_ref()),
        },
    });
    0
}

pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "training panicked".into())
}

/// What the pool hands back: a worker's message, or its exit.
#[derive(Debug)]
pub enum PoolEvent {
    Msg(WorkerMsg),
    Exited(ExitStatus),
}

enum Raw {
    Msg(WorkerMsg),
    Eof,
}

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    reader: Option<JoinHandle<()>>,
}

/// Worker processes of this executable, each known by the caller's id; their messages
/// arrive on one channel, so one thread (the caller) owns everything they report.
pub struct Pool {
    exe: PathBuf,
    threads: usize,
    tx: Sender<(usize, Raw)>,
    rx: Receiver<(usize, Raw)>,
    live: HashMap<usize, Worker>,
    /// SIGPIPE's action before the pool: `dropscope` dies quietly on a closed stdout, but
    /// an `ack` to a worker that has just exited must be an error to ignore, not death.
    #[cfg(unix)]
    sigpipe: libc::sighandler_t,
}

impl Pool {
    /// Workers of the running executable with `threads` compute threads each (unless the
    /// user set `RAYON_NUM_THREADS`, which is then passed on as it is).
    pub fn new(threads: usize) -> Result<Pool, InputError> {
        let exe = std::env::current_exe().map_err(|e| {
            InputError::new(
                "--jobs",
                format!(
                    "cannot find dropscope's own executable to start workers ({e}); use --jobs 1"
                ),
            )
        })?;
        let (tx, rx) = channel();
        // SAFETY: changes one signal's action; restored when the pool is dropped.
        #[cfg(unix)]
        let sigpipe = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        Ok(Pool {
            exe,
            threads,
            tx,
            rx,
            live: HashMap::new(),
            #[cfg(unix)]
            sigpipe,
        })
    }

    pub fn running(&self) -> usize {
        self.live.len()
    }

    /// Starts `dropscope internal-worker ARGS...` as worker `id`.
    pub fn spawn(&mut self, id: usize, args: &[OsString]) -> std::io::Result<()> {
        let mut cmd = Command::new(&self.exe);
        cmd.arg(WORKER_COMMAND)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            cmd.env("RAYON_NUM_THREADS", self.threads.to_string());
        }
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let tx = self.tx.clone();
        let reader = std::thread::spawn(move || {
            if let Some(out) = stdout {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    match line.strip_prefix(LINE_PREFIX) {
                        Some(json) => match serde_json::from_str::<WorkerMsg>(json) {
                            Ok(m) => {
                                let _ = tx.send((id, Raw::Msg(m)));
                            }
                            Err(_) => eprintln!("{line}"),
                        },
                        // Anything else a library printed: pass it on.
                        None => eprintln!("{line}"),
                    }
                }
            }
            let _ = tx.send((id, Raw::Eof));
        });
        self.live.insert(
            id,
            Worker {
                child,
                stdin,
                reader: Some(reader),
            },
        );
        Ok(())
    }

    fn event(&mut self, (id, raw): (usize, Raw)) -> (usize, PoolEvent) {
        match raw {
            Raw::Msg(m) => (id, PoolEvent::Msg(m)),
            Raw::Eof => {
                let status = match self.live.remove(&id) {
                    Some(mut w) => {
                        if let Some(r) = w.reader.take() {
                            let _ = r.join();
                        }
                        drop(w.stdin.take());
                        w.child.wait().ok()
                    }
                    None => None,
                };
                let status = status.unwrap_or_else(|| {
                    // Only reached if wait() failed: report a generic failure status.
                    failed_status()
                });
                (id, PoolEvent::Exited(status))
            }
        }
    }

    /// Waits for the next event; None when no worker is running.
    pub fn wait_next(&mut self) -> Option<(usize, PoolEvent)> {
        if self.live.is_empty() {
            return None;
        }
        let raw = self.rx.recv().ok()?;
        Some(self.event(raw))
    }

    /// The next event if one is waiting.
    pub fn try_next(&mut self) -> Option<(usize, PoolEvent)> {
        let raw = self.rx.try_recv().ok()?;
        Some(self.event(raw))
    }

    /// Lets worker `id` go on past the epoch it reported.
    pub fn ack(&mut self, id: usize) {
        if let Some(stdin) = self.live.get_mut(&id).and_then(|w| w.stdin.as_mut()) {
            let _ = stdin.write_all(b"ack\n").and_then(|_| stdin.flush());
        }
    }
}

impl Drop for Pool {
    /// A run that stops early (an unwritable manifest) takes its workers with it.
    fn drop(&mut self) {
        for (_, mut w) in self.live.drain() {
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
        // SAFETY: puts back the action `new` found.
        #[cfg(unix)]
        unsafe {
            libc::signal(libc::SIGPIPE, self.sigpipe);
        }
    }
}

#[cfg(unix)]
fn failed_status() -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(1 << 8)
}

#[cfg(not(unix))]
fn failed_status() -> ExitStatus {
    use std::os::windows::process::ExitStatusExt;
    ExitStatus::from_raw(1)
}

/// What the parallel loop needs from `run_scenario`.
pub(super) struct Batch<'a> {
    pub opts: &'a RunOptions,
    /// The cells of this run (the shard's), in manifest order.
    pub cells: &'a [Cell],
    /// Each cell's index in scenario order (what a worker is told).
    pub scenario_index: &'a [usize],
    pub jobs: usize,
    pub started: Instant,
}

/// Trains the manifest's pending cells with `b.jobs` workers at once. The caller has
/// written the manifest; this loop is its only writer until it returns.
pub(super) fn run_cells(
    b: &Batch<'_>,
    manifest: &mut Manifest,
    pb: &ProgressBar,
) -> Result<Option<InputError>, InputError> {
    let opts = b.opts;
    let mut pool = Pool::new(threads_per_job(b.jobs))?;
    let n = b.cells.len();
    let mut queue: VecDeque<usize> = (0..n)
        .filter(|&i| manifest.cells[i].status == CellStatus::Pending)
        .collect();
    let mut done = n - queue.len();
    for c in manifest
        .cells
        .iter()
        .filter(|c| c.status != CellStatus::Pending)
    {
        pb.inc(c.steps);
    }
    let mut reported = vec![false; n];
    // The first bad-input error stops new cells from starting; running ones finish.
    let mut first_error: Option<InputError> = None;
    let device = opts.device.to_string();
    let show_bar = |pb: &ProgressBar| {
        if !opts.quiet && pb.is_hidden() && b.started.elapsed() > Duration::from_secs(1) {
            pb.set_draw_target(ProgressDrawTarget::stderr_with_hz(super::PROGRESS_HZ));
        }
    };
    loop {
        let mut dirty = false;
        while first_error.is_none() && pool.running() < b.jobs {
            let Some(i) = queue.pop_front() else { break };
            let args: Vec<OsString> = vec![
                "cell".into(),
                "--out".into(),
                opts.out.clone().into_os_string(),
                "--device".into(),
                device.clone().into(),
                "--cell".into(),
                b.scenario_index[i].to_string().into(),
            ];
            let info = &mut manifest.cells[i];
            dirty = true;
            match pool.spawn(i, &args) {
                Ok(()) => info.status = CellStatus::Running,
                Err(e) => {
                    let msg = format!("cannot start a worker process: {e}");
                    info.status = CellStatus::Failed;
                    info.error = Some(msg.clone());
                    reported[i] = true;
                    done += 1;
                    first_error = Some(InputError::new("--jobs", msg));
                }
            }
        }
        if dirty {
            manifest.wall_s = b.started.elapsed().as_secs_f64();
            manifest.write(&opts.out)?;
        }
        let running = manifest
            .cells
            .iter()
            .filter(|c| c.status == CellStatus::Running)
            .count();
        pb.set_message(format!("{done}/{n} cells done, {running} running"));
        // Block for one event, then take every event already waiting, so that a burst
        // of epochs from many workers costs one manifest write.
        let Some(first) = pool.wait_next() else { break };
        let mut acks = Vec::new();
        let mut dirty = false;
        let mut event = Some(first);
        while let Some((i, e)) = event {
            let cell = &b.cells[i];
            let info = &mut manifest.cells[i];
            match e {
                PoolEvent::Msg(WorkerMsg::Steps { n }) => {
                    pb.inc(n);
                    show_bar(pb);
                }
                PoolEvent::Msg(WorkerMsg::Epoch { steps, epochs }) => {
                    info.steps = steps;
                    info.epochs = epochs;
                    acks.push(i);
                    dirty = true;
                }
                PoolEvent::Msg(WorkerMsg::Done { outcome: o }) => {
                    info.status = o.status;
                    info.steps = o.steps;
                    info.epochs = o.epochs;
                    info.diverged_at_step = o.diverged_at_step;
                    info.wall_s = o.wall_s;
                    reported[i] = true;
                    done += 1;
                    dirty = true;
                }
                PoolEvent::Msg(WorkerMsg::Error {
                    file,
                    line,
                    field,
                    message,
                }) => {
                    let err = to_error(file, line, field, message);
                    info.status = CellStatus::Failed;
                    info.error = Some(err.to_string());
                    first_error.get_or_insert(err);
                    reported[i] = true;
                    done += 1;
                    dirty = true;
                }
                PoolEvent::Msg(WorkerMsg::Panic { message }) => {
                    info.status = CellStatus::Failed;
                    info.error = Some(format!("{} on {}: {message}", cell.arm, opts.device));
                    reported[i] = true;
                    done += 1;
                    dirty = true;
                }
                PoolEvent::Msg(WorkerMsg::Bench { .. }) => {}
                PoolEvent::Exited(status) => {
                    if !reported[i] {
                        info.status = CellStatus::Failed;
                        info.error = Some(format!(
                            "{} on {}: its worker process stopped ({status}) before the cell \
                             finished (killed, or out of memory?)",
                            cell.arm, opts.device
                        ));
                        reported[i] = true;
                        done += 1;
                        dirty = true;
                    }
                }
            }
            event = pool.try_next();
        }
        if dirty {
            manifest.wall_s = b.started.elapsed().as_secs_f64();
            manifest.write(&opts.out)?;
        }
        for i in acks {
            pool.ack(i);
        }
    }
    Ok(first_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_capped_by_cells_and_memory() {
        assert_eq!(effective_jobs(8, 3, 1 << 20, None), 3);
        assert_eq!(effective_jobs(8, 100, 1 << 20, None), 8);
        // 1 GiB available, ~64 MiB + 192 MiB per worker: 4 at once.
        assert_eq!(effective_jobs(16, 100, 192 << 20, Some(1 << 30)), 4);
        // Never fewer than one.
        assert_eq!(effective_jobs(4, 10, 1 << 40, Some(1 << 30)), 1);
        assert_eq!(effective_jobs(4, 0, 1, None), 1);
    }

    #[test]
    fn a_message_round_trips_through_its_line() {
        let m = WorkerMsg::Epoch {
            steps: 10,
            epochs: 2,
        };
        let line = serde_json::to_string(&m).unwrap();
        assert_eq!(line, r#"{"msg":"epoch","steps":10,"epochs":2}"#);
        assert_eq!(serde_json::from_str::<WorkerMsg>(&line).unwrap(), m);
    }

    #[test]
    fn every_core_is_given_out_once() {
        let cores = default_jobs();
        assert_eq!(threads_per_job(1), cores);
        assert_eq!(threads_per_job(cores), 1);
        assert_eq!(threads_per_job(cores * 4), 1);
    }
}
