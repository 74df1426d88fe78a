//! The workload of a benchmark when it is not an existing function: `--standalone` (a
//! private `hearth serve` on temporary dirs, torn down afterwards) and temporary functions
//! (`--code DIR|ZIP`, or the built-in echo of `--runtime provided|python3.11|nodejs20.x`).
//!
//! The private daemon is this very binary (`std::env::current_exe`) with a configuration
//! file of its own (a generous `memory_budget_mb`, the account's full concurrency) and no
//! `HEARTH_*` variable of the caller's environment, in its own process group (a Ctrl-C on
//! the terminal reaches the benchmark, which stops the daemon in order). Teardown: SIGTERM
//! by pid, a bounded wait, SIGKILL by pid and `hearth gc` on its dirs if it did not stop;
//! then the dirs are removed. It runs from the guard's `Drop`, and from a signal thread on
//! SIGINT, SIGTERM or SIGHUP (exit 130) — whichever comes first; the other finds nothing
//! left to do.
//!
//! Built-in workloads: `provided` deploys a copy of the running `hearth` binary as the
//! `bootstrap` (see [`super::echo_runtime`]); `python3.11` and `nodejs20.x` a few-line
//! handler returning the event (sleeping `sleep_ms` first, for `density`). A temporary
//! function (built-in on an existing daemon, or `--code`) is deleted at the end.
//! `density` on a private daemon deploys a second function, the built-in `provided` echo
//! named [`OTHER_PREFIX`]`…` (128 MB unless `--memory`), as its other function: the
//! private daemon has no function but the run's own. It is deleted at the end too.
//!
//! Does not: survive a panic in a release build (`panic = "abort"` runs no `Drop`: the
//! daemon gets no SIGTERM and the dirs stay; `hearth gc` with `HEARTH_STATE_DIR` and
//! `HEARTH_RUN_DIR` pointing at them cleans up), or install language runtimes.
//! Limits: a zip of at most 50 MB (Lambda's quota, the daemon's too): the `hearth` copy is
//! stored uncompressed up to [`STORE_LIMIT`] and deflated (fast level) above.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::report::Workload;
use super::BenchError;
use crate::lambda_cli::http::{encode, send, Endpoint, Request};

/// How long the private daemon may take to start, and to stop after SIGTERM.
pub const START_STOP_BOUND: Duration = Duration::from_secs(60);
/// Largest `bootstrap` put in the zip uncompressed (a release `hearth`): deflating tens of
/// megabytes costs seconds, storing nothing; a debug build is larger and is deflated.
pub const STORE_LIMIT: u64 = 48 * 1024 * 1024;
/// Name prefix of `density`'s other function on a private daemon (the runtime follows).
pub const OTHER_PREFIX: &str = "bench-other-";
/// The role every function needs (the daemon does not check it).
const ROLE: &str = "arn:aws:iam::000000000000:role/hearth-bench";

const PYTHON_ECHO: &str = "import time\n\n\ndef handler(event, context):\n    if isinstance(event, dict) and isinstance(event.get(\"sleep_ms\"), int):\n        time.sleep(event[\"sleep_ms\"] / 1000)\n    return event\n";
const NODE_ECHO: &str = "export const handler = async (event) => {\n  const ms = event && typeof event.sleep_ms === \"number\" ? event.sleep_ms : 0;\n  if (ms) await new Promise((r) => setTimeout(r, ms));\n  return event;\n};\n";

fn standalone_err(detail: impl Into<String>) -> BenchError {
    BenchError::Standalone {
        detail: detail.into(),
    }
}

/// Work to do before the private daemon is stopped (`hearth bench peers`: its containers
/// and cgroups), on either path.
pub type BeforeTeardown = Box<dyn FnOnce() + Send>;

/// What must be undone for a private daemon; shared by the guard and the signal thread.
struct Teardown {
    pid: i32,
    dir: PathBuf,
    exe: PathBuf,
    before: Vec<BeforeTeardown>,
}

