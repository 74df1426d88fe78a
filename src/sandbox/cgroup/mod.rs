//! The sandbox's cgroup: one cgroup per sandbox under Hearth's own parent cgroup, with the
//! memory, pids and CPU limits written before any process joins, peak-memory and OOM-kill
//! counters for the REPORT line, freeze/thaw for idle warm sandboxes, and a kill of the
//! whole cgroup that a fork loop cannot outrun.
//!
//! [`CgroupDriver`] is the one interface; [`open_driver`] picks the implementation once at
//! start-up from [`detect::detect`]: [`v2::V2Driver`] on a unified (pure cgroup v2) host,
//! the primary design, and [`v1::V1Driver`] on hybrid and legacy hosts. Every driver takes
//! the cgroup root as a parameter, so unit tests run against a temporary directory of fake
//! control files; the root-only tests at the bottom of each file run on the real host.
//!
//! What Hearth writes: only inside its parent cgroup (`<root>/<parent>`, one per v1
//! hierarchy). It creates the parent's last path component if missing and, on v2, enables
//! `memory pids cpu` in the parent's `cgroup.subtree_control`. It never writes above the
//! parent: if the cgroup above does not delegate the controllers, the error says so.
//! Nothing is removed by `Drop`: removal is explicit ([`CgroupDriver::remove`]) so that a
//! failure is reported, and a start-up sweep ([`CgroupDriver::list`] +
//! [`CgroupDriver::remove_by_name`]) clears leftovers of a crashed run.
//!
//! Not done here: choosing names, deciding when to freeze or kill (that is the pool and the
//! reaper), entering the cgroup at clone time (`spawn.rs` passes the fd from
//! [`CgroupDriver::clone_into_fd`] to `clone3`), the cgroup namespace (`ns.rs`).
//!
//! Limits: every wait is bounded (freeze [`FREEZE_TIMEOUT`], kill [`KILL_TIMEOUT`], rmdir
//! on `EBUSY` [`RMDIR_TIMEOUT`]); waits poll the control files with a backoff from 200 µs
//! to 20 ms rather than using inotify/poll on `cgroup.events`, which keeps the drivers plain
//! file I/O.
//!
//! Why not the `cgroups-rs` crate (its 0.5.x source, `fs/hierarchies.rs` and
//! `fs/memory.rs`): its v2 hierarchy is hard-wired to `/sys/fs/cgroup`
//! (`UNIFIED_MOUNTPOINT`) and its v1 hierarchies are found from `/proc/self/mountinfo`, so
//! neither can run against the temp-dir fake roots our unit tests need; it offers no
//! `CLONE_INTO_CGROUP` directory fd; it reads `memory.peak` as 0 when the file is absent
//! (we must tell "absent" from 0) and parses `memory.oom_control` positionally with
//! `unwrap()`, which would panic the daemon on an unexpected file. Its `auto()` drives a
//! hybrid host as v1, as we do, so that was not the obstacle. What we need is a few dozen
//! lines of file writes per driver, which the crate's weight (and its `log` dependency)
//! would not shorten.

pub mod detect;
pub mod v1;
pub mod v2;

use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub use detect::{detect, CgroupMode};
pub use v1::V1Driver;
pub use v2::V2Driver;

/// Memory that buys one full vCPU on Lambda (1,769 MB); CPU quota is proportional to it.
pub const MB_PER_CPU: u64 = 1769;
/// CFS period for the CPU quota, in µs (the kernel default).
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kernel accepts, in µs (1 ms).
pub const MIN_CPU_QUOTA_US: u64 = 1000;
/// How long a freeze may take before it is undone and reported.
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the processes of a killed cgroup may take to leave it.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `rmdir` is retried while the kernel still reports `EBUSY`.
pub const RMDIR_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest cgroup name component accepted (well under `NAME_MAX`).
pub const MAX_NAME_LEN: usize = 128;

const BYTES_PER_MB: u64 = 1024 * 1024;

/// The limits of one sandbox. CPU is derived from memory (see [`cpu_quota_us`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory limit in MiB, written exactly (`memory_mb * 1024 * 1024` bytes); swap is off.
    pub memory_mb: u64,
    /// Maximum number of tasks (processes and threads) in the cgroup.
    pub pids: u64,
}

impl Limits {
    /// The memory limit in bytes, after checking that both limits are usable.
    pub fn memory_bytes(&self) -> Result<u64, CgroupError> {
        let invalid = |reason| CgroupError::InvalidLimits {
            memory_mb: self.memory_mb,
            pids: self.pids,
            reason,
        };
        if self.memory_mb == 0 {
            return Err(invalid("memory must be at least 1 MB"));
        }
        if self.pids == 0 {
            return Err(invalid("pids must be at least 1"));
        }
        self.memory_mb
            .checked_mul(BYTES_PER_MB)
            .ok_or_else(|| invalid("memory in bytes overflows u64"))
    }
}

