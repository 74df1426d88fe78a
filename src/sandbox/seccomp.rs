//! The sandbox's system-call policy: load it, compile it once at start-up, apply it last.
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
//! **Architectures.** The policy must compile for x86_64 and aarch64, but seccompiler 0.4
//! rejects any name its table for the target lacks, and x86_64 still has the legacy calls
//! that aarch64 never had (`open`, `stat`, `access`, `pipe`, `dup2`, `poll`, `fork`,
//! `vfork`, `epoll_wait`, `arch_prctl`, ...), which x86_64 glibc, Python and Node still
//! use. So the policy is two files in seccompiler's own format:
//! `policy/seccomp.json` (the common part: both filters, valid for both architectures) and
//! `policy/seccomp.x86_64.json` (an overlay holding only x86_64-only additions to `main`).
//! For x86_64 the overlay's rules are appended to the same-named filter, whose actions must
//! match, before seccompiler compiles the result. Both files stay plain, reviewable data;
//! the tests check that every overlay entry really is unknown on aarch64.
//!
//! **Foreign ABIs.** seccompiler's prologue compares `seccomp_data.arch` with the target's
//! audit arch and kills the process on mismatch, so the i386 entry (`int 0x80`,
//! `AUDIT_ARCH_I386`) on x86_64 or AArch32 on aarch64 ends the process. x32 calls arrive
//! with `AUDIT_ARCH_X86_64` but with bit 30 set in the number (`nr | 0x40000000`);
//! seccompiler compares exact 32-bit numbers and every allowed number is below 0x40000000,
//! so x32 calls match nothing and get `EPERM` (tested).
//!
//! **Does not** set `no_new_privs` (the caller does that earlier in `spawn.rs`; see
//! [`SeccompPolicy::apply`]), does not synchronise threads (`TSYNC`), and does not decide
//! where in the set-up sequence it runs.
//!
//! **Limits.** seccompiler 0.4's syscall tables stop at Linux 5.10 (`process_madvise`,
//! 440). Later syscalls cannot be named, so they fall to `EPERM` like anything unlisted,
//! including some Docker allows (`epoll_pwait2`, `futex_waitv`, `fchmodat2`, `cachestat`,
//! `map_shadow_stack`, `mseal`, `landlock_*`); a libc that probes one of them and falls
//! back only on `ENOSYS` sees `EPERM` instead. The compiled programs search the syscall
//! number linearly, but the kernel's seccomp action cache (5.11+) answers unconditionally
//! allowed syscalls from a bitmap without running them. Installing is not free: the kernel
//! converts and JIT-compiles each program at every install, in time proportional to its
//! length (about 1.4k instructions for `main`, roughly a millisecond on a small VM).

use std::fmt;

use nix::errno::Errno;
use seccompiler::TargetArch;
use serde_json::{Map, Value};

use crate::sys::seccomp::install_filter;

/// Name of the allowlist filter, installed first.
pub const MAIN_FILTER: &str = "main";
/// Name of the filter that turns `clone3` into `ENOSYS`, installed second.
pub const ENOSYS_FILTER: &str = "enosys";

const COMMON_FILE: &str = "src/sandbox/policy/seccomp.json";
const COMMON_POLICY: &str = include_str!("policy/seccomp.json");
const X86_64_FILE: &str = "src/sandbox/policy/seccomp.x86_64.json";
const X86_64_POLICY: &str = include_str!("policy/seccomp.x86_64.json");

/// Errors from loading or compiling the policy. Applying it fails only with a bare
/// [`Errno`], because the child between `clone` and `execve` cannot carry more.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The running architecture has no policy (only x86_64 and aarch64 do).
    #[error("no seccomp policy for architecture {arch}")]
    UnsupportedArch { arch: &'static str },
    /// A policy file is not valid JSON or not a map of filters.
    #[error("seccomp policy {file} is not a JSON map of filters: {source}")]
    Json {
        file: &'static str,
        source: serde_json::Error,
    },
    /// The x86_64 overlay cannot be merged into the common policy.
    #[error("seccomp policy {file}: filter {filter:?} cannot be merged: {reason}")]
    Overlay {
        file: &'static str,
        filter: String,
        reason: &'static str,
    },
    /// seccompiler rejected the (merged) policy.
    #[error("seccomp policy does not compile for {arch:?}: {source}")]
    Compile {
        arch: TargetArch,
        source: seccompiler::Error,
    },
    /// A filter that `apply` installs is missing from the policy.
    #[error("seccomp policy for {arch:?} has no filter named {name:?}")]
    MissingFilter {
        arch: TargetArch,
        name: &'static str,
    },
    /// The policy holds a filter that `apply` would never install (a typo, most likely).
    #[error("seccomp policy for {arch:?} has a filter named {name:?} that is never installed")]
    UnknownFilter { arch: TargetArch, name: String },
}

