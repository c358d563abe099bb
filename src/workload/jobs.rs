//! Scheduled Cloud Code jobs. parse-server stores schedules in `_JobSchedule` but runs none
//! (parse-community/parse-server#6672): a systemd timer on the leader unit starts
//! `charm/node/job-scheduler.js` once a minute, as the service's user in the service's
//! sandbox, and it runs what is due (see that file for the fields' meaning and how a run
//! happens exactly once per due time). This module renders the two units, reads what the
//! scheduler last wrote, and starts one job now (the `run-job` action).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use super::paths::Paths;
use super::user::SERVICE_USER;

/// The timer that starts the scheduler every minute (enabled only on the leader).
pub const TIMER_UNIT: &str = "parse-server-jobs.timer";
/// The scheduler's one-shot service.
pub const SCHEDULER_UNIT: &str = "parse-server-jobs.service";

/// The idempotency paths and time the charm adds to parse-server's options: a scheduled run's
/// request id is stored (unique) for two days.
pub const IDEMPOTENCY_PATH: &str = "jobs/.*";
pub const IDEMPOTENCY_TTL_SECONDS: u64 = 2 * 24 * 60 * 60;

/// The scheduler's service and timer units for `node`.
pub fn render_units(node: &str) -> (String, String) {
    let service = format!(
        "# Managed by the parse-server Juju charm: local edits are overwritten.
[Unit]
Description=Parse Server scheduled jobs (runs those due in _JobSchedule)
Documentation=https://docs.parseplatform.org/cloudcode/guide/#cloud-jobs
After=parse-server.service
Requisite=parse-server.service

[Service]
Type=oneshot
User={user}
Group={user}
WorkingDirectory={state}
ExecStart={node} {script} {config} {record}
TimeoutStartSec=50
UMask=0077
CapabilityBoundingSet=
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={state}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectProc=invisible
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service @pkey
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
",
        user = SERVICE_USER,
        state = Paths::STATE_DIR,
        script = Paths::JOB_SCHEDULER,
        config = Paths::CONFIG_FILE,
        record = Paths::JOB_SCHEDULER_RECORD,
    );
    let timer = "# Managed by the parse-server Juju charm: local edits are overwritten.
[Unit]
Description=Run the Cloud Code jobs due in _JobSchedule, every minute

[Timer]
OnCalendar=*-*-* *:*:05
AccuracySec=1s

[Install]
WantedBy=timers.target
"
    .to_owned();
    (service, timer)
}

/// What the scheduler's last run could not do, for the status: the first schedule it
/// skipped (fields it cannot read) or whose job did not start, as `job schedule <id>: <why>`.
pub fn last_problem(paths: &Paths) -> Option<String> {
    let text = std::fs::read(paths.job_scheduler_record()).ok()?;
    let v: Value = serde_json::from_slice(&text).ok()?;
    ["skipped", "failed"].iter().find_map(|k| {
        let (id, why) = v.get(k)?.as_object()?.iter().next()?;
        let what = if id == "*" {
            "jobs".to_owned()
        } else {
            format!("job schedule {}", crate::text::quote(id, 20))
        };
        Some(format!(
            "{what}: {}",
            crate::text::one_line(why.as_str().unwrap_or("?"), 60)
        ))
    })
}

/// What `run-job` needs of the option file that serves.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub port: u16,
    pub mount_path: String,
    pub app_id: String,
    pub master_key: String,
}

impl Endpoint {
    /// From parse-server's option file (root reads it).
    pub fn from_options(config_json: &str) -> Option<Endpoint> {
        let v: Value = serde_json::from_str(config_json).ok()?;
        Some(Endpoint {
            port: u16::try_from(v.get("port")?.as_u64()?).ok()?,
            mount_path: v.get("mountPath")?.as_str()?.to_owned(),
            app_id: v.get("appId")?.as_str()?.to_owned(),
            master_key: v.get("masterKey")?.as_str()?.to_owned(),
        })
    }
}

