//! A Juju machine charm for Parse Server. The `parse-server-charm` binary is the charm's
//! `dispatch`: Juju runs it for every hook and action.

pub mod charm;
pub mod config;
pub mod juju;
pub mod relations;
pub mod workload;

/// The first line of `text`, at most `max_chars` long: what fits a status message.
pub fn first_line(text: &str, max_chars: usize) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(max_chars)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_line_is_one_short_line() {
        assert_eq!(super::first_line("npm error 1\nmore", 80), "npm error 1");
        assert_eq!(super::first_line("abcdef", 3), "abc");
        assert_eq!(super::first_line("", 3), "");
    }
}
