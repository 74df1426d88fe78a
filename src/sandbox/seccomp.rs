//! The sandbox's system-call policy: compiled at build time, loaded at start-up, applied last.
//!
//! **Owns** the policy data in `policy/` and its translation into the two classic-BPF
//! programs the sandbox child installs just before `execve`:
//!
//! 1. `main`, an allowlist: every listed syscall is allowed (some only for certain
//!    arguments), everything else fails with `EPERM`. Its `comment`s say who needs each
//!    entry. It is at least as strict as Docker's default profile for a container without
//!    capabilities, and stricter in places: no `ptrace`/`process_vm_*`, no `io_uring`, no
//!    `name_to_handle_at`, no Linux AIO (`io_setup` and friends), no `modify_ldt`, no raw or
//!    packet sockets, netlink only for `NETLINK_ROUTE`, no `TIOCSTI`/`TIOCLINUX` ioctls, and
//!    `clone` only without namespace flags.
//! 2. `enosys`, which answers `ENOSYS` for `clone3` and allows everything else. A filter
//!    cannot read `clone3`'s flags (they sit in a user-memory struct), so libcs must be made
//!    to fall back to `clone`, whose flags `main` checks; they fall back on `ENOSYS`, not on
//!    `EPERM`. When stacked filters disagree the kernel keeps the most restrictive action,
//!    and between two `SECCOMP_RET_ERRNO`s the data of the most recently installed filter
//!    (`seccomp_run_filters` walks newest to oldest and replaces its result only on a
//!    strictly lower action). Hence `main` goes in first and `enosys` second.
//!
//! **Two compilers, one policy.** The JSON files are the only statement of the policy; both
//! compilers read them (see `compiler.rs` for how they work):
//! - the *reference*, [`SeccompPolicy::compile_for`]: seccompiler 0.4's own output, a linear
//!   chain of about five instructions per listed syscall (1,413 for x86_64's `main`). It is
//!   what the tests trust, and it costs about 0.4 ms to compile.
//! - the *optimised* compiler, which `build.rs` runs for the target architecture, so that
//!   [`SeccompPolicy::compile`] only hands out the embedded programs. Same architecture
//!   check, then a balanced `jge` tree over the intervals of syscall numbers with equal
//!   decisions; argument rules stay seccompiler's own code, one subprogram per syscall.
//!   `main` shrinks from 1,413 to 204 instructions on x86_64 (1,233 to 203 on aarch64),
//!   of which the five argument subprograms are about 120.
//!
//!   Why: installing a filter is on every cold start, and the kernel's work per install
//!   grows with the program. It converts and JIT-compiles it (linear in its length) and
//!   builds the action cache (5.11+) by emulating the program for every syscall number
//!   (linear in the path length, so quadratic in the length of a linear chain). Here
//!   `apply` went from a median of 0.83 ms to 0.08 ms (installing two trivial filters
//!   costs 0.035 ms), and `compile` from 0.4 ms to nothing.
//!
//!   The tests hold the two together: the optimised programs must decide exactly like the
//!   reference ones, stacked as the kernel stacks them, for every syscall number up to
//!   1023, x32 and other high numbers, foreign architectures and a grid of argument values
//!   around every constant in the rules, on both architectures; and the embedded programs
//!   must equal what the optimiser produces from the JSON now (nothing stale).
//!
//! **Reviewing the policy.** Review the JSON, not the BPF: each entry names the syscall
//! and says who needs it; argument rules state their constants and why. A change to a
//! file rebuilds the programs (`build.rs` watches the files) and the tests check again
//! that both compilers agree on it and that the designed decisions hold, so a policy
//! change needs no review of the optimiser or of the generated file. (To look at the
//! programs anyway: `$OUT_DIR/seccomp_programs.rs` under `target/*/build/hearth-*/out/`;
//! `cargo test prebuilt_programs -- --nocapture` prints both programs' sizes.) A change
//! to `compiler.rs` itself is reviewed like any code, and the same tests guard it.
//!
//! **Architectures.** The policy must compile for x86_64 and aarch64, but seccompiler 0.4
//! rejects any name its table for the target lacks, and x86_64 still has the legacy calls
//! that aarch64 never had (`open`, `stat`, `access`, `pipe`, `dup2`, `poll`, `fork`,
//! `vfork`, `epoll_wait`, `arch_prctl`, ...), which x86_64 glibc, Python and Node still
//! use. So the policy is two files in seccompiler's own format:
//! `policy/seccomp.json` (the common part: both filters, valid for both architectures) and
//! `policy/seccomp.x86_64.json` (an overlay holding only x86_64-only additions to `main`).
//! For x86_64 the overlay's rules are appended to the same-named filter, whose actions must
//! match, before either compiler runs. Both files stay plain, reviewable data; the tests
//! check that every overlay entry really is unknown on aarch64. On any other architecture
//! nothing is prebuilt and [`SeccompPolicy::compile`] reports it as unsupported.
//!
//! **Foreign ABIs.** Both programs start with seccompiler's prologue, which compares
//! `seccomp_data.arch` with the target's audit arch and kills the process on mismatch, so
//! the i386 entry (`int 0x80`, `AUDIT_ARCH_I386`) on x86_64 or AArch32 on aarch64 ends the
//! process. x32 calls arrive with `AUDIT_ARCH_X86_64` but with bit 30 set in the number
//! (`nr | 0x40000000`); every allowed number is below 0x40000000, so x32 calls match
//! nothing and get `EPERM` (tested).
//!
//! **Does not** set `no_new_privs` (the caller does that earlier in `spawn.rs`; see
//! [`SeccompPolicy::apply`]), does not synchronise threads (`TSYNC`), and does not decide
//! where in the set-up sequence it runs.
//!
//! **Limits.** seccompiler 0.4's syscall tables stop at Linux 5.10 (`process_madvise`,
//! 440). Later syscalls cannot be named, so they fall to `EPERM` like anything unlisted,
//! including some Docker allows (`epoll_pwait2`, `futex_waitv`, `fchmodat2`, `cachestat`,
//! `map_shadow_stack`, `mseal`, `landlock_*`); a libc that probes one of them and falls
//! back only on `ENOSYS` sees `EPERM` instead. The kernel's action cache answers
//! unconditionally allowed syscalls from a bitmap without running the programs; the
//! others (denied, or allowed by argument) walk the tree, about ten instructions deep.

