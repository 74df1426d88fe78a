//! The sandbox's filesystem: a new root assembled from read-only bind mounts, the function
//! code read-only at `/var/task`, a disk-backed `/tmp` (see [`super::scratch`]), a fresh
//! `/proc` with the OCI default masked and read-only paths, a read-only `/sys` with its
//! masked paths, and a minimal `/dev` (null, zero, full, random, urandom).
//!
//! [`plan`] runs in the parent and turns the choice of root into a flat list of
//! [`MountOp`]s: every path is a prepared C string, every decision that needs a look at the
//! host (is `/bin` a symlink? does `/proc/timer_list` exist? what does `/etc/ld.so.cache`
//! hold?) is taken there. [`apply`] runs in the sandbox child, inside its new mount
//! namespace, and only executes the list: no allocation, no branching on the host.
//!
//! Not done here: the ordering against the other mechanisms (that is `spawn.rs`), and
//! overlay or writable roots (Lambda's root is read-only; so is ours).

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::scratch::ScratchVolume;

/// Where the sandbox's root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// Read-only binds of the host's `/usr`, `/lib*`, `/bin`, `/sbin`, with a minimal `/etc`
    /// written by Hearth (plus a few host `/etc` entries the dynamic loader and TLS need).
    HostBinds,
    /// A directory holding a complete root (for instance built by `rootfs/build.sh`),
    /// bound read-only as the root. It must contain the mount points `/proc`, `/sys`,
    /// `/dev`, `/tmp` and `/var/task`.
    Dir(PathBuf),
}

/// One step of the mount sequence, executed in order by the child.
#[derive(Debug)]
pub enum MountOp {
    /// `mount(2)` exactly as given.
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: MsFlags,
        data: Option<CString>,
    },
    /// `mkdir(2)` with `mode` (inside the new root's tmpfs, before it is made read-only).
    Mkdir { path: CString, mode: u32 },
    /// `symlink(2)`.
    Symlink { target: CString, link: CString },
    /// Create `path` with `mode` and write `contents` (small files of the minimal `/etc`).
    WriteFile {
        path: CString,
        contents: Vec<u8>,
        mode: u32,
    },
    /// `chdir(new_root)`, `pivot_root(".", ".")`, detach the old root, `chdir("/")`.
    PivotRoot { new_root: CString },
}

impl MountOp {
    /// A short description for error messages ("mount on /run/hearth/root/proc").
    pub fn describe(&self) -> String {
        match self {
            MountOp::Mount { target, .. } => format!("mount on {}", target.to_string_lossy()),
            MountOp::Mkdir { path, .. } => format!("mkdir {}", path.to_string_lossy()),
            MountOp::Symlink { link, .. } => format!("symlink {}", link.to_string_lossy()),
            MountOp::WriteFile { path, .. } => format!("writing {}", path.to_string_lossy()),
            MountOp::PivotRoot { new_root } => {
                format!("pivot_root into {}", new_root.to_string_lossy())
            }
        }
    }
}

/// Errors found while planning (in the parent, before anything is created).
#[derive(Debug, thiserror::Error)]
pub enum MountsError {
    /// The `--rootfs` directory is unusable.
    #[error("rootfs {path}: {reason}")]
    Rootfs { path: PathBuf, reason: String },
    /// The `--code` directory is unusable.
    #[error("code directory {path}: {reason}")]
    Code { path: PathBuf, reason: String },
    /// A path contained a NUL byte.
    #[error("path contains a NUL byte: {0}")]
    Nul(String),
    /// Reading a host file for the minimal `/etc` failed.
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the mount plan needs to know about one sandbox.
#[derive(Debug)]
pub struct MountSpec<'a> {
    /// An empty directory on the host where the new root is assembled (in the child's
    /// private mount namespace, so nothing shows on the host).
    pub staging: &'a Path,
    pub root: &'a RootSource,
    pub code: Option<&'a Path>,
    /// Hearth's managed-runtime files, read-only at `/var/runtime`.
    pub runtime: Option<&'a Path>,
    pub scratch: Option<&'a ScratchVolume>,
    pub hostname: &'a str,
    /// uid/gid the function runs as, for the minimal `/etc/passwd`.
    pub uid: u32,
    pub gid: u32,
}

/// The OCI runtime-spec default masked paths: files get `/dev/null` bound over them,
/// directories an empty read-only tmpfs.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The OCI runtime-spec default read-only paths (bound onto themselves, then read-only).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The empty, mode-0000 file bound over masked files (in `/dev`, the one tmpfs that
/// exists whatever the root is).
pub const MASK_FILE: &str = "/dev/.masked";

