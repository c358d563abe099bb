//! Driver CLI (`jujusim <subcommand>`): argument parsing and the model-only subcommands
//! (init, config, relate, remote-*, relation-break, set-leader, attach-resource, status, log).

use crate::agent::hooks::{self, HookRequest};
use crate::agent::lifecycle;
use crate::agent::setup::{self, InitOpts};
use crate::agent::state::with_state;
use crate::agent::state::{self, Bag};
use crate::agent::{charm, relations, statusview};
use crate::errors::{q, CmdError, CmdResult};
use crate::flags::{self, flag, opt, Parsed, Spec};
use crate::machine::{self, boot, net, package};
use crate::{gojson, keyvalue};
use serde_json::Value;
use std::path::{Path, PathBuf};

const USAGE: &str = "\
Usage: jujusim <command> U [args...]     (U = unit directory)

Unit and model:
  init U --charm-dir DIR [--unit APP/N] [--model NAME] [--leader|--no-leader]
         [--address IP] [--exec-prefix JSON-ARGV] [--unit-charm-dir PATH]
  config U [key=value ...] [--file FILE] [--reset key[,key]]
                               (no args: print config JSON; one key: its value; --file: a YAML
                               map of options, optionally under the application's name, as
                               `juju config --file`, so that secrets stay off command lines)
  relate U ENDPOINT REMOTE-APP                    (prints ENDPOINT:ID)
  remote-set U REL-ID REMOTE-UNIT [key=value ...] [--address IP]
  remote-app-set U REL-ID [key=value ...]
  remote-leave U REL-ID REMOTE-UNIT
  relation-break U REL-ID
  set-leader U true|false
  attach-resource U NAME FILE
  status U [--format=json]
  log U [--format=json]
  secret-reveal U LABEL-OR-URI [--key K]          (committed latest content as JSON; --key: the raw value)

Hooks and actions:
  hook U HOOK [--relation ID] [--remote-unit UNIT] [--departing-unit UNIT] [--remote-app APP]
         [--secret-id URI] [--secret-label L] [--secret-revision N]
  action U NAME [key=value ...]
  deploy U                     install, [-created of existing relations], leader-elected|leader-settings-changed,
                               config-changed, start
  integrate U ENDPOINT REMOTE-APP REMOTE-UNIT [key=value ...] [--remote-address IP]
  depart U REL-ID
  teardown U
  upgrade U                    upgrade-charm, config-changed, [leader-settings-changed], start

Machines (the host's systemd booted as PID 1 of the unit's own namespaces):
  machine-up U [--net NETDIR --ip IP]   boot (disk: U/disk); prints the host PID of its systemd
  machine-exec [--net-only] U -- CMD [ARGS...]
                               in all the unit's namespaces (--net-only: its network, the host's files)
  machine-path U PATH          the host path of the running unit's PATH (/proc/<pid>/root/PATH)
  machine-reboot U             power off and boot again from the same disk (no hook runs)
  machine-down U               power off (systemctl poweroff; SIGKILL if it hangs); keeps the disk
  deploy-charm U FILE.charm [--unit APP/N] [--model NAME] [--leader|--no-leader] [--address IP]
               [--machine U0]  unpack into the running machine's agent dir (--machine: a second
                               unit on U0's machine, as a subordinate lives; U must lie inside U0)

Model network:
  net-up NETDIR [--subnet CIDR]          a bridge at the subnet's first address (default 10.77.0.0/24)
  net-exec NETDIR -- CMD [ARGS...]       in the bridge's network namespace, the host's files
  net-down NETDIR
";

/// Absolute (canonical when it exists) unit dir.
fn unit_dir(s: &str) -> CmdResult<PathBuf> {
    let p = PathBuf::from(s);
    let abs = if p.is_absolute() {
        p
    } else {
        std::env::current_dir()?.join(p)
    };
    Ok(abs.canonicalize().unwrap_or(abs))
}

/// A unit dir that must already hold state.json.
fn existing_unit(s: &str) -> CmdResult<PathBuf> {
    let d = unit_dir(s)?;
    if !state::state_path(&d).exists() {
        return Err(CmdError::runtime(format!(
            "{}: no unit state (run `jujusim init` or `jujusim deploy-charm` first)",
            d.display()
        )));
    }
    Ok(d)
}

