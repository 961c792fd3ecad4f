//! End-to-end tests of the `dropscope` binary: one test crate, so burn links once.

mod analysis;
mod common;
mod guard;
mod harness;
mod import;
mod messages;
mod real_logs;
mod reliability;
mod scenarios;
mod trust;
mod watch;
