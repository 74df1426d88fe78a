//! Freezing and thawing a live sandbox for the warm pool, without waiting.
//!
//! An idle instance is frozen so that it uses no CPU, and thawed when an invocation
//! claims it. Both are one write to the sandbox's freezer file: `cgroup.freeze` on v2,
//! `freezer.state` on v1 (the directory whose `cgroup.procs` lists the sandbox's
//! processes, [`SandboxCgroup::procs_dir`], is the freezer one on both). Unlike
//! [`CgroupDriver::freeze`](super::cgroup::CgroupDriver::freeze), nothing here waits for
//! the kernel to report the cgroup frozen: the tasks stop on their own within
//! microseconds, and an event loop must not sleep on it. A thaw takes effect at once;
//! the runtime, parked in `read` on its `/next` connection, finds the event waiting.
//!
//! Limits: on v1 a frozen task keeps a pending SIGKILL until it is thawed, so a frozen
//! sandbox must be thawed before it is destroyed (the daemon does).

use std::io::Write;

use super::cgroup::{CgroupError, SandboxCgroup};
use super::{Sandbox, SandboxError, SandboxHost};

impl SandboxHost {
    /// Asks the kernel to freeze (or thaw) every process of the sandbox. Returns once the
    /// request is written; see the module doc.
    pub fn set_frozen(&self, sb: &Sandbox, frozen: bool) -> Result<(), SandboxError> {
        match &sb.cgroup {
            Some(cg) => request(cg, frozen).map_err(SandboxError::from),
            None => Ok(()),
        }
    }
}

fn request(cg: &SandboxCgroup, frozen: bool) -> Result<(), CgroupError> {
    let dir = cg.procs_dir();
    let v2 = dir.join("cgroup.freeze");
    let (path, value) = if v2.exists() {
        (v2, if frozen { "1" } else { "0" })
    } else {
        (
            dir.join("freezer.state"),
            if frozen { "FROZEN" } else { "THAWED" },
        )
    };
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path,
            value: value.to_owned(),
            source,
        })
}
