//! Limits: memory (OOM reported as such), /tmp size separate from memory, pids, CPU quota,
//! timeouts. Needs root; runs on the host's cgroup mode (v1/hybrid here; the v2 leg runs
//! in a pure-v2 guest, issue 7).

// Integration tests are whole files of tests; the lint is for unit tests.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{cgroups_of, delegated_base, hearth_run_cmd, probe, skip_unless_root, wait_gone};

const MIB: u64 = 1024 * 1024;

#[test]
fn tmp_takes_its_full_size_then_enospc_even_under_128_mb() {
    if skip_unless_root() {
        return;
    }
    let r = probe(&["--memory", "128", "--tmp-size", "512"], &["fill", "/tmp"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.get("errno"), "ENOSPC", "{r:?}");
    let bytes: u64 = r.get("bytes").parse().unwrap();
    assert!(
        bytes >= 512 * MIB - 64 * 1024,
        "only {bytes} bytes fit: {r:?}"
    );
    assert!(
        bytes <= 514 * MIB,
        "{bytes} bytes fit, more than the size: {r:?}"
    );
}

#[test]
fn a_larger_tmp_size_is_honoured() {
    if skip_unless_root() {
        return;
    }
    let r = probe(&["--tmp-size", "1024"], &["fill", "/tmp", "4096"]);
    let bytes: u64 = r.get("bytes").parse().unwrap();
    assert!(
        (1024 * MIB - 64 * 1024..=1026 * MIB).contains(&bytes),
        "{r:?}"
    );
}

/// The memory and CPU limits of a sandbox started from a blank are written when it is
/// assigned (the blank has a 128 MB placeholder): the same checks run on both paths.
mod blank_path {
    #[test]
    fn touching_300_mb_under_128_is_oom_killed_and_reported() {
        super::touching_300_mb_under_128_is_oom_killed_and_reported_in(&["--blank"]);
    }

    #[test]
    fn cgroup_limits_are_written_as_asked() {
        super::cgroup_limits_are_written_as_asked_in(&["--blank"]);
    }
}

#[test]
fn touching_300_mb_under_128_is_oom_killed_and_reported() {
    touching_300_mb_under_128_is_oom_killed_and_reported_in(&[]);
}

fn touching_300_mb_under_128_is_oom_killed_and_reported_in(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let r = probe(&[mode, &["--memory", "128"]].concat(), &["memhog", "300"]);
    assert_eq!(r.code, 123, "{r:?}");
    assert!(r.stderr.contains("out of memory"), "{r:?}");
    assert!(!r.stdout.contains("touched_mb=300"), "{r:?}");
    // Below the limit it is fine, and the peak is reported.
    let r = probe(
        &[mode, &["--memory", "256", "--report"]].concat(),
        &["memhog", "200"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    // More than the blank's 128 MB placeholder: the assigned limit is in force.
    assert_eq!(r.get("touched_mb"), "200");
    let report = r.stderr.lines().find(|l| l.starts_with("REPORT ")).unwrap();
    assert!(report.contains("Memory Size: 256 MB"), "{report}");
    assert!(report.contains("OOM Kills: 0"), "{report}");
    let used: u64 = report
        .split("Max Memory Used: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((200..=256).contains(&used), "{report}");
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    if skip_unless_root() {
        return;
    }
    let r = probe(&["--pids", "32"], &["forkbomb"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.get("errno"), "EAGAIN", "{r:?}");
    let forked: u64 = r.get("forked").parse().unwrap();
    assert!(forked < 32, "{r:?}");
}

#[test]
fn cgroup_limits_are_written_as_asked() {
    cgroup_limits_are_written_as_asked_in(&[]);
}

fn cgroup_limits_are_written_as_asked_in(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let mut child = hearth_run_cmd(
        &[mode, &["--memory", "1769", "--pids", "77"]].concat(),
        &["/bin/sh", "-c", "echo ready; exec sleep 30"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let cgs = cgroups_of(child.id());
    let read = |file: &str| -> Option<String> {
        cgs.iter()
            .find_map(|d| std::fs::read_to_string(d.join(file)).ok())
            .map(|s| s.trim().to_string())
    };
    let unified = read("memory.max").is_some();
    if unified {
        assert_eq!(read("memory.max").unwrap(), (1769 * MIB).to_string());
        assert_eq!(read("pids.max").unwrap(), "77");
        assert_eq!(read("cpu.max").unwrap(), "100000 100000");
        if let Some(swap) = read("memory.swap.max") {
            assert_eq!(swap, "0");
        }
    } else {
        assert_eq!(
            read("memory.limit_in_bytes").unwrap(),
            (1769 * MIB).to_string()
        );
        if let Some(memsw) = read("memory.memsw.limit_in_bytes") {
            assert_eq!(memsw, (1769 * MIB).to_string(), "swap must be off");
        }
        assert_eq!(read("pids.max").unwrap(), "77");
        assert_eq!(read("cpu.cfs_quota_us").unwrap(), "100000");
        assert_eq!(read("cpu.cfs_period_us").unwrap(), "100000");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    // SIGTERM forwarded to sleep: 128 + 15.
    assert_eq!(status.code(), Some(143));
    assert!(wait_gone(child.id()));
}

#[test]
fn a_child_ignoring_sigterm_that_double_forks_is_killed_at_the_timeout() {
    if skip_unless_root() {
        return;
    }
    let started = std::time::Instant::now();
    let child = hearth_run_cmd(
        &["--timeout", "1.5"],
        &["/var/task/hearth-probe", "ignore-term-double-fork"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    // Nothing survives: the cgroup (which would hold the grandchild) is gone.
    assert!(wait_gone(pid));
}

#[test]
fn cgroup_driver_is_the_expected_one() {
    if skip_unless_root() {
        return;
    }
    let driver =
        hearth::sandbox::cgroup::open_driver(std::path::Path::new("/sys/fs/cgroup"), None).unwrap();
    println!("cgroup driver: {}", driver.mode_name());
    if let Ok(want) = std::env::var("HEARTH_EXPECT_CGROUP_DRIVER") {
        assert_eq!(driver.mode_name(), want);
    }
}

/// Needs: root, and a pure cgroup v2 host where this test runs in a delegated cgroup (the
/// v2 leg's guest runs it in a `Delegate=yes`-style service cgroup). Hearth must then keep
/// its sandboxes inside that cgroup, having moved the cgroup's processes (this test's
/// included) into the `supervisor` leaf so that controllers can be enabled.
#[test]
fn sandboxes_stay_inside_a_delegated_cgroup() {
    if skip_unless_root() {
        return;
    }
    let Some(base) = delegated_base() else {
        println!("skipped: not a cgroup v2 host, or this test's cgroup is not delegated");
        return;
    };
    let child = hearth_run_cmd(&[], &["/bin/sleep", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = cgroups_of(pid);
        if !seen.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let sandboxes = std::path::Path::new("/sys/fs/cgroup")
        .join(&base)
        .join("sandboxes");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with(&sandboxes),
        "{seen:?} not under {sandboxes:?}"
    );
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert!(
        own.trim_end().ends_with(&format!("{base}/supervisor")),
        "this test was not moved into the supervisor leaf: {own}"
    );
    let procs = std::fs::read_to_string(
        std::path::Path::new("/sys/fs/cgroup")
            .join(&base)
            .join("cgroup.procs"),
    )
    .unwrap();
    assert!(procs.trim().is_empty(), "processes left in {base}: {procs}");
    println!("sandbox cgroup {:?} inside delegated {base}", seen[0]);
    assert!(wait_gone(pid));
}