/// The only device nodes inside.
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

/// Top-level host directories bound read-only in [`RootSource::HostBinds`] mode (or
/// recreated as symlinks where the host has merged `/usr`).
const HOST_DIRS: &[&str] = &["usr", "bin", "sbin", "lib", "lib64", "lib32", "libx32"];

/// Host `/etc` entries bound read-only (directories) into the minimal `/etc`.
const HOST_ETC_DIRS: &[&str] = &["ssl", "ca-certificates", "alternatives", "ld.so.conf.d"];

/// Host `/etc` files copied into the minimal `/etc` (small; read once per plan).
const HOST_ETC_FILES: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "nsswitch.conf",
    "protocols",
    "services",
    "mime.types",
];

/// Host `/etc` symlinks recreated as they are (`localtime`, `os-release`).
const HOST_ETC_LINKS: &[&str] = &["localtime", "os-release"];

fn cstr(p: impl AsRef<Path>) -> Result<CString, MountsError> {
    let p = p.as_ref();
    CString::new(p.as_os_str().as_bytes()).map_err(|_| MountsError::Nul(p.display().to_string()))
}

fn lit(s: &str) -> CString {
    CString::new(s).expect("literal without NUL")
}

const RO_BIND_FLAGS: MsFlags = MsFlags::MS_BIND
    .union(MsFlags::MS_REMOUNT)
    .union(MsFlags::MS_RDONLY)
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV);

struct Builder {
    ops: Vec<MountOp>,
    root: PathBuf,
}

impl Builder {
    fn at(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    fn mkdir(&mut self, inside: &str, mode: u32) -> Result<(), MountsError> {
        let path = cstr(self.at(inside))?;
        self.ops.push(MountOp::Mkdir { path, mode });
        Ok(())
    }

    fn write(&mut self, inside: &str, contents: Vec<u8>) -> Result<(), MountsError> {
        self.write_mode(inside, contents, 0o644)
    }

    fn write_mode(
        &mut self,
        inside: &str,
        contents: Vec<u8>,
        mode: u32,
    ) -> Result<(), MountsError> {
        let path = cstr(self.at(inside))?;
        self.ops.push(MountOp::WriteFile {
            path,
            contents,
            mode,
        });
        Ok(())
    }

    fn mount(
        &mut self,
        source: Option<CString>,
        target: CString,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) {
        self.ops.push(MountOp::Mount {
            source,
            target,
            fstype: fstype.map(lit),
            flags,
            data: data.map(lit),
        });
    }

    /// A bind mount made read-only, nosuid and nodev. A bind cannot change flags in the
    /// same call: the kernel needs the second `MS_REMOUNT|MS_BIND` call.
    fn ro_bind(&mut self, source: &Path, inside: &str) -> Result<(), MountsError> {
        let target = cstr(self.at(inside))?;
        self.mount(
            Some(cstr(source)?),
            target.clone(),
            None,
            MsFlags::MS_BIND,
            None,
        );
        self.mount(None, target, None, RO_BIND_FLAGS, None);
        Ok(())
    }

    /// A small tmpfs, for the root of the host-binds mode and for `/dev`.
    fn tmpfs(&mut self, inside: &str, flags: MsFlags, data: &str) -> Result<(), MountsError> {
        let target = cstr(self.at(inside))?;
        self.mount(Some(lit("tmpfs")), target, Some("tmpfs"), flags, Some(data));
        Ok(())
    }

    fn remount_ro(&mut self, inside: &str, extra: MsFlags) -> Result<(), MountsError> {
        let target = cstr(self.at(inside))?;
        self.mount(
            None,
            target,
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | extra,
            None,
        );
        Ok(())
    }
}

/// Builds the mount sequence for one sandbox. Runs in the parent.
pub fn plan(spec: &MountSpec<'_>) -> Result<Vec<MountOp>, MountsError> {
    let mut b = Builder {
        ops: Vec::with_capacity(64),
        root: spec.staging.to_path_buf(),
    };
    // Nothing done in the child's mount namespace may propagate back to the host's.
    b.mount(
        None,
        lit("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    );

    match spec.root {
        RootSource::HostBinds => plan_host_root(&mut b, spec)?,
        RootSource::Dir(dir) => plan_dir_root(&mut b, dir)?,
    }

    // /var/task: the function's code, read-only.
    if let Some(code) = spec.code {
        if !code.is_dir() {
            return Err(MountsError::Code {
                path: code.to_path_buf(),
                reason: "not a directory".into(),
            });
        }
        b.ro_bind(code, "/var/task")?;
    }

    // /var/runtime: the managed runtime's bootstrap (python, nodejs), read-only.
    if let Some(runtime) = spec.runtime {
        if !runtime.is_dir() {
            return Err(MountsError::Code {
                path: runtime.to_path_buf(),
                reason: "runtime files: not a directory".into(),
            });
        }
        if let RootSource::Dir(dir) = spec.root {
            if !dir.join("var/runtime").is_dir() {
                return Err(MountsError::Rootfs {
                    path: dir.clone(),
                    reason: "lacks the mount point /var/runtime (rebuild it with rootfs/build.sh)"
                        .into(),
                });
            }
        }
        b.ro_bind(runtime, "/var/runtime")?;
    }

    // /tmp: the disk-backed scratch volume; its size is enforced by the filesystem's own
    // size, not by the memory cgroup.
    if let Some(vol) = spec.scratch {
        let target = cstr(b.at("/tmp"))?;
        b.ops.push(MountOp::Mount {
            source: Some(vol.device().to_owned()),
            target,
            fstype: Some(ScratchVolume::FS_TYPE.to_owned()),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: Some(vol.mount_options().to_owned()),
        });
    }

    plan_dev(&mut b)?;
    plan_proc_and_sys(&mut b)?;

    b.ops.push(MountOp::PivotRoot {
        new_root: cstr(spec.staging)?,
    });
    // After pivot_root the staging root is "/". Making it read-only last lets the steps
    // above create mount points in it.
    b.mount(
        None,
        lit("/"),
        None,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None,
    );
    Ok(b.ops)
}

fn plan_host_root(b: &mut Builder, spec: &MountSpec<'_>) -> Result<(), MountsError> {
    b.tmpfs(
        "/",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "size=1m,nr_inodes=512,mode=0755",
    )?;
    for dir in HOST_DIRS {
        let host = Path::new("/").join(dir);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&host).map_err(|e| MountsError::Read {
                    path: host.clone(),
                    source: e,
                })?;
                b.ops.push(MountOp::Symlink {
                    target: cstr(target)?,
                    link: cstr(b.at(dir))?,
                });
            }
            Ok(m) if m.is_dir() => {
                b.mkdir(dir, 0o755)?;
                b.ro_bind(&host, dir)?;
            }
            _ => {}
        }
    }
    for dir in [
        "/proc",
        "/sys",
        "/dev",
        "/tmp",
        "/var",
        "/var/task",
        "/var/runtime",
        "/opt",
        "/etc",
    ] {
        b.mkdir(dir, 0o755)?;
    }
    plan_minimal_etc(b, spec)
}

