//! The built-in `provided` workload of `hearth bench --standalone`: when the `hearth`
//! binary is started as `bootstrap` (its file name) with `AWS_LAMBDA_RUNTIME_API` set, it
//! is a minimal Lambda Runtime API client that answers every event with the event itself.
//!
//! Why the `hearth` binary itself: a benchmark must deploy a custom runtime without a
//! compiler or a second file on the host; a copy of the running binary is always there
//! and is the same on every host. Its start-up is Rust's (no interpreter), so the cold
//! start measured is nearly all the platform's.
//!
//! One keep-alive connection: to `HEARTH_RUNTIME_API_SOCKET` when the platform offers it
//! (a Unix socket path, or `@name` in the abstract namespace, as Hearth sets in every
//! sandbox and `hearth bench peers` in its peers' containers), else TCP to
//! `AWS_LAMBDA_RUNTIME_API`. `GET …/invocation/next`, then `POST
//! …/invocation/<id>/response` with the event as the body. Only `Content-Length` bodies
//! are read (the Runtime API never chunks `/next`). On any protocol surprise it prints why
//! and exits 1, as a runtime should. An event containing `"sleep_ms": N` is answered after
//! N ms (a substring match, no JSON parser): `hearth bench density` holds instances busy
//! that way. Std and `thiserror` only: `tests/echo/echo.rs` (`hearth-echo`, built statically)
//! compiles this file in as its whole loop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

/// Why the echo runtime stopped.
#[derive(Debug, thiserror::Error)]
pub enum EchoRuntimeError {
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{0}")]
    Protocol(String),
}

/// When this process was started as a function's `bootstrap` (argv[0]'s file name) with
/// `AWS_LAMBDA_RUNTIME_API` set: runs the echo loop and returns its exit code (it returns
/// only on failure). Otherwise `None`: this is the ordinary `hearth` command.
pub fn run_if_bootstrap() -> Option<u8> {
    let argv0 = std::env::args_os().next()?;
    let name = std::path::Path::new(&argv0).file_name()?.to_owned();
    if name != "bootstrap" {
        return None;
    }
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").ok()?;
    let socket = std::env::var("HEARTH_RUNTIME_API_SOCKET").ok();
    let served = match socket.as_deref().filter(|s| !s.is_empty()) {
        Some(path) => connect_unix(path).and_then(|s| serve_on(&api, s)),
        None => serve(&api),
    };
    match served {
        Ok(()) => Some(0),
        Err(e) => {
            eprintln!("hearth echo runtime: {e}");
            Some(1)
        }
    }
}

type Headers = Vec<(String, String)>;

/// A connection the echo loop can read from, write to, and split in two.
pub trait Stream: Read + Write + Sized {
    fn try_clone(&self) -> std::io::Result<Self>;
}

impl Stream for TcpStream {
    fn try_clone(&self) -> std::io::Result<Self> {
        TcpStream::try_clone(self)
    }
}

impl Stream for UnixStream {
    fn try_clone(&self) -> std::io::Result<Self> {
        UnixStream::try_clone(self)
    }
}

/// Connects to `path`, or to the abstract name after a leading `@`.
pub fn connect_unix(path: &str) -> Result<UnixStream, EchoRuntimeError> {
    let io = |source| EchoRuntimeError::Io {
        what: "connecting to the runtime API socket",
        source,
    };
    match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(io)?;
            UnixStream::connect_addr(&addr).map_err(io)
        }
        None => UnixStream::connect(path).map_err(io),
    }
}

/// The loop over TCP to `api` (`host:port`).
pub fn serve(api: &str) -> Result<(), EchoRuntimeError> {
    let io = |what| move |source| EchoRuntimeError::Io { what, source };
    let stream = TcpStream::connect(api).map_err(io("connecting to the runtime API"))?;
    stream.set_nodelay(true).map_err(io("TCP_NODELAY"))?;
    serve_on(api, stream)
}

