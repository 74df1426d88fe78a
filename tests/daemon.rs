//! `hearth serve` end to end: the daemon on temporary state/run dirs and a loopback port,
//! driven by boto3 (signed requests over TCP: a scenario over the examples and every bad
//! input of spec §6), by the aws CLI, and by raw requests on its Unix socket;
//! a second daemon on the same state dir refused; SIGTERM drains and leaves nothing.
//!
//! Needs: root, `mkfs.ext4`, `/usr/bin/python3` (the example function), and a Python with
//! boto3 in `$HEARTH_BOTO3_PYTHON` (scripts/test.sh makes a venv, with the aws CLI next to
//! it); without it the client tests print why and skip.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::daemon::{live_instances, unix_request, wait_for, Daemon, KEY_ID, SECRET};
use common::{hearth_bin, skip_unless_root};

/// Runs a client script of `tests/clients/boto3` (by `program`, with `args`) against
/// the daemon's TCP port and the examples dir, signed with the daemon's key; panics with
/// the script's output and the daemon log unless it exits 0 printing `ok_line`.
fn run_client(d: &Daemon, program: &std::ffi::OsStr, args: &[&std::ffi::OsStr], ok_line: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(program)
        .args(args)
        .arg(format!("http://127.0.0.1:{}", d.port))
        .arg(root.join("examples"))
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Visible with --nocapture: which steps ran.
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains(ok_line),
        "{program:?} {args:?} failed:\n{stdout}\n{stderr}\n--- daemon log ---\n{}",
        d.log()
    );
}

/// `$HEARTH_BOTO3_PYTHON`, or None (after saying why) when the boto3 tests must skip.
fn boto3_python() -> Option<std::ffi::OsString> {
    let python = std::env::var_os("HEARTH_BOTO3_PYTHON");
    if python.is_none() {
        println!("skipped: HEARTH_BOTO3_PYTHON is not set (scripts/test.sh makes a boto3 venv)");
    }
    python
}

fn client_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients/boto3")
        .join(name)
}

#[test]
fn boto3_drives_the_daemon_and_sigterm_drains_it() {
    if skip_unless_root() {
        return;
    }
    let Some(python) = boto3_python() else {
        return;
    };
    let mut d = Daemon::start();
    run_client(
        &d,
        &python,
        &[client_script("scenario.py").as_os_str()],
        "boto3 scenario: ok",
    );
    d.stop_clean();
    assert!(!d.socket().exists(), "socket left behind");
}

#[test]
fn boto3_bad_inputs_get_the_right_errors() {
    if skip_unless_root() {
        return;
    }
    let Some(python) = boto3_python() else {
        return;
    };
    let mut d = Daemon::start();
    run_client(
        &d,
        &python,
        &[client_script("bad_inputs.py").as_os_str()],
        "bad inputs: ok",
    );
    d.stop_clean();
}

#[test]
fn aws_cli_creates_invokes_and_lists() {
    if skip_unless_root() {
        return;
    }
    let Some(python) = boto3_python() else {
        return;
    };
    // The venv that holds boto3 also holds the aws CLI.
    let aws = Path::new(&python).with_file_name("aws");
    if !aws.exists() {
        println!("skipped: no aws CLI next to {python:?}");
        return;
    }
    let mut d = Daemon::start();
    run_client(
        &d,
        std::ffi::OsStr::new("/bin/sh"),
        &[client_script("awscli.sh").as_os_str(), aws.as_os_str()],
        "awscli: ok",
    );
    d.stop_clean();
}

#[test]
fn signatures_are_required_on_tcp_and_a_second_daemon_is_refused() {
    if skip_unless_root() {
        return;
    }
    let mut d = Daemon::start();
    // Unsigned on TCP: refused with an AWS auth error.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(b"GET /2015-03-31/functions/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 403 "), "{reply}");
    assert!(
        reply.contains("MissingAuthenticationTokenException"),
        "{reply}"
    );
    // The Unix socket needs no signature; an unknown function is a proper 404.
    let (status, body) = unix_request(
        &d.socket(),
        "GET",
        "/2015-03-31/functions/nope/configuration",
        b"",
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("Function not found"), "{body}");
    // A second daemon on the same state dir exits non-zero with a clear message.
    let second = Command::new(hearth_bin())
        .args(["serve", "--state-dir"])
        .arg(d.dir.path().join("state"))
        .arg("--run-dir")
        .arg(d.dir.path().join("run2"))
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("lock") || err.contains("another"), "{err}");
    d.stop_clean();
}

/// A function zip of `examples/python`, base64 for CreateFunction's `Code.ZipFile`.
fn example_zip_b64() -> String {
    use base64::Engine;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/lambda_function.py");
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        z.start_file(
            "lambda_function.py",
            zip::write::SimpleFileOptions::default().unix_permissions(0o644),
        )
        .unwrap();
        z.write_all(&std::fs::read(src).unwrap()).unwrap();
        z.finish().unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
}

