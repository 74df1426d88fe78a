//! The warm pool through a real `hearth serve` (issue 5, "Tests"): warm reuse, a frozen
//! idle instance using no CPU, idle expiry with SIGTERM, LRU eviction under a small memory
//! budget and the throttle behind it, reserved and account throttles seen by boto3,
//! provisioned concurrency, 200 concurrent invocations, an update while invocations run,
//! an instance SIGKILLed mid-invocation, and the isolation probe inside an instance
//! started from a blank sandbox.
//!
//! Each test starts its own daemon (temporary dirs, its own configuration file) through
//! the `common::daemon` guard, talks to it with raw HTTP/1.1 on its Unix socket (boto3
//! over the SigV4 TCP listener where a test says so), and ends by stopping it and checking
//! that nothing it made is left: the guard's leak check is scoped to this daemon, since
//! other tests and other users of the host may run sandboxes at the same time (which
//! `scripts/check-leaks.sh` would report).
//!
//! Behaviour only, never speed: every wait is a poll with a generous bound (CI also runs
//! under emulation).
//!
//! Needs: root, `mkfs.ext4`, `/usr/bin/python3` (the handlers run on the host's Python),
//! the static probe (`$HEARTH_PROBE`, or the one cargo built) for the blank-sandbox test,
//! and a Python with boto3 in `$HEARTH_BOTO3_PYTHON` for the throttle test (it prints
//! why and skips without).
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::daemon::{instances, live_instances, wait_for, Daemon, HttpResponse, KEY_ID, SECRET};
use common::skip_unless_root;
use serde_json::{json, Value};

/// The bound of every poll.
const WAIT: Duration = Duration::from_secs(30);

/// The handlers of most functions (`lambda_function.<name>`). `INSTANCE` tells
/// instances apart: it is drawn once per process, at import.
const HANDLERS: &str = r#"
import json, os, subprocess, sys, threading, time, uuid

INSTANCE = uuid.uuid4().hex

def ident(event, context):
    return {"instance": INSTANCE,
            "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}

def sleep_echo(event, context):
    print("sleeping", event.get("sleep", 0), flush=True)
    time.sleep(event.get("sleep", 0))
    return {"instance": INSTANCE, "event": event}

_spinner = []

def spin(event, context):
    # A thread that never stops burning CPU: only the freezer can stop it.
    if not _spinner:
        def burn():
            while True:
                pass
        t = threading.Thread(target=burn, daemon=True)
        t.start()
        _spinner.append(t)
    return {"instance": INSTANCE}

def probe(event, context):
    out = {}
    for label, args in event["runs"].items():
        p = subprocess.run(["/var/task/hearth-probe"] + args, capture_output=True,
                           stdin=subprocess.DEVNULL)
        out[label] = {"code": p.returncode, "stdout": p.stdout.decode(),
                      "stderr": p.stderr.decode()}
    return out
"#;

/// A handler module that says so on SIGTERM and exits (installed at import, on the main
/// thread, as Python requires).
const TERM_HANDLER: &str = r#"
import os, signal

def _on_term(signum, frame):
    print("got SIGTERM", flush=True)
    os._exit(0)

signal.signal(signal.SIGTERM, _on_term)

def handler(event, context):
    return "ready"
"#;

/// `v1` after 2 s, and the new code without the sleep.
const V1: &str = r#"
import time
def handler(event, context):
    time.sleep(2)
    return "v1"
"#;
const V2: &str = r#"
def handler(event, context):
    return "v2"
"#;

/// A zip of `(name, mode, bytes)` entries, base64 for `Code.ZipFile`.
fn zip_b64(entries: &[(&str, u32, &[u8])]) -> String {
    use base64::Engine;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        for (name, mode, bytes) in entries {
            let opts = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
            z.start_file(*name, opts).unwrap();
            z.write_all(bytes).unwrap();
        }
        z.finish().unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
}

/// A zip holding one Python module `lambda_function.py`.
fn py_zip(source: &str) -> String {
    zip_b64(&[("lambda_function.py", 0o644, source.as_bytes())])
}

/// Creates a python3.11 function of `zip` with `handler` and `memory_mb`.
fn create(d: &Daemon, name: &str, zip: &str, handler: &str, memory_mb: u32) {
    d.call(
        "POST",
        "/2015-03-31/functions",
        Some(json!({
            "FunctionName": name,
            "Runtime": "python3.11",
            "Role": "arn:aws:iam::000000000000:role/x",
            "Handler": handler,
            "Code": {"ZipFile": zip},
            "MemorySize": memory_mb,
            "Timeout": 120,
        })),
        201,
    );
}

/// Asserts a plain 200 answer (no function error) and returns its body as JSON.
fn ok_json(d: &Daemon, r: &HttpResponse, what: &str) -> Value {
    assert!(
        r.status == 200 && r.header("X-Amz-Function-Error").is_none(),
        "{what}: {r:?} {}\n--- daemon log ---\n{}",
        r.text(),
        d.log()
    );
    r.json()
}

/// The `X-Hearth-Start` of an answer.
fn start_kind(r: &HttpResponse) -> &str {
    r.header("X-Hearth-Start")
        .unwrap_or_else(|| panic!("no X-Hearth-Start: {r:?}"))
}

/// Everything in a function's log group (every stream file, any depth).
fn function_logs(d: &Daemon, function: &str) -> String {
    fn walk(dir: &Path, out: &mut String) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if let Ok(text) = std::fs::read_to_string(&p) {
                out.push_str(&text);
            }
        }
    }
    let mut out = String::new();
    walk(&d.state().join("logs/aws/lambda").join(function), &mut out);
    out
}

