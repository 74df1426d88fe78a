//! The cgroup v2 driver (the primary design): one directory per sandbox at
//! `<root>/<parent>/<name>` in the unified hierarchy.
//!
//! Limits written at creation: `memory.max` (exactly `memory_mb` MiB), `memory.swap.max` 0
//! (when the file exists: it is absent when swap accounting is off, and then there is no
//! swap to charge either), `memory.oom.group` 1, `pids.max`, `cpu.max` "QUOTA PERIOD".
//!
//! Where the sandboxes go ([`placement`], decided once at start-up unless the operator names
//! a parent):
//! - Hearth runs in a *delegated* cgroup (systemd `Delegate=yes` marks it with the
//!   `trusted.delegate` extended attribute): the cgroup is Hearth's to organise, and the only
//!   place it may create cgroups. The v2 "no internal processes" rule forbids enabling
//!   controllers for children while the cgroup holds processes, so the first sandbox moves
//!   every process of the cgroup into the leaf `<own>/supervisor`, enables `memory pids cpu`
//!   in `<own>/cgroup.subtree_control`, and puts sandboxes under `<own>/sandboxes/` (what
//!   systemd's delegation documentation asks of a delegated service). A later Hearth process
//!   started from inside `<own>/supervisor` finds the same layout.
//! - Hearth runs in the root cgroup, or in a cgroup nobody delegated to it (a login session,
//!   say): sandboxes go under `<root>/hearth`, which as root it may create.
//!
//! Either way the cgroup above Hearth's parent must already offer `memory pids cpu` (systemd
//! does, for a unit with `Delegate=yes` or at the root when any unit uses the controllers).
//! We create only the parent itself and enable the three controllers in *its*
//! `cgroup.subtree_control`; every sandbox is a leaf.
//!
//! Not done here: threaded cgroups, `io` limits (the ephemeral `/tmp` is limited by its own
//! size), PSI, and waiting on `cgroup.events` with poll(2) instead of polling.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{
    check_name, check_parent, cpu_quota_us, flat_keyed, kill_pids, list_subdirs, make_dir,
    poll_until, read_file, read_optional, read_optional_u64, read_procs, read_words, remove_dir,
    remove_parent_dir, write_file, CgroupDriver, CgroupError, CgroupStats, Limits, SandboxCgroup,
    FREEZE_TIMEOUT, KILL_TIMEOUT,
};

/// Controllers every sandbox needs, in the order they are enabled.
const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];
/// The leaf of a delegated cgroup that holds Hearth's own processes (and whatever else ran
/// in the delegated cgroup).
pub const SUPERVISOR_LEAF: &str = "supervisor";
/// The child of a delegated cgroup under which sandboxes are created.
pub const SANDBOXES_CHILD: &str = "sandboxes";
/// Default parent (relative to the root) when Hearth has no delegated cgroup of its own.
pub const ROOT_PARENT: &str = "hearth";
/// How many times the processes of a delegated cgroup are moved out before enabling its
/// controllers is given up (each round only fails if a process forked into it meanwhile).
const MOVE_ROUNDS: usize = 50;

/// Where the sandboxes of a v2 host go (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The parent of the sandbox cgroups, relative to the cgroup2 root.
    pub parent: String,
    /// The delegated cgroup (relative to the root) whose processes move to its
    /// `supervisor` leaf before its controllers are enabled; `None` when Hearth is not
    /// delegated a cgroup.
    pub delegated: Option<String>,
}

/// Decides where sandboxes go, given Hearth's own cgroup `own` (the `0::` line of
/// `/proc/self/cgroup`, e.g. `/system.slice/hearth.service`) and a test of whether a cgroup
/// (relative to the root, no leading `/`) is delegated.
pub fn placement(own: &str, is_delegated: impl Fn(&str) -> bool) -> Placement {
    let own = own.trim().trim_matches('/');
    let at_root = || Placement {
        parent: ROOT_PARENT.to_owned(),
        delegated: None,
    };
    if own.is_empty() {
        return at_root();
    }
    // Already moved into the leaf by an earlier Hearth process.
    let base = match own.rsplit_once('/') {
        Some((above, leaf)) if leaf == SUPERVISOR_LEAF && is_delegated(above) => above,
        _ if is_delegated(own) => own,
        _ => return at_root(),
    };
    Placement {
        parent: format!("{base}/{SANDBOXES_CHILD}"),
        delegated: Some(base.to_owned()),
    }
}

/// Drives sandbox cgroups on a unified (cgroup v2) host.
#[derive(Debug, Clone)]
pub struct V2Driver {
    /// The cgroup2 mount, normally `/sys/fs/cgroup`.
    root: PathBuf,
    /// Hearth's parent cgroup, `<root>/<parent>`.
    parent: PathBuf,
    /// The delegated cgroup to organise before the parent can be used (see [`Placement`]).
    delegated: Option<PathBuf>,
}

