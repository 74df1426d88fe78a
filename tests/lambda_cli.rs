//! The `aws lambda`-shaped client subcommands against a real daemon on temporary state/run
//! dirs: create, get, list, invoke (to a file, to stdout, with the log tail), update,
//! publish, alias, qualifier, concurrency 0 → throttled, delete → not found, an unreachable
//! socket → 125, `logs`; and the same over TCP with SigV4 signatures.
//!
//! Needs: root, `mkfs.ext4`, `/usr/bin/python3` (the example function).
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::daemon::{Daemon, KEY_ID, SECRET};
use common::{hearth_bin, skip_unless_root, Run};

/// `hearth ARGS --endpoint unix:<socket>`.
fn cli(d: &Daemon, args: &[&str]) -> Run {
    let mut c = Command::new(hearth_bin());
    c.args(args)
        .arg("--endpoint")
        .arg(format!("unix:{}", d.socket().display()));
    run(c)
}

fn run(mut c: Command) -> Run {
    c.stdin(Stdio::null())
        .env_remove("HEARTH_ENDPOINT")
        .env_remove("HEARTH_ACCESS_KEY_ID")
        .env_remove("HEARTH_SECRET_ACCESS_KEY")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap()
        .into()
}

/// A zip of examples/python in `dir`.
fn python_zip(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/lambda_function.py");
    let path = dir.join("python.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
    zip.start_file("lambda_function.py", opts).unwrap();
    zip.write_all(&std::fs::read(src).unwrap()).unwrap();
    zip.finish().unwrap();
    path
}

fn ok(r: &Run, what: &str, d: &Daemon) {
    assert_eq!(r.code, 0, "{what}: {r:?}\n--- daemon log ---\n{}", d.log());
}

#[test]
fn the_client_subcommands_drive_the_daemon() {
    if skip_unless_root() {
        return;
    }
    let d = Daemon::start();
    let zip = python_zip(d.dir.path());
    let zip_arg = format!("fileb://{}", zip.display());

    let r = cli(
        &d,
        &[
            "create-function",
            "--function-name",
            "cli-py",
            "--runtime",
            "python3.11",
            "--handler",
            "lambda_function.lambda_handler",
            "--zip-file",
            &zip_arg,
            "--memory-size",
            "256",
            "--environment",
            "Variables={GREETING=hi,MODE=test}",
            "--description",
            "from the cli",
        ],
    );
    ok(&r, "create-function", &d);
    assert!(r.stdout.contains("FunctionName:"), "{r:?}");
    assert!(r.stdout.contains("cli-py"), "{r:?}");
    assert!(r.stdout.contains("GREETING=hi"), "{r:?}");

    let r = cli(&d, &["get-function", "--function-name", "cli-py"]);
    ok(&r, "get-function", &d);
    assert!(r.stdout.contains("python3.11"), "{r:?}");
    assert!(r.stdout.contains("256"), "{r:?}");
    let r = cli(
        &d,
        &[
            "get-function",
            "--function-name",
            "cli-py",
            "--output",
            "json",
        ],
    );
    ok(&r, "get-function --output json", &d);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["Configuration"]["Description"], "from the cli");

    let r = cli(&d, &["list-functions"]);
    ok(&r, "list-functions", &d);
    assert!(r.stdout.starts_with("NAME"), "{r:?}");
    assert!(r.stdout.contains("cli-py"), "{r:?}");

    // Invoke to a file, then to stdout.
    let out = d.dir.path().join("out.json");
    let out_s = out.to_str().unwrap();
    let r = cli(
        &d,
        &[
            "invoke",
            "--function-name",
            "cli-py",
            "--payload",
            r#"{"name": "cli"}"#,
            out_s,
        ],
    );
    ok(&r, "invoke", &d);
    assert!(r.stdout.contains("StatusCode:"), "{r:?}");
    assert!(r.stdout.contains("200"), "{r:?}");
    assert!(r.stdout.contains("$LATEST"), "{r:?}");
    let body = std::fs::read_to_string(&out).unwrap();
    assert!(body.contains("hello, cli"), "{body}");
    let r = cli(
        &d,
        &[
            "invoke",
            "--function-name",
            "cli-py",
            "--payload",
            r#"{"name": "stdout"}"#,
            "--log-type",
            "Tail",
            "-",
        ],
    );
    ok(&r, "invoke -", &d);
    assert!(r.stdout.contains("hello, stdout"), "{r:?}");
    assert!(r.stderr.contains("START RequestId"), "{r:?}");
    assert!(r.stderr.contains("REPORT RequestId"), "{r:?}");

    let r = cli(
        &d,
        &[
            "update-function-configuration",
            "--function-name",
            "cli-py",
            "--timeout",
            "7",
        ],
    );
    ok(&r, "update-function-configuration", &d);
    let r = cli(
        &d,
        &[
            "get-function",
            "--function-name",
            "cli-py",
            "--output",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["Configuration"]["Timeout"], 7, "{r:?}");

    let r = cli(&d, &["publish-version", "--function-name", "cli-py"]);
    ok(&r, "publish-version", &d);
    assert!(r.stdout.contains("Version:"), "{r:?}");
    let r = cli(
        &d,
        &[
            "create-alias",
            "--function-name",
            "cli-py",
            "--name",
            "live",
            "--function-version",
            "1",
        ],
    );
    ok(&r, "create-alias", &d);
    assert!(r.stdout.contains("live"), "{r:?}");
    let r = cli(
        &d,
        &[
            "invoke",
            "--function-name",
            "cli-py",
            "--qualifier",
            "live",
            out_s,
        ],
    );
    ok(&r, "invoke --qualifier live", &d);
    assert!(r.stdout.contains("ExecutedVersion: 1"), "{r:?}");

    let r = cli(
        &d,
        &[
            "put-function-concurrency",
            "--function-name",
            "cli-py",
            "--reserved-concurrent-executions",
            "0",
        ],
    );
    ok(&r, "put-function-concurrency", &d);
    let r = cli(&d, &["invoke", "--function-name", "cli-py", out_s]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("hearth: TooManyRequestsException: "),
        "{r:?}"
    );

    // logs: the START lines of the invocations above, read from the state dir.
    let mut c = Command::new(hearth_bin());
    c.args(["logs", "cli-py", "--state-dir"]).arg(d.state());
    let r = run(c);
    ok(&r, "logs", &d);
    assert!(r.stdout.contains("START RequestId"), "{r:?}");

    let r = cli(&d, &["delete-function", "--function-name", "cli-py"]);
    ok(&r, "delete-function", &d);
    let r = cli(&d, &["get-function", "--function-name", "cli-py"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.starts_with("hearth: ResourceNotFoundException: "),
        "{r:?}"
    );
}

#[test]
fn tcp_requests_are_signed_and_errors_have_their_exit_codes() {
    if skip_unless_root() {
        return;
    }
    let d = Daemon::start();
    let endpoint = format!("http://127.0.0.1:{}", d.port);
    // Signed with the AWS_* pair: accepted.
    let mut c = Command::new(hearth_bin());
    c.args([
        "list-functions",
        "--output",
        "json",
        "--endpoint",
        &endpoint,
    ]);
    c.env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .stdin(Stdio::null());
    let r: Run = c.output().unwrap().into();
    assert_eq!(r.code, 0, "{r:?}\n{}", d.log());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["Functions"].is_array(), "{r:?}");
    // A wrong secret: the daemon refuses, exit 1.
    let mut c = Command::new(hearth_bin());
    c.args(["list-functions", "--endpoint", &endpoint]);
    c.env("HEARTH_ACCESS_KEY_ID", KEY_ID)
        .env("HEARTH_SECRET_ACCESS_KEY", "wrong")
        .stdin(Stdio::null());
    let r: Run = c.output().unwrap().into();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("hearth: InvalidSignatureException: "),
        "{r:?}"
    );
    // No key at all: bad usage.
    let mut c = Command::new(hearth_bin());
    c.args(["list-functions", "--endpoint", &endpoint]);
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");

    // Nobody on the socket: 125, naming it and `hearth serve`.
    let gone = d.dir.path().join("run/nobody.sock");
    let mut c = Command::new(hearth_bin());
    c.args(["get-function", "--function-name", "x", "--endpoint"])
        .arg(format!("unix:{}", gone.display()));
    let r = run(c);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("nobody.sock"), "{r:?}");
    assert!(r.stderr.contains("hearth serve"), "{r:?}");
    // Bad usage: a zip that is not fileb://.
    let r = cli(
        &d,
        &[
            "create-function",
            "--function-name",
            "f",
            "--runtime",
            "python3.12",
            "--handler",
            "h",
            "--zip-file",
            "plain.zip",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
}
