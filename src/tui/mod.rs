//! `dyno dash`: the terminal dashboard (ratatui + crossterm) in the Elm architecture. One
//! [`Model`] holds everything shown; [`Msg`]s (keys, mouse, log lines, API answers, the clock)
//! go through [`update`], which returns [`Cmd`]s for the runtime (`run.rs`) to carry out; [`view`]
//! draws the model and nothing else. Updates come from the app's log stream (a subscription),
//! not from re-polling the API.

pub mod model;
mod run;
pub mod update;
pub mod view;

pub use model::{Cmd, Model, Msg};
pub use run::{run, samples};
pub use update::update;
pub use view::view;

#[cfg(test)]
mod tests;
