//! Function instances: a sandbox running a function's bootstrap, serving it the Runtime
//! API, capturing its log stream, and turning what happens into Lambda outcomes.
//!
//! An [`Instance`] is one sandbox plus its Runtime API registration and log pipe. Its life
//! (runtime-api.md §6): *init* (the bootstrap starts; the first `GET /next` ends init, which
//! may take [`INIT_LIMIT`]; Init Duration is measured) → *invoke* (the event is handed to
//! the parked `/next`; the function's timeout bounds the wait for `/response` or `/error`)
//! → idle again. Whatever ends an instance early — a timeout, an exit, an OOM kill, an init
//! error — is reported with the Lambda error of §6 and the instance is not used again.
//!
//! [`invoke_cold`] runs exactly one invocation in a fresh instance with a private mio loop
//! (`hearth invoke --local`). The daemon's warm pool (issue 5) drives the same
//! [`Instance`] from its own loop.
//!
//! Not done here: admission and concurrency (dispatch), keeping instances warm (pool),
//! response streaming to the caller, extensions.

pub mod logs;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::function::env::{self, EnvSpec};
use crate::function::runtime::{self, Runtime};
use crate::runtime_api::{InstanceId, Invocation, RuntimeApiServer, RuntimeEvent};
use crate::sandbox::mounts::RootSource;
use crate::sandbox::plan::SandboxSpec;
use crate::sandbox::{Failure, Sandbox, SandboxError, SandboxHost};

use self::logs::{LogStream, Report, WriteDebug};

/// How long the init phase may take (Lambda's limit for on-demand functions).
pub const INIT_LIMIT: Duration = Duration::from_secs(10);
/// The CPU share an instance gets during its init phase, as for a function of this many
/// MB (one full CPU): Lambda visibly runs init faster than a small function's share would
/// allow, and an interpreter starting at 7 % of a CPU (128 MB) takes ~1 s here. From the
/// first `/next` on, the function's own share applies.
pub const INIT_CPU_MB: u64 = crate::sandbox::cgroup::MB_PER_CPU;
/// Largest buffered response (runtime-api.md §2.2).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;
/// A log stream stops growing at this size.
pub const MAX_LOG_STREAM_BYTES: u64 = 64 * 1024 * 1024;

const LOG_TOKEN: Token = Token(1);
const PIDFD_TOKEN: Token = Token(2);
const CHANNEL_TOKEN: Token = Token(3);
/// The Runtime API server's tokens start here.
const SERVER_TOKENS: usize = 1 << 20;

/// What a function instance runs: the parts of a function's configuration a sandbox needs.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub function_name: String,
    /// `$LATEST` or a version number.
    pub version: String,
    pub runtime: Runtime,
    pub handler: String,
    pub memory_mb: u64,
    pub timeout: Duration,
    /// Size of `/tmp` in MB.
    pub tmp_mb: u64,
    /// The user's environment variables (already validated).
    pub env: BTreeMap<String, String>,
    /// The unpacked code, mounted read-only at `/var/task`.
    pub code_dir: PathBuf,
    pub root: RootSource,
    pub region: String,
    pub account_id: String,
    /// Where log groups live (`<state>/logs`).
    pub logs_dir: PathBuf,
    /// Hearth's managed runtime files, mounted at `/var/runtime` for managed runtimes.
    pub runtimes_dir: PathBuf,
}

impl InstanceConfig {
    /// `arn:aws:lambda:<region>:<account>:function:<name>`.
    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, self.function_name
        )
    }
}

/// One invocation's input.
#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    pub payload: Vec<u8>,
    /// Base64-decoded `X-Amz-Client-Context` (JSON text).
    pub client_context: Option<String>,
    /// The ARN as invoked (with a qualifier if any); default: the function's ARN.
    pub invoked_arn: Option<String>,
}

