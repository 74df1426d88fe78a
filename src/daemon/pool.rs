//! The warm pool (ARCHITECTURE §4): which instance serves an invocation, and the life of
//! instances between invocations.
//!
//! * **Admission.** A function's reserved concurrency caps it (0 disables it); functions
//!   without a reservation share what the reservations leave of the account limit.
//! * **Claim.** An idle instance of exactly the function version and revision is reused
//!   (most recently used first, so the rest can expire), thawed if frozen. Otherwise a new
//!   one is started, from a pre-warmed blank sandbox when one fits, else by spawning —
//!   after making room in the host memory budget by evicting idle instances least
//!   recently used first; only when that cannot make room is the invocation throttled.
//! * **Between invocations.** An instance parked on `/next` is frozen after
//!   `freeze_delay_ms`; one idle for `idle_timeout_s` (and not provisioned) is retired:
//!   thawed, sent SIGTERM, and killed with its whole cgroup after [`SHUTDOWN_GRACE`]. A
//!   dead instance is removed as soon as its pidfd fires.
//! * **Provisioned concurrency.** For each request in the registry the pool keeps that
//!   many initialised instances of the resolved version (an alias follows its primary
//!   version), started with `AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`;
//!   their status is reported live through the control API.
//!
//! Hearth-specific request header on Invoke (for benchmarks): `X-Hearth-Start: spawn |
//! blank | fresh` forces a fresh instance by that path, used once and retired. Every
//! Invoke answer carries `X-Hearth-Start: warm | provisioned | blank | spawn`, after an
//! init `X-Hearth-Init-Duration-Us`, and `X-Hearth-Phases-Us` (where the invocation's time
//! went inside the daemon: admission, sandbox, init, handler, delivery; see
//! [`crate::instance::pooled::Phases`]), and after a cold start `X-Hearth-Sandbox-Steps-Us`
//! (the steps inside `sandbox`: clone, namespaces, mounts, cgroup, seccomp, exec…; see
//! [`crate::instance::Instance::sandbox_steps_header`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mio::Token;

use super::metrics::{InvocationResult, StartKind};
use super::{tokens, Daemon, FnKey, Slot, Starting};
use crate::control::errors::{ControlError, ThrottleReason};
use crate::function::env::InitializationType;
use crate::instance::pooled::Remains;
use crate::instance::{Ended, Instance, InstanceConfig, Outcome};
use crate::registry::FunctionConfig;
use crate::sandbox::{RootSource, SandboxHost};

/// How long a retiring instance has between SIGTERM and the kill of its cgroup (Lambda
/// gives a runtime without extensions 300 ms, with extensions 500 ms).
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
/// New provisioned instances started per turn of the loop (each start blocks the loop for
/// a few milliseconds; the rest follow on the next turns).
const PROVISION_PER_TURN: usize = 8;
/// Init failures in a row after which a function's cold starts stop taking blank
/// sandboxes (a crash loop must not drain the pool others rely on), and after which a
/// provisioned request is reported FAILED.
const CRASH_LOOP_FAILURES: u32 = 3;
/// The memory limit a blank sandbox holds until it is claimed.
pub const BLANK_MEMORY_MB: u64 = 128;

/// Where a claimed instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// Started (idle, or in init) in this slot, by this path.
    Ready(usize, StartKind),
    /// Its sandbox is being created on a spawner thread.
    Starting(usize),
}

/// The loop tokens of an instance slot.
fn slot_tokens(slot: usize) -> [Token; 3] {
    let base = tokens::SLOT_BASE + 3 * slot;
    [Token(base), Token(base + 1), Token(base + 2)]
}

/// What an Invoke asked for with `X-Hearth-Start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForcedStart {
    Spawn,
    Blank,
    Fresh,
}

impl ForcedStart {
    pub fn parse(value: &str) -> Result<ForcedStart, ControlError> {
        match value {
            "spawn" => Ok(ForcedStart::Spawn),
            "blank" => Ok(ForcedStart::Blank),
            "fresh" => Ok(ForcedStart::Fresh),
            other => Err(ControlError::InvalidParameterValue(format!(
                "X-Hearth-Start must be one of spawn, blank, fresh; got {other:?}"
            ))),
        }
    }
}