/// `POST <mount>/jobs/<name>` on the unit's loopback with the master key: the job's
/// `_JobStatus` id, or why it did not start (parse-server's error, never the key).
pub fn run_now(e: &Endpoint, name: &str, params: &Value) -> Result<String, String> {
    let body = params.to_string();
    let path = format!(
        "{}/jobs/{}",
        e.mount_path.trim_end_matches('/'),
        crate::uri::percent_encode(name, b"")
    );
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         X-Parse-Application-Id: {}\r\nX-Parse-Master-Key: {}\r\nContent-Length: {}\r\n\r\n{body}",
        header_value(&e.app_id)?,
        header_value(&e.master_key)?,
        body.len()
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], e.port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|err| format!("parse-server does not answer on port {} ({err})", e.port))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    s.write_all(request.as_bytes())
        .map_err(|err| err.to_string())?;
    let mut raw = Vec::new();
    s.take(256 * 1024)
        .read_to_end(&mut raw)
        .map_err(|err| err.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    let status_id = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("x-parse-job-status-id")
            .then(|| v.trim().to_owned())
    });
    match (code, status_id) {
        ("200", Some(id)) => Ok(id),
        _ => {
            let why = serde_json::from_str::<Value>(payload.trim())
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| payload.chars().take(80).collect());
            Err(format!(
                "parse-server answered {code}: {}",
                crate::text::one_line(&why, 100)
            ))
        }
    }
}

/// A value that can stand in an HTTP header as it is.
fn header_value(v: &str) -> Result<&str, String> {
    if v.chars().all(|c| (' '..='~').contains(&c)) {
        Ok(v)
    } else {
        Err("the application ID or master key cannot be sent in a header".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_run_the_scheduler_as_the_service_user_every_minute() {
        let (service, timer) = render_units("/opt/parse-server/node/bin/node");
        assert!(service.contains("\nUser=parse-server\n"));
        assert!(service.contains("\nType=oneshot\n"));
        assert!(service.contains("\nRequisite=parse-server.service\n"));
        assert!(service.contains(
            "\nExecStart=/opt/parse-server/node/bin/node /opt/parse-server/charm/job-scheduler.js /etc/parse-server/config.json /var/lib/parse-server/job-scheduler.json\n"
        ));
        assert!(timer.contains("\nOnCalendar=*-*-* *:*:05\n"));
        assert!(timer.contains("\nWantedBy=timers.target\n"));
    }

    #[test]
    fn the_scheduler_s_problems_are_named_short() {
        let root = std::env::temp_dir().join(format!("psc-jobs-{}", std::process::id()));
        let paths = Paths::new(&root);
        std::fs::create_dir_all(paths.state_dir()).unwrap();
        assert_eq!(last_problem(&paths), None);
        std::fs::write(
            paths.job_scheduler_record(),
            r#"{"skipped":{"Ab12Cd34":"timeOfDay: not HH:MM:SS.sssZ"},"failed":{}}"#,
        )
        .unwrap();
        assert_eq!(
            last_problem(&paths).as_deref(),
            Some("job schedule \"Ab12Cd34\": timeOfDay: not HH:MM:SS.sssZ")
        );
        std::fs::write(
            paths.job_scheduler_record(),
            r#"{"skipped":{},"failed":{"*":"listing the schedules: HTTP 403"}}"#,
        )
        .unwrap();
        assert_eq!(
            last_problem(&paths).as_deref(),
            Some("jobs: listing the schedules: HTTP 403")
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn run_now_returns_the_job_status_id_or_parse_server_s_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for answer in [
                "HTTP/1.1 200 OK\r\nX-Parse-Job-Status-Id: JS1\r\n\r\n{}",
                "HTTP/1.1 400 Bad Request\r\n\r\n{\"code\":141,\"error\":\"Invalid job.\"}",
            ] {
                let (mut c, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let n = c.read(&mut buf).unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                c.write_all(answer.as_bytes()).unwrap();
            }
            seen
        });
        let e = Endpoint {
            port,
            mount_path: "/parse".into(),
            app_id: "shop".into(),
            master_key: "k".into(),
        };
        let params = serde_json::json!({"n": 1});
        assert_eq!(run_now(&e, "count orders", &params), Ok("JS1".into()));
        assert_eq!(
            run_now(&e, "nope", &params),
            Err("parse-server answered 400: Invalid job.".into())
        );
        let seen = t.join().unwrap();
        assert!(seen[0].starts_with("POST /parse/jobs/count%20orders HTTP/1.0\r\n"));
        assert!(seen[0].ends_with("\r\n\r\n{\"n\":1}"));
    }
}