fn plan_minimal_etc(b: &mut Builder, spec: &MountSpec<'_>) -> Result<(), MountsError> {
    let passwd = format!(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n\
         sbx_user1051:x:{}:{}::/tmp:/usr/sbin/nologin\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        spec.uid, spec.gid
    );
    let group = format!(
        "root:x:0:\nsbx_user1051:x:{}:\nnogroup:x:65534:\n",
        spec.gid
    );
    let hosts = format!(
        "127.0.0.1\tlocalhost {0}\n::1\tlocalhost ip6-localhost ip6-loopback {0}\n",
        spec.hostname
    );
    b.write("/etc/passwd", passwd.into_bytes())?;
    b.write("/etc/group", group.into_bytes())?;
    b.write("/etc/hosts", hosts.into_bytes())?;
    b.write("/etc/hostname", format!("{}\n", spec.hostname).into_bytes())?;
    // No network but loopback: an empty resolv.conf makes lookups fail fast.
    b.write("/etc/resolv.conf", Vec::new())?;
    for name in HOST_ETC_FILES {
        let host = Path::new("/etc").join(name);
        match std::fs::read(&host) {
            Ok(contents) => b.write(&format!("/etc/{name}"), contents)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(MountsError::Read {
                    path: host,
                    source: e,
                })
            }
        }
    }
    for name in HOST_ETC_LINKS {
        let host = Path::new("/etc").join(name);
        if let Ok(target) = std::fs::read_link(&host) {
            b.ops.push(MountOp::Symlink {
                target: cstr(target)?,
                link: cstr(b.at(&format!("/etc/{name}")))?,
            });
        }
    }
    for name in HOST_ETC_DIRS {
        let host = Path::new("/etc").join(name);
        if host.is_dir() && !host.is_symlink() {
            let inside = format!("/etc/{name}");
            b.mkdir(&inside, 0o755)?;
            b.ro_bind(&host, &inside)?;
        }
    }
    Ok(())
}

