//! The cgroup v1 driver, for hybrid and legacy hosts: one directory per sandbox in each of
//! the memory, pids, cpu and freezer hierarchies, at `<root>/<hierarchy>/<parent>/<name>`.
//!
//! Hierarchies are found by name under the root: `<root>/<controller>` if it exists (often
//! a symlink to a co-mounted `cpu,cpuacct`), else the entry whose comma-separated name lists
//! the controller. Controllers co-mounted in one hierarchy share one directory per sandbox.
//! All four are required: memory and pids carry limits, cpu the CPU share, and freezer is
//! what makes [`CgroupDriver::kill_all`] safe against fork loops.
//!
//! Limits written at creation: `memory.limit_in_bytes` (exactly `memory_mb` MiB), then
//! `memory.memsw.limit_in_bytes` to the same value so that memory plus swap cannot exceed
//! it (only when the file exists: it needs `swapaccount=1`), `memory.swappiness` 0,
//! `pids.max`, `cpu.cfs_period_us` then `cpu.cfs_quota_us`. v1 has no equivalent of v2's
//! `memory.oom.group`: an OOM kills one process, and the reaper ends the sandbox.
//!
//! `memory.use_hierarchy` must be 1 in Hearth's parent so that the parent's memory
//! accounting (and any limit an operator puts on it) covers all sandboxes. It is the only
//! possible value since Linux 5.11 and systemd sets it at the root before that; if it is 0,
//! [`CgroupDriver::ensure_parent`] sets it (allowed while the parent has no children) or
//! fails.
//!
//! Not done here: the unified mount of a hybrid host (it has no controllers; its
//! `cgroup.kill` could replace the freezer dance, but the freezer works everywhere v1 does),
//! cpuset, blkio, and the named `systemd` hierarchy.

use std::fs;
use std::path::{Path, PathBuf};

use super::{
    check_name, check_parent, cpu_quota_us, flat_keyed, kill_pids, list_subdirs, make_dir,
    parse_u64, poll_until, read_file, read_optional, read_optional_u64, read_procs, remove_dir,
    remove_parent_dir, write_file, CgroupDriver, CgroupError, CgroupStats, Limits, SandboxCgroup,
    FREEZE_TIMEOUT, KILL_TIMEOUT,
};

/// The v1 controllers Hearth uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Memory,
    Pids,
    Cpu,
    Freezer,
}

impl Controller {
    const ALL: [Controller; 4] = [
        Controller::Memory,
        Controller::Pids,
        Controller::Cpu,
        Controller::Freezer,
    ];

    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Freezer => "freezer",
        }
    }
}

/// One mounted v1 hierarchy and the controllers of ours it carries.
#[derive(Debug, Clone)]
struct Hierarchy {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    mount: PathBuf,
    controllers: Vec<Controller>,
}

/// Drives sandbox cgroups on a hybrid or legacy (cgroup v1) host.
#[derive(Debug, Clone)]
pub struct V1Driver {
    /// The directory holding the hierarchies, normally `/sys/fs/cgroup`.
    root: PathBuf,
    /// Hearth's parent, relative to each hierarchy.
    parent: PathBuf,
    /// The distinct hierarchies holding memory, pids, cpu and freezer, in that order.
    hierarchies: Vec<Hierarchy>,
}

impl V1Driver {
    /// Finds the memory, pids, cpu and freezer hierarchies under `root` and returns a
    /// driver for sandboxes under `<hierarchy>/<parent>`. Nothing is written.
    pub fn new(root: &Path, parent: &str) -> Result<Self, CgroupError> {
        let parent = check_parent(parent)?;
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        let mut seen: Vec<PathBuf> = Vec::new();
        for controller in Controller::ALL {
            let mount = find_hierarchy(root, controller)?;
            // `cpu` may be a symlink to `cpu,cpuacct`; compare real paths so a hierarchy
            // shared by two of our controllers gets one directory per sandbox.
            let real = fs::canonicalize(&mount).unwrap_or_else(|_| mount.clone());
            match seen.iter().position(|s| *s == real) {
                Some(i) => hierarchies[i].controllers.push(controller),
                None => {
                    seen.push(real);
                    hierarchies.push(Hierarchy {
                        mount,
                        controllers: vec![controller],
                    });
                }
            }
        }
        Ok(Self {
            root: root.to_owned(),
            parent,
            hierarchies,
        })
    }

