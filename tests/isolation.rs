//! Isolation, checked from inside the sandbox by `hearth-probe`: namespaces, read-only
//! root, capabilities, seccomp, masked /proc, file descriptors, init unreachable.
//!
//! Needs root. Runs against the host-binds root, or against `$HEARTH_TEST_ROOTFS`; each
//! check on both ways a sandbox starts (see `both_paths!`).

// Integration tests are whole files of tests; the lint is for unit tests.
#![allow(clippy::tests_outside_test_module)]

mod common;

use common::{probe, skip_unless_root};

/// Every check runs twice: in a sandbox built for the command (`spawn_path::…`) and in one
/// started from a blank sandbox (`blank_path::…`, `hearth run --blank`: built without the
/// command, then assigned it) — the isolation contract holds for both.
macro_rules! both_paths {
    ($($name:ident),* $(,)?) => {
        mod spawn_path {
            $(
                #[test]
                fn $name() {
                    super::$name(&[])
                }
            )*
        }
        mod blank_path {
            $(
                #[test]
                fn $name() {
                    super::$name(&["--blank"])
                }
            )*
        }
    };
}

both_paths!(
    pid1_is_hearth_init_and_no_host_process_is_visible,
    hostname_is_the_sandbox_own,
    only_loopback_is_present_and_up,
    a_host_loopback_listener_is_unreachable,
    root_usr_etc_and_var_task_are_read_only,
    capabilities_are_gone_and_filters_are_on,
    dangerous_syscalls_fail_with_eperm,
    masked_paths_are_unreadable,
    dev_holds_only_the_five_devices,
    only_stdio_is_inherited,
    init_is_out_of_reach,
    rlimits_match_lambda,
    cwd_env_and_output_streams,
);

fn pid1_is_hearth_init_and_no_host_process_is_visible(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let r = probe(mode, &["pids"]);
    assert_eq!(r.code, 0, "{r:?}");
    // Only init (1) and the probe itself.
    assert_eq!(r.get("pids"), "1,2", "{r:?}");
    let r = probe(mode, &["pid1"]);
    assert_eq!(r.get("pid1_comm"), "hearth", "{r:?}");
    assert_eq!(r.get("pid1_uid"), "0", "{r:?}");
    let r = probe(mode, &["whoami"]);
    assert_eq!(r.get("pid"), "2", "{r:?}");
    assert_eq!(r.get("ppid"), "1", "{r:?}");
}

fn hostname_is_the_sandbox_own(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let r = probe(mode, &["hostname"]);
    assert_eq!(r.get("hostname"), "hearth", "{r:?}");
    assert_ne!(nix::unistd::gethostname().unwrap(), "hearth");
}

fn only_loopback_is_present_and_up(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let r = probe(mode, &["net"]);
    assert_eq!(r.get("ifaces"), "lo", "{r:?}");
    assert_eq!(r.get("iface_lo"), "up", "{r:?}");
}

fn a_host_loopback_listener_is_unreachable(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = format!("127.0.0.1:{port}");
    let r = probe(mode, &["connect", &target]);
    assert_eq!(r.get("connect"), "ECONNREFUSED", "{r:?}");
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "nothing may have reached the host"
    );
}

fn root_usr_etc_and_var_task_are_read_only(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    for path in ["/x", "/usr/x", "/etc/x", "/var/task/x", "/dev/x"] {
        let r = probe(mode, &["write", path]);
        assert_eq!(r.get("write"), "EROFS", "{path}: {r:?}");
    }
    // An existing file the user may not write: the permission check comes first.
    let r = probe(mode, &["write", "/etc/passwd"]);
    assert_ne!(r.get("write"), "OK", "{r:?}");
    // Every mount but /tmp and /proc's writable parts is read-only.
    let r = probe(mode, &["mounts"]);
    for line in r.stdout.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (target, fstype, opts) = (f[1], f[2], f[3]);
        let ro = opts.split(',').any(|o| o == "ro");
        let writable_ok = target == "/tmp" || fstype == "proc" || target.starts_with("/dev/");
        assert!(ro || writable_ok, "{line}");
    }
    let r = probe(mode, &["write", "/tmp/x"]);
    assert_eq!(r.get("write"), "OK", "{r:?}");
}

