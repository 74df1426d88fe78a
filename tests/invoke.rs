//! `hearth invoke --local` end to end: managed Python and Node handlers and custom
//! `provided` bootstraps in real sandboxes — responses, function errors, timeouts, OOM,
//! init failures, log capture, the response size limit, zip intake and bad input.
//!
//! Needs: root (namespaces, cgroups, mounts), `mkfs.ext4`, `/usr/bin/python3` and
//! `/usr/bin/node` on the host (the sandboxes bind the host's `/usr`), `curl` for the shell
//! bootstrap, `zip`-free: zips are written with the `zip` crate.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use common::{hearth_bin, skip_unless_root};

/// What `hearth invoke` printed and returned.
#[derive(Debug)]
struct Invoked {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Invoked {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// A function directory readable by the sandbox user, holding `files`.
fn function(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("hearth-test-fn-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for (name, body) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let mode = if *name == "bootstrap" { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    dir
}

/// Runs `hearth invoke --local`. Unless `extra` names the function, it gets a unique name,
/// and its log group (under the state directory) is removed afterwards.
fn invoke(code: &Path, runtime: &str, extra: &[&str]) -> Invoked {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let mut cmd = Command::new(hearth_bin());
    cmd.args(["invoke", "--local", "--runtime", runtime, "--code"])
        .arg(code)
        .args(extra)
        .stdin(Stdio::null());
    // Unless a test is about them, generous limits: under emulation (the v2 leg's guest)
    // and at a 128 MB CPU share, a handler can take seconds.
    if !extra.contains(&"--timeout") {
        cmd.args(["--timeout", "120"]);
    }
    if !extra.contains(&"--memory") {
        cmd.args(["--memory", "1769"]);
    }
    cmd.args(["--init-timeout", "120"]);
    let name = match extra.iter().position(|a| *a == "--function-name") {
        Some(i) => extra[i + 1].to_string(),
        None => {
            let n = format!(
                "hearth-test-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            );
            cmd.args(["--function-name", &n]);
            n
        }
    };
    let out = cmd.output().unwrap();
    let state = std::env::var_os("HEARTH_STATE_DIR").unwrap_or_else(|| "/var/lib/hearth".into());
    let _ = std::fs::remove_dir_all(Path::new(&state).join("logs/aws/lambda").join(&name));
    Invoked {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The `REPORT` line of the output, split into its fields.
fn report(stderr: &str) -> Vec<String> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("REPORT RequestId: "))
        .unwrap_or_else(|| panic!("no REPORT line: {stderr}"));
    assert!(line.ends_with('\t'), "REPORT ends with a tab: {line:?}");
    line.trim_end_matches('\t')
        .split('\t')
        .map(str::to_owned)
        .collect()
}

const PY_HANDLERS: &str = r#"
import json, os, sys, time

def echo(event, context):
    print("echo handler", context.aws_request_id)
    return {"echo": event, "function": context.function_name,
            "memory": str(context.memory_limit_in_mb),
            "arn": context.invoked_function_arn,
            "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 30000,
            "env": {k: os.environ.get(k) for k in [
                "AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT",
                "HEARTH_RUNTIME_API_SOCKET", "TZ", "MY_VAR"]},
            "cwd": os.getcwd(), "uid": os.getuid()}

def throw(event, context):
    raise ValueError("bad value " + str(event.get("n")))

def slow(event, context):
    print("going to sleep", flush=True)
    time.sleep(30)

def hog(event, context):
    blocks = []
    for _ in range(400):
        blocks.append(bytearray(1024 * 1024))
    return len(blocks)

def chatty(event, context):
    for i in range(10000):
        print(f"line {i}")
    return "done"

def die(event, context):
    sys.stdout.flush()
    os._exit(3)

def ctx(event, context):
    cc = context.client_context
    return {"custom": cc.custom if cc else None}

def sized(event, context):
    # A JSON string of n bytes: n - 2 characters between the quotes.
    return "x" * (event["n"] - 2)
"#;

/// A few checks also run with instances started from blank sandboxes (`--blank`, the
/// daemon's pre-warmed path): the function must not see a difference.
mod blank_path {
    #[test]
    fn python_echo_sees_lambdas_context_and_environment() {
        super::python_echo_in(&["--blank"], "hearth-test-echo-blank-fn");
    }

    #[test]
    fn a_static_bootstrap_echoes_cold_then_warm() {
        super::static_echo_in(&["--blank"]);
    }
}

#[test]
fn python_echo_sees_lambdas_context_and_environment() {
    python_echo_in(&[], "hearth-test-echo-fn");
}

fn python_echo_in(mode: &[&str], name: &str) {
    if skip_unless_root() {
        return;
    }
    let f = function(&[("handlers.py", PY_HANDLERS)]);
    let r = invoke(
        f.path(),
        "python3.11",
        &[
            mode,
            &[
                "--handler",
                "handlers.echo",
                "--function-name",
                name,
                "--memory",
                "256",
                "--timeout",
                "30",
                "--env",
                "MY_VAR=hello",
                "--payload",
                r#"{"a": [1, 2, 3]}"#,
            ],
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["echo"], serde_json::json!({"a": [1, 2, 3]}));
    assert_eq!(v["function"], name);
    assert_eq!(v["memory"], "256");
    assert_eq!(
        v["arn"],
        format!("arn:aws:lambda:us-east-1:000000000000:function:{name}")
    );
    assert_eq!(v["remaining_ok"], true);
    assert_eq!(v["cwd"], "/var/task");
    assert_eq!(v["uid"], 993);
    let env = &v["env"];
    assert_eq!(env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:9001");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], name);
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_EXECUTION_ENV"], "AWS_Lambda_python3.11");
    assert_eq!(env["LAMBDA_TASK_ROOT"], "/var/task");
    assert_eq!(env["HEARTH_RUNTIME_API_SOCKET"], "@hearth/runtime-api");
    assert_eq!(env["TZ"], ":UTC");
    assert_eq!(env["MY_VAR"], "hello");

    // The log lines: the handler's output between START and END, then REPORT with an
    // Init Duration (a cold start).
    let lines: Vec<&str> = r.stderr.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("START RequestId: ") && l.ends_with(" Version: $LATEST"))
        .unwrap_or_else(|| panic!("{r:?}"));
    let end = lines
        .iter()
        .position(|l| l.starts_with("END RequestId: "))
        .unwrap();
    assert!(lines[start + 1..end]
        .iter()
        .any(|l| l.starts_with("echo handler ")));
    let fields = report(&r.stderr);
    assert!(fields[1].starts_with("Duration: ") && fields[1].ends_with(" ms"));
    assert!(fields[2].starts_with("Billed Duration: "));
    assert_eq!(fields[3], "Memory Size: 256 MB");
    assert!(fields[4].starts_with("Max Memory Used: "));
    assert!(fields[5].starts_with("Init Duration: "), "{fields:?}");
    // The same request id throughout.
    let id = lines[start]
        .trim_start_matches("START RequestId: ")
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(lines[end], format!("END RequestId: {id}"));
}

#[test]
fn python_exception_is_a_function_error_with_awslambdarics_shape() {
    if skip_unless_root() {
        return;
    }
    let f = function(&[("handlers.py", PY_HANDLERS)]);
    let r = invoke(
        f.path(),
        "python3.11",
        &["--handler", "handlers.throw", "--payload", r#"{"n": 7}"#],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let v = r.json();
    assert_eq!(v["errorType"], "ValueError");
    assert_eq!(v["errorMessage"], "bad value 7");
    assert!(v["stackTrace"].is_array(), "{v}");
    assert!(r
        .stderr
        .trim_end()
        .ends_with("hearth: function error: ValueError"));
}

#[test]
fn a_timeout_kills_the_instance_and_says_so() {
    if skip_unless_root() {
        return;
    }
    let f = function(&[("handlers.py", PY_HANDLERS)]);
    let r = invoke(
        f.path(),
        "python3.11",
        &["--handler", "handlers.slow", "--timeout", "1"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let v = r.json();
    assert_eq!(v["errorType"], "Sandbox.Timedout");
    let msg = v["errorMessage"].as_str().unwrap();
    assert!(
        msg.starts_with("RequestId: ")
            && msg.ends_with(" Error: Task timed out after 1.00 seconds"),
        "{msg}"
    );
    assert!(r.stderr.contains("going to sleep"), "{r:?}");
    // After REPORT: `<timestamp> <id> Task timed out after N.NN seconds`.
    let after = r.stderr.split("REPORT RequestId: ").nth(1).unwrap();
    assert!(after.contains(" Task timed out after "), "{r:?}");
    assert!(report(&r.stderr)[2] == "Billed Duration: 1000 ms", "{r:?}");
}

#[test]
fn exceeding_memory_is_runtime_out_of_memory() {
    if skip_unless_root() {
        return;
    }
    let f = function(&[("handlers.py", PY_HANDLERS)]);
    let r = invoke(
        f.path(),
        "python3.11",
        &[
            "--handler",
            "handlers.hog",
            "--memory",
            "128",
            // Touching 128 MB at a 128 MB function's CPU share takes minutes under the
            // v2 leg's emulated CPU.
            "--timeout",
            "600",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let v = r.json();
    assert_eq!(v["errorType"], "Runtime.OutOfMemory", "{r:?}");
    assert!(v["errorMessage"]
        .as_str()
        .unwrap()
        .ends_with("Error: Runtime exited with error: signal: killed"));
    assert_eq!(report(&r.stderr)[4], "Max Memory Used: 128 MB", "{r:?}");
}

#[test]
fn a_runtime_that_exits_mid_invoke_is_an_exit_error() {
    if skip_unless_root() {
        return;
    }
    let f = function(&[("handlers.py", PY_HANDLERS)]);
    let r = invoke(f.path(), "python3.11", &["--handler", "handlers.die"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = r.json();
    assert_eq!(v["errorType"], "Runtime.ExitError");
    assert!(v["errorMessage"]
        .as_str()
        .unwrap()
        .ends_with("Error: Runtime exited with error: exit status 3"));
}

#[test]
fn an_import_failure_is_the_posted_init_error() {
    if skip_unless_root() {
        return;
    }
    let f = function(&[("handlers.py", "import no_such_module\n")]);
    let r = invoke(f.path(), "python3.11", &["--handler", "handlers.echo"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = r.json();
    assert_eq!(v["errorType"], "Runtime.ImportModuleError");
    assert!(v["errorMessage"]
        .as_str()
        .unwrap()
        .contains("No module named 'no_such_module'"));
    // The platform lines are still there.
    assert!(r.stderr.contains("START RequestId: "), "{r:?}");
    assert!(r.stderr.contains("REPORT RequestId: "), "{r:?}");
}

#[test]
fn ten_thousand_log_lines_arrive_in_order() {
    if skip_unless_root() {
        return;
    }
    let f = function(&[("handlers.py", PY_HANDLERS)]);
    let r = invoke(
        f.path(),
        "python3.11",
        &["--handler", "handlers.chatty", "--timeout", "60"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), "\"done\"");
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("line "))
        .collect();
    assert_eq!(lines.len(), 10_000);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("line {i}"));
    }
    // All of them before END.
    let end = r.stderr.find("END RequestId: ").unwrap();
    assert!(r.stderr.rfind("line 9999").unwrap() < end);
}

#[test]
fn a_response_of_6291556_bytes_passes_and_one_more_fails() {
    if skip_unless_root() {
        return;
    }
    let f = function(&[("handlers.py", PY_HANDLERS)]);
    let ok = invoke(
        f.path(),
        "python3.11",
        &[
            "--handler",
            "handlers.sized",
            "--memory",
            "512",
            "--timeout",
            "60",
            "--quiet",
            "--payload",
            r#"{"n": 6291556}"#,
        ],
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(ok.stdout.trim_end_matches('\n').len(), 6_291_556);
    let big = invoke(
        f.path(),
        "python3.11",
        &[
            "--handler",
            "handlers.sized",
            "--memory",
            "512",
            "--timeout",
            "60",
            "--quiet",
            "--payload",
            r#"{"n": 6291557}"#,
        ],
    );
    assert_eq!(big.code, 1, "{}", big.stderr);
    let v = big.json();
    assert_eq!(v["errorType"], "Function.ResponseSizeTooLarge");
    assert_eq!(
        v["errorMessage"],
        "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
    );
}

#[test]
fn warm_invocations_reuse_the_instance() {
    if skip_unless_root() {
        return;
    }
    let f = function(&[("handlers.py", PY_HANDLERS)]);
    let timings = tempfile::NamedTempFile::new().unwrap();
    let r = invoke(
        f.path(),
        "python3.11",
        &[
            "--handler",
            "handlers.echo",
            "--repeat",
            "3",
            "--timings-file",
            timings.path().to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let kinds: Vec<String> = std::fs::read_to_string(timings.path())
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["kind"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(kinds, ["cold", "warm", "warm"]);
    // Only the cold start's REPORT has an Init Duration.
    let reports: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("REPORT "))
        .collect();
    assert_eq!(reports.len(), 3);
    assert!(reports[0].contains("Init Duration: "));
    assert!(!reports[1].contains("Init Duration: "));
    assert!(!reports[2].contains("Init Duration: "));
}

const NODE_HANDLERS: &str = r#"
export const echo = async (event, context) => {
  console.log("node echo", context.awsRequestId);
  return { echo: event, fn: context.functionName, mem: context.memoryLimitInMB };
};
export const boom = async () => { throw new TypeError("node failed"); };
export const slow = () => new Promise((r) => { console.log("waiting"); setTimeout(r, 30000); });
export const hog = async () => {
  const blocks = [];
  for (let i = 0; i < 400; i++) blocks.push(Buffer.alloc(1024 * 1024, 1));
  return blocks.length;
};
export const chatty = async () => {
  for (let i = 0; i < 10000; i++) process.stdout.write(`line ${i}\n`);
  return "done";
};
"#;

#[test]
fn node_async_handlers_answer_and_fail() {
    if skip_unless_root() {
        return;
    }
    let f = function(&[
        ("index.mjs", NODE_HANDLERS),
        (
            "cb.js",
            "exports.handler = (event, context, callback) => { callback(null, {cb: event.x}); };\n",
        ),
    ]);
    let r = invoke(
        f.path(),
        "nodejs20.x",
        &["--handler", "index.echo", "--payload", r#"{"x": 1}"#],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["echo"], serde_json::json!({"x": 1}));
    assert!(v["fn"].as_str().unwrap().starts_with("hearth-test-"), "{v}");
    assert!(r.stderr.contains("\tINFO\tnode echo "), "{r:?}");

    let r = invoke(f.path(), "nodejs20.x", &["--handler", "index.boom"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = r.json();
    assert_eq!(v["errorType"], "TypeError");
    assert_eq!(v["errorMessage"], "node failed");

    let r = invoke(
        f.path(),
        "nodejs20.x",
        &["--handler", "cb.handler", "--payload", r#"{"x": 5}"#],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json(), serde_json::json!({"cb": 5}));

    let r = invoke(f.path(), "nodejs20.x", &["--handler", "missing.handler"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["errorType"], "Runtime.ImportModuleError");
}

#[test]
fn node_handlers_time_out_run_out_of_memory_and_log_in_order() {
    if skip_unless_root() {
        return;
    }
    let f = function(&[("index.mjs", NODE_HANDLERS)]);
    let r = invoke(
        f.path(),
        "nodejs20.x",
        &["--handler", "index.slow", "--timeout", "1"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["errorType"], "Sandbox.Timedout", "{r:?}");

    let r = invoke(
        f.path(),
        "nodejs20.x",
        &[
            "--handler",
            "index.hog",
            "--memory",
            "128",
            // Touching 128 MB at a 128 MB function's CPU share takes minutes under the
            // v2 leg's emulated CPU.
            "--timeout",
            "600",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["errorType"], "Runtime.OutOfMemory", "{r:?}");

    let r = invoke(
        f.path(),
        "nodejs20.x",
        &["--handler", "index.chatty", "--timeout", "60"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("line "))
        .collect();
    assert_eq!(lines.len(), 10_000);
    assert!(lines
        .iter()
        .enumerate()
        .all(|(i, l)| *l == format!("line {i}")));
}

#[test]
fn a_shell_bootstrap_speaks_the_runtime_api_with_curl() {
    if skip_unless_root() {
        return;
    }
    let bootstrap = r#"#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  H=$(mktemp)
  EVENT=$(curl -sS -D "$H" "$API/invocation/next")
  ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$H" | cut -d' ' -f2 | tr -d '\r\n')
  echo "handling $ID"
  curl -sS -X POST "$API/invocation/$ID/response" -H 'Content-Type: application/json' -d "{\"echo\":$EVENT}" >/dev/null
done
"#;
    let f = function(&[("bootstrap", bootstrap)]);
    let r = invoke(f.path(), "provided.al2023", &["--payload", r#"{"k":"v"}"#]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json(), serde_json::json!({"echo": {"k": "v"}}));
    assert!(r.stderr.contains("handling "), "{r:?}");
}

#[test]
fn a_provided_function_without_bootstrap_is_an_invalid_entrypoint() {
    if skip_unless_root() {
        return;
    }
    let f = function(&[("README", "no bootstrap here\n")]);
    let r = invoke(f.path(), "provided", &[]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = r.json();
    assert_eq!(v["errorType"], "Runtime.InvalidEntrypoint");
    assert!(v["errorMessage"].as_str().unwrap().ends_with(
        "Error: Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
    ));
}

/// Writes a zip of `entries` (name, unix mode, contents) to `path`.
fn write_zip(path: &Path, entries: &[(&str, u32, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    for (name, mode, body) in entries {
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
        zip.start_file(*name, opts).unwrap();
        zip.write_all(body).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn zips_are_unpacked_once_and_bad_ones_refused() {
    if skip_unless_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.zip");
    write_zip(
        &good,
        &[
            (
                "lambda_function.py",
                0o644,
                b"def lambda_handler(e, c):\n    return {'zipped': e}\n",
            ),
            ("pkg/__init__.py", 0o644, b""),
        ],
    );
    let r = invoke(&good, "python3.11", &["--payload", "[1]"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json(), serde_json::json!({"zipped": [1]}));

    let evil = dir.path().join("evil.zip");
    write_zip(&evil, &[("../escape.py", 0o644, b"x = 1\n")]);
    let r = invoke(&evil, "python3.11", &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("evil.zip") && r.stderr.contains(".."),
        "{r:?}"
    );

    let corrupt = dir.path().join("corrupt.zip");
    std::fs::write(&corrupt, b"PK\x03\x04 this is not a zip").unwrap();
    let r = invoke(&corrupt, "python3.11", &[]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn the_client_context_reaches_the_handler_decoded() {
    if skip_unless_root() {
        return;
    }
    use base64::Engine;
    let f = function(&[("handlers.py", PY_HANDLERS)]);
    let cc = base64::engine::general_purpose::STANDARD.encode(r#"{"custom": {"k": "v"}}"#);
    let r = invoke(
        f.path(),
        "python3.11",
        &["--handler", "handlers.ctx", "--client-context", &cc],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json(), serde_json::json!({"custom": {"k": "v"}}));
    let r = invoke(
        f.path(),
        "python3.11",
        &[
            "--handler",
            "handlers.ctx",
            "--client-context",
            "not base64!",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--client-context"), "{r:?}");
}

#[test]
fn bad_input_is_refused_before_anything_runs() {
    if skip_unless_root() {
        return;
    }
    let f = function(&[("handlers.py", PY_HANDLERS)]);
    let r = invoke(f.path(), "python2.7", &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("python3.11") && r.stderr.contains("nodejs20.x"),
        "{r:?}"
    );
    let r = invoke(f.path(), "python3.11", &["--env", "AWS_REGION=eu-west-1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("AWS_REGION"), "{r:?}");
    let r = invoke(f.path(), "python3.11", &["--payload", "{not json"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not valid JSON"), "{r:?}");
    let r = invoke(Path::new("/nonexistent/code"), "python3.11", &[]);
    assert_eq!(r.code, 2, "{r:?}");
}

/// The static `hearth-echo` bootstrap ($HEARTH_ECHO, or the one cargo built) in a code
/// directory.
fn echo_function() -> tempfile::TempDir {
    let bin = std::env::var_os("HEARTH_ECHO")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_hearth-echo").into());
    let f = function(&[]);
    std::fs::copy(&bin, f.path().join("bootstrap")).unwrap();
    std::fs::set_permissions(
        f.path().join("bootstrap"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    f
}

#[test]
fn a_static_bootstrap_echoes_cold_then_warm() {
    static_echo_in(&[]);
}

fn static_echo_in(mode: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let f = echo_function();
    let timings = tempfile::NamedTempFile::new().unwrap();
    let r = invoke(
        f.path(),
        "provided.al2023",
        &[
            mode,
            &[
                "--payload",
                r#"{"big": "0123456789"}"#,
                "--repeat",
                "5",
                "--timings-file",
                timings.path().to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json(), serde_json::json!({"big": "0123456789"}));
    let lines = std::fs::read_to_string(timings.path()).unwrap();
    let kinds: Vec<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["cold", "warm", "warm", "warm", "warm"]);
}

/// A runtime that posts its response and exits at once, without reading the 202: the
/// response must not be lost to the exit (it was, about 1 run in 30).
const POST_AND_EXIT: &str = r#"#!/usr/bin/python3
import os, socket
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
s = socket.create_connection((host, int(port)))
s.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
while b"\r\n\r\n" not in data:
    data += s.recv(65536)
head = data.split(b"\r\n\r\n")[0].decode()
rid = [l.split(":", 1)[1].strip() for l in head.split("\r\n")
       if l.lower().startswith("lambda-runtime-aws-request-id")][0]
body = b'{"posted": true}'
t = socket.create_connection((host, int(port)))
t.sendall(f"POST /2018-06-01/runtime/invocation/{rid}/response HTTP/1.1\r\n"
          f"Host: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
os._exit(0)
"#;

#[test]
fn a_response_posted_just_before_exit_is_delivered() {
    if skip_unless_root() {
        return;
    }
    let f = function(&[("bootstrap", POST_AND_EXIT)]);
    for _ in 0..10 {
        let r = invoke(f.path(), "provided", &["--quiet"]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(r.json(), serde_json::json!({"posted": true}));
    }
}

#[test]
fn a_runtime_that_exits_after_answering_does_not_fail_the_next_event() {
    if skip_unless_root() {
        return;
    }
    // Answers one event, then exits: each invocation must still succeed, on a fresh
    // instance when the previous one is gone (it never received the event).
    let bootstrap = r#"#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
H=$(mktemp)
curl -sS -D "$H" "$API/invocation/next" >/dev/null
ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$H" | cut -d' ' -f2 | tr -d '\r\n')
curl -sS -X POST "$API/invocation/$ID/response" -d '{"ok":1}' >/dev/null
exit 3
"#;
    let f = function(&[("bootstrap", bootstrap)]);
    let timings = tempfile::NamedTempFile::new().unwrap();
    let r = invoke(
        f.path(),
        "provided",
        &[
            "--quiet",
            "--repeat",
            "4",
            "--timings-file",
            timings.path().to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    for line in std::fs::read_to_string(timings.path()).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["ok"], true, "{line}");
    }
}
