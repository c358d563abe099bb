//! A unit's workload status, as the charm reports it to Juju with `status-set`.

/// The workload statuses a charm may set (`error` and `unknown` belong to Juju).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Active,
    Waiting,
    Maintenance,
    Blocked,
}

impl StatusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Active => "active",
            StatusKind::Waiting => "waiting",
            StatusKind::Maintenance => "maintenance",
            StatusKind::Blocked => "blocked",
        }
    }
}

/// The longest status message the charm sets, in characters. `juju status` shows about one
/// line, and `status-set` gets the message as one argument: whatever the input (a huge
/// config value, a related unit's long hostname), the message stays short.
pub const MAX_MESSAGE: usize = 160;

/// A workload status: its kind and a one-line message of at most [`MAX_MESSAGE`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub kind: StatusKind,
    pub message: String,
}

impl Status {
    /// A status whose message is `message` made one line and cut to [`MAX_MESSAGE`].
    pub fn new(kind: StatusKind, message: impl AsRef<str>) -> Status {
        Status {
            kind,
            message: one_line(message.as_ref(), MAX_MESSAGE),
        }
    }
    pub fn active(message: impl AsRef<str>) -> Status {
        Status::new(StatusKind::Active, message)
    }
    pub fn blocked(message: impl AsRef<str>) -> Status {
        Status::new(StatusKind::Blocked, message)
    }
    pub fn waiting(message: impl AsRef<str>) -> Status {
        Status::new(StatusKind::Waiting, message)
    }
    pub fn maintenance(message: impl AsRef<str>) -> Status {
        Status::new(StatusKind::Maintenance, message)
    }
}

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
        let huge = "x".repeat(100_000);
        let s = Status::blocked(format!("invalid config: app-id: {huge}"));
        assert_eq!(s.message.chars().count(), MAX_MESSAGE);
        assert_eq!(s.kind, StatusKind::Blocked);
    }

    #[test]
    fn quoting_is_bounded_and_escaped() {
        assert_eq!(quote("abc", 10), "\"abc\"");
        assert_eq!(quote("a\nb", 10), "\"a\\nb\"");
        assert_eq!(quote("abcdef", 3), "\"abc…\"");
    }
}
