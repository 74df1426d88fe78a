//! The load path: one persistent keep-alive HTTP/1.1 connection to the daemon's Unix
//! socket, sending the same Invoke request again and again.
//!
//! Owns: the request bytes (built once per connection and reused), reading one response
//! (head parsed with httparse into a stack array, body skipped) into a reusable buffer,
//! reconnecting when the daemon closes the connection, and reading the headers a benchmark
//! needs: `X-Amz-Function-Error`, `X-Hearth-Start` (warm|blank|spawn|provisioned),
//! `X-Hearth-Init-Duration-Us` and `X-Hearth-Phases-Us`. After the first request nothing
//! is allocated per request unless something fails.
//!
//! Does not: sign (Unix socket only), pipeline, read chunked bodies (the daemon frames
//! every answer with `Content-Length`), or keep bodies (only the first bytes of an error's).
//! Limits: a response head of at most 64 KB; replies may take up to [`READ_TIMEOUT`].

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::phases::DaemonPhases;
use super::BenchError;
use crate::lambda_cli::http::encode;

/// How long one reply may take: above Lambda's 900 s function timeout plus a cold start.
pub const READ_TIMEOUT: Duration = Duration::from_secs(960);
/// Longest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How much of an error's body is kept for the report.
const ERROR_BODY_KEEP: usize = 300;

/// How the daemon says it started the instance that served an invocation (response header
/// `X-Hearth-Start`); `Unknown` when the header is absent or not one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StartKind {
    Warm,
    Blank,
    Spawn,
    Provisioned,
    Unknown,
}

impl StartKind {
    /// Every kind, in report order.
    pub const ALL: [StartKind; 5] = [
        StartKind::Warm,
        StartKind::Blank,
        StartKind::Spawn,
        StartKind::Provisioned,
        StartKind::Unknown,
    ];

    /// The header's value (any case, surrounding blanks ignored).
    pub fn parse(value: &[u8]) -> StartKind {
        let v = value.trim_ascii();
        for (name, kind) in [
            (&b"warm"[..], StartKind::Warm),
            (b"blank", StartKind::Blank),
            (b"spawn", StartKind::Spawn),
            (b"provisioned", StartKind::Provisioned),
        ] {
            if v.eq_ignore_ascii_case(name) {
                return kind;
            }
        }
        StartKind::Unknown
    }

    pub fn name(self) -> &'static str {
        match self {
            StartKind::Warm => "warm",
            StartKind::Blank => "blank",
            StartKind::Spawn => "spawn",
            StartKind::Provisioned => "provisioned",
            StartKind::Unknown => "unknown",
        }
    }

    /// Index into a `[u64; 5]` tally.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What one invocation came back as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 200 without `X-Amz-Function-Error`.
    Ok,
    /// 429 `TooManyRequestsException`.
    Throttled,
    /// Any other status, or a function error.
    Error,
}

/// The parts of one Invoke response a benchmark looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub function_error: bool,
    pub start: StartKind,
    pub init_us: Option<u64>,
    /// `X-Hearth-Phases-Us`, when sent and well-formed.
    pub phases: Option<DaemonPhases>,
    pub body_len: usize,
}

impl Reply {
    pub fn outcome(&self) -> Outcome {
        match self.status {
            200 if !self.function_error => Outcome::Ok,
            429 => Outcome::Throttled,
            _ => Outcome::Error,
        }
    }
}

/// `NAME[:QUALIFIER]` split into the Invoke path (an ARN is passed whole).
pub fn invoke_path(function: &str) -> String {
    let (name, qualifier) = match function.split_once(':') {
        Some((n, q)) if !function.starts_with("arn:") => (n, Some(q)),
        _ => (function, None),
    };
    let mut path = format!("/2015-03-31/functions/{}/invocations", encode(name));
    if let Some(q) = qualifier {
        path.push_str("?Qualifier=");
        path.push_str(&encode(q));
    }
    path
}

/// A keep-alive connection that sends one fixed request.
#[derive(Debug)]
pub struct Conn {
    socket: PathBuf,
    stream: Option<UnixStream>,
    request: Vec<u8>,
    buf: RecvBuf,
    /// The first bytes of the last error's body (for the report), when there was one.
    pub last_error_body: Option<String>,
}

impl Conn {
    /// Connects to `socket` and prepares `POST path` with `payload` and `extra_headers`
    /// (`Name: value` pairs, e.g. `X-Hearth-Start: spawn`).
    pub fn open(
        socket: &Path,
        path: &str,
        payload: &[u8],
        extra_headers: &[(&str, &str)],
    ) -> Result<Conn, BenchError> {
        let mut head = format!("POST {path} HTTP/1.1\r\nHost: hearth\r\n");
        for (k, v) in extra_headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", payload.len()));
        let mut request = head.into_bytes();
        request.extend_from_slice(payload);
        let mut c = Conn {
            socket: socket.to_path_buf(),
            stream: None,
            request,
            buf: RecvBuf::new(),
            last_error_body: None,
        };
        c.connect()?;
        Ok(c)
    }

