//! dyno: Heroku on your own machine. One binary: the CLI, the daemon, the per-dyno shim and the
//! init that runs as PID 1 inside every dyno. See ARCHITECTURE.md for the map.

mod api;
mod build;
mod cli;
mod client;
mod daemon;
mod logs;
mod names;
mod paths;
mod procfile;
mod router;
mod runtime;
mod store;

fn main() {
    std::process::exit(cli::main());
}