/// How an invocation ended, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The function's response (`/response`), with the runtime's content type.
    Success {
        body: Vec<u8>,
        content_type: Option<String>,
    },
    /// A function or runtime error: `payload` is the error JSON returned to the caller
    /// (`X-Amz-Function-Error: Unhandled`); `error_type` its `errorType`, if any.
    FunctionError {
        payload: Vec<u8>,
        error_type: Option<String>,
    },
}

/// Everything about one finished invocation.
#[derive(Debug, Clone)]
pub struct InvokeResult {
    pub request_id: String,
    pub outcome: Outcome,
    /// The last 4 KB of the invocation's log lines (START … REPORT).
    pub log_tail: Vec<u8>,
    /// Time from sandbox creation to the first `/next`, on a cold start.
    pub init_duration: Option<Duration>,
    /// Time from handing over the event to the result.
    pub duration: Duration,
    /// Peak memory of the instance in MB.
    pub max_memory_used_mb: Option<u64>,
    /// The log stream file.
    pub log_stream: PathBuf,
}

/// Failures of Hearth itself (not of the function: those are [`Outcome::FunctionError`]).
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Env(#[from] env::EnvError),
    #[error(transparent)]
    Logs(#[from] logs::LogsError),
    #[error("event loop: {0}")]
    Poll(io::Error),
    #[error("log pipe: {0}")]
    Pipe(nix::errno::Errno),
    #[error("registering the runtime API listeners: {0}")]
    Register(io::Error),
    #[error("sandbox set-up failed: {0}")]
    Setup(String),
}

/// The phase an instance is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Bootstrap started; waiting for the first `/next`.
    Init,
    /// Waiting on `/next` with nothing to do.
    Idle,
    /// The invocation is with the runtime.
    Invoking,
}

/// One function instance: its sandbox, Runtime API registration and log stream.
#[derive(Debug)]
pub struct Instance {
    pub sandbox: Sandbox,
    pub api: InstanceId,
    log_pipe: OwnedFd,
    pub logs: LogStream,
    phase: Phase,
    created: Instant,
    init_duration: Option<Duration>,
    version: String,
}

