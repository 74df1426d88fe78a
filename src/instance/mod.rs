//! Function instances: a sandbox running a function's bootstrap, serving it the Runtime
//! API, capturing its log stream, and turning what happens into Lambda outcomes.
//!
//! An [`Instance`] is one sandbox plus its Runtime API registration and log pipe. Its life
//! (runtime-api.md §6): *init* (the bootstrap starts; the first `GET /next` ends init, which
//! may take `InstanceConfig::init_limit`, Lambda's 10 s by default; Init Duration is measured) → *invoke* (the event is handed to
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

pub mod local;
pub mod logs;
pub mod pooled;

pub use local::{invoke_cold, LocalInstance};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use mio::unix::SourceFd;
use mio::{Interest, Token};

use crate::function::env::{self, EnvSpec};
use crate::function::runtime::{self, Runtime};
use crate::runtime_api::{InstanceId, Invocation, RuntimeApiServer, RuntimeEvent};
use crate::sandbox::mounts::RootSource;
use crate::sandbox::plan::SandboxSpec;
use crate::sandbox::{Failure, Sandbox, SandboxError, SandboxHost};

use self::logs::{LogStream, Report, WriteDebug};

/// How long the init phase may take by default (Lambda's limit for on-demand functions).
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
/// Function output read per [`Instance::read_logs`] call.
pub const LOG_READ_BUDGET: usize = 256 * 1024;

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
    /// How long init may take ([`INIT_LIMIT`] unless an operator with a slow host says
    /// otherwise).
    pub init_limit: Duration,
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
    /// `AWS_LAMBDA_INITIALIZATION_TYPE`: on-demand, or provisioned-concurrency for an
    /// instance the pool starts ahead of demand.
    pub initialization_type: crate::function::env::InitializationType,
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
    /// The invocation assigned to this instance, until its outcome is taken.
    current: Option<Current>,
    /// Init has exited (the instance is dead).
    exited: bool,
    /// `CLOCK_MONOTONIC` ns of the runtime's first `/next` and of the last hand-over of an
    /// event (0: not yet), for the phases of an invocation ([`Instance::phases`]).
    init_done_ns: u64,
    handover_ns: u64,
}

/// The invocation an instance is working on.
#[derive(Debug)]
struct Current {
    request_id: String,
    /// The event, until it is handed to the runtime.
    request: Option<InvokeRequest>,
    /// The first invocation of the instance (its REPORT carries Init Duration).
    cold: bool,
    /// When the event was handed over (`None`: still waiting for the first `/next`).
    started: Option<Instant>,
    /// Until the hand-over the init limit, then the function's timeout.
    deadline: Instant,
    /// The runtime has received the event (from a `/next`).
    delivered: bool,
    ended: Option<(Outcome, EndKind)>,
}

/// How an invocation ended, beyond its outcome: decides whether the instance lives on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndKind {
    pub timed_out: bool,
    pub exited: bool,
    pub init_error: bool,
    pub oversize: bool,
    /// The runtime died before it ever received the event: the invocation can run on
    /// a fresh instance instead (it has not started anywhere).
    pub undelivered: bool,
}

/// A finished invocation taken from an instance ([`Instance::take_ended`]).
#[derive(Debug)]
pub struct Ended {
    pub request_id: String,
    pub outcome: Outcome,
    pub kind: EndKind,
    pub cold: bool,
    /// Whether the event reached the runtime.
    pub handed_over: bool,
    /// Whether the runtime received it (so its START line is written).
    pub delivered: bool,
    pub duration: Duration,
}