impl std::fmt::Debug for Teardown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teardown")
            .field("pid", &self.pid)
            .field("dir", &self.dir)
            .field("before", &self.before.len())
            .finish()
    }
}

impl Teardown {
    fn run(self) {
        for f in self.before {
            f();
        }
        let pid = Pid::from_raw(self.pid);
        let _ = kill(pid, Signal::SIGTERM);
        let started = Instant::now();
        let stopped = loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) if started.elapsed() < START_STOP_BOUND => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(WaitStatus::StillAlive) => break false,
                // Exited, signalled, or not our child any more (ECHILD): gone.
                _ => break true,
            }
        };
        if !stopped {
            eprintln!(
                "hearth: bench: the private daemon (pid {}) did not stop within {} s of SIGTERM; killing it",
                self.pid,
                START_STOP_BOUND.as_secs()
            );
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            // Its sandboxes outlive a SIGKILL: gc reclaims those of a dead owner.
            let _ = Command::new(&self.exe)
                .arg("gc")
                .env("HEARTH_STATE_DIR", self.dir.join("state"))
                .env("HEARTH_RUN_DIR", self.dir.join("run"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!(
                "hearth: bench: removing {}: {e} (remove it by hand)",
                self.dir.display()
            );
        }
    }
}

/// A private `hearth serve`; stopped and its dirs removed on drop.
#[derive(Debug)]
pub struct PrivateDaemon {
    pub pid: i32,
    pub dir: PathBuf,
    teardown: Arc<Mutex<Option<Teardown>>>,
}