/// The bootstrap command of a runtime, or `None` when a custom runtime's code has none.
pub fn bootstrap_argv(runtime: Runtime, code_dir: &Path) -> Option<Vec<OsString>> {
    use std::os::unix::fs::PermissionsExt;
    match runtime {
        Runtime::Python311 | Runtime::Python312 => Some(vec![
            "/usr/bin/python3".into(),
            "/var/runtime/python/bootstrap.py".into(),
        ]),
        Runtime::Nodejs20 => Some(vec![
            "/usr/bin/node".into(),
            "/var/runtime/nodejs/bootstrap.mjs".into(),
        ]),
        Runtime::Provided | Runtime::ProvidedAl2 | Runtime::ProvidedAl2023 => {
            // /var/task/bootstrap, then /opt/bootstrap: no layers are mounted at /opt yet,
            // so only the first can exist. It must be an executable regular file.
            let host = code_dir.join("bootstrap");
            let meta = std::fs::metadata(&host).ok()?;
            (meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                .then(|| vec!["/var/task/bootstrap".into()])
        }
    }
}

impl Instance {
    /// Starts a fresh instance of `cfg`: its sandbox with the bootstrap running, the
    /// listeners registered with `server`, the log pipe and the sandbox's pidfd and
    /// channel registered with `registry` under the given tokens. `Ok(None)`: a custom
    /// runtime without a bootstrap (the caller reports `Runtime.InvalidEntrypoint`).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        host: &SandboxHost,
        name: &str,
        cfg: &InstanceConfig,
        server: &mut RuntimeApiServer,
        registry: &mio::Registry,
        tokens: [Token; 3],
        echo: Option<Box<dyn WriteDebug>>,
    ) -> Result<Option<Instance>, InstanceError> {
        let Some(argv) = bootstrap_argv(cfg.runtime, &cfg.code_dir) else {
            return Ok(None);
        };
        let memory_mb = u32::try_from(cfg.memory_mb).unwrap_or(u32::MAX);
        let mut env_spec = EnvSpec::new(
            &cfg.function_name,
            &cfg.version,
            memory_mb,
            &cfg.handler,
            cfg.runtime,
            &cfg.region,
        );
        env_spec.runtime_api_socket = Some(crate::sandbox::listen::RUNTIME_API_SOCKET.to_string());
        let environment = env::build(&env_spec, &cfg.env)?;
        let group_dir = cfg
            .logs_dir
            .join(env::log_group_name(&cfg.function_name).trim_start_matches('/'));
        let mut logs =
            LogStream::open(&group_dir, &env_spec.log_stream_name, MAX_LOG_STREAM_BYTES)?;
        if let Some(out) = echo {
            logs.echo_to(out);
        }

        let (log_r, log_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(InstanceError::Pipe)?;
        nix::fcntl::fcntl(
            log_r.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(InstanceError::Pipe)?;
        let null = std::fs::File::open("/dev/null")
            .map_err(|e| InstanceError::Setup(format!("opening /dev/null: {e}")))?;

        let mut spec = SandboxSpec::new(argv);
        spec.env = environment
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        spec.memory_mb = cfg.memory_mb;
        spec.tmp_mb = cfg.tmp_mb;
        spec.code = Some(cfg.code_dir.clone());
        spec.root = cfg.root.clone();
        if !cfg.runtime.is_custom() {
            spec.runtime_dir = Some(cfg.runtimes_dir.clone());
        }
        spec.runtime_api = true;
        spec.cpu_boost_mb = Some(INIT_CPU_MB);
        spec.stdio = Some([null.as_raw_fd(), log_w.as_raw_fd(), log_w.as_raw_fd()]);

        let created = Instant::now();
        let mut sandbox = host.create(name, &spec)?;
        drop(log_w);
        let Some(listeners) = sandbox.take_runtime_api() else {
            // Set-up failed before init made the listeners: report why.
            let _ = sandbox.wait(Some(Instant::now() + Duration::from_secs(5)), None);
            let why = match &sandbox.failure {
                Some(Failure::Setup { step, errno }) => format!("{step}: {errno}"),
                Some(Failure::Exec { errno, .. }) => format!("exec: {errno}"),
                None => "init exited before creating the runtime API listeners".to_string(),
            };
            let _ = host.destroy(sandbox);
            return Err(InstanceError::Setup(why));
        };
        let api = match server.add_instance(registry, listeners.tcp, Some(listeners.unix)) {
            Ok(id) => id,
            Err(e) => {
                let _ = host.destroy(sandbox);
                return Err(InstanceError::Register(e));
            }
        };
        let register = || -> io::Result<()> {
            registry.register(
                &mut SourceFd(&log_r.as_raw_fd()),
                tokens[0],
                Interest::READABLE,
            )?;
            registry.register(
                &mut SourceFd(&sandbox.pidfd().as_raw_fd()),
                tokens[1],
                Interest::READABLE,
            )?;
            registry.register(
                &mut SourceFd(&sandbox.channel().as_raw_fd()),
                tokens[2],
                Interest::READABLE,
            )
        };
        if let Err(e) = register() {
            server.remove_instance(registry, api);
            let _ = host.destroy(sandbox);
            return Err(InstanceError::Register(e));
        }
        Ok(Some(Instance {
            sandbox,
            api,
            log_pipe: log_r,
            logs,
            phase: Phase::Init,
            created,
            init_duration: None,
            version: cfg.version.clone(),
        }))
    }

    /// Reads whatever the function printed, without blocking; returns false at end of file.
    pub fn read_logs(&mut self) -> bool {
        let mut buf = [0u8; 64 * 1024];
        let mut file = std::fs::File::from(self.log_pipe.try_clone().expect("dup log pipe"));
        loop {
            match file.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => self.logs.feed(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }
}

/// A Lambda platform error payload: `{"errorType":…,"errorMessage":…}`.
fn platform_error(error_type: &str, message: &str) -> Outcome {
    let payload = serde_json::json!({ "errorType": error_type, "errorMessage": message });
    Outcome::FunctionError {
        payload: payload.to_string().into_bytes(),
        error_type: Some(error_type.to_string()),
    }
}

/// The `errorType` a runtime posted: the header if it has the `(Runtime|Function).X` form,
/// else the body's `errorType`.
fn posted_error_type(header: Option<&str>, body: &[u8]) -> Option<String> {
    let from_body = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errorType")?.as_str().map(str::to_owned));
    from_body.or_else(|| header.map(str::to_owned))
}

/// `exit status N` / `signal: killed` as Go's `os.ProcessState` prints them (Lambda's
/// wording).
fn exit_description(status: Option<i32>) -> String {
    match status {
        Some(s) if libc::WIFEXITED(s) => format!("exit status {}", libc::WEXITSTATUS(s)),
        Some(s) if libc::WIFSIGNALED(s) => {
            let sig = libc::WTERMSIG(s);
            let name = match sig {
                libc::SIGKILL => "killed".to_string(),
                libc::SIGSEGV => "segmentation fault".to_string(),
                libc::SIGABRT => "aborted".to_string(),
                libc::SIGTERM => "terminated".to_string(),
                libc::SIGBUS => "bus error".to_string(),
                other => format!("signal {other}"),
            };
            format!("signal: {name}")
        }
        _ => "signal: killed".to_string(),
    }
}

/// Runs one invocation of `cfg` in a fresh instance and tears it down. Function failures
/// are outcomes; only Hearth's own failures are errors.
pub fn invoke_cold(
    host: &SandboxHost,
    name: &str,
    cfg: &InstanceConfig,
    req: &InvokeRequest,
    echo_stderr: bool,
) -> Result<InvokeResult, InstanceError> {
    let mut local = LocalInstance::new(host, name, cfg, echo_stderr)?;
    let result = local.invoke(req);
    let finished = local.finish();
    let result = result?;
    finished?;
    Ok(result)
}

/// One function's instance driven by a private event loop, for `hearth invoke --local`
/// and benchmarks: invocations run one after another on the same (warm) instance; after
/// a failure that ends the instance the next invocation starts a fresh one (cold).
#[derive(Debug)]
pub struct LocalInstance<'h> {
    host: &'h SandboxHost,
    name: String,
    cfg: InstanceConfig,
    echo_stderr: bool,
    poll: Poll,
    server: RuntimeApiServer,
    events: Events,
    inst: Option<Instance>,
    /// Instances started so far (each gets its own sandbox name).
    started: u64,
}

impl<'h> LocalInstance<'h> {
    /// Prepares the loop; the first [`LocalInstance::invoke`] starts the instance.
    pub fn new(
        host: &'h SandboxHost,
        name: &str,
        cfg: &InstanceConfig,
        echo_stderr: bool,
    ) -> Result<Self, InstanceError> {
        Ok(Self {
            host,
            name: name.to_string(),
            cfg: cfg.clone(),
            echo_stderr,
            poll: Poll::new().map_err(InstanceError::Poll)?,
            server: RuntimeApiServer::new(SERVER_TOKENS),
            events: Events::with_capacity(64),
            inst: None,
            started: 0,
        })
    }

    /// Runs one invocation: on the live instance if there is one (warm), else on a new
    /// one (cold, with Init Duration).
    pub fn invoke(&mut self, req: &InvokeRequest) -> Result<InvokeResult, InstanceError> {
        let request_id = env::uuid_v4();
        if self.inst.is_none() {
            // Sandbox names must be unique per live sandbox; the first keeps the name the
            // caller registered with its cleanup keeper.
            let name = match self.started {
                0 => self.name.clone(),
                n => format!("{}-{n}", self.name),
            };
            self.started += 1;
            let echo: Option<Box<dyn WriteDebug>> = if self.echo_stderr {
                Some(Box::new(io::stderr()))
            } else {
                None
            };
            let started = Instance::start(
                self.host,
                &name,
                &self.cfg,
                &mut self.server,
                self.poll.registry(),
                [LOG_TOKEN, PIDFD_TOKEN, CHANNEL_TOKEN],
                echo,
            )?;
            match started {
                Some(i) => self.inst = Some(i),
                None => {
                    return Ok(InvokeResult {
                        outcome: Outcome::FunctionError {
                            payload: runtime::invalid_entrypoint_payload(&request_id).into_bytes(),
                            error_type: Some(runtime::INVALID_ENTRYPOINT.to_string()),
                        },
                        request_id,
                        log_tail: Vec::new(),
                        init_duration: None,
                        duration: Duration::ZERO,
                        max_memory_used_mb: None,
                        log_stream: PathBuf::new(),
                    })
                }
            }
        }
        let cfg = &self.cfg;
        let inst = self.inst.as_mut().expect("instance started above");
        let cold = inst.phase == Phase::Init;
        let mut out = Vec::new();
        let mut outcome: Option<Outcome> = None;
        let mut timed_out = false;
        let mut exited = false;
        let mut handed_over = false;
        let mut init_error = false;
        let mut invoke_start = Instant::now();
        let mut deadline = inst.created + INIT_LIMIT;
        let timeout_secs = cfg.timeout.as_secs_f64();

        let hand_over = |inst: &mut Instance,
                         server: &mut RuntimeApiServer,
                         registry: &mio::Registry|
         -> Result<Instant, InstanceError> {
            inst.phase = Phase::Invoking;
            inst.logs.begin_invocation();
            inst.logs
                .platform(&logs::start_line(&request_id, &inst.version));
            let start = Instant::now();
            let deadline_ms = SystemTime::now()
                .checked_add(cfg.timeout)
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let invocation = Invocation {
                request_id: request_id.clone(),
                deadline_ms,
                invoked_function_arn: req
                    .invoked_arn
                    .clone()
                    .unwrap_or_else(|| cfg.function_arn()),
                trace_id: Some(trace_id()),
                client_context: req.client_context.clone(),
                cognito_identity: None,
                payload: req.payload.clone(),
            };
            server
                .invoke(registry, inst.api, invocation)
                .map_err(|e| InstanceError::Setup(format!("handing over the event: {e}")))?;
            Ok(start)
        };
        if inst.phase == Phase::Idle {
            invoke_start = hand_over(inst, &mut self.server, self.poll.registry())?;
            handed_over = true;
            deadline = invoke_start + cfg.timeout;
        }

        while outcome.is_none() {
            let now = Instant::now();
            if now >= deadline {
                timed_out = true;
                inst.sandbox.kill();
                let message = if handed_over {
                    format!(
                        "RequestId: {request_id} Error: Task timed out after {timeout_secs:.2} seconds"
                    )
                } else {
                    format!(
                        "RequestId: {request_id} Error: Runtime init timed out after {:.2} seconds",
                        INIT_LIMIT.as_secs_f64()
                    )
                };
                outcome = Some(platform_error("Sandbox.Timedout", &message));
                break;
            }
            match self.poll.poll(&mut self.events, Some(deadline - now)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(InstanceError::Poll(e)),
            }
            for ev in self.events.iter() {
                match ev.token() {
                    LOG_TOKEN => {
                        inst.read_logs();
                    }
                    PIDFD_TOKEN | CHANNEL_TOKEN if inst.sandbox.poll_reports() => exited = true,
                    t if self.server.owns(t) => {
                        self.server.handle_event(self.poll.registry(), ev, &mut out)
                    }
                    _ => {}
                }
            }
            for e in out.drain(..) {
                match e {
                    RuntimeEvent::Ready { .. } if !handed_over => {
                        if inst.phase == Phase::Init {
                            inst.init_duration = Some(inst.created.elapsed());
                            self.host.end_cpu_boost(&mut inst.sandbox)?;
                        }
                        invoke_start = hand_over(inst, &mut self.server, self.poll.registry())?;
                        handed_over = true;
                        deadline = invoke_start + cfg.timeout;
                    }
                    RuntimeEvent::Ready { .. } => {}
                    RuntimeEvent::Response {
                        body, content_type, ..
                    } => outcome = Some(Outcome::Success { body, content_type }),
                    RuntimeEvent::ResponseTooLarge { .. } => {
                        outcome = Some(platform_error(
                            "Function.ResponseSizeTooLarge",
                            &format!(
                                "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
                            ),
                        ));
                    }
                    RuntimeEvent::InvokeError {
                        error_type, body, ..
                    } => {
                        let error_type = posted_error_type(error_type.as_deref(), &body);
                        outcome = Some(Outcome::FunctionError {
                            payload: body,
                            error_type,
                        });
                    }
                    RuntimeEvent::InitError {
                        error_type, body, ..
                    } => {
                        init_error = true;
                        let error_type = posted_error_type(error_type.as_deref(), &body);
                        outcome = Some(Outcome::FunctionError {
                            payload: body,
                            error_type,
                        });
                    }
                }
            }
            if outcome.is_none() && exited {
                // The runtime died before answering: OOM, exit, or an exec failure.
                let stats = self.host.cgroups_stats(&inst.sandbox);
                let what = exit_description(inst.sandbox.status);
                outcome = Some(if let Some(Failure::Exec { .. }) = inst.sandbox.failure {
                    Outcome::FunctionError {
                        payload: runtime::invalid_entrypoint_payload(&request_id).into_bytes(),
                        error_type: Some(runtime::INVALID_ENTRYPOINT.to_string()),
                    }
                } else {
                    let error_type = if stats.is_some_and(|s| s.oom_kills > 0) {
                        "Runtime.OutOfMemory"
                    } else {
                        "Runtime.ExitError"
                    };
                    platform_error(
                        error_type,
                        &format!(
                            "RequestId: {request_id} Error: Runtime exited with error: {what}"
                        ),
                    )
                });
            }
        }
        let duration = if handed_over {
            invoke_start.elapsed()
        } else {
            Duration::ZERO
        };
        let outcome = outcome.unwrap_or_else(|| platform_error("Runtime.Unknown", "no outcome"));
        // An instance survives a response or a function error it posted; a timeout, an
        // exit, an OOM kill, an init error or an oversize response ends it.
        let oversize = matches!(&outcome, Outcome::FunctionError { error_type: Some(t), .. }
            if t == "Function.ResponseSizeTooLarge");
        let survives = !timed_out && !exited && handed_over && !init_error && !oversize;
        let init_duration = if cold { inst.init_duration } else { None };
        let finish = |logs: &mut LogStream, max_memory_used_mb: Option<u64>| {
            logs.platform(&logs::end_line(&request_id));
            logs.platform(&logs::report_line(
                &request_id,
                &Report {
                    duration_ms: duration.as_secs_f64() * 1000.0,
                    memory_mb: cfg.memory_mb,
                    max_memory_used_mb,
                    init_duration_ms: init_duration.map(|d| d.as_secs_f64() * 1000.0),
                    billed_cap_ms: timed_out.then_some(cfg.timeout.as_millis() as u64),
                },
            ));
            if timed_out && handed_over {
                logs.platform(&format!(
                    "{} {request_id} Task timed out after {:.2} seconds",
                    env::iso8601_utc(SystemTime::now()),
                    duration.as_secs_f64()
                ));
            }
        };

        if survives {
            // Output written before the result is already in the pipe: it goes before END.
            inst.read_logs();
            inst.phase = Phase::Idle;
            let max_memory_used_mb = self
                .host
                .cgroups_stats(&inst.sandbox)
                .and_then(|s| s.memory_peak_bytes)
                .map(|b| b.div_ceil(1024 * 1024));
            finish(&mut inst.logs, max_memory_used_mb);
            return Ok(InvokeResult {
                request_id: request_id.clone(),
                outcome,
                log_tail: inst.logs.tail().to_vec(),
                init_duration,
                duration,
                max_memory_used_mb,
                log_stream: inst.logs.path().to_owned(),
            });
        }
        // The instance is done: tear it down first (the runtime never sees its API
        // vanish), then drain its pipe to the end (every writer is gone).
        let Instance {
            sandbox,
            api,
            log_pipe,
            mut logs,
            version,
            ..
        } = self.inst.take().expect("instance is live");
        let teardown = self.host.destroy(sandbox);
        self.server.remove_instance(self.poll.registry(), api);
        drain_to_end(log_pipe, &mut logs);
        let max_memory_used_mb = teardown
            .as_ref()
            .ok()
            .and_then(|t| t.stats.memory_peak_bytes)
            .map(|b| b.div_ceil(1024 * 1024));
        if !handed_over {
            // The invocation never started: Lambda still logs its platform lines.
            logs.begin_invocation();
            logs.platform(&logs::start_line(&request_id, &version));
        }
        finish(&mut logs, max_memory_used_mb);
        teardown?;
        Ok(InvokeResult {
            request_id: request_id.clone(),
            outcome,
            log_tail: logs.tail().to_vec(),
            init_duration,
            duration,
            max_memory_used_mb,
            log_stream: logs.path().to_owned(),
        })
    }

    /// Tears down the live instance, if any.
    pub fn finish(mut self) -> Result<(), InstanceError> {
        self.retire()
    }

    /// Tears down the live instance, if any, so that the next invocation is cold.
    pub fn retire(&mut self) -> Result<(), InstanceError> {
        if let Some(inst) = self.inst.take() {
            let Instance {
                sandbox,
                api,
                log_pipe,
                mut logs,
                ..
            } = inst;
            let teardown = self.host.destroy(sandbox);
            self.server.remove_instance(self.poll.registry(), api);
            drain_to_end(log_pipe, &mut logs);
            logs.flush_partial();
            teardown?;
        }
        Ok(())
    }
}

/// Reads a log pipe whose writers are all gone to its end, into `logs`.
fn drain_to_end(pipe: OwnedFd, logs: &mut LogStream) {
    let _ = nix::fcntl::fcntl(
        pipe.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    );
    let mut rest = Vec::new();
    let _ = std::fs::File::from(pipe).read_to_end(&mut rest);
    logs.feed(&rest);
}

/// An X-Ray trace header for one invocation (not sampled: Hearth has no X-Ray).
fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let hex = env::random_hex32();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &hex[..24],
        &hex[16..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_descriptions_use_lambdas_words() {
        assert_eq!(exit_description(Some(1 << 8)), "exit status 1");
        assert_eq!(exit_description(Some(libc::SIGKILL)), "signal: killed");
        assert_eq!(
            exit_description(Some(libc::SIGSEGV)),
            "signal: segmentation fault"
        );
        assert_eq!(exit_description(None), "signal: killed");
    }

    #[test]
    fn posted_error_types_prefer_the_body() {
        assert_eq!(
            posted_error_type(None, br#"{"errorType":"ValueError","errorMessage":"x"}"#),
            Some("ValueError".into())
        );
        assert_eq!(
            posted_error_type(Some("unhandled"), b"not json"),
            Some("unhandled".into())
        );
        assert_eq!(posted_error_type(None, b"[]"), None);
    }

    #[test]
    fn platform_errors_have_lambdas_shape() {
        let Outcome::FunctionError {
            payload,
            error_type,
        } = platform_error(
            "Sandbox.Timedout",
            "RequestId: x Error: Task timed out after 3.00 seconds",
        )
        else {
            panic!()
        };
        assert_eq!(error_type.as_deref(), Some("Sandbox.Timedout"));
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(v["errorType"], "Sandbox.Timedout");
        assert_eq!(
            v["errorMessage"],
            "RequestId: x Error: Task timed out after 3.00 seconds"
        );
    }

    #[test]
    fn trace_ids_have_the_x_ray_shape() {
        let t = trace_id();
        assert!(t.starts_with("Root=1-"), "{t}");
        let root = t.split(';').next().unwrap();
        assert_eq!(root.len(), "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700".len());
        assert!(t.ends_with(";Sampled=0"));
    }
}