/// Pool state kept beside the slots.
#[derive(Debug, Default)]
pub struct PoolState {
    /// Init failures in a row, by function name.
    pub init_failures: HashMap<String, u32>,
    /// Provisioned requests whose instances keep failing init: (function, qualifier) →
    /// (the request's LastModified when it failed, the reason).
    pub provisioned_failed: HashMap<(String, String), (String, String)>,
    /// The registry's provisioned requests changed: reconcile on this turn.
    pub provisioned_dirty: bool,
    pub last_reconcile: Option<Instant>,
    /// Pending timers, soonest first (a timer of a slot that changed since is ignored).
    pub timers: BinaryHeap<Reverse<(Instant, usize, Timer)>>,
}

/// What a pool timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// Freeze an instance idle for `freeze_delay_ms`.
    Freeze,
    /// Retire an instance idle for `idle_timeout_s`.
    Expire,
    /// Kill a retiring instance at the end of its grace.
    Kill,
    /// Fail an instance whose init (with no invocation waiting) overran its limit.
    InitCheck,
}

/// The live status of one provisioned request, for the control API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedStatus {
    pub available: u32,
    pub allocated: u32,
    pub status: &'static str,
    pub reason: Option<String>,
}

impl Daemon {
    /// Concurrency admission: the function's reserved concurrency, else the account's
    /// unreserved share.
    pub(super) fn admit(&mut self, f: &FunctionConfig) -> Result<(), ControlError> {
        let result = self.check_admission(f);
        if let Err(ControlError::TooManyRequests { reason, .. }) = &result {
            self.metrics.throttled(&f.name, reason.as_str());
        }
        result
    }

    fn check_admission(&self, f: &FunctionConfig) -> Result<(), ControlError> {
        // Busy instances, and instances being created for an invocation: (function,
        // reserved) of each.
        let busy = |pred: &dyn Fn(&str, bool) -> bool| {
            let running = self
                .busy
                .iter()
                .filter_map(|id| self.slots.get(id))
                .filter(|s| pred(&s.key.0, s.reserved))
                .count();
            let starting = self
                .starting
                .values()
                .filter(|s| s.queued.is_some() && pred(&s.key.0, s.reserved))
                .count();
            (running + starting) as u64
        };
        if let Some(reserved) = f.reserved_concurrency {
            if busy(&|name, _| name == f.name) >= u64::from(reserved) {
                return Err(ControlError::TooManyRequests {
                    reason: ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded,
                    message: "Rate Exceeded.".into(),
                });
            }
            return Ok(());
        }
        // Reservations are guaranteed: the others share the rest of the account limit.
        let unreserved_limit =
            u64::from(self.cfg.account_concurrency).saturating_sub(self.reserved_total);
        if busy(&|_, reserved| !reserved) >= unreserved_limit {
            return Err(ControlError::TooManyRequests {
                reason: ThrottleReason::ConcurrentInvocationLimitExceeded,
                message: "Rate Exceeded.".into(),
            });
        }
        Ok(())
    }

    /// An idle instance of exactly this function version, or a new one: the slot and how
    /// the instance started, or the slot of an instance still being created.
    pub(super) fn claim_instance(
        &mut self,
        f: &FunctionConfig,
        forced: Option<ForcedStart>,
    ) -> Result<Claimed, ControlError> {
        let key: FnKey = (f.name.clone(), f.version.clone(), f.revision_id.clone());
        while forced.is_none() {
            let best = self
                .by_key
                .get(&key)
                .into_iter()
                .flatten()
                .filter_map(|id| Some((*id, self.slots.get(id)?)))
                .filter(|(_, s)| !s.busy && !s.stale && s.retiring.is_none() && s.inst.is_free())
                .max_by_key(|(_, s)| s.idle_since)
                .map(|(id, _)| id);
            let Some(id) = best else { break };
            let s = self.slots.get_mut(&id).expect("slot exists");
            // The pidfd may have fired after this turn's events were read: an instance
            // that died idle must not take the invocation (it would fail it).
            if s.inst.has_exited() {
                self.remove_slot(id, None);
                continue;
            }
            if s.frozen {
                if let Err(e) = self.host.set_frozen(&s.inst.sandbox, false) {
                    eprintln!("hearth serve: thawing an instance of {}: {e}", f.name);
                }
                s.frozen = false;
            }
            let kind = if s.provisioned_for.is_some() {
                StartKind::Provisioned
            } else {
                StartKind::Warm
            };
            return Ok(Claimed::Ready(id, kind));
        }
        let cfg = self.instance_config(f, InitializationType::OnDemand);
        self.make_room(cfg.memory_mb, &f.name)?;
        let claimed = self.start_instance(cfg, key, f.reserved_concurrency.is_some(), forced)?;
        if forced.is_some() {
            match claimed {
                Claimed::Ready(slot, _) => {
                    if let Some(s) = self.slots.get_mut(&slot) {
                        s.single_use = true;
                    }
                }
                Claimed::Starting(slot) => {
                    if let Some(s) = self.starting.get_mut(&slot) {
                        s.single_use = true;
                    }
                }
            }
        }
        Ok(claimed)
    }