/// Counters read from a sandbox's cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Highest memory use since the cgroup was created (v2 `memory.peak`, v1
    /// `memory.max_usage_in_bytes`); `None` where the kernel lacks it (v2 before 5.19).
    /// It covers the sandbox's whole life, warm invocations included, like Lambda's
    /// "Max Memory Used".
    pub memory_peak_bytes: Option<u64>,
    /// Processes killed by the OOM killer in this cgroup (see each driver for the source).
    pub oom_kills: u64,
    /// Memory in use now (v2 `memory.current`, v1 `memory.usage_in_bytes`).
    pub memory_current_bytes: Option<u64>,
}

/// A sandbox's cgroup: its name and its directory in every hierarchy written.
///
/// A plain handle: dropping it removes nothing (removal can fail, and a failure must be
/// reported, so it is the explicit [`CgroupDriver::remove`]).
#[derive(Debug)]
pub struct SandboxCgroup {
    name: String,
    /// One directory per hierarchy (one on v2; memory, pids, cpu, freezer on v1).
    dirs: Vec<PathBuf>,
    /// The directory whose `cgroup.procs` lists the sandbox's processes (on v1 the freezer
    /// hierarchy's, the one used to stop and kill them).
    procs_dir: PathBuf,
}

impl SandboxCgroup {
    fn new(name: &str, dirs: Vec<PathBuf>, procs_dir: PathBuf) -> Self {
        Self {
            name: name.to_owned(),
            dirs,
            procs_dir,
        }
    }

    /// The name given to [`CgroupDriver::create`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cgroup's directory in every hierarchy.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The directory whose `cgroup.procs` lists the sandbox's processes.
    pub fn procs_dir(&self) -> &Path {
        &self.procs_dir
    }
}

/// One way of driving cgroups (v2, or v1/hybrid), chosen once by [`open_driver`].
pub trait CgroupDriver: std::fmt::Debug + Send + Sync {
    /// `"v2"` or `"v1"` (hybrid hosts are driven as v1).
    fn mode_name(&self) -> &'static str;

    /// Creates Hearth's parent cgroup if missing (only its last path component) and makes
    /// the controllers usable in its children. v2: enables `+memory +pids +cpu` in the
    /// parent's `cgroup.subtree_control`. Fails, naming the file, if the cgroup above does
    /// not delegate a controller: Hearth never writes above its own parent.
    fn ensure_parent(&self) -> Result<(), CgroupError>;

    /// Creates the sandbox cgroup `name` under the parent (in every hierarchy) and writes
    /// all limits before returning, so they hold before any process joins. On failure,
    /// whatever was created is removed again and the first error is returned. A cgroup of
    /// that name that already exists is an error and is left alone.
    fn create(&self, name: &str, limits: &Limits) -> Result<SandboxCgroup, CgroupError>;

    /// v2: an `O_PATH | O_DIRECTORY | O_CLOEXEC` fd of the cgroup directory, for `clone3`
    /// with `CLONE_INTO_CGROUP` (the child is born inside the cgroup). v1: `None`; use
    /// [`CgroupDriver::attach`] before releasing the child.
    fn clone_into_fd(
        &self,
        cg: &SandboxCgroup,
    ) -> Result<Option<std::os::fd::OwnedFd>, CgroupError>;

    /// Moves process `pid` (with all its threads) into the cgroup in every hierarchy.
    fn attach(&self, cg: &SandboxCgroup, pid: i32) -> Result<(), CgroupError>;

    /// v1: write-only fds of the cgroup's `tasks` file in every hierarchy, through which a
    /// single-threaded child moves itself by writing `0`. The kernel skips the global
    /// threadgroup rwsem for a thread moving itself (`cgroup_procs_write_start`), whereas
    /// moving another process by pid (`attach`) takes it for writing and, on an idle host,
    /// waits for an RCU grace period (5–20 ms measured here). v2: empty (the child is
    /// cloned straight into its cgroup).
    fn self_join_fds(&self, cg: &SandboxCgroup) -> Result<Vec<std::os::fd::OwnedFd>, CgroupError>;

    /// Rewrites the CPU quota to that of a `memory_mb` sandbox ([`cpu_quota_us`]): lets a
    /// sandbox start with a larger share (its init phase) and settle to its own later.
    fn set_cpu_share(&self, cg: &SandboxCgroup, memory_mb: u64) -> Result<(), CgroupError>;

    /// Rewrites the memory limit to exactly `memory_mb` MiB; swap stays off. A blank
    /// sandbox is created with a placeholder limit and gets its function's when it is
    /// assigned, before the function's process exists. v1 keeps
    /// `memory.memsw.limit_in_bytes` ≥ `memory.limit_in_bytes` at every moment (the kernel
    /// refuses a write that breaks it): raising writes memsw first, lowering the limit
    /// first. The CPU share is [`CgroupDriver::set_cpu_share`]'s.
    fn set_memory_limit(&self, cg: &SandboxCgroup, memory_mb: u64) -> Result<(), CgroupError>;

    /// Reads peak memory, OOM kills and current memory.
    fn stats(&self, cg: &SandboxCgroup) -> Result<CgroupStats, CgroupError>;

