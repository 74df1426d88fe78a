//! Shared helpers of the integration tests: locate `hearth` and the probe, run a probe
//! command in a sandbox, parse its `key=value` output, skip without root.
//!
//! Needs: root (every test that starts a sandbox), `mkfs.ext4` (scratch volumes). The
//! probe is `$HEARTH_PROBE` (scripts/test.sh builds it statically) or else the one cargo
//! built. `$HEARTH_TEST_ROOTFS`, when set, makes every sandbox use that root directory.
#![allow(dead_code)]

pub mod daemon;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Prints why and returns true when the test cannot run here.
pub fn skip_unless_root() -> bool {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root (namespaces, cgroups, mounts)");
        return true;
    }
    false
}

pub fn hearth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hearth"))
}

pub fn probe_bin() -> PathBuf {
    std::env::var_os("HEARTH_PROBE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_hearth-probe")))
}

/// A code directory holding `hearth-probe`, readable by the sandbox user.
pub struct CodeDir {
    pub dir: tempfile::TempDir,
}

impl CodeDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

pub fn code_dir() -> &'static CodeDir {
    static DIR: OnceLock<CodeDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("hearth-test-code-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dst = dir.path().join("hearth-probe");
        std::fs::copy(probe_bin(), &dst).expect("copy the probe (build it first)");
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("not-executable"), "#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("not-executable"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        CodeDir { dir }
    })
}

/// The result of one `hearth run`.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// `key=value` lines of stdout.
    pub fn kv(&self) -> HashMap<String, String> {
        self.stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub fn get(&self, key: &str) -> String {
        self.kv()
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key}= in output: {self:?}"))
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// The `hearth run` command with the test's root and code dir, not yet started.
pub fn hearth_run_cmd(opts: &[&str], cmd: &[&str]) -> Command {
    let mut c = Command::new(hearth_bin());
    c.arg("run");
    if let Some(root) = std::env::var_os("HEARTH_TEST_ROOTFS") {
        c.arg("--rootfs").arg(root);
    }
    c.arg("--code").arg(code_dir().path());
    c.args(opts).arg("--").args(cmd);
    c.stdin(Stdio::null());
    c
}

/// Runs `hearth run OPTS --code <probe dir> -- /var/task/hearth-probe ARGS`.
pub fn probe(opts: &[&str], args: &[&str]) -> Run {
    let mut cmd = vec!["/var/task/hearth-probe"];
    cmd.extend_from_slice(args);
    hearth_run_cmd(opts, &cmd).output().unwrap().into()
}

/// Runs `hearth ARGS` as given.
pub fn hearth(args: &[&str]) -> Run {
    Command::new(hearth_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .into()
}

/// Names of Hearth's sandbox cgroups currently present in any hierarchy.
pub fn sandbox_cgroups() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = Path::new("/sys/fs/cgroup");
    let mut parents = vec![root.join("hearth")];
    // v2, run from a cgroup delegated to Hearth: `<own>/sandboxes` (see cgroup::v2).
    if let Some(base) = delegated_base() {
        parents.push(root.join(base).join("sandboxes"));
    }
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            parents.push(e.path().join("hearth"));
        }
    }
    for p in parents {
        if let Ok(rd) = std::fs::read_dir(&p) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    out.push(e.path());
                }
            }
        }
    }
    out
}

/// On a v2 host: the cgroup (relative to the root) that is delegated to this process, or
/// whose `supervisor` leaf this process is in: where Hearth's sandboxes go.
pub fn delegated_base() -> Option<String> {
    let root = Path::new("/sys/fs/cgroup");
    let own = hearth::sandbox::cgroup::own_unified_cgroup(Path::new("/proc/self/cgroup")).ok()?;
    let placement = hearth::sandbox::cgroup::v2::placement(&own, |rel| {
        hearth::sandbox::cgroup::is_delegated(&root.join(rel))
    });
    if !root.join("cgroup.controllers").exists() {
        return None;
    }
    placement.delegated
}

/// Sandbox cgroups owned by the `hearth` process `pid`.
pub fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("run-{pid}-");
    sandbox_cgroups()
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect()
}

/// Runs scripts/check-leaks.sh; returns (clean, output).
pub fn check_leaks() -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-leaks.sh");
    let o = Command::new("bash").arg(script).output().unwrap();
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    (o.status.success(), text)
}

/// Polls until no sandbox of `pid` has a cgroup or scratch image left, or ~10 s pass.
pub fn wait_gone(pid: u32) -> bool {
    for _ in 0..200 {
        let imgs = std::fs::read_dir("/var/lib/hearth/scratch")
            .map(|rd| {
                rd.flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("run-{pid}-"))
                })
            })
            .unwrap_or(false);
        if cgroups_of(pid).is_empty() && !imgs {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// Syscalls (and clone flags, socket kinds, ioctls) the probe must see fail with EPERM
/// inside any sandbox, however it was started.
pub const DANGEROUS_SYSCALLS: &[&str] = &[
    "mount",
    "umount2",
    "unshare",
    "setns",
    "pivot_root",
    "chroot",
    "ptrace",
    "process_vm_readv",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "kexec_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "acct",
    "settimeofday",
    "clock_settime",
    "iopl",
    "ioperm",
    "quotactl",
    "userfaultfd",
    "open_by_handle_at",
    "io_uring_setup",
    "clone_newns",
    "clone_newuser",
    "clone_newnet",
    "socket_raw",
    "socket_packet",
    "tiocsti",
];
