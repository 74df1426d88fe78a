//! (4) The sandbox: creating, watching, and removing one isolated, limited process tree —
//! the privileged part of Hearth.
//!
//! [`SandboxHost`] holds what is decided once per process at start-up: the cgroup driver
//! (v2 or v1/hybrid, detected), the compiled seccomp policy, the scratch-volume store for
//! `/tmp`, and the staging directory for new roots. [`SandboxHost::create`] builds one
//! [`Sandbox`] from a [`SandboxSpec`] (the set-up order is in [`spawn`] and only there);
//! [`Sandbox::wait`] watches it; [`SandboxHost::destroy`] removes every trace of it.
//!
//! Blank sandboxes (ARCHITECTURE §4, layer 2): [`SandboxHost::create_blank`] builds a
//! sandbox without a function — namespaces, cgroup, `/tmp`, every mount but the code at
//! `/var/task`, the Runtime API listeners — whose init waits; [`SandboxHost::assign_blank`]
//! later gives it a function's memory limit, code, command, environment and stdio, and
//! from then on it is a sandbox like any other ([`assign`] has the hand-over's encoding
//! and compatibility rules, [`blank`] a pool that keeps blanks ready).
//!
//! Threads: [`SandboxHost`] is `Send + Sync` and a [`Sandbox`] is `Send`, so one thread
//! may create sandboxes while another uses them; see [`blank::BlankPool`] for the one
//! catch (the parent-death signal follows the creating *thread*).
//!
//! Names: every sandbox has a name `<kind>-<pid>-<starttime>` made from the owning
//! process's pid and start time, used for its cgroup and its scratch image, so that a
//! start-up [`SandboxHost::sweep`] can tell leftovers of a dead owner from live sandboxes
//! and remove only Hearth's own. [`reclaim::Keeper`] cleans up after an owner that is
//! SIGKILLed mid-run.
//!
//! Not here: HTTP, scheduling, pools of warm instances (later issues build on this handle).

pub mod assign;
pub mod blank;
pub mod caps;
pub mod cgroup;
pub mod freeze;
pub mod init;
pub mod listen;
pub mod mounts;
pub mod ns;
pub mod plan;
pub mod reclaim;
pub mod rlimits;
pub mod scratch;
pub mod seccomp;
pub mod spawn;
pub mod sync;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use self::assign::BlankShape;
use self::cgroup::{CgroupDriver, CgroupStats, Limits, SandboxCgroup};
pub use self::mounts::RootSource;
pub use self::plan::SandboxSpec;
use self::scratch::{ScratchStore, ScratchVolume};
use self::seccomp::SeccompPolicy;
use self::sync::{stamp, Message, STAMPS};
use crate::sys::process;

/// Where Hearth keeps its host-side state.
#[derive(Debug, Clone)]
pub struct HostPaths {
    /// Persistent state (scratch images live in `scratch/` below it).
    pub state_dir: PathBuf,
    /// Runtime files (the staging directory for new roots is `root/` below it).
    pub run_dir: PathBuf,
    /// The cgroup filesystem root (normally `/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// Hearth's parent cgroup under the root, in every hierarchy; `None` decides at
    /// start-up (`hearth` on v1; on v2 `<own cgroup>/sandboxes` when Hearth's own cgroup is
    /// delegated to it, else `hearth`; see `cgroup::v2::placement`).
    pub cgroup_parent: Option<String>,
}

impl HostPaths {
    /// The defaults, overridden by `HEARTH_STATE_DIR`, `HEARTH_RUN_DIR`,
    /// `HEARTH_CGROUP_ROOT` and `HEARTH_CGROUP_PARENT` where set (the daemon's typed
    /// configuration will fill the same struct).
    pub fn from_env() -> HostPaths {
        let mut p = HostPaths::default();
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(v) = var("HEARTH_STATE_DIR") {
            p.state_dir = PathBuf::from(v);
        }
        if let Some(v) = var("HEARTH_RUN_DIR") {
            p.run_dir = PathBuf::from(v);
        }
        if let Some(v) = var("HEARTH_CGROUP_ROOT") {
            p.cgroup_root = PathBuf::from(v);
        }
        if let Some(v) = var("HEARTH_CGROUP_PARENT") {
            p.cgroup_parent = Some(v.to_string_lossy().trim_matches('/').to_string());
        }
        p
    }
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            state_dir: PathBuf::from("/var/lib/hearth"),
            run_dir: PathBuf::from("/run/hearth"),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            cgroup_parent: None,
        }
    }
}