mod compiler;
#[cfg(test)]
mod interpreter;

use std::borrow::Cow;
use std::fmt;

use nix::errno::Errno;
use seccompiler::TargetArch;

pub use self::compiler::{SeccompError, ENOSYS_FILTER, MAIN_FILTER};
use crate::sys::seccomp::install_filter;

/// The programs `build.rs` compiled for the target architecture, if it knows it.
struct Prebuilt {
    arch: TargetArch,
    main: &'static [libc::sock_filter],
    enosys: &'static [libc::sock_filter],
}

/// One instruction of the generated programs.
const fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

// Defines `static PREBUILT: Option<Prebuilt>`.
include!(concat!(env!("OUT_DIR"), "/seccomp_programs.rs"));

/// The compiled policy for one architecture: both programs, ready to install.
///
/// Get it once at start-up with [`SeccompPolicy::compile`]; each sandbox child calls
/// [`SeccompPolicy::apply`] on a shared reference.
pub struct SeccompPolicy {
    arch: TargetArch,
    main: Cow<'static, [libc::sock_filter]>,
    enosys: Cow<'static, [libc::sock_filter]>,
}

impl fmt::Debug for SeccompPolicy {
    // Two programs of hundreds of instructions say nothing in a log; their sizes do.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeccompPolicy")
            .field("arch", &self.arch)
            .field("main_instructions", &self.main.len())
            .field("enosys_instructions", &self.enosys.len())
            .finish()
    }
}

