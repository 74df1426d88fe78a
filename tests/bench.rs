//! `hearth bench` against a private daemon: `warm` with two keep-alive clients, a
//! `burst` of five and three `cold` spawns, on the static echo; then every mode with
//! `--standalone` (its own daemon and built-in echo; cold for each built-in runtime), with
//! `--chart` and `--compare`. Checks the `hearth-bench/1` JSON for structure and sanity
//! (counts add up, percentiles ordered, no errors, the cold-start phases add up to the
//! end-to-end time) — never for speed.
//!
//! Needs: root, `mkfs.ext4`; the echo is `$HEARTH_ECHO` (scripts/test.sh builds it
//! statically) or else the one cargo built; `python3` and `node` for their cold runs
//! (skipped, with a note, when missing).
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::daemon::Daemon;
use common::{hearth_bin, skip_unless_root};
use serde_json::Value;

/// CreateFunction of the echo bootstrap as `name` over the Unix socket.
fn deploy_echo(sock: &Path, name: &str) {
    use base64::Engine;
    let bin = std::env::var_os("HEARTH_ECHO")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_hearth-echo").into());
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        z.start_file(
            "bootstrap",
            zip::write::SimpleFileOptions::default().unix_permissions(0o755),
        )
        .unwrap();
        z.write_all(&std::fs::read(bin).expect("the echo bootstrap (build it first)"))
            .unwrap();
        z.finish().unwrap();
    }
    let body = serde_json::json!({
        "FunctionName": name,
        "Runtime": "provided.al2023",
        "Role": "arn:aws:iam::000000000000:role/x",
        "Handler": "bootstrap",
        "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(buf.into_inner())},
        "Timeout": 30,
    })
    .to_string();
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "POST /2015-03-31/functions HTTP/1.1\r\nHost: hearth\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 201 "), "{out}");
}

/// Runs `hearth bench ARGS --socket S --json F` and returns the JSON it wrote.
fn bench(d: &Daemon, args: &[&str]) -> Value {
    let json = d.dir.path().join(format!("{}.json", args[0]));
    let out = Command::new(hearth_bin())
        .arg("bench")
        .args(args)
        .arg("--socket")
        .arg(d.socket())
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hearth bench {args:?}: {:?}\n{stdout}\n{stderr}\n--- daemon log ---\n{}",
        out.status,
        d.log()
    );
    // The terminal table names the mode and has a header row.
    assert!(
        stdout.contains(&format!("hearth bench {}", args[0])) && stdout.contains("p50 ms"),
        "{stdout}"
    );
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

/// The checks every report passes: schema, counts, ordered percentiles, no errors.
fn check_report(v: &Value, mode: &str, runs: u64) {
    check_report_of(v, mode, runs, "echo");
}