/// The loop on a connected `stream`: forever `/next`, answer. `api` is only the `Host`.
pub fn serve_on(api: &str, stream: impl Stream) -> Result<(), EchoRuntimeError> {
    let io = |what| move |source| EchoRuntimeError::Io { what, source };
    let mut writer = stream.try_clone().map_err(io("cloning the socket"))?;
    let mut reader = BufReader::new(stream);
    loop {
        write!(
            writer,
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\n\r\n"
        )
        .map_err(io("sending /next"))?;
        let (status, headers, body) = read_response(&mut reader)?;
        if status != 200 {
            return Err(EchoRuntimeError::Protocol(format!(
                "/next answered {status}"
            )));
        }
        let id = header(&headers, "lambda-runtime-aws-request-id")
            .ok_or_else(|| EchoRuntimeError::Protocol("no Lambda-Runtime-Aws-Request-Id".into()))?
            .to_string();
        if let Some(ms) = sleep_ms(&body) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let mut request = format!(
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        writer
            .write_all(&request)
            .map_err(io("posting the response"))?;
        let (status, _, _) = read_response(&mut reader)?;
        if status != 202 {
            return Err(EchoRuntimeError::Protocol(format!(
                "/response answered {status}"
            )));
        }
    }
}

/// N of the first `"sleep_ms": N` in the event, if any.
pub fn sleep_ms(event: &[u8]) -> Option<u64> {
    let key = b"\"sleep_ms\"";
    let at = event.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &event[at..];
    let rest = &rest[rest.iter().position(|b| !b" \t\r\n:".contains(b))?..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads one HTTP/1.1 response: status, headers, `Content-Length` body.
fn read_response(reader: &mut impl BufRead) -> Result<(u16, Headers, Vec<u8>), EchoRuntimeError> {
    let io = |what| move |source| EchoRuntimeError::Io { what, source };
    let mut line = String::new();
    if reader
        .read_line(&mut line)
        .map_err(io("reading a status line"))?
        == 0
    {
        return Err(EchoRuntimeError::Protocol(
            "the runtime API closed the connection".into(),
        ));
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| EchoRuntimeError::Protocol(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(io("reading a header"))?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = match header(&headers, "content-length") {
        Some(v) => v
            .parse()
            .map_err(|_| EchoRuntimeError::Protocol(format!("bad Content-Length {v:?}")))?,
        None => 0,
    };
    let mut body = vec![0; len];
    reader.read_exact(&mut body).map_err(io("reading a body"))?;
    Ok((status, headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_is_found_in_the_event() {
        assert_eq!(sleep_ms(br#"{"sleep_ms": 250}"#), Some(250));
        assert_eq!(sleep_ms(br#"{"a":1,"sleep_ms":7}"#), Some(7));
        assert_eq!(sleep_ms(br#"{"k": 1}"#), None);
        assert_eq!(sleep_ms(br#"{"sleep_ms": "x"}"#), None);
    }

    #[test]
    fn one_event_is_echoed_against_a_scripted_api() {
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let api = l.local_addr().unwrap().to_string();
        let runtime = std::thread::spawn(move || serve(&api));
        let (s, _) = l.accept().unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut head = String::new();
        r.read_line(&mut head).unwrap();
        assert!(
            head.starts_with("GET /2018-06-01/runtime/invocation/next "),
            "{head}"
        );
        while {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            l.trim_end() != ""
        } {}
        let event = br#"{"k": 1}"#;
        write!(
            w,
            "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r1\r\nContent-Length: {}\r\n\r\n",
            event.len()
        )
        .unwrap();
        w.write_all(event).unwrap();
        let mut head = String::new();
        r.read_line(&mut head).unwrap();
        assert!(
            head.starts_with("POST /2018-06-01/runtime/invocation/r1/response "),
            "{head}"
        );
        let mut len = 0;
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if l.trim_end().is_empty() {
                break;
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        assert_eq!(body, event);
        // A 500 to the response ends the loop with a protocol error.
        w.write_all(b"HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        let e = runtime.join().unwrap().unwrap_err();
        assert!(e.to_string().contains("/response answered 500"), "{e}");
    }
}