impl Ended {
    /// An instance survives a response or a function error it posted; a timeout, an exit,
    /// an OOM kill, an init error or an oversize response ends it.
    pub fn instance_survives(&self) -> bool {
        let k = self.kind;
        !k.timed_out && !k.exited && !k.init_error && !k.oversize && self.handed_over
    }
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

/// The template of the blank sandboxes a daemon keeps ready
/// ([`crate::sandbox::blank::BlankPool`]): what every instance's sandbox shares — `/tmp`
/// of the default ephemeral storage (512 MB), the daemon's root, Hearth's managed runtimes
/// at `/var/runtime`, the Runtime API listeners — with a 128 MB placeholder memory limit.
/// A function with another `/tmp` size does not fit ([`fits_blank`]) and takes the spawn
/// path.
pub fn blank_template(root: RootSource, runtimes_dir: &Path) -> SandboxSpec {
    let mut spec = SandboxSpec::new(Vec::new());
    spec.memory_mb = *crate::sandbox::plan::MEMORY_MB.start();
    spec.tmp_mb = *crate::sandbox::plan::TMP_MB.start();
    spec.root = root;
    spec.runtime_dir = Some(runtimes_dir.to_path_buf());
    spec.runtime_api = true;
    spec
}

/// Whether an instance of `cfg` can start from a blank built from `template`
/// ([`Instance::start_from_blank`] refuses it otherwise).
pub fn fits_blank(cfg: &InstanceConfig, template: &SandboxSpec) -> bool {
    crate::sandbox::assign::BlankShape::of(template)
        .check(&base_spec(cfg, Vec::new(), true))
        .is_ok()
}

/// An instance's sandbox spec without its environment and stdio. On the blank path every
/// runtime gets `/var/runtime` (the blank has it), custom runtimes too: the files there
/// are Hearth's public runtime bootstraps, read-only.
fn base_spec(cfg: &InstanceConfig, argv: Vec<OsString>, blank: bool) -> SandboxSpec {
    let mut spec = SandboxSpec::new(argv);
    spec.memory_mb = cfg.memory_mb;
    spec.tmp_mb = cfg.tmp_mb;
    spec.code = Some(cfg.code_dir.clone());
    spec.root = cfg.root.clone();
    if blank || !cfg.runtime.is_custom() {
        spec.runtime_dir = Some(cfg.runtimes_dir.clone());
    }
    spec.runtime_api = true;
    spec.cpu_boost_mb = Some(INIT_CPU_MB);
    spec
}

/// What both ways of starting an instance prepare before its sandbox runs the bootstrap.
#[derive(Debug)]
struct Prepared {
    spec: SandboxSpec,
    logs: LogStream,
    log_r: OwnedFd,
    /// The write end of the log pipe and /dev/null, the command's stdio: the sandbox
    /// holds its own copies once created or assigned, then these are dropped.
    log_w: OwnedFd,
    null: std::fs::File,
}

impl Prepared {
    /// `None`: a custom runtime without a bootstrap.
    fn new(
        cfg: &InstanceConfig,
        echo: Option<Box<dyn WriteDebug>>,
        blank: bool,
    ) -> Result<Option<Prepared>, InstanceError> {
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
        env_spec.initialization_type = cfg.initialization_type;
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

        let mut spec = base_spec(cfg, argv, blank);
        spec.env = environment
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        spec.stdio = Some([null.as_raw_fd(), log_w.as_raw_fd(), log_w.as_raw_fd()]);
        Ok(Some(Prepared {
            spec,
            logs,
            log_r,
            log_w,
            null,
        }))
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
        let Some(prepared) = Prepared::new(cfg, echo, false)? else {
            return Ok(None);
        };
        let created = Instant::now();
        let sandbox = host.create(name, &prepared.spec)?;
        Self::started(
            host, sandbox, prepared, created, cfg, server, registry, tokens,
        )
    }