impl PrivateDaemon {
    /// Starts the daemon and waits (bounded) for its socket.
    pub fn start() -> Result<PrivateDaemon, BenchError> {
        let exe = std::env::current_exe()
            .map_err(|e| standalone_err(format!("locating the hearth binary: {e}")))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("hearth-bench-{}-{nanos:09}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| standalone_err(format!("creating {}: {e}", dir.display())))?;
        // Every error path below removes the dir: by hand until the daemon is spawned, by
        // the guard's drop after.
        let teardown = Arc::new(Mutex::new(None::<Teardown>));
        let config = dir.join("hearth.toml");
        let log_path = dir.join("daemon.log");
        let prepared = std::fs::write(
            &config,
            "# hearth bench --standalone: a private daemon\nmemory_budget_mb = 400000\naccount_concurrency = 1000\n",
        )
        .and_then(|()| std::fs::File::create(&log_path))
        .and_then(|l| Ok((l.try_clone()?, l)));
        let (log_out, log_err) = match prepared {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(standalone_err(format!("writing {}: {e}", dir.display())));
            }
        };
        let mut cmd = Command::new(&exe);
        cmd.arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--run-dir")
            .arg(dir.join("run"))
            .stdin(Stdio::null())
            .stdout(log_out)
            .stderr(log_err)
            .process_group(0);
        // The configuration file is the daemon's only source of settings.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("HEARTH_") {
                cmd.env_remove(k);
            }
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(standalone_err(format!(
                    "starting {} serve: {e}",
                    exe.display()
                )));
            }
        };
        let pid = child.id() as i32;
        // Reaped by pid in the teardown; dropping the handle neither kills nor waits.
        drop(child);
        *teardown.lock().unwrap_or_else(|p| p.into_inner()) = Some(Teardown {
            pid,
            dir: dir.clone(),
            exe,
            before: Vec::new(),
        });
        let d = PrivateDaemon { pid, dir, teardown };
        let started = Instant::now();
        let socket = d.socket();
        loop {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                return Ok(d);
            }
            let exited = !matches!(
                waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::StillAlive)
            );
            if exited || started.elapsed() > START_STOP_BOUND {
                return Err(standalone_err(format!(
                    "the private daemon {}:\n{}",
                    if exited {
                        "exited at start-up"
                    } else {
                        "did not open its socket in time"
                    },
                    d.log_tail(20)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/hearth.sock")
    }

    /// Runs `f` first when the daemon is torn down, by the guard's drop or by the signal
    /// thread, whichever comes first (and only once).
    pub fn before_teardown(&self, f: BeforeTeardown) {
        let mut t = self.teardown.lock().unwrap_or_else(|p| p.into_inner());
        match t.as_mut() {
            Some(t) => t.before.push(f),
            // Already torn down: nothing left to protect, run it now.
            None => f(),
        }
    }

    /// The last `n` lines of the daemon's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Tears the daemon down on SIGINT, SIGTERM or SIGHUP too (then exits 130). Must be
    /// called before any other thread is started: the signals are blocked in the calling
    /// thread, and threads inherit that (the daemon does not: std clears the mask of
    /// children it spawns).
    pub fn teardown_on_signals(&self) -> Result<(), BenchError> {
        let mut mask = SigSet::empty();
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            mask.add(s);
        }
        mask.thread_block()
            .map_err(|e| standalone_err(format!("blocking signals: {e}")))?;
        let teardown = Arc::clone(&self.teardown);
        std::thread::Builder::new()
            .name("bench-signals".into())
            .spawn(move || {
                if let Ok(sig) = mask.wait() {
                    eprintln!("\nhearth: bench: {sig}: stopping the private daemon");
                    // The lock is held until the exit: the main thread, which sees the
                    // daemon go and heads for its own teardown, waits in the guard's drop
                    // instead of returning from main (which would end this thread with
                    // the dirs half removed).
                    let mut held = teardown.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(t) = held.take() {
                        t.run();
                    }
                    // Not a return from main: the other threads are blocked on the daemon
                    // that is gone; 128 + SIGINT, as a shell reports an interrupted command.
                    #[allow(clippy::exit)]
                    std::process::exit(130);
                }
            })
            .map(|_| ())
            .map_err(|e| standalone_err(format!("starting the signal thread: {e}")))
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        let t = self
            .teardown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = t {
            t.run();
        }
    }
}

/// A function made for the run; deleted on drop.
#[derive(Debug)]
pub struct TempFunction {
    pub socket: PathBuf,
    pub name: String,
}

impl Drop for TempFunction {
    fn drop(&mut self) {
        let r = send(
            &Endpoint::Unix(self.socket.clone()),
            &Request {
                method: "DELETE",
                path: format!("/2015-03-31/functions/{}", encode(&self.name)),
                ..Request::default()
            },
        );
        match r {
            Ok(resp) if resp.status == 204 || resp.status == 200 => {}
            Ok(resp) => eprintln!(
                "hearth: bench: deleting the temporary function {}: status {}",
                self.name, resp.status
            ),
            Err(e) => eprintln!(
                "hearth: bench: deleting the temporary function {}: {e}",
                self.name
            ),
        }
    }
}

/// The code of a function: `(file name, contents, mode)`.
pub type Files = Vec<(String, Vec<u8>, u32)>;

/// The built-in echo of `runtime`: (runtime to deploy, handler, files).
pub fn builtin(runtime: &str) -> Result<(String, String, Files), BenchError> {
    match runtime {
        "provided" | "provided.al2" | "provided.al2023" => {
            let exe = std::env::current_exe()
                .map_err(|e| standalone_err(format!("locating the hearth binary: {e}")))?;
            let bytes = std::fs::read(&exe)
                .map_err(|e| standalone_err(format!("reading {}: {e}", exe.display())))?;
            Ok((
                "provided.al2023".into(),
                "bootstrap".into(),
                vec![("bootstrap".into(), bytes, 0o755)],
            ))
        }
        "python3.11" | "python3.12" => Ok((
            runtime.into(),
            "app.handler".into(),
            vec![("app.py".into(), PYTHON_ECHO.as_bytes().to_vec(), 0o644)],
        )),
        "nodejs20.x" => Ok((
            runtime.into(),
            "index.handler".into(),
            vec![("index.mjs".into(), NODE_ECHO.as_bytes().to_vec(), 0o644)],
        )),
        other => Err(BenchError::Usage(format!(
            "--runtime {other:?} has no built-in workload (provided, python3.11, nodejs20.x); give --code DIR|ZIP"
        ))),
    }
}

/// The files under `dir`, recursively, with their modes (symbolic links followed).
pub fn dir_files(dir: &Path) -> Result<Files, BenchError> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    let err =
        |p: &Path, e: std::io::Error| BenchError::Usage(format!("--code {}: {e}", p.display()));
    while let Some(d) = todo.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .map_err(|e| err(&d, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(&d, e))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let meta = std::fs::metadata(&path).map_err(|e| err(&path, e))?;
            if meta.is_dir() {
                todo.push(path);
            } else if meta.is_file() {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                let bytes = std::fs::read(&path).map_err(|e| err(&path, e))?;
                out.push((rel, bytes, meta.permissions().mode() & 0o777));
            }
        }
    }
    Ok(out)
}