fn plan_dir_root(b: &mut Builder, dir: &Path) -> Result<(), MountsError> {
    let bad = |reason: &str| MountsError::Rootfs {
        path: dir.to_path_buf(),
        reason: reason.to_string(),
    };
    if !dir.is_dir() {
        return Err(bad("not a directory"));
    }
    for mp in ["proc", "sys", "dev", "tmp", "var/task"] {
        if !dir.join(mp).is_dir() {
            return Err(bad(&format!(
                "lacks the mount point /{mp} (build it with rootfs/build.sh)"
            )));
        }
    }
    // The directory itself becomes the root: bound (not recursively: submounts of the
    // host directory stay outside) and read-only.
    b.ro_bind(dir, "/")
}

fn plan_dev(b: &mut Builder) -> Result<(), MountsError> {
    b.tmpfs(
        "/dev",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "size=64k,nr_inodes=64,mode=0755",
    )?;
    for dev in DEVICES {
        let inside = format!("/dev/{dev}");
        b.write(&inside, Vec::new())?;
        // A bind of the host's node keeps its device numbers without mknod; the host's
        // /dev mount allows devices, the bind inherits that.
        let target = cstr(b.at(&inside))?;
        b.mount(
            Some(cstr(Path::new("/dev").join(dev))?),
            target.clone(),
            None,
            MsFlags::MS_BIND,
            None,
        );
        b.mount(
            None,
            target,
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            None,
        );
    }
    // What masked /proc files get bound over: an empty file nobody but root may open, so
    // reads fail with EACCES rather than returning nothing.
    b.write_mode(MASK_FILE, Vec::new(), 0o000)?;
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        b.ops.push(MountOp::Symlink {
            target: lit(target),
            link: cstr(b.at(link))?,
        });
    }
    b.remount_ro("/dev", MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC)
}

fn plan_proc_and_sys(b: &mut Builder) -> Result<(), MountsError> {
    let nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let proc_target = cstr(b.at("/proc"))?;
    b.mount(
        Some(lit("proc")),
        proc_target,
        Some("proc"),
        nodev_noexec,
        None,
    );
    let sys_target = cstr(b.at("/sys"))?;
    b.mount(
        Some(lit("sysfs")),
        sys_target,
        Some("sysfs"),
        nodev_noexec | MsFlags::MS_RDONLY,
        None,
    );
    // The host runs the same kernel, so what exists in the host's /proc and /sys (and
    // whether it is a file or a directory) is what the sandbox's fresh mounts will show.
    let mask_file = cstr(b.at(MASK_FILE))?;
    for path in MASKED_PATHS {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                let target = cstr(b.at(path))?;
                b.mount(
                    Some(lit("tmpfs")),
                    target,
                    Some("tmpfs"),
                    nodev_noexec | MsFlags::MS_RDONLY,
                    Some("size=0,nr_inodes=1,mode=0000"),
                );
            }
            Ok(_) => {
                let target = cstr(b.at(path))?;
                b.mount(
                    Some(mask_file.clone()),
                    target.clone(),
                    None,
                    MsFlags::MS_BIND,
                    None,
                );
                b.mount(None, target, None, RO_BIND_FLAGS, None);
            }
            Err(_) => {}
        }
    }
    for path in READONLY_PATHS {
        if std::fs::symlink_metadata(path).is_ok() {
            let target = cstr(b.at(path))?;
            b.mount(
                Some(target.clone()),
                target.clone(),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            );
            b.mount(None, target, None, RO_BIND_FLAGS | MsFlags::MS_NOEXEC, None);
        }
    }
    Ok(())
}

/// Executes the plan. Runs in the sandbox child, in its own mount namespace; returns the
/// index of the failed op and the errno. Allocation-free.
pub fn apply(ops: &[MountOp]) -> Result<(), (usize, Errno)> {
    // Whatever umask `hearth` was started with, files and directories get the modes the
    // plan gives them (the function inherits this umask too, as on Lambda).
    nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    for (i, op) in ops.iter().enumerate() {
        apply_one(op).map_err(|e| (i, e))?;
    }
    Ok(())
}

fn apply_one(op: &MountOp) -> Result<(), Errno> {
    match op {
        MountOp::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => mount(
            source.as_deref(),
            target.as_c_str(),
            fstype.as_deref(),
            *flags,
            data.as_deref(),
        ),
        MountOp::Mkdir { path, mode } => {
            match nix::unistd::mkdir(path.as_c_str(), Mode::from_bits_truncate(*mode)) {
                Err(Errno::EEXIST) => Ok(()),
                other => other,
            }
        }
        MountOp::Symlink { target, link } => {
            nix::unistd::symlinkat(target.as_c_str(), None, link.as_c_str())
        }
        MountOp::WriteFile {
            path,
            contents,
            mode,
        } => write_file(path, contents, *mode),
        MountOp::PivotRoot { new_root } => {
            nix::unistd::chdir(new_root.as_c_str())?;
            crate::sys::process::pivot_root_here()?;
            umount2(c".", MntFlags::MNT_DETACH)?;
            nix::unistd::chdir(c"/")
        }
    }
}