/// Errors of creating, watching or removing a sandbox (parent side).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    #[error(transparent)]
    Scratch(#[from] scratch::ScratchError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error(transparent)]
    Spawn(#[from] spawn::SpawnError),
    #[error("creating {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("waiting for sandbox {name}: {errno}")]
    Wait { name: String, errno: Errno },
    #[error(transparent)]
    ExecPlan(#[from] assign::AssignError),
    #[error("sandbox {name} is not a blank waiting for an assignment")]
    NotBlank { name: String },
    #[error("blank sandbox {name} does not fit the spec: {mismatch}")]
    BlankMismatch {
        name: String,
        mismatch: assign::Mismatch,
    },
    #[error("blank sandbox {name} did not get ready: {reason}")]
    BlankSetup { name: String, reason: String },
    #[error("blank sandbox {name} died while waiting for its assignment")]
    BlankGone { name: String },
    #[error("preparing {path} for /var/task: {errno}")]
    CodeTree { path: PathBuf, errno: Errno },
}

impl SandboxError {
    /// A short, stable name of the kind of failure (no names, paths or numbers), for
    /// logging a repeated failure once.
    pub fn kind(&self) -> &'static str {
        match self {
            SandboxError::Plan(_) => "plan",
            SandboxError::Cgroup(_) => "cgroup",
            SandboxError::Scratch(_) => "scratch volume",
            SandboxError::Seccomp(_) => "seccomp",
            SandboxError::Spawn(_) => "spawn",
            SandboxError::Dir { .. } => "directory",
            SandboxError::Wait { .. } => "wait",
            SandboxError::ExecPlan(_) => "exec plan",
            SandboxError::NotBlank { .. } => "not blank",
            SandboxError::BlankMismatch { .. } => "blank mismatch",
            SandboxError::BlankSetup { .. } => "blank set-up",
            SandboxError::BlankGone { .. } => "blank gone",
            SandboxError::CodeTree { .. } => "code tree",
        }
    }
}

/// What is decided once at start-up.
#[derive(Debug)]
pub struct SandboxHost {
    pub cgroups: Box<dyn CgroupDriver>,
    pub scratch: ScratchStore,
    pub seccomp: SeccompPolicy,
    staging: PathBuf,
}

/// Parent-side timestamps of one sandbox, `CLOCK_MONOTONIC` ns (0 = not reached).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeline {
    pub start: u64,
    pub scratch_done: u64,
    pub cgroup_done: u64,
    pub plan_done: u64,
    pub clone_start: u64,
    pub clone_done: u64,
    pub released: u64,
    /// (blank) [`SandboxHost::assign_blank`] began, and sent the assignment.
    pub assign_start: u64,
    pub assign_done: u64,
    /// Child-side stamps (see [`sync::stamp`]).
    pub child: [u64; STAMPS],
    pub exited: u64,
    pub teardown_done: u64,
}

