//! Namespaces: pid, mount, network, ipc, uts and cgroup. A fresh network namespace holds
//! only `lo`, and it starts down: [`apply`] brings it up.
//!
//! The cgroup namespace must be rooted at the sandbox's own cgroup. With
//! `CLONE_INTO_CGROUP` (cgroup v2) the child is born there, so `CLONE_NEWCGROUP` goes into
//! the clone flags. Otherwise (v1 and hybrid hosts) the parent attaches the child after the
//! clone, and the child unshares its cgroup namespace once it has been released, i.e. once
//! it is inside its cgroups.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};

use crate::sys::process;

/// What the child does about namespaces after the clone.
#[derive(Debug, Clone)]
pub struct NsPlan {
    /// Flags for `clone3`.
    pub clone_flags: u64,
    /// Whether the child unshares its cgroup namespace after being released.
    pub unshare_cgroup: bool,
    pub hostname: CString,
}

/// Errors of planning.
#[derive(Debug, thiserror::Error)]
pub enum NsError {
    /// The hostname is not acceptable to the kernel (1–64 bytes, no NUL).
    #[error("invalid hostname {0:?}")]
    Hostname(String),
}

/// Chooses the clone flags. `into_cgroup`: the child will be cloned into its cgroup.
pub fn plan(hostname: &str, into_cgroup: bool) -> Result<NsPlan, NsError> {
    if hostname.is_empty() || hostname.len() > 64 {
        return Err(NsError::Hostname(hostname.to_string()));
    }
    let hostname = CString::new(hostname).map_err(|_| NsError::Hostname(hostname.to_string()))?;
    let mut flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if into_cgroup {
        flags |= CloneFlags::CLONE_NEWCGROUP;
    }
    Ok(NsPlan {
        clone_flags: flags.bits() as u32 as u64,
        unshare_cgroup: !into_cgroup,
        hostname,
    })
}

/// A failed step of [`apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsStep {
    Hostname,
    Loopback,
}

/// Child side, after the cgroup attach: a cgroup namespace rooted at the sandbox's cgroup
/// (unless the clone already made one, `CLONE_INTO_CGROUP` on v2).
pub fn enter_cgroup_namespace(plan: &NsPlan) -> Result<(), Errno> {
    if plan.unshare_cgroup {
        unshare(CloneFlags::CLONE_NEWCGROUP)?;
    }
    Ok(())
}

/// Child side: hostname, `lo` up.
pub fn apply(plan: &NsPlan) -> Result<(), (NsStep, Errno)> {
    nix::unistd::sethostname(OsStr::from_bytes(plan.hostname.as_bytes()))
        .map_err(|e| (NsStep::Hostname, e))?;
    process::set_interface_up(c"lo").map_err(|e| (NsStep::Loopback, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_depend_on_clone_into_cgroup() {
        let v2 = plan("h", true).unwrap();
        assert!(!v2.unshare_cgroup);
        assert_ne!(v2.clone_flags & libc::CLONE_NEWCGROUP as u64, 0);
        let v1 = plan("h", false).unwrap();
        assert!(v1.unshare_cgroup);
        assert_eq!(v1.clone_flags & libc::CLONE_NEWCGROUP as u64, 0);
        for f in [
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUTS,
        ] {
            assert_ne!(v1.clone_flags & f as u64, 0);
        }
    }

    #[test]
    fn bad_hostnames_are_refused() {
        assert!(plan("", false).is_err());
        assert!(plan(&"x".repeat(65), false).is_err());
        assert!(plan("a\0b", false).is_err());
    }
}
