//! dropscope: finds out why a training loss suddenly drops.
//!
//! Data flows one way: scenario → harness → [`trace::Trace`] → events →
//! detect → attribute → report / check. Only the harness knows burn; the
//! rest builds without it (`cargo test --no-default-features`).

pub mod attribute;
pub mod check;
#[cfg(feature = "train")]
pub mod cli;
pub mod detect;
pub mod error;
pub mod events;
pub mod fsio;
#[cfg(feature = "train")]
pub mod harness;
pub mod import;
pub mod manifest;
pub mod merge;
pub mod report;
pub mod rundir;
pub mod scenario;
pub mod synth;
pub mod trace;
pub mod watch;
