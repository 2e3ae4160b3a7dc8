//! `logs`.

use super::{resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::Result;
use std::borrow::Cow;
use std::io::{IsTerminal, Write};

pub async fn logs(
    paths: &Paths,
    arg: AppArg,
    num: usize,
    tail: bool,
    dyno: Option<String>,
    source: Option<String>,
) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let session = c
        .call(api::logs::CreateSession {
            app: name.clone(),
            body: api::LogSessionCreate {
                lines: Some(num),
                tail: Some(tail),
                dyno,
                source,
            },
        })
        .await?;
    // On a terminal an app's escape sequences would act on the user's screen (clear it, set
    // the title, move the cursor over earlier lines): they are shown, not obeyed. Piped or
    // redirected, the lines stay as the app wrote them.
    let escape = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    c.stream(&session.logplex_url, |text| {
        let text = if escape {
            escape_controls(text)
        } else {
            Cow::Borrowed(text)
        };
        if out.write_all(text.as_bytes()).is_err() || out.flush().is_err() {
            // The reader went away (`dyno logs --tail | head`): stop like any Unix tool.
            std::process::exit(0);
        }
    })
    .await?;
    Ok(0)
}

/// `text` with every control character but newline and tab written as a visible escape
/// (`\x1b`, `\r`, `\u{9b}`): C0, DEL and the C1 range, which terminals also obey.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    let is_control = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut s = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // CRLF line ends are harmless; a lone CR would let a line overwrite itself.
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => s.push_str("\\r"),
            c if is_control(c) && (c as u32) < 0x80 => s.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_control(c) => s.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => s.push(c),
        }
    }
    Cow::Owned(s)
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        let plain = "2026-12-08T01:00:00Z app[web.1]: caf\u{e9} \t ok\n";
        assert!(matches!(
            escape_controls(plain),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("a\x1b[2J\x1b]0;title\x07b\rc\x7f\u{9b}31m\r\n"),
            "a\\x1b[2J\\x1b]0;title\\x07b\\rc\\x7f\\u{9b}31m\n"
        );
    }
}
