//! `hearth serve`: the root daemon. Start-up (configuration, the registry and its lock,
//! cgroup detection and seccomp compilation through `SandboxHost`, the listeners), the
//! one mio event loop, and shutdown.
//!
//! The loop holds every socket, pidfd and pipe: the control API's listeners and
//! connections (Unix socket without signature; TCP with SigV4), the Runtime API server,
//! and each function instance's log pipe, pidfd and init channel. Each has its own token
//! range ([`tokens`]). Control requests other than Invoke are answered at once (a
//! registry call); an Invoke is handed to an instance of the function's version — an idle
//! one, or a new one — and answered when the instance reports the outcome.
//!
//! The warm pool — which instance serves an invocation, freezing, expiry, eviction,
//! provisioned concurrency — is [`pool`]; the `/metrics` families are [`metrics`].
//!
//! Limits: a cold start by spawning runs on the loop (~4–5 ms of blocking work; blank
//! sandboxes are made on their own thread); asynchronous (`Event`) invocations are
//! accepted with 202 and run, but are not durable; at most [`MAX_CONNECTIONS`] control
//! connections; request bodies up to [`MAX_BODY`].

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

pub mod metrics;
pub mod pool;
pub mod spawner;

use self::metrics::{Metrics, StartKind};
use self::pool::{Claimed, ForcedStart, PoolState, Reaper};
use self::spawner::Spawner;
use crate::config::Config;
use crate::control::errors::ControlError;
use crate::control::routes::{self, Route};
use crate::control::sigv4;
use crate::http::parser::{RequestHead, RequestParser, Step};
use crate::instance::{Instance, InstanceConfig, InvokeRequest, Outcome};
use crate::registry::{Account, Registry};
use crate::runtime_api::RuntimeApiServer;
use crate::sandbox::blank::BlankPool;
use crate::sandbox::{HostPaths, RootSource, SandboxHost};

/// Control connections served at once; more are accepted and closed.
pub const MAX_CONNECTIONS: usize = 1024;
/// Largest control request body: a 50 MB zip in base64 inside JSON.
pub const MAX_BODY: usize = 75 * 1024 * 1024;
/// Largest synchronous Invoke payload (Lambda's 6 MB).
pub const MAX_INVOKE_PAYLOAD: usize = 6_291_456;
/// How long in-flight invocations may run on after SIGTERM.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Token ranges of the loop.
pub mod tokens {
    use mio::Token;
    pub const UNIX_LISTENER: Token = Token(0);
    pub const TCP_LISTENER: Token = Token(1);
    pub const SIGNALS: Token = Token(2);
    /// A spawner thread has created a sandbox.
    pub const SPAWNER: Token = Token(3);
    /// Control connections: `CONN_BASE + n`.
    pub const CONN_BASE: usize = 1 << 10;
    /// Instance slot `s`: `SLOT_BASE + 3 s + {0 log pipe, 1 pidfd, 2 init channel}`.
    pub const SLOT_BASE: usize = 1 << 24;
    /// The Runtime API server's range.
    pub const SERVER_BASE: usize = 1 << 40;
}

/// Start-up failures (each is reported and ends `hearth serve`).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

/// A client connection to the control API.
#[derive(Debug)]
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Unix(s) => s,
            Stream::Tcp(s) => s,
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
}

struct StreamReader<'a>(&'a mut Stream);
impl Read for StreamReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

#[derive(Debug)]
struct Conn {
    stream: Stream,
    tcp: bool,
    parser: RequestParser,
    head: Option<RequestHead>,
    too_large: bool,
    out: Vec<u8>,
    /// Waiting for an invocation's outcome: no further request is read.
    waiting: bool,
    close_after_write: bool,
    closed: bool,
}

/// What an instance is doing for whom (see [`pool`] for its life).
#[derive(Debug)]
struct Slot {
    inst: Instance,
    cfg: InstanceConfig,
    key: FnKey,
    /// The connection waiting for the current invocation (`None`: asynchronous).
    waiter: Option<Waiter>,
    busy: bool,
    /// Since when the instance has had nothing to do (freeze delay, idle timeout, LRU).
    idle_since: Instant,
    /// A freeze was requested and no thaw since.
    frozen: bool,
    /// The provisioned request (function, qualifier) this instance is kept for.
    provisioned_for: Option<(String, String)>,
    /// SIGTERM sent: killed at this instant unless it exits first.
    retiring: Option<Instant>,
    /// Started for one invocation (`X-Hearth-Start`): removed after it.
    single_use: bool,
    /// The function has reserved concurrency (counts against its own share only).
    reserved: bool,
    /// Its init duration is in the metrics.
    init_recorded: bool,
    /// The current invocation's start kind (for the answer's `X-Hearth-Start`).
    invocation: Option<StartKind>,
    /// Its function's code or configuration changed or was deleted: it takes no further
    /// invocations and retires once idle.
    stale: bool,
    /// An expiry timer is pending (at most one per slot).
    expiry_scheduled: bool,
    /// When the current invocation reached the daemon (`CLOCK_MONOTONIC` ns).
    received_ns: u64,
}

