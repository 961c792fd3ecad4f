//! End-to-end tests of the `dropscope` binary: one test crate, so burn links once.

mod analysis;
mod common;
mod guard;
mod harness;
mod import;
mod messages;
mod reliability;
mod scenarios;
mod trust;
