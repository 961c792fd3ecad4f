use mimalloc::MiMalloc;

// burn frees and re-maps large buffers every step; with the system allocator that
// showed up as page-fault time (more than half of a large step). mimalloc keeps them.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() {
    std::process::exit(dropscope::cli::main());
}
