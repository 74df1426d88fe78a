//! The local runner (`hearth invoke --local`, benchmarks): one function's instance driven
//! by a private mio loop in the calling thread. Invocations run one after another on the
//! same instance (warm); after anything that ends an instance, the next invocation starts
//! a fresh one (cold), as Lambda does.
//!
//! With [`LocalInstance::use_blanks`], each instance starts from a blank sandbox made
//! right before it ([`Instance::start_from_blank`]): the daemon's pre-warmed path, for
//! tests and measurements of it.
//!
//! Not done here: concurrency (one invocation at a time), pre-warming, freezing idle
//! instances — the daemon's pool does those with the same [`Instance`].

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::logs::WriteDebug;
use super::{Instance, InstanceConfig, InstanceError, InvokeRequest, InvokeResult, Outcome};
use crate::function::{env, runtime};
use crate::runtime_api::RuntimeApiServer;
use crate::sandbox::SandboxHost;

const LOG_TOKEN: Token = Token(1);
const PIDFD_TOKEN: Token = Token(2);
const CHANNEL_TOKEN: Token = Token(3);
/// The Runtime API server's tokens start here.
const SERVER_TOKENS: usize = 1 << 20;
/// Zero-timeout polls for the requests of a runtime that just exited.
const DRAIN_ROUNDS: usize = 16;

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

/// One function's instance on a private event loop.
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
    /// Start instances from blank sandboxes.
    blanks: bool,
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
            blanks: false,
        })
    }

    /// Starts every later instance from a blank sandbox (when the function fits one,
    /// [`super::fits_blank`]).
    pub fn use_blanks(&mut self, on: bool) {
        self.blanks = on;
    }

    fn start_instance(
        &mut self,
        name: &str,
        echo: Option<Box<dyn WriteDebug>>,
    ) -> Result<Option<Instance>, InstanceError> {
        let tokens = [LOG_TOKEN, PIDFD_TOKEN, CHANNEL_TOKEN];
        let template = super::blank_template(self.cfg.root.clone(), &self.cfg.runtimes_dir);
        if self.blanks && super::fits_blank(&self.cfg, &template) {
            let blank = self.host.create_blank(name, &template)?;
            return Instance::start_from_blank(
                self.host,
                blank,
                &self.cfg,
                &mut self.server,
                self.poll.registry(),
                tokens,
                echo,
            );
        }
        Instance::start(
            self.host,
            name,
            &self.cfg,
            &mut self.server,
            self.poll.registry(),
            tokens,
            echo,
        )
    }

    /// Runs one invocation: on the live instance if there is one (warm), else on a new
    /// one (cold, with Init Duration). If a warm runtime dies before it ever receives the
    /// event, the event runs on a fresh instance instead.
    pub fn invoke(&mut self, req: &InvokeRequest) -> Result<InvokeResult, InstanceError> {
        if let Some(result) = self.attempt(req)? {
            return Ok(result);
        }
        match self.attempt(req)? {
            Some(result) => Ok(result),
            None => Err(InstanceError::Setup(
                "the runtime exited twice before receiving the event".to_string(),
            )),
        }
    }

    /// One try of [`LocalInstance::invoke`]; `None`: the runtime died before receiving
    /// the event (its instance is gone; try again).
    fn attempt(&mut self, req: &InvokeRequest) -> Result<Option<InvokeResult>, InstanceError> {
        let request_id = env::uuid_v4();
        // A warm instance whose runtime exited while idle cannot take the event: the
        // invocation starts a fresh one instead of failing for something it never saw.
        if self.inst.as_mut().is_some_and(|i| i.has_exited()) {
            self.retire()?;
        }
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
            match self.start_instance(&name, echo)? {
                Some(i) => self.inst = Some(i),
                None => {
                    return Ok(Some(InvokeResult {
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
                    }))
                }
            }
        }
        let inst = self.inst.as_mut().expect("instance started above");
        inst.assign(
            &mut self.server,
            self.poll.registry(),
            &self.cfg,
            request_id,
            req.clone(),
        )?;
        let mut out = Vec::new();
        let mut logs_pending = false;
        let ended = loop {
            if let Some(ended) = inst.take_ended() {
                break ended;
            }
            // Output left unread (a flooding function) is read between events, never
            // instead of them: the deadline still holds.
            let timeout = if logs_pending {
                Some(Duration::ZERO)
            } else {
                inst.deadline()
                    .map(|d| d.saturating_duration_since(Instant::now()))
            };
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(InstanceError::Poll(e)),
            }
            let mut sandbox_event = false;
            let mut read_logs = logs_pending;
            for ev in self.events.iter() {
                match ev.token() {
                    LOG_TOKEN => read_logs = true,
                    PIDFD_TOKEN | CHANNEL_TOKEN => sandbox_event = true,
                    t if self.server.owns(t) => {
                        self.server.handle_event(self.poll.registry(), ev, &mut out)
                    }
                    _ => {}
                }
            }
            if read_logs {
                logs_pending = inst.read_logs();
            }
            for event in out.drain(..) {
                inst.on_runtime_event(
                    &mut self.server,
                    self.poll.registry(),
                    self.host,
                    &self.cfg,
                    event,
                )?;
            }
            if sandbox_event && inst.has_exited() {
                // A runtime may post its result and exit at once: take every request it
                // sent before deciding that it died without answering.
                for _ in 0..DRAIN_ROUNDS {
                    match self.poll.poll(&mut self.events, Some(Duration::ZERO)) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(InstanceError::Poll(e)),
                    }
                    let mut server_events = false;
                    for ev in self.events.iter() {
                        if self.server.owns(ev.token()) {
                            server_events = true;
                            self.server.handle_event(self.poll.registry(), ev, &mut out);
                        }
                    }
                    for event in out.drain(..) {
                        inst.on_runtime_event(
                            &mut self.server,
                            self.poll.registry(),
                            self.host,
                            &self.cfg,
                            event,
                        )?;
                    }
                    if !server_events {
                        break;
                    }
                }
                inst.on_exit(self.host);
            }
            inst.check_deadline(Instant::now());
        };
        if ended.instance_survives() {
            return Ok(Some(inst.complete(self.host, &self.cfg, ended)));
        }
        let inst = self.inst.take().expect("instance is live");
        if ended.kind.undelivered {
            inst.teardown(
                self.host,
                &mut self.server,
                self.poll.registry(),
                &self.cfg,
                None,
            )?;
            return Ok(None);
        }
        let result = inst.teardown(
            self.host,
            &mut self.server,
            self.poll.registry(),
            &self.cfg,
            Some(ended),
        )?;
        Ok(Some(result.expect(
            "teardown with an ended invocation returns its result",
        )))
    }

    /// Tears down the live instance, if any.
    pub fn finish(mut self) -> Result<(), InstanceError> {
        self.retire()
    }

    /// Tears down the live instance, if any, so that the next invocation is cold.
    pub fn retire(&mut self) -> Result<(), InstanceError> {
        if let Some(inst) = self.inst.take() {
            inst.teardown(
                self.host,
                &mut self.server,
                self.poll.registry(),
                &self.cfg,
                None,
            )?;
        }
        Ok(())
    }
}