    /// The file that holds the cgroup's peak memory in bytes (v2 `memory.peak`, v1
    /// `memory.max_usage_in_bytes`), for a caller that keeps it open and re-reads it
    /// after every invocation instead of opening three files each time.
    fn memory_peak_path(&self, cg: &SandboxCgroup) -> PathBuf;

    /// Freezes every process of the cgroup and waits (bounded) until the kernel reports the
    /// cgroup frozen; on timeout the freeze is undone and an error returned.
    fn freeze(&self, cg: &SandboxCgroup) -> Result<(), CgroupError>;

    /// Thaws the cgroup and waits (bounded) until the kernel reports it thawed.
    fn thaw(&self, cg: &SandboxCgroup) -> Result<(), CgroupError>;

    /// Sends SIGKILL to every process of the cgroup in a way a fork loop cannot escape and
    /// waits (bounded by [`KILL_TIMEOUT`]) until the cgroup is empty. The killed processes
    /// still need reaping by their parents; zombies do not keep a cgroup populated.
    fn kill_all(&self, cg: &SandboxCgroup) -> Result<(), CgroupError>;

    /// Kills what is left in the cgroup, then removes its directory in every hierarchy
    /// (retrying `EBUSY` for up to [`RMDIR_TIMEOUT`]). A directory already gone counts as
    /// removed. Every directory is attempted; the first error is returned, and whatever
    /// remains can be retried with [`CgroupDriver::remove_by_name`].
    fn remove(&self, cg: SandboxCgroup) -> Result<(), CgroupError>;

    /// Names of the cgroups under Hearth's parent (union over hierarchies, sorted), for the
    /// start-up sweep of leftovers. Names that are not UTF-8 are skipped (Hearth never
    /// creates them). A missing parent lists as empty.
    fn list(&self) -> Result<Vec<String>, CgroupError>;

    /// [`CgroupDriver::remove`] for a cgroup known only by name (the start-up sweep).
    fn remove_by_name(&self, name: &str) -> Result<(), CgroupError>;

    /// Removes Hearth's parent cgroup in every hierarchy if it is empty. `EBUSY` (still in
    /// use, perhaps by another run) and `ENOENT` are not errors.
    fn remove_parent_if_empty(&self) -> Result<(), CgroupError>;
}

/// Detects the cgroup mode of `root` (normally `/sys/fs/cgroup`) once and returns the
/// matching driver for Hearth's parent cgroup `parent` (a relative path such as `"hearth"`).
/// Without `parent`, v1 uses `hearth` in every hierarchy and v2 decides from Hearth's own
/// cgroup ([`v2::placement`]: `<own>/sandboxes` when it is delegated, else `hearth`).
pub fn open_driver(
    root: &Path,
    parent: Option<&str>,
) -> Result<Box<dyn CgroupDriver>, CgroupError> {
    Ok(match (detect(root)?, parent) {
        (CgroupMode::Unified, Some(parent)) => Box::new(V2Driver::new(root, parent)?),
        (CgroupMode::Unified, None) => {
            let own = own_unified_cgroup(Path::new("/proc/self/cgroup"))?;
            let placement = v2::placement(&own, |rel| is_delegated(&root.join(rel)));
            Box::new(V2Driver::placed(root, &placement)?)
        }
        (CgroupMode::Hybrid | CgroupMode::Legacy, parent) => {
            Box::new(V1Driver::new(root, parent.unwrap_or(v2::ROOT_PARENT))?)
        }
    })
}

/// The path of this process's cgroup in the unified hierarchy: the `0::` line of
/// `/proc/self/cgroup` (`/` when the line is missing, as on a legacy host).
pub fn own_unified_cgroup(proc_cgroup: &Path) -> Result<String, CgroupError> {
    let text = read_file(proc_cgroup)?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .to_owned())
}

/// Whether the cgroup directory `dir` was delegated to the processes in it: systemd marks a
/// `Delegate=yes` unit's cgroup with the extended attribute `trusted.delegate` (`user.delegate`
/// for a user manager's units) set to `1`. Any error reads as "not delegated".
pub fn is_delegated(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    [c"trusted.delegate", c"user.delegate"].iter().any(|name| {
        let mut buf = [0u8; 16];
        matches!(crate::sys::fd::get_xattr(&path, name, &mut buf), Ok(Some(n)) if &buf[..n] == b"1")
    })
}

/// CFS quota and period (µs) for a sandbox of `memory_mb`: `memory_mb / 1769` CPUs, as
/// Lambda allots CPU in proportion to memory. The quota is rounded down (a sandbox never
/// gets more than its share) and at least [`MIN_CPU_QUOTA_US`], the kernel's minimum.
pub fn cpu_quota_us(memory_mb: u64) -> (u64, u64) {
    let share = u128::from(CPU_PERIOD_US) * u128::from(memory_mb) / u128::from(MB_PER_CPU);
    let quota = u64::try_from(share).unwrap_or(u64::MAX);
    (quota.max(MIN_CPU_QUOTA_US), CPU_PERIOD_US)
}