impl Timeline {
    /// Step durations in microseconds, for `--timings-file` and the benchmark.
    pub fn steps_us(&self) -> Vec<(&'static str, f64)> {
        let d = |a: u64, b: u64| {
            if a == 0 || b == 0 || b < a {
                None
            } else {
                Some((b - a) as f64 / 1000.0)
            }
        };
        let c = &self.child;
        let forked_from = match c[stamp::ASSIGNED] {
            0 => c[stamp::RELEASED],
            assigned => assigned,
        };
        [
            ("scratch_us", d(self.start, self.scratch_done)),
            ("cgroup_us", d(self.scratch_done, self.cgroup_done)),
            ("plan_us", d(self.cgroup_done, self.plan_done)),
            ("clone_us", d(self.clone_start, self.clone_done)),
            ("namespaces_us", d(self.clone_done, c[stamp::NAMESPACES])),
            ("mounts_us", d(c[stamp::NAMESPACES], c[stamp::MOUNTS])),
            ("release_wait_us", d(c[stamp::MOUNTS], c[stamp::RELEASED])),
            ("assign_us", d(self.assign_start, self.assign_done)),
            ("code_mount_us", d(c[stamp::RELEASED], c[stamp::ASSIGNED])),
            ("fork_us", d(forked_from, c[stamp::FORKED])),
            ("privileges_us", d(c[stamp::FORKED], c[stamp::PRIVILEGES])),
            ("seccomp_us", d(c[stamp::PRIVILEGES], c[stamp::SECCOMP])),
            ("exec_us", d(c[stamp::SECCOMP], c[stamp::EXECED])),
            ("command_us", d(c[stamp::EXECED], self.exited)),
            ("teardown_us", d(self.exited, self.teardown_done)),
            ("total_us", d(self.start, self.teardown_done)),
            // Cold starts to the command's execve: from create (the spawn path; for a
            // blank this includes its wait for the assignment), and from assign_blank.
            ("start_to_exec_us", d(self.start, c[stamp::EXECED])),
            ("assign_to_exec_us", d(self.assign_start, c[stamp::EXECED])),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }
}

/// How long a sandbox's init may take to report (a blank ready, a set-up failure) before
/// the creation gives up. A bound for hung set-ups, not a speed target: a blank is ready in
/// milliseconds on a host, but under full emulation (the CI's cgroup v2 guest, two tests
/// at once) it once took more than 10 s.
pub const REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One live sandbox (parent side).
#[derive(Debug)]
pub struct Sandbox {
    pub name: String,
    pub pid: i32,
    pidfd: OwnedFd,
    channel: OwnedFd,
    reaped: bool,
    cgroup: Option<SandboxCgroup>,
    volume: Option<ScratchVolume>,
    pub timeline: Timeline,
    /// The command's exit as init reported it (raw wait status).
    pub status: Option<i32>,
    /// Set-up failure as init reported it.
    pub failure: Option<Failure>,
    /// Whether `execve` succeeded.
    pub started: bool,
    /// Kept to name a failed mount step in the error message.
    plan_mounts: Vec<mounts::MountOp>,
    /// The Runtime API listeners init created in the sandbox's network namespace (for a
    /// spec with `runtime_api`), until the caller takes them.
    runtime_api: Option<RuntimeApiListeners>,
    memory_mb: u64,
    /// Running on a larger CPU share than its own (`SandboxSpec::cpu_boost_mb`).
    cpu_boosted: bool,
    /// A blank waiting for its assignment: what it was built with.
    blank: Option<BlankShape>,
    /// (blank) Init reported it waits for the assignment.
    ready: bool,
    /// The cgroup's peak-memory file, opened at the first [`SandboxHost::memory_peak`].
    peak_file: std::cell::OnceCell<Option<std::fs::File>>,
}

/// The Runtime API listeners of one sandbox, bound inside its network namespace
/// ([`listen`]), blocking mode as created.
#[derive(Debug)]
pub struct RuntimeApiListeners {
    /// `127.0.0.1:9001` in the sandbox.
    pub tcp: std::net::TcpListener,
    /// The abstract socket `@hearth/runtime-api` in the sandbox.
    pub unix: std::os::unix::net::UnixListener,
}

/// A set-up failure inside the sandbox, before the command ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A set-up step failed.
    Setup { step: String, errno: Errno },
    /// `execve` failed for every candidate.
    Exec { command: String, errno: Errno },
}

/// How [`Sandbox::wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEnd {
    /// Init exited (the command finished, or set-up failed).
    Exited,
    /// The deadline passed; init was killed.
    TimedOut,
}

/// Final figures of a removed sandbox.
#[derive(Debug, Clone, Default)]
pub struct Teardown {
    pub stats: CgroupStats,
    pub timeline: Timeline,
}

impl SandboxHost {
    /// Detects the cgroup mode, compiles the seccomp policy, opens the scratch store and
    /// makes the staging directory.
    pub fn open(paths: &HostPaths) -> Result<SandboxHost, SandboxError> {
        let cgroups = cgroup::open_driver(&paths.cgroup_root, paths.cgroup_parent.as_deref())?;
        let seccomp = SeccompPolicy::compile()?;
        let scratch = ScratchStore::open(&paths.state_dir.join("scratch"))?;
        let staging = paths.run_dir.join("root");
        mkdir_private(&paths.run_dir)?;
        mkdir_private(&staging)?;
        Ok(SandboxHost {
            cgroups,
            scratch,
            seccomp,
            staging,
        })
    }

