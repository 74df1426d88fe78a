//! The raw `seccomp(SECCOMP_SET_MODE_FILTER)` call that attaches one classic-BPF program to
//! the calling thread.
//!
//! Owns only the system call. What the program says, which programs are installed and in
//! which order belongs to `sandbox::seccomp`; setting `no_new_privs` first is the caller's
//! job (see `sandbox::seccomp::SeccompPolicy::apply`).
//!
//! Limits: no flags are passed, so the filter attaches to the calling thread only (no
//! `SECCOMP_FILTER_FLAG_TSYNC`); the sandbox child is single-threaded between `clone` and
//! `execve`, and the filter is inherited by everything it execs and forks. The function
//! allocates nothing and is async-signal-safe.

use nix::errno::Errno;

/// Attaches `prog` to the calling thread with `seccomp(SECCOMP_SET_MODE_FILTER, 0, ...)`.
///
/// The kernel refuses the call with `EACCES` unless the thread has `no_new_privs` set or
/// `CAP_SYS_ADMIN` in its user namespace; it answers `EINVAL` for an empty or malformed
/// program and `ENOMEM` when the stacked filters would exceed its instruction budget. A
/// program longer than `u16::MAX` instructions cannot be described to the kernel and is
/// refused here with `EINVAL` (the kernel's own limit, 4096, is lower anyway).
///
/// Does not allocate: safe to call between `clone` and `execve`.
pub fn install_filter(prog: &[libc::sock_filter]) -> Result<(), Errno> {
    let Ok(len) = u16::try_from(prog.len()) else {
        return Err(Errno::EINVAL);
    };
    let fprog = libc::sock_fprog {
        len,
        // The kernel only reads the program; `sock_fprog` merely spells the pointer `*mut`.
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` lives on this stack frame for the whole call and points at `len`
    // initialised `sock_filter`s borrowed from `prog`, which outlives the call; the kernel
    // copies the program (`seccomp_prepare_user_filter`) and keeps no pointer into our
    // memory. The other arguments are plain integers. No Rust invariant depends on the
    // outcome: on failure nothing is installed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
            0 as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

#[cfg(test)]
mod tests {
    //! Behaviour of the real policy, seen from inside a forked child.
    //!
    //! The tests fork because a seccomp filter can never be removed: the child sets
    //! `no_new_privs`, installs the policy with `SeccompPolicy::apply`, runs its probes,
    //! writes one result per probe to a pipe and leaves with `_exit`. The parent asserts.
    //! Between `fork` and `_exit` the child of this multi-threaded test process only makes
    //! system calls and touches stack memory: no allocation, no locks, no panics.
    //! Nothing here needs root; as root, several probes (mount, unshare, chroot, clone with
    //! CLONE_NEWNET, AF_PACKET) would succeed without the filter, so the EPERM they see is
    //! the filter's.

    use super::install_filter;
    use crate::sandbox::seccomp::SeccompPolicy;
    use nix::errno::Errno;
    use nix::sys::signal::Signal;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, pipe, ForkResult};
    use std::os::fd::{AsRawFd, OwnedFd};

    /// What a probe saw: 0 for success, otherwise the errno.
    type Outcome = i32;
    const OK: Outcome = 0;

    /// The child could not even set up (no_new_privs or apply failed).
    const SETUP_FAILED: Outcome = -1;

    /// Turns a raw system-call return value into an [`Outcome`].
    fn outcome(rc: libc::c_long) -> Outcome {
        if rc >= 0 {
            OK
        } else {
            Errno::last_raw()
        }
    }

    fn show(outcome: Outcome) -> String {
        match outcome {
            OK => "ok".to_owned(),
            SETUP_FAILED => "no result".to_owned(),
            errno => format!("{:?}", Errno::from_raw(errno)),
        }
    }

    /// If a probe that should have failed created a process, that process must leave at
    /// once: it is a copy of the probing child.
    fn exit_if_child(rc: libc::c_long) {
        if rc == 0 {
            // SAFETY: `_exit` never returns and is async-signal-safe.
            unsafe { libc::_exit(0) };
        }
    }

    /// Closes a descriptor returned by a probe that was expected to succeed.
    fn close_if_fd(rc: libc::c_long) {
        if let Ok(fd) = libc::c_int::try_from(rc) {
            if fd >= 0 {
                // SAFETY: `fd` was just returned to us by the kernel and is owned by nobody else.
                unsafe { libc::close(fd) };
            }
        }
    }

    /// The kernel's `struct clone_args` (version 2, 88 bytes).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        fields: [u64; 11],
    }

    /// Runs `probes` in a forked child under the compiled policy and returns the outcomes
    /// and how the child ended.
    fn run_in_filtered_child<const N: usize>(
        policy: &SeccompPolicy,
        probes: fn(&mut [Outcome; N]),
    ) -> ([Outcome; N], WaitStatus) {
        let (rd, wr): (OwnedFd, OwnedFd) = pipe().expect("pipe");
        // SAFETY: the child calls only async-signal-safe functions (prctl, seccomp, raw
        // system calls, write, _exit) on data that already exists; it never returns into
        // the test harness.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(rd);
                let mut out = [SETUP_FAILED; N];
                let ready = nix::sys::prctl::set_no_new_privs().is_ok() && policy.apply().is_ok();
                if ready {
                    probes(&mut out);
                }
                let mut bytes = [0u8; 4096];
                for (slot, value) in bytes.chunks_exact_mut(4).zip(out.iter()) {
                    slot.copy_from_slice(&value.to_ne_bytes());
                }
                let _ = nix::unistd::write(&wr, &bytes[..N * 4]);
                // SAFETY: `_exit` never returns; it skips the harness's atexit handlers,
                // which must not run in a forked copy of it.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => {
                drop(wr);
                let mut bytes = Vec::new();
                let mut file = std::fs::File::from(rd);
                std::io::Read::read_to_end(&mut file, &mut bytes).expect("read probe results");
                let status = waitpid(child, None).expect("waitpid");
                let mut out = [SETUP_FAILED; N];
                for (value, chunk) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *value = i32::from_ne_bytes(chunk.try_into().expect("4 bytes"));
                }
                (out, status)
            }
        }
    }

    const NAMES: [&str; 24] = [
        "getpid",
        "mount",
        "unshare(CLONE_NEWNS)",
        "clone3",
        "clone(CLONE_NEWNET)",
        "fork",
        "socket(AF_PACKET)",
        "socket(AF_INET, SOCK_RAW)",
        "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC)",
        "socket(AF_NETLINK, NETLINK_ROUTE)",
        "socket(AF_NETLINK, NETLINK_AUDIT)",
        "socket(AF_UNIX, SOCK_SEQPACKET)",
        "ioctl(TIOCSTI)",
        "ioctl(TIOCSTI | high bits)",
        "ioctl(FIONREAD)",
        "io_uring_setup",
        "bpf",
        "ptrace(PTRACE_TRACEME)",
        "chroot",
        "setns",
        "personality(query)",
        "personality(ADDR_NO_RANDOMIZE)",
        "x32 getpid (nr | 0x40000000)",
        "unshare(CLONE_NEWUSER)",
    ];

    #[rustfmt::skip]
    const EXPECTED: [Outcome; 24] = [
        OK,                  // getpid
        libc::EPERM,         // mount
        libc::EPERM,         // unshare(CLONE_NEWNS)
        libc::ENOSYS,        // clone3: the 'enosys' filter wins over 'main'
        libc::EPERM,         // clone(CLONE_NEWNET)
        OK,                  // fork: glibc uses clone without namespace flags
        libc::EPERM,         // socket(AF_PACKET)
        libc::EPERM,         // socket(AF_INET, SOCK_RAW)
        OK,                  // socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC)
        OK,                  // socket(AF_NETLINK, NETLINK_ROUTE)
        libc::EPERM,         // socket(AF_NETLINK, NETLINK_AUDIT)
        OK,                  // socket(AF_UNIX, SOCK_SEQPACKET)
        libc::EPERM,         // ioctl(TIOCSTI)
        libc::EPERM,         // ioctl(TIOCSTI | high bits)
        OK,                  // ioctl(FIONREAD) on a pipe
        libc::EPERM,         // io_uring_setup
        libc::EPERM,         // bpf
        libc::EPERM,         // ptrace
        libc::EPERM,         // chroot
        libc::EPERM,         // setns
        OK,                  // personality(0xffffffff)
        libc::EPERM,         // personality(ADDR_NO_RANDOMIZE)
        libc::EPERM,         // x32 numbers match nothing in the x86_64 allowlist
        libc::EPERM,         // unshare(CLONE_NEWUSER), last: had it worked, the later
                             // probes would run without privileges over the host's netns
    ];

    fn probes(out: &mut [Outcome; 24]) {
        out[0] = if nix::unistd::getpid().as_raw() > 0 {
            OK
        } else {
            libc::EINVAL
        };

        // SAFETY: C string literals and null pointers; nothing is written by the kernel.
        out[1] = outcome(
            unsafe {
                libc::mount(
                    std::ptr::null(),
                    c"/nonexistent-hearth-seccomp-probe".as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    std::ptr::null(),
                )
            }
            .into(),
        );
        out[2] = match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS) {
            Ok(()) => OK,
            Err(e) => e as i32,
        };

        let args = CloneArgs::default();
        // SAFETY: points at a zeroed, live 88-byte clone_args; should the call succeed, the
        // new process (a fork-like copy) leaves at once.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        exit_if_child(rc);
        out[3] = outcome(rc);

        let flags = (libc::CLONE_NEWNET | libc::SIGCHLD) as libc::c_ulong;
        // SAFETY: fork-like clone with no new stack and no pointers; should it succeed, the
        // child leaves at once.
        let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
        exit_if_child(rc);
        out[4] = outcome(rc);

        // SAFETY: the grandchild only calls `_exit`.
        out[5] = match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                // SAFETY: `_exit` never returns.
                unsafe { libc::_exit(0) }
            }
            Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, 0)) => OK,
                Ok(_) => libc::ECHILD,
                Err(e) => e as i32,
            },
            Err(e) => e as i32,
        };

        let socket = |domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int| {
            // SAFETY: integer arguments only.
            let rc = unsafe { libc::socket(domain, ty, protocol) };
            close_if_fd(rc.into());
            outcome(rc.into())
        };
        out[6] = socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        out[7] = socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        out[8] = socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        out[9] = socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        );
        out[10] = socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_AUDIT);
        out[11] = socket(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0);

        let byte: u8 = b'x';
        // SAFETY: TIOCSTI reads one byte from a live stack variable; fd 0 may not even be
        // a terminal (the filter answers before the driver is reached).
        out[12] = outcome(unsafe { libc::ioctl(0, libc::TIOCSTI, &byte as *const u8) }.into());
        let dodge = 0xdead_0000_0000_u64 as libc::c_ulong | libc::TIOCSTI as libc::c_ulong;
        // SAFETY: as above; the kernel would ignore the high bits of the request.
        out[13] = outcome(unsafe { libc::ioctl(0, dodge as _, &byte as *const u8) }.into());
        out[14] = match pipe() {
            Ok((r, _w)) => {
                let mut pending: libc::c_int = 0;
                // SAFETY: FIONREAD writes one c_int into a live stack variable.
                outcome(unsafe { libc::ioctl(r.as_raw_fd(), libc::FIONREAD, &mut pending) }.into())
            }
            Err(e) => e as i32,
        };

        let mut params = [0u8; 120];
        // SAFETY: points at a zeroed buffer the size of struct io_uring_params.
        out[15] =
            outcome(unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) });
        // SAFETY: BPF_MAP_CREATE with a null attribute pointer and size 0: the kernel would
        // reject it with EINVAL/EFAULT; nothing is read or written.
        out[16] = outcome(unsafe { libc::syscall(libc::SYS_bpf, 0, 0usize, 0u32) });
        // SAFETY: integer arguments only.
        out[17] = outcome(unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) });
        // SAFETY: C string literal.
        out[18] = outcome(unsafe { libc::chroot(c"/".as_ptr()) }.into());
        // SAFETY: integer arguments only (an invalid fd).
        out[19] = outcome(unsafe { libc::setns(-1, 0) }.into());
        // SAFETY: integer argument only; 0xffffffff only queries.
        out[20] = outcome(unsafe { libc::personality(0xffff_ffff) }.into());
        // SAFETY: integer argument only.
        out[21] = outcome(unsafe { libc::personality(0x0040000) }.into());

        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: getpid's number with the x32 bit set; no arguments.
            out[22] = outcome(unsafe { libc::syscall(0x4000_0000 | libc::SYS_getpid) });
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            out[22] = libc::EPERM;
        }

        out[23] = match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
            Ok(()) => OK,
            Err(e) => e as i32,
        };
    }

    #[test]
    fn policy_allows_and_denies_from_inside_a_forked_child() {
        let policy = SeccompPolicy::compile().expect("policy compiles");
        let (got, status) = run_in_filtered_child(&policy, probes);
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "child ended badly: {status:?}"
        );
        assert_ne!(
            got[0], SETUP_FAILED,
            "no_new_privs or apply failed in the child"
        );
        let wrong: Vec<String> = NAMES
            .iter()
            .zip(got.iter().zip(EXPECTED.iter()))
            .filter(|(_, (g, e))| g != e)
            .map(|(name, (g, e))| format!("{name}: got {}, want {}", show(*g), show(*e)))
            .collect();
        assert!(
            wrong.is_empty(),
            "unexpected outcomes:\n{}",
            wrong.join("\n")
        );
    }

    /// The i386 entry (`int 0x80`) reaches the filter with AUDIT_ARCH_I386; seccompiler's
    /// prologue kills the whole process for any foreign architecture.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn i386_entry_kills_the_process() {
        fn int80_getpid(out: &mut [Outcome; 1]) {
            let mut rax: u64 = 20; // __NR_getpid in the i386 table
                                   // SAFETY: `int 0x80` with eax = i386 getpid takes no pointers and touches no
                                   // memory; rax carries the result and r8-r11 are declared clobbered because the
                                   // 64-bit kernel does not promise to keep them across the 32-bit entry. The
                                   // filter kills the process before any of that matters.
            unsafe {
                std::arch::asm!(
                    "int 0x80",
                    inout("rax") rax,
                    out("r8") _,
                    out("r9") _,
                    out("r10") _,
                    out("r11") _,
                    options(nostack),
                );
            }
            out[0] = if rax < 0x1000 { OK } else { libc::EINVAL };
        }
        let policy = SeccompPolicy::compile().expect("policy compiles");
        let (_, status) = run_in_filtered_child(&policy, int80_getpid);
        match status {
            WaitStatus::Signaled(_, Signal::SIGSYS, _) => {}
            other => panic!("expected death by SIGSYS, got {other:?}"),
        }
    }

    /// A minimal hand-made program goes through `install_filter` and does what it says.
    #[test]
    fn install_filter_attaches_a_program() {
        fn probe(out: &mut [Outcome; 3]) {
            // Program: return ERRNO(EXDEV) for getppid, ALLOW for everything else. The
            // child already runs under the policy; this stacks one more filter on top.
            let nr = libc::SYS_getppid as u32;
            let prog = [
                bpf(0x20, 0, 0, 0),                                // ld [nr]
                bpf(0x15, 0, 1, nr),                               // jeq nr, 0, 1
                bpf(0x06, 0, 0, 0x0005_0000 | libc::EXDEV as u32), // ret ERRNO(EXDEV)
                bpf(0x06, 0, 0, 0x7fff_0000),                      // ret ALLOW
            ];
            out[0] = match install_filter(&prog) {
                Ok(()) => OK,
                Err(e) => e as i32,
            };
            // SAFETY: no arguments.
            out[1] = outcome(unsafe { libc::syscall(libc::SYS_getppid) });
            // An empty program is refused before anything is attached.
            out[2] = match install_filter(&[]) {
                Ok(()) => OK,
                Err(e) => e as i32,
            };
        }
        let policy = SeccompPolicy::compile().expect("policy compiles");
        let (got, status) = run_in_filtered_child(&policy, probe);
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
        assert_eq!(got, [OK, libc::EXDEV, libc::EINVAL]);
    }

    fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }
}
