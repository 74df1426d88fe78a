//! Privileges of the function's process: every capability set cleared (bounding and
//! ambient included), `no_new_privs`, and an unprivileged uid/gid with no supplementary
//! groups.
//!
//! [`plan`] reads the kernel's highest capability number in the parent; [`apply`] runs in
//! the command's process right before the seccomp filter and `execve`. The order inside
//! [`apply`] is the kernel's, not a style choice: the bounding set can only be dropped
//! while `CAP_SETPCAP` is still held, i.e. before the uid change; the uid change itself
//! clears the permitted and effective sets; the inheritable set is cleared last with
//! `capset`. Not done here: user namespaces (an operator option for a later issue).

use nix::errno::Errno;

use crate::sys::process;

/// Who the function runs as, and how many capabilities the kernel knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapsPlan {
    pub uid: u32,
    pub gid: u32,
    pub last_cap: u32,
}

/// A failed step of [`apply`]: which one, and the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapsStep {
    NoNewPrivs,
    BoundingSet,
    Ambient,
    Groups,
    Gid,
    Uid,
    Capset,
}

/// Errors of planning.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// The function must not run as root.
    #[error("uid {0} and gid {1} must both be non-zero")]
    Privileged(u32, u32),
}

/// Reads `/proc/sys/kernel/cap_last_cap` (falls back to 63: dropping an unknown
/// capability number ends the loop with `EINVAL`).
pub fn plan(uid: u32, gid: u32) -> Result<CapsPlan, CapsError> {
    if uid == 0 || gid == 0 {
        return Err(CapsError::Privileged(uid, gid));
    }
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63);
    Ok(CapsPlan { uid, gid, last_cap })
}

/// Drops every privilege, in the order the kernel requires. Allocation-free and lock-free.
pub fn apply(plan: &CapsPlan) -> Result<(), (CapsStep, Errno)> {
    process::set_no_new_privs().map_err(|e| (CapsStep::NoNewPrivs, e))?;
    process::drop_bounding_set(plan.last_cap).map_err(|e| (CapsStep::BoundingSet, e))?;
    process::clear_ambient_caps().map_err(|e| (CapsStep::Ambient, e))?;
    // Raw system calls, not glibc's wrappers: in a child cloned from a multi-threaded
    // `hearth`, those would try to synchronise threads that exist only in the parent.
    process::clear_groups().map_err(|e| (CapsStep::Groups, e))?;
    process::set_res_ids(plan.uid, plan.gid).map_err(|(gid, e)| {
        if gid {
            (CapsStep::Gid, e)
        } else {
            (CapsStep::Uid, e)
        }
    })?;
    process::clear_capabilities().map_err(|e| (CapsStep::Capset, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_identity_is_refused() {
        assert!(plan(0, 990).is_err());
        assert!(plan(993, 0).is_err());
        let p = plan(993, 990).unwrap();
        assert!(p.last_cap >= 36, "cap_last_cap {}", p.last_cap);
    }
}
