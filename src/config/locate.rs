//! Finds where a key sits in a YAML source text, so semantic errors can name file:line:col.
//!
//! Owns: a line scanner good enough for block-style YAML as people write inventories.
//! Never parses YAML (serde_norway does that); a miss degrades to line 1, never to a panic.

/// A 1-based position in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// Line-based index over one YAML source.
pub struct Locator<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Locator<'a> {
    pub fn new(src: &'a str) -> Self {
        Self { lines: src.lines().collect() }
    }

    /// Position of the `nth` (0-based) line declaring `key:`, optionally with `value`.
    pub fn key(&self, key: &str, value: Option<&str>, nth: usize) -> Pos {
        self.find(key, value, nth).or_else(|| self.find(key, None, 0)).unwrap_or(Pos { line: 1, col: 1 })
    }

    /// Position of the line declaring `key:` that follows the `nth` declaration of `anchor_key`
    /// (e.g. the `port:` of the third host), falling back to the anchor itself.
    pub fn key_after(&self, anchor_key: &str, nth: usize, key: &str) -> Pos {
        let Some(start) = self.find(anchor_key, None, nth) else {
            return self.key(key, None, 0);
        };
        let next = self.find(anchor_key, None, nth + 1).map_or(usize::MAX, |p| p.line);
        let item_start = self.item_start(start.line);
        for (idx, line) in self.lines.iter().enumerate().skip(item_start - 1) {
            let line_no = idx + 1;
            if line_no >= next && line_no > start.line {
                break;
            }
            if let Some(col) = key_column(line, key) {
                return Pos { line: line_no, col };
            }
        }
        start
    }

    /// Position of a top-level `key:` (column 1), e.g. a runbook's own `max_fail_percentage`
    /// rather than a step's; falls back to any declaration of `key`.
    pub fn top_level(&self, key: &str) -> Pos {
        let prefix = format!("{key}:");
        match self.lines.iter().position(|l| l.starts_with(&prefix)) {
            Some(idx) => Pos { line: idx + 1, col: 1 },
            None => self.key(key, None, 0),
        }
    }

    /// Position of the `nth` item of the list `list_key:` nested under the top-level
    /// `section:` (e.g. the third entry of `files: rules:`), falling back to the section.
    pub fn item_under(&self, section: &str, list_key: &str, nth: usize) -> Pos {
        let fallback = self.key(section, None, 0);
        let Some(start) = self.lines.iter().position(|l| l.starts_with(&format!("{section}:"))) else {
            return fallback;
        };
        let mut list_indent = None;
        let mut item_indent = None;
        let mut seen = 0usize;
        for (idx, line) in self.lines.iter().enumerate().skip(start + 1) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if indent == 0 {
                break;
            }
            match (list_indent, item_indent) {
                (None, _) if key_column(line, list_key).is_some() => list_indent = Some(indent),
                (Some(li), _) if indent < li || (indent == li && !trimmed.starts_with("- ")) => break,
                (Some(_), None) if trimmed.starts_with("- ") => item_indent = Some(indent),
                _ => {}
            }
            if item_indent == Some(indent) && trimmed.starts_with("- ") {
                if seen == nth {
                    return Pos { line: idx + 1, col: indent + 1 };
                }
                seen += 1;
            }
        }
        fallback
    }

    /// The line where the list item containing `line` starts (`- ` marker), or `line` itself.
    fn item_start(&self, line: usize) -> usize {
        let mut l = line;
        while l > 1 {
            let text = self.lines.get(l - 1).copied().unwrap_or("");
            if text.trim_start().starts_with("- ") {
                return l;
            }
            l -= 1;
        }
        line
    }

    fn find(&self, key: &str, value: Option<&str>, nth: usize) -> Option<Pos> {
        self.lines
            .iter()
            .enumerate()
            .filter_map(|(idx, line)| {
                let col = key_column(line, key)?;
                let matches_value = value.is_none_or(|v| {
                    let rest = line[col - 1 + key.len() + 1..].trim();
                    let rest = rest.split(" #").next().unwrap_or(rest).trim();
                    rest.trim_matches(|c| c == '"' || c == '\'') == v
                });
                matches_value.then_some(Pos { line: idx + 1, col })
            })
            .nth(nth)
    }
}

/// Column (1-based) of `key:` on this line, if the line declares that key.
fn key_column(line: &str, key: &str) -> Option<usize> {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    let (offset, body) = match trimmed.strip_prefix("- ") {
        Some(rest) => {
            let inner = rest.trim_start();
            (indent + 2 + (rest.len() - inner.len()), inner)
        }
        None => (indent, trimmed),
    };
    let body_key = body.strip_prefix('"').unwrap_or(body);
    let rest = body_key.strip_prefix(key)?;
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    (rest.starts_with(':')).then_some(offset + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "hosts:\n  - alias: a\n    port: 22\n  - alias: b\n    host: x\n    port: 99999\n";

    #[test]
    fn finds_nth_key_and_value() {
        let loc = Locator::new(SRC);
        assert_eq!(loc.key("alias", Some("b"), 0), Pos { line: 4, col: 5 });
        assert_eq!(loc.key("alias", None, 1), Pos { line: 4, col: 5 });
        assert_eq!(loc.key_after("alias", 1, "port"), Pos { line: 6, col: 5 });
        assert_eq!(loc.key_after("alias", 0, "port"), Pos { line: 3, col: 5 });
        assert_eq!(loc.key("missing", None, 0), Pos { line: 1, col: 1 });
    }

    #[test]
    fn finds_items_of_a_nested_list() {
        let src = "rules:\n  - action: allow\nfiles:\n  transfer_dir: /t\n  rules:\n    - action: allow\n      read:\n        - /a/**\n    - action: deny\n";
        let loc = Locator::new(src);
        assert_eq!(loc.item_under("files", "rules", 0), Pos { line: 6, col: 5 });
        assert_eq!(loc.item_under("files", "rules", 1), Pos { line: 9, col: 5 });
        assert_eq!(loc.item_under("files", "rules", 2), Pos { line: 3, col: 1 });
    }
}