    /// Builds and starts one sandbox. On failure, whatever was created is removed.
    pub fn create(&self, name: &str, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        plan::validate(spec)?;
        self.create_any(name, spec, false)
    }

    /// Builds a blank sandbox from the template `spec` (its `argv`, `env`, `code`, `stdio`
    /// and `cpu_boost_mb` are ignored): every set-up step up to the release — `/tmp`,
    /// `/var/runtime`, the Runtime API listeners (take them with
    /// [`Sandbox::take_runtime_api`] as after [`SandboxHost::create`]), an empty
    /// `/var/task`, a cgroup limited to `spec.memory_mb` as a placeholder — with init
    /// waiting for [`SandboxHost::assign_blank`]. Returns once init reports it waits, so a
    /// set-up failure is this call's error. On failure, whatever was created is removed.
    pub fn create_blank(&self, name: &str, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        plan::validate_limits(spec)?;
        let mut sb = self.create_any(name, spec, true)?;
        sb.await_reports(|sb| sb.ready);
        if sb.ready && sb.failure.is_none() {
            return Ok(sb);
        }
        let reason = match &sb.failure {
            Some(Failure::Setup { step, errno }) => format!("{step}: {errno}"),
            Some(Failure::Exec { errno, .. }) => format!("exec: {errno}"),
            None => format!(
                "init exited or did not report within {} s",
                REPORT_TIMEOUT.as_secs()
            ),
        };
        let name = sb.name.clone();
        let _ = self.destroy(sb);
        Err(SandboxError::BlankSetup { name, reason })
    }

    /// Gives the blank `sb` the function of `spec`: its memory limit and CPU share
    /// (`cpu_boost_mb` as in [`SandboxHost::create`]), its code read-only at `/var/task`,
    /// its command, environment and stdio; init then starts the command exactly as a
    /// released sandbox does, and `sb` behaves as one [`SandboxHost::create`] returned
    /// (reports, [`Sandbox::wait`], [`SandboxHost::destroy`]).
    ///
    /// `spec` must fit the blank ([`assign::BlankShape::check`]). A refusal of the spec —
    /// [`SandboxError::NotBlank`], [`SandboxError::BlankMismatch`], [`SandboxError::Plan`],
    /// [`SandboxError::ExecPlan`], [`SandboxError::CodeTree`] — leaves the blank as it was;
    /// after any other error it must be destroyed.
    pub fn assign_blank(&self, sb: &mut Sandbox, spec: &SandboxSpec) -> Result<(), SandboxError> {
        let assign_start = process::monotonic_ns();
        let Some(shape) = &sb.blank else {
            return Err(SandboxError::NotBlank {
                name: sb.name.clone(),
            });
        };
        if let Err(mismatch) = shape.check(spec) {
            return Err(SandboxError::BlankMismatch {
                name: sb.name.clone(),
                mismatch,
            });
        }
        plan::validate(spec)?;
        let exec = plan::exec_plan(spec, plan::CWD)?;
        let bytes = assign::encode(&exec)?;
        let code = match &spec.code {
            Some(dir) => Some(code_tree(dir)?),
            None => None,
        };
        if sb.poll_reports() {
            return Err(SandboxError::BlankGone {
                name: sb.name.clone(),
            });
        }
        // From here on the blank changes.
        if let Some(cg) = &sb.cgroup {
            self.cgroups.set_memory_limit(cg, spec.memory_mb)?;
            let boost = spec.cpu_boost_mb.filter(|&mb| mb > spec.memory_mb);
            self.cgroups
                .set_cpu_share(cg, boost.unwrap_or(spec.memory_mb))?;
            sb.memory_mb = spec.memory_mb;
            sb.cpu_boosted = boost.is_some();
        }
        spawn::assign(
            sb.channel.as_fd(),
            code.as_ref().map(|c| c.as_fd()),
            spec.stdio,
            &bytes,
        )?;
        drop(code);
        sb.blank = None;
        sb.timeline.assign_start = assign_start;
        sb.timeline.assign_done = process::monotonic_ns();
        Ok(())
    }