impl V2Driver {
    /// A driver for sandboxes under `<root>/<parent>`. `parent` is relative (for instance
    /// `hearth` or `system.slice/hearth.service/sandboxes`); nothing is touched yet.
    pub fn new(root: &Path, parent: &str) -> Result<Self, CgroupError> {
        let parent = root.join(check_parent(parent)?);
        Ok(Self {
            root: root.to_owned(),
            parent,
            delegated: None,
        })
    }

    /// A driver for the [`Placement`] decided at start-up.
    pub fn placed(root: &Path, placement: &Placement) -> Result<Self, CgroupError> {
        let mut driver = Self::new(root, &placement.parent)?;
        if let Some(base) = &placement.delegated {
            driver.delegated = Some(root.join(check_parent(base)?));
        }
        Ok(driver)
    }

    /// Hearth's parent cgroup (the directory holding the sandbox cgroups).
    pub fn parent(&self) -> &Path {
        &self.parent
    }

    /// Makes the delegated cgroup `base` able to hold sandbox cgroups: moves every process
    /// in it into its `supervisor` leaf, then enables the controllers for its children.
    /// Done once; a later call finds the controllers enabled and returns at once.
    fn organise_delegated(base: &Path) -> Result<(), CgroupError> {
        let subtree = base.join("cgroup.subtree_control");
        let to_enable = missing_controllers(&read_words(&subtree)?);
        if to_enable.is_empty() {
            return Ok(());
        }
        let available_path = base.join("cgroup.controllers");
        let available = read_words(&available_path)?;
        let unavailable = missing_controllers(&available);
        if !unavailable.is_empty() {
            return Err(CgroupError::ControllersUnavailable {
                path: base.to_owned(),
                missing: unavailable.join(" "),
                available: available.join(" "),
            });
        }
        let leaf = base.join(SUPERVISOR_LEAF);
        match make_dir(&leaf) {
            Ok(()) | Err(CgroupError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        let value = to_enable
            .iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        for _ in 0..MOVE_ROUNDS {
            for pid in read_procs(base)? {
                match write_file(&leaf.join("cgroup.procs"), &pid.to_string()) {
                    // It exited meanwhile.
                    Err(CgroupError::Write { source, .. })
                        if source.raw_os_error() == Some(libc::ESRCH) => {}
                    other => other?,
                }
            }
            match write_file(&subtree, &value) {
                // A process forked into the cgroup after the listing: move it too.
                Err(CgroupError::Write { source, .. })
                    if source.raw_os_error() == Some(libc::EBUSY) => {}
                other => return other,
            }
        }
        Err(CgroupError::InternalProcesses {
            path: base.to_owned(),
        })
    }

    /// The cgroup2 mount this driver works under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn handle(&self, name: &str) -> Result<SandboxCgroup, CgroupError> {
        check_name(name)?;
        let dir = self.parent.join(name);
        Ok(SandboxCgroup::new(name, vec![dir.clone()], dir))
    }

    /// Writes every limit into the existing cgroup directory `dir`.
    fn write_limits(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
        let memory = limits.memory_bytes()?;
        write_file(&dir.join("memory.max"), &memory.to_string())?;
        // Absent when the kernel runs without swap accounting; then nothing can be
        // swapped on this cgroup's behalf that we could limit.
        let swap_max = dir.join("memory.swap.max");
        if swap_max.exists() {
            write_file(&swap_max, "0")?;
        }
        // An OOM kills the whole sandbox, not just the largest process, the way Lambda ends
        // the execution environment: the runtime never limps on with a dead worker. Absent
        // before Linux 4.19, where only the chosen process dies.
        let oom_group = dir.join("memory.oom.group");
        if oom_group.exists() {
            write_file(&oom_group, "1")?;
        }
        write_file(&dir.join("pids.max"), &limits.pids.to_string())?;
        let (quota, period) = cpu_quota_us(limits.memory_mb);
        write_file(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
        Ok(())
    }

    /// Whether `cgroup.events` says processes are in the cgroup (or its children). A
    /// directory that is gone is not populated.
    fn populated(dir: &Path) -> Result<bool, CgroupError> {
        let path = dir.join("cgroup.events");
        match read_optional(&path)? {
            None => Ok(false),
            Some(text) => Ok(flat_keyed(&path, &text, "populated")?.unwrap_or(0) != 0),
        }
    }

    /// Writes `cgroup.freeze` and waits until `cgroup.events` reports `frozen` equal to it.
    fn set_frozen(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
        let want = if frozen { "1" } else { "0" };
        write_file(&dir.join("cgroup.freeze"), want)?;
        let events = dir.join("cgroup.events");
        let mut last = String::new();
        let done = poll_until(FREEZE_TIMEOUT, || {
            last = read_file(&events)?;
            Ok(flat_keyed(&events, &last, "frozen")? == Some(u64::from(frozen)))
        })?;
        if done {
            return Ok(());
        }
        if frozen {
            // Do not leave a half-frozen sandbox behind (a task in uninterruptible sleep
            // can hold the freeze up); the caller decides what to do with it.
            let _ = write_file(&dir.join("cgroup.freeze"), "0");
        }
        Err(CgroupError::FreezeTimeout {
            path: dir.to_owned(),
            wanted: if frozen { "frozen" } else { "thawed" },
            last: last.trim().replace('\n', ", "),
            timeout: FREEZE_TIMEOUT,
        })
    }
}

/// The controllers of [`CONTROLLERS`] that `have` lacks, in order.
fn missing_controllers(have: &[String]) -> Vec<&'static str> {
    CONTROLLERS
        .into_iter()
        .filter(|c| !have.iter().any(|h| h == c))
        .collect()
}

impl CgroupDriver for V2Driver {
    fn mode_name(&self) -> &'static str {
        "v2"
    }