impl SeccompPolicy {
    /// The optimised policy for the architecture this binary runs on: the programs
    /// `build.rs` compiled, borrowed from the binary (no work, no allocation). Without
    /// prebuilt programs it runs the same optimiser now.
    pub fn compile() -> Result<Self, SeccompError> {
        let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|_| {
            SeccompError::UnsupportedArch {
                arch: std::env::consts::ARCH,
            }
        })?;
        match &PREBUILT {
            Some(prebuilt) if prebuilt.arch == arch => Ok(Self {
                arch,
                main: Cow::Borrowed(prebuilt.main),
                enosys: Cow::Borrowed(prebuilt.enosys),
            }),
            _ => Self::optimize_for(arch),
        }
    }

    /// The reference compilation of the embedded policy for `arch` (x86_64 adds the
    /// overlay's legacy syscalls): seccompiler's own programs, which the tests check the
    /// optimised ones against. They decide the same but are several times longer and
    /// slower to install; production uses [`SeccompPolicy::compile`].
    pub fn compile_for(arch: TargetArch) -> Result<Self, SeccompError> {
        Ok(Self::owned(arch, compiler::reference(arch)?))
    }

    /// Runs the optimising compiler for `arch` now (what `build.rs` runs at build time).
    fn optimize_for(arch: TargetArch) -> Result<Self, SeccompError> {
        Ok(Self::owned(arch, compiler::optimized(arch)?))
    }

    fn owned(arch: TargetArch, programs: compiler::Programs) -> Self {
        let convert = |prog: Vec<seccompiler::sock_filter>| -> Cow<'static, [libc::sock_filter]> {
            Cow::Owned(prog.into_iter().map(to_libc).collect())
        };
        Self {
            arch,
            main: convert(programs.main),
            enosys: convert(programs.enosys),
        }
    }

    /// Installs `main`, then `enosys`, on the calling thread.
    ///
    /// The sandbox child calls this as the last step before `execve`; it allocates
    /// nothing. Preconditions, which the caller owns:
    /// - `no_new_privs` is already set (`prctl(PR_SET_NO_NEW_PRIVS)`). Without it the
    ///   kernel refuses an unprivileged filter with `EACCES`; a process with
    ///   `CAP_SYS_ADMIN` could install anyway, but the sandbox always wants the bit, so
    ///   that nothing it execs can gain privileges past the filter.
    /// - The thread is the only one in its process (true between `clone` and `execve`): the
    ///   filter attaches to this thread and what it creates from now on.
    /// - Everything that needs a syscall outside the policy is done.
    ///
    /// On error the first filter may already be installed; the child must give up (fail
    /// closed) rather than exec the function.
    pub fn apply(&self) -> Result<(), Errno> {
        // Order matters: see the module documentation. `main` allows seccomp(2) itself, so
        // the second installation still goes through.
        install_filter(&self.main)?;
        install_filter(&self.enosys)
    }

    /// The architecture the programs were compiled for.
    pub fn arch(&self) -> TargetArch {
        self.arch
    }

    /// The policy text of this architecture (the common file plus the architecture's
    /// overlay), as seccompiler compiles it: `hearth bench peers` translates it for OCI
    /// runtimes.
    pub fn policy_json(&self) -> Result<Vec<u8>, SeccompError> {
        compiler::policy_json(self.arch)
    }

    /// The two programs in installation order, `main` then `enosys` (`hearth bench
    /// peers` hands them to bwrap as they are).
    pub fn programs(&self) -> [&[libc::sock_filter]; 2] {
        [&self.main, &self.enosys]
    }

    /// BPF instructions in both programs together (for the start-up log).
    pub fn instructions(&self) -> usize {
        self.main.len() + self.enosys.len()
    }
}

/// seccompiler's `sock_filter` mirrors the kernel's layout but is its own type.
fn to_libc(insn: seccompiler::sock_filter) -> libc::sock_filter {
    bpf(insn.code, insn.jt, insn.jf, insn.k)
}

#[cfg(test)]
mod tests {
    use super::compiler::{syscall_nr, COMMON_POLICY, X86_64_POLICY};
    use super::interpreter::{
        call, stacked, Call, ALLOW, ARCHES, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, KILL_PROCESS,
    };
    use super::*;
    use serde_json::{Map, Value};
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;
    use std::process::{Command, Output};

    /// Must never be allowed by `main`, on any architecture.
    const MUST_DENY: &[&str] = &[
        "mount",
        "umount",
        "umount2",
        "unshare",
        "setns",
        "pivot_root",
        "chroot",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "kexec_load",
        "kexec_file_load",
        "bpf",
        "perf_event_open",
        "keyctl",
        "add_key",
        "request_key",
        "userfaultfd",
        "open_by_handle_at",
        "name_to_handle_at",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "settimeofday",
        "clock_settime",
        "clock_adjtime",
        "adjtimex",
        "iopl",
        "ioperm",
        "quotactl",
        "quotactl_fd",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "lookup_dcookie",
        "fanotify_init",
        "fanotify_mark",
        "syslog",
        "vhangup",
        "mount_setattr",
        "move_mount",
        "open_tree",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "pidfd_getfd",
        "kcmp",
        "process_madvise",
        "nfsservctl",
        "uselib",
        "ustat",
        "sysfs",
        "_sysctl",
        "create_module",
        "get_kernel_syms",
        "query_module",
        "vm86",
        "vm86old",
        "modify_ldt",
        "set_mempolicy_home_node",
        "set_mempolicy",
        "mbind",
        "migrate_pages",
        "move_pages",
        "sethostname",
        "setdomainname",
        "clone3",
    ];