/// A zip of `files`: stored when small enough, else deflated at the fastest level.
pub fn zip_files(files: &Files) -> Result<Vec<u8>, String> {
    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod;
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes, mode) in files {
        let opts = if bytes.len() as u64 <= STORE_LIMIT {
            SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
        } else {
            SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .compression_level(Some(1))
        };
        z.start_file(name.as_str(), opts.unix_permissions(*mode))
            .map_err(|e| format!("zipping {name}: {e}"))?;
        z.write_all(bytes)
            .map_err(|e| format!("zipping {name}: {e}"))?;
    }
    z.finish()
        .map(|c| c.into_inner())
        .map_err(|e| format!("finishing the zip: {e}"))
}

/// What to deploy.
#[derive(Debug, Clone)]
pub struct Deploy {
    pub name: String,
    pub runtime: String,
    pub handler: String,
    pub memory_mb: u64,
    pub timeout_s: u64,
    pub zip: Vec<u8>,
}

/// CreateFunction of `d` on `socket`; the guard deletes it.
pub fn create(socket: &Path, d: &Deploy) -> Result<TempFunction, BenchError> {
    use base64::Engine;
    let body = serde_json::json!({
        "FunctionName": d.name,
        "Runtime": d.runtime,
        "Role": ROLE,
        "Handler": d.handler,
        "MemorySize": d.memory_mb,
        "Timeout": d.timeout_s,
        "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(&d.zip)},
    })
    .to_string();
    let resp = send(
        &Endpoint::Unix(socket.to_path_buf()),
        &Request {
            method: "POST",
            path: "/2015-03-31/functions".into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into_bytes(),
            ..Request::default()
        },
    )?;
    if resp.status != 201 {
        // By characters: a byte cut could split one (and panic).
        let text: String = String::from_utf8_lossy(&resp.body)
            .chars()
            .take(400)
            .collect();
        return Err(BenchError::Deploy {
            name: d.name.clone(),
            detail: format!("CreateFunction answered {}: {text}", resp.status),
        });
    }
    Ok(TempFunction {
        socket: socket.to_path_buf(),
        name: d.name.clone(),
    })
}

/// The workload options of a mode, as given.
#[derive(Debug, Clone, Default)]
pub struct WorkloadArgs {
    pub standalone: bool,
    pub code: Option<PathBuf>,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub memory: Option<u64>,
}

/// What the run needs to keep alive: the temporary functions (dropped first, deleted
/// while the daemon still answers), then the private daemon. Fields drop in this order.
#[derive(Debug, Default)]
pub struct Setup {
    pub function: Option<TempFunction>,
    /// `density`'s other function on a private daemon ([`plan_other`]).
    pub other: Option<TempFunction>,
    pub daemon: Option<PrivateDaemon>,
    pub workload: Option<Workload>,
}