/// Checks a sandbox cgroup name: 1 to [`MAX_NAME_LEN`] bytes of `[A-Za-z0-9._-]`, not
/// starting with `.`. This keeps names a single path component that cannot collide with
/// `.`/`..` and is safe to log.
pub fn check_name(name: &str) -> Result<(), CgroupError> {
    let invalid = |reason| CgroupError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid("longer than 128 bytes"));
    }
    if name.starts_with('.') {
        return Err(invalid("starts with '.'"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid(
            "only ASCII letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    Ok(())
}

/// Checks Hearth's parent: a relative path whose every component passes [`check_name`].
fn check_parent(parent: &str) -> Result<PathBuf, CgroupError> {
    let invalid = |reason| CgroupError::InvalidParent {
        parent: parent.to_owned(),
        reason,
    };
    let path = Path::new(parent);
    if parent.is_empty() {
        return Err(invalid("empty"));
    }
    for component in path.components() {
        match component {
            Component::Normal(c) => {
                let c = c.to_str().ok_or_else(|| invalid("not UTF-8"))?;
                check_name(c).map_err(|_| invalid("each component must be a valid name"))?;
            }
            _ => return Err(invalid("must be relative, without '.' or '..'")),
        }
    }
    Ok(path.to_path_buf())
}

// ---- file helpers shared by both drivers ----

/// Writes `value` to a control file in one `write(2)` (the kernel parses each write as one
/// command). The file must exist: control files are never created by us.
fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path: path.to_owned(),
            value: value.to_owned(),
            source,
        })
}

fn read_file(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads a control file that older kernels or some configurations lack; `None` if absent.
fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_owned(),
        content: text.to_owned(),
    })
}

fn read_optional_u64(path: &Path) -> Result<Option<u64>, CgroupError> {
    read_optional(path)?
        .map(|text| parse_u64(path, &text))
        .transpose()
}

/// The value of `key` in a flat-keyed file (`key value` per line, e.g. `memory.events`).
fn flat_keyed(path: &Path, text: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some(key) {
            return match (words.next().map(str::parse), words.next()) {
                (Some(Ok(v)), None) => Ok(Some(v)),
                _ => Err(CgroupError::Parse {
                    path: path.to_owned(),
                    content: line.to_owned(),
                }),
            };
        }
    }
    Ok(None)
}

/// The whitespace-separated words of a file such as `cgroup.controllers`.
fn read_words(path: &Path) -> Result<Vec<String>, CgroupError> {
    Ok(read_file(path)?
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// Pids listed in `<dir>/cgroup.procs`; a directory that is gone lists as empty.
fn read_procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = dir.join("cgroup.procs");
    let Some(text) = read_optional(&path)? else {
        return Ok(Vec::new());
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse().map_err(|_| CgroupError::Parse {
                path: path.clone(),
                content: l.to_owned(),
            })
        })
        .collect()
}

/// SIGKILL to each pid; a pid that is already gone (`ESRCH`) is fine.
fn kill_pids(pids: &[i32]) -> Result<(), CgroupError> {
    for &pid in pids {
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(source) => return Err(CgroupError::Kill { pid, source }),
        }
    }
    Ok(())
}

/// `mkdir` of one cgroup directory; `EEXIST` becomes [`CgroupError::AlreadyExists`].
fn make_dir(path: &Path) -> Result<(), CgroupError> {
    fs::create_dir(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            CgroupError::AlreadyExists {
                path: path.to_owned(),
            }
        } else {
            CgroupError::Mkdir {
                path: path.to_owned(),
                source,
            }
        }
    })
}

/// `rmdir` of one cgroup directory. `ENOENT` counts as removed; `EBUSY` (the kernel may
/// still be tearing down the last exited task) is retried for up to [`RMDIR_TIMEOUT`].
/// (Also `hearth bench peers`' clean-up of the cgroups crun and runc leave.)
pub fn remove_dir(path: &Path) -> Result<(), CgroupError> {
    let mut last = None;
    let done = poll_until(RMDIR_TIMEOUT, || match fs::remove_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            last = Some(e);
            Ok(false)
        }
        Err(source) => Err(CgroupError::Rmdir {
            path: path.to_owned(),
            source,
        }),
    })?;
    match (done, last) {
        (true, _) => Ok(()),
        (false, source) => Err(CgroupError::Rmdir {
            path: path.to_owned(),
            source: source.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EBUSY)),
        }),
    }
}