#[test]
fn idle_instances_expire_and_the_socket_is_root_only() {
    if skip_unless_root() {
        return;
    }
    // Let other users reach the socket's directory: only the socket's own mode may stop
    // them.
    let mut d = Daemon::start_with(&[("HEARTH_IDLE_TIMEOUT_S", "1")]);
    use std::os::unix::fs::PermissionsExt;
    for p in [d.dir.path().to_path_buf(), d.dir.path().join("run")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let create = serde_json::json!({
        "FunctionName": "idle-fn",
        "Runtime": "python3.11",
        "Role": "arn:aws:iam::000000000000:role/x",
        "Handler": "lambda_function.lambda_handler",
        "Code": {"ZipFile": example_zip_b64()},
        "Timeout": 60,
    });
    let (status, body) = unix_request(
        &d.socket(),
        "POST",
        "/2015-03-31/functions",
        create.to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = unix_request(
        &d.socket(),
        "POST",
        "/2015-03-31/functions/idle-fn/invocations",
        br#"{"name": "idle"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello, idle"), "{body}");
    // One instance (idle, frozen or not yet), until the 1 s idle timeout retires it
    // (the loop wakes at least once a second).
    assert_eq!(live_instances(&d.metrics()), 1, "{}", d.metrics());
    wait_for(
        Duration::from_secs(60),
        || live_instances(&d.metrics()) == 0,
        || d.metrics(),
    );
    // Another user cannot connect to the socket (mode 0600 without a socket group).
    use std::os::unix::process::CommandExt;
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
        ])
        .arg(d.socket())
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PermissionError"),
        "{out:?}"
    );
    d.stop_clean();
}

#[test]
fn sigkill_during_concurrent_creates_loses_no_acknowledged_function() {
    if skip_unless_root() {
        return;
    }
    let mut d = Daemon::start();
    let zip = example_zip_b64();
    let sock = d.socket();
    // 50 clients create functions (then update their code) at once; each records what
    // the daemon acknowledged.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut clients = Vec::new();
    for i in 0..50 {
        let (tx, zip, sock) = (tx.clone(), zip.clone(), sock.clone());
        clients.push(std::thread::spawn(move || {
            let name = format!("crash-{i}");
            let create = serde_json::json!({
                "FunctionName": name,
                "Runtime": "python3.11",
                "Role": "arn:aws:iam::000000000000:role/x",
                "Handler": "lambda_function.lambda_handler",
                "Code": {"ZipFile": zip},
            });
            let Ok(mut s) = UnixStream::connect(&sock) else {
                return;
            };
            let body = create.to_string();
            let req = format!(
                "POST /2015-03-31/functions HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            if s.write_all(req.as_bytes()).is_err() {
                return;
            }
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 201 ") {
                let _ = tx.send(name);
            }
        }));
    }
    drop(tx);
    // Kill the daemon once some creations are acknowledged, others still in flight.
    let mut acked = Vec::new();
    while let Ok(name) = rx.recv_timeout(Duration::from_secs(60)) {
        acked.push(name);
        if acked.len() == 10 {
            d.kill();
        }
    }
    for c in clients {
        let _ = c.join();
    }
    assert!(
        acked.len() >= 10,
        "only {} creations acknowledged",
        acked.len()
    );
    // Restart on the same state: every acknowledged function is there, whole.
    let mut again = Daemon::start_in(d.dir.path());
    for name in &acked {
        let (status, body) = unix_request(
            &again.socket(),
            "GET",
            &format!("/2015-03-31/functions/{name}"),
            b"",
        );
        assert_eq!(status, 200, "{name}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["Configuration"]["FunctionName"], name.as_str());
        assert!(v["Configuration"]["CodeSize"].as_u64().unwrap() > 0);
    }
    // And each can be invoked (its code tree is complete).
    let (status, body) = unix_request(
        &again.socket(),
        "POST",
        &format!("/2015-03-31/functions/{}/invocations", acked[0]),
        b"{}",
    );
    assert_eq!(status, 200, "{body}");
    again.stop_clean();
}

#[test]
fn the_socket_group_may_connect_and_others_may_not() {
    if skip_unless_root() {
        return;
    }
    // `nogroup` (gid 65534) exists on every Debian/Ubuntu host; uid 65534 is in it, uid 1
    // (`daemon`, gid 1) is not. Nothing on the host is changed.
    let mut d = Daemon::start_with(&[("HEARTH_SOCKET_GROUP", "nogroup")]);
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for p in [d.dir.path().to_path_buf(), d.dir.path().join("run")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let meta = std::fs::metadata(d.socket()).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), 65534);
    use std::os::unix::process::CommandExt;
    let connect_as = |uid: u32, gid: u32| {
        Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); \
                 s.sendall(b'GET /2016-08-19/account-settings HTTP/1.1\\r\\nHost: h\\r\\nConnection: close\\r\\n\\r\\n'); \
                 print(s.recv(100).decode().split(chr(13))[0])",
            ])
            .arg(d.socket())
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap()
    };
    let member = connect_as(65534, 65534);
    assert!(
        String::from_utf8_lossy(&member.stdout).starts_with("HTTP/1.1 200"),
        "{member:?}"
    );
    let outsider = connect_as(1, 1);
    assert!(!outsider.status.success());
    assert!(
        String::from_utf8_lossy(&outsider.stderr).contains("PermissionError"),
        "{outsider:?}"
    );
    d.stop_clean();
}