/// The names of this daemon's sandboxes, once each (with `blank_pool_size = 0`, its
/// function instances: blank sandboxes are named apart and keep their name when claimed).
fn instance_names(d: &Daemon) -> Vec<String> {
    let mut names: Vec<String> = d
        .cgroups()
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every hierarchy's directory of the sandbox cgroup `name` (one on v2).
fn cgroup_dirs(d: &Daemon, name: &str) -> Vec<PathBuf> {
    d.cgroups()
        .into_iter()
        .filter(|p| p.file_name().and_then(|n| n.to_str()) == Some(name))
        .collect()
}

/// Whether the cgroup reads frozen: v1 `freezer.state` FROZEN, v2 `cgroup.freeze` 1.
fn is_frozen(dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|d| {
        let v1 = std::fs::read_to_string(d.join("freezer.state"));
        let v2 = std::fs::read_to_string(d.join("cgroup.freeze"));
        v1.is_ok_and(|s| s.trim() == "FROZEN") || v2.is_ok_and(|s| s.trim() == "1")
    })
}

/// The freezer files' contents, for messages.
fn freezer_states(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .flat_map(|d| [d.join("freezer.state"), d.join("cgroup.freeze")])
        .filter_map(|f| {
            Some(format!(
                "{}={}",
                f.display(),
                std::fs::read_to_string(&f).ok()?.trim()
            ))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU time used by the cgroup so far, in ns: v2 `cpu.stat` `usage_usec`; v1
/// `cpuacct.usage` where cpuacct shares the cpu hierarchy; else (cpuacct mounted apart,
/// so the sandbox has no cpuacct group) the sum of `/proc/<tid>/schedstat` over its tasks.
fn cpu_usage_ns(dirs: &[PathBuf]) -> u64 {
    for d in dirs {
        if let Ok(stat) = std::fs::read_to_string(d.join("cpu.stat")) {
            if let Some(usec) = stat
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
            {
                return usec * 1000;
            }
        }
    }
    for d in dirs {
        if let Ok(ns) = std::fs::read_to_string(d.join("cpuacct.usage")) {
            return ns.trim().parse().unwrap();
        }
    }
    let tasks = dirs
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join("tasks")).ok())
        .expect("a v1 cgroup with a tasks file");
    tasks
        .lines()
        .filter_map(|tid| std::fs::read_to_string(format!("/proc/{tid}/schedstat")).ok())
        .filter_map(|s| s.split(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Waits until `/metrics` shows `n` busy instances.
fn wait_busy(d: &Daemon, n: u64) {
    wait_for(
        WAIT,
        || instances(&d.metrics(), "busy") == n,
        || d.metrics(),
    );
}

/// Invokes `function` with `payload` on a thread; the answer comes back on join.
fn invoke_in_thread(
    d: &Daemon,
    function: &str,
    payload: Value,
) -> std::thread::JoinHandle<HttpResponse> {
    let sock = d.socket();
    let path = format!("/2015-03-31/functions/{function}/invocations");
    std::thread::spawn(move || {
        common::daemon::http_request(&sock, "POST", &path, &[], payload.to_string().as_bytes())
    })
}

#[test]
fn a_warm_instance_is_reused_and_only_the_first_report_has_init_duration() {
    if skip_unless_root() {
        return;
    }
    let mut d = Daemon::start_config("");
    create(&d, "warm", &py_zip(HANDLERS), "lambda_function.ident", 128);
    let tail = [("X-Amz-Log-Type", "Tail")];
    let first = d.invoke("warm", &tail, b"{}");
    let v1 = ok_json(&d, &first, "first invocation");
    assert!(matches!(start_kind(&first), "spawn" | "blank"), "{first:?}");
    assert!(
        first.report_line().contains("\tInit Duration: "),
        "{first:?}"
    );
    let second = d.invoke("warm", &tail, b"{}");
    let v2 = ok_json(&d, &second, "second invocation");
    assert_eq!(start_kind(&second), "warm", "{second:?}");
    assert!(
        !second.report_line().contains("Init Duration"),
        "{second:?}"
    );
    assert_eq!(v1["instance"], v2["instance"], "one instance served both");
    d.stop_clean();
}

#[test]
fn a_frozen_idle_instance_uses_no_cpu_and_thaws_to_answer() {
    if skip_unless_root() {
        return;
    }
    let mut d = Daemon::start_config("freeze_delay_ms = 10\nblank_pool_size = 0\n");
    create(&d, "spin", &py_zip(HANDLERS), "lambda_function.spin", 128);
    let first = ok_json(&d, &d.invoke("spin", &[], b"{}"), "first invocation");
    wait_for(
        WAIT,
        || instances(&d.metrics(), "idle_frozen") == 1,
        || d.metrics(),
    );
    let names = instance_names(&d);
    assert_eq!(names.len(), 1, "{names:?}");
    let dirs = cgroup_dirs(&d, &names[0]);
    // The daemon only asks; the kernel reports FREEZING until every task has stopped
    // (a spinning thread throttled by its CPU quota may take a while to get there).
    wait_for(
        WAIT,
        || is_frozen(&dirs),
        || format!("not frozen: {dirs:?} {}", freezer_states(&dirs)),
    );
    let before = cpu_usage_ns(&dirs);
    assert!(before > 0, "no CPU time read from {dirs:?}");
    std::thread::sleep(Duration::from_secs(1));
    let after = cpu_usage_ns(&dirs);
    // The spinning thread would use a whole second; frozen, it uses nothing (10 ms is
    // far above any accounting noise).
    assert!(
        after.saturating_sub(before) < 10_000_000,
        "a frozen instance used {} ns of CPU in 1 s",
        after - before
    );
    // Thawed for the next invocation, same instance.
    let again = d.invoke("spin", &[], b"{}");
    let v = ok_json(&d, &again, "invocation after the freeze");
    assert_eq!(start_kind(&again), "warm", "{again:?}");
    assert_eq!(v["instance"], first["instance"]);
    d.stop_clean();
}

#[test]
fn an_idle_instance_expires_with_sigterm_and_its_cgroup_goes() {
    if skip_unless_root() {
        return;
    }
    let mut d = Daemon::start_config("idle_timeout_s = 1\nblank_pool_size = 0\n");
    // A whole CPU's share (Lambda's 1769 MB): at 128 MB's share of a loaded host, the
    // handler may not get to run within the 500 ms grace.
    create(
        &d,
        "term",
        &py_zip(TERM_HANDLER),
        "lambda_function.handler",
        1769,
    );
    let v = ok_json(&d, &d.invoke("term", &[], b"{}"), "invocation");
    assert_eq!(v, "ready");
    wait_for(
        WAIT,
        || live_instances(&d.metrics()) == 0 && instance_names(&d).is_empty(),
        || format!("{}\n{:?}", d.metrics(), instance_names(&d)),
    );
    // The runtime had its grace: its handler ran and its output reached the log.
    wait_for(
        WAIT,
        || function_logs(&d, "term").contains("got SIGTERM"),
        || {
            format!(
                "log:\n{}\n--- daemon log ---\n{}",
                function_logs(&d, "term"),
                d.log()
            )
        },
    );
    d.stop_clean();
}

#[test]
fn the_least_recently_used_instance_is_evicted_then_busy_ones_throttle() {
    if skip_unless_root() {
        return;
    }
    let mut d = Daemon::start_config("memory_budget_mb = 512\nblank_pool_size = 0\n");
    let zip = py_zip(HANDLERS);
    for (name, mb) in [("a", 128), ("b", 128), ("c", 128), ("d", 256)] {
        create(&d, name, &zip, "lambda_function.ident", mb);
    }
    let mut seen = HashMap::new();
    for name in ["a", "b", "c"] {
        let r = d.invoke(name, &[], b"{}");
        seen.insert(name, ok_json(&d, &r, name)["instance"].clone());
        assert_eq!(start_kind(&r), "spawn", "{name}: {r:?}");
    }
    // 384 MB idle; d needs 256 of the 512: the least recently used (a) makes room.
    let r = d.invoke("d", &[], b"{}");
    ok_json(&d, &r, "d");
    for name in ["b", "c"] {
        let r = d.invoke(name, &[], b"{}");
        let v = ok_json(&d, &r, name);
        assert_eq!(start_kind(&r), "warm", "{name}: {r:?}");
        assert_eq!(v["instance"], seen[name], "{name}");
    }
    let r = d.invoke("a", &[], b"{}");
    let v = ok_json(&d, &r, "a again");
    assert_eq!(start_kind(&r), "spawn", "a was evicted: {r:?}");
    assert_ne!(v["instance"], seen["a"]);

    d.stop_clean();

    // On a fresh daemon (no idle instance whose removal could still be in progress), two
    // busy instances of s hold the whole budget: nothing can make room for a third.
    let mut d = Daemon::start_config("memory_budget_mb = 512\nblank_pool_size = 0\n");
    create(&d, "a", &zip, "lambda_function.ident", 128);
    create(&d, "s", &zip, "lambda_function.sleep_echo", 256);
    let sleepers: Vec<_> = (0..2)
        .map(|i| invoke_in_thread(&d, "s", json!({"sleep": 8, "n": i})))
        .collect();
    wait_busy(&d, 2);
    let r = d.invoke("a", &[], b"{}");
    assert_eq!(r.status, 429, "{r:?} {}", r.text());
    assert_eq!(
        r.header("x-amzn-ErrorType"),
        Some("TooManyRequestsException"),
        "{r:?}"
    );
    for (i, t) in sleepers.into_iter().enumerate() {
        let r = t.join().unwrap();
        let v = ok_json(&d, &r, "sleeper");
        assert_eq!(v["event"]["n"], i, "{v}");
    }
    d.stop_clean();
}

/// Runs `n` concurrent boto3 invocations (retries off) of `function` with `{"sleep": 2}`
/// against `d`'s TCP listener; returns one JSON object per invocation: `{"status": 200,
/// ...}` or `{"code": <error code>, "reason": <Reason>, "status": <HTTP status>}`.
fn boto3_concurrent(d: &Daemon, python: &std::ffi::OsStr, function: &str, n: usize) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys, threading
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = Config(retries={"max_attempts": 0}, read_timeout=120, connect_timeout=30)
clients = [boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1", config=cfg)
           for _ in range(n)]
barrier = threading.Barrier(n)
results = [None] * n

def run(i):
    barrier.wait()
    try:
        r = clients[i].invoke(FunctionName=name, Payload=json.dumps({"sleep": 2}))
        results[i] = {"status": r["StatusCode"], "error": r.get("FunctionError"),
                      "payload": r["Payload"].read().decode()}
    except ClientError as e:
        results[i] = {"code": e.response["Error"]["Code"],
                      "reason": e.response.get("Reason"),
                      "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}

threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(results))
"#;
    let script = d.dir.path().join("throttle_client.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let out = Command::new(python)
        .arg(&script)
        .arg(format!("http://127.0.0.1:{}", d.port))
        .arg(function)
        .arg(n.to_string())
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "boto3 script failed:\n{stdout}\n{}\n--- daemon log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Asserts that exactly one of `results` is a `TooManyRequestsException` with `reason`
/// and every other one a successful invocation.
fn one_throttled(results: &[Value], reason: &str) {
    let throttled: Vec<&Value> = results.iter().filter(|r| r.get("code").is_some()).collect();
    assert_eq!(throttled.len(), 1, "{results:#?}");
    assert_eq!(
        throttled[0]["code"], "TooManyRequestsException",
        "{results:#?}"
    );
    assert_eq!(throttled[0]["reason"], reason, "{results:#?}");
    assert_eq!(throttled[0]["status"], 429, "{results:#?}");
    for r in results.iter().filter(|r| r.get("code").is_none()) {
        assert_eq!(r["status"], 200, "{results:#?}");
        assert!(r["error"].is_null(), "{results:#?}");
    }
}

#[test]
fn boto3_sees_reserved_and_account_throttles() {
    if skip_unless_root() {
        return;
    }
    let Some(python) = std::env::var_os("HEARTH_BOTO3_PYTHON") else {
        println!("skipped: HEARTH_BOTO3_PYTHON is not set (scripts/test.sh makes a boto3 venv)");
        return;
    };
    let zip = py_zip(HANDLERS);
    // Reserved concurrency 1: the second of two concurrent invocations is refused.
    let mut d = Daemon::start_config("");
    create(&d, "reserved", &zip, "lambda_function.sleep_echo", 128);
    d.call(
        "PUT",
        "/2017-10-31/functions/reserved/concurrency",
        Some(json!({"ReservedConcurrentExecutions": 1})),
        200,
    );
    let results = boto3_concurrent(&d, &python, "reserved", 2);
    one_throttled(
        &results,
        "ReservedFunctionConcurrentInvocationLimitExceeded",
    );
    d.stop_clean();

    // An account limit of 2 and no reservations: the third of three is refused.
    let mut d = Daemon::start_config("account_concurrency = 2\n");
    create(&d, "shared", &zip, "lambda_function.sleep_echo", 128);
    let results = boto3_concurrent(&d, &python, "shared", 3);
    one_throttled(&results, "ConcurrentInvocationLimitExceeded");
    d.stop_clean();
}

#[test]
fn provisioned_concurrency_becomes_ready_and_serves_without_init() {
    if skip_unless_root() {
        return;
    }
    let mut d = Daemon::start_config("");
    create(&d, "prov", &py_zip(HANDLERS), "lambda_function.ident", 128);
    let v = d.call(
        "POST",
        "/2015-03-31/functions/prov/versions",
        Some(json!({})),
        201,
    );
    assert_eq!(v["Version"], "1", "{v}");
    let path = "/2019-09-30/functions/prov/provisioned-concurrency?Qualifier=1";
    let v = d.call(
        "PUT",
        path,
        Some(json!({"ProvisionedConcurrentExecutions": 2})),
        202,
    );
    assert_eq!(v["Status"], "IN_PROGRESS", "{v}");
    assert_eq!(v["RequestedProvisionedConcurrentExecutions"], 2, "{v}");
    wait_for(
        WAIT,
        || {
            let v = d.call("GET", path, None, 200);
            v["Status"] == "READY" && v["AvailableProvisionedConcurrentExecutions"] == 2
        },
        || format!("{}\n{}", d.request("GET", path, &[], b"").text(), d.log()),
    );
    let r = d.invoke("prov:1", &[("X-Amz-Log-Type", "Tail")], b"{}");
    let v = ok_json(&d, &r, "provisioned invocation");
    assert_eq!(start_kind(&r), "provisioned", "{r:?}");
    assert_eq!(r.header("X-Amz-Executed-Version"), Some("1"), "{r:?}");
    assert!(!r.report_line().contains("Init Duration"), "{r:?}");
    assert_eq!(v["init_type"], "provisioned-concurrency", "{v}");

    let r = d.request("DELETE", path, &[], b"");
    assert_eq!(r.status, 204, "{r:?} {}", r.text());
    let r = d.request("GET", path, &[], b"");
    assert_eq!(r.status, 404, "{r:?} {}", r.text());
    assert_eq!(
        r.header("x-amzn-ErrorType"),
        Some("ProvisionedConcurrencyConfigNotFoundException"),
        "{r:?}"
    );
    d.stop_clean();
}

#[test]
fn two_hundred_concurrent_invocations_are_all_answered_correctly() {
    if skip_unless_root() {
        return;
    }
    let mut d = Daemon::start_config("account_concurrency = 1000\nmemory_budget_mb = 60000\n");
    create(
        &d,
        "burst",
        &py_zip(HANDLERS),
        "lambda_function.sleep_echo",
        128,
    );
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(200));
    let threads: Vec<_> = (0..200)
        .map(|i| {
            let (sock, barrier) = (d.socket(), barrier.clone());
            std::thread::spawn(move || {
                let payload = json!({"sleep": 0.5, "id": i, "pad": format!("payload-{i}")});
                barrier.wait();
                let r = common::daemon::http_request(
                    &sock,
                    "POST",
                    "/2015-03-31/functions/burst/invocations",
                    &[],
                    payload.to_string().as_bytes(),
                );
                (payload, r)
            })
        })
        .collect();
    let mut instances_used = std::collections::HashSet::new();
    let mut failures = Vec::new();
    let mut init_max_us = 0u64;
    for t in threads {
        let (payload, r) = t.join().unwrap();
        let init_us = r
            .header("X-Hearth-Init-Duration-Us")
            .and_then(|v| v.parse().ok());
        init_max_us = init_max_us.max(init_us.unwrap_or(0));
        let v: Option<Value> = serde_json::from_slice(&r.body).ok();
        let echoed = v.as_ref().is_some_and(|v| v["event"] == payload);
        if r.status != 200 || r.header("X-Amz-Function-Error").is_some() || !echoed {
            failures.push(format!("{}: {} {}", payload["id"], r.status, r.text()));
        } else if let Some(v) = v {
            instances_used.insert(v["instance"].to_string());
        }
    }
    // Every answer is a success echoing its own payload; on failure, say how many and
    // how long the inits took (the init limit counts from the instance's creation).
    assert!(
        failures.is_empty(),
        "{} of 200 invocations failed (longest init {} ms); the first: {:#?}\n--- daemon log ---\n{}",
        failures.len(),
        init_max_us / 1000,
        &failures[..failures.len().min(3)],
        d.log()
    );
    println!("{} instances served 200 invocations", instances_used.len());
    d.stop_clean();
}

#[test]
fn an_update_lets_running_invocations_finish_on_old_code() {
    if skip_unless_root() {
        return;
    }
    let mut d = Daemon::start_config("blank_pool_size = 0\n");
    create(&d, "upd", &py_zip(V1), "lambda_function.handler", 128);
    let old: Vec<_> = (0..3)
        .map(|i| invoke_in_thread(&d, "upd", json!({ "n": i })))
        .collect();
    wait_busy(&d, 3);
    d.call(
        "PUT",
        "/2015-03-31/functions/upd/code",
        Some(json!({"ZipFile": py_zip(V2)})),
        200,
    );
    let r = d.invoke("upd", &[], b"{}");
    assert_eq!(ok_json(&d, &r, "new invocation"), "v2");
    for t in old {
        let r = t.join().unwrap();
        assert_eq!(ok_json(&d, &r, "in-flight invocation"), "v1");
    }
    // The old instances retire once idle: only the v2 instance remains, and serves.
    wait_for(
        WAIT,
        || live_instances(&d.metrics()) == 1 && instance_names(&d).len() == 1,
        || format!("{}\n{:?}", d.metrics(), instance_names(&d)),
    );
    let r = d.invoke("upd", &[], b"{}");
    assert_eq!(ok_json(&d, &r, "after the retirement"), "v2");
    assert_eq!(start_kind(&r), "warm", "{r:?}");
    d.stop_clean();
}

/// The pids of the sandbox `name`'s processes other than Hearth's init, each checked to
/// be in that cgroup (so nothing else is ever signalled).
fn runtime_pids(d: &Daemon, name: &str) -> Vec<i32> {
    let dirs = cgroup_dirs(d, name);
    let procs = dirs
        .iter()
        .find_map(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
        .unwrap_or_default();
    procs
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            comm.trim() != "hearth" && cgroup.contains(&format!("/{name}\n"))
        })
        .collect()
}

#[test]
fn an_instance_killed_mid_invocation_fails_it_and_the_next_one_works() {
    if skip_unless_root() {
        return;
    }
    let mut d = Daemon::start_config("blank_pool_size = 0\n");
    create(
        &d,
        "victim",
        &py_zip(HANDLERS),
        "lambda_function.sleep_echo",
        128,
    );
    let running = invoke_in_thread(&d, "victim", json!({"sleep": 30}));
    // The handler has started once it says so.
    wait_for(
        WAIT,
        || function_logs(&d, "victim").contains("sleeping 30"),
        || function_logs(&d, "victim"),
    );
    let names = instance_names(&d);
    assert_eq!(names.len(), 1, "{names:?}");
    let pids = runtime_pids(&d, &names[0]);
    assert_eq!(pids.len(), 1, "the runtime's process: {pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let r = running.join().unwrap();
    assert_eq!(r.status, 200, "{r:?} {}", r.text());
    assert_eq!(r.header("X-Amz-Function-Error"), Some("Unhandled"), "{r:?}");
    assert_eq!(r.json()["errorType"], "Runtime.ExitError", "{}", r.text());
    let r = d.invoke("victim", &[], br#"{"sleep": 0, "after": true}"#);
    let v = ok_json(&d, &r, "the next invocation");
    assert_eq!(v["event"]["after"], true, "{v}");
    d.stop_clean();
}

#[test]
fn the_isolation_probe_passes_in_an_instance_from_a_blank_sandbox() {
    if skip_unless_root() {
        return;
    }
    let mut d = Daemon::start_config("blank_pool_size = 2\n");
    let probe = std::fs::read(common::probe_bin()).expect("the static probe (build it first)");
    let zip = zip_b64(&[
        ("lambda_function.py", 0o644, HANDLERS.as_bytes()),
        ("hearth-probe", 0o755, &probe),
    ]);
    create(&d, "isolated", &zip, "lambda_function.probe", 128);
    wait_for(
        Duration::from_secs(60),
        || instances(&d.metrics(), "blank") >= 1,
        || format!("no blank sandbox ready:\n{}", d.metrics()),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |label: &str, args: &[&str]| {
        runs.insert(label.into(), args.iter().map(|s| s.to_string()).collect());
    };
    for cmd in [
        "pids",
        "pid1",
        "whoami",
        "hostname",
        "net",
        "status",
        "mounts",
        "fds",
        "ptrace-init",
        "rlimits",
        "cwd",
    ] {
        add(cmd, &[cmd]);
    }
    add("connect", &["connect", &target]);
    for path in [
        "/x",
        "/usr/x",
        "/etc/x",
        "/var/task/x",
        "/dev/x",
        "/etc/passwd",
        "/tmp/x",
    ] {
        add(&format!("write {path}"), &["write", path]);
    }
    add(
        "write /proc/sys/kernel/hostname",
        &["write", "/proc/sys/kernel/hostname"],
    );
    for path in [
        "/proc/kcore",
        "/proc/keys",
        "/sys/firmware",
        "/proc/timer_list",
        "/proc/self/status",
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/sda",
        "/dev/vda",
        "/dev/mem",
        "/dev/kmsg",
        "/dev/loop0",
        "/dev/tty",
    ] {
        add(&format!("read {path}"), &["read", path]);
    }
    let mut dangerous = vec!["try-syscall"];
    dangerous.extend_from_slice(common::DANGEROUS_SYSCALLS);
    add("dangerous", &dangerous);
    add(
        "allowed",
        &[
            "try-syscall",
            "clone3",
            "fork",
            "socket_inet",
            "socket_unix",
        ],
    );
    let payload = json!({ "runs": runs }).to_string();
    let r = d.invoke(
        "isolated",
        &[("X-Hearth-Start", "blank")],
        payload.as_bytes(),
    );
    let out = ok_json(&d, &r, "probe invocation");
    assert_eq!(start_kind(&r), "blank", "{r:?}");

    let run = |label: &str| -> HashMap<String, String> {
        let o = &out[label];
        assert_eq!(o["code"], 0, "{label}: {o}");
        o["stdout"]
            .as_str()
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let get = |label: &str, key: &str| -> String {
        run(label)
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("{label}: no {key}= in {}", out[label]))
    };
    // The checks of tests/isolation.rs, from inside a function instance. The probe runs
    // as a child of the runtime: the processes are init, the runtime and the probe.
    assert_eq!(get("pids", "count"), "3", "{}", out["pids"]);
    assert!(get("pids", "pids").starts_with("1,2,"), "{}", out["pids"]);
    assert_eq!(get("pid1", "pid1_comm"), "hearth");
    assert_eq!(get("pid1", "pid1_uid"), "0");
    assert_eq!(get("hostname", "hostname"), "hearth");
    assert_ne!(nix::unistd::gethostname().unwrap(), "hearth");
    assert_eq!(get("net", "ifaces"), "lo");
    assert_eq!(get("net", "iface_lo"), "up");
    assert_eq!(get("connect", "connect"), "ECONNREFUSED");
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "nothing may have reached the host"
    );
    for path in ["/x", "/usr/x", "/etc/x", "/var/task/x", "/dev/x"] {
        assert_eq!(get(&format!("write {path}"), "write"), "EROFS", "{path}");
    }
    assert_ne!(get("write /etc/passwd", "write"), "OK");
    assert_eq!(get("write /tmp/x", "write"), "OK");
    for line in out["mounts"]["stdout"].as_str().unwrap().lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (target, fstype, opts) = (f[1], f[2], f[3]);
        let ro = opts.split(',').any(|o| o == "ro");
        let writable_ok = target == "/tmp" || fstype == "proc" || target.starts_with("/dev/");
        assert!(ro || writable_ok, "{line}");
    }
    for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(get("status", key), "0000000000000000", "{key}");
    }
    assert_eq!(get("status", "NoNewPrivs"), "1");
    assert_eq!(get("status", "Seccomp"), "2");
    assert_eq!(get("whoami", "uid"), "993");
    assert_eq!(get("whoami", "euid"), "993");
    assert_eq!(get("whoami", "gid"), "990");
    assert_eq!(get("whoami", "groups"), "");
    for c in common::DANGEROUS_SYSCALLS {
        assert_eq!(get("dangerous", c), "EPERM", "{c}");
    }
    assert_eq!(get("allowed", "clone3"), "ENOSYS");
    for ok in ["fork", "socket_inet", "socket_unix"] {
        assert_eq!(get("allowed", ok), "OK", "{ok}");
    }
    for path in [
        "/proc/kcore",
        "/proc/keys",
        "/sys/firmware",
        "/proc/timer_list",
    ] {
        let v = get(&format!("read {path}"), "read");
        assert!(v == "EACCES" || v == "ENOENT", "{path}: {v}");
    }
    assert_ne!(get("write /proc/sys/kernel/hostname", "write"), "OK");
    assert_eq!(get("read /proc/self/status", "read"), "OK");
    for dev in ["null", "zero", "full", "random", "urandom"] {
        assert_eq!(get(&format!("read /dev/{dev}"), "read"), "OK", "{dev}");
    }
    for absent in [
        "/dev/sda",
        "/dev/vda",
        "/dev/mem",
        "/dev/kmsg",
        "/dev/loop0",
        "/dev/tty",
    ] {
        assert_eq!(get(&format!("read {absent}"), "read"), "ENOENT", "{absent}");
    }
    assert_eq!(get("fds", "fds"), "0,1,2");
    assert_eq!(get("ptrace-init", "ptrace_attach_1"), "EPERM");
    assert_eq!(get("ptrace-init", "proc1_mem"), "EACCES");
    assert_eq!(get("ptrace-init", "proc1_environ"), "EACCES");
    assert_eq!(get("rlimits", "nofile"), "1024:1024");
    assert_eq!(get("rlimits", "core"), "0:0");
    assert_eq!(get("cwd", "cwd"), "/var/task");
    d.stop_clean();
}