fn parse(
    specs: &[Spec],
    args: &[String],
    min: usize,
    max: Option<usize>,
) -> CmdResult<Option<Parsed>> {
    let p = flags::parse(specs, args)?;
    if p.help {
        print!("{USAGE}{}", crate::model::cli::USAGE);
        return Ok(None);
    }
    if p.args.len() < min {
        return Err(CmdError::usage("missing arguments (see `jujusim help`)"));
    }
    if let Some(max) = max {
        if p.args.len() > max {
            return Err(crate::errors::unrecognized(&p.args[max..]));
        }
    }
    Ok(Some(p))
}

macro_rules! parsed {
    ($specs:expr, $args:expr, $min:expr, $max:expr) => {
        match parse($specs, $args, $min, $max)? {
            Some(p) => p,
            None => return Ok(0),
        }
    };
}

const INIT_FLAGS: [Spec; 8] = [
    opt("charm-dir", None),
    opt("unit", None),
    opt("model", None),
    flag("leader", None),
    flag("no-leader", None),
    opt("address", None),
    opt("exec-prefix", None),
    opt("unit-charm-dir", None),
];

fn init_opts(p: &Parsed) -> CmdResult<InitOpts> {
    let exec_prefix = match p.get("exec-prefix") {
        None | Some("") => None,
        Some(s) => Some(serde_json::from_str::<Vec<String>>(s).map_err(|e| {
            CmdError::usage(format!("--exec-prefix must be a JSON list of strings: {e}"))
        })?),
    };
    Ok(InitOpts {
        charm_dir: PathBuf::from(p.get("charm-dir").unwrap_or_default()),
        unit: p.get("unit").map(str::to_string),
        model: p.get("model").map(str::to_string),
        leader: !p.on("no-leader")
            || p.on("leader") && p.all("leader").len() > p.all("no-leader").len(),
        address: p.get("address").map(str::to_string),
        exec_prefix,
        unit_charm_dir: p.get("unit-charm-dir").map(str::to_string),
        machine_mode: false,
        charm_in_machine: false,
    })
}

fn cmd_init(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&INIT_FLAGS, args, 1, Some(1));
    let dir = unit_dir(&p.args[0])?;
    if p.get("charm-dir").is_none() {
        return Err(CmdError::usage("--charm-dir is required"));
    }
    let st = setup::init_unit(&dir, &init_opts(&p)?)?;
    eprintln!("initialised {} in {}", st.unit, dir.display());
    Ok(0)
}

fn cmd_hook(args: &[String]) -> CmdResult<i32> {
    let specs = [
        opt("relation", Some('r')),
        opt("remote-unit", None),
        opt("departing-unit", None),
        opt("remote-app", None),
        opt("secret-id", None),
        opt("secret-label", None),
        opt("secret-revision", None),
    ];
    let p = parsed!(&specs, args, 2, Some(2));
    let dir = existing_unit(&p.args[0])?;
    let secret_revision = match p.get("secret-revision") {
        None => None,
        Some(r) => Some(r.parse::<u32>().map_err(|_| {
            CmdError::usage(format!(
                "--secret-revision: expected a number, got {}",
                q(r)
            ))
        })?),
    };
    let req = HookRequest {
        name: p.args[1].clone(),
        relation: p.get("relation").map(str::to_string),
        remote_unit: p.get("remote-unit").map(str::to_string),
        departing: p.get("departing-unit").map(str::to_string),
        remote_app: p.get("remote-app").map(str::to_string),
        secret_id: p.get("secret-id").map(str::to_string),
        secret_label: p.get("secret-label").map(str::to_string),
        secret_revision,
    };
    if let Some((model_dir, unit)) = crate::model::cli::model_unit(&dir)? {
        return crate::model::settle::run_unit_hook(&model_dir, &unit, &req);
    }
    hooks::run_hook(&dir, &req)
}

/// `key=value` pairs from a `juju config --file` YAML file: `{app: {k: v}}` or `{k: v}`.
fn config_file_pairs(file: &str, app: &str) -> CmdResult<Vec<String>> {
    let text =
        std::fs::read_to_string(file).map_err(|e| CmdError::runtime(format!("{file}: {e}")))?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text)
        .map_err(|e| CmdError::usage(format!("{file}: not YAML: {e}")))?;
    let map = match doc.get(app) {
        Some(serde_yaml::Value::Mapping(m)) => m.clone(),
        _ => match doc {
            serde_yaml::Value::Mapping(m) => m,
            _ => {
                return Err(CmdError::usage(format!(
                    "{file}: expected a map of options"
                )))
            }
        },
    };
    map.iter()
        .map(|(k, v)| {
            let k = k
                .as_str()
                .ok_or_else(|| CmdError::usage(format!("{file}: option names are strings")))?;
            let v = match v {
                serde_yaml::Value::String(s) => s.clone(),
                serde_yaml::Value::Bool(b) => b.to_string(),
                serde_yaml::Value::Number(n) => n.to_string(),
                _ => return Err(CmdError::usage(format!("{file}: {k}: not a scalar"))),
            };
            Ok(format!("{k}={v}"))
        })
        .collect()
}

