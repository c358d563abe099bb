//! `egress-proxy`: an HTTPS (CONNECT-only) proxy listening inside a simulated unit's network
//! namespace and connecting out from the host's, to an allow-list of `host:port`s only.
//!
//! Simulated units have a loopback-only network, like a unit behind a firewall whose model
//! sets `juju-https-proxy`. The test harness starts this next to a unit so that the charm's
//! npm install reaches the npm registry through the proxy the charm is told about, exactly
//! as on a proxied Juju model. Test infrastructure: never packed into the charm.
//!
//! Usage: egress-proxy --netns-pid PID --listen 127.0.0.1:3128 --allow registry.npmjs.org:443[,…]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

fn main() {
    if let Err(e) = run() {
        eprintln!("egress-proxy: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| -> Result<String, String> {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
            .ok_or_else(|| format!("missing {flag}"))
    };
    let pid = value("--netns-pid")?;
    let listen = value("--listen")?;
    let allow: Vec<String> = value("--allow")?
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();

    // Bind inside the unit's network namespace, then come back: the listening socket stays
    // in the namespace it was created in, outgoing connections are made from the host's.
    let own = std::fs::File::open("/proc/thread-self/ns/net").map_err(|e| e.to_string())?;
    let unit = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|e| e.to_string())?;
    setns(&unit)?;
    let listener = TcpListener::bind(&listen);
    setns(&own)?;
    let listener = listener.map_err(|e| format!("bind {listen} in the unit: {e}"))?;
    println!("egress-proxy: listening on {listen} in the network namespace of pid {pid}");
    let _ = std::io::stdout().flush();

    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let allow = allow.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve(conn, &allow) {
                eprintln!("egress-proxy: {e}");
            }
        });
    }
    Ok(())
}

fn setns(ns: &std::fs::File) -> Result<(), String> {
    // SAFETY: setns on a namespace fd we own; affects only the calling thread.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(format!("setns: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

fn serve(client: TcpStream, allow: &[String]) -> Result<(), String> {
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(client.try_clone().map_err(|e| e.to_string())?);
    let mut request = String::new();
    reader.read_line(&mut request).map_err(|e| e.to_string())?;
    // Skip the rest of the request head.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 || line == "\r\n" {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut client_w = client.try_clone().map_err(|e| e.to_string())?;
    if method != "CONNECT" {
        let _ = client_w.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        return Err(format!(
            "refused {method} {target}: only CONNECT is proxied"
        ));
    }
    if !allow.iter().any(|a| a == target) {
        let _ = client_w.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        return Err(format!("refused CONNECT {target}: not on the allow-list"));
    }
    let upstream = TcpStream::connect(target).map_err(|e| {
        let _ = client_w.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        format!("connect {target}: {e}")
    })?;
    client_w
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .map_err(|e| e.to_string())?;
    client.set_read_timeout(None).map_err(|e| e.to_string())?;
    let mut up_r = upstream.try_clone().map_err(|e| e.to_string())?;
    let mut up_w = upstream;
    // Whatever the reader buffered past the head belongs to the tunnel (normally nothing).
    let buffered = reader.buffer().to_vec();
    up_w.write_all(&buffered).map_err(|e| e.to_string())?;
    let mut client_r = reader.into_inner();
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_r, &mut client_w);
        let _ = client_w.shutdown(Shutdown::Write);
    });
    let _ = copy_all(&mut client_r, &mut up_w);
    let _ = up_w.shutdown(Shutdown::Write);
    let _ = t.join();
    Ok(())
}

fn copy_all(from: &mut TcpStream, to: &mut TcpStream) -> std::io::Result<u64> {
    let mut buf = [0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}