    /// Syscalls that `main` may only allow for certain arguments.
    const ONLY_CONDITIONAL: &[&str] = &["clone", "socket", "socketpair", "ioctl", "personality"];

    const EPERM: u32 = 0x0005_0000 | libc::EPERM as u32;
    const ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;
    /// Parses one policy file into filter name → its rules.
    fn rules(text: &str) -> BTreeMap<String, Vec<Value>> {
        let map: Map<String, Value> = serde_json::from_str(text).expect("policy is JSON");
        map.into_iter()
            .map(|(name, filter)| {
                let list = filter["filter"].as_array().expect("filter list").clone();
                (name, list)
            })
            .collect()
    }

    fn names(rules: &[Value]) -> BTreeSet<String> {
        rules
            .iter()
            .map(|r| r["syscall"].as_str().expect("syscall name").to_owned())
            .collect()
    }

    /// The kernel's verdict for the policy as `apply` installs it: `main`, then `enosys`.
    fn verdict(policy: &SeccompPolicy, c: &Call) -> u32 {
        stacked(&[&policy.main[..], &policy.enosys[..]], c)
    }

    /// Both compilations of the embedded policy for `arch`: reference, then optimised.
    fn both(arch: TargetArch) -> [SeccompPolicy; 2] {
        [
            SeccompPolicy::compile_for(arch).expect("reference compiles"),
            SeccompPolicy::optimize_for(arch).expect("optimiser compiles"),
        ]
    }

    #[test]
    fn compiles_for_x86_64_and_aarch64() {
        for arch in ARCHES {
            for policy in both(arch) {
                assert_eq!(policy.arch(), arch);
                assert!(
                    policy.main.len() < 4096 && !policy.enosys.is_empty(),
                    "{policy:?}"
                );
            }
        }
    }

    /// `compile()` hands out what `build.rs` embedded, and that is exactly what the
    /// optimiser makes of the policy files as they are now: nothing stale, nothing else.
    #[test]
    fn prebuilt_programs_are_the_optimizers_output() {
        let prebuilt = SeccompPolicy::compile().expect("prebuilt for this machine");
        assert!(
            matches!(
                (&prebuilt.main, &prebuilt.enosys),
                (Cow::Borrowed(_), Cow::Borrowed(_))
            ),
            "{prebuilt:?} was compiled at run time"
        );
        let fresh = SeccompPolicy::optimize_for(prebuilt.arch()).expect("optimiser compiles");
        let parts = |p: &[libc::sock_filter]| {
            p.iter()
                .map(|i| (i.code, i.jt, i.jf, i.k))
                .collect::<Vec<_>>()
        };
        assert_eq!(parts(&prebuilt.main), parts(&fresh.main));
        assert_eq!(parts(&prebuilt.enosys), parts(&fresh.enosys));
        let reference = SeccompPolicy::compile_for(prebuilt.arch()).expect("reference");
        println!(
            "{:?}: reference main {} + enosys {} instructions, installed main {} + enosys {}",
            prebuilt.arch(),
            reference.main.len(),
            reference.enosys.len(),
            prebuilt.main.len(),
            prebuilt.enosys.len()
        );
    }

    /// Each file must also be valid seccompiler input on its own: seccompiler rejects
    /// duplicate filter names, which the merge's JSON map would silently collapse.
    #[test]
    fn each_file_compiles_on_its_own() {
        for arch in ARCHES {
            seccompiler::compile_from_json(COMMON_POLICY.as_bytes(), arch)
                .expect("common policy compiles");
        }
        seccompiler::compile_from_json(X86_64_POLICY.as_bytes(), TargetArch::x86_64)
            .expect("overlay compiles for x86_64");
    }

