//! Process-level system calls the sandbox needs that `nix` does not wrap in the form used
//! here: `clone3` (with `CLONE_PIDFD` and `CLONE_INTO_CGROUP`), `pivot_root`, `close_range`,
//! capability and `prctl` calls, `execve` from prepared pointer arrays, signal-disposition
//! reset, and bringing the loopback interface up.
//!
//! Every function here is async-signal-safe and allocation-free: the sandbox child calls
//! them between `clone` and `execve`, possibly cloned from a multi-threaded `hearth`.

use std::ffi::CStr;
use std::os::fd::RawFd;

use libc::c_char;
use nix::errno::Errno;

/// The kernel's `struct clone_args` (include/uapi/linux/sched.h), version 2 (88 bytes),
/// which has the `cgroup` field for `CLONE_INTO_CGROUP`.
#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (Linux 5.7), not yet in every `libc` release.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What [`clone3_fork`] returns on each side.
#[derive(Debug)]
pub enum Forked {
    /// In the parent: the child's pid (as seen from the parent's pid namespace) and a pidfd.
    Parent { pid: i32, pidfd: RawFd },
    /// In the child.
    Child,
}

/// `clone3` with fork semantics (no new stack: the child continues on a copy of the
/// caller's stack, as after `fork`), `SIGCHLD` as exit signal, and `CLONE_PIDFD` so the
/// parent gets a pidfd with no pid-reuse race. `cgroup_fd`, when given, adds
/// `CLONE_INTO_CGROUP` so the child starts life inside its cgroup (cgroup v2 only).
///
/// The caller may be multi-threaded, but the child has only the calling thread, and every
/// lock another thread held at the moment of the clone (malloc's, stdio's, glibc's thread
/// list's) stays held in the child forever. The child must therefore neither allocate nor
/// lock nor call a libc function that may (glibc's `setuid` family, which broadcasts to
/// the threads glibc still believes exist, included: use [`set_res_ids`] and
/// [`clear_groups`]); the sandbox's init and command only make system calls, so cloning
/// from the daemon's threads is sound.
pub fn clone3_fork(flags: u64, cgroup_fd: Option<RawFd>) -> Result<Forked, Errno> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: `args` is a valid, fully initialised clone_args of the size passed; stack 0
    // gives fork semantics: the child runs on a copy of this thread's stack and touches no
    // state another thread could have left inconsistent (see above); `pidfd`
    // outlives the call (the kernel writes it before returning in the parent).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            pidfd,
        }),
    }
}

/// Plain `fork` (via `clone` with only `SIGCHLD`, no `atfork` handlers), for the sandbox
/// init's child and the cleanup keeper. Returns the child's pid in the parent and 0 in the
/// child. Called from a multi-threaded process, the rule of [`clone3_fork`] holds for the
/// child (the sandbox init, single-threaded, forks the command; the keeper forks while
/// `hearth run` is still single-threaded, so its child may allocate).
pub fn fork_raw() -> Result<i32, Errno> {
    // SAFETY: fork semantics (null stack); either the caller is single-threaded or the
    // child keeps to system calls (see `clone3_fork`), so no lock or allocator state of
    // another thread is touched.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(ret as i32)
    }
}

/// `pivot_root(".", ".")`: the current directory becomes the root and the old root is
/// stacked on top of it, to be detached by `umount2(".", MNT_DETACH)` (the trick documented
/// in pivot_root(2); it needs no directory for the old root inside the new one).
pub fn pivot_root_here() -> Result<(), Errno> {
    let dot = c".";
    // SAFETY: both arguments are valid NUL-terminated strings.
    let ret = unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// Marks every file descriptor from `first` up close-on-exec (`close_range` with
/// `CLOSE_RANGE_CLOEXEC`, Linux 5.11), so nothing but stdio survives `execve` — while the
/// exec-status pipe keeps working until the exec succeeds.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range only changes fd flags of this process; no memory is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(ret).map(drop)
}

/// Closes every descriptor in `first..=last`.
pub fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    if first > last {
        return Ok(());
    }
    // SAFETY: closing descriptors; the caller guarantees none of them is owned elsewhere
    // in this (single-threaded, about-to-be-replaced) process.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    Errno::result(ret).map(drop)
}