    /// The instance configuration of a function version.
    pub(super) fn instance_config(
        &self,
        f: &FunctionConfig,
        initialization_type: InitializationType,
    ) -> InstanceConfig {
        InstanceConfig {
            function_name: f.name.clone(),
            version: f.version.clone(),
            runtime: f.runtime,
            handler: f.handler.clone(),
            memory_mb: u64::from(f.memory_mb),
            timeout: Duration::from_secs(u64::from(f.timeout_s)),
            init_limit: Duration::from_secs(self.cfg.init_timeout_s),
            tmp_mb: u64::from(f.ephemeral_storage_mb),
            env: f.env.clone(),
            code_dir: f.code_dir.clone(),
            root: RootSource::HostBinds,
            region: self.cfg.region.clone(),
            account_id: self.cfg.account_id.clone(),
            logs_dir: self.cfg.state_dir.join("logs"),
            runtimes_dir: self.runtimes_dir.clone(),
            initialization_type,
        }
    }

    /// Starts an instance of `cfg` in a new slot: from a blank sandbox when one fits and
    /// the function is not crash-looping (ready at once), else by spawning on a worker
    /// thread (the slot is [`Claimed::Starting`] until [`Daemon::on_spawned`]).
    fn start_instance(
        &mut self,
        cfg: InstanceConfig,
        key: FnKey,
        reserved: bool,
        forced: Option<ForcedStart>,
    ) -> Result<Claimed, ControlError> {
        if crate::instance::bootstrap_argv(cfg.runtime, &cfg.code_dir).is_none() {
            // No bootstrap: Lambda reports it as the invocation's error; a slot-less
            // outcome would need its own path, so refuse clearly instead.
            return Err(ControlError::InvalidParameterValue(
                "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]".into(),
            ));
        }
        let slot = self.next_slot;
        self.next_slot += 1;
        let crash_looping = self
            .pool
            .init_failures
            .get(&cfg.function_name)
            .is_some_and(|&n| n >= CRASH_LOOP_FAILURES);
        let may_use_blank =
            forced != Some(ForcedStart::Spawn) && !crash_looping && self.blank_fits(&cfg);
        let blank = if may_use_blank {
            self.take_blank()
        } else {
            None
        };
        let used_blank = blank.is_some();
        let started = match blank {
            Some(sb) => Instance::start_from_blank(
                &self.host,
                sb,
                &cfg,
                &mut self.server,
                self.poll.registry(),
                slot_tokens(slot),
                None,
            ),
            None => {
                let name = crate::sandbox::reclaim::sandbox_name("fn", Some(slot as u64));
                let job = Instance::prepare_spawn(&cfg, &name)
                    .map_err(|e| ControlError::Service(format!("starting an instance: {e}")))?
                    .ok_or_else(|| ControlError::Service("no bootstrap".into()))?;
                match self.spawner.submit(slot, Box::new(job)) {
                    Ok(()) => {
                        self.starting.insert(
                            slot,
                            Starting {
                                cfg,
                                key,
                                reserved,
                                provisioned_for: None,
                                single_use: false,
                                queued: None,
                            },
                        );
                        return Ok(Claimed::Starting(slot));
                    }
                    // No worker thread: create it here.
                    Err(job) => {
                        let done = job.run(&self.host);
                        Instance::finish_spawn(
                            &self.host,
                            done,
                            &cfg,
                            &mut self.server,
                            self.poll.registry(),
                            slot_tokens(slot),
                        )
                    }
                }
            }
        };
        let kind = if used_blank {
            StartKind::Blank
        } else {
            StartKind::Spawn
        };
        let inst = started
            .map_err(|e| ControlError::Service(format!("starting an instance: {e}")))?
            .ok_or_else(|| ControlError::Service("no bootstrap".into()))?;
        self.insert_slot(slot, inst, cfg, key, reserved);
        Ok(Claimed::Ready(slot, kind))
    }

