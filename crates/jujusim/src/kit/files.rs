//! Small things tests need around the simulator: files only their owner reads, random
//! passwords, percent-encoding, one HTTP request with curl through files, free host ports.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::Output;

/// A file only its owner can read (it holds keys or passwords), created empty.
pub fn private_file(path: &Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `n` random letters and digits (passwords a test hands out, as Charmed PostgreSQL does):
/// no look-alike characters (`l`, `I`, `O`, `0`, `1`).
pub fn random_alnum(n: usize) -> String {
    use std::io::Read;
    let mut bytes = vec![0u8; n * 2];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
        .iter()
        .map(|b| {
            b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"[(*b as usize) % 57] as char
        })
        .take(n)
        .collect()
}

/// Whether a TCP port on the host's loopback is free (a unit's loopback is separate).
pub fn host_port_free(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_err()
}

/// Percent-encodes everything but unreserved characters (a URI's user or password).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One HTTP request with curl, run by `exec` (inside a unit, or on the model network), its
/// headers and body passed through files in `dir` (mode 0600) so that keys never appear on a
/// command line. Returns `(status code, body)`; with no HTTP answer, 0 and curl's message.
pub fn curl_through_files(
    dir: &Path,
    exec: impl FnOnce(&[&str]) -> Output,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, String) {
    let hfile = dir.join("curl-headers");
    let mut f = private_file(&hfile);
    for (k, v) in headers {
        writeln!(f, "{k}: {v}").unwrap();
    }
    drop(f);
    let bfile = dir.join("curl-body");
    private_file(&bfile).write_all(body.unwrap_or(b"")).unwrap();
    let hf = format!("@{}", hfile.display());
    let bf = format!("@{}", bfile.display());
    let mut argv = vec![
        "curl",
        "-sS",
        "--max-time",
        "20",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        "-H",
        &hf,
    ];
    if body.is_some() {
        argv.extend_from_slice(&["--data-binary", &bf]);
    }
    argv.push(url);
    let out = exec(&argv);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    match code.trim().parse() {
        Ok(c) if c > 0 => (c, body.to_owned()),
        // No HTTP answer: say why (curl's own message) in place of a body.
        _ => (0, String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    fn tmp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("kit-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn random_passwords_are_alphanumeric_without_look_alikes() {
        let a = random_alnum(64);
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert!(!a.contains(['l', 'I', 'O', '0', '1']), "{a}");
        assert_ne!(a, random_alnum(64));
        assert_eq!(random_alnum(0), "");
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("aZ9-._~"), "aZ9-._~");
        assert_eq!(percent_encode("p@ss:w/rd %"), "p%40ss%3Aw%2Frd%20%25");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn private_files_are_0600_and_truncated() {
        let d = tmp("private");
        let p = d.join("key");
        private_file(&p).write_all(b"a long secret").unwrap();
        private_file(&p).write_all(b"short").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "short");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_port_someone_listens_on_is_not_free() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!host_port_free(port));
        drop(l);
        assert!(host_port_free(port));
    }

    #[test]
    fn curl_through_files_keeps_keys_off_the_command_line() {
        let d = tmp("curl");
        let mut seen = Vec::new();
        let answer = curl_through_files(
            &d,
            |argv| {
                seen = argv.iter().map(|a| a.to_string()).collect();
                Output {
                    status: ExitStatus::from_raw(0),
                    stdout: b"{\"ok\":1}\n201".to_vec(),
                    stderr: Vec::new(),
                }
            },
            "POST",
            "http://10.0.0.1/x",
            &[("X-Key", "s3cret")],
            Some(b"body-secret"),
        );
        assert_eq!(answer, (201, "{\"ok\":1}".to_owned()));
        let argv = seen.join(" ");
        assert!(
            !argv.contains("s3cret") && !argv.contains("body-secret"),
            "{argv}"
        );
        assert!(argv.contains("--data-binary @"), "{argv}");
        assert_eq!(seen.last().unwrap(), "http://10.0.0.1/x");
        assert_eq!(
            std::fs::read_to_string(d.join("curl-headers")).unwrap(),
            "X-Key: s3cret\n"
        );
        // No HTTP answer: status 0 and curl's own message.
        let answer = curl_through_files(
            &d,
            |_| Output {
                status: ExitStatus::from_raw(7 << 8),
                stdout: b"\n000".to_vec(),
                stderr: b"curl: (7) Failed to connect".to_vec(),
            },
            "GET",
            "http://10.0.0.1/",
            &[],
            None,
        );
        assert_eq!(answer, (0, "curl: (7) Failed to connect".to_owned()));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