    fn create_any(
        &self,
        name: &str,
        spec: &SandboxSpec,
        blank: bool,
    ) -> Result<Sandbox, SandboxError> {
        let mut t = Timeline {
            start: process::monotonic_ns(),
            ..Timeline::default()
        };
        let volume = self.scratch.create(name, spec.tmp_mb)?;
        t.scratch_done = process::monotonic_ns();
        let cleanup_volume = |v: ScratchVolume| {
            let _ = v.release();
        };
        let limits = Limits {
            memory_mb: spec.memory_mb,
            pids: spec.pids,
        };
        let cg = match self.create_cgroup(name, &limits) {
            Ok(cg) => cg,
            Err(e) => {
                cleanup_volume(volume);
                return Err(e.into());
            }
        };
        t.cgroup_done = process::monotonic_ns();
        let fail = |e: SandboxError, cg: SandboxCgroup, v: ScratchVolume| {
            let _ = self.cgroups.remove(cg);
            cleanup_volume(v);
            Err(e)
        };
        let boosted = spec
            .cpu_boost_mb
            .filter(|&mb| mb > spec.memory_mb && !blank);
        if let Some(mb) = boosted {
            if let Err(e) = self.cgroups.set_cpu_share(&cg, mb) {
                return fail(e.into(), cg, volume);
            }
        }
        let cg_fd = match self.cgroups.clone_into_fd(&cg) {
            Ok(fd) => fd,
            Err(e) => return fail(e.into(), cg, volume),
        };
        let build = if blank {
            plan::build_blank
        } else {
            plan::build
        };
        let plan = match build(spec, &self.staging, Some(&volume), cg_fd.is_some()) {
            Ok(p) => p,
            Err(e) => return fail(e.into(), cg, volume),
        };
        t.plan_done = process::monotonic_ns();
        let join_fds = match cg_fd {
            Some(_) => Vec::new(),
            None => match self.cgroups.self_join_fds(&cg) {
                Ok(fds) => fds,
                Err(e) => return fail(e.into(), cg, volume),
            },
        };
        let join: Vec<_> = join_fds.iter().map(|f| f.as_fd()).collect();
        let spawned = match spawn::spawn(
            &plan,
            &self.seccomp,
            cg_fd.as_ref().map(|f| f.as_fd()),
            &join,
        ) {
            Ok(s) => s,
            Err(e) => return fail(e.into(), cg, volume),
        };
        drop(join);
        drop(join_fds);
        drop(cg_fd);
        t.clone_start = spawned.clone_start_ns;
        t.clone_done = spawned.clone_done_ns;
        t.released = spawned.released_ns;
        // Kept only to name a failed step: the contents of the minimal /etc's files
        // (~130 KB of the host's ld.so.cache, services, mime.types) go now, or every live
        // sandbox would hold a copy in the daemon.
        let mut plan_mounts = plan.mounts;
        for op in &mut plan_mounts {
            if let mounts::MountOp::WriteFile { contents, .. } = op {
                *contents = Vec::new();
            }
        }
        let mut sb = Sandbox {
            name: name.to_string(),
            pid: spawned.pid,
            pidfd: spawned.pidfd,
            channel: spawned.channel,
            reaped: false,
            cgroup: Some(cg),
            volume: Some(volume),
            timeline: t,
            status: None,
            failure: None,
            started: false,
            plan_mounts,
            runtime_api: None,
            memory_mb: spec.memory_mb,
            cpu_boosted: boosted.is_some(),
            blank: blank.then(|| BlankShape::of(spec)),
            ready: false,
            peak_file: std::cell::OnceCell::new(),
        };
        if spec.runtime_api {
            // Init sends the listeners as its first message, right after `lo` is up; a
            // set-up failure before that arrives instead and is left for `wait`.
            sb.await_reports(|sb| sb.runtime_api.is_some());
        }
        Ok(sb)
    }

