//! report.html: one self-contained file. Plots are inline SVG, the style sheet is
//! inline, and there is no script: it opens anywhere, offline, as is.

use super::content::{Doc, Table};

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}\
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}figure{margin:1em 0 2em}figcaption{color:#555;font-size:.9em}\
svg{max-width:100%;height:auto}.note{color:#555;font-style:italic}";

fn table(out: &mut String, t: &Table) {
    out.push_str(&format!("<h3>{}</h3>\n", escape(&t.title)));
    if t.rows.is_empty() {
        out.push_str("<p class=\"note\">none</p>\n");
        return;
    }
    out.push_str("<table>\n<tr>");
    for h in &t.header {
        out.push_str(&format!("<th>{}</th>", escape(h)));
    }
    out.push_str("</tr>\n");
    for r in &t.rows {
        out.push_str("<tr>");
        for c in r {
            out.push_str(&format!("<td>{}</td>", escape(c)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    if let Some(n) = &t.note {
        out.push_str(&format!("<p class=\"note\">{}</p>\n", escape(n)));
    }
}

/// Plotters writes an XML-ish SVG document; inline it without anything before `<svg`.
fn inline_svg(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..])
}

pub fn render(doc: &Doc) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p>{}</p>\n<h2>Summary</h2>\n<ul>\n",
        escape(&doc.title),
        escape(&doc.title),
        escape(&doc.subject),
    );
    for line in &doc.headline {
        out.push_str(&format!("<li>{}</li>\n", escape(line)));
    }
    out.push_str("</ul>\n");
    if !doc.details.is_empty() {
        out.push_str(&format!("<p>{}</p>\n", escape(&doc.details.join(" "))));
    }
    if !doc.next_steps.is_empty() {
        out.push_str("<p><strong>To confirm:</strong></p>\n<ul>\n");
        for s in &doc.next_steps {
            out.push_str(&format!("<li>{}</li>\n", escape(s)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h2>Evidence</h2>\n");
    for t in &doc.tables {
        table(&mut out, t);
    }
    if !doc.plots.is_empty() {
        out.push_str("<h2>Plots</h2>\n");
        for p in &doc.plots {
            out.push_str(&format!(
                "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
                inline_svg(&p.svg),
                escape(&p.figure.caption)
            ));
        }
    }
    out.push_str("<p class=\"note\">Full data: report.json.</p>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