    /// [`Instance::start`] from a blank sandbox ([`crate::sandbox::blank::BlankPool`]),
    /// given `cfg` with [`SandboxHost::assign_blank`] — its listeners were made when the
    /// blank was. The sandbox keeps the blank's name. Init Duration counts from the
    /// assignment. The blank is used up either way: destroyed on `Ok(None)` (no
    /// bootstrap; check [`bootstrap_argv`] first to keep it) and on errors, a refusal
    /// because `cfg` does not fit it included (check [`fits_blank`] first).
    #[allow(clippy::too_many_arguments)]
    pub fn start_from_blank(
        host: &SandboxHost,
        mut blank: Sandbox,
        cfg: &InstanceConfig,
        server: &mut RuntimeApiServer,
        registry: &mio::Registry,
        tokens: [Token; 3],
        echo: Option<Box<dyn WriteDebug>>,
    ) -> Result<Option<Instance>, InstanceError> {
        let prepared = match Prepared::new(cfg, echo, true) {
            Ok(Some(p)) => p,
            other => {
                let _ = host.destroy(blank);
                return other.map(|_| None);
            }
        };
        let created = Instant::now();
        if let Err(e) = host.assign_blank(&mut blank, &prepared.spec) {
            let _ = host.destroy(blank);
            return Err(e.into());
        }
        Self::started(
            host, blank, prepared, created, cfg, server, registry, tokens,
        )
    }

