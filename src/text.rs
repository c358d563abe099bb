//! Text for people: one-line messages, quoted values, and the characters no value may hold.
//! The ground floor: every layer uses it (status messages, config reasons, the workload's
//! error texts) and it imports nothing of the charm.

/// `text` on one line (line breaks and other control characters become spaces, runs of
/// spaces one), at most `max_chars` characters; a cut is marked with `…`.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in text.trim().chars() {
        if c.is_control() || c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    if out.chars().count() <= max_chars {
        return out;
    }
    let mut cut: String = out.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A value quoted for a message: at most `max_chars` characters of it (cut with `…`),
/// control characters escaped, so that no input can make a message long or multi-line.
pub fn quote(value: &str, max_chars: usize) -> String {
    let mut escaped = String::new();
    let mut cut = false;
    for (i, c) in value.chars().enumerate() {
        if i >= max_chars {
            cut = true;
            break;
        }
        escaped.extend(c.escape_debug());
    }
    if cut {
        escaped.push('…');
    }
    format!("\"{escaped}\"")
}

/// The first character no option value may hold: control characters and the invisible
/// formatting characters that make two different values look the same (zero-width spaces
/// and joiners, bidirectional controls, the byte-order mark, the soft hyphen).
pub fn invisible_char(s: &str) -> Option<char> {
    s.chars().find(|c| {
        c.is_control()
            || matches!(
                *c,
                '\u{00AD}'
                    | '\u{034F}'
                    | '\u{061C}'
                    | '\u{115F}'
                    | '\u{1160}'
                    | '\u{17B4}'
                    | '\u{17B5}'
                    | '\u{180E}'
                    | '\u{200B}'..='\u{200F}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{2060}'..='\u{206F}'
                    | '\u{3164}'
                    | '\u{FE00}'..='\u{FE0F}'
                    | '\u{FEFF}'
                    | '\u{FFA0}'
                    | '\u{FFF0}'..='\u{FFFF}'
            )
    })
}

/// `U+XXXX` for a message.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// The reason a value holds a control or invisible character, if it does.
pub fn visible(s: &str) -> Result<(), String> {
    match invisible_char(s) {
        Some(c) => Err(format!(
            "must not contain control or invisible characters (found {})",
            code_point(c)
        )),
        None => Ok(()),
    }
}

/// No control or invisible character, no space around the value.
pub fn plain(s: &str) -> Result<(), String> {
    visible(s)?;
    if s.trim() != s {
        return Err("must not begin or end with spaces".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_short_line() {
        assert_eq!(
            one_line("npm error 1\nmore  here", 80),
            "npm error 1 more here"
        );
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("", 3), "");
    }

    #[test]
    fn quoting_is_bounded_and_escaped() {
        assert_eq!(quote("abc", 10), "\"abc\"");
        assert_eq!(quote("a\nb", 10), "\"a\\nb\"");
        assert_eq!(quote("abcdef", 3), "\"abc…\"");
    }

    #[test]
    fn invisible_and_control_characters() {
        for s in [
            "a\u{200B}b",
            "\u{FEFF}a",
            "a\u{202E}b",
            "a\u{00AD}b",
            "a\nb",
            "a\u{7f}",
        ] {
            assert!(invisible_char(s).is_some(), "{s:?}");
        }
        assert_eq!(invisible_char("ümlaut é 鍵"), None);
        assert!(plain(" x").unwrap_err().contains("spaces"));
        assert!(visible("a\u{200B}").unwrap_err().contains("U+200B"));
    }
}