    fn connect(&mut self) -> Result<(), BenchError> {
        let err = |source| BenchError::Connect {
            socket: self.socket.clone(),
            source,
        };
        let s = UnixStream::connect(&self.socket).map_err(err)?;
        s.set_read_timeout(Some(READ_TIMEOUT)).map_err(err)?;
        self.stream = Some(s);
        self.buf.clear();
        Ok(())
    }

    /// Sends the request once and reads the reply. A connection the daemon closed before
    /// answering is reopened and the request sent once more (a keep-alive connection may
    /// be closed between requests); any other failure is returned.
    pub fn invoke(&mut self) -> Result<Reply, BenchError> {
        match self.try_invoke() {
            Ok(r) => Ok(r),
            Err(BenchError::Closed { .. }) => {
                self.connect()?;
                self.try_invoke()
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    fn try_invoke(&mut self) -> Result<Reply, BenchError> {
        if self.stream.is_none() {
            self.connect()?;
        }
        let socket = &self.socket;
        let io = |source| BenchError::Io {
            socket: socket.clone(),
            source,
        };
        let stream = self.stream.as_mut().expect("connected above");
        match stream.write_all(&self.request) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                return Err(BenchError::Closed {
                    socket: socket.clone(),
                })
            }
            Err(e) => return Err(io(e)),
        }
        let (reply, total, close) = read_reply(stream, &mut self.buf, socket)?;
        if reply.outcome() != Outcome::Ok {
            let head_len = total - reply.body_len;
            let got = self.buf.filled();
            let body =
                String::from_utf8_lossy(&got[head_len..total.min(head_len + ERROR_BODY_KEEP)]);
            self.last_error_body = Some(match error_type(&got[..head_len]) {
                Some(t) => format!("{t}: {body}"),
                None => body.into_owned(),
            });
        }
        // No pipelining: anything after this reply would be a protocol error; drop it.
        self.buf.clear();
        if close {
            self.stream = None;
        }
        Ok(reply)
    }
}

/// A receive buffer, zeroed once and reused: `data[..len]` holds what was read.
#[derive(Debug)]
struct RecvBuf {
    data: Vec<u8>,
    len: usize,
}

impl RecvBuf {
    fn new() -> RecvBuf {
        RecvBuf {
            data: vec![0; 16 * 1024],
            len: 0,
        }
    }

