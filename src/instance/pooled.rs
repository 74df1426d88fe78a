//! What the warm pool asks of an instance beyond serving invocations: whether it is
//! parked on `/next` (safe to freeze), whether its init has overrun its limit when no
//! invocation is waiting for it (a provisioned instance), and its init duration.

use std::time::{Duration, Instant};

use super::{Instance, Phase};

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

    /// How long init took (set at the first `/next`).
    pub fn init_duration(&self) -> Option<Duration> {
        self.init_duration
    }
}

// TEMP until the blank-sandbox work lands.
impl Instance {
    #[allow(clippy::too_many_arguments)]
    pub fn start_from_blank(
        _host: &crate::sandbox::SandboxHost,
        _blank: crate::sandbox::Sandbox,
        _cfg: &super::InstanceConfig,
        _server: &mut crate::runtime_api::RuntimeApiServer,
        _registry: &mio::Registry,
        _tokens: [mio::Token; 3],
        _echo: Option<Box<dyn super::WriteDebug>>,
    ) -> Result<Option<Instance>, super::InstanceError> {
        Err(super::InstanceError::Setup("blank sandboxes are not built yet".into()))
    }
}
