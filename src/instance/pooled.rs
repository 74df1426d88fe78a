//! What the warm pool asks of an instance beyond serving invocations: whether it is
//! parked on `/next` (safe to freeze), whether its init has overrun its limit when no
//! invocation is waiting for it (a provisioned instance), its init duration, and a
//! teardown in two halves — unhooking from the event loop ([`Instance::detach`], on the
//! loop) and destroying the sandbox ([`Remains::destroy`], which may block for
//! milliseconds and so runs on another thread) — and the same split for a cold start by
//! spawning: [`Instance::prepare_spawn`] on the loop, [`SpawnJob::run`] (the sandbox's
//! creation, 4–5 ms) on a worker thread, [`Instance::finish_spawn`] on the loop again.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;

use mio::Token;

use super::logs::LogStream;
use super::{drain_to_end, Instance, InstanceConfig, InstanceError, Phase, Prepared};
use crate::runtime_api::RuntimeApiServer;
use crate::sandbox::{Sandbox, SandboxError, SandboxHost};

/// Where the time of one invocation went (see [`Instance::phases`]), in µs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phases {
    pub admission_us: f64,
    pub sandbox_us: Option<f64>,
    pub init_us: Option<f64>,
    pub handler_us: f64,
    pub delivery_us: f64,
}

impl Phases {
    /// The `X-Hearth-Phases-Us` header value: `admission=…,sandbox=…,init=…,handler=…,
    /// delivery=…` (sandbox and init only after a cold start), µs with one decimal.
    pub fn header(&self) -> String {
        let mut out = format!("admission={:.1}", self.admission_us);
        if let (Some(s), Some(i)) = (self.sandbox_us, self.init_us) {
            out.push_str(&format!(",sandbox={s:.1},init={i:.1}"));
        }
        out.push_str(&format!(
            ",handler={:.1},delivery={:.1}",
            self.handler_us, self.delivery_us
        ));
        out
    }
}

/// The steps of a spawned sandbox, in order (names of [`crate::sandbox::Timeline::steps_us`]
/// without `_us`).
pub const SPAWN_STEPS: [&str; 11] = [
    "scratch",
    "cgroup",
    "plan",
    "clone",
    "namespaces",
    "mounts",
    "release_wait",
    "fork",
    "privileges",
    "seccomp",
    "exec",
];
/// The steps of assigning a blank sandbox, in order.
pub const BLANK_STEPS: [&str; 6] = [
    "assign",
    "code_mount",
    "fork",
    "privileges",
    "seccomp",
    "exec",
];

/// A cold start by spawning, prepared on the loop (environment, log stream and pipe,
/// sandbox spec) and not yet created.
#[derive(Debug)]
pub struct SpawnJob {
    name: String,
    prepared: Prepared,
}

/// A [`SpawnJob`] after its sandbox's creation, for [`Instance::finish_spawn`].
#[derive(Debug)]
pub struct SpawnDone {
    prepared: Prepared,
    /// When the creation began: Init Duration counts from here, as on the other paths.
    created: Instant,
    result: Result<Sandbox, SandboxError>,
}

impl SpawnJob {
    /// Creates the sandbox (blocking; any thread). The parent-death signal of the
    /// sandbox's init is tied to the calling thread: it must outlive the instance.
    pub fn run(self, host: &SandboxHost) -> SpawnDone {
        let created = Instant::now();
        let result = host.create(&self.name, &self.prepared.spec);
        SpawnDone {
            prepared: self.prepared,
            created,
            result,
        }
    }
}

impl SpawnDone {
    /// Destroys a created sandbox nobody will take (shutdown).
    pub fn discard(self, host: &SandboxHost) {
        if let Ok(sb) = self.result {
            let _ = host.destroy(sb);
        }
    }
}

/// An instance unhooked from the event loop, still to be destroyed: its sandbox, and its
/// log pipe and stream (what the function printed last, a SIGTERM handler's output
/// included, is read to the end and written before the stream closes).
#[derive(Debug)]
pub struct Remains {
    sandbox: Sandbox,
    log_pipe: OwnedFd,
    logs: LogStream,
}

impl Remains {
    /// Kills and removes the sandbox, then drains the log pipe into the stream.
    pub fn destroy(self, host: &SandboxHost) {
        let Remains {
            sandbox,
            log_pipe,
            mut logs,
        } = self;
        let _ = host.destroy(sandbox);
        drain_to_end(log_pipe, &mut logs);
        logs.flush_partial();
    }
}

impl Instance {
    /// Initialised, alive, no invocation assigned, and the runtime waiting on `/next`:
    /// it can be frozen now and thawed for the next invocation.
    pub fn is_parked(&self) -> bool {
        !self.exited && self.current.is_none() && self.phase == Phase::Idle
    }

    /// Still in init (no first `/next` yet).
    pub fn is_initialising(&self) -> bool {
        !self.exited && self.phase == Phase::Init
    }

    /// In init for longer than `limit` with no invocation waiting (an invocation's own
    /// deadline covers init otherwise).
    pub fn init_overdue(&self, now: Instant, limit: Duration) -> bool {
        self.is_initialising()
            && self.current.is_none()
            && now.saturating_duration_since(self.created) >= limit
    }