/// The compiled policy for one architecture: both programs, ready to install.
///
/// Compile it once at start-up with [`SeccompPolicy::compile`]; each sandbox child calls
/// [`SeccompPolicy::apply`] on a shared reference.
pub struct SeccompPolicy {
    arch: TargetArch,
    main: Vec<libc::sock_filter>,
    enosys: Vec<libc::sock_filter>,
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
    /// Compiles the embedded policy for the architecture this binary runs on.
    pub fn compile() -> Result<Self, SeccompError> {
        let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|_| {
            SeccompError::UnsupportedArch {
                arch: std::env::consts::ARCH,
            }
        })?;
        Self::compile_for(arch)
    }

    /// Compiles the embedded policy for `arch` (x86_64 adds the overlay's legacy syscalls).
    pub fn compile_for(arch: TargetArch) -> Result<Self, SeccompError> {
        let text = policy_json(arch)?;
        let mut programs = seccompiler::compile_from_json(text.as_slice(), arch)
            .map_err(|source| SeccompError::Compile { arch, source })?;
        let mut take = |name: &'static str| {
            programs
                .remove(name)
                .map(|prog| prog.into_iter().map(to_libc).collect::<Vec<_>>())
                .ok_or(SeccompError::MissingFilter { arch, name })
        };
        let main = take(MAIN_FILTER)?;
        let enosys = take(ENOSYS_FILTER)?;
        if let Some(name) = programs.into_keys().next() {
            return Err(SeccompError::UnknownFilter { arch, name });
        }
        Ok(Self { arch, main, enosys })
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

    /// BPF instructions in both programs together (for the start-up log).
    pub fn instructions(&self) -> usize {
        self.main.len() + self.enosys.len()
    }
}

/// seccompiler's `sock_filter` mirrors the kernel's layout but is its own type.
fn to_libc(insn: seccompiler::sock_filter) -> libc::sock_filter {
    libc::sock_filter {
        code: insn.code,
        jt: insn.jt,
        jf: insn.jf,
        k: insn.k,
    }
}

/// The policy text seccompiler compiles for `arch`: the common file, plus on x86_64 the
/// overlay's rules appended to the same-named filters.
fn policy_json(arch: TargetArch) -> Result<Vec<u8>, SeccompError> {
    if arch != TargetArch::x86_64 {
        return Ok(COMMON_POLICY.as_bytes().to_vec());
    }
    let mut common = parse(COMMON_FILE, COMMON_POLICY)?;
    let overlay = parse(X86_64_FILE, X86_64_POLICY)?;
    merge(&mut common, overlay, X86_64_FILE)?;
    serde_json::to_vec(&common).map_err(|source| SeccompError::Json {
        file: X86_64_FILE,
        source,
    })
}

fn parse(file: &'static str, text: &str) -> Result<Map<String, Value>, SeccompError> {
    serde_json::from_str(text).map_err(|source| SeccompError::Json { file, source })
}

