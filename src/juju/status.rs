//! A unit's workload status, as the charm reports it to Juju with `status-set`.

use crate::text::one_line;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_short_line() {
        let huge = "x".repeat(100_000);
        let s = Status::blocked(format!("invalid config: app-id: {huge}"));
        assert_eq!(s.message.chars().count(), MAX_MESSAGE);
        assert_eq!(s.kind, StatusKind::Blocked);
    }
}