fn prctl5(op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> Result<libc::c_int, Errno> {
    // SAFETY: every prctl operation used here takes integer arguments only.
    let ret = unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    Errno::result(ret)
}

/// `PR_SET_PDEATHSIG`: `sig` is delivered when the parent thread dies.
pub fn set_parent_death_signal(sig: libc::c_int) -> Result<(), Errno> {
    prctl5(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0).map(drop)
}

/// `PR_SET_NO_NEW_PRIVS`: execve can never grant privileges again (setuid bits, file
/// capabilities); also required for an unprivileged seccomp filter.
pub fn set_no_new_privs() -> Result<(), Errno> {
    prctl5(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map(drop)
}

/// `PR_SET_DUMPABLE` 0: `/proc/<pid>/mem`, `environ` and ptrace need `CAP_SYS_PTRACE`
/// against this process, and its /proc files become root-owned.
pub fn set_not_dumpable() -> Result<(), Errno> {
    prctl5(libc::PR_SET_DUMPABLE, 0, 0).map(drop)
}

/// Drops capabilities `0..=last_cap` from the bounding set (needs `CAP_SETPCAP`, so before
/// the uid change). `EINVAL` for a number the kernel does not know ends the loop.
pub fn drop_bounding_set(last_cap: u32) -> Result<(), Errno> {
    for cap in 0..=last_cap {
        match prctl5(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0) {
            Ok(_) => {}
            Err(Errno::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Clears the ambient capability set.
pub fn clear_ambient_caps() -> Result<(), Errno> {
    prctl5(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    )
    .map(drop)
}

/// `setgroups(0, NULL)` as a raw system call: the calling thread's supplementary groups
/// become empty. (glibc's wrapper would broadcast the change to every thread it knows of,
/// which in a child cloned from a multi-threaded process are threads that do not exist.)
pub fn clear_groups() -> Result<(), Errno> {
    // SAFETY: a zero-length list with a null pointer, which the kernel accepts.
    let ret = unsafe { libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) };
    Errno::result(ret).map(drop)
}

/// `setresgid(gid, gid, gid)` then `setresuid(uid, uid, uid)` as raw system calls (see
/// [`clear_groups`] for why not glibc's). Reports which of the two failed: `Err((true, _))`
/// for the gid.
pub fn set_res_ids(uid: u32, gid: u32) -> Result<(), (bool, Errno)> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) };
    Errno::result(ret).map_err(|e| (true, e))?;
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    Errno::result(ret).map(drop).map_err(|e| (false, e))
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;

/// Empties the effective, permitted and inheritable sets of the calling thread.
pub fn clear_capabilities() -> Result<(), Errno> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and a two-element data array, as capset(2) requires for version 3.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// Resets every catchable signal to its default disposition and unblocks all signals.
/// Ignored dispositions survive execve (Rust's runtime ignores SIGPIPE, for instance), and
/// so does the signal mask, so the function must not inherit either.
pub fn reset_signals() -> Result<(), Errno> {
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL has no handler to be unsound; the libc-reserved
        // real-time signals fail with EINVAL, which is ignored.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an all-empty sigset, initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        let ret = libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        Errno::result(ret).map(drop)
    }
}

/// `execve` from prepared NULL-terminated pointer arrays (nix's `execve` allocates, which
/// the sandbox child must not). Returns only on failure.
pub fn execve_prepared(path: &CStr, argv: &[*const c_char], envp: &[*const c_char]) -> Errno {
    debug_assert!(argv.last().is_some_and(|p| p.is_null()));
    debug_assert!(envp.last().is_some_and(|p| p.is_null()));
    // SAFETY: path is NUL-terminated; argv and envp are NULL-terminated arrays of pointers
    // to NUL-terminated strings that outlive this call (CStrings of the spawn plan, or a
    // blank init's stack buffer of decoded exec bytes).
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

/// Sets `IFF_UP` on the interface `name` (a fresh network namespace has `lo` down).
pub fn set_interface_up(name: &CStr) -> Result<(), Errno> {
    let bytes = name.to_bytes_with_nul();
    if bytes.len() > libc::IFNAMSIZ {
        return Err(Errno::EINVAL);
    }
    // SAFETY: a plain datagram socket; checked below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(Errno::last());
    }
    // SAFETY: ifreq is plain old data; zeroed is a valid value. The name fits (checked
    // above). The ioctls read and write only the ifreq passed.
    let result = unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
            *dst = *src as c_char;
        }
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(Errno::last())
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) < 0 {
                Err(Errno::last())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: closing the socket created above.
    unsafe { libc::close(sock) };
    result
}

/// `CLOCK_MONOTONIC` in nanoseconds (shared by every process on the host, so parent and
/// child stamps compare).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec passed.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Blocks `signals` in the calling thread's mask (so they stay pending for `sigwaitinfo`
/// or a signalfd).
pub fn block_signals(signals: &[libc::c_int]) -> Result<(), Errno> {
    // SAFETY: the set is initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        Errno::result(libc::sigprocmask(
            libc::SIG_BLOCK,
            &set,
            std::ptr::null_mut(),
        ))
        .map(drop)
    }
}