fn cmd_config(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&[opt("reset", None), opt("file", None)], args, 1, None);
    let dir = existing_unit(&p.args[0])?;
    let mut kvs = p.args[1..].to_vec();
    if let Some(file) = p.get("file") {
        let app = state::load(&dir)?.app;
        kvs.extend(config_file_pairs(file, &app)?);
    }
    let kvs = kvs.as_slice();
    let resets: Vec<String> = p
        .all("reset")
        .iter()
        .flat_map(|r| r.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if kvs.is_empty() && resets.is_empty() {
        let st = state::load(&dir)?;
        print!(
            "{}",
            gojson::encode_line(&Value::Object(st.config_view(false)))
        );
        return Ok(0);
    }
    if let [key] = kvs {
        if !key.contains('=') && resets.is_empty() {
            let st = state::load(&dir)?;
            let v = st
                .config_view(true)
                .get(key)
                .cloned()
                .unwrap_or(Value::Null);
            print!("{}", gojson::encode_line(&v));
            return Ok(0);
        }
    }
    with_state(&dir, |st| {
        for kv in kvs {
            let (k, raw) = kv
                .split_once('=')
                .ok_or_else(|| CmdError::usage(format!("expected \"key=value\", got {}", q(kv))))?;
            let opt = st
                .config_schema
                .get(k)
                .ok_or_else(|| CmdError::usage(format!("unknown option {}", q(k))))?;
            let v = charm::parse_config_value(&opt.kind, raw)
                .map_err(|m| CmdError::usage(format!("option {}: {m}", q(k))))?;
            st.config.insert(k.to_string(), v);
        }
        for r in &resets {
            if !st.config_schema.contains_key(r) {
                return Err(CmdError::usage(format!("unknown option {}", q(r))));
            }
            st.config.remove(r);
        }
        Ok(())
    })?;
    Ok(0)
}

fn cmd_relate(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&[], args, 3, Some(3));
    let dir = existing_unit(&p.args[0])?;
    let rid = lifecycle::relate(&dir, &p.args[1], &p.args[2])?;
    println!("{}:{rid}", p.args[1]);
    Ok(0)
}

fn cmd_remote_set(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&[opt("address", None)], args, 3, None);
    let dir = existing_unit(&p.args[0])?;
    lifecycle::remote_set(&dir, &p.args[1], &p.args[2], &p.args[3..], p.get("address"))?;
    Ok(0)
}

fn apply_kv(bag: &mut Bag, pairs: std::collections::BTreeMap<String, String>) {
    for (k, v) in pairs {
        if v.is_empty() {
            bag.remove(&k);
        } else {
            bag.insert(k, v);
        }
    }
}

fn cmd_remote_app_set(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&[], args, 2, None);
    let dir = existing_unit(&p.args[0])?;
    let pairs = keyvalue::parse_pairs(&p.args[2..])?;
    with_state(&dir, |st| {
        let rid = relations::resolve_id(st, &p.args[1])?;
        let rel = st.relations.get_mut(&rid).expect("resolved");
        if rel.is_peer() {
            apply_kv(&mut rel.local_app_bag, pairs);
        } else {
            apply_kv(&mut rel.remote_app_bag, pairs);
        }
        Ok(())
    })?;
    Ok(0)
}

fn cmd_remote_leave(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&[], args, 3, Some(3));
    let dir = existing_unit(&p.args[0])?;
    with_state(&dir, |st| {
        let rid = relations::resolve_id(st, &p.args[1])?;
        let rel = st.relations.get_mut(&rid).expect("resolved");
        if !rel.members.remove(&p.args[2]) {
            return Err(CmdError::runtime(format!(
                "unit {} is not in relation {}",
                q(&p.args[2]),
                q(&rel.name())
            )));
        }
        Ok(())
    })?;
    Ok(0)
}