    /// A new, idle slot for a started instance.
    fn insert_slot(
        &mut self,
        slot: usize,
        inst: Instance,
        cfg: InstanceConfig,
        key: FnKey,
        reserved: bool,
    ) {
        self.by_api.insert(inst.api, slot);
        self.by_key.entry(key.clone()).or_default().push(slot);
        self.schedule(Instant::now() + cfg.init_limit, slot, Timer::InitCheck);
        self.slots.insert(
            slot,
            Slot {
                inst,
                cfg,
                key,
                waiter: None,
                busy: false,
                idle_since: Instant::now(),
                frozen: false,
                provisioned_for: None,
                retiring: None,
                single_use: false,
                reserved,
                init_recorded: false,
                invocation: None,
                stale: false,
                expiry_scheduled: false,
                received_ns: 0,
            },
        );
    }

    /// Instances whose sandbox a spawner thread has created: they join the pool, and the
    /// invocation queued for each is handed over (or answered with the failure).
    pub(super) fn on_spawned(&mut self) {
        for (slot, done) in self.spawner.results() {
            let Some(st) = self.starting.remove(&slot) else {
                done.discard(&self.host);
                continue;
            };
            let started = Instance::finish_spawn(
                &self.host,
                done,
                &st.cfg,
                &mut self.server,
                self.poll.registry(),
                slot_tokens(slot),
            );
            let inst = match started {
                Ok(Some(inst)) => inst,
                other => {
                    let why = match other {
                        Err(e) => e.to_string(),
                        _ => "no bootstrap".to_string(),
                    };
                    *self
                        .pool
                        .init_failures
                        .entry(st.cfg.function_name.clone())
                        .or_insert(0) += 1;
                    if st.provisioned_for.is_some() {
                        self.pool.provisioned_dirty = true;
                    }
                    if let Some(q) = st.queued {
                        let err = ControlError::Service(format!("starting an instance: {why}"));
                        self.fail_waiter(q.waiter, &err);
                    }
                    continue;
                }
            };
            self.insert_slot(slot, inst, st.cfg, st.key, st.reserved);
            let s = self.slots.get_mut(&slot).expect("slot just inserted");
            s.provisioned_for = st.provisioned_for;
            s.single_use = st.single_use;
            if let Some(q) = st.queued {
                if let Err(e) = self.begin_invocation(slot, StartKind::Spawn, q) {
                    eprintln!("hearth serve: handing over an invocation: {e}");
                }
            }
        }
    }

    /// Whether a blank sandbox can carry this function (they are built with the default
    /// `/tmp` size and the host's root).
    fn blank_fits(&self, cfg: &InstanceConfig) -> bool {
        self.blanks
            .as_ref()
            .is_some_and(|p| crate::instance::fits_blank(cfg, p.template()))
    }

    /// The memory the pool holds: the limits of every live instance, and the placeholder
    /// limit of every ready blank sandbox.
    pub(super) fn memory_used_mb(&self) -> u64 {
        let instances: u64 = self.slots.values().map(|s| s.cfg.memory_mb).sum();
        let starting: u64 = self.starting.values().map(|s| s.cfg.memory_mb).sum();
        instances
            + starting
            + self.blanks_ready() as u64 * BLANK_MEMORY_MB
            + self.reaper.pending_mb()
    }