fn check_report_of(v: &Value, mode: &str, runs: u64, function: &str) {
    assert_eq!(v["schema"], "hearth-bench/1", "{v:#}");
    assert_eq!(v["mode"], mode);
    assert_eq!(v["function"], function);
    for k in ["cpus", "model", "kernel", "mem_total_mb"] {
        assert!(!v["machine"][k].is_null(), "machine.{k}: {v:#}");
    }
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k}: {v:#}"));
    assert_eq!(n("runs"), runs, "{v:#}");
    assert_eq!(n("ok") + n("errors") + n("throttles"), n("runs"), "{v:#}");
    assert_eq!((n("errors"), n("throttles")), (0, 0), "{v:#}");
    let lat = &v["latency_ms"];
    assert_eq!(lat["n"].as_u64(), Some(n("ok")), "{v:#}");
    let f = |k: &str| {
        lat[k]
            .as_f64()
            .unwrap_or_else(|| panic!("latency_ms.{k}: {v:#}"))
    };
    assert!(f("min") > 0.0, "{v:#}");
    assert!(f("min") <= f("p50") && f("p50") <= f("p90") && f("p90") <= f("p99"));
    assert!(f("p99") <= f("p999") && f("p999") <= f("max") && f("mean") <= f("max"));
    assert!(f("stddev") >= 0.0);
    assert!(v["throughput_per_s"].as_f64().unwrap() > 0.0, "{v:#}");
    let kinds: u64 = v["start_kinds"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(kinds, runs, "every answer has a start kind: {v:#}");
    for k in v["start_kinds"].as_object().unwrap().keys() {
        assert!(
            ["warm", "blank", "spawn", "provisioned", "unknown"].contains(&k.as_str()),
            "{v:#}"
        );
    }
}

#[test]
fn warm_and_burst_write_sane_reports() {
    if skip_unless_root() {
        return;
    }
    let mut d = Daemon::start();
    deploy_echo(&d.socket(), "echo");

    let v = bench(
        &d,
        &[
            "warm",
            "--function",
            "echo",
            "--clients",
            "2",
            "--runs",
            "50",
            "--payload",
            r#"{"k": 1}"#,
        ],
    );
    check_report(&v, "warm", 50);
    assert_eq!(v["params"]["clients"], 2);
    assert!(v["params"]["duration_s"].is_null() && v["burst"].is_null());

    let v = bench(&d, &["burst", "--function", "echo", "--count", "5"]);
    check_report(&v, "burst", 5);
    let all = v["burst"]["all_answered_ms"].as_f64().unwrap();
    assert!(all >= v["latency_ms"]["max"].as_f64().unwrap(), "{v:#}");

    let v = bench(
        &d,
        &[
            "cold",
            "--function",
            "echo",
            "--start",
            "spawn",
            "--runs",
            "3",
            "--warmup",
            "0",
        ],
    );
    check_report(&v, "cold", 3);
    assert_eq!(v["params"]["start"], "spawn");
    check_phases(&v);

    // An unknown function: every invocation an error, counted, exit 1, no JSON lies.
    let out = Command::new(hearth_bin())
        .args([
            "bench",
            "warm",
            "--function",
            "nope",
            "--runs",
            "3",
            "--warmup",
            "0",
        ])
        .arg("--socket")
        .arg(d.socket())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ResourceNotFoundException"), "{stdout}");

    assert_eq!(d.stop(), Some(0), "{}", d.log());
}

/// `phases_ms` of a cold run: six phases in order, sane figures, and they add up to the
/// end-to-end time (the means within 5 %, every run within 5 %).
fn check_phases(v: &Value) {
    let p = &v["phases_ms"];
    let n = p["n"]
        .as_u64()
        .unwrap_or_else(|| panic!("phases_ms.n: {v:#}"));
    assert!(n >= 1, "{v:#}");
    assert_eq!(
        n + p["excluded"].as_u64().unwrap(),
        v["ok"].as_u64().unwrap(),
        "{v:#}"
    );
    let names: Vec<&str> = p["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "admission",
            "sandbox",
            "init",
            "handler",
            "delivery",
            "client"
        ],
        "{v:#}"
    );
    for ph in p["phases"].as_array().unwrap() {
        let f = |k: &str| ph[k].as_f64().unwrap_or_else(|| panic!("{k}: {ph}"));
        assert!(
            f("p50") >= 0.0 && f("p50") <= f("p90") && f("p90") <= f("p99"),
            "{ph}"
        );
        assert!((0.0..=1.0).contains(&f("share")), "{ph}");
    }
    // The steps inside `sandbox`: a spawn's or a blank's assignment, each with its runs.
    let steps = p["sandbox_steps"].as_array().unwrap();
    let step_names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for want in ["fork", "seccomp", "exec"] {
        assert!(step_names.contains(&want), "{want}: {v:#}");
    }
    assert!(
        step_names.contains(&"clone") || step_names.contains(&"assign"),
        "{v:#}"
    );
    for st in steps {
        assert!(st["n"].as_u64().unwrap() >= 1, "{st}");
        assert!(st["p50"].as_f64().unwrap() >= 0.0, "{st}");
    }
    let within = |a: f64, b: f64| (a - b).abs() <= 0.05 * b;
    let e2e = p["end_to_end_mean"].as_f64().unwrap();
    assert!(e2e > 0.0, "{v:#}");
    assert!(within(p["sum_of_means"].as_f64().unwrap(), e2e), "{v:#}");
    let runs = p["per_run"].as_array().unwrap();
    assert_eq!(runs.len() as u64, n);
    for r in runs {
        let sum: f64 = [
            "admission",
            "sandbox",
            "init",
            "handler",
            "delivery",
            "client",
        ]
        .iter()
        .map(|k| r[k].as_f64().unwrap())
        .sum();
        assert!(within(sum, r["end_to_end"].as_f64().unwrap()), "{r}");
        // A cold start has a sandbox and an init.
        assert!(
            r["sandbox"].as_f64().unwrap() > 0.0 && r["init"].as_f64().unwrap() > 0.0,
            "{r}"
        );
    }
}

