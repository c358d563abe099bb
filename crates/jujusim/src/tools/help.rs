//! `-h/--help` texts of the hook tools.

/// Usage text for a tool (printed on stdout, exit 0).
pub fn usage(tool: &str) -> String {
    let (syntax, summary) = match tool {
        "config-get" => ("[options] [<key>]", "print application configuration\n\nOptions:\n-a, --all  print all keys\n--format  (= smart) specify output format (json|smart|yaml)\n-o, --output  specify an output file"),
        "relation-ids" => ("[options] <name>", "list all relation ids with the given relation name"),
        "relation-list" => ("[options]", "list relation units\n\nOptions:\n--app  list remote application instead of participating units\n-r, --relation  relation id"),
        "relation-get" => ("[options] <key> <unit id>", "get relation settings\n\nOptions:\n--app  get the relation data for the overall application, not just a unit\n-r, --relation  relation id"),
        "relation-set" => ("[options] key=value [key=value ...]", "set relation settings\n\nOptions:\n--app  pick whether you are setting \"application\" settings or \"unit\" settings\n--file  file containing key-value pairs (- for stdin)\n-r, --relation  relation id"),
        "open-port" => ("[options] <port>[/<protocol>] or <from>-<to>[/<protocol>] or icmp", "register a request to open a port or port range\n\nOptions:\n--endpoints  a comma-delimited list of application endpoints to target"),
        "close-port" => ("[options] <port>[/<protocol>] or <from>-<to>[/<protocol>] or icmp", "register a request to close a port or port range\n\nOptions:\n--endpoints  a comma-delimited list of application endpoints to target"),
        "opened-ports" => ("[options]", "list all ports or port ranges opened by the unit\n\nOptions:\n--endpoints  display the list of target application endpoints for each port range"),
        "status-set" => ("[options] <maintenance | blocked | waiting | active> [message]", "set status information\n\nOptions:\n--application  set this status for the application to which the unit belongs if the unit is the leader"),
        "status-get" => ("[options] [--include-data] [--application]", "print status information\n\nOptions:\n--application  print status for all units of this application if this unit is the leader\n--include-data  print all status data"),
        "application-version-set" => ("<new-version>", "specify which version of the application is deployed"),
        "juju-log" => ("[options] <message>", "write a message to the juju log\n\nOptions:\n--debug  log at debug level\n-l, --log-level  (= INFO) Send log message at the given level"),
        "is-leader" => ("[options]", "print application leadership status"),
        "leader-get" => ("[options] [<key>]", "print application leadership settings"),
        "leader-set" => ("<key>=<value> [...]", "write application leadership settings"),
        "unit-get" => ("[options] <setting>", "print public-address or private-address"),
        "network-get" => ("[options] <binding-name> [--ingress-address] [--bind-address] [--egress-subnets]", "get network config\n\nOptions:\n--bind-address  get the address for the binding on which the unit should listen\n--egress-subnets  get the egress subnets for the binding\n--ingress-address  get the ingress address for the binding\n-r, --relation  specify a relation by id"),
        "state-get" => ("[options] [<key>]", "print server-side-state value\n\nOptions:\n--strict  return an error if the requested key does not exist"),
        "state-set" => ("[options] key=value [key=value ...]", "set server-side-state values\n\nOptions:\n--file  file containing key-value pairs (- for stdin)"),
        "state-delete" => ("<key>", "delete server-side-state key value pair"),
        "action-get" => ("[options] [<key>[.<key>.<key>...]]", "get action parameters"),
        "action-set" => ("<key>=<value> [<key>=<value> ...]", "set action results"),
        "action-fail" => ("[\"<failure message>\"]", "set action fail status with message"),
        "action-log" => ("<message>", "record a progress message for the current action"),
        "resource-get" => ("<resource name>", "get the path to the locally cached resource file"),
        "secret-add" => ("[options] [key[#base64|#file]=value...]", "Add a new secret.\n\nOptions:\n--description  the secret description\n--expire  either a duration or time when the secret should expire\n--file  a YAML file containing secret key values\n--label  a label used to identify the secret in hooks\n--owner  (= application) the owner of the secret, either the application or unit\n--rotate  the secret rotation policy"),
        "secret-set" => ("[options] <ID> [key[#base64|#file]=value...]", "Update an existing secret.\n\nOptions:\n--description  the secret description\n--expire  either a duration or time when the secret should expire\n--file  a YAML file containing secret key values\n--label  a label used to identify the secret in hooks\n--rotate  the secret rotation policy"),
        "secret-remove" => ("[options] <ID>", "Remove an existing secret.\n\nOptions:\n--revision  remove the specified revision"),
        "secret-get" => ("[options] <ID> [key[#base64]]", "Get the content of a secret.\n\nOptions:\n--format  (= yaml) specify output format (json|yaml)\n--label  a label used to identify the secret in hooks\n-o, --output  specify an output file\n--peek  get the latest revision just this time\n--refresh  get the latest revision and also get this same revision for subsequent calls"),
        "secret-info-get" => ("[options] <ID>", "Get a secret's metadata info.\n\nOptions:\n--format  (= yaml) specify output format (json|yaml)\n--label  a label used to identify the secret\n-o, --output  specify an output file"),
        "secret-ids" => ("[options]", "Print secret IDs.\n\nOptions:\n--format  (= smart) specify output format (json|smart|yaml)\n-o, --output  specify an output file"),
        _ => ("", ""),
    };
    format!("Usage: {tool} {syntax}\n\nSummary:\n{summary}\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_tool_has_help() {
        for t in crate::tools::TOOLS {
            let u = super::usage(t);
            assert!(u.starts_with(&format!("Usage: {t} ")), "{t}");
            assert!(u.len() > 40, "{t}");
        }
    }
}
