//! Tables as Heroku's CLI prints them: columns padded to their widest cell, two spaces apart,
//! a rule of `─` under the header, no trailing spaces.

/// The header with its rule (two lines), and each row's line, all ending in `\n`.
pub fn lines(head: &[&str], rows: &[Vec<String>]) -> (String, Vec<String>) {
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(w.len()) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let s: Vec<String> = cells
            .zip(&w)
            .map(|(c, width)| format!("{c:<width$}"))
            .collect();
        s.join("  ").trim_end().to_string() + "\n"
    };
    let rule: Vec<String> = w.iter().map(|n| "─".repeat(*n)).collect();
    let header = line(&mut head.iter().copied()) + &line(&mut rule.iter().map(String::as_str));
    let rows = rows
        .iter()
        .map(|r| line(&mut r.iter().map(String::as_str)))
        .collect();
    (header, rows)
}

/// The whole table.
pub fn render(head: &[&str], rows: &[Vec<String>]) -> String {
    let (header, rows) = lines(head, rows);
    header + &rows.concat()
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_fit_their_widest_cell() {
        let t = super::render(
            &["ID", "Command"],
            &[
                vec!["10".into(), "echo hi".into()],
                vec!["2".into(), "".into()],
            ],
        );
        assert_eq!(t, "ID  Command\n──  ───────\n10  echo hi\n2\n");
    }
}