fn cmd_relation_break(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&[], args, 2, Some(2));
    let dir = existing_unit(&p.args[0])?;
    with_state(&dir, |st| {
        let rid = relations::resolve_id(st, &p.args[1])?;
        st.relations.get_mut(&rid).expect("resolved").broken = true;
        Ok(())
    })?;
    Ok(0)
}

fn cmd_set_leader(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&[], args, 2, Some(2));
    let dir = existing_unit(&p.args[0])?;
    let v = flags::parse_bool(&p.args[1])
        .ok_or_else(|| CmdError::usage(format!("expected true or false, got {}", q(&p.args[1]))))?;
    with_state(&dir, |st| {
        st.leader = v;
        Ok(())
    })?;
    Ok(0)
}

fn cmd_attach_resource(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&[], args, 3, Some(3));
    let dir = existing_unit(&p.args[0])?;
    setup::attach_resource(&dir, &p.args[1], Path::new(&p.args[2]))?;
    Ok(0)
}

fn cmd_status(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&[opt("format", None)], args, 1, Some(1));
    let dir = existing_unit(&p.args[0])?;
    let st = state::load(&dir)?;
    match p.get("format") {
        Some("json") => print!("{}", gojson::encode_line(&statusview::status_json(&st))),
        None | Some("tabular") => print!("{}", statusview::status_table(&st)),
        Some(f) => return Err(CmdError::usage(format!("unknown format {}", q(f)))),
    }
    Ok(0)
}

fn cmd_log(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&[opt("format", None)], args, 1, Some(1));
    let dir = existing_unit(&p.args[0])?;
    let st = state::load(&dir)?;
    print!(
        "{}",
        statusview::log_text(&st, p.get("format") == Some("json"))
    );
    Ok(0)
}

/// `secret-reveal U <label-or-uri> [--key K]` (what `juju show-secret --reveal` shows): the
/// latest committed content as Go JSON, or with `--key` that value raw plus a newline.
fn cmd_secret_reveal(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&[opt("key", None)], args, 2, Some(2));
    let dir = existing_unit(&p.args[0])?;
    let st = state::load(&dir)?;
    print!(
        "{}",
        crate::agent::secrets::reveal(&st, &p.args[1], p.get("key"))?
    );
    Ok(0)
}

/// `[--net-only] DIR [--] CMD...` → (net_only, DIR, index of CMD in args); None for --help.
fn dir_and_command(
    args: &[String],
    net_only_flag: bool,
) -> CmdResult<Option<(bool, PathBuf, usize)>> {
    let mut net_only = false;
    let mut dir = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        match a.as_str() {
            "--net-only" if dir.is_none() && net_only_flag => net_only = true,
            "-h" | "--help" if dir.is_none() => {
                print!("{USAGE}");
                return Ok(None);
            }
            s if dir.is_none() && s.starts_with('-') => {
                return Err(CmdError::usage(format!(
                    "flag provided but not defined: {s}"
                )))
            }
            _ if dir.is_none() => dir = Some(unit_dir(a)?),
            "--" => break,
            _ => {
                i -= 1;
                break;
            }
        }
    }
    let dir = dir.ok_or_else(|| CmdError::usage("no directory specified"))?;
    Ok(Some((net_only, dir, i)))
}

fn cmd_machine_exec(args: &[String]) -> CmdResult<i32> {
    match dir_and_command(args, true)? {
        Some((net_only, dir, i)) => machine::machine_exec(&dir, net_only, &args[i..]),
        None => Ok(0),
    }
}

fn cmd_net_exec(args: &[String]) -> CmdResult<i32> {
    match dir_and_command(args, false)? {
        Some((_, dir, i)) => net::net_exec(&dir, &args[i..]),
        None => Ok(0),
    }
}

fn cmd_machine_up(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&[opt("net", None), opt("ip", None)], args, 1, Some(1));
    machine::machine_up(&unit_dir(&p.args[0])?, p.get("net"), p.get("ip"))
}

const DEPLOY_FLAGS: [Spec; 6] = [
    opt("unit", None),
    opt("model", None),
    flag("leader", None),
    flag("no-leader", None),
    opt("address", None),
    opt("machine", None),
];

fn cmd_deploy_charm(args: &[String]) -> CmdResult<i32> {
    let p = parsed!(&DEPLOY_FLAGS, args, 2, Some(2));
    let dir = unit_dir(&p.args[0])?;
    let machine = p.get("machine").map(unit_dir).transpose()?;
    package::deploy_charm(
        &dir,
        Path::new(&p.args[1]),
        init_opts(&p)?,
        machine.as_deref(),
    )
}