/// `rmdir` of Hearth's parent: `EBUSY`/`ENOTEMPTY` (in use) and `ENOENT` are fine.
fn remove_parent_dir(path: &Path) -> Result<(), CgroupError> {
    match fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::EBUSY | libc::ENOTEMPTY)
            ) =>
        {
            Ok(())
        }
        Err(source) => Err(CgroupError::Rmdir {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Names of the subdirectories of `dir` (sub-cgroups); a missing `dir` lists as empty.
fn list_subdirs(dir: &Path) -> Result<Vec<String>, CgroupError> {
    let list_err = |source| CgroupError::List {
        path: dir.to_owned(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(list_err(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(list_err)?;
        if entry.file_type().map_err(list_err)?.is_dir() {
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Calls `done` until it returns true or `timeout` has passed, sleeping 200 µs, then twice
/// as long each time up to 20 ms. Returns whether `done` succeeded.
fn poll_until(
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<bool, CgroupError> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        if done()? {
            return Ok(true);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

impl CgroupError {
    /// Whether the error is a file or directory that does not exist (any more): another
    /// Hearth process may have removed an empty parent at the wrong moment.
    pub fn is_not_found(&self) -> bool {
        match self {
            CgroupError::Read { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::Mkdir { source, .. }
            | CgroupError::Open { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

/// Errors of the cgroup layer. Each names the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// `statfs(2)` on the cgroup root (or its `unified` child) failed.
    #[error("statfs {path}: {source}")]
    Statfs { path: PathBuf, source: Errno },
    /// Reading a control file failed.
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    /// Writing a control file failed (the kernel rejected the value, or the file is missing).
    #[error("writing {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    /// A control file held something we cannot parse.
    #[error("unexpected content in {path}: {content:?}")]
    Parse { path: PathBuf, content: String },
    /// Creating a cgroup directory failed.
    #[error("creating cgroup {path}: {source}")]
    Mkdir { path: PathBuf, source: io::Error },
    /// The sandbox cgroup already exists (a leftover, or a name reused too early).
    #[error("cgroup {path} already exists")]
    AlreadyExists { path: PathBuf },
    /// Removing a cgroup directory failed.
    #[error("removing cgroup {path}: {source}")]
    Rmdir { path: PathBuf, source: io::Error },
    /// Listing the parent cgroup failed.
    #[error("listing {path}: {source}")]
    List { path: PathBuf, source: io::Error },
    /// Opening the cgroup directory for `CLONE_INTO_CGROUP` failed.
    #[error("opening {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    /// A sandbox name that is not a safe single path component.
    #[error("invalid cgroup name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// Hearth's parent cgroup path is unusable.
    #[error("invalid parent cgroup {parent:?}: {reason}")]
    InvalidParent {
        parent: String,
        reason: &'static str,
    },
    /// Limits that cannot be written.
    #[error("invalid limits (memory {memory_mb} MB, pids {pids}): {reason}")]
    InvalidLimits {
        memory_mb: u64,
        pids: u64,
        reason: &'static str,
    },
    /// A cgroup v1 controller Hearth needs has no hierarchy under the root.
    #[error("no cgroup v1 hierarchy for the {controller} controller under {root}")]
    ControllerMissing {
        root: PathBuf,
        controller: &'static str,
    },
    /// The cgroup that should hold Hearth's parent does not exist.
    #[error(
        "{path} does not exist (hearth creates only its own parent cgroup, not the ones above it)"
    )]
    AncestorMissing { path: PathBuf },
    /// v2: the cgroup above Hearth's parent does not enable the controllers for its children.
    #[error("{path}/cgroup.subtree_control does not enable {missing} (delegate them to hearth, e.g. systemd Delegate=yes; hearth never writes above its own parent)")]
    NotDelegated { path: PathBuf, missing: String },
    /// v2: Hearth's parent cannot use controllers Hearth needs.
    #[error("{path}/cgroup.controllers lacks {missing} (has {available:?}); the cgroup above must delegate them")]
    ControllersUnavailable {
        path: PathBuf,
        missing: String,
        available: String,
    },
    /// v2: enabling controllers in the parent failed because the parent holds processes.
    #[error("cannot enable controllers in {path}: it holds processes, and cgroup v2 allows processes only in leaf cgroups (run hearth itself in another cgroup)")]
    InternalProcesses { path: PathBuf },
    /// v1: `memory.use_hierarchy` is 0 in the parent and cannot be set to 1.
    #[error("memory.use_hierarchy is {value:?} in {path} and could not be set to 1")]
    UseHierarchy { path: PathBuf, value: String },
    /// A freeze or thaw did not complete in time.
    #[error("{path} did not become {wanted} within {timeout:?} (last state {last:?})")]
    FreezeTimeout {
        path: PathBuf,
        wanted: &'static str,
        last: String,
        timeout: Duration,
    },
    /// Processes were still in the cgroup after the kill.
    #[error("{} processes still in {path} {timeout:?} after SIGKILL (pids {pids:?})", pids.len())]
    KillTimeout {
        path: PathBuf,
        pids: Vec<i32>,
        timeout: Duration,
    },
    /// `kill(2)` failed for a reason other than the process being gone.
    #[error("sending SIGKILL to pid {pid}: {source}")]
    Kill { pid: i32, source: Errno },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quota_is_proportional_rounded_down_and_clamped() {
        // 100000 * 128 / 1769 = 7235.72…; rounded down.
        assert_eq!(cpu_quota_us(128), (7235, 100_000));
        assert_eq!(cpu_quota_us(1769), (100_000, 100_000));
        assert_eq!(cpu_quota_us(3538), (200_000, 100_000));
        // 100000 * 10240 / 1769 = 578858.11…
        assert_eq!(cpu_quota_us(10_240), (578_858, 100_000));
        // 100000 * 17 / 1769 = 960.99…, below the kernel's 1 ms minimum.
        assert_eq!(cpu_quota_us(17), (MIN_CPU_QUOTA_US, 100_000));
        assert_eq!(cpu_quota_us(0), (MIN_CPU_QUOTA_US, 100_000));
        assert_eq!(cpu_quota_us(u64::MAX).1, 100_000);
    }

    #[test]
    fn limits_memory_bytes_is_exact_and_checked() {
        let l = Limits {
            memory_mb: 128,
            pids: 64,
        };
        assert_eq!(l.memory_bytes().unwrap(), 134_217_728);
        for bad in [
            Limits {
                memory_mb: 0,
                pids: 64,
            },
            Limits {
                memory_mb: 128,
                pids: 0,
            },
            Limits {
                memory_mb: u64::MAX,
                pids: 1,
            },
        ] {
            assert!(matches!(
                bad.memory_bytes(),
                Err(CgroupError::InvalidLimits { .. })
            ));
        }
    }

    #[test]
    fn names_are_single_safe_components() {
        for ok in ["a", "fn-abc_1.2", "hearth-test-1234", &"x".repeat(128)] {
            check_name(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a b",
            "ä",
            "a\n",
            &"x".repeat(129),
        ] {
            assert!(
                matches!(check_name(bad), Err(CgroupError::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parent_must_be_relative_and_clean() {
        assert_eq!(check_parent("hearth").unwrap(), Path::new("hearth"));
        assert_eq!(
            check_parent("system.slice/hearth.service/sandboxes").unwrap(),
            Path::new("system.slice/hearth.service/sandboxes")
        );
        for bad in ["", "/hearth", "../x", "a/../b", "./a", "a/.x"] {
            assert!(
                matches!(check_parent(bad), Err(CgroupError::InvalidParent { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn flat_keyed_parses_real_memory_events() {
        let p = Path::new("memory.events");
        let text = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(flat_keyed(p, text, "oom_kill").unwrap(), Some(1));
        assert_eq!(flat_keyed(p, text, "max").unwrap(), Some(12));
        assert_eq!(flat_keyed(p, text, "oom_group_kill").unwrap(), Some(0));
        assert_eq!(flat_keyed(p, text, "absent").unwrap(), None);
        assert!(matches!(
            flat_keyed(p, "oom_kill x\n", "oom_kill"),
            Err(CgroupError::Parse { .. })
        ));
    }

    #[test]
    fn read_procs_parses_and_tolerates_a_missing_dir() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cgroup.procs"), "12\n345\n").unwrap();
        assert_eq!(read_procs(dir.path()).unwrap(), vec![12, 345]);
        fs::write(dir.path().join("cgroup.procs"), "").unwrap();
        assert!(read_procs(dir.path()).unwrap().is_empty());
        assert!(read_procs(&dir.path().join("gone")).unwrap().is_empty());
    }

    #[test]
    fn own_unified_cgroup_reads_the_0_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cgroup");
        fs::write(&f, "12:pids:/user.slice\n0::/system.slice/hearth.service\n").unwrap();
        assert_eq!(
            own_unified_cgroup(&f).unwrap(),
            "/system.slice/hearth.service"
        );
        fs::write(&f, "4:memory:/\n").unwrap();
        assert_eq!(own_unified_cgroup(&f).unwrap(), "/");
        // A plain directory has no delegation mark.
        assert!(!is_delegated(dir.path()));
        let gone = CgroupError::Mkdir {
            path: f.clone(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert!(gone.is_not_found());
        assert!(!CgroupError::AncestorMissing { path: f }.is_not_found());
    }

    #[test]
    fn error_messages_name_the_file() {
        let e = CgroupError::NotDelegated {
            path: PathBuf::from("/sys/fs/cgroup"),
            missing: "cpu".into(),
        };
        let msg = e.to_string();
        assert!(msg.starts_with("/sys/fs/cgroup/cgroup.subtree_control does not enable cpu"));
        let e = CgroupError::KillTimeout {
            path: PathBuf::from("/x"),
            pids: vec![1, 2],
            timeout: KILL_TIMEOUT,
        };
        assert!(e.to_string().starts_with("2 processes still in /x"));
    }

    /// Root-only: the whole life of one sandbox cgroup on this host, through
    /// [`open_driver`], so it exercises whichever mode the host has.
    #[test]
    fn real_lifecycle_on_this_host() {
        if !testutil::is_root() {
            println!("skipped: needs root");
            return;
        }
        let root = Path::new("/sys/fs/cgroup");
        let parent = testutil::unique_parent("life");
        let driver: Box<dyn CgroupDriver> = open_driver(root, Some(&parent)).unwrap();
        let _parent_guard = testutil::ParentGuard(&*driver);
        match driver.ensure_parent() {
            Err(
                e @ (CgroupError::NotDelegated { .. } | CgroupError::ControllersUnavailable { .. }),
            ) => {
                println!("skipped: host does not delegate controllers: {e}");
                return;
            }
            other => other.unwrap(),
        }
        // Idempotent: a second call finds everything in place.
        driver.ensure_parent().unwrap();

        let limits = Limits {
            memory_mb: 128,
            pids: 64,
        };
        let cg = driver.create("sb1", &limits).unwrap();
        let guard = testutil::CgroupGuard::new(&*driver, "sb1");
        // The limits are in place before anything joins.
        testutil::assert_limits_written(driver.mode_name(), &cg, 134_217_728, 64, 7235);
        assert!(matches!(
            driver.create("sb1", &limits),
            Err(CgroupError::AlreadyExists { .. })
        ));
        assert_eq!(driver.list().unwrap(), vec!["sb1".to_owned()]);

        let mut child = testutil::GatedChild::spawn("exec sleep 1000");
        driver.attach(&cg, child.pid()).unwrap();
        child.release();
        assert_eq!(read_procs(cg.procs_dir()).unwrap(), vec![child.pid()]);
        for dir in cg.dirs() {
            assert_eq!(read_procs(dir).unwrap(), vec![child.pid()], "{dir:?}");
        }
        let stats = driver.stats(&cg).unwrap();
        assert_eq!(stats.oom_kills, 0);
        // Memory charged before the attach stays with the old cgroup on v1, so the
        // current use may still be 0 here.
        assert!(stats.memory_current_bytes.is_some());

        driver.kill_all(&cg).unwrap();
        assert_eq!(child.wait_signal(), Some(libc::SIGKILL));
        for dir in cg.dirs() {
            assert!(read_procs(dir).unwrap().is_empty());
        }
        let dirs = cg.dirs().to_vec();
        driver.remove(cg).unwrap();
        guard.disarm();
        for dir in &dirs {
            assert!(!dir.exists(), "{dir:?}");
        }
        assert!(driver.list().unwrap().is_empty());
        driver.remove_parent_if_empty().unwrap();
        assert!(testutil::leftovers(&parent).is_empty());
    }

    /// Root-only: a sandbox that touches 300 MB in a 128 MB cgroup is OOM-killed and the
    /// kill is counted.
    #[test]
    fn real_oom_kill_is_counted() {
        if !testutil::is_root() {
            println!("skipped: needs root");
            return;
        }
        let parent = testutil::unique_parent("oom");
        let driver = open_driver(Path::new("/sys/fs/cgroup"), Some(&parent)).unwrap();
        let _parent_guard = testutil::ParentGuard(&*driver);
        if let Err(e) = driver.ensure_parent() {
            println!("skipped: {e}");
            return;
        }
        let cg = driver
            .create(
                "oom",
                &Limits {
                    memory_mb: 128,
                    pids: 64,
                },
            )
            .unwrap();
        let _guard = testutil::CgroupGuard::new(&*driver, "oom");
        // dd reads 300 MB from /dev/zero into one buffer, touching every page.
        let mut child =
            testutil::GatedChild::spawn("exec dd if=/dev/zero of=/dev/null bs=300M count=1");
        driver.attach(&cg, child.pid()).unwrap();
        child.release();
        assert_eq!(child.wait_signal(), Some(libc::SIGKILL));
        let stats = driver.stats(&cg).unwrap();
        println!("after OOM: {stats:?}");
        assert!(stats.oom_kills >= 1, "{stats:?}");
        if let Some(peak) = stats.memory_peak_bytes {
            assert!(
                peak > 64 * BYTES_PER_MB && peak <= 128 * BYTES_PER_MB,
                "{stats:?}"
            );
        }
    }

    /// Root-only: a shell forking in a loop is killed completely, the forks in flight
    /// included.
    #[test]
    fn real_kill_all_stops_a_fork_loop() {
        if !testutil::is_root() {
            println!("skipped: needs root");
            return;
        }
        let parent = testutil::unique_parent("fork");
        let driver = open_driver(Path::new("/sys/fs/cgroup"), Some(&parent)).unwrap();
        let _parent_guard = testutil::ParentGuard(&*driver);
        if let Err(e) = driver.ensure_parent() {
            println!("skipped: {e}");
            return;
        }
        let cg = driver
            .create(
                "fork",
                // dash exits when a fork fails, so the pids limit is set well above what
                // the loop reaches (about 140 forks/s at this CPU share) before the kill:
                // the shell is still forking when kill_all runs.
                &Limits {
                    memory_mb: 256,
                    pids: 1024,
                },
            )
            .unwrap();
        let _guard = testutil::CgroupGuard::new(&*driver, "fork");
        let mut child = testutil::GatedChild::spawn("while :; do sleep 1000 & done");
        driver.attach(&cg, child.pid()).unwrap();
        child.release();
        // Wait until the loop has filled a good part of its pids budget.
        let filled = poll_until(Duration::from_secs(10), || {
            Ok(read_procs(cg.procs_dir())?.len() >= 16)
        })
        .unwrap();
        assert!(filled, "fork loop did not start");
        println!(
            "fork loop: {} processes before kill_all",
            read_procs(cg.procs_dir()).unwrap().len()
        );
        driver.kill_all(&cg).unwrap();
        assert_eq!(child.wait_signal(), Some(libc::SIGKILL));
        for dir in cg.dirs() {
            assert!(read_procs(dir).unwrap().is_empty(), "{dir:?}");
        }
        driver.remove(cg).unwrap();
    }
}

/// Helpers for the root-only tests: guards that clean up by path or pid even on panic.
#[cfg(test)]
mod testutil {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, ChildStdin, Command, Stdio};

    pub(super) fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// A parent name unique to this test process and test.
    pub(super) fn unique_parent(tag: &str) -> String {
        format!("hearth-test-{}-{tag}", std::process::id())
    }

    /// Directories named `parent` left in any hierarchy under `/sys/fs/cgroup`.
    pub(super) fn leftovers(parent: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let root = Path::new("/sys/fs/cgroup");
        if root.join(parent).exists() {
            found.push(root.join(parent));
        }
        if let Ok(entries) = fs::read_dir(root) {
            for e in entries.flatten() {
                let p = e.path().join(parent);
                if p.exists() {
                    found.push(p);
                }
            }
        }
        found
    }

    /// Removes Hearth's (test) parent when the test ends.
    pub(super) struct ParentGuard<'a>(pub(super) &'a dyn CgroupDriver);

    impl Drop for ParentGuard<'_> {
        fn drop(&mut self) {
            let _ = self.0.remove_parent_if_empty();
        }
    }

    /// Removes one sandbox cgroup (killing what is in it) when the test ends.
    pub(super) struct CgroupGuard<'a> {
        driver: &'a dyn CgroupDriver,
        name: Option<String>,
    }

    impl<'a> CgroupGuard<'a> {
        pub(super) fn new(driver: &'a dyn CgroupDriver, name: &str) -> Self {
            Self {
                driver,
                name: Some(name.to_owned()),
            }
        }

        pub(super) fn disarm(mut self) {
            self.name = None;
        }
    }

    impl Drop for CgroupGuard<'_> {
        fn drop(&mut self) {
            if let Some(name) = self.name.take() {
                if let Err(e) = self.driver.remove_by_name(&name) {
                    eprintln!("cleanup of cgroup {name} failed: {e}");
                }
            }
        }
    }

    /// A `sh -c` child that waits for a line on stdin before running `script`, so that it
    /// can be attached to a cgroup before it does anything. Killed (by pid) and reaped on
    /// drop.
    pub(super) struct GatedChild {
        child: Child,
        gate: Option<ChildStdin>,
        reaped: bool,
    }

    impl GatedChild {
        pub(super) fn spawn(script: &str) -> Self {
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(format!("read _gate; {script}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn sh");
            let gate = child.stdin.take();
            Self {
                child,
                gate,
                reaped: false,
            }
        }

        pub(super) fn pid(&self) -> i32 {
            i32::try_from(self.child.id()).expect("pid fits i32")
        }

        pub(super) fn release(&mut self) {
            let mut gate = self.gate.take().expect("released once");
            gate.write_all(b"go\n").expect("release child");
        }

        /// Reaps the child (waitpid) and returns the signal that ended it.
        pub(super) fn wait_signal(&mut self) -> Option<i32> {
            let status = self.child.wait().expect("waitpid");
            self.reaped = true;
            status.signal()
        }
    }

    impl Drop for GatedChild {
        fn drop(&mut self) {
            if !self.reaped {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }

    /// Checks the limit files the kernel holds for `cg`.
    pub(super) fn assert_limits_written(
        mode: &str,
        cg: &SandboxCgroup,
        memory: u64,
        pids: u64,
        quota: u64,
    ) {
        let find = |file: &str| -> String {
            let dir = cg
                .dirs()
                .iter()
                .find(|d| d.join(file).exists())
                .unwrap_or_else(|| panic!("no {file} in {:?}", cg.dirs()));
            fs::read_to_string(dir.join(file))
                .unwrap()
                .trim()
                .to_owned()
        };
        let memory = memory.to_string();
        assert_eq!(find("pids.max"), pids.to_string());
        if mode == "v2" {
            assert_eq!(find("memory.max"), memory);
            assert_eq!(find("cpu.max"), format!("{quota} 100000"));
        } else {
            assert_eq!(find("memory.limit_in_bytes"), memory);
            if cg
                .dirs()
                .iter()
                .any(|d| d.join("memory.memsw.limit_in_bytes").exists())
            {
                assert_eq!(find("memory.memsw.limit_in_bytes"), memory);
            }
            assert_eq!(find("memory.swappiness"), "0");
            assert_eq!(find("cpu.cfs_period_us"), "100000");
            assert_eq!(find("cpu.cfs_quota_us"), quota.to_string());
        }
    }
}
