//! The local runner (`hearth invoke --local`, benchmarks): one function's instance driven
//! by a private mio loop in the calling thread. Invocations run one after another on the
//! same instance (warm); after anything that ends an instance, the next invocation starts
//! a fresh one (cold), as Lambda does.
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
            match Instance::start(
                self.host,
                &name,
                &self.cfg,
                &mut self.server,
                self.poll.registry(),
                [LOG_TOKEN, PIDFD_TOKEN, CHANNEL_TOKEN],
                echo,
            )? {
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
        let inst = self.inst.as_mut().expect("instance started above");
        inst.assign(
            &mut self.server,
            self.poll.registry(),
            &self.cfg,
            request_id,
            req.clone(),
        )?;
        let mut out = Vec::new();
        let ended = loop {
            if let Some(ended) = inst.take_ended() {
                break ended;
            }
            let timeout = inst
                .deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(InstanceError::Poll(e)),
            }
            for ev in self.events.iter() {
                match ev.token() {
                    LOG_TOKEN => {
                        inst.read_logs();
                    }
                    PIDFD_TOKEN | CHANNEL_TOKEN => inst.on_sandbox_event(self.host),
                    t if self.server.owns(t) => {
                        self.server.handle_event(self.poll.registry(), ev, &mut out)
                    }
                    _ => {}
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
            inst.check_deadline(Instant::now());
        };
        if ended.instance_survives() {
            return Ok(inst.complete(self.host, &self.cfg, ended));
        }
        let inst = self.inst.take().expect("instance is live");
        let result = inst.teardown(
            self.host,
            &mut self.server,
            self.poll.registry(),
            &self.cfg,
            Some(ended),
        )?;
        Ok(result.expect("teardown with an ended invocation returns its result"))
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
