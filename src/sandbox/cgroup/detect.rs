//! Which cgroup layout the host has, decided once at start-up from filesystem types:
//! the root itself is cgroup2 (unified), or a `unified` child of it is cgroup2 next to v1
//! hierarchies (hybrid, systemd's old default), or neither (legacy, v1 only). The same test
//! youki's `libcgroups` uses.
//!
//! Not done here: finding where the root is mounted (the caller passes it, normally
//! `/sys/fs/cgroup`), or checking which controllers are usable (each driver does that).

use std::path::Path;

use nix::errno::Errno;
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};

use super::CgroupError;

/// The host's cgroup layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Pure cgroup v2: the root is a cgroup2 mount.
    Unified,
    /// v1 controller hierarchies, plus a controller-less cgroup2 mount at `<root>/unified`.
    Hybrid,
    /// v1 only.
    Legacy,
}

/// Detects the layout of the cgroup root `root`. Fails only if `root` itself cannot be
/// examined; a missing or unreadable `<root>/unified` means legacy.
pub fn detect(root: &Path) -> Result<CgroupMode, CgroupError> {
    let is_cgroup2 = |path: &Path| -> Result<bool, Errno> {
        Ok(statfs(path)?.filesystem_type() == CGROUP2_SUPER_MAGIC)
    };
    if is_cgroup2(root).map_err(|source| CgroupError::Statfs {
        path: root.to_owned(),
        source,
    })? {
        return Ok(CgroupMode::Unified);
    }
    if is_cgroup2(&root.join("unified")).unwrap_or(false) {
        return Ok(CgroupMode::Hybrid);
    }
    Ok(CgroupMode::Legacy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_directory_is_legacy() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(detect(dir.path()).unwrap(), CgroupMode::Legacy);
        // A plain `unified` directory is not a cgroup2 mount.
        std::fs::create_dir(dir.path().join("unified")).unwrap();
        assert_eq!(detect(dir.path()).unwrap(), CgroupMode::Legacy);
    }

    #[test]
    fn a_missing_root_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = detect(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(
            err,
            CgroupError::Statfs {
                source: Errno::ENOENT,
                ..
            }
        ));
    }

    /// Compares with an independent reading of `/proc/self/mountinfo` (this development
    /// host is hybrid; CI hosts are usually unified).
    #[test]
    fn sys_fs_cgroup_matches_mountinfo() {
        let root = Path::new("/sys/fs/cgroup");
        if !root.exists() {
            println!("skipped: no /sys/fs/cgroup");
            return;
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        // Fields: id parent dev root mount-point opts ... - fstype source superopts.
        let cgroup2_at = |point: &str| {
            mountinfo.lines().any(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let fstype = line.split(" - ").nth(1).and_then(|s| s.split(' ').next());
                fields.get(4) == Some(&point) && fstype == Some("cgroup2")
            })
        };
        let expected = if cgroup2_at("/sys/fs/cgroup") {
            CgroupMode::Unified
        } else if cgroup2_at("/sys/fs/cgroup/unified") {
            CgroupMode::Hybrid
        } else {
            CgroupMode::Legacy
        };
        assert_eq!(detect(root).unwrap(), expected);
        println!("/sys/fs/cgroup is {expected:?}");
    }
}
