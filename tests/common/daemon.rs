//! A private `hearth serve` for one test: temporary state and run dirs, a loopback TCP
//! listener with a test access key, an optional configuration file; raw HTTP/1.1 on its
//! Unix socket; `/metrics` gauges; and a leak check scoped to this daemon.
//!
//! The [`Daemon`] guard owns the process and its dirs: dropping it (also when a test
//! panics) sends SIGTERM by pid, waits (bounded), then SIGKILLs by pid; after a SIGKILL
//! it runs `hearth gc` on the daemon's dirs so that its sandboxes do not outlive it.
//!
//! Limits: one request per connection (`Connection: close`); answers are read whole,
//! with a read timeout of [`REQUEST_TIMEOUT`]. The leak check looks only at what this
//! daemon made (cgroups named after its pid, loop devices and mounts under its dirs): other
//! tests and other users of the host may run their own sandboxes at the same time.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key the daemon accepts on TCP.
pub const KEY_ID: &str = "AKIDHEARTHTEST";
/// Its secret.
pub const SECRET: &str = "hearth-test-secret";
/// How long one request may take to be answered (an invocation included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long start-up and shutdown may take (generous: CI also runs under emulation).
const START_STOP_BOUND: Duration = Duration::from_secs(60);

/// A running daemon, stopped and its dirs removed on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    pid: u32,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Daemon {
    /// A daemon with the default configuration.
    pub fn start() -> Daemon {
        Self::start_with(&[])
    }

    /// A daemon with extra `HEARTH_*` environment variables.
    pub fn start_with(env: &[(&str, &str)]) -> Daemon {
        Self::spawn(new_dir("hearth-test-daemon-"), None, env)
    }

    /// A daemon with `config` (TOML) as its configuration file.
    pub fn start_config(config: &str) -> Daemon {
        Self::spawn(new_dir("hearth-test-daemon-"), Some(config), &[])
    }

    /// A daemon on the state and run dirs of an earlier one (its dirs stay owned by the
    /// earlier guard).
    pub fn start_in(dir: &Path) -> Daemon {
        let shared = new_dir("hearth-test-daemon-again-");
        for sub in ["state", "run"] {
            std::os::unix::fs::symlink(dir.join(sub), shared.path().join(sub)).unwrap();
        }
        Self::spawn(shared, None, &[])
    }

    fn spawn(dir: tempfile::TempDir, config: Option<&str>, env: &[(&str, &str)]) -> Daemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
        let mut cmd = Command::new(super::hearth_bin());
        cmd.arg("serve");
        if let Some(text) = config {
            let path = dir.path().join("hearth.toml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        cmd.arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--run-dir")
            .arg(dir.path().join("run"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("HEARTH_ACCESS_KEY_ID", KEY_ID)
            .env("HEARTH_SECRET_ACCESS_KEY", SECRET)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().unwrap();
        let mut d = Daemon {
            pid: child.id(),
            child: Some(child),
            dir,
            port,
        };
        let started = Instant::now();
        while !d.socket().exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && started.elapsed() < START_STOP_BOUND,
                "daemon did not start ({exited:?}): {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/hearth.sock")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The daemon's stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// SIGTERM by pid, then waits (bounded) for the exit; SIGKILL by pid if it does not
    /// come. Returns the exit code (`None`: killed, or already stopped).
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if started.elapsed() > START_STOP_BOUND {
                let _ = child.kill();
                let _ = child.wait();
                self.gc();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL by pid, now, and reaps it (its sandboxes stay until a daemon or `hearth
    /// gc` on the same state reclaims them).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the daemon and asserts that it exited 0 and left nothing behind.
    pub fn stop_clean(&mut self) {
        let code = self.stop();
        assert_eq!(
            code,
            Some(0),
            "daemon exit\n--- daemon log ---\n{}",
            self.log()
        );
        let started = Instant::now();
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "left behind: {left:#?}\n--- daemon log ---\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What this daemon made and did not remove: sandbox cgroups named after its pid (in
    /// every hierarchy), loop devices and mounts under its dirs, scratch images.
    pub fn leftovers(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .cgroups()
            .into_iter()
            .map(|p| format!("cgroup {}", p.display()))
            .collect();
        let dir = self.dir.path().to_string_lossy().into_owned();
        // Symlinked dirs (`start_in`) resolve elsewhere: look at both spellings.
        let real = std::fs::canonicalize(self.state())
            .ok()
            .and_then(|p| p.parent().map(|p| p.to_string_lossy().into_owned()));
        let ours =
            |p: &str| p.starts_with(&dir) || real.as_deref().is_some_and(|r| p.starts_with(r));
        if let Ok(rd) = std::fs::read_dir("/sys/block") {
            for e in rd.flatten() {
                let backing =
                    std::fs::read_to_string(e.path().join("loop/backing_file")).unwrap_or_default();
                if ours(backing.trim()) {
                    out.push(format!(
                        "loop device {} -> {}",
                        e.file_name().to_string_lossy(),
                        backing.trim()
                    ));
                }
            }
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mountinfo.lines() {
            if let Some(target) = line.split(' ').nth(4) {
                if ours(target) {
                    out.push(format!("mount {target}"));
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.state().join("scratch")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                // Templates and the store's lock are infrastructure (as check-leaks.sh
                // says).
                if !name.starts_with("template-") && !name.starts_with('.') {
                    out.push(format!("scratch file {name}"));
                }
            }
        }
        out
    }

    /// The sandbox cgroups (every hierarchy) this daemon made that still exist: their
    /// names are `<kind>-<daemon pid>-<start time>[-<n>]`.
    pub fn cgroups(&self) -> Vec<PathBuf> {
        let pid = self.pid.to_string();
        super::sandbox_cgroups()
            .into_iter()
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.split('-').nth(1) == Some(pid.as_str())
            })
            .collect()
    }

    /// After a SIGKILL of the daemon: `hearth gc` on its dirs removes its sandboxes (their
    /// owner is dead).
    fn gc(&self) {
        let _ = Command::new(super::hearth_bin())
            .arg("gc")
            .env("HEARTH_STATE_DIR", self.state())
            .env("HEARTH_RUN_DIR", self.dir.path().join("run"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// One request on the Unix socket.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http_request(&self.socket(), method, path, headers, body)
    }

    /// One request with a JSON body (or none); panics with the daemon log unless the
    /// status is `want`. Returns the body as JSON (`Null` when empty).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        want: u16,
    ) -> serde_json::Value {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let r = self.request(method, path, &[], &bytes);
        assert_eq!(
            r.status,
            want,
            "{method} {path}: {}\n--- daemon log ---\n{}",
            r.text(),
            self.log()
        );
        if r.body.is_empty() {
            serde_json::Value::Null
        } else {
            r.json()
        }
    }

    /// Invokes `function` (a name, optionally `name:qualifier`) with `payload` and extra
    /// request headers.
    pub fn invoke(&self, function: &str, headers: &[(&str, &str)], payload: &[u8]) -> HttpResponse {
        self.request(
            "POST",
            &format!("/2015-03-31/functions/{function}/invocations"),
            headers,
            payload,
        )
    }

    /// `GET /metrics` as text.
    pub fn metrics(&self) -> String {
        self.request("GET", "/metrics", &[], b"").text()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn new_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {self:?} {}", self.text()))
    }

    /// The decoded `X-Amz-Log-Result` (the log tail), or "".
    pub fn log_tail(&self) -> String {
        use base64::Engine;
        self.header("X-Amz-Log-Result")
            .map(|b64| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap_or_else(|e| panic!("X-Amz-Log-Result is not base64 ({e}): {b64}"));
                String::from_utf8_lossy(&bytes).into_owned()
            })
            .unwrap_or_default()
    }

    /// The `REPORT` line of the log tail.
    pub fn report_line(&self) -> String {
        let tail = self.log_tail();
        tail.lines()
            .find(|l| l.starts_with("REPORT RequestId: "))
            .unwrap_or_else(|| panic!("no REPORT line in the log tail: {tail:?} ({self:?})"))
            .to_string()
    }
}

/// One HTTP/1.1 request on the Unix socket `sock` (`Connection: close`; the answer is read
/// whole and split; a chunked body is not supported, the daemon does not send one).
pub fn http_request(
    sock: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut s = UnixStream::connect(sock)
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", sock.display()));
    s.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: hearth\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{method} {path}: reading the answer: {e}"));
    parse_response(&out).unwrap_or_else(|| {
        panic!(
            "{method} {path}: not an HTTP answer: {:?}",
            String::from_utf8_lossy(&out)
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(HttpResponse {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

/// One request on the Unix socket; returns (status, body as text).
pub fn unix_request(sock: &Path, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let r = http_request(sock, method, path, &[], body);
    (r.status, r.text())
}

/// The sum of the `hearth_instances` gauges with label `state` = `state` in a `/metrics`
/// text (0 when there is none).
pub fn instances(metrics: &str, state: &str) -> u64 {
    let label = format!("state=\"{state}\"");
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, rest) = l.split_once('{')?;
            let (labels, value) = rest.split_once('}')?;
            let ours = name == "hearth_instances" && labels.split(',').any(|p| p == label);
            ours.then(|| value.trim().parse::<f64>().ok())?
        })
        .sum::<f64>() as u64
}

/// Live function instances in a `/metrics` text: every state but `blank`.
pub fn live_instances(metrics: &str) -> u64 {
    ["busy", "idle_frozen", "idle", "initialising"]
        .iter()
        .map(|s| instances(metrics, s))
        .sum()
}

/// Polls `cond` every 100 ms until it holds; panics with `what()` after `bound`.
pub fn wait_for(bound: Duration, mut cond: impl FnMut() -> bool, what: impl Fn() -> String) {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < bound,
            "waited {bound:?} for: {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