#[derive(Debug, Clone)]
struct Waiter {
    conn: usize,
    tail: bool,
}

/// An instance whose sandbox a spawner thread is creating.
#[derive(Debug)]
struct Starting {
    cfg: InstanceConfig,
    key: FnKey,
    reserved: bool,
    provisioned_for: Option<(String, String)>,
    single_use: bool,
    /// The invocation it was started for.
    queued: Option<Queued>,
}

/// An invocation waiting for its instance.
#[derive(Debug)]
struct Queued {
    /// When the request reached the daemon (`CLOCK_MONOTONIC` ns), for its phases.
    received_ns: u64,
    waiter: Option<Waiter>,
    request_id: String,
    request: InvokeRequest,
}

/// A function version's identity for reuse: name, version, and the revision (a changed
/// configuration or code never reaches an instance of the old one).
type FnKey = (String, String, String);

/// The running daemon.
#[derive(Debug)]
pub struct Daemon {
    cfg: Config,
    host: std::sync::Arc<SandboxHost>,
    registry: Registry,
    poll: Poll,
    unix: UnixListener,
    tcp: Option<TcpListener>,
    signals: SignalFd,
    conns: HashMap<usize, Conn>,
    next_conn: usize,
    server: RuntimeApiServer,
    slots: HashMap<usize, Slot>,
    /// The slot of each Runtime API instance (events arrive by instance id).
    by_api: HashMap<crate::runtime_api::InstanceId, usize>,
    /// Slots whose log pipe may hold more than one read budget (read again before the
    /// loop waits: the pipe is edge-triggered).
    logs_pending: std::collections::HashSet<usize>,
    next_slot: usize,
    socket_path: PathBuf,
    runtimes_dir: PathBuf,
    draining: Option<Instant>,
    keys: Vec<sigv4::Credentials>,
    metrics: Metrics,
    reaper: Reaper,
    /// Cold starts by spawning run on its threads; shut down after every instance.
    spawner: Spawner,
    /// Instances being created by the spawner, by slot.
    starting: HashMap<usize, Starting>,
    /// Slots with an invocation (deadlines, completions and admission look only here).
    busy: std::collections::HashSet<usize>,
    /// Slots by function version and revision (a warm claim looks only here).
    by_key: HashMap<FnKey, Vec<usize>>,
    /// Pre-warmed blank sandboxes (`blank_pool_size` > 0). Sandboxes made by its thread
    /// die with that thread (the parent-death signal follows the creating thread): it is
    /// shut down last.
    blanks: Option<BlankPool>,
    pool: PoolState,
    /// Sum of reserved concurrency over all functions (refreshed after the control
    /// operations that change it).
    reserved_total: u64,
}

