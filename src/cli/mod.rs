//! The command line: clap definitions and dispatch. Each verb group has its own module.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "dyno", version, about = "Heroku on your own machine")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Per-dyno helper (internal): creates and holds one container.
    #[command(hide = true)]
    Shim { state_dir: PathBuf },
    /// PID 1 inside a dyno (internal).
    #[command(hide = true)]
    Init { command: String },
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Shim { state_dir } => crate::runtime::shim_main(state_dir),
        Command::Init { command } => crate::runtime::init_main(command),
    }
}
