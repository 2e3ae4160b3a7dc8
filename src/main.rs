//! The `dyno` binary: everything is in the library (`src/lib.rs`).

fn main() {
    std::process::exit(dyno::cli::main());
}