    /// Creates the sandbox's cgroup under Hearth's parent. Another `hearth run` that just
    /// finished may remove the (then empty) parent at any moment between our first look at
    /// it and our `mkdir`; that shows as `ENOENT` somewhere in the sequence, and the whole
    /// sequence is retried.
    fn create_cgroup(
        &self,
        name: &str,
        limits: &Limits,
    ) -> Result<SandboxCgroup, cgroup::CgroupError> {
        const ATTEMPTS: usize = 20;
        let mut attempt = 1;
        loop {
            let result = self
                .cgroups
                .ensure_parent()
                .and_then(|()| self.cgroups.create(name, limits));
            match result {
                Err(e) if e.is_not_found() && attempt < ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }

    /// Kills whatever is left, reaps init, reads the cgroup's figures, and removes the
    /// cgroup and the scratch volume. Every step is attempted even if one fails; the first
    /// error is returned.
    pub fn destroy(&self, mut sb: Sandbox) -> Result<Teardown, SandboxError> {
        sb.kill();
        sb.reap();
        let mut first_err: Option<SandboxError> = None;
        let mut teardown = Teardown::default();
        if let Some(cg) = sb.cgroup.take() {
            match self.cgroups.stats(&cg) {
                Ok(s) => teardown.stats = s,
                Err(e) => first_err = first_err.or(Some(e.into())),
            }
            if let Err(e) = self.cgroups.remove(cg) {
                first_err = first_err.or(Some(e.into()));
            }
        }
        if let Some(v) = sb.volume.take() {
            if let Err(e) = v.release() {
                first_err = first_err.or(Some(e.into()));
            }
        }
        sb.timeline.teardown_done = process::monotonic_ns();
        teardown.timeline = sb.timeline;
        match first_err {
            Some(e) => Err(e),
            None => Ok(teardown),
        }
    }

    /// Drops a sandbox started with `cpu_boost_mb` to its own CPU share. Idempotent.
    pub fn end_cpu_boost(&self, sb: &mut Sandbox) -> Result<(), SandboxError> {
        if sb.cpu_boosted {
            if let Some(cg) = &sb.cgroup {
                self.cgroups.set_cpu_share(cg, sb.memory_mb)?;
            }
            sb.cpu_boosted = false;
        }
        Ok(())
    }

    /// The cgroup figures of a live (or exited, not yet destroyed) sandbox: peak memory,
    /// OOM kills. `None` if they cannot be read.
    pub fn cgroups_stats(&self, sb: &Sandbox) -> Option<CgroupStats> {
        self.cgroups.stats(sb.cgroup.as_ref()?).ok()
    }

    /// The sandbox's peak memory in bytes (Lambda's "Max Memory Used" covers the
    /// instance's whole life), read through a descriptor kept open: it is read after
    /// every invocation. `None` if the kernel lacks the file or it cannot be read.
    pub fn memory_peak(&self, sb: &Sandbox) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let file = sb
            .peak_file
            .get_or_init(|| {
                let cg = sb.cgroup.as_ref()?;
                std::fs::File::open(self.cgroups.memory_peak_path(cg)).ok()
            })
            .as_ref()?;
        let mut buf = [0u8; 32];
        let n = file.read_at(&mut buf, 0).ok()?;
        std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
    }

    /// Removes leftovers of earlier owners that are no longer alive: their cgroups and
    /// scratch images. Only names Hearth makes (`<kind>-<pid>-<starttime>`) are touched,
    /// and only those whose owner is gone. Returns the names removed.
    pub fn sweep(&self) -> Vec<String> {
        let mut removed = Vec::new();
        let mut names = self.cgroups.list().unwrap_or_default();
        names.extend(self.scratch.list());
        names.sort();
        names.dedup();
        for name in names {
            if reclaim::owner_alive(&name) != Some(false) {
                continue;
            }
            let _ = self.cgroups.remove_by_name(&name);
            let _ = self.scratch.remove_stale(&name);
            removed.push(name);
        }
        removed
    }
}

/// The function's code as a detached, read-only (nosuid, nodev), private copy of its
/// mount tree, for a blank's init to attach at /var/task.
fn code_tree(dir: &Path) -> Result<OwnedFd, SandboxError> {
    use std::os::unix::ffi::OsStrExt;
    if !dir.is_dir() {
        return Err(plan::PlanError::Mounts(mounts::MountsError::Code {
            path: dir.to_path_buf(),
            reason: "not a directory".into(),
        })
        .into());
    }
    let err = |errno| SandboxError::CodeTree {
        path: dir.to_path_buf(),
        errno,
    };
    let path =
        std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| err(Errno::EINVAL))?;
    let tree = crate::sys::mount::open_tree_clone(&path).map_err(err)?;
    crate::sys::mount::make_private_read_only(tree.as_raw_fd()).map_err(err)?;
    Ok(tree)
}

