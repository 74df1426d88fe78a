//! Bad input to `hearth run`: one clear line on stderr, the documented exit code, nothing
//! created. The root-only cases skip without root; the usage ones need nothing.

// Integration tests are whole files of tests; the lint is for unit tests.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::os::unix::process::CommandExt;

use common::{hearth, probe, skip_unless_root};

fn assert_usage(args: &[&str], needle: &str) {
    let r = hearth(args);
    assert_eq!(r.code, 2, "{args:?}: {r:?}");
    assert_eq!(
        r.stderr.lines().count(),
        1,
        "{args:?}: one line wanted: {r:?}"
    );
    assert!(r.stderr.starts_with("hearth: "), "{r:?}");
    assert!(
        r.stderr.contains(needle),
        "{args:?}: {needle:?} not in {r:?}"
    );
    assert_eq!(r.stdout, "");
}

#[test]
fn bad_numbers_are_refused_with_one_line() {
    assert_usage(
        &["run", "--memory", "64", "--", "true"],
        "memory must be between 128 and 10240 MB, got 64",
    );
    assert_usage(
        &["run", "--memory", "20000", "--", "true"],
        "between 128 and 10240",
    );
    assert_usage(&["run", "--memory", "lots", "--", "true"], "whole number");
    assert_usage(
        &["run", "--tmp-size", "100", "--", "true"],
        "tmp size must be between 512 and 10240 MB",
    );
    assert_usage(&["run", "--timeout", "-1", "--", "true"], "timeout must be");
    assert_usage(
        &["run", "--timeout", "soon", "--", "true"],
        "timeout must be a number",
    );
    assert_usage(
        &["run", "--pids", "0", "--", "true"],
        "pids must be between",
    );
    assert_usage(&["run", "--env", "NOEQUALS", "--", "true"], "K=V");
}

#[test]
fn missing_command_and_directories_are_refused() {
    assert_usage(&["run"], "no command given");
    assert_usage(&["run", "--"], "no command given");
    assert_usage(
        &["run", "--code", "/nonexistent/code", "--", "true"],
        "--code /nonexistent/code: no such directory",
    );
    assert_usage(
        &["run", "--rootfs", "/nonexistent/root", "--", "true"],
        "--rootfs /nonexistent/root: no such directory",
    );
    assert_usage(&["frobnicate"], "frobnicate");
}

#[test]
fn not_root_is_refused_clearly() {
    if skip_unless_root() {
        return;
    }
    // A copy of the binary the unprivileged user can reach.
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("hearth");
    std::fs::copy(common::hearth_bin(), &bin).unwrap();
    // Another test thread forking while the copy was open for writing holds the file busy
    // until its child execs (ETXTBSY): retry briefly.
    let mut attempts = 0;
    let out = loop {
        match std::process::Command::new(&bin)
            .args(["run", "--", "/bin/true"])
            .uid(65534)
            .gid(65534)
            .output()
        {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other.unwrap(),
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("must run as root"), "{stderr}");
}

#[test]
fn unknown_and_non_executable_commands() {
    if skip_unless_root() {
        return;
    }
    let r = probe(&[], &[]);
    assert_eq!(r.code, 2, "probe without arguments is a usage error: {r:?}");
    let r: common::Run = common::hearth_run_cmd(&[], &["no-such-command-xyz"])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 127, "{r:?}");
    assert_eq!(
        r.stderr.trim(),
        "hearth: command not found: no-such-command-xyz: No such file or directory"
    );
    let r: common::Run = common::hearth_run_cmd(&[], &["/var/task/not-executable"])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 126, "{r:?}");
    assert!(
        r.stderr
            .contains("command not executable: /var/task/not-executable"),
        "{r:?}"
    );
}