/// `hearth bench ARGS --json F` (a private daemon: ARGS has `--standalone`, or no
/// workload option) with `TMPDIR` of its own (checked empty
/// afterwards: the private daemon's dirs are gone). Returns the JSON and stdout.
fn standalone(dir: &Path, tag: &str, args: &[&str]) -> (Value, String) {
    let tmp = dir.join(format!("tmp-{tag}"));
    std::fs::create_dir(&tmp).unwrap();
    let json = dir.join(format!("{tag}.json"));
    let out = Command::new(hearth_bin())
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(&json)
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hearth bench {args:?}: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        left.is_empty(),
        "the private daemon's dirs are left: {left:?}"
    );
    let v = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (v, stdout)
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn standalone_runs_of_every_mode() {
    if skip_unless_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // cold on the built-in provided echo (a copy of hearth), with a chart.
    let svg = d.join("cold.svg");
    let (v, stdout) = standalone(
        d,
        "cold",
        &[
            "cold",
            "--standalone",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--chart",
            svg.to_str().unwrap(),
            "--per-run",
        ],
    );
    check_report_of(&v, "cold", 3, "bench-echo-provided-al2023");
    check_phases(&v);
    // --per-run: after the table, a header and one line per timed run (1, 2, 3), each
    // with its start kind and seven figures of 3 decimals.
    let (_, per_run) = stdout
        .split_once("per run (ms")
        .unwrap_or_else(|| panic!("{stdout}"));
    let rows: Vec<Vec<&str>> = per_run
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    // A run whose answer had no phases (on a loaded host init can report the exec only
    // after the runtime answered; `phases_ms.excluded` counts them) says so instead.
    let without = rows.iter().filter(|r| r[1] == "(no").count() as u64;
    assert_eq!(
        without,
        v["phases_ms"]["excluded"].as_u64().unwrap(),
        "{stdout}"
    );
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], (i + 1).to_string(), "{stdout}");
        if r[1] == "(no" {
            continue;
        }
        assert!(["spawn", "blank"].contains(&r[1]), "{stdout}");
        assert_eq!(r.len(), 9, "{stdout}");
        assert!(r[2..]
            .iter()
            .all(|f| f.split_once('.').unwrap().1.len() == 3));
    }
    assert_eq!(v["workload"]["runtime"], "provided.al2023", "{v:#}");
    assert_eq!(v["workload"]["standalone"], true);
    assert!(v["warnings"].is_array());
    assert!(stdout.contains("client (transport)"), "{stdout}");
    let text = std::fs::read_to_string(&svg).unwrap();
    let t = text.trim();
    assert!(
        t.starts_with("<svg") && t.ends_with("</svg>") && t.len() > 1000,
        "{t}"
    );

    // The managed runtimes' echoes, compared with the provided run.
    for (runtime, tool) in [("python3.11", "python3"), ("nodejs20.x", "node")] {
        if !have(tool) {
            eprintln!("skipped: cold --runtime {runtime} ({tool} is not installed)");
            continue;
        }
        let old = d.join("cold.json");
        let (v, stdout) = standalone(
            d,
            runtime,
            &[
                "cold",
                "--standalone",
                "--runtime",
                runtime,
                "--runs",
                "2",
                "--warmup",
                "0",
                "--compare",
                old.to_str().unwrap(),
            ],
        );
        check_report_of(
            &v,
            "cold",
            2,
            &format!("bench-echo-{}", runtime.replace('.', "-")),
        );
        check_phases(&v);
        assert!(v["compared_with"]["p50"].as_f64().unwrap() > 0.0, "{v:#}");
        assert!(stdout.contains("(new/old)"), "{stdout}");
    }

    let (v, _) = standalone(
        d,
        "warm",
        &[
            "warm",
            "--standalone",
            "--runs",
            "20",
            "--clients",
            "2",
            "--warmup",
            "1",
        ],
    );
    check_report_of(&v, "warm", 20, "bench-echo-provided-al2023");
    // No workload option at all: the built-in echo on a private daemon, as --standalone.
    let (v, _) = standalone(d, "burst", &["burst", "--count", "3"]);
    check_report_of(&v, "burst", 3, "bench-echo-provided-al2023");
    let (v, _) = standalone(
        d,
        "density",
        &[
            "density",
            "--standalone",
            "--count",
            "2",
            "--hold-ms",
            "1500",
            "--other-runs",
            "3",
        ],
    );
    check_report_of(&v, "density", 2, "bench-echo-provided-al2023");
    let dens = &v["density"];
    assert_eq!(dens["requested"], 2, "{v:#}");
    // No --other on a private daemon: a second built-in echo, measured cold and warm.
    assert_eq!(
        dens["other_function"], "bench-other-provided-al2023",
        "{v:#}"
    );
    assert_eq!(dens["other_errors"], 0, "{v:#}");
    for k in ["other_cold_ms", "other_warm_ms"] {
        assert_eq!(dens[k]["n"], 3, "{k}: {v:#}");
        assert!(dens[k]["p50"].as_f64().unwrap() > 0.0, "{k}: {v:#}");
    }
    // Nothing of the private daemon is left running: neither it nor its sandboxes.
    let pid = dens["daemon_pid"].as_u64().unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the private daemon {pid} still runs"
    );
    assert!(
        common::wait_gone(pid as u32),
        "sandboxes of {pid} are left: {:?}",
        common::cgroups_of(pid as u32)
    );

    // A baseline of another mode is refused before anything starts.
    let out = Command::new(hearth_bin())
        .args(["bench", "warm", "--standalone", "--runs", "1", "--compare"])
        .arg(d.join("cold.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"cold\" run") && err.contains("same mode"),
        "{err}"
    );
}