    /// The part of starting an instance after its sandbox runs the bootstrap: listeners,
    /// registrations. On failure the sandbox is destroyed.
    #[allow(clippy::too_many_arguments)]
    fn started(
        host: &SandboxHost,
        mut sandbox: Sandbox,
        prepared: Prepared,
        created: Instant,
        cfg: &InstanceConfig,
        server: &mut RuntimeApiServer,
        registry: &mio::Registry,
        tokens: [Token; 3],
    ) -> Result<Option<Instance>, InstanceError> {
        let Prepared {
            logs,
            log_r,
            log_w,
            null,
            ..
        } = prepared;
        drop(log_w);
        drop(null);
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
            current: None,
            exited: false,
            init_done_ns: 0,
            handover_ns: 0,
        }))
    }

    /// Whether the instance can take an invocation (alive, none assigned).
    pub fn is_free(&self) -> bool {
        !self.exited && self.current.is_none()
    }

    /// Assigns an invocation. After init the event is handed over at once; during init at
    /// the runtime's first `/next` (a cold start, bounded by the init limit).
    pub fn assign(
        &mut self,
        server: &mut RuntimeApiServer,
        registry: &mio::Registry,
        cfg: &InstanceConfig,
        request_id: String,
        request: InvokeRequest,
    ) -> Result<(), InstanceError> {
        let cold = self.phase == Phase::Init;
        self.current = Some(Current {
            request_id,
            request: Some(request),
            cold,
            started: None,
            delivered: false,
            deadline: self.created + cfg.init_limit,
            ended: None,
        });
        // After init, the event goes to the server at once: it answers a parked `/next`,
        // or queues the event until the runtime comes back for it.
        if !cold {
            self.hand_over(server, registry, cfg)?;
        }
        Ok(())
    }

    fn hand_over(
        &mut self,
        server: &mut RuntimeApiServer,
        registry: &mio::Registry,
        cfg: &InstanceConfig,
    ) -> Result<(), InstanceError> {
        let Some(cur) = self.current.as_mut() else {
            return Ok(());
        };
        let Some(req) = cur.request.take() else {
            return Ok(());
        };
        // A runtime parked on `/next` gets the event at once; otherwise the server queues
        // it until the runtime comes back (see `on_runtime_event`, `Ready`).
        if self.phase == Phase::Idle {
            cur.delivered = true;
            self.logs.begin_invocation();
            self.logs
                .platform(&logs::start_line(&cur.request_id, &self.version));
        }
        self.phase = Phase::Invoking;
        let now = Instant::now();
        self.handover_ns = crate::sys::process::monotonic_ns();
        cur.started = Some(now);
        cur.deadline = now + cfg.timeout;
        let deadline_ms = SystemTime::now()
            .checked_add(cfg.timeout)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let invocation = Invocation {
            request_id: cur.request_id.clone(),
            deadline_ms,
            invoked_function_arn: req.invoked_arn.unwrap_or_else(|| cfg.function_arn()),
            trace_id: Some(trace_id()),
            client_context: req.client_context,
            cognito_identity: None,
            payload: req.payload,
        };
        server
            .invoke(registry, self.api, invocation)
            .map_err(|e| InstanceError::Setup(format!("handing over the event: {e}")))
    }

    /// When the assigned invocation must have ended (`None`: nothing pending).
    pub fn deadline(&self) -> Option<Instant> {
        self.current
            .as_ref()
            .filter(|c| c.ended.is_none())
            .map(|c| c.deadline)
    }

    fn end(&mut self, outcome: Outcome, kind: EndKind) {
        if let Some(cur) = self.current.as_mut() {
            if cur.ended.is_none() {
                cur.ended = Some((outcome, kind));
            }
        }
    }

    /// Kills the instance if its invocation is past its deadline.
    pub fn check_deadline(&mut self, now: Instant) {
        let Some(cur) = self.current.as_ref().filter(|c| c.ended.is_none()) else {
            return;
        };
        if now < cur.deadline {
            return;
        }
        let message = match cur.started {
            Some(_) => format!(
                "RequestId: {} Error: Task timed out after {:.2} seconds",
                cur.request_id,
                cur.deadline
                    .saturating_duration_since(cur.started.unwrap_or(cur.deadline))
                    .as_secs_f64()
            ),
            None => format!(
                "RequestId: {} Error: Runtime init timed out after {:.2} seconds",
                cur.request_id,
                cur.deadline
                    .saturating_duration_since(self.created)
                    .as_secs_f64()
            ),
        };
        self.sandbox.kill();
        self.end(
            platform_error("Sandbox.Timedout", &message),
            EndKind {
                timed_out: true,
                ..EndKind::default()
            },
        );
    }

    /// A Runtime API event of this instance.
    pub fn on_runtime_event(
        &mut self,
        server: &mut RuntimeApiServer,
        registry: &mio::Registry,
        host: &SandboxHost,
        cfg: &InstanceConfig,
        event: RuntimeEvent,
    ) -> Result<(), InstanceError> {
        match event {
            RuntimeEvent::Ready { .. } => {
                if self.phase == Phase::Init {
                    self.init_done_ns = crate::sys::process::monotonic_ns();
                    self.init_duration = Some(self.created.elapsed());
                    host.end_cpu_boost(&mut self.sandbox)?;
                }
                self.phase = Phase::Idle;
                let pending = self.current.as_ref().filter(|c| c.ended.is_none());
                let (waiting, queued) = match pending {
                    Some(c) => (c.request.is_some(), c.started.is_some() && !c.delivered),
                    None => (false, false),
                };
                if waiting {
                    self.hand_over(server, registry, cfg)?;
                } else if queued {
                    // The server answers this `/next` with the event it queued.
                    if let Some(cur) = self.current.as_mut() {
                        cur.delivered = true;
                        self.logs.begin_invocation();
                        self.logs
                            .platform(&logs::start_line(&cur.request_id, &self.version));
                    }
                    self.phase = Phase::Invoking;
                }
            }
            RuntimeEvent::Response {
                body, content_type, ..
            } => self.end(Outcome::Success { body, content_type }, EndKind::default()),
            RuntimeEvent::ResponseTooLarge { .. } => self.end(
                platform_error(
                    "Function.ResponseSizeTooLarge",
                    &format!(
                        "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
                    ),
                ),
                EndKind {
                    oversize: true,
                    ..EndKind::default()
                },
            ),
            RuntimeEvent::InvokeError {
                error_type, body, ..
            } => {
                let error_type = posted_error_type(error_type.as_deref(), &body);
                self.end(
                    Outcome::FunctionError {
                        payload: body,
                        error_type,
                    },
                    EndKind::default(),
                );
            }
            RuntimeEvent::InitError {
                error_type, body, ..
            } => {
                let error_type = posted_error_type(error_type.as_deref(), &body);
                self.end(
                    Outcome::FunctionError {
                        payload: body,
                        error_type,
                    },
                    EndKind {
                        init_error: true,
                        ..EndKind::default()
                    },
                );
            }
        }
        Ok(())
    }

    /// Once [`Instance::has_exited`] says init is gone — and after the caller has taken
    /// every Runtime API request the runtime sent before it exited (a runtime may post its
    /// response and exit at once) — fails the assigned invocation, if any, with the
    /// matching Lambda error: `Runtime.InvalidEntrypoint`, `Runtime.OutOfMemory`, or
    /// `Runtime.ExitError`.
    pub fn on_exit(&mut self, host: &SandboxHost) {
        let Some(request_id) = self
            .current
            .as_ref()
            .filter(|c| c.ended.is_none())
            .map(|c| c.request_id.clone())
        else {
            return;
        };
        let undelivered = self
            .current
            .as_ref()
            .is_some_and(|c| !c.delivered && !self.phase_is_init());
        let kind = EndKind {
            exited: true,
            undelivered,
            ..EndKind::default()
        };
        if let Some(Failure::Exec { .. }) = self.sandbox.failure {
            self.end(
                Outcome::FunctionError {
                    payload: runtime::invalid_entrypoint_payload(&request_id).into_bytes(),
                    error_type: Some(runtime::INVALID_ENTRYPOINT.to_string()),
                },
                kind,
            );
            return;
        }
        let oom = host
            .cgroups_stats(&self.sandbox)
            .is_some_and(|s| s.oom_kills > 0);
        let error_type = if oom {
            "Runtime.OutOfMemory"
        } else {
            "Runtime.ExitError"
        };
        let what = exit_description(self.sandbox.status);
        self.end(
            platform_error(
                error_type,
                &format!("RequestId: {request_id} Error: Runtime exited with error: {what}"),
            ),
            kind,
        );
    }

    /// The assigned invocation, once it has ended.
    pub fn take_ended(&mut self) -> Option<Ended> {
        self.current.as_ref()?.ended.as_ref()?;
        let cur = self.current.take()?;
        let (outcome, kind) = cur.ended?;
        Some(Ended {
            request_id: cur.request_id,
            outcome,
            kind,
            cold: cur.cold,
            handed_over: cur.started.is_some(),
            delivered: cur.delivered,
            duration: cur.started.map(|s| s.elapsed()).unwrap_or_default(),
        })
    }

    /// Writes END and REPORT (and the timeout line) for `ended` into `logs`.
    fn finish_lines(
        logs: &mut LogStream,
        ended: &Ended,
        cfg: &InstanceConfig,
        init_duration: Option<Duration>,
        max_memory_used_mb: Option<u64>,
    ) {
        let id = &ended.request_id;
        logs.platform(&logs::end_line(id));
        logs.platform(&logs::report_line(
            id,
            &Report {
                duration_ms: ended.duration.as_secs_f64() * 1000.0,
                memory_mb: cfg.memory_mb,
                max_memory_used_mb,
                init_duration_ms: init_duration.map(|d| d.as_secs_f64() * 1000.0),
                billed_cap_ms: ended
                    .kind
                    .timed_out
                    .then_some(cfg.timeout.as_millis() as u64),
            },
        ));
        if ended.kind.timed_out && ended.delivered {
            logs.platform(&format!(
                "{} {id} Task timed out after {:.2} seconds",
                env::iso8601_utc(SystemTime::now()),
                ended.duration.as_secs_f64()
            ));
        }
    }

    /// Completes an invocation after which the instance lives on: its output so far goes
    /// before END, then END and REPORT; the instance is idle again.
    pub fn complete(
        &mut self,
        host: &SandboxHost,
        cfg: &InstanceConfig,
        ended: Ended,
    ) -> InvokeResult {
        self.read_logs();
        let max_memory_used_mb = host
            .memory_peak(&self.sandbox)
            .map(|b| b.div_ceil(1024 * 1024));
        let init_duration = if ended.cold { self.init_duration } else { None };
        Self::finish_lines(
            &mut self.logs,
            &ended,
            cfg,
            init_duration,
            max_memory_used_mb,
        );
        InvokeResult {
            log_tail: self.logs.tail().to_vec(),
            log_stream: self.logs.path().to_owned(),
            request_id: ended.request_id,
            outcome: ended.outcome,
            init_duration,
            duration: ended.duration,
            max_memory_used_mb,
        }
    }

    /// Tears the instance down — the sandbox first, so its runtime never sees the API
    /// vanish — and drains its log pipe to the end. With `ended`, completes that
    /// invocation's log lines and returns its result.
    pub fn teardown(
        self,
        host: &SandboxHost,
        server: &mut RuntimeApiServer,
        registry: &mio::Registry,
        cfg: &InstanceConfig,
        ended: Option<Ended>,
    ) -> Result<Option<InvokeResult>, InstanceError> {
        let Instance {
            sandbox,
            api,
            log_pipe,
            mut logs,
            version,
            init_duration,
            ..
        } = self;
        let _ = registry.deregister(&mut SourceFd(&log_pipe.as_raw_fd()));
        let _ = registry.deregister(&mut SourceFd(&sandbox.pidfd().as_raw_fd()));
        let _ = registry.deregister(&mut SourceFd(&sandbox.channel().as_raw_fd()));
        let teardown = host.destroy(sandbox);
        server.remove_instance(registry, api);
        drain_to_end(log_pipe, &mut logs);
        logs.flush_partial();
        let result = ended.map(|ended| {
            let max_memory_used_mb = teardown
                .as_ref()
                .ok()
                .and_then(|t| t.stats.memory_peak_bytes)
                .map(|b| b.div_ceil(1024 * 1024));
            if !ended.delivered {
                // The invocation never started: Lambda still logs its platform lines.
                logs.begin_invocation();
                logs.platform(&logs::start_line(&ended.request_id, &version));
            }
            let init_duration = if ended.cold { init_duration } else { None };
            Self::finish_lines(&mut logs, &ended, cfg, init_duration, max_memory_used_mb);
            InvokeResult {
                log_tail: logs.tail().to_vec(),
                log_stream: logs.path().to_owned(),
                request_id: ended.request_id,
                outcome: ended.outcome,
                init_duration,
                duration: ended.duration,
                max_memory_used_mb,
            }
        });
        teardown?;
        Ok(result)
    }

    /// Reads what the function printed, without blocking, at most [`LOG_READ_BUDGET`]
    /// bytes per call so that a function flooding its output cannot hold the event loop
    /// (and its deadlines) up. Returns whether more may be waiting: the pipe is
    /// edge-triggered, so the caller must call again before waiting for events.
    pub fn read_logs(&mut self) -> bool {
        let mut buf = [0u8; 64 * 1024];
        let mut read = 0;
        while read < LOG_READ_BUDGET {
            match nix::unistd::read(self.log_pipe.as_raw_fd(), &mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    self.logs.feed(&buf[..n]);
                    read += n;
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
        true
    }

    fn phase_is_init(&self) -> bool {
        self.phase == Phase::Init
    }

    /// Whether init was seen to exit by the last [`Instance::has_exited`] (no system call).
    pub fn exited(&self) -> bool {
        self.exited
    }

    /// Whether init has exited (reads its pending reports first).
    pub fn has_exited(&mut self) -> bool {
        if !self.exited && self.sandbox.poll_reports() {
            self.exited = true;
        }
        self.exited
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

/// The `errorType` a runtime posted: the body's `errorType` (the only reliable place:
/// Python and Node send no header, Rust sends `unhandled`), else the header.
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