    /// Makes room for `mb` more in the memory budget by retiring idle instances, least
    /// recently used first (never busy, initialising or provisioned ones); throttles if
    /// even that is not enough.
    fn make_room(&mut self, mb: u64, function: &str) -> Result<(), ControlError> {
        let budget = self.cfg.memory_budget_mb;
        let mut used = self.memory_used_mb();
        if used + mb <= budget {
            return Ok(());
        }
        let mut idle: Vec<(Instant, usize, u64)> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                !s.busy && s.provisioned_for.is_none() && s.retiring.is_none() && s.inst.is_free()
            })
            .map(|(id, s)| (s.idle_since, *id, s.cfg.memory_mb))
            .collect();
        idle.sort();
        let mut victims = Vec::new();
        for (_, id, m) in idle {
            if used + mb <= budget {
                break;
            }
            used -= m;
            victims.push(id);
        }
        if used + mb > budget {
            self.metrics.throttled(function, "MemoryBudgetExceeded");
            return Err(ControlError::TooManyRequests {
                reason: ThrottleReason::ConcurrentInvocationLimitExceeded,
                message: format!(
                    "Rate Exceeded. (The host's memory budget of {budget} MB is held by busy, \
                     initialising and provisioned instances.)"
                ),
            });
        }
        for id in victims {
            if let Some(s) = self.slots.get(&id) {
                let f = s.cfg.function_name.clone();
                self.metrics.evicted(&f);
            }
            // Eviction is immediate: the memory is needed now.
            self.remove_slot(id, None);
        }
        Ok(())
    }

    /// Records a finished invocation in the metrics and the crash-loop counter.
    pub(super) fn record_end(&mut self, slot: usize, ended: &Ended) {
        let Some(s) = self.slots.get_mut(&slot) else {
            return;
        };
        let result = if ended.kind.timed_out {
            InvocationResult::Timeout
        } else if ended.kind.exited || ended.kind.init_error || ended.kind.oversize {
            InvocationResult::Crash
        } else {
            match ended.outcome {
                Outcome::Success { .. } => InvocationResult::Success,
                Outcome::FunctionError { .. } => InvocationResult::FunctionError,
            }
        };
        self.metrics.invocation_finished(
            &s.cfg.function_name,
            &s.cfg.version,
            result,
            ended.duration,
        );
        if !s.init_recorded {
            if let Some(d) = s.inst.init_duration() {
                s.init_recorded = true;
                self.metrics
                    .init_finished(&s.cfg.function_name, &s.cfg.version, d);
            }
        }
        let failed_init = ended.kind.init_error || (ended.cold && !ended.handed_over);
        let f = s.cfg.function_name.clone();
        if failed_init {
            *self.pool.init_failures.entry(f).or_insert(0) += 1;
        } else {
            self.pool.init_failures.remove(&f);
        }
    }

    /// Pool housekeeping, driven by timers so that a turn of the loop costs nothing per
    /// idle instance: freezes parked instances, retires expired ones, kills retiring ones
    /// whose grace is over, fails provisioned instances whose init overran; reconciles
    /// provisioned concurrency every second. Returns when it next needs to run.
    pub(super) fn pool_tick(&mut self, now: Instant) -> Option<Instant> {
        while let Some(Reverse((at, _, _))) = self.pool.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, id, timer))) = self.pool.timers.pop() else {
                break;
            };
            self.on_timer(id, timer, now);
        }
        let reconcile_due = self.pool.provisioned_dirty
            || self
                .pool
                .last_reconcile
                .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if reconcile_due && self.draining.is_none() {
            self.reconcile_provisioned(now);
        }
        let next_reconcile = self.pool.last_reconcile.map(|t| t + Duration::from_secs(1));
        let next_timer = self.pool.timers.peek().map(|Reverse((at, _, _))| *at);
        [next_reconcile, next_timer].into_iter().flatten().min()
    }

    /// Schedules `timer` for slot `id` at `at`.
    pub(super) fn schedule(&mut self, at: Instant, id: usize, timer: Timer) {
        self.pool.timers.push(Reverse((at, id, timer)));
    }

    /// One timer; each checks that what it was set for still holds (a slot may have been
    /// used, retired or removed since).
    fn on_timer(&mut self, id: usize, timer: Timer, now: Instant) {
        let freeze_delay = Duration::from_millis(self.cfg.freeze_delay_ms);
        let idle_timeout = Duration::from_secs(self.cfg.idle_timeout_s);
        let Some(s) = self.slots.get_mut(&id) else {
            return;
        };
        match timer {
            Timer::Kill => {
                if s.retiring.is_some_and(|at| now >= at) || s.inst.exited() {
                    self.remove_slot(id, None);
                }
            }
            Timer::InitCheck => {
                if !s.busy && s.inst.init_overdue(now, s.cfg.init_limit) {
                    *self
                        .pool
                        .init_failures
                        .entry(s.cfg.function_name.clone())
                        .or_insert(0) += 1;
                    self.remove_slot(id, None);
                }
            }
            Timer::Freeze => {
                if s.busy || s.retiring.is_some() || !s.inst.is_parked() {
                    return;
                }
                if !s.init_recorded {
                    if let Some(d) = s.inst.init_duration() {
                        s.init_recorded = true;
                        self.metrics
                            .init_finished(&s.cfg.function_name, &s.cfg.version, d);
                    }
                }
                if !s.frozen && now >= s.idle_since + freeze_delay {
                    match self.host.set_frozen(&s.inst.sandbox, true) {
                        Ok(()) => s.frozen = true,
                        Err(e) => eprintln!(
                            "hearth serve: freezing an instance of {}: {e}",
                            s.cfg.function_name
                        ),
                    }
                }
                if s.provisioned_for.is_none() && !s.expiry_scheduled {
                    s.expiry_scheduled = true;
                    let at = s.idle_since + idle_timeout;
                    self.schedule(at, id, Timer::Expire);
                }
            }
            Timer::Expire => {
                s.expiry_scheduled = false;
                if s.busy || s.retiring.is_some() || s.provisioned_for.is_some() {
                    // Used again: the next freeze schedules a new expiry.
                    return;
                }
                let at = s.idle_since + idle_timeout;
                if now >= at && s.inst.is_free() {
                    self.begin_retire(id, now);
                } else {
                    s.expiry_scheduled = true;
                    self.schedule(at, id, Timer::Expire);
                }
            }
        }
    }

    /// An instance's init process exited (its pidfd fired): a busy one reports through
    /// its invocation; an idle or retiring one is removed now.
    pub(super) fn on_instance_exit(&mut self, id: usize) {
        let Some(s) = self.slots.get_mut(&id) else {
            return;
        };
        if !s.inst.has_exited() {
            return;
        }
        s.inst.on_exit(&self.host);
        if !s.busy {
            self.remove_slot(id, None);
        }
    }

    /// Thaws the instance and sends its runtime SIGTERM; it is killed with its cgroup at
    /// the end of the grace period if it has not exited by then.
    pub(super) fn begin_retire(&mut self, id: usize, now: Instant) {
        let Some(s) = self.slots.get_mut(&id) else {
            return;
        };
        if s.frozen {
            let _ = self.host.set_frozen(&s.inst.sandbox, false);
            s.frozen = false;
        }
        s.inst.sandbox.signal(libc::SIGTERM);
        s.retiring = Some(now + SHUTDOWN_GRACE);
        self.schedule(now + SHUTDOWN_GRACE, id, Timer::Kill);
    }

    /// Removes an instance now: thaws it (a frozen task on v1 would hold its SIGKILL),
    /// then kills and removes its sandbox. `ended` is the invocation it was serving.
    /// Without an invocation to report, the sandbox is destroyed on the reaper thread:
    /// removing cgroups and the scratch volume can take milliseconds.
    pub(super) fn remove_slot(
        &mut self,
        id: usize,
        ended: Option<Ended>,
    ) -> Option<crate::instance::InvokeResult> {
        self.logs_pending.remove(&id);
        self.busy.remove(&id);
        let s = self.slots.remove(&id)?;
        self.by_api.remove(&s.inst.api);
        if let Some(ids) = self.by_key.get_mut(&s.key) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_key.remove(&s.key);
            }
        }
        if s.frozen {
            let _ = self.host.set_frozen(&s.inst.sandbox, false);
        }
        if s.provisioned_for.is_some() {
            self.pool.provisioned_dirty = true;
        }
        if ended.is_none() {
            let remains = s.inst.detach(&mut self.server, self.poll.registry());
            self.reaper.destroy(remains, s.cfg.memory_mb, &self.host);
            return None;
        }
        s.inst
            .teardown(
                &self.host,
                &mut self.server,
                self.poll.registry(),
                &s.cfg,
                ended,
            )
            .ok()
            .flatten()
    }

    /// Starts or demotes instances so that every provisioned request has its count.
    fn reconcile_provisioned(&mut self, now: Instant) {
        self.pool.provisioned_dirty = false;
        self.pool.last_reconcile = Some(now);
        let Ok(requests) = self.registry.all_provisioned() else {
            return;
        };
        // (function, qualifier) → (resolved function version, requested, last modified).
        let mut wanted: HashMap<(String, String), (FunctionConfig, u32, String)> = HashMap::new();
        for (function, p) in requests {
            let version = if p.qualifier.bytes().all(|b| b.is_ascii_digit()) {
                p.qualifier.clone()
            } else {
                match self.registry.get_alias(&function, &p.qualifier) {
                    Ok(a) => a.function_version,
                    Err(_) => continue,
                }
            };
            if let Ok(f) = self.registry.get_function(&function, Some(&version)) {
                wanted.insert((function, p.qualifier), (f, p.requested, p.last_modified));
            }
        }
        // Demote instances no request wants any more (they then expire like any other).
        let mut count: HashMap<(String, String), u32> = HashMap::new();
        let mut ids: Vec<usize> = self.slots.keys().copied().collect();
        ids.sort();
        for id in ids {
            let s = self.slots.get_mut(&id).expect("slot exists");
            let Some(target) = s.provisioned_for.clone() else {
                continue;
            };
            let keep = match wanted.get(&target) {
                Some((f, requested, _)) => {
                    let key = (f.name.clone(), f.version.clone(), f.revision_id.clone());
                    let n = count.entry(target.clone()).or_insert(0);
                    let alive = s.retiring.is_none() && !s.inst.exited();
                    let keep = key == s.key && alive && *n < *requested;
                    if keep {
                        *n += 1;
                    }
                    keep
                }
                None => false,
            };
            if !keep {
                s.provisioned_for = None;
                s.idle_since = now;
            }
        }
        for st in self.starting.values_mut() {
            let Some(target) = st.provisioned_for.clone() else {
                continue;
            };
            match wanted.get(&target) {
                Some((f, requested, _))
                    if (f.name.clone(), f.version.clone(), f.revision_id.clone()) == st.key =>
                {
                    let n = count.entry(target).or_insert(0);
                    if *n < *requested {
                        *n += 1;
                    } else {
                        st.provisioned_for = None;
                    }
                }
                _ => st.provisioned_for = None,
            }
        }
        self.pool
            .provisioned_failed
            .retain(|k, (modified, _)| wanted.get(k).is_some_and(|w| &w.2 == modified));
        let mut budget = PROVISION_PER_TURN;
        let mut targets: Vec<_> = wanted.into_iter().collect();
        targets.sort_by(|a, b| a.0.cmp(&b.0));
        for (target, (f, requested, modified)) in targets {
            let have = count.get(&target).copied().unwrap_or(0);
            if have >= requested || self.pool.provisioned_failed.contains_key(&target) {
                continue;
            }
            if self
                .pool
                .init_failures
                .get(&f.name)
                .is_some_and(|&n| n >= CRASH_LOOP_FAILURES)
            {
                self.pool.provisioned_failed.insert(
                    target.clone(),
                    (
                        modified.clone(),
                        "FUNCTION_ERROR_INIT_FAILURE: the function's init failed \
                         repeatedly"
                            .into(),
                    ),
                );
                continue;
            }
            for _ in have..requested {
                if budget == 0 {
                    self.pool.provisioned_dirty = true;
                    return;
                }
                budget -= 1;
                let cfg = self.instance_config(&f, InitializationType::ProvisionedConcurrency);
                if self.make_room(cfg.memory_mb, &f.name).is_err() {
                    // Busy instances hold the budget: try again on a later turn.
                    break;
                }
                let key = (f.name.clone(), f.version.clone(), f.revision_id.clone());
                match self.start_instance(cfg, key, f.reserved_concurrency.is_some(), None) {
                    Ok(Claimed::Ready(slot, _)) => {
                        if let Some(s) = self.slots.get_mut(&slot) {
                            s.provisioned_for = Some(target.clone());
                        }
                    }
                    Ok(Claimed::Starting(slot)) => {
                        if let Some(s) = self.starting.get_mut(&slot) {
                            s.provisioned_for = Some(target.clone());
                        }
                    }
                    Err(e) => {
                        self.pool
                            .provisioned_failed
                            .insert(target.clone(), (modified.clone(), e.to_string()));
                        break;
                    }
                }
            }
        }
    }

    /// The live status of a provisioned request of `requested` instances.
    pub(super) fn provisioned_status(
        &self,
        function: &str,
        qualifier: &str,
        requested: u32,
    ) -> ProvisionedStatus {
        let target = (function.to_string(), qualifier.to_string());
        let mine = self
            .slots
            .values()
            .filter(|s| s.provisioned_for.as_ref() == Some(&target));
        let allocated = (mine.clone().count()
            + self
                .starting
                .values()
                .filter(|s| s.provisioned_for.as_ref() == Some(&target))
                .count()) as u32;
        let available = mine.filter(|s| !s.inst.is_initialising()).count() as u32;
        let (status, reason) = match self.pool.provisioned_failed.get(&target) {
            Some((_, why)) if available < requested => ("FAILED", Some(why.clone())),
            _ if available >= requested => ("READY", None),
            _ => ("IN_PROGRESS", None),
        };
        ProvisionedStatus {
            available: available.min(requested),
            allocated: allocated.min(requested),
            status,
            reason,
        }
    }

    /// Instance counts by state and the memory budget, for `/metrics`.
    pub(super) fn gauges(&self) -> super::metrics::Gauges {
        let mut g = super::metrics::Gauges::default();
        for s in self.slots.values() {
            if s.busy {
                g.busy += 1;
            } else if s.inst.is_initialising() {
                g.initialising += 1;
            } else if s.frozen {
                g.idle_frozen += 1;
            } else {
                g.idle_thawed += 1;
            }
        }
        g.initialising += self.starting.len() as u64;
        g.blank = self.blanks_ready() as u64;
        g.memory_budget_used_bytes = self.memory_used_mb() * 1024 * 1024;
        g.memory_budget_bytes = self.cfg.memory_budget_mb * 1024 * 1024;
        g
    }

    /// Blank sandboxes ready to be claimed.
    pub(super) fn blanks_ready(&self) -> usize {
        self.blanks.as_ref().map_or(0, |p| p.ready())
    }

    /// A blank sandbox, if one is ready (the pool's thread makes the next one).
    fn take_blank(&mut self) -> Option<crate::sandbox::Sandbox> {
        self.blanks.as_ref()?.take()
    }
}

