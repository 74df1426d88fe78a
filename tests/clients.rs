#![allow(clippy::tests_outside_test_module)]
//! AWS's real, unmodified runtime interface clients against Hearth's Runtime API, through
//! `hearth invoke --local`: `lambda_runtime` (Rust), `awslambdaric` (Python) and
//! `aws-lambda-ric` (Node.js), each around the same echo handler (tests/clients/*).
//!
//! Needs: root (sandboxes), and the fixture zips that `scripts/build-clients.sh` builds into
//! `target/clients/{rust,python,node}.zip`; a test whose zip is missing prints
//! `skipped: run scripts/build-clients.sh` and passes. The Python and Node fixtures run the
//! host's /usr/bin/python3 and /usr/bin/node (sandboxes bind the host's /usr).
//!
//! Does not test: Hearth's own error cases (tests/cli.rs and the unit tests do), streaming.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Rust,
    Python,
    Node,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Rust => "rust",
            Client::Python => "python",
            Client::Node => "node",
        }
    }

    /// The function's `Handler`. aws-lambda-ric 4 reads it from `_HANDLER` (not argv), so it
    /// must be the real one; the Rust binary ignores it.
    fn handler(self) -> &'static str {
        match self {
            Client::Rust => "bootstrap",
            Client::Python => "lambda_function.lambda_handler",
            Client::Node => "index.handler",
        }
    }

    fn zip(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/clients")
            .join(format!("{}.zip", self.name()))
    }

    /// The fixture's zip, or None (after saying so) when the test cannot run here.
    fn fixture(self) -> Option<PathBuf> {
        if common::skip_unless_root() {
            return None;
        }
        let zip = self.zip();
        if !zip.is_file() {
            println!(
                "skipped: run scripts/build-clients.sh ({} missing)",
                zip.display()
            );
            return None;
        }
        Some(zip)
    }
}

/// One `hearth invoke --local` of the fixture with `payload` (`JSON` or `@FILE`).
fn invoke(client: Client, zip: &Path, payload: &str) -> common::Run {
    Command::new(common::hearth_bin())
        .args(["invoke", "--local", "--runtime", "provided.al2023"])
        .arg("--code")
        .arg(zip)
        .args(["--handler", client.handler()])
        // CPU scales with memory: at the default 128 MB a sandbox gets ~7 % of a core and
        // Python's start-up alone takes about a second. 1,769 MB is one full vCPU.
        .args(["--memory", "1769"])
        // Generous, so that a loaded machine cannot turn a slow start into a timeout.
        .args(["--timeout", "60"])
        // Init too: the emulated guest of the v2 leg starts interpreters slowly.
        .args(["--init-timeout", "120"])
        .args(["--payload", payload])
        .stdin(Stdio::null())
        .output()
        .expect("run hearth")
        .into()
}

/// The request id from the `START RequestId: <id> Version: ...` log line.
fn request_id(run: &common::Run) -> String {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("START RequestId: "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no START line: {run:?}"))
        .to_string()
}

fn parse(stdout: &str, run: &common::Run) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {run:?}"))
}

fn check_echo(client: Client) {
    let Some(zip) = client.fixture() else {
        return;
    };
    let event =
        json!({"a": 1, "s": "héllo \"world\"", "list": [true, null, 2.5], "nested": {"k": "v"}});
    let run = invoke(client, &zip, &event.to_string());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        parse(&run.stdout, &run),
        json!({ "echo": event }),
        "{run:?}"
    );
    let id = request_id(&run);
    assert!(
        run.stderr.contains(&format!("END RequestId: {id}")),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&format!("REPORT RequestId: {id}\t")),
        "{run:?}"
    );
}