    fn ensure_parent(&self) -> Result<(), CgroupError> {
        if let Some(base) = &self.delegated {
            Self::organise_delegated(base)?;
        }
        if !self.parent.is_dir() {
            let above = self
                .parent
                .parent()
                .expect("parent is root joined with a non-empty relative path");
            if !above.is_dir() {
                return Err(CgroupError::AncestorMissing {
                    path: above.to_owned(),
                });
            }
            // Check before creating anything: a parent we cannot use is not left behind.
            let missing = missing_controllers(&read_words(&above.join("cgroup.subtree_control"))?);
            if !missing.is_empty() {
                return Err(CgroupError::NotDelegated {
                    path: above.to_owned(),
                    missing: missing.join(" "),
                });
            }
            match make_dir(&self.parent) {
                // Another Hearth process may have created it meanwhile.
                Ok(()) | Err(CgroupError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }

        let available_path = self.parent.join("cgroup.controllers");
        let available = read_words(&available_path)?;
        let missing = missing_controllers(&available);
        if !missing.is_empty() {
            return Err(CgroupError::ControllersUnavailable {
                path: self.parent.clone(),
                missing: missing.join(" "),
                available: available.join(" "),
            });
        }

        let subtree = self.parent.join("cgroup.subtree_control");
        let to_enable: Vec<String> = missing_controllers(&read_words(&subtree)?)
            .into_iter()
            .map(|c| format!("+{c}"))
            .collect();
        if to_enable.is_empty() {
            return Ok(());
        }
        match write_file(&subtree, &to_enable.join(" ")) {
            Err(CgroupError::Write { source, .. })
                if source.raw_os_error() == Some(libc::EBUSY) =>
            {
                Err(CgroupError::InternalProcesses {
                    path: self.parent.clone(),
                })
            }
            other => other,
        }
    }

    fn create(&self, name: &str, limits: &Limits) -> Result<SandboxCgroup, CgroupError> {
        let cg = self.handle(name)?;
        limits.memory_bytes()?;
        let dir = &cg.procs_dir;
        make_dir(dir)?;
        if let Err(e) = Self::write_limits(dir, limits) {
            // Nothing has joined yet, so the directory is empty and rmdir succeeds.
            let _ = remove_dir(dir);
            return Err(e);
        }
        Ok(cg)
    }

    fn clone_into_fd(&self, cg: &SandboxCgroup) -> Result<Option<OwnedFd>, CgroupError> {
        // O_PATH is enough for CLONE_INTO_CGROUP (the kernel takes the fd with fdget_raw);
        // std adds O_CLOEXEC.
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(&cg.procs_dir)
            .map_err(|source| CgroupError::Open {
                path: cg.procs_dir.clone(),
                source,
            })?;
        Ok(Some(OwnedFd::from(file)))
    }

    fn self_join_fds(&self, _cg: &SandboxCgroup) -> Result<Vec<std::os::fd::OwnedFd>, CgroupError> {
        // Children are cloned into their cgroup (CLONE_INTO_CGROUP).
        Ok(Vec::new())
    }

    fn attach(&self, cg: &SandboxCgroup, pid: i32) -> Result<(), CgroupError> {
        write_file(&cg.procs_dir.join("cgroup.procs"), &pid.to_string())
    }

    fn set_cpu_share(&self, cg: &SandboxCgroup, memory_mb: u64) -> Result<(), CgroupError> {
        let (quota, period) = cpu_quota_us(memory_mb);
        write_file(&cg.procs_dir.join("cpu.max"), &format!("{quota} {period}"))
    }

    fn set_memory_limit(&self, cg: &SandboxCgroup, memory_mb: u64) -> Result<(), CgroupError> {
        let bytes = Limits { memory_mb, pids: 1 }.memory_bytes()?;
        // memory.swap.max was written 0 at creation and is independent of memory.max.
        write_file(&cg.procs_dir.join("memory.max"), &bytes.to_string())
    }

    fn stats(&self, cg: &SandboxCgroup) -> Result<CgroupStats, CgroupError> {
        let dir = &cg.procs_dir;
        let events_path = dir.join("memory.events");
        let events = read_file(&events_path)?;
        // `oom_kill` (4.13+) counts processes killed by the OOM killer. Before 4.13 the
        // only counter was `oom`, which then meant "OOM killer invoked in this cgroup";
        // since 4.13 `oom` also counts limit hits that ended without a kill, so it is used
        // only when `oom_kill` is absent.
        let oom_kills = match flat_keyed(&events_path, &events, "oom_kill")? {
            Some(n) => n,
            None => flat_keyed(&events_path, &events, "oom")?.unwrap_or(0),
        };
        Ok(CgroupStats {
            // memory.peak arrived in 5.19.
            memory_peak_bytes: read_optional_u64(&dir.join("memory.peak"))?,
            oom_kills,
            memory_current_bytes: read_optional_u64(&dir.join("memory.current"))?,
        })
    }

    fn memory_peak_path(&self, cg: &SandboxCgroup) -> PathBuf {
        cg.procs_dir.join("memory.peak")
    }

    fn freeze(&self, cg: &SandboxCgroup) -> Result<(), CgroupError> {
        Self::set_frozen(&cg.procs_dir, true)
    }

    fn thaw(&self, cg: &SandboxCgroup) -> Result<(), CgroupError> {
        Self::set_frozen(&cg.procs_dir, false)
    }

    fn kill_all(&self, cg: &SandboxCgroup) -> Result<(), CgroupError> {
        let dir = &cg.procs_dir;
        let kill_file = dir.join("cgroup.kill");
        let has_kill = kill_file.exists();
        if has_kill {
            // 5.14+: the kernel kills every task, forks in flight included.
            write_file(&kill_file, "1")?;
        } else {
            // Older kernels: freeze so nothing forks while we list and kill, then thaw so
            // the pending SIGKILLs are delivered. A failed freeze does not stop the kill:
            // the loop below repeats it until the cgroup is empty.
            let frozen = dir.join("cgroup.freeze").exists() && Self::set_frozen(dir, true).is_ok();
            kill_pids(&read_procs(dir)?)?;
            if frozen {
                Self::set_frozen(dir, false)?;
            }
        }
        let empty = poll_until(KILL_TIMEOUT, || {
            if !Self::populated(dir)? {
                return Ok(true);
            }
            if !has_kill {
                kill_pids(&read_procs(dir)?)?;
            }
            Ok(false)
        })?;
        if empty {
            return Ok(());
        }
        Err(CgroupError::KillTimeout {
            path: dir.clone(),
            pids: read_procs(dir)?,
            timeout: KILL_TIMEOUT,
        })
    }

    fn remove(&self, cg: SandboxCgroup) -> Result<(), CgroupError> {
        if Self::populated(&cg.procs_dir)? {
            self.kill_all(&cg)?;
        }
        remove_dir(&cg.procs_dir)
    }

    fn list(&self) -> Result<Vec<String>, CgroupError> {
        list_subdirs(&self.parent)
    }

    fn remove_by_name(&self, name: &str) -> Result<(), CgroupError> {
        self.remove(self.handle(name)?)
    }

    fn remove_parent_if_empty(&self) -> Result<(), CgroupError> {
        remove_parent_dir(&self.parent)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil;
    use super::*;

    /// A fake cgroup2 root with Hearth's parent in it, as the kernel would show them.
    fn fake_root() -> (tempfile::TempDir, V2Driver) {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::write(
            r.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        )
        .unwrap();
        fs::write(r.join("cgroup.subtree_control"), "cpu io memory pids\n").unwrap();
        let driver = V2Driver::new(r, "hearth").unwrap();
        (root, driver)
    }

    /// Hearth's parent as the kernel creates it under a root delegating cpu io memory pids.
    fn fake_parent(root: &Path) -> PathBuf {
        let p = root.join("hearth");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        fs::write(p.join("cgroup.subtree_control"), "").unwrap();
        fs::write(p.join("cgroup.procs"), "").unwrap();
        p
    }

    /// A sandbox directory with the files a fresh v2 cgroup has (memory, pids, cpu enabled).
    fn fake_sandbox(parent: &Path, name: &str) -> PathBuf {
        let d = parent.join(name);
        fs::create_dir(&d).unwrap();
        for (file, content) in [
            ("cgroup.procs", ""),
            ("cgroup.events", "populated 0\nfrozen 0\n"),
            ("cgroup.freeze", "0\n"),
            ("cgroup.kill", ""),
            ("memory.max", "max\n"),
            ("memory.swap.max", "max\n"),
            ("memory.oom.group", "0\n"),
            ("memory.current", "0\n"),
            ("memory.peak", "0\n"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
            ),
            ("pids.max", "max\n"),
            ("cpu.max", "max 100000\n"),
        ] {
            fs::write(d.join(file), content).unwrap();
        }
        d
    }

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap()
    }

    #[test]
    fn new_rejects_bad_parents() {
        assert!(V2Driver::new(Path::new("/sys/fs/cgroup"), "../x").is_err());
        assert!(V2Driver::new(Path::new("/sys/fs/cgroup"), "/abs").is_err());
    }

    #[test]
    fn ensure_parent_enables_only_the_missing_controllers() {
        let (root, driver) = fake_root();
        let p = fake_parent(root.path());
        fs::write(p.join("cgroup.subtree_control"), "memory\n").unwrap();
        driver.ensure_parent().unwrap();
        assert_eq!(read(&p.join("cgroup.subtree_control")), "+pids +cpu");

        fs::write(p.join("cgroup.subtree_control"), "").unwrap();
        driver.ensure_parent().unwrap();
        assert_eq!(
            read(&p.join("cgroup.subtree_control")),
            "+memory +pids +cpu"
        );

        // All enabled: nothing is written (the fake file keeps its content).
        fs::write(p.join("cgroup.subtree_control"), "cpu memory pids\n").unwrap();
        driver.ensure_parent().unwrap();
        assert_eq!(read(&p.join("cgroup.subtree_control")), "cpu memory pids\n");
    }

    #[test]
    fn ensure_parent_fails_clearly_without_controllers() {
        let (root, driver) = fake_root();
        let p = fake_parent(root.path());
        fs::write(p.join("cgroup.controllers"), "io memory pids\n").unwrap();
        let err = driver.ensure_parent().unwrap_err();
        match &err {
            CgroupError::ControllersUnavailable { path, missing, .. } => {
                assert_eq!(path, &p);
                assert_eq!(missing, "cpu");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("cgroup.controllers lacks cpu"));
        assert_eq!(read(&p.join("cgroup.subtree_control")), "");
    }

    #[test]
    fn ensure_parent_never_writes_above_the_parent() {
        let (root, driver) = fake_root();
        fs::write(root.path().join("cgroup.subtree_control"), "memory io\n").unwrap();
        let err = driver.ensure_parent().unwrap_err();
        match err {
            CgroupError::NotDelegated { path, missing } => {
                assert_eq!(path, root.path());
                assert_eq!(missing, "pids cpu");
            }
            other => panic!("{other:?}"),
        }
        // Checked before mkdir: no parent left behind, the root untouched.
        assert!(!root.path().join("hearth").exists());
        assert_eq!(
            read(&root.path().join("cgroup.subtree_control")),
            "memory io\n"
        );

        let deep = V2Driver::new(root.path(), "missing/hearth").unwrap();
        assert!(matches!(
            deep.ensure_parent(),
            Err(CgroupError::AncestorMissing { .. })
        ));
    }

    #[test]
    fn write_limits_writes_every_limit() {
        let (root, _driver) = fake_root();
        let d = fake_sandbox(&fake_parent(root.path()), "sb");
        V2Driver::write_limits(
            &d,
            &Limits {
                memory_mb: 128,
                pids: 64,
            },
        )
        .unwrap();
        assert_eq!(read(&d.join("memory.max")), "134217728");
        assert_eq!(read(&d.join("memory.swap.max")), "0");
        assert_eq!(read(&d.join("memory.oom.group")), "1");
        assert_eq!(read(&d.join("pids.max")), "64");
        assert_eq!(read(&d.join("cpu.max")), "7235 100000");
        // A boosted share, then back to the sandbox's own.
        let driver = V2Driver::new(root.path(), "hearth").unwrap();
        let cg = driver.handle("sb").unwrap();
        driver.set_cpu_share(&cg, 1769).unwrap();
        assert_eq!(read(&d.join("cpu.max")), "100000 100000");
        driver.set_cpu_share(&cg, 128).unwrap();
        assert_eq!(read(&d.join("cpu.max")), "7235 100000");
        // A blank's placeholder limit, then its function's; swap stays off.
        driver.set_memory_limit(&cg, 3008).unwrap();
        assert_eq!(read(&d.join("memory.max")), "3154116608");
        assert_eq!(read(&d.join("memory.swap.max")), "0");
        driver.set_memory_limit(&cg, 128).unwrap();
        assert_eq!(read(&d.join("memory.max")), "134217728");
        assert!(matches!(
            driver.set_memory_limit(&cg, 0),
            Err(CgroupError::InvalidLimits { .. })
        ));
        assert_eq!(read(&d.join("cpu.max")), "7235 100000");
    }

    #[test]
    fn write_limits_without_swap_accounting_or_oom_group() {
        let (root, _driver) = fake_root();
        let d = fake_sandbox(&fake_parent(root.path()), "sb");
        fs::remove_file(d.join("memory.swap.max")).unwrap();
        fs::remove_file(d.join("memory.oom.group")).unwrap();
        V2Driver::write_limits(
            &d,
            &Limits {
                memory_mb: 1769,
                pids: 10,
            },
        )
        .unwrap();
        assert_eq!(read(&d.join("memory.max")), "1854930944");
        assert_eq!(read(&d.join("cpu.max")), "100000 100000");
        // Control files are never created by us.
        assert!(!d.join("memory.swap.max").exists());
        assert!(!d.join("memory.oom.group").exists());
    }

    #[test]
    fn write_limits_fails_closed_without_a_controller() {
        let (root, _driver) = fake_root();
        let d = fake_sandbox(&fake_parent(root.path()), "sb");
        fs::remove_file(d.join("cpu.max")).unwrap();
        let err = V2Driver::write_limits(
            &d,
            &Limits {
                memory_mb: 128,
                pids: 64,
            },
        )
        .unwrap_err();
        assert!(
            matches!(&err, CgroupError::Write { path, .. } if path == &d.join("cpu.max")),
            "{err:?}"
        );
    }

    #[test]
    fn create_removes_what_it_made_when_a_limit_fails() {
        let (root, driver) = fake_root();
        let p = fake_parent(root.path());
        // A fake mkdir produces no control files, so writing memory.max fails: the
        // directory must be gone again afterwards.
        let err = driver
            .create(
                "sb",
                &Limits {
                    memory_mb: 128,
                    pids: 64,
                },
            )
            .unwrap_err();
        assert!(
            matches!(&err, CgroupError::Write { path, .. } if path == &p.join("sb/memory.max")),
            "{err:?}"
        );
        assert!(!p.join("sb").exists());
    }

    #[test]
    fn create_refuses_an_existing_cgroup_and_leaves_it() {
        let (root, driver) = fake_root();
        let p = fake_parent(root.path());
        let d = fake_sandbox(&p, "sb");
        let limits = Limits {
            memory_mb: 128,
            pids: 64,
        };
        assert!(matches!(
            driver.create("sb", &limits),
            Err(CgroupError::AlreadyExists { .. })
        ));
        assert_eq!(read(&d.join("memory.max")), "max\n");
        assert!(matches!(
            driver.create("../sb", &limits),
            Err(CgroupError::InvalidName { .. })
        ));
        assert!(matches!(
            driver.create(
                "new",
                &Limits {
                    memory_mb: 0,
                    pids: 1
                }
            ),
            Err(CgroupError::InvalidLimits { .. })
        ));
        assert!(!p.join("new").exists());
    }

    #[test]
    fn attach_writes_the_pid() {
        let (root, driver) = fake_root();
        let d = fake_sandbox(&fake_parent(root.path()), "sb");
        driver.attach(&driver.handle("sb").unwrap(), 4242).unwrap();
        assert_eq!(read(&d.join("cgroup.procs")), "4242");
    }

    #[test]
    fn stats_parse_real_contents() {
        let (root, driver) = fake_root();
        let d = fake_sandbox(&fake_parent(root.path()), "sb");
        fs::write(d.join("memory.peak"), "134217728\n").unwrap();
        fs::write(d.join("memory.current"), "1048576\n").unwrap();
        fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        let cg = driver.handle("sb").unwrap();
        assert_eq!(
            driver.stats(&cg).unwrap(),
            CgroupStats {
                memory_peak_bytes: Some(134_217_728),
                oom_kills: 1,
                memory_current_bytes: Some(1_048_576),
            }
        );

        // Before 5.19 there is no memory.peak; before 4.13 no oom_kill line.
        fs::remove_file(d.join("memory.peak")).unwrap();
        fs::write(d.join("memory.events"), "low 0\nhigh 0\nmax 3\noom 2\n").unwrap();
        let stats = driver.stats(&cg).unwrap();
        assert_eq!(stats.memory_peak_bytes, None);
        assert_eq!(stats.oom_kills, 2);

        fs::write(d.join("memory.current"), "lots\n").unwrap();
        assert!(matches!(driver.stats(&cg), Err(CgroupError::Parse { .. })));
    }

    #[test]
    fn freeze_and_thaw_write_cgroup_freeze() {
        let (root, driver) = fake_root();
        let d = fake_sandbox(&fake_parent(root.path()), "sb");
        let cg = driver.handle("sb").unwrap();
        // The fake kernel has already reported the state we wait for.
        fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        driver.freeze(&cg).unwrap();
        assert_eq!(read(&d.join("cgroup.freeze")), "1");
        fs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        driver.thaw(&cg).unwrap();
        assert_eq!(read(&d.join("cgroup.freeze")), "0");
    }

    #[test]
    fn kill_all_uses_cgroup_kill() {
        let (root, driver) = fake_root();
        let d = fake_sandbox(&fake_parent(root.path()), "sb");
        driver.kill_all(&driver.handle("sb").unwrap()).unwrap();
        assert_eq!(read(&d.join("cgroup.kill")), "1");
        // Without cgroup.kill (before 5.14) nor cgroup.freeze (before 5.2): the pids in
        // cgroup.procs (here none) are killed until the cgroup is empty.
        fs::remove_file(d.join("cgroup.kill")).unwrap();
        fs::remove_file(d.join("cgroup.freeze")).unwrap();
        driver.kill_all(&driver.handle("sb").unwrap()).unwrap();
        assert!(!d.join("cgroup.kill").exists());
    }

    #[test]
    fn clone_into_fd_is_an_o_path_fd_of_the_directory() {
        let (root, driver) = fake_root();
        let d = fake_sandbox(&fake_parent(root.path()), "sb");
        let fd = driver
            .clone_into_fd(&driver.handle("sb").unwrap())
            .unwrap()
            .expect("v2 gives an fd");
        use std::os::fd::AsRawFd;
        let raw = fd.as_raw_fd();
        let target = fs::read_link(format!("/proc/self/fd/{raw}")).unwrap();
        assert_eq!(target, d);
        let flags = read(Path::new(&format!("/proc/self/fdinfo/{raw}")));
        let flags = flags
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .map(|f| i32::from_str_radix(f.trim(), 8).unwrap())
            .unwrap();
        assert_ne!(flags & libc::O_PATH, 0);
        assert_ne!(flags & libc::O_DIRECTORY, 0);
        assert_ne!(flags & libc::O_CLOEXEC, 0);
    }

    #[test]
    fn list_and_remove() {
        let (root, driver) = fake_root();
        assert!(driver.list().unwrap().is_empty(), "no parent yet");
        let p = fake_parent(root.path());
        fs::create_dir(p.join("b")).unwrap();
        fs::create_dir(p.join("a")).unwrap();
        assert_eq!(driver.list().unwrap(), vec!["a".to_owned(), "b".to_owned()]);

        // An empty directory (a real cgroup's control files are not removable entries)
        // and one that is already gone both end up removed.
        driver.remove(driver.handle("a").unwrap()).unwrap();
        driver.remove_by_name("b").unwrap();
        driver.remove_by_name("never-existed").unwrap();
        assert!(driver.list().unwrap().is_empty());
        assert!(matches!(
            driver.remove_by_name(".."),
            Err(CgroupError::InvalidName { .. })
        ));

        // A directory that rmdir refuses reports its path.
        let d = fake_sandbox(&p, "c");
        let err = driver.remove_by_name("c").unwrap_err();
        assert!(
            matches!(&err, CgroupError::Rmdir { path, .. } if path == &d),
            "{err:?}"
        );
    }

    #[test]
    fn remove_parent_if_empty_leaves_a_busy_parent() {
        let (root, driver) = fake_root();
        let p = root.path().join("hearth");
        fs::create_dir_all(p.join("sb")).unwrap();
        driver.remove_parent_if_empty().unwrap();
        assert!(p.exists());
        fs::remove_dir(p.join("sb")).unwrap();
        driver.remove_parent_if_empty().unwrap();
        assert!(!p.exists());
        driver.remove_parent_if_empty().unwrap();
    }

    /// Root-only, on a hybrid host's controller-less `unified` mount: the core v2 files
    /// (`cgroup.procs`, `cgroup.freeze`, `cgroup.events`, `cgroup.kill`) need no
    /// controllers, so attach, freeze, thaw, kill_all, list and remove run for real.
    /// `create` cannot (no memory/pids/cpu here), so the test makes the directories itself.
    #[test]
    fn real_core_files_on_the_unified_mount() {
        if !testutil::is_root() {
            println!("skipped: needs root");
            return;
        }
        let unified = Path::new("/sys/fs/cgroup/unified");
        if super::super::detect(Path::new("/sys/fs/cgroup")).ok()
            != Some(super::super::CgroupMode::Hybrid)
        {
            println!("skipped: needs a hybrid host");
            return;
        }
        let parent = testutil::unique_parent("v2core");
        let driver = V2Driver::new(unified, &parent).unwrap();
        let _parent_guard = testutil::ParentGuard(&driver);

        // No controllers are delegated here: ensure_parent refuses without creating anything.
        match driver.ensure_parent() {
            Err(CgroupError::NotDelegated { path, .. }) => assert_eq!(path, unified),
            other => panic!("{other:?}"),
        }
        assert!(!unified.join(&parent).exists());

        fs::create_dir(unified.join(&parent)).unwrap();
        fs::create_dir(unified.join(&parent).join("sb")).unwrap();
        let guard = testutil::CgroupGuard::new(&driver, "sb");
        let cg = driver.handle("sb").unwrap();
        assert_eq!(driver.list().unwrap(), vec!["sb".to_owned()]);
        assert!(driver.clone_into_fd(&cg).unwrap().is_some());

        let mut child = testutil::GatedChild::spawn("exec sleep 1000");
        driver.attach(&cg, child.pid()).unwrap();
        child.release();
        assert_eq!(read_procs(&cg.procs_dir).unwrap(), vec![child.pid()]);
        assert!(V2Driver::populated(&cg.procs_dir).unwrap());

        driver.freeze(&cg).unwrap();
        assert!(read(&cg.procs_dir.join("cgroup.events")).contains("frozen 1"));
        driver.thaw(&cg).unwrap();
        assert!(read(&cg.procs_dir.join("cgroup.events")).contains("frozen 0"));

        driver.kill_all(&cg).unwrap();
        assert_eq!(child.wait_signal(), Some(libc::SIGKILL));
        assert!(!V2Driver::populated(&cg.procs_dir).unwrap());

        // remove of a populated cgroup kills first.
        let mut child2 = testutil::GatedChild::spawn("exec sleep 1000");
        driver.attach(&cg, child2.pid()).unwrap();
        child2.release();
        driver.remove(cg).unwrap();
        guard.disarm();
        assert_eq!(child2.wait_signal(), Some(libc::SIGKILL));
        assert!(!unified.join(&parent).join("sb").exists());
        driver.remove_parent_if_empty().unwrap();
        assert!(!unified.join(&parent).exists());
    }

    #[test]
    fn placement_uses_a_delegated_cgroup_and_its_supervisor_leaf() {
        let delegated = |rel: &str| rel == "system.slice/hearth.service";
        let want = Placement {
            parent: "system.slice/hearth.service/sandboxes".into(),
            delegated: Some("system.slice/hearth.service".into()),
        };
        assert_eq!(placement("/system.slice/hearth.service\n", delegated), want);
        assert_eq!(
            placement("/system.slice/hearth.service/supervisor", delegated),
            want
        );
        let root = Placement {
            parent: "hearth".into(),
            delegated: None,
        };
        // The root cgroup, an undelegated session, a leaf named supervisor elsewhere.
        assert_eq!(placement("/", delegated), root);
        assert_eq!(placement("", delegated), root);
        assert_eq!(
            placement("/user.slice/user-0.slice/session-3.scope", delegated),
            root
        );
        assert_eq!(placement("/other.service/supervisor", delegated), root);
    }

    /// A fake cgroup directory holding `procs`, offering cpu io memory pids to its children
    /// but enabling none.
    fn fake_cgroup(dir: &Path, procs: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        fs::write(dir.join("cgroup.procs"), procs).unwrap();
    }

    #[test]
    fn a_delegated_cgroup_is_organised_before_the_first_sandbox() {
        let (root, _) = fake_root();
        let base = root.path().join("system.slice/hearth.service");
        fake_cgroup(&base, "12\n");
        // mkdir on a plain filesystem makes no control files: pre-create what the kernel would.
        fake_cgroup(&base.join(SUPERVISOR_LEAF), "");
        fake_cgroup(&base.join(SANDBOXES_CHILD), "");
        let driver = V2Driver::placed(
            root.path(),
            &placement("/system.slice/hearth.service", |r| {
                r == "system.slice/hearth.service"
            }),
        )
        .unwrap();
        assert_eq!(driver.parent(), base.join(SANDBOXES_CHILD));
        driver.ensure_parent().unwrap();
        // The process moved to the leaf, then the controllers were enabled for the children.
        assert_eq!(read(&base.join("supervisor/cgroup.procs")), "12");
        assert_eq!(
            read(&base.join("cgroup.subtree_control")),
            "+memory +pids +cpu"
        );
        assert_eq!(
            read(&base.join("sandboxes/cgroup.subtree_control")),
            "+memory +pids +cpu"
        );
        // Nothing above the delegated cgroup was written.
        assert_eq!(
            read(&root.path().join("cgroup.subtree_control")),
            "cpu io memory pids\n"
        );
    }

    #[test]
    fn a_delegated_cgroup_without_the_controllers_is_refused() {
        let (root, _) = fake_root();
        let base = root.path().join("svc");
        fake_cgroup(&base, "12\n");
        fs::write(base.join("cgroup.controllers"), "cpu pids\n").unwrap();
        let driver = V2Driver::placed(
            root.path(),
            &Placement {
                parent: "svc/sandboxes".into(),
                delegated: Some("svc".into()),
            },
        )
        .unwrap();
        let err = driver.ensure_parent().unwrap_err();
        assert!(
            matches!(&err, CgroupError::ControllersUnavailable { missing, .. } if missing == "memory"),
            "{err}"
        );
        // Nothing moved, nothing created.
        assert!(!base.join(SUPERVISOR_LEAF).exists());
    }
}