/// Waits for one of `signals` (which must be blocked) and returns its number and, for
/// `SIGCHLD`, nothing more: the caller reaps with `waitpid`.
pub fn wait_signal(signals: &[libc::c_int]) -> Result<libc::c_int, Errno> {
    // SAFETY: the set is initialised by sigemptyset; siginfo is written by the kernel.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let ret = libc::sigwaitinfo(&set, &mut info);
        Errno::result(ret)
    }
}

/// `pidfd_send_signal`: signals the process behind `pidfd` with no pid-reuse race.
pub fn pidfd_send_signal(pidfd: RawFd, sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: no pointers besides the null siginfo, which the kernel accepts.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// Sets `sig`'s disposition to ignored.
pub fn ignore_signal(sig: libc::c_int) {
    // SAFETY: SIG_IGN installs no handler.
    unsafe { libc::signal(sig, libc::SIG_IGN) };
}

/// `_exit(2)`: ends the process at once, without running destructors or flushing stdio
/// buffers that belong to the parent's copy of the address space.
pub fn exit_now(code: libc::c_int) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_args_is_version_2_size() {
        // CLONE_ARGS_SIZE_VER2 is 88 bytes: the kernel rejects other sizes it does not know.
        assert_eq!(std::mem::size_of::<CloneArgs>(), 88);
    }

    #[test]
    fn monotonic_clock_advances() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(b >= a);
    }
}

/// What the child of a benchmark peer (`hearth bench peers`) does between `fork` and
/// `execve`, so that the peer starts with the same limits as a Hearth sandbox.
#[derive(Debug, Default)]
pub struct PeerChildSetup {
    /// `cgroup.procs` files (opened close-on-exec by the parent) to write `0` to: the child
    /// joins those cgroups before it runs anything.
    pub join: Vec<std::os::fd::OwnedFd>,
    /// `(empty file, target)`: in a new, private mount namespace, bind-mount the first over
    /// the second (crun 1.8 refuses a hybrid host when it sees
    /// `/sys/fs/cgroup/unified/cgroup.controllers`; hiding it makes crun drive v1).
    pub hide: Option<(std::ffi::CString, std::ffi::CString)>,
}

/// Arranges for `cmd`'s child to run `setup` after `fork`, before `execve`.
pub fn set_peer_child_setup(cmd: &mut std::process::Command, setup: PeerChildSetup) {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let child = move || -> std::io::Result<()> {
        for fd in &setup.join {
            crate::sys::fd::write_all(fd.as_raw_fd(), b"0")?;
        }
        if let Some((empty, target)) = &setup.hide {
            unshare(CloneFlags::CLONE_NEWNS)?;
            mount(
                None::<&CStr>,
                c"/",
                None::<&CStr>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&CStr>,
            )?;
            mount(
                Some(empty.as_c_str()),
                target.as_c_str(),
                None::<&CStr>,
                MsFlags::MS_BIND,
                None::<&CStr>,
            )?;
        }
        Ok(())
    };
    // SAFETY: `child` runs in the forked child before `execve`. It only makes the system
    // calls write(2), unshare(2) and mount(2) on data prepared before the fork (descriptors
    // and C strings it owns); it allocates nothing and takes no lock, so it is
    // async-signal-safe as `pre_exec` requires. Errno converts to io::Error without
    // allocating.
    unsafe {
        cmd.pre_exec(child);
    }
}