/// The deployment `w` asks for (`None`: use `--function` as it is). `density` runs need a
/// long timeout (the handler sleeps) and little memory per instance.
pub fn plan(w: &WorkloadArgs, density: bool) -> Result<Option<Deploy>, BenchError> {
    if !w.standalone && w.code.is_none() {
        if w.runtime.is_some() || w.handler.is_some() || w.memory.is_some() {
            return Err(BenchError::Usage(
                "--runtime, --handler and --memory describe a temporary function: add --standalone or --code DIR|ZIP".into(),
            ));
        }
        return Ok(None);
    }
    let runtime = w.runtime.clone().unwrap_or_else(|| "provided".into());
    let (runtime, handler, files, code_name) = match &w.code {
        None => {
            let (r, h, f) = builtin(&runtime)?;
            (r, w.handler.clone().unwrap_or(h), f, "builtin".to_string())
        }
        Some(path) => {
            let handler = match (&w.handler, runtime.starts_with("provided")) {
                (Some(h), _) => h.clone(),
                (None, true) => "bootstrap".into(),
                (None, false) => {
                    return Err(BenchError::Usage(format!(
                        "--code with --runtime {runtime} needs --handler (e.g. app.handler)"
                    )))
                }
            };
            let files = if path.is_dir() {
                dir_files(path)?
            } else {
                Vec::new()
            };
            (runtime, handler, files, path.display().to_string())
        }
    };
    let zip = match &w.code {
        Some(p) if !p.is_dir() => std::fs::read(p)
            .map_err(|e| BenchError::Usage(format!("--code {}: {e}", p.display())))?,
        _ => zip_files(&files).map_err(|detail| BenchError::Deploy {
            name: code_name.clone(),
            detail,
        })?,
    };
    let name = if w.standalone && w.code.is_none() {
        format!("bench-echo-{}", runtime.replace('.', "-"))
    } else {
        format!("hearth-bench-{}", std::process::id())
    };
    Ok(Some(Deploy {
        name,
        runtime,
        handler,
        memory_mb: w.memory.unwrap_or(if density { 128 } else { 1769 }),
        timeout_s: if density { 900 } else { 60 },
        zip,
    }))
}

/// `density`'s other function on a private daemon: the built-in `provided` echo (its zip
/// taken from `main` when that is the same echo), [`OTHER_PREFIX`]`provided-al2023`, with
/// `--memory` or 128 MB. It is invoked with `{}` only: the default timeout.
pub fn plan_other(w: &WorkloadArgs, main: Option<&Deploy>) -> Result<Deploy, BenchError> {
    let (runtime, handler, zip) = match main {
        Some(m) if w.code.is_none() && m.runtime == "provided.al2023" => {
            (m.runtime.clone(), "bootstrap".to_string(), m.zip.clone())
        }
        _ => {
            let (r, h, files) = builtin("provided")?;
            let zip = zip_files(&files).map_err(|detail| BenchError::Deploy {
                name: "builtin".into(),
                detail,
            })?;
            (r, h, zip)
        }
    };
    Ok(Deploy {
        name: format!("{OTHER_PREFIX}{}", runtime.replace('.', "-")),
        runtime,
        handler,
        memory_mb: w.memory.unwrap_or(128),
        timeout_s: 60,
        zip,
    })
}

/// Adds the daemon's log tail to a deployment error on a private daemon.
fn with_log(e: BenchError, daemon: Option<&PrivateDaemon>) -> BenchError {
    match (e, daemon) {
        (BenchError::Deploy { name, detail }, Some(d)) => BenchError::Deploy {
            name,
            detail: format!("{detail}\n--- daemon log ---\n{}", d.log_tail(20)),
        },
        (e, _) => e,
    }
}