impl Daemon {
    /// Opens everything `hearth serve` needs; refuses to start if another daemon holds
    /// the state directory.
    pub fn start(cfg: Config) -> Result<Daemon, DaemonError> {
        let account = Account {
            region: cfg.region.clone(),
            account_id: cfg.account_id.clone(),
        };
        let mut registry = Registry::open(&cfg.state_dir, account)?;
        // GetAccountSettings and the PutFunctionConcurrency check use the configured limit.
        registry.set_concurrency_limit(cfg.account_concurrency);
        let paths = HostPaths {
            state_dir: cfg.state_dir.clone(),
            run_dir: cfg.run_dir.clone(),
            cgroup_parent: cfg.cgroup_parent.clone(),
            ..HostPaths::from_env()
        };
        raise_nofile_limit();
        let host = std::sync::Arc::new(SandboxHost::open(&paths)?);
        host.sweep();
        let runtimes_dir = crate::function::managed::install(&cfg.state_dir.join("runtimes"))
            .map_err(|e| DaemonError::Io {
                what: e.to_string(),
                source: io::Error::other("install"),
            })?;

        // SIGTERM/SIGINT through a signalfd on the loop (drain, then exit).
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGTERM);
        mask.add(Signal::SIGINT);
        mask.thread_block()
            .map_err(|e| io_err("blocking signals")(io::Error::from(e)))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| io_err("signalfd")(io::Error::from(e)))?;

        let poll = Poll::new().map_err(io_err("creating the event loop"))?;
        std::fs::create_dir_all(&cfg.run_dir)
            .map_err(io_err(format!("creating {}", cfg.run_dir.display())))?;
        let socket_path = cfg.run_dir.join("hearth.sock");
        // The registry lock proves no other daemon uses this state: a socket file left
        // by a crashed one can go.
        let _ = std::fs::remove_file(&socket_path);
        let mut unix = UnixListener::bind(&socket_path)
            .map_err(io_err(format!("listening on {}", socket_path.display())))?;
        let mode = if cfg.socket_group.is_some() {
            0o660
        } else {
            0o600
        };
        std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(mode))
            .map_err(io_err(format!("chmod {}", socket_path.display())))?;
        if let Some(group) = &cfg.socket_group {
            let gid = nix::unistd::Group::from_name(group)
                .ok()
                .flatten()
                .ok_or_else(|| DaemonError::Io {
                    what: format!("socket_group {group:?}"),
                    source: io::Error::new(io::ErrorKind::NotFound, "no such group"),
                })?
                .gid;
            nix::unistd::chown(&socket_path, None, Some(gid))
                .map_err(|e| io_err(format!("chown {}", socket_path.display()))(e.into()))?;
        }
        poll.registry()
            .register(&mut unix, tokens::UNIX_LISTENER, Interest::READABLE)
            .map_err(io_err("registering the socket"))?;
        let tcp = match cfg.listen {
            None => None,
            Some(addr) => {
                let mut l =
                    TcpListener::bind(addr).map_err(io_err(format!("listening on {addr}")))?;
                poll.registry()
                    .register(&mut l, tokens::TCP_LISTENER, Interest::READABLE)
                    .map_err(io_err("registering the TCP listener"))?;
                Some(l)
            }
        };
        poll.registry()
            .register(
                &mut SourceFd(&signals.as_raw_fd()),
                tokens::SIGNALS,
                Interest::READABLE,
            )
            .map_err(io_err("registering the signalfd"))?;
        let keys = cfg
            .access_keys
            .iter()
            .map(|k| sigv4::Credentials {
                access_key_id: k.access_key_id.clone(),
                secret_access_key: k.secret_access_key.clone(),
            })
            .collect();
        let waker = mio::Waker::new(poll.registry(), tokens::SPAWNER)
            .map_err(io_err("creating the spawner's waker"))?;
        let spawner = Spawner::start(host.clone(), std::sync::Arc::new(waker));
        let blanks = (cfg.blank_pool_size > 0).then(|| {
            BlankPool::start(
                host.clone(),
                crate::instance::blank_template(RootSource::HostBinds, &runtimes_dir),
                cfg.blank_pool_size as usize,
                "blank",
            )
        });
        let mut daemon = Daemon {
            cfg,
            host: host.clone(),
            registry,
            poll,
            unix,
            tcp,
            signals,
            conns: HashMap::new(),
            next_conn: 0,
            server: RuntimeApiServer::new(tokens::SERVER_BASE),
            slots: HashMap::new(),
            by_api: HashMap::new(),
            logs_pending: std::collections::HashSet::new(),
            next_slot: 0,
            socket_path,
            runtimes_dir,
            draining: None,
            keys,
            metrics: Metrics::new(),
            reaper: Reaper::start(host.clone()),
            spawner,
            starting: HashMap::new(),
            busy: Default::default(),
            by_key: HashMap::new(),
            blanks,
            pool: PoolState {
                provisioned_dirty: true,
                ..PoolState::default()
            },
            reserved_total: 0,
        };
        daemon.refresh_reserved(None);
        Ok(daemon)
    }

    /// The control socket's path.
    pub fn socket_path(&self) -> &std::path::Path {
        &self.socket_path
    }

    /// Runs the loop until SIGTERM/SIGINT has drained it; then removes every instance.
    pub fn run(mut self) -> Result<(), DaemonError> {
        notify_ready();
        let mut events = Events::with_capacity(256);
        let mut rt_events = Vec::new();
        let mut next_tick: Option<Instant> = None;
        loop {
            if let Some(since) = self.draining {
                let busy = !self.busy.is_empty() || !self.starting.is_empty();
                if !busy || since.elapsed() >= DRAIN_DEADLINE {
                    break;
                }
            }
            let timeout = if self.logs_pending.is_empty() {
                self.busy
                    .iter()
                    .filter_map(|id| self.slots.get(id)?.inst.deadline())
                    .chain(next_tick)
                    .min()
                    .map(|d| d.saturating_duration_since(Instant::now()))
                    .map(|d| d.min(Duration::from_secs(1)))
                    .or(Some(Duration::from_secs(1)))
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("polling")(e)),
            }
            let mut exited_slots = Vec::new();
            for ev in events.iter() {
                let t = ev.token();
                match t {
                    tokens::UNIX_LISTENER => self.accept_unix(),
                    tokens::TCP_LISTENER => self.accept_tcp(),
                    tokens::SPAWNER => self.on_spawned(),
                    tokens::SIGNALS => {
                        while let Ok(Some(_)) = self.signals.read_signal() {
                            if self.draining.is_none() {
                                eprintln!("hearth serve: draining (SIGTERM/SIGINT)");
                                self.draining = Some(Instant::now());
                                let _ = self.poll.registry().deregister(&mut self.unix);
                                if let Some(tcp) = &mut self.tcp {
                                    let _ = self.poll.registry().deregister(tcp);
                                }
                            }
                        }
                    }
                    Token(n) if self.server.owns(t) => {
                        let _ = n;
                        self.server
                            .handle_event(self.poll.registry(), ev, &mut rt_events)
                    }
                    Token(n) if n >= tokens::SLOT_BASE => {
                        let slot = (n - tokens::SLOT_BASE) / 3;
                        match (n - tokens::SLOT_BASE) % 3 {
                            0 => {
                                self.logs_pending.insert(slot);
                            }
                            _ => exited_slots.push(slot),
                        }
                    }
                    Token(n) if n >= tokens::CONN_BASE => {
                        self.on_conn_event(n - tokens::CONN_BASE, ev.is_writable())
                    }
                    _ => {}
                }
            }
            // One read budget per slot and turn: a function flooding its output cannot
            // hold the loop, and its deadline still holds.
            let pending: Vec<usize> = self.logs_pending.drain().collect();
            for slot in pending {
                if let Some(s) = self.slots.get_mut(&slot) {
                    if s.inst.read_logs() {
                        self.logs_pending.insert(slot);
                    }
                }
            }
            for event in rt_events.drain(..) {
                let id = runtime_event_instance(&event);
                let Some(slot) = self.by_api.get(&id).copied() else {
                    continue;
                };
                let Some(s) = self.slots.get_mut(&slot) else {
                    continue;
                };
                if let Err(e) = s.inst.on_runtime_event(
                    &mut self.server,
                    self.poll.registry(),
                    &self.host,
                    &s.cfg,
                    event,
                ) {
                    eprintln!("hearth serve: instance of {}: {e}", s.cfg.function_name);
                }
                if !s.busy && s.inst.is_parked() && !s.frozen {
                    // An instance started ahead (provisioned) finished its init.
                    let at = s.idle_since + Duration::from_millis(self.cfg.freeze_delay_ms);
                    self.schedule(at, slot, pool::Timer::Freeze);
                }
            }
            for slot in exited_slots {
                self.on_instance_exit(slot);
            }
            let now = Instant::now();
            for id in &self.busy {
                if let Some(s) = self.slots.get_mut(id) {
                    s.inst.check_deadline(now);
                }
            }
            self.complete_invocations();
            next_tick = self.pool_tick(Instant::now());
        }
        self.shutdown();
        Ok(())
    }

    fn accept_unix(&mut self) {
        loop {
            match self.unix.accept() {
                Ok((s, _)) => self.add_conn(Stream::Unix(s), false),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return,
            }
        }
    }

    fn accept_tcp(&mut self) {
        loop {
            let Some(l) = &self.tcp else { return };
            match l.accept() {
                Ok((s, _)) => {
                    let _ = s.set_nodelay(true);
                    self.add_conn(Stream::Tcp(s), true)
                }
                Err(_) => return,
            }
        }
    }

    fn add_conn(&mut self, mut stream: Stream, tcp: bool) {
        if self.conns.len() >= MAX_CONNECTIONS {
            return;
        }
        let id = self.next_conn;
        self.next_conn += 1;
        let token = Token(tokens::CONN_BASE + id);
        if self
            .poll
            .registry()
            .register(
                stream.source(),
                token,
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            return;
        }
        self.conns.insert(
            id,
            Conn {
                stream,
                tcp,
                parser: RequestParser::new(),
                head: None,
                too_large: false,
                out: Vec::new(),
                waiting: false,
                close_after_write: false,
                closed: false,
            },
        );
        self.on_conn_event(id, false);
    }

    fn on_conn_event(&mut self, id: usize, _writable: bool) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        flush(conn);
        if conn.closed {
            self.drop_conn(id);
            return;
        }
        // Read while the parser wants input and no invocation is pending.
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            if conn.waiting || conn.close_after_write {
                break;
            }
            // Edge-triggered: the socket must be read until it would block, or no new
            // event comes for the bytes already waiting in it.
            let mut drained = false;
            if conn.parser.wants_input() {
                match conn.parser.read_from(&mut StreamReader(&mut conn.stream)) {
                    Ok(0) => {
                        conn.closed = true;
                        drained = true;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => drained = true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        conn.closed = true;
                        drained = true;
                    }
                }
            }
            let step = conn.parser.step();
            match step {
                Step::NeedMore => {
                    if conn.closed {
                        self.drop_conn(id);
                        return;
                    }
                    if drained {
                        break;
                    }
                }
                Step::Head(head) => {
                    if head.expect_continue {
                        conn.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    conn.parser.keep_body(MAX_BODY, head.content_length);
                    conn.head = Some(head);
                    conn.too_large = false;
                }
                Step::BodyTooLarge => conn.too_large = true,
                Step::Done { .. } => {
                    let head = conn.head.take();
                    let body = conn.parser.take_body();
                    let too_large = conn.too_large;
                    if let Some(head) = head {
                        if !head.keep_alive {
                            conn.close_after_write = true;
                        }
                        self.on_request(id, head, body, too_large);
                    }
                }
                Step::Error(e) => {
                    let err =
                        ControlError::InvalidRequestContent(format!("malformed HTTP request: {e}"));
                    conn.close_after_write = true;
                    write_error(conn, &err);
                    break;
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            flush(conn);
            // A `Connection: close` request is closed once its answer is out — not while
            // its invocation is still running.
            let answered = conn.close_after_write && conn.out.is_empty() && !conn.waiting;
            if conn.closed || answered {
                self.drop_conn(id);
            }
        }
    }

    fn drop_conn(&mut self, id: usize) {
        if let Some(mut conn) = self.conns.remove(&id) {
            let _ = self.poll.registry().deregister(conn.stream.source());
        }
        // The caller left; the invocation still runs to its end.
        for slot in &self.busy {
            if let Some(s) = self.slots.get_mut(slot) {
                if s.waiter.as_ref().is_some_and(|w| w.conn == id) {
                    s.waiter = None;
                }
            }
        }
        for st in self.starting.values_mut() {
            if let Some(q) = &mut st.queued {
                if q.waiter.as_ref().is_some_and(|w| w.conn == id) {
                    q.waiter = None;
                }
            }
        }
    }

    fn on_request(&mut self, id: usize, head: RequestHead, body: Vec<u8>, too_large: bool) {
        let (path, query) = head
            .target
            .split_once('?')
            .map(|(p, q)| (p.to_string(), q.to_string()))
            .unwrap_or((head.target.clone(), String::new()));
        let result = (|| -> Result<Option<Response>, ControlError> {
            if too_large {
                return Err(ControlError::RequestTooLarge(format!(
                    "Request must be smaller than {MAX_BODY} bytes"
                )));
            }
            let tcp = self.conns.get(&id).is_some_and(|c| c.tcp);
            if tcp {
                self.verify_signature(&head, &path, &query, &body)?;
            }
            let route = routes::route(&head.method, &path)?;
            let pairs = routes::parse_query(&query)?;
            match route {
                Route::Invoke(name) => self.invoke(id, &head, &name, &pairs, body),
                Route::Metrics => Ok(Some(self.metrics())),
                other => self.control(other, &pairs, &head, &body).map(Some),
            }
        })();
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        match result {
            Ok(Some(resp)) => write_response(conn, &resp),
            Ok(None) => conn.waiting = true,
            Err(e) => write_error(conn, &e),
        }
    }

    fn verify_signature(
        &self,
        head: &RequestHead,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Result<(), ControlError> {
        let headers: Vec<(String, String)> = head
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        let req = sigv4::SignedRequest {
            method: &head.method,
            path,
            query,
            headers: &headers,
            body,
        };
        sigv4::verify(&req, &self.keys, std::time::SystemTime::now())
            .map(|_| ())
            .map_err(|e| match e.aws_error_type() {
                "UnrecognizedClientException" => ControlError::UnrecognizedClient,
                "MissingAuthenticationTokenException" => {
                    ControlError::MissingAuthenticationToken(e.aws_message())
                }
                _ => ControlError::InvalidSignature(e.aws_message()),
            })
    }

    fn control(
        &mut self,
        route: Route,
        query: &[(String, String)],
        head: &RequestHead,
        body: &[u8],
    ) -> Result<Response, ControlError> {
        let req = crate::control::handlers::ControlRequest {
            route,
            query: query.to_vec(),
            headers: &head.headers,
            body,
        };
        let resp = crate::control::handlers::handle(&req, &mut self.registry)?;
        let mut resp = Response {
            status: resp.status,
            headers: resp.headers,
            body: resp.body,
        };
        if (200..300).contains(&resp.status) {
            self.after_control(&req.route, query, &mut resp);
        }
        Ok(resp)
    }

    /// What a successful control operation means for the pool: instances of old code or
    /// configuration retire, reservations and provisioned requests are re-read, and a
    /// provisioned-concurrency answer carries the pool's live status.
    fn after_control(&mut self, route: &Route, query: &[(String, String)], resp: &mut Response) {
        let account = self.registry.account().clone();
        let name_of = |raw: &str| {
            routes::function_ref(raw, &account.region, &account.account_id)
                .map(|r| r.name)
                .unwrap_or_else(|_| raw.to_string())
        };
        match route {
            Route::UpdateFunctionCode(f) | Route::UpdateFunctionConfiguration(f) => {
                let name = name_of(f);
                self.retire_stale(|k| k.0 == name && k.1 == crate::registry::LATEST);
            }
            Route::DeleteFunction(f) => {
                let name = name_of(f);
                self.retire_stale(|k| k.0 == name);
                self.refresh_reserved(Some(&name));
                match routes::query_value(query, "Qualifier") {
                    Some(version) => self.metrics.forget_version(&name, version),
                    None => self.metrics.forget_function(&name),
                }
            }
            Route::PutFunctionConcurrency(f) | Route::DeleteFunctionConcurrency(f) => {
                self.refresh_reserved(Some(&name_of(f)));
            }
            Route::PutProvisionedConcurrencyConfig(f)
            | Route::GetProvisionedConcurrencyConfig(f) => {
                let name = name_of(f);
                let qualifier = routes::query_value(query, "Qualifier").unwrap_or_default();
                if matches!(route, Route::PutProvisionedConcurrencyConfig(_)) {
                    self.pool.provisioned_dirty = true;
                    self.pool_tick(Instant::now());
                }
                if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&resp.body) {
                    let requested = v["RequestedProvisionedConcurrentExecutions"]
                        .as_u64()
                        .unwrap_or(0) as u32;
                    let st = self.provisioned_status(&name, qualifier, requested);
                    v["AvailableProvisionedConcurrentExecutions"] = st.available.into();
                    v["AllocatedProvisionedConcurrentExecutions"] = st.allocated.into();
                    v["Status"] = st.status.into();
                    if let Some(reason) = st.reason {
                        v["StatusReason"] = reason.into();
                    }
                    resp.body = v.to_string().into_bytes();
                }
            }
            _ => {}
        }
        if !matches!(
            route,
            Route::GetProvisionedConcurrencyConfig(_) | Route::PutProvisionedConcurrencyConfig(_)
        ) {
            // Aliases, versions and deletions can change what provisioned requests resolve to.
            self.pool.provisioned_dirty = true;
        }
    }

    /// Instances whose key matches no longer take invocations: idle ones retire now,
    /// busy ones when their invocation ends.
    fn retire_stale(&mut self, stale: impl Fn(&FnKey) -> bool) {
        let now = Instant::now();
        let ids: Vec<usize> = self
            .slots
            .iter()
            .filter(|(_, s)| stale(&s.key) && s.retiring.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let s = self.slots.get_mut(&id).expect("slot exists");
            s.stale = true;
            if !s.busy {
                self.begin_retire(id, now);
            }
        }
    }

    /// Starts an invocation; `Ok(None)`: answered later by [`Daemon::complete_invocations`].
    fn invoke(
        &mut self,
        conn: usize,
        head: &RequestHead,
        raw_name: &str,
        query: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<Option<Response>, ControlError> {
        let received_ns = crate::sys::process::monotonic_ns();
        let account = self.registry.account().clone();
        let fref = routes::function_ref(raw_name, &account.region, &account.account_id)?;
        let qualifier = routes::query_value(query, "Qualifier")
            .map(str::to_string)
            .or(fref.qualifier.clone());
        // An alias with a routing configuration sends each invocation to one of its
        // versions by weight (RoutingConfig.AdditionalVersionWeights).
        let target = match qualifier.as_deref() {
            Some(q) if q != "$LATEST" && !q.bytes().all(|b| b.is_ascii_digit()) => {
                let alias = self
                    .registry
                    .get_alias(&fref.name, q)
                    .map_err(crate::control::handlers::registry_error)?;
                Some(pick_version(
                    &alias.function_version,
                    &alias.routing,
                    random_unit(),
                ))
            }
            other => other.map(str::to_string),
        };
        let fcfg = self
            .registry
            .get_function(&fref.name, target.as_deref())
            .map_err(crate::control::handlers::registry_error)?;
        let kind = head
            .header("X-Amz-Invocation-Type")
            .unwrap_or("RequestResponse");
        let tail = head.header("X-Amz-Log-Type") == Some("Tail");
        if body.len() > MAX_INVOKE_PAYLOAD {
            return Err(ControlError::RequestTooLarge(format!(
                "Request must be smaller than {MAX_INVOKE_PAYLOAD} bytes for the InvokeFunction operation"
            )));
        }
        if !body.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
            return Err(ControlError::InvalidRequestContent(
                "Could not parse request body into json: Unexpected character".into(),
            ));
        }
        match kind {
            "DryRun" => {
                return Ok(Some(Response {
                    status: 204,
                    headers: vec![],
                    body: vec![],
                }))
            }
            "RequestResponse" | "Event" => {}
            other => {
                return Err(ControlError::InvalidParameterValue(format!(
                    "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
                )))
            }
        }
        let client_context =
            match head.header("X-Amz-Client-Context") {
                None => None,
                Some(b64) => Some(crate::invoke_cli::decode_client_context(b64).map_err(|e| {
                    ControlError::InvalidParameterValue(format!("Client context {e}"))
                })?),
            };
        let forced = head
            .header("X-Hearth-Start")
            .map(ForcedStart::parse)
            .transpose()?;
        self.admit(&fcfg)?;
        let invoked_arn = Some(account.function_arn(&fref.name, qualifier.as_deref()));
        let request = InvokeRequest {
            payload: if body.is_empty() {
                b"{}".to_vec()
            } else {
                body
            },
            client_context,
            invoked_arn,
        };
        let request_id = crate::function::env::uuid_v4();
        let queued = Queued {
            received_ns,
            waiter: (kind == "RequestResponse").then_some(Waiter { conn, tail }),
            request_id: request_id.clone(),
            request,
        };
        match self.claim_instance(&fcfg, forced)? {
            Claimed::Ready(slot, start) => self.begin_invocation(slot, start, queued)?,
            Claimed::Starting(slot) => {
                // Handed over when the sandbox is created (`on_spawned`).
                if let Some(st) = self.starting.get_mut(&slot) {
                    st.queued = Some(queued);
                }
            }
        }
        if kind == "Event" {
            return Ok(Some(Response {
                status: 202,
                headers: vec![("x-amzn-RequestId".into(), request_id)],
                body: vec![],
            }));
        }
        Ok(None)
    }

    /// Gives an invocation to the instance in `slot`.
    fn begin_invocation(
        &mut self,
        slot: usize,
        start: StartKind,
        q: Queued,
    ) -> Result<(), ControlError> {
        let s = self.slots.get_mut(&slot).expect("claimed slot exists");
        self.metrics
            .invocation_started(&s.cfg.function_name, &s.cfg.version, start);
        s.busy = true;
        s.invocation = Some(start);
        s.received_ns = q.received_ns;
        s.waiter = q.waiter;
        self.busy.insert(slot);
        s.inst
            .assign(
                &mut self.server,
                self.poll.registry(),
                &s.cfg,
                q.request_id,
                q.request,
            )
            .map_err(|e| ControlError::Service(e.to_string()))
    }

    /// Answers a waiting caller with an error (an invocation that could not start).
    fn fail_waiter(&mut self, waiter: Option<Waiter>, err: &ControlError) {
        let Some(w) = waiter else { return };
        let Some(conn) = self.conns.get_mut(&w.conn) else {
            return;
        };
        conn.waiting = false;
        write_error(conn, err);
        self.on_conn_event(w.conn, true);
    }

    fn complete_invocations(&mut self) {
        let ids: Vec<usize> = self.busy.iter().copied().collect();
        for id in ids {
            let Some(s) = self.slots.get_mut(&id) else {
                continue;
            };
            let Some(ended) = s.inst.take_ended() else {
                continue;
            };
            self.record_end(id, &ended);
            self.busy.remove(&id);
            let s = self.slots.get_mut(&id).expect("slot exists");
            let ended_ns = crate::sys::process::monotonic_ns();
            let mut phases = s.inst.phases(ended.cold, s.received_ns, ended_ns, ended_ns);
            let sandbox_steps = phases
                .sandbox_us
                .and_then(|_| s.inst.sandbox_steps_header());
            let waiter = s.waiter.take();
            s.busy = false;
            let now = Instant::now();
            s.idle_since = now;
            let freeze_at = now + Duration::from_millis(self.cfg.freeze_delay_ms);
            let version = s.cfg.version.clone();
            let start = s.invocation.take().unwrap_or(StartKind::Warm);
            let result = if ended.instance_survives() && !s.single_use && !s.stale {
                let r = s.inst.complete(&self.host, &s.cfg, ended);
                self.schedule(freeze_at, id, pool::Timer::Freeze);
                Some(r)
            } else if ended.instance_survives() && s.stale {
                let r = s.inst.complete(&self.host, &s.cfg, ended);
                self.begin_retire(id, Instant::now());
                Some(r)
            } else if ended.instance_survives() {
                let r = s.inst.complete(&self.host, &s.cfg, ended);
                self.remove_slot(id, None);
                Some(r)
            } else {
                self.remove_slot(id, Some(ended))
            };
            let (Some(w), Some(result)) = (waiter, result) else {
                continue;
            };
            let Some(conn) = self.conns.get_mut(&w.conn) else {
                continue;
            };
            conn.waiting = false;
            let mut headers = vec![
                ("X-Amz-Executed-Version".to_string(), version),
                ("X-Hearth-Start".to_string(), start.label().to_string()),
            ];
            if let Some(init) = result.init_duration {
                headers.push((
                    "X-Hearth-Init-Duration-Us".into(),
                    init.as_micros().to_string(),
                ));
            }
            phases.delivery_us =
                crate::sys::process::monotonic_ns().saturating_sub(ended_ns) as f64 / 1000.0;
            headers.push(("X-Hearth-Phases-Us".into(), phases.header()));
            if let Some(steps) = sandbox_steps {
                headers.push(("X-Hearth-Sandbox-Steps-Us".into(), steps));
            }
            if w.tail {
                use base64::Engine;
                headers.push((
                    "X-Amz-Log-Result".into(),
                    base64::engine::general_purpose::STANDARD.encode(&result.log_tail),
                ));
            }
            let body = match result.outcome {
                Outcome::Success { body, content_type } => {
                    headers.push((
                        "Content-Type".into(),
                        content_type.unwrap_or_else(|| "application/json".into()),
                    ));
                    body
                }
                Outcome::FunctionError { payload, .. } => {
                    headers.push(("X-Amz-Function-Error".into(), "Unhandled".into()));
                    headers.push(("Content-Type".into(), "application/json".into()));
                    payload
                }
            };
            headers.push(("x-amzn-RequestId".into(), result.request_id));
            write_response(
                conn,
                &Response {
                    status: 200,
                    headers,
                    body,
                },
            );
            let id = w.conn;
            self.on_conn_event(id, true);
        }
    }

    fn metrics(&self) -> Response {
        Response {
            status: 200,
            headers: vec![("Content-Type".into(), Metrics::CONTENT_TYPE.into())],
            body: self.metrics.render(&self.gauges()).into_bytes(),
        }
    }

    /// Re-reads the account's sum of reserved concurrency and, given a function, whether
    /// it has a reservation (after a control operation that may have changed them).
    fn refresh_reserved(&mut self, function: Option<&str>) {
        if let Ok(usage) = self.registry.account_usage() {
            self.reserved_total = usage.reserved_concurrency;
        }
        if let Some(name) = function {
            let reserved = matches!(self.registry.get_function_concurrency(name), Ok(Some(_)));
            for s in self.slots.values_mut().filter(|s| s.key.0 == name) {
                s.reserved = reserved;
            }
        }
    }

    fn shutdown(&mut self) {
        let ids: Vec<usize> = self.slots.keys().copied().collect();
        for id in ids {
            self.remove_slot(id, None);
        }
        self.reaper.finish();
        self.spawner.finish(&self.host);
        if let Some(pool) = self.blanks.take() {
            pool.shutdown();
        }
        let _ = self.host.cgroups.remove_parent_if_empty();
        let _ = std::fs::remove_file(&self.socket_path);
        eprintln!("hearth serve: stopped");
    }
}

