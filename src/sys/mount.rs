//! The new mount API calls of the blank-sandbox path (Linux 5.12+): `hearth` makes a
//! detached, read-only copy of a function's code tree ([`open_tree_clone`] +
//! [`make_private_read_only`]), hands its descriptor to a waiting sandbox init, and init attaches it
//! inside its own mount namespace ([`move_mount_to`]).
//!
//! A detached tree belongs to an anonymous mount namespace of its own, which is what lets
//! `move_mount` attach it in *another* namespace (the kernel's `do_move_mount` accepts a
//! source that is not attached anywhere). If the descriptor is closed unattached, the
//! kernel dissolves the tree: nothing can leak on the host.
//!
//! `libc` has the system call numbers but not (in the version used) the flags, so they
//! are spelled out here from `include/uapi/linux/mount.h` and `fcntl.h`.

use std::ffi::CStr;
use std::os::fd::{OwnedFd, RawFd};

use nix::errno::Errno;

/// `OPEN_TREE_CLONE`: a detached copy of the mount, not the mount itself.
const OPEN_TREE_CLONE: libc::c_uint = 0x1;
/// `OPEN_TREE_CLOEXEC` is `O_CLOEXEC`.
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
/// `AT_RECURSIVE`: the whole subtree (submounts too).
const AT_RECURSIVE: libc::c_uint = 0x8000;
/// `MOVE_MOUNT_F_EMPTY_PATH`: the source is the descriptor itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
/// `MS_PRIVATE`, as `struct mount_attr`'s `propagation` takes it.
const MS_PRIVATE: u64 = 0x4_0000;

/// The kernel's `struct mount_attr`, first version (`MOUNT_ATTR_SIZE_VER0`, 32 bytes).
#[repr(C)]
#[derive(Debug, Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)`: a
/// detached copy of the mount tree at `path` (a bind of it, with its submounts), as a
/// close-on-exec descriptor.
pub fn open_tree_clone(path: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: `path` is NUL-terminated and outlives the call; the other arguments are
    // integers. On success the kernel returns a new descriptor that nothing else owns.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE,
        )
    };
    Errno::result(ret).map(|fd| super::fd::own(fd as RawFd))
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, {RDONLY | NOSUID | NODEV,
/// MS_PRIVATE})`: makes every mount of the detached tree `fd` read-only, nosuid, nodev and
/// private. A clone of a shared mount (the host's `/` under systemd) starts in its peer
/// group; private, nothing mounted later on either side propagates to the other.
pub fn make_private_read_only(fd: RawFd) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        propagation: MS_PRIVATE,
        ..MountAttr::default()
    };
    // SAFETY: the empty path is NUL-terminated; `attr` is a fully initialised
    // `struct mount_attr` of the size passed, which the kernel only reads.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH as libc::c_uint) | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// `move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`: attaches the detached
/// tree `fd` at `target` in the caller's mount namespace. Allocation-free (the sandbox
/// init calls it between clone and exec).
pub fn move_mount_to(fd: RawFd, target: &CStr) -> Result<(), Errno> {
    // SAFETY: both paths are NUL-terminated and outlive the call; the rest are integers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_attr_is_version_0_size() {
        assert_eq!(std::mem::size_of::<MountAttr>(), 32);
    }

    /// Root-only: a detached copy of a directory can be made private and read-only; it
    /// dissolves when its descriptor closes (nothing to clean up).
    #[test]
    fn a_detached_tree_is_made_private_and_read_only() {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root (CAP_SYS_ADMIN)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
        let tree = open_tree_clone(&path).unwrap();
        use std::os::fd::AsRawFd;
        make_private_read_only(tree.as_raw_fd()).unwrap();
    }

    #[test]
    fn a_missing_path_is_an_error() {
        // Fails on the path lookup (or EPERM without privileges), never a descriptor.
        assert!(open_tree_clone(c"/nonexistent/hearth-code").is_err());
    }
}