/// Destroys removed instances off the event loop, one at a time, in order.
#[derive(Debug)]
pub struct Reaper {
    tx: Option<mpsc::Sender<(Remains, u64)>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Memory limits of the instances handed over and not yet destroyed (they still
    /// count against the budget).
    pending_mb: Arc<AtomicU64>,
}

impl Reaper {
    pub fn start(host: Arc<SandboxHost>) -> Reaper {
        let (tx, rx) = mpsc::channel::<(Remains, u64)>();
        let pending_mb = Arc::new(AtomicU64::new(0));
        let pending = pending_mb.clone();
        let thread = std::thread::Builder::new()
            .name("hearth-reaper".into())
            .spawn(move || {
                for (remains, mb) in rx {
                    remains.destroy(&host);
                    pending.fetch_sub(mb, Ordering::Relaxed);
                }
            })
            .ok();
        Reaper {
            tx: Some(tx),
            thread,
            pending_mb,
        }
    }

    /// Hands `remains` to the thread (or destroys them here if it could not start).
    pub fn destroy(&self, remains: Remains, memory_mb: u64, host: &SandboxHost) {
        self.pending_mb.fetch_add(memory_mb, Ordering::Relaxed);
        let sent = match (&self.tx, &self.thread) {
            (Some(tx), Some(_)) => tx.send((remains, memory_mb)).map_err(|e| e.0 .0),
            _ => Err(remains),
        };
        if let Err(remains) = sent {
            remains.destroy(host);
            self.pending_mb.fetch_sub(memory_mb, Ordering::Relaxed);
        }
    }

    pub fn pending_mb(&self) -> u64 {
        self.pending_mb.load(Ordering::Relaxed)
    }

    /// Waits until everything handed over is destroyed.
    pub fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