/// The version an alias sends one invocation to: each additional version with its
/// weight, the alias's own version with the rest; `r` is uniform in [0, 1).
fn pick_version(
    primary: &str,
    weights: &std::collections::BTreeMap<String, f64>,
    r: f64,
) -> String {
    let mut acc = 0.0;
    for (version, w) in weights {
        acc += w;
        if r < acc {
            return version.clone();
        }
    }
    primary.to_string()
}

/// A uniform random number in [0, 1) (from /dev/urandom via the request-id generator).
fn random_unit() -> f64 {
    let hex = crate::function::env::random_hex32();
    let n = u32::from_str_radix(&hex[..8], 16).unwrap_or(0);
    f64::from(n) / (f64::from(u32::MAX) + 1.0)
}

fn runtime_event_instance(e: &crate::runtime_api::RuntimeEvent) -> crate::runtime_api::InstanceId {
    use crate::runtime_api::RuntimeEvent::*;
    match e {
        Ready { instance }
        | Response { instance, .. }
        | ResponseTooLarge { instance, .. }
        | InvokeError { instance, .. }
        | InitError { instance, .. } => *instance,
    }
}

/// An answer to a control request.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Status",
    }
}

fn write_response(conn: &mut Conn, r: &Response) {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    let has_request_id = r
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("x-amzn-RequestId"));
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_request_id {
        head.push_str(&format!(
            "x-amzn-RequestId: {}\r\n",
            crate::function::env::uuid_v4()
        ));
    }
    head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    if conn.close_after_write {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    conn.out.extend_from_slice(head.as_bytes());
    conn.out.extend_from_slice(&r.body);
    flush(conn);
}

