//! `hearth bench` against a private daemon: `warm` with two keep-alive clients, a
//! `burst` of five and three `cold` spawns, on the static echo; checks the `hearth-bench/1` JSON for structure and
//! sanity (counts add up, percentiles ordered, no errors) — never for speed.
//!
//! Needs: root, `mkfs.ext4`; the echo is `$HEARTH_ECHO` (scripts/test.sh builds it
//! statically) or else the one cargo built.
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
    assert_eq!(v["schema"], "hearth-bench/1", "{v:#}");
    assert_eq!(v["mode"], mode);
    assert_eq!(v["function"], "echo");
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
