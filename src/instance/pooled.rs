//! What the warm pool asks of an instance beyond serving invocations: whether it is
//! parked on `/next` (safe to freeze), whether its init has overrun its limit when no
//! invocation is waiting for it (a provisioned instance), its init duration, and a
//! teardown in two halves — unhooking from the event loop ([`Instance::detach`], on the
//! loop) and destroying the sandbox ([`Remains::destroy`], which may block for
//! milliseconds and so runs on another thread).

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;

use super::logs::LogStream;
use super::{drain_to_end, Instance, Phase};
use crate::runtime_api::RuntimeApiServer;
use crate::sandbox::{Sandbox, SandboxHost};

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

    /// How long init took (set at the first `/next`).
    pub fn init_duration(&self) -> Option<Duration> {
        self.init_duration
    }
}
