//! Command errors: an exit code (2 = usage, 1 = runtime) plus the message printed as `ERROR <msg>`.

use std::fmt;

/// An error that ends a tool or driver command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError {
    /// Process exit code: 2 for usage errors, 1 for runtime errors.
    pub code: i32,
    /// The message, printed as `ERROR <msg>` on stderr.
    pub msg: String,
}

/// Result type for commands.
pub type CmdResult<T = ()> = Result<T, CmdError>;

impl CmdError {
    /// A usage error (exit code 2): bad flags, bad arguments, anything rejected at parse time.
    pub fn usage(msg: impl Into<String>) -> Self {
        CmdError {
            code: 2,
            msg: msg.into(),
        }
    }

    /// A runtime error (exit code 1): permission, leadership, not found at run time.
    pub fn runtime(msg: impl Into<String>) -> Self {
        CmdError {
            code: 1,
            msg: msg.into(),
        }
    }

    /// Print `ERROR <msg>` to stderr and return the exit code.
    pub fn report(&self) -> i32 {
        eprintln!("ERROR {}", self.msg);
        self.code
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl From<anyhow::Error> for CmdError {
    fn from(e: anyhow::Error) -> Self {
        CmdError::runtime(format!("{e:#}"))
    }
}

impl From<std::io::Error> for CmdError {
    fn from(e: std::io::Error) -> Self {
        CmdError::runtime(e.to_string())
    }
}

impl From<serde_json::Error> for CmdError {
    fn from(e: serde_json::Error) -> Self {
        CmdError::runtime(e.to_string())
    }
}

/// Go `%q`-style quoting (close enough: JSON string escaping).
pub fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// `unrecognized args: ["a" "b"]` (exit 2), as juju/cmd reports extra positionals.
pub fn unrecognized(args: &[String]) -> CmdError {
    let quoted: Vec<String> = args.iter().map(|a| q(a)).collect();
    CmdError::usage(format!("unrecognized args: [{}]", quoted.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_unrecognized() {
        assert_eq!(CmdError::usage("x").code, 2);
        assert_eq!(CmdError::runtime("x").code, 1);
        let e = unrecognized(&["a".into(), "b c".into()]);
        assert_eq!(e.code, 2);
        assert_eq!(e.msg, r#"unrecognized args: ["a" "b c"]"#);
    }
}