    fn filled(&self) -> &[u8] {
        &self.data[..self.len]
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

/// Reads one response into `buf`; returns it, the bytes it took, and whether the daemon
/// will close the connection after it.
fn read_reply(
    r: &mut impl Read,
    buf: &mut RecvBuf,
    socket: &Path,
) -> Result<(Reply, usize, bool), BenchError> {
    let malformed = |detail: String| BenchError::Malformed {
        socket: socket.to_path_buf(),
        detail,
    };
    loop {
        if let Some((head_len, reply, close)) = parse_head(buf.filled()).map_err(malformed)? {
            let total = head_len + reply.body_len;
            while buf.len < total {
                if fill(r, buf, socket)? == 0 {
                    return Err(malformed(format!(
                        "connection closed inside a {}-byte body",
                        reply.body_len
                    )));
                }
            }
            return Ok((reply, total, close));
        }
        if buf.len > MAX_HEAD {
            return Err(malformed("response head over 64 KB".into()));
        }
        if fill(r, buf, socket)? == 0 {
            return Err(if buf.len == 0 {
                BenchError::Closed {
                    socket: socket.to_path_buf(),
                }
            } else {
                malformed("connection closed inside the response head".into())
            });
        }
    }
}

/// Reads what is there after `buf`'s data (doubling the buffer only when it is full).
fn fill(r: &mut impl Read, buf: &mut RecvBuf, socket: &Path) -> Result<usize, BenchError> {
    if buf.len == buf.data.len() {
        buf.data.resize(buf.data.len() * 2, 0);
    }
    loop {
        match r.read(&mut buf.data[buf.len..]) {
            Ok(n) => {
                buf.len += n;
                return Ok(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(if e.kind() == std::io::ErrorKind::ConnectionReset {
                    BenchError::Closed {
                        socket: socket.to_path_buf(),
                    }
                } else {
                    BenchError::Io {
                        socket: socket.to_path_buf(),
                        source: e,
                    }
                });
            }
        }
    }
}

/// `x-amzn-ErrorType` of a complete response head (only looked at on the error path).
fn error_type(head: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(head).ok()?;
    resp.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("x-amzn-errortype"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
}

/// Parses a complete response head at the start of `buf`: `(head length, reply with
/// body_len = Content-Length, connection closes after it)`; `None` while incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<(usize, Reply, bool)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut reply = Reply {
        status: resp.code.unwrap_or(0),
        function_error: false,
        start: StartKind::Unknown,
        init_us: None,
        phases: None,
        body_len: 0,
    };
    let mut length = None;
    let mut steps = None;
    let mut close = resp.version == Some(0);
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_none() {
                return Err("bad Content-Length".into());
            }
        } else if name.eq_ignore_ascii_case(b"x-amz-function-error") {
            reply.function_error = true;
        } else if name.eq_ignore_ascii_case(b"x-hearth-start") {
            reply.start = StartKind::parse(h.value);
        } else if name.eq_ignore_ascii_case(b"x-hearth-init-duration-us") {
            reply.init_us = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok());
        } else if name.eq_ignore_ascii_case(b"x-hearth-phases-us") {
            reply.phases = DaemonPhases::parse(h.value);
        } else if name.eq_ignore_ascii_case(b"x-hearth-sandbox-steps-us") {
            steps = super::phases::parse_steps(h.value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = h.value.trim_ascii().eq_ignore_ascii_case(b"close");
        }
    }
    if let Some(p) = reply.phases.as_mut() {
        p.steps = steps;
    }
    reply.body_len = length.ok_or("response without Content-Length")?;
    Ok(Some((head_len, reply, close)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_kinds_parse() {
        assert_eq!(StartKind::parse(b"warm"), StartKind::Warm);
        assert_eq!(StartKind::parse(b" Blank "), StartKind::Blank);
        assert_eq!(StartKind::parse(b"SPAWN"), StartKind::Spawn);
        assert_eq!(StartKind::parse(b"provisioned"), StartKind::Provisioned);
        assert_eq!(StartKind::parse(b"fresh"), StartKind::Unknown);
        assert_eq!(StartKind::parse(b""), StartKind::Unknown);
        for (i, k) in StartKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }

    #[test]
    fn heads_parse_with_and_without_hearth_headers() {
        let raw = b"HTTP/1.1 200 OK\r\nX-Hearth-Start: blank\r\nx-hearth-init-duration-us: 4211\r\nContent-Length: 4\r\n\r\nbody";
        let (n, r, close) = parse_head(raw).unwrap().unwrap();
        assert_eq!(n, raw.len() - 4);
        assert_eq!(r.start, StartKind::Blank);
        assert_eq!(r.init_us, Some(4211));
        assert_eq!((r.body_len, r.outcome(), close), (4, Outcome::Ok, false));

        let raw =
            b"HTTP/1.1 200 OK\r\nX-Amz-Function-Error: Unhandled\r\nContent-Length: 2\r\n\r\n{}";
        let (_, r, _) = parse_head(raw).unwrap().unwrap();
        assert_eq!((r.start, r.init_us), (StartKind::Unknown, None));
        assert_eq!(r.outcome(), Outcome::Error);

        let raw =
            b"HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        let (_, r, close) = parse_head(raw).unwrap().unwrap();
        assert_eq!((r.outcome(), close), (Outcome::Throttled, true));
        let raw = b"HTTP/1.1 404 Not Found\r\nx-amzn-ErrorType: ResourceNotFoundException\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            error_type(raw).as_deref(),
            Some("ResourceNotFoundException")
        );
        assert_eq!(error_type(b"HTTP/1.1 500 X\r\n\r\n"), None);

        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le")
            .unwrap()
            .is_none());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }

    #[test]
    fn replies_are_read_whole_from_a_stream() {
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nhello";
        let mut buf = RecvBuf::new();
        let (r, total, _) = read_reply(&mut &raw[..], &mut buf, Path::new("/s")).unwrap();
        assert_eq!((r.status, r.body_len, total), (404, 5, raw.len()));
        assert_eq!(&buf.filled()[total - 5..total], b"hello");
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        assert!(read_reply(&mut &short[..], &mut RecvBuf::new(), Path::new("/s")).is_err());
        // A body larger than the buffer grows it.
        let mut big = b"HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n".to_vec();
        big.resize(big.len() + 40_000, b'x');
        let (r, total, _) =
            read_reply(&mut &big[..], &mut RecvBuf::new(), Path::new("/s")).unwrap();
        assert_eq!((r.body_len, total), (40_000, big.len()));
        assert!(matches!(
            read_reply(&mut &b""[..], &mut RecvBuf::new(), Path::new("/s")),
            Err(BenchError::Closed { .. })
        ));
    }

    #[test]
    fn invoke_paths() {
        assert_eq!(
            invoke_path("echo"),
            "/2015-03-31/functions/echo/invocations"
        );
        assert_eq!(
            invoke_path("echo:live"),
            "/2015-03-31/functions/echo/invocations?Qualifier=live"
        );
        assert_eq!(
            invoke_path("echo:$LATEST"),
            "/2015-03-31/functions/echo/invocations?Qualifier=%24LATEST"
        );
        assert!(invoke_path("arn:aws:lambda:us-east-1:0:function:f").contains("arn%3Aaws"));
    }
}
