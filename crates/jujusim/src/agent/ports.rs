//! Port ranges for open-port/close-port/opened-ports: parsing and validation (Juju `ParsePortRange`), sets, listing.

use crate::errors::{q, CmdError, CmdResult};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A protocol plus inclusive port range; icmp uses -1/-1. Ordered by protocol, then ports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub protocol: String,
    pub from: i64,
    pub to: i64,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.protocol == "icmp" {
            write!(f, "icmp")
        } else if self.from == self.to {
            write!(f, "{}/{}", self.from, self.protocol)
        } else {
            write!(f, "{}-{}/{}", self.from, self.to, self.protocol)
        }
    }
}

fn parse_port(s: &str, whole: &str) -> CmdResult<i64> {
    s.parse::<i64>().map_err(|_| {
        CmdError::usage(format!(
            "invalid port {}: strconv.Atoi: parsing {}: invalid syntax",
            q(whole),
            q(s)
        ))
    })
}

/// Parse `80`, `80/udp`, `8000-8100/tcp`, `icmp`. All errors are usage errors (exit 2).
pub fn parse(input: &str) -> CmdResult<PortRange> {
    let (ports, protocol) = match input.split_once('/') {
        Some((p, proto)) => (p, proto.to_lowercase()),
        None => (input, "tcp".to_string()),
    };
    let parts: Vec<&str> = ports.split('-').collect();
    let (from, to) = match parts.as_slice() {
        [one] if *one == "icmp" => (-1, -1),
        [one] => {
            let p = parse_port(one, ports)?;
            (p, p)
        }
        [a, b] => (parse_port(a, ports)?, parse_port(b, ports)?),
        _ => return Err(CmdError::usage(format!("invalid port range {}", q(ports)))),
    };
    let protocol = if from == -1 && to == -1 {
        "icmp".to_string()
    } else {
        protocol
    };
    let r = PortRange { protocol, from, to };
    validate(&r)?;
    Ok(r)
}

fn validate(r: &PortRange) -> CmdResult<()> {
    let proto = r.protocol.as_str();
    if !matches!(proto, "tcp" | "udp" | "icmp") {
        return Err(CmdError::usage(format!(
            "invalid protocol {}, expected \"tcp\", \"udp\", or \"icmp\"",
            q(proto)
        )));
    }
    if proto == "icmp" {
        if r.from == -1 && r.to == -1 {
            return Ok(());
        }
        return Err(CmdError::usage(format!(
            "protocol \"icmp\" doesn't support any ports; got \"{}\"",
            r.from
        )));
    }
    if r.from > r.to {
        return Err(CmdError::usage(format!(
            "invalid port range {}-{}/{}",
            r.from, r.to, r.protocol
        )));
    }
    if r.from < 0 || r.from > 65535 || r.to < 0 || r.to > 65535 {
        return Err(CmdError::usage(format!(
            "port range bounds must be between 0 and 65535, got {}-{}",
            r.from, r.to
        )));
    }
    Ok(())
}

/// Opened ports: endpoint ("" = all endpoints) -> ranges.
pub type PortMap = BTreeMap<String, BTreeSet<PortRange>>;

/// One queued open or close request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortOp {
    pub open: bool,
    pub range: PortRange,
    /// Empty = all endpoints.
    #[serde(default)]
    pub endpoints: Vec<String>,
}

/// Apply one request. Open adds (no-op when already open); close without endpoints removes the
/// range everywhere, with endpoints only from those; closing a closed range is a no-op.
pub fn apply(map: &mut PortMap, op: &PortOp) {
    if op.open {
        let eps: Vec<String> = if op.endpoints.is_empty() {
            vec![String::new()]
        } else {
            op.endpoints.clone()
        };
        for ep in eps {
            map.entry(ep).or_default().insert(op.range.clone());
        }
    } else {
        for (ep, set) in map.iter_mut() {
            if op.endpoints.is_empty() || op.endpoints.contains(ep) {
                set.remove(&op.range);
            }
        }
        map.retain(|_, s| !s.is_empty());
    }
}

/// `opened-ports` lines: sorted by protocol then port; with endpoints `80/tcp (*)` or `80/tcp (a, b)`.
pub fn list(map: &PortMap, with_endpoints: bool) -> Vec<String> {
    let mut by_range: BTreeMap<PortRange, BTreeSet<String>> = BTreeMap::new();
    for (ep, set) in map {
        for r in set {
            by_range.entry(r.clone()).or_default().insert(ep.clone());
        }
    }
    by_range
        .into_iter()
        .map(|(r, eps)| {
            if !with_endpoints {
                r.to_string()
            } else if eps.contains("") {
                format!("{r} (*)")
            } else {
                format!("{r} ({})", eps.into_iter().collect::<Vec<_>>().join(", "))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        assert_eq!(parse("80").unwrap().to_string(), "80/tcp");
        assert_eq!(parse("53/UDP").unwrap().to_string(), "53/udp");
        assert_eq!(parse("8000-8100/udp").unwrap().to_string(), "8000-8100/udp");
        assert_eq!(parse("icmp").unwrap().to_string(), "icmp");
    }

    #[test]
    fn parse_errors_are_exit_2() {
        for (input, msg) in [
            (
                "abc",
                "invalid port \"abc\": strconv.Atoi: parsing \"abc\": invalid syntax",
            ),
            (
                "80/x",
                "invalid protocol \"x\", expected \"tcp\", \"udp\", or \"icmp\"",
            ),
            (
                "0-70000",
                "port range bounds must be between 0 and 65535, got 0-70000",
            ),
            ("90-80/tcp", "invalid port range 90-80/tcp"),
            (
                "80/icmp",
                "protocol \"icmp\" doesn't support any ports; got \"80\"",
            ),
            ("1-2-3", "invalid port range \"1-2-3\""),
        ] {
            let e = parse(input).unwrap_err();
            assert_eq!(e.code, 2, "{input}");
            assert_eq!(e.msg, msg, "{input}");
        }
    }

    #[test]
    fn open_close_and_listing() {
        let mut m = PortMap::new();
        let op = |open, s: &str, eps: &[&str]| PortOp {
            open,
            range: parse(s).unwrap(),
            endpoints: eps.iter().map(|e| e.to_string()).collect(),
        };
        apply(&mut m, &op(true, "8080", &[]));
        apply(&mut m, &op(true, "443", &[]));
        apply(&mut m, &op(true, "53/udp", &["dns"]));
        apply(&mut m, &op(true, "icmp", &[]));
        apply(&mut m, &op(true, "10000-10010", &["a", "b"]));
        apply(&mut m, &op(true, "8080", &[]));
        assert_eq!(
            list(&m, false),
            vec!["icmp", "443/tcp", "8080/tcp", "10000-10010/tcp", "53/udp"]
        );
        assert_eq!(list(&m, true)[3], "10000-10010/tcp (a, b)");
        assert_eq!(list(&m, true)[1], "443/tcp (*)");
        apply(&mut m, &op(false, "443", &[]));
        apply(&mut m, &op(false, "9999", &[]));
        apply(&mut m, &op(false, "10000-10010", &["a"]));
        assert_eq!(
            list(&m, true),
            vec![
                "icmp (*)",
                "8080/tcp (*)",
                "10000-10010/tcp (b)",
                "53/udp (dns)"
            ]
        );
    }
}
