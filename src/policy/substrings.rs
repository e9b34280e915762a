//! `deny_substrings`: the anchor's blunt last line, made to match whole words.
//!
//! Owns: matching entries against raw and normalized text at word boundaries, so `nc `
//! hits `nc -l` but not `rsync -a`. Never the main gate (rules are); never does IO.

/// The first entry found in `text` or its normalized form, if any.
pub fn find_denied<'a>(entries: &'a [String], text: &str) -> Option<&'a str> {
    let normalized = normalize(text);
    entries.iter().map(|e| e.as_str()).find(|entry| {
        let needle = entry.trim();
        !needle.is_empty() && (contains_word(text, needle) || contains_word(&normalized, needle))
    })
}

/// Quotes deleted, backslashes removed, whitespace runs collapsed: `r'm' -rf  /` → `rm -rf /`.
fn normalize(text: &str) -> String {
    let stripped: String = text.chars().filter(|c| !matches!(c, '\'' | '"' | '\\')).collect();
    stripped.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// `needle` occurs in `hay` with no word character glued to a word-character edge.
fn contains_word(hay: &str, needle: &str) -> bool {
    let starts_word = needle.chars().next().is_some_and(is_word_char);
    let ends_word = needle.chars().last().is_some_and(is_word_char);
    hay.match_indices(needle).any(|(at, _)| {
        let before_ok = !starts_word || hay[..at].chars().last().is_none_or(|c| !is_word_char(c));
        let after_ok = !ends_word || hay[at + needle.len()..].chars().next().is_none_or(|c| !is_word_char(c));
        before_ok && after_ok
    })
}

#[cfg(test)]
mod tests {
    use super::find_denied;

    fn hit(entries: &[&str], text: &str) -> bool {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        find_denied(&entries, text).is_some()
    }

    #[test]
    fn whole_words_only() {
        assert!(hit(&["nc "], "nc -l 80"));
        assert!(!hit(&["nc "], "rsync -a x y"));
        assert!(hit(&["reboot"], "sudo reboot"));
        assert!(!hit(&["reboot"], "grep reboots log"));
        assert!(hit(&["rm -rf /"], "r'm' -rf /"));
        assert!(hit(&[":(){ :|:& };:"], ":(){ :|:& };:"));
        assert!(!hit(&["curl "], "ls"));
    }
}