    /// Takes the instance off the event loop and the Runtime API server (no invocation
    /// may be running: its outcome would be lost); [`Remains::destroy`] does the rest.
    pub fn detach(self, server: &mut RuntimeApiServer, registry: &mio::Registry) -> Remains {
        let Instance {
            sandbox,
            api,
            log_pipe,
            logs,
            ..
        } = self;
        let _ = registry.deregister(&mut SourceFd(&log_pipe.as_raw_fd()));
        let _ = registry.deregister(&mut SourceFd(&sandbox.pidfd().as_raw_fd()));
        let _ = registry.deregister(&mut SourceFd(&sandbox.channel().as_raw_fd()));
        server.remove_instance(registry, api);
        Remains {
            sandbox,
            log_pipe,
            logs,
        }
    }

    /// The first half of [`Instance::start`]: `Ok(None)` for a custom runtime without a
    /// bootstrap.
    pub fn prepare_spawn(
        cfg: &InstanceConfig,
        name: &str,
    ) -> Result<Option<SpawnJob>, InstanceError> {
        Ok(Prepared::new(cfg, None, false)?.map(|prepared| SpawnJob {
            name: name.to_string(),
            prepared,
        }))
    }

    /// The last part of [`Instance::start`], after [`SpawnJob::run`]: listeners and
    /// registrations on the loop. On failure the sandbox is destroyed.
    pub fn finish_spawn(
        host: &SandboxHost,
        done: SpawnDone,
        cfg: &InstanceConfig,
        server: &mut RuntimeApiServer,
        registry: &mio::Registry,
        tokens: [Token; 3],
    ) -> Result<Option<Instance>, InstanceError> {
        let sandbox = done.result?;
        Self::started(
            host,
            sandbox,
            done.prepared,
            done.created,
            cfg,
            server,
            registry,
            tokens,
        )
    }

    /// The phases of the invocation just ended, in µs, from `received_ns` (when the
    /// request reached the daemon) to `answered_ns` (its answer is being written), all
    /// `CLOCK_MONOTONIC`: admission (until the sandbox's creation or assignment began; on
    /// a warm start until the hand-over), sandbox (until the bootstrap's `execve`), init
    /// (until the runtime took the event), handler (until the outcome was taken), delivery.
    /// A warm invocation has no sandbox or init phase. They add up to the whole.
    pub fn phases(
        &mut self,
        cold: bool,
        received_ns: u64,
        ended_ns: u64,
        answered_ns: u64,
    ) -> Phases {
        let us = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1000.0;
        // init stamps the exec after the fact and reports it on its channel, which the
        // loop may not have read yet when the runtime was quick to answer.
        if cold && self.sandbox.timeline.child[crate::sandbox::sync::stamp::EXECED] == 0 {
            self.sandbox.read_reports();
        }
        let t = &self.sandbox.timeline;
        let sandbox_start = if t.assign_start != 0 {
            t.assign_start
        } else {
            t.start
        };
        // init stamps the exec when it sees the command's close-on-exec pipe close; on a
        // busy host it may see that only after the runtime already took the event. Then
        // the command's fork stamp (just before its `execve`) stands for the exec.
        let exec = match t.child[crate::sandbox::sync::stamp::EXECED] {
            e if e > self.handover_ns.max(self.init_done_ns) => {
                t.child[crate::sandbox::sync::stamp::FORKED]
            }
            e => e,
        };
        // A cold start's event is queued at assignment and reaches the runtime at its first
        // `/next`: the later of the two is the hand-over.
        let handover = self.handover_ns.max(self.init_done_ns).max(received_ns);
        if cold && sandbox_start >= received_ns && exec >= sandbox_start && handover >= exec {
            Phases {
                admission_us: us(received_ns, sandbox_start),
                sandbox_us: Some(us(sandbox_start, exec)),
                init_us: Some(us(exec, handover)),
                handler_us: us(handover, ended_ns),
                delivery_us: us(ended_ns, answered_ns),
            }
        } else {
            Phases {
                admission_us: us(received_ns, handover),
                sandbox_us: None,
                init_us: None,
                handler_us: us(handover, ended_ns),
                delivery_us: us(ended_ns, answered_ns),
            }
        }
    }

    /// The `X-Hearth-Sandbox-Steps-Us` value of a cold start: the steps inside its
    /// `sandbox` phase, `name=µs` pairs from the sandbox's timeline — from a blank
    /// sandbox the assignment's steps only (the rest was done before the request came).
    /// Parent and child steps overlap, so they need not add up to the phase. `None` when
    /// no step was timed.
    pub fn sandbox_steps_header(&self) -> Option<String> {
        let t = &self.sandbox.timeline;
        let wanted: &[&str] = if t.assign_start != 0 {
            &BLANK_STEPS
        } else {
            &SPAWN_STEPS
        };
        let steps = t.steps_us();
        let items: Vec<String> = wanted
            .iter()
            .filter_map(|w| {
                steps
                    .iter()
                    .find(|(k, _)| k.strip_suffix("_us") == Some(w))
                    .map(|(_, v)| format!("{w}={v:.1}"))
            })
            .collect();
        (!items.is_empty()).then(|| items.join(","))
    }

    /// How long init took (set at the first `/next`).
    pub fn init_duration(&self) -> Option<Duration> {
        self.init_duration
    }
}
