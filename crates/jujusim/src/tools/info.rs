//! Read-only unit information tools: config-get, unit-get, network-get, resource-get.

use super::context::Tool;
use crate::agent::relations;
use crate::errors::{q, unrecognized, CmdError, CmdResult};
use crate::flags::{flag, opt};
use crate::tools::output::{OutOpts, FORMAT_FLAGS};
use serde_json::{json, Map, Value};

/// `config-get [--format] [-a|--all] [<key>]`.
pub fn config_get(t: &mut Tool, args: &[String]) -> CmdResult {
    let specs = [FORMAT_FLAGS[0], FORMAT_FLAGS[1], flag("all", Some('a'))];
    let Some(p) = t.parse(&specs, args)? else {
        return Ok(());
    };
    let o = OutOpts::from(&p)?;
    let all = p.on("all");
    let key = match p.args.as_slice() {
        [] => None,
        [k] if all => {
            return Err(CmdError::usage(format!(
                "cannot use argument --all together with key {}",
                q(k)
            )))
        }
        [k] => Some(k.clone()),
        [_, rest @ ..] => return Err(unrecognized(rest)),
    };
    let st = &t.model()?.state;
    let v = match key {
        Some(k) => st.config_view(true).get(&k).cloned().unwrap_or(Value::Null),
        None => Value::Object(st.config_view(all)),
    };
    t.emit(&o, &v)
}

/// `unit-get [--format] private-address|public-address`.
pub fn unit_get(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&FORMAT_FLAGS, args)? else {
        return Ok(());
    };
    let o = OutOpts::from(&p)?;
    match p.args.as_slice() {
        [] => return Err(CmdError::usage("no setting specified")),
        [s] if s == "private-address" || s == "public-address" => {}
        [s] => return Err(CmdError::usage(format!("unknown setting {}", q(s)))),
        [_, rest @ ..] => return Err(unrecognized(rest)),
    }
    let addr = t.model()?.state.address.clone();
    t.emit(&o, &json!(addr))
}

/// The /24 (IPv4) or /64 (IPv6) network of an address.
pub fn cidr_of(addr: &str) -> String {
    if let Ok(ip) = addr.parse::<std::net::Ipv4Addr>() {
        let o = ip.octets();
        return format!("{}.{}.{}.0/24", o[0], o[1], o[2]);
    }
    if let Ok(ip) = addr.parse::<std::net::Ipv6Addr>() {
        let s = ip.segments();
        return format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]);
    }
    String::new()
}

/// The full network-get document for an address.
pub fn network_info(addr: &str) -> Value {
    json!({
        "bind-addresses": [{
            "mac-address": "00:16:3e:00:00:01",
            "interface-name": "eth0",
            "addresses": [{"hostname": "", "value": addr, "cidr": cidr_of(addr)}],
        }],
        "egress-subnets": [format!("{addr}/32")],
        "ingress-addresses": [addr],
    })
}

/// `network-get [--format] [-r id] [--bind-address] [--ingress-address] [--egress-subnets] <binding>`.
pub fn network_get(t: &mut Tool, args: &[String]) -> CmdResult {
    let specs = [
        FORMAT_FLAGS[0],
        FORMAT_FLAGS[1],
        opt("relation", Some('r')),
        flag("bind-address", None),
        flag("ingress-address", None),
        flag("egress-subnets", None),
        flag("primary-address", None),
    ];
    let Some(p) = t.parse(&specs, args)? else {
        return Ok(());
    };
    let o = OutOpts::from(&p)?;
    let binding = match p.args.as_slice() {
        [] => return Err(CmdError::usage("no arguments specified")),
        [b] => b.clone(),
        [_, rest @ ..] => return Err(unrecognized(rest)),
    };
    let st = &t.model()?.state;
    if let Some(r) = p.get("relation") {
        relations::resolve_id(st, r)?;
    }
    if !st.endpoints.contains_key(&binding) && !st.extra_bindings.contains(&binding) {
        return Err(CmdError::runtime(format!(
            "no network config found for binding {}",
            q(&binding)
        )));
    }
    let addr = st.address.clone();
    let mut keys = Map::new();
    if p.on("primary-address") {
        keys.insert("primary-address".into(), json!(addr));
    }
    if p.on("bind-address") {
        keys.insert("bind-address".into(), json!(addr));
    }
    if p.on("ingress-address") {
        keys.insert("ingress-address".into(), json!(addr));
    }
    if p.on("egress-subnets") {
        keys.insert("egress-subnets".into(), json!([format!("{addr}/32")]));
    }
    let v = match keys.len() {
        0 => network_info(&addr),
        1 => keys
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or(Value::Null),
        _ => Value::Object(keys),
    };
    t.emit(&o, &v)
}

/// `resource-get <name>`: the path, without a trailing newline.
pub fn resource_get(t: &mut Tool, args: &[String]) -> CmdResult {
    let Some(p) = t.parse(&[], args)? else {
        return Ok(());
    };
    let name = match p.args.as_slice() {
        [] => return Err(CmdError::usage("missing required resource name")),
        [n] => n.clone(),
        [_, rest @ ..] => return Err(unrecognized(rest)),
    };
    let path = t.model()?.state.resources.get(&name).cloned();
    match path {
        Some(path) => {
            t.emit_raw(&path);
            Ok(())
        }
        None => Err(CmdError::runtime(format!(
            "could not download resource: resource {} not found",
            q(&name)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_doc_shape() {
        assert_eq!(cidr_of("10.0.0.10"), "10.0.0.0/24");
        let v = network_info("10.0.0.10");
        assert_eq!(
            crate::gojson::encode(&v),
            r#"{"bind-addresses":[{"addresses":[{"cidr":"10.0.0.0/24","hostname":"","value":"10.0.0.10"}],"interface-name":"eth0","mac-address":"00:16:3e:00:00:01"}],"egress-subnets":["10.0.0.10/32"],"ingress-addresses":["10.0.0.10"]}"#
        );
    }
}