fn dispatch(cmd: &str, rest: &[String]) -> CmdResult<i32> {
    let one_dir = |rest: &[String]| -> CmdResult<Option<PathBuf>> {
        match parse(&[], rest, 1, Some(1))? {
            Some(p) => Ok(Some(unit_dir(&p.args[0])?)),
            None => Ok(None),
        }
    };
    let one_unit = |rest: &[String]| -> CmdResult<Option<PathBuf>> {
        match parse(&[], rest, 1, Some(1))? {
            Some(p) => Ok(Some(existing_unit(&p.args[0])?)),
            None => Ok(None),
        }
    };
    if let Some(res) = crate::model::cli::dispatch(cmd, rest) {
        return res;
    }
    match cmd {
        "init" => cmd_init(rest),
        "hook" => cmd_hook(rest),
        "action" => {
            let p = parsed!(&[], rest, 2, None);
            let dir = existing_unit(&p.args[0])?;
            if let Some((model_dir, unit)) = crate::model::cli::model_unit(&dir)? {
                return crate::model::settle::run_unit_action(
                    &model_dir,
                    &unit,
                    &p.args[1],
                    &p.args[2..],
                );
            }
            hooks::run_action(&dir, &p.args[1], &p.args[2..])
        }
        "config" => cmd_config(rest),
        "relate" => cmd_relate(rest),
        "remote-set" => cmd_remote_set(rest),
        "remote-app-set" => cmd_remote_app_set(rest),
        "remote-leave" => cmd_remote_leave(rest),
        "relation-break" => cmd_relation_break(rest),
        "set-leader" => cmd_set_leader(rest),
        "attach-resource" => cmd_attach_resource(rest),
        "status" => cmd_status(rest),
        "log" => cmd_log(rest),
        "secret-reveal" => cmd_secret_reveal(rest),
        "deploy" => one_unit(rest)?.map_or(Ok(0), |d| lifecycle::deploy(&d)),
        "integrate" => {
            let p = parsed!(&[opt("remote-address", None)], rest, 4, None);
            let dir = existing_unit(&p.args[0])?;
            lifecycle::integrate(
                &dir,
                &p.args[1],
                &p.args[2],
                &p.args[3],
                &p.args[4..],
                p.get("remote-address"),
            )
        }
        "depart" => {
            let p = parsed!(&[], rest, 2, Some(2));
            let dir = existing_unit(&p.args[0])?;
            lifecycle::depart(&dir, &p.args[1])
        }
        "teardown" => one_unit(rest)?.map_or(Ok(0), |d| lifecycle::teardown(&d)),
        "upgrade" => one_unit(rest)?.map_or(Ok(0), |d| lifecycle::upgrade(&d)),
        "machine-up" => cmd_machine_up(rest),
        "machine-boot" => one_dir(rest)?.map_or(Ok(0), |d| boot::machine_boot(&d)),
        "machine-exec" => cmd_machine_exec(rest),
        "machine-path" => {
            let p = parsed!(&[], rest, 2, Some(2));
            machine::machine_path(&unit_dir(&p.args[0])?, &p.args[1])
        }
        "machine-reboot" => one_dir(rest)?.map_or(Ok(0), |d| machine::machine_reboot(&d)),
        "machine-down" => one_dir(rest)?.map_or(Ok(0), |d| machine::machine_down(&d)),
        "net-up" => {
            let p = parsed!(&[opt("subnet", None)], rest, 1, Some(1));
            net::net_up(
                &unit_dir(&p.args[0])?,
                p.get("subnet").unwrap_or(net::DEFAULT_SUBNET),
            )
        }
        "net-hold" => {
            let p = parsed!(&[], rest, 2, Some(2));
            net::net_hold(&unit_dir(&p.args[0])?, &p.args[1])
        }
        "net-exec" => cmd_net_exec(rest),
        "net-down" => one_dir(rest)?.map_or(Ok(0), |d| net::net_down(&d)),
        "deploy-charm" => cmd_deploy_charm(rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}{}", crate::model::cli::USAGE);
            Ok(0)
        }
        other => Err(CmdError::usage(format!(
            "unknown command {} (see `jujusim help`)",
            q(other)
        ))),
    }
}

/// Run the driver; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        return 2;
    };
    match dispatch(cmd, &args[1..]) {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}