fn mkdir_private(path: &Path) -> Result<(), SandboxError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => Ok(()),
        Err(source) => Err(SandboxError::Dir {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl Sandbox {
    /// Sends `sig` to init (which forwards TERM, INT, HUP, QUIT, USR1 and USR2 to the
    /// command). `ESRCH` (already gone) is not an error.
    pub fn signal(&self, sig: libc::c_int) {
        let _ = process::pidfd_send_signal(self.pidfd.as_raw_fd(), sig);
    }

    /// SIGKILL to init: the kernel then kills every process of the pid namespace.
    pub fn kill(&self) {
        if !self.reaped {
            self.signal(libc::SIGKILL);
        }
    }

    fn reap(&mut self) {
        if !self.reaped {
            while let Err(Errno::EINTR) = waitpid(Pid::from_raw(self.pid), None) {}
            self.reaped = true;
            if self.timeline.exited == 0 {
                self.timeline.exited = process::monotonic_ns();
            }
        }
    }

    fn handle(&mut self, msg: Message, fds: Vec<OwnedFd>) {
        match msg {
            Message::Listeners => {
                if let Ok([tcp, unix]) = <[OwnedFd; 2]>::try_from(fds) {
                    self.runtime_api = Some(RuntimeApiListeners {
                        tcp: tcp.into(),
                        unix: unix.into(),
                    });
                }
            }
            Message::Started { stamps } => {
                self.started = true;
                self.timeline.child = stamps;
            }
            Message::Exited { status } => self.status = Some(status),
            Message::SetupFailed { step, errno } => {
                let step = if step >= spawn::MOUNT_BASE {
                    let i = (step - spawn::MOUNT_BASE) as usize;
                    self.plan_mounts
                        .get(i)
                        .map(mounts::MountOp::describe)
                        .unwrap_or_else(|| format!("mount step {i}"))
                } else {
                    spawn::Step::from_code(step)
                        .map(|s| s.describe().to_string())
                        .unwrap_or_else(|| format!("step {step}"))
                };
                self.failure = Some(Failure::Setup {
                    step,
                    errno: Errno::from_raw(errno),
                });
            }
            Message::ExecFailed { errno } => {
                self.failure = Some(Failure::Exec {
                    command: String::new(),
                    errno: Errno::from_raw(errno),
                })
            }
            Message::Ready => self.ready = true,
            Message::Release | Message::Assign { .. } => {}
        }
    }

    /// Reads init's reports until `done` holds, init goes quiet for good (end of file, an
    /// error) or 10 s pass. Init's steps before the reports awaited here never block, so
    /// the bound is only a guard.
    fn await_reports(&mut self, done: fn(&Sandbox) -> bool) {
        let deadline = Instant::now() + REPORT_TIMEOUT;
        while !done(self) && self.failure.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            if ms == 0 {
                return;
            }
            let mut fds = [PollFd::new(self.channel.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(n) if n > 0 => {}
                Err(Errno::EINTR) => continue,
                _ => return,
            }
            match sync::recv_message_fds(self.channel.as_fd()) {
                Ok(Some((msg, fds))) => self.handle(msg, fds),
                _ => return,
            }
        }
    }

    /// Whether this is a blank still waiting for [`SandboxHost::assign_blank`].
    pub fn is_blank(&self) -> bool {
        self.blank.is_some()
    }

    fn drain_channel(&mut self) {
        loop {
            let mut fds = [PollFd::new(self.channel.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(n) if n > 0 => {}
                _ => return,
            }
            match sync::recv_message_fds(self.channel.as_fd()) {
                Ok(Some((m, fds))) => self.handle(m, fds),
                _ => return,
            }
        }
    }

    /// Waits until init exits or `deadline` passes (then kills it). Signals arriving on
    /// `signals` (a signalfd) are forwarded to init. Returns how the wait ended.
    pub fn wait(
        &mut self,
        deadline: Option<Instant>,
        signals: Option<&nix::sys::signalfd::SignalFd>,
    ) -> Result<WaitEnd, SandboxError> {
        let mut timed_out = false;
        loop {
            let timeout = match deadline {
                Some(d) if !timed_out => {
                    let left = d.saturating_duration_since(Instant::now());
                    PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32 + 1)
                        .unwrap_or(PollTimeout::MAX)
                }
                _ => PollTimeout::NONE,
            };
            let mut fds = vec![
                PollFd::new(self.channel.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN),
            ];
            if let Some(sfd) = signals {
                fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
            }
            let n = match poll(&mut fds, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    return Err(SandboxError::Wait {
                        name: self.name.clone(),
                        errno,
                    })
                }
            };
            let ready = |i: usize, fds: &[PollFd]| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (chan_ready, init_done, sig_ready) =
                (ready(0, &fds), ready(1, &fds), ready(2, &fds));
            drop(fds);
            if n == 0 {
                if let Some(d) = deadline {
                    if !timed_out && Instant::now() >= d {
                        timed_out = true;
                        self.kill();
                    }
                }
                continue;
            }
            if chan_ready {
                self.drain_channel();
            }
            if sig_ready {
                if let Some(sfd) = signals {
                    if let Ok(Some(info)) = sfd.read_signal() {
                        self.signal(info.ssi_signo as libc::c_int);
                    }
                }
            }
            if init_done {
                self.drain_channel();
                self.reap();
                return Ok(if timed_out {
                    WaitEnd::TimedOut
                } else {
                    WaitEnd::Exited
                });
            }
        }
    }

    /// The Runtime API listeners, once (for a spec with `runtime_api`; `None` if set-up
    /// failed before init created them).
    pub fn take_runtime_api(&mut self) -> Option<RuntimeApiListeners> {
        self.runtime_api.take()
    }

    /// The pidfd of the sandbox's init: readable once init has exited (for event loops).
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// The parent's end of the init channel: readable when init reports (for event loops;
    /// then call [`Sandbox::poll_reports`]).
    pub fn channel(&self) -> BorrowedFd<'_> {
        self.channel.as_fd()
    }

    /// Reads every pending report of init without blocking (`Started`, `Exited`, set-up
    /// failures); reaps init if it has exited. Returns whether init is gone.
    pub fn poll_reports(&mut self) -> bool {
        self.drain_channel();
        let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
        if matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
            self.drain_channel();
            self.reap();
            return true;
        }
        self.reaped
    }

    /// Reads every pending report of init without blocking, and nothing else: the
    /// `Started` stamps may still be queued when a fast runtime has already answered.
    pub fn read_reports(&mut self) {
        self.drain_channel();
    }

    /// Marks the exec failure with the command's name (init only knows the errno).
    pub fn set_command_name(&mut self, command: &str) {
        if let Some(Failure::Exec { command: c, .. }) = &mut self.failure {
            *c = command.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_shared_between_threads_and_sandboxes_move() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<SandboxHost>();
        send::<Sandbox>();
    }

    #[test]
    fn blank_timelines_show_the_assignment() {
        let mut t = Timeline {
            assign_start: 1_000_000,
            assign_done: 1_050_000,
            ..Timeline::default()
        };
        t.child[stamp::RELEASED] = 1_060_000;
        t.child[stamp::ASSIGNED] = 1_100_000;
        t.child[stamp::FORKED] = 1_200_000;
        t.child[stamp::EXECED] = 1_500_000;
        let steps: std::collections::HashMap<_, _> = t.steps_us().into_iter().collect();
        assert_eq!(steps["assign_us"], 50.0);
        assert_eq!(steps["code_mount_us"], 40.0);
        assert_eq!(steps["fork_us"], 100.0);
        assert_eq!(steps["assign_to_exec_us"], 500.0);
        // A sandbox that was released forks from the release.
        let mut t = Timeline::default();
        t.child[stamp::RELEASED] = 10_000;
        t.child[stamp::FORKED] = 30_000;
        let steps: std::collections::HashMap<_, _> = t.steps_us().into_iter().collect();
        assert_eq!(steps["fork_us"], 20.0);
        assert!(!steps.contains_key("assign_us"));
    }
}
