//! Helpers shared by the end-to-end tests: a temp folder and the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dropscope"))
}

/// A fresh folder under the target dir, removed at the start of each use.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run dropscope")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `dropscope run SCENARIO --out OUT --quiet EXTRA...`, which must succeed.
pub fn run_ok(scenario: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", scenario, "--out", out.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{scenario}: {}", stderr(&o));
    o
}

/// A tiny scenario: two arms, small data, a few epochs; trains in well under a second.
pub fn tiny_scenario(dir: &Path, extra: &str) -> PathBuf {
    let p = dir.join("tiny.toml");
    std::fs::write(
        &p,
        format!(
            r#"description = "tiny"
seeds = [1]

[data]
samples = 200
features = 8
classes = 3

[model]
hidden = [16]

[train]
epochs = 3
batch_size = 32

{extra}
[[vary]]
path = "train.lr.schedule"
levels = ["constant", "cosine"]
"#
        ),
    )
    .unwrap();
    p
}