fn capabilities_are_gone_and_filters_are_on(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let r = probe(mode, &["status"]);
    for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(r.get(key), "0000000000000000", "{key}: {r:?}");
    }
    assert_eq!(r.get("NoNewPrivs"), "1", "{r:?}");
    assert_eq!(r.get("Seccomp"), "2", "{r:?}");
    let r = probe(mode, &["whoami"]);
    assert_eq!(r.get("uid"), "993", "{r:?}");
    assert_eq!(r.get("euid"), "993", "{r:?}");
    assert_eq!(r.get("gid"), "990", "{r:?}");
    assert_eq!(r.get("groups"), "", "{r:?}");
}

fn dangerous_syscalls_fail_with_eperm(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let calls = common::DANGEROUS_SYSCALLS;
    let mut args = vec!["try-syscall"];
    args.extend_from_slice(calls);
    let r = probe(mode, &args);
    assert_eq!(r.code, 0, "{r:?}");
    for c in calls {
        assert_eq!(r.get(c), "EPERM", "{c}: {r:?}");
    }
    let r = probe(
        mode,
        &[
            "try-syscall",
            "clone3",
            "fork",
            "socket_inet",
            "socket_unix",
        ],
    );
    assert_eq!(r.get("clone3"), "ENOSYS", "{r:?}");
    for ok in ["fork", "socket_inet", "socket_unix"] {
        assert_eq!(r.get(ok), "OK", "{ok}: {r:?}");
    }
}

fn masked_paths_are_unreadable(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    for path in [
        "/proc/kcore",
        "/proc/keys",
        "/sys/firmware",
        "/proc/timer_list",
    ] {
        let r = probe(mode, &["read", path]);
        let v = r.get("read");
        assert!(v == "EACCES" || v == "ENOENT", "{path}: {r:?}");
    }
    let r = probe(mode, &["write", "/proc/sys/kernel/hostname"]);
    assert_ne!(r.get("write"), "OK", "{r:?}");
    // Ordinary /proc files still work.
    let r = probe(mode, &["read", "/proc/self/status"]);
    assert_eq!(r.get("read"), "OK", "{r:?}");
}

fn dev_holds_only_the_five_devices(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    for dev in ["null", "zero", "full", "random", "urandom"] {
        let r = probe(mode, &["read", &format!("/dev/{dev}")]);
        assert_eq!(r.get("read"), "OK", "{dev}: {r:?}");
    }
    for absent in [
        "/dev/sda",
        "/dev/vda",
        "/dev/mem",
        "/dev/kmsg",
        "/dev/loop0",
        "/dev/tty",
    ] {
        let r = probe(mode, &["read", absent]);
        assert_eq!(r.get("read"), "ENOENT", "{absent}: {r:?}");
    }
}

fn only_stdio_is_inherited(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let r = probe(mode, &["fds"]);
    assert_eq!(r.get("fds"), "0,1,2", "{r:?}");
}

fn init_is_out_of_reach(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let r = probe(mode, &["ptrace-init"]);
    assert_eq!(r.get("ptrace_attach_1"), "EPERM", "{r:?}");
    assert_eq!(r.get("proc1_mem"), "EACCES", "{r:?}");
    assert_eq!(r.get("proc1_environ"), "EACCES", "{r:?}");
}

fn rlimits_match_lambda(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let r = probe(mode, &["rlimits"]);
    assert_eq!(r.get("nofile"), "1024:1024", "{r:?}");
    assert_eq!(r.get("core"), "0:0", "{r:?}");
}

fn cwd_env_and_output_streams(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let r = probe(&[mode, &["--env", "GREETING=hi there"]].concat(), &["env"]);
    let kv = r.kv();
    assert_eq!(kv.get("GREETING").map(String::as_str), Some("hi there"));
    assert!(kv.get("PATH").is_some_and(|p| p.contains("/usr/bin")));
    let r = probe(mode, &["cwd"]);
    assert_eq!(r.get("cwd"), "/var/task");
    let r = probe(mode, &["stderr", "to-stderr"]);
    assert!(r.stderr.contains("to-stderr"), "{r:?}");
}