    #[test]
    fn overlay_holds_only_syscalls_aarch64_lacks() {
        let common = names(&rules(COMMON_POLICY)[MAIN_FILTER]);
        let overlay = rules(X86_64_POLICY);
        assert_eq!(overlay.keys().collect::<Vec<_>>(), [MAIN_FILTER]);
        for name in names(&overlay[MAIN_FILTER]) {
            assert!(!common.contains(&name), "{name} is in both files");
            assert!(
                syscall_nr(TargetArch::aarch64, &name).is_none(),
                "{name} exists on aarch64: move it to seccomp.json"
            );
        }
    }

    #[test]
    fn must_deny_list_is_absent_from_the_allowlist() {
        let mut allowed = names(&rules(COMMON_POLICY)[MAIN_FILTER]);
        allowed.extend(names(&rules(X86_64_POLICY)[MAIN_FILTER]));
        let present: Vec<_> = MUST_DENY.iter().filter(|n| allowed.contains(**n)).collect();
        assert!(
            present.is_empty(),
            "allowed but must be denied: {present:?}"
        );
    }

    #[test]
    fn actions_and_filters_are_as_designed() {
        let policy: Map<String, Value> = serde_json::from_str(COMMON_POLICY).expect("JSON");
        assert_eq!(policy.len(), 2);
        let main = &policy[MAIN_FILTER];
        assert_eq!(
            main["mismatch_action"],
            serde_json::json!({ "errno": libc::EPERM })
        );
        assert_eq!(main["match_action"], "allow");
        let enosys = &policy[ENOSYS_FILTER];
        assert_eq!(enosys["mismatch_action"], "allow");
        assert_eq!(
            enosys["match_action"],
            serde_json::json!({ "errno": libc::ENOSYS })
        );
        assert_eq!(
            names(&rules(COMMON_POLICY)[ENOSYS_FILTER]),
            BTreeSet::from(["clone3".to_owned()])
        );
    }

    /// Every rule says who needs it. And since seccompiler silently drops an
    /// argument-free rule when the same syscall also has rules with arguments (the
    /// syscall would become conditional), a syscall is either listed once without
    /// arguments or only with arguments.
    #[test]
    fn rules_are_commented_and_unambiguous() {
        for text in [COMMON_POLICY, X86_64_POLICY] {
            for (filter, list) in rules(text) {
                let mut plain = BTreeSet::new();
                let mut conditional = BTreeSet::new();
                for rule in &list {
                    let name = rule["syscall"].as_str().expect("name");
                    let comment = rule["comment"].as_str().unwrap_or_default();
                    assert!(comment.len() > 8, "{filter}/{name}: comment missing");
                    if rule.get("args").is_some() {
                        conditional.insert(name);
                    } else {
                        assert!(plain.insert(name), "{filter}/{name}: listed twice");
                    }
                }
                let mixed: Vec<_> = plain.intersection(&conditional).collect();
                assert!(mixed.is_empty(), "{filter}: mixed rules for {mixed:?}");
                for name in ONLY_CONDITIONAL {
                    assert!(!plain.contains(name), "{filter}/{name} must have arguments");
                }
            }
        }
    }

    /// Evaluates the compiled programs, as the kernel stacks them, for both
    /// architectures: default deny, the deny list, argument rules, clone3, foreign ABIs.
    #[test]
    fn compiled_programs_decide_as_designed() {
        for arch in ARCHES {
            for policy in both(arch) {
                decides_as_designed(&policy);
            }
        }
    }