#[test]
fn density_other_on_a_private_daemon_is_a_usage_error() {
    // Explicit --standalone, and the implied one (no --function, no --code): refused with
    // exit 2 before any daemon is started.
    for args in [&["--standalone", "--other", "f"][..], &["--other", "f"][..]] {
        let out = Command::new(hearth_bin())
            .args(["bench", "density", "--count", "1"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--other f") && err.contains("private daemon"),
            "{err}"
        );
    }
}

#[test]
fn an_absent_daemon_is_a_clear_failure() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(hearth_bin())
        .args([
            "bench",
            "burst",
            "--function",
            "f",
            "--count",
            "2",
            "--socket",
        ])
        .arg(dir.path().join("none.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the daemon"), "{err}");
}

/// Every cgroup directory named `hearth-bench-peers-*` at the top of a hierarchy.
fn peers_cgroups() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for r in roots {
        if let Ok(rd) = std::fs::read_dir(&r) {
            out.extend(
                rd.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with("hearth-bench-peers-")
                    })
                    .map(|e| e.path()),
            );
        }
    }
    out.sort();
    out
}

/// Whether `hearth bench peers` would find `cmd`: on `$PATH` or in the sbin dirs (runc
/// lives in /usr/sbin).
fn peer_installed(cmd: &str) -> bool {
    have(cmd)
        || ["/usr/local/sbin", "/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(cmd).is_file())
}

/// `hearth bench peers`: Hearth's two rows and every installed peer measured on the same
/// echo (each peer's running echo checked: uid, no_new_privs, seccomp, capabilities,
/// namespaces, memory limit), the ratios to `hearth spawn`, the chart, and nothing left
/// behind (private daemon dirs, containers' and bwrap's cgroups). Needs root and, for the
/// peers' rows, `crun`, `runc` and `bwrap` (scripts/test.sh installs them; a missing one
/// must be reported as missing, which is checked instead).
#[test]
fn peers_measures_hearth_and_each_installed_peer() {
    if skip_unless_root() {
        return;
    }
    let before = peers_cgroups();
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("peers.svg");
    let (v, stdout) = standalone(
        dir.path(),
        "peers",
        &[
            "peers",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--no-install",
            "--chart",
            svg.to_str().unwrap(),
        ],
    );
    assert_eq!(v["schema"], "hearth-bench/1", "{v:#}");
    assert_eq!(v["mode"], "peers", "{v:#}");
    assert_eq!(v["params"]["runs"], 3, "{v:#}");
    let rows = v["contenders"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["hearth spawn", "hearth blank", "crun", "runc", "bwrap"],
        "{v:#}"
    );
    for r in rows {
        let name = r["name"].as_str().unwrap();
        let peer = matches!(name, "crun" | "runc" | "bwrap");
        if peer && !peer_installed(name) {
            eprintln!("note: {name} is not installed; checking that it is reported so");
            let error = r["error"].as_str().unwrap_or_default();
            assert!(error.contains("not found"), "{r:#}");
            continue;
        }
        assert!(r["error"].is_null(), "{name} was not measured: {r:#}");
        assert_eq!(r["ok"], 3, "{r:#}");
        assert_eq!(r["errors"], 0, "{r:#}");
        let l = &r["latency_ms"];
        assert_eq!(l["n"], 3, "{r:#}");
        let p = |k: &str| l[k].as_f64().unwrap();
        assert!(
            p("min") > 0.0 && p("min") <= p("p50") && p("p50") <= p("max"),
            "{r:#}"
        );
        let ratio = r["ratio_p50"].as_f64().unwrap();
        assert!(
            (ratio - p("p50") / rows[0]["latency_ms"]["p50"].as_f64().unwrap()).abs() < 1e-9,
            "{r:#}"
        );
        assert!(stdout.contains(name), "{stdout}");
        if peer {
            let checked = r["checked"].as_str().unwrap_or_default();
            let uid = if name == "bwrap" { "uid 0" } else { "uid 993" };
            for want in [
                uid,
                "no_new_privs",
                "seccomp",
                "6 new namespaces",
                "memory limit 1769 MB",
            ] {
                assert!(
                    checked.contains(want),
                    "{name}: {want:?} not in {checked:?}"
                );
            }
        }
    }
    // Hearth's rows really were the starts they name (the daemon is quiet, its blank pool
    // full, before every run).
    assert_eq!(rows[0]["start_kinds"]["spawn"], 3, "{v:#}");
    assert_eq!(rows[1]["start_kinds"]["blank"], 3, "{v:#}");
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("hearth spawn"),
        "{chart}"
    );
    assert_eq!(peers_cgroups(), before, "cgroups of the run left behind");
}