fn write_file(path: &CStr, contents: &[u8], mode: u32) -> Result<(), Errno> {
    use nix::fcntl::{open, OFlag};
    let fd = open(
        path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )?;
    let result = crate::sys::fd::write_all(fd, contents);
    let _ = nix::unistd::close(fd);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(root: &'a RootSource, staging: &'a Path) -> MountSpec<'a> {
        MountSpec {
            staging,
            root,
            code: None,
            runtime: None,
            scratch: None,
            hostname: "hearth",
            uid: 993,
            gid: 990,
        }
    }

    fn targets(ops: &[MountOp]) -> Vec<String> {
        ops.iter()
            .filter_map(|op| match op {
                MountOp::Mount { target, .. } => Some(target.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn host_plan_starts_private_and_ends_read_only() {
        let root = RootSource::HostBinds;
        let ops = plan(&spec(&root, Path::new("/run/hearth/root"))).unwrap();
        match &ops[0] {
            MountOp::Mount { target, flags, .. } => {
                assert_eq!(target.as_c_str(), c"/");
                assert!(flags.contains(MsFlags::MS_PRIVATE | MsFlags::MS_REC));
            }
            other => panic!("first op {other:?}"),
        }
        let n = ops.len();
        assert!(matches!(ops[n - 2], MountOp::PivotRoot { .. }));
        match &ops[n - 1] {
            MountOp::Mount { target, flags, .. } => {
                assert_eq!(target.as_c_str(), c"/");
                assert!(flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT));
            }
            other => panic!("last op {other:?}"),
        }
    }

    #[test]
    fn every_bind_is_followed_by_a_read_only_remount() {
        let root = RootSource::HostBinds;
        let ops = plan(&spec(&root, Path::new("/run/hearth/root"))).unwrap();
        for (i, op) in ops.iter().enumerate() {
            if let MountOp::Mount { flags, target, .. } = op {
                if flags.contains(MsFlags::MS_BIND) && !flags.contains(MsFlags::MS_REMOUNT) {
                    match &ops[i + 1] {
                        MountOp::Mount {
                            flags: f2,
                            target: t2,
                            ..
                        } => {
                            assert_eq!(t2, target);
                            assert!(f2.contains(MsFlags::MS_REMOUNT));
                            let is_device = DEVICES.iter().any(|d| {
                                target.to_bytes().ends_with(format!("/dev/{d}").as_bytes())
                            });
                            assert!(is_device || f2.contains(MsFlags::MS_RDONLY), "{target:?}");
                        }
                        other => panic!("bind of {target:?} followed by {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn masks_and_devices_are_planned() {
        let root = RootSource::HostBinds;
        let ops = plan(&spec(&root, Path::new("/s"))).unwrap();
        let t = targets(&ops);
        assert!(t.contains(&"/s/proc".to_string()));
        assert!(t.contains(&"/s/dev/null".to_string()));
        assert!(t.contains(&"/s/dev/urandom".to_string()));
        if Path::new("/proc/kcore").exists() {
            assert!(t.contains(&"/s/proc/kcore".to_string()));
        }
        assert!(t.contains(&"/s/proc/sys".to_string()));
        assert!(!t
            .iter()
            .any(|p| p.contains("/dev/sda") || p.contains("/dev/shm")));
    }

    #[test]
    fn rootfs_without_mount_points_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = RootSource::Dir(dir.path().to_path_buf());
        let err = plan(&spec(&root, Path::new("/s"))).unwrap_err();
        assert!(
            err.to_string().contains("lacks the mount point /proc"),
            "{err}"
        );
        for mp in ["proc", "sys", "dev", "tmp", "var/task"] {
            std::fs::create_dir_all(dir.path().join(mp)).unwrap();
        }
        plan(&spec(&root, Path::new("/s"))).unwrap();
    }

    #[test]
    fn missing_code_dir_is_refused() {
        let root = RootSource::HostBinds;
        let mut s = spec(&root, Path::new("/s"));
        let missing = Path::new("/nonexistent/hearth-code");
        s.code = Some(missing);
        let err = plan(&s).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
