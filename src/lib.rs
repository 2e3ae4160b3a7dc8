//! dyno: Heroku on your own machine. One binary (`src/main.rs`) holds the CLI, the daemon, the
//! per-dyno shim and the init that runs as PID 1 inside every dyno; this library is all of it,
//! so benches and tests reach the same code. See ARCHITECTURE.md for the map.

pub mod addons;
pub mod api;
pub mod appjson;
pub mod attach;
pub mod build;
pub mod cli;
pub mod client;
pub mod daemon;
pub mod drains;
pub mod export;
pub mod git;
pub mod logs;
pub mod names;
pub mod paths;
pub mod procfile;
pub mod router;
pub mod runtime;
pub mod settings;
pub mod static_web;
pub mod store;
pub mod tui;
