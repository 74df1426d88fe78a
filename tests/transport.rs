//! The Runtime API transport of a sandbox: init listens on `127.0.0.1:9001` and on the
//! abstract Unix socket `@hearth/runtime-api` inside the sandbox's own network namespace and
//! hands both listeners to `hearth`; a client inside reaches `hearth` through them, and only
//! through them.
//!
//! Needs: root (namespaces, cgroups, mounts), `mkfs.ext4`, the probe (see tests/common).
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{code_dir, skip_unless_root};
use hearth::sandbox::mounts::RootSource;
use hearth::sandbox::plan::SandboxSpec;
use hearth::sandbox::{reclaim, HostPaths, SandboxHost};

/// Answers one HTTP request on `stream` with `body`, then closes it.
fn answer(mut stream: impl Read + Write, body: &str) -> String {
    let mut reader = BufReader::new(&mut stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
    }
    drop(reader);
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    request_line
}

/// Runs the probe's `http ADDR /hello` in a sandbox serving the Runtime API, answers it
/// through the handed-over listener picked by `serve`, and returns the probe's output.
fn http_through(addr: &str, via_unix: bool) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let host = SandboxHost::open(&HostPaths::from_env()).unwrap();
    let mut spec = SandboxSpec::new(vec![
        "/var/task/hearth-probe".into(),
        "http".into(),
        addr.into(),
        "/hello".into(),
    ]);
    spec.code = Some(code_dir().path().to_owned());
    if let Some(root) = std::env::var_os("HEARTH_TEST_ROOTFS") {
        spec.root = RootSource::Dir(root.into());
    }
    spec.runtime_api = true;
    let (out_r, out_w) = nix::unistd::pipe().unwrap();
    let null = std::fs::File::open("/dev/null").unwrap();
    spec.stdio = Some([null.as_raw_fd(), out_w.as_raw_fd(), out_w.as_raw_fd()]);
    let name = reclaim::sandbox_name("test", Some(SEQ.fetch_add(1, Ordering::Relaxed)));
    let mut sb = host.create(&name, &spec).unwrap();
    drop(out_w);
    let api = sb.take_runtime_api().expect("listeners handed over");
    assert_eq!(
        api.tcp.local_addr().unwrap().to_string(),
        "127.0.0.1:9001",
        "the TCP listener is the sandbox's 127.0.0.1:9001"
    );
    let request = if via_unix {
        let (stream, _) = api.unix.accept().unwrap();
        answer(stream, "hello over unix")
    } else {
        let (stream, _) = api.tcp.accept().unwrap();
        answer(stream, "hello over tcp")
    };
    assert_eq!(request, "GET /hello HTTP/1.1\r\n");
    sb.wait(Some(Instant::now() + Duration::from_secs(30)), None)
        .unwrap();
    host.destroy(sb).unwrap();
    let _ = host.cgroups.remove_parent_if_empty();
    let mut out = String::new();
    std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_sandbox_reaches_hearth_on_127_0_0_1_9001() {
    if skip_unless_root() {
        return;
    }
    let out = http_through("127.0.0.1:9001", false);
    assert!(out.contains("http=HTTP/1.1 200 OK\n"), "{out}");
    assert!(out.contains("body=hello over tcp"), "{out}");
}

#[test]
fn the_sandbox_reaches_hearth_on_the_abstract_unix_socket() {
    if skip_unless_root() {
        return;
    }
    let out = http_through("@hearth/runtime-api", true);
    assert!(out.contains("http=HTTP/1.1 200 OK\n"), "{out}");
    assert!(out.contains("body=hello over unix"), "{out}");
}

#[test]
fn a_sandbox_without_the_runtime_api_has_nothing_on_9001() {
    if skip_unless_root() {
        return;
    }
    let run = common::probe(&[], &["http", "127.0.0.1:9001", "/"]);
    assert_eq!(run.get("http"), "ECONNREFUSED", "{run:?}");
}