/// The error JSON each client POSTs to `/error` (runtime-api.md §2.3), returned verbatim.
fn check_error_shape(client: Client, err: &Value, id: &str) {
    let obj = err.as_object().expect("error is a JSON object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(err["errorType"], "EchoFailure", "{err}");
    assert_eq!(err["errorMessage"], "requested failure", "{err}");
    match client {
        Client::Rust => assert_eq!(keys, ["errorMessage", "errorType"], "{err}"),
        Client::Python => {
            assert_eq!(
                keys,
                ["errorMessage", "errorType", "requestId", "stackTrace"],
                "{err}"
            );
            assert_eq!(err["requestId"], id, "{err}");
            let trace = err["stackTrace"].as_array().expect("stackTrace is a list");
            assert!(
                trace
                    .iter()
                    .any(|f| f.as_str().is_some_and(|s| s.contains("lambda_function.py"))),
                "{err}"
            );
        }
        Client::Node => {
            assert_eq!(keys, ["errorMessage", "errorType", "trace"], "{err}");
            let trace = err["trace"].as_array().expect("trace is a list");
            assert_eq!(trace[0], "EchoFailure: requested failure", "{err}");
            assert!(trace.iter().all(Value::is_string), "{err}");
        }
    }
}

fn check_error(client: Client) {
    let Some(zip) = client.fixture() else {
        return;
    };
    let run = invoke(client, &zip, r#"{"fail": true}"#);
    assert_eq!(run.code, 1, "{run:?}");
    let id = request_id(&run);
    check_error_shape(client, &parse(&run.stdout, &run), &id);
    // The handler's own output is in the log, inside the invocation.
    let start = run.stderr.find("START RequestId:").unwrap();
    let end = run.stderr.find("END RequestId:").expect("END line");
    assert!(
        run.stderr[start..end].contains("failing on request"),
        "{run:?}"
    );
    assert_eq!(
        run.stderr.trim_end().lines().last(),
        Some("hearth: function error: EchoFailure"),
        "{run:?}"
    );
}

/// A 1 MiB event in and a slightly larger response out: bodies that take many reads and
/// writes on both sides of the Runtime API.
fn check_large_payload(client: Client) {
    let Some(zip) = client.fixture() else {
        return;
    };
    let data: String = (0..1024 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let event = json!({ "data": data });
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), event.to_string()).unwrap();
    let run = invoke(client, &zip, &format!("@{}", file.path().display()));
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let got = parse(&run.stdout, &run);
    assert!(
        got == json!({ "echo": event }),
        "response of {} bytes differs from the event echoed; stderr: {}",
        run.stdout.len(),
        run.stderr
    );
}

#[test]
fn rust_client_echo() {
    // Needs: root, target/clients/rust.zip.
    check_echo(Client::Rust);
}

#[test]
fn rust_client_error() {
    // Needs: root, target/clients/rust.zip.
    check_error(Client::Rust);
}

#[test]
fn rust_client_large_payload() {
    // Needs: root, target/clients/rust.zip.
    check_large_payload(Client::Rust);
}

#[test]
fn python_client_echo() {
    // Needs: root, target/clients/python.zip, /usr/bin/python3 of the version it was built for.
    check_echo(Client::Python);
}

#[test]
fn python_client_error() {
    // Needs: root, target/clients/python.zip, /usr/bin/python3 of the version it was built for.
    check_error(Client::Python);
}

#[test]
fn python_client_large_payload() {
    // Needs: root, target/clients/python.zip, /usr/bin/python3 of the version it was built for.
    check_large_payload(Client::Python);
}

#[test]
fn node_client_echo() {
    // Needs: root, target/clients/node.zip, /usr/bin/node (the addon was built for it).
    check_echo(Client::Node);
}

#[test]
fn node_client_error() {
    // Needs: root, target/clients/node.zip, /usr/bin/node (the addon was built for it).
    check_error(Client::Node);
}

#[test]
fn node_client_large_payload() {
    // Needs: root, target/clients/node.zip, /usr/bin/node (the addon was built for it).
    check_large_payload(Client::Node);
}