/// Starts the private daemon (`--standalone`) and deploys what [`plan`] says, and with
/// `other` [`plan_other`]'s function too; returns the guards and the socket to use. On an
/// error the guards made so far are dropped: what was deployed is deleted, the daemon
/// stopped.
pub fn prepare(
    w: &WorkloadArgs,
    density: bool,
    other: bool,
    socket: impl FnOnce() -> Result<PathBuf, BenchError>,
) -> Result<(Setup, PathBuf), BenchError> {
    let deploy = plan(w, density)?;
    let other = if other {
        Some(plan_other(w, deploy.as_ref())?)
    } else {
        None
    };
    let mut setup = Setup::default();
    let socket = if w.standalone {
        let d = PrivateDaemon::start()?;
        d.teardown_on_signals()?;
        let s = d.socket();
        setup.daemon = Some(d);
        s
    } else {
        socket()?
    };
    if let Some(d) = deploy {
        setup.workload = Some(Workload {
            standalone: w.standalone,
            code: w
                .code
                .as_ref()
                .map_or("builtin".to_string(), |p| p.display().to_string()),
            runtime: d.runtime.clone(),
            handler: d.handler.clone(),
            memory_mb: d.memory_mb,
        });
        let created = create(&socket, &d).map_err(|e| with_log(e, setup.daemon.as_ref()))?;
        setup.function = Some(created);
    }
    if let Some(d) = other {
        let created = create(&socket, &d).map_err(|e| with_log(e, setup.daemon.as_ref()))?;
        setup.other = Some(created);
    }
    Ok((setup, socket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_and_plans() {
        let (r, h, f) = builtin("python3.11").unwrap();
        assert_eq!(
            (r.as_str(), h.as_str(), f[0].0.as_str()),
            ("python3.11", "app.handler", "app.py")
        );
        let (r, h, f) = builtin("nodejs20.x").unwrap();
        assert_eq!(
            (r.as_str(), h.as_str(), f[0].0.as_str()),
            ("nodejs20.x", "index.handler", "index.mjs")
        );
        let (r, h, f) = builtin("provided").unwrap();
        assert_eq!((r.as_str(), h.as_str()), ("provided.al2023", "bootstrap"));
        assert_eq!((f[0].0.as_str(), f[0].2), ("bootstrap", 0o755));
        assert!(!f[0].1.is_empty());
        assert!(matches!(builtin("java21"), Err(BenchError::Usage(_))));

        assert!(plan(&WorkloadArgs::default(), false).unwrap().is_none());
        let lone = WorkloadArgs {
            runtime: Some("python3.11".into()),
            ..WorkloadArgs::default()
        };
        assert!(matches!(plan(&lone, false), Err(BenchError::Usage(_))));
        let p = plan(
            &WorkloadArgs {
                standalone: true,
                runtime: Some("nodejs20.x".into()),
                ..WorkloadArgs::default()
            },
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (p.name.as_str(), p.memory_mb, p.timeout_s),
            ("bench-echo-nodejs20-x", 128, 900)
        );
        let e = plan(
            &WorkloadArgs {
                code: Some(std::env::temp_dir()),
                runtime: Some("python3.11".into()),
                ..WorkloadArgs::default()
            },
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs --handler"), "{e}");

        // density's other function: the provided echo, its zip reused from the main one.
        let w = WorkloadArgs {
            standalone: true,
            ..WorkloadArgs::default()
        };
        let main = plan(&w, true).unwrap().unwrap();
        let o = plan_other(&w, Some(&main)).unwrap();
        assert_eq!(
            (o.name.as_str(), o.runtime.as_str(), o.memory_mb),
            ("bench-other-provided-al2023", "provided.al2023", 128)
        );
        assert!(o.name != main.name && o.zip == main.zip);
        let w = WorkloadArgs {
            standalone: true,
            runtime: Some("python3.11".into()),
            memory: Some(256),
            ..WorkloadArgs::default()
        };
        let o = plan_other(&w, plan(&w, true).unwrap().as_ref()).unwrap();
        assert_eq!(
            (o.runtime.as_str(), o.handler.as_str(), o.memory_mb),
            ("provided.al2023", "bootstrap", 256)
        );
    }

    #[test]
    fn code_dirs_zip_with_their_modes() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("app.py"), "x = 1\n").unwrap();
        std::fs::write(dir.path().join("lib/run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("lib/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let files = dir_files(dir.path()).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names, ["app.py", "lib/run.sh"]);
        let zip = zip_files(&files).unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        let mut f = z.by_name("lib/run.sh").unwrap();
        assert_eq!(f.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "#!/bin/sh\n");
    }
}
