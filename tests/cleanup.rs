//! Cleanup on every path: normal exit, signal, set-up failure, 200 runs in a row, and
//! `hearth` itself SIGKILLed mid-run. Needs root.

// Integration tests are whole files of tests; the lint is for unit tests.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{cgroups_of, hearth_run_cmd, probe, skip_unless_root, wait_gone};

fn loop_devices_of(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/block") {
        for e in rd.flatten() {
            let bf = e.path().join("loop/backing_file");
            if let Ok(s) = std::fs::read_to_string(&bf) {
                if s.contains(&format!("/run-{pid}-")) {
                    out.push(s.trim().to_string());
                }
            }
        }
    }
    out
}

#[test]
fn two_hundred_runs_leave_nothing_behind() {
    if skip_unless_root() {
        return;
    }
    // HEARTH_TEST_RUNS lowers the count where each run is slow (the emulated v2 guest).
    let runs: usize = std::env::var("HEARTH_TEST_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut pids = Vec::new();
    for i in 0..runs {
        let child = hearth_run_cmd(&[], &["/bin/true"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        pids.push(child.id());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "run {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for pid in pids {
        assert!(cgroups_of(pid).is_empty(), "cgroup of run {pid} left");
        assert!(
            loop_devices_of(pid).is_empty(),
            "loop device of run {pid} left"
        );
        let img = std::fs::read_dir("/var/lib/hearth/scratch")
            .unwrap()
            .flatten()
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("run-{pid}-"))
            });
        assert!(!img, "scratch image of run {pid} left");
    }
}

#[test]
fn sigkill_of_hearth_mid_run_leaves_nothing_behind() {
    if skip_unless_root() {
        return;
    }
    let mut child = hearth_run_cmd(&[], &["/bin/sh", "-c", "echo ready; exec sleep 60"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    assert!(!cgroups_of(pid).is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    // The sandbox dies with its parent; the keeper removes the cgroup and volume.
    assert!(wait_gone(pid), "leftovers of the killed run {pid}");
    assert!(loop_devices_of(pid).is_empty());
    // The sleep (whose stdout we hold) is gone too: reading reaches end of file.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(rest, "");
}

#[test]
fn exit_status_and_signals_pass_through() {
    if skip_unless_root() {
        return;
    }
    assert_eq!(probe(&[], &["exit", "0"]).code, 0);
    assert_eq!(probe(&[], &["exit", "42"]).code, 42);
    assert_eq!(probe(&[], &["kill-self", "9"]).code, 137);
    assert_eq!(probe(&[], &["kill-self", "15"]).code, 143);
    let r = probe(&[], &["echo", "hello", "world"]);
    assert_eq!(r.stdout.trim(), "hello world");
}

#[test]
fn a_setup_failure_is_reported_and_cleaned_up() {
    if skip_unless_root() {
        return;
    }
    // A root directory with its mount points but no /var/task inside /var: refused
    // before anything is created.
    let dir = tempfile::tempdir().unwrap();
    for mp in ["proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(dir.path().join(mp)).unwrap();
    }
    let r: common::Run = std::process::Command::new(common::hearth_bin())
        .args(["run", "--rootfs"])
        .arg(dir.path())
        .args(["--", "/bin/true"])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("lacks the mount point /var/task"),
        "{r:?}"
    );
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    // A root with every mount point but no /bin/true: set-up succeeds, exec fails (127),
    // and the sandbox is removed.
    std::fs::create_dir_all(dir.path().join("var/task")).unwrap();
    let child = std::process::Command::new(common::hearth_bin())
        .args(["run", "--rootfs"])
        .arg(dir.path())
        .args(["--", "/bin/true"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(wait_gone(pid));
}