    // libc's ioctl request constants are c_ulong on glibc but c_int on musl: keep the casts.
    #[allow(clippy::unnecessary_cast)]
    fn decides_as_designed(policy: &SeccompPolicy) {
        let arch = policy.arch();
        let nr = |name: &str| syscall_nr(arch, name).expect(name);
        let at = |name: &str, args: &[u64]| verdict(policy, &call(arch, nr(name), args));

        let mut allowed = names(&rules(COMMON_POLICY)[MAIN_FILTER]);
        if arch == TargetArch::x86_64 {
            allowed.extend(names(&rules(X86_64_POLICY)[MAIN_FILTER]));
        }
        let allowed_nrs: BTreeSet<u32> = allowed.iter().map(|n| nr(n)).collect();
        let conditional: BTreeSet<u32> = ONLY_CONDITIONAL.iter().map(|n| nr(n)).collect();
        let clone3 = nr("clone3");
        for number in 0..1024 {
            let got = verdict(policy, &call(arch, number, &[]));
            let want = if number == clone3 {
                ENOSYS
            } else if conditional.contains(&number) {
                continue;
            } else if allowed_nrs.contains(&number) {
                ALLOW
            } else {
                EPERM
            };
            assert_eq!(got, want, "{arch:?} syscall {number}");
        }
        for name in MUST_DENY {
            if let Some(number) = syscall_nr(arch, name) {
                let want = if *name == "clone3" { ENOSYS } else { EPERM };
                assert_eq!(verdict(policy, &call(arch, number, &[])), want, "{name}");
            }
        }

        // clone: thread and fork flags pass, each namespace flag fails.
        let thread_flags = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        assert_eq!(at("clone", &[thread_flags]), ALLOW);
        assert_eq!(at("clone", &[libc::SIGCHLD as u64]), ALLOW);
        let vfork = (libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD) as u64;
        assert_eq!(at("clone", &[vfork]), ALLOW);
        for ns in [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWCGROUP,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
        ] {
            let flags = (ns | libc::SIGCHLD) as u64;
            assert_eq!(at("clone", &[flags]), EPERM, "{arch:?} clone {ns:#x}");
        }

        // socket: domain, type (with flag bits) and netlink protocol.
        let sock = |domain: i32, ty: i32, proto: i32| {
            at("socket", &[domain as u64, ty as u64, proto as u64])
        };
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        for ty in [libc::SOCK_STREAM, libc::SOCK_DGRAM, libc::SOCK_SEQPACKET] {
            for domain in [libc::AF_INET, libc::AF_INET6] {
                assert_eq!(sock(domain, ty, 0), ALLOW);
                assert_eq!(sock(domain, ty | flags, 0), ALLOW);
            }
        }
        for ty in [libc::SOCK_STREAM, libc::SOCK_DGRAM, libc::SOCK_SEQPACKET] {
            assert_eq!(sock(libc::AF_UNIX, ty | flags, 0), ALLOW);
        }
        assert_eq!(
            sock(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
            EPERM
        );
        assert_eq!(sock(libc::AF_INET6, libc::SOCK_RAW | flags, 58), EPERM);
        assert_eq!(sock(libc::AF_INET, 10, 0), EPERM); // SOCK_PACKET
        assert_eq!(sock(libc::AF_PACKET, libc::SOCK_RAW, 0), EPERM);
        assert_eq!(sock(libc::AF_PACKET, libc::SOCK_DGRAM, 0), EPERM);
        assert_eq!(sock(libc::AF_VSOCK, libc::SOCK_STREAM, 0), EPERM);
        assert_eq!(sock(libc::AF_NETLINK, libc::SOCK_RAW | flags, 0), ALLOW);
        assert_eq!(
            sock(libc::AF_NETLINK, libc::SOCK_DGRAM, libc::NETLINK_ROUTE),
            ALLOW
        );
        assert_eq!(
            sock(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_AUDIT),
            EPERM
        );
        assert_eq!(
            sock(
                libc::AF_NETLINK,
                libc::SOCK_RAW,
                libc::NETLINK_KOBJECT_UEVENT
            ),
            EPERM
        );
        assert_eq!(at("socketpair", &[libc::AF_UNIX as u64, 1]), ALLOW);
        assert_eq!(at("socketpair", &[libc::AF_TIPC as u64, 1]), EPERM);

        // ioctl: everything but TIOCSTI/TIOCLINUX, judged on the low 32 bits.
        let ioctl = |request: u64| at("ioctl", &[0, request]);
        assert_eq!(ioctl(libc::TCGETS as u64), ALLOW);
        assert_eq!(ioctl(libc::FIONBIO as u64), ALLOW);
        assert_eq!(ioctl(libc::TIOCSTI as u64), EPERM);
        assert_eq!(ioctl(libc::TIOCLINUX as u64), EPERM);
        assert_eq!(ioctl(0xffff_ffff_0000_0000 | libc::TIOCSTI as u64), EPERM);

        // personality: only Docker's harmless values.
        for persona in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(at("personality", &[persona]), ALLOW, "{persona:#x}");
        }
        for persona in [0x0040000u64, 0x0400000, 0x0200000, 0x0008_0000] {
            assert_eq!(at("personality", &[persona]), EPERM, "{persona:#x}");
        }

        // Any other ABI on this kernel entry is killed before the number is looked at.
        let foreign = match arch {
            TargetArch::x86_64 => AUDIT_ARCH_I386,
            TargetArch::aarch64 => AUDIT_ARCH_ARM,
        };
        let read = Call {
            arch: foreign,
            nr: 3,
            args: [0; 6],
        };
        assert_eq!(verdict(policy, &read), KILL_PROCESS);
    }

