//! report.md: GitHub-flavoured Markdown meant to be pasted into an issue, summary first.

use super::content::{Doc, Table};

/// Table cells hold free text (evidence strings contain `|`): escape what would end a
/// cell or a row.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// Running text on one line each (a list item must not break).
fn inline(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn table(out: &mut String, t: &Table) {
    out.push_str(&format!("### {}\n\n", t.title));
    if t.rows.is_empty() {
        out.push_str("_none_\n\n");
        return;
    }
    let row = |cells: &[String]| {
        format!(
            "| {} |\n",
            cells
                .iter()
                .map(|c| cell(c))
                .collect::<Vec<_>>()
                .join(" | ")
        )
    };
    out.push_str(&row(&t.header));
    out.push_str(&format!("|{}\n", "---|".repeat(t.header.len())));
    for r in &t.rows {
        out.push_str(&row(r));
    }
    if let Some(n) = &t.note {
        out.push_str(&format!("\n_{}_\n", cell(n)));
    }
    out.push('\n');
}

pub fn render(doc: &Doc) -> String {
    let mut out = format!("# {}\n\n{}\n\n## Summary\n\n", doc.title, doc.subject);
    // One line per finding first, so the answer reads at a glance; the details after.
    for line in &doc.headline {
        out.push_str(&format!("- {}\n", inline(line)));
    }
    out.push('\n');
    if !doc.details.is_empty() {
        out.push_str(&inline(&doc.details.join(" ")));
        out.push_str("\n\n");
    }
    if !doc.next_steps.is_empty() {
        out.push_str("**To confirm:**\n\n");
        for s in &doc.next_steps {
            out.push_str(&format!("- {s}\n"));
        }
        out.push('\n');
    }
    out.push_str("## Evidence\n\n");
    for t in &doc.tables {
        table(&mut out, t);
    }
    if !doc.plots.is_empty() {
        out.push_str("## Plots\n\n");
        for p in &doc.plots {
            out.push_str(&format!(
                "### {}\n\n![{}]({})\n\n{}\n\n",
                p.figure.title,
                p.figure.title.replace(['[', ']'], ""),
                p.png,
                p.figure.caption
            ));
        }
    }
    out.push_str("_Full data: report.json._\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(cell("log|x|\nnext"), "log\\|x\\| next");
    }
}
