//! `dropscope bench watch` without burn, for a release build of the library alone:
//! `cargo run --release --no-default-features --example watch_bench -- [SERIES] [SEED] [POINTS]`.

fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (series, seed, points) = (arg(1, 100), arg(2, 1), arg(3, 1_000_000));
    print!(
        "{}",
        dropscope::watch::bench::run(series as usize, seed, points as usize)
    );
}