fn write_error(conn: &mut Conn, e: &ControlError) {
    let (status, headers, body) = e.to_response();
    write_response(
        conn,
        &Response {
            status,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            body,
        },
    );
}

/// Writes what is pending without blocking.
fn flush(conn: &mut Conn) {
    while !conn.out.is_empty() {
        match conn.stream.write(&conn.out) {
            Ok(0) => {
                conn.closed = true;
                return;
            }
            Ok(n) => {
                conn.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                conn.closed = true;
                return;
            }
        }
    }
}

/// Raises the daemon's open-file limit as far as it goes: every instance holds about six
/// descriptors here (log pipe, pidfd, init channel, two listeners, the runtime's
/// connection), so a thousand idle instances need more than the usual 1,024 or 20,000.
/// Sandboxes are unaffected: their command gets Lambda's 1,024 (`sandbox::rlimits`).
fn raise_nofile_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    const WANTED: u64 = 1 << 20;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    // Root may raise the hard limit up to fs.nr_open (1,048,576 by default).
    if hard < WANTED && setrlimit(Resource::RLIMIT_NOFILE, WANTED, WANTED).is_ok() {
        return;
    }
    if soft < hard {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// Tells systemd (`Type=notify`) that the daemon is ready, when started by it.
fn notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(_) => return,
    };
    let bytes = path.as_encoded_bytes();
    let res = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|a| sock.send_to_addr(b"READY=1", &a))
    } else {
        sock.send_to(b"READY=1", &path)
    };
    let _ = res;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_split_traffic_by_weight() {
        let mut w = std::collections::BTreeMap::new();
        w.insert("2".to_string(), 0.25);
        assert_eq!(pick_version("1", &w, 0.0), "2");
        assert_eq!(pick_version("1", &w, 0.2499), "2");
        assert_eq!(pick_version("1", &w, 0.25), "1");
        assert_eq!(pick_version("1", &w, 0.99), "1");
        assert_eq!(pick_version("1", &Default::default(), 0.1), "1");
        let r = random_unit();
        assert!((0.0..1.0).contains(&r));
    }
}
