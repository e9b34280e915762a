//! Characters that make what a person reads differ from what runs: control characters,
//! every Unicode format character (general category Cf: bidi overrides, zero-width joiners,
//! invisible operators, tag characters), variation selectors, fillers that render as
//! nothing, and spaces other than the ASCII space.
//!
//! Owns: `find_invisible`, used for commands, path arguments, transfer paths and runbook
//! parameters alike. Never decides anything else.

/// Unicode 15.1 general category Cf, plus other code points that render as nothing or as a
/// space: a reviewer cannot see them, so they are refused wherever text is judged.
const INVISIBLE: &[(u32, u32)] = &[
    (0x00A0, 0x00A0),
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x115F, 0x1160),
    (0x1680, 0x1680),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2000, 0x200F),
    (0x2028, 0x202F),
    (0x205F, 0x206F),
    (0x3000, 0x3000),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
];

/// The first character a reviewer could not see (or that controls the terminal), if any.
/// `allow_newline_tab` keeps `\n` and `\t`, which commands may contain.
pub fn find_invisible(text: &str, allow_newline_tab: bool) -> Option<char> {
    text.chars().find(|&c| {
        if allow_newline_tab && matches!(c, '\n' | '\t') {
            return false;
        }
        let cp = c as u32;
        c.is_control() || INVISIBLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp))
    })
}

/// `text` safe to print for a person: every character `find_invisible` flags (terminal
/// controls such as ESC, CR, BEL; bidi overrides; zero-width characters) shown as an
/// escape (`\x1b`, `<U+202E>`), so remote output can neither drive the terminal nor pass
/// for another host's lines. Newlines and tabs stay.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if find_invisible(text, true).is_none() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if find_invisible(c.encode_utf8(&mut [0; 4]), true).is_none() {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("<{}>", code_point(c)));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `U+202E` in the form every refusal uses.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_would_drive_a_terminal() {
        assert_eq!(printable("plain\tline\n"), "plain\tline\n");
        assert_eq!(printable("x\r\u{1b}[2Kh2: ok\u{7}"), "x\\x0d\\x1b[2Kh2: ok\\x07");
        assert_eq!(printable("a\u{202e}b"), "a<U+202E>b");
    }

    #[test]
    fn format_characters_and_invisibles_are_found() {
        for c in
            ['\u{2060}', '\u{2064}', '\u{180E}', '\u{FE00}', '\u{FE0F}', '\u{E0041}', '\u{202E}', '\u{200B}', '\u{1}']
        {
            assert_eq!(find_invisible(&format!("ls{c}x"), true), Some(c), "{}", code_point(c));
        }
        assert_eq!(find_invisible("uptime\n\tdate — ünïcode", true), None);
        assert_eq!(find_invisible("a\nb", false), Some('\n'));
    }
}