/// Appends each overlay filter's rules to the base filter of the same name. Rules only:
/// the actions must agree, so an overlay can never turn a deny into an allow.
fn merge(
    base: &mut Map<String, Value>,
    overlay: Map<String, Value>,
    file: &'static str,
) -> Result<(), SeccompError> {
    for (name, extra) in overlay {
        let fail = |reason| SeccompError::Overlay {
            file,
            filter: name.clone(),
            reason,
        };
        let target = base
            .get_mut(&name)
            .ok_or_else(|| fail("the common policy has no filter of that name"))?;
        for key in ["mismatch_action", "match_action"] {
            if target.get(key) != extra.get(key) {
                return Err(fail("its actions differ from the common policy's"));
            }
        }
        let rules = extra
            .get("filter")
            .and_then(Value::as_array)
            .ok_or_else(|| fail("it has no \"filter\" list"))?;
        target
            .get_mut("filter")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| fail("the common filter has no \"filter\" list"))?
            .extend(rules.iter().cloned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
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
    const ALLOW: u32 = 0x7fff_0000;
    const KILL_PROCESS: u32 = 0x8000_0000;

    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
    const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

    const ARCHES: [TargetArch; 2] = [TargetArch::x86_64, TargetArch::aarch64];

    fn audit_arch(arch: TargetArch) -> u32 {
        match arch {
            TargetArch::x86_64 => AUDIT_ARCH_X86_64,
            TargetArch::aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

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

    /// The syscall number seccompiler uses for `name` on `arch`, read back from a
    /// one-rule program (its fifth instruction compares the number).
    fn syscall_nr(arch: TargetArch, name: &str) -> Option<u32> {
        let json = format!(
            r#"{{"f": {{"mismatch_action": "allow", "match_action": {{"errno": 1}},
                 "filter": [{{"syscall": "{name}"}}]}}}}"#
        );
        let programs = seccompiler::compile_from_json(json.as_bytes(), arch).ok()?;
        Some(programs["f"][4].k)
    }

    /// What the kernel hands a filter.
    struct Call {
        arch: u32,
        nr: u32,
        args: [u64; 6],
    }

    fn call(arch: TargetArch, nr: u32, args: &[u64]) -> Call {
        let mut all = [0u64; 6];
        all[..args.len()].copy_from_slice(args);
        Call {
            arch: audit_arch(arch),
            nr,
            args: all,
        }
    }

    /// A classic-BPF interpreter for the instructions seccompiler emits.
    fn run(prog: &[libc::sock_filter], c: &Call) -> u32 {
        let load = |offset: u32| -> u32 {
            match offset {
                0 => c.nr,
                4 => c.arch,
                16..=63 => {
                    let arg = c.args[(offset as usize - 16) / 8];
                    if (offset - 16) % 8 == 4 {
                        (arg >> 32) as u32
                    } else {
                        arg as u32
                    }
                }
                _ => panic!("load from unexpected offset {offset}"),
            }
        };
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let insn = prog[pc];
            pc += 1;
            let jump = |taken: bool| usize::from(if taken { insn.jt } else { insn.jf });
            match insn.code {
                0x20 => acc = load(insn.k),        // ld [k]
                0x54 => acc &= insn.k,             // and #k
                0x05 => pc += insn.k as usize,     // ja k
                0x15 => pc += jump(acc == insn.k), // jeq #k
                0x25 => pc += jump(acc > insn.k),  // jgt #k
                0x35 => pc += jump(acc >= insn.k), // jge #k
                0x06 => return insn.k,             // ret #k
                other => panic!("unexpected BPF opcode {other:#x}"),
            }
        }
    }

    /// The kernel's verdict for a stack of filters given in installation order:
    /// newest first, replaced only by a strictly lower action (kernel/seccomp.c).
    fn verdict(policy: &SeccompPolicy, c: &Call) -> u32 {
        let action = |ret: u32| (ret & 0xffff_0000) as i32;
        let mut ret = ALLOW;
        for prog in [&policy.enosys, &policy.main] {
            let cur = run(prog, c);
            if action(cur) < action(ret) {
                ret = cur;
            }
        }
        ret
    }

    #[test]
    fn compiles_for_x86_64_and_aarch64() {
        for arch in ARCHES {
            let policy = SeccompPolicy::compile_for(arch).expect("policy compiles");
            assert_eq!(policy.arch(), arch);
            assert!(
                policy.main.len() < 4096 && !policy.enosys.is_empty(),
                "{policy:?}"
            );
        }
        let native = SeccompPolicy::compile().expect("compiles for this machine");
        assert_eq!(native.instructions(), {
            let p = SeccompPolicy::compile_for(native.arch()).expect("compiles");
            p.instructions()
        });
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
    // libc's ioctl request constants are c_ulong on glibc but c_int on musl: keep the casts.
    #[allow(clippy::unnecessary_cast)]
    fn compiled_programs_decide_as_designed() {
        for arch in ARCHES {
            let policy = SeccompPolicy::compile_for(arch).expect("compiles");
            let nr = |name: &str| syscall_nr(arch, name).expect(name);
            let at = |name: &str, args: &[u64]| verdict(&policy, &call(arch, nr(name), args));

            let mut allowed = names(&rules(COMMON_POLICY)[MAIN_FILTER]);
            if arch == TargetArch::x86_64 {
                allowed.extend(names(&rules(X86_64_POLICY)[MAIN_FILTER]));
            }
            let allowed_nrs: BTreeSet<u32> = allowed.iter().map(|n| nr(n)).collect();
            let conditional: BTreeSet<u32> = ONLY_CONDITIONAL.iter().map(|n| nr(n)).collect();
            let clone3 = nr("clone3");
            for number in 0..1024 {
                let got = verdict(&policy, &call(arch, number, &[]));
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
                    assert_eq!(verdict(&policy, &call(arch, number, &[])), want, "{name}");
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
            assert_eq!(verdict(&policy, &read), KILL_PROCESS);
        }
    }

    /// x32 calls share AUDIT_ARCH_X86_64 but carry bit 30 in the number: none matches.
    #[test]
    fn x32_numbers_match_nothing_on_x86_64() {
        let arch = TargetArch::x86_64;
        let policy = SeccompPolicy::compile_for(arch).expect("compiles");
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

    #[test]
    fn allowed_syscall_counts() {
        for arch in ARCHES {
            let mut allowed = names(&rules(COMMON_POLICY)[MAIN_FILTER]);
            if arch == TargetArch::x86_64 {
                allowed.extend(names(&rules(X86_64_POLICY)[MAIN_FILTER]));
            }
            let policy = SeccompPolicy::compile_for(arch).expect("compiles");
            println!("{arch:?}: {} syscalls allowed, {policy:?}", allowed.len());
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
