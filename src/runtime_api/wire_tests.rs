//! Wire tests, byte for byte: every endpoint, keep-alive, chunked bodies, `100 Continue`,
//! wrong-state calls, malformed input, the size limits, peer disconnects, the connection cap, the
//! Unix listener and `curl`, against the real mio loop of [`super::harness`].

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;

use super::harness::*;
use super::reply::MAX_RESPONSE_BODY;
use super::RuntimeEvent;

#[test]
fn next_response_next_on_one_keep_alive_connection() {
    let h = Harness::start();
    let mut s = h.connect();
    s.write_all(&get(NEXT)).unwrap();
    h.ready();
    h.invoke(inv("req-1", br#"{"k":"v"}"#)).unwrap();
    let r = read_resp(&mut s);
    assert_eq!(
        r.head,
        "HTTP/1.1 200 OK\r\n\
         Content-Type: application/json\r\n\
         Lambda-Runtime-Aws-Request-Id: req-1\r\n\
         Lambda-Runtime-Deadline-Ms: 1700000003000\r\n\
         Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:f\r\n\
         Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1\r\n\
         Content-Length: 9\r\n\r\n"
    );
    assert_eq!(r.body, br#"{"k":"v"}"#);
    assert!(h
        .invoke(inv("other", b"{}"))
        .unwrap_err()
        .contains("still running"));

    s.write_all(&post(
        &response_path("req-1"),
        "Content-Type: application/json\r\n",
        b"\"ok\"",
    ))
    .unwrap();
    let r = read_resp(&mut s);
    assert_eq!(r.head, ACCEPTED);
    assert_eq!(r.body, br#"{"status":"OK"}"#);
    assert_eq!(
        h.event(),
        RuntimeEvent::Response {
            instance: h.id,
            request_id: "req-1".into(),
            body: b"\"ok\"".to_vec(),
            content_type: Some("application/json".into()),
        }
    );
    // The next /next on the same connection follows the result.
    s.write_all(&get(NEXT)).unwrap();
    h.ready();
    h.invoke(inv("req-2", b"[]")).unwrap();
    let r = read_resp(&mut s);
    assert!(r.head.contains("Lambda-Runtime-Aws-Request-Id: req-2\r\n"));
    assert_eq!(r.body, b"[]");
    assert!(h.drain_events().is_empty());
}

#[test]
fn invocation_queued_before_next_is_answered_at_once() {
    let h = Harness::start();
    h.invoke(inv("q", b"1")).unwrap();
    assert!(h.invoke(inv("q2", b"1")).unwrap_err().contains("queued"));
    let mut s = h.connect();
    s.write_all(&get(NEXT)).unwrap();
    let r = read_resp(&mut s);
    assert_eq!(r.status, 200);
    assert!(r.head.contains("Lambda-Runtime-Aws-Request-Id: q\r\n"));
    h.ready();
}

#[test]
fn chunked_response_with_extensions() {
    let h = Harness::start();
    let mut s = start_invocation(&h, "c1");
    s.write_all(
        b"POST /2018-06-01/runtime/invocation/c1/response HTTP/1.1\r\n\
          Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n\
          4;ext=1\r\nhell\r\n1\r\no\r\n0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_resp(&mut s).head, ACCEPTED);
    assert_eq!(
        h.event(),
        RuntimeEvent::Response {
            instance: h.id,
            request_id: "c1".into(),
            body: b"hello".to_vec(),
            content_type: Some("text/plain".into()),
        }
    );
}

#[test]
fn streaming_error_trailers_fail_the_invocation() {
    let h = Harness::start();
    let mut s = start_invocation(&h, "s1");
    s.write_all(
        b"POST /2018-06-01/runtime/invocation/s1/response HTTP/1.1\r\n\
          Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n\
          Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n\
          3\r\nabc\r\n0\r\nLambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n\
          Lambda-Runtime-Function-Error-Body: eyJlcnJvclR5cGUiOiJYIn0=\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_resp(&mut s).status, 202);
    assert_eq!(
        h.event(),
        RuntimeEvent::InvokeError {
            instance: h.id,
            request_id: "s1".into(),
            error_type: Some("Runtime.StreamError".into()),
            body: br#"{"errorType":"X"}"#.to_vec(),
        }
    );
}

#[test]
fn bad_response_mode_is_400_and_fails_the_invocation() {
    let h = Harness::start();
    let mut s = start_invocation(&h, "m1");
    s.write_all(&post(
        &response_path("m1"),
        "Lambda-Runtime-Function-Response-Mode: buffered-ish\r\n",
        b"{}",
    ))
    .unwrap();
    let r = read_resp(&mut s);
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "InvalidFunctionResponseMode");
    let RuntimeEvent::InvokeError { error_type, .. } = h.event() else {
        panic!("expected an invoke error")
    };
    assert_eq!(
        error_type.as_deref(),
        Some("Runtime.InvalidResponseModeHeader")
    );
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let h = Harness::start();
    let mut s = start_invocation(&h, "e1");
    s.write_all(
        b"POST /2018-06-01/runtime/invocation/e1/response HTTP/1.1\r\n\
          Expect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    )
    .unwrap();
    let mut cont = [0u8; 25];
    s.read_exact(&mut cont).unwrap();
    assert_eq!(&cont, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"{}").unwrap();
    assert_eq!(read_resp(&mut s).head, ACCEPTED);
    assert!(matches!(h.event(), RuntimeEvent::Response { .. }));
}

#[test]
fn invoke_error_with_and_without_error_type_header() {
    let h = Harness::start();
    let mut s = start_invocation(&h, "x1");
    let body = br#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}"#;
    s.write_all(&post(&error_path("x1"), "", body)).unwrap();
    assert_eq!(read_resp(&mut s).head, ACCEPTED);
    assert_eq!(
        h.event(),
        RuntimeEvent::InvokeError {
            instance: h.id,
            request_id: "x1".into(),
            error_type: None,
            body: body.to_vec(),
        }
    );
    s.write_all(&get(NEXT)).unwrap();
    h.ready();
    h.invoke(inv("x2", b"{}")).unwrap();
    assert_eq!(read_resp(&mut s).status, 200);
    s.write_all(&post(
        &error_path("x2"),
        "Lambda-Runtime-Function-Error-Type: unhandled\r\n",
        b"not json",
    ))
    .unwrap();
    assert_eq!(read_resp(&mut s).status, 202);
    assert_eq!(
        h.event(),
        RuntimeEvent::InvokeError {
            instance: h.id,
            request_id: "x2".into(),
            error_type: Some("unhandled".into()),
            body: b"not json".to_vec(),
        }
    );
}

#[test]
fn init_error_then_nothing_more() {
    let h = Harness::start();
    let mut s = h.connect();
    let body = br#"{"errorMessage":"No module named 'x'","errorType":"Runtime.ImportModuleError"}"#;
    s.write_all(&post(
        "/2018-06-01/runtime/init/error",
        "Lambda-Runtime-Function-Error-Type: Runtime.ImportModuleError\r\n",
        body,
    ))
    .unwrap();
    assert_eq!(read_resp(&mut s).head, ACCEPTED);
    assert_eq!(
        h.event(),
        RuntimeEvent::InitError {
            instance: h.id,
            error_type: Some("Runtime.ImportModuleError".into()),
            body: body.to_vec(),
        }
    );
    s.write_all(&get(NEXT)).unwrap();
    let r = read_resp(&mut s);
    assert_eq!(
        (r.status, r.error_type().as_str()),
        (403, "InvalidStateTransition")
    );
    assert!(h.invoke(inv("a", b"{}")).is_err());
}

#[test]
fn wrong_state_and_unknown_id_calls() {
    let h = Harness::start();
    let mut s = h.connect();
    // Before any invocation: no id is in flight.
    s.write_all(&post(&response_path("nope"), "", b"{}"))
        .unwrap();
    let r = read_resp(&mut s);
    assert_eq!(
        (r.status, r.error_type().as_str()),
        (400, "InvalidRequestID")
    );
    assert_eq!(r.json()["errorMessage"], "Invalid request ID");
    assert!(r
        .head
        .starts_with("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"));
    s.write_all(&post(&error_path(""), "", b"{}")).unwrap();
    assert_eq!(read_resp(&mut s).error_type(), "InvalidRequestID");

    let mut s = start_invocation(&h, "w1");
    // init/error after init finished.
    s.write_all(&post("/2018-06-01/runtime/init/error", "", b"{}"))
        .unwrap();
    let r = read_resp(&mut s);
    assert_eq!(
        (r.status, r.error_type().as_str()),
        (403, "InvalidStateTransition")
    );
    // A result for another id.
    s.write_all(&post(&response_path("w0"), "", b"{}")).unwrap();
    assert_eq!(read_resp(&mut s).status, 400);
    s.write_all(&post(&response_path("w1"), "", b"1")).unwrap();
    assert_eq!(read_resp(&mut s).status, 202);
    assert!(matches!(h.event(), RuntimeEvent::Response { .. }));
    // A second result for the same invocation.
    s.write_all(&post(&error_path("w1"), "", b"{}")).unwrap();
    let r = read_resp(&mut s);
    assert_eq!(
        (r.status, r.error_type().as_str()),
        (403, "InvalidStateTransition")
    );
    assert!(r.json()["errorMessage"]
        .as_str()
        .unwrap()
        .starts_with("State transition from ResponseSent to InvocationErrorResponse failed"));
    // One /next parks; a second concurrent one is refused; the first still gets the work.
    s.write_all(&get(NEXT)).unwrap();
    h.ready();
    let mut s2 = h.connect();
    s2.write_all(&get(NEXT)).unwrap();
    let r = read_resp(&mut s2);
    assert_eq!(
        (r.status, r.error_type().as_str()),
        (403, "InvalidStateTransition")
    );
    h.invoke(inv("w2", b"{}")).unwrap();
    assert!(read_resp(&mut s).head.contains("Request-Id: w2\r\n"));
    assert!(h.drain_events().is_empty());
}

#[test]
fn next_during_an_invocation_is_parked() {
    let h = Harness::start();
    let mut s = start_invocation(&h, "p1");
    let mut s2 = h.connect();
    s2.write_all(&get(NEXT)).unwrap();
    h.wait_parked(true);
    s.write_all(&post(&response_path("p1"), "", b"1")).unwrap();
    assert_eq!(read_resp(&mut s).status, 202);
    assert!(matches!(h.event(), RuntimeEvent::Response { .. }));
    h.ready();
    h.invoke(inv("p2", b"{}")).unwrap();
    assert!(read_resp(&mut s2).head.contains("Request-Id: p2\r\n"));
}

#[test]
fn unknown_paths_and_methods() {
    let h = Harness::start();
    let mut s = h.connect();
    s.write_all(&get("/2020-01-01/extension/event/next"))
        .unwrap();
    let r = read_resp(&mut s);
    assert!(r
        .head
        .starts_with("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"));
    assert_eq!(r.error_type(), "NotFound");
    s.write_all(&post(NEXT, "", b"ignored body")).unwrap();
    let r = read_resp(&mut s);
    assert_eq!(r.status, 405);
    assert!(r.head.contains("\r\nAllow: GET\r\n"));
    // Pipelined requests are answered in order, on the same connection.
    let mut two = get("/a");
    two.extend_from_slice(&get("/b"));
    s.write_all(&two).unwrap();
    assert_eq!(read_resp(&mut s).status, 404);
    assert_eq!(read_resp(&mut s).status, 404);
    // Connection: close is honoured.
    s.write_all(b"GET /c HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_resp(&mut s);
    assert!(r.closes());
    assert!(closed(&mut s));
    assert!(h.drain_events().is_empty());
}

fn assert_400_and_close(h: &Harness, bytes: &[u8]) {
    let mut s = h.connect();
    // The server may close before reading everything; a reset here is fine.
    let _ = s.write_all(bytes);
    let r = read_resp(&mut s);
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(bytes));
    assert!(r.closes());
    assert_eq!(r.error_type(), "InvalidHTTPRequest");
    assert!(closed(&mut s));
}

#[test]
fn malformed_requests_get_400_and_close() {
    let h = Harness::start();
    assert_400_and_close(&h, b"\x16\x03\x01 garbage garbage\r\n\r\n");
    assert_400_and_close(
        &h,
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
    );
    let mut huge = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 20_000));
    huge.extend_from_slice(b"\r\n\r\n");
    assert_400_and_close(&h, &huge);
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..65 {
        many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_400_and_close(&h, &many);
    assert!(h.drain_events().is_empty());
}

#[test]
fn malformed_chunk_during_a_result_fails_the_invocation() {
    let h = Harness::start();
    let mut s = start_invocation(&h, "b1");
    s.write_all(
        b"POST /2018-06-01/runtime/invocation/b1/response HTTP/1.1\r\n\
          Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\nQQ\r\n",
    )
    .unwrap();
    let r = read_resp(&mut s);
    assert_eq!(r.status, 400);
    assert!(closed(&mut s));
    let RuntimeEvent::InvokeError { error_type, .. } = h.event() else {
        panic!("expected an invoke error")
    };
    assert_eq!(error_type.as_deref(), Some("Runtime.TruncatedResponse"));
}

#[test]
fn response_of_exactly_the_limit_is_accepted() {
    let h = Harness::start();
    let mut s = start_invocation(&h, "big");
    let body = vec![b'x'; MAX_RESPONSE_BODY];
    s.write_all(&post(&response_path("big"), "", &body))
        .unwrap();
    assert_eq!(read_resp(&mut s).status, 202);
    let RuntimeEvent::Response { body: got, .. } = h.event() else {
        panic!("expected a response")
    };
    assert_eq!(got.len(), 6_291_556);
}

#[test]
fn response_one_byte_over_the_limit_is_413() {
    let h = Harness::start();
    let mut s = start_invocation(&h, "big");
    let body = vec![b'x'; MAX_RESPONSE_BODY + 1];
    s.write_all(&post(&response_path("big"), "", &body))
        .unwrap();
    let r = read_resp(&mut s);
    assert_eq!(r.status, 413);
    assert!(r
        .head
        .starts_with("HTTP/1.1 413 Request Entity Too Large\r\n"));
    assert_eq!(r.error_type(), "RequestEntityTooLarge");
    assert_eq!(
        r.json()["errorMessage"],
        "Exceeded maximum allowed payload size (6291556 bytes)."
    );
    assert_eq!(
        h.event(),
        RuntimeEvent::ResponseTooLarge {
            instance: h.id,
            request_id: "big".into()
        }
    );
    // The excess was discarded, not left in the stream: the connection is still usable.
    s.write_all(&get(NEXT)).unwrap();
    h.ready();
}

#[test]
fn chunked_response_over_the_limit_is_413() {
    let h = Harness::start();
    let mut s = start_invocation(&h, "bc");
    s.write_all(b"POST /2018-06-01/runtime/invocation/bc/response HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = vec![b'y'; 1 << 20];
    for _ in 0..7 {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .unwrap();
        s.write_all(&chunk).unwrap();
        s.write_all(b"\r\n").unwrap();
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    assert_eq!(read_resp(&mut s).status, 413);
    assert!(matches!(h.event(), RuntimeEvent::ResponseTooLarge { .. }));
}

#[test]
fn peer_disconnect_mid_body_fails_the_invocation() {
    let h = Harness::start();
    let mut s = start_invocation(&h, "t1");
    s.write_all(b"POST /2018-06-01/runtime/invocation/t1/response HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly ten b")
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let r = read_resp(&mut s);
    assert_eq!(
        (r.status, r.error_type().as_str()),
        (400, "TruncatedHTTPRequest")
    );
    let RuntimeEvent::InvokeError {
        request_id,
        error_type,
        ..
    } = h.event()
    else {
        panic!("expected an invoke error")
    };
    assert_eq!(request_id, "t1");
    assert_eq!(error_type.as_deref(), Some("Runtime.TruncatedResponse"));

    // A hard close in the middle of an error body, with the next /next already parked elsewhere.
    let mut s2 = h.connect();
    s2.write_all(&get(NEXT)).unwrap();
    h.ready();
    h.invoke(inv("t2", b"{}")).unwrap();
    assert_eq!(read_resp(&mut s2).status, 200);
    let mut s3 = h.connect();
    s3.write_all(
        b"POST /2018-06-01/runtime/invocation/t2/error HTTP/1.1\r\nContent-Length: 50\r\n\r\n{",
    )
    .unwrap();
    drop(s3);
    assert!(matches!(h.event(), RuntimeEvent::InvokeError { .. }));
}

#[test]
fn parked_next_whose_peer_leaves_is_replaced() {
    let h = Harness::start();
    let mut s = h.connect();
    s.write_all(&get(NEXT)).unwrap();
    h.ready();
    drop(s);
    h.wait_parked(false);
    let mut s2 = h.connect();
    s2.write_all(&get(NEXT)).unwrap();
    h.wait_parked(true);
    h.invoke(inv("r1", b"{}")).unwrap();
    let r = read_resp(&mut s2);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(h.drain_events().is_empty(), "no second Ready");
}

#[test]
fn connections_over_the_cap_are_closed() {
    let h = Harness::start();
    let mut keep = Vec::new();
    for _ in 0..super::server::MAX_CONNS {
        let mut s = h.connect();
        s.write_all(&get("/x")).unwrap();
        assert_eq!(read_resp(&mut s).status, 404);
        keep.push(s);
    }
    let mut extra = h.connect();
    let _ = extra.write_all(&get("/x"));
    assert!(closed(&mut extra));
    drop(keep);
}

#[test]
fn remove_instance_closes_everything() {
    let h = Harness::start();
    let mut s = h.connect();
    s.write_all(&get(NEXT)).unwrap();
    h.ready();
    h.remove();
    assert!(closed(&mut s));
    assert!(h.invoke(inv("z", b"{}")).unwrap_err().contains("unknown"));
    assert!(TcpStream::connect(h.addr).is_err());
}

#[test]
fn unix_socket_serves_the_same_api() {
    let h = Harness::start();
    let mut s = UnixStream::connect(&h.unix_path).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    s.write_all(&get(NEXT)).unwrap();
    h.ready();
    h.invoke(inv("u1", b"{}")).unwrap();
    assert_eq!(read_resp(&mut s).status, 200);
    s.write_all(&post(&response_path("u1"), "", b"42")).unwrap();
    assert_eq!(read_resp(&mut s).head, ACCEPTED);
    assert!(matches!(h.event(), RuntimeEvent::Response { body, .. } if body == b"42"));
}

#[test]
fn curl_as_a_shell_bootstrap_would() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: curl not installed");
        return;
    }
    let h = Harness::start();
    h.invoke(inv("curl-1", br#"{"x":1}"#)).unwrap();
    let base = format!("http://{}/2018-06-01/runtime", h.addr);
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-i",
            "--max-time",
            "20",
            &format!("{base}/invocation/next"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Lambda-Runtime-Aws-Request-Id: curl-1\r\n"));
    assert!(text.ends_with(r#"{"x":1}"#));
    h.ready();
    // A 2 MB body with an explicit Expect: curl waits for the 100 Continue.
    let body_path = std::env::temp_dir().join(format!("hearth-rtapi-curl-{}", std::process::id()));
    std::fs::write(&body_path, vec![b'z'; 2_000_000]).unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-H",
            "Expect: 100-continue",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", body_path.display()),
            &format!("{base}/invocation/curl-1/response"),
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&body_path);
    assert_eq!(String::from_utf8_lossy(&out.stdout), r#"{"status":"OK"}"#);
    let RuntimeEvent::Response {
        body, content_type, ..
    } = h.event()
    else {
        panic!("expected a response")
    };
    assert_eq!(body.len(), 2_000_000);
    assert_eq!(content_type.as_deref(), Some("application/octet-stream"));
}