    /// The directory holding the hierarchies.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where each hierarchy this driver writes to is mounted.
    pub fn hierarchy_mounts(&self) -> Vec<&Path> {
        self.hierarchies.iter().map(|h| h.mount.as_path()).collect()
    }

    fn parent_dir(&self, controller: Controller) -> PathBuf {
        let h = self
            .hierarchies
            .iter()
            .find(|h| h.controllers.contains(&controller))
            .expect("new() found a hierarchy for every controller");
        h.mount.join(&self.parent)
    }

    fn dir(&self, controller: Controller, name: &str) -> PathBuf {
        self.parent_dir(controller).join(name)
    }

    fn handle(&self, name: &str) -> Result<SandboxCgroup, CgroupError> {
        check_name(name)?;
        let dirs = self
            .hierarchies
            .iter()
            .map(|h| h.mount.join(&self.parent).join(name))
            .collect();
        Ok(SandboxCgroup::new(
            name,
            dirs,
            self.dir(Controller::Freezer, name),
        ))
    }

    /// Writes every limit into the existing directories of sandbox `name`.
    fn write_limits(&self, name: &str, limits: &Limits) -> Result<(), CgroupError> {
        let memory = limits.memory_bytes()?.to_string();
        let mem = self.dir(Controller::Memory, name);
        // memsw must stay >= the memory limit, so the memory limit goes first.
        write_file(&mem.join("memory.limit_in_bytes"), &memory)?;
        let memsw = mem.join("memory.memsw.limit_in_bytes");
        let memsw_set = memsw.exists();
        if memsw_set {
            write_file(&memsw, &memory)?;
        }
        // Swappiness 0 stops reclaim at the cgroup's limit from swapping anonymous memory,
        // which matters when memsw is unavailable. Kernels before 4.x refuse a per-cgroup
        // value with EINVAL under a use_hierarchy parent; that is harmless only when the
        // memsw limit already forbids swap, so only then is EINVAL accepted.
        match write_file(&mem.join("memory.swappiness"), "0") {
            Err(CgroupError::Write { source, .. })
                if memsw_set && source.raw_os_error() == Some(libc::EINVAL) => {}
            other => other?,
        }
        write_file(
            &self.dir(Controller::Pids, name).join("pids.max"),
            &limits.pids.to_string(),
        )?;
        let cpu = self.dir(Controller::Cpu, name);
        let (quota, period) = cpu_quota_us(limits.memory_mb);
        write_file(&cpu.join("cpu.cfs_period_us"), &period.to_string())?;
        write_file(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
        Ok(())
    }

    /// Pids in any of the sandbox's hierarchies (a half-attached process counts too).
    fn procs(cg: &SandboxCgroup) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        for dir in &cg.dirs {
            pids.extend(read_procs(dir)?);
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Writes `freezer.state` and waits until it reads back the same state. While the
    /// state is still `FREEZING`, `FROZEN` is written again: each write makes the kernel
    /// retry the tasks that were not yet frozen (for instance ones that were forking).
    fn set_freezer(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
        let want = if frozen { "FROZEN" } else { "THAWED" };
        let state = dir.join("freezer.state");
        write_file(&state, want)?;
        let mut last = String::new();
        let done = poll_until(FREEZE_TIMEOUT, || {
            last = read_file(&state)?.trim().to_owned();
            if last == want {
                return Ok(true);
            }
            if frozen {
                write_file(&state, want)?;
            }
            Ok(false)
        })?;
        if done {
            return Ok(());
        }
        if frozen {
            // Do not leave a half-frozen sandbox behind; the caller decides what to do.
            let _ = write_file(&state, "THAWED");
        }
        Err(CgroupError::FreezeTimeout {
            path: dir.to_owned(),
            wanted: if frozen { "frozen" } else { "thawed" },
            last,
            timeout: FREEZE_TIMEOUT,
        })
    }
}

/// The mount of `controller`'s hierarchy under `root`: `<root>/<controller>` if it is a
/// directory (or a symlink to one), else the first entry, by name, whose comma-separated
/// name lists the controller (`cpu,cpuacct`).
fn find_hierarchy(root: &Path, controller: Controller) -> Result<PathBuf, CgroupError> {
    let exact = root.join(controller.name());
    if exact.is_dir() {
        return Ok(exact);
    }
    let mut names: Vec<String> = fs::read_dir(root)
        .map_err(|source| CgroupError::List {
            path: root.to_owned(),
            source,
        })?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
        .into_iter()
        .find(|n| n.split(',').any(|c| c == controller.name()) && root.join(n).is_dir())
        .map(|n| root.join(n))
        .ok_or_else(|| CgroupError::ControllerMissing {
            root: root.to_owned(),
            controller: controller.name(),
        })
}

impl CgroupDriver for V1Driver {
    fn mode_name(&self) -> &'static str {
        "v1"
    }

    fn ensure_parent(&self) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            let dir = h.mount.join(&self.parent);
            if dir.is_dir() {
                continue;
            }
            let above = dir
                .parent()
                .expect("parent is a non-empty relative path under the mount");
            if !above.is_dir() {
                return Err(CgroupError::AncestorMissing {
                    path: above.to_owned(),
                });
            }
            match make_dir(&dir) {
                // Another Hearth process may have created it meanwhile.
                Ok(()) | Err(CgroupError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let use_hierarchy = self
            .parent_dir(Controller::Memory)
            .join("memory.use_hierarchy");
        if let Some(value) = read_optional(&use_hierarchy)? {
            if value.trim() != "1" {
                let fixed = write_file(&use_hierarchy, "1").is_ok()
                    && read_file(&use_hierarchy)?.trim() == "1";
                if !fixed {
                    return Err(CgroupError::UseHierarchy {
                        path: use_hierarchy,
                        value: value.trim().to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    fn create(&self, name: &str, limits: &Limits) -> Result<SandboxCgroup, CgroupError> {
        let cg = self.handle(name)?;
        limits.memory_bytes()?;
        let mut made: Vec<&Path> = Vec::new();
        let mut result = Ok(());
        for dir in &cg.dirs {
            result = make_dir(dir);
            if result.is_err() {
                break;
            }
            made.push(dir);
        }
        if result.is_ok() {
            result = self.write_limits(name, limits);
        }
        if let Err(e) = result {
            // Nothing has joined yet, so the directories are empty and rmdir succeeds. A
            // directory that already existed (AlreadyExists) is not ours and stays.
            for dir in made.into_iter().rev() {
                let _ = remove_dir(dir);
            }
            return Err(e);
        }
        Ok(cg)
    }

    fn clone_into_fd(
        &self,
        _cg: &SandboxCgroup,
    ) -> Result<Option<std::os::fd::OwnedFd>, CgroupError> {
        // CLONE_INTO_CGROUP takes a cgroup2 directory only.
        Ok(None)
    }

    fn attach(&self, cg: &SandboxCgroup, pid: i32) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        for dir in &cg.dirs {
            write_file(&dir.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    fn self_join_fds(&self, cg: &SandboxCgroup) -> Result<Vec<std::os::fd::OwnedFd>, CgroupError> {
        cg.dirs
            .iter()
            .map(|dir| {
                let path = dir.join("tasks");
                fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map(std::os::fd::OwnedFd::from)
                    .map_err(|source| CgroupError::Open { path, source })
            })
            .collect()
    }

    fn set_cpu_share(&self, cg: &SandboxCgroup, memory_mb: u64) -> Result<(), CgroupError> {
        let (quota, _) = cpu_quota_us(memory_mb);
        write_file(
            &self
                .dir(Controller::Cpu, cg.name())
                .join("cpu.cfs_quota_us"),
            &quota.to_string(),
        )
    }

    fn set_memory_limit(&self, cg: &SandboxCgroup, memory_mb: u64) -> Result<(), CgroupError> {
        let bytes = Limits { memory_mb, pids: 1 }.memory_bytes()?;
        let mem = self.dir(Controller::Memory, cg.name());
        let limit = mem.join("memory.limit_in_bytes");
        let memsw = mem.join("memory.memsw.limit_in_bytes");
        let value = bytes.to_string();
        if !memsw.exists() {
            return write_file(&limit, &value);
        }
        // memsw ≥ limit must hold after each write: raise memsw before the limit, lower
        // the limit before memsw.
        let current = parse_u64(&limit, &read_file(&limit)?)?;
        if bytes >= current {
            write_file(&memsw, &value)?;
            write_file(&limit, &value)
        } else {
            write_file(&limit, &value)?;
            write_file(&memsw, &value)
        }
    }

    fn stats(&self, cg: &SandboxCgroup) -> Result<CgroupStats, CgroupError> {
        let mem = self.dir(Controller::Memory, &cg.name);
        let oom_path = mem.join("memory.oom_control");
        let oom_control = read_file(&oom_path)?;
        Ok(CgroupStats {
            memory_peak_bytes: read_optional_u64(&mem.join("memory.max_usage_in_bytes"))?,
            // The `oom_kill` line exists since 4.13; before that v1 counts no OOM kills at
            // all (`under_oom` is only "now"), so the reaper must also look at SIGKILL.
            oom_kills: flat_keyed(&oom_path, &oom_control, "oom_kill")?.unwrap_or(0),
            memory_current_bytes: read_optional_u64(&mem.join("memory.usage_in_bytes"))?,
        })
    }

    fn memory_peak_path(&self, cg: &SandboxCgroup) -> PathBuf {
        self.dir(Controller::Memory, &cg.name)
            .join("memory.max_usage_in_bytes")
    }

    fn freeze(&self, cg: &SandboxCgroup) -> Result<(), CgroupError> {
        Self::set_freezer(&self.dir(Controller::Freezer, &cg.name), true)
    }

    fn thaw(&self, cg: &SandboxCgroup) -> Result<(), CgroupError> {
        Self::set_freezer(&self.dir(Controller::Freezer, &cg.name), false)
    }

    fn kill_all(&self, cg: &SandboxCgroup) -> Result<(), CgroupError> {
        // v1 has no cgroup.kill. Freeze first so no task can fork between our reading
        // cgroup.procs and the SIGKILLs; a frozen task keeps the signal pending and dies
        // as soon as it is thawed, without running another instruction of its own. If the
        // freeze times out (a task stuck in the kernel) we kill anyway and keep killing
        // whatever remains until the cgroup is empty.
        let freezer = self.dir(Controller::Freezer, &cg.name);
        let frozen = Self::set_freezer(&freezer, true).is_ok();
        let killed = Self::procs(cg).and_then(|pids| kill_pids(&pids));
        if frozen {
            Self::set_freezer(&freezer, false)?;
        }
        killed?;
        let empty = poll_until(KILL_TIMEOUT, || {
            let pids = Self::procs(cg)?;
            if pids.is_empty() {
                return Ok(true);
            }
            kill_pids(&pids)?;
            Ok(false)
        })?;
        if empty {
            return Ok(());
        }
        Err(CgroupError::KillTimeout {
            path: freezer,
            pids: Self::procs(cg)?,
            timeout: KILL_TIMEOUT,
        })
    }

    fn remove(&self, cg: SandboxCgroup) -> Result<(), CgroupError> {
        if !Self::procs(&cg)?.is_empty() {
            self.kill_all(&cg)?;
        }
        let mut first_err = None;
        for dir in &cg.dirs {
            if let Err(e) = remove_dir(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn list(&self) -> Result<Vec<String>, CgroupError> {
        let mut names = Vec::new();
        for h in &self.hierarchies {
            names.extend(list_subdirs(&h.mount.join(&self.parent))?);
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn remove_by_name(&self, name: &str) -> Result<(), CgroupError> {
        self.remove(self.handle(name)?)
    }

    fn remove_parent_if_empty(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for h in &self.hierarchies {
            if let Err(e) = remove_parent_dir(&h.mount.join(&self.parent)) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil;
    use super::*;

    /// A fake v1 root: memory, pids, freezer, and cpu co-mounted with cpuacct, each with
    /// Hearth's parent in it.
    fn fake_root(cpu_symlink: bool) -> (tempfile::TempDir, V1Driver) {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for h in [
            "memory",
            "pids",
            "cpu,cpuacct",
            "freezer",
            "blkio",
            "unified",
        ] {
            fs::create_dir_all(r.join(h).join("hearth")).unwrap();
            fs::write(r.join(h).join("hearth/cgroup.procs"), "").unwrap();
        }
        fs::write(r.join("memory/hearth/memory.use_hierarchy"), "1\n").unwrap();
        if cpu_symlink {
            std::os::unix::fs::symlink("cpu,cpuacct", r.join("cpu")).unwrap();
            std::os::unix::fs::symlink("cpu,cpuacct", r.join("cpuacct")).unwrap();
        }
        let driver = V1Driver::new(r, "hearth").unwrap();
        (root, driver)
    }

    /// The sandbox's directories with the files a fresh v1 cgroup has in each hierarchy.
    fn fake_sandbox(root: &Path, name: &str) {
        let files: [(&str, &[(&str, &str)]); 4] = [
            (
                "memory",
                &[
                    ("memory.limit_in_bytes", "9223372036854771712\n"),
                    ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
                    ("memory.swappiness", "60\n"),
                    ("memory.max_usage_in_bytes", "0\n"),
                    ("memory.usage_in_bytes", "0\n"),
                    (
                        "memory.oom_control",
                        "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
                    ),
                ],
            ),
            ("pids", &[("pids.max", "max\n")]),
            (
                "cpu,cpuacct",
                &[
                    ("cpu.cfs_period_us", "100000\n"),
                    ("cpu.cfs_quota_us", "-1\n"),
                ],
            ),
            ("freezer", &[("freezer.state", "THAWED\n")]),
        ];
        for (h, entries) in files {
            let d = root.join(h).join("hearth").join(name);
            fs::create_dir(&d).unwrap();
            fs::write(d.join("cgroup.procs"), "").unwrap();
            for (file, content) in entries {
                fs::write(d.join(file), content).unwrap();
            }
        }
    }

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap()
    }

    #[test]
    fn finds_co_mounted_and_symlinked_hierarchies() {
        for symlink in [false, true] {
            let (root, driver) = fake_root(symlink);
            let r = root.path();
            let cpu = if symlink { "cpu" } else { "cpu,cpuacct" };
            assert_eq!(
                driver.hierarchy_mounts(),
                vec![
                    r.join("memory"),
                    r.join("pids"),
                    r.join(cpu),
                    r.join("freezer")
                ]
            );
            let cg = driver.handle("sb").unwrap();
            assert_eq!(cg.dirs().len(), 4);
            assert_eq!(cg.procs_dir(), r.join("freezer/hearth/sb"));
        }
    }

    #[test]
    fn controllers_in_one_hierarchy_share_a_directory() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for h in ["memory", "pids", "cpu,freezer"] {
            fs::create_dir(r.join(h)).unwrap();
        }
        let driver = V1Driver::new(r, "hearth").unwrap();
        assert_eq!(
            driver.hierarchy_mounts(),
            vec![r.join("memory"), r.join("pids"), r.join("cpu,freezer")]
        );
    }

    #[test]
    fn a_missing_controller_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        for h in ["memory", "cpu", "freezer", "cpuacct"] {
            fs::create_dir(root.path().join(h)).unwrap();
        }
        let err = V1Driver::new(root.path(), "hearth").unwrap_err();
        assert!(matches!(
            err,
            CgroupError::ControllerMissing {
                controller: "pids",
                ..
            }
        ));
        assert!(err.to_string().contains("pids controller"));
    }

    #[test]
    fn ensure_parent_creates_the_parent_and_fixes_use_hierarchy() {
        let (root, driver) = fake_root(false);
        let r = root.path();
        fs::write(r.join("memory/hearth/memory.use_hierarchy"), "0\n").unwrap();
        driver.ensure_parent().unwrap();
        assert_eq!(read(&r.join("memory/hearth/memory.use_hierarchy")), "1");

        let fresh = V1Driver::new(r, "other").unwrap();
        fresh.ensure_parent().unwrap();
        for h in ["memory", "pids", "cpu,cpuacct", "freezer"] {
            assert!(r.join(h).join("other").is_dir(), "{h}");
        }
        assert!(!r.join("blkio/other").exists());
        let deep = V1Driver::new(r, "missing/hearth").unwrap();
        assert!(matches!(
            deep.ensure_parent(),
            Err(CgroupError::AncestorMissing { .. })
        ));
    }

    #[test]
    fn write_limits_writes_every_limit() {
        let (root, driver) = fake_root(false);
        let r = root.path();
        fake_sandbox(r, "sb");
        driver
            .write_limits(
                "sb",
                &Limits {
                    memory_mb: 128,
                    pids: 64,
                },
            )
            .unwrap();
        let m = r.join("memory/hearth/sb");
        assert_eq!(read(&m.join("memory.limit_in_bytes")), "134217728");
        assert_eq!(read(&m.join("memory.memsw.limit_in_bytes")), "134217728");
        assert_eq!(read(&m.join("memory.swappiness")), "0");
        assert_eq!(read(&r.join("pids/hearth/sb/pids.max")), "64");
        let c = r.join("cpu,cpuacct/hearth/sb");
        assert_eq!(read(&c.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(&c.join("cpu.cfs_quota_us")), "7235");
    }

    #[test]
    fn set_memory_limit_rewrites_limit_and_memsw() {
        let (root, driver) = fake_root(false);
        let r = root.path();
        fake_sandbox(r, "sb");
        let limits = Limits {
            memory_mb: 128,
            pids: 64,
        };
        driver.write_limits("sb", &limits).unwrap();
        let cg = driver.handle("sb").unwrap();
        let m = r.join("memory/hearth/sb");
        driver.set_memory_limit(&cg, 1024).unwrap();
        assert_eq!(read(&m.join("memory.limit_in_bytes")), "1073741824");
        assert_eq!(read(&m.join("memory.memsw.limit_in_bytes")), "1073741824");
        driver.set_memory_limit(&cg, 256).unwrap();
        assert_eq!(read(&m.join("memory.limit_in_bytes")), "268435456");
        assert_eq!(read(&m.join("memory.memsw.limit_in_bytes")), "268435456");
        // The CPU share is not the memory limit's business.
        assert_eq!(
            read(&r.join("cpu,cpuacct/hearth/sb/cpu.cfs_quota_us")),
            "7235"
        );
        fs::remove_file(m.join("memory.memsw.limit_in_bytes")).unwrap();
        driver.set_memory_limit(&cg, 512).unwrap();
        assert_eq!(read(&m.join("memory.limit_in_bytes")), "536870912");
        assert!(!m.join("memory.memsw.limit_in_bytes").exists());
    }

    #[test]
    fn write_limits_without_swap_accounting() {
        let (root, driver) = fake_root(false);
        let r = root.path();
        fake_sandbox(r, "sb");
        let m = r.join("memory/hearth/sb");
        fs::remove_file(m.join("memory.memsw.limit_in_bytes")).unwrap();
        driver
            .write_limits(
                "sb",
                &Limits {
                    memory_mb: 10_240,
                    pids: 1024,
                },
            )
            .unwrap();
        assert_eq!(read(&m.join("memory.limit_in_bytes")), "10737418240");
        assert!(!m.join("memory.memsw.limit_in_bytes").exists());
        assert_eq!(
            read(&r.join("cpu,cpuacct/hearth/sb/cpu.cfs_quota_us")),
            "578858"
        );
    }

    #[test]
    fn create_removes_every_directory_it_made_when_a_limit_fails() {
        let (root, driver) = fake_root(false);
        let r = root.path();
        // Fake mkdirs produce no control files: the first limit write fails.
        let err = driver
            .create(
                "sb",
                &Limits {
                    memory_mb: 128,
                    pids: 64,
                },
            )
            .unwrap_err();
        assert!(matches!(err, CgroupError::Write { .. }), "{err:?}");
        for h in ["memory", "pids", "cpu,cpuacct", "freezer"] {
            assert!(!r.join(h).join("hearth/sb").exists(), "{h}");
        }
    }

    #[test]
    fn create_leaves_a_directory_it_did_not_make() {
        let (root, driver) = fake_root(false);
        let r = root.path();
        fs::create_dir(r.join("cpu,cpuacct/hearth/sb")).unwrap();
        let err = driver
            .create(
                "sb",
                &Limits {
                    memory_mb: 128,
                    pids: 64,
                },
            )
            .unwrap_err();
        assert!(matches!(err, CgroupError::AlreadyExists { .. }), "{err:?}");
        assert!(r.join("cpu,cpuacct/hearth/sb").exists());
        assert!(!r.join("memory/hearth/sb").exists());
        assert!(!r.join("pids/hearth/sb").exists());
    }

    #[test]
    fn attach_writes_every_hierarchy() {
        let (root, driver) = fake_root(false);
        let r = root.path();
        fake_sandbox(r, "sb");
        driver.attach(&driver.handle("sb").unwrap(), 4242).unwrap();
        for h in ["memory", "pids", "cpu,cpuacct", "freezer"] {
            assert_eq!(read(&r.join(h).join("hearth/sb/cgroup.procs")), "4242");
        }
    }

    #[test]
    fn stats_parse_real_contents() {
        let (root, driver) = fake_root(false);
        let r = root.path();
        fake_sandbox(r, "sb");
        let m = r.join("memory/hearth/sb");
        fs::write(m.join("memory.max_usage_in_bytes"), "134217728\n").unwrap();
        fs::write(m.join("memory.usage_in_bytes"), "2093056\n").unwrap();
        fs::write(
            m.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        let cg = driver.handle("sb").unwrap();
        assert_eq!(
            driver.stats(&cg).unwrap(),
            CgroupStats {
                memory_peak_bytes: Some(134_217_728),
                oom_kills: 1,
                memory_current_bytes: Some(2_093_056),
            }
        );
        // Before 4.13 there is no oom_kill line.
        fs::write(
            m.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\n",
        )
        .unwrap();
        assert_eq!(driver.stats(&cg).unwrap().oom_kills, 0);
    }

    #[test]
    fn freeze_thaw_and_kill_all_drive_freezer_state() {
        let (root, driver) = fake_root(false);
        let r = root.path();
        fake_sandbox(r, "sb");
        let state = r.join("freezer/hearth/sb/freezer.state");
        let cg = driver.handle("sb").unwrap();
        // A fake freezer.state reads back what was written, like a freeze that completes.
        driver.freeze(&cg).unwrap();
        assert_eq!(read(&state), "FROZEN");
        driver.thaw(&cg).unwrap();
        assert_eq!(read(&state), "THAWED");
        // Empty cgroup: freeze, kill nothing, thaw, and it is empty.
        driver.kill_all(&cg).unwrap();
        assert_eq!(read(&state), "THAWED");
    }

    #[test]
    fn list_is_the_union_over_hierarchies() {
        let (root, driver) = fake_root(false);
        let r = root.path();
        fs::create_dir(r.join("memory/hearth/a")).unwrap();
        fs::create_dir(r.join("memory/hearth/b")).unwrap();
        fs::create_dir(r.join("pids/hearth/b")).unwrap();
        fs::create_dir(r.join("freezer/hearth/c")).unwrap();
        fs::create_dir(r.join("blkio/hearth/not-ours")).unwrap();
        assert_eq!(driver.list().unwrap(), vec!["a", "b", "c"]);

        // Empty fake directories can be removed; ones already gone count as removed.
        driver.remove_by_name("b").unwrap();
        driver.remove_by_name("a").unwrap();
        driver.remove_by_name("c").unwrap();
        assert!(driver.list().unwrap().is_empty());

        driver.remove_parent_if_empty().unwrap();
        for h in ["memory", "pids", "cpu,cpuacct", "freezer"] {
            // Each fake parent still holds a cgroup.procs file, so rmdir refuses it
            // (ENOTEMPTY), which is reported as "in use", not as an error.
            assert!(r.join(h).join("hearth").exists());
        }
    }

    // ---- root-only tests on the real host ----

    fn real_driver(tag: &str) -> Option<(V1Driver, String)> {
        if !testutil::is_root() {
            println!("skipped: needs root");
            return None;
        }
        let root = Path::new("/sys/fs/cgroup");
        match super::super::detect(root) {
            Ok(super::super::CgroupMode::Hybrid | super::super::CgroupMode::Legacy) => {}
            _ => {
                println!("skipped: needs cgroup v1 hierarchies");
                return None;
            }
        }
        let parent = testutil::unique_parent(tag);
        match V1Driver::new(root, &parent) {
            Ok(d) => Some((d, parent)),
            Err(e) => {
                println!("skipped: {e}");
                None
            }
        }
    }

    #[test]
    fn real_hierarchies_of_this_host() {
        let Some((driver, _)) = real_driver("mounts") else {
            return;
        };
        for (mount, controller) in driver.hierarchy_mounts().iter().zip(["memory", "pids"]) {
            assert!(
                mount
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .contains(controller),
                "{mount:?}"
            );
        }
        assert!(driver.hierarchy_mounts().len() >= 3);
    }

    #[test]
    fn real_freeze_and_thaw() {
        let Some((driver, parent)) = real_driver("freeze") else {
            return;
        };
        let _parent_guard = testutil::ParentGuard(&driver);
        driver.ensure_parent().unwrap();
        let cg = driver
            .create(
                "fz",
                &Limits {
                    memory_mb: 128,
                    pids: 64,
                },
            )
            .unwrap();
        let _guard = testutil::CgroupGuard::new(&driver, "fz");
        let mut child = testutil::GatedChild::spawn("exec sleep 1000");
        driver.attach(&cg, child.pid()).unwrap();
        child.release();
        let state = cg.procs_dir().join("freezer.state");

        driver.freeze(&cg).unwrap();
        assert_eq!(read(&state).trim(), "FROZEN");
        driver.thaw(&cg).unwrap();
        assert_eq!(read(&state).trim(), "THAWED");

        // Frozen, then killed: kill_all thaws so the SIGKILL lands.
        driver.freeze(&cg).unwrap();
        driver.kill_all(&cg).unwrap();
        assert_eq!(child.wait_signal(), Some(libc::SIGKILL));
        assert_eq!(read(&state).trim(), "THAWED");
        driver.remove(cg).unwrap();
        driver.remove_parent_if_empty().unwrap();
        assert!(testutil::leftovers(&parent).is_empty());
    }

    /// Root-only: the kernel enforces memsw ≥ limit, so raising and lowering a real
    /// cgroup's limit checks the write order.
    #[test]
    fn real_set_memory_limit_keeps_memsw_above_the_limit() {
        let Some((driver, parent)) = real_driver("memlimit") else {
            return;
        };
        let _parent_guard = testutil::ParentGuard(&driver);
        driver.ensure_parent().unwrap();
        let cg = driver
            .create(
                "ml",
                &Limits {
                    memory_mb: 128,
                    pids: 64,
                },
            )
            .unwrap();
        let guard = testutil::CgroupGuard::new(&driver, "ml");
        let mem = driver.dir(Controller::Memory, "ml");
        for mb in [3008, 10_240, 128, 1024] {
            driver.set_memory_limit(&cg, mb).unwrap();
            let want = (mb * 1024 * 1024).to_string();
            assert_eq!(read(&mem.join("memory.limit_in_bytes")).trim(), want);
            let memsw = mem.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                assert_eq!(read(&memsw).trim(), want);
            }
        }
        driver.remove(cg).unwrap();
        guard.disarm();
        driver.remove_parent_if_empty().unwrap();
        assert!(testutil::leftovers(&parent).is_empty());
    }

    #[test]
    fn real_create_cleans_up_after_a_rejected_limit() {
        let Some((driver, parent)) = real_driver("reject") else {
            return;
        };
        let _parent_guard = testutil::ParentGuard(&driver);
        driver.ensure_parent().unwrap();
        // 2^40 MB asks for a CFS quota beyond the kernel's maximum (2^44 - 1 µs): the
        // memory and pids limits are accepted, cpu.cfs_quota_us is refused with EINVAL.
        let err = driver
            .create(
                "big",
                &Limits {
                    memory_mb: 1 << 40,
                    pids: 64,
                },
            )
            .unwrap_err();
        match &err {
            CgroupError::Write { path, source, .. } => {
                assert!(path.ends_with("cpu.cfs_quota_us"), "{err}");
                assert_eq!(source.raw_os_error(), Some(libc::EINVAL), "{err}");
            }
            other => panic!("{other:?}"),
        }
        for mount in driver.hierarchy_mounts() {
            assert!(!mount.join(&parent).join("big").exists(), "{mount:?}");
        }
        driver.remove_parent_if_empty().unwrap();
        assert!(testutil::leftovers(&parent).is_empty());
    }
}
