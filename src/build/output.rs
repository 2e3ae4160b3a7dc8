//! A build's output as it happens: `dyno up` and `git push` stream it, `builds:output` replays it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

#[derive(Default)]
pub struct BuildOutput {
    lines: Mutex<Vec<String>>,
    done: AtomicBool,
    notify: Notify,
}

impl BuildOutput {
    pub fn line(&self, s: impl Into<String>) {
        self.lines.lock().unwrap().push(s.into());
        self.notify.notify_waiters();
    }

    /// A heading: `-----> Compressing...`.
    pub fn heading(&self, s: &str) {
        self.line(format!("-----> {s}"));
    }

    /// An indented detail line under a heading.
    pub fn detail(&self, s: &str) {
        self.line(format!("       {s}"));
    }

    /// A warning, as Heroku shows them: ` !     message`.
    pub fn warn(&self, s: &str) {
        self.line(format!(" !     {s}"));
    }

    /// A buildpack's line in Heroku's look: headings (`-----> `) and lines already indented or
    /// marked (` !     `) as they are, the rest indented.
    pub fn buildpack_line(&self, s: &str) {
        if s.starts_with("-----> ")
            || s.starts_with("       ")
            || s.starts_with(" !")
            || s.is_empty()
        {
            self.line(s);
        } else {
            self.line(format!("       {s}"));
        }
    }

    pub fn finish(&self) {
        self.done.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn text(&self) -> String {
        let mut s = self.lines.lock().unwrap().join("\n");
        s.push('\n');
        s
    }

    /// Lines from index `from` on; waits for new ones; `None` once finished and drained.
    pub async fn next(&self, from: usize) -> Option<Vec<String>> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let lines = self.lines.lock().unwrap();
                if lines.len() > from {
                    return Some(lines[from..].to_vec());
                }
                if self.done.load(Ordering::SeqCst) {
                    return None;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildpack_lines_look_like_herokus() {
        let o = BuildOutput::default();
        o.buildpack_line("-----> Installing requirements with pip");
        o.buildpack_line("Collecting flask");
        o.buildpack_line("       already indented");
        o.buildpack_line(" !     Push rejected");
        assert_eq!(
            o.text(),
            "-----> Installing requirements with pip\n       Collecting flask\n       already indented\n !     Push rejected\n"
        );
    }
}