    /// x32 calls share AUDIT_ARCH_X86_64 but carry bit 30 in the number: none matches.
    #[test]
    fn x32_numbers_match_nothing_on_x86_64() {
        let arch = TargetArch::x86_64;
        for policy in both(arch) {
            for name in [
                "read", "write", "getpid", "execve", "clone", "socket", "ioctl",
            ] {
                let number = syscall_nr(arch, name).expect(name) | 0x4000_0000;
                assert_eq!(
                    verdict(&policy, &call(arch, number, &[])),
                    EPERM,
                    "x32 {name}"
                );
            }
        }
    }

    #[test]
    fn allowed_syscall_counts() {
        for arch in ARCHES {
            let mut allowed = names(&rules(COMMON_POLICY)[MAIN_FILTER]);
            if arch == TargetArch::x86_64 {
                allowed.extend(names(&rules(X86_64_POLICY)[MAIN_FILTER]));
            }
            let [reference, optimized] = both(arch);
            println!(
                "{arch:?}: {} syscalls allowed; reference {reference:?}, optimised {optimized:?}",
                allowed.len()
            );
            assert!(allowed.len() > 200, "suspiciously short allowlist");
        }
    }

    /// Runs `program` with the policy applied, from a thread of its own: a filter binds
    /// only the thread that installs it (no TSYNC) and everything that thread starts.
    /// The child is spawned under the filter, so its clone3 → ENOSYS → clone fallback is
    /// exercised too.
    fn run_under_policy(program: &str, args: &[&str]) -> Option<Output> {
        if !Path::new(program).exists() {
            println!("skipped: {program} is not installed");
            return None;
        }
        let policy = SeccompPolicy::compile().expect("compiles");
        let program = program.to_owned();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let output = std::thread::spawn(move || {
            nix::sys::prctl::set_no_new_privs().expect("no_new_privs");
            policy.apply().expect("apply");
            Command::new(&program).args(&args).output()
        })
        .join()
        .expect("policy thread")
        .expect("spawn under the policy");
        Some(output)
    }

    fn describe(output: &Output) -> String {
        format!(
            "status {:?}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    /// What `execve` hands the function: both filters, in filter mode, with no_new_privs.
    #[test]
    fn exec_inherits_both_filters() {
        let Some(output) = run_under_policy("/bin/cat", &["/proc/self/status"]) else {
            return;
        };
        assert!(output.status.success(), "{}", describe(&output));
        let status = String::from_utf8_lossy(&output.stdout);
        for line in ["NoNewPrivs:\t1", "Seccomp:\t2", "Seccomp_filters:\t2"] {
            assert!(
                status.lines().any(|l| l == line),
                "no {line:?} in\n{status}"
            );
        }
    }

    #[test]
    fn python_runs_under_the_policy() {
        let script = "import json,ssl,subprocess,threading,socket; \
                      print(subprocess.run([\"/bin/true\"]).returncode)";
        let Some(output) = run_under_policy("/usr/bin/python3", &["-c", script]) else {
            return;
        };
        assert!(output.status.success(), "{}", describe(&output));
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "0");
    }

    #[test]
    fn node_runs_under_the_policy() {
        let script = "require(\"http\").createServer().listen(0,()=>process.exit(0))";
        let Some(output) = run_under_policy("/usr/bin/node", &["-e", script]) else {
            return;
        };
        assert!(output.status.success(), "{}", describe(&output));
    }

    #[test]
    fn jvm_runs_under_the_policy() {
        let Some(output) = run_under_policy("/usr/bin/java", &["-Xmx64m", "-version"]) else {
            return;
        };
        assert!(output.status.success(), "{}", describe(&output));
    }
}
