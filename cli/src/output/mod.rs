//! What the commands print, apart from `--json` (the API's JSON unchanged):
//! aligned tables, timestamps and terminal-safe text here; the CMDB's records
//! in [`cmdb`]; capacity and availability in [`capacity`]; SVG charts in
//! [`chart`]. Each is a function of what the API answered, so golden files
//! check it byte for byte (`cli/tests/golden.rs`).

pub mod capacity;
pub mod chart;
pub mod cmdb;

/// Prints rows under headers, columns padded to their widest cell. Cells
/// are made terminal-safe ([`clean`]): they often hold what agents sent.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clean(c).into_owned()).collect())
        .collect();
    let rows = &rows[..];
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// Text that came from outside (agents, devices, imports) made safe for a
/// terminal: control characters are shown as escapes (`\u{1b}`), never
/// sent, so a hostile hostname cannot clear a screen or retitle a window.
pub fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A whole text made terminal-safe, keeping its line breaks and tabs.
pub fn clean_text(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Text for HTML and SVG, inside elements or either kind of quoted
/// attribute.
pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A value in double quotes, cleaned: `"1.24.0-1"`.
pub fn quoted(text: &str) -> String {
    format!("\"{}\"", clean(text))
}

// Times are formatted and parsed below the CLI, where the CMDB's own
// messages use them too.
pub use fathom_support::time::{format_ms as time, parse_duration_secs, parse_time, rfc3339};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(&["A", "LONGER"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    LONGER\nxyz  1\n");
    }
}
